using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;
using Blankend.Orleans.Grains.Relay.Bridge;
using Blankend.Orleans.Tests.Gateway;
using Blankend.Orleans.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Blankend.Orleans.Tests.Relay;

/// <summary>
/// The ZeroMQ bus over real sockets: a NetMQ ROUTER in the test process, the real gateway (embedded silo, so the
/// real RelayBridge and RelayGrain) and real WebSockets. Each test has its own ROUTER, identity and gateway.
/// </summary>
[Trait(TestKind.Name, TestKind.Integration)]
public sealed class RelayBusTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    private static Task<EmbeddedGateway> StartAsync(TestRouter router, string identity, params string[] extra) =>
        StartAsync(router.Endpoint, identity, extra);

    /// <summary>Queues large enough that a burst of test frames is not thinned out by the (correct) latest-wins
    /// policy of the ingest and viewer queues: these tests count frames exactly.</summary>
    private static Task<EmbeddedGateway> StartAsync(string endpoint, string identity, params string[] extra) =>
        EmbeddedGateway.StartAsync([
            "--stream:relay_enabled=true",
            $"--stream:zmq_endpoint={endpoint}",
            $"--stream:zmq_identity={identity}",
            "--gateway:ingest_queue_size=256",
            "--gateway:viewer_queue_size=256",
            .. extra,
        ]);

    internal static async Task<JsonElement> RelayStatusAsync(EmbeddedGateway gw) =>
        await gw.Client.GetFromJsonAsync<JsonElement>("api/v1/relay/status");

    internal static async Task<JsonElement> WaitRelayAsync(
        EmbeddedGateway gw,
        Func<JsonElement, bool> condition,
        TimeSpan timeout,
        string what
    )
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var s = await RelayStatusAsync(gw);
            if (condition(s))
                return s;
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"relay status: {what} not reached within {timeout.TotalSeconds} s: {s}");
            await Task.Delay(50);
        }
    }

    private static Task<JsonElement> WaitConnectedAsync(EmbeddedGateway gw) =>
        WaitRelayAsync(gw, s => s.GetProperty("state").GetString() == "connected", Wait, "state connected");

    /// <summary>/healthz answers 200 with the bus component degraded: a bus without a link never fails the
    /// gateway.</summary>
    private static async Task AssertBusDegradedAsync(EmbeddedGateway gw)
    {
        using var health = await gw.Client.GetAsync("healthz");
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        var body = await health.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("degraded", body.GetProperty("components").GetProperty("bus").GetProperty("state").GetString());
    }

    /// <summary>A gateway on the bus as <paramref name="identity"/>, once its link to <paramref name="router"/> is
    /// connected.</summary>
    private static async Task<EmbeddedGateway> StartConnectedAsync(
        TestRouter router,
        string identity,
        params string[] extra
    )
    {
        var gw = await StartAsync(router, identity, extra);
        try
        {
            await WaitConnectedAsync(gw);
            return gw;
        }
        catch
        {
            await gw.DisposeAsync();
            throw;
        }
    }

    private static async Task<ViewerRecorder> ViewerAsync(EmbeddedGateway gw, string? source)
    {
        var viewer = await ViewerRecorder.ConnectAsync(gw, source);
        var deadline = DateTime.UtcNow + Wait;
        while (true)
        {
            var s = await gw.StreamStatusAsync();
            if (
                source is null
                    ? s.GetProperty("all_sources_subscribed").GetBoolean()
                    : s.GetProperty("subscribed_sources").EnumerateArray().Any(e => e.GetString() == source)
            )
                return viewer;
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException("viewer never subscribed");
            await Task.Delay(20);
        }
    }

    [Fact]
    public async Task OutboundFramesAreIdentityClientIdJpegWithDefaultClientIdWhenAbsent()
    {
        using var router = TestRouter.Bind();
        var identity = TestEnv.NewId("relay");
        await using var gw = await StartConnectedAsync(router, identity);

        var camera = TestEnv.NewId("cam");
        var a = TestJpeg.Tagged(1);
        var b = TestJpeg.Tagged(2);
        using (var cam = await Ws.ConnectAsync(gw.Ws("/video_in")))
        {
            await cam.SendBinaryAsync(a);
            await router.WaitForAsync(r => r.Any(m => m.ClientId == "SRC"), Wait, "[identity, SRC, jpeg]");
            await cam.CloseQuietlyAsync();
        }
        using (var cam = await Ws.ConnectAsync(gw.Ws($"/video_in?client_id={camera}")))
        {
            await cam.SendBinaryAsync(b);
            await router.WaitForAsync(r => r.Any(m => m.ClientId == camera), Wait, $"[identity, {camera}, jpeg]");
            await cam.CloseQuietlyAsync();
        }

        var src = Assert.Single(router.For("SRC"));
        Assert.Equal(identity, src.Identity);
        Assert.Equal(a, src.Data);
        var named = Assert.Single(router.For(camera));
        Assert.Equal(identity, named.Identity);
        Assert.Equal(b, named.Data);

        var status = await RelayStatusAsync(gw);
        Assert.Equal(identity, status.GetProperty("identity").GetString());
        Assert.Equal(router.Endpoint, status.GetProperty("endpoint").GetString());
        Assert.True(status.GetProperty("frames_sent").GetInt64() >= 2);
        Assert.True(status.GetProperty("bytes_sent").GetInt64() >= a.Length + b.Length);
        Assert.False(string.IsNullOrEmpty(status.GetProperty("silo").GetString()));

        // The pipeline status carries the same link figures (one place for an operator to look).
        var pipeline = await gw.Client.GetFromJsonAsync<JsonElement>("api/v1/video_processing/pipeline/status");
        var relay = pipeline.GetProperty("relay");
        Assert.Equal("connected", relay.GetProperty("state").GetString());
        Assert.Equal(identity, relay.GetProperty("identity").GetString());
        Assert.True(relay.GetProperty("frames_sent").GetInt64() >= status.GetProperty("frames_sent").GetInt64());
        var health = await gw.Client.GetFromJsonAsync<JsonElement>("healthz");
        Assert.Equal("ok", health.GetProperty("components").GetProperty("bus").GetProperty("state").GetString());

        // The same counters through the "Blankend.Relay" meter (this gateway's instance).
        var meter = gw.App.Services.GetRequiredService<RelayMetrics>().Meter;
        Assert.Equal(RelayMetrics.MeterName, meter.Name);
        var seen = new Dictionary<string, double>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter == meter)
                l.EnableMeasurementEvents(instrument);
        };
        listener.SetMeasurementEventCallback<long>((i, v, tags, _) => seen[i.Name + TagSuffix(tags)] = v);
        listener.SetMeasurementEventCallback<int>((i, v, tags, _) => seen[i.Name + TagSuffix(tags)] = v);
        listener.Start();
        listener.RecordObservableInstruments();
        Assert.True(seen["blankend.relay.frames.sent"] >= 2);
        Assert.Equal(2, seen["blankend.relay.link.state"]);
        Assert.Equal(0, seen["blankend.relay.drops{reason=queue_full}"]);
    }

    private static string TagSuffix(ReadOnlySpan<KeyValuePair<string, object?>> tags) =>
        tags.Length == 0 ? "" : "{" + string.Join(",", tags.ToArray().Select(t => $"{t.Key}={t.Value}")) + "}";

    /// <summary>ClientGrain -> RelayGrain is a one-way call per frame: this checks that the bus sees a source's frames
    /// in the order the camera sent them (Orleans does not promise it for one-way calls in general).</summary>
    [Fact]
    public async Task OutboundKeepsEachSourcesOrder()
    {
        using var router = TestRouter.Bind();
        var identity = TestEnv.NewId("relay");
        await using var gw = await StartConnectedAsync(router, identity, "--stream:send_queue_size=512");

        var camA = TestEnv.NewId("a");
        var camB = TestEnv.NewId("b");
        using var wsA = await Ws.ConnectAsync(gw.Ws($"/video_in?client_id={camA}"));
        using var wsB = await Ws.ConnectAsync(gw.Ws($"/video_in?client_id={camB}"));
        const int n = 150;
        var sendA = Task.Run(async () =>
        {
            for (var i = 0; i < n; i++)
                await wsA.SendBinaryAsync(TestJpeg.Tagged(i));
        });
        var sendB = Task.Run(async () =>
        {
            for (var i = 0; i < n; i++)
                await wsB.SendBinaryAsync(TestJpeg.Tagged(10_000 + i));
        });
        await Task.WhenAll(sendA, sendB);
        await router.WaitForAsync(
            r => r.Count(m => m.ClientId == camA) == n && r.Count(m => m.ClientId == camB) == n,
            TimeSpan.FromSeconds(20),
            $"{n} frames of each camera"
        );

        Assert.Equal(Enumerable.Range(0, n), router.For(camA).Select(m => m.Tag));
        Assert.Equal(Enumerable.Range(10_000, n), router.For(camB).Select(m => m.Tag));
        await wsA.CloseQuietlyAsync();
        await wsB.CloseQuietlyAsync();
    }

    /// <summary>A ROUTER that echoes everything back: each camera frame reaches the viewer once (not once more as a
    /// bus frame) and the ROUTER once (not again as an echo of the echo), counted once every echo came back.</summary>
    [Fact]
    public async Task EchoingRouterCausesNoDoublePathAndNoLoop()
    {
        using var router = TestRouter.Bind();
        router.Echo = true;
        var identity = TestEnv.NewId("relay");
        await using var gw = await StartConnectedAsync(router, identity);
        var camera = TestEnv.NewId("cam");
        await using var viewer = await ViewerAsync(gw, camera);
        using var cam = await Ws.ConnectAsync(gw.Ws($"/video_in?client_id={camera}"));

        const int n = 20;
        for (var i = 0; i < n; i++)
            await cam.SendBinaryAsync(TestJpeg.Tagged(i));
        // Drained when the last frame reached the viewer and the ROUTER, and the gateway has seen all n echoes
        // come back (each suppressed): a double path or a loop would have shown by then.
        await viewer.WaitForAsync(f => f.Any(x => x.Tag == n - 1), Wait, "the last frame at the viewer");
        await router.WaitForAsync(
            r => r.Any(m => m.ClientId == camera && m.Tag == n - 1),
            Wait,
            "the last frame at the ROUTER"
        );
        var status = await WaitRelayAsync(
            gw,
            s => s.GetProperty("echo_suppressed").GetInt64() >= n,
            Wait,
            $"{n} echoes suppressed"
        );

        Assert.Equal(Enumerable.Range(0, n), viewer.Frames.Select(f => f.Tag));
        Assert.All(viewer.Frames, f => Assert.Equal(camera, f.Source));
        Assert.Equal(Enumerable.Range(0, n), router.For(camera).Select(m => m.Tag));
        Assert.Equal(n, status.GetProperty("echo_suppressed").GetInt64());
        Assert.Equal(0, status.GetProperty("echoed_back").GetInt64());
        Assert.Equal(0, status.GetProperty("delivered_to_viewers").GetInt64());
        await cam.CloseQuietlyAsync();
    }

    /// <summary>Frames the ROUTER originates (still echoing whatever it gets): each reaches the viewer once, in order,
    /// with seq/source/ts meta, and goes back to its client_id exactly once (the original sent it twice).</summary>
    [Fact]
    public async Task RouterFrameReachesViewersOnceAndGoesBackToItsClientIdExactlyOnce()
    {
        using var router = TestRouter.Bind();
        router.Echo = true;
        var identity = TestEnv.NewId("relay");
        await using var gw = await StartConnectedAsync(router, identity);
        await router.WaitPeerAsync(identity, Wait);
        var source = TestEnv.NewId("bus");
        await using var viewer = await ViewerAsync(gw, source);
        await using var all = await ViewerAsync(gw, null);

        const int n = 10;
        for (var i = 0; i < n; i++)
            router.Send(identity, source, TestJpeg.Tagged(500 + i));
        // Drained when the last frame reached both viewers and came back to the ROUTER, and the ROUTER's echoes
        // of all n send-backs came back to the gateway (each suppressed): a second send-back or a viewer copy of
        // an echo would have shown by then.
        await viewer.WaitForAsync(f => f.Any(x => x.Tag == 500 + n - 1), Wait, $"{n} bus frames");
        await all.WaitForAsync(
            f => f.Any(x => x.Source == source && x.Tag == 500 + n - 1),
            Wait,
            "the last bus frame at the all-sources viewer"
        );
        await router.WaitForAsync(
            r => r.Any(m => m.ClientId == source && m.Tag == 500 + n - 1),
            Wait,
            "the last bus frame back at the ROUTER"
        );
        await WaitRelayAsync(
            gw,
            s => s.GetProperty("echo_suppressed").GetInt64() >= n,
            Wait,
            $"{n} echoes of the send-backs suppressed"
        );

        Assert.Equal(Enumerable.Range(500, n), viewer.Frames.Select(f => f.Tag));
        Assert.Equal(Enumerable.Range(1, n).Select(i => (long)i), viewer.Frames.Select(f => f.Seq));
        Assert.All(viewer.Frames, f => Assert.Equal((source, "raw"), (f.Source, f.Kind)));
        Assert.Equal(Enumerable.Range(500, n), all.Frames.Where(f => f.Source == source).Select(f => f.Tag));
        var back = router.For(source);
        Assert.Equal(Enumerable.Range(500, n), back.Select(m => m.Tag));
        Assert.All(back, m => Assert.Equal(identity, m.Identity));
        Assert.DoesNotContain(router.All, m =>
            !m.ClientId.StartsWith("__", StringComparison.Ordinal) && m.ClientId != source
        );

        var status = await RelayStatusAsync(gw);
        Assert.Equal(
            n,
            status.GetProperty("frames_received").GetInt64() - status.GetProperty("echo_suppressed").GetInt64()
        );
        Assert.Equal(n, status.GetProperty("echoed_back").GetInt64());
        Assert.Equal(n, status.GetProperty("echo_suppressed").GetInt64()); // our send-backs, echoed by the ROUTER
        Assert.Equal(n, status.GetProperty("delivered_to_viewers").GetInt64());
    }

    [Fact]
    public async Task ForwardRecvSendsOneCopyToTheForwardIdAndEchoBackOffSendsNoneBack()
    {
        using var router = TestRouter.Bind();
        var identity = TestEnv.NewId("relay");
        var forward = TestEnv.NewId("fwd");
        await using var gw = await StartConnectedAsync(
            router,
            identity,
            "--stream:forward_recv_enabled=true",
            $"--stream:forward_recv_client_id={forward}"
        );
        await router.WaitPeerAsync(identity, Wait);
        var source = TestEnv.NewId("bus");
        await using var viewer = await ViewerAsync(gw, source);

        router.Send(identity, source, TestJpeg.Tagged(1));
        await viewer.WaitForAsync(f => f.Count == 1, Wait, "the bus frame");
        await router.WaitForAsync(r => r.Any(m => m.ClientId == forward), Wait, "the forwarded copy");
        await Task.Delay(TimeSpan.FromSeconds(1.5));
        Assert.Equal([1], router.For(source).Select(m => m.Tag));
        Assert.Equal([1], router.For(forward).Select(m => m.Tag));
        Assert.Single(viewer.Frames);

        // echo_back off: the forward copy only.
        using var router2 = TestRouter.Bind();
        var identity2 = TestEnv.NewId("relay");
        await using var gw2 = await StartConnectedAsync(
            router2,
            identity2,
            "--stream:echo_back=false",
            "--stream:forward_recv_enabled=true",
            $"--stream:forward_recv_client_id={forward}"
        );
        await router2.WaitPeerAsync(identity2, Wait);
        router2.Send(identity2, source, TestJpeg.Tagged(2));
        await router2.WaitForAsync(r => r.Any(m => m.ClientId == forward), Wait, "the forwarded copy");
        await Task.Delay(TimeSpan.FromSeconds(1.5));
        Assert.Empty(router2.For(source));
        Assert.Equal([2], router2.For(forward).Select(m => m.Tag));
    }

    [Fact]
    public async Task ForwardRecvOnlyDeliversNothingToViewers()
    {
        using var router = TestRouter.Bind();
        var identity = TestEnv.NewId("relay");
        var forward = TestEnv.NewId("fwd");
        await using var gw = await StartConnectedAsync(
            router,
            identity,
            "--stream:forward_recv_enabled=true",
            $"--stream:forward_recv_client_id={forward}",
            "--stream:forward_recv_only=true"
        );
        await router.WaitPeerAsync(identity, Wait);
        var source = TestEnv.NewId("bus");
        await using var viewer = await ViewerAsync(gw, source);
        await using var all = await ViewerAsync(gw, null);

        router.Send(identity, source, TestJpeg.Tagged(3));
        await router.WaitForAsync(
            r => r.Any(m => m.ClientId == forward) && r.Any(m => m.ClientId == source),
            Wait,
            "the forwarded copy and the send-back"
        );
        await Task.Delay(TimeSpan.FromSeconds(1.5));
        Assert.Empty(viewer.Frames);
        Assert.Empty(all.Frames);
        Assert.Equal([3], router.For(forward).Select(m => m.Tag));
        Assert.Equal([3], router.For(source).Select(m => m.Tag));
    }

    [Fact]
    public async Task HeartbeatReachesTheRouterAtTheConfiguredInterval()
    {
        using var router = TestRouter.Bind();
        var identity = TestEnv.NewId("relay");
        await using var gw = await StartAsync(router, identity, "--stream:heartbeat_interval_ms=200");
        var beats = await router.WaitForAsync(
            r => r.Count(m => m.ClientId == "__heartbeat__") >= 6,
            Wait,
            "6 heartbeats"
        );

        var hb = beats.Where(m => m.ClientId == "__heartbeat__").ToList();
        Assert.All(hb, m => Assert.Equal(identity, m.Identity));
        // The interval as the service kept it: its own stamps (seq, ts_ms) in the payload. Arrival times at the
        // ROUTER are no measure: beats sent before the ZMTP handshake completed arrive together when it does.
        var first = JsonDocument.Parse(hb[0].Data).RootElement;
        var payload = JsonDocument.Parse(hb[^1].Data).RootElement;
        var perBeat =
            (payload.GetProperty("ts_ms").GetInt64() - first.GetProperty("ts_ms").GetInt64())
            / (double)(payload.GetProperty("seq").GetInt64() - first.GetProperty("seq").GetInt64());
        Assert.InRange(perBeat, 150, 400);
        Assert.Equal("heartbeat", payload.GetProperty("type").GetString());
        Assert.Equal(identity, payload.GetProperty("identity").GetString());
        Assert.True(payload.GetProperty("seq").GetInt64() >= 6);
        Assert.InRange(
            payload.GetProperty("ts_ms").GetInt64(),
            DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - 5000,
            DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()
        );

        var status = await RelayStatusAsync(gw);
        Assert.True(status.GetProperty("heartbeats_sent").GetInt64() >= 6);
        Assert.True(status.GetProperty("last_heartbeat_sent_unix_ms").GetInt64() > 0);
    }

    [Fact]
    public async Task LinkRequestIsSentOnConnectThenEveryInterval()
    {
        using var router = TestRouter.Bind();
        var identity = TestEnv.NewId("relay");
        await using var gw = await StartAsync(
            router,
            identity,
            "--stream:heartbeat_enabled=false",
            "--stream:link_request_enabled=true",
            "--stream:link_request_interval_ms=300",
            "--stream:link_request_payload=hello-bus"
        );
        var all = await router.WaitForAsync(r => r.Count(m => m.ClientId == "__link__") >= 3, Wait, "3 link requests");
        Assert.All(all.Where(m => m.ClientId == "__link__"), m =>
            Assert.Equal(("hello-bus", identity), (m.Text, m.Identity))
        );
        Assert.DoesNotContain(all, m => m.ClientId == "__heartbeat__");
    }

    [Fact]
    public async Task ReservedControlIdsNeverReachViewers()
    {
        using var router = TestRouter.Bind();
        var identity = TestEnv.NewId("relay");
        await using var gw = await StartConnectedAsync(router, identity);
        await router.WaitPeerAsync(identity, Wait);
        await using var all = await ViewerAsync(gw, null);
        var source = TestEnv.NewId("bus");

        // Valid JPEGs on every reserved id, a heartbeat like the service's own, then one real frame.
        router.Send(identity, "__heartbeat__", TestJpeg.Tagged(90));
        router.Send(identity, "__link__", TestJpeg.Tagged(91));
        router.Send(identity, "__anything__", TestJpeg.Tagged(92));
        router.Send(identity, "__heartbeat__", """{"type":"heartbeat"}"""u8.ToArray());
        router.Send(identity, "bad id!", TestJpeg.Tagged(93));
        router.Send(identity, source, "not a jpeg"u8.ToArray());
        router.Send(identity, source, TestJpeg.Tagged(94));
        await all.WaitForAsync(f => f.Count >= 1, Wait, "the real frame");
        await Task.Delay(TimeSpan.FromSeconds(1));

        var only = Assert.Single(all.Frames);
        Assert.Equal((source, 94), (only.Source, only.Tag));
        var status = await RelayStatusAsync(gw);
        Assert.Equal(4, status.GetProperty("control_received").GetInt64());
        Assert.Equal(2, status.GetProperty("heartbeats_received").GetInt64());
        Assert.True(status.GetProperty("last_heartbeat_received_unix_ms").GetInt64() > 0);
        var drops = status.GetProperty("drops_by_reason");
        Assert.Equal(1, drops.GetProperty("invalid_client_id").GetInt64());
        Assert.Equal(1, drops.GetProperty("not_jpeg").GetInt64());
        // Nothing of it went back to the bus either (only the real frame's one send-back).
        Assert.DoesNotContain(router.All, m => m.ClientId != source && m.ClientId != "__heartbeat__");
    }

    /// <summary>No ROUTER at start, then one appears, then it restarts: WebSockets serve throughout, frames sent
    /// while down are dropped and counted (not queued stale), the link comes back each time, /healthz
    /// says degraded (200) meanwhile, and shutdown does not hang.</summary>
    [Fact]
    public async Task NoRouterAtStartThenRouterAppearsAndRestarts()
    {
        var port = TestEnv.FreePort();
        var identity = TestEnv.NewId("relay");
        var gw = await StartAsync($"tcp://127.0.0.1:{port}", identity);
        try
        {
            var camera = TestEnv.NewId("cam");
            await using var viewer = await ViewerAsync(gw, camera);
            using var cam = await Ws.ConnectAsync(gw.Ws($"/video_in?client_id={camera}"));

            await WaitRelayAsync(gw, s => s.GetProperty("state").GetString() == "connecting", Wait, "connecting");
            for (var i = 0; i < 5; i++)
                await cam.SendBinaryAsync(TestJpeg.Tagged(i));
            await viewer.WaitForAsync(f => f.Count == 5, Wait, "5 frames while the bus is down");
            var down = await WaitRelayAsync(
                gw,
                s => s.GetProperty("drops_by_reason").TryGetProperty("link_down", out var d) && d.GetInt64() == 5,
                Wait,
                "5 link_down drops"
            );
            Assert.Equal(0, down.GetProperty("frames_sent").GetInt64());
            await AssertBusDegradedAsync(gw);

            // WaitConnectedAsync's 10 s is a liveness bound (protocol.md: a ROUTER that appears is connected within
            // about a second, tested within 10 s), not a speed figure.
            using (var router = TestRouter.Bind(port))
            {
                await WaitConnectedAsync(gw);
                await cam.SendBinaryAsync(TestJpeg.Tagged(100));
                var got = await router.WaitForAsync(
                    r => r.Any(m => m.ClientId == camera),
                    Wait,
                    "a frame after the ROUTER appeared"
                );
                // nothing stale from before
                Assert.Equal([100], got.Where(m => m.ClientId == camera).Select(m => m.Tag));
            }

            await WaitRelayAsync(
                gw,
                s => s.GetProperty("state").GetString() == "connecting",
                Wait,
                "connecting after the ROUTER stopped"
            );
            await cam.SendBinaryAsync(TestJpeg.Tagged(101));
            await viewer.WaitForAsync(f => f.Any(x => x.Tag == 101), Wait, "a frame while the ROUTER is gone");

            using (var router = TestRouter.Bind(port))
            {
                await WaitConnectedAsync(gw);
                await cam.SendBinaryAsync(TestJpeg.Tagged(102));
                var got = await router.WaitForAsync(
                    r => r.Any(m => m.ClientId == camera),
                    Wait,
                    "a frame after the ROUTER restarted"
                );
                Assert.Equal([102], got.Where(m => m.ClientId == camera).Select(m => m.Tag));
                var status = await RelayStatusAsync(gw);
                Assert.Equal(2, status.GetProperty("connects").GetInt64());
                Assert.Equal(1, status.GetProperty("disconnects").GetInt64());
            }
            await cam.CloseQuietlyAsync();
        }
        finally
        {
            // A liveness bound, not a speed figure (protocol.md: a process with a bus link stops within the host's
            // 8 s shutdown timeout; a socket that lingers or a poller that never stops would hang it).
            var stop = Stopwatch.StartNew();
            await gw.DisposeAsync();
            Assert.True(
                stop.Elapsed < TimeSpan.FromSeconds(8),
                $"gateway with a bus link (ROUTER gone) took {stop.Elapsed} to stop"
            );
        }
    }

    [Fact]
    public async Task UnusableEndpointIsReportedAndTheVideoPathKeepsWorking()
    {
        var identity = TestEnv.NewId("relay");
        await using var gw = await StartAsync("tcp://127.0.0.1:notaport", identity);
        var status = await WaitRelayAsync(
            gw,
            s => s.GetProperty("state").GetString() == "failed",
            Wait,
            "state failed"
        );
        Assert.Contains("notaport", status.GetProperty("detail").GetString());
        await AssertBusDegradedAsync(gw);
        var camera = TestEnv.NewId("cam");
        await using var viewer = await ViewerAsync(gw, camera);
        using var cam = await Ws.ConnectAsync(gw.Ws($"/video_in?client_id={camera}"));
        await cam.SendBinaryAsync(TestJpeg.Tagged(1));
        await viewer.WaitForAsync(f => f.Count == 1, Wait, "the frame");
        status = await RelayStatusAsync(gw);
        Assert.Equal(1, status.GetProperty("drops_by_reason").GetProperty("no_link").GetInt64());
        await cam.CloseQuietlyAsync();
    }

    [Fact]
    public async Task RelayDisabledOpensNoSocketAndSendsNothing()
    {
        // A plain TCP listener where the ROUTER would be: a DEALER would connect to it.
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        await using var gw = await EmbeddedGateway.StartAsync([
            $"--stream:zmq_endpoint=tcp://127.0.0.1:{port}",
            "--stream:heartbeat_interval_ms=100",
            "--gateway:ingest_queue_size=256",
            "--gateway:viewer_queue_size=256",
        ]);
        var camera = TestEnv.NewId("cam");
        await using var viewer = await ViewerAsync(gw, camera);
        using var cam = await Ws.ConnectAsync(gw.Ws($"/video_in?client_id={camera}"));
        for (var i = 0; i < 3; i++)
            await cam.SendBinaryAsync(TestJpeg.Tagged(i));
        await viewer.WaitForAsync(f => f.Count == 3, Wait, "3 frames");
        await Task.Delay(TimeSpan.FromSeconds(1.5));

        Assert.False(listener.Pending(), "something connected to the bus endpoint while relay_enabled=false");
        var status = await RelayStatusAsync(gw);
        Assert.Equal("disabled", status.GetProperty("state").GetString());
        var health = await gw.Client.GetFromJsonAsync<JsonElement>("healthz");
        Assert.Equal("disabled", health.GetProperty("components").GetProperty("bus").GetProperty("state").GetString());
        await cam.CloseQuietlyAsync();
    }
}

