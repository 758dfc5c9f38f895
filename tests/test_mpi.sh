#!/usr/bin/env bash
# Data-parallel tsf train and tsf eval over MPI (issue 20; tools/tsf_mpi.h): build/tsf-mpi
# against build/tsf on a tiny dataset made here. Checked:
#   - mpirun -np 1 tsf-mpi writes the bytes tsf writes;
#   - 2 ranks against 1 process with the same global batch, 20 SGD steps: the losses and the
#     weights agree within float rounding (the PASS lines say how close), and every rank's
#     weights and momentum hash the same after every step; 3 ranks, a batch that does not
#     split evenly, --accum 2 and a micro-batch with fewer clips than ranks, too;
#   - the same 2-rank run twice writes the same bytes (every file);
#   - --recompute --fused-sgd (the per-block sums in the backward pass, in a thread while the
#     next block's backward runs) writes the bytes of the run without them, on 2 and 3 ranks,
#     with the overlap and without it (TSF_MPI_OVERLAP=0), and so does --fused-sgd alone;
#   - --resume from 2 ranks to 1 and from 1 to 2 (the rest of the run within rounding), and
#     from 2 to 2 after a stop inside an epoch asked by one rank's SIGTERM (bit-identical);
#     SIGUSR1 to mpirun stops every rank with a checkpoint;
#   - a failing rank stops every rank: a clip that does not load on rank 1 (the message
#     names rank 1 and the clip; the last checkpoint stays and the run resumes to the bytes
#     of a run never stopped), rank 1 killed (mpirun names it; the same);
#   - tsf eval on 2 ranks reports what 1 process reports; errors are printed once; other
#     commands refuse several ranks.
# Usage: bash tests/test_mpi.sh TSF TSF_MPI   (CC is honoured; needs mpirun)
# Prints [PASS]/[FAIL] lines and "N passed, N failed"; exit status 1 on any failure.
set -u
TSF=${1:-build/tsf}
TSFM=${2:-build/tsf-mpi}
CC=${CC:-cc}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
case "$TSF" in /*) ;; *) TSF=$PWD/$TSF ;; esac
case "$TSFM" in /*) ;; *) TSFM=$PWD/$TSFM ;; esac
MPIRUN="timeout 120 mpirun --allow-run-as-root --oversubscribe"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
PASSED=0
FAILED=0
pass() { echo "[PASS] $1"; PASSED=$((PASSED + 1)); }
fail() { echo "[FAIL] $1"; FAILED=$((FAILED + 1)); }
check() {
    local name=$1
    shift
    if "$@"; then pass "$name"; else fail "$name"; fi
}
finish() {
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ]
    exit $?
}
# same_files NAME DIR1 DIR2: every file of DIR1 is in DIR2 with the same bytes, and no other
# (curves.svg's title names the folder: the names aside)
same_files() {
    local f n bad=""
    [ "$(ls "$2")" = "$(ls "$3")" ] || bad="the folders hold other files: $(ls "$2" | tr '\n' ' ')/ $(ls "$3" | tr '\n' ' ')"
    for f in "$2"/*; do
        n=$(basename "$f")
        if [ "$n" = curves.svg ]; then
            cmp -s <(sed "s|>$(basename "$2"):|>RUN:|" "$f") <(sed "s|>$(basename "$3"):|>RUN:|" "$3/$n") || bad="$bad $n"
        else
            cmp -s "$f" "$3/$n" || bad="$bad $n"
        fi
    done
    if [ -z "$bad" ]; then pass "$1"; else fail "$1: differ: $bad"; fi
}

for t in "$TSF" "$TSFM"; do
    [ -x "$t" ] || { fail "no binary at $t"; finish; }
done
cd "$TMP" || exit 1

cat >util.c <<'UTIL_EOF'
/* util.c - test data and comparisons for tests/test_mpi.sh (compiled by the script).
     util clips DIR PREFIX LABEL COUNT SEED   clips of 4 frames of 16 x 16: a bright square
                                              moving right (0), left (1), down (2) or up (3)
     util wdiff A B                           the weights of two models or checkpoints:
                                              "MAXDIFF MAXABS NDIFF N" */
