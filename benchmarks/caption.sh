#!/usr/bin/env bash
# The caption results of docs/benchmarks.md (run from the repository root, ../shared beside it). The attention model
# and its same-job baselines train side by side, one thread each (OMP_NUM_THREADS=1), for the same wall-clock budget:
# run nothing else meanwhile. The Transformer decoder (256 wide, 3 layers, feed-forward 896: 5.15 M parameters) matches
# the attention model's LSTM 512 (5.06 M); the nearest-neighbour baseline comes with every run's test metrics.
#   benchmarks/caption.sh [OUT] [MINUTES] [WHAT]   (default OUT: runs/caption-bench, MINUTES: 20, WHAT: pairs)
# WHAT: pairs (the side-by-side runs and the report), cells (every cell at one size, below), composition-30 (JANET and
# less dropout on unseen compositions, below; run it with MINUTES 30), artist-30 (the same on the unseen artist),
# alone-30 (the chosen configuration and the Transformer decoder on both protocols, one run at a time on both cores),
# artist-seed-2 (alone-30's unseen-artist JANET run again with another seed, to size the seed noise) or all.
set -euo pipefail
out=${1:-runs/caption-bench}
minutes=${2:-20}
what=${3:-pairs}
mkdir -p "$out"
threads=1  # per run; alone-30 sets 2
measure() { OMP_NUM_THREADS=$threads /usr/bin/time -f "peak resident memory %M KB, %e s" "$@"; }
run() { name=$1; shift
        measure rnnkit train caption --max-minutes "$minutes" --out "$out/$name" --overwrite "$@" > "$out/$name.log" 2>&1; }
transformer=(--decoder transformer --hidden-size 256 --num-layers 3 --feedforward-size 896 --heads 4 --warmup-steps 200)

if [[ $what == pairs || $what == all ]]; then
for protocol in unseen-artist unseen-composition; do
    run "attention-$protocol" --protocol "$protocol" &
    run "transformer-$protocol" --protocol "$protocol" "${transformer[@]}" &
    wait
done
python benchmarks/caption_report.py "$out/attention-unseen-artist" --figures docs/figures --drawn 2 \
    > "$out/attention-unseen-artist-report.md"
fi

# Every cell at the default size (512 units, embeddings 256) on unseen compositions, one thread each, all five at
# once, for 400 steps: a step budget, so that the comparison does not depend on what else the machine ran (the wall
# times do)
if [[ $what == cells || $what == all ]]; then
    for cell in lstm gru janet indrnn rnn; do
        run "cell-$cell" --protocol unseen-composition --cell "$cell" --max-minutes 0 --max-steps 400 &
    done
    wait
fi

# Unseen compositions, JANET and less dropout, one thread each, two at a time (MINUTES: 30 in docs/benchmarks.md): JANET
# at the defaults beside the Transformer decoder; JANET with dropout 0.1 beside JANET at lr 2e-3; JANET with both beside
# the Transformer decoder with dropout 0.1
if [[ $what == composition-30 || $what == all ]]; then
    composition=(--protocol unseen-composition)
    run janet-composition "${composition[@]}" --cell janet &
    run transformer-composition "${composition[@]}" "${transformer[@]}" &
    wait
    run janet-dropout-0.1-composition "${composition[@]}" --cell janet --dropout 0.1 &
    run janet-lr-2e-3-composition "${composition[@]}" --cell janet --lr 2e-3 &
    wait
    run janet-dropout-0.1-lr-2e-3-composition "${composition[@]}" --cell janet --dropout 0.1 --lr 2e-3 &
    run transformer-dropout-0.1-composition "${composition[@]}" "${transformer[@]}" --dropout 0.1 &
    wait
fi

# The unseen artist with the configuration chosen on unseen compositions' validation, beside the Transformer decoder with
# the same dropout (MINUTES: 30 in docs/benchmarks.md)
if [[ $what == artist-30 || $what == all ]]; then
    run janet-dropout-0.1-lr-2e-3-artist --protocol unseen-artist --cell janet --dropout 0.1 --lr 2e-3 &
    run transformer-dropout-0.1-artist --protocol unseen-artist "${transformer[@]}" --dropout 0.1 &
    wait
fi

# The configuration chosen on validation and the Transformer decoder with the same dropout, on both protocols, one run
# at a time with both cores (MINUTES: 30 in docs/benchmarks.md): the 2 cores per run, where the side-by-side
# runs above gave each one
if [[ $what == alone-30 || $what == all ]]; then
    threads=2
    for protocol in unseen-composition unseen-artist; do
        run "janet-dropout-0.1-lr-2e-3-$protocol-alone" --protocol "$protocol" --cell janet --dropout 0.1 --lr 2e-3
    done
    for protocol in unseen-composition unseen-artist; do
        run "transformer-dropout-0.1-$protocol-alone" --protocol "$protocol" "${transformer[@]}" --dropout 0.1
    done
    # docs/results/caption-samples.md's tables and docs/figures/caption-attention-*.png (the file's own header and
    # notes are written by hand)
    measure python benchmarks/caption_report.py "$out/janet-dropout-0.1-lr-2e-3-unseen-artist-alone" \
        --figures docs/figures --drawn 2 > "$out/janet-dropout-0.1-lr-2e-3-unseen-artist-alone-report.md"
    threads=1
fi

if [[ $what == artist-seed-2 || $what == all ]]; then
    threads=2
    run "janet-dropout-0.1-lr-2e-3-unseen-artist-alone-seed-2" --protocol unseen-artist --cell janet --dropout 0.1 \
        --lr 2e-3 --seed 2
    threads=1
fi
