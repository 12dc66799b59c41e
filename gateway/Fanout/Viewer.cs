using System.Diagnostics;
using System.Net.WebSockets;
using Blankend.Orleans.Gateway.Telemetry;
using Blankend.Orleans.Telemetry;

namespace Blankend.Orleans.Gateway.Fanout;

/// <summary>
/// One <c>/video_out</c> connection. A frame offered while the viewer is idle is written at once, on the
/// offering thread (no queue, no thread-pool hop); one offered while a write is in flight waits in a bounded
/// queue (drop-oldest, counted: a viewer always sees the newest frames), which the write's completion drains.
/// At most one write is in flight, so frames go out once and in order; a viewer that stops reading only fills its
/// own queue. Frames are pre-framed and shared (<see cref="WireFrame"/>): with a <see cref="WireStream"/> the
/// viewer writes their bytes to the connection as they are; without one (HTTP/2, tests) it sends them through the
/// WebSocket.
/// </summary>
internal sealed class Viewer
{
    private readonly Lock _lock = new();
    private readonly WireFrame?[] _ring;
    private readonly GatewayCounters _counters;
    private readonly WireStream? _wire;
    private int _head;
    private int _count;
    private bool _started;
    private bool _busy; // a write is in flight (or the loop that drains the queue runs)
    private bool _closed;
    private long _lastOrder; // per-source viewers: the last frame's order
    private Dictionary<string, long>? _lastOrderBySource; // all-sources viewers
    private TaskCompletionSource? _idle;
    private CancellationToken _ct;
    private long _sent;
    private long _dropped;

