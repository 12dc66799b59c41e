using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using Blankend.Orleans.Configuration;
using Blankend.Orleans.Grains.Relay;
using Blankend.Orleans.Limits;
using Blankend.Orleans.Media;
using Blankend.Orleans.Telemetry;
using Microsoft.Extensions.Logging;
using NetMQ;
using NetMQ.Monitoring;
using NetMQ.Sockets;

namespace Blankend.Orleans.Grains.Relay.Bridge;

/// <summary>
/// One open bus link: a NetMQ DEALER (identity <c>stream.zmq_identity</c>) connected to <c>stream.zmq_endpoint</c>.
/// Every use of the socket happens on ONE thread, the poller's: outbound frames arrive through a NetMQQueue,
/// heartbeats and link requests are poller timers, link state comes from a socket monitor on the same poller.
/// Nothing in here blocks a caller: sends are TrySend with a zero timeout, queues are bounded and drop the
/// oldest (counted). Inbound data messages go through a bounded channel to one pump that hands them, in order and
/// in batches, to the RelayGrain.
/// </summary>
internal sealed partial class RelayLink : IDisposable
{
    /// <summary>Queued on the producer side; the payload array is the frame's own (never copied, never
    /// written).</summary>
    internal readonly record struct Outbound(byte[] ClientId, byte[] Payload, OutboundKind Kind = OutboundKind.Frame);

    internal enum OutboundKind : byte
    {
        Frame,
        Heartbeat,
        LinkRequest,
    }

    private const int MaxReceivesPerWake = 256;
    private const int MaxBatch = 64;

    private readonly StreamOptions _options;
    private readonly RelayCounters _c;
    private readonly IRelayGrain _grain;
    private readonly ILogger _log;

    private readonly NetMQPoller _poller;
    private readonly DealerSocket _socket;
    private readonly NetMQMonitor _monitor;
    private readonly NetMQQueue<Outbound> _outbox;
    private readonly NetMQTimer? _heartbeat;
    private readonly NetMQTimer? _linkRequest;

    // Poller thread only.
    private readonly Queue<Outbound> _pending;
    private readonly int _capacity;
    private bool _connected;
    private bool _waitingForSendReady;
    private long _heartbeatSeq;
    private long _linkRequestSeq;

    private readonly Channel<BusMessage> _inbound;
    private readonly Task _pump;
    private readonly byte[] _heartbeatId = Encoding.UTF8.GetBytes(BusControlIds.Heartbeat);
    private readonly byte[] _linkRequestId;
    private volatile bool _closed;

    private readonly LiveSources? _sources;

