using System.Diagnostics;
using System.Runtime.InteropServices;
using Blankend.Orleans.Grains.Ai.Runtime;
using OpenCvSharp;

namespace Blankend.Orleans.Grains.Ai.Matting;

/// <summary>Small helpers shared by the matte and depth code: pinned buffers, Mat headers over them, metrics.</summary>
internal static class OrtBuffers
{
    /// <summary>A float array on the pinned object heap: its address never moves, so OpenCV Mat headers and
    /// ONNX Runtime tensors can both sit on it for the life of the array (no copy, no per-frame pinning).</summary>
    public static float[] Pinned(int length) => GC.AllocateArray<float>(Math.Max(1, length), pinned: true);

    /// <summary>A CV_32FC(channels) header over <paramref name="buffer"/> from element <paramref
    /// name="offset"/>.</summary>
    public static Mat Header(float[] buffer, int offset, int rows, int cols, int channels) =>
        Mat.FromPixelData(
            rows,
            cols,
            MatType.CV_32FC(channels),
            Marshal.UnsafeAddrOfPinnedArrayElement(buffer, offset)
        );

    /// <summary>Three CV_32FC1 planes (R, G, B) over an NCHW [1,3,H,W] buffer.</summary>
    public static Mat[] Planes(float[] buffer, int rows, int cols)
    {
        var n = rows * cols;
        return
        [
            Header(buffer, 0, rows, cols, 1),
            Header(buffer, n, rows, cols, 1),
            Header(buffer, 2 * n, rows, cols, 1),
        ];
    }

    /// <summary>From-to pairs for <see cref="Cv2.MixChannels"/>: BGR channels 2,1,0 into planes R,G,B.</summary>
    public static readonly int[] BgrToRgbPlanes = [2, 0, 1, 1, 0, 2];

    /// <summary>Records one session.Run over <paramref name="images"/> images (<see
    /// cref="OnnxModel.RecordBatch"/>).</summary>
    public static double RecordInference(long start, OnnxModel m, int images = 1)
    {
        var ms = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        m.RecordBatch(images, ms);
        return ms;
    }

    /// <summary>Dimension <paramref name="i"/> of a model's input/output metadata, or <paramref name="fallback"/>
    /// when it is dynamic (-1 or a symbolic name) or missing.</summary>
    public static int Dim(int[] dims, int i, int fallback) => i < dims.Length && dims[i] > 0 ? dims[i] : fallback;

    /// <summary>True for exceptions a frame step must not swallow.</summary>
    public static bool IsFatal(Exception e) => e is StackOverflowException or AccessViolationException;
}
