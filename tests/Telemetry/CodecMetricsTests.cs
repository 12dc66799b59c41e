using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Net.WebSockets;
using System.Text.RegularExpressions;
using Blankend.Orleans.Hosting;
using Blankend.Orleans.Telemetry;
using Blankend.Orleans.Tests.Gateway;
using Blankend.Orleans.Tests.Support;
using Microsoft.Extensions.Logging;
using Xunit;
using Xunit.Abstractions;

namespace Blankend.Orleans.Tests.Telemetry;

/// <summary>
/// The codec's metrics and log lines against a real ffmpeg decode: the decoded-frames counter equals what the viewer
/// received, the live-session gauge is 1 while the stream is open and 0 after, and the periodic
/// <c>ffmpeg decoded fps</c> line is written. Also the silo process's throughput lines. The instruments are
/// process-wide (a static meter), so these run in the serial collection.
/// </summary>
[Trait(TestKind.Name, TestKind.Integration)]
[Collection(SerialCollection.Name)]
public sealed partial class CodecMetricsTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(15);

    [Fact]
    public async Task DecodedFramesCounterEqualsTheFramesTheViewerGotAndTheSessionGaugeGoesOneThenZero()
    {
        var capture = new LogCapture(c => c.EndsWith(".CodecHost", StringComparison.Ordinal));
        await using var gw = await EmbeddedGateway.StartAsync(
            ["--telemetry:stats_log_interval_s=1", "--Logging:LogLevel:Blankend.Orleans.Grains.Codec=Information"],
            configure: b => b.Logging.AddProvider(capture)
        );
        var source = "cmet-" + Guid.NewGuid().ToString("N")[..8];
        using var viewer = await Ws.ConnectAsync(gw.Ws($"/video_out?source={source}"));
        await VideoPathTests.WaitSubscribedAsync(gw.StreamStatusAsync, source);
        using var cam = await Ws.ConnectAsync(gw.Ws($"/video_codec?codec=h264&client_id={source}"));

        var received = 0;
        var receive = Task.Run(async () =>
        {
            while (true)
            {
                var m = await viewer.ReceiveOrNullAsync(TimeSpan.FromSeconds(6));
                if (m is null)
                    break;
                if (m.Type == WebSocketMessageType.Binary)
                    Interlocked.Increment(ref received);
            }
        });

        // 2.5 s of stream, paced: the session lives over at least two log intervals.
        var data = TestStreams.H264();
        var chunks = TestStreams.RandomChunks(data, new Random(7), 3000);
        var clock = Stopwatch.StartNew();
        double? gaugeWhileLive = null;
        double? fpsWhileLive = null;
        for (var i = 0; i < chunks.Count; i++)
        {
            await cam.SendBinaryAsync(chunks[i]);
            var due = TimeSpan.FromSeconds(2.5) * ((i + 1.0) / chunks.Count) - clock.Elapsed;
            if (due > TimeSpan.Zero)
                await Task.Delay(due);
            if (gaugeWhileLive is null && clock.Elapsed > TimeSpan.FromSeconds(1.5))
            {
                var live = await gw.ScrapeAsync();
                gaugeWhileLive = live.Value("blankend_codec_sessions_active", "codec=h264");
                fpsWhileLive = live.Find("blankend_codec_decode_fps").Sum(s => s.Value);
                output.WriteLine(
                    string.Join("\n", live.Raw.Split('\n').Where(l => l.Contains("codec", StringComparison.Ordinal)))
                );
            }
        }
        // The session stays open until the stats loop has written two lines for it (one a second).
        var linesDeadline = DateTime.UtcNow + Wait;
        while (
            capture.Lines.Count(l => l.StartsWith("ffmpeg decoded fps", StringComparison.Ordinal)) < 2
            && DateTime.UtcNow < linesDeadline
        )
            await Task.Delay(100);
        await cam.CloseQuietlyAsync();
        await receive.WaitAsync(TimeSpan.FromSeconds(30));

        var m = await gw.ScrapeUntilAsync(s => s.Value("blankend_codec_sessions_active", "codec=h264") == 0, Wait);
        var decoded = m.Value("blankend_codec_frames_decoded_total", "codec=h264", "decoder=cpu");
        output.WriteLine(
            $"viewer got {received} frames; decoded {decoded}; gauge while live {gaugeWhileLive}, fps while live {fpsWhileLive}"
        );
        Assert.Equal(1, gaugeWhileLive);
        Assert.True(fpsWhileLive > 0, $"decode fps gauge while live: {fpsWhileLive}");
        Assert.Equal(0, m.Value("blankend_codec_sessions_active", "codec=h264"));
        Assert.True(received >= TestStreams.Frames - 5, $"viewer got {received} of {TestStreams.Frames}");
        Assert.Equal(received, decoded);
        Assert.Equal(received, m.Value("blankend_frames_in_total", "endpoint=video_codec"));
        Assert.Equal(1, m.Value("blankend_codec_sessions_ended_total", "reason=client_closed"));
        Assert.Null(m.Value("blankend_codec_frames_dropped_total"));
        Assert.Null(m.Value("blankend_codec_decoder_fallbacks_total"));

        var lines = capture.Lines.Where(l => l.StartsWith("ffmpeg decoded fps", StringComparison.Ordinal)).ToList();
        output.WriteLine(string.Join("\n", lines));
        Assert.True(lines.Count >= 2, "ffmpeg decoded fps lines: " + string.Join("\n", capture.Lines));
        Assert.All(lines, l => Assert.Contains(source, l));
        var perLine = lines.Select(l => long.Parse(FpsLine().Match(l).Groups[1].Value)).ToList();
        Assert.True(
            perLine.Sum() > 0 && perLine.Sum() <= received,
            $"frames in the lines: {string.Join(",", perLine)}"
        );
        // No session left: the loop ends, no more lines.
        await Task.Delay(2500);
        var count = capture.Lines.Count;
        await Task.Delay(1500);
        Assert.Equal(count, capture.Lines.Count);
    }

    [Fact]
    public async Task SiloThroughputLinesCountRoutedAndProcessedFramesAndStopWhenIdle()
    {
        var capture = new LogCapture(_ => true);
        using var log = new SiloThroughputLog(TimeSpan.FromMilliseconds(500), capture.For<SiloThroughputLog>());
        await log.StartAsync(CancellationToken.None);
        using var processingMeter = new Meter("Blankend.Processing");
        var processing = processingMeter.CreateCounter<long>("blankend.processing.frames");
        for (var i = 0; i < 20; i++)
        {
            BlankendMetrics.GrainFramesRouted.Add(1, BlankendMetrics.Kinds.Raw);
            if (i % 4 == 0)
                BlankendMetrics.GrainFramesRouted.Add(1, BlankendMetrics.Kinds.Processed);
            processing.Add(
                1,
                new KeyValuePair<string, object?>("outcome", i % 5 == 0 ? "bypassed" : "processed"),
                new KeyValuePair<string, object?>("device", "cpu0")
            );
            await Task.Delay(40);
        }
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        while (DateTime.UtcNow < deadline && Sum(capture, RoutedLine(), 1) < 25)
            await Task.Delay(100);
        output.WriteLine(string.Join("\n", capture.Lines));
        Assert.Equal(25, Sum(capture, RoutedLine(), 1));
        Assert.Equal(20, Sum(capture, RoutedLine(), 2));
        Assert.Equal(5, Sum(capture, RoutedLine(), 3));
        Assert.Equal(16, Sum(capture, WorkerLine(), 1));
        Assert.Equal(4, Sum(capture, WorkerLine(), 2));

        await Task.Delay(1500);
        var count = capture.Lines.Count;
        await Task.Delay(1500);
        Assert.Equal(count, capture.Lines.Count);
        await log.StopAsync(CancellationToken.None);
    }

    private static long Sum(LogCapture capture, Regex pattern, int group) =>
        capture.Lines.Select(l => pattern.Match(l)).Where(m => m.Success).Sum(m => long.Parse(m.Groups[group].Value));

    [GeneratedRegex(@"^ffmpeg decoded fps [\d.]+: \S+ (\d+) frames")]
    private static partial Regex FpsLine();

    [GeneratedRegex(@"^silo routed (\d+) frames \([\d.]+ fps; (\d+) raw, (\d+) processed\)")]
    private static partial Regex RoutedLine();

    [GeneratedRegex(@"^silo device workers processed (\d+) frames \([\d.]+ fps\), bypassed (\d+)")]
    private static partial Regex WorkerLine();
}
