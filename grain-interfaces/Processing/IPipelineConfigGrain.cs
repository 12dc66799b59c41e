namespace Blankend.Orleans.Processing;

/// <summary>
/// Singleton (key <see cref="Key"/>): the processing pipeline's control plane. Holds the versioned
/// configuration (global + per-source overrides), pushes each change to the active sources (ClientGrains
/// also fetch it when they activate) and gathers the status of sources and device workers. No frame passes
/// through it.
/// </summary>
public interface IPipelineConfigGrain : IGrainWithIntegerKey
{
    public const long Key = 0;

    Task<PipelineConfig> GetConfig();

    /// <summary>Validates and applies a change. An invalid change changes nothing and answers why.</summary>
    Task<ConfigChangeResult> Update(PipelineConfigUpdate update);

    /// <summary>Validates and applies a change of the realtime (AI) settings, pushed like any other change.</summary>
    Task<ConfigChangeResult> UpdateRealtime(RealtimeConfigUpdate update);

    Task<PipelineStatus> GetStatus();

    Task<GpuStatus> GetGpuStatus();
}

[GenerateSerializer, Immutable, Alias("blankend.ConfigChangeResult")]
public sealed record ConfigChangeResult([property: Id(0)] PipelineConfig Config, [property: Id(1)] string? Error);

/// <summary>One source's processing counters (kept by its ClientGrain).</summary>
/// <param name="FramesIn">Frames that arrived while processing was on for the source.</param>
/// <param name="Processed">Delivered as kind=processed.</param>
/// <param name="Bypassed">Delivered raw because the device worker was saturated.</param>
/// <param name="Errors">Delivered raw because processing failed (e.g. a JPEG that does not decode).</param>
/// <param name="FpsDropped">Not delivered: over the source's fps_limit.</param>
/// <param name="OverflowDropped">Not delivered: replaced in the one pending slot by a newer frame (latest
/// wins).</param>
[GenerateSerializer, Immutable, Alias("blankend.SourceProcessingStats")]
public sealed record SourceProcessingStats(
    [property: Id(0)] string Source,
    [property: Id(1)] string Silo,
    [property: Id(2)] bool Enabled,
    [property: Id(3)] string? Device,
    [property: Id(4)] long FramesIn,
    [property: Id(5)] long Processed,
    [property: Id(6)] long Bypassed,
    [property: Id(7)] long Errors,
    [property: Id(8)] long FpsDropped,
    [property: Id(9)] long OverflowDropped,
    [property: Id(10)] int InFlight,
    [property: Id(11)] int Pending,
    [property: Id(12)] double FpsIn,
    [property: Id(13)] double FpsOut,
    [property: Id(14)] long ConfigVersion,
    [property: Id(15)] EffectiveSettings Settings,
    [property: Id(16)] string? LastError
);

[GenerateSerializer, Immutable, Alias("blankend.PipelineTotals")]
public sealed record PipelineTotals(
    [property: Id(0)] long FramesIn,
    [property: Id(1)] long Processed,
    [property: Id(2)] long Bypassed,
    [property: Id(3)] long Errors,
    [property: Id(4)] long FpsDropped,
    [property: Id(5)] long OverflowDropped,
    [property: Id(6)] double FpsIn,
    [property: Id(7)] double FpsOut,
    [property: Id(8)] int QueueDepth
);

[GenerateSerializer, Immutable, Alias("blankend.PipelineStatus")]
public sealed record PipelineStatus(
    [property: Id(0)] long ConfigVersion,
    [property: Id(1)] PipelineSettings Global,
    [property: Id(2)] SourceOverride[] Overrides,
    [property: Id(3)] PipelineTotals Totals,
    [property: Id(4)] SourceProcessingStats[] Sources,
    [property: Id(5)] DeviceStatus[] Devices,
    [property: Id(6)] string[] Steps
);

[GenerateSerializer, Immutable, Alias("blankend.GpuInfo")]
public sealed record GpuInfo(
    [property: Id(0)] int Index,
    [property: Id(1)] string Name,
    [property: Id(2)] string? Uuid
);

/// <summary>What one silo found at start (published in its silo metadata).</summary>
/// <param name="Detection">How the GPUs were looked for and what was found (e.g. "nvidia-smi: 1 GPU",
/// "none: nvidia-smi not on PATH and no /proc/driver/nvidia/gpus").</param>
[GenerateSerializer, Immutable, Alias("blankend.SiloDevices")]
public sealed record SiloDevices(
    [property: Id(0)] string Silo,
    [property: Id(1)] string[] Devices,
    [property: Id(2)] GpuInfo[] Gpus,
    [property: Id(3)] string Detection
);

/// <param name="Provider">"CUDA" or "CPU": what the JPEG path of the devices in use runs on.</param>
/// <param name="ProviderReason">Why the provider is what it is (e.g. hw_transcode requested but no GPU).</param>
[GenerateSerializer, Immutable, Alias("blankend.GpuStatus")]
public sealed record GpuStatus(
    [property: Id(0)] bool GpuAvailable,
    [property: Id(1)] int GpuCount,
    [property: Id(2)] bool HwTranscodeRequested,
    [property: Id(3)] string Provider,
    [property: Id(4)] string ProviderReason,
    [property: Id(5)] SiloDevices[] Silos,
    [property: Id(6)] DeviceStatus[] Devices
);
