using Blankend.Orleans.Ai;
using Blankend.Orleans.Grains.Ai.Runtime;
using OpenCvSharp;

namespace Blankend.Orleans.Grains.Ai.Face;

/// <summary>
/// The reference face of one <see cref="AiAsset"/> version, analysed once: a BGR crop around the face, its 468
/// mesh points in crop pixels (OpenCV index coordinates) and a Delaunay triangulation of them (Subdiv2D),
/// reused for every target face. <see cref="Error"/> says why a reference cannot be used (shown by the API).
/// </summary>
internal sealed partial class FaceReference
{
    internal FaceReference(
        long version,
        string? error,
        Mat? image = null,
        float[]? points = null,
        int[]? triangles = null,
        AiFace? face = null
    )
    {
        Version = version;
        Error = error;
        Image = image;
        Points = points ?? [];
        Triangles = triangles ?? [];
        Face = face;
    }

    public long Version { get; }

    /// <summary>Null when usable; else why not ("no face found in the reference image", ...).</summary>
    public string? Error { get; }

    public bool Usable => Error is null;

    /// <summary>The reference face as detected, in the uploaded image's pixels (mesh included).</summary>
    public AiFace? Face { get; }

    public int TriangleCount => Triangles.Length / 3;

    internal Mat? Image { get; }

    /// <summary>468 x (x, y) in <see cref="Image"/> index coordinates.</summary>
    internal float[] Points { get; }

    /// <summary>Vertex indices, 3 per triangle.</summary>
    internal int[] Triangles { get; }
}

/// <summary>
/// Mesh-warp face swap: each target face's 468 landmarks receive the reference face, triangle by triangle (one
/// affine map per triangle of the reference's Delaunay triangulation, rasterised into a remap table, then one
/// bilinear <c>Remap</c>), colour-matched in Lab (mean/std inside the face), and blended with
/// <c>SeamlessClone</c> over the face hull; a face touching the frame border is alpha-blended with a feathered
/// mask instead. With an inswapper <c>swap_model</c> and an ArcFace <c>arcface_model</c> that load, faces go
/// through inswapper instead (FaceSwapper.Insight.cs); <see cref="SwapStatus"/> says which engine and why.
/// Thread-safe.
/// </summary>
internal sealed partial class FaceSwapper : IDisposable
{
    /// <summary>Margin in pixels around the face hull for the blend region.</summary>
    private const int Margin = 4;

    /// <summary>Largest side of the region SeamlessClone solves at full resolution (larger ones: see Clone).</summary>
    private const int CloneSide = 64;

    private readonly FaceModels _models;
    private readonly Lock _refGate = new();
    private readonly BufferPool<SwapBuffers> _pool = new();
    private volatile FaceReference? _reference;

    public FaceSwapper(FaceModels models)
    {
        _models = models;
    }

    /// <summary>How faces are swapped and why (about <c>swap_model</c>, <c>arcface_model</c>); inspects the models
    /// once.</summary>
    public string SwapStatus => Engine.Reason;

    /// <summary>The reference in use: "none", "v3: ready (...)", or "v3: &lt;error&gt;".</summary>
    public string ReferenceStatus =>
        _reference switch
        {
            null => "no reference face analysed yet",
            { Error: { } e } r => $"reference v{r.Version}: {e}",
            { } r =>
                $"reference v{r.Version}: ready ({r.TriangleCount} triangles, score {r.Face?.Score:0.00}{EmbeddingNote(r)})",
        };

    /// <summary>Swap status and reference status in one line, for the status API.</summary>
    public string Status => $"{SwapStatus}; {ReferenceStatus}";

    /// <summary>The analysed reference of an asset version, computed on the first call for that version
    /// (decode, detect, mesh, triangulate) and cached. Never throws: a bad image gives <see
    /// cref="FaceReference.Error"/>.</summary>
    public FaceReference Reference(AiAsset asset, string device = "cpu0")
    {
        var r = _reference;
        if (r is not null && r.Version == asset.Version)
            return r;
        lock (_refGate)
        {
            r = _reference;
            if (r is not null && r.Version == asset.Version)
                return r;
            // Older references are left to the GC (a worker thread may still be warping from one).
            r = Reused(asset) ?? Analyse(asset, device);
            _reference = r;
            return r;
        }
    }

    /// <summary>Analyses an image without caching it (the upload check: the cached reference stays in use).</summary>
    public FaceReference Inspect(AiAsset asset, string device = "cpu0") => Remember(asset, Analyse(asset, device));

