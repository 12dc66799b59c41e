using System.Diagnostics;
using System.Net.WebSockets;
using System.Threading.Channels;
using Blankend.Orleans.Gateway.Telemetry;
using Blankend.Orleans.Telemetry;

namespace Blankend.Orleans.Gateway.Fanout;

/// <summary>
/// One <c>/video_out</c> connection: a bounded queue (drop-oldest: a viewer always sees the newest frames) and
/// one async send loop. A viewer that stops reading only fills its own queue.
/// </summary>
internal sealed class Viewer
{
    private readonly Channel<OutFrame> _queue;
    private readonly GatewayCounters _counters;
    private long _sent;
    private long _dropped;

    public Viewer(WebSocket socket, string? source, bool meta, int queueSize, GatewayCounters counters, ViewerKind kind = ViewerKind.Any)
    {
        Socket = socket;
        Source = source;
        Meta = meta;
        Kind = kind;
        _counters = counters;
        _queue = Channel.CreateBounded<OutFrame>(
            new BoundedChannelOptions(queueSize)
            {
                FullMode = BoundedChannelFullMode.DropOldest,
                SingleReader = true,
                SingleWriter = false,
                AllowSynchronousContinuations = false,
            },
            _ => OnDropped());
    }

    public WebSocket Socket { get; }

    /// <summary>The source watched, or null for all sources.</summary>
    public string? Source { get; }

    public bool Meta { get; }

    /// <summary>Which form of the frames this viewer asked for (<c>kind=</c>); raw viewers are fed by
    /// <see cref="RawFanout"/>, the others by the main hub.</summary>
    public ViewerKind Kind { get; }

    /// <summary>A <c>kind=processed</c> viewer skips the raw frames the main hub carries (processing off for
    /// the source, or a frame that bypassed a saturated worker).</summary>
    public bool Accepts(FrameKind kind) => Kind != ViewerKind.Processed || kind == FrameKind.Processed;

    public long Sent => Interlocked.Read(ref _sent);

    public long Dropped => Interlocked.Read(ref _dropped);

    public int Queued => _queue.Reader.Count;

    /// <summary>Never blocks: when the queue is full the oldest frame goes (and is counted).</summary>
    public void Enqueue(OutFrame frame) => _queue.Writer.TryWrite(frame);

    public void Complete() => _queue.Writer.TryComplete();

    public async Task RunSendLoopAsync(CancellationToken ct)
    {
        var reader = _queue.Reader;
        while (await reader.WaitToReadAsync(ct).ConfigureAwait(false))
        {
            while (reader.TryRead(out var item))
            {
                var start = Stopwatch.GetTimestamp();
                if (Meta) await Socket.SendAsync(item.Meta, WebSocketMessageType.Text, true, ct).ConfigureAwait(false);
                await Socket.SendAsync(item.Frame.Payload, WebSocketMessageType.Binary, true, ct).ConfigureAwait(false);
                Interlocked.Increment(ref _sent);
                _counters.FrameSent(item.Frame.Payload.Length);
                RecordLatency(start, item.Frame.TimestampMs);
            }
        }
    }

    private static void RecordLatency(long sendStart, long enteredUnixMs)
    {
        BlankendMetrics.StageDuration.Record(Stopwatch.GetElapsedTime(sendStart).TotalSeconds, BlankendMetrics.Stages.ViewerSend);
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
