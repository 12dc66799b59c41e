using Blankend.Orleans.Grains.Codec;
using Blankend.Orleans.Grains.Placement;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Blankend.Orleans.Grains.Hosting;

internal static class CodecHosting
{
    /// <summary>The silo's ffmpeg side: <see cref="CodecHost"/> (probed at start-up), the per-silo placement of
    /// the codec status grain.</summary>
    public static ISiloBuilder AddBlankendCodec(this ISiloBuilder silo)
    {
        silo.Services.AddSingleton<CodecHost>();
        silo.Services.AddHostedService<CodecStartup>();
        silo.AddPlacementDirector<SiloKeyedPlacement, SiloKeyedPlacementDirector>();
        return silo;
    }

    /// <summary>Starts the ffmpeg probe when the host starts (without holding the start up), so that its result is
    /// logged once and the first session does not wait for it.</summary>
    private sealed class CodecStartup(CodecHost host) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken)
        {
            _ = host.Capabilities;
            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
