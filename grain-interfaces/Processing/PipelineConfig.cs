using System.Globalization;
using Blankend.Orleans.Ai;

namespace Blankend.Orleans.Processing;

/// <summary>
/// Settings of the processing path for all sources (section <c>video_processing</c> plus the re-encode keys of
/// <c>stream</c>). Changed at run time through <c>POST /api/v1/video_processing/pipeline/config</c>.
/// </summary>
/// <param name="Enabled">Frames of a source go through its device worker (kind=processed).</param>
/// <param name="ReencodeEnabled">The re-encode step (decode, encode at <paramref name="JpegQuality"/>).</param>
/// <param name="JpegQuality">1-100.</param>
/// <param name="FpsLimit">Frames per second admitted to the worker per source; 0 = no limit.</param>
/// <param name="Workers">Worker loops (dedicated threads) per device.</param>
/// <param name="HwTranscode">Route to GPU devices when the cluster has any (never a silent fallback: the
/// status says which provider runs).</param>
[GenerateSerializer, Immutable, Alias("blankend.PipelineSettings")]
public sealed record PipelineSettings(
    [property: Id(0)] bool Enabled,
    [property: Id(1)] bool ReencodeEnabled,
    [property: Id(2)] int JpegQuality,
    [property: Id(3)] double FpsLimit,
    [property: Id(4)] int Workers,
    [property: Id(5)] bool HwTranscode
);

/// <summary>Per-source override: a null value inherits the global setting.</summary>
[GenerateSerializer, Immutable, Alias("blankend.SourceOverride")]
public sealed record SourceOverride(
    [property: Id(0)] string Source,
    [property: Id(1)] bool? Enabled,
    [property: Id(2)] bool? ReencodeEnabled,
    [property: Id(3)] int? JpegQuality,
    [property: Id(4)] double? FpsLimit
);

/// <summary>What applies to one source after the overrides.</summary>
[GenerateSerializer, Immutable, Alias("blankend.EffectiveSettings")]
public sealed record EffectiveSettings(
    [property: Id(0)] bool Enabled,
    [property: Id(1)] bool ReencodeEnabled,
    [property: Id(2)] int JpegQuality,
    [property: Id(3)] double FpsLimit,
    [property: Id(4)] int Workers,
    [property: Id(5)] bool HwTranscode,
    [property: Id(6)] long Version,
    [property: Id(7)] AiSteps AiSteps = AiSteps.None,
    [property: Id(8)] MatteBackground? Background = null,
    [property: Id(9)] int FaceDetectInterval = 5,
    [property: Id(10)] bool SimpleForward = false,
    [property: Id(11)] long ReferenceVersion = 0,
    [property: Id(12)] string DepthMode = "colormap"
)
{
    /// <summary>The AI steps that run: none in simple-forward mode (connectivity test: the input is
    /// forwarded).</summary>
    public AiSteps ActiveAiSteps => SimpleForward ? AiSteps.None : AiStepNames.WithPrerequisites(AiSteps);

    /// <summary>True when at least one step changes the pixels or the bytes (else a frame passes unchanged).</summary>
    public bool HasWork => ReencodeEnabled || ActiveAiSteps != AiSteps.None;

    /// <summary>The background the matte step composites over (solid green unless configured).</summary>
    public MatteBackground MatteBackground => Background ?? MatteBackground.Green;
}

/// <summary>The whole pipeline configuration, versioned: a late, older push never wins.</summary>
[GenerateSerializer, Immutable, Alias("blankend.PipelineConfig")]
public sealed record PipelineConfig(
    [property: Id(0)] long Version,
    [property: Id(1)] PipelineSettings Global,
    [property: Id(2)] SourceOverride[] Sources,
    [property: Id(3)] RealtimeSettings? Realtime = null
)
{
    /// <summary>The realtime (AI) settings; off when none were given.</summary>
    public RealtimeSettings Rt => Realtime ?? RealtimeSettings.Off;

    public EffectiveSettings For(string source)
    {
        SourceOverride? o = null;
        foreach (var s in Sources)
        {
            if (string.Equals(s.Source, source, StringComparison.Ordinal))
            {
                o = s;
                break;
            }
        }
        RealtimeSourceOverride? ro = null;
        var rt = Rt;
        foreach (var s in rt.Sources)
        {
            if (string.Equals(s.Source, source, StringComparison.Ordinal))
            {
                ro = s;
                break;
            }
        }
        var g = Global;
        var processing = o?.Enabled ?? g.Enabled;
        var realtime = ro?.Enabled ?? rt.Enabled;
        var steps = realtime ? ro?.Steps ?? rt.Steps : AiSteps.None;
        // The realtime pipeline routes a source to its device worker by itself: the AI steps need no
        // video_processing.enabled; its workers count while it is on.
        return new EffectiveSettings(
            processing || (realtime && steps != AiSteps.None),
            o?.ReencodeEnabled ?? g.ReencodeEnabled,
            o?.JpegQuality ?? g.JpegQuality,
            o?.FpsLimit ?? g.FpsLimit,
            realtime ? Math.Max(g.Workers, rt.Workers) : g.Workers,
            g.HwTranscode,
            Version,
            steps,
            rt.Background,
            rt.FaceDetectInterval,
            rt.SimpleForward,
            rt.ReferenceVersion,
            rt.DepthMode
        );
    }
}

