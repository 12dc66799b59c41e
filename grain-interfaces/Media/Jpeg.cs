namespace Blankend.Orleans.Media;

/// <summary>Cheap structural check of one JPEG frame: what the contract promises (SOI ... EOI), no decode.</summary>
public static class Jpeg
{
    /// <summary>Smallest JPEG that can hold SOI, one marker segment and EOI.</summary>
    public const int MinLength = 6;

    /// <summary>Null when <paramref name="data"/> looks like one complete JPEG, else why not.</summary>
    public static string? Check(ReadOnlySpan<byte> data)
    {
        if (data.Length < MinLength)
            return $"too short for a JPEG ({data.Length} bytes)";
        if (data[0] != 0xFF || data[1] != 0xD8)
            return "does not start with the JPEG SOI marker (FF D8)";
        if (data[2] != 0xFF)
            return "no JPEG marker after SOI";
        if (data[^2] != 0xFF || data[^1] != 0xD9)
            return "does not end with the JPEG EOI marker (FF D9): truncated?";
        return null;
    }
}
