using Microsoft.Extensions.Configuration;

namespace Blankend.Orleans.Configuration;

/// <summary>Section <c>cluster</c>: how a process joins (or hosts) the Orleans cluster.</summary>
public sealed class ClusterSettings
{
    public const string Section = "cluster";

    /// <summary>Gateway only: <c>embedded</c> hosts a silo in the gateway process (the default, nothing
    /// external); <c>client</c> connects to separate silo processes.</summary>
    [ConfigurationKeyName("mode")]
    public string Mode { get; set; } = "embedded";

    /// <summary>Membership provider: <c>localhost</c> (one machine: the embedded default and split mode on one
    /// host), <c>redis</c> (several silos and gateways on several hosts, membership in <see cref="Redis"/>) or
    /// <c>postgres</c> (the same, membership and grain storage in PostgreSQL, <see cref="Postgres"/>).</summary>
    [ConfigurationKeyName("clustering")]
    public string Clustering { get; set; } = "localhost";

    /// <summary>Redis clustering: StackExchange.Redis connection string of the membership store, e.g.
    /// <c>127.0.0.1:6379</c> or <c>redis:6379,password=...,ssl=true</c>.</summary>
    [ConfigurationKeyName("redis")]
    public string Redis { get; set; } = "127.0.0.1:6379";

    /// <summary>PostgreSQL clustering: Npgsql connection string of the membership and grain-storage database, e.g.
    /// <c>Host=db;Port=5432;Database=blankend;Username=blankend;Password=...</c>. The schema
    /// (deploy/sql/postgresql/blankend-orleans.sql) is created on start-up when absent.</summary>
    [ConfigurationKeyName("postgres")]
    public string Postgres { get; set; } = "";

    /// <summary>Redis clustering, silos: the address other silos and the gateways use to reach this silo (it is
    /// written to the membership table). An IPv4/IPv6 address, or <c>auto</c> for this host's first non-loopback
    /// IPv4 address (containers). The silo listens on it.</summary>
    [ConfigurationKeyName("advertised_ip")]
    public string AdvertisedIp { get; set; } = "127.0.0.1";

    [ConfigurationKeyName("cluster_id")]
    public string ClusterId { get; set; } = "blankend";

    [ConfigurationKeyName("service_id")]
    public string ServiceId { get; set; } = "blankend";

    /// <summary>Silo-to-silo port of this silo.</summary>
    [ConfigurationKeyName("silo_port")]
    public int SiloPort { get; set; } = 11111;

    /// <summary>Client gateway port of this silo (clients such as a split-mode gateway connect here).</summary>
    [ConfigurationKeyName("gateway_port")]
    public int GatewayPort { get; set; } = 30000;

    /// <summary>Localhost clustering: the silo port of the primary silo (the first one started).</summary>
    [ConfigurationKeyName("primary_silo_port")]
    public int PrimarySiloPort { get; set; } = 11111;

    /// <summary>Localhost clustering, client mode: the silo gateway ports a gateway may connect to.</summary>
    [ConfigurationKeyName("gateway_ports")]
    public int[] GatewayPorts { get; set; } = [];

    /// <summary>How often a gateway refreshes its observer registrations; a registration not refreshed for
    /// three periods expires (a dead gateway leaves nothing behind).</summary>
    [ConfigurationKeyName("observer_refresh_ms")]
    public int ObserverRefreshMs { get; set; } = 2000;

    /// <summary>A ClientGrain with no frames and no calls for this long is deactivated.</summary>
    [ConfigurationKeyName("grain_idle_s")]
    public int GrainIdleSeconds { get; set; } = 120;

    /// <summary>Failure detection (silos): initial timeout of a liveness probe between silos (Orleans
    /// <c>ClusterMembershipOptions.ProbeTimeout</c>, 5 s in Orleans; 1 s here so that a dead silo is declared dead
    /// within about 2-3 s and frames resume within 5 s).</summary>
    [ConfigurationKeyName("probe_timeout_ms")]
    public int ProbeTimeoutMs { get; set; } = 1000;

