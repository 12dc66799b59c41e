using System.Net.Http.Json;
using System.Text.Json;
using Blankend.Orleans.Ai;
using Blankend.Orleans.Configuration;
using Blankend.Orleans.Grains.Ai.Runtime;
using Blankend.Orleans.Tests.Support;
using Xunit;

namespace Blankend.Orleans.Tests.Ai;

/// <summary>The provider rule (docs/ai.md, "Providers"): a GPU that is wanted and cannot be used is a fallback,
/// named and never silent; no GPU under <c>auto</c> is plain CPU.</summary>
[Trait(TestKind.Name, TestKind.Unit)]
public sealed class AiProviderChoiceTests
{
    private const string CudaMissingCudnn =
        "OnnxRuntimeException: [ErrorCode:RuntimeException] Failed to load library libonnxruntime_providers_cuda.so with error: libcudnn.so.9: cannot open shared object file: No such file or directory";

    private static AiProviderChoice.Host Host(bool gpu, string[] available, Func<string, string?>? load = null) =>
        new(
            gpu,
            gpu ? "nvidia-smi: 1 GPU(s)" : "none: nvidia-smi not on PATH, no /proc/driver/nvidia/gpus",
            available,
            null,
            load ?? (_ => null)
        );

    private static readonly string[] CpuBuild = ["CPUExecutionProvider"];
    private static readonly string[] GpuBuild =
    [
        "TensorrtExecutionProvider",
        "CUDAExecutionProvider",
        "CPUExecutionProvider",
    ];

    [Fact]
    public void AutoWithoutAGpuIsPlainCpuNotAFallback()
    {
        var s = AiProviderChoice.Decide("auto", Host(false, CpuBuild));
        Assert.Equal((AiProviders.Cpu, false), (s.Active, s.Fallback));
        Assert.Contains("no GPU on this host", s.Reason);
    }

    [Fact]
    public void AutoWithAGpuAndTheCudaProviderRunsCuda()
    {
        var s = AiProviderChoice.Decide("auto", Host(true, GpuBuild));
        Assert.Equal((AiProviders.Cuda, false, true), (s.Active, s.Fallback, s.GpuSeen));
    }

    [Fact]
    public void AutoWithAGpuAndTheCpuPackageIsAFallbackNamingTheProviderLibrary()
    {
        var s = AiProviderChoice.Decide("auto", Host(true, CpuBuild));
        Assert.Equal((AiProviders.Cpu, true), (s.Active, s.Fallback));
        Assert.Equal("libonnxruntime_providers_cuda.so", s.MissingLibrary);
        Assert.Contains("-p:BlankendGpu=true", s.Reason);
    }

    [Fact]
    public void ACudaLibraryThatDoesNotLoadIsAFallbackNamingIt()
    {
        var s = AiProviderChoice.Decide("cuda", Host(true, GpuBuild, _ => CudaMissingCudnn));
        Assert.Equal((AiProviders.Cpu, true, "libcudnn.so.9"), (s.Active, s.Fallback, s.MissingLibrary));
        Assert.Contains("cannot open shared object file", s.Reason);
    }

    [Fact]
    public void CudaRequestedWithoutAGpuIsAFallback()
    {
        var s = AiProviderChoice.Decide("cuda", Host(false, GpuBuild));
        Assert.Equal((AiProviders.Cpu, true), (s.Active, s.Fallback));
        Assert.Contains("no GPU was detected", s.Reason);
    }

    [Fact]
    public void TensorRtWithoutItsLibrariesRunsCudaAndSaysWhy()
    {
        var trt =
            "Failed to load library libonnxruntime_providers_tensorrt.so with error: libnvinfer.so.10: cannot open shared object file: No such file or directory";
        var s = AiProviderChoice.Decide("tensorrt", Host(true, GpuBuild, p => p == AiProviders.TensorRt ? trt : null));
        Assert.Equal((AiProviders.Cuda, true, "libnvinfer.so.10"), (s.Active, s.Fallback, s.MissingLibrary));
        Assert.StartsWith("TensorRT unavailable", s.Reason);
    }

    [Fact]
    public void TensorRtThatLoadsIsUsed()
    {
        var s = AiProviderChoice.Decide("tensorrt", Host(true, GpuBuild));
        Assert.Equal((AiProviders.TensorRt, false), (s.Active, s.Fallback));
    }

    [Fact]
    public void CpuIsCpuWhateverTheHostHas()
    {
        var s = AiProviderChoice.Decide(
            "cpu",
            Host(true, GpuBuild, _ => throw new InvalidOperationException("must not load"))
        );
        Assert.Equal((AiProviders.Cpu, false), (s.Active, s.Fallback));
    }

    [Fact]
    public void TheOldUseCudaFalseMeansCpu()
    {
        Assert.Equal("cpu", AiProviderChoice.Requested(new AiOptions { UseCuda = false }));
        Assert.Equal("cuda", AiProviderChoice.Requested(new AiOptions { UseCuda = false, Provider = "cuda" }));
        Assert.Equal("auto", AiProviderChoice.Requested(new AiOptions()));
    }

    [Fact]
    public void AnUnknownProviderIsAStartUpError()
    {
        var r = new AiOptionsValidator().Validate(null, new AiOptions { Provider = "rocm" });
        Assert.True(r.Failed);
        Assert.Contains("ai:provider must be one of auto, cuda, tensorrt, cpu (got 'rocm')", r.FailureMessage);
    }

