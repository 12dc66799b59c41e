using Blankend.Orleans.Ai;
using Blankend.Orleans.Codec;

namespace Blankend.Orleans.Gateway.Cluster;

/// <summary>
/// Asks every active silo for its own report through a grain placed on that silo (key: the silo address), in
/// parallel: the per-silo status APIs (codec, AI) never read a stale registry. A silo that does not answer in
/// time is listed with why; an unreachable cluster is one error with key "*".
/// </summary>
internal static class SiloReports
{
    public static async Task<(List<T> Reports, List<(string Silo, string Error)> Errors)> CollectAsync<T>(
        IGrainFactory grains,
        Func<string, Task<T>> ask,
        TimeSpan timeout
    )
        where T : class
    {
        var reports = new List<T>();
        var errors = new List<(string, string)>();
        Dictionary<SiloAddress, SiloStatus> hosts;
        try
        {
            hosts = await grains.GetGrain<IManagementGrain>(0).GetHosts(onlyActive: true).WaitAsync(timeout);
        }
        catch (Exception e) when (e is TimeoutException or OrleansException)
        {
            errors.Add(("*", "cluster unreachable: " + e.Message));
            return (reports, errors);
        }
        var calls = hosts
            .Keys.Select(async silo =>
            {
                var key = silo.ToParsableString();
                try
                {
                    return (key, await ask(key).WaitAsync(timeout), (string?)null);
                }
                catch (Exception e)
                {
                    return (key, (T?)null, $"{e.GetType().Name}: {e.Message}");
                }
            })
            .ToList();
        foreach (var (key, report, error) in await Task.WhenAll(calls))
        {
            if (report is not null)
                reports.Add(report);
            else
                errors.Add((key, error!));
        }
        return (reports, errors);
    }

    /// <summary>How long one silo may take to answer a status question.</summary>
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    /// <summary>Every silo's AI report (models, providers, steps), sorted by silo.</summary>
    public static async Task<(List<AiSiloReport> Reports, List<string> Errors)> AiAsync(IGrainFactory grains)
    {
        var (reports, errors) = await CollectAsync(
            grains,
            key => grains.GetGrain<IAiSiloGrain>(key).GetReport(),
            Timeout
        );
        reports.Sort((a, b) => string.CompareOrdinal(a.Silo, b.Silo));
        return (reports, errors.ConvertAll(e => $"{e.Silo}: {e.Error}"));
    }

    /// <summary>Every silo's codec report (ffmpeg, decoders, sessions), sorted by silo.</summary>
    public static async Task<(List<CodecSiloReport> Reports, List<CodecSiloError> Errors)> CodecAsync(
        IGrainFactory grains
    )
    {
        var (reports, errors) = await CollectAsync(
            grains,
            key => grains.GetGrain<ICodecSiloGrain>(key).GetReport(),
            Timeout
        );
        reports.Sort((a, b) => string.CompareOrdinal(a.Silo, b.Silo));
        return (reports, errors.ConvertAll(e => new CodecSiloError(e.Silo, e.Error)));
    }

    /// <summary>True as soon as one loaded model session of any silo runs on the CUDA execution provider.</summary>
    public static bool RunsOnCuda(IEnumerable<AiSiloReport> reports) =>
        reports.Any(r => r.Models.Any(m => m.Providers.Contains(AiProviders.Cuda)));
}

/// <summary>A silo that did not give its codec report, and why.</summary>
internal sealed record CodecSiloError(string Silo, string Error);
