using System.Net;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text.Json;
using Blankend.Orleans.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Blankend.Orleans.Tests.Codec;

/// <summary>
/// Each recording limit reached: the start is refused (429 problem+json) or the running recording ends with the
/// reason, the refusal or end is counted in a metric, and the other recordings keep recording. Also the pixel
/// limits of the recorder and of the /video_codec decode. One gateway per test: each needs its own settings.
/// </summary>
[Trait(TestKind.Name, TestKind.Integration)]
public sealed class RecordingLimitsTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(15);

    private static async Task<(EmbeddedGateway Gw, string Folder)> StartAsync(params string[] args)
    {
        var folder = Path.Combine(Path.GetTempPath(), "blankend-reclim-" + Guid.NewGuid().ToString("N")[..8]);
        var gw = await EmbeddedGateway.StartAsync([
            $"--recording:folder={folder}",
            "--recording:idle_timeout_s=30",
            "--cluster:observer_refresh_ms=500",
            .. args,
        ]);
        return (gw, folder);
    }

    private static async Task CleanupAsync(EmbeddedGateway gw, string folder)
    {
        await gw.DisposeAsync();
        try
        {
            Directory.Delete(folder, recursive: true);
        }
        catch (IOException) { }
    }

    private static async Task AssertProblemAsync(HttpResponseMessage r, HttpStatusCode code, string mention)
    {
        var body = await r.Content.ReadAsStringAsync();
        Assert.True(code == r.StatusCode, $"expected {(int)code}, got {(int)r.StatusCode}: {body}");
        Assert.Equal("application/problem+json", r.Content.Headers.ContentType?.MediaType);
        Assert.Contains(mention, body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task MaxRecordingsRefusesTheNextStartWith429AndTheRunningOneKeepsRecording()
    {
        var (gw, folder) = await StartAsync("--limits:max_recordings=1");
        try
        {
            var first = Rec.NewSource();
            await Rec.StartAsync(gw.Client, first, ",\"fps\":10");
            using var cam = await Ws.ConnectAsync(gw.Ws($"/video_in?client_id={first}"));
            await Rec.SendAsync(cam, 5);

            using (var refused = await Rec.PostAsync(gw.Client, "start", $"{{\"source\":\"{Rec.NewSource()}\"}}"))
                await AssertProblemAsync(refused, HttpStatusCode.TooManyRequests, "limits:max_recordings");
            var m = await gw.ScrapeUntilAsync(
                s => s.Value("blankend_recordings_refused_total", "limit=max_recordings") >= 1,
                Wait
            );
            Assert.True(m.Value("blankend_recordings_refused_total", "limit=max_recordings") >= 1, m.Raw);

            await Rec.SendAsync(cam, 5, 5);
            await Task.Delay(300);
            var (status, stopped) = await Rec.StopAsync(gw.Client, first);
            Assert.Equal(HttpStatusCode.OK, status);
            Assert.Equal("done", stopped.GetProperty("state").GetString());
            Assert.Equal(10, stopped.GetProperty("frames").GetInt64());
            await cam.CloseQuietlyAsync();

            // The slot is free again.
            var next = Rec.NewSource();
            await Rec.StartAsync(gw.Client, next);
            await Rec.StopAsync(gw.Client, next);
        }
        finally
        {
            await CleanupAsync(gw, folder);
        }
    }

    [Fact]
    public async Task MinFreeMbRefusesAStartWith429()
    {
        // More free space than any disk has: the check must refuse.
        var (gw, folder) = await StartAsync("--recording:min_free_mb=1000000000");
        try
        {
            using (var refused = await Rec.PostAsync(gw.Client, "start", $"{{\"source\":\"{Rec.NewSource()}\"}}"))
                await AssertProblemAsync(refused, HttpStatusCode.TooManyRequests, "recording:min_free_mb");
            var m = await gw.ScrapeUntilAsync(
                s => s.Value("blankend_recordings_refused_total", "limit=min_free_mb") >= 1,
                Wait
            );
            Assert.True(m.Value("blankend_recordings_refused_total", "limit=min_free_mb") >= 1, m.Raw);
            Assert.Empty(await Rec.ListAsync(gw.Client));
        }
        finally
        {
            await CleanupAsync(gw, folder);
        }
    }

    [Fact]
    public async Task MaxDurationEndsTheRecordingDoneWithTheReasonAndAPlayableFile()
    {
        var (gw, folder) = await StartAsync("--recording:max_duration_s=2");
        try
        {
            var source = Rec.NewSource();
            var started = await Rec.StartAsync(gw.Client, source, ",\"fps\":10");
            var id = started.GetProperty("id").GetString()!;
            using var cam = await Ws.ConnectAsync(gw.Ws($"/video_in?client_id={source}"));
            // 6 s of frames: the limit (2 s, checked every second by the recorder's monitor) ends it well before the
            // camera does. 3 s left no margin: a tick late on a loaded machine let all the frames in (CI, 02d14ec).
            await Rec.SendAsync(cam, 60, delayMs: 100);
            var entry = await Rec.WaitStateAsync(gw.Client, id, "done", Wait);
            Assert.Contains("recording:max_duration_s", entry.GetProperty("reason").GetString());
            await cam.CloseQuietlyAsync();

            var (status, stopped) = await Rec.StopAsync(gw.Client, source);
            Assert.Equal(HttpStatusCode.OK, status);
            Assert.Equal("done", stopped.GetProperty("state").GetString());
            Assert.Contains("recording:max_duration_s", stopped.GetProperty("reason").GetString());
            var frames = stopped.GetProperty("frames").GetInt64();
            output.WriteLine($"{frames} frames before the duration limit");
            Assert.InRange(frames, 1, 59); // fewer than the camera sent: the limit ended it
            Assert.Equal(frames, (await FfProbe.ReadAsync(started.GetProperty("path").GetString()!)).Frames);
            var m = await gw.ScrapeUntilAsync(
                s => s.Value("blankend_recordings_limited_total", "limit=max_duration_s") >= 1,
                Wait
            );
            Assert.True(m.Value("blankend_recordings_limited_total", "limit=max_duration_s") >= 1, m.Raw);
        }
        finally
        {
            await CleanupAsync(gw, folder);
        }
    }

    [Fact]
    public async Task MaxBytesEndsTheRecordingThatReachesItWhileAnotherKeepsRecording()
    {
        var (gw, folder) = await StartAsync("--recording:max_bytes=20000");
        try
        {
            var big = Rec.NewSource();
            var quiet = Rec.NewSource();
            var bigStart = await Rec.StartAsync(gw.Client, big, ",\"fps\":10");
            var quietStart = await Rec.StartAsync(gw.Client, quiet, ",\"fps\":10");
            using var camBig = await Ws.ConnectAsync(gw.Ws($"/video_in?client_id={big}"));
            using var camQuiet = await Ws.ConnectAsync(gw.Ws($"/video_in?client_id={quiet}"));
            await Rec.SendAsync(camQuiet, 3);
            var id = bigStart.GetProperty("id").GetString()!;
            for (var i = 0; i < 100; i++)
            {
                await camBig.SendBinaryAsync(TestJpeg.Tagged(i));
                await Task.Delay(50);
                if (i % 10 == 9 && (await Rec.EntryAsync(gw.Client, id)).GetProperty("state").GetString() == "done")
                    break;
            }
            var entry = await Rec.WaitStateAsync(gw.Client, id, "done", Wait);
            Assert.Contains("recording:max_bytes", entry.GetProperty("reason").GetString());

            // The other one is still live and still records.
            var other = await Rec.EntryAsync(gw.Client, quietStart.GetProperty("id").GetString()!);
            Assert.Equal("live", other.GetProperty("state").GetString());
            await Rec.SendAsync(camQuiet, 2, 3);
            await Task.Delay(300);
            var (_, quietStopped) = await Rec.StopAsync(gw.Client, quiet);
            Assert.Equal(5, quietStopped.GetProperty("frames").GetInt64());

            var (status, stopped) = await Rec.StopAsync(gw.Client, big);
            Assert.Equal(HttpStatusCode.OK, status);
            Assert.Contains("recording:max_bytes", stopped.GetProperty("reason").GetString());
            Assert.True((await FfProbe.ReadAsync(bigStart.GetProperty("path").GetString()!)).Frames > 0);
            var m = await gw.ScrapeUntilAsync(
                s => s.Value("blankend_recordings_limited_total", "limit=max_bytes") >= 1,
                Wait
            );
            Assert.True(m.Value("blankend_recordings_limited_total", "limit=max_bytes") >= 1, m.Raw);
            await camBig.CloseQuietlyAsync();
            await camQuiet.CloseQuietlyAsync();
        }
        finally
        {
            await CleanupAsync(gw, folder);
        }
    }

    [Fact]
    public async Task ARecordingOfFramesOverMaxPixelsFailsWithTheReason()
    {
        // TestJpeg frames are 512x512 = 262144 pixels.
        var (gw, folder) = await StartAsync("--recording:max_pixels=100000");
        try
        {
            var source = Rec.NewSource();
            await Rec.StartAsync(gw.Client, source, ",\"fps\":10");
            using var cam = await Ws.ConnectAsync(gw.Ws($"/video_in?client_id={source}"));
            await Rec.SendAsync(cam, 3);
            await Task.Delay(300);
            var (status, stopped) = await Rec.StopAsync(gw.Client, source);
            output.WriteLine(stopped.ToString());
            Assert.Equal(HttpStatusCode.OK, status);
            Assert.Equal("failed", stopped.GetProperty("state").GetString());
            Assert.Contains("recording:max_pixels", stopped.GetProperty("reason").GetString());
            await cam.CloseQuietlyAsync();
        }
        finally
        {
            await CleanupAsync(gw, folder);
        }
    }

    [Fact]
    public async Task AVideoCodecStreamOverMaxPixelsEndsItsSessionWith1007()
    {
        // The test stream is 320x240 = 76800 pixels.
        var (gw, folder) = await StartAsync("--codec:max_pixels=10000");
        try
        {
            // A fresh gateway probes ffmpeg first (slow on a loaded machine); the session opens after it.
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            while (
                DateTime.UtcNow < deadline
                && !(await gw.Client.GetFromJsonAsync<JsonElement>("api/v1/video_processing/codec/status"))
                    .GetProperty("ffmpeg_available")
                    .GetBoolean()
            )
                await Task.Delay(200);
            using var cam = await Ws.ConnectAsync(gw.Ws($"/video_codec?codec=h264&client_id={Rec.NewSource()}"));
            JsonElement? error = null;
            var reading = Task.Run(async () =>
            {
                while (true)
                {
                    var m = await cam.ReceiveMessageAsync(TimeSpan.FromSeconds(20));
                    if (m is null)
                        break;
                    if (m.Type == WebSocketMessageType.Text)
                        error = JsonDocument.Parse(m.Data).RootElement.Clone();
                }
            });
            try
            {
                foreach (var chunk in TestStreams.RandomChunks(TestStreams.H264(), new Random(5), 4000))
                {
                    if (reading.IsCompleted)
                        break;
                    await cam.SendBinaryAsync(chunk);
                    await Task.Delay(5);
                }
            }
            catch (Exception e) when (e is WebSocketException or OperationCanceledException)
            {
                // The server closed while we were still sending.
            }
            await reading;
            output.WriteLine($"{error} / {cam.CloseStatus} {cam.CloseStatusDescription}");
            Assert.Equal(WebSocketCloseStatus.InvalidPayloadData, cam.CloseStatus);
            Assert.True(error.HasValue);
            Assert.Contains("codec:max_pixels", error!.Value.GetProperty("detail").GetString());
        }
        finally
        {
            await CleanupAsync(gw, folder);
        }
    }
}
