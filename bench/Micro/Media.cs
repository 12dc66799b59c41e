namespace Blankend.Bench.Micro;

/// <summary>The benchmark frame: bench/media/frame-1280x720.jpg (1280x720, 136 KB), found by walking up to the
/// repository root from the executable or the working directory.</summary>
public static class Media
{
    public const string FramePath = "bench/media/frame-1280x720.jpg";

    public static byte[] Frame() => File.ReadAllBytes(Find(FramePath));

    /// <summary>A file of the repository, by its path from the root.</summary>
    public static string Find(string relativePath)
    {
        foreach (var start in new[] { AppContext.BaseDirectory, Directory.GetCurrentDirectory() })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var p = Path.Combine(dir.FullName, relativePath);
                if (File.Exists(p))
                {
                    return p;
                }
            }
        }
        throw new FileNotFoundException(
            $"{relativePath} not found above {AppContext.BaseDirectory} or {Directory.GetCurrentDirectory()}"
        );
    }
}
