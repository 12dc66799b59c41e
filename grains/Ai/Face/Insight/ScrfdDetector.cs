using Blankend.Orleans.Ai;
using Blankend.Orleans.Grains.Ai.Runtime;
using OpenCvSharp;

namespace Blankend.Orleans.Grains.Ai.Face.Insight;

/// <summary>
/// SCRFD face detection (insightface <c>scrfd.py</c>; the packs' <c>det_10g.onnx</c>, <c>det_500m.onnx</c>):
/// the frame resized with its aspect kept into the top-left of the input (zero padding right/bottom), RGB,
/// (x − 127.5) / 128, NCHW; nine outputs (scores, distance boxes and 5 keypoints for strides 8, 16, 32, in that
/// order, 2 anchors per cell at the cell's top-left corner); scores ≥ the minimum kept, boxes
/// (cx − l, cy − t, cx + r, cy + b) and keypoints (cx + dx, cy + dy) with the distances × stride, greedy NMS at
/// IoU 0.4, everything divided by the resize scale. Faces come out with 5 keypoints: image-left eye,
/// image-right eye, nose tip, image-left and image-right mouth corner. Thread-safe (buffers per call).
/// </summary>
internal sealed class ScrfdDetector : IFaceDetector
{
    public static readonly int[] Strides = [8, 16, 32];
    public const int AnchorsPerCell = 2;
    private const float NmsIou = 0.4f;
    private readonly string _input;
    private readonly string[] _outputs;
    private readonly float _minScore;

    /// <exception cref="InvalidDataException">Not the SCRFD signature (with keypoints).</exception>
    public ScrfdDetector(OnnxModel model, double minScore)
    {
        Model = model;
        _minScore = (float)minScore;
        var file = Path.GetFileName(model.Path);
        var inputs = model.Session.InputMetadata;
        if (inputs.Count != 1)
            throw new InvalidDataException($"SCRFD has one input; {file} has {inputs.Count}");
        var (iname, imeta) = inputs.First();
        var d = imeta.Dimensions;
        if (!NchwImage.IsFloat(imeta) || d.Length != 4 || d[1] != 3)
            throw new InvalidDataException(
                $"SCRFD input is float [1,3,H,W]; {file} has {NchwImage.Describe(iname, imeta)}"
            );
        _input = iname;
        // Fixed input sizes are used as they are; dynamic ones get insightface's default 640x640.
        Width = d[3] > 0 ? (int)d[3] : 640;
        Height = d[2] > 0 ? (int)d[2] : 640;
        if (Width % 32 != 0 || Height % 32 != 0)
            throw new InvalidDataException($"SCRFD input sides are multiples of 32; {file} has {Width}x{Height}");
        var outs = model.Session.OutputMetadata.ToArray();
        if (!IsScrfd(model.Session.OutputMetadata.Select(kv => kv.Value.Dimensions).ToArray()))
            throw new InvalidDataException(
                $"SCRFD with keypoints has 9 outputs (scores [N,1], boxes [N,4], keypoints [N,10] for strides 8/16/32); {file} has {outs.Length}: "
                    + string.Join(", ", outs.Select(o => $"[{string.Join(',', o.Value.Dimensions)}]"))
            );
        _outputs = [.. outs.Select(o => o.Key)];
    }

    /// <summary>True for SCRFD-with-keypoints output shapes: 3 scores, 3 boxes, 3 keypoint sets (last dims
    /// 1, 4, 10), in that order; the face-detect model's kind is told from this.</summary>
    public static bool IsScrfd(int[][] outputDims)
    {
        if (outputDims.Length != 9)
            return false;
        for (var i = 0; i < 9; i++)
        {
            var d = outputDims[i];
            if (
                d.Length is not (2 or 3)
                || d[^1]
                    != (
                        i < 3 ? 1
                        : i < 6 ? 4
                        : 10
                    )
            )
                return false;
        }
        return true;
    }

    public OnnxModel Model { get; }

    public int Width { get; }

    public int Height { get; }

    public string Describe => $"SCRFD {Width}x{Height} ({Model.Provider})";

