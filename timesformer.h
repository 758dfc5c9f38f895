/* timesformer.h - v0.1.0 - TimeSformer video transformer in one C file

   TimeSformer (Bertasius, Wang, Torresani, ICML 2021, "Is Space-Time Attention All You
   Need for Video Understanding?"): forward pass, hand-written backward pass, SGD.
   Dependencies: libc and libm. OpenMP is optional and enters only through pragmas.

   Do this:
       #define TIMESFORMER_IMPLEMENTATION
   before you include this file in *one* C or C++ file to create the implementation.
   Every other file includes it plainly, without the define.

QUICK START (kernels; the model API arrives in v0.2)

       #define TIMESFORMER_IMPLEMENTATION
       #include "timesformer.h"

       // y[M][OUT] = x[M][IN] . W[OUT][IN]^T + b[OUT]           (a Linear layer)
       tsf_linear_forward(y, x, W, b, M, IN, OUT);
       // ... compute dy = dloss/dy, then accumulate the gradients:
       tsf_linear_backward(dx, dW, db, dy, x, W, M, IN, OUT);   // dx, dW, db are +=

       // any product with strides, transposes and a batch: see tsf_matmul()
       tsf_matmul_nt(C, A, B, M, N, K, 0);                     // C = A . B^T

COMPILE-TIME OPTIONS (define before including the implementation)

   TIMESFORMER_IMPLEMENTATION  emit the implementation (exactly one translation unit)
   TIMESFORMER_STATIC          make every function static (a private copy per translation unit)
   TSF_MALLOC(sz,ctx)          define both or neither (#error otherwise); ctx is the user's
   TSF_FREE(p,ctx)               allocator context pointer. Default: malloc/free.
   TSF_ASSERT(x)               default assert(x); checks programmer errors only, never user input
   TSF_NO_SIMD                 portable C kernels only
   TSF_NO_OPENMP               ignore OpenMP even when compiled with -fopenmp
   TSF_MM_KC, TSF_MM_MC,       matmul blocking: depth of a packed block (256), rows of a task
   TSF_MM_NC                     (192) and columns of a task (256). See SIMD below.

SHAPES & NOTATION

   Every tensor is a dense row-major float array; a shape comment such as `x // (M, IN)`
   means x[m*IN + i]. The glossary used everywhere:
       B batch, T frames, C image channels, H x W pixels, P patch size,
       N = (H/P)(W/P) patches per frame, D embedding width, NH heads, HS = D/NH head width,
       L layers, K classes, M rows of a matrix product (tokens), S sequences of length SL.
   The input clip is x // (B, C, T, H, W), the layout of the original TimeSformer code.

   Argument order, as in llm.c: forward takes outputs, then what it saves for backward,
   then inputs, then weights, then sizes. Backward takes the d-inputs, the d-weights, the
   d-output, then what forward saved, then the sizes.

   Backward functions ACCUMULATE (+=) into every gradient they are given, so a tensor used
   twice collects both contributions. Clear gradients yourself before a backward pass.
   Pointer arguments documented as "may be NULL" skip that gradient.

KERNELS

   linear      y = x.W^T + b (PyTorch nn.Linear)
   layernorm   (x - mean) / sqrt(var + eps) * w + b, biased variance, eps as an argument
   gelu        0.5 x (1 + erf(x / sqrt 2)), the exact form (not the tanh approximation)
   softmax     row-wise, max-subtracted
   attention   multi-head scaled-dot-product self-attention over S sequences of SL tokens:
               qkv // (S, SL, 3D) holds q, k, v side by side, head g at columns g*HS..;
               scores = (q.k) * HS^-0.5 (the scale multiplies the finished dot product)
   residual    y = a + b
   mean        the mean of R rows taken with a stride (the cls-token average over frames)
   crossentropy  logsumexp(logits) - <target, logits>, stable, optional label smoothing
   patch_embed the PxP stride-P convolution of every frame, as a gather and a matmul

   Every TimeSformer attention variant uses the same attention kernel; the variants differ
   only in how tokens are grouped into sequences (ARCHITECTURE.md section 3.3).

THREADING

   Compile with -fopenmp to parallelise the kernels. OpenMP is used only on outer loops
   whose iterations write disjoint memory, and work is split into blocks whose boundaries
   never depend on the number of threads, so every result is bit-identical for any
   OMP_NUM_THREADS. The library has no global mutable state: separate data on separate
   threads just works. Do not call the kernels from inside your own OpenMP parallel region
   unless nested parallelism is what you want.

SIMD

   The matmul micro-kernel is chosen at compile time, from the compiler's target flags:
       AVX-512F (-mavx512f, or -march=native on Zen 4 / recent Intel)   12 x 32 tile
       AVX2 + FMA (-mavx2 -mfma, or -march=haswell and later)           6 x 16 tile
       NEON (any AArch64)                                               8 x 12 tile
       portable C (everything else, or TSF_NO_SIMD)                     4 x 16 tile
   Plain -O2 on x86-64 gives the portable path; -march=native gives the widest path the
   CPU has. TSF_SIMD_NAME names the chosen path. The portable kernel is always compiled
   too, and the tests compare the two. FMA rounds differently from a multiply and an add,
   so SIMD and portable results agree to rounding, not bit for bit.

   The matmul packs operands into panels on the stack: about
   4 * TSF_MM_KC * (TSF_MM_NC + 64) bytes per thread (330 KB by default). Threads with a
   small stack (some embedded systems, musl's 128 KB default) need smaller blocks.

ERRORS

   Functions that can fail return a tsf_status; tsf_status_string() explains it. The kernels
   cannot fail: they check their arguments with TSF_ASSERT, because wrong sizes there are
   programming errors. The library never prints and never calls exit().

REVISIONS

   0.1.0 (2026-11-21)  kernels with backward passes, blocked SIMD matmul

LICENSE

   MIT, see the end of the file.
*/

#ifndef TIMESFORMER_H
#define TIMESFORMER_H

#define TSF_VERSION_MAJOR 0
#define TSF_VERSION_MINOR 1
#define TSF_VERSION_PATCH 0
#define TSF_VERSION_STRING "0.1.0"

#include <stddef.h>

#if defined(TIMESFORMER_STATIC) && (defined(__GNUC__) || defined(__clang__))
#define TSFDEF static __attribute__((unused)) /* no warning for the functions you don't call */
#elif defined(TIMESFORMER_STATIC)
#define TSFDEF static
#else
#define TSFDEF extern
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------
   Status codes. Each entry: name, text returned by tsf_status_string().
   ------------------------------------------------------------------------------------------ */
#define TSF_STATUS_LIST(X)                                                                         \
    X(TSF_OK, "ok")                                                                                \
    X(TSF_ERR_ALLOC, "out of memory")                                                              \
    X(TSF_ERR_ARG, "invalid argument")                                                             \
    X(TSF_ERR_CONFIG, "invalid configuration")                                                     \
    X(TSF_ERR_OVERFLOW, "size too large (arithmetic overflow)")                                    \
    X(TSF_ERR_IO, "input/output error")                                                            \
    X(TSF_ERR_FORMAT, "malformed file")                                                            \
    X(TSF_ERR_NONFINITE, "NaN or infinity in the data")

typedef enum tsf_status {
#define TSF__STATUS_ENUM(name, text) name,
    TSF_STATUS_LIST(TSF__STATUS_ENUM)
#undef TSF__STATUS_ENUM
        TSF_STATUS_COUNT
} tsf_status;

/* The library's version, "major.minor.patch". */
TSFDEF const char *tsf_version(void);
/* A short English description of a status code (never NULL). */
TSFDEF const char *tsf_status_string(tsf_status status);
/* The matmul path compiled in: "avx512", "avx2", "neon" or "portable". */
TSFDEF const char *tsf_simd_name(void);

/* ------------------------------------------------------------------------------------------
   Random numbers: one small generator (splitmix64 seeding a xoshiro128+ state), owned by
   the caller, so one seed drives all randomness and two generators never interfere.
   ------------------------------------------------------------------------------------------ */
typedef struct tsf_rng {
    unsigned int s[4];
} tsf_rng;

/* Seed a generator; the same seed always gives the same sequence. */
TSFDEF void tsf_rng_seed(tsf_rng *rng, unsigned long long seed);
/* A 32-bit random integer. */
TSFDEF unsigned int tsf_rng_u32(tsf_rng *rng);
/* Uniform in [0, 1). */
TSFDEF float tsf_rng_uniform(tsf_rng *rng);
/* Standard normal (mean 0, std 1), by Box-Muller. */
TSFDEF float tsf_rng_normal(tsf_rng *rng);

