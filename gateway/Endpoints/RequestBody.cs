using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace Blankend.Orleans.Gateway.Endpoints;

/// <summary>Reads a request body up to a bound, without trusting Content-Length (chunked bodies have none).</summary>
internal static class RequestBody
{
    /// <returns>The body, or null with <c>TooLarge</c> as soon as it passes <paramref name="max"/> bytes.</returns>
    public static async Task<(byte[]? Body, bool TooLarge)> ReadAsync(HttpContext context, int max)
    {
        using var ms = new MemoryStream();
        var buffer = new byte[16384];
        int n;
        while ((n = await context.Request.Body.ReadAsync(buffer, context.RequestAborted)) > 0)
        {
            if (ms.Length + n > max)
                return (null, true);
            ms.Write(buffer, 0, n);
        }
        return (ms.ToArray(), false);
    }

    /// <summary>A JSON object body (declared application/json, or not declared) of at most <paramref name="max"/>
    /// bytes, parsed by <paramref name="type"/> (the endpoint's strict context); else the 400 to answer, an
    /// unparsable body titled <paramref name="invalid"/>. <paramref name="quote"/> writes a refused content type
    /// into the answer as the endpoint always has.</summary>
    public static async Task<(T? Value, IResult? Error)> ReadJsonAsync<T>(
        HttpContext context,
        int max,
        JsonTypeInfo<T> type,
        string invalid,
        Func<string, string> quote
    )
        where T : class
    {
        if (
            context.Request.ContentType is { } contentType
            && !contentType.StartsWith("application/json", StringComparison.OrdinalIgnoreCase)
        )
        {
            var detail = $"the body must be application/json (got '{quote(contentType)}')";
            return (null, Problems.Bad(context, "unsupported content type", detail));
        }
        // A declared length over the bound is refused before reading; the read catches the undeclared ones.
        if (context.Request.ContentLength > max)
            return (null, Problems.Bad(context, "body too large", $"at most {max} bytes"));
        var (body, tooLarge) = await ReadAsync(context, max);
        if (tooLarge)
            return (null, Problems.Bad(context, "body too large", $"at most {max} bytes"));
        T? parsed;
        try
        {
            parsed = JsonSerializer.Deserialize(body!, type);
        }
        catch (JsonException e)
        {
            return (null, Problems.Bad(context, invalid, e.Message));
        }
        return parsed is null
            ? (null, Problems.Bad(context, invalid, "the body must be a JSON object"))
            : (parsed, null);
    }
}
