using System.Collections.Concurrent;
using Blankend.Orleans.Configuration;
using Blankend.Orleans.Grains.Devices;
using Blankend.Orleans.Processing;
using Blankend.Orleans.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Xunit;

namespace Blankend.Orleans.Tests.Processing;

/// <summary>
/// The device worker's push timeout (<c>ai.batch_timeout_ms</c>): a batch waits for the frames of the other live
/// sources whose next frame is due within the timeout, so they share one step call; with no timeout, or a
/// single camera, nothing waits. The schedule leaves wide margins (frames 30 ms apart, a 1 s timeout).
/// </summary>
[Trait(TestKind.Name, TestKind.Unit)]
public sealed class DeviceBatchingTests
{
    private sealed class BatchRecorder : IFrameStep
    {
        public ConcurrentQueue<string[]> Batches { get; } = new();

        public string Name => "record";

        public bool AppliesTo(EffectiveSettings settings) => true;

        public void Run(ReadOnlySpan<FrameWork> batch)
        {
            var sources = new string[batch.Length];
            for (var i = 0; i < batch.Length; i++)
                sources[i] = batch[i].Source;
            Batches.Enqueue(sources);
        }
    }

    private static (DeviceWorkerHost Host, BatchRecorder Step) NewHost(int timeoutMs)
    {
        var step = new BatchRecorder();
        var host = new DeviceWorkerHost(
            Options.Create(new VideoProcessingOptions { Workers = 1 }),
            Options.Create(new AiOptions { BatchTimeoutMs = timeoutMs }),
            NullLogger<DeviceWorkerHost>.Instance,
            [step]
        );
        return (host, step);
    }

    private static long _seq;

    private static Task<ProcessResult> Submit(DeviceLoop loop, string source)
    {
        var envelope = new FrameEnvelope(
            source,
            Interlocked.Increment(ref _seq),
            1,
            FrameKind.Raw,
            0,
            FrameOrigin.VideoIn,
            TestJpeg.Base
        );
        var settings = new EffectiveSettings(true, false, 80, 0, 1, false, 1);
        return loop.Submit(new ProcessRequest(envelope, settings));
    }

    /// <summary>Three independent cameras on one clock, a frame every 150 ms each, b's 30 ms after a's and c's
    /// 30 ms after b's; each waits for its own result only (as a source does: one frame in flight).</summary>
    private static async Task BurstsAsync(DeviceLoop loop)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        async Task Camera(string name, int phaseMs)
        {
            for (var k = 0; k < 6; k++)
            {
                var wait = phaseMs + k * 150 - (int)clock.ElapsedMilliseconds;
                if (wait > 0)
                    await Task.Delay(wait);
                Assert.Equal(ProcessOutcome.Processed, (await Submit(loop, name)).Outcome);
            }
        }
        await Task.WhenAll(Camera("a", 0), Camera("b", 30), Camera("c", 60));
    }

    [Fact]
    public async Task FramesOfCamerasDueWithinTheTimeoutShareOneBatch()
    {
        var (host, step) = NewHost(1000);
        using (host)
        {
            var loop = host.Get("cpu0");
            await BurstsAsync(loop);
            // Once the rates are known (third frame on), the first frame of a round waits for the other two (with
            // a timeout this long, possibly for the next round's frame of the camera that started it).
            Assert.True(
                step.Batches.Any(b => b.Order(StringComparer.Ordinal).SequenceEqual(["a", "b", "c"])),
                "batches: " + string.Join(" ", step.Batches.Select(b => "[" + string.Join(",", b) + "]"))
            );
            Assert.True(loop.BatchWaits.Waits >= 1);
        }
    }

    [Fact]
    public async Task WithoutATimeoutTheSameBurstRunsFrameByFrame()
    {
        var (host, step) = NewHost(0);
        using (host)
        {
            var loop = host.Get("cpu0");
            await BurstsAsync(loop);
            // Frames that arrive while another runs may still share a batch; nothing ever waits for them.
            Assert.Equal(0, loop.BatchWaits.Waits);
            Assert.Equal(18, step.Batches.Sum(b => b.Length));
        }
    }

    [Fact]
    public async Task ASingleCameraNeverWaits()
    {
        var (host, step) = NewHost(1000);
        using (host)
        {
            var loop = host.Get("cpu0");
            for (var i = 0; i < 12; i++)
            {
                Assert.Equal(ProcessOutcome.Processed, (await Submit(loop, "solo")).Outcome);
                await Task.Delay(30);
            }
            Assert.Equal(0, loop.BatchWaits.Waits);
            Assert.Equal(12, step.Batches.Count);
        }
    }
}
