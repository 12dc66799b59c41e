using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Text.Json;
using Blankend.Orleans.Tests.Support;

namespace Blankend.Orleans.Tests.Relay;

/// <summary>A real /video_out viewer (meta=1) that records every frame it receives, with its meta, until
/// disposed.</summary>
public sealed class ViewerRecorder : IAsyncDisposable
{
    public sealed record Frame(string Source, long Seq, string Kind, byte[] Data)
    {
        public int Tag => TestJpeg.ReadTag(Data);
    }

    private readonly ClientWebSocket _ws;
    private readonly CancellationTokenSource _cts = new();
    private readonly ConcurrentQueue<Frame> _frames = new();
    private readonly Task _loop;

    private ViewerRecorder(ClientWebSocket ws)
    {
        _ws = ws;
        _loop = Task.Run(ReadAsync);
    }

    public static async Task<ViewerRecorder> ConnectAsync(EmbeddedGateway gw, string? source)
    {
        var ws = await Ws.ConnectAsync(
            gw.Ws(source is null ? "/video_out?meta=1" : $"/video_out?source={source}&meta=1")
        );
        return new ViewerRecorder(ws);
    }

    public IReadOnlyList<Frame> Frames => [.. _frames];

    public async Task<IReadOnlyList<Frame>> WaitForAsync(
        Func<IReadOnlyList<Frame>, bool> condition,
        TimeSpan timeout,
        string what
    )
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var all = Frames;
            if (condition(all))
                return all;
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException(
                    $"viewer: {what} not seen within {timeout.TotalSeconds} s; got {all.Count} frame(s): "
                        + string.Join(", ", all.Take(20).Select(f => $"{f.Source}#{f.Seq}/tag{f.Tag}"))
                );
            await Task.Delay(20);
        }
    }

    private async Task ReadAsync()
    {
        JsonElement? meta = null;
        try
        {
            while (!_cts.IsCancellationRequested)
            {
                var m = await _ws.ReceiveMessageAsync(TimeSpan.FromMinutes(5));
                if (m is null)
                    return;
                if (m.Type == WebSocketMessageType.Text)
                {
                    meta = JsonDocument.Parse(m.Data).RootElement.Clone();
                    continue;
                }
                _frames.Enqueue(
                    new Frame(
                        meta?.GetProperty("source").GetString() ?? "?",
                        meta?.GetProperty("seq").GetInt64() ?? -1,
                        meta?.GetProperty("kind").GetString() ?? "?",
                        m.Data
                    )
                );
                meta = null;
            }
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException or ObjectDisposedException) { }
    }

    public async ValueTask DisposeAsync()
    {
        await _cts.CancelAsync();
        _ws.Abort(); // the read loop holds the one outstanding receive: a close handshake would collide with it
        try
        {
            await _loop.WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (TimeoutException) { }
        _ws.Dispose();
        _cts.Dispose();
    }
}
