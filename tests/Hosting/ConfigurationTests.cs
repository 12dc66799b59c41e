using System.Collections;
using Blankend.Orleans.Configuration;
using Blankend.Orleans.Gateway.Cluster;
using Blankend.Orleans.Gateway.Hosting;
using Blankend.Orleans.Hosting;
using Blankend.Orleans.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Xunit;

namespace Blankend.Orleans.Tests.Hosting;

/// <summary>config/blankend.json, the contract's environment overrides, and start-up refusal of bad values.</summary>
[Trait(TestKind.Name, TestKind.Unit)]
public sealed class ConfigurationTests
{
    private static string[] Args(params string[] extra) => TestEnv.GatewayArgs(extra);

    [Fact]
    public void ShippedConfigFileHoldsEveryContractStreamKey()
    {
        var json = System
            .Text.Json.JsonDocument.Parse(File.ReadAllText(BlankendConfiguration.DefaultPath))
            .RootElement.GetProperty("stream");
        string[] keys =
        [
            "relay_enabled",
            "zmq_endpoint",
            "zmq_identity",
            "send_queue_size",
            "forward_recv_enabled",
            "forward_recv_client_id",
            "forward_recv_only",
            "echo_back",
            "heartbeat_enabled",
            "heartbeat_interval_ms",
            "link_request_enabled",
            "reencode_enabled",
            "jpeg_quality",
            "default_client_id",
            "max_frame_bytes",
        ];
        foreach (var k in keys)
            Assert.True(json.TryGetProperty(k, out _), $"stream.{k} missing from config/blankend.json");
        Assert.Equal(8 * 1024 * 1024, json.GetProperty("max_frame_bytes").GetInt32());
        Assert.Equal("SRC", json.GetProperty("default_client_id").GetString());
    }

    [Fact]
    public void ContractEnvironmentVariablesOverrideTheFile()
    {
        var env = new Hashtable
        {
            ["BLANKEND_RELAY_ENABLED"] = "1",
            ["BLANKEND_ZMQ_ENDPOINT"] = "tcp://10.0.0.5:9999",
            ["BLANKEND_ZMQ_IDENTITY"] = "edge-7",
            ["BLANKEND_HW_TRANSCODE"] = "yes",
            ["BLANKEND_VIDEO_PROCESSING_ENABLED"] = "true",
            ["BLANKEND_REALTIME_PIPELINE_ENABLED"] = "on",
            ["BLANKEND_REALTIME_PIPELINE_WORKERS"] = "3",
            ["FACE_DETECT_INTERVAL"] = "7",
            ["SIMPLE_FORWARD"] = "1",
            ["FACE_DETECT_MODEL"] = "/m/face.onnx",
            ["SWAP_MODEL"] = "/m/swap.onnx",
            ["RVM_MODEL"] = "/m/rvm.onnx",
            ["DEPTH_MODEL"] = "/m/depth.onnx",
        };
        using var app = BlankendGatewayApp.Create(Args(), env);
        var stream = app.Services.GetRequiredService<IOptions<StreamOptions>>().Value;
        var vp = app.Services.GetRequiredService<IOptions<VideoProcessingOptions>>().Value;
        var rt = app.Services.GetRequiredService<IOptions<RealtimePipelineOptions>>().Value;
        var ai = app.Services.GetRequiredService<IOptions<AiOptions>>().Value;
        Assert.True(stream.RelayEnabled);
        Assert.Equal("tcp://10.0.0.5:9999", stream.ZmqEndpoint);
        Assert.Equal("edge-7", stream.ZmqIdentity);
        Assert.True(vp.HwTranscode);
        Assert.True(vp.Enabled);
        Assert.True(rt.Enabled);
        Assert.Equal(3, rt.Workers);
        Assert.Equal(7, ai.FaceDetectInterval);
        Assert.True(ai.SimpleForward);
        Assert.Equal(
            ("/m/face.onnx", "/m/swap.onnx", "/m/rvm.onnx", "/m/depth.onnx"),
            (ai.FaceDetectModel, ai.SwapModel, ai.RvmModel, ai.DepthModel)
        );
        // Untouched keys keep the file's values.
        Assert.Equal(80, stream.JpegQuality);
    }

    [Fact]
    public void CommandLineWinsOverEnvironment()
    {
        using var app = BlankendGatewayApp.Create(
            Args("--stream:zmq_identity=from-cli"),
            new Hashtable { ["BLANKEND_ZMQ_IDENTITY"] = "from-env" }
        );
        Assert.Equal("from-cli", app.Services.GetRequiredService<IOptions<StreamOptions>>().Value.ZmqIdentity);
    }

    [Theory]
    [InlineData("BLANKEND_RELAY_ENABLED", "maybe")]
    [InlineData("BLANKEND_REALTIME_PIPELINE_WORKERS", "many")]
    [InlineData("FACE_DETECT_INTERVAL", "1.5")]
    public void BadEnvironmentValueStopsStartupNamingTheVariable(string variable, string value)
    {
        var e = Assert.Throws<BlankendConfigurationException>(() =>
            BlankendGatewayApp.Create(Args(), new Hashtable { [variable] = value })
        );
        Assert.Contains(variable, e.Message);
        Assert.Contains(value, e.Message);
    }

