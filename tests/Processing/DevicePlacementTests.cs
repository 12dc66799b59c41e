using System.Net;
using Blankend.Orleans.Configuration;
using Blankend.Orleans.Grains.Devices;
using Blankend.Orleans.Grains.Hosting;
using Blankend.Orleans.Hosting;
using Blankend.Orleans.Processing;
using Blankend.Orleans.Tests.Support;
using Microsoft.Extensions.Configuration;
using Orleans.Runtime.Placement;
using Orleans.TestingHost;
using Xunit;

namespace Blankend.Orleans.Tests.Processing;

/// <summary>Two silos: the primary publishes only cpu0, the secondary (the "GPU host") gpu0, gpu1 and cpu0.</summary>
public sealed class GpuClusterFixture : TwoSiloCluster<GpuClusterFixture.SiloConfigurator>
{
    public const string GpuSiloName = "Secondary_1";

    public sealed class SiloConfigurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder)
        {
            // TestingHost gives each silo its own port; the first (primary) has the base port.
            var c = siloBuilder.Configuration;
            var name = c["Orleans:Endpoints:SiloPort"] == c["BaseSiloPort"] ? "Primary" : GpuSiloName;
            var config = new ConfigurationBuilder()
                .AddInMemoryCollection(
                    new Dictionary<string, string?>
                    {
                        ["Orleans:Metadata:blankend_devices"] = name == GpuSiloName ? "gpu0,gpu1,cpu0" : "cpu0",
                        ["Orleans:Metadata:rack"] = name,
                    }
                )
                .Build();
            siloBuilder.Services.AddBlankendOptions(config);
            siloBuilder.AddBlankendGrainDefaults(
                BlankendConfiguration.Read<ClusterSettings, ClusterSettingsValidator>(config, ClusterSettings.Section)
            );
            siloBuilder.AddBlankendProcessing(config);
        }
    }
}

/// <summary>DeviceWorkerGrain placement by device id and silo metadata (custom placement director).</summary>
[Trait(TestKind.Name, TestKind.Integration)]
public sealed class DevicePlacementTests(GpuClusterFixture fixture) : IClassFixture<GpuClusterFixture>
{
    private IClusterClient Client => fixture.Cluster.Client;

    private string SiloOf(string name) =>
        fixture.Cluster.GetActiveSilos().Single(s => s.Name == name).SiloAddress.ToString();

