using Blankend.Orleans.Grains.Devices;

namespace Blankend.Orleans.Grains.Ai;

/// <summary>The AI steps' per-frame data beyond what every step shares on <see cref="FrameWork"/> (faces, notes).
/// Partial: each step family adds its own fields in its own file.</summary>
internal sealed partial class AiFrameData { }

internal static class AiFrameDataExtensions
{
    /// <summary>This frame's AI data.</summary>
    public static AiFrameData Ai(this FrameWork work) => work.StepData<AiFrameData>();
}
