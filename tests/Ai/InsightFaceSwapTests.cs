using System.Collections;
using System.Net;
using System.Text.Json;
using Blankend.Orleans.Ai;
using Blankend.Orleans.Configuration;
using Blankend.Orleans.Grains.Ai;
using Blankend.Orleans.Grains.Ai.Face;
using Blankend.Orleans.Grains.Devices;
using Blankend.Orleans.Tests.Processing;
using Blankend.Orleans.Tests.Support;
using OpenCvSharp;
using Xunit;
using Xunit.Abstractions;

namespace Blankend.Orleans.Tests.Ai;

/// <summary>The swap engine choice (inswapper or mesh, and why), the reference embedded once, the swap through
/// inswapper with faces from BlazeFace + mesh or from SCRFD, and the same through the service.</summary>
[Trait(TestKind.Name, TestKind.Integration)]
public sealed class InsightFaceSwapTests(ITestOutputHelper output)
{
    private static string Model(string file) => InsightFaceModelTests.Model(file);

    private static byte[] Reference()
    {
        using var a = FaceEnv.Astronaut();
        using var flipped = new Mat();
        Cv2.Flip(a, flipped, FlipMode.Y);
        Cv2.ImEncode(".jpg", flipped, out var jpeg);
        return jpeg;
    }

    private static void RunAll(AiEngine engine, FrameWork w)
    {
        new FaceDetectStep(engine).Run([w]);
        new FaceMeshStep(engine).Run([w]);
        new FaceSwapStep(engine).Run([w]);
    }

    public static TheoryData<string, string?, string?, string> MeshCases =>
        new()
        {
            { "no swap model", null, null, "no swap_model configured" },
            { "missing file", "nowhere/inswapper_128.onnx", "arcface_test.onnx", "model file not found" },
            { "not inswapper", "depth_test.onnx", "arcface_test.onnx", "is not a usable inswapper model" },
            { "no emap", "inswapper_noemap_test.onnx", "arcface_test.onnx", "512x512 expected" },
            { "no arcface", "inswapper_test.onnx", null, "no arcface_model is configured" },
            { "not arcface", "inswapper_test.onnx", "depth_test.onnx", "is not an ArcFace model" },
        };

    [Theory]
    [MemberData(nameof(MeshCases))]
    public void Without_a_usable_inswapper_and_arcface_pair_the_mesh_warp_swaps_and_the_status_says_why(
        string @case,
        string? swap,
        string? arcface,
        string reason
    )
    {
        using var env = new FaceEnv(configure: o =>
        {
            if (swap is not null)
                o.SwapModel = swap.Contains('/') ? swap : Model(swap);
            if (arcface is not null)
                o.ArcfaceModel = Model(arcface);
        });
        var swapper = FaceModels.For(env.Engine).Swapper;
        var (name, why) = swapper.Engine;
        output.WriteLine($"{@case}: {name}: {why}");
        Assert.Equal("mesh", name);
        Assert.Contains(reason, why);
        Assert.StartsWith("mesh warp", swapper.SwapStatus);

        env.Engine.SetAsset(new AiAsset(AiAssetKind.ReferenceFace, 1, Reference()));
        using var input = FaceEnv.Astronaut();
        var w = FaceEnv.Frame(input, AiSteps.Swap);
        RunAll(env.Engine, w);
        Assert.False(w.Failed, w.Error);
        var (runs, _, _, _, skips) = env.Engine.Step("swap").Snapshot();
        Assert.Equal(1, runs);
        Assert.Empty(skips);
        Assert.Equal(0, env.Engine.Step("embed").Snapshot().Runs);
    }

