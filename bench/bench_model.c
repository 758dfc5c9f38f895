/* bench/bench_model.c - the whole model: inference and training-step time, GFLOP/s, % of
   peak and peak memory, for the attention schemes; time and memory against frames

   WHAT IT DOES

   Times TimeSformer as the library runs it, for each attention variant (by default the
   released three: divided_space_time, joint_space_time, space_only; --variants all adds the
   paper's sparse_local_global and axial) and each configuration:
       small   112^2, patch 16, 8 frames, D 192, depth 4, 3 heads, 10 classes, batch 4
       vitb    ViT-B/16: 224^2, patch 16, 8 frames, D 768, depth 12, 12 heads, 400 classes,
               batch 1 (the paper's model)
       tiny    32^2, patch 8, 4 frames, D 32, depth 2, 2 heads, 5 classes, batch 2 (smoke runs)
       demo    tools/demo.c's model: 32^2, patch 8, 8 frames, D 64, depth 2, 8 heads, 8 classes,
               batch 16, cfg.keep_acts (its training step is --shards 4's measure, below)
   at each thread count (default 1 and 2), in three modes:
       infer   tsf_model_forward on a batch
       train   one SGD step: tsf_model_zero_grad, tsf_model_loss (train = 1), tsf_model_backward,
               tsf_sgd_step (tsf_sgd_default: momentum 0.9, Nesterov, weight decay 1e-4)
       lean    the same SGD step in the least memory: cfg.recompute (each block's input kept,
               the rest recomputed in backward) and cfg.fused_sgd (tsf_model_loss, then
               tsf_model_backward_sgd: one block's gradients at a time); the same results
   and reports the median time per call, the time per clip, the achieved GFLOP/s and % of
   peak, and the peak resident memory (RSS) of the process.

   FLOPs: the library's own count, tsf_config_flops (multiply-adds of one clip's forward pass,
   every matrix product, as the paper counts), x 2 flops per multiply-add, x B clips; a training
   step counts 3 forward passes (forward, plus the two products of the backward pass:
   activation and weight gradients). The library's last block computes only the cls rows the
   head reads (docs/model.md section 3), so the GFLOP/s are the full model's work over the
   time taken (above the arithmetic done by 15-25% for the small config, 5-7% for ViT-B).
   % of peak = GFLOP/s / (PEAK x threads), PEAK = 117 GFLOP/s per core, the yardstick of
   issue 7 (32 flop/cycle at 3.6 GHz: two 256-bit FMAs a cycle, as Zen 4 and AVX2 run them;
   override with --peak). The header line also prints an FMA probe:
   the best single-core rate of a register-only FMA loop at the widest vector width compiled
   for; the table's %fma is GFLOP/s against it. On the reference machine (Zen 5, full-width
   AVX-512) the probe gives about 258 GFLOP/s with AVX-512 and 130 with AVX2, so %peak
   against 117 exceeds 100 for the large shapes.

   Memory: every measurement runs in its own process (this program forks and runs itself with
   --one), so the peak RSS (VmHWM of /proc/self/status at the end of the child; ru_maxrss where
   there is no /proc) is that of one model, one mode and one thread count: parameters,
   activations, and for training the gradients, momentum and activation gradients. "lib MB"
   is what the library says it allocates (tsf_model_bytes, plus tsf_model_train_bytes for
   training). Inference runs a model that never called tsf_model_train_init
   (BENCH_INFER_SETUP below is the place for an inference-only switch, should one appear).

   Checks first: every process checks that the logits and the loss of its first pass (which
   is also its warm-up) are finite, and hashes the logits (and, training, every gradient of
   that first step); the driver fails if two thread counts of one configuration give different
   hashes (the header promises bit-identical results for any number of threads).

   Timing: 1 warm-up call (the checked one; --warmup adds more), then REPS repetitions, each a
   loop of calls lasting at least MIN_MS (ViT-B: one call); the MEDIAN time per call is
   reported (the JSON also has the fastest, "ms_min"). Repetitions per configuration:
   tiny 7, small 7, vitb 3 (--quick: 3, 3, 1). Clock: clock_gettime(CLOCK_MONOTONIC).

   SHARDS (--shards N, training steps only): the batch is cut into N shards of B / N clips,
   each run forward and backward by a model of its own (its own activations and gradients, a
   copy of the weights) inside one parallel region over the shards, as tools/demo.c trains:
   the other models copy shard 0's weights, the shards' gradients are summed into shard 0's in
   shard order, and SGD (accum N) updates shard 0. Every call of the library then runs inside
   the shards' region, where it opens no region of its own. The shard count, not the thread
   count, fixes every sum, so the thread counts must still agree to the bit. The demo's step:
       ./build/bench_model --configs demo --shards 4 --variants divided
   Memory ("lib MB") counts the N models.

   SCALING (--scaling): the small configuration at T = 4, 8, 16, 32, 64 frames (and 96, the
   paper's TimeSformer-L length, for divided and axial), the model built for T frames
   (cfg.frames = T), inference and training at 2 threads (--threads), all five schemes unless
   --variants: time and peak RSS against T, as JSON lines, a table (with the growth factor per
   doubling of T) and an SVG plot (--svg PATH, default build/bench_scaling.svg; with several
   --threads, the last). --configs picks another configuration. At N patches a frame, joint
   attention's cost grows with (N T)^2, divided's with N T (N + T), axial's with N T (T + Hp +
   Wp), all of them linear in T while T is small against N; sparse_local_global's attention
   is (N T)^2 (1/4 + 1/8), 3/8 of joint's, so it grows like divided while the linear layers
   dominate and faster than linearly once its attention does (docs/model.md sections 4, 8).

   BUILD AND RUN (from the repository root)

       make bench-model          builds build/bench_model and runs the full bench (some minutes)
       make bench-scaling        the scaling run and build/bench_scaling.svg
   or by hand:
       gcc -O2 -march=native -fopenmp -I. bench/bench_model.c -o build/bench_model -lm
       ./build/bench_model                       # small and vitb, 3 variants, 1 and 2 threads
       ./build/bench_model --quick --variants all  # the five schemes on the small config
       ./build/bench_model --quick               # small only, fewer repetitions
       ./build/bench_model --configs vitb --variants divided --threads 2 --modes train
       ./build/bench_model --scaling --svg build/bench_scaling.svg
       ./build/bench_model --one --config small --variant joint --threads 2 --mode train
   bench/compare_pytorch.py runs the same measurements interleaved with a PyTorch model of
   the same architecture (with /usr/bin/python3 when it has torch) and prints the ratios.
   The machine's other work disturbs the timings, the 2-thread ones most (an OpenMP region
   waits for its slowest thread): the header line and every JSON line carry the load average.
   On a busy 2-core machine, 2 threads can be several times slower than 1 (each barrier waits
   for a descheduled thread); OMP_WAIT_POLICY=passive limits the damage. The header line says
   whether it was set.

   OPTIONS
       --configs LIST     tiny,small,vitb,demo (default small,vitb; --quick: small)
       --variants LIST    divided,joint,space,local_global,axial (full names work too), or
                          all (the five); default divided,joint,space (--scaling: all)
       --threads LIST     thread counts, default 1,2 (--scaling: 2)
       --modes LIST       infer,train,lean (default all three; --scaling: infer,train)
       --quick            fewer repetitions (and only the small config unless --configs)
       --shards N         training steps on N shards of the batch, one model each, run side
                          by side (see SHARDS; N divides the config's batch; default 1)
       --reps N, --warmup N, --min-ms X, --peak GFLOPS
       --scaling [--frames LIST] [--svg PATH]   time and memory against frames (see above)
       --one --config C --variant V --threads N --mode M [--frames T] [--batch B]
                          one measurement in this process: prints one JSON line
       --export DIR --variant V   the tiny config's weights, input, logits and the logits
                          after one SGD step, for compare_pytorch.py's architecture check
       --plot FILE [--svg PATH] [--threads N]   the SVG again from a saved --scaling output
                          (the plot of a --scaling run shows its last thread count)
       --help

   OUTPUT (stdout)
       # bench_model: ...   one header line: version, SIMD path, compiler, OpenMP, peak, load
       {"bench":"model","config":"small","variant":"divided_space_time","mode":"train",
        "threads":2,"B":4,"T":8,"H":112,"W":112,"ms":..,"ms_per_clip":..,"gflops":..,
        "peak_pct":..,"peak_rss_mb":..,"lib_mb":..,...}   one JSON object per measurement
       then an aligned table. JSON lines start with '{' (grep '^{' keeps only them).
*/
#define _POSIX_C_SOURCE 200809L