    public AiFace[] Detect(Mat image)
    {
        var bgr = FaceOrtIo.AsBgr(image, out var owned);
        if (bgr is null)
            return [];
        try
        {
            // insightface: the longer relative side fills the input; the rest is zero padding at right/bottom.
            var imRatio = (double)bgr.Rows / bgr.Cols;
            var modelRatio = (double)Height / Width;
            int nw,
                nh;
            if (imRatio > modelRatio)
            {
                nh = Height;
                nw = Math.Max(1, (int)(nh / imRatio));
            }
            else
            {
                nw = Width;
                nh = Math.Max(1, (int)(nw * imRatio));
            }
            var scale = (float)nh / bgr.Rows;
            using var det = new Mat(Height, Width, MatType.CV_8UC3, Scalar.All(0));
            using (var roi = det.SubMat(0, nh, 0, nw))
                Cv2.Resize(bgr, roi, new Size(nw, nh));
            var input = new float[3 * Width * Height];
            NchwImage.Fill(det, input, 127.5, 128);
            var outs = RunAll(input);
            var found = Decode(outs, Width, Height, _minScore);
            var faces = new AiFace[found.Count];
            for (var i = 0; i < faces.Length; i++)
            {
                var (score, box, kps) = found[i];
                // insightface's coordinates are pixel indices; AiFace's are continuous (pixel k spans [k, k+1)).
                var b = new float[4];
                for (var k = 0; k < 4; k++)
                    b[k] = box[k] / scale + 0.5f;
                var p = new float[10];
                for (var k = 0; k < 10; k++)
                    p[k] = kps[k] / scale + 0.5f;
                faces[i] = new AiFace(score, b, p, null);
            }
            return faces;
        }
        finally
        {
            owned?.Dispose();
        }
    }

    private float[][] RunAll(float[] input)
    {
        using var value = Microsoft.ML.OnnxRuntime.OrtValue.CreateTensorValueFromMemory(input, [1, 3, Height, Width]);
        using var run = new Microsoft.ML.OnnxRuntime.RunOptions();
        var t0 = System.Diagnostics.Stopwatch.GetTimestamp();
        using var outputs = Model.Session.Run(run, [_input], [value], _outputs);
        Model.RecordBatch(1, System.Diagnostics.Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
        var r = new float[outputs.Count][];
        for (var i = 0; i < r.Length; i++)
            r[i] = outputs[i].GetTensorDataAsSpan<float>().ToArray();
        return r;
    }

    /// <summary>
    /// Decodes the nine outputs of an input of <paramref name="width"/> x <paramref name="height"/> into faces in
    /// input pixels (index coordinates), best score first, after NMS: (score, box x0 y0 x1 y1, 5 x (x, y)).
    /// </summary>
    public static List<(float Score, float[] Box, float[] Kps)> Decode(
        float[][] outs,
        int width,
        int height,
        float minScore
    )
    {
        var cands = new List<(float Score, float[] Box, float[] Kps)>();
        for (var si = 0; si < Strides.Length; si++)
        {
            var stride = Strides[si];
            var scores = outs[si];
            var boxes = outs[si + 3];
            var kps = outs[si + 6];
            var gw = width / stride;
            var gh = height / stride;
            var n = gw * gh * AnchorsPerCell;
            if (scores.Length < n || boxes.Length < n * 4 || kps.Length < n * 10)
                throw new InvalidDataException($"SCRFD stride {stride}: {scores.Length} scores for {n} anchors");
            for (var a = 0; a < n; a++)
            {
                var s = scores[a];
                if (!(s >= minScore))
                    continue;
                var cell = a / AnchorsPerCell;
                float cx = cell % gw * stride,
                    cy = cell / gw * stride;
                var box = new float[]
                {
                    cx - boxes[a * 4] * stride,
                    cy - boxes[a * 4 + 1] * stride,
                    cx + boxes[a * 4 + 2] * stride,
                    cy + boxes[a * 4 + 3] * stride,
                };
                var p = new float[10];
                for (var k = 0; k < 5; k++)
                {
                    p[k * 2] = cx + kps[a * 10 + k * 2] * stride;
                    p[k * 2 + 1] = cy + kps[a * 10 + k * 2 + 1] * stride;
                }
                cands.Add((s, box, p));
            }
        }
        // Stable: equal scores keep anchor order (stride 8 first).
        var order = cands
            .Select((c, i) => (c, i))
            .OrderByDescending(t => t.c.Score)
            .ThenBy(t => t.i)
            .Select(t => t.c)
            .ToList();
        var kept = new List<(float, float[], float[])>();
        var dropped = new bool[order.Count];
        for (var i = 0; i < order.Count; i++)
        {
            if (dropped[i])
                continue;
            kept.Add(order[i]);
            for (var j = i + 1; j < order.Count; j++)
            {
                if (!dropped[j] && Iou(order[i].Box, order[j].Box) > NmsIou)
                    dropped[j] = true;
            }
        }
        return kept;
    }

    /// <summary>IoU with insightface's "+1" pixel areas.</summary>
    public static float Iou(float[] a, float[] b)
    {
        var w = Math.Max(0, Math.Min(a[2], b[2]) - Math.Max(a[0], b[0]) + 1);
        var h = Math.Max(0, Math.Min(a[3], b[3]) - Math.Max(a[1], b[1]) + 1);
        var inter = w * h;
        var union = (a[2] - a[0] + 1) * (a[3] - a[1] + 1) + (b[2] - b[0] + 1) * (b[3] - b[1] + 1) - inter;
        return union <= 0 ? 0 : inter / union;
    }

    public void Dispose() { }
}
