#!/usr/bin/env bash
# The whole test suite: builds tests/test_main.c (and the C++, link and static tests) in
# every configuration the library promises to work in, runs each, and sums the results.
# Each configuration's lines are tagged with its name, e.g. "[PASS] omp: matmul_nt ...".
# A configuration that fails to build, crashes or prints no summary counts as a failure.
# The last line is "N passed, N failed"; the exit status is non-zero on any failure.
# Usage: bash tests/run_all.sh [CONFIG-SUBSTRING]   (CC and CXX are honoured)
set -u
cd "$(dirname "$0")/.."
CC=${CC:-cc}
CXX=${CXX:-c++}
ONLY=${1:-}
OUT=build/tests
mkdir -p "$OUT"
: >"$OUT/times.txt" # each suite's wall time, build included; the slowest are printed at the end
WARN="-std=c99 -Wall -Wextra -Wpedantic -Wshadow -Wdouble-promotion -Wstrict-prototypes -Wmissing-prototypes -Werror"
WARNXX="-Wall -Wextra -Wpedantic -Wshadow -Wdouble-promotion -Werror"
PASSED=0
FAILED=0

have() { command -v "$1" >/dev/null 2>&1; }
pass() { echo "[PASS] $1"; PASSED=$((PASSED + 1)); }
fail() { echo "[FAIL] $1"; FAILED=$((FAILED + 1)); }

# The run has three passes over the list of suites below. The first (PHASE=build) only
# collects every build command; they then run TEST_JOBS at a time (default: the number of
# cores), each command once however many suites share it (the same command builds the same
# binary). The second (PHASE=run) queues every suite whose build succeeded; the suites then
# run TEST_JOBS at a time too, the slowest first, each into its own log (no two suites share
# a file or a folder). The third (PHASE=report) prints and counts each suite's results, in
# the order of the list.
JOBS=${TEST_JOBS:-$(nproc 2>/dev/null || echo 2)}
BUILDS=$OUT/builds
RUNS=$OUT/runs
# the suites that took longest (tens of seconds): queued first, so that none starts last
SLOW="tools-asan neon tools examples mpi faults cli-train cli-classify asan-avx2 cli-cv fuzz-replay fuzz-replay-clang demo asan asan-clang"
key() { printf '%s' "$1" | cksum | cut -d' ' -f1; }
# run_jobs DIR OUT_DIR: run the scripts DIR/X.sh for the names X on stdin, JOBS at a time,
# each one's output in OUT_DIR/X.log, its exit status in X.rc and its seconds in X.time.
run_jobs() {
    xargs -r -P "$JOBS" -I{} bash -c 't=$SECONDS; bash "$0/{}.sh" >"$1/{}.log" 2>&1; echo $? >"$1/{}.rc"; echo $((SECONDS - t)) >"$1/{}.time"' "$1" "$2"
}
want() { case "$1" in *"$ONLY"*) return 0 ;; esac; return 1; }

# prebuild COMMAND: in the build pass, add COMMAND to the build jobs (once).
prebuild() {
    local k
    k=$(key "$1")
    [ -f "$BUILDS/$k.sh" ] && return
    printf '%s\n' "$1" >"$BUILDS/$k.sh"
    echo "$k" >>"$BUILDS/list"
}

# built COMMAND: in the run pass, whether COMMAND succeeded ("true" always has); else it says
# why, with the start of the compiler's output.
built() {
    local k
    [ "$1" = true ] && return 0
    k=$(key "$1")
    [ "$(cat "$BUILDS/$k.rc" 2>/dev/null)" = 0 ] && return 0
    sed 's/^/    /' "$BUILDS/$k.log" 2>/dev/null | head -40
    return 1
}

