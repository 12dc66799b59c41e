using System.Buffers.Binary;
using System.Text;

namespace Blankend.Orleans.Tests.Support;

/// <summary>Real JPEG frames (the public-domain test portrait), made distinct by a COM segment so each stays a
/// valid JPEG and can be told apart after the round trip.</summary>
public static class TestJpeg
{
    private static readonly Lazy<byte[]> BaseBytes = new(() => File.ReadAllBytes(TestEnv.TestData("astronaut.jpg")));

    public static byte[] Base => BaseBytes.Value;

    /// <summary>The portrait with a COM segment "tag=N" after SOI, plus padding COM segments up to about
    /// <paramref name="minBytes"/>.</summary>
    public static byte[] Tagged(int tag, int minBytes = 0)
    {
        var baseJpeg = Base;
        using var ms = new MemoryStream(Math.Max(minBytes, baseJpeg.Length) + 64);
        ms.Write(baseJpeg, 0, 2);
        WriteCom(ms, Encoding.ASCII.GetBytes($"tag={tag:D8}"));
        var remaining = minBytes - baseJpeg.Length - 16;
        while (remaining > 0)
        {
            var n = Math.Min(remaining, 65000);
            var pad = new byte[n];
            pad.AsSpan().Fill((byte)('a' + tag % 26));
            WriteCom(ms, pad);
            remaining -= n + 4;
        }
        ms.Write(baseJpeg, 2, baseJpeg.Length - 2);
        return ms.ToArray();
    }

    /// <summary>The tag written by <see cref="Tagged"/>, or -1.</summary>
    public static int ReadTag(ReadOnlySpan<byte> jpeg)
    {
        if (jpeg.Length < 18 || jpeg[2] != 0xFF || jpeg[3] != 0xFE)
            return -1;
        var text = Encoding.ASCII.GetString(jpeg.Slice(6, 12));
        return text.StartsWith("tag=", StringComparison.Ordinal) && int.TryParse(text.AsSpan(4), out var t) ? t : -1;
    }

    private static void WriteCom(Stream s, byte[] data)
    {
        Span<byte> header = stackalloc byte[4];
        header[0] = 0xFF;
        header[1] = 0xFE;
        BinaryPrimitives.WriteUInt16BigEndian(header[2..], (ushort)(data.Length + 2));
        s.Write(header);
        s.Write(data);
    }
}
