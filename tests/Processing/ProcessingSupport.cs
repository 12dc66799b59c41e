using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using Blankend.Orleans.Tests.Support;
using OpenCvSharp;

namespace Blankend.Orleans.Tests.Processing;

/// <summary>Helpers of the processing tests: the pipeline API, viewers that read (meta, frame) pairs, JPEG
/// checks.</summary>
public static class ProcessingApi
{
    public const string Status = "api/v1/video_processing/pipeline/status";
    public const string Config = "api/v1/video_processing/pipeline/config";
    public const string Gpu = "api/v1/video_processing/gpu/status";

    public static async Task<JsonElement> GetJsonAsync(this HttpClient http, string path) =>
        await http.GetFromJsonAsync<JsonElement>(path);

    public static async Task<HttpResponseMessage> PostConfigAsync(this HttpClient http, string json) =>
        await http.PostAsync(Config, new StringContent(json, Encoding.UTF8, "application/json"));

    /// <summary>Posts and expects 200.</summary>
    public static async Task<JsonElement> ConfigureAsync(this HttpClient http, string json)
    {
        using var r = await http.PostConfigAsync(json);
        var body = await r.Content.ReadAsStringAsync();
        if (!r.IsSuccessStatusCode)
            throw new InvalidOperationException($"POST config {json} -> {(int)r.StatusCode}: {body}");
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    public static JsonElement? SourceStats(JsonElement status, string source)
    {
        foreach (var s in status.GetProperty("sources").EnumerateArray())
        {
            if (s.GetProperty("source").GetString() == source)
                return s;
        }
        return null;
    }

    public static JsonElement Device(JsonElement status, string device) =>
        status.GetProperty("devices").EnumerateArray().Single(d => d.GetProperty("device").GetString() == device);

    /// <summary>Polls the pipeline status until <paramref name="condition"/> holds for it.</summary>
    public static async Task<JsonElement> WaitStatusAsync(
        this HttpClient http,
        Func<JsonElement, bool> condition,
        TimeSpan? timeout = null,
        string? what = null
    )
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(15));
        JsonElement last = default;
        while (DateTime.UtcNow < deadline)
        {
            last = await http.GetJsonAsync(Status);
            if (condition(last))
                return last;
            await Task.Delay(50);
        }
        throw new TimeoutException($"pipeline status never showed {what ?? "the expected state"}; last: {last}");
    }

    /// <summary>Worker threads of one device host, by name (/proc/self/task/*/comm: Linux keeps 15
    /// characters).</summary>
    public static int WorkerThreads(string tagPrefix)
    {
        var n = 0;
        foreach (var task in Directory.GetDirectories("/proc/self/task"))
        {
            try
            {
                if (File.ReadAllText(Path.Combine(task, "comm")).Trim().StartsWith(tagPrefix, StringComparison.Ordinal))
                    n++;
            }
            catch (IOException) { } // the thread ended meanwhile
        }
        return n;
    }

    public static (int Width, int Height) DecodeSize(byte[] jpeg)
    {
        using var mat = Cv2.ImDecode(jpeg, ImreadModes.Color);
        if (mat.Empty())
            throw new InvalidOperationException("not a decodable JPEG");
        return (mat.Width, mat.Height);
    }

    /// <summary>Mean absolute difference per channel value between two decoded JPEGs of the same size.</summary>
    public static double MeanAbsDiff(byte[] a, byte[] b)
    {
        using var ma = Cv2.ImDecode(a, ImreadModes.Color);
        using var mb = Cv2.ImDecode(b, ImreadModes.Color);
        using var diff = new Mat();
        Cv2.Absdiff(ma, mb, diff);
        var mean = Cv2.Mean(diff);
        return (mean.Val0 + mean.Val1 + mean.Val2) / 3;
    }

    /// <summary>A large, hard-to-compress JPEG (noise), slow enough to decode and encode to fill a worker.</summary>
    public static byte[] NoiseJpeg(int width, int height, int quality = 95, int seed = 1)
    {
        using var mat = new Mat(height, width, MatType.CV_8UC3);
        _ = seed; // each call draws new noise from OpenCV's RNG
        Cv2.Randu(mat, new Scalar(0, 0, 0), new Scalar(255, 255, 255));
        Cv2.ImEncode(".jpg", mat, out var bytes, new ImageEncodingParam(ImwriteFlags.JpegQuality, quality));
        return bytes;
    }

    /// <summary>The test portrait scaled to <paramref name="width"/> x <paramref name="height"/> (as
    /// bench/media/frame-1280x720.jpg is made), at <paramref name="quality"/>.</summary>
    public static byte[] ScaledPortrait(int width, int height, int quality = 85)
    {
        using var src = Cv2.ImDecode(TestJpeg.Base, ImreadModes.Color);
        using var dst = new Mat();
        Cv2.Resize(src, dst, new Size(width, height), 0, 0, InterpolationFlags.Area);
        Cv2.ImEncode(".jpg", dst, out var bytes, new ImageEncodingParam(ImwriteFlags.JpegQuality, quality));
        return bytes;
    }

    /// <summary>Passes the SOI / marker / EOI check but holds no image: the decoder refuses it.</summary>
    public static byte[] CorruptJpeg()
    {
        var b = new byte[2000];
        new Random(5).NextBytes(b);
        b[0] = 0xFF;
        b[1] = 0xD8;
        b[2] = 0xFF;
        b[3] = 0xE0; // SOI, APP0 marker
        b[4] = 0x00;
        b[5] = 0x10; // APP0 length 16
        for (var i = 6; i < 20; i++)
            b[i] = 0x00;
        b[20] = 0xFF;
        b[21] = 0xDA; // SOS without any SOF / tables
        b[^2] = 0xFF;
        b[^1] = 0xD9;
        return b;
    }
}

