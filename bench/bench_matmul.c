/* bench/bench_matmul.c - throughput of tsf_matmul() on the shapes of TimeSformer

   WHAT IT DOES

   Times the matrix products of a TimeSformer training step, as the library runs them, and
   reports GFLOP/s (2*M*N*K*count / time) and the percentage of this machine's peak:
     - ViT-B/16 at 8 x 224^2 (D = 768, 1569 tokens): the four Linear layers qkv (768 -> 2304),
       proj (768 -> 768), fc1 (768 -> 3072) and fc2 (3072 -> 768), each in its three forms
           fwd  y  = x . W^T     tsf_matmul_nt   M = tokens, N = out, K = in
           dx   dx += dy . W     tsf_matmul_nn   M = tokens, N = in,  K = out
           dw   dW += dy^T . x   tsf_matmul_tn   M = out,    N = in,  K = tokens
       (the backward forms accumulate, as tsf_linear_backward does);
     - attention, batched through tsf_matmul's count/group with the strides of the real model:
       q, k, v sit in a qkv buffer of row stride 3*768 = 2304, head g at column 64*g, so
       lda/ldb = 2304, count = sequences, group = 12 heads, group stride 64. The scores
       S = Q.K^T (op "nt") and the product P.V (op "nn", P contiguous L x L per item, the
       output written at row stride 768) for
           spatial   8 sequences x 12 heads of L = 197   (197x197x64 and 197x64x197, x96)
           temporal  196 sequences x 12 heads of L = 8   (8x8x64 and 8x64x8, x2352)
           joint     1 sequence x 12 heads of L = 1569   (1569x1569x64 and 1569x64x1569, x12);
     - a small model (D = 192, hidden 768) at 393 and 1572 tokens: qkv M x 576 x 192,
       proj M x 192 x 192, fc1 M x 768 x 192, fc2 M x 192 x 768, the same three forms.
   Every shape is first checked: a subsample of C (about 200 entries, corners included) is
   compared with a double-precision reference, the whole of C must be finite (C starts as
   NaN when the product overwrites it), and the other thread counts, and a call without the
   work space, must give bit-identical results (as the header promises). The library is
   timed as the model calls it: with a work space (tsf_matmul_desc.work) of
   tsf_matmul_work_floats(most threads timed) floats, allocated once (--no-work: without;
   OpenBLAS allocates its own buffers). With OpenBLAS the whole of C is also compared with
   cblas_sgemm's. A failure prints what went wrong and exits with status 1.
   Timing: a warm-up call, then REPS repetitions (7; 3 with --quick) of a loop of calls that
   lasts at least MIN_MS (50 ms; 10 with --quick), timed with clock_gettime(CLOCK_MONOTONIC);
   the MEDIAN time per call is reported (the JSON also gives the fastest, "ms_min"). With
   OpenBLAS, cblas_sgemm runs the same shapes (row-major, same transposes and strides; a
   batch is a loop of calls) in the same run, its repetitions interleaved with tsf's
   (alternating which goes first) so that machine noise hits both, and
   ratio = tsf GFLOP/s / OpenBLAS GFLOP/s (> 1: tsf is faster). With more than one thread,
   the bench pauses SETTLE_MS (200 ms; --settle-ms) each time it switches from one library to
   the other: after a call, OpenBLAS's worker threads keep spinning for 2^28 clock ticks
   (about 0.1 s) before they sleep, and timed at once the library's threads would share the
   cores with them (some shapes then ran at half speed, while alone they did not); OpenMP's
   threads spin briefly too. The pause lets both sides start on idle cores.
   Threads: each thread count of --threads is set with omp_set_num_threads() and
   openblas_set_num_threads(). Without -fopenmp (or with TSF_NO_OPENMP) only 1 thread runs.

   Peak: PEAK_PER_CORE_GFLOPS = 117.0 GFLOP/s per core, measured on the reference machine
   (2-core AMD EPYC, Zen 5, KVM) as 32 flop/cycle at about 3.6 GHz; % of peak =
   GFLOP/s / (117 * threads). Override with -DPEAK_PER_CORE_GFLOPS=x or --peak x. The header
   line also prints an FMA probe: the best single-core rate of a register-only FMA loop at
   the widest vector width the compiler targets (AVX-512 or AVX2 + FMA), for comparison.
   NOTE: on the reference machine that probe gives about 122 GFLOP/s with AVX2 but about
   245 GFLOP/s with AVX-512 (Zen 5 has full-width 512-bit FMA units), so 117 is the AVX2
   peak; a percentage for the avx512 path measured against 117 can exceed 100.

   BUILD AND RUN (from the repository root)

       make bench        (builds build/bench_matmul with the flags below; the Makefile adds
                          -DTSF_BENCH_OPENBLAS -lopenblas when cblas.h and libopenblas exist)
   or by hand:
       mkdir -p build
       gcc -O2 -march=native -fopenmp -DTSF_BENCH_OPENBLAS -I. bench/bench_matmul.c \
           -o build/bench_matmul -lopenblas -lm
       ./build/bench_matmul                      # full run, 1 and 2 threads, about 75 s
       ./build/bench_matmul --quick              # smoke run, fewer and shorter repetitions
       ./build/bench_matmul --filter vitb_ --threads 2
   The portable kernels (report their % of peak at -O2):
       gcc -O2 -march=native -fopenmp -DTSF_NO_SIMD -I. bench/bench_matmul.c \
           -o build/bench_matmul_portable -lm
       gcc -O2 -DTSF_NO_SIMD -I. bench/bench_matmul.c -o build/bench_matmul_portable -lm
   (1.5 to 2 minutes: the portable kernels are slower.)
   OpenBLAS 0.3.21 (Debian 12) does not know Zen 5 and picks its Haswell (AVX2) kernels
   (about 115 GFLOP/s per core here); OPENBLAS_CORETYPE=SkylakeX ./build/bench_matmul makes
   it use its AVX-512 ones (about 210). The header line names the core OpenBLAS chose.
   Other processes on the machine ruin multi-thread timings (an OpenMP region waits for its
   slowest thread): the header line gives the load average and a warning goes to stderr
   when it is 0.5 or more.

   OPTIONS
       --quick            3 repetitions of >= 10 ms instead of 7 of >= 50 ms
       --filter SUBSTR    only the shapes whose name contains SUBSTR (see --list)
       --threads LIST     comma-separated thread counts, default 1,2
       --no-work          call tsf_matmul without its work space (tsf_matmul_desc.work)
       --reps N, --min-ms X, --settle-ms X, --peak GFLOPS, --no-openblas, --list, --help

   OUTPUT (stdout)
       # bench_matmul: ... one header line: SIMD path, compiler, target, block sizes, peak
       {"bench":"matmul","shape":"vitb_qkv_fwd","op":"nt","M":1569,"N":2304,"K":768,
        "count":1,"threads":1,"simd":"avx512","work":1,"ms":..,"gflops":..,"peak_pct":..,
        "openblas_gflops":..,"ratio":..,...}        one JSON object per line per measurement
       then an aligned table of all measurements and the geometric mean of the ratios, and
       per thread count a line and a {"bench":"matmul_summary",...} object: the geometric
       mean, the weakest shape's ratio, and the slowest ViT-B layer's GFLOP/s and share of
       the FMA probe (bench/bench_isa.sh, make bench, gathers them over the SIMD paths).
   JSON lines start with '{' (grep '^{' to keep only them); the openblas fields are null
   when OpenBLAS is not compiled in. Messages about checks go to stderr.
*/
#define _POSIX_C_SOURCE 200809L

