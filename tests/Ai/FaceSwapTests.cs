using System.Diagnostics;
using Blankend.Orleans.Ai;
using Blankend.Orleans.Grains.Ai;
using Blankend.Orleans.Grains.Ai.Face;
using Blankend.Orleans.Grains.Devices;
using Blankend.Orleans.Tests.Support;
using OpenCvSharp;
using Xunit;
using Xunit.Abstractions;

namespace Blankend.Orleans.Tests.Ai;

[Trait(TestKind.Name, TestKind.Unit)]
public sealed class FaceSwapTests(ITestOutputHelper output) : IDisposable
{
    private readonly FaceEnv _env = new();

    public void Dispose() => _env.Dispose();

    /// <summary>A reference unlike the target: the astronaut mirrored, shifted in colour, and scaled.</summary>
    private static byte[] Reference()
    {
        using var a = FaceEnv.Astronaut();
        using var flipped = new Mat();
        Cv2.Flip(a, flipped, FlipMode.Y);
        using var shifted = new Mat();
        flipped.ConvertTo(shifted, MatType.CV_8UC3, 0.8, 30);
        using var big = new Mat();
        Cv2.Resize(shifted, big, new Size(700, 700));
        Cv2.ImEncode(".jpg", big, out var jpeg);
        return jpeg;
    }

    private static void RunAll(AiEngine engine, FrameWork w)
    {
        new FaceDetectStep(engine).Run([w]);
        new FaceMeshStep(engine).Run([w]);
        new FaceSwapStep(engine).Run([w]);
    }

    [Fact]
    public void Swap_changes_the_face_and_little_else_and_encodes()
    {
        _env.Engine.SetAsset(new AiAsset(AiAssetKind.ReferenceFace, 1, Reference()));
        using var input = FaceEnv.Astronaut();
        var w = FaceEnv.Frame(input, AiSteps.Swap);
        RunAll(_env.Engine, w);
        Assert.False(w.Failed, w.Error);
        var face = Assert.Single(w.Faces!);
        Assert.NotNull(face.Mesh);
        var (runs, _, _, _, skips) = _env.Engine.Step("swap").Snapshot();
        Assert.Equal(1, runs);
        Assert.Empty(skips);

        var b = face.Box;
        var box = new Rect((int)b[0], (int)b[1], (int)(b[2] - b[0]), (int)(b[3] - b[1]));
        var inside = FaceEnv.MeanAbsDiff(input, w.Image!, box);
        var ex = (int)(0.2 * box.Width);
        var ey = (int)(0.2 * box.Height);
        var grown = new Rect(box.X - ex, box.Y - ey, box.Width + 2 * ex, box.Height + 2 * ey);
        using var diff = new Mat();
        Cv2.Absdiff(input, w.Image!, diff);
        using var outsideMask = new Mat(input.Size(), MatType.CV_8UC1, Scalar.All(255));
        outsideMask.Rectangle(grown, Scalar.All(0), -1);
        var outsideMean = Cv2.Mean(diff, outsideMask);
        using var gray = new Mat();
        Cv2.CvtColor(diff, gray, ColorConversionCodes.BGR2GRAY);
        Cv2.MinMaxLoc(gray, out _, out var outsideMax, out _, out _, outsideMask);
        output.WriteLine(
            $"mean abs diff inside the box {inside:0.00}; outside box+20%: mean {outsideMean.Val0:0.000}/{outsideMean.Val1:0.000}/{outsideMean.Val2:0.000} max {outsideMax}"
        );
        Assert.True(inside > 6, $"face barely changed: mean abs diff {inside:0.00}");
        Assert.True(outsideMean.Val0 + outsideMean.Val1 + outsideMean.Val2 < 0.3, "pixels outside the face changed");
        Assert.True(outsideMax <= 8, $"max diff outside the face {outsideMax}");

        Cv2.ImEncode(".jpg", w.Image!, out var jpeg, new ImageEncodingParam(ImwriteFlags.JpegQuality, 85));
        using var back = Cv2.ImDecode(jpeg, ImreadModes.Color);
        Assert.Equal(input.Size(), back.Size());
        if (Environment.GetEnvironmentVariable("FACE_TEST_OUT") is { Length: > 0 } dir)
        {
            File.WriteAllBytes(Path.Combine(dir, "swap.jpg"), jpeg);
            using var drawn = w.Image!.Clone();
            FaceDraw.Draw(drawn, w.Faces);
            Cv2.ImWrite(Path.Combine(dir, "drawn.png"), drawn);
        }
    }

