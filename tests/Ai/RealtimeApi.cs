using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using Blankend.Orleans.Tests.Gateway;
using Blankend.Orleans.Tests.Processing;
using Blankend.Orleans.Tests.Support;

namespace Blankend.Orleans.Tests.Ai;

/// <summary>Helpers of the realtime path tests: the realtime config API, and a viewer with a camera on one
/// source.</summary>
internal static class RealtimeApi
{
    /// <summary>Posts to <c>/api/v1/realtime_pipeline/config</c> and expects 200; returns the config
    /// answered.</summary>
    public static async Task<JsonElement> ConfigureAsync(HttpClient http, string json)
    {
        using var r = await http.PostAsync(
            "api/v1/realtime_pipeline/config",
            new StringContent(json, Encoding.UTF8, "application/json")
        );
        var text = await r.Content.ReadAsStringAsync();
        if (!r.IsSuccessStatusCode)
            throw new InvalidOperationException($"realtime config {json} -> {(int)r.StatusCode}: {text}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    /// <summary>A meta viewer and a camera on <paramref name="source"/>, once the gateway has the viewer's
    /// subscription.</summary>
    public static async Task<(MetaViewer Viewer, ClientWebSocket Camera)> ConnectAsync(
        EmbeddedGateway gw,
        string source
    )
    {
        var viewer = await MetaViewer.ConnectAsync(gw.Ws($"/video_out?source={source}&meta=1"));
        var cam = await Ws.ConnectAsync(gw.Ws($"/video_in?client_id={source}"));
        await VideoPathTests.WaitSubscribedAsync(gw.StreamStatusAsync, source);
        return (viewer, cam);
    }
}
