namespace Blankend.Orleans.Codec;

/// <summary>
/// Records one source (key: its client_id) to an H.264 MP4 on the silo that hosts the grain. At most one live
/// recording per source. The file name is made by the service (<c>{source}-{UTC time}.mp4</c> in
/// <c>recording:folder</c>); the caller never chooses a path.
/// </summary>
public interface IRecordingGrain : IGrainWithStringKey
{
    Task<RecordingStartResult> Start(RecordingRequest request);

    /// <summary>Stops the live recording (the file is finalized) or hands over the result of one that ended by
    /// itself (source idle, ffmpeg failure); null when there is neither.</summary>
    Task<RecordingResult?> Stop();
}

public static class RecordingKinds
{
    public const string Raw = "raw";
    public const string Processed = "processed";

    public static bool IsValid(string? value) => value is Raw or Processed;
}

[GenerateSerializer, Immutable, Alias("blankend.RecordingRequest")]
public sealed record RecordingRequest([property: Id(0)] string Kind, [property: Id(1)] double Fps);

[GenerateSerializer, Alias("blankend.RecordingStartStatus")]
public enum RecordingStartStatus : byte
{
    Started = 0,
    AlreadyRecording = 1,
    Unavailable = 2,
    Failed = 3,

    /// <summary>A limit (<c>limits:max_recordings</c>, <c>recording:min_free_mb</c>) refuses it: HTTP 429.</summary>
    Limited = 4,
}

[GenerateSerializer, Immutable, Alias("blankend.RecordingStartResult")]
public sealed record RecordingStartResult(
    [property: Id(0)] RecordingStartStatus Status,
    [property: Id(1)] string Id,
    [property: Id(2)] string Source,
    [property: Id(3)] string Path,
    [property: Id(4)] string Kind,
    [property: Id(5)] double Fps,
    [property: Id(6)] string Detail
);

/// <param name="Ended"><c>stopped</c> (by the stop call), <c>idle</c> (the source stopped sending),
/// <c>failed</c> (ffmpeg failed; see Detail).</param>
[GenerateSerializer, Immutable, Alias("blankend.RecordingResult")]
public sealed record RecordingResult(
    [property: Id(0)] string Id,
    [property: Id(1)] string Source,
    [property: Id(2)] string Path,
    [property: Id(3)] long Frames,
    [property: Id(4)] double DurationSeconds,
    [property: Id(5)] long Dropped,
    [property: Id(6)] string Ended,
    [property: Id(7)] string? Detail,
    [property: Id(8)] bool FileWritten
)
{
    /// <summary><c>done</c> or <c>failed</c> (the list API's state).</summary>
    [Id(9)]
    public string State { get; init; } = "done";

    /// <summary>Why it ended when not by a plain stop (a limit, idle, a failure); null otherwise.</summary>
    [Id(10)]
    public string? Reason { get; init; }
}
