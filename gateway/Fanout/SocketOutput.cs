using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;

namespace Blankend.Orleans.Gateway.Fanout;

/// <summary>
/// The output side of a plain-TCP connection, written straight to its socket. Kestrel's socket transport copies
/// every write into a pipe that a loop of its own sends from: for a viewer that is a 100 KB copy and a thread-pool
/// hop per frame, which is what left the gateway's CPU per viewer at 3.5x Node's (docs/benchmarks.md). Installed
/// as the connection's <see cref="IDuplexPipe.Output"/> by <see cref="UseSocketOutput"/>, it serves two writers in
/// one order: Kestrel (HTTP responses, the 101 of an upgrade), whose bytes it buffers until Kestrel flushes and
/// then sends, and <see cref="SendAsync"/>, which sends a caller's buffer as it is, with no copy, on the calling
/// thread while the socket takes it at once (Node's way). One send lock keeps the two apart; what Kestrel wrote
/// and did not flush yet goes out first, so the bytes leave in the order they were written.
/// A TLS connection does not use it for <see cref="SendAsync"/> (the bytes must go through the TLS stream):
/// its viewers write through Kestrel as before.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage(
    "Design",
    "CA1001",
    Justification = "The send lock never allocates a wait handle, and a send may still release it after the connection"
)]
internal sealed class SocketOutput : PipeWriter
{
    private const int MinSegment = 4096;

    private readonly Socket _socket;
    private readonly ConnectionContext _connection;
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly Lock _bufferLock = new();
    private readonly List<ArraySegment<byte>> _written = []; // advanced, not sent yet, in order
    private byte[]? _tail; // the segment GetMemory hands out; bytes [0, _tailUsed) are advanced
    private int _tailUsed;
    private CancellationTokenSource? _flushCancel;
    private bool _broken; // a send failed: the connection is aborted, nothing more goes out

    internal SocketOutput(Socket socket, ConnectionContext connection)
    {
        _socket = socket;
        _connection = connection;
    }

    /// <summary>Connection middleware: the connection's output goes through a <see cref="SocketOutput"/> (found in
    /// the request's features) when Kestrel's socket transport carries it; anything else passes through as it is.
    /// Put it first, nearest the socket: a TLS layer added after it then writes its records through it.</summary>
    public static async Task UseSocketOutput(ConnectionContext connection, ConnectionDelegate next)
    {
        if (connection.Features.Get<IConnectionSocketFeature>()?.Socket is not { } socket)
        {
            await next(connection).ConfigureAwait(false);
            return;
        }
        var transport = connection.Transport;
        var output = new SocketOutput(socket, connection);
        connection.Transport = new Duplex(transport.Input, output);
        connection.Features.Set(output);
        try
        {
            await next(connection).ConfigureAwait(false);
        }
        finally
        {
            // What is left (normally nothing: Kestrel flushes before it completes) goes out, then the transport's
            // own output completes, which is how Kestrel's socket loop learns to shut the socket down.
            await output.DrainAsync().ConfigureAwait(false);
            connection.Transport = transport;
            await transport.Output.CompleteAsync().ConfigureAwait(false);
        }
    }

    public override Memory<byte> GetMemory(int sizeHint = 0)
    {
        lock (_bufferLock)
        {
            var need = Math.Max(sizeHint, 1);
            if (_tail is null || _tail.Length - _tailUsed < need)
            {
                RetireTail();
                _tail = ArrayPool<byte>.Shared.Rent(Math.Max(need, MinSegment));
                _tailUsed = 0;
            }
            return _tail.AsMemory(_tailUsed);
        }
    }

    public override Span<byte> GetSpan(int sizeHint = 0) => GetMemory(sizeHint).Span;

    public override void Advance(int bytes)
    {
        lock (_bufferLock)
        {
            if (_tail is null || bytes < 0 || _tailUsed + bytes > _tail.Length)
                throw new InvalidOperationException("Advance past the memory GetMemory returned.");
            _tailUsed += bytes;
        }
    }

