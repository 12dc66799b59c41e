using System.Globalization;
using System.Text;

namespace Blankend.Bench.LoadGen;

/// <summary>
/// The capacity part of docs/benchmarks.md (<c>bench/run.sh --capacity</c>, and the default run after the suite):
/// one 720p camera at 30 fps and V viewers for every system, the most viewers each keeps with delivery &gt;= 0.99
/// and p99 &lt;= 50 ms, the max-rate scenario, latency added over the bare relay and CPU per viewer.
/// </summary>
public static partial class BenchDoc
{
    private const double CapacityDelivery = 0.99;
    private const double CapacityP99Ms = 50;
    private const int GoalCapacity = 512;
    private const double GoalMaxRateRatio = 1.0;
    private const double GoalFanoutAddedP50Ms = 1;
    private const double GoalFanoutAddedP99Ms = 5;
    private static readonly int[] LatencyGoalViewers = [4, 100, 512];
    private const string Node = "node";
    private const string CapacitySvg = "benchmarks-capacity.svg";
    private const string CapacityCdfSvg = "benchmarks-capacity-cdf.svg";

    private sealed record SystemCapacity(
        string Label,
        int Capacity,
        List<Result> Points,
        Result? MaxRate,
        double? CpuPerViewer,
        double? CpuIntercept,
        int CpuPoints
    );

    private static bool Passes(Result r) => (r.Ratio ?? 0) >= CapacityDelivery && r.P99Ms is <= CapacityP99Ms;

    private static List<SystemCapacity> Capacities(Part part, string baseline)
    {
        var list = new List<SystemCapacity>();
        foreach (
            var g in part
                .Results.GroupBy(r => r.Label)
                .OrderBy(g => LabelRank(g.Key, baseline))
                .ThenBy(g => g.Key, StringComparer.Ordinal)
        )
        {
            var points = g.Where(r => r.Cameras == 1 && r.TargetFps == 30).OrderBy(r => r.ViewersPerCamera).ToList();
            var capacity = 0;
            foreach (var p in points)
            {
                if (!Passes(p))
                {
                    break;
                }
                capacity = p.ViewersPerCamera;
            }
            // Marginal CPU per viewer: least squares over the points within capacity (past it the machine, not the
            // server, sets the CPU figure).
            var fit = points.Where(p => p.ViewersPerCamera <= capacity && p.ServerCpuPct is not null).ToList();
            double? slope = null,
                intercept = null;
            if (fit.Count >= 2)
            {
                double n = fit.Count,
                    sx = fit.Sum(p => (double)p.ViewersPerCamera),
                    sy = fit.Sum(p => p.ServerCpuPct!.Value);
                double sxx = fit.Sum(p => (double)p.ViewersPerCamera * p.ViewersPerCamera),
                    sxy = fit.Sum(p => p.ViewersPerCamera * p.ServerCpuPct!.Value);
                var den = n * sxx - sx * sx;
                if (den != 0)
                {
                    slope = (n * sxy - sx * sy) / den;
                    intercept = (sy - slope * sx) / n;
                }
            }
            list.Add(
                new SystemCapacity(
                    g.Key,
                    capacity,
                    points,
                    g.FirstOrDefault(r => r.TargetFps == 0),
                    slope,
                    intercept,
                    fit.Count
                )
            );
        }
        return list;
    }

    private static Result? At(SystemCapacity s, int viewers) =>
        s.Points.FirstOrDefault(p => p.ViewersPerCamera == viewers);