/// <summary>A viewer with meta=1 that collects (meta, payload) pairs in the background.</summary>
public sealed class MetaViewer : IAsyncDisposable
{
    private readonly ClientWebSocket _ws;
    private readonly CancellationTokenSource _cts = new();
    private readonly Task _loop;
    private readonly List<(JsonElement Meta, byte[] Data)> _frames = [];
    private readonly Lock _gate = new();
    private readonly SemaphoreSlim _arrived = new(0);

    private MetaViewer(ClientWebSocket ws)
    {
        _ws = ws;
        _loop = Task.Run(ReadAsync);
    }

    public static async Task<MetaViewer> ConnectAsync(Uri uri) => new(await Ws.ConnectAsync(uri));

    public List<(JsonElement Meta, byte[] Data)> Frames
    {
        get
        {
            lock (_gate)
                return [.. _frames];
        }
    }

    public int Count
    {
        get
        {
            lock (_gate)
                return _frames.Count;
        }
    }

    private async Task ReadAsync()
    {
        JsonElement? meta = null;
        var buffer = new byte[1 << 20];
        try
        {
            while (!_cts.IsCancellationRequested)
            {
                var count = 0;
                ValueWebSocketReceiveResult r;
                do
                {
                    if (count == buffer.Length)
                        Array.Resize(ref buffer, buffer.Length * 2);
                    r = await _ws.ReceiveAsync(buffer.AsMemory(count), _cts.Token);
                    count += r.Count;
                } while (!r.EndOfMessage);
                if (r.MessageType == WebSocketMessageType.Close)
                    return;
                if (r.MessageType == WebSocketMessageType.Text)
                {
                    meta = JsonDocument.Parse(buffer.AsMemory(0, count)).RootElement.Clone();
                    continue;
                }
                var data = buffer.AsSpan(0, count).ToArray();
                lock (_gate)
                    _frames.Add((meta ?? default, data));
                _arrived.Release();
                meta = null;
            }
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException)
        {
            _ended = e;
        }
        catch (Exception e)
        {
            _ended = e;
            throw;
        }
    }

    private Exception? _ended;

    public async Task WaitCountAsync(int n, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (Count < n)
        {
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero || !await _arrived.WaitAsync(left))
            {
                // Say whether the viewer's socket was still being read, and how it ended if not.
                var state = _ended is null
                    ? $"socket {_ws.State}, still reading"
                    : $"socket {_ws.State}, reading ended: {_ended.GetType().Name}: {_ended.Message}";
                throw new TimeoutException($"viewer got {Count} of {n} frames ({state})");
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _cts.CancelAsync();
        try
        {
            await _loop;
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException or ObjectDisposedException) { }
        await _ws.CloseQuietlyAsync();
        _cts.Dispose();
        _arrived.Dispose();
    }
}
