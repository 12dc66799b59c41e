using System.Diagnostics;
using System.Text;

namespace Blankend.Orleans.Tests.Support;

/// <summary>What the tests' throw-away servers (<see cref="PostgresServer"/>, <see cref="RedisServer"/>) do alike
/// with their process: keep its output for the failure message while waiting until it answers.</summary>
internal static class ServerProcess
{
    /// <summary>Keeps every line the process writes, stdout and stderr, in <paramref name="output"/> (locked on it)
    /// from now on, and asks <paramref name="ready"/> every <paramref name="pollMs"/> ms: true once it says yes,
    /// false when the process exits or <paramref name="timeoutMs"/> ms pass first.</summary>
    public static async Task<bool> WatchUntilReadyAsync(
        Process process,
        StringBuilder output,
        Func<Task<bool>> ready,
        int timeoutMs,
        int pollMs
    )
    {
        void Append(object? sender, DataReceivedEventArgs e)
        {
            if (e.Data is not null)
                lock (output)
                    output.AppendLine(e.Data);
        }
        process.OutputDataReceived += Append;
        process.ErrorDataReceived += Append;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        var deadline = DateTime.UtcNow + TimeSpan.FromMilliseconds(timeoutMs);
        while (DateTime.UtcNow < deadline)
        {
            if (process.HasExited)
                return false;
            if (await ready())
                return true;
            await Task.Delay(pollMs);
        }
        return false;
    }
}
