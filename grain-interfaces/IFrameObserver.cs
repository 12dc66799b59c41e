namespace Blankend.Orleans;

/// <summary>
/// The way frames come back out of the cluster: each gateway registers one observer with the ClientGrain of
/// every source it has viewers for, and fans the frame out to its local viewers itself.
/// </summary>
public interface IFrameObserver : IGrainObserver
{
    /// <summary>One-way: a grain never waits on a gateway (a slow gateway must not slow a source).</summary>
    [OneWay]
    Task OnFrame(FrameEnvelope frame);
}
