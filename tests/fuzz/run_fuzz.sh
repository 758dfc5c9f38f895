#!/usr/bin/env bash
# Fuzz the file readers with libFuzzer: build every harness of tests/fuzz/ with
# clang -fsanitize=fuzzer,address,undefined, write the seed corpora (tests/fuzz/make_seeds.c,
# plus the golden weights for the safetensors reader, the committed PyTorch checkpoints of
# tests/pytorch for the torch reader and the regression inputs of tests/fuzz/regress/), run
# each harness for SECONDS, and report its executions and coverage.
#
#   bash tests/fuzz/run_fuzz.sh [SECONDS] [HARNESS...]      (make fuzz FUZZ_SECONDS=60)
#
# HARNESS is safetensors, config, clip, manifest or torch (default: all five). The corpus
# grows in build/fuzz/corpus/HARNESS across runs. A crash, leak or broken property stops that
# harness (so does one that only the coverage replay, built without sanitizers, sees); its
# input is saved as build/fuzz/crashes/HARNESS-*: fix the bug, then copy the file to
# tests/fuzz/regress/HARNESS/ so that make test replays it for ever.
# Output: one line per harness, "fuzz NAME: N execs in S s (E/s), coverage C of P edges
# (X%), F features, corpus K inputs; the reader: L of N lines (P%) in F functions", then
# "fuzz: N harnesses passed, M failed". Edges count the whole binary (the harness links the
# entire library); the reader's lines (when llvm-cov is installed) count only the functions
# that parse that kind of file, executed by the final corpus.
set -u
cd "$(dirname "$0")/../.."
SECONDS_EACH=${1:-60}
shift || true
HARNESSES=${*:-safetensors config clip manifest torch}
CLANG=${CLANG:-clang}
OUT=build/fuzz
mkdir -p "$OUT/corpus" "$OUT/crashes"

if ! echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return (int)(n && d[0]); }' |
    "$CLANG" -fsanitize=fuzzer -x c - -o "$OUT/probe" 2>/dev/null; then
    echo "fuzz: $CLANG cannot build libFuzzer targets (Debian: apt-get install clang libclang-rt-14-dev)"
    exit 1
fi

cc -std=c99 -O1 -g tests/fuzz/make_seeds.c -o "$OUT/make_seeds" -lm || exit 1
rm -rf "$OUT/seeds"
"$OUT/make_seeds" "$OUT/seeds" || exit 1

# The reader's own functions, for the line coverage reached by the corpus (llvm-cov).
reader_functions() {
    case "$1" in
    safetensors) echo 'tsf__json_[a-z]+|tsf__is_hex|tsf__hex4|tsf__to_hf_name|tsf__copy_name|tsf__layer_name|tsf__tensor_info|tsf__source_read|tsf__f16_to_f32|tsf__dtype_size|tsf__read_tensor|tsf__entry_cmp|tsf__st_fill|tsf__train_state_from_json|tsf__st_load|tsf_model_load_memory|tsf__config_apply|tsf__cfg_int|tsf__labels_from_json' ;;
    config) echo 'tsf__json_[a-z]+|tsf__is_hex|tsf__hex4|tsf__cfg_int|tsf__labels_from_json|tsf__config_apply|tsf_config_from_json|tsf_config_resolve' ;;
    clip) echo 'tsf__clip_get32|tsf_clip_header_check|tsf_clip_frame_bytes|tsf_clip_file_bytes|tsf_clip_header_decode|tsf_clip_view|tsf__clip_seek|tsf_clip_read_frames|tsf_clip_close|tsf_clip_open|tsf_clip_load|tsf__clip_prepare|tsf_sample_frames|tsf_sample_crop|tsf__clip_axis|tsf_frame_transform|tsf_clip_sample' ;;
    manifest) echo 'tsf__clip_line|tsf__clip_text_start|tsf__clip_ref_cmp|tsf__clip_sort_dups|tsf_classes_parse|tsf__clip_find|tsf_classes_find|tsf__clip_is_abs|tsf__clip_is_word|tsf__clip_fields|tsf__clip_label|tsf_manifest_parse' ;;
    torch) echo 'tsf__le|tsf__zentry_cmp|tsf__zip_[a-z]+|tsf__pv_[a-z_]+|tsf__pickle_[a-z]+|tsf__pt_[a-z_]+|tsf__infer_config|tsf__model_from_list|tsf__load_source|tsf__wlist_[a-z]+|tsf__source_read|tsf__read_values|tsf__f16_to_f32|tsf__to_hf_name|tsf_model_load_memory' ;;
    esac
}
PROFDATA=$(command -v llvm-profdata || command -v llvm-profdata-14)
LLVMCOV=$(command -v llvm-cov || command -v llvm-cov-14)

