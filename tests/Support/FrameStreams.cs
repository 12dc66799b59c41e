using System.Diagnostics;
using System.Net.WebSockets;
using System.Text.Json;

namespace Blankend.Orleans.Tests.Support;

/// <summary>A camera on <c>/video_in</c> sending tagged frames (0, 1, 2, ...) at a steady rate until stopped,
/// remembering when each tag was sent.</summary>
public sealed class CameraStream : IAsyncDisposable
{
    private readonly ClientWebSocket _ws;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<long> _sentAt = [];
    private readonly Task _loop;

    private CameraStream(ClientWebSocket ws, TimeSpan period)
    {
        _ws = ws;
        _loop = Task.Run(() => RunAsync(period));
    }

    public static async Task<CameraStream> StartAsync(Uri videoIn, double fps)
    {
        var ws = await Ws.ConnectAsync(videoIn);
        return new CameraStream(ws, TimeSpan.FromSeconds(1 / fps));
    }

    public int Sent
    {
        get
        {
            lock (_sentAt)
                return _sentAt.Count;
        }
    }

    /// <summary>Stopwatch timestamp at which <paramref name="tag"/> was sent.</summary>
    public long SentAt(int tag)
    {
        lock (_sentAt)
            return _sentAt[tag];
    }

    /// <summary>The first tag sent at or after <paramref name="timestamp"/>, or -1.</summary>
    public int FirstTagSentAfter(long timestamp)
    {
        lock (_sentAt)
        {
            for (var i = 0; i < _sentAt.Count; i++)
                if (_sentAt[i] >= timestamp)
                    return i;
            return -1;
        }
    }

    private async Task RunAsync(TimeSpan period)
    {
        using var timer = new PeriodicTimer(period);
        var tag = 0;
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token))
            {
                var frame = TestJpeg.Tagged(tag);
                lock (_sentAt)
                    _sentAt.Add(Stopwatch.GetTimestamp());
                await _ws.SendBinaryAsync(frame); // not cancelled: cancelling a send aborts the socket
                tag++;
            }
        }
        catch (OperationCanceledException) { }
        catch (Exception e) when (e is WebSocketException or IOException or ObjectDisposedException)
        {
            Failed = e.GetType().Name + ": " + e.Message; // the gateway went away (a test may kill it)
        }
    }

    /// <summary>Set when sending failed (the gateway closed or died).</summary>
    public string? Failed { get; private set; }

    /// <summary>Stops sending (the socket stays open) and answers how many frames were sent.</summary>
    public async Task<int> StopAsync()
    {
        await _stop.CancelAsync();
        await _loop;
        return Sent;
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        await _ws.CloseQuietlyAsync();
        _stop.Dispose();
    }
}

/// <summary>One frame as a viewer saw it: the camera's tag (-1 once re-encoded: the tag is a JPEG comment), the
/// meta (epoch, seq, kind) and when it arrived.</summary>
public sealed record SeenFrame(int Tag, long Epoch, long Seq, long At, string Kind = "raw");

/// <summary>A viewer on <c>/video_out?source=...&amp;meta=1</c> recording every frame it receives.</summary>
public sealed class ViewerRecorder : IAsyncDisposable
{
    private readonly ClientWebSocket _ws;
    private readonly List<SeenFrame> _frames = [];
    private readonly Task _loop;

    private ViewerRecorder(ClientWebSocket ws)
    {
        _ws = ws;
        _loop = Task.Run(RunAsync);
    }

    public static async Task<ViewerRecorder> StartAsync(Uri videoOut) => new(await Ws.ConnectAsync(videoOut));

    public IReadOnlyList<SeenFrame> Frames
    {
        get
        {
            lock (_frames)
                return [.. _frames];
        }
    }

    public int Count
    {
        get
        {
            lock (_frames)
                return _frames.Count;
        }
    }

    /// <summary>Set when the socket closed or failed.</summary>
    public string? Ended { get; private set; }

    private async Task RunAsync()
    {
        long epoch = 0,
            seq = 0;
        var kind = "raw";
        try
        {
            while (true)
            {
                var m = await _ws.ReceiveMessageAsync(TimeSpan.FromMinutes(5));
                if (m is null)
                {
                    Ended = $"closed: {_ws.CloseStatus} {_ws.CloseStatusDescription}";
                    return;
                }
                if (m.Type == WebSocketMessageType.Text)
                {
                    var meta = JsonDocument.Parse(m.Data).RootElement;
                    epoch = meta.GetProperty("epoch").GetInt64();
                    seq = meta.GetProperty("seq").GetInt64();
                    kind = meta.TryGetProperty("kind", out var k) ? k.GetString() ?? "" : "";
                    continue;
                }
                var seen = new SeenFrame(TestJpeg.ReadTag(m.Data), epoch, seq, Stopwatch.GetTimestamp(), kind);
                lock (_frames)
                    _frames.Add(seen);
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException)
        {
            Ended = e.GetType().Name + ": " + e.Message;
        }
    }

    /// <summary>Waits until a received frame matches, answering it (null on timeout).</summary>
    public async Task<SeenFrame?> WaitForAsync(Func<SeenFrame, bool> match, TimeSpan timeout)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        var checkedUpTo = 0;
        while (Stopwatch.GetTimestamp() < deadline)
        {
            lock (_frames)
            {
                for (; checkedUpTo < _frames.Count; checkedUpTo++)
                {
                    if (match(_frames[checkedUpTo]))
                        return _frames[checkedUpTo];
                }
            }
            await Task.Delay(5);
        }
        return null;
    }

    public async ValueTask DisposeAsync()
    {
        await _ws.CloseQuietlyAsync();
        try
        {
            await _loop.WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (TimeoutException) { }
    }
}
