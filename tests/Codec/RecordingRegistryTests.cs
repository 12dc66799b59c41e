using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using Blankend.Orleans.Hosting;
using Blankend.Orleans.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Blankend.Orleans.Tests.Codec;

/// <summary>Helpers shared by the recording tests that go beyond start/stop.</summary>
internal static class Rec
{
    public static string NewSource() => "rec-" + Guid.NewGuid().ToString("N")[..8];

    public static Task<HttpResponseMessage> PostAsync(HttpClient http, string what, string json) =>
        http.PostAsync(
            $"api/v1/realtime_pipeline/record/{what}",
            new StringContent(json, Encoding.UTF8, "application/json")
        );

    public static async Task<JsonElement> StartAsync(HttpClient http, string source, string extra = "")
    {
        using var r = await PostAsync(http, "start", $"{{\"source\":\"{source}\"{extra}}}");
        var body = await r.Content.ReadAsStringAsync();
        Assert.True(r.StatusCode == HttpStatusCode.OK, $"{r.StatusCode}: {body}");
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    public static async Task<(HttpStatusCode Status, JsonElement Body)> StopAsync(HttpClient http, string source)
    {
        using var r = await PostAsync(http, "stop", $"{{\"source\":\"{source}\"}}");
        var body = await r.Content.ReadAsStringAsync();
        Assert.True((int)r.StatusCode < 500, $"stop answered {(int)r.StatusCode}: {body}");
        return (r.StatusCode, JsonDocument.Parse(body).RootElement.Clone());
    }

    public static async Task<JsonElement[]> ListAsync(HttpClient http) =>
        [.. (await http.GetFromJsonAsync<JsonElement>("api/v1/recordings")).GetProperty("recordings").EnumerateArray()];

    public static async Task<JsonElement> EntryAsync(HttpClient http, string id) =>
        (await ListAsync(http)).Single(e => e.GetProperty("id").GetString() == id);

    /// <summary>Waits until the list shows the recording in <paramref name="state"/>.</summary>
    public static async Task<JsonElement> WaitStateAsync(HttpClient http, string id, string state, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        JsonElement e = default;
        while (DateTime.UtcNow < deadline)
        {
            e = await EntryAsync(http, id);
            if (e.GetProperty("state").GetString() == state)
                return e;
            await Task.Delay(200);
        }
        Assert.Fail($"recording {id} is not {state} after {timeout}: {e}");
        return e;
    }

    /// <summary>Sends <paramref name="n"/> distinct JPEGs on an open /video_in socket, paced so none is
    /// dropped.</summary>
    public static async Task SendAsync(ClientWebSocket cam, int n, int offset = 0, int delayMs = 40)
    {
        for (var i = 0; i < n; i++)
        {
            await cam.SendBinaryAsync(TestJpeg.Tagged(offset + i));
            await Task.Delay(delayMs);
        }
    }

    /// <summary>The ffmpeg process writing <paramref name="path"/> (found by its command line).</summary>
    public static async Task<int> WriterPidAsync(string path, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            foreach (var dir in Directory.EnumerateDirectories("/proc"))
            {
                if (!int.TryParse(Path.GetFileName(dir), out var pid))
                    continue;
                string cmd;
                try
                {
                    cmd = File.ReadAllText(Path.Combine(dir, "cmdline"));
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    continue;
                }
                if (cmd.Contains("ffmpeg", StringComparison.Ordinal) && cmd.Split('\0').Contains(path))
                    return pid;
            }
            await Task.Delay(100);
        }
        Assert.Fail($"no ffmpeg writes {path}");
        return 0;
    }

