#!/usr/bin/env bash
# Smoke test of bench/bench_model.c on the tiny config (a few seconds): the driver runs a
# process per measurement, checks 1 and 2 threads give bit-identical results, prints a JSON
# line per measurement and a table; the five schemes (--variants all, --scaling's default);
# --one, --scaling (JSON, table, SVG), --export, --shards, bad options.
# Usage: bash tests/test_bench.sh [BENCH_MODEL_BINARY]   Last line: "N passed, N failed".
set -u
BIN=${1:-build/bench_model}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
PASSED=0
FAILED=0
pass() { echo "[PASS] $1"; PASSED=$((PASSED + 1)); }
fail() {
    echo "[FAIL] $1"
    FAILED=$((FAILED + 1))
    [ -f "$OUT/err" ] && sed 's/^/    /' "$OUT/err" | head -20
}

if "$BIN" --configs tiny --quick --min-ms 1 --threads 1,2 >"$OUT/run" 2>"$OUT/err"; then
    n=$(grep -c '^{"bench":"model"' "$OUT/run")
    rows=$(grep -c '^tiny ' "$OUT/run")
    if [ "$n" -eq 18 ] && [ "$rows" -eq 18 ]; then
        pass "bench_model --configs tiny: 18 measurements (3 variants x infer, train, lean x 2 thread counts), 18 table rows, threads agree"
    else
        fail "bench_model --configs tiny: $n JSON lines and $rows table rows (expected 18, 18)"
    fi
    # lean (recompute + fused SGD) needs less memory than train, by the library's count
    lean=$(grep '"variant":"divided_space_time","mode":"lean","threads":1' "$OUT/run" | sed -E 's/.*"lib_mb":([0-9.]+).*/\1/')
    train=$(grep '"variant":"divided_space_time","mode":"train","threads":1' "$OUT/run" | sed -E 's/.*"lib_mb":([0-9.]+).*/\1/')
    if [ -n "$lean" ] && [ -n "$train" ] && awk -v a="$lean" -v b="$train" 'BEGIN { exit !(a < b) }'; then
        pass "bench_model: lean needs less memory than train ($lean < $train MB)"
    else
        fail "bench_model: lean '$lean' MB, train '$train' MB"
    fi
    if grep '^{' "$OUT/run" | grep -v -q '"peak_rss_mb":[1-9]'; then
        fail "bench_model: a measurement without a peak RSS"
    else
        pass "bench_model: every measurement has its peak RSS"
    fi
else
    fail "bench_model --configs tiny --quick exited with status $?"
fi

if "$BIN" --one --config tiny --variant joint_space_time --mode train --threads 1 --reps 1 \
    >"$OUT/one" 2>"$OUT/err" && [ "$(grep -c '^{' "$OUT/one")" -eq 1 ] &&
    grep -q '"mode":"train".*"gflops":[0-9]' "$OUT/one"; then
    pass "bench_model --one: one JSON line"
else
    fail "bench_model --one"
fi

if "$BIN" --scaling --configs tiny --frames 2,4 --modes infer --variants divided,joint --reps 1 --min-ms 1 \
    --svg "$OUT/s.svg" >"$OUT/scal" 2>"$OUT/err" && [ "$(grep -c '^{' "$OUT/scal")" -eq 4 ] &&
    head -c 4 "$OUT/s.svg" | grep -q '<svg' && tail -n 1 "$OUT/s.svg" | grep -q '</svg>' &&
    [ "$(grep -c '<polyline' "$OUT/s.svg")" -eq 4 ]; then
    pass "bench_model --scaling: 4 measurements, an SVG with 4 curves"
else
    fail "bench_model --scaling"
fi

# the five schemes: --variants all (short names too), and --scaling runs all five by default
if "$BIN" --configs tiny --quick --min-ms 1 --threads 1 --modes infer --variants all >"$OUT/all" 2>"$OUT/err" &&
    [ "$(grep -c '^{"bench":"model"' "$OUT/all")" -eq 5 ] &&
    grep -q '^tiny  *sparse_local_global  *infer ' "$OUT/all" && grep -q '^tiny  *axial  *infer ' "$OUT/all"; then
    pass "bench_model --variants all: the five schemes"
else
    fail "bench_model --variants all: $(grep -c '^{' "$OUT/all" 2>/dev/null) JSON lines"
fi
if "$BIN" --configs tiny --quick --min-ms 1 --threads 1 --modes train --variants local_global,axial >"$OUT/two" 2>"$OUT/err" &&
    [ "$(grep -c '^{"bench":"model"' "$OUT/two")" -eq 2 ] &&
    grep -q '"variant":"sparse_local_global","mode":"train"' "$OUT/two" && grep -q '"variant":"axial","mode":"train"' "$OUT/two"; then
    pass "bench_model --variants local_global,axial: their training steps"
else
    fail "bench_model --variants local_global,axial"
fi
if "$BIN" --scaling --configs tiny --frames 2,4 --modes infer --threads 1 --reps 1 --min-ms 1 \
    --svg "$OUT/s5.svg" >"$OUT/scal5" 2>"$OUT/err" && [ "$(grep -c '^{' "$OUT/scal5")" -eq 10 ] &&
    [ "$(grep -c '<polyline' "$OUT/s5.svg")" -eq 10 ] && grep -q '>sparse_local_global</text>' "$OUT/s5.svg" &&
    grep -q '^axial  *1  *4 ' "$OUT/scal5"; then
    pass "bench_model --scaling: the five schemes by default (10 measurements, 10 curves: time and memory)"