    public RelayLink(
        StreamOptions options,
        RelayCounters counters,
        IRelayGrain grain,
        ILogger log,
        LiveSources? sources = null
    )
    {
        _sources = sources;
        _options = options;
        _c = counters;
        _grain = grain;
        _log = log;
        _capacity = options.SendQueueSize;
        _pending = new Queue<Outbound>(Math.Min(_capacity, 1024));
        _linkRequestId = Encoding.UTF8.GetBytes(options.LinkRequestClientId);

        _socket = new DealerSocket();
        _socket.Options.Identity = Encoding.UTF8.GetBytes(options.ZmqIdentity);
        _socket.Options.Linger = TimeSpan.Zero; // shutdown never waits on unsent frames
        _socket.Options.SendHighWatermark = ZmqSendHighWatermark(options.SendQueueSize);
        _socket.Options.ReceiveHighWatermark = 1000;
        // A message part over max_frame_bytes is refused by ZeroMQ while it is read (never buffered whole): the
        // link drops and reconnects, counted in Disconnects (blankend.relay.link.disconnects).
        _socket.Options.MaxMsgSize = options.MaxFrameBytes;
        _socket.Options.ReconnectInterval = TimeSpan.FromMilliseconds(100);
        _socket.Options.ReconnectIntervalMax = TimeSpan.FromSeconds(1);
        // Queue to a peer only once it is connected: with no ROUTER a frame is dropped now (counted link_down)
        // instead of piling up in a pipe and reaching the ROUTER seconds late when it appears.
        _socket.Options.DelayAttachOnConnect = true;
        _socket.ReceiveReady += OnReceiveReady;

        _outbox = new NetMQQueue<Outbound>(); // capacity 0: Enqueue never blocks
        _outbox.ReceiveReady += OnOutboxReady;

        _monitor = new NetMQMonitor(
            _socket,
            $"inproc://blankend-relay-monitor-{Guid.NewGuid():N}",
            SocketEvents.Connected | SocketEvents.Disconnected | SocketEvents.ConnectRetried | SocketEvents.Closed
        );
        _monitor.Connected += (_, e) => Guard(() => OnConnected(e.Address));
        _monitor.Disconnected += (_, e) => Guard(() => OnDisconnected(e.Address));

        _poller = new NetMQPoller { _socket, _outbox };
        if (options.HeartbeatEnabled)
        {
            _heartbeat = new NetMQTimer(TimeSpan.FromMilliseconds(options.HeartbeatIntervalMs));
            _heartbeat.Elapsed += (_, _) => Guard(SendHeartbeat);
            _poller.Add(_heartbeat);
        }
        if (options.LinkRequestEnabled)
        {
            _linkRequest = new NetMQTimer(TimeSpan.FromMilliseconds(options.LinkRequestIntervalMs));
            _linkRequest.Elapsed += (_, _) => Guard(SendLinkRequest);
            _poller.Add(_linkRequest);
        }
        _monitor.AttachToPoller(_poller);

        _inbound = Channel.CreateBounded<BusMessage>(
            new BoundedChannelOptions(Math.Max(16, options.SendQueueSize))
            {
                FullMode = BoundedChannelFullMode.DropOldest,
                SingleReader = true,
                SingleWriter = true,
            },
            _ => _c.Drop(RelayDropReason.InboundQueueFull)
        );

        try
        {
            _socket.Connect(options.ZmqEndpoint); // an unusable endpoint throws here, before any thread exists
        }
        catch
        {
            _closed = true;
            DisposeQuietly(_monitor);
            DisposeQuietly(_poller);
            DisposeQuietly(_socket);
            DisposeQuietly(_outbox);
            throw;
        }
        Volatile.Write(ref _c.State, RelayCounters.StateConnecting);
        _poller.RunAsync("blankend-relay", isBackgroundThread: true);
        _pump = Task.Run(PumpAsync);
    }

    /// <summary>ZeroMQ's own pipe in front of the TCP socket: small, so that when the ROUTER stops reading the
    /// frames wait in (and are dropped oldest-first from) the service's queue, not in a pipe that keeps them
    /// stale.</summary>
    internal static int ZmqSendHighWatermark(int sendQueueSize) => Math.Clamp(sendQueueSize, 1, 64);

    /// <summary>Any thread. Never blocks.</summary>
    public void Enqueue(Outbound item)
    {
        if (_closed)
        {
            _c.Drop(RelayDropReason.NoLink);
            return;
        }
        try
        {
            _outbox.Enqueue(item);
        }
        catch (ObjectDisposedException)
        {
            _c.Drop(RelayDropReason.NoLink); // closed meanwhile
        }
    }

    // ---- poller thread ----------------------------------------------------------------------------------------

    private void OnOutboxReady(object? sender, NetMQQueueEventArgs<Outbound> e) =>
        Guard(() =>
        {
            while (_outbox.TryDequeue(out var item, TimeSpan.Zero))
            {
                if (_pending.Count >= _capacity)
                {
                    _pending.Dequeue(); // latest frame wins
                    _c.Drop(RelayDropReason.QueueFull);
                }
                _pending.Enqueue(item);
            }
            Flush();
        });

    private void OnSendReady(object? sender, NetMQSocketEventArgs e) => Guard(Flush);

