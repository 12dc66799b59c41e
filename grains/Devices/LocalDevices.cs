using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Configuration;

namespace Blankend.Orleans.Grains.Devices;

/// <summary>
/// The compute devices of THIS silo, found once at start and published in its silo metadata (keys
/// <see cref="DevicesKey"/>, <see cref="GpusKey"/>, <see cref="DetectionKey"/>) so that every silo can place
/// device workers and report GPUs without asking this one.
/// </summary>
internal sealed class LocalDevices
{
    public const string DevicesKey = "blankend_devices";
    public const string GpusKey = "blankend_gpus";
    public const string DetectionKey = "blankend_gpu_detection";

    public LocalDevices(IReadOnlyList<GpuInfo> gpus, string detection, IReadOnlyList<string> devices)
    {
        Gpus = gpus;
        Detection = detection;
        Devices = devices;
    }

    public IReadOnlyList<GpuInfo> Gpus { get; }

    public string Detection { get; }

    /// <summary>Device ids this silo owns: <c>gpuN</c> per GPU, then <c>cpu0</c> (every silo can run the CPU
    /// worker).</summary>
    public IReadOnlyList<string> Devices { get; }

    /// <summary>
    /// Detects GPUs, unless <c>Orleans:Metadata:blankend_devices</c> names the devices explicitly (a cluster
    /// with several GPU hosts gives each its own ids, e.g. "gpu0,gpu1,cpu0" and "gpu2,gpu3,cpu0").
    /// </summary>
    public static LocalDevices Create(IConfiguration config)
    {
        var detected = GpuDetector.Detect();
        var explicitDevices = config[$"Orleans:Metadata:{DevicesKey}"];
        IReadOnlyList<string> devices;
        if (!string.IsNullOrWhiteSpace(explicitDevices))
        {
            devices = ParseList(explicitDevices);
        }
        else
        {
            var list = new List<string>();
            foreach (var g in detected.Gpus)
                list.Add("gpu" + g.Index.ToString(CultureInfo.InvariantCulture));
            list.Add("cpu0");
            devices = list;
        }
        return new LocalDevices(detected.Gpus, detected.Detection, devices);
    }

