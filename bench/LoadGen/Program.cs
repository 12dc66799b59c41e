using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.WebSockets;
using System.Text.Json;

namespace Blankend.Bench.LoadGen;

public static class Program
{
    public static async Task<int> Main(string[] args)
    {
        Options o;
        try
        {
            o = Options.Parse(args);
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine($"error: {e.Message}\n");
            Console.Error.WriteLine(Options.Usage);
            return 1;
        }
        if (o.Help)
        {
            Console.WriteLine(Options.Usage);
            return 0;
        }
        if (o.ReportDoc is not null)
        {
            return BenchDoc.Write(o);
        }
        if (o.ReportCapacity is not null)
        {
            return BenchDoc.WriteCapacitySummary(o);
        }
        if (o.ReportMd is not null)
        {
            return Report.WriteMarkdown(o);
        }
        return await RunAsync(o);
    }

    private static async Task<int> RunAsync(Options o)
    {
        var jpegPath = o.Jpeg ?? Options.FindDefaultJpeg();
        if (jpegPath is null || !File.Exists(jpegPath))
        {
            Console.Error.WriteLine($"error: JPEG not found ({jpegPath ?? Options.DefaultJpeg}); use --jpeg PATH");
            return 1;
        }
        var baseJpeg = await File.ReadAllBytesAsync(jpegPath);
        if (
            baseJpeg.Length < 4
            || baseJpeg[0] != 0xFF
            || baseJpeg[1] != 0xD8
            || baseJpeg[^2] != 0xFF
            || baseJpeg[^1] != 0xD9
        )
        {
            Console.Error.WriteLine($"error: {jpegPath} is not a JPEG (SOI/EOI missing)");
            return 1;
        }
        Uri baseUri;
        try
        {
            baseUri = new Uri(o.Url, UriKind.Absolute);
        }
        catch (UriFormatException)
        {
            Console.Error.WriteLine($"error: bad --url {o.Url}");
            return 1;
        }
        if (!baseUri.IsLoopback && !(IPAddress.TryParse(baseUri.Host, out var ip) && IPAddress.IsLoopback(ip)))
        {
            Console.Error.WriteLine($"warning: {baseUri.Host} is not a loopback address");
        }

        // Connecting: 3 s, plus 1 s per 100 viewers (hundreds of handshakes on a 2-core machine shared with the
        // server take a while).
        var connectTime = TimeSpan.FromSeconds(3 + o.Cameras * o.Viewers / 100.0);
        // Hard bound: everything is cancelled at connect + warmup + duration + 5 s; the watchdog exits
        // the process a second later should anything still hang.
        var cap = connectTime + TimeSpan.FromSeconds(o.Warmup + o.Duration + 5);
        using var hard = new CancellationTokenSource(cap);
        using var watchdog = new Timer(
            _ =>
            {
                Console.Error.WriteLine("error: watchdog: run exceeded its time bound, exiting");
                Environment.Exit(3);
            },
            null,
            cap + TimeSpan.FromSeconds(1),
            Timeout.InfiniteTimeSpan
        );

        var freq = Stopwatch.Frequency;
        var window = new Window();
        var expected = o.Fps > 0 ? (int)(o.Fps * o.Duration * 1.1) + 64 : 1 << 16;
        var cameras = new List<Camera>();
        var viewers = new List<ViewerClient>();
        // Send times by seq, only needed to match frames that lost their stamp (--meta).
        var sendLog =
            !o.Meta ? 0
            : o.Fps > 0 ? (int)(o.Fps * (o.Warmup + o.Duration) * 1.2) + 64
            : 1 << 20;
        if (o.Meta && (o.Fps == 0 || o.Fps > 200))
        {
            Console.Error.WriteLine(
                "warning: frames less than ~5 ms apart: matching re-encoded frames by ts_ms is not exact at this rate"
            );
        }
        for (var i = 0; i < o.Cameras; i++)
        {
            var cam = new Camera(
                i,
                new Uri($"{o.Url}/{o.Endpoint}?client_id=cam{i}"),
                baseJpeg,
                o.Fps,
                (double)i / o.Cameras,
                window,
                sendLog
            );
            cameras.Add(cam);
            for (var v = 0; v < o.Viewers; v++)
            {
                var q =
                    $"{o.ViewerUrl ?? o.Url}/video_out?source={Uri.EscapeDataString(cam.Id)}"
                    + (o.Meta ? "&meta=1" : "");
                viewers.Add(new ViewerClient(cam, v, new Uri(q), o.Meta, window, expected));
            }
        }

        // Any failure during the run (server closed a socket, send/receive error) stops it early.
        using var abortRun = CancellationTokenSource.CreateLinkedTokenSource(hard.Token);
        void OnFailure()
        {
            try
            {
                abortRun.Cancel();
            }
            catch (ObjectDisposedException) { }
        }
        foreach (var c in cameras)
        {
            c.OnFailure = OnFailure;
        }
        foreach (var v in viewers)
        {
            v.OnFailure = OnFailure;
        }

        // 1. Viewers first, then a short settle, then cameras.
        var viewerTasks = new List<Task>();
        try
        {
            using (var connect = CancellationTokenSource.CreateLinkedTokenSource(hard.Token))
            {
                connect.CancelAfter(connectTime);
                await Task.WhenAll(viewers.Select(v => v.ConnectAsync(connect.Token)));
            }
            viewerTasks.AddRange(viewers.Select(v => Task.Run(() => v.RunAsync(hard.Token))));
            await Task.Delay(250, hard.Token);
            using (var connect = CancellationTokenSource.CreateLinkedTokenSource(hard.Token))
            {
                connect.CancelAfter(TimeSpan.FromSeconds(3));
                await Task.WhenAll(cameras.Select(c => c.ConnectAsync(connect.Token)));
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or HttpRequestException)
        {
            Console.Error.WriteLine($"error: connection to {o.Url} failed: {e.Message}");
            await Task.WhenAll(
                cameras.Select(c => c.CloseAsync()).Concat(viewers.Select(v => v.CloseAsync(Task.CompletedTask)))
            );
            return 2;
        }

        // 2. Cameras run for warmup + duration.
        window.Start = Stopwatch.GetTimestamp();
        window.MeasureFrom = window.Start + (long)(o.Warmup * freq);
        window.MeasureTo = window.MeasureFrom + (long)(o.Duration * freq);
        var cameraTasks = cameras.Select(c => Task.Run(() => c.RunAsync(abortRun.Token))).ToArray();
        var sampler = new Sampler(o.ServerPid, window, o.RssEvery);
        var samplerTask = sampler.RunAsync(abortRun.Token);
        var allCameras = Task.WhenAll(cameraTasks);
        await ProgressAsync(o, cameras, viewers, window, sampler, allCameras);
        await allCameras;

        // 3. Drain: wait (briefly) until every viewer saw its camera's last frame, then close.
        var drainUntil = Stopwatch.GetTimestamp() + freq * 3 / 2;
        while (
            Stopwatch.GetTimestamp() < drainUntil
            && !abortRun.IsCancellationRequested
            && viewers.Any(v => Volatile.Read(ref v.MaxSeq) < Volatile.Read(ref v.Camera.LastSeq) && v.Error is null)
        )
        {
            await Task.Delay(10);
        }
        await Task.WhenAll(
            viewers.Select((v, i) => v.CloseAsync(viewerTasks[i])).Concat(cameras.Select(c => c.CloseAsync()))
        );
        try
        {
            await samplerTask.WaitAsync(TimeSpan.FromSeconds(1));
        }
        catch (TimeoutException) { }

        // 4. Report.
        var result = Result.Compute(o, cameras, viewers, sampler, baseJpeg.Length + Stamp.Overhead);
        Console.WriteLine(result.SummaryLine());
        if (o.Json is not null)
        {
            var dir = Path.GetDirectoryName(Path.GetFullPath(o.Json));
            if (dir is not null)
            {
                Directory.CreateDirectory(dir);
            }
            await File.WriteAllTextAsync(o.Json, JsonSerializer.Serialize(result, Result.JsonOptions) + "\n");
        }
        var errors = cameras.Select(c => c.Error).Concat(viewers.Select(v => v.Error)).OfType<string>().ToList();
        foreach (var e in errors.Take(10))
        {
            Console.Error.WriteLine($"error: {e}");
        }
        return errors.Count > 0 ? 2 : 0;
    }

    private static async Task ProgressAsync(
        Options o,
        List<Camera> cameras,
        List<ViewerClient> viewers,
        Window window,
        Sampler sampler,
        Task done
    )
    {
        var freq = (double)Stopwatch.Frequency;
        long lastSent = 0,
            lastRecv = 0;
        var lastTs = window.Start;
        var next = window.Start;
        while (true)
        {
            next += Stopwatch.Frequency;
            var wait = TimeSpan.FromSeconds(Math.Max(0, (next - Stopwatch.GetTimestamp()) / freq));
            if (await Task.WhenAny(done, Task.Delay(wait)) == done)
            {
                return;
            }
            var now = Stopwatch.GetTimestamp();
            long sent = cameras.Sum(c => Interlocked.Read(ref c.SentTotal));
            long recv = viewers.Sum(v => Interlocked.Read(ref v.ReceivedTotal));
            var dt = (now - lastTs) / freq;
            var phase = now < window.MeasureFrom ? "warmup " : "measure";
            var rss = sampler.SampleRss();
            Console.Error.WriteLine(
                string.Create(
                    CultureInfo.InvariantCulture,
                    $"[{o.Label} {(now - window.Start) / freq, 5:F1}s] {phase} sent={sent} ({(sent - lastSent) / dt:F1}/s) recv={recv} ({(recv - lastRecv) / dt:F1}/s){(rss is null ? "" : $" server_rss={rss:F0}MB")}"
                )
            );
            lastSent = sent;
            lastRecv = recv;
            lastTs = now;
        }
    }
}
