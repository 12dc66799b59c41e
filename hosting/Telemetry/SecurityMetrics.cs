using System.Diagnostics.Metrics;

namespace Blankend.Orleans.Telemetry;

/// <summary>Access control and limits (docs/security.md, docs/operations.md): every refusal is counted here, on the
/// project's meter. Tags are pre-built, as in <see cref="BlankendMetrics"/>.</summary>
public static class SecurityMetrics
{
    public static readonly Counter<long> RequestsRefused = BlankendMetrics.Meter.CreateCounter<long>(
        "blankend.requests.refused",
        "{request}",
        "HTTP requests refused by access control, by reason: no_token, invalid_token (401), forbidden, origin (403), host (400), content_type (415)."
    );

    public static readonly Counter<long> LimitsRefused = BlankendMetrics.Meter.CreateCounter<long>(
        "blankend.limits.refused",
        "{request}",
        "Connections or messages refused by a limit, by limit: connections, connections_per_ip, sources, codec_sessions (429 before the upgrade), bus_sources (bus message dropped)."
    );

    public static readonly Counter<long> IdleClosed = BlankendMetrics.Meter.CreateCounter<long>(
        "blankend.ingest.idle_closed",
        "{connection}",
        "Ingest sockets closed with 1001 after stream.idle_timeout_s without a message, by endpoint."
    );

    public static void Refused(KeyValuePair<string, object?> reason) => RequestsRefused.Add(1, reason);

    public static void Limit(KeyValuePair<string, object?> limit) => LimitsRefused.Add(1, limit);

    public static class Reasons
    {
        public static readonly KeyValuePair<string, object?> NoToken = new("reason", "no_token");
        public static readonly KeyValuePair<string, object?> InvalidToken = new("reason", "invalid_token");
        public static readonly KeyValuePair<string, object?> Forbidden = new("reason", "forbidden");
        public static readonly KeyValuePair<string, object?> Origin = new("reason", "origin");
        public static readonly KeyValuePair<string, object?> Host = new("reason", "host");
        public static readonly KeyValuePair<string, object?> ContentType = new("reason", "content_type");
    }

    public static class Limits
    {
        public static readonly KeyValuePair<string, object?> Connections = new("limit", "connections");
        public static readonly KeyValuePair<string, object?> ConnectionsPerIp = new("limit", "connections_per_ip");
        public static readonly KeyValuePair<string, object?> Sources = new("limit", "sources");
        public static readonly KeyValuePair<string, object?> CodecSessions = new("limit", "codec_sessions");
        public static readonly KeyValuePair<string, object?> BusSources = new("limit", "bus_sources");
    }
}
