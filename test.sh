#!/usr/bin/env bash
# The project's test command (README, .ci/run). Fails on the first problem.
# Fixtures are read from $LADDER_FIXTURES, else ../shared; with CI=true a
# missing fixture fails its test instead of skipping it.
set -euo pipefail
cd "$(dirname "$0")"

# Go's default install place, for shells whose PATH lacks it; Go needs a HOME
# for its caches.
case ":$PATH:" in *:/usr/local/go/bin:*) ;; *) [ -x /usr/local/go/bin/go ] && PATH="$PATH:/usr/local/go/bin" ;; esac
[ -n "${HOME:-}" ] || export HOME="$(mktemp -d)"

command -v go >/dev/null 2>&1 || { echo "test.sh: Go 1.26 is required on PATH" >&2; exit 1; }
go mod download

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then echo "not gofmt-formatted:"; echo "$unformatted"; exit 1; fi

simd=""
[ "$(go env GOARCH)" = amd64 ] && simd=simd

echo "== go vet"
GOEXPERIMENT=$simd go vet ./...
go vet ./...

echo "== tests (GOEXPERIMENT=$simd)"
GOEXPERIMENT=$simd go test -count=1 -timeout 20m ./...

# The pure-Go fallbacks of every SIMD kernel must pass too.
echo "== tests of the pure-Go kernels (no simd experiment)"
go test -count=1 -timeout 10m ./gguf/... $(go list ./ops/... | grep -v /ops/cuda)

# fuzz_once runs one fuzz target briefly. Go's fuzzer sometimes fails with
# "context deadline exceeded" while stopping its workers, with no failing
# input: that is retried, up to twice. A real
# finding ("Failing input written to") always fails the run.
fuzz_once() {
  local out
  for attempt in 1 2 3; do
    if out=$(GOEXPERIMENT=$simd go test -run='^$' -fuzz="^${2}\$" -fuzztime=5s -fuzzminimizetime=3s "./$1/" 2>&1); then
      echo "$out" | tail -1
      return 0
    fi
    echo "$out"
    if grep -q 'Failing input written to' <<<"$out" || ! grep -q 'context deadline exceeded' <<<"$out"; then
      return 1
    fi
    echo "(fuzzer stopped on its own deadline with no failing input; retrying)"
  done
  return 1
}

echo "== short fuzz runs of every parser"
# Each target runs briefly on top of its seed corpus; longer runs:
#   go test ./PKG -run '^$' -fuzz NAME -fuzztime 5m -fuzzminimizetime 5s
for dir in $(grep -l '^func Fuzz' $(git ls-files '*_test.go') | xargs -n1 dirname | sort -u); do
  for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go | cut -d' ' -f2); do
    echo "fuzz $dir $target"
    fuzz_once "$dir" "$target"
  done
done
