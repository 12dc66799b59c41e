using System.Net.WebSockets;
using BenchmarkDotNet.Attributes;
using Blankend.Orleans;
using Blankend.Orleans.Gateway.Fanout;
using Blankend.Orleans.Gateway.Telemetry;

namespace Blankend.Bench.Micro;

/// <summary>
/// <c>ViewerHub.Dispatch</c> of one frame to N viewers of its source, with queues nobody reads: after the first
/// frames every enqueue drops the oldest (and counts it), the path of a viewer that cannot keep up.
/// </summary>
[MemoryDiagnoser]
public class DispatchEnqueueBenchmarks
{
    private ViewerHub _hub = null!;
    private FrameEnvelope _frame = null!;
    private long _seq;

    [Params(1, 8, 100)]
    public int Viewers { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var counters = new GatewayCounters();
        _hub = new ViewerHub(counters);
        for (var i = 0; i < Viewers; i++)
        {
            // No send loop runs: the socket is never used.
            var socket = WebSocket.CreateFromStream(Stream.Null, new WebSocketCreationOptions { IsServer = true });
            _hub.Add(new Viewer(socket, "cam0", meta: false, queueSize: 8, counters));
        }
        _frame = new FrameEnvelope("cam0", 0, 1, FrameKind.Raw, 1_764_000_000_000, FrameOrigin.VideoIn, Media.Frame());
    }

    [Benchmark]
    public void Dispatch() => _hub.Dispatch(_frame with { Seq = ++_seq });
}

/// <summary>
/// One frame from <c>ViewerHub.Dispatch</c> until every one of N viewers has written it to its connection (an
/// in-memory stream that discards the bytes, wrapped as the endpoint wraps Kestrel's): framing once, batches on the
/// thread pool beyond <see cref="ViewerHub.BatchSize"/> viewers, the direct write of each idle viewer. Time per frame;
/// divide by N for per viewer.
/// </summary>
[MemoryDiagnoser]
public class DispatchAndSendBenchmarks
{
    private ViewerHub _hub = null!;
    private Viewer[] _viewers = [];
    private readonly CancellationTokenSource _stop = new();
    private FrameEnvelope _frame = null!;
    private long _seq;

    [Params(1, 8, 100)]
    public int Viewers { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var counters = new GatewayCounters();
        _hub = new ViewerHub(counters);
        _viewers = new Viewer[Viewers];
        for (var i = 0; i < Viewers; i++)
        {
            var socket = WebSocket.CreateFromStream(
                new DiscardStream(),
                new WebSocketCreationOptions { IsServer = true }
            );
            _viewers[i] = new Viewer(
                socket,
                "cam0",
                meta: false,
                queueSize: 8,
                counters,
                ViewerKind.Any,
                new WireStream(new DiscardStream())
            );
            _hub.Add(_viewers[i]);
            _viewers[i].Start(_stop.Token);
        }
        _frame = new FrameEnvelope("cam0", 0, 1, FrameKind.Raw, 1_764_000_000_000, FrameOrigin.VideoIn, Media.Frame());
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _stop.Cancel();
        Task.WaitAll([.. _viewers.Select(v => v.CompleteAsync())], TimeSpan.FromSeconds(5));
    }

    [Benchmark]
    public void DispatchAndSend()
    {
        var target = _seq + 1;
        _hub.Dispatch(_frame with { Seq = ++_seq });
        var spin = new SpinWait();
        foreach (var v in _viewers)
        {
            // Each frame is dispatched only after the previous one was sent everywhere: nothing is dropped, so
            // Sent == seq once this viewer has sent it.
            while (v.Sent < target)
            {
                spin.SpinOnce();
            }
        }
    }

    /// <summary>Write-only stream that drops the bytes; reads never complete (the send loop never reads).</summary>
    private sealed class DiscardStream : Stream
    {
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

        public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) { }

        public override void Write(ReadOnlySpan<byte> buffer) { }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            Task.CompletedTask;

        public override ValueTask WriteAsync(
            ReadOnlyMemory<byte> buffer,
            CancellationToken cancellationToken = default
        ) => ValueTask.CompletedTask;
    }
}
