using System.Buffers;
using System.Diagnostics;
using System.Net.WebSockets;
using System.Text.Json;
using Blankend.Orleans.Configuration;
using Blankend.Orleans.Gateway.Cluster;
using Blankend.Orleans.Gateway.Fanout;
using Blankend.Orleans.Gateway.Ingest;
using Blankend.Orleans.Gateway.Telemetry;
using Blankend.Orleans.Media;
using Blankend.Orleans.Telemetry;
using Microsoft.Extensions.Options;

namespace Blankend.Orleans.Gateway.Endpoints;

/// <summary>
/// <c>/video_in?client_id=SRC</c>: one JPEG per binary message. Validate, stamp, hand to the source's
/// ClientGrain (through the connection's <see cref="IngestPump"/>: the camera never waits on routing). Step 1 of
/// a frame's life. Every <c>telemetry.trace_sample_every</c>-th frame gets a trace of its own.
/// </summary>
internal static partial class VideoInEndpoint
{
    public static async Task<IResult> HandleAsync(
        HttpContext context,
        IGrainFactory grains,
        IOptions<StreamOptions> streamOptions,
        IOptions<GatewaySettings> gatewayOptions,
        IOptions<TelemetryOptions> telemetryOptions,
        GatewayCounters counters,
        ThroughputLog throughput,
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
            return QueryRules.BadRequest(context, "invalid query", error!, counters);
        if (!context.WebSockets.IsWebSocketRequest)
            return QueryRules.BadRequest(
                context,
                "WebSocket upgrade required",
                "/video_in takes a WebSocket connection carrying one JPEG per binary message",
                counters
            );

        var log = loggers.CreateLogger("Blankend.VideoIn");
        using var socket = await context.WebSockets.AcceptWebSocketAsync();
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(
            context.RequestAborted,
            lifetime.ApplicationStopping
        );
        counters.CameraConnected(BlankendMetrics.Endpoints.VideoIn);
        throughput.Acquire();
        LogConnected(log, clientId!, context.Connection.RemoteIpAddress?.ToString() ?? "?");
        await using var pump = new IngestPump(
            grains.GetGrain<IClientGrain>(clientId!),
            gatewayOptions.Value.IngestQueueSize,
            counters,
            log,
            context.RequestServices.GetService<ClusterChangeSignal>()
        );
        var tracing = new FrameTracing(telemetryOptions.Value.TraceSampleEvery, Activity.Current);
        long frames = 0;
        try
        {
            frames = await ReceiveLoopAsync(
                socket,
                pump,
                clientId!,
                stream.MaxFrameBytes,
                tracing,
                counters,
                log,
                cts.Token
            );
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException)
        {
            // Client gone or service stopping: nothing held here outlives the connection.
        }
        finally
        {
            counters.CameraDisconnected(BlankendMetrics.Endpoints.VideoIn);
            throughput.Release();
            LogDisconnected(log, clientId!, frames);
        }
        if (lifetime.ApplicationStopping.IsCancellationRequested)
            await CloseQuietlyAsync(socket, WebSocketCloseStatus.EndpointUnavailable, "service stopping");
        return Results.Empty;
    }

    private static async Task<long> ReceiveLoopAsync(
        WebSocket socket,
        IngestPump pump,
        string clientId,
        int maxFrameBytes,
        FrameTracing tracing,
        GatewayCounters counters,
        ILogger log,
        CancellationToken ct
    )
    {
        using var buffer = new MessageBuffer(256 * 1024, maxFrameBytes);
        long frames = 0;
        var refusals = default(LogRateLimit);
        while (true)
        {
            var (type, tooBig) = await buffer.ReceiveAsync(socket, ct);
            var count = buffer.Count;
            if (tooBig)
            {
                counters.Oversize();
                LogOversize(log, clientId, maxFrameBytes);
                await CloseQuietlyAsync(
                    socket,
                    WebSocketCloseStatus.MessageTooBig,
                    $"frame exceeds max_frame_bytes ({maxFrameBytes})"
                );
                return frames;
            }

            if (type == WebSocketMessageType.Close)
            {
                await CloseQuietlyAsync(socket, WebSocketCloseStatus.NormalClosure, "bye");
                return frames;
            }
            var received = Stopwatch.GetTimestamp();
            if (type == WebSocketMessageType.Text)
            {
                counters.InvalidInput();
                LogRefusal(
                    log,
                    ref refusals,
                    clientId,
                    count,
                    "expected_binary",
                    "a text message (frames are binary JPEG messages)"
                );
                await SendErrorAsync(
                    socket,
                    "expected_binary",
                    "send each JPEG frame as one binary message",
                    count,
                    ct
                );
                continue;
            }
            if (Jpeg.Check(buffer.Span) is { } why)
            {
                counters.InvalidInput();
                LogRefusal(log, ref refusals, clientId, count, "invalid_jpeg", why);
                await SendErrorAsync(socket, "invalid_jpeg", why, count, ct);
                continue;
            }

            // The one copy of the ingest path: the envelope must own its bytes (the receive buffer is reused).
            var payload = buffer.Span.ToArray();
            var frame = new FrameEnvelope(
                clientId,
                0,
                0,
                FrameKind.Raw,
                DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
                FrameOrigin.VideoIn,
                payload
            );
            pump.Post(frame, received, tracing.StartFrameSpan(frames, clientId, count));
            frames++;
            counters.FrameReceived(BlankendMetrics.Endpoints.VideoIn, count);
        }
    }

