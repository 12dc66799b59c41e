namespace Blankend.Orleans.Grains.Ai;

/// <summary>The face steps' per-frame results beyond <see cref="Devices.FrameWork.Faces"/>.</summary>
internal sealed partial class AiFrameData
{
    /// <summary>True when <see cref="Devices.FrameWork.Faces"/> were reused from an earlier frame (no detector run on
    /// this one).</summary>
    public bool FacesReused { get; set; }

    /// <summary>Per face (same order as <see cref="Devices.FrameWork.Faces"/>): the mesh presence (sigmoid of
    /// face_flag), NaN where
    /// the mesh did not run for that face. The landmarks themselves are <c>Faces[i].Mesh</c>.</summary>
    public float[]? MeshPresence { get; set; }
}
