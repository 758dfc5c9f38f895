/* demo.c - `make demo`: a video transformer learns motion from synthetic videos, in plain C.

   What it shows. TimeSformer's claim (Bertasius et al., ICML 2021) is that attention across
   frames is what lets a video transformer understand actions that depend on time, as in
   Something-Something v2 ("pushing something left" vs "right"), while a per-frame model
   (space_only) does well only when one frame is enough. This program makes a dataset where
   one frame is never enough, trains the three attention variants of the released code on it
   (or all five schemes of the paper, --variants all) with the library's own forward, backward
   and SGD, and compares them.

   The data: 8 classes of 8-frame 32x32 RGB clips, generated in C from a seed (no downloads):
   a textured asymmetric shape moving right / left / down / up, turning clockwise / counter-
   clockwise about a pivot, or approaching (growing) / receding (shrinking), on a cluttered
   background (colour waves, pixel noise) with two static look-alike shapes, and new sensor
   noise in every frame. Position, size, speed, shape, texture and colours are random per clip.
   Each odd class is the even class played backwards: a clip and its twin hold the same frames
   in opposite order, so only frame order tells twins apart. The training set (8192 clips,
   201 MB, rendered once and kept; on demand when it is larger than 300 MB) and the test set
   (512 clips) come from different seeds.

   The model: divided_space_time, D 64, depth 2, 8 heads, patch 8 (16 patches a frame),
   156,488 parameters, trained from scratch for 3000 steps of 16 clips with SGD (momentum 0.9,
   Nesterov, weight decay 1e-4, gradient norm clipped at 1), lr 0.025 with 150 warm-up steps and
   cosine decay (tsf_lr_cosine). The weights are drawn at a scale for a narrow model trained
   from scratch (tsf_model_init_params_scratch, whose comment in timesformer.h says why), not
   the original's trunc-normal(0.02) for ViT-B. Then joint_space_time and space_only train on
   the same budget, data and order (with --variants all, also sparse_local_global and axial,
   whose extra steps' weights get the same scale).

   How it uses the cores: a model this small has products too small to split well across
   threads (one parallel region per layer and op, each a few microseconds of work), so each
   step's batch is cut into 4 shards of 4 clips, each run forward and backward by a model of
   its own (its own activations and gradients, a copy of the weights) on whichever thread is
   free: one parallel region a step. The shards' gradients are summed in shard order and SGD
   updates the first model's weights, which the others copy before the next step. The shard
   count, not the thread count, fixes every sum, so the numbers do not depend on the threads;
   --shards 1 is the unsharded step.

   Output on stdout: a progress line per variant (redrawn in place with \r on a terminal:
   step, epoch, loss, accuracy, clips/s, ETA) and a line at each of 12 test evaluations; then a
   table (test accuracy, motion and direction accuracy, ms per training step, parameters,
   GFLOPs per clip, memory, wall time), the test accuracy per class, what space_only shows,
   and whether divided_space_time met the target: at least 95% test accuracy within 3 minutes.
   Files in DIR (default build/demo_out):
     log.csv     variant,step,epoch,loss,train_acc,test_loss,test_acc,motion_acc,direction_acc,
                 lr,seconds: one row per evaluation; loss and train_acc are the means over the
                 steps since the previous row
     curves.svg  training and test loss (log scale) and test accuracy per variant
     clips.ppm   one test clip per class (rows) over its 8 frames (columns), 4x enlarged
   Metrics: "motion" is the share of test clips whose predicted class is in the right twin
   pair (right/left, down/up, turning, size), which needs no frame order; "direction" is the
   share of those that also got the right twin, which only frame order tells (chance 50%).

   Build and run (from the repository root; needs only a C compiler):
       make demo
   or
       cc -std=c99 -O2 -march=native -fopenmp -I. tools/demo.c -o build/demo -lm
       ./build/demo [options]
   Options:
       --quick          a smoke test: 40 steps, 64 test clips, 640 training clips; seconds
                        (the tests use it; the 95% target is not checked)
       --steps N        SGD steps for each variant (default 3000)
       --variants LIST  comma-separated, in the order to run: divided, joint, space,
                        local_global, axial (or the full names: divided_space_time, ...), or
                        all (the five, in that order); default divided,joint,space
       --seed N         seed of the data, the weights and the order (default 1); a run is
                        deterministic, and gives the same numbers with any thread count
       --out DIR        where log.csv, curves.svg and clips.ppm go (default build/demo_out)
       --threads N      OpenMP threads (default: OMP_NUM_THREADS, else every core)
       --shards N       shards of the batch, one model each, run side by side (default 4;
                        a divisor of --batch)
       --batch N, --lr F, --warmup F (share of the steps), --wd F, --train-clips N,
       --test-clips N, --evals N, --frames N, --size N, --patch N, --dim N, --depth N,
       --heads N        the recipe and the model (defaults above)
       -h, --help       the usage
   Exit status: 0 when the run completed (whether or not the target was met: the last line
   says), 1 on an error (out of memory, an unwritable DIR, divergence), 2 on bad options.

   Expected output (AMD EPYC Zen 4 class, 2 cores, avx512, gcc 12 -O2 -march=native -fopenmp),
   the end of a run of `make demo` with nothing else running:
       variant             test acc  motion direction ms/step   params GFLOPs   memory  time
       divided_space_time     97.1%   98.6%     98.4%    16.4  156,488  0.021  47.5 MB  0:51
       joint_space_time       82.0%   84.4%     97.2%    12.4  114,632  0.019  35.8 MB  0:39
       space_only             21.1%   44.7%     47.2%    10.9  114,120  0.016  37.1 MB  0:34
       per-class test accuracy (%)
                       right     left     down       up       cw      ccw approach   recede
       divided         100.0    100.0     98.4     96.9     90.6     92.2    100.0     98.4
       joint            87.5     87.5     89.1     90.6     45.3     67.2     96.9     92.2
       space            10.9     12.5     26.6      7.8     23.4     26.6     37.5     23.4
       target: divided_space_time reached 97.1% test accuracy in 0:51 (goal: at least 95%
       within 3:00): MET
       total 2:04
   (make demo took 2:11 with its build. Built for AVX2, whose sums round differently: 97.9%,
   82.8%, 20.9%, total 2:19, with the build 2:24.)
   --variants all trains the same three to the same numbers, then (one run of
   --variants local_global,axial, the same build and machine):
       sparse_local_global    89.1%   95.1%     93.6%    20.5  156,488  0.021  47.5 MB  1:04
       axial                  96.9%   99.0%     97.8%    28.3  198,344  0.026  59.5 MB  1:28
   and per class
       local_global     95.3     98.4     96.9     95.3     67.2     64.1     96.9     98.4
       axial            95.3     98.4    100.0    100.0     92.2     89.1    100.0    100.0
   Every scheme that attends across frames tells a clip from its reverse (direction 93.6% to
   98.4%); space_only cannot.
   --seed 2 and --seed 3 reach 93.6% and 98.6% (the step at which a run learns to tell the
   two turning directions apart varies with the seed).
   Times vary with the machine and with whatever else runs on it. The accuracies do not:
   they depend only on the seed, the options and the build's SIMD path (whose sums round
   differently), never on the thread count. With other processes busy on the same cores,
   OpenMP's busy-waiting can slow every step several-fold, so the demo sets OMP_WAIT_POLICY=passive
   itself unless the environment sets it (tt_omp_passive in tsf_tools.h). */
#ifndef TT_NO_STB
#define TT_NO_STB /* no images: the demo needs only a C compiler */
#endif
#include "tsf_tools.h" /* first: it sets _XOPEN_SOURCE before any system header */

