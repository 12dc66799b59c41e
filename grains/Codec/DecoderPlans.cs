using System.Globalization;
using Blankend.Orleans.Codec;

namespace Blankend.Orleans.Grains.Codec;

internal enum GpuMethod : byte
{
    /// <summary><c>-c:v h264_cuvid</c> / <c>hevc_cuvid</c>: NVDEC through ffmpeg's CUVID decoders.</summary>
    Cuvid,

    /// <summary><c>-hwaccel cuda</c>: the native decoder with NVDEC acceleration.</summary>
    HwaccelCuda,
}

/// <summary>How one session's ffmpeg decodes: the decoder's name (as reported) and the arguments placed before
/// <c>-i</c>.</summary>
internal sealed record DecoderPlan(string Codec, string Decoder, bool Gpu, IReadOnlyList<string> InputArgs)
{
    /// <summary>CPU decoder. Slice threading only: frame threading holds one frame per thread back, which
    /// adds latency to a live stream (measured: 2-3 frames more in flight on 2 cores).</summary>
    public static DecoderPlan Cpu(string codec) => new(codec, codec, false, ["-thread_type", "slice"]);

    public static DecoderPlan ForGpu(string codec, GpuMethod method) =>
        method == GpuMethod.Cuvid
            ? new(codec, codec + "_cuvid", true, ["-c:v", codec + "_cuvid"])
            : new(codec, codec + " (hwaccel cuda)", true, ["-hwaccel", "cuda"]);
}

/// <summary>The result of one GPU probe decode on this host.</summary>
internal sealed record GpuProbe(string Codec, GpuMethod Method, bool Ok, string Detail, double Ms)
{
    public string Decoder => DecoderPlan.ForGpu(Codec, Method).Decoder;
}

/// <summary>What this host's ffmpeg can do, probed once at start-up.</summary>
internal sealed record FfmpegCapabilities(
    string ConfiguredPath,
    string? ResolvedPath,
    string? Version,
    string? Error,
    IReadOnlySet<string> Decoders,
    IReadOnlySet<string> Encoders,
    IReadOnlySet<string> Hwaccels,
    IReadOnlyList<GpuProbe> GpuProbes,
    bool PreferGpu
)
{
    public bool Available => Error is null;

    /// <summary>ffmpeg 5.1 replaced <c>-vsync</c> with <c>-fps_mode</c>; older builds (Ubuntu 22.04 ships 4.4) only
    /// know
    /// <c>-vsync</c>. Unknown version strings (git builds) are taken as new.</summary>
    public bool HasFpsMode => ParseVersion(Version) is not { } v || v >= new Version(5, 1);

    public bool CanRecord => Available && Encoders.Contains("libx264") && Decoders.Contains("mjpeg");

    public string[] CpuDecoders => [.. VideoCodecs.Canonical.Where(Decoders.Contains)];

    public string[] GpuDecoders =>
        [
            .. Decoders
                .Where(d => d.EndsWith("_cuvid", StringComparison.Ordinal) && VideoCodecs.Canonical.Contains(d[..^6]))
                .Order(StringComparer.Ordinal),
        ];

    public static FfmpegCapabilities Unavailable(string path, string? resolved, string error, bool preferGpu) =>
        new(
            path,
            resolved,
            null,
            error,
            new HashSet<string>(),
            new HashSet<string>(),
            new HashSet<string>(),
            [],
            preferGpu
        );

    /// <summary>"ffmpeg version 5.1.9-0+deb12u1 ..." -> 5.1.9; "n6.1" -> 6.1; null when it does not parse.</summary>
    public static Version? ParseVersion(string? versionLine)
    {
        if (string.IsNullOrWhiteSpace(versionLine))
            return null;
        var parts = versionLine.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var i = Array.IndexOf(parts, "version");
        var token = i >= 0 && i + 1 < parts.Length ? parts[i + 1] : parts[0];
        token = token.TrimStart('n', 'N');
        var end = 0;
        while (end < token.Length && (char.IsAsciiDigit(token[end]) || token[end] == '.'))
            end++;
        var numeric = token[..end].Trim('.');
        if (numeric.Length == 0)
            return null;
        if (!numeric.Contains('.'))
            numeric += ".0";
        return System.Version.TryParse(numeric, out var v) ? v : null;
    }
}

