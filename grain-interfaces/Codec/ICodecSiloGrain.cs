namespace Blankend.Orleans.Codec;

/// <summary>
/// One activation per silo (key: the silo address as <c>SiloAddress.ToParsableString()</c>, placed on that silo):
/// reports what that silo's ffmpeg can decode and its live sessions, read fresh on each status request (no
/// registration, no background loop).
/// </summary>
public interface ICodecSiloGrain : IGrainWithStringKey
{
    Task<CodecSiloReport> GetReport();
}

[GenerateSerializer, Immutable, Alias("blankend.CodecSiloReport")]
public sealed record CodecSiloReport(
    [property: Id(0)] string Silo,
    [property: Id(1)] FfmpegReport Ffmpeg,
    [property: Id(2)] GpuReport Gpu,
    [property: Id(3)] Dictionary<string, string> Selected,
    [property: Id(4)] DecodeSessionStats[] Sessions,
    [property: Id(5)] CodecCounterReport Counters,
    [property: Id(6)] RecordingStats[] Recordings
);

/// <param name="Path">As configured (<c>codec:ffmpeg_path</c>).</param>
/// <param name="Resolved">The file that runs (PATH looked up), null when not found.</param>
/// <param name="State"><c>probing</c>, <c>ok</c> or <c>unavailable</c>.</param>
/// <param name="CpuDecoders">CPU decoders ffmpeg lists for the accepted codecs (h264, hevc).</param>
/// <param name="GpuDecoders">NVDEC decoders ffmpeg lists (h264_cuvid, hevc_cuvid); listed is not usable: see the GPU
/// report.</param>
[GenerateSerializer, Immutable, Alias("blankend.FfmpegReport")]
public sealed record FfmpegReport(
    [property: Id(0)] string Path,
    [property: Id(1)] string? Resolved,
    [property: Id(2)] string? Version,
    [property: Id(3)] string State,
    [property: Id(4)] string? Error,
    [property: Id(5)] string[] CpuDecoders,
    [property: Id(6)] string[] GpuDecoders,
    [property: Id(7)] string[] Hwaccels,
    [property: Id(8)] bool RecordingEncoder
);

[GenerateSerializer, Immutable, Alias("blankend.GpuReport")]
public sealed record GpuReport(
    [property: Id(0)] bool Usable,
    [property: Id(1)] string Reason,
    [property: Id(2)] GpuProbeReport[] Probes
);

[GenerateSerializer, Immutable, Alias("blankend.GpuProbeReport")]
public sealed record GpuProbeReport(
    [property: Id(0)] string Codec,
    [property: Id(1)] string Decoder,
    [property: Id(2)] bool Ok,
    [property: Id(3)] string Detail,
    [property: Id(4)] double Ms
);

[GenerateSerializer, Immutable, Alias("blankend.DecodeSessionStats")]
public sealed record DecodeSessionStats(
    [property: Id(0)] string ClientId,
    [property: Id(1)] string Codec,
    [property: Id(2)] string Decoder,
    [property: Id(3)] bool Gpu,
    [property: Id(4)] double Fps,
    [property: Id(5)] long Frames,
    [property: Id(6)] long BytesIn,
    [property: Id(7)] long Chunks,
    [property: Id(8)] long Errors,
    [property: Id(9)] long DroppedFrames,
    [property: Id(10)] long StartedUnixMs,
    [property: Id(11)] int? Pid,
    [property: Id(12)] int Restarts,
    [property: Id(13)] double? FirstFrameMs
);

[GenerateSerializer, Immutable, Alias("blankend.CodecCounterReport")]
public sealed record CodecCounterReport(
    [property: Id(0)] long SessionsStarted,
    [property: Id(1)] Dictionary<string, long> SessionsEnded,
    [property: Id(2)] long GpuFallbacks,
    [property: Id(3)] long FramesDecoded,
    [property: Id(4)] long RecordingsStarted,
    [property: Id(5)] long RecordingsEnded
);

[GenerateSerializer, Immutable, Alias("blankend.RecordingStats")]
public sealed record RecordingStats(
    [property: Id(0)] string Id,
    [property: Id(1)] string Source,
    [property: Id(2)] string Path,
    [property: Id(3)] string Kind,
    [property: Id(4)] double Fps,
    [property: Id(5)] long Frames,
    [property: Id(6)] long Dropped,
    [property: Id(7)] long StartedUnixMs
);