/* after tsf_tools.h */
#include "tsf_chart.h" /* the SVG plot */

#include <math.h>
#include <sys/resource.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define TARGET_ACC 0.95      /* the divided model's goal on the test set ...            */
#define TARGET_SECONDS 180.  /* ... within this wall time, with the default budget      */
#define KEEP_TRAIN_BYTES 3e8 /* a training set up to this size is rendered once and kept */
#define MAX_SHARDS 64        /* --shards: at most this many models train side by side     */
#define PI_F 3.14159265f

/* ==== the synthetic dataset ==================================================================
   Eight classes that differ only in motion. Class 2k+1 is class 2k played backwards, so a clip
   and its twin hold exactly the same frames in opposite order: only frame order tells them
   apart, and no single frame tells any class from another. */
enum { NCLASS = 8 };
static const char *const class_names[NCLASS] = {
    "right", "left", "down", "up", "clockwise", "counter-clockwise", "approach", "recede"};
static const char *const class_short[NCLASS] = {"right", "left", "down",     "up",
                                                "cw",    "ccw",  "approach", "recede"};

/* An asymmetric textured blob: radius r(th) = rad (1 + sum_k a_k cos(k th - p_k)) in its own
   frame; stripes of two colours, and the half on the side of the first lobe brighter than the
   other, so its orientation shows. */
typedef struct shape {
    float a[3], cp[3], sp[3]; /* lobe amplitudes, cos and sin of their phases */
    float col[2][3];          /* the stripes' two colours                    */
    float freq, sc, ss, sph;  /* stripes: cycles a radius, direction, phase  */
} shape;

static float urand(tsf_rng *r, float lo, float hi) { return lo + (hi - lo) * tsf_rng_uniform(r); }

static void random_shape(shape *sh, tsf_rng *r) {
    float lo[3] = {0.25f, 0.1f, 0.0f}, hi[3] = {0.4f, 0.25f, 0.12f}, d;
    int k, c;
    for (k = 0; k < 3; k++) {
        float p = urand(r, 0.0f, 2 * PI_F);
        sh->a[k] = urand(r, lo[k], hi[k]), sh->cp[k] = cosf(p), sh->sp[k] = sinf(p);
    }
    for (c = 0; c < 3; c++)
        sh->col[0][c] = urand(r, 0.45f, 1.0f), sh->col[1][c] = urand(r, 0.45f, 1.0f);
    sh->freq = urand(r, 1.2f, 2.4f);
    d = urand(r, 0.0f, 2 * PI_F);
    sh->sc = cosf(d), sh->ss = sinf(d), sh->sph = urand(r, 0.0f, 2 * PI_F);
}

/* Draw the shape centred at (cx, cy) pixels, turned by ang radians (clockwise on screen: y
   points down), of base radius rad pixels, over img // (S, S, 3) in [0, 1], antialiased. */
static void draw_shape(float *img, int S, const shape *sh, float cx, float cy, float ang,
                       float rad) {
    float rb = rad * (1.0f + sh->a[0] + sh->a[1] + sh->a[2]) + 1.0f, ca = cosf(ang), sa = sinf(ang);
    int x0 = (int)floorf(cx - rb), x1 = (int)ceilf(cx + rb), y0 = (int)floorf(cy - rb);
    int y1 = (int)ceilf(cy + rb), px, py, ch;
    if (x0 < 0) x0 = 0;
    if (y0 < 0) y0 = 0;
    if (x1 > S - 1) x1 = S - 1;
    if (y1 > S - 1) y1 = S - 1;
    for (py = y0; py <= y1; py++)
        for (px = x0; px <= x1; px++) {
            float dx = (float)px + 0.5f - cx, dy = (float)py + 0.5f - cy;
            float u = dx * ca + dy * sa, v = -dx * sa + dy * ca, rho2 = u * u + v * v, rho;
            float c1 = 1, s1 = 0, c2, s2, c3, s3, rr, alpha, stripe, shade, *o;
            if (rho2 > rb * rb) continue;
            rho = sqrtf(rho2);
            if (rho > 1e-6f) c1 = u / rho, s1 = v / rho;    /* cos, sin of the angle th */
            c2 = c1 * c1 - s1 * s1, s2 = 2 * c1 * s1;       /* of 2 th */
            c3 = c1 * c2 - s1 * s2, s3 = s1 * c2 + c1 * s2; /* of 3 th */
            rr = rad * (1.0f + sh->a[0] * (c1 * sh->cp[0] + s1 * sh->sp[0]) +
                        sh->a[1] * (c2 * sh->cp[1] + s2 * sh->sp[1]) +
                        sh->a[2] * (c3 * sh->cp[2] + s3 * sh->sp[2]));
            alpha = rr - rho + 0.5f; /* one pixel of soft edge */
            if (alpha <= 0.0f) continue;
            if (alpha > 1.0f) alpha = 1.0f;
            stripe =
                0.5f + 0.5f * sinf(sh->freq * 2 * PI_F * (u * sh->sc + v * sh->ss) / rad + sh->sph);
            shade = u * sh->cp[0] + v * sh->sp[0] > 0.0f ? 1.0f : 0.6f;
            o = img + ((size_t)py * S + px) * 3;
            for (ch = 0; ch < 3; ch++) {
                float col = (sh->col[0][ch] + (sh->col[1][ch] - sh->col[0][ch]) * stripe) * shade;
                o[ch] += (col - o[ch]) * alpha;
            }
        }
}

/* Render one clip of class `label` from its own seed: out // (T, S, S, 3) bytes. Lengths are
   in units of the frame side S and motions in units of the clip's length, so any T and S
   give the same kind of clip. work: 2 S S 3 floats. */
