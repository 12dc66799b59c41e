using System.Diagnostics;
using Blankend.Orleans.Configuration;
using Blankend.Orleans.Gateway.Fanout;
using Blankend.Orleans.Gateway.Hosting;
using Microsoft.Extensions.Options;

namespace Blankend.Orleans.Gateway.Endpoints;

public sealed record ComponentHealth(string State, string? Detail = null, double? LatencyMs = null);

public sealed record HealthReport(string Status, string Mode, Dictionary<string, ComponentHealth> Components);

public sealed record ViewerStatus(string Source, bool Meta, long Sent, long Dropped, int Queued);

public sealed record SourceStatus(string Source, long Epoch, long Seq, long FramesIn, long BytesIn, long LastFrameUnixMs,
    int Observers, int WildcardObservers, string Silo);

public sealed record StreamStatus(
    string Mode, long FramesIn, long BytesIn, long InvalidFrames, long OversizeFrames, long IngestDrops, long IngestErrors, long CamerasConnected,
    long ViewersConnected, long FramesFromCluster, long StaleFrames, long FramesSent, long ViewerDrops,
    long RejectedRequests, string[] SubscribedSources, bool AllSourcesSubscribed, List<ViewerStatus> Viewers,
    List<SourceStatus> Sources);

public static class StatusEndpoints
{
    /// <summary><c>/healthz</c>: 200 while frames can flow (the cluster answers), 503 when it does not.</summary>
    public static async Task<IResult> HealthAsync(IGrainFactory grains, GatewayMode mode, IOptions<StreamOptions> stream)
    {
        var components = new Dictionary<string, ComponentHealth>(StringComparer.Ordinal);
        var clusterOk = false;
        var watch = Stopwatch.StartNew();
        try
        {
            var silo = await grains.GetGrain<ISourceDirectoryGrain>(ISourceDirectoryGrain.Key).Ping().WaitAsync(TimeSpan.FromSeconds(2));
            components["cluster"] = new ComponentHealth("ok", $"answered by {silo}", Math.Round(watch.Elapsed.TotalMilliseconds, 3));
            clusterOk = true;
        }
        catch (Exception e)
        {
            components["cluster"] = new ComponentHealth("unavailable", $"{e.GetType().Name}: {e.Message}");
        }
        if (clusterOk) components["decoders"] = await CodecEndpoints.HealthAsync(grains);
        // The bus link is not part of this build yet: reported, never a reason for 503.
        components["bus"] = stream.Value.RelayEnabled
            ? new ComponentHealth("degraded", "stream.relay_enabled is set but this build has no ZeroMQ relay yet")
            : new ComponentHealth("disabled", "stream.relay_enabled is false");

        var degraded = components.Values.Any(c => c.State == "degraded");
        var report = new HealthReport(clusterOk ? (degraded ? "degraded" : "ok") : "unavailable", mode.Name, components);
        return Results.Json(report, GatewayJson.Default.HealthReport, statusCode: clusterOk ? 200 : 503);
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
            Interlocked.Read(ref c.FramesIn), Interlocked.Read(ref c.BytesIn), Interlocked.Read(ref c.InvalidFrames),
            Interlocked.Read(ref c.OversizeFrames), Interlocked.Read(ref c.IngestDrops), Interlocked.Read(ref c.IngestErrors),
            Interlocked.Read(ref c.CamerasConnected), Interlocked.Read(ref c.ViewersConnected),
            Interlocked.Read(ref c.FramesFromCluster), Interlocked.Read(ref c.StaleFrames), Interlocked.Read(ref c.FramesSent),
            Interlocked.Read(ref c.ViewerDrops), Interlocked.Read(ref c.RejectedRequests),
            [.. subscriptions.Sources], subscriptions.AllSources, viewers, sources);
        return Results.Json(status, GatewayJson.Default.StreamStatus);
    }
}
