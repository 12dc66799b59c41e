using Blankend.Orleans.Codec;
using Blankend.Orleans.Configuration;
using Blankend.Orleans.Grains.Codec;
using Blankend.Orleans.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;

namespace Blankend.Orleans.Tests.Codec;

[Trait(TestKind.Name, TestKind.Unit)]
public sealed class AnnexBScannerTests
{
    private static readonly byte[] Sps = [0x00, 0x00, 0x00, 0x01, 0x67, 0x42, 0x00, 0x1E];
    private static readonly byte[] Slice = [0x00, 0x00, 0x01, 0x41, 0x9A, 0x00, 0x00, 0x03, 0x01];

    [Fact]
    public void FindsStartCodesAndSpsWithinAChunk()
    {
        var s = new AnnexBScanner(VideoCodecs.H264);
        byte[] data = [.. Slice, .. Sps, .. Slice];
        Assert.Equal(Slice.Length + 4, s.Scan(data));
        Assert.True(s.SawStartCode);
        Assert.Equal(3, s.StartCodes);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void StartCodeSplitAcrossChunks(int cut)
    {
        var s = new AnnexBScanner(VideoCodecs.H264);
        Assert.Equal(-1, s.Scan(Sps[..cut]));
        var mark = s.Scan(Sps[cut..]);
        Assert.True(s.SawStartCode);
        Assert.Equal(4 - cut, mark); // index of the NAL header (0x67) in the second chunk
    }

    [Fact]
    public void ZerosCarriedOverSeveralTinyChunks()
    {
        var s = new AnnexBScanner(VideoCodecs.H264);
        Assert.Equal(-1, s.Scan([0x00]));
        Assert.Equal(-1, s.Scan([0x00]));
        Assert.Equal(-1, s.Scan([0x01]));
        Assert.True(s.SawStartCode);
        Assert.Equal(0, s.Scan([0x67, 0x42]));
    }

    [Fact]
    public void HevcMarksAtVpsNotAtSlices()
    {
        var s = new AnnexBScanner(VideoCodecs.Hevc);
        Assert.Equal(-1, s.Scan([0x00, 0x00, 0x01, 0x26, 0x01, 0xAF])); // IDR slice
        Assert.Equal(4, s.Scan([0x00, 0x00, 0x00, 0x01, 0x40, 0x01, 0x0C])); // VPS
    }

    [Fact]
    public void TextHasNoStartCode()
    {
        var s = new AnnexBScanner(VideoCodecs.H264);
        s.Scan("hello world, this is not video\n"u8.ToArray());
        Assert.False(s.SawStartCode);
    }

    [Fact]
    public void ReplayBufferRestartsAtEachParameterSetAndGivesUpPastItsBound()
    {
        var r = new ReplayBuffer(100);
        Assert.False(r.Append([1, 2, 3], -1));
        Assert.False(r.Valid);
        Assert.True(r.Append([9, 9, 0x67, 5], 2));
        Assert.True(r.Valid);
        Assert.Equal(new byte[] { 0, 0, 0, 1, 0x67, 5 }, r.Parts.SelectMany(p => p).ToArray());
        r.Append(new byte[50], -1);
        Assert.True(r.Valid);
        r.Append(new byte[50], -1);
        Assert.False(r.Valid); // over 100 bytes: not a usable start point any more
        Assert.True(r.Append([0x67], 0));
        Assert.True(r.Valid);
    }
}

[Trait(TestKind.Name, TestKind.Unit)]
public sealed class DecoderSelectionTests
{
    private static FfmpegCapabilities Caps(
        bool preferGpu = true,
        IEnumerable<GpuProbe>? probes = null,
        string version = "5.1.9-0+deb12u1",
        string[]? decoders = null,
        string[]? hwaccels = null
    ) =>
        new(
            "ffmpeg",
            "/usr/bin/ffmpeg",
            version,
            null,
            new HashSet<string>(decoders ?? ["h264", "hevc", "mjpeg", "h264_cuvid", "hevc_cuvid"]),
            new HashSet<string>(["mjpeg", "libx264"]),
            new HashSet<string>(hwaccels ?? ["cuda", "vaapi"]),
            [.. probes ?? []],
            preferGpu
        );

    [Fact]
    public void CuvidIsChosenWhenItsProbeDecodedAndCpuIsTheFallback()
    {
        var caps = Caps(probes: [new GpuProbe("h264", GpuMethod.Cuvid, true, "decoded 2 frame(s)", 80)]);
        var h264 = DecoderSelector.Choose("h264", caps);
        Assert.Equal("h264_cuvid", h264.Primary!.Decoder);
        Assert.True(h264.Primary.Gpu);
        Assert.Equal(["-c:v", "h264_cuvid"], h264.Primary.InputArgs);
        Assert.Equal("h264", h264.Fallback!.Decoder);
        Assert.False(h264.Fallback.Gpu);
        // No probe succeeded for hevc: CPU, nothing to fall back to.
        var hevc = DecoderSelector.Choose("hevc", caps);
        Assert.Equal("hevc", hevc.Primary!.Decoder);
        Assert.Null(hevc.Fallback);
        Assert.True(DecoderSelector.GpuState(caps, null).Usable);
    }