static void render_clip(unsigned char *out, int label, unsigned long long seed, int T, int S,
                        float *work) {
    const float fS = (float)S, fT = (float)(T - 1), wave = 0.7f * 32.0f / fS;
    float *bg = work, *img = work + (size_t)S * S * 3;
    float b0[3], b1[3], wx[3], wy[3], wp[3], cx, cy, ang, rad, v = 0, w = 0, g = 1;
    int base = label & ~1, backwards = label & 1, c, k, t, i;
    unsigned int bits = 0;
    size_t n = (size_t)S * S * 3;
    shape sh;
    tsf_rng r;
    tsf_rng_seed(&r, seed);
    /* background: two dark colours mixed by three waves, plus static pixel noise */
    for (c = 0; c < 3; c++) b0[c] = urand(&r, 0.0f, 0.4f), b1[c] = urand(&r, 0.1f, 0.55f);
    for (k = 0; k < 3; k++)
        wx[k] = urand(&r, -wave, wave), wy[k] = urand(&r, -wave, wave),
        wp[k] = urand(&r, 0.0f, 2 * PI_F);
    for (i = 0; i < S * S; i++) {
        float x = (float)(i % S), y = (float)(i / S), m = 0;
        for (k = 0; k < 3; k++) m += sinf(wx[k] * x + wy[k] * y + wp[k]);
        m = 0.5f + m / 6.0f;
        for (c = 0; c < 3; c++)
            bg[i * 3 + c] = b0[c] + (b1[c] - b0[c]) * m + urand(&r, -0.1f, 0.1f);
    }
    /* two static distractors drawn like the object: a single frame cannot tell which moves */
    for (k = 0; k < 2; k++) {
        shape d;
        float dx, dy, da;
        random_shape(&d, &r);
        dx = urand(&r, 0.0f, fS), dy = urand(&r, 0.0f, fS), da = urand(&r, 0.0f, 2 * PI_F);
        draw_shape(bg, S, &d, dx, dy, da, urand(&r, 0.08f, 0.16f) * fS);
    }
    /* the object, and its motion as a function of time tau = 0 .. T-1 */
    random_shape(&sh, &r);
    rad = urand(&r, 0.14f, 0.22f) * fS;
    ang = urand(&r, 0.0f, 2 * PI_F);
    cx = urand(&r, 0.25f, 0.75f) * fS, cy = urand(&r, 0.25f, 0.75f) * fS;
    if (base == 0 || base == 2) { /* right, down: a quarter to half the frame, all in view */
        float lo, hi;
        v = urand(&r, 0.25f, 0.5f) * fS / fT;
        lo = 0.6f * rad, hi = fS - 0.6f * rad - v * fT;
        if (hi < lo) hi = lo;
        if (base == 0)
            cx = urand(&r, lo, hi);
        else
            cy = urand(&r, lo, hi);
    } else if (base == 4) { /* clockwise: 140 to 280 degrees about a pivot */
        w = urand(&r, 2.45f, 4.9f) / fT;
    } else { /* approach: the radius grows 1.7 to 2.5 times */
        g = powf(urand(&r, 1.7f, 2.5f), 1.0f / fT);
        rad = urand(&r, 0.09f, 0.13f) * fS;
    }
    for (t = 0; t < T; t++) {
        float tau = (float)(backwards ? T - 1 - t : t), x = cx, y = cy, a = ang, rr = rad;
        unsigned char *o = out + (size_t)t * n;
        if (base == 0) x += v * tau;
        if (base == 2) y += v * tau;
        if (base == 4) { /* a rigid turn about a pivot one radius from the shape's centre */
            a += w * tau;
            x += rad * cosf(a), y += rad * sinf(a);
        }
        if (base == 6) rr *= powf(g, tau);
        memcpy(img, bg, n * sizeof *img);
        draw_shape(img, S, &sh, x, y, a, rr);
        for (i = 0; i < (int)n; i++) { /* sensor noise, new in every frame: +-0.03 */
            float p;
            if (i % 4 == 0) bits = tsf_rng_u32(&r); /* four 8-bit draws from one number */
            p = img[i] + ((float)(bits & 255) - 127.5f) * (0.03f / 127.5f), bits >>= 8;
            o[i] = (unsigned char)(p <= 0.0f ? 0 : p >= 1.0f ? 255 : (int)(p * 255.0f + 0.5f));
        }
    }
}

/* A set of clips: clip i has class i mod 8 and its own seed, drawn from the set's seed. A set
   is rendered once and kept as bytes (u8), or, a training set too big to keep, rendered on
   demand (every epoch shows the same clips in a new order, so both give the same bits). */
typedef struct clipset {
    int n, T, S;
    unsigned long long seed;
    unsigned char *u8; /* (n, T, S, S, 3), or NULL: render on demand */
} clipset;

static size_t clip_bytes(const clipset *s) { return (size_t)s->T * s->S * s->S * 3; }
static int clip_label(int i) { return i % NCLASS; }

/* Clip i of the set into out // (T, S, S, 3). */
static void clip_render(const clipset *s, int i, unsigned char *out) {
    float *work = (float *)malloc((size_t)2 * s->S * s->S * 3 * sizeof(float));
    if (!work) abort(); /* 25 KB at 32 x 32 */
    render_clip(out, clip_label(i), tsf_sample_seed(s->seed, 0, i), s->T, s->S, work);
    free(work);
}

/* Every clip of the set into s->u8, in parallel. */
static void render_set(clipset *s) {
    int i;
#pragma omp parallel for schedule(static)
    for (i = 0; i < s->n; i++) clip_render(s, i, s->u8 + (size_t)i * clip_bytes(s));
}

/* Clips idx[0..n) of the set as model input x // (n, 3, T, S, S), normalised with the model's
   mean and std, and their labels. buf: n clip_bytes() of scratch (NULL for a set kept in
   s->u8: the test set). */
static void clips_input(float *x, int *labels, const clipset *s, const int *idx, int n,
                        unsigned char *buf, const tsf_config *cfg) {
    size_t plane = (size_t)s->S * s->S, cb = clip_bytes(s);
    int b;
#pragma omp parallel for schedule(static)
    for (b = 0; b < n; b++) {
        const unsigned char *u8 = s->u8 ? s->u8 + (size_t)idx[b] * cb : buf + (size_t)b * cb;
        int t, c;
        size_t p;
        if (!s->u8) clip_render(s, idx[b], buf + (size_t)b * cb);
        labels[b] = clip_label(idx[b]);
        for (c = 0; c < 3; c++) {
            float scale = 1.0f / (255.0f * cfg->std[c]), shift = cfg->mean[c] / cfg->std[c];
            for (t = 0; t < s->T; t++) {
                float *dst = x + (size_t)b * 3 * s->T * plane + ((size_t)c * s->T + t) * plane;
                const unsigned char *src = u8 + (size_t)t * plane * 3 + c;
                for (p = 0; p < plane; p++) dst[p] = (float)src[p * 3] * scale - shift;
            }
        }
    }
}

/* One clip of each class (rows) over its frames (columns), each pixel z x z, as a binary PPM
   picture: any image viewer shows it. Returns 0 on a write error. */
static int write_sheet(const char *path, const clipset *s, int z) {
    int T = s->T, S = s->S, W = T * (S * z + 2), H = NCLASS * (S * z + 2), k, t, y, x, ok;
    unsigned char *pic = (unsigned char *)tt_malloc((size_t)W * H * 3);
    unsigned char *clip = (unsigned char *)tt_malloc(clip_bytes(s));
    FILE *f;
    memset(pic, 255, (size_t)W * H * 3);
    for (k = 0; k < NCLASS; k++) { /* clip k of the set has class k */
        clip_render(s, k, clip);
        for (t = 0; t < T; t++)
            for (y = 0; y < S * z; y++)
                for (x = 0; x < S * z; x++)
                    memcpy(pic + (((size_t)k * (S * z + 2) + y) * W + (size_t)t * (S * z + 2) + x) *
                                     3,
                           clip + (((size_t)t * S + y / z) * S + x / z) * 3, 3);
    }
    f = fopen(path, "wb");
    ok = f && fprintf(f, "P6\n%d %d\n255\n", W, H) > 0 &&
         fwrite(pic, 1, (size_t)W * H * 3, f) == (size_t)W * H * 3;
    if (f && fclose(f) != 0) ok = 0;
    free(pic), free(clip);
    return ok;
}

/* ==== options ================================================================================ */
typedef struct opts {
    int steps, batch, frames, size, patch, dim, depth, heads, train_clips, test_clips, evals;
    int shards, threads, quick, variants[TSF_NUM_ATTENTION], nvariants;
    float lr, warmup, wd;
    unsigned long long seed;
    const char *out;
} opts;

