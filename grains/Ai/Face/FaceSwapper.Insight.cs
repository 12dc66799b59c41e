using System.Collections.Concurrent;
using System.Diagnostics;
using System.Security.Cryptography;
using Blankend.Orleans.Ai;
using Blankend.Orleans.Grains.Ai.Face.Insight;
using Blankend.Orleans.Grains.Ai.Runtime;
using Microsoft.ML.OnnxRuntime;
using OpenCvSharp;

namespace Blankend.Orleans.Grains.Ai.Face;

/// <summary>The reference's ArcFace embedding and inswapper latent (when the inswapper engine is in use).</summary>
internal sealed partial class FaceReference
{
    /// <summary>The normalised 512-d ArcFace embedding of the reference face; null under the mesh engine.</summary>
    internal float[]? Embedding { get; set; }

    /// <summary>The inswapper source latent (embedding · emap, normalised); null under the mesh engine.</summary>
    internal float[]? Latent { get; set; }

    /// <summary>Why the embedding is missing although the inswapper engine is in use (the mesh warp runs).</summary>
    internal string? EmbeddingError { get; set; }

    internal FaceReference WithVersion(long version) =>
        new(version, Error, Image, Points, Triangles, Face)
        {
            Embedding = Embedding,
            Latent = Latent,
            EmbeddingError = EmbeddingError,
        };
}

/// <summary>The ArcFace and inswapper models of one device.</summary>
internal sealed record InsightModels(ArcFaceModel ArcFace, InswapperModel Swapper);

/// <summary>
/// The inswapper engine of <see cref="FaceSwapper"/>: chosen when <c>swap_model</c> has inswapper's signature
/// and emap and an ArcFace model loads; else the mesh warp runs, with the reason in <see cref="Engine"/>. The
/// reference face is embedded once per asset version (on upload, when the check analysed the same bytes, else
/// on the first frame that needs it), never per frame.
/// </summary>
internal sealed partial class FaceSwapper
{
    private readonly ConcurrentDictionary<string, Lazy<(InsightModels? Models, string Reason)>> _insight = new(
        StringComparer.Ordinal
    );
    private Lazy<OnnxTensor>? _emap;
    private volatile Inspected? _inspected;

    private sealed record Inspected(byte[] Hash, FaceReference Reference);

    /// <summary>"inswapper" or "mesh", and why, as the status API shows them. Loads the models on the device
    /// already in use, else on cpu0.</summary>
    public (string Name, string Reason) Engine
    {
        get
        {
            var device = _insight.FirstOrDefault(kv => kv.Value.IsValueCreated).Key ?? "cpu0";
            var (models, reason) = InsightOn(device);
            return (models is null ? "mesh" : "inswapper", reason);
        }
    }

    /// <summary>The inswapper engine's models on a device, or null when the mesh warp runs.</summary>
    internal InsightModels? Insight(string device) => InsightOn(device).Models;

    private (InsightModels? Models, string Reason) InsightOn(string device) =>
        _insight
            .GetOrAdd(device, d => new Lazy<(InsightModels?, string)>(
                () => LoadInsight(d),
                LazyThreadSafetyMode.ExecutionAndPublication
            ))
            .Value;

