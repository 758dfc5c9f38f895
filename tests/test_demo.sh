#!/usr/bin/env bash
# test_demo.sh - the demo program (tools/demo.c, what `make demo` runs) in its --quick mode:
# builds build/demo when it is missing or older than its sources (warning-free, -Werror),
# runs it, and checks the exit status, the results table with the default three variants, the
# CSV log (header, rows for each variant), the SVG plot (<svg ... </svg>), the clip picture,
# that results do not depend on the thread count or the run, --variants all (the five schemes:
# both tables, the CSV, the SVG) and the new schemes' names, and the option errors.
# Prints [PASS] name / [FAIL] name: reason; the last line is "N passed, N failed"; the exit
# status is non-zero on any failure. Takes about 10 s on 2 cores.
#
# Usage (from anywhere):   bash tests/test_demo.sh
#   CC=clang bash tests/test_demo.sh
#   DEMO_CFLAGS="-O1 -g -fsanitize=address,undefined" bash tests/test_demo.sh   (own build)
set -u
cd "$(dirname "$0")/.."
CC=${CC:-cc}
OUT=build/test_demo
BIN=build/demo
WARN="-std=c99 -Wall -Wextra -Wpedantic -Wshadow -Wdouble-promotion -Wstrict-prototypes -Wmissing-prototypes -Werror"
PASSED=0
FAILED=0
rm -rf "$OUT"
mkdir -p "$OUT"

pass() { echo "[PASS] $1"; PASSED=$((PASSED + 1)); }
fail() { echo "[FAIL] $1: $2"; FAILED=$((FAILED + 1)); }
finish() {
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ]
    exit $?
}

# ---- build ------------------------------------------------------------------------------------
build() { # build OUTPUT FLAGS...: with OpenMP when the compiler has it, else without
    local out=$1
    shift
    $CC "$@" -fopenmp $WARN -I. -DTT_NO_STB tools/demo.c -o "$out" -lm >"$OUT/build.log" 2>&1 ||
        $CC "$@" $WARN -I. -DTT_NO_STB tools/demo.c -o "$out" -lm >>"$OUT/build.log" 2>&1
}
if [ -n "${DEMO_CFLAGS:-}" ]; then
    BIN=$OUT/demo
    # shellcheck disable=SC2086
    if build "$BIN" $DEMO_CFLAGS; then pass "build ($CC $DEMO_CFLAGS)"; else
        fail "build" "$(head -c 800 "$OUT/build.log")"
        finish
    fi
elif [ ! -x "$BIN" ] || [ tools/demo.c -nt "$BIN" ] || [ timesformer.h -nt "$BIN" ] ||
    [ tools/tsf_tools.h -nt "$BIN" ]; then
    mkdir -p build
    if build "$BIN" -O2 -g -march=native || build "$BIN" -O2 -g; then pass "build $BIN ($CC)"; else
        fail "build" "$(head -c 800 "$OUT/build.log")"
        finish
    fi
else
    pass "build: $BIN is up to date"
fi

# ---- make demo builds the demo and nothing else -------------------------------------------------
builds=$(make -n -B demo 2>/dev/null | grep -o -- ' -o build/[^ ]*' | tr -d ' ' | tr '\n' ' ')
if [ "$builds" = "-obuild/demo " ]; then pass "make demo compiles only build/demo"
else fail "make demo" "want one compile, of build/demo; make -n -B demo compiles: $builds"; fi

