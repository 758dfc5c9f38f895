#!/usr/bin/env bash
# bench/bench_isa.sh - `make bench`: the matmul benchmark (bench/bench_matmul.c) once for every
# SIMD path this machine can run, each against OpenBLAS's kernels for the same ISA:
#   avx512    built with -march=native (where /proc/cpuinfo has avx512f), OpenBLAS forced to
#             its SkylakeX (AVX-512) kernels with OPENBLAS_CORETYPE=SkylakeX
#   avx2      built with -mavx2 -mfma (any x86-64 CPU with avx2 and fma), OpenBLAS forced to
#             its Haswell (AVX2) kernels with OPENBLAS_CORETYPE=Haswell
#   neon      built with -march=native on 64-bit ARM, OpenBLAS's own choice
#   portable  built with -DTSF_NO_SIMD (the plain C kernels), for the record: no OpenBLAS
# OpenBLAS otherwise picks its kernels by CPU (0.3.21 runs its Haswell ones on Zen 4 and 5), so
# without forcing the core type an AVX-512 kernel would be compared with an AVX2 one.
# Each path prints its JSON lines and table (bench_matmul's own output, its header line
# names the OpenBLAS core it compared against and the FMA probe of that path); at the end one
# summary table: per path and thread count, the geometric mean of the ratios (tsf GFLOP/s over
# OpenBLAS GFLOP/s), the weakest shape's ratio, and the slowest ViT-B layer as a share of the
# path's FMA probe.
#
#   bash bench/bench_isa.sh [--isa avx512,avx2,portable] [bench_matmul options, e.g. --quick]
#
# Builds go to build/bench_matmul_<isa>; outputs to build/bench_<isa>.txt. Without OpenBLAS
# (libopenblas-dev) the paths run alone (no ratios). The machine should be otherwise idle.
set -u
cd "$(dirname "$0")/.." || exit 1
CC=${CC:-cc}
ISAS=
ARGS=()
while [ $# -gt 0 ]; do
    case "$1" in
    --isa) ISAS=$2; shift 2 ;;
    *) ARGS+=("$1"); shift ;;
    esac
done

flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null)
has() { case " $flags " in *" $1 "*) return 0 ;; esac; return 1; }
if [ -z "$ISAS" ]; then
    case "$(uname -m)" in
    x86_64 | amd64)
        has avx512f && ISAS=avx512
        has avx2 && has fma && ISAS=${ISAS:+$ISAS,}avx2
        ;;
    aarch64 | arm64) ISAS=neon ;;
    esac
    ISAS=${ISAS:+$ISAS,}portable
fi

BLAS=
if { [ -f /usr/include/x86_64-linux-gnu/cblas.h ] || [ -f /usr/include/cblas.h ] ||
    [ -f /usr/include/aarch64-linux-gnu/cblas.h ]; } &&
    echo 'int main(void){return 0;}' | $CC -x c - -lopenblas -o /dev/null 2>/dev/null; then
    BLAS="-DTSF_BENCH_OPENBLAS -lopenblas"
else
    echo "bench: OpenBLAS not found (sudo apt-get install libopenblas-dev): no ratios"
fi
OMP=$(echo 'int main(void){return 0;}' | $CC -fopenmp -x c - -o /dev/null 2>/dev/null && echo -fopenmp)

mkdir -p build
status=0
for isa in ${ISAS//,/ }; do
    case $isa in
    avx512) arch=-march=native core=SkylakeX ;;
    avx2) arch="-mavx2 -mfma" core=Haswell ;;
    neon) arch=-march=native core= ;;
    portable) arch=-DTSF_NO_SIMD core= ;;
    *) echo "bench: unknown ISA '$isa' (avx512, avx2, neon, portable)" >&2; exit 2 ;;
    esac
    bin=build/bench_matmul_$isa
    echo "== $isa: $CC -O2 $arch $OMP; OpenBLAS core ${core:-(its own choice)}"
    # shellcheck disable=SC2086
    if ! $CC -O2 $arch $OMP -I. bench/bench_matmul.c -o "$bin" ${BLAS:+$BLAS} -lm; then
        echo "bench: the $isa build failed" >&2
        status=1
        continue
    fi
    extra=()
    [ "$isa" = portable ] && extra=(--no-openblas)
    if [ -n "$core" ]; then
        OPENBLAS_CORETYPE=$core "$bin" "${ARGS[@]}" "${extra[@]}" | tee "build/bench_$isa.txt"
    else
        "$bin" "${ARGS[@]}" "${extra[@]}" | tee "build/bench_$isa.txt"
    fi
    [ "${PIPESTATUS[0]}" = 0 ] || status=1
    echo
done

echo "summary (ratio = tsf GFLOP/s / OpenBLAS GFLOP/s at the same ISA, median of interleaved runs)"
printf '%-9s %3s %9s %12s  %-22s %13s %8s\n' path thr geomean weakest "weakest shape" "ViT-B min GF/s" "% probe"
for isa in ${ISAS//,/ }; do
    [ -f "build/bench_$isa.txt" ] || continue
    grep '"bench":"matmul_summary"' "build/bench_$isa.txt" | while IFS= read -r line; do
        get() { echo "$line" | sed -n "s/.*\"$1\":\"\{0,1\}\([^,\"}]*\).*/\1/p"; }
        printf '%-9s %3s %9s %12s  %-22s %13s %8s\n' "$isa" "$(get threads)" "$(get geomean_ratio)" \
            "$(get min_ratio)" "$(get min_ratio_shape)" "$(get vitb_min_gflops)" \
            "$(get vitb_min_probe_pct)"
    done
done
echo "targets (issue 16): geomean >= 1.0 and no shape below 0.9 against OpenBLAS at the same ISA;"
echo "the ViT-B layers at >= 85% of the path's FMA probe (the header line of each table)"
exit $status
