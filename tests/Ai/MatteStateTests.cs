using Blankend.Orleans.Ai;
using Blankend.Orleans.Grains.Ai.Matting;
using Blankend.Orleans.Tests.Support;
using OpenCvSharp;
using Xunit;
using static Blankend.Orleans.Tests.Ai.MatteTestKit;

namespace Blankend.Orleans.Tests.Ai;

[Trait(TestKind.Name, TestKind.Unit)]
public sealed class MatteStateTests
{
    [Fact]
    public void Second_frame_mask_is_the_weighted_mix_of_new_and_previous()
    {
        const double a = 0.6;
        var engine = Engine(smoothing: a);
        using var step = new MatteStep(engine);
        using var frameA = Astronaut();
        using var frameB = new Mat();
        Cv2.Flip(frameA, frameB, FlipMode.Y); // a changed frame: the person moves

        using var seg = new SelfieSegmenter(engine.Runtime);
        using var mA = seg.Segment(frameA, "cpu0", false, out _)!;
        using var mB = seg.Segment(frameB, "cpu0", false, out _)!;

        var settings = Settings(AiSteps.Matte);
        var w1 = Frame(frameA, "s", settings, 1);
        step.Run([w1]);
        var state = engine.StateFor("s");
        Assert.True(MaxDiff(state.MattePrev!, mA) < 1e-6, "first frame: the mask itself");

        var w2 = Frame(frameB, "s", settings, 2);
        step.Run([w2]);
        using var expected = new Mat();
        Cv2.AddWeighted(mB, a, mA, 1 - a, 0, expected);
        Assert.True(MaxDiff(state.MattePrev!, expected) < 1e-5, $"max diff {MaxDiff(state.MattePrev!, expected)}");
        Assert.True(MaxDiff(state.MattePrev!, mB) > 0.3, "the mix differs from the new mask");
        Assert.Equal(2, state.MatteFrames);

        // Another source is independent: its first frame is its own mask.
        var w3 = Frame(frameB, "other", settings, 1);
        step.Run([w3]);
        Assert.True(MaxDiff(engine.StateFor("other").MattePrev!, mB) < 1e-6);
        foreach (var w in new[] { w1, w2, w3 })
            w.Image!.Dispose();
    }

    [Fact]
    public void Frame_size_change_resets_the_state()
    {
        var engine = Engine(smoothing: 0.5);
        using var step = new MatteStep(engine);
        using var big = Astronaut();
        using var small = new Mat();
        Cv2.Resize(big, small, new Size(320, 320));
        Cv2.Flip(small, small, FlipMode.Y);
        using var seg = new SelfieSegmenter(engine.Runtime);
        using var mSmall = seg.Segment(small, "cpu0", false, out _)!;

        var settings = Settings(AiSteps.Matte);
        var w1 = Frame(big, "s", settings, 1);
        step.Run([w1]);
        var state = engine.StateFor("s");
        var resets = state.MatteResets;
        var w2 = Frame(small, "s", settings, 2);
        step.Run([w2]);
        Assert.Null(w2.Error);
        Assert.Equal(resets + 1, state.MatteResets);
        Assert.Equal(320, state.MatteWidth);
        Assert.True(MaxDiff(state.MattePrev!, mSmall) < 1e-6, "after a size change the previous mask is not mixed in");
        Assert.Equal(1, state.MatteFrames);

        // 16:9 mid-stream: the model changes with the size, no exception.
        using var wide = AstronautLandscape();
        var w3 = Frame(wide, "s", settings, 3);
        step.Run([w3]);
        Assert.Null(w3.Error);
        Assert.Equal("selfie_segmentation_landscape", state.MatteModel);
        Assert.Equal(new Size(256, 144), state.MattePrev!.Size());
        foreach (var w in new[] { w1, w2, w3 })
            w.Image!.Dispose();
    }

