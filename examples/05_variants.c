/* 05_variants.c - the paper's five attention schemes side by side on one clip: the same config
   except cfg.attention, and for each the parameters (tsf_config_num_params), the GFLOPs of a
   clip (tsf_config_flops), the time of a forward pass (median of 5, after one to warm up),
   the memory of the parameters and of one clip's activations (tsf_model_bytes), and the
   logits of one synthetic clip (tsf_model_forward_u8).

   Build and run (from the repository root):
       make build/05_variants && ./build/05_variants
       (or: cc -O2 -march=native -fopenmp -I. examples/05_variants.c -o 05_variants -lm)

   Expected output (0.5 s; the times are from 1 core of an AMD EPYC with AVX-512 and vary
   from run to run; the rest is bit-identical for any thread count, the logits equal to
   rounding between SIMD paths):
       config: 8 frames of 112 x 112, patch 16, D 192, depth 4, 3 heads, 5 classes; matmul avx512
       variant                params GFLOPs fwd ms  wt MB act MB   logits
       divided_space_time    2682437  1.082   61.0   10.7    9.7   +0.03 +0.08 -0.09 -0.08 +0.34
       joint_space_time      1939781  0.990   56.2    7.8    6.9   -0.29 -0.05 +0.35 -0.23 -0.21
       space_only            1938245  0.796   44.0    7.8    7.0   -0.29 -0.04 +0.34 -0.23 -0.21
       sparse_local_global   2682437  1.140   69.1   10.7    9.7   +0.03 +0.08 -0.09 -0.08 +0.34
       axial                 3425093  1.378   82.8   13.7   12.4   -0.02 -0.22 +0.02 +0.66 -0.27
   GFLOPs are counted as the paper counts them (multiply-adds of the matrix products); MB are
   10^6 bytes: the weights, and the activations of a forward pass of one clip (one block's,
   reused by every block).

   divided_space_time has the most parameters and FLOPs here: every block adds an attention
   over time (its own LayerNorm, qkv, projection and temporal_fc). joint_space_time attends
   from every token to all T*N others, a cost that grows with (T*N)^2 and overtakes divided
   on larger frames: tsf_config_flops(&cfg, 8, 224, 224) gives 4.66 / 6.79 / 3.50 GFLOPs.
   space_only is a ViT on each frame with the frames' outputs averaged: it cannot see their
   order. joint and space_only draw the same weights from the same seed, and an untrained
   model's attention is nearly uniform, so their logits almost agree. sparse_local_global
   has divided's tensors (a local step instead of the temporal one) and, with its dense
   layer starting at zero like temporal_fc, nearly divided's logits; axial adds a width step
   to divided's temporal one, and its main step attends over columns. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#define TIMESFORMER_IMPLEMENTATION
#include "timesformer.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { T = 8, S = 112, K = 5, RUNS = 5 };

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(void) {
    static unsigned char rgb[T * S * S * 3]; /* one clip // (B = 1, T, H, W, 3) */
    const int variants[5] = {TSF_ATTN_DIVIDED, TSF_ATTN_JOINT, TSF_ATTN_SPACE,
                             TSF_ATTN_LOCAL_GLOBAL, TSF_ATTN_AXIAL};
    tsf_config base = {0};
    int v, t, y, x, k, r;

    /* a clip: a yellow square crossing a blue-green gradient from left to right */
    for (t = 0; t < T; t++)
        for (y = 0; y < S; y++)
            for (x = 0; x < S; x++) {
                unsigned char *px = rgb + (((size_t)t * S + y) * S + x) * 3;
                int in = y >= 40 && y < 72 && x >= 10 * t && x < 10 * t + 32;
                px[0] = (unsigned char)(in ? 240 : 20);
                px[1] = (unsigned char)(in ? 220 : 60 + y);
                px[2] = (unsigned char)(in ? 30 : 80 + x);
            }

    base.image_size = S, base.frames = T, base.classes = K; /* the rest: the defaults */
    if (tsf_config_resolve(&base) != TSF_OK) return fprintf(stderr, "bad config\n"), 1;
    printf("config: %d frames of %d x %d, patch %d, D %d, depth %d, %d heads, %d classes; "
           "matmul %s\n",
           T, S, S, base.patch_size, base.dim, base.depth, base.heads, K, tsf_simd_name());
    printf("%-19s %9s %6s %6s %6s %6s   logits\n", "variant", "params", "GFLOPs", "fwd ms", "wt MB",
           "act MB");
    for (v = 0; v < 5; v++) {
        tsf_config cfg = base; /* the same config but for the attention */
        tsf_model m;
        size_t pbytes, abytes;
        double ms[RUNS];
        float logits[K];
        cfg.attention = variants[v];
        if (tsf_model_init(&m, &cfg, 1, 42) != TSF_OK ||
            tsf_model_bytes(&cfg, 1, 0, 0, 0, &pbytes, &abytes) != TSF_OK)
            return fprintf(stderr, "%s: cannot create the model\n",
                           tsf_attention_name(variants[v])),
                   1;
        for (r = -1; r < RUNS; r++) { /* run -1 warms up */
            double t0 = now();
            if (tsf_model_forward_u8(&m, rgb, 1, T, S, S, logits) != TSF_OK)
                return fprintf(stderr, "forward failed\n"), 1;
            if (r >= 0) ms[r] = 1e3 * (now() - t0);
        }
        qsort(ms, RUNS, sizeof ms[0], cmp_double);
        printf("%-19s %9zu %6.3f %6.1f %6.1f %6.1f  ", tsf_attention_name(cfg.attention),
               tsf_config_num_params(&cfg), tsf_config_flops(&cfg, 0, 0, 0) / 1e9, ms[RUNS / 2],
               (double)pbytes / 1e6, (double)abytes / 1e6);
        for (k = 0; k < K; k++) printf(" %+.2f", (double)logits[k]);
        printf("\n");
        tsf_model_free(&m);
    }
    return 0;
}