    /// <summary>The metadata of the other silo reaches each silo's cache shortly after it joins: retry until
    /// then.</summary>
    private async Task<DeviceStatus> StatusAsync(string device)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (true)
        {
            try
            {
                return await Client.GetGrain<IDeviceWorkerGrain>(device).GetStatus();
            }
            catch (OrleansException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(200);
            }
        }
    }

    [Fact]
    public async Task GpuDevicesArePlacedOnTheSiloWhoseMetadataListsThem()
    {
        Assert.Equal(SiloOf(GpuClusterFixture.GpuSiloName), (await StatusAsync("gpu0")).Silo);
        Assert.Equal(SiloOf(GpuClusterFixture.GpuSiloName), (await StatusAsync("gpu1")).Silo);
    }

    [Fact]
    public async Task CpuDeviceIsPlacedOnASiloAndRunsNothingUntilUsed()
    {
        var cpu = await StatusAsync("cpu0");
        Assert.Contains(cpu.Silo, fixture.Cluster.GetActiveSilos().Select(s => s.SiloAddress.ToString()));
        Assert.False(cpu.WorkerRunning);
        Assert.Equal(0, cpu.LoopThreads);
        Assert.Equal("CPU", cpu.Provider);
    }

    [Fact]
    public async Task ADeviceThatNoSiloOwnsIsRefusedWithAClearError()
    {
        await StatusAsync("gpu0"); // metadata has propagated
        var e = await Assert.ThrowsAnyAsync<Exception>(() => Client.GetGrain<IDeviceWorkerGrain>("gpu7").GetStatus());
        Assert.Contains("no active silo owns compute device 'gpu7'", e.ToString());
    }

    [Fact]
    public async Task GpuStatusListsEverySiloWithItsDevicesFromMetadata()
    {
        await StatusAsync("gpu0");
        var gpu = await Client.GetGrain<IPipelineConfigGrain>(IPipelineConfigGrain.Key).GetGpuStatus();
        Assert.Equal(2, gpu.Silos.Length);
        var host = gpu.Silos.Single(s => s.Silo == SiloOf(GpuClusterFixture.GpuSiloName));
        Assert.Equal(["gpu0", "gpu1", "cpu0"], host.Devices);
        Assert.Equal(["cpu0"], gpu.Silos.Single(s => s.Silo != host.Silo).Devices);
        // Devices were named by configuration, not found: the GPU count is what each silo's detection found
        // (none here; on a GPU host both in-process silos see its GPUs).
        Assert.Equal(2 * GpuDetector.Detect().Gpus.Length, gpu.GpuCount);
        Assert.Contains(gpu.Devices, d =>
            d.Device == "gpu0" && d.Silo == host.Silo && d.Provider == "CPU" && d.ProviderReason.Length > 0
        );
    }

    [Fact]
    public async Task HwTranscodeSpreadsSourcesOverTheClusterGpusAndPlainSourcesUseCpu0()
    {
        await StatusAsync("gpu0");
        var silo = ((InProcessSiloHandle)fixture.Cluster.Primary!).SiloHost!.Services;
        var catalog = (DeviceCatalog)silo.GetService(typeof(DeviceCatalog))!;
        // The catalog follows the metadata cache (refreshed at most once a second).
        HashSet<string> picked = [];
        for (var attempt = 0; attempt < 100; attempt++)
        {
            picked = Enumerable.Range(0, 40).Select(i => catalog.Pick("cam" + i, hwTranscode: true)).ToHashSet();
            if (picked.Count == 2)
                break;
            await Task.Delay(100);
        }
        Assert.Equal(["gpu0", "gpu1"], picked.Order());
        Assert.Equal("cpu0", catalog.Pick("cam1", hwTranscode: false));
    }
}

/// <summary>The director's rules on their own, with a fake placement context.</summary>
[Trait(TestKind.Name, TestKind.Unit)]
public sealed class DevicePlacementDirectorTests
{
    private static readonly SiloAddress A = SiloAddress.New(new IPEndPoint(IPAddress.Loopback, 1001), 1);
    private static readonly SiloAddress B = SiloAddress.New(new IPEndPoint(IPAddress.Loopback, 1002), 1);
    private static readonly SiloAddress C = SiloAddress.New(new IPEndPoint(IPAddress.Loopback, 1003), 1);

    private sealed class Catalog(Dictionary<SiloAddress, string[]> devices) : IDeviceCatalog
    {
        public IReadOnlyList<string> DevicesOf(SiloAddress silo) => devices.GetValueOrDefault(silo) ?? [];
    }

    private sealed class Context(SiloAddress local, SiloAddress[] silos) : IPlacementContext
    {
        public SiloAddress LocalSilo => local;
        public SiloStatus LocalSiloStatus => SiloStatus.Active;

        public SiloAddress[] GetCompatibleSilos(PlacementTarget target) => silos;

        public IReadOnlyDictionary<ushort, SiloAddress[]> GetCompatibleSilosWithVersions(PlacementTarget target) =>
            new Dictionary<ushort, SiloAddress[]> { [0] = silos };
    }

    private static PlacementTarget Target(string device) =>
        new(GrainId.Create("deviceworker", device), [], GrainInterfaceType.Create("IDeviceWorkerGrain"), 0);

    private static readonly DevicePlacementDirector Director = new(
        new Catalog(
            new()
            {
                [A] = ["cpu0"],
                [B] = ["gpu0", "gpu1", "cpu0"],
                [C] = ["gpu2", "cpu0"],
            }
        )
    );

