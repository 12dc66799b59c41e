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
}
