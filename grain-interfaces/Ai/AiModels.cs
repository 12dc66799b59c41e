namespace Blankend.Orleans.Ai;

/// <summary>The models this service knows. Shipped ones have a default file under <c>models/</c>.</summary>
[GenerateSerializer, Alias("blankend.AiModelKind")]
public enum AiModelKind
{
    FaceDetect,
    FaceMesh,
    Segmentation,
    SegmentationLandscape,
    Swap,
    Rvm,
    Depth,

    /// <summary>insightface recognition (ArcFace): the reference face's embedding for inswapper.</summary>
    ArcFace,

    /// <summary>Face enhancer (GFPGAN), the optional step after swap.</summary>
    Enhancer,
}

/// <summary>The rules both the silos and the gateways read about models: their names in reports and which a
/// step needs.</summary>
public static class AiModels
{
    /// <summary>The kind's name in status reports (<c>/api/v1/ai/status</c>, <c>/healthz</c>).</summary>
    public static string Name(AiModelKind kind) =>
        kind switch
        {
            AiModelKind.FaceDetect => "face_detect",
            AiModelKind.FaceMesh => "face_mesh",
            AiModelKind.Segmentation => "segmentation",
            AiModelKind.SegmentationLandscape => "segmentation_landscape",
            AiModelKind.Swap => "swap",
            AiModelKind.Rvm => "rvm",
            AiModelKind.ArcFace => "arcface",
            AiModelKind.Enhancer => "enhancer",
            _ => "depth",
        };

    /// <summary>The models a step cannot run without; empty when it needs none it could lack.</summary>
    /// <param name="step">One step.</param>
    /// <param name="rvm">An RVM model is configured: the matte step uses it instead of selfie segmentation.</param>
    public static AiModelKind[] Needs(AiSteps step, bool rvm) =>
        step switch
        {
            AiSteps.Detect => [AiModelKind.FaceDetect],
            AiSteps.Mesh => [AiModelKind.FaceDetect, AiModelKind.FaceMesh],
            AiSteps.Swap => [AiModelKind.FaceDetect, AiModelKind.FaceMesh],
            AiSteps.Matte => rvm ? [AiModelKind.Rvm] : [AiModelKind.Segmentation, AiModelKind.SegmentationLandscape],
            AiSteps.Depth => [AiModelKind.Depth],
            AiSteps.Enhance => [AiModelKind.FaceDetect, AiModelKind.FaceMesh, AiModelKind.Enhancer],
            _ => [],
        };
}

/// <summary>Execution provider names as the reports give them.</summary>
public static class AiProviders
{
    public const string Cpu = "CPU";
    public const string Cuda = "CUDA";
    public const string TensorRt = "TensorRT";

    /// <summary>True for the providers that run on a GPU.</summary>
    public static bool IsGpu(string provider) => provider is Cuda or TensorRt;
}
