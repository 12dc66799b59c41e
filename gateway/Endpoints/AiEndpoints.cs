using System.Text.Json.Serialization;
using Blankend.Orleans.Ai;
using Blankend.Orleans.Configuration;
using Blankend.Orleans.Gateway.Cluster;
using Blankend.Orleans.Media;
using Blankend.Orleans.Processing;
using Microsoft.Extensions.Options;

namespace Blankend.Orleans.Gateway.Endpoints;

/// <summary>Body of <c>POST /api/v1/realtime_pipeline/config</c> (snake_case, unknown keys refused).</summary>
internal sealed record RealtimeConfigBody(
    string? Source = null,
    bool? Enabled = null,
    int? Workers = null,
    string? Steps = null,
    BackgroundBody? Background = null,
    int? FaceDetectInterval = null,
    bool? SimpleForward = null,
    string? DepthMode = null,
    bool? Reset = null
);

internal sealed record BackgroundBody(string? Kind = null, string? Color = null, int? BlurRadius = null);

/// <summary>The realtime settings as the API shows them (steps as the comma list the config file uses).</summary>
internal sealed record RealtimeView(
    long ConfigVersion,
    bool Enabled,
    int Workers,
    string Steps,
    MatteBackground Background,
    int FaceDetectInterval,
    bool SimpleForward,
    string DepthMode,
    long ReferenceVersion,
    RealtimeSourceView[] Sources
);

internal sealed record RealtimeSourceView(string Source, bool? Enabled, string? Steps);

internal sealed record RealtimeStatusView(
    RealtimeView Config,
    SourceProcessingStats[] Sources,
    AiStepReport[] Steps,
    DeviceStatus[] Devices,
    string[] Errors
);

internal sealed record AiStatusView(
    string Provider,
    string ProviderReason,
    string[] Providers,
    AiModelReport[] Models,
    AiSiloReport[] Silos,
    RealtimeView? Realtime,
    string[] Errors,
    string SwapEngine = "mesh",
    string? SwapEngineReason = null,
    bool ProviderFallback = false,
    AiBatchView[]? Batches = null
);

/// <summary>Cross-stream batching of one model over the cluster: inference calls, images, mean and largest
/// batch.</summary>
internal sealed record AiBatchView(string Model, long Calls, long Images, double MeanBatch, int MaxBatch);

internal sealed record AiDetectionsView(
    int Width,
    int Height,
    AiFace[] Faces,
    Dictionary<string, double> StepMs,
    string[] Notes,
    string Silo,
    string Device,
    string Provider
);

internal sealed record AssetView(string Kind, long Version, int Bytes);

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    AllowDuplicateProperties = false
)]
[JsonSerializable(typeof(RealtimeConfigBody))]
internal sealed partial class AiRequestJson : JsonSerializerContext;

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(RealtimeView))]
[JsonSerializable(typeof(RealtimeStatusView))]
[JsonSerializable(typeof(AiStatusView))]
[JsonSerializable(typeof(AiDetectionsView))]
[JsonSerializable(typeof(AssetView))]
internal sealed partial class AiJson : JsonSerializerContext;

/// <summary>
/// <c>/api/v1/ai/*</c> (status, one-shot processing, the reference face and background uploads) and
/// <c>/api/v1/realtime_pipeline/status|config</c>. The gateway holds no model: the work runs on a silo
/// (<see cref="IAiSiloGrain"/>), chosen round-robin among the active ones.
/// </summary>
internal static class AiEndpoints
{
    private const int MaxConfigBytes = 64 * 1024;
    private static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan ProcessTimeout = TimeSpan.FromSeconds(60);
    private static int _next;

