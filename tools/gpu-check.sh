#!/usr/bin/env bash
# The whole real-GPU check of the CUDA backend in one call of the device
# tool, in two halves:
#
#   tools/gpu-check.sh prepare   here (Go, no GPU): builds with CGO_ENABLED=0
#                                gpu-check/bin/{ladder-engine,kernels.test,cuda.test}
#                                and copies the few fixtures they read into
#                                gpu-check/shared (about 50 MiB in all; the
#                                device tool carries ignored paths up to 64 MiB)
#   tools/gpu-check.sh run       on the GPU machine (CUDA driver, no Go), from
#                                the repository root: runs the CUDA tests on
#                                the real driver with the compute_80 fast paths
#                                where the GPU has them, the kernel benchmarks
#                                and ladder-engine bench/perplexity on cuda and
#                                cpu, and writes $OUT/gpu-check.json (one entry
#                                per step: command, exit status, seconds, the
#                                log's last lines) with each step's full log
#                                beside it.
#
# A device-tool call:
#   run(command="tools/gpu-check.sh run", carry=["gpu-check"], timeout_s=600)
#
# LADDER_GPU_CHECK_SIM=1 runs the same steps on the PTX simulator
# (../shared/ptxsim) with small selections, to check this script without a GPU.
set -uo pipefail
cd "$(dirname "$0")/.."
DIR=gpu-check

prepare() {
  set -e
  rm -rf "$DIR"
  mkdir -p "$DIR/bin" "$DIR/shared/models/stories260K" "$DIR/shared/models/synth" "$DIR/shared/data/text"
  export CGO_ENABLED=0
  go build -ldflags="-s -w" -o "$DIR/bin/ladder-engine" ./tools/ladder-engine
  go test -c -ldflags="-s -w" -o "$DIR/bin/kernels.test" ./kernels
  go test -c -ldflags="-s -w" -o "$DIR/bin/cuda.test" ./ops/cuda
  local shared=${LADDER_FIXTURES:-../shared}
  cp "$shared/models/stories260K/stories260K.gguf" "$DIR/shared/models/stories260K/"
  cp "$shared/data/text/tinystories_sample.txt" "$DIR/shared/data/text/"
  # Real model tensors for the kernels' decoding test, one per family.
  for t in Q4_0 Q8_0 Q4_K_M Q6_K IQ4_NL; do
    cp "$shared/models/synth/synth-llama-$t.gguf" "$DIR/shared/models/synth/"
  done
  du -sh "$DIR"
}

