using System.Collections.Concurrent;
using Blankend.Orleans.Tests.Support;
using Xunit;

namespace Blankend.Orleans.Tests.Grains;

/// <summary>Routing of ClientGrain and the source directory across a 2-silo cluster.</summary>
[Trait(TestKind.Name, TestKind.Integration)]
public sealed class ClientGrainTests(TwoSiloClusterFixture fixture) : IClassFixture<TwoSiloClusterFixture>
{
    private IClusterClient Client => fixture.Cluster.Client;

    private sealed class RecordingObserver : IFrameObserver
    {
        public ConcurrentQueue<FrameEnvelope> Frames { get; } = new();

        public Task OnFrame(FrameEnvelope frame)
        {
            Frames.Enqueue(frame);
            return Task.CompletedTask;
        }
    }

    private static FrameEnvelope Frame(string source, int tag) =>
        new(
            source,
            0,
            0,
            FrameKind.Raw,
            DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
            FrameOrigin.VideoIn,
            TestJpeg.Tagged(tag)
        );

    private static string NewSource() => "g-" + Guid.NewGuid().ToString("N")[..8];

    private static async Task WaitForAsync(Func<bool> condition, int timeoutMs = 10_000)
    {
        var deadline = Environment.TickCount64 + timeoutMs;
        while (!condition())
        {
            if (Environment.TickCount64 > deadline)
                throw new TimeoutException();
            await Task.Delay(10);
        }
    }

    [Fact]
    public async Task PublishedFramesReachASubscriberOnceEachInOrderWithSequence()
    {
        var source = NewSource();
        var observer = new RecordingObserver();
        var reference = Client.CreateObjectReference<IFrameObserver>(observer);
        var grain = Client.GetGrain<IClientGrain>(source);
        await grain.Subscribe(reference);

        for (var i = 0; i < 100; i++)
            await grain.Publish(Frame(source, i));
        // A marker frame after the 100: once it is here, a duplicate of any of them would have come before it.
        await grain.Publish(Frame(source, 100));
        await WaitForAsync(() => observer.Frames.Any(f => TestJpeg.ReadTag(f.Payload) == 100));
        await WaitForAsync(() => observer.Frames.Count >= 101);

        var frames = observer.Frames.Where(f => TestJpeg.ReadTag(f.Payload) < 100).ToArray();
        Assert.Equal(100, frames.Length);
        // The grain numbers frames in the order they were published (observer calls may still overtake each
        // other on the way back; the gateway's per-source cursor handles that).
        var bySeq = frames.OrderBy(f => f.Seq).ToArray();
        Assert.Equal(Enumerable.Range(1, 100).Select(i => (long)i), bySeq.Select(f => f.Seq));
        Assert.Equal(Enumerable.Range(0, 100), bySeq.Select(f => TestJpeg.ReadTag(f.Payload)));
        Assert.Single(frames.Select(f => f.Epoch).Distinct());
        Assert.All(frames, f => Assert.Equal(source, f.Source));

        var stats = await grain.GetStats();
        Assert.Equal(101, stats.FramesIn);
        Assert.Equal(101, stats.Seq);
        Assert.Equal(1, stats.Observers);
    }

    [Fact]
    public async Task SourceGrainStampsItsOwnKeyOverAForgedSource()
    {
        var source = NewSource();
        var observer = new RecordingObserver();
        var grain = Client.GetGrain<IClientGrain>(source);
        await grain.Subscribe(Client.CreateObjectReference<IFrameObserver>(observer));
        await grain.Publish(Frame("someone-else", 1));
        await WaitForAsync(() => observer.Frames.Count == 1);
        Assert.Equal(source, observer.Frames.Single().Source);
    }

    [Fact]
    public async Task UnsubscribedObserverGetsNothingMore()
    {
        var source = NewSource();
        var observer = new RecordingObserver();
        var reference = Client.CreateObjectReference<IFrameObserver>(observer);
        var grain = Client.GetGrain<IClientGrain>(source);
        await grain.Subscribe(reference);
        await grain.Publish(Frame(source, 1));
        await WaitForAsync(() => observer.Frames.Count == 1);

        await grain.Unsubscribe(reference);
        await grain.Publish(Frame(source, 2));
        // Subscribed again, a marker frame: once it is here, frame 2 would have been too.
        await grain.Subscribe(reference);
        await grain.Publish(Frame(source, 3));
        await WaitForAsync(() => observer.Frames.Any(f => TestJpeg.ReadTag(f.Payload) == 3));
        Assert.Equal([1, 3], observer.Frames.Select(f => TestJpeg.ReadTag(f.Payload)).Order());
    }

