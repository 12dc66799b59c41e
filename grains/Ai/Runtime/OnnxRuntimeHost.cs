using System.Collections.Concurrent;
using Blankend.Orleans.Ai;
using Blankend.Orleans.Configuration;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.ML.OnnxRuntime;

namespace Blankend.Orleans.Grains.Ai.Runtime;

/// <summary>
/// Per-silo owner of the ONNX Runtime sessions: one session per (model, device), created on first use and
/// reused by every frame and source (sessions are thread-safe for Run). On a <c>gpuN</c> device the CUDA
/// execution provider is appended when the installed ONNX Runtime has it (the CPU package lists only
/// CPUExecutionProvider, and its CUDA entry points throw); otherwise the CPU provider runs it, and the status
/// says which and why. A model that is missing or does not load is reported unavailable with the reason, once.
/// </summary>
internal sealed partial class OnnxRuntimeHost : IDisposable
{
    private readonly AiOptions _options;
    private readonly ILogger<OnnxRuntimeHost> _log;
    private readonly ConcurrentDictionary<(AiModelKind, string), Lazy<OnnxModel?>> _sessions = new();
    private readonly ConcurrentDictionary<AiModelKind, string> _errors = new();
    private readonly Lazy<(string[] Providers, string? Error)> _providers = new(ReadProviders);

    public OnnxRuntimeHost(IOptions<AiOptions> options, ILogger<OnnxRuntimeHost> log)
    {
        _options = options.Value;
        _log = log;
        AiMetrics.Hosts.TryAdd(this, 0);
    }

    public AiOptions Options => _options;

    /// <summary>Execution providers the installed ONNX Runtime offers (e.g. CPUExecutionProvider, CUDAExecutionProvider).</summary>
    public IReadOnlyList<string> AvailableProviders => _providers.Value.Providers;

    public bool CudaAvailable => Array.IndexOf(_providers.Value.Providers, "CUDAExecutionProvider") >= 0;

    /// <summary>The model file for a kind: the configured path, else the shipped file; null when the kind has no
    /// shipped model and none is configured.</summary>
    public string? PathOf(AiModelKind kind)
    {
        var configured = kind switch
        {
            AiModelKind.FaceDetect => _options.FaceDetectModel,
            AiModelKind.Swap => _options.SwapModel,
            AiModelKind.Rvm => _options.RvmModel,
            AiModelKind.Depth => _options.DepthModel,
            AiModelKind.ArcFace => _options.ArcfaceModel,
            AiModelKind.Enhancer => _options.EnhancerModel,
            _ => "",
        };
        if (!string.IsNullOrWhiteSpace(configured)) return Path.GetFullPath(configured);
        if (InsightFacePack.Pick(_options.InsightfaceDir, kind) is { } packed) return packed;
        var shipped = kind switch
        {
            AiModelKind.FaceDetect => "blazeface_front_128.onnx",
            AiModelKind.FaceMesh => "face_landmark.onnx",
            AiModelKind.Segmentation => "selfie_segmentation.onnx",
            AiModelKind.SegmentationLandscape => "selfie_segmentation_landscape.onnx",
            _ => null,
        };
        if (shipped is null) return null;
        var dir = string.IsNullOrWhiteSpace(_options.ModelsDir) ? Path.Combine(AppContext.BaseDirectory, "models") : Path.GetFullPath(_options.ModelsDir);
        return Path.Combine(dir, shipped);
    }

    /// <summary>Why a kind is unavailable (null when it loaded or was never tried and has a file).</summary>
    public string? UnavailableReason(AiModelKind kind)
    {
        if (_errors.TryGetValue(kind, out var e)) return e;
        var path = PathOf(kind);
        if (path is null) return $"no model configured ({EnvName(kind)})";
        if (!File.Exists(path)) return $"model file not found: {path}";
        return null;
    }

    /// <summary>The session of a model on a device, loading it on first use; null when unavailable
    /// (<see cref="UnavailableReason"/> says why). Never throws.</summary>
    public OnnxModel? Get(AiModelKind kind, string device)
    {
        var lazy = _sessions.GetOrAdd((kind, device), k => new Lazy<OnnxModel?>(() => Load(k.Item1, k.Item2), LazyThreadSafetyMode.ExecutionAndPublication));
        return lazy.Value;
    }

    /// <summary>The sessions loaded so far (status).</summary>
    public IEnumerable<OnnxModel> Loaded()
    {
        foreach (var l in _sessions.Values)
        {
            if (l.IsValueCreated && l.Value is { } m) yield return m;
        }
    }