/* ------------------------------------------------------------------------------------------
   Matrix products. Every product of the forward and backward passes goes through
   tsf_matmul(), which is blocked, packed and SIMD-vectorised, and parallel over output
   blocks with OpenMP.

   Element (i, j) of an operand X with leading dimension ldX is X[i*ldX + j]. A transposed
   operand is read as stored: op(A) = A^T means A is stored K x M.
   ------------------------------------------------------------------------------------------ */
typedef struct tsf_matmul_desc {
    int M, N, K;      /* C is M x N; the inner dimension is K                          */
    const float *A;   /* op(A) is M x K: A stored M x K, or K x M when trans_a         */
    int lda, trans_a; /*   row stride of A as stored (0: its natural width)            */
    const float *B;   /* op(B) is K x N: B stored K x N, or N x K when trans_b         */
    int ldb, trans_b; /*   row stride of B as stored (0: its natural width)            */
    float *C;         /* C is M x N                                                    */
    int ldc;          /*   row stride of C (0: N)                                      */
    int accumulate;   /* 0: C = op(A).op(B); 1: C += op(A).op(B)                       */
    /* Batched form, for attention: count * group products. Item (s, g) uses
       X + s*stride_X + g*group_stride_X for X in A, B, C. 0 counts mean 1. */
    int count, group;
    size_t stride_a, stride_b, stride_c;
    size_t group_stride_a, group_stride_b, group_stride_c;
} tsf_matmul_desc;

/* Run the (batched) product described by d: C (+)= op(A) . op(B) for every item. */
TSFDEF void tsf_matmul(const tsf_matmul_desc *d);
/* C // (M, N) (+)= A // (M, K) . B // (N, K) ^T     (linear forward: y = x.W^T) */
TSFDEF void tsf_matmul_nt(float *C, const float *A, const float *B, int M, int N, int K,
                          int accumulate);
/* C // (M, N) (+)= A // (M, K) . B // (K, N)        (linear backward: dx = dy.W) */
TSFDEF void tsf_matmul_nn(float *C, const float *A, const float *B, int M, int N, int K,
                          int accumulate);
/* C // (M, N) (+)= A // (K, M) ^T . B // (K, N)     (linear backward: dW = dy^T.x) */
TSFDEF void tsf_matmul_tn(float *C, const float *A, const float *B, int M, int N, int K,
                          int accumulate);

/* ------------------------------------------------------------------------------------------
   Kernels: each _forward is followed by its _backward. Backward accumulates (+=).
   ------------------------------------------------------------------------------------------ */

/* Linear layer. out // (M, OUT) = inp // (M, IN) . weight // (OUT, IN) ^T + bias // (OUT).
   bias may be NULL (no bias). */
TSFDEF void tsf_linear_forward(float *out, const float *inp, const float *weight, const float *bias,
                               int M, int IN, int OUT);
/* dinp // (M, IN) += dout.weight; dweight // (OUT, IN) += dout^T.inp;
   dbias // (OUT) += column sums of dout. dinp, dweight and dbias may each be NULL. */
TSFDEF void tsf_linear_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                                const float *inp, const float *weight, int M, int IN, int OUT);

/* LayerNorm over the last dimension, biased variance, eps inside the square root.
   out // (M, D); saves mean // (M) and rstd // (M) = 1/sqrt(var + eps) for backward. */
TSFDEF void tsf_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                                  const float *weight, const float *bias, int M, int D, float eps);
/* dinp // (M, D) += ...; dweight, dbias // (D) += .... Any of the three may be NULL. */
TSFDEF void tsf_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                                   const float *inp, const float *weight, const float *mean,
                                   const float *rstd, int M, int D);

/* GELU, exact erf form. out // (n) = 0.5 inp (1 + erf(inp / sqrt 2)). out may alias inp. */
TSFDEF void tsf_gelu_forward(float *out, const float *inp, size_t n);
/* dinp // (n) += dout * GELU'(inp). */
TSFDEF void tsf_gelu_backward(float *dinp, const float *dout, const float *inp, size_t n);

/* Row-wise softmax with max subtraction: out // (M, N) = softmax(inp) over each row.
   out may alias inp. */
TSFDEF void tsf_softmax_forward(float *out, const float *inp, int M, int N);
/* dinp // (M, N) += out * (dout - sum(dout * out)) per row; out is the forward's output. */
TSFDEF void tsf_softmax_backward(float *dinp, const float *dout, const float *out, int M, int N);

/* Multi-head scaled-dot-product self-attention on S independent sequences of SL tokens.
   qkv // (S, SL, 3D): q, k, v of token l in columns [0,D), [D,2D), [2D,3D); head g uses
   columns g*HS .. g*HS+HS-1 of each, HS = D/NH.
   att // (S, NH, SL, SL): saves the probabilities softmax((q.k^T) * HS^-0.5).
   out // (S, SL, D): the heads' outputs concatenated head-major (column g*HS + j). */
TSFDEF void tsf_attention_forward(float *out, float *att, const float *qkv, int S, int SL, int D,
                                  int NH);
/* dqkv // (S, SL, 3D) += ...; datt // (S, NH, SL, SL) is scratch (overwritten). */
TSFDEF void tsf_attention_backward(float *dqkv, float *datt, const float *dout, const float *qkv,
                                   const float *att, int S, int SL, int D, int NH);

/* Residual connection. out // (n) = a + b. out may alias a or b. */
TSFDEF void tsf_residual_forward(float *out, const float *a, const float *b, size_t n);
/* da // (n) += dout; db // (n) += dout. da and db may alias each other or be NULL. */
TSFDEF void tsf_residual_backward(float *da, float *db, const float *dout, size_t n);

/* Mean over groups of rows: out // (G, D), out[g] = (1/R) sum_r inp[(g*R + r) * stride + 0..D-1].
   stride >= D is the distance between rows, e.g. (1+N)*D to average the cls rows of R frames. */
TSFDEF void tsf_mean_forward(float *out, const float *inp, int G, int R, int D, size_t stride);
/* dinp rows += dout[g] / R, at the same strided rows. */
TSFDEF void tsf_mean_backward(float *dinp, const float *dout, int G, int R, int D, size_t stride);

/* Cross-entropy with a stable logsumexp and optional label smoothing eps in [0, 1):
   the target is (1-eps) on the label plus eps/K on every class.
   losses // (B) = logsumexp(logits[b]) - sum_k target[k] logits[b][k];
   probs // (B, K) saves softmax(logits) for backward. labels // (B) in [0, K). */
TSFDEF void tsf_crossentropy_forward(float *losses, float *probs, const float *logits,
                                     const int *labels, int B, int K, float smoothing);
/* dlogits // (B, K) += dloss * (probs - target). For a mean over the batch, dloss = 1/B. */
TSFDEF void tsf_crossentropy_backward(float *dlogits, const float *probs, const int *labels, int B,
                                      int K, float smoothing, float dloss);

/* Patch embedding: the Conv2d(C -> D, kernel P, stride P) of every frame of every clip.
   inp // (B, C, T, H, W); patch (i, j) of frame (b, t) is row m = ((b*T + t)*Hp + i)*Wp + j,
   Hp = H/P, Wp = W/P (leftover pixels are ignored).
   cols // (B*T*Hp*Wp, C*P*P) saves the gathered patches, column c*P*P + ky*P + kx.
   out // (B*T*Hp*Wp, D) = cols . weight^T + bias, weight // (D, C, P, P), bias // (D). */
TSFDEF void tsf_patch_embed_forward(float *out, float *cols, const float *inp, const float *weight,
                                    const float *bias, int B, int C, int T, int H, int W, int P,
                                    int D);
/* dinp // (B, C, T, H, W) += ... (may be NULL; then dcols is unused and may be NULL);
   dcols // (B*T*Hp*Wp, C*P*P) is scratch; dweight, dbias += .... */
TSFDEF void tsf_patch_embed_backward(float *dinp, float *dcols, float *dweight, float *dbias,
                                     const float *dout, const float *cols, const float *weight,
                                     int B, int C, int T, int H, int W, int P, int D);

#ifdef __cplusplus
}
#endif
#endif /* TIMESFORMER_H */

/* ==========================================================================================
   IMPLEMENTATION
   ========================================================================================== */
#if defined(TIMESFORMER_IMPLEMENTATION) && !defined(TIMESFORMER_IMPLEMENTATION_DONE)
#define TIMESFORMER_IMPLEMENTATION_DONE

#include <math.h>
#include <stdint.h>
#include <string.h>

