using Blankend.Orleans.Ai;
using Blankend.Orleans.Grains.Ai.Matting;
using Blankend.Orleans.Grains.Ai.Runtime;
using Blankend.Orleans.Tests.Support;
using OpenCvSharp;
using Xunit;
using static Blankend.Orleans.Tests.Ai.MatteTestKit;

namespace Blankend.Orleans.Tests.Ai;

/// <summary>RVM with tests/testdata/models/rvm_test.onnx: pha = mean of src over RGB, r1o = r1i + 1,
/// r2o = r2i + downsample_ratio (scripts/make-test-models.py).</summary>
[Trait(TestKind.Name, TestKind.Unit)]
public sealed class MatteRvmTests
{
    [Fact]
    public void Rvm_replaces_selfie_segmentation_and_its_mask_is_the_models_pha()
    {
        var engine = Engine(rvm: RvmTestModel);
        using var step = new MatteStep(engine);
        Assert.Equal($"rvm: {Path.GetFullPath(RvmTestModel)}", step.Status);
        Assert.True(step.UsesRvm);

        using var img = Solid(64, 48, new Scalar(30, 60, 90)); // B, G, R -> pha = 60/255
        var model = engine.Runtime.Get(AiModelKind.Rvm, "cpu0")!;
        using var alpha = new Mat();
        using var rvm = new RvmState();
        RvmMatter.Run(model, img, rvm, 0.25f, alpha);
        Assert.Equal(new Size(64, 48), alpha.Size());
        Cv2.MinMaxLoc(alpha, out double min, out double max);
        Assert.InRange(min, 60 / 255.0 - 1e-5, 60 / 255.0 + 1e-5);
        Assert.InRange(max, 60 / 255.0 - 1e-5, 60 / 255.0 + 1e-5);

        // Channel order: a pure red frame (BGR 0,0,255) and a pure blue one give the same mean (1/3).
        using var red = Solid(8, 8, new Scalar(0, 0, 255));
        RvmMatter.Run(model, red, rvm, 0.25f, alpha);
        Assert.InRange(Cv2.Mean(alpha).Val0, 1 / 3.0 - 1e-5, 1 / 3.0 + 1e-5);

        // Through the step: out = m*frame + (1-m)*green with m = 60/255 (8-bit).
        var w = Frame(img, "cam", Settings(AiSteps.Matte));
        step.Run([w]);
        Assert.Null(w.Error);
        const int m = 60;
        var expected = new Vec3b(Mix(m, 30, 0), Mix(m, 60, 255), Mix(m, 90, 0));
        Assert.Equal(expected, Pixel(w.Image!, 10, 10));
        Assert.Equal("rvm", engine.StateFor("cam").MatteModel);
        Assert.Null(engine.StateFor("cam").MattePrev); // RVM is recurrent: no extra smoothing
        w.Image!.Dispose();
    }

    [Fact]
    public void Recurrent_states_are_fed_back_per_source_and_reset_on_size_change()
    {
        var engine = Engine(rvm: RvmTestModel, rvmRatio: 0.5);
        using var step = new MatteStep(engine);
        using var img = Solid(32, 32, new Scalar(100, 100, 100));
        var settings = Settings(AiSteps.Matte);
        for (var i = 0; i < 3; i++)
            Run(step, img, "a", settings);
        Run(step, img, "b", settings);

        var a = engine.StateFor("a").Rvm!;
        var b = engine.StateFor("b").Rvm!;
        Assert.Equal(3, a.States[0][0]); // r1 counts frames
        Assert.Equal(1.5f, a.States[1][0]); // r2 sums downsample_ratio
        Assert.Equal(0, a.States[2][0]);
        Assert.Equal(new long[] { 1, 1, 1, 1 }, a.Shapes[0]);
        Assert.Equal(3, a.Frames);
        Assert.Equal(1, b.States[0][0]);
        Assert.Equal(0.5f, b.States[1][0]);

        Run(step, img, "a", settings);
        Assert.Equal(4, engine.StateFor("a").Rvm!.States[0][0]);

        // A new frame size starts the states again.
        using var other = Solid(40, 30, new Scalar(100, 100, 100));
        Run(step, other, "a", settings);
        Assert.Equal(1, engine.StateFor("a").Rvm!.States[0][0]);
        Run(step, other, "a", settings);
        Assert.Equal(2, engine.StateFor("a").Rvm!.States[0][0]);

        // Hostile sizes through RVM too.
        using var tiny = Solid(1, 1, new Scalar(1, 2, 3));
        Run(step, tiny, "a", settings);
        Assert.Equal(1, engine.StateFor("a").Rvm!.States[0][0]);
        Assert.Equal(1, engine.StateFor("b").Rvm!.States[0][0]); // untouched
    }

    private static void Run(
        MatteStep step,
        Mat img,
        string source,
        Blankend.Orleans.Processing.EffectiveSettings settings
    )
    {
        var w = Frame(img, source, settings);
        step.Run([w]);
        Assert.Null(w.Error);
        w.Image!.Dispose();
    }

    private static byte Mix(int m, int f, int b) => (byte)Math.Round((m * f + (255 - m) * b) / 255.0);
}
