using System.Collections;
using Blankend.Orleans.Configuration;
using Blankend.Orleans.Gateway.Hosting;
using Blankend.Orleans.Hosting;
using Blankend.Orleans.Tests.Support;
using Xunit;

namespace Blankend.Orleans.Tests.Security;

/// <summary>Open mode only on loopback, checked at start-up; secrets never printed.</summary>
[Trait(TestKind.Name, TestKind.Process)]
public sealed class StartupRefusalTests
{
    private const string Token = "startup-token-0123456789abcdef";

    [Fact]
    public async Task ANonLoopbackListenAddressWithoutATokenExitsWith2NamingAuthTokens()
    {
        var port = TestEnv.FreePort();
        await using var gw = ServiceProcess.StartGateway([
            .. TestEnv.SiloPortArgs(),
            "--urls",
            $"http://0.0.0.0:{port}",
        ]);
        Assert.True(await gw.WaitExitAsync(TimeSpan.FromSeconds(30)), gw.Output);
        Assert.Equal(2, gw.Process.ExitCode);
        Assert.Contains("configuration error: auth.tokens:", gw.Output);
        Assert.Contains($"http://0.0.0.0:{port}", gw.Output);
        Assert.DoesNotContain("   at ", gw.Output);
    }

    [Theory]
    [InlineData("http://0.0.0.0:0")]
    [InlineData("http://*:0")]
    [InlineData("http://[::]:0")]
    [InlineData("http://192.0.2.10:0")]
    [InlineData("http://127.0.0.1:0;http://+:0")]
    public void TheAppFactoryRefusesOpenModeOnEveryNonLoopbackFormAndAllowsItWithATokenOrAllowAnonymous(string urls)
    {
        var e = Assert.Throws<BlankendConfigurationException>(() =>
            BlankendGatewayApp.Create(TestEnv.GatewayArgs("--urls", urls), new Hashtable())
        );
        Assert.Contains("auth.tokens", e.Message);

        Build(TestEnv.GatewayArgs("--urls", urls), new Hashtable { ["BLANKEND_API_TOKEN"] = Token });
        Build(TestEnv.GatewayArgs("--urls", urls, "--auth:allow_anonymous=true"), new Hashtable());
        Build(TestEnv.GatewayArgs("--urls", urls), new Hashtable { ["BLANKEND_ALLOW_ANONYMOUS"] = "1" });
    }

    [Theory]
    [InlineData("http://127.0.0.1:0")]
    [InlineData("http://localhost:0")]
    [InlineData("http://[::1]:0")]
    public void LoopbackAddressesRunOpen(string urls) => Build(TestEnv.GatewayArgs("--urls", urls), new Hashtable());

    [Theory]
    [InlineData(
        "--auth:tokens:0:name=x",
        "--auth:tokens:0:token=short",
        "--auth:tokens:0:scopes:0=view",
        "auth:tokens:0:token must have at least 16"
    )]
    [InlineData(
        "--auth:tokens:0:name=x",
        "--auth:tokens:0:token_sha256=abc",
        "--auth:tokens:0:scopes:0=view",
        "auth:tokens:0:token_sha256 must be 64 hex"
    )]
    [InlineData(
        "--auth:tokens:0:name=x",
        "--auth:tokens:0:token=" + Token,
        "--auth:tokens:0:scopes:0=root",
        "'root' is not one of"
    )]
    [InlineData(
        "--auth:tokens:0:name=x",
        "--auth:tokens:0:token=" + Token,
        "--auth:tokens:0:scope:0=view",
        "auth:tokens:0:scope is not a known key"
    )]
    [InlineData(
        "--auth:allowed_origins:0=evil",
        "--auth:allow_anonymous=false",
        "--limits:max_sources=0",
        "is not an origin"
    )]
    [InlineData(
        "--limits:max_connections=0",
        "--limits:max_sources=1",
        "--stream:idle_timeout_s=5",
        "limits:max_connections must be between"
    )]
    public void BadAuthAndLimitsValuesStopStartUpNamingTheKey(string a, string b, string c, string mention)
    {
        var e = Assert.ThrowsAny<Exception>(() => Build(TestEnv.GatewayArgs(a, b, c), new Hashtable()));
        var message = BlankendStartup.Describe(e) ?? e.ToString();
        Assert.Contains(mention, message);
        Assert.DoesNotContain(Token, message);
    }

    [Fact]
    public async Task ARedisConnectionStringWithAPasswordIsNeverPrintedWhole()
    {
        const string secret = "hunter2-very-secret";
        var e = Assert.Throws<BlankendConfigurationException>(() =>
            ClusterMembership.ParseRedis($"127.0.0.1:6379,password={secret},bogus-option=1")
        );
        Assert.DoesNotContain(secret, e.Message);
        Assert.Contains("password=***", e.Message);

        await using var gw = ServiceProcess.StartGateway([
            .. TestEnv.SiloPortArgs(),
            "--cluster:clustering=redis",
            $"--cluster:redis=127.0.0.1:1,password={secret},bogus-option=1",
        ]);
        Assert.True(await gw.WaitExitAsync(TimeSpan.FromSeconds(30)), gw.Output);
        Assert.Equal(2, gw.Process.ExitCode);
        Assert.Contains("cluster:redis", gw.Output);
        Assert.DoesNotContain(secret, gw.Output);
    }

    [Theory]
    [InlineData("Host=db;Username=u;Password=s3cret;Database=x", "s3cret")]
    [InlineData("redis://user:s3cret@redis:6379", "s3cret")]
    [InlineData("Authorization: Bearer abc.def-ghi", "abc.def-ghi")]
    [InlineData("GET /video_out?source=a&access_token=tok123", "tok123")]
    [InlineData("cache:6379,password=p@ss;word,ssl=true", "p@ss")]
    public void SecretMaskHidesPasswordsAndTokens(string text, string secret)
    {
        var masked = SecretMask.Apply(text);
        Assert.DoesNotContain(secret, masked);
        Assert.Contains(SecretMask.Mask, masked);
    }

    private static void Build(string[] args, Hashtable env)
    {
        var app = BlankendGatewayApp.Create(args, env);
        ((IDisposable)app).Dispose();
    }
}
