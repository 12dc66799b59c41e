using System.Net;
using System.Text.Json;
using Blankend.Orleans.Tests.Processing;
using Blankend.Orleans.Tests.Support;
using OpenCvSharp;
using Xunit;

namespace Blankend.Orleans.Tests.Ai;

/// <summary>
/// The matte's backgrounds and the depth modes on live frames: /video_in -> ClientGrain -> DeviceWorkerGrain(cpu0)
/// with the real models -> /video_out, with the uploads of <c>POST|DELETE /api/v1/ai/background</c> and the
/// settings of <c>POST /api/v1/realtime_pipeline/config</c>. Each test starts its own gateway (the realtime
/// settings are per cluster).
/// </summary>
[Trait(TestKind.Name, TestKind.Integration)]
[Collection(SerialCollection.Name)]
public sealed class RealtimeBackgroundTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);

    private static byte[] Astronaut => File.ReadAllBytes(TestEnv.TestData("astronaut.jpg"));

    /// <summary>Sends <paramref name="jpeg"/> and returns the processed frame the viewer gets for it.</summary>
    private static async Task<Mat> ProcessedAsync(
        MetaViewer viewer,
        System.Net.WebSockets.ClientWebSocket cam,
        byte[] jpeg
    )
    {
        var n = viewer.Count;
        await cam.SendBinaryAsync(jpeg);
        await viewer.WaitCountAsync(n + 1, Wait);
        var (meta, data) = viewer.Frames[n];
        Assert.Equal("processed", meta.GetProperty("kind").GetString());
        return Cv2.ImDecode(data, ImreadModes.Color);
    }

    private static void AssertNear(Vec3b expected, Vec3b actual, int tolerance, string what) =>
        Assert.True(
            Math.Abs(expected.Item0 - actual.Item0) <= tolerance
                && Math.Abs(expected.Item1 - actual.Item1) <= tolerance
                && Math.Abs(expected.Item2 - actual.Item2) <= tolerance,
            $"{what}: expected about {expected}, got {actual}"
        );

    [Fact]
    public async Task UploadedBackgroundIsComposedBehindThePersonAndDeletingItGoesBackToTheColour()
    {
        await using var gw = await EmbeddedGateway.StartAsync();
        var source = TestEnv.NewId("bg");
        await RealtimeApi.ConfigureAsync(gw.Client, $$"""{"source":"{{source}}","enabled":true,"steps":"matte"}""");
        var (viewer, cam) = await RealtimeApi.ConnectAsync(gw, source);
        await using var _ = viewer;

        using (var green = await ProcessedAsync(viewer, cam, Astronaut))
            AssertNear(new Vec3b(0, 255, 0), green.At<Vec3b>(5, 506), 60, "top-right corner over the default colour");

        // A solid red picture as the background.
        using var red = new Mat(512, 512, MatType.CV_8UC3, new Scalar(0, 0, 255));
        Cv2.ImEncode(".jpg", red, out var redJpeg);
        using (var up = await AiApiTests.PostImageAsync(gw.Client, "api/v1/ai/background", redJpeg))
        {
            var text = await up.Content.ReadAsStringAsync();
            Assert.True(up.StatusCode == HttpStatusCode.OK, text);
            var asset = JsonDocument.Parse(text).RootElement;
            Assert.Equal("background", asset.GetProperty("kind").GetString());
            Assert.True(asset.GetProperty("version").GetInt64() > 0);
            Assert.Equal(redJpeg.Length, asset.GetProperty("bytes").GetInt32());
        }
        var config = await gw.Client.GetJsonAsync("api/v1/realtime_pipeline/config");
        Assert.Equal("image", config.GetProperty("background").GetProperty("kind").GetString());
        using (var composed = await ProcessedAsync(viewer, cam, Astronaut))
            AssertNear(
                new Vec3b(0, 0, 255),
                composed.At<Vec3b>(5, 506),
                60,
                "top-right corner over the uploaded picture"
            );

        using (var del = await gw.Client.DeleteAsync("api/v1/ai/background"))
        {
            var text = await del.Content.ReadAsStringAsync();
            Assert.True(del.StatusCode == HttpStatusCode.OK, text);
            Assert.Equal(0, JsonDocument.Parse(text).RootElement.GetProperty("version").GetInt64());
        }
        config = await gw.Client.GetJsonAsync("api/v1/realtime_pipeline/config");
        Assert.Equal("color", config.GetProperty("background").GetProperty("kind").GetString());
        using (var again = await ProcessedAsync(viewer, cam, Astronaut))
            AssertNear(new Vec3b(0, 255, 0), again.At<Vec3b>(5, 506), 60, "top-right corner after the delete");
    }

    [Fact]
    public async Task BlurBackgroundKeepsThePicturesOwnBackgroundSoftened()
    {
        await using var gw = await EmbeddedGateway.StartAsync();
        var source = TestEnv.NewId("blur");
        await RealtimeApi.ConfigureAsync(gw.Client, """{"background":{"kind":"blur","blur_radius":25}}""");
        await RealtimeApi.ConfigureAsync(gw.Client, $$"""{"source":"{{source}}","enabled":true,"steps":"matte"}""");
        var (viewer, cam) = await RealtimeApi.ConnectAsync(gw, source);
        await using var _ = viewer;

        using var input = Cv2.ImDecode(Astronaut, ImreadModes.Color);
        using var output = await ProcessedAsync(viewer, cam, Astronaut);
        // The top band (background, away from the person): the same picture, not a colour, and smoother.
        var band = new Rect(0, 0, 512, 40);
        using var inBand = new Mat(input, band);
        using var outBand = new Mat(output, band);
        var meanIn = Cv2.Mean(inBand);
        var meanOut = Cv2.Mean(outBand);
        for (var c = 0; c < 3; c++)
            Assert.True(
                Math.Abs(meanIn[c] - meanOut[c]) < 25,
                $"channel {c}: mean {meanOut[c]:F1} vs the input's {meanIn[c]:F1}"
            );
        Assert.True(
            Sharpness(outBand) < Sharpness(inBand),
            $"blurred band sharpness {Sharpness(outBand):F1} vs input {Sharpness(inBand):F1}"
        );
    }

    /// <summary>Variance of the Laplacian: lower is smoother.</summary>
    private static double Sharpness(Mat bgr)
    {
        using var gray = new Mat();
        Cv2.CvtColor(bgr, gray, ColorConversionCodes.BGR2GRAY);
        using var lap = new Mat();
        Cv2.Laplacian(gray, lap, MatType.CV_64F);
        Cv2.MeanStdDev(lap, out _, out var std);
        return std.Val0 * std.Val0;
    }

    [Fact]
    public async Task DepthModeColormapThenCutAppliesToLiveFrames()
    {
        // depth_test.onnx: "near" where the input is red (see DepthStepTests).
        await using var gw = await EmbeddedGateway.StartAsync([$"--ai:depth_model={MatteTestKit.DepthTestModel}"]);
        var source = TestEnv.NewId("depth");
        await RealtimeApi.ConfigureAsync(gw.Client, $$"""{"source":"{{source}}","enabled":true,"steps":"depth"}""");
        var (viewer, cam) = await RealtimeApi.ConnectAsync(gw, source);
        await using var _ = viewer;
        using var img = new Mat(256, 512, MatType.CV_8UC3, new Scalar(0, 0, 0));
        using (var left = new Mat(img, new Rect(0, 0, 256, 256)))
            left.SetTo(new Scalar(0, 0, 255));
        Cv2.ImEncode(".jpg", img, out var jpeg, new ImageEncodingParam(ImwriteFlags.JpegQuality, 95));

        using (var colormap = await ProcessedAsync(viewer, cam, jpeg))
        {
            AssertNear(Inferno(255), colormap.At<Vec3b>(128, 60), 40, "near half, colormap");
            AssertNear(Inferno(0), colormap.At<Vec3b>(128, 450), 40, "far half, colormap");
        }

        var config = await RealtimeApi.ConfigureAsync(gw.Client, """{"depth_mode":"cut"}""");
        Assert.Equal("cut", config.GetProperty("depth_mode").GetString());
        using (var cut = await ProcessedAsync(viewer, cam, jpeg))
        {
            AssertNear(new Vec3b(0, 0, 255), cut.At<Vec3b>(128, 60), 40, "near half kept, cut");
            AssertNear(new Vec3b(0, 255, 0), cut.At<Vec3b>(128, 450), 60, "far half over green, cut");
        }
    }

    private static Vec3b Inferno(byte v)
    {
        using var g = new Mat(1, 1, MatType.CV_8UC1, Scalar.All(v));
        using var c = new Mat();
        Cv2.ApplyColorMap(g, c, ColormapTypes.Inferno);
        return c.At<Vec3b>(0, 0);
    }
}