    private (InsightModels?, string) LoadInsight(string device)
    {
        const string mesh = "mesh warp + seamless clone";
        var rt = _models.Engine.Runtime;
        if (rt.PathOf(AiModelKind.Swap) is null)
            return (null, $"{mesh} (no swap_model configured: SWAP_MODEL / ai:swap_model)");
        var swap = rt.Get(AiModelKind.Swap, device);
        if (swap is null)
            return (null, $"{mesh} (swap_model unavailable: {rt.UnavailableReason(AiModelKind.Swap)})");
        var file = Path.GetFileName(swap.Path);
        InswapperModel inswapper;
        try
        {
            var emap = LazyInitializer.EnsureInitialized(ref _emap, () =>
                new Lazy<OnnxTensor>(() => OnnxInitializerReader.ReadLast(swap.Path))
            );
            inswapper = new InswapperModel(swap, () => emap.Value);
        }
        catch (Exception e) when (e is InvalidDataException or IOException or UnauthorizedAccessException)
        {
            return (null, $"{mesh}: swap_model {file} is not a usable inswapper model: {e.Message}");
        }
        if (rt.PathOf(AiModelKind.ArcFace) is null)
            return (
                null,
                $"{mesh}: swap_model {file} is an inswapper model but it needs the source face's ArcFace embedding and no arcface_model is configured (ARCFACE_MODEL / ai:arcface_model, or INSIGHTFACE_APP / ai:insightface_dir)"
            );
        var arc = rt.Get(AiModelKind.ArcFace, device);
        if (arc is null)
            return (
                null,
                $"{mesh}: swap_model {file} is an inswapper model but arcface_model is unavailable: {rt.UnavailableReason(AiModelKind.ArcFace)}"
            );
        try
        {
            var arcface = new ArcFaceModel(arc);
            return (
                new InsightModels(arcface, inswapper),
                $"inswapper: {file} ({inswapper.Size}x{inswapper.Size}, emap '{inswapper.EmapName}', {swap.Provider}) with ArcFace {Path.GetFileName(arc.Path)} ({arc.Provider})"
            );
        }
        catch (InvalidDataException e)
        {
            return (null, $"{mesh}: arcface_model {Path.GetFileName(arc.Path)} is not an ArcFace model: {e.Message}");
        }
    }

    /// <summary>Puts the reference onto one face of a BGR 8-bit frame, in place: inswapper when the engine is
    /// in use and the reference has its latent (five keypoints from SCRFD or the mesh), else the mesh warp.
    /// False (frame unchanged) when the face cannot be used.</summary>
    public bool SwapFace(Mat frame, AiFace face, FaceReference reference, string device)
    {
        if (reference.Latent is { } latent && Insight(device) is { } insight)
        {
            if (frame.Empty() || frame.Type() != MatType.CV_8UC3)
                return false;
            Span<float> kps = stackalloc float[10];
            if (!FaceAlign.FivePoints(face, kps))
                return false;
            foreach (var v in kps)
                if (!float.IsFinite(v))
                    return false;
            return insight.Swapper.Swap(frame, kps, latent).Width > 0;
        }
        return face.Mesh is { } m && Swap(frame, m, reference);
    }

    /// <summary>Computes the reference's embedding and latent when the inswapper engine is in use ("embed" step
    /// counters: its ms per upload).</summary>
    private void Embed(FaceReference reference, Mat image, string device)
    {
        if (Insight(device) is not { } insight || reference.Face is not { } face)
            return;
        Span<float> kps = stackalloc float[10];
        if (!FaceAlign.FivePoints(face, kps))
        {
            reference.EmbeddingError = "the reference face has no five keypoints";
            return;
        }
        var t0 = Stopwatch.GetTimestamp();
        try
        {
            var embedding = insight.ArcFace.Embed(image, kps);
            reference.Embedding = embedding;
            reference.Latent = insight.Swapper.Latent(embedding);
            _models.Engine.Record("embed", t0);
        }
        catch (Exception e)
            when (e is OnnxRuntimeException or OpenCVException or InvalidDataException or ArgumentException)
        {
            reference.EmbeddingError = $"ArcFace embedding failed: {e.Message}";
        }
    }

    private static string EmbeddingNote(FaceReference r) =>
        r.Latent is not null ? ", ArcFace embedding ready"
        : r.EmbeddingError is { } e ? $", {e}: mesh warp used"
        : "";

    /// <summary>Keeps the upload check's analysis so the same bytes, arriving as a new version, are not analysed
    /// (and embedded) again.</summary>
    private FaceReference Remember(AiAsset asset, FaceReference reference)
    {
        if (reference.Usable && asset.Image is { Length: > 0 })
            _inspected = new Inspected(SHA256.HashData(asset.Image), reference);
        return reference;
    }

    private FaceReference? Reused(AiAsset asset)
    {
        if (_inspected is not { } i || asset.Image is not { Length: > 0 })
            return null;
        if (!SHA256.HashData(asset.Image).AsSpan().SequenceEqual(i.Hash))
            return null;
        _inspected = null;
        return i.Reference.WithVersion(asset.Version);
    }
}
