#!/usr/bin/env bash
# Builds bin/ladder-engine. Regenerates the CUDA PTX in kernels/ when nvcc is
# present (the committed PTX must match the sources; see kernels/).
set -euo pipefail
cd "$(dirname "$0")"

# Go's default install place, for shells whose PATH lacks it; Go needs a HOME
# for its caches.
case ":$PATH:" in *:/usr/local/go/bin:*) ;; *) [ -x /usr/local/go/bin/go ] && PATH="$PATH:/usr/local/go/bin" ;; esac
[ -n "${HOME:-}" ] || export HOME="$(mktemp -d)"

if ! command -v go >/dev/null 2>&1; then
  echo "build.sh: Go 1.26 is required (https://go.dev/dl); put it on PATH" >&2
  exit 1
fi

# Fast SIMD kernels need Go's simd experiment (amd64); elsewhere the pure-Go
# fallbacks build without it.
if [ "$(go env GOARCH)" = amd64 ]; then
  export GOEXPERIMENT="${GOEXPERIMENT:-simd}"
fi

if command -v nvcc >/dev/null 2>&1 && [ -x kernels/gen.sh ]; then
  kernels/gen.sh
fi

go mod download
mkdir -p bin
go build -trimpath -o bin/ladder-engine ./tools/ladder-engine
echo "built bin/ladder-engine (GOEXPERIMENT=${GOEXPERIMENT:-})"
