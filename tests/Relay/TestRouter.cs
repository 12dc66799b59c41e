using System.Text;
using Blankend.Orleans.Tests.Support;
using NetMQ;
using NetMQ.Sockets;

namespace Blankend.Orleans.Tests.Relay;

/// <summary>A real ZeroMQ ROUTER (NetMQ) bound on a loopback port, standing in for the bus. It records every
/// message <c>[identity, client_id, data]</c> it receives, can echo data messages back as they came, and can send
/// its own. Its socket is used on its poller thread only.</summary>
public sealed class TestRouter : IDisposable
{
    public sealed record Received(string Identity, string ClientId, byte[] Data, long AtMs)
    {
        public string Text => Encoding.UTF8.GetString(Data);
        public int Tag => TestJpeg.ReadTag(Data);
    }

    private readonly RouterSocket _router;
    private readonly NetMQPoller _poller;
    private readonly NetMQQueue<byte[][]> _outbox = new();
    private readonly Lock _gate = new();
    private readonly List<Received> _received = [];

    private TestRouter(int port, bool read, int receiveHighWatermark)
    {
        Port = port;
        _router = new RouterSocket();
        _router.Options.Linger = TimeSpan.Zero;
        _router.Options.ReceiveHighWatermark = receiveHighWatermark;
        _router.Options.ReceiveBuffer = read ? 0 : 64 * 1024;
        _router.Bind(Endpoint);
        if (read)
            _router.ReceiveReady += OnReceive;
        _outbox.ReceiveReady += (_, _) =>
        {
            while (_outbox.TryDequeue(out var parts, TimeSpan.Zero))
                _router.TrySendMultipartBytes(TimeSpan.FromSeconds(1), parts);
        };
        _poller = new NetMQPoller { _router, _outbox };
        _poller.RunAsync("test-router", true);
    }

    /// <summary>Binds a ROUTER on <paramref name="port"/> (a fresh free port when 0).</summary>
    /// <param name="read">False: a ROUTER that never reads (its receive pipe, of <paramref
    /// name="receiveHighWatermark"/>
    /// messages, and then TCP fill up).</param>
    public static TestRouter Bind(int port = 0, bool read = true, int receiveHighWatermark = 1000) =>
        new(port == 0 ? TestEnv.FreePort() : port, read, receiveHighWatermark);

    public int Port { get; }

    public string Endpoint => $"tcp://127.0.0.1:{Port}";

    /// <summary>Send every data message (not the reserved control ids) straight back: <c>[identity, client_id,
    /// data]</c>.</summary>
    public bool Echo { get; set; }

    public IReadOnlyList<Received> All
    {
        get
        {
            lock (_gate)
                return [.. _received];
        }
    }

    public IReadOnlyList<Received> For(string clientId)
    {
        lock (_gate)
            return _received.Where(r => r.ClientId == clientId).ToList();
    }

    /// <summary>Sends <c>[identity, clientId, data]</c>: the DEALER of that identity receives <c>[clientId,
    /// data]</c>.</summary>
    public void Send(string identity, string clientId, byte[] data) =>
        _outbox.Enqueue([Encoding.UTF8.GetBytes(identity), Encoding.UTF8.GetBytes(clientId), data]);

    /// <summary>Waits for a first message (e.g. a heartbeat) from the DEALER of <paramref name="identity"/>: from then
    /// on this ROUTER knows the peer and can route to it. "connected" on the service's side is the TCP connection;
    /// the ZMTP handshake may still be under way, and a ROUTER drops what it cannot route yet.</summary>
    public Task WaitPeerAsync(string identity, TimeSpan timeout) =>
        WaitForAsync(
            r => r.Any(m => m.Identity == identity),
            timeout,
            $"a first message from '{identity}' (the ROUTER knows the peer)"
        );

    public async Task<IReadOnlyList<Received>> WaitForAsync(
        Func<IReadOnlyList<Received>, bool> condition,
        TimeSpan timeout,
        string what
    )
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var all = All;
            if (condition(all))
                return all;
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException(
                    $"ROUTER: {what} not seen within {timeout.TotalSeconds} s; got {all.Count} message(s): "
                        + string.Join(", ", all.Take(20).Select(r => $"[{r.Identity},{r.ClientId},{r.Data.Length}B]"))
                );
            await Task.Delay(20);
        }
    }

    private void OnReceive(object? sender, NetMQSocketEventArgs e)
    {
        var parts = new List<byte[]>(3);
        while (_router.TryReceiveMultipartBytes(TimeSpan.Zero, ref parts!, 3))
        {
            if (parts.Count != 3)
                continue;
            var r = new Received(
                Encoding.UTF8.GetString(parts[0]),
                Encoding.UTF8.GetString(parts[1]),
                parts[2],
                Environment.TickCount64
            );
            lock (_gate)
                _received.Add(r);
            if (Echo && !r.ClientId.StartsWith("__", StringComparison.Ordinal))
                _router.TrySendMultipartBytes(TimeSpan.FromSeconds(1), [.. parts]);
            parts = new List<byte[]>(3);
        }
    }

    public void Dispose()
    {
        _poller.Stop();
        _poller.Dispose();
        _router.Dispose();
        _outbox.Dispose();
    }
}