#define TIMESFORMER_IMPLEMENTATION
#include "timesformer.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int clips(char **a) {
    int label = atoi(a[2]), count = atoi(a[3]), T = 4, S = 16, i, t, y, x, c;
    tsf_rng rng;
    tsf_rng_seed(&rng, (unsigned long long)atoi(a[4]) * 100 + (unsigned)label);
    for (i = 0; i < count; i++) {
        tsf_clip_header h = {0, 0, 0, 0, 0.0f, -1};
        unsigned char px[4 * 16 * 16 * 3];
        char path[4096];
        int x0 = 3 + (int)(tsf_rng_u32(&rng) % 4), y0 = 3 + (int)(tsf_rng_u32(&rng) % 4);
        h.T = T, h.H = S, h.W = S, h.C = 3, h.fps = 30.0f, h.label = label;
        for (t = 0; t < T; t++)
            for (y = 0; y < S; y++)
                for (x = 0; x < S; x++) {
                    int dx = label == 0 ? t : label == 1 ? -t : 0, dy = label == 2 ? t : label == 3 ? -t : 0;
                    int in = x >= x0 + dx && x < x0 + dx + 5 && y >= y0 + dy && y < y0 + dy + 5;
                    for (c = 0; c < 3; c++)
                        px[((t * S + y) * S + x) * 3 + c] = (unsigned char)(in ? 230 : 30 + tsf_rng_u32(&rng) % 50);
                }
        snprintf(path, sizeof path, "%s/%s%d.clip", a[0], a[1], i);
        if (tsf_clip_save(path, &h, px) != TSF_OK) return fprintf(stderr, "cannot write %s\n", path), 1;
    }
    return 0;
}

static int wdiff(char **a) {
    tsf_model m1, m2;
    tsf_error err;
    double worst = 0, big = 0;
    size_t i, n = 0;
    if (tsf_model_load(&m1, a[0], 0, &err) != TSF_OK || tsf_model_load(&m2, a[1], 0, &err) != TSF_OK)
        return fprintf(stderr, "%s\n", err.msg), 1;
    if (m1.param_floats != m2.param_floats) return fprintf(stderr, "not the same model\n"), 1;
    for (i = 0; i < m1.param_floats; i++) {
        double d = fabs((double)m1.param_memory[i] - (double)m2.param_memory[i]);
        worst = d > worst ? d : worst, n += d > 0;
        big = fabs((double)m1.param_memory[i]) > big ? fabs((double)m1.param_memory[i]) : big;
    }
    printf("%.3g %.3g %zu %zu\n", worst, big, n, m1.param_floats);
    tsf_model_free(&m1), tsf_model_free(&m2);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 7 && strcmp(argv[1], "clips") == 0) return clips(argv + 2);
    if (argc == 4 && strcmp(argv[1], "wdiff") == 0) return wdiff(argv + 2);
    fprintf(stderr, "usage: see the comment at the top of util.c\n");
    return 2;
}
UTIL_EOF
if ! $CC -std=c99 -O0 -I"$ROOT" util.c -o util -lm 2>util.log; then
    fail "the test helper does not build: $(cat util.log)"
    finish
fi

# ---- a dataset: 4 classes, 5 training clips and 1 validation clip each ------------------------
mkdir -p ds
for l in 0 1 2 3; do ./util clips ds tr$l. $l 5 1 && ./util clips ds va$l. $l 1 2 || exit 1; done
printf 'right\nleft\ndown\nup\n' >ds/classes.txt
{ echo path,label; for i in 0 1 2 3 4; do for l in 0 1 2 3; do echo "tr$l.$i.clip,$l"; done; done; } >ds/train.csv
{ echo path,label; for l in 0 1 2 3; do echo "va$l.0.clip,$l"; done; } >ds/val.csv

export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive
# Open MPI in a container without ptrace rights cannot copy between processes with CMA: plain
# shared memory instead (the same results; the tests move little data)
export OMPI_MCA_btl_vader_single_copy_mechanism=${OMPI_MCA_btl_vader_single_copy_mechanism:-none}
# 20 clips, batch 4: 5 SGD steps an epoch, 4 epochs = 20 steps. No stochastic depth: with
# several ranks each draws its own, so only --drop-path 0 compares to rounding with 1 process.
M="--data ds --frames 4 --size 16 --patch 8 --dim 16 --depth 2 --heads 2 --stride 1 --batch 4 --lr 0.05 --drop-path 0 --threads 1 -q"
E="--epochs 4"
mpi() { # mpi N ARGS...: tsf-mpi on N ranks
    local n=$1
    shift
    $MPIRUN -np "$n" "$TSFM" "$@"
}