/* ---- options ---------------------------------------------------------------------------- */
#if defined(TSF_MALLOC) && defined(TSF_FREE)
/* both given: use them */
#elif !defined(TSF_MALLOC) && !defined(TSF_FREE)
#include <stdlib.h>
#define TSF_MALLOC(sz, ctx) ((void)(ctx), malloc(sz))
#define TSF_FREE(p, ctx) ((void)(ctx), free(p))
#else
#error "timesformer.h: define both TSF_MALLOC and TSF_FREE, or neither"
#endif

#ifndef TSF_ASSERT
#include <assert.h>
#define TSF_ASSERT(x) assert(x)
#endif

#ifndef TSF_MM_KC
#define TSF_MM_KC 256 /* depth of a packed block: KC x 32 panel of B stays in L1 */
#endif
#ifndef TSF_MM_MC
#define TSF_MM_MC 192 /* rows of C per parallel task */
#endif
#ifndef TSF_MM_NC
#define TSF_MM_NC 256 /* columns of C per task; the packed KC x NC block of B stays in L2 */
#endif

/* ---- platform: SIMD selection and OpenMP ------------------------------------------------ */
#if !defined(TSF_NO_SIMD) && defined(__AVX512F__)
#define TSF__AVX512 1
#define TSF_SIMD_NAME "avx512"
#include <immintrin.h>
#elif !defined(TSF_NO_SIMD) && defined(__AVX2__) && defined(__FMA__)
#define TSF__AVX2 1
#define TSF_SIMD_NAME "avx2"
#include <immintrin.h>
#elif !defined(TSF_NO_SIMD) && (defined(__ARM_NEON) || defined(__aarch64__))
#define TSF__NEON 1
#define TSF_SIMD_NAME "neon"
#include <arm_neon.h>
#else
#define TSF_SIMD_NAME "portable"
#endif

/* TSF__OMP_FOR(cond): a parallel for over the next loop when cond holds. It expands to
   nothing without OpenMP, so builds without -fopenmp see no unknown pragmas. */
#if defined(_OPENMP) && !defined(TSF_NO_OPENMP)
#define TSF__PRAGMA(x) _Pragma(#x)
#define TSF__OMP_FOR(cond) TSF__PRAGMA(omp parallel for schedule(static) if (cond))
#else
#define TSF__OMP_FOR(cond)
#endif

/* Enough work to be worth waking a second thread (about 50 microseconds of work). */
#define TSF__PAR_WORK 32768.0

static int tsf__min(int a, int b) { return a < b ? a : b; }

/* ---- basics ------------------------------------------------------------------------------ */
TSFDEF const char *tsf_version(void) { return TSF_VERSION_STRING; }

TSFDEF const char *tsf_status_string(tsf_status status) {
    switch (status) {
#define TSF__STATUS_CASE(name, text)                                                               \
    case name:                                                                                     \
        return text;
        TSF_STATUS_LIST(TSF__STATUS_CASE)
#undef TSF__STATUS_CASE
    default:
        return "unknown status";
    }
}

TSFDEF const char *tsf_simd_name(void) { return TSF_SIMD_NAME; }

