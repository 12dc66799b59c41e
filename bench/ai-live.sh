#!/usr/bin/env bash
# Cross-stream batching through the whole service: 4 cameras of 720p30 (bench/LoadGen, one meta=1 viewer each)
# into the embedded gateway with detect (every frame) + matte; prints the delivered fps and latency, the batch
# figures (blankend_ai_batch_size, /api/v1/ai/status batches) and the device worker's per-frame times.
#   bench/ai-live.sh TIMEOUT_MS LABEL      (ai.batch_timeout_ms; env WORKERS = realtime_pipeline.workers, EXTRA = more args)
# Needs a Release build (dotnet build Blankend.Orleans.sln -c Release). Results in /tmp/ai-live-LABEL.json.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
SP=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
GP=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
dotnet gateway/bin/Release/net10.0/Blankend.Orleans.Gateway.dll --urls http://127.0.0.1:$PORT --cluster:silo_port=$SP --cluster:primary_silo_port=$SP --cluster:gateway_port=$GP \
  --realtime_pipeline:enabled=true --realtime_pipeline:steps=detect,matte --ai:face_detect_interval=1 --ai:batch_timeout_ms=$1 --realtime_pipeline:workers=${WORKERS:-1} ${EXTRA:-} \
  --recording:folder=${TMPDIR:-/tmp}/ai-live-rec > /tmp/ai-live-gw.log 2>&1 &
GW=$!
trap 'kill $GW 2>/dev/null; wait $GW 2>/dev/null' EXIT
for i in $(seq 1 120); do curl -sf http://127.0.0.1:$PORT/healthz >/dev/null && break; sleep 0.5; done
dotnet bench/LoadGen/bin/Release/net10.0/Blankend.Bench.LoadGen.dll --url ws://127.0.0.1:$PORT --cameras 4 --viewers 1 --fps 30 --meta \
  --duration 20 --warmup 5 --server-pid $GW --label "$2" --json /tmp/ai-live-$2.json 2>&1 | tail -12
curl -s http://127.0.0.1:$PORT/metrics | grep -E '^blankend_ai_batch_size_(sum|count)|^blankend_ai_batch_wait_milliseconds_(sum|count)'
curl -s http://127.0.0.1:$PORT/api/v1/ai/status | python3 -c 'import json,sys; d=json.load(sys.stdin); print("batches", d.get("batches")); print("provider", d["provider"], d.get("provider_fallback"))'
curl -s http://127.0.0.1:$PORT/api/v1/realtime_pipeline/status | python3 -c 'import json,sys; d=json.load(sys.stdin); [print(s.get("source"), s.get("fps_out"), s.get("processed"), s.get("overflow_dropped")) for s in d["sources"]]; [print({k: x[k] for k in x if "ms" in k or k in ("device","avg_batch_size","fps_out","load","health")}) for x in d["devices"]]'