# ---- 1 rank is tsf -----------------------------------------------------------------------------
"$TSF" train $M $E --out one >one.log 2>&1 || fail "tsf train: $(cat one.log)"
mpi 1 train $M $E --out m1 >m1.log 2>&1 || fail "tsf-mpi -np 1: $(cat m1.log)"
same_files "mpirun -np 1 tsf-mpi train writes the bytes tsf train writes" one m1

# ---- 2 ranks against 1 process -----------------------------------------------------------------
t0=$(date +%s%N)
if TSF_TEST_HASH=1 TSF_MPI_STATS=1 mpi 2 train $M $E --out two >two.log 2>two.err; then
    pass "2 ranks: 4 epochs, 20 SGD steps ($((($(date +%s%N) - t0) / 1000000)) ms with mpirun)"
else
    fail "2 ranks: $(cat two.log two.err)"
fi
read -r dw big ndiff nall < <(./util wdiff one/model.safetensors two/model.safetensors)
if awk -v d="$dw" 'BEGIN { exit !(d < 2e-6) }'; then
    pass "2 ranks vs 1 process after 20 steps: weights within $dw (largest weight $big; $ndiff of $nall floats differ)"
else
    fail "2 ranks vs 1 process: weights differ by $dw (largest $big; $ndiff of $nall floats)"
fi
# the epochs' training losses at full precision (train_state.txt's rows)
worst=$(paste <(grep '^row ' one/train_state.txt) <(grep '^row ' two/train_state.txt) |
    awk '{ for (k = 4; k <= 9; k++) { a = $k; b = $(k + 9); if (a == "-" && b == "-") continue;
                 d = a - b; d = d < 0 ? -d : d; r = d / (a < 0 ? -a : a); if (r > w) w = r } }
         END { printf "%.3g", w }')
rows=$(grep -c '^row ' two/train_state.txt)
if [ "$rows" = 4 ] && awk -v w="$worst" 'BEGIN { exit !(w < 1e-5) }'; then
    pass "2 ranks vs 1 process: losses and accuracies of the 4 epochs (train and validation) within a relative $worst"
else
    fail "2 ranks vs 1 process: $rows rows, losses differ by a relative $worst"
fi
h0=$(grep -c 'rank 0: step' two.err)
hd=$(grep 'rank [01]: step' two.err | awk '{ print $4, $6 }' | sort -u | awk '{ n[$1]++ } END { for (s in n) if (n[s] != 1) bad++; print bad + 0 }')
if [ "$h0" = 20 ] && [ "$(grep -c 'rank 1: step' two.err)" = 20 ] && [ "$hd" = 0 ]; then
    pass "2 ranks: every rank's weights and momentum hash the same after each of the 20 steps"
else
    fail "2 ranks: weight hashes: $h0 steps on rank 0, $hd steps where the ranks differ"
fi
check "2 ranks: TSF_MPI_STATS reports the sums" grep -q 'tsf: sums: 2 ranks, 20 SGD steps' two.err

# the same run again: the same bytes
mpi 2 train $M $E --out two_b >two_b.log 2>&1 || fail "2 ranks again: $(cat two_b.log)"
same_files "2 ranks, the same run twice: the same bytes (every file)" two two_b

# the lean mode: recompute + fused SGD, the sums block by block in the backward pass, in the
# sums' thread while the next block's backward runs (overlap: m->grad_wait)
TSF_TEST_HASH=1 TSF_MPI_STATS=1 mpi 2 train $M $E --out lean --recompute --fused-sgd >lean.log 2>lean.err ||
    fail "2 ranks, lean: $(cat lean.log lean.err)"
same_files "2 ranks, --recompute --fused-sgd (per-block sums, overlapped): the bytes of the run without" two lean
calls=$(sed -n 's/.* summed a step in \([0-9.]*\) calls.*/\1/p' lean.err)
check "2 ranks, --fused-sgd sums block by block ($calls sums a step: 2 blocks and the rest)" \
    awk -v c="$calls" 'BEGIN { exit !(c >= 3) }'
check "2 ranks, --fused-sgd: the sums overlap the backward pass (TSF_MPI_STATS: \"overlap\": 1)" \
    grep -q '"overlap": 1,' lean.err
hd=$(grep 'rank [01]: step' lean.err | awk '{ print $4, $6 }' | sort -u | awk '{ n[$1]++ } END { for (s in n) if (n[s] != 1) bad++; print bad + 0 }')
if [ "$(grep -c 'rank 1: step' lean.err)" = 20 ] && [ "$hd" = 0 ] &&
    cmp -s <(grep 'rank 0: step' two.err) <(grep 'rank 0: step' lean.err); then
    pass "2 ranks, lean and overlapped: every rank's weights and momentum hash the same after each of the 20 steps, the hashes of the ordinary run"
