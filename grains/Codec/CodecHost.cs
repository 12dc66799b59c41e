using System.Collections.Concurrent;
using Blankend.Orleans.Codec;
using Blankend.Orleans.Configuration;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Blankend.Orleans.Grains.Codec;

/// <summary>
/// The ffmpeg side of one silo: its probed capabilities (once, at start-up), the decoder choice, the live decode
/// sessions and recordings (so that none outlives the silo), and the counters the status API shows.
/// </summary>
internal sealed partial class CodecHost : DecodeSession.IEvents, IAsyncDisposable
{
    /// <summary>GPU decoders failing this many times on a host make it stop choosing the GPU.</summary>
    public const int GpuFailuresBeforeDisable = 3;

    private readonly CodecOptions _options;
    private readonly RecordingOptions _recording;
    private readonly IGrainFactory _grains;
    private readonly ILoggerFactory _loggers;
    private readonly ILogger<CodecHost> _log;
    private readonly Lazy<Task<FfmpegCapabilities>> _caps;
    private readonly ConcurrentDictionary<DecodeSession, Action<DecodeSessionEnd>> _sessions = new();
    private readonly ConcurrentDictionary<Recorder, byte> _recorders = new();
    private readonly ConcurrentDictionary<string, long> _ended = new(StringComparer.Ordinal);
    private long _started;
    private long _gpuFallbacks;
    private long _framesDecoded;
    private long _recordingsStarted;
    private long _recordingsEnded;
    private int _gpuFailures;
    private volatile string? _gpuDisabled;

    // The periodic "ffmpeg decoded fps" lines: a loop that exists only while this host has live sessions.
    private readonly TimeSpan _statsInterval;
    private readonly Lock _statsGate = new();
    private readonly CancellationTokenSource _stopping = new();
    private bool _statsRunning;
    private Task _statsLoop = Task.CompletedTask;

    public CodecHost(
        IOptions<CodecOptions> options,
        IOptions<RecordingOptions> recording,
        IOptions<TelemetryOptions> telemetry,
        IGrainFactory grains,
        ILoggerFactory loggers
    )
        : this(
            options.Value,
            recording.Value,
            grains,
            loggers,
            null,
            TimeSpan.FromSeconds(telemetry.Value.StatsLogIntervalSeconds)
        ) { }

    /// <param name="probe">Replaces the ffmpeg probe (tests).</param>
    /// <param name="statsInterval">Period of the <c>ffmpeg decoded fps</c> lines
    /// (<c>telemetry:stats_log_interval_s</c>); zero or
    /// null: none.</param>
    public CodecHost(
        CodecOptions options,
        RecordingOptions recording,
        IGrainFactory grains,
        ILoggerFactory loggers,
        Func<Task<FfmpegCapabilities>>? probe,
        TimeSpan? statsInterval = null
    )
    {
        _options = options;
        _recording = recording;
        _grains = grains;
        _loggers = loggers;
        _log = loggers.CreateLogger<CodecHost>();
        _caps = new Lazy<Task<FfmpegCapabilities>>(() => Task.Run(probe ?? ProbeAndLogAsync));
        _statsInterval = statsInterval ?? TimeSpan.Zero;
    }

    public CodecOptions Options => _options;

    public RecordingOptions Recording => _recording;

    public string RecordingFolder => RecordingPaths.Folder(_recording.Folder);

    /// <summary>Probed once; the first caller (the start-up hook) starts the probe.</summary>
    public Task<FfmpegCapabilities> Capabilities => _caps.Value;

    public string? GpuDisabledReason => _gpuDisabled;

    private async Task<FfmpegCapabilities> ProbeAndLogAsync()
    {
        var caps = await FfmpegProber.ProbeAsync(_options.FfmpegPath, _options.PreferGpu).ConfigureAwait(false);
        if (!caps.Available)
        {
            LogUnavailable(_log, caps.Error!);
            return caps;
        }
        var (usable, reason) = DecoderSelector.GpuState(caps, null);
        var h264 = DecoderSelector.Choose(VideoCodecs.H264, caps).Primary?.Decoder ?? "none";
        var hevc = DecoderSelector.Choose(VideoCodecs.Hevc, caps).Primary?.Decoder ?? "none";
        LogProbed(_log, caps.ResolvedPath ?? caps.ConfiguredPath, caps.Version ?? "?", h264, hevc, usable, reason);
        if (!caps.CanRecord)
            LogNoRecording(_log);
        return caps;
    }

