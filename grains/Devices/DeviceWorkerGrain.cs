using Microsoft.Extensions.Logging;

namespace Blankend.Orleans.Grains.Devices;

/// <summary>
/// The worker of one compute device (key: <c>cpu0</c>, <c>gpu0</c>, ...), placed on a silo that owns it by
/// <see cref="DevicePlacementDirector"/>. The grain is the cluster-visible face of the device; the per-frame
/// work runs on this silo's <see cref="DeviceLoop"/> (dedicated threads, bounded queue), never on the Orleans
/// scheduler. Reentrant: many frames (of several sources) are in flight at once, which is what lets the loop
/// batch them.
/// </summary>
[DevicePlacement, Reentrant]
internal sealed partial class DeviceWorkerGrain(
    DeviceWorkerHost host,
    LocalDevices local,
    IEnumerable<IFrameStepPreparation> preparations,
    ILogger<DeviceWorkerGrain> log
) : Grain, IDeviceWorkerGrain
{
    private DeviceLoop _loop = null!;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        var device = this.GetPrimaryKeyString();
        if (!local.Devices.Contains(device, StringComparer.Ordinal))
        {
            // Only reachable if placement was bypassed (e.g. a silo's metadata changed under it).
            LogNotOwned(device, RuntimeIdentity, string.Join(",", local.Devices));
        }
        _loop = host.Get(device);
        LogActivated(device, RuntimeIdentity, _loop.Provider.Name);
        return Task.CompletedTask;
    }

    [global::Orleans.Dashboard.NoProfiling]
    public Task<ProcessResult> Process(ProcessRequest request)
    {
        // E.g. an uploaded asset (reference face, background) is fetched once per new version, then used locally.
        List<ValueTask>? pending = null;
        foreach (var preparation in preparations)
        {
            var sync = preparation.PrepareAsync(GrainFactory, request.Settings);
            if (!sync.IsCompletedSuccessfully)
                (pending ??= []).Add(sync);
        }
        return pending is null ? _loop.Submit(request) : SubmitAfter(pending, request);
    }

    private async Task<ProcessResult> SubmitAfter(List<ValueTask> pending, ProcessRequest request)
    {
        foreach (var sync in pending)
        {
            try
            {
                await sync;
            }
            catch (Exception e)
            {
                LogAssetFetchFailed(e.Message);
            } // the steps skip (counted) without the asset
        }
        return await _loop.Submit(request);
    }

    public Task<DeviceStatus> GetStatus() => Task.FromResult(_loop.Status(RuntimeIdentity));

    [LoggerMessage(
        Level = LogLevel.Information,
        Message = "device worker {Device} active on {Silo} (codec provider {Provider})"
    )]
    private partial void LogActivated(string device, string silo, string provider);

    [LoggerMessage(Level = LogLevel.Warning, Message = "fetching an uploaded ai asset failed: {Reason}")]
    private partial void LogAssetFetchFailed(string reason);

    [LoggerMessage(
        Level = LogLevel.Warning,
        Message = "device worker {Device} activated on {Silo}, which lists only {Devices}"
    )]
    private partial void LogNotOwned(string device, string silo, string devices);
}
