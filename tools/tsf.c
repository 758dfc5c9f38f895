/* tsf.c - the timesformer.h command-line program.

   Build:  make            (gives build/tsf)
   Usage:
     tsf info MODEL                      what a model is: config, parameters, GFLOPs per clip,
                                         memory, preprocessing. MODEL is a .safetensors file,
                                         a torch.save checkpoint (.bin, .pth, .pyth), a Hugging
                                         Face model folder (config.json + model.safetensors or
                                         pytorch_model.bin, sharded or not) or a config.json.
     tsf convert IN OUT [--config C]     any of those to one safetensors file (tsf_export.c)
     tsf export MODEL DIR                a folder Hugging Face's from_pretrained loads
     tsf parity GOLDEN_DIR --out OUT_DIR run a folder written by tsf_ref.py golden (meta.json,
                                         weights.safetensors, input.bin, labels.bin) through
                                         this library: forward, backward and the SGD steps
                                         meta.json asks for. Writes logits.bin,
                                         grads.safetensors, input_grad.bin and
                                         weights_sgd.safetensors to OUT_DIR and compares each
                                         with the folder's. Exit status 1 beyond tolerance.

   Example:
     /usr/bin/python3 ../shared/reference/tsf_ref.py golden --out /tmp/g
     build/tsf parity /tmp/g --out /tmp/g_c
   prints the max abs/rel error of the logits and "parity: OK". */
#include "tsf_tools.h" /* the library, stb (unless TT_NO_STB), and the tools' helpers */

/* Logits of a float32 implementation agree with the float64 reference to about 1e-7 on the
   tiny golden models and 2e-6 on ViT-B (ARCHITECTURE.md, numerics); 1e-5 flags real bugs. */
#define PARITY_LOGITS_ATOL 1e-5

static int usage(void) {
    fprintf(stderr,
            "usage:\n"
            "  tsf info MODEL                       (.safetensors, .bin/.pth/.pyth, model folder\n"
            "                                        or config.json)\n"
            "  tsf parity GOLDEN_DIR --out OUT_DIR  (a folder from tsf_ref.py golden)\n"
            "  tsf train --train MANIFEST ...       (tsf train --help)\n"
            "  tsf eval MODEL MANIFEST ...          (tsf eval --help)\n"
            "  tsf cv --data DIR --out OUT ...      (k-fold cross-validation: tsf cv --help)\n"
            "  tsf classify MODEL INPUT ...         (tsf classify --help)\n"
            "  tsf attention MODEL INPUT --out PNG  (tsf attention --help)\n"
            "  tsf convert IN OUT.safetensors [--config CONFIG.json]\n"
            "                                       (any checkpoint -> safetensors)\n"
            "  tsf export MODEL DIR                 (a Hugging Face model folder)\n");
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
    size_t pbytes = 0, abytes = 0, tbytes = 0, rbytes = 0, lbytes = 0;
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
    if (st == TSF_OK) st = tsf_model_train_bytes(&cfg, 1, 0, 0, 0, &tbytes);
    cfg.recompute = 1; /* what training needs when backward recomputes the blocks */
    if (st == TSF_OK) st = tsf_model_train_bytes(&cfg, 1, 0, 0, 0, &rbytes);
    cfg.fused_sgd = 1; /* ... and one block's gradients at a time */
    if (st == TSF_OK) st = tsf_model_train_bytes(&cfg, 1, 0, 0, 0, &lbytes);
    cfg.recompute = cfg.fused_sgd = 0;
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
    if (3 * gflops >= 10) /* the paper's unit for ViT-B; small models in GFLOPs, never "0.00" */
        printf(" (one multiply-add = one FLOP; x3 views = %.2f TFLOPs)\n", 3 * gflops / 1e3);
    else
        printf(" (one multiply-add = one FLOP; x3 views = %.3g GFLOPs)\n", 3 * gflops);
    printf("memory       inference, batch 1: %.1f MB (parameters %.1f MB + activations %.1f MB)\n",
           (double)(pbytes + abytes) / 1e6, (double)pbytes / 1e6, (double)abytes / 1e6);
    printf("             training, batch 1: %.1f MB (+ gradients, SGD momentum, every block's\n"
           "             activations and one block's activation gradients: %.1f MB); with\n"
           "             cfg.recompute (each block's input kept, the rest recomputed): %.1f MB;\n"
           "             with cfg.recompute and cfg.fused_sgd (SGD applied block by block in\n"
           "             the backward pass, no whole gradient kept): %.1f MB\n",
           (double)(pbytes + abytes + tbytes) / 1e6, (double)tbytes / 1e6,
           (double)(pbytes + abytes + rbytes) / 1e6, (double)(pbytes + abytes + lbytes) / 1e6);
    printf("preprocess   %s; short side %d, centre crop %d; input = (pixel/255 - mean) / std,\n"
           "             mean %g %g %g, std %g %g %g\n",
           cfg.bgr ? "BGR" : "RGB", cfg.short_side, cfg.crop_size, (double)cfg.mean[0],
           (double)cfg.mean[1], (double)cfg.mean[2], (double)cfg.std[0], (double)cfg.std[1],
           (double)cfg.std[2]);
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

/* Max |got - ref| over n floats and max |ref|. */
static void max_errors(const float *got, const float *ref, size_t n, double *err, double *scale) {
    size_t i;
    *err = 0, *scale = 0;
    for (i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)ref[i]);
        if (!(d <= *err)) *err = d; /* NaN propagates */
        if (fabs((double)ref[i]) > *scale) *scale = fabs((double)ref[i]);
    }
}

