using System.Collections.Frozen;
using System.Reflection;

namespace Blankend.Orleans.Gateway.Endpoints;

/// <summary>
/// The web console (docs/console.md): static files embedded in this assembly (gateway/Console), so it works
/// offline and with no build step. <c>GET /</c> is its page (<c>/?source=SRC</c> opens a viewer), its assets are
/// under <c>/console/</c>. Every answer carries a strict Content-Security-Policy: nothing from other hosts, no
/// inline script or style.
/// </summary>
internal static class ConsoleEndpoints
{
    internal const string ContentSecurityPolicy =
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "
        + "connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

    private const string Prefix = "console/";

    private static readonly FrozenDictionary<string, string> Types = new Dictionary<string, string>(
        StringComparer.Ordinal
    )
    {
        [".html"] = "text/html; charset=utf-8",
        [".js"] = "text/javascript; charset=utf-8",
        [".css"] = "text/css; charset=utf-8",
        [".svg"] = "image/svg+xml",
        [".png"] = "image/png",
        [".ico"] = "image/x-icon",
    }.ToFrozenDictionary();

    /// <summary>Resource name (console/...) -> bytes, read once at start-up (a few tens of KB).</summary>
    private static readonly Lazy<FrozenDictionary<string, byte[]>> Files = new(Load);

    private static FrozenDictionary<string, byte[]> Load()
    {
        var assembly = typeof(ConsoleEndpoints).Assembly;
        var files = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var name in assembly.GetManifestResourceNames())
        {
            if (!name.StartsWith(Prefix, StringComparison.Ordinal))
                continue;
            using var stream = assembly.GetManifestResourceStream(name)!;
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            files[name[Prefix.Length..]] = copy.ToArray();
        }
        return files.ToFrozenDictionary(StringComparer.Ordinal);
    }

    public static WebApplication MapBlankendConsole(this WebApplication app)
    {
        // The console loads without a token (it holds no data); it asks for one when the API answers 401.
        app.MapGet("/", (HttpContext context) => Serve(context, "index.html")).AllowAnonymous();
        app.MapGet("/console/{**path}", (HttpContext context, string path) => Serve(context, path)).AllowAnonymous();
        return app;
    }

    private static IResult Serve(HttpContext context, string path)
    {
        var headers = context.Response.Headers;
        headers.ContentSecurityPolicy = ContentSecurityPolicy;
        headers.XContentTypeOptions = "nosniff";
        headers["Referrer-Policy"] = "no-referrer";
        // The console is small and changes with the service: always revalidate, never a stale script.
        headers.CacheControl = "no-cache";
        if (!Files.Value.TryGetValue(path, out var bytes) || !Types.TryGetValue(Path.GetExtension(path), out var type))
            return Results.Problem(
                title: "not found",
                detail: $"no console file '{path}'",
                statusCode: StatusCodes.Status404NotFound,
                instance: context.Request.Path
            );
        return Results.Bytes(bytes, type);
    }
}
