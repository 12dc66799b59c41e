using Blankend.Orleans.Configuration;
using Blankend.Orleans.Grains.Devices;
using Blankend.Orleans.Grains.Hosting;
using Blankend.Orleans.Hosting;
using Blankend.Orleans.Tests.Support;
using Microsoft.Extensions.Configuration;
using Orleans.TestingHost;
using Xunit;

namespace Blankend.Orleans.Tests.Grains;

/// <summary>A real 2-silo Orleans cluster (TestingHost) running the project's grains and silo wiring.</summary>
public sealed class TwoSiloClusterFixture : TwoSiloCluster<TwoSiloClusterFixture.SiloConfigurator>
{
    /// <summary>Short refresh so that expiry is observable in a test: registrations live 3 x 300 ms.</summary>
    public const int RefreshMs = 300;

    public sealed class SiloConfigurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder)
        {
            var config = new ConfigurationBuilder()
                .AddInMemoryCollection(
                    new Dictionary<string, string?> { ["cluster:observer_refresh_ms"] = RefreshMs.ToString() }
                )
                .Build();
            siloBuilder.Services.AddBlankendOptions(config);
            siloBuilder.AddBlankendGrainDefaults(
                BlankendConfiguration.Read<ClusterSettings, ClusterSettingsValidator>(config, ClusterSettings.Section)
            );
            siloBuilder.AddBlankendProcessing(config);
        }
    }
}