# suite NAME "BUILD COMMAND" "RUN COMMAND": build, run, tag and count the runner's lines.
suite() {
    local name=$1 build=$2 run=$3 log="$OUT/$1.log" line
    want "$name" || return
    case $PHASE in
    build)
        [ "$build" = true ] || prebuild "$build"
        return
        ;;
    run) # its run command as a script of its own, its log, exit status and time beside its log
        rm -f "$log" "$OUT/$name.rc" "$OUT/$name.time"
        built "$build" >"$log.build" || return
        printf '%s\n' "$run" >"$RUNS/$name.sh"
        echo "$name" >>"$RUNS/list"
        return
        ;;
    esac
    if ! built "$build" >"$log.build"; then
        fail "$name: build failed: $build"
        cat "$log.build"
        return
    fi
    local rc
    rc=$(cat "$OUT/$name.rc" 2>/dev/null || echo "none")
    echo "$(cat "$OUT/$name.time" 2>/dev/null) s  $name" >>"$OUT/times.txt"
    sed -e "s/^\[PASS\] /[PASS] $name: /" -e "s/^\[FAIL\] /[FAIL] $name: /" "$log" |
        grep -v -E '^[0-9]+ passed, [0-9]+ failed$'
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
    if [ -z "$line" ]; then
        fail "$name: no summary line (exit status $rc)"
        return
    fi
    local p f
    p=$(echo "$line" | cut -d' ' -f1)
    f=$(echo "$line" | cut -d' ' -f3)
    PASSED=$((PASSED + p))
    FAILED=$((FAILED + f))
    if [ "$rc" != 0 ] && [ "$f" -eq 0 ]; then fail "$name: exit status $rc"; fi
}

# compiles NAME "COMMAND": a build that must succeed without warnings, counted as a test.
compiles() {
    local name=$1 cmd=$2
    want "$name" || return
    if [ "$PHASE" = build ]; then
        prebuild "$cmd"
    elif [ "$PHASE" = run ]; then
        return
    elif built "$cmd" >"$OUT/compile.log"; then pass "$name"; else
        fail "$name: $cmd"
        head -20 "$OUT/compile.log"
    fi
}

