using System.Diagnostics;
using System.Threading.Channels;
using Blankend.Orleans.Configuration;
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
    private int _running;
    private int _desired = 1;
    private int _nextThread;

    private long _submitted, _processed, _saturated, _errors, _batches, _batchFrames, _starts, _stops;
    private readonly WindowCounter _in = new();
    private readonly WindowCounter _out = new();
    private readonly WindowCounter _busyTicks = new();
    private readonly WindowCounter _recentSaturated = new();
    private readonly WindowCounter _recentErrors = new();
    private double _decodeMs, _stepsMs, _encodeMs;
    private string? _lastError;

    internal DeviceLoop(DeviceWorkerHost host, string device, VideoProcessingOptions options, CancellationToken stopping)
    {
        _host = host;
        Device = device;
        _capacity = options.QueueSize;
        _batchMax = options.BatchMax;
        _idle = TimeSpan.FromMilliseconds(options.IdleStopMs);
        _stopping = stopping;
        _queue = Channel.CreateBounded<FrameWork>(new BoundedChannelOptions(_capacity)
        {
            FullMode = BoundedChannelFullMode.Wait, // TryWrite answers false when full: the caller bypasses
            SingleReader = false,
            SingleWriter = false,
        });
        Provider = host.ProviderFor(device);
    }

    public string Device { get; }

    public (string Name, string Reason) Provider { get; }

    public int QueueDepth => _queue.Reader.Count;

    public int Running
    {
        get { lock (_gate) return _running; }
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
            while (_running < _desired)
            {
                _running++;
                _starts++;
                var name = $"{_host.Tag}-{Device}-{_nextThread++}";
                if (name.Length > 15) name = name[..15];
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
                    while (batch.Count < _batchMax && reader.TryRead(out var more)) batch.Add(more);
                    RunBatch(batch);
                    batch.Clear();
                    lock (_gate)
                    {
                        if (_running > _desired) { _running--; _stops++; reason = "workers lowered"; return; }
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
                if (ready && !_stopping.IsCancellationRequested) continue;
                lock (_gate)
                {
                    if (reader.Count > 0 && !_stopping.IsCancellationRequested) continue;
                    _running--;
                    _stops++;
                    if (_stopping.IsCancellationRequested) reason = "stopping";
                    return;
                }
            }
        }
        finally
        {
            _host.LogLoopStopped(Device, name, reason);
        }
    }

    private void RunBatch(List<FrameWork> batch)
    {
        var t0 = Stopwatch.GetTimestamp();
        Interlocked.Increment(ref _batches);
        Interlocked.Add(ref _batchFrames, batch.Count);
        var steps = _host.Steps;
        long t1 = t0, t2 = t0, t3 = t0;
        try
        {
            // Decode the frames that have something to do; the others pass unchanged.
            var decoded = 0;
            foreach (var w in batch)
            {
                if (!AnyStep(steps, w.Settings)) { w.Output = w.Request.Frame.Payload; continue; }
                JpegCodec.Decode(w);
                if (!w.Failed) decoded++;
            }
            t1 = Stopwatch.GetTimestamp();
            if (decoded > 0)
            {
                var subset = new FrameWork[batch.Count];
                foreach (var step in steps)
                {
                    var n = 0;
                    foreach (var w in batch)
                    {
                        if (w.Image is not null && !w.Failed && step.AppliesTo(w.Settings)) subset[n++] = w;
                    }
                    if (n == 0) continue;
                    try { step.Run(subset.AsSpan(0, n)); }
                    catch (Exception e)
                    {
                        for (var i = 0; i < n; i++) subset[i].Fail(step.Name, e.Message);
                    }
                }
                t2 = Stopwatch.GetTimestamp();
                foreach (var w in batch)
                {
                    if (w.Image is not null && !w.Failed) JpegCodec.Encode(w);
                }
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
            foreach (var w in batch) w.Fail("worker", $"{e.GetType().Name}: {e.Message}");
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
        foreach (var step in steps) if (step.AppliesTo(s)) return true;
        return false;
    }

    private static double Ms(long from, long to) => (to - from) * 1000.0 / Stopwatch.Frequency;

    private static double Ema(double old, double value) => old == 0 ? value : old * 0.9 + value * 0.1;

    internal void FailQueued(string why)
    {
        while (_queue.Reader.TryRead(out var w)) w.Completion.TrySetResult(new ProcessResult(ProcessOutcome.Failed, null, why));
    }

    public DeviceStatus Status(string silo)
    {
        int running, desired;
        double decode, steps, encode;
        long starts, stops;
        lock (_gate)
        {
            running = _running;
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
        var health = running == 0 ? "idle"
            : _recentSaturated.PerSecond > 0 ? "saturated"
            : _recentErrors.PerSecond > 0 && _out.PerSecond == 0 ? "failing"
            : "ok";
        return new DeviceStatus(Device, silo, Provider.Name, Provider.Reason, running > 0, running, QueueDepth, _capacity,
            Interlocked.Read(ref _submitted), Interlocked.Read(ref _processed), Interlocked.Read(ref _saturated),
            Interlocked.Read(ref _errors), batches, batches == 0 ? 0 : Math.Round((double)Interlocked.Read(ref _batchFrames) / batches, 2),
            Math.Round(_in.PerSecond, 2), Math.Round(_out.PerSecond, 2), Math.Round(decode, 3), Math.Round(steps, 3), Math.Round(encode, 3),
            Math.Round(load, 3), health, starts, stops, _lastError, $"{_host.Tag}-{Device}");
    }
}
