using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Blankend.Bench.AiBench;
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

// AI bench (issues 6 and 14). Default (no new option): per-step ms and end-to-end processed fps at 640x360 and
// 1280x720, against the bare ONNX Runtime session.Run of each model measured in the same run; the steps are the
// service's own IFrameStep objects, wired as the silo wires them; a frame = JPEG decode + steps + JPEG encode,
// as on a device worker. With --device/--batch/--cameras/--only: per-model bare throughput (images/s at batch N)
// and C concurrent 720p30 cameras on the device worker (DeviceWorkerHost), on cpu0 or gpu0 (BenchOptions.Usage).
//
//   dotnet bench/AiBench/bin/Release/net10.0/Blankend.Bench.AiBench.dll [--seconds S] [--json PATH] [--md PATH]
//   ... --device gpu0 --batch 1,8,32 --cameras 1,8,32,64 --seconds 10 --md out.md
var (opt, argError) = BenchOptions.Parse(args);
if (opt is null)
{
    if (argError is { Length: > 0 })
        Console.Error.WriteLine(argError);
    Console.Error.WriteLine(BenchOptions.Usage);
    return argError is { Length: > 0 } ? 2 : 0;
}
var seconds = opt.Seconds;
var device = opt.Legacy ? "cpu0" : opt.Device;

string frame720Path,
    astronautPath;
try
{
    (frame720Path, astronautPath) = (
        Media(opt.Root, "frame-1280x720-q80.jpg", "bench/media"),
        Media(opt.Root, "astronaut.jpg", "tests/testdata")
    );
}
catch (FileNotFoundException e)
{
    Console.Error.WriteLine($"AI bench: {e.Message}");
    return 2;
}
var frame720 = File.ReadAllBytes(frame720Path);
var services = new ServiceCollection()
    .AddLogging(b => b.SetMinimumLevel(Microsoft.Extensions.Logging.LogLevel.Warning))
    .AddSingleton(
        Options.Create(
            new AiOptions
            {
                FaceDetectInterval = 1,
                IntraOpThreads = opt.IntraOpThreads,
                MaxBatch = opt.MaxBatch,
                BatchTimeoutMs = opt.BatchTimeoutMs,
            }
        )
    )
    .AddSingleton<OnnxRuntimeHost>()
    .AddSingleton<AiEngine>()
    .AddBlankendFaceSteps()
    .AddBlankendMatteSteps()
    .BuildServiceProvider();
var engine = services.GetRequiredService<AiEngine>();
var steps = services.GetServices<IFrameStep>().ToArray();

// The reference face for swap: the astronaut mirrored (a different face geometry on the same person).
using (var src = Cv2.ImDecode(File.ReadAllBytes(astronautPath), ImreadModes.Color))
using (var flipped = src.Flip(FlipMode.Y))
{
    Cv2.ImEncode(".jpg", flipped, out var reference);
    engine.SetAsset(new AiAsset(AiAssetKind.ReferenceFace, 1, reference));
}

Console.WriteLine(
    $"AI bench: {Environment.ProcessorCount} cores, device {device}, ONNX Runtime providers: "
        + string.Join(", ", engine.Runtime.AvailableProviders)
);

// The sessions of the device, loaded now: the provider that really runs each model. A gpu device whose models
// do not get the CUDA provider stops here (exit 3): the figures would be the CPU's under the GPU's name.
var providers = new List<ProviderRow>();
foreach (var (kind, name) in ModelThroughput.Models)
{
    var m = engine.Runtime.Get(kind, device);
    providers.Add(
        new ProviderRow(
            device,
            name,
            m?.Provider ?? "unavailable",
            m?.ProviderReason ?? engine.Runtime.UnavailableReason(kind) ?? "?"
        )
    );
    Console.WriteLine($"  {device} {name, -30} provider {providers[^1].Provider} ({providers[^1].Reason})");
}
if (opt.IsGpu && providers.FirstOrDefault(p => p.Provider != "CUDA") is { } noCuda)
{
    Console.Error.WriteLine(
        $"AI bench: {device} was asked but the CUDA provider did not load for {noCuda.Model}: {noCuda.Reason}."
    );
    Console.Error.WriteLine(
        "AI bench: nothing measured (the CPU is never measured under a GPU's name). A GPU build needs -p:BlankendGpu=true "
            + "(Microsoft.ML.OnnxRuntime.Gpu.Linux), an NVIDIA driver, and the CUDA 13 cuBLAS / cuDNN 9 library folders on LD_LIBRARY_PATH (docs/ai.md)."
    );
    return 3;
}
if (providers.FirstOrDefault(p => p.Provider == "unavailable") is { } missing)
{
    Console.Error.WriteLine($"AI bench: model {missing.Model} is unavailable: {missing.Reason}");
    return 2;
}

