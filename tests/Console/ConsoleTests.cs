using System.Globalization;
using System.Net;
using System.Text.Json;
using Blankend.Orleans.Gateway.Cluster;
using Blankend.Orleans.Gateway.Hosting;
using Blankend.Orleans.Tests.Processing;
using Blankend.Orleans.Tests.Support;
using Microsoft.Playwright;
using Xunit;

namespace Blankend.Orleans.Tests.Console;

/// <summary>The web console (GET /) in a real chromium against the real gateway.</summary>
[Trait(TestKind.Name, TestKind.Process)]
[Collection(ConsoleCollection.Name)]
public sealed class ConsoleTests(ConsoleBrowser fixture)
{
    private static readonly (byte R, byte G, byte B) Magenta = (200, 40, 160);
    private EmbeddedGateway Gw => fixture.Gateway;

    private static string Url(EmbeddedGateway gw, string pathAndQuery) => new Uri(gw.Http, pathAndQuery).ToString();

    /// <summary>A test camera sending a solid magenta picture of this size to <paramref name="source"/>.</summary>
    private Task<ConsoleBrowser.TestCamera> MagentaCameraAsync(string source, int width, int height, double fps) =>
        ConsoleBrowser.StartCameraAsync(Gw, source, ConsoleBrowser.SolidJpeg(width, height, Magenta), fps);

    /// <summary>Records <paramref name="source"/> from the controls page (of <paramref name="kind"/> when given) for
    /// about <paramref name="ms"/> ms: start, 'recording', stop; returns the 'stopped' note once it shows.</summary>
    private async Task<ILocator> RecordFromControlsAsync(IPage page, string source, string? kind, int ms)
    {
        await page.GotoAsync(Url(Gw, "?page=controls"));
        await page.Locator("#record-form input[name=source]").FillAsync(source);
        if (kind is not null)
            await page.Locator("#record-form select[name=kind]").SelectOptionAsync(kind);
        await page.Locator("#record-start").ClickAsync();
        await page.Locator("#record-form [data-note]:text('recording')")
            .WaitForAsync(new LocatorWaitForOptions { Timeout = 15000 });
        await page.WaitForTimeoutAsync(ms);
        await page.Locator("#record-stop").ClickAsync();
        var note = page.Locator("#record-form [data-note]:text('stopped')");
        await note.WaitForAsync(new LocatorWaitForOptions { Timeout = 15000 });
        return note;
    }

    /// <summary>The RGB of one pixel (at fractions <paramref name="fx"/>, <paramref name="fy"/> of the size) of the
    /// canvas matched by <paramref name="selector"/>, or null before a frame is drawn.</summary>
    private static Task<int[]?> PixelAsync(IPage page, string selector, double fx = 0.5, double fy = 0.5) =>
        page.EvaluateAsync<int[]?>(
            """
            ([sel, fx, fy]) => {
              const c = document.querySelector(sel);
              if (!c || c.width < 2) return null;
              const d = c.getContext('2d').getImageData(Math.floor(c.width * fx), Math.floor(c.height * fy), 1, 1).data;
              return [d[0], d[1], d[2]];
            }
            """,
            new object[] { selector, fx, fy }
        );

    private static bool Near(int[]? rgb, (byte R, byte G, byte B) c, int tolerance = 16) =>
        rgb is not null
        && Math.Abs(rgb[0] - c.R) <= tolerance
        && Math.Abs(rgb[1] - c.G) <= tolerance
        && Math.Abs(rgb[2] - c.B) <= tolerance;

    private static async Task<int[]?> WaitColourAsync(
        IPage page,
        string selector,
        Func<int[]?, bool> ok,
        TimeSpan timeout,
        double fx = 0.5,
        double fy = 0.5
    )
    {
        var deadline = DateTime.UtcNow + timeout;
        int[]? last = null;
        while (DateTime.UtcNow < deadline)
        {
            last = await PixelAsync(page, selector, fx, fy);
            if (ok(last))
                return last;
            await Task.Delay(50);
        }
        throw new TimeoutException(
            $"{selector} never showed the expected colour within {timeout.TotalSeconds} s; last pixel at ({fx}, {fy}) {(last is null ? "none" : string.Join(",", last))}"
        );
    }

    /// <summary>The RGB of a JPEG's pixel at 2% of its width and height (what the test reads on the canvas).</summary>
    private static (byte R, byte G, byte B) CornerColour(byte[] jpeg)
    {
        using var m = OpenCvSharp.Cv2.ImDecode(jpeg, OpenCvSharp.ImreadModes.Color);
        var bgr = m.At<OpenCvSharp.Vec3b>((int)(m.Rows * 0.02), (int)(m.Cols * 0.02));
        return (bgr.Item2, bgr.Item1, bgr.Item0);
    }