    [Fact]
    public void With_inswapper_and_arcface_faces_go_through_inswapper_and_the_reference_is_embedded_once_on_upload()
    {
        using var env = new FaceEnv(configure: o =>
        {
            o.SwapModel = Model("inswapper_test.onnx");
            o.ArcfaceModel = Model("arcface_test.onnx");
        });
        var swapper = FaceModels.For(env.Engine).Swapper;
        var (name, why) = swapper.Engine;
        output.WriteLine(why);
        Assert.Equal("inswapper", name);
        Assert.Contains("inswapper_test.onnx", why);
        Assert.Contains("arcface_test.onnx", why);

        // The upload check analyses the bytes (as AiSiloGrain.CheckAsset does); the version that follows reuses it.
        var bytes = Reference();
        var check = swapper.Inspect(new AiAsset(AiAssetKind.ReferenceFace, 0, bytes));
        Assert.True(check.Usable, check.Error);
        Assert.NotNull(check.Latent);
        env.Engine.SetAsset(new AiAsset(AiAssetKind.ReferenceFace, 7, bytes));
        var insight = swapper.Insight("cpu0")!;
        using var input = FaceEnv.Astronaut();
        FrameWork? last = null;
        for (var i = 0; i < 3; i++)
        {
            last = FaceEnv.Frame(input, AiSteps.Swap, seq: i + 1);
            RunAll(env.Engine, last);
            Assert.False(last.Failed, last.Error);
        }
        Assert.Equal(1, insight.ArcFace.Runs);
        Assert.Equal(1, env.Engine.Step("embed").Snapshot().Runs);
        Assert.Equal(3, insight.Swapper.Runs);
        Assert.Equal(3, env.Engine.Step("swap").Snapshot().Runs);
        Assert.Contains("reference v7: ready", swapper.ReferenceStatus);
        Assert.Contains("ArcFace embedding ready", swapper.ReferenceStatus);

        // A new asset version with other bytes is embedded again, once.
        using (var small = new Mat())
        {
            Cv2.Resize(input, small, new Size(400, 400));
            Cv2.ImEncode(".png", small, out var other);
            env.Engine.SetAsset(new AiAsset(AiAssetKind.ReferenceFace, 8, other));
        }
        RunAll(env.Engine, FaceEnv.Frame(input, AiSteps.Swap, seq: 9));
        RunAll(env.Engine, FaceEnv.Frame(input, AiSteps.Swap, seq: 10));
        Assert.Equal(2, insight.ArcFace.Runs);

        // The test inswapper inverts the face: the face changed a lot, the frame far from it not at all.
        var face = last!.Faces![0];
        var b = face.Box;
        var box = new Rect((int)b[0], (int)b[1], (int)(b[2] - b[0]), (int)(b[3] - b[1]));
        var inside = FaceEnv.MeanAbsDiff(
            input,
            last.Image!,
            new Rect(box.X + box.Width / 4, box.Y + box.Height / 4, box.Width / 2, box.Height / 2)
        );
        output.WriteLine($"face box {box}, mean abs diff in its centre {inside:0.0}");
        Assert.True(inside > 40, $"face centre diff {inside:0.0}");
        using var bottom = input.SubMat(440, 512, 0, 512);
        using var bottomOut = last.Image!.SubMat(440, 512, 0, 512);
        Assert.True(FaceEnv.Same(bottom, bottomOut), "pixels far below the face changed");
        var (runs, _, ms, _, _) = env.Engine.Step("swap").Snapshot();
        output.WriteLine(
            $"test models: swap {ms:0.00} ms/frame (EMA) over {runs} runs, last {env.Engine.Step("swap").Snapshot().LastMs:0.00} ms, embed {env.Engine.Step("embed").Snapshot().MsPerFrame:0.00} ms, detect {env.Engine.Step("detect").Snapshot().MsPerFrame:0.00} ms, mesh {env.Engine.Step("mesh").Snapshot().MsPerFrame:0.00} ms"
        );
    }