    [Fact]
    public void Reference_is_analysed_once_per_version_and_a_faceless_one_is_reported()
    {
        var swapper = FaceModels.For(_env.Engine).Swapper;
        var asset = new AiAsset(AiAssetKind.ReferenceFace, 7, Reference());
        var r1 = swapper.Reference(asset);
        Assert.True(r1.Usable, r1.Error);
        Assert.True(r1.TriangleCount > 800, $"{r1.TriangleCount} triangles");
        Assert.Same(r1, swapper.Reference(asset));
        Assert.Contains("reference v7: ready", swapper.Status);
        Assert.Contains("no swap_model configured", swapper.SwapStatus);

        using var grey = new Mat(300, 300, MatType.CV_8UC3, Scalar.All(120));
        var faceless = swapper.Reference(new AiAsset(AiAssetKind.ReferenceFace, 8, FaceEnv.Png(grey)));
        Assert.False(faceless.Usable);
        Assert.Equal("no face found in the reference image", faceless.Error);
        Assert.Contains("reference v8: no face found", swapper.Status);
        var garbage = swapper.Reference(new AiAsset(AiAssetKind.ReferenceFace, 9, [1, 2, 3, 4]));
        Assert.False(garbage.Usable);
        Assert.Contains("does not decode", garbage.Error);

        // Frames with a faceless reference are left alone and counted.
        _env.Engine.SetAsset(new AiAsset(AiAssetKind.ReferenceFace, 10, FaceEnv.Png(grey)));
        using var input = FaceEnv.Astronaut();
        var w = FaceEnv.Frame(input, AiSteps.Swap);
        RunAll(_env.Engine, w);
        Assert.True(FaceEnv.Same(input, w.Image!));
        Assert.Equal(1, _env.Engine.Step("swap").Snapshot().Skips["reference unusable"]);
    }

    [Fact]
    public void Concurrent_swaps_match_a_single_one()
    {
        var models = FaceModels.For(_env.Engine);
        var reference = models.Swapper.Reference(new AiAsset(AiAssetKind.ReferenceFace, 1, Reference()));
        using var input = FaceEnv.Webcam720();
        var mesh = models.Mesh("cpu0")!.Run(input, Assert.Single(models.Detector("cpu0")!.Detect(input)))!;
        using var expected = input.Clone();
        Assert.True(models.Swapper.Swap(expected, mesh.Points, reference));
        var same = new int[6];
        Parallel.For(0, 6, i =>
        {
            for (var n = 0; n < 4; n++)
            {
                using var frame = input.Clone();
                if (models.Swapper.Swap(frame, mesh.Points, reference) && FaceEnv.Same(expected, frame))
                    same[i]++;
            }
        });
        Assert.All(same, n => Assert.Equal(4, n));
    }

    [Fact]
    public void Swap_without_reference_leaves_the_frame_and_counts_the_skip()
    {
        using var input = FaceEnv.Astronaut();
        var w = FaceEnv.Frame(input, AiSteps.Swap);
        RunAll(_env.Engine, w);
        Assert.False(w.Failed);
        Assert.True(FaceEnv.Same(input, w.Image!));
        Assert.Single(w.Faces!);
        var snap = _env.Engine.Step("swap").Snapshot();
        Assert.Equal(0, snap.Runs);
        Assert.Equal(1, snap.Skips["no reference face"]);
        Assert.Contains("swap: no reference face", w.Notes!);
    }

