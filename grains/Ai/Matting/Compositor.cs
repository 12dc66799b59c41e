using System.Collections.Concurrent;
using System.Globalization;
using System.Numerics;
using Blankend.Orleans.Ai;
using OpenCvSharp;

namespace Blankend.Orleans.Grains.Ai.Matting;

/// <summary>
/// <c>out = m*frame + (1-m)*background</c>, in place on the BGR frame, with an 8-bit mask at frame size
/// (0..255). The blend is a fixed-point SIMD loop (<see cref="Vector{T}"/>, exact rounding of x/255).
/// Backgrounds: "color" (#RRGGBB; green #00FF00 when unparsable), "image" (the uploaded background, decoded
/// once per version and resized once per (version, size); the color when there is none or it does not
/// decode), "blur" (Gaussian blur of the frame, radius <c>BlurRadius</c>; radii &gt;= 8 blur a quarter-size
/// copy and scale it back, which looks the same at a fraction of the cost). Thread-safe: the cached
/// backgrounds are read-only once published; per-call scratch comes from the caller's <see cref="MatteScratch"/>.
/// </summary>
internal sealed class Compositor(Func<AiAsset?> backgroundImage)
{
    /// <summary>Largest blur radius honoured (pixels).</summary>
    public const int MaxBlurRadius = 200;

    private const int MaxCached = 16;

    private readonly ConcurrentDictionary<(int Bgr, int W, int H), Mat> _colors = new();
    private readonly ConcurrentDictionary<(long Version, int W, int H), Mat> _images = new();
    private readonly Lock _decodeGate = new();
    private (long Version, Mat? Image) _decoded = (-1, null);

    public Compositor(AiEngine engine)
        : this(() => engine.Asset(AiAssetKind.Background)) { }

    /// <summary>Times the uploaded background was decoded (once per version), for tests and status.</summary>
    public int Decodes => _decodes;

    /// <summary>Times a decoded background was resized to a frame size (once per version and size).</summary>
    public int Resizes => _resizes;

    private int _decodes,
        _resizes;

    /// <summary>Composites the frame over <paramref name="background"/> with <paramref name="mask8"/> (CV_8UC1,
    /// frame size, 255 = keep the frame).</summary>
    /// <returns>What it composited over: "color", "image", "blur", or "color (no background image)".</returns>
    public string Composite(Mat frame, Mat mask8, MatteBackground background, MatteScratch scratch)
    {
        ArgumentNullException.ThrowIfNull(frame);
        ArgumentNullException.ThrowIfNull(mask8);
        ArgumentNullException.ThrowIfNull(background);
        ArgumentNullException.ThrowIfNull(scratch);
        if (frame.Type() != MatType.CV_8UC3 || mask8.Type() != MatType.CV_8UC1 || frame.Size() != mask8.Size())
            throw new ArgumentException(
                $"expected a CV_8UC3 frame and a CV_8UC1 mask of its size, got {frame.Type()} {frame.Size()} and {mask8.Type()} {mask8.Size()}"
            );
        Mat bg;
        string used;
        var kind = background.Kind?.Trim() ?? "color";
        if (kind.Equals("blur", StringComparison.OrdinalIgnoreCase))
        {
            Blur(frame, background.BlurRadius, scratch);
            bg = scratch.Blur;
            used = "blur";
        }
        else if (
            kind.Equals("image", StringComparison.OrdinalIgnoreCase) && ImageFor(frame.Width, frame.Height) is { } img
        )
        {
            bg = img;
            used = "image";
        }
        else
        {
            bg = ColorFor(ParseColor(background.Color), frame.Width, frame.Height);
            used = kind.Equals("image", StringComparison.OrdinalIgnoreCase) ? "color (no background image)" : "color";
        }
        Cv2.CvtColor(mask8, scratch.Mask3, ColorConversionCodes.GRAY2BGR);
        if (frame.IsContinuous())
        {
            Blend(frame.AsSpan<byte>(), scratch.Mask3.AsSpan<byte>(), bg.AsSpan<byte>());
        }
        else
        {
            using var copy = frame.Clone();
            Blend(copy.AsSpan<byte>(), scratch.Mask3.AsSpan<byte>(), bg.AsSpan<byte>());
            copy.CopyTo(frame);
        }
        return used;
    }

