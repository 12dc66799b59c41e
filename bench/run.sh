#!/usr/bin/env bash
# Benchmarks: the Orleans gateway against a bare WebSocket relay (bench/BareRelay) and a Node.js + ws
# relay (bench/NodeWs), same load, same run.
#
#   bench/run.sh             the suite, then the capacity sweep (about 15 minutes on 2 cores, build
#                            included); writes docs/benchmarks.md and its SVG plots
#   bench/run.sh --capacity  the capacity sweep alone (about 8 minutes): 1xV@30 for V = 4, 64, 100, 128,
#                            256, 384, 512, 768 and 1x4@max, for every system; capacity = the most viewers
#                            with delivery >= 0.99 and p99 <= 50 ms (every smaller V passing too)
#   bench/run.sh --quick     smoke test of the tooling: 3-4 s per scenario (figures mean little)
#   bench/run.sh --soak      memory soak: orleans at 4x8@30 for 10 min after a 30 s warm-up, server
#                            RSS every 10 s (about 11 minutes in all)
#   bench/run.sh --micro     BenchmarkDotNet micro-benchmarks (bench/Micro), short job
#   bench/run.sh --doc-only  rebuild docs/benchmarks.md from bench/results/ without running anything
#   bench/run.sh --ai        AI steps (bench/AiBench): per-step ms vs the bare session.Run, end-to-end
#                            processed fps at 640x360 and 1280x720 (about 2 minutes); writes the table
#                            between the markers of docs/ai.md
#
# Options: --bare-only (suite without the gateway), --no-node (without bench/NodeWs), --no-build,
#          --results DIR (default bench/results), --doc PATH (default docs/benchmarks.md). --quick also shortens --soak (60 s) and --micro (dry job).
# Environment: BENCH_PROCESSING_ARGS  gateway arguments of the processing-on run (default
#                                     "--video_processing:enabled=true --stream:reencode_enabled=true")
#              BENCH_SOAK_SYSTEMS     systems the soak runs, one after the other (default "orleans")
#
# Node: bench/NodeWs runs where node >= 20 and npm are installed (`npm ci` there, from the committed lock
# file); without them its rows are left out and the doc says so. The test suite does not need Node.
# Suite: 1x4@30 (15 s), 1x4@max (10 s), 4x8@30 (15 s), 1x100@30 (15 s) and, for the viewer-scaling fit,
# 1x25@30 and 1x50@30 (8 s); each measured window follows a 3 s warm-up. For every scenario the bare relay
# runs first, then the gateway: one server at a time (never both), a fresh process per run, on free ports.
# Then "orleans+processing" at 1x4@30 when the gateway accepts BENCH_PROCESSING_ARGS and
# GET /api/v1/video_processing/pipeline/status answers 200 (else the doc says it is not available).
# Capacity: each V runs bare, orleans, node in turn (so that load from outside falls on all alike), 8 s measured
# after a 3 s warm-up, then 1x4@max (10 s) for each; results in bench/results/capacity/.
# Results: bench/results/{suite,capacity,soak,micro}/ + *-info.txt (git-ignored); server logs in
# ${TMPDIR:-/tmp}/blankend-bench-$$/.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
T0=$SECONDS
CONFIG=Release
BIN=bin/$CONFIG/net10.0
LOADGEN="bench/LoadGen/$BIN/Blankend.Bench.LoadGen.dll"
BARE_DLL="bench/BareRelay/$BIN/Blankend.Bench.BareRelay.dll"
GATEWAY_DLL="gateway/$BIN/Blankend.Orleans.Gateway.dll"
JPEG="bench/media/frame-1280x720-q80.jpg"
PROCESSING_ARGS=${BENCH_PROCESSING_ARGS:-"--video_processing:enabled=true --stream:reencode_enabled=true"}
SOAK_SYSTEMS=${BENCH_SOAK_SYSTEMS:-orleans}

MODE=suite
QUICK=0
BARE_ONLY=0
NO_NODE=0
BUILD=1
RESULTS="$ROOT/bench/results"
DOC="$ROOT/docs/benchmarks.md"
while (($#)); do
    case "$1" in
        --quick) QUICK=1 ;;
        --soak) MODE=soak ;;
        --micro) MODE=micro ;;
        --ai) MODE=ai ;;
        --doc-only) MODE=doc ;;
        --capacity) MODE=capacity ;;
        --no-node) NO_NODE=1 ;;
        --bare-only) BARE_ONLY=1 ;;
        --no-build) BUILD=0 ;;
        --results) RESULTS=$(realpath -m "$2"); shift ;;
        --doc) DOC=$(realpath -m "$2"); shift ;;
        -h|--help) sed -n '2,32p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "run.sh: unknown option $1 (see --help)" >&2; exit 1 ;;
    esac
    shift