#define TIMESFORMER_IMPLEMENTATION
#include "timesformer.h"

#include "bench_common.h"

/* What the compiler targets, for the header line. */
#if defined(__AVX512F__)
#define BENCH_T_AVX512 " avx512f"
#else
#define BENCH_T_AVX512 ""
#endif
#if defined(__AVX2__)
#define BENCH_T_AVX2 " avx2"
#else
#define BENCH_T_AVX2 ""
#endif
#if defined(__FMA__)
#define BENCH_T_FMA " fma"
#else
#define BENCH_T_FMA ""
#endif
#if defined(__ARM_NEON)
#define BENCH_T_NEON " neon"
#else
#define BENCH_T_NEON ""
#endif

/* ---- shapes ------------------------------------------------------------------------------ */
enum { KIND_LINEAR, KIND_BATCHED };

typedef struct shape {
    char name[40];
    int kind; /* KIND_LINEAR: natural strides, one product; KIND_BATCHED: attention's */
    int M, N, K, trans_a, trans_b, lda, ldb, ldc, accumulate;
    int seqs, heads;               /* count and group of tsf_matmul_desc */
    size_t sa, sb, sc, ga, gb, gc; /* strides between sequences and between heads */
    size_t a_floats, b_floats, c_floats;
    size_t a_off, b_off; /* A = abuf + a_off; B = (b_in_a ? abuf : bbuf) + b_off */
    int b_in_a;          /* q and k: A and B are two column ranges of one qkv buffer */
    float a_max;         /* A is uniform in [-a_max, a_max), or [0, a_max) if a_prob */
    int a_prob;
} shape;

#define MAX_SHAPES 64
static shape g_shapes[MAX_SHAPES];
static int g_nshapes;

static shape *new_shape(const char *prefix, const char *layer, const char *form) {
    shape *s;
    if (g_nshapes >= MAX_SHAPES) {
        fprintf(stderr, "bench_matmul: too many shapes\n");
        exit(1);
    }
    s = &g_shapes[g_nshapes++];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s_%s_%s", prefix, layer, form);
    s->seqs = 1, s->heads = 1, s->a_max = 1.0f;
    return s;
}

