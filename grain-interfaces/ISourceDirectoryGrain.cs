namespace Blankend.Orleans;

/// <summary>
/// Singleton (key <see cref="Key"/>) that knows the active sources and the gateways that want ALL sources
/// (viewers without a <c>source</c> query). Low-rate control only: no frame passes through it.
/// </summary>
public interface ISourceDirectoryGrain : IGrainWithIntegerKey
{
    public const long Key = 0;

    /// <summary>A ClientGrain announces (and, while it receives frames, re-announces) itself and receives the
    /// current all-source observers. Registrations not renewed expire, so the directory heals itself after a
    /// silo loss without any timer.</summary>
    Task<WildcardSet> RegisterSource(string source);

    Task UnregisterSource(string source);

    /// <summary>Registers (or refreshes) a gateway observer that wants every source.</summary>
    [ResponseTimeout("00:00:05")]
    Task SubscribeAll(IFrameObserver observer);

    [ResponseTimeout("00:00:05")]
    Task UnsubscribeAll(IFrameObserver observer);

    Task<string[]> ListSources();

    /// <summary>Cheap round trip used by health checks to prove the cluster answers.</summary>
    [ResponseTimeout("00:00:02")]
    Task<string> Ping();
}
