using System.Reflection;
using Blankend.Orleans.Codec;

namespace Blankend.Orleans.Grains.Codec;

/// <summary>
/// Start-up probe of this host's ffmpeg: version, decoders, encoders, hwaccels, and, when a GPU decoder is
/// listed and the GPU is preferred, a real decode of a tiny embedded stream through it (listed is not usable:
/// Debian's ffmpeg lists h264_cuvid on machines without any NVIDIA driver).
/// </summary>
internal static class FfmpegProber
{
    private static readonly TimeSpan ListTimeout = TimeSpan.FromSeconds(15);
    private static readonly TimeSpan GpuProbeTimeout = TimeSpan.FromSeconds(20);

    public static async Task<FfmpegCapabilities> ProbeAsync(string path, bool preferGpu, CancellationToken ct = default)
    {
        var resolved = Resolve(path);
        FfmpegProcess.RunResult version;
        try
        {
            version = await FfmpegProcess
                .RunAsync(path, ["-hide_banner", "-version"], null, ListTimeout, ct)
                .ConfigureAwait(false);
        }
        catch (FfmpegStartException e)
        {
            return FfmpegCapabilities.Unavailable(path, resolved, e.Message, preferGpu);
        }
        if (!version.Ok)
            return FfmpegCapabilities.Unavailable(
                path,
                resolved,
                $"'{path} -version' failed (exit {version.ExitCode?.ToString() ?? "timeout"}): {version.StderrText}",
                preferGpu
            );
        var versionLine = ShortVersion(FirstLine(version.Stdout));

        var decoders = ParseCodecList(
            await FfmpegProcess
                .RunAsync(path, ["-hide_banner", "-decoders"], null, ListTimeout, ct)
                .ConfigureAwait(false)
        );
        var encoders = ParseCodecList(
            await FfmpegProcess
                .RunAsync(path, ["-hide_banner", "-encoders"], null, ListTimeout, ct)
                .ConfigureAwait(false)
        );
        var hwaccels = ParseHwaccels(
            await FfmpegProcess
                .RunAsync(path, ["-hide_banner", "-hwaccels"], null, ListTimeout, ct)
                .ConfigureAwait(false)
        );

        var probes = new List<GpuProbe>();
        var caps = new FfmpegCapabilities(
            path,
            resolved,
            versionLine,
            null,
            decoders,
            encoders,
            hwaccels,
            probes,
            preferGpu
        );
        if (preferGpu && encoders.Contains("mjpeg"))
        {
            foreach (var codec in VideoCodecs.Canonical)
            {
                // Cuvid first; the cuda hwaccel only when there is no cuvid decoder for this codec or it failed.
                if (decoders.Contains(codec + "_cuvid"))
                {
                    var p = await ProbeGpuAsync(path, codec, GpuMethod.Cuvid, caps.HasFpsMode, ct)
                        .ConfigureAwait(false);
                    probes.Add(p);
                    if (p.Ok)
                        continue;
                }
                if (hwaccels.Contains("cuda") && decoders.Contains(codec))
                    probes.Add(
                        await ProbeGpuAsync(path, codec, GpuMethod.HwaccelCuda, caps.HasFpsMode, ct)
                            .ConfigureAwait(false)
                    );
            }
        }
        if (!decoders.Contains(VideoCodecs.H264) && !decoders.Contains(VideoCodecs.Hevc))
            return caps with { Error = $"'{path}' lists neither an h264 nor an hevc decoder" };
        if (!encoders.Contains("mjpeg"))
            return caps with { Error = $"'{path}' has no mjpeg encoder (needed to turn decoded frames into JPEG)" };
        return caps;
    }

