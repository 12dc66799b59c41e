using Blankend.Orleans.Grains.Ai.Runtime;
using OpenCvSharp;

namespace Blankend.Orleans.Grains.Ai.Face.Insight;

/// <summary>
/// inswapper (insightface <c>inswapper.py</c>; <c>inswapper_128.onnx</c>): inputs <c>target</c> [1,3,128,128]
/// (the target face aligned to the ArcFace template for 128, RGB 0..1) and <c>source</c> [1,512] (the source
/// latent: the normalised ArcFace embedding times <c>emap</c>, re-normalised); output [1,3,128,128] RGB 0..1,
/// pasted back through the inverse affine with insightface's soft mask. The emap is read from the file
/// (<see cref="OnnxInitializerReader"/>). Thread-safe (buffers per call).
/// </summary>
internal sealed class InswapperModel
{
    private readonly string _target,
        _source,
        _output;
    private readonly float[] _emap;
    private long _runs;

    /// <exception cref="InvalidDataException">Not the inswapper signature, or no 512x512 emap.</exception>
    public InswapperModel(OnnxModel model, Func<OnnxTensor> emap)
    {
        Model = model;
        var file = Path.GetFileName(model.Path);
        var inputs = model.Session.InputMetadata;
        var outputs = model.Session.OutputMetadata;
        if (inputs.Count != 2 || outputs.Count != 1)
            throw new InvalidDataException(
                $"{file} has {inputs.Count} inputs and {outputs.Count} outputs; inswapper has target [1,3,128,128], source [1,512] and one output"
            );
        // insightface takes the image input first and the latent second; the names are checked when present.
        var list = inputs.ToArray();
        var (tname, tmeta) = list[0];
        var (sname, smeta) = list[1];
        if (inputs.TryGetValue("target", out var t) && inputs.TryGetValue("source", out var s))
        {
            (tname, tmeta, sname, smeta) = ("target", t, "source", s);
        }
        var td = tmeta.Dimensions;
        if (
            !NchwImage.IsFloat(tmeta)
            || td.Length != 4
            || td[1] != 3
            || td[2] <= 0
            || td[2] != td[3]
            || td[2] % 128 != 0
        )
            throw new InvalidDataException(
                $"{file} image input is {NchwImage.Describe(tname, tmeta)}; inswapper takes float target [1,3,128,128]"
            );
        var sd = smeta.Dimensions;
        if (!NchwImage.IsFloat(smeta) || sd.Length != 2 || sd[1] != ArcFaceModel.Dim)
            throw new InvalidDataException(
                $"{file} latent input is {NchwImage.Describe(sname, smeta)}; inswapper takes float source [1,512]"
            );
        var (oname, ometa) = outputs.First();
        if (!NchwImage.IsFloat(ometa) || ometa.Dimensions is not [_, 3, var oh, var ow] || oh != td[2] || ow != td[3])
            throw new InvalidDataException(
                $"{file} output is {NchwImage.Describe(oname, ometa)}; inswapper gives float [1,3,{td[2]},{td[3]}]"
            );
        // The emap is read only for a file whose signature is inswapper's.
        var e = emap();
        if (e.Dims is not [ArcFaceModel.Dim, ArcFaceModel.Dim])
            throw new InvalidDataException(
                $"{file}: the last initializer ('{e.Name}', the emap) is [{string.Join(',', e.Dims)}], 512x512 expected"
            );
        _target = tname;
        _source = sname;
        _output = oname;
        _emap = e.Values;
        EmapName = e.Name;
        Size = (int)td[2];
    }

    public OnnxModel Model { get; }

    /// <summary>Side of the aligned crop (128 for inswapper_128).</summary>
    public int Size { get; }

    public long Runs => Interlocked.Read(ref _runs);

    /// <summary>Name of the initializer used as the emap.</summary>
    public string EmapName { get; }

    /// <summary>insightface's latent: (e · emap) / ‖e · emap‖ for the normalised embedding e (row vector).</summary>
    public float[] Latent(ReadOnlySpan<float> embedding) => Latent(embedding, _emap);

    public static float[] Latent(ReadOnlySpan<float> embedding, ReadOnlySpan<float> emap)
    {
        const int n = ArcFaceModel.Dim;
        var l = new double[n];
        for (var i = 0; i < n; i++)
        {
            double e = embedding[i];
            if (e == 0)
                continue;
            var row = emap.Slice(i * n, n);
            for (var j = 0; j < n; j++)
                l[j] += e * row[j];
        }
        double s = 0;
        foreach (var v in l)
            s += v * v;
        var norm = Math.Sqrt(s);
        var r = new float[n];
        if (norm > 0)
            for (var j = 0; j < n; j++)
                r[j] = (float)(l[j] / norm);
        return r;
    }

