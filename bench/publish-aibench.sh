#!/usr/bin/env bash
# Publishes the AI bench for a GPU host without dotnet: self-contained linux-x64, with ONNX Runtime's CUDA
# flavour (-p:BlankendGpu=true: Microsoft.ML.OnnxRuntime.Gpu.Linux), into artifacts/publish/aibench-gpu/
# (or the folder given). The folder holds everything the bench reads: the binary Blankend.Bench.AiBench, the
# .NET runtime, the ONNX Runtime natives (libonnxruntime_providers_cuda.so alone is ~280 MB), models/ (the
# shipped models) and media/ (the 720p JPEG and the reference face). It does NOT hold CUDA, cuBLAS or cuDNN:
# the host provides them (CUDA 13 cuBLAS / cuDNN 9 folders on LD_LIBRARY_PATH; scripts/gpu-check.sh does it).
#
#   bench/publish-aibench.sh [OUT_DIR]        --cpu: the CPU package instead (aibench-cpu/, for a dry run)
#   scripts/stage-gpu.sh OUT_DIR CHUNKS_DIR    packs it into xz chunks of at most 55 MB to carry elsewhere
#   scripts/gpu-check.sh --bench-dir OUT_DIR   runs it on the GPU host
set -euo pipefail
cd "$(dirname "$0")/.."
gpu=true
out=""
for arg in "$@"; do
  case "$arg" in
    --cpu) gpu=false ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "publish-aibench: unknown option $arg" >&2; exit 2 ;;
    *) out=$arg ;;
  esac
done
name=aibench-gpu
$gpu || name=aibench-cpu
out=${out:-artifacts/publish/$name}
rm -rf "${out:?}"
echo "publish-aibench: $name -> $out"
# Its own artifacts folder: never shares obj/ with the CPU build of the same projects.
dotnet publish bench/AiBench/Blankend.Bench.AiBench.csproj -c Release -r linux-x64 --self-contained true \
  -p:BlankendGpu=$gpu -nologo -v quiet --artifacts-path "artifacts/build/$name" -o "$out"
for f in Blankend.Bench.AiBench models/face_landmark.onnx media/frame-1280x720-q80.jpg media/astronaut.jpg; do
  [[ -e "$out/$f" ]] || { echo "publish-aibench: $out/$f is missing" >&2; exit 1; }
done
if $gpu && [[ ! -e "$out/libonnxruntime_providers_cuda.so" ]]; then
  echo "publish-aibench: $out has no libonnxruntime_providers_cuda.so (the GPU package did not come in)" >&2
  exit 1
fi
# OpenCV's native part (libOpenCvSharpExtern.so: the JPEG codec) links GTK 3 and friends for its window
# functions, which the service never calls; a headless GPU image (a CUDA/PyTorch one) may lack them. Empty
# libraries with their names (gui-stubs/) satisfy the loader there (no symbol of theirs is bound before a
# window function is called: lazy binding, no version requirement on them). scripts/gpu-check.sh puts the
# stubs of the libraries the loader does not find, and only those, at the end of LD_LIBRARY_PATH.
if command -v gcc >/dev/null; then
  mkdir -p "$out/gui-stubs"
  for lib in libgtk-3.so.0 libgdk-3.so.0 libpangocairo-1.0.so.0 libpango-1.0.so.0 libatk-1.0.so.0 libcairo-gobject.so.2 \
    libcairo.so.2 libgdk_pixbuf-2.0.so.0 libgio-2.0.so.0 libgobject-2.0.so.0 libglib-2.0.so.0 libfreetype.so.6 \
    libharfbuzz.so.0 libdrm.so.2 libX11.so.6; do
    gcc -shared -nostdlib -Wl,-soname,"$lib" -o "$out/gui-stubs/$lib" -x c /dev/null
  done
else
  echo "publish-aibench: no gcc: no gui-stubs/ (a host without GTK 3 cannot load OpenCV's native part)" >&2
fi
{
  echo "commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$([[ -n $(git status --porcelain --untracked-files=no 2>/dev/null) ]] && echo -dirty)"
  echo "date_utc=$(date -u '+%Y-%m-%d %H:%M')"
  echo "onnxruntime_package=$($gpu && echo Microsoft.ML.OnnxRuntime.Gpu.Linux || echo Microsoft.ML.OnnxRuntime)"
} >"$out/BUILD-INFO"
printf 'publish-aibench: %s MB in %s files; largest:\n' "$(du -sm "$out" | cut -f1)" "$(find "$out" -type f | wc -l)"
find "$out" -type f -printf '%s %P\n' | sort -rn | head -5 | awk '{printf "  %6.1f MB  %s\n", $1 / 1048576, $2}'