    private FaceReference Analyse(AiAsset asset, string device)
    {
        var v = asset.Version;
        if (asset.Image is not { Length: > 0 })
            return new FaceReference(v, "reference image is empty");
        var detector = _models.FaceDetector(device);
        if (detector is null)
            return new FaceReference(v, $"face detector unavailable: {_models.DetectorUnavailable}");
        var mesh = _models.Mesh(device);
        if (mesh is null)
            return new FaceReference(v, $"face mesh unavailable: {_models.MeshUnavailable}");
        Mat image;
        try
        {
            image = Cv2.ImDecode(asset.Image, ImreadModes.Color);
        }
        catch (OpenCVException e)
        {
            return new FaceReference(v, $"reference image does not decode: {e.Message}");
        }
        using (image)
        {
            if (image.Empty())
                return new FaceReference(v, "reference image does not decode (JPEG or PNG expected)");
            var faces = detector.Detect(image);
            if (faces.Length == 0)
                return new FaceReference(v, "no face found in the reference image");
            var face = faces[0];
            var m = mesh.Run(image, face);
            if (m is null || !m.Present)
                return new FaceReference(
                    v,
                    $"no face found in the reference image (mesh presence {m?.Presence ?? 0:0.00})"
                );

            // Keep only a crop around the face (an upload may be 4000x3000).
            float minX = float.MaxValue,
                minY = float.MaxValue,
                maxX = float.MinValue,
                maxY = float.MinValue;
            for (var i = 0; i < FaceMeshResult.Count; i++)
            {
                var x = m.Points[i * 3];
                var y = m.Points[i * 3 + 1];
                minX = Math.Min(minX, x);
                maxX = Math.Max(maxX, x);
                minY = Math.Min(minY, y);
                maxY = Math.Max(maxY, y);
            }
            var pad = Math.Max(maxX - minX, maxY - minY) * 0.1f + 2;
            var x0 = Math.Clamp((int)MathF.Floor(minX - pad), 0, image.Cols - 1);
            var y0 = Math.Clamp((int)MathF.Floor(minY - pad), 0, image.Rows - 1);
            var x1 = Math.Clamp((int)MathF.Ceiling(maxX + pad), x0 + 1, image.Cols);
            var y1 = Math.Clamp((int)MathF.Ceiling(maxY + pad), y0 + 1, image.Rows);
            var points = new float[FaceMeshResult.Count * 2];
            for (var i = 0; i < FaceMeshResult.Count; i++)
            {
                points[i * 2] = m.Points[i * 3] - 0.5f - x0;
                points[i * 2 + 1] = m.Points[i * 3 + 1] - 0.5f - y0;
            }
            var triangles = Triangulate(points);
            if (triangles.Length < 3)
                return new FaceReference(v, "reference face mesh could not be triangulated");
            Mat crop;
            using (var roi = image.SubMat(y0, y1, x0, x1))
                crop = roi.Clone();
            var reference = new FaceReference(v, null, crop, points, triangles, face with { Mesh = m.Points });
            Embed(reference, image, device);
            return reference;
        }
    }

    /// <summary>Delaunay triangulation of the points (Subdiv2D), as vertex indices.</summary>
    internal static int[] Triangulate(float[] points)
    {
        var n = points.Length / 2;
        float minX = float.MaxValue,
            minY = float.MaxValue,
            maxX = float.MinValue,
            maxY = float.MinValue;
        for (var i = 0; i < n; i++)
        {
            minX = Math.Min(minX, points[i * 2]);
            maxX = Math.Max(maxX, points[i * 2]);
            minY = Math.Min(minY, points[i * 2 + 1]);
            maxY = Math.Max(maxY, points[i * 2 + 1]);
        }
        var rect = new Rect(
            (int)MathF.Floor(minX) - 1,
            (int)MathF.Floor(minY) - 1,
            (int)MathF.Ceiling(maxX - minX) + 3,
            (int)MathF.Ceiling(maxY - minY) + 3
        );
        var index = new Dictionary<(float, float), int>(n);
        using var subdiv = new Subdiv2D(rect);
        for (var i = 0; i < n; i++)
        {
            var p = new Point2f(points[i * 2], points[i * 2 + 1]);
            if (index.TryAdd((p.X, p.Y), i))
                subdiv.Insert(p);
        }
        var list = new List<int>(n * 6);
        foreach (var t in subdiv.GetTriangleList())
        {
            if (
                !index.TryGetValue((t.Item0, t.Item1), out var a)
                || !index.TryGetValue((t.Item2, t.Item3), out var b)
                || !index.TryGetValue((t.Item4, t.Item5), out var c)
            )
                continue; // a vertex of Subdiv2D's outer frame
            list.Add(a);
            list.Add(b);
            list.Add(c);
        }
        return [.. list];
    }

