using Blankend.Orleans.Ai;
using Blankend.Orleans.Grains.Ai.Face;
using Blankend.Orleans.Grains.Ai.Runtime;
using Blankend.Orleans.Tests.Support;
using OpenCvSharp;
using Xunit;

namespace Blankend.Orleans.Tests.Ai;

[Trait(TestKind.Name, TestKind.Unit)]
public sealed class FaceDetectorTests(Xunit.Abstractions.ITestOutputHelper output) : IDisposable
{
    private readonly FaceEnv _env = new();

    private BlazeFaceDetector Detector() =>
        FaceModels.For(_env.Engine).Detector("cpu0")
        ?? throw new InvalidOperationException(_env.Runtime.UnavailableReason(AiModelKind.FaceDetect));

    public void Dispose() => _env.Dispose();

    /// <param name="dx">Where the image's origin (after scaling) lies in the frame.</param>
    private static void AssertAstronautFace(Blankend.Orleans.Ai.AiFace f, float dx = 0, float dy = 0, float scale = 1)
    {
        // models/LICENSE-NOTES.md: box (179,81)-(272,174), eyes (205,100) and (249,108) on the 512x512 image.
        float[] expected = [179, 81, 272, 174];
        var tol = 0.1f * (272 - 179) * scale;
        for (var i = 0; i < 4; i++)
        {
            var e = expected[i] * scale + (i % 2 == 0 ? dx : dy);
            Assert.True(MathF.Abs(f.Box[i] - e) <= tol, $"box[{i}] = {f.Box[i]:0.0}, expected {e:0.0} +- {tol:0.0}");
        }
        var k = f.Keypoints;
        Assert.Equal(12, k.Length);
        void Near(int kp, float x, float y, float within)
        {
            var ex = x * scale + dx;
            var ey = y * scale + dy;
            var dist = MathF.Sqrt((k[kp * 2] - ex) * (k[kp * 2] - ex) + (k[kp * 2 + 1] - ey) * (k[kp * 2 + 1] - ey));
            Assert.True(
                dist <= within * scale,
                $"keypoint {kp} at ({k[kp * 2]:0.0},{k[kp * 2 + 1]:0.0}), expected near ({ex:0.0},{ey:0.0})"
            );
        }
        Near(0, 205, 100, 12);
        Near(1, 249, 108, 12);
        // Nose tip below the eyes and between them; mouth below the nose; both inside the box.
        var eyeY = (k[1] + k[3]) / 2;
        Assert.InRange(k[4], k[0], k[2]);
        Assert.True(k[5] > eyeY + 5, $"nose y {k[5]:0.0} not below the eyes ({eyeY:0.0})");
        Assert.True(k[7] > k[5] + 5, $"mouth y {k[7]:0.0} not below the nose ({k[5]:0.0})");
        Assert.InRange(k[6], f.Box[0], f.Box[2]);
        Assert.InRange(k[7], f.Box[1], f.Box[3]);
    }

    [Fact]
    public void Front128_finds_the_astronaut_face_where_the_notes_say()
    {
        var d = Detector();
        Assert.Equal(128, d.InputSize);
        using var img = FaceEnv.Astronaut();
        var faces = d.Detect(img);
        var f = Assert.Single(faces);
        output.WriteLine(
            $"score {f.Score:0.000} box [{string.Join(", ", f.Box.Select(v => v.ToString("0.0")))}] keypoints [{string.Join(", ", f.Keypoints.Select(v => v.ToString("0.0")))}]"
        );
        Assert.InRange(f.Score, 0.85f, 1f);
        Assert.Null(f.Mesh);
        AssertAstronautFace(f);
    }

    [Fact]
    public void Jpeg_input_gives_the_same_face()
    {
        using var img = Cv2.ImRead(Support.TestEnv.TestData("astronaut.jpg"), ImreadModes.Color);
        AssertAstronautFace(Assert.Single(Detector().Detect(img)));
    }

