using System.Diagnostics;
using Blankend.Orleans.Configuration;
using Blankend.Orleans.Grains.Hosting;
using Blankend.Orleans.Hosting;
using Blankend.Orleans.Tests.Support;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Orleans.TestingHost;
using Xunit;
using Xunit.Abstractions;
using Bridge = Blankend.Orleans.Grains.Relay.Bridge.RelayBridge;

namespace Blankend.Orleans.Tests.Relay;

/// <summary>The cluster rule: one bus link per identity (two DEALERs with one identity fight at the ROUTER), held
/// by the silo where the RelayGrain is active, and taken over by another silo when that one dies. A real 2-silo
/// cluster (TestingHost) with the project's silo wiring and a real ROUTER. Failure detection makes it slow-ish,
/// so it runs alone.</summary>
[Trait(TestKind.Name, TestKind.Integration)]
[Collection(SerialCollection.Name)]
public sealed class RelayClusterTests(ITestOutputHelper output)
{
    private static Bridge BridgeOf(InProcessSiloHandle silo) => silo.ServiceProvider.GetRequiredService<Bridge>();

    private static async Task<InProcessSiloHandle> WaitSingleHolderAsync(InProcessTestCluster cluster, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var open = cluster.Silos.Where(s => s.IsActive && BridgeOf(s).IsOpen).ToList();
            Assert.True(open.Count <= 1, $"{open.Count} silos hold a link for one identity");
            if (open.Count == 1)
                return open[0];
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException("no silo took the bus link");
            await Task.Delay(50);
        }
    }

    [Fact]
    public async Task OneLinkPerIdentityAndItMovesToAnotherSiloWhenItsSiloDies()
    {
        using var router = TestRouter.Bind();
        var identity = "relay-" + Guid.NewGuid().ToString("N")[..8];
        var builder = new InProcessTestClusterBuilder(2);
        builder.ConfigureHost(host =>
            host.Configuration.AddInMemoryCollection(
                new Dictionary<string, string?>
                {
                    ["stream:relay_enabled"] = "true",
                    ["stream:zmq_endpoint"] = router.Endpoint,
                    ["stream:zmq_identity"] = identity,
                    ["stream:heartbeat_interval_ms"] = "200",
                }
            )
        );
        builder.ConfigureSilo(
            (_, silo) =>
            {
                silo.Services.AddBlankendOptions(silo.Configuration);
                silo.AddBlankendGrainDefaults(
                    BlankendConfiguration.Read<ClusterSettings, ClusterSettingsValidator>(
                        silo.Configuration,
                        ClusterSettings.Section
                    )
                );
                silo.AddBlankendRelay();
            }
        );
        var cluster = builder.Build();
        await cluster.DeployAsync();
        try
        {
            var relay = cluster.Client.GetGrain<IRelayGrain>(identity);
            var holder = await WaitSingleHolderAsync(cluster, TimeSpan.FromSeconds(10));
            await router.WaitForAsync(
                r => r.Any(m => m.ClientId == "__heartbeat__" && m.Identity == identity),
                TimeSpan.FromSeconds(10),
                "a heartbeat"
            );
            // Stays single over a few keeper rounds from both silos.
            for (var i = 0; i < 10; i++)
            {
                Assert.Same(holder, await WaitSingleHolderAsync(cluster, TimeSpan.FromSeconds(1)));
                await Task.Delay(200);
            }

            var watch = Stopwatch.StartNew();
            await cluster.KillSiloAsync(holder);
            var killedAt = Environment.TickCount64;
            var next = await WaitSingleHolderAsync(cluster, TimeSpan.FromSeconds(60));
            Assert.NotSame(holder, next);
            await router.WaitForAsync(
                r => r.Any(m => m.ClientId == "__heartbeat__" && m.AtMs > killedAt),
                TimeSpan.FromSeconds(10),
                "a heartbeat from the new holder"
            );
            output.WriteLine($"link moved to the surviving silo in {watch.Elapsed.TotalSeconds:F1} s");
            var status = await relay.GetStatus();
            Assert.Equal("connected", status.State);
        }
        finally
        {
            await cluster.StopAllSilosAsync();
            await cluster.DisposeAsync();
        }
    }
}
