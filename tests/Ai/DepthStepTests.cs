using Blankend.Orleans.Ai;
using Blankend.Orleans.Grains.Ai;
using Blankend.Orleans.Grains.Ai.Depth;
using Blankend.Orleans.Grains.Ai.Matting;
using Blankend.Orleans.Grains.Ai.Runtime;
using Blankend.Orleans.Grains.Devices;
using Blankend.Orleans.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using OpenCvSharp;
using Xunit;
using static Blankend.Orleans.Tests.Ai.MatteTestKit;

namespace Blankend.Orleans.Tests.Ai;

/// <summary>Depth with tests/testdata/models/depth_test.onnx: depth = the normalised R channel of its
/// [1,3,256,256] input, so a red half is near (255) and a black half far (0).</summary>
[Trait(TestKind.Name, TestKind.Unit)]
public sealed class DepthStepTests
{
    private static Mat RedLeftBlackRight()
    {
        var m = Solid(512, 256, new Scalar(0, 0, 0));
        using (var left = new Mat(m, new Rect(0, 0, 256, 256)))
            left.SetTo(new Scalar(0, 0, 255));
        return m;
    }

    private static Vec3b Inferno(byte v)
    {
        using var g = new Mat(1, 1, MatType.CV_8UC1, Scalar.All(v));
        using var c = new Mat();
        Cv2.ApplyColorMap(g, c, ColormapTypes.Inferno);
        return c.At<Vec3b>(0, 0);
    }

    [Fact]
    public void Estimator_normalises_the_models_output_to_0_255()
    {
        var engine = Engine(depth: DepthTestModel);
        using var est = new DepthEstimator(engine.Runtime);
        var model = engine.Runtime.Get(AiModelKind.Depth, "cpu0")!;
        using var img = RedLeftBlackRight();
        using var d8 = new Mat();
        est.Estimate(model, img, d8);
        Assert.Equal(new Size(256, 256), d8.Size());
        Assert.Equal(255, d8.At<byte>(128, 20));
        Assert.Equal(0, d8.At<byte>(128, 230));

        // A flat input gives a flat (all 0) map, not a division by zero.
        using var flat = Solid(100, 100, new Scalar(9, 9, 9));
        est.Estimate(model, flat, d8);
        Cv2.MinMaxLoc(d8, out double min, out double max);
        Assert.Equal(0, min);
        Assert.Equal(0, max);
        Assert.Equal(3, DepthEstimator.Mean.Length);
        Assert.Equal(0.229f, DepthEstimator.Std[0]);
    }

    [Fact]
    public void Input_is_rgb_normalised_with_the_imagenet_mean_and_std_and_dynamic_sides_become_256()
    {
        // depth_rg_test.onnx: dynamic [1,3,H,W] in, [1,1,H,W] out = normalised R + normalised G.
        var engine = Engine(depth: TestEnv.TestData(Path.Combine("models", "depth_rg_test.onnx")));
        using var est = new DepthEstimator(engine.Runtime);
        var model = engine.Runtime.Get(AiModelKind.Depth, "cpu0")!;
        using var img = Solid(300, 100, new Scalar(0, 0, 0));
        using (var a = new Mat(img, new Rect(0, 0, 100, 100)))
            a.SetTo(new Scalar(0, 0, 255)); // R only
        using (var b = new Mat(img, new Rect(100, 0, 100, 100)))
            b.SetTo(new Scalar(0, 255, 0)); // G only
        using var d8 = new Mat();
        est.Estimate(model, img, d8);
        Assert.Equal(new Size(DepthEstimator.DefaultSide, DepthEstimator.DefaultSide), d8.Size());
        float N(int c, float v) => (v - DepthEstimator.Mean[c]) / DepthEstimator.Std[c];
        var rOnly = N(0, 1) + N(1, 0);
        var gOnly = N(0, 0) + N(1, 1);
        var black = N(0, 0) + N(1, 0);
        var expectedA = (rOnly - black) / (gOnly - black) * 255; // ~250.4; 255 if the std were ignored
        Assert.InRange(d8.At<byte>(128, 42), expectedA - 1, expectedA + 1);
        Assert.Equal(255, d8.At<byte>(128, 128));
        Assert.Equal(0, d8.At<byte>(128, 213));
    }

