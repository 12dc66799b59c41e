using Blankend.Orleans.Gateway.Telemetry;
using Blankend.Orleans.Telemetry;

namespace Blankend.Orleans.Gateway.Endpoints;

/// <summary>Parses the WebSocket query values; a bad value is refused before the upgrade with 400.</summary>
internal static partial class QueryRules
{
    public static bool TryClientId(
        HttpRequest request,
        string name,
        string? fallback,
        out string? value,
        out string? error
    )
    {
        error = null;
        var values = request.Query[name];
        if (values.Count > 1)
        {
            value = null;
            error = $"'{name}' given {values.Count} times";
            return false;
        }
        value = values.Count == 0 ? fallback : values[0];
        if (value is null)
            return true;
        if (!ClientIds.IsValid(value, out var why))
        {
            error = $"'{name}' {why}";
            return false;
        }
        return true;
    }

    public static bool TryFlag(HttpRequest request, string name, out bool value, out string? error)
    {
        error = null;
        value = false;
        var values = request.Query[name];
        if (values.Count == 0)
            return true;
        switch (values.Count == 1 ? values[0]?.ToLowerInvariant() : null)
        {
            case "1" or "true":
                value = true;
                return true;
            case "0" or "false" or "":
                return true;
            default:
                error = $"'{name}' must be 0 or 1";
                return false;
        }
    }

    /// <summary>Answers 400 (problem+json), counts it by endpoint and logs one line saying why.</summary>
    public static IResult BadRequest(
        HttpContext context,
        string title,
        string detail,
        Telemetry.GatewayCounters counters
    )
    {
        var path = context.Request.Path;
        counters.RequestRejected(EndpointTag(path));
        var log = context.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger("Blankend.Requests");
        LogRefused(
            log,
            context.Request.Method,
            path.Value ?? "",
            context.Connection.RemoteIpAddress?.ToString() ?? "?",
            title,
            detail
        );
        return Results.Problem(
            title: title,
            detail: detail,
            statusCode: StatusCodes.Status400BadRequest,
            instance: context.Request.Path
        );
    }

    private static KeyValuePair<string, object?> EndpointTag(PathString path) =>
        path.Value switch
        {
            "/video_in" => BlankendMetrics.Endpoints.VideoIn,
            "/video_codec" => BlankendMetrics.Endpoints.VideoCodec,
            "/video_out" => BlankendMetrics.Endpoints.VideoOut,
            _ => BlankendMetrics.Endpoints.Other,
        };

    [LoggerMessage(
        Level = LogLevel.Warning,
        Message = "refused {Method} {Path} from {Remote} with 400: {Title}: {Detail}"
    )]
    private static partial void LogRefused(
        ILogger log,
        string method,
        string path,
        string remote,
        string title,
        string detail
    );
}
