using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using Blankend.Orleans.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;
using Orleans.Configuration;
using StackExchange.Redis;

namespace Blankend.Orleans.Hosting;

/// <summary>
/// The cluster side of the <c>cluster</c> section, shared by silos (<see cref="SiloHostingExtensions"/>) and
/// client-mode gateways: the membership store, the advertised address, failure detection and (<c>cluster.tls</c>,
/// <see cref="ClusterTls"/>) TLS on the cluster's connections. (Each silo's
/// devices are announced in silo metadata by the processing path: <c>AddBlankendProcessing</c>.)
/// </summary>
public static class ClusterMembership
{
    /// <summary>The grain storage the grains keep cluster-wide state in (pipeline config, AI assets): in memory,
    /// Redis or PostgreSQL, registered with the membership.</summary>
    public const string GrainStorageName = "blankend";

    /// <summary>The Redis connection settings, or a configuration error naming <c>cluster:redis</c>.</summary>
    public static ConfigurationOptions ParseRedis(string connectionString)
    {
        ConfigurationOptions options;
        try
        {
            options = ConfigurationOptions.Parse(connectionString);
        }
        catch (Exception e) when (e is ArgumentException or FormatException or NotSupportedException)
        {
            throw new BlankendConfigurationException([
                $"cluster:redis is not a valid Redis connection string ('{SecretMask.Apply(connectionString)}'): {SecretMask.Apply(e.Message)}",
            ]);
        }
        if (options.EndPoints.Count == 0)
            throw new BlankendConfigurationException([
                $"cluster:redis names no Redis endpoint (got '{SecretMask.Apply(connectionString)}'; e.g. 127.0.0.1:6379)",
            ]);
        // A process that starts before Redis (or outlives a Redis restart) keeps reconnecting instead of failing
        // on its first connect; membership calls fail (and are retried by Orleans) until Redis answers.
        options.AbortOnConnectFail = false;
        options.ClientName ??= "blankend";
        return options;
    }

    /// <summary>ADO.NET invariant name of Npgsql (what the Orleans ADO.NET providers load).</summary>
    public const string PostgresInvariant = "Npgsql";

    /// <summary>The PostgreSQL connection string, normalized, or a configuration error naming
    /// <c>cluster:postgres</c>.</summary>
    public static string ParsePostgres(string connectionString)
    {
        NpgsqlConnectionStringBuilder builder;
        try
        {
            builder = new NpgsqlConnectionStringBuilder(connectionString);
        }
        catch (Exception e) when (e is ArgumentException or FormatException or KeyNotFoundException)
        {
            throw new BlankendConfigurationException([
                $"cluster:postgres is not a valid Npgsql connection string: {SecretMask.Apply(e.Message)}",
            ]);
        }
        if (string.IsNullOrWhiteSpace(builder.Host))
            throw new BlankendConfigurationException([
                "cluster:postgres names no Host (e.g. Host=127.0.0.1;Port=5432;Database=blankend;Username=blankend)",
            ]);
        return builder.ConnectionString;
    }

    /// <summary>The address written to the membership table for this silo.</summary>
    public static IPAddress AdvertisedAddress(ClusterSettings cluster)
    {
        if (cluster.AdvertisedIp != "auto")
            return IPAddress.Parse(cluster.AdvertisedIp);
        foreach (var nic in NetworkInterface.GetAllNetworkInterfaces())
        {
            if (
                nic.OperationalStatus != OperationalStatus.Up
                || nic.NetworkInterfaceType == NetworkInterfaceType.Loopback
            )
                continue;
            foreach (var a in nic.GetIPProperties().UnicastAddresses)
            {
                if (a.Address.AddressFamily == AddressFamily.InterNetwork && !IPAddress.IsLoopback(a.Address))
                    return a.Address;
            }
        }
        throw new BlankendConfigurationException([
            "cluster:advertised_ip is 'auto' but this host has no non-loopback IPv4 address; set it explicitly",
        ]);
    }

