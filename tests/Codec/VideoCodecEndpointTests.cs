using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text.Json;
using Blankend.Orleans.Media;
using Blankend.Orleans.Tests.Gateway;
using Blankend.Orleans.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Blankend.Orleans.Tests.Codec;

/// <summary>One real gateway (embedded silo) for the codec and recording tests: short idle timeouts, its own
/// recordings folder.</summary>
public sealed class CodecGatewayFixture : IAsyncLifetime
{
    public const int IdleSeconds = 3;

    // Long enough that a loaded machine gets a recording's first frame in before the idle rule ends it.
    public const int RecordingIdleSeconds = 5;

    public EmbeddedGateway Gateway { get; private set; } = null!;

    public string RecordingFolder { get; } =
        Path.Combine(Path.GetTempPath(), "blankend-rec-" + Guid.NewGuid().ToString("N")[..8]);

    public async Task InitializeAsync()
    {
        Gateway = await EmbeddedGateway.StartAsync([
            $"--codec:idle_timeout_s={IdleSeconds}",
            $"--recording:folder={RecordingFolder}",
            $"--recording:idle_timeout_s={RecordingIdleSeconds}",
            "--cluster:observer_refresh_ms=500",
        ]);
    }

    public async Task DisposeAsync()
    {
        await Gateway.DisposeAsync();
        try
        {
            Directory.Delete(RecordingFolder, recursive: true);
        }
        catch (IOException) { }
    }
}

