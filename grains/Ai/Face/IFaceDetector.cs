using Blankend.Orleans.Ai;
using Blankend.Orleans.Grains.Ai.Runtime;
using OpenCvSharp;

namespace Blankend.Orleans.Grains.Ai.Face;

/// <summary>A face detector over one ONNX session: BlazeFace (shipped) or SCRFD (insightface).</summary>
internal interface IFaceDetector : IDisposable
{
    OnnxModel Model { get; }

    /// <summary>"BlazeFace 128x128 (CPU)", "SCRFD 640x640 (CPU)": for the status API.</summary>
    string Describe { get; }

    /// <summary>Faces in frame pixels (continuous coordinates), best score first.</summary>
    AiFace[] Detect(Mat image);

    /// <summary>The faces of several images, in order: one inference call per batch where the model takes a
    /// batch (BlazeFace), else one call per image.</summary>
    AiFace[][] DetectMany(ReadOnlySpan<Mat> images)
    {
        var result = new AiFace[images.Length][];
        for (var i = 0; i < images.Length; i++)
            result[i] = Detect(images[i]);
        return result;
    }
}
