using System.Net.WebSockets;
using Blankend.Orleans.Configuration;
using Blankend.Orleans.Gateway.Fanout;
using Blankend.Orleans.Gateway.Telemetry;
using Microsoft.Extensions.Options;

namespace Blankend.Orleans.Gateway.Endpoints;

/// <summary>
/// <c>/video_out?source=SRC&amp;meta=0|1</c>: a viewer. It joins the local fan-out (step 5 of a frame's life);
/// the gateway subscribes to the source in the cluster only for its first viewer.
/// </summary>
internal static partial class VideoOutEndpoint
{
    public static async Task<IResult> HandleAsync(HttpContext context, ViewerHub hub, SourceSubscriptions subscriptions,
        IOptions<GatewaySettings> gatewayOptions, GatewayCounters counters, ThroughputLog throughput, IHostApplicationLifetime lifetime,
        ILoggerFactory loggers, RawFanout raw)
    {
        if (!QueryRules.TryClientId(context.Request, "source", null, out var source, out var error)
            || !QueryRules.TryFlag(context.Request, "meta", out var meta, out error)
            || !QueryRules.TryViewerKind(context.Request, source, out var kind, out error))
            return QueryRules.BadRequest(context, "invalid query", error!, counters);
        // kind=raw: the raw side of the fan-out (its own hub and cluster registration); any and processed share
        // the main one (processed viewers filter there).
        if (kind == ViewerKind.Raw)
        {
            hub = raw.Hub;
            subscriptions = raw.Subscriptions;
        }
        if (!context.WebSockets.IsWebSocketRequest)
            return QueryRules.BadRequest(context, "WebSocket upgrade required", "/video_out takes a WebSocket connection and sends one JPEG per binary message", counters);

        var log = loggers.CreateLogger("Blankend.VideoOut");
        using var socket = await context.WebSockets.AcceptWebSocketAsync();
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, lifetime.ApplicationStopping);
        var viewer = new Viewer(socket, source, meta, gatewayOptions.Value.ViewerQueueSize, counters, kind);
        hub.Add(viewer);
        counters.ViewerConnected();
        throughput.Acquire();
        LogConnected(log, source ?? "*", meta, kind);
        var sendLoop = Task.CompletedTask;
        try
        {
            await subscriptions.AcquireAsync(source);
            sendLoop = viewer.RunSendLoopAsync(cts.Token);
            await DrainUntilClosedAsync(socket, cts.Token);
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException)
        {
        }
        finally
        {
            hub.Remove(viewer);
            subscriptions.Release(source);
            viewer.Complete();
            await cts.CancelAsync();
            try { await sendLoop; }
            catch (Exception e) when (e is OperationCanceledException or WebSocketException or ObjectDisposedException) { }
            counters.ViewerDisconnected();
            throughput.Release();
            LogDisconnected(log, source ?? "*", viewer.Sent, viewer.Dropped);
        }
        var status = lifetime.ApplicationStopping.IsCancellationRequested ? WebSocketCloseStatus.EndpointUnavailable : WebSocketCloseStatus.NormalClosure;
        await VideoInEndpoint.CloseQuietlyAsync(socket, status, status == WebSocketCloseStatus.NormalClosure ? "bye" : "service stopping");
        return Results.Empty;
    }

    /// <summary>Viewers send nothing we need; reading is how a close (or a dead peer) is noticed.</summary>
    private static async Task DrainUntilClosedAsync(WebSocket socket, CancellationToken ct)
    {
        var scratch = new byte[256];
        while (true)
        {
            var r = await socket.ReceiveAsync(scratch.AsMemory(), ct);
            if (r.MessageType == WebSocketMessageType.Close) return;
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "viewer of {Source} connected (meta={Meta}, kind={Kind})")]
    private static partial void LogConnected(ILogger log, string source, bool meta, ViewerKind kind);

    [LoggerMessage(Level = LogLevel.Information, Message = "viewer of {Source} disconnected: {Sent} frames sent, {Dropped} dropped (slow reader)")]
    private static partial void LogDisconnected(ILogger log, string source, long sent, long dropped);
}
