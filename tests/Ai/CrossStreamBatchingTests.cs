using Blankend.Orleans.Ai;
using Blankend.Orleans.Grains.Ai;
using Blankend.Orleans.Grains.Ai.Face;
using Blankend.Orleans.Grains.Ai.Matting;
using Blankend.Orleans.Grains.Ai.Runtime;
using Blankend.Orleans.Grains.Devices;
using Blankend.Orleans.Tests.Support;
using OpenCvSharp;
using Xunit;

namespace Blankend.Orleans.Tests.Ai;

/// <summary>Cross-stream batching in the AI steps: the frames of several sources in one worker batch share one
/// inference call per model, each frame getting exactly what a call of its own gives (CPU), per-source state
/// and order kept.</summary>
[Trait(TestKind.Name, TestKind.Unit)]
public sealed class CrossStreamBatchingTests : IDisposable
{
    private readonly FaceEnv _env = new();
    private readonly List<FrameWork> _frames = [];

    public void Dispose()
    {
        foreach (var w in _frames)
            w.Image?.Dispose();
        _env.Dispose();
    }

    // Four 720p frames with the face (as large as a webcam's) at different places and sizes: one per source.
    private static readonly (int X, int Y, int Side)[] Scenes =
    [
        (0, 0, 720),
        (200, 40, 660),
        (400, 80, 620),
        (560, 10, 700),
    ];

    private static Mat Scene(int i) =>
        FaceEnv.Canvas720(Scenes[i].X, Scenes[i].Y, Scenes[i].Side, new Rect(100, 0, 300, 300));

    private FrameWork Frame(int scene, AiSteps steps, string source, int interval = 1)
    {
        using var image = Scene(scene);
        var w = FaceEnv.Frame(image, steps, source, interval);
        _frames.Add(w);
        return w;
    }

    private (long Calls, long Images) Batches(AiModelKind kind) =>
        _env.Runtime.Get(kind, "cpu0") is { } m ? (m.Batches.Calls, m.Batches.Images) : (0, 0);

    [Fact]
    public void DetectionOfFourSourcesIsOneCallAndEqualsFourSingleCalls()
    {
        var batch = Enumerable.Range(0, 4).Select(i => Frame(i, AiSteps.Detect, $"cam{i}")).ToArray();
        var detector = FaceModels.For(_env.Engine).FaceDetector("cpu0")!;
        var before = Batches(AiModelKind.FaceDetect);

        new FaceDetectStep(_env.Engine).Run(batch);

        var after = Batches(AiModelKind.FaceDetect);
        Assert.Equal((1L, 4L), (after.Calls - before.Calls, after.Images - before.Images));
        for (var i = 0; i < batch.Length; i++)
        {
            using var alone = Scene(i);
            var expected = detector.Detect(alone);
            Assert.NotEmpty(expected);
            AssertSameFaces(expected, batch[i].Faces!);
        }
    }

    [Fact]
    public void MeshOfAllFacesOfARoundIsOneCallAndEqualsSingleRuns()
    {
        var batch = Enumerable.Range(0, 3).Select(i => Frame(i, AiSteps.Detect | AiSteps.Mesh, $"cam{i}")).ToArray();
        new FaceDetectStep(_env.Engine).Run(batch);
        var faces = batch.Sum(w => w.Faces!.Length);
        var before = Batches(AiModelKind.FaceMesh);

        new FaceMeshStep(_env.Engine).Run(batch);

        var after = Batches(AiModelKind.FaceMesh);
        Assert.Equal((1L, (long)faces), (after.Calls - before.Calls, after.Images - before.Images));
        var mesh = FaceModels.For(_env.Engine).Mesh("cpu0")!;
        foreach (var w in batch)
        {
            foreach (var f in w.Faces!)
            {
                Assert.NotNull(f.Mesh);
                var alone = mesh.Run(w.Image!, f with { Mesh = null })!;
                Assert.Equal(alone.Points, f.Mesh);
            }
        }
    }

