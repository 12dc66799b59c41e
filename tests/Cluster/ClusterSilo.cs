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
}
