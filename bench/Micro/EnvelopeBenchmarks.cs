using BenchmarkDotNet.Attributes;
using Blankend.Orleans;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Serialization;
using Orleans.Serialization.Cloning;

namespace Blankend.Bench.Micro;

/// <summary>
/// The frame type across a grain call. Cross-silo: one serialize + one deserialize (RoundTrip). Same silo: the
/// runtime deep-copies arguments unless the type is immutable; FrameEnvelope is [Immutable], so the copier hands
/// back the same reference (DeepCopy), where copying the payload (CopyPayloadBytes) would cost a 136 KB memcpy.
/// </summary>
[MemoryDiagnoser]
public class EnvelopeBenchmarks
{
    private Serializer<FrameEnvelope> _serializer = null!;
    private DeepCopier<FrameEnvelope> _copier = null!;
    private DeepCopier<byte[]> _bytesCopier = null!;
    private FrameEnvelope _frame = null!;
    private byte[] _serialized = null!;

    [GlobalSetup]
    public void Setup()
    {
        var services = new ServiceCollection()
            .AddSerializer(b => b.AddAssembly(typeof(FrameEnvelope).Assembly))
            .BuildServiceProvider();
        _serializer = services.GetRequiredService<Serializer<FrameEnvelope>>();
        _copier = services.GetRequiredService<DeepCopier<FrameEnvelope>>();
        _bytesCopier = services.GetRequiredService<DeepCopier<byte[]>>();
        _frame = new FrameEnvelope("cam0", 42, 1, FrameKind.Raw, 1_764_000_000_000, FrameOrigin.VideoIn, Media.Frame());
        _serialized = _serializer.SerializeToArray(_frame);

        // What the benchmarks claim, checked once.
        var back = _serializer.Deserialize(_serialized) ?? throw new InvalidOperationException("deserialized to null");
        if (
            back.Source != _frame.Source
            || back.Seq != _frame.Seq
            || !back.Payload.AsSpan().SequenceEqual(_frame.Payload)
        )
        {
            throw new InvalidOperationException("FrameEnvelope does not survive a serializer round trip");
        }
        if (!ReferenceEquals(_copier.Copy(_frame), _frame))
        {
            throw new InvalidOperationException("the deep copier copied an [Immutable] FrameEnvelope");
        }
    }

    [Benchmark]
    public byte[] Serialize() => _serializer.SerializeToArray(_frame);

    [Benchmark]
    public FrameEnvelope? Deserialize() => _serializer.Deserialize(_serialized);

    [Benchmark]
    public FrameEnvelope? RoundTrip() => _serializer.Deserialize(_serializer.SerializeToArray(_frame));

    [Benchmark]
    public FrameEnvelope DeepCopy() => _copier.Copy(_frame);

    [Benchmark]
    public byte[] CopyPayloadBytes() => _bytesCopier.Copy(_frame.Payload);
}
