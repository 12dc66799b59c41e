using Microsoft.Extensions.Options;

namespace Blankend.Orleans.Configuration;

/// <summary>Collects failures as "section:key ..." so a bad value stops start-up naming the key.</summary>
internal sealed class Failures
{
    private List<string>? _items;

    public void Range(string key, long value, long min, long max)
    {
        if (value < min || value > max)
            Add($"{key} must be between {min} and {max} (got {value})");
    }

    public void NotEmpty(string key, string? value)
    {
        if (string.IsNullOrWhiteSpace(value))
            Add($"{key} must not be empty");
    }

    public void OneOf(string key, string value, params string[] allowed)
    {
        if (Array.IndexOf(allowed, value) < 0)
            Add($"{key} must be one of {string.Join(", ", allowed)} (got '{value}')");
    }

    public void ClientId(string key, string value)
    {
        if (!ClientIds.IsValid(value, out var why))
            Add($"{key}: {why}");
    }

    public void Add(string message) => (_items ??= []).Add(message);

    public ValidateOptionsResult Result =>
        _items is null ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(_items);
}

public sealed class StreamOptionsValidator : IValidateOptions<StreamOptions>
{
    public ValidateOptionsResult Validate(string? name, StreamOptions o)
    {
        var f = new Failures();
        f.ClientId("stream:default_client_id", o.DefaultClientId);
        f.Range("stream:max_frame_bytes", o.MaxFrameBytes, 1024, 64 * 1024 * 1024);
        f.Range("stream:idle_timeout_s", o.IdleTimeoutSeconds, 0, 86_400);
        f.NotEmpty("stream:zmq_endpoint", o.ZmqEndpoint);
        if (!o.ZmqEndpoint.Contains("://", StringComparison.Ordinal))
            f.Add($"stream:zmq_endpoint must look like tcp://host:port (got '{o.ZmqEndpoint}')");
        f.NotEmpty("stream:zmq_identity", o.ZmqIdentity);
        f.Range("stream:send_queue_size", o.SendQueueSize, 1, 1_000_000);
        if (o.ForwardRecvEnabled)
            f.ClientId("stream:forward_recv_client_id", o.ForwardRecvClientId);
        f.Range("stream:heartbeat_interval_ms", o.HeartbeatIntervalMs, 50, 3_600_000);
        f.NotEmpty("stream:link_request_client_id", o.LinkRequestClientId);
        if (
            !o.LinkRequestClientId.StartsWith(ClientIds.ReservedPrefix, StringComparison.Ordinal)
            || o.LinkRequestClientId == BusControlIds.Heartbeat
            || o.LinkRequestClientId.Length > ClientIds.MaxLength
        )
            f.Add(
                $"stream:link_request_client_id must be a reserved control id: start with '{ClientIds.ReservedPrefix}', differ from '{BusControlIds.Heartbeat}', at most {ClientIds.MaxLength} characters (got '{o.LinkRequestClientId}')"
            );
        f.Range("stream:link_request_interval_ms", o.LinkRequestIntervalMs, 100, 3_600_000);
        f.Range("stream:jpeg_quality", o.JpegQuality, 1, 100);
        return f.Result;
    }
}

public sealed class ClusterSettingsValidator : IValidateOptions<ClusterSettings>
{
    public ValidateOptionsResult Validate(string? name, ClusterSettings o)
    {
        var f = new Failures();
        f.OneOf("cluster:mode", o.Mode, "embedded", "client");
        f.OneOf("cluster:clustering", o.Clustering, "localhost", "redis", "postgres");
        if (o.Clustering == "redis")
            f.NotEmpty("cluster:redis", o.Redis);
        if (o.Clustering == "postgres")
            f.NotEmpty("cluster:postgres", o.Postgres);
        if (o.AdvertisedIp != "auto" && !System.Net.IPAddress.TryParse(o.AdvertisedIp, out _))
            f.Add($"cluster:advertised_ip must be an IP address or 'auto' (got '{o.AdvertisedIp}')");
        f.NotEmpty("cluster:cluster_id", o.ClusterId);
        f.NotEmpty("cluster:service_id", o.ServiceId);
        f.Range("cluster:silo_port", o.SiloPort, 1, 65535);
        f.Range("cluster:gateway_port", o.GatewayPort, 1, 65535);
        f.Range("cluster:primary_silo_port", o.PrimarySiloPort, 1, 65535);
        foreach (var p in o.GatewayPorts)
            f.Range("cluster:gateway_ports", p, 1, 65535);
        f.Range("cluster:observer_refresh_ms", o.ObserverRefreshMs, 100, 600_000);
        f.Range("cluster:grain_idle_s", o.GrainIdleSeconds, 5, 86_400);
        f.Range("cluster:probe_timeout_ms", o.ProbeTimeoutMs, 100, 60_000);
        f.Range("cluster:missed_probes_limit", o.MissedProbesLimit, 1, 10);
        f.Range("cluster:death_votes", o.DeathVotes, 1, 10);
        f.Range("cluster:death_vote_expiration_s", o.DeathVoteExpirationSeconds, 5, 3600);
        f.Range("cluster:gateway_list_refresh_ms", o.GatewayListRefreshMs, 100, 600_000);
        f.Range("cluster:metrics_port", o.MetricsPort, 0, 65535);
        // Files are read only when TLS is on: missing, unreadable, no key, expired, not chaining to the CA.
        if (o.Tls.Enabled)
        {
            foreach (var error in Hosting.ClusterTls.Check(o.Tls, clientOnly: o.Mode == "client"))
                f.Add(error);
        }
        return f.Result;
    }
}

