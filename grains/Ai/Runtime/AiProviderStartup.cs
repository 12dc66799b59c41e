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
    /// <exception cref="BlankendConfigurationException">The GPU provider cannot be used.</exception>
    public static void RequireGpu(AiOptions options, LocalDevices devices)
    {
        if (!options.RequireGpu)
            return;
        using var probe = new OnnxRuntimeHost(Options.Create(options), NullLogger<OnnxRuntimeHost>.Instance, devices);
        var state = probe.ProviderState;
        if (AiProviders.IsGpu(state.Active))
            return;
        throw new BlankendConfigurationException([
            $"ai:require_gpu is true but the AI models would run on {state.Active}: {state.Reason}"
                + (state.MissingLibrary is { } lib ? $" (missing library: {lib})" : ""),
        ]);
    }
}
