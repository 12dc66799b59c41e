using System.Globalization;

namespace Blankend.Bench.LoadGen;

public sealed class Options
{
    public string Url { get; private set; } = "ws://127.0.0.1:8000";

    /// <summary>Where viewers connect; the cameras' <see cref="Url"/> when not given (cross-gateway runs set
    /// it).</summary>
    public string? ViewerUrl { get; private set; }
    public int Cameras { get; private set; } = 1;
    public int Viewers { get; private set; } = 4;
    public double Fps { get; private set; } = 30;
    public double Duration { get; private set; } = 10;
    public double Warmup { get; private set; } = 2;
    public string? Jpeg { get; private set; }
    public string Endpoint { get; private set; } = "video_in";
    public int? ServerPid { get; private set; }
    public string? Json { get; private set; }
    public string Label { get; private set; } = "run";
    public string? Scenario { get; private set; }
    public bool Meta { get; private set; }
    public string? Commit { get; private set; }
    public double RssEvery { get; private set; }
    public int CdfPoints { get; private set; } = 2001;

    // Report mode: --report-md OUT.md a.json b.json ...
    public string? ReportMd { get; private set; }
    public string Baseline { get; private set; } = "bare";
    public List<string> ReportInputs { get; } = [];

    // Document mode: --report-doc OUT.md --results-dir DIR
    public string? ReportDoc { get; private set; }
    public string? ResultsDir { get; private set; }

    // Capacity summary on stdout: --report-capacity DIR
    public string? ReportCapacity { get; private set; }

    public bool Help { get; private set; }

    public string ScenarioName =>
        Scenario ?? $"{Cameras}x{Viewers}@{(Fps > 0 ? Fps.ToString(CultureInfo.InvariantCulture) : "max")}";

    public const string Usage = """
        Blankend.Bench.LoadGen: WebSocket load generator for /video_in + /video_out.

        Usage: dotnet bench/LoadGen/bin/Release/net10.0/Blankend.Bench.LoadGen.dll [options]
          --url URL          base URL (ws:// or http://), default ws://127.0.0.1:8000
          --viewer-url URL   viewers connect here instead (cluster mode: camera on one gateway,
                             viewers on another), default --url
          --cameras P        cameras (client_id cam0..camP-1), default 1
          --viewers V        viewers per camera (/video_out?source=camI), default 4
          --fps F            frames/s per camera, default 30; 0 = back-to-back (one frame in flight)
          --duration D       measured seconds, default 10
          --warmup W         seconds sent before measuring (not counted), default 2
          --jpeg PATH        base JPEG, default bench/media/frame-1280x720-q80.jpg (1280x720, quality
                             80; bench/media/frame-1280x720.jpg is the same at ~90) (repo root found
                             by walking up to Blankend.Orleans.sln) or next to the executable
          --endpoint NAME    ingest endpoint, only video_in for now (/video_codec takes H.264, which
                             this tool does not encode)
          --server-pid PID   sample /proc/PID (CPU % of one core, RSS MB) over the measured window
          --json PATH        write the result JSON there
          --label NAME       system label in the summary/JSON, default "run"
          --scenario NAME    scenario name in the JSON, default PxV@F (e.g. 1x4@30, 1x4@max)
          --meta             viewers use meta=1 and check each meta JSON's seq/source; a frame that
                             lost its stamp (re-encoded: the COM segment is gone) is then matched to
                             the camera frame by the meta's ts_ms (valid up to ~200 fps, see below)
          --commit REV       recorded in the JSON
          --rss-every S      also record the server's RSS every S seconds of the measured window
          --cdf-points N     latency quantiles kept in the JSON for plots, default 2001 (0 = none)
          --help             this text

        Report mode (markdown table from result JSON files, baseline rows vs the others):
          --report-md OUT.md [--baseline LABEL] FILE.json...

        Document mode (docs/benchmarks.md + SVG plots next to it, from bench/run.sh's result folder):
          --report-doc OUT.md --results-dir DIR [--baseline LABEL]

        Capacity summary (the systems side by side, from DIR/capacity/ of bench/run.sh):
          --report-capacity DIR [--baseline LABEL]

        Latency = viewer receive - camera send, one process clock. Each frame carries a COM segment
        "BLANKEND-BENCH seq=.. cam=.. t=.." right after SOI: the frame stays a valid JPEG and the stamp
        survives any path that forwards the bytes. A re-encode (OpenCV's imencode writes no COM) drops
        it; with --meta such a frame is matched by the service's ts_ms (unix ms when it entered): the
        camera frame sent last before ts_ms + 1 ms. That is exact while frames are more than a couple
        of ms apart; at --fps 0 it is not, and the tool says so.

        Progress goes to stderr every second; a one-line summary goes to stdout.
        Exit code: 0 ok, 1 bad arguments, 2 connection failure, 3 watchdog stop.
        """;

