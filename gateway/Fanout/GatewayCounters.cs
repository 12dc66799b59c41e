namespace Blankend.Orleans.Gateway.Fanout;

/// <summary>Process-wide counters of this gateway, read by the status API (and exported as metrics later).</summary>
public sealed class GatewayCounters
{
    public long FramesIn;
    public long BytesIn;
    public long InvalidFrames;
    public long OversizeFrames;
    public long IngestDrops;
    public long IngestErrors;
    public long CamerasConnected;
    public long ViewersConnected;
    public long FramesFromCluster;
    public long StaleFrames;
    public long LostFrames;
    public long DuplicateFrames;
    public long FramesSent;
    public long ViewerDrops;
    public long RejectedRequests;
}
