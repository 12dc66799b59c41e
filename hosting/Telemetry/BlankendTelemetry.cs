using System.Diagnostics;
using Blankend.Orleans.Configuration;
using Blankend.Orleans.Telemetry;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Blankend.Orleans.Hosting;

/// <summary>
/// OpenTelemetry for every Blankend process (gateway, embedded or split silo): the Orleans meter and activity
/// sources, the project's own meters (<c>Blankend</c>, <c>Blankend.*</c>), the .NET runtime meter, a Prometheus
/// exporter (served by the gateway's <c>/metrics</c>, or by the silo's <c>cluster.metrics_port</c>), and OTLP for
/// every signal when <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set (the other <c>OTEL_EXPORTER_OTLP_*</c> variables
/// apply as usual).
/// </summary>
public static class BlankendTelemetry
{
    public static readonly string[] MeterNames =
    [
        "Microsoft.Orleans",
        BlankendMetrics.MeterName,
        BlankendMetrics.MeterName + ".*",
        "System.Runtime",
    ];

    public static readonly string[] ActivitySourceNames =
    [
        "Microsoft.Orleans.*",
        BlankendTracing.SourceName,
        BlankendTracing.SourceName + ".*",
    ];

    /// <param name="services">The host's services.</param>
    /// <param name="config">Configuration (the <c>OTEL_*</c> environment variables are read from it).</param>
    /// <param name="serviceName">service.name of the resource, unless <c>OTEL_SERVICE_NAME</c> says otherwise.</param>
    public static OpenTelemetryBuilder AddBlankendTelemetry(
        this IServiceCollection services,
        IConfiguration config,
        string serviceName
    )
    {
        var otel = services
            .AddOpenTelemetry()
            .ConfigureResource(r =>
            {
                if (string.IsNullOrWhiteSpace(config["OTEL_SERVICE_NAME"]))
                    r.AddService(serviceName);
            })
            .WithMetrics(m =>
                m.AddMeter(MeterNames)
                    // Scrapes read the live values: no response cache, so a scrape right after a frame shows it.
                    .AddPrometheusExporter(o => o.ScrapeResponseCacheDurationMilliseconds = 0)
            )
            .WithTracing(t => t.AddSource(ActivitySourceNames).SetSampler(new BlankendSampler()));
        if (!string.IsNullOrWhiteSpace(config["OTEL_EXPORTER_OTLP_ENDPOINT"]))
            otel.UseOtlpExporter();
        return otel;
    }

    /// <summary>Split / cluster mode silo process: telemetry, plus its own /metrics when
    /// <c>cluster.metrics_port</c> is set.</summary>
    public static IServiceCollection AddBlankendSiloProcessTelemetry(
        this IServiceCollection services,
        IConfiguration config
    )
    {
        services.AddBlankendTelemetry(config, "blankend-silo");
        services.AddHostedService<SiloThroughputLog>();
        var cluster = BlankendConfiguration.Read<ClusterSettings, ClusterSettingsValidator>(
            config,
            ClusterSettings.Section
        );
        if (cluster.MetricsPort > 0)
        {
            services.AddHostedService(sp => new SiloMetricsServer(
                sp.GetRequiredService<MeterProvider>(),
                cluster.MetricsPort,
                sp.GetRequiredService<ILogger<SiloMetricsServer>>()
            ));
        }
        return services;
    }
}

/// <summary>
/// Keeps per-frame tracing to the frames the project picked. A span with a parent follows the parent's decision
/// (W3C <c>traceparent</c> semantics, across grain calls too). A root span is recorded when it is the project's
/// own (name starting with <c>blankend.</c>: created only for sampled frames and rare operations) or an incoming
/// HTTP request; any other root, such as the grain calls of a frame that was not picked, is dropped.
/// </summary>
public sealed class BlankendSampler : Sampler
{
    /// <summary>Name ASP.NET Core gives the activity of an incoming request when it is created.</summary>
    public const string HttpRequestActivityName = "Microsoft.AspNetCore.Hosting.HttpRequestIn";

    private static readonly SamplingResult Sample = new(SamplingDecision.RecordAndSample);
    private static readonly SamplingResult Drop = new(SamplingDecision.Drop);

    public BlankendSampler() => Description = "BlankendSampler";

    public override SamplingResult ShouldSample(in SamplingParameters samplingParameters)
    {
        var parent = samplingParameters.ParentContext;
        if (parent.TraceId != default)
            return (parent.TraceFlags & ActivityTraceFlags.Recorded) != 0 ? Sample : Drop;
        var name = samplingParameters.Name;
        return
            name.StartsWith(BlankendTracing.SpanPrefix, StringComparison.Ordinal)
            || string.Equals(name, HttpRequestActivityName, StringComparison.Ordinal)
            ? Sample
            : Drop;
    }
}

/// <summary>The silo process's own <c>/metrics</c>: a minimal Kestrel listener on <c>cluster.metrics_port</c>
/// serving the silo host's Prometheus exporter, nothing else.</summary>
public sealed partial class SiloMetricsServer(MeterProvider meterProvider, int port, ILogger<SiloMetricsServer> log)
    : IHostedService,
        IAsyncDisposable
{
    private WebApplication? _app;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.ListenAnyIP(port));
        var app = builder.Build();
        app.MapPrometheusScrapingEndpoint(
            "/metrics",
            meterProvider,
            configureBranchedPipeline: null,
            optionsName: null
        );
        await app.StartAsync(cancellationToken);
        _app = app;
        LogListening(log, port);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_app is not null)
            await _app.StopAsync(cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        if (_app is not null)
            await _app.DisposeAsync();
    }

    [LoggerMessage(
        Level = LogLevel.Information,
        Message = "silo metrics: Prometheus endpoint on http://*:{Port}/metrics"
    )]
    private static partial void LogListening(ILogger log, int port);
}