# json_str prints its argument as a JSON string.
json_str() {
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\t'/\\t}
  s=${s//$'\r'/}
  s=${s//$'\n'/\\n}
  printf '"%s"' "$(printf '%s' "$s" | tr -d '\000-\010\013\014\016-\037')"
}

STEPS=()
# step NAME TIMEOUT CMD...: runs CMD with a time limit, its output in
# $OUT/NAME.log, and records the result.
step() {
  local name=$1 limit=$2
  shift 2
  local log="$OUT/$name.log" start end rc
  echo "== $name: $*" >&2
  start=$(date +%s.%N)
  timeout "$limit" "$@" >"$log" 2>&1 </dev/null
  rc=$?
  end=$(date +%s.%N)
  local secs
  secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
  echo "   exit $rc in ${secs}s" >&2
  STEPS+=("{\"name\": $(json_str "$name"), \"command\": $(json_str "$*"), \"exit\": $rc, \"seconds\": $secs, \"tail\": $(json_str "$(tail -n 30 "$log")")}")
}

run() {
  : "${OUT:?set OUT to the folder for the results}"
  mkdir -p "$OUT"
  [ -x "$DIR/bin/ladder-engine" ] || { echo "gpu-check: $DIR/bin missing: run 'tools/gpu-check.sh prepare' here and carry $DIR" >&2; exit 1; }
  local root=$PWD
  export LADDER_FIXTURES=$root/$DIR/shared
  local bin=$root/$DIR/bin
  local model=$LADDER_FIXTURES/models/stories260K/stories260K.gguf
  local text=$LADDER_FIXTURES/data/text/tinystories_sample.txt
  local sel_kernels=. sel_cuda=. bench=. benchtime=20x synth=1 reps=3 ppl_chunks=8 ctx=128 pp=128 tg=16
  if [ "${LADDER_GPU_CHECK_SIM:-}" = 1 ]; then
    export LADDER_CUDA_LIB=$root/../shared/ptxsim/libcuda.so.1
    export GPGPUSIM_CONFIG_FILE=$root/../shared/ptxsim/gpgpusim.config
    sel_kernels='TestRMSNorm|TestDeviceBasics|TestPTXFresh' sel_cuda='TestBackendMatchesCPU/memory' bench='BenchmarkMatVec' benchtime=1x synth=0 reps=1 ppl_chunks=1 ctx=16 pp=8 tg=2
  else
    export LADDER_CUDA_TEST_FULL=1 # the model tests at the issue's sizes
  fi
  # The tests open the driver the environment names (not the simulator
  # fixture), and a missing fixture fails instead of skipping.
  export LADDER_CUDA_TEST_DEVICE=real CI=true
  # The simulator writes files into its working directory.
  local work
  work=$(mktemp -d)
  cd "$work" || exit 1

  local gpu=unknown
  if command -v nvidia-smi >/dev/null; then
    gpu=$(nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv,noheader 2>/dev/null | head -n1)
    [ "${LADDER_GPU_CHECK_SIM:-}" = 1 ] || step nvidia-smi 30 nvidia-smi
  fi
  step device 60 "$bin/ladder-engine" generate "$model" -p "Once upon a time" -n "$tg" --temp 0 --device cuda
  # Test binaries run from their package folder (TestPTXFresh reads the sources).
  step kernels-tests 300 env -C "$root/kernels" "$bin/kernels.test" -test.v -test.run "$sel_kernels" -test.timeout 290s
  step cuda-tests 300 env -C "$root/ops/cuda" "$bin/cuda.test" -test.v -test.run "$sel_cuda" -test.timeout 290s
  step kernels-bench 240 env -C "$root/kernels" "$bin/kernels.test" -test.run '^$' -test.bench "$bench" -test.benchtime "$benchtime"
  step perplexity-cuda 120 "$bin/ladder-engine" perplexity "$model" -f "$text" -c "$ctx" --chunks "$ppl_chunks" --device cuda
  step perplexity-cpu 120 "$bin/ladder-engine" perplexity "$model" -f "$text" -c "$ctx" --chunks "$ppl_chunks" --device cpu
  step bench-stories-cuda 120 "$bin/ladder-engine" bench "$model" -p "$pp" -n "$tg" -r "$reps" --device cuda
  if [ "$synth" = 1 ]; then
    # A model of real size, made on the spot (random weights, llama shapes).
    step synth-160m 180 "$bin/ladder-engine" synth --arch llama --preset 160m --type q4_0 -o "$work/llama-160m-q4_0.gguf"
    step bench-160m-cuda 180 "$bin/ladder-engine" bench "$work/llama-160m-q4_0.gguf" -p 512 -n 64 -r "$reps" --device cuda
    step bench-160m-cpu 180 "$bin/ladder-engine" bench "$work/llama-160m-q4_0.gguf" -p 128 -n 16 -r 1 --device cpu
    step finetune-160m-cuda 180 "$bin/ladder-engine" finetune "$work/llama-160m-q4_0.gguf" --data "$text" -c 256 --batch 2 --steps 5 --device cuda --dir "$work/run"
  fi
  cd "$root" || exit 1
  rm -rf "$work"

  {
    printf '{\n  "date": %s,\n  "gpu": %s,\n  "simulator": %s,\n  "commit": %s,\n  "steps": [\n' \
      "$(json_str "$(date -u +%Y-%m-%dT%H:%M:%SZ)")" "$(json_str "$gpu")" \
      "$([ "${LADDER_GPU_CHECK_SIM:-}" = 1 ] && echo true || echo false)" \
      "$(json_str "$(git rev-parse HEAD 2>/dev/null || echo unknown)")"
    local i
    for i in "${!STEPS[@]}"; do
      [ "$i" -gt 0 ] && printf ',\n'
      printf '    %s' "${STEPS[$i]}"
    done
    printf '\n  ]\n}\n'
  } >"$OUT/gpu-check.json"
  echo "gpu-check: wrote $OUT/gpu-check.json" >&2
  # Exit 1 when any step failed, so the device tool's rc says so.
  local s
  for s in "${STEPS[@]}"; do
    case $s in *'"exit": 0,'*) ;; *) exit 1 ;; esac
  done
}

case ${1:-} in
  prepare) prepare ;;
  run) run ;;
  *) echo "usage: tools/gpu-check.sh prepare|run (see the comment at the top)" >&2; exit 2 ;;
esac
