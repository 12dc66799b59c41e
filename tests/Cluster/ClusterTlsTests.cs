using System.Collections;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using Blankend.Orleans.Configuration;
using Blankend.Orleans.Gateway.Hosting;
using Blankend.Orleans.Grains.Hosting;
using Blankend.Orleans.Hosting;
using Blankend.Orleans.Processing;
using Blankend.Orleans.Tests.Support;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using Orleans.Connections.Security;
using Orleans.Runtime;
using Orleans.TestingHost;
using Xunit;

namespace Blankend.Orleans.Tests.Cluster;

/// <summary>The certificates of the cluster TLS tests, made at run time: a CA, a silo certificate (server and client
/// authentication, PKCS#12 with a password), a gateway certificate (client authentication only, PEM certificate and
/// key), and certificates that must not work: another CA's, an expired one, a server-only one.</summary>
public sealed class ClusterTlsFiles : IDisposable
{
    public const string SiloPassword = "pfx-Pa55word!";
    public const string KeyPassword = "pem-Pa55word!";

    public TestCertificates Files { get; } = new();
    public X509Certificate2 Ca { get; }
    public X509Certificate2 Silo { get; }
    public X509Certificate2 Gateway { get; }
    public X509Certificate2 OtherCa { get; }
    public X509Certificate2 Intruder { get; }

    public string CaPem { get; }
    public string SiloPfx { get; }
    public string GatewayPem { get; }
    public string GatewayKey { get; }
    public string GatewayEncryptedKey { get; }
    public string OtherCaPem { get; }
    public string IntruderPfx { get; }
    public string ExpiredPfx { get; }
    public string ServerOnlyPfx { get; }

    public ClusterTlsFiles()
    {
        string[] both = [TestCertificates.ServerAuth, TestCertificates.ClientAuth];
        Ca = TestCertificates.CreateCa("blankend-test-ca");
        Silo = TestCertificates.CreateLeaf(Ca, "blankend-silo", both);
        Gateway = TestCertificates.CreateLeaf(Ca, "blankend-gateway", [TestCertificates.ClientAuth]);
        OtherCa = TestCertificates.CreateCa("someone-else-ca");
        Intruder = TestCertificates.CreateLeaf(OtherCa, "intruder", both);
        using var expired = TestCertificates.CreateLeaf(
            Ca,
            "expired",
            both,
            DateTimeOffset.UtcNow.AddDays(-10),
            DateTimeOffset.UtcNow.AddDays(-1)
        );
        using var serverOnly = TestCertificates.CreateLeaf(Ca, "server-only", [TestCertificates.ServerAuth]);

        CaPem = Files.WriteCertificatePem(Ca, "ca.pem");
        SiloPfx = Files.WritePfx(Silo, "silo.pfx", SiloPassword);
        GatewayPem = Files.WriteCertificatePem(Gateway, "gateway.crt");
        GatewayKey = Files.WriteKeyPem(Gateway, "gateway.key");
        GatewayEncryptedKey = Files.WriteKeyPem(Gateway, "gateway-encrypted.key", KeyPassword);
        OtherCaPem = Files.WriteCertificatePem(OtherCa, "other-ca.pem");
        IntruderPfx = Files.WritePfx(Intruder, "intruder.pfx", null);
        ExpiredPfx = Files.WritePfx(expired, "expired.pfx", null);
        ServerOnlyPfx = Files.WritePfx(serverOnly, "server-only.pfx", null);
    }

    /// <summary><c>cluster.tls</c> of a silo: the silo certificate, the test CA.</summary>
    public Dictionary<string, string?> SiloKeys() =>
        new()
        {
            ["cluster:tls:enabled"] = "true",
            ["cluster:tls:certificate"] = SiloPfx,
            ["cluster:tls:certificate_password"] = SiloPassword,
            ["cluster:tls:ca_certificate"] = CaPem,
        };

    /// <summary><c>cluster.tls</c> of a client-mode gateway: PEM certificate and key, the test CA.</summary>
    public ClusterTlsSettings GatewaySettings() =>
        new()
        {
            Enabled = true,
            Certificate = GatewayPem,
            CertificateKey = GatewayKey,
            CaCertificate = CaPem,
        };

    public void Dispose()
    {
        foreach (var c in new[] { Ca, Silo, Gateway, OtherCa, Intruder })
            c.Dispose();
        Files.Dispose();
    }
}