    /// <summary>The systems side by side: capacity, max-rate ratio, added latency, CPU per viewer.</summary>
    private static string CapacitySummaryTable(List<SystemCapacity> systems, string baseline)
    {
        var bare = systems.FirstOrDefault(s => s.Label == baseline);
        var sb = new StringBuilder();
        sb.Append("| system | capacity (viewers) | 1x4@max delivered fps | vs bare |");
        foreach (var v in LatencyGoalViewers)
        {
            sb.Append(CultureInfo.InvariantCulture, $" added p50 / p99 ms at {v} |");
        }
        sb.AppendLine(" CPU per viewer (% of a core) |");
        sb.Append("|---|---:|---:|---:|");
        foreach (var _ in LatencyGoalViewers)
        {
            sb.Append("---:|");
        }
        sb.AppendLine("---:|");
        foreach (var s in systems)
        {
            double? ratio =
                bare?.MaxRate is { DelivFpsMean: > 0 } b && s.MaxRate is not null
                    ? s.MaxRate.DelivFpsMean / b.DelivFpsMean
                    : null;
            sb.Append(Inv($"| {s.Label} | {s.Capacity} | {F(s.MaxRate?.DelivFpsMean, "F0")} | {F(ratio, "F2")}x |"));
            foreach (var v in LatencyGoalViewers)
            {
                var r = At(s, v);
                var b0 = bare is null ? null : At(bare, v);
                if (s == bare)
                {
                    sb.Append(Inv($" ({F(r?.P50Ms, "F2")} / {F(r?.P99Ms, "F2")}) |"));
                }
                else
                {
                    sb.Append(Inv($" {S(r?.P50Ms - b0?.P50Ms, "F2")} / {S(r?.P99Ms - b0?.P99Ms, "F2")} |"));
                }
            }
            sb.AppendLine(Inv($" {F(s.CpuPerViewer, "F3")} ({s.CpuPoints} points) |"));
        }
        return sb.ToString();
    }

