using System.Globalization;
using System.Threading.Channels;
using Blankend.Orleans.Codec;
using Microsoft.Extensions.Logging;

namespace Blankend.Orleans.Grains.Codec;

/// <summary>
/// Writes one source's JPEG frames into ffmpeg (<c>image2pipe</c> -> libx264 -> MP4). Its grain hands it each frame
/// the source's ClientGrain delivers; frames go into a bounded queue (full: the new frame is dropped and counted)
/// that one loop on the thread pool writes to ffmpeg's stdin, so the grain never waits on ffmpeg.
/// ffmpeg starts with the first frame, whose size fixes the video size (later frames of another size are scaled).
/// </summary>
internal sealed partial class Recorder
{
    /// <summary>Time ffmpeg gets to finalize the MP4 (moov atom, faststart rewrite) before it is killed.</summary>
    public static readonly TimeSpan FinalizeTimeout = TimeSpan.FromSeconds(20);

    public sealed record Settings(string Id, string Source, string Path, string Kind, double Fps, string FfmpegPath,
        int QueueFrames, bool FpsModeOption);

    private readonly Settings _s;
    private readonly ILogger _log;
    private readonly Channel<FrameEnvelope> _queue;
    private readonly Lock _gate = new();
    private readonly Task _writer;
    private FfmpegProcess? _process;
    private long _epoch;
    private long _lastSeq;
    private long _frames;
    private long _dropped;
    private long _stale;
    private long _otherKind;
    private long _lastFrameTick;
    private string? _failure;
    private RecordingResult? _result;
    private readonly KeyValuePair<string, object?> _kindTag;

    public Recorder(Settings settings, ILogger log)
    {
        _s = settings;
        _log = log;
        _kindTag = new KeyValuePair<string, object?>("kind", settings.Kind);
        _queue = Channel.CreateBounded<FrameEnvelope>(
            new BoundedChannelOptions(settings.QueueFrames) { FullMode = BoundedChannelFullMode.DropWrite, SingleReader = true },
            _ => Interlocked.Increment(ref _dropped));
        _lastFrameTick = Environment.TickCount64;
        StartedUnixMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        _writer = Task.Run(WriteLoopAsync);
    }

    public Settings Config => _s;

    public long StartedUnixMs { get; }

    public long Frames => Interlocked.Read(ref _frames);

    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Milliseconds since the last frame was accepted (since the start when none was).</summary>
    public long IdleMs => Environment.TickCount64 - Interlocked.Read(ref _lastFrameTick);

    /// <summary>Set when ffmpeg failed; the recording is over (its grain collects the result).</summary>
    public string? Failure
    {
        get { lock (_gate) return _failure; }
    }

    public RecordingStats Snapshot() =>
        new(_s.Id, _s.Source, _s.Path, _s.Kind, _s.Fps, Frames, Dropped, StartedUnixMs);

    public void Offer(FrameEnvelope frame)
    {
        if (frame.KindName != _s.Kind)
        {
            Interlocked.Increment(ref _otherKind);
            return;
        }
        lock (_gate)
        {
            // One-way deliveries may overtake each other: never write an older frame after a newer one.
            if (frame.Epoch == _epoch && frame.Seq <= _lastSeq)
            {
                _stale++;
                return;
            }
            _epoch = frame.Epoch;
            _lastSeq = frame.Seq;
            if (_failure is not null) return;
        }
        Interlocked.Exchange(ref _lastFrameTick, Environment.TickCount64);
        _queue.Writer.TryWrite(frame);
    }

    private async Task WriteLoopAsync()
    {
        await foreach (var frame in _queue.Reader.ReadAllAsync().ConfigureAwait(false))
        {
            if (Failure is not null) continue; // drain
            try
            {
                _process ??= StartFfmpeg(frame.Payload);
                await _process.Stdin.WriteAsync(frame.Payload).ConfigureAwait(false);
                Interlocked.Increment(ref _frames);
                CodecMetrics.RecordingFrames.Add(1, _kindTag);
            }
            catch (FfmpegStartException e)
            {
                Fail(e.Message);
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException)
            {
                await Task.Delay(100).ConfigureAwait(false); // let stderr say why
                Fail($"ffmpeg stopped taking frames (exit {_process?.ExitCode?.ToString() ?? "?"}): {_process?.StderrSummary()}");
            }
        }
    }

