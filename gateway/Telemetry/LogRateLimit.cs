namespace Blankend.Orleans.Gateway.Telemetry;

/// <summary>At most one log line a second; counts the lines left out so the next one can say how many. Not
/// thread-safe: a limit shared by several threads is guarded by its owner.</summary>
internal struct LogRateLimit
{
    private long _next;
    private int _skipped;

    /// <returns>True when this event gets a line; <paramref name="skipped"/> = events not logged since the last
    /// one.</returns>
    public bool TryEnter(out int skipped)
    {
        var now = Environment.TickCount64;
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
