using Blankend.Orleans.Codec;
using Blankend.Orleans.Configuration;
using Blankend.Orleans.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Dashboard;

namespace Blankend.Orleans.Grains.Codec;

/// <summary>
/// One per source. Holds the live <see cref="Recorder"/> and is itself the frame observer registered with the
/// source's ClientGrain (a grain may not create a local object reference; a grain reference works the same way
/// for the ClientGrain). Keeps the registration fresh (registrations expire after 3 x
/// <c>cluster:observer_refresh_ms</c>) and ends the recording when the source stops sending for
/// <c>recording:idle_timeout_s</c>. The timer exists only while recording.
/// </summary>
internal sealed partial class RecordingGrain(
    CodecHost host,
    IOptions<ClusterSettings> cluster,
    IOptions<LimitsOptions> limits,
    ILogger<RecordingGrain> log
) : Grain, IRecordingGrain, IFrameObserver
{
    private Recorder? _live;
    private IFrameObserver? _reference;
    private IGrainTimer? _timer;
    private RecordingResult? _finished;

    private string Source => this.GetPrimaryKeyString();

    private IClientGrain Client => GrainFactory.GetGrain<IClientGrain>(Source);

    public async Task<RecordingStartResult> Start(RecordingRequest request)
    {
        var source = Source;
        if (_live is { } live)
        {
            return new RecordingStartResult(
                RecordingStartStatus.AlreadyRecording,
                live.Config.Id,
                source,
                live.Config.Path,
                live.Config.Kind,
                live.Config.Fps,
                $"source '{source}' is already being recorded to {live.Config.Path}"
            );
        }
        var kind = RecordingKinds.IsValid(request.Kind) ? request.Kind : RecordingKinds.Raw;
        var fps = request.Fps > 0 ? request.Fps : host.Recording.DefaultFps;
        // Every refusal answers the same way: no id, no path, the request's kind and fps, and why.
        RecordingStartResult NotStarted(RecordingStartStatus status, string why) =>
            new(status, "", source, "", kind, fps, why);
        string FolderError(Exception e) =>
            $"cannot write to the recordings folder {host.RecordingFolder} (recording:folder): {e.Message}";

        var caps = await host.Capabilities;
        if (!caps.CanRecord)
        {
            var why = caps.Available ? $"ffmpeg '{caps.ConfiguredPath}' has no libx264 encoder" : caps.Error!;
            return NotStarted(RecordingStartStatus.Unavailable, why);
        }

        string path;
        try
        {
            Directory.CreateDirectory(host.RecordingFolder);
            if (Refusal(host.RecordingFolder) is { } refused)
                return NotStarted(RecordingStartStatus.Limited, refused);
            path = RecordingPaths.NewPath(host.RecordingFolder, source, DateTime.UtcNow);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return NotStarted(RecordingStartStatus.Failed, FolderError(e));
        }

        var id = Guid.NewGuid().ToString("N");
        var o = host.Recording;
        Recorder recorder;
        try
        {
            recorder = host.StartRecorder(
                new Recorder.Settings(
                    id,
                    source,
                    path,
                    kind,
                    fps,
                    caps.ConfiguredPath,
                    o.QueueFrames,
                    caps.HasFpsMode,
                    o.MaxDurationSeconds,
                    o.MaxBytes,
                    o.MinFreeMb,
                    o.MaxPixels
                )
            );
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return NotStarted(RecordingStartStatus.Failed, FolderError(e));
        }
        var reference = this.AsReference<IFrameObserver>();
        _live = recorder;
        try
        {
            await SubscribeAsync(reference, kind);
        }
        catch (Exception e)
        {
            _live = null;
            await recorder.StopAsync("failed");
            host.RecorderEnded(recorder);
            return NotStarted(RecordingStartStatus.Failed, "subscribing to the source failed: " + e.Message);
        }
        _reference = reference;
        _finished = null;
        var period = TimeSpan.FromMilliseconds(cluster.Value.ObserverRefreshMs);
        _timer = this.RegisterGrainTimer(TickAsync, new GrainTimerCreationOptions(period, period) { KeepAlive = true });
        LogStarted(log, source, kind, fps, path);
        return new RecordingStartResult(RecordingStartStatus.Started, id, source, path, kind, fps, "");
    }

    /// <summary>A frame of the source (one-way from its ClientGrain): queued for the recorder, never awaited.</summary>
    [NoProfiling]
    public Task OnFrame(FrameEnvelope frame)
    {
        _live?.Offer(frame);
        return Task.CompletedTask;
    }

    /// <summary>Why a new recording may not start now (a limit, naming its key); null when it may.</summary>
    private string? Refusal(string folder)
    {
        var max = limits.Value.MaxRecordings;
        var live = RecordingRegistry.CountLive(folder, DateTimeOffset.UtcNow);
        if (live >= max)
        {
            RecordingMetrics.Refuse("max_recordings");
            return $"{live} recordings are live, the limit is {max} (limits:max_recordings)";
        }
        var minFree = host.Recording.MinFreeMb;
        if (minFree > 0 && RecordingRegistry.FreeMb(folder) is { } free && free < minFree)
        {
            RecordingMetrics.Refuse("min_free_mb");
            return $"the recordings folder's disk has {free} MiB free, less than recording:min_free_mb ({minFree})";
        }
        return null;
    }

    public async Task<RecordingResult?> Stop()
    {
        if (_live is null)
        {
            var finished = _finished ?? Orphan();
            _finished = null;
            return finished;
        }
        var result = await EndAsync("stopped");
        _finished = null;
        return result;
    }

    private async Task TickAsync(CancellationToken ct)
    {
        if (_live is not { } live)
            return;
        if (live.IsOver)
        {
            await EndAsync(live.Failure is not null ? "failed" : "limit");
            return;
        }
        if (live.IdleMs > host.Recording.IdleTimeoutSeconds * 1000L)
        {
            LogIdle(log, Source, host.Recording.IdleTimeoutSeconds);
            await EndAsync("idle");
            return;
        }
        try
        {
            await SubscribeAsync(_reference!, live.Config.Kind);
        }
        catch (Exception e)
        {
            LogRefreshFailed(log, e, Source);
        }
    }

    /// <summary>A raw recording takes every frame as it entered, even while the source is processed for its
    /// viewers; a processed one takes what viewers get (processed frames, and raw ones that bypassed a saturated
    /// worker, which the recorder counts and skips).</summary>
    private Task SubscribeAsync(IFrameObserver reference, string kind) =>
        kind == RecordingKinds.Raw ? Client.SubscribeRaw(reference) : Client.Subscribe(reference);

    private async Task<RecordingResult> EndAsync(string ended)
    {
        var live = _live!;
        _timer?.Dispose();
        _timer = null;
        if (_reference is { } reference)
        {
            try
            {
                if (live.Config.Kind == RecordingKinds.Raw)
                    await Client.UnsubscribeRaw(reference);
                else
                    await Client.Unsubscribe(reference);
            }
            catch (Exception e)
            {
                LogRefreshFailed(log, e, Source);
            }
            _reference = null;
        }
        var result = await live.StopAsync(ended);
        host.RecorderEnded(live);
        _live = null;
        _finished = result;
        return result;
    }

    /// <summary>A recording of this source that a previous activation (a silo that died) left live in the
    /// registry and that no writer refreshes any more: marked failed, and handed over as the stop's result.</summary>
    private RecordingResult? Orphan()
    {
        var folder = host.RecordingFolder;
        var now = DateTimeOffset.UtcNow;
        RecordingEntry? orphan;
        try
        {
            orphan = RecordingRegistry
                .Stored(folder)
                .FirstOrDefault(e =>
                    e.Source == Source
                    && e.State == RecordingStates.Live
                    && RecordingRegistry.Effective(e, now).State == RecordingStates.Failed
                );
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
        if (orphan is null)
            return null;
        var effective = RecordingRegistry.Effective(orphan, now);
        try
        {
            RecordingRegistry.Write(folder, effective);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            LogRefreshFailed(log, e, Source);
        }
        return new RecordingResult(
            orphan.Id,
            orphan.Source,
            Path.Combine(folder, orphan.File),
            0,
            0,
            0,
            "failed",
            effective.Reason,
            orphan.Bytes > 0
        )
        {
            State = RecordingStates.Failed,
            Reason = effective.Reason,
        };
    }

    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        if (_live is not null)
            await EndAsync("service_stopping");
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "recording {Source} ({Kind}, {Fps} fps) to {Path}")]
    private static partial void LogStarted(ILogger log, string source, string kind, double fps, string path);

    [LoggerMessage(Level = LogLevel.Information, Message = "recording {Source}: no frame for {Seconds} s, ending it")]
    private static partial void LogIdle(ILogger log, string source, int seconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "recording {Source}: observer registration call failed")]
    private static partial void LogRefreshFailed(ILogger log, Exception e, string source);
}
