using System.Collections.Concurrent;
using System.Diagnostics;
using Blankend.Orleans.Ai;
using Blankend.Orleans.Grains.Ai.Runtime;
using Blankend.Orleans.Grains.Devices;
using Microsoft.ML.OnnxRuntime;
using OpenCvSharp;

namespace Blankend.Orleans.Grains.Ai.Matting;

/// <summary>
/// MediaPipe selfie segmentation (models/LICENSE-NOTES.md): the whole frame resized (aspect not kept) to the
/// model input, NHWC RGB pixel/255; the output <c>mask</c> is the person probability (sigmoid applied).
/// The landscape model ([1,144,256,3]) runs for frames with aspect &gt;= 1.5 (16:9), the general one
/// ([1,256,256,3]) for the rest. Thread-safe: each call rents a buffer set (pinned input/output arrays with
/// their OrtValues and Mat headers) from a per-model pool, so concurrent callers never share one and no
/// large array is allocated per frame.
/// </summary>
internal sealed class SelfieSegmenter(OnnxRuntimeHost runtime) : IDisposable
{
    /// <summary>Aspect (width/height) from which the landscape model is used: 16:9 = 1.78 qualifies, 4:3 does
    /// not.</summary>
    public const double LandscapeAspect = 1.5;

    private readonly ConcurrentDictionary<AiModelKind, BufferPool<Slot>> _pools = new();

    public OnnxRuntimeHost Runtime { get; } = runtime;

    /// <summary>The model for a frame size: landscape for aspect &gt;= 1.5, else the general one.</summary>
    public static AiModelKind ModelFor(int width, int height) =>
        height > 0 && width >= LandscapeAspect * height ? AiModelKind.SegmentationLandscape : AiModelKind.Segmentation;

    public static string ModelName(AiModelKind kind) =>
        kind == AiModelKind.SegmentationLandscape ? "selfie_segmentation_landscape" : "selfie_segmentation";

    /// <summary>The session to use for a frame size on a device: the preferred model, else the other selfie model
    /// when only that one loads; null when neither does (<see cref="OnnxRuntimeHost.UnavailableReason"/>).</summary>
    public OnnxModel? Pick(int width, int height, string device)
    {
        var kind = ModelFor(width, height);
        return Runtime.Get(kind, device)
            ?? Runtime.Get(
                kind == AiModelKind.Segmentation ? AiModelKind.SegmentationLandscape : AiModelKind.Segmentation,
                device
            );
    }

    /// <summary>Runs <paramref name="model"/> on a BGR frame; writes the mask (CV_32FC1, 0..1, at the model's
    /// resolution) into <paramref name="mask"/> (reallocated only when its size or type differs).</summary>
    /// <returns>The session.Run time in ms.</returns>
    public double Segment(OnnxModel model, Mat bgr, Mat mask) =>
        SegmentMany(model, new ReadOnlySpan<Mat>(ref bgr), new ReadOnlySpan<Mat>(ref mask));

