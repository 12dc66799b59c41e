using System.Net.Http.Json;
using System.Text.Json;
using Blankend.Orleans.Tests.Support;
using Xunit;

namespace Blankend.Orleans.Tests.Processing;

/// <summary>The processing path with the gateway and the silo as separate real processes (split mode): the API goes
/// through the Orleans client, the codec's native library loads in the silo process.</summary>
[Trait(TestKind.Name, TestKind.Process)]
public sealed class ProcessingProcessTests
{
    [Fact]
    public async Task SplitModeProcessesFramesInTheSiloProcessAndAnswersTheApi()
    {
        var siloPort = TestEnv.FreePort();
        var gatewayPort = TestEnv.FreePort();
        await using var silo = ServiceProcess.StartSilo(
            $"--cluster:silo_port={siloPort}",
            $"--cluster:primary_silo_port={siloPort}",
            $"--cluster:gateway_port={gatewayPort}",
            "--video_processing:idle_stop_ms=2000"
        );
        await using var gw = ServiceProcess.StartGateway(
            "--cluster:mode=client",
            $"--cluster:gateway_ports:0={gatewayPort}"
        );
        await gw.WaitHealthyAsync();

        var source = "split-" + Guid.NewGuid().ToString("N")[..6];
        using (
            var r = await gw.Client.PostConfigAsync(
                $$"""{"source":"{{source}}","enabled":true,"reencode_enabled":true,"jpeg_quality":25}"""
            )
        )
            Assert.True(r.IsSuccessStatusCode, await r.Content.ReadAsStringAsync());

        await using var viewer = await MetaViewer.ConnectAsync(gw.Ws($"/video_out?source={source}&meta=1"));
        using var cam = await Ws.ConnectAsync(gw.Ws($"/video_in?client_id={source}"));
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (
            !(await gw.StreamStatusAsync())
                .GetProperty("subscribed_sources")
                .EnumerateArray()
                .Any(e => e.GetString() == source)
        )
        {
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException("never subscribed");
            await Task.Delay(50);
        }
        await cam.SendBinaryAsync(TestJpeg.Tagged(1));
        await viewer.WaitCountAsync(1, TimeSpan.FromSeconds(15));
        var (meta, data) = viewer.Frames[0];
        Assert.True(meta.GetProperty("kind").GetString() == "processed", $"{meta}\nSILO:\n{silo.Output}");
        Assert.Equal(ProcessingApi.DecodeSize(TestJpeg.Base), ProcessingApi.DecodeSize(data));
        Assert.True(data.Length < TestJpeg.Base.Length);

        var gpu = await gw.Client.GetFromJsonAsync<JsonElement>(ProcessingApi.Gpu);
        var s = Assert.Single(gpu.GetProperty("silos").EnumerateArray());
        Assert.Contains($"S127.0.0.1:{siloPort}", s.GetProperty("silo").GetString());
        var status = await gw.Client.GetFromJsonAsync<JsonElement>(ProcessingApi.Status);
        Assert.Equal(1, ProcessingApi.SourceStats(status, source)!.Value.GetProperty("processed").GetInt64());
        Assert.Contains("worker loop", silo.Output); // the silo logs its loop's start

        // After idle_stop_ms (2 s here) the silo process has no worker thread left.
        var cpu0 = ProcessingApi.Device(status, "cpu0");
        var tag = cpu0.GetProperty("thread_tag").GetString()!;
        Assert.Equal(1, SiloThreads(silo, tag));
        deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (SiloThreads(silo, tag) > 0 && DateTime.UtcNow < deadline)
            await Task.Delay(50);
        Assert.Equal(0, SiloThreads(silo, tag));
        status = await gw.Client.GetFromJsonAsync<JsonElement>(ProcessingApi.Status);
        Assert.False(ProcessingApi.Device(status, "cpu0").GetProperty("worker_running").GetBoolean());
        await cam.CloseQuietlyAsync();
    }

    private static int SiloThreads(ServiceProcess silo, string prefix)
    {
        var n = 0;
        foreach (var task in Directory.GetDirectories($"/proc/{silo.Process.Id}/task"))
        {
            try
            {
                if (File.ReadAllText(Path.Combine(task, "comm")).Trim().StartsWith(prefix, StringComparison.Ordinal))
                    n++;
            }
            catch (IOException) { }
        }
        return n;
    }
}
