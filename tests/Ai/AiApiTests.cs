using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Blankend.Orleans.Tests.Processing;
using Blankend.Orleans.Tests.Support;
using OpenCvSharp;
using Xunit;

namespace Blankend.Orleans.Tests.Ai;

public sealed class AiGatewayFixture : IAsyncLifetime
{
    public EmbeddedGateway Gateway { get; private set; } = null!;

    public async Task InitializeAsync() =>
        Gateway = await EmbeddedGateway.StartAsync(["--video_processing:idle_stop_ms=1000"]);

    public async Task DisposeAsync() => await Gateway.DisposeAsync();
}

/// <summary>/api/v1/ai/* and /api/v1/realtime_pipeline/* over the real gateway (embedded silo, real models).</summary>
[Trait(TestKind.Name, TestKind.Integration)]
[Collection(SerialCollection.Name)]
public sealed class AiApiTests(AiGatewayFixture fixture) : IClassFixture<AiGatewayFixture>
{
    private HttpClient Http => fixture.Gateway.Client;

    public static byte[] Astronaut => File.ReadAllBytes(TestEnv.TestData("astronaut.jpg"));

    public static async Task<HttpResponseMessage> PostImageAsync(
        HttpClient http,
        string path,
        byte[] body,
        string type = "image/jpeg"
    )
    {
        var content = new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue(type);
        return await http.PostAsync(path, content);
    }

