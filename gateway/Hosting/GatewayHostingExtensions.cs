using Blankend.Orleans.Configuration;
using Blankend.Orleans.Gateway.Cluster;
using Blankend.Orleans.Gateway.Endpoints;
using Blankend.Orleans.Gateway.Fanout;
using Blankend.Orleans.Gateway.Health;
using Blankend.Orleans.Gateway.Ingest;
using Blankend.Orleans.Gateway.Security;
using Blankend.Orleans.Gateway.Telemetry;
using Blankend.Orleans.Hosting;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;
using Orleans.Dashboard;
using Orleans.Runtime;

namespace Blankend.Orleans.Gateway.Hosting;

internal static partial class GatewayHostingExtensions
{
    /// <summary>Kestrel's per-connection output buffer limit (see <see cref="AddBlankendGateway"/>).</summary>
    internal const long ViewerResponseBufferBytes = 256 * 1024;

    /// <summary>
    /// Options, the Orleans side (an embedded silo, or a client of separate silos) and the fan-out services.
    /// The rest of the gateway only sees <see cref="IGrainFactory"/>, so it never assumes where grains live.
    /// </summary>
    public static WebApplicationBuilder AddBlankendGateway(this WebApplicationBuilder builder)
    {
        var config = builder.Configuration;
        builder.Services.AddBlankendOptions(config);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(8));
        // Kestrel's output buffer per connection (default 64 KB), for connections whose output goes through Kestrel
        // (TLS): a write that leaves more than this unsent completes only when the socket has taken it. At 64 KB
        // every 720p frame (~100-130 KB) did, so each frame to each viewer cost a continuation on the thread pool;
        // with room for two frames a viewer that keeps up completes its writes at once. Plain-TCP connections send
        // straight to their sockets instead (SocketOutput, docs/benchmarks.md, fan-out).
        builder.WebHost.ConfigureKestrel(o =>
        {
            o.Limits.MaxResponseBufferSize = ViewerResponseBufferBytes;
            // Plain-TCP connections send straight to their sockets (SocketOutput: no copy into Kestrel's pipe and no
            // hop to its send loop per viewer frame). First in the chain, so a TLS layer writes through it.
            o.ConfigureEndpointDefaults(l =>
                l.Use(next => connection => SocketOutput.UseSocketOutput(connection, next))
            );
        });
        var cluster = BlankendConfiguration.Read<ClusterSettings, ClusterSettingsValidator>(
            config,
            ClusterSettings.Section
        );
        var telemetry = BlankendConfiguration.Read<TelemetryOptions, TelemetryOptionsValidator>(
            config,
            TelemetryOptions.Section
        );
        var mode = new GatewayMode(cluster.Mode);
        builder.Services.AddSingleton(mode);

        builder.Services.AddSingleton(cluster);
        builder.Services.AddSingleton<ClusterChangeSignal>();
        builder
            .Services.AddBlankendTelemetry(config, mode.Embedded ? "blankend" : "blankend-gateway")
            .WithMetrics(m => m.AddMeter("Microsoft.AspNetCore.Hosting", "Microsoft.AspNetCore.Server.Kestrel"))
            .WithTracing(t => t.AddAspNetCoreInstrumentation(o => o.Filter = TraceRequest));

        if (mode.Embedded)
        {
            // With clustering=redis this gateway is also a silo of the shared cluster (it may host grains).
            builder.AddEmbeddedSilo(config);
            builder.Services.AddHostedService<EmbeddedMembershipWatcher>();
        }
        else
        {
            // A stateless cluster client: it hosts no grain, so losing it loses only its own sockets.
            builder.UseOrleansClient(client =>
            {
                client.UseBlankendMembership(cluster);
                client.UseConnectionRetryFilter<WaitForClusterFilter>();
                client.Services.AddSingleton<IClusterConnectionStatusObserver, ClientConnectionWatcher>();
                client.AddActivityPropagation();
                if (telemetry.DashboardEnabled)
                    client.AddDashboard(o => o.HideTrace = telemetry.DashboardHideTrace);
            });
            builder.Services.AddHostedService<ClientMembershipPoller>();
        }

