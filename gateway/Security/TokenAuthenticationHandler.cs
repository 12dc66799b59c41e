using System.Security.Claims;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace Blankend.Orleans.Gateway.Security;

/// <summary>
/// Scheme <see cref="SchemeName"/>: a token as <c>Authorization: Bearer</c>, or as <c>?access_token=</c> on the
/// WebSocket paths (browsers cannot set headers on a WebSocket). In open mode (no token configured) every request
/// is authenticated as <c>anonymous</c> with every scope, so the same policies hold in both modes.
/// </summary>
internal sealed class TokenAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory logger,
    UrlEncoder encoder,
    TokenStore tokens
) : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "BlankendToken";
    public const string ScopeClaim = "blankend_scope";
    public const string TokenKey = "blankend.token";

    /// <summary>Set when a token was presented but is not known (the 401 then says
    /// <c>error="invalid_token"</c>).</summary>
    public const string InvalidTokenKey = "blankend.invalid_token";

    private static readonly string[] WebSocketPaths = ["/video_in", "/video_out", "/video_codec"];

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        if (tokens.Open)
            return Task.FromResult(Success("anonymous", null, AuthOptionsScopes));
        var presented = Presented(Request);
        if (presented is null)
            return Task.FromResult(AuthenticateResult.NoResult());
        var entry = tokens.Find(presented);
        if (entry is null)
        {
            Context.Items[InvalidTokenKey] = true;
            return Task.FromResult(AuthenticateResult.Fail("unknown token"));
        }
        return Task.FromResult(Success(entry.Name, entry, entry.Scopes));
    }

    private static readonly IReadOnlySet<string> AuthOptionsScopes =
        Blankend.Orleans.Configuration.AuthOptions.Scopes.ToHashSet(StringComparer.Ordinal);

    private AuthenticateResult Success(string name, TokenEntry? entry, IReadOnlySet<string> scopes)
    {
        var identity = new ClaimsIdentity(SchemeName, ClaimTypes.Name, ScopeClaim);
        identity.AddClaim(new Claim(ClaimTypes.Name, name));
        foreach (var s in scopes)
            identity.AddClaim(new Claim(ScopeClaim, s));
        if (entry is not null)
            Context.Items[TokenKey] = entry;
        return AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName));
    }

    private static string? Presented(HttpRequest request)
    {
        var header = request.Headers.Authorization.ToString();
        if (header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            var value = header["Bearer ".Length..].Trim();
            return value.Length > 0 ? value : null;
        }
        if (
            Array.IndexOf(WebSocketPaths, request.Path.Value) >= 0
            && request.Query.TryGetValue("access_token", out var q)
            && q.Count == 1
            && !string.IsNullOrEmpty(q[0])
        )
            return q[0];
        return null;
    }
}
