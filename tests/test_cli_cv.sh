#!/usr/bin/env bash
# End-to-end tests of training on folds and of `tsf cv` (tools/tsf_cv.c, issue 18), on a tiny
# dataset laid out like UCF (class folders, v_<Class>_g<NN>_c<MM> clips; a small C generator
# below writes them with tsf_clip_save) and split by mkdataset --folds 3 --test-share 0.15
# --ucf (built here from tools/mkdataset.c when stb is installed; without it the folds are
# written by hand, group by group). Checked:
#   - tsf train --data DIR --fold k: trains on the other folds, validates on fold k, keeps
#     --data and --fold in args.txt, resumes bit for bit; --all-folds; the errors (a fold out of
#     range, a clip in two splits, folds without --fold, --fold with --train, another fold on
#     --resume)
#   - tsf cv, K = 3, 2 epochs, --best: a line per fold, whose numbers are tsf eval's of that
#     fold's model_best.safetensors; the printed mean and sample standard deviation are those
#     of the per-fold numbers (and cv.csv's); the final model trains on all folds for the
#     rounded mean of the folds' best epochs and its test score is tsf eval's
#   - tsf cv killed (SIGKILL, SIGINT) at points inside each fold and the final run, then run
#     again: every file of OUT byte-identical to an uninterrupted cv's
#   - a moved dataset folder still works (relative paths), for tsf train and tsf cv
# Usage: bash tests/test_cli_cv.sh [TSF_BINARY]   (default build/tsf; CC, STB_DIR are honoured)
# Prints [PASS]/[FAIL] lines and "N passed, N failed"; exit status 1 on any failure.
set -u
TSF=${1:-build/tsf}
CC=${CC:-cc}
STB_DIR=${STB_DIR:-/usr/include/stb}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
case "$TSF" in /*) ;; *) TSF=$PWD/$TSF ;; esac
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
PASSED=0
FAILED=0
T0=$(date +%s)
pass() { echo "[PASS] $1"; PASSED=$((PASSED + 1)); }
fail() { echo "[FAIL] $1"; FAILED=$((FAILED + 1)); }
check() {
    local name=$1
    shift
    if "$@"; then pass "$name"; else fail "$name"; fi
}
# expect_error NAME WANT_STATUS PATTERN COMMAND...: the command fails with that status and its
# output matches the extended regex PATTERN
expect_error() {
    local name=$1 want=$2 pattern=$3 out rc
    shift 3
    out=$("$@" 2>&1)
    rc=$?
    if [ "$rc" -eq "$want" ] && echo "$out" | grep -E -q -- "$pattern"; then
        pass "$name: $(echo "$out" | grep -E -- "$pattern" | head -n 1 | cut -c1-150)"
    else
        fail "$name: want status $want and /$pattern/, got status $rc: $out"
    fi
}
finish() {
    echo "(test_cli_cv.sh: $(($(date +%s) - T0)) s)"
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ]
    exit $?
}
if [ ! -x "$TSF" ]; then
    fail "no tsf binary at $TSF (make build/tsf)"
    finish
fi
cd "$TMP" || exit 1

# gen DIR PREFIX LABEL COUNT SEED: COUNT clips DIR/PREFIX_<i>.clip of 8 frames of 32 x 32, a
# square moving right, left, down or up (labels 0 .. 3) or standing (4, 5) on noise
cat >gen.c <<'EOF'
#define TIMESFORMER_IMPLEMENTATION
#include "timesformer.h"
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
    static unsigned char px[8 * 32 * 32 * 3];
    int label, count, i, t, y, x, c;
    tsf_rng rng;
    if (argc != 6) return 2;
    label = atoi(argv[3]), count = atoi(argv[4]);
    tsf_rng_seed(&rng, (unsigned long long)atoi(argv[5]));
    for (i = 0; i < count; i++) {
        tsf_clip_header h = {8, 32, 32, 3, 30.0f, -1};
        int x0 = (int)(tsf_rng_u32(&rng) % 8), y0 = (int)(tsf_rng_u32(&rng) % 8);
        char path[512];
        for (t = 0; t < 8; t++) {
            int dx = label == 0 ? 2 * t : label == 1 ? -2 * t : 0;
            int dy = label == 2 ? 2 * t : label == 3 ? -2 * t : 0;
            for (y = 0; y < 32; y++)
                for (x = 0; x < 32; x++)
                    for (c = 0; c < 3; c++) {
                        int in = x >= x0 + dx + 10 && x < x0 + dx + 18 && y >= y0 + dy + 10 && y < y0 + dy + 18;
                        px[((t * 32 + y) * 32 + x) * 3 + c] = (unsigned char)(in ? 220u : 40u + tsf_rng_u32(&rng) % 60u);
                    }
        }
        snprintf(path, sizeof path, "%s/%s_%d.clip", argv[1], argv[2], i);
        if (tsf_clip_save(path, &h, px) != TSF_OK) return 1;
    }
    return 0;
}
EOF
if ! $CC -std=c99 -O1 -I"$ROOT" gen.c -o gen -lm 2>gen.log; then
    fail "the test generator does not build: $(cat gen.log)"
    finish
fi

# ---- the dataset: 6 classes x 6 groups g01 .. g06, 1 to 3 clips a class and group (72) ------
# (so the folds differ in their classes' shares, and so do the folds' scores); the project
# folder P holds the videos and the dataset, as a user's would
names=(right left down up still fixed)
for l in 0 1 2 3 4 5; do
    n=${names[$l]}
    mkdir -p P/videos/$n
    for g in 1 2 3 4 5 6; do ./gen P/videos/$n v_${n}_g0${g}_c01 $l $((1 + (g + l) % 3)) $((10 * g + l)) || exit 1; done
done
if [ -f "$STB_DIR/stb_image.h" ] && $CC -std=c99 -O0 -I"$ROOT" -I"$STB_DIR" "$ROOT/tools/mkdataset.c" -o mkdataset -lm 2>mk.log; then
    if ./mkdataset P/videos P/ds --folds 3 --test-share 0.15 --ucf >mk.out 2>&1; then
        pass "mkdataset P/videos P/ds --folds 3 --test-share 0.15 --ucf: $(head -n 1 mk.out)"
    else
        fail "mkdataset: $(cat mk.out)"
        finish
    fi
else
    echo "[SKIP] mkdataset is not built here (no stb in $STB_DIR): the folds are written by hand"
    mkdir -p P/ds && printf '%s\n' "${names[@]}" | sort >P/ds/classes.txt
    split_of() { case $1 in 1 | 2) echo fold_1 ;; 3 | 4) echo fold_2 ;; 5) echo fold_3 ;; *) echo test ;; esac; }
    for s in fold_1 fold_2 fold_3 test; do echo path,label >P/ds/$s.csv; done
    for f in P/videos/*/*.clip; do
        n=${f#P/videos/}; cls=${n%%/*}; g=${n#*_g0}; g=${g%%_*}
        echo "../videos/$n,$cls" >>"P/ds/$(split_of "$g").csv"
    done
fi
DS=$TMP/P/ds
count() { grep -c -v '^path,label$' "$1"; }
N1=$(count $DS/fold_1.csv) N2=$(count $DS/fold_2.csv) N3=$(count $DS/fold_3.csv) NT=$(count $DS/test.csv)
check "the dataset: 72 clips in test and 3 folds, each non-empty" test $((N1 + N2 + N3 + NT)) -eq 72 -a "$N1" -gt 0 -a "$N2" -gt 0 -a "$N3" -gt 0 -a "$NT" -gt 0

export OMP_NUM_THREADS=1
M="--size 32 --patch 8 --frames 4 --dim 32 --depth 1 --heads 2 --stride 2 --batch 4 --seed 1 --threads 1 --lr 0.05"

# ---- tsf train --fold -------------------------------------------------------------------------
if "$TSF" train --data P/ds --fold 2 --out f2 $M --epochs 2 >f2.log 2>&1 &&
    grep -q "train: $((N1 + N3)) clips of 6 classes, validation $N2 clips" f2.log; then
    pass "train --fold 2: trains on folds 1 and 3 ($((N1 + N3)) clips), validates on fold 2 ($N2 clips)"
else
    fail "train --fold 2: $(cat f2.log)"
fi
check "train --fold: args.txt keeps --data (absolute) and --fold, not the manifests" \
    test -n "$(grep -x -- "--data $DS" f2/args.txt)" -a -n "$(grep -x -- '--fold 2' f2/args.txt)" -a -z "$(grep -e '^--train' -e '^--val' -e '^--classes' f2/args.txt)"
check "train --fold: model_best.safetensors and the best column" test -s f2/model_best.safetensors -a "$(grep -c ',1$' f2/log.csv)" -eq 1
"$TSF" train --data P/ds --fold 2 --out f2r $M --epochs 2 --stop-after 5 -q >f2r.log 2>&1 &&
    (cd f2r && "$TSF" train --out . --resume -q) >>f2r.log 2>&1
check "train --fold: stopped inside epoch 1, resumed with --resume alone: the same model, model_best, log" \
    test -z "$(for f in model.safetensors model_best.safetensors log.csv checkpoint.safetensors; do cmp f2/$f f2r/$f 2>&1; done)"
if "$TSF" train --data P/ds --all-folds --out fa $M --epochs 1 >fa.log 2>&1 &&
    grep -q "train: $((N1 + N2 + N3)) clips of 6 classes; 1 epoch" fa.log && [ ! -e fa/model_best.safetensors ]; then
    pass "train --all-folds: trains on all $((N1 + N2 + N3)) clips of the folds, no validation, no model_best"
else
    fail "train --all-folds: $(cat fa.log)"
fi
expect_error "train --fold: a fold out of range" 1 "--fold 4, but P/ds holds 3 folds \(fold_1.csv .. fold_3.csv\)" \
    "$TSF" train --data P/ds --fold 4 --out x $M
expect_error "train: folds and no --fold" 2 "P/ds holds 3 folds \(fold_1.csv .. fold_3.csv\) and no train.csv: give --fold K" \
    "$TSF" train --data P/ds --out x $M
expect_error "train --fold with --train" 2 "--fold takes the class names and the clips from --data DIR" \
    "$TSF" train --data P/ds --fold 1 --train P/ds/fold_1.csv --out x $M
expect_error "train --fold on a folder without folds" 1 "P/videos: no fold_1.csv and fold_2.csv: make folds with mkdataset" \
    "$TSF" train --data P/videos --fold 1 --out x $M
expect_error "train --resume with another fold" 2 "the run validates on another fold: drop --fold" \
    "$TSF" train --out f2 --resume --fold 3
cp -r P/ds P/leak && sed -n 2p P/ds/fold_1.csv >>P/leak/fold_3.csv
expect_error "train --fold: a clip in two folds stops it, naming both files and lines" 1 \
    "is in P/leak/fold_1.csv \(line 2\) and in P/leak/fold_3.csv \(line $((N3 + 2))\): a clip must be in one split only" \
    "$TSF" train --data P/leak --fold 2 --out x $M
cp P/ds/fold_3.csv P/leak/fold_3.csv && sed -n 2p P/ds/fold_2.csv >>P/leak/test.csv
expect_error "train --fold: a clip in a fold and in test.csv stops it too" 1 "and in P/leak/test.csv \(line $((NT + 2))\)" \
    "$TSF" train --data P/leak --fold 1 --out x $M
check "errors: no run folder left behind" test ! -e x

# ---- tsf cv -----------------------------------------------------------------------------------
CV="$M --epochs 2 --best"
mkdir -p ref
# shellcheck disable=SC2086
(cd ref && "$TSF" cv --data ../P/ds --out cv $CV) >cv.log 2>&1
rc=$?
grep '^cv: fold [0-9]/3: ' cv.log >folds.txt
if [ $rc -eq 0 ] && [ "$(wc -l <folds.txt)" -eq 3 ] && grep -q '^cv: 3 folds: top-1 ' cv.log && grep -q '^cv: test: top-1 ' cv.log; then
    pass "cv: 3 folds, 2 epochs, --best: a line per fold, the mean over the folds, the test"
else
    fail "cv: status $rc: $(cat cv.log)"
fi
# the printed mean and sample standard deviation, from the printed per-fold numbers: each of
# those is rounded to 2 decimals (off by 0.005 at most), which moves their mean by 0.005 and
# their std by 0.005 * sqrt(3 / 2) at most, and the printed figures are rounded again: they
# agree within 0.012 (cv.csv's 4 decimals are checked more closely below)
stats=$(sed -E 's/.*top-1 ([0-9.]+)%  top-5 ([0-9.]+)%.*/\1 \2/' folds.txt | awk '
    { a[NR] = $1; b[NR] = $2; sa += $1; sb += $2 }
    END { ma = sa / NR; mb = sb / NR; for (i = 1; i <= NR; i++) { qa += (a[i] - ma) ^ 2; qb += (b[i] - mb) ^ 2 }
          printf "%.4f %.4f %.4f %.4f", ma, sqrt(qa / (NR - 1)), mb, sqrt(qb / (NR - 1)) }')
printed=$(sed -n -E 's/^cv: 3 folds: top-1 ([0-9.]+) ± ([0-9.]+)%  top-5 ([0-9.]+) ± ([0-9.]+)%.*/\1 \2 \3 \4/p' cv.log)
if [ -n "$printed" ] && awk -v s="$stats" -v p="$printed" 'BEGIN { split(s, x, " "); split(p, y, " ")
        for (i = 1; i <= 4; i++) if (x[i] - y[i] > 0.012 || y[i] - x[i] > 0.012) exit 1 }'; then
    pass "cv: the printed mean ± std ($printed) are those of the per-fold numbers ($stats; std: n - 1)"
else
    fail "cv: printed mean ± std \"$printed\", from the folds: $stats"
fi
check "cv: the per-fold numbers differ (the test of the std is not trivial)" \
    test "$(sed -E 's/.*top-1 ([0-9.]+)%  top-5 ([0-9.]+)%.*/\1 \2/' folds.txt | sort -u | wc -l)" -gt 1
# cv.csv: the same numbers at 4 decimals, its mean and std rows those of its fold rows
if awk -F, 'NR == 1 { next } $1 ~ /^[0-9]+$/ { a[++n] = $4; b[n] = $5; sa += $4; sb += $5 }
        $1 == "mean" { m1 = $4; m5 = $5 } $1 == "std" { s1 = $4; s5 = $5 }
        END { ma = sa / n; mb = sb / n; for (i = 1; i <= n; i++) { qa += (a[i] - ma) ^ 2; qb += (b[i] - mb) ^ 2 }
              d = (ma - m1) ^ 2 + (mb - m5) ^ 2 + (sqrt(qa / (n - 1)) - s1) ^ 2 + (sqrt(qb / (n - 1)) - s5) ^ 2
              exit !(n == 3 && d < 1e-6) }' ref/cv/cv.csv &&
    [ "$(awk -F, '$1 ~ /^[0-9]+$/ { printf "%.2f %.2f\n", $4, $5 }' ref/cv/cv.csv)" = \
        "$(sed -E 's/.*top-1 ([0-9.]+)%  top-5 ([0-9.]+)%.*/\1 \2/' folds.txt)" ]; then
    pass "cv: cv.csv holds the per-fold numbers, and their mean and std"
else
    fail "cv: cv.csv: $(cat ref/cv/cv.csv)"
fi
# each fold's numbers are tsf eval's of its model_best.safetensors on its fold
bad=""
for k in 1 2 3; do
    want=$(sed -n -E "s/^cv: fold $k\/3: top-1 ([0-9.]+)%  top-5 ([0-9.]+)%.*/\1 \2/p" cv.log)
    got=$("$TSF" eval ref/cv/fold_$k P/ds/fold_$k.csv --best -q 2>&1 | sed -n -E 's/^top-([15]) +([0-9.]+)%.*/\2/p' | tr '\n' ' ')
    [ "$got" = "$want " ] || bad="$bad fold $k: cv $want, eval $got;"
done
if [ -z "$bad" ]; then pass "cv: each fold's numbers are tsf eval --best's of that fold's run"; else fail "cv vs eval:$bad"; fi
# the final run: all folds, for the rounded mean of the folds' best epochs; then the test
E=$(sed -E 's/.*of epoch ([0-9]+)\)$/\1/' folds.txt | awk '{ s += $1 } END { printf "%d", s / NR + 0.5 }')
if [ "$(grep -c '^[0-9]' ref/cv/final/log.csv)" -eq "$E" ] && grep -q -x -- "--all-folds" ref/cv/final/args.txt &&
    grep -q -x -- "--stop-epoch $E" ref/cv/final/args.txt && grep -q "trained on all 3 folds for $E epoch" cv.log; then
    pass "cv: the final run trains on all folds for $E epochs (the rounded mean of the folds' best epochs)"
else
    fail "cv: the final run: E $E: $(cat ref/cv/final/log.csv ref/cv/final/args.txt)"
fi
want=$(sed -n -E 's/^cv: test: top-1 ([0-9.]+)%  top-5 ([0-9.]+)%.*/\1 \2/p' cv.log)
got=$("$TSF" eval ref/cv/final P/ds/test.csv -q 2>&1 | sed -n -E 's/^top-([15]) +([0-9.]+)%.*/\2/p' | tr '\n' ' ')
check "cv: the test score is tsf eval's of the final model on test.csv ($want)" test "$got" = "$want "
check "cv: the files: cv.txt (the cv lines), cv.csv, the runs, test/eval.txt and the other eval files" \
    test "$(ls ref/cv | tr '\n' ' ')" = "cv.csv cv.txt final fold_1 fold_2 fold_3 test " -a \
    "$(ls ref/cv/test | tr '\n' ' ')" = "confusion.csv confusion.svg eval.txt predictions.csv " -a \
    "$(cat ref/cv/cv.txt)" = "$(grep -E '^cv: (fold|3 folds|test)' cv.log)"
# a second cv on the same folder resumes every run: nothing to do, the same results
# shellcheck disable=SC2086
(cd ref && "$TSF" cv --data ../P/ds --out cv $CV) >cv2.log 2>&1
check "cv: run again, it resumes the finished runs (nothing to do) and prints the same" \
    test "$(grep -c 'nothing to do' cv2.log)" -eq 4 -a "$(grep '^cv: ' cv2.log | grep -v resuming)" = "$(grep '^cv: ' cv.log | grep -v training)"

# ---- tsf cv stopped and run again --------------------------------------------------------------
# the test hook numbers the points of all of cv's runs in turn (about 65 a run): points inside
# fold 1, 2, 3 and the final run; SIGKILL or SIGINT there, then the same command again
bad=""
cases=0
for at in KILL:20 KILL:100 INT:150 KILL:170 KILL:230 INT:250; do
    cases=$((cases + 1))
    sig=${at%%:*} n=${at#*:} d=k$cases
    mkdir -p $d
    # shellcheck disable=SC2086
    { (cd $d && TSF_TEST_KILL_AT=$n TSF_TEST_SIGNAL=$sig exec "$TSF" cv --data ../P/ds --out cv $CV -q >log 2>&1); } 2>/dev/null
    rc=$?
    want=$([ "$sig" = KILL ] && echo 137 || echo 130)
    [ $rc -eq "$want" ] || bad="$bad $at(status $rc)"
    # shellcheck disable=SC2086
    (cd $d && "$TSF" cv --data ../P/ds --out cv $CV -q >>log 2>&1) || bad="$bad $at(again: $(tail -n 2 $d/log | tr '\n' ' '))"
    out=$(diff -r -q ref/cv $d/cv 2>&1) || bad="$bad $at($(echo "$out" | tr '\n' ' '))"
    rm -rf $d
done
if [ -z "$bad" ]; then
    pass "cv: SIGKILL or SIGINT inside each fold and the final run, then the same command: every file of OUT byte-identical ($cases cases)"
else
    fail "cv stopped and run again:$bad"
fi

# ---- a moved dataset folder ---------------------------------------------------------------------
mv P Q
if "$TSF" train --data Q/ds --fold 1 --out mv $M --epochs 1 -q >mv.log 2>&1 &&
    "$TSF" eval ref/cv/fold_3 Q/ds/fold_3.csv --best -q >mv2.log 2>&1; then
    pass "a moved dataset folder: tsf train --fold and tsf eval read its manifests (paths relative to them)"
else
    fail "a moved dataset folder: $(cat mv.log mv2.log)"
fi
cp ref/cv/cv.csv cv.before
# shellcheck disable=SC2086
if (cd ref && "$TSF" cv --data ../Q/ds --out cv $CV -q) >mv3.log 2>&1 && cmp -s cv.before ref/cv/cv.csv &&
    grep -q -x -- "--data $TMP/Q/ds" ref/cv/fold_2/args.txt; then
    pass "a moved dataset folder: tsf cv --data NEW resumes the runs on it (args.txt follows) with the same cv.csv"
else
    fail "a moved dataset folder and tsf cv: $(cat mv3.log)"
fi
mv Q P

# ---- usage ----------------------------------------------------------------------------------------
help=$("$TSF" cv --help 2>&1)
missing=""
for opt in $(sed -n '/^static const tr_def cv_defs/,/^};/p' "$ROOT/tools/tsf_cv.c" | grep -o '{"--[a-z0-9-]*"' | tr -d '{"') --overwrite --quiet; do
    echo "$help" | grep -q -- "$opt\\b" || missing="$missing $opt"
done
if [ -z "$missing" ]; then pass "cv --help lists every option of its own"; else fail "cv --help misses:$missing"; fi
expect_error "cv: no --data" 2 "give the dataset folder with --data DIR" "$TSF" cv --out x $M
expect_error "cv: an option cv sets itself" 2 "cv: --fold: tsf cv sets it for each run" "$TSF" cv --data P/ds --out x --fold 2
expect_error "cv: an unknown option" 2 "unknown option --bogus \(tsf cv --help lists every option\)" "$TSF" cv --data P/ds --out x --bogus
expect_error "cv: a folder without folds" 1 "cv: P/videos: no fold_1.csv and fold_2.csv" "$TSF" cv --data P/videos --out x $M
check "cv: errors leave no OUT folder behind" test ! -e x
finish
