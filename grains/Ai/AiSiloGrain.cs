using System.Diagnostics;
using Blankend.Orleans.Ai;
using Blankend.Orleans.Grains.Ai.Face;
using Blankend.Orleans.Grains.Ai.Runtime;
using Blankend.Orleans.Grains.Codec;
using Blankend.Orleans.Grains.Devices;
using OpenCvSharp;

namespace Blankend.Orleans.Grains.Ai;

/// <summary>A step that can say which model or method it uses (or why it cannot run), for the status API.</summary>
public interface IAiStepStatus
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
public sealed class AiSiloGrain(AiEngine engine, DeviceWorkerHost host, LocalDevices local) : Grain, IAiSiloGrain
{
    public Task<AiSiloReport> GetReport()
    {
        var rt = engine.Runtime;
        var models = new List<AiModelReport>();
        foreach (var kind in Enum.GetValues<AiModelKind>())
        {
            var path = rt.PathOf(kind);
            var sessions = rt.Loaded().Where(m => m.Kind == kind).Select(m => $"{m.Device}: {m.Provider} ({m.ProviderReason})").ToArray();
            var reason = sessions.Length > 0 ? null : rt.UnavailableReason(kind);
            models.Add(new AiModelReport(KindName(kind), path, reason is null, reason, sessions));
        }
        var statuses = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var s in host.Steps) if (s is IAiStepStatus st) statuses[st.Name] = st.Status;
        var steps = new List<AiStepReport>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var s in host.Steps) names.Add(s.Name);
        foreach (var c in engine.Steps) names.Add(c.Name);
        foreach (var name in names.Order(StringComparer.Ordinal))
        {
            var (runs, frames, ms, last, skips) = engine.Step(name).Snapshot();
            steps.Add(new AiStepReport(name, runs, frames, Math.Round(ms, 3), Math.Round(last, 3), skips, statuses.GetValueOrDefault(name)));
        }
        var devices = new List<AiDeviceLoad>();
        foreach (var (device, _, _) in host.Snapshot())
        {
            var st = host.Get(device).Status(RuntimeIdentity);
            devices.Add(new AiDeviceLoad(device, rt.ChooseProvider(device).Provider, st.WorkerRunning, st.QueueDepth, st.FpsOut, st.StepsMs, st.Load));
        }
        var versions = new Dictionary<string, long>(StringComparer.Ordinal)
        {
            ["reference_face"] = engine.Asset(AiAssetKind.ReferenceFace)?.Version ?? 0,
            ["background"] = engine.Asset(AiAssetKind.Background)?.Version ?? 0,
        };
        return Task.FromResult(new AiSiloReport(RuntimeIdentity, [.. rt.AvailableProviders], rt.CudaAvailable, [.. models], [.. steps],
            [.. devices], engine.SourceCount, versions, engine.Options.SimpleForward));
    }

    public static string KindName(AiModelKind kind) => kind switch
    {
        AiModelKind.FaceDetect => "face_detect",
        AiModelKind.FaceMesh => "face_mesh",
        AiModelKind.Segmentation => "segmentation",
        AiModelKind.SegmentationLandscape => "segmentation_landscape",
        AiModelKind.Swap => "swap",
        AiModelKind.Rvm => "rvm",
        _ => "depth",
    };

    /// <summary>The device the one-shot work uses on this silo: its first GPU, else cpu0.</summary>
    private string Device => local.Devices.FirstOrDefault(LocalDevices.IsGpu) ?? "cpu0";

    /// <summary>The models a step cannot run without; null when it needs none it could lack.</summary>
    /// <param name="rvm">An RVM model is configured: the matte step uses it instead of selfie segmentation.</param>
    public static AiModelKind[] Needs(AiSteps step, bool rvm) => step switch
    {
        AiSteps.Detect => [AiModelKind.FaceDetect],
        AiSteps.Mesh => [AiModelKind.FaceDetect, AiModelKind.FaceMesh],
        AiSteps.Swap => [AiModelKind.FaceDetect, AiModelKind.FaceMesh],
        AiSteps.Matte => rvm ? [AiModelKind.Rvm] : [AiModelKind.Segmentation, AiModelKind.SegmentationLandscape],
        AiSteps.Depth => [AiModelKind.Depth],
        _ => [],
    };

    /// <summary>Why a requested step cannot run here (503), or null.</summary>
    private string? Unavailable(AiSteps steps, string device)
    {
        foreach (var (name, step) in AiStepNames.All)
        {
            if ((steps & step) == 0) continue;
            foreach (var kind in Needs(step, engine.Runtime.PathOf(AiModelKind.Rvm) is not null))
            {
                if (engine.Runtime.Get(kind, device) is null)
                    return $"step '{name}' is unavailable: {KindName(kind)} model: {engine.Runtime.UnavailableReason(kind)}";
            }
        }
        return null;
    }

    public async Task<AiProcessResult> Process(AiProcessRequest request)
    {
        var device = Device;
        var steps = AiStepNames.WithPrerequisites(request.Steps);
        if ((steps & AiSteps.Swap) != 0 && request.ReferenceVersion == 0)
            return Fail(400, "no reference face", "the swap step needs a reference face: upload one with POST /api/v1/ai/reference (image/jpeg or image/png)", device);
        await AiAssetSync.EnsureAsync(engine, GrainFactory, request.ReferenceVersion, request.Background.Kind == "image" ? request.Background.ImageVersion : 0);
        // Loading a model the first time takes a moment: off the scheduler like the rest.
        return await Task.Run(() => Run(request, steps, device));
    }

    private AiProcessResult Run(AiProcessRequest request, AiSteps steps, string device)
    {
        if (Unavailable(steps, device) is { } why) return Fail(503, "model unavailable", why, device);
        using var image = Decode(request.Image, out var error);
        if (image is null) return Fail(400, "invalid image", error!, device);

        // A throw-away source: the one-shot call never shares smoothing or recurrent state with a live source.
        var source = "__ai_process_" + Guid.NewGuid().ToString("N");
        var settings = new Blankend.Orleans.Processing.EffectiveSettings(true, false, request.JpegQuality, 0, 1, false, 0, steps, request.Background,
            FaceDetectInterval: 1, SimpleForward: false, ReferenceVersion: request.ReferenceVersion, DepthMode: request.DepthMode);
        var frame = new FrameEnvelope(source, 0, 0, FrameKind.Raw, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), FrameOrigin.VideoIn, request.Image);
        var work = new FrameWork(new Blankend.Orleans.Processing.ProcessRequest(frame, settings)) { Device = device, Image = image.Clone() };
        var stepMs = new Dictionary<string, double>(StringComparer.Ordinal);
        try
        {
            foreach (var step in host.Steps)
            {
                if (!step.AppliesTo(settings) || work.Failed || work.Image is null) continue;
                var t0 = Stopwatch.GetTimestamp();
                step.Run(new ReadOnlySpan<FrameWork>(ref work));
                stepMs[step.Name] = Math.Round(Stopwatch.GetElapsedTime(t0).TotalMilliseconds, 3);
            }
            if (work.Failed) return Fail(500, "processing failed", work.Error!, device);
            if ((steps & AiSteps.Swap) != 0 && work.Ai.Notes is { } notes && notes.Any(n => n.StartsWith("swap:", StringComparison.Ordinal) && n.Contains("no reference", StringComparison.Ordinal)))
                return Fail(400, "no reference face", "the reference face is not usable on this silo: " + string.Join("; ", notes), device);

            var faces = work.Ai.Faces ?? [];
            byte[]? jpeg = null;
            if (!request.Json)
            {
                // "detect" alone answers the image with the boxes and keypoints drawn (contract).
                if ((request.Steps & (AiSteps.Swap | AiSteps.Matte | AiSteps.Depth)) == 0)
                    FaceDraw.Draw(work.Image!, faces);
                Cv2.ImEncode(".jpg", work.Image!, out jpeg, new ImageEncodingParam(ImwriteFlags.JpegQuality, request.JpegQuality));
            }
            return new AiProcessResult(200, null, null, jpeg, faces, image.Width, image.Height, stepMs, [.. work.Ai.Notes ?? []],
                RuntimeIdentity, device, engine.Runtime.ChooseProvider(device).Provider);
        }
        finally
        {
            work.Image?.Dispose();
            engine.Forget(source);
        }
    }

    public Task<string?> CheckAsset(AiAssetKind kind, byte[] image) => Task.Run(() =>
    {
        using var mat = Decode(image, out var error);
        if (mat is null) return error;
        if (kind == AiAssetKind.Background) return null;
        var device = Device;
        if (Unavailable(AiSteps.Mesh, device) is { } why) return why;
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
            if (!mat.Empty()) return mat;
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
        new(status, title, detail, null, [], 0, 0, [], [], RuntimeIdentity, device, engine.Runtime.ChooseProvider(device).Provider);
}

/// <summary>Magic-number check of an uploaded image (before anything decodes it).</summary>
public static class ImageSniffer
{
    private static ReadOnlySpan<byte> Png => [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    /// <summary>Largest image (width x height) the AI endpoints decode: 8K UHD is 33 MP.</summary>
    public const long MaxPixels = 40_000_000;

    public static bool IsJpegOrPng(ReadOnlySpan<byte> b) =>
        (b.Length >= 4 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) || (b.Length >= 16 && b[..8].SequenceEqual(Png));

    /// <summary>Why the image may not be decoded: its header gives no size (or a zero one), or more than
    /// <see cref="MaxPixels"/>. Null when it may.</summary>
    public static string? SizeProblem(ReadOnlySpan<byte> b)
    {
        if (!TryReadSize(b, out var w, out var h) || w <= 0 || h <= 0)
            return "the image header does not give its size (no PNG IHDR or JPEG SOF before the image data)";
        if ((long)w * h > MaxPixels)
            return $"the image declares {w}x{h} pixels, more than the {MaxPixels / 1_000_000} megapixels accepted";
        return null;
    }

    /// <summary>The size a PNG (IHDR) or JPEG (first SOFn) header declares; false when none is found.</summary>
    public static bool TryReadSize(ReadOnlySpan<byte> b, out int width, out int height)
    {
        width = height = 0;
        if (b.Length >= 24 && b[..8].SequenceEqual(Png))
        {
            width = (int)Math.Min(int.MaxValue, System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(b[16..]));
            height = (int)Math.Min(int.MaxValue, System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(b[20..]));
            return true;
        }
        var i = 2;
        while (i + 9 < b.Length)
        {
            if (b[i] != 0xFF) return false;
            var marker = b[i + 1];
            if (marker == 0xFF) { i++; continue; } // fill byte
            if (marker is 0xD8 or 0x01 or (>= 0xD0 and <= 0xD7)) { i += 2; continue; }
            var length = (b[i + 2] << 8) | b[i + 3];
            if (marker is >= 0xC0 and <= 0xCF && marker is not (0xC4 or 0xC8 or 0xCC))
            {
                height = (b[i + 5] << 8) | b[i + 6];
                width = (b[i + 7] << 8) | b[i + 8];
                return true;
            }
            if (length < 2) return false;
            i += 2 + length;
        }
        return false;
    }
}
