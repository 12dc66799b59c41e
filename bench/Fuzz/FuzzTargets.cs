using System.Buffers;
using System.Text;
using System.Text.Json;
using Blankend.Orleans;
using Blankend.Orleans.Codec;
using Blankend.Orleans.Gateway.Endpoints;
using Blankend.Orleans.Grains.Ai;
using Blankend.Orleans.Grains.Codec;
using Blankend.Orleans.Media;
using Blankend.Orleans.Processing;

namespace Blankend.Bench.Fuzz;

/// <summary>A parser broke a promise it makes (not a refusal: refusals are the expected outcome of bad
/// input).</summary>
internal sealed class FuzzInvariantException(string message) : Exception(message);

/// <summary>
/// The parsers that take bytes from outside, one entry point each: it must return (refusing is fine) for any
/// input, without an unexpected exception and without looping. Shared by the fuzz bench (bench/Fuzz) and the
/// corpus regression tests (tests/Fuzz), so both run exactly the same code.
/// </summary>
internal static class FuzzTargets
{
    public static readonly IReadOnlyDictionary<string, Action<byte[]>> All = new Dictionary<string, Action<byte[]>>(
        StringComparer.Ordinal
    )
    {
        ["jpeg-header"] = JpegHeader,
        ["annexb"] = AnnexB,
        ["jpeg-splitter"] = JpegSplitter,
        ["bus-message"] = BusMessage,
        ["json-pipeline"] = JsonPipeline,
        ["json-realtime"] = JsonRealtime,
        ["json-record"] = JsonRecord,
    };

    private static void Check(bool ok, string what)
    {
        if (!ok)
            throw new FuzzInvariantException(what);
    }

    /// <summary>JPEG/PNG header sniffing: the size guards in front of every decode.</summary>
    public static void JpegHeader(byte[] b)
    {
        if (JpegInfo.TryGetSize(b, out var w, out var h))
            Check(w > 0 && h > 0, "JpegInfo gave a zero size");
        _ = ImageSniffer.IsJpegOrPng(b);
        if (ImageSniffer.TryReadSize(b, out w, out h))
            Check(w >= 0 && h >= 0, "ImageSniffer gave a negative size");
        var problem = ImageSniffer.SizeProblem(b);
        Check(
            problem is not null
                || (
                    ImageSniffer.TryReadSize(b, out w, out h) && w > 0 && h > 0 && (long)w * h <= ImageSniffer.MaxPixels
                ),
            "SizeProblem accepted an image without an acceptable size"
        );
        _ = Jpeg.Check(b);
    }

    /// <summary>Splits <paramref name="b"/> into chunks whose sizes come from the input itself (so that a finding
    /// replays exactly), the way a WebSocket delivers a stream.</summary>
    private static IEnumerable<ReadOnlyMemory<byte>> Chunks(byte[] b, int skip)
    {
        var seed = b.Length > 0 ? b[0] : 0;
        var rng = new Random(seed);
        for (var i = skip; i < b.Length; )
        {
            var n = Math.Min(b.Length - i, 1 + rng.Next(seed % 3 == 0 ? 8 : 600));
            yield return b.AsMemory(i, n);
            i += n;
        }
    }

    /// <summary>Annex-B start-code scanner and the replay buffer it feeds (h264 or hevc by the first byte).</summary>
    public static void AnnexB(byte[] b)
    {
        var scanner = new AnnexBScanner(b.Length > 0 && (b[0] & 1) == 1 ? VideoCodecs.Hevc : VideoCodecs.H264);
        var replay = new ReplayBuffer(4096);
        foreach (var chunk in Chunks(b, 1))
        {
            var mark = scanner.Scan(chunk.Span);
            Check(mark >= -1 && mark < chunk.Length, $"Scan returned {mark} for a chunk of {chunk.Length}");
            replay.Append(chunk.Span, mark);
            Check(replay.Bytes <= replay.MaxBytes + 4 + chunk.Length, "the replay buffer outgrew its bound");
        }
    }

    /// <summary>The splitter of ffmpeg's concatenated JPEG output, fed as a pipe would: data arrives in chunks,
    /// what is not consumed stays at the buffer's head.</summary>
    public static void JpegSplitter(byte[] b)
    {
        var splitter = new JpegFrameSplitter(maxFrameBytes: 4096);
        var pending = new List<byte>();
        foreach (var chunk in Chunks(b, 0))
        {
            pending.AddRange(chunk.Span);
            var buffer = new ReadOnlySequence<byte>(pending.ToArray());
            var rounds = 0;
            while (splitter.TryReadFrame(ref buffer, out var frame))
            {
                Check(++rounds <= pending.Count + 1, "TryReadFrame returned frames without consuming input");
                var f = frame.ToArray();
                Check(
                    f.Length >= 4 && f[0] == 0xFF && f[1] == 0xD8 && f[^2] == 0xFF && f[^1] == 0xD9,
                    "a frame is not SOI .. EOI"
                );
                Check(f.Length <= 4096, "a frame is over the size limit");
            }
            pending = [.. buffer.ToArray()];
        }
        _ = splitter.Complete(new ReadOnlySequence<byte>(pending.ToArray()));
    }

    /// <summary>A bus message [client_id, data] as RelayLink.OnMessage takes it apart: the first input byte is the
    /// id's length, then the id, then the data.</summary>
    public static void BusMessage(byte[] b)
    {
        if (b.Length == 0)
            return;
        var idLength = Math.Min(b[0] % 80, b.Length - 1);
        var id = b.AsSpan(1, idLength);
        var data = b.AsSpan(1 + idLength);
        string clientId;
        try
        {
            clientId = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(id);
        }
        catch (DecoderFallbackException)
        {
            return;
        } // dropped as invalid_client_id
        if (BusControlIds.IsControl(clientId))
            return;
        if (!ClientIds.IsValid(clientId, out var why))
        {
            Check(why is not null, "an invalid id without a reason");
            return;
        }
        _ = Jpeg.Check(data);
    }

    public static void JsonPipeline(byte[] b)
    {
        PipelineConfigBody? p;
        try
        {
            p = JsonSerializer.Deserialize(b, ProcessingRequestJson.Default.PipelineConfigBody);
        }
        catch (JsonException)
        {
            return;
        }
        if (p is null)
            return;
        _ = PipelineRules.Validate(
            new PipelineConfigUpdate(
                p.Source,
                p.Enabled,
                p.ReencodeEnabled,
                p.JpegQuality,
                p.FpsLimit,
                p.Workers,
                p.HwTranscode,
                p.Reset ?? false
            )
        );
    }

    public static void JsonRealtime(byte[] b)
    {
        RealtimeConfigBody? p;
        try
        {
            p = JsonSerializer.Deserialize(b, AiRequestJson.Default.RealtimeConfigBody);
        }
        catch (JsonException)
        {
            return;
        }
        if (p?.Steps is not null && Blankend.Orleans.Ai.AiStepNames.Parse(p.Steps, out var error) is null)
            Check(error is not null, "steps refused without a reason");
    }

    public static void JsonRecord(byte[] b)
    {
        try
        {
            var start = JsonSerializer.Deserialize(b, CodecJson.Default.RecordStartBody);
            if (start?.Source is { } s)
                _ = ClientIds.IsValid(s, out _);
            _ = JsonSerializer.Deserialize(b, CodecJson.Default.RecordStopBody);
        }
        catch (JsonException) { }
    }
}
