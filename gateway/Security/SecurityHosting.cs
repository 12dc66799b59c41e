using Blankend.Orleans.Configuration;
using Blankend.Orleans.Hosting;
using Blankend.Orleans.Limits;
using Microsoft.AspNetCore.Authorization;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Blankend.Orleans.Gateway.Security;

/// <summary>Access control and limits of the gateway (docs/security.md): registration and the middleware
/// order.</summary>
internal static class SecurityHosting
{
    /// <summary>Checks open mode against the listen addresses (a configuration error, exit 2) and registers the
    /// token scheme, the scope policies, the browser guard and the limits.</summary>
    public static WebApplicationBuilder AddBlankendSecurity(this WebApplicationBuilder builder)
    {
        var config = builder.Configuration;
        CheckTokenKeys(config);
        ListenAddresses.CheckOpenMode(config);
        var auth = BlankendConfiguration.Read<AuthOptions, AuthOptionsValidator>(config, AuthOptions.Section);
        var services = builder.Services;
        services.AddSingleton(new TokenStore(auth));
        services
            .AddAuthentication(TokenAuthenticationHandler.SchemeName)
            .AddScheme<Microsoft.AspNetCore.Authentication.AuthenticationSchemeOptions, TokenAuthenticationHandler>(
                TokenAuthenticationHandler.SchemeName,
                null
            );
        services.AddAuthorization(ScopePolicies.Add);
        services.AddSingleton<IAuthorizationHandler, ScopeHandler>();
        services.AddSingleton<IAuthorizationHandler, SourceHandler>();
        services.AddSingleton<
            Microsoft.AspNetCore.Authorization.IAuthorizationMiddlewareResultHandler,
            ProblemAuthorizationResultHandler
        >();
        services.AddSingleton<BrowserGuard>();
        services.AddSingleton<ConnectionLimits>();
        services.TryAddSingleton<LiveSources>();
        return builder;
    }

    /// <summary>Host/Origin/Content-Type, then authentication, authorization, then the limits: all before the
    /// endpoint, so every refusal is an HTTP answer and never an upgraded WebSocket.</summary>
    public static WebApplication UseBlankendSecurity(this WebApplication app)
    {
        var guard = app.Services.GetRequiredService<BrowserGuard>();
        app.Use((context, next) => guard.InvokeAsync(context, next));
        app.UseAuthentication();
        app.UseAuthorization();
        var limits = app.Services.GetRequiredService<ConnectionLimits>();
        app.Use((context, next) => limits.InvokeAsync(context, next));
        return app;
    }

    /// <summary>View for reads, control for changes: the policy of an /api/v1 route follows its HTTP methods.</summary>
    public static TBuilder RequireApiScopes<TBuilder>(this TBuilder builder)
        where TBuilder : IEndpointConventionBuilder
    {
        builder.Finally(b =>
        {
            var methods = b.Metadata.OfType<HttpMethodMetadata>().SelectMany(m => m.HttpMethods).ToArray();
            var reads = methods.Length > 0 && methods.All(m => HttpMethods.IsGet(m) || HttpMethods.IsHead(m));
            b.Metadata.Add(new AuthorizeAttribute(reads ? ScopePolicies.View : ScopePolicies.Control));
        });
        return builder;
    }

    /// <summary>The keys of each <c>auth.tokens</c> element (the section check sees only <c>tokens</c>).</summary>
    private static void CheckTokenKeys(ConfigurationManager config)
    {
        var errors = new List<string>();
        foreach (var token in config.GetSection("auth:tokens").GetChildren())
        {
            foreach (var key in token.GetChildren())
            {
                if (Array.IndexOf(AuthTokenOptions.Keys, key.Key.ToLowerInvariant()) < 0)
                    errors.Add(
                        $"auth:tokens:{token.Key}:{key.Key} is not a known key (known: {string.Join(", ", AuthTokenOptions.Keys)})"
                    );
            }
        }
        if (errors.Count > 0)
            throw new BlankendConfigurationException(errors);
    }
}
