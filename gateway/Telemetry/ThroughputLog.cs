using Blankend.Orleans.Configuration;
using Blankend.Orleans.Gateway.Fanout;
using Microsoft.Extensions.Options;

namespace Blankend.Orleans.Gateway.Telemetry;

/// <summary>
/// Periodic throughput lines in the spirit of the original service (<c>stream recv ... frames/bytes</c>,
/// <c>relay send ... frames/bytes dropped</c>), every <c>telemetry.stats_log_interval_s</c>. The timer exists only
/// while a camera or viewer is connected (no resident loop when idle) and a line is written only for an interval
/// that had traffic.
/// </summary>
internal sealed partial class ThroughputLog : IAsyncDisposable
{
    private readonly GatewayCounters _counters;
    private readonly ILogger<ThroughputLog> _log;
    private readonly TimeSpan _interval;
    private readonly Lock _gate = new();
    private readonly CancellationTokenSource _stopping = new();
    private int _users;
    private bool _running;
    private Task _loop = Task.CompletedTask;

    public ThroughputLog(GatewayCounters counters, IOptions<TelemetryOptions> options, ILogger<ThroughputLog> log)
    {
        _counters = counters;
        _log = log;
        _interval = TimeSpan.FromSeconds(options.Value.StatsLogIntervalSeconds);
    }

    /// <summary>A camera or viewer connected: the timer runs (from now) while there is at least one.</summary>
    public void Acquire()
    {
        if (_interval <= TimeSpan.Zero)
            return;
        lock (_gate)
        {
            _users++;
            if (_running)
                return;
            _running = true;
            // Not in the flow of the request that happened to connect first (its span, its RequestContext).
            using (ExecutionContext.SuppressFlow())
                _loop = Task.Run(LoopAsync);
        }
    }

    public void Release()
    {
        if (_interval <= TimeSpan.Zero)
            return;
        lock (_gate)
            _users--;
    }

    private async Task LoopAsync()
    {
        using var timer = new PeriodicTimer(_interval);
        var last = Snapshot.Take(_counters);
        try
        {
            while (await timer.WaitForNextTickAsync(_stopping.Token).ConfigureAwait(false))
            {
                var now = Snapshot.Take(_counters);
                Write(now.Minus(last));
                last = now;
                lock (_gate)
                {
                    // The loop ends on the first tick without users; a later Acquire starts a new one.
                    if (_users == 0)
                    {
                        _running = false;
                        return;
                    }
                }
            }
        }
        catch (OperationCanceledException) { }
    }

    private void Write(Snapshot d)
    {
        var seconds = _interval.TotalSeconds;
        if (d.FramesIn > 0 || d.InvalidIn > 0)
        {
            LogRecv(
                _log,
                d.FramesIn,
                d.BytesIn,
                d.FramesIn / seconds,
                d.BytesIn * 8 / seconds / 1e6,
                d.InvalidIn,
                d.IngestDropped,
                _counters.CamerasConnected,
                seconds
            );
        }
        if (d.FramesSent > 0 || d.ViewerDropped > 0)
        {
            LogSend(
                _log,
                d.FramesSent,
                d.BytesSent,
                d.ViewerDropped,
                d.FramesSent / seconds,
                d.BytesSent * 8 / seconds / 1e6,
                _counters.ViewersConnected,
                seconds
            );
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        await _loop.ConfigureAwait(false);
        _stopping.Dispose();
    }

    private readonly record struct Snapshot(
        long FramesIn,
        long BytesIn,
        long InvalidIn,
        long IngestDropped,
        long FramesSent,
        long BytesSent,
        long ViewerDropped
    )
    {
        public static Snapshot Take(GatewayCounters c) =>
            new(
                c.FramesIn,
                c.BytesIn,
                c.InvalidFrames + c.OversizeFrames,
                c.IngestDrops + c.IngestErrors,
                c.FramesSent,
                c.BytesSent,
                c.ViewerDrops
            );

        public Snapshot Minus(Snapshot o) =>
            new(
                FramesIn - o.FramesIn,
                BytesIn - o.BytesIn,
                InvalidIn - o.InvalidIn,
                IngestDropped - o.IngestDropped,
                FramesSent - o.FramesSent,
                BytesSent - o.BytesSent,
                ViewerDropped - o.ViewerDropped
            );
    }

    [LoggerMessage(
        Level = LogLevel.Information,
        Message = "stream recv {Frames} frames {Bytes} bytes ({Fps:F1} fps, {Mbps:F1} Mbit/s), refused {Refused}, ingest dropped {Dropped}; {Cameras} camera(s), last {Seconds:F0} s"
    )]
    private static partial void LogRecv(
        ILogger log,
        long frames,
        long bytes,
        double fps,
        double mbps,
        long refused,
        long dropped,
        long cameras,
        double seconds
    );

    [LoggerMessage(
        Level = LogLevel.Information,
        Message = "relay send {Frames} frames {Bytes} bytes dropped {Dropped} ({Fps:F1} fps, {Mbps:F1} Mbit/s); {Viewers} viewer(s), last {Seconds:F0} s"
    )]
    private static partial void LogSend(
        ILogger log,
        long frames,
        long bytes,
        long dropped,
        double fps,
        double mbps,
        long viewers,
        double seconds
    );
}
