using System.Diagnostics;

namespace Blankend.Orleans.Telemetry;

/// <summary>
/// The project's activity source. Per-frame spans are sampled by the code that creates them (every
/// <c>telemetry.trace_sample_every</c>-th frame of a connection), never every frame: a root span is recorded only
/// when its name starts with <see cref="SpanPrefix"/> (or it is an HTTP request), so grain calls of frames that
/// were not picked start no trace of their own.
/// </summary>
public static class BlankendTracing
{
    public const string SourceName = "Blankend";

    /// <summary>Root spans whose name starts with this are recorded; other parts of the project name theirs
    /// so.</summary>
    public const string SpanPrefix = "blankend.";

    public const string VideoInFrame = "blankend.video_in.frame";

    public static readonly ActivitySource Source = new(SourceName, "1.0");
}
