using System.Diagnostics;
using System.Threading.Channels;
using Blankend.Orleans.Gateway.Cluster;
using Blankend.Orleans.Gateway.Fanout;
using Blankend.Orleans.Gateway.Telemetry;
using Blankend.Orleans.Telemetry;
using OpenTelemetry;

namespace Blankend.Orleans.Gateway.Ingest;

/// <summary>
/// Hands one connection's frames to its ClientGrain one at a time, in order. The receive loop only posts (never
/// waits); when the cluster is slower than the camera the queue keeps the newest frames and counts the rest.
/// Records the ingest_to_grain latency of every frame, and carries the trace of the frames picked for tracing
/// into the grain call.
/// </summary>
internal sealed partial class IngestPump : IAsyncDisposable
{
    /// <summary>A frame, when its message was complete (<see cref="Stopwatch.GetTimestamp"/>), and its trace span
    /// when the frame was picked for tracing.</summary>
    private readonly record struct Item(FrameEnvelope Frame, long ReceivedTimestamp, Activity? Span);

    private readonly Channel<Item> _queue;
    private readonly IClientGrain _grain;
    private readonly GatewayCounters _counters;
    private readonly ILogger _log;
    private readonly Task _pump;
    private readonly ClusterChangeSignal? _clusterChanges;
    private long _lastErrorLog;

    /// <param name="clusterChanges">When given, a Publish in flight when a silo connection breaks is given up after
    /// <see cref="ClusterChangeSignal.LossGrace"/> (counted as an ingest error) instead of after its 2 s response
    /// timeout, so the camera's next frames reach the source's new activation sooner.</param>
    public IngestPump(
        IClientGrain grain,
        int capacity,
        GatewayCounters counters,
        ILogger log,
        ClusterChangeSignal? clusterChanges = null
    )
    {
        _grain = grain;
        _clusterChanges = clusterChanges;
        _counters = counters;
        _log = log;
        _queue = Channel.CreateBounded<Item>(
            new BoundedChannelOptions(capacity)
            {
                FullMode = BoundedChannelFullMode.DropOldest,
                SingleReader = true,
                SingleWriter = true,
            },
            OnDropped
        );
        // Not in the flow of the WebSocket request: its span (and RequestContext) must not become the parent of
        // every frame's grain call.
        using (ExecutionContext.SuppressFlow())
            _pump = Task.Run(PumpAsync);
    }

    /// <param name="frame">The frame.</param>
    /// <param name="receivedTimestamp">When its message was complete (<see cref="Stopwatch.GetTimestamp"/>).</param>
    /// <param name="span">Its trace span when it was picked for tracing (ended here), else null.</param>
    public void Post(FrameEnvelope frame, long receivedTimestamp, Activity? span) =>
        _queue.Writer.TryWrite(new Item(frame, receivedTimestamp, span));

    private void OnDropped(Item item)
    {
        _counters.IngestDropped();
        if (item.Span is { } span)
        {
            span.SetTag("blankend.dropped", "ingest_queue");
            span.Stop();
        }
    }

    private async Task PumpAsync()
    {
        // Frames not picked for tracing make no spans at all, not even unrecorded ones; a picked frame lifts this
        // for its own call.
        using var untraced = SuppressInstrumentationScope.Begin();
        await foreach (var item in _queue.Reader.ReadAllAsync().ConfigureAwait(false))
        {
            try
            {
                // A call caught by a silo crash never answers: it is given up LossGrace after the crash is
                // noticed (or by its 2 s response timeout), so the next frames go to the re-activated grain.
                var loss = _clusterChanges?.LossToken ?? CancellationToken.None;
                var call = item.Span is null ? _grain.Publish(item.Frame) : PublishTracedAsync(item);
                if (call.IsCompleted || !loss.CanBeCanceled)
                    await call.ConfigureAwait(false);
                else
                    await call.WaitAsync(loss).ConfigureAwait(false);
                BlankendMetrics.StageDuration.Record(
                    Stopwatch.GetElapsedTime(item.ReceivedTimestamp).TotalSeconds,
                    BlankendMetrics.Stages.IngestToGrain
                );
            }
            catch (Exception e)
            {
                // Cluster unreachable or the source's silo just died (the call failed, timed out, or was given
                // up after a silo connection broke): this frame is lost (counted), the next one is tried anew.
                // Logged at most once a second per connection.
                _counters.IngestFailed();
                var now = Environment.TickCount64;
                if (now - _lastErrorLog > 1000)
                {
                    _lastErrorLog = now;
                    using (SuppressInstrumentationScope.Begin(false))
                        LogPublishFailed(_log, e, item.Frame.Source);
                }
            }
        }
    }

    private async Task PublishTracedAsync(Item item)
    {
        var span = item.Span!;
        using var traced = SuppressInstrumentationScope.Begin(false);
        Activity.Current = span;
        try
        {
            await _grain.Publish(item.Frame).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            span.SetStatus(ActivityStatusCode.Error, e.Message);
            throw;
        }
        finally
        {
            span.Stop();
            Activity.Current = null;
            // The grain-call filter wrote this frame's traceparent into the RequestContext: the next (untraced)
            // frame must not carry it.
            RequestContext.Clear();
        }
    }

    /// <summary>Delivers what is already queued (bounded wait), then stops.</summary>
    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        try
        {
            await _pump.WaitAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false);
        }
        catch (TimeoutException) { }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "source {Source}: handing a frame to the cluster failed")]
    private static partial void LogPublishFailed(ILogger log, Exception e, string source);
}
