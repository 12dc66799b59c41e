using System.Net;
using System.Text.Json;
using Blankend.Orleans.Gateway.Health;
using Blankend.Orleans.Tests.Gateway;
using Blankend.Orleans.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Blankend.Orleans.Tests.Telemetry;

[Trait(TestKind.Name, TestKind.Integration)]
public sealed class DashboardAndHealthTests
{
    [Fact]
    public async Task DashboardServesHtmlAndItsCountersListClientGrainActivations()
    {
        await using var gw = await EmbeddedGateway.StartAsync();
        var page = await gw.Client.GetAsync("dashboard");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
        Assert.Contains("<html", await page.Content.ReadAsStringAsync(), StringComparison.OrdinalIgnoreCase);

        // A frame activates the source's ClientGrain.
        var source = "dash-" + Guid.NewGuid().ToString("N")[..8];
        using var cam = await Ws.ConnectAsync(gw.Ws($"/video_in?client_id={source}"));
        await cam.SendBinaryAsync(TestJpeg.Tagged(1));

        // The dashboard refreshes its counters at most once a second.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        string body = "";
        JsonElement? clientGrain = null;
        while (DateTime.UtcNow < deadline && clientGrain is null)
        {
            body = await gw.Client.GetStringAsync("dashboard/DashboardCounters");
            var stats = JsonDocument.Parse(body).RootElement.GetProperty("simpleGrainStats");
            foreach (var s in stats.EnumerateArray())
            {
                if (
                    s.GetProperty("grainType").GetString()!.Contains("ClientGrain", StringComparison.Ordinal)
                    && s.GetProperty("activationCount").GetInt32() >= 1
                )
                    clientGrain = s.Clone();
            }
            if (clientGrain is null)
                await Task.Delay(250);
        }
        Assert.True(clientGrain is not null, "no ClientGrain activation in /dashboard/DashboardCounters: " + body);
        await cam.CloseQuietlyAsync();
    }

    [Fact]
    public async Task HealthzReportsEveryComponentAndPluggedComponentsDecideTheStatus()
    {
        var bus = new FakeComponent("bus", critical: false);
        var worker = new FakeComponent("gpu_worker", critical: true);
        await using var gw = await EmbeddedGateway.StartAsync(configure: b =>
        {
            b.Services.AddSingleton<IHealthComponent>(bus);
            b.Services.AddSingleton<IHealthComponent>(worker);
        });

        // The decoders component is the codec's real check: wait until the silo's one-off ffmpeg probe is done.
        var (code, body) = await HealthAsync(gw);
        for (
            var i = 0;
            i < 100 && body.GetProperty("components").GetProperty("decoders").GetProperty("state").GetString() != "ok";
            i++
        )
        {
            await Task.Delay(100);
            (code, body) = await HealthAsync(gw);
        }
        Assert.Equal(HttpStatusCode.OK, code);
        Assert.Equal("ok", body.GetProperty("status").GetString());
        var components = body.GetProperty("components");
        // the critical one first, then registration order
        Assert.Equal("cluster", components.EnumerateObject().First().Name);
        Assert.Equal(
            ["bus", "cluster", "decoders", "gpu_worker", "models"],
            components.EnumerateObject().Select(p => p.Name).Order().ToArray()
        );
        Assert.Equal("ok", components.GetProperty("cluster").GetProperty("state").GetString());
        Assert.Equal("ok", components.GetProperty("decoders").GetProperty("state").GetString());
        // The shipped models are present and the realtime pipeline is off: nothing is held against the service.
        Assert.Equal("ok", components.GetProperty("models").GetProperty("state").GetString());
        Assert.Contains("face_detect", components.GetProperty("models").GetProperty("detail").GetString());

        // A down bus link degrades the service; frames still flow, so 200.
        bus.State = HealthStates.Unavailable;
        (code, body) = await HealthAsync(gw);
        Assert.Equal(HttpStatusCode.OK, code);
        Assert.Equal("degraded", body.GetProperty("status").GetString());
        Assert.Equal("unavailable", body.GetProperty("components").GetProperty("bus").GetProperty("state").GetString());

        // A critical component that cannot answer in time makes the gateway unable to carry frames: 503.
        worker.Hang = true;
        (code, body) = await HealthAsync(gw);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, code);
        Assert.Equal("unavailable", body.GetProperty("status").GetString());
        Assert.Contains(
            "no answer within 2 s",
            body.GetProperty("components").GetProperty("gpu_worker").GetProperty("detail").GetString()
        );
    }

    private static async Task<(HttpStatusCode, JsonElement)> HealthAsync(EmbeddedGateway gw)
    {
        using var r = await gw.Client.GetAsync("healthz");
        return (r.StatusCode, JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement.Clone());
    }

    private sealed class FakeComponent(string name, bool critical) : IHealthComponent
    {
        public string State { get; set; } = HealthStates.Ok;

        public bool Hang { get; set; }

        public string Name => name;

        public bool Critical => critical;

        public async Task<ComponentHealth> CheckAsync(CancellationToken cancellationToken)
        {
            if (Hang)
                await Task.Delay(Timeout.Infinite, cancellationToken);
            return new ComponentHealth(State, "fake");
        }
    }
}