/* ---- random numbers ---------------------------------------------------------------------- */
static unsigned long long tsf__splitmix64(unsigned long long *x) {
    unsigned long long z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

TSFDEF void tsf_rng_seed(tsf_rng *rng, unsigned long long seed) {
    unsigned long long x = seed, a = tsf__splitmix64(&x), b = tsf__splitmix64(&x);
    rng->s[0] = (unsigned int)a;
    rng->s[1] = (unsigned int)(a >> 32);
    rng->s[2] = (unsigned int)b;
    rng->s[3] = (unsigned int)(b >> 32);
    if ((rng->s[0] | rng->s[1] | rng->s[2] | rng->s[3]) == 0) rng->s[0] = 1;
}

TSFDEF unsigned int tsf_rng_u32(tsf_rng *rng) { /* xoshiro128+ */
    unsigned int *s = rng->s, result = s[0] + s[3], t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = (s[3] << 11) | (s[3] >> 21);
    return result;
}

TSFDEF float tsf_rng_uniform(tsf_rng *rng) {
    return (float)(tsf_rng_u32(rng) >> 8) * (1.0f / 16777216.0f); /* 24 random bits */
}

TSFDEF float tsf_rng_normal(tsf_rng *rng) {
    float u1 = 1.0f - tsf_rng_uniform(rng); /* (0, 1]: log is finite */
    float u2 = tsf_rng_uniform(rng);
    return sqrtf(-2.0f * logf(u1)) * cosf(6.28318530718f * u2);
}

/* ==========================================================================================
   MATMUL
   C (+)= op(A) . op(B), the GotoBLAS way, reduced to what a transformer needs:
   1. C is cut into tasks of TSF_MM_MC x TSF_MM_NC; tasks are the unit of parallelism, and
      their boundaries do not depend on the thread count, so results never do either.
   2. In a task, K is walked in slices of TSF_MM_KC. For each slice the task packs its
      KC x NC block of op(B) into panels of NR columns (k-major: panel[k][0..NR-1]), and for
      each MR rows of op(A) a KC x MR panel (panel[k][0..MR-1]). Padding is zero.
   3. A micro-kernel multiplies an A panel by a B panel into an MR x NR tile of C held in
      registers: per k, it loads NR values of B, broadcasts each of the MR values of A and
      does MR*NR fused multiply-adds.
   Packing makes every micro-kernel read contiguous and aligned to nothing in particular,
   and it is where transposed operands are handled, so there is one kernel per ISA.
   ========================================================================================== */

/* A micro-kernel computes one MR x NR tile of C (only its first `rows` rows and `cols`
   columns are written):
       C // (rows, cols), row stride ldc  (+)=  a // (kc, MR) . b // (kc, NR), b row stride ldb
   a is always a packed panel (padded with zeros). b is a packed panel (ldb == NR) or, for
   kernels with `direct_b`, op(B) itself, read in place with masked loads. With
   accumulate == 0 the tile is overwritten. Kernels without `partial` always get rows == MR
   and cols == NR. */
typedef void (*tsf__ukernel_fn)(int kc, const float *a, const float *b, size_t ldb, float *c,
                                size_t ldc, int accumulate, int rows, int cols);
/* A dot-product kernel for C = A.B^T with few columns (N <= 16), where both operands run
   along K and a packed panel would be mostly padding (attention scores over a few frames):
       C // (M, N), row stride ldc  (+)=  A // (M, K), stride lda  .  B // (N, K), stride ldb ^T */
typedef void (*tsf__dot_fn)(int M, int N, int K, const float *A, size_t lda, const float *B,
                            size_t ldb, float *C, size_t ldc, int accumulate);
typedef struct tsf__ukernel {
    tsf__ukernel_fn fn;
    int mr, nr;
    int partial;     /* writes partial tiles itself (else the driver uses a scratch tile) */
    int direct_b;    /* can read an unpacked op(B) in place (masked loads) */
    tsf__dot_fn dot; /* NULL: use fn for every shape */
} tsf__ukernel;

/* The portable kernel: 4 x 16. The j loop is written for compilers to vectorise: with
   -march=native gcc turns it into the same FMA code as the hand-written kernels. */
#define TSF__P_MR 4
#define TSF__P_NR 16
static void tsf__ukernel_portable(int kc, const float *a, const float *b, size_t ldb, float *c,
                                  size_t ldc, int accumulate, int rows, int cols) {
    /* one row of accumulators per variable, so that compilers keep them in registers */
    float c0[TSF__P_NR] = {0}, c1[TSF__P_NR] = {0}, c2[TSF__P_NR] = {0}, c3[TSF__P_NR] = {0};
    float *acc[TSF__P_MR];
    int i, j, p;
    for (p = 0; p < kc; p++) {
        const float *bp = b + (size_t)p * ldb, *ap = a + (size_t)p * TSF__P_MR;
        float a0 = ap[0], a1 = ap[1], a2 = ap[2], a3 = ap[3];
        for (j = 0; j < TSF__P_NR; j++) {
            float bj = bp[j];
            c0[j] += a0 * bj;
            c1[j] += a1 * bj;
            c2[j] += a2 * bj;
            c3[j] += a3 * bj;
        }
    }
    acc[0] = c0, acc[1] = c1, acc[2] = c2, acc[3] = c3;
    for (i = 0; i < rows; i++)
        for (j = 0; j < cols; j++)
            c[i * ldc + j] = accumulate ? c[i * ldc + j] + acc[i][j] : acc[i][j];
}

#if defined(TSF__AVX512)
/* 12 x 32: 24 zmm accumulators; per k, two zmm of B and one broadcast of A per row.
   Masks handle partial tiles, so B can also be read in place; a tile of at most 16
   columns runs a 12 x 16 loop instead. */
#define TSF__MR 12
#define TSF__NR 32
#define TSF__PARTIAL 1
#define TSF__DIRECT_B 1
/* clang-format off */
#define TSF__Z_ROWS(X)                                                                             \
    X(0, c00, c01) X(1, c10, c11) X(2, c20, c21) X(3, c30, c31) X(4, c40, c41) X(5, c50, c51)    \
    X(6, c60, c61) X(7, c70, c71) X(8, c80, c81) X(9, c90, c91) X(10, ca0, ca1) X(11, cb0, cb1)
/* clang-format on */
static void tsf__ukernel_simd(int kc, const float *a, const float *b, size_t ldb, float *c,
                              size_t ldc, int accumulate, int rows, int cols) {
    __m512 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
    __m512 c60, c61, c70, c71, c80, c81, c90, c91, ca0, ca1, cb0, cb1, ar, b0, b1;
    __mmask16 m0 = (__mmask16)(cols >= 16 ? 0xFFFF : (1u << cols) - 1);
    __mmask16 m1 = (__mmask16)(cols >= 32 ? 0xFFFF : cols > 16 ? (1u << (cols - 16)) - 1 : 0);
    int p;
#define TSF__Z_ZERO(r, x0, x1) x0 = x1 = _mm512_setzero_ps();
#define TSF__Z_FMA2(r, x0, x1)                                                                     \
    ar = _mm512_set1_ps(a[r]);                                                                     \
    x0 = _mm512_fmadd_ps(ar, b0, x0);                                                              \
    x1 = _mm512_fmadd_ps(ar, b1, x1);
#define TSF__Z_FMA1(r, x0, x1) x0 = _mm512_fmadd_ps(_mm512_set1_ps(a[r]), b0, x0);
#define TSF__Z_STORE(r, x0, x1)                                                                    \
    if (r < rows) {                                                                                \
        float *cr = c + (r)*ldc;                                                                   \
        if (accumulate) {                                                                          \
            x0 = _mm512_add_ps(x0, _mm512_maskz_loadu_ps(m0, cr));                                 \
            x1 = _mm512_add_ps(x1, _mm512_maskz_loadu_ps(m1, cr + 16));                            \
        }                                                                                          \
        _mm512_mask_storeu_ps(cr, m0, x0);                                                         \
        _mm512_mask_storeu_ps(cr + 16, m1, x1);                                                    \
    }
    TSF__Z_ROWS(TSF__Z_ZERO)
    if (cols > 16) {
        for (p = 0; p < kc; p++, a += TSF__MR, b += ldb) {
            b0 = _mm512_maskz_loadu_ps(m0, b);
            b1 = _mm512_maskz_loadu_ps(m1, b + 16);
            TSF__Z_ROWS(TSF__Z_FMA2)
        }
    } else {
        for (p = 0; p < kc; p++, a += TSF__MR, b += ldb) {
            b0 = _mm512_maskz_loadu_ps(m0, b);
            TSF__Z_ROWS(TSF__Z_FMA1)
        }
    }
    TSF__Z_ROWS(TSF__Z_STORE)
#undef TSF__Z_ZERO
#undef TSF__Z_FMA2
#undef TSF__Z_FMA1
#undef TSF__Z_STORE
}

/* GCC 12's AVX-512 headers start some shuffles from a self-initialised "undefined" vector,
   which its -Wmaybe-uninitialized mistakes for a real uninitialised read in C++. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
/* 4 x 4 blocks of dot products, 16 accumulators of 16 lanes each; at the end a tree of
   shuffles and adds turns the 16 vectors into one vector of their 16 sums. */
static void tsf__dot_avx512(int M, int N, int K, const float *A, size_t lda, const float *B,
                            size_t ldb, float *C, size_t ldc, int accumulate) {
    int i0, j0, k, q;
    for (i0 = 0; i0 < M; i0 += 4)
        for (j0 = 0; j0 < N; j0 += 4) {
            const float *a[4], *b[4];
            __m512 acc[16], t[8], u[4], w[2], r;
            float out[16];
            for (q = 0; q < 4; q++) { /* rows past the edge repeat the last one */
                a[q] = A + (size_t)tsf__min(i0 + q, M - 1) * lda;
                b[q] = B + (size_t)tsf__min(j0 + q, N - 1) * ldb;
            }
            { /* named accumulators, so that they live in registers: xIJ = a[I] . b[J] */
                __m512 x00 = _mm512_setzero_ps(), x01 = x00, x02 = x00, x03 = x00, x10 = x00;
                __m512 x11 = x00, x12 = x00, x13 = x00, x20 = x00, x21 = x00, x22 = x00;
                __m512 x23 = x00, x30 = x00, x31 = x00, x32 = x00, x33 = x00;
                for (k = 0; k < K; k += 16) {
                    __mmask16 m = (__mmask16)(K - k >= 16 ? 0xFFFF : (1u << (K - k)) - 1);
                    __m512 a0 = _mm512_maskz_loadu_ps(m, a[0] + k);
                    __m512 a1 = _mm512_maskz_loadu_ps(m, a[1] + k);
                    __m512 a2 = _mm512_maskz_loadu_ps(m, a[2] + k);
                    __m512 a3 = _mm512_maskz_loadu_ps(m, a[3] + k), bq;
#define TSF__D_COL(J)                                                                              \
    bq = _mm512_maskz_loadu_ps(m, b[J] + k);                                                       \
    x0##J = _mm512_fmadd_ps(a0, bq, x0##J);                                                        \
    x1##J = _mm512_fmadd_ps(a1, bq, x1##J);                                                        \
    x2##J = _mm512_fmadd_ps(a2, bq, x2##J);                                                        \
    x3##J = _mm512_fmadd_ps(a3, bq, x3##J);
                    TSF__D_COL(0) TSF__D_COL(1) TSF__D_COL(2) TSF__D_COL(3)
#undef TSF__D_COL
                }
                acc[0] = x00, acc[1] = x01, acc[2] = x02, acc[3] = x03;
                acc[4] = x10, acc[5] = x11, acc[6] = x12, acc[7] = x13;
                acc[8] = x20, acc[9] = x21, acc[10] = x22, acc[11] = x23;
                acc[12] = x30, acc[13] = x31, acc[14] = x32, acc[15] = x33;
            }
            /* pairs of vectors -> one: each 128-bit lane holds 2 partial sums of each */
            for (q = 0; q < 8; q++)
                t[q] = _mm512_add_ps(_mm512_unpacklo_ps(acc[2 * q], acc[2 * q + 1]),
                                     _mm512_unpackhi_ps(acc[2 * q], acc[2 * q + 1]));
            /* ... 4 vectors: each 128-bit lane holds 1 partial sum of each of 4 */
            for (q = 0; q < 4; q++) {
                __m512d x = _mm512_castps_pd(t[2 * q]), y = _mm512_castps_pd(t[2 * q + 1]);
                u[q] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(x, y)),
                                     _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)));
            }
            /* sum the four 128-bit lanes: two steps of lane shuffles */
            for (q = 0; q < 2; q++)
                w[q] = _mm512_add_ps(_mm512_shuffle_f32x4(u[2 * q], u[2 * q + 1], 0x88),
                                     _mm512_shuffle_f32x4(u[2 * q], u[2 * q + 1], 0xDD));
            r = _mm512_add_ps(_mm512_shuffle_f32x4(w[0], w[1], 0x88),
                              _mm512_shuffle_f32x4(w[0], w[1], 0xDD));
            /* r[i*4 + j] = dot(a[i], b[j]): 128-bit lane i is row i of the 4 x 4 block */
            if (i0 + 4 <= M && j0 + 4 <= N) {
                __m128 row[4];
                row[0] = _mm512_castps512_ps128(r);
                row[1] = _mm512_extractf32x4_ps(r, 1);
                row[2] = _mm512_extractf32x4_ps(r, 2);
                row[3] = _mm512_extractf32x4_ps(r, 3);
                for (q = 0; q < 4; q++) {
                    float *cp = C + (size_t)(i0 + q) * ldc + j0;
                    _mm_storeu_ps(cp, accumulate ? _mm_add_ps(row[q], _mm_loadu_ps(cp)) : row[q]);
                }
                continue;
            }
            _mm512_storeu_ps(out, r);
            for (q = 0; q < 16; q++) {
                int i = i0 + q / 4, j = j0 + q % 4;
                if (i < M && j < N) {
                    float *cp = C + (size_t)i * ldc + j;
                    *cp = accumulate ? *cp + out[q] : out[q];
                }
            }
        }
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#define TSF__DOT tsf__dot_avx512
#elif defined(TSF__AVX2)
/* 6 x 16: 12 ymm accumulators; per k, two ymm of B and one broadcast of A per row. */
#define TSF__MR 6
#define TSF__NR 16
#define TSF__PARTIAL 0
#define TSF__DIRECT_B 0
#define TSF__Y_ROWS(X)                                                                             \
    X(0, c00, c01) X(1, c10, c11) X(2, c20, c21) X(3, c30, c31) X(4, c40, c41) X(5, c50, c51)
