using System.Diagnostics;
using Blankend.Orleans.Ai;
using Blankend.Orleans.Grains.Devices;
using OpenCvSharp;

namespace Blankend.Orleans.Grains.Ai.Face;

/// <summary>
/// Face detection (BlazeFace) on a device worker. Per source, the detector runs every
/// <c>face_detect_interval</c> frames (and whenever the frame size changes); the frames between reuse the last
/// faces. The frames of a batch that are due run in ONE detector call (cross-stream batching: frames of several
/// sources, each letterboxed into its slot of the batch tensor). Sets <see cref="FrameWork.Faces"/> and draws
/// nothing (<see cref="FaceDraw"/> is for /ai/process). Counters: <c>Engine.Step("detect")</c> records one run
/// per detected frame (its share of the call); the reused frames are <see cref="FaceModels.DetectionsReused"/>.
/// </summary>
internal sealed class FaceDetectStep(AiEngine engine) : FaceStep(engine, StepName, AiSteps.Detect)
{
    public const string StepName = "detect";

    protected override void RunOne(FrameWork w, Mat image) => RunRound(new ReadOnlySpan<FrameWork>(ref w));

    /// <summary>One round (each source at most once): reuse or queue each frame under its source's lock, one
    /// detector call for the queued ones, then store each source's new faces.</summary>
    protected override void RunRound(ReadOnlySpan<FrameWork> round)
    {
        var due = new List<(FrameWork W, Mat Image, AiSourceState State)>(round.Length);
        foreach (var w in round)
        {
            if (w.Failed || w.Image is not { } image)
                continue;
            if (Models.FaceDetector(w.Device) is null)
            {
                FaceStepErrors.Unavailable(Engine, w, Name);
                continue;
            }
            var state = Engine.StateFor(w.Source);
            lock (state.Gate)
            {
                var interval = Math.Max(1, w.Settings.FaceDetectInterval);
                var isDue =
                    state.DetectFrames % interval == 0
                    || state.LastFaces is null
                    || state.LastFacesWidth != image.Cols
                    || state.LastFacesHeight != image.Rows;
                state.DetectFrames++;
                if (!isDue)
                {
                    w.Ai().FacesReused = true;
                    Models.CountReuse();
                    SetFaces(w, state.LastFaces!);
                    continue;
                }
            }
            due.Add((w, image, state));
        }
        // One call per device (a worker's batch is one device's; /ai/process callers may mix).
        while (due.Count > 0)
        {
            var device = due[0].W.Device;
            var group = due.FindAll(d => d.W.Device == device);
            due.RemoveAll(d => d.W.Device == device);
            Detect(Models.FaceDetector(device)!, group);
        }
    }

    private void Detect(IFaceDetector detector, List<(FrameWork W, Mat Image, AiSourceState State)> due)
    {
        var images = new Mat[due.Count];
        for (var i = 0; i < images.Length; i++)
            images[i] = due[i].Image;
        var t0 = Stopwatch.GetTimestamp();
        AiFace[][] found;
        try
        {
            found = detector.DetectMany(images);
        }
        catch (Exception e) when (FaceStepErrors.Expected(e))
        {
            foreach (var d in due)
                FaceStepErrors.Skip(Engine, d.W, Name, e);
            return;
        }
        Engine.Record(Name, t0, due.Count);
        for (var i = 0; i < due.Count; i++)
        {
            var (w, image, state) = due[i];
            lock (state.Gate)
            {
                state.LastFaces = found[i];
                state.LastFacesWidth = image.Cols;
                state.LastFacesHeight = image.Rows;
            }
            AiMetrics.Detections.Add(1);
            Models.CountRun();
            SetFaces(w, found[i]);
        }
    }

    // A copy: later steps replace entries (mesh) and must not touch the per-source array.
    private static void SetFaces(FrameWork w, AiFace[] faces) =>
        w.Faces = faces.Length == 0 ? [] : (AiFace[])faces.Clone();
}

/// <summary>
/// Face mesh (468 points) for each face the detect step found: fills <see cref="AiFace.Mesh"/> (frame pixels)
/// when MediaPipe's presence (sigmoid(face_flag) &gt; 0.5) holds, and <see cref="AiFrameData.MeshPresence"/>.
/// Between detector runs the crop follows the face from the previous frame's landmarks (per source); a face
/// lost while tracked makes the next frame run the detector. The crops of all faces of all frames of a round go
/// through ONE mesh call.
/// </summary>
internal sealed class FaceMeshStep(AiEngine engine) : FaceStep(engine, StepName, AiSteps.Mesh)
{
    public const string StepName = "mesh";

