using System.Globalization;

namespace Blankend.Bench.AiBench;

/// <summary>The command line of the AI bench (see Program.cs for the usage text).</summary>
internal sealed class BenchOptions
{
    public double Seconds { get; private set; } = 5;
    public string? JsonPath { get; private set; }
    public string? MdPath { get; private set; }
    public string Device { get; private set; } = "cpu0";
    public int[] Batches { get; private set; } = [];
    public int[] Cameras { get; private set; } = [];
    public int? Workers { get; private set; }
    public int BatchMax { get; private set; } = 32;

    /// <summary><c>ai.max_batch</c>: most images per inference call.</summary>
    public int MaxBatch { get; private set; } = 32;

    /// <summary><c>ai.batch_timeout_ms</c>: the device worker's push timeout.</summary>
    public int BatchTimeoutMs { get; private set; } = 3;
    public int? QueueSize { get; private set; }
    public int IntraOpThreads { get; private set; } = 1;
    public string? Only { get; private set; }
    public string? Root { get; private set; }

    /// <summary>No new option: the historical steps table (what bench/run.sh --ai writes into docs/ai.md).</summary>
    public bool Legacy { get; private set; } = true;

    public bool IsGpu => Device.StartsWith("gpu", StringComparison.Ordinal);

    /// <summary>Worker threads of the device loop: every core on a CPU device; on a GPU device a few threads keep
    /// the GPU fed while the others decode and encode (2-4, as the cores allow).</summary>
    public int EffectiveWorkers =>
        Workers ?? (IsGpu ? Math.Clamp(Environment.ProcessorCount / 4, 2, 4) : Environment.ProcessorCount);

    public bool ProvidersOnly => Only == "providers";

    public bool RunSteps => Legacy || Only == "steps";
    public bool RunModels => !Legacy && (Only is null or "models") && (Batches.Length > 0 || Only == "models");
    public bool RunE2e => !Legacy && (Only is null or "e2e") && (Cameras.Length > 0 || Only == "e2e");

    public static readonly int[] DefaultBatches = [1, 8, 32];
    public static readonly int[] DefaultCameras = [1, 8, 32, 64];

    public const string Usage = """
        usage: Blankend.Bench.AiBench [options]
          (no option but --seconds/--json/--md/--root: the per-step table, cpu0, as bench/run.sh --ai runs it)
          --device cpu0|gpu0     device of the sessions and of the device worker (default cpu0); gpu0 exits 3
                                 when the CUDA provider does not load (never measures the CPU in its place)
          --batch 1,8,32         per-model bare throughput (images/s) at these batch sizes
          --cameras 1,8,32,64    end to end: this many concurrent 720p30 cameras on the device worker
          --only models|e2e|steps|providers  run one part (models/e2e take the default lists when none is
                                 given; providers: print the provider of each model on the device and stop)
          --workers N            device worker threads (default: cores on cpu0, 2-4 on gpu0)
          --batch-max N          video_processing.batch_max of the worker (default 32)
          --max-batch N          ai.max_batch: most images per inference call (default 32)
          --batch-timeout MS     ai.batch_timeout_ms: the worker's push timeout (default 3; 0 = off)
          --queue N              video_processing.queue_size (default: max(4, cameras))
          --intra-op N           ONNX Runtime intra-op threads per session (default 1, as the service)
          --seconds S            measured seconds per timed run (default 5)
          --root DIR             folder holding bench/media and tests/testdata (default: next to the binary,
                                 else the repository around it)
          --json PATH, --md PATH write the figures as JSON / markdown tables
        exit codes: 0 ok, 2 bad arguments or missing files, 3 gpu device asked but CUDA provider not loaded
        """;

    /// <summary>Parses the arguments; null and a message when they are wrong.</summary>
    public static (BenchOptions? Options, string? Error) Parse(string[] args)
    {
        var o = new BenchOptions();
        try
        {
            for (var i = 0; i < args.Length; i++)
            {
                var a = args[i];
                string Next() => i + 1 < args.Length ? args[++i] : throw new FormatException($"{a} needs a value");
                switch (a)
                {
                    case "--seconds":
                        o.Seconds = double.Parse(Next(), CultureInfo.InvariantCulture);
                        break;
                    case "--json":
                        o.JsonPath = Next();
                        break;
                    case "--md":
                        o.MdPath = Next();
                        break;
                    case "--root":
                        o.Root = Next();
                        break;
                    case "--device":
                        o.Device = Next();
                        o.Legacy = false;
                        break;
                    case "--batch":
                        o.Batches = List(Next());
                        o.Legacy = false;
                        break;
                    case "--cameras":
                        o.Cameras = List(Next());
                        o.Legacy = false;
                        break;
                    case "--workers":
                        o.Workers = Positive(Next());
                        o.Legacy = false;
                        break;
                    case "--batch-max":
                        o.BatchMax = Positive(Next());
                        o.Legacy = false;
                        break;
                    case "--max-batch":
                        o.MaxBatch = Positive(Next());
                        o.Legacy = false;
                        break;
                    case "--batch-timeout":
                        o.BatchTimeoutMs = int.Parse(Next(), System.Globalization.CultureInfo.InvariantCulture);
                        o.Legacy = false;
                        break;
                    case "--queue":
                        o.QueueSize = Positive(Next());
                        o.Legacy = false;
                        break;
                    case "--intra-op":
                        o.IntraOpThreads = Positive(Next());
                        break;
                    case "--only":
                        o.Only = Next();
                        o.Legacy = false;
                        break;
                    case "-h" or "--help":
                        return (null, "");
                    default:
                        return (null, $"unknown option {a}");
                }
            }
        }
        catch (FormatException e)
        {
            return (null, e.Message);
        }
        if (o.Only is not (null or "models" or "e2e" or "steps" or "providers"))
            return (null, $"--only takes models, e2e, steps or providers, not {o.Only}");
        if (o.Device is not ("cpu0" or "gpu0"))
            return (null, $"--device takes cpu0 or gpu0, not {o.Device}");
        if (o.Seconds <= 0)
            return (null, "--seconds must be > 0");
        if (o.Only == "models" && o.Batches.Length == 0)
            o.Batches = DefaultBatches;
        if (o.Only == "e2e" && o.Cameras.Length == 0)
            o.Cameras = DefaultCameras;
        return (o, null);
    }

    private static int[] List(string s)
    {
        var xs = s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(Positive)
            .ToArray();
        return xs.Length == 0 ? throw new FormatException($"empty list '{s}'") : xs;
    }

    private static int Positive(string s) =>
        int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) && v > 0
            ? v
            : throw new FormatException($"'{s}' is not a positive integer");
}