    [Theory]
    [InlineData("--stream:jpeg_quality=0", "stream:jpeg_quality")]
    [InlineData("--stream:jpeg_quality=101", "stream:jpeg_quality")]
    [InlineData("--stream:max_frame_bytes=10", "stream:max_frame_bytes")]
    [InlineData("--stream:default_client_id=bad id", "stream:default_client_id")]
    [InlineData("--stream:heartbeat_interval_ms=-5", "stream:heartbeat_interval_ms")]
    [InlineData("--gateway:viewer_queue_size=0", "gateway:viewer_queue_size")]
    [InlineData("--video_processing:fps_limit=-1", "video_processing:fps_limit")]
    public void OutOfRangeValueStopsStartupNamingTheKey(string arg, string key)
    {
        var e = Assert.Throws<OptionsValidationException>(() => BlankendGatewayApp.Create(Args(arg), new Hashtable()));
        Assert.Contains(key, BlankendStartup.Describe(e));
    }

    [Theory]
    [InlineData("--stream:jpeg_qualty=50", "stream:jpeg_qualty")]
    [InlineData("--cluster:mode=sideways", "cluster:mode")]
    [InlineData("--cluster:silo_port=seventy", "cluster:silo_port")]
    [InlineData("--telemetry:trace_every=5", "telemetry:trace_every")]
    public void UnknownKeyOrUnreadableValueStopsStartupNamingIt(string arg, string key)
    {
        var e = Assert.Throws<BlankendConfigurationException>(() =>
            BlankendGatewayApp.Create(Args(arg), new Hashtable())
        );
        Assert.Contains(key, e.Message);
    }

    [Theory]
    [InlineData("--telemetry:trace_sample_every=-1", "telemetry:trace_sample_every")]
    [InlineData("--telemetry:stats_log_interval_s=-10", "telemetry:stats_log_interval_s")]
    [InlineData("--telemetry:dashboard_enabled=perhaps", "telemetry:dashboard_enabled")]
    [InlineData("--cluster:metrics_port=70000", "cluster:metrics_port")]
    public void BadTelemetrySettingStopsStartupNamingTheKey(string arg, string key)
    {
        var e = Assert.ThrowsAny<Exception>(() => BlankendGatewayApp.Create(Args(arg), new Hashtable()));
        Assert.Contains(key, BlankendStartup.Describe(e));
    }

    [Fact]
    public void TelemetryDefaultsComeFromTheShippedFile()
    {
        using var app = BlankendGatewayApp.Create(Args(), new Hashtable());
        var t = app.Services.GetRequiredService<IOptions<TelemetryOptions>>().Value;
        Assert.Equal((10, 300, true), (t.StatsLogIntervalSeconds, t.TraceSampleEvery, t.DashboardEnabled));
        Assert.Equal(0, app.Services.GetRequiredService<IOptions<ClusterSettings>>().Value.MetricsPort);
    }

    [Fact]
    public void UnreadableValueInAnOptionsSectionStopsStartupNamingTheKey()
    {
        var e = Assert.ThrowsAny<Exception>(() =>
            BlankendGatewayApp.Create(Args("--stream:max_frame_bytes=lots"), new Hashtable())
        );
        Assert.Contains("stream:max_frame_bytes", BlankendStartup.Describe(e));
    }

    [Theory]
    [InlineData("{ \"stream\": { \"jpeg_quality\": 80, }", "not valid JSON")]
    [InlineData("{ \"strem\": { } }", "unknown section 'strem'")]
    [InlineData("[1, 2]", "must hold a JSON object")]
    public void BrokenConfigFileStopsStartupWithAClearMessage(string content, string expected)
    {
        var path = Path.Combine(Path.GetTempPath(), $"blankend-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, content);
        try
        {
            var e = Assert.Throws<BlankendConfigurationException>(() =>
                BlankendGatewayApp.Create(Args("--config", path), new Hashtable())
            );
            Assert.Contains(expected, e.Message);
            Assert.Contains(path, e.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void MissingExplicitConfigFileIsAnError()
    {
        var e = Assert.Throws<BlankendConfigurationException>(() =>
            BlankendGatewayApp.Create(Args(), new Hashtable { ["BLANKEND_CONFIG"] = "/nonexistent/blankend.json" })
        );
        Assert.Contains("/nonexistent/blankend.json", e.Message);
    }

    [Fact]
    public void ConfigFileFromEnvironmentIsUsed()
    {
        var path = Path.Combine(Path.GetTempPath(), $"blankend-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, "{ \"stream\": { \"jpeg_quality\": 55, \"default_client_id\": \"CAM\" } }");
        try
        {
            using var app = BlankendGatewayApp.Create(Args(), new Hashtable { ["BLANKEND_CONFIG"] = path });
            var stream = app.Services.GetRequiredService<IOptions<StreamOptions>>().Value;
            Assert.Equal(55, stream.JpegQuality);
            Assert.Equal("CAM", stream.DefaultClientId);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