    [Fact]
    public async Task TheConsoleIsServedFromTheGatewayWithAStrictPolicyAndNothingFromOtherHosts()
    {
        var names = typeof(GatewayMode)
            .Assembly.GetManifestResourceNames()
            .Where(n => n.StartsWith("console/", StringComparison.Ordinal))
            .ToArray();
        Assert.Contains("console/index.html", names);
        Assert.Contains("console/app.js", names);
        foreach (var name in names)
        {
            var file = name["console/".Length..];
            using var r = await Gw.Client.GetAsync(file == "index.html" ? "" : "console/" + file);
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            var csp = string.Join(";", r.Headers.GetValues("Content-Security-Policy"));
            Assert.Contains("default-src 'self'", csp, StringComparison.Ordinal);
            Assert.DoesNotContain("unsafe-inline", csp, StringComparison.Ordinal);
            Assert.Equal("nosniff", Assert.Single(r.Headers.GetValues("X-Content-Type-Options")));
            var text = await r.Content.ReadAsStringAsync();
            // No script, style, font or image from another host: every reference is to this origin.
            Assert.DoesNotMatch(@"(src|href)\s*=\s*[""']?(https?:)?//", text);
            Assert.DoesNotContain("import('http", text, StringComparison.Ordinal);
            if (file.EndsWith(".js", StringComparison.Ordinal))
                Assert.Equal("text/javascript", r.Content.Headers.ContentType?.MediaType);
        }
        using var missing = await Gw.Client.GetAsync("console/nope.js");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        using var html = await Gw.Client.GetAsync("?source=cam1");
        Assert.Equal("text/html", html.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task EveryPageLoadsWithoutScriptErrorsOrPolicyViolations()
    {
        var (page, errors) = await fixture.NewPageAsync();
        foreach (
            var (query, ready) in new[]
            {
                ("", "#sources-note:not(:text('Loading…'))"),
                ("?page=viewer", "#pick"),
                ("?source=idle-src", ".view .overlay"),
                ("?page=controls", "#realtime-version:text('v')"),
                ("?page=system", "[data-field=provider]"),
                ("?page=camera", "#camera-start"),
            }
        )
        {
            await page.GotoAsync(Url(Gw, query));
            await page.Locator(ready).First.WaitForAsync(new LocatorWaitForOptions { Timeout = 15000 });
            await page.WaitForTimeoutAsync(300);
        }
        Assert.Empty(errors);
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task TheViewerShowsACamerasColourWithinThreeSecondsAndItsFpsWithinTenPercent()
    {
        const double fps = 10;
        var source = TestEnv.NewId("colour");
        await using var camera = await MagentaCameraAsync(source, 320, 240, fps);
        var (page, errors) = await fixture.NewPageAsync();
        await page.GotoAsync(Url(Gw, "?source=" + source));
        await WaitColourAsync(page, ".view canvas", rgb => Near(rgb, Magenta), TimeSpan.FromSeconds(3));

        var overlay = page.Locator(".view .overlay");
        await page.Locator(".view .overlay[data-kind=raw]").WaitForAsync(new LocatorWaitForOptions { Timeout = 5000 });
        // The overlay's rate is over its last 3 s: wait for a full window, then read it.
        await page.WaitForFunctionAsync(
            "() => Number(document.querySelector('.view .overlay').dataset.frames) >= 40",
            null,
            new PageWaitForFunctionOptions { Timeout = 20000 }
        );
        await page.WaitForTimeoutAsync(600); // the overlay refreshes every 500 ms
        var shown = double.Parse((await overlay.GetAttributeAsync("data-fps"))!, CultureInfo.InvariantCulture);
        // Compared with what the camera sent over the same span as the overlay's arrivals (shifted back by the
        // frame latency, padded by half a frame): a late timer tick after the overlay's last refresh, on a busy
        // machine, must not count against it.
        var from = long.Parse((await overlay.GetAttributeAsync("data-fps-from"))!, CultureInfo.InvariantCulture);
        var to = long.Parse((await overlay.GetAttributeAsync("data-fps-to"))!, CultureInfo.InvariantCulture);
        _ = long.TryParse(
            await overlay.GetAttributeAsync("data-latency"),
            CultureInfo.InvariantCulture,
            out var latency
        );
        var sent = camera.SentFps(from - latency - 50, to - latency + 50);
        Assert.True(
            sent > fps / 2,
            $"the test camera sent only {sent:0.0} fps of {fps}: the machine is too busy for this test"
        );
        Assert.InRange(shown, sent * 0.9, sent * 1.1);
        Assert.Equal("0", await overlay.GetAttributeAsync("data-gaps"));
        Assert.Matches(@"^\d+$", (await overlay.GetAttributeAsync("data-latency"))!);
        Assert.Empty(errors);
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task EnablingMatteFromTheConsoleMakesTheViewProcessedWithRawBesideIt()
    {
        var source = TestEnv.NewId("matte");
        // A portrait: the matte keeps the person and puts the default solid green (#00FF00) behind; the top-left
        // corner is background.
        var portrait = await File.ReadAllBytesAsync(TestEnv.TestData("astronaut.jpg"));
        var corner = CornerColour(portrait);
        await using var camera = await ConsoleBrowser.StartCameraAsync(Gw, source, portrait, 8);
        var (page, errors) = await fixture.NewPageAsync();
        await page.GotoAsync(Url(Gw, "?source=" + source));
        await WaitColourAsync(
            page,
            ".view[data-kind=any] canvas",
            rgb => Near(rgb, corner, 24),
            TimeSpan.FromSeconds(10),
            0.02,
            0.02
        );

        await page.Locator("#steps-form input[value=matte]").CheckAsync();
        await page.Locator("#steps-apply").ClickAsync();
        // Raw beside processed: the raw view keeps the camera's corner colour, the processed one is green there.
        await WaitColourAsync(
            page,
            ".view[data-kind=raw] canvas",
            rgb => Near(rgb, corner, 24),
            TimeSpan.FromSeconds(15),
            0.02,
            0.02
        );
        await WaitColourAsync(
            page,
            ".view[data-kind=processed] canvas",
            rgb => rgb is not null && rgb[1] > 150 && rgb[0] < 100 && rgb[2] < 100,
            TimeSpan.FromSeconds(15),
            0.02,
            0.02
        );
        await page.Locator(".view[data-kind=raw] .overlay[data-kind=raw]")
            .WaitForAsync(new LocatorWaitForOptions { Timeout = 5000 });
        await page.Locator(".view[data-kind=processed] .overlay[data-kind=processed]")
            .WaitForAsync(new LocatorWaitForOptions { Timeout = 5000 });
        var config = await Gw.Client.GetJsonAsync("api/v1/realtime_pipeline/config");
        var own = config
            .GetProperty("sources")
            .EnumerateArray()
            .Single(s => s.GetProperty("source").GetString() == source);
        Assert.Equal("matte", own.GetProperty("steps").GetString());
        await page.WaitForTimeoutAsync(1000); // both overlays show a rate
        await ConsoleBrowser.ScreenshotAsync(page, "console.png");
        Assert.Empty(errors);

        // Back to the global settings (off): one view again, raw.
        await page.Locator("#steps-reset").ClickAsync();
        await page.Locator(".view[data-kind=any] .overlay[data-kind=raw]")
            .WaitForAsync(new LocatorWaitForOptions { Timeout = 15000 });
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task TheSourcesPageShowsALiveThumbnailOfEachSourceAndOpensItsViewer()
    {
        var source = TestEnv.NewId("thumb");
        await using var camera = await MagentaCameraAsync(source, 320, 180, 10);
        var (page, errors) = await fixture.NewPageAsync();
        await page.GotoAsync(Url(Gw, ""));
        var card = $".source-card[data-source='{source}']";
        await WaitColourAsync(page, card + " canvas", rgb => Near(rgb, Magenta), TimeSpan.FromSeconds(15));
        await page.Locator(card + " [data-field=kind]:text-is('raw')")
            .WaitForAsync(new LocatorWaitForOptions { Timeout = 10000 });
        await page.Locator(card).ClickAsync();
        await page.WaitForURLAsync("**/?source=" + source);
        await WaitColourAsync(page, ".view canvas", rgb => Near(rgb, Magenta), TimeSpan.FromSeconds(10));
        Assert.Empty(errors);
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task WithDetectOnTheViewerDrawsTheFaceBoxFromTheFramesMeta()
    {
        var source = TestEnv.NewId("face");
        await using var camera = await ConsoleBrowser.StartCameraAsync(
            Gw,
            source,
            await File.ReadAllBytesAsync(TestEnv.TestData("astronaut.jpg")),
            5
        );
        await using var meta = await MetaViewer.ConnectAsync(
            Gw.Ws($"/video_out?source={source}&meta=1&kind=processed")
        );
        var (page, errors) = await fixture.NewPageAsync();
        await page.GotoAsync(Url(Gw, "?source=" + source));
        await page.Locator(".view[data-kind=any] .overlay[data-kind=raw]")
            .WaitForAsync(new LocatorWaitForOptions { Timeout = 10000 });
        await page.Locator("#steps-form input[value=detect]").CheckAsync();
        await page.Locator("#steps-apply").ClickAsync();
        var overlay = page.Locator(".view[data-kind=processed] .overlay[data-faces='1']");
        await overlay.WaitForAsync(new LocatorWaitForOptions { Timeout = 20000 });

        // The box the service sent, drawn in the console's box colour (#22d3ee) on its left edge.
        await meta.WaitCountAsync(1, TimeSpan.FromSeconds(10));
        var box = meta.Frames[^1]
            .Meta.GetProperty("faces")[0]
            .GetProperty("box")
            .EnumerateArray()
            .Select(v => v.GetDouble())
            .ToArray();
        var edge = await page.EvaluateAsync<int[]>(
            """
            ([x, y]) => {
              const d = document.querySelector('.view[data-kind=processed] canvas').getContext('2d').getImageData(x, y, 1, 1).data;
              return [d[0], d[1], d[2]];
            }
            """,
            new object[] { (int)Math.Round(box[0]), (int)Math.Round((box[1] + box[3]) / 2) }
        );
        Assert.True(
            Near(edge, (0x22, 0xd3, 0xee), 40),
            $"pixel on the box's left edge {string.Join(",", edge)}, box {string.Join(",", box)}"
        );
        Assert.Empty(errors);
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task TheControlsChangeThePipelinesPerSourceOverridesAndTheReferenceFace()
    {
        var source = TestEnv.NewId("ctl");
        var (page, errors) = await fixture.NewPageAsync();
        await page.GotoAsync(Url(Gw, "?page=controls"));
        await page.Locator("#realtime-version:text('v')").WaitForAsync(new LocatorWaitForOptions { Timeout = 15000 });

        // Per source: processing on at 5 fps, shown in the table, then reset.
        await page.Locator("#override-form input[name=source]").FillAsync(source);
        await page.Locator("#override-form select[name=vp_enabled]").SelectOptionAsync("true");
        await page.Locator("#override-form input[name=vp_fps_limit]").FillAsync("5");
        await page.Locator("#override-form button[type=submit]").ClickAsync();
        await page.Locator($"#overrides tr:has(td:text-is('{source}'))")
            .WaitForAsync(new LocatorWaitForOptions { Timeout = 10000 });
        var own = (await Gw.Client.GetJsonAsync(ProcessingApi.Config))
            .GetProperty("sources")
            .EnumerateArray()
            .Single(s => s.GetProperty("source").GetString() == source);
        Assert.True(own.GetProperty("enabled").GetBoolean());
        Assert.Equal(5, own.GetProperty("fps_limit").GetDouble());
        await page.Locator("#override-reset").ClickAsync();
        await page.Locator($"#overrides tr:has(td:text-is('{source}'))")
            .WaitForAsync(new LocatorWaitForOptions { State = WaitForSelectorState.Detached, Timeout = 10000 });

        // Global: the realtime face detect interval (put back afterwards: the fixture's gateway is shared).
        var before = (await Gw.Client.GetJsonAsync("api/v1/realtime_pipeline/config"))
            .GetProperty("face_detect_interval")
            .GetInt32();
        await page.Locator("#realtime-form input[name=face_detect_interval]").FillAsync("7");
        await page.Locator("#realtime-form button[type=submit]").ClickAsync();
        await page.Locator("#realtime-form [data-note]:text-is('applied')")
            .WaitForAsync(new LocatorWaitForOptions { Timeout = 10000 });
        Assert.Equal(
            7,
            (await Gw.Client.GetJsonAsync("api/v1/realtime_pipeline/config"))
                .GetProperty("face_detect_interval")
                .GetInt32()
        );
        await page.Locator("#realtime-form input[name=face_detect_interval]")
            .FillAsync(before.ToString(CultureInfo.InvariantCulture));
        await page.Locator("#realtime-form button[type=submit]").ClickAsync();
        for (
            var i = 0;
            i < 100
                && (await Gw.Client.GetJsonAsync("api/v1/realtime_pipeline/config"))
                    .GetProperty("face_detect_interval")
                    .GetInt32() != before;
            i++
        )
            await Task.Delay(100);

        // The reference face: a preview before the upload, then the service holds it.
        await page.Locator("#reference-file").SetInputFilesAsync(TestEnv.TestData("astronaut.jpg"));
        await page.WaitForFunctionAsync(
            "() => document.querySelector('#reference-preview').naturalWidth === 512",
            null,
            new PageWaitForFunctionOptions { Timeout = 10000 }
        );
        await page.Locator("#reference-upload").ClickAsync();
        await page.Locator("#images-note:text('reference uploaded')")
            .WaitForAsync(new LocatorWaitForOptions { Timeout = 30000 });
        Assert.True(
            (await Gw.Client.GetJsonAsync("api/v1/realtime_pipeline/config"))
                .GetProperty("reference_version")
                .GetInt64() > 0
        );
        await page.Locator("#reference-clear").ClickAsync();
        await page.Locator("#images-note:text('reference cleared')")
            .WaitForAsync(new LocatorWaitForOptions { Timeout = 10000 });
        Assert.Empty(errors);
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task TheCameraPagesFakeCameraReachesAVideoOutViewer()
    {
        var source = TestEnv.NewId("browser");
        await using var viewer = await MetaViewer.ConnectAsync(Gw.Ws($"/video_out?source={source}&meta=1"));
        var (page, errors) = await fixture.NewPageAsync();
        await page.GotoAsync(Url(Gw, "?page=camera"));
        await page.Locator("#camera-form input[name=source]").FillAsync(source);
        await page.Locator("#camera-form select[name=size]").SelectOptionAsync("320x240");
        await page.Locator("#camera-form select[name=fps]").SelectOptionAsync("10");
        await page.Locator("#camera-start").ClickAsync();
        await viewer.WaitCountAsync(5, TimeSpan.FromSeconds(20));
        foreach (var (meta, data) in viewer.Frames.Take(5))
        {
            Assert.Equal(source, meta.GetProperty("source").GetString());
            Assert.Equal((320, 240), ProcessingApi.DecodeSize(data));
        }
        await page.WaitForFunctionAsync(
            "() => Number(document.querySelector('#camera-rate').dataset.sent) >= 5",
            null,
            new PageWaitForFunctionOptions { Timeout = 10000 }
        );
        Assert.Empty(errors);
        await page.Locator("#camera-stop").ClickAsync();
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task RecordStartAndStopFromTheConsoleRecordTheSource()
    {
        var source = TestEnv.NewId("rec");
        await using var camera = await MagentaCameraAsync(source, 320, 240, 10);
        var (page, errors) = await fixture.NewPageAsync();
        var note = await RecordFromControlsAsync(page, source, null, 1500);
        var frames = int.Parse(
            System
                .Text.RegularExpressions.Regex.Match((await note.TextContentAsync())!, @"stopped: (\d+) frames")
                .Groups[1]
                .Value,
            CultureInfo.InvariantCulture
        );
        Assert.True(frames > 0, $"{frames} frames recorded");
        // A second stop: nothing is recording any more (404), said on the page.
        await page.Locator("#record-stop").ClickAsync();
        await page.Locator("#record-form [data-note].error:text('404')")
            .WaitForAsync(new LocatorWaitForOptions { Timeout = 10000 });
        Assert.Empty(errors);
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task RecordingStartedAndStoppedFromTheConsoleIsListedAndItsDownloadPlays()
    {
        var source = TestEnv.NewId("rec");
        await using var camera = await MagentaCameraAsync(source, 320, 240, 10);
        var (page, errors) = await fixture.NewPageAsync();
        await RecordFromControlsAsync(page, source, "raw", 2000);

        var row = page.Locator($"#recordings-list tr:has(td:text-is('{source}'))");
        await row.Locator("a[data-download]").WaitForAsync(new LocatorWaitForOptions { Timeout = 15000 });
        var href = await row.Locator("a[data-download]").GetAttributeAsync("href");
        var file = Path.Combine(Path.GetTempPath(), $"console-{source}.mp4");
        try
        {
            await File.WriteAllBytesAsync(file, await Gw.Client.GetByteArrayAsync(href!.TrimStart('/')));
            var info = await FfProbe.ReadAsync(file);
            Assert.Equal("h264", info.Codec);
            Assert.True(info.Frames > 5, $"{info.Frames} frames");
        }
        finally
        {
            File.Delete(file);
        }
        Assert.Empty(errors);
        await page.Context.CloseAsync();
    }
}