    [Fact]
    public void AProviderDecidedWhileTheSiloWasBuiltIsTakenAsItIsNotDecidedAgain()
    {
        // ai.require_gpu decides (and probes CUDA) while the silo is built; the silo's runtime takes that decision.
        // The decided state here says CUDA, which this host's own detection and CPU package would never give.
        var decided = new AiProviderState(
            "cuda",
            AiProviders.Cuda,
            true,
            "nvidia-smi: 1 GPU(s)",
            false,
            "decided at build",
            null
        );
        var options = Microsoft.Extensions.Options.Options.Create(new AiOptions { Provider = "cuda" });
        var log = Microsoft.Extensions.Logging.Abstractions.NullLogger<OnnxRuntimeHost>.Instance;
        using var taken = new OnnxRuntimeHost(options, log, null, new AiProviderDecided(decided));
        Assert.Same(decided, taken.ProviderState);

        using var own = new OnnxRuntimeHost(
            Microsoft.Extensions.Options.Options.Create(new AiOptions { Provider = "cpu" }),
            log
        );
        // Without one, the runtime decides for itself (cpu requested: CPU, its own reason).
        Assert.Equal(AiProviders.Cpu, own.ProviderState.Active);
        Assert.NotEqual(decided.Reason, own.ProviderState.Reason);
    }

    [Fact]
    public void ThisMachinesRuntimeAnswersWhatItsGpuDetectionImplies()
    {
        // Whatever the machine: with a GPU seen the state names it; without one, auto is CPU and no fallback.
        using var env = new FaceEnv();
        var s = env.Runtime.ProviderState;
        Assert.Equal(GpuHost.Detected, s.GpuSeen);
        if (!GpuHost.Detected)
            Assert.Equal((AiProviders.Cpu, false), (s.Active, s.Fallback));
        else
            Assert.True(AiProviders.IsGpu(s.Active) || s.Fallback, s.Reason);
    }
}

/// <summary>A host that shows a GPU the service cannot use, as real processes: a stand-in <c>nvidia-smi</c> on
/// PATH (the one fault a machine without a GPU cannot show for real) and the CPU ONNX Runtime package.</summary>
[Trait(TestKind.Name, TestKind.Process)]
public sealed class AiProviderFallbackProcessTests : IDisposable
{
    private readonly string _bin = Directory.CreateTempSubdirectory("blankend-fake-gpu-").FullName;

    public AiProviderFallbackProcessTests()
    {
        var smi = Path.Combine(_bin, "nvidia-smi");
        File.WriteAllText(
            smi,
            "#!/bin/sh\necho 'GPU 0: NVIDIA H200 (UUID: GPU-00000000-fake-0000-0000-000000000000)'\n"
        );
        if (!OperatingSystem.IsWindows())
            File.SetUnixFileMode(smi, UnixFileMode.UserRead | UnixFileMode.UserExecute | UnixFileMode.UserWrite);
    }

    public void Dispose() => Directory.Delete(_bin, recursive: true);

    private Dictionary<string, string> Env(params (string, string)[] extra)
    {
        var env = new Dictionary<string, string> { ["PATH"] = _bin + ":" + Environment.GetEnvironmentVariable("PATH") };
        foreach (var (k, v) in extra)
            env[k] = v;
        return env;
    }

    [Fact]
    public async Task AGpuTheBuildCannotUseMakesModelsDegradedCountsItAndLogsItOnce()
    {
        await using var gw = ServiceProcess.StartGateway(Env(), TestEnv.SiloPortArgs());
        await gw.WaitHealthyAsync();

        var health = await gw.Client.GetFromJsonAsync<JsonElement>("healthz");
        var models = health.GetProperty("components").GetProperty("models");
        Assert.Equal("degraded", models.GetProperty("state").GetString());
        var detail = models.GetProperty("detail").GetString()!;
        Assert.Contains("GPU provider fallback", detail);
        Assert.Contains("missing libonnxruntime_providers_cuda.so", detail);

        var status = await gw.Client.GetFromJsonAsync<JsonElement>("api/v1/ai/status");
        Assert.True(status.GetProperty("provider_fallback").GetBoolean());
        Assert.Equal("CPU", status.GetProperty("provider").GetString());
        var silo = status.GetProperty("silos")[0].GetProperty("provider");
        Assert.Equal(
            ("auto", "CPU", true, true),
            (
                silo.GetProperty("requested").GetString(),
                silo.GetProperty("active").GetString(),
                silo.GetProperty("gpu_seen").GetBoolean(),
                silo.GetProperty("fallback").GetBoolean()
            )
        );

        var metrics = PrometheusText.Parse(await gw.Client.GetStringAsync("metrics"));
        Assert.Equal(1, metrics.Find("blankend_ai_provider_fallback_total").Sum(s => s.Value));
        var lines = gw
            .Output.Split('\n')
            .Where(l => l.Contains("ai provider: auto requested, running on CPU", StringComparison.Ordinal))
            .ToArray();
        Assert.Single(lines);
    }

    [Fact]
    public async Task RequireGpuStopsStartUpWithExitCode2AndOneLine()
    {
        await using var gw = ServiceProcess.StartGateway(
            Env(("BLANKEND_AI_REQUIRE_GPU", "true")),
            TestEnv.SiloPortArgs()
        );
        Assert.True(await gw.WaitExitAsync(TimeSpan.FromSeconds(60)), gw.Output);
        Assert.Equal(2, gw.Process.ExitCode);
        Assert.Contains("configuration error: ai:require_gpu is true but the AI models would run on CPU", gw.Output);
        Assert.Contains("missing library: libonnxruntime_providers_cuda.so", gw.Output);
        Assert.DoesNotContain("   at ", gw.Output);
    }
}
