using Blankend.Orleans.Ai;
using Blankend.Orleans.Grains.Ai.Face;
using Blankend.Orleans.Grains.Ai.Face.Insight;
using Blankend.Orleans.Grains.Ai.Runtime;
using Blankend.Orleans.Tests.Support;
using OpenCvSharp;
using Xunit;

namespace Blankend.Orleans.Tests.Ai;

/// <summary>SCRFD decoding (strides 8/16/32, 2 anchors, distance boxes and keypoints, NMS), the detector on a
/// generated SCRFD-signature model, and the insightface model pack folder.</summary>
[Trait(TestKind.Name, TestKind.Unit)]
public sealed class InsightFaceScrfdTests
{
    [Fact]
    public void Known_outputs_decode_to_distance_boxes_and_keypoints_around_the_anchor_and_nms_keeps_the_best()
    {
        // A 64x64 input: 8x8, 4x4 and 2x2 cells with 2 anchors each.
        var outs = new float[9][];
        int[] anchors = [128, 32, 8];
        for (var s = 0; s < 3; s++)
        {
            outs[s] = new float[anchors[s]];
            outs[s + 3] = new float[anchors[s] * 4];
            outs[s + 6] = new float[anchors[s] * 10];
        }
        // A: stride 8, cell (x 3, y 2), second anchor: centre (24, 16).
        outs[0][(2 * 8 + 3) * 2 + 1] = 0.9f;
        float[] da = [1, 2, 3, 4];
        da.CopyTo(outs[3], ((2 * 8 + 3) * 2 + 1) * 4);
        float[] ka = [0.5f, 0.5f, 1, 1, 1.5f, 1.5f, 2, 2, 2.5f, 2.5f];
        ka.CopyTo(outs[6], ((2 * 8 + 3) * 2 + 1) * 10);
        // B: stride 16, cell (1, 1), first anchor: centre (16, 16), the same box as A with a lower score.
        outs[1][(1 * 4 + 1) * 2] = 0.8f;
        float[] db = [0, 1, 2, 2];
        db.CopyTo(outs[4], (1 * 4 + 1) * 2 * 4);
        // C: stride 32, cell (1, 1), second anchor: centre (32, 32), box (24, 24, 48, 48): IoU with A 0.387 < 0.4.
        outs[2][(1 * 2 + 1) * 2 + 1] = 0.7f;
        float[] dc = [0.25f, 0.25f, 0.5f, 0.5f];
        dc.CopyTo(outs[5], ((1 * 2 + 1) * 2 + 1) * 4);
        // D: below the threshold.
        outs[0][0] = 0.3f;

        var faces = ScrfdDetector.Decode(outs, 64, 64, 0.5f);
        Assert.Equal(2, faces.Count);
        Assert.Equal(0.9f, faces[0].Score);
        Assert.Equal([16f, 0, 48, 48], faces[0].Box);
        Assert.Equal([28f, 20, 32, 24, 36, 28, 40, 32, 44, 36], faces[0].Kps);
        Assert.Equal(0.7f, faces[1].Score);
        Assert.Equal([24f, 24, 48, 48], faces[1].Box);
        Assert.Equal([32f, 32, 32, 32, 32, 32, 32, 32, 32, 32], faces[1].Kps);
        Assert.InRange(ScrfdDetector.Iou(faces[0].Box, faces[1].Box), 0.38f, 0.39f);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void A_scrfd_file_as_face_detect_model_is_told_from_its_outputs_and_finds_the_face_with_five_keypoints(
        int scale
    )
    {
        using var env = new FaceEnv(configure: o => o.FaceDetectModel = InsightFaceModelTests.Model("scrfd_test.onnx"));
        var models = FaceModels.For(env.Engine);
        var detector = models.FaceDetector("cpu0");
        Assert.IsType<ScrfdDetector>(detector);
        Assert.Null(models.Detector("cpu0")); // not BlazeFace
        Assert.Equal("scrfd", models.LoadedDetectorFormat);
        Assert.StartsWith("cpu0: SCRFD 640x640", models.Status["detect"]);

        // A white square on stride-32 cell (10, 6) of a black 640x480 frame (x scale): the test model scores it
        // 0.996 and gives distances of 2 x 32 px on each side; the input is the frame resized by 1/scale.
        using var frame = new Mat(480 * scale, 640 * scale, MatType.CV_8UC3, Scalar.All(0));
        frame.Rectangle(new Rect(320 * scale, 192 * scale, 32 * scale, 32 * scale), Scalar.All(255), -1);
        var face = Assert.Single(detector!.Detect(frame));
        Assert.Equal(0.996f, face.Score, 3);
        // insightface's coordinates divided by the resize scale, + 0.5 (AiFace: continuous coordinates).
        float[] box = [256, 128, 384, 256];
        Assert.Equal(box.Select(v => v * scale + 0.5f).ToArray(), face.Box);
        float[] kps = [304, 184, 336, 184, 320, 200, 307.2f, 220.8f, 332.8f, 220.8f];
        for (var i = 0; i < 10; i++)
            Assert.Equal(kps[i] * scale + 0.5f, face.Keypoints[i], 3);
    }

    [Fact]
    public void The_insightface_pack_folder_supplies_det_and_w600k_files_unless_a_path_is_set()
    {
        var dir = Directory.CreateTempSubdirectory("buffalo_test").FullName;
        try
        {
            using (var env = new FaceEnv(configure: o => o.InsightfaceDir = dir))
            {
                // An empty pack: BlazeFace still detects; the recognition model is missing, by name.
                Assert.EndsWith("blazeface_front_128.onnx", env.Runtime.PathOf(AiModelKind.FaceDetect));
                Assert.Equal(
                    $"model file not found: {Path.Combine(dir, "w600k_*.onnx")}",
                    env.Runtime.UnavailableReason(AiModelKind.ArcFace)
                );
            }
            File.Copy(InsightFaceModelTests.Model("scrfd_test.onnx"), Path.Combine(dir, "det_10g.onnx"));
            File.Copy(InsightFaceModelTests.Model("arcface_test.onnx"), Path.Combine(dir, "w600k_r50.onnx"));
            File.WriteAllText(Path.Combine(dir, "genderage.onnx"), "not used");
            using (var env = new FaceEnv(configure: o => o.InsightfaceDir = dir))
            {
                Assert.Equal(Path.Combine(dir, "det_10g.onnx"), env.Runtime.PathOf(AiModelKind.FaceDetect));
                Assert.Equal(Path.Combine(dir, "w600k_r50.onnx"), env.Runtime.PathOf(AiModelKind.ArcFace));
                Assert.IsType<ScrfdDetector>(FaceModels.For(env.Engine).FaceDetector("cpu0"));
                Assert.NotNull(env.Runtime.Get(AiModelKind.ArcFace, "cpu0"));
            }
            var blaze = FaceEnv.ShippedModel("blazeface_front_128.onnx");
            using (
                var env = new FaceEnv(configure: o =>
                {
                    o.InsightfaceDir = dir;
                    o.FaceDetectModel = blaze;
                })
            )
            {
                Assert.Equal(blaze, env.Runtime.PathOf(AiModelKind.FaceDetect));
            }
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
