using System.Diagnostics;
using System.Runtime.InteropServices;
using Blankend.Orleans.Grains.Ai.Runtime;
using Microsoft.ML.OnnxRuntime;
using OpenCvSharp;

namespace Blankend.Orleans.Grains.Ai.Face.Insight;

/// <summary>The NCHW float tensors the insightface models take and give (cv2.dnn.blobFromImage with swapRB).</summary>
internal static class NchwImage
{
    /// <summary>Writes a BGR 8-bit image as RGB planes, (x − mean) / std, into <paramref name="tensor"/>
    /// (3·H·W).</summary>
    public static void Fill(Mat bgr, float[] tensor, double mean, double std)
    {
        var h = bgr.Rows;
        var w = bgr.Cols;
        if (tensor.Length < 3 * h * w)
            throw new ArgumentException("tensor too small", nameof(tensor));
        using var f = new Mat();
        bgr.ConvertTo(f, MatType.CV_32FC3, 1 / std, -mean / std);
        var handle = GCHandle.Alloc(tensor, GCHandleType.Pinned);
        try
        {
            var basePtr = handle.AddrOfPinnedObject();
            for (var c = 0; c < 3; c++)
            {
                using var plane = Mat.FromPixelData(h, w, MatType.CV_32FC1, basePtr + c * h * w * sizeof(float));
                Cv2.ExtractChannel(f, plane, 2 - c); // RGB planes from BGR
            }
        }
        finally
        {
            handle.Free();
        }
    }

    /// <summary>RGB planes in 0..1 (3·H·W) to a BGR 8-bit image (clip(255·x), as inswapper's output).</summary>
    public static void ToBgr(ReadOnlySpan<float> planes, int h, int w, Mat dst)
    {
        dst.Create(h, w, MatType.CV_8UC3);
        var n = h * w;
        var px = dst.AsSpan<byte>();
        for (var i = 0; i < n; i++)
        {
            px[i * 3] = To8(planes[2 * n + i]);
            px[i * 3 + 1] = To8(planes[n + i]);
            px[i * 3 + 2] = To8(planes[i]);
        }
    }

    // numpy's astype(uint8) after clip truncates.
    private static byte To8(float v) => float.IsNaN(v) ? (byte)0 : (byte)Math.Clamp(255f * v, 0f, 255f);

    /// <summary>Runs a session with named float inputs; returns the first output's values, recording the inference
    /// time.</summary>
    public static float[] Run(
        OnnxModel model,
        string[] inputNames,
        (float[] Data, long[] Shape)[] inputs,
        string outputName
    )
    {
        var values = new OrtValue[inputs.Length];
        try
        {
            for (var i = 0; i < inputs.Length; i++)
                values[i] = OrtValue.CreateTensorValueFromMemory(inputs[i].Data, inputs[i].Shape);
            var t0 = Stopwatch.GetTimestamp();
            using var run = new RunOptions();
            using var outputs = model.Session.Run(run, inputNames, values, [outputName]);
            model.RecordBatch(1, Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
            return outputs[0].GetTensorDataAsSpan<float>().ToArray();
        }
        finally
        {
            foreach (var v in values)
                v?.Dispose();
        }
    }

    /// <summary>The input and output names of a model with one float input and a float (first) output, each of
    /// the shape its check accepts. The three wants end the messages: the signature, the input, the output.</summary>
    /// <exception cref="InvalidDataException">Another signature.</exception>
    public static (string Input, string Output) SingleInputOutput(
        OnnxModel model,
        Func<int[], bool> inputShape,
        Func<int[], bool> outputShape,
        (string Signature, string Input, string Output) want
    )
    {
        var file = Path.GetFileName(model.Path);
        var inputs = model.Session.InputMetadata;
        var outputs = model.Session.OutputMetadata;
        if (inputs.Count != 1 || outputs.Count < 1)
            throw new InvalidDataException(
                $"{file} has {inputs.Count} inputs and {outputs.Count} outputs; {want.Signature}"
            );
        var (iname, imeta) = inputs.First();
        var (oname, ometa) = outputs.First();
        if (!IsFloat(imeta) || !inputShape(imeta.Dimensions))
            throw new InvalidDataException($"{file} input is {Describe(iname, imeta)}; {want.Input}");
        if (!IsFloat(ometa) || !outputShape(ometa.Dimensions))
            throw new InvalidDataException($"{file} output is {Describe(oname, ometa)}; {want.Output}");
        return (iname, oname);
    }

    /// <summary>"name [d0,d1,...] type" of a model value, for messages.</summary>
    public static string Describe(string name, NodeMetadata meta) =>
        $"{name} [{string.Join(',', meta.Dimensions)}] {meta.ElementDataType}";

    public static bool IsFloat(NodeMetadata meta) =>
        meta.IsTensor && meta.ElementDataType == Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float;
}
