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

namespace Blankend.Orleans.Tests.Ai;

/// <summary>An AI engine over the shipped models (or another models folder), built without a host.</summary>
internal sealed class FaceEnv : IDisposable
{
    public FaceEnv(string? modelsDir = null, Action<AiOptions>? configure = null)
    {
        var o = new AiOptions { ModelsDir = modelsDir ?? Path.Combine(AppContext.BaseDirectory, "models") };
        configure?.Invoke(o);
        var options = Options.Create(o);
        Runtime = new OnnxRuntimeHost(options, NullLogger<OnnxRuntimeHost>.Instance);
        Engine = new AiEngine(Runtime, options);
    }

    public OnnxRuntimeHost Runtime { get; }

    public AiEngine Engine { get; }

    public static string ShippedModel(string file) => Path.Combine(AppContext.BaseDirectory, "models", file);

    public static Mat Astronaut() => Cv2.ImRead(TestEnv.TestData("astronaut.png"), ImreadModes.Color);

    /// <summary>A frame on a device worker as the worker hands it to the steps (decoded image set).</summary>
    public static FrameWork Frame(Mat image, AiSteps steps, string source = "cam1", int interval = 5, long seq = 1)
    {
        var envelope = new FrameEnvelope(
            source,
            seq,
            1,
            FrameKind.Raw,
            0,
            FrameOrigin.VideoIn,
            [0xFF, 0xD8, 0xFF, 0xD9]
        );
        var settings = new EffectiveSettings(
            true,
            false,
            80,
            0,
            1,
            false,
            1,
            AiSteps: steps,
            FaceDetectInterval: interval
        );
        return new FrameWork(new ProcessRequest(envelope, settings)) { Image = image.Clone() };
    }

    /// <summary>The astronaut (or its square crop at <paramref name="crop"/>) scaled to <paramref name="side"/>
    /// pixels and pasted into a grey 1280x720 canvas at (x, y).</summary>
    public static Mat Canvas720(int x, int y, int side = 512, Rect? crop = null)
    {
        using var a = Astronaut();
        var canvas = new Mat(720, 1280, MatType.CV_8UC3, new Scalar(40, 40, 40));
        using var src = a.SubMat(crop ?? new Rect(0, 0, a.Cols, a.Rows));
        using var scaled = new Mat();
        Cv2.Resize(src, scaled, new Size(side, side), 0, 0, InterpolationFlags.Linear);
        using var roi = canvas.SubMat(y, y + side, x, x + side);
        scaled.CopyTo(roi);
        return canvas;
    }

    /// <summary>A 1280x720 frame whose face is as large relative to the frame as on the 512x512 image (~220 px
    /// wide): the astronaut's 300x300 crop at (100,0) scaled 2.4x, pasted at (280,0).</summary>
    public static Mat Webcam720() => Canvas720(280, 0, 720, new Rect(100, 0, 300, 300));

    public static byte[] Png(Mat m)
    {
        Cv2.ImEncode(".png", m, out var bytes);
        return bytes;
    }

    /// <summary>Mean absolute difference over a region (all channels).</summary>
    public static double MeanAbsDiff(Mat a, Mat b, Rect r)
    {
        using var ra = a.SubMat(r);
        using var rb = b.SubMat(r);
        using var d = new Mat();
        Cv2.Absdiff(ra, rb, d);
        var s = Cv2.Mean(d);
        return (s.Val0 + s.Val1 + s.Val2) / 3;
    }

    public static bool Same(Mat a, Mat b)
    {
        if (a.Size() != b.Size() || a.Type() != b.Type())
            return false;
        using var d = new Mat();
        Cv2.Absdiff(a, b, d);
        using var flat = d.Reshape(1);
        return Cv2.CountNonZero(flat) == 0;
    }

    public void Dispose()
    {
        Blankend.Orleans.Grains.Ai.Face.FaceModels.For(Engine).Dispose();
        Runtime.Dispose();
    }
}
