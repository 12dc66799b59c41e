using System.Diagnostics;
using System.Threading.Channels;
using Blankend.Orleans.Configuration;
using Blankend.Orleans.Telemetry;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Blankend.Orleans.Grains.Devices;

/// <summary>
/// One device's worker: a bounded queue and up to <c>workers</c> dedicated threads that take batches from it,
/// off the Orleans scheduler. A full queue answers <see cref="ProcessResult.Saturated"/> at once (the source
/// forwards its raw frame); nothing waits on it.
/// </summary>
internal sealed class DeviceLoop
{
    private readonly DeviceWorkerHost _host;
    private readonly Channel<FrameWork> _queue;
    private readonly int _capacity;
    private readonly int _batchMax;
    private readonly TimeSpan _idle;
    private readonly CancellationToken _stopping;
    private readonly Lock _gate = new();
    private int _loops;
    private int _desired = 1;
    private int _nextThread;

    private long _submitted,
        _processed,
        _saturated,
        _errors,
        _batches,
        _batchFrames,
        _starts,
        _stops;
    private readonly WindowCounter _in = new();
    private readonly WindowCounter _out = new();
    private readonly WindowCounter _busyTicks = new();
    private readonly WindowCounter _recentSaturated = new();
    private readonly WindowCounter _recentErrors = new();
    private double _decodeMs,
        _stepsMs,
        _encodeMs;
    private string? _lastError;

    // Push timeout (cross-stream batching): per source, when its last frame came and its mean interval, so a
    // batch waits only for sources whose next frame is due within the timeout (one camera never waits).
    private readonly Dictionary<string, (long Last, double Interval)> _arrivals = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _running = new(StringComparer.Ordinal);
    private readonly long _batchTimeout;
    private long _nextArrivalPrune;
    private long _waits;
    private double _waitMsTotal;

    internal DeviceLoop(
        DeviceWorkerHost host,
        string device,
        VideoProcessingOptions options,
        AiOptions ai,
        CancellationToken stopping
    )
    {
        _host = host;
        Device = device;
        _capacity = options.QueueSize;
        _batchMax = options.BatchMax;
        _batchTimeout = (long)(ai.BatchTimeoutMs * Stopwatch.Frequency / 1000.0);
        _idle = TimeSpan.FromMilliseconds(options.IdleStopMs);
        _stopping = stopping;
        _queue = Channel.CreateBounded<FrameWork>(
            new BoundedChannelOptions(_capacity)
            {
                FullMode = BoundedChannelFullMode.Wait, // TryWrite answers false when full: the caller bypasses
                SingleReader = false,
                SingleWriter = false,
            }
        );
        Provider = host.ProviderFor(device);
    }

    public string Device { get; }

    public (string Name, string Reason) Provider { get; }

    public int QueueDepth => _queue.Reader.Count;

    /// <summary>Batches that waited for other sources' frames (the push timeout), and their total wait.</summary>
    public (long Waits, double Ms) BatchWaits
    {
        get
        {
            lock (_gate)
                return (_waits, _waitMsTotal);
        }
    }

    public int Running
    {
        get
        {
            lock (_gate)
                return _loops;
        }
    }

    public Task<ProcessResult> Submit(ProcessRequest request)
    {
        var work = new FrameWork(request) { Device = Device };
        if (_stopping.IsCancellationRequested || !_queue.Writer.TryWrite(work))
        {
            Interlocked.Increment(ref _saturated);
            _recentSaturated.Add();
            return Task.FromResult(ProcessResult.Saturated);
        }
        Interlocked.Increment(ref _submitted);
        _in.Add();
        if (_batchTimeout > 0)
            NoteArrival(request.Frame.Source);
        EnsureLoops(request.Settings.Workers);
        return work.Completion.Task;
    }

