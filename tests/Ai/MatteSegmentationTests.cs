using Blankend.Orleans.Ai;
using Blankend.Orleans.Grains.Ai.Matting;
using Blankend.Orleans.Grains.Ai.Runtime;
using Blankend.Orleans.Tests.Support;
using OpenCvSharp;
using Xunit;
using static Blankend.Orleans.Tests.Ai.MatteTestKit;

namespace Blankend.Orleans.Tests.Ai;

[Trait(TestKind.Name, TestKind.Unit)]
public sealed class MatteSegmentationTests
{
    // Checked on the dumped mask and the image (BLANKEND_MATTE_DUMP=1): the face, the upper suit, the empty top-right.
    internal static readonly Rect Face = new(190, 90, 70, 70);
    internal static readonly Rect Suit = new(150, 300, 200, 150);
    internal static readonly Rect TopRight = new(432, 0, 80, 60);

    [Fact]
    public void Astronaut_mask_separates_person_from_background()
    {
        var engine = Engine();
        using var seg = new SelfieSegmenter(engine.Runtime);
        using var img = Astronaut();
        using var mask = seg.Segment(img, "cpu0", atFrameSize: true, out var kind);
        Assert.NotNull(mask);
        Assert.Equal(AiModelKind.Segmentation, kind);
        Assert.Equal(MatType.CV_32FC1, mask.Type());
        Assert.Equal(img.Size(), mask.Size());
        Dump("astronaut-mask", mask);
        Assert.True(Mean(mask, Face) > 0.8, $"face {Mean(mask, Face):F3}");
        Assert.True(Mean(mask, Suit) > 0.8, $"suit {Mean(mask, Suit):F3}");
        Assert.True(Mean(mask, TopRight) < 0.2, $"top-right {Mean(mask, TopRight):F3}");

        using var small = seg.Segment(img, "cpu0", atFrameSize: false, out _);
        Assert.Equal(new Size(256, 256), small!.Size());
    }

    [Fact]
    public void Landscape_model_for_16_9_frames_and_it_still_separates_the_person()
    {
        Assert.Equal(AiModelKind.SegmentationLandscape, SelfieSegmenter.ModelFor(1280, 720));
        Assert.Equal(AiModelKind.SegmentationLandscape, SelfieSegmenter.ModelFor(640, 360));
        Assert.Equal(AiModelKind.Segmentation, SelfieSegmenter.ModelFor(640, 480));
        Assert.Equal(AiModelKind.Segmentation, SelfieSegmenter.ModelFor(512, 512));
        Assert.Equal(AiModelKind.Segmentation, SelfieSegmenter.ModelFor(1, 0));

        var engine = Engine();
        using var seg = new SelfieSegmenter(engine.Runtime);
        using var img = AstronautLandscape();
        using var mask = seg.Segment(img, "cpu0", atFrameSize: true, out var kind);
        Assert.Equal(AiModelKind.SegmentationLandscape, kind);
        Dump("landscape-mask", mask!);
        // The astronaut is scaled by 720/512 and shifted right by 280.
        var face = new Rect(280 + 267, 127, 98, 98);
        var suit = new Rect(280 + 211, 422, 281, 211);
        var grey = new Rect(0, 0, 240, 720);
        var topRight = new Rect(280 + 607, 0, 112, 84);
        Assert.True(Mean(mask!, face) > 0.8, $"face {Mean(mask!, face):F3}");
        Assert.True(Mean(mask!, suit) > 0.8, $"suit {Mean(mask!, suit):F3}");
        Assert.True(Mean(mask!, grey) < 0.2, $"grey canvas {Mean(mask!, grey):F3}");
        Assert.True(Mean(mask!, topRight) < 0.2, $"top-right {Mean(mask!, topRight):F3}");

        // Through the step: the source state says which model ran, and the status names both.
        using var step = new MatteStep(engine);
        var w = Frame(img, "wide", Settings(AiSteps.Matte));
        step.Run([w]);
        Assert.Null(w.Error);
        Assert.Equal("selfie_segmentation_landscape", engine.StateFor("wide").MatteModel);
        Assert.Equal(new Size(256, 144), engine.StateFor("wide").MattePrev!.Size());
        Assert.Equal("selfie_segmentation (landscape for 16:9)", step.Status);
        Dump("landscape-composite", w.Image!);
        w.Image!.Dispose();
    }

    [Fact]
    public void Segmenter_is_thread_safe()
    {
        var engine = Engine();
        using var seg = new SelfieSegmenter(engine.Runtime);
        using var img = Astronaut();
        using var reference = seg.Segment(img, "cpu0", false, out _);
        var diffs = new double[4];
        Parallel.For(0, 4, i =>
        {
            for (var k = 0; k < 5; k++)
            {
                using var m = seg.Segment(img, "cpu0", false, out _);
                using var d = new Mat();
                Cv2.Absdiff(m!, reference!, d);
                Cv2.MinMaxLoc(d, out double _, out double max);
                diffs[i] = Math.Max(diffs[i], max);
            }
        });
        Assert.All(diffs, d => Assert.True(d < 1e-6, $"max diff {d}"));
    }
}