/// <summary>/video_codec over real WebSockets, decoded by real ffmpeg processes on the embedded silo.</summary>
[Trait(TestKind.Name, TestKind.Integration)]
public sealed class VideoCodecEndpointTests(CodecGatewayFixture fixture, ITestOutputHelper output)
    : IClassFixture<CodecGatewayFixture>
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);
    private EmbeddedGateway Gw => fixture.Gateway;

    private static string NewSource() => "codec-" + Guid.NewGuid().ToString("N")[..8];

    private async Task<JsonElement> CodecStatusAsync() =>
        await Gw.Client.GetFromJsonAsync<JsonElement>("api/v1/video_processing/codec/status");

    private async Task<JsonElement?> SessionAsync(string clientId)
    {
        var status = await CodecStatusAsync();
        foreach (var s in status.GetProperty("sessions").EnumerateArray())
        {
            if (s.GetProperty("client_id").GetString() == clientId)
                return s;
        }
        return null;
    }

    /// <summary>Polls the status API until the session of <paramref name="clientId"/> runs an ffmpeg process.</summary>
    private async Task<int> WaitPidAsync(string clientId)
    {
        var deadline = DateTime.UtcNow + Wait;
        while (DateTime.UtcNow < deadline)
        {
            if (await SessionAsync(clientId) is { } s && s.GetProperty("pid").ValueKind == JsonValueKind.Number)
                return s.GetProperty("pid").GetInt32();
            await Task.Delay(10);
        }
        throw new TimeoutException($"no decode process for {clientId}");
    }

    private async Task WaitSessionGoneAsync(string clientId)
    {
        var deadline = DateTime.UtcNow + Wait;
        while (await SessionAsync(clientId) is not null)
        {
            Assert.True(DateTime.UtcNow < deadline, $"session {clientId} still listed");
            await Task.Delay(50);
        }
    }

    private static async Task<long> SendLiveAsync(WebSocket ws, byte[] data, int seed, TimeSpan duration)
    {
        var chunks = TestStreams.RandomChunks(data, new Random(seed), 3000);
        var start = Stopwatch.StartNew();
        for (var i = 0; i < chunks.Count; i++)
        {
            await ws.SendBinaryAsync(chunks[i]);
            var wait = duration * ((i + 1.0) / chunks.Count) - start.Elapsed;
            if (wait > TimeSpan.Zero)
                await Task.Delay(wait);
        }
        return Environment.TickCount64;
    }

    /// <summary>The error message and close a session end produces.</summary>
    private static async Task<(JsonElement Error, WebSocketCloseStatus? Status, string? Reason)> ReadErrorAndCloseAsync(
        ClientWebSocket ws
    )
    {
        JsonElement? error = null;
        while (true)
        {
            var m = await ws.ReceiveMessageAsync(TimeSpan.FromSeconds(15));
            if (m is null)
                break;
            if (m.Type == WebSocketMessageType.Text)
                error = JsonDocument.Parse(m.Data).RootElement.Clone();
        }
        Assert.True(
            error.HasValue,
            $"no error message before the close ({ws.CloseStatus} {ws.CloseStatusDescription})"
        );
        return (error!.Value, ws.CloseStatus, ws.CloseStatusDescription);
    }

    private static void AssertNoZombieFfmpeg()
    {
        var zombies = Procs.FfmpegChildren().Where(p => p.State == 'Z').ToList();
        Assert.True(zombies.Count == 0, "ffmpeg zombies: " + string.Join(",", zombies.Select(z => z.Pid)));
    }

    [Theory]
    [InlineData("h264")]
    [InlineData("hevc")]
    [InlineData("h265")]
    public async Task DecodedFramesReachAViewerWhileTheStreamIsStillOpen(string codec)
    {
        var source = NewSource();
        var data = codec == "h264" ? TestStreams.H264() : TestStreams.Hevc();
        using var viewer = await Ws.ConnectAsync(Gw.Ws($"/video_out?source={source}&meta=1"));
        await VideoPathTests.WaitSubscribedAsync(Gw.StreamStatusAsync, source);
        using var cam = await Ws.ConnectAsync(Gw.Ws($"/video_codec?codec={codec}&client_id={source}"));

        var arrivals = new List<long>();
        var frames = new List<byte[]>();
        var metas = new List<JsonElement>();
        var receive = Task.Run(async () =>
        {
            while (frames.Count < TestStreams.Frames)
            {
                var m = await viewer.ReceiveOrNullAsync(TimeSpan.FromSeconds(6));
                if (m is null)
                    break;
                if (m.Type == WebSocketMessageType.Text)
                {
                    metas.Add(JsonDocument.Parse(m.Data).RootElement.Clone());
                    continue;
                }
                lock (arrivals)
                    arrivals.Add(Environment.TickCount64);
                frames.Add(m.Data);
            }
        });

        var firstChunk = Environment.TickCount64;
        // Spread over 5 s: "while the stream is open" must not depend on ffmpeg starting within a loaded machine's
        // first seconds (the session's start-up, not the flow, is what a short feed would measure).
        var send = SendLiveAsync(cam, data, 11, TimeSpan.FromSeconds(5));
        var pid = await WaitPidAsync(source);
        var lastChunk = await send;
        int beforeClose;
        lock (arrivals)
            beforeClose = arrivals.Count;
        var live = await SessionAsync(source);
        await cam.CloseQuietlyAsync();
        await receive.WaitAsync(TimeSpan.FromSeconds(20));

        Assert.True(beforeClose > 0, "no frame reached the viewer while the stream was open");
        Assert.True(arrivals[0] < lastChunk, "the first frame arrived only after the last chunk");
        Assert.True(frames.Count >= TestStreams.Frames - 5, $"viewer got {frames.Count} of {TestStreams.Frames}");
        Assert.All(frames, f => Assert.Null(Jpeg.Check(f)));
        Assert.All(metas, m =>
        {
            Assert.Equal("raw", m.GetProperty("kind").GetString());
            Assert.Equal(source, m.GetProperty("source").GetString());
        });
        var seqs = metas.Select(m => m.GetProperty("seq").GetInt64()).ToList();
        Assert.Equal(seqs.Order().Distinct().ToList(), seqs);

        Assert.NotNull(live);
        var canonical = codec == "h265" ? "hevc" : codec;
        Assert.Equal(canonical, live!.Value.GetProperty("codec").GetString());
        Assert.False(string.IsNullOrEmpty(live.Value.GetProperty("decoder").GetString()));
        Assert.True(live.Value.GetProperty("frames").GetInt64() > 0);
        Assert.True(live.Value.GetProperty("bytes_in").GetInt64() > 0);
        Assert.True(
            await Procs.WaitGoneAsync(pid, TimeSpan.FromSeconds(5)),
            $"ffmpeg {pid} still there after the close"
        );
        await WaitSessionGoneAsync(source);
        AssertNoZombieFfmpeg();
        output.WriteLine(
            $"{codec}: first frame at the viewer {arrivals[0] - firstChunk} ms after the first chunk; {beforeClose}/{TestStreams.Frames} frames before the close; "
                + $"{frames.Count} in all; decoder {live.Value.GetProperty("decoder").GetString()}, {live.Value.GetProperty("fps").GetDouble()} fps while live, first_frame_ms {live.Value.GetProperty("first_frame_ms")}"
        );
    }

    [Fact]
    public async Task ClientVanishingMidStreamReleasesTheProcessWithinFiveSeconds()
    {
        var source = NewSource();
        var data = TestStreams.H264Live();
        var cam = await Ws.ConnectAsync(Gw.Ws($"/video_codec?codec=h264&client_id={source}"));
        var send = SendLiveAsync(cam, data[..(data.Length / 2)], 12, TimeSpan.FromSeconds(1));
        var pid = await WaitPidAsync(source);
        await send;
        var watch = Stopwatch.StartNew();
        cam.Abort(); // no close handshake: the TCP connection just goes
        cam.Dispose();
        Assert.True(
            await Procs.WaitGoneAsync(pid, TimeSpan.FromSeconds(5)),
            $"ffmpeg {pid} still alive {watch.ElapsedMilliseconds} ms after the disconnect"
        );
        output.WriteLine($"ffmpeg {pid} gone {watch.ElapsedMilliseconds} ms after the client vanished");
        await WaitSessionGoneAsync(source);
        AssertNoZombieFfmpeg();
        // The client_id is free again.
        using var again = await Ws.ConnectAsync(Gw.Ws($"/video_codec?codec=h264&client_id={source}"));
        await again.CloseQuietlyAsync();
    }

    [Theory]
    [InlineData("text")]
    [InlineData("random-nals")]
    [InlineData("truncated-head")]
    public async Task BadInputGetsAClearErrorThenACloseAndLeavesNoProcess(string kind)
    {
        var source = NewSource();
        var rng = new Random(13);
        byte[] data = kind switch
        {
            "text" => System.Text.Encoding.ASCII.GetBytes(
                string.Concat(Enumerable.Repeat("GET / HTTP/1.1 this is not a video\r\n", 3000))
            ),
            "random-nals" =>
            [
                .. Enumerable
                    .Range(0, 400)
                    .SelectMany(_ =>
                    {
                        var nal = new byte[rng.Next(50, 2000)];
                        rng.NextBytes(nal);
                        return new byte[] { 0, 0, 0, 1 }.Concat(nal);
                    }),
            ],
            _ => TestStreams.H264Live()[(TestStreams.H264Live().Length / 2)..],
        };
        using var cam = await Ws.ConnectAsync(Gw.Ws($"/video_codec?codec=h264&client_id={source}"));
        await cam.SendBinaryAsync(data[..1000]);
        var pid = await WaitPidAsync(source);
        var read = ReadErrorAndCloseAsync(cam);
        try
        {
            foreach (var chunk in TestStreams.RandomChunks(data[1000..], rng, 4000))
            {
                if (read.IsCompleted)
                    break;
                await cam.SendBinaryAsync(chunk);
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException)
        {
            // The server closed while we were still sending.
        }
        var (error, status, reason) = await read;
        output.WriteLine($"{kind}: {error} / close {(int?)status} '{reason}'");
        Assert.Equal("decode_failed", error.GetProperty("error").GetString());
        Assert.False(string.IsNullOrWhiteSpace(error.GetProperty("detail").GetString()));
        Assert.Equal(WebSocketCloseStatus.InvalidPayloadData, status); // 1007
        Assert.StartsWith("decode_failed", reason);
        Assert.True(await Procs.WaitGoneAsync(pid, TimeSpan.FromSeconds(5)), $"ffmpeg {pid} left behind");
        await WaitSessionGoneAsync(source);
        AssertNoZombieFfmpeg();
        if (kind == "text")
            Assert.Contains("start code", error.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task IdleClientIsToldAndClosedAndItsProcessReaped()
    {
        var source = NewSource();
        using var cam = await Ws.ConnectAsync(Gw.Ws($"/video_codec?client_id={source}")); // codec defaults to h264
        var data = TestStreams.H264();
        await cam.SendBinaryAsync(data[..(data.Length / 2)]);
        var pid = await WaitPidAsync(source);
        var watch = Stopwatch.StartNew();
        var (error, status, _) = await ReadErrorAndCloseAsync(cam);
        Assert.Equal("idle_timeout", error.GetProperty("error").GetString());
        Assert.Equal(WebSocketCloseStatus.EndpointUnavailable, status); // 1001
        // Not before codec:idle_timeout_s (it is the idle rule that closed it, not something else); the upper end
        // is only ReadErrorAndCloseAsync's liveness bound, not a speed criterion.
        Assert.True(
            watch.Elapsed.TotalSeconds >= CodecGatewayFixture.IdleSeconds - 1,
            $"closed after {watch.Elapsed}, idle timeout {CodecGatewayFixture.IdleSeconds} s"
        );
        // The contract's promise: a session that ends releases its ffmpeg process within 5 s.
        Assert.True(await Procs.WaitGoneAsync(pid, TimeSpan.FromSeconds(5)));
    }

    [Theory]
    [InlineData("/video_codec?codec=vp9")]
    [InlineData("/video_codec?codec=")]
    [InlineData("/video_codec?codec=h264&codec=hevc")]
    [InlineData("/video_codec?codec=h264&client_id=../x")]
    public async Task UnknownCodecOrBadClientIdIsRefusedBeforeTheUpgrade(string pathAndQuery)
    {
        var e = await Assert.ThrowsAsync<WebSocketException>(() => Ws.ConnectAsync(Gw.Ws(pathAndQuery)));
        Assert.Contains("400", e.Message);
        var r = await Gw.Client.GetAsync(pathAndQuery.TrimStart('/'));
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        Assert.Equal("application/problem+json", r.Content.Headers.ContentType?.MediaType);
        if (pathAndQuery.Contains("vp9"))
            Assert.Contains("h264, hevc, h265", await r.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task PlainGetAnswers400()
    {
        var r = await Gw.Client.GetAsync("video_codec?codec=h264");
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        Assert.Contains("WebSocket", await r.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task ASecondConnectionForALiveClientIdIsRefusedWith409()
    {
        var source = NewSource();
        using var first = await Ws.ConnectAsync(Gw.Ws($"/video_codec?codec=h264&client_id={source}"));
        await first.SendBinaryAsync(TestStreams.H264()[..5000]);
        var client = new ClientWebSocket { Options = { CollectHttpResponseDetails = true } };
        await Assert.ThrowsAsync<WebSocketException>(() =>
            client.ConnectAsync(Gw.Ws($"/video_codec?codec=hevc&client_id={source}"), default)
        );
        Assert.Equal(HttpStatusCode.Conflict, client.HttpStatusCode);
        client.Dispose();
        await first.CloseQuietlyAsync();
    }

    [Fact]
    public async Task TextMessageGetsExpectedBinaryAndTheSessionGoesOn()
    {
        var source = NewSource();
        using var viewer = await Ws.ConnectAsync(Gw.Ws($"/video_out?source={source}"));
        await VideoPathTests.WaitSubscribedAsync(Gw.StreamStatusAsync, source);
        using var cam = await Ws.ConnectAsync(Gw.Ws($"/video_codec?codec=h264&client_id={source}"));
        await cam.SendAsync("hello"u8.ToArray(), WebSocketMessageType.Text, true, default);
        var reply = await cam.ReceiveMessageAsync(Wait);
        Assert.Equal("expected_binary", JsonDocument.Parse(reply!.Data).RootElement.GetProperty("error").GetString());
        await cam.SendBinaryAsync(TestStreams.H264());
        var frame = await viewer.ReceiveMessageAsync(Wait);
        Assert.Null(Jpeg.Check(frame!.Data));
        await cam.CloseQuietlyAsync();
    }

    [Fact]
    public async Task StatusShowsTheDecodersTheGpuVerdictAndCounters()
    {
        var status = await CodecStatusAsync();
        Assert.True(status.GetProperty("ffmpeg_available").GetBoolean());
        var cpu = status
            .GetProperty("decoders")
            .GetProperty("cpu")
            .EnumerateArray()
            .Select(e => e.GetString())
            .ToList();
        Assert.Contains("h264", cpu);
        Assert.Contains("hevc", cpu);
        var silo = status.GetProperty("silos")[0];
        Assert.Equal("ok", silo.GetProperty("ffmpeg").GetProperty("state").GetString());
        var gpu = silo.GetProperty("gpu");
        Assert.False(string.IsNullOrWhiteSpace(gpu.GetProperty("reason").GetString()));
        Assert.Equal(gpu.GetProperty("usable").GetBoolean(), status.GetProperty("gpu_usable").GetBoolean());
        var selected = silo.GetProperty("selected").GetProperty("h264").GetString()!;
        Assert.EndsWith(gpu.GetProperty("usable").GetBoolean() ? "(gpu)" : "(cpu)", selected);
        Assert.True(status.GetProperty("counters").TryGetProperty("gpu_fallbacks", out _));
        output.WriteLine($"gpu: {gpu}");

        var health = JsonDocument.Parse(await Gw.Client.GetStringAsync("healthz")).RootElement;
        Assert.Equal("ok", health.GetProperty("components").GetProperty("decoders").GetProperty("state").GetString());
    }
}
