#!/usr/bin/env bash
# bench/bench_mpi.sh - data-parallel training on one machine (issue 20): the time of an SGD
# step of 2 ranks x 1 thread (mpirun -np 2 build/tsf-mpi train --threads 1) against
# 1 process x 2 threads (build/tsf train --threads 2), with the same global batch, on the
# small config and ViT-B, in the ordinary layout (the whole gradient summed after the
# backward pass) and the lean one (--recompute --fused-sgd: each block's gradient summed in
# the backward pass, before its update), the latter on 2 ranks twice: with the overlap (the
# sum of block l in tsf-mpi's thread while block l-1's backward runs; the default) and
# without it (TSF_MPI_OVERLAP=0: each block summed at once). The difference is the cost of
# the sums (and of the two processes' separate memory traffic); tsf train's own clock
# measures it (TSF_MPI_STATS=1: the median step after the first, the part of it spent in the
# sums, the part of it the training thread was blocked by them (with the overlap: its time
# in grad_wait), and the CPU time a step, which other jobs on a shared machine change less
# than the wall clock; for 2 ranks the table doubles rank 0's).
#
#   bash bench/bench_mpi.sh [--configs small,vitb] [--modes train,lean,lean-no-overlap]
#                           [--steps N] [--out FILE]
#
# Configs (those of bench_model): small 112^2, patch 16, 8 frames, D 192, depth 4, 3 heads,
# 10 classes, global batch 8 (4 a rank); vitb ViT-B/16 at 8 x 224^2, divided, 400 classes,
# global batch 2 (1 a rank). Clips of random pixels made by build/video2clip (the loader's
# work is part of the step, as in real training). --modes: which rows (train: the ordinary
# layout, both ways; lean: the lean one, both ways, 2 ranks with the overlap; lean-no-overlap:
# 2 ranks without it). --steps: SGD steps a run (default 8 small, 4 vitb; the first is not
# counted). Output: JSON lines, then a table; the load average
# before and after each run (the machine may be shared: runs under load are slower and
# noisier). Needs build/tsf, build/tsf-mpi (make MPI=1) and mpirun.
set -u
cd "$(dirname "$0")/.." || exit 1
CONFIGS=small,vitb
MODES=train,lean,lean-no-overlap
STEPS=
OUT=
while [ $# -gt 0 ]; do
    case "$1" in
    --configs) CONFIGS=$2; shift 2 ;;
    --modes) MODES=$2; shift 2 ;;
    --steps) STEPS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    *) echo "usage: bash bench/bench_mpi.sh [--configs small,vitb] [--modes train,lean,lean-no-overlap] [--steps N] [--out FILE]" >&2; exit 2 ;;
    esac
done
command -v mpirun >/dev/null 2>&1 || { echo "bench_mpi: no mpirun (apt-get install openmpi-bin libopenmpi-dev)" >&2; exit 1; }
make -s build/tsf build/video2clip || exit 1
make -s MPI=1 build/tsf-mpi || exit 1
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
[ -n "$OUT" ] && : >"$OUT"
emit() { echo "$1"; [ -z "$OUT" ] || echo "$1" >>"$OUT"; }
load() { cut -d' ' -f1 /proc/loadavg; }
export OMP_WAIT_POLICY=passive
ROWS=()

# dataset NAME CLIPS SIDE CLASSES: CLIPS clips of 8 random frames of SIDE x SIDE
dataset() {
    local d=$TMP/$1 i
    mkdir -p "$d"
    { echo path,label; for ((i = 0; i < $2; i++)); do echo "c$i.clip,$((i % $4))"; done; } >"$d/train.csv"
    for ((i = 0; i < $4; i++)); do echo "class$i"; done >"$d/classes.txt"
    for ((i = 0; i < $2; i++)); do
        head -c $((8 * $3 * $3 * 3)) /dev/urandom | build/video2clip --width "$3" --height "$3" -q -o "$d/c$i.clip" || exit 1
    done
}

