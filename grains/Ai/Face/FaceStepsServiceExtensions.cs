using Blankend.Orleans.Grains.Devices;
using Microsoft.Extensions.DependencyInjection;

namespace Blankend.Orleans.Grains.Ai.Face;

internal static class FaceStepsServiceExtensions
{
    /// <summary>Registers the face steps as <see cref="IFrameStep"/> singletons, in their run order: detect, mesh,
    /// swap, enhance. They need <see cref="AiEngine"/> (and so <c>OnnxRuntimeHost</c>) registered by the caller; their
    /// shared models and the status are <c>FaceModels.For(engine)</c>.</summary>
    public static IServiceCollection AddBlankendFaceSteps(this IServiceCollection s)
    {
        s.AddSingleton<IFrameStep, FaceDetectStep>();
        s.AddSingleton<IFrameStep, FaceMeshStep>();
        s.AddSingleton<IFrameStep, FaceSwapStep>();
        s.AddSingleton<IFrameStep, FaceEnhanceStep>();
        return s;
    }
}
