using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Blankend.Orleans.Tests.Gateway;
using Blankend.Orleans.Tests.Processing;
using Blankend.Orleans.Tests.Relay;
using Blankend.Orleans.Tests.Support;
using OpenCvSharp;
using Xunit;

namespace Blankend.Orleans.Tests.Ai;

/// <summary>
/// The AI steps on live frames: /video_in (and the ZeroMQ bus) -> ClientGrain -> DeviceWorkerGrain(cpu0) with the
/// real models -> /video_out (and back to the bus). Each test starts its own gateway (embedded silo): the
/// realtime settings and the step counters are per cluster.
/// </summary>
[Trait(TestKind.Name, TestKind.Integration)]
[Collection(SerialCollection.Name)]
public sealed class RealtimePathTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);

    private static byte[] Astronaut => File.ReadAllBytes(TestEnv.TestData("astronaut.jpg"));

    private static async Task<JsonElement> StepAsync(HttpClient http, string step)
    {
        var status = await http.GetJsonAsync("api/v1/realtime_pipeline/status");
        return status.GetProperty("steps").EnumerateArray().Single(s => s.GetProperty("name").GetString() == step);
    }

    [Fact]
    public async Task DetectEveryFifthFrameRunsTheDetectorTwiceInTenFramesAndViewersGetTheFacesInMeta()
    {
        await using var gw = await EmbeddedGateway.StartAsync(["--ai:face_detect_interval=5"]);
        var source = TestEnv.NewId("face");
        await RealtimeApi.ConfigureAsync(gw.Client, $$"""{"source":"{{source}}","enabled":true,"steps":"detect"}""");
        var (viewer, cam) = await RealtimeApi.ConnectAsync(gw, source);
        await using var _ = viewer;

        for (var i = 0; i < 10; i++)
        {
            await cam.SendBinaryAsync(Astronaut);
            await viewer.WaitCountAsync(i + 1, Wait);
        }
        var frames = viewer.Frames;
        Assert.Equal(10, frames.Count);
        foreach (var (meta, data) in frames)
        {
            Assert.Equal("processed", meta.GetProperty("kind").GetString());
            var face = Assert.Single(meta.GetProperty("faces").EnumerateArray());
            var box = face.GetProperty("box").EnumerateArray().Select(v => v.GetDouble()).ToArray();
            Assert.InRange(box[0], 170, 189);
            Assert.InRange(box[3], 164, 184);
            Assert.Equal(12, face.GetProperty("keypoints").GetArrayLength());
            Assert.Equal((512, 512), ProcessingApi.DecodeSize(data));
        }
        // FACE_DETECT_INTERVAL=5: the detector ran on frames 0 and 5 only; the other 8 reused the boxes.
        var detect = await StepAsync(gw.Client, "detect");
        Assert.Equal(2, detect.GetProperty("runs").GetInt64());
    }

    [Fact]
    public async Task MatteOnLiveFramesCompositesOverGreenAndTheStatusShowsTheStepTime()
    {
        await using var gw = await EmbeddedGateway.StartAsync();
        var source = TestEnv.NewId("matte");
        await RealtimeApi.ConfigureAsync(gw.Client, $$"""{"source":"{{source}}","enabled":true,"steps":"matte"}""");
        var (viewer, cam) = await RealtimeApi.ConnectAsync(gw, source);
        await using var _ = viewer;
        for (var i = 0; i < 3; i++)
        {
            await cam.SendBinaryAsync(Astronaut);
            await viewer.WaitCountAsync(i + 1, Wait);
        }
        var (meta, data) = viewer.Frames[^1];
        Assert.Equal("processed", meta.GetProperty("kind").GetString());
        using var img = Cv2.ImDecode(data, ImreadModes.Color);
        var corner = img.At<Vec3b>(5, 506);
        Assert.True(
            corner.Item1 > 200 && corner.Item0 < 60 && corner.Item2 < 60,
            $"top-right corner {corner} is not green"
        );
        var matte = await StepAsync(gw.Client, "matte");
        Assert.True(matte.GetProperty("frames").GetInt64() >= 3);
        Assert.True(matte.GetProperty("ms_per_frame").GetDouble() > 0);
    }

    [Fact]
    public async Task SimpleForwardDeliversTheInputBytesUnchangedWithoutInference()
    {
        await using var gw = await EmbeddedGateway.StartAsync(
            ["--realtime_pipeline:enabled=true", "--realtime_pipeline:steps=detect,matte"],
            new System.Collections.Hashtable { ["SIMPLE_FORWARD"] = "1" }
        );
        var source = TestEnv.NewId("fwd");
        var (viewer, cam) = await RealtimeApi.ConnectAsync(gw, source);
        await using var _ = viewer;
        var input = TestJpeg.Tagged(7);
        await cam.SendBinaryAsync(input);
        try
        {
            await viewer.WaitCountAsync(1, Wait);
        }
        catch (TimeoutException e)
        {
            // Where the frame stopped: the gateway's counters and the source's processing counters.
            var stream = await gw.StreamStatusAsync();
            var pipeline = await gw.Client.GetJsonAsync(ProcessingApi.Status);
            throw new TimeoutException($"{e.Message}; stream status: {stream}; pipeline status: {pipeline}", e);
        }
        Assert.Equal(input, viewer.Frames[0].Data);
        var status = await gw.Client.GetJsonAsync("api/v1/ai/status");
        Assert.True(status.GetProperty("realtime").GetProperty("simple_forward").GetBoolean());
        Assert.Equal(
            0,
            (await gw.Client.GetJsonAsync("api/v1/realtime_pipeline/status"))
                .GetProperty("steps")
                .EnumerateArray()
                .Where(s => s.GetProperty("name").GetString() is "detect" or "matte")
                .Sum(s => s.GetProperty("frames").GetInt64())
        );
    }

    [Fact]
    public async Task MissingModelFilesLeaveTheServiceUpTheStepSkippedAndFramesFlowing()
    {
        var empty = Directory.CreateTempSubdirectory("blankend-nomodels-").FullName;
        try
        {
            await using var gw = await EmbeddedGateway.StartAsync([
                "--realtime_pipeline:enabled=true",
                "--realtime_pipeline:steps=matte",
                $"--ai:models_dir={empty}",
            ]);
            var source = TestEnv.NewId("nomodel");
            var (viewer, cam) = await RealtimeApi.ConnectAsync(gw, source);
            await using var _ = viewer;
            for (var i = 0; i < 3; i++)
            {
                await cam.SendBinaryAsync(TestJpeg.Tagged(i));
                await viewer.WaitCountAsync(i + 1, Wait);
            }
            Assert.Equal(3, viewer.Count);
            using (var img = Cv2.ImDecode(viewer.Frames[0].Data, ImreadModes.Color))
                Assert.False(img.Empty());

            var matte = await StepAsync(gw.Client, "matte");
            Assert.True(
                matte.GetProperty("skipped").GetProperty("model unavailable").GetInt64() >= 3,
                matte.ToString()
            );
            using var health = await gw.Client.GetAsync("healthz");
            var body = JsonDocument.Parse(await health.Content.ReadAsStringAsync()).RootElement;
            Assert.Equal(HttpStatusCode.OK, health.StatusCode);
            Assert.Equal(
                "degraded",
                body.GetProperty("components").GetProperty("models").GetProperty("state").GetString()
            );
            Assert.Contains(
                "segmentation",
                body.GetProperty("components").GetProperty("models").GetProperty("detail").GetString()
            );
            var ai = await gw.Client.GetJsonAsync("api/v1/ai/status");
            var seg = ai.GetProperty("models")
                .EnumerateArray()
                .Single(m => m.GetProperty("kind").GetString() == "segmentation");
            Assert.False(seg.GetProperty("available").GetBoolean());
            Assert.Contains("not found", seg.GetProperty("reason").GetString());
        }
        finally
        {
            Directory.Delete(empty, true);
        }
    }

    [Fact]
    public async Task BusFrameTakenByTheRealtimePipelineGoesBackToTheBusOnceProcessedAndToViewersOnce()
    {
        using var router = TestRouter.Bind();
        var identity = TestEnv.NewId("rt-relay");
        await using var gw = await EmbeddedGateway.StartAsync([
            "--stream:relay_enabled=true",
            $"--stream:zmq_endpoint={router.Endpoint}",
            $"--stream:zmq_identity={identity}",
            "--realtime_pipeline:enabled=true",
            "--realtime_pipeline:steps=matte",
        ]);
        await RelayBusTestsAccess.WaitConnectedAsync(gw);
        await router.WaitPeerAsync(identity, Wait);
        var client = TestEnv.NewId("buscam");
        var viewer = await MetaViewer.ConnectAsync(gw.Ws($"/video_out?source={client}&meta=1"));
        await using var _ = viewer;
        await VideoPathTests.WaitSubscribedAsync(gw.StreamStatusAsync, client);

        // The bus pipeline reads the pipeline config in the background (at most once a second): frames of other
        // clients prime it until one is taken (pipeline_taken counts it), so the frame under test meets a pipeline
        // that knows the settings; then every taken prime is answered before the counted frame goes.
        var primeDeadline = DateTime.UtcNow + Wait;
        var relay0 = await RelayBusTests.RelayStatusAsync(gw);
        while (relay0.GetProperty("pipeline_taken").GetInt64() == 0)
        {
            Assert.True(
                DateTime.UtcNow < primeDeadline,
                $"no priming bus frame was taken by the realtime pipeline: {relay0}"
            );
            router.Send(identity, TestEnv.NewId("prime"), TestJpeg.Tagged(0));
            await Task.Delay(200);
            relay0 = await RelayBusTests.RelayStatusAsync(gw);
        }
        relay0 = await RelayBusTests.WaitRelayAsync(
            gw,
            s => s.GetProperty("processed_sent").GetInt64() == s.GetProperty("pipeline_taken").GetInt64(),
            Wait,
            "every taken priming frame answered"
        );
        var taken0 = relay0.GetProperty("pipeline_taken").GetInt64();
        var input = Astronaut;
        router.Send(identity, client, input);
        await router.WaitForAsync(r => r.Any(m => m.ClientId == client), Wait, "the answer to the bus frame");
        await viewer.WaitCountAsync(1, Wait);
        // A marker: a frame of another client, answered after ours; a second answer to ours (the original's
        // double send) would have been sent on the same socket before the marker's answer.
        var marker = TestEnv.NewId("marker");
        router.Send(identity, marker, TestJpeg.Tagged(1));
        await router.WaitForAsync(r => r.Any(m => m.ClientId == marker), Wait, "the answer to the marker frame");
        var replies = router.For(client); // (heartbeats go to their reserved id)
        var processed = Assert.Single(replies); // exactly once back to the bus
        Assert.NotEqual(input, processed.Data); // the composite, not an echo
        using (var img = Cv2.ImDecode(processed.Data, ImreadModes.Color))
        {
            var corner = img.At<Vec3b>(5, 506);
            Assert.True(
                corner.Item1 > 200 && corner.Item0 < 60 && corner.Item2 < 60,
                $"top-right corner {corner} is not green"
            );
        }
        var views = viewer.Frames.Where(f => f.Meta.GetProperty("kind").GetString() == "processed").ToArray();
        var view = Assert.Single(views); // and once to the local viewer
        Assert.Equal("bus", view.Meta.GetProperty("origin").GetString());
        Assert.Equal(processed.Data, view.Data);
        var relay = await RelayBusTests.RelayStatusAsync(gw);
        Assert.Equal(taken0 + 2, relay.GetProperty("pipeline_taken").GetInt64()); // ours and the marker
        Assert.Equal(taken0 + 2, relay.GetProperty("processed_sent").GetInt64());
    }
}

internal static class RelayBusTestsAccess
{
    public static Task<JsonElement> WaitConnectedAsync(EmbeddedGateway gw) =>
        RelayBusTests.WaitRelayAsync(
            gw,
            s => s.GetProperty("state").GetString() == "connected",
            TimeSpan.FromSeconds(10),
            "state connected"
        );
}
