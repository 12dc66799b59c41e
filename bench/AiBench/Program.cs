using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Blankend.Orleans;
using Blankend.Orleans.Ai;
using Blankend.Orleans.Configuration;
using Blankend.Orleans.Grains.Ai;
using Blankend.Orleans.Grains.Ai.Face;
using Blankend.Orleans.Grains.Ai.Matting;
using Blankend.Orleans.Grains.Ai.Runtime;
using Blankend.Orleans.Grains.Devices;
using Blankend.Orleans.Processing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using OpenCvSharp;

// AI steps benchmark (issue 6): per-step ms and end-to-end processed fps at 640x360 and 1280x720, against the
// bare ONNX Runtime session.Run of each model measured in the same run. The steps are the service's own
// IFrameStep objects, wired as the silo wires them; a frame = JPEG decode + steps + JPEG encode, as on a
// device worker.
//
//   dotnet bench/AiBench/bin/Release/net10.0/Blankend.Bench.AiBench.dll [--seconds S] [--json PATH] [--md PATH]
var seconds = 5.0;
string? jsonPath = null, mdPath = null;
for (var i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--seconds": seconds = double.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--json": jsonPath = args[++i]; break;
        case "--md": mdPath = args[++i]; break;
        default: Console.Error.WriteLine($"unknown option {args[i]}"); return 2;
    }
}

var root = FindRoot();
var frame720 = File.ReadAllBytes(Path.Combine(root, "bench/media/frame-1280x720-q80.jpg"));
var services = new ServiceCollection()
    .AddLogging(b => b.SetMinimumLevel(Microsoft.Extensions.Logging.LogLevel.Warning))
    .AddSingleton(Options.Create(new AiOptions { FaceDetectInterval = 1 }))
    .AddSingleton<OnnxRuntimeHost>()
    .AddSingleton<AiEngine>()
    .AddBlankendFaceSteps()
    .AddBlankendMatteSteps()
    .BuildServiceProvider();
var engine = services.GetRequiredService<AiEngine>();
var steps = services.GetServices<IFrameStep>().ToArray();

// The reference face for swap: the astronaut mirrored (a different face geometry on the same person).
using (var src = Cv2.ImDecode(File.ReadAllBytes(Path.Combine(root, "tests/testdata/astronaut.jpg")), ImreadModes.Color))
using (var flipped = src.Flip(FlipMode.Y))
{
    Cv2.ImEncode(".jpg", flipped, out var reference);
    engine.SetAsset(new AiAsset(AiAssetKind.ReferenceFace, 1, reference));
}

var rows = new List<Row>();
var e2e = new List<E2e>();
Console.WriteLine($"AI bench: {Environment.ProcessorCount} cores, {seconds} s per end-to-end run, ONNX Runtime providers: " +
    string.Join(", ", engine.Runtime.AvailableProviders));

foreach (var (w, h) in new[] { (640, 360), (1280, 720) })
{
    byte[] jpeg;
    using (var big = Cv2.ImDecode(frame720, ImreadModes.Color))
    using (var sized = new Mat())
    {
        Cv2.Resize(big, sized, new Size(w, h), 0, 0, InterpolationFlags.Area);
        Cv2.ImEncode(".jpg", sized, out jpeg, new ImageEncodingParam(ImwriteFlags.JpegQuality, 80));
    }

    // Bare session.Run of each model the steps use at this size (zero input of the model's shape).
    var bare = new Dictionary<AiModelKind, double>();
    foreach (var kind in new[] { AiModelKind.FaceDetect, AiModelKind.FaceMesh, w * 1.0 / h >= 1.5 ? AiModelKind.SegmentationLandscape : AiModelKind.Segmentation })
    {
        if (engine.Runtime.Get(kind, "cpu0") is { } model) bare[kind] = BareRun(model.Session);
    }

    // Each step alone (its own prerequisites run first, untimed), median over 60 frames after 10 warm-ups.
    foreach (var (name, stepFlags, model) in new (string, AiSteps, AiModelKind?)[]
    {
        ("detect", AiSteps.Detect, AiModelKind.FaceDetect), ("mesh", AiSteps.Mesh, AiModelKind.FaceMesh),
        ("swap", AiSteps.Swap, null), ("matte", AiSteps.Matte, w * 1.0 / h >= 1.5 ? AiModelKind.SegmentationLandscape : AiModelKind.Segmentation),
    })
    {
        var settings = Settings(stepFlags);
        var step = steps.Single(s => s.Name == name);
        var times = new List<double>();
        for (var n = 0; n < 70; n++)
        {
            var work = Work(jpeg, settings, "step-" + name);
            foreach (var s in steps)
            {
                if (s == step) break;
                if (s.AppliesTo(settings)) s.Run(new ReadOnlySpan<FrameWork>(ref work));
            }
            var t = Stopwatch.GetTimestamp();
            step.Run(new ReadOnlySpan<FrameWork>(ref work));
            if (n >= 10) times.Add(Stopwatch.GetElapsedTime(t).TotalMilliseconds);
            work.Image!.Dispose();
        }
        double? bareMs = model is { } k && bare.TryGetValue(k, out var b) ? b : null;
        rows.Add(new Row($"{w}x{h}", name, Median(times), bareMs));
        Console.WriteLine($"  {w}x{h} {name,-7} {Median(times),7:F2} ms/frame" + (bareMs is { } bm ? $"  (bare session.Run {bm:F2} ms, x{Median(times) / bm:F2})" : ""));
    }

    // End to end, as a worker does it: decode, steps (detection on every frame), encode; 1 and 2 threads.
    foreach (var (label, flags) in new[] { ("detect+matte", AiSteps.Detect | AiSteps.Matte), ("detect+swap", AiSteps.Swap), ("detect+mesh+swap+matte", AiSteps.Swap | AiSteps.Matte) })
    {
        foreach (var threads in new[] { 1, 2 })
        {
            var fps = EndToEnd(jpeg, Settings(flags), threads, seconds);
            e2e.Add(new E2e($"{w}x{h}", label, threads, fps));
            Console.WriteLine($"  {w}x{h} {label,-24} {threads} thread(s): {fps,6:F1} processed fps");
        }
    }
}

