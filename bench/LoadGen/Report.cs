using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Blankend.Bench.LoadGen;

public readonly record struct ProcStat(long CpuTicks, long RssKb, long Timestamp);

/// <summary>Samples /proc/PID (server) and /proc/self over the measured window.</summary>
/// <param name="rssEvery">Seconds between the server RSS samples kept as a series (0: none).</param>
public sealed class Sampler(int? pid, Window window, double rssEvery = 0)
{
    private const double ClockTicksPerSecond = 100; // USER_HZ, 100 on every Linux ABI .NET runs on
    private readonly Lock _lock = new();
    public ProcStat? ServerStart,
        ServerEnd,
        SelfStart,
        SelfEnd;
    public double? ServerRssMaxMb;

    /// <summary>[seconds into the measured window, server RSS MB] every rssEvery seconds, and at the end.</summary>
    private readonly List<double[]> _rssSeries = [];

    public double[][] RssSnapshot()
    {
        lock (_lock)
        {
            return [.. _rssSeries];
        }
    }

    public async Task RunAsync(CancellationToken ct)
    {
        try
        {
            await DelayUntil(window.MeasureFrom, ct);
            ServerStart = Read(pid);
            SelfStart = Read(Environment.ProcessId);
            if (rssEvery > 0 && pid is not null)
            {
                var step = (long)(rssEvery * Stopwatch.Frequency);
                for (var next = window.MeasureFrom; next < window.MeasureTo; next += step)
                {
                    await DelayUntil(next, ct);
                    AddRssPoint();
                }
            }
            await DelayUntil(window.MeasureTo, ct);
            ServerEnd = Read(pid);
            SelfEnd = Read(Environment.ProcessId);
            SampleRss();
            if (rssEvery > 0 && ServerEnd is { } end)
            {
                lock (_lock)
                {
                    _rssSeries.Add([
                        Math.Round((double)(end.Timestamp - window.MeasureFrom) / Stopwatch.Frequency, 1),
                        Math.Round(end.RssKb / 1024.0, 1),
                    ]);
                }
            }
        }
        catch (OperationCanceledException) { }
    }

    private void AddRssPoint()
    {
        var s = Read(pid);
        if (s is null)
        {
            return;
        }
        lock (_lock)
        {
            _rssSeries.Add([
                Math.Round((double)(s.Value.Timestamp - window.MeasureFrom) / Stopwatch.Frequency, 1),
                Math.Round(s.Value.RssKb / 1024.0, 1),
            ]);
            ServerRssMaxMb = Math.Max(ServerRssMaxMb ?? 0, s.Value.RssKb / 1024.0);
        }
    }

    private static async Task DelayUntil(long ts, CancellationToken ct)
    {
        var left = ts - Stopwatch.GetTimestamp();
        if (left > 0)
        {
            await Task.Delay(TimeSpan.FromSeconds((double)left / Stopwatch.Frequency), ct);
        }
    }

    /// <summary>Current server RSS in MB (also tracks the maximum seen), null without --server-pid.</summary>
    public double? SampleRss()
    {
        var s = Read(pid);
        if (s is null)
        {
            return null;
        }
        var mb = s.Value.RssKb / 1024.0;
        lock (_lock)
        {
            ServerRssMaxMb = Math.Max(ServerRssMaxMb ?? 0, mb);
        }
        return mb;
    }

    public static double? CpuPercent(ProcStat? a, ProcStat? b)
    {
        if (a is null || b is null || b.Value.Timestamp <= a.Value.Timestamp)
        {
            return null;
        }
        var cpu = (b.Value.CpuTicks - a.Value.CpuTicks) / ClockTicksPerSecond;
        var wall = (double)(b.Value.Timestamp - a.Value.Timestamp) / Stopwatch.Frequency;
        return 100.0 * cpu / wall;
    }

    private static ProcStat? Read(int? pid)
    {
        if (pid is null)
        {
            return null;
        }
        try
        {
            var ts = Stopwatch.GetTimestamp();
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            // Fields after "(comm)": state(3) ... utime(14) stime(15).
            var f = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            var ticks =
                long.Parse(f[11], CultureInfo.InvariantCulture) + long.Parse(f[12], CultureInfo.InvariantCulture);
            long rssKb = 0;
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                {
                    rssKb = long.Parse(line["VmRSS:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
                    break;
                }
            }
            return new ProcStat(ticks, rssKb, ts);
        }
        catch (Exception e)
            when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return null;
        }
    }
}

