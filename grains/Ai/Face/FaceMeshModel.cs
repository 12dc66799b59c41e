using Blankend.Orleans.Ai;
using Blankend.Orleans.Grains.Ai.Runtime;
using OpenCvSharp;

namespace Blankend.Orleans.Grains.Ai.Face;

/// <summary>One face mesh: 468 x (x, y, z) in frame pixels (z in the same unit), and MediaPipe's presence.</summary>
internal sealed record FaceMeshResult(float[] Points, float Presence)
{
    public const int Count = 468;

    /// <summary>sigmoid(face_flag) &gt; 0.5, MediaPipe's threshold.</summary>
    public bool Present => Presence > 0.5f;
}

/// <summary>A face mesh crop: the frame, the crop's centre and side in frame pixels, its rotation (radians).</summary>
internal readonly record struct MeshRoi(Mat Image, float Cx, float Cy, float Side, float Theta);

/// <summary>
/// MediaPipe face mesh (face_landmark.onnx, 192x192, 468 points) on one ONNX session. The crop is built as
/// MediaPipe does from a BlazeFace detection (models/LICENSE-NOTES.md): centre = box centre, side =
/// max(w,h)*1.5, rotated by the eye line (keypoint 0 to 1), sampled with one bilinear <c>WarpAffine</c>
/// (border replicated) straight into the tensor; the landmarks are mapped back with the same transform.
/// Thread-safe: each call rents its own buffers.
/// </summary>
internal sealed class FaceMeshModel : IDisposable
{
    public const int Size = 192;
    private readonly string _inputName;
    private readonly (string Name, long[] Shape)[] _outputs;
    private readonly BufferPool<Buffers> _pool = new();
    private volatile bool _disposed;

    /// <exception cref="InvalidDataException">The model does not have the face mesh signature.</exception>
    /// <param name="maxBatch">Most crops per inference call (<c>ai.max_batch</c>) when the model's batch is
    /// dynamic.</param>
    public FaceMeshModel(OnnxModel model, int maxBatch = 1)
    {
        Model = model;
        var file = Path.GetFileName(model.Path);
        var inputs = model.Session.InputMetadata;
        if (inputs.Count != 1)
            throw new InvalidDataException($"face mesh has one input; {file} has {inputs.Count}");
        var (name, meta) = inputs.First();
        var d = meta.Dimensions;
        if (d.Length != 4 || d[1] != Size || d[2] != Size || d[3] != 3)
            throw new InvalidDataException($"face mesh input is [1,192,192,3]; {file} has [{string.Join(',', d)}]");
        _inputName = name;
        BatchCapacity = FaceOrtIo.BatchCapacity(d, maxBatch);
        var outs = model.Session.OutputMetadata;
        if (!outs.TryGetValue("landmarks", out var lm) || !outs.TryGetValue("face_flag", out var flag))
            throw new InvalidDataException(
                $"face mesh outputs are 'landmarks' and 'face_flag'; {file} has {string.Join(", ", outs.Keys)}"
            );
        var lmShape = FaceOrtIo.Shape(lm);
        long lmCount = 1;
        foreach (var x in lmShape)
            lmCount *= x;
        if (lmCount != FaceMeshResult.Count * 3)
            throw new InvalidDataException($"face mesh 'landmarks' has {lmCount} values, not 1404");
        _outputs = [("landmarks", lmShape), ("face_flag", FaceOrtIo.Shape(flag))];
    }

    public OnnxModel Model { get; }

    /// <summary>Most crops per inference call.</summary>
    public int BatchCapacity { get; }

    /// <summary>The mesh of a detected face, or null when the detection cannot give a crop (degenerate box) or
    /// the image is unusable.</summary>
    public FaceMeshResult? Run(Mat image, AiFace face) =>
        Roi(image, face) is { } roi ? RunMany(new ReadOnlySpan<MeshRoi>(ref roi))[0] : null;

    /// <summary>MediaPipe's crop of a detection (centre of the box, side max(w,h)*1.5, rotated by the eye line),
    /// or null for a detection without a box and two keypoints.</summary>
    public static MeshRoi? Roi(Mat image, AiFace face)
    {
        if (face.Box is not { Length: 4 } box || face.Keypoints is not { Length: >= 4 } kp)
            return null;
        var cx = (box[0] + box[2]) / 2;
        var cy = (box[1] + box[3]) / 2;
        var side = Math.Max(box[2] - box[0], box[3] - box[1]) * 1.5f;
        return new MeshRoi(image, cx, cy, side, MathF.Atan2(kp[3] - kp[1], kp[2] - kp[0]));
    }

    /// <summary>MediaPipe's ROI for the next frame from a mesh: the landmarks' bounding box centre, side =
    /// max(w,h)*1.5, rotation from landmark 33 (outer corner of the eye on the image's left) to 263 (the
    /// other outer eye corner). Writes cx, cy, side, θ at <paramref name="roi"/>.</summary>
    public static void RoiFromMesh(float[] points, Span<float> roi)
    {
        float minX = float.MaxValue,
            minY = float.MaxValue,
            maxX = float.MinValue,
            maxY = float.MinValue;
        for (var i = 0; i < FaceMeshResult.Count; i++)
        {
            var x = points[i * 3];
            var y = points[i * 3 + 1];
            minX = Math.Min(minX, x);
            maxX = Math.Max(maxX, x);
            minY = Math.Min(minY, y);
            maxY = Math.Max(maxY, y);
        }
        roi[0] = (minX + maxX) / 2;
        roi[1] = (minY + maxY) / 2;
        roi[2] = Math.Max(maxX - minX, maxY - minY) * 1.5f;
        roi[3] = MathF.Atan2(points[263 * 3 + 1] - points[33 * 3 + 1], points[263 * 3] - points[33 * 3]);
    }

