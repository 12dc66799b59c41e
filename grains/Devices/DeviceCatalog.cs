using Orleans.Runtime.MembershipService.SiloMetadata;

namespace Blankend.Orleans.Grains.Devices;

/// <summary>Which silo owns which compute device: the placement director and the routing ask this.</summary>
internal interface IDeviceCatalog
{
    /// <summary>Device ids the silo publishes (empty when its metadata is not known yet).</summary>
    IReadOnlyList<string> DevicesOf(SiloAddress silo);
}

/// <summary>
/// The cluster's devices, read from silo metadata (<c>UseSiloMetadata</c>: each silo publishes its own at
/// start; Orleans' metadata cache follows membership). The local silo's come straight from
/// <see cref="LocalDevices"/>, so a single silo never waits for the cache.
/// </summary>
internal sealed class DeviceCatalog(
    IClusterMembershipService membership,
    ISiloMetadataCache metadata,
    ILocalSiloDetails localSilo,
    LocalDevices local
) : IDeviceCatalog
{
    private readonly Lock _gate = new();
    private string[] _gpus = [];
    private long _gpusAt; // 0: never computed

    public SiloAddress LocalSilo => localSilo.SiloAddress;

    public IReadOnlyList<string> DevicesOf(SiloAddress silo) =>
        silo.Equals(localSilo.SiloAddress)
            ? local.Devices
            : LocalDevices.ParseList(
                metadata.GetSiloMetadata(silo).Metadata.GetValueOrDefault(LocalDevices.DevicesKey)
            );

    /// <summary>Active silos with what they published.</summary>
    public List<SiloDevices> Silos()
    {
        var result = new List<SiloDevices>();
        foreach (var member in membership.CurrentSnapshot.Members.Values)
        {
            if (member.Status != SiloStatus.Active)
                continue;
            if (member.SiloAddress.Equals(localSilo.SiloAddress))
            {
                result.Add(
                    new SiloDevices(member.SiloAddress.ToString(), [.. local.Devices], [.. local.Gpus], local.Detection)
                );
                continue;
            }
            var md = metadata.GetSiloMetadata(member.SiloAddress).Metadata;
            result.Add(
                new SiloDevices(
                    member.SiloAddress.ToString(),
                    LocalDevices.ParseList(md.GetValueOrDefault(LocalDevices.DevicesKey)),
                    LocalDevices.ParseGpus(md.GetValueOrDefault(LocalDevices.GpusKey)),
                    md.GetValueOrDefault(LocalDevices.DetectionKey) ?? "unknown (silo metadata not received yet)"
                )
            );
        }
        result.Sort((a, b) => string.CompareOrdinal(a.Silo, b.Silo));
        return result;
    }

    /// <summary>Every device id of the active silos, GPUs first, without duplicates (every silo has cpu0).</summary>
    public string[] AllDevices()
    {
        var set = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var s in Silos())
        foreach (var d in s.Devices)
            set.Add(d);
        return [.. set.Where(LocalDevices.IsGpu), .. set.Where(d => !LocalDevices.IsGpu(d))];
    }

    /// <summary>GPU device ids of the cluster, recomputed at most once a second (the routing asks per frame).</summary>
    public string[] GpuDevices()
    {
        var now = Environment.TickCount64;
        lock (_gate)
        {
            if (_gpusAt != 0 && now - _gpusAt < 1000)
                return _gpus;
        }
        var gpus = AllDevices().Where(LocalDevices.IsGpu).ToArray();
        lock (_gate)
        {
            _gpus = gpus;
            _gpusAt = now;
        }
        return gpus;
    }

    /// <summary>The device a source's frames go to: a GPU (spread by source) when <paramref name="hwTranscode"/>
    /// is requested and the cluster has one, else <c>cpu0</c>.</summary>
    public string Pick(string source, bool hwTranscode)
    {
        if (!hwTranscode)
            return "cpu0";
        var gpus = GpuDevices();
        if (gpus.Length == 0)
            return "cpu0";
        var h = (uint)StringComparer.Ordinal.GetHashCode(source);
        return gpus[h % (uint)gpus.Length];
    }
}