    public static void MapAiEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/api/v1/ai/status", StatusAsync);
        app.MapPost("/api/v1/ai/process", ProcessAsync);
        app.MapPost("/api/v1/ai/reference", (IGrainFactory g, HttpContext c, IOptions<AiOptions> o) =>
            UploadAsync(g, c, o, AiAssetKind.ReferenceFace)
        );
        app.MapDelete("/api/v1/ai/reference", (IGrainFactory g, HttpContext c) =>
            ClearAsync(g, c, AiAssetKind.ReferenceFace)
        );
        app.MapPost("/api/v1/ai/background", (IGrainFactory g, HttpContext c, IOptions<AiOptions> o) =>
            UploadAsync(g, c, o, AiAssetKind.Background)
        );
        app.MapDelete("/api/v1/ai/background", (IGrainFactory g, HttpContext c) =>
            ClearAsync(g, c, AiAssetKind.Background)
        );
        app.MapGet("/api/v1/realtime_pipeline/status", RealtimeStatusAsync);
        app.MapGet("/api/v1/realtime_pipeline/config", RealtimeConfigAsync);
        app.MapPost("/api/v1/realtime_pipeline/config", PostRealtimeConfigAsync);
    }

    private static IPipelineConfigGrain Pipeline(IGrainFactory grains) =>
        grains.GetGrain<IPipelineConfigGrain>(IPipelineConfigGrain.Key);

    public static RealtimeView View(PipelineConfig c)
    {
        var r = c.Rt;
        return new RealtimeView(
            c.Version,
            r.Enabled,
            r.Workers,
            AiStepNames.Format(r.Steps),
            r.Background,
            r.FaceDetectInterval,
            r.SimpleForward,
            r.DepthMode,
            r.ReferenceVersion,
            [
                .. r.Sources.Select(s => new RealtimeSourceView(
                    s.Source,
                    s.Enabled,
                    s.Steps is { } st ? AiStepNames.Format(st) : null
                )),
            ]
        );
    }

    public static async Task<IResult> StatusAsync(IGrainFactory grains, HttpContext context)
    {
        var (reports, errors) = await SiloReports.AiAsync(grains);
        if (reports.Count == 0 && errors.Count > 0)
            return Problems.Unavailable(context, string.Join("; ", errors));
        PipelineConfig? config = null;
        try
        {
            config = await Pipeline(grains).GetConfig().WaitAsync(CallTimeout);
        }
        catch (Exception e) when (e is TimeoutException or OrleansException)
        {
            errors.Add("pipeline config: " + e.Message);
        }

        // One line for the operator: CUDA as soon as one loaded session runs on it, else CPU with why.
        string provider,
            reason;
        var fallback = reports.Where(r => r.Provider is { Fallback: true }).ToArray();
        if (fallback.Length > 0)
        {
            // Never silent: a GPU that is wanted and not used is the headline, whatever else runs.
            provider = fallback[0].Provider!.Active;
            reason = string.Join("; ", fallback.Select(r => $"{r.Silo}: {r.Provider!.Reason}"));
        }
        else if (SiloReports.RunsOnCuda(reports))
        {
            provider = "CUDA";
            reason = "at least one loaded model runs on the CUDA execution provider";
        }
        else
        {
            provider = "CPU";
            reason = reports.Any(r => r.CudaAvailable)
                ? "CUDA provider present; no model session runs on a gpu device yet (sessions load on first use)"
                : "this ONNX Runtime build offers "
                    + string.Join(", ", reports.SelectMany(r => r.Providers).Distinct())
                    + " (no CUDA provider)";
        }
        // Per model across silos: available when every silo that reports it can load it.
        var models = reports
            .SelectMany(r => r.Models)
            .GroupBy(m => m.Kind)
            .Select(g =>
            {
                var bad = g.FirstOrDefault(m => !m.Available);
                return new AiModelReport(
                    g.Key,
                    g.First().Path,
                    bad is null,
                    bad?.Reason,
                    [.. g.SelectMany(m => m.Sessions)],
                    [.. g.SelectMany(m => m.Providers).Distinct()],
                    g.Select(m => m.Format).FirstOrDefault(f => f is not null)
                );
            })
            .ToArray();
        // The swap engine of the cluster: inswapper only when every silo runs it (else a silo's frames get the mesh).
        var mesh = reports.FirstOrDefault(r => r.SwapEngine != "inswapper");
        var swap =
            reports.Count == 0 ? ("mesh", "no silo reported")
            : mesh is null ? ("inswapper", reports[0].SwapEngineReason)
            : ("mesh", reports.Count > 1 ? $"{mesh.Silo}: {mesh.SwapEngineReason}" : mesh.SwapEngineReason);
        var batches = reports
            .SelectMany(r => r.Batches ?? [])
            .GroupBy(b => b.Model, StringComparer.Ordinal)
            .Select(g =>
            {
                var calls = g.Sum(b => b.Calls);
                var images = g.Sum(b => b.Images);
                return new AiBatchView(
                    g.Key,
                    calls,
                    images,
                    calls == 0 ? 0 : Math.Round((double)images / calls, 2),
                    g.Max(b => b.MaxBatch)
                );
            })
            .OrderBy(b => b.Model, StringComparer.Ordinal)
            .ToArray();
        var view = new AiStatusView(
            provider,
            reason,
            [.. reports.SelectMany(r => r.Providers).Distinct()],
            models,
            [.. reports],
            config is null ? null : View(config),
            [.. errors],
            swap.Item1,
            swap.Item2,
            fallback.Length > 0,
            batches
        );
        return Results.Json(view, AiJson.Default.AiStatusView);
    }

    public static async Task<IResult> ProcessAsync(
        IGrainFactory grains,
        HttpContext context,
        IOptions<AiOptions> options
    )
    {
        var query = context.Request.Query;
        var steps = AiStepNames.Parse(query.TryGetValue("steps", out var sv) ? sv.ToString() : null, out var stepError);
        if (steps is null)
            return Problems.Bad(context, "unknown step", stepError!);
        if (steps == AiSteps.None)
            steps = AiSteps.Detect; // contract: steps defaults to detect
        var format = query.TryGetValue("format", out var fv) ? fv.ToString() : "jpeg";
        if (format is not ("jpeg" or "json"))
            return Problems.Bad(context, "invalid format", $"format must be jpeg or json (got '{Cut(format)}')");

        var (image, error) = await ReadImageAsync(context, options.Value.MaxImageBytes);
        if (image is null)
            return error!;

        PipelineConfig config;
        try
        {
            config = await Pipeline(grains).GetConfig().WaitAsync(CallTimeout);
        }
        catch (Exception e) when (e is TimeoutException or OrleansException)
        {
            return Problems.Unavailable(context, e.Message);
        }
        var rt = config.Rt;
        var request = new AiProcessRequest(
            image,
            steps.Value,
            format == "json",
            rt.Background,
            rt.DepthMode,
            rt.ReferenceVersion,
            config.Global.JpegQuality
        );

        AiProcessResult result;
        try
        {
            var silo = await PickSiloAsync(grains);
            result = await grains.GetGrain<IAiSiloGrain>(silo).Process(request).WaitAsync(ProcessTimeout);
        }
        catch (Exception e) when (e is TimeoutException or OrleansException)
        {
            return Problems.Unavailable(context, e.Message);
        }
        if (result.Status != 200)
            return Results.Problem(
                title: result.Title,
                detail: result.Detail,
                statusCode: result.Status,
                instance: context.Request.Path
            );
        context.Response.Headers["X-Blankend-Silo"] = result.Silo;
        context.Response.Headers["X-Blankend-Provider"] = result.Provider;
        if (format == "json")
        {
            return Results.Json(
                new AiDetectionsView(
                    result.Width,
                    result.Height,
                    result.Faces,
                    result.StepMs,
                    result.Notes,
                    result.Silo,
                    result.Device,
                    result.Provider
                ),
                AiJson.Default.AiDetectionsView
            );
        }
        return Results.Bytes(result.Jpeg!, "image/jpeg");
    }

    private static async Task<string> PickSiloAsync(IGrainFactory grains)
    {
        var hosts = await grains.GetGrain<IManagementGrain>(0).GetHosts(onlyActive: true).WaitAsync(CallTimeout);
        if (hosts.Count == 0)
            throw new OrleansException("no active silo");
        var keys = hosts.Keys.Select(k => k.ToParsableString()).Order(StringComparer.Ordinal).ToArray();
        return keys[(int)((uint)Interlocked.Increment(ref _next) % (uint)keys.Length)];
    }

    public static async Task<IResult> UploadAsync(
        IGrainFactory grains,
        HttpContext context,
        IOptions<AiOptions> options,
        AiAssetKind kind
    )
    {
        var (image, error) = await ReadImageAsync(context, options.Value.MaxImageBytes);
        if (image is null)
            return error!;
        try
        {
            var check = await grains
                .GetGrain<IAiSiloGrain>(await PickSiloAsync(grains))
                .CheckAsset(kind, image)
                .WaitAsync(ProcessTimeout);
            if (check is not null)
            {
                return check.Contains("unavailable", StringComparison.Ordinal)
                    ? Results.Problem(
                        title: "model unavailable",
                        detail: check,
                        statusCode: 503,
                        instance: context.Request.Path
                    )
                    : Problems.Bad(
                        context,
                        kind == AiAssetKind.ReferenceFace ? "unusable reference face" : "unusable background",
                        check
                    );
            }
            var version = await grains
                .GetGrain<IAiAssetGrain>(IAiAssetGrain.Key)
                .Set(kind, image)
                .WaitAsync(CallTimeout);
            var update = await ApplyVersionAsync(grains, kind, version);
            if (update.Error is not null)
                return Problems.Bad(context, "invalid realtime config", update.Error);
            return Results.Json(new AssetView(Name(kind), version, image.Length), AiJson.Default.AssetView);
        }
        catch (Exception e) when (e is TimeoutException or OrleansException)
        {
            return Problems.Unavailable(context, e.Message);
        }
    }

    public static async Task<IResult> ClearAsync(IGrainFactory grains, HttpContext context, AiAssetKind kind)
    {
        try
        {
            await grains.GetGrain<IAiAssetGrain>(IAiAssetGrain.Key).Clear(kind).WaitAsync(CallTimeout);
            await ApplyVersionAsync(grains, kind, 0);
            return Results.Json(new AssetView(Name(kind), 0, 0), AiJson.Default.AssetView);
        }
        catch (Exception e) when (e is TimeoutException or OrleansException)
        {
            return Problems.Unavailable(context, e.Message);
        }
    }

    /// <summary>Names the new asset version in the pipeline config, so every silo fetches it on its next frame.
    /// An uploaded background becomes the matte's background; removing it goes back to the colour.</summary>
    private static async Task<ConfigChangeResult> ApplyVersionAsync(
        IGrainFactory grains,
        AiAssetKind kind,
        long version
    )
    {
        var pipeline = Pipeline(grains);
        if (kind == AiAssetKind.ReferenceFace)
            return await pipeline
                .UpdateRealtime(new RealtimeConfigUpdate(ReferenceVersion: version))
                .WaitAsync(CallTimeout);
        var bg = (await pipeline.GetConfig().WaitAsync(CallTimeout)).Rt.Background;
        bg =
            version > 0
                ? bg with
                {
                    Kind = "image",
                    ImageVersion = version,
                }
                : bg with
                {
                    Kind = bg.Kind == "image" ? "color" : bg.Kind,
                    ImageVersion = 0,
                };
        return await pipeline.UpdateRealtime(new RealtimeConfigUpdate(Background: bg)).WaitAsync(CallTimeout);
    }

    private static string Name(AiAssetKind kind) => kind == AiAssetKind.ReferenceFace ? "reference_face" : "background";

    public static async Task<IResult> RealtimeConfigAsync(IGrainFactory grains, HttpContext context)
    {
        try
        {
            return Results.Json(
                View(await Pipeline(grains).GetConfig().WaitAsync(CallTimeout)),
                AiJson.Default.RealtimeView
            );
        }
        catch (Exception e) when (e is TimeoutException or OrleansException)
        {
            return Problems.Unavailable(context, e.Message);
        }
    }

    public static async Task<IResult> RealtimeStatusAsync(IGrainFactory grains, HttpContext context)
    {
        PipelineStatus status;
        PipelineConfig config;
        try
        {
            config = await Pipeline(grains).GetConfig().WaitAsync(CallTimeout);
            status = await Pipeline(grains).GetStatus().WaitAsync(CallTimeout);
        }
        catch (Exception e) when (e is TimeoutException or OrleansException)
        {
            return Problems.Unavailable(context, e.Message);
        }
        var (reports, errors) = await SiloReports.AiAsync(grains);
        // Per step across silos: runs and frames add up; the ms is the frame-weighted mean.
        var steps = reports
            .SelectMany(r => r.Steps)
            .GroupBy(s => s.Name)
            .Select(g =>
            {
                var frames = g.Sum(s => s.Frames);
                var ms = frames == 0 ? 0 : g.Sum(s => s.MsPerFrame * s.Frames) / frames;
                var skips = new Dictionary<string, long>(StringComparer.Ordinal);
                foreach (var s in g)
                foreach (var (k, v) in s.Skipped)
                    skips[k] = skips.GetValueOrDefault(k) + v;
                return new AiStepReport(
                    g.Key,
                    g.Sum(s => s.Runs),
                    frames,
                    Math.Round(ms, 3),
                    g.Last().LastMs,
                    skips,
                    g.First().Status
                );
            })
            .OrderBy(s => s.Name, StringComparer.Ordinal)
            .ToArray();
        var sources = status.Sources.Where(s => s.Settings.ActiveAiSteps != AiSteps.None).ToArray();
        return Results.Json(
            new RealtimeStatusView(View(config), sources, steps, status.Devices, [.. errors]),
            AiJson.Default.RealtimeStatusView
        );
    }

    public static async Task<IResult> PostRealtimeConfigAsync(IGrainFactory grains, HttpContext context)
    {
        var (parsed, invalid) = await RequestBody.ReadJsonAsync(
            context,
            MaxConfigBytes,
            AiRequestJson.Default.RealtimeConfigBody,
            "invalid realtime config",
            Cut
        );
        if (parsed is null)
            return invalid!;

        AiSteps? steps = null;
        if (parsed.Steps is not null)
        {
            steps = AiStepNames.Parse(parsed.Steps, out var stepError);
            if (steps is null)
                return Problems.Bad(context, "invalid realtime config", "steps: " + stepError);
        }
        PipelineConfig current;
        try
        {
            current = await Pipeline(grains).GetConfig().WaitAsync(CallTimeout);
        }
        catch (Exception e) when (e is TimeoutException or OrleansException)
        {
            return Problems.Unavailable(context, e.Message);
        }
        MatteBackground? background = null;
        if (parsed.Background is { } b)
        {
            var old = current.Rt.Background;
            background = old with
            {
                Kind = b.Kind ?? old.Kind,
                Color = b.Color ?? old.Color,
                BlurRadius = b.BlurRadius ?? old.BlurRadius,
            };
            if (background.Kind == "image" && old.ImageVersion == 0)
                return Problems.Bad(
                    context,
                    "invalid realtime config",
                    "background.kind image needs an uploaded background: POST /api/v1/ai/background first"
                );
        }
        var update = new RealtimeConfigUpdate(
            parsed.Source,
            parsed.Enabled,
            parsed.Workers,
            steps,
            background,
            parsed.FaceDetectInterval,
            parsed.SimpleForward,
            parsed.DepthMode,
            null,
            parsed.Reset ?? false
        );
        if (RealtimeRules.Validate(update) is { } error)
            return Problems.Bad(context, "invalid realtime config", error);
        if (update == new RealtimeConfigUpdate())
            return Problems.Bad(context, "invalid realtime config", "no setting given");

        ConfigChangeResult result;
        try
        {
            result = await Pipeline(grains).UpdateRealtime(update).WaitAsync(CallTimeout);
        }
        catch (Exception e) when (e is TimeoutException or OrleansException)
        {
            return Problems.Unavailable(context, e.Message);
        }
        if (result.Error is not null)
            return Problems.Bad(context, "invalid realtime config", result.Error);
        return Results.Json(View(result.Config), AiJson.Default.RealtimeView);
    }

    /// <summary>Reads an uploaded image: JPEG or PNG by its magic bytes (the content type, when given, must be an
    /// image type or octet-stream), at most <paramref name="max"/> bytes.</summary>
    private static async Task<(byte[]? Image, IResult? Error)> ReadImageAsync(HttpContext context, int max)
    {
        var type = context.Request.ContentType;
        if (
            type is not null
            && !(
                type.StartsWith("image/jpeg", StringComparison.OrdinalIgnoreCase)
                || type.StartsWith("image/png", StringComparison.OrdinalIgnoreCase)
                || type.StartsWith("application/octet-stream", StringComparison.OrdinalIgnoreCase)
            )
        )
            return (
                null,
                Problems.Bad(
                    context,
                    "unsupported content type",
                    $"the body must be image/jpeg or image/png (got '{Cut(type)}')"
                )
            );
        if (context.Request.ContentLength > max)
            return (null, Too(context, max));
        var (body, tooLarge) = await RequestBody.ReadAsync(context, max);
        if (tooLarge)
            return (null, Too(context, max));
        if (body!.Length == 0)
            return (
                null,
                Problems.Bad(context, "empty body", "send the image as the request body (image/jpeg or image/png)")
            );
        if (!ImageSniffer.IsJpegOrPng(body))
            return (
                null,
                Problems.Bad(context, "not an image", $"the body ({body.Length} bytes) is not a JPEG or PNG")
            );
        return (body, null);
    }

    private static IResult Too(HttpContext context, int max) =>
        Results.Problem(
            title: "body too large",
            detail: $"at most {max} bytes (ai:max_image_bytes)",
            statusCode: StatusCodes.Status413PayloadTooLarge,
            instance: context.Request.Path
        );

    private static string Cut(string s) => s.Length > 60 ? s[..60] + "..." : s;
}
