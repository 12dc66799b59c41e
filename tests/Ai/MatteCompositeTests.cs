using Blankend.Orleans.Ai;
using Blankend.Orleans.Grains.Ai;
using Blankend.Orleans.Grains.Ai.Matting;
using Blankend.Orleans.Tests.Support;
using OpenCvSharp;
using Xunit;
using static Blankend.Orleans.Tests.Ai.MatteTestKit;

namespace Blankend.Orleans.Tests.Ai;

[Trait(TestKind.Name, TestKind.Unit)]
public sealed class MatteCompositeTests
{
    [Fact]
    public void Composite_over_default_green_keeps_the_face_and_greens_the_background()
    {
        var engine = Engine();
        using var step = new MatteStep(engine);
        using var img = Astronaut();
        var w = Frame(img, "cam", Settings(AiSteps.Matte));
        step.Run([w]);
        Assert.Null(w.Error);
        using var outImg = w.Image!;
        Dump("composite-green", outImg);
        var tr = Pixel(outImg, 500, 10);
        Assert.True(tr.Item0 <= 10 && tr.Item1 >= 245 && tr.Item2 <= 10, $"top-right {tr}");
        var tl = Pixel(outImg, 300, 5);
        Assert.True(tl.Item0 <= 10 && tl.Item1 >= 245 && tl.Item2 <= 10, $"top, right of the head {tl}");
        Assert.True(
            MeanAbsDiff(outImg, img, MatteSegmentationTests.Face) < 3,
            $"face changed by {MeanAbsDiff(outImg, img, MatteSegmentationTests.Face):F2}"
        );
        Assert.Contains("matte", w.Notes!);
        var (runs, frames, ms, _, skips) = engine.Step("matte").Snapshot();
        Assert.Equal(1, runs);
        Assert.Equal(1, frames);
        Assert.True(ms > 0);
        Assert.Empty(skips);
    }

    [Fact]
    public void Named_color_background()
    {
        var engine = Engine();
        using var step = new MatteStep(engine);
        using var img = Astronaut();
        var w = Frame(img, "cam", Settings(AiSteps.Matte, new MatteBackground("color", "#3366CC", 0, 0)));
        step.Run([w]);
        var tr = Pixel(w.Image!, 500, 10);
        Assert.True(Near(tr, 0xCC, 0x66, 0x33, 6), $"top-right {tr}");
        w.Image!.Dispose();
    }

    [Fact]
    public void Image_background_is_decoded_once_per_version_and_resized_once_per_size()
    {
        var engine = Engine();
        using var step = new MatteStep(engine);
        using var img = Astronaut();
        engine.SetAsset(new AiAsset(AiAssetKind.Background, 1, Png(Solid(100, 50, new Scalar(255, 0, 0)))));
        var settings = Settings(AiSteps.Matte, new MatteBackground("image", "#00FF00", 0, 1));
        for (var i = 0; i < 3; i++)
        {
            var w = Frame(img, "cam", settings);
            step.Run([w]);
            Assert.Null(w.Error);
            var tr = Pixel(w.Image!, 500, 10);
            Assert.True(Near(tr, 255, 0, 0, 8), $"top-right {tr} (blue image expected)");
            Assert.True(MeanAbsDiff(w.Image!, img, MatteSegmentationTests.Face) < 3);
            w.Image!.Dispose();
        }
        Assert.Equal(1, step.Compositor.Decodes);
        Assert.Equal(1, step.Compositor.Resizes);

        // A second frame size: one more resize, no decode.
        using var half = new Mat();
        Cv2.Resize(img, half, new Size(256, 256));
        var w2 = Frame(half, "cam2", settings);
        step.Run([w2]);
        Assert.True(Near(Pixel(w2.Image!, 250, 5), 255, 0, 0, 8));
        Assert.Equal(1, step.Compositor.Decodes);
        Assert.Equal(2, step.Compositor.Resizes);
        w2.Image!.Dispose();

        // A new version (red) replaces it.
        engine.SetAsset(new AiAsset(AiAssetKind.Background, 2, Png(Solid(64, 64, new Scalar(0, 0, 255)))));
        var w3 = Frame(img, "cam", settings with { Background = new MatteBackground("image", "#00FF00", 0, 2) });
        step.Run([w3]);
        Assert.True(Near(Pixel(w3.Image!, 500, 10), 0, 0, 255, 8), $"top-right {Pixel(w3.Image!, 500, 10)}");
        Assert.Equal(2, step.Compositor.Decodes);
        w3.Image!.Dispose();

        // No image uploaded: the color, never an exception.
        engine.ClearAsset(AiAssetKind.Background);
        var w4 = Frame(img, "cam", settings with { Background = new MatteBackground("image", "#FF0000", 0, 0) });
        step.Run([w4]);
        Assert.Null(w4.Error);
        Assert.True(Near(Pixel(w4.Image!, 500, 10), 0, 0, 255, 8));
        Assert.Contains("matte: color (no background image)", w4.Notes!);
        w4.Image!.Dispose();
    }

