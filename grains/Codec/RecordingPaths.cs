using System.Globalization;

namespace Blankend.Orleans.Grains.Codec;

/// <summary>
/// Recording file names are made here, never taken from a caller: <c>{source}-{UTC yyyyMMddTHHmmssfffZ}.mp4</c>
/// in the configured folder. The source must be a valid client_id (letters, digits, - _ . : @; no separator),
/// and the final absolute path is checked to sit directly in the folder.
/// </summary>
internal static class RecordingPaths
{
    /// <summary>Absolute form of the configured folder (relative: against the working directory).</summary>
    public static string Folder(string configured) => Path.TrimEndingDirectorySeparator(Path.GetFullPath(configured));

    /// <summary>A new, not yet existing file path for <paramref name="source"/>. Throws
    /// <see cref="ArgumentException"/> when the source cannot name a file inside the folder.</summary>
    public static string NewPath(string folder, string source, DateTime utcNow)
    {
        if (!ClientIds.IsValid(source, out var why))
            throw new ArgumentException($"source {why}", nameof(source));
        var root = Folder(folder);
        var stamp = utcNow.ToUniversalTime().ToString("yyyyMMdd'T'HHmmssfff'Z'", CultureInfo.InvariantCulture);
        for (var n = 0; ; n++)
        {
            var name = n == 0 ? $"{source}-{stamp}.mp4" : $"{source}-{stamp}-{n}.mp4";
            var full = Path.GetFullPath(Path.Combine(root, name));
            if (!IsDirectlyInside(root, full))
                throw new ArgumentException(
                    $"source '{source}' does not make a file name inside the recordings folder",
                    nameof(source)
                );
            if (!File.Exists(full))
                return full;
        }
    }

    public static bool IsDirectlyInside(string folder, string path)
    {
        var root = Folder(folder);
        var full = Path.GetFullPath(path);
        return string.Equals(Path.GetDirectoryName(full), root, StringComparison.Ordinal)
            && full.StartsWith(root + Path.DirectorySeparatorChar, StringComparison.Ordinal)
            && Path.GetFileName(full) is { Length: > 0 } file
            && file != "."
            && file != "..";
    }
}
