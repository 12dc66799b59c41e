using Blankend.Orleans.Configuration;
using Blankend.Orleans.Grains.Ai.Face;
using Blankend.Orleans.Grains.Ai.Matting;
using Blankend.Orleans.Grains.Devices;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Hosting;
using Orleans.Runtime.MembershipService.SiloMetadata;

namespace Blankend.Orleans.Grains.Hosting;

internal static class ProcessingSiloExtensions
{
    /// <summary>
    /// The processing path's silo side: device detection (published as silo metadata), the device placement
    /// director, the device catalog, the per-silo worker host and the steps. Nothing here starts a thread.
    /// </summary>
    public static ISiloBuilder AddBlankendProcessing(this ISiloBuilder silo, IConfiguration config)
    {
        var local = LocalDevices.Create(config);
        var decided = Ai.Runtime.AiProviderStartup.RequireGpu(
            config.GetSection(AiOptions.Section).Get<AiOptions>() ?? new AiOptions(),
            local
        );
        silo.UseSiloMetadata(local.ToMetadata(config));
        var services = silo.Services;
        if (decided is not null)
            services.AddSingleton(decided);
        services.AddSingleton(local);
        services.AddSingleton<DeviceCatalog>();
        services.AddSingleton<IDeviceCatalog>(sp => sp.GetRequiredService<DeviceCatalog>());
        services.AddPlacementDirector<DevicePlacement, DevicePlacementDirector>();
        services.AddSingleton<IFrameStep, ReencodeStep>();
        // AI steps: sessions load on first use, so a silo with the realtime pipeline off loads no model.
        services.AddSingleton<Ai.Runtime.OnnxRuntimeHost>();
        services.AddHostedService<Ai.Runtime.AiProviderStartup>();
        services.AddSingleton<Ai.AiEngine>();
        services.AddSingleton<IFrameStepPreparation, Ai.AiAssetPreparation>();
        // Step order is the frame's order: faces (detect, mesh, swap) first, then matte and depth.
        services.AddBlankendFaceSteps();
        services.AddBlankendMatteSteps();
        services.AddSingleton<Relay.IBusFramePipeline, Processing.RealtimeBusPipeline>();
        services.AddSingleton<DeviceWorkerHost>();
        services.AddSingleton<ProcessingMetrics>();
        return silo;
    }
}
