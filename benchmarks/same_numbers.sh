#!/usr/bin/env bash
# Short real-data runs of every task, and the outputs of their commands, with the rnnkit source in SRC_DIR:
# run it for two versions of the code (a git worktree of the older one) and compare the folders with
# benchmarks/compare_runs.py. A refactor that changes no computation gives bitwise-equal weights and logs.
#
#   git worktree add /tmp/before COMMIT
#   benchmarks/same_numbers.sh /tmp/before/src /tmp/runs-before ../shared/data
#   benchmarks/same_numbers.sh src /tmp/runs-after ../shared/data
#   python benchmarks/compare_runs.py /tmp/runs-before /tmp/runs-after
set -u
SRC=$(realpath "$1"); OUT=$2; D=$(realpath "$3")
mkdir -p "$OUT"; cd "$OUT"
export PYTHONPATH=$SRC OMP_NUM_THREADS=2
R="python -m rnnkit"
S="--max-minutes 0 --epochs 0 --log-every 10"
run() { name=$1; shift; echo "== $name: $*" >> commands.txt; "$@" > $name.out 2> $name.err; echo "rc=$?" >> $name.out; }
run charlm $R train charlm --hidden-size 64 --embedding-size 16 --max-steps 60 --eval-every 30 $S --out charlm
run charlm_gen $R generate --checkpoint charlm --length 80 --seed 3
run charlm_beam $R generate --checkpoint charlm --length 40 --beam-size 4 --prime "ROMEO:"
run charlm_eval $R evaluate --checkpoint charlm
run wordlm $R train wordlm --data-dir $D/ptb --hidden-size 32 --embedding-size 32 --max-steps 60 --eval-every 30 --step-every 20 --step-start 20 $S --out wordlm
run wordlm_beam $R generate --checkpoint wordlm --length 12 --beam-size 3 --prime "the company"
run adding $R train adding --seq-len 30 --hidden-size 16 --max-steps 40 --eval-every 20 $S --out adding
run copy $R train copy --seq-len 10 --hidden-size 16 --max-steps 40 --eval-every 20 $S --out copy
run digits $R train digits --hidden-size 16 --max-steps 40 --eval-every 20 $S --out digits
run digits_pred $R predict --checkpoint digits "0,0,5,13,9,1,0,0,0,0,13,15,10,15,5,0,0,3,15,2,0,11,8,0,0,4,12,0,0,8,8,0,0,5,8,0,0,9,8,0,0,4,11,0,1,12,7,0,0,2,14,5,10,12,0,0,0,0,6,13,10,0,0,0" --format jsonl
run sst $R train sst --data-dir $D/sst --hidden-size 32 --embedding-size 32 --max-steps 60 --eval-every 30 $S --out sst
run sst_pred $R predict --checkpoint sst "A gripping, beautifully acted film." "Dull and lifeless." --format jsonl
run sst_eval $R evaluate --checkpoint sst
run ner $R train ner --data-dir $D/conll2003 --hidden-size 24 --embedding-size 16 --max-steps 40 --eval-every 20 $S --out ner
run ner_pred $R predict --checkpoint ner "U.N. official Ekeus heads for Baghdad ." --format jsonl
run translate $R train translate --data-dir $D/multi30k --hidden-size 64 --embedding-size 32 --max-steps 40 --eval-every 20 --beam-size 3 $S --out translate
run translate_pred $R predict --checkpoint translate "Ein Mann fährt Fahrrad." "Zwei Hunde spielen im Schnee." --beam-size 4 --n-best 2 --format jsonl
run translate_eval $R evaluate --checkpoint translate --beam-size 2
run forecast $R train forecast --data-dir $D --max-steps 60 --eval-every 30 $S --out forecast
run forecast_pred $R predict --checkpoint forecast --out forecast_pred
run forecast_back $R predict --checkpoint forecast --backtest --out forecast_back
run forecast_eval $R evaluate --checkpoint forecast
run forecast_g $R train forecast --data-dir $D --distribution gaussian --architecture seq2seq --max-steps 40 --eval-every 20 $S --out forecast_g
run forecast_g_pred $R predict --checkpoint forecast_g --horizon 12 --out forecast_g_pred
run forecast_q $R train forecast --data-dir $D --dataset airline --input-len 24 --horizon 6 --distribution quantile --max-steps 30 --eval-every 10 $S --out forecast_q
run forecast_q_pred $R predict --checkpoint forecast_q --out forecast_q_pred
run music $R train music --data-dir $D/polyphonic-music --hidden-size 32 --max-steps 40 --eval-every 20 $S --out music
run music_gen $R generate --checkpoint music --steps 32 --out song.mid
run music_eval $R evaluate --checkpoint music
