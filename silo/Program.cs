using Blankend.Orleans.Grains.Hosting;
using Blankend.Orleans.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

// Split / cluster mode: a silo process without WebSockets. The gateway joins it as an Orleans client.
return await BlankendStartup.RunAsync("silo", async () =>
{
    var builder = Host.CreateApplicationBuilder(args);
    builder.Configuration.AddBlankendConfiguration(args);
    builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(8));
    builder.Services.AddBlankendSiloProcessTelemetry(builder.Configuration);
    builder.UseOrleans(silo => silo.AddBlankendSilo(builder.Configuration));
    builder.Services.MaskSecretsInLogs();
    var host = builder.Build();
    host.Services.ValidateBlankendOptions();
    await host.RunAsync();
    // The NetMQ context is process-wide (the bus link's sockets are already closed): release it without waiting.
    NetMQ.NetMQConfig.Cleanup(block: false);
});
