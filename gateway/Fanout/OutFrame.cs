using System.Buffers;
using System.Text.Json;

namespace Blankend.Orleans.Gateway.Fanout;

/// <summary>
/// One frame as the viewers of this gateway get it: the payload and its meta text are shared by every viewer
/// (one allocation per frame, none per viewer).
/// </summary>
public sealed class OutFrame(FrameEnvelope frame)
{
    private byte[]? _meta;

    public FrameEnvelope Frame { get; } = frame;

    /// <summary>UTF-8 meta JSON (<c>meta=1</c>), built on first use and then shared.</summary>
    public byte[] Meta => _meta ?? Interlocked.CompareExchange(ref _meta, BuildMeta(Frame), null) ?? _meta!;

    public static byte[] BuildMeta(FrameEnvelope f)
    {
        var buffer = new ArrayBufferWriter<byte>(160);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteNumber("seq", f.Seq);
            w.WriteString("source", f.Source);
            w.WriteString("kind", f.KindName);
            w.WriteNumber("ts_ms", f.TimestampMs);
            w.WriteNumber("bytes", f.Payload.Length);
            w.WriteString("origin", f.Origin switch { FrameOrigin.VideoCodec => "video_codec", FrameOrigin.Bus => "bus", _ => "video_in" });
            w.WriteNumber("epoch", f.Epoch);
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }
}