else
    fail "2 ranks, lean: $hd steps where the ranks differ, or hashes other than the ordinary run's"
fi
# without the overlap (TSF_MPI_OVERLAP=0: each block summed at once): the same bytes
TSF_MPI_OVERLAP=0 TSF_MPI_STATS=1 mpi 2 train $M $E --out lean0 --recompute --fused-sgd >lean0.log 2>lean0.err ||
    fail "2 ranks, lean, TSF_MPI_OVERLAP=0: $(cat lean0.log lean0.err)"
same_files "2 ranks, lean with TSF_MPI_OVERLAP=0 (summed at once): the bytes of the run without" two lean0
check "2 ranks, lean with TSF_MPI_OVERLAP=0: no overlap reported" grep -q '"overlap": 0,' lean0.err
# --fused-sgd alone (every block's activations kept, no recompute): overlapped, the same bytes
mpi 2 train $M $E --out fused --fused-sgd >fused.log 2>&1 || fail "2 ranks, --fused-sgd: $(cat fused.log)"
same_files "2 ranks, --fused-sgd alone (overlapped): the bytes of the run without" two fused
# 3 ranks, lean and overlapped, against the same 3 ranks in the ordinary layout
mpi 3 train $M $E --out three_o >three_o.log 2>&1 || fail "3 ranks: $(cat three_o.log)"
mpi 3 train $M $E --out three_l --recompute --fused-sgd >three_l.log 2>&1 || fail "3 ranks, lean: $(cat three_l.log)"
same_files "3 ranks, lean and overlapped: the bytes of the ordinary 3-rank run" three_o three_l

# 3 ranks: a batch of 6 (2 each), --accum 2, the epoch's last micro-batch of 2 clips on 3 ranks
M3="--data ds --frames 4 --size 16 --patch 8 --dim 16 --depth 2 --heads 2 --stride 1 --batch 6 --accum 2 --lr 0.05 --drop-path 0 --threads 1 -q --epochs 2"
"$TSF" train $M3 --out one3 >one3.log 2>&1 || fail "tsf train batch 6: $(cat one3.log)"
TSF_TEST_HASH=1 mpi 3 train $M3 --out three >three.log 2>three.err || fail "3 ranks: $(cat three.log three.err)"
read -r dw big ndiff nall < <(./util wdiff one3/model.safetensors three/model.safetensors)
hd=$(grep 'rank [012]: step' three.err | awk '{ print $4, $6 }' | sort -u | awk '{ n[$1]++ } END { for (s in n) if (n[s] != 1) bad++; print bad + 0 }')
if awk -v d="$dw" 'BEGIN { exit !(d < 2e-6) }' && [ "$hd" = 0 ] &&
    [ "$(grep -c 'rank 2: step' three.err)" = 4 ]; then
    pass "3 ranks, batch 6 x accum 2, a micro-batch of 2 clips: weights within $dw of 1 process, equal on every rank"
else
    fail "3 ranks: weights differ by $dw from 1 process; $hd steps where the ranks differ"
fi

# ---- --resume with another number of ranks ---------------------------------------------------------
# 2 ranks stop inside epoch 2 (step 7); 1 process goes on
mpi 2 train $M $E --out r21 --stop-after 7 >r21a.log 2>&1 || fail "2 ranks, --stop-after 7: $(cat r21a.log)"
"$TSF" train --out r21 --resume >r21b.log 2>&1 || fail "resume on 1: $(cat r21b.log)"
read -r dw big ndiff nall < <(./util wdiff one/model.safetensors r21/model.safetensors)
if [ "$(cut -d, -f1,2 r21/log.csv | tail -n 1)" = "4,20" ] && awk -v d="$dw" 'BEGIN { exit !(d < 2e-6) }'; then
    pass "--resume 2 ranks -> 1 process (stopped at step 7): the run ends at step 20, weights within $dw of 1 process"
else
    fail "--resume 2 -> 1: $(tail -n 1 r21/log.csv), weights differ by $dw"
