using Blankend.Orleans.Configuration;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Blankend.Orleans.Grains.Client;

/// <summary>
/// Knows the active sources and the gateways with all-source viewers. Reentrant: its state changes happen
/// between awaits only, and a push to a ClientGrain that is itself activating (and calling RegisterSource)
/// must not deadlock.
/// </summary>
[Reentrant]
internal sealed partial class SourceDirectoryGrain : Grain, ISourceDirectoryGrain
{
    private readonly ILogger<SourceDirectoryGrain> _log;
    private readonly long _expiryMs;
    private readonly Dictionary<string, long> _sources = new(StringComparer.Ordinal);
    private readonly Dictionary<IFrameObserver, long> _all = [];
    private WildcardSet _wildcard = WildcardSet.Empty;
    private long _nextPurge;

    public SourceDirectoryGrain(ILogger<SourceDirectoryGrain> log, IOptions<ClusterSettings> cluster)
    {
        _log = log;
        _expiryMs = 3L * cluster.Value.ObserverRefreshMs;
    }

    public Task<WildcardSet> RegisterSource(string source)
    {
        var now = Environment.TickCount64;
        _sources[source] = now + _expiryMs;
        return PurgeIfDue(now) ? PushAndReturn() : Task.FromResult(_wildcard);

        async Task<WildcardSet> PushAndReturn()
        {
            await PushWildcard();
            return _wildcard;
        }
    }

    public Task UnregisterSource(string source)
    {
        _sources.Remove(source);
        return Task.CompletedTask;
    }

    public async Task SubscribeAll(IFrameObserver observer)
    {
        var now = Environment.TickCount64;
        var added = !_all.ContainsKey(observer);
        _all[observer] = now + _expiryMs;
        if (PurgeIfDue(now) || added)
        {
            LogWildcard(_all.Count);
            await PushWildcard();
        }
    }

    public async Task UnsubscribeAll(IFrameObserver observer)
    {
        if (_all.Remove(observer))
            await PushWildcard();
    }

    public Task<string[]> ListSources()
    {
        PurgeIfDue(Environment.TickCount64);
        var names = _sources.Keys.ToArray();
        Array.Sort(names, StringComparer.Ordinal);
        return Task.FromResult(names);
    }

    public Task<string> Ping() => Task.FromResult(RuntimeIdentity);

    /// <summary>Drops expired entries; true when the wildcard set changed.</summary>
    private bool PurgeIfDue(long now)
    {
        if (now < _nextPurge)
            return false;
        _nextPurge = now + 1000;
        foreach (var (s, expiry) in _sources.ToArray())
            if (expiry <= now)
                _sources.Remove(s);
        var changed = false;
        foreach (var (o, expiry) in _all.ToArray())
        {
            if (expiry <= now)
            {
                _all.Remove(o);
                changed = true;
            }
        }
        return changed;
    }

    private async Task PushWildcard()
    {
        var set = new WildcardSet(_wildcard.Version + 1, [.. _all.Keys]);
        _wildcard = set;
        var sources = _sources.Keys.ToArray();
        var calls = new Task[sources.Length];
        for (var i = 0; i < sources.Length; i++)
        {
            calls[i] = GrainFactory.GetGrain<IClientGrain>(sources[i]).SetWildcardObservers(set);
        }
        try
        {
            await Task.WhenAll(calls);
        }
        catch (Exception e)
        {
            LogPushFailed(e);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "all-source observers: {Count}")]
    private partial void LogWildcard(int count);

    [LoggerMessage(
        Level = LogLevel.Warning,
        Message = "pushing all-source observers failed for some sources (they catch up on their next refresh)"
    )]
    private partial void LogPushFailed(Exception e);
}
