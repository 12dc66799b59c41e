using System.Buffers;
using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Text.Json;
using System.Threading.Channels;

namespace Blankend.Bench.BareRelay;

/// <summary>One ingested JPEG, shared (never copied again) by every viewer.</summary>
public sealed class Frame(string source, long seq, long tsMs, byte[] payload)
{
    public string Source { get; } = source;
    public long Seq { get; } = seq;
    public long TsMs { get; } = tsMs;
    public byte[] Payload { get; } = payload;

    /// <summary>UTF-8 meta JSON, built once by the publisher when a meta viewer needs it.</summary>
    public byte[]? Meta { get; set; }
}

public sealed class Viewer
{
    public const int QueueCapacity = 8;
    private long _dropped;

    public Viewer(string? source, bool meta)
    {
        Source = source;
        WantsMeta = meta;
        Queue = Channel.CreateBounded<Frame>(
            new BoundedChannelOptions(QueueCapacity)
            {
                FullMode = BoundedChannelFullMode.DropOldest,
                SingleReader = true,
                SingleWriter = false,
                AllowSynchronousContinuations = false,
            },
            _ => Interlocked.Increment(ref _dropped)
        );
    }

    public string? Source { get; }
    public bool WantsMeta { get; }
    public Channel<Frame> Queue { get; }
    public long Dropped => Interlocked.Read(ref _dropped);
    public long Sent;
}

/// <param name="stripCom">Drop a COM segment that follows SOI (a stand-in for a re-encode, for tests).</param>
public sealed class Relay(bool stripCom = false)
{
    private const int MaxFrameBytes = 16 * 1024 * 1024;
    private const int InitialReceiveBuffer = 256 * 1024;

    private sealed class SourceState
    {
        public long Seq;
        public long Bytes;
        public long Invalid;
    }

    private readonly ConcurrentDictionary<string, SourceState> _sources = new(StringComparer.Ordinal);
    private readonly Lock _viewersLock = new();
    private volatile Viewer[] _viewers = [];
    private long _droppedByGone;

    public async Task IngestAsync(WebSocket ws, string sourceId, CancellationToken ct)
    {
        var state = _sources.GetOrAdd(sourceId, _ => new SourceState());
        var buffer = new byte[InitialReceiveBuffer];
        var length = 0;
        // On shutdown start the close handshake (the receive loop below then sees the camera's
        // reply) and abort the socket if the camera has not answered within 2 s.
        using var abort = new CancellationTokenSource();
        using var reg = ct.Register(() =>
        {
            _ = CloseQuietlyAsync(ws, WebSocketCloseStatus.EndpointUnavailable, "server stopping");
            abort.CancelAfter(TimeSpan.FromSeconds(2));
        });
        try
        {
            while (true)
            {
                if (length == buffer.Length)
                {
                    if (buffer.Length >= MaxFrameBytes)
                    {
                        await CloseQuietlyAsync(ws, WebSocketCloseStatus.MessageTooBig, "frame too large");
                        return;
                    }
                    Array.Resize(ref buffer, Math.Min(buffer.Length * 2, MaxFrameBytes));
                }
                var r = await ws.ReceiveAsync(buffer.AsMemory(length), abort.Token);
                if (r.MessageType == WebSocketMessageType.Close)
                {
                    await CloseQuietlyAsync(ws, WebSocketCloseStatus.NormalClosure, null);
                    return;
                }
                if (ct.IsCancellationRequested)
                {
                    // Stopping: discard until the camera acknowledges the close.
                    length = 0;
                    continue;
                }
                length += r.Count;
                if (!r.EndOfMessage)
                {
                    continue;
                }
                if (r.MessageType == WebSocketMessageType.Binary)
                {
                    Publish(sourceId, state, buffer.AsSpan(0, length));
                }
                length = 0;
            }
        }
        catch (WebSocketException)
        {
            // Peer went away.
        }
        catch (OperationCanceledException) { }
    }

    private void Publish(string sourceId, SourceState state, ReadOnlySpan<byte> jpeg)
    {
        if (jpeg.Length < 4 || jpeg[0] != 0xFF || jpeg[1] != 0xD8 || jpeg[^2] != 0xFF || jpeg[^1] != 0xD9)
        {
            Interlocked.Increment(ref state.Invalid);
            return;
        }
        byte[] payload;
        if (
            stripCom
            && jpeg.Length > 6
            && jpeg[2] == 0xFF
            && jpeg[3] == 0xFE
            && 4 + ((jpeg[4] << 8) | jpeg[5]) < jpeg.Length
        )
        {
            var after = 4 + ((jpeg[4] << 8) | jpeg[5]);
            payload = new byte[2 + jpeg.Length - after];
            jpeg[..2].CopyTo(payload);
            jpeg[after..].CopyTo(payload.AsSpan(2));
        }
        else
        {
            payload = jpeg.ToArray();
        }
        var frame = new Frame(
            sourceId,
            Interlocked.Increment(ref state.Seq),
            DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
            payload
        );
        Interlocked.Add(ref state.Bytes, jpeg.Length);

        foreach (var v in _viewers)
        {
            if (v.Source is not null && !string.Equals(v.Source, sourceId, StringComparison.Ordinal))
            {
                continue;
            }
            if (v.WantsMeta && frame.Meta is null)
            {
                frame.Meta = BuildMeta(frame);
            }
            // DropOldest: TryWrite never fails while open, never blocks the camera.
            v.Queue.Writer.TryWrite(frame);
        }
    }

