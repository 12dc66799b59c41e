using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Blankend.Orleans.Tests.Support;

/// <summary>Keeps the formatted messages of the log categories that <paramref name="category"/> accepts (all levels
/// that reach it; the host's level filters still apply).</summary>
public sealed class LogCapture(Func<string, bool> category) : ILoggerProvider
{
    private readonly List<string> _lines = [];

    public IReadOnlyList<string> Lines
    {
        get
        {
            lock (_lines)
                return [.. _lines];
        }
    }

    public ILogger CreateLogger(string categoryName) => category(categoryName) ? new Logger(this) : NullLogger.Instance;

    /// <summary>A logger writing into this capture (for objects built by a test).</summary>
    public ILogger<T> For<T>() => new Typed<T>(new Logger(this));

    public void Dispose() { }

    private sealed class Logger(LogCapture owner) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(
            LogLevel logLevel,
            EventId eventId,
            TState state,
            Exception? exception,
            Func<TState, Exception?, string> formatter
        )
        {
            lock (owner._lines)
                owner._lines.Add(formatter(state, exception));
        }
    }

    private sealed class Typed<T>(ILogger inner) : ILogger<T>
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => inner.BeginScope(state);

        public bool IsEnabled(LogLevel logLevel) => inner.IsEnabled(logLevel);

        public void Log<TState>(
            LogLevel logLevel,
            EventId eventId,
            TState state,
            Exception? exception,
            Func<TState, Exception?, string> formatter
        ) => inner.Log(logLevel, eventId, state, exception, formatter);
    }
}
