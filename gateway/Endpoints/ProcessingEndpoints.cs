using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using Blankend.Orleans.Gateway.Cluster;
using Blankend.Orleans.Processing;

namespace Blankend.Orleans.Gateway.Endpoints;

/// <summary>
/// Body of <c>POST /api/v1/video_processing/pipeline/config</c>: the config file's snake_case keys. Absent
/// keys are left unchanged. With <c>source</c> the change is that source's override (<c>reset: true</c>
/// removes it). Unknown keys, wrong types and values out of range answer 400 and change nothing.
/// </summary>
internal sealed record PipelineConfigBody(
    string? Source = null,
    bool? Enabled = null,
    bool? ReencodeEnabled = null,
    int? JpegQuality = null,
    double? FpsLimit = null,
    int? Workers = null,
    bool? HwTranscode = null,
    bool? Reset = null
);

/// <summary>Strict request parsing: unknown members are errors; numbers must be numbers, booleans booleans.</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    AllowDuplicateProperties = false
)]
[JsonSerializable(typeof(PipelineConfigBody))]
internal sealed partial class ProcessingRequestJson : JsonSerializerContext;

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(PipelineConfig))]
[JsonSerializable(typeof(PipelineStatus))]
[JsonSerializable(typeof(GpuStatus))]
internal sealed partial class ProcessingJson : JsonSerializerContext;

internal static class ProcessingEndpoints
{
    private const int MaxBodyBytes = 64 * 1024;
    private static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(10);

    public static void MapProcessingEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/api/v1/video_processing/pipeline/status", PipelineStatusAsync);
        app.MapGet("/api/v1/video_processing/pipeline/config", GetConfigAsync);
        app.MapPost("/api/v1/video_processing/pipeline/config", PostConfigAsync);
        app.MapGet("/api/v1/video_processing/gpu/status", GpuStatusAsync);
    }

    private static IPipelineConfigGrain Pipeline(IGrainFactory grains) =>
        grains.GetGrain<IPipelineConfigGrain>(IPipelineConfigGrain.Key);

    /// <summary>The processing pipeline's status, with the bus link's (<c>relay</c>, as /api/v1/relay/status gives
    /// it) alongside: one place for an operator to see where frames go and where they are dropped.</summary>
    public static async Task<IResult> PipelineStatusAsync(
        IGrainFactory grains,
        HttpContext context,
        GatewayMode mode,
        Microsoft.Extensions.Options.IOptions<Configuration.StreamOptions> stream
    )
    {
        try
        {
            var status = await Pipeline(grains).GetStatus().WaitAsync(CallTimeout);
            var body = JsonSerializer.SerializeToNode(status, ProcessingJson.Default.PipelineStatus)!.AsObject();
            var relay = await RelayQuery.StatusAsync(grains, mode, stream.Value);
            body["relay"] = JsonSerializer.SerializeToNode(relay, GatewayJson.Default.RelayStatus);
            return Results.Text(body.ToJsonString(), "application/json");
        }
        catch (Exception e) when (e is TimeoutException or OrleansException)
        {
            return Unavailable(context, e);
        }
    }

    public static Task<IResult> GpuStatusAsync(IGrainFactory grains, HttpContext context) =>
        AnswerAsync(context, () => Pipeline(grains).GetGpuStatus(), ProcessingJson.Default.GpuStatus);

    public static Task<IResult> GetConfigAsync(IGrainFactory grains, HttpContext context) =>
        AnswerAsync(context, () => Pipeline(grains).GetConfig(), ProcessingJson.Default.PipelineConfig);

    /// <summary>The grain call's answer as JSON, or 503 when the cluster does not answer in time.</summary>
    private static async Task<IResult> AnswerAsync<T>(HttpContext context, Func<Task<T>> call, JsonTypeInfo<T> type)
    {
        try
        {
            return Results.Json(await call().WaitAsync(CallTimeout), type);
        }
        catch (Exception e) when (e is TimeoutException or OrleansException)
        {
            return Unavailable(context, e);
        }
    }

    public static async Task<IResult> PostConfigAsync(IGrainFactory grains, HttpContext context)
    {
        var (parsed, invalid) = await RequestBody.ReadJsonAsync(
            context,
            MaxBodyBytes,
            ProcessingRequestJson.Default.PipelineConfigBody,
            "invalid pipeline config",
            static type => type
        );
        if (parsed is null)
            return invalid!;

        var update = new PipelineConfigUpdate(
            parsed.Source,
            parsed.Enabled,
            parsed.ReencodeEnabled,
            parsed.JpegQuality,
            parsed.FpsLimit,
            parsed.Workers,
            parsed.HwTranscode,
            parsed.Reset ?? false
        );
        if (PipelineRules.Validate(update) is { } error)
            return Problems.Bad(context, "invalid pipeline config", error);
        if (update == new PipelineConfigUpdate())
            return Problems.Bad(context, "invalid pipeline config", "no setting given");

        ConfigChangeResult result;
        try
        {
            result = await Pipeline(grains).Update(update).WaitAsync(CallTimeout);
        }
        catch (Exception e) when (e is TimeoutException or OrleansException)
        {
            return Unavailable(context, e);
        }
        if (result.Error is not null)
            return Problems.Bad(context, "invalid pipeline config", result.Error);
        return Results.Json(result.Config, ProcessingJson.Default.PipelineConfig);
    }

    private static IResult Unavailable(HttpContext context, Exception e) =>
        Problems.Unavailable(context, $"{e.GetType().Name}: {e.Message}");
}
