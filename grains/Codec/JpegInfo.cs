using System.Buffers.Binary;

namespace Blankend.Orleans.Grains.Codec;

/// <summary>Frame size from a JPEG's SOF segment, found by walking the marker segments (no decode).</summary>
internal static class JpegInfo
{
    public static bool TryGetSize(ReadOnlySpan<byte> jpeg, out int width, out int height)
    {
        width = height = 0;
        if (jpeg.Length < 4 || jpeg[0] != 0xFF || jpeg[1] != 0xD8)
            return false;
        var i = 2;
        while (i + 4 <= jpeg.Length)
        {
            if (jpeg[i] != 0xFF)
                return false;
            var marker = jpeg[i + 1];
            if (marker == 0xFF)
            {
                i++;
                continue;
            }
            if (marker is 0xD8 or 0x01 or (>= 0xD0 and <= 0xD7))
            {
                i += 2;
                continue;
            }
            if (marker is 0xD9 or 0xDA)
                return false; // EOI / SOS before any SOF
            var length = BinaryPrimitives.ReadUInt16BigEndian(jpeg[(i + 2)..]);
            if (length < 2)
                return false;
            // SOF0..SOF15 except DHT (C4), JPG (C8), DAC (CC).
            if (marker is >= 0xC0 and <= 0xCF and not 0xC4 and not 0xC8 and not 0xCC)
            {
                if (i + 9 > jpeg.Length)
                    return false;
                height = BinaryPrimitives.ReadUInt16BigEndian(jpeg[(i + 5)..]);
                width = BinaryPrimitives.ReadUInt16BigEndian(jpeg[(i + 7)..]);
                return width > 0 && height > 0;
            }
            i += 2 + length;
        }
        return false;
    }
}
