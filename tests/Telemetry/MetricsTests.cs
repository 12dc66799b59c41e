using System.Net.WebSockets;
using Blankend.Orleans.Tests.Gateway;
using Blankend.Orleans.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Blankend.Orleans.Tests.Telemetry;

/// <summary>
/// <c>/metrics</c> against a fresh embedded gateway: the counters equal the frames actually sent, exactly. The
/// project's instruments are process-wide (a static meter), so these run in the serial collection, where no other
/// gateway of the test process carries frames at the same time.
/// </summary>
[Trait(TestKind.Name, TestKind.Integration)]
[Collection(SerialCollection.Name)]
public sealed class MetricsTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(15);

    private static string NewSource() => "cam-" + Guid.NewGuid().ToString("N")[..8];

    [Fact]
    public async Task FrameCountersShowExactlyTheFramesSent()
    {
        // Queues large enough that nothing is dropped: every frame must be counted once on each counter.
        await using var gw = await EmbeddedGateway.StartAsync([
            "--gateway:viewer_queue_size=512",
            "--gateway:ingest_queue_size=512",
        ]);
        var source = NewSource();
        using var viewer = await Ws.ConnectAsync(gw.Ws($"/video_out?source={source}"));
        using var cam = await Ws.ConnectAsync(gw.Ws($"/video_in?client_id={source}"));
        await VideoPathTests.WaitSubscribedAsync(gw.StreamStatusAsync, source);

        const int n = 120;
        var frames = Enumerable.Range(0, n).Select(i => TestJpeg.Tagged(i, 20_000 + i * 97)).ToArray();
        var bytes = frames.Sum(f => (long)f.Length);
        var receive = Task.Run(async () =>
        {
            var got = 0;
            while (got < n && await viewer.ReceiveMessageAsync(Wait) is { } m)
            {
                if (m.Type == WebSocketMessageType.Binary)
                    got++;
            }
            return got;
        });
        foreach (var f in frames)
            await cam.SendBinaryAsync(f);
        // Refused input is counted too, and apart from the frames.
        await cam.SendBinaryAsync([1, 2, 3, 4]);
        var error = await cam.ReceiveMessageAsync(Wait);
        Assert.Contains("invalid_jpeg", error!.Text);
        Assert.Equal(n, await receive.WaitAsync(Wait));

        // ingest_to_grain is recorded when Publish returns, which may be just after the viewer saw the frame.
        var m = await gw.ScrapeUntilAsync(
            s => s.Value("blankend_stage_duration_seconds_count", "stage=ingest_to_grain") >= n,
            Wait
        );
        Assert.Equal(n, m.Value("blankend_frames_in_total", "endpoint=video_in"));
        Assert.Equal(bytes, m.Value("blankend_payload_in_bytes_total", "endpoint=video_in"));
        Assert.Equal(n, m.Value("blankend_frames_out_total", "endpoint=video_out"));
        Assert.Equal(bytes, m.Value("blankend_payload_out_bytes_total", "endpoint=video_out"));
        Assert.Equal(n, m.Value("blankend_grain_frames_routed_total", "kind=raw"));
        Assert.Equal(n, m.Value("blankend_grain_observer_calls_total"));
        Assert.Equal(n, m.Value("blankend_gateway_fanout_frames_total"));
        Assert.Equal(n, m.Value("blankend_stage_duration_seconds_count", "stage=ingest_to_grain"));
        Assert.Equal(n, m.Value("blankend_stage_duration_seconds_count", "stage=entry_to_viewer"));
        Assert.Equal(n, m.Value("blankend_stage_duration_seconds_count", "stage=viewer_send"));
        Assert.Equal(n, m.Value("blankend_stage_duration_seconds_bucket", "stage=viewer_send", "le=+Inf"));
        Assert.Equal(1, m.Value("blankend_frames_dropped_total", "reason=invalid_input"));
        Assert.Null(m.Value("blankend_frames_dropped_total", "reason=viewer_queue"));
        Assert.Null(m.Value("blankend_frames_dropped_total", "reason=ingest_queue"));
        Assert.Equal(1, m.Value("blankend_sessions_active", "endpoint=video_in"));
        Assert.Equal(1, m.Value("blankend_viewers_active"));
        Assert.Equal(1, m.Value("blankend_sources_active"));
        // The Orleans meter and the runtime meter are exported too.
        Assert.Contains(m.Samples, s => s.Name.StartsWith("orleans_", StringComparison.Ordinal));
        Assert.Contains(m.Samples, s => s.Name.StartsWith("dotnet_", StringComparison.Ordinal));

        // The status API reads the same events.
        var status = await gw.StreamStatusAsync();
        Assert.Equal(n, status.GetProperty("frames_in").GetInt64());
        Assert.Equal(bytes, status.GetProperty("bytes_in").GetInt64());
        Assert.Equal(bytes, status.GetProperty("bytes_sent").GetInt64());

        await cam.CloseQuietlyAsync();
        await viewer.CloseQuietlyAsync();
        var after = await gw.ScrapeUntilAsync(
            s =>
                s.Value("blankend_sessions_active", "endpoint=video_in") == 0
                && s.Value("blankend_viewers_active") == 0,
            Wait
        );
        Assert.Equal(0, after.Value("blankend_viewers_active"));
    }

    [Fact]
    public async Task DropCountersShowTheTrueDropsOfASaturatedViewer()
    {
        await using var gw = await EmbeddedGateway.StartAsync(["--gateway:viewer_queue_size=4"]);
        var source = NewSource();
        using var stalled = await Ws.ConnectAsync(gw.Ws($"/video_out?source={source}")); // never read from
        using var reader = await Ws.ConnectAsync(gw.Ws($"/video_out?source={source}"));
        using var cam = await Ws.ConnectAsync(gw.Ws($"/video_in?client_id={source}"));
        await VideoPathTests.WaitSubscribedAsync(gw.StreamStatusAsync, source);

        const int n = 200;
        var frames = Enumerable.Range(0, n).Select(i => TestJpeg.Tagged(i, 150_000)).ToArray();
        using var readerStop = new CancellationTokenSource();
        var read = Task.Run(async () =>
        {
            var buffer = new byte[256 * 1024];
            try
            {
                while (true)
                {
                    var r = await reader.ReceiveAsync(buffer.AsMemory(), readerStop.Token);
                    if (r.MessageType == WebSocketMessageType.Close)
                        return;
                }
            }
            catch (OperationCanceledException) { }
        });
        foreach (var f in frames)
            await cam.SendBinaryAsync(f);

        // Wait until every frame reached the fan-out and every queue settled (nothing moves between two looks).
        PrometheusText m;
        System.Text.Json.JsonElement status;
        var deadline = DateTime.UtcNow + Wait;
        string? previous = null;
        while (true)
        {
            status = await gw.StreamStatusAsync();
            m = await gw.ScrapeAsync();
            var key =
                $"{status.GetProperty("frames_from_cluster")}/{status.GetProperty("frames_sent")}/{status.GetProperty("viewer_drops")}/{status.GetProperty("ingest_drops")}";
            var settled =
                status.GetProperty("frames_from_cluster").GetInt64() + status.GetProperty("ingest_drops").GetInt64()
                    == n
                && key == previous;
            if (settled || DateTime.UtcNow > deadline)
                break;
            previous = key;
            await Task.Delay(300);
        }

        var viewers = status
            .GetProperty("viewers")
            .EnumerateArray()
            .Where(v => v.GetProperty("source").GetString() == source)
            .ToArray();
        Assert.Equal(2, viewers.Length);
        var dropsPerViewer = viewers.Sum(v => v.GetProperty("dropped").GetInt64());
        var sentPerViewer = viewers.Sum(v => v.GetProperty("sent").GetInt64());
        var queued = viewers.Sum(v => v.GetProperty("queued").GetInt64());
        Assert.True(dropsPerViewer > 0, $"a viewer that never reads must have dropped frames; status: {status}");

        // Exact: /metrics says what the viewers counted one by one.
        Assert.Equal(dropsPerViewer, m.Value("blankend_frames_dropped_total", "reason=viewer_queue"));
        Assert.Equal(
            status.GetProperty("viewer_drops").GetInt64(),
            m.Value("blankend_frames_dropped_total", "reason=viewer_queue")
        );
        Assert.Equal(sentPerViewer, m.Value("blankend_frames_out_total", "endpoint=video_out"));
        Assert.Equal(
            status.GetProperty("ingest_drops").GetInt64(),
            m.Value("blankend_frames_dropped_total", "reason=ingest_queue") ?? 0
        );
        Assert.Equal(n, m.Value("blankend_frames_in_total", "endpoint=video_in"));
        var fanout = m.Value("blankend_gateway_fanout_frames_total");
        Assert.Equal(status.GetProperty("frames_from_cluster").GetInt64(), fanout);
        // And they are the true drops: every frame that reached the fan-out was, for each of the two viewers,
        // sent, dropped, queued, or (at most one per viewer) in the middle of a send the stalled socket holds up.
        var accounted = sentPerViewer + dropsPerViewer + queued;
        output.WriteLine(
            $"frames {n}, fan-out {fanout}, ingest drops {status.GetProperty("ingest_drops")}, viewers sent {sentPerViewer}, "
                + $"viewer drops {dropsPerViewer} (metrics {m.Value("blankend_frames_dropped_total", "reason=viewer_queue")}), queued {queued}"
        );
        Assert.InRange(accounted, 2 * (long)fanout! - 2, 2 * (long)fanout);

        await readerStop.CancelAsync();
        await cam.CloseQuietlyAsync();
        stalled.Abort();
        reader.Abort();
        await read;
    }
}
