using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using Blankend.Orleans.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Blankend.Orleans.Tests.Cluster;

/// <summary>
/// Cluster mode on real processes: a redis-server (membership), silos and client-mode gateways started as an
/// operator starts them, then killed with SIGKILL (Process.Kill) as a crash would. Serial: the 5-second resume
/// goal is a timing claim, and several .NET processes share two cores here.
/// </summary>
[Trait(TestKind.Name, TestKind.Process)]
[Collection(SerialCollection.Name)]
public sealed class RedisClusterTests(ITestOutputHelper output)
{
    // A liveness bound, not a speed figure: the docs (deployment.md, architecture.md) promise that frames resume
    // within 5 s of a silo's kill -9.
    private static readonly TimeSpan ResumeGoal = TimeSpan.FromSeconds(5);

    private static string[] Common(RedisServer redis, string clusterId) =>
        [
            "--cluster:clustering=redis",
            $"--cluster:redis={redis.ConnectionString}",
            $"--cluster:cluster_id={clusterId}",
            "--Logging:Console:TimestampFormat=HH:mm:ss.fff ",
        ];

    /// <summary>The log entries of a process that tell the story of a silo loss, with their timestamps (the console
    /// logger writes "time level: category" on one line and the message on the next).</summary>
    private static string Story(ServiceProcess p)
    {
        var lines = p.Output.Split('\n').Select(l => l.TrimEnd()).ToArray();
        var story = new List<string>();
        for (var i = 1; i < lines.Length; i++)
        {
            var l = lines[i];
            if (
                l.Contains("Dead", StringComparison.Ordinal)
                || l.Contains("Evicting", StringComparison.Ordinal)
                || l.Contains("cluster", StringComparison.Ordinal)
                || l.Contains("subscriptions", StringComparison.Ordinal)
                || l.Contains("active (epoch", StringComparison.Ordinal)
                || l.Contains("handing a frame", StringComparison.Ordinal)
            )
                story.Add(lines[i - 1].Split(' ')[0] + " " + l.Trim());
        }
        return string.Join('\n', story);
    }

    private static ClusterSilo StartSilo(string[] common, params string[] extra) =>
        ClusterSilo.Start(null, common, extra);

    private static ServiceProcess StartGateway(string[] common) =>
        ServiceProcess.StartGateway([.. common, "--cluster:mode=client"]);

    private static async Task<JsonElement> ClusterStatusAsync(ServiceProcess gw) =>
        await gw.Client.GetFromJsonAsync<JsonElement>("api/v1/cluster/status");

    private static JsonElement? SiloEntry(JsonElement status, int siloPort) =>
        status
            .GetProperty("silos")
            .EnumerateArray()
            .Where(s => s.GetProperty("silo_port").GetInt32() == siloPort)
            .OrderBy(s => s.GetProperty("status").GetString() == "Dead") // a restarted port: the live one first
            .Select(s => (JsonElement?)s)
            .FirstOrDefault();

