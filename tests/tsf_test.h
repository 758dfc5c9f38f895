/* tsf_test.h - a tiny test framework for the timesformer.h tests (C99 and C++).

   A test is `static void test_xxx(void)`; main() passes a table of {name, fn} to
   tsft_main(). Checks record a failure and let the test go on (REQUIRE returns instead):

       CHECK(cond)
       CHECK_EQ_INT(got, want)
       CHECK_NEAR(got, want, atol, rtol)        passes when |got - want| <= atol + rtol*|want|
       CHECK_ARRAY_NEAR(got, want, n, atol, rtol)   float got[n] against double want[n], elementwise
       CHECK_VEC_REL(got, want, n, rtol, atol)  whole-vector check for gradients:
                                                max|got - want| <= rtol * max|want| + atol
       REQUIRE(cond)                            like CHECK, then returns from the test

   The runner prints `[PASS] name (N ms)` or `[FAIL] name: file:line: expr (got ..., want ...)`
   for every test (later failures of the same test follow on indented lines), and as its very
   last line `N passed, M failed`. tsft_main returns non-zero when any test failed.
   `./test_main SUBSTR` runs only the tests whose name contains SUBSTR.

   Memory: tsft_alloc / tsft_allocd return zeroed buffers that are freed after each test, so
   a test may return early without leaking. Randomness: seed a tsf_rng with a fixed seed.

   Include this file before any system header (it asks for POSIX clock_gettime). Every
   function is static inline, so a file that uses only a few of them compiles warning-free. */
#ifndef TSF_TEST_H
#define TSF_TEST_H

#if !defined(__cplusplus) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#endif

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct tsft_case {
    const char *name;
    void (*fn)(void);
} tsft_case;

#define TSFT_MAX_MSGS 4
#define TSFT_MSG_LEN 400

/* The state of the running test. */
typedef struct tsft_state {
    int failed_checks;
    char msgs[TSFT_MAX_MSGS][TSFT_MSG_LEN + 256]; /* file:line: what */
    void **allocs;
    size_t nallocs, cap;
} tsft_state;

static inline tsft_state *tsft_st(void) {
    static tsft_state st;
    return &st;
}

static inline void tsft_record(const char *file, int line, const char *what) {
    tsft_state *st = tsft_st();
    if (st->failed_checks < TSFT_MAX_MSGS)
        snprintf(st->msgs[st->failed_checks], sizeof st->msgs[0], "%s:%d: %s", file, line, what);
    st->failed_checks++;
}

static inline int tsft_check(int ok, const char *file, int line, const char *expr) {
    if (!ok) {
        char buf[TSFT_MSG_LEN];
        snprintf(buf, sizeof buf, "%s (got false, want true)", expr);
        tsft_record(file, line, buf);
    }
    return ok;
}

static inline int tsft_check_int(long long got, long long want, const char *file, int line,
                                 const char *expr) {
    if (got != want) {
        char buf[TSFT_MSG_LEN];
        snprintf(buf, sizeof buf, "%s (got %lld, want %lld)", expr, got, want);
        tsft_record(file, line, buf);
        return 0;
    }
    return 1;
}

/* NaN never passes: the comparison is written so that NaN makes it false. */
static inline int tsft_near_ok(double got, double want, double atol, double rtol) {
    return fabs(got - want) <= atol + rtol * fabs(want);
}

static inline int tsft_check_near(double got, double want, double atol, double rtol,
                                  const char *file, int line, const char *expr) {
    if (!tsft_near_ok(got, want, atol, rtol)) {
        char buf[TSFT_MSG_LEN];
        snprintf(buf, sizeof buf, "%s (got %.9g, want %.9g, |diff| %.3g > tol %.3g)", expr, got,
                 want, fabs(got - want), atol + rtol * fabs(want));
        tsft_record(file, line, buf);
        return 0;
    }
    return 1;
}

/* Elementwise; reports the element that exceeds its tolerance by the largest factor. */
static inline int tsft_check_array(const float *got, const double *want, size_t n, double atol,
                                   double rtol, const char *file, int line, const char *expr) {
    size_t i, bad = 0, worst = 0;
    double worst_ratio = -1.0;
    for (i = 0; i < n; i++) {
        double tol = atol + rtol * fabs(want[i]), err = fabs((double)got[i] - want[i]);
        if (!(err <= tol)) {
            double ratio = err == err ? err / tol : HUGE_VAL; /* NaN is the worst */
            if (bad == 0 || ratio > worst_ratio) worst_ratio = ratio, worst = i;
            bad++;
        }
    }
    if (bad) {
        char buf[TSFT_MSG_LEN];
        snprintf(buf, sizeof buf, "%s [%zu of %zu] (got %.9g, want %.9g; %zu elements out of tol)",
                 expr, worst, n, (double)got[worst], want[worst], bad);
        tsft_record(file, line, buf);
        return 0;
    }
    return 1;
}

