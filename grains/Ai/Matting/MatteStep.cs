using System.Diagnostics;
using Blankend.Orleans.Ai;
using Blankend.Orleans.Grains.Ai.Runtime;
using Blankend.Orleans.Grains.Devices;
using Blankend.Orleans.Processing;
using OpenCvSharp;

namespace Blankend.Orleans.Grains.Ai.Matting;

/// <summary>
/// The "matte" step: person mask, per-source temporal smoothing, composite over the configured background
/// (<see cref="EffectiveSettings.MatteBackground"/>). With <c>ai:rvm_model</c> (RVM_MODEL) configured, Robust
/// Video Matting runs instead of selfie segmentation, with its recurrent states kept per source (an RVM that
/// is configured but does not load is reported unavailable; there is no silent fallback). Selfie masks are
/// smoothed over time (<c>m = a*new + (1-a)*prev</c>, <c>a = ai:matte_smoothing</c>) at the model's
/// resolution; RVM's alpha is not (the model is recurrent). The per-source state resets when the frame size
/// changes. A frame whose model is unavailable passes unchanged and is counted as skipped; an error on one
/// frame fails that frame only (its raw bytes are forwarded); nothing throws out of <see cref="Run"/>.
/// </summary>
internal sealed class MatteStep : IFrameStep, IAiStepStatus, IDisposable
{
    public const string StepName = "matte";

    private readonly AiEngine _engine;
    private readonly Mat? _edgeLut;

    public MatteStep(AiEngine engine)
        : this(engine, null) { }

    /// <param name="edgeSmoothstep">Optional smoothstep on the mask edges: values below Low become 0, above High 1,
    /// smooth in between (e.g. (0.3, 0.7) for crisper edges); null = none.</param>
    public MatteStep(AiEngine engine, (float Low, float High)? edgeSmoothstep)
    {
        ArgumentNullException.ThrowIfNull(engine);
        _engine = engine;
        Segmenter = new SelfieSegmenter(engine.Runtime);
        Compositor = new Compositor(engine);
        if (edgeSmoothstep is { } e)
            _edgeLut = Mat.FromPixelData(1, 256, MatType.CV_8UC1, SmoothstepLut(e.Low, e.High));
    }

    public string Name => StepName;

    public SelfieSegmenter Segmenter { get; }

    public Compositor Compositor { get; }

    /// <summary>True when <c>ai:rvm_model</c> is set: RVM replaces selfie segmentation.</summary>
    public bool UsesRvm => !string.IsNullOrWhiteSpace(_engine.Options.RvmModel);

    /// <summary>Which model the step uses on "cpu0" (loads it if needed; never throws).</summary>
    public string Status => StatusFor(MatteDevices.Default);

    /// <summary>"selfie_segmentation (landscape for 16:9)", "rvm: PATH", or "unavailable: REASON".</summary>
    public string StatusFor(string device)
    {
        var rt = _engine.Runtime;
        if (UsesRvm)
        {
            return rt.Get(AiModelKind.Rvm, device) is { } m
                ? $"rvm: {m.Path}"
                : $"unavailable: {rt.UnavailableReason(AiModelKind.Rvm)}";
        }
        var general = rt.Get(AiModelKind.Segmentation, device);
        var landscape = rt.Get(AiModelKind.SegmentationLandscape, device);
        if (general is not null && landscape is not null)
            return "selfie_segmentation (landscape for 16:9)";
        if (general is not null)
            return $"selfie_segmentation (landscape unavailable: {rt.UnavailableReason(AiModelKind.SegmentationLandscape)})";
        if (landscape is not null)
            return $"selfie_segmentation_landscape only (general unavailable: {rt.UnavailableReason(AiModelKind.Segmentation)})";
        return $"unavailable: {rt.UnavailableReason(AiModelKind.Segmentation)}";
    }

    public bool AppliesTo(EffectiveSettings settings) => (settings.ActiveAiSteps & AiSteps.Matte) != 0;

    /// <summary>Selfie segmentation runs once per model per round (each source once per round, in queue order):
    /// the frames of several sources share one session.Run. RVM runs frame by frame: its recurrent states are
    /// per source and their shapes follow each source's frame size, so frames of different sources cannot share
    /// a call unless they have the same size and downsample ratio (not batched in this build).</summary>
    public void Run(ReadOnlySpan<FrameWork> batch)
    {
        if (UsesRvm)
        {
            foreach (var w in batch)
                RunRvm(w);
            return;
        }
        foreach (var round in FrameRounds.Split(batch))
            RunSelfieRound(round);
    }

    private void RunRvm(FrameWork w)
    {
        if (w.Image is not { } image || w.Failed || image.Empty())
            return;
        var start = Stopwatch.GetTimestamp();
        try
        {
            var model = _engine.Runtime.Get(AiModelKind.Rvm, MatteDevices.Of(w));
            var skipped =
                model is null ? "model unavailable"
                : image.Type() != MatType.CV_8UC3 ? "not a BGR image"
                : null;
            if (skipped is not null)
            {
                Skipped(w, skipped);
                return;
            }
            var state = _engine.StateFor(w.Source);
            lock (state.Gate)
            {
                state.EnsureMatteSize(image.Width, image.Height);
                var scratch = state.Scratch;
                state.Rvm ??= new RvmState();
                RvmMatter.Run(model!, image, state.Rvm, (float)_engine.Options.RvmDownsampleRatio, scratch.MaskF);
                state.MatteModel = "rvm";
                scratch.MaskF.ConvertTo(scratch.Mask8, MatType.CV_8U, 255);
                if (_edgeLut is not null)
                    ApplyLut(scratch.Mask8);
                Composite(w, image, state);
            }
            _engine.Record(StepName, start);
            w.Note(StepName);
        }
        catch (Exception e) when (!OrtBuffers.IsFatal(e))
        {
            Failed(w, e);
        }
    }

