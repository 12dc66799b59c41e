// TEMPORARY until the face steps branch is merged (removed by that merge).
using Blankend.Orleans.Ai;
using OpenCvSharp;
namespace Blankend.Orleans.Grains.Ai;
internal static class FaceDraw { public static void Draw(Mat m, AiFace[] f, bool mesh) { } }
internal static class FaceReference { public static string? Check(AiEngine e, Mat m, string d) => "pending"; }
