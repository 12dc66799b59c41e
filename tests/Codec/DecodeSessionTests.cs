using System.Collections.Concurrent;
using System.Diagnostics;
using Blankend.Orleans.Codec;
using Blankend.Orleans.Grains.Codec;
using Blankend.Orleans.Media;
using Blankend.Orleans.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;
using Xunit.Abstractions;

namespace Blankend.Orleans.Tests.Codec;

/// <summary>The decode session against real ffmpeg processes, without Orleans (frames go to a list).</summary>
[Trait(TestKind.Name, TestKind.Unit)]
public sealed class DecodeSessionTests(ITestOutputHelper output)
{
    private sealed class Events : DecodeSession.IEvents
    {
        public int Fallbacks;
        public string? FallbackFrom;
        public DecodeSessionEnd? Ended;

        public void OnGpuFallback(DecodeSession session, string from, string detail)
        {
            Interlocked.Increment(ref Fallbacks);
            FallbackFrom = from;
        }

        public void OnEnded(DecodeSession session, DecodeSessionEnd end) => Ended = end;
    }

    private sealed class Sink
    {
        public readonly ConcurrentQueue<(long Tick, FrameEnvelope Frame)> Frames = new();

        public Task Publish(FrameEnvelope f)
        {
            Frames.Enqueue((Environment.TickCount64, f));
            return Task.CompletedTask;
        }
    }

    private static (DecodeSession Session, Sink Sink, Events Events) Create(
        string codec,
        DecoderPlan? plan = null,
        DecoderPlan? fallback = null,
        int idleSeconds = 10,
        string ffmpeg = "ffmpeg",
        int probeSize = 4096
    )
    {
        var settings = new DecodeSession.Settings(
            "cam",
            codec,
            ffmpeg,
            plan ?? DecoderPlan.Cpu(codec),
            fallback,
            probeSize,
            5,
            true,
            TimeSpan.FromSeconds(idleSeconds),
            30,
            16 * 1024 * 1024
        );
        var sink = new Sink();
        var events = new Events();
        return (new DecodeSession(settings, sink.Publish, events, NullLogger.Instance), sink, events);
    }

    /// <summary>Feeds <paramref name="data"/> in random chunks at about real time (2 s for the 50-frame
    /// stream).</summary>
    private static async Task<long> FeedLiveAsync(DecodeSession session, byte[] data, int seed, TimeSpan duration)
    {
        var chunks = TestStreams.RandomChunks(data, new Random(seed), 3000);
        var start = Stopwatch.StartNew();
        for (var i = 0; i < chunks.Count; i++)
        {
            Assert.Null(await session.PushAsync(chunks[i]));
            var due = duration * ((i + 1.0) / chunks.Count);
            var wait = due - start.Elapsed;
            if (wait > TimeSpan.Zero)
                await Task.Delay(wait);
        }
        return Environment.TickCount64;
    }

    /// <summary>Every decoded frame was published or dropped (counted: the queue keeps the newest when the
    /// publisher is starved, which happens on a loaded 2-core test machine), and no frame was published
    /// twice.</summary>
    private static int AssertAllAccountedOnce(DecodeSession session, Sink sink, int decoded)
    {
        var payloads = sink.Frames.Select(f => Convert.ToBase64String(f.Frame.Payload)).ToList();
        Assert.Equal(payloads.Count, payloads.Distinct().Count());
        Assert.Equal(decoded, payloads.Count + session.Snapshot().DroppedFrames);
        return payloads.Count;
    }

    private static async Task<DecodeSessionEnd> EndOf(DecodeSession session) =>
        await session.Completion.WaitAsync(TimeSpan.FromSeconds(15));

    [Theory]
    [InlineData("h264")]
    [InlineData("hevc")]
    public async Task FramesFlowWhileTheStreamIsStillOpenAndAllArriveInOrder(string codec)
    {
        var data = codec == "h264" ? TestStreams.H264() : TestStreams.Hevc();
        var (session, sink, events) = Create(codec);
        var firstChunk = Environment.TickCount64;
        // Spread over 5 s so that the claim (frames while the stream is open) does not hinge on ffmpeg's start-up.
        var lastChunk = await FeedLiveAsync(session, data, 1, TimeSpan.FromSeconds(5));
        var pid = session.Pid!.Value;
        var beforeEnd = sink.Frames.Count;
        Assert.True(beforeEnd > 0, "no frame while the stream was open");
        var firstFrame = sink.Frames.First().Tick;
        Assert.True(firstFrame < lastChunk, "the first frame came only after the last chunk");

        session.Stop(DecodeEndReasons.ClientClosed);
        var end = await EndOf(session);
        Assert.Equal(DecodeEndReasons.ClientClosed, end.Reason);
        Assert.Null(end.Error);
        Assert.Equal(TestStreams.Frames, end.Frames); // the tail frames drain after end-of-input
        AssertAllAccountedOnce(session, sink, TestStreams.Frames);
        Assert.All(sink.Frames, f =>
        {
            Assert.Null(Jpeg.Check(f.Frame.Payload));
            Assert.Equal(FrameOrigin.VideoCodec, f.Frame.Origin);
            Assert.Equal(FrameKind.Raw, f.Frame.Kind);
        });
        var stamps = sink.Frames.Select(f => f.Frame.TimestampMs).ToList();
        Assert.Equal(stamps.Order().ToList(), stamps);
        Assert.True(await Procs.WaitGoneAsync(pid, TimeSpan.FromSeconds(5)));
        Assert.NotNull(events.Ended); // the owner is told the session ended (before Completion completes)
        Assert.Same(end, events.Ended);
        output.WriteLine(
            $"{codec}: first frame {firstFrame - firstChunk} ms after the first chunk; {beforeEnd}/{TestStreams.Frames} frames before end-of-input; session stats first_frame_ms={session.Snapshot().FirstFrameMs}"
        );
    }