    [Fact]
    public void Face_cut_by_the_frame_border_is_feather_blended()
    {
        var models = FaceModels.For(_env.Engine);
        var reference = models.Swapper.Reference(new AiAsset(AiAssetKind.ReferenceFace, 1, Reference()));
        using var input = FaceEnv.Astronaut();
        var face = Assert.Single(models.Detector("cpu0")!.Detect(input));
        var mesh = models.Mesh("cpu0")!.Run(input, face)!;
        // Move the target mesh so its left part lies outside the frame (x - 200).
        var shifted = (float[])mesh.Points.Clone();
        for (var i = 0; i < shifted.Length; i += 3)
            shifted[i] -= 200;
        using var frame = input.Clone();
        Assert.True(models.Swapper.Swap(frame, shifted, reference));
        if (Environment.GetEnvironmentVariable("FACE_TEST_OUT") is { Length: > 0 } dir)
            Cv2.ImWrite(Path.Combine(dir, "swap-border.png"), frame);
        Assert.True(
            FaceEnv.MeanAbsDiff(input, frame, new Rect(0, 90, 50, 80)) > 3,
            "the visible part of the face did not change"
        );
        Assert.Equal(0, FaceEnv.MeanAbsDiff(input, frame, new Rect(120, 0, 392, 512)));
        // Entirely off the frame: nothing to do.
        for (var i = 0; i < shifted.Length; i += 3)
            shifted[i] -= 1000;
        Assert.False(models.Swapper.Swap(frame, shifted, reference));
    }

    /// <summary>A two-Identity ONNX model with inswapper's inputs: target [1,3,128,128], source [1,512], but two
    /// outputs and no emap (hand-encoded protobuf, opset 13).</summary>
    private const string FakeInswapper =
        "CAcSDWJsYW5rZW5kLXRlc3Q61gEKHgoGdGFyZ2V0EgpvdXRfdGFyZ2V0IghJZGVudGl0eQoeCgZzb3VyY2USCm91dF9zb3VyY2UiCElkZW50aXR5Eg5mYWtlX2luc3dhcHBlcloiCgZ0YXJnZXQSGAoWCAESEgoCCAEKAggDCgMIgAEKAwiAAVoZCgZzb3VyY2USDwoNCAESCQoCCAEKAwiABGImCgpvdXRfdGFyZ2V0EhgKFggBEhIKAggBCgIIAwoDCIABCgMIgAFiHQoKb3V0X3NvdXJjZRIPCg0IARIJCgIIAQoDCIAEQgQKABAN";

    [Fact]
    public void A_swap_model_that_cannot_run_as_inswapper_is_reported_and_the_mesh_warp_is_used()
    {
        var dir = Directory.CreateTempSubdirectory("blankend-swapmodel");
        try
        {
            var fake = Path.Combine(dir.FullName, "inswapper_fake.onnx");
            File.WriteAllBytes(fake, Convert.FromBase64String(FakeInswapper));
            using (var env = new FaceEnv(configure: o => o.SwapModel = fake))
            {
                var status = FaceModels.For(env.Engine).Swapper.SwapStatus;
                output.WriteLine(status);
                Assert.StartsWith("mesh warp", status);
                Assert.Contains("is not a usable inswapper model", status);
                Assert.Contains("2 outputs", status);
                env.Engine.SetAsset(new AiAsset(AiAssetKind.ReferenceFace, 1, Reference()));
                using var input = FaceEnv.Astronaut();
                var w = FaceEnv.Frame(input, AiSteps.Swap);
                RunAll(env.Engine, w);
                Assert.Equal(1, env.Engine.Step("swap").Snapshot().Runs);
                Assert.True(FaceEnv.MeanAbsDiff(input, w.Image!, new Rect(180, 82, 90, 90)) > 6);
                Assert.Contains("inswapper", FaceModels.For(env.Engine).Status["swap"]);
            }
            using (
                var env = new FaceEnv(configure: o => o.SwapModel = FaceEnv.ShippedModel("selfie_segmentation.onnx"))
            )
            {
                var status = FaceModels.For(env.Engine).Swapper.SwapStatus;
                output.WriteLine(status);
                Assert.Contains("is not a usable inswapper model", status);
            }
            using (var env = new FaceEnv(configure: o => o.SwapModel = Path.Combine(dir.FullName, "missing.onnx")))
            {
                var status = FaceModels.For(env.Engine).Swapper.SwapStatus;
                output.WriteLine(status);
                Assert.Contains("swap_model unavailable: model file not found", status);
            }
        }
        finally
        {
            dir.Delete(true);
        }
    }
}
