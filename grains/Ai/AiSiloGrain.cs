using System.Diagnostics;
using Blankend.Orleans.Ai;
using Blankend.Orleans.Grains.Ai.Face;
using Blankend.Orleans.Grains.Ai.Runtime;
using Blankend.Orleans.Grains.Codec;
using Blankend.Orleans.Grains.Devices;
using Blankend.Orleans.Grains.Placement;
using Blankend.Orleans.Media;
using OpenCvSharp;

namespace Blankend.Orleans.Grains.Ai;

/// <summary>A step that can say which model or method it uses (or why it cannot run), for the status API.</summary>
internal interface IAiStepStatus
{
    string Name { get; }

    string Status { get; }
}

/// <summary>
/// Per-silo AI face: status (models, providers, per-step timings, device load) and the one-shot
/// <c>/api/v1/ai/process</c>. Process runs the very same <see cref="IFrameStep"/> objects as the device
/// workers, on the thread pool (never on the Orleans scheduler), with a throw-away source state.
/// </summary>
[SiloKeyedPlacement, Reentrant]
internal sealed class AiSiloGrain(AiEngine engine, DeviceWorkerHost host, LocalDevices local) : Grain, IAiSiloGrain
{
    // Off the scheduler: the first report may load the swap engine's models (inswapper is ~550 MB).
    public Task<AiSiloReport> GetReport() => Task.Run(Report);

