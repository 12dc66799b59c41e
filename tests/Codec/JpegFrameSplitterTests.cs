using System.Buffers;
using System.Diagnostics;
using System.IO.Pipelines;
using Blankend.Orleans.Grains.Codec;
using Blankend.Orleans.Media;
using Blankend.Orleans.Tests.Support;
using Xunit;

namespace Blankend.Orleans.Tests.Codec;

[Trait(TestKind.Name, TestKind.Unit)]
public sealed class JpegFrameSplitterTests
{
    /// <summary>A structurally complete JPEG whose segments hold the byte patterns a naive FFD8/FFD9 search trips
    /// on: FF D9 and FF D8 inside APP0 and COM payloads, FF 00 stuffing and RST markers in the scan, fill bytes
    /// before EOI. <paramref name="progressive"/> adds a DHT and a second scan.</summary>
    public static byte[] Synthetic(byte tag, bool progressive = false)
    {
        var b = new List<byte> { 0xFF, 0xD8 };
        Segment(b, 0xE0, [.. "JFIF\0"u8.ToArray(), 0x01, 0x01, 0xFF, 0xD9, 0xFF, 0xD8, 0x00, tag]);
        Segment(b, 0xFE, [0xFF, 0xD9, (byte)'c', (byte)'o', (byte)'m', 0xFF, 0xFF, 0xD9, tag]);
        Segment(b, 0xDB, [.. Enumerable.Repeat((byte)0x10, 65)]);
        Segment(b, progressive ? (byte)0xC2 : (byte)0xC0, [8, 0, 16, 0, 16, 1, 1, 0x11, 0]);
        Segment(b, 0xC4, [0x00, .. Enumerable.Repeat((byte)0x01, 16), 0x00]);
        Segment(b, 0xDA, [1, 1, 0, 0, 63, 0]);
        b.AddRange([0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56, 0xFF, 0xD7, 0x78, tag, 0xFF, 0x00, 0x9A]);
        if (progressive)
        {
            Segment(b, 0xC4, [0x10, .. Enumerable.Repeat((byte)0x01, 16), 0x00]);
            Segment(b, 0xDA, [1, 1, 0, 1, 63, 0]);
            b.AddRange([0xAB, 0xFF, 0x00, 0xFF, 0xD3, 0xCD, tag]);
        }
        b.AddRange([0xFF, 0xFF, 0xFF, 0xD9]); // fill bytes, then EOI
        return [.. b];
    }

    private static void Segment(List<byte> b, byte marker, byte[] payload)
    {
        b.Add(0xFF);
        b.Add(marker);
        b.Add((byte)((payload.Length + 2) >> 8));
        b.Add((byte)((payload.Length + 2) & 0xFF));
        b.AddRange(payload);
    }

    /// <summary>Feeds <paramref name="pieces"/> the way a PipeReader loop does: after each read, the unconsumed
    /// bytes come back with the new ones; returns the frames found.</summary>
    private static List<byte[]> Feed(
        JpegFrameSplitter splitter,
        IEnumerable<byte[]> pieces,
        out long truncated,
        bool multiSegment = false
    )
    {
        var frames = new List<byte[]>();
        var pending = new List<byte[]>();
        foreach (var piece in pieces)
        {
            pending.Add(piece);
            var seq = multiSegment
                ? Segments(pending)
                : new ReadOnlySequence<byte>(pending.SelectMany(p => p).ToArray());
            while (splitter.TryReadFrame(ref seq, out var frame))
                frames.Add(frame.ToArray());
            pending = seq.IsEmpty ? [] : [seq.ToArray()];
        }
        var rest = pending.Count == 0 ? ReadOnlySequence<byte>.Empty : new ReadOnlySequence<byte>(pending[0]);
        truncated = splitter.Complete(rest);
        return frames;
    }

    private static ReadOnlySequence<byte> Segments(List<byte[]> parts)
    {
        var nonEmpty = parts.Where(p => p.Length > 0).ToList();
        if (nonEmpty.Count == 0)
            return ReadOnlySequence<byte>.Empty;
        var first = new Seg(nonEmpty[0], 0);
        var last = first;
        foreach (var p in nonEmpty.Skip(1))
            last = last.Append(p);
        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }

