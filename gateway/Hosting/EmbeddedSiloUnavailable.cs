using Blankend.Orleans.Configuration;
using Blankend.Orleans.Hosting;

namespace Blankend.Orleans.Gateway.Hosting;

/// <summary>The client-mode build (<c>BlankendEmbedded=false</c>) carries no grain code, so it cannot host a silo:
/// <c>cluster.mode=embedded</c> stops start-up with a message naming the key.</summary>
internal static class EmbeddedSilo
{
    public const bool Built = false;

    public static void AddEmbeddedSilo(this WebApplicationBuilder builder, IConfiguration config) =>
        throw new BlankendConfigurationException([
            $"{ClusterSettings.Section}.mode: 'embedded' needs the embedded build of the gateway; this one was built "
                + "client-only (BlankendEmbedded=false): set cluster.mode=client (BLANKEND_CLUSTER_MODE) and point it at the silos",
        ]);

    /// <summary>Nothing to release: this build opens no ZeroMQ socket.</summary>
    public static void ReleaseProcessResources() { }
}