all_suites() {
    T=tests/test_main.c
    SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" # ASan + UBSan
    T_CLIP=tests/test_clip.c
    HASAVX2=$(grep -q -w avx2 /proc/cpuinfo && grep -q -w fma /proc/cpuinfo && echo 1)

    suite default "$CC $WARN -O2 -g -march=native $T -o $OUT/default -lm" "$OUT/default"
    suite portable "$CC $WARN -O2 -g -DTSF_NO_SIMD $T -o $OUT/portable -lm" "$OUT/portable"
    suite omp "$CC $WARN -O2 -g -march=native -fopenmp $T -o $OUT/omp -lm" "OMP_NUM_THREADS=2 OMP_WAIT_POLICY=passive $OUT/omp"
    suite portable-omp "$CC $WARN -O2 -g -DTSF_NO_SIMD -fopenmp $T -o $OUT/portable-omp -lm" \
        "OMP_NUM_THREADS=2 OMP_WAIT_POLICY=passive $OUT/portable-omp"
    suite asan "$CC $WARN -O1 -g -march=native $SAN $T -o $OUT/asan -lm" \
        "ASAN_OPTIONS=detect_leaks=1 $OUT/asan"
    if [ -n "$HASAVX2" ]; then
        suite avx2 "$CC $WARN -O2 -g -mavx2 -mfma $T -o $OUT/avx2 -lm" "$OUT/avx2"
        # the AVX2 kernels read edges in place (masks, clamped rows): under the sanitizers too
        suite asan-avx2 "$CC $WARN -O1 -g -mavx2 -mfma $SAN $T -o $OUT/asan-avx2 -lm" \
            "ASAN_OPTIONS=detect_leaks=1 $OUT/asan-avx2"
    fi
    if have clang; then
        suite clang "clang $WARN -O2 -g -march=native $T -o $OUT/clang -lm" "$OUT/clang"
        # clang's UBSan checks more than gcc's (an offset applied to a null pointer)
        suite asan-clang "clang $WARN -O1 -g -march=native $SAN $T -o $OUT/asan-clang -lm" \
            "ASAN_OPTIONS=detect_leaks=1 $OUT/asan-clang"
    fi
    if have aarch64-linux-gnu-gcc && have qemu-aarch64; then
        suite neon "aarch64-linux-gnu-gcc $WARN -O2 -static $T -o $OUT/neon -lm" "qemu-aarch64 $OUT/neon"
    fi
    suite cpp "$CXX -std=c++11 $WARNXX -O2 -march=native tests/test_cpp.cpp -o $OUT/cpp" "$OUT/cpp"
    if have clang++; then
        suite clang-cpp "clang++ -std=c++11 $WARNXX -O2 -march=native tests/test_cpp.cpp -o $OUT/clang-cpp" "$OUT/clang-cpp"
    fi
    STB=$([ -f /usr/include/stb/stb_image.h ] && echo "-I/usr/include/stb" || echo "-DTT_NO_STB")
    # tools/tsf.c: one optimised build and one under ASan and UBSan, each shared by several suites
    TSF="$CC $WARN -O2 -march=native $STB tools/tsf.c -o $OUT/tsf -lm"
    TSF_ASAN="$CC $WARN -O1 -g -march=native -fsanitize=address,undefined -fno-sanitize-recover=all $STB tools/tsf.c -o $OUT/tsf-asan -lm"
    suite cli "$TSF" "bash tests/test_cli.sh $OUT/tsf"
    suite cli-asan "$TSF_ASAN" "bash tests/test_cli.sh $OUT/tsf-asan"
    suite cli-train "$CC $WARN -O2 -march=native -fopenmp $STB tools/tsf.c -o $OUT/tsf-omp -lm" \
        "OMP_WAIT_POLICY=passive bash tests/test_cli_train.sh $OUT/tsf-omp"
    suite cli-cv "$TSF_ASAN" "ASAN_OPTIONS=detect_leaks=1 CC=$CC bash tests/test_cli_cv.sh $OUT/tsf-asan"
    suite cli-classify "$TSF" "bash tests/test_cli_classify.sh $OUT/tsf"
    # PyTorch checkpoints, convert and export, hostile pickles: under ASan and UBSan, with leak checks
    suite cli-torch "$TSF_ASAN" "ASAN_OPTIONS=detect_leaks=1 bash tests/test_cli_torch.sh $OUT/tsf-asan"
    suite examples "true" "OMP_WAIT_POLICY=passive bash tests/test_examples.sh $OUT/examples"
    suite demo "true" "CC=$CC OMP_WAIT_POLICY=passive bash tests/test_demo.sh"
    suite clip "$CC $WARN -O2 -g -march=native $T_CLIP -o $OUT/clip -lm" "$OUT/clip"
    suite clip-asan "$CC $WARN -O1 -g $SAN $T_CLIP -o $OUT/clip-asan -lm" \
        "ASAN_OPTIONS=detect_leaks=1 $OUT/clip-asan"
    suite tools "true" "CC=$CC bash tests/test_tools.sh"
    suite tools-asan "true" "CC=$CC TOOLS_OUT=build/test_tools-asan TOOLS_CFLAGS='-O1 -g $SAN' bash tests/test_tools.sh"
    suite link "$CC $WARN -O2 tests/test_link_a.c tests/test_link_b.c -o $OUT/link -lm" "$OUT/link"
    suite static "$CC $WARN -O2 tests/test_static.c -o $OUT/static -lm" "$OUT/static"
    suite bench "$CC $WARN -O2 -march=native -fopenmp -I. bench/bench_model.c -o $OUT/bench_model -lm" \
        "OMP_WAIT_POLICY=passive bash tests/test_bench.sh $OUT/bench_model"

    # Data-parallel tsf train and tsf eval over MPI (issue 20: build/tsf-mpi, tools/tsf_mpi.h) against
    # tsf (the cli suite's build); needs Open MPI's mpicc and mpirun (the test uses its options and
    # OMPI_COMM_WORLD_RANK)
    if have mpicc && have mpirun && mpirun --version 2>/dev/null | grep -q "Open MPI"; then
        want mpi && [ "$PHASE" = build ] && prebuild "$TSF"
        suite mpi "mpicc $WARN -O2 -march=native $STB -DTSF_MPI tools/tsf.c -o $OUT/tsf-mpi -lm" \
            "built \"\$TSF\" && CC=$CC bash tests/test_mpi.sh $OUT/tsf $OUT/tsf-mpi"
    else
        want mpi && [ "$PHASE" = report ] && echo "note: suite mpi skipped: no Open MPI mpicc and mpirun (apt-get install openmpi-bin libopenmpi-dev)"
    fi

    # Reliability (tests/test_fail.c, test_fail_cli.sh, test_threads.c, test_soak.c, fuzz/): every
    # allocation failing in turn, writes cut short, NaN; tsf train on a full disk; two models on
    # two threads (also under ThreadSanitizer); a short soak with a resume; the fuzzers' seeds and
    # findings replayed under ASan and UBSan (make fuzz runs the fuzzers themselves).
    suite fail "$CC $WARN -O2 -g tests/test_fail.c -o $OUT/fail -lm" "$OUT/fail"
    suite fail-asan "$CC $WARN -O1 -g $SAN tests/test_fail.c -o $OUT/fail-asan -lm" \
        "ASAN_OPTIONS=detect_leaks=1 $OUT/fail-asan"
    suite fail-cli "$CC $WARN -O0 $STB tools/tsf.c -o $OUT/tsf-fail -lm" "CC=$CC bash tests/test_fail_cli.sh $OUT/tsf-fail"
    suite faults "$TSF" "CC=$CC bash tests/test_faults.sh $OUT/tsf"
    suite threads "$CC $WARN -O2 -g -march=native -pthread tests/test_threads.c -o $OUT/threads -lm" "$OUT/threads"
    suite threads-omp "$CC $WARN -O2 -g -march=native -fopenmp -pthread tests/test_threads.c -o $OUT/threads-omp -lm" \
        "OMP_NUM_THREADS=2 OMP_WAIT_POLICY=passive $OUT/threads-omp"
    if have clang && echo 'int main(void){return 0;}' | clang -fsanitize=thread -x c - -o "$OUT/tsan-probe" >/dev/null 2>&1; then
        suite threads-tsan "clang $WARN -O1 -g -fsanitize=thread -pthread tests/test_threads.c -o $OUT/threads-tsan -lm" \
            "$OUT/threads-tsan"
    fi
    suite soak "$CC $WARN -O2 -march=native tests/test_soak.c -o $OUT/soak -lm" "$OUT/soak --steps 1500 --every 500 --seed 1"
    suite fuzz-replay "true" "CC=$CC bash tests/fuzz/replay.sh"
    if have clang; then # clang's UBSan checks more (an offset applied to a null pointer)
        suite fuzz-replay-clang "true" "CC=clang REPLAY_OUT=build/tests/fuzz-replay-clang bash tests/fuzz/replay.sh"
    fi

    # The header alone, with the implementation, in every compiler x language x option mix (each
    # its own object file: the checks build side by side).
    n=0
    for cc in "$CC" clang; do
        have "$cc" || continue
        for opt in "" "-fopenmp" "-DTSF_NO_SIMD" "-march=native" "-march=native -fopenmp" "-DTSF_NO_OPENMP -fopenmp" "-DTSF_NO_STDIO"; do
            n=$((n + 1))
            compiles "warnings: $cc -std=c99 $opt" "$cc $WARN -O2 $opt -c $OUT/impl.c -o $OUT/impl$n.o"
        done
        # each x86 SIMD path at the least its macro asks for (AVX-512: F alone, no VL or DQ),
        # whatever this machine's CPU: the kernels may use no instruction beyond it
        [ "$(uname -m)" = x86_64 ] || continue
        for opt in "-mavx2 -mfma" "-mavx512f -mfma"; do
            n=$((n + 1))
            compiles "warnings: $cc -std=c99 $opt" "$cc $WARN -O2 $opt -c $OUT/impl.c -o $OUT/impl$n.o"
        done
    done
    for cxx in "$CXX" clang++; do
        have "$cxx" || continue
        for opt in "" "-fopenmp" "-DTSF_NO_SIMD" "-march=native"; do
            n=$((n + 1))
            compiles "warnings: $cxx -std=c++11 $opt" "$cxx -std=c++11 $WARNXX -O2 $opt -c $OUT/impl.cpp -o $OUT/impl$n.o"
        done
    done
}

