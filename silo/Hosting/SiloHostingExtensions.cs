using System.Net;
using Blankend.Orleans.Configuration;
using Microsoft.Extensions.Configuration;
using Orleans.Configuration;

namespace Blankend.Orleans.Silo.Hosting;

public static class SiloHostingExtensions
{
    /// <summary>Everything a Blankend silo needs: options, membership, grain lifetime. Used by the silo process,
    /// by the gateway's embedded mode and by the test clusters, so all three run the same wiring.</summary>
    public static ISiloBuilder AddBlankendSilo(this ISiloBuilder silo, IConfiguration config)
    {
        silo.Services.AddBlankendOptions(config);
        var cluster = BlankendConfiguration.Read<ClusterSettings, ClusterSettingsValidator>(config, ClusterSettings.Section);

        silo.UseLocalhostClustering(
            siloPort: cluster.SiloPort,
            gatewayPort: cluster.GatewayPort,
            primarySiloEndpoint: new IPEndPoint(IPAddress.Loopback, cluster.PrimarySiloPort),
            serviceId: cluster.ServiceId,
            clusterId: cluster.ClusterId);
        silo.AddBlankendGrainDefaults(cluster);
        silo.AddBlankendCodec();
        return silo;
    }

    /// <summary>Grain lifetime settings, shared with the test clusters (which bring their own membership).</summary>
    public static ISiloBuilder AddBlankendGrainDefaults(this ISiloBuilder silo, ClusterSettings cluster)
    {
        var idle = TimeSpan.FromSeconds(cluster.GrainIdleSeconds);
        silo.Configure<GrainCollectionOptions>(o =>
        {
            o.CollectionAge = idle;
            o.CollectionQuantum = TimeSpan.FromSeconds(Math.Clamp(cluster.GrainIdleSeconds / 2, 1, 60));
        });
        return silo;
    }
}