static void usage(FILE *f) {
    fprintf(f, "usage: demo [--quick] [--steps N] [--variants LIST] [--seed N] [--out DIR]\n"
               "            [--threads N] [more options below]\n"
               "Trains TimeSformer models from scratch on synthetic videos whose 8 classes differ\n"
               "only in motion, and compares divided space-time, joint space-time and space-only\n"
               "attention (--variants all: also sparse local-global and axial). Writes log.csv,\n"
               "curves.svg and clips.ppm to DIR.\n"
               "  --quick          a smoke test: 40 steps, 64 test clips (seconds; no target)\n"
               "  --steps N        SGD steps for each variant (default 3000)\n"
               "  --variants LIST  comma-separated: divided, joint, space, local_global, axial\n"
               "                   (or the full names); all: the five (default: the first three)\n"
               "  --seed N         seed of the data, the weights and the order (default 1)\n"
               "  --out DIR        output folder (default build/demo_out)\n"
               "  --threads N      OpenMP threads (default: OMP_NUM_THREADS, or every core)\n"
               "  --batch N        clips a step (16)        --lr F          peak rate (0.025)\n"
               "  --warmup F       warm-up share (0.05)     --wd F          weight decay (1e-4)\n"
               "  --train-clips N  training set (8192)      --test-clips N  test set (512)\n"
               "  --evals N        test evaluations during training (12)\n"
               "  --shards N       the batch's shards, one model each, run side by side (4)\n"
               "  --frames N (8)  --size N (32)  --patch N (8)  --dim N (64)  --depth N (2)\n"
               "  --heads N (8)    the model's shape\n"
               "  -h, --help       this help\n");
}

/* The short name of an attention scheme: "divided", "joint", "space", "local_global",
   "axial" (the per-class table's rows). */
static const char *short_name(int attention) {
    static const char *const names[TSF_NUM_ATTENTION] = {"divided", "joint", "space",
                                                         "local_global", "axial"};
    return attention >= 0 && attention < TSF_NUM_ATTENTION ? names[attention] : "?";
}

/* "divided,joint,space" -> attention variants ("all": the five). 0 after printing an error. */
static int parse_variants(const char *s, opts *o) {
    o->nvariants = 0;
    if (s && !strcmp(s, "all")) {
        for (o->nvariants = 0; o->nvariants < TSF_NUM_ATTENTION; o->nvariants++)
            o->variants[o->nvariants] = o->nvariants;
        return 1;
    }
    while (s && *s) {
        size_t n = strcspn(s, ",");
        int a = -1, i;
        for (i = 0; i < TSF_NUM_ATTENTION && a < 0; i++) /* the short names, or the full ones */
            if ((strlen(short_name(i)) == n && !strncmp(s, short_name(i), n)) ||
                (strlen(tsf_attention_name(i)) == n && !strncmp(s, tsf_attention_name(i), n)))
                a = i;
        if (a < 0) {
            tt_error("--variants: unknown variant \"%.*s\" (use divided, joint, space, "
                     "local_global, axial, or all)",
                     (int)n, s);
            return 0;
        }
        for (i = 0; i < o->nvariants; i++)
            if (o->variants[i] == a) {
                tt_error("--variants: %.*s is listed twice", (int)n, s);
                return 0;
            }
        o->variants[o->nvariants++] = a;
        s += n;
        if (*s == ',') s++;
    }
    if (o->nvariants == 0) {
        tt_error("--variants needs a list such as divided,joint,space");
        return 0;
    }
    return 1;
}

/* 1: parsed; 0: exit 0 (help); -1: exit 2 (an error was printed). */
static int parse_args(int argc, char **argv, opts *o) {
    int i, steps = 0, test = 0, evals = 0, seed = 1;
    memset(o, 0, sizeof *o);
    o->batch = 16, o->frames = 8, o->size = 32, o->patch = 8, o->dim = 64, o->depth = 2;
    o->heads = 8, o->train_clips = 8192, o->lr = 0.025f, o->warmup = 0.05f, o->wd = 1e-4f;
    o->shards = 4, o->out = "build/demo_out";
    o->variants[0] = TSF_ATTN_DIVIDED, o->variants[1] = TSF_ATTN_JOINT;
    o->variants[2] = TSF_ATTN_SPACE, o->nvariants = 3;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int ok = 1, used = 1;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--quick"))
            o->quick = 1, used = 0;
        else if (!strcmp(a, "--steps"))
            ok = tt_int(a, v, 1, 100000000, &steps);
        else if (!strcmp(a, "--variants"))
            ok = parse_variants(v, o);
        else if (!strcmp(a, "--seed"))
            ok = tt_int(a, v, 0, 2147483647, &seed);
        else if (!strcmp(a, "--out"))
            ok = v && *v, o->out = v;
        else if (!strcmp(a, "--threads"))
            ok = tt_int(a, v, 1, 1024, &o->threads);
        else if (!strcmp(a, "--batch"))
            ok = tt_int(a, v, 1, 1024, &o->batch);
        else if (!strcmp(a, "--shards"))
            ok = tt_int(a, v, 1, MAX_SHARDS, &o->shards);
        else if (!strcmp(a, "--lr"))
            ok = tt_float(a, v, 1e-6, 10, &o->lr);
        else if (!strcmp(a, "--warmup"))
            ok = tt_float(a, v, 0, 1, &o->warmup);
        else if (!strcmp(a, "--wd"))
            ok = tt_float(a, v, 0, 1, &o->wd);
        else if (!strcmp(a, "--train-clips"))
            ok = tt_int(a, v, 1, 100000000, &o->train_clips);
        else if (!strcmp(a, "--test-clips"))
            ok = tt_int(a, v, 1, 1000000, &test);
        else if (!strcmp(a, "--evals"))
            ok = tt_int(a, v, 1, 10000, &evals);
        else if (!strcmp(a, "--frames"))
            ok = tt_int(a, v, 2, 64, &o->frames);
        else if (!strcmp(a, "--size"))
            ok = tt_int(a, v, 8, 512, &o->size);
        else if (!strcmp(a, "--patch"))
            ok = tt_int(a, v, 1, 512, &o->patch);
        else if (!strcmp(a, "--dim"))
            ok = tt_int(a, v, 4, 4096, &o->dim);
        else if (!strcmp(a, "--depth"))
            ok = tt_int(a, v, 1, 64, &o->depth);
        else if (!strcmp(a, "--heads"))
            ok = tt_int(a, v, 1, 256, &o->heads);
        else {
            tt_error("unknown option %s (demo --help lists them)", a);
            return -1;
        }
        if (!ok && !strcmp(a, "--out")) tt_error("--out needs a folder");
        if (!ok) return -1;
        i += used;
    }
    o->seed = (unsigned long long)seed;
    o->steps = steps ? steps : o->quick ? 40 : 3000;
    o->test_clips = test ? test : o->quick ? 64 : 512;
    o->evals = evals ? evals : o->quick ? 4 : 12;
    if (o->evals > o->steps) o->evals = o->steps;
    if (o->quick && o->train_clips == 8192) o->train_clips = 640;
    if (o->size % o->patch) {
        tt_error("--size %d is not a multiple of --patch %d", o->size, o->patch);
        return -1;
    }
    if (o->dim % o->heads) {
        tt_error("--dim %d is not a multiple of --heads %d", o->dim, o->heads);
        return -1;
    }
    if (o->batch % o->shards) {
        tt_error("--batch %d is not a multiple of --shards %d", o->batch, o->shards);
        return -1;
    }
    if (o->train_clips < o->batch) {
        tt_error("--train-clips %d is less than one batch (--batch %d)", o->train_clips, o->batch);
        return -1;
    }
    return 1;
}

/* ==== the model ============================================================================== */
static tsf_config demo_config(const opts *o, int attention) {
    tsf_config c;
    memset(&c, 0, sizeof c);
    c.image_size = o->size, c.patch_size = o->patch, c.frames = o->frames, c.dim = o->dim;
    c.depth = o->depth, c.heads = o->heads, c.classes = NCLASS, c.attention = attention;
    return c;
}

/* ==== training and evaluation ================================================================ */
static const char *hms(double s, char *buf) { /* 125.3 -> "2:05" */
    long v = (long)(s + 0.5);
    if (v >= 3600)
        sprintf(buf, "%ld:%02ld:%02ld", v / 3600, v / 60 % 60, v % 60);
    else
        sprintf(buf, "%ld:%02ld", v / 60, v % 60);
    return buf;
}