    /// <summary>Failure detection (silos): missed probes before a silo suspects another one (Orleans
    /// <c>NumMissedProbesLimit</c>, 3 in Orleans).</summary>
    [ConfigurationKeyName("missed_probes_limit")]
    public int MissedProbesLimit { get; set; } = 2;

    /// <summary>Failure detection (silos): suspicion votes needed to declare a silo dead (Orleans
    /// <c>NumVotesForDeathDeclaration</c>). Orleans caps it at half the active silos (rounded up), so with 2 silos
    /// the survivor's vote alone is enough.</summary>
    [ConfigurationKeyName("death_votes")]
    public int DeathVotes { get; set; } = 2;

    /// <summary>Failure detection (silos): how long a suspicion vote counts (Orleans
    /// <c>DeathVoteExpirationTimeout</c>, 120 s in Orleans).</summary>
    [ConfigurationKeyName("death_vote_expiration_s")]
    public int DeathVoteExpirationSeconds { get; set; } = 60;

    /// <summary>Client-mode gateways with redis clustering: how often the list of live silo gateways is re-read
    /// from the membership store (Orleans <c>GatewayOptions.GatewayListRefreshPeriod</c>, 60 s in Orleans). A
    /// gateway connection that breaks is dropped at once; this is how new silos are found.</summary>
    [ConfigurationKeyName("gateway_list_refresh_ms")]
    public int GatewayListRefreshMs { get; set; } = 5000;

    /// <summary>Silo process only (split / cluster mode): port of its own Prometheus <c>/metrics</c> endpoint, on
    /// every interface; 0 = none. The gateway (and an embedded silo) always serve <c>/metrics</c> on the
    /// gateway's address.</summary>
    [ConfigurationKeyName("metrics_port")]
    public int MetricsPort { get; set; }

    /// <summary>Mutual TLS on the cluster's connections (silo to silo, gateway to silo); off by default.</summary>
    [ConfigurationKeyName("tls")]
    public ClusterTlsSettings Tls { get; set; } = new();
}

/// <summary>Section <c>gateway</c>: WebSocket fan-out.</summary>
public sealed class GatewaySettings
{
    public const string Section = "gateway";

    /// <summary>Frames queued per viewer; when full the oldest is dropped (a viewer sees the newest).</summary>
    [ConfigurationKeyName("viewer_queue_size")]
    public int ViewerQueueSize { get; set; } = 8;

    /// <summary>Frames of one camera waiting to enter the cluster; when full the oldest is dropped (counted).</summary>
    [ConfigurationKeyName("ingest_queue_size")]
    public int IngestQueueSize { get; set; } = 4;

    [ConfigurationKeyName("websocket_keepalive_s")]
    public int WebSocketKeepAliveSeconds { get; set; } = 15;
}

/// <summary>Section <c>telemetry</c>: throughput log lines, trace sampling, the Orleans Dashboard.</summary>
public sealed class TelemetryOptions
{
    public const string Section = "telemetry";

    /// <summary>Seconds between throughput log lines (<c>stream recv ...</c>, <c>relay send ...</c>); written only
    /// while there is traffic. 0 = no such lines.</summary>
    [ConfigurationKeyName("stats_log_interval_s")]
    public int StatsLogIntervalSeconds { get; set; } = 10;

    /// <summary>One frame in this many, per ingest connection, gets a trace (its first frame included); 0 = no
    /// per-frame traces. HTTP requests are traced regardless.</summary>
    [ConfigurationKeyName("trace_sample_every")]
    public int TraceSampleEvery { get; set; } = 300;

    /// <summary>Orleans Dashboard: profiler on the silos and <c>/dashboard</c> on the gateway (scope <c>admin</c>
    /// when tokens are configured, docs/security.md). Silos and gateways of one cluster must agree.</summary>
    [ConfigurationKeyName("dashboard_enabled")]
    public bool DashboardEnabled { get; set; } = true;

