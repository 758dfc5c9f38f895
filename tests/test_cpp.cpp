// test_cpp.cpp - timesformer.h compiled as C++ (g++/clang++ -std=c++11 -Wall -Wextra -Werror),
// with a user allocator: TSF_MALLOC/TSF_FREE count their calls through the ctx pointer.
// The header is included twice (the guards must hold). A small linear forward + backward and
// a general matmul are checked against naive loops.
//
// Build (from tests/):
//     c++ -std=c++11 -Wall -Wextra -Wpedantic -Wshadow -Wdouble-promotion -Werror test_cpp.cpp
#include "tsf_test.h"

#include <cstddef>

struct alloc_counter {
    int mallocs, frees;
    size_t bytes;
};

static void *counting_malloc(size_t sz, void *ctx) {
    alloc_counter *c = static_cast<alloc_counter *>(ctx);
    c->mallocs++;
    c->bytes += sz;
    return malloc(sz);
}

static void counting_free(void *p, void *ctx) {
    alloc_counter *c = static_cast<alloc_counter *>(ctx);
    if (p) c->frees++;
    free(p);
}

#define TSF_MALLOC(sz, ctx) counting_malloc((sz), (ctx))
#define TSF_FREE(p, ctx) counting_free((p), (ctx))
#define TIMESFORMER_IMPLEMENTATION
#include "../timesformer.h"

// The macros the library uses reach the user's functions with the user's context.
static void test_allocator_macros() {
    alloc_counter c = {0, 0, 0};
    void *p = TSF_MALLOC(64, &c);
    CHECK(p != NULL);
    CHECK_EQ_INT(c.mallocs, 1);
    CHECK_EQ_INT(c.bytes, 64);
    TSF_FREE(p, &c);
    CHECK_EQ_INT(c.frees, 1);
}

static void test_cpp_linear() {
    const int M = 5, IN = 7, OUT = 3;
    tsf_rng r;
    float x[M * IN], w[OUT * IN], b[OUT], y[M * OUT], dy[M * OUT];
    float dx[M * IN] = {0}, dw[OUT * IN] = {0}, db[OUT] = {0};
    tsf_rng_seed(&r, 77);
    for (int i = 0; i < M * IN; i++) x[i] = tsf_rng_normal(&r);
    for (int i = 0; i < OUT * IN; i++) w[i] = tsf_rng_normal(&r);
    for (int i = 0; i < OUT; i++) b[i] = tsf_rng_normal(&r);
    for (int i = 0; i < M * OUT; i++) dy[i] = tsf_rng_normal(&r);
    tsf_linear_forward(y, x, w, b, M, IN, OUT);
    tsf_linear_backward(dx, dw, db, dy, x, w, M, IN, OUT);
    for (int m = 0; m < M; m++)
        for (int o = 0; o < OUT; o++) {
            double s = (double)b[o];
            for (int i = 0; i < IN; i++) s += (double)x[m * IN + i] * (double)w[o * IN + i];
            CHECK_NEAR(y[m * OUT + o], s, 1e-5, 1e-5);
        }
    for (int m = 0; m < M; m++)
        for (int i = 0; i < IN; i++) {
            double s = 0;
            for (int o = 0; o < OUT; o++) s += (double)dy[m * OUT + o] * (double)w[o * IN + i];
            CHECK_NEAR(dx[m * IN + i], s, 1e-5, 1e-5);
        }
    for (int o = 0; o < OUT; o++) {
        double sb = 0;
        for (int i = 0; i < IN; i++) {
            double s = 0;
            for (int m = 0; m < M; m++) s += (double)dy[m * OUT + o] * (double)x[m * IN + i];
            CHECK_NEAR(dw[o * IN + i], s, 1e-5, 1e-5);
        }
        for (int m = 0; m < M; m++) sb += (double)dy[m * OUT + o];
        CHECK_NEAR(db[o], sb, 1e-5, 1e-5);
    }
}

// C (7 x 9, ldc 11) += A^T . B with A stored K x M (lda 8) and B stored K x N.
static void test_cpp_matmul() {
    const int M = 7, N = 9, K = 20, lda = 8, ldc = 11;
    tsf_rng r;
    float A[K * lda], B[K * N], C[M * ldc], C0[M * ldc];
    tsf_rng_seed(&r, 78);
    for (int i = 0; i < K * lda; i++) A[i] = tsf_rng_normal(&r);
    for (int i = 0; i < K * N; i++) B[i] = tsf_rng_normal(&r);
    for (int i = 0; i < M * ldc; i++) C[i] = C0[i] = tsf_rng_normal(&r);
    tsf_matmul_desc d;
    memset(&d, 0, sizeof d);
    d.M = M, d.N = N, d.K = K;
    d.A = A, d.lda = lda, d.trans_a = 1;
    d.B = B;
    d.C = C, d.ldc = ldc, d.accumulate = 1;
    tsf_matmul(&d);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < ldc; j++) {
            if (j >= N) { // padding columns are not touched
                CHECK(C[i * ldc + j] == C0[i * ldc + j]);
                continue;
            }
            double s = (double)C0[i * ldc + j];
            for (int k = 0; k < K; k++) s += (double)A[k * lda + i] * (double)B[k * N + j];
            CHECK_NEAR(C[i * ldc + j], s, 1e-5, 1e-5);
        }
    float C2[M * N];
    tsf_matmul_nn(C2, B, B, 1, 1, 1, 0); // 1 x 1 x 1: B[0] * B[0]
    CHECK_NEAR(C2[0], (double)B[0] * (double)B[0], 1e-6, 1e-6);
}

int main(int argc, char **argv) {
    static const tsft_case tests[] = {
        {"cpp.allocator_macros", test_allocator_macros},
        {"cpp.linear", test_cpp_linear},
        {"cpp.matmul", test_cpp_matmul},
    };
    return tsft_main(tests, TSFT_COUNT(tests), argc, argv);
}
