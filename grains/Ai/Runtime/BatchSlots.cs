namespace Blankend.Orleans.Grains.Ai.Runtime;

/// <summary>Pre-processing of a batch: each image goes into its own slot of the batch tensor (with its own scratch),
/// so the slots are independent and fill on all cores.</summary>
internal static class BatchSlots
{
    private static readonly ParallelOptions Parallelism = new() { MaxDegreeOfParallelism = Environment.ProcessorCount };

    /// <summary>Runs <paramref name="fill"/> for slots 0..count-1, in parallel when there are several.</summary>
    public static void For(int count, Action<int> fill)
    {
        if (count == 1) fill(0);
        else Parallel.For(0, count, Parallelism, fill);
    }
}
