using Blankend.Orleans.Grains.Ai.Matting;
using OpenCvSharp;

namespace Blankend.Orleans.Grains.Ai;

/// <summary>The matte and depth steps' per-source state. Read and written only under <see cref="Gate"/>.</summary>
internal sealed partial class AiSourceState
{
    /// <summary>Frame width the matte state (previous mask, RVM recurrent states) belongs to; 0 = none yet.</summary>
    public int MatteWidth { get; private set; }

    /// <summary>Frame height the matte state belongs to.</summary>
    public int MatteHeight { get; private set; }

    /// <summary>Temporally smoothed person mask of the last frame (CV_32FC1, 0..1, at the segmentation model's
    /// resolution): <c>m = a*new + (1-a)*prev</c> with <c>a = ai:matte_smoothing</c>. Null after a reset.</summary>
    public Mat? MattePrev { get; internal set; }

    /// <summary>Model that produced the last mask: "selfie_segmentation", "selfie_segmentation_landscape" or
    /// "rvm".</summary>
    public string? MatteModel { get; internal set; }

    /// <summary>Robust Video Matting recurrent states (r1..r4) of this source; null until its first RVM
    /// frame.</summary>
    public RvmState? Rvm { get; internal set; }

    /// <summary>Frames of this source the matte step processed since the last reset.</summary>
    public long MatteFrames { get; internal set; }

    /// <summary>Times the matte state was reset (frame size change, error).</summary>
    public long MatteResets { get; private set; }

    /// <summary>Reusable per-source images of the matte and depth steps (masks, blurred background).</summary>
    internal MatteScratch Scratch => _scratch ??= new MatteScratch();

    private MatteScratch? _scratch;

    /// <summary>Resets the matte state when the frame size differs from the one it was built for.</summary>
    /// <returns>True when it was reset (a new size, not the first frame).</returns>
    public bool EnsureMatteSize(int width, int height)
    {
        if (width == MatteWidth && height == MatteHeight)
            return false;
        var had = MatteWidth != 0;
        if (had)
            ResetMatte();
        MatteWidth = width;
        MatteHeight = height;
        return had;
    }

    /// <summary>Forgets the previous mask and the recurrent states (the next frame starts fresh).</summary>
    public void ResetMatte()
    {
        MattePrev?.Dispose();
        MattePrev = null;
        Rvm?.Dispose();
        Rvm = null;
        MatteFrames = 0;
        MatteWidth = MatteHeight = 0;
        MatteResets++;
    }
}
