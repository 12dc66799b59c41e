using System.Text.RegularExpressions;
using Blankend.Orleans.Tests.Gateway;
using Blankend.Orleans.Tests.Support;
using Microsoft.Extensions.Logging;
using Xunit;

namespace Blankend.Orleans.Tests.Telemetry;

/// <summary>The periodic throughput lines: written while there is traffic, at the configured interval, with the
/// true totals; none once the last connection is gone.</summary>
[Trait(TestKind.Name, TestKind.Integration)]
public sealed partial class ThroughputLogTests
{
    [Fact]
    public async Task ThroughputLinesCountEveryFrameAndStopWhenIdle()
    {
        var capture = new LogCapture(c => c.EndsWith(".ThroughputLog", StringComparison.Ordinal));
        await using var gw = await EmbeddedGateway.StartAsync(
            ["--telemetry:stats_log_interval_s=1", "--Logging:LogLevel:Blankend.Orleans.Gateway.Telemetry=Information"],
            configure: b => b.Logging.AddProvider(capture)
        );
        var source = "tput-" + Guid.NewGuid().ToString("N")[..8];
        using var viewer = await Ws.ConnectAsync(gw.Ws($"/video_out?source={source}"));
        using var cam = await Ws.ConnectAsync(gw.Ws($"/video_in?client_id={source}"));
        await VideoPathTests.WaitSubscribedAsync(gw.StreamStatusAsync, source);

        const int n = 12;
        var frame = TestJpeg.Tagged(1);
        for (var i = 0; i < n; i++)
        {
            await cam.SendBinaryAsync(frame);
            Assert.NotNull(await viewer.ReceiveMessageAsync(TimeSpan.FromSeconds(10)));
            await Task.Delay(150); // spread over about two intervals
        }
        await cam.CloseQuietlyAsync();
        await viewer.CloseQuietlyAsync();

        // Every frame shows up in exactly one line of each kind, whichever interval it fell in.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (DateTime.UtcNow < deadline && (Sum(capture, RecvLine()) < n || Sum(capture, SendLine()) < n))
            await Task.Delay(100);
        var lines = string.Join("\n", capture.Lines);
        Assert.True(Sum(capture, RecvLine()) == n, lines);
        Assert.True(Sum(capture, SendLine()) == n, lines);
        Assert.Contains($"stream recv", lines);
        Assert.Matches(@"relay send \d+ frames \d+ bytes dropped 0", lines);

        // Idle: the timer is gone, no more lines.
        await Task.Delay(2500);
        var count = capture.Lines.Count;
        await Task.Delay(2000);
        Assert.Equal(count, capture.Lines.Count);
    }

    private static long Sum(LogCapture capture, Regex pattern) =>
        capture.Lines.Select(l => pattern.Match(l)).Where(m => m.Success).Sum(m => long.Parse(m.Groups[1].Value));

    [GeneratedRegex(@"^stream recv (\d+) frames")]
    private static partial Regex RecvLine();

    [GeneratedRegex(@"^relay send (\d+) frames")]
    private static partial Regex SendLine();
}
