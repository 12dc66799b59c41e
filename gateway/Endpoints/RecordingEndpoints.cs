using System.Text.Json.Serialization;
using Blankend.Orleans.Codec;
using Blankend.Orleans.Configuration;
using Blankend.Orleans.Hosting;
using Microsoft.Extensions.Options;

namespace Blankend.Orleans.Gateway.Endpoints;

internal sealed record RecordingView(
    string Id,
    string Source,
    string Kind,
    string File,
    long Bytes,
    DateTimeOffset Started,
    DateTimeOffset? Ended,
    string State,
    string? Reason
);

internal sealed record RecordingListView(List<RecordingView> Recordings);

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.Never
)]
[JsonSerializable(typeof(RecordingListView))]
internal sealed partial class RecordingJson : JsonSerializerContext;

/// <summary>
/// <c>GET /api/v1/recordings</c>, <c>GET /api/v1/recordings/{id}/file</c>, <c>DELETE /api/v1/recordings/{id}</c>.
/// They read the registry in <c>recording:folder</c> (sidecar files next to the MP4s, see
/// <see cref="RecordingRegistry"/>), so they answer even when the silo that wrote a recording is gone; a gateway
/// on another host than its silos needs the folder shared with them.
/// </summary>
internal static class RecordingEndpoints
{
    public static IEndpointRouteBuilder MapRecordingEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/api/v1/recordings", List);
        app.MapGet("/api/v1/recordings/{id}/file", File);
        app.MapDelete("/api/v1/recordings/{id}", Delete);
        return app;
    }

    private static string Folder(IOptions<RecordingOptions> o) =>
        Path.TrimEndingDirectorySeparator(Path.GetFullPath(o.Value.Folder));

    private static RecordingView View(RecordingEntry e) =>
        new(e.Id, e.Source, e.Kind, e.File, e.Bytes, e.Started, e.Ended, e.State, e.Reason);

    private static IResult List(IOptions<RecordingOptions> o)
    {
        var list = RecordingRegistry.List(Folder(o), DateTimeOffset.UtcNow).ConvertAll(View);
        return Results.Json(new RecordingListView(list), RecordingJson.Default.RecordingListView);
    }

    /// <summary>Ids are made by the service (32 hex digits); anything else cannot name a recording.</summary>
    private static bool ValidId(string id) => id.Length == 32 && id.All(char.IsAsciiHexDigitLower);

    private static IResult NotFound(HttpContext context, string id) =>
        Results.Problem(
            title: "no such recording",
            detail: $"no recording has the id '{(ValidId(id) ? id : "(invalid)")}'",
            statusCode: StatusCodes.Status404NotFound,
            instance: context.Request.Path
        );

    private static IResult File(HttpContext context, string id, IOptions<RecordingOptions> o)
    {
        var folder = Folder(o);
        if (!ValidId(id) || RecordingRegistry.Find(folder, id, DateTimeOffset.UtcNow) is not { } e)
            return NotFound(context, id);
        var path = Path.Combine(folder, e.File);
        if (!System.IO.File.Exists(path))
            return Results.Problem(
                title: "recording file missing",
                detail: $"recording '{id}' has no file (nothing was written, or it was removed)",
                statusCode: StatusCodes.Status404NotFound,
                instance: context.Request.Path
            );
        // A live recording is served as it is now (fragmented MP4: every complete fragment plays).
        return Results.File(path, "video/mp4", e.File, enableRangeProcessing: true);
    }

    private static IResult Delete(HttpContext context, string id, IOptions<RecordingOptions> o)
    {
        var folder = Folder(o);
        if (!ValidId(id) || RecordingRegistry.Find(folder, id, DateTimeOffset.UtcNow) is not { } e)
            return NotFound(context, id);
        if (e.State == RecordingStates.Live)
            return Results.Problem(
                title: "recording is live",
                detail: $"recording '{id}' of source '{e.Source}' is still being written; stop it first",
                statusCode: StatusCodes.Status409Conflict,
                instance: context.Request.Path
            );
        var path = Path.Combine(folder, e.File);
        try
        {
            System.IO.File.Delete(path);
            System.IO.File.Delete(RecordingRegistry.SidecarOf(path));
        }
        catch (Exception x) when (x is IOException or UnauthorizedAccessException)
        {
            return Results.Problem(
                title: "cannot delete",
                detail: $"recording '{id}': {x.Message}",
                statusCode: StatusCodes.Status409Conflict,
                instance: context.Request.Path
            );
        }
        return Results.NoContent();
    }

    /// <summary>The stop's answer when the grain call itself failed (the silo holding the recording died or does
    /// not answer): what the registry knows, never a 5xx. Null when it knows no recording of the source.</summary>
    public static RecordStopped? FromRegistry(IOptions<RecordingOptions> o, string source, string why)
    {
        var now = DateTimeOffset.UtcNow;
        var e = RecordingRegistry
            .Stored(Folder(o))
            .Where(x => x.Source == source && x.State == RecordingStates.Live)
            .OrderByDescending(x => x.Started)
            .Select(x => RecordingRegistry.Effective(x, now))
            .FirstOrDefault();
        if (e is null)
            return null;
        var reason = e.Reason
            ?? $"the silo holding the recording does not answer ({why}); the file holds what was written";
        return new RecordStopped(
            e.Id,
            e.Source,
            Path.Combine(Folder(o), e.File),
            0,
            0,
            0,
            "failed",
            reason,
            e.Bytes > 0
        )
        {
            State = RecordingStates.Failed,
            Reason = reason,
        };
    }
}
