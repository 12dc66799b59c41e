namespace Blankend.Orleans.Gateway.Fanout;

/// <summary>The gateway's one grain observer: every ClientGrain this gateway subscribes to calls it.</summary>
public sealed class FrameObserver(ViewerHub hub) : IFrameObserver
{
    public Task OnFrame(FrameEnvelope frame)
    {
        hub.Dispatch(frame);
        return Task.CompletedTask;
    }
}
