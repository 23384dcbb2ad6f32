#!/usr/bin/env bash
# The long-horizon SegRNN results of docs/benchmarks.md (issue 24; run from the repository root, ../shared beside it).
# Every run is budgeted in minutes (--max-minutes 14), so what it reaches depends on the machine and on what else
# runs: the tables were made with two one-thread runs at a time on two cores (OMP_NUM_THREADS=1); THREADS=2 and one
# run at a time gives each run both cores.
#   benchmarks/forecast.sh [OUT] [last|last-cells|etth1|etth2|etth2-etth1-config|etth2-segrnn|cells|all]
#   (default: runs/forecast-bench all; last and last-cells: SegRNN's own normalisation, ETTh1's headline)
set -euo pipefail
out=${1:-runs/forecast-bench}
which=${2:-all}
mkdir -p "$out"
export OMP_NUM_THREADS=${THREADS:-1}
measure() { /usr/bin/time -f "peak resident memory %M KB, %e s" "$@"; }

# SegRNN's settings for L = 96; the schedule keeps the rate for 2 epochs (66 steps of 256 windows), then x0.8 an epoch.
segrnn() {  # DATASET HORIZON LR NAME [EXTRA FLAGS...]
  local dataset=$1 horizon=$2 lr=$3 name=$4
  shift 4
  measure rnnkit train forecast --dataset "$dataset" --features multivariate --input-len 96 --horizon "$horizon" \
    --architecture segrnn --segment-length 24 --hidden-size 512 --dropout 0.5 --batch-size 256 --lr "$lr" \
    --schedule step --step-every 33 --step-start 66 --gamma 0.8 --epochs 30 --eval-every 33 --patience 5 \
    --max-minutes 14 --out "$out/$name" --overwrite "$@"
}

# The headline: SegRNN's own normalisation (each window's last value subtracted and added back, no RevIN),
# chosen on ETTh1's validation windows at H = 96 against RevIN.
if [[ $which == last || $which == all ]]; then
  for dataset in etth1 etth2; do
    for horizon in 96 192 336 720; do
      segrnn "$dataset" "$horizon" 1e-3 "$dataset-$horizon-last" --no-highway --no-revin --subtract-last
    done
  done
fi
if [[ $which == last-cells || $which == all ]]; then
  for cell in lstm janet indrnn; do
    segrnn etth1 336 1e-3 "etth1-336-last-$cell" --no-highway --no-revin --subtract-last --cell "$cell"
  done
fi
if [[ $which == etth1 || $which == all ]]; then
  for horizon in 96 192 336 720; do segrnn etth1 "$horizon" 1e-3 "etth1-$horizon" --no-highway; done
fi
if [[ $which == etth2 || $which == all ]]; then
  for horizon in 96 192 336 720; do segrnn etth2 "$horizon" 2e-4 "etth2-$horizon"; done
fi
if [[ $which == etth2-etth1-config || $which == all ]]; then
  for horizon in 96 192 336 720; do segrnn etth2 "$horizon" 1e-3 "etth2-$horizon-etth1-config" --no-highway; done
fi
if [[ $which == etth2-segrnn || $which == all ]]; then  # SegRNN's own ETTh2 settings: its rate, subtract-last
  for horizon in 96 192 336 720; do
    segrnn etth2 "$horizon" 2e-4 "etth2-$horizon-segrnn" --no-highway --no-revin --subtract-last
  done
fi
if [[ $which == cells || $which == all ]]; then
  for cell in lstm janet indrnn; do segrnn etth1 336 1e-3 "etth1-336-$cell" --no-highway --cell "$cell"; done
  # the direct-head model of today, for comparison
  measure rnnkit train forecast --features multivariate --horizon 336 --out "$out/etth1-336-direct" --overwrite
fi
