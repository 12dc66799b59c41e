using BenchmarkDotNet.Attributes;
using Blankend.Orleans.Media;

namespace Blankend.Bench.Micro;

/// <summary><c>Jpeg.Check</c>: the structural check (SOI, marker, EOI) every ingested frame passes.</summary>
[MemoryDiagnoser]
public class JpegBenchmarks
{
    private byte[] _frame = null!;
    private byte[] _truncated = null!;

    [GlobalSetup]
    public void Setup()
    {
        _frame = Media.Frame();
        _truncated = _frame[..^100];
        if (Jpeg.Check(_frame) is not null || Jpeg.Check(_truncated) is null)
        {
            throw new InvalidOperationException("Jpeg.Check does not tell the test frames apart");
        }
    }

    [Benchmark]
    public string? CheckValid() => Jpeg.Check(_frame);

    [Benchmark]
    public string? CheckTruncated() => Jpeg.Check(_truncated);
}
