using Blankend.Orleans.Configuration;
using Blankend.Orleans.Gateway.Hosting;
using Microsoft.Extensions.Options;

namespace Blankend.Orleans.Gateway.Endpoints;

/// <summary><c>GET /api/v1/relay/status</c>: the ZeroMQ bus link (docs/protocol.md), answered by the silo holding it.</summary>
public static class RelayEndpoints
{
    public static async Task<IResult> StatusAsync(IGrainFactory grains, GatewayMode mode, IOptions<StreamOptions> stream)
    {
        var status = await QueryAsync(grains, mode, stream.Value);
        return Results.Json(status, GatewayJson.Default.RelayStatus, statusCode: status.State == "unknown" ? 503 : 200);
    }

    /// <summary>The link's status, for this endpoint, /healthz and any status page that embeds a <c>relay</c> object.
    /// An embedded gateway shares its silo's configuration, so with the relay off it answers without a grain call;
    /// in client mode the silos' configuration decides, so the cluster is always asked.</summary>
    public static async Task<RelayStatus> QueryAsync(IGrainFactory grains, GatewayMode mode, StreamOptions stream)
    {
        if (mode.Embedded && !stream.RelayEnabled)
            return new RelayStatus { State = "disabled", Detail = "stream.relay_enabled is false", Identity = stream.ZmqIdentity, Endpoint = stream.ZmqEndpoint, SendQueueSize = stream.SendQueueSize };
        try
        {
            return await grains.GetGrain<IRelayGrain>(stream.ZmqIdentity).GetStatus().WaitAsync(TimeSpan.FromSeconds(2));
        }
        catch (Exception e) when (e is TimeoutException or OrleansException or InvalidOperationException)
        {
            return new RelayStatus { State = "unknown", Detail = $"{e.GetType().Name}: {e.Message}", Identity = stream.ZmqIdentity, Endpoint = stream.ZmqEndpoint };
        }
    }
}
