using Blankend.Orleans.Gateway.Hosting;
using Blankend.Orleans.Hosting;

// The gateway: WebSockets + HTTP API. By default it embeds a silo (one process, nothing external);
// with cluster:mode=client it joins separate silo processes as an Orleans client.
return await BlankendStartup.RunAsync("gateway", async () =>
{
    var app = BlankendGatewayApp.Create(args);
    await app.RunAsync();
    EmbeddedSilo.ReleaseProcessResources();
});