    /// <summary>The mesh for an explicit ROI (centre, side, rotation in radians) in frame pixels.</summary>
    public FaceMeshResult? Run(Mat image, float cx, float cy, float side, float theta)
    {
        var roi = new MeshRoi(image, cx, cy, side, theta);
        return RunMany(new ReadOnlySpan<MeshRoi>(ref roi))[0];
    }

    /// <summary>The meshes of several crops (of one or several frames), in order, with one inference call per
    /// <see cref="BatchCapacity"/> crops, each warped straight into its slot of the batch tensor; null where a
    /// crop is degenerate or its image unusable.</summary>
    public FaceMeshResult?[] RunMany(ReadOnlySpan<MeshRoi> rois)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var result = new FaceMeshResult?[rois.Length];
        var b = _pool.Rent(this, static m => new Buffers(m));
        try
        {
            for (var start = 0; start < rois.Length; start += BatchCapacity)
            {
                var count = Math.Min(BatchCapacity, rois.Length - start);
                var slots = 0;
                for (var i = 0; i < count; i++)
                {
                    var roi = rois[start + i];
                    if (!(roi.Side >= 2) || roi.Side > 1e6f || !float.IsFinite(roi.Cx) || !float.IsFinite(roi.Cy))
                        continue;
                    if (!float.IsFinite(roi.Theta))
                        roi = roi with { Theta = 0 };
                    var bgr = FaceOrtIo.AsBgr(roi.Image, out var owned);
                    if (bgr is null)
                        continue;
                    try
                    {
                        Warp(bgr, roi, b, slots);
                    }
                    finally
                    {
                        owned?.Dispose();
                    }
                    b.Place[slots++] = (start + i, roi);
                }
                if (slots == 0)
                    continue;
                b.Io.Run(Model, slots);
                for (var k = 0; k < slots; k++)
                {
                    var (index, roi) = b.Place[k];
                    result[index] = MapBack(b.Io.Output(0, k), b.Io.Output(1, k)[0], roi);
                }
            }
            return result;
        }
        finally
        {
            _pool.Return(b);
        }
    }

    private static void Warp(Mat bgr, MeshRoi roi, Buffers b, int slot)
    {
        var cos = MathF.Cos(roi.Theta);
        var sin = MathF.Sin(roi.Theta);
        var s = roi.Side / Size;
        // src = c + R(θ)·((u+0.5)/192-0.5, (v+0.5)/192-0.5)·side in continuous coordinates; OpenCV indexes
        // pixel centres at integers, so both sides shift by 0.5. The matrix maps crop index -> frame index.
        var off = s / 2 - roi.Side / 2;
        b.M[0] = s * cos;
        b.M[1] = -s * sin;
        b.M[2] = roi.Cx - 0.5 + off * (cos - sin);
        b.M[3] = s * sin;
        b.M[4] = s * cos;
        b.M[5] = roi.Cy - 0.5 + off * (sin + cos);
        using (var m = Mat.FromPixelData(2, 3, MatType.CV_64FC1, b.M))
        {
            Cv2.WarpAffine(
                bgr,
                b.Crop,
                m,
                new Size(Size, Size),
                InterpolationFlags.Linear | InterpolationFlags.WarpInverseMap,
                BorderTypes.Replicate
            );
        }
        Cv2.CvtColor(b.Crop, b.Rgb, ColorConversionCodes.BGR2RGB);
        b.Rgb.ConvertTo(b.Io.InputMats[slot], MatType.CV_32FC3, 1 / 255.0);
    }

    private static FaceMeshResult MapBack(ReadOnlySpan<float> lm, float flag, MeshRoi roi)
    {
        var cos = MathF.Cos(roi.Theta);
        var sin = MathF.Sin(roi.Theta);
        var s = roi.Side / Size;
        var points = new float[FaceMeshResult.Count * 3];
        for (var i = 0; i < FaceMeshResult.Count; i++)
        {
            var a = lm[i * 3] / Size - 0.5f;
            var c = lm[i * 3 + 1] / Size - 0.5f;
            points[i * 3] = roi.Cx + (a * cos - c * sin) * roi.Side;
            points[i * 3 + 1] = roi.Cy + (a * sin + c * cos) * roi.Side;
            points[i * 3 + 2] = lm[i * 3 + 2] * s;
        }
        var presence = 1f / (1f + MathF.Exp(-Math.Clamp(flag, -100f, 100f)));
        return new FaceMeshResult(points, presence);
    }

    public void Dispose()
    {
        _disposed = true;
        _pool.Dispose();
    }

    private sealed class Buffers : IDisposable
    {
        public readonly FaceOrtIo Io;
        public readonly Mat Crop = new(Size, Size, MatType.CV_8UC3);
        public readonly Mat Rgb = new(Size, Size, MatType.CV_8UC3);
        public readonly double[] M = new double[6];
        public readonly (int Index, MeshRoi Roi)[] Place;

        public Buffers(FaceMeshModel m)
        {
            Io = new FaceOrtIo(m._inputName, Size, Size, m._outputs, m.BatchCapacity);
            Place = new (int, MeshRoi)[m.BatchCapacity];
        }

        public void Dispose()
        {
            Io.Dispose();
            Crop.Dispose();
            Rgb.Dispose();
        }
    }
}
