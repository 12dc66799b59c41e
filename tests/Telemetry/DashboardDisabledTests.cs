using System.Net;
using Blankend.Orleans.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Blankend.Orleans.Tests.Telemetry;

/// <summary><c>telemetry.dashboard_enabled=false</c>: no /dashboard route and none of the dashboard's services
/// (neither the client's nor the embedded silo's), checked against the default (enabled) on the same probe.</summary>
[Trait(TestKind.Name, TestKind.Integration)]
public sealed class DashboardDisabledTests
{
    // Keyed descriptors throw on the unkeyed implementation getters.
    private static bool IsDashboard(ServiceDescriptor d) =>
        IsDashboardType(d.ServiceType)
        || (
            d.IsKeyedService
                ? IsDashboardType(d.KeyedImplementationType)
                    || IsDashboardType(d.KeyedImplementationInstance?.GetType())
                : IsDashboardType(d.ImplementationType) || IsDashboardType(d.ImplementationInstance?.GetType())
        );

    // Not counted: the Abstractions (attributes such as [NoProfiling] that grains carry) and the serializer's type
    // manifest that Orleans registers for every referenced assembly with generated code (OrleansCodeGen.*).
    private static bool IsDashboardType(Type? t) =>
        t is not null
        && (t.Assembly.GetName().Name ?? "").StartsWith("Orleans.Dashboard", StringComparison.Ordinal)
        && !(t.Assembly.GetName().Name ?? "").EndsWith(".Abstractions", StringComparison.Ordinal)
        && !(t.Namespace ?? "").StartsWith("OrleansCodeGen", StringComparison.Ordinal);

    private static string Describe(ServiceDescriptor d) =>
        $"{d.ServiceType.FullName} -> {(d.IsKeyedService ? d.KeyedImplementationType ?? d.KeyedImplementationInstance?.GetType() : d.ImplementationType ?? d.ImplementationInstance?.GetType())?.FullName ?? "factory"}";

    private static async Task<(HttpStatusCode Dashboard, string[] DashboardServices)> ProbeAsync(params string[] args)
    {
        IServiceCollection? services = null;
        await using var gw = await EmbeddedGateway.StartAsync(args, configure: b => services = b.Services);
        using var page = await gw.Client.GetAsync("dashboard");
        return (page.StatusCode, [.. services!.Where(IsDashboard).Select(Describe)]);
    }

    [Fact]
    public async Task DashboardDisabledHasNoRouteAndNoDashboardServices()
    {
        var on = await ProbeAsync();
        Assert.Equal(HttpStatusCode.OK, on.Dashboard);
        Assert.True(on.DashboardServices.Length > 0, "the probe finds no dashboard service even when it is enabled");

        var off = await ProbeAsync("--telemetry:dashboard_enabled=false");
        Assert.Equal(HttpStatusCode.NotFound, off.Dashboard);
        Assert.True(
            off.DashboardServices.Length == 0,
            "dashboard services left: " + string.Join("; ", off.DashboardServices)
        );
    }
}
