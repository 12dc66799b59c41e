#!/usr/bin/env bash
# Installs what the service needs on Debian, only when missing:
#   (no option)  the embedded service (scripts/run.sh)
#   --test       + what the test suite starts itself (redis-server and PostgreSQL for the cluster tests)
#   --cluster    + redis-server for a local cluster (scripts/cluster-up.sh)
#   --postgres   + postgresql for a local cluster on PostgreSQL (scripts/cluster-up.sh --postgres)
# Needs root or sudo for apt-get; prints what it does.
set -euo pipefail

want=(ffmpeg)                               # /video_codec decode, recording
want+=(libgtk-3-0)                          # OpenCvSharp's official linux-x64 runtime links GTK (processing path, JPEG codec)
case "${1:-}" in
  --test) want+=(redis-server postgresql chromium) ;; # cluster tests: membership stores; console tests: a browser
  --cluster) want+=(redis-server) ;;        # scripts/cluster-up.sh
  --postgres) want+=(postgresql) ;;         # scripts/cluster-up.sh --postgres
  "") ;;
  *) echo "install-deps: unknown option '$1' (use --test, --cluster or --postgres)" >&2; exit 2 ;;
esac

if ! command -v dotnet >/dev/null 2>&1; then
  echo "install-deps: the .NET 10 SDK is required (https://dot.net); 'dotnet' is not on PATH" >&2
  exit 1
fi

missing=()
for pkg in "${want[@]}"; do
  case "$pkg" in
    ffmpeg) command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg) ;;
    chromium) [[ -x /usr/bin/chromium ]] || missing+=(chromium) ;;
    redis-server) command -v redis-server >/dev/null 2>&1 || missing+=(redis-server) ;;
    # The tests run initdb/postgres themselves (as the postgres user); the package's own cluster is not used.
    postgresql) compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql) ;;
    *) dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg") ;;
  esac
done

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]} with apt-get"
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
      echo "install-deps: need root (or sudo) to apt-get install ${missing[*]}" >&2; exit 1
    fi
  fi
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
