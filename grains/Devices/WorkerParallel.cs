namespace Blankend.Orleans.Grains.Devices;

/// <summary>The per-frame work of a device worker's batch (JPEG decode and encode, pre-processing into the batch
/// tensor's slots, compositing): independent items, run on all cores when there are several, so one loop per
/// device keeps its batches whole and still uses every core.</summary>
internal static class WorkerParallel
{
    private static readonly ParallelOptions Options = new() { MaxDegreeOfParallelism = Environment.ProcessorCount };

    /// <summary>Runs <paramref name="body"/> for 0..count-1, in parallel when there are several.</summary>
    public static void For(int count, Action<int> body)
    {
        if (count == 1)
            body(0);
        else if (count > 1)
            Parallel.For(0, count, Options, body);
    }
}