    /// <summary>Puts the reference face onto one target face of a BGR 8-bit frame, in place. False (frame
    /// unchanged) when the target is unusable (no mesh, off-frame, degenerate) or the frame is not BGR.</summary>
    public bool Swap(Mat frame, float[] targetMesh, FaceReference reference)
    {
        if (!reference.Usable || reference.Image is null || frame.Empty() || frame.Type() != MatType.CV_8UC3)
            return false;
        if (targetMesh.Length < FaceMeshResult.Count * 3)
            return false;
        var n = FaceMeshResult.Count;
        var b = _pool.Rent(static () => new SwapBuffers());
        try
        {
            // Target points in frame index coordinates; the hull's bounding box (+ margin) is the work region.
            float minX = float.MaxValue,
                minY = float.MaxValue,
                maxX = float.MinValue,
                maxY = float.MinValue;
            var dst = b.Dst;
            for (var i = 0; i < n; i++)
            {
                var x = targetMesh[i * 3] - 0.5f;
                var y = targetMesh[i * 3 + 1] - 0.5f;
                if (!float.IsFinite(x) || !float.IsFinite(y))
                    return false;
                dst[i * 2] = x;
                dst[i * 2 + 1] = y;
                minX = Math.Min(minX, x);
                maxX = Math.Max(maxX, x);
                minY = Math.Min(minY, y);
                maxY = Math.Max(maxY, y);
            }
            var fx0 = (int)MathF.Floor(minX) - Margin;
            var fy0 = (int)MathF.Floor(minY) - Margin;
            var fx1 = (int)MathF.Ceiling(maxX) + Margin + 1;
            var fy1 = (int)MathF.Ceiling(maxY) + Margin + 1;
            var clipped = fx0 < 0 || fy0 < 0 || fx1 > frame.Cols || fy1 > frame.Rows;
            var rx0 = Math.Max(0, fx0);
            var ry0 = Math.Max(0, fy0);
            var rx1 = Math.Min(frame.Cols, fx1);
            var ry1 = Math.Min(frame.Rows, fy1);
            var w = rx1 - rx0;
            var h = ry1 - ry0;
            if (w < 8 || h < 8 || (long)w * h > 16_000_000)
                return false;

            var filled = Rasterise(b, reference, rx0, ry0, w, h);
            if (filled == 0)
                return false;

            using var mapX = b.MapX.SubMat(0, h, 0, w);
            using var mapY = b.MapY.SubMat(0, h, 0, w);
            using var mask = b.Mask.SubMat(0, h, 0, w);
            using var target = frame.SubMat(ry0, ry1, rx0, rx1);
            b.Warped.Create(h, w, MatType.CV_8UC3);
            Cv2.Remap(reference.Image, b.Warped, mapX, mapY, InterpolationFlags.Linear, BorderTypes.Replicate);
            // Keep the seam off the outermost mesh triangles (they hug the jaw and hairline).
            Cv2.Erode(mask, b.Inner, null, iterations: Math.Max(1, Math.Min(w, h) / 40));
            if (Cv2.CountNonZero(b.Inner) < 16)
                return false;

            ColourMatch(b, target);

            if (clipped)
                Feather(b, target, w, h, Math.Max(3, (Math.Min(w, h) / 12) | 1));
            else
                Clone(b, target, w, h);
            return true;
        }
        finally
        {
            _pool.Return(b);
        }
    }

