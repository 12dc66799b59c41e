using OpenCvSharp;

namespace Blankend.Orleans.Grains.Ai.Face.Insight;

/// <summary>
/// insightface's 5-point face alignment (<c>utils/face_align.py</c>, <c>estimate_norm</c>): the least-squares
/// similarity (rotation, uniform scale, translation; Umeyama 1991, as skimage's SimilarityTransform estimates it)
/// that maps the five keypoints (image-left eye, image-right eye, nose tip, image-left and image-right mouth
/// corner, in pixel index coordinates) onto the ArcFace 112x112 template, scaled for other crop sizes
/// (128: the template shifted 8 px right, as insightface does for inswapper). OpenCV's
/// EstimateAffinePartial2D is a robust (RANSAC) fit, not this one, so the closed form is written here.
/// </summary>
internal static class FaceAlign
{
    /// <summary>The ArcFace template (x, y) for a 112x112 crop.</summary>
    public static readonly double[] ArcFaceTemplate =
    [
        38.2946,
        51.6963,
        73.5318,
        51.5014,
        56.0252,
        71.7366,
        41.5493,
        92.3655,
        70.7299,
        92.2041,
    ];

    /// <summary>The template for a square crop of <paramref name="size"/> (a multiple of 112 or of 128).</summary>
    public static double[] Template(int size)
    {
        double ratio,
            dx;
        if (size % 112 == 0)
        {
            ratio = size / 112.0;
            dx = 0;
        }
        else if (size % 128 == 0)
        {
            ratio = size / 128.0;
            dx = 8.0 * ratio;
        }
        else
        {
            throw new ArgumentOutOfRangeException(nameof(size), size, "the crop size must be a multiple of 112 or 128");
        }
        var t = new double[10];
        for (var i = 0; i < 5; i++)
        {
            t[i * 2] = ArcFaceTemplate[i * 2] * ratio + dx;
            t[i * 2 + 1] = ArcFaceTemplate[i * 2 + 1] * ratio;
        }
        return t;
    }

    /// <summary>The 2x3 matrix (row-major) mapping the keypoints onto the template of a <paramref name="size"/>
    /// crop.</summary>
    public static double[] EstimateNorm(ReadOnlySpan<float> kps, int size) => Similarity(kps, Template(size));

    /// <summary>
    /// Least-squares similarity from <paramref name="src"/> to <paramref name="dst"/> (n x (x, y) each), as a
    /// row-major 2x3 matrix. In 2-D Umeyama's SVD solution has a closed form: with the centred points,
    /// a = Σ(xs·xd + ys·yd), b = Σ(xs·yd − ys·xd), the rotation angle is atan2(b, a) and the scale
    /// √(a² + b²) / Σ|src|², the same result as the SVD including its reflection guard (d = −1 when det &lt; 0).
    /// </summary>
    public static double[] Similarity(ReadOnlySpan<float> src, ReadOnlySpan<double> dst)
    {
        var n = Math.Min(src.Length, dst.Length) / 2;
        if (n < 2)
            throw new ArgumentException("at least two point pairs are needed", nameof(src));
        double msx = 0,
            msy = 0,
            mdx = 0,
            mdy = 0;
        for (var i = 0; i < n; i++)
        {
            msx += src[i * 2];
            msy += src[i * 2 + 1];
            mdx += dst[i * 2];
            mdy += dst[i * 2 + 1];
        }
        msx /= n;
        msy /= n;
        mdx /= n;
        mdy /= n;
        double a = 0,
            b = 0,
            var = 0;
        for (var i = 0; i < n; i++)
        {
            var xs = src[i * 2] - msx;
            var ys = src[i * 2 + 1] - msy;
            var xd = dst[i * 2] - mdx;
            var yd = dst[i * 2 + 1] - mdy;
            a += xs * xd + ys * yd;
            b += xs * yd - ys * xd;
            var += xs * xs + ys * ys;
        }
        if (var <= 1e-12)
            throw new ArgumentException("the source points coincide", nameof(src));
        var norm = Math.Sqrt(a * a + b * b);
        var scale = norm / var;
        var cos = norm > 0 ? a / norm : 1;
        var sin = norm > 0 ? b / norm : 0;
        var m00 = scale * cos;
        var m01 = -scale * sin;
        var m10 = scale * sin;
        var m11 = scale * cos;
        return [m00, m01, mdx - (m00 * msx + m01 * msy), m10, m11, mdy - (m10 * msx + m11 * msy)];
    }

    /// <summary>The crop of <paramref name="size"/> x <paramref name="size"/> the matrix maps the image onto
    /// (cv2.warpAffine, bilinear, black outside), into <paramref name="dst"/>.</summary>
    public static void Crop(Mat image, double[] m, int size, Mat dst)
    {
        using var mat = Matrix(m);
        Cv2.WarpAffine(
            image,
            dst,
            mat,
            new Size(size, size),
            InterpolationFlags.Linear,
            BorderTypes.Constant,
            Scalar.All(0)
        );
    }

    /// <summary>A 2x3 CV_64F Mat of a row-major matrix.</summary>
    public static Mat Matrix(double[] m)
    {
        var mat = new Mat(2, 3, MatType.CV_64FC1);
        for (var r = 0; r < 2; r++)
        for (var c = 0; c < 3; c++)
            mat.Set(r, c, m[r * 3 + c]);
        return mat;
    }

    /// <summary>The inverse of a 2x3 similarity/affine matrix (cv2.invertAffineTransform).</summary>
    public static double[] Invert(double[] m)
    {
        var det = m[0] * m[4] - m[1] * m[3];
        if (Math.Abs(det) < 1e-12)
            throw new ArgumentException("singular matrix", nameof(m));
        var i00 = m[4] / det;
        var i01 = -m[1] / det;
        var i10 = -m[3] / det;
        var i11 = m[0] / det;
        return [i00, i01, -(i00 * m[2] + i01 * m[5]), i10, i11, -(i10 * m[2] + i11 * m[5])];
    }

    /// <summary>MediaPipe face-mesh indices giving insightface's five points: the eye centres (mean of each
    /// eye's corners and lids), the nose tip, the mouth corners. Image-left first (the subject's right).</summary>
    private static readonly int[][] MeshPoints =
    [
        [33, 133, 159, 145],
        [263, 362, 386, 374],
        [1],
        [61],
        [291],
    ];

    /// <summary>The five keypoints of a face in pixel index coordinates: SCRFD's own five (a face with 5
    /// keypoints), else from the 468-point mesh; false when neither is there.</summary>
    public static bool FivePoints(Blankend.Orleans.Ai.AiFace face, Span<float> kps)
    {
        // AiFace coordinates are continuous (pixel k spans [k, k+1)); warpAffine works in index coordinates.
        if (face.Keypoints is { Length: 10 } k)
        {
            for (var i = 0; i < 10; i++)
                kps[i] = k[i] - 0.5f;
            return true;
        }
        if (face.Mesh is not { Length: >= 468 * 3 } mesh)
            return false;
        for (var p = 0; p < 5; p++)
        {
            float x = 0,
                y = 0;
            foreach (var idx in MeshPoints[p])
            {
                x += mesh[idx * 3];
                y += mesh[idx * 3 + 1];
            }
            kps[p * 2] = x / MeshPoints[p].Length - 0.5f;
            kps[p * 2 + 1] = y / MeshPoints[p].Length - 0.5f;
        }
        return true;
    }
}
