using Blankend.Orleans.Ai;
using Blankend.Orleans.Grains.Ai;
using Blankend.Orleans.Grains.Ai.Face;
using Blankend.Orleans.Grains.Devices;
using Blankend.Orleans.Processing;
using Blankend.Orleans.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using OpenCvSharp;
using Xunit;

namespace Blankend.Orleans.Tests.Ai;

[Trait(TestKind.Name, TestKind.Unit)]
public sealed class FaceStepTests : IDisposable
{
    private readonly FaceEnv _env = new();

    public void Dispose() => _env.Dispose();

    private static void RunSteps(AiEngine engine, params FrameWork[] frames)
    {
        IFrameStep[] steps = [new FaceDetectStep(engine), new FaceMeshStep(engine), new FaceSwapStep(engine)];
        foreach (var s in steps)
        {
            var applicable = frames.Where(f => s.AppliesTo(f.Settings)).ToArray();
            if (applicable.Length > 0)
                s.Run(applicable);
        }
    }

    [Fact]
    public void Steps_apply_by_the_active_steps()
    {
        var e = _env.Engine;
        var detect = new FaceDetectStep(e);
        var mesh = new FaceMeshStep(e);
        var swap = new FaceSwapStep(e);
        Assert.Equal(("detect", "mesh", "swap"), (detect.Name, mesh.Name, swap.Name));
        var none = new EffectiveSettings(true, false, 80, 0, 1, false, 1);
        var onlyDetect = none with { AiSteps = AiSteps.Detect };
        var swapAll = none with { AiSteps = AiSteps.Swap };
        Assert.False(detect.AppliesTo(none));
        Assert.True(detect.AppliesTo(onlyDetect));
        Assert.False(mesh.AppliesTo(onlyDetect));
        Assert.True(detect.AppliesTo(swapAll) && mesh.AppliesTo(swapAll) && swap.AppliesTo(swapAll));
        Assert.False(detect.AppliesTo(swapAll with { SimpleForward = true }));
        Assert.False(swap.AppliesTo(none with { AiSteps = AiSteps.Mesh }));
    }

    [Fact]
    public void Detect_and_mesh_fill_the_frame_data_and_draw_nothing()
    {
        using var input = FaceEnv.Astronaut();
        var w = FaceEnv.Frame(input, AiSteps.Mesh);
        RunSteps(_env.Engine, w);
        var f = Assert.Single(w.Faces!);
        Assert.Equal(468 * 3, f.Mesh!.Length);
        Assert.True(w.Ai().MeshPresence![0] > 0.5f);
        Assert.False(w.Ai().FacesReused);
        Assert.True(FaceEnv.Same(input, w.Image!));
        Assert.Equal(1, _env.Engine.Step("detect").Snapshot().Runs);
        Assert.Equal(1, _env.Engine.Step("mesh").Snapshot().Runs);
        Assert.Contains("detect", FaceModels.For(_env.Engine).Status["detect"]);
    }

    [Fact]
    public void Detector_runs_every_interval_frames_per_source()
    {
        using var input = FaceEnv.Astronaut();
        var frames = Enumerable
            .Range(0, 10)
            .Select(i => FaceEnv.Frame(input, AiSteps.Detect, "cam-interval", interval: 5, seq: i + 1))
            .ToArray();
        foreach (var w in frames)
            RunSteps(_env.Engine, w);
        Assert.Equal(2, _env.Engine.Step("detect").Snapshot().Runs);
        var models = FaceModels.For(_env.Engine);
        Assert.Equal(2, models.DetectorRuns);
        Assert.Equal(8, models.DetectionsReused);
        Assert.All(frames, w => Assert.Single(w.Faces!));
        Assert.Equal(8, frames.Count(w => w.Ai().FacesReused));
        Assert.False(frames[0].Ai().FacesReused);
        Assert.False(frames[5].Ai().FacesReused);

        // Another source has its own count; a batch with both detects each source's frame at its start, in one
        // detector call (cross-stream batching): 3 calls, 4 frames detected.
        var other = FaceEnv.Frame(input, AiSteps.Detect, "cam-other", interval: 5);
        var again = FaceEnv.Frame(input, AiSteps.Detect, "cam-interval", interval: 5, seq: 11);
        RunSteps(_env.Engine, other, again);
        Assert.Equal(
            (3L, 4L),
            (_env.Engine.Step("detect").Snapshot().Runs, _env.Engine.Step("detect").Snapshot().Frames)
        );
        Assert.Equal(4, models.DetectorRuns);
    }

