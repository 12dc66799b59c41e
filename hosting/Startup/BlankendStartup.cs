using Microsoft.Extensions.Options;

namespace Blankend.Orleans.Hosting;

/// <summary>Turns configuration errors at start-up into one clear line and exit code 2 (no stack trace).</summary>
public static class BlankendStartup
{
    public const int ConfigErrorExitCode = 2;

    public static async Task<int> RunAsync(string role, Func<Task> run)
    {
        try
        {
            await run();
            return 0;
        }
        catch (Exception e) when (Describe(e) is { } message)
        {
            // Masked: a bad connection string or token may be quoted by the message (docs/security.md).
            await Console.Error.WriteLineAsync(
                $"blankend {role}: configuration error: {Blankend.Orleans.Configuration.SecretMask.Apply(message)}"
            );
            return ConfigErrorExitCode;
        }
    }

    /// <summary>The configuration problem behind an exception, or null when it is something else.</summary>
    public static string? Describe(Exception e) =>
        e switch
        {
            BlankendConfigurationException c => string.Join("; ", c.Errors),
            OptionsValidationException v => string.Join("; ", v.Failures),
            InvalidOperationException i when i.Message.Contains("configuration", StringComparison.OrdinalIgnoreCase) =>
                i.Message,
            AggregateException a when a.InnerExceptions.Count > 0 => a
                .InnerExceptions.Select(Describe)
                .FirstOrDefault(m => m is not null),
            _ when e.InnerException is { } inner => Describe(inner),
            _ => null,
        };
}
