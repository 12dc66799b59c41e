using System.Globalization;
using System.Threading.Channels;
using Blankend.Orleans.Codec;
using Blankend.Orleans.Hosting;
using Microsoft.Extensions.Logging;

namespace Blankend.Orleans.Grains.Codec;

/// <summary>
/// Writes one source's JPEG frames into ffmpeg (<c>image2pipe</c> -> libx264 -> MP4). Its grain hands it each frame
/// the source's ClientGrain delivers; frames go into a bounded queue (full: the new frame is dropped and counted)
/// that one loop on the thread pool writes to ffmpeg's stdin, so the grain never waits on ffmpeg.
/// ffmpeg starts with the first frame, whose size fixes the video size (later frames of another size are scaled).
/// The MP4 is fragmented (an empty moov first, then one fragment per keyframe, a keyframe every second): whatever
/// kills the writer, the file plays up to the last complete fragment, so at most about a second is lost. A
/// sidecar (<see cref="RecordingRegistry"/>) records the recording's state for the list API, refreshed every
/// second while it is live; the same loop enforces <c>recording:max_duration_s</c>, <c>max_bytes</c> and
/// <c>min_free_mb</c> and notices an ffmpeg that died between frames.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage(
    "Design",
    "CA1001",
    Justification = "_monitorStop is disposed by the one shared stop path (every recording ends through it), not by a Dispose."
)]
internal sealed partial class Recorder
{
    /// <summary>Time ffmpeg gets to write its last fragment before it is killed (the file stays playable then
    /// too), and the time the queued frames get to reach it, on a stop call (a busy host may need a while).</summary>
    public static readonly TimeSpan FinalizeTimeout = TimeSpan.FromSeconds(10);

    public static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(10);

    /// <summary>The same two bounds while the service stops: together they fit in the host's 8 s shutdown
    /// timeout. What they cut off is at most the last fragment.</summary>
    public static readonly TimeSpan ShutdownFinalizeTimeout = TimeSpan.FromSeconds(4);

    public static readonly TimeSpan ShutdownDrainTimeout = TimeSpan.FromSeconds(2);

    /// <summary>Period of the sidecar heartbeat and of the limit checks.</summary>
    public static readonly TimeSpan MonitorInterval = TimeSpan.FromSeconds(1);

    /// <param name="MaxDurationSeconds">0: no limit.</param>
    /// <param name="MaxBytes">0: no limit.</param>
    /// <param name="MinFreeMb">0: no check.</param>
    public sealed record Settings(
        string Id,
        string Source,
        string Path,
        string Kind,
        double Fps,
        string FfmpegPath,
        int QueueFrames,
        bool FpsModeOption,
        int MaxDurationSeconds = 0,
        long MaxBytes = 0,
        long MinFreeMb = 0,
        long MaxPixels = 40_000_000
    );

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
    private string? _limit;
    private bool _stopping;
    private Task<RecordingResult>? _stop;
    private readonly CancellationTokenSource _monitorStop = new();
    private readonly Task _monitor;
    private readonly KeyValuePair<string, object?> _kindTag;

    public Recorder(Settings settings, ILogger log)
    {
        _s = settings;
        _log = log;
        _kindTag = new KeyValuePair<string, object?>("kind", settings.Kind);
        _queue = Channel.CreateBounded<FrameEnvelope>(
            new BoundedChannelOptions(settings.QueueFrames)
            {
                FullMode = BoundedChannelFullMode.DropWrite,
                SingleReader = true,
            },
            _ => Interlocked.Increment(ref _dropped)
        );
        _lastFrameTick = Environment.TickCount64;
        StartedUnixMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        // The sidecar first: a start that cannot write it fails (the caller reports the folder as unwritable).
        WriteSidecar(RecordingStates.Live, null, null);
        _writer = Task.Run(WriteLoopAsync);
        _monitor = Task.Run(MonitorLoopAsync);
    }