    /// <summary>Decodes the embedded 2-frame sample through the GPU path with the session's own command line;
    /// usable means exit 0 and at least one JPEG out.</summary>
    public static async Task<GpuProbe> ProbeGpuAsync(
        string path,
        string codec,
        GpuMethod method,
        bool fpsMode,
        CancellationToken ct = default
    )
    {
        var plan = DecoderPlan.ForGpu(codec, method);
        var args = DecoderSelector.DecodeArgs(plan, 32768, 5, fpsMode);
        try
        {
            var r = await FfmpegProcess.RunAsync(path, args, Sample(codec), GpuProbeTimeout, ct).ConfigureAwait(false);
            var jpegs = CountJpegs(r.Stdout);
            if (r.Ok && jpegs > 0)
                return new GpuProbe(codec, method, true, $"decoded {jpegs} frame(s)", Math.Round(r.Ms, 1));
            var why = r.ExitCode is null ? "timed out" : $"exit {r.ExitCode}, {jpegs} frame(s)";
            return new GpuProbe(codec, method, false, $"{why}: {FirstError(r.Stderr)}", Math.Round(r.Ms, 1));
        }
        catch (FfmpegStartException e)
        {
            return new GpuProbe(codec, method, false, e.Message, 0);
        }
    }

    /// <summary>A 256x144, 2-frame stream of <paramref name="codec"/> (made with ffmpeg's testsrc2; see
    /// docs/codec.md).</summary>
    public static byte[] Sample(string codec)
    {
        var name = codec == VideoCodecs.Hevc ? "probe.265" : "probe.264";
        using var s = Assembly
            .GetExecutingAssembly()
            .GetManifestResourceStream($"Blankend.Orleans.Grains.Codec.Probe.{name}")
            ?? throw new InvalidOperationException($"embedded resource {name} missing");
        using var ms = new MemoryStream();
        s.CopyTo(ms);
        return ms.ToArray();
    }

    internal static HashSet<string> ParseCodecList(FfmpegProcess.RunResult r)
    {
        var set = new HashSet<string>(StringComparer.Ordinal);
        if (!r.Ok)
            return set;
        var pastHeader = false;
        foreach (var raw in Lines(r.Stdout))
        {
            var line = raw.Trim();
            if (!pastHeader)
            {
                if (line.StartsWith("------", StringComparison.Ordinal))
                    pastHeader = true;
                continue;
            }
            var parts = line.Split(' ', 3, StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length >= 2 && parts[0].Length == 6)
                set.Add(parts[1]);
        }
        return set;
    }

    internal static HashSet<string> ParseHwaccels(FfmpegProcess.RunResult r)
    {
        var set = new HashSet<string>(StringComparer.Ordinal);
        if (!r.Ok)
            return set;
        foreach (var raw in Lines(r.Stdout))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line.EndsWith(':'))
                continue;
            set.Add(line);
        }
        return set;
    }

    /// <summary>Where <paramref name="path"/> resolves on PATH (what Process.Start will run), or null.</summary>
    public static string? Resolve(string path)
    {
        if (path.Contains('/'))
            return File.Exists(path) ? Path.GetFullPath(path) : null;
        foreach (
            var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(
                ':',
                StringSplitOptions.RemoveEmptyEntries
            )
        )
        {
            var candidate = Path.Combine(dir, path);
            if (File.Exists(candidate))
                return candidate;
        }
        return null;
    }

    internal static int CountJpegs(byte[] data)
    {
        var splitter = new JpegFrameSplitter();
        var seq = new System.Buffers.ReadOnlySequence<byte>(data);
        var n = 0;
        while (splitter.TryReadFrame(ref seq, out _))
            n++;
        return n;
    }

    private static string[] Lines(byte[] data) => System.Text.Encoding.UTF8.GetString(data).Split('\n');

    private static string FirstLine(byte[] data)
    {
        foreach (var l in Lines(data))
        {
            if (!string.IsNullOrWhiteSpace(l))
                return l.Trim();
        }
        return "";
    }

    /// <summary>The first stderr line without ffmpeg's "[h264_cuvid @ 0x55...] " context prefix.</summary>
    internal static string FirstError(string[] stderr)
    {
        if (stderr.Length == 0)
            return "no error output";
        var line = stderr[0];
        if (line.StartsWith('[') && line.IndexOf("] ", StringComparison.Ordinal) is var close and > 0)
            line = line[(close + 2)..];
        return line.Length <= 200 ? line : line[..200];
    }

    /// <summary>"ffmpeg version 5.1.9-0+deb12u1 Copyright ..." -> "5.1.9-0+deb12u1".</summary>
    internal static string ShortVersion(string line)
    {
        var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var i = Array.IndexOf(parts, "version");
        return i >= 0 && i + 1 < parts.Length ? parts[i + 1] : line;
    }
}
