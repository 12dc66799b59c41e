using System.Net.WebSockets;
using Microsoft.AspNetCore.Http.Features;

namespace Blankend.Orleans.Gateway.Security;

/// <summary>
/// An ingest socket that is closed with 1001 ("going away") once it has sent nothing for the idle timeout while
/// the endpoint was waiting for a message (a stalled reader is not the client's silence). The endpoint then sees
/// the client's close (or an abort 2 s later) like any other end. Sends are serialized with the idle close: a
/// WebSocket allows one send at a time.
/// </summary>
internal sealed class IdleTimeoutWebSocket : WebSocket
{
    private readonly WebSocket _inner;
    private readonly long _idleMs;
    private readonly Action _onIdle;
    private readonly Timer _timer;
    private readonly SemaphoreSlim _send = new(1, 1);
    private long _lastMs = Environment.TickCount64;
    private int _receiving;
    private int _idleClosed;

    public IdleTimeoutWebSocket(WebSocket inner, TimeSpan idle, Action onIdle)
    {
        _inner = inner;
        _idleMs = (long)idle.TotalMilliseconds;
        _onIdle = onIdle;
        var period = TimeSpan.FromMilliseconds(Math.Clamp(_idleMs / 4, 50, 1000));
        _timer = new Timer(_ => Check(), null, period, period);
    }

    private void Check()
    {
        if (Volatile.Read(ref _receiving) == 0 || _inner.State != WebSocketState.Open)
            return;
        if (Environment.TickCount64 - Volatile.Read(ref _lastMs) < _idleMs)
            return;
        if (Interlocked.Exchange(ref _idleClosed, 1) != 0)
            return;
        _ = CloseForIdleAsync();
    }

    private async Task CloseForIdleAsync()
    {
        _onIdle();
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            using (await SendTurnAsync(timeout.Token))
                await _inner.CloseOutputAsync(WebSocketCloseStatus.EndpointUnavailable, "idle timeout", timeout.Token);
            await Task.Delay(TimeSpan.FromSeconds(2));
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException or ObjectDisposedException) { }
        if (_inner.State is not (WebSocketState.Closed or WebSocketState.Aborted))
            _inner.Abort();
    }

    /// <summary>Marks a receive under way until disposed: only then does the client's silence count.</summary>
    private ReceiveTurn Receiving()
    {
        Volatile.Write(ref _lastMs, Environment.TickCount64);
        Volatile.Write(ref _receiving, 1);
        return new ReceiveTurn(this);
    }

    private void Ended()
    {
        Volatile.Write(ref _receiving, 0);
        Volatile.Write(ref _lastMs, Environment.TickCount64);
    }

    /// <summary>Holds the send lock until disposed: one send or close at a time, the idle close included.</summary>
    private async ValueTask<SendTurn> SendTurnAsync(CancellationToken cancellationToken)
    {
        await _send.WaitAsync(cancellationToken);
        return new SendTurn(_send);
    }

    private readonly struct ReceiveTurn(IdleTimeoutWebSocket socket) : IDisposable
    {
        public void Dispose() => socket.Ended();
    }

    private readonly struct SendTurn(SemaphoreSlim send) : IDisposable
    {
        public void Dispose() => send.Release();
    }

    public override WebSocketCloseStatus? CloseStatus => _inner.CloseStatus;
    public override string? CloseStatusDescription => _inner.CloseStatusDescription;
    public override WebSocketState State => _inner.State;
    public override string? SubProtocol => _inner.SubProtocol;

    public override void Abort() => _inner.Abort();

    public override async Task CloseAsync(
        WebSocketCloseStatus closeStatus,
        string? statusDescription,
        CancellationToken cancellationToken
    )
    {
        using (await SendTurnAsync(cancellationToken))
            await _inner.CloseAsync(closeStatus, statusDescription, cancellationToken);
    }

    public override async Task CloseOutputAsync(
        WebSocketCloseStatus closeStatus,
        string? statusDescription,
        CancellationToken cancellationToken
    )
    {
        using (await SendTurnAsync(cancellationToken))
            await _inner.CloseOutputAsync(closeStatus, statusDescription, cancellationToken);
    }

    public override async Task<WebSocketReceiveResult> ReceiveAsync(
        ArraySegment<byte> buffer,
        CancellationToken cancellationToken
    )
    {
        using (Receiving())
            return await _inner.ReceiveAsync(buffer, cancellationToken);
    }

    public override async ValueTask<ValueWebSocketReceiveResult> ReceiveAsync(
        Memory<byte> buffer,
        CancellationToken cancellationToken
    )
    {
        using (Receiving())
            return await _inner.ReceiveAsync(buffer, cancellationToken);
    }

    public override async Task SendAsync(
        ArraySegment<byte> buffer,
        WebSocketMessageType messageType,
        bool endOfMessage,
        CancellationToken cancellationToken
    )
    {
        using (await SendTurnAsync(cancellationToken))
            await _inner.SendAsync(buffer, messageType, endOfMessage, cancellationToken);
    }

    public override async ValueTask SendAsync(
        ReadOnlyMemory<byte> buffer,
        WebSocketMessageType messageType,
        bool endOfMessage,
        CancellationToken cancellationToken
    )
    {
        using (await SendTurnAsync(cancellationToken))
            await _inner.SendAsync(buffer, messageType, endOfMessage, cancellationToken);
    }

    public override async ValueTask SendAsync(
        ReadOnlyMemory<byte> buffer,
        WebSocketMessageType messageType,
        WebSocketMessageFlags messageFlags,
        CancellationToken cancellationToken
    )
    {
        using (await SendTurnAsync(cancellationToken))
            await _inner.SendAsync(buffer, messageType, messageFlags, cancellationToken);
    }

    public override void Dispose()
    {
        _timer.Dispose();
        _inner.Dispose();
    }
}

/// <summary>Hands the endpoint an <see cref="IdleTimeoutWebSocket"/> instead of the accepted socket.</summary>
internal sealed class IdleTimeoutWebSocketFeature(IHttpWebSocketFeature inner, TimeSpan idle, Action onIdle)
    : IHttpWebSocketFeature
{
    public bool IsWebSocketRequest => inner.IsWebSocketRequest;

    public async Task<WebSocket> AcceptAsync(WebSocketAcceptContext context) =>
        new IdleTimeoutWebSocket(await inner.AcceptAsync(context), idle, onIdle);
}
