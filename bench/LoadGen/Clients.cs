using System.Buffers.Text;
using System.Diagnostics;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;

namespace Blankend.Bench.LoadGen;

/// <summary>
/// Frame layout: FF D8 | FF FE len(2, BE, = 2 + stamp) | stamp | base JPEG from byte 2 on.
/// The stamp is fixed width ASCII: "BLANKEND-BENCH seq=0000000001 cam=0000 t=0000000000000000000".
/// </summary>
public static class Stamp
{
    private static readonly byte[] Prefix = "BLANKEND-BENCH seq="u8.ToArray();
    private const int SeqDigits = 10;
    private const int CamDigits = 4;
    private const int TsDigits = 19;
    private const int SeqAt = 6 + 19; // after SOI(2) + COM marker(2) + len(2) + prefix
    private const int CamAt = SeqAt + SeqDigits + 5; // " cam="
    private const int TsAt = CamAt + CamDigits + 3; // " t="
    public const int StampLength = 19 + SeqDigits + 5 + CamDigits + 3 + TsDigits;
    public const int Overhead = 4 + StampLength; // COM marker + length + stamp

    public static byte[] Build(byte[] baseJpeg, int cam)
    {
        var f = new byte[baseJpeg.Length + Overhead];
        f[0] = 0xFF;
        f[1] = 0xD8;
        f[2] = 0xFF;
        f[3] = 0xFE;
        f[4] = (byte)((StampLength + 2) >> 8);
        f[5] = (byte)(StampLength + 2);
        Prefix.CopyTo(f, 6);
        " cam="u8.CopyTo(f.AsSpan(SeqAt + SeqDigits));
        " t="u8.CopyTo(f.AsSpan(CamAt + CamDigits));
        Write(f.AsSpan(CamAt, CamDigits), cam);
        baseJpeg.AsSpan(2).CopyTo(f.AsSpan(2 + Overhead));
        return f;
    }

    public static void Write(byte[] frame, long seq, long ts)
    {
        Write(frame.AsSpan(SeqAt, SeqDigits), seq);
        Write(frame.AsSpan(TsAt, TsDigits), ts);
    }

    private static void Write(Span<byte> dst, long v)
    {
        if (
            !Utf8Formatter.TryFormat(v, dst, out var n, new System.Buffers.StandardFormat('D', (byte)dst.Length))
            || n != dst.Length
        )
        {
            throw new InvalidOperationException($"stamp field overflow: {v}");
        }
    }

    public static bool TryRead(ReadOnlySpan<byte> f, out long seq, out int cam, out long ts)
    {
        seq = 0;
        cam = 0;
        ts = 0;
        return f.Length >= 2 + Overhead + 2
            && f[0] == 0xFF
            && f[1] == 0xD8
            && f[2] == 0xFF
            && f[3] == 0xFE
            && f[4] == (byte)((StampLength + 2) >> 8)
            && f[5] == (byte)(StampLength + 2)
            && f.Slice(6, Prefix.Length).SequenceEqual(Prefix)
            && Utf8Parser.TryParse(f.Slice(SeqAt, SeqDigits), out seq, out var a)
            && a == SeqDigits
            && Utf8Parser.TryParse(f.Slice(CamAt, CamDigits), out cam, out var b)
            && b == CamDigits
            && Utf8Parser.TryParse(f.Slice(TsAt, TsDigits), out ts, out var c)
            && c == TsDigits;
    }
}

/// <summary>Measurement window shared by all clients, in Stopwatch ticks.</summary>
public sealed class Window
{
    public long Start; // cameras start sending
    public long MeasureFrom; // Start + warmup
    public long MeasureTo; // MeasureFrom + duration; cameras stop here

    // One reading of both clocks, to turn the service's unix-ms timestamps into Stopwatch ticks.
    private readonly long _anchorTicks = Stopwatch.GetTimestamp();
    private readonly double _anchorUnixMs = (DateTime.UtcNow - DateTime.UnixEpoch).TotalMilliseconds;

    public bool Contains(long t) => t >= MeasureFrom && t < MeasureTo;

    public long TicksFromUnixMs(double unixMs) =>
        _anchorTicks + (long)((unixMs - _anchorUnixMs) * Stopwatch.Frequency / 1000.0);
}

