using System.Runtime.CompilerServices;

// Internal helpers shared with the projects built on this one (the recordings registry, the limits options).
[assembly: InternalsVisibleTo("Blankend.Orleans.Grains")]
[assembly: InternalsVisibleTo("Blankend.Orleans.Gateway")]
[assembly: InternalsVisibleTo("Blankend.Orleans.Silo")]
[assembly: InternalsVisibleTo("Blankend.Orleans.Tests")]
[assembly: InternalsVisibleTo("Blankend.Bench.Fuzz")]