fi
# 1 process stops at step 8; 2 ranks go on
"$TSF" train $M $E --out r12 --stop-after 8 >r12a.log 2>&1 || fail "1 process, --stop-after 8: $(cat r12a.log)"
mpi 2 train --out r12 --resume >r12b.log 2>&1 || fail "resume on 2: $(cat r12b.log)"
read -r dw big ndiff nall < <(./util wdiff one/model.safetensors r12/model.safetensors)
if [ "$(cut -d, -f1,2 r12/log.csv | tail -n 1)" = "4,20" ] && awk -v d="$dw" 'BEGIN { exit !(d < 2e-6) }'; then
    pass "--resume 1 process -> 2 ranks (stopped at step 8): the run ends at step 20, weights within $dw of 1 process"
else
    fail "--resume 1 -> 2: $(tail -n 1 r12/log.csv), weights differ by $dw"
fi

# one rank asks to stop (SIGTERM to rank 1 alone, after its 8th test point: SGD step 7): every
# rank stops after that step, rank 0 saves; 2 ranks resume it to the bytes of a run never stopped
# (mpirun's environment reaches its local ranks)
export TSFM
$MPIRUN -np 2 sh -c 'if [ "$OMPI_COMM_WORLD_RANK" = 1 ]; then export TSF_TEST_KILL_AT=8 TSF_TEST_SIGNAL=TERM; fi; exec "$TSFM" "$@"' \
    sh train $M $E --out sig >sig.log 2>sig.err
rc=$?
if [ "$rc" -ne 0 ] && grep -q 'interrupted: saved .* in epoch 2 after step 2 of 5 (SGD step 7)' sig.log &&
    grep -q '^checkpoint 7 ' sig/train_state.txt; then
    pass "SIGTERM on rank 1 alone: every rank stops after SGD step 7, rank 0 saves (mpirun status $rc)"
else
    fail "SIGTERM on rank 1: status $rc: $(cat sig.log sig.err | grep -v 'test point' | head -20)"
fi
mpi 2 train --out sig --resume >sig2.log 2>&1 || fail "resume after SIGTERM: $(cat sig2.log)"
same_files "--resume on 2 ranks after the stop: the bytes of a run never stopped" two sig

# SIGUSR1 to mpirun (the way to stop a run with a checkpoint; Ctrl-C gives the ranks 1 s): it
# reaches every rank, they finish the step, rank 0 saves, all stop; the run resumes
mpirun --allow-run-as-root --oversubscribe -np 2 "$TSFM" train $M --epochs 100 --out usr1 >usr1.log 2>&1 &
P=$!
(sleep 100 && kill -9 $P) 2>/dev/null &
W=$!
for i in $(seq 1 400); do [ -f usr1/checkpoint.safetensors ] && break; sleep 0.05; done
kill -USR1 $P
wait $P
rc=$?
kill $W 2>/dev/null
step=$(sed -n 's/^checkpoint \([0-9]*\) .*/\1/p' usr1/train_state.txt)
if [ "$rc" -ne 0 ] && grep -q "interrupted: saved .*(SGD step $step)" usr1.log && [ "$step" -lt 500 ] &&
    mpi 2 train --out usr1 --resume --stop-after 1 >usr1b.log 2>&1 &&
    grep -q "^checkpoint $((step + 1)) " usr1/train_state.txt; then
    pass "SIGUSR1 to mpirun: every rank stops after SGD step $step of 500, rank 0 saves (status $rc); the run resumes"
else
    fail "SIGUSR1 to mpirun: status $rc, step $step: $(cat usr1.log usr1b.log 2>/dev/null | head -20)"
fi

# ---- a failing rank stops every rank -------------------------------------------------------------
# rank 1 checks (and validates) clips 3 and 4 of val.csv: va3.0.clip, cut short after epoch 1
mpi 2 train $M $E --out bad --stop-after 5 >bad1.log 2>&1 || fail "2 ranks, 1 epoch: $(cat bad1.log)"
cp ds/va3.0.clip va3.keep && truncate -s 100 ds/va3.0.clip
mpi 2 train --out bad --resume >bad2.log 2>&1
rc=$?
cp va3.keep ds/va3.0.clip
if [ "$rc" -ne 0 ] && grep -q 'tsf: rank 1: error: .*va3.0.clip (line 5 of .*val.csv): malformed file' bad2.log &&
    [ "$(grep -c 'va3.0.clip' bad2.log)" = 1 ] && grep -q '^checkpoint 5 ' bad/train_state.txt &&
    "$TSF" info bad/checkpoint.safetensors >/dev/null 2>&1; then
    pass "a clip that fails on rank 1: every rank stops (status $rc), rank 0 names rank 1 and the clip once, the checkpoint of epoch 1 stays and loads"