else
    fail "bench_model --scaling, five schemes: $(grep -c '^{' "$OUT/scal5" 2>/dev/null) JSON lines"
fi

if "$BIN" --plot "$OUT/scal" --svg "$OUT/p.svg" >/dev/null 2>"$OUT/err" &&
    [ "$(grep -c '<polyline' "$OUT/p.svg")" -eq 4 ]; then
    pass "bench_model --plot: the SVG again from the saved output"
else
    fail "bench_model --plot"
fi

if "$BIN" --export "$OUT/exp" --variant divided >/dev/null 2>"$OUT/err" &&
    for f in model.safetensors input.bin labels.bin logits0.bin logits1.bin meta.json; do
        [ -s "$OUT/exp/$f" ] || exit 1
    done; then
    pass "bench_model --export: weights, input, logits, meta"
else
    fail "bench_model --export"
fi

# --shards: training steps on shards of the batch, one model each, in one parallel region (the
# demo's step); the driver fails unless 1 and 2 threads give the same bits
if "$BIN" --configs tiny,demo --shards 2 --variants divided --quick --min-ms 1 --threads 1,2 \
    >"$OUT/sh" 2>"$OUT/err" && [ "$(grep -c '^{"bench":"model".*"mode":"train".*"shards":2}' "$OUT/sh")" -eq 4 ] &&
    [ "$(grep -Ec '^(tiny|demo) +divided_space_time +train ' "$OUT/sh")" -eq 4 ] &&
    grep -q '^# bench_model --shards 2:' "$OUT/sh" &&
    grep -q '"config":"demo".*"B":16,.*"D":64,"depth":2,"heads":8,"classes":8' "$OUT/sh"; then
    pass "bench_model --shards 2: training steps of tiny and the demo's model on 2 shards, 1 and 2 threads agree"
else
    fail "bench_model --shards 2: $(grep -c '^{' "$OUT/sh" 2>/dev/null) JSON lines"
fi
# the gradients of 2 shards differ from one model's only by the order of the sums
a=$("$BIN" --one --config tiny --variant joint --mode train --threads 1 --reps 1 2>/dev/null | sed -E 's/.*"hash_logits":"([0-9a-f]+)".*/\1/')
b=$("$BIN" --one --config tiny --variant joint --mode train --threads 1 --reps 1 --shards 2 2>/dev/null | sed -E 's/.*"hash_logits":"([0-9a-f]+)".*/\1/')
if [ -n "$a" ] && [ "$a" = "$b" ]; then
    pass "bench_model --shards 2: the shards' logits are one model's logits"
else
    fail "bench_model --shards 2: logits hash '$b', one model's '$a'"
fi
rcs=""
for args in "--configs tiny --shards 3" "--configs tiny --shards 2 --modes infer" "--shards 0" \
    "--scaling --configs tiny --shards 2" "--one --config tiny --variant divided --mode lean --shards 2"; do
    # shellcheck disable=SC2086
    "$BIN" $args --quick --reps 1 --min-ms 1 >/dev/null 2>"$OUT/err"
    rcs="$rcs $?"
    grep -q -- '--shards' "$OUT/err" || rcs="$rcs(no message)"
done
if [ "$rcs" = " 2 2 2 2 2" ]; then
    pass "bench_model --shards: a count that does not divide the batch, infer or lean modes, 0, --scaling exit with status 2 and a message"
else
    fail "bench_model --shards: bad uses exit with$rcs (expected 2 each, with a message)"
fi

"$BIN" --frobnicate >/dev/null 2>&1
rc=$?
"$BIN" --configs huge >/dev/null 2>&1
rc2=$?
"$BIN" --variants divided,sparse >/dev/null 2>&1
rc3=$?
if [ "$rc" -eq 2 ] && [ "$rc2" -eq 2 ] && [ "$rc3" -eq 2 ]; then
    pass "bench_model: unknown options, configs and variants exit with status 2"
else
    fail "bench_model: bad options exit with $rc, $rc2 and $rc3 (expected 2)"
fi

# make bench's driver: one path (the portable kernels, which build anywhere), one shape; its
# table and the summary row with the shape's GFLOP/s (no OpenBLAS on the portable path).
ROOT=$(cd "$(dirname "$0")/.." && pwd)
if bash "$ROOT/bench/bench_isa.sh" --isa portable --quick --filter small393_proj_fwd \
    --threads 1 >"$OUT/isa" 2>"$OUT/err" &&
    grep -q '"bench":"matmul","shape":"small393_proj_fwd"' "$OUT/isa" &&
    grep -q '"bench":"matmul_summary","threads":1,"simd":"portable"' "$OUT/isa" &&
    grep -Eq '^portable +1 +null +null' "$OUT/isa"; then
    pass "bench_isa.sh: the portable path's JSON lines, table and summary row"
else
    fail "bench_isa.sh --isa portable: no table or summary row"
    sed 's/^/    /' "$OUT/isa" | tail -8
fi
"$ROOT/bench/bench_isa.sh" --isa sse9 >/dev/null 2>&1
rc=$?
if [ "$rc" -eq 2 ]; then pass "bench_isa.sh: an unknown ISA exits with status 2"; else
    fail "bench_isa.sh --isa sse9 exits with $rc (expected 2)"; fi

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