# ---- OpenMP's waiting policy: passive unless the environment sets one (tt_omp_passive) --------
# policy ENV...: OMP_WAIT_POLICY in the environment of a demo started with env ENV... (the
# demo runs itself again at once with OMP_WAIT_POLICY=passive when none is set)
policy() {
    local pid seen="" i
    env "$@" "$BIN" --quick --variants divided --out "$OUT/policy" >/dev/null 2>&1 &
    pid=$!
    for i in $(seq 100); do # what the program itself sees (not the shell before its exec)
        if [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$(readlink -f "$BIN")" ]; then
            seen=$(tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep '^OMP_WAIT_POLICY=')
            [ -n "$seen" ] && break
        fi
        sleep 0.02
    done
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    echo "$seen"
}
if ! grep -q GOMP_ "$BIN" || [ ! -r /proc/self/environ ]; then
    echo "[SKIP] OpenMP's waiting policy (no OpenMP in $BIN, or no /proc)"
else
    p1=$(policy -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT)
    p2=$(policy OMP_WAIT_POLICY=active)
    if [ "$p1" = OMP_WAIT_POLICY=passive ] && [ "$p2" = OMP_WAIT_POLICY=active ]; then
        pass "OMP_WAIT_POLICY: passive when unset, the user's when set"
    else fail "OMP_WAIT_POLICY" "unset gave \"$p1\", active gave \"$p2\""; fi
fi

# ---- the quick run ------------------------------------------------------------------------------
LOG=$OUT/quick.log
"$BIN" --quick --out "$OUT/quick" >"$LOG" 2>&1
rc=$?
if [ "$rc" -eq 0 ]; then pass "demo --quick exits 0"; else
    fail "demo --quick exits 0" "exit status $rc: $(tail -c 800 "$LOG")"
fi
if grep -q -E '^variant +test acc +motion +direction +ms/step +params +GFLOPs +memory +time' "$LOG"
then pass "the results table has its header"; else fail "results table" "no header line"; fi
for v in divided_space_time joint_space_time space_only; do
    if grep -q -E "^$v +[0-9.]+% +[0-9.]+% +[0-9.]+% +[0-9.]+ +[0-9,]+ +[0-9.]+ +[0-9.]+ MB +[0-9:]+$" "$LOG"
    then pass "table row: $v"; else fail "table row: $v" "missing from the table"; fi
done
if grep -q 'space_only attends within each frame' "$LOG"; then pass "space_only is explained"
else fail "space_only explanation" "missing"; fi
if grep -q '^target: not checked (--quick' "$LOG"; then pass "--quick skips the target"
else fail "--quick target line" "missing"; fi
if grep -q '^  step 40/40 ' "$LOG"; then pass "progress lines reach step 40/40"
else fail "progress lines" "no 'step 40/40' line"; fi

CSV=$OUT/quick/log.csv
HEADER='variant,step,epoch,loss,train_acc,test_loss,test_acc,motion_acc,direction_acc,lr,seconds'
if [ -f "$CSV" ] && [ "$(head -n 1 "$CSV")" = "$HEADER" ]; then pass "CSV header"
else fail "CSV header" "got \"$(head -n 1 "$CSV" 2>/dev/null)\""; fi
for v in divided_space_time joint_space_time space_only; do
    n=$(grep -c "^$v,[0-9]*,[0-9.]*,[0-9.]*,[0-9.]*,[0-9.]*,[0-9.]*,[0-9.]*,[0-9.]*,[0-9.]*,[0-9.]*$" "$CSV" 2>/dev/null)
    if [ "${n:-0}" -eq 4 ]; then pass "CSV: 4 rows for $v"; else fail "CSV rows for $v" "want 4, got ${n:-0}"; fi
done
if [ "$(grep -c -v "^variant," "$CSV")" -eq 12 ]; then pass "CSV: nothing else"
else fail "CSV" "unexpected rows: $(grep -v -c '^variant,' "$CSV")"; fi

SVG=$OUT/quick/curves.svg
if [ -f "$SVG" ] && [ "$(head -c 4 "$SVG")" = "<svg" ] && [ "$(tail -n 1 "$SVG")" = "</svg>" ]; then
    pass "SVG starts with <svg and ends with </svg>"
else fail "SVG" "not <svg ... </svg>: $(head -c 80 "$SVG" 2>/dev/null)"; fi
if [ "$(grep -c "<polyline" "$SVG")" -eq 9 ]; then pass "SVG: 3 curves for each of 3 variants"
else fail "SVG curves" "want 9 polylines, got $(grep -c '<polyline' "$SVG")"; fi
if [ "$(grep -c '<' "$SVG")" -eq "$(grep -c '>' "$SVG")" ] && ! grep -q -i 'nan\|inf' "$SVG"; then
    pass "SVG: balanced tags, no NaN/Inf"
else fail "SVG" "unbalanced or non-finite"; fi
if [ "$(head -c 2 "$OUT/quick/clips.ppm" 2>/dev/null)" = "P6" ]; then pass "clips.ppm is a PPM"
else fail "clips.ppm" "missing or not P6"; fi

# ---- determinism: same seed, any thread count, same numbers (the seconds column aside) ----------
strip() { cut -d, -f1-10 "$1"; }
"$BIN" --quick --variants divided --seed 7 --threads 1 --out "$OUT/t1" >"$OUT/t1.log" 2>&1
r1=$?
"$BIN" --quick --variants divided --seed 7 --threads 2 --out "$OUT/t2" >"$OUT/t2.log" 2>&1
r2=$?
if [ $r1 -eq 0 ] && [ $r2 -eq 0 ] && [ -n "$(strip "$OUT/t1/log.csv")" ] &&
    [ "$(strip "$OUT/t1/log.csv")" = "$(strip "$OUT/t2/log.csv")" ]; then
    pass "same results with 1 and 2 threads"
else fail "determinism" "1 vs 2 threads differ (exit $r1, $r2)"; fi
if [ "$(strip "$OUT/t1/log.csv")" != "$(strip "$CSV" | grep -v '^joint\|^space')" ]; then
    pass "another seed gives other results"
else fail "seed" "--seed 7 gave the same log as --seed 1"; fi
if [ "$(grep -c "^divided_space_time" "$OUT/t1/log.csv")" -eq 4 ] &&
    ! grep -q '^joint_space_time\|^space_only' "$OUT/t1/log.csv" &&
    ! grep -q '^joint_space_time \|^space_only ' "$OUT/t1.log"; then
    pass "--variants divided trains only that variant"
else fail "--variants divided" "other variants ran"; fi

# ---- the five schemes: --variants all (a few steps; the table, the per-class table, the CSV, the SVG)
"$BIN" --quick --variants all --steps 8 --evals 2 --train-clips 64 --test-clips 16 --out "$OUT/all" >"$OUT/all.log" 2>&1
rc=$?
if [ $rc -eq 0 ]; then pass "demo --variants all exits 0"; else
    fail "demo --variants all" "exit status $rc: $(tail -c 600 "$OUT/all.log")"
fi
missing=""
for v in divided_space_time joint_space_time space_only sparse_local_global axial; do
    grep -q -E "^$v +[0-9.]+% +[0-9.]+% +[0-9.]+% +[0-9.]+ +[0-9,]+ +[0-9.]+ +[0-9.]+ MB +[0-9:]+$" "$OUT/all.log" || missing="$missing $v"
    [ "$(grep -c "^$v,[0-9]" "$OUT/all/log.csv" 2>/dev/null)" -eq 2 ] || missing="$missing $v(csv)"
done
for v in divided joint space local_global axial; do
    grep -q -E "^$v +[0-9.]+( +[0-9.]+){7}$" "$OUT/all.log" || missing="$missing $v(per-class)"
done
if [ -z "$missing" ]; then pass "--variants all: five table rows, five per-class rows, 2 CSV rows each"
else fail "--variants all" "missing:$missing"; fi
if [ "$(grep -c "<polyline" "$OUT/all/curves.svg")" -eq 15 ] && grep -q '>axial</text>' "$OUT/all/curves.svg"; then
    pass "--variants all: SVG with 3 curves for each of 5 variants, and their legend"
else fail "--variants all: SVG" "$(grep -c '<polyline' "$OUT/all/curves.svg") polylines"; fi
"$BIN" --quick --variants local_global,axial --steps 4 --evals 1 --train-clips 64 --test-clips 16 --out "$OUT/la" >"$OUT/la.log" 2>&1
if [ "$(grep -c -v '^variant,' "$OUT/la/log.csv")" -eq 2 ] && grep -q '^sparse_local_global,4,' "$OUT/la/log.csv" &&
    grep -q '^axial,4,' "$OUT/la/log.csv" && ! grep -q '^divided' "$OUT/la/log.csv"; then
    pass "--variants local_global,axial trains those two only"
else fail "--variants local_global,axial" "$(cat "$OUT/la/log.csv" 2>/dev/null | head -5)"; fi

# ---- options and errors ---------------------------------------------------------------------------
"$BIN" --help >"$OUT/help.log" 2>&1
rc=$?
missing=""
for o in --quick --steps --variants --seed --out --threads --batch --lr --warmup --wd \
    --train-clips --test-clips --evals --frames --size --patch --dim --depth --heads --help; do
    grep -q -- "$o" "$OUT/help.log" || missing="$missing $o"
done
if [ $rc -eq 0 ] && [ -z "$missing" ]; then pass "--help exits 0 and lists every option"
else fail "--help" "exit $rc, missing:$missing"; fi
# err NAME 'expected message' ARGS...: exit status 2 and the message on stderr
err() {
    local name=$1 msg=$2 rc
    shift 2
    "$BIN" "$@" >"$OUT/err.log" 2>&1
    rc=$?
    if [ $rc -eq 2 ] && grep -q -F -- "$msg" "$OUT/err.log"; then pass "$name"
    else fail "$name" "exit $rc, want 2 and \"$msg\": $(head -c 300 "$OUT/err.log")"; fi
}
err "unknown option" "unknown option --bogus" --bogus
err "unknown variant" 'unknown variant "spacetime"' --variants divided,spacetime
err "variant twice" "divided is listed twice" --variants divided,divided
err "variant twice, short and full name" "sparse_local_global is listed twice" --variants local_global,sparse_local_global
err "unknown variant: the names listed" "(use divided, joint, space, local_global, axial, or all)" --variants lg
err "bad --steps" "--steps needs an integer" --steps 0
err "size not a multiple of patch" "--size 30 is not a multiple of --patch 8" --size 30
err "dim not a multiple of heads" "--dim 64 is not a multiple of --heads 5" --heads 5
err "missing value" "--seed needs an integer" --seed
"$BIN" --quick --out /proc/nonexistent/x >"$OUT/err.log" 2>&1
rc=$?
if [ $rc -eq 1 ] && grep -q 'cannot create the output folder' "$OUT/err.log"; then
    pass "unwritable --out: exit 1 with a message"
else fail "unwritable --out" "exit $rc: $(head -c 300 "$OUT/err.log")"; fi

finish
