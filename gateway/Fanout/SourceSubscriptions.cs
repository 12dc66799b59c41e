using Blankend.Orleans.Configuration;
using Microsoft.Extensions.Options;

namespace Blankend.Orleans.Gateway.Fanout;

/// <summary>
/// Registers this gateway's single observer ONCE per source it has viewers for (and once with the source
/// directory while it has all-source viewers), however many viewers there are. Registrations expire in the
/// cluster unless renewed, so a refresh loop runs while (and only while) something is subscribed; it also
/// re-registers after a silo loss.
/// </summary>
public sealed partial class SourceSubscriptions : IAsyncDisposable
{
    private readonly IGrainFactory _grains;
    private readonly FrameObserver _observer;
    private readonly ILogger<SourceSubscriptions> _log;
    private readonly TimeSpan _refresh;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, int> _refCounts = new(StringComparer.Ordinal);
    private int _allSources;
    private IFrameObserver? _reference;
    private CancellationTokenSource? _loopCts;
    private Task _loop = Task.CompletedTask;
    private bool _loopRunning; // under _gate: the loop clears it in the same locked step in which it decides to end

    public SourceSubscriptions(IGrainFactory grains, FrameObserver observer, IOptions<ClusterSettings> cluster,
        ILogger<SourceSubscriptions> log)
    {
        _grains = grains;
        _observer = observer;
        _log = log;
        _refresh = TimeSpan.FromMilliseconds(cluster.Value.ObserverRefreshMs);
    }

    public IReadOnlyCollection<string> Sources
    {
        get { lock (_gate) return [.. _refCounts.Keys]; }
    }

    public bool AllSources
    {
        get { lock (_gate) return _allSources > 0; }
    }

    /// <summary>The observer reference, created once. The runtime holds observers weakly: this instance (a
    /// singleton) keeps the object alive for the life of the gateway.</summary>
    private IFrameObserver Reference
    {
        get
        {
            lock (_gate) return _reference ??= _grains.CreateObjectReference<IFrameObserver>(_observer);
        }
    }

    /// <summary>A viewer of <paramref name="source"/> (null: all sources) arrived.</summary>
    public async Task AcquireAsync(string? source)
    {
        bool first;
        lock (_gate)
        {
            if (source is null) first = ++_allSources == 1;
            else
            {
                _refCounts.TryGetValue(source, out var n);
                _refCounts[source] = n + 1;
                first = n == 0;
            }
            EnsureLoop();
        }
        if (!first) return;
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
            if (source is null) last = --_allSources == 0;
            else
            {
                var n = _refCounts[source] - 1;
                last = n == 0;
                if (last) _refCounts.Remove(source); else _refCounts[source] = n;
            }
        }
        if (!last) return;
        _ = UnsubscribeAsync(source);
    }

    private Task SubscribeAsync(string? source) => source is null
        ? _grains.GetGrain<ISourceDirectoryGrain>(ISourceDirectoryGrain.Key).SubscribeAll(Reference)
        : _grains.GetGrain<IClientGrain>(source).Subscribe(Reference);

    private async Task UnsubscribeAsync(string? source)
    {
        try
        {
            if (source is null) await _grains.GetGrain<ISourceDirectoryGrain>(ISourceDirectoryGrain.Key).UnsubscribeAll(Reference);
            else await _grains.GetGrain<IClientGrain>(source).Unsubscribe(Reference);

            // A viewer may have come back while the unsubscribe was in flight: its subscribe may have landed
            // first, so register again rather than leave it without frames until the next refresh.
            bool back;
            lock (_gate) back = source is null ? _allSources > 0 : _refCounts.ContainsKey(source);
            if (back) await SubscribeAsync(source);
        }
        catch (Exception e)
        {
            LogSubscribeFailed(e, source ?? "*"); // it expires by itself
        }
    }

    private void EnsureLoop()
    {
        if (_loopRunning) return;
        _loopRunning = true;
        _loopCts?.Dispose();
        _loopCts = new CancellationTokenSource();
        // Not in the flow of the viewer request that happened to start it: its span must not parent every
        // refresh for the life of the gateway.
        using (ExecutionContext.SuppressFlow()) _loop = Task.Run(() => RefreshLoopAsync(_loopCts.Token));
    }

    private async Task RefreshLoopAsync(CancellationToken ct)
    {
        using var timer = new PeriodicTimer(_refresh);
        try
        {
            while (await timer.WaitForNextTickAsync(ct))
            {
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
                foreach (var s in sources) calls.Add(SubscribeAsync(s));
                if (all) calls.Add(SubscribeAsync(null));
                try
                {
                    await Task.WhenAll(calls).WaitAsync(_refresh, ct);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    LogRefreshFailed(e);
                }
            }
        }
        catch (OperationCanceledException)
        {
            lock (_gate) _loopRunning = false;
        }
    }

    public async ValueTask DisposeAsync()
    {
        _loopCts?.Cancel();
        await _loop.ConfigureAwait(false);
        _loopCts?.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "subscribing to source {Source} failed; retrying on the next refresh")]
    private partial void LogSubscribeFailed(Exception e, string source);

    [LoggerMessage(Level = LogLevel.Warning, Message = "refreshing source subscriptions failed; retrying")]
    private partial void LogRefreshFailed(Exception e);
}
