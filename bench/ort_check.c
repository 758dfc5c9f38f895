/* bench/ort_check.c - the library's side of bench/compare_ort.py: makes the weights that the
   ONNX model is exported with, and runs the library on them (logits for the check, then time)

   WHAT IT DOES

   --init OUT.safetensors: a model of the given configuration and attention variant,
   initialised as tsf_model_init does (seed 42, the seed of bench_model.c), saved with
   tsf_model_save (Hugging Face names, the config in the file's metadata). The initialisation
   zeroes temporal_fc and the time embedding, which would leave the temporal path and the time
   embedding out of the check: they get small random values (0.05 N(0, 1)), as bench_model's
   --export gives them. bench/compare_ort.py loads this file into bench/compare_pytorch.py's
   PyTorch model and exports that with torch.onnx.export.

   --run WEIGHTS.safetensors: loads the file with tsf_model_load (batch --batch), makes an
   input of B clips of the model's size (T frames of S x S, N(0, 1) values from tsf_rng seed 7,
   layout (B, 3, T, S, S) as tsf_model_forward reads it), runs tsf_model_forward once and
   writes the input (--input-out) and the logits (--logits-out), raw little-endian float32.
   With --time it then times tsf_model_forward as bench_model.c does: --warmup calls (the
   first is the checked one), then --reps repetitions, each a loop of calls lasting at least
   --min-ms; the median per call. One JSON line on stdout: the time, the peak RSS of the
   process (VmHWM), the RSS after loading, the load average, the thread count (OpenMP's,
   from OMP_NUM_THREADS: the driver sets it) and a hash of the logits. With --pack the
   model's matrices are packed once after loading (tsf_model_pack_weights, as ORT packs its
   weights when it loads a model); the JSON's packed_mb is that copy's size.

   BUILD AND RUN (from the repository root; bench/compare_ort.py runs it)

       cc -O2 -g -march=native -fopenmp -I. bench/ort_check.c -o build/ort_check -lm
       build/ort_check --init build/ort/models/small_divided.safetensors --variant divided \
           --image 112 --patch 16 --frames 8 --dim 192 --depth 4 --heads 3 --classes 10
       OMP_NUM_THREADS=2 OMP_WAIT_POLICY=passive build/ort_check --run \
           build/ort/models/small_divided.safetensors --batch 4 --logits-out /tmp/l.bin --time
*/
#define _POSIX_C_SOURCE 200809L

#define TIMESFORMER_IMPLEMENTATION
#include "timesformer.h"

#include "bench_common.h" /* now_s, cmp_double, load_average, BENCH_OPENMP */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A field of /proc/self/status in MB ("VmHWM:" the peak RSS, "VmRSS:" the current); -1 when
   there is no /proc. */
static double status_mb(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kb = -1.0;
    size_t n = strlen(key);
    if (!f) return -1.0;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, n)) kb = atof(line + n);
    fclose(f);
    return kb < 0 ? -1.0 : kb / 1024.0;
}
static int write_floats(const char *path, const float *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, sizeof(float), n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "ort_check: cannot write %s\n", path);
        return 1;
    }
    return 0;
}
static int parse_variant(const char *s) {
    if (!strcmp(s, "divided")) return TSF_ATTN_DIVIDED;
    if (!strcmp(s, "joint")) return TSF_ATTN_JOINT;
    if (!strcmp(s, "space")) return TSF_ATTN_SPACE;
    return tsf_attention_parse(s);
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: ort_check --init OUT.safetensors --variant V --image S --patch P --frames T\n"
            "                 --dim D --depth L --heads NH --classes K [--seed N]\n"
            "       ort_check --run WEIGHTS.safetensors --batch B [--input-out FILE]\n"
            "                 [--logits-out FILE] [--time [--reps N] [--warmup N] [--min-ms X]]\n"
            "                 [--pack]\n");
}

/* --init: the bench configuration's model, with the temporal path made non-zero, saved. */
static int run_init(const char *out, const tsf_config *given, unsigned long long seed) {
    tsf_config cfg = *given;
    tsf_model m;
    tsf_error err;
    tsf_rng rng;
    tsf_status st = tsf_model_init(&m, &cfg, 0, seed);
    size_t i;
    if (st != TSF_OK) {
        fprintf(stderr, "ort_check: tsf_model_init: %s\n", tsf_status_string(st));
        return 1;
    }
    tsf_rng_seed(&rng, 11);
    if (m.params.t_fc_w) {
        size_t n = (size_t)m.cfg.depth * m.cfg.dim * m.cfg.dim;
        for (i = 0; i < n; i++) m.params.t_fc_w[i] = 0.05f * tsf_rng_normal(&rng);
        for (i = 0; i < (size_t)m.cfg.depth * m.cfg.dim; i++)
            m.params.t_fc_b[i] = 0.05f * tsf_rng_normal(&rng);
    }
    if (m.params.time_embed)
        for (i = 0; i < (size_t)m.cfg.frames * m.cfg.dim; i++)
            m.params.time_embed[i] = 0.05f * tsf_rng_normal(&rng);
    if (tsf_model_save(&m, out, &err) != TSF_OK) {
        fprintf(stderr, "ort_check: %s\n", err.msg);
        tsf_model_free(&m);
        return 1;
    }
    printf("{\"init\":\"%s\",\"variant\":\"%s\",\"params\":%zu}\n", out,
           tsf_attention_name(m.cfg.attention), m.num_params);
    tsf_model_free(&m);
    return 0;
}