/// <summary>The decision, kept pure so it can be tested with any probe outcome (a GPU fault cannot be staged
/// here).</summary>
internal static class DecoderSelector
{
    /// <summary>Primary decoder for <paramref name="codec"/> and the CPU fallback when the primary is a GPU
    /// one.</summary>
    /// <param name="gpuDisabledReason">Set when this host stopped trusting its GPU (repeated mid-session
    /// failures).</param>
    public static DecoderChoice Choose(string codec, FfmpegCapabilities caps, string? gpuDisabledReason = null)
    {
        if (!caps.Available)
            return DecoderChoice.None(caps.Error!);
        DecoderPlan? cpu = caps.Decoders.Contains(codec) ? DecoderPlan.Cpu(codec) : null;
        DecoderPlan? gpu = null;
        if (caps.PreferGpu && gpuDisabledReason is null)
        {
            foreach (var probe in caps.GpuProbes)
            {
                if (probe.Codec == codec && probe.Ok)
                {
                    gpu = DecoderPlan.ForGpu(codec, probe.Method);
                    break;
                }
            }
        }
        if (gpu is not null)
            return new DecoderChoice(gpu, cpu, null);
        if (cpu is not null)
            return new DecoderChoice(cpu, null, null);
        return DecoderChoice.None($"this ffmpeg lists no decoder for {codec}");
    }

    /// <summary>Whether the GPU is usable for anything on this host, and why (not).</summary>
    public static (bool Usable, string Reason) GpuState(FfmpegCapabilities caps, string? gpuDisabledReason)
    {
        if (!caps.Available)
            return (false, "ffmpeg unavailable: " + caps.Error);
        if (!caps.PreferGpu)
            return (false, "codec:prefer_gpu is false");
        if (gpuDisabledReason is not null)
            return (false, gpuDisabledReason);
        var ok = caps.GpuProbes.Where(p => p.Ok).Select(p => p.Decoder).ToArray();
        if (ok.Length > 0)
            return (true, "probe decode succeeded: " + string.Join(", ", ok));
        if (caps.GpuProbes.Count == 0)
        {
            return caps.GpuDecoders.Length == 0 && !caps.Hwaccels.Contains("cuda")
                ? (false, "this ffmpeg has no NVDEC decoders (h264_cuvid/hevc_cuvid) and no cuda hwaccel")
                : (false, "not probed");
        }
        return (
            false,
            "probe decode failed: " + string.Join("; ", caps.GpuProbes.Select(p => $"{p.Decoder}: {p.Detail}"))
        );
    }

    /// <summary>The ffmpeg command line of a decode session (stdin: Annex-B, stdout: concatenated JPEGs).</summary>
    public static List<string> DecodeArgs(
        DecoderPlan plan,
        int probeSize,
        int qscale,
        bool fpsModeOption,
        long maxPixels = 40_000_000
    )
    {
        var args = new List<string> { "-hide_banner", "-nostats", "-loglevel", "error" };
        args.AddRange(plan.InputArgs);
        // A decoder option (input side): the decoder refuses frames declaring more pixels before allocating them.
        args.AddRange(["-max_pixels", maxPixels.ToString(CultureInfo.InvariantCulture)]);
        args.AddRange([
            "-probesize",
            probeSize.ToString(CultureInfo.InvariantCulture),
            "-analyzeduration",
            "0",
            "-f",
            plan.Codec,
            "-i",
            "pipe:0",
            "-map",
            "0:v:0",
            "-an",
            "-sn",
            "-dn",
        ]);
        // One JPEG per decoded frame: never duplicate or drop by timestamps (raw streams have none worth keeping).
        args.AddRange(fpsModeOption ? ["-fps_mode", "passthrough"] : ["-vsync", "passthrough"]);
        args.AddRange([
            "-f",
            "image2pipe",
            "-c:v",
            "mjpeg",
            "-q:v",
            qscale.ToString(CultureInfo.InvariantCulture),
            "pipe:1",
        ]);
        return args;
    }
}

internal sealed record DecoderChoice(DecoderPlan? Primary, DecoderPlan? Fallback, string? Unavailable)
{
    public static DecoderChoice None(string why) => new(null, null, why);
}
