using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Blankend.Orleans.Telemetry;

namespace Blankend.Orleans.Grains.Codec;

/// <summary>
/// The codec's instruments on the project's meter (<see cref="BlankendMetrics.Meter"/>); docs/operations.md lists
/// them. Process-wide like the other project instruments: the live-session registry behind the fps gauge holds the
/// sessions of every codec host in the process (one per silo). No tag carries a client_id: per-session fps is in
/// <c>/api/v1/video_processing/codec/status</c> and in the <c>ffmpeg decoded fps</c> log lines.
/// </summary>
internal static class CodecMetrics
{
    /// <summary>Frames out of ffmpeg (each decoded JPEG once; frames a replacement decoder repeats after a GPU
    /// fallback are not counted again), by codec and decoder kind.</summary>
    public static readonly Counter<long> FramesDecoded = BlankendMetrics.Meter.CreateCounter<long>(
        "blankend.codec.frames.decoded",
        "{frame}",
        "Frames decoded by /video_codec sessions on this silo, by codec (h264, hevc) and decoder (cpu, cuvid, cuda)"
    );

    public static readonly UpDownCounter<long> SessionsActive = BlankendMetrics.Meter.CreateUpDownCounter<long>(
        "blankend.codec.sessions.active",
        "{session}",
        "Live /video_codec decode sessions on this silo, by codec"
    );

    public static readonly Counter<long> SessionsEnded = BlankendMetrics.Meter.CreateCounter<long>(
        "blankend.codec.sessions.ended",
        "{session}",
        "Decode sessions that ended, by reason (client_closed, idle_timeout, invalid_stream, decode_failed, ffmpeg_exited, decoder_unavailable, service_stopping)"
    );

    public static readonly Counter<long> DecoderFallbacks = BlankendMetrics.Meter.CreateCounter<long>(
        "blankend.codec.decoder.fallbacks",
        "{restart}",
        "GPU decoders that failed and were replaced by the CPU decoder (a decoder restart), by codec and the failed decoder's kind (cuvid, cuda)"
    );

    public static readonly Counter<long> FramesDroppedDecoded = BlankendMetrics.Meter.CreateCounter<long>(
        "blankend.codec.frames.dropped",
        "{frame}",
        "Decoded frames dropped before publishing (the session's queue of 16 was full: the cluster was slower than the decoder)"
    );

    public static readonly Counter<long> RecordingFrames = BlankendMetrics.Meter.CreateCounter<long>(
        "blankend.recording.frames",
        "{frame}",
        "Frames written to recording encoders (ffmpeg stdin), by kind (raw, processed)"
    );

    public static readonly UpDownCounter<long> RecordingsActive = BlankendMetrics.Meter.CreateUpDownCounter<long>(
        "blankend.recordings.active",
        "{recording}",
        "Recordings running on this silo"
    );

    /// <summary>Live sessions of the process, read by the fps gauge only when a collector asks.</summary>
    private static readonly ConcurrentDictionary<DecodeSession, byte> Live = new();

    public static readonly ObservableGauge<double> DecodeFps = BlankendMetrics.Meter.CreateObservableGauge(
        "blankend.codec.decode.fps",
        ObserveFps,
        "{fps}",
        "Decoded frames per second over the last second, summed over the live sessions of this silo, by codec and decoder"
    );

    public static KeyValuePair<string, object?> CodecTag(string codec) => new("codec", codec);

    public static KeyValuePair<string, object?> DecoderTag(DecoderPlan plan) =>
        new(
            "decoder",
            !plan.Gpu ? "cpu"
                : plan.Decoder.EndsWith("_cuvid", StringComparison.Ordinal) ? "cuvid"
                : "cuda"
        );

    public static void SessionStarted(DecodeSession session)
    {
        if (Live.TryAdd(session, 0))
            SessionsActive.Add(1, CodecTag(session.Codec));
    }

    public static void SessionEnded(DecodeSession session, string reason)
    {
        if (!Live.TryRemove(session, out _))
            return;
        SessionsActive.Add(-1, CodecTag(session.Codec));
        SessionsEnded.Add(1, new KeyValuePair<string, object?>("reason", reason));
    }

    private static IEnumerable<Measurement<double>> ObserveFps()
    {
        var sums = new Dictionary<(string Codec, string Decoder), double>();
        foreach (var session in Live.Keys)
        {
            var key = (session.Codec, (string)DecoderTag(session.Plan).Value!);
            sums[key] = sums.GetValueOrDefault(key) + session.CurrentFps;
        }
        foreach (var ((codec, decoder), fps) in sums)
            yield return new Measurement<double>(
                Math.Round(fps, 2),
                CodecTag(codec),
                new KeyValuePair<string, object?>("decoder", decoder)
            );
    }
}
