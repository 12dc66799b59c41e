namespace Blankend.Orleans.Tests.Support;

/// <summary>The kinds of test, as an xunit trait on every test class (<c>[Trait(TestKind.Name, TestKind.Unit)]</c>):
/// <c>scripts/test.sh --fast</c> runs the unit tests only, <c>--kind Integration</c> one kind.</summary>
public static class TestKind
{
    public const string Name = "Kind";

    /// <summary>In-process, no Orleans cluster and no Kestrel (may run ffmpeg or ONNX Runtime on small
    /// inputs).</summary>
    public const string Unit = "Unit";

    /// <summary>In-process Orleans cluster (TestCluster or the embedded gateway on Kestrel), real sockets.</summary>
    public const string Integration = "Integration";

    /// <summary>Separate processes: silo and gateway executables, redis-server, PostgreSQL, a browser.</summary>
    public const string Process = "Process";
}
