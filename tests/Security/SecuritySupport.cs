using System.Net;
using System.Net.Http.Headers;
using System.Net.WebSockets;
using System.Text;
using Blankend.Orleans.Tests.Support;
using Xunit;

namespace Blankend.Orleans.Tests.Security;

/// <summary>What a WebSocket handshake got: 101 (upgraded, the socket is returned open) or the HTTP refusal.</summary>
public sealed record Handshake(
    HttpStatusCode Status,
    IReadOnlyDictionary<string, IEnumerable<string>>? Headers,
    ClientWebSocket? Socket
);

internal static class SecuritySupport
{
    /// <summary>Tries a real WebSocket handshake and reports the HTTP status (ClientWebSocket keeps the refusal's
    /// status and headers with CollectHttpResponseDetails).</summary>
    public static async Task<Handshake> HandshakeAsync(Uri uri, string? bearer = null, string? origin = null)
    {
        var ws = new ClientWebSocket();
        ws.Options.CollectHttpResponseDetails = true;
        if (bearer is not null)
            ws.Options.SetRequestHeader("Authorization", "Bearer " + bearer);
        if (origin is not null)
            ws.Options.SetRequestHeader("Origin", origin);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            await ws.ConnectAsync(uri, timeout.Token);
            return new Handshake(HttpStatusCode.SwitchingProtocols, ws.HttpResponseHeaders, ws);
        }
        catch (WebSocketException)
        {
            var result = new Handshake(ws.HttpStatusCode, ws.HttpResponseHeaders, null);
            ws.Dispose();
            return result;
        }
    }

    public static async Task AssertProblemAsync(HttpResponseMessage r, HttpStatusCode code, string? mention = null)
    {
        var body = await r.Content.ReadAsStringAsync();
        Assert.True(
            code == r.StatusCode,
            $"{r.RequestMessage?.Method} {r.RequestMessage?.RequestUri}: expected {(int)code}, got {(int)r.StatusCode}: {body}"
        );
        Assert.Equal("application/problem+json", r.Content.Headers.ContentType?.MediaType);
        if (mention is not null)
            Assert.Contains(mention, body, StringComparison.OrdinalIgnoreCase);
    }

    public static HttpRequestMessage Request(
        HttpMethod method,
        string path,
        string? bearer = null,
        HttpContent? content = null
    )
    {
        var m = new HttpRequestMessage(method, path) { Content = content };
        if (bearer is not null)
            m.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        return m;
    }

    public static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    /// <summary>The scrape of /metrics (with a token when one is needed).</summary>
    public static async Task<PrometheusText> ScrapeAsync(EmbeddedGateway gw, string? bearer = null)
    {
        using var r = await gw.Client.SendAsync(Request(HttpMethod.Get, "metrics", bearer));
        r.EnsureSuccessStatusCode();
        return PrometheusText.Parse(await r.Content.ReadAsStringAsync());
    }

    public static double Sum(PrometheusText m, string name, params string[] labels) =>
        m.Find(name, labels).Sum(s => s.Value);

    /// <summary>Waits until <paramref name="condition"/> holds (a slot freed after a close, a counter moved).</summary>
    public static async Task EventuallyAsync(Func<Task<bool>> condition, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException(what + " not reached within " + timeout.TotalSeconds + " s");
            await Task.Delay(50);
        }
    }
}
