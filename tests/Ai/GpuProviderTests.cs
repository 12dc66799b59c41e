using Blankend.Orleans.Ai;
using Blankend.Orleans.Tests.Support;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Xunit;

namespace Blankend.Orleans.Tests.Ai;

/// <summary>What only a GPU host with the GPU build can show (skipped elsewhere, with the reason): the CUDA
/// provider chosen without fallback, and a CUDA batch equal to CPU single runs within float tolerance.</summary>
[Trait(TestKind.Name, TestKind.Unit)]
public sealed class GpuProviderTests
{
    [GpuFact]
    public void AutoOnAGpuHostRunsTheGpuDevicesOnCuda()
    {
        using var env = new FaceEnv();
        var s = env.Runtime.ProviderState;
        Assert.Equal((AiProviders.Cuda, false), (s.Active, s.Fallback));
        Assert.Equal(AiProviders.Cuda, env.Runtime.Get(AiModelKind.FaceDetect, "gpu0")!.Provider);
    }

    [GpuFact]
    public void ACudaBatchOfEightEqualsCpuSingleRunsWithinTolerance()
    {
        const int n = 8;
        var file = FaceEnv.ShippedModel("selfie_segmentation.onnx");
        using var cudaOptions = new SessionOptions();
        cudaOptions.AppendExecutionProvider_CUDA(0);
        using var cuda = new InferenceSession(file, cudaOptions);
        using var cpu = new InferenceSession(file);
        var (inName, inMeta) = cpu.InputMetadata.Single();
        var frame = inMeta.Dimensions[1..];
        var perFrame = frame.Aggregate(1, (a, b) => a * b);
        var random = new Random(99);
        var batch = new float[n * perFrame];
        for (var i = 0; i < batch.Length; i++)
            batch[i] = (float)random.NextDouble();
        using var gpuOut = cuda.Run([
            NamedOnnxValue.CreateFromTensor(inName, new DenseTensor<float>(batch, [n, .. frame])),
        ]);
        var all = gpuOut[0].AsTensor<float>().ToArray();
        for (var k = 0; k < n; k++)
        {
            using var one = cpu.Run([
                NamedOnnxValue.CreateFromTensor(
                    inName,
                    new DenseTensor<float>(batch.AsSpan(k * perFrame, perFrame).ToArray(), [1, .. frame])
                ),
            ]);
            var expected = one[0].AsTensor<float>().ToArray();
            double diff = 0,
                norm = 0;
            for (var i = 0; i < expected.Length; i++)
            {
                var d = all[k * expected.Length + i] - expected[i];
                diff += d * d;
                norm += expected[i] * (double)expected[i];
            }
            Assert.True(Math.Sqrt(diff / norm) < 1e-3, $"frame {k}: relative error {Math.Sqrt(diff / norm):E2}");
        }
    }
}
