namespace Blankend.Orleans.Codec;

/// <summary>
/// The live <c>/video_codec</c> decode session of one client_id. It lives on a silo (which owns the decoder:
/// ffmpeg, NVDEC on GPU hosts); the gateway only forwards the connection's chunks, in order, one call at a
/// time. At most one session per client_id: a second connection for a client_id with a live session is refused.
/// </summary>
public interface ICodecSessionGrain : IGrainWithStringKey
{
    /// <summary>Reserves the session for one gateway connection. No process starts before the first chunk; a
    /// reservation that receives nothing ends after <c>codec:idle_timeout_s</c>.</summary>
    Task<DecodeOpenResult> Open(Guid connection, string codec, IDecodeSessionObserver observer);

    /// <summary>Feeds one chunk of the Annex-B stream (any size, split anywhere). Completes when ffmpeg has
    /// taken the bytes, so a decoder that falls behind slows the connection down instead of losing data.</summary>
    Task<DecodePushResult> Push(Guid connection, CodecChunk chunk);

    /// <summary>The client went away (or closed): ffmpeg gets end-of-input, decodes what it holds, exits; it is
    /// killed if it has not within a bounded time. Interleaves with a pending <see cref="Push"/>.</summary>
    [AlwaysInterleave]
    Task Close(Guid connection);
}

/// <summary>Tells the gateway connection that its session is over (error, idle, ffmpeg gone).</summary>
public interface IDecodeSessionObserver : IGrainObserver
{
    [OneWay]
    Task OnEnded(DecodeSessionEnd end);
}

/// <summary>A chunk of an elementary stream; immutable so that a same-silo call never copies it.</summary>
[GenerateSerializer, Immutable, Alias("blankend.CodecChunk")]
public sealed record CodecChunk([property: Id(0)] byte[] Data);

[GenerateSerializer, Alias("blankend.DecodeOpenStatus")]
public enum DecodeOpenStatus : byte
{
    Opened = 0,

    /// <summary>Another connection holds a live session for this client_id.</summary>
    Busy = 1,

    /// <summary>No decoder on the silo (ffmpeg missing or unusable); Detail says why.</summary>
    Unavailable = 2,
}

[GenerateSerializer, Immutable, Alias("blankend.DecodeOpenResult")]
public sealed record DecodeOpenResult([property: Id(0)] DecodeOpenStatus Status, [property: Id(1)] string Detail);

/// <summary>Why a session ended. <see cref="Error"/> is the <c>error</c> value of the text message the client
/// gets (null: nothing to report, e.g. the client closed), <see cref="CloseStatus"/> the WebSocket close
/// code.</summary>
[GenerateSerializer, Immutable, Alias("blankend.DecodeSessionEnd")]
public sealed record DecodeSessionEnd(
    [property: Id(0)] string Reason,
    [property: Id(1)] string? Error,
    [property: Id(2)] string Detail,
    [property: Id(3)] int CloseStatus,
    [property: Id(4)] long Frames
);

[GenerateSerializer, Immutable, Alias("blankend.DecodePushResult")]
public sealed record DecodePushResult([property: Id(0)] DecodeSessionEnd? Ended)
{
    public static readonly DecodePushResult Ok = new((DecodeSessionEnd?)null);
}

/// <summary>Reasons a session ends (the <c>sessions_ended</c> counters use the same names).</summary>
public static class DecodeEndReasons
{
    public const string ClientClosed = "client_closed";
    public const string IdleTimeout = "idle_timeout";
    public const string InvalidStream = "invalid_stream";
    public const string DecodeFailed = "decode_failed";
    public const string FfmpegExited = "ffmpeg_exited";
    public const string DecoderUnavailable = "decoder_unavailable";
    public const string ServiceStopping = "service_stopping";
}