    private sealed class Seg : ReadOnlySequenceSegment<byte>
    {
        public Seg(byte[] data, long index)
        {
            Memory = data;
            RunningIndex = index;
        }

        public Seg Append(byte[] data)
        {
            var next = new Seg(data, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }

    [Fact]
    public void SegmentsHoldingFfd9AndFfd8DoNotEndOrStartAFrame()
    {
        var jpeg = Synthetic(1);
        var frames = Feed(new JpegFrameSplitter(), [jpeg], out var truncated);
        Assert.Single(frames);
        Assert.Equal(jpeg, frames[0]);
        Assert.Equal(0, truncated);
        Assert.Null(Jpeg.Check(frames[0]));

        // What a naive search would have produced: a "frame" ending inside APP0.
        var naiveEnd = jpeg.AsSpan().IndexOf([(byte)0xFF, (byte)0xD9]) + 2;
        Assert.True(naiveEnd < jpeg.Length / 2);
    }

    [Fact]
    public void StuffingRestartMarkersFillBytesAndSecondScanStayInsideTheFrame()
    {
        var baseline = Synthetic(2);
        var progressive = Synthetic(3, progressive: true);
        var frames = Feed(
            new JpegFrameSplitter(),
            [
                [.. baseline, .. progressive, .. baseline],
            ],
            out _
        );
        Assert.Equal(3, frames.Count);
        Assert.Equal(baseline, frames[0]);
        Assert.Equal(progressive, frames[1]);
        Assert.Equal(baseline, frames[2]);
    }

    [Fact]
    public void EverySplitPointOfAThreeFrameStreamGivesTheSameFrames()
    {
        byte[][] expected = [Synthetic(4), Synthetic(5, progressive: true), TestJpeg.Base];
        var stream = expected.SelectMany(f => f).ToArray();
        for (var cut = 0; cut <= stream.Length; cut += cut < 400 ? 1 : 97)
        {
            foreach (var multi in new[] { false, true })
            {
                var splitter = new JpegFrameSplitter();
                var frames = Feed(splitter, [stream[..cut], stream[cut..]], out var truncated, multi);
                Assert.Equal(expected.Length, frames.Count);
                for (var i = 0; i < expected.Length; i++)
                    Assert.Equal(expected[i], frames[i]);
                Assert.Equal(0, truncated);
                Assert.Equal(0, splitter.SkippedBytes);
            }
        }
    }

    [Fact]
    public void OneByteAtATimeAndRandomSplitsAcrossSegments()
    {
        byte[][] expected = [Synthetic(6), TestJpeg.Tagged(7), Synthetic(8, progressive: true)];
        var stream = expected.SelectMany(f => f).ToArray();
        var single = Feed(
            new JpegFrameSplitter(),
            stream[..2000].Select(b => new[] { b }).Concat([stream[2000..]]),
            out _
        );
        Assert.Equal(expected, single);

        var rng = new Random(42);
        for (var round = 0; round < 20; round++)
        {
            var pieces = TestStreams.RandomChunks(stream, rng, maxChunk: 700);
            Assert.Equal(expected, Feed(new JpegFrameSplitter(), pieces, out _, multiSegment: round % 2 == 0));
        }
    }

    [Fact]
    public void JunkBeforeAndBetweenFramesIsSkippedAndCounted()
    {
        var a = Synthetic(9);
        var b = Synthetic(10);
        byte[] junk1 = [0x00, 0xFF, 0x12, 0xFF, 0xFF, 0x00];
        byte[] junk2 = [0x55, 0xFF];
        var splitter = new JpegFrameSplitter();
        var frames = Feed(
            splitter,
            [
                [.. junk1, .. a, .. junk2, .. b],
            ],
            out _
        );
        Assert.Equal([a, b], frames);
        Assert.Equal(junk1.Length + junk2.Length, splitter.SkippedBytes);
    }

    [Fact]
    public void TruncatedInputYieldsNoFrameAndIsReported()
    {
        var jpeg = TestJpeg.Base;
        foreach (var cut in new[] { 2, 3, 20, jpeg.Length / 2, jpeg.Length - 1 })
        {
            var splitter = new JpegFrameSplitter();
            var frames = Feed(splitter, [jpeg[..cut]], out var truncated);
            Assert.Empty(frames);
            Assert.Equal(cut, truncated);
            Assert.Equal(1, splitter.CorruptFrames);
        }
    }

    [Fact]
    public void AFrameCutShortByTheNextSoiIsDroppedAndTheNextOneKept()
    {
        var whole = Synthetic(11);
        var cut = TestJpeg.Base[..5000]; // mid-scan, then a new frame begins
        var splitter = new JpegFrameSplitter();
        var frames = Feed(
            splitter,
            [
                [.. cut, .. whole],
            ],
            out var truncated
        );
        Assert.Equal([whole], frames);
        Assert.Equal(1, splitter.CorruptFrames);
        Assert.Equal(0, truncated);
    }

    [Fact]
    public void BadMarkerStructureResynchronisesOnTheNextFrame()
    {
        var good = Synthetic(12);
        byte[] bad = [0xFF, 0xD8, 0x12, 0x34, 0xFF, 0xE0, 0x00]; // no marker after SOI
        byte[] badLength = [0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x01]; // segment length < 2
        var splitter = new JpegFrameSplitter();
        var frames = Feed(
            splitter,
            [
                [.. bad, .. good, .. badLength, .. good],
            ],
            out _
        );
        Assert.Equal([good, good], frames);
        Assert.True(splitter.CorruptFrames >= 2);
    }

    [Fact]
    public void AFrameOverTheLimitIsAbandoned()
    {
        var big = TestJpeg.Tagged(13, minBytes: 300_000);
        var small = Synthetic(14);
        var splitter = new JpegFrameSplitter(maxFrameBytes: 100_000);
        var frames = Feed(splitter, TestStreams.RandomChunks([.. big, .. small], new Random(1), 30_000), out _);
        Assert.Equal([small], frames);
        Assert.True(splitter.CorruptFrames >= 1);
    }

    [Fact]
    public async Task RealFfmpegMjpegOutputThroughAPipeSplitsIntoEveryFrame()
    {
        // 50 frames decoded by ffmpeg and written as image2pipe MJPEG, exactly what a decode session reads.
        var psi = new ProcessStartInfo("ffmpeg")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (
            var a in "-hide_banner -loglevel error -f h264 -i pipe:0 -f image2pipe -c:v mjpeg -q:v 5 pipe:1".Split(' ')
        )
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var input = TestStreams.H264();
        var write = Task.Run(async () =>
        {
            await p.StandardInput.BaseStream.WriteAsync(input);
            p.StandardInput.Close();
        });
        using var all = new MemoryStream();
        await p.StandardOutput.BaseStream.CopyToAsync(all);
        await write;
        await p.WaitForExitAsync();
        var mjpeg = all.ToArray();

        // Through System.IO.Pipelines with small random writes (the reader sees every kind of cut).
        var pipe = new Pipe(new PipeOptions(minimumSegmentSize: 512));
        var rng = new Random(7);
        var producer = Task.Run(async () =>
        {
            foreach (var c in TestStreams.RandomChunks(mjpeg, rng, 3000))
                await pipe.Writer.WriteAsync(c);
            await pipe.Writer.CompleteAsync();
        });
        var splitter = new JpegFrameSplitter();
        var frames = new List<byte[]>();
        while (true)
        {
            var r = await pipe.Reader.ReadAsync();
            var buffer = r.Buffer;
            while (splitter.TryReadFrame(ref buffer, out var frame))
                frames.Add(frame.ToArray());
            if (r.IsCompleted)
            {
                Assert.Equal(0, splitter.Complete(buffer));
                pipe.Reader.AdvanceTo(buffer.End);
                break;
            }
            pipe.Reader.AdvanceTo(buffer.Start, buffer.End);
        }
        await producer;
        Assert.Equal(TestStreams.Frames, frames.Count);
        Assert.All(frames, f => Assert.Null(Jpeg.Check(f)));
        Assert.Equal(mjpeg.Length, frames.Sum(f => f.Length));
        Assert.Equal(0, splitter.SkippedBytes);
    }
}
