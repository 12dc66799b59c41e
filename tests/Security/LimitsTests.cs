using System.Net;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text.Json;
using Blankend.Orleans.Tests.Relay;
using Blankend.Orleans.Tests.Support;
using Xunit;
using static Blankend.Orleans.Tests.Security.SecuritySupport;

namespace Blankend.Orleans.Tests.Security;

/// <summary>Small per-address, source and codec caps (the connection total left at its default).</summary>
public sealed class SmallCapsGatewayFixture : IAsyncLifetime
{
    public EmbeddedGateway Gateway { get; private set; } = null!;

    public async Task InitializeAsync() =>
        Gateway = await EmbeddedGateway.StartAsync([
            "--limits:max_connections_per_ip=3",
            "--limits:max_sources=2",
            "--limits:max_codec_sessions=1",
            "--cluster:observer_refresh_ms=500",
        ]);

    public async Task DisposeAsync() => await Gateway.DisposeAsync();
}

/// <summary>A small connection total and a 1 s ingest idle timeout.</summary>
public sealed class TotalAndIdleGatewayFixture : IAsyncLifetime
{
    public EmbeddedGateway Gateway { get; private set; } = null!;

    public async Task InitializeAsync() =>
        Gateway = await EmbeddedGateway.StartAsync(["--limits:max_connections=2", "--stream:idle_timeout_s=1"]);

    public async Task DisposeAsync() => await Gateway.DisposeAsync();
}

internal static class Limits
{
    /// <summary>Opens every socket, retrying while slots of an earlier test's sockets are still being
    /// released.</summary>
    public static async Task<List<ClientWebSocket>> OpenAllAsync(EmbeddedGateway gw, params string[] paths)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (true)
        {
            var open = new List<ClientWebSocket>();
            foreach (var p in paths)
            {
                var h = await HandshakeAsync(gw.Ws(p));
                if (h.Socket is null)
                    break;
                open.Add(h.Socket);
            }
            if (open.Count == paths.Length)
                return open;
            foreach (var s in open)
                await s.CloseQuietlyAsync();
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException("could not open " + string.Join(", ", paths));
            await Task.Delay(200);
        }
    }

    public static async Task CloseAllAsync(IEnumerable<ClientWebSocket> sockets)
    {
        foreach (var s in sockets)
            await s.CloseQuietlyAsync();
    }

    public static async Task<HttpResponseMessage> RefusedAsync(EmbeddedGateway gw, string path)
    {
        // The refusal as a plain HTTP answer: the same request with the upgrade headers, read by HttpClient.
        var m = new HttpRequestMessage(HttpMethod.Get, path.TrimStart('/'));
        m.Headers.Connection.Add("Upgrade");
        m.Headers.Upgrade.Add(new System.Net.Http.Headers.ProductHeaderValue("websocket"));
        m.Headers.Add("Sec-WebSocket-Version", "13");
        m.Headers.Add("Sec-WebSocket-Key", Convert.ToBase64String(Guid.NewGuid().ToByteArray()));
        return await gw.Client.SendAsync(m);
    }

    public static async Task WaitSubscribedAsync(EmbeddedGateway gw, string source) =>
        await EventuallyAsync(
            async () =>
                (await gw.StreamStatusAsync())
                    .GetProperty("subscribed_sources")
                    .EnumerateArray()
                    .Any(e => e.GetString() == source),
            TimeSpan.FromSeconds(10),
            $"a viewer subscription to {source}"
        );
}

/// <summary>Each limit reached: the next connection is refused with 429 problem+json before the upgrade and
/// counted; the ones already open keep working.</summary>
[Trait(TestKind.Name, TestKind.Integration)]
public sealed class LimitsTests(SmallCapsGatewayFixture fixture) : IClassFixture<SmallCapsGatewayFixture>
{
    private EmbeddedGateway Gw => fixture.Gateway;

