using System.Diagnostics;
using Blankend.Orleans;
using Blankend.Orleans.Configuration;
using Blankend.Orleans.Grains.Devices;
using Blankend.Orleans.Processing;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Blankend.Bench.AiBench;

/// <summary>End to end on the device worker: C cameras, each one frame in flight at most.</summary>
internal sealed record CameraRow(
    string Device,
    int Cameras,
    int Workers,
    int BatchMax,
    double Seconds,
    double CameraFpsMean,
    double CameraFpsMin,
    double TotalFps,
    double DropsPerSecond,
    double P50Ms,
    double P99Ms,
    double MeanBatch,
    long Saturated,
    long Failed,
    double CpuPercent,
    string? LastError
);

/// <summary>
/// C concurrent synthetic 720p30 cameras on one device worker (<see cref="DeviceWorkerHost"/>, as the silo has
/// it): each camera is a task that submits its JPEG every 1/30 s (cameras start at staggered phases), and waits
/// for the result; latest frame wins: a camera whose previous frame is still in flight skips the tick and counts
/// a drop. Measured after a warm-up: per-camera processed fps, submit-to-result latency, frames per worker
/// batch (from the loop's own counters over the window) and the process CPU time.
/// </summary>
internal static class CameraBench
{
    public const double CameraFps = 30;

    public static async Task<CameraRow> RunAsync(
        string device,
        int cameras,
        int workers,
        int batchMax,
        int queue,
        EffectiveSettings settings,
        byte[] jpeg,
        IEnumerable<IFrameStep> steps,
        AiOptions ai,
        ILogger<DeviceWorkerHost> log,
        double seconds,
        Action<string, long, long> window
    )
    {
        var options = new VideoProcessingOptions
        {
            QueueSize = queue,
            BatchMax = batchMax,
            IdleStopMs = 60_000,
            Workers = workers,
        };
        using var host = new DeviceWorkerHost(Options.Create(options), Options.Create(ai), log, steps);
        var loop = host.Get(device);

        // One frame through the worker first (loads the sessions, starts the threads).
        var first = await loop.Submit(
            new ProcessRequest(
                new FrameEnvelope("e2e-warm", 0, 0, FrameKind.Raw, 0, FrameOrigin.VideoIn, jpeg),
                settings
            )
        );
        if (first.Outcome != ProcessOutcome.Processed)
            throw new InvalidOperationException(
                $"the device worker did not process a frame: {first.Outcome} {first.Error}"
            );

        var period = Stopwatch.Frequency / CameraFps;
        var warm = (long)(Math.Clamp(seconds * 0.25, 1, 3) * Stopwatch.Frequency);
        var t0 = Stopwatch.GetTimestamp() + Stopwatch.Frequency / 10;
        var measureFrom = t0 + warm;
        var measureTo = measureFrom + (long)(seconds * Stopwatch.Frequency);

        var processed = new long[cameras];
        var drops = new long[cameras];
        var latencies = new List<double>[cameras];
        long saturated = 0,
            failed = 0;
        string? lastError = null;
        DeviceStatus? before = null;
        TimeSpan cpuBefore = TimeSpan.Zero;
        long startMs = 0;

        // The window's start: the loop counters and CPU time as the measured window opens.
        var opener = Task.Run(async () =>
        {
            await SleepUntil(measureFrom);
            before = loop.Status("bench");
            cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
            startMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        });

        async Task Camera(int c)
        {
            latencies[c] = new List<double>(1024);
            var source = $"e2e-cam-{c}";
            var tick = t0 + (long)(period * c / cameras); // staggered phases, as independent cameras are
            Task? inflight = null;
            long seq = 0;
            while (tick < measureTo)
            {
                await SleepUntil(tick);
                var counted = tick >= measureFrom;
                if (inflight is { IsCompleted: false })
                {
                    if (counted)
                        drops[c]++;
                }
                else
                {
                    var submitted = Stopwatch.GetTimestamp();
                    var envelope = new FrameEnvelope(
                        source,
                        ++seq,
                        1,
                        FrameKind.Raw,
                        DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
                        FrameOrigin.VideoIn,
                        jpeg
                    );
                    inflight = loop.Submit(new ProcessRequest(envelope, settings))
                        .ContinueWith(
                            t =>
                            {
                                var done = Stopwatch.GetTimestamp();
                                if (submitted < measureFrom || done > measureTo)
                                    return;
                                var r = t.Result;
                                switch (r.Outcome)
                                {
                                    case ProcessOutcome.Processed:
                                        processed[c]++;
                                        latencies[c].Add((done - submitted) * 1000.0 / Stopwatch.Frequency);
                                        break;
                                    case ProcessOutcome.Saturated:
                                        Interlocked.Increment(ref saturated);
                                        break;
                                    default:
                                        Interlocked.Increment(ref failed);
                                        lastError = r.Error;
                                        break;
                                }
                            },
                            CancellationToken.None,
                            TaskContinuationOptions.ExecuteSynchronously,
                            TaskScheduler.Default
                        );
                }
                tick += (long)period;
            }
            if (inflight is not null)
                await inflight;
        }

        await Task.WhenAll(Enumerable.Range(0, cameras).Select(c => Task.Run(() => Camera(c))).Append(opener));
        var endMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var cpuAfter = Process.GetCurrentProcess().TotalProcessorTime;
        var after = loop.Status("bench");
        window($"e2e {device} {cameras} cameras", startMs, endMs);

        var wall = (measureTo - measureFrom) / (double)Stopwatch.Frequency;
        var perCamera = processed.Select(p => p / wall).ToArray();
        var all = latencies.SelectMany(l => l).ToList();
        var batches = after.Batches - before!.Batches;
        var frames = after.Processed + after.Errors - before.Processed - before.Errors;
        // CPU time until the last result came back (a little past the window; cameras are idle after it).
        var cpuWall = Math.Max(wall, (Stopwatch.GetTimestamp() - measureFrom) / (double)Stopwatch.Frequency);
        return new CameraRow(
            device,
            cameras,
            workers,
            batchMax,
            Math.Round(wall, 2),
            perCamera.Average(),
            perCamera.Min(),
            perCamera.Sum(),
            drops.Sum() / wall,
            Stats.Median(all),
            Stats.Percentile(all, 0.99),
            batches == 0 ? 0 : (double)frames / batches,
            saturated,
            failed,
            (cpuAfter - cpuBefore).TotalSeconds / cpuWall * 100,
            lastError ?? after.LastError
        );
    }

    private static async Task SleepUntil(long timestamp)
    {
        var left = timestamp - Stopwatch.GetTimestamp();
        if (left <= 0)
            return;
        // The timer's resolution (about 1 ms) is good enough at 30 fps, and no thread spins: the ticks are absolute,
        // so a late wake-up does not shift the next one.
        await Task.Delay(TimeSpan.FromMilliseconds(Math.Max(1, left * 1000.0 / Stopwatch.Frequency)));
    }
}