/// <summary><c>POST /api/v1/ai/process?steps=mesh</c> on the real models.</summary>
[Trait(TestKind.Name, TestKind.Integration)]
[Collection(SerialCollection.Name)]
public sealed class AiProcessMeshTests(AiGatewayFixture fixture) : IClassFixture<AiGatewayFixture>
{
    [Fact]
    public async Task MeshStepGivesTheFace468PointsInsideItsBox()
    {
        var astronaut = File.ReadAllBytes(TestEnv.TestData("astronaut.jpg"));
        using var r = await AiApiTests.PostImageAsync(
            fixture.Gateway.Client,
            "api/v1/ai/process?steps=mesh&format=json",
            astronaut
        );
        var text = await r.Content.ReadAsStringAsync();
        Assert.True(r.IsSuccessStatusCode, text);
        var body = JsonDocument.Parse(text).RootElement;
        var face = Assert.Single(body.GetProperty("faces").EnumerateArray());
        var box = face.GetProperty("box").EnumerateArray().Select(v => v.GetDouble()).ToArray();
        var mesh = face.GetProperty("mesh").EnumerateArray().Select(v => v.GetDouble()).ToArray();
        Assert.Equal(468 * 3, mesh.Length);
        // Every (x, y) within the detector's box, with a margin (the mesh covers the forehead and chin a little
        // beyond the box).
        var (w, h) = (box[2] - box[0], box[3] - box[1]);
        for (var i = 0; i < 468; i++)
        {
            Assert.InRange(mesh[3 * i], box[0] - 0.25 * w, box[2] + 0.25 * w);
            Assert.InRange(mesh[3 * i + 1], box[1] - 0.25 * h, box[3] + 0.25 * h);
        }
        Assert.True(body.GetProperty("step_ms").TryGetProperty("mesh", out _), text);
    }
}
