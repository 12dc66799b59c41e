using System.Reflection;
using Xunit;

namespace Blankend.Orleans.Tests.Support;

[Trait(TestKind.Name, TestKind.Unit)]
public sealed class TestKindTests
{
    /// <summary>A test class without a kind would silently fall out of <c>scripts/test.sh --fast</c> and the
    /// per-kind runs.</summary>
    [Fact]
    public void EveryTestClassDeclaresOneKnownKind()
    {
        string[] known = [TestKind.Unit, TestKind.Integration, TestKind.Process];
        var missing = new List<string>();
        foreach (var type in typeof(TestKindTests).Assembly.GetTypes())
        {
            var tests = type.GetMethods(
                    BindingFlags.Instance | BindingFlags.Static | BindingFlags.Public | BindingFlags.DeclaredOnly
                )
                .Any(m => m.GetCustomAttributes<FactAttribute>(inherit: true).Any());
            if (!tests)
                continue;
            // TraitAttribute keeps its arguments only in the attribute's metadata.
            var declared = CustomAttributeData
                .GetCustomAttributes(type)
                .Where(a =>
                    a.AttributeType == typeof(TraitAttribute)
                    && (string?)a.ConstructorArguments[0].Value == TestKind.Name
                )
                .Select(a => (string?)a.ConstructorArguments[1].Value)
                .ToList();
            if (declared.Count != 1 || !known.Contains(declared[0]))
                missing.Add($"{type.FullName}: [{string.Join(", ", declared)}]");
        }
        Assert.True(missing.Count == 0, "test classes without exactly one Kind trait:\n" + string.Join("\n", missing));
    }
}
