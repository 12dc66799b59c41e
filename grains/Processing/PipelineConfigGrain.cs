using Blankend.Orleans.Configuration;
using Blankend.Orleans.Grains.Devices;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Blankend.Orleans.Grains.Processing;

/// <summary>
/// The pipeline configuration (versioned, global + per-source overrides) and the cluster-wide processing
/// status. Changes are pushed to the active sources (the source directory knows them), which also fetch the
/// config when they activate and with each directory refresh. Reentrant like the source directory: a push to a
/// ClientGrain that is itself activating (and fetching the config) must not deadlock; state changes happen
/// between awaits only.
/// </summary>
[Reentrant]
[System.Diagnostics.CodeAnalysis.SuppressMessage(
    "Design",
    "CA1001",
    Justification = "_updates is a SemaphoreSlim whose wait handle is never created: nothing to release when the activation goes."
)]
internal sealed partial class PipelineConfigGrain : Grain, IPipelineConfigGrain
{
    /// <summary>Grain storage of state that must outlive a silo: Redis with cluster.clustering=redis, in memory
    /// otherwise (registered by the silo wiring).</summary>
    public const string StorageName = Blankend.Orleans.Hosting.ClusterMembership.GrainStorageName;

    private static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(3);
    private readonly DeviceCatalog _devices;
    private readonly DeviceWorkerHost _host;
    private readonly ILogger<PipelineConfigGrain> _log;
    private readonly IPersistentState<PipelineConfigState> _state;
    private readonly PipelineConfig _start;
    private readonly SemaphoreSlim _updates = new(1, 1);
    private PipelineConfig _config;

    public PipelineConfigGrain(
        IOptions<VideoProcessingOptions> processing,
        IOptions<StreamOptions> stream,
        IOptions<RealtimePipelineOptions> realtime,
        IOptions<AiOptions> ai,
        DeviceCatalog devices,
        DeviceWorkerHost host,
        ILogger<PipelineConfigGrain> log,
        [PersistentState("pipeline", StorageName)] IPersistentState<PipelineConfigState> state
    )
    {
        _devices = devices;
        _host = host;
        _log = log;
        _state = state;
        _start = PipelineConfigDefaults.FromOptions(1, processing.Value, stream.Value, realtime.Value, ai.Value);
        _config = _start;
    }