public sealed class GatewaySettingsValidator : IValidateOptions<GatewaySettings>
{
    public ValidateOptionsResult Validate(string? name, GatewaySettings o)
    {
        var f = new Failures();
        f.Range("gateway:viewer_queue_size", o.ViewerQueueSize, 1, 1024);
        f.Range("gateway:ingest_queue_size", o.IngestQueueSize, 1, 1024);
        f.Range("gateway:websocket_keepalive_s", o.WebSocketKeepAliveSeconds, 0, 3600);
        return f.Result;
    }
}

public sealed class TelemetryOptionsValidator : IValidateOptions<TelemetryOptions>
{
    public ValidateOptionsResult Validate(string? name, TelemetryOptions o)
    {
        var f = new Failures();
        f.Range("telemetry:stats_log_interval_s", o.StatsLogIntervalSeconds, 0, 86_400);
        f.Range("telemetry:trace_sample_every", o.TraceSampleEvery, 0, 100_000_000);
        return f.Result;
    }
}

public sealed class VideoProcessingOptionsValidator : IValidateOptions<VideoProcessingOptions>
{
    public ValidateOptionsResult Validate(string? name, VideoProcessingOptions o)
    {
        var f = new Failures();
        if (o.FpsLimit < 0 || o.FpsLimit > 1000 || double.IsNaN(o.FpsLimit))
            f.Add($"video_processing:fps_limit must be between 0 (no limit) and 1000 (got {o.FpsLimit})");
        f.Range("video_processing:workers", o.Workers, 1, 64);
        f.Range("video_processing:queue_size", o.QueueSize, 1, 10_000);
        f.Range("video_processing:batch_max", o.BatchMax, 1, 256);
        f.Range("video_processing:idle_stop_ms", o.IdleStopMs, 100, 3_600_000);
        return f.Result;
    }
}

public sealed class RealtimePipelineOptionsValidator : IValidateOptions<RealtimePipelineOptions>
{
    public ValidateOptionsResult Validate(string? name, RealtimePipelineOptions o)
    {
        var f = new Failures();
        f.Range("realtime_pipeline:workers", o.Workers, 1, 64);
        if (Ai.AiStepNames.Parse(o.Steps, out var stepError) is null)
            f.Add($"realtime_pipeline:steps: {stepError}");
        f.OneOf("realtime_pipeline:background", o.Background, Processing.RealtimeRules.BackgroundKinds);
        if (!Processing.RealtimeRules.TryParseColor(o.BackgroundColor, out _))
            f.Add($"realtime_pipeline:background_color must be #RRGGBB (got '{o.BackgroundColor}')");
        f.Range("realtime_pipeline:blur_radius", o.BlurRadius, 1, 200);
        f.OneOf("realtime_pipeline:depth_mode", o.DepthMode, Processing.RealtimeRules.DepthModes);
        return f.Result;
    }
}

public sealed class AiOptionsValidator : IValidateOptions<AiOptions>
{
    public ValidateOptionsResult Validate(string? name, AiOptions o)
    {
        var f = new Failures();
        f.Range("ai:face_detect_interval", o.FaceDetectInterval, 1, 10_000);
        f.Range("ai:intra_op_threads", o.IntraOpThreads, 1, 64);
        f.Range("ai:max_image_bytes", o.MaxImageBytes, 1024, 256L * 1024 * 1024);
        f.OneOf("ai:provider", o.Provider, AiOptions.Providers);
        f.Range("ai:max_batch", o.MaxBatch, 1, 256);
        f.Range("ai:batch_timeout_ms", o.BatchTimeoutMs, 0, 100);
        if (double.IsNaN(o.FaceMinScore) || o.FaceMinScore <= 0 || o.FaceMinScore >= 1)
            f.Add($"ai:face_min_score must be between 0 and 1, exclusive (got {o.FaceMinScore})");
        if (double.IsNaN(o.MatteSmoothing) || o.MatteSmoothing <= 0 || o.MatteSmoothing > 1)
            f.Add($"ai:matte_smoothing must be in (0, 1] (got {o.MatteSmoothing})");
        if (double.IsNaN(o.RvmDownsampleRatio) || o.RvmDownsampleRatio <= 0 || o.RvmDownsampleRatio > 1)
            f.Add($"ai:rvm_downsample_ratio must be in (0, 1] (got {o.RvmDownsampleRatio})");
        // A model path that does not exist is NOT a start-up error: its step reports unavailable.
        return f.Result;
    }
}
