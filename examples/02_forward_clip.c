/* 02_forward_clip.c - a forward pass on a clip file: write a clip (tsf_clip_save), open it
   (tsf_clip_open reads only the frames it needs), make the model's input with the loader's
   test views (tsf_clip_sample: centre, left and right crops, no randomness), run the model
   on each view, average the logits as the original code does, and print the top classes.

   Build and run (from the repository root):
       make build/02_forward_clip && ./build/02_forward_clip
       (or: cc -O2 -march=native -fopenmp -I. examples/02_forward_clip.c -o 02_forward_clip -lm)
       ./build/02_forward_clip [CLIP [MODEL]]
   With no arguments it writes moving_square.clip in the current directory (24 frames of
   96 x 64: a red square moving right across a grey background) and runs a new model with
   the default config and seed 42. CLIP is any clip file (tools/video2clip makes them from
   a video); MODEL any .safetensors file or Hugging Face folder, whose config sets the
   frames, size and normalisation of the input.

   Expected output (no arguments; bit-identical for any thread count, equal to rounding
   between SIMD paths; about 0.2 s on 2 cores):
       wrote moving_square.clip: 24 frames of 96 x 64, 3 channels
       model: divided_space_time, 8 frames of 112 x 112, 10 classes, 2683402 parameters
       clip moving_square.clip: 24 frames of 96 x 64 at 30 fps
       view 0: frames 0 3 6 9 13 16 19 23, crop at x 0, y 0 of 168 x 112
       view 0 logits: +0.350 +0.489 +0.025 +0.177 -0.034 -0.594 -0.236 -0.368 -0.117 +0.283
       view 1 logits: +0.270 +0.474 +0.029 +0.227 +0.014 -0.559 -0.161 -0.399 -0.111 +0.266
       view 2 logits: +0.364 +0.474 +0.031 +0.175 -0.039 -0.567 -0.178 -0.356 -0.099 +0.268
       mean over 3 views: top-3
         class 1  p = 0.154  logit +0.479
         class 0  p = 0.132  logit +0.328
         class 9  p = 0.125  logit +0.272
   The model is untrained, so its classes are close to uniform (p near 1/10): train one
   (examples/03_train_loop.c) or load one (examples/04_hf_classify.c) for real answers. */
#define TIMESFORMER_IMPLEMENTATION
#include "timesformer.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A clip of a red 16 x 16 square moving 3 pixels right a frame on a grey background. */
static int write_clip(const char *path) {
    tsf_clip_header h = {24, 64, 96, 3, 30.0f, -1}; /* T, H, W, C, fps, label */
    unsigned char *px = (unsigned char *)malloc((size_t)24 * 64 * 96 * 3);
    int t, y, x, c;
    tsf_status st;
    if (!px) return 1;
    for (t = 0; t < h.T; t++)
        for (y = 0; y < h.H; y++)
            for (x = 0; x < h.W; x++)
                for (c = 0; c < 3; c++) {
                    int in = y >= 24 && y < 40 && x >= 3 * t && x < 3 * t + 16;
                    px[(((size_t)t * h.H + y) * h.W + x) * 3 + c] =
                        (unsigned char)(in ? (c == 0 ? 220 : 30) : 110 + (x + y) % 20);
                }
    st = tsf_clip_save(path, &h, px);
    free(px);
    if (st != TSF_OK) return fprintf(stderr, "%s: %s\n", path, tsf_status_string(st)), 1;
    printf("wrote %s: %d frames of %d x %d, %d channels\n", path, h.T, h.W, h.H, h.C);
    return 0;
}

/* idx // (n) = the indices of the n largest of v // (K), largest first; returns min(n, K). */
static int top(int *idx, int n, const float *v, int K) {
    int i, j, k;
    for (i = 0; i < n && i < K; i++) {
        idx[i] = -1;
        for (k = 0; k < K; k++) {
            int taken = 0;
            for (j = 0; j < i; j++) taken |= idx[j] == k;
            if (!taken && (idx[i] < 0 || v[k] > v[idx[i]])) idx[i] = k;
        }
    }
    return i;
}

