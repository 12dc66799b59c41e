using Blankend.Orleans.Configuration;
using Blankend.Orleans.Gateway.Cluster;
using Microsoft.Extensions.Options;

namespace Blankend.Orleans.Gateway.Fanout;

/// <summary>
/// Registers this gateway's single observer ONCE per source it has viewers for (and once with the source
/// directory while it has all-source viewers), however many viewers there are. Registrations expire in the
/// cluster unless renewed, so a refresh loop runs while (and only while) something is subscribed; it also
/// re-registers after a silo loss: at once when the cluster changes (<see cref="ClusterChangeSignal"/>), then
/// every <see cref="FastPeriod"/> for <see cref="FastWindow"/> and for as long as a registration fails (the
/// lost grains come back on another silo once the dead one is declared dead), then every observer_refresh_ms.
/// </summary>
internal sealed partial class SourceSubscriptions : IAsyncDisposable
{
    private readonly IGrainFactory _grains;
    private readonly FrameObserver _observer;
    private readonly bool _raw; // registers with IClientGrain.SubscribeRaw (RawFanout) instead of Subscribe
    private readonly ILogger<SourceSubscriptions> _log;
    private readonly TimeSpan _refresh;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, int> _refCounts = new(StringComparer.Ordinal);
    private int _allSources;
    private IFrameObserver? _reference;
    private readonly HashSet<string> _confirmed = new(StringComparer.Ordinal);
    private bool _allConfirmed;
    private CancellationTokenSource? _loopCts;
    private Task _loop = Task.CompletedTask;
    private bool _loopRunning; // under _gate: the loop clears it in the same locked step in which it decides to end

    // Set by a cluster change: the loop renews at once, then every FastPeriod until this time (TickCount64).
    private long _fastUntil;
    private TaskCompletionSource _wake = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _refreshFailures;
    private readonly ClusterChangeSignal _clusterChanges;

    /// <summary>Renewal period right after a cluster change or a failed renewal.</summary>
    public TimeSpan FastPeriod { get; }

    /// <summary>How long renewals stay fast after a cluster change: long enough to cover the death declaration of
    /// a killed silo (about probe_timeout_ms x missed_probes_limit, plus slack on a loaded host).</summary>
    public static readonly TimeSpan FastWindow = TimeSpan.FromSeconds(15);

    public SourceSubscriptions(
        IGrainFactory grains,
        FrameObserver observer,
        IOptions<ClusterSettings> cluster,
        ClusterChangeSignal clusterChanges,
        ILogger<SourceSubscriptions> log
    )
        : this(grains, observer, cluster, clusterChanges, log, raw: false) { }

    internal SourceSubscriptions(
        IGrainFactory grains,
        FrameObserver observer,
        IOptions<ClusterSettings> cluster,
        ClusterChangeSignal clusterChanges,
        ILogger<SourceSubscriptions> log,
        bool raw
    )
    {
        _grains = grains;
        _observer = observer;
        _raw = raw;
        _log = log;
        _refresh = TimeSpan.FromMilliseconds(cluster.Value.ObserverRefreshMs);
        FastPeriod = TimeSpan.FromMilliseconds(Math.Min(250, cluster.Value.ObserverRefreshMs));
        _clusterChanges = clusterChanges;
        clusterChanges.Changed += OnClusterChanged;
    }

    /// <summary>Renewal rounds that failed for at least one registration (status API).</summary>
    public long RefreshFailures => Interlocked.Read(ref _refreshFailures);

    /// <summary>The sources whose grain has confirmed this gateway's registration (status API). A source is
    /// wanted from the first viewer on, but only listed once its ClientGrain answered the subscribe call: a frame
    /// published before that reaches no viewer here, so "subscribed" must not be claimed earlier.</summary>
    public IReadOnlyCollection<string> Sources
    {
        get
        {
            lock (_gate)
                return [.. _confirmed];
        }
    }

    /// <summary>True once the source directory confirmed the all-sources registration.</summary>
    public bool AllSources
    {
        get
        {
            lock (_gate)
                return _allSources > 0 && _allConfirmed;
        }
    }

    /// <summary>The observer reference, created once. The runtime holds observers weakly: this instance (a
    /// singleton) keeps the object alive for the life of the gateway.</summary>
    private IFrameObserver Reference
    {
        get
        {
            lock (_gate)
                return _reference ??= _grains.CreateObjectReference<IFrameObserver>(_observer);
        }
    }

    /// <summary>A viewer of <paramref name="source"/> (null: all sources) arrived.</summary>
    public async Task AcquireAsync(string? source)
    {
        bool first;
        lock (_gate)
        {
            if (source is null)
                first = ++_allSources == 1;
            else
            {
                _refCounts.TryGetValue(source, out var n);
                _refCounts[source] = n + 1;
                first = n == 0;
            }
            EnsureLoop();
        }
        if (!first)
            return;
        try
        {
            await SubscribeAsync(source);
        }
        catch (Exception e)
        {
            // The refresh loop retries; the viewer stays connected and gets frames once the cluster answers.
            LogSubscribeFailed(e, source ?? "*");
        }
    }

    public void Release(string? source)
    {
        bool last;
        lock (_gate)
        {
            if (source is null)
            {
                last = --_allSources == 0;
                if (last)
                    _allConfirmed = false;
            }
            else
            {
                var n = _refCounts[source] - 1;
                last = n == 0;
                if (last)
                {
                    _refCounts.Remove(source);
                    _confirmed.Remove(source);
                }
                else
                {
                    _refCounts[source] = n;
                }
            }
        }
        if (!last)
            return;
        _ = UnsubscribeAsync(source);
    }

