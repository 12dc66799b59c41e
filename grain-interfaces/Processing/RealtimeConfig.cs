using System.Globalization;
using Blankend.Orleans.Ai;

namespace Blankend.Orleans.Processing;

/// <summary>
/// The realtime (AI) pipeline's settings, part of <see cref="PipelineConfig"/>: which AI steps run, over what
/// background, and the uploaded assets' versions. Start values come from the <c>realtime_pipeline</c> and
/// <c>ai</c> sections; <c>POST /api/v1/realtime_pipeline/config</c> changes them at run time.
/// </summary>
/// <param name="Enabled">AI steps run on the sources' frames (camera and bus frames alike).</param>
/// <param name="Workers">Worker loops per device while the realtime pipeline is on.</param>
/// <param name="Steps">Steps for every source without an override.</param>
/// <param name="ReferenceVersion">Version of the uploaded reference face (0 = none).</param>
[GenerateSerializer, Immutable, Alias("blankend.RealtimeSettings")]
public sealed record RealtimeSettings(
    [property: Id(0)] bool Enabled,
    [property: Id(1)] int Workers,
    [property: Id(2)] AiSteps Steps,
    [property: Id(3)] MatteBackground Background,
    [property: Id(4)] int FaceDetectInterval,
    [property: Id(5)] bool SimpleForward,
    [property: Id(6)] string DepthMode,
    [property: Id(7)] long ReferenceVersion,
    [property: Id(8)] RealtimeSourceOverride[] Sources
)
{
    public static readonly RealtimeSettings Off = new(
        false,
        1,
        AiSteps.None,
        MatteBackground.Green,
        5,
        false,
        "colormap",
        0,
        []
    );
}

/// <summary>Per-source realtime override: a null value inherits.</summary>
[GenerateSerializer, Immutable, Alias("blankend.RealtimeSourceOverride")]
public sealed record RealtimeSourceOverride(
    [property: Id(0)] string Source,
    [property: Id(1)] bool? Enabled,
    [property: Id(2)] AiSteps? Steps
);

/// <summary>A realtime change: null fields are left as they are. With <see cref="Source"/>, that source's override
/// (<see cref="Reset"/> removes it); without, the global realtime settings.</summary>
[GenerateSerializer, Immutable, Alias("blankend.RealtimeConfigUpdate")]
public sealed record RealtimeConfigUpdate(
    [property: Id(0)] string? Source = null,
    [property: Id(1)] bool? Enabled = null,
    [property: Id(2)] int? Workers = null,
    [property: Id(3)] AiSteps? Steps = null,
    [property: Id(4)] MatteBackground? Background = null,
    [property: Id(5)] int? FaceDetectInterval = null,
    [property: Id(6)] bool? SimpleForward = null,
    [property: Id(7)] string? DepthMode = null,
    [property: Id(8)] long? ReferenceVersion = null,
    [property: Id(9)] bool Reset = false
);

public static class RealtimeRules
{
    public static readonly string[] DepthModes = ["colormap", "cut"];
    public static readonly string[] BackgroundKinds = ["color", "image", "blur"];

    /// <summary>Null when valid, else every problem, naming the field.</summary>
    public static string? Validate(RealtimeConfigUpdate u)
    {
        var errors = new List<string>();
        if (u.Workers is { } w && (w < 1 || w > PipelineRules.MaxWorkers))
            errors.Add($"workers must be between 1 and {PipelineRules.MaxWorkers} (got {w})");
        if (u.FaceDetectInterval is { } i && (i < 1 || i > 10_000))
            errors.Add($"face_detect_interval must be between 1 and 10000 (got {i})");
        if (u.DepthMode is { } d && Array.IndexOf(DepthModes, d) < 0)
            errors.Add($"depth_mode must be one of {string.Join(", ", DepthModes)} (got '{Cut(d)}')");
        if (u.Background is { } b)
        {
            if (Array.IndexOf(BackgroundKinds, b.Kind) < 0)
                errors.Add(
                    $"background.kind must be one of {string.Join(", ", BackgroundKinds)} (got '{Cut(b.Kind)}')"
                );
            if (!TryParseColor(b.Color, out _))
                errors.Add($"background.color must be #RRGGBB (got '{Cut(b.Color)}')");
            if (b.BlurRadius < 1 || b.BlurRadius > 200)
                errors.Add($"background.blur_radius must be between 1 and 200 (got {b.BlurRadius})");
        }
        if (u.Source is { } s)
        {
            if (!ClientIds.IsValid(s, out var why))
                errors.Add($"source {why}");
            if (
                u.Workers is not null
                || u.Background is not null
                || u.FaceDetectInterval is not null
                || u.SimpleForward is not null
                || u.DepthMode is not null
                || u.ReferenceVersion is not null
            )
                errors.Add("with source, only enabled, steps and reset apply (the others are global)");
            if (u.Reset && (u.Enabled is not null || u.Steps is not null))
                errors.Add("reset removes the source's override: give no other setting with it");
        }
        else if (u.Reset)
        {
            errors.Add("reset needs a source");
        }
        return errors.Count == 0 ? null : string.Join("; ", errors);
    }

    public static RealtimeSettings Apply(RealtimeSettings r, RealtimeConfigUpdate u)
    {
        if (u.Source is null)
        {
            return r with
            {
                Enabled = u.Enabled ?? r.Enabled,
                Workers = u.Workers ?? r.Workers,
                Steps = u.Steps ?? r.Steps,
                Background = u.Background ?? r.Background,
                FaceDetectInterval = u.FaceDetectInterval ?? r.FaceDetectInterval,
                SimpleForward = u.SimpleForward ?? r.SimpleForward,
                DepthMode = u.DepthMode ?? r.DepthMode,
                ReferenceVersion = u.ReferenceVersion ?? r.ReferenceVersion,
            };
        }
        var rest = Array.FindAll(r.Sources, s => !string.Equals(s.Source, u.Source, StringComparison.Ordinal));
        if (u.Reset)
            return r with { Sources = rest };
        var old = Array.Find(r.Sources, s => string.Equals(s.Source, u.Source, StringComparison.Ordinal));
        var list = new RealtimeSourceOverride[rest.Length + 1];
        rest.CopyTo(list, 0);
        list[^1] = new RealtimeSourceOverride(u.Source, u.Enabled ?? old?.Enabled, u.Steps ?? old?.Steps);
        Array.Sort(list, (a, b) => string.CompareOrdinal(a.Source, b.Source));
        return r with { Sources = list };
    }

    /// <summary>Parses #RRGGBB into (r, g, b).</summary>
    public static bool TryParseColor(string? s, out (byte R, byte G, byte B) rgb)
    {
        rgb = default;
        if (s is not { Length: 7 } || s[0] != '#')
            return false;
        if (!int.TryParse(s.AsSpan(1), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var v))
            return false;
        rgb = ((byte)(v >> 16), (byte)(v >> 8), (byte)v);
        return true;
    }

    private static string Cut(string s) => s.Length > 40 ? s[..40] + "..." : s;
}
