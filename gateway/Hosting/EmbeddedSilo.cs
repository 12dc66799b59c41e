using Blankend.Orleans.Grains.Hosting;

namespace Blankend.Orleans.Gateway.Hosting;

/// <summary>The embedded build (<c>BlankendEmbedded=true</c>, the default): the gateway process also hosts a silo.
/// Compiled only into that build; the client-mode build has <see cref="EmbeddedSiloUnavailable"/> instead.</summary>
internal static class EmbeddedSilo
{
    public const bool Built = true;

    public static void AddEmbeddedSilo(this WebApplicationBuilder builder, IConfiguration config) =>
        builder.UseOrleans(silo => silo.AddBlankendSilo(config));

    /// <summary>After the host stopped: the NetMQ context is process-wide (the bus link's sockets are already
    /// closed), release it without waiting.</summary>
    public static void ReleaseProcessResources() => NetMQ.NetMQConfig.Cleanup(block: false);
}
