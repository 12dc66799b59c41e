using Blankend.Orleans.Configuration;
using Microsoft.Extensions.Options;

namespace Blankend.Orleans.Limits;

/// <summary>
/// The distinct live sources of this process, for <c>limits.max_sources</c> and <c>limits.max_bus_sources</c>.
/// A source is live while an ingest socket of it is open here, or (bus) while it was heard within the idle
/// window. One instance per process: in the embedded mode the gateway and the silo's bus link share it.
/// </summary>
public sealed class LiveSources(IOptions<LimitsOptions> limits, IOptions<StreamOptions> stream)
{
    private sealed class Entry
    {
        public int Sockets;
        public long BusLastMs;
    }

    private readonly Dictionary<string, Entry> _live = new(StringComparer.Ordinal);
    private readonly object _lock = new();
    private int _busSources;
    private long _lastSweepMs;

    private int MaxSources => limits.Value.MaxSources;
    private long BusWindowMs => Math.Max(1, stream.Value.IdleTimeoutSeconds) * 1000L;

    public int Count
    {
        get
        {
            lock (_lock)
                return _live.Count;
        }
    }

    /// <summary>An ingest socket of <paramref name="source"/> opens: false when that would make one source too
    /// many.</summary>
    public bool TryAcquireSocket(string source)
    {
        lock (_lock)
        {
            if (_live.TryGetValue(source, out var e))
            {
                e.Sockets++;
                return true;
            }
            if (_live.Count >= MaxSources)
                return false;
            _live[source] = new Entry { Sockets = 1 };
            return true;
        }
    }

    public void ReleaseSocket(string source)
    {
        lock (_lock)
        {
            if (!_live.TryGetValue(source, out var e))
                return;
            if (--e.Sockets <= 0 && e.BusLastMs == 0)
                _live.Remove(source);
        }
    }

    /// <summary>A bus message of <paramref name="source"/>: false (drop it) when it is a new source over
    /// <c>max_sources</c> or <c>max_bus_sources</c>.</summary>
    public bool TryTouchBus(string source, long nowMs)
    {
        lock (_lock)
        {
            if (nowMs - _lastSweepMs >= 1000)
                Sweep(nowMs);
            if (_live.TryGetValue(source, out var e))
            {
                if (e.BusLastMs == 0)
                {
                    if (_busSources >= limits.Value.MaxBusSources)
                        return false;
                    _busSources++;
                }
                e.BusLastMs = nowMs;
                return true;
            }
            if (_live.Count >= MaxSources || _busSources >= limits.Value.MaxBusSources)
                return false;
            _live[source] = new Entry { BusLastMs = nowMs };
            _busSources++;
            return true;
        }
    }

    private void Sweep(long nowMs)
    {
        _lastSweepMs = nowMs;
        List<string>? gone = null;
        foreach (var (source, e) in _live)
        {
            if (e.BusLastMs == 0 || nowMs - e.BusLastMs < BusWindowMs)
                continue;
            e.BusLastMs = 0;
            _busSources--;
            if (e.Sockets <= 0)
                (gone ??= []).Add(source);
        }
        if (gone is not null)
            foreach (var s in gone)
                _live.Remove(s);
    }
}
