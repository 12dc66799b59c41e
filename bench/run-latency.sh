#!/usr/bin/env bash
# Latency/throughput comparison: bare relay (no Orleans) vs the Orleans gateway, same load.
#
#   bench/run-latency.sh              build, run both systems, print the table
#   bench/run-latency.sh --bare-only  bare relay only (e.g. while the gateway does not build)
#   bench/run-latency.sh --quick      shorter runs (smoke test of the script)
#
# Servers run one at a time (never both: the machine may have only 2 cores). Scenarios:
#   1x4@30   1 camera, 4 viewers, 30 fps, 15 s measured (+2 s warmup)
#   1x4@max  1 camera, 4 viewers, back-to-back frames, 10 s measured (+2 s warmup)
# Output: bench/results/<system>-<scenario>.json (git-ignored), the markdown table on stdout
# and in bench/results/latest.md; server logs in $TMPDIR/blankend-bench/<system>.log.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
RESULTS="$ROOT/bench/results"
LOGS="${TMPDIR:-/tmp}/blankend-bench"
CONFIG=Release
BIN=bin/$CONFIG/net10.0
LOADGEN="bench/LoadGen/$BIN/Blankend.Bench.LoadGen.dll"
BARE_DLL="bench/BareRelay/$BIN/Blankend.Bench.BareRelay.dll"
GATEWAY_DLL="gateway/$BIN/Blankend.Orleans.Gateway.dll"
BARE_PORT=8100
GATEWAY_PORT=8000

BARE_ONLY=0
DUR30=15
DURMAX=10
WARMUP=2
for arg in "$@"; do
    case "$arg" in
        --bare-only) BARE_ONLY=1 ;;
        --quick) DUR30=4; DURMAX=3; WARMUP=1 ;;
        -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown option: $arg (see --help)" >&2; exit 1 ;;
    esac
done

log() { printf '[run-latency] %s\n' "$*" >&2; }

SERVER_PID=""
cleanup() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- build (once) ------------------------------------------------------------------------
log "building $CONFIG: bench/LoadGen, bench/BareRelay"
# Build output goes to stderr: stdout carries only the LoadGen summaries and the table.
dotnet build bench/LoadGen/Blankend.Bench.LoadGen.csproj -c $CONFIG -nologo -v q -clp:ErrorsOnly >&2
dotnet build bench/BareRelay/Blankend.Bench.BareRelay.csproj -c $CONFIG -nologo -v q -clp:ErrorsOnly >&2

SYSTEMS=(bare)
if [[ $BARE_ONLY -eq 1 ]]; then
    log "--bare-only: skipping the Orleans gateway"
else
    log "building $CONFIG: gateway/Blankend.Orleans.Gateway.csproj"
    if dotnet build gateway/Blankend.Orleans.Gateway.csproj -c $CONFIG -nologo -v q -clp:ErrorsOnly >&2; then
        SYSTEMS+=(orleans)
    else
        echo >&2
        echo "run-latency: the Orleans gateway does not build (see the errors above)." >&2
        echo "run-latency: rerun with --bare-only to measure the bare relay alone." >&2
        exit 1
    fi
fi

# ---- server control ----------------------------------------------------------------------
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_server() { # system
    local system=$1 port dll
    if [[ $system == bare ]]; then port=$BARE_PORT; dll=$BARE_DLL; else port=$GATEWAY_PORT; dll=$GATEWAY_DLL; fi
    if port_open "$port"; then
        echo "run-latency: something already listens on 127.0.0.1:$port; stop it first." >&2
        exit 1
    fi
    log "starting $system on 127.0.0.1:$port"
    dotnet "$dll" --urls "http://127.0.0.1:$port" >"$LOGS/$system.log" 2>&1 &
    SERVER_PID=$!
    local deadline=$((SECONDS + 60))
    while :; do
        if ! kill -0 "$SERVER_PID" 2>/dev/null || [[ $(awk '{print $3}' "/proc/$SERVER_PID/stat" 2>/dev/null) == Z ]]; then
            echo "run-latency: $system exited during startup; last log lines:" >&2
            tail -20 "$LOGS/$system.log" >&2
            exit 1
        fi
        if [[ $system == bare ]]; then
            port_open "$port" && break
        else
            curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$port/healthz" 2>/dev/null && break
        fi
        if ((SECONDS >= deadline)); then
            echo "run-latency: $system did not become ready within 60 s" >&2
            exit 1
        fi
        sleep 0.2
    done
    log "$system ready (pid $SERVER_PID, log $LOGS/$system.log)"
}

stop_server() {
    [[ -n "$SERVER_PID" ]] || return 0
    local pid=$SERVER_PID rc=0
    kill -TERM "$pid" 2>/dev/null || true
    # Escalate to SIGKILL if it has not exited 15 s after SIGTERM (exited = zombie until waited).
    local i state
    for ((i = 0; i < 150; i++)); do
        state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || echo gone)
        [[ $state == Z || $state == gone ]] && break
        sleep 0.1
    done
    if ((i == 150)); then
        echo "run-latency: pid $pid did not exit 15 s after SIGTERM; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || rc=$?
    SERVER_PID=""
    log "server stopped (exit code $rc)"
}

# ---- runs --------------------------------------------------------------------------------
mkdir -p "$RESULTS" "$LOGS"
FILES=()
FAILED=0

run_load() { # system scenario fps duration
    local system=$1 scenario=$2 fps=$3 duration=$4 port
    if [[ $system == bare ]]; then port=$BARE_PORT; else port=$GATEWAY_PORT; fi
    local json="$RESULTS/$system-${scenario/@/-}.json"
    rm -f "$json"
    log "$system $scenario: fps=$fps duration=${duration}s warmup=${WARMUP}s"
    if ! dotnet "$LOADGEN" --url "ws://127.0.0.1:$port" --cameras 1 --viewers 4 --fps "$fps" \
        --duration "$duration" --warmup "$WARMUP" --server-pid "$SERVER_PID" \
        --label "$system" --scenario "$scenario" --json "$json"; then
        echo "run-latency: LoadGen reported a failure for $system $scenario" >&2
        FAILED=1
    fi
    [[ -f "$json" ]] && FILES+=("$json")
    sleep 1
}

for system in "${SYSTEMS[@]}"; do
    start_server "$system"
    sleep 1 # let the JIT / first requests settle before measuring
    run_load "$system" "1x4@30" 30 "$DUR30"
    run_load "$system" "1x4@max" 0 "$DURMAX"
    stop_server
done

echo
if ((${#FILES[@]} > 0)); then
    dotnet "$LOADGEN" --report-md "$RESULTS/latest.md" --baseline bare "${FILES[@]}"
fi
exit $FAILED
