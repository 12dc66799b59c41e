using System.Net.WebSockets;
using System.Text;

namespace Blankend.Orleans.Tests.Support;

public sealed record WsMessage(WebSocketMessageType Type, byte[] Data)
{
    public string Text => Encoding.UTF8.GetString(Data);
}

/// <summary>Real WebSocket client helpers (System.Net.WebSockets.ClientWebSocket).</summary>
public static class Ws
{
    public static async Task<ClientWebSocket> ConnectAsync(Uri uri, CancellationToken ct = default)
    {
        var ws = new ClientWebSocket();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(10));
        await ws.ConnectAsync(uri, timeout.Token);
        return ws;
    }

    public static Task SendBinaryAsync(this WebSocket ws, byte[] data, CancellationToken ct = default) =>
        ws.SendAsync(data, WebSocketMessageType.Binary, true, ct);

    /// <summary>One whole message, or null when the socket closed (then CloseStatus tells why).</summary>
    public static async Task<WsMessage?> ReceiveMessageAsync(this WebSocket ws, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        var buffer = new byte[64 * 1024];
        using var ms = new MemoryStream();
        while (true)
        {
            var r = await ws.ReceiveAsync(buffer.AsMemory(), cts.Token);
            if (r.MessageType == WebSocketMessageType.Close)
                return null;
            ms.Write(buffer, 0, r.Count);
            if (r.EndOfMessage)
                return new WsMessage(r.MessageType, ms.ToArray());
        }
    }

    /// <summary>The next message, or null when the socket closed or none came within <paramref name="timeout"/>: for
    /// reading a stream whose end is silence.</summary>
    public static async Task<WsMessage?> ReceiveOrNullAsync(this WebSocket ws, TimeSpan timeout)
    {
        try
        {
            return await ws.ReceiveMessageAsync(timeout);
        }
        catch (OperationCanceledException)
        {
            return null;
        }
    }

    public static async Task CloseQuietlyAsync(this WebSocket ws)
    {
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            if (ws.State == WebSocketState.Open)
                await ws.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", cts.Token);
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException) { }
        ws.Dispose();
    }
}
