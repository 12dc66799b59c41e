#!/usr/bin/env bash
# Fuzz campaign for the parsers that take outside bytes (bench/Fuzz; docs/security.md "Fuzzing").
# Usage: bench/fuzz.sh [count per target, default 1000000] [targets, comma separated, default all]
# Findings (crashes, hangs) are saved to bench/Fuzz/findings/<target>/; add the interesting ones to
# tests/testdata/fuzz/<target>/ so that the suite (tests/Fuzz) keeps them as regression tests.
set -euo pipefail
cd "$(dirname "$0")/.."
count="${1:-1000000}"
targets="${2:-}"
dotnet build bench/Fuzz/Blankend.Bench.Fuzz.csproj -c Release -nologo -v quiet
args=(--count "$count")
[ -n "$targets" ] && args+=(--target "$targets")
exec dotnet bench/Fuzz/bin/Release/net10.0/Blankend.Bench.Fuzz.dll "${args[@]}"
