#!/usr/bin/env bash
# `tsf train` when its checkpoint cannot be written (reliability, issue 8): a run resumed under
# a file size limit smaller than its checkpoint (ulimit -f, SIGXFSZ ignored: every write past
# the limit fails as on a full disk) must stop with exit status 1 and a message, leave the
# previous checkpoint and its train_state.txt byte-identical and loadable, leave no temporary
# file, no train_state.next and no lock, and continue with --resume once there is room again,
# to the very files of a run that never failed. A run that cannot even write its lock (a limit
# of 0) stops at once and changes nothing.
# Usage: bash tests/test_fail_cli.sh [TSF_BINARY]   (default build/tsf; CC is honoured)
# Prints [PASS]/[FAIL] lines and "N passed, N failed"; exit status 1 on any failure.
set -u
TSF=${1:-build/tsf}
CC=${CC:-cc}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
case "$TSF" in /*) ;; *) TSF=$PWD/$TSF ;; esac
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
if [ ! -x "$TSF" ]; then
    fail "no tsf binary at $TSF"
    finish
fi
cd "$TMP" || exit 1

# 8 clips of 6 frames, 16 x 16: a square moving right (class 0) or left (class 1)
cat >gen.c <<'EOF'
#define TIMESFORMER_IMPLEMENTATION
#include "timesformer.h"
#include <stdio.h>
int main(void) {
    static unsigned char px[6 * 16 * 16 * 3];
    int i, t, y, x, c;
    for (i = 0; i < 8; i++) {
        tsf_clip_header h = {6, 16, 16, 3, 30.0f, i % 2};
        char path[64];
        for (t = 0; t < 6; t++)
            for (y = 0; y < 16; y++)
                for (x = 0; x < 16; x++)
                    for (c = 0; c < 3; c++) {
                        int sx = i % 2 ? 10 - t : 2 + t, in = x >= sx && x < sx + 4 && y >= 6 && y < 10;
                        px[((t * 16 + y) * 16 + x) * 3 + c] = (unsigned char)(in ? 220 : 30 + (x * 7 + y * 3 + i) % 40);
                    }
        snprintf(path, sizeof path, "c%d.clip", i);
        if (tsf_clip_save(path, &h, px) != TSF_OK) return 1;
    }
    return 0;
}
EOF
if ! $CC -std=c99 -O1 -I"$ROOT" gen.c -o gen -lm || ! ./gen; then
    fail "cannot make the test clips"
    finish
fi
printf 'right\nleft\n' >classes.txt
{
    echo "path,label"
    for i in 0 1 2 3 4 5 6 7; do echo "c$i.clip,$((i % 2))"; done
} >train.csv

FLAGS="--frames 4 --size 16 --patch 8 --dim 16 --depth 1 --heads 2 --batch 4 --stride 1 --lr 0.01"
# shellcheck disable=SC2086
# (the first epoch of a run of 2: 8 clips, batch 4, 2 steps an epoch; a resumed run keeps its
# --epochs)
if ! "$TSF" train --train train.csv --out run $FLAGS --epochs 2 --stop-after 2 -q >first.log 2>&1; then
    fail "a first epoch: $(cat first.log)"
    finish
fi
cp run/checkpoint.safetensors before.safetensors
cp run/train_state.txt before-state.txt
size=$(wc -c <before.safetensors)
blocks=$((size * 3 / 4096)) # ulimit -f counts 1024-byte blocks: 3/4 of the checkpoint

# the second epoch cannot be saved: 3/4 of the checkpoint fits (the model file, which --resume
# writes again first, fits: a checkpoint holds the model and as much momentum)
(
    trap '' XFSZ
    ulimit -f "$blocks"
    exec "$TSF" train --out run --resume --epochs 2
) >limited.log 2>&1
rc=$?
if [ "$rc" -eq 1 ] && grep -q "cannot save the run" limited.log; then
    pass "a checkpoint that does not fit: exit status 1, \"$(grep -o 'cannot save the run[^(]*' limited.log | head -n 1)\""
else
    fail "a checkpoint that does not fit: want status 1 and \"cannot save the run\", got $rc: $(cat limited.log)"
fi
check "the previous checkpoint is byte-identical" cmp -s before.safetensors run/checkpoint.safetensors
check "... and its train_state.txt" cmp -s before-state.txt run/train_state.txt
check "no temporary file, train_state.next or lock is left" test "$(ls run | tr '\n' ' ')" = \
    "args.txt checkpoint.safetensors curves.svg log.csv model.safetensors train_state.txt "
loads() { "$TSF" info run/checkpoint.safetensors >/dev/null 2>&1; }
check "the previous checkpoint loads (tsf info)" loads

# not a byte fits: not even the lock's pid (the messages go through a pipe, which the limit
# does not cover)
(
    trap '' XFSZ
    ulimit -f 0
    exec "$TSF" train --out run --resume --epochs 2
) 2>&1 | cat >limited0.log
rc=${PIPESTATUS[0]}
if [ "$rc" -eq 1 ] && grep -q "cannot write run/lock" limited0.log &&
    cmp -s before.safetensors run/checkpoint.safetensors && cmp -s before-state.txt run/train_state.txt &&
    [ "$(ls run | tr '\n' ' ')" = "args.txt checkpoint.safetensors curves.svg log.csv model.safetensors train_state.txt " ]; then
    pass "no room for the lock: exit status 1, no lock left, the checkpoint and train_state.txt untouched"
else
    fail "no room for the lock: status $rc: $(cat limited0.log; ls run)"
fi

# with room again the run goes on from the same checkpoint, to the files of a run never stopped
# (made in another folder under the same name: curves.svg names the folder as given)
mkdir -p ref && (cd ref && "$TSF" train --train ../train.csv --out run $FLAGS --epochs 2 -q) >ref.log 2>&1
if "$TSF" train --out run --resume --epochs 2 -q >resumed.log 2>&1 &&
    ! cmp -s before.safetensors run/checkpoint.safetensors; then
    pass "--resume with room again saves the second epoch"
else
    fail "--resume with room again: $(cat resumed.log)"
fi
if differ=$(diff -r -q ref/run run 2>&1); then
    pass "... and every file of the run equals that of a run that never failed"
else
    fail "the resumed run differs from one never stopped: $differ"
fi
finish
