using System.Diagnostics.Metrics;
using Blankend.Orleans.Telemetry;

namespace Blankend.Orleans.Grains.Codec;

/// <summary>The recording limits' instruments (docs/operations.md lists them): each refusal and each recording a
/// limit ended, tagged with the limit's key.</summary>
internal static class RecordingMetrics
{
    public static readonly Counter<long> Refused = BlankendMetrics.Meter.CreateCounter<long>(
        "blankend.recordings.refused",
        "{recording}",
        "Recording starts refused by a limit, by limit (max_recordings, min_free_mb)"
    );

    public static readonly Counter<long> Limited = BlankendMetrics.Meter.CreateCounter<long>(
        "blankend.recordings.limited",
        "{recording}",
        "Recordings ended by a limit, by limit (max_duration_s, max_bytes, min_free_mb)"
    );

    public static readonly Counter<long> Failed = BlankendMetrics.Meter.CreateCounter<long>(
        "blankend.recordings.failed",
        "{recording}",
        "Recordings whose writer failed (ffmpeg died or refused the input)"
    );

    public static void Refuse(string limit) => Refused.Add(1, new KeyValuePair<string, object?>("limit", limit));

    public static void LimitReached(string limit) => Limited.Add(1, new KeyValuePair<string, object?>("limit", limit));
}