/// <param name="phase">Fraction of a frame period this camera's schedule is offset by, so that
/// several cameras do not all send at the same instant.</param>
/// <param name="logCapacity">How many send times to keep (by seq), for matching frames that lost their stamp.</param>
public sealed class Camera(
    int index,
    Uri uri,
    byte[] baseJpeg,
    double fps,
    double phase,
    Window window,
    int logCapacity = 0
)
{
    public int Index { get; } = index;
    public string Id { get; } = $"cam{index}";
    public Uri Uri { get; } = uri;
    public ClientWebSocket Ws { get; } = new();
    public long SentTotal;
    public long SentInWindow;
    public long LastSeq;
    public long LateSlots;
    public string? Error;
    public volatile bool Closing;

    /// <summary>Called once on a failure during the run (Program stops the run early).</summary>
    public Action? OnFailure { get; set; }
    private Task? _drain;

    /// <summary>Send time (Stopwatch ticks) of frame seq at index seq; entries up to LastSeq are final.</summary>
    private readonly long[] _sendLog = new long[Math.Max(logCapacity, 0) + 1];
    private long _logged; // highest seq whose send time is in _sendLog (written before the frame goes out)

    /// <summary>The seq of the last frame sent at or before <paramref name="ticks"/>, with its send time;
    /// false when there is none (or the send log has no room for this run's frames).</summary>
    public bool TryFindSentBefore(long ticks, out long seq, out long sentAt)
    {
        seq = 0;
        sentAt = 0;
        var hi = Volatile.Read(ref _logged);
        long lo = 1;
        if (hi < 1 || _sendLog[1] > ticks)
        {
            return false;
        }
        while (lo < hi)
        {
            var mid = (lo + hi + 1) / 2;
            if (_sendLog[mid] <= ticks)
            {
                lo = mid;
            }
            else
            {
                hi = mid - 1;
            }
        }
        seq = lo;
        sentAt = _sendLog[lo];
        return true;
    }

    private void Fail(string error)
    {
        Error ??= error;
        OnFailure?.Invoke();
    }

    public async Task ConnectAsync(CancellationToken ct)
    {
        Ws.Options.KeepAliveInterval = TimeSpan.Zero;
        await Ws.ConnectAsync(Uri, ct);
        _drain = DrainAsync();
    }

    /// <summary>Reads (and ignores) anything the server sends, to notice a server-side close.</summary>
    private async Task DrainAsync()
    {
        var buf = new byte[4096];
        try
        {
            while (true)
            {
                var r = await Ws.ReceiveAsync(buf.AsMemory(), CancellationToken.None);
                if (r.MessageType == WebSocketMessageType.Close)
                {
                    if (!Closing)
                    {
                        Fail($"{Id}: server closed the socket early ({Ws.CloseStatus} {Ws.CloseStatusDescription})");
                    }
                    return;
                }
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException) { }
    }

    public async Task RunAsync(CancellationToken ct)
    {
        var frame = Stamp.Build(baseJpeg, Index);
        var freq = Stopwatch.Frequency;
        var period = fps > 0 ? freq / fps : 0;
        long k = 0;
        long seq = 0;
        try
        {
            while (!ct.IsCancellationRequested)
            {
                var now = Stopwatch.GetTimestamp();
                if (period > 0)
                {
                    var deadline = window.Start + (long)((k + phase) * period);
                    if (now < deadline)
                    {
                        var ms = Math.Ceiling((deadline - now) * 1000.0 / freq);
                        await Task.Delay(TimeSpan.FromMilliseconds(ms), ct);
                    }
                    else if (now - deadline > 2 * period)
                    {
                        // Too far behind: skip the missed slots instead of bursting.
                        var behind = (long)((now - window.Start) / period - phase);
                        LateSlots += behind - k;
                        k = behind;
                    }
                    k++;
                }
                var t = Stopwatch.GetTimestamp();
                if (t >= window.MeasureTo)
                {
                    break;
                }
                seq++;
                Stamp.Write(frame, seq, t);
                if (seq < _sendLog.Length)
                {
                    _sendLog[seq] = t;
                    Volatile.Write(ref _logged, seq);
                }
                await Ws.SendAsync(frame.AsMemory(), WebSocketMessageType.Binary, true, ct);
                Volatile.Write(ref LastSeq, seq);
                Interlocked.Increment(ref SentTotal);
                if (t >= window.MeasureFrom)
                {
                    SentInWindow++;
                }
            }
        }
        catch (OperationCanceledException) { }
        catch (WebSocketException e)
        {
            Fail($"{Id}: send failed: {e.Message}");
        }
    }

    public async Task CloseAsync()
    {
        Closing = true;
        try
        {
            if (Ws.State is WebSocketState.Open or WebSocketState.CloseReceived)
            {
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(1));
                await Ws.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "done", cts.Token);
            }
            if (_drain is not null)
            {
                await _drain.WaitAsync(TimeSpan.FromSeconds(1));
            }
        }
        catch (Exception e)
            when (e is WebSocketException or OperationCanceledException or TimeoutException or ObjectDisposedException)
        { }
        Ws.Abort();
        Ws.Dispose();
    }
}

