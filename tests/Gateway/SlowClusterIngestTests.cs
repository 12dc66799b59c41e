using System.Net.Http.Json;
using System.Text.Json;
using Blankend.Orleans.Codec;
using Blankend.Orleans.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Xunit;
using Xunit.Abstractions;

namespace Blankend.Orleans.Tests.Gateway;

/// <summary>
/// The gateway's two ingest pumps (gateway/Ingest) when the cluster is slower than the camera: /video_in keeps the
/// newest frames and counts the dropped ones (<c>gateway.ingest_queue_size</c>); /video_codec never drops a chunk
/// (it pushes back on the camera instead). The cluster is made slow by a grain call filter on the embedded silo
/// that holds the source's grain calls until the test opens it: everything else is the real gateway.
/// </summary>
[Trait(TestKind.Name, TestKind.Integration)]
public sealed class SlowClusterIngestTests(ITestOutputHelper output)
{
    /// <summary>Holds every incoming call of <paramref name="method"/> (on any grain) until <see
    /// cref="Open"/>.</summary>
    private sealed class HoldCalls(string method) : IIncomingGrainCallFilter
    {
        public TaskCompletionSource Open { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource Held { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public async Task Invoke(IIncomingGrainCallContext context)
        {
            if (context.MethodName == method)
            {
                Held.TrySetResult();
                await Open.Task;
            }
            await context.Invoke();
        }
    }

    [Fact]
    public async Task CameraOutrunningTheClusterKeepsTheNewestFramesAndCountsTheDroppedOnes()
    {
        const int queue = 4;
        var hold = new HoldCalls(nameof(IClientGrain.Publish));
        await using var gw = await EmbeddedGateway.StartAsync([$"--gateway:ingest_queue_size={queue}"], configure: b =>
            b.Services.AddSingleton<IIncomingGrainCallFilter>(hold)
        );
        var source = "slow-" + Guid.NewGuid().ToString("N")[..8];
        await using var viewer = await Relay.ViewerRecorder.ConnectAsync(gw, source);
        await VideoPathTests.WaitSubscribedAsync(gw.StreamStatusAsync, source);
        using var cam = await Ws.ConnectAsync(gw.Ws($"/video_in?client_id={source}"));

        // Frame 0 reaches the grain and is held there: the pump waits on it (one call at a time) while frames
        // 1..20 arrive. The queue keeps the newest 4 of them; 16 are dropped and counted.
        await cam.SendBinaryAsync(TestJpeg.Tagged(0));
        await hold.Held.Task.WaitAsync(TimeSpan.FromSeconds(20));
        const int more = 20;
        for (var i = 1; i <= more; i++)
            await cam.SendBinaryAsync(TestJpeg.Tagged(i));
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        var status = await gw.StreamStatusAsync();
        while (status.GetProperty("frames_in").GetInt64() < more + 1 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50);
            status = await gw.StreamStatusAsync();
        }
        Assert.Equal(more + 1, status.GetProperty("frames_in").GetInt64());
        hold.Open.TrySetResult();

        var frames = await viewer.WaitForAsync(
            f => f.Any(x => x.Tag == more),
            TimeSpan.FromSeconds(20),
            "the newest frame"
        );
        status = await gw.StreamStatusAsync();
        var tags = frames.Select(f => f.Tag).ToArray();
        var drops = status.GetProperty("ingest_drops").GetInt64();
        output.WriteLine($"viewer tags {string.Join(",", tags)}; status {status}");
        // Frame 0 first, the newest 4 last, every other frame dropped and counted. (Publish has a 2 s response
        // timeout: on a machine that stalled that long while the frames arrived, the held call is given up, counted
        // as an ingest error (it still runs in the grain), and the pump takes one more frame off the queue early,
        // which then arrives between 0 and the newest 4: the accounting below holds either way.)
        Assert.Equal(0, tags[0]);
        Assert.Equal([17, 18, 19, 20], tags[^queue..]);
        Assert.Equal(tags.Order(), tags);
        Assert.Equal(more + 1, tags.Length + drops);
        await cam.CloseQuietlyAsync();
    }

    [Fact]
    public async Task CodecChunksAreNeverDroppedWhileTheClusterIsSlow()
    {
        var hold = new HoldCalls(nameof(ICodecSessionGrain.Push));
        await using var gw = await EmbeddedGateway.StartAsync(["--codec:chunk_queue_size=2"], configure: b =>
            b.Services.AddSingleton<IIncomingGrainCallFilter>(hold)
        );
        var source = "slowc-" + Guid.NewGuid().ToString("N")[..8];
        var chunks = TestStreams.RandomChunks(TestStreams.H264(), new Random(5), 2000);
        // The silo's one-off ffmpeg probe first (the upgrade waits for it; Ws.ConnectAsync's 10 s may not do on a
        // loaded machine).
        var probed = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (DateTime.UtcNow < probed)
        {
            var health = JsonDocument.Parse(await gw.Client.GetStringAsync("healthz")).RootElement;
            if (health.GetProperty("components").GetProperty("decoders").GetProperty("state").GetString() == "ok")
                break;
            await Task.Delay(200);
        }
        using (var cam = await Ws.ConnectAsync(gw.Ws($"/video_codec?codec=h264&client_id={source}")))
        {
            // The whole stream is sent while the first push is held: the gateway's queue (2 chunks) fills and its
            // receive loop waits; the rest waits in the socket buffers, nothing is dropped.
            var send = Task.Run(async () =>
            {
                foreach (var c in chunks)
                    await cam.SendBinaryAsync(c);
            });
            await hold.Held.Task.WaitAsync(TimeSpan.FromSeconds(20));
            await send.WaitAsync(TimeSpan.FromSeconds(30));
            Assert.False(hold.Open.Task.IsCompleted);
            hold.Open.TrySetResult();
            // Every byte reaches the session before the close (a closing client's backlog only gets a bounded
            // drain: the contract's "released within 5 s"); then the count is exact.
            var total = chunks.Sum(c => (long)c.Length);
            var inDeadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            long bytesIn = -1;
            while (DateTime.UtcNow < inDeadline)
            {
                var live = await gw.Client.GetFromJsonAsync<JsonElement>("api/v1/video_processing/codec/status");
                bytesIn = live.GetProperty("sessions")
                    .EnumerateArray()
                    .Where(s => s.GetProperty("client_id").GetString() == source)
                    .Select(s => s.GetProperty("bytes_in").GetInt64())
                    .DefaultIfEmpty(-1)
                    .First();
                if (bytesIn >= total)
                    break;
                await Task.Delay(100);
            }
            Assert.Equal(total, bytesIn);
            await cam.CloseQuietlyAsync();
        }

        // Every frame of the stream decoded: a missing chunk would have cost the frames up to the next keyframe.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        JsonElement status;
        do
        {
            status = await gw.Client.GetFromJsonAsync<JsonElement>("api/v1/video_processing/codec/status");
            if (
                !status
                    .GetProperty("sessions")
                    .EnumerateArray()
                    .Any(s => s.GetProperty("client_id").GetString() == source)
            )
                break;
            await Task.Delay(100);
        } while (DateTime.UtcNow < deadline);
        output.WriteLine(status.GetProperty("counters").ToString());
        Assert.Equal(TestStreams.Frames, status.GetProperty("counters").GetProperty("frames_decoded").GetInt64());
    }
}
