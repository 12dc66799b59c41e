using System.Diagnostics;
using Blankend.Orleans.Grains.Ai.Matting;
using Blankend.Orleans.Grains.Ai.Runtime;
using Microsoft.ML.OnnxRuntime;
using OpenCvSharp;

namespace Blankend.Orleans.Grains.Ai.Depth;

/// <summary>
/// Monocular depth with a MiDaS-style ONNX model (<c>DEPTH_MODEL</c> / <c>ai:depth_model</c>): the input shape
/// is read from the model (NCHW [1,3,H,W]; NHWC [1,H,W,3] is accepted too; dynamic H/W become
/// <see cref="DefaultSide"/>), the frame is resized to it (aspect not kept), RGB, normalised with
/// <see cref="Mean"/>/<see cref="Std"/> (ImageNet, MiDaS small's convention). The output ([1,H,W] or [1,1,H,W])
/// is relative inverse depth (larger = nearer); it is min-max normalised to 0..255 per frame.
/// Thread-safe: each call rents pinned buffers from a pool.
/// </summary>
internal sealed class DepthEstimator(OnnxRuntimeHost runtime) : IDisposable
{
    /// <summary>Input side used when the model's H/W are dynamic (MiDaS v2.1 small is 256x256).</summary>
    public const int DefaultSide = 256;

    /// <summary>ImageNet mean per channel, R, G, B (MiDaS small: <c>(x/255 - mean) / std</c>).</summary>
    public static readonly float[] Mean = [0.485f, 0.456f, 0.406f];

    /// <summary>ImageNet standard deviation per channel, R, G, B.</summary>
    public static readonly float[] Std = [0.229f, 0.224f, 0.225f];

    private readonly BufferPool<Slot> _pool = new();

    public OnnxRuntimeHost Runtime { get; } = runtime;

    /// <summary>Runs the model on a BGR frame; writes the depth, min-max normalised to CV_8UC1 0 (far) ..
    /// 255 (near) at the model's output resolution, into <paramref name="depth8"/> (all 0 when flat).</summary>
    /// <returns>The session.Run time in ms.</returns>
    public double Estimate(OnnxModel model, Mat bgr, Mat depth8)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(bgr);
        ArgumentNullException.ThrowIfNull(depth8);
        if (bgr.Empty() || bgr.Type() != MatType.CV_8UC3)
            throw new ArgumentException(
                $"expected a non-empty CV_8UC3 image, got {bgr.Type()} {bgr.Width}x{bgr.Height}",
                nameof(bgr)
            );
        // A slot depends only on the model's input shape and names (one DEPTH_MODEL), not on the device's session.
        var slot = _pool.Rent(model.Session, static s => new Slot(s));
        try
        {
            Cv2.Resize(bgr, slot.Small, new Size(slot.W, slot.H), 0, 0, InterpolationFlags.Area);
            if (slot.Nchw)
            {
                slot.Small.ConvertTo(slot.SmallF, MatType.CV_32FC3, 1.0 / 255);
                Cv2.MixChannels([slot.SmallF], slot.Planes, OrtBuffers.BgrToRgbPlanes);
                for (var c = 0; c < 3; c++)
                    slot.Planes[c].ConvertTo(slot.Planes[c], MatType.CV_32FC1, 1.0 / Std[c], -Mean[c] / Std[c]);
            }
            else
            {
                Cv2.CvtColor(slot.Small, slot.Rgb, ColorConversionCodes.BGR2RGB);
                slot.Rgb.ConvertTo(slot.Interleaved!, MatType.CV_32FC3, 1.0 / 255);
                Cv2.Subtract(slot.Interleaved!, new Scalar(Mean[0], Mean[1], Mean[2]), slot.Interleaved!);
                Cv2.Multiply(slot.Interleaved!, new Scalar(1 / Std[0], 1 / Std[1], 1 / Std[2]), slot.Interleaved!);
            }
            var t = Stopwatch.GetTimestamp();
            using var results = model.Session.Run(slot.RunOptions, slot.InNames, slot.InValues, slot.OutNames);
            var ms = OrtBuffers.RecordInference(t, model);
            var output = results[0];
            var shape = output.GetTensorTypeAndShape().Shape;
            int oh = shape.Length >= 2 ? (int)shape[^2] : 1,
                ow = (int)shape[^1];
            slot.Out.Create(oh, ow, MatType.CV_32FC1);
            output.GetTensorDataAsSpan<float>().CopyTo(slot.Out.AsSpan<float>());
            Normalize(slot.Out, depth8);
            return ms;
        }
        finally
        {
            _pool.Return(slot);
        }
    }

    /// <summary>min..max to 0..255 (CV_8UC1); a flat map (max - min below 1e-6) gives all 0.</summary>
    public static void Normalize(Mat depth, Mat depth8)
    {
        ArgumentNullException.ThrowIfNull(depth);
        Cv2.MinMaxLoc(depth, out double min, out double max);
        var range = max - min;
        if (!(range > 1e-6))
        {
            depth8.Create(depth.Size(), MatType.CV_8UC1);
            depth8.SetTo(Scalar.All(0));
            return;
        }
        depth.ConvertTo(depth8, MatType.CV_8U, 255 / range, -min * 255 / range);
    }

    public void Dispose()
    {
        _pool.Dispose();
    }

    private sealed class Slot : IDisposable
    {
        public readonly bool Nchw;
        public readonly int H,
            W;
        public readonly Mat[] Planes;
        public readonly Mat? Interleaved;
        public readonly Mat Small = new(),
            SmallF = new(),
            Rgb = new(),
            Out = new();
        public readonly string[] InNames,
            OutNames;
        public readonly OrtValue[] InValues;
        public readonly RunOptions RunOptions = new();

        public Slot(InferenceSession session)
        {
            var inName = session.InputNames[0];
            var dims = session.InputMetadata[inName].Dimensions;
            Nchw = !(dims.Length == 4 && dims[3] == 3 && dims[1] != 3);
            H = OrtBuffers.Dim(dims, Nchw ? 2 : 1, DefaultSide);
            W = OrtBuffers.Dim(dims, Nchw ? 3 : 2, DefaultSide);
            var buffer = OrtBuffers.Pinned(3 * H * W);
            if (Nchw)
            {
                Planes = OrtBuffers.Planes(buffer, H, W);
            }
            else
            {
                Planes = [];
                Interleaved = OrtBuffers.Header(buffer, 0, H, W, 3);
            }
            InNames = [inName];
            OutNames = [session.OutputNames[0]];
            InValues = [OrtValue.CreateTensorValueFromMemory(buffer, Nchw ? [1, 3, H, W] : [1, H, W, 3])];
        }

        public void Dispose()
        {
            InValues[0].Dispose();
            RunOptions.Dispose();
            foreach (var p in Planes)
                p.Dispose();
            Interleaved?.Dispose();
            Small.Dispose();
            SmallF.Dispose();
            Rgb.Dispose();
            Out.Dispose();
        }
    }
}
