using System.Text.RegularExpressions;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace Blankend.Orleans.Configuration;

/// <summary>Section <c>auth</c>: API tokens with scopes and source patterns, open mode, browser protections
/// (docs/security.md).</summary>
public sealed class AuthOptions
{
    public const string Section = "auth";

    /// <summary>The scopes a token may hold; <c>admin</c> implies every other one.</summary>
    public static readonly string[] Scopes = ["ingest", "view", "control", "metrics", "admin"];

    /// <summary>The API tokens. None (and no <see cref="ApiToken"/>) = open mode, allowed only on loopback
    /// listen addresses unless <see cref="AllowAnonymous"/>.</summary>
    [ConfigurationKeyName("tokens")]
    public List<AuthTokenOptions> Tokens { get; set; } = [];

    /// <summary>Set from <c>BLANKEND_API_TOKEN</c>: one more token, every scope on every source.</summary>
    [ConfigurationKeyName("api_token")]
    public string ApiToken { get; set; } = "";

    /// <summary>Open mode on a non-loopback listen address, on purpose (e.g. behind an authenticating proxy).</summary>
    [ConfigurationKeyName("allow_anonymous")]
    public bool AllowAnonymous { get; set; }

    /// <summary>Origins (<c>https://console.example:8443</c>) besides the service's own that browsers may use for
    /// WebSocket upgrades and POST/DELETE. An element may hold a comma list (the environment variable form).</summary>
    [ConfigurationKeyName("allowed_origins")]
    public string[] AllowedOrigins { get; set; } = [];

    /// <summary>Host header names accepted (<c>*.example.com</c> and <c>*</c> allowed); empty = the listen
    /// addresses' names, <c>localhost</c>, <c>127.0.0.1</c>, <c>[::1]</c>. An element may hold a comma list.</summary>
    [ConfigurationKeyName("allowed_hosts")]
    public string[] AllowedHosts { get; set; } = [];

    /// <summary>True when any token is configured (so every route but /healthz needs one).</summary>
    public bool HasTokens => Tokens.Count > 0 || !string.IsNullOrEmpty(ApiToken);

    /// <summary>Splits comma lists and trims: <c>["a, b", "c"]</c> -> <c>[a, b, c]</c>.</summary>
    public static string[] Flatten(IEnumerable<string> values) =>
        [
            .. values.SelectMany(v =>
                (v ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            ),
        ];
}

/// <summary>One element of <c>auth.tokens</c>.</summary>
public sealed class AuthTokenOptions
{
    /// <summary>Shown in logs and problem details instead of the token.</summary>
    [ConfigurationKeyName("name")]
    public string Name { get; set; } = "";

    /// <summary>The token itself (prefer <see cref="TokenSha256"/> in files).</summary>
    [ConfigurationKeyName("token")]
    public string Token { get; set; } = "";

    /// <summary>Lower- or upper-case hex SHA-256 of the token's UTF-8 bytes (<c>printf %s TOKEN |
    /// sha256sum</c>).</summary>
    [ConfigurationKeyName("token_sha256")]
    public string TokenSha256 { get; set; } = "";

    [ConfigurationKeyName("scopes")]
    public string[] Scopes { get; set; } = [];

    /// <summary>Glob patterns (<c>*</c>, <c>?</c>) of the sources this token may ingest or view; absent or empty =
    /// all.</summary>
    [ConfigurationKeyName("sources")]
    public string[]? Sources { get; set; }

    /// <summary>The known keys of one element (a typo such as <c>scope</c> stops start-up).</summary>
    public static readonly string[] Keys = ["name", "token", "token_sha256", "scopes", "sources"];
}

public sealed partial class AuthOptionsValidator : IValidateOptions<AuthOptions>
{
    public ValidateOptionsResult Validate(string? name, AuthOptions o)
    {
        var f = new Failures();
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < o.Tokens.Count; i++)
        {
            var t = o.Tokens[i];
            var key = $"auth:tokens:{i}";
            if (string.IsNullOrWhiteSpace(t.Name))
                f.Add($"{key}:name must not be empty");
            else if (!names.Add(t.Name))
                f.Add($"{key}:name '{t.Name}' is used twice");
            var hasToken = !string.IsNullOrEmpty(t.Token);
            var hasHash = !string.IsNullOrEmpty(t.TokenSha256);
            if (hasToken == hasHash)
                f.Add($"{key}: give exactly one of token and token_sha256");
            if (hasToken && t.Token.Length < 16)
                f.Add($"{key}:token must have at least 16 characters");
            if (hasHash && !Sha256Hex().IsMatch(t.TokenSha256))
                f.Add($"{key}:token_sha256 must be 64 hex digits");
            if (t.Scopes.Length == 0)
                f.Add($"{key}:scopes must name at least one of {string.Join(", ", AuthOptions.Scopes)}");
            foreach (var s in t.Scopes)
            {
                if (Array.IndexOf(AuthOptions.Scopes, s) < 0)
                    f.Add($"{key}:scopes: '{s}' is not one of {string.Join(", ", AuthOptions.Scopes)}");
            }
            foreach (var p in t.Sources ?? [])
            {
                if (string.IsNullOrWhiteSpace(p) || p.Length > 256)
                    f.Add($"{key}:sources: '{p}' is not a pattern");
            }
        }
        if (!string.IsNullOrEmpty(o.ApiToken) && o.ApiToken.Length < 16)
            f.Add("auth:api_token (BLANKEND_API_TOKEN) must have at least 16 characters");
        foreach (var origin in AuthOptions.Flatten(o.AllowedOrigins))
        {
            if (
                origin != "null"
                && !(
                    Uri.TryCreate(origin, UriKind.Absolute, out var u)
                    && u.Scheme is "http" or "https"
                    && u.AbsolutePath == "/"
                )
            )
                f.Add($"auth:allowed_origins: '{origin}' is not an origin (scheme://host[:port])");
        }
        return f.Result;
    }

    [GeneratedRegex("^[0-9a-fA-F]{64}$")]
    private static partial Regex Sha256Hex();
}
