#!/usr/bin/env bash
# Runs the face swap with the real insightface models and prints what the service made of them.
#
#   scripts/check-insightface.sh DIR [TARGET_IMAGE] [REFERENCE_IMAGE]
#
# DIR: an insightface model pack (e.g. ~/.insightface/models/buffalo_l: det_10g.onnx, w600k_r50.onnx) holding
# inswapper_128.onnx too, or set SWAP_MODEL to its path. The images default to tests/testdata/astronaut.jpg and
# its mirror image. Starts the embedded service (gateway + silo, one process) on BLANKEND_URLS (default
# http://127.0.0.1:18080) with INSIGHTFACE_APP=DIR, checks that /api/v1/ai/status says swap_engine=inswapper,
# uploads the reference, swaps RUNS times (default 10) through POST /api/v1/ai/process, writes the result to
# OUT (default ./insightface-check) and prints the models and the ms per step. Exit 1 when anything is off.
# Needs: dotnet, curl, python3 (and ffmpeg for the default mirrored reference).
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:?usage: scripts/check-insightface.sh DIR [TARGET_IMAGE] [REFERENCE_IMAGE]}
DIR=$(cd "$DIR" && pwd)
TARGET=${2:-tests/testdata/astronaut.jpg}
OUT=${OUT:-insightface-check}
RUNS=${RUNS:-10}
URL=${BLANKEND_URLS:-http://127.0.0.1:18080}
mkdir -p "$OUT"
export INSIGHTFACE_APP="$DIR"
export SWAP_MODEL=${SWAP_MODEL:-$DIR/inswapper_128.onnx}
[ -f "$SWAP_MODEL" ] || { echo "no inswapper model: $SWAP_MODEL (put inswapper_128.onnx in $DIR or set SWAP_MODEL)" >&2; exit 1; }
ls "$DIR"/det_*.onnx "$DIR"/w600k_*.onnx >/dev/null 2>&1 || echo "note: $DIR has no det_*.onnx or no w600k_*.onnx (BlazeFace detects without det_*; the swap needs w600k_* or ARCFACE_MODEL)" >&2
if [ -n "${3:-}" ]; then
  REFERENCE=$3
else
  REFERENCE="$OUT/reference.jpg"
  ffmpeg -loglevel error -y -i "$TARGET" -vf hflip "$REFERENCE"
fi

dotnet build gateway/Blankend.Orleans.Gateway.csproj -c Release -nologo -v quiet
dotnet gateway/bin/Release/net10.0/Blankend.Orleans.Gateway.dll --urls "$URL" >"$OUT/service.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
  curl -sf "$URL/api/v1/ai/status" -o "$OUT/status.json" && break
  kill -0 $PID 2>/dev/null || { echo "the service exited; see $OUT/service.log" >&2; exit 1; }
  sleep 1
done

json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); $1" "$2"; }
json '
print("swap_engine: %s - %s" % (d["swap_engine"], d["swap_engine_reason"]))
for m in d["models"]:
    if m["kind"] in ("face_detect", "face_mesh", "swap", "arcface"):
        print("  %-12s %-10s %s  %s" % (m["kind"], m.get("format") or "", m["path"], "ok" if m["available"] else m["reason"]))
sys.exit(0 if d["swap_engine"] == "inswapper" else 1)' "$OUT/status.json"

curl -sf -XPOST "$URL/api/v1/ai/reference" -H 'content-type: image/jpeg' --data-binary @"$REFERENCE" >/dev/null \
  || { echo "reference upload refused:"; curl -s -XPOST "$URL/api/v1/ai/reference" -H 'content-type: image/jpeg' --data-binary @"$REFERENCE"; echo; exit 1; }
curl -sf -XPOST "$URL/api/v1/ai/process?steps=swap" -H 'content-type: image/jpeg' --data-binary @"$TARGET" -o "$OUT/swapped.jpg"
for _ in $(seq 1 "$RUNS"); do
  curl -sf -XPOST "$URL/api/v1/ai/process?steps=swap&format=json" -H 'content-type: image/jpeg' --data-binary @"$TARGET" -o "$OUT/last.json"
done
json 'print("last call step_ms: %s faces: %d notes: %s" % (d["step_ms"], len(d["faces"]), d["notes"]))' "$OUT/last.json"
curl -sf "$URL/api/v1/ai/status" -o "$OUT/status.json"
json '
for s in d["silos"][0]["steps"]:
    if s["name"] in ("detect", "mesh", "swap", "embed"):
        print("  %-7s %8.2f ms/frame (mean) over %d runs  %s" % (s["name"], s["ms_per_frame"], s["runs"], s.get("status") or ""))' "$OUT/status.json"
echo "swapped image: $OUT/swapped.jpg"