/* One evaluation point of a training run. */
typedef struct point {
    int step;
    double epoch, loss, train_acc, test_loss, test_acc, motion_acc, direction_acc, lr, seconds;
} point;

/* What a variant's run gave. */
typedef struct result {
    int attention, npoints;
    point *points;
    double acc, motion_acc, direction_acc, class_acc[NCLASS];
    double ms_step, seconds, gflops;
    size_t params, mem_bytes;
} result;

/* The batch's shards ("How it uses the cores" at the top): shard 0's model holds the weights
   SGD updates; the shards' gradients are summed into its gradients in shard order and divided
   by the shard count (tsf_sgd_step's accum), which gives the batch's mean gradient. */
#define GRAD_CHUNK 4096 /* floats of gradient a thread sums at a time */
typedef struct shards {
    int n, nb;          /* shard count; clips a shard (batch / n)                           */
    tsf_model *m;       /* n models; m[0] holds the weights                                */
    tsf_status *st;     /* n statuses of the last pass                                     */
    float *loss;        /* n mean losses of the last pass                                  */
    float *x;           /* n * nb clips of input                                           */
    int *labels, *idx;  /* n * nb labels; n * nb clip indices                              */
    unsigned char *buf; /* n * nb rendered clips                                           */
} shards;

/* The other shards' models take shard 0's weights (called inside the shards' loop). */
static void shard_sync(shards *s, int k) {
    if (k) memcpy(s->m[k].param_memory, s->m[0].param_memory, s->m[0].param_floats * sizeof(float));
}

/* The first failed shard's status, or TSF_OK. */
static tsf_status shards_status(const shards *s) {
    int k;
    for (k = 0; k < s->n; k++)
        if (s->st[k] != TSF_OK) return s->st[k];
    return TSF_OK;
}

/* Test accuracy (all 8 classes), motion accuracy (the right twin pair: right/left, down/up,
   turning, approach/recede, which needs no frame order) and direction accuracy (the right
   class among the clips whose pair was right: only frame order tells it). Chunks of nb clips
   go to the shards in turn; the sums are taken in chunk order afterwards. */
static tsf_status evaluate(shards *s, const clipset *test, point *pt, double *class_acc) {
    int i, k, chunks = (test->n + s->nb - 1) / s->nb, correct = 0, pair = 0;
    int hit[NCLASS] = {0}, count[NCLASS] = {0};
    int *pred = (int *)tt_malloc((size_t)test->n * sizeof *pred);
    double *closs = (double *)tt_malloc((size_t)chunks * sizeof *closs), loss_sum = 0;
    tsf_status st;
#pragma omp parallel for schedule(static) if (s->n > 1)
    for (k = 0; k < s->n; k++) {
        float *x = s->x + (size_t)k * s->nb * 3 * test->T * test->S * test->S;
        int *labels = s->labels + (size_t)k * s->nb, *idx = s->idx + (size_t)k * s->nb, c, b;
        shard_sync(s, k);
        s->st[k] = TSF_OK;
        for (c = k; c < chunks && s->st[k] == TSF_OK; c += s->n) {
            int first = c * s->nb, nb = test->n - first < s->nb ? test->n - first : s->nb;
            float loss;
            for (b = 0; b < nb; b++) idx[b] = first + b;
            clips_input(x, labels, test, idx, nb, NULL, &s->m[k].cfg);
            s->st[k] = tsf_model_loss(&s->m[k], x, labels, nb, test->T, test->S, test->S, 0, &loss);
            closs[c] = (double)loss * nb;
            for (b = 0; b < nb; b++)
                pred[first + b] = tt_argmax(s->m[k].acts.logits + (size_t)b * NCLASS, NCLASS);
        }
    }
    if ((st = shards_status(s)) == TSF_OK) {
        for (i = 0; i < chunks; i++) loss_sum += closs[i];
        for (i = 0; i < test->n; i++) {
            int p = pred[i], y = clip_label(i);
            correct += p == y, pair += p / 2 == y / 2, hit[y] += p == y, count[y]++;
        }
        pt->test_loss = loss_sum / test->n;
        pt->test_acc = (double)correct / test->n;
        pt->motion_acc = (double)pair / test->n;
        pt->direction_acc = pair ? (double)correct / pair : 0.0;
        if (class_acc)
            for (i = 0; i < NCLASS; i++) class_acc[i] = count[i] ? (double)hit[i] / count[i] : 0.0;
    }
    free(pred), free(closs);
    return st;
}

static int tty; /* stdout is a terminal: progress lines are redrawn in place with \r */

static void shards_free(shards *s) {
    int k;
    if (s->m)
        for (k = 0; k < s->n; k++) tsf_model_free(&s->m[k]);
    free(s->m), free(s->st), free(s->loss), free(s->x), free(s->labels), free(s->idx), free(s->buf);
}

