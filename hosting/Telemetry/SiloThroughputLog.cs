using System.Diagnostics.Metrics;
using Blankend.Orleans.Configuration;
using Blankend.Orleans.Telemetry;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Blankend.Orleans.Hosting;

/// <summary>
/// A silo process's periodic throughput lines (split / cluster mode; an embedded gateway writes its own
/// <c>stream recv</c> / <c>relay send</c> lines), every <c>telemetry.stats_log_interval_s</c>:
/// <code>
/// silo routed 300 frames (30.0 fps; 300 raw, 0 processed) by 1 source grain(s); last 10 s
/// silo device workers processed 290 frames (29.0 fps), bypassed 10, errors 0, dropped 0; last 10 s
/// </code>
/// It listens to the project's own instruments (<c>blankend.grain.frames.routed</c>, <c>blankend.sources.active</c>,
/// <c>blankend.processing.frames</c>) with a <see cref="MeterListener"/>, so the grains need no extra counters.
/// The timer exists only while frames move: the first measurement starts it, the first tick without any ends it.
/// </summary>
public sealed partial class SiloThroughputLog : IHostedService, IDisposable
{
    private const string ProcessingMeter = "Blankend.Processing";

    private readonly ILogger<SiloThroughputLog> _log;
    private readonly TimeSpan _interval;
    private readonly Lock _gate = new();
    private readonly CancellationTokenSource _stopping = new();
    private MeterListener? _listener;
    private bool _running;
    private Task _loop = Task.CompletedTask;
    private Snapshot _last; // totals at the end of the last logged interval, kept across loops so no frame is missed

    private long _raw,
        _processed,
        _sources;
    private long _workerProcessed,
        _workerBypassed,
        _workerErrors,
        _workerDropped;

    public SiloThroughputLog(IOptions<TelemetryOptions> options, ILogger<SiloThroughputLog> log)
        : this(TimeSpan.FromSeconds(options.Value.StatsLogIntervalSeconds), log) { }

    public SiloThroughputLog(TimeSpan interval, ILogger<SiloThroughputLog> log)
    {
        _interval = interval;
        _log = log;
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (_interval <= TimeSpan.Zero)
            return Task.CompletedTask;
        var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                var name = instrument.Meter.Name;
                if (
                    (
                        name == BlankendMetrics.MeterName
                        && instrument.Name is "blankend.grain.frames.routed" or "blankend.sources.active"
                    ) || (name == ProcessingMeter && instrument.Name == "blankend.processing.frames")
                )
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<long>(OnMeasurement);
        listener.Start();
        _listener = listener;
        return Task.CompletedTask;
    }

    private void OnMeasurement(
        Instrument instrument,
        long value,
        ReadOnlySpan<KeyValuePair<string, object?>> tags,
        object? state
    )
    {
        switch (instrument.Name)
        {
            case "blankend.sources.active":
                Interlocked.Add(ref _sources, value);
                return; // not traffic by itself
            case "blankend.grain.frames.routed":
                if (Tag(tags, "kind") == "processed")
                    Interlocked.Add(ref _processed, value);
                else
                    Interlocked.Add(ref _raw, value);
                break;
            default:
                switch (Tag(tags, "outcome"))
                {
                    case "processed":
                        Interlocked.Add(ref _workerProcessed, value);
                        break;
                    case "bypassed":
                        Interlocked.Add(ref _workerBypassed, value);
                        break;
                    case "error":
                        Interlocked.Add(ref _workerErrors, value);
                        break;
                    default:
                        Interlocked.Add(ref _workerDropped, value);
                        break;
                }
                break;
        }
        if (Volatile.Read(ref _running))
            return;
        lock (_gate)
        {
            if (_running || _stopping.IsCancellationRequested)
                return;
            _running = true;
            using (ExecutionContext.SuppressFlow())
                _loop = Task.Run(LoopAsync);
        }
    }

    private static string? Tag(ReadOnlySpan<KeyValuePair<string, object?>> tags, string key)
    {
        foreach (var t in tags)
        {
            if (t.Key == key)
                return t.Value as string;
        }
        return null;
    }

    private Snapshot Take() =>
        new(
            Interlocked.Read(ref _raw),
            Interlocked.Read(ref _processed),
            Interlocked.Read(ref _workerProcessed),
            Interlocked.Read(ref _workerBypassed),
            Interlocked.Read(ref _workerErrors),
            Interlocked.Read(ref _workerDropped)
        );

    private async Task LoopAsync()
    {
        using var timer = new PeriodicTimer(_interval);
        try
        {
            while (await timer.WaitForNextTickAsync(_stopping.Token).ConfigureAwait(false))
            {
                var now = Take();
                var d = now.Minus(_last);
                _last = now;
                var seconds = _interval.TotalSeconds;
                var routed = d.Raw + d.Processed;
                if (routed > 0)
                    LogRouted(
                        _log,
                        routed,
                        routed / seconds,
                        d.Raw,
                        d.Processed,
                        Interlocked.Read(ref _sources),
                        seconds
                    );
                var worker = d.WorkerProcessed + d.WorkerBypassed + d.WorkerErrors + d.WorkerDropped;
                if (worker > 0)
                    LogWorkers(
                        _log,
                        d.WorkerProcessed,
                        d.WorkerProcessed / seconds,
                        d.WorkerBypassed,
                        d.WorkerErrors,
                        d.WorkerDropped,
                        seconds
                    );
                if (routed == 0 && worker == 0)
                {
                    // A measurement after this point starts a new loop, whose first line counts it (_last stays).
                    lock (_gate)
                        _running = false;
                    return;
                }
            }
        }
        catch (OperationCanceledException) { }
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
            _stopping.Cancel();
        _listener?.Dispose();
        await _loop.ConfigureAwait(false);
    }

    public void Dispose()
    {
        _listener?.Dispose();
        _stopping.Dispose();
    }

    private readonly record struct Snapshot(
        long Raw,
        long Processed,
        long WorkerProcessed,
        long WorkerBypassed,
        long WorkerErrors,
        long WorkerDropped
    )
    {
        public Snapshot Minus(Snapshot o) =>
            new(
                Raw - o.Raw,
                Processed - o.Processed,
                WorkerProcessed - o.WorkerProcessed,
                WorkerBypassed - o.WorkerBypassed,
                WorkerErrors - o.WorkerErrors,
                WorkerDropped - o.WorkerDropped
            );
    }

    [LoggerMessage(
        Level = LogLevel.Information,
        Message = "silo routed {Frames} frames ({Fps:F1} fps; {Raw} raw, {Processed} processed) by {Sources} source grain(s); last {Seconds:0.##} s"
    )]
    private static partial void LogRouted(
        ILogger log,
        long frames,
        double fps,
        long raw,
        long processed,
        long sources,
        double seconds
    );

    [LoggerMessage(
        Level = LogLevel.Information,
        Message = "silo device workers processed {Processed} frames ({Fps:F1} fps), bypassed {Bypassed}, errors {Errors}, dropped {Dropped}; last {Seconds:0.##} s"
    )]
    private static partial void LogWorkers(
        ILogger log,
        long processed,
        double fps,
        long bypassed,
        long errors,
        long dropped,
        double seconds
    );
}