    /// <summary>Same, with a float mask (CV_32FC1, 0..1) of any size: scaled to 8 bits and resized
    /// bilinearly.</summary>
    public string CompositeFloat(Mat frame, Mat maskF, MatteBackground background, MatteScratch scratch)
    {
        ArgumentNullException.ThrowIfNull(frame);
        ArgumentNullException.ThrowIfNull(maskF);
        ArgumentNullException.ThrowIfNull(scratch);
        maskF.ConvertTo(scratch.MaskSmall8, MatType.CV_8U, 255);
        Cv2.Resize(scratch.MaskSmall8, scratch.Mask8, frame.Size(), 0, 0, InterpolationFlags.Linear);
        return Composite(frame, scratch.Mask8, background, scratch);
    }

    /// <summary><c>f = (m*f + (255-m)*b) / 255</c> per byte, rounded; the three spans have the same length.</summary>
    public static void Blend(Span<byte> frame, ReadOnlySpan<byte> mask, ReadOnlySpan<byte> background)
    {
        var n = frame.Length;
        if (mask.Length < n || background.Length < n)
            throw new ArgumentException("mask and background must be as long as the frame");
        var i = 0;
        if (Vector.IsHardwareAccelerated && n >= Vector<byte>.Count)
        {
            var c255 = new Vector<ushort>(255);
            var c128 = new Vector<ushort>(128);
            for (; i <= n - Vector<byte>.Count; i += Vector<byte>.Count)
            {
                Vector.Widen(new Vector<byte>(frame[i..]), out var fl, out var fh);
                Vector.Widen(new Vector<byte>(mask[i..]), out var ml, out var mh);
                Vector.Widen(new Vector<byte>(background[i..]), out var bl, out var bh);
                var xl = ml * fl + (c255 - ml) * bl + c128;
                var xh = mh * fh + (c255 - mh) * bh + c128;
                xl = Vector.ShiftRightLogical(xl + Vector.ShiftRightLogical(xl, 8), 8);
                xh = Vector.ShiftRightLogical(xh + Vector.ShiftRightLogical(xh, 8), 8);
                Vector.Narrow(xl, xh).CopyTo(frame[i..]);
            }
        }
        for (; i < n; i++)
        {
            var m = mask[i];
            var x = m * frame[i] + (255 - m) * background[i] + 128;
            frame[i] = (byte)((x + (x >> 8)) >> 8);
        }
    }

    /// <summary>Parses "#RRGGBB" (or "RRGGBB") to a BGR scalar; green (0,255,0) when it is not that.</summary>
    public static Scalar ParseColor(string? color)
    {
        var s = color.AsSpan().Trim();
        if (s.StartsWith("#"))
            s = s[1..];
        if (s.Length == 6 && int.TryParse(s, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var rgb))
            return new Scalar(rgb & 0xFF, (rgb >> 8) & 0xFF, (rgb >> 16) & 0xFF);
        return new Scalar(0, 255, 0);
    }

    private Mat ColorFor(Scalar bgr, int w, int h)
    {
        var key = ((int)bgr.Val0 | ((int)bgr.Val1 << 8) | ((int)bgr.Val2 << 16), w, h);
        if (_colors.TryGetValue(key, out var m))
            return m;
        // Dropped entries are not disposed: another thread may still read one; the finalizer frees them.
        if (_colors.Count >= MaxCached)
            _colors.Clear();
        return _colors.GetOrAdd(key, static (_, a) => new Mat(a.h, a.w, MatType.CV_8UC3, a.bgr), (w, h, bgr));
    }