    [Fact]
    public async Task ThePerAddressCapRefusesTheNextSocketWith429AndTheOpenOnesKeepCarryingFrames()
    {
        var source = "cam-ip";
        var before = await ScrapeAsync(Gw);
        var open = await Limits.OpenAllAsync(
            Gw,
            $"/video_out?source={source}",
            $"/video_out?source={source}",
            $"/video_in?client_id={source}"
        );
        try
        {
            using (var r = await Limits.RefusedAsync(Gw, $"/video_out?source={source}"))
                await AssertProblemAsync(r, HttpStatusCode.TooManyRequests, "max_connections_per_ip");
            Assert.Equal(HttpStatusCode.TooManyRequests, (await HandshakeAsync(Gw.Ws("/video_out"))).Status);

            await Limits.WaitSubscribedAsync(Gw, source);
            var frame = TestJpeg.Tagged(41);
            await open[2].SendBinaryAsync(frame);
            Assert.Equal(frame, (await open[0].ReceiveMessageAsync(TimeSpan.FromSeconds(10)))!.Data);
            Assert.Equal(frame, (await open[1].ReceiveMessageAsync(TimeSpan.FromSeconds(10)))!.Data);
            var after = await ScrapeAsync(Gw);
            Assert.True(
                Sum(after, "blankend_limits_refused_total", "limit=connections_per_ip")
                    >= Sum(before, "blankend_limits_refused_total", "limit=connections_per_ip") + 2
            );
        }
        finally
        {
            await Limits.CloseAllAsync(open);
        }
    }

    [Fact]
    public async Task TheSourceCapRefusesANewSourceButNotAnotherSocketOfALiveOne()
    {
        var open = await Limits.OpenAllAsync(Gw, "/video_in?client_id=src-a", "/video_in?client_id=src-b");
        try
        {
            using (var r = await Limits.RefusedAsync(Gw, "/video_in?client_id=src-c"))
                await AssertProblemAsync(r, HttpStatusCode.TooManyRequests, "max_sources");
            var again = await HandshakeAsync(Gw.Ws("/video_in?client_id=src-a"));
            Assert.Equal(HttpStatusCode.SwitchingProtocols, again.Status);
            open.Add(again.Socket!);

            // A live source keeps working; once one ends, a new one gets its place.
            await open[0].SendBinaryAsync(TestJpeg.Tagged(1));
            await open[1].CloseQuietlyAsync();
            open.RemoveAt(1);
            await EventuallyAsync(
                async () =>
                {
                    var h = await HandshakeAsync(Gw.Ws("/video_in?client_id=src-c"));
                    if (h.Socket is null)
                        return false;
                    open.Add(h.Socket);
                    return true;
                },
                TimeSpan.FromSeconds(10),
                "src-c admitted after src-b closed"
            );
            Assert.All(open, s => Assert.Equal(WebSocketState.Open, s.State));
        }
        finally
        {
            await Limits.CloseAllAsync(open);
        }
    }

    [Fact]
    public async Task TheCodecSessionCapRefusesTheSecondVideoCodecConnection()
    {
        var before = await ScrapeAsync(Gw);
        var open = await Limits.OpenAllAsync(Gw, "/video_codec?codec=h264&client_id=codec-a");
        try
        {
            using (var r = await Limits.RefusedAsync(Gw, "/video_codec?codec=h264&client_id=codec-b"))
                await AssertProblemAsync(r, HttpStatusCode.TooManyRequests, "max_codec_sessions");
            Assert.Equal(WebSocketState.Open, open[0].State);
            var after = await ScrapeAsync(Gw);
            Assert.True(
                Sum(after, "blankend_limits_refused_total", "limit=codec_sessions")
                    > Sum(before, "blankend_limits_refused_total", "limit=codec_sessions")
            );
        }
        finally
        {
            await Limits.CloseAllAsync(open);
        }
    }
}

