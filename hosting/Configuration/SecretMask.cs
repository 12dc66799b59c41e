using System.Text.RegularExpressions;

namespace Blankend.Orleans.Configuration;

/// <summary>
/// Masks secrets in text bound for a log line or the console: <c>password=</c> / <c>pwd=</c> values of connection
/// strings (Redis, PostgreSQL), <c>user:password@</c> in URLs, bearer tokens and <c>access_token=</c> / <c>token=</c>
/// values. What is masked becomes <c>***</c>; the rest stays readable so that the error still names what is wrong.
/// </summary>
public static partial class SecretMask
{
    public const string Mask = "***";

    public static string Apply(string? text)
    {
        if (string.IsNullOrEmpty(text))
            return text ?? "";
        var s = KeyValue().Replace(text, m => m.Groups["key"].Value + m.Groups["sep"].Value + Mask);
        s = UserInfo().Replace(s, m => m.Groups["pre"].Value + Mask + "@");
        s = Bearer().Replace(s, m => m.Groups["pre"].Value + Mask);
        return s;
    }

    // key=value up to the next separator of connection strings (; , &) or whitespace or quote.
    [GeneratedRegex(
        @"(?<key>\b(?:password|passwd|pwd|secret|token|access_token|api_token|apikey|api_key|token_sha256)\b)(?<sep>\s*[=:]\s*)(?!\*\*\*)[^;,&\s'""]+",
        RegexOptions.IgnoreCase | RegexOptions.CultureInvariant
    )]
    private static partial Regex KeyValue();

    [GeneratedRegex(
        @"(?<pre>\b[a-z][a-z0-9+.-]*://[^/@\s:'""]*:)[^/@\s'""]+@",
        RegexOptions.IgnoreCase | RegexOptions.CultureInvariant
    )]
    private static partial Regex UserInfo();

    [GeneratedRegex(@"(?<pre>\bBearer\s+)[A-Za-z0-9._~+/=-]+", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex Bearer();
}
