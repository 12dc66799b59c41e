namespace Blankend.Orleans.Grains.Relay;

/// <summary>
/// Loop prevention: remembers the 64-bit hashes (XxHash64 of the bytes, the JPEG is never altered) of payloads this
/// service sent to the bus in the last <see cref="Ttl"/>. An inbound frame whose hash is present is our own coming
/// back (a ROUTER that echoes): it consumes one occurrence and is neither delivered nor re-sent. Counting
/// occurrences means a peer that really sends the same bytes again is only mistaken for an echo while we have an
/// unanswered send of those bytes outstanding. Bounded: past <see cref="Capacity"/> entries the oldest go first.
/// Not thread-safe: the RelayGrain (single-threaded) owns it.
/// </summary>
internal sealed class EchoFilter(TimeSpan ttl, int capacity)
{
    public static readonly TimeSpan DefaultTtl = TimeSpan.FromSeconds(5);
    public const int DefaultCapacity = 16_384;

    private struct Entry
    {
        public int Count;
        public long Expiry;
    }

    private readonly long _ttlMs = (long)ttl.TotalMilliseconds;
    private readonly Dictionary<ulong, Entry> _entries = new(Math.Min(capacity, 1024));
    private readonly Queue<(ulong Hash, long Expiry)> _order = new();

    public TimeSpan Ttl => ttl;

    public int Capacity => capacity;

    public int Count => _entries.Count;

    /// <summary>Records one send of a payload with this hash.</summary>
    public void Add(ulong hash, long nowMs)
    {
        Prune(nowMs);
        ref var e = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(
            _entries,
            hash,
            out var existed
        );
        e.Count = existed ? e.Count + 1 : 1;
        e.Expiry = nowMs + _ttlMs;
        _order.Enqueue((hash, e.Expiry));
        while (_entries.Count > capacity && _order.TryDequeue(out var old))
            Evict(old.Hash, old.Expiry, force: true);
    }

    /// <summary>True (and one occurrence used up) when a payload with this hash was sent within the TTL.</summary>
    public bool TryConsume(ulong hash, long nowMs)
    {
        Prune(nowMs);
        ref var e = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrNullRef(_entries, hash);
        if (System.Runtime.CompilerServices.Unsafe.IsNullRef(ref e))
            return false;
        if (--e.Count <= 0)
            _entries.Remove(hash);
        return true;
    }

    private void Prune(long nowMs)
    {
        while (_order.TryPeek(out var head) && head.Expiry <= nowMs)
        {
            _order.Dequeue();
            Evict(head.Hash, head.Expiry, force: false);
        }
        // Queue entries of hashes already consumed stay until they expire; keep the queue from outgrowing the bound.
        while (_order.Count > 2 * capacity && _order.TryDequeue(out var old))
            Evict(old.Hash, old.Expiry, force: false);
    }

    /// <summary>An entry goes when its LATEST send expires (or, forced, when the set is over capacity).</summary>
    private void Evict(ulong hash, long expiry, bool force)
    {
        if (_entries.TryGetValue(hash, out var e) && (force || e.Expiry <= expiry))
            _entries.Remove(hash);
    }
}