#define TIMESFORMER_IMPLEMENTATION
#include "timesformer.h"

#include <errno.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_common.h"

/* Inference setup after tsf_model_init. The model keeps every block's activations today;
   when the library gains an inference-only mode (no activations kept for backward), calling
   it here is the one line to change. */
#define BENCH_INFER_SETUP(m) ((void)(m))

/* ---- configurations ------------------------------------------------------------------------ */
typedef struct bench_cfg {
    const char *name;
    int image, patch, frames, dim, depth, heads, classes, batch;
    int reps, quick_reps;
    int keep_acts; /* cfg.keep_acts (the demo keeps its norms' and GELU's outputs) */
} bench_cfg;

static const bench_cfg g_cfgs[] = {
    {"tiny", 32, 8, 4, 32, 2, 2, 5, 2, 7, 3, 0},
    {"small", 112, 16, 8, 192, 4, 3, 10, 4, 7, 3, 0},
    {"vitb", 224, 16, 8, 768, 12, 12, 400, 1, 3, 1, 0},
    {"demo", 32, 8, 8, 64, 2, 8, 8, 16, 7, 3, 1},
};
#define NCFGS ((int)(sizeof g_cfgs / sizeof g_cfgs[0]))

static const bench_cfg *find_cfg(const char *name) {
    int i;
    for (i = 0; i < NCFGS; i++)
        if (!strcmp(g_cfgs[i].name, name)) return &g_cfgs[i];
    return NULL;
}

/* The short names of the attention schemes, by id (the full ones: tsf_attention_name). */
static const char *const g_short[TSF_NUM_ATTENTION] = {"divided", "joint", "space", "local_global",
                                                       "axial"};
static int parse_variant(const char *s) {
    int v;
    for (v = 0; v < TSF_NUM_ATTENTION; v++)
        if (!strcmp(s, g_short[v])) return v;
    return tsf_attention_parse(s);
}
static const char *short_variant(int v) {
    return v >= 0 && v < TSF_NUM_ATTENTION ? g_short[v] : "?";
}
/* Modes: 0 infer, 1 train, 2 lean (a training step with cfg.recompute and cfg.fused_sgd). */
static const char *mode_name(int m) { return m == 2 ? "lean" : m == 1 ? "train" : "infer"; }
static int parse_mode(const char *s) {
    return !strcmp(s, "lean") ? 2 : !strcmp(s, "train") ? 1 : !strcmp(s, "infer") ? 0 : -1;
}

static tsf_config make_config(const bench_cfg *c, int variant, int frames) {
    tsf_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.image_size = c->image, cfg.patch_size = c->patch, cfg.channels = 3;
    cfg.frames = frames > 0 ? frames : c->frames;
    cfg.dim = c->dim, cfg.depth = c->depth, cfg.heads = c->heads, cfg.mlp_ratio = 4.0f;
    cfg.classes = c->classes, cfg.attention = variant, cfg.keep_acts = c->keep_acts;
    return cfg;
}

/* ---- the children's JSON lines -------------------------------------------------------------- */
/* A number after "key": in a JSON line (the driver reads its children's lines); NAN if absent. */
static double json_num(const char *line, const char *key) {
    char pat[64];
    const char *p;
    snprintf(pat, sizeof pat, "\"%s\":", key);
    p = strstr(line, pat);
    if (!p) return (double)NAN;
    p += strlen(pat);
    if (*p == '"') p++; /* hashes are strings of hex digits */
    if (!strncmp(p, "null", 4)) return (double)NAN;
    return strtod(p, NULL);
}
static int json_str(const char *line, const char *key, char *out, size_t size) {
    char pat[64];
    const char *p, *e;
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    p = strstr(line, pat);
    if (!p) return -1;
    p += strlen(pat);
    e = strchr(p, '"');
    if (!e || (size_t)(e - p) >= size) return -1;
    memcpy(out, p, (size_t)(e - p));
    out[e - p] = '\0';
    return 0;
}

/* ---- one measurement (the child process, --one) --------------------------------------------- */
typedef struct one_opts {
    const bench_cfg *cfg;
    int variant, threads, train, frames, batch, reps, warmup;
    int pack;   /* --pack: inference with tsf_model_pack_weights */
    int shards; /* --shards: training steps on this many models side by side (SHARDS above) */
    double min_ms, peak;
} one_opts;

static int die_status(const char *what, tsf_status st) {
    fprintf(stderr, "bench_model: %s: %s\n", what, tsf_status_string(st));
    return 1;
}

#define MAX_SHARDS 64
#define GRAD_CHUNK 4096 /* floats of gradient a thread sums at a time */
#if BENCH_OPENMP        /* a loop shared out over the threads, or a plain loop without OpenMP */
#define BENCH_PARALLEL_FOR _Pragma("omp parallel for schedule(static)")
#else
#define BENCH_PARALLEL_FOR
#endif

/* A training step on n shards of nb clips (SHARDS above): m[0] holds the weights. */
static tsf_status run_shards(tsf_model *m, int n, const float *x, const int *labels, int nb, int T,
                             int H, int W, float *loss) {
    tsf_sgd opt = tsf_sgd_default();
    tsf_status st[MAX_SHARDS];
    float part[MAX_SHARDS];
    size_t clip = (size_t)3 * T * H * W, ng;
    float *g0 = tsf_model_grad_buffer(&m[0], &ng);
    long long c, chunks = (long long)((ng + GRAD_CHUNK - 1) / GRAD_CHUNK);
    int k;
    BENCH_PARALLEL_FOR
    for (k = 0; k < n; k++) { /* each shard: the weights of shard 0, then its clips */
        if (k) memcpy(m[k].param_memory, m[0].param_memory, m[0].param_floats * sizeof(float));
        tsf_model_zero_grad(&m[k]);
        st[k] = tsf_model_loss(&m[k], x + (size_t)k * nb * clip, labels + (size_t)k * nb, nb, T, H,
                               W, 1, &part[k]);
        if (st[k] == TSF_OK) st[k] = tsf_model_backward(&m[k], NULL);
    }
    for (k = 0; k < n; k++)
        if (st[k] != TSF_OK) return st[k];
    BENCH_PARALLEL_FOR
    for (c = 0; c < chunks; c++) { /* shard 0 += the others, in shard order */
        size_t i, i0 = (size_t)c * GRAD_CHUNK, end = ng - i0 < GRAD_CHUNK ? ng : i0 + GRAD_CHUNK;
        int j;
        for (j = 1; j < n; j++) {
            const float *g = tsf_model_grad_buffer(&m[j], NULL);
            for (i = i0; i < end; i++) g0[i] += g[i];
        }
    }
    for (*loss = 0, k = 0; k < n; k++) *loss += part[k] / (float)n;
    return tsf_sgd_step(&m[0], &opt, 1e-3f, n, NULL);
}

