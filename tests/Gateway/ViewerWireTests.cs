using System.Net.Http.Json;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using Blankend.Orleans.Gateway.Fanout;
using Blankend.Orleans.Tests.Support;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Blankend.Orleans.Tests.Gateway;

/// <summary>
/// The <c>/video_out</c> send path on the real gateway (Kestrel, the embedded silo): what a raw TCP client reads is
/// the same WebSocket byte sequence the WebSocket wrote before the pre-framed path, and viewers that come and go
/// by the hundred while a camera runs leave nothing behind.
/// </summary>
[Trait(TestKind.Name, TestKind.Integration)]
public sealed class ViewerWireTests(GatewayFixture fixture) : IClassFixture<GatewayFixture>
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);
    private EmbeddedGateway Gw => fixture.Gateway;

    private static string NewSource() => "cam-" + Guid.NewGuid().ToString("N")[..8];

    [Fact]
    public async Task ARawClientReadsTheByteSequenceTheWebSocketWroteBefore()
    {
        var source = NewSource();
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(Gw.Http.Host, Gw.Http.Port);
        var stream = tcp.GetStream();
        var key = Convert.ToBase64String(Guid.NewGuid().ToByteArray());
        var request =
            $"GET /video_out?source={source}&meta=1 HTTP/1.1\r\nHost: {Gw.Http.Authority}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + $"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(request));
        var head = await ReadHeadAsync(stream);
        Assert.StartsWith("HTTP/1.1 101", head, StringComparison.Ordinal);
        Assert.Contains("Upgrade: websocket", head, StringComparison.OrdinalIgnoreCase);

        await VideoPathTests.WaitSubscribedAsync(Gw.StreamStatusAsync, source);
        using var cam = await Ws.ConnectAsync(Gw.Ws($"/video_in?client_id={source}"));
        var sent = new[] { TestJpeg.Tagged(1), TestJpeg.Tagged(2, 70_000), TestJpeg.Tagged(3, 130_000) };
        foreach (var f in sent)
            await cam.SendBinaryAsync(f);

        // Read exactly the three (meta, frame) pairs, as raw bytes.
        using var raw = new MemoryStream();
        var buffer = new byte[64 * 1024];
        using var cts = new CancellationTokenSource(Wait);
        while (true)
        {
            var frames = TryParse(raw.ToArray());
            if (frames is { Count: >= 6 })
                break;
            var n = await stream.ReadAsync(buffer, cts.Token);
            Assert.True(n > 0, "the server closed the connection");
            raw.Write(buffer, 0, n);
        }
        var bytes = raw.ToArray();
        // A plain-TCP viewer: the bytes went straight to the socket (SocketOutput), Kestrel's 101 before them.
        var hub = Gw.App.Services.GetRequiredService<ViewerHub>();
        Assert.True(hub.Viewers.Single(v => v.Source == source).WritesToSocket);
        var parsed = ViewerSendPathTests.ParseServerFrames(bytes);
        Assert.Equal(6, parsed.Count);

        // The same messages through a server WebSocket (the pre-change path: SendAsync of the text, then the
        // binary) give the same bytes.
        using var expected = new MemoryStream();
        using (
            var ws = WebSocket.CreateFromStream(
                expected,
                new WebSocketCreationOptions { IsServer = true, KeepAliveInterval = Timeout.InfiniteTimeSpan }
            )
        )
        {
            for (var i = 0; i < 6; i += 2)
            {
                await ws.SendAsync(parsed[i].Payload, WebSocketMessageType.Text, true, default);
                await ws.SendAsync(parsed[i + 1].Payload, WebSocketMessageType.Binary, true, default);
            }
        }
        Assert.Equal(expected.ToArray(), bytes);
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(sent[i], parsed[2 * i + 1].Payload);
            var meta = JsonDocument.Parse(parsed[2 * i].Payload).RootElement;
            Assert.Equal(source, meta.GetProperty("source").GetString());
            Assert.Equal(sent[i].Length, meta.GetProperty("bytes").GetInt32());
        }

        // A ping is answered with a pong carrying its payload; a close with close 1000 "bye".
        await stream.WriteAsync(MaskedFrame(0x9, "hi"u8.ToArray()));
        await stream.WriteAsync(MaskedFrame(0x8, [0x03, 0xE8]));
        var rest = new MemoryStream();
        while (true)
        {
            var n = await stream.ReadAsync(buffer, cts.Token);
            if (n == 0)
                break;
            rest.Write(buffer, 0, n);
        }
        var control = ViewerSendPathTests.ParseServerFrames(rest.ToArray());
        Assert.Equal(new[] { 0xA, 0x8 }, control.Select(f => f.Opcode));
        Assert.Equal("hi"u8.ToArray(), control[0].Payload);
        Assert.Equal(new byte[] { 0x03, 0xE8, (byte)'b', (byte)'y', (byte)'e' }, control[1].Payload);
        await cam.CloseQuietlyAsync();
    }

    [Fact]
    public async Task AViewerOverTlsGetsEveryFrameThroughTheTlsLayerNotTheSocket()
    {
        using var ca = TestCertificates.CreateCa("blankend-test-ca");
        using var leaf = TestCertificates.CreateLeaf(ca, "127.0.0.1", ["1.3.6.1.5.5.7.3.1"]);
        var cert = X509CertificateLoader.LoadPkcs12(leaf.Export(X509ContentType.Pkcs12), null);
        await using var gw = await EmbeddedGateway.StartAsync(["--urls", "https://127.0.0.1:0"], configure: b =>
            b.WebHost.ConfigureKestrel(k => k.ConfigureHttpsDefaults(h => h.ServerCertificate = cert))
        );
        Assert.Equal("https", gw.Http.Scheme);
        using var http = new HttpClient(
            new HttpClientHandler
            {
                ServerCertificateCustomValidationCallback = (_, c, _, _) => c?.Thumbprint == cert.Thumbprint,
            }
        )
        {
            BaseAddress = gw.Http,
        };
        var source = NewSource();
        var wss = (string path) => new Uri($"wss://{gw.Http.Authority}{path}");
        using var viewer = await ConnectTlsAsync(wss($"/video_out?source={source}"), cert);
        await VideoPathTests.WaitSubscribedAsync(
            async () => await http.GetFromJsonAsync<JsonElement>("api/v1/stream/status"),
            source
        );
        using var cam = await ConnectTlsAsync(wss($"/video_in?client_id={source}"), cert);
        var sent = new[] { TestJpeg.Tagged(1), TestJpeg.Tagged(2, 70_000), TestJpeg.Tagged(3, 130_000) };
        foreach (var f in sent)
            await cam.SendBinaryAsync(f);

        foreach (var f in sent)
        {
            var got = await viewer.ReceiveMessageAsync(Wait);
            Assert.NotNull(got);
            Assert.Equal(WebSocketMessageType.Binary, got.Type);
            Assert.Equal(f, got.Data);
        }
        var hub = gw.App.Services.GetRequiredService<ViewerHub>();
        var v = hub.Viewers.Single(x => x.Source == source);
        Assert.True(v.WritesFramedBytes);
        Assert.False(v.WritesToSocket, "a TLS viewer's bytes must go through the TLS stream");
        await cam.CloseQuietlyAsync();
    }

    private static async Task<ClientWebSocket> ConnectTlsAsync(Uri uri, X509Certificate2 server)
    {
        var ws = new ClientWebSocket();
        ws.Options.RemoteCertificateValidationCallback = (_, c, _, _) => c?.GetCertHashString() == server.Thumbprint;
        using var cts = new CancellationTokenSource(Wait);
        await ws.ConnectAsync(uri, cts.Token);
        return ws;
    }

    [Fact]
    public async Task AThousandViewersComeAndGoWhileACameraRunsAndLeaveNothingBehind()
    {
        var source = NewSource();
        var hub = Gw.App.Services.GetRequiredService<ViewerHub>();
        var baseline = (await Gw.StreamStatusAsync()).GetProperty("viewers_connected").GetInt64();
        using var keep = await Ws.ConnectAsync(Gw.Ws($"/video_out?source={source}")); // keeps the subscription
        await VideoPathTests.WaitSubscribedAsync(Gw.StreamStatusAsync, source);
        using var cam = await Ws.ConnectAsync(Gw.Ws($"/video_in?client_id={source}"));
        using var stop = new CancellationTokenSource();
        var frame = TestJpeg.Tagged(1, 100_000);
        var camera = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                await cam.SendBinaryAsync(frame);
                await Task.Delay(40);
            }
        });
        var drainKeep = Task.Run(async () =>
        {
            var buffer = new byte[256 * 1024];
            try
            {
                while (true)
                {
                    var r = await keep.ReceiveAsync(buffer.AsMemory(), stop.Token);
                    if (r.MessageType == WebSocketMessageType.Close)
                        return;
                }
            }
            catch (OperationCanceledException) { }
        });

        // 10 waves of 100: a third read a frame and close, a third never read and close, a third are aborted.
        for (var wave = 0; wave < 10; wave++)
        {
            var viewers = await Task.WhenAll(
                Enumerable
                    .Range(0, 100)
                    .Select(i => Ws.ConnectAsync(Gw.Ws($"/video_out?source={source}{(i % 2 == 0 ? "&meta=1" : "")}")))
            );
            await Task.WhenAll(
                viewers.Select(
                    async (v, i) =>
                    {
                        switch (i % 3)
                        {
                            case 0:
                                var m = await v.ReceiveMessageAsync(Wait);
                                Assert.NotNull(m);
                                await v.CloseQuietlyAsync();
                                break;
                            case 1:
                                await Task.Delay(100);
                                await v.CloseQuietlyAsync();
                                break;
                            default:
                                await Task.Delay(50);
                                v.Abort();
                                v.Dispose();
                                break;
                        }
                    }
                )
            );
        }

        // Every one of them is gone on the server: out of the hub, its endpoint ended (the connected count is back),
        // and every framed buffer is back in the pool once the last viewer is gone too.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        JsonElement status = default;
        while (DateTime.UtcNow < deadline)
        {
            status = await Gw.StreamStatusAsync();
            if (
                status.GetProperty("viewers_connected").GetInt64() == baseline + 1
                && hub.Viewers.Count(v => v.Source == source) == 1
            )
                break;
            await Task.Delay(50);
        }
        Assert.Equal(baseline + 1, status.GetProperty("viewers_connected").GetInt64());
        Assert.Single(hub.Viewers, v => v.Source == source);

        await stop.CancelAsync();
        await camera;
        await keep.CloseQuietlyAsync();
        await drainKeep;
        deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (DateTime.UtcNow < deadline && (hub.Viewers.Any(v => v.Source == source) || hub.Buffers.Rented != 0))
            await Task.Delay(50);
        Assert.DoesNotContain(hub.Viewers, v => v.Source == source);
        // Other tests of the class may run at the same time on this gateway: only a quiet hub must be at zero.
        if (!hub.Viewers.Any())
            Assert.Equal(0, hub.Buffers.Rented);
        await cam.CloseQuietlyAsync();
    }

    private static async Task<string> ReadHeadAsync(NetworkStream stream)
    {
        var head = new List<byte>();
        var one = new byte[1];
        using var cts = new CancellationTokenSource(Wait);
        while (head.Count < 4 || !(head[^4] == '\r' && head[^3] == '\n' && head[^2] == '\r' && head[^1] == '\n'))
        {
            var n = await stream.ReadAsync(one, cts.Token);
            Assert.True(n == 1, "connection closed during the handshake");
            head.Add(one[0]);
        }
        return Encoding.ASCII.GetString([.. head]);
    }

    /// <summary>The frames in <paramref name="bytes"/> when it ends on a frame boundary, else null.</summary>
    private static List<ViewerSendPathTests.ServerFrame>? TryParse(byte[] bytes)
    {
        var i = 0L;
        while (i < bytes.Length)
        {
            if (bytes.Length - i < 2)
                return null;
            long length = bytes[i + 1] & 0x7F;
            var header = 2;
            if (length == 126)
            {
                if (bytes.Length - i < 4)
                    return null;
                length = (bytes[i + 2] << 8) | bytes[i + 3];
                header = 4;
            }
            else if (length == 127)
            {
                if (bytes.Length - i < 10)
                    return null;
                length = 0;
                for (var k = 2; k < 10; k++)
                    length = (length << 8) | bytes[i + k];
                header = 10;
            }
            if (bytes.Length - i - header < length)
                return null;
            i += header + length;
        }
        return ViewerSendPathTests.ParseServerFrames(bytes);
    }

    /// <summary>A client frame (masked, as RFC 6455 requires of clients).</summary>
    private static byte[] MaskedFrame(int opcode, byte[] payload)
    {
        var mask = new byte[] { 0x12, 0x34, 0x56, 0x78 };
        var frame = new byte[2 + 4 + payload.Length];
        frame[0] = (byte)(0x80 | opcode);
        frame[1] = (byte)(0x80 | payload.Length);
        mask.CopyTo(frame, 2);
        for (var i = 0; i < payload.Length; i++)
            frame[6 + i] = (byte)(payload[i] ^ mask[i % 4]);
        return frame;
    }
}