public sealed class Result
{
    public static readonly JsonSerializerOptions JsonOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };

    public string Label { get; set; } = "";
    public string Scenario { get; set; } = "";
    public string Url { get; set; } = "";
    public string Endpoint { get; set; } = "";
    public int Cameras { get; set; }
    public int ViewersPerCamera { get; set; }
    public double TargetFps { get; set; }
    public double DurationS { get; set; }
    public double WarmupS { get; set; }
    public bool Meta { get; set; }
    public int FrameBytes { get; set; }
    public long Sent { get; set; }
    public double SendFpsMean { get; set; }
    public double SendFpsMin { get; set; }
    public long LateSlots { get; set; }
    public long Delivered { get; set; }
    public double DelivFpsMin { get; set; }
    public double DelivFpsMean { get; set; }
    public double[] DelivFpsPerViewer { get; set; } = [];
    public double? Ratio { get; set; }
    public long Duplicates { get; set; }
    public long Reordered { get; set; }
    public long Corrupt { get; set; }
    public long WrongSource { get; set; }
    public long MatchedByMeta { get; set; }
    public long Unmatched { get; set; }
    public long MetaOk { get; set; }
    public long MetaErrors { get; set; }
    public long LatencySamples { get; set; }
    public double? P50Ms { get; set; }
    public double? P90Ms { get; set; }
    public double? P99Ms { get; set; }
    public double? MaxMs { get; set; }
    public double? MeanMs { get; set; }
    public double? ServerCpuPct { get; set; }
    public double? ServerRssMb { get; set; }
    public double? ServerRssMaxMb { get; set; }
    public double? LoadgenCpuPct { get; set; }
    public string TimeUtc { get; set; } = "";
    public string? Commit { get; set; }
    public int Cores { get; set; }

    /// <summary>Latency quantiles (ms) at evenly spaced ranks 0..1 over every sample: a CDF for plots.</summary>
    public double[] LatencyCdfMs { get; set; } = [];

    /// <summary>[seconds into the measured window, server RSS MB] (--rss-every).</summary>
    public double[][] RssSeries { get; set; } = [];

    public static Result Compute(
        Options o,
        List<Camera> cameras,
        List<ViewerClient> viewers,
        Sampler sampler,
        int frameBytes
    )
    {
        var d = o.Duration;
        var r = new Result
        {
            Label = o.Label,
            Scenario = o.ScenarioName,
            Url = o.Url,
            Endpoint = o.Endpoint,
            Cameras = o.Cameras,
            ViewersPerCamera = o.Viewers,
            TargetFps = o.Fps,
            DurationS = d,
            WarmupS = o.Warmup,
            Meta = o.Meta,
            FrameBytes = frameBytes,
            Sent = cameras.Sum(c => c.SentInWindow),
            SendFpsMean = Round(cameras.Average(c => c.SentInWindow / d), 2),
            SendFpsMin = Round(cameras.Min(c => c.SentInWindow / d), 2),
            LateSlots = cameras.Sum(c => c.LateSlots),
            Delivered = viewers.Sum(v => v.Delivered),
            DelivFpsMin = viewers.Count > 0 ? Round(viewers.Min(v => v.Delivered / d), 2) : 0,
            DelivFpsMean = viewers.Count > 0 ? Round(viewers.Average(v => v.Delivered / d), 2) : 0,
            DelivFpsPerViewer = [.. viewers.Select(v => Round(v.Delivered / d, 2))],
            Duplicates = viewers.Sum(v => v.Duplicates),
            Reordered = viewers.Sum(v => v.Reordered),
            Corrupt = viewers.Sum(v => v.Corrupt),
            WrongSource = viewers.Sum(v => v.WrongSource),
            MatchedByMeta = viewers.Sum(v => v.MatchedByMeta),
            Unmatched = viewers.Sum(v => v.Unmatched),
            MetaOk = viewers.Sum(v => v.MetaOk),
            MetaErrors = viewers.Sum(v => v.MetaErrors),
            ServerCpuPct = Round(Sampler.CpuPercent(sampler.ServerStart, sampler.ServerEnd), 1),
            ServerRssMb = sampler.ServerEnd is { } e ? Round(e.RssKb / 1024.0, 1) : null,
            ServerRssMaxMb = Round(sampler.ServerRssMaxMb, 1),
            LoadgenCpuPct = Round(Sampler.CpuPercent(sampler.SelfStart, sampler.SelfEnd), 1),
            TimeUtc = DateTime.UtcNow.ToString("O", CultureInfo.InvariantCulture),
            Commit = o.Commit,
            Cores = Environment.ProcessorCount,
        };
        r.RssSeries = sampler.RssSnapshot();
        var expected = cameras.Sum(c => c.SentInWindow * (long)o.Viewers);
        r.Ratio = expected > 0 ? Round((double)r.Delivered / expected, 4) : null;

        // Exact percentiles (nearest rank) over every sample.
        var all = new long[viewers.Sum(v => v.Latencies.Count)];
        var n = 0;
        foreach (var v in viewers)
        {
            v.Latencies.CopyTo(all, n);
            n += v.Latencies.Count;
        }
        Array.Sort(all);
        r.LatencySamples = all.Length;
        if (all.Length > 0)
        {
            var ms = 1000.0 / Stopwatch.Frequency;
            double P(double p) =>
                Math.Round(all[Math.Clamp((int)Math.Ceiling(p * all.Length) - 1, 0, all.Length - 1)] * ms, 3);
            r.P50Ms = P(0.50);
            r.P90Ms = P(0.90);
            r.P99Ms = P(0.99);
            r.MaxMs = Math.Round(all[^1] * ms, 3);
            double sum = 0;
            foreach (var x in all)
            {
                sum += x;
            }
            r.MeanMs = Math.Round(sum / all.Length * ms, 3);
            if (o.CdfPoints >= 2)
            {
                r.LatencyCdfMs = new double[o.CdfPoints];
                for (var i = 0; i < o.CdfPoints; i++)
                {
                    var rank = (long)Math.Round((double)i / (o.CdfPoints - 1) * (all.Length - 1));
                    r.LatencyCdfMs[i] = Math.Round(all[rank] * ms, 3);
                }
            }
        }
        return r;
    }

    private static double Round(double v, int digits) => Math.Round(v, digits);

    private static double? Round(double? v, int digits) => v is null ? null : Math.Round(v.Value, digits);

    public string SummaryLine()
    {
        static string F(double? v, string fmt, string unit = "") =>
            v is null ? "n/a" : v.Value.ToString(fmt, CultureInfo.InvariantCulture) + unit;
        var fps = TargetFps > 0 ? TargetFps.ToString(CultureInfo.InvariantCulture) : "max";
        return string.Create(
                CultureInfo.InvariantCulture,
                $"label={Label} cams={Cameras} viewers={ViewersPerCamera} fps={fps} send_fps={SendFpsMean:F1} "
                    + $"deliv_fps_min={DelivFpsMin:F1} deliv_fps_mean={DelivFpsMean:F1} ratio={F(Ratio, "F3")} dup={Duplicates} "
                    + $"p50={F(P50Ms, "F2", "ms")} p90={F(P90Ms, "F2", "ms")} p99={F(P99Ms, "F2", "ms")} max={F(MaxMs, "F2", "ms")} "
                    + $"cpu={F(ServerCpuPct, "F0", "%")} rss={F(ServerRssMb, "F0", "MB")} lg_cpu={F(LoadgenCpuPct, "F0", "%")} "
                    + $"bytes={FrameBytes}"
            )
            + (
                Reordered + Corrupt + WrongSource + Unmatched > 0
                    ? string.Create(
                        CultureInfo.InvariantCulture,
                        $" reordered={Reordered} corrupt={Corrupt} wrong_source={WrongSource} unmatched={Unmatched}"
                    )
                    : ""
            )
            + (
                MatchedByMeta > 0
                    ? string.Create(CultureInfo.InvariantCulture, $" matched_by_meta={MatchedByMeta}")
                    : ""
            )
            + (Meta ? string.Create(CultureInfo.InvariantCulture, $" meta_ok={MetaOk} meta_err={MetaErrors}") : "");
    }
}

