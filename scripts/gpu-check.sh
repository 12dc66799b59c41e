#!/usr/bin/env bash
# Measures a GPU host with the AI bench (bench/AiBench) and writes the figures into docs/ai.md, between
# <!-- gpu-check:begin --> and <!-- gpu-check:end --> (docs/ai.md, "Measuring a GPU host").
#
#   scripts/gpu-check.sh                      builds the bench with -p:BlankendGpu=true (needs dotnet)
#   scripts/gpu-check.sh --bench-dir DIR      a published bench (bench/publish-aibench.sh): runs
#                                             DIR/Blankend.Bench.AiBench, no dotnet needed
#   options: --md-out FILE   write the section to FILE instead of docs/ai.md
#            --out DIR       keep the logs, JSON and nvidia-smi samples there (default: a temporary folder)
#            --seconds S     measured seconds per figure (default $GPU_CHECK_SECONDS or 5)
#
# What it does: prints nvidia-smi -L and its driver/CUDA line, the ONNX Runtime providers and the provider of
# each model on gpu0; then, on gpu0 and on cpu0, the bare throughput of each model (images/s at batch 1, 8, 32)
# and end to end 1, 8, 32, 64 concurrent 720p30 cameras on the device worker (detection every frame + matte).
# During each gpu0 run nvidia-smi is polled every 0.5 s; the GPU utilization (mean / max) and the memory
# used (max) are taken over the bench's measured windows (the "window" lines it prints). gpu0 is never
# replaced by the CPU: when its CUDA provider does not load the bench exits 3, and the section says so.
#
# Environment: GPU_CHECK_SECONDS (5), GPU_CHECK_BATCHES (1,8,32), GPU_CHECK_CAMERAS (1,8,32,64),
#   GPU_CHECK_DEVICES ("gpu0 cpu0"), GPU_CHECK_GPU_WORKERS / GPU_CHECK_CPU_WORKERS (the bench's defaults:
#   2-4 / every core), GPU_CHECK_ARGS (more bench arguments, e.g. "--batch-max 16"),
#   GPU_CHECK_TIMEOUT (seconds per bench run, default 20 x GPU_CHECK_SECONDS + 120),
#   GPU_CHECK_LIB_GLOB (folders put on LD_LIBRARY_PATH, default
#   "/opt/torch/.venv/lib/python3*/site-packages/nvidia/*/lib /usr/local/nvidia/lib64": the pip CUDA wheels and
#   the driver's folder of a container).
# Libraries: ONNX Runtime's CUDA provider needs the CUDA 13 runtime, cuBLAS, cuRAND and cuDNN 9 folders on
# LD_LIBRARY_PATH (the pip nvidia-* wheels of a PyTorch venv have them); every folder that matches
# GPU_CHECK_LIB_GLOB is added. Exit status: 0 when every asked part ran, 1 otherwise (the section is
# written in both cases), 2 on bad arguments.
set -uo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
T0=$SECONDS
BENCH_DIR=""
MD_OUT=""
OUT=""
SECS=${GPU_CHECK_SECONDS:-5}
BATCHES=${GPU_CHECK_BATCHES:-1,8,32}
CAMERAS=${GPU_CHECK_CAMERAS:-1,8,32,64}
DEVICES=${GPU_CHECK_DEVICES:-"gpu0 cpu0"}
LIB_GLOB=${GPU_CHECK_LIB_GLOB:-"/opt/torch/.venv/lib/python3*/site-packages/nvidia/*/lib /usr/local/nvidia/lib64"}
read -r -a EXTRA <<<"${GPU_CHECK_ARGS:-}"
while (($#)); do
    case "$1" in
        --bench-dir) BENCH_DIR=$(realpath -m "$2"); shift ;;
        --md-out) MD_OUT=$(realpath -m "$2"); shift ;;
        --out) OUT=$(realpath -m "$2"); shift ;;
        --seconds) SECS=$2; shift ;;
        -h|--help) sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "gpu-check: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
TIMEOUT=${GPU_CHECK_TIMEOUT:-$(awk -v s="$SECS" 'BEGIN { printf "%d", 20 * s + 120 }')}
OUT=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")}
mkdir -p "$OUT"

log() { printf '[gpu-check %4ds] %s\n' $((SECONDS - T0)) "$*" >&2; }