    [Fact]
    public void Blur_background_blurs_the_frame_behind_the_person()
    {
        var engine = Engine();
        using var step = new MatteStep(engine);
        using var img = Astronaut();
        // Paint a fine checkerboard on the top-right background so that the blur is measurable there.
        for (var y = 0; y < 60; y++)
        for (var x = 432; x < 512; x++)
            img.Set(y, x, ((x / 2 + y / 2) & 1) == 0 ? new Vec3b(40, 40, 40) : new Vec3b(220, 220, 220));
        var w = Frame(img, "cam", Settings(AiSteps.Matte, new MatteBackground("blur", "#00FF00", 21, 0)));
        step.Run([w]);
        Assert.Null(w.Error);
        Dump("composite-blur", w.Image!);
        var region = new Rect(440, 8, 60, 40);
        Cv2.MeanStdDev(new Mat(img, region), out var meanIn, out var sdIn);
        Cv2.MeanStdDev(new Mat(w.Image!, region), out var meanOut, out var sdOut);
        Assert.True(sdIn.Val0 > 60, $"input stddev {sdIn.Val0}");
        Assert.True(sdOut.Val0 < 15, $"blurred stddev {sdOut.Val0}");
        Assert.True(Math.Abs(meanOut.Val0 - meanIn.Val0) < 20, $"mean {meanIn.Val0} -> {meanOut.Val0}");
        Assert.True(MeanAbsDiff(w.Image!, img, MatteSegmentationTests.Face) < 3);
        w.Image!.Dispose();
    }

    [Fact]
    public void Blend_is_exact_fixed_point()
    {
        var rnd = new Random(7);
        var n = 1000;
        var f = new byte[n];
        var m = new byte[n];
        var b = new byte[n];
        rnd.NextBytes(f);
        rnd.NextBytes(m);
        rnd.NextBytes(b);
        m[0] = 0;
        m[1] = 255;
        var expected = new byte[n];
        for (var i = 0; i < n; i++)
            expected[i] = (byte)Math.Round((m[i] * f[i] + (255 - m[i]) * b[i]) / 255.0);
        Compositor.Blend(f, m, b);
        Assert.Equal(expected, f);
    }

    [Fact]
    public void Color_parsing()
    {
        Assert.Equal(new Scalar(0, 255, 0), Compositor.ParseColor("#00FF00"));
        Assert.Equal(new Scalar(0xCC, 0x66, 0x33), Compositor.ParseColor("#3366cc"));
        Assert.Equal(new Scalar(0x56, 0x34, 0x12), Compositor.ParseColor("123456"));
        Assert.Equal(new Scalar(0, 255, 0), Compositor.ParseColor("red"));
        Assert.Equal(new Scalar(0, 255, 0), Compositor.ParseColor(null));
        Assert.Equal(new Scalar(0, 255, 0), Compositor.ParseColor("#12345"));
    }

    [Fact]
    public void Compositor_full_and_empty_masks()
    {
        var comp = new Compositor(() => null);
        using var scratch = new MatteScratch();
        using var frame = Astronaut();
        using var orig = frame.Clone();
        using var ones = new Mat(frame.Size(), MatType.CV_8UC1, Scalar.All(255));
        comp.Composite(frame, ones, MatteBackground.Green, scratch);
        Assert.Equal(0, MeanAbsDiff(frame, orig, new Rect(0, 0, 512, 512)));
        using var zeros = new Mat(frame.Size(), MatType.CV_8UC1, Scalar.All(0));
        Assert.Equal("color", comp.Composite(frame, zeros, new MatteBackground("color", "#102030", 0, 0), scratch));
        Assert.Equal(new Scalar(0x30, 0x20, 0x10, 0), Cv2.Mean(frame));
        Assert.Throws<ArgumentException>(() =>
            comp.Composite(frame, new Mat(10, 10, MatType.CV_8UC1), MatteBackground.Green, scratch)
        );
    }

    [Fact]
    public void Smoothstep_table()
    {
        var lut = MatteStep.SmoothstepLut(0.25f, 0.75f);
        Assert.Equal(0, lut[0]);
        Assert.Equal(0, lut[63]);
        Assert.InRange(lut[128], 126, 130);
        Assert.Equal(255, lut[192]);
        Assert.Equal(255, lut[255]);
        var engine = Engine();
        using var step = new MatteStep(engine, (0.3f, 0.7f));
        using var img = Astronaut();
        var w = Frame(img, "cam", Settings(AiSteps.Matte));
        step.Run([w]);
        Assert.Null(w.Error);
        Assert.True(Near(Pixel(w.Image!, 500, 10), 0, 255, 0, 2));
        w.Image!.Dispose();
    }

    internal static double MeanAbsDiff(Mat a, Mat b, Rect r)
    {
        using var ra = new Mat(a, r);
        using var rb = new Mat(b, r);
        using var d = new Mat();
        Cv2.Absdiff(ra, rb, d);
        var s = Cv2.Mean(d);
        return (s.Val0 + s.Val1 + s.Val2) / 3;
    }

    internal static bool Near(Vec3b p, int b, int g, int r, int tol) =>
        Math.Abs(p.Item0 - b) <= tol && Math.Abs(p.Item1 - g) <= tol && Math.Abs(p.Item2 - r) <= tol;

    private static byte[] Png(Mat m)
    {
        using (m)
        {
            Cv2.ImEncode(".png", m, out var bytes);
            return bytes;
        }
    }
}
