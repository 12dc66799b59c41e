using Microsoft.Extensions.Configuration;

namespace Blankend.Orleans.Configuration;

/// <summary>Section <c>stream</c>: the original service's keys, unchanged (see the contract).</summary>
public sealed class StreamOptions
{
    public const string Section = "stream";

    [ConfigurationKeyName("default_client_id")]
    public string DefaultClientId { get; set; } = "SRC";

    [ConfigurationKeyName("max_frame_bytes")]
    public int MaxFrameBytes { get; set; } = 8 * 1024 * 1024;

    [ConfigurationKeyName("relay_enabled")]
    public bool RelayEnabled { get; set; }

    [ConfigurationKeyName("zmq_endpoint")]
    public string ZmqEndpoint { get; set; } = "tcp://localhost:8888";

    [ConfigurationKeyName("zmq_identity")]
    public string ZmqIdentity { get; set; } = "blankend";

    [ConfigurationKeyName("send_queue_size")]
    public int SendQueueSize { get; set; } = 256;

    [ConfigurationKeyName("forward_recv_enabled")]
    public bool ForwardRecvEnabled { get; set; }

    [ConfigurationKeyName("forward_recv_client_id")]
    public string ForwardRecvClientId { get; set; } = "";

    [ConfigurationKeyName("forward_recv_only")]
    public bool ForwardRecvOnly { get; set; }

    [ConfigurationKeyName("echo_back")]
    public bool EchoBack { get; set; } = true;

    [ConfigurationKeyName("heartbeat_enabled")]
    public bool HeartbeatEnabled { get; set; } = true;

    [ConfigurationKeyName("heartbeat_interval_ms")]
    public int HeartbeatIntervalMs { get; set; } = 1000;

    [ConfigurationKeyName("link_request_enabled")]
    public bool LinkRequestEnabled { get; set; }

    [ConfigurationKeyName("link_request_client_id")]
    public string LinkRequestClientId { get; set; } = "__link__";

    [ConfigurationKeyName("link_request_interval_ms")]
    public int LinkRequestIntervalMs { get; set; } = 5000;

    [ConfigurationKeyName("link_request_payload")]
    public string LinkRequestPayload { get; set; } = "";

    [ConfigurationKeyName("reencode_enabled")]
    public bool ReencodeEnabled { get; set; }

    [ConfigurationKeyName("jpeg_quality")]
    public int JpegQuality { get; set; } = 80;

    /// <summary>An ingest socket (/video_in, /video_codec) that sends nothing for this long is closed with 1001;
    /// also how long a bus source counts as live. 0 = never.</summary>
    [ConfigurationKeyName("idle_timeout_s")]
    public int IdleTimeoutSeconds { get; set; } = 60;
}
