using Blankend.Orleans.Gateway.Telemetry;

namespace Blankend.Orleans.Gateway.Fanout;

/// <summary>
/// The local fan-out of one gateway: frames that come back from the cluster (one observer call per frame per
/// gateway) go to every local viewer of that source, and to the viewers of all sources.
/// </summary>
internal sealed class ViewerHub(GatewayCounters counters)
{
    /// <summary>Viewers written to on the dispatching thread; the rest go in batches of this size to the thread
    /// pool (both cores copy into the connections' buffers; one work item per batch, not one per viewer).</summary>
    internal const int BatchSize = 32;

    private readonly Lock _gate = new();
    private long _order; // WireFrame.Order: +1 per frame dispatched (in order per source: under its cursor lock)

    // Copy-on-write arrays: Dispatch reads them without a lock; viewers join and leave rarely.
    private Dictionary<string, Viewer[]> _bySource = new(StringComparer.Ordinal);
    private Viewer[] _allSources = [];

    private readonly Dictionary<string, Cursor> _cursors = new(StringComparer.Ordinal);

    /// <summary>Last (epoch, seq) delivered per source, and the epoch before it. Also the lock that keeps each
    /// source's frames in order into the viewer queues when observer calls arrive on several threads. Exists
    /// while this gateway watches the source: it is dropped with the source's last viewer, so that frames sent
    /// while nobody here was watching are not mistaken for lost ones.</summary>
    private sealed class Cursor
    {
        public long Epoch;
        public long Seq;

        /// <summary>Seqs of this epoch skipped by a later frame (counted lost until they turn up late). Null
        /// while frames arrive in order: the hot path never touches it.</summary>
        public HashSet<long>? Missing;
        public long PreviousEpoch;
        public long PreviousSeq;
        public HashSet<long>? PreviousMissing;
        public long Delivered;
        public long Stale;
        public long Lost;
        public long Duplicates;
    }

    /// <summary>How many skipped seqs a cursor remembers (the most recent ones): a frame later than that is
    /// counted as a duplicate instead of moving from lost to stale.</summary>
    private const int MaxMissing = 1024;

    /// <summary>Per watched source: where its frames stand on this gateway (status API).</summary>
    public sealed record WatchedSource(
        string Source,
        long Epoch,
        long Seq,
        long Frames,
        long Stale,
        long Lost,
        long Duplicates
    );

    public List<WatchedSource> Watched
    {
        get
        {
            KeyValuePair<string, Cursor>[] all;
            lock (_cursors)
                all = [.. _cursors];
            var result = new List<WatchedSource>(all.Length);
            foreach (var (source, c) in all)
            {
                lock (c)
                    result.Add(new WatchedSource(source, c.Epoch, c.Seq, c.Delivered, c.Stale, c.Lost, c.Duplicates));
            }
            result.Sort((a, b) => string.CompareOrdinal(a.Source, b.Source));
            return result;
        }
    }

    public int ViewerCount
    {
        get
        {
            var n = _allSources.Length;
            foreach (var v in _bySource.Values)
                n += v.Length;
            return n;
        }
    }

