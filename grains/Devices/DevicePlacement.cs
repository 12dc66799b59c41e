using Orleans.Placement;
using Orleans.Runtime.Placement;

namespace Blankend.Orleans.Grains.Devices;

/// <summary>Places a device worker grain (key = device id) on a silo that owns the device.</summary>
[GenerateSerializer, Immutable]
internal sealed class DevicePlacement : PlacementStrategy
{
    public static readonly DevicePlacement Instance = new();
}

[AttributeUsage(AttributeTargets.Class, AllowMultiple = false)]
internal sealed class DevicePlacementAttribute() : PlacementAttribute(DevicePlacement.Instance);

/// <summary>
/// <c>gpuN</c>: only on a silo whose metadata lists it (the GPU host); <c>cpuN</c>: on the silo asking when it
/// owns it (every silo owns cpu0), so CPU work stays next to the source. A device that no active silo owns
/// fails the call with a clear message rather than land on a silo that cannot run it. Placement is decided at
/// activation; when the owning silo dies its activations die with it and the next call is placed again.
/// </summary>
internal sealed class DevicePlacementDirector(IDeviceCatalog catalog) : IPlacementDirector
{
    public Task<SiloAddress> OnAddActivation(
        PlacementStrategy strategy,
        PlacementTarget target,
        IPlacementContext context
    )
    {
        var device = target.GrainIdentity.Key.ToString() ?? "";
        var compatible = context.GetCompatibleSilos(target);
        var owners = new List<SiloAddress>(compatible.Length);
        foreach (var silo in compatible)
        {
            if (catalog.DevicesOf(silo).Contains(device, StringComparer.Ordinal))
                owners.Add(silo);
        }
        if (owners.Count == 0)
        {
            throw new OrleansException(
                $"no active silo owns compute device '{device}' (silo metadata '{LocalDevices.DevicesKey}' of {compatible.Length} compatible silo(s))"
            );
        }
        if (owners.Contains(context.LocalSilo))
            return Task.FromResult(context.LocalSilo);
        return Task.FromResult(owners[Random.Shared.Next(owners.Count)]);
    }
}
