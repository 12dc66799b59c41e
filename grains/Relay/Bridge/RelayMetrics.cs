using System.Diagnostics.Metrics;
using Blankend.Orleans.Grains.Relay;

namespace Blankend.Orleans.Grains.Relay.Bridge;

/// <summary>
/// The bus link's metrics: meter <see cref="MeterName"/> (add it by name to the OpenTelemetry / Prometheus
/// setup). Observable instruments over <see cref="RelayCounters"/>: read at collection time, nothing per frame.
/// A silo that does not hold the link reports zeros and <c>link.state</c> 0.
/// </summary>
internal sealed class RelayMetrics : IDisposable
{
    public const string MeterName = "Blankend.Relay";

    private readonly Meter _meter;

    public Meter Meter => _meter;

    public RelayMetrics(RelayCounters c, IMeterFactory? factory = null)
    {
        _meter = factory?.Create(MeterName) ?? new Meter(MeterName);
        _meter.CreateObservableCounter(
            "blankend.relay.frames.sent",
            () => Interlocked.Read(ref c.FramesSent),
            "{frame}",
            "Frames sent to the bus ([client_id, data])"
        );
        _meter.CreateObservableCounter(
            "blankend.relay.bytes.sent",
            () => Interlocked.Read(ref c.BytesSent),
            "By",
            "Payload bytes sent to the bus"
        );
        _meter.CreateObservableCounter(
            "blankend.relay.frames.received",
            () => Interlocked.Read(ref c.FramesReceived),
            "{frame}",
            "Data frames received from the bus (control messages excluded)"
        );
        _meter.CreateObservableCounter(
            "blankend.relay.bytes.received",
            () => Interlocked.Read(ref c.BytesReceived),
            "By",
            "Payload bytes received from the bus"
        );
        _meter.CreateObservableCounter(
            "blankend.relay.drops",
            () => Drops(c),
            "{message}",
            "Bus messages dropped, by reason"
        );
        _meter.CreateObservableCounter(
            "blankend.relay.echo_suppressed",
            () => Interlocked.Read(ref c.EchoSuppressed),
            "{frame}",
            "Inbound frames recognised as our own sends coming back"
        );
        _meter.CreateObservableCounter(
            "blankend.relay.echoed_back",
            () => Interlocked.Read(ref c.EchoedBack),
            "{frame}",
            "Inbound frames sent back to their client_id"
        );
        _meter.CreateObservableCounter(
            "blankend.relay.forwarded",
            () => Interlocked.Read(ref c.Forwarded),
            "{frame}",
            "Inbound frames sent to forward_recv_client_id"
        );
        _meter.CreateObservableCounter(
            "blankend.relay.delivered",
            () => Interlocked.Read(ref c.DeliveredToViewers),
            "{frame}",
            "Inbound frames handed to local viewers"
        );
        _meter.CreateObservableCounter(
            "blankend.relay.heartbeats.sent",
            () => Interlocked.Read(ref c.HeartbeatsSent),
            "{message}"
        );
        _meter.CreateObservableCounter(
            "blankend.relay.heartbeats.received",
            () => Interlocked.Read(ref c.HeartbeatsReceived),
            "{message}"
        );
        _meter.CreateObservableCounter(
            "blankend.relay.control.received",
            () => Interlocked.Read(ref c.ControlReceived),
            "{message}",
            "Inbound control messages (reserved client_ids)"
        );
        _meter.CreateObservableCounter(
            "blankend.relay.link.connects",
            () => Interlocked.Read(ref c.Connects),
            "{connect}"
        );
        _meter.CreateObservableCounter(
            "blankend.relay.link.disconnects",
            () => Interlocked.Read(ref c.Disconnects),
            "{disconnect}",
            "Link drops (router gone, or a message over stream.max_frame_bytes refused by ZeroMQ)"
        );
        _meter.CreateObservableGauge(
            "blankend.relay.link.state",
            () => Volatile.Read(ref c.State),
            description: "0 disabled / not held here, 1 connecting, 2 connected"
        );
        _meter.CreateObservableGauge(
            "blankend.relay.queue.depth",
            () => Volatile.Read(ref c.QueueDepth),
            "{frame}",
            "Frames waiting in the send queue"
        );
        _meter.CreateObservableGauge(
            "blankend.relay.heartbeat.last_sent",
            () => Seconds(Interlocked.Read(ref c.LastHeartbeatSentUnixMs)),
            "s",
            "Unix time of the last heartbeat sent"
        );
        _meter.CreateObservableGauge(
            "blankend.relay.heartbeat.last_received",
            () => Seconds(Interlocked.Read(ref c.LastHeartbeatReceivedUnixMs)),
            "s",
            "Unix time of the last heartbeat received"
        );
        _meter.CreateObservableGauge(
            "blankend.relay.last_received",
            () => Seconds(Interlocked.Read(ref c.LastReceivedUnixMs)),
            "s",
            "Unix time of the last message received from the bus"
        );
    }

    private static IEnumerable<Measurement<long>> Drops(RelayCounters c)
    {
        var names = RelayCounters.DropReasonNames;
        for (var i = 0; i < names.Length; i++)
            yield return new Measurement<long>(
                c.Drops((RelayDropReason)i),
                new KeyValuePair<string, object?>("reason", names[i])
            );
    }

    private static IEnumerable<Measurement<double>> Seconds(long unixMs)
    {
        if (unixMs > 0)
            yield return new Measurement<double>(unixMs / 1000.0);
    }

    public void Dispose() => _meter.Dispose();
}