    /// <summary>The silo metadata entries (merged with any other <c>Orleans:Metadata</c> keys).</summary>
    public Dictionary<string, string> ToMetadata(IConfiguration config)
    {
        var md = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var child in config.GetSection("Orleans:Metadata").GetChildren())
        {
            if (child.Value is not null)
                md[child.Key] = child.Value;
        }
        md[DevicesKey] = string.Join(',', Devices);
        md[GpusKey] = FormatGpus(Gpus);
        md[DetectionKey] = Detection;
        return md;
    }

    public static string[] ParseList(string? value) =>
        string.IsNullOrWhiteSpace(value)
            ? []
            : value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    public static string FormatGpus(IEnumerable<GpuInfo> gpus) =>
        string.Join(
            ';',
            gpus.Select(g =>
                $"{g.Index.ToString(CultureInfo.InvariantCulture)}|{g.Name.Replace('|', '/').Replace(';', ',')}|{g.Uuid}"
            )
        );

    public static GpuInfo[] ParseGpus(string? value)
    {
        if (string.IsNullOrWhiteSpace(value))
            return [];
        var list = new List<GpuInfo>();
        foreach (var item in value.Split(';', StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = item.Split('|');
            if (
                parts.Length >= 2
                && int.TryParse(parts[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out var index)
            )
                list.Add(new GpuInfo(index, parts[1], parts.Length > 2 && parts[2].Length > 0 ? parts[2] : null));
        }
        return [.. list];
    }

    public static bool IsGpu(string device) => device.StartsWith("gpu", StringComparison.Ordinal);
}

/// <summary>Finds NVIDIA GPUs: <c>nvidia-smi -L</c> when it is on PATH, else <c>/proc/driver/nvidia/gpus</c>.
/// No GPU is a valid answer; the text says how it was looked for.</summary>
internal static class GpuDetector
{
    public sealed record Result(GpuInfo[] Gpus, string Detection);

    public static Result Detect()
    {
        var smi = FindOnPath("nvidia-smi");
        string? smiProblem = null;
        if (smi is not null)
        {
            try
            {
                var output = Run(smi, "-L", TimeSpan.FromSeconds(5));
                var gpus = ParseNvidiaSmiList(output);
                if (gpus.Length > 0)
                    return new Result(gpus, $"nvidia-smi: {gpus.Length} GPU(s)");
                smiProblem = "nvidia-smi listed no GPU";
            }
            catch (Exception e)
            {
                smiProblem = $"nvidia-smi failed: {e.Message}";
            }
        }
        var proc = ReadProcGpus("/proc/driver/nvidia/gpus");
        if (proc.Length > 0)
            return new Result(
                proc,
                $"/proc/driver/nvidia/gpus: {proc.Length} GPU(s)" + (smiProblem is null ? "" : $" ({smiProblem})")
            );
        var why = smiProblem ?? "nvidia-smi not on PATH";
        return new Result([], $"none: {why}, no /proc/driver/nvidia/gpus");
    }

    /// <summary>Parses lines like <c>GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-5c1f...)</c>.</summary>
    public static GpuInfo[] ParseNvidiaSmiList(string output)
    {
        var list = new List<GpuInfo>();
        foreach (var raw in output.Split('\n'))
        {
            var line = raw.Trim();
            if (!line.StartsWith("GPU ", StringComparison.Ordinal))
                continue;
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (
                colon < 0
                || !int.TryParse(
                    line.AsSpan(4, colon - 4),
                    NumberStyles.Integer,
                    CultureInfo.InvariantCulture,
                    out var index
                )
            )
                continue;
            var rest = line[(colon + 1)..].Trim();
            string? uuid = null;
            var u = rest.LastIndexOf("(UUID:", StringComparison.Ordinal);
            if (u >= 0)
            {
                uuid = rest[(u + 6)..].TrimEnd(')').Trim();
                rest = rest[..u].Trim();
            }
            list.Add(new GpuInfo(index, rest, uuid));
        }
        return [.. list];
    }

    private static GpuInfo[] ReadProcGpus(string dir)
    {
        try
        {
            if (!Directory.Exists(dir))
                return [];
            var list = new List<GpuInfo>();
            var i = 0;
            foreach (var d in Directory.GetDirectories(dir).Order(StringComparer.Ordinal))
            {
                var info = Path.Combine(d, "information");
                list.Add(
                    File.Exists(info)
                        ? ParseProcInformation(File.ReadAllText(info), i)
                        : new GpuInfo(i, "NVIDIA GPU", null)
                );
                i++;
            }
            return [.. list];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
        }
    }

    /// <summary>Parses <c>/proc/driver/nvidia/gpus/BUS/information</c> (<c>Model: \t\t NVIDIA H100 80GB HBM3</c>,
    /// <c>GPU UUID: \t GPU-...</c>, <c>Device Minor: \t 0</c>).</summary>
    public static GpuInfo ParseProcInformation(string text, int fallbackIndex)
    {
        string name = "NVIDIA GPU";
        string? uuid = null;
        var index = fallbackIndex;
        foreach (var line in text.Split('\n'))
        {
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon < 0)
                continue;
            var key = line[..colon].Trim();
            var value = line[(colon + 1)..].Trim();
            switch (key)
            {
                case "Model":
                    name = value;
                    break;
                case "GPU UUID":
                    uuid = value;
                    break;
                case "Device Minor"
                    when int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var minor):
                    index = minor;
                    break;
            }
        }
        return new GpuInfo(index, name, uuid);
    }

    private static string? FindOnPath(string name)
    {
        foreach (
            var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(
                ':',
                StringSplitOptions.RemoveEmptyEntries
            )
        )
        {
            var p = Path.Combine(dir, name);
            if (File.Exists(p))
                return p;
        }
        return null;
    }

    private static string Run(string file, string args, TimeSpan timeout)
    {
        var psi = new ProcessStartInfo(file, args)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("could not start " + file);
        var stdout = p.StandardOutput.ReadToEndAsync();
        if (!p.WaitForExit(timeout))
        {
            try
            {
                p.Kill(true);
            }
            catch (InvalidOperationException) { }
            throw new TimeoutException($"{file} {args} did not answer in {timeout.TotalSeconds} s");
        }
        if (p.ExitCode != 0)
            throw new InvalidOperationException($"exit code {p.ExitCode}: {p.StandardError.ReadToEnd().Trim()}");
        return stdout.GetAwaiter().GetResult();
    }
}
