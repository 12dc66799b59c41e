namespace Blankend.Orleans;

/// <summary>How a frame's payload relates to its source: as it entered, or after the processing path.</summary>
[GenerateSerializer, Alias("blankend.FrameKind")]
public enum FrameKind : byte
{
    Raw = 0,
    Processed = 1,
}

/// <summary>Where a frame entered the service; later stages use it to avoid loops (a frame from the bus is
/// never sent back to the bus as if it were camera input).</summary>
[GenerateSerializer, Alias("blankend.FrameOrigin")]
public enum FrameOrigin : byte
{
    VideoIn = 0,
    VideoCodec = 1,
    Bus = 2,

    /// <summary>From the bus and taken by the realtime pipeline: its output (processed, or the raw frame when
    /// processing failed) goes back to the bus once, from the source's ClientGrain.</summary>
    BusPipeline = 3,
}

/// <summary>
/// The one frame type of the service. Immutable so that same-silo grain calls pass the reference and never
/// copy the payload; cross-silo calls serialize it once.
/// </summary>
/// <param name="Source">client_id of the camera (or bus client) the frame belongs to.</param>
/// <param name="Seq">Per-source sequence, +1 per frame entering the service; assigned by the source's
/// ClientGrain, the one place every frame of a source passes (0 until then).</param>
/// <param name="Epoch">Identifies the ClientGrain activation that assigned <see cref="Seq"/>; a new activation
/// (idle collection, silo loss) restarts the sequence under a new epoch.</param>
/// <param name="Kind">Raw or processed.</param>
/// <param name="TimestampMs">Unix ms when the frame entered the service.</param>
/// <param name="Origin">Entry point of the frame.</param>
/// <param name="Payload">One complete JPEG. Owned by the envelope: never written after construction.</param>
/// <param name="Faces">Faces the AI steps found (processed frames with the detect step), for meta=1 viewers.</param>
[GenerateSerializer, Immutable, Alias("blankend.FrameEnvelope")]
public sealed record FrameEnvelope(
    [property: Id(0)] string Source,
    [property: Id(1)] long Seq,
    [property: Id(2)] long Epoch,
    [property: Id(3)] FrameKind Kind,
    [property: Id(4)] long TimestampMs,
    [property: Id(5)] FrameOrigin Origin,
    [property: Id(6)] byte[] Payload,
    [property: Id(7)] Ai.AiFace[]? Faces = null
)
{
    public string KindName => Kind == FrameKind.Processed ? "processed" : "raw";

    /// <summary>Entered from the ZeroMQ bus (whether or not the realtime pipeline took it).</summary>
    public bool FromBus => Origin is FrameOrigin.Bus or FrameOrigin.BusPipeline;
}