/* Train one variant on the shared data; fills *res and appends to the CSV. 0 on error. */
static int train_variant(const opts *o, int attention, const clipset *train, const clipset *test,
                         FILE *csv, result *res) {
    tsf_config cfg = demo_config(o, attention);
    shards sh;
    tsf_status st = TSF_OK;
    tsf_sgd sgd = tsf_sgd_default();
    const char *name = tsf_attention_name(attention);
    size_t clip_floats = 3 * (size_t)o->frames * o->size * o->size, pb = 0, ab = 0, tb = 0;
    int *perm = (int *)tt_malloc((size_t)train->n * sizeof *perm);
    int steps_per_epoch = train->n / o->batch, step, b, k, next_eval = 1, ok = 0;
    int width = snprintf(NULL, 0, "%d", o->steps);
    long long epoch = -1, warmup = (long long)((double)o->warmup * o->steps + 0.5);
    double t0 = tt_now(), t_model = 0, t_eval = 0, last_draw = 0, loss_sum = 0;
    long hits = 0, seen = 0;
    char eta[32];
    memset(res, 0, sizeof *res);
    res->attention = attention;
    res->points = (point *)tt_malloc((size_t)o->evals * sizeof *res->points);
    sh.n = o->shards, sh.nb = o->batch / o->shards;
    sh.m = (tsf_model *)tt_malloc((size_t)sh.n * sizeof *sh.m);
    memset(sh.m, 0, (size_t)sh.n * sizeof *sh.m);
    sh.st = (tsf_status *)tt_malloc((size_t)sh.n * sizeof *sh.st);
    sh.loss = (float *)tt_malloc((size_t)sh.n * sizeof *sh.loss);
    sh.x = (float *)tt_malloc((size_t)o->batch * clip_floats * sizeof *sh.x);
    sh.labels = (int *)tt_malloc((size_t)o->batch * sizeof *sh.labels);
    sh.idx = (int *)tt_malloc((size_t)o->batch * sizeof *sh.idx);
    sh.buf = (unsigned char *)tt_malloc((size_t)o->batch * clip_bytes(train));
    for (k = 0; k < sh.n && st == TSF_OK; k++) {
        if ((st = tsf_model_init(&sh.m[k], &cfg, sh.nb, o->seed)) != TSF_OK) break;
        sh.m[k].cfg.keep_acts = 1; /* a small model: keep the norms' and GELU's outputs */
        if (k == 0) tsf_model_init_params_scratch(&sh.m[0], o->seed); /* from scratch */
        st = tsf_model_train_init(&sh.m[k]);
    }
    if (st != TSF_OK) {
        tt_error("%s: cannot create the models: %s", name, tsf_status_string(st));
        goto done;
    }
    res->params = tsf_config_num_params(&sh.m[0].cfg);
    res->gflops = 1e-9 * tsf_config_flops(&sh.m[0].cfg, 0, 0, 0); /* the paper's: multiply-adds */
    tsf_model_bytes(&sh.m[0].cfg, sh.nb, 0, 0, 0, &pb, &ab);
    tsf_model_train_bytes(&sh.m[0].cfg, sh.nb, 0, 0, 0, &tb);
    res->mem_bytes = (size_t)sh.n * (pb + ab + tb);
    sgd.weight_decay = o->wd, sgd.clip_norm = 1.0f;
    for (step = 0; step < o->steps; step++) {
        float loss = 0, lr = tsf_lr_cosine(o->lr, step, warmup, o->steps);
        const int *order;
        double ts;
        if (step / steps_per_epoch != epoch) { /* a new epoch: a new order of the clips */
            tsf_rng er;
            epoch = step / steps_per_epoch;
            tsf_rng_seed(&er, tsf_sample_seed(o->seed, epoch, -2));
            tsf_shuffle(perm, train->n, &er);
        }
        order = perm + (size_t)(step % steps_per_epoch) * o->batch;
        ts = tt_now();
#pragma omp parallel for schedule(static) if (sh.n > 1)
        for (k = 0; k < sh.n; k++) { /* each shard: its clips, forward and backward */
            size_t first = (size_t)k * sh.nb;
            float *x = sh.x + first * clip_floats;
            shard_sync(&sh, k);
            clips_input(x, sh.labels + first, train, order + first, sh.nb,
                        sh.buf + first * clip_bytes(train), &sh.m[k].cfg);
            tsf_model_zero_grad(&sh.m[k]);
            sh.st[k] = tsf_model_loss(&sh.m[k], x, sh.labels + first, sh.nb, o->frames, o->size,
                                      o->size, 1, &sh.loss[k]);
            if (sh.st[k] == TSF_OK) sh.st[k] = tsf_model_backward(&sh.m[k], NULL);
        }
        if ((st = shards_status(&sh)) == TSF_OK && sh.n > 1) { /* shard 0 += the others, in order */
            size_t n, i;
            float *g0 = tsf_model_grad_buffer(&sh.m[0], &n);
            long long j, chunks = (long long)((n + GRAD_CHUNK - 1) / GRAD_CHUNK);
#pragma omp parallel for schedule(static) private(i, k)
            for (j = 0; j < chunks; j++) {
                size_t i0 = (size_t)j * GRAD_CHUNK, end = n - i0 < GRAD_CHUNK ? n : i0 + GRAD_CHUNK;
                for (k = 1; k < sh.n; k++) {
                    const float *g = tsf_model_grad_buffer(&sh.m[k], NULL);
                    for (i = i0; i < end; i++) g0[i] += g[i];
                }
            }
        }
        if (st == TSF_OK) st = tsf_sgd_step(&sh.m[0], &sgd, lr, sh.n, NULL);
        t_model += tt_now() - ts;
        if (st != TSF_OK) {
            if (tty) putchar('\n');
            tt_error("%s: step %d: %s%s", name, step + 1, tsf_status_string(st),
                     st == TSF_ERR_NONFINITE ? ": training diverged; try a lower --lr" : "");
            goto done;
        }
        for (k = 0; k < sh.n; k++) loss += sh.loss[k];
        loss_sum += (double)(loss / sh.n), seen += o->batch;
        for (k = 0; k < sh.n; k++)
            for (b = 0; b < sh.nb; b++)
                hits += tt_argmax(sh.m[k].acts.logits + (size_t)b * NCLASS, NCLASS) ==
                        sh.labels[k * sh.nb + b];
        /* an evaluation point: steps k * steps / evals, k = 1 .. evals */
        if (step + 1 == (int)(((long long)next_eval * o->steps) / o->evals)) {
            point *pt = &res->points[res->npoints++];
            double te = tt_now(), cls[NCLASS];
            int n = (int)(seen / o->batch);
            if ((st = evaluate(&sh, test, pt, cls)) != TSF_OK) {
                tt_error("%s: evaluation: %s", name, tsf_status_string(st));
                goto done;
            }
            t_eval += tt_now() - te;
            pt->step = step + 1, pt->epoch = (double)(step + 1) / steps_per_epoch;
            pt->loss = loss_sum / n, pt->train_acc = (double)hits / seen, pt->lr = (double)lr;
            pt->seconds = tt_now() - t0;
            fprintf(csv, "%s,%d,%.3f,%.5f,%.4f,%.5f,%.4f,%.4f,%.4f,%.6f,%.2f\n", name, pt->step,
                    pt->epoch, pt->loss, pt->train_acc, pt->test_loss, pt->test_acc, pt->motion_acc,
                    pt->direction_acc, pt->lr, pt->seconds);
            fflush(csv);
            printf(
                "%s  step %*d/%d  epoch %.2f  loss %.3f  acc %.1f%%  test %.1f%% (motion %.1f%%, "
                "direction %.1f%%)  %.0f clips/s  ETA %s%s\n",
                tty ? "\r" : "", width, pt->step, o->steps, pt->epoch, pt->loss,
                100 * pt->train_acc, 100 * pt->test_acc, 100 * pt->motion_acc,
                100 * pt->direction_acc, (double)(step + 1) * o->batch / (pt->seconds - t_eval),
                hms(pt->seconds / (step + 1) * (o->steps - step - 1), eta), tty ? "   " : "");
            fflush(stdout);
            loss_sum = 0, hits = 0, seen = 0, next_eval++;
            if (step + 1 == o->steps) {
                res->acc = pt->test_acc, res->motion_acc = pt->motion_acc;
                res->direction_acc = pt->direction_acc;
                for (k = 0; k < NCLASS; k++) res->class_acc[k] = cls[k];
            }
        } else if (tty && (tt_now() - last_draw > 0.25 || step + 1 == o->steps)) {
            double el_s = tt_now() - t0, per = el_s / (step + 1);
            int n = (int)(seen / o->batch);
            last_draw = tt_now();
            printf("\r  step %d/%d  epoch %.2f  loss %.3f  acc %.1f%%  %.0f clips/s  ETA %s   ",
                   step + 1, o->steps, (double)(step + 1) / steps_per_epoch, n ? loss_sum / n : 0.0,
                   seen ? 100.0 * hits / seen : 0.0,
                   (double)(step + 1) * o->batch / (el_s - t_eval),
                   hms(per * (o->steps - step - 1), eta));
            fflush(stdout);
        }
    }
    res->seconds = tt_now() - t0;
    res->ms_step = 1e3 * t_model / o->steps;
    ok = 1;
done:
    shards_free(&sh), free(perm);
    return ok;
}

/* ==== the SVG plot =========================================================================== */
static const char *const colours[TSF_NUM_ATTENTION] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd",
                                                       "#ff7f0e"}; /* by id */

/* A point's value: 0 training loss, 1 test loss, 2 test accuracy. */
static double point_value(const point *p, int field) {
    return field == 0 ? p->loss : field == 1 ? p->test_loss : p->test_acc;
}

/* A panel of the plot: x = step in [0, steps]. */
static tc_panel demo_panel(double left, double y0, double y1, int logy, const opts *o) {
    tc_panel p;
    p.left = left, p.top = 70, p.width = 380, p.height = 280;
    p.x0 = 0, p.x1 = o->steps, p.y0 = y0, p.y1 = y1, p.logy = logy;
    return p;
}