static void tsf__ukernel_simd(int kc, const float *a, const float *b, size_t ldb, float *c,
                              size_t ldc, int accumulate, int rows, int cols) {
    __m256 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, ar, b0, b1;
    int p;
    (void)rows, (void)cols; /* always a full tile: the driver handles partial ones */
#define TSF__Y_ZERO(r, x0, x1) x0 = x1 = _mm256_setzero_ps();
#define TSF__Y_FMA(r, x0, x1)                                                                      \
    ar = _mm256_broadcast_ss(a + (r));                                                             \
    x0 = _mm256_fmadd_ps(ar, b0, x0);                                                              \
    x1 = _mm256_fmadd_ps(ar, b1, x1);
#define TSF__Y_STORE(r, x0, x1)                                                                    \
    if (accumulate) {                                                                              \
        x0 = _mm256_add_ps(x0, _mm256_loadu_ps(c + (r)*ldc));                                      \
        x1 = _mm256_add_ps(x1, _mm256_loadu_ps(c + (r)*ldc + 8));                                  \
    }                                                                                              \
    _mm256_storeu_ps(c + (r)*ldc, x0);                                                             \
    _mm256_storeu_ps(c + (r)*ldc + 8, x1);
    TSF__Y_ROWS(TSF__Y_ZERO)
    for (p = 0; p < kc; p++, a += TSF__MR, b += ldb) {
        b0 = _mm256_loadu_ps(b);
        b1 = _mm256_loadu_ps(b + 8);
        TSF__Y_ROWS(TSF__Y_FMA)
    }
    TSF__Y_ROWS(TSF__Y_STORE)
#undef TSF__Y_ZERO
#undef TSF__Y_FMA
#undef TSF__Y_STORE
}
#elif defined(TSF__NEON)
/* 8 x 12: 24 q-register accumulators; per k, three vectors of B and two of A, whose lanes
   feed vfmaq_laneq_f32. */
#define TSF__MR 8
#define TSF__NR 12
#define TSF__PARTIAL 0
#define TSF__DIRECT_B 0
static void tsf__ukernel_simd(int kc, const float *a, const float *b, size_t ldb, float *c,
                              size_t ldc, int accumulate, int rows, int cols) {
    float32x4_t acc[TSF__MR][3];
    int i, j, p;
    (void)rows, (void)cols; /* always a full tile: the driver handles partial ones */
    for (i = 0; i < TSF__MR; i++)
        for (j = 0; j < 3; j++) acc[i][j] = vdupq_n_f32(0.0f);
    for (p = 0; p < kc; p++, a += TSF__MR, b += ldb) {
        float32x4_t b0 = vld1q_f32(b), b1 = vld1q_f32(b + 4), b2 = vld1q_f32(b + 8);
        float32x4_t a0 = vld1q_f32(a), a1 = vld1q_f32(a + 4);
#define TSF__N_FMA(r, av, lane)                                                                    \
    acc[r][0] = vfmaq_laneq_f32(acc[r][0], b0, av, lane);                                          \
    acc[r][1] = vfmaq_laneq_f32(acc[r][1], b1, av, lane);                                          \
    acc[r][2] = vfmaq_laneq_f32(acc[r][2], b2, av, lane);
        /* clang-format off */
        TSF__N_FMA(0, a0, 0) TSF__N_FMA(1, a0, 1) TSF__N_FMA(2, a0, 2) TSF__N_FMA(3, a0, 3)
        TSF__N_FMA(4, a1, 0) TSF__N_FMA(5, a1, 1) TSF__N_FMA(6, a1, 2) TSF__N_FMA(7, a1, 3)
        /* clang-format on */
#undef TSF__N_FMA
    }
    for (i = 0; i < TSF__MR; i++)
        for (j = 0; j < 3; j++) {
            float *cp = c + i * ldc + 4 * j;
            vst1q_f32(cp, accumulate ? vaddq_f32(acc[i][j], vld1q_f32(cp)) : acc[i][j]);
        }
}
#endif

#if defined(TSF__MR)
#ifndef TSF__DOT
#define TSF__DOT NULL
#endif
static const tsf__ukernel tsf__ukernel_default = {tsf__ukernel_simd, TSF__MR,       TSF__NR,
                                                  TSF__PARTIAL,      TSF__DIRECT_B, TSF__DOT};
#else
static const tsf__ukernel tsf__ukernel_default = {
    tsf__ukernel_portable, TSF__P_MR, TSF__P_NR, 1, 0, NULL};
#endif
static const tsf__ukernel tsf__ukernel_scalar = {
    tsf__ukernel_portable, TSF__P_MR, TSF__P_NR, 1, 0, NULL};

/* The panels must hold any kernel's padding: MR and NR are at most 32. */
#define TSF__PACK_B_FLOATS (TSF_MM_KC * (TSF_MM_NC + 32))
#define TSF__PACK_A_FLOATS (TSF_MM_KC * 32)
/* B is read in place, unpacked, when it is not transposed and used by at most this many rows
   of C (packing would not pay for itself: the small products of attention). */
#define TSF__DIRECT_B_MAX_M 64

/* Pack rows i0..i0+mr-1 (those below M are zero) and depth p0..p0+kc-1 of op(A) as a
   (kc, mr) panel. */
static void tsf__pack_a(float *dst, const tsf_matmul_desc *d, const float *A, int i0, int p0,
                        int kc, int mr) {
    int rows = tsf__min(mr, d->M - i0), i, p;
    if (!d->trans_a) { /* A(i, p) = A[i*lda + p]: gather a column of each row */
        for (i = 0; i < rows; i++) {
            const float *src = A + (size_t)(i0 + i) * d->lda + p0;
            for (p = 0; p < kc; p++) dst[p * mr + i] = src[p];
        }
    } else { /* A(i, p) = A[p*lda + i]: rows of the stored matrix are already panels */
        for (p = 0; p < kc; p++) {
            const float *src = A + (size_t)(p0 + p) * d->lda + i0;
            for (i = 0; i < rows; i++) dst[p * mr + i] = src[i];
        }
    }
    for (i = rows; i < mr; i++)
        for (p = 0; p < kc; p++) dst[p * mr + i] = 0.0f;
}

/* Pack columns j0..j0+nc-1 and depth p0..p0+kc-1 of op(B) as panels of nr columns, each a
   (kc, nr) block; columns past N are zero. */
static void tsf__pack_b(float *dst, const tsf_matmul_desc *d, const float *B, int j0, int p0,
                        int kc, int nc, int nr) {
    int jp, j, p;
    for (jp = 0; jp < nc; jp += nr) {
        int cols = tsf__min(nr, d->N - (j0 + jp));
        float *panel = dst + (size_t)jp * kc;
        if (!d->trans_b) { /* B(p, j) = B[p*ldb + j] */
            for (p = 0; p < kc; p++) {
                const float *src = B + (size_t)(p0 + p) * d->ldb + j0 + jp;
                for (j = 0; j < cols; j++) panel[p * nr + j] = src[j];
                for (; j < nr; j++) panel[p * nr + j] = 0.0f;
            }
        } else { /* B(p, j) = B[j*ldb + p] */
            for (j = 0; j < cols; j++) {
                const float *src = B + (size_t)(j0 + jp + j) * d->ldb + p0;
                for (p = 0; p < kc; p++) panel[p * nr + j] = src[p];
            }
            for (; j < nr; j++)
                for (p = 0; p < kc; p++) panel[p * nr + j] = 0.0f;
        }
    }
}

/* Packing space for one thread, on its stack. */
typedef struct tsf__pack {
    float b[TSF__PACK_B_FLOATS], a[TSF__PACK_A_FLOATS], edge[32 * 32];
} tsf__pack;

