/* tsf.c - the timesformer.h command-line program.

   Build:  make            (gives build/tsf)
   Usage:
     tsf info MODEL                      what a model is: config, parameters, GFLOPs per clip,
                                         memory, preprocessing. MODEL is a .safetensors file,
                                         a Hugging Face model folder (config.json +
                                         model.safetensors) or a bare config.json.
     tsf parity GOLDEN_DIR --out OUT_DIR run a folder written by tsf_ref.py golden (meta.json,
                                         weights.safetensors, input.bin) through this library,
                                         write logits.bin to OUT_DIR, and compare it with the
                                         folder's logits.bin. Exit status 1 beyond tolerance.

   Example:
     /usr/bin/python3 ../shared/reference/tsf_ref.py golden --out /tmp/g
     build/tsf parity /tmp/g --out /tmp/g_c
   prints the max abs/rel error of the logits and "parity: OK". */
#define TIMESFORMER_IMPLEMENTATION
#include "timesformer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Logits of a float32 implementation agree with the float64 reference to about 1e-7 on the
   tiny golden models and 2e-6 on ViT-B (ARCHITECTURE.md, numerics); 1e-5 flags real bugs. */
#define PARITY_LOGITS_ATOL 1e-5

static int usage(void) {
    fprintf(stderr,
            "usage:\n"
            "  tsf info MODEL                       (.safetensors, model folder or config.json)\n"
            "  tsf parity GOLDEN_DIR --out OUT_DIR  (a folder from tsf_ref.py golden)\n");
    return 2;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* 1234567 -> "1,234,567" */
static const char *commas(unsigned long long v, char *buf) {
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%llu", v), i, o = 0;
    for (i = 0; i < n; i++) {
        if (i > 0 && (n - i) % 3 == 0) buf[o++] = ',';
        buf[o++] = tmp[i];
    }
    buf[o] = 0;
    return buf;
}

static int cmd_info(const char *path) {
    tsf_model m;
    tsf_config cfg;
    tsf_error err;
    tsf_status st;
    size_t pbytes = 0, abytes = 0;
    double gflops;
    char buf[64];
    int have_model = 0, k, P;
    memset(&m, 0, sizeof m);
    memset(&cfg, 0, sizeof cfg);
    if (ends_with(path, ".json")) {
        st = tsf_config_load(&cfg, path, &err);
    } else {
        st = tsf_model_load(&m, path, 0, &err); /* parameters only */
        cfg = m.cfg, have_model = st == TSF_OK;
    }
    if (st != TSF_OK) {
        fprintf(stderr, "tsf info: %s: %s\n", err.msg[0] ? err.msg : path, tsf_status_string(st));
        return 1;
    }
    st = tsf_model_bytes(&cfg, 1, 0, 0, 0, &pbytes, &abytes);
    if (st != TSF_OK) {
        fprintf(stderr, "tsf info: %s: %s\n", path, tsf_status_string(st));
        return 1;
    }
    P = cfg.image_size / cfg.patch_size;
    printf("model        %s\n", path);
    printf("attention    %s\n", tsf_attention_name(cfg.attention));
    printf(
        "input        %d frames of %d x %d, %d channels; patch %d (%d x %d = %d patches a frame)\n",
        cfg.frames, cfg.image_size, cfg.image_size, cfg.channels, cfg.patch_size, P, P, P * P);
    printf("width        D %d, %d blocks, %d heads of %d, MLP %d, LayerNorm eps %g%s\n", cfg.dim,
           cfg.depth, cfg.heads, cfg.dim / cfg.heads, (int)((float)cfg.dim * cfg.mlp_ratio),
           (double)cfg.ln_eps, cfg.no_qkv_bias ? ", qkv without bias" : "");
    printf("classes      %d", cfg.classes);
    if (have_model && m.labels) {
        printf(" (");
        for (k = 0; k < cfg.classes && k < 5; k++)
            printf("%s%s", k ? ", " : "", tsf_model_label(&m, k));
        printf("%s)", cfg.classes > 5 ? ", ..." : "");
    }
    printf("\n");
    printf("parameters   %s\n", commas(tsf_config_num_params(&cfg), buf));
    gflops = tsf_config_flops(&cfg, 0, 0, 0) / 1e9;
    printf(gflops >= 1 ? "GFLOPs       %.1f per clip" : "GFLOPs       %.6f per clip", gflops);
    printf(" (one multiply-add = one FLOP; x3 views = %.2f TFLOPs)\n", 3 * gflops / 1e3);
    printf("memory       inference, batch 1: %.1f MB (parameters %.1f MB + activations %.1f MB)\n",
           (double)(pbytes + abytes) / 1e6, (double)pbytes / 1e6, (double)abytes / 1e6);
    printf(
        "             training, batch 1: %.1f MB (parameters, gradients and momentum 3 x %.1f MB,\n"
        "             activations and their gradients 2 x %.1f MB)\n",
        (double)(3 * pbytes + 2 * abytes) / 1e6, (double)pbytes / 1e6, (double)abytes / 1e6);
    printf("preprocess   %s; input = (pixel/255 - mean) / std, mean %g %g %g, std %g %g %g\n",
           cfg.bgr ? "BGR" : "RGB", (double)cfg.mean[0], (double)cfg.mean[1], (double)cfg.mean[2],
           (double)cfg.std[0], (double)cfg.std[1], (double)cfg.std[2]);
    tsf_model_free(&m);
    return 0;
}

/* Read a whole file; NULL with a message on failure. */
static void *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    long n;
    void *p;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return NULL;
    }
    p = malloc((size_t)n + 1);
    if (p && fread(p, 1, (size_t)n, f) != (size_t)n) free(p), p = NULL;
    fclose(f);
    if (p) ((char *)p)[n] = 0, *size = (size_t)n;
    return p;
}

