#!/usr/bin/env bash
# Starts a local cluster on this machine, for trying cluster mode:
#   redis-server  127.0.0.1:${REDIS_PORT:-6390}  membership store (installed with apt-get when missing)
#   silo1         silo port 11111, gateway port 30000, announces gpu0 (and cpu0) in its silo metadata: the
#                 gpu0 device worker is placed there (it runs on CPU here: no GPU is needed)
#   silo2         silo port 11112, gateway port 30001, CPU only
#   gateway A     http://127.0.0.1:${GATEWAY_A_PORT:-8000}  (cluster client)
#   gateway B     http://127.0.0.1:${GATEWAY_B_PORT:-8001}  (cluster client)
# A camera on A is viewable on B. Pid files and one log per process go to .cluster/ (git-ignored);
# scripts/cluster-down.sh stops exactly these processes.
set -euo pipefail
cd "$(dirname "$0")/.."

RUN=.cluster
REDIS_PORT=${REDIS_PORT:-6390}
GATEWAY_A_PORT=${GATEWAY_A_PORT:-8000}
GATEWAY_B_PORT=${GATEWAY_B_PORT:-8001}
SILO_PORTS=(11111 11112)
SILO_GATEWAY_PORTS=(30000 30001)

mkdir -p "$RUN"
for f in "$RUN"/*.pid; do
  [[ -e "$f" ]] || continue
  if kill -0 "$(cat "$f")" 2>/dev/null; then
    echo "cluster-up: already running ($f); run scripts/cluster-down.sh first" >&2
    exit 1
  fi
  rm -f "$f"
done

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "$REDIS_PORT" "${SILO_PORTS[@]}" "${SILO_GATEWAY_PORTS[@]}" "$GATEWAY_A_PORT" "$GATEWAY_B_PORT"; do
  if port_busy "$p"; then echo "cluster-up: port $p is already in use on 127.0.0.1" >&2; exit 1; fi
done

scripts/install-deps.sh --cluster
echo "cluster-up: building (Release)"
dotnet build silo/Blankend.Orleans.Silo.csproj -c Release -nologo -v quiet
dotnet build gateway/Blankend.Orleans.Gateway.csproj -c Release -nologo -v quiet
SILO_DLL=silo/bin/Release/net10.0/Blankend.Orleans.Silo.dll
GATEWAY_DLL=gateway/bin/Release/net10.0/Blankend.Orleans.Gateway.dll

# start NAME COMMAND...: runs it in the background with its log, records its pid.
start() {
  local name=$1; shift
  nohup "$@" >"$RUN/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN/$name.pid"
  echo "cluster-up: started $name (pid $!, log $RUN/$name.log)"
}

start redis redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize no
for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p "$REDIS_PORT" ping >/dev/null || { echo "cluster-up: redis-server did not answer; see $RUN/redis.log" >&2; exit 1; }

COMMON=(--cluster:clustering=redis "--cluster:redis=127.0.0.1:$REDIS_PORT" --cluster:cluster_id=local
        "--Logging:Console:TimestampFormat=HH:mm:ss.fff ")
start silo1 dotnet "$SILO_DLL" "${COMMON[@]}" --cluster:silo_port="${SILO_PORTS[0]}" --cluster:gateway_port="${SILO_GATEWAY_PORTS[0]}" --Orleans:Metadata:blankend_devices=gpu0,cpu0
start silo2 dotnet "$SILO_DLL" "${COMMON[@]}" --cluster:silo_port="${SILO_PORTS[1]}" --cluster:gateway_port="${SILO_GATEWAY_PORTS[1]}"
start gateway-a dotnet "$GATEWAY_DLL" "${COMMON[@]}" --cluster:mode=client --urls "http://127.0.0.1:$GATEWAY_A_PORT"
start gateway-b dotnet "$GATEWAY_DLL" "${COMMON[@]}" --cluster:mode=client --urls "http://127.0.0.1:$GATEWAY_B_PORT"

echo "cluster-up: waiting for both gateways to be healthy and both silos active"
deadline=$((SECONDS + 120))
for port in "$GATEWAY_A_PORT" "$GATEWAY_B_PORT"; do
  until curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; do
    for f in "$RUN"/*.pid; do
      kill -0 "$(cat "$f")" 2>/dev/null || { echo "cluster-up: $(basename "$f" .pid) exited; see $RUN/$(basename "$f" .pid).log (scripts/cluster-down.sh cleans up)" >&2; exit 1; }
    done
    ((SECONDS < deadline)) || { echo "cluster-up: gateway on :$port not healthy in time; see $RUN/*.log" >&2; exit 1; }
    sleep 0.5
  done
done
until curl -fsS "http://127.0.0.1:$GATEWAY_A_PORT/api/v1/cluster/status" 2>/dev/null | grep -q '"active_silos":2'; do
  ((SECONDS < deadline)) || { echo "cluster-up: the silos did not both join in time; see $RUN/silo*.log" >&2; exit 1; }
  sleep 0.5
done

cat <<TXT
cluster-up: ready
  gateway A  http://127.0.0.1:$GATEWAY_A_PORT   gateway B  http://127.0.0.1:$GATEWAY_B_PORT
  membership curl -s http://127.0.0.1:$GATEWAY_A_PORT/api/v1/cluster/status
  camera on A, viewers on B (load generator, build it once with
    dotnet build bench/LoadGen -c Release):
    dotnet bench/LoadGen/bin/Release/net10.0/Blankend.Bench.LoadGen.dll --url ws://127.0.0.1:$GATEWAY_A_PORT --viewer-url ws://127.0.0.1:$GATEWAY_B_PORT --meta
  a silo crash: kill -9 \$(cat $RUN/silo1.pid)   (frames resume within a few seconds)
  stop:       scripts/cluster-down.sh
TXT
