using System.Diagnostics;
using Blankend.Orleans.Grains.Ai.Runtime;
using Microsoft.ML.OnnxRuntime;
using OpenCvSharp;

namespace Blankend.Orleans.Grains.Ai.Matting;

/// <summary>
/// Robust Video Matting (RVM) with its ONNX signature: inputs <c>src</c> [1,3,H,W] float RGB 0..1 (NCHW, the
/// full frame), the recurrent states <c>r1i</c>..<c>r4i</c> (zeros [1,1,1,1] on the first frame) and
/// <c>downsample_ratio</c> [1]; outputs <c>fgr</c>, <c>pha</c> [1,1,H,W] (the alpha used as the mask) and
/// <c>r1o</c>..<c>r4o</c>, fed back as the next frame's inputs of the same source. Only <c>pha</c> and the
/// states are fetched (not <c>fgr</c>). Stateless itself; the per-source <see cref="RvmState"/> is used
/// under the source's lock.
/// </summary>
internal static class RvmMatter
{
    public static readonly string[] StateInputs = ["r1i", "r2i", "r3i", "r4i"];
    public static readonly string[] Outputs = ["pha", "r1o", "r2o", "r3o", "r4o"];
    private static readonly string[] InputNames = ["src", "r1i", "r2i", "r3i", "r4i", "downsample_ratio"];

    /// <summary>Runs one frame: writes pha (CV_32FC1 0..1, frame size) into <paramref name="alpha"/> and
    /// stores r1o..r4o in <paramref name="state"/> for the next frame.</summary>
    /// <returns>The session.Run time in ms.</returns>
    public static double Run(OnnxModel model, Mat bgr, RvmState state, float downsampleRatio, Mat alpha)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(bgr);
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(alpha);
        int h = bgr.Height,
            w = bgr.Width;
        state.EnsureSource(h, w);
        // BGR bytes -> R, G, B byte planes -> float planes of the pinned NCHW input (no full-size float temp).
        foreach (var p in state.Planes8)
            p.Create(h, w, MatType.CV_8UC1);
        Cv2.MixChannels([bgr], state.Planes8, OrtBuffers.BgrToRgbPlanes);
        for (var c = 0; c < 3; c++)
            state.Planes8[c].ConvertTo(state.Planes![c], MatType.CV_32FC1, 1.0 / 255);
        state.Ratio[0] = downsampleRatio;

        var inputs = new OrtValue[6];
        try
        {
            inputs[0] = OrtValue.CreateTensorValueFromMemory(state.Src!, [1, 3, h, w]);
            for (var i = 0; i < 4; i++)
                inputs[i + 1] = OrtValue.CreateTensorValueFromMemory(state.States[i], state.Shapes[i]);
            inputs[5] = OrtValue.CreateTensorValueFromMemory(state.Ratio, [1]);
            var t = Stopwatch.GetTimestamp();
            using var results = model.Session.Run(state.RunOptions, InputNames, inputs, Outputs);
            var ms = OrtBuffers.RecordInference(t, model);

            var pha = results[0];
            var shape = pha.GetTensorTypeAndShape().Shape;
            int ph = (int)shape[^2],
                pw = (int)shape[^1];
            alpha.Create(ph, pw, MatType.CV_32FC1);
            pha.GetTensorDataAsSpan<float>().CopyTo(alpha.AsSpan<float>());
            if (ph != h || pw != w)
                Cv2.Resize(alpha, alpha, new Size(w, h), 0, 0, InterpolationFlags.Linear);
            for (var i = 0; i < 4; i++)
                state.Keep(i, results[i + 1]);
            state.Frames++;
            return ms;
        }
        finally
        {
            foreach (var v in inputs)
                v?.Dispose();
        }
    }
}

/// <summary>One source's RVM recurrent states r1..r4 (managed float arrays with their shapes, so a forgotten
/// source holds no native memory) and its reusable pinned NCHW input buffer.</summary>
internal sealed class RvmState : IDisposable
{
    private static readonly long[] Initial = [1, 1, 1, 1];

    public RvmState()
    {
        for (var i = 0; i < 4; i++)
        {
            States[i] = new float[1];
            Shapes[i] = Initial;
        }
    }

    /// <summary>r1..r4 as fed to the next frame.</summary>
    public float[][] States { get; } = new float[4][];

    public long[][] Shapes { get; } = new long[4][];

    /// <summary>Frames run with these states.</summary>
    public long Frames { get; internal set; }

    internal float[] Ratio { get; } = new float[1];

    internal float[]? Src { get; private set; }

    internal Mat[]? Planes { get; private set; }

    internal Mat[] Planes8 { get; } = [new Mat(), new Mat(), new Mat()];

    internal RunOptions RunOptions => _runOptions ??= new RunOptions();

    private RunOptions? _runOptions;
    private int _h,
        _w;

    internal void EnsureSource(int h, int w)
    {
        if (Src is not null && h == _h && w == _w)
            return;
        if (Planes is not null)
            foreach (var p in Planes)
                p.Dispose();
        Src = OrtBuffers.Pinned(3 * h * w);
        Planes = OrtBuffers.Planes(Src, h, w);
        _h = h;
        _w = w;
    }

    public void Dispose()
    {
        if (Planes is not null)
            foreach (var p in Planes)
                p.Dispose();
        foreach (var p in Planes8)
            p.Dispose();
        Planes = null;
        Src = null;
        _runOptions?.Dispose();
        _runOptions = null;
    }

    /// <summary>Copies an output state into the array fed next time (reused when the size matches).</summary>
    internal void Keep(int i, OrtValue value)
    {
        var shape = value.GetTensorTypeAndShape().Shape;
        var data = value.GetTensorDataAsSpan<float>();
        if (States[i].Length != data.Length)
            States[i] = new float[data.Length];
        data.CopyTo(States[i]);
        Shapes[i] = shape;
    }
}
