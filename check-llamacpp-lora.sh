#!/usr/bin/env bash
# Checks our LoRA adapters against llama.cpp itself (issue 11's acceptance):
#  1. an adapter trained here (finetune --method lora) and exported in
#     llama.cpp's format: llama-perplexity --lora gives our perplexity
#     --adapter within 0.1%, and llama-export-lora merges it into a model
#     whose llama-perplexity is the same within 0.1%;
#  2. adapters made with known values (f32, f16, bf16) by the engine's test
#     TestLoRAAdapterMatchesMergedWeights: llama-perplexity --lora gives
#     ours within 0.1%.
# Needs llama.cpp's tools (llama-perplexity, llama-export-lora) built for
# this CPU: ../shared/llama.cpp/bin by default, which is built for AVX-512
# and dies with SIGILL elsewhere; LLAMA_BIN=DIR points at another build of
# the same commit (c392e50, e.g. built natively with its CMake). Also needs
# bin/ladder-engine (build.sh).
# Usage: [LLAMA_BIN=DIR] ./check-llamacpp-lora.sh [WORKDIR]
set -euo pipefail
cd "$(dirname "$0")"
FIX=${LADDER_FIXTURES:-../shared}
LLAMA=${LLAMA_BIN:-$FIX/llama.cpp/bin}
LE=bin/ladder-engine
W=${1:-$(mktemp -d)}
mkdir -p "$W"
M=$FIX/models/stories260K/stories260K.gguf
TEXT=$FIX/data/text/tinystories_sample.txt
fail=0

ppl_ours() { "$LE" perplexity "$@" -c 128 -b 128 --chunks 20 -t 4 2>&1 | sed -n 's/.*Final estimate: PPL = \([0-9.]*\).*/\1/p'; }
ppl_llama() { "$LLAMA/llama-perplexity" "$@" -c 128 -b 128 --chunks 20 -t 4 2>&1 | sed -n 's/.*Final estimate: PPL = \([0-9.]*\).*/\1/p'; }
close() { # name, ours, theirs: within 0.1%
	python3 -c "import sys; a,b=float('$2'),float('$3'); r=abs(a-b)/b; print('%-40s ours %.5f  llama.cpp %.5f  rel %.2e  %s'%('$1',a,b,r,'ok' if r<=1e-3 else 'FAIL')); sys.exit(0 if r<=1e-3 else 1)" || fail=1
}

echo "== 1. a LoRA adapter trained here"
"$LE" finetune "$M" --data "$TEXT" -c 128 --steps 30 --batch 8 --method lora --lr 5e-3 --dir "$W/run" --out "$W/trained.gguf" -t 4 >/dev/null
close "perplexity --lora (trained, f32)" "$(ppl_ours "$M" -f "$TEXT" --adapter "$W/trained.gguf")" "$(ppl_llama -m "$M" -f "$TEXT" --lora "$W/trained.gguf")"
"$LLAMA/llama-export-lora" -m "$M" --lora "$W/trained.gguf" -o "$W/merged.gguf" >/dev/null 2>&1
close "llama-export-lora merged model" "$(ppl_ours "$M" -f "$TEXT" --adapter "$W/trained.gguf")" "$(ppl_llama -m "$W/merged.gguf" -f "$TEXT")"
"$LE" finetune "$M" --data "$TEXT" -c 128 --steps 1 --method lora --dir "$W/run16" --out "$W/trained-f16.gguf" --adapter-type f16 -t 4 >/dev/null
close "perplexity --lora (f16 adapter)" "$(ppl_ours "$M" -f "$TEXT" --adapter "$W/trained-f16.gguf")" "$(ppl_llama -m "$M" -f "$TEXT" --lora "$W/trained-f16.gguf")"
close "--lora-scaled 0.5 / --adapter-scale 0.5" "$(ppl_ours "$M" -f "$TEXT" --adapter "$W/trained.gguf" --adapter-scale 0.5)" "$(ppl_llama -m "$M" -f "$TEXT" --lora-scaled "$W/trained.gguf" 0.5)"

echo "== 2. adapters with known values (the engine's test writes them)"
LADDER_LORA_OUT="$W/known" go test ./engine -run 'TestLoRAAdapterMatchesMergedWeights/stories260K' -count=1 >/dev/null
for a in "$W"/known/*.gguf; do
	close "$(basename "$a")" "$(ppl_ours "$M" -f "$TEXT" --adapter "$a")" "$(ppl_llama -m "$M" -f "$TEXT" --lora "$a")"
done
exit $fail