    private static byte[] BuildMeta(Frame f)
    {
        var buf = new ArrayBufferWriter<byte>(128);
        using (var w = new Utf8JsonWriter(buf))
        {
            w.WriteStartObject();
            w.WriteNumber("seq", f.Seq);
            w.WriteString("source", f.Source);
            w.WriteString("kind", "raw");
            w.WriteNumber("ts_ms", f.TsMs);
            w.WriteNumber("bytes", f.Payload.Length);
            w.WriteEndObject();
        }
        return buf.WrittenSpan.ToArray();
    }

    public async Task ServeViewerAsync(WebSocket ws, string? source, bool meta, CancellationToken ct)
    {
        var viewer = new Viewer(source, meta);
        AddViewer(viewer);
        var peerClosed = false;
        // Completing the queue ends the send loop (shutdown or peer close); then we close.
        using var reg = ct.Register(() => viewer.Queue.Writer.TryComplete());
        var drain = DrainAsync(ws, viewer, () => peerClosed = true);
        try
        {
            var reader = viewer.Queue.Reader;
            while (await reader.WaitToReadAsync(CancellationToken.None))
            {
                while (reader.TryRead(out var f))
                {
                    if (meta)
                    {
                        await ws.SendAsync(
                            (ReadOnlyMemory<byte>)f.Meta,
                            WebSocketMessageType.Text,
                            true,
                            CancellationToken.None
                        );
                    }
                    await ws.SendAsync(
                        (ReadOnlyMemory<byte>)f.Payload,
                        WebSocketMessageType.Binary,
                        true,
                        CancellationToken.None
                    );
                    viewer.Sent++;
                }
            }
        }
        catch (WebSocketException) { }
        catch (OperationCanceledException) { }
        finally
        {
            RemoveViewer(viewer);
        }
        await CloseQuietlyAsync(
            ws,
            peerClosed ? WebSocketCloseStatus.NormalClosure : WebSocketCloseStatus.EndpointUnavailable,
            peerClosed ? null : "server stopping"
        );
        try
        {
            // the server is stopping: ct is already cancelled
            await drain.WaitAsync(TimeSpan.FromSeconds(2), CancellationToken.None);
        }
        catch (TimeoutException)
        {
            ws.Abort();
        }
    }

    /// <summary>Reads (and discards) what the viewer sends, to notice its close or disconnect.</summary>
    private static async Task DrainAsync(WebSocket ws, Viewer viewer, Action onPeerClose)
    {
        var buf = new byte[1024];
        try
        {
            while (true)
            {
                var r = await ws.ReceiveAsync(buf.AsMemory(), CancellationToken.None);
                if (r.MessageType == WebSocketMessageType.Close)
                {
                    onPeerClose();
                    break;
                }
            }
        }
        catch (WebSocketException) { }
        catch (OperationCanceledException) { }
        viewer.Queue.Writer.TryComplete();
    }

    private static async Task CloseQuietlyAsync(WebSocket ws, WebSocketCloseStatus status, string? reason)
    {
        if (ws.State is not (WebSocketState.Open or WebSocketState.CloseReceived))
        {
            return;
        }
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            await ws.CloseOutputAsync(status, reason, timeout.Token);
        }
        catch (WebSocketException) { }
        catch (OperationCanceledException) { }
        catch (ObjectDisposedException) { }
        catch (InvalidOperationException)
        {
            // A close raced with another send; the socket is going away anyway.
        }
    }

    private void AddViewer(Viewer v)
    {
        lock (_viewersLock)
        {
            _viewers = [.. _viewers, v];
        }
    }

    private void RemoveViewer(Viewer v)
    {
        lock (_viewersLock)
        {
            _viewers = Array.FindAll(_viewers, x => !ReferenceEquals(x, v));
            _droppedByGone += v.Dropped;
        }
    }

    public object Stats()
    {
        var viewers = _viewers;
        return new
        {
            sources = _sources.ToDictionary(
                kv => kv.Key,
                kv => new
                {
                    frames = Interlocked.Read(ref kv.Value.Seq),
                    bytes = Interlocked.Read(ref kv.Value.Bytes),
                    invalid = Interlocked.Read(ref kv.Value.Invalid),
                }
            ),
            viewers = viewers.Select(v => new
            {
                source = v.Source,
                meta = v.WantsMeta,
                sent = v.Sent,
                dropped = v.Dropped,
            }),
            dropped_closed_viewers = _droppedByGone,
        };
    }
}
