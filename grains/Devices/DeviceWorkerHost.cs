using System.Diagnostics;
using System.Threading.Channels;
using Blankend.Orleans.Configuration;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Blankend.Orleans.Grains.Devices;

/// <summary>
/// Per-silo owner of the device worker loops (one <see cref="DeviceLoop"/> per device id used on this silo).
/// Creating a loop object starts nothing: its threads start on the first frame and end after
/// <c>video_processing.idle_stop_ms</c> without work, so a silo with processing off has no worker thread.
/// </summary>
internal sealed partial class DeviceWorkerHost : IDisposable
{
    private readonly Dictionary<string, DeviceLoop> _loops = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();
    private readonly VideoProcessingOptions _options;
    private readonly ILogger<DeviceWorkerHost> _log;
    private readonly CancellationTokenSource _stop = new();
    private readonly Lazy<(bool? Cuda, string Detail)> _openCvCuda = new(JpegCodec.OpenCvCuda);

    private readonly AiOptions _ai;

    public DeviceWorkerHost(
        IOptions<VideoProcessingOptions> options,
        IOptions<AiOptions> ai,
        ILogger<DeviceWorkerHost> log,
        IEnumerable<IFrameStep> steps
    )
    {
        _options = options.Value;
        _ai = ai.Value;
        _log = log;
        Steps = [.. steps];
        // Short and unique per host: thread names are cut to 15 characters on Linux (/proc/self/task/*/comm).
        Tag = "bk" + Random.Shared.Next(0x1000, 0xFFFF).ToString("x4");
    }

    /// <summary>Prefix of this host's worker thread names.</summary>
    public string Tag { get; }

    public IReadOnlyList<IFrameStep> Steps { get; }

    public DeviceLoop Get(string device)
    {
        lock (_gate)
        {
            if (!_loops.TryGetValue(device, out var loop))
            {
                _loops[device] = loop = new DeviceLoop(this, device, _options, _ai, _stop.Token);
            }
            return loop;
        }
    }

    /// <summary>(device, provider, queue depth) of every loop this host has (metrics).</summary>
    public IEnumerable<(string Device, string Provider, int QueueDepth)> Snapshot()
    {
        DeviceLoop[] loops;
        lock (_gate)
            loops = [.. _loops.Values];
        foreach (var l in loops)
            yield return (l.Device, l.Provider.Name, l.QueueDepth);
    }

    /// <summary>
    /// The codec provider of a device: CUDA only when a CUDA JPEG codec is actually in use. This build's JPEG
    /// codec is OpenCV's (libjpeg-turbo) on the CPU, on GPU devices too; the reason says so, never silently.
    /// </summary>
    internal (string Name, string Reason) ProviderFor(string device)
    {
        if (!LocalDevices.IsGpu(device))
            return ("CPU", "cpu device: OpenCV (libjpeg-turbo) JPEG codec");
        var (cuda, detail) = _openCvCuda.Value;
        return (
            "CPU",
            cuda == true
                ? $"{detail}; this build has no CUDA JPEG codec path yet, the JPEG codec runs on the CPU of the GPU host"
                : $"{detail}: the JPEG codec runs on the CPU of the GPU host"
        );
    }

    public void Dispose()
    {
        _stop.Cancel();
        DeviceLoop[] loops;
        lock (_gate)
            loops = [.. _loops.Values];
        foreach (var l in loops)
            l.FailQueued("silo stopping");
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "device {Device}: worker loop {Thread} started")]
    internal partial void LogLoopStarted(string device, string thread);

    [LoggerMessage(Level = LogLevel.Information, Message = "device {Device}: worker loop {Thread} stopped ({Reason})")]
    internal partial void LogLoopStopped(string device, string thread, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "device {Device}: batch failed")]
    internal partial void LogBatchFailed(Exception e, string device);
}
