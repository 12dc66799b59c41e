using Blankend.Orleans.Gateway.Telemetry;

namespace Blankend.Orleans.Gateway.Security;

/// <summary>At most one refusal line a second per kind (a client hammering a closed door must not flood the log);
/// the next line says how many were not written. Every refusal is still counted in the metrics.</summary>
internal sealed class RefusalLog
{
    private readonly Lock _gate = new();
    private LogRateLimit _limit;

    /// <returns>True when this refusal gets a line; <paramref name="skipped"/> = refusals not logged since the last
    /// one.</returns>
    public bool TryEnter(out int skipped)
    {
        lock (_gate)
            return _limit.TryEnter(out skipped);
    }
}
