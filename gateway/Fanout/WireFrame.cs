using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;

namespace Blankend.Orleans.Gateway.Fanout;

/// <summary>
/// The pooled buffers that hold framed frames (<see cref="WireFrame"/>), with a count of those rented and not yet
/// returned: it falls back to zero once every viewer has written or dropped every frame (tests check this).
/// One pool per hub.
/// </summary>
internal sealed class WireFramePool
{
    // Arrays up to 16 MiB (stream.max_frame_bytes is at most that, plus the headers); a few per size bucket: one
    // frame is framed at a time per source, and a slow viewer holds at most its queue's worth.
    private readonly ArrayPool<byte> _pool = ArrayPool<byte>.Create(16 * 1024 * 1024 + 1024, 32);
    private long _rented;

    /// <summary>Buffers rented and not returned yet.</summary>
    public long Rented => Interlocked.Read(ref _rented);

    public byte[] Rent(int length)
    {
        Interlocked.Increment(ref _rented);
        return _pool.Rent(length);
    }

    public void Return(byte[] buffer)
    {
        _pool.Return(buffer);
        Interlocked.Decrement(ref _rented);
    }
}

/// <summary>
/// One frame as every viewer of this gateway gets it on the wire: the WebSocket frames, built once and shared.
/// A server-to-client frame is not masked, so its bytes are the same for every viewer: the buffer holds
/// <c>[text frame: meta JSON][binary frame: JPEG]</c>; a <c>meta=1</c> viewer writes all of it, the others the
/// binary frame only. Exactly what <see cref="System.Net.WebSockets.WebSocket.SendAsync(ReadOnlyMemory{byte},
/// System.Net.WebSockets.WebSocketMessageType, bool, CancellationToken)"/> writes for the same messages (FIN set,
/// no RSV bits, no mask, the shortest of the three length forms).
/// Reference-counted: the hub holds one reference while it dispatches, each viewer one while the frame is queued
/// or being written; the last release returns the buffer to its pool.
/// </summary>
internal sealed class WireFrame
{
    private const byte FinText = 0x81;
    private const byte FinBinary = 0x82;

    private readonly WireFramePool _pool;
    private byte[]? _buffer;
    private readonly int _metaStart; // after the text frame's header
    private readonly int _binaryStart;
    private readonly int _end;
    private int _refs = 1;

    private WireFrame(
        FrameEnvelope frame,
        long order,
        WireFramePool pool,
        byte[] buffer,
        int metaStart,
        int binaryStart,
        int end
    )
    {
        _metaStart = metaStart;
        Frame = frame;
        Order = order;
        _pool = pool;
        _buffer = buffer;
        _binaryStart = binaryStart;
        _end = end;
    }

    public FrameEnvelope Frame { get; }

    /// <summary>Per source, +1 per frame dispatched on this hub: a viewer never writes a frame after a later one of
    /// the same source (see <see cref="Viewer.Offer"/>).</summary>
    public long Order { get; }

    /// <summary>Frames the buffer once (one copy of the payload, whatever the number of viewers).</summary>
    public static WireFrame Create(FrameEnvelope frame, long order, WireFramePool pool)
    {
        var meta = OutFrame.BuildMeta(frame);
        var payload = frame.Payload;
        var metaLength = HeaderLength(meta.Length) + meta.Length;
        var total = metaLength + HeaderLength(payload.Length) + payload.Length;
        var buffer = pool.Rent(total);
        var span = buffer.AsSpan();
        var metaStart = WriteHeader(span, FinText, meta.Length);
        meta.CopyTo(span[metaStart..]);
        var n = metaLength;
        n += WriteHeader(span[n..], FinBinary, payload.Length);
        payload.CopyTo(span[n..]);
        return new WireFrame(frame, order, pool, buffer, metaStart, metaLength, total);
    }

    /// <summary>The bytes a viewer writes: both frames with <paramref name="meta"/>, the binary one
    /// otherwise.</summary>
    public ReadOnlyMemory<byte> Bytes(bool meta)
    {
        var buffer = _buffer ?? throw new ObjectDisposedException(nameof(WireFrame));
        return meta ? buffer.AsMemory(0, _end) : buffer.AsMemory(_binaryStart, _end - _binaryStart);
    }

    /// <summary>The meta JSON alone (the fallback path sends it with WebSocket.SendAsync).</summary>
    public ReadOnlyMemory<byte> MetaJson
    {
        get
        {
            var buffer = _buffer ?? throw new ObjectDisposedException(nameof(WireFrame));
            return buffer.AsMemory(_metaStart, _binaryStart - _metaStart);
        }
    }

    public void AddRef()
    {
        var n = Interlocked.Increment(ref _refs);
        Debug.Assert(n > 1, "AddRef on a released frame");
    }

    public void Release()
    {
        var n = Interlocked.Decrement(ref _refs);
        if (n > 0)
            return;
        Debug.Assert(n == 0, "released once too often");
        var buffer = Interlocked.Exchange(ref _buffer, null);
        if (buffer is not null)
            _pool.Return(buffer);
    }

    /// <summary>The length of a frame header for a payload of <paramref name="payloadLength"/> bytes
    /// (unmasked).</summary>
    public static int HeaderLength(long payloadLength) =>
        payloadLength < 126 ? 2
        : payloadLength <= ushort.MaxValue ? 4
        : 10;

    /// <summary>Writes an unmasked, final frame header (RFC 6455 5.2); returns its length.</summary>
    public static int WriteHeader(Span<byte> destination, byte finAndOpcode, long payloadLength)
    {
        destination[0] = finAndOpcode;
        if (payloadLength < 126)
        {
            destination[1] = (byte)payloadLength;
            return 2;
        }
        if (payloadLength <= ushort.MaxValue)
        {
            destination[1] = 126;
            BinaryPrimitives.WriteUInt16BigEndian(destination[2..], (ushort)payloadLength);
            return 4;
        }
        destination[1] = 127;
        BinaryPrimitives.WriteUInt64BigEndian(destination[2..], (ulong)payloadLength);
        return 10;
    }
}