    /// <summary>Sends what is pending until the socket refuses. Refused while connected: the pipe is full (a slow
    /// or stopped ROUTER), so wait for SendReady and let the queue absorb (dropping oldest). Refused while not
    /// connected: drop (counted) instead of keeping stale video.</summary>
    private void Flush()
    {
        while (_pending.Count > 0)
        {
            var item = _pending.Peek();
            if (TrySend(item.ClientId, item.Payload))
            {
                _pending.Dequeue();
                Sent(item);
                continue;
            }
            if (!_connected)
            {
                while (_pending.TryDequeue(out var dropped))
                    _c.Drop(
                        dropped.Kind == OutboundKind.Frame ? RelayDropReason.LinkDown : RelayDropReason.ControlUnsent
                    );
                break;
            }
            WaitForSendReady(true);
            Volatile.Write(ref _c.QueueDepth, _pending.Count);
            return;
        }
        WaitForSendReady(false);
        Volatile.Write(ref _c.QueueDepth, 0);
    }

    private void Sent(in Outbound item)
    {
        var now = RelayCounters.NowUnixMs();
        switch (item.Kind)
        {
            case OutboundKind.Frame:
                Interlocked.Increment(ref _c.FramesSent);
                Interlocked.Add(ref _c.BytesSent, item.Payload.Length);
                Volatile.Write(ref _c.LastSentUnixMs, now);
                break;
            case OutboundKind.Heartbeat:
                Interlocked.Increment(ref _c.HeartbeatsSent);
                Volatile.Write(ref _c.LastHeartbeatSentUnixMs, now);
                break;
            case OutboundKind.LinkRequest:
                Interlocked.Increment(ref _c.LinkRequestsSent);
                break;
        }
    }

    /// <summary>Control messages take the same queue as frames (one order, one place that sends), at its head
    /// position in time: they are small and due now.</summary>
    private void SendControl(in Outbound item)
    {
        if (_pending.Count >= _capacity)
        {
            var dropped = _pending.Dequeue();
            _c.Drop(dropped.Kind == OutboundKind.Frame ? RelayDropReason.QueueFull : RelayDropReason.ControlUnsent);
        }
        _pending.Enqueue(item);
        Flush();
    }

    private void WaitForSendReady(bool wait)
    {
        if (wait == _waitingForSendReady)
            return;
        _waitingForSendReady = wait;
        if (wait)
            _socket.SendReady += OnSendReady;
        else
            _socket.SendReady -= OnSendReady;
    }

    /// <summary><c>[clientId, payload]</c> as one multipart message, without copying either array (GC messages over
    /// the caller's bytes). Once the first part is accepted ZeroMQ takes the rest of the message unconditionally
    /// (the high-water mark counts whole messages), so the second send cannot block.</summary>
    private bool TrySend(byte[] clientId, byte[] payload)
    {
        var msg = new Msg();
        msg.InitGC(clientId, clientId.Length);
        if (!_socket.TrySend(ref msg, TimeSpan.Zero, more: true))
        {
            msg.Close();
            return false;
        }
        msg.Close();
        msg.InitGC(payload, payload.Length);
        var sent = _socket.TrySend(ref msg, TimeSpan.FromSeconds(1), more: false);
        msg.Close();
        if (!sent)
            LogPartialSend(_log); // cannot happen with ZeroMQ's semantics; loud if it ever does
        return sent;
    }

    private void OnReceiveReady(object? sender, NetMQSocketEventArgs e) =>
        Guard(() =>
        {
            for (var i = 0; i < MaxReceivesPerWake; i++)
            {
                if (!_socket.TryReceiveFrameBytes(TimeSpan.Zero, out var first, out var more))
                    return;
                if (!more)
                {
                    _c.Drop(RelayDropReason.Malformed);
                    continue;
                }
                // The rest of a multipart message is already here (ZeroMQ delivers messages whole).
                if (!_socket.TryReceiveFrameBytes(TimeSpan.FromSeconds(1), out var data, out more))
                    return;
                if (more)
                {
                    _socket.SkipMultipartMessage();
                    _c.Drop(RelayDropReason.Malformed);
                    continue;
                }
                OnMessage(first, data);
            }
        });

