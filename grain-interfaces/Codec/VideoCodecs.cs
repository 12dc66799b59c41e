namespace Blankend.Orleans.Codec;

/// <summary>The <c>codec</c> values <c>/video_codec</c> accepts, and their canonical names.</summary>
public static class VideoCodecs
{
    public const string H264 = "h264";
    public const string Hevc = "hevc";

    /// <summary>What a client may write (h265 is an alias of hevc).</summary>
    public static readonly string[] Accepted = ["h264", "hevc", "h265"];

    public static readonly string[] Canonical = [H264, Hevc];

    /// <summary>Canonical name of <paramref name="value"/> (case-insensitive), or false when it is not
    /// accepted.</summary>
    public static bool TryParse(string? value, out string codec)
    {
        switch (value?.Trim().ToLowerInvariant())
        {
            case "h264":
                codec = H264;
                return true;
            case "hevc" or "h265":
                codec = Hevc;
                return true;
            default:
                codec = "";
                return false;
        }
    }
}
