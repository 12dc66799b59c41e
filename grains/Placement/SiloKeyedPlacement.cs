using Orleans.Placement;
using Orleans.Runtime.Placement;

namespace Blankend.Orleans.Grains.Placement;

/// <summary>Places a grain on the silo its key names (<c>SiloAddress.ToParsableString()</c>); refuses when that
/// silo is not an active member. For per-silo reports without any registration or timer.</summary>
[Serializable, GenerateSerializer, Immutable, SuppressReferenceTracking]
internal sealed class SiloKeyedPlacement : PlacementStrategy
{
    public static readonly SiloKeyedPlacement Instance = new();
}

[AttributeUsage(AttributeTargets.Class, AllowMultiple = false)]
internal sealed class SiloKeyedPlacementAttribute() : PlacementAttribute(SiloKeyedPlacement.Instance);

internal sealed class SiloKeyedPlacementDirector : IPlacementDirector
{
    public Task<SiloAddress> OnAddActivation(
        PlacementStrategy strategy,
        PlacementTarget target,
        IPlacementContext context
    )
    {
        var key = target.GrainIdentity.Key.ToString();
        foreach (var silo in context.GetCompatibleSilos(target))
        {
            if (silo.ToParsableString() == key)
                return Task.FromResult(silo);
        }
        throw new OrleansException($"silo {key} is not an active member of the cluster");
    }
}