    [Fact]
    public void HwaccelCudaIsUsedWhenOnlyItsProbeSucceeded()
    {
        var caps = Caps(
            probes:
            [
                new GpuProbe("h264", GpuMethod.Cuvid, false, "exit 1, 0 frame(s): Cannot load libnvcuvid.so.1", 50),
                new GpuProbe("h264", GpuMethod.HwaccelCuda, true, "decoded 2 frame(s)", 90),
            ]
        );
        var choice = DecoderSelector.Choose("h264", caps);
        Assert.Equal(["-hwaccel", "cuda"], choice.Primary!.InputArgs);
        Assert.True(choice.Primary.Gpu);
        Assert.False(choice.Fallback!.Gpu);
    }

    [Fact]
    public void ListedButFailedGpuMeansCpuAndTheReasonSaysWhy()
    {
        // What this machine shows: Debian's ffmpeg lists h264_cuvid, but there is no NVIDIA driver.
        var caps = Caps(
            probes:
            [
                new GpuProbe("h264", GpuMethod.Cuvid, false, "exit 1, 0 frame(s): Cannot load libnvcuvid.so.1", 50),
                new GpuProbe("h264", GpuMethod.HwaccelCuda, false, "exit 1, 0 frame(s): Cannot load libcuda.so.1", 50),
            ]
        );
        var choice = DecoderSelector.Choose("h264", caps);
        Assert.False(choice.Primary!.Gpu);
        Assert.Null(choice.Fallback);
        var (usable, reason) = DecoderSelector.GpuState(caps, null);
        Assert.False(usable);
        Assert.Contains("libnvcuvid", reason);
    }

    [Fact]
    public void PreferGpuOffOrGpuDisabledAfterFailuresMeansCpu()
    {
        var ok = new[] { new GpuProbe("h264", GpuMethod.Cuvid, true, "ok", 1) };
        Assert.False(DecoderSelector.Choose("h264", Caps(preferGpu: false, probes: ok)).Primary!.Gpu);
        Assert.Equal(
            "codec:prefer_gpu is false",
            DecoderSelector.GpuState(Caps(preferGpu: false, probes: ok), null).Reason
        );
        Assert.False(DecoderSelector.Choose("h264", Caps(probes: ok), "disabled after 3 failures").Primary!.Gpu);
        Assert.False(DecoderSelector.GpuState(Caps(probes: ok), "disabled after 3 failures").Usable);
    }

    [Fact]
    public void NoFfmpegOrNoDecoderIsUnavailableWithTheReason()
    {
        var missing = FfmpegCapabilities.Unavailable("/opt/none/ffmpeg", null, "ffmpeg could not be started", true);
        Assert.Null(DecoderSelector.Choose("h264", missing).Primary);
        Assert.Equal("ffmpeg could not be started", DecoderSelector.Choose("h264", missing).Unavailable);
        var noHevc = Caps(decoders: ["h264", "mjpeg"]);
        Assert.Contains("no decoder for hevc", DecoderSelector.Choose("hevc", noHevc).Unavailable);
    }

    [Fact]
    public void DecodeCommandProbesLittleAndAvoidsTheFlagsThatBreakBFrameStreams()
    {
        var cpu = DecoderSelector.DecodeArgs(DecoderPlan.Cpu("hevc"), 32768, 5, fpsModeOption: true);
        var line = string.Join(' ', cpu);
        Assert.Contains("-probesize 32768 -analyzeduration 0 -f hevc -i pipe:0", line);
        Assert.Contains("-fps_mode passthrough -f image2pipe -c:v mjpeg -q:v 5 pipe:1", line);
        // Measured with ffmpeg 5.1: "-flags low_delay" and "-fflags nobuffer" make x264's default stream (B-frames)
        // decode to nothing at all over a pipe.
        Assert.DoesNotContain("low_delay", line);
        Assert.DoesNotContain("nobuffer", line);

        var gpu = DecoderSelector.DecodeArgs(
            DecoderPlan.ForGpu("h264", GpuMethod.Cuvid),
            4096,
            3,
            fpsModeOption: false
        );
        Assert.True(gpu.IndexOf("h264_cuvid") < gpu.IndexOf("-i"));
        Assert.Contains("-vsync", gpu); // ffmpeg before 5.1 has no -fps_mode
    }