    /// <summary>Runs the model on the face with these five keypoints (index coordinates) and pastes the result
    /// into <paramref name="frame"/> (BGR 8-bit) in place; returns the frame region changed (empty when
    /// none).</summary>
    public Rect Swap(Mat frame, ReadOnlySpan<float> kps, float[] latent)
    {
        var m = FaceAlign.EstimateNorm(kps, Size);
        using var aimg = new Mat();
        FaceAlign.Crop(frame, m, Size, aimg);
        var input = new float[3 * Size * Size];
        NchwImage.Fill(aimg, input, 0, 255);
        var pred = NchwImage.Run(
            Model,
            [_target, _source],
            [(input, [1, 3, Size, Size]), (latent, [1, ArcFaceModel.Dim])],
            _output
        );
        Interlocked.Increment(ref _runs);
        using var fake = new Mat();
        NchwImage.ToBgr(pred, Size, Size, fake);
        return PasteBack(frame, fake, m);
    }

    /// <summary>
    /// insightface's paste-back: the swapped crop and a white square warped back through the inverse affine;
    /// the white mask (&gt; 20 → 255) eroded by max(s/10, 10) and Gaussian-blurred with (2·max(s/20, 5) + 1),
    /// s = √(mask height · mask width); frame = mask·fake + (1 − mask)·frame. Worked on the face's bounding region
    /// only (outside it the warped mask is 0, so the result equals the full-frame computation there).
    /// </summary>
    public static Rect PasteBack(Mat frame, Mat fake, double[] m)
    {
        var im = FaceAlign.Invert(m);
        var size = fake.Cols;
        // The crop square's corners in the frame: the region the mask can reach.
        double minX = double.MaxValue,
            minY = double.MaxValue,
            maxX = double.MinValue,
            maxY = double.MinValue;
        foreach (var (cx, cy) in new[] { (0.0, 0.0), (size, 0.0), (0.0, size), (size, (double)size) })
        {
            var x = im[0] * cx + im[1] * cy + im[2];
            var y = im[3] * cx + im[4] * cy + im[5];
            minX = Math.Min(minX, x);
            maxX = Math.Max(maxX, x);
            minY = Math.Min(minY, y);
            maxY = Math.Max(maxY, y);
        }
        var x0 = Math.Max(0, (int)Math.Floor(minX) - 2);
        var y0 = Math.Max(0, (int)Math.Floor(minY) - 2);
        var x1 = Math.Min(frame.Cols, (int)Math.Ceiling(maxX) + 3);
        var y1 = Math.Min(frame.Rows, (int)Math.Ceiling(maxY) + 3);
        if (x1 - x0 < 2 || y1 - y0 < 2)
            return default;
        var roi = new Rect(x0, y0, x1 - x0, y1 - y0);
        // The inverse map into region coordinates.
        var local = (double[])im.Clone();
        local[2] -= x0;
        local[5] -= y0;
        using var imMat = FaceAlign.Matrix(local);
        using var warped = new Mat();
        Cv2.WarpAffine(fake, warped, imMat, roi.Size, InterpolationFlags.Linear, BorderTypes.Constant, Scalar.All(0));
        using var white = new Mat(size, size, MatType.CV_32FC1, Scalar.All(255));
        using var mask = new Mat();
        Cv2.WarpAffine(white, mask, imMat, roi.Size, InterpolationFlags.Linear, BorderTypes.Constant, Scalar.All(0));
        Cv2.Threshold(mask, mask, 20, 255, ThresholdTypes.Binary);
        using var mask8 = new Mat();
        mask.ConvertTo(mask8, MatType.CV_8UC1);
        var bounds = Cv2.BoundingRect(mask8);
        if (bounds.Width == 0 || bounds.Height == 0)
            return default;
        // numpy: max(index) − min(index), i.e. one less than the bounding box side.
        var maskSize = (int)Math.Sqrt((double)(bounds.Height - 1) * (bounds.Width - 1));
        var k = Math.Max(maskSize / 10, 10);
        using (var kernel = new Mat(k, k, MatType.CV_8UC1, Scalar.All(1)))
            Cv2.Erode(mask, mask, kernel);
        var kb = Math.Max(maskSize / 20, 5);
        Cv2.GaussianBlur(mask, mask, new Size(2 * kb + 1, 2 * kb + 1), 0);
        mask.ConvertTo(mask, MatType.CV_32FC1, 1 / 255.0);
        using var target = frame.SubMat(roi);
        Blend(warped, target, mask);
        return roi;
    }

    /// <summary>target = mask·fake + (1 − mask)·target.</summary>
    private static void Blend(Mat fake, Mat target, Mat mask)
    {
        using var inverse = new Mat();
        Cv2.Subtract(Scalar.All(1), mask, inverse);
        using var merged = new Mat();
        Cv2.BlendLinear(fake, target, mask, inverse, merged);
        merged.CopyTo(target);
    }
}
