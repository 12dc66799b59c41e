using Blankend.Orleans.Tests.Support;
using Microsoft.Playwright;
using OpenCvSharp;
using Xunit;

namespace Blankend.Orleans.Tests.Console;

/// <summary>
/// The system chromium (Debian's /usr/bin/chromium, scripts/install-deps.sh --test) driven by Playwright; never
/// a downloaded browser. Chromium's fake media devices give the camera page a test camera without a prompt.
/// Playwright's driver (node and its JS package) comes inside the NuGet package and is copied to the output
/// folder by the build: nothing is fetched at run time.
/// </summary>
public sealed class ConsoleBrowser : IAsyncLifetime
{
    public const string Chromium = "/usr/bin/chromium";

    private IPlaywright? _playwright;

    public IBrowser Browser { get; private set; } = null!;

    public EmbeddedGateway Gateway { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        if (!File.Exists(Chromium))
            throw new InvalidOperationException(
                $"{Chromium} is missing: the console tests need Debian's chromium (scripts/install-deps.sh --test)"
            );
        Gateway = await EmbeddedGateway.StartAsync();
        _playwright = await Playwright.CreateAsync();
        Browser = await _playwright.Chromium.LaunchAsync(
            new BrowserTypeLaunchOptions
            {
                ExecutablePath = Chromium,
                Headless = true,
                Args = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream", "--no-sandbox"],
            }
        );
    }

    public async Task DisposeAsync()
    {
        if (Browser is not null)
            await Browser.CloseAsync();
        _playwright?.Dispose();
        if (Gateway is not null)
            await Gateway.DisposeAsync();
    }

    /// <summary>A fresh page (its own context: its own sessionStorage) that records script errors and policy
    /// violations.</summary>
    public async Task<(IPage Page, List<string> Errors)> NewPageAsync()
    {
        var context = await Browser.NewContextAsync(
            new BrowserNewContextOptions
            {
                ViewportSize = new ViewportSize { Width = 1280, Height = 800 },
            }
        );
        var page = await context.NewPageAsync();
        var errors = new List<string>();
        page.PageError += (_, e) =>
        {
            lock (errors)
                errors.Add("page error: " + e);
        };
        page.Console += (_, m) =>
        {
            // A 404 of an optional API (the recordings list) is logged by the browser as a failed load; anything
            // else at error level is the console's fault, a refused policy included.
            if (m.Type == "error" && !m.Text.StartsWith("Failed to load resource", StringComparison.Ordinal))
                lock (errors)
                    errors.Add("console: " + m.Text);
        };
        return (page, errors);
    }

    public static string RepoRoot()
    {
        var dir = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(dir, "Blankend.Orleans.sln")))
            dir = Path.GetDirectoryName(dir) ?? throw new InvalidOperationException("repository root not found");
        return dir;
    }

    /// <summary>Writes docs/NAME when CONSOLE_SCREENSHOTS=1 (the README's picture); otherwise nothing.</summary>
    public static async Task ScreenshotAsync(IPage page, string name)
    {
        if (Environment.GetEnvironmentVariable("CONSOLE_SCREENSHOTS") != "1")
            return;
        await page.ScreenshotAsync(
            new PageScreenshotOptions { Path = Path.Combine(RepoRoot(), "docs", name), FullPage = false }
        );
    }

    /// <summary>A solid-colour JPEG (RGB).</summary>
    public static byte[] SolidJpeg(int width, int height, (byte R, byte G, byte B) colour)
    {
        using var m = new Mat(height, width, MatType.CV_8UC3, new Scalar(colour.B, colour.G, colour.R));
        Cv2.ImEncode(".jpg", m, out var buffer, new ImageEncodingParam(ImwriteFlags.JpegQuality, 90));
        return buffer;
    }

    /// <summary>A test camera: sends <paramref name="jpeg"/> to /video_in at <paramref name="fps"/> until
    /// disposed.</summary>
    public static async Task<TestCamera> StartCameraAsync(EmbeddedGateway gw, string source, byte[] jpeg, double fps)
    {
        var ws = await Ws.ConnectAsync(gw.Ws($"/video_in?client_id={source}"));
        var cts = new CancellationTokenSource();
        var sent = new List<long>();
        var loop = Task.Run(async () =>
        {
            using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1 / fps));
            try
            {
                do
                {
                    await ws.SendBinaryAsync(jpeg, cts.Token);
                    lock (sent)
                        sent.Add(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
                } while (await timer.WaitForNextTickAsync(cts.Token));
            }
            catch (OperationCanceledException) { }
        });
        return new TestCamera(ws, cts, loop, sent);
    }

    /// <summary>A camera sending one JPEG at a rate; it may fall behind that rate on a busy machine (a timer
    /// tick that is late is not made up), so what it really sent is what a viewer's figures are compared
    /// with.</summary>
    public sealed class TestCamera(
        System.Net.WebSockets.ClientWebSocket ws,
        CancellationTokenSource cts,
        Task loop,
        List<long> sent
    ) : IAsyncDisposable
    {
        /// <summary>Frames per second actually sent over the last <paramref name="window"/>, computed as the console
        /// computes its own: (frames - 1) / (last - first) within the window.</summary>
        public double SentFps(TimeSpan window)
        {
            var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            return SentFps(now - (long)window.TotalMilliseconds, now);
        }

        /// <summary>Frames per second sent between two epoch-ms instants (inclusive), computed the same way.</summary>
        public double SentFps(long fromMs, long toMs)
        {
            lock (sent)
            {
                var recent = sent.Where(t => t >= fromMs && t <= toMs).ToArray();
                return recent.Length < 2 ? 0 : (recent.Length - 1) * 1000.0 / (recent[^1] - recent[0]);
            }
        }

        public async ValueTask DisposeAsync()
        {
            await cts.CancelAsync();
            await loop;
            await ws.CloseQuietlyAsync();
            cts.Dispose();
        }
    }
}

// Alone, like SerialCollection: the overlay's fps is compared with the camera's, which two busy cores would blur.
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ConsoleCollection : ICollectionFixture<ConsoleBrowser>
{
    public const string Name = "console (one gateway, one chromium)";
}
