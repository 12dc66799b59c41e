using Blankend.Orleans.Ai;
using OpenCvSharp;

namespace Blankend.Orleans.Grains.Ai.Face;

/// <summary>Draws faces for the /ai/process "detect" image: box, score, the 6 keypoints, and the mesh points.</summary>
internal static class FaceDraw
{
    private static readonly Scalar BoxColour = new(0, 255, 0);
    private static readonly Scalar[] KeypointColours =
    [
        new(255, 0, 0),
        new(0, 0, 255),
        new(0, 255, 255),
        new(255, 0, 255),
        new(255, 255, 0),
        new(128, 128, 255),
    ];
    private static readonly Scalar MeshColour = new(255, 255, 255);

    /// <summary>Draws onto a BGR image in place (coordinates are frame pixels, as the detector gives them).</summary>
    public static void Draw(Mat image, AiFace[]? faces)
    {
        if (faces is null || image.Empty())
            return;
        var thick = Math.Max(1, Math.Min(image.Cols, image.Rows) / 300);
        foreach (var f in faces)
        {
            if (f.Mesh is { } mesh)
            {
                for (var i = 0; i + 2 < mesh.Length; i += 3)
                    Cv2.Circle(image, P(mesh[i], mesh[i + 1]), thick, MeshColour, -1);
            }
            if (f.Box is { Length: 4 } b)
            {
                Cv2.Rectangle(image, P(b[0], b[1]), P(b[2], b[3]), BoxColour, thick + 1);
                Cv2.PutText(
                    image,
                    f.Score.ToString("0.00", System.Globalization.CultureInfo.InvariantCulture),
                    P(b[0], b[1] - 4),
                    HersheyFonts.HersheySimplex,
                    0.4 * (thick + 1),
                    BoxColour,
                    thick
                );
            }
            if (f.Keypoints is { } kp)
            {
                for (var k = 0; k * 2 + 1 < kp.Length; k++)
                    Cv2.Circle(
                        image,
                        P(kp[k * 2], kp[k * 2 + 1]),
                        thick + 2,
                        KeypointColours[k % KeypointColours.Length],
                        -1
                    );
            }
        }
    }

    private static Point P(float x, float y) =>
        new((int)Math.Clamp(MathF.Floor(x), -100_000, 100_000), (int)Math.Clamp(MathF.Floor(y), -100_000, 100_000));
}