/* The three products of a Linear layer in -> out over `tokens` rows. */
static void add_linear(const char *prefix, const char *layer, int tokens, int in, int out) {
    shape *s = new_shape(prefix, layer, "fwd"); /* y = x . W^T */
    s->kind = KIND_LINEAR, s->M = tokens, s->N = out, s->K = in, s->trans_b = 1;
    s->lda = in, s->ldb = in, s->ldc = out;
    s->a_floats = (size_t)tokens * in, s->b_floats = (size_t)out * in;
    s->c_floats = (size_t)tokens * out;

    s = new_shape(prefix, layer, "dx"); /* dx += dy . W */
    s->kind = KIND_LINEAR, s->M = tokens, s->N = in, s->K = out, s->accumulate = 1;
    s->lda = out, s->ldb = in, s->ldc = in;
    s->a_floats = (size_t)tokens * out, s->b_floats = (size_t)out * in;
    s->c_floats = (size_t)tokens * in;

    s = new_shape(prefix, layer, "dw"); /* dW += dy^T . x, dy stored (tokens, out) */
    s->kind = KIND_LINEAR, s->M = out, s->N = in, s->K = tokens, s->trans_a = 1, s->accumulate = 1;
    s->lda = out, s->ldb = in, s->ldc = in;
    s->a_floats = (size_t)tokens * out, s->b_floats = (size_t)tokens * in;
    s->c_floats = (size_t)out * in;
}

/* The two products of attention over S sequences of L tokens, ViT-B widths (12 heads of
   64): scores = q . k^T into att // (S, 12, L, L), and out = att . v into out // (S, L, 768),
   with q, k, v inside qkv // (S, L, 2304). */
static void add_attention(const char *variant, int S, int L) {
    const int D = 768, NH = 12, HS = 64, LD = 3 * 768;
    size_t ll = (size_t)L * L;
    shape *s = new_shape("attn", variant, "qk");
    s->kind = KIND_BATCHED, s->M = L, s->N = L, s->K = HS, s->trans_b = 1;
    s->seqs = S, s->heads = NH;
    s->lda = LD, s->sa = (size_t)L * LD, s->ga = (size_t)HS, s->a_off = 0;
    s->ldb = LD, s->sb = (size_t)L * LD, s->gb = (size_t)HS, s->b_off = (size_t)D, s->b_in_a = 1;
    s->ldc = L, s->sc = NH * ll, s->gc = ll;
    s->a_floats = (size_t)S * L * LD, s->c_floats = (size_t)S * NH * ll;

    s = new_shape("attn", variant, "av");
    s->kind = KIND_BATCHED, s->M = L, s->N = HS, s->K = L;
    s->seqs = S, s->heads = NH;
    s->lda = L, s->sa = NH * ll, s->ga = ll, s->a_prob = 1, s->a_max = 2.0f / (float)L;
    s->ldb = LD, s->sb = (size_t)L * LD, s->gb = (size_t)HS, s->b_off = (size_t)(2 * D);
    s->ldc = D, s->sc = (size_t)L * D, s->gc = (size_t)HS;
    s->a_floats = (size_t)S * NH * ll, s->b_floats = (size_t)S * L * LD;
    s->c_floats = (size_t)S * L * D;
}

static void build_shapes(void) {
    add_linear("vitb", "qkv", 1569, 768, 2304);
    add_linear("vitb", "proj", 1569, 768, 768);
    add_linear("vitb", "fc1", 1569, 768, 3072);
    add_linear("vitb", "fc2", 1569, 3072, 768);
    add_attention("spatial", 8, 197);
    add_attention("temporal", 196, 8);
    add_attention("joint", 1, 1569);
    add_linear("small393", "qkv", 393, 192, 576);
    add_linear("small393", "proj", 393, 192, 192);
    add_linear("small393", "fc1", 393, 192, 768);
    add_linear("small393", "fc2", 393, 768, 192);
    add_linear("small1572", "qkv", 1572, 192, 576);
    add_linear("small1572", "proj", 1572, 192, 192);
    add_linear("small1572", "fc1", 1572, 192, 768);
    add_linear("small1572", "fc2", 1572, 768, 192);
}

static const char *op_name(const shape *s) {
    return s->trans_a ? (s->trans_b ? "tt" : "tn") : (s->trans_b ? "nt" : "nn");
}
static double shape_flops(const shape *s) {
    return 2.0 * s->M * s->N * (double)s->K * s->seqs * s->heads;
}

/* ---- the products ------------------------------------------------------------------------- */
typedef struct operands {
    const float *A, *B;
    float *C;
} operands;

/* The products' work space (tsf_matmul_desc.work), as the model passes it: NULL with
   --no-work. */
static float *g_work;
static size_t g_work_floats;