    [Fact]
    public async Task GpuDecoderFailingAtStartIsReplacedByCpuWithoutLosingFrames()
    {
        // A GPU plan that cannot open (what h264_cuvid does on a host without libnvcuvid).
        var fakeGpu = new DecoderPlan("h264", "h264_cuvid(fake)", true, ["-c:v", "no_such_decoder_cuvid"]);
        var (session, sink, events) = Create("h264", fakeGpu, DecoderPlan.Cpu("h264"));
        await FeedLiveAsync(session, TestStreams.H264(), 2, TimeSpan.FromSeconds(1));
        session.Stop(DecodeEndReasons.ClientClosed);
        var end = await EndOf(session);
        Assert.Equal(1, events.Fallbacks);
        Assert.Equal("h264_cuvid(fake)", events.FallbackFrom);
        Assert.Equal("h264", session.Plan.Decoder);
        Assert.Equal(1, session.Snapshot().Restarts);
        Assert.Equal(TestStreams.Frames, end.Frames);
        AssertAllAccountedOnce(session, sink, TestStreams.Frames);
    }

    [Fact]
    public async Task GpuDecoderDyingMidStreamIsReplacedFromTheLastParameterSetWithoutRepeats()
    {
        // A "GPU" decoder that stops after 0.4 s of stream (10 frames): the session must restart on the CPU, feed
        // it from the last SPS and skip the frames already published.
        var dying = new DecoderPlan("h264", "gpu(dies)", true, ["-t", "0.4"]);
        var (session, sink, events) = Create("h264", dying, DecoderPlan.Cpu("h264"));
        await FeedLiveAsync(session, TestStreams.H264(), 3, TimeSpan.FromSeconds(2));
        session.Stop(DecodeEndReasons.ClientClosed);
        var end = await EndOf(session);
        Assert.Equal(1, events.Fallbacks);
        var published = AssertAllAccountedOnce(session, sink, (int)end.Frames);
        output.WriteLine($"decoded {end.Frames} (published {published}), restarts {session.Snapshot().Restarts}");
        // at most the decoder's delay lost, none repeated
        Assert.InRange(end.Frames, TestStreams.Frames - 3, TestStreams.Frames);
        Assert.Equal(DecodeEndReasons.ClientClosed, end.Reason);
    }

    [Fact]
    public async Task TextIsRefusedAsNotAnAnnexBStreamAndTheProcessIsGone()
    {
        var (session, sink, _) = Create("h264");
        var text = System.Text.Encoding.ASCII.GetBytes(
            string.Concat(Enumerable.Repeat("this is not video at all\n", 4000))
        );
        DecodeSessionEnd? end = null;
        int? pid = null;
        foreach (var chunk in TestStreams.RandomChunks(text, new Random(4), 4000))
        {
            end = await session.PushAsync(chunk);
            pid ??= session.Pid;
            if (end is not null)
                break;
        }
        Assert.NotNull(end);
        Assert.Equal(DecodeEndReasons.InvalidStream, end!.Reason);
        Assert.Equal("decode_failed", end.Error);
        Assert.Equal(1007, end.CloseStatus);
        Assert.Contains("start code", end.Detail);
        await EndOf(session);
        Assert.Empty(sink.Frames);
        Assert.True(await Procs.WaitGoneAsync(pid!.Value, TimeSpan.FromSeconds(5)));
    }