# "L of N lines (P%) in F functions": the reader's lines that the corpus executes. This replay
# has no sanitizers, so it can break a property that the sanitized build kept by luck (an
# uninitialised value that happened to be zero there): then it prints "FAILED: INPUT: why",
# saves the input as build/fuzz/crashes/HARNESS-cov-NAME and returns 1.
reader_coverage() {
    local h=$1 bin="$OUT/cov_$h" rc f g
    shift
    [ -n "$PROFDATA" ] && [ -n "$LLVMCOV" ] || return 0
    "$CLANG" -O0 -g -DFUZZ_STANDALONE -fprofile-instr-generate -fcoverage-mapping \
        "tests/fuzz/fuzz_$h.c" -o "$bin" -lm 2>/dev/null || return 0
    rm -f "$bin.profraw"
    LLVM_PROFILE_FILE="$bin.profraw" "$bin" "$@" >"$bin.log" 2>&1
    rc=$?
    if [ "$rc" -gt 1 ]; then # 1: an empty folder; more: an abort, whose input is found one by one
        for f in "$@"; do
            for g in "$f" "$f"/*; do
                [ -f "$g" ] || continue
                LLVM_PROFILE_FILE=/dev/null "$bin" "$g" >/dev/null 2>&1 && continue
                cp "$g" "$OUT/crashes/$h-cov-${g##*/}"
                echo "FAILED: $g: $(grep -m 1 -E 'property|ERROR' "$bin.log")"
                return 1
            done
        done
        echo "FAILED: exit status $rc (log $bin.log)"
        return 1
    fi
    "$PROFDATA" merge -o "$bin.profdata" "$bin.profraw" 2>/dev/null || return 0
    # static functions are named FILE:NAME in the profile
    "$LLVMCOV" show "$bin" -instr-profile="$bin.profdata" -format=text \
        --name-regex="(^|:)($(reader_functions "$h"))\$" 2>/dev/null |
        awk -F'|' 'NF >= 3 && $2 ~ /[0-9]/ { n++; if ($2 + 0 == 0) z++ }
                   /^[^ |]+:$/ { f++ }
                   END { if (n) printf "%d of %d lines (%.1f%%) in %d functions", n - z, n, 100 * (n - z) / n, f }'
}