/* One call of the measured operation, on the n models m (n > 1: run_shards). */
static tsf_status run_once(tsf_model *m, int n, const one_opts *o, const float *x,
                           const int *labels, int B, int T, int H, int W, float *loss) {
    tsf_status st;
    if (n > 1) return run_shards(m, n, x, labels, B / n, T, H, W, loss);
    if (!o->train) return tsf_model_forward(m, x, B, T, H, W, NULL);
    if (o->train == 2) { /* lean: the fused step */
        tsf_sgd opt = tsf_sgd_default();
        st = tsf_model_loss(m, x, labels, B, T, H, W, 1, loss);
        return st == TSF_OK ? tsf_model_backward_sgd(m, &opt, 1e-3f, NULL) : st;
    }
    {
        tsf_sgd opt = tsf_sgd_default();
        tsf_model_zero_grad(m);
        st = tsf_model_loss(m, x, labels, B, T, H, W, 1, loss);
        if (st == TSF_OK) st = tsf_model_backward(m, NULL);
        if (st == TSF_OK) st = tsf_sgd_step(m, &opt, 1e-3f, 1, NULL);
        return st;
    }
}

static int run_one(const one_opts *o) {
    const bench_cfg *c = o->cfg;
    tsf_config cfg = make_config(c, o->variant, o->frames);
    int B = o->batch > 0 ? o->batch : c->batch, T = cfg.frames, H = c->image, W = c->image;
    int K = c->classes, r, i, k, reps = o->reps, n = o->shards > 1 ? o->shards : 1, nb;
    size_t nx = (size_t)B * 3 * T * H * W, param_bytes = 0, act_bytes = 0, train_bytes = 0;
    float *x = (float *)malloc(nx * sizeof(float)), loss = 0.0f;
    float *logits = (float *)malloc((size_t)B * K * sizeof(float));
    int *labels = (int *)malloc((size_t)B * sizeof(int));
    double load = load_average(), t0, t_first, flops, ms, ms_min, *times;
    unsigned long long h_logits, h_grads = 0;
    long iters = 1;
    tsf_model *m; /* n models of nb clips each (--shards; else one of B); m[0] holds the weights */
    tsf_status st;
    tsf_rng rng;

    if (n > MAX_SHARDS || B % n || (n > 1 && o->train != 1)) {
        fprintf(stderr, "bench_model: --shards %d: %s\n", n,
                n > MAX_SHARDS ? "too many"
                : B % n        ? "does not divide the batch"
                               : "applies to training steps (--mode train) only");
        return 2;
    }
    m = (tsf_model *)calloc((size_t)n, sizeof *m), nb = B / n;
    if (!x || !labels || !logits || !m) return fprintf(stderr, "bench_model: out of memory\n"), 1;
    set_threads(o->threads);
    if (o->train == 2) cfg.recompute = cfg.fused_sgd = 1;
    st = tsf_config_resolve(&cfg);
    if (st != TSF_OK) return die_status("config", st);
    tsf_model_bytes(&cfg, nb, T, H, W, &param_bytes, &act_bytes);
    if (o->train) tsf_model_train_bytes(&cfg, nb, T, H, W, &train_bytes);
    param_bytes *= (size_t)n, act_bytes *= (size_t)n, train_bytes *= (size_t)n;
    for (k = 0; k < n; k++) {
        st = tsf_model_init(&m[k], &cfg, nb, 42);
        if (st != TSF_OK) return die_status("tsf_model_init", st);
        if (o->train) {
            st = tsf_model_train_init(&m[k]);
            if (st != TSF_OK) return die_status("tsf_model_train_init", st);
        } else {
            BENCH_INFER_SETUP(&m[k]);
            if (o->pack && (st = tsf_model_pack_weights(&m[k])) != TSF_OK)
                return die_status("tsf_model_pack_weights", st);
        }
    }
    tsf_rng_seed(&rng, 7);
    for (i = 0; i < (int)nx; i++) x[i] = tsf_rng_normal(&rng);
    for (i = 0; i < B; i++) labels[i] = i % K;

    /* the first pass: the check and the first warm-up */
    t0 = now_s();
    st = run_once(m, n, o, x, labels, B, T, H, W, &loss);
    t_first = now_s() - t0;
    if (st != TSF_OK) return die_status(o->train ? "training step" : "forward", st);
    for (k = 0; k < n; k++) /* the shards' logits, in order */
        memcpy(logits + (size_t)k * nb * K, m[k].acts.logits, (size_t)nb * K * sizeof(float));
    for (k = 0; k < B * K; k++)
        if (!isfinite(logits[k])) {
            fprintf(stderr, "bench_model: logit %d is %g (not finite)\n", k, (double)logits[k]);
            return 1;
        }
    if (o->train && !isfinite(loss)) return fprintf(stderr, "bench_model: loss not finite\n"), 1;
    h_logits = hash_floats(logits, (size_t)B * K);
    /* train: the batch's gradients (with shards, summed into shard 0's) */
    if (o->train == 1) h_grads = hash_floats(m[0].grad_memory, m[0].param_floats);
    if (o->train == 2)
        h_grads = hash_floats(m[0].param_memory, m[0].param_floats); /* after a step */

    for (r = 1; r < o->warmup; r++) {
        t0 = now_s();
        st = run_once(m, n, o, x, labels, B, T, H, W, &loss);
        t_first = now_s() - t0;
        if (st != TSF_OK) return die_status("warm-up", st);
    }
    if (t_first * 1e3 < o->min_ms) iters = (long)ceil(o->min_ms / (t_first * 1e3 + 1e-9));
    if (iters > 1000000) iters = 1000000;
    times = (double *)malloc((size_t)reps * sizeof(double));
    if (!times) return fprintf(stderr, "bench_model: out of memory\n"), 1;
    for (r = 0; r < reps; r++) {
        long it;
        t0 = now_s();
        for (it = 0; it < iters; it++) {
            st = run_once(m, n, o, x, labels, B, T, H, W, &loss);
            if (st != TSF_OK) return die_status("timed call", st);
        }
        times[r] = (now_s() - t0) / (double)iters;
    }
    ms_min = minimum(times, reps) * 1e3;
    ms = median(times, reps) * 1e3;
    flops = 2.0 * tsf_config_flops(&m[0].cfg, T, H, W) * B * (o->train ? 3.0 : 1.0);

    printf("{\"bench\":\"model\",\"impl\":\"tsf\",\"config\":\"%s\",\"variant\":\"%s\","
           "\"mode\":\"%s\",\"threads\":%d,\"B\":%d,\"T\":%d,\"H\":%d,\"W\":%d,\"D\":%d,"
           "\"depth\":%d,\"heads\":%d,\"classes\":%d,\"params\":%zu,\"simd\":\"%s\","
           "\"ms\":%.4f,\"ms_min\":%.4f,\"ms_per_clip\":%.4f,\"gflop\":%.4f,\"gflops\":%.2f,"
           "\"peak_pct\":%.1f,\"peak_rss_mb\":%.1f,\"lib_mb\":%.1f,\"param_mb\":%.1f,"
           "\"act_mb\":%.1f,\"train_mb\":%.1f,\"reps\":%d,\"iters\":%ld,\"warmup\":%d,"
           "\"load1\":%.2f,\"hash_logits\":\"%016llx\",\"hash_grads\":\"%016llx\","
           "\"packed_mb\":%.1f,\"shards\":%d}\n",
           c->name, tsf_attention_name(o->variant), mode_name(o->train), o->threads, B, T, H, W,
           m[0].cfg.dim, m[0].cfg.depth, m[0].cfg.heads, K, m[0].num_params, tsf_simd_name(), ms,
           ms_min, ms / B, flops * 1e-9, flops / (ms * 1e-3) * 1e-9,
           100.0 * flops / (ms * 1e-3) * 1e-9 / (o->peak * o->threads), peak_rss_mb(),
           (double)(param_bytes + act_bytes + train_bytes +
                    (size_t)n * m[0].packed_floats * sizeof(float)) /
               1048576.0,
           (double)param_bytes / 1048576.0, (double)act_bytes / 1048576.0,
           (double)train_bytes / 1048576.0, reps, iters, o->warmup > 1 ? o->warmup : 1, load,
           h_logits, h_grads, (double)m[0].packed_floats * sizeof(float) / 1048576.0, n);
    fflush(stdout);
    free(times);
    free(x);
    free(labels);
    free(logits);
    for (k = 0; k < n; k++) tsf_model_free(&m[k]);
    free(m);
    return 0;
}

