using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using Xunit;

namespace Blankend.Orleans.Tests.Support;

/// <summary>
/// A throw-away redis-server on a free loopback port (no persistence), killed on dispose. The cluster tests
/// use it as the membership store. scripts/test.sh installs redis-server (scripts/install-deps.sh --test).
/// </summary>
public sealed class RedisServer : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private RedisServer(Process process, int port)
    {
        _process = process;
        Port = port;
    }

    public int Port { get; }

    /// <summary>StackExchange.Redis connection string (the value of cluster:redis).</summary>
    public string ConnectionString => $"127.0.0.1:{Port}";

    public static string? Executable { get; } = Find();

    private static string? Find()
    {
        var path = Environment.GetEnvironmentVariable("PATH") ?? "";
        foreach (
            var dir in path.Split(':', StringSplitOptions.RemoveEmptyEntries)
                .Append("/usr/bin")
                .Append("/usr/local/bin")
                .Append("/usr/sbin")
        )
        {
            var candidate = Path.Combine(dir, "redis-server");
            if (File.Exists(candidate))
                return candidate;
        }
        return null;
    }

    public static async Task<RedisServer> StartAsync()
    {
        var exe = Executable ?? throw new InvalidOperationException("redis-server is not installed");
        var port = TestEnv.FreePort();
        var psi = new ProcessStartInfo(exe)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (
            var a in new[]
            {
                "--port",
                port.ToString(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            }
        )
            psi.ArgumentList.Add(a);
        var process = Process.Start(psi) ?? throw new InvalidOperationException("could not start redis-server");
        var server = new RedisServer(process, port);
        if (await ServerProcess.WatchUntilReadyAsync(process, server._output, server.PingAsync, 10_000, 50))
            return server;
        string output;
        lock (server._output)
            output = server._output.ToString();
        await server.DisposeAsync();
        throw new InvalidOperationException($"redis-server did not answer on port {port}:\n{output}");
    }

    /// <summary>A raw RESP PING (no client library needed in the tests).</summary>
    public async Task<bool> PingAsync()
    {
        try
        {
            using var tcp = new TcpClient();
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(1));
            await tcp.ConnectAsync("127.0.0.1", Port, cts.Token);
            var stream = tcp.GetStream();
            await stream.WriteAsync("PING\r\n"u8.ToArray(), cts.Token);
            var buffer = new byte[16];
            var n = await stream.ReadAsync(buffer, cts.Token);
            return Encoding.ASCII.GetString(buffer, 0, n).StartsWith("+PONG", StringComparison.Ordinal);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or IOException)
        {
            return false;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
            _process.Kill();
        await _process.WaitForExitAsync();
        _process.Dispose();
    }
}

/// <summary>A fact that needs redis-server: skipped, saying why, only when redis-server is not installed.</summary>
public sealed class RedisFactAttribute : FactAttribute
{
    public RedisFactAttribute()
    {
        if (RedisServer.Executable is null)
            Skip =
                "redis-server is not installed (scripts/install-deps.sh --test installs it; scripts/test.sh runs that)";
    }
}
