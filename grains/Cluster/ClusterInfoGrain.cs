using Blankend.Orleans.Grains.Devices;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Concurrency;
using Orleans.Runtime;
using Orleans.Runtime.MembershipService.SiloMetadata;

namespace Blankend.Orleans.Grains.Cluster;

/// <summary>Membership entries (from the management grain) joined with the silo metadata this silo has cached.
/// Lives in the silo assembly because silo metadata is a runtime service.</summary>
[StatelessWorker]
internal sealed class ClusterInfoGrain(IServiceProvider services) : Grain, IClusterInfoGrain
{
    public async Task<SiloInfo[]> GetSilos()
    {
        var hosts = await GrainFactory.GetGrain<IManagementGrain>(0).GetDetailedHosts(onlyActive: false);
        // Present on Blankend silos (the processing path publishes each silo's devices); absent on bare test silos.
        var metadata = services.GetService<ISiloMetadataCache>();
        var result = new SiloInfo[hosts.Length];
        for (var i = 0; i < hosts.Length; i++)
        {
            var h = hosts[i];
            IReadOnlyDictionary<string, string> meta =
                h.Status == SiloStatus.Dead || metadata is null
                    ? System.Collections.Immutable.ImmutableDictionary<string, string>.Empty
                    : metadata.GetSiloMetadata(h.SiloAddress).Metadata;
            var devices = LocalDevices.ParseList(meta.GetValueOrDefault(LocalDevices.DevicesKey));
            var role =
                devices.Length == 0 ? ""
                : devices.Any(LocalDevices.IsGpu) ? "gpu"
                : "cpu";
            result[i] = new SiloInfo(
                h.SiloAddress.ToString(),
                h.SiloName ?? "",
                h.Status.ToString(),
                h.HostName ?? "",
                h.SiloAddress.Endpoint.Address.ToString(),
                h.SiloAddress.Endpoint.Port,
                h.ProxyPort,
                h.StartTime,
                h.IAmAliveTime,
                role,
                devices
            );
        }
        Array.Sort(result, (a, b) =>
            (a.Status == "Dead").CompareTo(b.Status == "Dead") is var c and not 0
                ? c
                : string.CompareOrdinal(a.Address, b.Address)
        );
        return result;
    }

    public Task<string[]> GetActiveSilos()
    {
        var snapshot = services.GetRequiredService<IClusterMembershipService>().CurrentSnapshot;
        var active = new List<string>(snapshot.Members.Count);
        foreach (var (address, member) in snapshot.Members)
        {
            if (member.Status == SiloStatus.Active)
                active.Add(address.ToString());
        }
        active.Sort(StringComparer.Ordinal);
        return Task.FromResult(active.ToArray());
    }
}
