using System.Diagnostics;
using Blankend.Orleans.Ai;
using Blankend.Orleans.Configuration;
using Blankend.Orleans.Gateway.Cluster;
using Blankend.Orleans.Gateway.Health;
using Blankend.Orleans.Processing;
using Microsoft.Extensions.Options;

namespace Blankend.Orleans.Gateway.Health;

/// <summary>
/// Runs every <see cref="IHealthComponent"/> registered in DI, concurrently and each within
/// <see cref="CheckTimeout"/>, and folds them into one status: <c>unavailable</c> (503) when a critical component
/// is unavailable, <c>degraded</c> when any component is degraded or a non-critical one is unavailable, else
/// <c>ok</c>. <c>disabled</c> and <c>not_configured</c> components do not count.
/// </summary>
internal sealed class HealthService
{
    public static readonly TimeSpan CheckTimeout = TimeSpan.FromSeconds(2);

    private readonly IHealthComponent[] _components;

    public HealthService(IEnumerable<IHealthComponent> registered)
    {
        var list = registered.ToList();
        // The cluster first, then the order of registration: a stable, readable body.
        _components = [.. list.OrderBy(c => c.Name == ClusterHealthComponent.ComponentName ? 0 : 1)];
    }

    public IReadOnlyList<IHealthComponent> Components => _components;

    public async Task<HealthReport> CheckAsync(string mode, CancellationToken ct)
    {
        var checks = new Task<ComponentHealth>[_components.Length];
        for (var i = 0; i < _components.Length; i++)
            checks[i] = CheckOneAsync(_components[i], ct);
        await Task.WhenAll(checks);

        var results = new Dictionary<string, ComponentHealth>(StringComparer.Ordinal);
        var status = HealthStates.Ok;
        for (var i = 0; i < _components.Length; i++)
        {
            var component = _components[i];
            var result = checks[i].Result;
            results[component.Name] = result;
            if (result.State == HealthStates.Unavailable && component.Critical)
                status = HealthStates.Unavailable;
            else if (status == HealthStates.Ok && result.State is HealthStates.Degraded or HealthStates.Unavailable)
                status = HealthStates.Degraded;
        }
        return new HealthReport(status, mode, results);
    }

    private static async Task<ComponentHealth> CheckOneAsync(IHealthComponent component, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(CheckTimeout);
        try
        {
            return await component.CheckAsync(timeout.Token).WaitAsync(CheckTimeout, ct);
        }
        catch (Exception e) when (!ct.IsCancellationRequested)
        {
            var why = e is TimeoutException or OperationCanceledException
                ? $"no answer within {CheckTimeout.TotalSeconds:0} s"
                : $"{e.GetType().Name}: {e.Message}";
            return new ComponentHealth(HealthStates.Unavailable, why);
        }
    }
}

/// <summary>The cluster answers: a round trip to the source directory grain. Critical: without it no frame
/// flows.</summary>
internal sealed class ClusterHealthComponent(IGrainFactory grains) : IHealthComponent
{
    public const string ComponentName = "cluster";

    public string Name => ComponentName;

    public bool Critical => true;

    public async Task<ComponentHealth> CheckAsync(CancellationToken cancellationToken)
    {
        var watch = Stopwatch.StartNew();
        var silo = await grains
            .GetGrain<ISourceDirectoryGrain>(ISourceDirectoryGrain.Key)
            .Ping()
            .WaitAsync(cancellationToken);
        return new ComponentHealth(
            HealthStates.Ok,
            $"answered by {silo}",
            Math.Round(watch.Elapsed.TotalMilliseconds, 3)
        );
    }
}

/// <summary>
/// The ZeroMQ bus link, as the silo holding it reports (docs/protocol.md). Never critical: cameras and viewers
/// keep working without the bus, so a down link is <c>degraded</c> with 200, never 503.
/// </summary>
internal sealed class BusHealthComponent(IGrainFactory grains, GatewayMode mode, IOptions<StreamOptions> stream)
    : IHealthComponent
{
    public string Name => "bus";

    public bool Critical => false;

    public async Task<ComponentHealth> CheckAsync(CancellationToken cancellationToken)
    {
        var relay = await RelayQuery.StatusAsync(grains, mode, stream.Value);
        return relay.State switch
        {
            "connected" => new ComponentHealth(
                HealthStates.Ok,
                $"'{relay.Identity}' connected to {relay.Endpoint} (silo {relay.Silo})"
            ),
            "disabled" => new ComponentHealth(HealthStates.Disabled, relay.Detail),
            _ => new ComponentHealth(HealthStates.Degraded, $"{relay.State}: {relay.Detail}"),
        };
    }
}

/// <summary>
/// ffmpeg decoders on the silos (docs/codec.md). Not critical: without ffmpeg only <c>/video_codec</c> and recording
/// stop working, JPEG cameras and viewers do not, so a missing decoder shows as <c>degraded</c> with 200.
/// </summary>
internal sealed class DecodersHealthComponent(IGrainFactory grains) : IHealthComponent
{
    public string Name => "decoders";

