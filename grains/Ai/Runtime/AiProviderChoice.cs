using System.Text.RegularExpressions;
using Blankend.Orleans.Ai;
using Blankend.Orleans.Configuration;
using Microsoft.ML.OnnxRuntime;

namespace Blankend.Orleans.Grains.Ai.Runtime;

/// <summary>
/// Which execution provider the gpuN devices' sessions use, decided once per silo from <c>ai.provider</c>, the
/// GPUs this host shows (nvidia-smi, /proc/driver/nvidia) and what the installed ONNX Runtime can load. The
/// rule: a GPU that is wanted (auto with a GPU seen, cuda, tensorrt) and cannot be used is a <b>fallback</b>,
/// never silent (the status, /healthz and a counter say so); no GPU under <c>auto</c> is plain CPU.
/// </summary>
internal static partial class AiProviderChoice
{
    public const string Auto = "auto",
        Cuda = "cuda",
        TensorRt = "tensorrt",
        Cpu = "cpu";

    public const string CudaProviderName = "CUDAExecutionProvider";
    public const string TensorRtProviderName = "TensorrtExecutionProvider";

    /// <summary>What the choice needs to know about the host and the runtime.</summary>
    /// <param name="TryLoad">Loads a GPU provider (AiProviders.Cuda or AiProviders.TensorRt) for real: null when
    /// it loaded, else the loader's error.</param>
    internal sealed record Host(
        bool GpuSeen,
        string Detection,
        IReadOnlyList<string> Available,
        string? ProvidersError,
        Func<string, string?> TryLoad
    );

    /// <summary>The effective request: <c>use_cuda: false</c> (the old switch) turns <c>auto</c> into
    /// <c>cpu</c>.</summary>
    public static string Requested(AiOptions options) =>
        options.Provider == Auto && !options.UseCuda ? Cpu : options.Provider;

    public static AiProviderState Decide(string requested, Host host)
    {
        if (requested == Cpu)
            return State(AiProviders.Cpu, false, "ai.provider is cpu", null);
        if (!host.GpuSeen)
        {
            return requested == Auto
                ? State(AiProviders.Cpu, false, $"no GPU on this host ({host.Detection})", null)
                : State(
                    AiProviders.Cpu,
                    true,
                    $"ai.provider is {requested} but no GPU was detected ({host.Detection})",
                    null
                );
        }
        if (host.ProvidersError is { } unreadable)
            return State(
                AiProviders.Cpu,
                true,
                $"ONNX Runtime could not list its providers: {unreadable}",
                MissingLibrary(unreadable)
            );

        string? trtProblem = null;
        if (requested == TensorRt)
        {
            trtProblem = host.Available.Contains(TensorRtProviderName)
                ? host.TryLoad(AiProviders.TensorRt)
                : "this ONNX Runtime build has no TensorRT provider";
            if (trtProblem is null)
                return State(
                    AiProviders.TensorRt,
                    false,
                    "TensorrtExecutionProvider (CUDA for the nodes it does not take)",
                    null
                );
        }

        var cudaProblem = host.Available.Contains(CudaProviderName)
            ? host.TryLoad(AiProviders.Cuda)
            : $"this build's ONNX Runtime has no CUDA provider (providers: {string.Join(", ", host.Available)}); "
                + "build or publish with -p:BlankendGpu=true (Microsoft.ML.OnnxRuntime.Gpu.Linux)";
        var missing =
            cudaProblem is null ? null
            : host.Available.Contains(CudaProviderName) ? MissingLibrary(cudaProblem)
            : "libonnxruntime_providers_cuda.so";
        if (trtProblem is not null)
        {
            var trtMissing = MissingLibrary(trtProblem);
            return cudaProblem is null
                ? State(AiProviders.Cuda, true, $"TensorRT unavailable: {trtProblem}; running on CUDA", trtMissing)
                : State(
                    AiProviders.Cpu,
                    true,
                    $"TensorRT unavailable: {trtProblem}; CUDA unavailable: {cudaProblem}; running on CPU",
                    trtMissing ?? missing
                );
        }
        return cudaProblem is null
            ? State(AiProviders.Cuda, false, $"{CudaProviderName} ({host.Detection})", null)
            : State(
                AiProviders.Cpu,
                true,
                $"a GPU is present ({host.Detection}) but the CUDA provider did not load: {cudaProblem}; running on CPU",
                missing
            );

        AiProviderState State(string active, bool fallback, string reason, string? lib) =>
            new(requested, active, host.GpuSeen, host.Detection, fallback, reason, lib);
    }

    /// <summary>The shared library a loader error names as missing ("libcudnn.so.9: cannot open shared object
    /// file"), or null.</summary>
    public static string? MissingLibrary(string error)
    {
        var m = MissingLibraryPattern().Match(error);
        return m.Success ? m.Groups[1].Value : null;
    }

    [GeneratedRegex(@"(lib[\w+.-]+?\.so(?:\.\d+)*)\s*:\s*cannot open shared object file")]
    private static partial Regex MissingLibraryPattern();

    /// <summary>Appends the chosen GPU provider to a session's options (TensorRT first, then CUDA for the nodes
    /// TensorRT leaves).</summary>
    public static void Append(SessionOptions so, string active, int gpu, string tensorRtCacheDir)
    {
        if (active == AiProviders.TensorRt)
        {
            Directory.CreateDirectory(tensorRtCacheDir);
            using var trt = new OrtTensorRTProviderOptions();
            trt.UpdateOptions(
                new Dictionary<string, string>(StringComparer.Ordinal)
                {
                    ["device_id"] = gpu.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    ["trt_engine_cache_enable"] = "1",
                    ["trt_engine_cache_path"] = tensorRtCacheDir,
                    ["trt_timing_cache_enable"] = "1",
                    ["trt_timing_cache_path"] = tensorRtCacheDir,
                }
            );
            so.AppendExecutionProvider_Tensorrt(trt);
        }
        if (active is AiProviders.TensorRt or AiProviders.Cuda)
            so.AppendExecutionProvider_CUDA(gpu);
    }
}
