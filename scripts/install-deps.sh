#!/usr/bin/env bash
# Installs what the service (and, with --test, the test suite) needs on Debian, only when missing.
# Needs root or sudo for apt-get; prints what it does.
set -euo pipefail

want=(ffmpeg)                               # /video_codec decode, recording
want+=(libgtk-3-0)                          # OpenCvSharp's official linux-x64 runtime links GTK (processing path, JPEG codec)
if [[ "${1:-}" == "--test" ]]; then
  want+=()                                  # (test-only tools are added here as suites need them)
fi

if ! command -v dotnet >/dev/null 2>&1; then
  echo "install-deps: the .NET 10 SDK is required (https://dot.net); 'dotnet' is not on PATH" >&2
  exit 1
fi

missing=()
for pkg in "${want[@]}"; do
  case "$pkg" in
    ffmpeg) command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg) ;;
    redis-server) command -v redis-server >/dev/null 2>&1 || missing+=(redis-server) ;;
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