    protected override void RunOne(FrameWork w, Mat image) => RunRound(new ReadOnlySpan<FrameWork>(ref w));

    protected override void RunRound(ReadOnlySpan<FrameWork> round)
    {
        var frames = new List<(FrameWork W, AiFace[] Faces, AiSourceState State, int First)>(round.Length);
        var rois = new List<MeshRoi?>();
        FaceMeshModel? mesh = null;
        foreach (var w in round)
        {
            if (w.Failed || w.Image is not { } image)
                continue;
            if (Models.Mesh(w.Device) is not { } m)
            {
                FaceStepErrors.Unavailable(Engine, w, Name);
                continue;
            }
            if (mesh is not null && m != mesh)
            {
                RunOne(w, image); // another device's session (only /ai/process mixes devices)
                continue;
            }
            mesh = m;
            if (w.Faces is not { } faces)
            {
                Engine.Skip(Name, "no detections");
                w.Note($"{Name}: no detections");
                continue;
            }
            if (faces.Length == 0)
                continue;
            var state = Engine.StateFor(w.Source);
            frames.Add((w, faces, state, rois.Count));
            lock (state.Gate)
            {
                // Between detector runs each face's crop comes from its previous mesh (MediaPipe's tracking);
                // on a detector frame, from the detection.
                var track = w.Ai().FacesReused && state.TrackRois is { } t && t.Length == faces.Length * 4 ? t : null;
                for (var i = 0; i < faces.Length; i++)
                {
                    rois.Add(
                        track is null
                            ? FaceMeshModel.Roi(image, faces[i])
                            : new MeshRoi(image, track[i * 4], track[i * 4 + 1], track[i * 4 + 2], track[i * 4 + 3])
                    );
                }
            }
        }
        if (mesh is null || frames.Count == 0)
            return;

        var t0 = Stopwatch.GetTimestamp();
        var valid = new List<MeshRoi>(rois.Count);
        var at = new int[rois.Count];
        for (var i = 0; i < rois.Count; i++)
        {
            at[i] = rois[i] is { } r ? valid.Count : -1;
            if (rois[i] is { } ok)
                valid.Add(ok);
        }
        FaceMeshResult?[] results;
        try
        {
            results = mesh.RunMany(valid.ToArray());
        }
        catch (Exception e) when (FaceStepErrors.Expected(e))
        {
            foreach (var f in frames)
                FaceStepErrors.Skip(Engine, f.W, Name, e);
            return;
        }

        foreach (var (w, faces, state, first) in frames)
        {
            var presence = new float[faces.Length];
            var next = new float[faces.Length * 4];
            var lost = false;
            for (var i = 0; i < faces.Length; i++)
            {
                var r = at[first + i] >= 0 ? results[at[first + i]] : null;
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
            lock (state.Gate)
            {
                state.TrackRois = lost ? null : next;
                // A tracked face that got lost makes the next frame run the detector.
                if (lost && w.Ai().FacesReused)
                    state.LastFaces = null;
            }
            w.Ai().MeshPresence = presence;
        }
        Engine.Record(Name, t0, frames.Count);
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
            if (Models.Swapper.SwapFace(image, f, reference, w.Device))
                swapped++;
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
    public static bool Expected(Exception e) =>
        e is not (OutOfMemoryException or StackOverflowException or ThreadAbortException);

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

    /// <summary>Runs the batch in rounds in which each source appears once (in queue order), so a source's
    /// second frame sees what its first one left in the per-source state.</summary>
    public void Run(ReadOnlySpan<FrameWork> batch)
    {
        foreach (var round in FrameRounds.Split(batch))
            RunRound(round);
    }

    /// <summary>One round; by default frame by frame, an expected failure (OpenCV, ONNX Runtime) skipping that
    /// frame only, counted. The detect and mesh steps override it with one model call per round.</summary>
    protected virtual void RunRound(ReadOnlySpan<FrameWork> round)
    {
        foreach (var w in round)
        {
            if (w.Failed || w.Image is not { } image)
                continue;
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
