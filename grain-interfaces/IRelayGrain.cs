namespace Blankend.Orleans;

/// <summary>
/// The ZeroMQ bus link of one identity (the key is <c>stream.zmq_identity</c>) and its routing rules.
/// Single activation per identity in the cluster: the silo where it is active holds THE one DEALER socket for that
/// identity (two DEALERs with one identity fight over it at the ROUTER). When that silo dies the grain activates
/// on another silo (every silo's RelayBridge calls <see cref="EnsureLink"/> about once a second) and the link
/// follows it. See docs/protocol.md.
/// </summary>
public interface IRelayGrain : IGrainWithStringKey
{
    /// <summary>A camera frame (origin /video_in or /video_codec) to send to the bus as <c>[client_id, jpeg]</c>.
    /// One-way and called by the source's ClientGrain only (one activation calling another keeps the order of
    /// its calls in practice; a test verifies it), so ingest never waits on the bus.</summary>
    [OneWay]
    Task Send(FrameEnvelope frame);

    /// <summary>Output of the processing pipeline for a bus frame: goes back to the bus as <c>[client_id,
    /// out]</c>.</summary>
    [OneWay]
    Task SendProcessed(FrameEnvelope frame);

    /// <summary>Frames received from the bus, in arrival order (the bridge batches what arrived meanwhile).
    /// Awaited by the bridge's single inbound pump so that the order is kept.</summary>
    Task Receive(BusMessage[] batch);

    /// <summary>Activates the link owner if needed (a keep-alive from every silo's bridge) and answers its
    /// state.</summary>
    Task<RelayStatus> EnsureLink();

    Task<RelayStatus> GetStatus();

    /// <summary>Closes the link here and deactivates; the next <see cref="EnsureLink"/> (any silo's bridge, within
    /// about a second) activates the grain again, possibly on another silo, whose bridge then connects. For
    /// operators who want to move the link (e.g. before draining a silo), and for tests.</summary>
    Task Release();
}

/// <summary>A data message from the bus: <c>[client_id, data]</c> as the DEALER receives it.</summary>
[GenerateSerializer, Immutable, Alias("blankend.BusMessage")]
public sealed record BusMessage(
    [property: Id(0)] string ClientId,
    [property: Id(1)] byte[] Data,
    [property: Id(2)] long ReceivedUnixMs
);

/// <summary>Link state and counters of the bus link (answered by the silo holding it).</summary>
[GenerateSerializer, Immutable, Alias("blankend.RelayStatus")]
public sealed record RelayStatus
{
    /// <summary><c>connected</c> (a ROUTER is connected over TCP), <c>connecting</c> (no ROUTER reachable yet: the
    /// socket retries every 100 ms..1 s), <c>failed</c> (the socket could not be set up, e.g. an unusable endpoint;
    /// retried every second), <c>disabled</c> (stream.relay_enabled is false, or this grain's key is not the
    /// configured identity), <c>unknown</c> (the cluster did not answer).</summary>
    [Id(0)]
    public string State { get; init; } = "disabled";

    [Id(1)]
    public string? Detail { get; init; }

    [Id(2)]
    public string Identity { get; init; } = "";

    [Id(3)]
    public string Endpoint { get; init; } = "";

    /// <summary>Silo that holds the link (where the RelayGrain is active).</summary>
    [Id(4)]
    public string? Silo { get; init; }

    [Id(5)]
    public long FramesSent { get; init; }

    [Id(6)]
    public long BytesSent { get; init; }

    [Id(7)]
    public long FramesReceived { get; init; }

    [Id(8)]
    public long BytesReceived { get; init; }

    /// <summary>Inbound frames recognised as our own (hash seen in the last seconds): neither delivered nor
    /// re-sent.</summary>
    [Id(9)]
    public long EchoSuppressed { get; init; }

    /// <summary>Inbound frames sent back to their client_id (echo_back).</summary>
    [Id(10)]
    public long EchoedBack { get; init; }

    /// <summary>Inbound frames copied to forward_recv_client_id.</summary>
    [Id(11)]
    public long Forwarded { get; init; }

    /// <summary>Inbound frames handed to the source's ClientGrain (local viewers).</summary>
    [Id(12)]
    public long DeliveredToViewers { get; init; }

    [Id(13)]
    public long PipelineTaken { get; init; }

    [Id(14)]
    public long ProcessedSent { get; init; }

    [Id(15)]
    public long HeartbeatsSent { get; init; }

    [Id(16)]
    public long HeartbeatsReceived { get; init; }

    [Id(17)]
    public long LinkRequestsSent { get; init; }

    [Id(18)]
    public long ControlReceived { get; init; }

    [Id(19)]
    public long Drops { get; init; }

    /// <summary>Drops by reason (see docs/protocol.md); only reasons seen so far are listed.</summary>
    [Id(20)]
    public Dictionary<string, long> DropsByReason { get; init; } = [];

    [Id(21)]
    public long LastHeartbeatSentUnixMs { get; init; }

    [Id(22)]
    public long LastHeartbeatReceivedUnixMs { get; init; }

    [Id(23)]
    public long LastReceivedUnixMs { get; init; }

    [Id(24)]
    public long LastSentUnixMs { get; init; }

    [Id(25)]
    public long ConnectedSinceUnixMs { get; init; }

    [Id(26)]
    public long Connects { get; init; }

    [Id(27)]
    public long Disconnects { get; init; }

    [Id(28)]
    public int QueueDepth { get; init; }

    [Id(29)]
    public int SendQueueSize { get; init; }

    [Id(30)]
    public bool EchoBack { get; init; }

    [Id(31)]
    public bool ForwardRecvEnabled { get; init; }

    [Id(32)]
    public string? ForwardRecvClientId { get; init; }

    [Id(33)]
    public bool ForwardRecvOnly { get; init; }

    [Id(34)]
    public bool HeartbeatEnabled { get; init; }

    [Id(35)]
    public int HeartbeatIntervalMs { get; init; }

    [Id(36)]
    public bool LinkRequestEnabled { get; init; }
}

/// <summary>Client ids of the bus's control messages (see docs/protocol.md). Every id starting with
/// <see cref="ClientIds.ReservedPrefix"/> is control: never a camera, never delivered to viewers.</summary>
public static class BusControlIds
{
    /// <summary>Heartbeat, sent every <c>stream.heartbeat_interval_ms</c> while
    /// <c>stream.heartbeat_enabled</c>.</summary>
    public const string Heartbeat = "__heartbeat__";

    /// <summary>True for every reserved id (the configured <c>stream.link_request_client_id</c> must be one
    /// too).</summary>
    public static bool IsControl(string clientId) =>
        clientId.StartsWith(ClientIds.ReservedPrefix, StringComparison.Ordinal);
}