    /// <summary>Starts loops up to <paramref name="workers"/>. Called after each write, so a loop that decided to
    /// end (under the same lock, with an empty queue) is replaced and no frame is left without a reader.</summary>
    private void EnsureLoops(int workers)
    {
        lock (_gate)
        {
            _desired = Math.Max(1, workers);
            while (_loops < _desired)
            {
                _loops++;
                _starts++;
                var name = $"{_host.Tag}-{Device}-{_nextThread++}";
                if (name.Length > 15)
                    name = name[..15];
                var thread = new Thread(Loop) { IsBackground = true, Name = name };
                thread.Start();
            }
        }
    }

    private void Loop()
    {
        var name = Thread.CurrentThread.Name ?? Device;
        _host.LogLoopStarted(Device, name);
        var reader = _queue.Reader;
        var batch = new List<FrameWork>(_batchMax);
        var reason = "idle";
        try
        {
            while (true)
            {
                if (reader.TryRead(out var first))
                {
                    batch.Add(first);
                    while (batch.Count < _batchMax && reader.TryRead(out var more))
                        batch.Add(more);
                    if (_batchTimeout > 0 && batch.Count < _batchMax)
                        WaitForDueSources(batch, reader);
                    MarkRunning(batch, +1);
                    try
                    {
                        RunBatch(batch);
                    }
                    finally
                    {
                        MarkRunning(batch, -1);
                    }
                    batch.Clear();
                    lock (_gate)
                    {
                        if (_loops > _desired)
                        {
                            _loops--;
                            _stops++;
                            reason = "workers lowered";
                            return;
                        }
                    }
                    continue;
                }

                bool ready;
                try
                {
                    var wait = reader.WaitToReadAsync(_stopping);
                    ready = wait.IsCompleted ? wait.Result : wait.AsTask().Wait(_idle);
                }
                catch (AggregateException e) when (e.InnerException is OperationCanceledException)
                {
                    ready = false;
                }
                catch (OperationCanceledException)
                {
                    ready = false;
                }
                if (ready && !_stopping.IsCancellationRequested)
                    continue;
                lock (_gate)
                {
                    if (reader.Count > 0 && !_stopping.IsCancellationRequested)
                        continue;
                    _loops--;
                    _stops++;
                    if (_stopping.IsCancellationRequested)
                        reason = "stopping";
                    return;
                }
            }
        }
        finally
        {
            _host.LogLoopStopped(Device, name, reason);
        }
    }

    private void NoteArrival(string source)
    {
        var now = Stopwatch.GetTimestamp();
        lock (_gate)
        {
            if (_arrivals.TryGetValue(source, out var a))
            {
                var gap = now - a.Last;
                _arrivals[source] = (now, a.Interval == 0 ? gap : a.Interval * 0.8 + gap * 0.2);
            }
            else
            {
                _arrivals[source] = (now, 0);
            }
            if (now < _nextArrivalPrune)
                return;
            _nextArrivalPrune = now + 5 * Stopwatch.Frequency;
            foreach (var (k, v) in _arrivals)
            {
                if (now - v.Last > 5 * Stopwatch.Frequency)
                    _arrivals.Remove(k);
            }
        }
    }

    private void MarkRunning(List<FrameWork> batch, int delta)
    {
        if (_batchTimeout <= 0)
            return;
        lock (_gate)
        {
            foreach (var w in batch)
            {
                var n = _running.GetValueOrDefault(w.Source) + delta;
                if (n <= 0)
                    _running.Remove(w.Source);
                else
                    _running[w.Source] = n;
            }
        }
    }