else
    fail "a clip that fails on rank 1: status $rc: $(cat bad2.log)"
fi
mpi 2 train --out bad --resume >bad3.log 2>&1 || fail "resume after the bad clip: $(cat bad3.log)"
same_files "the clip restored, --resume: the bytes of a run never stopped" two bad

# rank 0 cannot save (a file size limit below the checkpoint's size, mid-run): every rank stops
# at that save; the previous checkpoint stays and loads, and the run resumes to the same bytes
mpi 2 train $M $E --out full --stop-after 5 >full1.log 2>&1 || fail "2 ranks, 1 epoch: $(cat full1.log)"
# (bash's ulimit -f counts 1024-byte blocks: between the model's size and the checkpoint's;
# MPI over TCP here, as the limit would stop its shared memory too)
blocks=$((($(stat -c %s full/checkpoint.safetensors) + $(stat -c %s full/model.safetensors)) / 2048))
$MPIRUN --mca btl self,tcp -np 2 bash -c 'if [ "$OMPI_COMM_WORLD_RANK" = 0 ]; then trap "" XFSZ; ulimit -f '"$blocks"'; fi; exec "$TSFM" "$@"' \
    sh train --out full --resume >full2.log 2>&1
rc=$?
if [ "$rc" -ne 0 ] && grep -q 'tsf: error: cannot save the run' full2.log && grep -q '^checkpoint 5 ' full/train_state.txt &&
    "$TSF" info full/checkpoint.safetensors >/dev/null 2>&1; then
    pass "rank 0 cannot save: every rank stops (status $rc), the checkpoint of epoch 1 stays and loads"
else
    fail "rank 0 cannot save: status $rc: $(cat full2.log)"
fi
mpi 2 train --out full --resume >full3.log 2>&1 || fail "resume after the failed save: $(cat full3.log)"
same_files "room again, --resume: the bytes of a run never stopped" two full

# rank 1 killed (SIGKILL at its 9th test point: SGD step 8, epoch 2): mpirun stops rank 0 and says
$MPIRUN -np 2 sh -c 'if [ "$OMPI_COMM_WORLD_RANK" = 1 ]; then export TSF_TEST_KILL_AT=9; fi; exec "$TSFM" "$@"' \
    sh train $M $E --out kill >kill.log 2>&1
rc=$?
if [ "$rc" -ne 0 ] && grep -q -E 'rank 1 .*signal 9' kill.log && grep -q '^checkpoint 5 ' kill/train_state.txt &&
    "$TSF" info kill/checkpoint.safetensors >/dev/null 2>&1; then
    pass "rank 1 killed: mpirun stops rank 0 (status $rc) and names rank 1 and signal 9; the checkpoint of epoch 1 loads"
else
    fail "rank 1 killed: status $rc: $(grep -v 'test point' kill.log | head -20)"
fi
mpi 2 train --out kill --resume >kill2.log 2>&1 || fail "resume after the kill: $(cat kill2.log)"
same_files "--resume after the kill: the bytes of a run never stopped" two kill

# ---- tsf eval on 2 ranks; messages; other commands --------------------------------------------------
"$TSF" eval two/model.safetensors ds/val.csv --spatial-crops 3 --out ev1 >ev1.log 2>&1 || fail "eval: $(cat ev1.log)"
mpi 2 eval two/model.safetensors ds/val.csv --spatial-crops 3 --out ev2 >ev2.log 2>&1 || fail "eval on 2: $(cat ev2.log)"
same_files "tsf eval on 2 ranks: the files of 1 process (eval.txt, predictions, confusion)" ev1 ev2
check "tsf eval on 2 ranks: rank 0 prints the report once" test "$(grep -c '^top-1' ev2.log)" = 1

out=$(mpi 2 train $M $E --out usage --variant nope 2>&1)
rc=$?
if [ "$rc" -ne 0 ] && [ "$(echo "$out" | grep -c 'error:')" = 1 ] && echo "$out" | grep -q 'choose divided'; then
    pass "a usage error on 2 ranks is printed once"
else
    fail "a usage error on 2 ranks: status $rc: $out"
fi
out=$(mpi 2 info two/model.safetensors 2>&1)
rc=$?
if [ "$rc" -ne 0 ] && echo "$out" | grep -q 'runs in one process'; then
    pass "tsf-mpi info on 2 ranks: refused (runs in one process)"
else
    fail "tsf-mpi info on 2 ranks: status $rc: $out"
fi
finish
