using Blankend.Orleans.Ai;
using Blankend.Orleans.Grains.Ai.Runtime;
using Blankend.Orleans.Grains.Devices;
using OpenCvSharp;

namespace Blankend.Orleans.Grains.Ai.Face;

/// <summary>
/// MediaPipe BlazeFace (front 128 or back 256, models/LICENSE-NOTES.md) on one ONNX session: letterbox into the
/// square input (aspect kept, zero padding), RGB, pixel/127.5-1, run, decode the 896 anchors, keep
/// score &gt;= min score, MediaPipe weighted NMS (IoU &gt; 0.3 merged, boxes and keypoints averaged by score),
/// undo the letterbox. Thread-safe: each call rents its own buffers from a small pool.
/// </summary>
internal sealed class BlazeFaceDetector : IFaceDetector
{
    public const int Anchors = 896;
    private const int Grid16 = 16 * 16 * 2; // 512 anchors, 2 per cell
    private const float NmsIou = 0.3f;

    private readonly string _inputName;
    private readonly (string Name, long[] Shape)[] _outputs;
    private readonly float[] _anchors = new float[Anchors * 2];
    private readonly BufferPool<Buffers> _pool = new();
    private readonly float _minScore;
    private volatile bool _disposed;

    /// <exception cref="InvalidDataException">The model does not have BlazeFace's signature.</exception>
    /// <param name="maxBatch">Most images per inference call (<c>ai.max_batch</c>) when the model's batch is
    /// dynamic.</param>
    public BlazeFaceDetector(OnnxModel model, double minScore, int maxBatch = 1)
    {
        Model = model;
        _minScore = (float)minScore;
        var inputs = model.Session.InputMetadata;
        if (inputs.Count != 1)
            throw new InvalidDataException(
                $"BlazeFace has one input; {Path.GetFileName(model.Path)} has {inputs.Count}"
            );
        var (name, meta) = inputs.First();
        var d = meta.Dimensions;
        if (d.Length != 4 || d[3] != 3 || d[1] != d[2] || d[1] <= 0)
            throw new InvalidDataException(
                $"BlazeFace input is [1,S,S,3]; {Path.GetFileName(model.Path)} has [{string.Join(',', d)}]"
            );
        _inputName = name;
        InputSize = d[1];
        BatchCapacity = FaceOrtIo.BatchCapacity(d, maxBatch);

        // Outputs by shape: scores 16x16 [1,512,1], scores 8x8 [1,384,1], regressors [1,512,16], [1,384,16].
        var outs = new (string, long[])[4];
        var found = 0;
        foreach (var (oname, ometa) in model.Session.OutputMetadata)
        {
            var s = FaceOrtIo.Shape(ometa);
            if (s.Length != 3)
                continue;
            var slot = (s[1], s[2]) switch
            {
                (512, 1) => 0,
                (384, 1) => 1,
                (512, 16) => 2,
                (384, 16) => 3,
                _ => -1,
            };
            if (slot < 0 || outs[slot].Item1 is not null)
                continue;
            outs[slot] = (oname, s);
            found++;
        }
        if (found != 4)
            throw new InvalidDataException(
                $"BlazeFace outputs are [1,512,1], [1,384,1], [1,512,16], [1,384,16]; {Path.GetFileName(model.Path)} does not have them"
            );
        _outputs = outs;

        // Anchors: per grid, row-major (y, x, k); centre ((x+0.5)/G, (y+0.5)/G); unit size.
        var a = 0;
        foreach (var (g, per) in new[] { (16, 2), (8, 6) })
        {
            for (var y = 0; y < g; y++)
            for (var x = 0; x < g; x++)
            for (var k = 0; k < per; k++)
            {
                _anchors[a++] = (x + 0.5f) / g;
                _anchors[a++] = (y + 0.5f) / g;
            }
        }
    }

    public OnnxModel Model { get; }

    public string Describe => $"BlazeFace {InputSize}x{InputSize} ({Model.Provider})";

    /// <summary>Side of the square model input (128 or 256).</summary>
    public int InputSize { get; }

    /// <summary>Most images per inference call.</summary>
    public int BatchCapacity { get; }