    private async Task SubscribeAsync(string? source)
    {
        await (
            source is null ? _grains.GetGrain<ISourceDirectoryGrain>(ISourceDirectoryGrain.Key).SubscribeAll(Reference)
            : _raw ? _grains.GetGrain<IClientGrain>(source).SubscribeRaw(Reference)
            : _grains.GetGrain<IClientGrain>(source).Subscribe(Reference)
        );
        lock (_gate)
        {
            // Confirmed only while still wanted: a late answer for a source every viewer left adds nothing.
            if (source is null)
                _allConfirmed = _allSources > 0;
            else if (_refCounts.ContainsKey(source))
                _confirmed.Add(source);
        }
    }

    private async Task UnsubscribeAsync(string? source)
    {
        try
        {
            if (source is null)
                await _grains.GetGrain<ISourceDirectoryGrain>(ISourceDirectoryGrain.Key).UnsubscribeAll(Reference);
            else if (_raw)
                await _grains.GetGrain<IClientGrain>(source).UnsubscribeRaw(Reference);
            else
                await _grains.GetGrain<IClientGrain>(source).Unsubscribe(Reference);

            // A viewer may have come back while the unsubscribe was in flight: its subscribe may have landed
            // first, so register again rather than leave it without frames until the next refresh.
            bool back;
            lock (_gate)
                back = source is null ? _allSources > 0 : _refCounts.ContainsKey(source);
            if (back)
                await SubscribeAsync(source);
        }
        catch (Exception e)
        {
            LogSubscribeFailed(e, source ?? "*"); // it expires by itself
        }
    }

    private void EnsureLoop()
    {
        if (_loopRunning)
            return;
        _loopRunning = true;
        _loopCts?.Dispose();
        _loopCts = new CancellationTokenSource();
        // Not in the flow of the viewer request that happened to start it: its span must not parent every
        // refresh for the life of the gateway.
        using (ExecutionContext.SuppressFlow())
            _loop = Task.Run(() => RefreshLoopAsync(_loopCts.Token));
    }

    private void OnClusterChanged(string reason)
    {
        TaskCompletionSource wake;
        lock (_gate)
        {
            if (_refCounts.Count == 0 && _allSources == 0)
                return; // nothing registered anywhere
            Volatile.Write(ref _fastUntil, Environment.TickCount64 + (long)FastWindow.TotalMilliseconds);
            wake = _wake;
        }
        LogClusterChanged(reason);
        wake.TrySetResult();
    }

    private async Task RefreshLoopAsync(CancellationToken ct)
    {
        var failed = false;
        try
        {
            while (true)
            {
                var fast = failed || Environment.TickCount64 < Volatile.Read(ref _fastUntil);
                Task wake;
                lock (_gate)
                    wake = _wake.Task;
                await Task.WhenAny(wake, Task.Delay(fast ? FastPeriod : _refresh, ct)).ConfigureAwait(false);
                ct.ThrowIfCancellationRequested();
                lock (_gate)
                {
                    if (_wake.Task.IsCompleted)
                        _wake = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                }

                string[] sources;
                bool all;
                lock (_gate)
                {
                    sources = [.. _refCounts.Keys];
                    all = _allSources > 0;
                    if (sources.Length == 0 && !all)
                    {
                        _loopRunning = false; // nothing to keep alive: the loop ends (a new viewer starts another)
                        return;
                    }
                }
                var calls = new List<Task>(sources.Length + 1);
                foreach (var s in sources)
                    calls.Add(SubscribeAsync(s));
                if (all)
                    calls.Add(SubscribeAsync(null));
                try
                {
                    // A call to a grain whose silo just died may hang until the silo is declared dead: give up on
                    // the round after one period and try again (a late success is harmless, it is idempotent).
                    await Task.WhenAll(calls).WaitAsync(fast ? FastPeriod * 2 : _refresh, ct).ConfigureAwait(false);
                    if (failed)
                        LogRefreshRecovered();
                    failed = false;
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    Interlocked.Increment(ref _refreshFailures);
                    if (!failed)
                        LogRefreshFailed(e, FastPeriod.TotalMilliseconds);
                    failed = true;
                }
            }
        }
        catch (OperationCanceledException)
        {
            lock (_gate)
                _loopRunning = false;
        }
    }

    public async ValueTask DisposeAsync()
    {
        _clusterChanges.Changed -= OnClusterChanged;
        _loopCts?.Cancel();
        await _loop.ConfigureAwait(false);
        _loopCts?.Dispose();
    }

    [LoggerMessage(
        Level = LogLevel.Warning,
        Message = "subscribing to source {Source} failed; retrying on the next refresh"
    )]
    private partial void LogSubscribeFailed(Exception e, string source);

    [LoggerMessage(
        Level = LogLevel.Warning,
        Message = "refreshing source subscriptions failed; retrying every {FastMs} ms until it succeeds"
    )]
    private partial void LogRefreshFailed(Exception e, double fastMs);

    [LoggerMessage(Level = LogLevel.Information, Message = "source subscriptions renewed again")]
    private partial void LogRefreshRecovered();

    [LoggerMessage(
        Level = LogLevel.Information,
        Message = "cluster changed ({Reason}): renewing source subscriptions now"
    )]
    private partial void LogClusterChanged(string reason);
}
