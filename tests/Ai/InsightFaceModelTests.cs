using Blankend.Orleans.Ai;
using Blankend.Orleans.Grains.Ai.Face;
using Blankend.Orleans.Grains.Ai.Face.Insight;
using Blankend.Orleans.Grains.Ai.Runtime;
using Blankend.Orleans.Tests.Support;
using OpenCvSharp;
using Xunit;

namespace Blankend.Orleans.Tests.Ai;

/// <summary>The emap reader, the latent, ArcFace's input and inswapper's paste-back, on generated models with
/// the real signatures (scripts/make-insightface-test-models.py).</summary>
[Trait(TestKind.Name, TestKind.Unit)]
public sealed class InsightFaceModelTests
{
    public static string Model(string file) => TestEnv.TestData(Path.Combine("models", file));

    private static float Emap(int i, int j) => ((7 * i + 13 * j) % 17 - 8) / 8f;

    [Fact]
    public void The_emap_is_read_from_the_onnx_protobuf_as_the_graphs_last_initializer()
    {
        var t = OnnxInitializerReader.ReadLast(Model("inswapper_test.onnx"));
        Assert.Equal("emap", t.Name);
        Assert.Equal([512L, 512L], t.Dims);
        for (var i = 0; i < 512; i++)
        for (var j = 0; j < 512; j++)
            Assert.Equal(Emap(i, j), t.Values[i * 512 + j]);

        // float_data instead of raw_data.
        var q = OnnxInitializerReader.ReadLast(Model("inswapper_noemap_test.onnx"));
        Assert.Equal("quarter", q.Name);
        Assert.Empty(q.Dims);
        Assert.Equal([0.25f], q.Values);
    }

    [Fact]
    public void Reading_an_initializer_from_a_file_that_cannot_have_one_fails_with_a_reason()
    {
        var png = Assert.Throws<InvalidDataException>(() =>
            OnnxInitializerReader.ReadLast(TestEnv.TestData("astronaut.png"))
        );
        Assert.False(string.IsNullOrEmpty(png.Message));
        // The ArcFace test model's last initializer is int64 pads.
        var pads = Assert.Throws<InvalidDataException>(() =>
            OnnxInitializerReader.ReadLast(Model("arcface_test.onnx"))
        );
        Assert.Contains("data type 7", pads.Message);
    }

    [Fact]
    public void The_latent_is_the_embedding_times_the_emap_renormalised()
    {
        var emap = new float[512 * 512];
        for (var i = 0; i < 512; i++)
        for (var j = 0; j < 512; j++)
            emap[i * 512 + j] = Emap(i, j);

        // A one-hot embedding picks the emap's row, normalised.
        var e = new float[512];
        e[5] = 1;
        var latent = InswapperModel.Latent(e, emap);
        var norm = Math.Sqrt(Enumerable.Range(0, 512).Sum(j => (double)Emap(5, j) * Emap(5, j)));
        for (var j = 0; j < 512; j++)
            Assert.Equal(Emap(5, j) / norm, latent[j], 5);

        // Any embedding: (e . emap) / |e . emap|, unit length.
        var rng = new Random(7);
        var x = ArcFaceModel.Normalise([.. Enumerable.Range(0, 512).Select(_ => (float)(rng.NextDouble() - 0.5))]);
        latent = InswapperModel.Latent(x, emap);
        var l = new double[512];
        for (var i = 0; i < 512; i++)
        for (var j = 0; j < 512; j++)
            l[j] += x[i] * (double)Emap(i, j);
        var n = Math.Sqrt(l.Sum(v => v * v));
        for (var j = 0; j < 512; j++)
            Assert.Equal(l[j] / n, latent[j], 5);
        Assert.Equal(1.0, Math.Sqrt(latent.Sum(v => (double)v * v)), 5);
    }

    [Fact]
    public void ArcFace_gets_the_aligned_crop_as_rgb_planes_normalised_by_127_5_and_the_embedding_is_l2_normalised()
    {
        using var env = new FaceEnv(configure: o => o.ArcfaceModel = Model("arcface_test.onnx"));
        var model = env.Runtime.Get(AiModelKind.ArcFace, "cpu0");
        Assert.NotNull(model);
        var arc = new ArcFaceModel(model);
        // A uniform frame (B, G, R) = (0, 191, 255) with the face well inside it: every crop pixel is that colour.
        using var frame = new Mat(400, 400, MatType.CV_8UC3, new Scalar(0, 191, 255));
        float[] kps = [160, 180, 240, 180, 200, 220, 170, 260, 230, 260];
        var e = arc.Embed(frame, kps);
        Assert.Equal(1, arc.Runs);
        // The test model gives 49 x R, 49 x G, 49 x B (normalised), then zeros.
        double r = (255 - 127.5) / 127.5,
            g = (191 - 127.5) / 127.5,
            b = (0 - 127.5) / 127.5;
        var n = Math.Sqrt(49 * (r * r + g * g + b * b));
        Assert.Equal(r / n, e[0], 4);
        Assert.Equal(g / n, e[49], 4);
        Assert.Equal(b / n, e[98], 4);
        Assert.All(e.Skip(147), v => Assert.Equal(0f, v));
        Assert.Equal(1.0, Math.Sqrt(e.Sum(v => (double)v * v)), 5);
    }

