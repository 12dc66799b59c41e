using System.Net;
using Blankend.Orleans.Configuration;
using Blankend.Orleans.Hosting;

namespace Blankend.Orleans.Gateway.Security;

/// <summary>The addresses the gateway will listen on, read from configuration before Kestrel starts: <c>urls</c>
/// (<c>--urls</c>, <c>ASPNETCORE_URLS</c>) and <c>Kestrel:Endpoints:*:Url</c>.</summary>
internal static class ListenAddresses
{
    public static List<string> Read(IConfiguration config)
    {
        var urls = new List<string>();
        foreach (var key in new[] { "urls", WebHostDefaults.ServerUrlsKey })
        {
            if (config[key] is { Length: > 0 } v)
                urls.AddRange(v.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        }
        foreach (var endpoint in config.GetSection("Kestrel:Endpoints").GetChildren())
        {
            if (endpoint["Url"] is { Length: > 0 } u)
                urls.Add(u);
        }
        return [.. urls.Distinct(StringComparer.OrdinalIgnoreCase)];
    }

    /// <summary>The host part of a listen URL (<c>http://[::1]:8000</c> -> <c>[::1]</c>; <c>http://*:80</c> ->
    /// <c>*</c>).</summary>
    public static string Host(string url)
    {
        var rest = url.Contains("://", StringComparison.Ordinal)
            ? url[(url.IndexOf("://", StringComparison.Ordinal) + 3)..]
            : url;
        var slash = rest.IndexOf('/');
        if (slash >= 0)
            rest = rest[..slash];
        if (rest.StartsWith('['))
        {
            var end = rest.IndexOf(']');
            return end > 0 ? rest[..(end + 1)] : rest;
        }
        var colon = rest.LastIndexOf(':');
        return colon >= 0 ? rest[..colon] : rest;
    }

    public static bool IsLoopback(string url)
    {
        var host = Host(url);
        if (host.Equals("localhost", StringComparison.OrdinalIgnoreCase))
            return true;
        return IPAddress.TryParse(host.Trim('[', ']'), out var ip) && IPAddress.IsLoopback(ip);
    }

    /// <summary>Open mode (no token) only on loopback: a non-loopback address stops start-up (exit 2) naming
    /// <c>auth.tokens</c>, unless <c>auth.allow_anonymous</c>.</summary>
    public static void CheckOpenMode(IConfiguration config)
    {
        var auth = BlankendConfiguration.Read<AuthOptions, AuthOptionsValidator>(config, AuthOptions.Section);
        if (auth.HasTokens || auth.AllowAnonymous)
            return;
        var exposed = Read(config).Where(u => !IsLoopback(u)).ToList();
        if (exposed.Count == 0)
            return;
        throw new BlankendConfigurationException([
            $"auth.tokens: no API token is configured but the gateway would listen on {string.Join(", ", exposed)} (not loopback): "
                + "configure auth.tokens or BLANKEND_API_TOKEN, listen on 127.0.0.1, or set auth.allow_anonymous=true (BLANKEND_ALLOW_ANONYMOUS=1) on purpose",
        ]);
    }

    /// <summary>Default <c>auth.allowed_hosts</c>: the listen addresses' names (wildcards excluded) and the loopback
    /// names.</summary>
    public static string[] DefaultHosts(IConfiguration config)
    {
        var hosts = new List<string> { "localhost", "127.0.0.1", "[::1]" };
        foreach (var url in Read(config))
        {
            var h = Host(url);
            if (h is "*" or "+" or "0.0.0.0" or "[::]" || h.Length == 0)
                continue;
            hosts.Add(h);
        }
        return [.. hosts.Distinct(StringComparer.OrdinalIgnoreCase)];
    }
}
