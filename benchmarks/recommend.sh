#!/usr/bin/env bash
# The recommendation results of docs/benchmarks.md so far, one after another (run from the repository root,
# ../shared beside it). Each run uses both cores and a time budget: run nothing else meanwhile.
#   benchmarks/recommend.sh [OUT]          (default OUT: runs/recommend-bench)
set -euo pipefail
out=${1:-runs/recommend-bench}
mkdir -p "$out"
measure() { /usr/bin/time -f "peak resident memory %M KB, %e s" "$@"; }
run() { name=$1; minutes=$2; shift 2
        measure rnnkit train recommend --max-minutes "$minutes" --eval-every 1000 --out "$out/$name" --overwrite "$@"; }

small=(--hidden-size 64 --embedding-size 64)
run games-full64 20 --loss full_softmax "${small[@]}" --dropout 0.2
run games-ss64 6 --loss sampled_softmax --negatives 1024 "${small[@]}" --dropout 0.2
run games-ss64-lr3 6 --loss sampled_softmax --negatives 1024 "${small[@]}" --dropout 0.2 --lr 3e-3
run games-ss64-d5 6 --loss sampled_softmax --negatives 1024 "${small[@]}" --dropout 0.5
run games-ss128-d5 6  # the defaults: sampled softmax, 1,024 negatives, 128 units, dropout 0.5

# the headline rows, the same-job SASRec beside each, and every cell and loss at one size
run games-gru 15
run games-sasrec 15 --architecture sasrec --num-layers 2
run beauty-gru 10 --dataset beauty
run beauty-sasrec 10 --dataset beauty --architecture sasrec --num-layers 2
run games-ss256 6 --hidden-size 256 --embedding-size 256
for cell in gru lstm janet indrnn; do run "games-$cell" 5 --cell "$cell"; done
for loss in full_softmax bpr_max top1_max bce; do run "games-$loss" 5 --loss "$loss"; done

# 30 minutes, the limit (2026-12-07, a 2-core AVX2-only machine): the defaults, the same-job SASRec, and
# SASRec with its paper's own recipe (embeddings 50, BCE with one negative, 169 epochs in the budget there)
run games-gru-30 30
run games-sasrec-30 30 --architecture sasrec --num-layers 2
run games-sasrec-paper-30 30 --architecture sasrec --num-layers 2 --embedding-size 50 --loss bce --dropout 0.5