    /// <summary>The uploaded background at this frame size, or null when there is none or it does not decode.</summary>
    private Mat? ImageFor(int w, int h)
    {
        var asset = backgroundImage();
        if (asset is null)
            return null;
        if (_images.TryGetValue((asset.Version, w, h), out var ready))
            return ready;
        var decoded = Decoded(asset);
        if (decoded is null)
            return null;
        if (_images.Count >= MaxCached)
            _images.Clear();
        return _images.GetOrAdd((asset.Version, w, h), _ =>
        {
            var r = new Mat();
            Cv2.Resize(
                decoded,
                r,
                new Size(w, h),
                0,
                0,
                decoded.Width * decoded.Height > w * h ? InterpolationFlags.Area : InterpolationFlags.Linear
            );
            Interlocked.Increment(ref _resizes);
            return r;
        });
    }

    private Mat? Decoded(AiAsset asset)
    {
        lock (_decodeGate)
        {
            if (_decoded.Version == asset.Version)
                return _decoded.Image;
            Mat? img = null;
            try
            {
                img = Cv2.ImDecode(asset.Image, ImreadModes.Color);
                if (img.Empty())
                {
                    img.Dispose();
                    img = null;
                }
            }
            catch (OpenCVException)
            {
                img?.Dispose();
                img = null;
            }
            Interlocked.Increment(ref _decodes);
            // The previous image is not disposed: a resize of it may be running on another thread.
            _decoded = (asset.Version, img);
            foreach (var k in _images.Keys)
            {
                if (k.Version != asset.Version)
                    _images.TryRemove(k, out _);
            }
            return img;
        }
    }

    private static void Blur(Mat frame, int radius, MatteScratch scratch)
    {
        var r = Math.Clamp(radius, 0, MaxBlurRadius);
        if (r == 0)
        {
            frame.CopyTo(scratch.Blur);
            return;
        }
        const int f = 4;
        if (r >= 8 && frame.Width >= 4 * f && frame.Height >= 4 * f)
        {
            Cv2.Resize(
                frame,
                scratch.BlurSmall,
                new Size(frame.Width / f, frame.Height / f),
                0,
                0,
                InterpolationFlags.Area
            );
            var k = 2 * (r / f) + 1;
            Cv2.GaussianBlur(scratch.BlurSmall, scratch.BlurSmall, new Size(k, k), 0);
            Cv2.Resize(scratch.BlurSmall, scratch.Blur, frame.Size(), 0, 0, InterpolationFlags.Linear);
            return;
        }
        Cv2.GaussianBlur(frame, scratch.Blur, new Size(2 * r + 1, 2 * r + 1), 0);
    }
}

/// <summary>Reusable images of the matte and depth steps for one source (kept in its <see cref="AiSourceState"/>
/// and used under its lock): OpenCV reallocates one only when the frame size changes.</summary>
internal sealed class MatteScratch : IDisposable
{
    /// <summary>Mask at model resolution, CV_32FC1.</summary>
    public Mat MaskSmall { get; } = new();

    /// <summary>Mask at model resolution, CV_8UC1.</summary>
    public Mat MaskSmall8 { get; } = new();

    /// <summary>Mask at frame size, CV_8UC1.</summary>
    public Mat Mask8 { get; } = new();

    /// <summary>Mask at frame size, CV_32FC1 (RVM's pha).</summary>
    public Mat MaskF { get; } = new();
    public Mat Mask3 { get; } = new();
    public Mat Blur { get; } = new();
    public Mat BlurSmall { get; } = new();

    /// <summary>Depth at model resolution, CV_8UC1 (0 far .. 255 near).</summary>
    public Mat Depth8 { get; } = new();
    public Mat DepthColor { get; } = new();

    public void Dispose()
    {
        MaskSmall.Dispose();
        MaskSmall8.Dispose();
        Mask8.Dispose();
        MaskF.Dispose();
        Mask3.Dispose();
        Blur.Dispose();
        BlurSmall.Dispose();
        Depth8.Dispose();
        DepthColor.Dispose();
    }
}
