namespace Blankend.Orleans.Ai;

/// <summary>The AI steps a source's frames go through, in this fixed order: detect, mesh, swap, matte, depth.</summary>
[Flags]
[GenerateSerializer, Alias("blankend.AiSteps")]
[System.Text.Json.Serialization.JsonConverter(typeof(System.Text.Json.Serialization.JsonStringEnumConverter<AiSteps>))]
public enum AiSteps
{
    None = 0,

    /// <summary>BlazeFace boxes + 6 keypoints (every <c>face_detect_interval</c> frames, reused between).</summary>
    Detect = 1,

    /// <summary>468-point face mesh per detected face (implies Detect).</summary>
    Mesh = 2,

    /// <summary>Replace each face with the uploaded reference face (implies Detect and Mesh).</summary>
    Swap = 4,

    /// <summary>Person matte composited over the configured background.</summary>
    Matte = 8,

    /// <summary>Depth map (needs <c>DEPTH_MODEL</c>).</summary>
    Depth = 16,

    /// <summary>Face enhancer (GFPGAN, needs <c>ENHANCER_MODEL</c>) on every face, after swap (implies Detect and
    /// Mesh).</summary>
    Enhance = 32,
}

/// <summary>One detected face in frame pixels.</summary>
/// <param name="Box">x0, y0, x1, y1.</param>
/// <param name="Keypoints">6 x (x, y): right eye, left eye, nose tip, mouth centre, right ear, left ear
/// (the subject's right and left); from a SCRFD detector 5 x (x, y): right eye, left eye, nose tip, right and
/// left mouth corner.</param>
/// <param name="Mesh">468 x (x, y, z) when the mesh step ran, else null.</param>
[GenerateSerializer, Immutable, Alias("blankend.AiFace")]
public sealed record AiFace(
    [property: Id(0)] float Score,
    [property: Id(1)] float[] Box,
    [property: Id(2)] float[] Keypoints,
    [property: Id(3)] float[]? Mesh
);

/// <summary>What the matte step composites the person over.</summary>
/// <param name="Kind">"color", "image" (the uploaded background) or "blur" (of the frame itself).</param>
/// <param name="Color">#RRGGBB for "color".</param>
/// <param name="BlurRadius">Kernel radius in pixels for "blur".</param>
/// <param name="ImageVersion">Version of the uploaded background image in use (0 = none).</param>
[GenerateSerializer, Immutable, Alias("blankend.MatteBackground")]
public sealed record MatteBackground(
    [property: Id(0)] string Kind,
    [property: Id(1)] string Color,
    [property: Id(2)] int BlurRadius,
    [property: Id(3)] long ImageVersion
)
{
    public static readonly MatteBackground Green = new("color", "#00FF00", 21, 0);
}

public static class AiStepNames
{
    public static readonly (string Name, AiSteps Step)[] All =
    [
        ("detect", AiSteps.Detect),
        ("mesh", AiSteps.Mesh),
        ("swap", AiSteps.Swap),
        ("matte", AiSteps.Matte),
        ("depth", AiSteps.Depth),
        ("enhance", AiSteps.Enhance),
    ];

    /// <summary>Parses "detect,swap,matte"; null and an error naming the bad item when one is unknown.</summary>
    public static AiSteps? Parse(string? list, out string? error)
    {
        error = null;
        var steps = AiSteps.None;
        if (string.IsNullOrWhiteSpace(list))
            return steps;
        foreach (var raw in list.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var found = false;
            foreach (var (name, step) in All)
            {
                if (string.Equals(name, raw, StringComparison.OrdinalIgnoreCase))
                {
                    steps |= step;
                    found = true;
                    break;
                }
            }
            if (!found)
            {
                error =
                    $"unknown step '{(raw.Length > 40 ? raw[..40] + "..." : raw)}' (known: detect, mesh, swap, matte, depth, enhance)";
                return null;
            }
        }
        return steps;
    }

    /// <summary>The steps with what they need: mesh needs detect; swap needs detect and mesh.</summary>
    public static AiSteps WithPrerequisites(AiSteps s)
    {
        if ((s & (AiSteps.Swap | AiSteps.Enhance)) != 0)
            s |= AiSteps.Mesh;
        if ((s & AiSteps.Mesh) != 0)
            s |= AiSteps.Detect;
        return s;
    }

    public static string Format(AiSteps s)
    {
        var parts = new List<string>();
        foreach (var (name, step) in All)
            if ((s & step) != 0)
                parts.Add(name);
        return string.Join(',', parts);
    }
}
