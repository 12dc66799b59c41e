namespace Blankend.Orleans.Gateway.Endpoints;

/// <summary>The problem+json answers the JSON API endpoints share: 400 with a title, 503 when the cluster did not
/// answer.</summary>
internal static class Problems
{
    public static IResult Bad(HttpContext context, string title, string detail) =>
        Results.Problem(
            title: title,
            detail: detail,
            statusCode: StatusCodes.Status400BadRequest,
            instance: context.Request.Path
        );

    public static IResult Unavailable(HttpContext context, string detail) =>
        Results.Problem(
            title: "cluster unavailable",
            detail: detail,
            statusCode: StatusCodes.Status503ServiceUnavailable,
            instance: context.Request.Path
        );
}