    private string Folder => System.IO.Path.GetDirectoryName(_s.Path)!;

    private DateTimeOffset Started => DateTimeOffset.FromUnixTimeMilliseconds(StartedUnixMs);

    private long FileBytes()
    {
        try
        {
            return File.Exists(_s.Path) ? new FileInfo(_s.Path).Length : 0;
        }
        catch (IOException)
        {
            return 0;
        }
    }

    private void WriteSidecar(string state, string? reason, DateTimeOffset? ended)
    {
        var now = DateTimeOffset.UtcNow;
        RecordingRegistry.Write(
            Folder,
            new RecordingEntry(
                _s.Id,
                _s.Source,
                _s.Kind,
                System.IO.Path.GetFileName(_s.Path),
                FileBytes(),
                Started,
                ended,
                state,
                reason,
                now
            )
        );
    }

    /// <summary>Set when a recording limit ended the recording (its reason names the key).</summary>
    public string? LimitReached
    {
        get
        {
            lock (_gate)
                return _limit;
        }
    }

    /// <summary>True once the recording is over by itself (failure or limit): its grain collects the result.</summary>
    public bool IsOver
    {
        get
        {
            lock (_gate)
                return _failure is not null || _limit is not null;
        }
    }

    private async Task MonitorLoopAsync()
    {
        using var timer = new PeriodicTimer(MonitorInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(_monitorStop.Token).ConfigureAwait(false))
            {
                Check();
            }
        }
        catch (OperationCanceledException) { }
    }

    /// <summary>How ffmpeg ended (.NET reports a signal as 128 + its number).</summary>
    private static string Exit(FfmpegProcess? p) =>
        p?.ExitCode switch
        {
            null => "still running or unknown exit",
            > 128 and < 160 and var code => $"killed by signal {code - 128}",
            var code => $"exit code {code}",
        };

    private void Check()
    {
        lock (_gate)
        {
            if (_stopping)
                return;
        }
        // ffmpeg may die between frames (killed, out of memory): noticed here, not only on the next write.
        if (_process is { HasExited: true } p && Failure is null)
        {
            Fail($"ffmpeg exited unexpectedly ({Exit(p)}): {p.StderrSummary()}".TrimEnd(' ', ':'));
        }
        var bytes = FileBytes();
        string? limit = null;
        string? metric = null;
        if (_s.MaxDurationSeconds > 0 && DateTimeOffset.UtcNow - Started >= TimeSpan.FromSeconds(_s.MaxDurationSeconds))
        {
            (limit, metric) = ($"recording:max_duration_s reached ({_s.MaxDurationSeconds} s)", "max_duration_s");
        }
        else if (_s.MaxBytes > 0 && bytes >= _s.MaxBytes)
        {
            (limit, metric) = ($"recording:max_bytes reached ({bytes} of {_s.MaxBytes} bytes)", "max_bytes");
        }
        else if (_s.MinFreeMb > 0 && RecordingRegistry.FreeMb(Folder) is { } free && free < _s.MinFreeMb)
        {
            (limit, metric) = (
                $"recording:min_free_mb reached ({free} MiB free, {_s.MinFreeMb} MiB kept)",
                "min_free_mb"
            );
        }
        if (limit is not null)
        {
            lock (_gate)
            {
                if (_limit is not null || _failure is not null)
                    return;
                _limit = limit;
            }
            RecordingMetrics.LimitReached(metric!);
            LogLimit(_log, _s.Source, limit);
            _ = StopAsync("limit");
            return;
        }
        try
        {
            WriteSidecar(Failure is null ? RecordingStates.Live : RecordingStates.Failed, Failure, null);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            LogSidecarFailed(_log, _s.Source, e.Message);
        }
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
        get
        {
            lock (_gate)
                return _failure;
        }
    }

    public RecordingStats Snapshot() => new(_s.Id, _s.Source, _s.Path, _s.Kind, _s.Fps, Frames, Dropped, StartedUnixMs);

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
            if (_failure is not null)
                return;
        }
        Interlocked.Exchange(ref _lastFrameTick, Environment.TickCount64);
        _queue.Writer.TryWrite(frame);
    }

    private async Task WriteLoopAsync()
    {
        await foreach (var frame in _queue.Reader.ReadAllAsync().ConfigureAwait(false))
        {
            if (Failure is not null)
                continue; // drain
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
                Fail($"ffmpeg stopped taking frames ({Exit(_process)}): {_process?.StderrSummary()}".TrimEnd(' ', ':'));
            }
        }
    }

    private FfmpegProcess StartFfmpeg(byte[] firstFrame)
    {
        // The first frame fixes the size for the whole file: one whose header gives no size, or a bigger one than
        // recording:max_pixels, is refused before ffmpeg allocates anything for it.
        if (!JpegInfo.TryGetSize(firstFrame, out var w, out var h))
            throw new FfmpegStartException("the first frame's JPEG header does not give its size");
        if ((long)w * h > _s.MaxPixels)
            throw new FfmpegStartException(
                $"the first frame is {w}x{h}, more than recording:max_pixels ({_s.MaxPixels})"
            );
        var args = RecorderArgs(_s, w, h);
        var fps = _s.Fps.ToString("0.###", CultureInfo.InvariantCulture);
        var p = FfmpegProcess.Start(_s.FfmpegPath, args);
        LogStarted(_log, _s.Source, p.Pid, _s.Path, w, h, fps);
        return p;
    }

    /// <summary>The ffmpeg command line of a recording of <paramref name="width"/> x <paramref name="height"/>
    /// frames.</summary>
    internal static List<string> RecorderArgs(Settings s, int width, int height)
    {
        var fps = s.Fps.ToString("0.###", CultureInfo.InvariantCulture);
        var gop = Math.Max(1, (int)Math.Ceiling(s.Fps)).ToString(CultureInfo.InvariantCulture);
        var args = new List<string>
        {
            "-hide_banner",
            "-nostats",
            "-loglevel",
            "error",
            // Start writing with the first frame (the default probe holds ~5 s of input back), and let the mjpeg
            // decoder refuse a later frame bigger than the limit (a frame's few KB can declare a gigapixel).
            "-probesize",
            "32",
            "-analyzeduration",
            "0",
            "-max_pixels",
            s.MaxPixels.ToString(CultureInfo.InvariantCulture),
            "-f",
            "image2pipe",
            "-framerate",
            fps,
            "-c:v",
            "mjpeg",
            "-i",
            "pipe:0",
            "-an",
            // H.264 in yuv420p needs even dimensions.
            "-vf",
            $"scale={width & ~1}:{height & ~1}:flags=bicubic,format=yuv420p",
        };
        args.AddRange(s.FpsModeOption ? ["-fps_mode", "passthrough"] : ["-vsync", "passthrough"]);
        // Crash-safe MP4: a keyframe every second (-g = fps frames), one fragment per keyframe written as soon as it
        // is complete, no encoder lookahead holding frames back (zerolatency). A killed writer loses at most the
        // fragment in progress (about a second).
        args.AddRange([
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-tune",
            "zerolatency",
            "-g",
            gop,
            "-pix_fmt",
            "yuv420p",
            "-movflags",
            "frag_keyframe+empty_moov+default_base_moof",
            "-flush_packets",
            "1",
            "-f",
            "mp4",
            "-n",
            s.Path,
        ]);
        return args;
    }

    private void Fail(string detail)
    {
        lock (_gate)
        {
            if (_failure is not null)
                return;
            _failure = detail;
        }
        RecordingMetrics.Failed.Add(1);
        LogFailed(_log, _s.Source, detail);
        _process?.Kill();
    }

    /// <summary>Ends the recording: queued frames are written, stdin closed, ffmpeg writes its last fragment
    /// (killed after <see cref="FinalizeTimeout"/>), the sidecar gets the outcome. Idempotent: every caller gets
    /// the result of the first stop.</summary>
    public Task<RecordingResult> StopAsync(string ended)
    {
        lock (_gate)
        {
            _stopping = true;
            return _stop ??= Task.Run(() => StopCoreAsync(ended));
        }
    }

    private async Task<RecordingResult> StopCoreAsync(string ended)
    {
        await _monitorStop.CancelAsync().ConfigureAwait(false);
        await _monitor.ConfigureAwait(false);
        var shutdown = ended == "service_stopping";
        _queue.Writer.TryComplete();
        try
        {
            await _writer.WaitAsync(shutdown ? ShutdownDrainTimeout : DrainTimeout).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            Fail("writing queued frames timed out");
        }

        var written = false;
        string? detail;
        lock (_gate)
            detail = _failure;
        if (_process is { } p)
        {
            p.CloseStdin();
            var finalize = shutdown ? ShutdownFinalizeTimeout : FinalizeTimeout;
            var exited = await p.WaitForExitAsync(finalize).ConfigureAwait(false);
            if (!exited)
            {
                detail ??= $"ffmpeg did not finalize the file within {finalize.TotalSeconds:0} s";
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
        string? failure;
        string? limit;
        lock (_gate)
            (failure, limit) = (_failure, _limit);
        var failed = detail is not null && failure is not null;
        var state = failed ? RecordingStates.Failed : RecordingStates.Done;
        var reason = failed ? detail : limit ?? (ended == "stopped" ? null : detail ?? ended);
        var result = new RecordingResult(
            _s.Id,
            _s.Source,
            _s.Path,
            frames,
            Math.Round(frames / _s.Fps, 3),
            Dropped,
            failed ? "failed" : ended,
            detail ?? limit,
            written
        )
        {
            State = state,
            Reason = reason,
        };
        if (written || File.Exists(_s.Path))
        {
            try
            {
                WriteSidecar(state, reason, DateTimeOffset.UtcNow);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                LogSidecarFailed(_log, _s.Source, e.Message);
            }
        }
        else
        {
            // Nothing was recorded: no entry is left in the list.
            try
            {
                File.Delete(RecordingRegistry.SidecarOf(_s.Path));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                LogSidecarFailed(_log, _s.Source, e.Message);
            }
        }
        _monitorStop.Dispose();
        LogStopped(
            _log,
            _s.Source,
            result.Ended,
            frames,
            Dropped,
            Interlocked.Read(ref _stale),
            Interlocked.Read(ref _otherKind),
            _s.Path
        );
        return result;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "recording {Source}: {Limit}, ending it")]
    private static partial void LogLimit(ILogger log, string source, string limit);

    [LoggerMessage(
        Level = LogLevel.Warning,
        Message = "recording {Source}: its registry sidecar could not be written: {Detail}"
    )]
    private static partial void LogSidecarFailed(ILogger log, string source, string detail);

    [LoggerMessage(
        Level = LogLevel.Information,
        Message = "recording {Source}: ffmpeg [{Pid}] writing {Path} ({Width}x{Height} @ {Fps} fps)"
    )]
    private static partial void LogStarted(
        ILogger log,
        string source,
        int pid,
        string path,
        int width,
        int height,
        string fps
    );

    [LoggerMessage(Level = LogLevel.Warning, Message = "recording {Source} failed: {Detail}")]
    private static partial void LogFailed(ILogger log, string source, string detail);

    [LoggerMessage(
        Level = LogLevel.Information,
        Message = "recording {Source} ended ({Ended}): {Frames} frames, {Dropped} dropped, {Stale} stale, {OtherKind} of the other kind -> {Path}"
    )]
    private static partial void LogStopped(
        ILogger log,
        string source,
        string ended,
        long frames,
        long dropped,
        long stale,
        long otherKind,
        string path
    );
}
