using Blankend.Orleans.Ai;
using Blankend.Orleans.Grains.Devices;
using Microsoft.Extensions.Logging;

namespace Blankend.Orleans.Grains.Ai;

/// <summary>The cluster's uploaded assets (reference face, background image), versioned and stored.</summary>
[Reentrant]
internal sealed partial class AiAssetGrain(
    [PersistentState("ai-assets", Blankend.Orleans.Hosting.ClusterMembership.GrainStorageName)]
        IPersistentState<AiAssetState> state,
    ILogger<AiAssetGrain> log
) : Grain, IAiAssetGrain
{
    public async Task<long> Set(AiAssetKind kind, byte[] image)
    {
        var version = Math.Max(state.State.LastVersion, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()) + 1;
        state.State.LastVersion = version;
        state.State.Assets[kind] = new AiAssetData(
            kind,
            version,
            image,
            DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()
        );
        await StoreAsync();
        LogSet(kind, version, image.Length);
        return version;
    }

    public Task<AiAssetData?> Get(AiAssetKind kind) => Task.FromResult(state.State.Assets.GetValueOrDefault(kind));

    public async Task<long> Clear(AiAssetKind kind)
    {
        if (state.State.Assets.Remove(kind))
        {
            await StoreAsync();
            LogCleared(kind);
        }
        return 0;
    }

    private async Task StoreAsync()
    {
        try
        {
            await state.WriteStateAsync();
        }
        catch (Exception e)
        {
            LogStoreFailed(e);
        } // kept in memory; only a loss of this silo would forget it
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "ai asset {Kind} v{Version} stored ({Bytes} bytes)")]
    private partial void LogSet(AiAssetKind kind, long version, int bytes);

    [LoggerMessage(Level = LogLevel.Information, Message = "ai asset {Kind} removed")]
    private partial void LogCleared(AiAssetKind kind);

    [LoggerMessage(
        Level = LogLevel.Warning,
        Message = "storing an ai asset failed: it applies, but a loss of this silo would forget it"
    )]
    private partial void LogStoreFailed(Exception e);
}

[GenerateSerializer, Alias("blankend.AiAssetState")]
internal sealed class AiAssetState
{
    /// <summary>Versions are unix ms based and only grow, so a re-activated grain never reuses one.</summary>
    [Id(0)]
    public long LastVersion { get; set; }

    [Id(1)]
    public Dictionary<AiAssetKind, AiAssetData> Assets { get; set; } = [];
}

/// <summary>Brings this silo's copy of the assets up to the versions a frame's settings name (one fetch per new
/// version, then every frame uses the local copy).</summary>
/// <summary>Fetches the uploaded reference face and background a frame's settings name before the frame is
/// queued on this silo's device worker.</summary>
internal sealed class AiAssetPreparation(AiEngine engine) : IFrameStepPreparation
{
    public ValueTask PrepareAsync(IGrainFactory grains, EffectiveSettings settings) =>
        AiAssetSync.EnsureAsync(
            engine,
            grains,
            settings.ReferenceVersion,
            settings.MatteBackground.Kind == "image" ? settings.MatteBackground.ImageVersion : 0
        );
}

internal static class AiAssetSync
{
    public static ValueTask EnsureAsync(
        AiEngine engine,
        IGrainFactory grains,
        long referenceVersion,
        long backgroundVersion
    )
    {
        // Version 0 = removed (DELETE /api/v1/ai/reference|background): this silo stops using its copy too.
        if (referenceVersion == 0 && engine.Asset(AiAssetKind.ReferenceFace) is not null)
            engine.ClearAsset(AiAssetKind.ReferenceFace);
        if (backgroundVersion == 0 && engine.Asset(AiAssetKind.Background) is not null)
            engine.ClearAsset(AiAssetKind.Background);
        var needRef =
            referenceVersion > 0 && (engine.Asset(AiAssetKind.ReferenceFace)?.Version ?? 0) < referenceVersion;
        var needBg = backgroundVersion > 0 && (engine.Asset(AiAssetKind.Background)?.Version ?? 0) < backgroundVersion;
        return needRef || needBg ? FetchAsync(engine, grains, needRef, needBg) : ValueTask.CompletedTask;
    }

    private static async ValueTask FetchAsync(AiEngine engine, IGrainFactory grains, bool reference, bool background)
    {
        var store = grains.GetGrain<IAiAssetGrain>(IAiAssetGrain.Key);
        if (reference && await store.Get(AiAssetKind.ReferenceFace) is { } r)
            engine.SetAsset(new AiAsset(r.Kind, r.Version, r.Image));
        if (background && await store.Get(AiAssetKind.Background) is { } b)
            engine.SetAsset(new AiAsset(b.Kind, b.Version, b.Image));
    }
}