/* One task: rows i0..i0+mc-1 and columns j0..j0+nc-1 of C, over all of K. */
static void tsf__matmul_task(const tsf_matmul_desc *d, const tsf__ukernel *uk, tsf__pack *pk,
                             const float *A, const float *B, float *C, int i0, int mc, int j0,
                             int nc) {
    float *bpack = pk->b, *apack = pk->a, *edge = pk->edge;
    int mr = uk->mr, nr = uk->nr, p0, ir, jr, i, j;
    int ncp = (nc + nr - 1) / nr * nr; /* nc rounded up to whole panels */
    int direct = uk->direct_b && !d->trans_b && d->M <= TSF__DIRECT_B_MAX_M;
    if (d->K == 0) { /* empty sum: C = 0, or C unchanged */
        for (i = 0; i < mc && !d->accumulate; i++)
            memset(C + (size_t)(i0 + i) * d->ldc + j0, 0, (size_t)nc * sizeof(float));
        return;
    }
    if (uk->dot && d->trans_b && !d->trans_a && d->N <= 16) {
        uk->dot(mc, nc, d->K, A + (size_t)i0 * d->lda, (size_t)d->lda, B + (size_t)j0 * d->ldb,
                (size_t)d->ldb, C + (size_t)i0 * d->ldc + j0, (size_t)d->ldc, d->accumulate);
        return;
    }
    for (p0 = 0; p0 < d->K; p0 += TSF_MM_KC) {
        int kc = tsf__min(TSF_MM_KC, d->K - p0);
        int acc = d->accumulate || p0 > 0;
        if (!direct) tsf__pack_b(bpack, d, B, j0, p0, kc, ncp, nr);
        for (ir = 0; ir < mc; ir += mr) {
            int rows = tsf__min(mr, mc - ir);
            tsf__pack_a(apack, d, A, i0 + ir, p0, kc, mr);
            for (jr = 0; jr < nc; jr += nr) {
                int cols = tsf__min(nr, nc - jr);
                float *c = C + (size_t)(i0 + ir) * d->ldc + j0 + jr;
                const float *b =
                    direct ? B + (size_t)p0 * d->ldb + j0 + jr : bpack + (size_t)jr * kc;
                size_t ldb = direct ? (size_t)d->ldb : (size_t)nr;
                if (uk->partial || (rows == mr && cols == nr)) {
                    uk->fn(kc, apack, b, ldb, c, (size_t)d->ldc, acc, rows, cols);
                } else { /* a partial tile goes through a full-size scratch tile */
                    for (i = 0; i < mr; i++)
                        for (j = 0; j < nr; j++)
                            edge[i * nr + j] =
                                acc && i < rows && j < cols ? c[i * d->ldc + j] : 0.0f;
                    uk->fn(kc, apack, b, ldb, edge, (size_t)nr, 1, mr, nr);
                    for (i = 0; i < rows; i++)
                        for (j = 0; j < cols; j++) c[i * d->ldc + j] = edge[i * nr + j];
                }
            }
        }
    }
}

/* The matmul driver, with the micro-kernel as an argument so the tests can run the portable
   kernel beside the SIMD one in one binary. */
static void tsf__matmul_with(const tsf_matmul_desc *desc, const tsf__ukernel *uk) {
    tsf_matmul_desc d = *desc;
    int count, group, mc, mt, nt;
    long c, tasks, chunks;
    TSF_ASSERT(d.M >= 0 && d.N >= 0 && d.K >= 0 && d.C != NULL);
    if (d.lda == 0) d.lda = d.trans_a ? d.M : d.K;
    if (d.ldb == 0) d.ldb = d.trans_b ? d.K : d.N;
    if (d.ldc == 0) d.ldc = d.N;
    count = d.count > 0 ? d.count : 1;
    group = d.group > 0 ? d.group : 1;
    if (d.M == 0 || d.N == 0) return;
    mc = TSF_MM_MC / uk->mr * uk->mr;
    if (mc < uk->mr) mc = uk->mr;
    mt = (d.M + mc - 1) / mc;
    nt = (d.N + TSF_MM_NC - 1) / TSF_MM_NC;
    tasks = (long)count * group * mt * nt;
    /* Tasks are dealt out in at most 64 contiguous chunks, so a thread sets up its packing
       space once per chunk, not once per small product. A task's result does not depend
       on its chunk. */
    chunks = tasks < 64 ? tasks : 64;
    TSF__OMP_FOR((double)count * group * d.M * d.N * (d.K + 1) > TSF__PAR_WORK && chunks > 1)
    for (c = 0; c < chunks; c++) {
        tsf__pack pk;
        long t;
        for (t = c * tasks / chunks; t < (c + 1) * tasks / chunks; t++) {
            long item = t / ((long)mt * nt), s = item / group, g = item % group;
            int tile = (int)(t % ((long)mt * nt)), i0 = tile / nt * mc, j0 = tile % nt * TSF_MM_NC;
            const float *A = d.A + (size_t)s * d.stride_a + (size_t)g * d.group_stride_a;
            const float *B = d.B + (size_t)s * d.stride_b + (size_t)g * d.group_stride_b;
            float *C = d.C + (size_t)s * d.stride_c + (size_t)g * d.group_stride_c;
            tsf__matmul_task(&d, uk, &pk, A, B, C, i0, tsf__min(mc, d.M - i0), j0,
                             tsf__min(TSF_MM_NC, d.N - j0));
        }
    }
}

TSFDEF void tsf_matmul(const tsf_matmul_desc *d) { tsf__matmul_with(d, &tsf__ukernel_default); }

static void tsf__matmul_simple(float *C, const float *A, const float *B, int M, int N, int K,
                               int trans_a, int trans_b, int accumulate) {
    tsf_matmul_desc d;
    memset(&d, 0, sizeof d);
    d.M = M, d.N = N, d.K = K;
    d.A = A, d.trans_a = trans_a;
    d.B = B, d.trans_b = trans_b;
    d.C = C, d.accumulate = accumulate;
    tsf_matmul(&d);
}
TSFDEF void tsf_matmul_nt(float *C, const float *A, const float *B, int M, int N, int K,
                          int accumulate) {
    tsf__matmul_simple(C, A, B, M, N, K, 0, 1, accumulate);
}
TSFDEF void tsf_matmul_nn(float *C, const float *A, const float *B, int M, int N, int K,
                          int accumulate) {
    tsf__matmul_simple(C, A, B, M, N, K, 0, 0, accumulate);
}
TSFDEF void tsf_matmul_tn(float *C, const float *A, const float *B, int M, int N, int K,
                          int accumulate) {
    tsf__matmul_simple(C, A, B, M, N, K, 1, 0, accumulate);
}

/* ==========================================================================================
   KERNELS, each forward beside its backward
   ========================================================================================== */

/* ---- linear ------------------------------------------------------------------------------ */
TSFDEF void tsf_linear_forward(float *out, const float *inp, const float *weight, const float *bias,
                               int M, int IN, int OUT) {
    long m;
    /* out // (M, OUT) = inp // (M, IN) . weight // (OUT, IN) ^T */
    tsf_matmul_nt(out, inp, weight, M, OUT, IN, 0);
    if (!bias) return;
    TSF__OMP_FOR((double)M * OUT > TSF__PAR_WORK)
    for (m = 0; m < M; m++) {
        float *o = out + (size_t)m * OUT;
        int j;
        for (j = 0; j < OUT; j++) o[j] += bias[j];
    }
}

/* Column sums of x // (M, N) added to out // (N). Parallel over column blocks; each column
   is summed by one thread in row order, so the result does not depend on the threads. */
static void tsf__colsum_add(float *out, const float *x, int M, int N) {
    long jb;
    TSF__OMP_FOR((double)M * N > TSF__PAR_WORK)
    for (jb = 0; jb < (N + 63) / 64; jb++) {
        int j0 = (int)jb * 64, j1 = tsf__min(N, j0 + 64), j, m;
        float acc[64] = {0};
        for (m = 0; m < M; m++) {
            const float *row = x + (size_t)m * N;
            for (j = j0; j < j1; j++) acc[j - j0] += row[j];
        }
        for (j = j0; j < j1; j++) out[j] += acc[j - j0];
    }
}

TSFDEF void tsf_linear_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                                const float *inp, const float *weight, int M, int IN, int OUT) {
    /* dinp // (M, IN) += dout // (M, OUT) . weight // (OUT, IN) */
    if (dinp) tsf_matmul_nn(dinp, dout, weight, M, IN, OUT, 1);
    /* dweight // (OUT, IN) += dout^T . inp // (M, IN) */
    if (dweight) tsf_matmul_tn(dweight, dout, inp, OUT, IN, M, 1);
    /* dbias // (OUT) += sum over rows of dout */
    if (dbias) tsf__colsum_add(dbias, dout, M, OUT);
}

