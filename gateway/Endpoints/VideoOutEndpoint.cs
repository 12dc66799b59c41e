using System.Net.WebSockets;
using Blankend.Orleans.Configuration;
using Blankend.Orleans.Gateway.Fanout;
using Blankend.Orleans.Gateway.Telemetry;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;

namespace Blankend.Orleans.Gateway.Endpoints;

/// <summary>
/// <c>/video_out?source=SRC&amp;meta=0|1</c>: a viewer. It joins the local fan-out (step 5 of a frame's life);
/// the gateway subscribes to the source in the cluster only for its first viewer.
/// </summary>
internal static partial class VideoOutEndpoint
{
    public static async Task<IResult> HandleAsync(
        HttpContext context,
        ViewerHub hub,
        SourceSubscriptions subscriptions,
        IOptions<GatewaySettings> gatewayOptions,
        GatewayCounters counters,
        ThroughputLog throughput,
        IHostApplicationLifetime lifetime,
        ILoggerFactory loggers,
        RawFanout raw
    )
    {
        if (
            !QueryRules.TryClientId(context.Request, "source", null, out var source, out var error)
            || !QueryRules.TryFlag(context.Request, "meta", out var meta, out error)
            || !QueryRules.TryViewerKind(context.Request, source, out var kind, out error)
        )
            return QueryRules.BadRequest(context, "invalid query", error!, counters);
        // kind=raw: the raw side of the fan-out (its own hub and cluster registration); any and processed share
        // the main one (processed viewers filter there).
        if (kind == ViewerKind.Raw)
        {
            hub = raw.Hub;
            subscriptions = raw.Subscriptions;
        }
        if (!context.WebSockets.IsWebSocketRequest)
            return QueryRules.BadRequest(
                context,
                "WebSocket upgrade required",
                "/video_out takes a WebSocket connection and sends one JPEG per binary message",
                counters
            );

        var log = loggers.CreateLogger("Blankend.VideoOut");
        using var socket = await context.WebSockets.AcceptWebSocketAsync();
        // Over HTTP/1.1 the upgrade went through WireUpgradeFeature (installed for /video_out ahead of the WebSocket
        // middleware): frames are written pre-framed to that stream. Otherwise they go through the WebSocket.
        var wire = (context.Features.Get<IHttpUpgradeFeature>() as WireUpgradeFeature)?.Stream;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(
            context.RequestAborted,
            lifetime.ApplicationStopping
        );
        using var writes = new CancellationTokenSource(); // cancels a write in flight: only once it is given up on
        var viewer = new Viewer(socket, source, meta, gatewayOptions.Value.ViewerQueueSize, counters, kind, wire);
        hub.Add(viewer);
        counters.ViewerConnected();
        throughput.Acquire();
        LogConnected(log, source ?? "*", meta, kind);
        try
        {
            await subscriptions.AcquireAsync(source);
            viewer.Start(writes.Token);
            await DrainUntilClosedAsync(socket, cts.Token);
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException) { }
        finally
        {
            hub.Remove(viewer);
            subscriptions.Release(source);
            // A frame being written is let finish (briefly) so that the close frame can follow it; a write that
            // does not finish in that time (a viewer that stopped reading) is cancelled and the socket aborted.
            var idle = viewer.CompleteAsync();
            if (await Task.WhenAny(idle, Task.Delay(WriteGrace)) != idle)
                await writes.CancelAsync();
            await idle;
            counters.ViewerDisconnected();
            throughput.Release();
            LogDisconnected(log, source ?? "*", viewer.Sent, viewer.Dropped);
        }
        var status = lifetime.ApplicationStopping.IsCancellationRequested
            ? WebSocketCloseStatus.EndpointUnavailable
            : WebSocketCloseStatus.NormalClosure;
        await VideoInEndpoint.CloseQuietlyAsync(
            socket,
            status,
            status == WebSocketCloseStatus.NormalClosure ? "bye" : "service stopping"
        );
        return Results.Empty;
    }

    /// <summary>How long a viewer that leaves (or a stopping service) waits for a frame being written.</summary>
    internal static readonly TimeSpan WriteGrace = TimeSpan.FromSeconds(1);

    /// <summary>Viewers send nothing we need; reading is how a close (or a dead peer) is noticed.</summary>
    private static async Task DrainUntilClosedAsync(WebSocket socket, CancellationToken ct)
    {
        var scratch = new byte[256];
        while (true)
        {
            var r = await socket.ReceiveAsync(scratch.AsMemory(), ct);
            if (r.MessageType == WebSocketMessageType.Close)
                return;
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "viewer of {Source} connected (meta={Meta}, kind={Kind})")]
    private static partial void LogConnected(ILogger log, string source, bool meta, ViewerKind kind);

    [LoggerMessage(
        Level = LogLevel.Information,
        Message = "viewer of {Source} disconnected: {Sent} frames sent, {Dropped} dropped (slow reader)"
    )]
    private static partial void LogDisconnected(ILogger log, string source, long sent, long dropped);
}