/// <summary>Two silos with <c>cluster.tls</c> on (real TCP, the test's certificates), no client of its own: each
/// test connects the clients it needs. The secondary silo alone owns <c>gpu0</c>, so the grain of that device lives
/// there whoever calls it.</summary>
public sealed class ClusterTlsFixture : TwoSiloCluster<ClusterTlsFixture.SiloConfigurator>
{
    public const string SecondSiloName = "Secondary_1";

    /// <summary>What the silos log under <c>Blankend.ClusterTls</c> (one fixture per test run: a static is enough
    /// to reach the configurators, which TestingHost creates itself).</summary>
    public static readonly LogCapture SiloLog = new(c => c.StartsWith("Blankend.ClusterTls", StringComparison.Ordinal));

    public ClusterTlsFiles Tls { get; } = new();

    protected override void Configure(TestClusterBuilder builder)
    {
        builder.Options.ConnectionTransport = ConnectionTransportType.TcpSocket;
        builder.Options.InitializeClientOnDeploy = false;
        foreach (var (key, value) in Tls.SiloKeys())
            builder.Properties[key] = value!;
    }

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        Tls.Dispose();
    }

    public sealed class SiloConfigurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder)
        {
            var c = siloBuilder.Configuration;
            var second = c["Orleans:Endpoints:SiloPort"] != c["BaseSiloPort"];
            var config = new ConfigurationBuilder()
                .AddInMemoryCollection(c.GetSection("cluster:tls").AsEnumerable().Where(kv => kv.Value is not null))
                .AddInMemoryCollection(
                    new Dictionary<string, string?>
                    {
                        ["Orleans:Metadata:blankend_devices"] = second ? "gpu0,cpu0" : "cpu0",
                    }
                )
                .Build();
            siloBuilder.Services.AddBlankendOptions(config);
            var cluster = BlankendConfiguration.Read<ClusterSettings, ClusterSettingsValidator>(
                config,
                ClusterSettings.Section
            );
            siloBuilder.AddBlankendGrainDefaults(cluster);
            siloBuilder.AddBlankendProcessing(config);
            siloBuilder.UseBlankendTls(cluster.Tls);
            siloBuilder.Services.AddSingleton<ILoggerProvider>(SiloLog);
        }
    }
}

/// <summary><c>cluster.tls</c> on a real 2-silo cluster: a grain call that crosses silos works between peers of the
/// cluster's CA, and a client with another CA's certificate, with none, or without TLS cannot connect.</summary>
[Trait(TestKind.Name, TestKind.Integration)]
public sealed class ClusterTlsTests(ClusterTlsFixture fixture) : IClassFixture<ClusterTlsFixture>
{
    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(15);
    private static readonly TimeSpan RefusedWithin = TimeSpan.FromSeconds(4);

    private IPEndPoint PrimaryGateway =>
        fixture.Cluster.Primary?.GatewayAddress?.Endpoint
        ?? throw new InvalidOperationException("the primary silo has no gateway");

    /// <summary>A cluster client that knows only the primary silo's gateway; <paramref name="configure"/> sets up
    /// its TLS (or not).</summary>
    private async Task<IHost> StartClientAsync(
        Action<IClientBuilder> configure,
        LogCapture? log = null,
        TimeSpan? within = null
    )
    {
        var host = new HostBuilder()
            .ConfigureLogging(l =>
            {
                if (log is not null)
                    l.AddProvider(log);
            })
            .UseOrleansClient(configure)
            .Build();
        try
        {
            using var timeout = new CancellationTokenSource(within ?? ConnectTimeout);
            await host.StartAsync(timeout.Token);
            return host;
        }
        catch
        {
            host.Dispose();
            throw;
        }
    }

    /// <summary>Static clustering on the primary's gateway with the cluster's ids, and a short connect
    /// timeout.</summary>
    private void ToPrimary(IClientBuilder c)
    {
        c.UseStaticClustering(PrimaryGateway);
        c.Configure<ClusterOptions>(o =>
        {
            o.ClusterId = fixture.Cluster.Options.ClusterId;
            o.ServiceId = fixture.Cluster.Options.ServiceId;
        });
        c.Configure<ConnectionOptions>(o => o.OpenConnectionTimeout = TimeSpan.FromSeconds(3));
    }

