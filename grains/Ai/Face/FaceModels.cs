using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Blankend.Orleans.Ai;
using Blankend.Orleans.Grains.Ai.Face.Insight;
using Blankend.Orleans.Grains.Ai.Runtime;

namespace Blankend.Orleans.Grains.Ai.Face;

/// <summary>
/// The face models of one <see cref="AiEngine"/>: a BlazeFace detector and a face mesh per device (over the
/// engine's ONNX sessions for that device: CUDA on a gpuN device when OnnxRuntimeHost loads it, else CPU), the
/// face swapper, and the detector run/reuse counters. One per engine (<see cref="For"/>), shared by the three
/// face steps and the status API.
/// </summary>
internal sealed partial class FaceModels : IDisposable
{
    private static readonly ConditionalWeakTable<AiEngine, FaceModels> All = new();
    private readonly ConcurrentDictionary<string, Lazy<IFaceDetector?>> _detectors = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Lazy<FaceMeshModel?>> _meshes = new(StringComparer.Ordinal);
    private volatile string? _detectorError,
        _meshError;
    private long _detectorRuns,
        _reused;

    private FaceModels(AiEngine engine)
    {
        Engine = engine;
        Swapper = new FaceSwapper(this);
    }

    /// <summary>The face models of an engine (created on first use).</summary>
    public static FaceModels For(AiEngine engine) => All.GetValue(engine, static e => new FaceModels(e));

    public AiEngine Engine { get; }

    public FaceSwapper Swapper { get; }

    /// <summary>Detector runs (all sources) and frames that reused the previous faces instead.</summary>
    public long DetectorRuns => Interlocked.Read(ref _detectorRuns);

    public long DetectionsReused => Interlocked.Read(ref _reused);

    internal void CountRun() => Interlocked.Increment(ref _detectorRuns);

    internal void CountReuse() => Interlocked.Increment(ref _reused);

    /// <summary>The detector on a device (BlazeFace or SCRFD, told from the model's outputs), or null when its
    /// model is unavailable (<see cref="DetectorUnavailable"/>).</summary>
    public IFaceDetector? FaceDetector(string device) =>
        _detectors.GetOrAdd(device, d => new Lazy<IFaceDetector?>(() => LoadDetector(d))).Value;

    /// <summary>The detector on a device when it is BlazeFace (the shipped default), else null.</summary>
    public BlazeFaceDetector? Detector(string device) => FaceDetector(device) as BlazeFaceDetector;

    /// <summary>The face mesh on a device, or null when its model is unavailable (<see
    /// cref="MeshUnavailable"/>).</summary>
    public FaceMeshModel? Mesh(string device) =>
        _meshes.GetOrAdd(device, d => new Lazy<FaceMeshModel?>(() => LoadMesh(d))).Value;

    public string? DetectorUnavailable => _detectorError ?? Engine.Runtime.UnavailableReason(AiModelKind.FaceDetect);

    public string? MeshUnavailable => _meshError ?? Engine.Runtime.UnavailableReason(AiModelKind.FaceMesh);

    /// <summary>"blazeface" or "scrfd" once a detector has loaded, else null.</summary>
    public string? LoadedDetectorFormat
    {
        get
        {
            foreach (var lazy in _detectors.Values)
            {
                if (lazy.IsValueCreated && lazy.Value is { } d)
                    return d is ScrfdDetector ? "scrfd" : "blazeface";
            }
            return null;
        }
    }

    /// <summary>One line per face step for the status API.</summary>
    public IReadOnlyDictionary<string, string> Status =>
        new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["detect"] =
                Describe(_detectors, DetectorUnavailable, d => d.Describe)
                + $"; {DetectorRuns} detector runs, {DetectionsReused} frames reused the last faces",
            ["mesh"] = Describe(_meshes, MeshUnavailable, m => $"face mesh 468 ({m.Model.Provider})"),
            ["swap"] = Swapper.Status,
            ["enhance"] = EnhancerStatus,
        };

    private static string Describe<T>(
        ConcurrentDictionary<string, Lazy<T?>> loaded,
        string? unavailable,
        Func<T, string> text
    )
        where T : class
    {
        var parts = new List<string>();
        foreach (var (device, lazy) in loaded)
        {
            if (lazy.IsValueCreated && lazy.Value is { } v)
                parts.Add($"{device}: {text(v)}");
        }
        if (parts.Count > 0)
            return string.Join(", ", parts);
        return unavailable is null ? "not loaded yet" : $"unavailable: {unavailable}";
    }

    private IFaceDetector? LoadDetector(string device)
    {
        var model = Engine.Runtime.Get(AiModelKind.FaceDetect, device);
        if (model is null)
            return null;
        var scrfd = ScrfdDetector.IsScrfd([.. model.Session.OutputMetadata.Values.Select(m => m.Dimensions)]);
        try
        {
            return scrfd
                ? new ScrfdDetector(model, Engine.Options.FaceMinScore)
                : new BlazeFaceDetector(model, Engine.Options.FaceMinScore, Engine.Options.MaxBatch);
        }
        catch (InvalidDataException e)
        {
            _detectorError = scrfd
                ? $"not a usable SCRFD model: {e.Message}"
                : $"neither a BlazeFace nor a SCRFD model: {e.Message}";
            return null;
        }
    }

    private FaceMeshModel? LoadMesh(string device)
    {
        var model = Engine.Runtime.Get(AiModelKind.FaceMesh, device);
        if (model is null)
            return null;
        try
        {
            return new FaceMeshModel(model, Engine.Options.MaxBatch);
        }
        catch (InvalidDataException e)
        {
            _meshError = $"not a face mesh model: {e.Message}";
            return null;
        }
    }

    public void Dispose()
    {
        foreach (var l in _detectors.Values)
            if (l.IsValueCreated)
                l.Value?.Dispose();
        foreach (var l in _meshes.Values)
            if (l.IsValueCreated)
                l.Value?.Dispose();
        Swapper.Dispose();
    }
}
