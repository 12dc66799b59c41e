using Blankend.Orleans.Ai;

namespace Blankend.Orleans.Grains.Ai;

/// <summary>The face steps' per-source state (read and written under <see cref="Gate"/>).</summary>
internal sealed partial class AiSourceState
{
    /// <summary>Faces of the last detector run, reused until the next one (face_detect_interval).</summary>
    public AiFace[]? LastFaces;

    /// <summary>Frame size <see cref="LastFaces"/> were found in; another size forces a detector run.</summary>
    public int LastFacesWidth,
        LastFacesHeight;

    /// <summary>Per face of <see cref="LastFaces"/>: the face mesh ROI for the next frame (cx, cy, side, θ),
    /// computed from this frame's landmarks, so the mesh follows the face between detector runs.</summary>
    public float[]? TrackRois;
}
