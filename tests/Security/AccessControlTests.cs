using System.Net;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Blankend.Orleans.Tests.Support;
using Xunit;
using static Blankend.Orleans.Tests.Security.SecuritySupport;

namespace Blankend.Orleans.Tests.Security;

/// <summary>A gateway with tokens configured (command line, as an operator would), one per scope.</summary>
public sealed class TokenGatewayFixture : IAsyncLifetime
{
    public const string Admin = "admin-token-0123456789abcdef";
    public const string Camera = "camera-token-0123456789abcdef";
    public const string Viewer = "viewer-token-0123456789abcdef";
    public const string Control = "control-token-0123456789abcdef"; // configured by its SHA-256 only
    public const string Metrics = "metrics-token-0123456789abcdef";
    public const string EnvToken = "env-token-0123456789abcdef";

    public EmbeddedGateway Gateway { get; private set; } = null!;

    public static string Sha256(string token) =>
        Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(token))).ToLowerInvariant();

    public async Task InitializeAsync() =>
        Gateway = await EmbeddedGateway.StartAsync(
            [
                "--auth:tokens:0:name=ops",
                $"--auth:tokens:0:token={Admin}",
                "--auth:tokens:0:scopes:0=admin",
                "--auth:tokens:1:name=cams",
                $"--auth:tokens:1:token={Camera}",
                "--auth:tokens:1:scopes:0=ingest",
                "--auth:tokens:1:sources:0=cam-*",
                "--auth:tokens:2:name=wall",
                $"--auth:tokens:2:token={Viewer}",
                "--auth:tokens:2:scopes:0=view",
                "--auth:tokens:2:sources:0=cam-*",
                "--auth:tokens:3:name=ctl",
                $"--auth:tokens:3:token_sha256={Sha256(Control).ToUpperInvariant()}",
                "--auth:tokens:3:scopes:0=control",
                "--auth:tokens:4:name=prom",
                $"--auth:tokens:4:token={Metrics}",
                "--auth:tokens:4:scopes:0=metrics",
            ],
            new System.Collections.Hashtable { ["BLANKEND_API_TOKEN"] = EnvToken }
        );

    public async Task DisposeAsync() => await Gateway.DisposeAsync();
}

/// <summary>Token authentication with scopes and source patterns over real HTTP and real WebSocket handshakes:
/// refusals are 401/403 problem+json answered before any upgrade.</summary>
[Trait(TestKind.Name, TestKind.Integration)]
public sealed class AccessControlTests(TokenGatewayFixture fixture) : IClassFixture<TokenGatewayFixture>
{
    private EmbeddedGateway Gw => fixture.Gateway;

    /// <summary>One route of each family, with a body where the route takes one.</summary>
    public static TheoryData<string, string> Routes =>
        new()
        {
            { "GET", "api/v1/stream/status" },
            { "GET", "api/v1/cluster/status" },
            { "GET", "api/v1/video_processing/pipeline/config" },
            { "POST", "api/v1/video_processing/pipeline/config" },
            { "POST", "api/v1/realtime_pipeline/record/stop" },
            { "DELETE", "api/v1/ai/reference" },
            { "GET", "metrics" },
            { "GET", "dashboard/" },
        };

    private HttpRequestMessage Call(string method, string path, string? bearer) =>
        Request(new HttpMethod(method), path, bearer, method == "POST" ? Json("{\"source\":\"cam-1\"}") : null);

    [Theory]
    [MemberData(nameof(Routes))]
    public async Task EveryRouteWithoutATokenOrWithAWrongOneIs401ProblemJsonWithWwwAuthenticateBearer(
        string method,
        string path
    )
    {
        using (var r = await Gw.Client.SendAsync(Call(method, path, null)))
        {
            await AssertProblemAsync(r, HttpStatusCode.Unauthorized, "Bearer");
            Assert.Equal("Bearer", r.Headers.WwwAuthenticate.Single().Scheme);
        }
        using (var r = await Gw.Client.SendAsync(Call(method, path, "not-a-known-token-at-all")))
        {
            await AssertProblemAsync(r, HttpStatusCode.Unauthorized, "not known");
            Assert.Equal("error=\"invalid_token\"", r.Headers.WwwAuthenticate.Single().Parameter);
        }
    }