    /// <summary>Live changes survive the loss of this grain's silo (the state is read back on the next
    /// activation), but not a change of the configuration files: a stored config that grew from other start
    /// settings is discarded.</summary>
    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        if (
            _state.RecordExists
            && _state.State.Config is { } stored
            && Equals(_state.State.Start, _start.Global)
            && SameStart(_state.State.StartRealtime, _start.Rt)
        )
        {
            _config = stored;
            LogRestored(stored.Version);
        }
        return Task.CompletedTask;
    }

    // Records with array members compare arrays by reference: compare the start realtime settings by value.
    private static bool SameStart(RealtimeSettings? stored, RealtimeSettings start) =>
        stored is not null
        && stored.Sources.Length == 0
        && start.Sources.Length == 0
        && stored with { Sources = start.Sources } == start;

    public Task<PipelineConfig> GetConfig() => Task.FromResult(_config);

    public Task<ConfigChangeResult> Update(PipelineConfigUpdate update) =>
        PipelineRules.Validate(update) is { } error
            ? Task.FromResult(new ConfigChangeResult(_config, error))
            : ChangeAsync(c => PipelineRules.Apply(c, update), update.Source ?? "*", update.ToString());

    public Task<ConfigChangeResult> UpdateRealtime(RealtimeConfigUpdate update) =>
        RealtimeRules.Validate(update) is { } error
            ? Task.FromResult(new ConfigChangeResult(_config, error))
            : ChangeAsync(
                c => c with { Version = c.Version + 1, Realtime = RealtimeRules.Apply(c.Rt, update) },
                update.Source ?? "*",
                "realtime " + update
            );

    private async Task<ConfigChangeResult> ChangeAsync(
        Func<PipelineConfig, PipelineConfig> change,
        string scope,
        string what
    )
    {
        PipelineConfig config;
        // One change at a time (the grain is reentrant): each builds on the last and is stored before the next.
        await _updates.WaitAsync();
        try
        {
            config = change(_config);
            _config = config;
            LogChanged(config.Version, scope, what);
            _state.State.Config = config;
            _state.State.Start = _start.Global;
            _state.State.StartRealtime = _start.Rt;
            try
            {
                await _state.WriteStateAsync();
            }
            catch (Exception e)
            {
                LogStoreFailed(e);
            } // applies anyway; only a silo loss would forget it
        }
        finally
        {
            _updates.Release();
        }
        await PushAsync(config);
        return new ConfigChangeResult(config, null);
    }

    private async Task PushAsync(PipelineConfig config)
    {
        string[] sources;
        try
        {
            sources = await Directory.ListSources().WaitAsync(CallTimeout);
        }
        catch (Exception e)
        {
            LogPushFailed(e);
            return;
        }
        var calls = new Task[sources.Length];
        for (var i = 0; i < sources.Length; i++)
            calls[i] = GrainFactory.GetGrain<IClientGrain>(sources[i]).SetPipelineConfig(config);
        try
        {
            await Task.WhenAll(calls).WaitAsync(CallTimeout);
        }
        catch (Exception e)
        {
            LogPushFailed(e);
        } // they catch up on their next refresh
    }

    public async Task<PipelineStatus> GetStatus()
    {
        var sourcesTask = SourceStatsAsync();
        var devicesTask = DeviceStatsAsync();
        var sources = await sourcesTask;
        var devices = await devicesTask;
        long framesIn = 0,
            processed = 0,
            bypassed = 0,
            errors = 0,
            fpsDropped = 0,
            overflow = 0;
        double fpsIn = 0,
            fpsOut = 0;
        foreach (var s in sources)
        {
            framesIn += s.FramesIn;
            processed += s.Processed;
            bypassed += s.Bypassed;
            errors += s.Errors;
            fpsDropped += s.FpsDropped;
            overflow += s.OverflowDropped;
            fpsIn += s.FpsIn;
            fpsOut += s.FpsOut;
        }
        var queued = 0;
        foreach (var d in devices)
            queued += d.QueueDepth;
        var totals = new PipelineTotals(
            framesIn,
            processed,
            bypassed,
            errors,
            fpsDropped,
            overflow,
            Math.Round(fpsIn, 2),
            Math.Round(fpsOut, 2),
            queued
        );
        return new PipelineStatus(
            _config.Version,
            _config.Global,
            _config.Sources,
            totals,
            sources,
            devices,
            [.. _host.Steps.Select(s => s.Name)]
        );
    }

    public async Task<GpuStatus> GetGpuStatus()
    {
        var silos = _devices.Silos();
        var gpus = silos.Sum(s => s.Gpus.Length);
        var devices = await DeviceStatsAsync();
        var hw = _config.Global.HwTranscode;
        string provider;
        string reason;
        var gpuWorkers = devices.Where(d => LocalDevices.IsGpu(d.Device)).ToArray();
        if (gpuWorkers.Any(d => d.Provider == "CUDA"))
        {
            provider = "CUDA";
            reason = "a GPU device worker runs its codec with CUDA";
        }
        else if (gpus == 0)
        {
            provider = "CPU";
            reason = hw
                ? "hw_transcode is requested but no silo has a GPU ("
                    + string.Join("; ", silos.Select(s => s.Detection).Distinct())
                    + "): frames run on cpu0, counted in blankend.processing.hw_unavailable"
                : "no GPU in the cluster (" + string.Join("; ", silos.Select(s => s.Detection).Distinct()) + ")";
        }
        else if (!hw)
        {
            provider = "CPU";
            reason = $"{gpus} GPU(s) present; hw_transcode is off, frames run on cpu0";
        }
        else
        {
            provider = "CPU";
            reason =
                gpuWorkers.Length > 0
                    ? gpuWorkers[0].ProviderReason
                    : "hw_transcode routes frames to the GPU hosts' device workers; their JPEG codec runs on the CPU in this build";
        }
        return new GpuStatus(gpus > 0, gpus, hw, provider, reason, [.. silos], devices);
    }

    private async Task<SourceProcessingStats[]> SourceStatsAsync()
    {
        try
        {
            var names = await Directory.ListSources().WaitAsync(CallTimeout);
            var stats = await Task.WhenAll(
                    names.Select(n => GrainFactory.GetGrain<IClientGrain>(n).GetProcessingStats())
                )
                .WaitAsync(CallTimeout);
            return stats;
        }
        catch (Exception e) when (e is TimeoutException or OrleansException)
        {
            LogStatusPartial(e.Message);
            return [];
        }
    }

    private async Task<DeviceStatus[]> DeviceStatsAsync()
    {
        var ids = _devices.AllDevices();
        var tasks = ids.Select(async id =>
        {
            try
            {
                return await GrainFactory.GetGrain<IDeviceWorkerGrain>(id).GetStatus().WaitAsync(CallTimeout);
            }
            catch (Exception e)
            {
                return new DeviceStatus(
                    id,
                    "?",
                    "?",
                    "",
                    false,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    "unreachable",
                    0,
                    0,
                    $"{e.GetType().Name}: {e.Message}",
                    ""
                );
            }
        });
        return await Task.WhenAll(tasks);
    }

    private ISourceDirectoryGrain Directory => GrainFactory.GetGrain<ISourceDirectoryGrain>(ISourceDirectoryGrain.Key);

    [LoggerMessage(Level = LogLevel.Information, Message = "pipeline config v{Version} restored from grain storage")]
    private partial void LogRestored(long version);

    [LoggerMessage(
        Level = LogLevel.Warning,
        Message = "storing the pipeline config failed: it applies, but a loss of this silo would forget it"
    )]
    private partial void LogStoreFailed(Exception e);

    [LoggerMessage(Level = LogLevel.Information, Message = "pipeline config v{Version} ({Scope}): {Change}")]
    private partial void LogChanged(long version, string scope, string change);

    [LoggerMessage(
        Level = LogLevel.Warning,
        Message = "pushing the pipeline config failed for some sources (they catch up on their next refresh)"
    )]
    private partial void LogPushFailed(Exception e);

    [LoggerMessage(Level = LogLevel.Debug, Message = "pipeline status without source stats: {Reason}")]
    private partial void LogStatusPartial(string reason);
}

/// <summary>What <see cref="PipelineConfigGrain"/> stores: the live config and the start settings (from the
/// configuration files) it grew from.</summary>
[GenerateSerializer, Alias("blankend.PipelineConfigState")]
internal sealed class PipelineConfigState
{
    [Id(0)]
    public PipelineConfig? Config { get; set; }

    [Id(1)]
    public PipelineSettings? Start { get; set; }

    [Id(2)]
    public RealtimeSettings? StartRealtime { get; set; }
}