    private static string CapacitySection(Part cap, string baseline, string outDir)
    {
        var systems = Capacities(cap, baseline);
        var sb = new StringBuilder();
        sb.AppendLine("## Fan-out capacity: gateway vs bare relay vs Node.js ws");
        sb.AppendLine();
        if (Get(cap, "mode", "full") == "quick")
        {
            sb.AppendLine("> **Smoke run (`--quick`)**: seconds per point, to check the tooling; not measurements.");
            sb.AppendLine();
        }
        sb.AppendLine(
            CultureInfo.InvariantCulture,
            $"`bench/run.sh --capacity` (also part of the default run), {Get(cap, "date_utc")} UTC, commit `{Get(cap, "commit")}`, {Get(cap, "nproc")} cores ({Get(cap, "cpu_model")}), load average {Get(cap, "loadavg_start")} at the start, {Get(cap, "loadavg_end")} at the end; {Get(cap, "capacity_s")} s."
        );
        sb.AppendLine(
            CultureInfo.InvariantCulture,
            $"Frame: {Get(cap, "jpeg")}. Node relay: {Get(cap, "node", "n/a")}."
        );
        var load = Get(cap, "loadavg_start");
        if (
            double.TryParse(load.Split(' ')[0], NumberStyles.Float, CultureInfo.InvariantCulture, out var l1)
            && int.TryParse(Get(cap, "nproc"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var cores)
            && l1 > 0.5 * cores
        )
        {
            sb.AppendLine();
            sb.AppendLine(
                CultureInfo.InvariantCulture,
                $"> The machine was busy when the sweep started (load {l1:F2} on {cores} cores: other builds share it): capacities are lower and tails longer than on a quiet machine; the ratios between systems, measured in turn at each V, are what to read."
            );
        }
        if (Get(cap, "incomplete", "").Length > 0)
        {
            sb.AppendLine();
            sb.AppendLine(
                CultureInfo.InvariantCulture,
                $"Runs the load generator could not complete (over capacity: counted as failing): {Get(cap, "incomplete")}."
            );
        }
        sb.AppendLine();
        sb.AppendLine(
            "One camera sends a 720p JPEG at 30 fps to V viewers of it (`1xV@30`); the load generator runs on the same"
        );
        sb.AppendLine(
            "cores. **Capacity** = the most viewers with delivery >= 0.99 and p99 <= 50 ms, every smaller V passing too."
        );
        sb.AppendLine(
            "`1x4@max`: the camera sends back to back (one frame in flight) to 4 viewers. Added latency = the system's"
        );
        sb.AppendLine(
            "p50 / p99 minus the bare relay's at the same V (the bare relay's own figures in brackets). CPU per viewer ="
        );
        sb.AppendLine("slope of server CPU over V through the points within the system's capacity.");
        sb.AppendLine();
        sb.Append(CapacitySummaryTable(systems, baseline));
        sb.AppendLine();

        // Goals of the fan-out issue.
        var orl = systems.FirstOrDefault(s => s.Label == Orleans);
        var bare = systems.FirstOrDefault(s => s.Label == baseline);
        var node = systems.FirstOrDefault(s => s.Label == Node);
        sb.AppendLine("### Goals (fan-out)");
        sb.AppendLine();
        sb.AppendLine("| goal | target | measured | result |");
        sb.AppendLine("|---|---|---|---|");
        sb.AppendLine(
            Inv(
                $"| capacity (orleans) | >= {GoalCapacity} viewers | {F(orl?.Capacity, "F0")} | {Verdict(orl?.Capacity, v => v >= GoalCapacity)} |"
            )
        );
        sb.AppendLine(
            Inv(
                $"| capacity, orleans vs Node ws (same run) | >= | {F(orl?.Capacity, "F0")} vs {F(node?.Capacity, "F0")} | {(orl is null || node is null ? "n/a" : Verdict(orl.Capacity - node.Capacity, v => v >= 0))} |"
            )
        );
        double? maxRatio =
            bare?.MaxRate is { DelivFpsMean: > 0 } bm && orl?.MaxRate is not null
                ? orl.MaxRate.DelivFpsMean / bm.DelivFpsMean
                : null;
        sb.AppendLine(
            Inv(
                $"| 1x4@max delivered fps, orleans / bare | >= {GoalMaxRateRatio:0.0}x | {F(maxRatio, "F2")}x | {Verdict(maxRatio, v => v >= GoalMaxRateRatio)} |"
            )
        );
        foreach (var v in LatencyGoalViewers)
        {
            var r = orl is null ? null : At(orl, v);
            var b = bare is null ? null : At(bare, v);
            double? d50 = r?.P50Ms - b?.P50Ms,
                d99 = r?.P99Ms - b?.P99Ms;
            sb.AppendLine(
                Inv(
                    $"| added latency at {v} viewers, p50 | <= {GoalFanoutAddedP50Ms:0} ms | {S(d50, "F2")} ms ({F(r?.P50Ms, "F2")} vs {F(b?.P50Ms, "F2")}) | {Verdict(d50, x => x <= GoalFanoutAddedP50Ms)} |"
                )
            );
            sb.AppendLine(
                Inv(
                    $"| added latency at {v} viewers, p99 | <= {GoalFanoutAddedP99Ms:0} ms | {S(d99, "F2")} ms ({F(r?.P99Ms, "F2")} vs {F(b?.P99Ms, "F2")}) | {Verdict(d99, x => x <= GoalFanoutAddedP99Ms)} |"
                )
            );
        }
        sb.AppendLine();

        // Every point.
        sb.AppendLine("### Every point");
        sb.AppendLine();
        sb.Append("| viewers |");
        foreach (var s in systems)
        {
            sb.Append(CultureInfo.InvariantCulture, $" {s.Label} delivery | p50 / p99 ms | CPU % |");
        }
        sb.AppendLine(" loadgen CPU % |");
        sb.Append("|---:|");
        foreach (var _ in systems)
        {
            sb.Append("---:|---:|---:|");
        }
        sb.AppendLine("---:|");
        foreach (var v in systems.SelectMany(s => s.Points.Select(p => p.ViewersPerCamera)).Distinct().Order())
        {
            sb.Append(CultureInfo.InvariantCulture, $"| {v} |");
            double? lg = null;
            foreach (var s in systems)
            {
                var r = At(s, v);
                var mark = r is not null && !Passes(r) ? " ✗" : "";
                sb.Append(
                    Inv(
                        $" {F(r?.Ratio, "F3")}{mark} | {F(r?.P50Ms, "F1")} / {F(r?.P99Ms, "F1")} | {F(r?.ServerCpuPct, "F0")} |"
                    )
                );
                lg ??= r?.LoadgenCpuPct;
            }
            sb.AppendLine(Inv($" {F(lg, "F0")} |"));
        }
        sb.Append("| 1x4@max fps |");
        foreach (var s in systems)
        {
            var r = s.MaxRate;
            sb.Append(
                Inv(
                    $" {F(r?.DelivFpsMean, "F0")} | {F(r?.P50Ms, "F1")} / {F(r?.P99Ms, "F1")} | {F(r?.ServerCpuPct, "F0")} |"
                )
            );
        }
        sb.AppendLine(
            Inv($" {F(systems.Select(s => s.MaxRate?.LoadgenCpuPct).FirstOrDefault(x => x is not null), "F0")} |")
        );
        sb.AppendLine();
        sb.AppendLine(
            "✗ = over capacity (delivery below 0.99 or p99 above 50 ms). Server CPU in % of one core (200 = both)."
        );
        sb.AppendLine();

        WriteCapacitySvg(Path.Combine(outDir, CapacitySvg), systems, baseline);
        sb.AppendLine(
            CultureInfo.InvariantCulture,
            $"![Delivery, p99 latency and server CPU vs viewers, per system]({CapacitySvg})"
        );
        sb.AppendLine();
        var cdf = new[] { "1x4@30", "1x512@30", "1x4@max" }
            .Where(s => cap.Results.Any(r => r.Scenario == s && r.LatencyCdfMs.Length > 1))
            .ToList();
        if (cdf.Count > 0)
        {
            WriteCdfSvg(Path.Combine(outDir, CapacityCdfSvg), cap.Results, cdf, baseline);
            sb.AppendLine("Latency distribution of every delivered frame (log latency; tail scale; dashed: p50, p99):");
            sb.AppendLine();
            sb.AppendLine(
                CultureInfo.InvariantCulture,
                $"![Latency CDF per system, {string.Join(", ", cdf)}]({CapacityCdfSvg})"
            );
            sb.AppendLine();
        }
        return sb.ToString();
    }

    private static void WriteCapacitySvg(string path, List<SystemCapacity> systems, string baseline)
    {
        if (systems.Count == 0 || systems.All(s => s.Points.Count == 0))
        {
            return;
        }
        var xmax = Svg.NiceMax(systems.Max(s => s.Points.Count == 0 ? 0 : s.Points.Max(p => p.ViewersPerCamera)));
        List<Series> Make(Func<Result, double?> y) =>
            [
                .. systems.Select(s => new Series(
                    s.Label,
                    ColorFor(s.Label, baseline),
                    s.Points.Where(p => y(p) is not null)
                        .Select(p => ((double)p.ViewersPerCamera, y(p)!.Value))
                        .ToList(),
                    Markers: true
                )),
            ];
        var delivery = Make(r => r.Ratio);
        var p99 = Make(r => r.P99Ms);
        var cpu = Make(r => r.ServerCpuPct);
        var p99Max = Math.Min(
            Svg.NiceMax(Math.Max(p99.SelectMany(s => s.Points).DefaultIfEmpty((0, 60)).Max(p => p.Y), 60)),
            500
        );
        var cpuMax = Svg.NiceMax(
            Math.Max(cpu.SelectMany(s => s.Points).DefaultIfEmpty((0, 10)).Max(p => p.Y) * 1.1, 10)
        );
        var parts = new List<string>
        {
            Svg.Panel(
                0,
                0,
                "Delivery vs viewers (1 camera, 30 fps)",
                "viewers",
                "delivered / sent",
                false,
                (0, xmax),
                (0, 1.05),
                [0, 0.25, 0.5, 0.75, 0.99],
                delivery,
                [CapacityDelivery]
            ),
            Svg.Panel(
                Svg.PanelWidth,
                0,
                "p99 latency vs viewers",
                "viewers",
                "p99 ms (clipped)",
                false,
                (0, xmax),
                (0, p99Max),
                Svg.NiceTicks(0, p99Max, 5),
                p99,
                [CapacityP99Ms]
            ),
            Svg.Panel(
                2 * Svg.PanelWidth,
                0,
                "Server CPU vs viewers",
                "viewers",
                "% of one core",
                false,
                (0, xmax),
                (0, cpuMax),
                Svg.NiceTicks(0, cpuMax, 5),
                cpu
            ),
        };
        File.WriteAllText(path, Svg.Document(3 * Svg.PanelWidth, Svg.PanelHeight, parts));
    }

    /// <summary><c>--report-capacity DIR</c>: the side-by-side table on stdout (bench/run.sh prints it at the
    /// end).</summary>
    public static int WriteCapacitySummary(Options o)
    {
        var cap = Load(o.ReportCapacity!, "capacity");
        if (cap is null || cap.Results.Count == 0)
        {
            Console.Error.WriteLine($"error: no capacity results in {o.ReportCapacity}");
            return 1;
        }
        Console.WriteLine(
            $"Capacity, commit {Get(cap, "commit")}, {Get(cap, "date_utc")} UTC, load average {Get(cap, "loadavg_start")} -> {Get(cap, "loadavg_end")}:"
        );
        Console.WriteLine();
        Console.Write(CapacitySummaryTable(Capacities(cap, o.Baseline), o.Baseline));
        return 0;
    }

    /// <summary>Hand-written: the profile behind the fan-out design (issue 13) and the design chosen. Kept in the
    /// generator so that regenerating the document keeps it.</summary>
    private const string FanoutNotes = """
        ## Fan-out: what the profile showed, and the send path chosen

        **Profile before the change** (commit `01b26a0`, embedded gateway, 1 camera 720p30 to 256 viewers, load
        generator on the same 2 cores, machine shared with other builds at load 2-8): delivery 0.82-0.90 (the bare
        relay 0.99 in the same conditions), server CPU 86-96% of a core. `dotnet-counters` (System.Runtime, 2 s
        rate) and `dotnet-trace` (`dotnet-sampled-thread-time`) over 6 s of the measured window:
        - **A 100 KB copy per viewer per frame into a rented buffer**: `ManagedWebSocket.SendAsync` frames each
          message by copying header and payload into a send buffer rented from `ArrayPool<byte>.Shared` and holds it
          until the write completes; with hundreds of sends in flight the shared pool runs dry and rents become
          new large-object-heap arrays (`GC.AllocateUninitializedArray` on the send path). LOH 183-188 MB, of it
          60-73 MB fragmentation; ~27 MB/s allocated; a gen2 collection every ~2 s. Among the on-CPU samples of
          the send path, this framing copy (`WriteFrameToSendBuffer`) weighed about as much as Kestrel's copy
          into its pipe (`Http1OutputProducer.WriteAsync`) and three quarters of the kernel send (`SendMessage`).
        - **Two thread-pool hops per viewer per frame**: ~12,000-17,000 work items/s for 7,680 viewer-frames/s:
          the channel wakes each viewer's send loop, and the write to Kestrel completes asynchronously every time
          (Kestrel's per-connection output buffer is 64 KB, smaller than one frame, so each flush waits for the
          socket), resuming the loop on the pool again.
        - Not the problem: locks (0-1 contention/s), the hub's dispatch, the meta JSON (once per frame).

        **The same profile after the change** (commit `47c537e`, same scenario, load 9-15): ~8-10 MB/s allocated
        (was ~27), LOH 97 MB (was 183-188), no gen2 collection in the 6 s window. On the send path the viewer's
        write (`WireStream.WriteAsync`, Kestrel's copy into its pipe included) now weighs less than the kernel
        send it feeds (2.9% vs 4.1% of the sampled thread time). What is left per viewer and frame is Kestrel's
        copy into its pipe, its hop to the socket's I/O queue and the `sendmsg` itself: the Node relay writes
        straight from the one shared buffer to the socket on its single thread, with neither the copy nor the
        hop, which is why its CPU per viewer stays below the .NET servers' (see the table above).

        **Before and after, same sitting** (`bench/LoadGen`, 1 camera, 12 s after 3 s warm-up, old = `01b26a0`, new
        = `23a310d`, run in turn, load 8-10 from other builds): 128 viewers: CPU 66% -> 56%, p50 14.1 -> 10.9 ms;
        256 viewers: CPU 90% -> 76%, delivery 0.994 -> 0.999, p50 60.3 -> 20.7 ms, p99 207 -> 230 ms (the tail
        is the machine's at that load). The gateway now costs about what the bare relay does per viewer (the
        capacity table); both cost 3.5-5x what Node does (two runs).

        **Design** (`gateway/Fanout/`: `WireFrame`, `WireStream`, `Viewer`, `ViewerHub`):
        - **Framed once, shared**: a server-to-client frame is not masked, so its bytes are the same for every
          viewer. The hub copies each frame once into a pooled, reference-counted buffer holding
          `[text frame: meta JSON][binary frame: JPEG]`; a `meta=1` viewer writes all of it (the meta always right
          before its frame, in one write), the others the binary frame. The bytes are exactly what
          `WebSocket.SendAsync` wrote (FIN, no RSV, no mask, shortest length form: tested byte for byte).
        - **Written straight to the connection**: `/video_out`'s `IHttpUpgradeFeature` is wrapped ahead of the
          WebSocket middleware, so the WebSocket runs over a `WireStream` the viewer writes to as well. The
          middleware still does the handshake and the WebSocket still answers pings and sends the close frame; each
          write holds one lock, so a control frame never lands inside a data frame. (HTTP/2 upgrades, which do not
          go through that feature, fall back to `WebSocket.SendAsync`.)
        - **No queue hop for a viewer that keeps up**: an idle viewer is written to on the dispatching thread; a
          viewer with a write in flight queues the frame in its bounded drop-oldest queue (counted), drained by
          the completion of that write. One write in flight per viewer keeps frames once and in order. Past 32
          viewers the hub hands batches of 32 to the thread pool (both cores copy; one work item per batch); a
          frame older than one the viewer already took from the same source is dropped and counted.
        - **Kestrel's output buffer 256 KB** (`MaxResponseBufferSize`, was 64 KB): room for two 720p frames, so a
          write to a viewer that keeps up completes at once (no continuation); a stuck viewer holds at most that
          much in Kestrel before its own queue drops.
        - Not done: several queued frames in one write (Kestrel copies every write into its pipe anyway, so it
          would save a flush, not a copy; a slow viewer's queue is what drops); writing to the socket without
          Kestrel's pipe (would mean a transport of our own).
        - Leaving viewers: a frame being written gets 1 s to finish so the close frame follows it; then the write
          is cancelled and the socket aborted. Every pooled buffer returns to the pool (`ViewerHub.Buffers.Rented`,
          tested with 1,000 viewers coming and going while a camera runs).

        The Node.js relay (`bench/NodeWs`, Node 20 + `ws`, same protocol and queue rule as `bench/BareRelay`) is an
        external peer for the benchmark only; `bench/run.sh` installs it with `npm ci` from the committed lock file.
        The test suite does not need Node.
        """;
}