static void run_tsf_with(const shape *s, const operands *o, float *work) {
    tsf_matmul_desc d;
    memset(&d, 0, sizeof d);
    d.M = s->M, d.N = s->N, d.K = s->K;
    d.A = o->A, d.trans_a = s->trans_a;
    d.B = o->B, d.trans_b = s->trans_b;
    d.C = o->C, d.accumulate = s->accumulate;
    d.work = work, d.work_floats = work ? g_work_floats : 0;
    if (s->kind != KIND_LINEAR) { /* the strides and batches of attention */
        d.lda = s->lda, d.ldb = s->ldb, d.ldc = s->ldc;
        d.count = s->seqs, d.group = s->heads;
        d.stride_a = s->sa, d.stride_b = s->sb, d.stride_c = s->sc;
        d.group_stride_a = s->ga, d.group_stride_b = s->gb, d.group_stride_c = s->gc;
    }
    tsf_matmul(&d);
}
static void run_tsf(const shape *s, const operands *o) { run_tsf_with(s, o, g_work); }

#if BENCH_HAVE_OPENBLAS
static void run_openblas(const shape *s, const operands *o) {
    int i, g;
    for (i = 0; i < s->seqs; i++)
        for (g = 0; g < s->heads; g++)
            cblas_sgemm(CblasRowMajor, s->trans_a ? CblasTrans : CblasNoTrans,
                        s->trans_b ? CblasTrans : CblasNoTrans, s->M, s->N, s->K, 1.0f,
                        o->A + i * s->sa + g * s->ga, s->lda, o->B + i * s->sb + g * s->gb, s->ldb,
                        s->accumulate ? 1.0f : 0.0f, o->C + i * s->sc + g * s->gc, s->ldc);
}
#endif

typedef void (*run_fn)(const shape *, const operands *);

/* ---- helpers ------------------------------------------------------------------------------ */
static float *alloc_floats(size_t n, const char *what) {
    float *p = (float *)malloc((n ? n : 1) * sizeof(float));
    if (!p) {
        fprintf(stderr, "bench_matmul: out of memory allocating %s (%zu floats)\n", what, n);
        exit(1);
    }
    return p;
}

static void fill_uniform(float *x, size_t n, float lo, float hi, unsigned long long seed) {
    tsf_rng rng;
    size_t i;
    tsf_rng_seed(&rng, seed);
    for (i = 0; i < n; i++) x[i] = lo + (hi - lo) * tsf_rng_uniform(&rng);
}

/* C before a checked call: NaN when the product overwrites C (so an unwritten entry shows),
   a fixed random pattern when it accumulates. */
static void fill_c0(const shape *s, float *C) {
    size_t i;
    if (s->accumulate)
        fill_uniform(C, s->c_floats, -1.0f, 1.0f, 777);
    else
        for (i = 0; i < s->c_floats; i++) C[i] = NAN;
}

/* ---- correctness -------------------------------------------------------------------------- */
typedef struct sample {
    long item;
    int i, j;
    double c0; /* C(i, j) before the call (accumulating shapes) */
} sample;

#define NSAMPLES 200

static size_t c_index(const shape *s, long item, int i, int j) {
    long seq = item / s->heads, g = item % s->heads;
    return (size_t)seq * s->sc + (size_t)g * s->gc + (size_t)i * s->ldc + (size_t)j;
}

/* op(A) . op(B) at (i, j) of one item, in double; *sumabs gets sum |a*b|. */
static double reference(const shape *s, const operands *o, long item, int i, int j,
                        double *sumabs) {
    long seq = item / s->heads, g = item % s->heads;
    const float *a = o->A + (size_t)seq * s->sa + (size_t)g * s->ga;
    const float *b = o->B + (size_t)seq * s->sb + (size_t)g * s->gb;
    double sum = 0.0, abssum = 0.0;
    int p;
    for (p = 0; p < s->K; p++) {
        double x = (double)(s->trans_a ? a[(size_t)p * s->lda + i] : a[(size_t)i * s->lda + p]);
        double y = (double)(s->trans_b ? b[(size_t)j * s->ldb + p] : b[(size_t)p * s->ldb + j]);
        sum += x * y;
        abssum += fabs(x * y);
    }
    *sumabs = abssum;
    return sum;
}

static void fail(const shape *s, int threads, const char *what) {
    fprintf(stderr,
            "\nbench_matmul: CHECK FAILED for %s (%s %dx%dx%d x%d, %d thread%s, simd %s):\n"
            "  %s\n",
            s->name, op_name(s), s->M, s->N, s->K, s->seqs * s->heads, threads,
            threads == 1 ? "" : "s", tsf_simd_name(), what);
    exit(1);
}

static void pick_samples(const shape *s, const float *C0, sample *smp) {
    tsf_rng rng;
    long items = (long)s->seqs * s->heads;
    int k;
    tsf_rng_seed(&rng, 12345);
    for (k = 0; k < NSAMPLES; k++) {
        sample *q = &smp[k];
        switch (k) { /* the corners of the first and the last item, then random entries */
        case 0:
            q->item = 0, q->i = 0, q->j = 0;
            break;
        case 1:
            q->item = 0, q->i = s->M - 1, q->j = s->N - 1;
            break;
        case 2:
            q->item = items - 1, q->i = s->M - 1, q->j = 0;
            break;
        case 3:
            q->item = items - 1, q->i = 0, q->j = s->N - 1;
            break;
        case 4:
            q->item = items - 1, q->i = s->M - 1, q->j = s->N - 1;
            break;
        default:
            q->item = (long)(tsf_rng_u32(&rng) % (unsigned int)items);
            q->i = (int)(tsf_rng_u32(&rng) % (unsigned int)s->M);
            q->j = (int)(tsf_rng_u32(&rng) % (unsigned int)s->N);
        }
        q->c0 = s->accumulate ? (double)C0[c_index(s, q->item, q->i, q->j)] : 0.0;
    }
}

