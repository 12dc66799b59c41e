using System.Diagnostics;
using System.Text;
using Blankend.Orleans.Tests.Gateway;
using Blankend.Orleans.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Trace;
using Xunit;
using Xunit.Abstractions;

namespace Blankend.Orleans.Tests.Telemetry;

/// <summary>
/// Traces of <c>/video_in</c> frames, collected by the OpenTelemetry in-memory exporter in a real embedded
/// gateway. The processing path (decode, AI steps, encode) does not exist in this build, so "a frame with
/// processing on" cannot be traced yet: a frame's trace here is the gateway's frame span and the grain calls it
/// causes, ClientGrain.Publish (gateway and silo side) and the observer call back to the gateway.
/// </summary>
[Trait(TestKind.Name, TestKind.Integration)]
public sealed class TracingTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task PickedFramesAreOneTraceFromGatewayToGrainAndOthersMakeNoSpans()
    {
        var spans = new LockedList<Activity>();
        // One frame in two is traced: frames 0 and 2 of the connection, not 1 and 3.
        await using var gw = await EmbeddedGateway.StartAsync(["--telemetry:trace_sample_every=2"], configure: b =>
            b.Services.ConfigureOpenTelemetryTracerProvider(t => t.AddInMemoryExporter(spans))
        );
        var source = "trace-" + Guid.NewGuid().ToString("N")[..8];
        using var viewer = await Ws.ConnectAsync(gw.Ws($"/video_out?source={source}"));
        using var cam = await Ws.ConnectAsync(gw.Ws($"/video_in?client_id={source}"));
        await VideoPathTests.WaitSubscribedAsync(gw.StreamStatusAsync, source);

        for (var i = 0; i < 4; i++)
        {
            await cam.SendBinaryAsync(TestJpeg.Tagged(i));
            Assert.NotNull(await viewer.ReceiveMessageAsync(Wait)); // one at a time: each frame done before the next
        }

        // The spans of a frame end a little after the viewer has it (Publish's answer goes back after the
        // one-way observer call): wait for both frame traces to hold their grain server span.
        var deadline = DateTime.UtcNow + Wait;
        List<Activity> frameSpans;
        while (true)
        {
            frameSpans = spans
                .Snapshot()
                .Where(a =>
                    a.OperationName == "blankend.video_in.frame" && (string?)a.GetTagItem("blankend.source") == source
                )
                .ToList();
            var complete =
                frameSpans.Count == 2
                && frameSpans.All(f =>
                    spans.Snapshot().Any(a => a.TraceId == f.TraceId && a.Kind == ActivityKind.Server && IsPublish(a))
                );
            if (complete || DateTime.UtcNow > deadline)
                break;
            await Task.Delay(50);
        }
        var all = spans.Snapshot();
        var dump = Dump(all);
        output.WriteLine(dump);
        Assert.True(frameSpans.Count == 2, $"expected 2 frame spans (frames 0 and 2), got {frameSpans.Count}:\n{dump}");
        Assert.Equal(
            [0L, 2L],
            frameSpans.Select(f => Convert.ToInt64(f.GetTagItem("blankend.frame.index"))).Order().ToArray()
        );

        foreach (var frame in frameSpans)
        {
            var trace = all.Where(a => a.TraceId == frame.TraceId).ToList();
            // The gateway's frame span is the root of its own trace (linked to the WebSocket request's span).
            Assert.Equal(default, frame.ParentSpanId);
            Assert.Equal("Blankend", frame.Source.Name);
            Assert.Single(frame.Links);
            // The gateway's outgoing call to ClientGrain.Publish is its child...
            var call = Assert.Single(trace, a => a.Kind == ActivityKind.Client && IsPublish(a));
            Assert.StartsWith("Microsoft.Orleans", call.Source.Name);
            Assert.Equal(frame.SpanId, call.ParentSpanId);
            // ...and the grain's execution of it, in the silo, is the call's child: one trace across the hop.
            var grain = Assert.Single(trace, a => a.Kind == ActivityKind.Server && IsPublish(a));
            Assert.Equal(call.SpanId, grain.ParentSpanId);
            Assert.True(TargetsSource(grain, source), dump);
            // The way back is in it too: the grain's one-way call to this gateway's observer, and its execution here.
            var back = Assert.Single(trace, a => a.Kind == ActivityKind.Client && IsOnFrame(a));
            Assert.Equal(grain.SpanId, back.ParentSpanId);
            var observer = Assert.Single(trace, a => a.Kind == ActivityKind.Server && IsOnFrame(a));
            Assert.Equal(back.SpanId, observer.ParentSpanId);
        }

        // Frames 1 and 3 made no recorded Publish span at all (not even a root of their own): 2 frames, 2 calls.
        Assert.Equal(2, all.Count(a => a.Kind == ActivityKind.Server && IsPublish(a) && TargetsSource(a, source)));
        await cam.CloseQuietlyAsync();
        await viewer.CloseQuietlyAsync();
    }

    private static bool IsPublish(Activity a) =>
        a.Source.Name.StartsWith("Microsoft.Orleans", StringComparison.Ordinal)
        && a.DisplayName == "IClientGrain/Publish";

    private static bool IsOnFrame(Activity a) =>
        a.Source.Name.StartsWith("Microsoft.Orleans", StringComparison.Ordinal)
        && a.DisplayName == "IFrameObserver/OnFrame";

    /// <summary>Orleans tags a grain call with its target (<c>client/{source}</c> for a ClientGrain).</summary>
    private static bool TargetsSource(Activity a, string source) =>
        (a.GetTagItem("orleans.rpc.target_id") as string) == "client/" + source;

    private static string Dump(IEnumerable<Activity> spans)
    {
        var sb = new StringBuilder();
        foreach (var a in spans)
        {
            sb.Append($"{a.TraceId}/{a.SpanId} parent={a.ParentSpanId} {a.Source.Name} {a.Kind} '{a.DisplayName}'");
            foreach (var t in a.TagObjects)
                sb.Append($" {t.Key}={t.Value}");
            sb.AppendLine();
        }
        return sb.ToString();
    }

    /// <summary>The exporter adds from the export thread while the test reads.</summary>
    private sealed class LockedList<T> : ICollection<T>
    {
        private readonly List<T> _items = [];

        public List<T> Snapshot()
        {
            lock (_items)
                return [.. _items];
        }

        public int Count
        {
            get
            {
                lock (_items)
                    return _items.Count;
            }
        }

        public bool IsReadOnly => false;

        public void Add(T item)
        {
            lock (_items)
                _items.Add(item);
        }

        public void Clear()
        {
            lock (_items)
                _items.Clear();
        }

        public bool Contains(T item)
        {
            lock (_items)
                return _items.Contains(item);
        }

        public void CopyTo(T[] array, int arrayIndex)
        {
            lock (_items)
                _items.CopyTo(array, arrayIndex);
        }

        public bool Remove(T item)
        {
            lock (_items)
                return _items.Remove(item);
        }

        public IEnumerator<T> GetEnumerator() => Snapshot().GetEnumerator();

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }
}