# ---- libraries --------------------------------------------------------------------------------------
added=()
for d in $LIB_GLOB; do
    [[ -d $d ]] || continue
    added+=("$d")
done
if ((${#added[@]})); then
    LD_LIBRARY_PATH=$(IFS=:; echo "${added[*]}")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    export LD_LIBRARY_PATH
    log "LD_LIBRARY_PATH += ${#added[@]} folder(s): ${added[*]}"
else
    log "no folder matches $LIB_GLOB: the CUDA/cuBLAS/cuDNN libraries must be on the loader's path already"
fi

# ---- the host ---------------------------------------------------------------------------------------
HAVE_SMI=0
GPU_NAME="no NVIDIA GPU (nvidia-smi not found)"
DRIVER="-"
CUDA_VER="-"
if command -v nvidia-smi >/dev/null; then
    HAVE_SMI=1
    echo "== nvidia-smi -L"
    nvidia-smi -L || true
    echo "== nvidia-smi (driver / CUDA)"
    nvidia-smi | grep -m1 -E 'Driver Version' || true
    GPU_NAME=$(nvidia-smi --query-gpu=name --format=csv,noheader -i 0 2>/dev/null | head -1)
    DRIVER=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader -i 0 2>/dev/null | head -1)
    CUDA_VER=$(nvidia-smi | grep -o -m1 -E 'CUDA Version: *[0-9.]+' | awk '{print $NF}')
else
    echo "== nvidia-smi not found: gpu0 cannot run here"
fi
NPROC=$(nproc)
CPU_MODEL=$( (grep -m1 -E '^(model name|Model)' /proc/cpuinfo || echo ': unknown') | cut -d: -f2- | sed 's/^ *//')

# ---- the bench ----------------------------------------------------------------------------------------
if [[ -n $BENCH_DIR ]]; then
    BENCH=("$BENCH_DIR/Blankend.Bench.AiBench")
    [[ -x ${BENCH[0]} ]] || { echo "gpu-check: ${BENCH[0]} is not there or not executable (bench/publish-aibench.sh makes it)" >&2; exit 2; }
    COMMIT=$(sed -n 's/^commit=//p' "$BENCH_DIR/BUILD-INFO" 2>/dev/null)
    COMMIT=${COMMIT:-unknown}
    BUILT="published bench ($BENCH_DIR)"
else
    command -v dotnet >/dev/null || { echo "gpu-check: no dotnet here: give --bench-dir DIR (a published bench, bench/publish-aibench.sh)" >&2; exit 2; }
    log "building bench/AiBench with -p:BlankendGpu=true (artifacts/build/gpu-check)"
    dotnet build bench/AiBench/Blankend.Bench.AiBench.csproj -c Release -p:BlankendGpu=true -nologo -v q -clp:ErrorsOnly \
        --artifacts-path artifacts/build/gpu-check -o artifacts/gpu-check/aibench >&2 || { echo "gpu-check: the bench does not build" >&2; exit 1; }
    BENCH=(dotnet "$ROOT/artifacts/gpu-check/aibench/Blankend.Bench.AiBench.dll")
    COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
    [[ -n $(git status --porcelain --untracked-files=no -- . ':(exclude)docs/ai.md' 2>/dev/null) ]] && COMMIT="$COMMIT-dirty"
    BUILT="dotnet $(dotnet --version)"
fi

# GUI libraries OpenCV's native part links but never calls here (GTK 3 and friends), missing on a headless
# image: the published bench's empty stand-ins (gui-stubs/, bench/publish-aibench.sh), only for those missing.
natives=$(dirname "${BENCH[-1]}")
if [[ -d $natives/gui-stubs ]] && command -v ldd >/dev/null; then
    stubs=()
    for lib in $(ldd "$natives/libOpenCvSharpExtern.so" 2>/dev/null | awk '/not found/ {print $1}'); do
        [[ -e $natives/gui-stubs/$lib ]] && stubs+=("$lib")
    done
    if ((${#stubs[@]})); then
        mkdir -p "$OUT/gui-stubs"
        for lib in "${stubs[@]}"; do ln -sf "$natives/gui-stubs/$lib" "$OUT/gui-stubs/$lib"; done
        export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$OUT/gui-stubs
        log "OpenCV's GUI libraries missing here, empty stand-ins used: ${stubs[*]}"
    fi
fi

# Libraries the natives need that the loader does not find (CUDA/cuBLAS/cuRAND for the CUDA provider, which
# also opens cuDNN 9 at run time; GTK and friends for OpenCV's native part): printed, not fatal.
if command -v ldd >/dev/null; then
    for so in libonnxruntime_providers_cuda.so libOpenCvSharpExtern.so libonnxruntime.so; do
        for f in "$natives/$so" "$natives/runtimes/linux-x64/native/$so"; do
            [[ -e $f ]] || continue
            missing=$(ldd "$f" 2>/dev/null | awk '/not found/ {print $1}' | tr '\n' ' ')
            [[ -n $missing ]] && log "$so: not found by the loader: $missing"
        done
    done
fi

# ---- GPU sampling -------------------------------------------------------------------------------------
SAMPLER=""
start_sampler() { # file
    ((HAVE_SMI)) || return 0
    (
        while :; do
            # One query per sample (not -lms: each line gets the time it was taken, whatever the pipe buffers).
            t=${EPOCHREALTIME/[.,]/}
            l=$(nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader,nounits -i 0 2>/dev/null | head -1)
            [[ -n $l ]] && echo "$((t / 1000)),${l// /}"
            sleep 0.5
        done
    ) >"$1" &
    SAMPLER=$!
}
stop_sampler() {
    [[ -n $SAMPLER ]] || return 0
    kill "$SAMPLER" 2>/dev/null
    wait "$SAMPLER" 2>/dev/null
    SAMPLER=""
}
trap 'stop_sampler' EXIT

# "mean / max" utilization and max memory over the samples inside the run's measured windows.
gpu_util() { # samples-file bench-log
    awk -v W="$2" '
        BEGIN { while ((getline l < W) > 0) { split(l, f, " "); if (f[1] == "window") { nw++; a[nw] = f[3]; b[nw] = f[4] } } }
        { split($0, s, ","); t = s[1] + 0; inw = 0
          for (i = 1; i <= nw; i++) if (t >= a[i] && t <= b[i]) { inw = 1; break }
          if (!inw) next
          n++; sum += s[2]; if (s[2] + 0 > mx) mx = s[2] + 0; if (s[3] + 0 > mem) mem = s[3] + 0 }
        END { if (n == 0) print "no sample | -"; else printf "%.0f / %.0f (%d samples) | %.0f\n", sum / n, mx, n, mem }' "$1"
}

FAILED=()
NOTES=()
MODEL_ROWS=""
E2E_ROWS=""
MODEL_HEAD=""
E2E_HEAD=""

# One bench run: device part arg-list; appends its rows (with the GPU columns) to MODEL_ROWS / E2E_ROWS.
run_part() {
    local device=$1 part=$2 arg=$3 tag="$1-$2-${3//,/_}"
    local md="$OUT/$tag.md" json="$OUT/$tag.json" runlog="$OUT/$tag.log" samples="$OUT/$tag.smi.csv"
    local workers=()
    [[ $device == gpu* && -n ${GPU_CHECK_GPU_WORKERS:-} ]] && workers=(--workers "$GPU_CHECK_GPU_WORKERS")
    [[ $device == cpu* && -n ${GPU_CHECK_CPU_WORKERS:-} ]] && workers=(--workers "$GPU_CHECK_CPU_WORKERS")
    local what=(--batch "$arg")
    [[ $part == e2e ]] && what=(--cameras "$arg")
    log "$device $part $arg (${SECS} s per figure)"
    [[ $device == gpu* ]] && start_sampler "$samples"
    timeout "$TIMEOUT" "${BENCH[@]}" --device "$device" --only "$part" "${what[@]}" "${workers[@]}" --seconds "$SECS" \
        --md "$md" --json "$json" "${EXTRA[@]}" 2>&1 | tee "$runlog" | grep -v '^window '
    local rc=${PIPESTATUS[0]}
    stop_sampler
    if ((rc != 0)) || [[ ! -s $md ]]; then
        FAILED+=("$device $part $arg (exit $rc)")
        NOTES+=("$device $part $arg: failed, exit $rc: $(grep -v '^window ' "$runlog" | tail -2 | tr '\n' ' ')")
        return 1
    fi
    local util="- | -"
    [[ $device == gpu* ]] && util=$(gpu_util "$samples" "$runlog")
    local head rows
    head=$(grep '^|' "$md" | head -2 | sed '1s/$/ GPU util % mean \/ max | GPU memory MiB max |/; 2s/$/ --- | --- |/')
    rows=$(grep '^|' "$md" | tail -n +3 | sed "s#\$# $util |#")
    if [[ $part == models ]]; then MODEL_HEAD=$head; MODEL_ROWS+="$rows"$'\n'; else E2E_HEAD=$head; E2E_ROWS+="$rows"$'\n'; fi
}

PROVIDERS="?"
for device in $DEVICES; do
    log "$device: providers"
    plog="$OUT/$device-providers.log"
    timeout 300 "${BENCH[@]}" --device "$device" --only providers >"$plog" 2>&1
    rc=$?
    cat "$plog"
    [[ $PROVIDERS == "?" ]] && PROVIDERS=$(sed -n 's/.*ONNX Runtime providers: //p' "$plog" | head -1)
    if ((rc != 0)); then
        FAILED+=("$device (exit $rc)")
        why=$(grep -m1 -E 'was asked|is unavailable|not found|unknown option' "$plog" || tail -1 "$plog")
        NOTES+=("$device not measured (bench exit $rc): ${why#AI bench: }")
        continue
    fi
    IFS=, read -r -a bs <<<"$BATCHES"
    for b in "${bs[@]}"; do run_part "$device" models "$b"; done
    IFS=, read -r -a cs <<<"$CAMERAS"
    for c in "${cs[@]}"; do run_part "$device" e2e "$c"; done
done

# ---- the section ----------------------------------------------------------------------------------------
section="$OUT/section.md"
{
    echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') by scripts/gpu-check.sh, commit $COMMIT ($BUILT): host ${HOSTNAME:-?}, $NPROC cores ($CPU_MODEL), GPU $GPU_NAME, driver $DRIVER, CUDA $CUDA_VER (nvidia-smi); ONNX Runtime providers: $PROVIDERS; $SECS s per figure, 1 intra-op thread per session."
    echo
    if [[ -n $MODEL_HEAD ]]; then
        echo "Bare session.Run of each model on a tensor of N images (random input), median of the timed runs; images/s = N / median."
        echo
        echo "$MODEL_HEAD"
        printf '%s' "$MODEL_ROWS"
        echo
    fi
    if [[ -n $E2E_HEAD ]]; then
        echo "End to end on the device worker: C cameras, each submitting the 1280x720 JPEG at 30 fps (latest frame wins: a tick whose previous frame is still in flight is a drop), decode + face detect (every frame) + matte + encode; latency from submit to result."
        echo
        echo "$E2E_HEAD"
        printf '%s' "$E2E_ROWS"
        echo
    fi
    echo "GPU columns: nvidia-smi polled every 0.5 s during each gpu0 run, over the bench's measured windows (a models row shares its run with the other models at that batch size)."
    for n in "${NOTES[@]}"; do echo; echo "- $n"; done
} >"$section"

if [[ -n $MD_OUT ]]; then
    cp "$section" "$MD_OUT"
    log "section written to $MD_OUT"
else
    doc="$ROOT/docs/ai.md"
    if ! grep -q '<!-- gpu-check:begin -->' "$doc" || ! grep -q '<!-- gpu-check:end -->' "$doc"; then
        printf '\n<!-- gpu-check:begin -->\n<!-- gpu-check:end -->\n' >>"$doc"
    fi
    awk -v F="$section" '
        /<!-- gpu-check:begin -->/ { print; while ((getline l < F) > 0) print l; skip = 1; next }
        /<!-- gpu-check:end -->/ { skip = 0 }
        !skip { print }' "$doc" >"$doc.tmp" && mv "$doc.tmp" "$doc"
    log "docs/ai.md updated (between the gpu-check markers)"
fi
cat "$section"
log "logs, JSON and samples in $OUT; done in $((SECONDS - T0)) s"
((${#FAILED[@]} == 0)) || { echo "gpu-check: not measured: ${FAILED[*]}" >&2; exit 1; }