# fuzz_one HARNESS: build it, fuzz it, print its line; the exit status says whether it passed.
fuzz_one() {
    local h=$1 bin log rc execs rate total last cov ft corp pct lines
    local -a extra dict
    bin="$OUT/fuzz_$h"
    log="$OUT/$h.log"
    if ! "$CLANG" -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
        "tests/fuzz/fuzz_$h.c" -o "$bin" -lm; then
        echo "fuzz $h: build failed"
        return 1
    fi
    mkdir -p "$OUT/corpus/$h"
    extra=()
    [ "$h" = safetensors ] && extra+=(tests/golden/divided_base tests/golden/joint_resized tests/golden/space_base)
    if [ "$h" = torch ]; then # the committed checkpoints, copied into one folder for libFuzzer
        rm -rf "$OUT/fixtures/torch" && mkdir -p "$OUT/fixtures/torch"
        cp tests/pytorch/*.bin tests/pytorch/*.pth tests/pytorch/*.pyth "$OUT/fixtures/torch/"
        for f in tests/pytorch/*/pytorch_model*.bin; do
            d=${f%/*}
            cp "$f" "$OUT/fixtures/torch/${d##*/}-${f##*/}"
        done
        extra+=("$OUT/fixtures/torch")
    fi
    [ -d "tests/fuzz/regress/$h" ] && extra+=("tests/fuzz/regress/$h")
    dict=()
    case "$h" in
    safetensors | config) dict=(-dict=tests/fuzz/json.dict) ;;
    torch) dict=(-dict=tests/fuzz/torch.dict) ;;
    esac
    # -rss_limit_mb: the harness's own allocator refuses single requests above 64 MB;
    # -timeout: an input that takes seconds is a finding too.
    "$bin" -max_total_time="$SECONDS_EACH" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 "${dict[@]}" \
        -artifact_prefix="$OUT/crashes/$h-" "$OUT/corpus/$h" "$OUT/seeds/$h" "${extra[@]}" \
        >"$log" 2>&1
    rc=$?
    execs=$(grep -E '^stat::number_of_executed_units:' "$log" | awk '{print $2}')
    rate=$(grep -E '^stat::average_exec_per_sec:' "$log" | awk '{print $2}')
    total=$(grep -oE 'Loaded 1 modules +\([0-9]+ inline 8-bit counters\)' "$log" | grep -oE '[0-9]+ inline' | awk '{print $1}')
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
    cov=$(echo "$last" | grep -oE 'cov: [0-9]+' | awk '{print $2}')
    ft=$(echo "$last" | grep -oE 'ft: [0-9]+' | awk '{print $2}')
    corp=$(echo "$last" | grep -oE 'corp: [0-9]+' | awk '{print $2}')
    pct=$(awk -v c="${cov:-0}" -v t="${total:-0}" 'BEGIN { if (t > 0) printf "%.1f", 100 * c / t; else print "?" }')
    if [ "$rc" -eq 0 ] && [ -n "$execs" ] &&
        ! lines=$(reader_coverage "$h" "$OUT/corpus/$h" "$OUT/seeds/$h" "${extra[@]}"); then
        echo "fuzz $h: $execs execs clean under the sanitizers, but the coverage replay (no sanitizers) FAILED on ${lines#FAILED: }"
        return 1
    elif [ "$rc" -eq 0 ] && [ -n "$execs" ]; then
        echo "fuzz $h: $execs execs in $SECONDS_EACH s ($rate/s), coverage $cov of $total edges ($pct%), $ft features, corpus $corp inputs${lines:+; the reader: $lines}"
        return 0
    else
        echo "fuzz $h: FAILED (exit status $rc) after ${execs:-?} execs; log $log; input:"
        ls "$OUT/crashes/$h-"* 2>/dev/null | sed 's/^/    /'
        grep -E 'ERROR|SUMMARY|property violated' "$log" | head -5 | sed 's/^/    /'
        return 1
    fi
}

# The harnesses run side by side, FUZZ_JOBS at a time (default: the number of cores); their
# lines are printed in order once all are done.
JOBS=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}
running=0
for h in $HARNESSES; do
    if [ "$running" -ge "$JOBS" ]; then
        wait -n
        running=$((running - 1))
    fi
    rm -f "$OUT/$h.result" "$OUT/$h.status" # a job that dies writes no status: a failure
    { fuzz_one "$h" >"$OUT/$h.result" 2>&1; echo $? >"$OUT/$h.status"; } &
    running=$((running + 1))
done
wait
passed=0
failed=0
for h in $HARNESSES; do
    cat "$OUT/$h.result" 2>/dev/null
    if [ "$(cat "$OUT/$h.status" 2>/dev/null)" = 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done
echo "fuzz: $passed harnesses passed, $failed failed"
[ "$failed" -eq 0 ]