    /// <summary>A client that the silo refuses never gets connected: Orleans keeps trying the gateway (each
    /// connection is cut during or right after the TLS handshake) until the start is given up after
    /// <see cref="RefusedWithin"/>.</summary>
    private async Task ConnectionIsRefusedAsync(Action<IClientBuilder> tls, LogCapture? log = null)
    {
        log ??= new LogCapture(_ => true);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            using var host = await StartClientAsync(
                c =>
                {
                    ToPrimary(c);
                    tls(c);
                },
                log,
                RefusedWithin
            );
        });
        Assert.Contains(log.Lines, l => l == $"Connection attempt to endpoint S{PrimaryGateway}:0 failed");
    }

    [Fact]
    public async Task AGrainOnTheSecondSiloAnswersAGatewayClientOfTheFirstOverMutualTls()
    {
        // The client-mode gateway's own wiring: ClusterMembership.UseBlankendMembership with cluster.tls on.
        Assert.True(IPAddress.IsLoopback(PrimaryGateway.Address));
        var cluster = new ClusterSettings
        {
            Mode = "client",
            Clustering = "localhost",
            GatewayPorts = [PrimaryGateway.Port],
            ClusterId = fixture.Cluster.Options.ClusterId,
            ServiceId = fixture.Cluster.Options.ServiceId,
            Tls = fixture.Tls.GatewaySettings(),
        };
        Assert.False(new ClusterSettingsValidator().Validate(null, cluster).Failed);
        var log = new LogCapture(c => c.StartsWith("Blankend.ClusterTls", StringComparison.Ordinal));
        using var host = await StartClientAsync(c => c.UseBlankendMembership(cluster), log);
        var client = host.Services.GetRequiredService<IClusterClient>();

        // gpu0 is owned by the second silo only: the call goes client -> primary (gateway) -> second silo.
        var second = fixture
            .Cluster.GetActiveSilos()
            .Single(s => s.Name == ClusterTlsFixture.SecondSiloName)
            .SiloAddress.ToString();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        DeviceStatus status;
        while (true)
        {
            // The second silo's metadata reaches the primary's cache shortly after it joins (over TLS too).
            try
            {
                status = await client.GetGrain<IDeviceWorkerGrain>("gpu0").GetStatus();
                break;
            }
            catch (OrleansException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(200);
            }
        }
        Assert.Equal(second, status.Silo);
        Assert.Equal(2, (await client.GetGrain<IManagementGrain>(0).GetHosts(onlyActive: true)).Count);

        Assert.Contains(log.Lines, l =>
            l.StartsWith("cluster TLS on: certificate CN=blankend-gateway", StringComparison.Ordinal)
        );
        Assert.Contains(ClusterTlsFixture.SiloLog.Lines, l =>
            l.StartsWith("cluster TLS on: certificate CN=blankend-silo", StringComparison.Ordinal)
            && l.Contains("client certificates required", StringComparison.Ordinal)
        );
    }

    [Fact]
    public async Task AClientWhoseCertificateAnotherCaSignedIsRefusedAndTheSiloSaysWhy()
    {
        // An intruder that trusts anything and presents a certificate of its own CA.
        await ConnectionIsRefusedAsync(c => c.UseTls(fixture.Tls.Intruder, o =>
            {
                o.ClientCertificateMode = RemoteCertificateMode.RequireCertificate;
                o.AllowAnyRemoteCertificate();
            }));
        Assert.Contains(ClusterTlsFixture.SiloLog.Lines, l =>
            l.StartsWith("cluster TLS: refused the peer certificate CN=intruder", StringComparison.Ordinal)
            && l.Contains("does not chain to cluster:tls:ca_certificate", StringComparison.Ordinal)
        );
    }

    [Fact]
    public async Task AClientWithoutACertificateIsRefusedWhenMutualTlsIsRequired() =>
        await ConnectionIsRefusedAsync(c =>
            c.UseTls(o =>
            {
                o.ClientCertificateMode = RemoteCertificateMode.NoCertificate;
                o.AllowAnyRemoteCertificate();
            })
        );

    [Fact]
    public async Task APlainTcpClientIsRefused() => await ConnectionIsRefusedAsync(_ => { });

    [Fact]
    public async Task AGatewayThatTrustsAnotherCaRefusesTheSilosAndSaysWhy()
    {
        // Our own wiring on the client side, configured with the other CA (and a certificate of it): the silos'
        // certificate does not chain to its ca_certificate, so the gateway refuses them.
        var tls = new ClusterTlsSettings
        {
            Enabled = true,
            Certificate = fixture.Tls.IntruderPfx,
            CaCertificate = fixture.Tls.OtherCaPem,
        };
        var log = new LogCapture(_ => true);
        await ConnectionIsRefusedAsync(c => c.UseBlankendTls(tls), log);
        Assert.Contains(log.Lines, l =>
            l.StartsWith("cluster TLS: refused the peer certificate CN=blankend-silo", StringComparison.Ordinal)
            && l.Contains("does not chain to cluster:tls:ca_certificate", StringComparison.Ordinal)
        );
    }
}

