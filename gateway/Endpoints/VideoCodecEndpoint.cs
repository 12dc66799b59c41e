using System.Buffers;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using Blankend.Orleans.Codec;
using Blankend.Orleans.Configuration;
using Blankend.Orleans.Gateway.Fanout;
using Blankend.Orleans.Gateway.Ingest;
using Blankend.Orleans.Gateway.Telemetry;
using Microsoft.Extensions.Options;

namespace Blankend.Orleans.Gateway.Endpoints;

/// <summary>
/// <c>/video_codec?codec=h264|hevc|h265&amp;client_id=SRC</c>: binary messages are chunks of an Annex-B stream.
/// The gateway only forwards them, in order and without loss, to the client_id's decode session on a silo
/// (<see cref="ICodecSessionGrain"/>); the decoded JPEGs enter the source's ClientGrain like <c>/video_in</c>
/// frames and reach viewers the same way. When the session ends on its own (undecodable input, idle, ffmpeg
/// gone) the client gets a text message <c>{"error":...,"detail":...}</c> and a close with a reason.
/// </summary>
internal static partial class VideoCodecEndpoint
{
    private static readonly TimeSpan CloseHandshake = TimeSpan.FromSeconds(2);

    public static async Task<IResult> HandleAsync(
        HttpContext context,
        IGrainFactory grains,
        IOptions<StreamOptions> streamOptions,
        IOptions<CodecOptions> codecOptions,
        GatewayCounters counters,
        CodecGatewayCounters codecCounters,
        IHostApplicationLifetime lifetime,
        ILoggerFactory loggers
    )
    {
        var stream = streamOptions.Value;
        if (
            !QueryRules.TryClientId(
                context.Request,
                "client_id",
                stream.DefaultClientId,
                out var clientId,
                out var error
            )
        )
            return Refuse(context, "invalid query", error!, counters, codecCounters);
        if (!TryCodec(context.Request, out var codec, out error))
            return Refuse(context, "unknown codec", error!, counters, codecCounters);
        if (!context.WebSockets.IsWebSocketRequest)
            return Refuse(
                context,
                "WebSocket upgrade required",
                "/video_codec takes a WebSocket connection carrying an Annex-B H.264/HEVC stream in binary messages",
                counters,
                codecCounters
            );

        var log = loggers.CreateLogger("Blankend.VideoCodec");
        var grain = grains.GetGrain<ICodecSessionGrain>(clientId!);
        var connection = Guid.NewGuid();
        var observer = new SessionEndObserver();
        var reference = grains.CreateObjectReference<IDecodeSessionObserver>(observer);
        try
        {
            DecodeOpenResult open;
            try
            {
                open = await grain.Open(connection, codec, reference);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                LogOpenFailed(log, e, clientId!);
                Interlocked.Increment(ref codecCounters.Refused);
                return Results.Problem(
                    title: "decode service unreachable",
                    detail: e.Message,
                    statusCode: StatusCodes.Status503ServiceUnavailable,
                    instance: context.Request.Path
                );
            }
            if (open.Status == DecodeOpenStatus.Busy)
            {
                Interlocked.Increment(ref codecCounters.Refused);
                return Results.Problem(
                    title: "session already live",
                    detail: open.Detail,
                    statusCode: StatusCodes.Status409Conflict,
                    instance: context.Request.Path
                );
            }

            WebSocket socket;
            try
            {
                socket = await context.WebSockets.AcceptWebSocketAsync();
            }
            catch
            {
                if (open.Status == DecodeOpenStatus.Opened)
                    await CloseSessionAsync(grain, connection, clientId!, log);
                throw;
            }
            using var _ = socket;
            if (open.Status == DecodeOpenStatus.Unavailable)
            {
                Interlocked.Increment(ref codecCounters.Refused);
                LogUnavailable(log, clientId!, open.Detail);
                await SendErrorAsync(socket, null, "decoder_unavailable", open.Detail, CancellationToken.None);
                await VideoInEndpoint.CloseQuietlyAsync(
                    socket,
                    WebSocketCloseStatus.InternalServerError,
                    Reason("decoder unavailable: " + open.Detail)
                );
                return Results.Empty;
            }

            Interlocked.Increment(ref codecCounters.Connections);
            Interlocked.Increment(ref codecCounters.ConnectionsTotal);
            LogConnected(log, clientId!, codec, open.Detail, context.Connection.RemoteIpAddress?.ToString() ?? "?");
            try
            {
                await RunAsync(
                    socket,
                    grain,
                    connection,
                    observer,
                    stream.MaxFrameBytes,
                    codecOptions.Value.ChunkQueueSize,
                    counters,
                    codecCounters,
                    lifetime,
                    clientId!,
                    log,
                    context.RequestAborted
                );
            }
            finally
            {
                Interlocked.Decrement(ref codecCounters.Connections);
            }
            return Results.Empty;
        }
        finally
        {
            grains.DeleteObjectReference<IDecodeSessionObserver>(reference);
        }
    }