public static class Report
{
    public static int WriteMarkdown(Options o)
    {
        var results = new List<Result>();
        foreach (var path in o.ReportInputs)
        {
            try
            {
                results.Add(
                    JsonSerializer.Deserialize<Result>(File.ReadAllText(path), Result.JsonOptions)
                        ?? throw new JsonException("empty")
                );
            }
            catch (Exception e) when (e is IOException or JsonException)
            {
                Console.Error.WriteLine($"warning: skipping {path}: {e.Message}");
            }
        }
        if (results.Count == 0)
        {
            Console.Error.WriteLine("error: no result files");
            return 1;
        }

        static string F(double? v, string fmt) =>
            v is null ? "n/a" : v.Value.ToString(fmt, CultureInfo.InvariantCulture);
        static string S(double? v, string fmt) =>
            v is null ? "n/a" : (v.Value >= 0 ? "+" : "") + v.Value.ToString(fmt, CultureInfo.InvariantCulture);

        var sb = new StringBuilder();
        var cores = Environment.ProcessorCount;
        sb.AppendLine(
            CultureInfo.InvariantCulture,
            $"Latency benchmark, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {cores} cores, frame {results[0].FrameBytes} B; latency = camera send -> viewer receive (same clock)."
        );
        sb.AppendLine();
        sb.AppendLine(
            "| system | scenario | send fps | delivered fps (mean) | delivery ratio | p50 ms | p90 ms | p99 ms | max ms | server CPU % | RSS MB |"
        );
        sb.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var r in results)
        {
            sb.AppendLine(
                CultureInfo.InvariantCulture,
                $"| {r.Label} | {r.Scenario} | {r.SendFpsMean:F1} | {r.DelivFpsMean:F1} | {F(r.Ratio, "F3")} | {F(r.P50Ms, "F2")} | {F(r.P90Ms, "F2")} | {F(r.P99Ms, "F2")} | {F(r.MaxMs, "F2")} | {F(r.ServerCpuPct, "F0")} | {F(r.ServerRssMb, "F0")} |"
            );
        }