    /// <summary>A new session for <paramref name="clientId"/>, or why there can be none.</summary>
    public async Task<(DecodeSession? Session, string? Unavailable)> OpenSessionAsync(
        string clientId,
        string codec,
        Action<DecodeSessionEnd> onEnded
    )
    {
        var caps = await Capabilities.ConfigureAwait(false);
        var choice = DecoderSelector.Choose(codec, caps, _gpuDisabled);
        if (choice.Primary is null)
            return (null, choice.Unavailable);
        var settings = new DecodeSession.Settings(
            clientId,
            codec,
            _options.FfmpegPath,
            choice.Primary,
            choice.Fallback,
            _options.ProbeSize,
            _options.MjpegQscale,
            caps.HasFpsMode,
            TimeSpan.FromSeconds(_options.IdleTimeoutSeconds),
            _options.MaxErrorsWithoutFrame,
            _options.MaxBytesWithoutFrame,
            _options.MaxPixels
        );
        var client = _grains.GetGrain<IClientGrain>(clientId);
        var session = new DecodeSession(settings, client.Publish, this, _loggers.CreateLogger<DecodeSession>());
        _sessions[session] = onEnded;
        Interlocked.Increment(ref _started);
        CodecMetrics.SessionStarted(session);
        EnsureStatsLoop();
        return (session, null);
    }

    private void EnsureStatsLoop()
    {
        if (_statsInterval <= TimeSpan.Zero)
            return;
        lock (_statsGate)
        {
            if (_statsRunning || _stopping.IsCancellationRequested)
                return;
            _statsRunning = true;
            // Not in the flow of the grain call that opened the first session (its RequestContext, its span).
            using (ExecutionContext.SuppressFlow())
                _statsLoop = Task.Run(StatsLoopAsync);
        }
    }

