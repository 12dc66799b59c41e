using System.Buffers;
using System.IO.Pipelines;
using System.Threading.Channels;
using Blankend.Orleans.Codec;
using Blankend.Orleans.Telemetry;
using Microsoft.Extensions.Logging;

namespace Blankend.Orleans.Grains.Codec;

/// <summary>
/// One live <c>/video_codec</c> stream: one ffmpeg process (Annex-B on stdin, JPEGs on stdout), all I/O async.
/// <list type="bullet">
/// <item>Input: <see cref="PushAsync"/> writes each chunk to stdin and completes when ffmpeg has taken it
/// (backpressure, never a drop: a coded stream with a hole is corrupt).</item>
/// <item>Output: a <see cref="PipeReader"/> over stdout and the marker-walking <see cref="JpegFrameSplitter"/>;
/// each JPEG becomes a <see cref="FrameEnvelope"/> (raw, origin VideoCodec, timestamp = decode time) in a small
/// queue (newest wins, drops counted) that a single loop publishes, one awaited call at a time, in order.</item>
/// <item>Errors: every stderr line counts (ffmpeg runs at <c>-loglevel error</c>); too many without a frame,
/// too many bytes without a frame, or no Annex-B start code at all ends the session as undecodable input.</item>
/// <item>GPU: a GPU decoder that fails (exits, or cannot decode) is replaced by the CPU decoder, fed again from
/// the last parameter set so that it starts cleanly; frames already published are skipped, not repeated.</item>
/// <item>End: client close, idle timeout, service stop (graceful: stdin closed, ffmpeg drains, killed after
/// <see cref="DrainTimeout"/>) or failure (killed at once). In every case the process is reaped within 5 s of
/// the client's disconnect (gateway flush at most 1-2 s, then at most 2 s of drain, then SIGKILL).</item>
/// </list>
/// Thread-safe: called from a grain, its loops run on the thread pool.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage(
    "Design",
    "CA1001",
    Justification = "_idle is a one-shot timer re-armed per chunk, unrooted once it fired, and collected with the session; "
        + "_writeLock is a SemaphoreSlim whose wait handle is never created, so it holds no OS resource."
)]
internal sealed partial class DecodeSession
{
    public static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(2);

    /// <summary>Bytes with no start code after which the input is called garbage.</summary>
    public const int StartCodeWindow = 64 * 1024;

    /// <summary>Bound of the replay kept for a GPU -> CPU restart.</summary>
    public const int ReplayMaxBytes = 8 * 1024 * 1024;

    /// <summary>Decoded frames waiting to be published. Deep enough for a decoder burst (catching up after a
    /// restart, draining at the end); when the cluster is slower than the decoder, the oldest frame is dropped
    /// and counted (live video: the newest wins, the decoder never waits on the cluster).</summary>
    private const int FrameQueue = 16;

    public sealed record Settings(
        string ClientId,
        string Codec,
        string FfmpegPath,
        DecoderPlan Plan,
        DecoderPlan? Fallback,
        int ProbeSize,
        int Qscale,
        bool FpsModeOption,
        TimeSpan IdleTimeout,
        int MaxErrorsWithoutFrame,
        long MaxBytesWithoutFrame,
        long MaxPixels = 40_000_000
    );

    /// <summary>What the session tells its owner (the silo's codec host).</summary>
    public interface IEvents
    {
        void OnGpuFallback(DecodeSession session, string from, string detail);

        void OnEnded(DecodeSession session, DecodeSessionEnd end);
    }

    private readonly Settings _s;
    private readonly Func<FrameEnvelope, Task> _publish;
    private readonly IEvents _events;
    private readonly ILogger _log;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly Lock _gate = new();
    private readonly Channel<FrameEnvelope> _frames;
    private readonly TaskCompletionSource<DecodeSessionEnd> _ended = new(
        TaskCreationOptions.RunContinuationsAsynchronously
    );
    private readonly Timer _idle;
    private readonly AnnexBScanner _scanner;
    private readonly Task _publisher;

    private DecoderPlan _plan;
    private DecoderPlan? _fallback;
    private ReplayBuffer? _replay;
    private Run? _run;
    private DecodeSessionEnd? _endRequest; // set once: why we are ending (the monitor finishes with it)
    private bool _graceful; // the end request drains instead of killing
    private bool _finishing;
    private bool _everStarted;