        builder.Services.AddSingleton<GatewayCounters>();
        builder.Services.AddSingleton<ViewerHub>();
        builder.Services.AddSingleton<FrameObserver>();
        builder.Services.AddSingleton<SourceSubscriptions>();
        builder.Services.AddSingleton<RawFanout>();
        builder.Services.AddSingleton<ThroughputLog>();
        builder.Services.AddSingleton<IHealthComponent, ClusterHealthComponent>();
        builder.Services.AddSingleton<IHealthComponent, BusHealthComponent>();
        builder.Services.AddSingleton<IHealthComponent, DecodersHealthComponent>();
        builder.Services.AddSingleton<IHealthComponent, ModelsHealthComponent>();
        builder.Services.AddSingleton<HealthService>();
        builder.Services.AddSingleton<CodecGatewayCounters>();
        builder.Services.AddProblemDetails();
        builder.AddBlankendSecurity();
        return builder;
    }

    /// <summary>Requests worth a trace: not the scrapes and the dashboard's polling.</summary>
    private static bool TraceRequest(HttpContext context) =>
        !context.Request.Path.StartsWithSegments("/metrics") && !context.Request.Path.StartsWithSegments("/dashboard");

    /// <summary>The contract's endpoints.</summary>
    public static WebApplication MapBlankendEndpoints(this WebApplication app)
    {
        var gateway = app.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<GatewaySettings>>().Value;
        app.Use(WireUpgradeFeature.WrapAsync); // before UseWebSockets, which captures the upgrade feature
        app.UseWebSockets(
            new WebSocketOptions { KeepAliveInterval = TimeSpan.FromSeconds(gateway.WebSocketKeepAliveSeconds) }
        );
        app.UseBlankendSecurity();

        // Scopes (docs/security.md): one policy per route family; anything mapped without one is admin-only.
        app.Map("/video_in", VideoInEndpoint.HandleAsync).RequireAuthorization(ScopePolicies.Ingest);
        app.Map("/video_out", VideoOutEndpoint.HandleAsync).RequireAuthorization(ScopePolicies.View);
        app.Map("/video_codec", VideoCodecEndpoint.HandleAsync).RequireAuthorization(ScopePolicies.Ingest);
        app.MapGet("/healthz", StatusEndpoints.HealthAsync).AllowAnonymous();
        var api = app.MapGroup("").RequireApiScopes(); // GET: view, POST/DELETE: control
        api.MapGet("/api/v1/stream/status", StatusEndpoints.StreamStatusAsync);
        api.MapGet("/api/v1/cluster/status", StatusEndpoints.ClusterStatusAsync)
            .RequireAuthorization(ScopePolicies.Admin);
        api.MapGet("/api/v1/relay/status", RelayEndpoints.StatusAsync);
        api.MapProcessingEndpoints();
        api.MapGet("/api/v1/video_processing/codec/status", CodecEndpoints.StatusAsync);
        api.MapPost("/api/v1/realtime_pipeline/record/start", CodecEndpoints.RecordStartAsync);
        api.MapPost("/api/v1/realtime_pipeline/record/stop", CodecEndpoints.RecordStopAsync);
        api.MapRecordingEndpoints();
        api.MapAiEndpoints();
        app.MapPrometheusScrapingEndpoint("/metrics").RequireAuthorization(ScopePolicies.Metrics);
        var dashboard = app
            .Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<TelemetryOptions>>()
            .Value.DashboardEnabled;
        if (dashboard)
            app.MapOrleansDashboard(routePrefix: "/dashboard").RequireAuthorization(ScopePolicies.Admin);
        app.MapBlankendConsole(); // GET / and /console/*: the web console (docs/console.md), no token needed to load it

        app.Lifetime.ApplicationStarted.Register(() =>
        {
            var log = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Blankend.Gateway");
            LogStarted(
                log,
                string.Join(", ", app.Urls),
                app.Services.GetRequiredService<GatewayMode>().Name,
                app.Services.GetRequiredService<ClusterSettings>().Clustering,
                app.Configuration["blankend:config_path"] ?? "?"
            );
        });
        return app;
    }

    [LoggerMessage(
        Level = LogLevel.Information,
        Message = "Blankend gateway listening on {Urls} (cluster mode: {Mode}, clustering: {Clustering}, config: {Config})"
    )]
    private static partial void LogStarted(ILogger log, string urls, string mode, string clustering, string config);

    /// <summary>Client mode: keep trying until the silos answer (they may start after the gateway), logging each
    /// try.</summary>
    private sealed partial class WaitForClusterFilter(
        ILogger<WaitForClusterFilter> log,
        IHostApplicationLifetime lifetime
    ) : IClientConnectionRetryFilter
    {
        private int _attempt;

        public async Task<bool> ShouldRetryConnectionAttempt(Exception exception, CancellationToken cancellationToken)
        {
            if (lifetime.ApplicationStopping.IsCancellationRequested || cancellationToken.IsCancellationRequested)
                return false;
            LogRetry(log, ++_attempt, SecretMask.Apply(exception.Message));
            await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken);
            return true;
        }

        [LoggerMessage(
            Level = LogLevel.Warning,
            Message = "cluster not reachable yet (attempt {Attempt}): {Reason}; retrying in 1 s"
        )]
        private static partial void LogRetry(ILogger log, int attempt, string reason);
    }
}
