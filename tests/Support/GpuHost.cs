using Blankend.Orleans.Grains.Devices;
using Xunit;

namespace Blankend.Orleans.Tests.Support;

/// <summary>Whether this machine shows a GPU (the service's own detection: nvidia-smi, /proc/driver/nvidia):
/// the tests that depend on it derive their expectations from it instead of assuming a CPU-only machine.</summary>
public static class GpuHost
{
    private static readonly Lazy<bool> Seen = new(() => GpuDetector.Detect().Gpus.Length > 0);

    public static bool Detected => Seen.Value;

    /// <summary>True when a GPU is seen AND the build carries ONNX Runtime's CUDA provider
    /// (-p:BlankendGpu=true).</summary>
    public static bool CudaBuild =>
        Detected
        && Microsoft.ML.OnnxRuntime.OrtEnv.Instance().GetAvailableProviders().Contains("CUDAExecutionProvider");
}

/// <summary>A test that needs a GPU and the GPU build of ONNX Runtime; skipped, with the reason, elsewhere.</summary>
public sealed class GpuFactAttribute : FactAttribute
{
    public GpuFactAttribute()
    {
        if (!GpuHost.Detected)
            Skip = "no GPU on this machine (nvidia-smi / /proc/driver/nvidia found none)";
        else if (!GpuHost.CudaBuild)
            Skip = "a GPU is present but this build has no CUDA provider (build the tests with -p:BlankendGpu=true)";
    }
}