/* Compare C with the reference at the samples; returns 0 or writes a message. */
static int check_samples(const shape *s, const operands *o, const sample *smp, const char *who,
                         char *msg, size_t msg_size) {
    int k;
    for (k = 0; k < NSAMPLES; k++) {
        const sample *q = &smp[k];
        double sumabs, ref = q->c0 + reference(s, o, q->item, q->i, q->j, &sumabs);
        double got = (double)o->C[c_index(s, q->item, q->i, q->j)];
        double tol = 1e-4 * (sumabs + fabs(q->c0)) + 1e-30;
        if (!(fabs(got - ref) <= tol)) {
            snprintf(msg, msg_size,
                     "%s: item %ld, C(%d, %d) = %.9g but the reference is %.9g "
                     "(difference %.3g, tolerance %.3g)",
                     who, q->item, q->i, q->j, got, ref, fabs(got - ref), tol);
            return 1;
        }
    }
    return 0;
}

/* The check of one shape at the first thread count; returns the hash of tsf's C. */
static unsigned long long check_shape(const shape *s, operands *o, float *C2, int threads) {
    sample smp[NSAMPLES];
    char msg[512];
    size_t i;
    unsigned long long h;
    fill_c0(s, o->C);
    pick_samples(s, o->C, smp);
    run_tsf(s, o);
    for (i = 0; i < s->c_floats; i++)
        if (!isfinite(o->C[i])) {
            snprintf(msg, sizeof msg,
                     "tsf left C[%zu] = %g: an entry of C was not written or is not finite", i,
                     (double)o->C[i]);
            fail(s, threads, msg);
        }
    if (check_samples(s, o, smp, "tsf", msg, sizeof msg)) fail(s, threads, msg);
    h = hash_floats(o->C, s->c_floats);
    if (g_work) { /* without the work space: the same bits */
        fill_c0(s, o->C);
        run_tsf_with(s, o, NULL);
        if (hash_floats(o->C, s->c_floats) != h)
            fail(s, threads,
                 "the result without work space differs from the result with it "
                 "(the header promises the same bits)");
    }
#if BENCH_HAVE_OPENBLAS
    if (C2) {
        operands ob = *o;
        double amax = (double)s->a_max, tol = 1e-4 * ((double)s->K * amax + 1.0);
        ob.C = C2;
        fill_c0(s, C2);
        run_openblas(s, &ob);
        if (check_samples(s, &ob, smp, "OpenBLAS (the benchmark's cblas_sgemm call is wrong)", msg,
                          sizeof msg))
            fail(s, threads, msg);
        for (i = 0; i < s->c_floats; i++) {
            double d = fabs((double)o->C[i] - (double)C2[i]);
            if (!(d <= tol)) {
                snprintf(msg, sizeof msg,
                         "tsf and OpenBLAS differ at C[%zu]: %.9g vs %.9g (tolerance %.3g)", i,
                         (double)o->C[i], (double)C2[i], tol);
                fail(s, threads, msg);
            }
        }
    }
#else
    (void)C2;
#endif
    return h;
}

/* ---- timing ------------------------------------------------------------------------------- */
static double time_calls(run_fn fn, const shape *s, const operands *o, long iters) {
    double t0 = now_s();
    long k;
    for (k = 0; k < iters; k++) fn(s, o);
    return (now_s() - t0) / (double)iters;
}

/* Sleep ms milliseconds: the other library's idle threads stop spinning meanwhile. */
static void settle(double ms) {
    struct timespec ts;
    if (ms <= 0.0) return;
    ts.tv_sec = (time_t)(ms / 1000.0);
    ts.tv_nsec = (long)((ms - 1000.0 * (double)ts.tv_sec) * 1e6);
    nanosleep(&ts, NULL);
}

/* Warm up and choose how many calls make one repetition last at least min_s. */
static long calibrate(run_fn fn, const shape *s, const operands *o, double min_s) {
    double t = time_calls(fn, s, o, 1); /* warm-up (threads, caches, page faults) */
    long n;
    if (t < min_s) t = time_calls(fn, s, o, 1);
    if (t >= min_s) return 1;
    n = (long)ceil(min_s / (t > 1e-9 ? t : 1e-9));
    return n < 1 ? 1 : n > 10000000 ? 10000000 : n;
}

typedef struct result {
    const shape *s;
    int threads;
    double ms, gflops, ob_ms, ob_gflops;
    double ms_min, ob_ms_min; /* the fastest repetition, for reference on a noisy machine */
    long iters, ob_iters;
} result;

