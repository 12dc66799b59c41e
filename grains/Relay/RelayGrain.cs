using System.IO.Hashing;
using System.Text;
using Blankend.Orleans.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Blankend.Orleans.Grains.Relay;

/// <summary>
/// Owner of the bus link of one identity and of its routing rules (docs/protocol.md):
/// <list type="bullet">
/// <item>outbound: camera frames from the ClientGrains go out as <c>[client_id, jpeg]</c>; every payload sent is
/// remembered (hash) for a few seconds so that it is recognised if it comes back;</item>
/// <item>inbound: a frame that is ours coming back is counted (<c>echo_suppressed</c>) and goes nowhere; any other is
/// offered to the pipeline; if none takes it, it goes back to its client_id once (<c>echo_back</c>), to
/// <c>forward_recv_client_id</c> once (<c>forward_recv_enabled</c>), and to local viewers through its ClientGrain
/// with origin Bus (never sent to the bus again from there) unless <c>forward_recv_only</c>.</item>
/// </list>
/// The link itself (socket, poller thread, heartbeat) is the local <see cref="IRelayLink"/>: opened on activation,
/// closed on deactivation, so it lives on exactly the silo where this grain is active.
/// Placed on the silo of its first caller (every silo's bridge calls EnsureLink each second, so after a silo loss
/// the first surviving silo to ask takes the link over).
/// </summary>
[global::Orleans.Placement.PreferLocalPlacement]
internal sealed partial class RelayGrain : Grain, IRelayGrain
{
    private readonly ILogger<RelayGrain> _log;
    private readonly StreamOptions _options;
    private readonly IRelayLink? _link;
    private readonly IBusFramePipeline? _pipeline;
    private readonly RelayCounters _counters;
    private readonly EchoFilter _sent = new(EchoFilter.DefaultTtl, EchoFilter.DefaultCapacity);
    private readonly Dictionary<string, byte[]> _idBytes = new(StringComparer.Ordinal);
    private readonly byte[]? _forwardId;
    private string? _notOwnerReason;
    private bool _owner;

    public RelayGrain(ILogger<RelayGrain> log, IOptions<StreamOptions> options, IServiceProvider services)
    {
        _log = log;
        _options = options.Value;
        _link = services.GetService<IRelayLink>();
        _pipeline = services.GetService<IBusFramePipeline>();
        _counters = _link?.Counters ?? services.GetService<RelayCounters>() ?? new RelayCounters();
        if (_options.ForwardRecvEnabled && _options.ForwardRecvClientId.Length > 0)
            _forwardId = Encoding.UTF8.GetBytes(_options.ForwardRecvClientId);
    }