    /// <summary>Waits until the membership shows <paramref name="count"/> active silos. (Which silos a client-mode
    /// gateway holds connections to is up to Orleans: it connects lazily, as grain calls need a gateway.)</summary>
    private static async Task WaitActiveSilosAsync(ServiceProcess gw, int count, params ClusterSilo[] silos)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        JsonElement status = default;
        while (DateTime.UtcNow < deadline)
        {
            foreach (var s in silos)
                if (s.Process.Process.HasExited)
                    throw new InvalidOperationException($"silo exited:\n{s.Process.Output}");
            try
            {
                status = await ClusterStatusAsync(gw);
                if (status.GetProperty("active_silos").GetInt32() == count)
                    return;
            }
            catch (HttpRequestException) { }
            catch (TaskCanceledException) { }
            await Task.Delay(200);
        }
        throw new TimeoutException($"never saw {count} active silos: {status}\n--- gateway:\n{gw.Output}");
    }

    private static long Ms(long fromTimestamp, long toTimestamp) =>
        (toTimestamp - fromTimestamp) * 1000 / Stopwatch.Frequency;

    private static long Counter(JsonElement status, string name) => status.GetProperty(name).GetInt64();

    private static JsonElement ViewerOf(JsonElement status, string source) =>
        status.GetProperty("viewers").EnumerateArray().Single(v => v.GetProperty("source").GetString() == source);

    /// <summary>Tags strictly increase: each frame at most once, in order.</summary>
    private static void AssertAtMostOnceInOrder(IReadOnlyList<SeenFrame> frames)
    {
        for (var i = 1; i < frames.Count; i++)
            Assert.True(
                frames[i].Tag > frames[i - 1].Tag,
                $"frame {i}: tag {frames[i].Tag} after {frames[i - 1].Tag} (repeat or out of order)"
            );
    }

    [RedisFact]
    public async Task TwoSilosOneGatewayFramesResumeWithinFiveSecondsAfterKill9OfTheSourcesSilo()
    {
        await using var redis = await RedisServer.StartAsync();
        var common = Common(redis, "kill-" + Guid.NewGuid().ToString("N")[..8]);
        var gpuSilo = StartSilo(common, "--Orleans:Metadata:blankend_devices=gpu0,cpu0");
        // explicit: a CI host may have a GPU
        var cpuSilo = StartSilo(common, "--Orleans:Metadata:blankend_devices=cpu0");
        await using var _1 = gpuSilo.Process;
        await using var _2 = cpuSilo.Process;
        await using var gw = StartGateway(common);
        await gw.WaitHealthyAsync();
        await WaitActiveSilosAsync(gw, 2, gpuSilo, cpuSilo);

        // Roles: the GPU silo announces gpu0 in its metadata, the CPU silo only cpu0; the gateway is a client, not a
        // silo.
        var status = await ClusterStatusAsync(gw);
        output.WriteLine("cluster: " + status);
        Assert.Equal(2, status.GetProperty("silos").GetArrayLength());
        var gpuEntry = SiloEntry(status, gpuSilo.SiloPort)!.Value;
        var cpuEntry = SiloEntry(status, cpuSilo.SiloPort)!.Value;
        Assert.Equal("gpu", gpuEntry.GetProperty("role").GetString());
        Assert.Equal(
            ["gpu0", "cpu0"],
            gpuEntry.GetProperty("devices").EnumerateArray().Select(e => e.GetString()!).ToArray()
        );
        Assert.Equal("cpu", cpuEntry.GetProperty("role").GetString());
        Assert.Equal(["cpu0"], cpuEntry.GetProperty("devices").EnumerateArray().Select(e => e.GetString()!).ToArray());

        const string source = "killcam";
        await using var viewer = await ViewerRecorder.StartAsync(gw.Ws($"/video_out?source={source}&meta=1"));
        await using var camera = await CameraStream.StartAsync(gw.Ws($"/video_in?client_id={source}"), fps: 30);
        Assert.NotNull(await viewer.WaitForAsync(f => f.Tag >= 30, TimeSpan.FromSeconds(30)));

        // Kill -9 the silo that hosts the source's grain (the observer registrations and seq live there).
        var host = ClusterSilo.HostOf(await gw.StreamStatusAsync(), source);
        var victim = gpuSilo.Is(host) ? gpuSilo : cpuSilo;
        var survivor = victim == gpuSilo ? cpuSilo : gpuSilo;
        output.WriteLine(
            $"source {source} lives on {host}; killing the silo on port {victim.SiloPort} (pid {victim.Process.Process.Id}); "
                + $"the gateway holds {(await ClusterStatusAsync(gw)).GetProperty("connected_gateways")} silo gateway connection(s)"
        );
        var killedAt = Stopwatch.GetTimestamp();
        output.WriteLine($"kill -9 at {DateTime.UtcNow:HH:mm:ss.fff}");
        victim.Process.Process.Kill();

        // Membership: the gateway's status shows the victim dead. Polled with overlapping requests (one every 200 ms):
        // a status call caught by the crash hangs until its timeout and must not hide a later answer.
        var deadSeen = Task.Run(async () =>
        {
            var found = new TaskCompletionSource<(long, JsonElement)>(
                TaskCreationOptions.RunContinuationsAsynchronously
            );
            var polls = new List<Task>();
            while (!found.Task.IsCompleted && Ms(killedAt, Stopwatch.GetTimestamp()) < 30_000)
            {
                polls.Add(
                    Task.Run(async () =>
                    {
                        try
                        {
                            var s = await ClusterStatusAsync(gw);
                            if (SiloEntry(s, victim.SiloPort) is { } e && e.GetProperty("status").GetString() == "Dead")
                                found.TrySetResult((Ms(killedAt, Stopwatch.GetTimestamp()), s));
                        }
                        catch (HttpRequestException) { }
                        catch (TaskCanceledException) { }
                    })
                );
                await Task.WhenAny(found.Task, Task.Delay(200));
            }
            found.TrySetResult((-1L, default));
            await Task.WhenAll(polls);
            return await found.Task;
        });

        // Frames resume: the first frame the viewer gets that the camera sent after the kill.
        var resumed = await viewer.WaitForAsync(f => camera.SentAt(f.Tag) >= killedAt, TimeSpan.FromSeconds(20));
        var resumeMs = resumed is null ? -1 : Ms(killedAt, resumed.At);
        var (deadMs, afterKill) = await deadSeen;
        var lastBefore = viewer.Frames.LastOrDefault(f => f.At < killedAt);
        output.WriteLine(
            $"kill -9 -> victim shown Dead after {deadMs} ms; frames resumed after {resumeMs} ms "
                + $"(last frame before the kill: tag {lastBefore?.Tag}; first after: tag {resumed?.Tag}, sent {(resumed is null ? -1 : Ms(killedAt, camera.SentAt(resumed.Tag)))} ms after the kill)"
        );

        await Task.Delay(2000); // frames keep flowing on the survivor
        var sent = await camera.StopAsync();
        await Task.Delay(1500); // let the last frames drain
        var after = await gw.StreamStatusAsync();
        var frames = viewer.Frames;
        var v = ViewerOf(after, source);
        long ingestDrops = Counter(after, "ingest_drops"),
            ingestErrors = Counter(after, "ingest_errors"),
            stale = Counter(after, "stale_frames"),
            lost = Counter(after, "lost_frames"),
            viewerDrops = v.GetProperty("dropped").GetInt64();
        var accounted = frames.Count + ingestDrops + ingestErrors + stale + lost + viewerDrops;
        output.WriteLine(
            $"sent {sent}; delivered {frames.Count}; counted: ingest_drops {ingestDrops}, ingest_errors {ingestErrors}, "
                + $"stale {stale}, lost {lost}, viewer_drops {viewerDrops}; delivered + counted = {accounted}"
        );
        output.WriteLine("after: " + after);
        output.WriteLine("cluster after kill: " + afterKill);
        output.WriteLine("--- gateway log (cluster lines):\n" + Story(gw));
        output.WriteLine("--- survivor log (cluster lines):\n" + Story(survivor.Process));

        Assert.True(
            resumed is not null,
            $"frames never resumed\n--- gateway:\n{gw.Output}\n--- survivor:\n{survivor.Process.Output}"
        );
        Assert.True(
            resumeMs <= ResumeGoal.TotalMilliseconds,
            $"frames resumed after {resumeMs} ms (goal {ResumeGoal.TotalMilliseconds} ms)\n--- gateway:\n{gw.Output}"
        );
        Assert.True(
            deadMs >= 0,
            $"membership never showed the killed silo dead\n--- survivor:\n{survivor.Process.Output}"
        );
        Assert.Equal(1, afterKill.GetProperty("active_silos").GetInt32());

        // The new activation (on the survivor) numbers frames under a new epoch.
        Assert.True(frames[^1].Epoch != frames[0].Epoch, "the source's grain should have a new epoch after the kill");
        Assert.Contains($":{survivor.SiloPort}:", ClusterSilo.HostOf(await gw.StreamStatusAsync(), source));

        // Nothing delivered twice or out of order; every frame delivered or counted where it was lost. The one
        // uncountable case is a frame whose observer call was still in the dead silo's send queue when it died
        // (its Publish had already succeeded, and no later frame of that epoch reveals the gap): at most a frame or
        // two per kill. A Publish that failed after its frame got through counts a frame twice (error + delivered).
        AssertAtMostOnceInOrder(frames);
        Assert.InRange(accounted, sent - 2, sent + 1);
        Assert.False(gw.Process.HasExited, "the gateway must survive a silo loss");
        using var health = await gw.Client.GetAsync("healthz");
        Assert.Equal(200, (int)health.StatusCode);
    }

    /// <summary>The co-hosted variant: an embedded gateway (a silo itself) joins the Redis cluster of a separate
    /// silo; frames flow; when the other silo is killed, the gateway's own membership view triggers the
    /// re-registration and frames resume.</summary>
    [RedisFact]
    public async Task EmbeddedGatewayJoinsTheRedisClusterAsASiloAndRecoversFromTheOtherSilosKill()
    {
        await using var redis = await RedisServer.StartAsync();
        var common = Common(redis, "emb-" + Guid.NewGuid().ToString("N")[..8]);
        var silo = StartSilo(common);
        await using var _1 = silo.Process;
        var gwSiloPort = TestEnv.FreePort();
        await using var gw = ServiceProcess.StartGateway([
            .. common,
            $"--cluster:silo_port={gwSiloPort}",
            $"--cluster:gateway_port={TestEnv.FreePort()}",
        ]);
        await gw.WaitHealthyAsync();
        await WaitActiveSilosAsync(gw, 2, silo);
        var status = await ClusterStatusAsync(gw);
        Assert.Equal("embedded", status.GetProperty("mode").GetString());
        // the gateway's own silo: no GPU
        Assert.Equal("cpu", SiloEntry(status, gwSiloPort)!.Value.GetProperty("role").GetString());

        // Sources whose grain lands on the other silo: the kill below takes it away. Placement is Orleans' choice,
        // so sources are started (each activates its ClientGrain) until at least one lives on the silo to be
        // killed, within a bound; the stream status says where each grain lives.
        var viewers = new List<(string Source, ViewerRecorder Viewer, CameraStream Camera)>();
        try
        {
            Dictionary<string, string> sources = [];
            List<(string Source, ViewerRecorder Viewer, CameraStream Camera)> remote = [];
            for (var i = 0; i < 24 && (i < 6 || remote.Count == 0); i++)
            {
                var source = $"emb{i}";
                var viewer = await ViewerRecorder.StartAsync(gw.Ws($"/video_out?source={source}&meta=1"));
                var camera = await CameraStream.StartAsync(gw.Ws($"/video_in?client_id={source}"), fps: 15);
                viewers.Add((source, viewer, camera));
                if (i < 5)
                    continue;
                foreach (var v in viewers)
                    Assert.NotNull(await v.Viewer.WaitForAsync(f => f.Tag >= 5, TimeSpan.FromSeconds(30)));
                sources = (await gw.StreamStatusAsync())
                    .GetProperty("sources")
                    .EnumerateArray()
                    .ToDictionary(s => s.GetProperty("source").GetString()!, s => s.GetProperty("silo").GetString()!);
                remote = viewers
                    .Where(v => sources.TryGetValue(v.Source, out var host) && host.Contains($":{silo.SiloPort}:"))
                    .ToList();
            }
            output.WriteLine($"grains: {string.Join(", ", sources.Select(kv => $"{kv.Key}@{kv.Value}"))}");
            Assert.True(
                remote.Count > 0,
                $"no grain of {viewers.Count} sources landed on the silo to be killed: the kill would interrupt nothing"
            );

            var killedAt = Stopwatch.GetTimestamp();
            silo.Process.Process.Kill();
            foreach (var (source, viewer, camera) in viewers)
            {
                var resumed = await viewer.WaitForAsync(
                    f => camera.SentAt(f.Tag) >= killedAt,
                    TimeSpan.FromSeconds(15)
                );
                var ms = resumed is null ? -1 : Ms(killedAt, resumed.At);
                output.WriteLine(
                    $"{source} ({(remote.Any(r => r.Source == source) ? "grain on the killed silo" : "grain on the gateway's silo")}): frames resumed after {ms} ms"
                );
                Assert.True(
                    resumed is not null && ms <= ResumeGoal.TotalMilliseconds,
                    $"{source}: frames resumed after {ms} ms\n--- gateway:\n{Story(gw)}"
                );
                AssertAtMostOnceInOrder(viewer.Frames);
            }
            // The gateway's silo declares the other one dead, and the embedded watcher reports the change.
            var deadline = Stopwatch.GetTimestamp() + 20 * Stopwatch.Frequency;
            while (
                !gw.Output.Contains("cluster: membership", StringComparison.Ordinal)
                && Stopwatch.GetTimestamp() < deadline
            )
                await Task.Delay(100);
            output.WriteLine("--- gateway log (cluster lines):\n" + Story(gw));
            Assert.Contains("cluster: membership", gw.Output);
            string? seen = null;
            while (Stopwatch.GetTimestamp() < deadline)
            {
                try
                {
                    seen = SiloEntry(await ClusterStatusAsync(gw), silo.SiloPort)?.GetProperty("status").GetString();
                }
                catch (HttpRequestException) { }
                if (seen == "Dead")
                    break;
                await Task.Delay(100);
            }
            Assert.Equal("Dead", seen);
        }
        finally
        {
            foreach (var (_, viewer, camera) in viewers)
            {
                await camera.DisposeAsync();
                await viewer.DisposeAsync();
            }
        }
    }

    /// <summary>Placement across roles: with hw_transcode a source's frames go to the gpu0 device worker, which only
    /// the silo announcing gpu0 may host (not the CPU silo, not the gateway's co-hosted silo). When that silo is
    /// killed, no silo owns gpu0 any more: processing moves to cpu0 and processed frames resume.</summary>
    [RedisFact]
    public async Task GpuWorkerRunsOnlyOnTheSiloAnnouncingGpu0AndProcessingMovesToCpuWhenThatSiloIsKilled()
    {
        await using var redis = await RedisServer.StartAsync();
        var common = Common(redis, "gpu-" + Guid.NewGuid().ToString("N")[..8]);
        var gpuSilo = StartSilo(common, "--Orleans:Metadata:blankend_devices=gpu0,cpu0");
        var cpuSilo = StartSilo(common, "--Orleans:Metadata:blankend_devices=cpu0");
        await using var _1 = gpuSilo.Process;
        await using var _2 = cpuSilo.Process;
        // An embedded gateway: a silo of the cluster itself, announcing only cpu0.
        var gwSiloPort = TestEnv.FreePort();
        await using var gw = ServiceProcess.StartGateway([
            .. common,
            $"--cluster:silo_port={gwSiloPort}",
            $"--cluster:gateway_port={TestEnv.FreePort()}",
            "--Orleans:Metadata:blankend_devices=cpu0",
        ]);
        await gw.WaitHealthyAsync();
        await WaitActiveSilosAsync(gw, 3, gpuSilo, cpuSilo);

        const string source = "gpucam";
        foreach (
            var body in new[]
            {
                """{"hw_transcode":true}""",
                $$"""{"source":"{{source}}","enabled":true,"reencode_enabled":true,"jpeg_quality":30}""",
            }
        )
        {
            using var r = await gw.Client.PostAsync(
                "api/v1/video_processing/pipeline/config",
                new StringContent(body, System.Text.Encoding.UTF8, "application/json")
            );
            Assert.True(r.IsSuccessStatusCode, await r.Content.ReadAsStringAsync());
        }

        await using var viewer = await ViewerRecorder.StartAsync(gw.Ws($"/video_out?source={source}&meta=1"));
        await using var camera = await CameraStream.StartAsync(gw.Ws($"/video_in?client_id={source}"), fps: 15);
        Assert.NotNull(await viewer.WaitForAsync(f => f.Kind == "processed", TimeSpan.FromSeconds(30)));

        var gpu = await gw.Client.GetFromJsonAsync<JsonElement>("api/v1/video_processing/gpu/status");
        output.WriteLine("gpu/status: " + gpu);
        var workers = gpu.GetProperty("devices")
            .EnumerateArray()
            .Select(d => (Device: d.GetProperty("device").GetString()!, Silo: d.GetProperty("silo").GetString()!))
            .ToList();
        var gpu0 = Assert.Single(workers, w => w.Device == "gpu0");
        Assert.Contains($":{gpuSilo.SiloPort}:", gpu0.Silo);
        Assert.DoesNotContain(workers, w =>
            w.Device.StartsWith("gpu", StringComparison.Ordinal)
            && (w.Silo.Contains($":{cpuSilo.SiloPort}:") || w.Silo.Contains($":{gwSiloPort}:"))
        );

        var killedAt = Stopwatch.GetTimestamp();
        gpuSilo.Process.Process.Kill();
        // While gpu0 is unreachable the source's frames go out raw (the contract's bypass); once the death is
        // declared, routing picks cpu0 and processed frames come back.
        var resumed = await viewer.WaitForAsync(
            f => f.At > killedAt && f.Kind == "processed",
            TimeSpan.FromSeconds(20)
        );
        await Task.Delay(1000);
        var after = viewer.Frames.Where(f => f.At > killedAt).ToList();
        var arrivals = after.Select(f => Ms(killedAt, f.At)).ToList();
        var gap = arrivals.Zip(arrivals.Skip(1), (a, b) => b - a).Prepend(arrivals.FirstOrDefault()).Max();
        var perSecond = after
            .GroupBy(f => Ms(killedAt, f.At) / 1000)
            .Select(g =>
                $"{g.Key}s: {g.Count(f => f.Kind == "processed")} processed + {g.Count(f => f.Kind != "processed")} raw"
            );
        output.WriteLine(
            $"kill -9 of the gpu0 silo: processed frames resumed after {(resumed is null ? -1 : Ms(killedAt, resumed.At))} ms; "
                + $"largest gap between frames of any kind {gap} ms; per second: {string.Join("; ", perSecond)}"
        );
        Assert.True(
            resumed is not null && Ms(killedAt, resumed.At) <= ResumeGoal.TotalMilliseconds,
            $"processed frames did not resume within 5 s\n--- gateway:\n{Story(gw)}"
        );
        Assert.True(gap <= ResumeGoal.TotalMilliseconds, $"frames paused {gap} ms");

        gpu = await gw.Client.GetFromJsonAsync<JsonElement>("api/v1/video_processing/gpu/status");
        output.WriteLine("gpu/status after: " + gpu);
        Assert.True(
            gpu.GetProperty("hw_transcode_requested").GetBoolean(),
            "the live pipeline config must survive the silo loss"
        );
        Assert.DoesNotContain(gpu.GetProperty("devices").EnumerateArray(), d =>
            d.GetProperty("device").GetString() == "gpu0"
            && d.GetProperty("silo").GetString()!.Contains($":{gpuSilo.SiloPort}:")
        );
    }

    [RedisFact]
    public async Task CameraOnGatewayAReachesViewerOnGatewayBExactlyOnceAndKillingAGatewayTakesOnlyItsOwnSockets()
    {
        await using var redis = await RedisServer.StartAsync();
        var common = Common(redis, "xgw-" + Guid.NewGuid().ToString("N")[..8]);
        var silo1 = StartSilo(common);
        var silo2 = StartSilo(common);
        await using var _1 = silo1.Process;
        await using var _2 = silo2.Process;
        await using var gwA = StartGateway(common);
        await using var gwB = StartGateway(common);
        await gwA.WaitHealthyAsync();
        await gwB.WaitHealthyAsync();
        await WaitActiveSilosAsync(gwB, 2, silo1, silo2);

        // 1. Camera on A, viewers on B and on A: each gateway delivers each frame once, in order.
        var source = "xcam";
        await using var viewerB = await ViewerRecorder.StartAsync(gwB.Ws($"/video_out?source={source}&meta=1"));
        await using var viewerA = await ViewerRecorder.StartAsync(gwA.Ws($"/video_out?source={source}&meta=1"));
        await Gateway.VideoPathTests.WaitSubscribedAsync(gwB.StreamStatusAsync, source);
        await Gateway.VideoPathTests.WaitSubscribedAsync(gwA.StreamStatusAsync, source);
        using (var cam = await Ws.ConnectAsync(gwA.Ws($"/video_in?client_id={source}")))
        {
            // Warm-up frame: the grain activates and both registrations are in place before counting starts.
            await cam.SendBinaryAsync(TestJpeg.Tagged(0));
            Assert.NotNull(await viewerB.WaitForAsync(f => f.Tag == 0, TimeSpan.FromSeconds(20)));
            Assert.NotNull(await viewerA.WaitForAsync(f => f.Tag == 0, TimeSpan.FromSeconds(20)));
            var beforeA = await gwA.StreamStatusAsync();
            var beforeB = await gwB.StreamStatusAsync();

            // 200 frames at 100 fps: faster than a camera, slow enough that most frames are delivered.
            const int n = 200;
            using (var pace = new PeriodicTimer(TimeSpan.FromMilliseconds(10)))
            {
                for (var i = 1; i <= n; i++)
                {
                    await cam.SendBinaryAsync(TestJpeg.Tagged(i));
                    await pace.WaitForNextTickAsync();
                }
            }
            await viewerB.WaitForAsync(f => f.Tag == n, TimeSpan.FromSeconds(20));
            await viewerA.WaitForAsync(f => f.Tag == n, TimeSpan.FromSeconds(5));
            await Task.Delay(500);

            var afterA = await gwA.StreamStatusAsync();
            var afterB = await gwB.StreamStatusAsync();
            long Delta(JsonElement a, JsonElement b, string name) => Counter(a, name) - Counter(b, name);
            foreach (
                var (name, viewer, after, before, ingestAfter, ingestBefore) in new[]
                {
                    ("B (cross-gateway)", viewerB, afterB, beforeB, afterA, beforeA),
                    ("A (same gateway)", viewerA, afterA, beforeA, afterA, beforeA),
                }
            )
            {
                var frames = viewer.Frames.Where(f => f.Tag >= 1).ToList();
                AssertAtMostOnceInOrder(frames);
                var viewerDrops =
                    ViewerOf(after, source).GetProperty("dropped").GetInt64()
                    - ViewerOf(before, source).GetProperty("dropped").GetInt64();
                long ingestDrops = Delta(ingestAfter, ingestBefore, "ingest_drops"),
                    ingestErrors = Delta(ingestAfter, ingestBefore, "ingest_errors");
                long stale = Delta(after, before, "stale_frames"),
                    lost = Delta(after, before, "lost_frames");
                output.WriteLine(
                    $"viewer on {name}: delivered {frames.Count} of {n}; ingest_drops {ingestDrops} (A), ingest_errors {ingestErrors} (A), "
                        + $"stale {stale}, lost {lost}, viewer_drops {viewerDrops}"
                );
                Assert.Equal(0, ingestErrors);
                Assert.Equal(n, frames.Count + ingestDrops + stale + lost + viewerDrops);
                Assert.Equal(n, frames[^1].Tag); // the newest frame is never the one dropped
            }
            await cam.CloseQuietlyAsync();
        }

        // 2. A gateway killed takes only its own sockets: B's own camera -> B's viewer keeps flowing without a gap,
        // B stays healthy, and the cluster still has both silos (a client-mode gateway is not a silo).
        var local = "bcam";
        await using var localViewer = await ViewerRecorder.StartAsync(gwB.Ws($"/video_out?source={local}&meta=1"));
        await using var localCamera = await CameraStream.StartAsync(gwB.Ws($"/video_in?client_id={local}"), fps: 30);
        await using var crossCamera = await CameraStream.StartAsync(gwA.Ws($"/video_in?client_id={source}"), fps: 30);
        Assert.NotNull(await localViewer.WaitForAsync(f => f.Tag >= 15, TimeSpan.FromSeconds(20)));
        Assert.NotNull(await viewerB.WaitForAsync(f => f.Tag >= 15 && f.Epoch != 0, TimeSpan.FromSeconds(20)));
        var beforeKill = await gwB.StreamStatusAsync();
        var killedAt = Stopwatch.GetTimestamp();
        gwA.Process.Kill();
        await Task.Delay(3000);
        var sent = await localCamera.StopAsync();
        await Task.Delay(500);
        var afterKill = await gwB.StreamStatusAsync();

        var localFrames = localViewer.Frames;
        AssertAtMostOnceInOrder(localFrames);
        var afterKillFrames = localFrames.Where(f => f.At > killedAt).ToList();
        var maxGapMs = afterKillFrames.Zip(afterKillFrames.Skip(1), (a, b) => Ms(a.At, b.At)).DefaultIfEmpty(0).Max();
        output.WriteLine(
            $"gateway A killed: B's own viewer got {afterKillFrames.Count} frames in the next 3 s (largest gap {maxGapMs} ms); "
                + $"lost_frames delta {Counter(afterKill, "lost_frames") - Counter(beforeKill, "lost_frames")}"
        );
        Assert.True(
            afterKillFrames.Count >= 60,
            $"B's own stream stalled after A was killed: {afterKillFrames.Count} frames in 3 s"
        );
        Assert.True(maxGapMs < 1000, $"B's own stream paused {maxGapMs} ms after A was killed");
        // Every frame of B's own camera delivered or counted (B has no other camera: its ingest counters are bcam's).
        var watched = afterKill
            .GetProperty("watched")
            .EnumerateArray()
            .Single(w => w.GetProperty("source").GetString() == local);
        Assert.Equal(0, watched.GetProperty("lost").GetInt64());
        Assert.Equal(0, Counter(afterKill, "ingest_errors"));
        Assert.Equal(
            sent,
            localFrames.Count
                + Counter(afterKill, "ingest_drops")
                + watched.GetProperty("stale").GetInt64()
                + ViewerOf(afterKill, local).GetProperty("dropped").GetInt64()
        );
        Assert.Null(localViewer.Ended);
        Assert.False(gwB.Process.HasExited);
        var cluster = await ClusterStatusAsync(gwB);
        Assert.Equal(2, cluster.GetProperty("active_silos").GetInt32());
        using var health = await gwB.Client.GetAsync("healthz");
        Assert.Equal(200, (int)health.StatusCode);
    }
}