    public override async ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default)
    {
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        Volatile.Write(ref _flushCancel, cancel);
        try
        {
            await _sendLock.WaitAsync(cancel.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new FlushResult(isCanceled: true, isCompleted: false);
        }
        try
        {
            await SendWrittenAsync(cancel.Token).ConfigureAwait(false);
            return new FlushResult(isCanceled: false, isCompleted: _broken);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            // CancelPendingFlush: Kestrel gives up on this connection; part of a write may be out, so it ends.
            Break(null);
            return new FlushResult(isCanceled: true, isCompleted: false);
        }
        finally
        {
            Interlocked.CompareExchange(ref _flushCancel, null, cancel);
            _sendLock.Release();
        }
    }

    public override void CancelPendingFlush()
    {
        try
        {
            Volatile.Read(ref _flushCancel)?.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // That flush finished as this was called: nothing left to cancel.
        }
    }

    public override void Complete(Exception? exception = null)
    {
        // Nothing to do here: UseSocketOutput sends what is left once Kestrel is done with the connection.
    }

    public override bool CanGetUnflushedBytes => true;

    public override long UnflushedBytes
    {
        get
        {
            lock (_bufferLock)
            {
                long n = _tailUsed;
                foreach (var s in _written)
                    n += s.Count;
                return n;
            }
        }
    }

    /// <summary>
    /// Sends <paramref name="data"/> as it is, after anything Kestrel wrote before it. Completes at once, on the
    /// calling thread and without allocating, when the socket takes all of it at once; otherwise when it has. The
    /// buffer must stay untouched until then. A failed or cancelled send aborts the connection (part of a message
    /// may be out) and throws <see cref="IOException"/> or <see cref="OperationCanceledException"/>.
    /// </summary>
    public ValueTask SendAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        if (!_sendLock.Wait(0, CancellationToken.None))
            return LockedSendAsync(data, cancellationToken);
        ValueTask send;
        try
        {
            send = HasWritten() ? SendWrittenThenAsync(data, cancellationToken) : SendAllAsync(data, cancellationToken);
        }
        catch
        {
            _sendLock.Release();
            throw;
        }
        if (send.IsCompletedSuccessfully)
        {
            _sendLock.Release();
            return ValueTask.CompletedTask;
        }
        return ReleaseAfterAsync(send);
    }

    private async ValueTask LockedSendAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        await _sendLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await SendWrittenThenAsync(data, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _sendLock.Release();
        }
    }

    private async ValueTask ReleaseAfterAsync(ValueTask send)
    {
        try
        {
            await send.ConfigureAwait(false);
        }
        finally
        {
            _sendLock.Release();
        }
    }

    private async ValueTask SendWrittenThenAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        await SendWrittenAsync(cancellationToken).ConfigureAwait(false);
        await SendAllAsync(data, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Under the send lock: the whole buffer, in as many sends as the socket needs.</summary>
    private ValueTask SendAllAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        if (_broken)
            return ValueTask.FromException(new IOException("the connection was aborted after a failed send"));
        try
        {
            while (data.Length > 0)
            {
                var sent = _socket.SendAsync(data, SocketFlags.None, cancellationToken);
                if (!sent.IsCompletedSuccessfully)
                    return AwaitRestAsync(sent, data, cancellationToken);
                data = data[sent.Result..];
            }
            return ValueTask.CompletedTask;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            Break(e);
            return ValueTask.FromException(new IOException("send failed: " + e.Message, e));
        }
    }

    private async ValueTask AwaitRestAsync(
        ValueTask<int> pending,
        ReadOnlyMemory<byte> data,
        CancellationToken cancellationToken
    )
    {
        try
        {
            while (true)
            {
                data = data[await pending.ConfigureAwait(false)..];
                if (data.Length == 0)
                    return;
                pending = _socket.SendAsync(data, SocketFlags.None, cancellationToken);
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            Break(e);
            throw new IOException("send failed: " + e.Message, e);
        }
        catch (OperationCanceledException)
        {
            Break(null);
            throw;
        }
    }

    /// <summary>Under the send lock: what Kestrel advanced so far, in order; the segments go back to the pool.</summary>
    private async ValueTask SendWrittenAsync(CancellationToken cancellationToken)
    {
        while (TakeWritten() is { } segments)
        {
            try
            {
                foreach (var s in segments)
                    if (!_broken)
                        await SendAllAsync(s, cancellationToken).ConfigureAwait(false);
            }
            catch (IOException)
            {
                // The connection is aborted (Break); Kestrel learns it from the flush result.
            }
            finally
            {
                foreach (var s in segments)
                    ArrayPool<byte>.Shared.Return(s.Array!);
            }
        }
    }

    private bool HasWritten()
    {
        lock (_bufferLock)
            return _written.Count > 0 || _tailUsed > 0;
    }

    private List<ArraySegment<byte>>? TakeWritten()
    {
        lock (_bufferLock)
        {
            RetireTail();
            if (_written.Count == 0)
                return null;
            var taken = new List<ArraySegment<byte>>(_written);
            _written.Clear();
            return taken;
        }
    }

    /// <summary>Under the buffer lock: the tail's advanced bytes join the list to send; the tail is done with
    /// (memory handed out before a flush is not valid after it, by the PipeWriter contract).</summary>
    private void RetireTail()
    {
        if (_tail is null)
            return;
        if (_tailUsed > 0)
            _written.Add(new ArraySegment<byte>(_tail, 0, _tailUsed));
        else
            ArrayPool<byte>.Shared.Return(_tail);
        _tail = null;
        _tailUsed = 0;
    }

    private async Task DrainAsync()
    {
        await _sendLock.WaitAsync().ConfigureAwait(false);
        try
        {
            await SendWrittenAsync(CancellationToken.None).ConfigureAwait(false);
        }
        finally
        {
            _sendLock.Release();
        }
    }

    private void Break(Exception? e)
    {
        if (_broken)
            return;
        _broken = true;
        _connection.Abort(
            new ConnectionAbortedException("send to the socket failed", e ?? new OperationCanceledException())
        );
    }

    private sealed class Duplex(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input => input;

        public PipeWriter Output => output;
    }
}
