using Blankend.Orleans.Ai;

namespace Blankend.Orleans.Grains.Ai;

/// <summary>Per-frame AI results. Partial: each step family adds its own fields in its own file.</summary>
public sealed partial class AiFrameData
{
    /// <summary>Faces in frame pixels (set by the detect step, mesh added by the mesh step).</summary>
    public AiFace[]? Faces { get; set; }

    /// <summary>Steps that ran on this frame, and the ones skipped with why ("matte: model unavailable").</summary>
    public List<string>? Notes { get; set; }

    public void Note(string note) => (Notes ??= []).Add(note);
}
