namespace Blankend.Orleans.Gateway.Endpoints;

/// <summary>
/// Asks every active silo for its own report through a grain placed on that silo (key: the silo address), in
/// parallel: the per-silo status APIs (codec, AI) never read a stale registry. A silo that does not answer in
/// time is listed with why; an unreachable cluster is one error with key "*".
/// </summary>
public static class SiloReports
{
    public static async Task<(List<T> Reports, List<(string Silo, string Error)> Errors)> CollectAsync<T>(
        IGrainFactory grains, Func<string, Task<T>> ask, TimeSpan timeout) where T : class
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
        var calls = hosts.Keys.Select(async silo =>
        {
            var key = silo.ToParsableString();
            try { return (key, await ask(key).WaitAsync(timeout), (string?)null); }
            catch (Exception e) { return (key, (T?)null, $"{e.GetType().Name}: {e.Message}"); }
        }).ToList();
        foreach (var (key, report, error) in await Task.WhenAll(calls))
        {
            if (report is not null) reports.Add(report);
            else errors.Add((key, error!));
        }
        return (reports, errors);
    }
}
