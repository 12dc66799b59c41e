using System.Diagnostics.Metrics;
using Blankend.Orleans.Ai;
using Blankend.Orleans.Telemetry;

namespace Blankend.Orleans.Grains.Ai;

/// <summary>The AI steps' instruments on the project's meter (docs/operations.md lists them).</summary>
internal static class AiMetrics
{
    private static readonly InstrumentAdvice<double> MsBuckets = new()
    {
        HistogramBucketBoundaries = [0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 50, 75, 100, 250, 500, 1000],
    };

    /// <summary>Per-step time per frame (inference with its pre- and post-processing), milliseconds.</summary>
    public static readonly Histogram<double> StepMs = BlankendMetrics.Meter.CreateHistogram<double>(
        "blankend.ai.step.duration",
        "ms",
        "Time of one AI step per frame, pre/post-processing included, by step",
        advice: MsBuckets
    );

    /// <summary>Bare session.Run time, milliseconds, by model and provider.</summary>
    public static readonly Histogram<double> InferenceMs = BlankendMetrics.Meter.CreateHistogram<double>(
        "blankend.ai.inference.duration",
        "ms",
        "ONNX Runtime session.Run time, by model and execution provider",
        advice: MsBuckets
    );

    public static readonly Counter<long> Skipped = BlankendMetrics.Meter.CreateCounter<long>(
        "blankend.ai.skipped",
        "{frame}",
        "Frames an AI step did not process, by step and reason (model unavailable, no face, no reference, ...)"
    );

    /// <summary>Loaded ONNX sessions by model, device and execution provider (CUDA or CPU): which provider runs
    /// what.</summary>
    public static readonly ObservableGauge<int> Sessions = BlankendMetrics.Meter.CreateObservableGauge(
        "blankend.ai.sessions",
        ObserveSessions,
        "{session}",
        "Loaded ONNX Runtime sessions by model, device and execution provider"
    );

    internal static readonly System.Collections.Concurrent.ConcurrentDictionary<Runtime.OnnxRuntimeHost, byte> Hosts =
        new();

    private static IEnumerable<Measurement<int>> ObserveSessions()
    {
        foreach (var host in Hosts.Keys)
        {
            foreach (var m in host.Loaded())
            {
                yield return new Measurement<int>(
                    1,
                    new KeyValuePair<string, object?>("model", AiModels.Name(m.Kind)),
                    new KeyValuePair<string, object?>("device", m.Device),
                    new KeyValuePair<string, object?>("provider", m.Provider)
                );
            }
        }
    }

    public static readonly Counter<long> Detections = BlankendMetrics.Meter.CreateCounter<long>(
        "blankend.ai.detector.runs",
        "{run}",
        "Face detector runs (the detector runs every face_detect_interval frames per source)"
    );

    /// <summary>Times a wanted GPU provider could not be used and the silo ran the gpuN devices on another
    /// one.</summary>
    public static readonly Counter<long> ProviderFallback = BlankendMetrics.Meter.CreateCounter<long>(
        "blankend.ai.provider.fallback",
        "{fallback}",
        "A GPU execution provider was wanted (auto with a GPU seen, cuda, tensorrt) and could not be loaded, by requested and active provider"
    );

    private static readonly InstrumentAdvice<int> BatchBuckets = new()
    {
        HistogramBucketBoundaries = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 128],
    };

    /// <summary>Frames (images) per inference call, by model: cross-stream batching at work.</summary>
    public static readonly Histogram<int> BatchSize = BlankendMetrics.Meter.CreateHistogram<int>(
        "blankend.ai.batch.size",
        "{frame}",
        "Frames (images) per ONNX Runtime inference call, by model",
        advice: BatchBuckets
    );
}
