using Orleans.Dashboard;

namespace Blankend.Orleans.Gateway.Fanout;

/// <summary>The gateway's one grain observer: every ClientGrain this gateway subscribes to calls it.</summary>
internal sealed class FrameObserver(ViewerHub hub) : IFrameObserver
{
    /// <summary>Per frame. In the embedded mode the silo's incoming call filters see observer calls too: the
    /// Orleans Dashboard's profiler is kept off this one.</summary>
    [NoProfiling]
    public Task OnFrame(FrameEnvelope frame)
    {
        hub.Dispatch(frame);
        return Task.CompletedTask;
    }
}