    [Fact]
    public void SegmentationOfSeveralFramesIsOneCallAndEqualsSingleCalls()
    {
        var segmenter = new SelfieSegmenter(_env.Runtime);
        var images = Enumerable.Range(0, 3).Select(Scene).ToArray();
        var model = segmenter.Pick(1280, 720, "cpu0")!;
        var masks = images.Select(_ => new Mat()).ToArray();
        var before = model.Batches;

        segmenter.SegmentMany(model, images, masks);

        Assert.Equal((1L, 3L), (model.Batches.Calls - before.Calls, model.Batches.Images - before.Images));
        for (var i = 0; i < images.Length; i++)
        {
            using var alone = new Mat();
            segmenter.Segment(model, images[i], alone);
            Assert.Equal(0, Cv2.Norm(alone, masks[i], NormTypes.INF));
            Assert.True(Cv2.CountNonZero(masks[i].GreaterThan(0.5)) > 1000, "the mask holds the person");
            images[i].Dispose();
            masks[i].Dispose();
        }
        segmenter.Dispose();
    }

    [Fact]
    public void MatteStepSegmentsTheSourcesOfABatchInOneCall()
    {
        var batch = Enumerable.Range(0, 3).Select(i => Frame(i, AiSteps.Matte, $"cam{i}")).ToArray();
        using var step = new MatteStep(_env.Engine);
        var before = Batches(AiModelKind.SegmentationLandscape);

        step.Run(batch);

        var after = Batches(AiModelKind.SegmentationLandscape);
        Assert.Equal((1L, 3L), (after.Calls - before.Calls, after.Images - before.Images));
        Assert.All(batch, w => Assert.Contains("matte", w.Notes!));
    }

    [Fact]
    public void TwoFramesOfOneSourceInABatchRunInOrderAndKeepTheDetectInterval()
    {
        // cam0 twice (interval 2: its first frame detects, its second reuses), cam1 once: two rounds, the first a
        // detector call of 2 images, the second no call.
        var a1 = Frame(0, AiSteps.Detect, "cam0", interval: 2);
        var a2 = Frame(0, AiSteps.Detect, "cam0", interval: 2);
        var b1 = Frame(1, AiSteps.Detect, "cam1", interval: 2);
        var before = Batches(AiModelKind.FaceDetect);

        new FaceDetectStep(_env.Engine).Run(new[] { a1, a2, b1 });

        var after = Batches(AiModelKind.FaceDetect);
        Assert.Equal((1L, 2L), (after.Calls - before.Calls, after.Images - before.Images));
        Assert.False(a1.Ai().FacesReused);
        Assert.True(a2.Ai().FacesReused);
        Assert.False(b1.Ai().FacesReused);
        AssertSameFaces(a1.Faces!, a2.Faces!);
    }

    [Fact]
    public void RoundsHoldEachSourceOnceInQueueOrder()
    {
        var a1 = Frame(0, AiSteps.Detect, "a");
        var a2 = Frame(0, AiSteps.Detect, "a");
        var b1 = Frame(1, AiSteps.Detect, "b");
        var a3 = Frame(0, AiSteps.Detect, "a");
        var rounds = FrameRounds.Split(new[] { a1, a2, b1, a3 });
        Assert.Equal(3, rounds.Count);
        Assert.Equal(new[] { a1, b1 }, rounds[0]);
        Assert.Equal(new[] { a2 }, rounds[1]);
        Assert.Equal(new[] { a3 }, rounds[2]);
    }

    [Fact]
    public void MaxBatchCapsEveryInferenceCall()
    {
        using var env = new FaceEnv(configure: o => o.MaxBatch = 2);
        var batch = Enumerable
            .Range(0, 5)
            .Select(i =>
            {
                using var image = Scene(i % 4);
                var w = FaceEnv.Frame(image, AiSteps.Detect, $"cam{i}", 1);
                _frames.Add(w);
                return w;
            })
            .ToArray();

        new FaceDetectStep(env.Engine).Run(batch);

        var m = env.Runtime.Get(AiModelKind.FaceDetect, "cpu0")!;
        Assert.Equal((3L, 5L, 2), m.Batches);
        Assert.All(batch, w => Assert.NotEmpty(w.Faces!));
    }

    private static void AssertSameFaces(AiFace[] expected, AiFace[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.Equal(expected[i].Score, actual[i].Score);
            Assert.Equal(expected[i].Box, actual[i].Box);
            Assert.Equal(expected[i].Keypoints, actual[i].Keypoints);
        }
    }
}
