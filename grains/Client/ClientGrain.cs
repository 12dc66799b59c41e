using Blankend.Orleans.Configuration;
using Blankend.Orleans.Grains.Devices;
using Blankend.Orleans.Grains.Processing;
using Blankend.Orleans.Telemetry;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Dashboard;

namespace Blankend.Orleans.Grains.Client;

/// <summary>
/// One activation per source. Every frame of the source passes here: it gets its authoritative sequence and
/// is handed, one-way, to each gateway observer that has viewers for it, and (relay enabled, camera frames only)
/// to the bus link's RelayGrain. Nothing is awaited per frame.
/// </summary>
internal sealed partial class ClientGrain : Grain, IClientGrain
{
    private readonly ILogger<ClientGrain> _log;
    private readonly long _expiryMs;
    private readonly long _directoryRefreshMs;
    private readonly long _epoch = Random.Shared.NextInt64(1, long.MaxValue);
    private readonly StreamOptions _stream;
    private IRelayGrain? _relay;

    // Observer -> expiry (Environment.TickCount64). GrainReferences compare by grain id, so a refresh from
    // the same gateway lands on the same entry.
    private readonly Dictionary<IFrameObserver, long> _subscribers = [];
    private WildcardSet _wildcard = WildcardSet.Empty;

    // Observers of the raw frames (recorders of kind=raw): get every frame as it entered, processing or not.
    private readonly Dictionary<IFrameObserver, long> _rawSubscribers = [];
    private IFrameObserver[] _rawTargets = [];

    // Union of subscribers and wildcard observers, rebuilt only when either changes: a gateway that has both a
    // per-source and an all-sources viewer still gets each frame once.
    private IFrameObserver[] _targets = [];

    private long _seq;
    private long _framesIn;
    private long _bytesIn;
    private long _lastFrameUnixMs;
    private long _nextPurge;
    private long _nextDirectoryRefresh;
    private bool _directoryRefreshInFlight;

    // Processing path of this source (grains/Processing/SourceRoute.cs): off unless the pipeline config says so.
    private readonly SourceRoute _processing;

    public ClientGrain(
        ILogger<ClientGrain> log,
        IOptions<ClusterSettings> cluster,
        IOptions<VideoProcessingOptions> processing,
        IOptions<StreamOptions> stream,
        IOptions<RealtimePipelineOptions> realtime,
        IOptions<AiOptions> ai,
        DeviceCatalog devices,
        ProcessingMetrics metrics
    )
    {
        _log = log;
        _stream = stream.Value;
        _directoryRefreshMs = cluster.Value.ObserverRefreshMs;
        _expiryMs = 3L * cluster.Value.ObserverRefreshMs;
        _processing = new SourceRoute(
            this.GetPrimaryKeyString(),
            RuntimeIdentity,
            GrainFactory,
            devices,
            metrics,
            processing.Value,
            stream.Value,
            realtime.Value,
            ai.Value,
            Deliver
        );
    }