    [Theory]
    [InlineData("5.1.9-0+deb12u1", "5.1.9")]
    [InlineData("4.4.2-0ubuntu0.22.04.1", "4.4.2")]
    [InlineData("n6.1.1", "6.1.1")]
    [InlineData("7.0", "7.0")]
    [InlineData("N-112345-gdeadbeef", null)]
    public void FfmpegVersionStringsParse(string version, string? expected)
    {
        Assert.Equal(expected is null ? null : Version.Parse(expected), FfmpegCapabilities.ParseVersion(version));
        Assert.Equal(
            expected is null || Version.Parse(expected) >= new Version(5, 1),
            Caps(version: version).HasFpsMode
        );
    }

    [Fact]
    public async Task AHostStopsChoosingTheGpuAfterRepeatedFailures()
    {
        var caps = Caps(
            probes:
            [
                new GpuProbe("h264", GpuMethod.Cuvid, true, "ok", 1),
                new GpuProbe("hevc", GpuMethod.Cuvid, true, "ok", 1),
            ]
        );
        await using var host = new CodecHost(
            new CodecOptions(),
            new RecordingOptions(),
            null!,
            NullLoggerFactory.Instance,
            () => Task.FromResult(caps)
        );
        var before = await host.ReportAsync("silo");
        Assert.True(before.Gpu.Usable);
        Assert.Equal("h264_cuvid (gpu)", before.Selected["h264"]);
        for (var i = 0; i < CodecHost.GpuFailuresBeforeDisable; i++)
            host.OnGpuFallback(null!, "h264_cuvid", "exit 1");
        var after = await host.ReportAsync("silo");
        Assert.False(after.Gpu.Usable);
        Assert.Contains("disabled after", after.Gpu.Reason);
        Assert.Equal("h264 (cpu)", after.Selected["h264"]);
        Assert.Equal(CodecHost.GpuFailuresBeforeDisable, after.Counters.GpuFallbacks);
    }

    [Fact]
    public async Task ProbeOfThisMachinesFfmpeg()
    {
        var caps = await FfmpegProber.ProbeAsync("ffmpeg", preferGpu: true);
        Assert.True(caps.Available, caps.Error);
        Assert.Contains("h264", caps.CpuDecoders);
        Assert.Contains("hevc", caps.CpuDecoders);
        Assert.True(caps.CanRecord);
        // With or without a usable GPU, the choice must agree with the probes.
        var choice = DecoderSelector.Choose("h264", caps);
        var gpuOk = caps.GpuProbes.Any(p => p.Codec == "h264" && p.Ok);
        Assert.Equal(gpuOk, choice.Primary!.Gpu);
        Assert.All(caps.GpuProbes.Where(p => !p.Ok), p => Assert.False(string.IsNullOrWhiteSpace(p.Detail)));
    }

    [Fact]
    public async Task MissingFfmpegIsReportedWithWhatToInstall()
    {
        var caps = await FfmpegProber.ProbeAsync("/nonexistent/bin/ffmpeg", preferGpu: true);
        Assert.False(caps.Available);
        Assert.Contains("apt-get install ffmpeg", caps.Error);
        Assert.Contains("codec:ffmpeg_path", caps.Error);
    }

    [Fact]
    public void RecordingPathsStayInsideTheFolder()
    {
        var folder = Path.Combine(Path.GetTempPath(), "rec-" + Guid.NewGuid().ToString("N")[..8]);
        var path = RecordingPaths.NewPath(folder, "cam-1", new DateTime(2026, 1, 2, 3, 4, 5, 678, DateTimeKind.Utc));
        Assert.Equal(Path.Combine(Path.GetFullPath(folder), "cam-1-20260102T030405678Z.mp4"), path);
        Assert.True(RecordingPaths.IsDirectlyInside(folder, path));
        // "..": a valid client_id, but the file is "..-<time>.mp4" inside the folder, never the parent.
        Assert.True(RecordingPaths.IsDirectlyInside(folder, RecordingPaths.NewPath(folder, "..", DateTime.UtcNow)));
        foreach (var bad in new[] { "../etc", "a/b", "/abs", "x\\y", "", "__link__", "a\0b" })
            Assert.Throws<ArgumentException>(() => RecordingPaths.NewPath(folder, bad, DateTime.UtcNow));
        Assert.False(RecordingPaths.IsDirectlyInside(folder, Path.Combine(folder, "..", "x.mp4")));
        Assert.False(RecordingPaths.IsDirectlyInside(folder, Path.Combine(folder, "sub", "x.mp4")));
    }

    [Fact]
    public void JpegSizeComesFromTheSofSegment()
    {
        Assert.True(JpegInfo.TryGetSize(Support.TestJpeg.Base, out var w, out var h));
        Assert.Equal((512, 512), (w, h)); // testdata/astronaut.jpg
        Assert.True(JpegInfo.TryGetSize(JpegFrameSplitterTests.Synthetic(1), out w, out h));
        Assert.Equal((16, 16), (w, h));
        Assert.False(JpegInfo.TryGetSize([0xFF, 0xD8, 0xFF, 0xD9], out _, out _));
    }
}
