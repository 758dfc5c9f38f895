#!/usr/bin/env bash
# Crash recovery of `tsf train` (tools/tsf_train.c, issue 15). A reference run of 3 epochs of a
# tiny model is made once; then runs of the same command are stopped in every way tested here,
# recovered as a user would (`tsf train --out run --resume`; the first command again when the
# run had not yet written args.txt), and every file of the run folder is compared with the
# reference's (cmp): the same names, the same bytes, no lock or temporary file left. No file
# is excluded: tsf train writes no wall-clock time. The runs keep a best model (issue 18): in the
# reference run validation improves, then worsens, so model_best.safetensors is written after
# epoch 1, replaced after epoch 2 and kept at epoch 3, and log.csv's best column moves with it;
# the longer run stops early (--early-stop), an epoch before its end.
#   - SIGKILL at every fault point of the run (TSF_TEST_KILL_AT, the test hook of
#     tsf_train.c: each step of each file write, the lock, every SGD step and validation batch)
#   - SIGKILL at every second point, with a second SIGKILL inside the recovering --resume
#   - SIGINT at every fault point, SIGTERM (the same handler) at every third (a checkpoint
#     inside an epoch or inside validation; the resumed epoch's log row must be the whole
#     epoch's)
#   - --stop-after N for every SGD step N
#   - SIGKILL, SIGINT and SIGTERM at random moments of a longer run
#   - a completed run with its model file, log and curves from an earlier epoch and stale
#     temporary files: --resume repairs it; a run of an older tsf (no train_state.txt)
#   - one run a folder: a second tsf train on a folder in use is refused and changes nothing;
#     two started at once leave one run's files; a lock left by a dead process is taken over
#   - a symbolic link, FIFO or folder at a name tsf train writes is refused, untouched
# Usage: bash tests/test_faults.sh [TSF_BINARY]   (default build/tsf; CC is honoured)
# Prints [PASS]/[FAIL] lines and "N passed, N failed"; exit status 1 on any failure.
set -u
TSF=${1:-build/tsf}
CC=${CC:-cc}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
case "$TSF" in /*) ;; *) TSF=$PWD/$TSF ;; esac
TMP=$(mktemp -d)
JOBS=""
trap 'for p in $JOBS; do kill -9 $p 2>/dev/null; done; rm -rf "$TMP"' EXIT
PASSED=0
FAILED=0
pass() { echo "[PASS] $1"; PASSED=$((PASSED + 1)); }
fail() { echo "[FAIL] $1"; FAILED=$((FAILED + 1)); }
finish() {
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ]
    exit $?
}
# result NAME CASES BAD: one test for a group of cases; BAD lists the cases that failed. The
# seconds since the last group are shown.
LAST=$(date +%s%N)
result() {
    local now secs
    now=$(date +%s%N)
    secs=$(awk -v a="$LAST" -v b="$now" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
    LAST=$now
    if [ -z "$3" ]; then pass "$1 ($2 cases, $secs s)"; else fail "$1: failed cases:$3"; fi
}
if [ ! -x "$TSF" ]; then
    fail "no tsf binary at $TSF"
    finish
fi
cd "$TMP" || exit 1
T0=$(date +%s)

# 28 clips of 6 frames, 16 x 16, a square moving right (class 0) or left (class 1): 8 to
# train, 4 to validate, 16 more for the longer run
cat >gen.c <<'EOF'
#define TIMESFORMER_IMPLEMENTATION
#include "timesformer.h"
#include <stdio.h>
int main(void) {
    static unsigned char px[6 * 16 * 16 * 3];
    int i, t, y, x, c;
    for (i = 0; i < 28; i++) {
        tsf_clip_header h = {6, 16, 16, 3, 30.0f, i % 2};
        char path[64];
        for (t = 0; t < 6; t++)
            for (y = 0; y < 16; y++)
                for (x = 0; x < 16; x++)
                    for (c = 0; c < 3; c++) {
                        int sx = i % 2 ? 10 - t : 2 + t, in = x >= sx && x < sx + 4 && y >= 6 && y < 10;
                        px[((t * 16 + y) * 16 + x) * 3 + c] = (unsigned char)(in ? 220 : 30 + (x * 7 + y * 3 + 5 * i) % 40);
                    }
        snprintf(path, sizeof path, "data/c%d.clip", i);
        if (tsf_clip_save(path, &h, px) != TSF_OK) return 1;
    }
    return 0;
}
EOF
mkdir -p data
if ! $CC -std=c99 -O0 -I"$ROOT" gen.c -o gen -lm || ! ./gen; then
    fail "cannot make the test clips"
    finish
fi
printf 'right\nleft\n' >data/classes.txt
{
    echo "path,label"
    for i in 0 1 2 3 4 5 6 7; do echo "c$i.clip,$((i % 2))"; done
} >data/train.csv
{
    echo "path,label"
    for i in 8 9 10 11; do echo "c$i.clip,$((i % 2))"; done
} >data/val.csv
{
    echo "path,label"
    for i in 0 1 2 3 4 5 6 7 $(seq 12 27); do echo "c$i.clip,$((i % 2))"; done
} >data/train24.csv

export OMP_NUM_THREADS=1
unset TSF_TEST_KILL_AT TSF_TEST_SIGNAL
D=$TMP/data
# Both runs keep the original code's initialisation and the random flip (--init original
# --flip), with which the trajectories below were made: tsf train's defaults are --init
# scratch and, for the classes right and left, no flip.
# 3 epochs of 4 SGD steps (8 clips, batch 2), 2 validation batches an epoch, the best model by
# validation loss (best at epoch 2 of 3); every command runs in its own folder with --out run,
# since curves.svg names the folder as given
F="--train $D/train.csv --val $D/val.csv --classes $D/classes.txt --frames 4 --size 16 --patch 8 --dim 16 --depth 1 --heads 2 --batch 2 --stride 1 --lr 0.01 --epochs 3 --seed 3 --threads 1 -q --best-metric loss --init original --flip"
# the longer run, for signals at random moments: 5 epochs of 12 steps, but validation top-1 is
# best at epoch 1, so --early-stop 3 ends it after epoch 4
G="--train $D/train24.csv --val $D/val.csv --classes $D/classes.txt --frames 4 --size 16 --patch 8 --dim 16 --depth 1 --heads 2 --batch 2 --stride 1 --lr 0.01 --epochs 5 --seed 4 --threads 1 -q --early-stop 3 --init original --flip"

# run DIR FLAGS... : tsf train in DIR (created), output to DIR/log; its exit status, with bash's
# notice of a killed process kept quiet
run() {
    local dir=$1
    shift
    mkdir -p "$dir"
    { (cd "$dir" && exec "$TSF" train "$@" >>log 2>&1); } 2>/dev/null
}
# recover DIR FLAGS: what a user does after a crash: --resume, or (no run to resume: it was
# stopped before args.txt existed) the first command again. 0 when the run is complete.
recover() {
    local dir=$1 i
    for i in 1 2 3; do
        if { (cd "$dir" && exec "$TSF" train --out run --resume -q >>log 2>&1); } 2>/dev/null; then return 0; fi
        if tail -n 1 "$dir/log" | grep -q "no run/checkpoint.safetensors to resume"; then
            # shellcheck disable=SC2086
            run "$dir" $2 --out run && return 0
        fi
    done
    return 1
}
# same REF DIR: DIR/run has the files of REF/run, byte for byte, and no other (diff -r -q: one
# process for all of them); prints the differences
same() {
    local out
    out=$(diff -r -q "$1/run" "$2/run" 2>&1) && return 0
    echo "$out" | sed -e "s|$2/run/||g" -e "s|$1/run/||g" | tr '\n' ' '
    return 1
}

# ---- the reference runs and the fault points ----------------------------------------------------
# shellcheck disable=SC2086
run ref $F --out run
# shellcheck disable=SC2086
run refg $G --out run
if [ "$(ls ref/run | tr '\n' ' ')" = "args.txt checkpoint.safetensors curves.svg log.csv model.safetensors model_best.safetensors train_state.txt " ] &&
    [ "$(grep -c '^[0-9]' ref/run/log.csv)" -eq 3 ] && [ "$(cut -d, -f9 ref/run/log.csv | tr '\n' ' ')" = "best 0 1 0 " ] &&
    [ "$(cut -d, -f1,9 refg/run/log.csv | tr '\n' ' ')" = "epoch,best 1,1 2,0 3,0 4,0 " ] &&
    ! cmp -s ref/run/model.safetensors ref/run/model_best.safetensors; then
    pass "the reference runs: args.txt, checkpoint, curves, log (3 rows; best: epoch 2), model, model_best (not the last model), train_state.txt; no lock left; the longer run stopped early after epoch 4"
else
    fail "the reference runs: $(ls ref/run refg/run; cat ref/log refg/log)"
    finish
fi
# a second run of the same command writes the same bytes (nothing in the files depends on time)
# shellcheck disable=SC2086
run ref2 $F --out run
if out=$(same ref ref2); then pass "two runs of one command write the same bytes"; else fail "two runs differ:$out"; fi
# shellcheck disable=SC2086
(cd ref && TSF_TEST_KILL_AT=0 exec "$TSF" train $F --out points 2>&1 >/dev/null) | grep '^tsf: test point ' >points.txt
N=$(wc -l <points.txt)
kinds=0
for k in "lock taken" "args.txt.tmp created" "args.txt.tmp written" "args.txt renamed" "SGD step" \
    "validation batch" "train_state.next renamed" "checkpoint.safetensors partly written" \
    "checkpoint.safetensors saved" "renamed to train_state.txt" "model.safetensors saved" \
    "model_best.safetensors partly written" "model_best.safetensors saved" \
    "log.csv renamed" "curves.svg renamed" "lock about to be removed"; do
    grep -q "$k" points.txt && kinds=$((kinds + 1))
done
if [ "$N" -ge 50 ] && [ "$kinds" -eq 16 ] && [ "$(grep -c 'model_best.safetensors saved' points.txt)" -eq 2 ]; then
    pass "the test hook numbers $N fault points, of every kind (model_best.safetensors saved twice)"
else
    fail "the test hook: $N points, $kinds of 16 kinds: $(cat points.txt)"
    finish
fi

# ---- SIGKILL at every point, then --resume ------------------------------------------------------
bad=""
for n in $(seq 1 "$N"); do
    # shellcheck disable=SC2086
    TSF_TEST_KILL_AT=$n run k$n $F --out run
    rc=$?
    if [ $rc -ne 137 ]; then bad="$bad $n(status $rc)"; fi
    if ! recover k$n "$F"; then bad="$bad $n(recovery: $(tail -n 2 k$n/log | tr '\n' ' '))"
    elif ! out=$(same ref k$n); then bad="$bad $n($out)"; fi
    rm -rf k$n
done
result "SIGKILL at each point, then --resume: every file byte-identical to the reference" "$N" "$bad"

# ---- SIGKILL at every second point, a second SIGKILL inside the recovery, then --resume ----------
bad=""
cases=0
for n in $(seq 1 2 "$N"); do
    cases=$((cases + 1))
    m=$((1 + (n * 7) % 23)) # a point of the recovering run: its lock, removals, writes, steps
    # shellcheck disable=SC2086
    TSF_TEST_KILL_AT=$n run kk$n $F --out run
    TSF_TEST_KILL_AT=$m run kk$n --out run --resume -q
    if ! recover kk$n "$F"; then bad="$bad $n/$m(recovery: $(tail -n 2 kk$n/log | tr '\n' ' '))"
    elif ! out=$(same ref kk$n); then bad="$bad $n/$m($out)"; fi
    rm -rf kk$n
done
result "SIGKILL at every second point, SIGKILL again inside the resume, then --resume: byte-identical" $cases "$bad"

# ---- SIGINT at every point, SIGTERM at every third ----------------------------------------------
for sig in INT TERM; do
    bad=""
    cases=0
    want=$([ $sig = INT ] && echo 130 || echo 143)
    every=$([ $sig = INT ] && echo 1 || echo 3)
    for n in $(seq 1 "$every" "$N"); do
        cases=$((cases + 1))
        # shellcheck disable=SC2086
        TSF_TEST_KILL_AT=$n TSF_TEST_SIGNAL=$sig run s$n $F --out run
        rc=$?
        if [ $rc -ne 0 ] && [ $rc -ne $want ]; then bad="$bad $n(status $rc)"; fi
        if ! recover s$n "$F"; then bad="$bad $n(recovery: $(tail -n 2 s$n/log | tr '\n' ' '))"
        elif ! out=$(same ref s$n); then bad="$bad $n($out)"; fi
        rm -rf s$n
    done
    result "SIG$sig at $([ $sig = INT ] && echo each || echo every third) point (inside epochs, inside validation, in saves), then --resume: byte-identical" $cases "$bad"
done

# ---- --stop-after at every SGD step -------------------------------------------------------------
bad=""
for n in $(seq 1 11); do
    # shellcheck disable=SC2086
    run st$n $F --out run --stop-after $n || bad="$bad $n(status $?)"
    if ! recover st$n "$F"; then bad="$bad $n(recovery)"
    elif ! out=$(same ref st$n); then bad="$bad $n($out)"; fi
    rm -rf st$n
done
result "--stop-after N at each SGD step, then --resume: byte-identical (the interrupted epoch's log row too)" 11 "$bad"

# ---- signals at random moments of a longer run ---------------------------------------------------
# (the run takes about a second: startup, clip checks, 60 SGD steps, 5 validations and saves)
bad=""
cases=0
RANDOM=15
for sig in KILL KILL KILL KILL INT INT TERM TERM; do
    cases=$((cases + 1))
    d=r$cases
    mkdir -p $d
    # shellcheck disable=SC2086
    { (cd $d && exec "$TSF" train $G --out run >>log 2>&1) & } 2>/dev/null
    pid=$!
    JOBS="$JOBS $pid"
    ms=$((RANDOM % 900))
    sleep "$(printf '0.%03d' $ms)"
    kill -$sig $pid 2>/dev/null
    { wait $pid; } 2>/dev/null
    if ! recover $d "$G"; then bad="$bad $sig@${ms}ms(recovery)"
    elif ! out=$(same refg $d); then bad="$bad $sig@${ms}ms($out)"; fi
    rm -rf $d
done
result "SIGKILL, SIGINT, SIGTERM at random moments, then --resume: byte-identical" $cases "$bad"

# ---- a completed run left with old files is repaired by --resume -----------------------------------
# the last epoch's checkpoint saved, but the model, log and curves of epoch 2 and stale .tmp
# files (as an older tsf left them after a kill): --resume writes them again
# shellcheck disable=SC2086
run old $F --out run --stop-after 8 && mkdir -p old2 && cp -r old/run old2/run
run old --out run --resume -q
cp old2/run/model.safetensors old2/run/log.csv old2/run/curves.svg old/run/
echo partial >old/run/model.safetensors.tmp
echo partial >old/run/log.csv.tmp
if (cd old && "$TSF" train --out run --resume >>log 2>&1) && grep -q "nothing to do" old/log &&
    out=$(same ref old); then
    pass "a complete run with an old model, log and curves and stale .tmp files: --resume repairs it"
else
    fail "repair of a complete run: $out $(tail -n 3 old/log)"
fi
# a run of an older tsf: no train_state.txt, a log.csv with a seconds column; stopped after
# epoch 2, it resumes and keeps its rows
mkdir -p older && cp -r old2/run older/run && rm older/run/train_state.txt
sed -i -e '1s/$/,seconds/' -e '2,$s/$/,0.25/' older/run/log.csv
if (cd older && "$TSF" train --out run --resume -q >>log 2>&1) &&
    cmp -s ref/run/log.csv older/run/log.csv && cmp -s ref/run/model.safetensors older/run/model.safetensors; then
    pass "a run of an older tsf (no train_state.txt, a seconds column) resumes with its rows"
else
    fail "a run of an older tsf: $(cat older/log; cat older/run/log.csv)"
fi

# ---- one run a folder ---------------------------------------------------------------------------
mkdir -p busy
# shellcheck disable=SC2086
{ (cd busy && exec "$TSF" train $F --out run --epochs 100000 >>log 2>&1) & } 2>/dev/null
holder=$!
JOBS="$JOBS $holder"
for _ in $(seq 200); do [ -s busy/run/log.csv ] && break; sleep 0.05; done
cp busy/run/args.txt busy-args.txt
bad=""
for extra in "--epochs 2 --seed 5" "--epochs 2 --seed 5 --overwrite"; do
    # shellcheck disable=SC2086
    out=$(cd busy && "$TSF" train $F --out run $extra 2>&1)
    rc=$?
    if [ $rc -ne 1 ] || ! echo "$out" | grep -q "run is in use by another tsf train (pid $holder, run/lock)"; then
        bad="$bad [$extra: status $rc: $out]"
    fi
done
out=$(cd busy && "$TSF" train --out run --resume 2>&1)
rc=$?
if [ $rc -ne 1 ] || ! echo "$out" | grep -q "in use by another tsf train (pid $holder"; then bad="$bad [--resume: status $rc: $out]"; fi
if [ -z "$bad" ] && cmp -s busy-args.txt busy/run/args.txt && [ "$(cat busy/run/lock)" = "$holder" ]; then
    pass "a folder in use: a second run, --overwrite and --resume are refused (status 1, the holder's pid), args.txt and the lock unchanged"
else
    fail "a folder in use:$bad"
fi
kill -INT $holder
{ wait $holder; } 2>/dev/null
rc=$?
if [ $rc -eq 130 ] && [ ! -e busy/run/lock ]; then
    pass "the holder, stopped by Ctrl-C: status 130, its lock removed"
else
    fail "the holder after Ctrl-C: status $rc, $(ls busy/run)"
fi
# a lock left by a process that has ended (its pid written, no record lock held)
sh -c 'exit 0' &
dead=$!
wait $dead
echo $dead >busy/run/lock
if out=$(cd busy && "$TSF" train --out run --resume --stop-after 1 2>&1) &&
    echo "$out" | grep -q "run/lock was left by pid $dead, which no longer holds it: taking it over" &&
    [ ! -e busy/run/lock ]; then
    pass "a stale lock (pid $dead, ended) is taken over, and removed at exit"
else
    fail "a stale lock: $out"
fi
# a lock file naming a live process that holds no lock on it (a pid reused since): taken over
echo $$ >busy/run/lock
if out=$(cd busy && "$TSF" train --out run --resume --stop-after 1 2>&1) &&
    echo "$out" | grep -q "taking it over" && [ ! -e busy/run/lock ]; then
    pass "a lock file whose pid lives but holds no lock (a reused pid) is taken over"
else
    fail "a lock file with a reused pid: $out"
fi
# two fresh runs started at once on one new folder: one wins, the other is refused, and the
# folder holds the winner's files, byte for byte (each run's reference made apart)
# shellcheck disable=SC2086
run refb $F --out run --seed 5
bad=""
for trial in 1 2 3 4; do
    d=both$trial
    mkdir -p $d
    # shellcheck disable=SC2086
    { (cd $d && exec "$TSF" train $F --out run >>log3 2>&1) & } 2>/dev/null
    p3=$!
    # shellcheck disable=SC2086
    { (cd $d && exec "$TSF" train $F --out run --seed 5 >>log5 2>&1) & } 2>/dev/null
    p5=$!
    JOBS="$JOBS $p3 $p5"
    { wait $p3; } 2>/dev/null
    rc3=$?
    { wait $p5; } 2>/dev/null
    rc5=$?
    if [ $rc3 -eq 0 ] && [ $rc5 -ne 0 ] && same ref $d >/dev/null; then :
    elif [ $rc5 -eq 0 ] && [ $rc3 -ne 0 ] && same refb $d >/dev/null; then :
    else bad="$bad $trial(status $rc3 and $rc5: $(cat $d/log3 $d/log5 | tr '\n' ' '))"; fi
    if [ $rc3 -ne 0 ] && ! grep -q "in use by another tsf train\|already holds a run" $d/log3; then bad="$bad $trial(seed 3: $(cat $d/log3))"; fi
    if [ $rc5 -ne 0 ] && ! grep -q "in use by another tsf train\|already holds a run" $d/log5; then bad="$bad $trial(seed 5: $(cat $d/log5))"; fi
done
result "two runs started at once on one folder: one exits 0, the other is refused, the folder holds only the winner's files" 4 "$bad"

# ---- names that are no regular files ---------------------------------------------------------------
echo "keep me" >victim
bad=""
cases=0
# refused NAME SETUP FLAGS: with SETUP done in a copy of the complete reference run (or a new
# folder), tsf train must exit 1 naming NAME, within 60 s, leaving victim and NAME as they were
refused() {
    local name=$1 setup=$2 flags=$3 d=bad$cases out rc
    cases=$((cases + 1))
    mkdir -p $d
    if [ "$flags" = resume ]; then cp -r ref/run $d/run; else mkdir -p $d/run; fi
    (cd $d/run && eval "$setup")
    local before
    before=$(ls -l $d/run/$name)
    if [ "$flags" = resume ]; then
        out=$(cd $d && timeout 60 "$TSF" train --out run --resume --epochs 4 2>&1)
    else
        # shellcheck disable=SC2086
        out=$(cd $d && timeout 60 "$TSF" train $F --out run 2>&1)
    fi
    rc=$?
    if [ $rc -ne 1 ] || ! echo "$out" | grep -q "run/$name: not a regular file (a .*): refusing to replace it"; then
        bad="$bad [$name: status $rc: $out]"
    elif [ "$(cat victim)" != "keep me" ] || [ "$(ls -l $d/run/$name)" != "$before" ]; then
        bad="$bad [$name: changed]"
    elif [ "$flags" = resume ] && ! cmp -s ref/run/checkpoint.safetensors $d/run/checkpoint.safetensors; then
        bad="$bad [$name: the checkpoint changed]"
    fi
}
refused log.csv "ln -s $TMP/victim log.csv" new
refused curves.svg "mkfifo curves.svg" new
refused model.safetensors.tmp "ln -s $TMP/victim model.safetensors.tmp" new
refused args.txt "mkdir args.txt" new
refused model_best.safetensors "ln -s $TMP/victim model_best.safetensors" new
refused lock "ln -s $TMP/victim lock" new
refused checkpoint.safetensors "rm checkpoint.safetensors && ln -s $TMP/ref/run/checkpoint.safetensors checkpoint.safetensors" resume
refused model.safetensors "rm model.safetensors && mkfifo model.safetensors" resume
refused model_best.safetensors.tmp "ln -s $TMP/victim model_best.safetensors.tmp" resume
refused train_state.next "ln -s $TMP/victim train_state.next" resume
refused checkpoint.safetensors.tmp "ln -s $TMP/victim checkpoint.safetensors.tmp" resume
result "a symbolic link, FIFO or folder at a name tsf train writes: refused with its name, left alone" $cases "$bad"
# one that appears during a run: the next write of that name stops the run, the link stays
mkdir -p late
# shellcheck disable=SC2086
{ (cd late && exec "$TSF" train $F --out run --epochs 100000 >>log 2>&1) & } 2>/dev/null
p=$!
JOBS="$JOBS $p"
for _ in $(seq 200); do [ -s late/run/curves.svg ] && break; sleep 0.05; done
ln -sf "$TMP/victim" late/run/curves.svg
for _ in $(seq 600); do kill -0 $p 2>/dev/null || break; sleep 0.05; done
kill -9 $p 2>/dev/null
{ wait $p; } 2>/dev/null
rc=$?
if [ $rc -eq 1 ] && grep -q "run/curves.svg: not a regular file (a symbolic link)" late/log && [ -L late/run/curves.svg ] &&
    [ "$(cat victim)" = "keep me" ] && [ ! -e late/run/lock ]; then
    pass "a symbolic link put in place of curves.svg during a run: the run stops (status 1) and leaves it"
else
    fail "a link during a run: status $rc: $(cat late/log)"
fi

echo "(test_faults.sh: $(($(date +%s) - T0)) s)"
finish
