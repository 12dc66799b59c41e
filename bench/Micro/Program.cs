// Micro-benchmarks of the frame path's hot pieces (BenchmarkDotNet).
//   bench/run.sh --micro                       short job, in-process, summary into docs/benchmarks.md
//   dotnet bench/Micro/bin/Release/net10.0/Blankend.Bench.Micro.dll --filter '*' --job short --inProcess
// Run from Release builds only (BenchmarkDotNet refuses non-optimized assemblies).
using BenchmarkDotNet.Running;

var summaries = BenchmarkSwitcher.FromAssembly(typeof(Blankend.Bench.Micro.Media).Assembly).Run(args);
return summaries.Any(s => s.HasCriticalValidationErrors || s.Reports.Any(r => !r.Success)) ? 1 : 0;
