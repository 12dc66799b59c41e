using Blankend.Orleans.Grains.Relay;
using Blankend.Orleans.Tests.Support;
using Xunit;

namespace Blankend.Orleans.Tests.Relay;

[Trait(TestKind.Name, TestKind.Unit)]
public sealed class EchoFilterTests
{
    [Fact]
    public void EachSendIsRecognisedOnceThenForgotten()
    {
        var f = new EchoFilter(TimeSpan.FromSeconds(5), 100);
        f.Add(42, 0);
        f.Add(42, 10);
        Assert.True(f.TryConsume(42, 20));
        Assert.True(f.TryConsume(42, 30));
        Assert.False(f.TryConsume(42, 40)); // a third copy is a new frame
        Assert.False(f.TryConsume(7, 40));
    }

    [Fact]
    public void EntriesExpireAfterTheTtl()
    {
        var f = new EchoFilter(TimeSpan.FromSeconds(5), 100);
        f.Add(1, 0);
        f.Add(2, 3000);
        Assert.False(f.TryConsume(1, 5001));
        Assert.True(f.TryConsume(2, 5001));
        Assert.Equal(0, f.Count);
    }

    [Fact]
    public void ARepeatedSendKeepsTheEntryUntilItsLatestExpiry()
    {
        var f = new EchoFilter(TimeSpan.FromSeconds(5), 100);
        f.Add(9, 0);
        f.Add(9, 4000);
        Assert.True(f.TryConsume(9, 6000));
    }

    [Fact]
    public void TheSetStaysBoundedDroppingTheOldest()
    {
        var f = new EchoFilter(TimeSpan.FromSeconds(5), 100);
        for (ulong i = 0; i < 1000; i++)
            f.Add(i, 0);
        Assert.True(f.Count <= 100);
        Assert.False(f.TryConsume(0, 1));
        Assert.True(f.TryConsume(999, 1));
    }
}