    private string Identity => this.GetPrimaryKeyString();

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        if (!_options.RelayEnabled)
            _notOwnerReason = "stream.relay_enabled is false on this silo";
        else if (Identity != _options.ZmqIdentity)
            _notOwnerReason = $"'{Identity}' is not this silo's stream.zmq_identity ('{_options.ZmqIdentity}')";
        else if (_link is null)
            _notOwnerReason = "this silo has no RelayBridge";
        else
        {
            _owner = true;
            _link.Open();
            LogOwner(Identity, _options.ZmqEndpoint, RuntimeIdentity);
        }
        if (!_owner)
            LogNotOwner(Identity, RuntimeIdentity, _notOwnerReason!);
        return Task.CompletedTask;
    }

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        if (_owner)
        {
            _link!.Close();
            LogReleased(Identity, RuntimeIdentity, reason.Description);
        }
        return Task.CompletedTask;
    }

    public Task Send(FrameEnvelope frame)
    {
        if (frame.FromBus)
            return Task.CompletedTask; // never back out as camera input
        SendOut(IdBytes(frame.Source), frame.Payload, Environment.TickCount64);
        return Task.CompletedTask;
    }

    public Task SendProcessed(FrameEnvelope frame)
    {
        SendOut(IdBytes(frame.Source), frame.Payload, Environment.TickCount64);
        Interlocked.Increment(ref _counters.ProcessedSent);
        return Task.CompletedTask;
    }

    public Task Receive(BusMessage[] batch)
    {
        var now = Environment.TickCount64;
        foreach (var m in batch)
        {
            var hash = XxHash64.HashToUInt64(m.Data);
            if (_sent.TryConsume(hash, now))
            {
                Interlocked.Increment(ref _counters.EchoSuppressed);
                continue;
            }

            var frame = new FrameEnvelope(m.ClientId, 0, 0, FrameKind.Raw, m.ReceivedUnixMs, FrameOrigin.Bus, m.Data);
            if (_pipeline is not null && _pipeline.TryTake(frame))
            {
                Interlocked.Increment(ref _counters.PipelineTaken);
                continue;
            }

            var id = IdBytes(m.ClientId);
            if (_options.EchoBack)
            {
                SendOut(id, m.Data, now, hash);
                Interlocked.Increment(ref _counters.EchoedBack);
            }
            // One copy to the forward id; when it IS the frame's own client_id and echo_back already sent it there,
            // a second copy would be the original's "sent twice" bug.
            if (_forwardId is not null && !(_options.EchoBack && m.ClientId == _options.ForwardRecvClientId))
            {
                SendOut(_forwardId, m.Data, now, hash);
                Interlocked.Increment(ref _counters.Forwarded);
            }
            if (!_options.ForwardRecvOnly)
            {
                // Same path as a camera frame (seq, meta, fan-out); origin Bus keeps it off the outbound rule.
                // Not awaited: calls from this activation to the ClientGrain keep their order, and the bus never
                // waits on a source.
                Observe(GrainFactory.GetGrain<IClientGrain>(m.ClientId).Publish(frame), m.ClientId);
                Interlocked.Increment(ref _counters.DeliveredToViewers);
            }
        }
        return Task.CompletedTask;
    }

    public Task<RelayStatus> EnsureLink()
    {
        if (_owner && !_link!.IsOpen)
            _link.Open(); // a failed open (unusable endpoint) is retried every keeper round
        return GetStatus();
    }

    public Task Release()
    {
        DeactivateOnIdle();
        return Task.CompletedTask;
    }

    public Task<RelayStatus> GetStatus()
    {
        var c = _counters;
        var failed = _owner && !_link!.IsOpen;
        var state =
            failed ? "failed"
            : _owner ? c.StateName
            : "disabled";
        return Task.FromResult(
            new RelayStatus
            {
                State = state,
                Detail =
                    failed ? _link!.LastError
                    : _owner
                        ? state == "connected" ? null
                            : $"no ROUTER connected at {_options.ZmqEndpoint} yet; retrying"
                    : _notOwnerReason,
                Identity = Identity,
                Endpoint = _options.ZmqEndpoint,
                Silo = RuntimeIdentity,
                FramesSent = Interlocked.Read(ref c.FramesSent),
                BytesSent = Interlocked.Read(ref c.BytesSent),
                FramesReceived = Interlocked.Read(ref c.FramesReceived),
                BytesReceived = Interlocked.Read(ref c.BytesReceived),
                EchoSuppressed = Interlocked.Read(ref c.EchoSuppressed),
                EchoedBack = Interlocked.Read(ref c.EchoedBack),
                Forwarded = Interlocked.Read(ref c.Forwarded),
                DeliveredToViewers = Interlocked.Read(ref c.DeliveredToViewers),
                PipelineTaken = Interlocked.Read(ref c.PipelineTaken),
                ProcessedSent = Interlocked.Read(ref c.ProcessedSent),
                HeartbeatsSent = Interlocked.Read(ref c.HeartbeatsSent),
                HeartbeatsReceived = Interlocked.Read(ref c.HeartbeatsReceived),
                LinkRequestsSent = Interlocked.Read(ref c.LinkRequestsSent),
                ControlReceived = Interlocked.Read(ref c.ControlReceived),
                Drops = c.TotalDrops,
                DropsByReason = c.DropsByReason(),
                LastHeartbeatSentUnixMs = Interlocked.Read(ref c.LastHeartbeatSentUnixMs),
                LastHeartbeatReceivedUnixMs = Interlocked.Read(ref c.LastHeartbeatReceivedUnixMs),
                LastReceivedUnixMs = Interlocked.Read(ref c.LastReceivedUnixMs),
                LastSentUnixMs = Interlocked.Read(ref c.LastSentUnixMs),
                ConnectedSinceUnixMs = Interlocked.Read(ref c.ConnectedSinceUnixMs),
                Connects = Interlocked.Read(ref c.Connects),
                Disconnects = Interlocked.Read(ref c.Disconnects),
                QueueDepth = Volatile.Read(ref c.QueueDepth),
                SendQueueSize = _options.SendQueueSize,
                EchoBack = _options.EchoBack,
                ForwardRecvEnabled = _options.ForwardRecvEnabled,
                ForwardRecvClientId = _options.ForwardRecvEnabled ? _options.ForwardRecvClientId : null,
                ForwardRecvOnly = _options.ForwardRecvOnly,
                HeartbeatEnabled = _options.HeartbeatEnabled,
                HeartbeatIntervalMs = _options.HeartbeatIntervalMs,
                LinkRequestEnabled = _options.LinkRequestEnabled,
            }
        );
    }

    private void SendOut(byte[] clientId, byte[] payload, long now, ulong? knownHash = null)
    {
        if (!_owner)
        {
            _counters.Drop(RelayDropReason.NoLink);
            return;
        }
        // Remembered before it leaves, so that an echo can never overtake the bookkeeping.
        _sent.Add(knownHash ?? XxHash64.HashToUInt64(payload), now);
        _link!.Send(clientId, payload);
    }

    /// <summary>UTF-8 bytes of a client_id, made once per id (the bus frame is immutable, so it is shared).</summary>
    private byte[] IdBytes(string clientId)
    {
        if (_idBytes.TryGetValue(clientId, out var bytes))
            return bytes;
        if (_idBytes.Count >= 4096)
            _idBytes.Clear();
        return _idBytes[clientId] = Encoding.UTF8.GetBytes(clientId);
    }

    private void Observe(Task call, string source)
    {
        if (call.IsCompletedSuccessfully)
            return;
        call.ContinueWith(
            static (t, state) =>
            {
                var (grain, source) = ((RelayGrain, string))state!;
                grain.LogPublishFailed(t.Exception!.GetBaseException(), source);
            },
            (this, source),
            CancellationToken.None,
            TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default
        );
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "bus link '{Identity}' -> {Endpoint} held by silo {Silo}")]
    private partial void LogOwner(string identity, string endpoint, string silo);

    [LoggerMessage(
        Level = LogLevel.Information,
        Message = "bus link '{Identity}' is not opened on silo {Silo}: {Reason}"
    )]
    private partial void LogNotOwner(string identity, string silo, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "bus link '{Identity}' released by silo {Silo} ({Reason})")]
    private partial void LogReleased(string identity, string silo, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "bus frame for {Source}: handing it to the source failed")]
    private partial void LogPublishFailed(Exception e, string source);
}
