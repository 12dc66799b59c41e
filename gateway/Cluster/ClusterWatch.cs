using Blankend.Orleans.Gateway.Telemetry;
using Orleans.Runtime;

namespace Blankend.Orleans.Gateway.Cluster;

/// <summary>
/// Raised when the cluster under this gateway changes (a silo gateway connection dropped or came back, a silo
/// joined or died). Grain state on a lost silo is gone, so whoever registered something there (the source
/// subscriptions) re-registers now instead of at its next periodic refresh.
/// </summary>
internal sealed class ClusterChangeSignal : IDisposable
{
    /// <summary>How long a call in flight when a silo connection is lost may still answer before it is given up
    /// (<see cref="LossToken"/>): a call that went through a live connection answers in milliseconds; one that
    /// went through the dead one never does.</summary>
    public static readonly TimeSpan LossGrace = TimeSpan.FromMilliseconds(250);

    private long _count;
    private CancellationTokenSource _loss = new();

    public event Action<string>? Changed;

    /// <summary>How many changes were seen (status API).</summary>
    public long Count => Interlocked.Read(ref _count);

    /// <summary>Client mode: silo gateways this gateway is connected to (status API); null in embedded mode.</summary>
    public int? ConnectedGateways { get; set; }

    /// <summary>Cancelled <see cref="LossGrace"/> after the next loss of a silo connection. Take it before a call
    /// and wait on it: a call caught by a silo crash is abandoned at once instead of after its response
    /// timeout.</summary>
    public CancellationToken LossToken => Volatile.Read(ref _loss).Token;

    /// <param name="reason">For the log.</param>
    /// <param name="siloLost">A connection to a silo broke: calls in flight through it will never answer.</param>
    public void Raise(string reason, bool siloLost)
    {
        Interlocked.Increment(ref _count);
        if (siloLost)
        {
            // Calls started from now on get a fresh token; those in flight get the grace period, then give up.
            var old = Interlocked.Exchange(ref _loss, new CancellationTokenSource());
            old.CancelAfter(LossGrace);
        }
        Changed?.Invoke(reason);
    }

    public void Dispose() => Volatile.Read(ref _loss).Dispose();
}

/// <summary>Client mode: the Orleans client reports its gateway connections here (one per silo).</summary>
internal sealed partial class ClientConnectionWatcher(ClusterChangeSignal signal, ILogger<ClientConnectionWatcher> log)
    : IClusterConnectionStatusObserver
{
    public void NotifyGatewayCountChanged(
        int currentNumberOfGateways,
        int previousNumberOfGateways,
        bool connectionRecovered
    )
    {
        LogGatewayCount(log, previousNumberOfGateways, currentNumberOfGateways);
        signal.ConnectedGateways = currentNumberOfGateways;
        signal.Raise(
            $"silo gateways {previousNumberOfGateways} -> {currentNumberOfGateways}",
            siloLost: currentNumberOfGateways < previousNumberOfGateways
        );
    }

    public void NotifyClusterConnectionLost()
    {
        LogLost(log);
        signal.ConnectedGateways = 0;
        signal.Raise("cluster connection lost", siloLost: true);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "cluster: silo gateway connections {Previous} -> {Current}")]
    private static partial void LogGatewayCount(ILogger log, int previous, int current);

    [LoggerMessage(Level = LogLevel.Warning, Message = "cluster: connection to every silo lost; retrying")]
    private static partial void LogLost(ILogger log);
}

/// <summary>Embedded mode with a shared membership store: the co-hosted silo's membership view.</summary>
internal sealed partial class EmbeddedMembershipWatcher(
    IClusterMembershipService membership,
    ClusterChangeSignal signal,
    ILogger<EmbeddedMembershipWatcher> log
) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        Dictionary<SiloAddress, SiloStatus>? last = null;
        try
        {
            await foreach (var snapshot in membership.MembershipUpdates.WithCancellation(stoppingToken))
            {
                var now = snapshot.Members.ToDictionary(m => m.Key, m => m.Value.Status);
                if (last is not null && !SameStatuses(last, now))
                {
                    LogChanged(
                        log,
                        snapshot.Version.Value,
                        string.Join(", ", now.Select(kv => $"{kv.Key}={kv.Value}"))
                    );
                    // The co-hosted silo breaks calls to a silo it declares dead by itself: nothing to abandon here.
                    signal.Raise($"membership version {snapshot.Version.Value}", siloLost: false);
                }
                last = now;
            }
        }
        catch (OperationCanceledException) { }
    }

    private static bool SameStatuses(Dictionary<SiloAddress, SiloStatus> a, Dictionary<SiloAddress, SiloStatus> b) =>
        a.Count == b.Count && a.All(kv => b.TryGetValue(kv.Key, out var s) && s == kv.Value);

    [LoggerMessage(Level = LogLevel.Information, Message = "cluster: membership {Version}: {Members}")]
    private static partial void LogChanged(ILogger log, long version, string members);
}

/// <summary>
/// Client mode: the silos' membership as one of them sees it, polled every <see cref="Period"/> while this
/// gateway has cameras or viewers (nothing is asked while it is idle). A connection-loss notice only comes for
/// a silo this gateway held a connection to; a silo declared dead also takes grains living elsewhere whose
/// directory entry it held (they re-activate with no registrations), so every death must reach the
/// subscriptions.
/// </summary>
internal sealed partial class ClientMembershipPoller(
    IGrainFactory grains,
    ClusterChangeSignal signal,
    GatewayCounters counters,
    ILogger<ClientMembershipPoller> log
) : BackgroundService
{
    public static readonly TimeSpan Period = TimeSpan.FromMilliseconds(500);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        string[]? last = null;
        using var timer = new PeriodicTimer(Period);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                if (counters.CamerasConnected + counters.ViewersConnected == 0)
                {
                    last = null; // idle: no call; the next active period starts from a fresh view
                    continue;
                }
                string[] now;
                try
                {
                    now = await grains
                        .GetGrain<IClusterInfoGrain>(0)
                        .GetActiveSilos()
                        .WaitAsync(TimeSpan.FromSeconds(2), stoppingToken);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    continue; // cluster unreachable for the moment: the connection notices cover it
                }
                if (last is not null && !now.AsSpan().SequenceEqual(last))
                {
                    var gone = last.Except(now, StringComparer.Ordinal).ToArray();
                    LogChanged(log, string.Join(", ", now), gone.Length == 0 ? "-" : string.Join(", ", gone));
                    signal.Raise($"active silos {last.Length} -> {now.Length}", siloLost: gone.Length > 0);
                }
                last = now;
            }
        }
        catch (OperationCanceledException) { }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "cluster: active silos now {Active} (gone: {Gone})")]
    private static partial void LogChanged(ILogger log, string active, string gone);
}