    /// <summary>
    /// The push timeout: waits up to <c>ai.batch_timeout_ms</c> for the next frames of the live sources that are
    /// neither in this batch nor running on another loop and whose next frame is due before the deadline (from
    /// their mean interval), so frames of several cameras share one inference call. A single camera, or cameras
    /// whose frames are not due, never wait.
    /// </summary>
    private void WaitForDueSources(List<FrameWork> batch, ChannelReader<FrameWork> reader)
    {
        var start = Stopwatch.GetTimestamp();
        var deadline = start + _batchTimeout;
        var waited = false;
        while (batch.Count < _batchMax && !_stopping.IsCancellationRequested)
        {
            if (reader.TryRead(out var more))
            {
                batch.Add(more);
                continue;
            }
            var now = Stopwatch.GetTimestamp();
            if (now >= deadline || !AnySourceDue(batch, deadline, now))
                break;
            waited = true;
            try
            {
                var wait = reader.WaitToReadAsync(_stopping);
                if (
                    !wait.IsCompleted
                    && !wait.AsTask()
                        .Wait(
                            TimeSpan.FromTicks(
                                Math.Max(1, (deadline - now) * TimeSpan.TicksPerSecond / Stopwatch.Frequency)
                            )
                        )
                )
                    break;
            }
            catch (AggregateException e) when (e.InnerException is OperationCanceledException)
            {
                break;
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
        if (!waited)
            return;
        var ms = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        DeviceMetrics.BatchWaitMs.Record(ms, new KeyValuePair<string, object?>("device", Device));
        lock (_gate)
        {
            _waits++;
            _waitMsTotal += ms;
        }
    }

    private bool AnySourceDue(List<FrameWork> batch, long deadline, long now)
    {
        lock (_gate)
        {
            foreach (var (source, (last, interval)) in _arrivals)
            {
                // Not yet a rate (one frame seen), or gone quiet for over two intervals: not expected.
                if (interval <= 0 || now - last > 2 * interval + Stopwatch.Frequency / 10)
                    continue;
                if (last + interval > deadline || _running.ContainsKey(source))
                    continue;
                if (batch.Exists(w => w.Source == source))
                    continue;
                return true;
            }
        }
        return false;
    }

    private void RunBatch(List<FrameWork> batch)
    {
        var t0 = Stopwatch.GetTimestamp();
        Interlocked.Increment(ref _batches);
        Interlocked.Add(ref _batchFrames, batch.Count);
        var steps = _host.Steps;
        long t1 = t0,
            t2 = t0,
            t3 = t0;
        try
        {
            // Decode the frames that have something to do (the others pass unchanged), in parallel over the cores:
            // the steps then run each model once over the whole batch, and the encode is parallel again. One loop
            // per device thus keeps its batches whole and still uses every core for the JPEG work.
            var work = new List<FrameWork>(batch.Count);
            foreach (var w in batch)
            {
                if (!AnyStep(steps, w.Settings))
                    w.Output = w.Request.Frame.Payload;
                else
                    work.Add(w);
            }
            WorkerParallel.For(work.Count, i => JpegCodec.Decode(work[i]));
            var decoded = work.Count(w => !w.Failed);
            t1 = Stopwatch.GetTimestamp();
            if (decoded > 0)
            {
                var subset = new FrameWork[batch.Count];
                foreach (var step in steps)
                {
                    var n = 0;
                    foreach (var w in batch)
                    {
                        if (w.Image is not null && !w.Failed && step.AppliesTo(w.Settings))
                            subset[n++] = w;
                    }
                    if (n == 0)
                        continue;
                    try
                    {
                        step.Run(subset.AsSpan(0, n));
                    }
                    catch (Exception e)
                    {
                        for (var i = 0; i < n; i++)
                            subset[i].Fail(step.Name, e.Message);
                    }
                }
                t2 = Stopwatch.GetTimestamp();
                WorkerParallel.For(work.Count, i =>
                {
                    if (work[i] is { Image: not null, Failed: false } w)
                        JpegCodec.Encode(w);
                });
            }
            else
            {
                t2 = t1;
            }
            t3 = Stopwatch.GetTimestamp();
        }
        catch (Exception e)
        {
            // e.g. the native library cannot load: every frame of the batch fails (forwarded raw, counted),
            // the loop keeps running.
            _host.LogBatchFailed(e, Device);
            foreach (var w in batch)
                w.Fail("worker", $"{e.GetType().Name}: {e.Message}");
            t3 = Stopwatch.GetTimestamp();
        }
        finally
        {
            foreach (var w in batch)
            {
                w.Image?.Dispose();
                w.Image = null;
            }
        }

        foreach (var w in batch)
        {
            if (w.Failed || w.Output is null)
            {
                Interlocked.Increment(ref _errors);
                _recentErrors.Add();
                _lastError = $"{w.Source}: {w.Error ?? "no output"}";
                w.Completion.TrySetResult(new ProcessResult(ProcessOutcome.Failed, null, w.Error ?? "no output"));
            }
            else
            {
                Interlocked.Increment(ref _processed);
                _out.Add();
                w.Completion.TrySetResult(new ProcessResult(ProcessOutcome.Processed, w.Output, null, w.Faces));
            }
        }

        var n2 = batch.Count;
        lock (_gate)
        {
            // Exponential averages per frame (ms), weight 0.1 per batch.
            _decodeMs = Ema(_decodeMs, Ms(t0, t1) / n2);
            _stepsMs = Ema(_stepsMs, Ms(t1, t2) / n2);
            _encodeMs = Ema(_encodeMs, Ms(t2, t3) / n2);
        }
        _busyTicks.Add(Stopwatch.GetTimestamp() - t0);
    }

    private static bool AnyStep(IReadOnlyList<IFrameStep> steps, EffectiveSettings s)
    {
        foreach (var step in steps)
            if (step.AppliesTo(s))
                return true;
        return false;
    }

    private static double Ms(long from, long to) => (to - from) * 1000.0 / Stopwatch.Frequency;

    private static double Ema(double old, double value) => old == 0 ? value : old * 0.9 + value * 0.1;

    internal void FailQueued(string why)
    {
        while (_queue.Reader.TryRead(out var w))
            w.Completion.TrySetResult(new ProcessResult(ProcessOutcome.Failed, null, why));
    }

    public DeviceStatus Status(string silo)
    {
        int running,
            desired;
        double decode,
            steps,
            encode;
        long starts,
            stops;
        lock (_gate)
        {
            running = _loops;
            desired = _desired;
            decode = _decodeMs;
            steps = _stepsMs;
            encode = _encodeMs;
            starts = _starts;
            stops = _stops;
        }
        var batches = Interlocked.Read(ref _batches);
        var busyMsPerSecond = _busyTicks.PerSecond * 1000.0 / Stopwatch.Frequency;
        var load = running == 0 ? 0 : Math.Min(1.0, busyMsPerSecond / 1000.0 / Math.Max(1, desired));
        var health =
            running == 0 ? "idle"
            : _recentSaturated.PerSecond > 0 ? "saturated"
            : _recentErrors.PerSecond > 0 && _out.PerSecond == 0 ? "failing"
            : "ok";
        return new DeviceStatus(
            Device,
            silo,
            Provider.Name,
            Provider.Reason,
            running > 0,
            running,
            QueueDepth,
            _capacity,
            Interlocked.Read(ref _submitted),
            Interlocked.Read(ref _processed),
            Interlocked.Read(ref _saturated),
            Interlocked.Read(ref _errors),
            batches,
            batches == 0 ? 0 : Math.Round((double)Interlocked.Read(ref _batchFrames) / batches, 2),
            Math.Round(_in.PerSecond, 2),
            Math.Round(_out.PerSecond, 2),
            Math.Round(decode, 3),
            Math.Round(steps, 3),
            Math.Round(encode, 3),
            Math.Round(load, 3),
            health,
            starts,
            stops,
            _lastError,
            $"{_host.Tag}-{Device}"
        );
    }
}

/// <summary>The device workers' instruments on the project's meter.</summary>
internal static class DeviceMetrics
{
    /// <summary>Time a batch waited for the frames of its device's other live sources (the push timeout).</summary>
    public static readonly System.Diagnostics.Metrics.Histogram<double> BatchWaitMs =
        BlankendMetrics.Meter.CreateHistogram<double>(
            "blankend.ai.batch.wait",
            "ms",
            "Time a device worker waited for the frames of its other live sources before running a batch (ai.batch_timeout_ms)",
            advice: new System.Diagnostics.Metrics.InstrumentAdvice<double>
            {
                HistogramBucketBoundaries = [0.25, 0.5, 1, 2, 3, 5, 10, 20, 50, 100],
            }
        );
}