/* Compare n floats with a reference file: absolute tolerance atol, or (rel = 1) atol times
   the reference's max |value|. Prints a line; returns 1 when within tolerance. */
static int compare(const char *what, const float *got, size_t n, const char *ref_path, double tol,
                   int rel) {
    size_t size = 0;
    float *ref = (float *)read_file(ref_path, &size);
    double e, scale, bound;
    if (!ref) {
        printf("  %-18s no reference file %s: not compared\n", what, ref_path);
        return 1;
    }
    if (size != n * sizeof(float)) {
        printf("  %-18s %s holds %zu floats, expected %zu: FAIL\n", what, ref_path, size / 4, n);
        free(ref);
        return 0;
    }
    max_errors(got, ref, n, &e, &scale);
    free(ref);
    bound = rel ? tol * scale : tol;
    printf("  %-18s max abs error %.3g, relative to max |ref| %.3g (tolerance %.0e %s): %s\n", what,
           e, scale > 0 ? e / scale : e, tol, rel ? "x max |ref|" : "abs",
           e <= bound ? "ok" : "FAIL");
    return e <= bound;
}

/* Compare every parameter-shaped tensor of data (laid out as m's parameters) with the file
   ref_path (same names); rel as in compare(), per tensor. */
static int compare_tensors(const char *what, const tsf_model *m, const float *data,
                           const char *ref_path, double tol, int rel) {
    tsf_model ref;
    tsf_error err;
    int i, nt = tsf_model_num_tensors(m), ok = 1;
    double worst = 0, worst_rel = 0;
    char worst_name[96] = "";
    {
        size_t size = 0;
        void *file = read_file(ref_path, &size);
        tsf_status st;
        if (!file) {
            printf("  %-18s no reference file %s: not compared\n", what, ref_path);
            return 1;
        }
        st = tsf_model_load_memory(&ref, file, size, &m->cfg, 0, &err);
        free(file);
        if (st != TSF_OK) {
            printf("  %-18s %s: %s: FAIL\n", what, ref_path, err.msg);
            return 0;
        }
    }
    for (i = 0; i < nt; i++) {
        char name[96];
        int ndim, d;
        long long shape[4];
        float *p, *r;
        size_t numel = 1;
        double e, scale, bound;
        tsf_model_tensor(m, i, name, &ndim, shape, &p);
        tsf_model_tensor(&ref, i, name, &ndim, shape, &r);
        for (d = 0; d < ndim; d++) numel *= (size_t)shape[d];
        max_errors(data + (p - m->param_memory), r, numel, &e, &scale);
        bound = rel ? tol * scale + 1e-12 : tol;
        if (!(e <= bound)) ok = 0;
        if (rel ? e / (scale > 0 ? scale : 1) > worst_rel : e > worst)
            worst = e, worst_rel = e / (scale > 0 ? scale : 1),
            snprintf(worst_name, sizeof worst_name, "%s", name);
    }
    tsf_model_free(&ref);
    printf("  %-18s %d tensors, worst %s: abs %.3g, relative to its max |ref| %.3g "
           "(tolerance %.0e %s): %s\n",
           what, nt, worst_name, worst, worst_rel, tol, rel ? "x max |ref|" : "abs",
           ok ? "ok" : "FAIL");
    return ok;
}