typedef struct run_opts {
    const char *weights, *input_out, *logits_out;
    int batch, time, reps, warmup, pack; /* pack: tsf_model_pack_weights after loading */
    double min_ms;
} run_opts;

/* --run: load, forward once (written out), then optionally time. */
static int run_model(const run_opts *o) {
    tsf_model m;
    tsf_error err;
    tsf_rng rng;
    tsf_status st;
    double load = load_average(), rss_load, t0, t_first, ms, ms_min, *times = NULL, flops;
    const char *wait = getenv("OMP_WAIT_POLICY");
    int B = o->batch, T, S, K, r, threads = 1;
    size_t nx, i;
    long iters = 1;
    float *x;

    if (tsf_model_load(&m, o->weights, B, &err) != TSF_OK) {
        fprintf(stderr, "ort_check: %s\n", err.msg);
        return 1;
    }
    if (o->pack && (st = tsf_model_pack_weights(&m)) != TSF_OK) {
        fprintf(stderr, "ort_check: tsf_model_pack_weights: %s\n", tsf_status_string(st));
        return 1;
    }
    T = m.cfg.frames, S = m.cfg.image_size, K = m.cfg.classes;
    nx = (size_t)B * (size_t)m.cfg.channels * T * S * S;
    x = (float *)malloc(nx * sizeof(float));
    if (!x) return fprintf(stderr, "ort_check: out of memory\n"), 1;
    tsf_rng_seed(&rng, 7);
    for (i = 0; i < nx; i++) x[i] = tsf_rng_normal(&rng);
    rss_load = status_mb("VmRSS:");
#if BENCH_OPENMP
    threads = omp_get_max_threads();
#endif

    t0 = now_s();
    st = tsf_model_forward(&m, x, B, T, S, S, NULL);
    t_first = now_s() - t0;
    if (st != TSF_OK) {
        fprintf(stderr, "ort_check: forward: %s\n", tsf_status_string(st));
        return 1;
    }
    if (tsf_check_finite(m.acts.logits, (size_t)B * K, NULL) != TSF_OK)
        return fprintf(stderr, "ort_check: the logits are not finite\n"), 1;
    if (o->input_out && write_floats(o->input_out, x, nx)) return 1;
    if (o->logits_out && write_floats(o->logits_out, m.acts.logits, (size_t)B * K)) return 1;

    ms = ms_min = 1e3 * t_first;
    if (o->time) {
        for (r = 1; r < o->warmup; r++) {
            t0 = now_s();
            if (tsf_model_forward(&m, x, B, T, S, S, NULL) != TSF_OK) return 1;
            t_first = now_s() - t0;
        }
        if (t_first * 1e3 < o->min_ms) iters = (long)ceil(o->min_ms / (t_first * 1e3 + 1e-9));
        if (iters > 1000000) iters = 1000000;
        times = (double *)malloc((size_t)o->reps * sizeof(double));
        if (!times) return fprintf(stderr, "ort_check: out of memory\n"), 1;
        for (r = 0; r < o->reps; r++) {
            long it;
            t0 = now_s();
            for (it = 0; it < iters; it++)
                if (tsf_model_forward(&m, x, B, T, S, S, NULL) != TSF_OK) return 1;
            times[r] = (now_s() - t0) / (double)iters;
        }
        qsort(times, (size_t)o->reps, sizeof *times, cmp_double);
        ms_min = 1e3 * times[0];
        ms = 1e3 * (o->reps % 2 ? times[o->reps / 2]
                                : 0.5 * (times[o->reps / 2 - 1] + times[o->reps / 2]));
    }
    flops = 2.0 * tsf_config_flops(&m.cfg, T, S, S) * B;
    printf("{\"bench\":\"ort\",\"impl\":\"tsf\",\"variant\":\"%s\",\"threads\":%d,"
           "\"omp_wait_policy\":\"%s\",\"B\":%d,\"T\":%d,\"H\":%d,\"W\":%d,\"D\":%d,\"depth\":%d,"
           "\"heads\":%d,\"classes\":%d,\"params\":%zu,\"ms\":%.4f,\"ms_min\":%.4f,"
           "\"ms_per_clip\":%.4f,\"gflops\":%.2f,\"peak_rss_mb\":%.1f,\"rss_load_mb\":%.1f,"
           "\"reps\":%d,\"iters\":%ld,\"warmup\":%d,\"timed\":%s,\"load1\":%.2f,"
           "\"simd\":\"%s\",\"tsf\":\"%s\",\"hash_logits\":\"%016llx\",\"packed_mb\":%.1f}\n",
           tsf_attention_name(m.cfg.attention), threads, wait ? wait : "unset", B, T, S, S,
           m.cfg.dim, m.cfg.depth, m.cfg.heads, K, m.num_params, ms, ms_min, ms / B,
           flops / (ms * 1e-3) * 1e-9, status_mb("VmHWM:"), rss_load, o->time ? o->reps : 0, iters,
           o->warmup, o->time ? "true" : "false", load, tsf_simd_name(), tsf_version(),
           hash_floats(m.acts.logits, (size_t)B * K), (double)m.packed_floats * 4.0 / 1048576.0);
    fflush(stdout);
    free(times);
    free(x);
    tsf_model_free(&m);
    return 0;
}

