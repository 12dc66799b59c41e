using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace Blankend.Orleans.Configuration;

/// <summary>Section <c>limits</c>: resource caps. A request over one is refused with 429 problem+json before any
/// WebSocket upgrade and counted in <c>blankend.limits.refused</c>; what is already open keeps working.
/// The defaults leave room for the benchmarks (hundreds of viewers from one address).</summary>
public sealed class LimitsOptions
{
    public const string Section = "limits";

    /// <summary>WebSocket connections (/video_in, /video_codec, /video_out) open on this gateway at once.</summary>
    [ConfigurationKeyName("max_connections")]
    public int MaxConnections { get; set; } = 4096;

    /// <summary>WebSocket connections open at once from one client IP address.</summary>
    [ConfigurationKeyName("max_connections_per_ip")]
    public int MaxConnectionsPerIp { get; set; } = 1024;

    /// <summary>Distinct live sources in this process: ids with an open /video_in or /video_codec connection, and
    /// (where the bus link runs in the same process) ids heard on the bus within
    /// <c>stream.idle_timeout_s</c>.</summary>
    [ConfigurationKeyName("max_sources")]
    public int MaxSources { get; set; } = 1024;

    /// <summary>Distinct source ids a bus link accepts within <c>stream.idle_timeout_s</c>; messages of a new id
    /// beyond it are dropped (counted, reason <c>too_many_sources</c>).</summary>
    [ConfigurationKeyName("max_bus_sources")]
    public int MaxBusSources { get; set; } = 1024;

    /// <summary>/video_codec connections (each one an ffmpeg decode session) open on this gateway at once.</summary>
    [ConfigurationKeyName("max_codec_sessions")]
    public int MaxCodecSessions { get; set; } = 64;

    /// <summary>Live recordings (each one an ffmpeg libx264 process), counted from the recordings folder's
    /// registry: cluster-wide when the folder is shared, per host otherwise. A start beyond it answers 429.</summary>
    [ConfigurationKeyName("max_recordings")]
    public int MaxRecordings { get; set; } = 16;
}

public sealed class LimitsOptionsValidator : IValidateOptions<LimitsOptions>
{
    public ValidateOptionsResult Validate(string? name, LimitsOptions o)
    {
        var f = new Failures();
        f.Range("limits:max_connections", o.MaxConnections, 1, 1_000_000);
        f.Range("limits:max_connections_per_ip", o.MaxConnectionsPerIp, 1, 1_000_000);
        f.Range("limits:max_sources", o.MaxSources, 1, 1_000_000);
        f.Range("limits:max_bus_sources", o.MaxBusSources, 1, 1_000_000);
        f.Range("limits:max_codec_sessions", o.MaxCodecSessions, 0, 100_000);
        f.Range("limits:max_recordings", o.MaxRecordings, 0, 10_000);
        return f.Result;
    }
}