    private FfmpegProcess StartFfmpeg(byte[] firstFrame)
    {
        var fps = _s.Fps.ToString("0.###", CultureInfo.InvariantCulture);
        var args = new List<string>
        {
            "-hide_banner", "-nostats", "-loglevel", "error",
            "-f", "image2pipe", "-framerate", fps, "-c:v", "mjpeg", "-i", "pipe:0",
            "-an",
        };
        // H.264 in yuv420p needs even dimensions; the first frame fixes the size for the whole file.
        var filter = JpegInfo.TryGetSize(firstFrame, out var w, out var h)
            ? $"scale={w & ~1}:{h & ~1}:flags=bicubic,format=yuv420p"
            : "scale=trunc(iw/2)*2:trunc(ih/2)*2,format=yuv420p";
        args.AddRange(["-vf", filter]);
        args.AddRange(_s.FpsModeOption ? ["-fps_mode", "passthrough"] : ["-vsync", "passthrough"]);
        args.AddRange(["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-movflags", "+faststart", "-f", "mp4", "-n", _s.Path]);
        var p = FfmpegProcess.Start(_s.FfmpegPath, args);
        LogStarted(_log, _s.Source, p.Pid, _s.Path, w, h, fps);
        return p;
    }

    private void Fail(string detail)
    {
        lock (_gate)
        {
            if (_failure is not null) return;
            _failure = detail;
        }
        LogFailed(_log, _s.Source, detail);
        _process?.Kill();
    }

    /// <summary>Ends the recording: queued frames are written, stdin closed, ffmpeg finalizes the file (killed
    /// after <see cref="FinalizeTimeout"/>). Idempotent.</summary>
    public async Task<RecordingResult> StopAsync(string ended)
    {
        lock (_gate)
        {
            if (_result is not null) return _result;
        }
        _queue.Writer.TryComplete();
        try { await _writer.WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false); }
        catch (TimeoutException) { Fail("writing queued frames timed out"); }

        var written = false;
        string? detail;
        lock (_gate) detail = _failure;
        if (_process is { } p)
        {
            p.CloseStdin();
            var exited = await p.WaitForExitAsync(FinalizeTimeout).ConfigureAwait(false);
            if (!exited)
            {
                detail ??= $"ffmpeg did not finalize the file within {FinalizeTimeout.TotalSeconds:0} s";
            }
            else if (p.ExitCode != 0)
            {
                detail ??= $"ffmpeg exited with code {p.ExitCode}: {p.StderrSummary()}";
            }
            await p.DisposeAsync().ConfigureAwait(false);
            written = File.Exists(_s.Path) && new FileInfo(_s.Path).Length > 0;
        }
        else
        {
            detail ??= "no frame arrived: no file was written";
        }
        var frames = Frames;
        var result = new RecordingResult(_s.Id, _s.Source, _s.Path, frames, Math.Round(frames / _s.Fps, 3), Dropped,
            detail is not null && _failure is not null ? "failed" : ended, detail, written);
        lock (_gate) _result ??= result;
        LogStopped(_log, _s.Source, result.Ended, frames, Dropped, Interlocked.Read(ref _stale), Interlocked.Read(ref _otherKind), _s.Path);
        return _result!;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "recording {Source}: ffmpeg [{Pid}] writing {Path} ({Width}x{Height} @ {Fps} fps)")]
    private static partial void LogStarted(ILogger log, string source, int pid, string path, int width, int height, string fps);

    [LoggerMessage(Level = LogLevel.Warning, Message = "recording {Source} failed: {Detail}")]
    private static partial void LogFailed(ILogger log, string source, string detail);

    [LoggerMessage(Level = LogLevel.Information, Message = "recording {Source} ended ({Ended}): {Frames} frames, {Dropped} dropped, {Stale} stale, {OtherKind} of the other kind -> {Path}")]
    private static partial void LogStopped(ILogger log, string source, string ended, long frames, long dropped, long stale, long otherKind, string path);
}
