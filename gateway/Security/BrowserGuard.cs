using Blankend.Orleans.Configuration;
using Blankend.Orleans.Telemetry;
using Microsoft.Extensions.Options;

namespace Blankend.Orleans.Gateway.Security;

/// <summary>
/// The browser protections, in front of authentication: a <c>Host</c> outside <c>auth.allowed_hosts</c> -> 400
/// (DNS rebinding); an <c>Origin</c> that is neither the service's own nor in <c>auth.allowed_origins</c> -> 403
/// on WebSocket upgrades and POST/DELETE (cross-site WebSocket hijacking, CSRF); a POST/DELETE body not declared
/// <c>application/json</c>, <c>image/jpeg</c> or <c>image/png</c> -> 415 (a plain <c>fetch</c> cannot send those
/// cross-site without a preflight). Requests without <c>Origin</c> (non-browser clients) pass the origin rule.
/// </summary>
internal sealed partial class BrowserGuard
{
    private readonly string[] _hosts;
    private readonly HashSet<string> _origins;
    private readonly bool _anyHost;
    private readonly ILogger<BrowserGuard> _log;
    private readonly RefusalLog _throttle = new();

    public BrowserGuard(IOptions<AuthOptions> auth, IConfiguration config, ILogger<BrowserGuard> log)
    {
        var hosts = AuthOptions.Flatten(auth.Value.AllowedHosts);
        _hosts = hosts.Length > 0 ? hosts : ListenAddresses.DefaultHosts(config);
        _anyHost = _hosts.Contains("*");
        _origins = AuthOptions
            .Flatten(auth.Value.AllowedOrigins)
            .Select(o => o == "null" ? o : Normalize(new Uri(o)))
            .ToHashSet(StringComparer.OrdinalIgnoreCase);
        _log = log;
    }

    public async Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        var request = context.Request;
        if (!_anyHost && !HostAllowed(request.Host.Host))
        {
            SecurityMetrics.Refused(SecurityMetrics.Reasons.Host);
            Log(
                400,
                request.Method,
                request.Path.Value ?? "",
                ProblemAuthorizationResultHandler.Remote(context),
                $"host '{Cut(request.Host.Value ?? "")}' not in auth.allowed_hosts"
            );
            await Results
                .Problem(
                    title: "host not allowed",
                    detail: "the Host header is not in auth.allowed_hosts",
                    statusCode: StatusCodes.Status400BadRequest
                )
                .ExecuteAsync(context);
            return;
        }
        var changes =
            HttpMethods.IsPost(request.Method)
            || HttpMethods.IsDelete(request.Method)
            || HttpMethods.IsPut(request.Method)
            || HttpMethods.IsPatch(request.Method);
        if (
            (changes || context.WebSockets.IsWebSocketRequest)
            && request.Headers.Origin.Count > 0
            && !OriginAllowed(request)
        )
        {
            SecurityMetrics.Refused(SecurityMetrics.Reasons.Origin);
            Log(
                403,
                request.Method,
                request.Path.Value ?? "",
                ProblemAuthorizationResultHandler.Remote(context),
                $"cross-origin request from '{Cut(request.Headers.Origin.ToString())}'"
            );
            await Results
                .Problem(
                    title: "origin not allowed",
                    detail: "a page from another origin may not use this route; add it to auth.allowed_origins if it is trusted",
                    statusCode: StatusCodes.Status403Forbidden,
                    instance: request.Path
                )
                .ExecuteAsync(context);
            return;
        }
        if (changes && !ContentTypeAllowed(request))
        {
            SecurityMetrics.Refused(SecurityMetrics.Reasons.ContentType);
            Log(
                415,
                request.Method,
                request.Path.Value ?? "",
                ProblemAuthorizationResultHandler.Remote(context),
                $"content type '{Cut(request.ContentType ?? "(none)")}'"
            );
            await Results
                .Problem(
                    title: "unsupported content type",
                    detail: $"declare the body as application/json (images: image/jpeg or image/png); got '{Cut(request.ContentType ?? "(none)")}'",
                    statusCode: StatusCodes.Status415UnsupportedMediaType,
                    instance: request.Path
                )
                .ExecuteAsync(context);
            return;
        }
        await next(context);
    }

    private bool HostAllowed(string host)
    {
        if (host.Length == 0)
            return true; // HTTP/1.0 without Host: no name a rebinding page could use
        foreach (var h in _hosts)
        {
            if (
                h.StartsWith("*.", StringComparison.Ordinal)
                    ? host.EndsWith(h[1..], StringComparison.OrdinalIgnoreCase)
                    : host.Equals(h, StringComparison.OrdinalIgnoreCase)
            )
                return true;
        }
        return false;
    }

    private bool OriginAllowed(HttpRequest request)
    {
        var origin = request.Headers.Origin.ToString();
        if (_origins.Contains(origin))
            return true;
        if (!Uri.TryCreate(origin, UriKind.Absolute, out var o))
            return false;
        var normalized = Normalize(o);
        if (_origins.Contains(normalized))
            return true;
        // The service's own origin: the scheme and Host this request came with.
        return Uri.TryCreate($"{request.Scheme}://{request.Host.Value}", UriKind.Absolute, out var self)
            && normalized.Equals(Normalize(self), StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>POST/DELETE: a body must be declared JSON or an image type. A body-less DELETE needs none (a DELETE
    /// is never a "simple" cross-site request); a POST always does, body or not (record/stop).</summary>
    private static bool ContentTypeAllowed(HttpRequest request)
    {
        var type = request.ContentType;
        if (type is null)
            return !HttpMethods.IsPost(request.Method)
                && (request.ContentLength ?? 0) == 0
                && request.Headers.TransferEncoding.Count == 0;
        var media = type.Split(';', 2)[0].Trim();
        return media.Equals("application/json", StringComparison.OrdinalIgnoreCase)
            || media.Equals("image/jpeg", StringComparison.OrdinalIgnoreCase)
            || media.Equals("image/png", StringComparison.OrdinalIgnoreCase);
    }

    private static string Normalize(Uri u) => $"{u.Scheme}://{u.IdnHost}:{u.Port}".ToLowerInvariant();

    private static string Cut(string s) => s.Length > 80 ? s[..80] + "..." : s;

    private void Log(int status, string method, string path, string remote, string why)
    {
        if (_throttle.TryEnter(out var skipped))
            LogRefused(_log, status, method, path, remote, why, skipped);
    }

    [LoggerMessage(
        Level = LogLevel.Information,
        Message = "refused {Method} {Path} from {Remote} with {Status}: {Why} ({Skipped} more refusals not logged since the last line)"
    )]
    private static partial void LogRefused(
        ILogger log,
        int status,
        string method,
        string path,
        string remote,
        string why,
        int skipped
    );
}