var result = new { machine = $"{Environment.ProcessorCount} cores", date = DateTime.UtcNow.ToString("u"), steps = rows, end_to_end = e2e };
if (jsonPath is not null) File.WriteAllText(jsonPath, JsonSerializer.Serialize(result, new JsonSerializerOptions { WriteIndented = true }));
if (mdPath is not null) File.WriteAllText(mdPath, Markdown(rows, e2e));
return 0;

EffectiveSettings Settings(AiSteps s) =>
    new(true, false, 80, 0, 1, false, 1, s, MatteBackground.Green, FaceDetectInterval: 1, SimpleForward: false, ReferenceVersion: 1, DepthMode: "colormap");

static FrameWork Work(byte[] jpeg, EffectiveSettings settings, string source)
{
    var envelope = new FrameEnvelope(source, 0, 0, FrameKind.Raw, 0, FrameOrigin.VideoIn, jpeg);
    var work = new FrameWork(new ProcessRequest(envelope, settings));
    JpegCodec.Decode(work);
    return work;
}

double EndToEnd(byte[] jpeg, EffectiveSettings settings, int threads, double secs)
{
    long frames = 0;
    var stop = Stopwatch.GetTimestamp() + (long)(secs * Stopwatch.Frequency);
    var warm = Stopwatch.GetTimestamp() + (long)(0.5 * Stopwatch.Frequency);
    long counted = 0;
    long start = 0;
    var workers = Enumerable.Range(0, threads).Select(t => new Thread(() =>
    {
        var source = $"e2e-{t}";
        while (Stopwatch.GetTimestamp() < stop)
        {
            var work = Work(jpeg, settings, source);
            foreach (var s in steps)
            {
                if (s.AppliesTo(settings) && !work.Failed) s.Run(new ReadOnlySpan<FrameWork>(ref work));
            }
            JpegCodec.Encode(work);
            work.Image?.Dispose();
            if (work.Failed) throw new InvalidOperationException(work.Error);
            if (Stopwatch.GetTimestamp() >= warm)
            {
                Interlocked.CompareExchange(ref start, Stopwatch.GetTimestamp(), 0);
                Interlocked.Increment(ref counted);
            }
            Interlocked.Increment(ref frames);
        }
    })).ToList();
    workers.ForEach(x => x.Start());
    workers.ForEach(x => x.Join());
    var elapsed = (Stopwatch.GetTimestamp() - start) / (double)Stopwatch.Frequency;
    return counted / elapsed;
}

static double BareRun(InferenceSession session)
{
    var inputs = new List<NamedOnnxValue>();
    foreach (var (name, meta) in session.InputMetadata)
    {
        var dims = meta.Dimensions.Select(d => d < 0 ? 1 : d).ToArray();
        inputs.Add(NamedOnnxValue.CreateFromTensor(name, new DenseTensor<float>(dims)));
    }
    var times = new List<double>();
    for (var i = 0; i < 110; i++)
    {
        var t = Stopwatch.GetTimestamp();
        using var _ = session.Run(inputs);
        if (i >= 10) times.Add(Stopwatch.GetElapsedTime(t).TotalMilliseconds);
    }
    return Median(times);
}

static double Median(List<double> xs)
{
    var s = xs.Order().ToArray();
    return s.Length == 0 ? double.NaN : s[s.Length / 2];
}

static string Markdown(List<Row> rows, List<E2e> e2e)
{
    var md = new StringBuilder();
    md.AppendLine("| size | step | ms per frame (median) | bare session.Run ms | step / bare |");
    md.AppendLine("| --- | --- | --- | --- | --- |");
    foreach (var r in rows)
        md.AppendLine(CultureInfo.InvariantCulture, $"| {r.Size} | {r.Step} | {r.Ms:F2} | {(r.BareMs is { } b ? b.ToString("F2", CultureInfo.InvariantCulture) : "-")} | {(r.BareMs is { } b2 ? (r.Ms / b2).ToString("F2", CultureInfo.InvariantCulture) : "-")} |");
    md.AppendLine();
    md.AppendLine("| size | steps (detection every frame) | threads | processed fps (decode + steps + encode) | vs goal 60 fps |");
    md.AppendLine("| --- | --- | --- | --- | --- |");
    foreach (var x in e2e)
        md.AppendLine(CultureInfo.InvariantCulture, $"| {x.Size} | {x.Steps} | {x.Threads} | {x.Fps:F1} | {x.Fps / 60:F2}x |");
    return md.ToString();
}

static string FindRoot()
{
    for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
    {
        if (File.Exists(Path.Combine(d.FullName, "Blankend.Orleans.sln"))) return d.FullName;
    }
    for (var d = new DirectoryInfo(Environment.CurrentDirectory); d is not null; d = d.Parent)
    {
        if (File.Exists(Path.Combine(d.FullName, "Blankend.Orleans.sln"))) return d.FullName;
    }
    throw new DirectoryNotFoundException("run from inside the repository");
}

internal sealed record Row(string Size, string Step, double Ms, double? BareMs);

internal sealed record E2e(string Size, string Steps, int Threads, double Fps);
