using System.Text.Json;
using Blankend.Orleans.Tests.Support;

namespace Blankend.Orleans.Tests.Cluster;

/// <summary>A silo process of a test cluster on free ports (the cluster tests kill them with SIGKILL).</summary>
public sealed record ClusterSilo(ServiceProcess Process, int SiloPort, int GatewayPort)
{
    /// <param name="common">The cluster's arguments (membership, cluster id, logging).</param>
    public static ClusterSilo Start(
        IReadOnlyDictionary<string, string>? environment,
        string[] common,
        params string[] extra
    )
    {
        var siloPort = TestEnv.FreePort();
        var gatewayPort = TestEnv.FreePort();
        var p = ServiceProcess.StartSilo(
            environment,
            [.. common, $"--cluster:silo_port={siloPort}", $"--cluster:gateway_port={gatewayPort}", .. extra]
        );
        return new ClusterSilo(p, siloPort, gatewayPort);
    }

    /// <summary>Whether <paramref name="siloAddress"/>, a silo as the status endpoints name it, is this one.</summary>
    public bool Is(string siloAddress) => siloAddress.Contains($":{SiloPort}:", StringComparison.Ordinal);

    /// <summary>The silo hosting <paramref name="source"/>'s grain, as <c>/api/v1/stream/status</c> names it.</summary>
    public static string HostOf(JsonElement streamStatus, string source) =>
        streamStatus
            .GetProperty("sources")
            .EnumerateArray()
            .Single(s => s.GetProperty("source").GetString() == source)
            .GetProperty("silo")
            .GetString()!;
}