/* ---- --export: the tiny config's weights, input and logits for compare_pytorch.py ----------- */
static int write_file(const char *dir, const char *name, const void *p, size_t n) {
    char path[1024];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "bench_model: cannot write %s\n", path);
        return 1;
    }
    return 0;
}

static int run_export(const char *dir, const bench_cfg *c, int variant) {
    tsf_config cfg = make_config(c, variant, 0);
    int B = c->batch, T = c->frames, H = c->image, W = c->image, K = c->classes, i;
    size_t nx = (size_t)B * 3 * T * H * W;
    float *x = (float *)malloc(nx * sizeof(float)), *logits0, loss0 = 0.0f, loss1 = 0.0f;
    int *labels = (int *)malloc((size_t)B * sizeof(int));
    tsf_sgd opt = tsf_sgd_default();
    char path[1024], meta[512];
    tsf_model m;
    tsf_error err;
    tsf_rng rng;
    tsf_status st;

    if (!x || !labels) return 1;
    mkdir(dir, 0777); /* may exist */
    st = tsf_model_init(&m, &cfg, B, 42);
    if (st == TSF_OK) st = tsf_model_train_init(&m);
    if (st != TSF_OK) return die_status("export", st);
    logits0 = (float *)malloc((size_t)B * K * sizeof(float));
    if (!logits0) return 1;
    tsf_rng_seed(&rng, 11);
    /* The initialisation zeroes temporal_fc and the time embedding, which would leave the
       temporal path and the time embedding untested: give them small random values. */
    if (m.params.t_fc_w) {
        size_t n = (size_t)cfg.depth * cfg.dim * cfg.dim;
        for (i = 0; i < (int)n; i++) m.params.t_fc_w[i] = 0.05f * tsf_rng_normal(&rng);
        for (i = 0; i < cfg.depth * cfg.dim; i++) m.params.t_fc_b[i] = 0.05f * tsf_rng_normal(&rng);
    }
    if (m.params.time_embed)
        for (i = 0; i < cfg.frames * cfg.dim; i++)
            m.params.time_embed[i] = 0.05f * tsf_rng_normal(&rng);
    for (i = 0; i < (int)nx; i++) x[i] = tsf_rng_normal(&rng);
    for (i = 0; i < B; i++) labels[i] = (i * 3 + 1) % K;
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (tsf_model_save(&m, path, &err) != TSF_OK) return fprintf(stderr, "%s\n", err.msg), 1;
    /* logits0 and the loss; one SGD step (lr 0.1); logits1 and the loss after it */
    tsf_model_zero_grad(&m);
    st = tsf_model_loss(&m, x, labels, B, T, H, W, 1, &loss0);
    if (st == TSF_OK) memcpy(logits0, m.acts.logits, (size_t)B * K * sizeof(float));
    if (st == TSF_OK) st = tsf_model_backward(&m, NULL);
    if (st == TSF_OK) st = tsf_sgd_step(&m, &opt, 0.1f, 1, NULL);
    if (st == TSF_OK) st = tsf_model_loss(&m, x, labels, B, T, H, W, 0, &loss1);
    if (st != TSF_OK) return die_status("export step", st);
    if (write_file(dir, "input.bin", x, nx * sizeof(float)) ||
        write_file(dir, "labels.bin", labels, (size_t)B * sizeof(int)) ||
        write_file(dir, "logits0.bin", logits0, (size_t)B * K * sizeof(float)) ||
        write_file(dir, "logits1.bin", m.acts.logits, (size_t)B * K * sizeof(float)))
        return 1;
    snprintf(meta, sizeof meta,
             "{\"variant\":\"%s\",\"image\":%d,\"patch\":%d,\"frames\":%d,\"dim\":%d,"
             "\"depth\":%d,\"heads\":%d,\"classes\":%d,\"batch\":%d,\"lr\":0.1,"
             "\"momentum\":%g,\"weight_decay\":%g,\"nesterov\":%d,\"loss0\":%.9g,"
             "\"loss1\":%.9g}\n",
             tsf_attention_name(variant), c->image, c->patch, c->frames, c->dim, c->depth, c->heads,
             K, B, (double)opt.momentum, (double)opt.weight_decay, opt.nesterov, (double)loss0,
             (double)loss1);
    if (write_file(dir, "meta.json", meta, strlen(meta))) return 1;
    printf("%s", meta);
    free(x), free(labels), free(logits0);
    tsf_model_free(&m);
    return 0;
}

/* ---- the driver: one child process per measurement --------------------------------------------
 */
typedef struct meas {
    const bench_cfg *cfg;
    int variant, train, threads, frames;
    double ms, ms_min, ms_clip, gflops, peak_pct, rss, lib_mb, load;
    int B, T;
    char hash_logits[32], hash_grads[32];
} meas;

static const char *g_self = "bench_model";

