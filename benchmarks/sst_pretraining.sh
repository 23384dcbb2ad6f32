#!/usr/bin/env bash
# Issue 24's stretch: SST with a word language model pre-trained on text we have (the Penn Treebank's training text
# and the SST training sentences; no external vectors), then 'rnnkit train sst --init-from'. Run from the repository
# root, ../shared beside it.
#   benchmarks/sst_pretraining.sh [OUT]          (default OUT: runs/sst-pretraining-bench)
set -euo pipefail
out=${1:-runs/sst-pretraining-bench}
mkdir -p "$out/corpus"
measure() { /usr/bin/time -f "peak resident memory %M KB, %e s" "$@"; }

# The corpus: PTB's training text, then the SST training trees' sentences as 'rnnkit train sst' reads them, their
# leaves lower-cased (so the language model's words are the classifier's); validation: the SST dev sentences' text
# (no labels); test: PTB's test text. No SST test sentence is read.
python - ../shared/data "$out/corpus" <<'PY'
import sys
from pathlib import Path
from rnnkit.data.sentiment_trees import read_trees

shared, corpus = Path(sys.argv[1]), Path(sys.argv[2])
def sentences(name):
    return [" ".join(tree.leaves).lower() for tree in read_trees(shared / "sst/trees" / name, name)]
ptb = (shared / "ptb/ptb.train.txt").read_text()
(corpus / "train.txt").write_text(ptb + "".join(f" {s} \n" for s in sentences("train.txt")))
(corpus / "valid.txt").write_text("".join(f" {s} \n" for s in sentences("dev.txt")))
(corpus / "test.txt").write_text((shared / "ptb/ptb.test.txt").read_text())
PY

# The language model: the classifier's cell and sizes (an LSTM of 150 units, 300-d embeddings), one layer; one
# thread (the tables ran it beside another job on the other core).
OMP_NUM_THREADS=1 measure rnnkit train wordlm --data-dir "$out/corpus" --vocab-size 20000 --cell lstm --num-layers 1 \
  --hidden-size 150 --embedding-size 300 --dropout 0.5 --epochs 6 --max-minutes 20 --out "$out/lm" --overwrite

# The classifiers, two at a time on one thread each (as the headline tables of docs/benchmarks.md).
for seed in 0 1 2; do
  OMP_NUM_THREADS=1 measure rnnkit train sst --init-from "$out/lm" --seed "$seed" --out "$out/sst2-lm-$seed" \
    --overwrite > "$out/sst2-lm-$seed.log" 2>&1 &
  OMP_NUM_THREADS=1 measure rnnkit train sst --subtask fine --init-from "$out/lm" --seed "$seed" \
    --out "$out/sst5-lm-$seed" --overwrite > "$out/sst5-lm-$seed.log" 2>&1 &
  wait
done