/* ---- main --------------------------------------------------------------------------------- */
static void usage(FILE *f) {
    fprintf(f, "usage: bench_matmul [--quick] [--filter SUBSTR] [--threads 1,2] [--reps N]\n"
               "                    [--min-ms X] [--settle-ms X] [--peak GFLOPS] [--no-openblas]\n"
               "                    [--no-work] [--list]\n");
}

int main(int argc, char **argv) {
    int reps = 7, threads[16] = {1, 2}, nthreads = 2, use_ob = BENCH_HAVE_OPENBLAS, list = 0;
    int use_work = 1;
    double min_ms = 50.0, settle_ms = 200.0, peak = PEAK_PER_CORE_GFLOPS, probe,
           log_ratio[16] = {0};
    const char *filter = NULL, *probe_isa = "none";
    int n_ratio[16] = {0}, a, t, k, nres = 0;
    result *res;

    for (a = 1; a < argc; a++) {
        const char *o = argv[a], *v = a + 1 < argc ? argv[a + 1] : NULL;
        if (!strcmp(o, "--quick")) {
            reps = 3, min_ms = 10.0;
        } else if (!strcmp(o, "--filter") && v) {
            filter = v, a++;
        } else if (!strcmp(o, "--threads") && v) {
            nthreads = parse_ints(v, threads, 16, 1, 1024), a++;
            if (nthreads <= 0) {
                fprintf(stderr, "bench_matmul: bad --threads '%s' (e.g. 1,2)\n", v);
                return 2;
            }
        } else if (!strcmp(o, "--reps") && v) {
            reps = atoi(v), a++;
            if (reps < 1 || reps > 1000) {
                fprintf(stderr, "bench_matmul: bad --reps '%s'\n", v);
                return 2;
            }
        } else if (!strcmp(o, "--min-ms") && v) {
            min_ms = atof(v), a++;
            if (!(min_ms >= 0.0)) {
                fprintf(stderr, "bench_matmul: bad --min-ms '%s'\n", v);
                return 2;
            }
        } else if (!strcmp(o, "--settle-ms") && v) {
            settle_ms = atof(v), a++;
            if (!(settle_ms >= 0.0 && settle_ms <= 10000.0)) {
                fprintf(stderr, "bench_matmul: bad --settle-ms '%s'\n", v);
                return 2;
            }
        } else if (!strcmp(o, "--peak") && v) {
            peak = atof(v), a++;
            if (!(peak > 0.0)) {
                fprintf(stderr, "bench_matmul: bad --peak '%s'\n", v);
                return 2;
            }
        } else if (!strcmp(o, "--no-work")) {
            use_work = 0;
        } else if (!strcmp(o, "--no-openblas")) {
            use_ob = 0;
        } else if (!strcmp(o, "--list")) {
            list = 1;
        } else if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "bench_matmul: unknown or incomplete option '%s'\n", o);
            usage(stderr);
            return 2;
        }
    }
#if !BENCH_OPENMP
    { /* without OpenMP the library is single-threaded: keep 1 only */
        int m = 0;
        for (t = 0; t < nthreads; t++)
            if (threads[t] == 1)
                threads[m++] = 1;
            else
                fprintf(stderr, "bench_matmul: built without OpenMP, skipping %d threads\n",
                        threads[t]);
        nthreads = m > 1 ? 1 : m;
        if (nthreads == 0) {
            fprintf(stderr, "bench_matmul: built without OpenMP: only --threads 1 can run\n");
            return 2;
        }
    }
#endif

    build_shapes();
    if (list) {
        for (k = 0; k < g_nshapes; k++) {
            const shape *s = &g_shapes[k];
            printf("%-22s %s %5dx%-5dx%-5d x%d\n", s->name, op_name(s), s->M, s->N, s->K,
                   s->seqs * s->heads);
        }
        return 0;
    }

    for (k = 0; k < g_nshapes && filter && !strstr(g_shapes[k].name, filter); k++) continue;
    if (k == g_nshapes) {
        fprintf(stderr, "bench_matmul: no shape name contains '%s' (see --list)\n", filter);
        return 2;
    }

    if (use_work) { /* one slot for each of the most threads timed, as the model has */
        int most = 1;
        for (t = 0; t < nthreads; t++) most = threads[t] > most ? threads[t] : most;
        g_work_floats = tsf_matmul_work_floats(most);
        g_work = alloc_floats(g_work_floats, "the work space");
    }
    probe = fma_probe_gflops(&probe_isa);
    print_header_start("bench_matmul", "");
    printf(", target:%s%s%s%s, %s, blocks KC=%d MC=%d NC=%d, openmp %s, threads", BENCH_T_AVX512,
           BENCH_T_AVX2, BENCH_T_FMA, BENCH_T_NEON, BENCH_OPTIMIZED, TSF_MM_KC, TSF_MM_MC,
           TSF_MM_NC, BENCH_OPENMP ? "on" : "off");
    for (t = 0; t < nthreads; t++) printf("%s%d", t ? "," : " ", threads[t]);
    printf(", work space %s", g_work ? "on" : "off (--no-work)");
    printf(", reps %d x >= %.0f ms (median), peak %.1f GFLOP/s/core", reps, min_ms, peak);
    if (probe > 0.0) printf(" (fma probe %s: %.1f)", probe_isa, probe);
