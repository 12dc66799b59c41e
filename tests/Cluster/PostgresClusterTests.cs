using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using Blankend.Orleans.Tests.Processing;
using Blankend.Orleans.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Blankend.Orleans.Tests.Cluster;

/// <summary>
/// The key cluster test on PostgreSQL membership (cluster.clustering=postgres): a throw-away PostgreSQL server, 2 silo
/// processes and 1 client-mode gateway process; the first silo creates the schema; frames flow; kill -9 of the silo
/// holding the source's grain; frames resume within 5 s and the membership table shows the silo dead. Serial for the
/// same reason as <see cref="RedisClusterTests"/> (a timing claim on two shared cores).
/// </summary>
[Trait(TestKind.Name, TestKind.Process)]
[Collection(SerialCollection.Name)]
public sealed class PostgresClusterTests(ITestOutputHelper output)
{
    private static readonly TimeSpan ResumeGoal = TimeSpan.FromSeconds(5);

    private static ClusterSilo StartSilo(
        IReadOnlyDictionary<string, string> env,
        string[] common,
        params string[] extra
    ) => ClusterSilo.Start(env, common, extra);

    private static async Task<JsonElement> ClusterStatusAsync(ServiceProcess gw) =>
        await gw.Client.GetFromJsonAsync<JsonElement>("api/v1/cluster/status");

    private static long Ms(long fromTimestamp, long toTimestamp) =>
        (toTimestamp - fromTimestamp) * 1000 / Stopwatch.Frequency;

