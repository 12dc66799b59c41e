using Blankend.Orleans.Grains.Ai.Runtime;
using OpenCvSharp;

namespace Blankend.Orleans.Grains.Ai.Face.Insight;

/// <summary>
/// ArcFace recognition (insightface <c>arcface_onnx.py</c>; w600k_r50 / w600k_mbf): the face aligned to the
/// 112x112 template (<see cref="FaceAlign"/>), RGB, (x − 127.5) / 127.5, NCHW; the 512-d output L2-normalised
/// (insightface's <c>normed_embedding</c>). Thread-safe (buffers per call: it runs once per reference upload).
/// </summary>
internal sealed class ArcFaceModel
{
    public const int Dim = 512;
    private readonly string _input,
        _output;
    private long _runs;

    /// <exception cref="InvalidDataException">Not the ArcFace signature.</exception>
    public ArcFaceModel(OnnxModel model)
    {
        Model = model;
        (_input, _output) = NchwImage.SingleInputOutput(
            model,
            d => d is [_, 3, 112, 112],
            d => d is [_, Dim],
            (
                "ArcFace has 1 input [N,3,112,112] and an output [N,512]",
                "ArcFace takes float [N,3,112,112]",
                "ArcFace gives float [N,512]"
            )
        );
    }

    public OnnxModel Model { get; }

    /// <summary>Embeddings computed (the reference is embedded once per upload, never per frame).</summary>
    public long Runs => Interlocked.Read(ref _runs);

    /// <summary>The normalised 512-d embedding of the face with these five keypoints (index coordinates).</summary>
    public float[] Embed(Mat bgr, ReadOnlySpan<float> kps)
    {
        var m = FaceAlign.EstimateNorm(kps, 112);
        using var crop = new Mat();
        FaceAlign.Crop(bgr, m, 112, crop);
        var input = new float[3 * 112 * 112];
        NchwImage.Fill(crop, input, 127.5, 127.5);
        var e = NchwImage.Run(Model, [_input], [(input, [1, 3, 112, 112])], _output);
        Interlocked.Increment(ref _runs);
        if (e.Length < Dim)
            throw new InvalidDataException($"ArcFace gave {e.Length} values, 512 expected");
        return Normalise(e.AsSpan(0, Dim));
    }

    /// <summary>x / ‖x‖ (a zero vector stays zero).</summary>
    public static float[] Normalise(ReadOnlySpan<float> x)
    {
        double s = 0;
        foreach (var v in x)
            s += (double)v * v;
        var n = Math.Sqrt(s);
        var r = new float[x.Length];
        if (n <= 0 || !double.IsFinite(n))
            return r;
        for (var i = 0; i < x.Length; i++)
            r[i] = (float)(x[i] / n);
        return r;
    }
}