    /// <summary>One <c>ffmpeg decoded fps</c> line per live session per interval (also for a session that decoded
    /// nothing in it: a stalled decoder shows as 0 fps). Ends on the first tick without sessions.</summary>
    private async Task StatsLoopAsync()
    {
        using var timer = new PeriodicTimer(_statsInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(_stopping.Token).ConfigureAwait(false))
            {
                var seconds = _statsInterval.TotalSeconds;
                foreach (var session in _sessions.Keys)
                {
                    if (session.IsEnded)
                        continue;
                    var (frames, total, dropped) = session.TakeLogWindow();
                    var plan = session.Plan;
                    LogDecodedFps(
                        _log,
                        frames / seconds,
                        session.ClientId,
                        frames,
                        seconds,
                        session.Codec,
                        plan.Decoder,
                        plan.Gpu ? "gpu" : "cpu",
                        total,
                        dropped
                    );
                }
                lock (_statsGate)
                {
                    if (_sessions.IsEmpty)
                    {
                        _statsRunning = false;
                        return;
                    }
                }
            }
        }
        catch (OperationCanceledException) { }
    }

    public void OnGpuFallback(DecodeSession session, string from, string detail)
    {
        Interlocked.Increment(ref _gpuFallbacks);
        if (Interlocked.Increment(ref _gpuFailures) >= GpuFailuresBeforeDisable && _gpuDisabled is null)
        {
            _gpuDisabled =
                $"disabled after {GpuFailuresBeforeDisable} GPU decoder failures on this host (last: {from}: {detail})";
            LogGpuDisabled(_log, _gpuDisabled);
        }
    }

    public void OnEnded(DecodeSession session, DecodeSessionEnd end)
    {
        _ended.AddOrUpdate(end.Reason, 1, (_, n) => n + 1);
        Interlocked.Add(ref _framesDecoded, end.Frames);
        CodecMetrics.SessionEnded(session, end.Reason);
        if (_sessions.TryRemove(session, out var callback))
            callback(end);
    }

    public Recorder StartRecorder(Recorder.Settings settings)
    {
        var recorder = new Recorder(settings, _loggers.CreateLogger<Recorder>());
        _recorders[recorder] = 0;
        Interlocked.Increment(ref _recordingsStarted);
        CodecMetrics.RecordingsActive.Add(1);
        return recorder;
    }

    public void RecorderEnded(Recorder recorder)
    {
        if (_recorders.TryRemove(recorder, out _))
        {
            Interlocked.Increment(ref _recordingsEnded);
            CodecMetrics.RecordingsActive.Add(-1);
        }
    }

    public async Task<CodecSiloReport> ReportAsync(string silo)
    {
        FfmpegCapabilities? caps = null;
        try
        {
            caps = await Capabilities.WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        }
        catch (TimeoutException) { }

        FfmpegReport ffmpeg;
        GpuReport gpu;
        var selected = new Dictionary<string, string>(StringComparer.Ordinal);
        if (caps is null)
        {
            ffmpeg = new FfmpegReport(
                _options.FfmpegPath,
                FfmpegProber.Resolve(_options.FfmpegPath),
                null,
                "probing",
                null,
                [],
                [],
                [],
                false
            );
            gpu = new GpuReport(false, "probing", []);
        }
        else
        {
            ffmpeg = new FfmpegReport(
                caps.ConfiguredPath,
                caps.ResolvedPath,
                caps.Version,
                caps.Available ? "ok" : "unavailable",
                caps.Error,
                caps.CpuDecoders,
                caps.GpuDecoders,
                [.. caps.Hwaccels.Order(StringComparer.Ordinal)],
                caps.CanRecord
            );
            var (usable, reason) = DecoderSelector.GpuState(caps, _gpuDisabled);
            gpu = new GpuReport(
                usable,
                reason,
                [.. caps.GpuProbes.Select(p => new GpuProbeReport(p.Codec, p.Decoder, p.Ok, p.Detail, p.Ms))]
            );
            foreach (var codec in VideoCodecs.Canonical)
            {
                var choice = DecoderSelector.Choose(codec, caps, _gpuDisabled);
                selected[codec] = choice.Primary is { } plan
                    ? plan.Decoder + (plan.Gpu ? " (gpu)" : " (cpu)")
                    : "unavailable: " + choice.Unavailable;
            }
        }
        var sessions = _sessions
            .Keys.Select(s => s.Snapshot())
            .OrderBy(s => s.ClientId, StringComparer.Ordinal)
            .ToArray();
        var liveFrames = sessions.Sum(s => s.Frames);
        var counters = new CodecCounterReport(
            Interlocked.Read(ref _started),
            new Dictionary<string, long>(_ended, StringComparer.Ordinal),
            Interlocked.Read(ref _gpuFallbacks),
            Interlocked.Read(ref _framesDecoded) + liveFrames,
            Interlocked.Read(ref _recordingsStarted),
            Interlocked.Read(ref _recordingsEnded)
        );
        var recordings = _recorders
            .Keys.Select(r => r.Snapshot())
            .OrderBy(r => r.Source, StringComparer.Ordinal)
            .ToArray();
        return new CodecSiloReport(silo, ffmpeg, gpu, selected, sessions, counters, recordings);
    }

    /// <summary>Silo stopping: every session and recording ends, every process is reaped.</summary>
    public async ValueTask DisposeAsync()
    {
        var ends = new List<Task>();
        foreach (var s in _sessions.Keys)
        {
            s.Kill(DecodeEndReasons.ServiceStopping, "service_stopping", "the service is stopping", 1001);
            ends.Add(s.Completion);
        }
        foreach (var r in _recorders.Keys)
            ends.Add(r.StopAsync("service_stopping"));
        // Within the host's 8 s shutdown timeout (a recorder's stop is bounded by its drain + finalize, 6 s).
        try
        {
            await Task.WhenAll(ends).WaitAsync(TimeSpan.FromSeconds(7)).ConfigureAwait(false);
        }
        catch (Exception e) when (e is TimeoutException or IOException) { }
        lock (_statsGate)
            _stopping.Cancel();
        await _statsLoop.ConfigureAwait(false);
        _stopping.Dispose();
    }

    [LoggerMessage(
        Level = LogLevel.Information,
        Message = "ffmpeg {Path} ({Version}): h264 -> {H264}, hevc -> {Hevc}; GPU usable: {Usable} ({Reason})"
    )]
    private static partial void LogProbed(
        ILogger log,
        string path,
        string version,
        string h264,
        string hevc,
        bool usable,
        string reason
    );

    [LoggerMessage(
        Level = LogLevel.Warning,
        Message = "ffmpeg unavailable: /video_codec sessions and recording are refused until it is installed and the service restarted. {Error}"
    )]
    private static partial void LogUnavailable(ILogger log, string error);

    [LoggerMessage(
        Level = LogLevel.Warning,
        Message = "this ffmpeg has no libx264 encoder (or no mjpeg decoder): recording is unavailable"
    )]
    private static partial void LogNoRecording(ILogger log);

    [LoggerMessage(
        Level = LogLevel.Information,
        Message = "ffmpeg decoded fps {Fps:F1}: {ClientId} {Frames} frames in {Seconds:0.##} s ({Codec}, decoder {Decoder} on {Device}); {Total} frames, {Dropped} dropped since the start"
    )]
    private static partial void LogDecodedFps(
        ILogger log,
        double fps,
        string clientId,
        long frames,
        double seconds,
        string codec,
        string decoder,
        string device,
        long total,
        long dropped
    );

    [LoggerMessage(Level = LogLevel.Warning, Message = "GPU decoding {Reason}")]
    private static partial void LogGpuDisabled(ILogger log, string reason);
}