    [Fact]
    public void Hostile_sizes_do_not_throw()
    {
        var engine = Engine(smoothing: 0.6);
        using var step = new MatteStep(engine);
        var settings = Settings(AiSteps.Matte, new MatteBackground("blur", "#00FF00", 21, 0));
        using var tiny = Solid(1, 1, new Scalar(10, 20, 30));
        using var oneRow = Solid(7, 1, new Scalar(10, 20, 30));
        using var huge = new Mat(3000, 4000, MatType.CV_8UC3);
        Cv2.Randu(huge, Scalar.All(0), Scalar.All(255));
        foreach (var (img, i) in new[] { tiny, oneRow, huge, tiny, huge }.Select((m, i) => (m, i)))
        {
            var w = Frame(img, "hostile", settings, i);
            step.Run([w]);
            Assert.Null(w.Error);
            Assert.Equal(img.Size(), w.Image!.Size());
            Assert.Equal(MatType.CV_8UC3, w.Image.Type());
            w.Image.Dispose();
        }
        Assert.Equal(5, engine.Step("matte").Snapshot().Frames);

        // Not a BGR image: skipped with a reason, unchanged.
        using var gray = new Mat(10, 10, MatType.CV_8UC1, Scalar.All(7));
        var g = Frame(gray, "hostile", settings, 9);
        step.Run([g]);
        Assert.Null(g.Error);
        Assert.Equal(7, g.Image!.At<byte>(0, 0));
        Assert.Equal(1, engine.Step("matte").Snapshot().Skips["not a BGR image"]);
        g.Image.Dispose();

        // A frame without an image (decode failed) is left alone.
        var none = Frame(tiny, "hostile", settings, 10);
        none.Image!.Dispose();
        none.Image = null;
        step.Run([none]);
        Assert.Null(none.Error);
    }

    [Fact]
    public void Missing_models_skip_with_the_reason_and_leave_the_frame_unchanged()
    {
        var engine = Engine(modelsDir: "/nonexistent-models");
        using var step = new MatteStep(engine);
        using var img = Astronaut();
        var w = Frame(img, "s", Settings(AiSteps.Matte));
        step.Run([w]);
        Assert.Null(w.Error);
        Assert.Equal(0, MatteCompositeTests.MeanAbsDiff(w.Image!, img, new Rect(0, 0, 512, 512)));
        Assert.Contains("matte: model unavailable", w.Notes!);
        Assert.Equal(1, engine.Step("matte").Snapshot().Skips["model unavailable"]);
        Assert.StartsWith(
            "unavailable: model file not found: /nonexistent-models/",
            step.Status,
            StringComparison.Ordinal
        );
        w.Image!.Dispose();

        var rvmMissing = Engine(rvm: "/nonexistent/rvm.onnx");
        using var step2 = new MatteStep(rvmMissing);
        var w2 = Frame(img, "s", Settings(AiSteps.Matte));
        step2.Run([w2]);
        Assert.Null(w2.Error);
        Assert.Equal(0, MatteCompositeTests.MeanAbsDiff(w2.Image!, img, new Rect(0, 0, 512, 512)));
        Assert.Equal(1, rvmMissing.Step("matte").Snapshot().Skips["model unavailable"]);
        Assert.Equal("unavailable: model file not found: /nonexistent/rvm.onnx", step2.Status);
        w2.Image!.Dispose();
    }

    [Fact]
    public void Applies_only_with_the_matte_step()
    {
        using var step = new MatteStep(Engine());
        Assert.Equal("matte", step.Name);
        Assert.True(step.AppliesTo(Settings(AiSteps.Matte)));
        Assert.True(step.AppliesTo(Settings(AiSteps.Matte | AiSteps.Detect)));
        Assert.False(step.AppliesTo(Settings(AiSteps.Depth)));
        Assert.False(step.AppliesTo(Settings(AiSteps.Matte) with { SimpleForward = true }));
    }

    internal static double MaxDiff(Mat a, Mat b)
    {
        using var d = new Mat();
        Cv2.Absdiff(a, b, d);
        Cv2.MinMaxLoc(d, out double _, out double max);
        return max;
    }
}
