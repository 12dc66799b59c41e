using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using Blankend.Orleans.Tests.Support;
using Xunit;
using Xunit.Abstractions;
using TestRouter = Blankend.Orleans.Tests.Relay.TestRouter;

namespace Blankend.Orleans.Tests.Cluster;

/// <summary>
/// The bus link on real processes: a Redis cluster of 2 silo processes and 1 client-mode gateway, relay enabled
/// towards a real ZeroMQ ROUTER in the test process. kill -9 of the silo holding the link (where the RelayGrain
/// is active): the other silo opens it (one DEALER for the identity again), frames from the bus reach the viewer
/// again and camera frames reach the ROUTER again, within 5 s. Serial: a timing claim on two shared cores.
/// </summary>
[Trait(TestKind.Name, TestKind.Process)]
[Collection(SerialCollection.Name)]
public sealed class RelayFailoverProcessTests(ITestOutputHelper output)
{
    private static readonly TimeSpan ResumeGoal = TimeSpan.FromSeconds(5);

    private static ClusterSilo StartSilo(string[] common) => ClusterSilo.Start(null, common);

    private static long Ms(long from, long to) => (to - from) * 1000 / Stopwatch.Frequency;

    private static async Task<JsonElement?> RelayStatusAsync(ServiceProcess gw)
    {
        try
        {
            return await gw.Client.GetFromJsonAsync<JsonElement>("api/v1/relay/status");
        }
        catch (HttpRequestException)
        {
            return null;
        }
        catch (TaskCanceledException)
        {
            return null;
        }
    }

    [RedisFact]
    public async Task KillingTheSiloHoldingTheBusLinkMovesItToTheOtherSiloAndBusFramesResumeWithinFiveSeconds()
    {
        var clock = Stopwatch.StartNew();
        await using var redis = await RedisServer.StartAsync();
        using var router = TestRouter.Bind();
        var identity = "relayfo-" + Guid.NewGuid().ToString("N")[..8];
        string[] common =
        [
            "--cluster:clustering=redis",
            $"--cluster:redis={redis.ConnectionString}",
            $"--cluster:cluster_id=relay-{identity}",
            "--stream:relay_enabled=true",
            $"--stream:zmq_endpoint={router.Endpoint}",
            $"--stream:zmq_identity={identity}",
            "--stream:heartbeat_interval_ms=200",
            "--Logging:Console:TimestampFormat=HH:mm:ss.fff ",
        ];
        var a = StartSilo(common);
        var b = StartSilo(common);
        await using var _1 = a.Process;
        await using var _2 = b.Process;
        await using var gw = ServiceProcess.StartGateway([.. common, "--cluster:mode=client"]);
        await gw.WaitHealthyAsync(TimeSpan.FromSeconds(60));

        // Both silos must be members before the kill (a second silo still validating its connectivity would leave
        // nobody to take the link over).
        var joinDeadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        var active = 0;
        while (DateTime.UtcNow < joinDeadline && active != 2)
        {
            try
            {
                active = (await gw.Client.GetFromJsonAsync<JsonElement>("api/v1/cluster/status"))
                    .GetProperty("active_silos")
                    .GetInt32();
            }
            catch (HttpRequestException) { }
            catch (TaskCanceledException) { }
            if (active != 2)
                await Task.Delay(200);
        }
        Assert.True(
            active == 2,
            $"the two silos never both joined ({active} active)\n--- A (last lines):\n"
                + string.Join('\n', a.Process.Output.Split('\n').TakeLast(30))
                + "\n--- B (last lines):\n"
                + string.Join('\n', b.Process.Output.Split('\n').TakeLast(30))
        );

        // The link comes up on one silo: the ROUTER hears the identity's heartbeat.
        await router.WaitForAsync(
            r => r.Any(m => m.Identity == identity && m.ClientId == "__heartbeat__"),
            TimeSpan.FromSeconds(60),
            "a heartbeat"
        );
        JsonElement status = default;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            if (await RelayStatusAsync(gw) is { } s && s.GetProperty("state").GetString() == "connected")
            {
                status = s;
                break;
            }
            await Task.Delay(100);
        }
        Assert.True(
            status.ValueKind == JsonValueKind.Object,
            "the relay status never said connected\n--- gateway:\n" + gw.Output
        );
        var holderName = status.GetProperty("silo").GetString()!;
        var victim = holderName.Contains($":{a.SiloPort}", StringComparison.Ordinal) ? a : b;
        var survivor = victim == a ? b : a;
        Assert.Contains($":{victim.SiloPort}", holderName);
        output.WriteLine($"link held by {holderName} after {clock.ElapsedMilliseconds} ms");

