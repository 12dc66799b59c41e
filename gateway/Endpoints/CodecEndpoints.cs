using System.Text.Json;
using System.Text.Json.Serialization;
using Blankend.Orleans.Codec;
using Blankend.Orleans.Gateway.Cluster;
using Blankend.Orleans.Gateway.Fanout;
using Blankend.Orleans.Gateway.Health;
using Blankend.Orleans.Gateway.Ingest;
using Blankend.Orleans.Gateway.Telemetry;
using Orleans.Runtime;

namespace Blankend.Orleans.Gateway.Endpoints;

internal sealed record CodecSessionView(
    string Silo,
    string ClientId,
    string Codec,
    string Decoder,
    bool Gpu,
    double Fps,
    long Frames,
    long BytesIn,
    long Chunks,
    long Errors,
    long DroppedFrames,
    DateTimeOffset Started,
    int? Pid,
    int Restarts,
    double? FirstFrameMs
);

internal sealed record CodecDecodersView(string[] Cpu, string[] Gpu);

internal sealed record CodecGatewayView(
    long Connections,
    long ConnectionsTotal,
    long ChunksIn,
    long BytesIn,
    long PushCalls,
    long Refused
);

internal sealed record CodecStatus(
    bool FfmpegAvailable,
    bool GpuUsable,
    CodecDecodersView Decoders,
    List<CodecSessionView> Sessions,
    List<RecordingStats> Recordings,
    CodecCounterReport Counters,
    CodecGatewayView Gateway,
    List<CodecSiloReport> Silos,
    List<CodecSiloError> UnreachableSilos
);

internal sealed record RecordStartBody(string? Source, string? Kind, double? Fps);

internal sealed record RecordStopBody(string? Source);

internal sealed record RecordStarted(string Id, string Source, string Path, string Kind, double Fps);

internal sealed record RecordStopped(
    string Id,
    string Source,
    string Path,
    long Frames,
    [property: JsonPropertyName("duration_s")] double DurationSeconds,
    long Dropped,
    string Ended,
    string? Detail,
    bool FileWritten
)
{
    /// <summary><c>done</c> or <c>failed</c>, as in the recordings list.</summary>
    public string State { get; init; } = "done";

    public string? Reason { get; init; }
}

/// <summary>JSON of the codec and recording API (snake_case like the config file; request bodies refuse unknown
/// fields).</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow
)]
[JsonSerializable(typeof(CodecErrorMessage))]
[JsonSerializable(typeof(CodecStatus))]
[JsonSerializable(typeof(RecordStartBody))]
[JsonSerializable(typeof(RecordStopBody))]
[JsonSerializable(typeof(RecordStarted))]
[JsonSerializable(typeof(RecordStopped))]
internal sealed partial class CodecJson : JsonSerializerContext;

/// <summary><c>GET /api/v1/video_processing/codec/status</c> and the recording API.</summary>
internal static partial class CodecEndpoints
{
    private static readonly TimeSpan ReportTimeout = TimeSpan.FromSeconds(5);