    private static SiloAddress Place(string device, SiloAddress local) =>
        Director
            .OnAddActivation(DevicePlacement.Instance, Target(device), new Context(local, [A, B, C]))
            .GetAwaiter()
            .GetResult();

    [Fact]
    public void CpuDeviceStaysOnTheAskingSilo()
    {
        Assert.Equal(A, Place("cpu0", A));
        Assert.Equal(B, Place("cpu0", B));
        Assert.Equal(C, Place("cpu0", C));
    }

    [Fact]
    public void GpuDeviceGoesToItsOwnerWhoeverAsks()
    {
        foreach (var local in new[] { A, B, C })
        {
            Assert.Equal(B, Place("gpu0", local));
            Assert.Equal(B, Place("gpu1", local));
            Assert.Equal(C, Place("gpu2", local));
        }
    }

    [Fact]
    public void UnownedDeviceThrowsNamingIt()
    {
        var e = Assert.Throws<OrleansException>(() => Place("gpu9", A));
        Assert.Contains("gpu9", e.Message);
    }
}

/// <summary>Parsing of <c>nvidia-smi -L</c> output (the format seen on an H100 host) and the metadata format.</summary>
[Trait(TestKind.Name, TestKind.Unit)]
public sealed class GpuDetectionTests
{
    [Fact]
    public void NvidiaSmiListIsParsed()
    {
        // The first line as printed by nvidia-smi -L on an H100 host.
        const string output =
            "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-a0dd8829-02dd-7b77-da55-9100a5201c9d)\n"
            + "GPU 1: NVIDIA A10 (UUID: GPU-0000)\n  MIG 1g.10gb Device 0: (UUID: MIG-xyz)\n";
        var gpus = GpuDetector.ParseNvidiaSmiList(output);
        Assert.Equal(2, gpus.Length);
        Assert.Equal(new GpuInfo(0, "NVIDIA H100 80GB HBM3", "GPU-a0dd8829-02dd-7b77-da55-9100a5201c9d"), gpus[0]);
        Assert.Equal(new GpuInfo(1, "NVIDIA A10", "GPU-0000"), gpus[1]);
        Assert.Equal(gpus, LocalDevices.ParseGpus(LocalDevices.FormatGpus(gpus)));
    }

    [Fact]
    public void ProcDriverInformationIsParsed()
    {
        // As seen on an H100 host (/proc/driver/nvidia/gpus/0000:00:06.0/information).
        const string text =
            "Model: \t\t NVIDIA H100 80GB HBM3\nIRQ:   \t\t 41\nGPU UUID: \t GPU-a0dd8829-02dd-7b77-da55-9100a5201c9d\n"
            + "Video BIOS: \t 96.00.da.00.0c\nBus Type: \t PCIe\nBus Location: \t 0000:00:06.0\nDevice Minor: \t 0\n";
        Assert.Equal(
            new GpuInfo(0, "NVIDIA H100 80GB HBM3", "GPU-a0dd8829-02dd-7b77-da55-9100a5201c9d"),
            GpuDetector.ParseProcInformation(text, 7)
        );
    }

    [Fact]
    public void DetectionSaysHowItLookedAndTheDevicesFollowIt()
    {
        var result = GpuDetector.Detect();
        var local = LocalDevices.Create(new ConfigurationBuilder().Build());
        if (result.Gpus.Length == 0)
        {
            Assert.StartsWith("none:", result.Detection);
            Assert.Equal(["cpu0"], local.Devices);
        }
        else
        {
            Assert.Matches(@"^(nvidia-smi|/proc/driver/nvidia/gpus): \d+ GPU\(s\)", result.Detection);
            Assert.Equal([.. result.Gpus.Select(g => $"gpu{g.Index}"), "cpu0"], local.Devices);
        }
    }
}
