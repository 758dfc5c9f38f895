#!/usr/bin/env bash
# test_examples.sh - runs every example program (examples/*.c, built by `make` into build/)
# in a scratch folder and checks its exit status and the key lines of its output: the loss
# falling in 01 and 03, the top classes of 02 and 04 (also on the files the others made), the
# table of 05, and the error messages for a missing file and a model/clip mismatch.
# Prints [PASS] name (ms) / [FAIL] name: reason; the last line is "N passed, N failed"; the
# exit status is non-zero on any failure. About 10 s on 2 cores.
#
# Usage (from anywhere):   bash tests/test_examples.sh [BUILD_DIR]     (default build/)
# An example missing from BUILD_DIR is built first with $CC (default cc) and the Makefile's
# flags (-O2 -g -std=c99 -W... -march=native -fopenmp); EXAMPLES_CFLAGS replaces them.
set -u
cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)
BUILD=${1:-build}
case "$BUILD" in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
CC=${CC:-cc}
OMPFLAG=$(echo 'int main(void){return 0;}' | "$CC" -fopenmp -x c - -o /dev/null 2>/dev/null && echo -fopenmp)
CFLAGS=${EXAMPLES_CFLAGS:-"-O2 -g -std=c99 -Wall -Wextra -Wpedantic -Wshadow -Wdouble-promotion -Wstrict-prototypes -Wmissing-prototypes -march=native $OMPFLAG"}
W=$(mktemp -d "${TMPDIR:-/tmp}/tsf_examples.XXXXXX")
trap 'rm -rf "$W"' EXIT
LOG=$W/log
TIMEOUT=$(command -v timeout >/dev/null 2>&1 && echo "timeout 120")
# The outputs are bit-identical for any thread count and wait policy; a passive wait keeps
# OpenMP's threads from spinning against each other when the machine is busy.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
PASSED=0
FAILED=0

pass() { echo "[PASS] $1 ($2 ms)"; PASSED=$((PASSED + 1)); }
fail() {
    echo "[FAIL] $1: $2"
    sed 's/^/    /' "$LOG" | tail -n 15
    FAILED=$((FAILED + 1))
}
ms() { local t; t=$(date +%s%N); case "$t" in *N) echo $((${t%N} * 1000)) ;; *) echo "${t%??????}" ;; esac; }

# run NAME ARGS...: run build/NAME in the scratch folder; sets RC and T (ms), output in $LOG.
run() {
    local name=$1 t0
    shift
    t0=$(ms)
    (cd "$W/run" && $TIMEOUT "$BUILD/$name" "$@") >"$LOG" 2>&1
    RC=$?
    T=$(($(ms) - t0))
}
# has TEXT: the output holds TEXT.
has() { grep -q -F -- "$1" "$LOG"; }
crashed() { [ "$RC" -ge 124 ] || grep -q -E 'Sanitizer|runtime error:|Assertion' "$LOG"; }

