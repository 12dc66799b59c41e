using System.Collections;
using System.Net;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using Blankend.Orleans.Configuration;
using Blankend.Orleans.Gateway.Cluster;
using Blankend.Orleans.Gateway.Hosting;
using Blankend.Orleans.Hosting;
using Blankend.Orleans.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Xunit;

namespace Blankend.Orleans.Tests.Codec;

public sealed class MissingFfmpegGatewayFixture : IAsyncLifetime
{
    public EmbeddedGateway Gateway { get; private set; } = null!;

    public async Task InitializeAsync() =>
        Gateway = await EmbeddedGateway.StartAsync(["--codec:ffmpeg_path=/nonexistent/bin/ffmpeg"]);

    public async Task DisposeAsync() => await Gateway.DisposeAsync();
}

/// <summary>A host without ffmpeg (a fresh machine before the scripts install it) says so everywhere it
/// matters.</summary>
[Trait(TestKind.Name, TestKind.Integration)]
public sealed class FfmpegMissingTests(MissingFfmpegGatewayFixture fixture) : IClassFixture<MissingFfmpegGatewayFixture>
{
    private EmbeddedGateway Gw => fixture.Gateway;

    [Fact]
    public async Task StatusSaysFfmpegIsMissingAndHowToFixIt()
    {
        var status = await Gw.Client.GetFromJsonAsync<JsonElement>("api/v1/video_processing/codec/status");
        Assert.False(status.GetProperty("ffmpeg_available").GetBoolean());
        var ffmpeg = status.GetProperty("silos")[0].GetProperty("ffmpeg");
        Assert.Equal("unavailable", ffmpeg.GetProperty("state").GetString());
        Assert.Contains("apt-get install ffmpeg", ffmpeg.GetProperty("error").GetString());
        Assert.Contains("/nonexistent/bin/ffmpeg", ffmpeg.GetProperty("error").GetString());

        using var health = await Gw.Client.GetAsync("healthz");
        Assert.Equal(HttpStatusCode.OK, health.StatusCode); // a missing decoder is degraded, not down
        var decoders = JsonDocument
            .Parse(await health.Content.ReadAsStringAsync())
            .RootElement.GetProperty("components")
            .GetProperty("decoders");
        Assert.Equal("degraded", decoders.GetProperty("state").GetString());
    }

    [Fact]
    public async Task VideoCodecConnectionGetsDecoderUnavailableAndClose1011()
    {
        using var cam = await Ws.ConnectAsync(Gw.Ws("/video_codec?codec=h264&client_id=nofmpeg"));
        var m = await cam.ReceiveMessageAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(WebSocketMessageType.Text, m!.Type);
        var json = JsonDocument.Parse(m.Data).RootElement;
        Assert.Equal("decoder_unavailable", json.GetProperty("error").GetString());
        Assert.Contains("apt-get install ffmpeg", json.GetProperty("detail").GetString());
        Assert.Null(await cam.ReceiveMessageAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(WebSocketCloseStatus.InternalServerError, cam.CloseStatus);
    }

    [Fact]
    public async Task RecordStartIs503NamingFfmpeg()
    {
        using var r = await Gw.Client.PostAsync(
            "api/v1/realtime_pipeline/record/start",
            new StringContent("{\"source\":\"SRC\"}", Encoding.UTF8, "application/json")
        );
        Assert.Equal(HttpStatusCode.ServiceUnavailable, r.StatusCode);
        Assert.Contains("ffmpeg", await r.Content.ReadAsStringAsync());
    }
}

[Trait(TestKind.Name, TestKind.Unit)]
public sealed class CodecConfigTests
{
    private static string[] Args(params string[] extra) =>
        ["--urls", "http://127.0.0.1:0", .. TestEnv.SiloPortArgs(), .. extra];