    [Fact]
    public void Paste_back_changes_the_face_through_an_eroded_blurred_mask_and_nothing_outside_it()
    {
        using var frame = new Mat(240, 320, MatType.CV_8UC3);
        Cv2.Randu(frame, Scalar.All(0), Scalar.All(100));
        using var before = frame.Clone();
        // A face 1.5 x the 128 template, at (80, 40).
        var t = FaceAlign.Template(128);
        var kps = new float[10];
        for (var i = 0; i < 5; i++)
        {
            kps[i * 2] = (float)(t[i * 2] * 1.5 + 80);
            kps[i * 2 + 1] = (float)(t[i * 2 + 1] * 1.5 + 40);
        }
        var m = FaceAlign.EstimateNorm(kps, 128);
        using var fake = new Mat(128, 128, MatType.CV_8UC3, Scalar.All(255));
        var region = InswapperModel.PasteBack(frame, fake, m);

        // The crop square maps back to x 80..272, y 40..232 (plus a small margin); nothing outside the region changed.
        Assert.InRange(region.X, 75, 80);
        Assert.InRange(region.Y, 35, 40);
        Assert.InRange(region.Right, 272, 276);
        Assert.InRange(region.Bottom, 232, 236);
        using var diff = new Mat();
        Cv2.Absdiff(before, frame, diff);
        using var gray = new Mat();
        Cv2.CvtColor(diff, gray, ColorConversionCodes.BGR2GRAY);
        using (var outside = new Mat(gray.Size(), MatType.CV_8UC1, Scalar.All(255)))
        {
            outside.Rectangle(region, Scalar.All(0), -1);
            Cv2.MinMaxLoc(gray, out _, out var maxOutside, out _, out _, outside);
            Assert.Equal(0, maxOutside);
        }
        // The mask: the white square (~192 px) eroded by max(191/10, 10) = 19 px (9 each side), blurred with
        // 2 x max(191/20, 5) + 1 = 19 px: the face centre is the fake; 1-2 px inside the square the frame is
        // (almost: the blur's tail) as it was, where an uneroded mask would be half white; at the eroded edge, half
        // way.
        var centre = frame.At<Vec3b>(136, 176);
        Assert.Equal(255, centre.Item0);
        Assert.Equal(255, centre.Item2);
        foreach (var (y, x) in new[] { (41, 176), (230, 176), (136, 81), (136, 270) })
        {
            var was = before.At<Vec3b>(y, x);
            var now = frame.At<Vec3b>(y, x);
            Assert.True(Math.Abs(was.Item0 - now.Item0) <= 8, $"({x},{y}) changed from {was.Item0} to {now.Item0}");
        }
        var half = frame.At<Vec3b>(136, 89).Item0;
        Assert.InRange(half, before.At<Vec3b>(136, 89).Item0 + 20, 235);
    }

    [Fact]
    public void Inswapper_gets_the_aligned_face_in_rgb_0_to_1_and_the_latent_and_its_output_is_pasted_back()
    {
        using var env = new FaceEnv(configure: o => o.SwapModel = Model("inswapper_test.onnx"));
        var model = env.Runtime.Get(AiModelKind.Swap, "cpu0");
        Assert.NotNull(model);
        var swapper = new InswapperModel(model, () => OnnxInitializerReader.ReadLast(model.Path));
        Assert.Equal(128, swapper.Size);
        Assert.Equal("emap", swapper.EmapName);
        using var frame = new Mat(300, 300, MatType.CV_8UC3, new Scalar(40, 100, 160));
        var t = FaceAlign.Template(128);
        var kps = new float[10];
        for (var i = 0; i < 5; i++)
        {
            kps[i * 2] = (float)(t[i * 2] + 80);
            kps[i * 2 + 1] = (float)(t[i * 2 + 1] + 80);
        }
        var latent = new float[512];
        latent[0] = 1; // the test model adds 0.25 x latent[0..2] to R, G, B
        var region = swapper.Swap(frame, kps, latent);
        Assert.Equal(1, swapper.Runs);
        Assert.True(region.Width > 0);
        // Output = 1 - input (+0.25 on R): B 255-40, G 255-100, R 255-160+63.75 (truncated to 8 bits).
        var c = frame.At<Vec3b>(144, 144);
        Assert.InRange(c.Item0, 214, 216);
        Assert.InRange(c.Item1, 154, 156);
        Assert.InRange(c.Item2, 157, 159);
        Assert.Equal(new Vec3b(40, 100, 160), frame.At<Vec3b>(5, 5));
    }

    [Fact]
    public void Wrong_signatures_are_refused_with_what_was_expected()
    {
        using var env = new FaceEnv(configure: o =>
        {
            o.SwapModel = Model("depth_test.onnx");
            o.ArcfaceModel = Model("rvm_test.onnx");
        });
        var swap = env.Runtime.Get(AiModelKind.Swap, "cpu0")!;
        var e = Assert.Throws<InvalidDataException>(() =>
            new InswapperModel(swap, () => throw new InvalidOperationException("emap read for a non-inswapper file"))
        );
        Assert.Contains("inswapper", e.Message);
        var arc = env.Runtime.Get(AiModelKind.ArcFace, "cpu0")!;
        Assert.Contains("ArcFace", Assert.Throws<InvalidDataException>(() => new ArcFaceModel(arc)).Message);
    }
}
