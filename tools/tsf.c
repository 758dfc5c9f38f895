/* tsf.c - the timesformer.h command-line program.

   Build:  make            (gives build/tsf)
           make MPI=1      (also build/tsf-mpi: train and eval over several processes with
                           MPI, tools/tsf_mpi.h; README "Several machines")
   Usage:
     tsf info MODEL                      what a model is: config, parameters, GFLOPs per clip,
                                         memory, preprocessing. MODEL is a .safetensors file,
                                         a torch.save checkpoint (.bin, .pth, .pyth), a Hugging
                                         Face model folder (config.json + model.safetensors or
                                         pytorch_model.bin, sharded or not) or a config.json.
     tsf convert IN OUT [--config C]     any of those to one safetensors file (tsf_export.c)
     tsf export MODEL DIR                a folder Hugging Face's from_pretrained loads
     tsf parity GOLDEN_DIR --out OUT_DIR run a golden folder (meta.json, weights.safetensors,
                                         input.bin, labels.bin; tests/golden/make_golden.py
                                         writes them) through this library: forward,
                                         backward and the SGD steps meta.json asks for.
                                         Writes logits.bin, grads.safetensors, input_grad.bin
                                         and weights_sgd.safetensors to OUT_DIR and compares
                                         each with the folder's. Exit status 1 beyond
                                         tolerance.

   Example:
     build/tsf parity tests/golden/divided_base --out /tmp/g_c
   prints the max abs/rel error of the logits, the gradients and the weights after SGD, and
   "parity: OK". */
#include "tsf_tools.h" /* the library, stb (unless TT_NO_STB), and the tools' helpers */

/* tsf parity's tolerances (docs/model.md section 9, Numerics and tolerances). Logits of a
   float32 implementation agree with the float64 reference to about 1e-7 on the tiny golden
   models and 2e-6 on ViT-B; 1e-5 flags real bugs. Gradients: 1e-4 of each tensor's max
   |value|; weights after the SGD steps: 1e-5 absolute. */
#define PARITY_LOGITS_ATOL 1e-5
#define PARITY_GRADS_RTOL 1e-4
#define PARITY_SGD_ATOL 1e-5