    public static Options Parse(string[] args)
    {
        var o = new Options();
        for (var i = 0; i < args.Length; i++)
        {
            var a = args[i];
            string Next()
            {
                if (i + 1 >= args.Length)
                {
                    throw new ArgumentException($"{a} needs a value");
                }
                return args[++i];
            }
            switch (a)
            {
                case "-h" or "--help":
                    o.Help = true;
                    break;
                case "--url":
                    o.Url = Next();
                    break;
                case "--viewer-url":
                    o.ViewerUrl = Next();
                    break;
                case "--cameras":
                    o.Cameras = ParseInt(a, Next(), 1);
                    break;
                case "--viewers":
                    o.Viewers = ParseInt(a, Next(), 0);
                    break;
                case "--fps":
                    o.Fps = ParseDouble(a, Next());
                    break;
                case "--duration":
                    o.Duration = ParseDouble(a, Next());
                    break;
                case "--warmup":
                    o.Warmup = ParseDouble(a, Next());
                    break;
                case "--jpeg":
                    o.Jpeg = Next();
                    break;
                case "--endpoint":
                    o.Endpoint = Next();
                    break;
                case "--server-pid":
                    o.ServerPid = ParseInt(a, Next(), 1);
                    break;
                case "--json":
                    o.Json = Next();
                    break;
                case "--label":
                    o.Label = Next();
                    break;
                case "--scenario":
                    o.Scenario = Next();
                    break;
                case "--meta":
                    o.Meta = true;
                    break;
                case "--commit":
                    o.Commit = Next();
                    break;
                case "--rss-every":
                    o.RssEvery = ParseDouble(a, Next());
                    break;
                case "--cdf-points":
                    o.CdfPoints = ParseInt(a, Next(), 0);
                    break;
                case "--report-md":
                    o.ReportMd = Next();
                    break;
                case "--report-doc":
                    o.ReportDoc = Next();
                    break;
                case "--results-dir":
                    o.ResultsDir = Next();
                    break;
                case "--report-capacity":
                    o.ReportCapacity = Next();
                    break;
                case "--baseline":
                    o.Baseline = Next();
                    break;
                default:
                    if (o.ReportMd is not null && !a.StartsWith("--", StringComparison.Ordinal))
                    {
                        o.ReportInputs.Add(a);
                        break;
                    }
                    throw new ArgumentException($"unknown option {a}");
            }
        }
        if (o.Endpoint != "video_in")
        {
            throw new ArgumentException("--endpoint: only video_in is supported");
        }
        if (o.Duration <= 0 || o.Warmup < 0 || o.Fps < 0 || o.RssEvery < 0)
        {
            throw new ArgumentException("--duration must be > 0, --warmup, --fps and --rss-every >= 0");
        }
        if (o.CdfPoints == 1)
        {
            throw new ArgumentException("--cdf-points: 0 or at least 2");
        }
        if (o.ReportDoc is not null && o.ResultsDir is null)
        {
            throw new ArgumentException("--report-doc needs --results-dir");
        }
        o.Url = ToWebSocketBase(o.Url);
        if (o.ViewerUrl is not null)
        {
            o.ViewerUrl = ToWebSocketBase(o.ViewerUrl);
        }
        return o;
    }

    private static string ToWebSocketBase(string url)
    {
        if (url.StartsWith("http://", StringComparison.OrdinalIgnoreCase))
        {
            url = "ws://" + url["http://".Length..];
        }
        else if (url.StartsWith("https://", StringComparison.OrdinalIgnoreCase))
        {
            url = "wss://" + url["https://".Length..];
        }
        return url.TrimEnd('/');
    }

    private static int ParseInt(string name, string v, int min)
    {
        if (!int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out var x) || x < min)
        {
            throw new ArgumentException($"{name}: expected an integer >= {min}, got '{v}'");
        }
        return x;
    }

    private static double ParseDouble(string name, string v)
    {
        if (!double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var x) || !double.IsFinite(x))
        {
            throw new ArgumentException($"{name}: expected a number, got '{v}'");
        }
        return x;
    }

    public const string DefaultJpeg = "bench/media/frame-1280x720-q80.jpg";

    public static string? FindDefaultJpeg()
    {
        const string rel = DefaultJpeg;
        foreach (var start in new[] { AppContext.BaseDirectory, Directory.GetCurrentDirectory() })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "Blankend.Orleans.sln")))
                {
                    var p = Path.Combine(dir.FullName, rel);
                    if (File.Exists(p))
                    {
                        return p;
                    }
                }
            }
        }
        var local = Path.Combine(AppContext.BaseDirectory, Path.GetFileName(rel));
        return File.Exists(local) ? local : null;
    }
}