/// <summary>The connection total, and the ingest idle timeout (close 1001).</summary>
[Trait(TestKind.Name, TestKind.Integration)]
public sealed class TotalAndIdleLimitsTests(TotalAndIdleGatewayFixture fixture)
    : IClassFixture<TotalAndIdleGatewayFixture>
{
    private EmbeddedGateway Gw => fixture.Gateway;

    [Fact]
    public async Task TheConnectionTotalRefusesTheNextSocketWith429()
    {
        var before = await ScrapeAsync(Gw);
        var open = await Limits.OpenAllAsync(Gw, "/video_out?source=total", "/video_out");
        try
        {
            using (var r = await Limits.RefusedAsync(Gw, "/video_out?source=total"))
                await AssertProblemAsync(r, HttpStatusCode.TooManyRequests, "max_connections");
            Assert.Equal("5", (await Limits.RefusedAsync(Gw, "/video_out")).Headers.RetryAfter?.ToString());
            Assert.All(open, s => Assert.Equal(WebSocketState.Open, s.State));
            var after = await ScrapeAsync(Gw);
            Assert.True(
                Sum(after, "blankend_limits_refused_total", "limit=connections")
                    >= Sum(before, "blankend_limits_refused_total", "limit=connections") + 2
            );
        }
        finally
        {
            await Limits.CloseAllAsync(open);
        }
    }

    [Fact]
    public async Task ASilentIngestSocketIsClosedWith1001WhileOneThatSendsStaysOpen()
    {
        var before = await ScrapeAsync(Gw);
        var open = await Limits.OpenAllAsync(Gw, "/video_in?client_id=idle-silent", "/video_in?client_id=idle-busy");
        try
        {
            var silent = open[0];
            var busy = open[1];
            var reading = silent.ReceiveMessageAsync(TimeSpan.FromSeconds(10));
            for (var i = 0; i < 10; i++) // 2.5 s of frames, past the 1 s timeout
            {
                await busy.SendBinaryAsync(TestJpeg.Tagged(i));
                await Task.Delay(250);
            }
            Assert.Null(await reading); // closed by the server
            Assert.Equal(WebSocketCloseStatus.EndpointUnavailable, silent.CloseStatus);
            Assert.Equal("idle timeout", silent.CloseStatusDescription);
            Assert.Equal(WebSocketState.Open, busy.State);
            var after = await ScrapeAsync(Gw);
            Assert.True(
                Sum(after, "blankend_ingest_idle_closed_total", "endpoint=video_in")
                    > Sum(before, "blankend_ingest_idle_closed_total", "endpoint=video_in")
            );
        }
        finally
        {
            await Limits.CloseAllAsync(open);
        }
    }
}

/// <summary>The bus: a message part over stream.max_frame_bytes is refused by ZeroMQ (never buffered whole) and the
/// link recovers; new bus sources beyond limits.max_bus_sources are dropped and counted.</summary>
[Trait(TestKind.Name, TestKind.Integration)]
public sealed class BusLimitsTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(15);

    [Fact]
    public async Task AnOversizeBusMessageDropsTheLinkNotTheSiloAndNewSourcesOverTheCapAreDropped()
    {
        using var router = TestRouter.Bind();
        var identity = "relay-" + Guid.NewGuid().ToString("N")[..8];
        await using var gw = await EmbeddedGateway.StartAsync([
            "--stream:relay_enabled=true",
            $"--stream:zmq_endpoint={router.Endpoint}",
            $"--stream:zmq_identity={identity}",
            "--stream:max_frame_bytes=65536",
            "--stream:heartbeat_interval_ms=200",
            "--limits:max_bus_sources=1",
        ]);
        await RelayBusTests.WaitRelayAsync(
            gw,
            s => s.GetProperty("state").GetString() == "connected",
            Wait,
            "connected"
        );
        await router.WaitPeerAsync(identity, Wait);
        await using var viewerA = await Relay.ViewerRecorder.ConnectAsync(gw, "bus-a");
        await using var viewerB = await Relay.ViewerRecorder.ConnectAsync(gw, "bus-b");
        await Limits.WaitSubscribedAsync(gw, "bus-a");
        await Limits.WaitSubscribedAsync(gw, "bus-b");

        router.Send(identity, "bus-a", TestJpeg.Tagged(99, minBytes: 200_000));
        await RelayBusTests.WaitRelayAsync(
            gw,
            s => s.GetProperty("disconnects").GetInt64() >= 1,
            Wait,
            "the link dropped on the oversize message"
        );
        await RelayBusTests.WaitRelayAsync(
            gw,
            s => s.GetProperty("state").GetString() == "connected",
            Wait,
            "reconnected"
        );

        // The link carries frames again (the ROUTER may need the reconnected peer's heartbeat first: resend until one
        // passes).
        var deadline = DateTime.UtcNow + Wait;
        while (viewerA.Frames.Count == 0 && DateTime.UtcNow < deadline)
        {
            router.Send(identity, "bus-a", TestJpeg.Tagged(1));
            await Task.Delay(200);
        }
        var frames = await viewerA.WaitForAsync(f => f.Count > 0, Wait, "a normal bus frame after the oversize one");
        Assert.DoesNotContain(frames, f => f.Tag == 99);

        router.Send(identity, "bus-b", TestJpeg.Tagged(2));
        await RelayBusTests.WaitRelayAsync(
            gw,
            s => s.GetProperty("drops_by_reason").TryGetProperty("too_many_sources", out var n) && n.GetInt64() >= 1,
            Wait,
            "a drop for a second bus source"
        );
        await Task.Delay(500);
        Assert.Empty(viewerB.Frames);
    }
}
