using System.Collections.Concurrent;
using Blankend.Orleans.Ai;
using Blankend.Orleans.Configuration;
using Blankend.Orleans.Grains.Devices;
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
    private readonly Func<GpuDetector.Result> _detectGpus;
    private readonly Lock _providerGate = new();
    private AiProviderState? _provider;

    /// <param name="devices">This silo's devices (the GPU detection made at start); null: detect here.</param>
    /// <param name="decided">The provider already decided while the silo was built (<c>ai.require_gpu</c>):
    /// taken as it is, so the CUDA probe session is not made a second time.</param>
    public OnnxRuntimeHost(
        IOptions<AiOptions> options,
        ILogger<OnnxRuntimeHost> log,
        LocalDevices? devices = null,
        AiProviderDecided? decided = null
    )
    {
        _options = options.Value;
        _log = log;
        _detectGpus = devices is null
            ? GpuDetector.Detect
            : () => new GpuDetector.Result([.. devices.Gpus], devices.Detection);
        AiMetrics.Hosts.TryAdd(this, 0);
        if (decided is not null)
        {
            _provider = decided.State;
            LogProvider(_provider.Requested, _provider.Active, _provider.Reason);
        }
    }

    /// <summary>The provider of the gpuN devices, decided on first use (the silo asks at start); a fallback is
    /// logged once as an error and counted in <c>blankend_ai_provider_fallback_total</c>.</summary>
    public AiProviderState ProviderState
    {
        get
        {
            lock (_providerGate)
            {
                if (_provider is null)
                {
                    var requested = AiProviderChoice.Requested(_options);
                    var gpus =
                        requested == AiProviderChoice.Cpu
                            ? new GpuDetector.Result([], "not looked for (ai.provider is cpu)")
                            : _detectGpus();
                    var seen = gpus.Gpus.Length > 0;
                    // The ONNX Runtime native library is only loaded here when there is a GPU to use or an
                    // explicit GPU request: a CPU host with processing off loads nothing at start.
                    var wantsRuntime = seen || requested is AiProviderChoice.Cuda or AiProviderChoice.TensorRt;
                    var (available, error) = wantsRuntime ? _providers.Value : ([], null);
                    _provider = AiProviderChoice.Decide(
                        requested,
                        new AiProviderChoice.Host(seen, gpus.Detection, available, error, TryLoadProvider)
                    );
                    if (_provider.Fallback)
                        ReportFallback(_provider);
                    else
                        LogProvider(_provider.Requested, _provider.Active, _provider.Reason);
                }
                return _provider;
            }
        }
    }

    private void ReportFallback(AiProviderState state)
    {
        AiMetrics.ProviderFallback.Add(
            1,
            new KeyValuePair<string, object?>("requested", state.Requested),
            new KeyValuePair<string, object?>("active", state.Active)
        );
        LogFallback(state.Requested, state.Active, state.Reason, state.MissingLibrary ?? "-");
    }

    /// <summary>Loads a GPU provider for real (a CUDA session on the smallest shipped model, so that cuBLAS and
    /// cuDNN load too): null when it works, else the loader's error.</summary>
    private string? TryLoadProvider(string provider)
    {
        try
        {
            using var so = NewOptions();
            AiProviderChoice.Append(so, provider, 0, TensorRtCacheDir);
            if (provider == AiProviders.Cuda && PathOf(AiModelKind.FaceDetect) is { } probe && File.Exists(probe))
            {
                using var session = new InferenceSession(probe, so);
            }
            return null;
        }
        catch (Exception e)
            when (e
                    is OnnxRuntimeException
                        or EntryPointNotFoundException
                        or DllNotFoundException
                        or TypeInitializationException
                        or IOException
                        or UnauthorizedAccessException
            )
        {
            return $"{e.GetType().Name}: {e.GetBaseException().Message}";
        }
    }

    private string TensorRtCacheDir =>
        Path.GetFullPath(
            string.IsNullOrWhiteSpace(_options.TensorrtCacheDir)
                ? Path.Combine("data", "tensorrt")
                : _options.TensorrtCacheDir
        );

    public AiOptions Options => _options;

    /// <summary>Execution providers the installed ONNX Runtime offers (e.g. CPUExecutionProvider,
    /// CUDAExecutionProvider).</summary>
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
        if (!string.IsNullOrWhiteSpace(configured))
            return Path.GetFullPath(configured);
        if (InsightFacePack.Pick(_options.InsightfaceDir, kind) is { } packed)
            return packed;
        var shipped = kind switch
        {
            AiModelKind.FaceDetect => "blazeface_front_128.onnx",
            AiModelKind.FaceMesh => "face_landmark.onnx",
            AiModelKind.Segmentation => "selfie_segmentation.onnx",
            AiModelKind.SegmentationLandscape => "selfie_segmentation_landscape.onnx",
            _ => null,
        };
        if (shipped is null)
            return null;
        var dir = string.IsNullOrWhiteSpace(_options.ModelsDir)
            ? Path.Combine(AppContext.BaseDirectory, "models")
            : Path.GetFullPath(_options.ModelsDir);
        return Path.Combine(dir, shipped);
    }

    /// <summary>Why a kind is unavailable (null when it loaded or was never tried and has a file).</summary>
    public string? UnavailableReason(AiModelKind kind)
    {
        if (_errors.TryGetValue(kind, out var e))
            return e;
        var path = PathOf(kind);
        if (path is null)
            return $"no model configured ({EnvName(kind)})";
        if (!File.Exists(path))
            return $"model file not found: {path}";
        return null;
    }

    /// <summary>The session of a model on a device, loading it on first use; null when unavailable
    /// (<see cref="UnavailableReason"/> says why). Never throws.</summary>
    public OnnxModel? Get(AiModelKind kind, string device)
    {
        var lazy = _sessions.GetOrAdd((kind, device), k => new Lazy<OnnxModel?>(
            () => Load(k.Item1, k.Item2),
            LazyThreadSafetyMode.ExecutionAndPublication
        ));
        return lazy.Value;
    }

    /// <summary>The sessions loaded so far (status).</summary>
    public IEnumerable<OnnxModel> Loaded()
    {
        foreach (var l in _sessions.Values)
        {
            if (l.IsValueCreated && l.Value is { } m)
                yield return m;
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
            if (AiProviders.IsGpu(provider))
            {
                try
                {
                    AiProviderChoice.Append(so, provider, GpuIndex(device), TensorRtCacheDir);
                }
                catch (Exception e)
                    when (e
                            is EntryPointNotFoundException
                                or OnnxRuntimeException
                                or DllNotFoundException
                                or IOException
                    )
                {
                    // The start-up check loaded it; a later failure is still a fallback, never silent.
                    so.Dispose();
                    so = NewOptions();
                    var wanted = provider;
                    provider = AiProviders.Cpu;
                    reason =
                        $"{wanted} provider did not load for {AiModels.Name(kind)} on {device} ({e.GetType().Name}: {e.Message}); running on CPU";
                    var changed = ProviderState with
                    {
                        Active = AiProviders.Cpu,
                        Fallback = true,
                        Reason = reason,
                        MissingLibrary = AiProviderChoice.MissingLibrary(e.Message),
                    };
                    lock (_providerGate)
                        _provider = changed;
                    ReportFallback(changed);
                }
            }
            var session = new InferenceSession(path, so);
            var model = new OnnxModel(kind, device, path, session, so, provider, reason);
            so = null;
            _errors.TryRemove(kind, out _);
            LogLoaded(kind, device, path, provider, reason);
            return model;
        }
        catch (Exception e)
            when (e
                    is OnnxRuntimeException
                        or IOException
                        or UnauthorizedAccessException
                        or DllNotFoundException
                        or TypeInitializationException
            )
        {
            so?.Dispose();
            var why = $"model did not load: {path}: {e.GetBaseException().Message}";
            _errors[kind] = why;
            LogUnavailable(kind, why);
            return null;
        }
    }

    private SessionOptions NewOptions() =>
        new()
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
        if (!LocalDevices.IsGpu(device))
            return (AiProviders.Cpu, "cpu device");
        var state = ProviderState;
        return AiProviders.IsGpu(state.Active)
            ? (state.Active, $"{state.Reason}; device {GpuIndex(device)}")
            : (AiProviders.Cpu, state.Reason);
    }

    private static int GpuIndex(string device) => int.TryParse(device.AsSpan(3), out var i) ? i : 0;

    public static string EnvName(AiModelKind kind) =>
        kind switch
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
        catch (Exception e)
            when (e
                    is OnnxRuntimeException
                        or DllNotFoundException
                        or TypeInitializationException
                        or EntryPointNotFoundException
            )
        {
            return ([], e.GetBaseException().Message);
        }
    }

    public void Dispose()
    {
        AiMetrics.Hosts.TryRemove(this, out _);
        foreach (var l in _sessions.Values)
        {
            if (l.IsValueCreated)
                l.Value?.Dispose();
        }
    }

    [LoggerMessage(
        Level = LogLevel.Error,
        Message = "ai provider: {Requested} requested, running on {Active}: {Reason} (missing library: {Library}); set ai.require_gpu to stop instead"
    )]
    private partial void LogFallback(string requested, string active, string reason, string library);

    [LoggerMessage(
        Level = LogLevel.Information,
        Message = "ai provider: {Requested} requested, gpu devices run on {Active} ({Reason})"
    )]
    private partial void LogProvider(string requested, string active, string reason);

    [LoggerMessage(
        Level = LogLevel.Information,
        Message = "ai model {Kind} on {Device}: {Path} loaded, provider {Provider} ({Reason})"
    )]
    private partial void LogLoaded(AiModelKind kind, string device, string path, string provider, string reason);

    [LoggerMessage(
        Level = LogLevel.Warning,
        Message = "ai model {Kind} unavailable: {Why}; its step is skipped (counted) and frames flow unchanged"
    )]
    private partial void LogUnavailable(AiModelKind kind, string why);
}