    /// <summary>Fills the remap tables and the mask of the work region from the triangles; returns the pixels
    /// set.</summary>
    private static int Rasterise(SwapBuffers b, FaceReference reference, int rx0, int ry0, int w, int h)
    {
        b.Ensure(h, w);
        var stride = b.MapX.Cols;
        var mx = b.MapX.AsSpan<float>();
        var my = b.MapY.AsSpan<float>();
        var mk = b.Mask.AsSpan<byte>();
        for (var y = 0; y < h; y++)
        {
            mx.Slice(y * stride, w).Fill(-1);
            my.Slice(y * stride, w).Fill(-1);
            mk.Slice(y * stride, w).Clear();
        }
        var src = reference.Points;
        var dst = b.Dst;
        var tri = reference.Triangles;
        var filled = 0;
        const float eps = 1e-4f;
        for (var t = 0; t < tri.Length; t += 3)
        {
            int a = tri[t],
                c1 = tri[t + 1],
                c2 = tri[t + 2];
            float d0x = dst[a * 2] - rx0,
                d0y = dst[a * 2 + 1] - ry0;
            float e1x = dst[c1 * 2] - rx0 - d0x,
                e1y = dst[c1 * 2 + 1] - ry0 - d0y;
            float e2x = dst[c2 * 2] - rx0 - d0x,
                e2y = dst[c2 * 2 + 1] - ry0 - d0y;
            var det = e1x * e2y - e1y * e2x;
            if (MathF.Abs(det) < 1e-3f)
                continue;
            var inv = 1f / det;
            float s0x = src[a * 2],
                s0y = src[a * 2 + 1];
            float f1x = src[c1 * 2] - s0x,
                f1y = src[c1 * 2 + 1] - s0y;
            float f2x = src[c2 * 2] - s0x,
                f2y = src[c2 * 2 + 1] - s0y;
            var xs = Math.Max(0, (int)MathF.Ceiling(Math.Min(d0x, Math.Min(d0x + e1x, d0x + e2x))));
            var xe = Math.Min(w - 1, (int)MathF.Floor(Math.Max(d0x, Math.Max(d0x + e1x, d0x + e2x))));
            var ys = Math.Max(0, (int)MathF.Ceiling(Math.Min(d0y, Math.Min(d0y + e1y, d0y + e2y))));
            var ye = Math.Min(h - 1, (int)MathF.Floor(Math.Max(d0y, Math.Max(d0y + e1y, d0y + e2y))));
            for (var y = ys; y <= ye; y++)
            {
                var qy = y - d0y;
                var row = y * stride;
                for (var x = xs; x <= xe; x++)
                {
                    var qx = x - d0x;
                    var u = (qx * e2y - qy * e2x) * inv;
                    var v = (e1x * qy - e1y * qx) * inv;
                    if (u < -eps || v < -eps || u + v > 1 + eps)
                        continue;
                    mx[row + x] = s0x + u * f1x + v * f2x;
                    my[row + x] = s0y + u * f1y + v * f2y;
                    if (mk[row + x] == 0)
                        filled++;
                    mk[row + x] = 255;
                }
            }
        }
        return filled;
    }

    /// <summary>Moves the warped face's Lab mean and spread inside the face to the target's.</summary>
    private static void ColourMatch(SwapBuffers b, Mat target)
    {
        Cv2.CvtColor(b.Warped, b.LabSrc, ColorConversionCodes.BGR2Lab);
        Cv2.CvtColor(target, b.LabDst, ColorConversionCodes.BGR2Lab);
        Cv2.MeanStdDev(b.LabSrc, out var ms, out var ss, b.Inner);
        Cv2.MeanStdDev(b.LabDst, out var md, out var sd, b.Inner);
        for (var c = 0; c < 3; c++)
        {
            var k = Math.Clamp(sd[c] / Math.Max(ss[c], 1), 0.5, 2.0);
            b.Affine[c * 4 + c] = k;
            b.Affine[c * 4 + 3] = md[c] - k * ms[c];
        }
        using var m = Mat.FromPixelData(3, 4, MatType.CV_64FC1, b.Affine);
        Cv2.Transform(b.LabSrc, b.LabSrc, m);
        Cv2.CvtColor(b.LabSrc, b.Warped, ColorConversionCodes.Lab2BGR);
    }

