#!/usr/bin/env bash
# Replay the fuzz harnesses' inputs without libFuzzer (the suite fuzz-replay of run_all.sh):
# the five harnesses of tests/fuzz/, built into one program (replay_all.c) under ASan and
# UBSan, each run once on every seed (tests/fuzz/make_seeds.c; the golden weights for the
# safetensors reader; the committed checkpoints of tests/pytorch and its folders for the
# torch reader) and on every input of tests/fuzz/regress/HARNESS/ (the fuzzer's findings and
# hand-made hostile files: inputs that must never break a reader again).
# Usage: bash tests/fuzz/replay.sh      (CC and REPLAY_OUT are honoured; clang adds its extra
# UB checks, such as an offset applied to a null pointer)
# Prints [PASS]/[FAIL] lines and "N passed, N failed".
set -u
cd "$(dirname "$0")/../.."
CC=${CC:-cc}
OUT=${REPLAY_OUT:-build/tests/fuzz-replay} # its own folder for each suite that runs it
WARN="-std=c99 -Wall -Wextra -Wpedantic -Wshadow -Wdouble-promotion -Wstrict-prototypes -Wmissing-prototypes -Werror"
SAN="-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
mkdir -p "$OUT"
if ! $CC $WARN -O1 tests/fuzz/make_seeds.c -o "$OUT/make_seeds" -lm >"$OUT/build.log" 2>&1 ||
    ! { rm -rf "$OUT/seeds" && "$OUT/make_seeds" "$OUT/seeds"; } >>"$OUT/build.log" 2>&1 ||
    ! $CC $WARN $SAN tests/fuzz/replay_all.c -o "$OUT/replay_all" -lm >>"$OUT/build.log" 2>&1; then
    echo "[FAIL] fuzz-replay: cannot build: $(head -c 2000 "$OUT/build.log")"
    echo "0 passed, 1 failed"
    exit 1
fi
passed=0
failed=0
for h in safetensors config clip manifest torch; do
    args=("$OUT/seeds/$h" "tests/fuzz/regress/$h")
    [ "$h" = safetensors ] && args+=(tests/golden/divided_base tests/golden/joint_resized tests/golden/space_base)
    if [ "$h" = torch ]; then
        for d in tests/pytorch tests/pytorch/*/; do args+=("${d%/}"); done
    fi
    ASAN_OPTIONS=detect_leaks=1 "$OUT/replay_all" "$h" "${args[@]}" >"$OUT/$h.log" 2>&1
    rc=$?
    grep -E '^\[(PASS|FAIL)\]' "$OUT/$h.log"
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$OUT/$h.log" | tail -n 1)
    p=$(echo "${line:-0 passed, 0 failed}" | cut -d' ' -f1)
    f=$(echo "${line:-0 passed, 0 failed}" | cut -d' ' -f3)
    if [ -z "$line" ] || { [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; }; then
        echo "[FAIL] fuzz_$h: exit status $rc: $(grep -E 'ERROR|SUMMARY|runtime error|property' "$OUT/$h.log" | head -3)"
        failed=$((failed + 1))
    fi
    passed=$((passed + p))
    failed=$((failed + f))
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