    public Viewer(
        WebSocket socket,
        string? source,
        bool meta,
        int queueSize,
        GatewayCounters counters,
        ViewerKind kind = ViewerKind.Any,
        WireStream? wire = null
    )
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(queueSize, 1);
        Socket = socket;
        Source = source;
        Meta = meta;
        Kind = kind;
        _counters = counters;
        _wire = wire;
        _ring = new WireFrame?[queueSize];
    }

    public WebSocket Socket { get; }

    /// <summary>The source watched, or null for all sources.</summary>
    public string? Source { get; }

    public bool Meta { get; }

    /// <summary>Which form of the frames this viewer asked for (<c>kind=</c>); raw viewers are fed by
    /// <see cref="RawFanout"/>, the others by the main hub.</summary>
    public ViewerKind Kind { get; }

    /// <summary>True when frames go straight to the connection (pre-framed), false when through the
    /// WebSocket.</summary>
    public bool WritesFramedBytes => _wire is not null;

    /// <summary>True when those bytes go straight to the socket (<see cref="SocketOutput"/>: plain TCP), false when
    /// through Kestrel's connection output (TLS).</summary>
    public bool WritesToSocket => _wire?.Direct == true;

    /// <summary>A <c>kind=processed</c> viewer skips the raw frames the main hub carries (processing off for
    /// the source, or a frame that bypassed a saturated worker).</summary>
    public bool Accepts(FrameKind kind) => Kind != ViewerKind.Processed || kind == FrameKind.Processed;

    public long Sent => Interlocked.Read(ref _sent);

    public long Dropped => Interlocked.Read(ref _dropped);

    public int Queued
    {
        get
        {
            lock (_lock)
                return _count;
        }
    }

    /// <summary>A write is in flight.</summary>
    public bool Writing
    {
        get
        {
            lock (_lock)
                return _busy;
        }
    }

    /// <summary>Never blocks on the connection beyond one write that completes at once: when a write is in flight
    /// the frame waits in the queue, and when the queue is full its oldest frame goes (counted).</summary>
    public void Offer(WireFrame frame)
    {
        lock (_lock)
        {
            if (_closed)
                return;
            if (!InOrder(frame))
            {
                // A later frame of the same source got here first (the hub's batches run on several threads):
                // this one is dropped, as the oldest would be.
                OnDropped();
                return;
            }
            frame.AddRef();
            if (_busy || !_started)
            {
                Push(frame);
                return;
            }
            _busy = true;
        }
        WriteLoop(frame);
    }

    /// <summary>Frames may go out from now on (the endpoint calls it once the viewer is subscribed); what was
    /// offered before is written first.</summary>
    public void Start(CancellationToken ct)
    {
        WireFrame? first;
        lock (_lock)
        {
            _ct = ct;
            _started = true;
            if (_closed || _busy || !TryPop(out first))
                return;
            _busy = true;
        }
        WriteLoop(first);
    }

    /// <summary>No more frames: the queued ones are released (not counted as drops: the viewer left). The task
    /// completes when no write is in flight any more.</summary>
    public Task CompleteAsync()
    {
        lock (_lock)
        {
            _closed = true;
            ReleaseQueued();
            if (!_busy)
                return Task.CompletedTask;
            return (_idle ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
        }
    }

    private bool InOrder(WireFrame frame)
    {
        if (Source is not null)
        {
            if (frame.Order <= _lastOrder)
                return false;
            _lastOrder = frame.Order;
            return true;
        }
        _lastOrderBySource ??= new Dictionary<string, long>(StringComparer.Ordinal);
        if (_lastOrderBySource.TryGetValue(frame.Frame.Source, out var last) && frame.Order <= last)
            return false;
        _lastOrderBySource[frame.Frame.Source] = frame.Order;
        return true;
    }

    private void Push(WireFrame frame)
    {
        if (_count == _ring.Length)
        {
            var oldest = _ring[_head]!;
            _ring[_head] = null;
            _head = (_head + 1) % _ring.Length;
            _count--;
            oldest.Release();
            OnDropped();
        }
        _ring[(_head + _count) % _ring.Length] = frame;
        _count++;
    }

    private bool TryPop(out WireFrame frame)
    {
        if (_count == 0)
        {
            frame = null!;
            return false;
        }
        frame = _ring[_head]!;
        _ring[_head] = null;
        _head = (_head + 1) % _ring.Length;
        _count--;
        return true;
    }

    private void ReleaseQueued()
    {
        while (TryPop(out var f))
            f.Release();
    }

    /// <summary>After a write: the next queued frame, or idle.</summary>
    private bool TryNext(out WireFrame frame)
    {
        lock (_lock)
        {
            if (!_closed && TryPop(out frame))
                return true;
            frame = null!;
            _busy = false;
            _idle?.TrySetResult();
            return false;
        }
    }

    /// <summary>Writes on the calling thread for as long as writes complete at once; the first one that does not
    /// continues in <see cref="ContinueAsync"/> when it completes.</summary>
    private void WriteLoop(WireFrame frame)
    {
        while (true)
        {
            var start = Stopwatch.GetTimestamp();
            ValueTask write;
            try
            {
                write = WriteAsync(frame);
            }
            catch (Exception e) when (IsConnectionFailure(e))
            {
                Fail(frame);
                return;
            }
            if (!write.IsCompleted)
            {
                _ = ContinueAsync(write, frame, start);
                return;
            }
            try
            {
                write.GetAwaiter().GetResult();
            }
            catch (Exception e) when (IsConnectionFailure(e))
            {
                Fail(frame);
                return;
            }
            Written(frame, start);
            if (!TryNext(out frame))
                return;
        }
    }

    private async Task ContinueAsync(ValueTask write, WireFrame frame, long start)
    {
        try
        {
            while (true)
            {
                await write.ConfigureAwait(false);
                Written(frame, start);
                if (!TryNext(out frame))
                    return;
                start = Stopwatch.GetTimestamp();
                write = WriteAsync(frame);
            }
        }
        catch (Exception e) when (IsConnectionFailure(e))
        {
            Fail(frame);
        }
    }

    private ValueTask WriteAsync(WireFrame frame) =>
        _wire is not null ? _wire.WriteAsync(frame.Bytes(Meta), _ct) : SendThroughWebSocketAsync(frame);

    private async ValueTask SendThroughWebSocketAsync(WireFrame frame)
    {
        if (Meta)
            await Socket.SendAsync(frame.MetaJson, WebSocketMessageType.Text, true, _ct).ConfigureAwait(false);
        await Socket.SendAsync(frame.Frame.Payload, WebSocketMessageType.Binary, true, _ct).ConfigureAwait(false);
    }

    private static bool IsConnectionFailure(Exception e) =>
        e
            is IOException
                or WebSocketException
                or OperationCanceledException
                or ObjectDisposedException
                or InvalidOperationException
                or System.Net.Sockets.SocketException;

    private void Written(WireFrame frame, long start)
    {
        Interlocked.Increment(ref _sent);
        _counters.FrameSent(frame.Frame.Payload.Length);
        RecordLatency(start, frame.Frame.TimestampMs);
        frame.Release();
    }

    /// <summary>A write failed or was cancelled: the connection may hold part of a frame, so nothing more can go on
    /// it. The viewer closes and the socket is aborted (the endpoint's read loop then ends).</summary>
    private void Fail(WireFrame frame)
    {
        frame.Release();
        lock (_lock)
        {
            _closed = true;
            _busy = false;
            ReleaseQueued();
            _idle?.TrySetResult();
        }
        Socket.Abort();
    }

    private static void RecordLatency(long sendStart, long enteredUnixMs)
    {
        BlankendMetrics.StageDuration.Record(
            Stopwatch.GetElapsedTime(sendStart).TotalSeconds,
            BlankendMetrics.Stages.ViewerSend
        );
        // Unix milliseconds on both ends: 1 ms resolution; when the frame entered on another host, that host's
        // clock offset is in it too (never below zero here).
        var sinceEntry = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - enteredUnixMs;
        BlankendMetrics.StageDuration.Record(Math.Max(0, sinceEntry) / 1000.0, BlankendMetrics.Stages.EntryToViewer);
    }

    private void OnDropped()
    {
        Interlocked.Increment(ref _dropped);
        _counters.ViewerDropped();
    }
}
