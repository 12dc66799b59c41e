using Microsoft.AspNetCore.Http.Features;

namespace Blankend.Orleans.Gateway.Fanout;

/// <summary>
/// The upgraded connection of a <c>/video_out</c> viewer, shared by two writers: the WebSocket created over it
/// (the handshake, pings, pongs and the close frame stay its job) and the viewer, which writes pre-framed
/// frames (<see cref="WireFrame"/>) straight to the connection. Every write holds one lock for its whole length,
/// so a control frame never lands inside a data frame; the WebSocket writes each frame in one call, which is what
/// makes the lock at this level enough. On a plain-TCP connection that lock is <see cref="SocketOutput"/>'s send
/// lock (each write is one send there); otherwise this stream's own, around Kestrel's upgraded stream. Reads pass
/// through.
/// </summary>
internal sealed class WireStream(Stream inner, SocketOutput? direct = null) : Stream
{
    /// <summary>Writes go straight to the socket (<see cref="SocketOutput"/>: a plain-TCP connection), not through
    /// Kestrel's upgraded stream.</summary>
    public bool Direct => direct is not null;

    private readonly SemaphoreSlim _writeLock = new(1, 1);

    public override bool CanRead => inner.CanRead;

    public override bool CanSeek => false;

    public override bool CanWrite => inner.CanWrite;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    /// <summary>Writes under the lock; completes synchronously when the lock is free and the write does (the
    /// socket takes it at once, or Kestrel's output buffer is below its limit): no allocation on that path.</summary>
    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (direct is not null)
            return direct.SendAsync(buffer, cancellationToken);
        if (!_writeLock.Wait(0, CancellationToken.None))
            return LockedWriteAsync(buffer, cancellationToken);
        ValueTask write;
        try
        {
            write = inner.WriteAsync(buffer, cancellationToken);
        }
        catch
        {
            _writeLock.Release();
            throw;
        }
        if (write.IsCompletedSuccessfully)
        {
            write.GetAwaiter().GetResult();
            _writeLock.Release();
            return ValueTask.CompletedTask;
        }
        return ReleaseAfterAsync(write);
    }

    private async ValueTask LockedWriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken)
    {
        await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await inner.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private async ValueTask ReleaseAfterAsync(ValueTask write)
    {
        try
        {
            await write.ConfigureAwait(false);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count) =>
        WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        inner.ReadAsync(buffer, cancellationToken);

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        inner.ReadAsync(buffer, offset, count, cancellationToken);

    public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);

    public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

    public override void Flush() => inner.Flush();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        // The lock is not disposed: a write may still release it (it never allocates a wait handle).
        if (disposing)
            inner.Dispose();
        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        await inner.DisposeAsync().ConfigureAwait(false);
        await base.DisposeAsync().ConfigureAwait(false);
    }
}

/// <summary>
/// Wraps the request's <see cref="IHttpUpgradeFeature"/> so that the WebSocket the endpoint accepts runs over a
/// <see cref="WireStream"/> the endpoint can write to as well. Installed for <c>/video_out</c> ahead of the
/// WebSocket middleware (which captures the feature when the request arrives); the handshake itself is the
/// middleware's, unchanged. A request that is upgraded another way (HTTP/2 extended CONNECT) has no
/// <see cref="Stream"/> here, and its viewer sends through the WebSocket as before.
/// </summary>
internal sealed class WireUpgradeFeature(IHttpUpgradeFeature inner, SocketOutput? direct) : IHttpUpgradeFeature
{
    public bool IsUpgradableRequest => inner.IsUpgradableRequest;

    /// <summary>The upgraded connection, once <see cref="UpgradeAsync"/> ran.</summary>
    public WireStream? Stream { get; private set; }

    public async Task<Stream> UpgradeAsync()
    {
        var stream = new WireStream(await inner.UpgradeAsync().ConfigureAwait(false), direct);
        Stream = stream;
        return stream;
    }

    /// <summary>Middleware: wraps the feature on <c>/video_out</c> upgrade requests.</summary>
    public static Task WrapAsync(HttpContext context, Func<Task> next)
    {
        if (
            context.Request.Path.StartsWithSegments("/video_out", StringComparison.Ordinal)
            && context.Features.Get<IHttpUpgradeFeature>() is { IsUpgradableRequest: true } upgrade
        )
        {
            // Over TLS the bytes must go through the TLS stream, so only a plain connection writes to the socket.
            var direct = context.Request.IsHttps ? null : context.Features.Get<SocketOutput>();
            context.Features.Set<IHttpUpgradeFeature>(new WireUpgradeFeature(upgrade, direct));
        }
        return next();
    }
}
