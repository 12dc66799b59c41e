using System.Collections;
using Blankend.Orleans.Tests.Gateway;
using Blankend.Orleans.Tests.Support;
using Xunit;

namespace Blankend.Orleans.Tests.Processing;

public sealed class EnvEnabledGatewayFixture : IAsyncLifetime
{
    public EmbeddedGateway Gateway { get; private set; } = null!;

    public async Task InitializeAsync() =>
        Gateway = await EmbeddedGateway.StartAsync(
            ["--stream:reencode_enabled=true", "--stream:jpeg_quality=30"],
            new Hashtable { ["BLANKEND_VIDEO_PROCESSING_ENABLED"] = "1", ["BLANKEND_HW_TRANSCODE"] = "1" }
        );

    public async Task DisposeAsync() => await Gateway.DisposeAsync();
}

/// <summary>The contract's variables turn processing (and the GPU request) on for every source from the
/// start.</summary>
[Trait(TestKind.Name, TestKind.Integration)]
public sealed class ProcessingEnvironmentTests(EnvEnabledGatewayFixture fixture)
    : IClassFixture<EnvEnabledGatewayFixture>
{
    private EmbeddedGateway Gw => fixture.Gateway;

    [Fact]
    public async Task EnvironmentEnablesProcessingForEverySourceAndTheStatusAnswersTheGpuRequest()
    {
        var config = await Gw.Client.GetJsonAsync(ProcessingApi.Config);
        var g = config.GetProperty("global");
        Assert.True(g.GetProperty("enabled").GetBoolean());
        Assert.True(g.GetProperty("hw_transcode").GetBoolean());
        Assert.True(g.GetProperty("reencode_enabled").GetBoolean());
        Assert.Equal(30, g.GetProperty("jpeg_quality").GetInt32());

        var source = "env-" + Guid.NewGuid().ToString("N")[..8];
        await using var viewer = await MetaViewer.ConnectAsync(Gw.Ws($"/video_out?source={source}&meta=1"));
        using var cam = await Ws.ConnectAsync(Gw.Ws($"/video_in?client_id={source}"));
        await VideoPathTests.WaitSubscribedAsync(Gw.StreamStatusAsync, source);
        await cam.SendBinaryAsync(TestJpeg.Tagged(1));
        await viewer.WaitCountAsync(1, TimeSpan.FromSeconds(15));
        var (meta, data) = viewer.Frames[0];
        Assert.Equal("processed", meta.GetProperty("kind").GetString());
        Assert.True(data.Length < TestJpeg.Base.Length);

        var gpu = await Gw.Client.GetJsonAsync(ProcessingApi.Gpu);
        Assert.True(gpu.GetProperty("hw_transcode_requested").GetBoolean());
        Assert.Equal("CPU", gpu.GetProperty("provider").GetString());
        Assert.Contains(
            GpuHost.Detected ? "JPEG codec runs on the CPU" : "no silo has a GPU",
            gpu.GetProperty("provider_reason").GetString()
        );
        await cam.CloseQuietlyAsync();
    }
}
