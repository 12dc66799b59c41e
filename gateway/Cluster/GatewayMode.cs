namespace Blankend.Orleans.Gateway.Cluster;

/// <summary>Which way this gateway reaches the cluster (reported by /healthz and the status API).</summary>
internal sealed record GatewayMode(string Name)
{
    public bool Embedded => Name == "embedded";
}