/// <summary><c>cluster.tls</c> settings: the environment variables, the start-up check of the files (one line
/// naming the setting, never the password), and the peer check alone.</summary>
[Trait(TestKind.Name, TestKind.Unit)]
public sealed class ClusterTlsSettingsTests(ClusterTlsFiles tls) : IClassFixture<ClusterTlsFiles>
{
    private static ClusterSettings Read(Dictionary<string, string?> keys) =>
        BlankendConfiguration.Read<ClusterSettings, ClusterSettingsValidator>(
            new ConfigurationBuilder().AddInMemoryCollection(keys).Build(),
            ClusterSettings.Section
        );

    [Fact]
    public void EnvironmentVariablesMapOntoClusterTlsKeys()
    {
        var keys = BlankendEnvironment.ToConfigKeys(
            new Hashtable
            {
                ["BLANKEND_CLUSTER_TLS_ENABLED"] = "yes",
                ["BLANKEND_CLUSTER_TLS_CERTIFICATE"] = "/run/secrets/node.pfx",
                ["BLANKEND_CLUSTER_TLS_CERTIFICATE_KEY"] = "/run/secrets/node.key",
                ["BLANKEND_CLUSTER_TLS_CERTIFICATE_PASSWORD"] = "s3cret",
                ["BLANKEND_CLUSTER_TLS_CA_CERTIFICATE"] = "/run/secrets/ca.pem",
                ["BLANKEND_CLUSTER_TLS_REQUIRE_CLIENT_CERTIFICATE"] = "0",
                ["BLANKEND_CLUSTER_TLS_ALLOWED_PEERS"] = "CN=silo-a, CN=gw-1",
            }
        );
        Assert.Equal("true", keys["cluster:tls:enabled"]);
        Assert.Equal("/run/secrets/node.pfx", keys["cluster:tls:certificate"]);
        Assert.Equal("/run/secrets/node.key", keys["cluster:tls:certificate_key"]);
        Assert.Equal("s3cret", keys["cluster:tls:certificate_password"]);
        Assert.Equal("/run/secrets/ca.pem", keys["cluster:tls:ca_certificate"]);
        Assert.Equal("false", keys["cluster:tls:require_client_certificate"]);
        Assert.Equal("CN=silo-a, CN=gw-1", keys["cluster:tls:allowed_peers:0"]);

        var e = Assert.Throws<BlankendConfigurationException>(() =>
            BlankendEnvironment.ToConfigKeys(new Hashtable { ["BLANKEND_CLUSTER_TLS_ENABLED"] = "maybe" })
        );
        Assert.Contains("BLANKEND_CLUSTER_TLS_ENABLED", e.Message);
    }

    [Fact]
    public void AGatewayBuiltFromTheEnvironmentAloneHasClusterTlsOn()
    {
        var env = new Hashtable
        {
            ["BLANKEND_CLUSTER_TLS_ENABLED"] = "1",
            ["BLANKEND_CLUSTER_TLS_CERTIFICATE"] = tls.SiloPfx,
            ["BLANKEND_CLUSTER_TLS_CERTIFICATE_PASSWORD"] = ClusterTlsFiles.SiloPassword,
            ["BLANKEND_CLUSTER_TLS_CA_CERTIFICATE"] = tls.CaPem,
            ["BLANKEND_CLUSTER_TLS_ALLOWED_PEERS"] = $"CN=blankend-silo,{tls.Gateway.Thumbprint}",
        };
        // Embedded mode: the gateway's silo is built with TLS (built, not started).
        using var app = BlankendGatewayApp.Create(TestEnv.GatewayArgs(), env);
        var t = app.Services.GetRequiredService<IOptions<ClusterSettings>>().Value.Tls;
        Assert.True(t.Enabled);
        Assert.True(t.RequireClientCertificate); // the default
        Assert.Equal(
            (tls.SiloPfx, ClusterTlsFiles.SiloPassword, tls.CaPem),
            (t.Certificate, t.CertificatePassword, t.CaCertificate)
        );
        Assert.Equal(["CN=blankend-silo", tls.Gateway.Thumbprint], AuthOptions.Flatten(t.AllowedPeers));
    }