    private void OnMessage(byte[] clientIdBytes, byte[] data)
    {
        var now = RelayCounters.NowUnixMs();
        Volatile.Write(ref _c.LastReceivedUnixMs, now);
        string clientId;
        try
        {
            clientId = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(clientIdBytes);
        }
        catch (DecoderFallbackException)
        {
            _c.Drop(RelayDropReason.InvalidClientId);
            return;
        }

        // Control first: reserved ids never reach a ClientGrain, so never a viewer.
        if (BusControlIds.IsControl(clientId))
        {
            Interlocked.Increment(ref _c.ControlReceived);
            if (clientId == BusControlIds.Heartbeat)
            {
                Interlocked.Increment(ref _c.HeartbeatsReceived);
                Volatile.Write(ref _c.LastHeartbeatReceivedUnixMs, now);
            }
            return;
        }
        if (!ClientIds.IsValid(clientId, out _))
        {
            _c.Drop(RelayDropReason.InvalidClientId);
            return;
        }
        if (Jpeg.Check(data) is not null)
        {
            _c.Drop(RelayDropReason.NotJpeg);
            return;
        }
        if (_sources is not null && !_sources.TryTouchBus(clientId, Environment.TickCount64))
        {
            // limits.max_sources / max_bus_sources: a new id beyond them gets no grain.
            _c.Drop(RelayDropReason.TooManySources);
            SecurityMetrics.Limit(SecurityMetrics.Limits.BusSources);
            return;
        }
        Interlocked.Increment(ref _c.FramesReceived);
        Interlocked.Add(ref _c.BytesReceived, data.Length);
        _inbound.Writer.TryWrite(new BusMessage(clientId, data, now));
    }

    private void OnConnected(string address)
    {
        _connected = true;
        Interlocked.Increment(ref _c.Connects);
        Volatile.Write(ref _c.ConnectedSinceUnixMs, RelayCounters.NowUnixMs());
        Volatile.Write(ref _c.State, RelayCounters.StateConnected);
        LogConnected(_log, _options.ZmqIdentity, address);
        // Announce at once, then every interval. TCP is up but the ZeroMQ handshake may still be running: the
        // message waits in the queue (SendReady) until the pipe is attached.
        if (_linkRequest is not null)
            SendLinkRequest();
        Flush();
    }

    private void OnDisconnected(string address)
    {
        if (!_connected)
            return;
        _connected = false;
        Interlocked.Increment(ref _c.Disconnects);
        Volatile.Write(ref _c.ConnectedSinceUnixMs, 0);
        Volatile.Write(ref _c.State, RelayCounters.StateConnecting);
        LogDisconnected(_log, _options.ZmqIdentity, address);
        Flush(); // what waited for a full pipe now waits for nothing: drop it (link_down)
    }

    /// <summary>Heartbeats go out while a ROUTER is connected (there is no one to tell otherwise).</summary>
    private void SendHeartbeat()
    {
        if (!_connected)
            return;
        var payload = JsonSerializer.SerializeToUtf8Bytes(
            new ControlPayload("heartbeat", _options.ZmqIdentity, ++_heartbeatSeq, RelayCounters.NowUnixMs()),
            RelayJson.Default.ControlPayload
        );
        SendControl(new Outbound(_heartbeatId, payload, OutboundKind.Heartbeat));
    }

    private void SendLinkRequest()
    {
        if (!_connected)
            return;
        var payload =
            _options.LinkRequestPayload.Length > 0
                ? Encoding.UTF8.GetBytes(_options.LinkRequestPayload)
                : JsonSerializer.SerializeToUtf8Bytes(
                    new ControlPayload(
                        "link_request",
                        _options.ZmqIdentity,
                        ++_linkRequestSeq,
                        RelayCounters.NowUnixMs()
                    ),
                    RelayJson.Default.ControlPayload
                );
        SendControl(new Outbound(_linkRequestId, payload, OutboundKind.LinkRequest));
    }

    /// <summary>An exception escaping a poller handler would end the poller thread (and the process): log
    /// instead.</summary>
    private void Guard(Action action)
    {
        try
        {
            action();
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            if (!_closed)
                LogHandlerFailed(_log, e);
        }
    }

    // ---- inbound pump -----------------------------------------------------------------------------------------