    private static async Task AssertProblemAsync(HttpResponseMessage r, HttpStatusCode code, string mention)
    {
        var body = await r.Content.ReadAsStringAsync();
        Assert.True(code == r.StatusCode, $"expected {(int)code}, got {(int)r.StatusCode}: {body}");
        Assert.Equal("application/problem+json", r.Content.Headers.ContentType?.MediaType);
        Assert.Contains(mention, body, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task StatusNamesTheCpuProviderAndEachModelWithWhyTheOptionalOnesAreUnavailable()
    {
        var s = await Http.GetJsonAsync("api/v1/ai/status");
        // Derived from this machine: CPU without a GPU; CPU and a named fallback with a GPU the build cannot use.
        if (!GpuHost.Detected)
            Assert.Equal("CPU", s.GetProperty("provider").GetString());
        else if (!GpuHost.CudaBuild)
            Assert.True(s.GetProperty("provider_fallback").GetBoolean());
        else
            Assert.Contains(s.GetProperty("provider").GetString(), new[] { "CPU", "CUDA" });
        Assert.Contains("CPUExecutionProvider", s.GetProperty("providers").EnumerateArray().Select(p => p.GetString()));
        var models = s.GetProperty("models").EnumerateArray().ToDictionary(m => m.GetProperty("kind").GetString()!);
        foreach (var shipped in new[] { "face_detect", "face_mesh", "segmentation", "segmentation_landscape" })
            Assert.True(models[shipped].GetProperty("available").GetBoolean(), shipped);
        foreach (var optional in new[] { "swap", "rvm", "depth" })
        {
            Assert.False(models[optional].GetProperty("available").GetBoolean(), optional);
            Assert.Contains("no model configured", models[optional].GetProperty("reason").GetString());
        }
        Assert.Single(s.GetProperty("silos").EnumerateArray());
        Assert.False(s.GetProperty("realtime").GetProperty("enabled").GetBoolean());
    }

    [Theory]
    [InlineData("api/v1/ai/process?steps=detect,teleport", "unknown step")]
    [InlineData("api/v1/ai/process?format=bmp", "format must be jpeg or json")]
    public async Task BadQueryIsRefusedWith400ProblemJson(string path, string mention)
    {
        using var r = await PostImageAsync(Http, path, Astronaut);
        await AssertProblemAsync(r, HttpStatusCode.BadRequest, mention);
    }

    [Fact]
    public async Task MalformedTruncatedAndEmptyBodiesAreRefusedWith400AndWrongTypesWith415()
    {
        using (
            var r = await PostImageAsync(Http, "api/v1/ai/process", Encoding.UTF8.GetBytes("definitely not an image"))
        )
            await AssertProblemAsync(r, HttpStatusCode.BadRequest, "not a JPEG or PNG");
        // Cut before its SOF: the header gives no size, refused like an oversize one; cut after it: no decode.
        using (var r = await PostImageAsync(Http, "api/v1/ai/process", Astronaut[..600]))
            await AssertProblemAsync(r, HttpStatusCode.BadRequest, "does not give its size");
        using (var r = await PostImageAsync(Http, "api/v1/ai/process", Astronaut[..4000]))
            await AssertProblemAsync(r, HttpStatusCode.BadRequest, "does not decode");
        using (var r = await PostImageAsync(Http, "api/v1/ai/process", []))
            await AssertProblemAsync(r, HttpStatusCode.BadRequest, "empty body");
        // A type a plain cross-site form could send: refused before the endpoint (docs/security.md).
        using (var r = await PostImageAsync(Http, "api/v1/ai/process", Astronaut, "text/plain"))
            await AssertProblemAsync(r, HttpStatusCode.UnsupportedMediaType, "image/jpeg or image/png");
        using (var r = await PostImageAsync(Http, "api/v1/ai/process", Astronaut, "application/octet-stream"))
            await AssertProblemAsync(r, HttpStatusCode.UnsupportedMediaType, "image/jpeg or image/png");
        // A hostile header: PNG magic, then garbage.
        byte[] fakePng = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A, .. new byte[64]];
        using (var r = await PostImageAsync(Http, "api/v1/ai/process", fakePng, "image/png"))
            await AssertProblemAsync(r, HttpStatusCode.BadRequest, "does not give its size");
    }

    [Fact]
    public async Task ImagesDeclaringGigapixelSizesAreRefusedBeforeDecoding()
    {
        // A real JPEG whose SOF0 claims 65000x65000, and a PNG whose IHDR claims 100000x100000.
        var jpeg = Astronaut.ToArray();
        var sof = Enumerable.Range(2, jpeg.Length - 10).First(i => jpeg[i] == 0xFF && jpeg[i + 1] is 0xC0 or 0xC2);
        jpeg[sof + 5] = 0xFD;
        jpeg[sof + 6] = 0xE8;
        jpeg[sof + 7] = 0xFD;
        jpeg[sof + 8] = 0xE8;
        using (var r = await PostImageAsync(Http, "api/v1/ai/process", jpeg))
            await AssertProblemAsync(r, HttpStatusCode.BadRequest, "65000x65000");
        byte[] png =
        [
            0x89,
            (byte)'P',
            (byte)'N',
            (byte)'G',
            0x0D,
            0x0A,
            0x1A,
            0x0A,
            0,
            0,
            0,
            13,
            (byte)'I',
            (byte)'H',
            (byte)'D',
            (byte)'R',
            0x00,
            0x01,
            0x86,
            0xA0,
            0x00,
            0x01,
            0x86,
            0xA0,
            8,
            2,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
        ];
        using (var r = await PostImageAsync(Http, "api/v1/ai/reference", png, "image/png"))
            await AssertProblemAsync(r, HttpStatusCode.BadRequest, "megapixels");
    }

    [Fact]
    public async Task ImagesWhoseHeaderGivesNoSizeAreRefusedLikeOversizeOnes()
    {
        // A JPEG that reaches its scan (SOS) with no SOF before it: libjpeg would have to guess; refused.
        var jpeg = Astronaut;
        var sof = Enumerable.Range(2, jpeg.Length - 10).First(i => jpeg[i] == 0xFF && jpeg[i + 1] is 0xC0 or 0xC2);
        var length = (jpeg[sof + 2] << 8) | jpeg[sof + 3];
        byte[] noSof = [.. jpeg[..sof], .. jpeg[(sof + 2 + length)..]];
        using (var r = await PostImageAsync(Http, "api/v1/ai/process", noSof))
            await AssertProblemAsync(r, HttpStatusCode.BadRequest, "does not give its size");
        // A zero width in the SOF is no size either.
        var zero = Astronaut;
        zero[sof + 7] = 0;
        zero[sof + 8] = 0;
        using (var r = await PostImageAsync(Http, "api/v1/ai/process", zero))
            await AssertProblemAsync(r, HttpStatusCode.BadRequest, "does not give its size");
    }

    [Fact]
    public async Task OversizeBodyIsRefusedWith413()
    {
        var big = new byte[17 * 1024 * 1024];
        Astronaut.CopyTo(big, 0);
        using var r = await PostImageAsync(Http, "api/v1/ai/process", big);
        await AssertProblemAsync(r, HttpStatusCode.RequestEntityTooLarge, "max_image_bytes");
    }

    [Fact]
    public async Task DepthWithoutADepthModelIs503NamingTheStep()
    {
        using var r = await PostImageAsync(Http, "api/v1/ai/process?steps=depth", Astronaut);
        await AssertProblemAsync(r, HttpStatusCode.ServiceUnavailable, "depth");
    }

    [Fact]
    public async Task DetectAsJsonFindsTheOneFaceAndAsJpegDrawsIt()
    {
        using (var r = await PostImageAsync(Http, "api/v1/ai/process?steps=detect&format=json", Astronaut))
        {
            var text = await r.Content.ReadAsStringAsync();
            Assert.True(r.IsSuccessStatusCode, text);
            var body = JsonDocument.Parse(text).RootElement;
            Assert.Equal(512, body.GetProperty("width").GetInt32());
            var face = Assert.Single(body.GetProperty("faces").EnumerateArray());
            var box = face.GetProperty("box").EnumerateArray().Select(v => v.GetDouble()).ToArray();
            // LICENSE-NOTES: (179,81)-(272,174) on this image.
            Assert.InRange(box[0], 170, 189);
            Assert.InRange(box[1], 72, 91);
            Assert.InRange(box[2], 262, 282);
            Assert.InRange(box[3], 164, 184);
            // One-shot work runs on the silo's first GPU device when it has one (CUDA with the GPU build).
            Assert.Equal(GpuHost.CudaBuild ? "CUDA" : "CPU", body.GetProperty("provider").GetString());
        }
        using (var r = await PostImageAsync(Http, "api/v1/ai/process", Astronaut))
        {
            Assert.True(r.IsSuccessStatusCode);
            Assert.Equal("image/jpeg", r.Content.Headers.ContentType?.MediaType);
            var jpeg = await r.Content.ReadAsByteArrayAsync();
            Assert.Equal((512, 512), ProcessingApi.DecodeSize(jpeg));
            // Boxes and keypoints drawn: the picture changed around the face, and only a little elsewhere.
            Assert.True(ProcessingApi.MeanAbsDiff(Astronaut, jpeg) > 0.3, "nothing was drawn");
        }
    }

    [Fact]
    public async Task MatteOverGreenHasGreenCornersAndKeepsTheFace()
    {
        using var r = await PostImageAsync(
            Http,
            "api/v1/ai/process?steps=matte",
            File.ReadAllBytes(TestEnv.TestData("astronaut.png")),
            "image/png"
        );
        Assert.True(r.IsSuccessStatusCode, await r.Content.ReadAsStringAsync());
        using var out1 = Cv2.ImDecode(await r.Content.ReadAsByteArrayAsync(), ImreadModes.Color);
        var corner = out1.At<Vec3b>(5, 506); // top-right: background
        Assert.True(
            corner.Item1 > 200 && corner.Item0 < 60 && corner.Item2 < 60,
            $"top-right corner is {corner} (BGR), not green"
        );
        var face = out1.At<Vec3b>(130, 225); // the face centre: kept
        Assert.False(face.Item1 > 200 && face.Item0 < 60 && face.Item2 < 60, "the face was replaced by the background");
    }

    [Fact]
    public async Task SwapWithoutAReferenceFaceIs400AndAReferenceWithoutAFaceIsRefused()
    {
        await Http.DeleteAsync("api/v1/ai/reference");
        using (var r = await PostImageAsync(Http, "api/v1/ai/process?steps=swap", Astronaut))
            await AssertProblemAsync(r, HttpStatusCode.BadRequest, "reference face");
        using var blank = new Mat(240, 320, MatType.CV_8UC3, new Scalar(40, 120, 200));
        Cv2.ImEncode(".jpg", blank, out var noFace);
        using (var r = await PostImageAsync(Http, "api/v1/ai/reference", noFace))
            await AssertProblemAsync(r, HttpStatusCode.BadRequest, "face");
        using (var r = await PostImageAsync(Http, "api/v1/ai/reference", Encoding.UTF8.GetBytes("<html>")))
            await AssertProblemAsync(r, HttpStatusCode.BadRequest, "not a JPEG or PNG");
    }

    [Fact]
    public async Task UploadedReferenceFaceIsUsedBySwapAndChangesOnlyTheFace()
    {
        // The reference: the astronaut mirrored and tinted, so the swapped face differs visibly from the original.
        using var src = Cv2.ImDecode(Astronaut, ImreadModes.Color);
        using var flipped = src.Flip(FlipMode.Y);
        using var tinted = new Mat();
        Cv2.Add(flipped, new Scalar(0, 0, 60), tinted);
        Cv2.ImEncode(".jpg", tinted, out var reference);
        using (var r = await PostImageAsync(Http, "api/v1/ai/reference", reference))
        {
            var text = await r.Content.ReadAsStringAsync();
            Assert.True(r.IsSuccessStatusCode, text);
            Assert.True(JsonDocument.Parse(text).RootElement.GetProperty("version").GetInt64() > 0);
        }
        var config = await Http.GetJsonAsync("api/v1/realtime_pipeline/config");
        Assert.True(config.GetProperty("reference_version").GetInt64() > 0);

        using var resp = await PostImageAsync(Http, "api/v1/ai/process?steps=swap", Astronaut);
        Assert.True(resp.IsSuccessStatusCode, await resp.Content.ReadAsStringAsync());
        using var swapped = Cv2.ImDecode(await resp.Content.ReadAsByteArrayAsync(), ImreadModes.Color);
        Assert.False(swapped.Empty());
        // Inside the face box the picture changed; well outside it, no more than re-encoding at the same quality
        // changes (the baseline, measured on the same picture).
        Cv2.ImEncode(".jpg", src, out var reencoded, new ImageEncodingParam(ImwriteFlags.JpegQuality, 80));
        using var baseline = Cv2.ImDecode(reencoded, ImreadModes.Color);
        var below = new Rect(0, 300, 512, 212);
        var inFace = MeanAbsDiff(src, swapped, new Rect(190, 95, 70, 70));
        var outside = MeanAbsDiff(src, swapped, below);
        var noise = MeanAbsDiff(src, baseline, below);
        Assert.True(inFace > 4 * noise + 2, $"face region diff {inFace:F2} (JPEG noise {noise:F2})");
        Assert.True(outside < noise + 0.5, $"outside diff {outside:F2} vs JPEG re-encoding alone {noise:F2}");
        await Http.DeleteAsync("api/v1/ai/reference");
    }

    public static double MeanAbsDiff(Mat a, Mat b, Rect r)
    {
        using var da = new Mat(a, r);
        using var db = new Mat(b, r);
        using var d = new Mat();
        Cv2.Absdiff(da, db, d);
        var m = Cv2.Mean(d);
        return (m.Val0 + m.Val1 + m.Val2) / 3;
    }

    [Fact]
    public async Task RealtimeConfigValidatesEverythingAndChangesNothingOnA400()
    {
        var before = await Http.GetJsonAsync("api/v1/realtime_pipeline/config");
        // Each bad body with a word its problem detail must name (the field, or what is wrong).
        (string Json, string Mention)[] bad =
        [
            ("""{"steps":"matte,teleport"}""", "teleport"),
            ("""{"workers":0}""", "workers"),
            ("""{"face_detect_interval":0}""", "face_detect_interval"),
            ("""{"background":{"color":"green"}}""", "background.color"),
            ("""{"background":{"kind":"image"}}""", "POST /api/v1/ai/background"),
            ("""{"depth_mode":"sideways"}""", "depth_mode"),
            ("""{"enabled":"yes"}""", "enabled"),
            ("""{"unknown_key":1}""", "unknown_key"),
            ("""{"source":"cam 1","steps":"detect"}""", "source"),
            ("""{"source":"camx","workers":2}""", "only enabled, steps and reset"),
            ("""{"reset":true}""", "reset needs a source"),
            ("""{}""", "no setting given"),
            ("""[1,2]""", "invalid realtime config"),
            ("""{"steps":""", "invalid realtime config"),
        ];
        foreach (var (json, mention) in bad)
        {
            using var r = await Http.PostAsync(
                "api/v1/realtime_pipeline/config",
                new StringContent(json, Encoding.UTF8, "application/json")
            );
            await AssertProblemAsync(r, HttpStatusCode.BadRequest, mention);
        }
        var after = await Http.GetJsonAsync("api/v1/realtime_pipeline/config");
        Assert.Equal(before.GetProperty("config_version").GetInt64(), after.GetProperty("config_version").GetInt64());
    }

    [Fact]
    public async Task RealtimeConfigPerSourceStepsShowInTheConfigAndTheStatus()
    {
        var source = "rt-" + Guid.NewGuid().ToString("N")[..8];
        using (
            var r = await Http.PostAsync(
                "api/v1/realtime_pipeline/config",
                new StringContent(
                    $$"""{"source":"{{source}}","enabled":true,"steps":"detect,mesh"}""",
                    Encoding.UTF8,
                    "application/json"
                )
            )
        )
        {
            var text = await r.Content.ReadAsStringAsync();
            Assert.True(r.IsSuccessStatusCode, text);
            var s = JsonDocument
                .Parse(text)
                .RootElement.GetProperty("sources")
                .EnumerateArray()
                .Single(x => x.GetProperty("source").GetString() == source);
            Assert.Equal("detect,mesh", s.GetProperty("steps").GetString());
        }
        var status = await Http.GetJsonAsync("api/v1/realtime_pipeline/status");
        var inStatus = status
            .GetProperty("config")
            .GetProperty("sources")
            .EnumerateArray()
            .Single(x => x.GetProperty("source").GetString() == source);
        Assert.Equal("detect,mesh", inStatus.GetProperty("steps").GetString());
        Assert.True(inStatus.GetProperty("enabled").GetBoolean());
        using var reset = await Http.PostAsync(
            "api/v1/realtime_pipeline/config",
            new StringContent($$"""{"source":"{{source}}","reset":true}""", Encoding.UTF8, "application/json")
        );
        Assert.True(reset.IsSuccessStatusCode);
    }
}

/// <summary>The AI instruments on /metrics after real work: sessions by provider, step time, skips, detector
/// runs.</summary>
[Trait(TestKind.Name, TestKind.Integration)]
[Collection(SerialCollection.Name)]
public sealed class AiMetricsTests
{
    [Fact]
    public async Task MetricsShowTheLoadedSessionsOnCpuTheStepTimesAndTheSkipsWithTheirReason()
    {
        await using var gw = await EmbeddedGateway.StartAsync();
        using (
            var r = await AiApiTests.PostImageAsync(
                gw.Client,
                "api/v1/ai/process?steps=detect&format=json",
                AiApiTests.Astronaut
            )
        )
            Assert.True(r.IsSuccessStatusCode);
        // A live source with swap on and no reference face: the frame goes out, the swap skip is counted.
        var source = "met-" + Guid.NewGuid().ToString("N")[..8];
        using (
            var r = await gw.Client.PostAsync(
                "api/v1/realtime_pipeline/config",
                new StringContent(
                    $$"""{"source":"{{source}}","enabled":true,"steps":"swap"}""",
                    Encoding.UTF8,
                    "application/json"
                )
            )
        )
            Assert.True(r.IsSuccessStatusCode);
        var viewer = await MetaViewer.ConnectAsync(gw.Ws($"/video_out?source={source}&meta=1"));
        await using (viewer)
        {
            using var cam = await Ws.ConnectAsync(gw.Ws($"/video_in?client_id={source}"));
            await Gateway.VideoPathTests.WaitSubscribedAsync(gw.StreamStatusAsync, source);
            await cam.SendBinaryAsync(AiApiTests.Astronaut);
            await viewer.WaitCountAsync(1, TimeSpan.FromSeconds(20));
        }

        var m = await gw.ScrapeAsync();
        Assert.Contains(m.Find("blankend_ai_sessions"), s =>
            s.Labels.GetValueOrDefault("model") == "face_detect" && s.Labels.GetValueOrDefault("provider") == "CPU"
        );
        Assert.True(
            m.Find("blankend_ai_step_duration_milliseconds_count")
                .Any(s => s.Labels.GetValueOrDefault("step") == "detect" && s.Value >= 1),
            m.Raw
        );
        Assert.True(
            m.Find("blankend_ai_inference_duration_milliseconds_count")
                .Any(s => s.Labels.GetValueOrDefault("provider") == "CPU" && s.Value >= 1),
            m.Raw
        );
        Assert.True((m.Value("blankend_ai_detector_runs_total") ?? 0) >= 2, m.Raw);
        Assert.Contains(m.Find("blankend_ai_skipped_total"), s =>
            s.Labels.GetValueOrDefault("step") == "swap"
            && s.Labels.GetValueOrDefault("reason") == "no reference face"
            && s.Value >= 1
        );
    }
}
