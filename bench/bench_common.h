/* bench/bench_common.h - what bench_matmul.c and bench_model.c share: the clock, medians,
   thread counts, the load average and its warning, peak RSS, result hashes, the FMA probe,
   the compiler's name and the start of the header line, comma-separated number lists and
   table cells that may be empty.

   Each benchmark is one translation unit: include this after timesformer.h (with
   TIMESFORMER_IMPLEMENTATION). Every function is static; a benchmark that does not use one
   gets no warning for it (BENCH_MAYBE_UNUSED). With TSF_BENCH_OPENBLAS, cblas.h is included
   and set_threads() also sets OpenBLAS's thread count. */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#if defined(_OPENMP) && !defined(TSF_NO_OPENMP)
#include <omp.h>
#define BENCH_OPENMP 1
#else
#define BENCH_OPENMP 0
#endif

#ifdef TSF_BENCH_OPENBLAS
#include <cblas.h>
/* OpenBLAS extensions; declared here too in case cblas.h is the reference (netlib) one. */
void openblas_set_num_threads(int num_threads);
char *openblas_get_config(void);
char *openblas_get_corename(void);
#define BENCH_HAVE_OPENBLAS 1
#else
#define BENCH_HAVE_OPENBLAS 0
#endif

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#endif

/* Peak single-precision GFLOP/s of one core of the reference machine, the yardstick of issue
   7: 32 flop/cycle (two 256-bit FMAs a cycle) at about 3.6 GHz. Override with
   -DPEAK_PER_CORE_GFLOPS=x or the benchmarks' --peak. */
#ifndef PEAK_PER_CORE_GFLOPS
#define PEAK_PER_CORE_GFLOPS 117.0
#endif

#if defined(__clang__)
#define BENCH_COMPILER "clang " __clang_version__
#elif defined(__GNUC__)
#define BENCH_COMPILER "gcc " __VERSION__
#else
#define BENCH_COMPILER "unknown compiler"
#endif
#if defined(__OPTIMIZE__)
#define BENCH_OPTIMIZED "optimized"
#else
#define BENCH_OPTIMIZED "NOT optimized"
#endif

#if defined(__GNUC__)
#define BENCH_MAYBE_UNUSED __attribute__((unused))
#else
#define BENCH_MAYBE_UNUSED
#endif

/* ---- clock and statistics ------------------------------------------------------------------ */
static BENCH_MAYBE_UNUSED double now_s(void) { /* seconds, CLOCK_MONOTONIC */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
/* The median of v[0..n-1] (n >= 1); sorts v. */
static BENCH_MAYBE_UNUSED double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}
static BENCH_MAYBE_UNUSED double minimum(const double *v, int n) {
    double m = v[0];
    int i;
    for (i = 1; i < n; i++) m = v[i] < m ? v[i] : m;
    return m;
}

/* FNV-1a over the bytes of n floats: equal results hash equal (bit-identical thread counts). */
static BENCH_MAYBE_UNUSED unsigned long long hash_floats(const float *p, size_t n) {
    const unsigned char *b = (const unsigned char *)p;
    unsigned long long h = 1469598103934665603ULL;
    size_t i;
    for (i = 0; i < n * sizeof(float); i++) h = (h ^ b[i]) * 1099511628211ULL;
    return h;
}

/* ---- the machine ------------------------------------------------------------------------------
 */
/* The library's threads (OpenMP) and, when compiled in, OpenBLAS's. */
static BENCH_MAYBE_UNUSED void set_threads(int n) {
#if BENCH_OPENMP
    omp_set_num_threads(n);
#endif
#if BENCH_HAVE_OPENBLAS
    openblas_set_num_threads(n);
#endif
    (void)n;
}

/* The 1-minute load average, -1 where /proc/loadavg cannot be read. */
static BENCH_MAYBE_UNUSED double load_average(void) {
    FILE *f = fopen("/proc/loadavg", "r");
    double load = -1.0;
    if (f) {
        if (fscanf(f, "%lf", &load) != 1) load = -1.0;
        fclose(f);
    }
    return load;
}
/* Other work on the machine skews the timings, the multi-thread ones most: say so on stderr. */
static BENCH_MAYBE_UNUSED void warn_load(const char *prog, double load) {
    if (load >= 0.5)
        fprintf(stderr,
                "%s: warning: load average %.2f, other processes are running: "
                "timings (multi-thread most) will be noisy\n",
                prog, load);
}

/* Peak RSS of this process: VmHWM of /proc/self/status, the high-water mark of this
   program's own memory. (getrusage's ru_maxrss survives exec on Linux: a process started by a
   big parent, such as Python with torch loaded, would report the parent's size.) */
static BENCH_MAYBE_UNUSED double peak_rss_mb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kb = -1.0;
    struct rusage ru;
    if (f) {
        while (fgets(line, sizeof line, f))
            if (!strncmp(line, "VmHWM:", 6)) kb = atof(line + 6);
        fclose(f);
    }
    if (kb < 0 && getrusage(RUSAGE_SELF, &ru) == 0) kb = (double)ru.ru_maxrss; /* KiB on Linux */
    return kb / 1024.0;
}