    private AiSiloReport Report()
    {
        var rt = engine.Runtime;
        var faces = FaceModels.For(engine);
        var swapEngine = faces.Swapper.Engine;
        var models = new List<AiModelReport>();
        foreach (var kind in Enum.GetValues<AiModelKind>())
        {
            var path = rt.PathOf(kind);
            var sessions = rt.Loaded().Where(m => m.Kind == kind).ToArray();
            var reason = sessions.Length > 0 ? null : rt.UnavailableReason(kind);
            models.Add(
                new AiModelReport(
                    AiModels.Name(kind),
                    path,
                    reason is null,
                    reason,
                    [.. sessions.Select(m => $"{m.Device}: {m.Provider} ({m.ProviderReason})")],
                    [.. sessions.Select(m => m.Provider).Distinct()],
                    Format(kind, faces, swapEngine.Name)
                )
            );
        }
        var statuses = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var s in host.Steps)
            if (s is IAiStepStatus st)
                statuses[st.Name] = st.Status;
        var steps = new List<AiStepReport>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var s in host.Steps)
            names.Add(s.Name);
        foreach (var c in engine.Steps)
            names.Add(c.Name);
        foreach (var name in names.Order(StringComparer.Ordinal))
        {
            var (runs, frames, ms, last, skips) = engine.Step(name).Snapshot();
            steps.Add(
                new AiStepReport(
                    name,
                    runs,
                    frames,
                    Math.Round(ms, 3),
                    Math.Round(last, 3),
                    skips,
                    statuses.GetValueOrDefault(name)
                )
            );
        }
        var devices = new List<AiDeviceLoad>();
        foreach (var (device, _, _) in host.Snapshot())
        {
            var st = host.Get(device).Status(RuntimeIdentity);
            devices.Add(
                new AiDeviceLoad(
                    device,
                    rt.ChooseProvider(device).Provider,
                    st.WorkerRunning,
                    st.QueueDepth,
                    st.FpsOut,
                    st.StepsMs,
                    st.Load
                )
            );
        }
        var versions = new Dictionary<string, long>(StringComparer.Ordinal)
        {
            ["reference_face"] = engine.Asset(AiAssetKind.ReferenceFace)?.Version ?? 0,
            ["background"] = engine.Asset(AiAssetKind.Background)?.Version ?? 0,
        };
        var batches = new List<AiBatchReport>();
        foreach (
            var m in rt.Loaded()
                .OrderBy(m => AiModels.Name(m.Kind), StringComparer.Ordinal)
                .ThenBy(m => m.Device, StringComparer.Ordinal)
        )
        {
            var (calls, images, max) = m.Batches;
            if (calls > 0)
                batches.Add(
                    new AiBatchReport(
                        AiModels.Name(m.Kind),
                        m.Device,
                        calls,
                        images,
                        Math.Round((double)images / calls, 2),
                        max
                    )
                );
        }
        return new AiSiloReport(
            RuntimeIdentity,
            [.. rt.AvailableProviders],
            rt.CudaAvailable,
            [.. models],
            [.. steps],
            [.. devices],
            engine.SourceCount,
            versions,
            engine.Options.SimpleForward,
            swapEngine.Name,
            swapEngine.Reason,
            rt.ProviderState,
            [.. batches]
        );
    }

    /// <summary>What a loaded file of a kind is (the status' model "format").</summary>
    private static string? Format(AiModelKind kind, FaceModels faces, string swapEngine) =>
        kind switch
        {
            AiModelKind.FaceDetect => faces.LoadedDetectorFormat,
            AiModelKind.Swap => swapEngine == "inswapper" ? "inswapper" : null,
            AiModelKind.ArcFace => swapEngine == "inswapper" ? "arcface" : null,
            _ => null,
        };

    /// <summary>The device the one-shot work uses on this silo: its first GPU, else cpu0.</summary>
    private string Device => local.Devices.FirstOrDefault(LocalDevices.IsGpu) ?? "cpu0";

    /// <summary>Why a requested step cannot run here (503), or null.</summary>
    private string? Unavailable(AiSteps steps, string device)
    {
        foreach (var (name, step) in AiStepNames.All)
        {
            if ((steps & step) == 0)
                continue;
            foreach (var kind in AiModels.Needs(step, engine.Runtime.PathOf(AiModelKind.Rvm) is not null))
            {
                if (engine.Runtime.Get(kind, device) is null)
                    return $"step '{name}' is unavailable: {AiModels.Name(kind)} model: {engine.Runtime.UnavailableReason(kind)}";
            }
        }
        return null;
    }

    public async Task<AiProcessResult> Process(AiProcessRequest request)
    {
        var device = Device;
        var steps = AiStepNames.WithPrerequisites(request.Steps);
        if ((steps & AiSteps.Swap) != 0 && request.ReferenceVersion == 0)
            return Fail(
                400,
                "no reference face",
                "the swap step needs a reference face: upload one with POST /api/v1/ai/reference (image/jpeg or image/png)",
                device
            );
        await AiAssetSync.EnsureAsync(
            engine,
            GrainFactory,
            request.ReferenceVersion,
            request.Background.Kind == "image" ? request.Background.ImageVersion : 0
        );
        // Loading a model the first time takes a moment: off the scheduler like the rest.
        return await Task.Run(() => Run(request, steps, device));
    }

    private AiProcessResult Run(AiProcessRequest request, AiSteps steps, string device)
    {
        if (Unavailable(steps, device) is { } why)
            return Fail(503, "model unavailable", why, device);
        using var image = Decode(request.Image, out var error);
        if (image is null)
            return Fail(400, "invalid image", error!, device);

        // A throw-away source: the one-shot call never shares smoothing or recurrent state with a live source.
        var source = "__ai_process_" + Guid.NewGuid().ToString("N");
        var settings = new Blankend.Orleans.Processing.EffectiveSettings(
            true,
            false,
            request.JpegQuality,
            0,
            1,
            false,
            0,
            steps,
            request.Background,
            FaceDetectInterval: 1,
            SimpleForward: false,
            ReferenceVersion: request.ReferenceVersion,
            DepthMode: request.DepthMode
        );
        var frame = new FrameEnvelope(
            source,
            0,
            0,
            FrameKind.Raw,
            DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
            FrameOrigin.VideoIn,
            request.Image
        );
        var work = new FrameWork(new Blankend.Orleans.Processing.ProcessRequest(frame, settings))
        {
            Device = device,
            Image = image.Clone(),
        };
        var stepMs = new Dictionary<string, double>(StringComparer.Ordinal);
        try
        {
            foreach (var step in host.Steps)
            {
                if (!step.AppliesTo(settings) || work.Failed || work.Image is null)
                    continue;
                var t0 = Stopwatch.GetTimestamp();
                step.Run(new ReadOnlySpan<FrameWork>(ref work));
                stepMs[step.Name] = Math.Round(Stopwatch.GetElapsedTime(t0).TotalMilliseconds, 3);
            }
            if (work.Failed)
                return Fail(500, "processing failed", work.Error!, device);
            if (
                (steps & AiSteps.Swap) != 0
                && work.Notes is { } notes
                && notes.Any(n =>
                    n.StartsWith("swap:", StringComparison.Ordinal)
                    && n.Contains("no reference", StringComparison.Ordinal)
                )
            )
                return Fail(
                    400,
                    "no reference face",
                    "the reference face is not usable on this silo: " + string.Join("; ", notes),
                    device
                );

            var faces = work.Faces ?? [];
            byte[]? jpeg = null;
            if (!request.Json)
            {
                // "detect" alone answers the image with the boxes and keypoints drawn (contract).
                if ((request.Steps & (AiSteps.Swap | AiSteps.Matte | AiSteps.Depth | AiSteps.Enhance)) == 0)
                    FaceDraw.Draw(work.Image!, faces);
                Cv2.ImEncode(
                    ".jpg",
                    work.Image!,
                    out jpeg,
                    new ImageEncodingParam(ImwriteFlags.JpegQuality, request.JpegQuality)
                );
            }
            return new AiProcessResult(
                200,
                null,
                null,
                jpeg,
                faces,
                image.Width,
                image.Height,
                stepMs,
                [.. work.Notes ?? []],
                RuntimeIdentity,
                device,
                engine.Runtime.ChooseProvider(device).Provider
            );
        }
        finally
        {
            work.Image?.Dispose();
            engine.Forget(source);
        }
    }

    public Task<string?> CheckAsset(AiAssetKind kind, byte[] image) =>
        Task.Run(() =>
        {
            using var mat = Decode(image, out var error);
            if (mat is null)
                return error;
            if (kind == AiAssetKind.Background)
                return null;
            var device = Device;
            if (Unavailable(AiSteps.Mesh, device) is { } why)
                return why;
            var reference = FaceModels.For(engine).Swapper.Inspect(new AiAsset(kind, 0, image), device);
            return reference.Usable ? null : reference.Error;
        });

    /// <summary>Decodes a JPEG or PNG to BGR; null with a one-line reason when it is not one.</summary>
    public static Mat? Decode(byte[] bytes, out string? error)
    {
        error = null;
        if (!ImageSniffer.IsJpegOrPng(bytes))
        {
            error = "the body is not a JPEG or PNG image";
            return null;
        }
        // A few KB can declare a gigapixel image: refuse by the header before anything is allocated.
        // One whose header gives no size is refused too: the decoder would find it out by allocating.
        if (ImageSniffer.SizeProblem(bytes) is { } tooBig)
        {
            error = tooBig;
            return null;
        }
        try
        {
            var mat = Cv2.ImDecode(bytes, ImreadModes.Color);
            if (!mat.Empty())
                return mat;
            mat.Dispose();
            error = "the image does not decode (truncated or corrupt)";
        }
        catch (OpenCVException e)
        {
            error = "the image does not decode: " + e.Message;
        }
        return null;
    }

    private AiProcessResult Fail(int status, string title, string detail, string device) =>
        new(
            status,
            title,
            detail,
            null,
            [],
            0,
            0,
            [],
            [],
            RuntimeIdentity,
            device,
            engine.Runtime.ChooseProvider(device).Provider
        );
}
