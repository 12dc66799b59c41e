using Blankend.Orleans.Configuration;
using Blankend.Orleans.Telemetry;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Authorization.Policy;
using Microsoft.Extensions.Options;

namespace Blankend.Orleans.Gateway.Security;

/// <summary>One authorization policy per scope (docs/security.md). <c>admin</c> satisfies every one of them.
/// The ingest and view policies also check the requested source against the token's patterns.</summary>
internal static class ScopePolicies
{
    public const string Ingest = "ingest";
    public const string View = "view";
    public const string Control = "control";
    public const string Metrics = "metrics";
    public const string Admin = "admin";

    public static void Add(AuthorizationOptions o)
    {
        o.AddPolicy(Ingest, p =>
            p.RequireAuthenticatedUser().AddRequirements(new ScopeRequirement(Ingest), new SourceRequirement())
        );
        o.AddPolicy(View, p =>
            p.RequireAuthenticatedUser().AddRequirements(new ScopeRequirement(View), new SourceRequirement())
        );
        o.AddPolicy(Control, p => p.RequireAuthenticatedUser().AddRequirements(new ScopeRequirement(Control)));
        o.AddPolicy(Metrics, p => p.RequireAuthenticatedUser().AddRequirements(new ScopeRequirement(Metrics)));
        o.AddPolicy(Admin, p => p.RequireAuthenticatedUser().AddRequirements(new ScopeRequirement(Admin)));
        // A route mapped without a policy (one added later and forgotten) is admin-only rather than open.
        o.FallbackPolicy = o.GetPolicy(Admin);
    }
}

internal sealed class ScopeRequirement(string scope) : IAuthorizationRequirement
{
    public string Scope { get; } = scope;
}

internal sealed class ScopeHandler : AuthorizationHandler<ScopeRequirement>
{
    protected override Task HandleRequirementAsync(AuthorizationHandlerContext context, ScopeRequirement requirement)
    {
        if (
            context.User.HasClaim(TokenAuthenticationHandler.ScopeClaim, requirement.Scope)
            || context.User.HasClaim(TokenAuthenticationHandler.ScopeClaim, ScopePolicies.Admin)
        )
            context.Succeed(requirement);
        else if (context.User.Identity?.IsAuthenticated == true)
            context.Fail(new AuthorizationFailureReason(this, $"the token lacks the '{requirement.Scope}' scope"));
        return Task.CompletedTask;
    }
}

/// <summary>The source a WebSocket request names (<c>client_id</c> on ingest, <c>source</c> on /video_out) must
/// match one of the token's patterns; a restricted token may not watch every source (/video_out without
/// source).</summary>
internal sealed class SourceRequirement : IAuthorizationRequirement;

internal sealed class SourceHandler(IOptions<StreamOptions> stream) : AuthorizationHandler<SourceRequirement>
{
    protected override Task HandleRequirementAsync(AuthorizationHandlerContext context, SourceRequirement requirement)
    {
        if (
            context.Resource is not HttpContext http
            || http.Items[TokenAuthenticationHandler.TokenKey] is not TokenEntry { Sources: { } patterns }
        )
        {
            context.Succeed(requirement); // unrestricted token, open mode, or not a request
            return Task.CompletedTask;
        }
        var path = http.Request.Path.Value;
        string? source;
        if (path is "/video_in" or "/video_codec")
            source = One(http.Request, "client_id") ?? stream.Value.DefaultClientId;
        else if (path == "/video_out")
            source = One(http.Request, "source");
        else
        {
            context.Succeed(requirement); // the patterns restrict the WebSocket paths (docs/security.md)
            return Task.CompletedTask;
        }
        if (source is null)
            context.Fail(
                new AuthorizationFailureReason(this, "this token is limited to some sources: name one with ?source=")
            );
        else if (patterns.Any(p => p.IsMatch(source)))
            context.Succeed(requirement);
        else
            context.Fail(new AuthorizationFailureReason(this, $"the token may not use source '{Cut(source)}'"));
        return Task.CompletedTask;
    }

    private static string? One(HttpRequest request, string name) =>
        request.Query.TryGetValue(name, out var v) && v.Count >= 1 ? v[^1] : null;

    private static string Cut(string s) => s.Length > 64 ? s[..64] + "..." : s;
}

/// <summary>Refusals as problem+json, before any endpoint (so before any WebSocket upgrade), counted and logged
/// with the token's name, never the token.</summary>
internal sealed partial class ProblemAuthorizationResultHandler(ILogger<ProblemAuthorizationResultHandler> log)
    : IAuthorizationMiddlewareResultHandler
{
    private readonly AuthorizationMiddlewareResultHandler _default = new();
    private readonly RefusalLog _throttle = new();

    public async Task HandleAsync(
        RequestDelegate next,
        HttpContext context,
        AuthorizationPolicy policy,
        PolicyAuthorizationResult result
    )
    {
        if (result.Challenged)
        {
            var invalid = context.Items.ContainsKey(TokenAuthenticationHandler.InvalidTokenKey);
            SecurityMetrics.Refused(invalid ? SecurityMetrics.Reasons.InvalidToken : SecurityMetrics.Reasons.NoToken);
            Log(
                401,
                context.Request.Method,
                context.Request.Path.Value ?? "",
                Remote(context),
                "-",
                invalid ? "unknown token" : "no token"
            );
            context.Response.Headers.WWWAuthenticate = invalid ? "Bearer error=\"invalid_token\"" : "Bearer";
            await Results
                .Problem(
                    title: "authentication required",
                    detail: invalid
                        ? "the token is not known"
                        : "send a token: Authorization: Bearer <token> (or ?access_token= on WebSocket paths)",
                    statusCode: StatusCodes.Status401Unauthorized,
                    instance: context.Request.Path
                )
                .ExecuteAsync(context);
            return;
        }
        if (result.Forbidden)
        {
            var why = result.AuthorizationFailure?.FailureReasons.Select(r => r.Message).FirstOrDefault()
                ?? "not allowed";
            SecurityMetrics.Refused(SecurityMetrics.Reasons.Forbidden);
            Log(
                403,
                context.Request.Method,
                context.Request.Path.Value ?? "",
                Remote(context),
                context.User.Identity?.Name ?? "-",
                why
            );
            await Results
                .Problem(
                    title: "forbidden",
                    detail: why,
                    statusCode: StatusCodes.Status403Forbidden,
                    instance: context.Request.Path
                )
                .ExecuteAsync(context);
            return;
        }
        await _default.HandleAsync(next, context, policy, result);
    }

    internal static string Remote(HttpContext context) => context.Connection.RemoteIpAddress?.ToString() ?? "?";

    private void Log(int status, string method, string path, string remote, string token, string why)
    {
        if (_throttle.TryEnter(out var skipped))
            LogRefused(log, status, method, path, remote, token, why, skipped);
    }

    [LoggerMessage(
        Level = LogLevel.Information,
        Message = "refused {Method} {Path} from {Remote} with {Status} (token {Token}): {Why} ({Skipped} more refusals not logged since the last line)"
    )]
    private static partial void LogRefused(
        ILogger log,
        int status,
        string method,
        string path,
        string remote,
        string token,
        string why,
        int skipped
    );
}
