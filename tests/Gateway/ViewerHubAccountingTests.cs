using System.Net.WebSockets;
using Blankend.Orleans.Gateway.Fanout;
using Blankend.Orleans.Gateway.Telemetry;
using Blankend.Orleans.Tests.Support;
using Xunit;

namespace Blankend.Orleans.Tests.Gateway;

/// <summary>The gateway's per-source cursor: what is delivered, and how each frame that is not is counted
/// (lost: never arrived; stale: arrived late; duplicate: arrived twice), across a grain's re-activation.</summary>
[Trait(TestKind.Name, TestKind.Unit)]
public sealed class ViewerHubAccountingTests
{
    private const string Source = "acc";
    private readonly GatewayCounters _counters = new();
    private readonly ViewerHub _hub;
    private readonly Viewer _viewer;

    public ViewerHubAccountingTests()
    {
        _hub = new ViewerHub(_counters);
        _viewer = NewViewer();
        _hub.Add(_viewer);
    }

    private Viewer NewViewer() =>
        new(
            WebSocket.CreateFromStream(new MemoryStream(), new WebSocketCreationOptions { IsServer = true }),
            Source,
            meta: false,
            queueSize: 1024,
            _counters
        );

    private void Send(long epoch, params long[] seqs)
    {
        foreach (var seq in seqs)
            _hub.Dispatch(
                new FrameEnvelope(Source, seq, epoch, FrameKind.Raw, 0, FrameOrigin.VideoIn, [0xFF, 0xD8, 0xFF, 0xD9])
            );
    }

    private ViewerHub.WatchedSource Watched => _hub.Watched.Single();

    [Fact]
    public void InOrderFramesAreAllDelivered()
    {
        Send(1, 1, 2, 3, 4, 5);
        Assert.Equal((5L, 0L, 0L, 0L), (Watched.Frames, Watched.Lost, Watched.Stale, Watched.Duplicates));
        Assert.Equal(5, _viewer.Queued);
    }

    [Fact]
    public void AnOvertakenFrameMovesFromLostToStale()
    {
        Send(1, 1, 2, 4);
        Assert.Equal(1, Watched.Lost);
        Send(1, 3, 5);
        Assert.Equal((4L, 0L, 1L, 0L), (Watched.Frames, Watched.Lost, Watched.Stale, Watched.Duplicates));
        Assert.Equal(0, _counters.LostFrames);
        Assert.Equal(1, _counters.StaleFrames);
    }

    [Fact]
    public void ARepeatedFrameIsADuplicateNotALateOne()
    {
        Send(1, 1, 2, 2, 3, 1);
        Assert.Equal((3L, 0L, 0L, 2L), (Watched.Frames, Watched.Lost, Watched.Stale, Watched.Duplicates));
        Assert.Equal(2, _counters.DuplicateFrames);
    }

    [Fact]
    public void ANewActivationsFirstFramesThatNeverArriveAreLost()
    {
        Send(1, 1, 2, 3);
        Send(2, 4, 5); // the new activation routed 1-3 before this gateway re-registered
        Assert.Equal((5L, 3L), (Watched.Frames, Watched.Lost));
        Send(2, 2); // one of them turns up late
        Send(1, 4); // the old activation's last frame, after the new one's first: late, never counted
        Send(1, 2); // an old frame delivered before: duplicate
        Assert.Equal((5L, 2L, 2L, 1L), (Watched.Frames, Watched.Lost, Watched.Stale, Watched.Duplicates));
        Assert.Equal(5, _viewer.Queued); // delivered: 1, 2, 3 (epoch 1), 4, 5 (epoch 2)
    }

    [Fact]
    public void FramesSentWhileNobodyHereWatchedAreNotCountedLost()
    {
        Send(1, 1, 2, 3);
        _hub.Remove(_viewer); // the last viewer leaves: the cursor goes
        Assert.Empty(_hub.Watched);
        var again = NewViewer();
        _hub.Add(again);
        Send(1, 40, 41); // the source kept going meanwhile
        Assert.Equal((2L, 0L), (Watched.Frames, Watched.Lost));
        Assert.Equal(2, again.Queued);
    }
}