    /// <summary>
    /// Poisson blend (SeamlessClone, normal clone) of the warped face into the target. OpenCV's solver costs
    /// ~0.1 ms per 100 px² here (7-8 ms for a 100x100 region), so a region wider than <see cref="CloneSide"/> is
    /// cloned at that size and only the correction (clone - source, a smooth membrane) is upsampled and added
    /// to the full-resolution warped face, which is then composited with a lightly feathered mask.
    /// </summary>
    private static void Clone(SwapBuffers b, Mat target, int w, int h)
    {
        var longSide = Math.Max(w, h);
        if (longSide <= CloneSide)
        {
            var r = Cv2.BoundingRect(b.Inner);
            Cv2.SeamlessClone(
                b.Warped,
                target,
                b.Inner,
                new Point(r.X + r.Width / 2, r.Y + r.Height / 2),
                b.Blend,
                SeamlessCloneFlags.NormalClone
            );
            b.Blend.CopyTo(target);
            return;
        }
        var f = (double)CloneSide / longSide;
        var small = new Size(Math.Max(8, (int)Math.Round(w * f)), Math.Max(8, (int)Math.Round(h * f)));
        Cv2.Resize(b.Warped, b.WarpedS, small, 0, 0, InterpolationFlags.Area);
        Cv2.Resize(target, b.TargetS, small, 0, 0, InterpolationFlags.Area);
        Cv2.Resize(b.Inner, b.MaskS, small, 0, 0, InterpolationFlags.Area);
        Cv2.Threshold(b.MaskS, b.MaskS, 200, 255, ThresholdTypes.Binary);
        var rs = Cv2.BoundingRect(b.MaskS);
        if (rs.Width < 3 || rs.Height < 3)
        {
            Feather(b, target, w, h, Math.Max(3, (Math.Min(w, h) / 12) | 1));
            return;
        }
        Cv2.SeamlessClone(
            b.WarpedS,
            b.TargetS,
            b.MaskS,
            new Point(rs.X + rs.Width / 2, rs.Y + rs.Height / 2),
            b.BlendS,
            SeamlessCloneFlags.NormalClone
        );
        // Correction at low resolution: inside the mask the clone's membrane, outside it target - source, which
        // is the membrane's boundary value, so the upsampled correction meets the target at the mask edge.
        b.BlendS.ConvertTo(b.CorrS, MatType.CV_16SC3);
        b.WarpedS.ConvertTo(b.TmpS, MatType.CV_16SC3);
        Cv2.Subtract(b.CorrS, b.TmpS, b.CorrS);
        Cv2.Resize(b.CorrS, b.Corr, new Size(w, h), 0, 0, InterpolationFlags.Linear);
        b.Warped.ConvertTo(b.Tmp, MatType.CV_16SC3);
        Cv2.Add(b.Tmp, b.Corr, b.Tmp);
        b.Tmp.ConvertTo(b.Warped, MatType.CV_8UC3);
        Feather(b, target, w, h, Math.Max(3, (Math.Min(w, h) / 24) | 1));
    }

    /// <summary>Alpha blend with a blurred mask (also the path for faces cut by the frame border, where
    /// SeamlessClone cannot run).</summary>
    private static void Feather(SwapBuffers b, Mat target, int w, int h, int kernel)
    {
        // Erode by half the kernel so the feathered edge stays inside the face hull.
        Cv2.Erode(b.Inner, b.Alpha8, null, iterations: Math.Max(1, kernel / 4));
        b.Alpha8.ConvertTo(b.Alpha, MatType.CV_32FC1, 1 / 255.0);
        Cv2.GaussianBlur(b.Alpha, b.Alpha, new Size(kernel, kernel), 0);
        Cv2.Subtract(Scalar.All(1), b.Alpha, b.Beta);
        Cv2.BlendLinear(b.Warped, target, b.Alpha, b.Beta, b.Blend);
        b.Blend.CopyTo(target);
    }

    public void Dispose()
    {
        _pool.Dispose();
        _reference?.Image?.Dispose();
        _reference = null;
    }

    private sealed class SwapBuffers : IDisposable
    {
        public readonly float[] Dst = new float[FaceMeshResult.Count * 2];
        public readonly double[] Affine = new double[12];
        public Mat MapX = new();
        public Mat MapY = new();
        public Mat Mask = new();
        public readonly Mat Inner = new();
        public readonly Mat Warped = new();
        public readonly Mat LabSrc = new();
        public readonly Mat LabDst = new();
        public readonly Mat Blend = new();
        public readonly Mat Alpha = new();
        public readonly Mat Beta = new();
        public readonly Mat Alpha8 = new();
        public readonly Mat WarpedS = new();
        public readonly Mat TargetS = new();
        public readonly Mat MaskS = new();
        public readonly Mat BlendS = new();
        public readonly Mat CorrS = new();
        public readonly Mat TmpS = new();
        public readonly Mat Corr = new();
        public readonly Mat Tmp = new();

        /// <summary>Grows the remap tables and mask (continuous, reused across frames) to at least h x w.</summary>
        public void Ensure(int h, int w)
        {
            if (MapX.Rows >= h && MapX.Cols >= w)
                return;
            var rows = Math.Max(h, MapX.Rows);
            var cols = Math.Max(w, MapX.Cols);
            MapX.Dispose();
            MapY.Dispose();
            Mask.Dispose();
            MapX = new Mat(rows, cols, MatType.CV_32FC1);
            MapY = new Mat(rows, cols, MatType.CV_32FC1);
            Mask = new Mat(rows, cols, MatType.CV_8UC1);
        }

        public void Dispose()
        {
            foreach (
                var m in new[]
                {
                    MapX,
                    MapY,
                    Mask,
                    Inner,
                    Warped,
                    LabSrc,
                    LabDst,
                    Blend,
                    Alpha,
                    Beta,
                    Alpha8,
                    WarpedS,
                    TargetS,
                    MaskS,
                    BlendS,
                    CorrS,
                    TmpS,
                    Corr,
                    Tmp,
                }
            )
                m.Dispose();
        }
    }
}
