using System.Diagnostics;
using Blankend.Orleans.Ai;
using Blankend.Orleans.Configuration;
using Blankend.Orleans.Grains.Devices;

namespace Blankend.Orleans.Grains.Processing;

/// <summary>
/// The processing routing of ONE source, owned by its ClientGrain and only ever touched on that grain's turns.
/// Each frame reaches the viewers in one form or is dropped and counted:
/// <list type="bullet">
/// <item>processing off: raw, now (the caller delivers it);</item>
/// <item>over <c>fps_limit</c>: not delivered at all (counted <c>fps_dropped</c>): the limit is the rate the
///   source is shown at while processing is on;</item>
/// <item>else to the device worker, at most one frame in flight per source plus ONE pending slot (a newer
///   frame replaces the pending one: latest wins, counted <c>overflow_dropped</c>). The answer is published
///   from the continuation (a grain turn): processed (kind=processed), or the raw frame when the worker was
///   saturated (counted <c>bypassed</c>) or failed (counted <c>errors</c>).</item>
/// </list>
/// Publish never awaits the worker, so the source is never slowed down by the processing time.
/// </summary>
internal sealed class SourceRoute
{
    private readonly string _source;
    private readonly IGrainFactory _grains;
    private readonly DeviceCatalog _catalog;
    private readonly ProcessingMetrics _metrics;
    private readonly Action<FrameEnvelope> _deliver;
    private readonly string _silo;

    private PipelineConfig _config;
    private EffectiveSettings _settings;

    private bool _inFlight;
    private FrameEnvelope? _pending;
    private long _nextAdmit; // Stopwatch ticks
    private string? _device;
    private string? _lastError;

    private long _framesIn,
        _processed,
        _bypassed,
        _errors,
        _fpsDropped,
        _overflowDropped;
    private readonly WindowCounter _fpsIn = new();
    private readonly WindowCounter _fpsOut = new();

    public SourceRoute(
        string source,
        string silo,
        IGrainFactory grains,
        DeviceCatalog catalog,
        ProcessingMetrics metrics,
        VideoProcessingOptions options,
        StreamOptions stream,
        RealtimePipelineOptions realtime,
        AiOptions ai,
        Action<FrameEnvelope> deliver
    )
    {
        _source = source;
        _silo = silo;
        _grains = grains;
        _catalog = catalog;
        _metrics = metrics;
        _deliver = deliver;
        // Version 0: what this silo's configuration says, until the pipeline config grain answers (version >= 1).
        _config = PipelineConfigDefaults.FromOptions(0, options, stream, realtime, ai);
        _settings = _config.For(source);
    }

    public long ConfigVersion => _config.Version;

    public void Apply(PipelineConfig config)
    {
        if (config.Version < _config.Version)
            return;
        _config = config;
        _settings = config.For(_source);
    }

    /// <summary>True when the frame was taken (sent, queued, or dropped and counted); false: deliver it raw.</summary>
    public bool TryRoute(FrameEnvelope frame)
    {
        var s = _settings;
        if (!s.Enabled)
            return false;
        _framesIn++;
        _fpsIn.Add();

        if (s.FpsLimit > 0)
        {
            var now = Stopwatch.GetTimestamp();
            if (now < _nextAdmit)
            {
                _fpsDropped++;
                _metrics.Frame("dropped_fps", _device);
                return true;
            }
            var interval = (long)(Stopwatch.Frequency / s.FpsLimit);
            // Steady input keeps the exact average rate; after a pause the next frame is admitted at once.
            _nextAdmit = _nextAdmit + interval <= now ? now + interval : _nextAdmit + interval;
        }

        if (!s.HasWork)
        {
            // No step changes anything: the frame is its own processed form, no hop to a worker.
            Processed(frame, frame.Payload);
            return true;
        }

        if (_inFlight)
        {
            if (_pending is not null)
            {
                _overflowDropped++;
                _metrics.Frame("dropped_overflow", _device);
            }
            _pending = frame;
            return true;
        }
        _ = RunAsync(frame, s);
        return true;
    }

    private async Task RunAsync(FrameEnvelope frame, EffectiveSettings s)
    {
        while (true)
        {
            _inFlight = true;
            var device = _catalog.Pick(_source, s.HwTranscode);
            if (s.HwTranscode && !LocalDevices.IsGpu(device))
                _metrics.HwUnavailable.Add(1);
            _device = device;
            ProcessResult result;
            try
            {
                result = await _grains.GetGrain<IDeviceWorkerGrain>(device).Process(new ProcessRequest(frame, s));
            }
            catch (Exception e)
            {
                result = new ProcessResult(ProcessOutcome.Failed, null, $"{e.GetType().Name}: {e.Message}");
            }
            switch (result.Outcome)
            {
                case ProcessOutcome.Processed when result.Payload is not null:
                    Processed(frame, result.Payload, result.Faces);
                    break;
                case ProcessOutcome.Saturated:
                    _bypassed++;
                    _metrics.Frame("bypassed", device);
                    _deliver(frame);
                    break;
                default:
                    _errors++;
                    _lastError = result.Error;
                    _metrics.Frame("error", device);
                    _deliver(frame);
                    break;
            }
            _inFlight = false;

            if (_pending is not { } next)
                return;
            _pending = null;
            s = _settings;
            if (!s.Enabled || !s.HasWork)
            {
                // Processing was turned off (or has nothing to do) meanwhile: the waiting frame goes out now.
                if (s.Enabled)
                    Processed(next, next.Payload);
                else
                    _deliver(next);
                return;
            }
            frame = next;
        }
    }

    private void Processed(FrameEnvelope frame, byte[] payload, AiFace[]? faces = null)
    {
        _processed++;
        _fpsOut.Add();
        _metrics.Frame("processed", _device);
        _deliver(frame with { Kind = FrameKind.Processed, Payload = payload, Faces = faces });
    }

    public SourceProcessingStats Stats() =>
        new(
            _source,
            _silo,
            _settings.Enabled,
            _device,
            _framesIn,
            _processed,
            _bypassed,
            _errors,
            _fpsDropped,
            _overflowDropped,
            _inFlight ? 1 : 0,
            _pending is null ? 0 : 1,
            Math.Round(_fpsIn.PerSecond, 2),
            Math.Round(_fpsOut.PerSecond, 2),
            _config.Version,
            _settings,
            _lastError
        );
}

internal static class PipelineConfigDefaults
{
    /// <summary>The start configuration: <c>video_processing</c> plus the re-encode keys of <c>stream</c>.</summary>
    public static PipelineConfig FromOptions(
        long version,
        VideoProcessingOptions vp,
        StreamOptions stream,
        RealtimePipelineOptions rt,
        AiOptions ai
    ) =>
        new(
            version,
            new PipelineSettings(
                vp.Enabled,
                stream.ReencodeEnabled,
                stream.JpegQuality,
                vp.FpsLimit,
                vp.Workers,
                vp.HwTranscode
            ),
            [],
            Realtime(rt, ai)
        );

    /// <summary>The start realtime settings: <c>realtime_pipeline</c> plus the step settings of <c>ai</c>.</summary>
    public static RealtimeSettings Realtime(RealtimePipelineOptions rt, AiOptions ai) =>
        new(
            rt.Enabled,
            rt.Workers,
            AiStepNames.Parse(rt.Steps, out _) ?? AiSteps.None,
            new MatteBackground(rt.Background, rt.BackgroundColor, rt.BlurRadius, 0),
            ai.FaceDetectInterval,
            ai.SimpleForward,
            rt.DepthMode,
            0,
            []
        );
}
