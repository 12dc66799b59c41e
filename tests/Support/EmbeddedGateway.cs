using System.Collections;
using System.Net.Http.Json;
using System.Text.Json;
using Blankend.Orleans.Gateway.Cluster;
using Blankend.Orleans.Gateway.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;

namespace Blankend.Orleans.Tests.Support;

/// <summary>The real gateway app (Kestrel on a loopback port, embedded silo on its own ports).</summary>
public sealed class EmbeddedGateway : IAsyncDisposable
{
    private EmbeddedGateway(WebApplication app, Uri http)
    {
        App = app;
        Http = http;
        Client = new HttpClient { BaseAddress = http, Timeout = TimeSpan.FromSeconds(30) };
    }

    public WebApplication App { get; }

    public Uri Http { get; }

    public HttpClient Client { get; }

    public Uri Ws(string pathAndQuery) => new($"ws://{Http.Authority}{pathAndQuery}");

    /// <summary>Started on the thread pool, outside xunit's synchronization context: a host started under that
    /// context (two threads shared by the whole run) keeps posting its continuations there and starves.</summary>
    public static Task<EmbeddedGateway> StartAsync(
        string[]? args = null,
        IDictionary? environment = null,
        Action<WebApplicationBuilder>? configure = null
    ) => Task.Run(() => StartCoreAsync(args, environment, configure));

    private static async Task<EmbeddedGateway> StartCoreAsync(
        string[]? args,
        IDictionary? environment,
        Action<WebApplicationBuilder>? configure
    )
    {
        string[] all =
        [
            "--urls",
            "http://127.0.0.1:0",
            "--Logging:LogLevel:Default=Warning",
            .. TestEnv.SiloPortArgs(),
            .. args ?? [],
        ];
        var app = BlankendGatewayApp.Create(all, environment ?? new Hashtable(), configure);
        await app.StartAsync();
        var url = app.Urls.First();
        return new EmbeddedGateway(app, new Uri(url.EndsWith('/') ? url : url + "/"));
    }

    public async Task<JsonElement> StreamStatusAsync() =>
        await Client.GetFromJsonAsync<JsonElement>("api/v1/stream/status");

    public async Task<PrometheusText> ScrapeAsync() => PrometheusText.Parse(await Client.GetStringAsync("metrics"));

    /// <summary>Scrapes until <paramref name="done"/> holds (or <paramref name="timeout"/> ends), returning the last
    /// scrape.</summary>
    public async Task<PrometheusText> ScrapeUntilAsync(Func<PrometheusText, bool> done, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var m = await ScrapeAsync();
            if (done(m) || DateTime.UtcNow > deadline)
                return m;
            await Task.Delay(50);
        }
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        try
        {
            await App.StopAsync(cts.Token);
        }
        finally
        {
            await App.DisposeAsync();
        }
    }
}
