using Blankend.Orleans.Tests.Support;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Xunit;

namespace Blankend.Orleans.Tests.Ai;

/// <summary>The shipped models are the batch-dynamic copies (models/LICENSE-NOTES.md): one inference call may carry
/// the frames of several sources, and each frame's result must be what a call of its own gives.</summary>
[Trait(TestKind.Name, TestKind.Unit)]
public sealed class BatchModelTests
{
    public static TheoryData<string> Models =>
        new()
        {
            "blazeface_front_128.onnx",
            "blazeface_back_256.onnx",
            "face_landmark.onnx",
            "selfie_segmentation.onnx",
            "selfie_segmentation_landscape.onnx",
        };

    [Theory]
    [MemberData(nameof(Models))]
    public void ShippedModelHasADynamicBatchDimension(string file)
    {
        using var session = new InferenceSession(FaceEnv.ShippedModel(file));
        foreach (var (name, meta) in session.InputMetadata)
            Assert.True(meta.Dimensions[0] < 0, $"{file}: input {name} has a fixed batch of {meta.Dimensions[0]}");
        foreach (var (name, meta) in session.OutputMetadata)
            Assert.True(meta.Dimensions[0] < 0, $"{file}: output {name} has a fixed batch of {meta.Dimensions[0]}");
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void ABatchOfFourEqualsFourSingleRunsExactlyOnCpu(string file)
    {
        const int n = 4;
        using var options = new SessionOptions
        {
            IntraOpNumThreads = 1,
            LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR,
        };
        using var session = new InferenceSession(FaceEnv.ShippedModel(file), options);
        var (inName, inMeta) = session.InputMetadata.Single();
        var frame = inMeta.Dimensions[1..].Select(d => (int)d).ToArray(); // H, W, 3
        var perFrame = frame.Aggregate(1, (a, b) => a * b);
        var random = new Random(1234);
        var batch = new float[n * perFrame];
        for (var i = 0; i < batch.Length; i++)
            batch[i] = (float)random.NextDouble();

        using var batched = session.Run([
            NamedOnnxValue.CreateFromTensor(inName, new DenseTensor<float>(batch, [n, .. frame])),
        ]);
        for (var k = 0; k < n; k++)
        {
            var single = batch.AsSpan(k * perFrame, perFrame).ToArray();
            using var one = session.Run([
                NamedOnnxValue.CreateFromTensor(inName, new DenseTensor<float>(single, [1, .. frame])),
            ]);
            foreach (var output in one)
            {
                var expected = output.AsTensor<float>().ToArray();
                var all = batched.Single(o => o.Name == output.Name).AsTensor<float>().ToArray();
                Assert.Equal(n * expected.Length, all.Length);
                var got = all.AsSpan(k * expected.Length, expected.Length);
                for (var i = 0; i < expected.Length; i++)
                {
                    if (BitConverter.SingleToInt32Bits(got[i]) != BitConverter.SingleToInt32Bits(expected[i]))
                        Assert.Fail(
                            $"{file}: output {output.Name}, frame {k}, value {i}: batch {got[i]} vs single {expected[i]}"
                        );
                }
            }
        }
    }
}
