using System.Net;
using System.Net.Sockets;
using System.Text;
using Blankend.Orleans.Gateway.Fanout;
using Blankend.Orleans.Tests.Support;
using Microsoft.AspNetCore.Connections;
using Xunit;

namespace Blankend.Orleans.Tests.Gateway;

/// <summary>
/// <see cref="SocketOutput"/>, the connection output that sends straight to the socket, over a real loopback TCP
/// pair: Kestrel's buffered bytes and direct sends leave in the order they were written, a send larger than what
/// the socket takes at once stays pending and arrives whole once the peer reads, and a cancelled or failed send
/// aborts the connection instead of leaving half a message for the next one.
/// </summary>
[Trait(TestKind.Name, TestKind.Unit)]
public sealed class SocketOutputTests : IAsyncLifetime, IDisposable
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);
    private TcpListener _listener = null!;
    private Socket _server = null!;
    private Socket _peer = null!;
    private DefaultConnectionContext _connection = null!;

    public async Task InitializeAsync()
    {
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        _peer = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp)
        {
            // Small buffers both ways: a few hundred KB fill them, so a send can be made to wait for the peer.
            ReceiveBufferSize = 16 * 1024,
        };
        var accept = _listener.AcceptSocketAsync();
        await _peer.ConnectAsync((IPEndPoint)_listener.LocalEndpoint);
        _server = await accept;
        _server.SendBufferSize = 16 * 1024;
        _server.NoDelay = true;
        _connection = new DefaultConnectionContext("test");
    }

    public Task DisposeAsync() => Task.CompletedTask;

    public void Dispose()
    {
        _server.Dispose();
        _peer.Dispose();
        _listener.Stop();
        _listener.Dispose();
        _connection.DisposeAsync().AsTask().GetAwaiter().GetResult();
    }

    private SocketOutput NewOutput() => new(_server, _connection);

    private async Task<byte[]> ReadAsync(int count)
    {
        var got = new byte[count];
        var at = 0;
        using var cts = new CancellationTokenSource(Wait);
        while (at < count)
        {
            var n = await _peer.ReceiveAsync(got.AsMemory(at), SocketFlags.None, cts.Token);
            Assert.True(n > 0, $"the connection closed after {at} of {count} bytes");
            at += n;
        }
        return got;
    }

    private static byte[] Pattern(int length, int seed)
    {
        var b = new byte[length];
        new Random(seed).NextBytes(b);
        return b;
    }

    [Fact]
    public async Task BytesKestrelWroteButDidNotFlushLeaveBeforeADirectSend()
    {
        var output = NewOutput();
        var head = Encoding.ASCII.GetBytes("HTTP/1.1 101 Switching Protocols\r\n\r\n");
        head.CopyTo(output.GetSpan(head.Length));
        output.Advance(head.Length);
        var frame = Pattern(50_000, 1);

        await output.SendAsync(frame, CancellationToken.None).AsTask().WaitAsync(Wait);

        var got = await ReadAsync(head.Length + frame.Length);
        Assert.Equal(head, got[..head.Length]);
        Assert.Equal(frame, got[head.Length..]);
        Assert.Equal(0, output.UnflushedBytes);
    }

    [Fact]
    public async Task FlushedWritesAndDirectSendsArriveInTheOrderTheyWereMade()
    {
        var output = NewOutput();
        var expected = new List<byte>();
        var total = Enumerable.Range(0, 20).Sum(i => $"control {i};".Length + 10_000 + i * 997);
        var read = ReadAsync(total); // the peer reads all along: the socket buffers are small
        for (var i = 0; i < 20; i++)
        {
            var small = Encoding.ASCII.GetBytes($"control {i};");
            await output.WriteAsync(small); // Kestrel's way: copied into the output, then flushed
            expected.AddRange(small);
            var big = Pattern(10_000 + i * 997, i);
            await output.SendAsync(big, CancellationToken.None);
            expected.AddRange(big);
        }
        Assert.Equal(expected.ToArray(), await read);
    }

    [Fact]
    public async Task ASendTheSocketCannotTakeAtOnceWaitsForThePeerAndArrivesWhole()
    {
        var output = NewOutput();
        var data = Pattern(4 * 1024 * 1024, 7);

        var send = output.SendAsync(data, CancellationToken.None).AsTask();
        await Task.Delay(200);
        Assert.False(send.IsCompleted, "4 MiB went out with nobody reading: the socket buffers are not small");
        // A flush queued behind it waits its turn: its bytes follow the whole of the pending send.
        var tail = Encoding.ASCII.GetBytes("after");
        tail.CopyTo(output.GetSpan(tail.Length));
        output.Advance(tail.Length);
        var flush = output.FlushAsync().AsTask();

        var got = await ReadAsync(data.Length + tail.Length);
        await send.WaitAsync(Wait);
        var result = await flush.WaitAsync(Wait);
        Assert.False(result.IsCanceled || result.IsCompleted);
        Assert.Equal(data, got[..data.Length]);
        Assert.Equal(tail, got[data.Length..]);
        Assert.False(_connection.ConnectionClosed.IsCancellationRequested);
    }

    [Fact]
    public async Task CancellingAPendingSendAbortsTheConnectionAndRefusesLaterSends()
    {
        var output = NewOutput();
        using var cancel = new CancellationTokenSource();
        var send = output.SendAsync(Pattern(4 * 1024 * 1024, 3), cancel.Token).AsTask();
        await Task.Delay(100);
        Assert.False(send.IsCompleted);

        await cancel.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => send.WaitAsync(Wait));
        await WaitClosedAsync();
        await Assert.ThrowsAsync<IOException>(() => output.SendAsync(new byte[10], CancellationToken.None).AsTask());
    }

    [Fact]
    public async Task CancelPendingFlushEndsAFlushStuckOnAPeerThatDoesNotRead()
    {
        var output = NewOutput();
        var data = Pattern(4 * 1024 * 1024, 5);
        data.CopyTo(output.GetSpan(data.Length));
        output.Advance(data.Length);
        var flush = output.FlushAsync().AsTask();
        await Task.Delay(100);
        Assert.False(flush.IsCompleted);

        output.CancelPendingFlush();

        var result = await flush.WaitAsync(Wait);
        Assert.True(result.IsCanceled);
        await WaitClosedAsync();
    }

    [Fact]
    public async Task ASendToAPeerThatResetTheConnectionFailsWithIOExceptionAndAbortsIt()
    {
        var output = NewOutput();
        _peer.LingerState = new LingerOption(true, 0); // close with RST
        _peer.Close();
        var failed = await Assert.ThrowsAsync<IOException>(async () =>
        {
            // The first sends may still be taken by the kernel before the reset is seen.
            for (var i = 0; i < 100; i++)
            {
                await output.SendAsync(Pattern(64 * 1024, i), CancellationToken.None);
                await Task.Delay(10);
            }
        });
        Assert.Contains("send failed", failed.Message, StringComparison.Ordinal);
        await WaitClosedAsync();
        var flushed = await output.WriteAsync(new byte[] { 1, 2, 3 });
        Assert.True(flushed.IsCompleted, "a flush after the failure reports the connection as completed");
    }

    private async Task WaitClosedAsync()
    {
        var closed = new TaskCompletionSource();
        using var reg = _connection.ConnectionClosed.Register(closed.SetResult);
        await closed.Task.WaitAsync(Wait);
    }
}
