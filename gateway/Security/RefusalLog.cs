namespace Blankend.Orleans.Gateway.Security;

/// <summary>At most one refusal line a second per kind (a client hammering a closed door must not flood the log);
/// the next line says how many were not written. Every refusal is still counted in the metrics.</summary>
internal sealed class RefusalLog
{
    private readonly Lock _gate = new();
    private long _next;
    private int _skipped;

    /// <returns>True when this refusal gets a line; <paramref name="skipped"/> = refusals not logged since the last one.</returns>
    public bool TryEnter(out int skipped)
    {
        var now = Environment.TickCount64;
        lock (_gate)
        {
            if (now < _next)
            {
                _skipped++;
                skipped = 0;
                return false;
            }
            _next = now + 1000;
            skipped = _skipped;
            _skipped = 0;
            return true;
        }
    }
}
