using Blankend.Orleans.Ai;
using Blankend.Orleans.Grains.Ai.Face.Insight;
using Blankend.Orleans.Tests.Support;
using Xunit;

namespace Blankend.Orleans.Tests.Ai;

/// <summary>insightface's 5-point similarity alignment (estimate_norm) against hand-computed matrices.</summary>
[Trait(TestKind.Name, TestKind.Unit)]
public sealed class InsightFaceAlignTests
{
    private static float[] Template112() => [.. FaceAlign.ArcFaceTemplate.Select(v => (float)v)];

    private static void AssertMatrix(double[] expected, double[] actual, double tolerance = 1e-6)
    {
        Assert.Equal(6, actual.Length);
        for (var i = 0; i < 6; i++)
            Assert.True(
                Math.Abs(expected[i] - actual[i]) <= tolerance,
                $"M[{i / 3},{i % 3}] = {actual[i]}, expected {expected[i]}"
            );
    }

    [Fact]
    public void Template_points_map_onto_themselves_at_112_and_move_8_pixels_right_at_128()
    {
        AssertMatrix([1, 0, 0, 0, 1, 0], FaceAlign.EstimateNorm(Template112(), 112), 1e-5);
        AssertMatrix([1, 0, 8, 0, 1, 0], FaceAlign.EstimateNorm(Template112(), 128), 1e-5);
        // 224 = 2 x 112: the template doubles.
        AssertMatrix([2, 0, 0, 0, 2, 0], FaceAlign.EstimateNorm(Template112(), 224), 1e-5);
    }

    [Fact]
    public void A_face_twice_the_template_size_and_shifted_gets_half_scale_and_the_inverse_shift()
    {
        var t = Template112();
        var lmk = new float[10];
        for (var i = 0; i < 5; i++)
        {
            lmk[i * 2] = 2 * t[i * 2] + 10;
            lmk[i * 2 + 1] = 2 * t[i * 2 + 1] + 20;
        }
        AssertMatrix([0.5, 0, -5, 0, 0.5, -10], FaceAlign.EstimateNorm(lmk, 112), 1e-5);
    }

    [Fact]
    public void A_face_rotated_by_90_degrees_is_rotated_back()
    {
        // (x, y) -> (-y, x): the alignment must be the inverse rotation (x, y) -> (y, -x).
        var t = Template112();
        var lmk = new float[10];
        for (var i = 0; i < 5; i++)
        {
            lmk[i * 2] = -t[i * 2 + 1];
            lmk[i * 2 + 1] = t[i * 2];
        }
        AssertMatrix([0, 1, 0, -1, 0, 0], FaceAlign.EstimateNorm(lmk, 112), 1e-5);
    }

    [Fact]
    public void Noisy_keypoints_give_the_least_squares_similarity_of_Umeyamas_SVD_solution()
    {
        // Expected values computed with numpy from Umeyama's SVD formulation (skimage's _umeyama, estimate_scale):
        // an independent implementation of the same least-squares problem.
        float[] lmk = [210, 180, 290, 170, 255, 230, 220, 280, 285, 272];
        AssertMatrix(
            [0.4138780066, -0.0229124984, -43.0837080132, 0.0229124984, 0.4138780066, -27.5751502802],
            FaceAlign.EstimateNorm(lmk, 112)
        );
        AssertMatrix(
            [0.4138780066, -0.0229124984, -35.0837080132, 0.0229124984, 0.4138780066, -27.5751502802],
            FaceAlign.EstimateNorm(lmk, 128)
        );
        // Mirrored points (the best fit would be a reflection): Umeyama's d = -1 guard gives a proper rotation.
        float[] mirrored = [-210, 180, -290, 170, -255, 230, -220, 280, -285, 272];
        AssertMatrix(
            [0.1120813823, -0.0116441417, 86.9069020244, 0.0116441417, 0.1120813823, 49.4598787679],
            FaceAlign.EstimateNorm(mirrored, 112)
        );
    }

    [Fact]
    public void Invert_undoes_the_alignment()
    {
        float[] lmk = [210, 180, 290, 170, 255, 230, 220, 280, 285, 272];
        var m = FaceAlign.EstimateNorm(lmk, 128);
        var im = FaceAlign.Invert(m);
        var (x, y) = (37.0, 91.0);
        var fx = m[0] * x + m[1] * y + m[2];
        var fy = m[3] * x + m[4] * y + m[5];
        Assert.Equal(x, im[0] * fx + im[1] * fy + im[2], 9);
        Assert.Equal(y, im[3] * fx + im[4] * fy + im[5], 9);
    }

    [Fact]
    public void Five_points_come_from_SCRFD_keypoints_or_from_the_mesh_eyes_nose_tip_and_mouth_corners()
    {
        Span<float> kps = stackalloc float[10];
        // SCRFD: its own five, moved from continuous to index coordinates.
        var scrfd = new AiFace(
            0.9f,
            [0, 0, 10, 10],
            [1.5f, 2.5f, 3.5f, 4.5f, 5.5f, 6.5f, 7.5f, 8.5f, 9.5f, 10.5f],
            null
        );
        Assert.True(FaceAlign.FivePoints(scrfd, kps));
        Assert.Equal([1f, 2, 3, 4, 5, 6, 7, 8, 9, 10], kps.ToArray());

        // BlazeFace (6 keypoints) with a mesh: point i at (i + 0.5, 2i + 0.5).
        var mesh = new float[468 * 3];
        for (var i = 0; i < 468; i++)
        {
            mesh[i * 3] = i + 0.5f;
            mesh[i * 3 + 1] = 2 * i + 0.5f;
        }
        var blaze = new AiFace(0.9f, [0, 0, 10, 10], new float[12], mesh);
        Assert.True(FaceAlign.FivePoints(blaze, kps));
        var eyeR = (33 + 133 + 159 + 145) / 4f;
        var eyeL = (263 + 362 + 386 + 374) / 4f;
        float[] expected = [eyeR, 2 * eyeR, eyeL, 2 * eyeL, 1, 2, 61, 122, 291, 582];
        for (var i = 0; i < 10; i++)
            Assert.Equal(expected[i], kps[i], 3);

        // Neither: no five points.
        Assert.False(FaceAlign.FivePoints(blaze with { Mesh = null }, kps));
    }
}