/* Compare n floats with a reference file; prints a line and returns 1 within atol. */
static int compare(const char *what, const float *got, size_t n, const char *ref_path,
                   double atol) {
    size_t size = 0, i;
    float *ref = (float *)read_file(ref_path, &size);
    double max_abs = 0, max_ref = 0;
    if (!ref) {
        printf("  %-18s no reference file %s: not compared\n", what, ref_path);
        return 1;
    }
    if (size != n * sizeof(float)) {
        printf("  %-18s %s holds %zu floats, expected %zu: FAIL\n", what, ref_path, size / 4, n);
        free(ref);
        return 0;
    }
    for (i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)ref[i]);
        if (!(d <= max_abs)) max_abs = d; /* NaN propagates */
        if (fabs((double)ref[i]) > max_ref) max_ref = fabs((double)ref[i]);
    }
    free(ref);
    printf("  %-18s max abs error %.3g, relative to max |ref| %.3g (tolerance %.0e abs): %s\n",
           what, max_abs, max_ref > 0 ? max_abs / max_ref : max_abs, atol,
           max_abs <= atol ? "ok" : "FAIL");
    return max_abs <= atol;
}

static int cmd_parity(const char *dir, const char *out) {
    char path[4096];
    size_t size = 0, n;
    char *meta;
    float *x = NULL, *logits = NULL;
    tsf__json j;
    tsf_model m;
    tsf_error err;
    tsf_status st;
    long long shape[5];
    int k, ok = 1;
    FILE *f;
    snprintf(path, sizeof path, "%s/meta.json", dir);
    if (!(meta = (char *)read_file(path, &size))) {
        fprintf(stderr, "tsf parity: cannot read %s\n", path);
        return 1;
    }
    /* meta.json: input_shape [B, C, T, H, W] */
    if (tsf__json_parse(&j, meta, size, NULL) != TSF_OK) {
        fprintf(stderr, "tsf parity: %s is not valid JSON\n", path);
        return 1;
    }
    for (k = 0; k < 5; k++)
        if (!tsf__json_int(&j, tsf__json_at(&j, tsf__json_get(&j, 0, "input_shape"), k), 1, 1 << 20,
                           &shape[k])) {
            fprintf(stderr, "tsf parity: %s: no valid input_shape [B, C, T, H, W]\n", path);
            return 1;
        }
    free(j.tok);
    free(meta);
    snprintf(path, sizeof path, "%s/weights.safetensors", dir);
    if ((st = tsf_model_load(&m, path, (int)shape[0], &err)) != TSF_OK) {
        fprintf(stderr, "tsf parity: %s (%s)\n", err.msg, tsf_status_string(st));
        return 1;
    }
    if (shape[1] != m.cfg.channels) {
        fprintf(stderr, "tsf parity: input has %lld channels, the model %d\n", shape[1],
                m.cfg.channels);
        return 1;
    }
    snprintf(path, sizeof path, "%s/input.bin", dir);
    n = (size_t)(shape[0] * shape[1] * shape[2] * shape[3] * shape[4]);
    if (!(x = (float *)read_file(path, &size)) || size != n * sizeof(float)) {
        fprintf(stderr, "tsf parity: %s: missing, or not %zu float32 values [B,C,T,H,W]\n", path,
                n);
        return 1;
    }
    logits = (float *)malloc(sizeof(float) * (size_t)shape[0] * m.cfg.classes);
    st = tsf_model_forward(&m, x, (int)shape[0], (int)shape[2], (int)shape[3], (int)shape[4],
                           logits);
    if (!logits || st != TSF_OK) {
        fprintf(stderr, "tsf parity: forward failed: %s\n", tsf_status_string(st));
        return 1;
    }
    if (mkdir(out, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "tsf parity: cannot create %s: %s\n", out, strerror(errno));
        return 1;
    }
    snprintf(path, sizeof path, "%s/logits.bin", out);
    n = (size_t)shape[0] * m.cfg.classes;
    if (!(f = fopen(path, "wb")) || fwrite(logits, sizeof(float), n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "tsf parity: cannot write %s\n", path);
        return 1;
    }
    printf("parity: %s, %s, input %lldx%lldx%lldx%lldx%lld, %s matmul\n", dir,
           tsf_attention_name(m.cfg.attention), shape[0], shape[1], shape[2], shape[3], shape[4],
           tsf_simd_name());
    printf("  wrote %s\n", path);
    snprintf(path, sizeof path, "%s/logits.bin", dir);
    ok &= compare("logits", logits, n, path, PARITY_LOGITS_ATOL);
    snprintf(path, sizeof path, "%s/grads.safetensors", dir);
    if ((f = fopen(path, "rb")) != NULL) {
        fclose(f);
        printf("  %-18s present; gradients and SGD steps are checked once training lands\n",
               "grads");
    }
    printf("parity: %s\n", ok ? "OK" : "FAILED");
    free(x), free(logits);
    tsf_model_free(&m);
    return ok ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "info") == 0) return cmd_info(argv[2]);
    if (argc == 5 && strcmp(argv[1], "parity") == 0 && strcmp(argv[3], "--out") == 0)
        return cmd_parity(argv[2], argv[4]);
    return usage();
}
