using Blankend.Orleans.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Blankend.Orleans.Hosting;

/// <summary>
/// The last line of defence for "no secrets in logs": every logger provider registered so far is wrapped so that
/// each formatted message passes <see cref="SecretMask"/> (connection-string passwords, tokens). Messages are
/// masked, not exception texts' stack traces; the project's own log lines never take a secret as an argument.
/// </summary>
public static class SecretMaskingLogging
{
    public static IServiceCollection MaskSecretsInLogs(this IServiceCollection services)
    {
        var providers = services.Where(d => d.ServiceType == typeof(ILoggerProvider) && !d.IsKeyedService).ToList();
        foreach (var d in providers)
        {
            services.Remove(d);
            services.Add(ServiceDescriptor.Singleton<ILoggerProvider>(sp => new MaskingProvider(Create(sp, d))));
        }
        return services;
    }

    private static ILoggerProvider Create(IServiceProvider sp, ServiceDescriptor d) =>
        (ILoggerProvider)(
            d.ImplementationInstance
            ?? d.ImplementationFactory?.Invoke(sp)
            ?? ActivatorUtilities.CreateInstance(sp, d.ImplementationType!)
        );

    private sealed class MaskingProvider(ILoggerProvider inner) : ILoggerProvider, ISupportExternalScope
    {
        public ILogger CreateLogger(string categoryName) => new MaskingLogger(inner.CreateLogger(categoryName));

        public void SetScopeProvider(IExternalScopeProvider scopeProvider)
        {
            if (inner is ISupportExternalScope s)
                s.SetScopeProvider(scopeProvider);
        }

        public void Dispose() => inner.Dispose();
    }

    private sealed class MaskingLogger(ILogger inner) : ILogger
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
        ) => inner.Log(logLevel, eventId, state, exception, (s, e) => SecretMask.Apply(formatter(s, e)));
    }
}
