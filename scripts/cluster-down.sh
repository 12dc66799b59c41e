#!/usr/bin/env bash
# Stops exactly what scripts/cluster-up.sh started: the pids recorded in .cluster/*.pid (gateways, then silos,
# then redis-server or postgres), each with SIGTERM, then SIGKILL after 10 s. A pid that no longer belongs to the process it
# was recorded for (exited, pid reused) is left alone. Logs stay in .cluster/.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=.cluster

# stop NAME MARKER: MARKER must appear in the process's command line (guards against a reused pid).
stop() {
  local name=$1 marker=$2 file="$RUN/$1.pid"
  [[ -e "$file" ]] || return 0
  local pid; pid=$(cat "$file")
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "cluster-down: $name (pid $pid) was not running"
  elif ! tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$marker"; then
    echo "cluster-down: pid $pid is no longer $name; left alone"
  else
    kill -TERM "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "cluster-down: $name (pid $pid) still running after 10 s; SIGKILL"
      kill -KILL "$pid"
    fi
    echo "cluster-down: stopped $name (pid $pid)"
  fi
  rm -f "$file"
}

[[ -d "$RUN" ]] || { echo "cluster-down: nothing to stop (no $RUN/)"; exit 0; }
stop gateway-a Blankend.Orleans.Gateway.dll
stop gateway-b Blankend.Orleans.Gateway.dll
stop silo1 Blankend.Orleans.Silo.dll
stop silo2 Blankend.Orleans.Silo.dll
stop redis redis-server
stop postgres bin/postgres
# The throw-away PostgreSQL data of cluster-up.sh --postgres.
if [[ -e "$RUN/postgres.datadir" ]]; then
  dir=$(cat "$RUN/postgres.datadir")
  [[ $dir == /tmp/blankend-cluster-pg-* && ! -e "$RUN/postgres.pid" ]] && rm -rf "$dir" && echo "cluster-down: removed $dir"
  rm -f "$RUN/postgres.datadir"
fi
