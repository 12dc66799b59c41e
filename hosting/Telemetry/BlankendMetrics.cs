using System.Diagnostics.Metrics;

namespace Blankend.Orleans.Telemetry;

/// <summary>
/// The project's own meter (<c>Blankend</c>), shared by the gateway, the grains and the silo. Instruments are
/// created once; hot paths record with the pre-built tags below, so a measurement allocates nothing.
/// Other parts add their own meters named <c>Blankend.*</c> (e.g. <c>Blankend.Relay</c>): the telemetry wiring
/// exports every meter whose name starts with <c>Blankend</c>. docs/operations.md lists every instrument.
/// </summary>
public static class BlankendMetrics
{
    public const string MeterName = "Blankend";

    public static readonly Meter Meter = new(MeterName, "1.0");

    /// <summary>Latency buckets in seconds: 0.1 ms .. 5 s (the SDK's defaults are meant for milliseconds).</summary>
    private static readonly InstrumentAdvice<double> SecondsBuckets = new()
    {
        HistogramBucketBoundaries =
        [
            0.0001,
            0.00025,
            0.0005,
            0.001,
            0.0025,
            0.005,
            0.01,
            0.025,
            0.05,
            0.1,
            0.25,
            0.5,
            1,
            2.5,
            5,
        ],
    };

    // ---- frames and bytes through the service's edges ----

    public static readonly Counter<long> FramesIn = Meter.CreateCounter<long>(
        "blankend.frames.in",
        "{frame}",
        "Frames accepted into the service, by entry endpoint (video_in; video_codec and bus where those parts record)."
    );

    public static readonly Counter<long> BytesIn = Meter.CreateCounter<long>(
        "blankend.payload.in",
        "By",
        "Payload bytes of the frames counted by blankend.frames.in, by endpoint."
    );

    public static readonly Counter<long> FramesOut = Meter.CreateCounter<long>(
        "blankend.frames.out",
        "{frame}",
        "Frames handed to a consumer, by endpoint (video_out: one per viewer per frame)."
    );

    public static readonly Counter<long> BytesOut = Meter.CreateCounter<long>(
        "blankend.payload.out",
        "By",
        "Payload bytes of the frames counted by blankend.frames.out, by endpoint."
    );

    public static readonly Counter<long> FramesDropped = Meter.CreateCounter<long>(
        "blankend.frames.dropped",
        "{frame}",
        "Frames (or messages) that did not go on, by reason: viewer_queue, ingest_queue, ingest_error, invalid_input, oversize, duplicate, bus_queue, worker_saturated."
    );

    public static readonly Counter<long> RequestsRejected = Meter.CreateCounter<long>(
        "blankend.requests.rejected",
        "{request}",
        "HTTP requests refused with 400 before a WebSocket upgrade (bad query, plain GET), by endpoint."
    );

    public static readonly Counter<long> FanoutFrames = Meter.CreateCounter<long>(
        "blankend.gateway.fanout.frames",
        "{frame}",
        "Frames that reached this gateway's fan-out from the cluster (one per frame per gateway, before the per-viewer copies)."
    );

    // ---- live things ----

    public static readonly UpDownCounter<long> SessionsActive = Meter.CreateUpDownCounter<long>(
        "blankend.sessions.active",
        "{session}",
        "Live ingest connections, by endpoint (video_in; video_codec where recorded)."
    );

    public static readonly UpDownCounter<long> ViewersActive = Meter.CreateUpDownCounter<long>(
        "blankend.viewers.active",
        "{viewer}",
        "Connected /video_out viewers on this gateway."
    );

    public static readonly UpDownCounter<long> SourcesActive = Meter.CreateUpDownCounter<long>(
        "blankend.sources.active",
        "{source}",
        "ClientGrain activations (one per live source) on this silo."
    );

    // ---- grain side ----

    public static readonly Counter<long> GrainFramesRouted = Meter.CreateCounter<long>(
        "blankend.grain.frames.routed",
        "{frame}",
        "Frames routed by the ClientGrains of this silo (sequence assigned, handed to the gateways), by kind (raw, processed)."
    );

    public static readonly Counter<long> GrainObserverCalls = Meter.CreateCounter<long>(
        "blankend.grain.observer.calls",
        "{call}",
        "One-way calls from ClientGrains to gateway observers (one per frame per subscribed gateway)."
    );

    // ---- latency ----

