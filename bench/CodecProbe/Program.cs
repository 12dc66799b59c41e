// Decoder check of one host, without Orleans: what the silo's start-up probe sees, then real decode sessions
// (the service's own DecodeSession class and ffmpeg command lines) on Annex-B files.
// dotnet run --project bench/CodecProbe -c Release -- [--ffmpeg PATH] [--cpu] [--seconds S] [--probe-size BYTES]
// FILE.h264|FILE.hevc ...
// For each file: a live-paced run (the whole file spread over S seconds, default 10: give the file's duration;
// first-frame latency) and a full-speed run (decode throughput), with the decoder the silo would choose (GPU when
// its probe decode succeeds).
// --probe-size sets ffmpeg's probesize (codec:probe_size, default 4096; the first-frame latency depends on it).
// --cpu forces the CPU decoder (comparison). A file named *444* is expected to fail on NVDEC (4:4:4 H.264 is not
// supported) and shows the GPU -> CPU fallback on real hardware.
using System.Diagnostics;
using Blankend.Orleans;
using Blankend.Orleans.Codec;
using Blankend.Orleans.Grains.Codec;
using Microsoft.Extensions.Logging.Abstractions;

var ffmpeg = "ffmpeg";
var forceCpu = false;
var liveSeconds = 10.0;
var probeSize = 4096;
var files = new List<string>();
for (var i = 0; i < args.Length; i++)
{
    if (args[i] == "--ffmpeg")
        ffmpeg = args[++i];
    else if (args[i] == "--cpu")
        forceCpu = true;
    else if (args[i] == "--probe-size")
        probeSize = int.Parse(args[++i], System.Globalization.CultureInfo.InvariantCulture);
    else if (args[i] == "--seconds")
        liveSeconds = double.Parse(args[++i], System.Globalization.CultureInfo.InvariantCulture);
    else
        files.Add(args[i]);
}

var caps = await FfmpegProber.ProbeAsync(ffmpeg, preferGpu: true);
Console.WriteLine(
    $"ffmpeg: {caps.ResolvedPath ?? caps.ConfiguredPath} version {caps.Version} available={caps.Available} {caps.Error}"
);
Console.WriteLine(
    $"cpu decoders: {string.Join(",", caps.CpuDecoders)}; gpu decoders listed: {string.Join(",", caps.GpuDecoders)}; hwaccels: {string.Join(",", caps.Hwaccels)}"
);
foreach (var p in caps.GpuProbes)
    Console.WriteLine($"gpu probe {p.Decoder}: ok={p.Ok} {p.Detail} ({p.Ms} ms)");
var (usable, reason) = DecoderSelector.GpuState(caps, null);
Console.WriteLine($"gpu usable: {usable} ({reason})");
if (!caps.Available)
    return 2;

foreach (var file in files)
{
    var codec =
        file.EndsWith(".hevc", StringComparison.OrdinalIgnoreCase) || file.EndsWith(".265", StringComparison.Ordinal)
            ? VideoCodecs.Hevc
            : VideoCodecs.H264;
    var data = await File.ReadAllBytesAsync(file);
    var choice = DecoderSelector.Choose(codec, caps);
    var plan = forceCpu ? DecoderPlan.Cpu(codec) : choice.Primary!;
    var fallback = forceCpu ? null : choice.Fallback;
    foreach (var live in new[] { true, false })
    {
        var r = await RunAsync(codec, plan, fallback, data, live);
        Console.WriteLine(
            $"{Path.GetFileName(file)} {(live ? "live" : "full-speed")}: decoder {r.Decoder} (restarts {r.Restarts}, fallbacks {r.Fallbacks}), "
                + $"{r.Frames} frames in {r.Seconds:0.00} s = {r.Frames / r.Seconds:0.0} fps, first frame {r.FirstFrameMs} ms after the first chunk, end {r.End}"
        );
    }
}
return 0;

async Task<Result> RunAsync(string codec, DecoderPlan plan, DecoderPlan? fallback, byte[] data, bool live)
{
    var events = new Events();
    long frames = 0;
    long firstTick = 0;
    var settings = new DecodeSession.Settings(
        "probe",
        codec,
        ffmpeg,
        plan,
        fallback,
        probeSize,
        5,
        caps.HasFpsMode,
        TimeSpan.FromSeconds(30),
        30,
        64 * 1024 * 1024
    );
    var session = new DecodeSession(
        settings,
        _ =>
        {
            if (Interlocked.Increment(ref frames) == 1)
                Interlocked.Exchange(ref firstTick, Environment.TickCount64);
            return Task.CompletedTask;
        },
        events,
        NullLogger.Instance
    );
    var rng = new Random(1);
    var start = Environment.TickCount64;
    var watch = Stopwatch.StartNew();
    var duration = TimeSpan.FromSeconds(liveSeconds);
    for (var at = 0; at < data.Length; )
    {
        var n = Math.Min(rng.Next(1000, 16000), data.Length - at);
        if (await session.PushAsync(data.AsMemory(at, n)) is { } ended)
        {
            Console.WriteLine($"  ended early: {ended.Reason} {ended.Detail}");
            break;
        }
        at += n;
        if (live)
        {
            var wait = duration * ((double)at / data.Length) - watch.Elapsed;
            if (wait > TimeSpan.Zero)
                await Task.Delay(wait);
        }
    }
    session.Stop(DecodeEndReasons.ClientClosed);
    var end = await session.Completion;
    var seconds = watch.Elapsed.TotalSeconds;
    return new Result(
        session.Plan.Decoder,
        session.Snapshot().Restarts,
        events.Fallbacks,
        end.Frames,
        seconds,
        firstTick == 0 ? -1 : firstTick - start,
        end.Reason
    );
}

sealed record Result(
    string Decoder,
    int Restarts,
    int Fallbacks,
    long Frames,
    double Seconds,
    long FirstFrameMs,
    string End
);

sealed class Events : DecodeSession.IEvents
{
    public int Fallbacks;

    public void OnGpuFallback(DecodeSession session, string from, string detail)
    {
        Fallbacks++;
        Console.WriteLine($"  GPU fallback from {from}: {detail}");
    }

    public void OnEnded(DecodeSession session, DecodeSessionEnd end) { }
}
