using System.ComponentModel;
using System.Diagnostics;
using Microsoft.Extensions.Logging;

namespace Blankend.Orleans.Grains.Codec;

/// <summary>
/// One ffmpeg child process with its three pipes (async on Linux: .NET drives pipe fds through its socket
/// engine, so no thread waits on a pipe). stderr is read line by line into a short tail (ffmpeg runs with
/// <c>-loglevel error</c>, so every line is an error). Kill + reap is bounded: <see cref="DisposeAsync"/> never
/// leaves a process or a zombie behind.
/// </summary>
internal sealed class FfmpegProcess : IAsyncDisposable
{
    /// <summary>The contract's bound: a process we end is gone (killed and reaped) within this time.</summary>
    public static readonly TimeSpan ReapTimeout = TimeSpan.FromSeconds(5);

    private const int TailLines = 8;
    private readonly Process _process;
    private readonly Queue<string> _tail = new();
    private readonly Lock _gate = new();
    private readonly Action<string>? _onStderrLine;
    private long _stderrLines;
    private int _stdinClosed;
    private int _disposed;

    private FfmpegProcess(Process process, Action<string>? onStderrLine)
    {
        _process = process;
        _onStderrLine = onStderrLine;
        Pid = process.Id;
        Stdin = process.StandardInput.BaseStream;
        Stdout = process.StandardOutput.BaseStream;
        StderrDone = Task.Run(ReadStderrAsync);
    }

    public int Pid { get; }

    public Stream Stdin { get; }

    public Stream Stdout { get; }

    /// <summary>Completes when stderr reached its end (the process closed it, normally by exiting).</summary>
    public Task StderrDone { get; }

    public long StderrLines => Interlocked.Read(ref _stderrLines);

    public bool HasExited
    {
        get
        {
            try
            {
                return _process.HasExited;
            }
            catch (Exception e) when (e is InvalidOperationException or ObjectDisposedException)
            {
                return true;
            }
        }
    }

    public int? ExitCode
    {
        get
        {
            try
            {
                return _process.HasExited ? _process.ExitCode : null;
            }
            catch (Exception e) when (e is InvalidOperationException or ObjectDisposedException)
            {
                return null;
            }
        }
    }

    /// <summary>Starts <paramref name="path"/>. Throws <see cref="FfmpegStartException"/> (with a message an operator
    /// can act on) when the executable cannot be started.</summary>
    public static FfmpegProcess Start(string path, IEnumerable<string> args, Action<string>? onStderrLine = null)
    {
        var psi = new ProcessStartInfo(path)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            CreateNoWindow = true,
        };
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        Process? process;
        try
        {
            process = Process.Start(psi);
        }
        catch (Win32Exception e)
        {
            throw new FfmpegStartException(NotFoundMessage(path, e.Message), e);
        }
        if (process is null)
            throw new FfmpegStartException($"ffmpeg ('{path}') did not start");
        return new FfmpegProcess(process, onStderrLine);
    }

    public static string NotFoundMessage(string path, string why) =>
        $"ffmpeg could not be started from '{path}' (codec:ffmpeg_path): {why}. Install it (Debian/Ubuntu: apt-get install ffmpeg) or set codec:ffmpeg_path";

    public string[] StderrTail()
    {
        lock (_gate)
            return [.. _tail];
    }

    public string StderrSummary(int maxChars = 600)
    {
        var text = string.Join(" | ", StderrTail());
        return text.Length <= maxChars ? text : text[^maxChars..];
    }

    /// <summary>End of input: ffmpeg decodes what it holds and exits.</summary>
    public void CloseStdin()
    {
        if (Interlocked.Exchange(ref _stdinClosed, 1) != 0)
            return;
        try
        {
            Stdin.Dispose();
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException) { }
    }

    /// <summary>SIGKILL (whole tree). Safe to call at any time, any number of times.</summary>
    public void Kill()
    {
        try
        {
            _process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException) { } // already exited, or disposed
        catch (Win32Exception) { }
    }

    /// <summary>Waits for the exit (the runtime reaps the child). False on timeout.</summary>
    public async Task<bool> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token).ConfigureAwait(false);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
        catch (Exception e) when (e is InvalidOperationException or ObjectDisposedException)
        {
            return true; // disposed: it was reaped before
        }
    }

    /// <summary>Kills (if still running) and waits for the reap, within <see cref="ReapTimeout"/>.</summary>
    public async Task<bool> KillAndReapAsync()
    {
        if (!HasExited)
            Kill();
        return await WaitForExitAsync(ReapTimeout).ConfigureAwait(false);
    }

    private async Task ReadStderrAsync()
    {
        try
        {
            var reader = _process.StandardError;
            while (await reader.ReadLineAsync().ConfigureAwait(false) is { } line)
            {
                if (line.Length == 0)
                    continue;
                Interlocked.Increment(ref _stderrLines);
                lock (_gate)
                {
                    if (_tail.Count == TailLines)
                        _tail.Dequeue();
                    _tail.Enqueue(line.Length > 300 ? line[..300] : line);
                }
                _onStderrLine?.Invoke(line);
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException) { }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        CloseStdin();
        await KillAndReapAsync().ConfigureAwait(false);
        try
        {
            await StderrDone.WaitAsync(TimeSpan.FromSeconds(1)).ConfigureAwait(false);
        }
        catch (TimeoutException) { }
        _process.Dispose();
    }

    /// <summary>Runs ffmpeg to completion (probes): stdin bytes in, stdout bytes and stderr text out.</summary>
    public static async Task<RunResult> RunAsync(
        string path,
        IEnumerable<string> args,
        byte[]? stdin,
        TimeSpan timeout,
        CancellationToken ct = default
    )
    {
        var watch = Stopwatch.StartNew();
        await using var p = Start(path, args);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(timeout);
        var output = new MemoryStream();
        var copy = p.Stdout.CopyToAsync(output, cts.Token);
        try
        {
            if (stdin is not null)
                await p.Stdin.WriteAsync(stdin, cts.Token).ConfigureAwait(false);
        }
        catch (IOException)
        {
            // It exited without reading everything: its exit code and stderr tell why.
        }
        p.CloseStdin();
        var exited = await p.WaitForExitAsync(timeout).ConfigureAwait(false);
        if (!exited)
            p.Kill();
        try
        {
            await copy.ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or IOException) { }
        try
        {
            await p.StderrDone.WaitAsync(TimeSpan.FromSeconds(2), CancellationToken.None).ConfigureAwait(false);
        }
        catch (TimeoutException) { }
        return new RunResult(
            exited ? p.ExitCode : null,
            output.ToArray(),
            p.StderrTail(),
            watch.Elapsed.TotalMilliseconds
        );
    }

    public sealed record RunResult(int? ExitCode, byte[] Stdout, string[] Stderr, double Ms)
    {
        public bool Ok => ExitCode == 0;

        public string StderrText => string.Join(" | ", Stderr);
    }
}

internal sealed class FfmpegStartException(string message, Exception? inner = null) : Exception(message, inner);

internal static partial class FfmpegLog
{
    [LoggerMessage(Level = LogLevel.Debug, Message = "ffmpeg[{Pid}] {Line}")]
    public static partial void Stderr(ILogger log, int pid, string line);
}
