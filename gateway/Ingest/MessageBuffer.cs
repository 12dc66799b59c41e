using System.Buffers;
using System.Net.WebSockets;

namespace Blankend.Orleans.Gateway.Ingest;

/// <summary>
/// Receives one WebSocket message at a time into a pooled buffer that is reused across messages and grows up to
/// <c>maxBytes + 1</c>: one byte past the limit is enough to know a message is too big, without buffering it
/// whole. Shared by <c>/video_in</c> and <c>/video_codec</c>.
/// </summary>
internal sealed class MessageBuffer(int initialBytes, int maxBytes) : IDisposable
{
    private byte[] _buffer = ArrayPool<byte>.Shared.Rent(Math.Min(initialBytes, maxBytes + 1));

    /// <summary>Bytes of the last message (more than the limit when it was too big).</summary>
    public int Count { get; private set; }

    public ReadOnlySpan<byte> Span => _buffer.AsSpan(0, Count);

    /// <summary>Reads the next whole message. <c>TooBig</c>: it went past <c>maxBytes</c> and was not read to its
    /// end.</summary>
    public async ValueTask<(WebSocketMessageType Type, bool TooBig)> ReceiveAsync(
        WebSocket socket,
        CancellationToken ct
    )
    {
        Count = 0;
        ValueWebSocketReceiveResult result;
        do
        {
            if (Count == _buffer.Length)
            {
                var bigger = ArrayPool<byte>.Shared.Rent(Math.Min(_buffer.Length * 2, maxBytes + 1));
                _buffer.AsSpan(0, Count).CopyTo(bigger);
                ArrayPool<byte>.Shared.Return(_buffer);
                _buffer = bigger;
            }
            result = await socket.ReceiveAsync(
                _buffer.AsMemory(Count, Math.Min(_buffer.Length, maxBytes + 1) - Count),
                ct
            );
            Count += result.Count;
            if (Count > maxBytes)
                return (result.MessageType, true);
        } while (!result.EndOfMessage);
        return (result.MessageType, false);
    }

    public void Dispose() => ArrayPool<byte>.Shared.Return(_buffer);
}