done

log() { printf '[bench %4ds] %s\n' $((SECONDS - T0)) "$*" >&2; }

command -v curl >/dev/null || { echo "run.sh: curl is required" >&2; exit 1; }
LOGS="${TMPDIR:-/tmp}/blankend-bench-$$"
mkdir -p "$LOGS" "$RESULTS"

# ---- facts recorded with each part ------------------------------------------------------------
# The commit, "-dirty" when tracked files differ (the generated doc and plots do not count).
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git status --porcelain --untracked-files=no -- . ':(exclude)docs/benchmarks*' 2>/dev/null) ]]; then
    COMMIT="$COMMIT-dirty"
fi
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

write_info() { # file key=value...
    local file=$1; shift
    {
        echo "date_utc=$(date -u '+%Y-%m-%d %H:%M')"
        echo "commit=$COMMIT"
        echo "nproc=$(nproc)"
        echo "cpu_model=$( (grep -m1 -E '^(model name|Model|cpu model)' /proc/cpuinfo || echo ': unknown') | cut -d: -f2- | sed 's/^ *//')"
        echo "mem_total=$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
        echo "kernel=$(uname -r)"
        echo "dotnet=$(dotnet --version 2>/dev/null || echo '?')"
        echo "loadavg_start=$LOAD_START"
        echo "loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)"
        echo "elapsed_s=$((SECONDS - T0))"
        local kv
        for kv in "$@"; do echo "$kv"; done
    } >"$file"
}

make_doc() {
    log "writing ${DOC#"$ROOT"/} (+ plots)"
    dotnet "$LOADGEN" --report-doc "$DOC" --results-dir "$RESULTS" --baseline bare
}

# ---- build (once) -----------------------------------------------------------------------------
build() { # project...
    local p
    for p in "$@"; do
        log "building $CONFIG: $p"
        # Build output goes to stderr: stdout carries only the LoadGen summary lines.
        dotnet build "$p" -c $CONFIG -nologo -v q -clp:ErrorsOnly >&2
    done
}

if [[ $MODE == doc ]]; then
    [[ $BUILD -eq 1 ]] && build bench/LoadGen/Blankend.Bench.LoadGen.csproj
    make_doc
    exit 0
fi

# ---- AI steps -----------------------------------------------------------------------------------
if [[ $MODE == ai ]]; then
    [[ $BUILD -eq 1 ]] && build bench/AiBench/Blankend.Bench.AiBench.csproj
    secs=5
    [[ $QUICK -eq 1 ]] && secs=1
    mkdir -p "$RESULTS/ai"
    dotnet "bench/AiBench/$BIN/Blankend.Bench.AiBench.dll" --seconds $secs --json "$RESULTS/ai/ai.json" --md "$RESULTS/ai/ai.md"
    {
        echo "Measured $(date -u +%Y-%m-%d) on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), commit $(git rev-parse --short HEAD), CPU execution provider, 1 intra-op thread per session."
        echo
        cat "$RESULTS/ai/ai.md"
    } > "$RESULTS/ai/section.md"
    /usr/bin/python3 - "$ROOT/docs/ai.md" "$RESULTS/ai/section.md" <<'PY'
import sys
doc, section = sys.argv[1], open(sys.argv[2]).read()
s = open(doc).read()
a, b = "<!-- ai-bench:start -->", "<!-- ai-bench:end -->"
i, j = s.index(a) + len(a), s.index(b)
open(doc, "w").write(s[:i] + "\n" + section + s[j:])
PY
    log "docs/ai.md updated"
    exit 0
fi

