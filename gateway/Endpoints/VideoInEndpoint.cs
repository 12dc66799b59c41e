using System.Buffers;
using System.Net.WebSockets;
using System.Text.Json;
using Blankend.Orleans.Configuration;
using Blankend.Orleans.Gateway.Fanout;
using Blankend.Orleans.Gateway.Hosting;
using Blankend.Orleans.Gateway.Ingest;
using Blankend.Orleans.Media;
using Microsoft.Extensions.Options;

namespace Blankend.Orleans.Gateway.Endpoints;

/// <summary>
/// <c>/video_in?client_id=SRC</c>: one JPEG per binary message. Validate, stamp, hand to the source's
/// ClientGrain (one-way: the camera never waits on routing). Step 1 of a frame's life.
/// </summary>
public static partial class VideoInEndpoint
{
    public static async Task<IResult> HandleAsync(HttpContext context, IGrainFactory grains,
        IOptions<StreamOptions> streamOptions, IOptions<GatewayOptions> gatewayOptions, GatewayCounters counters, IHostApplicationLifetime lifetime,
        ILoggerFactory loggers)
    {
        var stream = streamOptions.Value;
        if (!QueryRules.TryClientId(context.Request, "client_id", stream.DefaultClientId, out var clientId, out var error))
            return QueryRules.BadRequest(context, "invalid query", error!, counters);
        if (!context.WebSockets.IsWebSocketRequest)
            return QueryRules.BadRequest(context, "WebSocket upgrade required", "/video_in takes a WebSocket connection carrying one JPEG per binary message", counters);

        var log = loggers.CreateLogger("Blankend.VideoIn");
        using var socket = await context.WebSockets.AcceptWebSocketAsync();
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, lifetime.ApplicationStopping);
        Interlocked.Increment(ref counters.CamerasConnected);
        LogConnected(log, clientId!, context.Connection.RemoteIpAddress?.ToString() ?? "?");
        await using var pump = new IngestPump(grains.GetGrain<IClientGrain>(clientId!), gatewayOptions.Value.IngestQueueSize, counters, log,
            context.RequestServices.GetService<ClusterChangeSignal>());
        long frames = 0;
        try
        {
            frames = await ReceiveLoopAsync(socket, pump, clientId!, stream.MaxFrameBytes, counters, log, cts.Token);
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException)
        {
            // Client gone or service stopping: nothing held here outlives the connection.
        }
        finally
        {
            Interlocked.Decrement(ref counters.CamerasConnected);
            LogDisconnected(log, clientId!, frames);
        }
        if (lifetime.ApplicationStopping.IsCancellationRequested) await CloseQuietlyAsync(socket, WebSocketCloseStatus.EndpointUnavailable, "service stopping");
        return Results.Empty;
    }

    private static async Task<long> ReceiveLoopAsync(WebSocket socket, IngestPump pump, string clientId, int maxFrameBytes,
        GatewayCounters counters, ILogger log, CancellationToken ct)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(Math.Min(256 * 1024, maxFrameBytes + 1));
        long frames = 0;
        try
        {
            while (true)
            {
                var count = 0;
                ValueWebSocketReceiveResult result;
                do
                {
                    if (count == buffer.Length)
                    {
                        // Grow up to max+1 bytes: one byte past the limit is enough to know the frame is too big.
                        var bigger = ArrayPool<byte>.Shared.Rent(Math.Min(buffer.Length * 2, maxFrameBytes + 1));
                        buffer.AsSpan(0, count).CopyTo(bigger);
                        ArrayPool<byte>.Shared.Return(buffer);
                        buffer = bigger;
                    }
                    result = await socket.ReceiveAsync(buffer.AsMemory(count, Math.Min(buffer.Length, maxFrameBytes + 1) - count), ct);
                    count += result.Count;
                    if (count > maxFrameBytes)
                    {
                        Interlocked.Increment(ref counters.OversizeFrames);
                        LogOversize(log, clientId, maxFrameBytes);
                        await CloseQuietlyAsync(socket, WebSocketCloseStatus.MessageTooBig, $"frame exceeds max_frame_bytes ({maxFrameBytes})");
                        return frames;
                    }
                }
                while (!result.EndOfMessage);

                if (result.MessageType == WebSocketMessageType.Close)
                {
                    await CloseQuietlyAsync(socket, WebSocketCloseStatus.NormalClosure, "bye");
                    return frames;
                }
                if (result.MessageType == WebSocketMessageType.Text)
                {
                    Interlocked.Increment(ref counters.InvalidFrames);
                    await SendErrorAsync(socket, "expected_binary", "send each JPEG frame as one binary message", count, ct);
                    continue;
                }
                if (Jpeg.Check(buffer.AsSpan(0, count)) is { } why)
                {
                    Interlocked.Increment(ref counters.InvalidFrames);
                    LogInvalid(log, clientId, count, why);
                    await SendErrorAsync(socket, "invalid_jpeg", why, count, ct);
                    continue;
                }

                // The one copy of the ingest path: the envelope must own its bytes (the receive buffer is reused).
                var payload = buffer.AsSpan(0, count).ToArray();
                var frame = new FrameEnvelope(clientId, 0, 0, FrameKind.Raw, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), FrameOrigin.VideoIn, payload);
                pump.Post(frame);
                frames++;
                Interlocked.Increment(ref counters.FramesIn);
                Interlocked.Add(ref counters.BytesIn, count);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static async Task SendErrorAsync(WebSocket socket, string code, string detail, int bytes, CancellationToken ct)
    {
        var json = JsonSerializer.SerializeToUtf8Bytes(new ErrorMessage(code, detail, bytes), GatewayJson.Default.ErrorMessage);
        await socket.SendAsync(json, WebSocketMessageType.Text, true, ct);
    }

    internal static async Task CloseQuietlyAsync(WebSocket socket, WebSocketCloseStatus status, string reason)
    {
        if (socket.State is not (WebSocketState.Open or WebSocketState.CloseReceived)) return;
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            await socket.CloseAsync(status, reason, timeout.Token);
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException or ObjectDisposedException)
        {
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "camera {ClientId} connected from {Remote}")]
    private static partial void LogConnected(ILogger log, string clientId, string remote);

    [LoggerMessage(Level = LogLevel.Information, Message = "camera {ClientId} disconnected after {Frames} frames")]
    private static partial void LogDisconnected(ILogger log, string clientId, long frames);

    [LoggerMessage(Level = LogLevel.Warning, Message = "camera {ClientId}: refused a {Bytes}-byte message: {Why}")]
    private static partial void LogInvalid(ILogger log, string clientId, int bytes, string why);

    [LoggerMessage(Level = LogLevel.Warning, Message = "camera {ClientId}: frame over max_frame_bytes ({Max}); closing with 1009")]
    private static partial void LogOversize(ILogger log, string clientId, int max);
}

public sealed record ErrorMessage(
    [property: System.Text.Json.Serialization.JsonPropertyName("error")] string Error,
    [property: System.Text.Json.Serialization.JsonPropertyName("detail")] string Detail,
    [property: System.Text.Json.Serialization.JsonPropertyName("bytes")] int Bytes);
