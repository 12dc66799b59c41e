using System.Diagnostics;
using System.Net;
using Blankend.Orleans.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Blankend.Orleans.Tests.Codec;

/// <summary>
/// Recordings whose silo dies or stops: a real gateway process with its embedded silo (the silo holding the
/// recording), killed with SIGKILL or stopped with SIGTERM, its recordings folder then read by another gateway.
/// </summary>
[Trait(TestKind.Name, TestKind.Process)]
public sealed class RecordingProcessTests(ITestOutputHelper output)
{
    private static string NewFolder() => Path.Combine(Path.GetTempPath(), "blankend-recproc-" + Guid.NewGuid().ToString("N")[..8]);

    [Fact]
    public async Task KillingTheSiloHoldingARecordingLeavesAPlayableFileAndAStopAnswersFailedOr404()
    {
        var folder = NewFolder();
        try
        {
            var source = Rec.NewSource();
            string path;
            string id;
            const int n = 40;
            await using (var gw = ServiceProcess.StartGateway([.. TestEnv.SiloPortArgs(), $"--recording:folder={folder}"]))
            {
                await gw.WaitHealthyAsync();
                var started = await Rec.StartAsync(gw.Client, source, ",\"fps\":10");
                path = started.GetProperty("path").GetString()!;
                id = started.GetProperty("id").GetString()!;
                using var cam = await Ws.ConnectAsync(gw.Ws($"/video_in?client_id={source}"));
                await Rec.SendAsync(cam, n);
                await Task.Delay(500);
                Rec.Kill9(gw.Process.Id);
                Assert.True(await gw.WaitExitAsync(TimeSpan.FromSeconds(10)));
            }

            // Whatever its ffmpeg did after its parent died (it sees the end of its input), the file plays.
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
            FfProbe.Info info;
            while (true)
            {
                try
                {
                    info = await FfProbe.ReadAsync(path);
                    break;
                }
                catch (Exception) when (DateTime.UtcNow < deadline)
                {
                    await Task.Delay(200);
                }
            }
            output.WriteLine($"{info.Frames} of {n} frames playable after the silo's SIGKILL");
            Assert.Equal("h264", info.Codec);
            Assert.InRange(info.Frames, n - 2 * 10, n);

            // Another gateway on the same folder: the list shows it failed once its heartbeat is stale; a stop
            // answers 200 failed (the registry knows it) or 404 (nothing knows it), never 5xx.
            await using var other = await EmbeddedGateway.StartAsync([$"--recording:folder={folder}"]);
            var (status, body) = await Rec.StopAsync(other.Client, source);
            output.WriteLine($"stop right after the kill: {(int)status} {body}");
            Assert.True(status is HttpStatusCode.OK or HttpStatusCode.NotFound, $"{status}");
            if (status == HttpStatusCode.OK) Assert.Equal("failed", body.GetProperty("state").GetString());
            var entry = await Rec.WaitStateAsync(other.Client, id, "failed", TimeSpan.FromSeconds(20));
            Assert.Contains("writer stopped", entry.GetProperty("reason").GetString());
            var (after, _) = await Rec.StopAsync(other.Client, source);
            Assert.True(after is HttpStatusCode.OK or HttpStatusCode.NotFound, $"{after}");
        }
        finally
        {
            try { Directory.Delete(folder, recursive: true); }
            catch (IOException) { }
        }
    }

    [Fact]
    public async Task SigtermFinalizesALiveRecordingWithinTheShutdownTimeout()
    {
        var folder = NewFolder();
        try
        {
            var source = Rec.NewSource();
            const int n = 25;
            await using var gw = ServiceProcess.StartGateway([.. TestEnv.SiloPortArgs(), $"--recording:folder={folder}"]);
            await gw.WaitHealthyAsync();
            var started = await Rec.StartAsync(gw.Client, source, ",\"fps\":10");
            var path = started.GetProperty("path").GetString()!;
            var id = started.GetProperty("id").GetString()!;
            using (var cam = await Ws.ConnectAsync(gw.Ws($"/video_in?client_id={source}")))
            {
                await Rec.SendAsync(cam, n);
                await Task.Delay(500);
                var clock = Stopwatch.StartNew();
                gw.Terminate();
                Assert.True(await gw.WaitExitAsync(TimeSpan.FromSeconds(15)), "the process did not exit");
                output.WriteLine($"exited {clock.ElapsedMilliseconds} ms after SIGTERM, code {gw.Process.ExitCode}");
                Assert.Equal(0, gw.Process.ExitCode);
            }

            var info = await FfProbe.ReadAsync(path);
            Assert.Equal(n, info.Frames);
            await using var other = await EmbeddedGateway.StartAsync([$"--recording:folder={folder}"]);
            var entry = await Rec.EntryAsync(other.Client, id);
            output.WriteLine(entry.ToString());
            Assert.Equal("done", entry.GetProperty("state").GetString());
            Assert.Equal("service_stopping", entry.GetProperty("reason").GetString());
        }
        finally
        {
            try { Directory.Delete(folder, recursive: true); }
            catch (IOException) { }
        }
    }
}
