using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Blankend.Orleans.Configuration;

namespace Blankend.Orleans.Gateway.Security;

/// <summary>One configured token: only its SHA-256 is kept in memory.</summary>
internal sealed class TokenEntry(string name, byte[] sha256, IReadOnlySet<string> scopes, Regex[]? sources)
{
    public string Name { get; } = name;
    public byte[] Sha256 { get; } = sha256;
    public IReadOnlySet<string> Scopes { get; } = scopes;

    /// <summary>Null = every source.</summary>
    public Regex[]? Sources { get; } = sources;
}

/// <summary>The configured tokens (<c>auth.tokens</c> and <c>BLANKEND_API_TOKEN</c>), looked up by the SHA-256 of
/// what a client presents, compared in constant time against every entry.</summary>
internal sealed class TokenStore
{
    private readonly TokenEntry[] _entries;

    public TokenStore(AuthOptions options)
    {
        var entries = new List<TokenEntry>();
        foreach (var t in options.Tokens)
        {
            var hash = string.IsNullOrEmpty(t.Token) ? Convert.FromHexString(t.TokenSha256) : Hash(t.Token);
            var patterns = t.Sources is { Length: > 0 } s ? s.Select(Glob).ToArray() : null;
            entries.Add(new TokenEntry(t.Name, hash, t.Scopes.ToHashSet(StringComparer.Ordinal), patterns));
        }
        if (!string.IsNullOrEmpty(options.ApiToken))
            entries.Add(
                new TokenEntry(
                    "BLANKEND_API_TOKEN",
                    Hash(options.ApiToken),
                    AuthOptions.Scopes.ToHashSet(StringComparer.Ordinal),
                    null
                )
            );
        _entries = [.. entries];
    }

    /// <summary>No token configured: open mode (everything allowed; only on loopback unless allow_anonymous).</summary>
    public bool Open => _entries.Length == 0;

    /// <summary>The entry whose hash matches, or null. Every entry is compared (no early exit), each in constant
    /// time.</summary>
    public TokenEntry? Find(string presented)
    {
        Span<byte> hash = stackalloc byte[32];
        var bytes = Encoding.UTF8.GetBytes(presented);
        SHA256.HashData(bytes, hash);
        TokenEntry? found = null;
        foreach (var e in _entries)
        {
            if (CryptographicOperations.FixedTimeEquals(hash, e.Sha256) && found is null)
                found = e;
        }
        return found;
    }

    public static byte[] Hash(string token) => SHA256.HashData(Encoding.UTF8.GetBytes(token));

    /// <summary><c>cam-*</c> -> <c>^cam-.*$</c> (<c>*</c> any run, <c>?</c> one character; case-sensitive like source
    /// ids).</summary>
    public static Regex Glob(string pattern) =>
        new(
            "^"
                + Regex
                    .Escape(pattern)
                    .Replace("\\*", ".*", StringComparison.Ordinal)
                    .Replace("\\?", ".", StringComparison.Ordinal)
                + "$",
            RegexOptions.CultureInvariant | RegexOptions.Singleline,
            TimeSpan.FromMilliseconds(100)
        );
}
