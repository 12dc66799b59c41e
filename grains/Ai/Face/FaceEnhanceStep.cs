using System.Diagnostics;
using Blankend.Orleans.Ai;
using Blankend.Orleans.Grains.Ai.Face.Insight;
using Blankend.Orleans.Grains.Devices;
using OpenCvSharp;

namespace Blankend.Orleans.Grains.Ai.Face;

/// <summary>
/// Face enhancer (GFPGAN 1.4, <c>enhancer_model</c>): every face with five points (SCRFD's or the mesh's) is
/// restored at 512x512 and pasted back, after swap when both are on. Off unless the step is asked for; without
/// the model it is skipped per frame ("model unavailable"). Slow on a CPU: its ms per frame is in the status.
/// </summary>
internal sealed class FaceEnhanceStep(AiEngine engine) : FaceStep(engine, StepName, AiSteps.Enhance)
{
    public const string StepName = "enhance";

    protected override void RunOne(FrameWork w, Mat image)
    {
        if (Models.Enhancer(w.Device) is not { } enhancer)
        {
            FaceStepErrors.Unavailable(Engine, w, Name);
            return;
        }
        if (image.Type() != MatType.CV_8UC3)
        {
            Engine.Skip(Name, "unsupported image format");
            return;
        }
        if (w.Faces is not { Length: > 0 } faces)
        {
            Engine.Skip(Name, "no face");
            return;
        }
        var t0 = Stopwatch.GetTimestamp();
        var done = 0;
        Span<float> kps = stackalloc float[10];
        foreach (var f in faces)
        {
            if (FaceAlign.FivePoints(f, kps) && enhancer.Enhance(image, kps).Width > 0)
                done++;
        }
        if (done == 0)
        {
            Engine.Skip(Name, "no face mesh");
            return;
        }
        Engine.Record(Name, t0);
    }
}