    [Fact]
    public void A_face_from_scrfd_is_swapped_with_its_own_five_keypoints_without_a_mesh()
    {
        using var env = new FaceEnv(configure: o =>
        {
            o.SwapModel = Model("inswapper_test.onnx");
            o.ArcfaceModel = Model("arcface_test.onnx");
            o.FaceDetectModel = Model("scrfd_test.onnx");
        });
        var models = FaceModels.For(env.Engine);
        using var frame = new Mat(480, 640, MatType.CV_8UC3, Scalar.All(0));
        frame.Rectangle(new Rect(320, 192, 32, 32), Scalar.All(255), -1);
        var face = Assert.Single(models.FaceDetector("cpu0")!.Detect(frame));
        Assert.Null(face.Mesh);
        var latent = new float[512];
        latent[2] = 1;
        var reference = new FaceReference(1, null) { Latent = latent };
        using var before = frame.Clone();
        Assert.True(models.Swapper.SwapFace(frame, face, reference, "cpu0"));
        // The test inswapper inverts and adds 0.25 x latent[2] to blue: the white square became (63, 0, 0), the
        // black around it inside the mask white.
        var c = frame.At<Vec3b>(200, 330);
        Assert.True(c.Item0 is >= 60 and <= 66 && c.Item1 < 3 && c.Item2 < 3, $"square {c.Item0},{c.Item1},{c.Item2}");
        var around = frame.At<Vec3b>(200, 300);
        Assert.True(
            around.Item0 > 200 && around.Item1 > 200 && around.Item2 > 200,
            $"around {around.Item0},{around.Item1},{around.Item2}"
        );
        using var corner = frame.SubMat(0, 40, 0, 40);
        using var cornerBefore = before.SubMat(0, 40, 0, 40);
        Assert.True(FaceEnv.Same(corner, cornerBefore));
        // Without five keypoints (no SCRFD points, no mesh) nothing is swapped.
        Assert.False(models.Swapper.SwapFace(frame, face with { Keypoints = new float[12] }, reference, "cpu0"));
    }

    [Fact]
    public async Task Through_the_service_the_status_says_inswapper_and_process_swaps_with_it()
    {
        var environment = new Hashtable
        {
            ["SWAP_MODEL"] = Model("inswapper_test.onnx"),
            ["ARCFACE_MODEL"] = Model("arcface_test.onnx"),
        };
        await using var gw = await EmbeddedGateway.StartAsync(environment: environment);
        var http = gw.Client;
        var status = await http.GetJsonAsync("api/v1/ai/status");
        Assert.Equal("inswapper", status.GetProperty("swap_engine").GetString());
        Assert.Contains("inswapper_test.onnx", status.GetProperty("swap_engine_reason").GetString());
        var models = status
            .GetProperty("models")
            .EnumerateArray()
            .ToDictionary(m => m.GetProperty("kind").GetString()!);
        Assert.True(models["arcface"].GetProperty("available").GetBoolean());
        Assert.Equal("inswapper", models["swap"].GetProperty("format").GetString());
        Assert.Equal("arcface", models["arcface"].GetProperty("format").GetString());

        using (var r = await AiApiTests.PostImageAsync(http, "api/v1/ai/reference", Reference()))
            Assert.True(r.IsSuccessStatusCode, await r.Content.ReadAsStringAsync());
        var astronaut = AiApiTests.Astronaut;
        using var resp = await AiApiTests.PostImageAsync(http, "api/v1/ai/process?steps=swap", astronaut);
        Assert.True(resp.IsSuccessStatusCode, await resp.Content.ReadAsStringAsync());
        using var swapped = Cv2.ImDecode(await resp.Content.ReadAsByteArrayAsync(), ImreadModes.Color);
        using var src = Cv2.ImDecode(astronaut, ImreadModes.Color);
        var inFace = AiApiTests.MeanAbsDiff(src, swapped, new Rect(190, 95, 70, 70));
        output.WriteLine($"face region diff {inFace:0.0}");
        Assert.True(inFace > 40, $"face region diff {inFace:0.0}");

        status = await http.GetJsonAsync("api/v1/ai/status");
        var steps = status
            .GetProperty("silos")[0]
            .GetProperty("steps")
            .EnumerateArray()
            .ToDictionary(s => s.GetProperty("name").GetString()!);
        Assert.Equal(1, steps["embed"].GetProperty("runs").GetInt64());
        Assert.Equal(1, steps["swap"].GetProperty("runs").GetInt64());
        Assert.StartsWith("inswapper", steps["swap"].GetProperty("status").GetString());
        output.WriteLine(
            $"test models through the service: swap {steps["swap"].GetProperty("ms_per_frame").GetDouble():0.00} ms, embed {steps["embed"].GetProperty("ms_per_frame").GetDouble():0.00} ms"
        );
        await http.DeleteAsync("api/v1/ai/reference");
    }
}
