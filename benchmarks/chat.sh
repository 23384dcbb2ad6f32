#!/usr/bin/env bash
# The chat results of docs/benchmarks.md (run from the repository root, ../shared beside it). The recurrent model and
# the Transformer baseline train side by side for the same wall clock, one thread each: run nothing else meanwhile.
#   benchmarks/chat.sh [OUT] [WHAT]   (default OUT: runs/chat-bench, WHAT: pairs)
# WHAT: pairs (the recurrent model and the Transformer, 60 minutes, and what follows from them), structures (flat GRU,
# flat LSTM and HRED, 45 minutes, three at once) or all.
set -euo pipefail
out=${1:-runs/chat-bench}
what=${2:-pairs}
mkdir -p "$out"
measure() { OMP_NUM_THREADS=1 /usr/bin/time -f "peak resident memory %M KB, %e s" "$@"; }
run() { name=$1; minutes=$2; shift 2
        measure rnnkit train chat --max-minutes "$minutes" --out "$out/$name" --overwrite "$@" > "$out/$name.log" 2>&1; }
# the first 100 test dialogues (706 replies), for the comparisons that cannot afford the whole test set
python - "$out/test100.txt" <<'PY'
import sys
from rnnkit.data.dialogues import read_dailydialog
dialogues = read_dailydialog("../shared/data/dailydialog", "test")[:100]
open(sys.argv[1], "w").write("".join(" __eou__ ".join(d.utterances) + " __eou__\n" for d in dialogues))
PY

if [[ $what == pairs || $what == all ]]; then
# 60 minutes each, side by side: the defaults (flat GRU attention encoder-decoder, 13.27 M parameters) and the
# parameter-matched Transformer (13.03 M)
run flat-gru-60 60 &
run transformer-60 60 --structure transformer --hidden-size 256 --num-layers 4 --feedforward-size 1152 --lr 5e-4 \
    --warmup-steps 400 &
wait

# MMI-antiLM against plain beam search on the first 100 test dialogues (706 replies)
for weight in 0 0.5; do
    rnnkit evaluate --checkpoint "$out/flat-gru-60" --dialogues "$out/test100.txt" --anti-lm "$weight"
done

# the ten sample conversations of docs/results/chat-samples.md
python benchmarks/chat_samples.py "$out/flat-gru-60" "$out/transformer-60"
python benchmarks/chat_samples.py "$out/flat-gru-60" --strategy sample --top-p 0.9
fi

# The structures and cells side by side: the flat GRU (the defaults), the flat LSTM and HRED (GRU), 45 minutes each,
# all three at once on the two cores (each has two thirds of a core for the same wall clock)
if [[ $what == structures || $what == all ]]; then
    run flat-gru-45 45 &
    run flat-lstm-45 45 --cell lstm &
    run hred-gru-45 45 --structure hred &
    wait
    # The numbers in docs/benchmarks.md are these three evaluations of the first 100 test dialogues: the runs' own
    # test evaluations (three decodings of 12,055 replies each) were stopped by hand once the checkpoints were written,
    # for time.
    for name in flat-gru-45 flat-lstm-45 hred-gru-45; do
        measure rnnkit evaluate --checkpoint "$out/$name" --dialogues "$out/test100.txt" > "$out/$name-test100.txt" 2>&1 &
    done
    wait
fi
