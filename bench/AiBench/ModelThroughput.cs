using System.Diagnostics;
using Blankend.Orleans.Ai;
using Blankend.Orleans.Grains.Ai.Runtime;
using Microsoft.ML.OnnxRuntime;

namespace Blankend.Bench.AiBench;

/// <summary>One model at one batch size: the bare session.Run on N images, as images per second.</summary>
internal sealed record ModelRow(
    string Device,
    string Model,
    string Input,
    int Batch,
    string Provider,
    int Runs,
    double MedianMs,
    double ImagesPerSecond,
    string? Note
);

/// <summary>
/// Bare throughput of the shipped models: one session.Run on a tensor of N images of the model's size (random,
/// non-zero input), warm-up runs first (the first CUDA runs of a new shape pick their kernels), then timed runs
/// for the given seconds (at least 5, at most 2000); images/s = N / median seconds.
/// </summary>
internal static class ModelThroughput
{
    public static readonly (AiModelKind Kind, string Name)[] Models =
    [
        (AiModelKind.FaceDetect, "face detect (BlazeFace)"),
        (AiModelKind.FaceMesh, "face mesh"),
        (AiModelKind.Segmentation, "selfie segmentation"),
        (AiModelKind.SegmentationLandscape, "selfie segmentation landscape"),
    ];

    /// <param name="reference">A CPU session of the same model: the batch's outputs are compared with single-image
    /// runs of it on the same input (relative L2 error per image, the worst in the note).</param>
    public static ModelRow Measure(
        OnnxModel model,
        string name,
        int batch,
        double seconds,
        Action<string, long, long> window,
        InferenceSession? reference = null
    )
    {
        var session = model.Session;
        var names = new List<string>();
        var values = new List<OrtValue>();
        var shapes = new List<string>();
        string? note = null;
        var rng = new Random(42);
        try
        {
            foreach (var (inputName, meta) in session.InputMetadata)
            {
                var dims = meta.Dimensions.Select(d => (long)d).ToArray();
                if (dims.Length > 0)
                {
                    if (dims[0] < 0)
                        dims[0] = batch;
                    else if (dims[0] != batch)
                    {
                        return new ModelRow(
                            model.Device,
                            name,
                            Shape(meta.Dimensions),
                            batch,
                            model.Provider,
                            0,
                            double.NaN,
                            double.NaN,
                            $"fixed batch dimension {dims[0]}: not measured at batch {batch}"
                        );
                    }
                }
                for (var d = 1; d < dims.Length; d++)
                {
                    if (dims[d] < 0)
                    {
                        dims[d] = 1;
                        note = "a dynamic non-batch dimension set to 1";
                    }
                }
                var count = dims.Aggregate(1L, (a, b) => a * b);
                var data = new float[count];
                for (var i = 0; i < data.Length; i++)
                    data[i] = 0.05f + 0.95f * rng.NextSingle();
                names.Add(inputName);
                values.Add(OrtValue.CreateTensorValueFromMemory(data, dims));
                shapes.Add(Shape(dims));
            }
            var outputs = session.OutputMetadata.Keys.ToArray();
            using var run = new RunOptions();
            void Once()
            {
                using var r = session.Run(run, names, values, outputs);
            }

            // Warm-up: at least 3 runs and half a second (CUDA: kernel choice and memory arena for this shape).
            var warmEnd = Stopwatch.GetTimestamp() + Stopwatch.Frequency / 2;
            for (var i = 0; i < 3 || Stopwatch.GetTimestamp() < warmEnd; i++)
            {
                Once();
                if (i >= 200)
                    break;
            }

            if (reference is not null && names.Count == 1)
            {
                using var batchOut = session.Run(run, names, values, outputs);
                var error = WorstRelativeError(reference, names[0], values[0], batch, outputs, batchOut);
                note =
                    (note is null ? "" : note + "; ")
                    + FormattableString.Invariant($"vs CPU single runs: worst relative error {error:E1}");
            }

            var times = new List<double>();
            var startMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            var end = Stopwatch.GetTimestamp() + (long)(seconds * Stopwatch.Frequency);
            while (times.Count < 5 || (Stopwatch.GetTimestamp() < end && times.Count < 2000))
            {
                var t = Stopwatch.GetTimestamp();
                Once();
                times.Add(Stopwatch.GetElapsedTime(t).TotalMilliseconds);
            }
            window($"models {name} b{batch}", startMs, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
            var median = Stats.Median(times);
            return new ModelRow(
                model.Device,
                name,
                string.Join(" ", shapes),
                batch,
                model.Provider,
                times.Count,
                median,
                batch / (median / 1000.0),
                note
            );
        }
        finally
        {
            foreach (var v in values)
                v.Dispose();
        }
    }

    /// <summary>The worst relative L2 error, over the images and outputs of a batch run, against single-image
    /// runs of <paramref name="reference"/> on the same images.</summary>
    private static double WorstRelativeError(
        InferenceSession reference,
        string inputName,
        OrtValue input,
        int batch,
        string[] outputs,
        IDisposableReadOnlyCollection<OrtValue> batchOut
    )
    {
        var shape = input.GetTensorTypeAndShape().Shape;
        var all = input.GetTensorDataAsSpan<float>();
        var per = all.Length / batch;
        var worst = 0.0;
        using var run = new RunOptions();
        for (var k = 0; k < batch; k++)
        {
            var one = all.Slice(k * per, per).ToArray();
            using var value = OrtValue.CreateTensorValueFromMemory(one, [1, .. shape[1..]]);
            using var single = reference.Run(run, [inputName], [value], outputs);
            for (var o = 0; o < outputs.Length; o++)
            {
                var expected = single[o].GetTensorDataAsSpan<float>();
                var got = batchOut[o].GetTensorDataAsSpan<float>().Slice(k * expected.Length, expected.Length);
                double diff = 0,
                    norm = 0;
                for (var i = 0; i < expected.Length; i++)
                {
                    var d = (double)got[i] - expected[i];
                    diff += d * d;
                    norm += (double)expected[i] * expected[i];
                }
                worst = Math.Max(worst, Math.Sqrt(diff / Math.Max(norm, 1e-30)));
            }
        }
        return worst;
    }

    private static string Shape(IEnumerable<int> dims) =>
        "["
        + string.Join(
            ",",
            dims.Select(d => d < 0 ? "N" : d.ToString(System.Globalization.CultureInfo.InvariantCulture))
        )
        + "]";

    private static string Shape(IEnumerable<long> dims) => "[" + string.Join(",", dims) + "]";
}

internal static class Stats
{
    public static double Median(List<double> xs) => Percentile(xs, 0.5);

    /// <summary>Nearest-rank percentile (0..1); NaN when empty.</summary>
    public static double Percentile(List<double> xs, double p)
    {
        if (xs.Count == 0)
            return double.NaN;
        var s = xs.Order().ToArray();
        if (p == 0.5)
            return s[s.Length / 2];
        var rank = (int)Math.Ceiling(p * s.Length) - 1;
        return s[Math.Clamp(rank, 0, s.Length - 1)];
    }
}