    private OnnxModel? Load(AiModelKind kind, string device)
    {
        var path = PathOf(kind);
        if (path is null || !File.Exists(path))
        {
            var why = path is null ? $"no model configured ({EnvName(kind)})" : $"model file not found: {path}";
            _errors[kind] = why;
            LogUnavailable(kind, why);
            return null;
        }
        var (provider, reason) = ChooseProvider(device);
        SessionOptions? so = null;
        try
        {
            so = NewOptions();
            if (provider == "CUDA")
            {
                try
                {
                    so.AppendExecutionProvider_CUDA(GpuIndex(device));
                }
                catch (Exception e) when (e is EntryPointNotFoundException or OnnxRuntimeException or DllNotFoundException)
                {
                    so.Dispose();
                    so = NewOptions();
                    provider = "CPU";
                    reason = $"CUDA provider did not load ({e.GetType().Name}: {e.Message}); running on CPU";
                }
            }
            var session = new InferenceSession(path, so);
            var model = new OnnxModel(kind, device, path, session, so, provider, reason);
            so = null;
            _errors.TryRemove(kind, out _);
            LogLoaded(kind, device, path, provider, reason);
            return model;
        }
        catch (Exception e) when (e is OnnxRuntimeException or IOException or UnauthorizedAccessException or DllNotFoundException or TypeInitializationException)
        {
            so?.Dispose();
            var why = $"model did not load: {path}: {e.GetBaseException().Message}";
            _errors[kind] = why;
            LogUnavailable(kind, why);
            return null;
        }
    }

    private SessionOptions NewOptions() => new()
    {
        // The BlazeFace files trigger harmless "Removing initializer" warnings on load.
        LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR,
        IntraOpNumThreads = _options.IntraOpThreads,
        InterOpNumThreads = 1,
        ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
        GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
    };

    /// <summary>(provider, reason) for a device, before loading.</summary>
    public (string Provider, string Reason) ChooseProvider(string device)
    {
        if (!device.StartsWith("gpu", StringComparison.Ordinal)) return ("CPU", "cpu device");
        if (!_options.UseCuda) return ("CPU", "ai:use_cuda is false");
        var (providers, error) = _providers.Value;
        if (error is not null) return ("CPU", $"ONNX Runtime providers unreadable: {error}");
        if (Array.IndexOf(providers, "CUDAExecutionProvider") < 0)
            return ("CPU", $"this ONNX Runtime build has no CUDA provider ({string.Join(", ", providers)}); build with -p:OnnxRuntimePackage=Microsoft.ML.OnnxRuntime.Gpu");
        return ("CUDA", $"CUDAExecutionProvider on device {GpuIndex(device)}");
    }

    private static int GpuIndex(string device) => int.TryParse(device.AsSpan(3), out var i) ? i : 0;

    public static string EnvName(AiModelKind kind) => kind switch
    {
        AiModelKind.FaceDetect => "FACE_DETECT_MODEL / ai:face_detect_model",
        AiModelKind.Swap => "SWAP_MODEL / ai:swap_model",
        AiModelKind.Rvm => "RVM_MODEL / ai:rvm_model",
        AiModelKind.Depth => "DEPTH_MODEL / ai:depth_model",
        AiModelKind.ArcFace => "ARCFACE_MODEL / ai:arcface_model, or INSIGHTFACE_APP / ai:insightface_dir",
        AiModelKind.Enhancer => "ENHANCER_MODEL / ai:enhancer_model",
        _ => "ai:models_dir",
    };

    private static (string[], string?) ReadProviders()
    {
        try
        {
            return (OrtEnv.Instance().GetAvailableProviders(), null);
        }
        catch (Exception e) when (e is OnnxRuntimeException or DllNotFoundException or TypeInitializationException or EntryPointNotFoundException)
        {
            return ([], e.GetBaseException().Message);
        }
    }

    public void Dispose()
    {
        AiMetrics.Hosts.TryRemove(this, out _);
        foreach (var l in _sessions.Values)
        {
            if (l.IsValueCreated) l.Value?.Dispose();
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "ai model {Kind} on {Device}: {Path} loaded, provider {Provider} ({Reason})")]
    private partial void LogLoaded(AiModelKind kind, string device, string path, string provider, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "ai model {Kind} unavailable: {Why}; its step is skipped (counted) and frames flow unchanged")]
    private partial void LogUnavailable(AiModelKind kind, string why);
}

/// <summary>One loaded session: the model, the device it is for, and the provider that runs it.</summary>
internal sealed class OnnxModel(AiModelKind kind, string device, string path, InferenceSession session, SessionOptions options, string provider, string providerReason) : IDisposable
{
    public AiModelKind Kind { get; } = kind;
    public string Device { get; } = device;
    public string Path { get; } = path;
    public InferenceSession Session { get; } = session;
    /// <summary>"CUDA" or "CPU".</summary>
    public string Provider { get; } = provider;
    public string ProviderReason { get; } = providerReason;

    public void Dispose()
    {
        Session.Dispose();
        options.Dispose();
    }
}
