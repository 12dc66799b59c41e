using System.Net;
using System.Text.Json;
using Blankend.Orleans.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Blankend.Orleans.Tests.Cluster;

/// <summary>
/// A client-mode gateway and a cluster that is not there: before any silo runs (split-mode start order), and after
/// the only silo is gone. Real processes on a real Redis membership.
/// </summary>
[Trait(TestKind.Name, TestKind.Process)]
[Collection(SerialCollection.Name)]
public sealed class ClusterReachabilityTests(ITestOutputHelper output)
{
    private static async Task WaitOutputAsync(ServiceProcess p, string text, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!p.Output.Contains(text, StringComparison.Ordinal))
        {
            if (p.Process.HasExited)
                throw new InvalidOperationException($"process exited with {p.Process.ExitCode}:\n{p.Output}");
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"never logged \"{text}\":\n{p.Output}");
            await Task.Delay(100);
        }
    }

    [RedisFact]
    public async Task ClientGatewayStartedBeforeAnySiloLogsItsRetriesThenConnectsWhenASiloStarts()
    {
        await using var redis = await RedisServer.StartAsync();
        string[] common =
        [
            "--cluster:clustering=redis",
            $"--cluster:redis={redis.ConnectionString}",
            $"--cluster:cluster_id=reach-{Guid.NewGuid().ToString("N")[..8]}",
        ];
        await using var gw = ServiceProcess.StartGateway([.. common, "--cluster:mode=client"]);

        // No silo yet: the gateway keeps trying, one logged attempt a second.
        await WaitOutputAsync(gw, "cluster not reachable yet (attempt 1)", TimeSpan.FromSeconds(60));
        await WaitOutputAsync(gw, "cluster not reachable yet (attempt 2)", TimeSpan.FromSeconds(30));

        var silo = ClusterSilo.Start(null, common);
        await using var _ = silo.Process;
        await gw.WaitHealthyAsync(TimeSpan.FromSeconds(90));
        using var r = await gw.Client.GetAsync("api/v1/cluster/status");
        var body = await r.Content.ReadAsStringAsync();
        output.WriteLine(body);
        Assert.True(r.StatusCode == HttpStatusCode.OK, $"{r.StatusCode}: {body}");
        var status = JsonDocument.Parse(body).RootElement;
        Assert.Equal("client", status.GetProperty("mode").GetString());
        Assert.Equal(1, status.GetProperty("active_silos").GetInt32());
    }

    [RedisFact]
    public async Task ClusterStatusIs503WithTheReasonWhenTheClusterDoesNotAnswer()
    {
        await using var redis = await RedisServer.StartAsync();
        string[] common =
        [
            "--cluster:clustering=redis",
            $"--cluster:redis={redis.ConnectionString}",
            $"--cluster:cluster_id=reach-{Guid.NewGuid().ToString("N")[..8]}",
        ];
        var silo = ClusterSilo.Start(null, common);
        await using var _ = silo.Process;
        await using var gw = ServiceProcess.StartGateway([.. common, "--cluster:mode=client"]);
        await gw.WaitHealthyAsync(TimeSpan.FromSeconds(90));
        using (var ok = await gw.Client.GetAsync("api/v1/cluster/status"))
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);

        // The only silo killed: nothing in the cluster answers any more.
        silo.Process.Process.Kill();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        HttpStatusCode code;
        string body;
        do
        {
            using var r = await gw.Client.GetAsync("api/v1/cluster/status");
            code = r.StatusCode;
            body = await r.Content.ReadAsStringAsync();
            if (code == HttpStatusCode.ServiceUnavailable)
                break;
            await Task.Delay(250);
        } while (DateTime.UtcNow < deadline);
        output.WriteLine(body);
        Assert.True(code == HttpStatusCode.ServiceUnavailable, $"{code}: {body}\n--- gateway:\n{gw.Output}");
        var status = JsonDocument.Parse(body).RootElement;
        Assert.False(string.IsNullOrEmpty(status.GetProperty("error").GetString()));
        Assert.Equal("client", status.GetProperty("mode").GetString());
    }
}
