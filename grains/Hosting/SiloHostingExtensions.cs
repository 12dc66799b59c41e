using Blankend.Orleans.Configuration;
using Blankend.Orleans.Grains.Codec;
using Blankend.Orleans.Grains.Devices;
using Blankend.Orleans.Grains.Processing;
using Blankend.Orleans.Grains.Relay;
using Blankend.Orleans.Grains.Relay.Bridge;
using Blankend.Orleans.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Orleans.Configuration;
using Orleans.Dashboard;

namespace Blankend.Orleans.Grains.Hosting;

public static class SiloHostingExtensions
{
    /// <summary>Everything a Blankend silo needs: options, membership (localhost or redis, see
    /// <see cref="ClusterMembership"/>), grain lifetime, trace propagation and (unless
    /// <c>telemetry.dashboard_enabled</c> is false) the Orleans Dashboard's silo side. Used by the silo process and
    /// by the gateway's embedded mode; the test clusters use <see cref="AddBlankendGrainDefaults"/>.</summary>
    public static ISiloBuilder AddBlankendSilo(this ISiloBuilder silo, IConfiguration config)
    {
        silo.Services.AddBlankendOptions(config);
        var cluster = BlankendConfiguration.Read<ClusterSettings, ClusterSettingsValidator>(
            config,
            ClusterSettings.Section
        );

        silo.UseBlankendMembership(cluster);
        silo.AddBlankendGrainDefaults(cluster);

        // Grain calls carry the caller's trace context (W3C traceparent in the RequestContext), so a gateway
        // span and the grain spans of the same frame or request form one trace.
        silo.AddActivityPropagation();
        var telemetry = BlankendConfiguration.Read<TelemetryOptions, TelemetryOptionsValidator>(
            config,
            TelemetryOptions.Section
        );
        if (telemetry.DashboardEnabled)
            silo.AddDashboard(o => o.HideTrace = telemetry.DashboardHideTrace);
        silo.AddBlankendProcessing(config);
        silo.AddBlankendCodec();
        silo.AddBlankendRelay();
        return silo;
    }

    /// <summary>The ZeroMQ bus link (docs/protocol.md). Registered on every silo; it opens a socket only while
    /// stream.relay_enabled is set AND the RelayGrain of the configured identity is active on this silo.</summary>
    public static ISiloBuilder AddBlankendRelay(this ISiloBuilder silo)
    {
        var services = silo.Services;
        if (services.Any(d => d.ServiceType == typeof(RelayBridge)))
            return silo;
        services.AddSingleton<RelayCounters>();
        services.TryAddSingleton<Blankend.Orleans.Limits.LiveSources>(); // shared with an embedding gateway
        services.AddSingleton<RelayMetrics>();
        services.AddSingleton<RelayBridge>();
        services.AddSingleton<IRelayLink>(sp => sp.GetRequiredService<RelayBridge>());
        // Registered after the Orleans silo: started once grains can be called, stopped before the silo stops.
        services.AddHostedService(sp => sp.GetRequiredService<RelayBridge>());
        return silo;
    }

    /// <summary>Grain lifetime settings and the grain storage (in memory unless the membership wiring registered a
    /// shared one), shared with the test clusters (which bring their own membership).</summary>
    public static ISiloBuilder AddBlankendGrainDefaults(this ISiloBuilder silo, ClusterSettings cluster)
    {
        if (
            !silo.Services.Any(d =>
                d.IsKeyedService
                && Equals(d.ServiceKey, PipelineConfigGrain.StorageName)
                && d.ServiceType == typeof(global::Orleans.Storage.IGrainStorage)
            )
        )
            silo.AddMemoryGrainStorage(PipelineConfigGrain.StorageName);
        var idle = TimeSpan.FromSeconds(cluster.GrainIdleSeconds);
        silo.Configure<GrainCollectionOptions>(o =>
        {
            o.CollectionAge = idle;
            o.CollectionQuantum = TimeSpan.FromSeconds(Math.Clamp(cluster.GrainIdleSeconds / 2, 1, 60));
        });
        return silo;
    }
}