    /// <summary>Dashboard: no live log stream (its trace page shows every log line of the silos, secrets and
    /// source ids included).</summary>
    [ConfigurationKeyName("dashboard_hide_trace")]
    public bool DashboardHideTrace { get; set; } = true;
}

/// <summary>Section <c>video_processing</c>: the processing path (device workers). <c>enabled</c>,
/// <c>hw_transcode</c>, <c>fps_limit</c> and <c>workers</c> are the start values of the live pipeline config
/// (changed at run time through the API); the others are fixed per process.</summary>
public sealed class VideoProcessingOptions
{
    public const string Section = "video_processing";

    [ConfigurationKeyName("enabled")]
    public bool Enabled { get; set; }

    [ConfigurationKeyName("hw_transcode")]
    public bool HwTranscode { get; set; }

    [ConfigurationKeyName("fps_limit")]
    public double FpsLimit { get; set; }

    [ConfigurationKeyName("workers")]
    public int Workers { get; set; } = 1;

    /// <summary>Frames waiting per device; when full, sources bypass the worker (raw frame, counted).</summary>
    [ConfigurationKeyName("queue_size")]
    public int QueueSize { get; set; } = 4;

    /// <summary>Most frames a worker loop takes from its queue for one batch (frames of several sources).</summary>
    [ConfigurationKeyName("batch_max")]
    public int BatchMax { get; set; } = 32;

    /// <summary>A worker loop with nothing to do for this long ends (its thread goes away).</summary>
    [ConfigurationKeyName("idle_stop_ms")]
    public int IdleStopMs { get; set; } = 10_000;
}

/// <summary>Section <c>realtime_pipeline</c>: the AI steps (matting / compositing, faces, depth) on live
/// frames.</summary>
public sealed class RealtimePipelineOptions
{
    public const string Section = "realtime_pipeline";

    [ConfigurationKeyName("enabled")]
    public bool Enabled { get; set; }

    [ConfigurationKeyName("workers")]
    public int Workers { get; set; } = 1;

    /// <summary>AI steps applied to every source while enabled: a comma list of detect, mesh, swap, matte,
    /// depth.</summary>
    [ConfigurationKeyName("steps")]
    public string Steps { get; set; } = "matte";

    /// <summary>What the matte composites over: color, image (uploaded with POST /api/v1/ai/background) or
    /// blur.</summary>
    [ConfigurationKeyName("background")]
    public string Background { get; set; } = "color";

    [ConfigurationKeyName("background_color")]
    public string BackgroundColor { get; set; } = "#00FF00";

    [ConfigurationKeyName("blur_radius")]
    public int BlurRadius { get; set; } = 21;

    /// <summary>Depth output: colormap (the depth map as the image) or cut (background behind the nearest
    /// plane).</summary>
    [ConfigurationKeyName("depth_mode")]
    public string DepthMode { get; set; } = "colormap";
}

/// <summary>Section <c>ai</c>: model paths and step settings (docs/ai.md).</summary>
public sealed class AiOptions
{
    public const string Section = "ai";

    /// <summary>The values of <c>ai.provider</c>.</summary>
    public static readonly string[] Providers = ["auto", "cuda", "tensorrt", "cpu"];

    [ConfigurationKeyName("face_detect_interval")]
    public int FaceDetectInterval { get; set; } = 5;

    [ConfigurationKeyName("simple_forward")]
    public bool SimpleForward { get; set; }

    [ConfigurationKeyName("face_detect_model")]
    public string FaceDetectModel { get; set; } = "";

    [ConfigurationKeyName("swap_model")]
    public string SwapModel { get; set; } = "";

    [ConfigurationKeyName("rvm_model")]
    public string RvmModel { get; set; } = "";

    [ConfigurationKeyName("depth_model")]
    public string DepthModel { get; set; } = "";

