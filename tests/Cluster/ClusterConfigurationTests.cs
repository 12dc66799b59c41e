using System.Collections;
using System.Net;
using Blankend.Orleans.Configuration;
using Blankend.Orleans.Gateway.Cluster;
using Blankend.Orleans.Gateway.Hosting;
using Blankend.Orleans.Hosting;
using Blankend.Orleans.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Orleans.Clustering.Redis;
using Orleans.Configuration;
using Xunit;

namespace Blankend.Orleans.Tests.Cluster;

/// <summary>Cluster keys: membership chosen by configuration alone, failure-detection settings, silo metadata, and
/// refusal of bad values naming the key. The apps are built, not started (nothing connects to Redis).</summary>
[Trait(TestKind.Name, TestKind.Unit)]
public sealed class ClusterConfigurationTests
{
    private static string[] Args(params string[] extra) => TestEnv.GatewayArgs(extra);

    [Fact]
    public void ShippedConfigKeepsTheEmbeddedLocalhostDefault()
    {
        using var app = BlankendGatewayApp.Create(Args(), new Hashtable());
        var cluster = app.Services.GetRequiredService<IOptions<ClusterSettings>>().Value;
        Assert.Equal(("embedded", "localhost"), (cluster.Mode, cluster.Clustering));
        Assert.Equal("127.0.0.1", cluster.AdvertisedIp);
    }

    [Fact]
    public void ClientModeGatewayOnRedisTakesItsSettingsFromConfigurationAlone()
    {
        using var app = BlankendGatewayApp.Create(
            Args(
                "--cluster:mode=client",
                "--cluster:clustering=redis",
                "--cluster:redis=10.1.2.3:6380,password=secret",
                "--cluster:cluster_id=prod",
                "--cluster:gateway_list_refresh_ms=1500"
            ),
            new Hashtable()
        );
        var redis = app.Services.GetRequiredService<IOptions<RedisClusteringOptions>>().Value.ConfigurationOptions!;
        Assert.Equal("10.1.2.3:6380", redis.EndPoints.Single().ToString());
        Assert.Equal("secret", redis.Password);
        Assert.False(redis.AbortOnConnectFail); // a gateway started before Redis keeps trying
        Assert.Equal("prod", app.Services.GetRequiredService<IOptions<ClusterOptions>>().Value.ClusterId);
        Assert.Equal(
            TimeSpan.FromMilliseconds(1500),
            app.Services.GetRequiredService<
                IOptions<global::Orleans.Configuration.GatewayOptions>
            >().Value.GatewayListRefreshPeriod
        );
    }

    [Fact]
    public void EnvironmentVariablesSelectRedisMembershipForAnEmbeddedSilo()
    {
        var env = new Hashtable
        {
            ["BLANKEND_CLUSTERING"] = "redis",
            ["BLANKEND_REDIS"] = "redis.internal:6379",
            ["BLANKEND_CLUSTER_ID"] = "edge",
            ["BLANKEND_ADVERTISED_IP"] = "10.0.0.5",
        };
        using var app = BlankendGatewayApp.Create(
            Args("--cluster:probe_timeout_ms=800", "--cluster:missed_probes_limit=3"),
            env
        );
        var cluster = app.Services.GetRequiredService<IOptions<ClusterSettings>>().Value;
        Assert.Equal(
            ("redis", "redis.internal:6379", "edge", "10.0.0.5"),
            (cluster.Clustering, cluster.Redis, cluster.ClusterId, cluster.AdvertisedIp)
        );

        var endpoints = app.Services.GetRequiredService<IOptions<EndpointOptions>>().Value;
        Assert.Equal(IPAddress.Parse("10.0.0.5"), endpoints.AdvertisedIPAddress);
        Assert.Equal(cluster.SiloPort, endpoints.SiloPort);
        var membership = app.Services.GetRequiredService<IOptions<ClusterMembershipOptions>>().Value;
        Assert.Equal(TimeSpan.FromMilliseconds(800), membership.ProbeTimeout);
        Assert.Equal(3, membership.NumMissedProbesLimit);
        Assert.Equal(2, membership.NumVotesForDeathDeclaration);
        var redis = Assert.IsType<DnsEndPoint>(
            app.Services.GetRequiredService<IOptions<RedisClusteringOptions>>()
                .Value.ConfigurationOptions!.EndPoints.Single()
        );
        Assert.Equal(("redis.internal", 6379), (redis.Host, redis.Port));
    }

