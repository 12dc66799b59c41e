using System.Net.WebSockets;
using Blankend.Orleans.Tests.Support;
using Xunit;

namespace Blankend.Orleans.Tests.Hosting;

/// <summary>The gateway and silo as real processes: clean stop on SIGTERM, split mode, refusal of bad config.</summary>
[Trait(TestKind.Name, TestKind.Process)]
public sealed class ProcessTests
{
    [Fact]
    public async Task EmbeddedGatewayStopsCleanlyOnSigtermWithinTenSeconds()
    {
        await using var gw = ServiceProcess.StartGateway(TestEnv.SiloPortArgs());
        await gw.WaitHealthyAsync();
        // Live connections must not hold the stop up.
        using var viewer = await Ws.ConnectAsync(gw.Ws("/video_out?source=SRC"));
        using var cam = await Ws.ConnectAsync(gw.Ws("/video_in"));
        await cam.SendBinaryAsync(TestJpeg.Tagged(1));

        gw.Terminate();
        Assert.True(await gw.WaitExitAsync(TimeSpan.FromSeconds(10)), "did not stop within 10 s:\n" + gw.Output);
        Assert.Equal(0, gw.Process.ExitCode);
        Assert.Contains("Orleans Silo stopped", gw.Output, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task BadConfigValueExitsWithCode2AndOneLineNamingTheKey()
    {
        await using var gw = ServiceProcess.StartGateway([.. TestEnv.SiloPortArgs(), "--stream:jpeg_quality=500"]);
        Assert.True(await gw.WaitExitAsync(TimeSpan.FromSeconds(30)), gw.Output);
        Assert.Equal(2, gw.Process.ExitCode);
        Assert.Contains("configuration error: stream:jpeg_quality must be between 1 and 100 (got 500)", gw.Output);
        Assert.DoesNotContain("   at ", gw.Output); // no stack trace for an operator mistake
    }

    [Fact]
    public async Task SplitModeSiloAndGatewayProcessesCarryFrames()
    {
        var siloPort = TestEnv.FreePort();
        var gatewayPort = TestEnv.FreePort();
        var siloMetricsPort = TestEnv.FreePort();
        // The gateway starts first: it waits for the cluster, logging each try, instead of failing.
        await using var gw = ServiceProcess.StartGateway(
            "--cluster:mode=client",
            $"--cluster:gateway_ports:0={gatewayPort}"
        );
        await Task.Delay(1500);
        await using var silo = ServiceProcess.StartSilo(
            $"--cluster:silo_port={siloPort}",
            $"--cluster:primary_silo_port={siloPort}",
            $"--cluster:gateway_port={gatewayPort}",
            $"--cluster:metrics_port={siloMetricsPort}"
        );
        await gw.WaitHealthyAsync();

        var health = await gw.Client.GetStringAsync("healthz");
        Assert.Contains("\"mode\":\"client\"", health);
        Assert.Contains($"S127.0.0.1:{siloPort}", health); // answered by the separate silo

        using var viewer = await Ws.ConnectAsync(gw.Ws("/video_out?source=split&meta=1"));
        using var cam = await Ws.ConnectAsync(gw.Ws("/video_in?client_id=split"));
        await VideoPathTestsAccess.WaitSubscribedAsync(gw, "split");
        var frame = TestJpeg.Tagged(11);
        await cam.SendBinaryAsync(frame);
        var meta = await viewer.ReceiveMessageAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(WebSocketMessageType.Text, meta!.Type);
        Assert.Contains("\"source\":\"split\"", meta.Text);
        var data = await viewer.ReceiveMessageAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(frame, data!.Data);

        // Each process exports its own metrics: the gateway its edge, the silo (on cluster.metrics_port) its grains.
        var gwMetrics = PrometheusText.Parse(await gw.Client.GetStringAsync("metrics"));
        Assert.Equal(1, gwMetrics.Value("blankend_frames_in_total", "endpoint=video_in"));
        Assert.Equal(1, gwMetrics.Value("blankend_frames_out_total", "endpoint=video_out"));
        Assert.Null(gwMetrics.Value("blankend_grain_frames_routed_total", "kind=raw"));
        using (var siloHttp = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{siloMetricsPort}/") })
        {
            var siloMetrics = PrometheusText.Parse(await siloHttp.GetStringAsync("metrics"));
            Assert.Equal(1, siloMetrics.Value("blankend_grain_frames_routed_total", "kind=raw"));
            Assert.Equal(1, siloMetrics.Value("blankend_sources_active"));
            Assert.Null(siloMetrics.Value("blankend_frames_in_total", "endpoint=video_in"));
            Assert.Contains(siloMetrics.Samples, s => s.Name == "orleans_catalog_activations");
        }

        // The dashboard, served by the gateway as an Orleans client, sees the silo's grains.
        var dashboardDeadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        var counters = "";
        while (DateTime.UtcNow < dashboardDeadline && !counters.Contains("ClientGrain", StringComparison.Ordinal))
        {
            counters = await gw.Client.GetStringAsync("dashboard/DashboardCounters");
            if (!counters.Contains("ClientGrain", StringComparison.Ordinal))
                await Task.Delay(250);
        }
        Assert.Contains("ClientGrain", counters);

        // The silo goes away: /healthz says so (503), and the gateway process stays up.
        silo.Terminate();
        Assert.True(await silo.WaitExitAsync(TimeSpan.FromSeconds(10)), silo.Output);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        var status = 0;
        while (DateTime.UtcNow < deadline)
        {
            using var r = await gw.Client.GetAsync("healthz");
            status = (int)r.StatusCode;
            if (status == 503)
                break;
            await Task.Delay(200);
        }
        Assert.Equal(503, status);
        Assert.False(gw.Process.HasExited);
    }
}

internal static class VideoPathTestsAccess
{
    public static Task WaitSubscribedAsync(ServiceProcess gw, string source) =>
        Gateway.VideoPathTests.WaitSubscribedAsync(gw.StreamStatusAsync, source);
}
