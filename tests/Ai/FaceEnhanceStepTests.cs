using Blankend.Orleans.Ai;
using Blankend.Orleans.Grains.Ai;
using Blankend.Orleans.Grains.Ai.Face;
using Blankend.Orleans.Grains.Devices;
using Blankend.Orleans.Tests.Support;
using OpenCvSharp;
using Xunit;
using Xunit.Abstractions;

namespace Blankend.Orleans.Tests.Ai;

/// <summary>The optional GFPGAN enhance step on a generated model with GFPGAN 1.4's signature.</summary>
[Trait(TestKind.Name, TestKind.Unit)]
public sealed class FaceEnhanceStepTests(ITestOutputHelper output)
{
    private static void RunAll(AiEngine engine, FrameWork w)
    {
        new FaceDetectStep(engine).Run([w]);
        new FaceMeshStep(engine).Run([w]);
        new FaceEnhanceStep(engine).Run([w]);
    }

    [Fact]
    public void Enhance_restores_each_face_through_the_512_crop_and_leaves_the_rest_of_the_frame()
    {
        using var env = new FaceEnv(configure: o => o.EnhancerModel = InsightFaceModelTests.Model("gfpgan_test.onnx"));
        using var input = FaceEnv.Astronaut();
        var w = FaceEnv.Frame(input, AiSteps.Enhance);
        Assert.Equal(AiSteps.Enhance | AiSteps.Mesh | AiSteps.Detect, AiStepNames.WithPrerequisites(AiSteps.Enhance));
        RunAll(env.Engine, w);
        Assert.False(w.Failed, w.Error);
        var (runs, _, ms, _, skips) = env.Engine.Step("enhance").Snapshot();
        Assert.Equal(1, runs);
        Assert.Empty(skips);
        Assert.StartsWith("cpu0: GFPGAN 512 gfpgan_test.onnx", FaceModels.For(env.Engine).Status["enhance"]);
        // The test model inverts the face; the bottom of the picture is far from the face crop.
        var b = w.Faces![0].Box;
        var centre = new Rect((int)((b[0] + b[2]) / 2) - 15, (int)((b[1] + b[3]) / 2) - 15, 30, 30);
        var inside = FaceEnv.MeanAbsDiff(input, w.Image!, centre);
        // A second frame: the first one includes the session's first run.
        var w2 = FaceEnv.Frame(input, AiSteps.Enhance, seq: 2);
        RunAll(env.Engine, w2);
        output.WriteLine(
            $"face centre diff {inside:0.0}; enhance step (test model) first frame {ms:0.0} ms, second {env.Engine.Step("enhance").Snapshot().LastMs:0.0} ms"
        );
        Assert.True(inside > 40, $"face centre diff {inside:0.0}");
        using var bottom = input.SubMat(470, 512, 0, 512);
        using var bottomOut = w.Image!.SubMat(470, 512, 0, 512);
        Assert.True(FaceEnv.Same(bottom, bottomOut), "pixels far from the face changed");
    }

    [Fact]
    public void Without_its_model_or_with_another_kind_the_step_is_skipped_and_says_why()
    {
        using (var env = new FaceEnv())
        {
            using var input = FaceEnv.Astronaut();
            var w = FaceEnv.Frame(input, AiSteps.Enhance);
            RunAll(env.Engine, w);
            Assert.False(w.Failed);
            Assert.True(FaceEnv.Same(input, w.Image!));
            Assert.Equal(1, env.Engine.Step("enhance").Snapshot().Skips["model unavailable"]);
            Assert.Equal(
                "unavailable: no model configured (ENHANCER_MODEL / ai:enhancer_model)",
                FaceModels.For(env.Engine).Status["enhance"]
            );
        }
        using (var env = new FaceEnv(configure: o => o.EnhancerModel = InsightFaceModelTests.Model("depth_test.onnx")))
        {
            using var input = FaceEnv.Astronaut();
            RunAll(env.Engine, FaceEnv.Frame(input, AiSteps.Enhance));
            Assert.StartsWith("unavailable: not a GFPGAN model", FaceModels.For(env.Engine).Status["enhance"]);
        }
    }
}
