#!/usr/bin/env bash
# The speech results of docs/benchmarks.md, one after another (run from the repository root, ../shared beside it).
# Each training run uses both cores; run nothing else meanwhile, or the time-budgeted headline reaches less
# (the others have step budgets).
#   benchmarks/speech.sh [OUT]          (default OUT: runs/speech-bench)
set -euo pipefail
out=${1:-runs/speech-bench}
mkdir -p "$out"
measure() { /usr/bin/time -f "peak resident memory %M KB, %e s" "$@"; }

# AN4: the headline (greedy, no language model), its peak memory, then the decodings of the same model.
measure rnnkit train speech --max-minutes 50 --out "$out/an4-gru" --overwrite
# the second seed, to the first seed's step count
measure rnnkit train speech --seed 2 --max-minutes 0 --max-steps 7284 --out "$out/an4-gru-seed2" --overwrite
rnnkit evaluate --checkpoint "$out/an4-gru" --beam-size 32
rnnkit evaluate --checkpoint "$out/an4-gru" --beam-size 32 --lm transcripts --lm-weight 0.5 --word-bonus 1.0
rnnkit evaluate --checkpoint "$out/an4-gru" --beam-size 32 --lm ../shared/data/an4/etc/an4.ug.lm --lm-weight 0.5 \
  --word-bonus 1.0
# predict on AN4's 130 test feature files: real-time factor and peak memory
sed 's|^|../shared/data/an4/feat/|; s|$|.mfc|' ../shared/data/an4/etc/an4_test.fileids > "$out/an4_test_files.txt"
measure rnnkit predict --checkpoint "$out/an4-gru" --file "$out/an4_test_files.txt" > "$out/an4_predict.txt"

# The front end: the AN4 model (trained on AN4's .mfc files only) transcribing FSDD's test recordings through
# rnnkit's Sphinx-style front end (8 kHz recordings resampled to 16 kHz; AN4's words include the ten digits).
python - "$out/fsdd_test.json" <<'EOF'
import json, sys
from rnnkit.data.speech_corpora import read_fsdd
with open(sys.argv[1], "w") as file:
    for r in read_fsdd("../shared/data/fsdd"):
        if r.index < 5:
            file.write(json.dumps({"audio_filepath": str(r.utterance.path.resolve()), "text": r.utterance.text}) + "\n")
EOF
rnnkit evaluate --checkpoint "$out/an4-gru" --manifest "$out/fsdd_test.json" --utterances "$out/fsdd_by_an4.jsonl"

# Every cell at one size (4 x 256 bidirectional, 800 steps), uni- against bidirectional, without SpecAugment.
for cell in gru lstm janet indrnn; do
  rnnkit train speech --cell "$cell" --max-minutes 0 --max-steps 800 --out "$out/an4-800-$cell" --overwrite
done
rnnkit train speech --no-bidirectional --max-minutes 0 --max-steps 800 --out "$out/an4-800-unidirectional" --overwrite
rnnkit train speech --no-bidirectional --max-minutes 0 --max-steps 3000 --out "$out/an4-3000-unidirectional" --overwrite
rnnkit train speech --no-bidirectional --lr 5e-4 --max-minutes 0 --max-steps 800 --out "$out/an4-800-unidirectional-lr5e-4" \
  --overwrite
rnnkit train speech --no-bidirectional --num-layers 2 --max-minutes 0 --max-steps 800 \
  --out "$out/an4-800-unidirectional-2-layers" --overwrite
rnnkit train speech --no-bidirectional --num-layers 2 --max-minutes 0 --max-steps 3000 \
  --out "$out/an4-3000-unidirectional-2-layers" --overwrite
rnnkit train speech --dataset fsdd --no-bidirectional --max-minutes 0 --max-steps 1500 --out "$out/fsdd-unidirectional" \
  --overwrite
rnnkit train speech --frequency-masks 0 --time-masks 0 --max-minutes 0 --max-steps 800 \
  --out "$out/an4-800-no-specaugment" --overwrite

# FSDD: the official split, leave one speaker out (six folds), connected digits of a held-out speaker; each run's
# summary.json holds its DTW baseline.
rnnkit train speech --dataset fsdd --max-minutes 0 --max-steps 1500 --out "$out/fsdd-official" --overwrite
measure rnnkit train speech --dataset fsdd --max-minutes 0 --max-steps 4000 --out "$out/fsdd-official-4000" --overwrite
for seed in 1 2; do
  rnnkit train speech --dataset fsdd --seed "$seed" --max-minutes 0 --max-steps 1500 --out "$out/fsdd-official-seed$seed" \
    --overwrite
done
# the same three runs decoded with the beam search and the trigram of the training transcripts (FSDD's are single
# digits), with and without an offset for words it lacks (-5 chosen on validation): validation, then test
for run in fsdd-official fsdd-official-seed1 fsdd-official-seed2; do
  for offset in 0 -2 -5 -10 -20; do
    for split in validation test; do
      rnnkit evaluate --checkpoint "$out/$run" --split "$split" --beam-size 16 --lm transcripts --unknown-offset "$offset" \
        --utterances "$out/$run-$split-lm$offset.jsonl"
    done
  done
done
for speaker in george jackson lucas nicolas theo yweweler; do
  rnnkit train speech --dataset fsdd --protocol speaker --speaker "$speaker" --max-minutes 0 --max-steps 800 \
    --out "$out/fsdd-speaker-$speaker" --overwrite
done
rnnkit train speech --dataset fsdd --protocol connected --speaker theo --max-minutes 0 --max-steps 1500 \
  --out "$out/fsdd-connected-theo" --overwrite