    private static async Task SendErrorAsync(
        WebSocket socket,
        string code,
        string detail,
        int bytes,
        CancellationToken ct
    )
    {
        var json = JsonSerializer.SerializeToUtf8Bytes(
            new ErrorMessage(code, detail, bytes),
            GatewayJson.Default.ErrorMessage
        );
        await socket.SendAsync(json, WebSocketMessageType.Text, true, ct);
    }

    internal static async Task CloseQuietlyAsync(WebSocket socket, WebSocketCloseStatus status, string reason)
    {
        if (socket.State is not (WebSocketState.Open or WebSocketState.CloseReceived))
            return;
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            await socket.CloseAsync(status, reason, timeout.Token);
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException or ObjectDisposedException) { }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "camera {ClientId} connected from {Remote}")]
    private static partial void LogConnected(ILogger log, string clientId, string remote);

    [LoggerMessage(Level = LogLevel.Information, Message = "camera {ClientId} disconnected after {Frames} frames")]
    private static partial void LogDisconnected(ILogger log, string clientId, long frames);

    /// <summary>One line per refused message, at most one a second per connection (a broken camera sending 30
    /// bad messages a second must not flood the log); the next line says how many were not written. Every refusal
    /// is counted in blankend.frames.dropped{reason="invalid_input"} and answered on the socket.</summary>
    private static void LogRefusal(
        ILogger log,
        ref LogRateLimit limiter,
        string clientId,
        int bytes,
        string code,
        string why
    )
    {
        if (!limiter.TryEnter(out var notLogged))
            return;
        if (notLogged == 0)
            LogRefused(log, clientId, bytes, code, why);
        else
            LogRefusedWithSkipped(log, clientId, bytes, code, why, notLogged);
    }

    /// <summary>Picks the frames of one connection that get a trace, and starts their span.</summary>
    private readonly struct FrameTracing(int sampleEvery, Activity? connection)
    {
        /// <summary>A span for frame number <paramref name="index"/> of the connection (0-based) when it is picked
        /// and something listens, else null. The span is a root of its own trace (a WebSocket request lives for
        /// the whole connection: frames as its children would make one endless trace), linked to the connection's
        /// request span. It is ended by the pump once the grain took the frame.</summary>
        public Activity? StartFrameSpan(long index, string clientId, int bytes)
        {
            if (sampleEvery <= 0 || index % sampleEvery != 0 || !BlankendTracing.Source.HasListeners())
                return null;
            var current = Activity.Current;
            Activity.Current = null;
            try
            {
                ActivityLink[]? links = connection is { } c ? [new ActivityLink(c.Context)] : null;
                var span = BlankendTracing.Source.StartActivity(
                    BlankendTracing.VideoInFrame,
                    ActivityKind.Consumer,
                    parentContext: default,
                    tags: null,
                    links: links
                );
                if (span is { IsAllDataRequested: true })
                {
                    span.SetTag("blankend.source", clientId);
                    span.SetTag("blankend.frame.index", index);
                    span.SetTag("blankend.frame.bytes", bytes);
                }
                return span;
            }
            finally
            {
                Activity.Current = current;
            }
        }
    }

    [LoggerMessage(
        Level = LogLevel.Warning,
        Message = "camera {ClientId}: refused a {Bytes}-byte message ({Code}): {Why}"
    )]
    private static partial void LogRefused(ILogger log, string clientId, int bytes, string code, string why);

    [LoggerMessage(
        Level = LogLevel.Warning,
        Message = "camera {ClientId}: refused a {Bytes}-byte message ({Code}): {Why}; {Skipped} more refused since the last line"
    )]
    private static partial void LogRefusedWithSkipped(
        ILogger log,
        string clientId,
        int bytes,
        string code,
        string why,
        int skipped
    );

    [LoggerMessage(
        Level = LogLevel.Warning,
        Message = "camera {ClientId}: frame over max_frame_bytes ({Max}); closing with 1009"
    )]
    private static partial void LogOversize(ILogger log, string clientId, int max);
}

internal sealed record ErrorMessage(
    [property: System.Text.Json.Serialization.JsonPropertyName("error")] string Error,
    [property: System.Text.Json.Serialization.JsonPropertyName("detail")] string Detail,
    [property: System.Text.Json.Serialization.JsonPropertyName("bytes")] int Bytes
);