    [Fact]
    public async Task RegistrationThatIsNotRefreshedExpires()
    {
        var source = NewSource();
        var observer = new RecordingObserver();
        var grain = Client.GetGrain<IClientGrain>(source);
        await grain.Subscribe(Client.CreateObjectReference<IFrameObserver>(observer));
        // The expiry is what is tested: a wait of 3 refresh periods (plus the purge tick) is its condition.
        await Task.Delay(TwoSiloClusterFixture.RefreshMs * 3 + 1200);

        await grain.Publish(Frame(source, 1)); // purges, then routes to nobody
        await grain.Publish(Frame(source, 2));
        var stats = await grain.GetStats();
        Assert.Equal(0, stats.Observers);
        Assert.Equal(2, stats.FramesIn);
        // Subscribed again, a marker frame: once it is here, frames 1 and 2 would have been too.
        await grain.Subscribe(Client.CreateObjectReference<IFrameObserver>(observer));
        await grain.Publish(Frame(source, 3));
        await WaitForAsync(() => !observer.Frames.IsEmpty);
        Assert.Equal([3], observer.Frames.Select(f => TestJpeg.ReadTag(f.Payload)));
    }

    [Fact]
    public async Task AllSourcesObserverGetsEverySourceAndEachFrameOnceWhenAlsoSubscribedDirectly()
    {
        var a = NewSource();
        var b = NewSource();
        var ga = Client.GetGrain<IClientGrain>(a);
        var gb = Client.GetGrain<IClientGrain>(b);
        await ga.GetStats(); // both sources active before the all-sources observer arrives
        await gb.GetStats();

        var observer = new RecordingObserver();
        var reference = Client.CreateObjectReference<IFrameObserver>(observer);
        await Client.GetGrain<ISourceDirectoryGrain>(ISourceDirectoryGrain.Key).SubscribeAll(reference);
        await ga.Subscribe(reference); // the same gateway also has a viewer of a alone

        await ga.Publish(Frame(a, 1));
        await gb.Publish(Frame(b, 2));
        // Marker frames after them: once both are here, a second copy of 1 or 2 would have come before.
        await ga.Publish(Frame(a, 3));
        await gb.Publish(Frame(b, 4));
        await WaitForAsync(() => observer.Frames.Count(f => TestJpeg.ReadTag(f.Payload) is 3 or 4) == 2);

        var frames = observer.Frames.ToArray();
        Assert.Equal(4, frames.Length); // a's frames once each, not once per registration
        (string, int)[] expected = [(a, 1), (a, 3), (b, 2), (b, 4)];
        Assert.Equal(expected.Order(), frames.Select(f => (f.Source, TestJpeg.ReadTag(f.Payload))).Order());

        var sources = await Client.GetGrain<ISourceDirectoryGrain>(ISourceDirectoryGrain.Key).ListSources();
        Assert.Contains(a, sources);
        Assert.Contains(b, sources);
        await Client.GetGrain<ISourceDirectoryGrain>(ISourceDirectoryGrain.Key).UnsubscribeAll(reference);
    }

    [Fact]
    public async Task ASourceActivatedAfterTheAllSourcesObserverAlsoDeliversToIt()
    {
        var observer = new RecordingObserver();
        var reference = Client.CreateObjectReference<IFrameObserver>(observer);
        var directory = Client.GetGrain<ISourceDirectoryGrain>(ISourceDirectoryGrain.Key);
        await directory.SubscribeAll(reference);

        var late = NewSource();
        await Client.GetGrain<IClientGrain>(late).Publish(Frame(late, 5));
        await WaitForAsync(() => observer.Frames.Any(f => f.Source == late));
        var got = Assert.Single(observer.Frames, f => f.Source == late);
        Assert.Equal(5, TestJpeg.ReadTag(got.Payload));
        Assert.Equal(1, got.Seq); // the late source's first frame, stamped by its grain
        await directory.UnsubscribeAll(reference);
    }

    [Fact]
    public async Task SourcesOnBothSilosAllDeliver()
    {
        var observer = new RecordingObserver();
        var reference = Client.CreateObjectReference<IFrameObserver>(observer);
        // Placement is the cluster's choice (not uniformly random in Orleans 10): activate sources until both
        // silos host some, within a bound.
        var sources = new List<string>();
        var silos = new HashSet<string>();
        while (silos.Count < 2 && sources.Count < 200)
        {
            var s = NewSource();
            var grain = Client.GetGrain<IClientGrain>(s);
            await grain.Subscribe(reference);
            silos.Add((await grain.GetStats()).Silo);
            sources.Add(s);
        }
        Assert.Equal(2, silos.Count);
        foreach (var s in sources)
            await Client.GetGrain<IClientGrain>(s).Publish(Frame(s, 1));
        await WaitForAsync(() => observer.Frames.Count >= sources.Count);
        await Task.Delay(200);
        Assert.Equal(sources.Order(), observer.Frames.Select(f => f.Source).Order());
    }
}