#if BENCH_HAVE_OPENBLAS
    if (use_ob)
        printf(", %s, core %s", openblas_get_config(), openblas_get_corename());
    else
        printf(", OpenBLAS off (--no-openblas)");
#else
    printf(", OpenBLAS not compiled in");
#endif
    { /* other work on the machine skews the timings, the multi-thread ones most */
        double load = load_average();
        if (load >= 0.0) printf(", load average %.2f", load);
        warn_load("bench_matmul", load);
    }
    printf("\n");
    fflush(stdout);

    res = (result *)malloc(sizeof(result) * (size_t)g_nshapes * (size_t)nthreads);
    if (!res) {
        fprintf(stderr, "bench_matmul: out of memory\n");
        return 1;
    }

    for (k = 0; k < g_nshapes; k++) {
        const shape *s = &g_shapes[k];
        float *abuf, *bbuf = NULL, *C, *C2 = NULL;
        operands o;
        unsigned long long h0 = 0;
        if (filter && !strstr(s->name, filter)) continue;
        abuf = alloc_floats(s->a_floats, "A");
        if (s->a_prob)
            fill_uniform(abuf, s->a_floats, 0.0f, s->a_max, 1000u + (unsigned)k);
        else
            fill_uniform(abuf, s->a_floats, -s->a_max, s->a_max, 1000u + (unsigned)k);
        if (!s->b_in_a) {
            bbuf = alloc_floats(s->b_floats, "B");
            fill_uniform(bbuf, s->b_floats, -1.0f, 1.0f, 2000u + (unsigned)k);
        }
        C = alloc_floats(s->c_floats, "C");
        if (use_ob) C2 = alloc_floats(s->c_floats, "C (OpenBLAS)");
        o.A = abuf + s->a_off;
        o.B = (s->b_in_a ? abuf : bbuf) + s->b_off;
        o.C = C;

        for (t = 0; t < nthreads; t++) {
            int n = threads[t], r;
            double tsf_t[1000], ob_t[1000], flops = shape_flops(s);
            result *q = &res[nres++];
            set_threads(n);
            if (t == 0) {
                h0 = check_shape(s, &o, C2, n);
            } else { /* same inputs, another thread count: the result must not change */
                fill_c0(s, C);
                run_tsf(s, &o);
                if (hash_floats(C, s->c_floats) != h0) {
                    char msg[160];
                    snprintf(msg, sizeof msg,
                             "the result with %d threads differs from the result with %d "
                             "(the header promises bit-identical results)",
                             n, threads[0]);
                    fail(s, n, msg);
                }
            }
            memset(q, 0, sizeof *q);
            q->s = s, q->threads = n;
            q->iters = calibrate(run_tsf, s, &o, min_ms * 1e-3);
#if BENCH_HAVE_OPENBLAS
            if (use_ob) {
                operands ob = o;
                ob.C = C2;
                q->ob_iters = calibrate(run_openblas, s, &ob, min_ms * 1e-3);
                double pause = n > 1 ? settle_ms : 0.0; /* at each switch of library */
                for (r = 0; r < reps; r++) {   /* interleaved; alternate which runs first */
                    if (r == 0) settle(pause); /* after OpenBLAS's calibration */
                    if (r % 2 == 0) tsf_t[r] = time_calls(run_tsf, s, &o, q->iters);
                    if (r % 2 == 0) settle(pause);
                    ob_t[r] = time_calls(run_openblas, s, &ob, q->ob_iters);
                    if (r % 2 == 1) settle(pause);
                    if (r % 2 == 1) tsf_t[r] = time_calls(run_tsf, s, &o, q->iters);
                }
                q->ob_ms_min = minimum(ob_t, reps) * 1e3;
                q->ob_ms = median(ob_t, reps) * 1e3;
                q->ob_gflops = flops / (q->ob_ms * 1e-3) * 1e-9;
            } else
#endif
            {
                for (r = 0; r < reps; r++) tsf_t[r] = time_calls(run_tsf, s, &o, q->iters);
                (void)ob_t;
            }
            q->ms_min = minimum(tsf_t, reps) * 1e3;
            q->ms = median(tsf_t, reps) * 1e3;
            q->gflops = flops / (q->ms * 1e-3) * 1e-9;

            printf("{\"bench\":\"matmul\",\"shape\":\"%s\",\"op\":\"%s\",\"M\":%d,\"N\":%d,"
                   "\"K\":%d,\"count\":%d,\"seqs\":%d,\"heads\":%d,\"accumulate\":%d,"
                   "\"threads\":%d,\"simd\":\"%s\",\"work\":%d,\"ms\":%.4f,\"gflops\":%.2f,"
                   "\"peak_pct\":%.1f,",
                   s->name, op_name(s), s->M, s->N, s->K, s->seqs * s->heads, s->seqs, s->heads,
                   s->accumulate, n, tsf_simd_name(), g_work != NULL, q->ms, q->gflops,
                   100.0 * q->gflops / (peak * n));
            if (q->ob_ms > 0.0)
                printf("\"openblas_ms\":%.4f,\"openblas_gflops\":%.2f,\"ratio\":%.3f,", q->ob_ms,
                       q->ob_gflops, q->gflops / q->ob_gflops);
            else
                printf("\"openblas_ms\":null,\"openblas_gflops\":null,\"ratio\":null,");
            printf("\"ms_min\":%.4f,", q->ms_min);
            if (q->ob_ms > 0.0)
                printf("\"openblas_ms_min\":%.4f,", q->ob_ms_min);
            else
                printf("\"openblas_ms_min\":null,");
            printf("\"reps\":%d,\"iters\":%ld,\"openblas_iters\":%ld}\n", reps, q->iters,
                   q->ob_iters);
            fflush(stdout);
        }
        free(abuf);
        free(bbuf);
        free(C);
        free(C2);
    }

    /* the table */
    printf("\n%-22s %-2s %16s %5s %3s %9s %8s %6s %9s %6s\n", "shape", "op", "M x N x K", "count",
           "thr", "tsf ms", "GF/s", "%peak", "OBLAS GF/s", "ratio");
    for (k = 0; k < nres; k++) {
        const result *q = &res[k];
        char dims[40];
        snprintf(dims, sizeof dims, "%dx%dx%d", q->s->M, q->s->N, q->s->K);
        printf("%-22s %-2s %16s %5d %3d %9.3f %8.1f %6.1f", q->s->name, op_name(q->s), dims,
               q->s->seqs * q->s->heads, q->threads, q->ms, q->gflops,
               100.0 * q->gflops / (peak * q->threads));
        if (q->ob_ms > 0.0) {
            printf(" %10.1f %6.2f\n", q->ob_gflops, q->gflops / q->ob_gflops);
            for (t = 0; t < nthreads; t++)
                if (threads[t] == q->threads)
                    log_ratio[t] += log(q->gflops / q->ob_gflops), n_ratio[t]++;
        } else {
            printf(" %10s %6s\n", "-", "-");
        }
    }
    for (t = 0; t < nthreads; t++)
        if (n_ratio[t])
            printf("geometric mean ratio tsf/OpenBLAS at %d thread%s: %.3f (%d shapes)\n",
                   threads[t], threads[t] == 1 ? "" : "s", exp(log_ratio[t] / n_ratio[t]),
                   n_ratio[t]);
    for (t = 0; t < nthreads; t++) { /* the yardsticks: the weakest shape, ViT-B's layers */
        const result *worst = NULL, *big = NULL;
        for (k = 0; k < nres; k++) {
            const result *q = &res[k];
            if (q->threads != threads[t]) continue;
            if (q->ob_ms > 0.0 && (!worst || q->ob_ms / q->ms < worst->ob_ms / worst->ms))
                worst = q;
            if (!strncmp(q->s->name, "vitb_", 5) && (!big || q->gflops < big->gflops)) big = q;
        }
        printf("at %d thread%s:", threads[t], threads[t] == 1 ? "" : "s");
        if (worst) printf(" weakest ratio %.2f (%s);", worst->ob_ms / worst->ms, worst->s->name);
        if (big && probe > 0.0)
            printf(" slowest ViT-B layer %.1f GFLOP/s = %.0f%% of the fma probe (%s)", big->gflops,
                   100.0 * big->gflops / (probe * threads[t]), big->s->name);
        printf("\n");
        {
            char gm[32] = "null", mr[32] = "null", bg[32] = "null", bp[32] = "null";
            if (n_ratio[t]) snprintf(gm, sizeof gm, "%.3f", exp(log_ratio[t] / n_ratio[t]));
            if (worst) snprintf(mr, sizeof mr, "%.3f", worst->ob_ms / worst->ms);
            if (big) snprintf(bg, sizeof bg, "%.2f", big->gflops);
            if (big && probe > 0.0)
                snprintf(bp, sizeof bp, "%.1f", 100.0 * big->gflops / (probe * threads[t]));
            printf("{\"bench\":\"matmul_summary\",\"threads\":%d,\"simd\":\"%s\","
                   "\"geomean_ratio\":%s,\"min_ratio\":%s,\"min_ratio_shape\":\"%s\","
                   "\"vitb_min_gflops\":%s,\"fma_probe_gflops\":%.2f,"
                   "\"vitb_min_probe_pct\":%s}\n",
                   threads[t], tsf_simd_name(), gm, mr, worst ? worst->s->name : "", bg, probe, bp);
        }
    }
    printf("%% of peak = GFLOP/s / (%.1f * threads); simd %s\n", peak, tsf_simd_name());
    free(res);
    free(g_work);
    return 0;
}
