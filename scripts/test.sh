#!/usr/bin/env bash
# Runs the whole test suite (unit, Orleans TestCluster, real WebSockets, real processes) and ends with
# one summary line "tests: N passed, N failed, N skipped". Exit code 0 only when nothing failed.
#   scripts/test.sh                  everything (what .ci/run and the README run)
#   scripts/test.sh --fast           the unit tests only (the developer's quick loop)
#   scripts/test.sh --kind KIND      one kind: Unit, Integration or Process (tests/Support/TestKind.cs)
#   scripts/test.sh ... -- ARGS      extra arguments for dotnet test (e.g. --filter "FullyQualifiedName~Relay")
set -euo pipefail
cd "$(dirname "$0")/.."
filter=()
extra=()
while (($#)); do
  case "$1" in
    --fast) filter=(--filter "Kind=Unit"); shift ;;
    --kind) [[ $# -ge 2 ]] || { echo "test.sh: --kind needs Unit, Integration or Process" >&2; exit 2; }
            case "$2" in Unit|Integration|Process) filter=(--filter "Kind=$2") ;;
              *) echo "test.sh: unknown kind '$2' (Unit, Integration or Process)" >&2; exit 2 ;; esac
            shift 2 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "test.sh: unknown option '$1' (use --fast, --kind KIND, or -- ARGS for dotnet test)" >&2; exit 2 ;;
  esac
done
scripts/install-deps.sh --test

results=artifacts/test-results
rm -rf "$results"
dotnet build Blankend.Orleans.sln -c Release -nologo -v quiet
set +e
dotnet test tests/Blankend.Orleans.Tests.csproj -c Release --no-build -nologo "${filter[@]}" "${extra[@]}" \
  --logger "console;verbosity=normal" --logger "trx;LogFileName=results.trx" \
  --results-directory "$results" --blame-hang-timeout 10m
status=$?
set -e

trx="$results/results.trx"
if [[ -f "$trx" ]]; then
  counters=$(grep -o '<Counters [^>]*>' "$trx" | head -1)
  get() { sed -n "s/.* $1=\"\([0-9]*\)\".*/\1/p" <<<"$counters"; }
  passed=$(get passed); failed=$(get failed); total=$(get total); executed=$(get executed)
  skipped=$(( ${total:-0} - ${executed:-0} ))
  if [[ "${failed:-0}" -gt 0 ]]; then
    # CI shows only the tail of the log: repeat each failure (name and first lines of its message) here.
    echo "---- failed tests ----"
    /usr/bin/python3 - "$trx" <<'PY' || grep -o 'testName="[^"]*" [^>]*outcome="Failed"' "$trx" || true
import sys, xml.etree.ElementTree as ET
ns = {"t": "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"}
for r in ET.parse(sys.argv[1]).getroot().iterfind(".//t:UnitTestResult", ns):
    if r.get("outcome") != "Failed":
        continue
    msg = r.findtext(".//t:Message", default="", namespaces=ns).strip().splitlines()
    print("FAILED", r.get("testName"), "(" + r.get("duration", "?") + ")")
    for line in msg[:12]:
        print("   ", line[:300])
PY
    echo "----------------------"
  fi
  echo "tests: ${passed:-0} passed, ${failed:-0} failed, ${skipped} skipped"
  if [[ "${executed:-0}" -eq 0 ]]; then echo "no test executed" >&2; exit 1; fi
else
  echo "tests: 0 passed, 1 failed (no results file: the test run did not complete)"
  exit 1
fi
exit $status