    private static async Task RunAsync(
        WebSocket socket,
        ICodecSessionGrain grain,
        Guid connection,
        SessionEndObserver observer,
        int maxFrameBytes,
        int queueSize,
        GatewayCounters counters,
        CodecGatewayCounters codecCounters,
        IHostApplicationLifetime lifetime,
        string clientId,
        ILogger log,
        CancellationToken requestAborted
    )
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(requestAborted, lifetime.ApplicationStopping);
        using var sendLock = new SemaphoreSlim(1, 1);
        await using var pump = new ChunkPump(grain, connection, queueSize, codecCounters, log);
        var receive = ReceiveLoopAsync(
            socket,
            pump,
            sendLock,
            maxFrameBytes,
            counters,
            codecCounters,
            clientId,
            log,
            cts.Token
        );
        var sessionEnd = Task.WhenAny(observer.Ended, pump.Ended).Unwrap();

        var first = await Task.WhenAny(receive, sessionEnd);
        var outcome = ReceiveOutcome.SessionOver;
        if (first == receive)
        {
            try
            {
                outcome = await receive;
            }
            catch (Exception e) when (e is OperationCanceledException or WebSocketException or ObjectDisposedException)
            {
                outcome = ReceiveOutcome.Aborted;
            }
        }
        if (first == sessionEnd || outcome == ReceiveOutcome.SessionOver)
        {
            // The session ended while the client is connected (the receive loop may have noticed first, through the
            // pump): say why, close, and wait briefly for the client's close.
            var end = await sessionEnd;
            LogSessionEnded(log, clientId, end.Reason, end.Detail);
            try
            {
                if (end.Error is not null)
                    await SendErrorAsync(socket, sendLock, end.Error, end.Detail, CancellationToken.None);
                using var timeout = new CancellationTokenSource(CloseHandshake);
                await sendLock.WaitAsync(timeout.Token);
                try
                {
                    await socket.CloseOutputAsync(
                        (WebSocketCloseStatus)end.CloseStatus,
                        Reason(end.Error + ": " + end.Detail),
                        timeout.Token
                    );
                }
                finally
                {
                    sendLock.Release();
                }
            }
            catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException)
            { }
            if (receive.IsCompleted)
                await DrainUntilCloseAsync(socket);
            // the close handshake is waited for even when the request was aborted
            else if (await Task.WhenAny(receive, Task.Delay(CloseHandshake, CancellationToken.None)) != receive)
            {
                socket.Abort();
                await cts.CancelAsync(); // also frees a receive loop waiting on the pump's queue
            }
            try
            {
                await receive;
            }
            catch (Exception e) when (e is OperationCanceledException or WebSocketException or ObjectDisposedException)
            { }
            return;
        }

        // The client is done (closed, vanished, or sent too much): the queued chunks go in, then the session
        // gets end-of-input (ffmpeg drains and exits; the silo kills it if it does not).
        // Bounded so that, with the session's own drain (2 s), a vanished client's ffmpeg is gone within 5 s.
        await pump.CompleteAsync(
            outcome == ReceiveOutcome.ClientClosed ? TimeSpan.FromSeconds(2) : TimeSpan.FromSeconds(1)
        );
        await CloseSessionAsync(grain, connection, clientId, log);
        LogDisconnected(log, clientId, outcome.ToString());
        if (lifetime.ApplicationStopping.IsCancellationRequested)
            await VideoInEndpoint.CloseQuietlyAsync(
                socket,
                WebSocketCloseStatus.EndpointUnavailable,
                "service stopping"
            );
        else if (outcome == ReceiveOutcome.ClientClosed)
            await VideoInEndpoint.CloseQuietlyAsync(socket, WebSocketCloseStatus.NormalClosure, "bye");
    }

    /// <summary>After our close: reads (and drops) what the client still sends until its close, bounded.</summary>
    private static async Task DrainUntilCloseAsync(WebSocket socket)
    {
        var scratch = ArrayPool<byte>.Shared.Rent(16 * 1024);
        try
        {
            using var timeout = new CancellationTokenSource(CloseHandshake);
            while (socket.State is WebSocketState.Open or WebSocketState.CloseSent)
            {
                var r = await socket.ReceiveAsync(scratch.AsMemory(), timeout.Token);
                if (r.MessageType == WebSocketMessageType.Close)
                    break;
            }
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException or ObjectDisposedException)
        {
            socket.Abort();
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(scratch);
        }
    }

    private static async Task CloseSessionAsync(ICodecSessionGrain grain, Guid connection, string clientId, ILogger log)
    {
        try
        {
            await grain.Close(connection);
        }
        catch (Exception e)
        {
            LogCloseFailed(log, e, clientId);
        }
    }

    private enum ReceiveOutcome
    {
        ClientClosed,
        TooBig,
        SessionOver,
        Aborted,
    }

    private static async Task<ReceiveOutcome> ReceiveLoopAsync(
        WebSocket socket,
        ChunkPump pump,
        SemaphoreSlim sendLock,
        int maxFrameBytes,
        GatewayCounters counters,
        CodecGatewayCounters codecCounters,
        string clientId,
        ILogger log,
        CancellationToken ct
    )
    {
        using var buffer = new MessageBuffer(64 * 1024, maxFrameBytes);
        while (true)
        {
            var (type, tooBig) = await buffer.ReceiveAsync(socket, ct);
            var count = buffer.Count;
            if (tooBig)
            {
                counters.Oversize();
                LogOversize(log, clientId, maxFrameBytes);
                await sendLock.WaitAsync(CancellationToken.None);
                try
                {
                    await VideoInEndpoint.CloseQuietlyAsync(
                        socket,
                        WebSocketCloseStatus.MessageTooBig,
                        $"message exceeds max_frame_bytes ({maxFrameBytes})"
                    );
                }
                finally
                {
                    sendLock.Release();
                }
                return ReceiveOutcome.TooBig;
            }

            if (type == WebSocketMessageType.Close)
                return ReceiveOutcome.ClientClosed;
            if (type == WebSocketMessageType.Text)
            {
                await SendErrorAsync(
                    socket,
                    sendLock,
                    "expected_binary",
                    "send the H.264/HEVC Annex-B stream as binary messages",
                    ct
                );
                continue;
            }
            if (count == 0)
                continue;

            // The queue owns its chunks (the receive buffer is reused).
            var chunk = buffer.Span.ToArray();
            try
            {
                await pump.SendAsync(chunk, ct);
            }
            catch (ChannelClosedException)
            {
                return ReceiveOutcome.SessionOver;
            }
            Interlocked.Increment(ref codecCounters.ChunksIn);
            Interlocked.Add(ref codecCounters.BytesIn, count);
        }
    }

    /// <summary>Canonical codec from the query; absent means h264 (the original service's default).</summary>
    public static bool TryCodec(HttpRequest request, out string codec, out string? error)
    {
        error = null;
        codec = VideoCodecs.H264;
        var values = request.Query["codec"];
        if (values.Count == 0)
            return true;
        if (values.Count > 1)
        {
            error = $"'codec' given {values.Count} times";
            return false;
        }
        if (VideoCodecs.TryParse(values[0], out codec))
            return true;
        error = $"codec '{values[0]}' is not supported: use one of {string.Join(", ", VideoCodecs.Accepted)}";
        return false;
    }

    private static IResult Refuse(
        HttpContext context,
        string title,
        string detail,
        GatewayCounters counters,
        CodecGatewayCounters codecCounters
    )
    {
        Interlocked.Increment(ref codecCounters.Refused);
        return QueryRules.BadRequest(context, title, detail, counters);
    }

    private static async Task SendErrorAsync(
        WebSocket socket,
        SemaphoreSlim? sendLock,
        string code,
        string detail,
        CancellationToken ct
    )
    {
        var json = JsonSerializer.SerializeToUtf8Bytes(
            new CodecErrorMessage(code, detail),
            CodecJson.Default.CodecErrorMessage
        );
        if (sendLock is not null)
            await sendLock.WaitAsync(ct);
        try
        {
            if (socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
                await socket.SendAsync(json, WebSocketMessageType.Text, true, ct);
        }
        catch (Exception e) when (e is WebSocketException or ObjectDisposedException) { }
        finally
        {
            sendLock?.Release();
        }
    }

    /// <summary>A close reason fits in 123 UTF-8 bytes.</summary>
    internal static string Reason(string text)
    {
        if (Encoding.UTF8.GetByteCount(text) <= 123)
            return text;
        var s = text;
        while (Encoding.UTF8.GetByteCount(s) > 120)
            s = s[..^1];
        return s + "...";
    }

    /// <summary>The gateway end of <see cref="IDecodeSessionObserver"/>, one per connection.</summary>
    private sealed class SessionEndObserver : IDecodeSessionObserver
    {
        private readonly TaskCompletionSource<DecodeSessionEnd> _ended = new(
            TaskCreationOptions.RunContinuationsAsynchronously
        );

        public Task<DecodeSessionEnd> Ended => _ended.Task;

        public Task OnEnded(DecodeSessionEnd end)
        {
            _ended.TrySetResult(end);
            return Task.CompletedTask;
        }
    }

    [LoggerMessage(
        Level = LogLevel.Information,
        Message = "codec camera {ClientId} connected ({Codec}, decoder {Decoder}) from {Remote}"
    )]
    private static partial void LogConnected(ILogger log, string clientId, string codec, string decoder, string remote);

    [LoggerMessage(Level = LogLevel.Information, Message = "codec camera {ClientId} disconnected ({Outcome})")]
    private static partial void LogDisconnected(ILogger log, string clientId, string outcome);

    [LoggerMessage(
        Level = LogLevel.Information,
        Message = "codec camera {ClientId}: session ended ({Reason}) {Detail}"
    )]
    private static partial void LogSessionEnded(ILogger log, string clientId, string reason, string detail);

    [LoggerMessage(Level = LogLevel.Warning, Message = "codec camera {ClientId}: no decoder: {Detail}")]
    private static partial void LogUnavailable(ILogger log, string clientId, string detail);

    [LoggerMessage(Level = LogLevel.Warning, Message = "codec camera {ClientId}: opening the decode session failed")]
    private static partial void LogOpenFailed(ILogger log, Exception e, string clientId);

    [LoggerMessage(
        Level = LogLevel.Warning,
        Message = "codec camera {ClientId}: closing the decode session failed (it ends by idle timeout)"
    )]
    private static partial void LogCloseFailed(ILogger log, Exception e, string clientId);

    [LoggerMessage(
        Level = LogLevel.Warning,
        Message = "codec camera {ClientId}: message over max_frame_bytes ({Max}); closing with 1009"
    )]
    private static partial void LogOversize(ILogger log, string clientId, int max);
}

internal sealed record CodecErrorMessage(
    [property: System.Text.Json.Serialization.JsonPropertyName("error")] string Error,
    [property: System.Text.Json.Serialization.JsonPropertyName("detail")] string Detail
);
