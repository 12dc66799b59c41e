using Blankend.Orleans.Configuration;
using Blankend.Orleans.Gateway.Cluster;
using Blankend.Orleans.Gateway.Telemetry;
using Microsoft.Extensions.Options;

namespace Blankend.Orleans.Gateway.Fanout;

/// <summary>
/// The <c>kind=raw</c> side of the fan-out: its own hub (its own per-source seq cursors: a raw frame and its
/// processed twin share a seq), its own observer, registered with <see cref="IClientGrain.SubscribeRaw"/> only
/// while some viewer of this gateway asks for the raw frames of that source. Still one registration per source
/// per gateway however many raw viewers there are; the main hub and its subscription are untouched, so
/// <c>kind=any</c> viewers get exactly what v1 gave them.
/// </summary>
internal sealed class RawFanout : IAsyncDisposable
{
    public RawFanout(
        IGrainFactory grains,
        GatewayCounters counters,
        IOptions<ClusterSettings> cluster,
        ClusterChangeSignal clusterChanges,
        ILogger<SourceSubscriptions> log
    )
    {
        Hub = new ViewerHub(counters);
        Subscriptions = new SourceSubscriptions(
            grains,
            new FrameObserver(Hub),
            cluster,
            clusterChanges,
            log,
            raw: true
        );
    }

    public ViewerHub Hub { get; }

    public SourceSubscriptions Subscriptions { get; }

    public ValueTask DisposeAsync() => Subscriptions.DisposeAsync();
}
