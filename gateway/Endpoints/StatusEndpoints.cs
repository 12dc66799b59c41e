using Blankend.Orleans.Gateway.Fanout;
using Blankend.Orleans.Gateway.Health;
using Blankend.Orleans.Gateway.Hosting;
using Blankend.Orleans.Health;

namespace Blankend.Orleans.Gateway.Endpoints;

public sealed record HealthReport(string Status, string Mode, Dictionary<string, ComponentHealth> Components);

public sealed record ViewerStatus(string Source, bool Meta, long Sent, long Dropped, int Queued);

public sealed record SourceStatus(string Source, long Epoch, long Seq, long FramesIn, long BytesIn, long LastFrameUnixMs,
    int Observers, int WildcardObservers, string Silo);

public sealed record StreamStatus(
    string Mode, long FramesIn, long BytesIn, long InvalidFrames, long OversizeFrames, long IngestDrops, long IngestErrors, long CamerasConnected,
    long ViewersConnected, long FramesFromCluster, long StaleFrames, long FramesSent, long BytesSent, long ViewerDrops,
    long RejectedRequests, string[] SubscribedSources, bool AllSourcesSubscribed, List<ViewerStatus> Viewers,
    List<SourceStatus> Sources);

public static class StatusEndpoints
{
    /// <summary><c>/healthz</c>: 200 while frames can flow, 503 while a critical component (the cluster) is
    /// unavailable; the body lists every component (see <see cref="HealthService"/>).</summary>
    public static async Task<IResult> HealthAsync(HealthService health, GatewayMode mode, CancellationToken ct)
    {
        var report = await health.CheckAsync(mode.Name, ct);
        return Results.Json(report, GatewayJson.Default.HealthReport,
            statusCode: report.Status == HealthStates.Unavailable ? StatusCodes.Status503ServiceUnavailable : StatusCodes.Status200OK);
    }

    /// <summary><c>/api/v1/stream/status</c>: this gateway's counters, viewers and the sources it watches.</summary>
    public static async Task<IResult> StreamStatusAsync(IGrainFactory grains, GatewayMode mode, GatewayCounters c,
        ViewerHub hub, SourceSubscriptions subscriptions)
    {
        var sources = new List<SourceStatus>();
        try
        {
            var names = await grains.GetGrain<ISourceDirectoryGrain>(ISourceDirectoryGrain.Key).ListSources().WaitAsync(TimeSpan.FromSeconds(2));
            var stats = await Task.WhenAll(names.Select(n => grains.GetGrain<IClientGrain>(n).GetStats())).WaitAsync(TimeSpan.FromSeconds(2));
            sources.AddRange(stats.Select(s => new SourceStatus(s.Source, s.Epoch, s.Seq, s.FramesIn, s.BytesIn, s.LastFrameUnixMs,
                s.Observers, s.WildcardObservers, s.Silo)));
        }
        catch (Exception e) when (e is TimeoutException or OrleansException)
        {
            // Counters of this gateway are still worth answering with.
        }
        var viewers = hub.Viewers.Select(v => new ViewerStatus(v.Source ?? "*", v.Meta, v.Sent, v.Dropped, v.Queued)).ToList();
        var status = new StreamStatus(mode.Name,
            c.FramesIn, c.BytesIn, c.InvalidFrames, c.OversizeFrames, c.IngestDrops, c.IngestErrors,
            c.CamerasConnected, c.ViewersConnected, c.FramesFromCluster, c.StaleFrames, c.FramesSent, c.BytesSent,
            c.ViewerDrops, c.RejectedRequests,
            [.. subscriptions.Sources], subscriptions.AllSources, viewers, sources);
        return Results.Json(status, GatewayJson.Default.StreamStatus);
    }
}
