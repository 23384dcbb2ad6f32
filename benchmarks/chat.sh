#!/usr/bin/env bash
# The chat results of docs/benchmarks.md so far (run from the repository root, ../shared beside it). Each run uses
# both cores and a time budget: run nothing else meanwhile.
#   benchmarks/chat.sh [OUT]          (default OUT: runs/chat-bench)
set -euo pipefail
out=${1:-runs/chat-bench}
mkdir -p "$out"
measure() { /usr/bin/time -f "peak resident memory %M KB, %e s" "$@"; }
run() { name=$1; minutes=$2; shift 2
        measure rnnkit train chat --max-minutes "$minutes" --out "$out/$name" --overwrite "$@"; }

run flat-10min 10  # the defaults (flat GRU attention encoder-decoder), a first, short run
