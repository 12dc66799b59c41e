namespace Blankend.Orleans.Grains.Relay;

/// <summary>Why a bus message was not sent or not routed. Names (snake_case) are the status API's and the metric
/// tag's.</summary>
internal enum RelayDropReason
{
    /// <summary>Outbound: the send queue (<c>stream.send_queue_size</c>) was full; the OLDEST queued frame was
    /// dropped.</summary>
    QueueFull,

    /// <summary>Outbound: no ROUTER connected; the frame was dropped rather than queued to go out stale
    /// later.</summary>
    LinkDown,

    /// <summary>Outbound: a heartbeat or link request could not be sent (link down or pipe full).</summary>
    ControlUnsent,

    /// <summary>Outbound: this silo holds no link (relay disabled here, or the frame reached a RelayGrain that is not
    /// the link owner).</summary>
    NoLink,

    /// <summary>Inbound: more arrived than the router grain took in time; the oldest waiting message was
    /// dropped.</summary>
    InboundQueueFull,

    /// <summary>Inbound: not a two-part <c>[client_id, data]</c> message.</summary>
    Malformed,

    /// <summary>Inbound: client_id not valid (see ClientIds: ASCII letters, digits, - _ . : @, at most 128).</summary>
    InvalidClientId,

    /// <summary>Inbound: data is not one JPEG (FF D8 ... FF D9); viewers only take JPEG frames.</summary>
    NotJpeg,

    /// <summary>Inbound: handing the batch to the RelayGrain failed (silo stopping, grain moving).</summary>
    RouteFailed,

    /// <summary>Inbound: a new client_id beyond limits.max_sources / limits.max_bus_sources.</summary>
    TooManySources,
}

/// <summary>
/// The bus link's counters on this silo (one instance per silo, shared by the RelayBridge and the RelayGrain).
/// Plain fields updated with Interlocked: the status API reads them, the "Blankend.Relay" meter observes them, and
/// nothing is allocated per frame.
/// </summary>
internal sealed class RelayCounters
{
    public static readonly string[] DropReasonNames =
    [
        "queue_full",
        "link_down",
        "control_unsent",
        "no_link",
        "inbound_queue_full",
        "malformed",
        "invalid_client_id",
        "not_jpeg",
        "route_failed",
        "too_many_sources",
    ];

    public const int StateDisabled = 0;
    public const int StateConnecting = 1;
    public const int StateConnected = 2;

    public long FramesSent;
    public long BytesSent;
    public long FramesReceived;
    public long BytesReceived;
    public long EchoSuppressed;
    public long EchoedBack;
    public long Forwarded;
    public long DeliveredToViewers;
    public long PipelineTaken;
    public long ProcessedSent;
    public long HeartbeatsSent;
    public long HeartbeatsReceived;
    public long LinkRequestsSent;
    public long ControlReceived;
    public long Connects;
    public long Disconnects;
    public long LastHeartbeatSentUnixMs;
    public long LastHeartbeatReceivedUnixMs;
    public long LastReceivedUnixMs;
    public long LastSentUnixMs;
    public long ConnectedSinceUnixMs;
    public int State;
    public int QueueDepth;

    private readonly long[] _drops = new long[DropReasonNames.Length];

    public void Drop(RelayDropReason reason, long count = 1) => Interlocked.Add(ref _drops[(int)reason], count);

    public long Drops(RelayDropReason reason) => Interlocked.Read(ref _drops[(int)reason]);

    public long TotalDrops
    {
        get
        {
            long n = 0;
            for (var i = 0; i < _drops.Length; i++)
                n += Interlocked.Read(ref _drops[i]);
            return n;
        }
    }

    public Dictionary<string, long> DropsByReason()
    {
        var d = new Dictionary<string, long>(StringComparer.Ordinal);
        for (var i = 0; i < _drops.Length; i++)
        {
            var n = Interlocked.Read(ref _drops[i]);
            if (n > 0)
                d[DropReasonNames[i]] = n;
        }
        return d;
    }

    public string StateName =>
        Volatile.Read(ref State) switch
        {
            StateConnected => "connected",
            StateConnecting => "connecting",
            _ => "disabled",
        };

    public static long NowUnixMs() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
}