        // Bus -> service: the ROUTER sends frames of bus client 'buscam' at 30 fps; a viewer watches them.
        const string busSource = "buscam";
        await using var viewer = await ViewerRecorder.StartAsync(gw.Ws($"/video_out?source={busSource}&meta=1"));
        // Service -> bus: a camera on the gateway; the ROUTER records its frames.
        const string camSource = "relaycam";
        var busSentAt = new ConcurrentDictionary<int, long>();
        using var stopBus = new CancellationTokenSource();
        var busSender = Task.Run(async () =>
        {
            var period = TimeSpan.FromSeconds(1.0 / 30);
            var start = Stopwatch.GetTimestamp();
            for (var tag = 1; !stopBus.IsCancellationRequested; tag++)
            {
                busSentAt[tag] = Stopwatch.GetTimestamp();
                router.Send(identity, busSource, TestJpeg.Tagged(tag));
                var due = period * tag - Stopwatch.GetElapsedTime(start);
                if (due > TimeSpan.Zero)
                    await Task.Delay(due);
            }
        });
        await using var camera = await CameraStream.StartAsync(gw.Ws($"/video_in?client_id={camSource}"), fps: 30);
        Assert.NotNull(await viewer.WaitForAsync(f => f.Tag >= 30, TimeSpan.FromSeconds(30)));
        await router.WaitForAsync(
            r => r.Count(m => m.ClientId == camSource) >= 30,
            TimeSpan.FromSeconds(30),
            "camera frames on the bus"
        );

        var killedAt = Stopwatch.GetTimestamp();
        var killedAtMs = Environment.TickCount64;
        victim.Process.Process.Kill();

        var busResumed = await viewer.WaitForAsync(
            f => busSentAt.TryGetValue(f.Tag, out var t) && t >= killedAt,
            TimeSpan.FromSeconds(20)
        );
        var busResumeMs = busResumed is null ? -1 : Ms(killedAt, busResumed.At);
        bool AfterKill(TestRouter.Received m) =>
            m.ClientId == camSource && m.AtMs > killedAtMs && camera.SentAt(m.Tag) >= killedAt;
        long camResumeMs = -1;
        try
        {
            var camOnBus = await router.WaitForAsync(
                r => r.Any(AfterKill),
                TimeSpan.FromSeconds(20),
                "camera frames sent after the kill"
            );
            camResumeMs = camOnBus.First(AfterKill).AtMs - killedAtMs;
        }
        catch (TimeoutException e)
        {
            output.WriteLine(e.Message);
        }

        // The link now lives on the survivor, and only there: one DEALER per identity.
        JsonElement after = default;
        deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (DateTime.UtcNow < deadline)
        {
            if (
                await RelayStatusAsync(gw) is { } s
                && s.GetProperty("state").GetString() == "connected"
                && s.GetProperty("silo").GetString()!.Contains($":{survivor.SiloPort}", StringComparison.Ordinal)
            )
            {
                after = s;
                break;
            }
            await Task.Delay(100);
        }
        await Task.Delay(1000);
        await stopBus.CancelAsync();
        await busSender;
        await camera.StopAsync();
        output.WriteLine(
            $"kill -9 of the link's silo (port {victim.SiloPort}): bus -> viewer resumed after {busResumeMs} ms, "
                + $"camera -> bus after {camResumeMs} ms; link now: {after}; whole test {clock.ElapsedMilliseconds} ms"
        );

        output.WriteLine(
            "--- survivor (bus link lines):\n"
                + string.Join(
                    '\n',
                    survivor
                        .Process.Output.Split('\n')
                        .Where(l => l.Contains("bus link", StringComparison.Ordinal))
                        .TakeLast(20)
                )
        );
        Assert.True(
            busResumed is not null,
            $"bus frames never reached the viewer again\n--- survivor:\n{survivor.Process.Output}"
        );
        Assert.True(busResumeMs <= ResumeGoal.TotalMilliseconds, $"bus frames resumed after {busResumeMs} ms");
        Assert.True(
            camResumeMs >= 0 && camResumeMs <= ResumeGoal.TotalMilliseconds,
            $"camera frames reached the bus again after {camResumeMs} ms"
        );
        Assert.True(after.ValueKind == JsonValueKind.Object, "the relay status never showed the link on the survivor");
        Assert.False(gw.Process.HasExited, "the gateway must survive a silo loss");
    }
}