    /// <summary>Membership store, endpoints and connection security (<c>cluster.tls</c>) of a silo.</summary>
    public static ISiloBuilder UseBlankendMembership(this ISiloBuilder silo, ClusterSettings cluster)
    {
        if (cluster.Clustering == "postgres")
        {
            var pg = ParsePostgres(cluster.Postgres);
            // The schema first (created when absent), then membership and grain storage on it.
            silo.Services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>>(sp => new PostgresSchema(
                pg,
                sp.GetRequiredService<ILogger<PostgresSchema>>()
            ));
            silo.UseAdoNetClustering(o =>
            {
                o.Invariant = PostgresInvariant;
                o.ConnectionString = pg;
            });
            // Grain state that must outlive a silo (the live pipeline config) goes to the same database.
            silo.AddAdoNetGrainStorage(GrainStorageName, o =>
            {
                o.Invariant = PostgresInvariant;
                o.ConnectionString = pg;
            });
            silo.Configure<ClusterOptions>(o =>
            {
                o.ClusterId = cluster.ClusterId;
                o.ServiceId = cluster.ServiceId;
            });
            silo.ConfigureEndpoints(AdvertisedAddress(cluster), cluster.SiloPort, cluster.GatewayPort);
        }
        else if (cluster.Clustering == "redis")
        {
            var redis = ParseRedis(cluster.Redis);
            silo.UseRedisClustering(o => o.ConfigurationOptions = redis);
            // Grain state that must outlive a silo (the live pipeline config) goes to the same Redis.
            silo.AddRedisGrainStorage(GrainStorageName, o => o.ConfigurationOptions = ParseRedis(cluster.Redis));
            silo.Configure<ClusterOptions>(o =>
            {
                o.ClusterId = cluster.ClusterId;
                o.ServiceId = cluster.ServiceId;
            });
            silo.ConfigureEndpoints(AdvertisedAddress(cluster), cluster.SiloPort, cluster.GatewayPort);
        }
        else
        {
            silo.UseLocalhostClustering(
                siloPort: cluster.SiloPort,
                gatewayPort: cluster.GatewayPort,
                primarySiloEndpoint: new IPEndPoint(IPAddress.Loopback, cluster.PrimarySiloPort),
                serviceId: cluster.ServiceId,
                clusterId: cluster.ClusterId
            );
        }

        // Failure detection: a silo killed without warning is declared dead after about
        // probe_timeout_ms x missed_probes_limit (plus a vote write), instead of ~15 s with Orleans' defaults.
        silo.Configure<ClusterMembershipOptions>(o =>
        {
            o.ProbeTimeout = TimeSpan.FromMilliseconds(cluster.ProbeTimeoutMs);
            o.NumMissedProbesLimit = cluster.MissedProbesLimit;
            o.NumVotesForDeathDeclaration = cluster.DeathVotes;
            o.DeathVoteExpirationTimeout = TimeSpan.FromSeconds(cluster.DeathVoteExpirationSeconds);
        });

        // cluster.tls: mutual TLS on silo-to-silo and gateway connections (nothing when off).
        silo.UseBlankendTls(cluster.Tls);
        return silo;
    }

    /// <summary>Membership (gateway discovery) and connection security (<c>cluster.tls</c>) of a client-mode
    /// gateway.</summary>
    public static IClientBuilder UseBlankendMembership(this IClientBuilder client, ClusterSettings cluster)
    {
        if (cluster.Clustering == "redis")
        {
            var redis = ParseRedis(cluster.Redis);
            client.UseRedisClustering(o => o.ConfigurationOptions = redis);
        }
        else if (cluster.Clustering == "postgres")
        {
            // Gateway discovery only; a client never creates the schema (the silos do): until it exists the
            // connection attempt fails and the gateway's retry filter tries again.
            var pg = ParsePostgres(cluster.Postgres);
            client.UseAdoNetClustering(o =>
            {
                o.Invariant = PostgresInvariant;
                o.ConnectionString = pg;
            });
        }
        else
        {
            var ports = cluster.GatewayPorts.Length > 0 ? cluster.GatewayPorts : [cluster.GatewayPort];
            client.UseStaticClustering(ports.Select(p => new IPEndPoint(IPAddress.Loopback, p)).ToArray());
        }
        client.Configure<ClusterOptions>(o =>
        {
            o.ClusterId = cluster.ClusterId;
            o.ServiceId = cluster.ServiceId;
        });
        client.Configure<global::Orleans.Configuration.GatewayOptions>(o =>
            o.GatewayListRefreshPeriod = TimeSpan.FromMilliseconds(cluster.GatewayListRefreshMs)
        );
        // cluster.tls: TLS to the silos' gateway ports with this gateway's certificate (nothing when off).
        client.UseBlankendTls(cluster.Tls);
        return client;
    }
}
