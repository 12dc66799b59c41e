namespace Blankend.Orleans.Ai;

/// <summary>An uploaded image the AI steps use.</summary>
[GenerateSerializer, Alias("blankend.AiAssetKind")]
public enum AiAssetKind
{
    /// <summary>The face the swap step puts on every detected face.</summary>
    ReferenceFace = 0,

    /// <summary>The image the matte step composites over (background kind "image").</summary>
    Background = 1,
}

/// <summary>
/// One activation per silo (key: <c>SiloAddress.ToParsableString()</c>, placed on that silo): that silo's models,
/// execution provider and step timings, and the one-shot <c>/api/v1/ai/process</c> work. Runs the same step
/// code as the device workers, off the Orleans scheduler.
/// </summary>
public interface IAiSiloGrain : IGrainWithStringKey
{
    Task<AiSiloReport> GetReport();

    /// <summary>Runs the requested steps on one image (JPEG or PNG).</summary>
    Task<AiProcessResult> Process(AiProcessRequest request);

    /// <summary>Checks an image before it becomes an asset: null when usable, else why not (does not decode;
    /// for a reference face: no face found, or the face models are unavailable).</summary>
    Task<string?> CheckAsset(AiAssetKind kind, byte[] image);
}

/// <summary>Cluster-wide store of the uploaded assets (key 0), versioned; kept in grain storage so that a silo
/// loss does not lose them. Silos fetch an asset when the pipeline config names a version they do not have.</summary>
public interface IAiAssetGrain : IGrainWithIntegerKey
{
    public const long Key = 0;

    /// <summary>Stores the image; returns its new version.</summary>
    Task<long> Set(AiAssetKind kind, byte[] image);

    Task<AiAssetData?> Get(AiAssetKind kind);

    /// <summary>Removes it; returns the version that now applies (0 = none).</summary>
    Task<long> Clear(AiAssetKind kind);
}

[GenerateSerializer, Immutable, Alias("blankend.AiAssetData")]
public sealed record AiAssetData(
    [property: Id(0)] AiAssetKind Kind,
    [property: Id(1)] long Version,
    [property: Id(2)] byte[] Image,
    [property: Id(3)] long UploadedUnixMs
);

/// <param name="Json">Answer the detections (faces) as JSON instead of the image.</param>
[GenerateSerializer, Immutable, Alias("blankend.AiProcessRequest")]
public sealed record AiProcessRequest(
    [property: Id(0)] byte[] Image,
    [property: Id(1)] AiSteps Steps,
    [property: Id(2)] bool Json,
    [property: Id(3)] MatteBackground Background,
    [property: Id(4)] string DepthMode,
    [property: Id(5)] long ReferenceVersion,
    [property: Id(6)] int JpegQuality
);

/// <param name="Status">HTTP status the gateway answers: 200, 400 (bad image, missing reference) or 503 (a
/// step's model is unavailable).</param>
[GenerateSerializer, Immutable, Alias("blankend.AiProcessResult")]
public sealed record AiProcessResult(
    [property: Id(0)] int Status,
    [property: Id(1)] string? Title,
    [property: Id(2)] string? Detail,
    [property: Id(3)] byte[]? Jpeg,
    [property: Id(4)] AiFace[] Faces,
    [property: Id(5)] int Width,
    [property: Id(6)] int Height,
    [property: Id(7)] Dictionary<string, double> StepMs,
    [property: Id(8)] string[] Notes,
    [property: Id(9)] string Silo,
    [property: Id(10)] string Device,
    [property: Id(11)] string Provider
);

[GenerateSerializer, Immutable, Alias("blankend.AiSiloReport")]
public sealed record AiSiloReport(
    [property: Id(0)] string Silo,
    [property: Id(1)] string[] Providers,
    [property: Id(2)] bool CudaAvailable,
    [property: Id(3)] AiModelReport[] Models,
    [property: Id(4)] AiStepReport[] Steps,
    [property: Id(5)] AiDeviceLoad[] Devices,
    [property: Id(6)] int Sources,
    [property: Id(7)] Dictionary<string, long> AssetVersions,
    [property: Id(8)] bool SimpleForward,
    [property: Id(9)] string SwapEngine = "mesh",
    [property: Id(10)] string? SwapEngineReason = null,
    [property: Id(11)] AiProviderState? Provider = null,
    [property: Id(12)] AiBatchReport[]? Batches = null
);

