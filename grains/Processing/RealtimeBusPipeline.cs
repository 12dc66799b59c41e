using System.Diagnostics;
using Blankend.Orleans.Grains.Relay;
using Microsoft.Extensions.Logging;

namespace Blankend.Orleans.Grains.Processing;

/// <summary>
/// The realtime pipeline's side of the bus (contract: "a frame received from the bus is first offered to the AI /
/// realtime pipeline when one is enabled"). Takes a bus frame when the AI steps are on for its client_id and
/// hands it to that source's ClientGrain marked <see cref="FrameOrigin.BusPipeline"/>: it runs through the same
/// steps as camera frames, its output reaches local viewers, and the ClientGrain sends it back to the bus as
/// <c>[client_id, out]</c> once. Frames it does not take follow the RelayGrain's echo / forward rules.
/// The pipeline config is cached here and refreshed in the background at most once a second.
/// </summary>
internal sealed partial class RealtimeBusPipeline(IGrainFactory grains, ILogger<RealtimeBusPipeline> log)
    : IBusFramePipeline
{
    private static readonly long RefreshTicks = Stopwatch.Frequency;
    private PipelineConfig? _config;
    private long _fetchedAt;
    private int _refreshing;

    public bool TryTake(FrameEnvelope frame)
    {
        var now = Stopwatch.GetTimestamp();
        if (now - Volatile.Read(ref _fetchedAt) > RefreshTicks && Interlocked.Exchange(ref _refreshing, 1) == 0)
            _ = RefreshAsync();
        var config = Volatile.Read(ref _config);
        if (config is null)
            return false;
        var s = config.For(frame.Source);
        if (!s.Enabled || s.ActiveAiSteps == Blankend.Orleans.Ai.AiSteps.None)
            return false;
        _ = PublishAsync(frame with { Origin = FrameOrigin.BusPipeline });
        return true;
    }

    private async Task PublishAsync(FrameEnvelope frame)
    {
        try
        {
            await grains.GetGrain<IClientGrain>(frame.Source).Publish(frame);
        }
        catch (Exception e)
        {
            LogPublishFailed(frame.Source, e.Message);
        }
    }

    private async Task RefreshAsync()
    {
        try
        {
            var config = await grains.GetGrain<IPipelineConfigGrain>(IPipelineConfigGrain.Key).GetConfig();
            if (_config is null || config.Version >= _config.Version)
                Volatile.Write(ref _config, config);
        }
        catch (Exception e)
        {
            LogRefreshFailed(e.Message);
        }
        finally
        {
            Volatile.Write(ref _fetchedAt, Stopwatch.GetTimestamp());
            Volatile.Write(ref _refreshing, 0);
        }
    }

    [LoggerMessage(
        Level = LogLevel.Warning,
        Message = "bus frame for {Source} taken by the realtime pipeline could not reach its source: {Reason}"
    )]
    private partial void LogPublishFailed(string source, string reason);

    [LoggerMessage(
        Level = LogLevel.Debug,
        Message = "realtime bus pipeline: config refresh failed ({Reason}); the last one stays in use"
    )]
    private partial void LogRefreshFailed(string reason);
}
