#!/usr/bin/env bash
# Download what bench/gpu.sh --wheels DIR installs on an offline GPU machine:
#
#   bench/gpu_wheels.sh [DIR]        (default bench/out/gpu-wheels; PYVER=3.12)
#
# Binary wheels for CPython $PYVER on manylinux x86_64 (glibc >= 2.28 for av) of every
# package in bench/gpu_wheels.txt, without dependencies (the GPU machine already has
# torch, transformers, numpy and the rest); deepspeed has only an sdist on PyPI, so its
# pure-python wheel is built here with no ops compiled (DS_BUILD_OPS=0; DeepSpeed would
# JIT-compile an op on first use, and fcap uses none: torch's own AdamW, ZeRO-2).
# Fails when the folder exceeds 64 MiB.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="$(mkdir -p "${1:-$root/bench/out/gpu-wheels}" && cd "${1:-$root/bench/out/gpu-wheels}" && pwd)"
pyver="${PYVER:-3.12}"
python="${PYTHON:-$(command -v python || command -v python3)}"
list="$root/bench/gpu_wheels.txt"
binaries=$(grep -vE '^\s*(#|$)' "$list" | grep -v '^deepspeed==' | tr '\n' ' ')
deepspeed=$(grep '^deepspeed==' "$list")

"$python" -m pip download --disable-pip-version-check --only-binary=:all: --no-deps \
  --python-version "$pyver" --implementation cp \
  --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 \
  -d "$dest" $binaries

if ! ls "$dest"/deepspeed-"${deepspeed#deepspeed==}"-*.whl >/dev/null 2>&1; then
  src="$(mktemp -d)"
  trap 'rm -rf "$src"' EXIT
  "$python" -m pip download --disable-pip-version-check --no-binary=:all: --no-deps -d "$src" "$deepspeed"
  # --no-build-isolation: its setup.py imports torch (here, any build) only to record versions
  DS_BUILD_OPS=0 "$python" -m pip wheel --disable-pip-version-check --no-deps --no-build-isolation \
    -w "$dest" "$src"/deepspeed-*.tar.gz
fi

size=$(du -sb "$dest" | cut -f1)
ls -l "$dest"
echo "gpu_wheels: $(ls "$dest" | wc -l) files, $((size / 1024 / 1024)) MiB in $dest"
if [ "$size" -gt $((64 * 1024 * 1024)) ]; then
  echo "gpu_wheels: over the 64-MiB limit" >&2
  exit 1
fi
