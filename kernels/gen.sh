#!/usr/bin/env bash
# Regenerates the embedded PTX from the CUDA sources: every kernels/*.cu in
# one module, compiled twice with nvcc -ptx:
#   ptx/kernels_70.ptx  compute_70: every kernel (plain f32 and scalar f16);
#                       what the PTX simulator runs
#   ptx/kernels_80.ptx  compute_80: loaded on devices of capability >= 8.0
#                       (sources may add fast paths under __CUDA_ARCH__ >= 800)
# and ptx/STAMP, the sha256 of every source, of this script (which holds the
# flags) and of the PTX written. TestPTXFresh recomputes the source hashes
# without nvcc and fails when the committed PTX is stale.
set -euo pipefail
cd "$(dirname "$0")"
NVCC="${NVCC:-nvcc}"
# The committed PTX comes from CUDA 11.8 (PTX ISA 7.8, which the simulator
# parses); another release writes other bytes. Leave the PTX alone then,
# unless asked (LADDER_NVCC_ANY=1), so build.sh on a newer toolkit does not
# rewrite it.
if ! "$NVCC" --version | grep -q 'release 11\.8' && [ "${LADDER_NVCC_ANY:-}" != 1 ]; then
  echo "kernels/gen.sh: $("$NVCC" --version | tail -n1) is not CUDA 11.8; keeping the committed PTX (LADDER_NVCC_ANY=1 to regenerate anyway)" >&2
  exit 0
fi
# No -lineinfo or -G: those embed file paths, and the PTX must be the same
# bytes on every machine for the stamp to be honest.
FLAGS=(-ptx -O3 -std=c++14 -Xptxas -O3)

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# One translation unit so the module has every kernel; sorted for a stable order.
{
  for f in $(ls *.cu | LC_ALL=C sort); do echo "#include \"$PWD/$f\""; done
} > "$tmp/all.cu"

mkdir -p ptx
for arch in 70 80; do
  "$NVCC" "${FLAGS[@]}" -arch=compute_$arch -I"$PWD" -o "$tmp/kernels_$arch.ptx" "$tmp/all.cu"
  # nvcc names the input file in a comment; drop it so the bytes do not
  # depend on the temporary directory.
  grep -v '^// .*all\.cu' "$tmp/kernels_$arch.ptx" > "ptx/kernels_$arch.ptx"
done

{
  echo "# sha256 of the sources and flags the PTX was generated from (kernels/gen.sh)"
  for f in $(ls *.cu *.cuh gen.sh | LC_ALL=C sort); do
    echo "$(sha256sum "$f" | cut -d' ' -f1)  $f"
  done
  for arch in 70 80; do
    echo "$(sha256sum "ptx/kernels_$arch.ptx" | cut -d' ' -f1)  ptx/kernels_$arch.ptx"
  done
} > ptx/STAMP
echo "kernels/gen.sh: wrote ptx/kernels_70.ptx ptx/kernels_80.ptx ptx/STAMP ($("$NVCC" --version | tail -n1))"
