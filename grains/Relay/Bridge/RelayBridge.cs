using Blankend.Orleans.Configuration;
using Blankend.Orleans.Grains.Relay;
using Blankend.Orleans.Limits;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Blankend.Orleans.Grains.Relay.Bridge;

/// <summary>
/// The silo's end of the ZeroMQ bus (one per silo). Two jobs:
/// <list type="number">
/// <item>As <see cref="IRelayLink"/>: holds the DEALER socket (<see cref="RelayLink"/>) while the RelayGrain of the
/// configured identity is active on THIS silo. The grain opens and closes it, so a cluster has one link per identity,
/// on the silo where that grain lives.</item>
/// <item>As a hosted service, only while <c>stream.relay_enabled</c>: calls <see cref="IRelayGrain.EnsureLink"/>
/// once a second. That activates the link owner at start-up (wherever Orleans places it), keeps it from being
/// collected when no frames flow, and re-activates it on a surviving silo (whose bridge then connects) when the
/// silo that held it dies.</item>
/// </list>
/// With the relay disabled nothing runs: no socket, no poller thread, no keeper loop.
/// </summary>
internal sealed partial class RelayBridge : IRelayLink, IHostedService, IDisposable
{
    /// <summary>How often each silo checks that the link owner is active.</summary>
    public static readonly TimeSpan KeeperInterval = TimeSpan.FromSeconds(1);

    private readonly StreamOptions _options;
    private readonly IGrainFactory _grains;
    private readonly ILogger<RelayBridge> _log;
    private readonly Lock _gate = new();
    private RelayLink? _link;
    private CancellationTokenSource? _keeperCts;
    private Task _keeper = Task.CompletedTask;
    private int _disposed;

    private readonly LiveSources? _sources;

    public RelayBridge(
        IOptions<StreamOptions> options,
        IGrainFactory grains,
        RelayCounters counters,
        RelayMetrics metrics,
        ILogger<RelayBridge> log,
        LiveSources? sources = null
    )
    {
        _sources = sources;
        _options = options.Value;
        _grains = grains;
        Counters = counters;
        _log = log;
        _ = metrics; // created with the bridge: its instruments observe Counters
    }

    public RelayCounters Counters { get; }

    public bool IsOpen
    {
        get
        {
            lock (_gate)
                return _link is not null;
        }
    }

    public string? LastError { get; private set; }

    public void Open()
    {
        lock (_gate)
        {
            if (_link is not null || !_options.RelayEnabled)
                return;
            try
            {
                _link = new RelayLink(
                    _options,
                    Counters,
                    _grains.GetGrain<IRelayGrain>(_options.ZmqIdentity),
                    _log,
                    _sources
                );
                LastError = null;
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                if (LastError is null)
                    LogOpenFailed(e, _options.ZmqIdentity, _options.ZmqEndpoint);
                LastError = $"cannot open a DEALER to '{_options.ZmqEndpoint}': {e.GetType().Name}: {e.Message}";
                return;
            }
        }
        LogOpened(_options.ZmqIdentity, _options.ZmqEndpoint);
    }

    public void Close()
    {
        RelayLink? link;
        lock (_gate)
        {
            link = _link;
            _link = null;
        }
        link?.Dispose();
    }

    public void Send(byte[] clientId, byte[] payload)
    {
        var link = Volatile.Read(ref _link);
        if (link is null)
        {
            Counters.Drop(RelayDropReason.NoLink);
            return;
        }
        link.Enqueue(new RelayLink.Outbound(clientId, payload));
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (!_options.RelayEnabled)
            return Task.CompletedTask;
        _keeperCts = new CancellationTokenSource();
        _keeper = Task.Run(() => KeepLinkAsync(_keeperCts.Token), CancellationToken.None);
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_keeperCts is null)
            return;
        await _keeperCts.CancelAsync();
        try
        {
            await _keeper.WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException) { }
        // The link itself closes when the RelayGrain deactivates (silo shutdown follows this service's stop).
    }

    private async Task KeepLinkAsync(CancellationToken ct)
    {
        var grain = _grains.GetGrain<IRelayGrain>(_options.ZmqIdentity);
        string? lastHolder = null;
        var failures = 0;
        while (!ct.IsCancellationRequested)
        {
            try
            {
                var status = await grain.EnsureLink().WaitAsync(TimeSpan.FromSeconds(5), ct);
                failures = 0;
                if (status.Silo != lastHolder)
                {
                    lastHolder = status.Silo;
                    LogHolder(_options.ZmqIdentity, status.Silo ?? "?", status.State);
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                if (failures++ % 30 == 0)
                    LogKeeperFailed(e, _options.ZmqIdentity);
            }
            try
            {
                await Task.Delay(KeeperInterval, ct);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>Idempotent: the container disposes this instance once per registration that hands it out.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
            return;
        _keeperCts?.Cancel();
        Close();
        _keeperCts?.Dispose();
    }

    [LoggerMessage(
        Level = LogLevel.Information,
        Message = "bus link '{Identity}' opening on this silo: DEALER -> {Endpoint}"
    )]
    private partial void LogOpened(string identity, string endpoint);

    [LoggerMessage(
        Level = LogLevel.Error,
        Message = "bus link '{Identity}': cannot open a DEALER to {Endpoint}; retrying every second"
    )]
    private partial void LogOpenFailed(Exception e, string identity, string endpoint);

    [LoggerMessage(Level = LogLevel.Information, Message = "bus link '{Identity}' is held by silo {Silo} ({State})")]
    private partial void LogHolder(string identity, string silo, string state);

    [LoggerMessage(
        Level = LogLevel.Warning,
        Message = "bus link '{Identity}': the link owner did not answer; retrying every second"
    )]
    private partial void LogKeeperFailed(Exception e, string identity);
}
