using System.Buffers;
using System.Text.Json;

namespace Blankend.Orleans.Gateway.Fanout;

/// <summary>The <c>meta=1</c> text of a frame: built once per frame (<see cref="WireFrame.Create"/>), shared by every
/// viewer.</summary>
internal static class OutFrame
{
    /// <summary>UTF-8 meta JSON.</summary>
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
            w.WriteString(
                "origin",
                f.Origin switch
                {
                    FrameOrigin.VideoCodec => "video_codec",
                    FrameOrigin.Bus or FrameOrigin.BusPipeline => "bus",
                    _ => "video_in",
                }
            );
            w.WriteNumber("epoch", f.Epoch);
            if (f.Faces is { } faces)
            {
                // The detect step's result: boxes and keypoints in frame pixels (mesh points are left out: 1404
                // numbers per face per frame would dwarf the rest; /api/v1/ai/process?format=json gives them).
                w.WriteStartArray("faces");
                foreach (var face in faces)
                {
                    w.WriteStartObject();
                    w.WriteNumber("score", Math.Round(face.Score, 3));
                    WriteRounded(w, "box", face.Box);
                    WriteRounded(w, "keypoints", face.Keypoints);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
            }
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    private static void WriteRounded(Utf8JsonWriter w, string name, float[] values)
    {
        w.WriteStartArray(name);
        foreach (var v in values)
            w.WriteNumberValue(Math.Round(v, 1));
        w.WriteEndArray();
    }
}
