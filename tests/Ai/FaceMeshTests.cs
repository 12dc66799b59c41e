using Blankend.Orleans.Grains.Ai.Face;
using Blankend.Orleans.Tests.Support;
using Xunit;

namespace Blankend.Orleans.Tests.Ai;

[Trait(TestKind.Name, TestKind.Unit)]
public sealed class FaceMeshTests : IDisposable
{
    private readonly FaceEnv _env = new();

    public void Dispose() => _env.Dispose();

    [Fact]
    public void Mesh_has_468_points_on_the_face_and_presence()
    {
        var models = FaceModels.For(_env.Engine);
        var detector = models.Detector("cpu0")!;
        var mesh = models.Mesh("cpu0")!;
        using var img = FaceEnv.Astronaut();
        var face = Assert.Single(detector.Detect(img));
        var r = mesh.Run(img, face);
        Assert.NotNull(r);
        Assert.True(r.Present, $"presence {r.Presence}");
        Assert.True(r.Presence > 0.99f);
        Assert.Equal(468 * 3, r.Points.Length);
        var b = face.Box;
        var mx = 0.25f * (b[2] - b[0]);
        var my = 0.25f * (b[3] - b[1]);
        for (var i = 0; i < 468; i++)
        {
            var x = r.Points[i * 3];
            var y = r.Points[i * 3 + 1];
            Assert.True(
                x >= b[0] - mx && x <= b[2] + mx && y >= b[1] - my && y <= b[3] + my,
                $"point {i} ({x:0.0},{y:0.0}) outside the box +25%"
            );
            Assert.True(float.IsFinite(r.Points[i * 3 + 2]));
        }
        // MediaPipe indices: 33/133 right eye corners, 362/263 left eye corners, 1 nose tip, 13/14 lips.
        float Dist(int i, float x, float y) =>
            MathF.Sqrt(MathF.Pow(r.Points[i * 3] - x, 2) + MathF.Pow(r.Points[i * 3 + 1] - y, 2));
        var k = face.Keypoints;
        var rightEye = ((r.Points[33 * 3] + r.Points[133 * 3]) / 2, (r.Points[33 * 3 + 1] + r.Points[133 * 3 + 1]) / 2);
        var leftEye = (
            (r.Points[362 * 3] + r.Points[263 * 3]) / 2,
            (r.Points[362 * 3 + 1] + r.Points[263 * 3 + 1]) / 2
        );
        Assert.True(
            MathF.Sqrt(MathF.Pow(rightEye.Item1 - k[0], 2) + MathF.Pow(rightEye.Item2 - k[1], 2)) < 10,
            $"mesh right eye {rightEye} vs keypoint ({k[0]},{k[1]})"
        );
        Assert.True(
            MathF.Sqrt(MathF.Pow(leftEye.Item1 - k[2], 2) + MathF.Pow(leftEye.Item2 - k[3], 2)) < 10,
            $"mesh left eye {leftEye} vs keypoint ({k[2]},{k[3]})"
        );
        Assert.True(Dist(1, k[4], k[5]) < 12, "mesh nose tip far from the detector's");
    }

    [Fact]
    public void Mesh_of_a_non_face_region_is_not_present()
    {
        var mesh = FaceModels.For(_env.Engine).Mesh("cpu0")!;
        using var img = FaceEnv.Astronaut();
        // A box on the flag / background at the top right, no face there.
        var r = mesh.Run(
            img,
            new Blankend.Orleans.Ai.AiFace(
                0.9f,
                [400, 20, 480, 100],
                [420, 50, 460, 50, 440, 70, 440, 85, 405, 55, 475, 55],
                null
            )
        );
        Assert.NotNull(r);
        Assert.False(r.Present, $"presence {r.Presence}");
    }
}
