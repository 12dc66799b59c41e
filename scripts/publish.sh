#!/usr/bin/env bash
# Publishes the three process roles, framework-dependent for linux-x64, into artifacts/publish/:
#   silo/      the silo executable (grains, ffmpeg driving, ONNX Runtime CPU, OpenCV)
#   gateway/   the client-mode gateway (BlankendEmbedded=false): WebSockets + HTTP API only, no grain,
#              ONNX Runtime, OpenCV or ffmpeg code; it joins separate silos (cluster.mode=client)
#   embedded/  the one-process service (gateway + silo), what scripts/run.sh runs
# --gpu adds silo-gpu/ (ONNX Runtime's CUDA flavour, Microsoft.ML.OnnxRuntime.Gpu.Linux; docs/deployment.md).
# Names (silo gateway embedded silo-gpu) publish only those: scripts/publish.sh --gpu silo-gpu.
# Each flavour builds in its own folder under artifacts/build/, so they never share intermediate files.
# Prints each output's size; fails if the client-mode gateway holds a native AI or OpenCV runtime.
set -euo pipefail
cd "$(dirname "$0")/.."
gpu=false
only=()
for arg in "$@"; do
  case "$arg" in
    --gpu) gpu=true ;;
    silo|gateway|embedded|silo-gpu) only+=("$arg") ;;
    *) echo "publish: unknown argument '$arg' (use --gpu, or names: silo gateway embedded silo-gpu)" >&2; exit 2 ;;
  esac
done
wanted() { ((${#only[@]} == 0)) || [[ " ${only[*]} " == *" $1 "* ]]; }

out=artifacts/publish
common=(-c Release -r linux-x64 --self-contained false -nologo -v quiet)
publish() { # name project extra-args...
  local name=$1 project=$2; shift 2
  wanted "$name" || return 0
  rm -rf "${out:?}/$name"
  echo "publish: $name"
  dotnet publish "$project" "${common[@]}" --artifacts-path "artifacts/build/$name" -o "$out/$name" "$@"
}
publish silo silo/Blankend.Orleans.Silo.csproj
publish gateway gateway/Blankend.Orleans.Gateway.csproj -p:BlankendEmbedded=false
publish embedded gateway/Blankend.Orleans.Gateway.csproj
if $gpu; then publish silo-gpu silo/Blankend.Orleans.Silo.csproj -p:BlankendGpu=true; fi

for d in "$out"/*/; do
  printf 'publish: %-10s %6s MB\n' "$(basename "$d")" "$(du -sm "$d" | cut -f1)"
done
[[ -d "$out/gateway" ]] || exit 0
leaks=$(find "$out/gateway" \( -name 'libonnxruntime*' -o -name 'libOpenCvSharpExtern*' -o -name 'Microsoft.ML.OnnxRuntime*' \
  -o -name 'OpenCvSharp*' -o -name 'Blankend.Orleans.Grains.dll' -o -name 'NetMQ.dll' \) -print)
if [[ -n "$leaks" ]]; then
  echo "publish: the client-mode gateway must not carry these:" >&2
  echo "$leaks" >&2
  exit 1
fi