    [Fact]
    public void Letterboxed_16x9_frame_maps_the_face_back_to_frame_pixels()
    {
        // Front model (short range): the face must be a similar share of the frame as on the 512 image.
        using var webcam = FaceEnv.Webcam720();
        AssertAstronautFace(Assert.Single(Detector().Detect(webcam)), 280 - 100 * 2.4f, 0, 2.4f);
        using var low = FaceEnv.Canvas720(600, 60, 640, new Rect(100, 0, 300, 300));
        AssertAstronautFace(Assert.Single(Detector().Detect(low)), 600 - 100 * 640 / 300f, 60, 640 / 300f);

        // Back model (256, farther faces): the unscaled 512 image pasted into the 1280x720 canvas.
        using var env = new FaceEnv(configure: o =>
            o.FaceDetectModel = FaceEnv.ShippedModel("blazeface_back_256.onnx")
        );
        var back = FaceModels.For(env.Engine).Detector("cpu0")!;
        using var canvas = FaceEnv.Canvas720(400, 104);
        var f = Assert.Single(back.Detect(canvas));
        float[] expected = [173 + 400, 74 + 104, 277 + 400, 178 + 104];
        for (var i = 0; i < 4; i++)
            Assert.InRange(f.Box[i], expected[i] - 10.4f, expected[i] + 10.4f);
    }

    [Fact]
    public void Back256_model_also_finds_the_face()
    {
        using var env = new FaceEnv(configure: o =>
            o.FaceDetectModel = FaceEnv.ShippedModel("blazeface_back_256.onnx")
        );
        var d = FaceModels.For(env.Engine).Detector("cpu0");
        Assert.NotNull(d);
        Assert.Equal(256, d.InputSize);
        using var img = FaceEnv.Astronaut();
        var f = Assert.Single(d.Detect(img));
        // Notes: 0.878, box (173,74)-(277,178).
        Assert.InRange(f.Score, 0.8f, 1f);
        float[] expected = [173, 74, 277, 178];
        for (var i = 0; i < 4; i++)
            Assert.InRange(f.Box[i], expected[i] - 10.4f, expected[i] + 10.4f);
        Assert.InRange(f.Keypoints[0], 193f, 217f);
        Assert.InRange(f.Keypoints[2], 237f, 261f);
    }

    [Fact]
    public void Images_without_a_face_give_none()
    {
        var d = Detector();
        var g = new byte[360 * 640 * 3];
        for (var y = 0; y < 360; y++)
        for (var x = 0; x < 640; x++)
        {
            var checker = ((x / 40) + (y / 40)) % 2 == 0 ? 60 : 0;
            var i = (y * 640 + x) * 3;
            g[i] = (byte)(x * 255 / 640);
            g[i + 1] = (byte)(y * 255 / 360);
            g[i + 2] = (byte)(128 + checker);
        }
        using var gradient = Mat.FromPixelData(360, 640, MatType.CV_8UC3, g);
        Assert.Empty(d.Detect(gradient));
        var n = new byte[480 * 640 * 3];
        new Random(12345).NextBytes(n);
        using var noise = Mat.FromPixelData(480, 640, MatType.CV_8UC3, n);
        Assert.Empty(d.Detect(noise));
        using var black = new Mat(720, 1280, MatType.CV_8UC3, Scalar.All(0));
        Assert.Empty(d.Detect(black));
    }

    [Fact]
    public void Hostile_sizes_and_formats_do_not_throw()
    {
        var d = Detector();
        using var tiny = new Mat(1, 1, MatType.CV_8UC3, Scalar.All(128));
        Assert.Empty(d.Detect(tiny));
        using var empty = new Mat();
        Assert.Empty(d.Detect(empty));
        using var big = new Mat(3000, 4000, MatType.CV_8UC3, Scalar.All(90));
        d.Detect(big);
        using var a = FaceEnv.Astronaut();
        using var gray = new Mat();
        Cv2.CvtColor(a, gray, ColorConversionCodes.BGR2GRAY);
        Assert.True(d.Detect(gray).Length <= 1);
        using var bgra = new Mat();
        Cv2.CvtColor(a, bgra, ColorConversionCodes.BGR2BGRA);
        AssertAstronautFace(Assert.Single(d.Detect(bgra)));
    }

    [Fact]
    public void Concurrent_callers_get_the_same_answer()
    {
        var d = Detector();
        using var img = FaceEnv.Astronaut();
        var first = Assert.Single(d.Detect(img));
        var boxes = new float[8][];
        Parallel.For(0, 8, i =>
        {
            for (var n = 0; n < 5; n++)
                boxes[i] = Assert.Single(d.Detect(img)).Box;
        });
        foreach (var b in boxes)
            Assert.Equal(first.Box, b);
    }
}
