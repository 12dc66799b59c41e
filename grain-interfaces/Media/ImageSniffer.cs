namespace Blankend.Orleans.Media;

/// <summary>Magic-number check of an uploaded image (before anything decodes it).</summary>
public static class ImageSniffer
{
    private static ReadOnlySpan<byte> Png => [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    /// <summary>Largest image (width x height) the AI endpoints decode: 8K UHD is 33 MP.</summary>
    public const long MaxPixels = 40_000_000;

    public static bool IsJpegOrPng(ReadOnlySpan<byte> b) =>
        (b.Length >= 4 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF)
        || (b.Length >= 16 && b[..8].SequenceEqual(Png));

    /// <summary>Why the image may not be decoded: its header gives no size (or a zero one), or more than
    /// <see cref="MaxPixels"/>. Null when it may.</summary>
    public static string? SizeProblem(ReadOnlySpan<byte> b)
    {
        if (!TryReadSize(b, out var w, out var h) || w <= 0 || h <= 0)
            return "the image header does not give its size (no PNG IHDR or JPEG SOF before the image data)";
        if ((long)w * h > MaxPixels)
            return $"the image declares {w}x{h} pixels, more than the {MaxPixels / 1_000_000} megapixels accepted";
        return null;
    }

    /// <summary>The size a PNG (IHDR) or JPEG (first SOFn) header declares; false when none is found.</summary>
    public static bool TryReadSize(ReadOnlySpan<byte> b, out int width, out int height)
    {
        width = height = 0;
        if (b.Length >= 24 && b[..8].SequenceEqual(Png))
        {
            width = (int)Math.Min(int.MaxValue, System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(b[16..]));
            height = (int)Math.Min(int.MaxValue, System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(b[20..]));
            return true;
        }
        var i = 2;
        while (i + 9 < b.Length)
        {
            if (b[i] != 0xFF)
                return false;
            var marker = b[i + 1];
            if (marker == 0xFF)
            {
                i++;
                continue;
            } // fill byte
            if (marker is 0xD8 or 0x01 or (>= 0xD0 and <= 0xD7))
            {
                i += 2;
                continue;
            }
            var length = (b[i + 2] << 8) | b[i + 3];
            if (marker is >= 0xC0 and <= 0xCF && marker is not (0xC4 or 0xC8 or 0xCC))
            {
                height = (b[i + 5] << 8) | b[i + 6];
                width = (b[i + 7] << 8) | b[i + 8];
                return true;
            }
            if (length < 2)
                return false;
            i += 2 + length;
        }
        return false;
    }
}
