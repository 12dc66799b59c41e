using System.Diagnostics;
using System.Runtime.InteropServices;
using Blankend.Orleans.Grains.Ai.Runtime;
using Microsoft.ML.OnnxRuntime;
using OpenCvSharp;

namespace Blankend.Orleans.Grains.Ai.Face;

/// <summary>
/// Reused input and output buffers of one model call: float arrays on the pinned object heap wrapped once in
/// <see cref="OrtValue"/>s (and, for the NHWC image input, in an OpenCV <see cref="Mat"/> over the same memory,
/// so the pre-processing writes straight into the tensor). One instance serves one call at a time; the models
/// keep a pool of them so concurrent worker threads never share one and steady state allocates nothing.
/// </summary>
internal sealed class FaceOrtIo : IDisposable
{
    private readonly OrtValue[] _inputs;
    private readonly OrtValue[] _outputs;
    private readonly string[] _inputNames;
    private readonly string[] _outputNames;
    private readonly RunOptions _run = new();

    /// <param name="inputName">The single image input, NHWC [1,H,W,3] float.</param>
    /// <param name="outputs">Output names and their element counts (shapes as the model declares them).</param>
    public FaceOrtIo(string inputName, int height, int width, (string Name, long[] Shape)[] outputs)
    {
        Height = height;
        Width = width;
        Input = GC.AllocateArray<float>(height * width * 3, pinned: true);
        InputMat = Mat.FromPixelData(height, width, MatType.CV_32FC3, Marshal.UnsafeAddrOfPinnedArrayElement(Input, 0));
        _inputNames = [inputName];
        _inputs = [OrtValue.CreateTensorValueFromMemory(Input, [1, height, width, 3])];
        _outputNames = new string[outputs.Length];
        _outputs = new OrtValue[outputs.Length];
        Outputs = new float[outputs.Length][];
        for (var i = 0; i < outputs.Length; i++)
        {
            long n = 1;
            foreach (var d in outputs[i].Shape) n *= d;
            Outputs[i] = GC.AllocateArray<float>((int)n, pinned: true);
            _outputNames[i] = outputs[i].Name;
            _outputs[i] = OrtValue.CreateTensorValueFromMemory(Outputs[i], outputs[i].Shape);
        }
    }

    public int Height { get; }
    public int Width { get; }

    /// <summary>The input tensor's memory (NHWC).</summary>
    public float[] Input { get; }

    /// <summary>An H x W CV_32FC3 Mat over <see cref="Input"/>: write the normalised RGB image here.</summary>
    public Mat InputMat { get; }

    /// <summary>The outputs, in the order given to the constructor; overwritten by each <see cref="Run"/>.</summary>
    public float[][] Outputs { get; }

    /// <summary>Runs the session on the current input into the output buffers, recording the inference time.</summary>
    public void Run(OnnxModel model)
    {
        var t0 = Stopwatch.GetTimestamp();
        model.Session.Run(_run, _inputNames, _inputs, _outputNames, _outputs);
        AiMetrics.InferenceMs.Record(Stopwatch.GetElapsedTime(t0).TotalMilliseconds,
            new KeyValuePair<string, object?>("model", model.Kind.ToString()),
            new KeyValuePair<string, object?>("provider", model.Provider));
    }

    public void Dispose()
    {
        foreach (var v in _inputs) v.Dispose();
        foreach (var v in _outputs) v.Dispose();
        _run.Dispose();
        InputMat.Dispose();
    }

    /// <summary>Shape of a model value with symbolic dimensions (-1) read as 1 (batch).</summary>
    public static long[] Shape(NodeMetadata meta)
    {
        var d = meta.Dimensions;
        var s = new long[d.Length];
        for (var i = 0; i < d.Length; i++) s[i] = d[i] <= 0 ? 1 : d[i];
        return s;
    }

    /// <summary>Makes a BGR 8-bit 3-channel view of any image: the image itself when it already is, else a
    /// converted copy in <paramref name="owned"/> (dispose it). Null for an image that cannot be used.</summary>
    public static Mat? AsBgr(Mat image, out Mat? owned)
    {
        owned = null;
        if (image.Empty() || image.Dims != 2) return null;
        var type = image.Type();
        if (type == MatType.CV_8UC3) return image;
        Mat src = image;
        Mat? tmp = null;
        if (image.Depth() != MatType.CV_8U)
        {
            tmp = new Mat();
            image.ConvertTo(tmp, MatType.CV_8U);
            src = tmp;
        }
        var channels = src.Channels();
        if (channels is not (1 or 3 or 4))
        {
            tmp?.Dispose();
            return null;
        }
        if (channels == 3)
        {
            owned = tmp;
            return tmp;
        }
        var code = channels == 1 ? ColorConversionCodes.GRAY2BGR : ColorConversionCodes.BGRA2BGR;
        owned = new Mat();
        Cv2.CvtColor(src, owned, code);
        tmp?.Dispose();
        return owned;
    }
}