/* ---- layernorm --------------------------------------------------------------------------- */
TSFDEF void tsf_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                                  const float *weight, const float *bias, int M, int D, float eps) {
    long m;
    TSF__OMP_FOR((double)M * D > TSF__PAR_WORK)
    for (m = 0; m < M; m++) {
        const float *x = inp + (size_t)m * D;
        float *o = out + (size_t)m * D, mu = 0.0f, var = 0.0f, rs;
        int i;
        for (i = 0; i < D; i++) mu += x[i];
        mu /= (float)D;
        for (i = 0; i < D; i++) var += (x[i] - mu) * (x[i] - mu);
        var /= (float)D; /* biased variance, as PyTorch */
        rs = 1.0f / sqrtf(var + eps);
        for (i = 0; i < D; i++) o[i] = (x[i] - mu) * rs * weight[i] + bias[i];
        if (mean) mean[m] = mu;
        if (rstd) rstd[m] = rs;
    }
}

TSFDEF void tsf_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                                   const float *inp, const float *weight, const float *mean,
                                   const float *rstd, int M, int D) {
    long m, ib;
    /* dinp: with xhat = (x - mean) * rstd and g = dout * weight,
       dx = rstd * (g - mean(g) - xhat * mean(g * xhat)). Rows are independent. */
    if (dinp) {
        TSF__OMP_FOR((double)M * D > TSF__PAR_WORK)
        for (m = 0; m < M; m++) {
            const float *x = inp + (size_t)m * D, *dy = dout + (size_t)m * D;
            float *dx = dinp + (size_t)m * D, mu = mean[m], rs = rstd[m];
            float gmean = 0.0f, gxmean = 0.0f;
            int i;
            for (i = 0; i < D; i++) {
                float g = dy[i] * weight[i];
                gmean += g;
                gxmean += g * (x[i] - mu) * rs;
            }
            gmean /= (float)D;
            gxmean /= (float)D;
            for (i = 0; i < D; i++) {
                float xhat = (x[i] - mu) * rs;
                dx[i] += rs * (dy[i] * weight[i] - gmean - xhat * gxmean);
            }
        }
    }
    /* dweight += sum_m dout * xhat, dbias += sum_m dout: a reduction over rows, so it is
       split over columns to keep each sum in one thread and in row order. */
    if (!dweight && !dbias) return;
    TSF__OMP_FOR((double)M * D > TSF__PAR_WORK)
    for (ib = 0; ib < (D + 63) / 64; ib++) {
        int i0 = (int)ib * 64, i1 = tsf__min(D, i0 + 64), i, mm;
        float dw[64] = {0}, db[64] = {0};
        for (mm = 0; mm < M; mm++) {
            const float *x = inp + (size_t)mm * D, *dy = dout + (size_t)mm * D;
            float mu = mean[mm], rs = rstd[mm];
            for (i = i0; i < i1; i++) {
                dw[i - i0] += dy[i] * (x[i] - mu) * rs;
                db[i - i0] += dy[i];
            }
        }
        for (i = i0; i < i1; i++) {
            if (dweight) dweight[i] += dw[i - i0];
            if (dbias) dbias[i] += db[i - i0];
        }
    }
}

/* ---- gelu -------------------------------------------------------------------------------- */
#define TSF__SQRT1_2 0.70710678118654752f     /* 1/sqrt(2) */
#define TSF__INV_SQRT_2PI 0.3989422804014327f /* 1/sqrt(2 pi) */

TSFDEF void tsf_gelu_forward(float *out, const float *inp, size_t n) {
    long i;
    TSF__OMP_FOR((double)n > TSF__PAR_WORK / 8)
    for (i = 0; i < (long)n; i++) {
        float x = inp[i];
        out[i] = 0.5f * x * (1.0f + erff(x * TSF__SQRT1_2));
    }
}

TSFDEF void tsf_gelu_backward(float *dinp, const float *dout, const float *inp, size_t n) {
    long i;
    TSF__OMP_FOR((double)n > TSF__PAR_WORK / 8)
    for (i = 0; i < (long)n; i++) {
        float x = inp[i];
        /* d/dx 0.5 x (1 + erf(x/sqrt2)) = 0.5 (1 + erf(x/sqrt2)) + x * pdf(x) */
        float grad =
            0.5f * (1.0f + erff(x * TSF__SQRT1_2)) + x * TSF__INV_SQRT_2PI * expf(-0.5f * x * x);
        dinp[i] += grad * dout[i];
    }
}

/* ---- softmax ----------------------------------------------------------------------------- */
/* out // (n) = softmax(scale * inp), max-subtracted. out may alias inp. */
static void tsf__softmax_row(float *out, const float *inp, int n, float scale) {
    float mx = -INFINITY, sum = 0.0f, inv;
    int i;
    for (i = 0; i < n; i++) mx = inp[i] * scale > mx ? inp[i] * scale : mx;
    for (i = 0; i < n; i++) {
        out[i] = expf(inp[i] * scale - mx);
        sum += out[i];
    }
    inv = 1.0f / sum;
    for (i = 0; i < n; i++) out[i] *= inv;
}

/* dinp // (n) (+)= scale * p * (dp - <dp, p>); with accumulate == 0 it is overwritten, and
   dinp may then alias dp. */
static void tsf__softmax_row_backward(float *dinp, const float *dp, const float *p, int n,
                                      float scale, int accumulate) {
    float dot = 0.0f;
    int i;
    for (i = 0; i < n; i++) dot += dp[i] * p[i];
    for (i = 0; i < n; i++) {
        float g = scale * p[i] * (dp[i] - dot);
        dinp[i] = accumulate ? dinp[i] + g : g;
    }
}

TSFDEF void tsf_softmax_forward(float *out, const float *inp, int M, int N) {
    long m;
    TSF__OMP_FOR((double)M * N > TSF__PAR_WORK / 4)
    for (m = 0; m < M; m++) tsf__softmax_row(out + (size_t)m * N, inp + (size_t)m * N, N, 1.0f);
}

TSFDEF void tsf_softmax_backward(float *dinp, const float *dout, const float *out, int M, int N) {
    long m;
    TSF__OMP_FOR((double)M * N > TSF__PAR_WORK / 4)
    for (m = 0; m < M; m++) {
        size_t o = (size_t)m * N;
        tsf__softmax_row_backward(dinp + o, dout + o, out + o, N, 1.0f, 1);
    }
}

/* ---- attention --------------------------------------------------------------------------- */
/* A batched product over the S sequences and NH heads of an attention call: item (s, g)
   of an operand sits at base + s*seq_stride + g*head_stride. */
static void tsf__attn_matmul(float *C, int ldc, size_t sc, size_t gc, const float *A, int lda,
                             size_t sa, size_t ga, int trans_a, const float *B, int ldb, size_t sb,
                             size_t gb, int trans_b, int M, int N, int K, int S, int NH,
                             int accumulate) {
    tsf_matmul_desc d;
    memset(&d, 0, sizeof d);
    d.M = M, d.N = N, d.K = K;
    d.A = A, d.lda = lda, d.trans_a = trans_a, d.stride_a = sa, d.group_stride_a = ga;
    d.B = B, d.ldb = ldb, d.trans_b = trans_b, d.stride_b = sb, d.group_stride_b = gb;
    d.C = C, d.ldc = ldc, d.stride_c = sc, d.group_stride_c = gc;
    d.accumulate = accumulate, d.count = S, d.group = NH;
    tsf_matmul(&d);
}

TSFDEF void tsf_attention_forward(float *out, float *att, const float *qkv, int S, int SL, int D,
                                  int NH) {
    int HS = D / NH;
    size_t sq = (size_t)SL * 3 * D, sl2 = (size_t)SL * SL, so = (size_t)SL * D;
    float scale = 1.0f / sqrtf((float)HS);
    long r;
    TSF_ASSERT(NH > 0 && D % NH == 0);
    /* att[s][g] // (SL, SL) = q[s][g] // (SL, HS) . k[s][g] ^T, raw dot products */
    tsf__attn_matmul(att, SL, NH * sl2, sl2, qkv, 3 * D, sq, HS, 0, qkv + D, 3 * D, sq, HS, 1, SL,
                     SL, HS, S, NH, 0);
    /* att = softmax(att * scale) over each row */
    TSF__OMP_FOR((double)S * NH * sl2 > TSF__PAR_WORK / 4)
    for (r = 0; r < (long)S * NH * SL; r++)
        tsf__softmax_row(att + (size_t)r * SL, att + (size_t)r * SL, SL, scale);
    /* out[s][:, g*HS..] // (SL, HS) = att[s][g] . v[s][g] // (SL, HS) */
    tsf__attn_matmul(out, D, so, HS, att, SL, NH * sl2, sl2, 0, qkv + 2 * D, 3 * D, sq, HS, 0, SL,
                     HS, SL, S, NH, 0);
}

