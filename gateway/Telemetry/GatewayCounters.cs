using Blankend.Orleans.Telemetry;

namespace Blankend.Orleans.Gateway.Telemetry;

/// <summary>
/// This gateway's counters. Every event updates both the per-gateway totals that the status API and the
/// throughput log read, and the OpenTelemetry instruments of <see cref="BlankendMetrics"/> that /metrics exports;
/// nothing here allocates. Record through these methods (not the fields) so that both stay equal.
/// </summary>
internal sealed class GatewayCounters
{
    private long _framesIn;
    private long _bytesIn;
    private long _invalidFrames;
    private long _oversizeFrames;
    private long _ingestDrops;
    private long _ingestErrors;
    private long _camerasConnected;
    private long _viewersConnected;
    private long _framesFromCluster;
    private long _staleFrames;
    private long _lostFrames;
    private long _duplicateFrames;
    private long _framesSent;
    private long _bytesSent;
    private long _viewerDrops;
    private long _rejectedRequests;

    public long FramesIn => Interlocked.Read(ref _framesIn);
    public long BytesIn => Interlocked.Read(ref _bytesIn);
    public long InvalidFrames => Interlocked.Read(ref _invalidFrames);
    public long OversizeFrames => Interlocked.Read(ref _oversizeFrames);
    public long IngestDrops => Interlocked.Read(ref _ingestDrops);
    public long IngestErrors => Interlocked.Read(ref _ingestErrors);
    public long CamerasConnected => Interlocked.Read(ref _camerasConnected);
    public long ViewersConnected => Interlocked.Read(ref _viewersConnected);
    public long FramesFromCluster => Interlocked.Read(ref _framesFromCluster);
    public long StaleFrames => Interlocked.Read(ref _staleFrames);
    public long LostFrames => Interlocked.Read(ref _lostFrames);
    public long DuplicateFrames => Interlocked.Read(ref _duplicateFrames);
    public long FramesSent => Interlocked.Read(ref _framesSent);
    public long BytesSent => Interlocked.Read(ref _bytesSent);
    public long ViewerDrops => Interlocked.Read(ref _viewerDrops);
    public long RejectedRequests => Interlocked.Read(ref _rejectedRequests);

    /// <summary>A frame accepted on an ingest endpoint (<see cref="BlankendMetrics.Endpoints"/>).</summary>
    public void FrameReceived(KeyValuePair<string, object?> endpoint, int bytes)
    {
        Interlocked.Increment(ref _framesIn);
        Interlocked.Add(ref _bytesIn, bytes);
        BlankendMetrics.FramesIn.Add(1, endpoint);
        BlankendMetrics.BytesIn.Add(bytes, endpoint);
    }

    /// <summary>A message refused as not a (binary) JPEG; the connection stays open.</summary>
    public void InvalidInput()
    {
        Interlocked.Increment(ref _invalidFrames);
        BlankendMetrics.FramesDropped.Add(1, BlankendMetrics.DropReasons.InvalidInput);
    }

    /// <summary>A message over stream.max_frame_bytes (the connection closes with 1009).</summary>
    public void Oversize()
    {
        Interlocked.Increment(ref _oversizeFrames);
        BlankendMetrics.FramesDropped.Add(1, BlankendMetrics.DropReasons.Oversize);
    }

    public void IngestDropped()
    {
        Interlocked.Increment(ref _ingestDrops);
        BlankendMetrics.FramesDropped.Add(1, BlankendMetrics.DropReasons.IngestQueue);
    }

    public void IngestFailed()
    {
        Interlocked.Increment(ref _ingestErrors);
        BlankendMetrics.FramesDropped.Add(1, BlankendMetrics.DropReasons.IngestError);
    }

    public void CameraConnected(KeyValuePair<string, object?> endpoint)
    {
        Interlocked.Increment(ref _camerasConnected);
        BlankendMetrics.SessionsActive.Add(1, endpoint);
    }

    public void CameraDisconnected(KeyValuePair<string, object?> endpoint)
    {
        Interlocked.Decrement(ref _camerasConnected);
        BlankendMetrics.SessionsActive.Add(-1, endpoint);
    }

    public void ViewerConnected()
    {
        Interlocked.Increment(ref _viewersConnected);
        BlankendMetrics.ViewersActive.Add(1);
    }

    public void ViewerDisconnected()
    {
        Interlocked.Decrement(ref _viewersConnected);
        BlankendMetrics.ViewersActive.Add(-1);
    }

    public void FrameFromCluster()
    {
        Interlocked.Increment(ref _framesFromCluster);
        BlankendMetrics.FanoutFrames.Add(1);
    }

    /// <summary>A watched source's seq skipped <paramref name="frames"/> frames: routed to this gateway by the
    /// source's grain, never arrived (a silo loss). Exported as dropped (reason <c>lost</c>) now; if one turns up
    /// late (<see cref="LateFrame"/>) it moves to <see cref="StaleFrames"/> in the totals, not in the metric.</summary>
    public void FramesLost(long frames)
    {
        Interlocked.Add(ref _lostFrames, frames);
        BlankendMetrics.FramesDropped.Add(frames, BlankendMetrics.DropReasons.Lost);
    }

    /// <summary>A frame arrived after a newer one of its source and was not delivered.</summary>
    /// <param name="countedLost">It had been counted lost when the newer one overtook it.</param>
    public void LateFrame(bool countedLost)
    {
        Interlocked.Increment(ref _staleFrames);
        if (countedLost)
            Interlocked.Decrement(ref _lostFrames);
        else
            BlankendMetrics.FramesDropped.Add(1, BlankendMetrics.DropReasons.Late);
    }

    /// <summary>A frame this gateway had already delivered arrived again and was not delivered twice.</summary>
    public void DuplicateFrame()
    {
        Interlocked.Increment(ref _duplicateFrames);
        BlankendMetrics.FramesDropped.Add(1, BlankendMetrics.DropReasons.Duplicate);
    }

    /// <summary>One frame written to one viewer.</summary>
    public void FrameSent(int bytes)
    {
        Interlocked.Increment(ref _framesSent);
        Interlocked.Add(ref _bytesSent, bytes);
        BlankendMetrics.FramesOut.Add(1, BlankendMetrics.Endpoints.VideoOut);
        BlankendMetrics.BytesOut.Add(bytes, BlankendMetrics.Endpoints.VideoOut);
    }

    /// <summary>A viewer's queue was full and its oldest frame went.</summary>
    public void ViewerDropped()
    {
        Interlocked.Increment(ref _viewerDrops);
        BlankendMetrics.FramesDropped.Add(1, BlankendMetrics.DropReasons.ViewerQueue);
    }

    public void RequestRejected(KeyValuePair<string, object?> endpoint)
    {
        Interlocked.Increment(ref _rejectedRequests);
        BlankendMetrics.RequestsRejected.Add(1, endpoint);
    }
}