/// <summary>One loaded session: the model, the device it is for, and the provider that runs it.</summary>
internal sealed class OnnxModel(
    AiModelKind kind,
    string device,
    string path,
    InferenceSession session,
    SessionOptions options,
    string provider,
    string providerReason
) : IDisposable
{
    public AiModelKind Kind { get; } = kind;
    public string Device { get; } = device;
    public string Path { get; } = path;
    public InferenceSession Session { get; } = session;

    /// <summary>"CUDA" or "CPU".</summary>
    public string Provider { get; } = provider;
    public string ProviderReason { get; } = providerReason;

    private long _calls,
        _images,
        _maxBatch;

    /// <summary>Inference calls and the images they took (cross-stream batching), for the status.</summary>
    public (long Calls, long Images, int MaxBatch) Batches =>
        (Interlocked.Read(ref _calls), Interlocked.Read(ref _images), (int)Interlocked.Read(ref _maxBatch));

    /// <summary>Records one session.Run over <paramref name="images"/> images that took <paramref name="ms"/>:
    /// the inference time and batch-size histograms, and this session's counters.</summary>
    public void RecordBatch(int images, double ms)
    {
        Interlocked.Increment(ref _calls);
        Interlocked.Add(ref _images, images);
        long seen;
        while (
            images > (seen = Interlocked.Read(ref _maxBatch))
            && Interlocked.CompareExchange(ref _maxBatch, images, seen) != seen
        ) { }
        var name = new KeyValuePair<string, object?>("model", AiModels.Name(Kind));
        AiMetrics.InferenceMs.Record(ms, name, new KeyValuePair<string, object?>("provider", Provider));
        AiMetrics.BatchSize.Record(images, name);
    }

    public void Dispose()
    {
        Session.Dispose();
        options.Dispose();
    }
}