/* Run `self --one ...` and read its JSON line back; 0 on success. */
static int run_child(meas *q, const one_opts *base) {
    char a_cfg[32], a_var[48], a_thr[16], a_frames[16], a_reps[16], a_warm[16], a_minms[32],
        a_peak[32], a_shards[16], line[4096];
    char *argv[32];
    int fd[2], status, n = 0;
    size_t len = 0;
    pid_t pid;
    FILE *f;

    snprintf(a_cfg, sizeof a_cfg, "%s", q->cfg->name);
    snprintf(a_var, sizeof a_var, "%s", tsf_attention_name(q->variant));
    snprintf(a_thr, sizeof a_thr, "%d", q->threads);
    snprintf(a_frames, sizeof a_frames, "%d", q->frames);
    snprintf(a_reps, sizeof a_reps, "%d", base->reps);
    snprintf(a_warm, sizeof a_warm, "%d", base->warmup);
    snprintf(a_minms, sizeof a_minms, "%g", base->min_ms);
    snprintf(a_peak, sizeof a_peak, "%g", base->peak);
    argv[n++] = (char *)g_self;
    argv[n++] = (char *)"--one";
    argv[n++] = (char *)"--config", argv[n++] = a_cfg;
    argv[n++] = (char *)"--variant", argv[n++] = a_var;
    argv[n++] = (char *)"--threads", argv[n++] = a_thr;
    argv[n++] = (char *)"--mode", argv[n++] = (char *)mode_name(q->train);
    argv[n++] = (char *)"--frames", argv[n++] = a_frames;
    argv[n++] = (char *)"--reps", argv[n++] = a_reps;
    argv[n++] = (char *)"--warmup", argv[n++] = a_warm;
    argv[n++] = (char *)"--min-ms", argv[n++] = a_minms;
    argv[n++] = (char *)"--peak", argv[n++] = a_peak;
    if (base->pack) argv[n++] = (char *)"--pack";
    snprintf(a_shards, sizeof a_shards, "%d", base->shards);
    if (base->shards > 1) argv[n++] = (char *)"--shards", argv[n++] = a_shards;
    argv[n] = NULL;

    fflush(stdout);
    if (pipe(fd) != 0) return perror("bench_model: pipe"), 1;
    pid = fork();
    if (pid < 0) return perror("bench_model: fork"), 1;
    if (pid == 0) {
        dup2(fd[1], 1);
        close(fd[0]), close(fd[1]);
        execv("/proc/self/exe", argv);
        execvp(g_self, argv);
        perror("bench_model: exec");
        _exit(127);
    }
    close(fd[1]);
    f = fdopen(fd[0], "r");
    line[0] = '\0';
    if (f) {
        char buf[4096];
        while (fgets(buf, sizeof buf, f))
            if (buf[0] == '{' && len == 0) {
                snprintf(line, sizeof line, "%s", buf);
                len = strlen(line);
            }
        fclose(f);
    }
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) continue;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || len == 0) {
        fprintf(stderr, "bench_model: the measurement %s %s %s %d threads T=%d failed\n",
                q->cfg->name, short_variant(q->variant), mode_name(q->train), q->threads,
                q->frames);
        return 1;
    }
    q->ms = json_num(line, "ms"), q->ms_min = json_num(line, "ms_min");
    q->ms_clip = json_num(line, "ms_per_clip"), q->gflops = json_num(line, "gflops");
    q->peak_pct = json_num(line, "peak_pct"), q->rss = json_num(line, "peak_rss_mb");
    q->lib_mb = json_num(line, "lib_mb"), q->load = json_num(line, "load1");
    q->B = (int)json_num(line, "B"), q->T = (int)json_num(line, "T");
    if (json_str(line, "hash_logits", q->hash_logits, sizeof q->hash_logits) ||
        json_str(line, "hash_grads", q->hash_grads, sizeof q->hash_grads))
        return fprintf(stderr, "bench_model: bad line from a child: %s", line), 1;
    fputs(line, stdout); /* the child's JSON line is the measurement */
    fflush(stdout);
    return 0;
}

/* ---- list parsing -------------------------------------------------------------------------- */
/* Split a comma list into words (in place in buf). */
static int split_words(char *buf, char **words, int max) {
    int n = 0;
    char *p = buf;
    while (*p && n < max) {
        words[n++] = p;
        p = strchr(p, ',');
        if (!p) break;
        *p++ = '\0';
    }
    return n;
}

/* ---- SVG of the scaling run ----------------------------------------------------------------- */
static const char *variant_colour(int v) { /* the demo's colours */
    static const char *const c[TSF_NUM_ATTENTION] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd",
                                                     "#ff7f0e"};
    return v >= 0 && v < TSF_NUM_ATTENTION ? c[v] : "#000000";
}

/* Two log-log panels, time and peak RSS against T; solid: training step, dashed: inference. */
static int write_svg(const char *path, const bench_cfg *c, const meas *ms, int n, int threads) {
    const double PW = 420, PH = 300, ML = 70, MT = 50, GAP = 90, MB = 60;
    double tmin = 1e300, tmax = 0, ymin[2] = {1e300, 1e300}, ymax[2] = {0, 0};
    int i, panel, v, mode;
    FILE *f = fopen(path, "w");
    if (!f) return fprintf(stderr, "bench_model: cannot write %s\n", path), 1;
    for (i = 0; i < n; i++) {
        double y[2];
        y[0] = ms[i].ms, y[1] = ms[i].rss;
        tmin = ms[i].T < tmin ? ms[i].T : tmin, tmax = ms[i].T > tmax ? ms[i].T : tmax;
        for (panel = 0; panel < 2; panel++) {
            if (y[panel] > 0 && y[panel] < ymin[panel]) ymin[panel] = y[panel];
            if (y[panel] > ymax[panel]) ymax[panel] = y[panel];
        }
    }
    if (n == 0 || tmax <= tmin) tmin = 1, tmax = 2;
    for (panel = 0; panel < 2; panel++) { /* whole decades */
        if (ymax[panel] <= 0) ymin[panel] = 1, ymax[panel] = 10;
        ymin[panel] = pow(10, floor(log10(ymin[panel])));
        ymax[panel] = pow(10, ceil(log10(ymax[panel])));
        if (ymax[panel] <= ymin[panel]) ymax[panel] = ymin[panel] * 10;
    }
    fprintf(f,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
            "font-family=\"sans-serif\" font-size=\"12\">\n"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
            "<text x=\"%.0f\" y=\"22\" font-size=\"15\">TimeSformer, %s config (%d&#xB2;, "
            "patch %d, D %d, depth %d, batch %d), %d thread%s: cost against frames T</text>\n",
            ML + 2 * PW + GAP + 20, MT + PH + MB + 60, ML, c->name, c->image, c->patch, c->dim,
            c->depth, c->batch, threads, threads == 1 ? "" : "s");
    for (panel = 0; panel < 2; panel++) {
        double x0 = ML + panel * (PW + GAP), y0 = MT, ly0 = log10(ymin[panel]),
               ly1 = log10(ymax[panel]), lt0 = log2(tmin), lt1 = log2(tmax), d;
        int t;
        fprintf(f,
                "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" "
                "stroke=\"#444\"/>\n",
                x0, y0, PW, PH);
        for (d = ly0; d <= ly1 + 1e-9; d += 1.0) { /* decades */
            double y = y0 + PH - (d - ly0) / (ly1 - ly0) * PH;
            fprintf(f,
                    "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                    "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n",
                    x0, y, x0 + PW, y, x0 - 6, y + 4, pow(10, d));
        }
        for (t = 1; t <= 1024; t *= 2) { /* powers of two, and 96 when present */
            double lx;
            if (t < tmin || t > tmax) continue;
            lx = x0 + (log2(t) - lt0) / (lt1 - lt0) * PW;
            fprintf(f,
                    "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                    "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%d</text>\n",
                    lx, y0, lx, y0 + PH, lx, y0 + PH + 16, t);
        }
        if (tmax >= 96 && tmin <= 96) {
            double lx = x0 + (log2(96) - lt0) / (lt1 - lt0) * PW;
            fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">96</text>\n", lx,
                    y0 + PH + 16);
        }
        fprintf(f,
                "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">frames T (log scale)</text>\n"
                "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" transform=\"rotate(-90 "
                "%.1f %.1f)\">%s (log scale)</text>\n",
                x0 + PW / 2, y0 + PH + 36, x0 - 50, y0 + PH / 2, x0 - 50, y0 + PH / 2,
                panel == 0 ? "milliseconds per call (a batch)" : "peak RSS, MB");
        for (v = 0; v < TSF_NUM_ATTENTION; v++)
            for (mode = 0; mode < 2; mode++) {
                int first = 1;
                for (i = 0; i < n; i++) {
                    double y = panel == 0 ? ms[i].ms : ms[i].rss, px, py;
                    if (ms[i].variant != v || ms[i].train != mode || !(y > 0)) continue;
                    px = x0 + (log2(ms[i].T) - lt0) / (lt1 - lt0) * PW;
                    py = y0 + PH - (log10(y) - ly0) / (ly1 - ly0) * PH;
                    if (first)
                        fprintf(f,
                                "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s "
                                "points=\"",
                                variant_colour(v), mode ? "" : " stroke-dasharray=\"6 4\"");
                    fprintf(f, "%s%.1f,%.1f", first ? "" : " ", px, py);
                    first = 0;
                }
                if (!first) fprintf(f, "\"/>\n");
                for (i = 0; i < n; i++) {
                    double y = panel == 0 ? ms[i].ms : ms[i].rss, px, py;
                    if (ms[i].variant != v || ms[i].train != mode || !(y > 0)) continue;
                    px = x0 + (log2(ms[i].T) - lt0) / (lt1 - lt0) * PW;
                    py = y0 + PH - (log10(y) - ly0) / (ly1 - ly0) * PH;
                    fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", px, py,
                            variant_colour(v));
                }
            }
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-weight=\"bold\">%s</text>\n", x0, y0 - 8,
                panel == 0 ? "time" : "memory");
        { /* guides: slopes 1 (linear in T) and 2 (quadratic) from the lowest first point */
            double g0 = 1e300, lg;
            int slope;
            for (i = 0; i < n; i++) {
                double y = panel == 0 ? ms[i].ms : ms[i].rss;
                if (ms[i].T == tmin && y > 0 && y < g0) g0 = y;
            }
            for (slope = 1; slope <= 2 && g0 < 1e300; slope++) {
                double px1 = x0 + PW, ly = log10(g0) + slope * (lt1 - lt0) * log10(2.0), py1;
                py1 = y0 + PH - (ly - ly0) / (ly1 - ly0) * PH;
                if (py1 < y0) { /* clip at the top of the panel */
                    px1 = x0 + PW * (log10(ymax[panel]) - log10(g0)) / (ly - log10(g0));
                    py1 = y0;
                }
                lg = y0 + PH - (log10(g0) - ly0) / (ly1 - ly0) * PH;
                fprintf(f,
                        "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#999\" "
                        "stroke-dasharray=\"2 3\"/><text x=\"%.1f\" y=\"%.1f\" fill=\"#777\" "
                        "text-anchor=\"end\">%s</text>\n",
                        x0, lg, px1, py1, px1 - 4, py1 + (slope == 1 ? -6 : 14),
                        slope == 1 ? "&#x221D; T" : "&#x221D; T&#xB2;");
            }
        }
    }
    { /* legend: the schemes measured, then what the dashes mean on a line of its own */
        double lx = ML, ly = MT + PH + 58;
        for (v = 0; v < TSF_NUM_ATTENTION; v++) {
            for (i = 0; i < n && ms[i].variant != v; i++) {
            }
            if (i == n) continue;
            fprintf(f,
                    "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                    "stroke-width=\"3\"/><text x=\"%.1f\" y=\"%.1f\">%s</text>\n",
                    lx, ly, lx + 24, ly, variant_colour(v), lx + 30, ly + 4, tsf_attention_name(v));
            lx += 180;
        }
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">solid: training step, dashed: inference</text>\n",
                ML, ly + 24);
    }
    fprintf(f, "</svg>\n");
    if (fclose(f) != 0) return fprintf(stderr, "bench_model: cannot write %s\n", path), 1;
    return 0;
}

