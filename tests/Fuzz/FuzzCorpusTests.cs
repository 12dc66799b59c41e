using System.Diagnostics;
using Blankend.Bench.Fuzz;
using Blankend.Orleans.Tests.Support;
using Xunit;

namespace Blankend.Orleans.Tests.Fuzz;

/// <summary>
/// The fuzz corpus (tests/testdata/fuzz/&lt;target&gt;/: the campaign's seeds and the edge cases worth keeping) as
/// regression tests: every file goes through its parser's fuzz target (bench/Fuzz/FuzzTargets.cs) without an
/// unexpected exception, a broken invariant or a hang. The campaign itself (millions of inputs) is bench/fuzz.sh.
/// </summary>
[Trait(TestKind.Name, TestKind.Unit)]
public sealed class FuzzCorpusTests
{
    public static TheoryData<string, string> Files()
    {
        var data = new TheoryData<string, string>();
        var root = TestEnv.TestData("fuzz");
        foreach (var target in FuzzTargets.All.Keys)
        {
            var folder = Path.Combine(root, target);
            if (!Directory.Exists(folder))
                continue;
            foreach (var file in Directory.EnumerateFiles(folder).Order(StringComparer.Ordinal))
                data.Add(target, Path.GetFileName(file));
        }
        return data;
    }

    [Fact]
    public void EveryTargetHasACorpus()
    {
        foreach (var target in FuzzTargets.All.Keys)
            Assert.True(Directory.EnumerateFiles(Path.Combine(TestEnv.TestData("fuzz"), target)).Any(), target);
    }

    [Theory]
    [MemberData(nameof(Files))]
    public async Task CorpusInputIsHandledWithoutCrashOrHang(string target, string file)
    {
        var input = await File.ReadAllBytesAsync(Path.Combine(TestEnv.TestData("fuzz"), target, file));
        // Off the test thread, bounded: a parser that loops fails this test instead of hanging the run.
        var run = Task.Run(() => FuzzTargets.All[target](input));
        Assert.True(
            await Task.WhenAny(run, Task.Delay(TimeSpan.FromSeconds(10))) == run,
            $"{target}/{file} did not return in 10 s"
        );
        await run;
    }
}