        var comparisons = new List<string>();
        foreach (var group in results.GroupBy(r => r.Scenario))
        {
            var bare = group.FirstOrDefault(r => r.Label == o.Baseline);
            if (bare is null)
            {
                continue;
            }
            foreach (var r in group.Where(r => r.Label != o.Baseline))
            {
                double? fpsRatio = bare.DelivFpsMean > 0 ? r.DelivFpsMean / bare.DelivFpsMean : null;
                double? cpuRatio =
                    bare.ServerCpuPct is > 0 && r.ServerCpuPct is not null ? r.ServerCpuPct / bare.ServerCpuPct : null;
                comparisons.Add(
                    string.Create(
                        CultureInfo.InvariantCulture,
                        $"| {r.Label} vs {bare.Label} | {group.Key} | {F(fpsRatio, "F3")} | {S(r.P50Ms - bare.P50Ms, "F2")} | {S(r.P99Ms - bare.P99Ms, "F2")} | {F(cpuRatio, "F2")} |"
                    )
                );
            }
        }
        if (comparisons.Count > 0)
        {
            sb.AppendLine();
            sb.AppendLine(
                "| comparison | scenario | delivered fps ratio | added p50 ms | added p99 ms | server CPU ratio |"
            );
            sb.AppendLine("|---|---|---:|---:|---:|---:|");
            foreach (var c in comparisons)
            {
                sb.AppendLine(c);
            }
        }

        var text = sb.ToString();
        Console.Write(text);
        if (o.ReportMd is { Length: > 0 } outPath && outPath != "-")
        {
            var dir = Path.GetDirectoryName(Path.GetFullPath(outPath));
            if (dir is not null)
            {
                Directory.CreateDirectory(dir);
            }
            File.WriteAllText(outPath, text);
        }
        return 0;
    }
}