if (opt.ProvidersOnly)
    return 0;

// Measured windows, for gpu-check.sh (GPU utilization over them): "window <label> <unix ms> <unix ms>".
var windows = new List<WindowRow>();
void Window(string label, long fromMs, long toMs)
{
    windows.Add(new WindowRow(label, fromMs, toMs));
    Console.WriteLine(
        FormattableString.Invariant(
            $"window {new string([.. label.Select(ch => char.IsAsciiLetterOrDigit(ch) ? ch : '_')])} {fromMs} {toMs}"
        )
    );
}

var modelRows = new List<ModelRow>();
if (opt.RunModels)
{
    Console.WriteLine(
        $"models: bare session.Run on N images, batches {string.Join(",", opt.Batches)}, {seconds} s each after a warm-up"
    );
    foreach (var (kind, name) in ModelThroughput.Models)
    {
        var model = engine.Runtime.Get(kind, device)!;
        foreach (var n in opt.Batches)
        {
            // On a GPU device the batch's outputs are also compared with CPU single-image runs of the same input.
            var reference = device == "cpu0" ? null : engine.Runtime.Get(kind, "cpu0")?.Session;
            var r = ModelThroughput.Measure(model, name, n, seconds, Window, reference);
            modelRows.Add(r);
            Console.WriteLine(
                r.Runs == 0
                    ? $"  {device} {name, -30} batch {n, 3}: {r.Note}"
                    : $"  {device} {name, -30} batch {n, 3}: {r.MedianMs, 8:F2} ms per run, {r.ImagesPerSecond, 9:F1} images/s ({r.Runs} runs, {r.Provider})"
            );
        }
    }
}

var cameraRows = new List<CameraRow>();
if (opt.RunE2e)
{
    var workers = opt.EffectiveWorkers;
    var e2eSettings = new EffectiveSettings(
        true,
        false,
        80,
        0,
        workers,
        opt.IsGpu,
        1,
        AiSteps.Detect | AiSteps.Matte,
        MatteBackground.Green,
        FaceDetectInterval: 1,
        SimpleForward: false,
        ReferenceVersion: 1,
        DepthMode: "colormap"
    );
    var log = services.GetRequiredService<ILogger<DeviceWorkerHost>>();
    Console.WriteLine(
        $"e2e: 1280x720 JPEG at {CameraBench.CameraFps} fps per camera, detect (every frame) + matte, device worker {device}: "
            + $"{workers} worker thread(s), batch_max {opt.BatchMax}; {seconds} s measured after a warm-up"
    );
    foreach (var c in opt.Cameras)
    {
        var queue = opt.QueueSize ?? Math.Max(4, c);
        Console.WriteLine($"  {device} {c} camera(s): running ...");
        var r = await CameraBench.RunAsync(
            device,
            c,
            workers,
            opt.BatchMax,
            queue,
            e2eSettings,
            frame720,
            steps,
            engine.Options,
            log,
            seconds,
            Window
        );
        cameraRows.Add(r);
        Console.WriteLine(
            FormattableString.Invariant(
                $"  {device} {c, 3} camera(s): per camera {r.CameraFpsMean:F1} fps (min {r.CameraFpsMin:F1}), total {r.TotalFps:F1} processed fps, "
            )
                + FormattableString.Invariant(
                    $"drops {r.DropsPerSecond:F1}/s, latency p50 {r.P50Ms:F1} ms p99 {r.P99Ms:F1} ms, {r.MeanBatch:F2} frames/batch, CPU {r.CpuPercent:F0}%"
                )
                + (r.Saturated + r.Failed > 0 ? $", saturated {r.Saturated}, failed {r.Failed} ({r.LastError})" : "")
        );
    }
}