/* The best single-core rate of a register-only FMA loop, in GFLOP/s, at the widest vector
   width the compiler targets (*isa: "avx512", "avx2" or "none"; 0 without AVX-512 or
   AVX2 + FMA). Independent of TSF_NO_SIMD: it measures the machine, not the library. */
static volatile float g_sink;
static BENCH_MAYBE_UNUSED double fma_probe_gflops(const char **isa) {
    double best = 0.0;
    int rep;
    long it, n = 1L << 21;
#if defined(__AVX512F__)
    *isa = "avx512";
    for (rep = 0; rep < 5; rep++) {
        __m512 x[16], b = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f), s;
        double t0, t;
        int i;
        for (i = 0; i < 16; i++) x[i] = _mm512_set1_ps((float)i);
        t0 = now_s();
        for (it = 0; it < n; it++) { /* unrolled by hand: x[] must stay in registers */
#define PROBE_F(i) x[i] = _mm512_fmadd_ps(x[i], b, c);
            /* clang-format off */
            PROBE_F(0) PROBE_F(1) PROBE_F(2) PROBE_F(3) PROBE_F(4) PROBE_F(5) PROBE_F(6)
            PROBE_F(7) PROBE_F(8) PROBE_F(9) PROBE_F(10) PROBE_F(11) PROBE_F(12) PROBE_F(13)
            PROBE_F(14) PROBE_F(15)
            /* clang-format on */
#undef PROBE_F
        }
        t = now_s() - t0;
        s = x[0];
        for (i = 1; i < 16; i++) s = _mm512_add_ps(s, x[i]);
        g_sink = _mm512_reduce_add_ps(s);
        if (t > 0 && (double)n * 16 * 32 / t * 1e-9 > best) best = (double)n * 16 * 32 / t * 1e-9;
    }
#elif defined(__AVX2__) && defined(__FMA__)
    *isa = "avx2";
    for (rep = 0; rep < 5; rep++) {
        __m256 x[12], b = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f), s;
        float v[8];
        double t0, t;
        int i;
        for (i = 0; i < 12; i++) x[i] = _mm256_set1_ps((float)i);
        t0 = now_s();
        for (it = 0; it < n; it++) {
#define PROBE_F(i) x[i] = _mm256_fmadd_ps(x[i], b, c);
            /* clang-format off */
            PROBE_F(0) PROBE_F(1) PROBE_F(2) PROBE_F(3) PROBE_F(4) PROBE_F(5) PROBE_F(6)
            PROBE_F(7) PROBE_F(8) PROBE_F(9) PROBE_F(10) PROBE_F(11)
            /* clang-format on */
#undef PROBE_F
        }
        t = now_s() - t0;
        s = x[0];
        for (i = 1; i < 12; i++) s = _mm256_add_ps(s, x[i]);
        _mm256_storeu_ps(v, s);
        g_sink = v[0] + v[7];
        if (t > 0 && (double)n * 12 * 16 / t * 1e-9 > best) best = (double)n * 12 * 16 / t * 1e-9;
    }
#else
    *isa = "none";
    g_sink = 0.0f;
    (void)rep, (void)it, (void)n;
#endif
    return best;
}

/* ---- output ------------------------------------------------------------------------------------
 */
/* The compiler's name, without the trailing space of __clang_version__. */
static BENCH_MAYBE_UNUSED void compiler_name(char *out, size_t size) {
    size_t n = strlen(BENCH_COMPILER) < size - 1 ? strlen(BENCH_COMPILER) : size - 1;
    memcpy(out, BENCH_COMPILER, n);
    while (n > 0 && out[n - 1] == ' ') n--;
    out[n] = '\0';
}

/* The start of a benchmark's header line, "# NAME[WHAT]: timesformer.h VERSION, simd PATH,
   COMPILER"; the benchmark adds its own fields and the newline. */
static BENCH_MAYBE_UNUSED void print_header_start(const char *name, const char *what) {
    char compiler[128];
    compiler_name(compiler, sizeof compiler);
    printf("# %s%s: timesformer.h %s, simd %s, %s", name, what, tsf_version(), tsf_simd_name(),
           compiler);
}

/* A table cell: v as "%W.Pf", or "-" right-aligned in W columns when !have; then `after`. */
static BENCH_MAYBE_UNUSED void print_cell(int have, double v, int width, int prec,
                                          const char *after) {
    if (have)
        printf("%*.*f%s", width, prec, v, after);
    else
        printf("%*s%s", width, "-", after);
}

/* ---- options -----------------------------------------------------------------------------------
 */
/* A comma-separated list of integers in [lo, hi] into list (at most max); the count, or -1. */
static BENCH_MAYBE_UNUSED int parse_ints(const char *arg, int *list, int max, int lo, int hi) {
    int n = 0;
    const char *p = arg;
    while (*p) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < lo || v > hi || n >= max || (*end && *end != ',')) return -1;
        list[n++] = (int)v;
        p = *end ? end + 1 : end;
    }
    return n;
}

#endif /* BENCH_COMMON_H */