    private void RunSelfieRound(FrameWork[] round)
    {
        // Frames by model (the landscape model for 16:9 frames, the general one for the rest).
        var groups = new Dictionary<OnnxModel, List<(FrameWork W, Mat Image, AiSourceState State)>>();
        foreach (var w in round)
        {
            if (w.Image is not { } image || w.Failed || image.Empty())
                continue;
            var model = Segmenter.Pick(image.Width, image.Height, MatteDevices.Of(w));
            if (model is null)
            {
                Skipped(w, "model unavailable");
                continue;
            }
            if (image.Type() != MatType.CV_8UC3)
            {
                Skipped(w, "not a BGR image");
                continue;
            }
            var state = _engine.StateFor(w.Source);
            lock (state.Gate)
                state.EnsureMatteSize(image.Width, image.Height);
            if (!groups.TryGetValue(model, out var list))
                groups[model] = list = [];
            list.Add((w, image, state));
        }
        foreach (var (model, frames) in groups)
        {
            var start = Stopwatch.GetTimestamp();
            var images = new Mat[frames.Count];
            var masks = new Mat[frames.Count];
            for (var i = 0; i < frames.Count; i++)
            {
                images[i] = frames[i].Image;
                masks[i] = frames[i].State.Scratch.MaskSmall;
            }
            try
            {
                Segmenter.SegmentMany(model, images, masks);
            }
            catch (Exception e) when (!OrtBuffers.IsFatal(e))
            {
                foreach (var f in frames)
                    Failed(f.W, e);
                continue;
            }
            var done = 0;
            // The per-frame half (smoothing, mask to frame size, composite) in parallel: frames of different
            // sources, each under its own source's lock.
            WorkerParallel.For(frames.Count, i =>
            {
                var (w, image, state) = frames[i];
                try
                {
                    lock (state.Gate)
                    {
                        var scratch = state.Scratch;
                        state.MatteModel = SelfieSegmenter.ModelName(model.Kind);
                        Smooth(state, scratch.MaskSmall);
                        state.MattePrev!.ConvertTo(scratch.MaskSmall8, MatType.CV_8U, 255);
                        if (_edgeLut is not null)
                            ApplyLut(scratch.MaskSmall8);
                        Cv2.Resize(scratch.MaskSmall8, scratch.Mask8, image.Size(), 0, 0, InterpolationFlags.Linear);
                        Composite(w, image, state);
                    }
                    w.Note(StepName);
                    Interlocked.Increment(ref done);
                }
                catch (Exception e) when (!OrtBuffers.IsFatal(e))
                {
                    Failed(w, e);
                }
            });
            if (done > 0)
                _engine.Record(StepName, start, done);
        }
    }

    /// <summary>Composites the frame over its background with the mask in the source's scratch (lock held).</summary>
    private void Composite(FrameWork w, Mat image, AiSourceState state)
    {
        var used = Compositor.Composite(image, state.Scratch.Mask8, w.Settings.MatteBackground, state.Scratch);
        if (used.Length > 5)
            w.Note($"{StepName}: {used}"); // "color (no background image)"
        state.MatteFrames++;
    }

    private void Skipped(FrameWork w, string reason)
    {
        _engine.Skip(StepName, reason);
        w.Note($"{StepName}: {reason}");
    }

    private void Failed(FrameWork w, Exception e)
    {
        var state = _engine.StateFor(w.Source);
        lock (state.Gate)
            state.ResetMatte();
        _engine.Skip(StepName, "error");
        w.Fail(StepName, $"{e.GetType().Name}: {e.Message}");
    }

    /// <summary><c>prev = a*mask + (1-a)*prev</c>, or <c>prev = mask</c> on the first frame / after a reset.</summary>
    private void Smooth(AiSourceState state, Mat mask)
    {
        var a = Math.Clamp(_engine.Options.MatteSmoothing, 0.0, 1.0);
        if (state.MattePrev is { } prev && prev.Size() == mask.Size() && prev.Type() == mask.Type() && a < 1)
        {
            Cv2.AddWeighted(mask, a, prev, 1 - a, 0, prev);
            return;
        }
        state.MattePrev ??= new Mat();
        mask.CopyTo(state.MattePrev);
    }

    private void ApplyLut(Mat mask8) => Cv2.LUT(mask8, _edgeLut!, mask8);

    /// <summary>256-entry table of <c>smoothstep(low, high, x/255) * 255</c>.</summary>
    public static byte[] SmoothstepLut(float low, float high)
    {
        var lut = new byte[256];
        var span = Math.Max(1e-6f, high - low);
        for (var i = 0; i < 256; i++)
        {
            var t = Math.Clamp((i / 255f - low) / span, 0f, 1f);
            lut[i] = (byte)Math.Round(t * t * (3 - 2 * t) * 255);
        }
        return lut;
    }

    public void Dispose()
    {
        Segmenter.Dispose();
        _edgeLut?.Dispose();
    }
}

/// <summary>The model device of a frame for the matte and depth steps.</summary>
internal static class MatteDevices
{
    public const string Default = "cpu0";

    /// <summary>The device of the worker running the frame: its ONNX sessions (CUDA on a gpu device when the
    /// installed ONNX Runtime has it).</summary>
    public static string Of(FrameWork w) => w.Device;
}
