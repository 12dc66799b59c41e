using System.Diagnostics;
using System.Runtime.InteropServices;
using Blankend.Orleans.Grains.Ai.Runtime;
using Microsoft.ML.OnnxRuntime;
using OpenCvSharp;

namespace Blankend.Orleans.Grains.Ai.Face;

/// <summary>
/// Reused input and output buffers of one model call over a batch of up to <see cref="Capacity"/> images: float
/// arrays on the pinned object heap wrapped in <see cref="OrtValue"/>s (one set per batch size, made once), and,
/// for the NHWC image input, one OpenCV <see cref="Mat"/> per batch slot over the same memory, so the
/// pre-processing writes straight into the batch tensor and the outputs are read where ONNX Runtime wrote them.
/// One instance serves one call at a time; the models keep a pool of them so concurrent worker threads never
/// share one and steady state allocates nothing.
/// </summary>
internal sealed class FaceOrtIo : IDisposable
{
    private readonly OrtValue?[][] _inputs;
    private readonly OrtValue?[][] _outputs;
    private readonly string[] _inputNames;
    private readonly string[] _outputNames;
    private readonly long[][] _outputShapes;
    private readonly int[] _outputPerImage;
    private readonly RunOptions _run = new();

    /// <param name="inputName">The single image input, NHWC [N,H,W,3] float.</param>
    /// <param name="outputs">Output names and their shapes for ONE image (batch dimension 1).</param>
    /// <param name="capacity">Most images per call (1 for a model with a fixed batch of 1).</param>
    public FaceOrtIo(string inputName, int height, int width, (string Name, long[] Shape)[] outputs, int capacity = 1)
    {
        Height = height;
        Width = width;
        Capacity = Math.Max(1, capacity);
        var perImage = height * width * 3;
        Input = GC.AllocateArray<float>(perImage * Capacity, pinned: true);
        InputMats = new Mat[Capacity];
        for (var i = 0; i < Capacity; i++)
            InputMats[i] = Mat.FromPixelData(
                height,
                width,
                MatType.CV_32FC3,
                Marshal.UnsafeAddrOfPinnedArrayElement(Input, i * perImage)
            );
        _inputNames = [inputName];
        _outputNames = new string[outputs.Length];
        _outputShapes = new long[outputs.Length][];
        _outputPerImage = new int[outputs.Length];
        Outputs = new float[outputs.Length][];
        for (var i = 0; i < outputs.Length; i++)
        {
            long n = 1;
            for (var d = 1; d < outputs[i].Shape.Length; d++)
                n *= outputs[i].Shape[d];
            _outputPerImage[i] = (int)n;
            _outputShapes[i] = outputs[i].Shape;
            Outputs[i] = GC.AllocateArray<float>((int)n * Capacity, pinned: true);
            _outputNames[i] = outputs[i].Name;
        }
        _inputs = new OrtValue?[Capacity + 1][];
        _outputs = new OrtValue?[Capacity + 1][];
    }

    public int Height { get; }
    public int Width { get; }

    /// <summary>Most images one <see cref="Run(OnnxModel, int)"/> takes.</summary>
    public int Capacity { get; }

    /// <summary>The input tensor's memory (NHWC, image after image).</summary>
    public float[] Input { get; }

    /// <summary>An H x W CV_32FC3 Mat over batch slot i of <see cref="Input"/>: write the normalised RGB image
    /// here.</summary>
    public Mat[] InputMats { get; }

    /// <summary>Slot 0's input (single-image callers).</summary>
    public Mat InputMat => InputMats[0];

    /// <summary>The outputs, in the order given to the constructor, image after image; overwritten by each
    /// run.</summary>
    public float[][] Outputs { get; }

    /// <summary>Output <paramref name="output"/> of batch slot <paramref name="image"/>.</summary>
    public Span<float> Output(int output, int image) =>
        Outputs[output].AsSpan(image * _outputPerImage[output], _outputPerImage[output]);

    /// <summary>Runs the session on slot 0.</summary>
    public void Run(OnnxModel model) => Run(model, 1);

    /// <summary>Runs the session on the first <paramref name="count"/> slots into the output buffers (one call),
    /// recording the inference time and the batch size.</summary>
    public void Run(OnnxModel model, int count)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, Capacity);
        var inputs = _inputs[count] ??= [
            OrtValue.CreateTensorValueFromMemory(
                OrtMemoryInfo.DefaultInstance,
                Input.AsMemory(0, Height * Width * 3 * count),
                [count, Height, Width, 3]
            ),
        ];
        var outputs = _outputs[count] ??= MakeOutputs(count);
        var t0 = Stopwatch.GetTimestamp();
        model.Session.Run(_run, _inputNames, inputs, _outputNames, outputs);
        model.RecordBatch(count, Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
    }

    private OrtValue[] MakeOutputs(int count)
    {
        var values = new OrtValue[_outputNames.Length];
        for (var i = 0; i < values.Length; i++)
        {
            var shape = (long[])_outputShapes[i].Clone();
            shape[0] = count;
            values[i] = OrtValue.CreateTensorValueFromMemory(
                OrtMemoryInfo.DefaultInstance,
                Outputs[i].AsMemory(0, _outputPerImage[i] * count),
                shape
            );
        }
        return values;
    }

    public void Dispose()
    {
        foreach (var set in _inputs)
            if (set is not null)
                foreach (var v in set)
                    v?.Dispose();
        foreach (var set in _outputs)
            if (set is not null)
                foreach (var v in set)
                    v?.Dispose();
        _run.Dispose();
        foreach (var m in InputMats)
            m.Dispose();
    }

    /// <summary>How many images a model takes per call: its batch dimension when fixed, else <paramref
    /// name="max"/>.</summary>
    public static int BatchCapacity(int[] inputDims, int max) =>
        inputDims.Length > 0 && inputDims[0] > 0 ? inputDims[0] : Math.Max(1, max);

    /// <summary>Shape of a model value with symbolic dimensions (-1) read as 1 (batch).</summary>
    public static long[] Shape(NodeMetadata meta)
    {
        var d = meta.Dimensions;
        var s = new long[d.Length];
        for (var i = 0; i < d.Length; i++)
            s[i] = d[i] <= 0 ? 1 : d[i];
        return s;
    }

    /// <summary>Makes a BGR 8-bit 3-channel view of any image: the image itself when it already is, else a
    /// converted copy in <paramref name="owned"/> (dispose it). Null for an image that cannot be used.</summary>
    public static Mat? AsBgr(Mat image, out Mat? owned)
    {
        owned = null;
        if (image.Empty() || image.Dims != 2)
            return null;
        var type = image.Type();
        if (type == MatType.CV_8UC3)
            return image;
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