    [Fact]
    public void ShippedConfigHasClusterTlsOff()
    {
        var cluster = Read(new Dictionary<string, string?>());
        Assert.False(cluster.Tls.Enabled);
        Assert.True(cluster.Tls.RequireClientCertificate);
        var dir = AppContext.BaseDirectory;
        var json = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "config", "blankend.json")));
        var section = json.RootElement.GetProperty("cluster").GetProperty("tls");
        Assert.False(section.GetProperty("enabled").GetBoolean());
        foreach (
            var key in new[]
            {
                "certificate",
                "certificate_key",
                "certificate_password",
                "ca_certificate",
                "require_client_certificate",
                "allowed_peers",
            }
        )
            Assert.True(section.TryGetProperty(key, out _), $"cluster.tls.{key} missing from config/blankend.json");
    }

    [Fact]
    public void PfxWithPasswordAndPemWithKeyFilesAreAccepted()
    {
        var silo = Read(new Dictionary<string, string?>(tls.SiloKeys()));
        Assert.True(silo.Tls.Enabled);
        using var material = ClusterTls.Load(silo.Tls, clientOnly: false);
        Assert.Equal(tls.Silo.Thumbprint, material.Certificate.Thumbprint);
        Assert.True(material.Certificate.HasPrivateKey);

        // A gateway (client mode): its certificate only allows client authentication; PEM key plain or encrypted.
        Assert.Empty(ClusterTls.Check(tls.GatewaySettings(), clientOnly: true));
        var encrypted = tls.GatewaySettings();
        encrypted.CertificateKey = tls.GatewayEncryptedKey;
        encrypted.CertificatePassword = ClusterTlsFiles.KeyPassword;
        Assert.Empty(ClusterTls.Check(encrypted, clientOnly: true));
        Assert.Empty(
            ClusterTls.Check(
                new ClusterTlsSettings
                {
                    Enabled = true,
                    Certificate = tls.SiloPfx,
                    CertificatePassword = ClusterTlsFiles.SiloPassword,
                    AllowedPeers = ["CN=blankend-silo"],
                },
                clientOnly: false
            )
        );
    }

    public static TheoryData<string, string> BadSettings =>
        new()
        {
            { "no-certificate", "cluster:tls:certificate must name" },
            { "missing-certificate", "cluster:tls:certificate: file '/nonexistent/node.pfx' does not exist" },
            { "garbage-certificate", "is neither PEM nor a PKCS#12 file that cluster:tls:certificate_password opens" },
            { "wrong-password", "is neither PEM nor a PKCS#12 file that cluster:tls:certificate_password opens" },
            { "pem-without-key", "has no private key" },
            { "missing-key", "cluster:tls:certificate_key: file '/nonexistent/node.key' does not exist" },
            { "encrypted-key-without-password", "cluster:tls:certificate_key: the private key in" },
            { "expired", "(CN=expired) expired on" },
            { "server-only", "does not allow both TLS server and client authentication" },
            { "missing-ca", "cluster:tls:ca_certificate: file '/nonexistent/ca.pem' does not exist" },
            { "other-ca", "does not chain to cluster:tls:ca_certificate" },
            { "system-trust-without-peers", "cluster:tls:allowed_peers must name the peers" },
            { "bad-peer", "cluster:tls:allowed_peers: 'silo-a' is neither CN=name nor" },
        };

    [Theory]
    [MemberData(nameof(BadSettings))]
    public void BadTlsSettingStopsStartupWithOneLineNamingIt(string kind, string expected)
    {
        var keys = tls.SiloKeys();
        switch (kind)
        {
            case "no-certificate":
                keys["cluster:tls:certificate"] = "";
                break;
            case "missing-certificate":
                keys["cluster:tls:certificate"] = "/nonexistent/node.pfx";
                break;
            case "garbage-certificate":
                keys["cluster:tls:certificate"] = tls.Files.Path("garbage.pfx");
                File.WriteAllText(keys["cluster:tls:certificate"]!, "not a certificate");
                break;
            case "wrong-password":
                keys["cluster:tls:certificate_password"] = "Wr0ng-password";
                break;
            case "pem-without-key":
                keys["cluster:tls:certificate"] = tls.GatewayPem;
                break;
            case "missing-key":
                keys["cluster:tls:certificate"] = tls.GatewayPem;
                keys["cluster:tls:certificate_key"] = "/nonexistent/node.key";
                break;
            case "encrypted-key-without-password":
                keys["cluster:tls:certificate"] = tls.GatewayPem;
                keys["cluster:tls:certificate_key"] = tls.GatewayEncryptedKey;
                keys["cluster:tls:certificate_password"] = "";
                break;
            case "expired":
                keys["cluster:tls:certificate"] = tls.ExpiredPfx;
                keys["cluster:tls:certificate_password"] = "";
                break;
            case "server-only":
                keys["cluster:tls:certificate"] = tls.ServerOnlyPfx;
                keys["cluster:tls:certificate_password"] = "";
                break;
            case "missing-ca":
                keys["cluster:tls:ca_certificate"] = "/nonexistent/ca.pem";
                break;
            case "other-ca":
                keys["cluster:tls:ca_certificate"] = tls.OtherCaPem;
                break;
            case "system-trust-without-peers":
                keys["cluster:tls:ca_certificate"] = "";
                break;
            case "bad-peer":
                keys["cluster:tls:allowed_peers:0"] = "CN=silo-b,silo-a";
                break;
        }
        var e = Assert.Throws<BlankendConfigurationException>(() => Read(keys));
        var line = Assert.Single(e.Errors);
        Assert.Contains(expected, line);
        Assert.DoesNotContain('\n', line);
        Assert.DoesNotContain("Wr0ng-password", e.Message);
        Assert.DoesNotContain(ClusterTlsFiles.SiloPassword, e.Message);
    }

    [Fact]
    public void AnUnknownClusterTlsKeyStopsStartupNamingIt()
    {
        var e = Assert.Throws<BlankendConfigurationException>(() =>
            Read(new Dictionary<string, string?> { ["cluster:tls:enabeld"] = "true" })
        );
        Assert.Contains("cluster:tls:enabeld is not a known key", e.Message);
    }

    [Fact]
    public void ThePeerCheckWantsTheCaAndWhenSetAnAllowedPeer()
    {
        using var material = ClusterTls.Load(tls.GatewaySettings(), clientOnly: true);
        var peers = new ClusterTlsPeers(material, requireClientCertificate: true);
        Assert.Null(peers.Refusal(tls.Silo, null, System.Net.Security.SslPolicyErrors.RemoteCertificateChainErrors));
        Assert.Contains(
            "does not chain to cluster:tls:ca_certificate",
            peers.Refusal(tls.Intruder, null, System.Net.Security.SslPolicyErrors.None)
        );

        var listed = tls.GatewaySettings();
        listed.AllowedPeers = ["CN=blankend-silo"];
        using var byName = ClusterTls.Load(listed, clientOnly: true);
        Assert.Null(
            new ClusterTlsPeers(byName, true).Refusal(tls.Silo, null, System.Net.Security.SslPolicyErrors.None)
        );
        Assert.Contains(
            "matches no entry of cluster:tls:allowed_peers",
            new ClusterTlsPeers(byName, true).Refusal(tls.Gateway, null, System.Net.Security.SslPolicyErrors.None)
        );

        listed.AllowedPeers =
        [
            Convert
                .ToHexString(tls.Gateway.GetCertHash(System.Security.Cryptography.HashAlgorithmName.SHA256))
                .ToLowerInvariant(),
        ];
        using var byThumbprint = ClusterTls.Load(listed, clientOnly: true);
        Assert.Null(
            new ClusterTlsPeers(byThumbprint, true).Refusal(tls.Gateway, null, System.Net.Security.SslPolicyErrors.None)
        );
        Assert.NotNull(
            new ClusterTlsPeers(byThumbprint, true).Refusal(tls.Silo, null, System.Net.Security.SslPolicyErrors.None)
        );
    }
}
