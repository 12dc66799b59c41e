using System.Diagnostics;
using System.Net;
using System.Text.Json;
using Blankend.Orleans.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Blankend.Orleans.Tests.Codec;

/// <summary>
/// Recordings whose silo dies or stops: a real gateway process with its embedded silo (the silo holding the
/// recording), killed with SIGKILL or stopped with SIGTERM, its recordings folder then read by another gateway;
/// and a split deployment (a silo process, a client-mode gateway process, one shared recordings folder) whose
/// silo alone is killed with SIGKILL while the gateway stays up.
/// </summary>
[Trait(TestKind.Name, TestKind.Process)]
public sealed class RecordingProcessTests(ITestOutputHelper output)
{
    private static string NewFolder() =>
        Path.Combine(Path.GetTempPath(), "blankend-recproc-" + Guid.NewGuid().ToString("N")[..8]);

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
            await using (
                var gw = ServiceProcess.StartGateway([.. TestEnv.SiloPortArgs(), $"--recording:folder={folder}"])
            )
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
            if (status == HttpStatusCode.OK)
                Assert.Equal("failed", body.GetProperty("state").GetString());
            var entry = await Rec.WaitStateAsync(other.Client, id, "failed", TimeSpan.FromSeconds(20));
            Assert.Contains("writer stopped", entry.GetProperty("reason").GetString());
            var (after, _) = await Rec.StopAsync(other.Client, source);
            Assert.True(after is HttpStatusCode.OK or HttpStatusCode.NotFound, $"{after}");
        }
        finally
        {
            try
            {
                Directory.Delete(folder, recursive: true);
            }
            catch (IOException) { }
        }
    }

    /// <summary>
    /// Split mode, the way issue 15 means it: a silo process holds the recording (its RecordingGrain, its ffmpeg)
    /// and a separate client-mode gateway process serves the API; both see the same recordings folder. The silo
    /// alone is killed with SIGKILL while the camera still sends; the gateway stays up and keeps answering, and a
    /// new silo on the same ports takes over the cluster.
    /// </summary>
    [Fact]
    public async Task KillingTheSiloProcessBehindAClientModeGatewayLeavesAPlayableFileAndTheGatewayAnswering()
    {
        var folder = NewFolder();
        var siloPort = TestEnv.FreePort();
        var gatewayPort = TestEnv.FreePort();
        string[] siloArgs =
        [
            $"--cluster:silo_port={siloPort}",
            $"--cluster:primary_silo_port={siloPort}",
            $"--cluster:gateway_port={gatewayPort}",
            $"--recording:folder={folder}",
        ];
        const int fps = 10; // the camera's rate, and the recording's
        var silo = ServiceProcess.StartSilo(siloArgs);
        ServiceProcess? silo2 = null;
        try
        {
            await using var gw = ServiceProcess.StartGateway(
                "--cluster:mode=client",
                $"--cluster:gateway_ports:0={gatewayPort}",
                $"--recording:folder={folder}"
            );
            await gw.WaitHealthyAsync();
            var source = Rec.NewSource();
            var started = await Rec.StartAsync(gw.Client, source, $",\"fps\":{fps}");
            var path = started.GetProperty("path").GetString()!;
            var id = started.GetProperty("id").GetString()!;
            Assert.StartsWith(folder, path, StringComparison.Ordinal);

            // A live camera at 10 fps, still sending when the silo dies (and for a second after: the gateway must
            // take frames it can no longer deliver without falling over).
            using var cam = await Ws.ConnectAsync(gw.Ws($"/video_in?client_id={source}"));
            var sent = 0;
            using var stopFeed = new CancellationTokenSource();
            var feeder = Task.Run(async () =>
            {
                try
                {
                    while (!stopFeed.IsCancellationRequested)
                    {
                        await cam.SendBinaryAsync(TestJpeg.Tagged(Volatile.Read(ref sent)));
                        Interlocked.Increment(ref sent);
                        await Task.Delay(1000 / fps, stopFeed.Token);
                    }
                }
                catch (OperationCanceledException) { }
                // the gateway may close the socket once its silo is gone
                catch (System.Net.WebSockets.WebSocketException) { }
            });
            var writer = await Rec.WriterPidAsync(path, TimeSpan.FromSeconds(15));
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
            while (Volatile.Read(ref sent) < 40 && DateTime.UtcNow < deadline)
                await Task.Delay(20);
            var sentBeforeKill = Volatile.Read(ref sent);
            Rec.Kill9(silo.Process.Id);
            var sentByKill = Volatile.Read(ref sent);
            Assert.True(await silo.WaitExitAsync(TimeSpan.FromSeconds(10)), "the silo did not die");
            await Task.Delay(1000);
            await stopFeed.CancelAsync();
            await feeder;
            output.WriteLine($"camera socket {cam.State} after {Volatile.Read(ref sent)} frames sent");
            Assert.False(gw.Process.HasExited, $"the gateway died with its silo:\n{gw.Output}");

            // (a) The stop through the gateway: 200 failed with a reason, or 404, never 5xx (Rec.StopAsync asserts
            // < 500 on every answer). The gateway's Orleans client sees the connection drop at once (the kernel
            // closes the dead process's sockets), so the call should fail fast and the registry answer; the bound
            // is generous because on a loaded two-core host a call may instead wait for its response timeout, and
            // the HTTP client gives up after 10 s (a timeout is retried, a 5xx is not).
            var clock = Stopwatch.StartNew();
            HttpStatusCode status;
            JsonElement body;
            while (true)
            {
                try
                {
                    (status, body) = await Rec.StopAsync(gw.Client, source);
                    break;
                }
                catch (TaskCanceledException) when (clock.Elapsed < TimeSpan.FromSeconds(30))
                {
                    output.WriteLine($"stop timed out after {clock.ElapsedMilliseconds} ms; retrying");
                }
            }
            output.WriteLine($"stop after the silo's SIGKILL ({clock.ElapsedMilliseconds} ms): {(int)status} {body}");
            Assert.True(status is HttpStatusCode.OK or HttpStatusCode.NotFound, $"{status}: {body}");
            if (status == HttpStatusCode.OK)
            {
                Assert.Equal("failed", body.GetProperty("state").GetString());
                Assert.False(string.IsNullOrWhiteSpace(body.GetProperty("reason").GetString()), body.ToString());
                Assert.Equal(id, body.GetProperty("id").GetString());
            }

            // ffmpeg, orphaned, sees its stdin close and writes its last fragment: wait until it is gone.
            deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
            while (Alive(writer) && DateTime.UtcNow < deadline)
                await Task.Delay(100);
            Assert.False(Alive(writer), $"ffmpeg [{writer}] still runs 15 s after its silo died");

            // (c) The file plays, with the frames sent up to the kill, at most 2 s (20 frames at 10 fps) lost.
            var info = await FfProbe.ReadAsync(path);
            output.WriteLine(
                $"{info.Frames} frames playable; {sentBeforeKill} sent before the silo's SIGKILL ({sentByKill} by its return)"
            );
            Assert.Equal("h264", info.Codec);
            Assert.InRange(info.Frames, sentBeforeKill - 2 * fps, sentByKill);

            // (b) The list and the download, through the gateway alone (no silo runs now): 200, the file listed.
            var entry = await Rec.EntryAsync(gw.Client, id);
            output.WriteLine($"listed with no silo: {entry}");
            Assert.Equal(Path.GetFileName(path), entry.GetProperty("file").GetString());
            Assert.Equal(new FileInfo(path).Length, entry.GetProperty("bytes").GetInt64());
            using (var r = await gw.Client.GetAsync($"api/v1/recordings/{id}/file"))
            {
                Assert.Equal(HttpStatusCode.OK, r.StatusCode);
                Assert.Equal(await File.ReadAllBytesAsync(path), await r.Content.ReadAsByteArrayAsync());
            }

            // A new silo on the same ports: the same gateway reconnects; its list shows the recording failed (the
            // writer's heartbeat went stale) with the reason, and a stop is answered by the new silo's fresh
            // RecordingGrain (200 failed once, then 404), not by the gateway's no-silo fallback, never 5xx.
            silo2 = ServiceProcess.StartSilo(siloArgs);
            clock.Restart();
            while (true)
            {
                (status, body) = await Rec.StopAsync(gw.Client, source);
                var reason = status == HttpStatusCode.OK ? body.GetProperty("reason").GetString() : null;
                if (reason is null || !reason.Contains("does not answer", StringComparison.Ordinal))
                    break;
                Assert.True(
                    clock.Elapsed < TimeSpan.FromSeconds(45),
                    $"the gateway never reached the new silo:\n{silo2.Output}"
                );
                await Task.Delay(500);
            }
            output.WriteLine(
                $"stop through the new silo ({clock.ElapsedMilliseconds} ms after its start): {(int)status} {body}"
            );
            Assert.True(status is HttpStatusCode.OK or HttpStatusCode.NotFound, $"{status}: {body}");
            if (status == HttpStatusCode.OK)
                Assert.Equal("failed", body.GetProperty("state").GetString());
            entry = await Rec.WaitStateAsync(gw.Client, id, "failed", TimeSpan.FromSeconds(20));
            output.WriteLine($"listed after the new silo: {entry}");
            Assert.Contains("writer stopped", entry.GetProperty("reason").GetString());
            // 404 now, or (when the new silo answered the first stop before the heartbeat went stale) 200 failed
            // once, as the grain marks the stale entry failed.
            var (after, afterBody) = await Rec.StopAsync(gw.Client, source);
            Assert.True(after is HttpStatusCode.OK or HttpStatusCode.NotFound, $"{after}: {afterBody}");
            Assert.Equal(info.Frames, (await FfProbe.ReadAsync(path)).Frames);
        }
        finally
        {
            if (silo2 is not null)
                await silo2.DisposeAsync();
            await silo.DisposeAsync();
            try
            {
                Directory.Delete(folder, recursive: true);
            }
            catch (IOException) { }
        }
    }

    /// <summary>Whether a process runs (a zombie, dead but not reaped by whoever adopted it, does not).</summary>
    private static bool Alive(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)..][0] != 'Z';
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
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
            await using var gw = ServiceProcess.StartGateway([
                .. TestEnv.SiloPortArgs(),
                $"--recording:folder={folder}",
            ]);
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
            try
            {
                Directory.Delete(folder, recursive: true);
            }
            catch (IOException) { }
        }
    }
}
