using Blankend.Orleans.Grains.Ai.Runtime;
using OpenCvSharp;

namespace Blankend.Orleans.Grains.Ai.Face.Insight;

/// <summary>
/// GFPGAN 1.4 face enhancer (the ONNX export Deep-Live-Cam and FaceFusion use): the face aligned by its five
/// points to the FFHQ 512x512 template (facexlib's), RGB, (x/255 − 0.5)/0.5, NCHW; the output clipped to
/// [−1, 1], back to 0..255 and pasted back with the same soft mask as the swap (<see
/// cref="InswapperModel.PasteBack"/>).
/// The alignment is the least-squares similarity (facexlib fits it with LMEDS; for five good points the two agree
/// closely). Thread-safe (buffers per call).
/// </summary>
internal sealed class GfpganModel
{
    public const int Size = 512;

    /// <summary>FFHQ five points in a 512x512 crop: image-left eye, image-right eye, nose, mouth corners.</summary>
    public static readonly double[] Template =
    [
        192.98138,
        239.94708,
        318.90277,
        240.1936,
        256.63416,
        314.01935,
        201.26117,
        371.41043,
        313.08905,
        371.15118,
    ];

    private readonly string _input,
        _output;
    private long _runs;

    /// <exception cref="InvalidDataException">Not a [1,3,512,512] -> [1,3,512,512] float model.</exception>
    public GfpganModel(OnnxModel model)
    {
        Model = model;
        (_input, _output) = NchwImage.SingleInputOutput(
            model,
            d => d is [_, 3, Size, Size],
            d => d is [_, 3, Size, Size],
            (
                "GFPGAN has one input [1,3,512,512] and an output [1,3,512,512]",
                "GFPGAN takes float [1,3,512,512]",
                "GFPGAN gives float [1,3,512,512]"
            )
        );
    }

    public OnnxModel Model { get; }

    public long Runs => Interlocked.Read(ref _runs);

    /// <summary>Enhances the face with these five keypoints (index coordinates) in place; returns the region
    /// changed.</summary>
    public Rect Enhance(Mat frame, ReadOnlySpan<float> kps)
    {
        var m = FaceAlign.Similarity(kps, Template);
        using var crop = new Mat();
        FaceAlign.Crop(frame, m, Size, crop);
        var input = new float[3 * Size * Size];
        NchwImage.Fill(crop, input, 127.5, 127.5); // (x/255 - 0.5)/0.5
        var pred = NchwImage.Run(Model, [_input], [(input, [1, 3, Size, Size])], _output);
        Interlocked.Increment(ref _runs);
        for (var i = 0; i < pred.Length; i++)
            pred[i] = (Math.Clamp(pred[i], -1f, 1f) + 1) / 2;
        using var restored = new Mat();
        NchwImage.ToBgr(pred, Size, Size, restored);
        return InswapperModel.PasteBack(frame, restored, m);
    }
}
