using System.Diagnostics;
using Blankend.Orleans.Ai;
using Blankend.Orleans.Grains.Devices;
using OpenCvSharp;

namespace Blankend.Orleans.Grains.Ai.Face;

/// <summary>
/// Face detection (BlazeFace) on a device worker. Per source, the detector runs every
/// <c>face_detect_interval</c> frames (and whenever the frame size changes); the frames between reuse the last
/// faces. Sets <see cref="AiFrameData.Faces"/> and draws nothing (<see cref="FaceDraw"/> is for /ai/process).
/// Counters: <c>Engine.Step("detect")</c> records one run per detector run (its ms); the reused frames are
/// <see cref="FaceModels.DetectionsReused"/>.
/// </summary>
internal sealed class FaceDetectStep(AiEngine engine) : FaceStep(engine, StepName, AiSteps.Detect)
{
    public const string StepName = "detect";

    protected override void RunOne(FrameWork w, Mat image)
    {
        var detector = Models.FaceDetector(w.Device);
        if (detector is null)
        {
            FaceStepErrors.Unavailable(Engine, w, Name);
            return;
        }
        var state = Engine.StateFor(w.Source);
        AiFace[] faces;
        lock (state.Gate)
        {
            var interval = Math.Max(1, w.Settings.FaceDetectInterval);
            var due = state.DetectFrames % interval == 0 || state.LastFaces is null
                || state.LastFacesWidth != image.Cols || state.LastFacesHeight != image.Rows;
            state.DetectFrames++;
            if (due)
            {
                var t0 = Stopwatch.GetTimestamp();
                faces = detector.Detect(image);
                state.LastFaces = faces;
                state.LastFacesWidth = image.Cols;
                state.LastFacesHeight = image.Rows;
                Engine.Record(Name, t0);
                AiMetrics.Detections.Add(1);
                Models.CountRun();
            }
            else
            {
                faces = state.LastFaces!;
                w.Ai().FacesReused = true;
                Models.CountReuse();
            }
        }
        // A copy: later steps replace entries (mesh) and must not touch the per-source array.
        w.Faces = faces.Length == 0 ? [] : (AiFace[])faces.Clone();
    }
}

/// <summary>
/// Face mesh (468 points) for each face the detect step found: fills <see cref="AiFace.Mesh"/> (frame pixels)
/// when MediaPipe's presence (sigmoid(face_flag) &gt; 0.5) holds, and <see cref="AiFrameData.MeshPresence"/>.
/// Between detector runs the crop follows the face from the previous frame's landmarks (per source); a face
/// lost while tracked makes the next frame run the detector.
/// </summary>
internal sealed class FaceMeshStep(AiEngine engine) : FaceStep(engine, StepName, AiSteps.Mesh)
{
    public const string StepName = "mesh";

    protected override void RunOne(FrameWork w, Mat image)
    {
        var mesh = Models.Mesh(w.Device);
        if (mesh is null)
        {
            FaceStepErrors.Unavailable(Engine, w, Name);
            return;
        }
        if (w.Faces is not { } faces)
        {
            Engine.Skip(Name, "no detections");
            w.Note($"{Name}: no detections");
            return;
        }
        if (faces.Length == 0) return;
        var t0 = Stopwatch.GetTimestamp();
        var presence = new float[faces.Length];
        var next = new float[faces.Length * 4];
        var state = Engine.StateFor(w.Source);
        lock (state.Gate)
        {
            // Between detector runs each face's crop comes from its previous mesh (MediaPipe's tracking);
            // on a detector frame, from the detection.
            var track = w.Ai().FacesReused && state.TrackRois is { } t && t.Length == next.Length ? t : null;
            var lost = false;
            for (var i = 0; i < faces.Length; i++)
            {
                var r = track is null
                    ? mesh.Run(image, faces[i])
                    : mesh.Run(image, track[i * 4], track[i * 4 + 1], track[i * 4 + 2], track[i * 4 + 3]);
                presence[i] = r?.Presence ?? float.NaN;
                if (r is { Present: true })
                {
                    faces[i] = faces[i] with { Mesh = r.Points };
                    FaceMeshModel.RoiFromMesh(r.Points, next.AsSpan(i * 4, 4));
                }
                else
                {
                    lost = true;
                }
            }
            state.TrackRois = lost ? null : next;
            // A tracked face that got lost makes the next frame run the detector.
            if (lost && w.Ai().FacesReused) state.LastFaces = null;
        }
        w.Ai().MeshPresence = presence;
        Engine.Record(Name, t0);
    }
}

