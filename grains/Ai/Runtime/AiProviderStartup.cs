using Blankend.Orleans.Ai;
using Blankend.Orleans.Configuration;
using Blankend.Orleans.Grains.Devices;
using Blankend.Orleans.Hosting;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Blankend.Orleans.Grains.Ai.Runtime;

/// <summary>
/// Decides the GPU provider when the silo starts (not at the first frame), so a GPU that cannot be used shows in
/// /healthz, the log and the fallback counter from the start.
/// </summary>
internal sealed class AiProviderStartup(OnnxRuntimeHost runtime) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        _ = runtime.ProviderState;
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>
    /// <c>ai.require_gpu: true</c>: decides the provider while the silo is being built and refuses to start
    /// (a configuration error: one line, exit 2) when the AI models would not run on a GPU.
    /// </summary>
    /// <returns>The decision, which the silo's <see cref="OnnxRuntimeHost"/> then takes as it is (the CUDA probe
    /// session is made once); null when the GPU is not required and the host decides at start.</returns>
    /// <exception cref="BlankendConfigurationException">The GPU provider cannot be used.</exception>
    public static AiProviderDecided? RequireGpu(AiOptions options, LocalDevices devices)
    {
        if (!options.RequireGpu)
            return null;
        using var probe = new OnnxRuntimeHost(Options.Create(options), NullLogger<OnnxRuntimeHost>.Instance, devices);
        var state = probe.ProviderState;
        if (AiProviders.IsGpu(state.Active))
            return new AiProviderDecided(state);
        throw new BlankendConfigurationException([
            $"ai:require_gpu is true but the AI models would run on {state.Active}: {state.Reason}"
                + (state.MissingLibrary is { } lib ? $" (missing library: {lib})" : ""),
        ]);
    }
}

/// <summary>The provider decided while the silo was built (<c>ai.require_gpu</c>), for the silo's
/// <see cref="OnnxRuntimeHost"/> to take instead of deciding again.</summary>
internal sealed record AiProviderDecided(AiProviderState State);
