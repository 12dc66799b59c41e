using System.Threading.Channels;
using Blankend.Orleans.Codec;

namespace Blankend.Orleans.Gateway.Ingest;

/// <summary>
/// Hands one <c>/video_codec</c> connection's chunks to its decode session, in order, one awaited call at a time.
/// Unlike <see cref="IngestPump"/> (JPEG frames: the newest wins), nothing is ever dropped here: a hole in an
/// Annex-B stream corrupts every frame up to the next keyframe. So the queue is bounded and a full queue makes
/// the WebSocket receive loop wait, which pushes back on the camera through TCP. Chunks waiting together are
/// sent in one call (fewer grain calls when a client splits its stream finely).
/// </summary>
internal sealed partial class ChunkPump : IAsyncDisposable
{
    /// <summary>Largest coalesced call.</summary>
    public const int MaxBatchBytes = 256 * 1024;

    private readonly Channel<byte[]> _queue;
    private readonly ICodecSessionGrain _grain;
    private readonly Guid _connection;
    private readonly CodecGatewayCounters _counters;
    private readonly ILogger _log;
    private readonly TaskCompletionSource<DecodeSessionEnd> _ended = new(
        TaskCreationOptions.RunContinuationsAsynchronously
    );
    private readonly Task _pump;

    public ChunkPump(
        ICodecSessionGrain grain,
        Guid connection,
        int capacity,
        CodecGatewayCounters counters,
        ILogger log
    )
    {
        _grain = grain;
        _connection = connection;
        _counters = counters;
        _log = log;
        _queue = Channel.CreateBounded<byte[]>(
            new BoundedChannelOptions(capacity)
            {
                FullMode = BoundedChannelFullMode.Wait,
                SingleReader = true,
                SingleWriter = true,
            }
        );
        _pump = Task.Run(PumpAsync);
    }

    /// <summary>Completes when the session reports its end through a push answer (or cannot be reached).</summary>
    public Task<DecodeSessionEnd> Ended => _ended.Task;

    /// <summary>Queues a chunk; waits while the queue is full. Throws <see cref="ChannelClosedException"/> once the
    /// session has ended.</summary>
    public ValueTask SendAsync(byte[] chunk, CancellationToken ct) => _queue.Writer.WriteAsync(chunk, ct);

    private async Task PumpAsync()
    {
        var reader = _queue.Reader;
        var batch = new List<byte[]>();
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            batch.Clear();
            var total = 0;
            while (total < MaxBatchBytes && reader.TryRead(out var chunk))
            {
                batch.Add(chunk);
                total += chunk.Length;
            }
            if (batch.Count == 0)
                continue;
            var data = batch.Count == 1 ? batch[0] : Concat(batch, total);
            try
            {
                var result = await _grain.Push(_connection, new CodecChunk(data)).ConfigureAwait(false);
                Interlocked.Increment(ref _counters.PushCalls);
                if (result.Ended is { } end)
                {
                    SetEnded(end);
                    return;
                }
            }
            catch (Exception e)
            {
                LogPushFailed(_log, e);
                SetEnded(
                    new DecodeSessionEnd(
                        "session_lost",
                        "decode_failed",
                        $"the decode session could not be reached ({e.GetType().Name}: {e.Message})",
                        1011,
                        0
                    )
                );
                return;
            }
        }
    }

    private void SetEnded(DecodeSessionEnd end)
    {
        _ended.TrySetResult(end);
        _queue.Writer.TryComplete();
        while (_queue.Reader.TryRead(out _)) { }
    }

    private static byte[] Concat(List<byte[]> parts, int total)
    {
        var data = new byte[total];
        var at = 0;
        foreach (var p in parts)
        {
            p.CopyTo(data, at);
            at += p.Length;
        }
        return data;
    }

    /// <summary>No more chunks: waits (bounded) until the queued ones are in the session.</summary>
    public async Task CompleteAsync(TimeSpan timeout)
    {
        _queue.Writer.TryComplete();
        try
        {
            await _pump.WaitAsync(timeout).ConfigureAwait(false);
        }
        catch (TimeoutException) { }
    }

    public async ValueTask DisposeAsync() => await CompleteAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false);

    [LoggerMessage(Level = LogLevel.Warning, Message = "pushing a chunk to the decode session failed")]
    private static partial void LogPushFailed(ILogger log, Exception e);
}

/// <summary>This gateway's <c>/video_codec</c> counters (the sessions' own counters live on the silos).</summary>
internal sealed class CodecGatewayCounters
{
    public long Connections;
    public long ConnectionsTotal;
    public long ChunksIn;
    public long BytesIn;
    public long PushCalls;
    public long Refused;
}
