using System.Diagnostics;
using System.Text;

namespace Blankend.Orleans.Tests.Support;

/// <summary>What the tests' throw-away servers (<see cref="PostgresServer"/>, <see cref="RedisServer"/>) do alike
/// with their process: keep its output for the failure message, and wait until it answers.</summary>
internal static class ServerProcess
{
    /// <summary>Keeps every line the process writes, stdout and stderr, in <paramref name="output"/> (locked on
    /// it).</summary>
    public static void KeepOutput(Process process, StringBuilder output)
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
    }

    /// <summary>Asks <paramref name="ready"/> every <paramref name="poll"/>: true once it says yes, false when the
    /// process exits or <paramref name="timeout"/> passes first.</summary>
    public static async Task<bool> WaitReadyAsync(
        Process process,
        Func<Task<bool>> ready,
        TimeSpan timeout,
        TimeSpan poll
    )
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (process.HasExited)
                return false;
            if (await ready())
                return true;
            await Task.Delay(poll);
        }
        return false;
    }
}
