namespace Blankend.Orleans.Gateway.Fanout;

/// <summary><c>/video_out?kind=</c>: which form of a source's frames a viewer gets.</summary>
internal enum ViewerKind
{
    /// <summary>The v1 rule: each frame once, processed when processing took it, raw otherwise.</summary>
    Any,

    /// <summary>The frames as they entered, even while processing is on for the source.</summary>
    Raw,

    /// <summary>Only the processed frames (nothing while processing is off).</summary>
    Processed,
}