    [Fact]
    public void ShippedConfigHoldsTheCodecAndRecordingSections()
    {
        var json = JsonDocument.Parse(File.ReadAllText(BlankendConfiguration.DefaultPath)).RootElement;
        foreach (
            var k in new[]
            {
                "ffmpeg_path",
                "prefer_gpu",
                "idle_timeout_s",
                "probe_size",
                "mjpeg_qscale",
                "max_errors_without_frame",
                "max_bytes_without_frame",
                "chunk_queue_size",
            }
        )
            Assert.True(json.GetProperty("codec").TryGetProperty(k, out _), $"codec.{k} missing");
        foreach (var k in new[] { "folder", "default_fps", "idle_timeout_s", "queue_frames" })
            Assert.True(json.GetProperty("recording").TryGetProperty(k, out _), $"recording.{k} missing");
        using var app = BlankendGatewayApp.Create(Args(), new Hashtable());
        var codec = app.Services.GetRequiredService<IOptions<CodecOptions>>().Value;
        Assert.Equal("ffmpeg", codec.FfmpegPath);
        Assert.True(codec.PreferGpu);
        Assert.Equal(10, codec.IdleTimeoutSeconds);
    }

    [Theory]
    [InlineData("--codec:mjpeg_qscale=99", "codec:mjpeg_qscale must be between 2 and 31")]
    [InlineData("--codec:idle_timeout_s=0", "codec:idle_timeout_s must be between 1 and 3600")]
    [InlineData("--recording:default_fps=0", "recording:default_fps must be between 1 and 240")]
    [InlineData("--codec:ffmpeg_path=", "codec:ffmpeg_path must not be empty")]
    [InlineData("--codec:prefer_gpus=true", "codec:prefer_gpus is not a known key")]
    [InlineData("--recording:path=/tmp", "recording:path is not a known key")]
    public void BadCodecSettingsStopStartUpNamingTheKey(string arg, string message)
    {
        var e = Record.Exception(() =>
        {
            using var app = BlankendGatewayApp.Create(Args(arg), new Hashtable());
        });
        Assert.NotNull(e);
        Assert.Contains(message, BlankendStartup.Describe(e!));
    }
}

/// <summary>The gateway as an operator runs it: SIGTERM with a live decode session.</summary>
[Trait(TestKind.Name, TestKind.Process)]
public sealed class CodecProcessTests(Xunit.Abstractions.ITestOutputHelper output)
{
    [Fact]
    public async Task SigtermWithALiveSessionStopsCleanlyAndLeavesNoFfmpeg()
    {
        await using var gw = ServiceProcess.StartGateway(TestEnv.SiloPortArgs());
        await gw.WaitHealthyAsync();
        using var cam = await Ws.ConnectAsync(gw.Ws("/video_codec?codec=h264&client_id=term"));
        var data = TestStreams.H264();
        await cam.SendBinaryAsync(data[..(data.Length / 2)]);
        var pid = -1;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (pid < 0 && DateTime.UtcNow < deadline)
        {
            var status = await gw.Client.GetFromJsonAsync<JsonElement>("api/v1/video_processing/codec/status");
            foreach (var s in status.GetProperty("sessions").EnumerateArray())
            {
                if (s.GetProperty("pid").ValueKind == JsonValueKind.Number)
                    pid = s.GetProperty("pid").GetInt32();
            }
            await Task.Delay(20);
        }
        Assert.True(pid > 0, "no decode process seen");
        Assert.Equal(gw.Process.Id, Procs.Read(pid)!.Ppid); // the gateway's (embedded silo's) child

        gw.Terminate();
        Assert.True(await gw.WaitExitAsync(TimeSpan.FromSeconds(10)), "did not stop within 10 s:\n" + gw.Output);
        Assert.Equal(0, gw.Process.ExitCode);
        Assert.True(Procs.Read(pid) is not { Comm: "ffmpeg" }, $"ffmpeg {pid} outlived the gateway");
        foreach (var line in gw.Output.Split('\n').Where(l => l.Contains("decode term", StringComparison.Ordinal)))
            output.WriteLine(line.Trim());
        Assert.Contains("decode term: ended", gw.Output);
    }
}
