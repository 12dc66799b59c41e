using System.Buffers;
using BenchmarkDotNet.Attributes;
using Blankend.Orleans.Grains.Codec;

namespace Blankend.Bench.Micro;

/// <summary>
/// The /video_codec hot pieces: the marker-walking JPEG splitter over ffmpeg's image2pipe output (30 real 720p
/// frames back to back, read as one segment and as the 4 KB / 64 KB reads a pipe gives), and the Annex-B scan
/// every incoming chunk passes (the project's real H.264 probe stream, repeated to 1 MiB, in 64 KB chunks).
/// </summary>
[MemoryDiagnoser]
public class CodecBenchmarks
{
    private const int Frames = 30;
    private byte[] _stream = null!;
    private ReadOnlySequence<byte> _whole;
    private ReadOnlySequence<byte> _reads4K;
    private ReadOnlySequence<byte> _reads64K;
    private byte[] _annexB = null!;

    [GlobalSetup]
    public void Setup()
    {
        var frame = Media.Frame();
        _stream = new byte[frame.Length * Frames];
        for (var i = 0; i < Frames; i++)
            frame.CopyTo(_stream, i * frame.Length);
        _whole = new ReadOnlySequence<byte>(_stream);
        _reads4K = Segments(_stream, 4096);
        _reads64K = Segments(_stream, 65536);
        if (Split(_whole) != Frames || Split(_reads4K) != Frames)
            throw new InvalidOperationException("splitter did not find every frame");

        var probe = File.ReadAllBytes(Media.Find("grains/Codec/Probe/probe.264"));
        _annexB = new byte[1024 * 1024];
        for (var off = 0; off < _annexB.Length; off += probe.Length)
            probe.AsSpan(0, Math.Min(probe.Length, _annexB.Length - off)).CopyTo(_annexB.AsSpan(off));
    }

    [Benchmark(Description = "split 30 x 720p JPEG, one segment")]
    public int SplitWhole() => Split(_whole);

    [Benchmark(Description = "split 30 x 720p JPEG, 4 KB reads")]
    public int Split4K() => Split(_reads4K);

    [Benchmark(Description = "split 30 x 720p JPEG, 64 KB reads")]
    public int Split64K() => Split(_reads64K);

    [Benchmark(Description = "Annex-B scan, 1 MiB H.264 in 64 KB chunks")]
    public long ScanAnnexB()
    {
        var scanner = new AnnexBScanner("h264");
        for (var off = 0; off < _annexB.Length; off += 65536)
            scanner.Scan(_annexB.AsSpan(off, Math.Min(65536, _annexB.Length - off)));
        return scanner.StartCodes;
    }

    private static int Split(ReadOnlySequence<byte> input)
    {
        var splitter = new JpegFrameSplitter();
        var buffer = input;
        var n = 0;
        while (splitter.TryReadFrame(ref buffer, out _))
            n++;
        return n;
    }

    private static ReadOnlySequence<byte> Segments(byte[] data, int size)
    {
        Segment? first = null,
            last = null;
        for (var off = 0; off < data.Length; off += size)
        {
            var s = new Segment(data.AsMemory(off, Math.Min(size, data.Length - off)));
            if (first is null)
                first = last = s;
            else
                last = last!.Append(s);
        }
        return new ReadOnlySequence<byte>(first!, 0, last!, last!.Memory.Length);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory) => Memory = memory;

        public Segment Append(Segment next)
        {
            next.RunningIndex = RunningIndex + Memory.Length;
            Next = next;
            return next;
        }
    }
}