    private long _bytesIn;
    private long _chunks;
    private long _frameCount; // frames out of ffmpeg (published or queued), across restarts
    private long _framesAtMark;
    private long _errors;
    private long _errorsSinceFrame;
    private long _bytesSinceFrame;
    private long _dropped;
    private long _publishErrors;
    private long _published;
    private int _restarts;
    private bool _graceUntilFirstFrame;
    private long _firstChunkTick;
    private double? _firstFrameMs;
    private long _fpsBucketStart;
    private long _fpsBucketFrames;
    private double _fps;
    private long _lastFrameTick;
    private long _lastPublishErrorLog;
    private long _framesAtLastLog;
    private readonly KeyValuePair<string, object?> _codecTag;

    public DecodeSession(Settings settings, Func<FrameEnvelope, Task> publish, IEvents events, ILogger log)
    {
        _s = settings;
        _publish = publish;
        _events = events;
        _log = log;
        _plan = settings.Plan;
        _fallback = settings.Fallback;
        _scanner = new AnnexBScanner(settings.Codec);
        _codecTag = CodecMetrics.CodecTag(settings.Codec);
        if (_plan.Gpu && _fallback is not null)
            _replay = new ReplayBuffer(ReplayMaxBytes);
        _frames = Channel.CreateBounded<FrameEnvelope>(
            new BoundedChannelOptions(FrameQueue) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true },
            _ =>
            {
                Interlocked.Increment(ref _dropped);
                CodecMetrics.FramesDroppedDecoded.Add(1, _codecTag);
            }
        );
        StartedUnixMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        _publisher = Task.Run(PublishLoopAsync);
        _idle = new Timer(_ => OnIdle(), null, settings.IdleTimeout, Timeout.InfiniteTimeSpan);
    }

    public string ClientId => _s.ClientId;

    public string Codec => _s.Codec;

    public long StartedUnixMs { get; }

    /// <summary>Completes once the session is over and its process reaped.</summary>
    public Task<DecodeSessionEnd> Completion => _ended.Task;

    public bool IsEnded => _ended.Task.IsCompleted;

    /// <summary>The decoder in use now (after a fallback: the CPU one).</summary>
    public DecoderPlan Plan
    {
        get
        {
            lock (_gate)
                return _plan;
        }
    }

    public int? Pid
    {
        get
        {
            lock (_gate)
                return _run?.Process.Pid;
        }
    }

    /// <summary>Decoded frames per second over the last second (0 when no frame came for 2 s).</summary>
    public double CurrentFps
    {
        get
        {
            lock (_gate)
                return _lastFrameTick == 0 || Environment.TickCount64 - _lastFrameTick > 2000 ? 0 : _fps;
        }
    }

    /// <summary>Frames decoded since the previous call (the periodic <c>ffmpeg decoded fps</c> line), and the
    /// total.</summary>
    public (long Frames, long Total, long Dropped) TakeLogWindow()
    {
        var total = Interlocked.Read(ref _frameCount);
        var previous = Interlocked.Exchange(ref _framesAtLastLog, total);
        return (total - previous, total, Interlocked.Read(ref _dropped));
    }

    public DecodeSessionStats Snapshot()
    {
        lock (_gate)
        {
            var now = Environment.TickCount64;
            var fps = _lastFrameTick == 0 || now - _lastFrameTick > 2000 ? 0 : _fps;
            return new DecodeSessionStats(
                _s.ClientId,
                _s.Codec,
                _plan.Decoder,
                _plan.Gpu,
                Math.Round(fps, 1),
                Interlocked.Read(ref _frameCount),
                Interlocked.Read(ref _bytesIn),
                Interlocked.Read(ref _chunks),
                Interlocked.Read(ref _errors),
                Interlocked.Read(ref _dropped),
                StartedUnixMs,
                _run?.Process.Pid,
                _restarts,
                _firstFrameMs
            );
        }
    }

    /// <summary>Feeds one chunk. Null while the session lives; the end once it is over (the chunk is then not
    /// used).</summary>
    public async ValueTask<DecodeSessionEnd?> PushAsync(ReadOnlyMemory<byte> chunk)
    {
        if (_ended.Task.IsCompleted)
            return _ended.Task.Result;
        SetIdle(_s.IdleTimeout);
        await _writeLock.WaitAsync().ConfigureAwait(false);
        try
        {
            Run run;
            lock (_gate)
            {
                if (_endRequest is not null)
                    return _ended.Task.IsCompleted ? _ended.Task.Result : _endRequest;
                if (_firstChunkTick == 0)
                    _firstChunkTick = Environment.TickCount64;
                _chunks++;
                _bytesIn += chunk.Length;
                _bytesSinceFrame += chunk.Length;

                var mark = _scanner.Scan(chunk.Span);
                if (!_scanner.SawStartCode && _bytesIn >= StartCodeWindow)
                {
                    RequestEndLocked(
                        End(
                            DecodeEndReasons.InvalidStream,
                            "decode_failed",
                            $"no Annex-B start code (00 00 01) in the first {_bytesIn} bytes: this is not an {_s.Codec.ToUpperInvariant()} elementary stream",
                            1007
                        ),
                        graceful: false
                    );
                    return _endRequest;
                }
                if (_bytesSinceFrame > _s.MaxBytesWithoutFrame)
                {
                    RequestEndLocked(
                        End(
                            DecodeEndReasons.DecodeFailed,
                            "decode_failed",
                            $"no frame decoded from {_bytesSinceFrame} bytes of input (codec:max_bytes_without_frame): is it {_s.Codec}? ffmpeg: {_run?.Process.StderrSummary() ?? "-"}",
                            1007
                        ),
                        graceful: false
                    );
                    return _endRequest;
                }
                if (_replay is not null && _replay.Append(chunk.Span, mark))
                    _framesAtMark = _frameCount;

                if (_run is null)
                {
                    // Only the first chunk starts a process; later ones find the current one (a replacement is
                    // started by the monitor of the one it replaces, never here).
                    if (_everStarted || StartRunLocked(_plan, skip: 0) is null)
                        return _endRequest;
                }
                run = _run!;
            }
            try
            {
                await run.Ready.Task.ConfigureAwait(false);
                await run.Process.Stdin.WriteAsync(chunk).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException or OperationCanceledException)
            {
                // ffmpeg is gone or going: its monitor decides (CPU restart fed from the replay, which holds this
                // chunk, or the end of the session).
            }
        }
        finally
        {
            _writeLock.Release();
        }
        return _ended.Task.IsCompleted ? _ended.Task.Result : null;
    }

    /// <summary>Graceful end (client closed, service stopping): end of input, ffmpeg drains, then it is killed
    /// if still there.</summary>
    public void Stop(string reason, string? error = null, string detail = "", int closeStatus = 1000)
    {
        lock (_gate)
        {
            RequestEndLocked(End(reason, error, detail, closeStatus), graceful: true);
        }
    }

    /// <summary>Immediate end: the process is killed now.</summary>
    public void Kill(string reason, string? error, string detail, int closeStatus)
    {
        lock (_gate)
        {
            RequestEndLocked(End(reason, error, detail, closeStatus), graceful: false);
        }
    }

    private void SetIdle(TimeSpan due)
    {
        try
        {
            _idle.Change(due, Timeout.InfiniteTimeSpan);
        }
        catch (ObjectDisposedException) { }
    }

    private void OnIdle()
    {
        var idleS = (int)_s.IdleTimeout.TotalSeconds;
        string detail;
        lock (_gate)
        {
            detail =
                _bytesIn == 0 ? $"no data for {idleS} s"
                : _frameCount == 0
                    ? $"no data for {idleS} s and no frame decoded from {_bytesIn} bytes (truncated or not {_s.Codec}?)"
                : $"no data for {idleS} s";
        }
        Stop(DecodeEndReasons.IdleTimeout, "idle_timeout", detail, 1001);
    }

    private DecodeSessionEnd End(string reason, string? error, string detail, int closeStatus) =>
        new(reason, error, detail, closeStatus, Interlocked.Read(ref _frameCount));

    private void RequestEndLocked(DecodeSessionEnd end, bool graceful)
    {
        if (_endRequest is not null)
        {
            // A graceful end already under way may still be hurried up by a failure (e.g. drain timeout).
            if (!graceful && _graceful && _run is { } r0)
            {
                _graceful = false;
                r0.Process.Kill();
            }
            return;
        }
        _endRequest = end;
        _graceful = graceful;
        SetIdle(Timeout.InfiniteTimeSpan);
        LogEnding(_log, _s.ClientId, end.Reason, end.Detail);
        if (_run is not { } run)
        {
            _ = Task.Run(() => FinishAsync(end));
            return;
        }
        if (graceful)
            _ = Task.Run(() => DrainAsync(run));
        else
            run.Process.Kill();
    }

    private async Task DrainAsync(Run run)
    {
        // Close stdin once no write is in flight (a write blocked on a stuck ffmpeg must not hold this up).
        if (await _writeLock.WaitAsync(TimeSpan.FromSeconds(1)).ConfigureAwait(false))
        {
            try
            {
                run.Process.CloseStdin();
            }
            finally
            {
                _writeLock.Release();
            }
        }
        else
        {
            run.Process.Kill();
        }
        if (!await run.Process.WaitForExitAsync(DrainTimeout).ConfigureAwait(false))
            run.Process.Kill();
    }

    /// <summary>Starts ffmpeg with <paramref name="plan"/>; null (and the session ending) when it cannot
    /// start.</summary>
    private Run? StartRunLocked(DecoderPlan plan, long skip, bool awaitReplay = false)
    {
        var args = DecoderSelector.DecodeArgs(plan, _s.ProbeSize, _s.Qscale, _s.FpsModeOption, _s.MaxPixels);
        Run? run = null;
        FfmpegProcess process;
        try
        {
            process = FfmpegProcess.Start(_s.FfmpegPath, args, line => OnStderrLine(run, line));
        }
        catch (FfmpegStartException e)
        {
            RequestEndLocked(
                End(DecodeEndReasons.DecoderUnavailable, "decoder_unavailable", e.Message, 1011),
                graceful: false
            );
            return null;
        }
        run = new Run(process, plan, skip);
        if (!awaitReplay)
            run.Ready.TrySetResult();
        _run = run;
        _everStarted = true;
        _errorsSinceFrame = 0;
        LogStarted(_log, _s.ClientId, plan.Decoder, process.Pid, skip);
        run.Output = Task.Run(() => ReadFramesAsync(run));
        _ = Task.Run(() => MonitorAsync(run));
        return run;
    }

    private void OnStderrLine(Run? run, string line)
    {
        FfmpegLog.Stderr(_log, run?.Process.Pid ?? 0, line);
        Interlocked.Increment(ref _errors);
        var n = Interlocked.Increment(ref _errorsSinceFrame);
        // libavutil's av_image_check_size2 refusing a frame: the stream is too big, not something a retry fixes.
        if (run is not null && line.Contains("exceeds specified max pixel count", StringComparison.Ordinal))
        {
            lock (_gate)
            {
                if (_endRequest is not null || _run != run)
                    return;
                RequestEndLocked(
                    End(
                        DecodeEndReasons.DecodeFailed,
                        "decode_failed",
                        $"the stream's frames are bigger than codec:max_pixels ({_s.MaxPixels}): {line.Trim()}",
                        1007
                    ),
                    graceful: false
                );
            }
            return;
        }
        if (n < _s.MaxErrorsWithoutFrame || run is null)
            return;
        lock (_gate)
        {
            if (_endRequest is not null || _run != run || run.Replacing || _graceUntilFirstFrame)
                return;
            if (run.Plan.Gpu && _fallback is not null)
            {
                run.Replacing = true;
                run.FailureDetail = $"{n} decode errors without a frame: {run.Process.StderrSummary()}";
                run.Process.Kill();
                return;
            }
            RequestEndLocked(
                End(
                    DecodeEndReasons.DecodeFailed,
                    "decode_failed",
                    $"ffmpeg cannot decode the input as {_s.Codec} ({n} errors without a frame): {run.Process.StderrSummary()}",
                    1007
                ),
                graceful: false
            );
        }
    }

    private async Task ReadFramesAsync(Run run)
    {
        var reader = PipeReader.Create(
            run.Process.Stdout,
            new StreamPipeReaderOptions(
                pool: MemoryPool<byte>.Shared,
                bufferSize: 64 * 1024,
                minimumReadSize: 16 * 1024,
                leaveOpen: true
            )
        );
        var splitter = new JpegFrameSplitter();
        try
        {
            while (true)
            {
                var result = await reader.ReadAsync().ConfigureAwait(false);
                var buffer = result.Buffer;
                while (splitter.TryReadFrame(ref buffer, out var frame))
                    OnFrame(run, frame);
                if (result.IsCompleted)
                {
                    var truncated = splitter.Complete(buffer);
                    if (truncated > 0)
                        LogTruncatedOutput(_log, _s.ClientId, truncated);
                    reader.AdvanceTo(buffer.End);
                    break;
                }
                reader.AdvanceTo(buffer.Start, buffer.End);
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or OperationCanceledException) { }
        finally
        {
            await reader.CompleteAsync().ConfigureAwait(false);
        }
    }

    private void OnFrame(Run run, in ReadOnlySequence<byte> frame)
    {
        var now = Environment.TickCount64;
        lock (_gate)
        {
            _errorsSinceFrame = 0;
            _bytesSinceFrame = 0;
            _graceUntilFirstFrame = false;
            if (run.Skip > 0)
            {
                // Already published by the decoder this one replaces.
                run.Skip--;
                return;
            }
            _frameCount++;
            if (_firstFrameMs is null && _firstChunkTick != 0)
                _firstFrameMs = now - _firstChunkTick;
            if (_fpsBucketStart == 0)
                _fpsBucketStart = now;
            _fpsBucketFrames++;
            if (now - _fpsBucketStart >= 1000)
            {
                _fps = _fpsBucketFrames * 1000.0 / (now - _fpsBucketStart);
                _fpsBucketStart = now;
                _fpsBucketFrames = 0;
            }
            else if (_fps == 0 && now > _fpsBucketStart)
            {
                _fps = _fpsBucketFrames * 1000.0 / (now - _fpsBucketStart);
            }
            _lastFrameTick = now;
        }
        CodecMetrics.FramesDecoded.Add(1, _codecTag, CodecMetrics.DecoderTag(run.Plan));
        var payload = frame.ToArray(); // the envelope owns its bytes; the pipe's pooled buffers are reused
        var envelope = new FrameEnvelope(
            _s.ClientId,
            0,
            0,
            FrameKind.Raw,
            DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
            FrameOrigin.VideoCodec,
            payload
        );
        _frames.Writer.TryWrite(envelope);
    }

    private async Task PublishLoopAsync()
    {
        await foreach (var frame in _frames.Reader.ReadAllAsync().ConfigureAwait(false))
        {
            try
            {
                await _publish(frame).ConfigureAwait(false);
                Interlocked.Increment(ref _published);
                BlankendMetrics.FramesIn.Add(1, BlankendMetrics.Endpoints.VideoCodec);
                BlankendMetrics.BytesIn.Add(frame.Payload.Length, BlankendMetrics.Endpoints.VideoCodec);
            }
            catch (Exception e)
            {
                Interlocked.Increment(ref _publishErrors);
                var now = Environment.TickCount64;
                if (now - Interlocked.Read(ref _lastPublishErrorLog) > 1000)
                {
                    Interlocked.Exchange(ref _lastPublishErrorLog, now);
                    LogPublishFailed(_log, e, _s.ClientId);
                }
            }
        }
    }

    /// <summary>Waits for one ffmpeg process to end and decides what follows: the session's end, or (a GPU
    /// decoder that failed) the CPU decoder, started in the same critical section so that no chunk can reach a
    /// third process in between.</summary>
    private async Task MonitorAsync(Run run)
    {
        await run.Process.StderrDone.ConfigureAwait(false);
        if (!await run.Process.WaitForExitAsync(FfmpegProcess.ReapTimeout).ConfigureAwait(false))
        {
            // stderr closed but the process lives on (it should not): make sure it ends.
            await run.Process.KillAndReapAsync().ConfigureAwait(false);
        }
        try
        {
            await run.Output!.WaitAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false);
        }
        catch (TimeoutException) { }
        var exit = run.Process.ExitCode;
        var stderr = run.Process.StderrSummary();

        DecodeSessionEnd? end = null;
        Run? replacement = null;
        ReplayBuffer? replay = null;
        lock (_gate)
        {
            if (_run == run)
                _run = null;
            if (_endRequest is not null)
            {
                end = _endRequest;
            }
            else if (run.Plan.Gpu && _fallback is not null)
            {
                var cpu = _fallback;
                _fallback = null;
                _plan = cpu;
                _restarts++;
                replay = _replay is { Valid: true } ? _replay : null;
                _replay = null;
                // Frames the failed decoder produced since the replay point would come out again: skip them.
                var skip = replay is null ? 0 : _frameCount - _framesAtMark;
                _graceUntilFirstFrame = replay is null; // starting mid-GOP: errors until the next keyframe are expected
                replacement = StartRunLocked(cpu, skip, awaitReplay: replay is not null);
                if (replacement is null)
                    end = _endRequest;
            }
            else
            {
                var detail =
                    $"ffmpeg ({run.Plan.Decoder}) exited with code {exit?.ToString() ?? "?"}"
                    + (stderr.Length > 0 ? ": " + stderr : "");
                // Exit 1 with decode errors is bad input; anything else is the decoder's own failure.
                var input = exit == 1 && run.Process.StderrLines > 0;
                _endRequest = End(
                    input ? DecodeEndReasons.DecodeFailed : DecodeEndReasons.FfmpegExited,
                    "decode_failed",
                    detail,
                    input ? 1007 : 1011
                );
                end = _endRequest;
            }
        }
        await run.Process.DisposeAsync().ConfigureAwait(false);
        if (replacement is not null)
        {
            var detail = run.FailureDetail ?? $"exit {exit?.ToString() ?? "?"}: {stderr}";
            LogGpuFallback(
                _log,
                _s.ClientId,
                run.Plan.Decoder,
                replacement.Plan.Decoder,
                exit?.ToString() ?? "?",
                detail,
                replay?.Bytes ?? 0
            );
            CodecMetrics.DecoderFallbacks.Add(1, _codecTag, CodecMetrics.DecoderTag(run.Plan));
            _events.OnGpuFallback(this, run.Plan.Decoder, detail);
            try
            {
                // Chunks pushed meanwhile wait for this (Run.Ready), so the stream stays in order.
                if (replay is not null)
                {
                    foreach (var part in replay.Parts)
                        await replacement.Process.Stdin.WriteAsync(part).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException)
            {
                // The CPU decoder died as well: its monitor ends the session.
            }
            finally
            {
                replacement.Ready.TrySetResult();
            }
            return;
        }
        await FinishAsync(end!).ConfigureAwait(false);
    }

    private async Task FinishAsync(DecodeSessionEnd end)
    {
        lock (_gate)
        {
            if (_finishing)
                return;
            _finishing = true;
        }
        await _idle.DisposeAsync().ConfigureAwait(false);
        _frames.Writer.TryComplete();
        try
        {
            await _publisher.WaitAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false);
        }
        catch (TimeoutException) { }
        var final = end with { Frames = Interlocked.Read(ref _frameCount) };
        LogEnded(
            _log,
            _s.ClientId,
            final.Reason,
            final.Frames,
            Interlocked.Read(ref _bytesIn),
            Interlocked.Read(ref _dropped)
        );
        try
        {
            _events.OnEnded(this, final);
        }
        catch (Exception e)
        {
            LogEventFailed(_log, e, _s.ClientId);
        }
        _ended.TrySetResult(final);
    }

    private sealed class Run(FfmpegProcess process, DecoderPlan plan, long skip)
    {
        /// <summary>Completes once the process may take new chunks (after the replay, for a replacement).</summary>
        public TaskCompletionSource Ready { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public FfmpegProcess Process { get; } = process;
        public DecoderPlan Plan { get; } = plan;
        public long Skip { get; set; } = skip;
        public Task? Output { get; set; }
        public bool Replacing { get; set; }
        public string? FailureDetail { get; set; }
    }

    [LoggerMessage(
        Level = LogLevel.Information,
        Message = "decode {ClientId}: ffmpeg [{Pid}] started with {Decoder} (skipping {Skip} replayed frames)"
    )]
    private static partial void LogStarted(ILogger log, string clientId, string decoder, int pid, long skip);

    [LoggerMessage(Level = LogLevel.Information, Message = "decode {ClientId}: ending ({Reason}) {Detail}")]
    private static partial void LogEnding(ILogger log, string clientId, string reason, string detail);

    [LoggerMessage(
        Level = LogLevel.Information,
        Message = "decode {ClientId}: ended ({Reason}) after {Frames} frames, {Bytes} bytes in, {Dropped} frames dropped"
    )]
    private static partial void LogEnded(
        ILogger log,
        string clientId,
        string reason,
        long frames,
        long bytes,
        long dropped
    );

    [LoggerMessage(
        Level = LogLevel.Warning,
        Message = "decode {ClientId}: GPU decoder {From} failed (exit {Exit}: {Detail}); restarting on the CPU decoder {To} with {ReplayBytes} bytes replayed"
    )]
    private static partial void LogGpuFallback(
        ILogger log,
        string clientId,
        string from,
        string to,
        string exit,
        string detail,
        long replayBytes
    );

    [LoggerMessage(
        Level = LogLevel.Debug,
        Message = "decode {ClientId}: {Bytes} bytes of an unfinished JPEG at the end of ffmpeg's output"
    )]
    private static partial void LogTruncatedOutput(ILogger log, string clientId, long bytes);

    [LoggerMessage(Level = LogLevel.Warning, Message = "decode {ClientId}: publishing a decoded frame failed")]
    private static partial void LogPublishFailed(ILogger log, Exception e, string clientId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "decode {ClientId}: end notification failed")]
    private static partial void LogEventFailed(ILogger log, Exception e, string clientId);
}
