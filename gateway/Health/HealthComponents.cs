namespace Blankend.Orleans.Gateway.Health;

/// <summary>States a component reports in <c>/healthz</c>.</summary>
internal static class HealthStates
{
    public const string Ok = "ok";

    /// <summary>Working with less than it should (e.g. the bus link is down): frames still flow.</summary>
    public const string Degraded = "degraded";
    public const string Unavailable = "unavailable";

    /// <summary>Switched off by configuration.</summary>
    public const string Disabled = "disabled";

    /// <summary>Not part of this deployment (no decoder or model configured): says nothing about health.</summary>
    public const string NotConfigured = "not_configured";
}

/// <summary>One component's entry in <c>/healthz</c>.</summary>
internal sealed record ComponentHealth(string State, string? Detail = null, double? LatencyMs = null);

/// <summary>
/// A part of the service that <c>/healthz</c> reports on. Register implementations in DI
/// (<c>services.AddSingleton&lt;IHealthComponent, MyCheck&gt;()</c>).
/// </summary>
internal interface IHealthComponent
{
    /// <summary>Key in the <c>components</c> object (snake_case).</summary>
    string Name { get; }

    /// <summary>True when frames cannot flow while this component is <see cref="HealthStates.Unavailable"/>:
    /// /healthz then answers 503. Components whose loss only degrades the service (the bus link) say false, and
    /// their unavailability shows as an overall <c>degraded</c> with 200.</summary>
    bool Critical { get; }

    /// <summary>Checked on every /healthz request, concurrently with the others and with a 2 s limit; an exception
    /// or the limit reports the component as unavailable.</summary>
    Task<ComponentHealth> CheckAsync(CancellationToken cancellationToken);
}

internal sealed record HealthReport(string Status, string Mode, Dictionary<string, ComponentHealth> Components);
