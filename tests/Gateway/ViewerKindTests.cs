using System.Net;
using Blankend.Orleans.Tests.Processing;
using Blankend.Orleans.Tests.Support;
using Xunit;

namespace Blankend.Orleans.Tests.Gateway;

/// <summary>
/// <c>/video_out?kind=any|raw|processed</c> over real WebSockets: any is the v1 rule (each frame once, in the
/// form processing gave it), raw gives the frames as they entered even while processing is on, processed only
/// the processed ones. Processing here is the video-processing re-encode (its output differs from its input).
/// </summary>
[Trait(TestKind.Name, TestKind.Integration)]
public sealed class ViewerKindTests(GatewayFixture fixture) : IClassFixture<GatewayFixture>
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(15);
    private EmbeddedGateway Gw => fixture.Gateway;

    private static string NewSource() => "kind-" + Guid.NewGuid().ToString("N")[..8];

    private async Task<(MetaViewer Any, MetaViewer Raw, MetaViewer Processed)> ViewersAsync(string source) =>
        (
            await MetaViewer.ConnectAsync(Gw.Ws($"/video_out?source={source}&meta=1")),
            await MetaViewer.ConnectAsync(Gw.Ws($"/video_out?source={source}&meta=1&kind=raw")),
            await MetaViewer.ConnectAsync(Gw.Ws($"/video_out?source={source}&meta=1&kind=processed"))
        );

    [Fact]
    public async Task WhileProcessingIsOnRawViewersGetTheInputAndAnyAndProcessedViewersGetEachProcessedFrameOnce()
    {
        var source = NewSource();
        await Gw.Client.ConfigureAsync(
            $$"""{"source":"{{source}}","enabled":true,"reencode_enabled":true,"jpeg_quality":40}"""
        );
        var (any, raw, processed) = await ViewersAsync(source);
        await using var _a = any;
        await using var _r = raw;
        await using var _p = processed;
        using var cam = await Ws.ConnectAsync(Gw.Ws($"/video_in?client_id={source}"));
        await VideoPathTests.WaitSubscribedAsync(Gw.StreamStatusAsync, source);

        const int n = 4;
        var sent = new List<byte[]>();
        for (var i = 0; i < n; i++)
        {
            var frame = ProcessingApi.NoiseJpeg(320, 240, seed: i + 1);
            sent.Add(frame);
            await cam.SendBinaryAsync(frame);
            // One at a time: the worker keeps one frame in flight and the newest pending (latest wins).
            await processed.WaitCountAsync(i + 1, Wait);
            await raw.WaitCountAsync(i + 1, Wait);
            await any.WaitCountAsync(i + 1, Wait);
        }
        await Task.Delay(300); // nothing more may come: no second form of any frame
        Assert.Equal(n, raw.Count);
        Assert.Equal(n, any.Count);
        Assert.Equal(n, processed.Count);
        for (var i = 0; i < n; i++)
        {
            var (rawMeta, rawData) = raw.Frames[i];
            Assert.Equal("raw", rawMeta.GetProperty("kind").GetString());
            Assert.Equal(sent[i], rawData);
            var (anyMeta, anyData) = any.Frames[i];
            var (procMeta, procData) = processed.Frames[i];
            Assert.Equal("processed", anyMeta.GetProperty("kind").GetString());
            Assert.Equal("processed", procMeta.GetProperty("kind").GetString());
            Assert.Equal(anyData, procData);
            Assert.NotEqual(sent[i], procData); // re-encoded at quality 40
            // The same frame in both forms: one seq.
            Assert.Equal(rawMeta.GetProperty("seq").GetInt64(), procMeta.GetProperty("seq").GetInt64());
        }
        await cam.CloseQuietlyAsync();
    }

    [Fact]
    public async Task WhileProcessingIsOffRawAndAnyViewersGetTheInputAndProcessedViewersGetNothing()
    {
        var source = NewSource();
        var (any, raw, processed) = await ViewersAsync(source);
        await using var _a = any;
        await using var _r = raw;
        await using var _p = processed;
        using var cam = await Ws.ConnectAsync(Gw.Ws($"/video_in?client_id={source}"));
        await VideoPathTests.WaitSubscribedAsync(Gw.StreamStatusAsync, source);

        var frames = new[] { TestJpeg.Tagged(1), TestJpeg.Tagged(2), TestJpeg.Tagged(3) };
        for (var i = 0; i < frames.Length; i++)
        {
            await cam.SendBinaryAsync(frames[i]);
            await raw.WaitCountAsync(i + 1, Wait);
            await any.WaitCountAsync(i + 1, Wait);
        }
        await Task.Delay(300);
        Assert.Equal(frames, raw.Frames.Select(f => f.Data));
        Assert.Equal(frames, any.Frames.Select(f => f.Data));
        Assert.All(raw.Frames.Concat(any.Frames), f => Assert.Equal("raw", f.Meta.GetProperty("kind").GetString()));
        Assert.Equal(0, processed.Count);
        await cam.CloseQuietlyAsync();
    }

    [Fact]
    public async Task RawViewersLeavingDoNotDisturbTheOtherViewersOfTheSource()
    {
        var source = NewSource();
        await using var any = await MetaViewer.ConnectAsync(Gw.Ws($"/video_out?source={source}&meta=1"));
        using var cam = await Ws.ConnectAsync(Gw.Ws($"/video_in?client_id={source}"));
        await VideoPathTests.WaitSubscribedAsync(Gw.StreamStatusAsync, source);
        await using (var raw = await MetaViewer.ConnectAsync(Gw.Ws($"/video_out?source={source}&meta=1&kind=raw")))
        {
            await cam.SendBinaryAsync(TestJpeg.Tagged(1));
            await raw.WaitCountAsync(1, Wait);
            await any.WaitCountAsync(1, Wait);
        }
        await cam.SendBinaryAsync(TestJpeg.Tagged(2));
        await any.WaitCountAsync(2, Wait);
        Assert.Equal([1, 2], any.Frames.Select(f => TestJpeg.ReadTag(f.Data)));
        Assert.Equal([1L, 2L], any.Frames.Select(f => f.Meta.GetProperty("seq").GetInt64()));
        await cam.CloseQuietlyAsync();
    }

    [Theory]
    [InlineData("/video_out?kind=raw")]
    [InlineData("/video_out?source=a&kind=everything")]
    [InlineData("/video_out?source=a&kind=raw&kind=processed")]
    public async Task AnUnknownKindOrARawViewerWithoutASourceIsRefusedWith400(string path)
    {
        using var r = await Gw.Client.GetAsync(path.TrimStart('/'));
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        Assert.Contains("kind", await r.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }
}
