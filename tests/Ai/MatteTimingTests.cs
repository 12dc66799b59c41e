using System.Diagnostics;
using Blankend.Orleans.Ai;
using Blankend.Orleans.Grains.Ai;
using Blankend.Orleans.Grains.Ai.Depth;
using Blankend.Orleans.Grains.Ai.Matting;
using Blankend.Orleans.Grains.Devices;
using OpenCvSharp;
using Xunit;
using Xunit.Abstractions;
using static Blankend.Orleans.Tests.Ai.MatteTestKit;

namespace Blankend.Orleans.Tests.Ai;

/// <summary>Per-frame times of the matte step and its parts at 640x360 and 1280x720 (median of N runs after a
/// warm-up), printed to the test output (<c>--logger "console;verbosity=detailed"</c>). Only a loose bound is
/// asserted: the machine is shared.</summary>
public sealed class MatteTimingTests(ITestOutputHelper output)
{
    private const int N = 40;

    [Fact]
    public void Matte_step_times_at_360p_and_720p()
    {
        var engine = Engine(smoothing: 0.6);
        using var step = new MatteStep(engine);
        using var seg = new SelfieSegmenter(engine.Runtime);
        engine.SetAsset(new AiAsset(AiAssetKind.Background, 1, Jpeg(Solid(1920, 1080, new Scalar(200, 100, 50)))));
        using var landscape = AstronautLandscape();
        output.WriteLine($"CPU, 1 intra-op thread, {Environment.ProcessorCount} cores; median of {N} after warm-up, ms per frame");
        foreach (var (w, h) in new[] { (640, 360), (1280, 720) })
        {
            using var img = new Mat();
            Cv2.Resize(landscape, img, new Size(w, h));
            var model = seg.Pick(w, h, "cpu0")!;
            using var mask = new Mat();
            var run = Median(() => seg.Segment(model, img, mask));
            var segment = Median(() => { var t = Stopwatch.GetTimestamp(); seg.Segment(model, img, mask); return Stopwatch.GetElapsedTime(t).TotalMilliseconds; });
            var comp = new Compositor(engine);
            using var scratch = new MatteScratch();
            using var mask8 = new Mat(img.Size(), MatType.CV_8UC1, Scalar.All(128));
            using var target = img.Clone();
            var compColor = Median(() => Time(() => comp.Composite(target, mask8, MatteBackground.Green, scratch)));
            var compBlur = Median(() => Time(() => comp.Composite(target, mask8, new MatteBackground("blur", "", 21, 0), scratch)));
            var compImage = Median(() => Time(() => comp.Composite(target, mask8, new MatteBackground("image", "", 0, 1), scratch)));
            double StepMs(MatteBackground bg) => Median(() =>
            {
                var f = Frame(img, "timing", Settings(AiSteps.Matte, bg));
                var t = Stopwatch.GetTimestamp();
                step.Run([f]);
                var ms = Stopwatch.GetElapsedTime(t).TotalMilliseconds;
                Assert.Null(f.Error);
                f.Image!.Dispose();
                return ms;
            });
            var stepColor = StepMs(MatteBackground.Green);
            var stepBlur = StepMs(new MatteBackground("blur", "", 21, 0));
            var stepImage = StepMs(new MatteBackground("image", "", 0, 1));
            output.WriteLine($"{w}x{h} ({SelfieSegmenter.ModelName(model.Kind)}): session.Run {run:F2}; segment (resize+RGB+float+run) {segment:F2}; " +
                             $"composite color {compColor:F2} / blur21 {compBlur:F2} / image {compImage:F2}; " +
                             $"whole matte step color {stepColor:F2} / blur21 {stepBlur:F2} / image {stepImage:F2}");
            Assert.True(stepColor < 500, $"matte step {stepColor} ms");
        }

        // RVM and depth paths with the tiny test models: only the service's own pre/post-processing cost.
        var rvmEngine = Engine(rvm: RvmTestModel, depth: DepthTestModel);
        using var rvmStep = new MatteStep(rvmEngine);
        using var depthStep = new DepthStep(rvmEngine);
        foreach (var (w, h) in new[] { (640, 360), (1280, 720) })
        {
            using var img = new Mat();
            Cv2.Resize(landscape, img, new Size(w, h));
            double StepMs(IFrameStep s, string mode) => Median(() =>
            {
                var f = Frame(img, "timing", Settings(AiSteps.Matte | AiSteps.Depth, depthMode: mode));
                var t = Stopwatch.GetTimestamp();
                s.Run([f]);
                var ms = Stopwatch.GetElapsedTime(t).TotalMilliseconds;
                f.Image!.Dispose();
                return ms;
            });
            output.WriteLine($"{w}x{h} test models (overhead around a trivial model): rvm matte step {StepMs(rvmStep, "colormap"):F2}; " +
                             $"depth colormap {StepMs(depthStep, "colormap"):F2}; depth cut {StepMs(depthStep, "cut"):F2}");
        }
    }

    private static byte[] Jpeg(Mat m)
    {
        using (m)
        {
            Cv2.ImEncode(".jpg", m, out var bytes);
            return bytes;
        }
    }

    private static double Time(Action a)
    {
        var t = Stopwatch.GetTimestamp();
        a();
        return Stopwatch.GetElapsedTime(t).TotalMilliseconds;
    }

    private static double Median(Func<double> f)
    {
        for (var i = 0; i < 5; i++) f();
        var xs = new double[N];
        for (var i = 0; i < N; i++) xs[i] = f();
        Array.Sort(xs);
        return xs[N / 2];
    }
}