    /// <summary>config/examples/*.json (referenced by docs/deployment.md) load and pass validation.</summary>
    [Theory]
    [InlineData("silo-gpu.redis.json", "embedded", "gpu0,cpu0")]
    [InlineData("silo-cpu.redis.json", "embedded", null)]
    [InlineData("gateway.redis.json", "client", null)]
    public void ExampleClusterConfigFilesAreValid(string file, string mode, string? devices)
    {
        var dir = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(dir, "Blankend.Orleans.sln")))
            dir = Path.GetDirectoryName(dir) ?? throw new InvalidOperationException("repository root not found");
        var path = Path.Combine(dir, "config", "examples", file);
        using var app = BlankendGatewayApp.Create(Args("--config", path), new Hashtable());
        var cluster = app.Services.GetRequiredService<IOptions<ClusterSettings>>().Value;
        Assert.Equal(("redis", "redis:6379", mode), (cluster.Clustering, cluster.Redis, cluster.Mode));
        // announced by the processing path
        Assert.Equal(devices, app.Configuration["Orleans:Metadata:blankend_devices"]);
    }

    [Theory]
    [InlineData("--cluster:clustering=zookeeper", "cluster:clustering")]
    [InlineData("--cluster:advertised_ip=my-host", "cluster:advertised_ip")]
    [InlineData("--cluster:probe_timeout_ms=10", "cluster:probe_timeout_ms")]
    [InlineData("--cluster:missed_probes_limit=0", "cluster:missed_probes_limit")]
    [InlineData("--cluster:gateway_list_refresh_ms=0", "cluster:gateway_list_refresh_ms")]
    public void BadClusterValueStopsStartupNamingTheKey(string arg, string key)
    {
        var e = Assert.Throws<BlankendConfigurationException>(() =>
            BlankendGatewayApp.Create(Args(arg), new Hashtable())
        );
        Assert.Contains(key, e.Message);
    }

    [Theory]
    [InlineData("127.0.0.1:6379,nonsense=1")]
    [InlineData(",")]
    public void UnusableRedisConnectionStringStopsStartupNamingTheKey(string value)
    {
        var e = Assert.ThrowsAny<Exception>(() =>
            BlankendGatewayApp.Create(
                Args("--cluster:mode=client", "--cluster:clustering=redis", $"--cluster:redis={value}"),
                new Hashtable()
            )
        );
        Assert.Contains("cluster:redis", BlankendStartup.Describe(e));
    }

    [Fact]
    public void EnvironmentVariablesSelectPostgresMembershipAndGrainStorage()
    {
        var env = new Hashtable
        {
            ["BLANKEND_CLUSTERING"] = "postgres",
            ["BLANKEND_POSTGRES"] = "Host=db.internal;Port=5433;Database=blankend;Username=svc;Password=s3cret",
        };
        using var app = BlankendGatewayApp.Create(Args(), env);
        var cluster = app.Services.GetRequiredService<IOptions<ClusterSettings>>().Value;
        Assert.Equal("postgres", cluster.Clustering);
        var adonet = app.Services.GetRequiredService<IOptions<AdoNetClusteringSiloOptions>>().Value;
        Assert.Equal("Npgsql", adonet.Invariant);
        var cs = new Npgsql.NpgsqlConnectionStringBuilder(adonet.ConnectionString);
        Assert.Equal(("db.internal", 5433, "blankend", "svc"), (cs.Host, cs.Port, cs.Database, cs.Username));
        // The schema step runs first in the silo's lifecycle; grain storage "blankend" is the ADO.NET one.
        Assert.Contains(app.Services.GetServices<ILifecycleParticipant<ISiloLifecycle>>(), p => p is PostgresSchema);
        var storage = app.Services.GetRequiredKeyedService<global::Orleans.Storage.IGrainStorage>("blankend");
        Assert.Contains("AdoNet", storage.GetType().Name);
    }

    [Theory]
    [InlineData("--cluster:postgres=", "cluster:postgres")]
    [InlineData("--cluster:postgres=Database=x", "cluster:postgres")]
    [InlineData("--cluster:postgres=Host=h;Nonsense=1", "cluster:postgres")]
    public void UnusablePostgresSettingStopsStartupNamingTheKey(string arg, string key)
    {
        var e = Assert.ThrowsAny<Exception>(() =>
            BlankendGatewayApp.Create(Args("--cluster:clustering=postgres", arg), new Hashtable())
        );
        Assert.Contains(key, BlankendStartup.Describe(e));
    }
}
