using System.Collections.Concurrent;
using System.Diagnostics;
using Blankend.Orleans.Ai;
using Blankend.Orleans.Configuration;
using Blankend.Orleans.Grains.Ai.Runtime;
using Microsoft.Extensions.Options;

namespace Blankend.Orleans.Grains.Ai;

/// <summary>
/// Per-silo AI state shared by the AI steps: the ONNX sessions (<see cref="OnnxRuntimeHost"/>), the per-source
/// state (detection interval counter, last faces, matte history, recurrent states), the uploaded assets
/// (reference face, background image) and the per-step counters the status shows. Steps run on the device
/// worker threads, so everything here is thread-safe.
/// </summary>
internal sealed class AiEngine
{
    private readonly ConcurrentDictionary<string, AiSourceState> _sources = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, AiStepCounters> _steps = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<AiAssetKind, AiAsset> _assets = new();

    public AiEngine(OnnxRuntimeHost runtime, IOptions<AiOptions> options)
    {
        Runtime = runtime;
        Options = options.Value;
    }

    public OnnxRuntimeHost Runtime { get; }

    public AiOptions Options { get; }

    /// <summary>The state of one source, created on its first frame. Steps lock it while they use it.</summary>
    public AiSourceState StateFor(string source)
    {
        var now = Stopwatch.GetTimestamp();
        var s = _sources.GetOrAdd(source, static k => new AiSourceState(k));
        s.LastUsed = now;
        // Sources that went away leave their history (masks, recurrent states) behind: swept once a minute.
        var next = Volatile.Read(ref _nextPrune);
        if (now >= next && Interlocked.CompareExchange(ref _nextPrune, now + 60 * Stopwatch.Frequency, next) == next)
            Prune(SourceIdle);
        return s;
    }

    /// <summary>A source without a frame for this long loses its AI state (it starts fresh if it comes back).</summary>
    public static readonly TimeSpan SourceIdle = TimeSpan.FromMinutes(2);

    private long _nextPrune;

    /// <summary>Forgets sources without a frame for <paramref name="idle"/> (their recurrent state and
    /// history).</summary>
    public int Prune(TimeSpan idle)
    {
        var cutoff = Stopwatch.GetTimestamp() - (long)(idle.TotalSeconds * Stopwatch.Frequency);
        var n = 0;
        foreach (var (k, v) in _sources)
        {
            if (v.LastUsed < cutoff && _sources.TryRemove(k, out _))
                n++;
        }
        return n;
    }

    /// <summary>Drops one source's state (a one-shot /ai/process call's throw-away source).</summary>
    public void Forget(string source) => _sources.TryRemove(source, out _);

    public int SourceCount => _sources.Count;

    public AiStepCounters Step(string name) => _steps.GetOrAdd(name, static n => new AiStepCounters(n));

    public IEnumerable<AiStepCounters> Steps => _steps.Values;

    /// <summary>Records one run of a step over <paramref name="frames"/> frames.</summary>
    public void Record(string step, long startTimestamp, int frames = 1) => Step(step).Ran(startTimestamp, frames);

    /// <summary>Counts a frame a step did not process, with the reason (model unavailable, no face, ...).</summary>
    public void Skip(string step, string reason) => Step(step).Skipped(reason);

    public AiAsset? Asset(AiAssetKind kind) => _assets.TryGetValue(kind, out var a) ? a : null;

    /// <summary>Installs an uploaded asset; an older version never replaces a newer one.</summary>
    public void SetAsset(AiAsset asset) =>
        _assets.AddOrUpdate(asset.Kind, asset, (_, old) => asset.Version >= old.Version ? asset : old);

    public void ClearAsset(AiAssetKind kind) => _assets.TryRemove(kind, out _);
}

/// <summary>An uploaded image (JPEG or PNG bytes) with its cluster-wide version.</summary>
internal sealed record AiAsset(AiAssetKind Kind, long Version, byte[] Image);

/// <summary>Per-source AI state. Partial: each step family keeps its own fields in its own file.</summary>
internal sealed partial class AiSourceState(string source)
{
    public string Source { get; } = source;

    /// <summary>Lock held by a step while it reads or updates this source's state.</summary>
    public Lock Gate { get; } = new();

    internal long LastUsed;

    /// <summary>Frames of this source seen by the detect step (for <c>face_detect_interval</c>).</summary>
    public long DetectFrames;
}

/// <summary>Counters of one step: runs, frames, mean ms per frame (EMA), skips by reason.</summary>
internal sealed class AiStepCounters(string name)
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, long> _skips = new(StringComparer.Ordinal);
    private long _runs,
        _frames;
    private double _msPerFrame,
        _lastMs;

    public string Name { get; } = name;

    public void Ran(long start, int frames)
    {
        var ms = (Stopwatch.GetTimestamp() - start) * 1000.0 / Stopwatch.Frequency;
        var per = ms / Math.Max(1, frames);
        lock (_gate)
        {
            _runs++;
            _frames += frames;
            _lastMs = per;
            _msPerFrame = _msPerFrame == 0 ? per : _msPerFrame * 0.9 + per * 0.1;
        }
        AiMetrics.StepMs.Record(per, new KeyValuePair<string, object?>("step", Name));
    }

    public void Skipped(string reason)
    {
        lock (_gate)
            _skips[reason] = _skips.GetValueOrDefault(reason) + 1;
        AiMetrics.Skipped.Add(
            1,
            new KeyValuePair<string, object?>("step", Name),
            new KeyValuePair<string, object?>("reason", reason)
        );
    }

    public (long Runs, long Frames, double MsPerFrame, double LastMs, Dictionary<string, long> Skips) Snapshot()
    {
        lock (_gate)
            return (_runs, _frames, _msPerFrame, _lastMs, new Dictionary<string, long>(_skips, StringComparer.Ordinal));
    }
}