    public static readonly Histogram<double> StageDuration = Meter.CreateHistogram<double>(
        "blankend.stage.duration",
        "s",
        "Per-stage latency, by stage: ingest_to_grain, entry_to_viewer, viewer_send (decode, encode, ai.<step> where those parts record).",
        tags: null,
        advice: SecondsBuckets
    );

    // ---- pre-built tags (no allocation per measurement) ----

    public static class Endpoints
    {
        public static readonly KeyValuePair<string, object?> VideoIn = new("endpoint", "video_in");
        public static readonly KeyValuePair<string, object?> VideoCodec = new("endpoint", "video_codec");
        public static readonly KeyValuePair<string, object?> VideoOut = new("endpoint", "video_out");
        public static readonly KeyValuePair<string, object?> Bus = new("endpoint", "bus");
        public static readonly KeyValuePair<string, object?> Other = new("endpoint", "other");
    }

    public static class DropReasons
    {
        /// <summary>A viewer's queue was full: its oldest frame went.</summary>
        public static readonly KeyValuePair<string, object?> ViewerQueue = new("reason", "viewer_queue");

        /// <summary>A camera's queue into the cluster was full: its oldest frame went.</summary>
        public static readonly KeyValuePair<string, object?> IngestQueue = new("reason", "ingest_queue");

        /// <summary>Handing a frame to its ClientGrain failed (cluster unreachable, silo lost).</summary>
        public static readonly KeyValuePair<string, object?> IngestError = new("reason", "ingest_error");

        /// <summary>A message that is not a JPEG (or not binary) was refused.</summary>
        public static readonly KeyValuePair<string, object?> InvalidInput = new("reason", "invalid_input");

        /// <summary>A message over stream.max_frame_bytes closed its connection (1009).</summary>
        public static readonly KeyValuePair<string, object?> Oversize = new("reason", "oversize");

        /// <summary>An (epoch, seq) a gateway had already delivered reached its fan-out again and was not delivered
        /// twice.</summary>
        public static readonly KeyValuePair<string, object?> Duplicate = new("reason", "duplicate");

        /// <summary>Frames of a source a gateway watches that never reached it (a gap in seq: observer calls lost with
        /// a silo, or routed by a re-activated grain before the gateway re-registered). Counted when the gap is
        /// seen; one that turns up late afterwards is dropped without being counted again.</summary>
        public static readonly KeyValuePair<string, object?> Lost = new("reason", "lost");

        /// <summary>A frame that arrived after a newer one of its source without having been counted lost (the
        /// previous activation's last frames arriving after the new one's first).</summary>
        public static readonly KeyValuePair<string, object?> Late = new("reason", "late");

        /// <summary>The ZeroMQ send queue was full (recorded by the relay).</summary>
        public static readonly KeyValuePair<string, object?> BusQueue = new("reason", "bus_queue");

        /// <summary>The processing worker was saturated and the frame bypassed it (recorded by the processing
        /// path).</summary>
        public static readonly KeyValuePair<string, object?> WorkerSaturated = new("reason", "worker_saturated");
    }

    public static class Stages
    {
        /// <summary>WebSocket message complete at the gateway -> ClientGrain.Publish acknowledged (queue wait
        /// included).</summary>
        public static readonly KeyValuePair<string, object?> IngestToGrain = new("stage", "ingest_to_grain");

        /// <summary>Frame entered the service (ts_ms, Unix ms) -> written to a viewer's socket. Millisecond
        /// resolution; across hosts it includes their clock offset.</summary>
        public static readonly KeyValuePair<string, object?> EntryToViewer = new("stage", "entry_to_viewer");

        /// <summary>Duration of one viewer's send of one frame (meta text included).</summary>
        public static readonly KeyValuePair<string, object?> ViewerSend = new("stage", "viewer_send");
        public static readonly KeyValuePair<string, object?> Decode = new("stage", "decode");
        public static readonly KeyValuePair<string, object?> Encode = new("stage", "encode");

        /// <summary>Tag for one AI step (<c>ai.detect</c>, <c>ai.matte</c>, ...): build it once per step, not per
        /// frame.</summary>
        public static KeyValuePair<string, object?> AiStep(string step) => new("stage", "ai." + step);
    }

    public static class Kinds
    {
        public static readonly KeyValuePair<string, object?> Raw = new("kind", "raw");
        public static readonly KeyValuePair<string, object?> Processed = new("kind", "processed");

        public static KeyValuePair<string, object?> Of(FrameKind kind) => kind == FrameKind.Processed ? Processed : Raw;
    }
}
