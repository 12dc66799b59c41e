using System.Buffers.Binary;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using Blankend.Orleans.Gateway.Fanout;
using Blankend.Orleans.Gateway.Telemetry;
using Blankend.Orleans.Tests.Support;
using Xunit;

namespace Blankend.Orleans.Tests.Gateway;

/// <summary>
/// The viewer send path (<see cref="WireFrame"/>, <see cref="WireStream"/>, <see cref="Viewer"/>, the hub's batches)
/// over in-memory connections whose writes the test completes when it wants: pre-framed bytes identical to what
/// the WebSocket wrote before, writes that stay pending, a viewer that stops reading, a close during a write, the
/// meta/binary order under drops, and every pooled buffer back in its pool.
/// </summary>
[Trait(TestKind.Name, TestKind.Unit)]
public sealed class ViewerSendPathTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);
    private readonly GatewayCounters _counters = new();

    private static FrameEnvelope Frame(string source, long seq, int bytes = 2_000) =>
        new(
            source,
            seq,
            1,
            FrameKind.Raw,
            1_764_000_000_000 + seq,
            FrameOrigin.VideoIn,
            TestJpeg.Tagged((int)seq, bytes)
        );

    /// <summary>What the pre-change path wrote: <c>WebSocket.SendAsync</c> of the meta text, then of the
    /// payload.</summary>
    private static async Task<byte[]> ManagedWebSocketBytesAsync(byte[]? meta, byte[] payload)
    {
        using var ms = new MemoryStream();
        using (
            var ws = WebSocket.CreateFromStream(
                ms,
                new WebSocketCreationOptions { IsServer = true, KeepAliveInterval = Timeout.InfiniteTimeSpan }
            )
        )
        {
            if (meta is not null)
                await ws.SendAsync(meta, WebSocketMessageType.Text, true, default);
            await ws.SendAsync(payload, WebSocketMessageType.Binary, true, default);
        }
        return ms.ToArray();
    }

    [Theory]
    [InlineData(0)]
    [InlineData(125)]
    [InlineData(126)]
    [InlineData(65_535)]
    [InlineData(65_536)]
    [InlineData(124_000)]
    [InlineData(3_000_000)]
    public async Task FramedBytesAreWhatTheWebSocketWroteBefore(int payloadBytes)
    {
        var pool = new WireFramePool();
        var payload = new byte[payloadBytes];
        Random.Shared.NextBytes(payload);
        var envelope = new FrameEnvelope("cam", 5, 1, FrameKind.Raw, 1_764_000_000_000, FrameOrigin.VideoIn, payload);
        var wire = WireFrame.Create(envelope, 1, pool);

        var meta = OutFrame.BuildMeta(envelope);
        Assert.Equal(await ManagedWebSocketBytesAsync(meta, payload), wire.Bytes(meta: true).ToArray());
        Assert.Equal(await ManagedWebSocketBytesAsync(null, payload), wire.Bytes(meta: false).ToArray());
        Assert.Equal(meta, wire.MetaJson.ToArray());

        Assert.Equal(1, pool.Rented);
        wire.Release();
        Assert.Equal(0, pool.Rented);
    }

    [Fact]
    public async Task PendingWritesQueueDropTheOldestAndDrainInOrderWhenTheyComplete()
    {
        var hub = new ViewerHub(_counters);
        var conn = new TestConnection();
        var viewer = new Viewer(
            NewSocket(conn),
            "cam",
            meta: false,
            queueSize: 4,
            _counters,
            ViewerKind.Any,
            new WireStream(conn)
        );
        hub.Add(viewer);
        viewer.Start(default);
        conn.HoldWrites = true;

        for (var seq = 1; seq <= 20; seq++)
            hub.Dispatch(Frame("cam", seq));
        // Frame 1 is being written (half of it has reached the connection: a partial write); 2-16 were dropped
        // (oldest first), 17-20 wait.
        Assert.True(viewer.Writing);
        Assert.Equal(4, viewer.Queued);
        Assert.Equal(15, viewer.Dropped);
        Assert.Equal(0, viewer.Sent);

        conn.HoldWrites = false;
        conn.CompletePending();
        await WaitUntilAsync(() => viewer.Sent == 5 && !viewer.Writing);

        var messages = ParseServerFrames(conn.Written);
        Assert.Equal(new[] { 1, 17, 18, 19, 20 }, messages.Select(m => TestJpeg.ReadTag(m.Payload)));
        Assert.All(messages, m => Assert.Equal(0x2, m.Opcode));
        Assert.Equal(0, hub.Buffers.Rented);
    }

    [Fact]
    public async Task AViewerThatStopsReadingMidFrameHoldsUpNobodyAndCountsItsDrops()
    {
        var hub = new ViewerHub(_counters);
        var stalledConn = new TestConnection { HoldWrites = true };
        var stalled = new Viewer(
            NewSocket(stalledConn),
            "cam",
            meta: true,
            queueSize: 8,
            _counters,
            ViewerKind.Any,
            new WireStream(stalledConn)
        );
        // Enough readers that the hub hands some of them to the thread pool in batches.
        var readers = Enumerable.Range(0, ViewerHub.BatchSize * 2 + 3).Select(_ => new TestConnection()).ToArray();
        var readerViewers = readers
            .Select(c => new Viewer(
                NewSocket(c),
                "cam",
                meta: true,
                queueSize: 8,
                _counters,
                ViewerKind.Any,
                new WireStream(c)
            ))
            .ToArray();
        hub.Add(stalled);
        foreach (var v in readerViewers)
            hub.Add(v);
        stalled.Start(default);
        foreach (var v in readerViewers)
            v.Start(default);

        const int n = 100;
        for (var seq = 1; seq <= n; seq++)
            hub.Dispatch(Frame("cam", seq, 20_000)); // returns: never waits for the stalled one
        await WaitUntilAsync(() => readerViewers.All(v => v.Sent + v.Dropped == n && !v.Writing));

        Assert.All(readerViewers, v => Assert.Equal(n, v.Sent + v.Dropped));
        foreach (var c in readers)
        {
            var frames = ParseServerFrames(c.Written);
            AssertMetaBeforeEachFrameInOrder(frames);
            Assert.Equal(n, TestJpeg.ReadTag(frames[^1].Payload)); // the newest always arrives
        }
        Assert.Equal(0, stalled.Sent);
        Assert.True(stalled.Writing);
        Assert.Equal(8, stalled.Queued);
        Assert.Equal(n - 1 - 8, stalled.Dropped);
        var first = WireFrame.Create(Frame("cam", 1, 20_000), 1, new WireFramePool());
        // half of frame 1 (meta and JPEG), then it stopped
        Assert.Equal(first.Bytes(meta: true).Length / 2, stalledConn.Written.Length);

        // It leaves: its write is cancelled, its socket aborted, and every buffer goes back to the pool.
        hub.Remove(stalled);
        var idle = stalled.CompleteAsync();
        Assert.False(idle.IsCompleted);
        stalledConn.FailPending(new OperationCanceledException());
        await idle.WaitAsync(Wait);
        Assert.Equal(WebSocketState.Aborted, stalled.Socket.State);
        await WaitUntilAsync(() => hub.Buffers.Rented == 0);
        Assert.Equal(0, stalled.Queued);
    }

    [Fact]
    public async Task ACancelledWriteAbortsTheViewerAndReturnsItsBuffers()
    {
        var hub = new ViewerHub(_counters);
        var conn = new TestConnection { HoldWrites = true, HonourCancellation = true };
        var viewer = new Viewer(
            NewSocket(conn),
            "cam",
            meta: false,
            queueSize: 4,
            _counters,
            ViewerKind.Any,
            new WireStream(conn)
        );
        hub.Add(viewer);
        using var writes = new CancellationTokenSource();
        viewer.Start(writes.Token);
        for (var seq = 1; seq <= 6; seq++)
            hub.Dispatch(Frame("cam", seq));
        Assert.True(hub.Buffers.Rented > 0);

        hub.Remove(viewer);
        var idle = viewer.CompleteAsync();
        await writes.CancelAsync();
        await idle.WaitAsync(Wait);
        Assert.Equal(WebSocketState.Aborted, viewer.Socket.State);
        Assert.Equal(0, hub.Buffers.Rented);
        hub.Dispatch(Frame("cam", 7)); // gone: nothing more reaches it
        Assert.Equal(0, hub.Buffers.Rented);
    }

    [Fact]
    public async Task ACloseDuringASendFollowsTheWholeFrame()
    {
        var hub = new ViewerHub(_counters);
        var conn = new TestConnection { HoldWrites = true };
        var stream = new WireStream(conn);
        var socket = WebSocket.CreateFromStream(
            stream,
            new WebSocketCreationOptions { IsServer = true, KeepAliveInterval = Timeout.InfiniteTimeSpan }
        );
        var viewer = new Viewer(socket, "cam", meta: true, queueSize: 4, _counters, ViewerKind.Any, stream);
        hub.Add(viewer);
        viewer.Start(default);
        hub.Dispatch(Frame("cam", 1, 50_000)); // half of it is on the connection, the rest pending

        // The endpoint's close (what it does when the peer closes or the service stops) while the frame is written.
        hub.Remove(viewer);
        var idle = viewer.CompleteAsync();
        var close = socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "bye", default);
        await Task.Delay(100);
        Assert.False(close.IsCompleted); // waits for the frame: a close frame never lands inside a data frame
        conn.HoldWrites = false;
        conn.CompletePending();
        await idle.WaitAsync(Wait);
        await close.WaitAsync(Wait);

        var frames = ParseServerFrames(conn.Written);
        Assert.Equal(new[] { 0x1, 0x2, 0x8 }, frames.Select(f => f.Opcode));
        Assert.Equal(1, TestJpeg.ReadTag(frames[1].Payload));
        Assert.Equal(
            (ushort)WebSocketCloseStatus.NormalClosure,
            BinaryPrimitives.ReadUInt16BigEndian(frames[2].Payload)
        );
        Assert.Equal("bye", Encoding.UTF8.GetString(frames[2].Payload.AsSpan(2)));
        Assert.Equal(0, hub.Buffers.Rented);
    }

    [Fact]
    public async Task MetaAlwaysPrecedesItsFrameUnderDrops()
    {
        var hub = new ViewerHub(_counters);
        var conn = new TestConnection();
        var viewer = new Viewer(
            NewSocket(conn),
            "cam",
            meta: true,
            queueSize: 2,
            _counters,
            ViewerKind.Any,
            new WireStream(conn)
        );
        hub.Add(viewer);
        viewer.Start(default);
        var random = new Random(7);
        const int n = 300;
        for (var seq = 1; seq <= n; seq++)
        {
            conn.HoldWrites = random.Next(3) == 0;
            hub.Dispatch(Frame("cam", seq, random.Next(100, 70_000)));
            if (random.Next(4) == 0)
            {
                conn.HoldWrites = false;
                conn.CompletePending();
            }
        }
        conn.HoldWrites = false;
        conn.CompletePending();
        await WaitUntilAsync(() => viewer.Sent + viewer.Dropped == n && !viewer.Writing);

        var frames = ParseServerFrames(conn.Written);
        Assert.Equal(viewer.Sent * 2, frames.Count);
        Assert.True(viewer.Dropped > 0, "the test should have made the queue drop");
        AssertMetaBeforeEachFrameInOrder(frames);
        Assert.Equal(n, TestJpeg.ReadTag(frames[^1].Payload));
        Assert.Equal(0, hub.Buffers.Rented);
    }

    [Fact]
    public void AViewerOfAllSourcesKeepsEachSourceInOrderAcrossBatches()
    {
        var hub = new ViewerHub(_counters);
        var conn = new TestConnection();
        var viewer = new Viewer(
            NewSocket(conn),
            source: null,
            meta: false,
            queueSize: 64,
            _counters,
            ViewerKind.Any,
            new WireStream(conn)
        );
        hub.Add(viewer);
        // Frames of two sources; offering an older frame of a source after a newer one is refused (counted).
        var a2 = WireFrame.Create(Frame("a", 2), 10, hub.Buffers);
        var a1 = WireFrame.Create(Frame("a", 1), 9, hub.Buffers);
        var b1 = WireFrame.Create(Frame("b", 1), 8, hub.Buffers);
        viewer.Offer(a2);
        viewer.Offer(a1);
        viewer.Offer(b1);
        Assert.Equal(2, viewer.Queued);
        Assert.Equal(1, viewer.Dropped);
        foreach (var f in new[] { a2, a1, b1 })
            f.Release();
        viewer.Start(default);
        Assert.Equal(
            new[] { "a", "b" },
            ParseServerFrames(conn.Written)
                .Select(f =>
                    TestJpeg.ReadTag(f.Payload) switch
                    {
                        2 => "a",
                        _ => "b",
                    }
                )
        );
        Assert.Equal(0, hub.Buffers.Rented);
    }

    // ---- helpers ------------------------------------------------------------------------------------

    private static WebSocket NewSocket(Stream s) =>
        WebSocket.CreateFromStream(
            s,
            new WebSocketCreationOptions { IsServer = true, KeepAliveInterval = Timeout.InfiniteTimeSpan }
        );

    private static void AssertMetaBeforeEachFrameInOrder(List<ServerFrame> frames)
    {
        Assert.True(frames.Count % 2 == 0, "meta and frame come in pairs");
        long lastSeq = 0;
        for (var i = 0; i < frames.Count; i += 2)
        {
            Assert.Equal(0x1, frames[i].Opcode);
            Assert.Equal(0x2, frames[i + 1].Opcode);
            var meta = JsonDocument.Parse(frames[i].Payload).RootElement;
            var seq = meta.GetProperty("seq").GetInt64();
            Assert.Equal(seq, TestJpeg.ReadTag(frames[i + 1].Payload)); // this meta describes the frame after it
            Assert.Equal(frames[i + 1].Payload.Length, meta.GetProperty("bytes").GetInt32());
            Assert.True(seq > lastSeq, $"seq {seq} after {lastSeq}");
            lastSeq = seq;
        }
    }

    internal sealed record ServerFrame(int Opcode, byte[] Payload);

    /// <summary>Parses what a server wrote: each frame final, unmasked, without RSV bits, lengths in their shortest
    /// form; the bytes must end on a frame boundary.</summary>
    internal static List<ServerFrame> ParseServerFrames(ReadOnlySpan<byte> bytes)
    {
        var frames = new List<ServerFrame>();
        var i = 0;
        while (i < bytes.Length)
        {
            Assert.True(bytes.Length - i >= 2, "truncated header");
            var b0 = bytes[i];
            var b1 = bytes[i + 1];
            Assert.True((b0 & 0x80) != 0, "FIN set");
            Assert.Equal(0, b0 & 0x70);
            Assert.Equal(0, b1 & 0x80); // servers do not mask
            long length = b1 & 0x7F;
            var header = 2;
            if (length == 126)
            {
                length = BinaryPrimitives.ReadUInt16BigEndian(bytes[(i + 2)..]);
                Assert.True(length >= 126, "shortest length form");
                header = 4;
            }
            else if (length == 127)
            {
                length = (long)BinaryPrimitives.ReadUInt64BigEndian(bytes[(i + 2)..]);
                Assert.True(length > ushort.MaxValue, "shortest length form");
                header = 10;
            }
            Assert.True(bytes.Length - i - header >= length, "truncated payload");
            frames.Add(new ServerFrame(b0 & 0x0F, bytes.Slice(i + header, (int)length).ToArray()));
            i += header + (int)length;
        }
        return frames;
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + Wait;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException("condition not met in time");
            await Task.Delay(5);
        }
    }

    /// <summary>
    /// An in-memory connection. While <see cref="HoldWrites"/> is set, a write puts the first half of its bytes on
    /// the connection at once and stays pending (a partial write, as a socket whose peer stopped reading) until
    /// <see cref="CompletePending"/> or <see cref="FailPending"/>. Reads never complete.
    /// </summary>
    private sealed class TestConnection : Stream
    {
        private readonly Lock _lock = new();
        private readonly MemoryStream _written = new();
        private readonly List<(ReadOnlyMemory<byte> Remainder, TaskCompletionSource Done)> _pending = [];

        public bool HoldWrites { get; set; }

        public bool HonourCancellation { get; set; }

        public byte[] Written
        {
            get
            {
                lock (_lock)
                    return _written.ToArray();
            }
        }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            lock (_lock)
            {
                if (!HoldWrites && _pending.Count == 0)
                {
                    _written.Write(buffer.Span);
                    return ValueTask.CompletedTask;
                }
                var half = buffer.Length / 2;
                _written.Write(buffer.Span[..half]);
                // The rest is copied now: the caller may reuse its buffer once the write completes, not before, but
                // the copy keeps the test's bytes independent of the pool.
                var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                _pending.Add((buffer[half..].ToArray(), done));
                if (HonourCancellation)
                    cancellationToken.Register(() => done.TrySetCanceled(cancellationToken));
                return new ValueTask(done.Task);
            }
        }

        public void CompletePending()
        {
            List<TaskCompletionSource> done;
            lock (_lock)
            {
                foreach (var (rest, _) in _pending)
                    _written.Write(rest.Span);
                done = [.. _pending.Select(p => p.Done)];
                _pending.Clear();
            }
            foreach (var d in done)
                d.TrySetResult();
        }

        public void FailPending(Exception e)
        {
            List<TaskCompletionSource> done;
            lock (_lock)
            {
                done = [.. _pending.Select(p => p.Done)];
                _pending.Clear();
            }
            foreach (var d in done)
                d.TrySetException(e);
        }

        public override async ValueTask<int> ReadAsync(
            Memory<byte> buffer,
            CancellationToken cancellationToken = default
        )
        {
            await Task.Delay(Timeout.Infinite, cancellationToken);
            return 0;
        }

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }

        public override void Flush() { }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) =>
            WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();
    }
}
