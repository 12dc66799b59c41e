using System.Collections.Concurrent;
using System.Diagnostics;

namespace Blankend.Orleans.Tests.Support;

/// <summary>H.264 / HEVC Annex-B test streams made by the real ffmpeg (testsrc2), cached per shape for the
/// run.</summary>
public static class TestStreams
{
    private static readonly ConcurrentDictionary<string, Lazy<byte[]>> Cache = new();

    /// <summary>2 s of 320x240 at 25 fps: 50 frames, x264 defaults (B-frames, one keyframe at the start).</summary>
    public static byte[] H264() =>
        Make("h264", "320x240", 25, 2, "-c:v libx264 -preset veryfast -bsf:v h264_mp4toannexb");

    public static byte[] Hevc() =>
        Make("hevc", "320x240", 25, 2, "-c:v libx265 -preset veryfast -x265-params log-level=error");

    /// <summary>A longer stream without B-frames (a typical live camera).</summary>
    public static byte[] H264Live(int seconds = 4) =>
        Make("h264", "640x360", 25, seconds, "-c:v libx264 -preset veryfast -tune zerolatency -bsf:v h264_mp4toannexb");

    public const int Frames = 50;

    private static byte[] Make(string format, string size, int rate, int seconds, string codecArgs)
    {
        var key = $"{format}|{size}|{rate}|{seconds}|{codecArgs}";
        return Cache
            .GetOrAdd(key, _ => new Lazy<byte[]>(() =>
            {
                var psi = new ProcessStartInfo("ffmpeg")
                {
                    RedirectStandardOutput = true,
                    RedirectStandardError = true,
                    UseShellExecute = false,
                };
                foreach (
                    var a in $"-hide_banner -loglevel error -f lavfi -i testsrc2=size={size}:rate={rate} -t {seconds} {codecArgs} -f {format} pipe:1".Split(
                        ' '
                    )
                )
                    psi.ArgumentList.Add(a);
                using var p = Process.Start(psi)!;
                using var ms = new MemoryStream();
                var err = p.StandardError.ReadToEndAsync();
                p.StandardOutput.BaseStream.CopyTo(ms);
                p.WaitForExit();
                if (p.ExitCode != 0 || ms.Length == 0)
                    throw new InvalidOperationException($"ffmpeg could not make the test stream ({key}): {err.Result}");
                return ms.ToArray();
            }))
            .Value;
    }

    /// <summary>Splits <paramref name="data"/> at random sizes in [1, maxChunk].</summary>
    public static List<byte[]> RandomChunks(byte[] data, Random rng, int maxChunk = 4000)
    {
        var chunks = new List<byte[]>();
        for (var i = 0; i < data.Length; )
        {
            var n = Math.Min(rng.Next(1, maxChunk + 1), data.Length - i);
            chunks.Add(data.AsSpan(i, n).ToArray());
            i += n;
        }
        return chunks;
    }
}

/// <summary>Child processes of this test process, read from /proc.</summary>
public static class Procs
{
    public sealed record Proc(int Pid, int Ppid, string Comm, char State);

    public static Proc? Read(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var open = stat.IndexOf('(');
            var close = stat.LastIndexOf(')');
            var comm = stat[(open + 1)..close];
            var rest = stat[(close + 2)..].Split(' ');
            return new Proc(pid, int.Parse(rest[1]), comm, rest[0][0]);
        }
        catch (Exception e)
            when (e is IOException or UnauthorizedAccessException or FormatException or ArgumentOutOfRangeException)
        {
            return null;
        }
    }

    /// <summary>ffmpeg processes whose parent is this process (zombies included: state 'Z').</summary>
    public static List<Proc> FfmpegChildren()
    {
        var me = Environment.ProcessId;
        var list = new List<Proc>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid))
                continue;
            if (Read(pid) is { } p && p.Ppid == me && p.Comm == "ffmpeg")
                list.Add(p);
        }
        return list;
    }

    /// <summary>True once <paramref name="pid"/> is no process of ours at all (killed AND reaped), within the
    /// timeout.</summary>
    public static async Task<bool> WaitGoneAsync(int pid, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var p = Read(pid);
            if (p is null || p.Ppid != Environment.ProcessId)
                return true;
            if (DateTime.UtcNow > deadline)
                return false;
            await Task.Delay(50);
        }
    }
}

/// <summary>ffprobe of a recorded file.</summary>
public static class FfProbe
{
    public sealed record Info(string Codec, int Frames, int Width, int Height, string Format);

    public static async Task<Info> ReadAsync(string path)
    {
        var psi = new ProcessStartInfo("ffprobe")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (
            var a in new[]
            {
                "-v",
                "error",
                "-count_frames",
                "-select_streams",
                "v:0",
                "-show_entries",
                "stream=codec_name,nb_read_frames,width,height:format=format_name",
                "-of",
                "default=noprint_wrappers=1",
                path,
            }
        )
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var output = await p.StandardOutput.ReadToEndAsync();
        var err = await p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        if (p.ExitCode != 0)
            throw new InvalidOperationException($"ffprobe failed on {path}: {err}");
        var kv = output
            .Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split('=', 2))
            .Where(a => a.Length == 2)
            .ToDictionary(a => a[0], a => a[1].Trim());
        return new Info(
            kv["codec_name"],
            int.Parse(kv["nb_read_frames"]),
            int.Parse(kv["width"]),
            int.Parse(kv["height"]),
            kv["format_name"]
        );
    }
}