    [Theory]
    [InlineData("GET", "api/v1/stream/status", TokenGatewayFixture.Metrics, "view")]
    [InlineData("GET", "api/v1/stream/status", TokenGatewayFixture.Control, "view")]
    [InlineData("GET", "api/v1/cluster/status", TokenGatewayFixture.Viewer, "admin")]
    [InlineData("POST", "api/v1/video_processing/pipeline/config", TokenGatewayFixture.Viewer, "control")]
    [InlineData("POST", "api/v1/realtime_pipeline/record/stop", TokenGatewayFixture.Camera, "control")]
    [InlineData("DELETE", "api/v1/ai/reference", TokenGatewayFixture.Metrics, "control")]
    [InlineData("GET", "metrics", TokenGatewayFixture.Viewer, "metrics")]
    [InlineData("GET", "dashboard", TokenGatewayFixture.Metrics, "admin")]
    public async Task ATokenWithoutTheRoutesScopeIs403ProblemJson(
        string method,
        string path,
        string token,
        string scope
    )
    {
        using var r = await Gw.Client.SendAsync(Call(method, path, token));
        await AssertProblemAsync(r, HttpStatusCode.Forbidden, $"'{scope}' scope");
    }

    [Theory]
    [InlineData("GET", "api/v1/stream/status", TokenGatewayFixture.Viewer)]
    [InlineData("GET", "api/v1/cluster/status", TokenGatewayFixture.Admin)]
    [InlineData("GET", "metrics", TokenGatewayFixture.Metrics)]
    [InlineData("GET", "metrics", TokenGatewayFixture.EnvToken)]
    [InlineData("GET", "dashboard/", TokenGatewayFixture.Admin)] // (a redirect would drop the header)
    [InlineData("GET", "api/v1/stream/status", TokenGatewayFixture.EnvToken)]
    public async Task ATokenWithTheScopeIsServed(string method, string path, string token)
    {
        using var r = await Gw.Client.SendAsync(Call(method, path, token));
        Assert.True(
            r.IsSuccessStatusCode,
            $"{method} {path}: {(int)r.StatusCode} {await r.Content.ReadAsStringAsync()}"
        );
    }