static int usage(void) {
    fprintf(stderr,
            "usage:\n"
            "  tsf info MODEL                       (.safetensors, .bin/.pth/.pyth, model folder\n"
            "                                        or config.json)\n"
            "  tsf parity GOLDEN_DIR --out OUT_DIR  (a folder from tests/golden/make_golden.py)\n"
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
    printf("pos_embed    %s (%s)\n", tsf_pos_embed_name(cfg.pos_embed),
           cfg.pos_embed == TSF_POS_SPACE  ? "a position embedding, no time embedding"
           : cfg.pos_embed == TSF_POS_NONE ? "neither position nor time embedding"
                                           : "position and time embeddings");
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
    printf("parameters   %s\n", tt_commas(tsf_config_num_params(&cfg), buf));
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
    float *ref = (float *)tt_read_file(ref_path, (size_t)-1, &size);
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
        void *file = tt_read_file(ref_path, (size_t)-1, &size);
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

/* ---- tsf parity ---------------------------------------------------------------------------- */

/* What a golden folder's meta.json asks for: the input's shape and, with an "sgd" entry, SGD
   steps on the whole batch. */
typedef struct parity_meta {
    long long shape[5]; /* B, C, T, H, W */
    long long sgd_steps;
    double lr, momentum, weight_decay;
    int nesterov;
} parity_meta;

/* A parity run: the folder, what it asks for, the model, the input and the verdict so far. */
typedef struct parity_run {
    const char *dir, *out;
    char path[4096]; /* the file at hand */
    parity_meta meta;
    tsf_model m;
    float *x; /* the input, nx floats */
    size_t nx;
    int *labels;   /* labels.bin as read (NULL: none) */
    int have_grad; /* labels.bin holds B labels: backward and SGD are checked */
    int ok;        /* every comparison so far within tolerance */
} parity_run;

/* DIR/meta.json: input_shape [B, C, T, H, W] (5 sizes, at most 2^30 values) and the optional
   "sgd" entry (steps, lr, momentum, weight_decay, nesterov). Returns 1, or 0 after an error. */
static int parity_read_meta(parity_run *p) {
    parity_meta *pm = &p->meta;
    size_t size = 0;
    double elems = 1;
    char *text;
    const char *root, *input, *sgd, *v;
    int k, ok = 0;
    pm->nesterov = 1;
    snprintf(p->path, sizeof p->path, "%s/meta.json", p->dir);
    if (!(text = tt_read_file(p->path, (size_t)-1, &size))) {
        fprintf(stderr, "tsf parity: cannot read %s\n", p->path);
        return 0;
    }
    if (!tt_json_check(text, size)) {
        fprintf(stderr, "tsf parity: %s is not valid JSON\n", p->path);
        goto done;
    }
    root = tt_json_ws(text);
    input = tt_json_get(root, "input_shape");
    for (k = 0; k < 5; k++)
        if (!tt_json_int(tt_json_at(input, k), 1, 1 << 20, &pm->shape[k]) ||
            tt_json_count(input) != 5 || (elems *= (double)pm->shape[k]) > (double)(1 << 30)) {
            fprintf(stderr,
                    "tsf parity: %s: no valid input_shape [B, C, T, H, W] (5 sizes, at "
                    "most 2^30 values)\n",
                    p->path);
            goto done;
        }
    sgd = tt_json_get(root, "sgd");
    if (sgd && !(tt_json_int(tt_json_get(sgd, "steps"), 1, 1 << 20, &pm->sgd_steps) &&
                 tt_json_num(tt_json_get(sgd, "lr"), &pm->lr) &&
                 tt_json_num(tt_json_get(sgd, "momentum"), &pm->momentum) &&
                 tt_json_num(tt_json_get(sgd, "weight_decay"), &pm->weight_decay))) {
        fprintf(stderr, "tsf parity: %s: malformed \"sgd\" entry\n", p->path);
        goto done;
    }
    if (sgd && (v = tt_json_get(sgd, "nesterov")) != NULL && !tt_json_bool(v, &pm->nesterov)) {
        fprintf(stderr, "tsf parity: %s: sgd.nesterov must be true or false\n", p->path);
        goto done;
    }
    ok = 1;
done:
    free(text);
    return ok;
}

/* The folder's weights and input; OUT made. Returns 1, or 0 after an error. */
static int parity_load(parity_run *p) {
    const long long *shape = p->meta.shape;
    size_t size = 0;
    tsf_error err;
    tsf_status st;
    snprintf(p->path, sizeof p->path, "%s/weights.safetensors", p->dir);
    if ((st = tsf_model_load(&p->m, p->path, (int)shape[0], &err)) != TSF_OK) {
        fprintf(stderr, "tsf parity: %s (%s)\n", err.msg, tsf_status_string(st));
        return 0;
    }
    if (shape[1] != p->m.cfg.channels) {
        fprintf(stderr, "tsf parity: input has %lld channels, the model %d\n", shape[1],
                p->m.cfg.channels);
        return 0;
    }
    snprintf(p->path, sizeof p->path, "%s/input.bin", p->dir);
    p->nx = (size_t)(shape[0] * shape[1] * shape[2] * shape[3] * shape[4]);
    if (!(p->x = (float *)tt_read_file(p->path, (size_t)-1, &size)) ||
        size != p->nx * sizeof(float)) {
        fprintf(stderr, "tsf parity: %s: missing, or not %zu float32 values [B,C,T,H,W]\n", p->path,
                p->nx);
        return 0;
    }
    if (mkdir(p->out, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "tsf parity: cannot create %s: %s\n", p->out, strerror(errno));
        return 0;
    }
    printf("parity: %s, %s, input %lldx%lldx%lldx%lldx%lld, %s matmul\n", p->dir,
           tsf_attention_name(p->m.cfg.attention), shape[0], shape[1], shape[2], shape[3], shape[4],
           tsf_simd_name());
    return 1;
}

/* 1. forward: the logits. Returns 0 when it cannot run (a failed comparison only clears
   p->ok). */
static int parity_forward(parity_run *p) {
    const long long *shape = p->meta.shape;
    size_t n = (size_t)shape[0] * p->m.cfg.classes;
    float *logits = (float *)malloc(sizeof(float) * n);
    tsf_status st = tsf_model_forward(&p->m, p->x, (int)shape[0], (int)shape[2], (int)shape[3],
                                      (int)shape[4], logits);
    int ran = 0;
    if (!logits || st != TSF_OK) {
        fprintf(stderr, "tsf parity: forward failed: %s\n", tsf_status_string(st));
    } else {
        snprintf(p->path, sizeof p->path, "%s/logits.bin", p->out);
        if ((ran = write_floats(p->path, logits, n)) != 0) {
            snprintf(p->path, sizeof p->path, "%s/logits.bin", p->dir);
            p->ok &= compare("logits", logits, n, p->path, PARITY_LOGITS_ATOL, 0);
        }
    }
    free(logits);
    return ran;
}

/* Model m's gradients saved as a weights file at path: the saver reads m->params. */
static tsf_status parity_save_grads(tsf_model *m, const char *path, tsf_error *err) {
    tsf_params params = m->params;
    float *params_memory = m->param_memory;
    tsf_status st;
    m->params = m->grads, m->param_memory = m->grad_memory;
    st = tsf_model_save(m, path, err);
    m->params = params, m->param_memory = params_memory;
    return st;
}

/* 2. backward, when the folder has labels.bin: every parameter's gradient and the input's,
   for the mean cross-entropy. Returns 0 when it cannot run. */
static int parity_backward(parity_run *p) {
    const long long *shape = p->meta.shape;
    size_t size = 0;
    float *dx, loss;
    tsf_error err;
    int ran = 0;
    snprintf(p->path, sizeof p->path, "%s/labels.bin", p->dir);
    p->labels = (int *)tt_read_file(p->path, (size_t)-1, &size);
    p->have_grad = p->labels && size == (size_t)shape[0] * sizeof(int);
    if (!p->have_grad) return 1;
    dx = (float *)calloc(p->nx, sizeof(float));
    if (!dx || tsf_model_train_init(&p->m) != TSF_OK ||
        tsf_model_loss(&p->m, p->x, p->labels, (int)shape[0], (int)shape[2], (int)shape[3],
                       (int)shape[4], 0, &loss) != TSF_OK ||
        tsf_model_backward(&p->m, dx) != TSF_OK) {
        fprintf(stderr, "tsf parity: backward failed\n");
        goto done;
    }
    printf("  %-18s %.9g\n", "loss", (double)loss);
    snprintf(p->path, sizeof p->path, "%s/grads.safetensors", p->out);
    if (parity_save_grads(&p->m, p->path, &err) != TSF_OK) {
        fprintf(stderr, "tsf parity: %s\n", err.msg);
        goto done;
    }
    snprintf(p->path, sizeof p->path, "%s/input_grad.bin", p->out);
    if (!write_floats(p->path, dx, p->nx)) goto done;
    snprintf(p->path, sizeof p->path, "%s/grads.safetensors", p->dir);
    p->ok &= compare_tensors("gradients", &p->m, p->m.grad_memory, p->path, PARITY_GRADS_RTOL, 1);
    snprintf(p->path, sizeof p->path, "%s/input_grad.bin", p->dir);
    p->ok &= compare("input gradient", dx, p->nx, p->path, PARITY_GRADS_RTOL, 1);
    ran = 1;
done:
    free(dx);
    return ran;
}

/* 3. the SGD steps meta.json asks for, full batch, from the same weights. Returns 0 when they
   cannot run. */
static int parity_sgd(parity_run *p) {
    const parity_meta *pm = &p->meta;
    const long long *shape = pm->shape;
    tsf_sgd opt = tsf_sgd_default();
    tsf_error err;
    float loss;
    int k;
    if (!p->have_grad || pm->sgd_steps <= 0) return 1;
    opt.momentum = (float)pm->momentum, opt.weight_decay = (float)pm->weight_decay;
    opt.nesterov = pm->nesterov;
    for (k = 0; k < pm->sgd_steps; k++) {
        tsf_model_zero_grad(&p->m);
        if (tsf_model_loss(&p->m, p->x, p->labels, (int)shape[0], (int)shape[2], (int)shape[3],
                           (int)shape[4], 0, &loss) != TSF_OK ||
            tsf_model_backward(&p->m, NULL) != TSF_OK ||
            tsf_sgd_step(&p->m, &opt, (float)pm->lr, 1, NULL) != TSF_OK) {
            fprintf(stderr, "tsf parity: SGD step %d failed\n", k + 1);
            return 0;
        }
    }
    snprintf(p->path, sizeof p->path, "%s/weights_sgd.safetensors", p->out);
    if (tsf_model_save(&p->m, p->path, &err) != TSF_OK) {
        fprintf(stderr, "tsf parity: %s\n", err.msg);
        return 0;
    }
    snprintf(p->path, sizeof p->path, "%s/weights_sgd.safetensors", p->dir);
    printf("  (%lld SGD steps, lr %g, momentum %g, weight decay %g%s)\n", pm->sgd_steps, pm->lr,
           pm->momentum, pm->weight_decay, pm->nesterov ? ", Nesterov" : "");
    p->ok &=
        compare_tensors("weights after SGD", &p->m, p->m.param_memory, p->path, PARITY_SGD_ATOL, 0);
    return 1;
}

/* tsf parity DIR --out OUT (the top comment). Exit status 0 when every comparison is within
   tolerance, 1 otherwise or after an error. */
static int cmd_parity(const char *dir, const char *out) {
    parity_run p;
    int rc = 1;
    memset(&p, 0, sizeof p);
    p.dir = dir, p.out = out, p.ok = 1;
    if (parity_read_meta(&p) && parity_load(&p) && parity_forward(&p) && parity_backward(&p) &&
        parity_sgd(&p)) {
        printf("  wrote %s/{logits.bin%s%s}\n", out,
               p.labels ? ",grads.safetensors,input_grad.bin" : "",
               p.labels && p.meta.sgd_steps > 0 ? ",weights_sgd.safetensors" : "");
        printf("parity: %s\n", p.ok ? "OK" : "FAILED");
        rc = p.ok ? 0 : 1;
    }
    free(p.x), free(p.labels);
    tsf_model_free(&p.m);
    return rc;
}

/* The other commands, one file each, in this translation unit. */
/* before tsf_train.c: tsf train --init-from reads its source with it */
#include "tsf_init.c" /* tsf train --init-from */

#include "tsf_train.c" /* tsf train, tsf eval */

/* after tsf_train.c: it reads a run's args.txt as tsf eval does */
#include "tsf_classify.c" /* tsf classify, tsf attention */

/* after tsf_train.c: it writes files with tr_create / tr_commit */
#include "tsf_export.c" /* tsf convert, tsf export */

/* after tsf_train.c: it runs cmd_train and ev_run */
#include "tsf_cv.c" /* tsf cv */

static int tsf_main(int argc, char **argv) {
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

/* build/tsf-mpi: MPI around the command (tools/tsf_mpi.h); build/tsf: the command alone. */
int main(int argc, char **argv) {
    int rc;
    tt_omp_passive(argv); /* OMP_WAIT_POLICY=passive unless set (tsf_tools.h) */
    tt_prog = "tsf";
    dp_init(&argc, &argv);
    rc = dp_command_ok(argc, argv) ? tsf_main(argc, argv) : 2;
    dp_finish();
    return rc;
}
