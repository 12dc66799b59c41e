using System.Net;
using Blankend.Orleans.Configuration;
using Blankend.Orleans.Limits;
using Blankend.Orleans.Telemetry;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;

namespace Blankend.Orleans.Gateway.Security;

/// <summary>
/// <c>limits.*</c> for the WebSocket paths, checked after authorization and before the endpoint upgrades: the
/// connection total, per client address, distinct live sources (ingest) and /video_codec sessions. A refusal is
/// 429 problem+json (with Retry-After), counted in <c>blankend.limits.refused</c>; the slot is held for as long
/// as the request (the WebSocket) lives. Ingest sockets also get the idle timeout (<c>stream.idle_timeout_s</c>).
/// </summary>
internal sealed partial class ConnectionLimits(
    IOptions<LimitsOptions> limits,
    IOptions<StreamOptions> stream,
    LiveSources sources,
    ILogger<ConnectionLimits> log
)
{
    private readonly Dictionary<IPAddress, int> _perIp = [];
    private readonly object _lock = new();
    private int _total;
    private int _codec;
    private readonly RefusalLog _throttle = new();

    public int Open => Volatile.Read(ref _total);

    public async Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        var path = context.Request.Path.Value;
        if (path is not ("/video_in" or "/video_out" or "/video_codec") || !context.WebSockets.IsWebSocketRequest)
        {
            await next(context);
            return;
        }
        var l = limits.Value;
        var ip = context.Connection.RemoteIpAddress ?? IPAddress.None;
        var codec = path == "/video_codec";
        string? source = null;
        if (path != "/video_out")
        {
            var q = context.Request.Query["client_id"];
            var id =
                q.Count == 0 ? stream.Value.DefaultClientId
                : q.Count == 1 ? q[0]
                : null;
            if (id is not null && ClientIds.IsValid(id, out _))
                source = id; // a bad id is the endpoint's 400
        }

        KeyValuePair<string, object?>? refused = null;
        string detail = "";
        lock (_lock)
        {
            _perIp.TryGetValue(ip, out var fromIp);
            if (_total >= l.MaxConnections)
                (refused, detail) = (
                    SecurityMetrics.Limits.Connections,
                    $"limits.max_connections ({l.MaxConnections}) reached"
                );
            else if (fromIp >= l.MaxConnectionsPerIp)
                (refused, detail) = (
                    SecurityMetrics.Limits.ConnectionsPerIp,
                    $"limits.max_connections_per_ip ({l.MaxConnectionsPerIp}) reached for this address"
                );
            else if (codec && _codec >= l.MaxCodecSessions)
                (refused, detail) = (
                    SecurityMetrics.Limits.CodecSessions,
                    $"limits.max_codec_sessions ({l.MaxCodecSessions}) reached"
                );
            else if (source is not null && !sources.TryAcquireSocket(source))
                (refused, detail) = (
                    SecurityMetrics.Limits.Sources,
                    $"limits.max_sources ({l.MaxSources}) reached: no new source now"
                );
            else
            {
                _total++;
                _perIp[ip] = fromIp + 1;
                if (codec)
                    _codec++;
            }
        }
        if (refused is { } which)
        {
            SecurityMetrics.Limit(which);
            if (_throttle.TryEnter(out var skipped))
                LogRefused(log, path, ip.ToString(), detail, skipped);
            context.Response.Headers.RetryAfter = "5";
            await Results
                .Problem(
                    title: "too many connections",
                    detail: detail,
                    statusCode: StatusCodes.Status429TooManyRequests,
                    instance: context.Request.Path
                )
                .ExecuteAsync(context);
            return;
        }

        try
        {
            var idle = stream.Value.IdleTimeoutSeconds;
            if (path != "/video_out" && idle > 0 && context.Features.Get<IHttpWebSocketFeature>() is { } ws)
            {
                var endpoint = codec ? BlankendMetrics.Endpoints.VideoCodec : BlankendMetrics.Endpoints.VideoIn;
                var name = source ?? "?";
                context.Features.Set<IHttpWebSocketFeature>(
                    new IdleTimeoutWebSocketFeature(ws, TimeSpan.FromSeconds(idle), () =>
                    {
                        SecurityMetrics.IdleClosed.Add(1, endpoint);
                        LogIdle(log, path, name, idle);
                    })
                );
            }
            await next(context);
        }
        finally
        {
            lock (_lock)
            {
                _total--;
                if (codec)
                    _codec--;
                if (_perIp.TryGetValue(ip, out var n) && n > 1)
                    _perIp[ip] = n - 1;
                else
                    _perIp.Remove(ip);
            }
            if (source is not null)
                sources.ReleaseSocket(source);
        }
    }

    [LoggerMessage(
        Level = LogLevel.Warning,
        Message = "refused {Path} from {Remote} with 429: {Detail} ({Skipped} more refusals not logged since the last line)"
    )]
    private static partial void LogRefused(ILogger log, string path, string remote, string detail, int skipped);

    [LoggerMessage(
        Level = LogLevel.Information,
        Message = "{Path} {Source}: nothing received for {Seconds} s (stream.idle_timeout_s); closing with 1001"
    )]
    private static partial void LogIdle(ILogger log, string path, string source, int seconds);
}