# ---- build what is missing -------------------------------------------------------------------
mkdir -p "$BUILD" "$W/run"
for src in examples/*.c; do
    name=$(basename "$src" .c)
    # built already, and newer than its source and the header
    [ -x "$BUILD/$name" ] && [ "$BUILD/$name" -nt "$src" ] && [ "$BUILD/$name" -nt timesformer.h ] &&
        continue
    echo "building $BUILD/$name"
    # shellcheck disable=SC2086
    if ! "$CC" $CFLAGS -I. "$src" -o "$BUILD/$name" -lm >"$LOG" 2>&1 || [ -s "$LOG" ]; then
        fail "build $name" "$CC $CFLAGS -I. $src -o $BUILD/$name -lm (errors or warnings)"
    fi
done

# ---- 01_kernels: the loss falls, every batch right at the end ---------------------------------
run 01_kernels
first=$(awk '/^step/ {print $4; exit}' "$LOG")
last=$(awk '/^step/ {v = $4} END {print v}' "$LOG")
if [ "$RC" -ne 0 ]; then fail 01_kernels "exit status $RC"
elif ! has "done ("; then fail 01_kernels "no \"done (\" line"
elif ! awk -v a="$first" -v b="$last" 'BEGIN {exit !(a > 0.5 && b < a / 10)}'; then
    fail 01_kernels "the loss did not fall: first $first, last $last"
else pass "01_kernels: loss $first -> $last" "$T"; fi

# ---- 02_forward_clip: writes a clip, three test views, top-3 ------------------------------------
run 02_forward_clip
if [ "$RC" -ne 0 ]; then fail 02_forward_clip "exit status $RC"
elif ! has "wrote moving_square.clip: 24 frames of 96 x 64" || [ ! -s "$W/run/moving_square.clip" ]; then
    fail 02_forward_clip "no moving_square.clip"
elif ! has "mean over 3 views: top-3" || [ "$(grep -c '^view [0-2] logits:' "$LOG")" -ne 3 ]; then
    fail 02_forward_clip "want 3 views and their mean"
elif ! awk '/^  class/ {n++; p = $5 + 0; if (!(p > 0 && p < 1) || (n > 1 && p > q)) bad = 1; q = p}
             END {exit !(n == 3 && !bad)}' "$LOG"; then
    fail 02_forward_clip "want 3 classes with probabilities in (0, 1), largest first"
else pass "02_forward_clip" "$T"; fi

# ---- 03_train_loop: the loss falls, the held-out accuracy rises, a checkpoint -----------------
run 03_train_loop
first=$(awk '/^step/ {print $6; exit}' "$LOG")
last=$(awk '/^step/ {v = $6} END {print v}' "$LOG")
acc=$(awk '/^step/ {v = $NF} END {sub("%", "", v); print v}' "$LOG")
if [ "$RC" -ne 0 ]; then fail 03_train_loop "exit status $RC"
elif [ "$(grep -c '^step' "$LOG")" -lt 3 ]; then fail 03_train_loop "want a line every 50 steps"
elif ! awk -v a="$first" -v b="$last" 'BEGIN {exit !(a > 1.2 && b < a / 4)}'; then
    fail 03_train_loop "the loss did not fall: first $first, last $last"
elif ! awk -v a="$acc" 'BEGIN {exit !(a >= 80)}'; then
    fail 03_train_loop "held-out accuracy $acc%, want >= 80%"
elif ! has "saved moving_squares.ckpt" || [ ! -s "$W/run/moving_squares.ckpt" ]; then
    fail 03_train_loop "no checkpoint moving_squares.ckpt"
else pass "03_train_loop: loss $first -> $last, held-out accuracy $acc%" "$T"; fi

# ---- 04_hf_classify: makes a Hugging Face-style folder, top-5 of its id2label -----------------
LABELS='abseiling|air drumming|answering questions|applauding|applying cream|archery|arm wrestling|arranging flowers'
top5() { # 5 lines "  p  label": p in (0, 1), largest first, summing to at most 1, known labels
    awk -v labels="$LABELS" '
        BEGIN { n = split(labels, l, "|"); for (i = 1; i <= n; i++) ok[l[i]] = 1 }
        f && /^  [0-9]/ { p = $1 + 0; lab = $0; sub(/^  [0-9.]+  /, "", lab)
                          if (!(p > 0 && p < 1) || (k && p > q) || !(lab in ok)) bad = 1
                          q = p; s += p; k++ }
        /^top-5:/ { f = 1 }
        END { exit !(k == 5 && !bad && s <= 1.0001) }' "$LOG"
}
run 04_hf_classify
if [ "$RC" -ne 0 ]; then fail 04_hf_classify "exit status $RC"
elif ! has "made tiny-timesformer/" || [ ! -s "$W/run/tiny-timesformer/config.json" ] ||
    [ ! -s "$W/run/tiny-timesformer/model.safetensors" ]; then
    fail 04_hf_classify "no tiny-timesformer/ folder"
elif ! has "tiny-timesformer: divided_space_time, 4 frames of 32 x 32, 8 classes"; then
    fail 04_hf_classify "the folder's config.json was not applied"
elif ! top5; then fail 04_hf_classify "want the top-5 labels of id2label with probabilities"
else pass "04_hf_classify" "$T"; fi

# The examples on each other's files: 04 on 02's clip, 02 on 04's folder.
run 04_hf_classify tiny-timesformer moving_square.clip
if [ "$RC" -ne 0 ]; then fail "04_hf_classify FOLDER CLIP" "exit status $RC"
elif ! has "frames: 4 of the 24 in moving_square.clip" || ! top5; then
    fail "04_hf_classify FOLDER CLIP" "want 4 frames of the clip and a top-5"
else pass "04_hf_classify FOLDER CLIP" "$T"; fi

run 02_forward_clip moving_square.clip tiny-timesformer
if [ "$RC" -ne 0 ]; then fail "02_forward_clip CLIP FOLDER" "exit status $RC"
elif ! has "view 0: frames 0 7 15 23" || ! grep -q -E "^  class [0-7]  p = .*  ($LABELS)\$" "$LOG"; then
    fail "02_forward_clip CLIP FOLDER" "want the folder's 4 frames and class names"
else pass "02_forward_clip CLIP FOLDER" "$T"; fi

# Errors: a missing clip, a missing folder, a model whose channels do not match the clip's.
for args in "02_forward_clip no-such.clip|no-such.clip: cannot open" "04_hf_classify no-such-folder|no-such-folder" \
    "02_forward_clip moving_square.clip moving_squares.ckpt|has 3 channels, the model takes 1"; do
    want=${args#*|}
    # shellcheck disable=SC2086
    run ${args%|*}
    if [ "$RC" -eq 0 ]; then fail "error: ${args%|*}" "exit status 0, want an error"
    elif crashed; then fail "error: ${args%|*}" "crashed (exit status $RC)"
    elif ! has "$want"; then fail "error: ${args%|*}" "the message lacks \"$want\""
    else pass "error: ${args%|*}" "$T"; fi
done

# ---- 05_variants: one row per scheme; axial has the most parameters, then divided and
# sparse_local_global (the same count), joint, space_only the least --------------------------
run 05_variants
if [ "$RC" -ne 0 ]; then fail 05_variants "exit status $RC"
elif ! awk '$1 ~ /^(divided_space_time|joint_space_time|space_only|sparse_local_global|axial)$/ &&
            NF == 11 { p[$1] = $2; if (!($3 > 0 && $4 > 0 && $5 > 0 && $6 > 0)) bad = 1; n++ }
            END { exit !(n == 5 && !bad && p["axial"] > p["divided_space_time"] &&
                         p["divided_space_time"] == p["sparse_local_global"] &&
                         p["divided_space_time"] > p["joint_space_time"] &&
                         p["joint_space_time"] > p["space_only"]) }' "$LOG"; then
    fail 05_variants "want a row of params, GFLOPs, ms, MB, MB and 5 logits for each variant"
else pass "05_variants" "$T"; fi

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
