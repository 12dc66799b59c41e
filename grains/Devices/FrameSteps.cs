using Blankend.Orleans.Ai;
using Blankend.Orleans.Media;
using OpenCvSharp;

namespace Blankend.Orleans.Grains.Devices;

/// <summary>One frame on a device worker: its request, the decoded image while the steps run, the result.</summary>
internal sealed class FrameWork(ProcessRequest request)
{
    public ProcessRequest Request { get; } = request;

    public EffectiveSettings Settings => Request.Settings;

    public string Source => Request.Frame.Source;

    /// <summary>The device whose worker runs the frame (cpu0, gpu0, ...): the AI steps use its ONNX sessions.</summary>
    public string Device { get; init; } = "cpu0";

    /// <summary>The decoded image (BGR), owned by the worker; steps may replace it (dispose the old one).</summary>
    public Mat? Image { get; set; }

    public byte[]? Output { get; set; }

    /// <summary>Faces the steps found in this frame, for later steps and for meta=1 viewers.</summary>
    public AiFace[]? Faces { get; set; }

    /// <summary>Steps that ran on this frame, and the ones skipped with why ("matte: model unavailable").</summary>
    public List<string>? Notes { get; private set; }

    public void Note(string note) => (Notes ??= []).Add(note);

    private object? _stepData;

    /// <summary>A step family's own per-frame data (created on first use): the worker loop does not know its
    /// type.</summary>
    public T StepData<T>()
        where T : class, new() => (T)(_stepData ??= new T());

    public string? Error { get; private set; }

    public bool Failed => Error is not null;

    internal TaskCompletionSource<ProcessResult> Completion { get; } =
        new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Marks the frame failed; the caller forwards its raw bytes and counts the error.</summary>
    public void Fail(string step, string why) => Error ??= $"{step}: {why}";
}

/// <summary>Splits a batch into rounds in which each source has at most one frame, each source's frames in queue
/// order (round k holds every source's k-th frame): what a step with per-source state batches over.</summary>
internal static class FrameRounds
{
    public static IReadOnlyList<FrameWork[]> Split(ReadOnlySpan<FrameWork> batch)
    {
        var rounds = new List<List<FrameWork>>();
        var seen = new Dictionary<string, int>(batch.Length, StringComparer.Ordinal);
        foreach (var w in batch)
        {
            var k = seen.GetValueOrDefault(w.Source);
            seen[w.Source] = k + 1;
            if (k == rounds.Count)
                rounds.Add(new List<FrameWork>(batch.Length));
            rounds[k].Add(w);
        }
        var result = new FrameWork[rounds.Count][];
        for (var i = 0; i < result.Length; i++)
            result[i] = [.. rounds[i]];
        return result;
    }
}

/// <summary>
/// A processing step. The worker decodes the frames of a batch that have at least one applicable step, runs
/// each step ONCE over all the frames of the batch it applies to (frames of several sources when they share
/// the device: a model step batches them into one inference call), then encodes at the frame's
/// <c>jpeg_quality</c>. A step that fails for one frame marks that frame (<see cref="FrameWork.Fail"/>) and
/// the rest go on. The AI steps plug in here.
/// </summary>
internal interface IFrameStep
{
    /// <summary>Name shown in the status.</summary>
    string Name { get; }

    bool AppliesTo(EffectiveSettings settings);

    /// <param name="batch">The decoded frames (Image set) the step applies to, in queue order.</param>
    void Run(ReadOnlySpan<FrameWork> batch);
}

/// <summary>
/// What a step family must have on this silo before a frame is queued (the AI steps: the uploaded reference face
/// and background, fetched once per new version). Registered by the step family; the worker grain awaits it.
/// </summary>
internal interface IFrameStepPreparation
{
    ValueTask PrepareAsync(IGrainFactory grains, EffectiveSettings settings);
}

/// <summary>
/// Re-encode (<c>reencode_enabled</c>): leaves the pixels as they are; its presence makes the worker decode and
/// encode the frame at <c>jpeg_quality</c> (the original service's re-encode).
/// </summary>
internal sealed class ReencodeStep : IFrameStep
{
    public string Name => "reencode";

    public bool AppliesTo(EffectiveSettings settings) => settings.ReencodeEnabled;

    public void Run(ReadOnlySpan<FrameWork> batch) { }
}

/// <summary>JPEG decode / encode with OpenCV (libjpeg-turbo), on the CPU.</summary>
internal static class JpegCodec
{
    /// <summary>Decodes to BGR; a JPEG that passed the SOI/EOI check but does not decode fails the frame.</summary>
    public static void Decode(FrameWork w)
    {
        // A frame's few KB can declare a gigapixel picture: refused by its header before anything is allocated.
        if (ImageSniffer.SizeProblem(w.Request.Frame.Payload) is { } refused)
        {
            w.Fail("decode", refused);
            return;
        }
        try
        {
            var mat = Cv2.ImDecode(w.Request.Frame.Payload.AsSpan(), ImreadModes.Color);
            if (mat.Empty())
            {
                mat.Dispose();
                w.Fail("decode", "not a decodable JPEG");
                return;
            }
            w.Image = mat;
        }
        catch (OpenCVException e)
        {
            w.Fail("decode", e.Message);
        }
    }

    public static void Encode(FrameWork w)
    {
        try
        {
            Cv2.ImEncode(
                ".jpg",
                w.Image!,
                out var bytes,
                new ImageEncodingParam(ImwriteFlags.JpegQuality, w.Settings.JpegQuality)
            );
            if (bytes.Length == 0)
                w.Fail("encode", "JPEG encoder produced nothing");
            else
                w.Output = bytes;
        }
        catch (OpenCVException e)
        {
            w.Fail("encode", e.Message);
        }
    }

    /// <summary>Whether the OpenCV runtime was built with CUDA, from its build information (null when the native
    /// library cannot be loaded, with the reason).</summary>
    public static (bool? Cuda, string Detail) OpenCvCuda()
    {
        try
        {
            foreach (var line in Cv2.GetBuildInformation().Split('\n'))
            {
                var t = line.Trim();
                if (t.StartsWith("NVIDIA CUDA:", StringComparison.Ordinal))
                {
                    var yes = t.Contains("YES", StringComparison.Ordinal);
                    return (yes, $"OpenCV {Cv2.GetVersionString()}: {t}");
                }
            }
            return (false, $"OpenCV {Cv2.GetVersionString()} built without CUDA");
        }
        catch (Exception e)
            when (e is DllNotFoundException or TypeInitializationException or BadImageFormatException or OpenCVException
            )
        {
            return (null, $"OpenCV native library not loadable: {e.GetBaseException().Message}");
        }
    }
}