/* --plot: the SVG again from the JSON lines of a --scaling run (a saved output). */
static int plot_file(const char *path, const char *svg, int only_threads) {
    meas ms[256];
    char line[4096], name[64], mode[16], cfgname[16];
    const bench_cfg *c = NULL;
    int n = 0, threads = 0;
    FILE *f = fopen(path, "r");
    if (!f) return fprintf(stderr, "bench_model: cannot read %s\n", path), 1;
    while (fgets(line, sizeof line, f) && n < 256) {
        meas *q = &ms[n];
        if (line[0] != '{' || json_str(line, "variant", name, sizeof name) ||
            json_str(line, "mode", mode, sizeof mode) ||
            json_str(line, "config", cfgname, sizeof cfgname))
            continue;
        memset(q, 0, sizeof *q);
        q->variant = tsf_attention_parse(name), q->train = parse_mode(mode) > 0;
        q->T = q->frames = (int)json_num(line, "T"), q->ms = json_num(line, "ms");
        q->rss = json_num(line, "peak_rss_mb"), threads = (int)json_num(line, "threads");
        c = q->cfg = find_cfg(cfgname);
        if (q->variant >= 0 && c && q->T > 0 && (!only_threads || threads == only_threads)) n++;
    }
    fclose(f);
    if (!n) return fprintf(stderr, "bench_model: no measurements in %s\n", path), 1;
    if (write_svg(svg, c, ms, n, threads)) return 1;
    printf("wrote %s (%d measurements)\n", svg, n);
    return 0;
}

/* ---- main ----------------------------------------------------------------------------------- */
static void usage(FILE *f) {
    fprintf(f, "usage: bench_model [--quick] [--configs tiny,small,vitb,demo] [--variants divided,"
               "joint,space,\n"
               "                   local_global,axial | all]\n"
               "                   [--threads 1,2] [--modes infer,train] [--reps N] [--warmup N]\n"
               "                   [--min-ms X] [--peak GFLOPS] [--shards N]\n"
               "       bench_model --scaling [--frames 4,8,16,32,64] [--threads 2] [--svg PATH]\n"
               "       bench_model --one --config C --variant V --threads N --mode infer|train\n"
               "                   [--frames T] [--batch B] [--reps N] [--warmup N] [--shards N]\n"
               "       bench_model --export DIR --variant V\n"
               "       bench_model --plot SCALING_OUTPUT [--svg PATH]\n");
}

/* The header line; returns the FMA probe's GFLOP/s (0 without one). */
static double print_header(const char *what, double peak) {
    const char *isa = "none", *wait = getenv("OMP_WAIT_POLICY");
    double probe = fma_probe_gflops(&isa), load = load_average();
    print_header_start("bench_model", what);
    printf(", %s, openmp %s, OMP_WAIT_POLICY %s, peak %.1f GFLOP/s/core (fma probe %s: %.1f),"
           " load average %.2f\n",
           BENCH_OPTIMIZED, BENCH_OPENMP ? "on" : "off", wait ? wait : "unset", peak, isa, probe,
           load);
    warn_load("bench_model", load);
    fflush(stdout);
    return probe;
}

