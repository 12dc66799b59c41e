using Blankend.Orleans.Configuration;
using Blankend.Orleans.Gateway.Cluster;
using Blankend.Orleans.Gateway.Fanout;
using Blankend.Orleans.Gateway.Health;
using Blankend.Orleans.Gateway.Telemetry;

namespace Blankend.Orleans.Gateway.Endpoints;

internal sealed record ViewerStatus(string Source, bool Meta, long Sent, long Dropped, int Queued);

internal sealed record SourceStatus(
    string Source,
    long Epoch,
    long Seq,
    long FramesIn,
    long BytesIn,
    long LastFrameUnixMs,
    int Observers,
    int WildcardObservers,
    string Silo
);

internal sealed record StreamStatus(
    string Mode,
    long FramesIn,
    long BytesIn,
    long InvalidFrames,
    long OversizeFrames,
    long IngestDrops,
    long IngestErrors,
    long CamerasConnected,
    long ViewersConnected,
    long FramesFromCluster,
    long StaleFrames,
    long LostFrames,
    long DuplicateFrames,
    long FramesSent,
    long BytesSent,
    long ViewerDrops,
    long RejectedRequests,
    string[] SubscribedSources,
    bool AllSourcesSubscribed,
    List<ViewerStatus> Viewers,
    List<ViewerHub.WatchedSource> Watched,
    List<SourceStatus> Sources
);

internal sealed record SiloStatusEntry(
    string Address,
    string Name,
    string Status,
    string Host,
    string Ip,
    int SiloPort,
    int GatewayPort,
    DateTime StartTime,
    DateTime IAmAliveTime,
    string Role,
    string[] Devices
);

internal sealed record ClusterStatus(
    string Mode,
    string Clustering,
    string ClusterId,
    string ServiceId,
    int ActiveSilos,
    int DeadSilos,
    int? ConnectedGateways,
    long ClusterChanges,
    long SubscriptionRefreshFailures,
    List<SiloStatusEntry> Silos,
    string? Error = null
);

internal static class StatusEndpoints
{
    /// <summary><c>/api/v1/cluster/status</c>: every silo of the membership table with its status (Active, Dead,
    /// ...) and the compute devices it announced. 503 when the cluster does not answer.</summary>
    public static async Task<IResult> ClusterStatusAsync(
        IGrainFactory grains,
        GatewayMode mode,
        ClusterSettings cluster,
        ClusterChangeSignal changes,
        SourceSubscriptions subscriptions
    )
    {
        var silos = new List<SiloStatusEntry>();
        string? error = null;
        try
        {
            var infos = await grains.GetGrain<IClusterInfoGrain>(0).GetSilos().WaitAsync(TimeSpan.FromSeconds(4));
            silos.AddRange(
                infos.Select(i => new SiloStatusEntry(
                    i.Address,
                    i.Name,
                    i.Status,
                    i.Host,
                    i.Ip,
                    i.SiloPort,
                    i.GatewayPort,
                    i.StartTime,
                    i.IAmAliveTime,
                    i.Role,
                    i.Devices
                ))
            );
        }
        catch (Exception e) when (e is TimeoutException or OrleansException or InvalidOperationException)
        {
            error = $"{e.GetType().Name}: {e.Message}";
        }
        var status = new ClusterStatus(
            mode.Name,
            cluster.Clustering,
            cluster.ClusterId,
            cluster.ServiceId,
            silos.Count(s => s.Status == "Active"),
            silos.Count(s => s.Status == "Dead"),
            changes.ConnectedGateways,
            changes.Count,
            subscriptions.RefreshFailures,
            silos,
            error
        );
        return Results.Json(status, GatewayJson.Default.ClusterStatus, statusCode: error is null ? 200 : 503);
    }

    /// <summary><c>/healthz</c>: 200 while frames can flow, 503 while a critical component (the cluster) is
    /// unavailable; the body lists every component (see <see cref="HealthService"/>).</summary>
    public static async Task<IResult> HealthAsync(
        HealthService health,
        GatewayMode mode,
        HttpContext context,
        CancellationToken ct
    )
    {
        var report = await health.CheckAsync(mode.Name, ct);
        var code =
            report.Status == HealthStates.Unavailable
                ? StatusCodes.Status503ServiceUnavailable
                : StatusCodes.Status200OK;
        // Without a valid token (tokens configured): the status only, no component details (docs/security.md).
        if (context.User.Identity?.IsAuthenticated != true)
            return Results.Text($"{{\"status\":\"{report.Status}\"}}", "application/json", statusCode: code);
        return Results.Json(report, GatewayJson.Default.HealthReport, statusCode: code);
    }

    /// <summary><c>/api/v1/stream/status</c>: this gateway's counters, viewers and the sources it watches.</summary>
    public static async Task<IResult> StreamStatusAsync(
        IGrainFactory grains,
        GatewayMode mode,
        GatewayCounters c,
        ViewerHub hub,
        SourceSubscriptions subscriptions
    )
    {
        var sources = new List<SourceStatus>();
        try
        {
            var names = await grains
                .GetGrain<ISourceDirectoryGrain>(ISourceDirectoryGrain.Key)
                .ListSources()
                .WaitAsync(TimeSpan.FromSeconds(2));
            var stats = await Task.WhenAll(names.Select(n => grains.GetGrain<IClientGrain>(n).GetStats()))
                .WaitAsync(TimeSpan.FromSeconds(2));
            sources.AddRange(
                stats.Select(s => new SourceStatus(
                    s.Source,
                    s.Epoch,
                    s.Seq,
                    s.FramesIn,
                    s.BytesIn,
                    s.LastFrameUnixMs,
                    s.Observers,
                    s.WildcardObservers,
                    s.Silo
                ))
            );
        }
        catch (Exception e) when (e is TimeoutException or OrleansException)
        {
            // Counters of this gateway are still worth answering with.
        }
        var viewers = hub
            .Viewers.Select(v => new ViewerStatus(v.Source ?? "*", v.Meta, v.Sent, v.Dropped, v.Queued))
            .ToList();
        var status = new StreamStatus(
            mode.Name,
            c.FramesIn,
            c.BytesIn,
            c.InvalidFrames,
            c.OversizeFrames,
            c.IngestDrops,
            c.IngestErrors,
            c.CamerasConnected,
            c.ViewersConnected,
            c.FramesFromCluster,
            c.StaleFrames,
            c.LostFrames,
            c.DuplicateFrames,
            c.FramesSent,
            c.BytesSent,
            c.ViewerDrops,
            c.RejectedRequests,
            [.. subscriptions.Sources],
            subscriptions.AllSources,
            viewers,
            hub.Watched,
            sources
        );
        return Results.Json(status, GatewayJson.Default.StreamStatus);
    }
}