    [Theory]
    [InlineData("garbage")]
    [InlineData("truncated-head")]
    [InlineData("wrong-codec")]
    public async Task UndecodableInputEndsTheSessionWithADecodeError(string kind)
    {
        var codec = "h264";
        byte[] data;
        var rng = new Random(5);
        switch (kind)
        {
            case "garbage": // random NAL units: start codes present, nothing decodable
                data =
                [
                    .. Enumerable
                        .Range(0, 400)
                        .SelectMany(_ =>
                        {
                            var nal = new byte[rng.Next(50, 2000)];
                            rng.NextBytes(nal);
                            return new byte[] { 0, 0, 0, 1 }.Concat(nal);
                        }),
                ];
                break;
            case "truncated-head": // a live stream joined after its only SPS/keyframe
                var live = TestStreams.H264Live();
                data = live[(live.Length / 2)..];
                break;
            default: // HEVC announced as H.264
                data = [.. TestStreams.Hevc(), .. TestStreams.Hevc()];
                break;
        }
        var (session, sink, _) = Create(codec);
        var pid = 0;
        foreach (var chunk in TestStreams.RandomChunks(data, rng, 4000))
        {
            if (await session.PushAsync(chunk) is not null)
                break;
            pid = session.Pid ?? pid;
            await Task.Delay(1);
        }
        var end = await EndOf(session);
        output.WriteLine($"{kind}: {end.Reason} {end.Detail}");
        Assert.Equal("decode_failed", end.Error);
        Assert.Contains(end.Reason, new[] { DecodeEndReasons.DecodeFailed, DecodeEndReasons.InvalidStream });
        Assert.Equal(1007, end.CloseStatus);
        Assert.True(await Procs.WaitGoneAsync(pid, TimeSpan.FromSeconds(5)));
        if (kind != "wrong-codec")
            Assert.Empty(sink.Frames);
    }

    [Fact]
    public async Task IdleSessionEndsAndItsProcessIsReaped()
    {
        var (session, sink, _) = Create("h264", idleSeconds: 1);
        var data = TestStreams.H264();
        Assert.Null(await session.PushAsync(data[..(data.Length / 2)]));
        var pid = session.Pid!.Value;
        var end = await EndOf(session);
        Assert.Equal(DecodeEndReasons.IdleTimeout, end.Reason);
        Assert.Equal("idle_timeout", end.Error);
        Assert.Equal(1001, end.CloseStatus);
        Assert.True(await Procs.WaitGoneAsync(pid, TimeSpan.FromSeconds(5)));
        Assert.NotEmpty(sink.Frames);
        Assert.NotNull(await session.PushAsync(data[..10])); // ended: chunks are refused with the end
    }

    [Fact]
    public async Task KillEndsTheSessionAndReapsFfmpegWithinFiveSeconds()
    {
        var (session, _, events) = Create("h264");
        var data = TestStreams.H264();
        await session.PushAsync(data[..20000]);
        var pid = session.Pid!.Value;
        session.Kill(DecodeEndReasons.ServiceStopping, "service_stopping", "stopping", 1001);
        // Liveness bounds, not speed figures: the contract promises that a session releases everything (its
        // ffmpeg process included) within 5 s.
        var end = await session.Completion.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(DecodeEndReasons.ServiceStopping, end.Reason);
        Assert.Equal(1001, end.CloseStatus);
        Assert.Same(end, events.Ended);
        Assert.True(
            await Procs.WaitGoneAsync(pid, TimeSpan.FromSeconds(5)),
            $"ffmpeg {pid} still running 5 s after the kill"
        );
    }

    [Fact]
    public async Task MissingFfmpegEndsTheSessionSayingSo()
    {
        var (session, _, _) = Create("h264", ffmpeg: "/nonexistent/ffmpeg");
        var end = await session.PushAsync(TestStreams.H264()[..1000]);
        Assert.NotNull(end);
        Assert.Equal(DecodeEndReasons.DecoderUnavailable, end!.Reason);
        Assert.Contains("apt-get install ffmpeg", end.Detail);
        Assert.Equal(1011, end.CloseStatus);
        await EndOf(session);
    }

    [Fact]
    public async Task FramesFlowWhileStreamingAtBothProbeSizes()
    {
        // The latency is printed, not asserted (speed belongs to bench/CodecProbe, which takes --probe-size): what
        // is asserted is that a first frame comes while the stream is still being fed, at the old and the new
        // codec:probe_size.
        var data = TestStreams.H264Live(2);
        foreach (var probe in new[] { 32768, 4096 })
        {
            var (session, sink, _) = Create("h264", probeSize: probe);
            var first = Environment.TickCount64;
            var feed = FeedLiveAsync(session, data, 6, TimeSpan.FromSeconds(2));
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
            while (sink.Frames.IsEmpty && DateTime.UtcNow < deadline)
                await Task.Delay(5);
            var latency = sink.Frames.TryPeek(out var f) ? f.Tick - first : -1;
            var fedUntil = await feed;
            session.Stop(DecodeEndReasons.ClientClosed);
            var end = await EndOf(session);
            output.WriteLine(
                $"probe_size {probe}: first frame {latency} ms after the first chunk ({data.Length / 2 / 1024} KiB/s stream), {end.Frames} frames"
            );
            Assert.True(latency >= 0, $"probe_size {probe}: no frame within 5 s");
            Assert.True(f.Tick <= fedUntil, $"probe_size {probe}: the first frame came only after the last chunk");
        }
    }
}