/// <summary>
/// Face swap: every face receives the uploaded reference face (<see cref="FaceSwapper.SwapFace"/>: inswapper
/// when it and an ArcFace model are usable, else the mesh warp). No reference asset: skipped ("no reference
/// face"), frame unchanged. The reference is analysed (and embedded) once per asset version.
/// </summary>
internal sealed class FaceSwapStep(AiEngine engine) : FaceStep(engine, StepName, AiSteps.Swap)
{
    public const string StepName = "swap";

    protected override void RunOne(FrameWork w, Mat image)
    {
        if (Engine.Asset(AiAssetKind.ReferenceFace) is not { } asset)
        {
            Engine.Skip(Name, "no reference face");
            w.Note($"{Name}: no reference face");
            return;
        }
        if (Models.FaceDetector(w.Device) is null || Models.Mesh(w.Device) is null)
        {
            FaceStepErrors.Unavailable(Engine, w, Name);
            return;
        }
        var reference = Models.Swapper.Reference(asset, w.Device);
        if (!reference.Usable)
        {
            Engine.Skip(Name, "reference unusable");
            w.Note($"{Name}: {reference.Error}");
            return;
        }
        if (image.Type() != MatType.CV_8UC3)
        {
            Engine.Skip(Name, "unsupported image format");
            w.Note($"{Name}: image is {image.Type()}, not 8-bit BGR");
            return;
        }
        if (w.Faces is not { Length: > 0 } faces)
        {
            Engine.Skip(Name, "no face");
            return;
        }
        var t0 = Stopwatch.GetTimestamp();
        var swapped = 0;
        foreach (var f in faces)
        {
            if (Models.Swapper.SwapFace(image, f, reference, w.Device)) swapped++;
        }
        if (swapped == 0)
        {
            Engine.Skip(Name, "no face mesh");
            return;
        }
        Engine.Record(Name, t0);
    }
}

internal static class FaceStepErrors
{
    /// <summary>What a face step may meet on a bad frame or model; it is counted, never thrown.</summary>
    public static bool Expected(Exception e) => e is not (OutOfMemoryException or StackOverflowException or ThreadAbortException);

    public static void Unavailable(AiEngine engine, FrameWork w, string step)
    {
        engine.Skip(step, "model unavailable");
        w.Note($"{step}: model unavailable");
    }

    public static void Skip(AiEngine engine, FrameWork w, string step, Exception e)
    {
        engine.Skip(step, "error");
        w.Note($"{step}: {e.GetType().Name}: {e.Message}");
    }
}

/// <summary>
/// What the three face steps share: their name and flag, the status line from <see cref="FaceModels"/>, and the
/// per-frame loop in which an expected failure (OpenCV, ONNX Runtime) skips that frame only, counted.
/// </summary>
internal abstract class FaceStep(AiEngine engine, string name, AiSteps flag) : IFrameStep, IAiStepStatus
{
    protected AiEngine Engine { get; } = engine;

    protected FaceModels Models { get; } = FaceModels.For(engine);

    public string Name => name;

    public string Status => Models.Status[name];

    public bool AppliesTo(EffectiveSettings settings) => (settings.ActiveAiSteps & flag) != 0;

    public void Run(ReadOnlySpan<FrameWork> batch)
    {
        foreach (var w in batch)
        {
            if (w.Failed || w.Image is not { } image) continue;
            try
            {
                RunOne(w, image);
            }
            catch (Exception e) when (FaceStepErrors.Expected(e))
            {
                FaceStepErrors.Skip(Engine, w, Name, e);
            }
        }
    }

    protected abstract void RunOne(FrameWork w, Mat image);
}
