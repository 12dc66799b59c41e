using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Blankend.Orleans.Tests.Support;
using Xunit;
using static Blankend.Orleans.Tests.Security.SecuritySupport;

namespace Blankend.Orleans.Tests.Security;

/// <summary>The default open loopback mode, with one extra trusted origin.</summary>
public sealed class OpenGatewayFixture : IAsyncLifetime
{
    public const string TrustedOrigin = "http://console.example:8080";

    public EmbeddedGateway Gateway { get; private set; } = null!;

    public async Task InitializeAsync() =>
        Gateway = await EmbeddedGateway.StartAsync([$"--auth:allowed_origins:0={TrustedOrigin}"]);

    public async Task DisposeAsync() => await Gateway.DisposeAsync();
}

/// <summary>Browser protections with real requests carrying the headers a browser sends: cross-site WebSocket
/// hijacking and CSRF (Origin), DNS rebinding (Host), form posts (Content-Type).</summary>
[Trait(TestKind.Name, TestKind.Integration)]
public sealed class BrowserGuardTests(OpenGatewayFixture fixture) : IClassFixture<OpenGatewayFixture>
{
    private const string Evil = "http://evil.example";
    private const string ConfigPath = "api/v1/video_processing/pipeline/config";

    private EmbeddedGateway Gw => fixture.Gateway;

    private string SelfOrigin => $"http://{Gw.Http.Authority}";

    [Fact]
    public async Task CrossOriginWebSocketUpgradesAreRefusedWith403AndSameOriginListedOrNoOriginWork()
    {
        foreach (var path in new[] { "/video_out?source=SRC", "/video_in?client_id=guard-cam" })
        {
            var evil = await HandshakeAsync(Gw.Ws(path), origin: Evil);
            Assert.Equal(HttpStatusCode.Forbidden, evil.Status);
            foreach (var origin in new string?[] { SelfOrigin, OpenGatewayFixture.TrustedOrigin, null })
            {
                var ok = await HandshakeAsync(Gw.Ws(path), origin: origin);
                Assert.True(
                    ok.Status == HttpStatusCode.SwitchingProtocols,
                    $"{path} with Origin {origin ?? "(none)"}: {ok.Status}"
                );
                await ok.Socket!.CloseQuietlyAsync();
            }
        }
    }

    [Fact]
    public async Task CrossOriginPostIsRefusedWith403AndChangesNothingWhileSameOriginAndNoOriginWork()
    {
        var before = await Gw.Client.GetStringAsync(ConfigPath);
        using (var evil = Request(HttpMethod.Post, ConfigPath, content: Json("{\"fps_limit\":3}")))
        {
            evil.Headers.Add("Origin", Evil);
            using var r = await Gw.Client.SendAsync(evil);
            await AssertProblemAsync(r, HttpStatusCode.Forbidden, "origin");
        }
        Assert.Equal(before, await Gw.Client.GetStringAsync(ConfigPath));

        using (var same = Request(HttpMethod.Post, ConfigPath, content: Json("{\"fps_limit\":0}")))
        {
            same.Headers.Add("Origin", SelfOrigin);
            using var r = await Gw.Client.SendAsync(same);
            Assert.True(r.IsSuccessStatusCode, await r.Content.ReadAsStringAsync());
        }
        using (var r = await Gw.Client.PostAsync(ConfigPath, Json("{\"fps_limit\":0}")))
            Assert.True(r.IsSuccessStatusCode, await r.Content.ReadAsStringAsync());
    }

    [Theory]
    [InlineData("evil.example")]
    [InlineData("rebind.attacker.test:8000")]
    public async Task AHostHeaderOutsideAllowedHostsIsRefusedWith400(string host)
    {
        using var m = Request(HttpMethod.Get, "api/v1/stream/status");
        m.Headers.Host = host;
        using var r = await Gw.Client.SendAsync(m);
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);

        using var local = Request(HttpMethod.Get, "api/v1/stream/status");
        local.Headers.Host = "localhost:" + Gw.Http.Port;
        using var ok = await Gw.Client.SendAsync(local);
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
    }

    [Fact]
    public async Task ATextPlainPostIsRefusedWith415AndTheConfigIsUnchanged()
    {
        var before = await Gw.Client.GetStringAsync(ConfigPath);
        using (
            var r = await Gw.Client.PostAsync(
                ConfigPath,
                new StringContent("{\"fps_limit\":5}", Encoding.UTF8, "text/plain")
            )
        )
            await AssertProblemAsync(r, HttpStatusCode.UnsupportedMediaType, "application/json");
        var form = new ByteArrayContent("fps_limit=5"u8.ToArray());
        form.Headers.ContentType = new MediaTypeHeaderValue("application/x-www-form-urlencoded");
        using (var r = await Gw.Client.PostAsync(ConfigPath, form))
            await AssertProblemAsync(r, HttpStatusCode.UnsupportedMediaType);
        Assert.Equal(before, await Gw.Client.GetStringAsync(ConfigPath));
    }

    [Fact]
    public async Task ABodylessPostNeedsJsonButABodylessDeleteDoesNot()
    {
        using (var r = await Gw.Client.PostAsync("api/v1/realtime_pipeline/record/stop", null))
            await AssertProblemAsync(r, HttpStatusCode.UnsupportedMediaType);
        using (var r = await Gw.Client.DeleteAsync("api/v1/ai/background"))
            Assert.NotEqual(HttpStatusCode.UnsupportedMediaType, r.StatusCode);
    }

    [Fact]
    public async Task RefusalsAreCountedByReason()
    {
        var before = await ScrapeAsync(Gw);
        using (var m = Request(HttpMethod.Get, "api/v1/stream/status"))
        {
            m.Headers.Host = "evil.example";
            (await Gw.Client.SendAsync(m)).Dispose();
        }
        _ = await HandshakeAsync(Gw.Ws("/video_out"), origin: Evil);
        (await Gw.Client.PostAsync(ConfigPath, new StringContent("x", Encoding.UTF8, "text/plain"))).Dispose();
        var after = await ScrapeAsync(Gw);
        foreach (var reason in new[] { "host", "origin", "content_type" })
        {
            Assert.True(
                Sum(after, "blankend_requests_refused_total", "reason=" + reason)
                    > Sum(before, "blankend_requests_refused_total", "reason=" + reason),
                reason
            );
        }
    }
}