    [PostgresFact]
    public async Task TwoSilosOneGatewayOnPostgresFramesResumeWithinFiveSecondsAfterKill9AndTheSiloIsDeadInTheTable()
    {
        var clock = Stopwatch.StartNew();
        await using var pg = await PostgresServer.StartAsync();
        output.WriteLine($"postgres up on port {pg.Port} after {clock.ElapsedMilliseconds} ms");
        var clusterId = "pg-" + Guid.NewGuid().ToString("N")[..8];
        // The connection string goes through the environment variable of the one env map (BLANKEND_POSTGRES).
        string[] common =
        [
            "--cluster:clustering=postgres",
            $"--cluster:cluster_id={clusterId}",
            "--Logging:Console:TimestampFormat=HH:mm:ss.fff ",
        ];
        var env = new Dictionary<string, string> { ["BLANKEND_POSTGRES"] = pg.ConnectionString };
        var a = StartSilo(env, common, "--Orleans:Metadata:blankend_devices=cpu0");
        var b = StartSilo(env, common, "--Orleans:Metadata:blankend_devices=cpu0");
        await using var _1 = a.Process;
        await using var _2 = b.Process;
        await using var gw = ServiceProcess.StartGateway(env, [.. common, "--cluster:mode=client"]);
        await gw.WaitHealthyAsync(TimeSpan.FromSeconds(60));

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        JsonElement status = default;
        while (DateTime.UtcNow < deadline)
        {
            Assert.False(a.Process.Process.HasExited, "silo A exited:\n" + a.Process.Output);
            Assert.False(b.Process.Process.HasExited, "silo B exited:\n" + b.Process.Output);
            try
            {
                status = await ClusterStatusAsync(gw);
                if (status.GetProperty("active_silos").GetInt32() == 2)
                    break;
            }
            catch (HttpRequestException) { }
            catch (TaskCanceledException) { }
            await Task.Delay(200);
        }
        Assert.True(
            status.ValueKind == JsonValueKind.Object && status.GetProperty("active_silos").GetInt32() == 2,
            $"never 2 active silos: {status}\n--- A:\n{a.Process.Output}\n--- gateway:\n{gw.Output}"
        );
        Assert.Equal("postgres", status.GetProperty("clustering").GetString());
        // The schema was created once, by a silo, and both silos are in the membership table.
        var created = (a.Process.Output + b.Process.Output).Split("created the Orleans schema").Length - 1;
        Assert.Equal(1, created);
        Assert.Equal(
            2L,
            await pg.ScalarAsync(
                $"SELECT count(*) FROM orleansmembershiptable WHERE deploymentid = '{clusterId}' AND status = 3"
            )
        );
        output.WriteLine($"cluster of 2 silos + gateway up after {clock.ElapsedMilliseconds} ms");

        // Grain storage on the same database: the live pipeline config is written there.
        await gw.Client.ConfigureAsync("""{"jpeg_quality":55}""");
        Assert.Equal(
            1L,
            await pg.ScalarAsync("SELECT count(*) FROM orleansstorage WHERE payloadbinary IS NOT NULL AND version >= 1")
        );

        const string source = "pgcam";
        await using var viewer = await ViewerRecorder.StartAsync(gw.Ws($"/video_out?source={source}&meta=1"));
        await using var camera = await CameraStream.StartAsync(gw.Ws($"/video_in?client_id={source}"), fps: 30);
        Assert.NotNull(await viewer.WaitForAsync(f => f.Tag >= 30, TimeSpan.FromSeconds(30)));
        var victim = a.Is(ClusterSilo.HostOf(await gw.StreamStatusAsync(), source)) ? a : b;
        var survivor = victim == a ? b : a;

        var killedAt = Stopwatch.GetTimestamp();
        victim.Process.Process.Kill();
        var resumed = await viewer.WaitForAsync(f => camera.SentAt(f.Tag) >= killedAt, TimeSpan.FromSeconds(20));
        var resumeMs = resumed is null ? -1 : Ms(killedAt, resumed.At);

        // Membership: the table itself says Dead (6) for the victim's row, and only the survivor is active.
        long deadMs = -1;
        while (Ms(killedAt, Stopwatch.GetTimestamp()) < 30_000)
        {
            var dead = await pg.ScalarAsync(
                $"SELECT count(*) FROM orleansmembershiptable WHERE deploymentid = '{clusterId}' AND port = {victim.SiloPort} AND status = 6"
            );
            if (dead is 1L)
            {
                deadMs = Ms(killedAt, Stopwatch.GetTimestamp());
                break;
            }
            await Task.Delay(100);
        }
        await Task.Delay(1000);
        var sent = await camera.StopAsync();
        await Task.Delay(1000);
        var after = await ClusterStatusAsync(gw);
        var stream = await gw.StreamStatusAsync();
        var frames = viewer.Frames;
        var viewerDrops = stream
            .GetProperty("viewers")
            .EnumerateArray()
            .Single(v => v.GetProperty("source").GetString() == source)
            .GetProperty("dropped")
            .GetInt64();
        var accounted =
            frames.Count
            + viewerDrops
            + new[] { "ingest_drops", "ingest_errors", "stale_frames", "lost_frames" }.Sum(k =>
                stream.GetProperty(k).GetInt64()
            );
        // The pipeline config read back after the kill (from PostgreSQL when its grain lived on the victim).
        var quality = (await gw.Client.GetJsonAsync(ProcessingApi.Status))
            .GetProperty("global")
            .GetProperty("jpeg_quality")
            .GetInt32();
        output.WriteLine(
            $"kill -9 of the source's silo (port {victim.SiloPort}): frames resumed after {resumeMs} ms, Dead in the table after "
                + $"{deadMs} ms; sent {sent}, delivered {frames.Count}, delivered + counted {accounted}; whole test {clock.ElapsedMilliseconds} ms"
        );

        Assert.True(
            resumed is not null,
            $"frames never resumed\n--- gateway:\n{gw.Output}\n--- survivor:\n{survivor.Process.Output}"
        );
        Assert.True(
            resumeMs <= ResumeGoal.TotalMilliseconds,
            $"frames resumed after {resumeMs} ms (goal {ResumeGoal.TotalMilliseconds} ms)"
        );
        Assert.True(
            deadMs >= 0,
            $"the membership table never showed the killed silo dead\n--- survivor:\n{survivor.Process.Output}"
        );
        Assert.Equal(1, after.GetProperty("active_silos").GetInt32());
        Assert.Equal(
            1L,
            await pg.ScalarAsync(
                $"SELECT count(*) FROM orleansmembershiptable WHERE deploymentid = '{clusterId}' AND status = 3"
            )
        );
        for (var i = 1; i < frames.Count; i++)
            Assert.True(
                frames[i].Tag > frames[i - 1].Tag,
                $"frame {i}: tag {frames[i].Tag} after {frames[i - 1].Tag} (repeat or out of order)"
            );
        Assert.InRange(accounted, sent - 2, sent + 1);
        Assert.Equal(55, quality);
        Assert.False(gw.Process.HasExited, "the gateway must survive a silo loss");
    }
}