int main(int argc, char **argv) {
    const char *clip_path = argc > 1 ? argv[1] : "moving_square.clip";
    tsf_model m;
    tsf_clip clip;
    tsf_error err;
    tsf_sample_opts o;
    tsf_crop crop;
    tsf_status st;
    float *x = NULL, *logits = NULL, *mean = NULL, mx, sum = 0.0f;
    int *idx = NULL, v, k, i, n, views, K, best[3], rc = 1;

    memset(&m, 0, sizeof m), memset(&clip, 0, sizeof clip);
    if (argc < 2 && write_clip(clip_path)) return 1;
    if (argc > 2) { /* a trained model: a .safetensors file or a Hugging Face folder */
        if (tsf_model_load(&m, argv[2], 1, &err) != TSF_OK) {
            fprintf(stderr, "%s\n", err.msg);
            goto done;
        }
    } else { /* a new one; zero fields: the defaults (divided, 8 x 112^2, D 192, 10 classes) */
        tsf_config cfg;
        memset(&cfg, 0, sizeof cfg);
        if ((st = tsf_model_init(&m, &cfg, 1, 42)) != TSF_OK) {
            fprintf(stderr, "model: %s\n", tsf_status_string(st));
            goto done;
        }
    }
    K = m.cfg.classes;
    printf("model: %s, %d frames of %d x %d, %d classes, %zu parameters\n",
           tsf_attention_name(m.cfg.attention), m.cfg.frames, m.cfg.image_size, m.cfg.image_size, K,
           m.num_params);
    if (tsf_clip_open(&clip, clip_path, NULL, &err) != TSF_OK) {
        fprintf(stderr, "%s: %s\n", clip_path, err.msg);
        goto done;
    }
    printf("clip %s: %d frames of %d x %d at %g fps\n", clip_path, clip.h.T, clip.h.W, clip.h.H,
           (double)clip.h.fps);
    if (clip.h.C != m.cfg.channels) {
        fprintf(stderr, "%s has %d channels, the model takes %d\n", clip_path, clip.h.C,
                m.cfg.channels);
        goto done;
    }

    /* the loader's options come from the model: frames, size, normalisation, channel order */
    memset(&o, 0, sizeof o);
    o.frames = m.cfg.frames, o.size = m.cfg.image_size, o.bgr = m.cfg.bgr;
    o.stride = clip.h.T / o.frames > 0 ? clip.h.T / o.frames : 1; /* T samples span the clip */
    o.test_clips = 1, o.test_crops = 3; /* 3 views: left, centre, right crops */
    memcpy(o.mean, m.cfg.mean, sizeof o.mean), memcpy(o.std, m.cfg.std, sizeof o.std);
    if ((st = tsf_sample_opts_resolve(&o)) != TSF_OK) {
        fprintf(stderr, "sample options: %s\n", tsf_status_string(st));
        goto done;
    }
    views = tsf_sample_num_views(&o);

    x = (float *)malloc((size_t)clip.h.C * o.frames * o.size * o.size * sizeof(float));
    logits = (float *)malloc((size_t)K * sizeof(float));
    mean = (float *)calloc((size_t)K, sizeof(float));
    idx = (int *)malloc((size_t)o.frames * sizeof(int));
    if (!x || !logits || !mean || !idx) {
        fprintf(stderr, "out of memory\n");
        goto done;
    }
    for (v = 0; v < views; v++) {
        /* x // (C, T, S, S) is one clip: the model's (B, C, T, H, W) with B = 1 */
        if ((st = tsf_clip_sample(x, &clip, &o, NULL, v)) != TSF_OK ||
            (st = tsf_model_forward(&m, x, 1, o.frames, o.size, o.size, logits)) != TSF_OK) {
            fprintf(stderr, "view %d: %s\n", v, tsf_status_string(st));
            goto done;
        }
        if (v == 0) { /* where the view came from: the loader's frames, its crop of the frame
                         resized to short side S */
            tsf_sample_frames(idx, clip.h.T, clip.h.fps, &o, NULL, v);
            tsf_sample_crop(&crop, clip.h.H, clip.h.W, &o, NULL, v);
            printf("view 0: frames");
            for (i = 0; i < o.frames; i++) printf(" %d", idx[i]);
            printf(", crop at x %d, y %d of %d x %d\n", crop.x, crop.y, crop.width, crop.height);
        }
        printf("view %d logits:", v);
        for (k = 0; k < K && k < 10; k++) printf(" %+.3f", (double)logits[k]);
        printf("%s\n", K > 10 ? " ..." : "");
        for (k = 0; k < K; k++) mean[k] += logits[k] / (float)views;
    }

    /* softmax of the mean logits, and the three best classes */
    for (mx = mean[0], k = 1; k < K; k++) mx = mean[k] > mx ? mean[k] : mx;
    for (k = 0; k < K; k++) sum += expf(mean[k] - mx);
    n = top(best, 3, mean, K);
    printf("mean over %d views: top-%d\n", views, n);
    for (i = 0; i < n; i++)
        printf("  class %d  p = %.3f  logit %+.3f%s%s\n", best[i],
               (double)(expf(mean[best[i]] - mx) / sum), (double)mean[best[i]],
               *tsf_model_label(&m, best[i]) ? "  " : "", tsf_model_label(&m, best[i]));
    rc = 0;
done:
    free(x), free(logits), free(mean), free(idx);
    tsf_clip_close(&clip);
    tsf_model_free(&m);
    return rc;
}
