using System.Net;
using System.Text.Json;
using Blankend.Orleans.Grains.Devices;
using Blankend.Orleans.Tests.Gateway;
using Blankend.Orleans.Tests.Support;
using Xunit;

namespace Blankend.Orleans.Tests.Processing;

public sealed class ProcessingGatewayFixture : IAsyncLifetime
{
    public EmbeddedGateway Gateway { get; private set; } = null!;

    public async Task InitializeAsync() =>
        Gateway = await EmbeddedGateway.StartAsync(["--video_processing:idle_stop_ms=1000"]);

    public async Task DisposeAsync() => await Gateway.DisposeAsync();
}

/// <summary>
/// The processing path over the real gateway (embedded silo): /video_in -> ClientGrain -> DeviceWorkerGrain
/// (cpu0) -> /video_out. Each test turns processing on for its own source through the API (per-source
/// override), so the tests of this class do not see each other's settings.
/// </summary>
[Trait(TestKind.Name, TestKind.Integration)]
public sealed class ProcessingPathTests(ProcessingGatewayFixture fixture) : IClassFixture<ProcessingGatewayFixture>
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(15);
    private EmbeddedGateway Gw => fixture.Gateway;

    private static string NewSource() => "p-" + Guid.NewGuid().ToString("N")[..8];

    private async Task<(MetaViewer Viewer, System.Net.WebSockets.ClientWebSocket Camera)> ConnectAsync(string source)
    {
        var viewer = await MetaViewer.ConnectAsync(Gw.Ws($"/video_out?source={source}&meta=1"));
        var cam = await Ws.ConnectAsync(Gw.Ws($"/video_in?client_id={source}"));
        await VideoPathTests.WaitSubscribedAsync(Gw.StreamStatusAsync, source);
        return (viewer, cam);
    }

    /// <summary>Frames are sent one by one, each after the previous one came back: nothing is dropped on the way, so
    /// every frame must arrive, in exactly one form.</summary>
    private static async Task SendLockstepAsync(
        System.Net.WebSockets.ClientWebSocket cam,
        MetaViewer viewer,
        IReadOnlyList<byte[]> frames
    )
    {
        var start = viewer.Count;
        for (var i = 0; i < frames.Count; i++)
        {
            await cam.SendBinaryAsync(frames[i]);
            await viewer.WaitCountAsync(start + i + 1, Wait);
        }
    }

    [Fact]
    public async Task ProcessingOnDeliversEachFrameOnceAsProcessedJpegReencodedAtTheConfiguredQuality()
    {
        var source = NewSource();
        var config = await Gw.Client.ConfigureAsync(
            $$"""{"source":"{{source}}","enabled":true,"reencode_enabled":true,"jpeg_quality":20}"""
        );
        Assert.Contains(config.GetProperty("sources").EnumerateArray(), s =>
            s.GetProperty("source").GetString() == source
        );
        var (viewer, cam) = await ConnectAsync(source);
        await using var _ = viewer;

        var frames = Enumerable.Range(0, 10).Select(i => TestJpeg.Tagged(i)).ToArray();
        await SendLockstepAsync(cam, viewer, frames);
        await Task.Delay(300); // a second (raw) form of any frame would show up now
        var got = viewer.Frames;

        Assert.Equal(frames.Length, got.Count);
        Assert.All(got, f => Assert.Equal("processed", f.Meta.GetProperty("kind").GetString()));
        var seqs = got.Select(f => f.Meta.GetProperty("seq").GetInt64()).ToArray();
        Assert.Equal(seqs.Distinct().Count(), seqs.Length); // each frame in ONE form
        Assert.Equal(seqs.Order(), seqs);
        var (w, h) = ProcessingApi.DecodeSize(TestJpeg.Base);
        foreach (var (meta, data) in got)
        {
            Assert.Equal(data.Length, meta.GetProperty("bytes").GetInt32());
            Assert.Equal((w, h), ProcessingApi.DecodeSize(data)); // a valid JPEG of the same picture size
            Assert.True(
                data.Length < TestJpeg.Base.Length * 0.6,
                $"q=20 output {data.Length} B vs input {TestJpeg.Base.Length} B"
            );
            Assert.Equal(-1, TestJpeg.ReadTag(data)); // re-encoded: the input's COM segment is gone
        }
        // The same picture, at lower quality: close to the input, not identical.
        var diff = ProcessingApi.MeanAbsDiff(TestJpeg.Base, got[0].Data);
        Assert.InRange(diff, 0.5, 12);

        var status = await Gw.Client.WaitStatusAsync(s =>
            ProcessingApi.SourceStats(s, source)?.GetProperty("processed").GetInt64() == frames.Length
        );
        var st = ProcessingApi.SourceStats(status, source)!.Value;
        Assert.Equal(frames.Length, st.GetProperty("frames_in").GetInt64());
        Assert.Equal(0, st.GetProperty("bypassed").GetInt64());
        Assert.Equal(0, st.GetProperty("errors").GetInt64());
        Assert.Equal("cpu0", st.GetProperty("device").GetString());
        Assert.Equal(20, st.GetProperty("settings").GetProperty("jpeg_quality").GetInt32());
        await cam.CloseQuietlyAsync();
    }

    [Fact]
    public async Task HigherQualityGivesLargerOutputCloserToTheInput()
    {
        var low = NewSource();
        var high = NewSource();
        await Gw.Client.ConfigureAsync(
            $$"""{"source":"{{low}}","enabled":true,"reencode_enabled":true,"jpeg_quality":20}"""
        );
        await Gw.Client.ConfigureAsync(
            $$"""{"source":"{{high}}","enabled":true,"reencode_enabled":true,"jpeg_quality":95}"""
        );
        var results = new Dictionary<string, byte[]>();
        foreach (var source in new[] { low, high })
        {
            var (viewer, cam) = await ConnectAsync(source);
            await using var _ = viewer;
            await SendLockstepAsync(cam, viewer, [TestJpeg.Tagged(1)]);
            Assert.Equal("processed", viewer.Frames[0].Meta.GetProperty("kind").GetString());
            results[source] = viewer.Frames[0].Data;
            await cam.CloseQuietlyAsync();
        }
        Assert.True(
            results[low].Length < results[high].Length,
            $"q20 {results[low].Length} B, q95 {results[high].Length} B"
        );
        Assert.True(
            ProcessingApi.MeanAbsDiff(TestJpeg.Base, results[high])
                < ProcessingApi.MeanAbsDiff(TestJpeg.Base, results[low])
        );
    }

    [Fact]
    public async Task ProcessingOffDeliversRawBytesIdentical()
    {
        var source = NewSource();
        var (viewer, cam) = await ConnectAsync(source);
        await using var _ = viewer;
        var frames = Enumerable.Range(0, 5).Select(i => TestJpeg.Tagged(i)).ToArray();
        await SendLockstepAsync(cam, viewer, frames);
        var got = viewer.Frames;
        Assert.Equal(frames.Length, got.Count);
        for (var i = 0; i < frames.Length; i++)
        {
            Assert.Equal("raw", got[i].Meta.GetProperty("kind").GetString());
            Assert.Equal(frames[i], got[i].Data);
        }
        var st = ProcessingApi.SourceStats(await Gw.Client.GetJsonAsync(ProcessingApi.Status), source);
        Assert.NotNull(st);
        Assert.False(st!.Value.GetProperty("enabled").GetBoolean());
        Assert.Equal(0, st.Value.GetProperty("frames_in").GetInt64());
        await cam.CloseQuietlyAsync();
    }

    [Fact]
    public async Task PerSourceOverrideTurnsProcessingOnForOneSourceOnlyAndResetTurnsItBackOff()
    {
        var on = NewSource();
        var off = NewSource();
        await Gw.Client.ConfigureAsync($$"""{"source":"{{on}}","enabled":true,"reencode_enabled":true}""");
        var (vOn, camOn) = await ConnectAsync(on);
        var (vOff, camOff) = await ConnectAsync(off);
        await using var a = vOn;
        await using var b = vOff;
        var frame = TestJpeg.Tagged(9);
        await SendLockstepAsync(camOn, vOn, [frame]);
        await SendLockstepAsync(camOff, vOff, [frame]);
        Assert.Equal("processed", vOn.Frames[0].Meta.GetProperty("kind").GetString());
        Assert.NotEqual(frame, vOn.Frames[0].Data);
        Assert.Equal("raw", vOff.Frames[0].Meta.GetProperty("kind").GetString());
        Assert.Equal(frame, vOff.Frames[0].Data);

        // Removing the override: the source follows the global setting (off) again, from the next frame on.
        var config = await Gw.Client.ConfigureAsync($$"""{"source":"{{on}}","reset":true}""");
        Assert.DoesNotContain(config.GetProperty("sources").EnumerateArray(), s =>
            s.GetProperty("source").GetString() == on
        );
        await SendLockstepAsync(camOn, vOn, [frame]);
        Assert.Equal("raw", vOn.Frames[1].Meta.GetProperty("kind").GetString());
        Assert.Equal(frame, vOn.Frames[1].Data);
        await camOn.CloseQuietlyAsync();
        await camOff.CloseQuietlyAsync();
    }

    [Fact]
    public async Task CorruptJpegIsCountedAndForwardedRawAndTheWorkerKeepsRunning()
    {
        var source = NewSource();
        await Gw.Client.ConfigureAsync(
            $$"""{"source":"{{source}}","enabled":true,"reencode_enabled":true,"jpeg_quality":50}"""
        );
        var (viewer, cam) = await ConnectAsync(source);
        await using var _ = viewer;
        var corrupt = ProcessingApi.CorruptJpeg();
        Assert.Null(Blankend.Orleans.Media.Jpeg.Check(corrupt)); // it passes the ingest check

        await SendLockstepAsync(cam, viewer, [TestJpeg.Tagged(1), corrupt, TestJpeg.Tagged(2)]);
        var got = viewer.Frames;
        Assert.Equal(3, got.Count);
        Assert.Equal("processed", got[0].Meta.GetProperty("kind").GetString());
        Assert.Equal("raw", got[1].Meta.GetProperty("kind").GetString()); // not lost: delivered as it came
        Assert.Equal(corrupt, got[1].Data);
        Assert.Equal("processed", got[2].Meta.GetProperty("kind").GetString()); // the worker still runs
        ProcessingApi.DecodeSize(got[2].Data);

        var status = await Gw.Client.WaitStatusAsync(s =>
            ProcessingApi.SourceStats(s, source)?.GetProperty("errors").GetInt64() == 1
        );
        var st = ProcessingApi.SourceStats(status, source)!.Value;
        Assert.Equal(2, st.GetProperty("processed").GetInt64());
        Assert.Contains("decode", st.GetProperty("last_error").GetString());
        Assert.True(ProcessingApi.Device(status, "cpu0").GetProperty("errors").GetInt64() >= 1);
        Assert.True(status.GetProperty("totals").GetProperty("errors").GetInt64() >= 1);
        await cam.CloseQuietlyAsync();
    }

    [Fact]
    public async Task JpegDeclaringAGigapixelPictureIsForwardedRawWithoutBeingDecoded()
    {
        var source = NewSource();
        await Gw.Client.ConfigureAsync($$"""{"source":"{{source}}","enabled":true,"reencode_enabled":true}""");
        var (viewer, cam) = await ConnectAsync(source);
        await using var _ = viewer;
        // A valid JPEG stream whose SOF header claims 60000x60000 (a decompression bomb of ~10 GB).
        var bomb = TestJpeg.Tagged(9).ToArray();
        var sof = Enumerable.Range(2, bomb.Length - 10).First(i => bomb[i] == 0xFF && bomb[i + 1] is 0xC0 or 0xC2);
        bomb[sof + 5] = 0xEA;
        bomb[sof + 6] = 0x60;
        bomb[sof + 7] = 0xEA;
        bomb[sof + 8] = 0x60;

        await SendLockstepAsync(cam, viewer, [bomb, TestJpeg.Tagged(10)]);
        Assert.Equal("raw", viewer.Frames[0].Meta.GetProperty("kind").GetString());
        Assert.Equal(bomb, viewer.Frames[0].Data);
        Assert.Equal("processed", viewer.Frames[1].Meta.GetProperty("kind").GetString());
        var status = await Gw.Client.WaitStatusAsync(s =>
            ProcessingApi.SourceStats(s, source)?.GetProperty("errors").GetInt64() == 1
        );
        Assert.Contains(
            "60000x60000",
            ProcessingApi.SourceStats(status, source)!.Value.GetProperty("last_error").GetString()
        );
        await cam.CloseQuietlyAsync();
    }

    [Fact]
    public async Task EnabledWithoutAnyStepDeliversTheSameBytesAsProcessed()
    {
        var source = NewSource();
        await Gw.Client.ConfigureAsync($$"""{"source":"{{source}}","enabled":true,"reencode_enabled":false}""");
        var (viewer, cam) = await ConnectAsync(source);
        await using var _ = viewer;
        var frame = TestJpeg.Tagged(4);
        await SendLockstepAsync(cam, viewer, [frame]);
        Assert.Equal("processed", viewer.Frames[0].Meta.GetProperty("kind").GetString());
        Assert.Equal(frame, viewer.Frames[0].Data);
        await cam.CloseQuietlyAsync();
    }

    [Fact]
    public async Task GpuStatusReportsWhatThisMachinesGpuDetectionFinds()
    {
        // Expectations from the service's own detection on this machine: no GPU here, N GPUs on a GPU host.
        var detected = GpuDetector.Detect();
        var n = detected.Gpus.Length;
        var gpu = await Gw.Client.GetJsonAsync(ProcessingApi.Gpu);
        Assert.Equal(n > 0, gpu.GetProperty("gpu_available").GetBoolean());
        Assert.Equal(n, gpu.GetProperty("gpu_count").GetInt32());
        // The JPEG codec runs on the CPU in this build, GPU or not, and the reason says which case it is.
        Assert.Equal("CPU", gpu.GetProperty("provider").GetString());
        Assert.Contains(n == 0 ? "no GPU" : $"{n} GPU(s) present", gpu.GetProperty("provider_reason").GetString());
        var silo = Assert.Single(gpu.GetProperty("silos").EnumerateArray());
        Assert.Equal(
            [.. detected.Gpus.Select(g => $"gpu{g.Index}"), "cpu0"],
            silo.GetProperty("devices").EnumerateArray().Select(d => d.GetString()!).ToArray()
        );
        Assert.Equal(n, silo.GetProperty("gpus").GetArrayLength());
        Assert.Equal(detected.Detection, silo.GetProperty("detection").GetString());
        var cpu0 = gpu.GetProperty("devices")
            .EnumerateArray()
            .Single(d => d.GetProperty("device").GetString() == "cpu0");
        Assert.Equal("CPU", cpu0.GetProperty("provider").GetString());
    }

    [Theory]
    [InlineData("{\"enabled\":true", "malformed JSON")]
    [InlineData("not json at all", "malformed JSON")]
    [InlineData("", "empty body")]
    [InlineData("null", "null")]
    [InlineData("[]", "an array")]
    [InlineData("{\"enabled\":true,\"colour\":\"red\"}", "unknown field")]
    [InlineData("{\"Enabled\":true}", "wrong case (unknown field)")]
    [InlineData("{\"jpeg_quality\":0}", "jpeg_quality 0")]
    [InlineData("{\"jpeg_quality\":101}", "jpeg_quality 101")]
    [InlineData("{\"jpeg_quality\":50.5}", "jpeg_quality not an integer")]
    [InlineData("{\"jpeg_quality\":\"80\"}", "jpeg_quality as a string")]
    [InlineData("{\"fps_limit\":-1}", "fps_limit -1")]
    [InlineData("{\"fps_limit\":1e9}", "fps_limit too large")]
    [InlineData("{\"workers\":0}", "workers 0")]
    [InlineData("{\"enabled\":\"yes\"}", "enabled as a string")]
    [InlineData("{\"enabled\":1}", "enabled as a number")]
    [InlineData("{\"enabled\":true,\"enabled\":false}", "duplicate key")]
    [InlineData("{\"source\":\"has space\",\"enabled\":true}", "bad source id")]
    [InlineData("{\"source\":\"cam1\",\"workers\":2}", "global setting with a source")]
    [InlineData("{\"reset\":true}", "reset without a source")]
    [InlineData("{}", "no setting")]
    public async Task BadConfigBodiesAnswer400ProblemJsonAndChangeNothing(string body, string why)
    {
        var before = await Gw.Client.GetJsonAsync(ProcessingApi.Config);
        using var r = await Gw.Client.PostConfigAsync(body);
        Assert.True(
            r.StatusCode == HttpStatusCode.BadRequest,
            $"{why}: {(int)r.StatusCode} {await r.Content.ReadAsStringAsync()}"
        );
        Assert.Equal("application/problem+json", r.Content.Headers.ContentType?.MediaType);
        var problem = JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(400, problem.GetProperty("status").GetInt32());
        Assert.False(string.IsNullOrEmpty(problem.GetProperty("detail").GetString()));
        // Tests of one class run one at a time: nothing else changed the config meanwhile, so the version and
        // everything else must be exactly as before, in the config and in the status.
        var after = await Gw.Client.GetJsonAsync(ProcessingApi.Config);
        Assert.Equal(before.ToString(), after.ToString());
        var status = await Gw.Client.GetJsonAsync(ProcessingApi.Status);
        Assert.Equal(before.GetProperty("version").GetInt64(), status.GetProperty("config_version").GetInt64());
        Assert.Equal(before.GetProperty("global").ToString(), status.GetProperty("global").ToString());
    }

    [Fact]
    public async Task AJpegBodyIsRefusedWith400()
    {
        var before = await Gw.Client.GetJsonAsync(ProcessingApi.Config);
        foreach (var type in new[] { "image/jpeg", "application/json" })
        {
            var content = new ByteArrayContent(TestJpeg.Base);
            content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue(type);
            using var r = await Gw.Client.PostAsync(ProcessingApi.Config, content);
            Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
            Assert.Equal("application/problem+json", r.Content.Headers.ContentType?.MediaType);
        }
        var after = await Gw.Client.GetJsonAsync(ProcessingApi.Config);
        Assert.Equal(before.ToString(), after.ToString());
    }
}