public sealed class ViewerClient(Camera camera, int index, Uri uri, bool meta, Window window, int expectedSamples)
{
    public Camera Camera { get; } = camera;
    public int Index { get; } = index;
    public Uri Uri { get; } = uri;
    public ClientWebSocket Ws { get; } = new();
    public List<long> Latencies { get; } = new(expectedSamples);
    public long ReceivedTotal;
    public long Delivered;
    public long Duplicates;
    public long Reordered;
    public long Corrupt;
    public long WrongSource;
    public long MatchedByMeta;
    public long Unmatched;
    public long MetaOk;
    public long MetaErrors;
    public long MaxSeq;
    public string? Error;
    public volatile bool Closing;
    public Action? OnFailure { get; set; }
    private byte[] _seen = new byte[4096];

    private void Fail(string error)
    {
        Error ??= error;
        OnFailure?.Invoke();
    }

    public async Task ConnectAsync(CancellationToken ct)
    {
        Ws.Options.KeepAliveInterval = TimeSpan.Zero;
        await Ws.ConnectAsync(Uri, ct);
    }

    public async Task RunAsync(CancellationToken ct)
    {
        var buf = new byte[1 << 20];
        var len = 0;
        var pendingMeta = false;
        double? pendingMetaTs = null;
        long lastMetaSeq = -1;
        long lastMetaEpoch = 0;
        var camId = Encoding.ASCII.GetBytes(Camera.Id);
        var maxMatchAge = Stopwatch.Frequency; // a frame "entered" over 1 s after its match is no match
        try
        {
            while (true)
            {
                if (len == buf.Length)
                {
                    Array.Resize(ref buf, buf.Length * 2);
                }
                var r = await Ws.ReceiveAsync(buf.AsMemory(len), ct);
                if (r.MessageType == WebSocketMessageType.Close)
                {
                    if (!Closing)
                    {
                        Fail(
                            $"{Camera.Id}/viewer{Index}: server closed the socket early ({Ws.CloseStatus} {Ws.CloseStatusDescription})"
                        );
                    }
                    return;
                }
                len += r.Count;
                if (!r.EndOfMessage)
                {
                    continue;
                }
                var now = Stopwatch.GetTimestamp();
                var msg = buf.AsSpan(0, len);
                len = 0;
                if (r.MessageType == WebSocketMessageType.Text)
                {
                    if (meta)
                    {
                        if (pendingMeta)
                        {
                            MetaErrors++; // two meta messages without a frame between them
                        }
                        pendingMeta = true;
                        pendingMetaTs = null;
                        if (CheckMeta(msg, camId, ref lastMetaEpoch, ref lastMetaSeq, out var tsMs))
                        {
                            MetaOk++;
                            pendingMetaTs = tsMs;
                        }
                        else
                        {
                            MetaErrors++;
                        }
                    }
                    continue;
                }
                Interlocked.Increment(ref ReceivedTotal);
                var metaTs = pendingMetaTs;
                pendingMetaTs = null;
                if (meta)
                {
                    if (!pendingMeta)
                    {
                        MetaErrors++;
                    }
                    pendingMeta = false;
                }
                if (msg.Length < 4 || msg[0] != 0xFF || msg[1] != 0xD8 || msg[^2] != 0xFF || msg[^1] != 0xD9)
                {
                    Corrupt++;
                    continue;
                }
                long seq;
                long sentAt;
                if (Stamp.TryRead(msg, out seq, out var cam, out sentAt))
                {
                    if (cam != Camera.Index)
                    {
                        WrongSource++;
                        continue;
                    }
                }
                else if (
                    metaTs is { } ms
                    && window.TicksFromUnixMs(ms + 1) is var entered
                    && Camera.TryFindSentBefore(entered, out seq, out sentAt)
                    && entered - sentAt <= maxMatchAge
                )
                {
                    // Re-encoded on the way (no COM stamp): matched by the service's entry time.
                    MatchedByMeta++;
                }
                else
                {
                    Unmatched++;
                    continue;
                }
                if (seq < MaxSeq)
                {
                    Reordered++;
                }
                else
                {
                    Volatile.Write(ref MaxSeq, seq);
                }
                if (MarkSeen(seq))
                {
                    Duplicates++;
                    continue;
                }
                if (window.Contains(sentAt))
                {
                    Delivered++;
                    Latencies.Add(now - sentAt);
                }
            }
        }
        catch (OperationCanceledException) { }
        catch (WebSocketException e) when (!Closing)
        {
            Fail($"{Camera.Id}/viewer{Index}: receive failed: {e.Message}");
        }
        catch (WebSocketException) { }
    }

