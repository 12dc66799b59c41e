namespace Blankend.Orleans.Grains.Relay;

/// <summary>
/// This silo's end of the bus: the RelayBridge (Relay/Bridge) implements it with a NetMQ DEALER on one poller
/// thread. The RelayGrain opens it when it activates on this silo (so exactly one silo holds the link of an
/// identity) and closes it when it deactivates. Every method returns at once: nothing here waits on the bus.
/// </summary>
internal interface IRelayLink
{
    /// <summary>Starts the DEALER (identity and endpoint from <c>stream.*</c>); idempotent. Never throws: when the
    /// socket cannot be set up (an unusable endpoint) the link stays closed and <see cref="LastError"/> says
    /// why.</summary>
    void Open();

    /// <summary>Why the last <see cref="Open"/> failed; null after a successful one.</summary>
    string? LastError { get; }

    /// <summary>Stops the poller and disposes the socket (linger 0); idempotent; returns within about a
    /// second.</summary>
    void Close();

    bool IsOpen { get; }

    /// <summary>Queues <c>[clientId, payload]</c> for the bus. Neither array is copied nor written: the caller
    /// hands over immutable bytes. When the queue is full the oldest waiting frame is dropped (counted).</summary>
    void Send(byte[] clientId, byte[] payload);

    RelayCounters Counters { get; }
}

/// <summary>
/// Hook for the processing / AI pipeline: a frame received from the bus is offered here first. A pipeline that
/// takes it owns it from then on and returns its output through <see cref="IRelayGrain.SendProcessed"/>
/// (<c>[client_id, out]</c> to the bus; local viewers are the pipeline's to feed). No implementation is registered
/// yet: until the pipeline issue plugs one in, none takes a frame.
/// </summary>
internal interface IBusFramePipeline
{
    bool TryTake(FrameEnvelope frame);
}