printf '#define TIMESFORMER_IMPLEMENTATION\n#include "../../timesformer.h"\n' >"$OUT/impl.c"
cp "$OUT/impl.c" "$OUT/impl.cpp"
rm -rf "$BUILDS" && mkdir -p "$BUILDS" && : >"$BUILDS/list"
PHASE=build
all_suites
t0=$SECONDS
run_jobs "$BUILDS" "$BUILDS" <"$BUILDS/list"
echo "built: $(wc -l <"$BUILDS/list") commands in $((SECONDS - t0)) s, $JOBS at a time"
PHASE=run
rm -rf "$RUNS" && mkdir -p "$RUNS" && : >"$RUNS/list"
# (the mpi suite's run command checks the build of tsf: built, key and $TSF in its shell too)
export BUILDS TSF
export -f built key
all_suites
t0=$SECONDS
{ for s in $SLOW; do grep -x -F "$s" "$RUNS/list"; done; grep -v -x -F "$(printf '%s\n' $SLOW)" "$RUNS/list"; } |
    run_jobs "$RUNS" "$OUT"
echo "ran: $(wc -l <"$RUNS/list") suites in $((SECONDS - t0)) s, $JOBS at a time"
PHASE=report
all_suites

echo "slowest suites (all in $OUT/times.txt):"
sort -rn "$OUT/times.txt" | head -n 5 | sed 's/^/    /'
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