    [Fact]
    public void Mesh_follows_a_moving_face_between_detector_runs()
    {
        // The face moves 24 px right per frame; the detector runs on frame 0 only (interval 5).
        var crop = new Rect(100, 0, 300, 300);
        var frames = Enumerable
            .Range(0, 5)
            .Select(i =>
            {
                using var canvas = FaceEnv.Canvas720(200 + 24 * i, 0, 720, crop);
                return FaceEnv.Frame(canvas, AiSteps.Mesh, "cam-moving", interval: 5, seq: i + 1);
            })
            .ToArray();
        foreach (var w in frames)
            RunSteps(_env.Engine, w);
        Assert.Equal(1, _env.Engine.Step("detect").Snapshot().Runs);
        Assert.Equal(5, _env.Engine.Step("mesh").Snapshot().Runs);

        // Truth for the last frame: a fresh detection + mesh on it.
        var models = FaceModels.For(_env.Engine);
        var last = frames[^1].Image!;
        var truth = models.Mesh("cpu0")!.Run(last, Assert.Single(models.Detector("cpu0")!.Detect(last)))!;
        var tracked = Assert.Single(frames[^1].Faces!).Mesh;
        Assert.NotNull(tracked);
        double err = 0;
        for (var i = 0; i < 468; i++)
            err += Math.Sqrt(
                Math.Pow(tracked[i * 3] - truth.Points[i * 3], 2)
                    + Math.Pow(tracked[i * 3 + 1] - truth.Points[i * 3 + 1], 2)
            );
        err /= 468;
        // The stale detection box is 96 px behind; the tracked mesh is on the face.
        Assert.True(err < 6, $"mean landmark error {err:0.0} px");
    }

    [Fact]
    public void A_face_lost_while_tracked_makes_the_next_frame_detect()
    {
        using var face = FaceEnv.Astronaut();
        using var grey = new Mat(512, 512, MatType.CV_8UC3, Scalar.All(128));
        var frames = new[] { face, grey, face }
            .Select((m, i) => FaceEnv.Frame(m, AiSteps.Mesh, "cam-lost", interval: 5, seq: i + 1))
            .ToArray();
        foreach (var w in frames)
            RunSteps(_env.Engine, w);
        Assert.True(frames[1].Ai().FacesReused);
        Assert.Null(Assert.Single(frames[1].Faces!).Mesh);
        Assert.True(frames[1].Ai().MeshPresence![0] < 0.5f);
        Assert.False(frames[2].Ai().FacesReused);
        Assert.Equal(2, _env.Engine.Step("detect").Snapshot().Runs);
        Assert.NotNull(Assert.Single(frames[2].Faces!).Mesh);
    }

    [Fact]
    public void Missing_models_skip_with_model_unavailable_and_leave_the_frame()
    {
        var empty = Directory.CreateTempSubdirectory("blankend-nomodels");
        try
        {
            using var env = new FaceEnv(empty.FullName);
            env.Engine.SetAsset(
                new AiAsset(AiAssetKind.ReferenceFace, 1, File.ReadAllBytes(Support.TestEnv.TestData("astronaut.jpg")))
            );
            using var input = FaceEnv.Astronaut();
            var w = FaceEnv.Frame(input, AiSteps.Swap);
            RunSteps(env.Engine, w);
            Assert.False(w.Failed);
            Assert.True(FaceEnv.Same(input, w.Image!));
            Assert.Null(w.Faces);
            foreach (var step in new[] { "detect", "mesh", "swap" })
            {
                var s = env.Engine.Step(step).Snapshot();
                Assert.Equal(0, s.Runs);
                Assert.Equal(1, s.Skips["model unavailable"]);
                Assert.Contains($"{step}: model unavailable", w.Notes!);
            }
            var status = FaceModels.For(env.Engine).Status;
            Assert.Contains("unavailable: model file not found", status["detect"]);
            Assert.Contains("unavailable: model file not found", status["mesh"]);
        }
        finally
        {
            empty.Delete(true);
        }
    }

    [Fact]
    public void Hostile_frames_do_not_throw()
    {
        _env.Engine.SetAsset(
            new AiAsset(AiAssetKind.ReferenceFace, 1, File.ReadAllBytes(Support.TestEnv.TestData("astronaut.jpg")))
        );
        using var tiny = new Mat(1, 1, MatType.CV_8UC3, Scalar.All(200));
        using var big = new Mat(3000, 4000, MatType.CV_8UC3, Scalar.All(30));
        using var a = FaceEnv.Astronaut();
        using var bigFace = new Mat();
        Cv2.Resize(a, bigFace, new Size(3000, 3000));
        using var bigWithFace = big.Clone();
        using (var roi = bigWithFace.SubMat(0, 3000, 500, 3500))
            bigFace.CopyTo(roi);
        using var gray = new Mat();
        Cv2.CvtColor(a, gray, ColorConversionCodes.BGR2GRAY);
        using var empty = new Mat();
        var i = 0;
        foreach (var img in new[] { tiny, big, bigWithFace, gray, empty })
        {
            var w = FaceEnv.Frame(img, AiSteps.Swap, $"hostile{i++}", interval: 1);
            var ex = Record.Exception(() => RunSteps(_env.Engine, w));
            Assert.Null(ex);
            Assert.False(w.Failed, w.Error);
        }
        var errors = 0L;
        foreach (var step in new[] { "detect", "mesh", "swap" })
            errors += _env.Engine.Step(step).Snapshot().Skips.GetValueOrDefault("error");
        Assert.Equal(0, errors);
    }

    [Fact]
    public void Service_registration_gives_the_face_steps_in_order()
    {
        var services = new ServiceCollection();
        services.AddSingleton(_env.Engine);
        services.AddBlankendFaceSteps();
        using var sp = services.BuildServiceProvider();
        Assert.Equal(["detect", "mesh", "swap", "enhance"], sp.GetServices<IFrameStep>().Select(s => s.Name));
    }
}