# run CONFIG LAYOUT MODE ARGS...: one tsf train run; prints its JSON line (mode "lean, no
# overlap": TSF_MPI_OVERLAP=0)
run() {
    local cfg=$1 layout=$2 mode=$3 l0 l1 stats ov=1
    shift 3
    rm -rf "$TMP/run"
    l0=$(load)
    [ "$mode" = "lean-no-overlap" ] && ov=0
    if [ "$layout" = 2x1 ]; then
        TSF_MPI_STATS=1 TSF_MPI_OVERLAP=$ov mpirun --allow-run-as-root --oversubscribe -x TSF_MPI_STATS \
            -x TSF_MPI_OVERLAP -x OMP_WAIT_POLICY \
            -np 2 build/tsf-mpi train "$@" --threads 1 --out "$TMP/run" -q >"$TMP/log" 2>&1
    else
        TSF_MPI_STATS=1 build/tsf train "$@" --threads 2 --out "$TMP/run" -q >"$TMP/log" 2>&1
    fi || { cat "$TMP/log" >&2; exit 1; }
    l1=$(load)
    stats=$(sed -n 's/^tsf: stats //p' "$TMP/log")
    [ -n "$stats" ] || { cat "$TMP/log" >&2; exit 1; }
    emit "{\"bench\": \"mpi\", \"config\": \"$cfg\", \"layout\": \"$([ "$layout" = 2x1 ] && echo "2 ranks x 1 thread" || echo "1 process x 2 threads")\", \"mode\": \"$mode\", ${stats#\{}" 
    ROWS+=("$cfg $mode $layout $(echo "$stats" | sed 's/.*"step_ms": \([0-9.]*\).*"step_ms_min": \([0-9.]*\).*"cpu_ms": \([0-9.]*\).*"sum_ms": \([0-9.]*\).*"wait_ms": \([0-9.]*\).*"blocked_ms": \([0-9.]*\).*"floats_summed": \([0-9.]*\).*/\1 \2 \3 \4 \5 \6 \7/') $l0 $l1")
}

for cfg in ${CONFIGS//,/ }; do
    case $cfg in
    small) M="--size 112 --patch 16 --frames 8 --dim 192 --depth 4 --heads 3" G=8 S=${STEPS:-8} side=128 K=10 ;;
    vitb) M="--size 224 --patch 16 --frames 8 --dim 768 --depth 12 --heads 12" G=2 S=${STEPS:-4} side=256 K=400 ;;
    *) echo "bench_mpi: unknown config $cfg (small, vitb)" >&2; exit 2 ;;
    esac
    dataset "$cfg" $((G * S)) "$side" "$K"
    A="--train $TMP/$cfg/train.csv $M --stride 1 --batch $G --epochs 1 --seed 1"
    for mode in ${MODES//,/ }; do
        case $mode in
        train) run "$cfg" 1x2 train $A && run "$cfg" 2x1 train $A ;;
        lean) run "$cfg" 1x2 lean $A --recompute --fused-sgd && run "$cfg" 2x1 lean $A --recompute --fused-sgd ;;
        lean-no-overlap) run "$cfg" 2x1 lean-no-overlap $A --recompute --fused-sgd ;;
        *) echo "bench_mpi: unknown mode $mode (train, lean, lean-no-overlap)" >&2; exit 2 ;;
        esac
    done
done

echo
echo "| config | mode | layout | ms a step (median, fastest) | CPU ms a step, all processes | sums: moving and adding (median ms) | waiting for the other rank (median ms) | training thread blocked by the sums (median ms) | MB summed a step | load before / after |"
echo "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
for row in "${ROWS[@]}"; do
    # config mode layout step_ms step_ms_min cpu_ms sum_ms wait_ms blocked_ms floats load0 load1
    set -- $row
    if [ "$3" = 2x1 ]; then
        echo "| $1 | ${2//-/ } | 2 ranks x 1 thread | $4 ($5) | $(awk -v c="$6" 'BEGIN { printf "%.0f", 2 * c }') | $7 | $8 | $9 | $(awk -v f="${10}" 'BEGIN { printf "%.1f", 4e-6 * f }') | ${11} / ${12} |"
    else
        echo "| $1 | $2 | 1 process x 2 threads | $4 ($5) | $(awk -v c="$6" 'BEGIN { printf "%.0f", c }') | - | - | - | - | ${11} / ${12} |"
    fi
done