# ---- micro-benchmarks -------------------------------------------------------------------------
if [[ $MODE == micro ]]; then
    build bench/LoadGen/Blankend.Bench.LoadGen.csproj bench/Micro/Blankend.Bench.Micro.csproj
    job=short
    [[ $QUICK -eq 1 ]] && job=dry
    art="$RESULTS/micro-artifacts"
    rm -rf "$art" "$RESULTS/micro" "$RESULTS/micro-info.txt"
    mkdir -p "$RESULTS/micro"
    log "BenchmarkDotNet: job $job, in-process"
    (cd bench/Micro && dotnet "$BIN/Blankend.Bench.Micro.dll" --job "$job" --inProcess --filter "*" \
        --artifacts "$art" >&2)
    shopt -s nullglob
    reports=("$art"/results/*-report-github.md)
    if ((${#reports[@]} == 0)); then
        echo "run.sh: BenchmarkDotNet wrote no report (see above)" >&2
        exit 1
    fi
    for f in "${reports[@]}"; do
        name=$(basename "$f" -report-github.md)
        # BenchmarkDotNet's GitHub markdown HTML-escapes the quotes around descriptions.
        sed "s/&#39;//g" "$f" > "$RESULTS/micro/${name##*.}.md"
    done
    write_info "$RESULTS/micro-info.txt" "job=$job"
    make_doc
    log "done in $((SECONDS - T0)) s"
    exit 0
fi

# ---- servers ----------------------------------------------------------------------------------
[[ $BUILD -eq 1 ]] && build bench/LoadGen/Blankend.Bench.LoadGen.csproj bench/BareRelay/Blankend.Bench.BareRelay.csproj
if [[ $BARE_ONLY -eq 0 && $BUILD -eq 1 ]]; then
    if ! build gateway/Blankend.Orleans.Gateway.csproj; then
        echo "run.sh: the gateway does not build (errors above); --bare-only measures the bare relay alone" >&2
        exit 1
    fi
fi

# Node.js + ws relay: only where node >= 20 and npm are there.
USE_NODE=0
NODE_NOTE="left out (--no-node)"
if [[ $NO_NODE -eq 0 && $BARE_ONLY -eq 0 ]]; then
    if command -v node >/dev/null && command -v npm >/dev/null && (($(node -p 'process.versions.node.split(".")[0]') >= 20)); then
        if [[ $BUILD -eq 1 || ! -d bench/NodeWs/node_modules/ws ]]; then
            log "npm ci in bench/NodeWs"
            (cd bench/NodeWs && npm ci --no-audit --no-fund --loglevel=error >&2)
        fi
        USE_NODE=1
        NODE_NOTE="node $(node --version), ws $(node -p 'require("./bench/NodeWs/node_modules/ws/package.json").version')"
    else
        NODE_NOTE="left out: node >= 20 and npm are not installed"
    fi
fi

PICKED=()
# A free TCP port (nothing bound or connected on it) in 20000-59999, not handed out before in this run.
free_port() {
    local p used
    used=$(ss -Htan 2>/dev/null | awk '{n = split($4, a, ":"); print a[n]}' | sort -u || true)
    while :; do
        p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
        [[ " ${PICKED[*]} " == *" $p "* ]] && continue
        grep -qx "$p" <<<"$used" && continue
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && continue
        PICKED+=("$p")
        FREE_PORT=$p
        return
    done
}

SERVER_PID=""
PORT=""
cleanup() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_server() { # system [extra gateway args...]; returns 1 when it does not come up
    local system=$1; shift
    local dll log args=()
    free_port; PORT=$FREE_PORT
    log="$LOGS/$system-$PORT.log"
    if [[ $system == node ]]; then
        node bench/NodeWs/server.js --port "$PORT" >"$log" 2>&1 &
        SERVER_PID=$!
    elif [[ $system == bare ]]; then
        dll=$BARE_DLL
    else
        dll=$GATEWAY_DLL
        local silo gw
        free_port; silo=$FREE_PORT
        free_port; gw=$FREE_PORT
        args=(--cluster:silo_port="$silo" --cluster:primary_silo_port="$silo" --cluster:gateway_port="$gw" "$@")
    fi
    if [[ $system != node ]]; then
        dotnet "$dll" --urls "http://127.0.0.1:$PORT" "${args[@]}" >"$log" 2>&1 &
        SERVER_PID=$!
    fi
    local deadline=$((SECONDS + 60))
    while ! curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/healthz" 2>/dev/null; do
        if ! kill -0 "$SERVER_PID" 2>/dev/null || [[ $(awk '{print $3}' "/proc/$SERVER_PID/stat" 2>/dev/null) == Z ]]; then
            echo "run.sh: $system exited during start-up; last log lines ($log):" >&2
            tail -15 "$log" >&2
            wait "$SERVER_PID" 2>/dev/null || true
            SERVER_PID=""
            return 1
        fi
        if ((SECONDS >= deadline)); then
            echo "run.sh: $system did not answer /healthz within 60 s ($log)" >&2
            stop_server
            return 1
        fi
        sleep 0.2
    done
    log "$system up on 127.0.0.1:$PORT (pid $SERVER_PID${args:+, ${args[*]}})"
}

# Waits (up to 20 s) until the server's own start-up work is over: its CPU below 15% of a core over one
# second (the gateway JITs and loads its models for several seconds after /healthz first answers, which on
# a busy 2-core machine would otherwise fall into the measured window).
settle() {
    local pid=$SERVER_PID i a b
    for ((i = 0; i < 20; i++)); do
        a=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)
        sleep 1
        b=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)
        ((b - a < 15)) && return 0
    done
    log "$pid still busy after 20 s; measuring anyway"
}

stop_server() {
    [[ -n "$SERVER_PID" ]] || return 0
    local pid=$SERVER_PID i state
    kill -TERM "$pid" 2>/dev/null || true
    # SIGKILL if it has not exited 15 s after SIGTERM (exited = zombie until waited for).
    for ((i = 0; i < 150; i++)); do
        state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || echo gone)
        [[ $state == Z || $state == gone ]] && break
        sleep 0.1
    done
    if ((i == 150)); then
        echo "run.sh: pid $pid still running 15 s after SIGTERM; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    SERVER_PID=""
}

FAILURES=()
# One LoadGen run against the server that is up: label scenario cameras viewers fps duration warmup out [loadgen args...]
run_load() {
    local label=$1 scenario=$2 cams=$3 viewers=$4 fps=$5 duration=$6 warmup=$7 out=$8; shift 8
    local json
    json="$out/$(tr '@+' '-_' <<<"$label-$scenario").json"
    rm -f "$json"
    log "$label $scenario: $cams camera(s) x $viewers viewer(s), fps=${fps/#0/max}, ${duration}s (+${warmup}s warm-up)"
    if ! dotnet "$LOADGEN" --url "ws://127.0.0.1:$PORT" --jpeg "$JPEG" --cameras "$cams" --viewers "$viewers" \
        --fps "$fps" --duration "$duration" --warmup "$warmup" --server-pid "$SERVER_PID" \
        --label "$label" --scenario "$scenario" --json "$json" --commit "$COMMIT" "$@"; then
        FAILURES+=("$label $scenario")
        echo "run.sh: LoadGen reported a failure for $label $scenario" >&2
    fi
}

# ---- soak -------------------------------------------------------------------------------------
if [[ $MODE == soak ]]; then
    dur=600 every=10 warm=30
    [[ $QUICK -eq 1 ]] && dur=60 every=5 warm=5
    rm -rf "$RESULTS/soak" "$RESULTS/soak-info.txt"
    mkdir -p "$RESULTS/soak"
    for system in $SOAK_SYSTEMS; do
        start_server "$system" || { FAILURES+=("$system start-up"); continue; }
        sleep 1
        run_load "$system" "4x8@30" 4 8 30 "$dur" "$warm" "$RESULTS/soak" --rss-every "$every" --cdf-points 0
        stop_server
    done
    mode=full
    [[ $QUICK -eq 1 ]] && mode=quick
    write_info "$RESULTS/soak-info.txt" "mode=$mode" "failures=${FAILURES[*]}"
    make_doc
    log "soak done in $((SECONDS - T0)) s"
    ((${#FAILURES[@]} == 0))
    exit
fi

# ---- suite ------------------------------------------------------------------------------------
# name cameras viewers fps seconds
SCENARIOS=(
    "1x4@30 1 4 30 15"
    "1x4@max 1 4 0 10"
    "4x8@30 4 8 30 15"
    "1x100@30 1 100 30 15"
    "1x25@30 1 25 30 8"
    "1x50@30 1 50 30 8"
)
WARMUP=3
if [[ $QUICK -eq 1 ]]; then
    SCENARIOS=("1x4@30 1 4 30 4" "1x4@max 1 4 0 3" "4x8@30 4 8 30 4" "1x100@30 1 100 30 4" "1x25@30 1 25 30 3" "1x50@30 1 50 30 3")
    WARMUP=1
fi
SYSTEMS=(bare)
[[ $BARE_ONLY -eq 0 ]] && SYSTEMS+=(orleans)
[[ $USE_NODE -eq 1 ]] && SYSTEMS+=(node)

# ---- capacity ---------------------------------------------------------------------------------
run_capacity() {
    local views=(4 64 100 128 256 384 512 768) dur=8 warm=3 maxdur=10 v system saved=("${FAILURES[@]}")
    [[ $QUICK -eq 1 ]] && views=(4 64 128) dur=3 warm=1 maxdur=3
    rm -rf "$RESULTS/capacity" "$RESULTS/capacity-info.txt"
    mkdir -p "$RESULTS/capacity"
    local t0=$SECONDS load0
    load0=$(cut -d' ' -f1-3 /proc/loadavg)
    FAILURES=()
    for v in "${views[@]}"; do
        for system in "${SYSTEMS[@]}"; do
            start_server "$system" || { FAILURES+=("$system 1x$v@30 (start-up)"); continue; }
            settle
            run_load "$system" "1x$v@30" 1 "$v" 30 "$dur" "$warm" "$RESULTS/capacity" --cdf-points 401
            stop_server
        done
    done
    for system in "${SYSTEMS[@]}"; do
        start_server "$system" || { FAILURES+=("$system 1x4@max (start-up)"); continue; }
        settle
        run_load "$system" "1x4@max" 1 4 0 "$maxdur" "$warm" "$RESULTS/capacity" --cdf-points 401
        stop_server
    done
    local mode=full
    [[ $QUICK -eq 1 ]] && mode=quick
    # A run that the load generator could not finish (overload: connections refused or closed) is not a
    # failure of the bench: that V is over the system's capacity. Listed in the info file.
    LOAD_START=$load0 write_info "$RESULTS/capacity-info.txt" "mode=$mode" "capacity_s=$((SECONDS - t0))" \
        "jpeg=$JPEG ($(stat -c %s "$JPEG") B, 1280x720, quality 80)" "node=$NODE_NOTE" "incomplete=${FAILURES[*]}"
    FAILURES=("${saved[@]}")
}

if [[ $MODE == capacity ]]; then
    run_capacity
    make_doc
    echo
    dotnet "$LOADGEN" --report-capacity "$RESULTS" --baseline bare
    log "capacity done in $((SECONDS - T0)) s"
    exit 0
fi

rm -rf "$RESULTS/suite" "$RESULTS/suite-info.txt"
mkdir -p "$RESULTS/suite"
for s in "${SCENARIOS[@]}"; do
    read -r name cams viewers fps dur <<<"$s"
    for system in "${SYSTEMS[@]}"; do
        start_server "$system" || { FAILURES+=("$system $name (start-up)"); continue; }
        settle # start-up work over before the warm-up starts
        run_load "$system" "$name" "$cams" "$viewers" "$fps" "$dur" "$WARMUP" "$RESULTS/suite"
        stop_server
    done
done

# Processing path: only where this build has it.
PROCESSING=unavailable
PROCESSING_NOTE="not tried (--bare-only)"
PROCESSING_STATUS=""
if [[ $BARE_ONLY -eq 0 ]]; then
    PROCESSING_NOTE=""
    read -r -a proc_args <<<"$PROCESSING_ARGS"
    if ! start_server orleans "${proc_args[@]}"; then
        PROCESSING_NOTE="the gateway does not start with $PROCESSING_ARGS"
    else
        code=$(curl -s -o "$LOGS/pipeline-status.json" -w '%{http_code}' --max-time 10 \
            "http://127.0.0.1:$PORT/api/v1/video_processing/pipeline/status" || echo 000)
        if [[ $code == 200 ]]; then
            PROCESSING=available
            read -r name cams viewers fps dur <<<"${SCENARIOS[0]}"
            sleep 1
            # meta=1: a re-encoded frame has lost its COM stamp and is matched by the meta's ts_ms.
            run_load "orleans+processing" "$name" "$cams" "$viewers" "$fps" "$dur" "$WARMUP" "$RESULTS/suite" --meta
            PROCESSING_STATUS=$(curl -s --max-time 10 "http://127.0.0.1:$PORT/api/v1/video_processing/pipeline/status" \
                | tr -d '\n' | grep -o '"totals":{[^}]*}' || true)
        else
            PROCESSING_NOTE="GET /api/v1/video_processing/pipeline/status answered $code with $PROCESSING_ARGS"
        fi
        stop_server
    fi
    log "processing path: $PROCESSING${PROCESSING_NOTE:+ ($PROCESSING_NOTE)}"
fi

mode=full
[[ $QUICK -eq 1 ]] && mode=quick
write_info "$RESULTS/suite-info.txt" "mode=$mode" \
    "jpeg=$JPEG ($(stat -c %s "$JPEG") B, 1280x720, quality 80)" \
    "processing=$PROCESSING" "processing_note=$PROCESSING_NOTE" "processing_args=$PROCESSING_ARGS" \
    "processing_status=$PROCESSING_STATUS" "node=$NODE_NOTE" "failures=${FAILURES[*]}"
log "suite done in $((SECONDS - T0)) s; capacity sweep next"
run_capacity
make_doc
echo
# The figures, as tables, on stdout as well.
dotnet "$LOADGEN" --report-md - --baseline bare "$RESULTS"/suite/*.json
echo
dotnet "$LOADGEN" --report-capacity "$RESULTS" --baseline bare
log "suite and capacity done in $((SECONDS - T0)) s (target: about 15 minutes on 2 cores)"
if ((${#FAILURES[@]})); then
    echo "run.sh: failed runs: ${FAILURES[*]}" >&2
    exit 1
fi