int main(int argc, char **argv) {
    const char *init_out = NULL;
    run_opts o;
    tsf_config cfg;
    unsigned long long seed = 42;
    int a, variant = -1;

    memset(&o, 0, sizeof o);
    o.reps = 7, o.warmup = 1, o.min_ms = 100.0;
    memset(&cfg, 0, sizeof cfg);
    cfg.channels = 3, cfg.mlp_ratio = 4.0f;
    for (a = 1; a < argc; a++) {
        const char *opt = argv[a], *val = a + 1 < argc ? argv[a + 1] : NULL;
        int *field = !strcmp(opt, "--image")     ? &cfg.image_size
                     : !strcmp(opt, "--patch")   ? &cfg.patch_size
                     : !strcmp(opt, "--frames")  ? &cfg.frames
                     : !strcmp(opt, "--dim")     ? &cfg.dim
                     : !strcmp(opt, "--depth")   ? &cfg.depth
                     : !strcmp(opt, "--heads")   ? &cfg.heads
                     : !strcmp(opt, "--classes") ? &cfg.classes
                     : !strcmp(opt, "--batch")   ? &o.batch
                     : !strcmp(opt, "--reps")    ? &o.reps
                     : !strcmp(opt, "--warmup")  ? &o.warmup
                                                 : NULL;
        if (field && val) {
            *field = atoi(val), a++;
            if (*field < 1) return fprintf(stderr, "ort_check: bad %s '%s'\n", opt, val), 2;
        } else if (!strcmp(opt, "--init") && val) {
            init_out = val, a++;
        } else if (!strcmp(opt, "--run") && val) {
            o.weights = val, a++;
        } else if (!strcmp(opt, "--variant") && val) {
            variant = parse_variant(val), a++;
            if (variant < 0) return fprintf(stderr, "ort_check: unknown variant '%s'\n", val), 2;
        } else if (!strcmp(opt, "--seed") && val) {
            seed = strtoull(val, NULL, 10), a++;
        } else if (!strcmp(opt, "--input-out") && val) {
            o.input_out = val, a++;
        } else if (!strcmp(opt, "--logits-out") && val) {
            o.logits_out = val, a++;
        } else if (!strcmp(opt, "--min-ms") && val) {
            o.min_ms = atof(val), a++;
            if (!(o.min_ms >= 0.0)) return fprintf(stderr, "ort_check: bad --min-ms\n"), 2;
        } else if (!strcmp(opt, "--time")) {
            o.time = 1;
        } else if (!strcmp(opt, "--pack")) {
            o.pack = 1;
        } else if (!strcmp(opt, "--help") || !strcmp(opt, "-h")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "ort_check: unknown or incomplete option '%s'\n", opt);
            usage(stderr);
            return 2;
        }
    }
    if (init_out) {
        if (variant < 0 || !cfg.image_size || !cfg.patch_size || !cfg.frames || !cfg.dim ||
            !cfg.depth || !cfg.heads || !cfg.classes)
            return fprintf(stderr, "ort_check: --init needs --variant and the whole config\n"), 2;
        cfg.attention = variant;
        if (tsf_config_resolve(&cfg) != TSF_OK)
            return fprintf(stderr, "ort_check: invalid configuration\n"), 2;
        return run_init(init_out, &cfg, seed);
    }
    if (o.weights) {
        if (o.batch < 1) return fprintf(stderr, "ort_check: --run needs --batch\n"), 2;
        return run_model(&o);
    }
    usage(stderr);
    return 2;
}
