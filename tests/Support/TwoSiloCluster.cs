using Orleans.TestingHost;
using Xunit;

namespace Blankend.Orleans.Tests.Support;

/// <summary>A real 2-silo Orleans cluster (TestingHost) whose silos <typeparamref name="TConfigurator"/> sets up;
/// the fixtures of the TestCluster tests derive from it.</summary>
public abstract class TwoSiloCluster<TConfigurator> : IAsyncLifetime
    where TConfigurator : ISiloConfigurator, new()
{
    public TestCluster Cluster { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        var builder = new TestClusterBuilder(2);
        builder.AddSiloBuilderConfigurator<TConfigurator>();
        Configure(builder);
        Cluster = builder.Build();
        await Cluster.DeployAsync();
    }

    public virtual async Task DisposeAsync()
    {
        await Cluster.StopAllSilosAsync();
        await Cluster.DisposeAsync();
    }

    /// <summary>Last changes to the builder (transport, <c>Properties</c> the configurators read) before the
    /// build.</summary>
    protected virtual void Configure(TestClusterBuilder builder) { }
}