int main(int argc, char **argv) {
    int threads[16] = {1, 2}, nthreads = 2, frames[16] = {4, 8, 16, 32, 64}, nframes = 5;
    int variants[TSF_NUM_ATTENTION] = {TSF_ATTN_DIVIDED, TSF_ATTN_JOINT, TSF_ATTN_SPACE};
    int nvariants = 3, variants_given = 0;
    int modes[3] = {0, 1, 2}, nmodes = 3, modes_given = 0, quick = 0, one = 0, scaling = 0,
        reps = 0, warmup = 1, pack = 0, shards = 1;
    int threads_given = 0, frames_given = 0, a, i, j, v, t, md, nm = 0, fail = 0;
    const bench_cfg *cfgs[NCFGS], *one_cfg = NULL;
    int ncfgs = 0, one_variant = -1, one_threads = 1, one_train = 0, one_frames = 0, one_batch = 0;
    double min_ms = 100.0, peak = PEAK_PER_CORE_GFLOPS, probe;
    const char *svg = "build/bench_scaling.svg", *export_dir = NULL, *plot_from = NULL;
    meas *res;

    if (argc > 0 && argv[0]) g_self = argv[0];
    for (a = 1; a < argc; a++) {
        const char *o = argv[a], *val = a + 1 < argc ? argv[a + 1] : NULL;
        if (!strcmp(o, "--quick")) {
            quick = 1;
        } else if (!strcmp(o, "--one")) {
            one = 1;
        } else if (!strcmp(o, "--pack")) {
            pack = 1;
        } else if (!strcmp(o, "--scaling")) {
            scaling = 1;
        } else if (!strcmp(o, "--configs") && val) {
            char buf[256], *w[8];
            int n, k;
            snprintf(buf, sizeof buf, "%s", val), a++;
            n = split_words(buf, w, 8);
            for (k = 0, ncfgs = 0; k < n; k++) {
                if (!find_cfg(w[k]) || ncfgs >= NCFGS) {
                    fprintf(stderr, "bench_model: unknown config '%s' (tiny, small, vitb, demo)\n",
                            w[k]);
                    return 2;
                }
                cfgs[ncfgs++] = find_cfg(w[k]);
            }
        } else if ((!strcmp(o, "--config")) && val) {
            one_cfg = find_cfg(val), a++;
            if (!one_cfg) return fprintf(stderr, "bench_model: unknown config '%s'\n", val), 2;
        } else if (!strcmp(o, "--variants") && val) {
            char buf[256], *w[8];
            int n, k;
            snprintf(buf, sizeof buf, "%s", val), a++, variants_given = 1;
            n = split_words(buf, w, 8);
            for (k = 0, nvariants = 0; k < n; k++) {
                int pv = parse_variant(w[k]), d;
                if (!strcmp(w[k], "all")) {
                    for (nvariants = 0; nvariants < TSF_NUM_ATTENTION; nvariants++)
                        variants[nvariants] = nvariants;
                    continue;
                }
                if (pv < 0) {
                    fprintf(stderr,
                            "bench_model: unknown variant '%s' (divided, joint, space, "
                            "local_global, axial, all)\n",
                            w[k]);
                    return 2;
                }
                for (d = 0; d < nvariants && variants[d] != pv; d++) {
                }
                if (d < nvariants) continue; /* listed twice: once */
                if (nvariants >= TSF_NUM_ATTENTION) break;
                variants[nvariants++] = pv;
            }
        } else if (!strcmp(o, "--variant") && val) {
            one_variant = parse_variant(val), a++;
            if (one_variant < 0) return fprintf(stderr, "bench_model: bad variant '%s'\n", val), 2;
        } else if (!strcmp(o, "--threads") && val) {
            nthreads = parse_ints(val, threads, 16, 1, 1024), a++, threads_given = 1;
            if (nthreads <= 0) return fprintf(stderr, "bench_model: bad --threads '%s'\n", val), 2;
            one_threads = threads[0];
        } else if (!strcmp(o, "--frames") && val) {
            nframes = parse_ints(val, frames, 16, 1, 4096), a++, frames_given = 1;
            if (nframes <= 0) return fprintf(stderr, "bench_model: bad --frames '%s'\n", val), 2;
            one_frames = frames[0];
        } else if (!strcmp(o, "--batch") && val) {
            one_batch = atoi(val), a++;
            if (one_batch < 1) return fprintf(stderr, "bench_model: bad --batch '%s'\n", val), 2;
        } else if ((!strcmp(o, "--mode") || !strcmp(o, "--modes")) && val) {
            char buf[64], *w[4];
            int n, k;
            snprintf(buf, sizeof buf, "%s", val), a++, modes_given = 1;
            n = split_words(buf, w, 4);
            for (k = 0, nmodes = 0; k < n && nmodes < 3; k++) {
                if (parse_mode(w[k]) < 0) {
                    fprintf(stderr, "bench_model: bad mode '%s' (infer, train, lean)\n", w[k]);
                    return 2;
                }
                modes[nmodes++] = parse_mode(w[k]);
            }
            one_train = modes[0];
        } else if (!strcmp(o, "--reps") && val) {
            reps = atoi(val), a++;
            if (reps < 1 || reps > 1000) return fprintf(stderr, "bench_model: bad --reps\n"), 2;
        } else if (!strcmp(o, "--warmup") && val) {
            warmup = atoi(val), a++;
            if (warmup < 1 || warmup > 1000)
                return fprintf(stderr, "bench_model: bad --warmup (>= 1)\n"), 2;
        } else if (!strcmp(o, "--min-ms") && val) {
            min_ms = atof(val), a++;
            if (!(min_ms >= 0.0)) return fprintf(stderr, "bench_model: bad --min-ms\n"), 2;
        } else if (!strcmp(o, "--peak") && val) {
            peak = atof(val), a++;
            if (!(peak > 0.0)) return fprintf(stderr, "bench_model: bad --peak\n"), 2;
        } else if (!strcmp(o, "--shards") && val) {
            shards = atoi(val), a++;
            if (shards < 1 || shards > MAX_SHARDS)
                return fprintf(stderr, "bench_model: bad --shards '%s' (1 to %d)\n", val,
                               MAX_SHARDS),
                       2;
        } else if (!strcmp(o, "--svg") && val) {
            svg = val, a++;
        } else if (!strcmp(o, "--export") && val) {
            export_dir = val, a++;
        } else if (!strcmp(o, "--plot") && val) {
            plot_from = val, a++;
        } else if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "bench_model: unknown or incomplete option '%s'\n", o);
            usage(stderr);
            return 2;
        }
    }
#if !BENCH_OPENMP
    for (t = 0, j = 0; t < nthreads; t++)
        if (threads[t] == 1) threads[j++] = 1;
    if (j < nthreads) fprintf(stderr, "bench_model: built without OpenMP: only 1 thread can run\n");
    nthreads = j > 1 ? 1 : j;
    if (nthreads == 0) return 2;
    one_threads = 1;
