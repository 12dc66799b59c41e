#!/usr/bin/env bash
# Packs a folder (the published GPU bench, bench/publish-aibench.sh) into xz chunks of at most 55 MiB, so that
# it can be carried over several transfers of at most 64 MiB each, then unpacked on the other side.
#
#   scripts/stage-gpu.sh [SRC_DIR] CHUNKS_DIR     SRC_DIR defaults to artifacts/publish/aibench-gpu
#
# Writes CHUNKS_DIR/NAME.tar.xz.000, .001, ... (NAME = the folder's name), CHUNKS_DIR/NAME.sha256 and
# CHUNKS_DIR/UNPACK.txt with the command that puts the folder back together (any chunk order on disk; the
# names sort in order):
#   cd CHUNKS_DIR && sha256sum -c NAME.sha256 && cat NAME.tar.xz.[0-9]* | xz -dc -T0 | tar -x -C DEST
# gives DEST/NAME/. Environment: STAGE_CHUNK (split size, default 55M = 55 MiB), STAGE_XZ_LEVEL (6),
# STAGE_XZ_THREADS (2). Prints the chunk count, the sizes and the time taken.
set -euo pipefail
if (($# == 1)); then
    src=$(cd "$(dirname "$0")/.." && pwd)/artifacts/publish/aibench-gpu
    dest=$1
elif (($# == 2)); then
    src=$1
    dest=$2
else
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
fi
[[ -d $src ]] || { echo "stage-gpu: $src is not a folder (bench/publish-aibench.sh makes it)" >&2; exit 2; }
src=$(realpath "$src")
name=$(basename "$src")
chunk=${STAGE_CHUNK:-55M}
level=${STAGE_XZ_LEVEL:-6}
threads=${STAGE_XZ_THREADS:-2}
mkdir -p "$dest"
rm -f "$dest/$name".tar.xz.[0-9]* "$dest/$name.sha256"

t0=$(date +%s.%N)
tar -C "$(dirname "$src")" -cf - "$name" | xz -"$level" -T"$threads" -c | split -b "$chunk" -d -a 3 - "$dest/$name.tar.xz."
t1=$(date +%s.%N)
(cd "$dest" && sha256sum "$name".tar.xz.[0-9]* >"$name.sha256")
cat >"$dest/UNPACK.txt" <<EOF
# $name: $(ls "$dest/$name".tar.xz.[0-9]* | wc -l) chunk(s) of at most $chunk, from $src ($(date -u '+%Y-%m-%d %H:%M UTC'))
# With every chunk and $name.sha256 in one folder (here: CHUNKS), unpack into DEST (gives DEST/$name/):
cd CHUNKS && sha256sum -c $name.sha256 && cat $name.tar.xz.[0-9]* | xz -dc -T0 | tar -x -C DEST
EOF

in_mb=$(du -sm "$src" | cut -f1)
out_b=$(cat "$dest/$name".tar.xz.[0-9]* | wc -c)
n=$(ls "$dest/$name".tar.xz.[0-9]* | wc -l)
awk -v name="$name" -v in_mb="$in_mb" -v n="$n" -v b="$out_b" -v l="$level" -v t="$threads" -v c="$chunk" -v t0="$t0" -v t1="$t1" \
    'BEGIN { printf "stage-gpu: %s (%s MB) -> %d chunk(s), %.1f MiB in all (xz -%s -T%s, split %s), %.0f s\n", name, in_mb, n, b / 1048576, l, t, c, t1 - t0 }'
ls -l "$dest/$name".tar.xz.[0-9]* | awk '{printf "  %s  %.1f MiB\n", $NF, $5 / 1048576}'
echo "stage-gpu: unpack with (see $dest/UNPACK.txt):"
tail -1 "$dest/UNPACK.txt" | sed 's/^/  /'
