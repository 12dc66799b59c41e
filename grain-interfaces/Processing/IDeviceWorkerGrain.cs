namespace Blankend.Orleans.Processing;

/// <summary>
/// One per compute device, keyed by device id: <c>gpu0</c>, <c>gpu1</c>, ... on silos that own GPUs,
/// <c>cpu0</c> everywhere. Placed on a silo that owns the device (see the device placement director). The
/// per-frame work runs on that silo's dedicated worker loop for the device, never on the Orleans scheduler.
/// </summary>
public interface IDeviceWorkerGrain : IGrainWithStringKey
{
    /// <summary>Runs the enabled steps on one frame. Answers <see cref="ProcessOutcome.Saturated"/> at once,
    /// without queueing, when the device's queue is full: the caller forwards the raw frame.</summary>
    Task<ProcessResult> Process(ProcessRequest request);

    Task<DeviceStatus> GetStatus();
}

[GenerateSerializer, Immutable, Alias("blankend.ProcessRequest")]
public sealed record ProcessRequest(
    [property: Id(0)] FrameEnvelope Frame,
    [property: Id(1)] EffectiveSettings Settings
);

[GenerateSerializer, Alias("blankend.ProcessOutcome")]
public enum ProcessOutcome : byte
{
    Processed = 0,
    Saturated = 1,
    Failed = 2,
}

[GenerateSerializer, Immutable, Alias("blankend.ProcessResult")]
public sealed record ProcessResult(
    [property: Id(0)] ProcessOutcome Outcome,
    [property: Id(1)] byte[]? Payload,
    [property: Id(2)] string? Error,
    [property: Id(3)] Ai.AiFace[]? Faces = null
)
{
    public static readonly ProcessResult Saturated = new(ProcessOutcome.Saturated, null, "device queue full");
}

/// <summary>Health and load of one device worker, as seen by the silo that hosts it.</summary>
/// <param name="Provider">"CPU" or "CUDA": what the JPEG codec of this worker runs on.</param>
/// <param name="WorkerRunning">Whether its worker loop(s) exist right now (they stop after idle).</param>
/// <param name="Load">Busy fraction of the worker loops over the last seconds (0..1).</param>
/// <param name="Health">idle (no loop), ok, saturated (bypassed frames in the last seconds) or failing
/// (errors in the last seconds and nothing processed).</param>
[GenerateSerializer, Immutable, Alias("blankend.DeviceStatus")]
public sealed record DeviceStatus(
    [property: Id(0)] string Device,
    [property: Id(1)] string Silo,
    [property: Id(2)] string Provider,
    [property: Id(3)] string ProviderReason,
    [property: Id(4)] bool WorkerRunning,
    [property: Id(5)] int LoopThreads,
    [property: Id(6)] int QueueDepth,
    [property: Id(7)] int QueueCapacity,
    [property: Id(8)] long Submitted,
    [property: Id(9)] long Processed,
    [property: Id(10)] long Saturated,
    [property: Id(11)] long Errors,
    [property: Id(12)] long Batches,
    [property: Id(13)] double AvgBatchSize,
    [property: Id(14)] double FpsIn,
    [property: Id(15)] double FpsOut,
    [property: Id(16)] double DecodeMs,
    [property: Id(17)] double StepsMs,
    [property: Id(18)] double EncodeMs,
    [property: Id(19)] double Load,
    [property: Id(20)] string Health,
    [property: Id(21)] long LoopStarts,
    [property: Id(22)] long LoopStops,
    [property: Id(23)] string? LastError,
    [property: Id(24)] string ThreadTag
);
