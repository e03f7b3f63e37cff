#!/usr/bin/env bash
# The README's accuracy table: lora, ladder and xladder on stories260K, same
# data and budget. tinyshakespeare: first 90% (cut at a line end) to train,
# last 10% held out, -c 128, STEPS steps of 8 sequences (609 = one epoch),
# held-out perplexity over the first 100 chunks; SST-2: 1000 steps of 16
# sentences (SST2_STEPS; 4210 = one epoch), dev accuracy with its 95% interval.
# Usage: ./bench-accuracy.sh [WORKDIR, default runs/accuracy] (needs bin/ladder-engine: ./build.sh)
set -euo pipefail
cd "$(dirname "$0")"
FIX=$(cd "${LADDER_FIXTURES:-../shared}" && pwd) # absolute: the runs below cd into WORKDIR
LE=${LE:-$PWD/bin/ladder-engine}
M=$FIX/models/stories260K/stories260K.gguf
STEPS=${STEPS:-609}
SST2_STEPS=${SST2_STEPS:-1000}
W=${1:-runs/accuracy}
mkdir -p "$W" && cd "$W"
python3 - "$FIX/data/text/tinyshakespeare.txt" <<'PY'
import sys
b = open(sys.argv[1], 'rb').read()
n = b.rfind(b'\n', 0, len(b) * 9 // 10) + 1
open('train.txt', 'wb').write(b[:n]); open('heldout.txt', 'wb').write(b[n:])
PY
"$LE" perplexity "$M" -f heldout.txt -c 128 --chunks 100 -t 1 > base.ppl 2>&1
"$LE" eval "$M" --task classify --data "$FIX/data/sst2/dev.tsv" --json -t 1 > sst2-base.eval 2>&1
for method in lora ladder xladder; do
	"$LE" finetune "$M" --data train.txt --val-data heldout.txt --val-batches 4 -c 128 --steps "$STEPS" --method $method \
		--eval-every 100000 --dir run-$method --summary-json $method.json -t 1 > $method.log 2>&1
	"$LE" perplexity "$M" -f heldout.txt -c 128 --adapter run-$method/adapter.gguf --chunks 100 -t 1 > $method.ppl 2>&1
	"$LE" finetune "$M" --data "$FIX/data/sst2/train.tsv" --val-data "$FIX/data/sst2/dev.tsv" --val-batches 2 -c 64 --batch 16 \
		--steps "$SST2_STEPS" --lr 3e-3 --method $method --eval-every 100000 --dir sst2-$method --summary-json sst2-$method.json -t 1 > sst2-$method.log 2>&1
	"$LE" eval "$M" --adapter sst2-$method/adapter.gguf --task classify --data "$FIX/data/sst2/dev.tsv" --json -t 1 > sst2-$method.eval 2>&1
done
grep -H "Final estimate" ./*.ppl
grep -H '"accuracy"' ./*.eval || true
