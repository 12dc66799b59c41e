using Blankend.Orleans.Configuration;
using Blankend.Orleans.Gateway.Cluster;
using Microsoft.Extensions.Options;

namespace Blankend.Orleans.Gateway.Endpoints;

/// <summary><c>GET /api/v1/relay/status</c>: the ZeroMQ bus link (docs/protocol.md), answered by the silo holding
/// it.</summary>
internal static class RelayEndpoints
{
    public static async Task<IResult> StatusAsync(
        IGrainFactory grains,
        GatewayMode mode,
        IOptions<StreamOptions> stream
    )
    {
        var status = await RelayQuery.StatusAsync(grains, mode, stream.Value);
        return Results.Json(status, GatewayJson.Default.RelayStatus, statusCode: status.State == "unknown" ? 503 : 200);
    }
}
