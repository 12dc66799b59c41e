using Blankend.Orleans.Configuration;

namespace Blankend.Orleans.Gateway.Cluster;

/// <summary>The ZeroMQ bus link's status, asked of the RelayGrain that holds it (docs/protocol.md).</summary>
internal static class RelayQuery
{
    /// <summary>The link's status, for this endpoint, /healthz and any status page that embeds a <c>relay</c> object.
    /// An embedded gateway shares its silo's configuration, so with the relay off it answers without a grain call;
    /// in client mode the silos' configuration decides, so the cluster is always asked.</summary>
    public static async Task<RelayStatus> StatusAsync(IGrainFactory grains, GatewayMode mode, StreamOptions stream)
    {
        if (mode.Embedded && !stream.RelayEnabled)
            return new RelayStatus
            {
                State = "disabled",
                Detail = "stream.relay_enabled is false",
                Identity = stream.ZmqIdentity,
                Endpoint = stream.ZmqEndpoint,
                SendQueueSize = stream.SendQueueSize,
            };
        try
        {
            return await grains
                .GetGrain<IRelayGrain>(stream.ZmqIdentity)
                .GetStatus()
                .WaitAsync(TimeSpan.FromSeconds(2));
        }
        catch (Exception e) when (e is TimeoutException or OrleansException or InvalidOperationException)
        {
            return new RelayStatus
            {
                State = "unknown",
                Detail = $"{e.GetType().Name}: {e.Message}",
                Identity = stream.ZmqIdentity,
                Endpoint = stream.ZmqEndpoint,
            };
        }
    }
}
