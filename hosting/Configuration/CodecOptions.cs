using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace Blankend.Orleans.Configuration;

/// <summary>Section <c>codec</c>: the ffmpeg decode sessions of <c>/video_codec</c> (they run on the silos).</summary>
public sealed class CodecOptions
{
    public const string Section = "codec";

    /// <summary>The ffmpeg executable: a name looked up on PATH or an absolute path. Recording uses it too.</summary>
    [ConfigurationKeyName("ffmpeg_path")]
    public string FfmpegPath { get; set; } = "ffmpeg";

    /// <summary>Use NVDEC (h264_cuvid / hevc_cuvid, else <c>-hwaccel cuda</c>) when ffmpeg lists it AND a short probe
    /// decode on this host succeeds; the CPU decoder otherwise, and whenever the GPU path fails.</summary>
    [ConfigurationKeyName("prefer_gpu")]
    public bool PreferGpu { get; set; } = true;

    /// <summary>A session whose client sends nothing for this long ends (its ffmpeg process is killed).</summary>
    [ConfigurationKeyName("idle_timeout_s")]
    public int IdleTimeoutSeconds { get; set; } = 10;

    /// <summary>ffmpeg <c>-probesize</c>. Small, so that a live stream yields frames while it is open (ffmpeg's
    /// default, 5 MB, holds a short stream back until it closes). The first frame waits for this many bytes (with
    /// <c>-analyzeduration 0</c>): measured, 32768 cost 150-800 ms more than 4096 on 33-130 KiB/s streams.</summary>
    [ConfigurationKeyName("probe_size")]
    public int ProbeSize { get; set; } = 4096;

    /// <summary>JPEG quality of the decoded frames as ffmpeg's mjpeg <c>-q:v</c> (2 best .. 31 worst).</summary>
    [ConfigurationKeyName("mjpeg_qscale")]
    public int MjpegQscale { get; set; } = 5;

    /// <summary>ffmpeg error lines since the last decoded frame (or since the start) that make a session fail as
    /// undecodable input (garbage, a stream cut at the head, the wrong codec).</summary>
    [ConfigurationKeyName("max_errors_without_frame")]
    public int MaxErrorsWithoutFrame { get; set; } = 30;

    /// <summary>Input bytes since the last decoded frame (or since the start) that make a session fail.</summary>
    [ConfigurationKeyName("max_bytes_without_frame")]
    public int MaxBytesWithoutFrame { get; set; } = 16 * 1024 * 1024;

    /// <summary>Gateway: chunks of one connection waiting to enter the cluster. When full, the WebSocket receive
    /// loop waits (backpressure to the camera): chunks of a coded stream are never dropped.</summary>
    [ConfigurationKeyName("chunk_queue_size")]
    public int ChunkQueueSize { get; set; } = 16;

    /// <summary>Largest decoded frame (width x height), ffmpeg's <c>-max_pixels</c>: a stream declaring bigger
    /// frames ends its session (close 1007) before a frame buffer is allocated for it.</summary>
    [ConfigurationKeyName("max_pixels")]
    public long MaxPixels { get; set; } = 40_000_000;
}

/// <summary>Section <c>recording</c>: <c>/api/v1/realtime_pipeline/record/*</c> (MP4 files written on the
/// silo).</summary>
public sealed class RecordingOptions
{
    public const string Section = "recording";

    /// <summary>Where MP4 files go; relative paths are resolved against the process's working directory.</summary>
    [ConfigurationKeyName("folder")]
    public string Folder { get; set; } = "data/recordings";

    /// <summary>Frame rate written into the MP4 when the start request gives none (one frame per tick).</summary>
    [ConfigurationKeyName("default_fps")]
    public double DefaultFps { get; set; } = 30;

    /// <summary>A recording whose source sends nothing for this long ends cleanly (the file is finalized).</summary>
    [ConfigurationKeyName("idle_timeout_s")]
    public int IdleTimeoutSeconds { get; set; } = 10;

    /// <summary>Frames waiting to be written to ffmpeg; when full, new frames are dropped and counted.</summary>
    [ConfigurationKeyName("queue_frames")]
    public int QueueFrames { get; set; } = 64;

    /// <summary>A recording this long ends by itself (state <c>done</c>, reason naming the key). 0: no limit.</summary>
    [ConfigurationKeyName("max_duration_s")]
    public int MaxDurationSeconds { get; set; } = 6 * 3600;

    /// <summary>A recording whose file reaches this size ends by itself. 0: no limit.</summary>
    [ConfigurationKeyName("max_bytes")]
    public long MaxBytes { get; set; } = 16L << 30;

    /// <summary>Free space (MiB) the recordings folder's disk must keep: a start is refused below it, and a running
    /// recording ends when it is reached. 0: no check.</summary>
    [ConfigurationKeyName("min_free_mb")]
    public long MinFreeMb { get; set; } = 512;

    /// <summary>Largest frame (width x height) a recording takes; a bigger first frame fails the recording, and
    /// ffmpeg's <c>-max_pixels</c> refuses a bigger later one.</summary>
    [ConfigurationKeyName("max_pixels")]
    public long MaxPixels { get; set; } = 40_000_000;
}

public sealed class CodecOptionsValidator : IValidateOptions<CodecOptions>
{
    public ValidateOptionsResult Validate(string? name, CodecOptions o)
    {
        var f = new Failures();
        f.NotEmpty("codec:ffmpeg_path", o.FfmpegPath);
        f.Range("codec:idle_timeout_s", o.IdleTimeoutSeconds, 1, 3600);
        f.Range("codec:probe_size", o.ProbeSize, 32, 50_000_000);
        f.Range("codec:mjpeg_qscale", o.MjpegQscale, 2, 31);
        f.Range("codec:max_errors_without_frame", o.MaxErrorsWithoutFrame, 1, 1_000_000);
        f.Range("codec:max_bytes_without_frame", o.MaxBytesWithoutFrame, 65536, 1 << 30);
        f.Range("codec:chunk_queue_size", o.ChunkQueueSize, 1, 4096);
        f.Range("codec:max_pixels", o.MaxPixels, 64, 1L << 30);
        return f.Result;
    }
}

public sealed class RecordingOptionsValidator : IValidateOptions<RecordingOptions>
{
    public ValidateOptionsResult Validate(string? name, RecordingOptions o)
    {
        var f = new Failures();
        f.NotEmpty("recording:folder", o.Folder);
        if (o.Folder.Contains('\0', StringComparison.Ordinal))
            f.Add("recording:folder must not contain NUL");
        if (double.IsNaN(o.DefaultFps) || o.DefaultFps < 1 || o.DefaultFps > 240)
            f.Add($"recording:default_fps must be between 1 and 240 (got {o.DefaultFps})");
        f.Range("recording:idle_timeout_s", o.IdleTimeoutSeconds, 1, 3600);
        f.Range("recording:queue_frames", o.QueueFrames, 1, 100_000);
        f.Range("recording:max_duration_s", o.MaxDurationSeconds, 0, 30 * 86400);
        f.Range("recording:max_bytes", o.MaxBytes, 0, 1L << 50);
        f.Range("recording:min_free_mb", o.MinFreeMb, 0, 1L << 30);
        f.Range("recording:max_pixels", o.MaxPixels, 64, 1L << 30);
        return f.Result;
    }
}