    [Fact]
    public void Colormap_mode_replaces_the_frame_with_the_inferno_depth()
    {
        var engine = Engine(depth: DepthTestModel);
        using var step = new DepthStep(engine);
        Assert.Equal($"midas: {Path.GetFullPath(DepthTestModel)}", step.Status);
        using var img = RedLeftBlackRight();
        var w = Frame(img, "d", Settings(AiSteps.Depth));
        step.Run([w]);
        Assert.Null(w.Error);
        Assert.Equal(img.Size(), w.Image!.Size());
        Assert.Equal(Inferno(255), Pixel(w.Image!, 60, 128)); // near: bright yellow
        Assert.Equal(Inferno(0), Pixel(w.Image!, 450, 128)); // far: black-purple
        Assert.Contains("depth", w.Notes!);
        Assert.Equal(1, engine.Step("depth").Snapshot().Frames);
        w.Image!.Dispose();
    }

    [Fact]
    public void Cut_mode_keeps_the_near_region_and_composites_the_rest_over_the_background()
    {
        var engine = Engine(depth: DepthTestModel);
        using var step = new DepthStep(engine);
        using var img = RedLeftBlackRight();
        var w = Frame(img, "d", Settings(AiSteps.Depth, depthMode: "cut"));
        step.Run([w]);
        Assert.Null(w.Error);
        Assert.Equal(new Vec3b(0, 0, 255), Pixel(w.Image!, 60, 128)); // near red kept
        Assert.Equal(new Vec3b(0, 255, 0), Pixel(w.Image!, 450, 128)); // far over green
        w.Image!.Dispose();

        var w2 = Frame(img, "d", Settings(AiSteps.Depth, new MatteBackground("color", "#0000FF", 0, 0), "cut"));
        step.Run([w2]);
        Assert.Equal(new Vec3b(255, 0, 0), Pixel(w2.Image!, 450, 128));
        w2.Image!.Dispose();
    }

    [Fact]
    public void Without_a_depth_model_frames_pass_unchanged_and_are_counted_skipped()
    {
        var engine = Engine();
        using var step = new DepthStep(engine);
        Assert.Equal("unavailable: no model configured (DEPTH_MODEL / ai:depth_model)", step.Status);
        using var img = RedLeftBlackRight();
        var w = Frame(img, "d", Settings(AiSteps.Depth));
        step.Run([w]);
        Assert.Null(w.Error);
        Assert.Equal(0, MatteCompositeTests.MeanAbsDiff(w.Image!, img, new Rect(0, 0, 512, 256)));
        Assert.Contains("depth: model unavailable", w.Notes!);
        Assert.Equal(1, engine.Step("depth").Snapshot().Skips["model unavailable"]);
        Assert.True(step.AppliesTo(Settings(AiSteps.Depth)));
        Assert.False(step.AppliesTo(Settings(AiSteps.Matte)));
        w.Image!.Dispose();

        var missing = Engine(depth: "/nonexistent/midas.onnx");
        using var step2 = new DepthStep(missing);
        Assert.Equal("unavailable: model file not found: /nonexistent/midas.onnx", step2.Status);
    }

    [Fact]
    public void Depth_hostile_sizes_do_not_throw()
    {
        var engine = Engine(depth: DepthTestModel);
        using var step = new DepthStep(engine);
        using var tiny = Solid(1, 1, new Scalar(1, 2, 3));
        using var huge = new Mat(3000, 4000, MatType.CV_8UC3);
        Cv2.Randu(huge, Scalar.All(0), Scalar.All(255));
        foreach (var mode in new[] { "colormap", "cut", "unknown" })
        {
            foreach (var img in new[] { tiny, huge })
            {
                var w = Frame(img, "d", Settings(AiSteps.Depth, depthMode: mode));
                step.Run([w]);
                Assert.Null(w.Error);
                Assert.Equal(img.Size(), w.Image!.Size());
                w.Image.Dispose();
            }
        }
    }

    [Fact]
    public void Service_registration_adds_matte_then_depth()
    {
        var services = new ServiceCollection();
        var engine = Engine();
        services.AddSingleton(engine);
        services.AddBlankendMatteSteps();
        using var sp = services.BuildServiceProvider();
        var steps = sp.GetServices<IFrameStep>().ToArray();
        Assert.Equal(["matte", "depth"], steps.Select(s => s.Name));
        Assert.Same(sp.GetRequiredService<MatteStep>(), steps[0]);
        Assert.Same(sp.GetRequiredService<DepthStep>(), steps[1]);
        Assert.IsType<AiEngine>(engine);
    }
}