    [Fact]
    public async Task ATokenConfiguredOnlyByItsSha256ChangesTheConfig()
    {
        using var r = await Gw.Client.SendAsync(
            Request(
                HttpMethod.Post,
                "api/v1/video_processing/pipeline/config",
                TokenGatewayFixture.Control,
                Json("{\"fps_limit\":12}")
            )
        );
        Assert.True(r.IsSuccessStatusCode, await r.Content.ReadAsStringAsync());
        using var get = await Gw.Client.SendAsync(
            Request(HttpMethod.Get, "api/v1/video_processing/pipeline/config", TokenGatewayFixture.Admin)
        );
        Assert.Contains("\"fps_limit\":12", await get.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task HealthzAnswersWithoutATokenWithTheStatusOnlyAndWithOneInFull()
    {
        using var anonymous = await Gw.Client.GetAsync("healthz");
        var body = await anonymous.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.OK, anonymous.StatusCode);
        var doc = JsonDocument.Parse(body).RootElement;
        // degraded: a slow component on a loaded machine
        Assert.Contains(doc.GetProperty("status").GetString(), new[] { "ok", "degraded" });
        Assert.Single(doc.EnumerateObject());

        using var full = await Gw.Client.SendAsync(Request(HttpMethod.Get, "healthz", TokenGatewayFixture.Metrics));
        Assert.True(
            JsonDocument.Parse(await full.Content.ReadAsStringAsync()).RootElement.TryGetProperty("components", out _)
        );
    }

    [Theory]
    [InlineData("/video_in?client_id=cam-1")]
    [InlineData("/video_codec?client_id=cam-1")]
    [InlineData("/video_out?source=cam-1")]
    public async Task WebSocketsWithoutOrWithAWrongTokenAreRefusedWith401BeforeTheUpgrade(string path)
    {
        var none = await HandshakeAsync(Gw.Ws(path));
        Assert.Equal(HttpStatusCode.Unauthorized, none.Status);
        Assert.Contains("Bearer", none.Headers!["WWW-Authenticate"].Single());
        var wrong = await HandshakeAsync(Gw.Ws(path + "&access_token=wrong-token-0123456789"));
        Assert.Equal(HttpStatusCode.Unauthorized, wrong.Status);
    }

    [Theory]
    [InlineData("/video_in?client_id=cam-1", TokenGatewayFixture.Viewer)] // view token on ingest
    [InlineData("/video_out?source=cam-1", TokenGatewayFixture.Camera)] // ingest token on a viewer
    [InlineData("/video_in?client_id=lobby", TokenGatewayFixture.Camera)] // outside cam-*
    [InlineData("/video_in", TokenGatewayFixture.Camera)] // default client_id SRC, outside cam-*
    [InlineData("/video_codec?client_id=lobby", TokenGatewayFixture.Camera)]
    [InlineData("/video_out?source=lobby", TokenGatewayFixture.Viewer)]
    [InlineData("/video_out", TokenGatewayFixture.Viewer)] // all sources: not for a restricted token
    public async Task WebSocketsWithoutTheScopeOrOutsideTheTokensSourcesAreRefusedWith403BeforeTheUpgrade(
        string path,
        string token
    )
    {
        var header = await HandshakeAsync(Gw.Ws(path), bearer: token);
        Assert.Equal(HttpStatusCode.Forbidden, header.Status);
        var query = await HandshakeAsync(Gw.Ws(path + (path.Contains('?') ? "&" : "?") + "access_token=" + token));
        Assert.Equal(HttpStatusCode.Forbidden, query.Status);
    }

    [Fact]
    public async Task TokensWithinTheirScopesAndPatternsCarryFramesAndRefusalsAreCounted()
    {
        var before = await ScrapeAsync(Gw, TokenGatewayFixture.Metrics);
        _ = await HandshakeAsync(Gw.Ws("/video_out?source=lobby"), bearer: TokenGatewayFixture.Viewer);
        _ = await HandshakeAsync(Gw.Ws("/video_out?source=cam-9"));

        // The viewer's token in the query (what a browser does), the camera's in the header.
        var viewer = await HandshakeAsync(Gw.Ws("/video_out?source=cam-7&access_token=" + TokenGatewayFixture.Viewer));
        Assert.Equal(HttpStatusCode.SwitchingProtocols, viewer.Status);
        var cam = await HandshakeAsync(Gw.Ws("/video_in?client_id=cam-7"), bearer: TokenGatewayFixture.Camera);
        Assert.Equal(HttpStatusCode.SwitchingProtocols, cam.Status);
        using var v = viewer.Socket!;
        using var c = cam.Socket!;
        await EventuallyAsync(
            async () =>
            {
                using var r = await Gw.Client.SendAsync(
                    Request(HttpMethod.Get, "api/v1/stream/status", TokenGatewayFixture.Viewer)
                );
                return (await r.Content.ReadAsStringAsync()).Contains("\"cam-7\"", StringComparison.Ordinal);
            },
            TimeSpan.FromSeconds(10),
            "viewer subscribed"
        );
        var frame = TestJpeg.Tagged(7);
        await c.SendBinaryAsync(frame);
        var got = await v.ReceiveMessageAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(frame, got!.Data);

        var after = await ScrapeAsync(Gw, TokenGatewayFixture.Metrics);
        Assert.True(
            Sum(after, "blankend_requests_refused_total", "reason=forbidden")
                > Sum(before, "blankend_requests_refused_total", "reason=forbidden")
        );
        Assert.True(
            Sum(after, "blankend_requests_refused_total", "reason=no_token")
                > Sum(before, "blankend_requests_refused_total", "reason=no_token")
        );
        await c.CloseQuietlyAsync();
        await v.CloseQuietlyAsync();
    }
}