TSFDEF void tsf_attention_backward(float *dqkv, float *datt, const float *dout, const float *qkv,
                                   const float *att, int S, int SL, int D, int NH) {
    int HS = D / NH;
    size_t sq = (size_t)SL * 3 * D, sl2 = (size_t)SL * SL, so = (size_t)SL * D;
    float scale = 1.0f / sqrtf((float)HS);
    long r;
    TSF_ASSERT(NH > 0 && D % NH == 0);
    /* datt = dout[s][:, g] // (SL, HS) . v ^T */
    tsf__attn_matmul(datt, SL, NH * sl2, sl2, dout, D, so, HS, 0, qkv + 2 * D, 3 * D, sq, HS, 1, SL,
                     SL, HS, S, NH, 0);
    /* dv += att ^T . dout */
    tsf__attn_matmul(dqkv + 2 * D, 3 * D, sq, HS, att, SL, NH * sl2, sl2, 1, dout, D, so, HS, 0, SL,
                     HS, SL, S, NH, 1);
    /* datt := d(raw scores) = scale * att * (datt - <datt, att>), in place */
    TSF__OMP_FOR((double)S * NH * sl2 > TSF__PAR_WORK / 4)
    for (r = 0; r < (long)S * NH * SL; r++) {
        size_t o = (size_t)r * SL;
        tsf__softmax_row_backward(datt + o, datt + o, att + o, SL, scale, 0);
    }
    /* dq += datt . k */
    tsf__attn_matmul(dqkv, 3 * D, sq, HS, datt, SL, NH * sl2, sl2, 0, qkv + D, 3 * D, sq, HS, 0, SL,
                     HS, SL, S, NH, 1);
    /* dk += datt ^T . q */
    tsf__attn_matmul(dqkv + D, 3 * D, sq, HS, datt, SL, NH * sl2, sl2, 1, qkv, 3 * D, sq, HS, 0, SL,
                     HS, SL, S, NH, 1);
}

/* ---- residual ---------------------------------------------------------------------------- */
TSFDEF void tsf_residual_forward(float *out, const float *a, const float *b, size_t n) {
    long i;
    TSF__OMP_FOR((double)n > TSF__PAR_WORK)
    for (i = 0; i < (long)n; i++) out[i] = a[i] + b[i];
}

TSFDEF void tsf_residual_backward(float *da, float *db, const float *dout, size_t n) {
    long i;
    TSF__OMP_FOR((double)n > TSF__PAR_WORK)
    for (i = 0; i < (long)n; i++) {
        if (da) da[i] += dout[i];
        if (db) db[i] += dout[i];
    }
}

/* ---- mean over groups of rows ------------------------------------------------------------ */
TSFDEF void tsf_mean_forward(float *out, const float *inp, int G, int R, int D, size_t stride) {
    float inv = 1.0f / (float)R;
    int g, r, i;
    TSF_ASSERT(R > 0 && stride >= (size_t)D);
    for (g = 0; g < G; g++) {
        float *o = out + (size_t)g * D;
        for (i = 0; i < D; i++) o[i] = 0.0f;
        for (r = 0; r < R; r++) {
            const float *x = inp + ((size_t)g * R + r) * stride;
            for (i = 0; i < D; i++) o[i] += x[i];
        }
        for (i = 0; i < D; i++) o[i] *= inv;
    }
}

TSFDEF void tsf_mean_backward(float *dinp, const float *dout, int G, int R, int D, size_t stride) {
    float inv = 1.0f / (float)R;
    int g, r, i;
    TSF_ASSERT(R > 0 && stride >= (size_t)D);
    for (g = 0; g < G; g++)
        for (r = 0; r < R; r++) {
            float *dx = dinp + ((size_t)g * R + r) * stride;
            for (i = 0; i < D; i++) dx[i] += dout[(size_t)g * D + i] * inv;
        }
}

/* ---- cross-entropy ----------------------------------------------------------------------- */
TSFDEF void tsf_crossentropy_forward(float *losses, float *probs, const float *logits,
                                     const int *labels, int B, int K, float smoothing) {
    int b, k;
    for (b = 0; b < B; b++) {
        const float *z = logits + (size_t)b * K;
        float *p = probs + (size_t)b * K, mx = -INFINITY, sum = 0.0f, lse, zmean = 0.0f;
        TSF_ASSERT(labels[b] >= 0 && labels[b] < K);
        for (k = 0; k < K; k++) mx = z[k] > mx ? z[k] : mx;
        for (k = 0; k < K; k++) {
            p[k] = expf(z[k] - mx);
            sum += p[k];
        }
        for (k = 0; k < K; k++) {
            p[k] /= sum;
            zmean += z[k];
        }
        zmean /= (float)K;
        lse = mx + logf(sum);
        /* target: (1 - eps) one-hot + eps / K everywhere */
        losses[b] = lse - (1.0f - smoothing) * z[labels[b]] - smoothing * zmean;
    }
}

TSFDEF void tsf_crossentropy_backward(float *dlogits, const float *probs, const int *labels, int B,
                                      int K, float smoothing, float dloss) {
    int b, k;
    for (b = 0; b < B; b++) {
        const float *p = probs + (size_t)b * K;
        float *dz = dlogits + (size_t)b * K;
        TSF_ASSERT(labels[b] >= 0 && labels[b] < K);
        for (k = 0; k < K; k++) {
            float target = smoothing / (float)K + (k == labels[b] ? 1.0f - smoothing : 0.0f);
            dz[k] += dloss * (p[k] - target);
        }
    }
}

/* ---- patch embedding --------------------------------------------------------------------- */
/* The patch (i, j) of frame f = b*T + t is row f*Hp*Wp + i*Wp + j of cols // (B*T*Hp*Wp, C*P*P).
   With dinp == NULL, copy every patch of inp // (B, C, T, H, W) into its row of cols;
   otherwise add every row of cols back into its patch of dinp (the gather's backward). */
static void tsf__patch_gather(float *cols, const float *inp, float *dinp, int B, int C, int T,
                              int H, int W, int P) {
    int Hp = H / P, Wp = W / P, CPP = C * P * P;
    long f;
    TSF__OMP_FOR((double)B * T * C * H * W > TSF__PAR_WORK)
    for (f = 0; f < (long)B * T; f++) {
        size_t b = (size_t)f / T, t = (size_t)f % T;
        int i, j, c, ky, kx;
        for (i = 0; i < Hp; i++)
            for (j = 0; j < Wp; j++) {
                float *row = cols + ((size_t)f * Hp * Wp + (size_t)i * Wp + j) * CPP;
                for (c = 0; c < C; c++)
                    for (ky = 0; ky < P; ky++) {
                        size_t px =
                            (((b * C + c) * T + t) * H + (size_t)i * P + ky) * W + (size_t)j * P;
                        float *cx = row + (c * P + ky) * P;
                        for (kx = 0; kx < P; kx++) {
                            if (dinp)
                                dinp[px + kx] += cx[kx];
                            else
                                cx[kx] = inp[px + kx];
                        }
                    }
            }
    }
}

TSFDEF void tsf_patch_embed_forward(float *out, float *cols, const float *inp, const float *weight,
                                    const float *bias, int B, int C, int T, int H, int W, int P,
                                    int D) {
    int M = B * T * (H / P) * (W / P);
    TSF_ASSERT(P > 0 && H >= P && W >= P);
    tsf__patch_gather(cols, inp, NULL, B, C, T, H, W, P);
    tsf_linear_forward(out, cols, weight, bias, M, C * P * P, D);
}

TSFDEF void tsf_patch_embed_backward(float *dinp, float *dcols, float *dweight, float *dbias,
                                     const float *dout, const float *cols, const float *weight,
                                     int B, int C, int T, int H, int W, int P, int D) {
    int M = B * T * (H / P) * (W / P), CPP = C * P * P;
    if (dinp) {
        TSF_ASSERT(dcols != NULL);
        memset(dcols, 0, (size_t)M * CPP * sizeof(float));
    }
    tsf_linear_backward(dinp ? dcols : NULL, dweight, dbias, dout, cols, weight, M, CPP, D);
    if (dinp) tsf__patch_gather(dcols, NULL, dinp, B, C, T, H, W, P);
}

#endif /* TIMESFORMER_IMPLEMENTATION */

/*
LICENSE

MIT License. Copyright (c) 2026 the timesformer.h authors.

Permission is hereby granted, free of charge, to any person obtaining a copy of this
software and associated documentation files (the "Software"), to deal in the Software
without restriction, including without limitation the rights to use, copy, modify, merge,
publish, distribute, sublicense, and/or sell copies of the Software, and to permit persons
to whom the Software is furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or
substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED,
INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR
PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE
FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR
OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER
DEALINGS IN THE SOFTWARE.
*/
