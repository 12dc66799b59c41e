using System.Diagnostics.Metrics;
using System.Text.Json;
using Blankend.Orleans.Tests.Gateway;
using Blankend.Orleans.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Blankend.Orleans.Tests.Processing;

public sealed class LifecycleGatewayFixture : IAsyncLifetime
{
    public EmbeddedGateway Gateway { get; private set; } = null!;

    public async Task InitializeAsync() =>
        Gateway = await EmbeddedGateway.StartAsync(["--video_processing:idle_stop_ms=700"]);

    public async Task DisposeAsync() => await Gateway.DisposeAsync();
}

/// <summary>Global settings (live), the worker loop's life, GPU reporting and the provider metric, on a gateway
/// of their own (the tests of this class run one after the other and change global settings).</summary>
[Trait(TestKind.Name, TestKind.Integration)]
public sealed class ProcessingLifecycleTests(LifecycleGatewayFixture fixture, ITestOutputHelper output)
    : IClassFixture<LifecycleGatewayFixture>
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(15);
    private EmbeddedGateway Gw => fixture.Gateway;

    private static string NewSource() => "l-" + Guid.NewGuid().ToString("N")[..8];

    private async Task SendAndReceiveAsync(string source, int n)
    {
        await using var viewer = await MetaViewer.ConnectAsync(Gw.Ws($"/video_out?source={source}&meta=1"));
        using var cam = await Ws.ConnectAsync(Gw.Ws($"/video_in?client_id={source}"));
        await VideoPathTests.WaitSubscribedAsync(Gw.StreamStatusAsync, source);
        for (var i = 0; i < n; i++)
        {
            await cam.SendBinaryAsync(TestJpeg.Tagged(i));
            await viewer.WaitCountAsync(i + 1, Wait);
        }
        Assert.All(viewer.Frames, f => Assert.Equal("processed", f.Meta.GetProperty("kind").GetString()));
        await cam.CloseQuietlyAsync();
    }

    [Fact]
    public async Task WorkerLoopStartsOnFirstProcessedFrameAndStopsAfterIdleAndNoThreadExistsWhileDisabled()
    {
        // Processing off (the default): no worker thread, the status says so. (Another test of this class may
        // have run just before: its loop ends within idle_stop_ms.)
        var status = await Gw.Client.WaitStatusAsync(
            s => !ProcessingApi.Device(s, "cpu0").GetProperty("worker_running").GetBoolean(),
            TimeSpan.FromSeconds(10),
            "no worker loop"
        );
        Assert.False(status.GetProperty("global").GetProperty("enabled").GetBoolean());
        var cpu0 = ProcessingApi.Device(status, "cpu0");
        var tag = cpu0.GetProperty("thread_tag").GetString()!;
        Assert.False(cpu0.GetProperty("worker_running").GetBoolean());
        Assert.Equal(0, cpu0.GetProperty("loop_threads").GetInt32());
        Assert.Equal("idle", cpu0.GetProperty("health").GetString());
        Assert.Equal(0, ProcessingApi.WorkerThreads(tag));

        // A raw source does not start it either.
        var raw = NewSource();
        await using (var viewer = await MetaViewer.ConnectAsync(Gw.Ws($"/video_out?source={raw}&meta=1")))
        {
            using var cam = await Ws.ConnectAsync(Gw.Ws($"/video_in?client_id={raw}"));
            await VideoPathTests.WaitSubscribedAsync(Gw.StreamStatusAsync, raw);
            await cam.SendBinaryAsync(TestJpeg.Tagged(1));
            await viewer.WaitCountAsync(1, Wait);
            await cam.CloseQuietlyAsync();
        }
        Assert.Equal(0, ProcessingApi.WorkerThreads(tag));
        var starts0 = ProcessingApi
            .Device(await Gw.Client.GetJsonAsync(ProcessingApi.Status), "cpu0")
            .GetProperty("loop_starts")
            .GetInt64();

        // The first processed frame starts the loop ...
        var source = NewSource();
        await Gw.Client.ConfigureAsync($$"""{"source":"{{source}}","enabled":true,"reencode_enabled":true}""");
        await SendAndReceiveAsync(source, 3);
        status = await Gw.Client.GetJsonAsync(ProcessingApi.Status);
        cpu0 = ProcessingApi.Device(status, "cpu0");
        Assert.True(cpu0.GetProperty("worker_running").GetBoolean(), status.ToString());
        Assert.Equal(1, cpu0.GetProperty("loop_threads").GetInt32());
        Assert.Equal(starts0 + 1, cpu0.GetProperty("loop_starts").GetInt64());
        Assert.Equal(1, ProcessingApi.WorkerThreads(tag));
        Assert.True(cpu0.GetProperty("processed").GetInt64() >= 3);
        Assert.True(cpu0.GetProperty("decode_ms").GetDouble() > 0);
        Assert.True(cpu0.GetProperty("encode_ms").GetDouble() > 0);

        // ... and it ends after idle_stop_ms (700 ms here) without frames: thread gone, status shows it.
        status = await Gw.Client.WaitStatusAsync(
            s => !ProcessingApi.Device(s, "cpu0").GetProperty("worker_running").GetBoolean(),
            TimeSpan.FromSeconds(10),
            "the loop stopped"
        );
        Assert.Equal(0, ProcessingApi.Device(status, "cpu0").GetProperty("loop_threads").GetInt32());
        Assert.True(ProcessingApi.Device(status, "cpu0").GetProperty("loop_stops").GetInt64() >= 1);
        for (var i = 0; i < 50 && ProcessingApi.WorkerThreads(tag) > 0; i++)
            await Task.Delay(20);
        Assert.Equal(0, ProcessingApi.WorkerThreads(tag));

        // And it comes back on the next frame.
        await SendAndReceiveAsync(source, 1);
        Assert.Equal(1, ProcessingApi.WorkerThreads(tag));
    }

    [Fact]
    public async Task GlobalConfigChangesApplyLiveAndShowInTheNextStatusCall()
    {
        var before = await Gw.Client.GetJsonAsync(ProcessingApi.Status);
        var version = before.GetProperty("config_version").GetInt64();
        var config = await Gw.Client.ConfigureAsync(
            """{"enabled":true,"reencode_enabled":true,"jpeg_quality":55,"fps_limit":12.5,"workers":2}"""
        );
        try
        {
            Assert.Equal(version + 1, config.GetProperty("version").GetInt64());
            var status = await Gw.Client.GetJsonAsync(ProcessingApi.Status);
            Assert.Equal(version + 1, status.GetProperty("config_version").GetInt64());
            var g = status.GetProperty("global");
            Assert.True(g.GetProperty("enabled").GetBoolean());
            Assert.Equal(55, g.GetProperty("jpeg_quality").GetInt32());
            Assert.Equal(12.5, g.GetProperty("fps_limit").GetDouble());
            Assert.Equal(2, g.GetProperty("workers").GetInt32());

            // workers applies live: the device runs two loops for the next frames (sent back to back, so without
            // the fps limit, which would rightly drop them).
            await Gw.Client.ConfigureAsync("""{"fps_limit":0}""");
            var source = NewSource();
            await SendAndReceiveAsync(source, 3);
            status = await Gw.Client.GetJsonAsync(ProcessingApi.Status);
            Assert.Equal(2, ProcessingApi.Device(status, "cpu0").GetProperty("loop_threads").GetInt32());
            var st = ProcessingApi.SourceStats(status, source)!.Value;
            Assert.True(st.GetProperty("enabled").GetBoolean());
            Assert.Equal(55, st.GetProperty("settings").GetProperty("jpeg_quality").GetInt32());
            Assert.Equal(3, st.GetProperty("processed").GetInt64());
        }
        finally
        {
            await Gw.Client.ConfigureAsync(
                """{"enabled":false,"reencode_enabled":false,"jpeg_quality":80,"fps_limit":0,"workers":1}"""
            );
        }
        var after = await Gw.Client.GetJsonAsync(ProcessingApi.Config);
        Assert.False(after.GetProperty("global").GetProperty("enabled").GetBoolean());
        Assert.Equal(1, after.GetProperty("global").GetProperty("workers").GetInt32());
    }

    [Fact]
    public async Task FramesOfSeveralSourcesSharingTheDeviceAreBatched()
    {
        // Four sources send at once, each waiting for its previous frame: while the loop works on one source's
        // frame, the others' arrive and are taken together (batch_max 32 by default).
        var sources = Enumerable.Range(0, 4).Select(_ => NewSource()).ToArray();
        foreach (var s in sources)
            await Gw.Client.ConfigureAsync($$"""{"source":"{{s}}","enabled":true,"reencode_enabled":true}""");
        var before = ProcessingApi.Device(await Gw.Client.GetJsonAsync(ProcessingApi.Status), "cpu0");
        var frame = ProcessingApi.ScaledPortrait(1280, 720);
        await Task.WhenAll(
            sources.Select(s =>
                Task.Run(async () =>
                {
                    await using var viewer = await MetaViewer.ConnectAsync(Gw.Ws($"/video_out?source={s}&meta=1"));
                    using var cam = await Ws.ConnectAsync(Gw.Ws($"/video_in?client_id={s}"));
                    await VideoPathTests.WaitSubscribedAsync(Gw.StreamStatusAsync, s);
                    for (var i = 0; i < 30; i++)
                    {
                        await cam.SendBinaryAsync(frame);
                        await viewer.WaitCountAsync(i + 1, Wait);
                    }
                    Assert.All(viewer.Frames, f => Assert.Equal("processed", f.Meta.GetProperty("kind").GetString()));
                    await cam.CloseQuietlyAsync();
                })
            )
        );
        var after = ProcessingApi.Device(await Gw.Client.GetJsonAsync(ProcessingApi.Status), "cpu0");
        var frames = after.GetProperty("processed").GetInt64() - before.GetProperty("processed").GetInt64();
        var batches = after.GetProperty("batches").GetInt64() - before.GetProperty("batches").GetInt64();
        output.WriteLine(
            $"4 sources x 30 frames of 720p: {frames} frames in {batches} batches ({(double)frames / batches:F2} per batch)"
        );
        Assert.Equal(120, frames);
        Assert.True(batches < frames, $"{frames} frames in {batches} batches: nothing was batched");
    }

    [Fact]
    public async Task HwTranscodeRunsWhereTheGpuDetectionSaysAndTheStatusAndMetricsSaySo()
    {
        var hwUnavailable = 0L;
        var providers = new List<(string Device, string Provider)>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == "Blankend.Processing")
                l.EnableMeasurementEvents(instrument);
        };
        listener.SetMeasurementEventCallback<long>(
            (instrument, value, tags, _) =>
            {
                if (instrument.Name == "blankend.processing.hw_unavailable")
                    Interlocked.Add(ref hwUnavailable, value);
            }
        );
        listener.SetMeasurementEventCallback<int>(
            (instrument, value, tags, _) =>
            {
                if (instrument.Name != "blankend.processing.provider")
                    return;
                string? device = null,
                    provider = null;
                foreach (var t in tags)
                {
                    if (t.Key == "device")
                        device = t.Value as string;
                    if (t.Key == "provider")
                        provider = t.Value as string;
                }
                lock (providers)
                    providers.Add((device!, provider!));
            }
        );
        listener.Start();

        var source = NewSource();
        await Gw.Client.ConfigureAsync("""{"hw_transcode":true}""");
        try
        {
            await Gw.Client.ConfigureAsync($$"""{"source":"{{source}}","enabled":true,"reencode_enabled":true}""");
            await SendAndReceiveAsync(source, 2);
            var gpu = await Gw.Client.GetJsonAsync(ProcessingApi.Gpu);
            Assert.True(gpu.GetProperty("hw_transcode_requested").GetBoolean());
            // Without a GPU the frames run on cpu0, counted; on a GPU host on its gpu0 worker (whose JPEG codec
            // runs on the CPU in this build, and the reason says so).
            Assert.Equal(GpuHost.Detected, gpu.GetProperty("gpu_available").GetBoolean());
            Assert.Equal("CPU", gpu.GetProperty("provider").GetString());
            Assert.Contains(
                GpuHost.Detected ? "JPEG codec runs on the CPU" : "hw_transcode is requested but no silo has a GPU",
                gpu.GetProperty("provider_reason").GetString()
            );
            var st = ProcessingApi.SourceStats(await Gw.Client.GetJsonAsync(ProcessingApi.Status), source)!.Value;
            var device = GpuHost.Detected ? "gpu0" : "cpu0";
            Assert.Equal(device, st.GetProperty("device").GetString());
            if (GpuHost.Detected)
                Assert.Equal(0, Interlocked.Read(ref hwUnavailable));
            else
                Assert.True(Interlocked.Read(ref hwUnavailable) >= 2, $"hw_unavailable counted {hwUnavailable}");

            listener.RecordObservableInstruments();
            lock (providers)
                Assert.Contains((device, "CPU"), providers);
        }
        finally
        {
            await Gw.Client.ConfigureAsync("""{"hw_transcode":false}""");
        }
    }
}
