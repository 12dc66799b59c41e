using System.Threading.Channels;
using Blankend.Orleans.Gateway.Fanout;
using Blankend.Orleans.Gateway.Hosting;

namespace Blankend.Orleans.Gateway.Ingest;

/// <summary>
/// Hands one connection's frames to its ClientGrain one at a time, in order. The receive loop only posts (never
/// waits); when the cluster is slower than the camera the queue keeps the newest frames and counts the rest.
/// </summary>
public sealed partial class IngestPump : IAsyncDisposable
{
    private readonly Channel<FrameEnvelope> _queue;
    private readonly IClientGrain _grain;
    private readonly GatewayCounters _counters;
    private readonly ILogger _log;
    private readonly Task _pump;
    private readonly ClusterChangeSignal? _clusterChanges;
    private long _lastErrorLog;

    /// <param name="clusterChanges">When given, a Publish in flight when a silo connection breaks is given up after
    /// <see cref="ClusterChangeSignal.LossGrace"/> (counted as an ingest error) instead of after its 2 s response
    /// timeout, so the camera's next frames reach the source's new activation sooner.</param>
    public IngestPump(IClientGrain grain, int capacity, GatewayCounters counters, ILogger log, ClusterChangeSignal? clusterChanges = null)
    {
        _grain = grain;
        _clusterChanges = clusterChanges;
        _counters = counters;
        _log = log;
        _queue = Channel.CreateBounded<FrameEnvelope>(
            new BoundedChannelOptions(capacity) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true, SingleWriter = true },
            _ => Interlocked.Increment(ref _counters.IngestDrops));
        _pump = Task.Run(PumpAsync);
    }

    public void Post(FrameEnvelope frame) => _queue.Writer.TryWrite(frame);

    private async Task PumpAsync()
    {
        await foreach (var frame in _queue.Reader.ReadAllAsync().ConfigureAwait(false))
        {
            try
            {
                var loss = _clusterChanges?.LossToken ?? CancellationToken.None;
                var call = _grain.Publish(frame);
                if (call.IsCompleted || !loss.CanBeCanceled) await call.ConfigureAwait(false);
                else await call.WaitAsync(loss).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                // Cluster unreachable or the source's silo just died (the call failed, timed out, or was given
                // up after a silo connection broke): this frame is lost (counted), the next one is tried anew.
                // Logged at most once a second per connection.
                Interlocked.Increment(ref _counters.IngestErrors);
                var now = Environment.TickCount64;
                if (now - _lastErrorLog > 1000)
                {
                    _lastErrorLog = now;
                    LogPublishFailed(_log, e, frame.Source);
                }
            }
        }
    }

    /// <summary>Delivers what is already queued (bounded wait), then stops.</summary>
    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        try { await _pump.WaitAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false); }
        catch (TimeoutException) { }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "source {Source}: handing a frame to the cluster failed")]
    private static partial void LogPublishFailed(ILogger log, Exception e, string source);
}