/// <summary>The execution provider a silo chose for its GPU devices, decided once at start.</summary>
/// <param name="Requested"><c>ai.provider</c>: auto, cuda, tensorrt or cpu.</param>
/// <param name="Active">The provider gpuN sessions use: CUDA, TensorRT or CPU.</param>
/// <param name="GpuSeen">nvidia-smi or /proc/driver/nvidia found a GPU on this host.</param>
/// <param name="Detection">How the GPU detection went ("nvidia-smi: 1 GPU(s)", "none: ...").</param>
/// <param name="Fallback">A GPU provider was wanted (auto with a GPU seen, cuda, tensorrt) and is not what
/// runs.</param>
/// <param name="Reason">Why <paramref name="Active"/> was chosen, with the loader's error on a fallback.</param>
/// <param name="MissingLibrary">The shared library the loader could not find (e.g. libcudnn.so.9), when named.</param>
[GenerateSerializer, Immutable, Alias("blankend.AiProviderState")]
public sealed record AiProviderState(
    [property: Id(0)] string Requested,
    [property: Id(1)] string Active,
    [property: Id(2)] bool GpuSeen,
    [property: Id(3)] string Detection,
    [property: Id(4)] bool Fallback,
    [property: Id(5)] string Reason,
    [property: Id(6)] string? MissingLibrary
);

/// <summary>Cross-stream batching of one model on one silo: inference calls, frames (images) they took, the
/// mean batch, and how long frames waited for their batch to fill.</summary>
[GenerateSerializer, Immutable, Alias("blankend.AiBatchReport")]
public sealed record AiBatchReport(
    [property: Id(0)] string Model,
    [property: Id(1)] string Device,
    [property: Id(2)] long Calls,
    [property: Id(3)] long Images,
    [property: Id(4)] double MeanBatch,
    [property: Id(5)] int MaxBatch
);

/// <param name="Kind">face_detect, face_mesh, segmentation, segmentation_landscape, swap, rvm, depth, arcface.</param>
/// <param name="Sessions">Loaded sessions: "device: provider (reason)".</param>
/// <param name="Format">What the loaded file is, where a kind accepts several: face_detect "blazeface" or
/// "scrfd", swap "inswapper"; null when not loaded or not recognised.</param>
[GenerateSerializer, Immutable, Alias("blankend.AiModelReport")]
public sealed record AiModelReport(
    [property: Id(0)] string Kind,
    [property: Id(1)] string? Path,
    [property: Id(2)] bool Available,
    [property: Id(3)] string? Reason,
    [property: Id(4)] string[] Sessions,
    [property: Id(5)] string[] Providers,
    [property: Id(6)] string? Format = null
);

[GenerateSerializer, Immutable, Alias("blankend.AiStepReport")]
public sealed record AiStepReport(
    [property: Id(0)] string Name,
    [property: Id(1)] long Runs,
    [property: Id(2)] long Frames,
    [property: Id(3)] double MsPerFrame,
    [property: Id(4)] double LastMs,
    [property: Id(5)] Dictionary<string, long> Skipped,
    [property: Id(6)] string? Status
);

/// <param name="Load">Busy fraction of the device's worker loops (0..1).</param>
[GenerateSerializer, Immutable, Alias("blankend.AiDeviceLoad")]
public sealed record AiDeviceLoad(
    [property: Id(0)] string Device,
    [property: Id(1)] string Provider,
    [property: Id(2)] bool Running,
    [property: Id(3)] int QueueDepth,
    [property: Id(4)] double FpsOut,
    [property: Id(5)] double StepsMs,
    [property: Id(6)] double Load
);