    /// <summary>Every active silo answers for itself (what its ffmpeg can decode, its live sessions): the
    /// gateway asks each one's <see cref="ICodecSiloGrain"/> directly, so the answer is never stale.</summary>
    public static async Task<IResult> StatusAsync(IGrainFactory grains, CodecGatewayCounters gw)
    {
        var (reports, errors) = await SiloReports.CodecAsync(grains);
        var sessions = reports
            .SelectMany(r =>
                r.Sessions.Select(s => new CodecSessionView(
                    r.Silo,
                    s.ClientId,
                    s.Codec,
                    s.Decoder,
                    s.Gpu,
                    s.Fps,
                    s.Frames,
                    s.BytesIn,
                    s.Chunks,
                    s.Errors,
                    s.DroppedFrames,
                    DateTimeOffset.FromUnixTimeMilliseconds(s.StartedUnixMs),
                    s.Pid,
                    s.Restarts,
                    s.FirstFrameMs
                ))
            )
            .ToList();
        var ended = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var r in reports)
        {
            foreach (var (reason, n) in r.Counters.SessionsEnded)
                ended[reason] = ended.GetValueOrDefault(reason) + n;
        }
        var counters = new CodecCounterReport(
            reports.Sum(r => r.Counters.SessionsStarted),
            ended,
            reports.Sum(r => r.Counters.GpuFallbacks),
            reports.Sum(r => r.Counters.FramesDecoded),
            reports.Sum(r => r.Counters.RecordingsStarted),
            reports.Sum(r => r.Counters.RecordingsEnded)
        );
        var status = new CodecStatus(
            reports.Any(r => r.Ffmpeg.State == "ok"),
            reports.Any(r => r.Gpu.Usable),
            new CodecDecodersView(
                [.. reports.SelectMany(r => r.Ffmpeg.CpuDecoders).Distinct().Order(StringComparer.Ordinal)],
                [.. reports.SelectMany(r => r.Ffmpeg.GpuDecoders).Distinct().Order(StringComparer.Ordinal)]
            ),
            sessions,
            [.. reports.SelectMany(r => r.Recordings)],
            counters,
            new CodecGatewayView(
                Interlocked.Read(ref gw.Connections),
                Interlocked.Read(ref gw.ConnectionsTotal),
                Interlocked.Read(ref gw.ChunksIn),
                Interlocked.Read(ref gw.BytesIn),
                Interlocked.Read(ref gw.PushCalls),
                Interlocked.Read(ref gw.Refused)
            ),
            reports,
            errors
        );
        return Results.Json(status, CodecJson.Default.CodecStatus);
    }

    public static async Task<IResult> RecordStartAsync(
        HttpContext context,
        IGrainFactory grains,
        GatewayCounters counters
    )
    {
        var (body, problem) = await ReadBodyAsync(context, CodecJson.Default.RecordStartBody, counters);
        if (problem is not null)
            return problem;
        if (!ValidSource(context, body!.Source, counters, out problem))
            return problem!;
        if (body.Kind is not null && !RecordingKinds.IsValid(body.Kind))
            return Bad(
                context,
                "invalid kind",
                $"kind must be '{RecordingKinds.Raw}' or '{RecordingKinds.Processed}' (got '{body.Kind}')",
                counters
            );
        if (body.Fps is { } fps && (double.IsNaN(fps) || fps < 1 || fps > 240))
            return Bad(context, "invalid fps", $"fps must be between 1 and 240 (got {fps})", counters);

        var result = await grains
            .GetGrain<IRecordingGrain>(body.Source!)
            .Start(new RecordingRequest(body.Kind ?? RecordingKinds.Raw, body.Fps ?? 0));
        return result.Status switch
        {
            RecordingStartStatus.Started => Results.Json(
                new RecordStarted(result.Id, result.Source, result.Path, result.Kind, result.Fps),
                CodecJson.Default.RecordStarted
            ),
            RecordingStartStatus.AlreadyRecording => Results.Problem(
                title: "already recording",
                detail: result.Detail,
                statusCode: StatusCodes.Status409Conflict,
                instance: context.Request.Path
            ),
            RecordingStartStatus.Limited => Results.Problem(
                title: "recording limit reached",
                detail: result.Detail,
                statusCode: StatusCodes.Status429TooManyRequests,
                instance: context.Request.Path
            ),
            RecordingStartStatus.Unavailable => Results.Problem(
                title: "recording unavailable",
                detail: result.Detail,
                statusCode: StatusCodes.Status503ServiceUnavailable,
                instance: context.Request.Path
            ),
            _ => Results.Problem(
                title: "recording failed",
                detail: result.Detail,
                statusCode: StatusCodes.Status500InternalServerError,
                instance: context.Request.Path
            ),
        };
    }

    public static async Task<IResult> RecordStopAsync(
        HttpContext context,
        IGrainFactory grains,
        GatewayCounters counters,
        Microsoft.Extensions.Options.IOptions<Configuration.RecordingOptions> recording
    )
    {
        var (body, problem) = await ReadBodyAsync(context, CodecJson.Default.RecordStopBody, counters);
        if (problem is not null)
            return problem;
        if (!ValidSource(context, body!.Source, counters, out problem))
            return problem!;
        RecordingResult? result;
        try
        {
            result = await grains.GetGrain<IRecordingGrain>(body.Source!).Stop();
        }
        catch (Exception e) when (e is OrleansException or TimeoutException or IOException)
        {
            // The silo holding the recording died or does not answer: the registry says what is known, never a 5xx.
            if (RecordingEndpoints.FromRegistry(recording, body.Source!, e.GetType().Name) is { } known)
                return Results.Json(known, CodecJson.Default.RecordStopped);
            result = null;
        }
        if (result is null)
            return Results.Problem(
                title: "not recording",
                detail: $"source '{body.Source}' has no recording to stop",
                statusCode: StatusCodes.Status404NotFound,
                instance: context.Request.Path
            );
        return Results.Json(
            new RecordStopped(
                result.Id,
                result.Source,
                result.Path,
                result.Frames,
                result.DurationSeconds,
                result.Dropped,
                result.Ended,
                result.Detail,
                result.FileWritten
            )
            {
                State = result.State,
                Reason = result.Reason,
            },
            CodecJson.Default.RecordStopped
        );
    }

    private static bool ValidSource(HttpContext context, string? source, GatewayCounters counters, out IResult? problem)
    {
        problem = null;
        if (source is null)
        {
            problem = Bad(context, "invalid body", "'source' is required", counters);
            return false;
        }
        if (!ClientIds.IsValid(source, out var why))
        {
            problem = Bad(
                context,
                "invalid source",
                $"source {why}; recording file names are made by the service from it",
                counters
            );
            return false;
        }
        return true;
    }

    private static async Task<(T? Body, IResult? Problem)> ReadBodyAsync<T>(
        HttpContext context,
        System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type,
        GatewayCounters counters
    )
        where T : class
    {
        try
        {
            var body = await JsonSerializer.DeserializeAsync(context.Request.Body, type, context.RequestAborted);
            if (body is null)
                return (null, Bad(context, "invalid body", "expected a JSON object", counters));
            return (body, null);
        }
        catch (JsonException e)
        {
            return (null, Bad(context, "invalid body", "malformed JSON or unknown field: " + e.Message, counters));
        }
    }

    private static IResult Bad(HttpContext context, string title, string detail, GatewayCounters counters) =>
        QueryRules.BadRequest(context, title, detail, counters);
}