if (!opt.RunSteps)
{
    var summary = new
    {
        machine = $"{Environment.ProcessorCount} cores",
        date = DateTime.UtcNow.ToString("u"),
        device,
        onnxruntime_providers = engine.Runtime.AvailableProviders,
        intra_op_threads = opt.IntraOpThreads,
        sessions = providers,
        models = modelRows,
        cameras = cameraRows,
        windows,
    };
    if (opt.JsonPath is not null)
        File.WriteAllText(
            opt.JsonPath,
            JsonSerializer.Serialize(summary, new JsonSerializerOptions { WriteIndented = true })
        );
    if (opt.MdPath is not null)
        File.WriteAllText(opt.MdPath, Report.Markdown(modelRows, cameraRows));
    return 0;
}

var rows = new List<Row>();
var e2e = new List<E2e>();
Console.WriteLine($"steps: {seconds} s per end-to-end run");

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
    foreach (
        var kind in new[]
        {
            AiModelKind.FaceDetect,
            AiModelKind.FaceMesh,
            w * 1.0 / h >= 1.5 ? AiModelKind.SegmentationLandscape : AiModelKind.Segmentation,
        }
    )
    {
        if (engine.Runtime.Get(kind, device) is { } model)
            bare[kind] = BareRun(model.Session);
    }

    // Each step alone (its own prerequisites run first, untimed), median over 60 frames after 10 warm-ups.
    foreach (
        var (name, stepFlags, model) in new (string, AiSteps, AiModelKind?)[]
        {
            ("detect", AiSteps.Detect, AiModelKind.FaceDetect),
            ("mesh", AiSteps.Mesh, AiModelKind.FaceMesh),
            ("swap", AiSteps.Swap, null),
            ("matte", AiSteps.Matte, w * 1.0 / h >= 1.5 ? AiModelKind.SegmentationLandscape : AiModelKind.Segmentation),
        }
    )
    {
        var settings = Settings(stepFlags);
        var step = steps.Single(s => s.Name == name);
        var times = new List<double>();
        for (var n = 0; n < 70; n++)
        {
            var work = Work(jpeg, settings, "step-" + name, device);
            foreach (var s in steps)
            {
                if (s == step)
                    break;
                if (s.AppliesTo(settings))
                    s.Run(new ReadOnlySpan<FrameWork>(ref work));
            }
            var t = Stopwatch.GetTimestamp();
            step.Run(new ReadOnlySpan<FrameWork>(ref work));
            if (n >= 10)
                times.Add(Stopwatch.GetElapsedTime(t).TotalMilliseconds);
            work.Image!.Dispose();
        }
        double? bareMs = model is { } k && bare.TryGetValue(k, out var b) ? b : null;
        rows.Add(new Row($"{w}x{h}", name, Median(times), bareMs));
        Console.WriteLine(
            $"  {w}x{h} {name, -7} {Median(times), 7:F2} ms/frame"
                + (bareMs is { } bm ? $"  (bare session.Run {bm:F2} ms, x{Median(times) / bm:F2})" : "")
        );
    }

    // End to end, as a worker does it: decode, steps (detection on every frame), encode; 1 and 2 threads.
    foreach (
        var (label, flags) in new[]
        {
            ("detect+matte", AiSteps.Detect | AiSteps.Matte),
            ("detect+swap", AiSteps.Swap),
            ("detect+mesh+swap+matte", AiSteps.Swap | AiSteps.Matte),
        }
    )
    {
        foreach (var threads in new[] { 1, 2 })
        {
            var fps = EndToEnd(jpeg, Settings(flags), threads, seconds);
            e2e.Add(new E2e($"{w}x{h}", label, threads, fps));
            Console.WriteLine($"  {w}x{h} {label, -24} {threads} thread(s): {fps, 6:F1} processed fps");
        }
    }
}

var result = new
{
    machine = $"{Environment.ProcessorCount} cores",
    date = DateTime.UtcNow.ToString("u"),
    device,
    steps = rows,
    end_to_end = e2e,
};
if (opt.JsonPath is not null)
    File.WriteAllText(
        opt.JsonPath,
        JsonSerializer.Serialize(result, new JsonSerializerOptions { WriteIndented = true })
    );
if (opt.MdPath is not null)
    File.WriteAllText(opt.MdPath, Markdown(rows, e2e));
return 0;

EffectiveSettings Settings(AiSteps s) =>
    new(
        true,
        false,
        80,
        0,
        1,
        false,
        1,
        s,
        MatteBackground.Green,
        FaceDetectInterval: 1,
        SimpleForward: false,
        ReferenceVersion: 1,
        DepthMode: "colormap"
    );

