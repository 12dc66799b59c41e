#!/usr/bin/env bash
# Starts a local cluster on this machine, for trying cluster mode:
#   redis-server  127.0.0.1:${REDIS_PORT:-6390}  membership store (installed with apt-get when missing)
#                 or, with --postgres, a throw-away PostgreSQL on 127.0.0.1:${PG_PORT:-5439} (initdb into
#                 /tmp/blankend-cluster-pg-PORT, trust auth on loopback; the first silo creates the schema)
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
STORE=redis
case "${1:-}" in
  --postgres) STORE=postgres ;;
  "") ;;
  *) echo "cluster-up: unknown option '$1' (use --postgres for PostgreSQL membership; Redis by default)" >&2; exit 2 ;;
esac
REDIS_PORT=${REDIS_PORT:-6390}
PG_PORT=${PG_PORT:-5439}
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
STORE_PORT=$REDIS_PORT; [[ $STORE == postgres ]] && STORE_PORT=$PG_PORT
for p in "$STORE_PORT" "${SILO_PORTS[@]}" "${SILO_GATEWAY_PORTS[@]}" "$GATEWAY_A_PORT" "$GATEWAY_B_PORT"; do
  if port_busy "$p"; then echo "cluster-up: port $p is already in use on 127.0.0.1" >&2; exit 1; fi
done

if [[ $STORE == postgres ]]; then scripts/install-deps.sh --postgres; else scripts/install-deps.sh --cluster; fi
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

if [[ $STORE == postgres ]]; then
  # PostgreSQL refuses to run as root: as root, initdb and postgres run as the postgres OS user, which owns the
  # data folder (outside the repository, which that user may not be able to reach).
  PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  PGROOT=/tmp/blankend-cluster-pg-$PG_PORT
  AS=(); [[ $(id -u) -eq 0 ]] && AS=(runuser -u postgres --)
  rm -rf "$PGROOT"; mkdir -p "$PGROOT"; [[ $(id -u) -eq 0 ]] && chown postgres:postgres "$PGROOT"
  echo "$PGROOT" >"$RUN/postgres.datadir"
  "${AS[@]}" "$PGBIN/initdb" -D "$PGROOT/data" -U postgres --auth=trust -E UTF8 --locale=C >"$RUN/postgres-initdb.log" 2>&1 \
    || { echo "cluster-up: initdb failed; see $RUN/postgres-initdb.log" >&2; exit 1; }
  nohup "${AS[@]}" "$PGBIN/postgres" -D "$PGROOT/data" -p "$PG_PORT" -c listen_addresses=127.0.0.1 \
    -c "unix_socket_directories=$PGROOT" >"$RUN/postgres.log" 2>&1 </dev/null &
  for _ in $(seq 100); do "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" && break; sleep 0.1; done
  "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" || { echo "cluster-up: postgres did not start; see $RUN/postgres.log" >&2; exit 1; }
  head -1 "$PGROOT/data/postmaster.pid" >"$RUN/postgres.pid"   # the postmaster itself (not runuser)
  echo "cluster-up: started postgres (pid $(cat "$RUN/postgres.pid"), port $PG_PORT, log $RUN/postgres.log)"
  COMMON=(--cluster:clustering=postgres "--cluster:postgres=Host=127.0.0.1;Port=$PG_PORT;Database=postgres;Username=postgres")
else
  start redis redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize no
  for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
  redis-cli -p "$REDIS_PORT" ping >/dev/null || { echo "cluster-up: redis-server did not answer; see $RUN/redis.log" >&2; exit 1; }
  COMMON=(--cluster:clustering=redis "--cluster:redis=127.0.0.1:$REDIS_PORT")
fi
COMMON+=(--cluster:cluster_id=local "--Logging:Console:TimestampFormat=HH:mm:ss.fff ")
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
