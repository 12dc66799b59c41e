using Blankend.Orleans.Hosting;

namespace Blankend.Orleans.Gateway.Hosting;

/// <summary>Builds the gateway application; Program.cs and the tests use the same path.</summary>
internal static class BlankendGatewayApp
{
    public const string DefaultUrl = "http://127.0.0.1:8000";

    /// <param name="args">Command line (e.g. <c>--urls</c>, <c>--cluster:mode=client</c>).</param>
    /// <param name="environment">Environment variables to read instead of the process's (tests).</param>
    /// <param name="configure">Last changes to the builder before it is built (tests: an in-memory exporter).</param>
    public static WebApplication Create(
        string[] args,
        System.Collections.IDictionary? environment = null,
        Action<WebApplicationBuilder>? configure = null
    )
    {
        var builder = WebApplication.CreateBuilder(args);
        builder.Configuration.AddBlankendConfiguration(args, environment);
        if (
            string.IsNullOrEmpty(builder.Configuration["urls"])
            && string.IsNullOrEmpty(builder.Configuration[WebHostDefaults.ServerUrlsKey])
        )
            builder.WebHost.UseUrls(DefaultUrl);
        builder.AddBlankendGateway();
        configure?.Invoke(builder);
        builder.Services.MaskSecretsInLogs();
        var app = builder.Build();
        app.Services.ValidateBlankendOptions();
        app.MapBlankendEndpoints();
        return app;
    }
}
