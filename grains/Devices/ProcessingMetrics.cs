using System.Diagnostics.Metrics;

namespace Blankend.Orleans.Grains.Devices;

/// <summary>
/// The processing path's own meter (<see cref="MeterName"/>): frames by outcome, and the execution provider
/// of each device worker (never a silent CPU fallback: <c>blankend.processing.provider</c> = 1 with tags
/// device and provider). Observable instruments cost nothing until a collector reads them.
/// </summary>
internal sealed class ProcessingMetrics : IDisposable
{
    public const string MeterName = "Blankend.Processing";

    private readonly Meter _meter;
    private readonly Counter<long> _frames;
    private readonly Func<IEnumerable<(string Device, string Provider, int QueueDepth)>> _devices;

    public ProcessingMetrics(DeviceWorkerHost host)
    {
        _meter = new Meter(MeterName);
        _devices = host.Snapshot;
        _frames = _meter.CreateCounter<long>(
            "blankend.processing.frames",
            "{frame}",
            "Frames of the processing path by outcome: processed, bypassed (worker saturated, delivered raw), error (delivered raw), dropped_fps, dropped_overflow"
        );
        _meter.CreateObservableGauge(
            "blankend.processing.provider",
            ObserveProvider,
            "{device}",
            "1 per device worker, tagged with the execution provider its codec runs on (CPU or CUDA)"
        );
        _meter.CreateObservableGauge(
            "blankend.processing.queue_depth",
            ObserveQueue,
            "{frame}",
            "Frames waiting per device worker"
        );
        HwUnavailable = _meter.CreateCounter<long>(
            "blankend.processing.hw_unavailable",
            "{frame}",
            "Frames for which hw_transcode asked for a GPU that the cluster does not have (run on cpu0, counted, shown in gpu/status)"
        );
    }

    public Counter<long> HwUnavailable { get; }

    public void Frame(string outcome, string? device) =>
        _frames.Add(
            1,
            new KeyValuePair<string, object?>("outcome", outcome),
            new KeyValuePair<string, object?>("device", device ?? "none")
        );

    private IEnumerable<Measurement<int>> ObserveProvider()
    {
        foreach (var (device, provider, _) in _devices())
            yield return new Measurement<int>(
                1,
                new KeyValuePair<string, object?>("device", device),
                new KeyValuePair<string, object?>("provider", provider)
            );
    }

    private IEnumerable<Measurement<int>> ObserveQueue()
    {
        foreach (var (device, _, depth) in _devices())
            yield return new Measurement<int>(depth, new KeyValuePair<string, object?>("device", device));
    }

    public void Dispose() => _meter.Dispose();
}

/// <summary>Sum of values over the last few whole seconds (rates, busy time); cheap to add to per frame.</summary>
internal sealed class WindowCounter(int seconds = 3)
{
    private readonly long[] _buckets = new long[seconds + 1];
    private readonly Lock _gate = new();
    private long _second = Environment.TickCount64 / 1000;

    public void Add(long value = 1)
    {
        lock (_gate)
        {
            Rotate(Environment.TickCount64 / 1000);
            _buckets[_second % _buckets.Length] += value;
        }
    }

    /// <summary>Average per second over the last complete seconds.</summary>
    public double PerSecond
    {
        get
        {
            lock (_gate)
            {
                Rotate(Environment.TickCount64 / 1000);
                long sum = 0;
                for (var i = 1; i < _buckets.Length; i++)
                    sum += _buckets[(_second - i + _buckets.Length * 2) % _buckets.Length];
                return (double)sum / (_buckets.Length - 1);
            }
        }
    }

    private void Rotate(long now)
    {
        if (now == _second)
            return;
        var steps = Math.Min(now - _second, _buckets.Length);
        for (var i = 1; i <= steps; i++)
            _buckets[(_second + i) % _buckets.Length] = 0;
        _second = now;
    }
}