    private string Source => this.GetPrimaryKeyString();

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        if (_stream.RelayEnabled)
            _relay = GrainFactory.GetGrain<IRelayGrain>(_stream.ZmqIdentity);
        try
        {
            ApplyWildcard(await Directory.RegisterSource(Source));
        }
        catch (Exception e)
        {
            // The directory heals on the next refresh; a source must not fail to activate because of it.
            LogDirectoryFailed(e, Source);
        }
        await RefreshPipelineConfigAsync();
        _nextDirectoryRefresh = Environment.TickCount64 + _directoryRefreshMs;
        BlankendMetrics.SourcesActive.Add(1);
        LogActivated(Source, _epoch, RuntimeIdentity);
    }

    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        BlankendMetrics.SourcesActive.Add(-1);
        LogDeactivated(Source, reason.Description, _framesIn);
        // When the silo shuts down the directory may be going too; its entries expire by themselves.
        if (reason.ReasonCode == DeactivationReasonCode.ShuttingDown)
            return;
        try
        {
            await Directory.UnregisterSource(Source);
        }
        catch (Exception e)
        {
            LogUnregisterFailed(Source, e.Message);
        }
    }

    /// <summary>Per frame: not profiled by the Orleans Dashboard (its filter would time and record every call);
    /// the project's own counters and the gateway's ingest_to_grain histogram cover it.</summary>
    [NoProfiling]
    public Task Publish(FrameEnvelope frame)
    {
        var now = Environment.TickCount64;
        if (now >= _nextPurge)
            Purge(now);
        if (now >= _nextDirectoryRefresh && !_directoryRefreshInFlight)
            _ = RefreshDirectoryAsync(now);

        var stamped = frame with { Source = Source, Seq = ++_seq, Epoch = _epoch };
        _framesIn++;
        _bytesIn += frame.Payload.Length;
        _lastFrameUnixMs = frame.TimestampMs;
        BlankendMetrics.GrainFramesRouted.Add(1, BlankendMetrics.Kinds.Of(frame.Kind));

        // Camera frames (/video_in, /video_codec) go to the bus as they entered; a frame that came FROM the bus
        // never goes back out this way (the RelayGrain already sent it back once): that second path was the
        // original's bug.
        if (_relay is not null && !frame.FromBus)
        {
            try
            {
                _relay.Send(stamped);
            }
            catch (Exception e)
            {
                LogRelayFailed(e, Source);
            }
        }

        foreach (var raw in _rawTargets)
        {
            try
            {
                raw.OnFrame(stamped);
            }
            catch (Exception e)
            {
                LogObserverFailed(e, Source);
            }
        }

        // Viewers get each frame in ONE form: processed when the pipeline takes it, raw otherwise.
        if (!_processing.TryRoute(stamped))
            Deliver(stamped);
        return Task.CompletedTask;
    }

    /// <summary>Hands a frame (raw, or the processed result from the processing continuation) to every gateway
    /// observer of the source, one-way.</summary>
    private void Deliver(FrameEnvelope frame)
    {
        if (frame.Origin == FrameOrigin.BusPipeline && _relay is not null)
        {
            // A bus frame the realtime pipeline took: its one answer to the bus, [client_id, out] (processed, or
            // the frame itself when processing failed), exactly once.
            try
            {
                _relay.SendProcessed(frame);
            }
            catch (Exception e)
            {
                LogRelayFailed(e, Source);
            }
        }
        var targets = _targets;
        foreach (var target in targets)
        {
            try
            {
                target.OnFrame(frame);
            }
            catch (Exception e)
            {
                LogObserverFailed(e, Source);
            }
        }
        if (targets.Length > 0)
            BlankendMetrics.GrainObserverCalls.Add(targets.Length);
    }

    public Task Subscribe(IFrameObserver observer)
    {
        var added = !_subscribers.ContainsKey(observer);
        _subscribers[observer] = Environment.TickCount64 + _expiryMs;
        if (added)
        {
            RebuildTargets();
            LogSubscribed(Source, _subscribers.Count);
        }
        return Task.CompletedTask;
    }

    public Task Unsubscribe(IFrameObserver observer)
    {
        if (_subscribers.Remove(observer))
            RebuildTargets();
        return Task.CompletedTask;
    }

    public Task SubscribeRaw(IFrameObserver observer)
    {
        var added = !_rawSubscribers.ContainsKey(observer);
        _rawSubscribers[observer] = Environment.TickCount64 + _expiryMs;
        if (added)
            _rawTargets = [.. _rawSubscribers.Keys];
        return Task.CompletedTask;
    }

    public Task UnsubscribeRaw(IFrameObserver observer)
    {
        if (_rawSubscribers.Remove(observer))
            _rawTargets = [.. _rawSubscribers.Keys];
        return Task.CompletedTask;
    }

    public Task SetWildcardObservers(WildcardSet set)
    {
        ApplyWildcard(set);
        return Task.CompletedTask;
    }

    public Task<SourceStats> GetStats() =>
        Task.FromResult(
            new SourceStats(
                Source,
                _epoch,
                _seq,
                _framesIn,
                _bytesIn,
                _lastFrameUnixMs,
                _subscribers.Count,
                _wildcard.Observers.Length,
                RuntimeIdentity
            )
        );

    public Task SetPipelineConfig(PipelineConfig config)
    {
        _processing.Apply(config);
        return Task.CompletedTask;
    }

    public Task<SourceProcessingStats> GetProcessingStats() => Task.FromResult(_processing.Stats());

    /// <summary>Fetched at activation and with each directory refresh (a missed push heals within one
    /// refresh).</summary>
    private async Task RefreshPipelineConfigAsync()
    {
        try
        {
            _processing.Apply(await GrainFactory.GetGrain<IPipelineConfigGrain>(IPipelineConfigGrain.Key).GetConfig());
        }
        catch (Exception e)
        {
            LogPipelineConfigFailed(e, Source);
        }
    }

    private ISourceDirectoryGrain Directory => GrainFactory.GetGrain<ISourceDirectoryGrain>(ISourceDirectoryGrain.Key);

    // Renewing the registration while frames flow keeps the directory right after it loses its state
    // (silo loss) without a timer on either side; the answer also carries the latest wildcard set.
    private async Task RefreshDirectoryAsync(long now)
    {
        _directoryRefreshInFlight = true;
        _nextDirectoryRefresh = now + _directoryRefreshMs;
        try
        {
            ApplyWildcard(await Directory.RegisterSource(Source));
            await RefreshPipelineConfigAsync();
        }
        catch (Exception e)
        {
            LogDirectoryFailed(e, Source);
        }
        finally
        {
            _directoryRefreshInFlight = false;
        }
    }

    private void ApplyWildcard(WildcardSet set)
    {
        if (set.Version < _wildcard.Version)
            return;
        _wildcard = set;
        RebuildTargets();
    }

    private void Purge(long now)
    {
        _nextPurge = now + 1000;
        List<IFrameObserver>? expired = null;
        foreach (var (observer, expiry) in _subscribers)
        {
            if (expiry <= now)
                (expired ??= []).Add(observer);
        }
        List<IFrameObserver>? expiredRaw = null;
        foreach (var (observer, expiry) in _rawSubscribers)
        {
            if (expiry <= now)
                (expiredRaw ??= []).Add(observer);
        }
        if (expiredRaw is not null)
        {
            foreach (var observer in expiredRaw)
                _rawSubscribers.Remove(observer);
            _rawTargets = [.. _rawSubscribers.Keys];
        }
        if (expired is null)
            return;
        foreach (var observer in expired)
            _subscribers.Remove(observer);
        LogExpired(Source, expired.Count);
        RebuildTargets();
    }

    private void RebuildTargets()
    {
        var set = new HashSet<IFrameObserver>(_subscribers.Keys);
        foreach (var o in _wildcard.Observers)
            set.Add(o);
        _targets = [.. set];
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "source {Source} active (epoch {Epoch}) on {Silo}")]
    private partial void LogActivated(string source, long epoch, string silo);

    [LoggerMessage(
        Level = LogLevel.Information,
        Message = "source {Source} deactivated ({Reason}) after {Frames} frames"
    )]
    private partial void LogDeactivated(string source, string reason, long frames);

    [LoggerMessage(Level = LogLevel.Debug, Message = "source {Source}: {Count} gateway observer(s)")]
    private partial void LogSubscribed(string source, int count);

    [LoggerMessage(Level = LogLevel.Information, Message = "source {Source}: {Count} gateway observer(s) expired")]
    private partial void LogExpired(string source, int count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "source {Source}: source directory unreachable")]
    private partial void LogDirectoryFailed(Exception e, string source);

    [LoggerMessage(
        Level = LogLevel.Debug,
        Message = "source {Source}: unregistering from the directory failed ({Reason}); the entry expires"
    )]
    private partial void LogUnregisterFailed(string source, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "source {Source}: handing a frame to the bus link failed")]
    private partial void LogRelayFailed(Exception e, string source);

    [LoggerMessage(
        Level = LogLevel.Warning,
        Message = "source {Source}: pipeline config unreachable (keeps the one it has)"
    )]
    private partial void LogPipelineConfigFailed(Exception e, string source);

    [LoggerMessage(Level = LogLevel.Warning, Message = "source {Source}: observer call failed")]
    private partial void LogObserverFailed(Exception e, string source);
}