/* Write n floats. */
static int write_floats(const char *path, const float *x, size_t n) {
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(x, sizeof(float), n, f) == n;
    if (f && fclose(f) != 0) ok = 0;
    if (!ok) fprintf(stderr, "tsf parity: cannot write %s\n", path);
    return ok;
}

/* Parity: Golden-file checks against tsf_ref.py. Tolerances from ARCHITECTURE.md
   (numerics): logits 1e-5 absolute, gradients 1e-4 of each tensor's max |value|, weights
   after the SGD steps 1e-5 absolute. */
#define PARITY_GRADS_RTOL 1e-4
#define PARITY_SGD_ATOL 1e-5

static int cmd_parity(const char *dir, const char *out) {
    char path[4096];
    size_t size = 0, n, nx;
    char *meta = NULL;
    float *x = NULL, *logits = NULL, *dx = NULL, loss;
    int *labels = NULL;
    tsf__json j;
    tsf_model m;
    double elems = 1;
    tsf_error err;
    tsf_status st;
    long long shape[5], sgd_steps = 0;
    double lr = 0, mom = 0, wd = 0;
    int k, ok = 0, nesterov = 1, sgd, input;
    memset(&m, 0, sizeof m), memset(&j, 0, sizeof j);
    snprintf(path, sizeof path, "%s/meta.json", dir);
    if (!(meta = (char *)read_file(path, &size))) {
        fprintf(stderr, "tsf parity: cannot read %s\n", path);
        goto done;
    }
    /* meta.json: input_shape [B, C, T, H, W], and the SGD run if there is one */
    if (tsf__json_parse(&j, meta, size, NULL) != TSF_OK) {
        fprintf(stderr, "tsf parity: %s is not valid JSON\n", path);
        goto done;
    }
    input = tsf__json_get(&j, 0, "input_shape");
    for (k = 0; k < 5; k++) /* exactly 5 sizes, and a clip of at most 2^30 values */
        if (!tsf__json_int(&j, tsf__json_at(&j, input, k), 1, 1 << 20, &shape[k]) ||
            j.tok[input].size != 5 || (elems *= (double)shape[k]) > (double)(1 << 30)) {
            fprintf(stderr,
                    "tsf parity: %s: no valid input_shape [B, C, T, H, W] (5 sizes, at "
                    "most 2^30 values)\n",
                    path);
            goto done;
        }
    sgd = tsf__json_get(&j, 0, "sgd");
    if (sgd >= 0 && !(tsf__json_int(&j, tsf__json_get(&j, sgd, "steps"), 1, 1 << 20, &sgd_steps) &&
                      tsf__json_num(&j, tsf__json_get(&j, sgd, "lr"), &lr) &&
                      tsf__json_num(&j, tsf__json_get(&j, sgd, "momentum"), &mom) &&
                      tsf__json_num(&j, tsf__json_get(&j, sgd, "weight_decay"), &wd))) {
        fprintf(stderr, "tsf parity: %s: malformed \"sgd\" entry\n", path);
        goto done;
    }
    if (sgd >= 0 && (k = tsf__json_get(&j, sgd, "nesterov")) >= 0 &&
        !tsf__json_bool(&j, k, &nesterov)) {
        fprintf(stderr, "tsf parity: %s: sgd.nesterov must be true or false\n", path);
        goto done;
    }
    snprintf(path, sizeof path, "%s/weights.safetensors", dir);
    if ((st = tsf_model_load(&m, path, (int)shape[0], &err)) != TSF_OK) {
        fprintf(stderr, "tsf parity: %s (%s)\n", err.msg, tsf_status_string(st));
        goto done;
    }
    if (shape[1] != m.cfg.channels) {
        fprintf(stderr, "tsf parity: input has %lld channels, the model %d\n", shape[1],
                m.cfg.channels);
        goto done;
    }
    snprintf(path, sizeof path, "%s/input.bin", dir);
    nx = (size_t)(shape[0] * shape[1] * shape[2] * shape[3] * shape[4]);
    if (!(x = (float *)read_file(path, &size)) || size != nx * sizeof(float)) {
        fprintf(stderr, "tsf parity: %s: missing, or not %zu float32 values [B,C,T,H,W]\n", path,
                nx);
        goto done;
    }
    if (mkdir(out, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "tsf parity: cannot create %s: %s\n", out, strerror(errno));
        goto done;
    }
    printf("parity: %s, %s, input %lldx%lldx%lldx%lldx%lld, %s matmul\n", dir,
           tsf_attention_name(m.cfg.attention), shape[0], shape[1], shape[2], shape[3], shape[4],
           tsf_simd_name());

    ok = 1; /* from here on a comparison may fail without stopping the others */
    /* 1. forward: logits */
    n = (size_t)shape[0] * m.cfg.classes;
    logits = (float *)malloc(sizeof(float) * n);
    st = tsf_model_forward(&m, x, (int)shape[0], (int)shape[2], (int)shape[3], (int)shape[4],
                           logits);
    if (!logits || st != TSF_OK) {
        fprintf(stderr, "tsf parity: forward failed: %s\n", tsf_status_string(st));
        goto done;
    }
    snprintf(path, sizeof path, "%s/logits.bin", out);
    if (!write_floats(path, logits, n)) goto done;
    snprintf(path, sizeof path, "%s/logits.bin", dir);
    ok &= compare("logits", logits, n, path, PARITY_LOGITS_ATOL, 0);

    /* 2. backward: every parameter's gradient and the input's, for the mean cross-entropy */
    snprintf(path, sizeof path, "%s/labels.bin", dir);
    labels = (int *)read_file(path, &size);
    if (labels && size == (size_t)shape[0] * sizeof(int)) {
        tsf_params params = m.params;
        float *params_memory = m.param_memory;
        dx = (float *)calloc(nx, sizeof(float));
        if (!dx || tsf_model_train_init(&m) != TSF_OK ||
            tsf_model_loss(&m, x, labels, (int)shape[0], (int)shape[2], (int)shape[3],
                           (int)shape[4], 0, &loss) != TSF_OK ||
            tsf_model_backward(&m, dx) != TSF_OK) {
            fprintf(stderr, "tsf parity: backward failed\n");
            goto done;
        }
        printf("  %-18s %.9g\n", "loss", (double)loss);
        /* write the gradients with the weights' names: the saver reads m.params */
        m.params = m.grads, m.param_memory = m.grad_memory;
        snprintf(path, sizeof path, "%s/grads.safetensors", out);
        st = tsf_model_save(&m, path, &err);
        m.params = params, m.param_memory = params_memory;
        if (st != TSF_OK) {
            fprintf(stderr, "tsf parity: %s\n", err.msg);
            goto done;
        }
        snprintf(path, sizeof path, "%s/input_grad.bin", out);
        if (!write_floats(path, dx, nx)) goto done;
        snprintf(path, sizeof path, "%s/grads.safetensors", dir);
        ok &= compare_tensors("gradients", &m, m.grad_memory, path, PARITY_GRADS_RTOL, 1);
        snprintf(path, sizeof path, "%s/input_grad.bin", dir);
        ok &= compare("input gradient", dx, nx, path, PARITY_GRADS_RTOL, 1);

        /* 3. the SGD steps meta.json asks for, full batch, from the same weights */
        if (sgd_steps > 0) {
            tsf_sgd opt = tsf_sgd_default();
            opt.momentum = (float)mom, opt.weight_decay = (float)wd, opt.nesterov = nesterov;
            for (k = 0; k < sgd_steps; k++) {
                tsf_model_zero_grad(&m);
                if (tsf_model_loss(&m, x, labels, (int)shape[0], (int)shape[2], (int)shape[3],
                                   (int)shape[4], 0, &loss) != TSF_OK ||
                    tsf_model_backward(&m, NULL) != TSF_OK ||
                    tsf_sgd_step(&m, &opt, (float)lr, 1, NULL) != TSF_OK) {
                    fprintf(stderr, "tsf parity: SGD step %d failed\n", k + 1);
                    goto done;
                }
            }
            snprintf(path, sizeof path, "%s/weights_sgd.safetensors", out);
            if (tsf_model_save(&m, path, &err) != TSF_OK) {
                fprintf(stderr, "tsf parity: %s\n", err.msg);
                goto done;
            }
            snprintf(path, sizeof path, "%s/weights_sgd.safetensors", dir);
            printf("  (%lld SGD steps, lr %g, momentum %g, weight decay %g%s)\n", sgd_steps, lr,
                   mom, wd, nesterov ? ", Nesterov" : "");
            ok &=
                compare_tensors("weights after SGD", &m, m.param_memory, path, PARITY_SGD_ATOL, 0);
        }
    }
    printf("  wrote %s/{logits.bin%s%s}\n", out, labels ? ",grads.safetensors,input_grad.bin" : "",
           labels && sgd_steps > 0 ? ",weights_sgd.safetensors" : "");
    printf("parity: %s\n", ok ? "OK" : "FAILED");
    ok = ok ? 2 : 1; /* 2: finished and within tolerance */
done:
    free(j.tok), free(meta);
    free(x), free(logits), free(dx), free(labels);
    tsf_model_free(&m);
    return ok == 2 ? 0 : 1;
}

/* The other commands, one file each, in this translation unit. */
#include "tsf_classify.c" /* tsf classify, tsf attention */
#include "tsf_train.c"    /* tsf train, tsf eval */

/* after tsf_train.c: it writes files with tr_create / tr_commit */
#include "tsf_export.c" /* tsf convert, tsf export */

/* after tsf_train.c: it runs cmd_train and ev_run */
#include "tsf_cv.c" /* tsf cv */

int main(int argc, char **argv) {
    tt_prog = "tsf";
    if (argc == 3 && strcmp(argv[1], "info") == 0) return cmd_info(argv[2]);
    if (argc == 5 && strcmp(argv[1], "parity") == 0 && strcmp(argv[3], "--out") == 0)
        return cmd_parity(argv[2], argv[4]);
    if (argc >= 2 && strcmp(argv[1], "train") == 0) return cmd_train(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "eval") == 0) return cmd_eval(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "cv") == 0) return cmd_cv(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "classify") == 0) return cmd_classify(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "attention") == 0) return cmd_attention(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "convert") == 0) return cmd_convert(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "export") == 0) return cmd_export(argc - 1, argv + 1);
    return usage();
}