    /// <summary>The pool of this hub's framed-frame buffers (<see cref="WireFramePool.Rented"/>: not returned
    /// yet).</summary>
    public WireFramePool Buffers { get; } = new();

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
                if (_allSources.Length == 0)
                {
                    lock (_cursors)
                    {
                        foreach (var source in _cursors.Keys.ToArray())
                        {
                            if (!_bySource.ContainsKey(source))
                                _cursors.Remove(source);
                        }
                    }
                }
                return;
            }
            if (!_bySource.TryGetValue(viewer.Source, out var list))
                return;
            var map = new Dictionary<string, Viewer[]>(_bySource, StringComparer.Ordinal);
            var rest = Array.FindAll(list, v => v != viewer);
            if (rest.Length == 0)
                map.Remove(viewer.Source);
            else
                map[viewer.Source] = rest;
            _bySource = map;
            if (rest.Length == 0 && _allSources.Length == 0)
            {
                lock (_cursors)
                    _cursors.Remove(viewer.Source);
            }
        }
    }

    /// <summary>Called for every frame that reaches this gateway. Never blocks on a viewer.</summary>
    public void Dispatch(FrameEnvelope frame)
    {
        counters.FrameFromCluster();
        Cursor cursor;
        lock (_cursors)
        {
            if (!_cursors.TryGetValue(frame.Source, out cursor!))
                _cursors[frame.Source] = cursor = new Cursor();
        }

        lock (cursor)
        {
            // At most once and in order per source: a frame not newer than the last one delivered (of the same
            // activation, or of the one before it) is dropped: "stale" when it is late (it was counted lost
            // when a later frame overtook it, and moves from lost to stale), "duplicate" when it was delivered.
            if (
                cursor.Epoch == frame.Epoch
                    ? frame.Seq <= cursor.Seq
                    : cursor.PreviousEpoch == frame.Epoch && frame.Epoch != 0
            )
            {
                DropOld(cursor, frame);
                return;
            }
            // Gaps in seq are frames the source's grain routed here that never arrived: observer calls lost with
            // a silo, or frames routed by a new activation (after a silo loss) before this gateway re-registered.
            // A cursor exists only while this gateway watches the source, so the gap is this gateway's loss.
            if (cursor.Epoch != frame.Epoch)
            {
                cursor.PreviousEpoch = cursor.Epoch;
                cursor.PreviousSeq = cursor.Seq;
                cursor.PreviousMissing = cursor.Missing;
                cursor.Missing = null;
                var first = cursor.PreviousEpoch != 0; // not the first frame this gateway sees of the source
                cursor.Epoch = frame.Epoch;
                cursor.Seq = first ? 0 : frame.Seq - 1;
            }
            if (frame.Seq > cursor.Seq + 1)
                AddMissing(cursor, cursor.Seq + 1, frame.Seq - 1);
            cursor.Seq = frame.Seq;
            cursor.Delivered++;

            _bySource.TryGetValue(frame.Source, out var viewers);
            var all = _allSources;
            var targets =
                all.Length == 0 ? viewers ?? []
                : viewers is null ? all
                : [.. viewers, .. all];
            if (targets.Length == 0)
                return;

            // Framed once for every viewer; the hub's reference is released when the last batch is done.
            var wire = WireFrame.Create(frame, Interlocked.Increment(ref _order), Buffers);
            for (var start = BatchSize; start < targets.Length; start += BatchSize)
            {
                wire.AddRef();
                ThreadPool.UnsafeQueueUserWorkItem(new Batch(wire, targets, start), preferLocal: false);
            }
            Offer(wire, targets, 0);
            wire.Release();
        }
    }

    private static void Offer(WireFrame wire, Viewer[] targets, int start)
    {
        var end = Math.Min(start + BatchSize, targets.Length);
        var kind = wire.Frame.Kind;
        for (var i = start; i < end; i++)
        {
            var v = targets[i];
            if (v.Accepts(kind))
                v.Offer(wire);
        }
    }

    private sealed class Batch(WireFrame wire, Viewer[] targets, int start) : IThreadPoolWorkItem
    {
        public void Execute()
        {
            try
            {
                Offer(wire, targets, start);
            }
            finally
            {
                wire.Release();
            }
        }
    }

    private void AddMissing(Cursor cursor, long from, long to)
    {
        var gap = to - from + 1;
        counters.FramesLost(gap);
        cursor.Lost += gap;
        var missing = cursor.Missing ??= [];
        for (var seq = Math.Max(from, to - MaxMissing + 1); seq <= to; seq++)
            missing.Add(seq);
        if (missing.Count > MaxMissing)
            missing.RemoveWhere(seq => seq <= to - MaxMissing);
    }

    private void DropOld(Cursor cursor, FrameEnvelope frame)
    {
        var current = cursor.Epoch == frame.Epoch;
        var missing = current ? cursor.Missing : cursor.PreviousMissing;
        var countedLost = missing?.Remove(frame.Seq) == true; // late: counted lost when it was overtaken
        if (!countedLost && (current || frame.Seq <= cursor.PreviousSeq))
        {
            counters.DuplicateFrame();
            cursor.Duplicates++;
            return;
        }
        // Late: overtaken (counted lost until now), or one of the previous activation's last frames arriving
        // after the new one's first (never counted before).
        counters.LateFrame(countedLost);
        if (countedLost)
            cursor.Lost--;
        cursor.Stale++;
    }
}