    /// <summary>Frames ffprobe can read from <paramref name="path"/> (0 while none), polled until at least
    /// <paramref name="atLeast"/> or the timeout.</summary>
    public static async Task<int> PlayableFramesAsync(string path, int atLeast, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        var frames = 0;
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                frames = (await FfProbe.ReadAsync(path)).Frames;
            }
            catch (Exception e)
                when (e is FormatException or InvalidOperationException or IOException or KeyNotFoundException)
            {
                frames = 0;
            }
            if (frames >= atLeast)
                break;
            await Task.Delay(200);
        }
        return frames;
    }

    public static void Kill9(int pid)
    {
        using var kill = Process.Start("kill", ["-9", pid.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
    }
}

/// <summary>
/// Crash-safe recordings and the recordings API (list, download with Range, delete) against the real gateway and
/// real ffmpeg; files checked with ffprobe.
/// </summary>
[Trait(TestKind.Name, TestKind.Integration)]
public sealed class RecordingRegistryTests(CodecGatewayFixture fixture, ITestOutputHelper output)
    : IClassFixture<CodecGatewayFixture>
{
    private HttpClient Http => fixture.Gateway.Client;

    [Fact]
    public async Task KillingTheRecordersFfmpegLeavesAPlayableFileAndStopAnswersFailed()
    {
        var source = Rec.NewSource();
        var started = await Rec.StartAsync(Http, source, ",\"fps\":10");
        var path = started.GetProperty("path").GetString()!;
        var id = started.GetProperty("id").GetString()!;
        using var cam = await Ws.ConnectAsync(fixture.Gateway.Ws($"/video_in?client_id={source}"));
        const int n = 35;
        await Rec.SendAsync(cam, n);
        var pid = await Rec.WriterPidAsync(path, TimeSpan.FromSeconds(5));
        // On a loaded machine ffmpeg may lag behind its stdin: kill it once it has encoded all but the fragment in
        // progress (what it holds in its pipe is not the file's to keep). The point is that the kill leaves
        // what was written playable: a plain MP4 would have no index at all.
        var encoded = await Rec.PlayableFramesAsync(path, n - 10, TimeSpan.FromSeconds(20));
        output.WriteLine($"{encoded} frames playable before the kill");
        Rec.Kill9(pid);
        Assert.True(await Procs.WaitGoneAsync(pid, TimeSpan.FromSeconds(5)));
        await Rec.SendAsync(cam, 5, n); // frames after the kill: refused by the dead writer, nothing else

        var (status, stopped) = await Rec.StopAsync(Http, source);
        output.WriteLine(stopped.ToString());
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("failed", stopped.GetProperty("state").GetString());
        Assert.Contains("signal 9", stopped.GetProperty("reason").GetString());

        // Fragmented MP4: everything up to the last complete fragment (a keyframe every second = 10 frames) plays.
        var info = await FfProbe.ReadAsync(path);
        output.WriteLine($"{info.Frames} of {n} frames playable after the kill");
        Assert.Equal("h264", info.Codec);
        Assert.InRange(info.Frames, n - 2 * 10, n);

        var entry = await Rec.EntryAsync(Http, id);
        Assert.Equal("failed", entry.GetProperty("state").GetString());
        Assert.Contains("signal 9", entry.GetProperty("reason").GetString());
        Assert.Equal(new FileInfo(path).Length, entry.GetProperty("bytes").GetInt64());
        await cam.CloseQuietlyAsync();
    }

    [Fact]
    public async Task ListDownloadWithRangeAndDeleteOfAFinishedRecording()
    {
        var source = Rec.NewSource();
        var started = await Rec.StartAsync(Http, source, ",\"fps\":10");
        var id = started.GetProperty("id").GetString()!;
        var path = started.GetProperty("path").GetString()!;
        using (var cam = await Ws.ConnectAsync(fixture.Gateway.Ws($"/video_in?client_id={source}")))
        {
            await Rec.SendAsync(cam, 15);
            var live = await Rec.WaitStateAsync(Http, id, "live", TimeSpan.FromSeconds(5));
            Assert.Equal(source, live.GetProperty("source").GetString());
            Assert.Equal("raw", live.GetProperty("kind").GetString());
            Assert.Equal(Path.GetFileName(path), live.GetProperty("file").GetString());
            Assert.Equal(JsonValueKind.Null, live.GetProperty("ended").ValueKind);

            // A live one cannot be deleted.
            using var conflict = await Http.DeleteAsync($"api/v1/recordings/{id}");
            Assert.Equal(HttpStatusCode.Conflict, conflict.StatusCode);
            Assert.Equal("application/problem+json", conflict.Content.Headers.ContentType?.MediaType);
            await Task.Delay(300);
            await cam.CloseQuietlyAsync();
        }
        var (status, stopped) = await Rec.StopAsync(Http, source);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("done", stopped.GetProperty("state").GetString());

        var done = await Rec.EntryAsync(Http, id);
        Assert.Equal("done", done.GetProperty("state").GetString());
        Assert.NotEqual(JsonValueKind.Null, done.GetProperty("ended").ValueKind);
        var bytes = done.GetProperty("bytes").GetInt64();
        Assert.Equal(new FileInfo(path).Length, bytes);

        using (var whole = await Http.GetAsync($"api/v1/recordings/{id}/file"))
        {
            Assert.Equal(HttpStatusCode.OK, whole.StatusCode);
            Assert.Equal("video/mp4", whole.Content.Headers.ContentType?.MediaType);
            Assert.Equal(await File.ReadAllBytesAsync(path), await whole.Content.ReadAsByteArrayAsync());
        }
        using (var req = new HttpRequestMessage(HttpMethod.Get, $"api/v1/recordings/{id}/file"))
        {
            req.Headers.Range = new RangeHeaderValue(100, 199);
            using var part = await Http.SendAsync(req);
            Assert.Equal(HttpStatusCode.PartialContent, part.StatusCode);
            Assert.Equal(bytes, part.Content.Headers.ContentRange?.Length);
            Assert.Equal((await File.ReadAllBytesAsync(path))[100..200], await part.Content.ReadAsByteArrayAsync());
        }

        using (var del = await Http.DeleteAsync($"api/v1/recordings/{id}"))
            Assert.Equal(HttpStatusCode.NoContent, del.StatusCode);
        Assert.False(File.Exists(path));
        Assert.DoesNotContain(await Rec.ListAsync(Http), e => e.GetProperty("id").GetString() == id);
        using (var again = await Http.DeleteAsync($"api/v1/recordings/{id}"))
            Assert.Equal(HttpStatusCode.NotFound, again.StatusCode);
        using (var gone = await Http.GetAsync($"api/v1/recordings/{id}/file"))
            Assert.Equal(HttpStatusCode.NotFound, gone.StatusCode);
    }

    [Theory]
    [InlineData("00000000000000000000000000000000")]
    [InlineData("..")]
    [InlineData("..%2F..%2Fetc%2Fpasswd")]
    [InlineData("not-an-id")]
    public async Task UnknownOrMalformedIdsAre404(string id)
    {
        using var file = await Http.GetAsync($"api/v1/recordings/{id}/file");
        Assert.Equal(HttpStatusCode.NotFound, file.StatusCode);
        using var del = await Http.DeleteAsync($"api/v1/recordings/{id}");
        Assert.Equal(HttpStatusCode.NotFound, del.StatusCode);
    }

    [Fact]
    public async Task TheListShowsALiveEntryWhoseWriterStoppedRefreshingItAsFailed()
    {
        // What a silo that died leaves behind: a sidecar still saying live, not refreshed for longer than 10 s.
        var id = Guid.NewGuid().ToString("N");
        var file = $"ghost-{id[..6]}-20260101T000000000Z.mp4";
        File.WriteAllBytes(
            Path.Combine(fixture.RecordingFolder, file),
            [0, 0, 0, 8, (byte)'f', (byte)'t', (byte)'y', (byte)'p']
        );
        var old = DateTimeOffset.UtcNow.AddMinutes(-1).ToString("O");
        File.WriteAllText(
            Path.Combine(fixture.RecordingFolder, file + ".json"),
            $"{{\"id\":\"{id}\",\"source\":\"ghost\",\"kind\":\"raw\",\"file\":\"{file}\",\"bytes\":8,\"started\":\"{old}\","
                + $"\"ended\":null,\"state\":\"live\",\"reason\":null,\"updated\":\"{old}\"}}"
        );
        var e = await Rec.EntryAsync(Http, id);
        Assert.Equal("failed", e.GetProperty("state").GetString());
        Assert.Contains("writer stopped", e.GetProperty("reason").GetString());

        // Its stop (a fresh grain: no silo knows it) answers 200 failed once, then 404.
        var (status, stopped) = await Rec.StopAsync(Http, "ghost");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("failed", stopped.GetProperty("state").GetString());
        var (again, _) = await Rec.StopAsync(Http, "ghost");
        Assert.Equal(HttpStatusCode.NotFound, again);

        // A failed one can be deleted.
        using var del = await Http.DeleteAsync($"api/v1/recordings/{id}");
        Assert.Equal(HttpStatusCode.NoContent, del.StatusCode);
    }
}