/// <summary>
/// A change request: null fields are left as they are. With <see cref="Source"/> it changes (or, with
/// <see cref="Reset"/>, removes) that source's override; without, the global settings.
/// </summary>
[GenerateSerializer, Immutable, Alias("blankend.PipelineConfigUpdate")]
public sealed record PipelineConfigUpdate(
    [property: Id(0)] string? Source = null,
    [property: Id(1)] bool? Enabled = null,
    [property: Id(2)] bool? ReencodeEnabled = null,
    [property: Id(3)] int? JpegQuality = null,
    [property: Id(4)] double? FpsLimit = null,
    [property: Id(5)] int? Workers = null,
    [property: Id(6)] bool? HwTranscode = null,
    [property: Id(7)] bool Reset = false
);

/// <summary>Validation of a change, shared by the gateway (400 before anything is sent) and the grain.</summary>
public static class PipelineRules
{
    public const int MaxWorkers = 64;
    public const double MaxFps = 1000;

    /// <summary>Null when the update is valid, else every problem, naming the field.</summary>
    public static string? Validate(PipelineConfigUpdate u)
    {
        var errors = new List<string>();
        if (u.JpegQuality is { } q && (q < 1 || q > 100))
            errors.Add($"jpeg_quality must be between 1 and 100 (got {q})");
        if (u.FpsLimit is { } f && (double.IsNaN(f) || f < 0 || f > MaxFps))
            errors.Add(
                $"fps_limit must be between 0 (no limit) and {MaxFps} (got {f.ToString(CultureInfo.InvariantCulture)})"
            );
        if (u.Workers is { } w && (w < 1 || w > MaxWorkers))
            errors.Add($"workers must be between 1 and {MaxWorkers} (got {w})");
        if (u.Source is { } s)
        {
            if (!ClientIds.IsValid(s, out var why))
                errors.Add($"source {why}");
            if (u.Workers is not null)
                errors.Add("workers is a global setting (not allowed with source)");
            if (u.HwTranscode is not null)
                errors.Add("hw_transcode is a global setting (not allowed with source)");
            if (
                u.Reset
                && (
                    u.Enabled is not null
                    || u.ReencodeEnabled is not null
                    || u.JpegQuality is not null
                    || u.FpsLimit is not null
                )
            )
                errors.Add("reset removes the source's override: give no other setting with it");
        }
        else if (u.Reset)
        {
            errors.Add("reset needs a source");
        }
        return errors.Count == 0 ? null : string.Join("; ", errors);
    }

    /// <summary>Applies a valid update; returns the next version.</summary>
    public static PipelineConfig Apply(PipelineConfig c, PipelineConfigUpdate u)
    {
        if (u.Source is null)
        {
            var g = c.Global;
            g = new PipelineSettings(
                u.Enabled ?? g.Enabled,
                u.ReencodeEnabled ?? g.ReencodeEnabled,
                u.JpegQuality ?? g.JpegQuality,
                u.FpsLimit ?? g.FpsLimit,
                u.Workers ?? g.Workers,
                u.HwTranscode ?? g.HwTranscode
            );
            return c with { Version = c.Version + 1, Global = g };
        }
        var rest = Array.FindAll(c.Sources, s => !string.Equals(s.Source, u.Source, StringComparison.Ordinal));
        if (u.Reset)
            return c with { Version = c.Version + 1, Sources = rest };
        var old = Array.Find(c.Sources, s => string.Equals(s.Source, u.Source, StringComparison.Ordinal));
        var o = new SourceOverride(
            u.Source,
            u.Enabled ?? old?.Enabled,
            u.ReencodeEnabled ?? old?.ReencodeEnabled,
            u.JpegQuality ?? old?.JpegQuality,
            u.FpsLimit ?? old?.FpsLimit
        );
        var list = new SourceOverride[rest.Length + 1];
        rest.CopyTo(list, 0);
        list[^1] = o;
        Array.Sort(list, (a, b) => string.CompareOrdinal(a.Source, b.Source));
        return c with { Version = c.Version + 1, Sources = list };
    }
}