    /// <summary>The masks of several BGR frames (of several sources) with one session.Run per
    /// <c>ai.max_batch</c> frames: each frame is resized straight into its slot of the batch tensor, each mask
    /// copied out of its slot of the output. A frame's mask is the same as <see cref="Segment(OnnxModel, Mat, Mat)"/>
    /// on it alone.</summary>
    /// <returns>The session.Run time in ms (all calls).</returns>
    public double SegmentMany(OnnxModel model, ReadOnlySpan<Mat> bgrs, ReadOnlySpan<Mat> masks)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (bgrs.Length != masks.Length)
            throw new ArgumentException("one mask per image", nameof(masks));
        foreach (var bgr in bgrs)
        {
            ArgumentNullException.ThrowIfNull(bgr, nameof(bgrs));
            if (bgr.Empty() || bgr.Type() != MatType.CV_8UC3)
                throw new ArgumentException(
                    $"expected a non-empty CV_8UC3 image, got {bgr.Type()} {bgr.Width}x{bgr.Height}",
                    nameof(bgrs)
                );
        }
        var pool = _pools.GetOrAdd(model.Kind, static _ => new());
        // A slot depends only on the model's shapes and names, not on the session (device) that runs it.
        var slot = pool.Rent((model.Session, Runtime.Options.MaxBatch), static a => new Slot(a.Session, a.MaxBatch));
        try
        {
            var ms = 0.0;
            for (var start = 0; start < bgrs.Length; start += slot.Capacity)
            {
                var count = Math.Min(slot.Capacity, bgrs.Length - start);
                var images = bgrs.Slice(start, count).ToArray();
                WorkerParallel.For(count, i =>
                {
                    Cv2.Resize(images[i], slot.Small[i], new Size(slot.W, slot.H), 0, 0, InterpolationFlags.Linear);
                    Cv2.CvtColor(slot.Small[i], slot.Rgb[i], ColorConversionCodes.BGR2RGB);
                    slot.Rgb[i].ConvertTo(slot.InMats[i], MatType.CV_32FC3, 1.0 / 255);
                });
                var (inputs, outputs) = slot.Values(count);
                var t = Stopwatch.GetTimestamp();
                model.Session.Run(slot.RunOptions, slot.InNames, inputs, slot.OutNames, outputs);
                ms += OrtBuffers.RecordInference(t, model, count);
                for (var i = 0; i < count; i++)
                    slot.OutMats[i].CopyTo(masks[start + i]);
            }
            return ms;
        }
        finally
        {
            pool.Return(slot);
        }
    }

    /// <summary>Convenience: picks the model for the frame and returns a new mask (CV_32FC1), at the model's
    /// resolution or, with <paramref name="atFrameSize"/>, resized bilinearly to the frame; null when no
    /// selfie model is available. The caller disposes the mask.</summary>
    public Mat? Segment(Mat bgr, string device, bool atFrameSize, out AiModelKind kind)
    {
        ArgumentNullException.ThrowIfNull(bgr);
        var model = Pick(bgr.Width, bgr.Height, device);
        kind = model?.Kind ?? ModelFor(bgr.Width, bgr.Height);
        if (model is null)
            return null;
        var mask = new Mat();
        Segment(model, bgr, mask);
        if (atFrameSize)
            Cv2.Resize(mask, mask, bgr.Size(), 0, 0, InterpolationFlags.Linear);
        return mask;
    }

    public void Dispose()
    {
        foreach (var pool in _pools.Values)
            pool.Dispose();
    }

    /// <summary>One caller's buffers for one model, for up to <see cref="Capacity"/> frames per call: pinned NHWC
    /// input and output arrays, the OrtValues (one set per batch size, made once) and the OpenCV headers over each
    /// slot, and the resize scratch.</summary>
    private sealed class Slot : IDisposable
    {
        public readonly int H,
            W,
            Capacity;
        public readonly Mat[] InMats,
            OutMats;
        public readonly Mat[] Small,
            Rgb;
        public readonly string[] InNames,
            OutNames;
        public readonly RunOptions RunOptions = new();
        private readonly OrtValue[]?[] _in,
            _out;
        private readonly float[] _inData,
            _outData;

        public Slot(InferenceSession session, int maxBatch)
        {
            var inName = session.InputNames[0];
            var outName = session.OutputNames[0];
            var dims = session.InputMetadata[inName].Dimensions; // [N,H,W,3]
            H = OrtBuffers.Dim(dims, 1, 256);
            W = OrtBuffers.Dim(dims, 2, 256);
            Capacity = dims.Length > 0 && dims[0] > 0 ? dims[0] : Math.Max(1, maxBatch);
            _inData = OrtBuffers.Pinned(H * W * 3 * Capacity);
            _outData = OrtBuffers.Pinned(H * W * Capacity);
            InMats = new Mat[Capacity];
            OutMats = new Mat[Capacity];
            Small = new Mat[Capacity];
            Rgb = new Mat[Capacity];
            for (var i = 0; i < Capacity; i++)
            {
                InMats[i] = OrtBuffers.Header(_inData, i * H * W * 3, H, W, 3);
                OutMats[i] = OrtBuffers.Header(_outData, i * H * W, H, W, 1);
                Small[i] = new Mat();
                Rgb[i] = new Mat();
            }
            InNames = [inName];
            OutNames = [outName];
            _in = new OrtValue[]?[Capacity + 1];
            _out = new OrtValue[]?[Capacity + 1];
        }

        /// <summary>The input and output values over the first <paramref name="count"/> slots.</summary>
        public (OrtValue[] In, OrtValue[] Out) Values(int count) =>
            (
                _in[count] ??= [
                    OrtValue.CreateTensorValueFromMemory(
                        OrtMemoryInfo.DefaultInstance,
                        _inData.AsMemory(0, H * W * 3 * count),
                        [count, H, W, 3]
                    ),
                ],
                _out[count] ??= [
                    OrtValue.CreateTensorValueFromMemory(
                        OrtMemoryInfo.DefaultInstance,
                        _outData.AsMemory(0, H * W * count),
                        [count, H, W, 1]
                    ),
                ]
            );

        public void Dispose()
        {
            foreach (var set in _in)
                if (set is not null)
                    foreach (var v in set)
                        v.Dispose();
            foreach (var set in _out)
                if (set is not null)
                    foreach (var v in set)
                        v.Dispose();
            RunOptions.Dispose();
            foreach (var m in InMats)
                m.Dispose();
            foreach (var m in OutMats)
                m.Dispose();
            foreach (var m in Small)
                m.Dispose();
            foreach (var m in Rgb)
                m.Dispose();
        }
    }
}