    public bool Critical => false;

    /// <summary>Decoders are a capability, never a reason for 503.</summary>
    public async Task<ComponentHealth> CheckAsync(CancellationToken cancellationToken)
    {
        var (reports, errors) = await SiloReports.CodecAsync(grains).WaitAsync(cancellationToken);
        if (reports.Count == 0)
            return new ComponentHealth(HealthStates.Degraded, errors.FirstOrDefault()?.Error ?? "no silo answered");
        var ok = reports.Where(r => r.Ffmpeg.State == "ok").ToList();
        if (ok.Count == 0)
        {
            var probing = reports.Any(r => r.Ffmpeg.State == "probing");
            return new ComponentHealth(
                probing ? "starting" : HealthStates.Degraded,
                probing ? "probing ffmpeg" : reports[0].Ffmpeg.Error ?? "ffmpeg unavailable"
            );
        }
        var gpu = ok.Any(r => r.Gpu.Usable);
        return new ComponentHealth(
            HealthStates.Ok,
            $"ffmpeg on {ok.Count}/{reports.Count} silo(s); {(gpu ? "GPU (NVDEC)" : "CPU")} decoding; "
                + string.Join(", ", ok[0].Selected.Select(kv => $"{kv.Key}: {kv.Value}"))
        );
    }
}

/// <summary>
/// The AI models on the silos (docs/ai.md). Not critical: without a model only its step stops (skipped,
/// counted) and frames keep flowing, so a model that an enabled realtime step needs and cannot load shows as
/// <c>degraded</c> with 200; optional models that are not configured are listed, not held against the service.
/// </summary>
internal sealed class ModelsHealthComponent(IGrainFactory grains) : IHealthComponent
{
    public string Name => "models";

    public bool Critical => false;

    public async Task<ComponentHealth> CheckAsync(CancellationToken cancellationToken)
    {
        var (reports, errors) = await SiloReports.AiAsync(grains).WaitAsync(cancellationToken);
        if (reports.Count == 0)
            return new ComponentHealth(HealthStates.Degraded, "no silo answered: " + string.Join("; ", errors));
        var config = await grains
            .GetGrain<IPipelineConfigGrain>(IPipelineConfigGrain.Key)
            .GetConfig()
            .WaitAsync(cancellationToken);
        var rt = config.Rt;
        var needed = new HashSet<string>(StringComparer.Ordinal);
        if (rt.Enabled && !rt.SimpleForward)
        {
            var steps = AiStepNames.WithPrerequisites(rt.Steps);
            foreach (var s in rt.Sources)
                if (s.Steps is { } st)
                    steps |= AiStepNames.WithPrerequisites(st);
            var rvm = reports
                .SelectMany(r => r.Models)
                .Any(m => m.Kind == AiModels.Name(AiModelKind.Rvm) && m.Path is not null);
            foreach (var (_, step) in AiStepNames.All)
            {
                if ((steps & step) == 0)
                    continue;
                foreach (var kind in AiModels.Needs(step, rvm))
                    needed.Add(AiModels.Name(kind));
            }
        }
        var missing = reports
            .SelectMany(r =>
                r.Models.Where(m => needed.Contains(m.Kind) && !m.Available)
                    .Select(m => $"{r.Silo}: {m.Kind}: {m.Reason}")
            )
            .ToArray();
        var available = reports
            .SelectMany(r => r.Models)
            .Where(m => m.Available)
            .Select(m => m.Kind)
            .Distinct()
            .Order(StringComparer.Ordinal);
        var provider = SiloReports.RunsOnCuda(reports) ? AiProviders.Cuda : AiProviders.Cpu;
        var detail =
            $"available: {string.Join(", ", available)}; provider {provider}; realtime pipeline {(rt.Enabled ? "on (" + AiStepNames.Format(rt.Steps) + ")" : "off")}";
        // A GPU that is wanted and not used (docs/ai.md, "Providers"): degraded whether or not a step runs yet.
        var fallback = reports
            .Where(r => r.Provider is { Fallback: true })
            .Select(r =>
                $"{r.Silo}: ai.provider {r.Provider!.Requested} runs on {r.Provider.Active}"
                + (r.Provider.MissingLibrary is { } lib ? $", missing {lib}" : "")
                + $" ({r.Provider.Reason})"
            )
            .ToArray();
        var problems = new List<string>();
        if (fallback.Length > 0)
            problems.Add("GPU provider fallback: " + string.Join("; ", fallback));
        if (missing.Length > 0)
            problems.Add("an enabled step's model is unavailable: " + string.Join("; ", missing));
        return problems.Count > 0
            ? new ComponentHealth(HealthStates.Degraded, string.Join("; ", problems) + "; " + detail)
            : new ComponentHealth(HealthStates.Ok, detail);
    }
}