/* Title, grid, tick labels and frame of a panel. */
static void svg_axes(FILE *f, const tc_panel *p, const char *title) {
    char num[32];
    int k;
    tc_text(f, p->left + p->width / 2, p->top - 10, "text-anchor=\"middle\" font-size=\"14\"",
            title);
    for (k = 0; k <= 4; k++) { /* x: steps */
        double s = p->x1 * k / 4, x = tc_x(p, s);
        tc_line(f, x, p->top, x, p->top + p->height, "stroke=\"#e4e4e4\"");
        snprintf(num, sizeof num, "%.0f", s);
        tc_text(f, x, p->top + p->height + 15, "text-anchor=\"middle\" font-size=\"11\"", num);
    }
    tc_text(f, p->left + p->width / 2, p->top + p->height + 32,
            "text-anchor=\"middle\" font-size=\"12\"", "step");
    for (k = 0; k <= 5; k++) { /* y: decades on a log scale, else fifths as percentages */
        double v = p->logy ? p->y0 * pow(10.0, k) : p->y0 + (p->y1 - p->y0) * k / 5, y;
        if (p->logy && v > p->y1 * 1.001) break;
        y = tc_y(p, v);
        tc_line(f, p->left, y, p->left + p->width, y, "stroke=\"#e4e4e4\"");
        if (p->logy)
            snprintf(num, sizeof num, "%g", v);
        else
            snprintf(num, sizeof num, "%.0f%%", 100 * v);
        tc_text(f, p->left - 5, y + 4, "text-anchor=\"end\" font-size=\"11\"", num);
    }
    tc_frame(f, p, "#444");
}

/* A horizontal reference line with a label. */
static void svg_hline(FILE *f, const tc_panel *p, double v, const char *dash, const char *label,
                      double dy) {
    double y = tc_y(p, v);
    char attrs[64];
    snprintf(attrs, sizeof attrs, "stroke=\"#888\" stroke-dasharray=\"%s\"", dash);
    tc_line(f, p->left, y, p->left + p->width, y, attrs);
    tc_text(f, p->left + p->width - 4, y + dy, "text-anchor=\"end\" font-size=\"10\" fill=\"#666\"",
            label);
}

/* One variant's curve of one field, with a dot at each evaluation point. */
static void svg_curve(FILE *f, const tc_panel *p, const result *r, int field, int dashed) {
    double *x = (double *)tt_malloc((size_t)r->npoints * sizeof *x);
    double *y = (double *)tt_malloc((size_t)r->npoints * sizeof *y);
    int j;
    for (j = 0; j < r->npoints; j++)
        x[j] = r->points[j].step, y[j] = point_value(&r->points[j], field);
    tc_series(f, p, x, y, r->npoints, colours[r->attention], dashed ? "5,3" : NULL,
              dashed ? 1.5 : 2.5);
    free(x), free(y);
}

/* Training and test loss (log scale) and test accuracy at each evaluation point, one colour
   per variant. Returns 0 on a write error. */
static int write_svg(const char *path, const result *res, int nres, const opts *o) {
    FILE *f = fopen(path, "w");
    double lo = 1e30, hi = 0;
    tc_panel loss, acc;
    int i, j, field, ok;
    if (!f) return 0;
    for (i = 0; i < nres; i++)
        for (j = 0; j < res[i].npoints; j++)
            for (field = 0; field < 2; field++) {
                double v = point_value(&res[i].points[j], field);
                if (v > 0 && v < lo) lo = v;
                if (v > hi) hi = v;
            }
    if (hi <= 0) lo = 0.1, hi = 10; /* no points yet */
    if (lo < 1e-4) lo = 1e-4;
    lo = pow(10.0, floor(log10(lo))), hi = pow(10.0, ceil(log10(hi)));
    if (hi <= lo) hi = lo * 10;
    loss = demo_panel(70, lo, hi, 1, o);
    acc = demo_panel(550, 0, 1, 0, o);
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"960\" height=\"430\" "
               "viewBox=\"0 0 960 430\" font-family=\"sans-serif\">\n");
    fprintf(f, "<rect width=\"960\" height=\"430\" fill=\"white\"/>\n");
    fprintf(f,
            "<text x=\"480\" y=\"24\" text-anchor=\"middle\" font-size=\"16\">TimeSformer on "
            "synthetic motion clips: %d steps of %d clips, seed %llu</text>\n",
            o->steps, o->batch, o->seed);
    svg_axes(f, &loss, "loss (solid: training, dashed: test)");
    svg_axes(f, &acc, "test accuracy");
    svg_hline(f, &loss, log(NCLASS), "2,3", "chance ln 8", -4);
    svg_hline(f, &acc, TARGET_ACC, "6,4", "target 95%", 13);
    svg_hline(f, &acc, 1.0 / NCLASS, "2,3", "chance 12.5%", -4);
    for (i = 0; i < nres; i++) { /* the legend: up to 3 entries spaced wide, 5 closer */
        double lx = nres <= 3 ? 120 + 260 * i : 40 + 180 * i;
        char attrs[64];
        svg_curve(f, &loss, &res[i], 0, 0);
        svg_curve(f, &loss, &res[i], 1, 1);
        svg_curve(f, &acc, &res[i], 2, 0);
        snprintf(attrs, sizeof attrs, "stroke=\"%s\" stroke-width=\"3\"",
                 colours[res[i].attention]);
        tc_labelled_line(f, lx, 410, lx + 30, 410, attrs, lx + 38, 414, "font-size=\"13\"",
                         tsf_attention_name(res[i].attention));
    }
    fprintf(f, "</svg>\n");
    ok = !ferror(f);
    if (fclose(f) != 0) ok = 0;
    return ok;
}

/* ==== main =================================================================================== */
static double peak_rss_mb(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
#ifdef __APPLE__
    return (double)ru.ru_maxrss / (1024.0 * 1024.0); /* bytes */
#else
    return (double)ru.ru_maxrss / 1024.0; /* kilobytes */
#endif
}