    /// <summary>One pump, one call at a time: the RelayGrain sees bus frames in arrival order. Whatever arrived
    /// meanwhile goes in the next call as one batch, so a busy bus costs fewer calls, not more latency.</summary>
    private async Task PumpAsync()
    {
        var reader = _inbound.Reader;
        var batch = new List<BusMessage>(MaxBatch);
        long lastErrorLog = 0;
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            if (_closed)
                return;
            batch.Clear();
            while (batch.Count < MaxBatch && reader.TryRead(out var m))
                batch.Add(m);
            if (batch.Count == 0)
                continue;
            try
            {
                await _grain.Receive([.. batch]).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                _c.Drop(RelayDropReason.RouteFailed, batch.Count);
                var now = Environment.TickCount64;
                if (now - lastErrorLog > 1000 && !_closed)
                {
                    lastErrorLog = now;
                    LogRouteFailed(_log, e, batch.Count);
                }
            }
        }
    }

    // ---- shutdown ---------------------------------------------------------------------------------------------

    public void Dispose()
    {
        if (_closed)
            return;
        _closed = true;
        try
        {
            _poller.Stop(); // from another thread: returns once the poller thread has left its loop
        }
        catch (Exception e) when (e is InvalidOperationException or ObjectDisposedException) { }
        _inbound.Writer.TryComplete();
        DisposeQuietly(_monitor);
        DisposeQuietly(_poller);
        DisposeQuietly(_socket);
        DisposeQuietly(_outbox);
        Volatile.Write(ref _c.State, RelayCounters.StateDisabled);
        Volatile.Write(ref _c.ConnectedSinceUnixMs, 0);
        Volatile.Write(ref _c.QueueDepth, 0);
        _c.Drop(RelayDropReason.NoLink, _pending.Count);
        _pending.Clear();
        // The pump is not waited for: it may be inside a call to the very grain that is closing this link.
        LogClosed(_log, _options.ZmqIdentity);
    }

    private void DisposeQuietly(IDisposable d)
    {
        try
        {
            d.Dispose();
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            LogDisposeFailed(_log, e, d.GetType().Name);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "bus link '{Identity}' connected to {Address}")]
    private static partial void LogConnected(ILogger log, string identity, string address);

    [LoggerMessage(
        Level = LogLevel.Warning,
        Message = "bus link '{Identity}' lost its ROUTER at {Address}; reconnecting (frames are dropped and counted meanwhile)"
    )]
    private static partial void LogDisconnected(ILogger log, string identity, string address);

    [LoggerMessage(Level = LogLevel.Information, Message = "bus link '{Identity}' closed")]
    private static partial void LogClosed(ILogger log, string identity);

    [LoggerMessage(
        Level = LogLevel.Error,
        Message = "bus link: a message's second part was refused after its first was accepted"
    )]
    private static partial void LogPartialSend(ILogger log);

    [LoggerMessage(Level = LogLevel.Error, Message = "bus link: poller handler failed")]
    private static partial void LogHandlerFailed(ILogger log, Exception e);

    [LoggerMessage(
        Level = LogLevel.Warning,
        Message = "bus link: routing {Count} inbound frame(s) failed (dropped, counted route_failed)"
    )]
    private static partial void LogRouteFailed(ILogger log, Exception e, int count);

    [LoggerMessage(Level = LogLevel.Debug, Message = "bus link: disposing {What} failed")]
    private static partial void LogDisposeFailed(ILogger log, Exception e, string what);
}

/// <summary>Payload of the control messages (UTF-8 JSON), see docs/protocol.md.</summary>
internal sealed record ControlPayload(string Type, string Identity, long Seq, long TsMs);

[System.Text.Json.Serialization.JsonSourceGenerationOptions(
    PropertyNamingPolicy = System.Text.Json.Serialization.JsonKnownNamingPolicy.SnakeCaseLower
)]
[System.Text.Json.Serialization.JsonSerializable(typeof(ControlPayload))]
internal sealed partial class RelayJson : System.Text.Json.Serialization.JsonSerializerContext;