/* Whole-vector relative check, for gradients: max|got - want| <= rtol * max|want| + atol. */
static inline int tsft_check_vec(const float *got, const double *want, size_t n, double rtol,
                                 double atol, const char *file, int line, const char *expr) {
    size_t i, worst = 0;
    double maxerr = 0.0, maxref = 0.0;
    int nan = 0;
    for (i = 0; i < n; i++) {
        double err = fabs((double)got[i] - want[i]);
        if (!(err == err)) nan = 1, worst = i;
        if (err > maxerr) maxerr = err, worst = i;
        if (fabs(want[i]) > maxref) maxref = fabs(want[i]);
    }
    if (nan || !(maxerr <= rtol * maxref + atol)) {
        char buf[TSFT_MSG_LEN];
        snprintf(buf, sizeof buf,
                 "%s [%zu of %zu] (got %.7g, want %.7g; max err %.3g > %.3g = %g*max|want| + %g)",
                 expr, worst, n, (double)got[worst], want[worst], maxerr, rtol * maxref + atol,
                 rtol, atol);
        tsft_record(file, line, buf);
        return 0;
    }
    return 1;
}

#define CHECK(cond) tsft_check((cond) ? 1 : 0, __FILE__, __LINE__, #cond)
#define REQUIRE(cond)                                                                              \
    do {                                                                                           \
        if (!tsft_check((cond) ? 1 : 0, __FILE__, __LINE__, #cond)) return;                        \
    } while (0)
#define CHECK_EQ_INT(got, want)                                                                    \
    tsft_check_int((long long)(got), (long long)(want), __FILE__, __LINE__, #got " == " #want)
#define CHECK_NEAR(got, want, atol, rtol)                                                          \
    tsft_check_near((double)(got), (double)(want), (double)(atol), (double)(rtol), __FILE__,       \
                    __LINE__, #got " ~ " #want)
#define CHECK_ARRAY_NEAR(got, want, n, atol, rtol)                                                 \
    tsft_check_array((got), (want), (size_t)(n), (double)(atol), (double)(rtol), __FILE__,         \
                     __LINE__, #got " ~ " #want)
#define CHECK_VEC_REL(got, want, n, rtol, atol)                                                    \
    tsft_check_vec((got), (want), (size_t)(n), (double)(rtol), (double)(atol), __FILE__, __LINE__, \
                   #got " ~ " #want)

/* ---- per-test memory --------------------------------------------------------------------- */
static inline void *tsft_alloc_bytes(size_t bytes) {
    tsft_state *st = tsft_st();
    void *p = calloc(bytes ? bytes : 1, 1);
    if (!p) {
        fprintf(stderr, "tsf_test: out of memory (%zu bytes)\n", bytes);
        exit(2);
    }
    if (st->nallocs == st->cap) {
        size_t cap = st->cap ? 2 * st->cap : 64;
        void **a = (void **)realloc(st->allocs, cap * sizeof *a);
        if (!a) {
            fprintf(stderr, "tsf_test: out of memory\n");
            exit(2);
        }
        st->allocs = a, st->cap = cap;
    }
    st->allocs[st->nallocs++] = p;
    return p;
}
static inline float *tsft_alloc(size_t n) { return (float *)tsft_alloc_bytes(n * sizeof(float)); }
static inline double *tsft_allocd(size_t n) {
    return (double *)tsft_alloc_bytes(n * sizeof(double));
}
static inline void tsft_free_all(void) {
    tsft_state *st = tsft_st();
    size_t i;
    for (i = 0; i < st->nallocs; i++) free(st->allocs[i]);
    free(st->allocs);
    st->allocs = NULL, st->nallocs = st->cap = 0;
}

/* ---- runner ------------------------------------------------------------------------------ */
static inline double tsft_now_ms(void) {
#if defined(CLOCK_MONOTONIC)
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
#else
    return (double)clock() * 1e3 / CLOCKS_PER_SEC;
#endif
}

/* Runs the tests whose name contains filter (NULL: all). Returns the number that failed. */
static inline int tsft_run(const tsft_case *tests, int ntests, const char *filter) {
    tsft_state *st = tsft_st();
    int i, k, passed = 0, failed = 0;
    for (i = 0; i < ntests; i++) {
        double t0, ms;
        if (filter && !strstr(tests[i].name, filter)) continue;
        st->failed_checks = 0;
        fflush(stdout);
        t0 = tsft_now_ms();
        tests[i].fn();
        ms = tsft_now_ms() - t0;
        tsft_free_all();
        if (st->failed_checks == 0) {
            printf("[PASS] %s (%.0f ms)\n", tests[i].name, ms);
            passed++;
        } else {
            printf("[FAIL] %s: %s\n", tests[i].name, st->msgs[0]);
            for (k = 1; k < st->failed_checks && k < TSFT_MAX_MSGS; k++)
                printf("       also %s\n", st->msgs[k]);
            if (st->failed_checks > TSFT_MAX_MSGS)
                printf("       and %d more failed checks\n", st->failed_checks - TSFT_MAX_MSGS);
            failed++;
        }
        fflush(stdout);
    }
    if (filter && passed + failed == 0) printf("note: no test name contains \"%s\"\n", filter);
    printf("%d passed, %d failed\n", passed, failed);
    fflush(stdout);
    return failed;
}

/* main() for a test program: ./prog [SUBSTR]. */
static inline int tsft_main(const tsft_case *tests, int ntests, int argc, char **argv) {
    return tsft_run(tests, ntests, argc > 1 ? argv[1] : NULL) ? 1 : 0;
}

#define TSFT_COUNT(table) ((int)(sizeof(table) / sizeof((table)[0])))

#endif /* TSF_TEST_H */