    /// <summary>Faces in frame pixels (continuous coordinates: pixel k spans [k, k+1)), best score first.
    /// Any image type is accepted (gray and BGRA are converted); an empty image gives none.</summary>
    public AiFace[] Detect(Mat image) => DetectMany(new ReadOnlySpan<Mat>(ref image))[0];

    /// <summary>The faces of each image, in order, with one inference call per <see cref="BatchCapacity"/>
    /// images: each image is letterboxed straight into its slot of the batch tensor. The result of an image is
    /// the same as <see cref="Detect"/> on it alone (the model treats the images of a batch independently).</summary>
    public AiFace[][] DetectMany(ReadOnlySpan<Mat> images)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var result = new AiFace[images.Length][];
        var b = Rent();
        try
        {
            for (var start = 0; start < images.Length; start += BatchCapacity)
            {
                var count = Math.Min(BatchCapacity, images.Length - start);
                var slots = 0;
                for (var i = 0; i < count; i++)
                {
                    var bgr = FaceOrtIo.AsBgr(images[start + i], out var owned);
                    if (bgr is null)
                    {
                        result[start + i] = [];
                        continue;
                    }
                    b.Sources[slots] = (start + i, bgr, owned);
                    slots++;
                }
                if (slots == 0)
                    continue;
                // Each image into its own slot (own scratch), on all cores when there are several.
                try
                {
                    WorkerParallel.For(slots, k =>
                        b.Place[k] = (b.Sources[k].Index, Letterbox(b.Sources[k].Bgr, b, k))
                    );
                }
                finally
                {
                    for (var k = 0; k < slots; k++)
                        b.Sources[k].Owned?.Dispose();
                }
                b.Io.Run(Model, slots);
                for (var k = 0; k < slots; k++)
                {
                    var (index, (sx, sy, padX, padY)) = b.Place[k];
                    result[index] = Decode(b, k, sx, sy, padX, padY);
                }
            }
            return result;
        }
        finally
        {
            _pool.Return(b);
        }
    }

    private Buffers Rent() => _pool.Rent(this, static d => new Buffers(d));

    /// <summary>Letterboxes into the input tensor; returns the scale per axis and the padding (input pixels).</summary>
    private (float Sx, float Sy, int PadX, int PadY) Letterbox(Mat bgr, Buffers b, int slot)
    {
        var s = InputSize;
        var w = bgr.Cols;
        var h = bgr.Rows;
        var scale = (double)s / Math.Max(w, h);
        var nw = Math.Clamp((int)Math.Round(w * scale), 1, s);
        var nh = Math.Clamp((int)Math.Round(h * scale), 1, s);
        var padX = (s - nw) / 2;
        var padY = (s - nh) / 2;
        var square = b.Square[slot];
        var rgb = b.Rgb[slot];
        square.SetTo(Scalar.All(0));
        using (var roi = square.SubMat(padY, padY + nh, padX, padX + nw))
        {
            Cv2.Resize(
                bgr,
                roi,
                new Size(nw, nh),
                0,
                0,
                scale < 1 ? InterpolationFlags.Area : InterpolationFlags.Linear
            );
        }
        Cv2.CvtColor(square, rgb, ColorConversionCodes.BGR2RGB);
        rgb.ConvertTo(b.Io.InputMats[slot], MatType.CV_32FC3, 1 / 127.5, -1);
        return ((float)nw / w, (float)nh / h, padX, padY);
    }

    private AiFace[] Decode(Buffers b, int slot, float sx, float sy, int padX, int padY)
    {
        var s = (float)InputSize;
        var scores16 = b.Io.Output(0, slot);
        var scores8 = b.Io.Output(1, slot);
        var regs16 = b.Io.Output(2, slot);
        var regs8 = b.Io.Output(3, slot);
        var n = 0;
        for (var i = 0; i < Anchors; i++)
        {
            var logit = i < Grid16 ? scores16[i] : scores8[i - Grid16];
            var score = 1f / (1f + MathF.Exp(-Math.Clamp(logit, -100f, 100f)));
            if (score < _minScore || float.IsNaN(score))
                continue;
            var reg = i < Grid16 ? regs16.Slice(i * 16, 16) : regs8.Slice((i - Grid16) * 16, 16);
            var ax = _anchors[i * 2];
            var ay = _anchors[i * 2 + 1];
            var cx = ax + reg[0] / s;
            var cy = ay + reg[1] / s;
            var bw = reg[2] / s;
            var bh = reg[3] / s;
            var d = b.Dec.AsSpan(n * 16, 16);
            d[0] = cx - bw / 2;
            d[1] = cy - bh / 2;
            d[2] = cx + bw / 2;
            d[3] = cy + bh / 2;
            for (var k = 0; k < 6; k++)
            {
                d[4 + 2 * k] = ax + reg[4 + 2 * k] / s;
                d[5 + 2 * k] = ay + reg[5 + 2 * k] / s;
            }
            b.Keys[n] = -score;
            b.Order[n] = n;
            b.Scores[n] = score;
            n++;
        }
        if (n == 0)
            return [];
        Array.Sort(b.Keys, b.Order, 0, n);

        // MediaPipe weighted NMS: the best remaining detection absorbs every remaining one with IoU > 0.3;
        // box and keypoints are the score-weighted mean of the absorbed ones, the score stays the best's.
        Array.Clear(b.Used, 0, n);
        var faces = new List<AiFace>(2);
        Span<float> acc = stackalloc float[16];
        for (var oi = 0; oi < n; oi++)
        {
            var i = b.Order[oi];
            if (b.Used[i])
                continue;
            var top = b.Dec.AsSpan(i * 16, 16);
            acc.Clear();
            var total = 0f;
            for (var oj = oi; oj < n; oj++)
            {
                var j = b.Order[oj];
                if (b.Used[j])
                    continue;
                var other = b.Dec.AsSpan(j * 16, 16);
                if (j != i && Iou(top, other) <= NmsIou)
                    continue;
                b.Used[j] = true;
                var wgt = b.Scores[j];
                total += wgt;
                for (var k = 0; k < 16; k++)
                    acc[k] += other[k] * wgt;
            }
            var box = new float[4];
            var kp = new float[12];
            for (var k = 0; k < 16; k++)
            {
                var v = acc[k] / total * s;
                var px = k % 2 == 0 ? (v - padX) / sx : (v - padY) / sy;
                if (k < 4)
                    box[k] = px;
                else
                    kp[k - 4] = px;
            }
            faces.Add(new AiFace(b.Scores[i], box, kp, null));
        }
        return [.. faces];
    }

    private static float Iou(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        var ix = Math.Min(a[2], b[2]) - Math.Max(a[0], b[0]);
        var iy = Math.Min(a[3], b[3]) - Math.Max(a[1], b[1]);
        if (ix <= 0 || iy <= 0)
            return 0;
        var inter = ix * iy;
        var union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
        return union <= 0 ? 0 : inter / union;
    }

    public void Dispose()
    {
        _disposed = true;
        _pool.Dispose();
    }

    private sealed class Buffers : IDisposable
    {
        public readonly FaceOrtIo Io;
        public readonly Mat[] Square;
        public readonly Mat[] Rgb;
        public readonly float[] Dec = new float[Anchors * 16];
        public readonly float[] Keys = new float[Anchors];
        public readonly int[] Order = new int[Anchors];
        public readonly float[] Scores = new float[Anchors];
        public readonly bool[] Used = new bool[Anchors];
        public readonly (int Index, (float Sx, float Sy, int PadX, int PadY) Letterbox)[] Place;
        public readonly (int Index, Mat Bgr, Mat? Owned)[] Sources;

        public Buffers(BlazeFaceDetector d)
        {
            Io = new FaceOrtIo(d._inputName, d.InputSize, d.InputSize, d._outputs, d.BatchCapacity);
            Place = new (int, (float, float, int, int))[d.BatchCapacity];
            Sources = new (int, Mat, Mat?)[d.BatchCapacity];
            Square = new Mat[d.BatchCapacity];
            Rgb = new Mat[d.BatchCapacity];
            for (var i = 0; i < d.BatchCapacity; i++)
            {
                Square[i] = new Mat(d.InputSize, d.InputSize, MatType.CV_8UC3);
                Rgb[i] = new Mat(d.InputSize, d.InputSize, MatType.CV_8UC3);
            }
        }

        public void Dispose()
        {
            Io.Dispose();
            foreach (var m in Square)
                m.Dispose();
            foreach (var m in Rgb)
                m.Dispose();
        }
    }
}