int main(int argc, char **argv) {
    opts o;
    clipset train, test;
    result res[TSF_NUM_ATTENTION];
    char *csv_path, *svg_path, *ppm_path, t1[32], num[32];
    FILE *csv;
    int i, k, r, nres = 0, threads = 1, default_budget;
    double t_all;
    tt_omp_passive(argv); /* OMP_WAIT_POLICY=passive unless set (tsf_tools.h) */
    tt_prog = "demo";
    tty = isatty(fileno(stdout));
    if ((r = parse_args(argc, argv, &o)) <= 0) return r == 0 ? 0 : 2;
#ifdef _OPENMP
    if (o.threads) omp_set_num_threads(o.threads);
    threads = omp_get_max_threads();
#else
    if (o.threads > 1) tt_warn("built without OpenMP: --threads %d ignored", o.threads);
#endif
    default_budget = !o.quick && o.steps == 3000 && o.batch == 16 && o.frames == 8 &&
                     o.size == 32 && o.patch == 8 && o.dim == 64 && o.depth == 2 && o.heads == 8 &&
                     o.lr == 0.025f && o.train_clips == 8192;
    if (!tt_mkdirs(o.out)) {
        tt_error("cannot create the output folder %s: %s", o.out, strerror(errno));
        return 1;
    }
    csv_path = tt_join(o.out, "log.csv"), svg_path = tt_join(o.out, "curves.svg");
    ppm_path = tt_join(o.out, "clips.ppm");
    if (!(csv = fopen(csv_path, "w"))) {
        tt_error("cannot write %s: %s", csv_path, strerror(errno));
        free(csv_path), free(svg_path), free(ppm_path);
        return 1;
    }
    fprintf(csv, "variant,step,epoch,loss,train_acc,test_loss,test_acc,motion_acc,direction_acc,"
                 "lr,seconds\n");

    train.n = o.train_clips, test.n = o.test_clips;
    train.T = test.T = o.frames, train.S = test.S = o.size;
    train.seed = tsf_sample_seed(o.seed, -3, 1), test.seed = tsf_sample_seed(o.seed, -3, 2);
    test.u8 = (unsigned char *)tt_malloc((size_t)test.n * clip_bytes(&test));
    train.u8 = (double)train.n * clip_bytes(&train) <= KEEP_TRAIN_BYTES
                   ? (unsigned char *)malloc((size_t)train.n * clip_bytes(&train))
                   : NULL; /* NULL: too big (or no memory), rendered on demand */

    printf("timesformer.h demo: learning motion from synthetic videos%s\n",
           o.quick ? " (--quick: a smoke test)" : "");
    printf("data     %d classes that differ only in motion; each odd class is the even one played "
           "backwards:\n",
           NCLASS);
    printf("         ");
    for (k = 0; k < NCLASS; k += 2)
        printf("%s/%s%s", class_names[k], class_names[k + 1], k + 2 < NCLASS ? ", " : "\n");
    printf("         clips of %d frames of %dx%d: a textured shape on a cluttered background with "
           "two\n         static look-alikes; position, size, speed, texture and colours random "
           "per clip\n",
           o.frames, o.size, o.size);
    printf("         training set %d clips, test set %d clips (separate seeds; seed %llu)\n",
           train.n, test.n, o.seed);
    printf("model    D %d, depth %d, %d heads, patch %d (%d patches a frame), %d classes\n", o.dim,
           o.depth, o.heads, o.patch, (o.size / o.patch) * (o.size / o.patch), NCLASS);
    printf("training %d steps of %d clips (%.1f epochs); SGD momentum 0.9 Nesterov, lr %g with "
           "%d warm-up\n         steps then cosine, weight decay %g, gradient norm clipped at "
           "1\n",
           o.steps, o.batch, (double)o.steps / (train.n / o.batch), (double)o.lr,
           (int)((double)o.warmup * o.steps + 0.5), (double)o.wd);
    printf("machine  %d thread%s, %s matmul kernel\n", threads, threads == 1 ? "" : "s",
           tsf_simd_name());
    {
        double t0 = tt_now();
        render_set(&test);
        if (!write_sheet(ppm_path, &test, 4)) {
            tt_error("cannot write %s: %s", ppm_path, strerror(errno));
            return 1;
        }
        printf("         test set rendered in %.2f s; one test clip per class: %s\n", tt_now() - t0,
               ppm_path);
        if (train.u8) {
            t0 = tt_now();
            render_set(&train);
            printf("         training set rendered in %.2f s and kept (%.0f MB)\n", tt_now() - t0,
                   (double)train.n * clip_bytes(&train) / 1e6);
        }
    }

    t_all = tt_now();
    for (i = 0; i < o.nvariants; i++) {
        int a = o.variants[i];
        tsf_config cfg = demo_config(&o, a);
        tsf_config_resolve(&cfg);
        printf("\n[%d/%d] %s: %s parameters, %.3f GFLOPs a clip\n", i + 1, o.nvariants,
               tsf_attention_name(a), tt_commas(tsf_config_num_params(&cfg), num),
               1e-9 * tsf_config_flops(&cfg, 0, 0, 0));
        fflush(stdout);
        if (!train_variant(&o, a, &train, &test, csv, &res[nres])) return 1;
        nres++;
        if (!write_svg(svg_path, res, nres, &o)) {
            tt_error("cannot write %s: %s", svg_path, strerror(errno));
            return 1;
        }
        printf("  %s: test accuracy %.1f%% after %d steps, %s\n", tsf_attention_name(a),
               100 * res[nres - 1].acc, o.steps, hms(res[nres - 1].seconds, t1));
    }
    fclose(csv);
    printf("\nresults: %d steps of %d clips for each variant, same data and order (seed %llu), "
           "%d test clips\n",
           o.steps, o.batch, o.seed, test.n);
    printf("%-19s %8s %7s %9s %7s %8s %6s %8s %5s\n", "variant", "test acc", "motion", "direction",
           "ms/step", "params", "GFLOPs", "memory", "time");
    for (i = 0; i < nres; i++)
        printf("%-19s %7.1f%% %6.1f%% %8.1f%% %7.1f %8s %6.3f %5.1f MB %5s\n",
               tsf_attention_name(res[i].attention), 100 * res[i].acc, 100 * res[i].motion_acc,
               100 * res[i].direction_acc, res[i].ms_step, tt_commas(res[i].params, num),
               res[i].gflops, (double)res[i].mem_bytes / 1e6, hms(res[i].seconds, t1));
    printf("  motion: the right kind of motion (the twin pair); direction: the right one of the\n"
           "  pair, of the clips whose pair was right (only frame order tells it). ms/step:\n"
           "  the clips' input, forward + backward + SGD; GFLOPs: multiply-adds a clip (the\n"
           "  paper's count); memory: the shards' weights + activations + training buffers\n"
           "  (peak RSS of this process, with the kept training set: %.1f MB); time: wall\n"
           "  time with evaluation.\n",
           peak_rss_mb());
    printf("\nper-class test accuracy (%%)\n%-12s", "");
    for (k = 0; k < NCLASS; k++) printf(" %8s", class_short[k]);
    printf("\n");
    for (i = 0; i < nres; i++) {
        printf("%-12s", short_name(res[i].attention));
        for (k = 0; k < NCLASS; k++) printf(" %8.1f", 100 * res[i].class_acc[k]);
        printf("\n");
    }
    for (i = 0; i < nres; i++)
        if (res[i].attention == TSF_ATTN_SPACE)
            printf("\nspace_only attends within each frame and averages the frames' outputs: it\n"
                   "sees a clip as a set of frames, and a clip played backwards is the same set.\n"
                   "It %s the kind of motion (motion %.1f%%, chance 25%%) but not\n"
                   "its direction (direction %.1f%%, chance 50%%): this is the paper's point\n"
                   "about Something-Something v2, whose classes turn on frame order.\n",
                   res[i].motion_acc >= 0.6 ? "can tell" : "tells only partly",
                   100 * res[i].motion_acc, 100 * res[i].direction_acc);
    for (i = 0; i < nres; i++)
        if (res[i].attention == TSF_ATTN_DIVIDED) {
            const result *d = &res[i];
            int acc_ok = d->acc >= TARGET_ACC, time_ok = d->seconds <= TARGET_SECONDS;
            printf("\n");
            if (o.quick)
                printf("target: not checked (--quick is a smoke test; the 95%% target is for the "
                       "full run)\n");
            else {
                printf("target: divided_space_time reached %.1f%% test accuracy in %s (goal: at "
                       "least 95%% within 3:00): %s\n",
                       100 * d->acc, hms(d->seconds, t1),
                       acc_ok && time_ok ? "MET"
                       : acc_ok          ? "accuracy met, but slower than 3:00 here (are other "
                                           "processes using the cores?)"
                                         : "NOT MET");
                if (!default_budget)
                    printf("        (with a budget or model other than the default one)\n");
            }
        }
    printf("\ntotal %s; wrote %s, %s, %s\n", hms(tt_now() - t_all, t1), csv_path, svg_path,
           ppm_path);
    free(csv_path), free(svg_path), free(ppm_path), free(test.u8), free(train.u8);
    for (i = 0; i < nres; i++) free(res[i].points);
    return 0;
}