#endif

    if (plot_from) return plot_file(plot_from, svg, threads_given ? threads[0] : 0);
    if (export_dir) {
        if (one_variant < 0) return fprintf(stderr, "bench_model: --export needs --variant\n"), 2;
        return run_export(export_dir, one_cfg ? one_cfg : find_cfg("tiny"), one_variant);
    }
    if (one) {
        one_opts o;
        if (!one_cfg || one_variant < 0)
            return fprintf(stderr, "bench_model: --one needs --config and --variant\n"), 2;
        o.cfg = one_cfg, o.variant = one_variant, o.threads = one_threads, o.train = one_train;
        o.frames = one_frames, o.batch = one_batch, o.warmup = warmup, o.min_ms = min_ms;
        o.peak = peak, o.reps = reps ? reps : quick ? one_cfg->quick_reps : one_cfg->reps;
        o.pack = pack, o.shards = shards;
        return run_one(&o);
    }
    if (shards > 1 && scaling)
        return fprintf(stderr, "bench_model: --shards does not apply to --scaling\n"), 2;

    if (scaling) {
        const bench_cfg *small = ncfgs ? cfgs[0] : find_cfg("small"); /* --configs: another */
        one_opts base;
        int n = 0, nmax,
            tokens_per_frame = (small->image / small->patch) * (small->image / small->patch);
        if (!threads_given) threads[0] = 2, nthreads = 1;
        if (!modes_given) nmodes = 2; /* infer, train */
        if (!variants_given)          /* all five */
            for (nvariants = 0; nvariants < TSF_NUM_ATTENTION; nvariants++)
                variants[nvariants] = nvariants;
#if !BENCH_OPENMP
        threads[0] = 1, nthreads = 1;
#endif
        if (!frames_given) frames[nframes++] = 96; /* divided and axial only, below */
        nmax = nvariants * nframes * nmodes * nthreads;
        res = (meas *)calloc((size_t)nmax, sizeof(meas));
        if (!res) return 1;
        base.reps = reps ? reps : quick ? 1 : 3, base.warmup = warmup, base.min_ms = min_ms;
        base.peak = peak, base.pack = pack, base.shards = 1;
        print_header(" --scaling", peak);
        for (t = 0; t < nthreads; t++)
            for (v = 0; v < nvariants; v++)
                for (i = 0; i < nframes; i++) {
                    if (!frames_given && frames[i] == 96 && variants[v] != TSF_ATTN_DIVIDED &&
                        variants[v] != TSF_ATTN_AXIAL)
                        continue;
                    for (md = 0; md < nmodes; md++) {
                        meas *q = &res[n];
                        q->cfg = small, q->variant = variants[v], q->train = modes[md];
                        q->threads = threads[t], q->frames = frames[i];
                        if (run_child(q, &base)) {
                            fail = 1;
                            continue;
                        }
                        n++;
                    }
                }
        printf("\n%-19s %3s %4s %6s %10s %10s %8s %8s %9s %9s %7s %7s\n", "variant", "thr", "T",
               "tokens", "infer ms", "train ms", "x infer", "x train", "infer MB", "train MB",
               "GF/s i", "GF/s t");
        for (t = 0; t < nthreads; t++)
            for (v = 0; v < nvariants; v++) {
                double prev_i = 0, prev_t = 0, prev_T = 0;
                for (i = 0; i < nframes; i++) {
                    const meas *qi = NULL, *qt = NULL;
                    int k;
                    for (k = 0; k < n; k++)
                        if (res[k].variant == variants[v] && res[k].threads == threads[t] &&
                            res[k].frames == frames[i]) {
                            if (res[k].train)
                                qt = &res[k];
                            else
                                qi = &res[k];
                        }
                    if (!qi && !qt) continue;
                    printf("%-19s %3d %4d %6d ", tsf_attention_name(variants[v]), threads[t],
                           frames[i], 1 + tokens_per_frame * frames[i]);
                    print_cell(qi != NULL, qi ? qi->ms : 0, 10, 1, " ");
                    print_cell(qt != NULL, qt ? qt->ms : 0, 10, 1, " ");
                    /* growth per doubling of T: (t2/t1)^(1/log2(T2/T1)) */
                    print_cell(
                        qi && prev_i > 0,
                        qi && prev_i > 0 ? pow(qi->ms / prev_i, 1.0 / log2(frames[i] / prev_T)) : 0,
                        8, 2, " ");
                    print_cell(
                        qt && prev_t > 0,
                        qt && prev_t > 0 ? pow(qt->ms / prev_t, 1.0 / log2(frames[i] / prev_T)) : 0,
                        8, 2, " ");
                    print_cell(qi != NULL, qi ? qi->rss : 0, 9, 0, " ");
                    print_cell(qt != NULL, qt ? qt->rss : 0, 9, 0, " ");
                    print_cell(qi != NULL, qi ? qi->gflops : 0, 7, 1, " ");
                    print_cell(qt != NULL, qt ? qt->gflops : 0, 7, 1, "\n");
                    prev_i = qi ? qi->ms : 0, prev_t = qt ? qt->ms : 0, prev_T = frames[i];
                }
            }
        printf("tokens = 1 + %d T per clip (batch %d); x = time growth per doubling of T (1: "
               "constant, 2: linear, 4: quadratic); MB = peak RSS of the process\n",
               tokens_per_frame, small->batch);
        { /* the plot shows the last thread count: move its measurements to the front */
            int k, m = 0, pt = threads[nthreads - 1];
            for (k = 0; k < n; k++)
                if (res[k].threads == pt) {
                    meas tmp = res[m];
                    res[m++] = res[k], res[k] = tmp;
                }
            if (m > 0 && write_svg(svg, small, res, m, pt) == 0)
                printf("wrote %s (%d thread%s)\n", svg, pt, pt == 1 ? "" : "s");
        }
        free(res);
        return fail;
    }

    /* the main run */
    if (ncfgs == 0) {
        cfgs[ncfgs++] = find_cfg("small");
        if (!quick) cfgs[ncfgs++] = find_cfg("vitb");
    }
    if (shards > 1) { /* training steps only, on a batch the shards divide */
        if (!modes_given) modes[0] = 1, nmodes = 1;
        for (md = 0; md < nmodes; md++)
            if (modes[md] != 1)
                return fprintf(stderr, "bench_model: --shards applies to --modes train only\n"), 2;
        for (i = 0; i < ncfgs; i++)
            if (cfgs[i]->batch % shards)
                return fprintf(stderr,
                               "bench_model: --shards %d does not divide %s's batch of %d\n",
                               shards, cfgs[i]->name, cfgs[i]->batch),
                       2;
    }
    res = (meas *)calloc((size_t)ncfgs * nvariants * nmodes * nthreads, sizeof(meas));
    if (!res) return 1;
    {
        char what[32] = "";
        if (shards > 1) snprintf(what, sizeof what, " --shards %d", shards);
        probe = print_header(what, peak);
    }
    for (i = 0; i < ncfgs; i++)
        for (v = 0; v < nvariants; v++)
            for (md = 0; md < nmodes; md++)
                for (t = 0; t < nthreads; t++) {
                    meas *q = &res[nm];
                    one_opts base;
                    base.reps = reps ? reps : quick ? cfgs[i]->quick_reps : cfgs[i]->reps;
                    base.warmup = warmup, base.min_ms = min_ms, base.peak = peak, base.pack = pack;
                    base.shards = shards;
                    q->cfg = cfgs[i], q->variant = variants[v], q->train = modes[md];
                    q->threads = threads[t], q->frames = cfgs[i]->frames;
                    if (run_child(q, &base)) {
                        fail = 1;
                        continue;
                    }
                    for (j = 0; j < nm; j++) /* bit-identical for any thread count */
                        if (res[j].cfg == q->cfg && res[j].variant == q->variant &&
                            res[j].train == q->train &&
                            (strcmp(res[j].hash_logits, q->hash_logits) ||
                             strcmp(res[j].hash_grads, q->hash_grads))) {
                            fprintf(stderr,
                                    "bench_model: FAIL: %s %s %s: %d threads and %d threads give "
                                    "different results (hashes %s/%s vs %s/%s)\n",
                                    q->cfg->name, short_variant(q->variant), mode_name(q->train),
                                    res[j].threads, q->threads, res[j].hash_logits,
                                    res[j].hash_grads, q->hash_logits, q->hash_grads);
                            fail = 1;
                        }
                    nm++;
                }

    printf("\n%-6s %-19s %-5s %3s %2s %10s %10s %8s %6s %5s %8s %8s %6s %5s\n", "config", "variant",
           "mode", "thr", "B", "ms", "ms/clip", "GFLOP/s", "%peak", "%fma", "RSS MB", "lib MB",
           "x1thr", "load");
    for (i = 0; i < nm; i++) {
        const meas *q = &res[i];
        double one_ms = 0;
        for (j = 0; j < nm; j++)
            if (res[j].cfg == q->cfg && res[j].variant == q->variant && res[j].train == q->train &&
                res[j].threads == 1)
                one_ms = res[j].ms;
        printf("%-6s %-19s %-5s %3d %2d %10.1f %10.1f %8.1f %6.1f ", q->cfg->name,
               tsf_attention_name(q->variant), mode_name(q->train), q->threads, q->B, q->ms,
               q->ms_clip, q->gflops, q->peak_pct);
        print_cell(probe > 0, probe > 0 ? 100.0 * q->gflops / (probe * q->threads) : 0, 5, 1, " ");
        printf("%8.0f %8.0f ", q->rss, q->lib_mb);
        print_cell(one_ms > 0 && q->threads != 1, one_ms / q->ms, 6, 2, " ");
        printf("%5.2f\n", q->load);
    }
    printf("ms = median per call (a batch of B clips; train: one SGD step), ms/clip = ms / B;"
           " GFLOP/s from tsf_config_flops x 2 (train and lean x 3: lean's recomputed forward is "
           "not counted); %%peak = GFLOP/s / (%.1f x threads);"
           " %%fma = GFLOP/s / (the FMA probe's %.1f x threads); RSS = peak resident memory of"
           " the process; x1thr = speed-up over 1 thread\n",
           peak, probe);
    if (fail) fprintf(stderr, "bench_model: FAILED (see above)\n");
    free(res);
    return fail;
}