static FrameWork Work(byte[] jpeg, EffectiveSettings settings, string source, string device)
{
    var envelope = new FrameEnvelope(source, 0, 0, FrameKind.Raw, 0, FrameOrigin.VideoIn, jpeg);
    var work = new FrameWork(new ProcessRequest(envelope, settings)) { Device = device };
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
    var workers = Enumerable
        .Range(0, threads)
        .Select(t => new Thread(() =>
        {
            var source = $"e2e-{t}";
            while (Stopwatch.GetTimestamp() < stop)
            {
                var work = Work(jpeg, settings, source, device);
                foreach (var s in steps)
                {
                    if (s.AppliesTo(settings) && !work.Failed)
                        s.Run(new ReadOnlySpan<FrameWork>(ref work));
                }
                JpegCodec.Encode(work);
                work.Image?.Dispose();
                if (work.Failed)
                    throw new InvalidOperationException(work.Error);
                if (Stopwatch.GetTimestamp() >= warm)
                {
                    Interlocked.CompareExchange(ref start, Stopwatch.GetTimestamp(), 0);
                    Interlocked.Increment(ref counted);
                }
                Interlocked.Increment(ref frames);
            }
        }))
        .ToList();
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
        if (i >= 10)
            times.Add(Stopwatch.GetElapsedTime(t).TotalMilliseconds);
    }
    return Median(times);
}

static double Median(List<double> xs) => Stats.Median(xs);

static string Markdown(List<Row> rows, List<E2e> e2e)
{
    var md = new StringBuilder();
    md.AppendLine("| size | step | ms per frame (median) | bare session.Run ms | step / bare |");
    md.AppendLine("| --- | --- | --- | --- | --- |");
    foreach (var r in rows)
        md.AppendLine(
            CultureInfo.InvariantCulture,
            $"| {r.Size} | {r.Step} | {r.Ms:F2} | {(r.BareMs is { } b ? b.ToString("F2", CultureInfo.InvariantCulture) : "-")} | {(r.BareMs is { } b2 ? (r.Ms / b2).ToString("F2", CultureInfo.InvariantCulture) : "-")} |"
        );
    md.AppendLine();
    md.AppendLine(
        "| size | steps (detection every frame) | threads | processed fps (decode + steps + encode) | vs goal 60 fps |"
    );
    md.AppendLine("| --- | --- | --- | --- | --- |");
    foreach (var x in e2e)
        md.AppendLine(
            CultureInfo.InvariantCulture,
            $"| {x.Size} | {x.Steps} | {x.Threads} | {x.Fps:F1} | {x.Fps / 60:F2}x |"
        );
    return md.ToString();
}

// A bench input: under --root when given; else next to the binary (the build copies it into media/, so a
// published bench finds it too); else in the repository around the binary or the current folder.
static string Media(string? root, string file, string repoFolder)
{
    if (root is not null)
    {
        foreach (
            var p in new[]
            {
                Path.Combine(root, repoFolder, file),
                Path.Combine(root, "media", file),
                Path.Combine(root, file),
            }
        )
        {
            if (File.Exists(p))
                return p;
        }
        throw new FileNotFoundException(
            $"{file} is not under --root {root} ({repoFolder}/, media/ or the folder itself)"
        );
    }
    var beside = Path.Combine(AppContext.BaseDirectory, "media", file);
    if (File.Exists(beside))
        return beside;
    foreach (var start in new[] { AppContext.BaseDirectory, Environment.CurrentDirectory })
    {
        for (var d = new DirectoryInfo(start); d is not null; d = d.Parent)
        {
            var p = Path.Combine(d.FullName, repoFolder, file);
            if (File.Exists(p) && File.Exists(Path.Combine(d.FullName, "Blankend.Orleans.sln")))
                return p;
        }
    }
    throw new FileNotFoundException(
        $"{file} not found: not in {Path.Combine(AppContext.BaseDirectory, "media")} nor in a repository around the binary or the current folder (give --root DIR)"
    );
}

internal sealed record Row(string Size, string Step, double Ms, double? BareMs);

internal sealed record E2e(string Size, string Steps, int Threads, double Fps);

internal sealed record ProviderRow(string Device, string Model, string Provider, string Reason);

internal sealed record WindowRow(string Label, long FromUnixMs, long ToUnixMs);
