namespace Blankend.Orleans.Gateway.Fanout;

/// <summary>
/// The local fan-out of one gateway: frames that come back from the cluster (one observer call per frame per
/// gateway) go to every local viewer of that source, and to the viewers of all sources.
/// </summary>
public sealed class ViewerHub(GatewayCounters counters)
{
    private readonly Lock _gate = new();

    // Copy-on-write arrays: Dispatch reads them without a lock; viewers join and leave rarely.
    private Dictionary<string, Viewer[]> _bySource = new(StringComparer.Ordinal);
    private Viewer[] _allSources = [];

    private readonly Dictionary<string, Cursor> _cursors = new(StringComparer.Ordinal);

    /// <summary>Last (epoch, seq) delivered per source. Also the lock that keeps each source's frames in order
    /// into the viewer queues when observer calls arrive on several threads.</summary>
    private sealed class Cursor
    {
        public long Epoch;
        public long Seq;
    }

    public int ViewerCount
    {
        get
        {
            var n = _allSources.Length;
            foreach (var v in _bySource.Values) n += v.Length;
            return n;
        }
    }

    public IEnumerable<Viewer> Viewers => _allSources.Concat(_bySource.Values.SelectMany(v => v));

    public void Add(Viewer viewer)
    {
        lock (_gate)
        {
            if (viewer.Source is null)
            {
                _allSources = [.. _allSources, viewer];
                return;
            }
            var map = new Dictionary<string, Viewer[]>(_bySource, StringComparer.Ordinal);
            map[viewer.Source] = map.TryGetValue(viewer.Source, out var list) ? [.. list, viewer] : [viewer];
            _bySource = map;
        }
    }

    public void Remove(Viewer viewer)
    {
        lock (_gate)
        {
            if (viewer.Source is null)
            {
                _allSources = Array.FindAll(_allSources, v => v != viewer);
                return;
            }
            if (!_bySource.TryGetValue(viewer.Source, out var list)) return;
            var map = new Dictionary<string, Viewer[]>(_bySource, StringComparer.Ordinal);
            var rest = Array.FindAll(list, v => v != viewer);
            if (rest.Length == 0) map.Remove(viewer.Source);
            else map[viewer.Source] = rest;
            _bySource = map;
        }
    }

    /// <summary>Called for every frame that reaches this gateway. Never blocks on a viewer.</summary>
    public void Dispatch(FrameEnvelope frame)
    {
        counters.FrameFromCluster();
        Cursor cursor;
        lock (_cursors)
        {
            if (!_cursors.TryGetValue(frame.Source, out cursor!)) _cursors[frame.Source] = cursor = new Cursor();
        }

        lock (cursor)
        {
            // At most once and in order per source: a repeat or a late frame of the same activation is dropped.
            if (cursor.Epoch == frame.Epoch && frame.Seq <= cursor.Seq)
            {
                counters.StaleFrame();
                return;
            }
            cursor.Epoch = frame.Epoch;
            cursor.Seq = frame.Seq;

            var item = new OutFrame(frame);
            if (_bySource.TryGetValue(frame.Source, out var viewers))
            {
                foreach (var v in viewers) v.Enqueue(item);
            }
            foreach (var v in _allSources) v.Enqueue(item);
        }
    }
}
