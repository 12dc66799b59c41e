using Blankend.Orleans.Ai;

namespace Blankend.Orleans.Grains.Ai.Runtime;

/// <summary>
/// An insightface model pack (<c>INSIGHTFACE_APP</c> / <c>ai:insightface_dir</c>, e.g. <c>buffalo_l</c>): the
/// files of the kinds it can supply. The value is a folder; a bare pack name that is not a folder here is looked
/// up where insightface keeps its packs (<c>~/.insightface/models/NAME</c>), as the original service did.
/// </summary>
internal static class InsightFacePack
{
    /// <summary>The pack's file for a kind, or null (no pack, or the pack has none of that kind). A missing
    /// recognition file gives the pattern it looked for, so the reason names it.</summary>
    public static string? Pick(string? pack, AiModelKind kind)
    {
        var pattern = kind switch
        {
            AiModelKind.FaceDetect => "det_*.onnx",
            AiModelKind.ArcFace => "w600k_*.onnx",
            _ => null,
        };
        if (pattern is null || Folder(pack) is not { } dir)
            return null;
        var files = Directory.Exists(dir) ? Directory.GetFiles(dir, pattern) : [];
        Array.Sort(files, StringComparer.Ordinal);
        if (files.Length > 0)
            return files[0];
        // No SCRFD in the pack: the shipped BlazeFace still detects. No recognition model: say what is missing.
        return kind == AiModelKind.ArcFace ? Path.Combine(dir, pattern) : null;
    }

    /// <summary>The pack folder, or null when none is configured.</summary>
    public static string? Folder(string? pack)
    {
        if (string.IsNullOrWhiteSpace(pack))
            return null;
        var full = Path.GetFullPath(pack);
        if (Directory.Exists(full) || pack.Contains('/') || pack.Contains('\\'))
            return full;
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        var named = Path.Combine(home, ".insightface", "models", pack);
        return Directory.Exists(named) ? named : full;
    }
}
