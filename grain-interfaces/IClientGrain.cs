namespace Blankend.Orleans;

/// <summary>
/// One per client_id (source). Owns the routing of that source's frames: assigns the per-source sequence and
/// hands each frame to the observers (gateways) that have viewers for it. Processing and the bus hook in here.
/// </summary>
public interface IClientGrain : IGrainWithStringKey
{
    /// <summary>
    /// Frame entering the service for this source. Awaited (not one-way) on purpose: Orleans does not keep the
    /// order of concurrent one-way calls (a burst was measured arriving almost reversed), so each ingest
    /// connection's pump sends one frame at a time and the camera's receive loop never waits on it (the pump's
    /// bounded queue drops the oldest frame instead). The grain answers as soon as the frame is routed.
    /// Times out after 2 s (not Orleans' 30 s): a call caught by a silo crash never answers, and the camera's next
    /// frames must not wait behind it; a live frame that old is worthless anyway.
    /// </summary>
    [ResponseTimeout("00:00:02")]
    Task Publish(FrameEnvelope frame);

    /// <summary>Registers (or refreshes) a gateway's observer for this source. Registrations expire unless
    /// refreshed, so a gateway that dies leaves nothing behind. The gateway renews often: a renewal lost with a
    /// silo is retried rather than waited for.</summary>
    [ResponseTimeout("00:00:05")]
    Task Subscribe(IFrameObserver observer);

    [ResponseTimeout("00:00:05")]
    Task Unsubscribe(IFrameObserver observer);

    /// <summary>Registers (or refreshes) an observer of the frames AS THEY ENTERED (kind=raw), whatever the
    /// processing path does with the viewers' copy: a raw recording of a processed source. Expires like
    /// <see cref="Subscribe"/> registrations.</summary>
    Task SubscribeRaw(IFrameObserver observer);

    Task UnsubscribeRaw(IFrameObserver observer);

    /// <summary>Called by the source directory when the set of all-source observers changes.</summary>
    Task SetWildcardObservers(WildcardSet set);

    Task<SourceStats> GetStats();

    /// <summary>Pushed by the pipeline config grain when the processing configuration changes (versioned: an
    /// older config than the one held is ignored).</summary>
    Task SetPipelineConfig(Processing.PipelineConfig config);

    Task<Processing.SourceProcessingStats> GetProcessingStats();
}

[GenerateSerializer, Immutable, Alias("blankend.SourceStats")]
public sealed record SourceStats(
    [property: Id(0)] string Source,
    [property: Id(1)] long Epoch,
    [property: Id(2)] long Seq,
    [property: Id(3)] long FramesIn,
    [property: Id(4)] long BytesIn,
    [property: Id(5)] long LastFrameUnixMs,
    [property: Id(6)] int Observers,
    [property: Id(7)] int WildcardObservers,
    [property: Id(8)] string Silo
);

/// <summary>The gateways that want every source, versioned so that a late, older update never wins.</summary>
[GenerateSerializer, Immutable, Alias("blankend.WildcardSet")]
public sealed record WildcardSet([property: Id(0)] long Version, [property: Id(1)] IFrameObserver[] Observers)
{
    public static readonly WildcardSet Empty = new(0, []);
}