/// <summary>A ROUTER that stops reading: ZeroMQ's pipes and TCP fill up, the send queue drops its oldest frames
/// (counted), and neither the camera nor the viewer notices. Throughput-sensitive, so it runs alone.</summary>
[Trait(TestKind.Name, TestKind.Integration)]
[Collection(SerialCollection.Name)]
public sealed class RelayBackpressureTests
{
    [Fact]
    public async Task RouterThatStopsReadingNeverBlocksTheWebSocketPathAndDropsAreCounted()
    {
        using var router = TestRouter.Bind(read: false, receiveHighWatermark: 1);
        var identity = "relay-" + Guid.NewGuid().ToString("N")[..8];
        await using var gw = await EmbeddedGateway.StartAsync([
            "--stream:relay_enabled=true",
            $"--stream:zmq_endpoint={router.Endpoint}",
            $"--stream:zmq_identity={identity}",
            "--stream:send_queue_size=4",
        ]);
        await RelayBusTests.WaitRelayAsync(
            gw,
            s => s.GetProperty("state").GetString() == "connected",
            TimeSpan.FromSeconds(10),
            "connected"
        );

        var camera = "cam-" + Guid.NewGuid().ToString("N")[..8];
        await using var viewer = await ViewerRecorder.ConnectAsync(gw, camera);
        await VideoPathTests.WaitSubscribedAsync(gw.StreamStatusAsync, camera);
        using var cam = await Ws.ConnectAsync(gw.Ws($"/video_in?client_id={camera}"));

        // ~60 MB at 200 KB a frame: far more than the ROUTER's pipe, both kernel buffers and our queue hold.
        const int n = 300;
        var frames = Enumerable.Range(0, n).Select(i => TestJpeg.Tagged(i, 200_000)).ToArray();
        // Every send completes (a camera blocked by the stuck bus would hang here) and the viewer gets the last
        // frame; the 20 s bounds are liveness, not speed.
        await Task.Run(async () =>
            {
                foreach (var f in frames)
                    await cam.SendBinaryAsync(f);
            })
            .WaitAsync(TimeSpan.FromSeconds(60));
        await viewer.WaitForAsync(f => f.Any(x => x.Tag == n - 1), TimeSpan.FromSeconds(20), "the last frame");

        var status = await RelayBusTests.WaitRelayAsync(
            gw,
            s => s.GetProperty("drops_by_reason").TryGetProperty("queue_full", out var d) && d.GetInt64() > 0,
            TimeSpan.FromSeconds(10),
            "queue_full drops"
        );
        Assert.Equal("connected", status.GetProperty("state").GetString());
        Assert.InRange(status.GetProperty("queue_depth").GetInt32(), 0, 4);

        // Still answering while the bus is stuck.
        var health = await gw.Client.GetFromJsonAsync<JsonElement>("healthz");
        Assert.Equal("ok", health.GetProperty("status").GetString());
        await cam.CloseQuietlyAsync();
    }
}
