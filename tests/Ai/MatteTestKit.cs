using Blankend.Orleans.Ai;
using Blankend.Orleans.Configuration;
using Blankend.Orleans.Grains.Ai;
using Blankend.Orleans.Grains.Ai.Runtime;
using Blankend.Orleans.Grains.Devices;
using Blankend.Orleans.Processing;
using Blankend.Orleans.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using OpenCvSharp;
using Xunit;

namespace Blankend.Orleans.Tests.Ai;

/// <summary>Builds an AiEngine over the shipped models (and the tiny test models), frames and settings.</summary>
internal static class MatteTestKit
{
    public static string ModelsDir => Path.Combine(AppContext.BaseDirectory, "models");

    public static string RvmTestModel => TestEnv.TestData(Path.Combine("models", "rvm_test.onnx"));

    public static string DepthTestModel => TestEnv.TestData(Path.Combine("models", "depth_test.onnx"));

    public static AiEngine Engine(
        string rvm = "",
        string depth = "",
        double smoothing = 1.0,
        string? modelsDir = null,
        double rvmRatio = 0.25
    )
    {
        var options = Options.Create(
            new AiOptions
            {
                ModelsDir = modelsDir ?? ModelsDir,
                RvmModel = rvm,
                DepthModel = depth,
                MatteSmoothing = smoothing,
                RvmDownsampleRatio = rvmRatio,
            }
        );
        return new AiEngine(new OnnxRuntimeHost(options, NullLogger<OnnxRuntimeHost>.Instance), options);
    }

    public static EffectiveSettings Settings(
        AiSteps steps,
        MatteBackground? background = null,
        string depthMode = "colormap"
    ) => new(true, false, 80, 0, 1, false, 1, steps, background, DepthMode: depthMode);

    /// <summary>A frame of <paramref name="source"/> whose Image is a clone of <paramref name="image"/> (the caller
    /// keeps its own).</summary>
    public static FrameWork Frame(Mat image, string source, EffectiveSettings settings, long seq = 1) =>
        new(new ProcessRequest(new FrameEnvelope(source, seq, 1, FrameKind.Raw, 0, FrameOrigin.VideoIn, []), settings))
        {
            Image = image.Clone(),
        };

    public static Mat Astronaut()
    {
        var m = Cv2.ImRead(TestEnv.TestData("astronaut.png"), ImreadModes.Color);
        Assert.False(m.Empty(), "astronaut.png did not load");
        return m;
    }

    /// <summary>The astronaut (512x512) pasted in the middle of a 1280x720 grey canvas, scaled to 720 high.</summary>
    public static Mat AstronautLandscape()
    {
        using var a = Astronaut();
        var canvas = new Mat(720, 1280, MatType.CV_8UC3, new Scalar(128, 128, 128));
        using var scaled = new Mat();
        Cv2.Resize(a, scaled, new Size(720, 720));
        using (var roi = new Mat(canvas, new Rect(280, 0, 720, 720)))
            scaled.CopyTo(roi);
        return canvas;
    }

    public static double Mean(Mat m, Rect r)
    {
        using var roi = new Mat(m, r);
        return Cv2.Mean(roi).Val0;
    }

    public static Vec3b Pixel(Mat m, int x, int y) => m.At<Vec3b>(y, x);

    /// <summary>Writes debug images to /tmp when BLANKEND_MATTE_DUMP=1.</summary>
    public static void Dump(string name, Mat m)
    {
        if (Environment.GetEnvironmentVariable("BLANKEND_MATTE_DUMP") != "1")
            return;
        if (m.Type() == MatType.CV_32FC1)
        {
            using var u8 = new Mat();
            m.ConvertTo(u8, MatType.CV_8U, 255);
            Cv2.ImWrite($"/tmp/matte-{name}.png", u8);
        }
        else
        {
            Cv2.ImWrite($"/tmp/matte-{name}.png", m);
        }
    }

    /// <summary>A BGR image filled with one color.</summary>
    public static Mat Solid(int w, int h, Scalar bgr) => new(h, w, MatType.CV_8UC3, bgr);
}