    /// <summary>Returns true when seq was already seen.</summary>
    private bool MarkSeen(long seq)
    {
        if (seq >= _seen.Length)
        {
            Array.Resize(ref _seen, (int)Math.Max(_seen.Length * 2L, seq + 1024));
        }
        if (_seen[seq] != 0)
        {
            return true;
        }
        _seen[seq] = 1;
        return false;
    }

    /// <summary>A meta JSON of this viewer's camera with a seq above the last one; its ts_ms when present. seq grows
    /// within an epoch; a new epoch (the source's grain re-activated, e.g. after a silo loss in cluster mode)
    /// restarts it.</summary>
    private static bool CheckMeta(
        ReadOnlySpan<byte> json,
        ReadOnlySpan<byte> camId,
        ref long lastEpoch,
        ref long lastSeq,
        out double? tsMs
    )
    {
        tsMs = null;
        try
        {
            var reader = new Utf8JsonReader(json);
            long? seq = null;
            long epoch = 0;
            var sourceOk = false;
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return false;
            }
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("seq"u8))
                {
                    reader.Read();
                    if (reader.TokenType == JsonTokenType.Number && reader.TryGetInt64(out var s))
                    {
                        seq = s;
                    }
                }
                else if (reader.ValueTextEquals("epoch"u8))
                {
                    reader.Read();
                    if (reader.TokenType == JsonTokenType.Number && reader.TryGetInt64(out var e))
                    {
                        epoch = e;
                    }
                }
                else if (reader.ValueTextEquals("ts_ms"u8))
                {
                    reader.Read();
                    if (reader.TokenType == JsonTokenType.Number && reader.TryGetDouble(out var t))
                    {
                        tsMs = t;
                    }
                }
                else if (reader.ValueTextEquals("source"u8))
                {
                    reader.Read();
                    sourceOk = reader.TokenType == JsonTokenType.String && reader.ValueTextEquals(camId);
                }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }
            if (epoch != lastEpoch)
            {
                lastEpoch = epoch;
                lastSeq = 0;
            }
            if (seq is null || !sourceOk || seq.Value <= lastSeq)
            {
                return false;
            }
            lastSeq = seq.Value;
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    public async Task CloseAsync(Task run)
    {
        Closing = true;
        try
        {
            if (Ws.State is WebSocketState.Open or WebSocketState.CloseReceived)
            {
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(1));
                await Ws.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "done", cts.Token);
            }
            await run.WaitAsync(TimeSpan.FromSeconds(1));
        }
        catch (Exception e)
            when (e is WebSocketException or OperationCanceledException or TimeoutException or ObjectDisposedException)
        { }
        Ws.Abort();
        Ws.Dispose();
    }
}
