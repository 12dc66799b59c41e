using Xunit;

namespace Blankend.Orleans.Tests.Support;

/// <summary>Tests whose pass criterion depends on throughput (frames delivered at a given rate) run here: xunit
/// runs this collection alone, after the parallel ones, so two cores are not shared with other test clusters.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class SerialCollection
{
    public const string Name = "serial (throughput-sensitive)";
}
