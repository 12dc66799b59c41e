using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using Xunit;

namespace Blankend.Orleans.Tests.Support;

/// <summary>
/// A throw-away PostgreSQL server: <c>initdb</c> into a temporary directory, <c>postgres</c> on a free loopback port
/// (trust authentication on 127.0.0.1 only, no fsync), stopped and deleted on dispose. PostgreSQL refuses to run as
/// root, so when the tests run as root both run as the <c>postgres</c> OS user (<c>runuser -u postgres</c>), which
/// owns the data directory. scripts/install-deps.sh --test installs Debian's postgresql.
/// </summary>
public sealed class PostgresServer : IAsyncDisposable
{
    private readonly Process _process;
    private readonly string _root;
    private readonly StringBuilder _output = new();

    private PostgresServer(Process process, string root, int port)
    {
        _process = process;
        _root = root;
        Port = port;
    }

    public int Port { get; }

    public const string Database = "postgres";

    /// <summary>Npgsql connection string (the value of cluster:postgres).</summary>
    public string ConnectionString =>
        $"Host=127.0.0.1;Port={Port};Database={Database};Username=postgres;Pooling=true;Timeout=5";

    /// <summary>The folder holding initdb and postgres, or null when PostgreSQL is not installed.</summary>
    public static string? BinDir { get; } = Find();

    private static bool IsRoot => Environment.UserName == "root";

    private static string? Find()
    {
        var candidates = new List<string>();
        if (Directory.Exists("/usr/lib/postgresql"))
        {
            // Newest major version first.
            candidates.AddRange(
                Directory
                    .GetDirectories("/usr/lib/postgresql")
                    .OrderByDescending(d => int.TryParse(Path.GetFileName(d), out var v) ? v : 0)
                    .Select(d => Path.Combine(d, "bin"))
            );
        }
        candidates.AddRange(
            (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
        );
        foreach (var dir in candidates)
        {
            if (File.Exists(Path.Combine(dir, "initdb")) && File.Exists(Path.Combine(dir, "postgres")))
                return dir;
        }
        return null;
    }

    /// <summary>Why PostgreSQL tests cannot run here, or null when they can.</summary>
    public static string? Unavailable { get; } =
        BinDir is null
            ? "PostgreSQL is not installed (initdb/postgres not found; scripts/install-deps.sh --test installs Debian's postgresql)"
        : IsRoot && !UserExists("postgres")
            ? "running as root and there is no 'postgres' OS user to run PostgreSQL as (install Debian's postgresql package)"
        : null;

    private static bool UserExists(string name) =>
        File.ReadLines("/etc/passwd").Any(l => l.StartsWith(name + ":", StringComparison.Ordinal));

    public static async Task<PostgresServer> StartAsync()
    {
        var bin = BinDir ?? throw new InvalidOperationException(Unavailable);
        var root = Path.Combine(Path.GetTempPath(), "blankend-pg-" + Guid.NewGuid().ToString("N")[..8]);
        var data = Path.Combine(root, "data");
        Directory.CreateDirectory(root);
        if (IsRoot)
        {
            // The postgres user must own (and reach) its directory; /tmp itself is world-traversable.
            await RunAsync("chown", ["postgres:postgres", root]);
        }
        await RunAsync(
            Path.Combine(bin, "initdb"),
            ["-D", data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"],
            asPostgres: true
        );

        var port = TestEnv.FreePort();
        var psi = Command(
            Path.Combine(bin, "postgres"),
            [
                "-D",
                data,
                "-p",
                port.ToString(),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                $"unix_socket_directories={root}",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
                "-c",
                "TimeZone=UTC",
            ],
            asPostgres: true
        );
        var process = Process.Start(psi) ?? throw new InvalidOperationException("could not start postgres");
        var server = new PostgresServer(process, root, port);
        if (await ServerProcess.WatchUntilReadyAsync(process, server._output, server.ReadyAsync, 20_000, 100))
            return server;
        await server.DisposeAsync();
        throw new InvalidOperationException($"postgres did not accept connections on port {port}:\n{server.Log}");
    }

    public string Log
    {
        get
        {
            lock (_output)
                return _output.ToString();
        }
    }

    /// <summary>Accepts a real connection (not just TCP: the server answers TCP before recovery ends).</summary>
    public async Task<bool> ReadyAsync()
    {
        try
        {
            await using var c = new Npgsql.NpgsqlConnection(ConnectionString);
            await c.OpenAsync();
            return true;
        }
        catch (Exception e) when (e is Npgsql.NpgsqlException or SocketException or TimeoutException or IOException)
        {
            return false;
        }
    }

    /// <summary>One scalar query (tests read the membership table with it).</summary>
    public async Task<object?> ScalarAsync(string sql)
    {
        await using var c = new Npgsql.NpgsqlConnection(ConnectionString);
        await c.OpenAsync();
        await using var cmd = new Npgsql.NpgsqlCommand(sql, c);
        return await cmd.ExecuteScalarAsync();
    }

    private static ProcessStartInfo Command(string exe, string[] args, bool asPostgres)
    {
        var psi = new ProcessStartInfo(asPostgres && IsRoot ? "runuser" : exe)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = "/",
        };
        if (asPostgres && IsRoot)
        {
            foreach (var a in new[] { "-u", "postgres", "--", exe })
                psi.ArgumentList.Add(a);
        }
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        return psi;
    }

    private static async Task RunAsync(string exe, string[] args, bool asPostgres = false)
    {
        using var p = Process.Start(Command(exe, args, asPostgres))
            ?? throw new InvalidOperationException("could not start " + exe);
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        if (p.ExitCode != 0)
            throw new InvalidOperationException(
                $"{exe} {string.Join(' ', args)} exited with {p.ExitCode}:\n{await stdout}\n{await stderr}"
            );
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            // runuser forwards SIGTERM... but a kill of the whole tree is certain; postgres' data is thrown away
            // anyway.
            _process.Kill(entireProcessTree: true);
        }
        await _process.WaitForExitAsync();
        _process.Dispose();
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }
}

/// <summary>A fact that needs PostgreSQL: skipped, saying why, only when its binaries (or the postgres user) are
/// missing.</summary>
public sealed class PostgresFactAttribute : FactAttribute
{
    public PostgresFactAttribute()
    {
        if (PostgresServer.Unavailable is { } why)
            Skip = why;
    }
}
