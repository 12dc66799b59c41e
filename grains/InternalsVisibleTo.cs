using System.Runtime.CompilerServices;

[assembly: InternalsVisibleTo("Blankend.Orleans.Tests")]
