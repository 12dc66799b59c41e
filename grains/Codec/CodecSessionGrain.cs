using Blankend.Orleans.Codec;
using Microsoft.Extensions.Logging;
using Orleans.Dashboard;

namespace Blankend.Orleans.Grains.Codec;

/// <summary>
/// Orleans face of a <see cref="DecodeSession"/> (key: client_id): one connection at a time, chunks in order
/// (Push is not reentrant: the gateway's calls are awaited one at a time anyway). The session itself does its
/// I/O on the thread pool, never on this grain's scheduler.
/// </summary>
internal sealed partial class CodecSessionGrain(CodecHost host, ILogger<CodecSessionGrain> log)
    : Grain,
        ICodecSessionGrain
{
    private DecodeSession? _session;
    private Guid _connection;

    private string ClientId => this.GetPrimaryKeyString();

    public async Task<DecodeOpenResult> Open(Guid connection, string codec, IDecodeSessionObserver observer)
    {
        if (_session is { IsEnded: false })
            return new DecodeOpenResult(
                DecodeOpenStatus.Busy,
                $"client_id '{ClientId}' already has a live /video_codec session ({_session.Codec})"
            );
        if (!VideoCodecs.TryParse(codec, out var canonical))
            return new DecodeOpenResult(DecodeOpenStatus.Unavailable, $"unknown codec '{codec}'");

        var (session, unavailable) = await host.OpenSessionAsync(ClientId, canonical, end => Notify(observer, end));
        if (session is null)
            return new DecodeOpenResult(DecodeOpenStatus.Unavailable, unavailable!);
        _session = session;
        _connection = connection;
        LogOpened(log, ClientId, canonical, session.Plan.Decoder);
        return new DecodeOpenResult(DecodeOpenStatus.Opened, session.Plan.Decoder);
    }

    /// <summary>Per chunk: not profiled by the Orleans Dashboard (its filter would time and record every call); the
    /// codec metrics (<see cref="CodecMetrics"/>) and the status API cover it.</summary>
    [NoProfiling]
    public async Task<DecodePushResult> Push(Guid connection, CodecChunk chunk)
    {
        if (_session is not { } session || connection != _connection)
            return new DecodePushResult(
                new DecodeSessionEnd(
                    "no_session",
                    "decode_failed",
                    "this connection has no live decode session",
                    1011,
                    0
                )
            );
        var end = await session.PushAsync(chunk.Data);
        return end is null ? DecodePushResult.Ok : new DecodePushResult(end);
    }

    public Task Close(Guid connection)
    {
        if (_session is { } session && connection == _connection)
        {
            session.Stop(DecodeEndReasons.ClientClosed, null, "the client closed the connection");
        }
        return Task.CompletedTask;
    }

    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        if (_session is { IsEnded: false } session)
        {
            session.Kill(
                DecodeEndReasons.ServiceStopping,
                "service_stopping",
                "decode session deactivated: " + reason.Description,
                1001
            );
            try
            {
                await session.Completion.WaitAsync(TimeSpan.FromSeconds(5), cancellationToken);
            }
            catch (Exception e) when (e is TimeoutException or OperationCanceledException) { }
        }
    }

    private void Notify(IDecodeSessionObserver observer, DecodeSessionEnd end)
    {
        try
        {
            _ = observer.OnEnded(end);
        }
        catch (Exception e)
        {
            LogNotifyFailed(log, e, ClientId);
        }
    }

    [LoggerMessage(
        Level = LogLevel.Information,
        Message = "decode {ClientId}: session opened ({Codec}, decoder {Decoder})"
    )]
    private static partial void LogOpened(ILogger log, string clientId, string codec, string decoder);

    [LoggerMessage(
        Level = LogLevel.Warning,
        Message = "decode {ClientId}: telling the gateway that the session ended failed"
    )]
    private static partial void LogNotifyFailed(ILogger log, Exception e, string clientId);
}