    /// <summary>ArcFace recognition ONNX (insightface <c>w600k_r50.onnx</c> / <c>w600k_mbf.onnx</c>): the source
    /// embedding the inswapper <c>swap_model</c> needs.</summary>
    [ConfigurationKeyName("arcface_model")]
    public string ArcfaceModel { get; set; } = "";

    /// <summary>An insightface model-pack folder (e.g. <c>buffalo_l</c>): its <c>det_*.onnx</c> (SCRFD) and
    /// <c>w600k_*.onnx</c> are used when <c>face_detect_model</c> / <c>arcface_model</c> are empty.</summary>
    [ConfigurationKeyName("insightface_dir")]
    public string InsightfaceDir { get; set; } = "";

    /// <summary>GFPGAN 1.4 ONNX (512x512) for the optional <c>enhance</c> step; the step is unavailable without
    /// it.</summary>
    [ConfigurationKeyName("enhancer_model")]
    public string EnhancerModel { get; set; } = "";

    /// <summary>Folder of the shipped models (BlazeFace, face mesh, selfie segmentation); empty = <c>models/</c>
    /// next to the service's binaries.</summary>
    [ConfigurationKeyName("models_dir")]
    public string ModelsDir { get; set; } = "";

    /// <summary>ONNX Runtime intra-op threads per session (1 keeps one frame per core; raise for big models).</summary>
    [ConfigurationKeyName("intra_op_threads")]
    public int IntraOpThreads { get; set; } = 1;

    /// <summary>Kept for old config files: <c>false</c> means <c>provider: cpu</c> (docs/configuration.md).</summary>
    [ConfigurationKeyName("use_cuda")]
    public bool UseCuda { get; set; } = true;

    /// <summary>Execution provider of the gpuN devices' sessions: <c>auto</c> (CUDA when a GPU and the CUDA
    /// provider are present, else CPU), <c>cuda</c>, <c>tensorrt</c> or <c>cpu</c>. A GPU that is seen but not
    /// used is never silent: /healthz degraded, an error line, <c>blankend_ai_provider_fallback_total</c>.</summary>
    [ConfigurationKeyName("provider")]
    public string Provider { get; set; } = "auto";

    /// <summary>Stop start-up (exit 2) instead of running on the CPU when the GPU provider cannot be used.</summary>
    [ConfigurationKeyName("require_gpu")]
    public bool RequireGpu { get; set; }

    /// <summary>TensorRT engine and timing caches (provider <c>tensorrt</c>); empty = <c>data/tensorrt</c>.</summary>
    [ConfigurationKeyName("tensorrt_cache_dir")]
    public string TensorrtCacheDir { get; set; } = "";

    /// <summary>Most frames one inference call takes (cross-stream batching on a device worker).</summary>
    [ConfigurationKeyName("max_batch")]
    public int MaxBatch { get; set; } = 32;

    /// <summary>How long a device worker waits for the frames of its other live sources before it runs a batch
    /// (milliseconds; 0 = never wait, run what is queued).</summary>
    [ConfigurationKeyName("batch_timeout_ms")]
    public int BatchTimeoutMs { get; set; } = 3;

    /// <summary>Minimum face detector score kept (MediaPipe and insightface SCRFD: 0.5).</summary>
    [ConfigurationKeyName("face_min_score")]
    public double FaceMinScore { get; set; } = 0.5;

    /// <summary>Weight of the new mask in the per-source temporal smoothing of the matte (1 = no smoothing).</summary>
    [ConfigurationKeyName("matte_smoothing")]
    public double MatteSmoothing { get; set; } = 0.6;

    /// <summary>RVM <c>downsample_ratio</c> (used with <c>rvm_model</c>).</summary>
    [ConfigurationKeyName("rvm_downsample_ratio")]
    public double RvmDownsampleRatio { get; set; } = 0.25;

    /// <summary>Largest accepted uploaded image (reference face, background, /ai/process body), bytes.</summary>
    [ConfigurationKeyName("max_image_bytes")]
    public int MaxImageBytes { get; set; } = 16 * 1024 * 1024;
}
