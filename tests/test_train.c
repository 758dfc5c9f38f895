/* test_train.c - training: gradients against the golden sets, SGD steps against the golden
   sets and against torch.optim.SGD's formulas, central finite differences of the whole model,
   stochastic depth, gradient accumulation, learning-rate schedules, checkpoints (bit-identical
   resume, atomic writes), NaN/Inf, thread determinism and an overfit test.
   Included by test_main.c after test_model.c, whose helpers it uses (tm_read, tm_read_floats,
   tm_load_golden, tm_sets, tm_tmp, tm_to_double, tm_same_params, ...).

   Golden sets (tests/golden/NAME/, from tests/golden/make_golden.py): grads.safetensors (d mean
   loss / d parameter, the weights' names and shapes), input_grad.bin, labels.bin (int32) and,
   for the *_base sets, weights_sgd.safetensors (3 full-batch steps of torch.optim.SGD, lr 0.005,
   momentum 0.9, weight decay 1e-4, Nesterov) with the losses in meta.json.

   Every model a test creates is freed on every path (the ASan build checks for leaks). */

#define TT_GRAD_RTOL 1e-4 /* golden gradients: of each tensor's max-abs value */
#define TT_LOSS_ATOL 1e-5 /* golden losses */
#define TT_SGD_ATOL 1e-5  /* golden weights after SGD steps */
#define TT_FD_RTOL 1e-2   /* finite differences: of the sampled vector's max-abs value */
#define TT_FD_ATOL 1e-6
#define TT_FD_ENTRY_ATOL 3e-5 /* finite differences, entry by entry: 5 ulps of the loss */

/* ---- helpers --------------------------------------------------------------------------------- */

/* The gradient (or momentum) of the parameter at p: the same offset in the other buffer. */
static float *tt_grad(const tsf_model *m, const float *p) {
    return m->grad_memory + (p - m->param_memory);
}
static float *tt_mom(const tsf_model *m, const float *p) {
    return m->momentum_memory + (p - m->param_memory);
}

/* n numbers following key in a JSON text ("loss": 1.72, "losses": [1, 2, ...]); 0 if absent. */
static int tt_json_nums(const char *txt, const char *key, double *out, int n) {
    const char *p = strstr(txt, key);
    int i;
    if (!p) return 0;
    p += strlen(key);
    for (i = 0; i < n; i++) {
        char *end;
        while (*p && !(*p >= '0' && *p <= '9') && *p != '-') p++;
        if (!*p) return 0;
        out[i] = strtod(p, &end);
        if (end == p) return 0;
        p = end;
    }
    return 1;
}

/* A config of the given shape (mlp_ratio 2, the other fields default). */
static tsf_config tt_cfg(int attention, int image, int patch, int frames, int dim, int depth,
                         int heads, int classes) {
    tsf_config c;
    memset(&c, 0, sizeof c);
    c.image_size = image, c.patch_size = patch, c.channels = 3, c.frames = frames, c.dim = dim;
    c.depth = depth, c.heads = heads, c.mlp_ratio = 2.0f, c.classes = classes;
    c.attention = attention;
    return c;
}

/* Add scale * normal noise to every parameter, so that no tensor is zero (time_embed and
   temporal_fc start at zero) and every path of the model carries gradient. */
static void tt_perturb(tsf_model *m, unsigned long long seed, float scale) {
    int nt = tsf_model_num_tensors(m), i, k, ndim;
    tsf_rng r;
    tsf_rng_seed(&r, seed);
    for (i = 0; i < nt; i++) {
        char name[96];
        long long shape[4];
        size_t n = 1, j;
        float *data;
        tsf_model_tensor(m, i, name, &ndim, shape, &data);
        for (k = 0; k < ndim; k++) n *= (size_t)shape[k];
        for (j = 0; j < n; j++) data[j] += scale * tsf_rng_normal(&r);
    }
}

/* Random clips and labels. */
static void tt_batch(tsf_rng *r, float *x, size_t nx, int *labels, int B, int K) {
    size_t i;
    int b;
    for (i = 0; i < nx; i++) x[i] = tsf_rng_normal(r);
    for (b = 0; b < B; b++) labels[b] = (int)(tsf_rng_u32(r) % (unsigned)K);
}

static int *tt_labels(int B) { return (int *)tsft_alloc_bytes((size_t)B * sizeof(int)); }

/* One training step: clear, loss, backward, SGD. 0 on success. */
static int tt_step(tsf_model *m, const float *x, const int *labels, int B, int T, int H, int W,
                   const tsf_sgd *o, float lr, float *loss) {
    tsf_status st;
    tsf_model_zero_grad(m);
    if ((st = tsf_model_loss(m, x, labels, B, T, H, W, 1, loss)) != TSF_OK ||
        (st = tsf_model_backward(m, NULL)) != TSF_OK || (st = tsf_sgd_step(m, o, lr, 1, NULL)))
        printf("    training step: %s\n", tsf_status_string(st));
    return st != TSF_OK;
}

/* 1 when two buffers laid out as m's parameters hold the same bits in every tensor (the
   alignment padding between tensors is not compared: files do not hold it). */
static int tt_same_tensors(const tsf_model *m, const float *a, const float *b) {
    int nt = tsf_model_num_tensors(m), i, k, ndim;
    for (i = 0; i < nt; i++) {
        char name[96];
        long long shape[4];
        float *data;
        size_t n = 1, off;
        tsf_model_tensor(m, i, name, &ndim, shape, &data);
        for (k = 0; k < ndim; k++) n *= (size_t)shape[k];
        off = (size_t)(data - m->param_memory);
        if (!same_bits(a + off, b + off, n)) {
            printf("    %s differs\n", name);
            return 0;
        }
    }
    return 1;
}

/* 1 when the parameters and momentum buffers of a and b (same config) have the same bits. */
static int tt_same_state(const tsf_model *a, const tsf_model *b) {
    int nt = tsf_model_num_tensors(a), i, k, ndim;
    if (!tm_same_params(a, b)) return 0;
    for (i = 0; i < nt; i++) {
        char name[96];
        long long shape[4];
        float *da, *db;
        size_t n = 1;
        tsf_model_tensor(a, i, name, &ndim, shape, &da);
        tsf_model_tensor(b, i, name, &ndim, shape, &db);
        for (k = 0; k < ndim; k++) n *= (size_t)shape[k];
        if (!same_bits(tt_mom(a, da), tt_mom(b, db), n)) {
            printf("    momentum of %s differs\n", name);
            return 0;
        }
    }
    return 1;
}

/* ---- golden sets: gradients ------------------------------------------------------------------ */

/* A golden set loaded for training: the weights' model (training set up), the reference
   gradients as a model of the same config, the clip, labels, input gradient and meta.json. */
typedef struct tt_gold {
    tsf_model m, ref;
    float *x, *dx_want;
    int *labels;
    char *meta;
    size_t nx;
    int B, T, H, W;
} tt_gold;

static void tt_gold_free(tt_gold *g) {
    tsf_model_free(&g->m);
    tsf_model_free(&g->ref);
}

/* Load set `which` of tm_sets; 1 on success. On failure the models are freed. */
static int tt_gold_open(tt_gold *g, int which) {
    const tm_golden *s = &tm_sets[which];
    char path[256];
    unsigned char *grads, *labels;
    size_t gsize = 0, lsize = 0;
    tsf_error err;
    tsf_status st;
    memset(g, 0, sizeof *g);
    g->B = s->B, g->T = s->T, g->H = s->H, g->W = s->W;
    g->nx = (size_t)g->B * 3 * g->T * g->H * g->W;
    tm_golden_path(path, sizeof path, s->name, "input.bin");
    g->x = tm_read_floats(path, g->nx);
    tm_golden_path(path, sizeof path, s->name, "input_grad.bin");
    g->dx_want = tm_read_floats(path, g->nx);
    tm_golden_path(path, sizeof path, s->name, "meta.json");
    g->meta = (char *)tm_read(path, NULL);
    tm_golden_path(path, sizeof path, s->name, "labels.bin");
    labels = tm_read(path, &lsize);
    tm_golden_path(path, sizeof path, s->name, "grads.safetensors");
    grads = tm_read(path, &gsize);
    if (!CHECK(g->x && g->dx_want && g->meta && labels && grads)) return 0;
    if (!CHECK_EQ_INT(lsize, (size_t)g->B * 4)) return 0;
    g->labels = (int *)labels; /* int32, little-endian like the host */
    if (!CHECK(tm_load_golden(&g->m, s->name, g->B))) return 0;
    memset(&err, 0, sizeof err);
    st = tsf_model_load_memory(&g->ref, grads, gsize, &g->m.cfg, 0, &err);
    if (!CHECK_EQ_INT(st, TSF_OK) || !CHECK_EQ_INT(tsf_model_train_init(&g->m), TSF_OK)) {
        printf("    %s/grads.safetensors: %s\n", s->name, err.msg);
        tt_gold_free(g);
        return 0;
    }
    return 1;
}

/* Every parameter gradient of m against the reference model's tensors, each within rtol of
   that tensor's max-abs value, with the expected values want = k * ref. */
static int tt_check_grads(const tsf_model *m, const tsf_model *ref, double k, double rtol,
                          const char *set) {
    int nt = tsf_model_num_tensors(m), i, d, ndim, rdim, ok = 1;
    for (i = 0; i < nt; i++) {
        char name[96], rname[96];
        long long shape[4], rshape[4];
        float *w, *r;
        size_t n = 1;
        tsf_model_tensor(m, i, name, &ndim, shape, &w);
        tsf_model_tensor(ref, i, rname, &rdim, rshape, &r);
        if (!CHECK(strcmp(name, rname) == 0 && ndim == rdim)) return 0;
        for (d = 0; d < ndim; d++) n *= (size_t)shape[d];
        if (!CHECK_VEC_REL(tt_grad(m, w), expect_acc(NULL, tm_to_double(r, n), k, n), n, rtol,
                           1e-10)) {
            printf("    %s: gradient of %s\n", set, name);
            ok = 0;
        }
    }
    return ok;
}

/* Loss and every gradient against the golden set; then a second loss + backward without
   clearing doubles every gradient (backward accumulates), and zero_grad clears them. */
static void tt_golden_grads(int which) {
    const char *set = tm_sets[which].name;
    tt_gold g;
    float loss = 0.0f, loss2 = 0.0f, *dx, *g1;
    double want_loss = 0.0;
    size_t i, nz = 0;
    if (!tt_gold_open(&g, which)) return;
    dx = tsft_alloc(g.nx);
    CHECK(tt_json_nums(g.meta, "\"loss\"", &want_loss, 1));
    CHECK(g.m.drop_path == 0.0f && g.m.label_smoothing == 0.0f);
    if (!CHECK_EQ_INT(tsf_model_loss(&g.m, g.x, g.labels, g.B, g.T, g.H, g.W, 1, &loss), TSF_OK) ||
        !CHECK_EQ_INT(tsf_model_backward(&g.m, dx), TSF_OK))
        goto done;
    CHECK_NEAR(loss, want_loss, TT_LOSS_ATOL, 0);
    if (!tt_check_grads(&g.m, &g.ref, 1.0, TT_GRAD_RTOL, set)) printf("    (set %s)\n", set);
    if (!CHECK_VEC_REL(dx, tm_to_double(g.dx_want, g.nx), g.nx, TT_GRAD_RTOL, 1e-10))
        printf("    %s: input gradient\n", set);

    /* again without zero_grad: the same loss, twice the gradients */
    g1 = fcopy(g.m.grad_memory, g.m.param_floats);
    CHECK_EQ_INT(tsf_model_loss(&g.m, g.x, g.labels, g.B, g.T, g.H, g.W, 1, &loss2), TSF_OK);
    CHECK(loss2 == loss);
    CHECK_EQ_INT(tsf_model_backward(&g.m, dx), TSF_OK);
    CHECK_VEC_REL(g.m.grad_memory,
                  expect_acc(NULL, tm_to_double(g1, g.m.param_floats), 2.0, g.m.param_floats),
                  g.m.param_floats, 1e-5, 0);
    tt_check_grads(&g.m, &g.ref, 2.0, TT_GRAD_RTOL, set);
    CHECK_VEC_REL(dx, expect_acc(NULL, tm_to_double(g.dx_want, g.nx), 2.0, g.nx), g.nx,
                  TT_GRAD_RTOL, 1e-10);
    tsf_model_zero_grad(&g.m);
    for (i = 0; i < g.m.param_floats; i++) nz += g.m.grad_memory[i] != 0.0f;
    CHECK_EQ_INT(nz, 0);
done:
    tt_gold_free(&g);
}

static void test_train_golden_grads_space_base(void) { tt_golden_grads(0); }
static void test_train_golden_grads_joint_base(void) { tt_golden_grads(1); }
static void test_train_golden_grads_divided_base(void) { tt_golden_grads(2); }
static void test_train_golden_grads_space_resized(void) { tt_golden_grads(3); }
static void test_train_golden_grads_joint_resized(void) { tt_golden_grads(4); }
static void test_train_golden_grads_divided_resized(void) { tt_golden_grads(5); }
static void test_train_golden_grads_divided_samecount(void) { tt_golden_grads(6); }
static void test_train_golden_grads_local_global_base(void) { tt_golden_grads(7); }
static void test_train_golden_grads_local_global_resized(void) { tt_golden_grads(8); }
static void test_train_golden_grads_local_global_odd(void) { tt_golden_grads(9); }
static void test_train_golden_grads_axial_base(void) { tt_golden_grads(10); }
static void test_train_golden_grads_axial_resized(void) { tt_golden_grads(11); }
static void test_train_golden_grads_axial_odd(void) { tt_golden_grads(12); }
static void test_train_golden_grads_space_pos_space(void) { tt_golden_grads(13); }
static void test_train_golden_grads_space_pos_none(void) { tt_golden_grads(14); }
static void test_train_golden_grads_joint_pos_space(void) { tt_golden_grads(15); }
static void test_train_golden_grads_joint_pos_none(void) { tt_golden_grads(16); }
static void test_train_golden_grads_divided_pos_space(void) { tt_golden_grads(17); }
static void test_train_golden_grads_divided_pos_none(void) { tt_golden_grads(18); }
static void test_train_golden_grads_local_global_pos_space(void) { tt_golden_grads(19); }
static void test_train_golden_grads_local_global_pos_none(void) { tt_golden_grads(20); }
static void test_train_golden_grads_axial_pos_space(void) { tt_golden_grads(21); }
static void test_train_golden_grads_axial_pos_none(void) { tt_golden_grads(22); }

/* ---- golden sets: SGD steps ------------------------------------------------------------------ */

/* 3 full-batch steps of the paper's SGD: the loss before each step and after the last, and
   the weights at the end, against the reference. */
static void tt_golden_sgd(int which) {
    const char *set = tm_sets[which].name;
    char path[256];
    tt_gold g;
    tsf_model want;
    tsf_sgd o = tsf_sgd_default();
    tsf_error err;
    double losses[4], lr = 0.0, mom = 0.0, wd = 0.0;
    unsigned char *file;
    size_t size = 0;
    float loss = 0.0f;
    int k, nt, i, d, ndim;
    memset(&want, 0, sizeof want);
    if (!tt_gold_open(&g, which)) return;
    tm_golden_path(path, sizeof path, set, "weights_sgd.safetensors");
    file = tm_read(path, &size);
    if (!CHECK(file != NULL) ||
        !CHECK(tt_json_nums(g.meta, "\"losses_before_each_step_and_after\"", losses, 4)) ||
        !CHECK(tt_json_nums(g.meta, "\"lr\"", &lr, 1)) ||
        !CHECK(tt_json_nums(g.meta, "\"momentum\"", &mom, 1)) ||
        !CHECK(tt_json_nums(g.meta, "\"weight_decay\"", &wd, 1)) ||
        !CHECK(strstr(g.meta, "\"nesterov\": true") != NULL))
        goto done;
    /* the reference ran the paper's optimiser, which is tsf_sgd_default() */
    CHECK(lr == 0.005 && (float)mom == o.momentum && (float)wd == o.weight_decay && o.nesterov);
    CHECK(o.no_decay_embeddings_norms_biases == 0 && o.clip_norm == 0.0f);
    memset(&err, 0, sizeof err);
    if (!CHECK_EQ_INT(tsf_model_load_memory(&want, file, size, &g.m.cfg, 0, &err), TSF_OK)) {
        printf("    %s: %s\n", path, err.msg);
        goto done;
    }
    for (k = 0; k < 3; k++) {
        if (tt_step(&g.m, g.x, g.labels, g.B, g.T, g.H, g.W, &o, (float)lr, &loss)) goto done;
        if (!CHECK_NEAR(loss, losses[k], TT_LOSS_ATOL, 0)) printf("    %s: step %d\n", set, k);
    }
    CHECK_EQ_INT(g.m.sgd_steps, 3);
    CHECK_EQ_INT(tsf_model_loss(&g.m, g.x, g.labels, g.B, g.T, g.H, g.W, 0, &loss), TSF_OK);
    CHECK_NEAR(loss, losses[3], TT_LOSS_ATOL, 0);
    nt = tsf_model_num_tensors(&g.m);
    for (i = 0; i < nt; i++) {
        char name[96];
        long long shape[4];
        float *w, *r;
        size_t n = 1;
        tsf_model_tensor(&g.m, i, name, &ndim, shape, &w);
        tsf_model_tensor(&want, i, name, &ndim, shape, &r);
        for (d = 0; d < ndim; d++) n *= (size_t)shape[d];
        if (!CHECK_ARRAY_NEAR(w, tm_to_double(r, n), n, TT_SGD_ATOL, 0))
            printf("    %s: weights %s after 3 steps\n", set, name);
    }
done:
    tsf_model_free(&want);
    tt_gold_free(&g);
}

static void test_train_golden_sgd_space(void) { tt_golden_sgd(0); }
static void test_train_golden_sgd_joint(void) { tt_golden_sgd(1); }
static void test_train_golden_sgd_divided(void) { tt_golden_sgd(2); }
static void test_train_golden_sgd_local_global(void) { tt_golden_sgd(7); }
static void test_train_golden_sgd_axial(void) { tt_golden_sgd(10); }

/* ---- finite differences of the whole model --------------------------------------------------- */

/* The mean loss as a function of the parameters and the input, in double from the per-clip
   losses. With train = 1 the generator is reset to rng0 first, so every evaluation draws
   the same drop-path mask. */
typedef struct tt_fd {
    tsf_model *m;
    float *x;
    const int *labels;
    int B, T, H, W, train;
    tsf_rng rng0;
} tt_fd;

static double tt_fd_loss(tt_fd *f) {
    double s = 0.0;
    float loss;
    int b;
    tsf_status st;
    if (f->train) f->m->rng = f->rng0;
    st = tsf_model_loss(f->m, f->x, f->labels, f->B, f->T, f->H, f->W, f->train, &loss);
    if (st != TSF_OK) return (double)NAN;
    for (b = 0; b < f->B; b++) s += (double)f->m->acts.losses[b];
    return s / f->B;
}

/* d loss / d *p by central differences in float (the actual float step). */
static double tt_fd_at(tt_fd *f, float *p, float eps) {
    float p0 = *p, pp, pm;
    double lp, lm;
    *p = p0 + eps, pp = *p, lp = tt_fd_loss(f);
    *p = p0 - eps, pm = *p, lm = tt_fd_loss(f);
    *p = p0;
    return (lp - lm) / ((double)pp - (double)pm);
}

/* The analytic gradient (one loss + backward) against central differences at two random
   entries of every tensor and at 10 input entries. Returns the largest |fd| seen. */
static double tt_fd_check(tt_fd *f, const char *what) {
    tsf_model *m = f->m;
    int nt = tsf_model_num_tensors(m), i, k, ndim, rep, n = 0;
    size_t nx = (size_t)f->B * m->cfg.channels * f->T * f->H * f->W, j;
    float *dx = tsft_alloc(nx), *ana = tsft_alloc((size_t)2 * nt + 10), *g0;
    double *fd = tsft_allocd((size_t)2 * nt + 10), maxfd = 0.0;
    tsf_rng pick;
    float loss;
    tsf_model_zero_grad(m);
    if (f->train) m->rng = f->rng0;
    if (!CHECK_EQ_INT(tsf_model_loss(m, f->x, f->labels, f->B, f->T, f->H, f->W, f->train, &loss),
                      TSF_OK) ||
        !CHECK_EQ_INT(tsf_model_backward(m, dx), TSF_OK))
        return 0.0;
    g0 = fcopy(m->grad_memory, m->param_floats); /* the analytic gradient */
    tsf_rng_seed(&pick, 77);
    for (i = 0; i < nt; i++) {
        char name[96];
        long long shape[4];
        float *data;
        size_t numel = 1;
        tsf_model_tensor(m, i, name, &ndim, shape, &data);
        for (k = 0; k < ndim; k++) numel *= (size_t)shape[k];
        for (rep = 0; rep < 2; rep++) {
            j = tsf_rng_u32(&pick) % numel;
            ana[n] = g0[(data - m->param_memory) + (ptrdiff_t)j];
            fd[n++] = tt_fd_at(f, data + j, 1e-2f);
        }
    }
    for (k = 0; k < 10; k++) {
        j = tsf_rng_u32(&pick) % nx;
        ana[n] = dx[j];
        fd[n++] = tt_fd_at(f, f->x + j, 1e-1f); /* inputs ~ N(0, 1), small gradients */
    }
    for (k = 0; k < n; k++) maxfd = fabs(fd[k]) > maxfd ? fabs(fd[k]) : maxfd;
    if (!CHECK_VEC_REL(ana, fd, n, TT_FD_RTOL, TT_FD_ATOL)) printf("    %s\n", what);
    /* and the input part on its own (its entries are smaller than the head's gradients) */
    if (!CHECK_VEC_REL(ana + n - 10, fd + n - 10, 10, TT_FD_RTOL, TT_FD_ATOL))
        printf("    %s: input entries\n", what);
    /* and entry by entry, so that a small gradient deep in the model cannot hide behind the
       head's large ones: one ulp of the float loss is ~6e-6 of a difference quotient here */
    if (!CHECK_ARRAY_NEAR(ana, fd, n, TT_FD_ENTRY_ATOL, TT_FD_RTOL))
        printf("    %s: entrywise\n", what);
    return maxfd;
}

/* A tiny model of one variant with every parameter perturbed; FD at the config's clip shape,
   then at a clip of another frame count and size (T 3, 12 x 8: resized position and time
   embeddings whose rows are read several times), with label smoothing. */
static void tt_fd_variant(int attention) {
    tsf_config cfg = tt_cfg(attention, 8, 4, 2, 12, 2, 2, 3);
    tsf_model m;
    tt_fd f;
    tsf_rng r;
    char what[128];
    int shape, B = 2;
    memset(&m, 0, sizeof m);
    if (!CHECK_EQ_INT(tsf_model_init(&m, &cfg, B, 11), TSF_OK)) return;
    tt_perturb(&m, 12, 0.1f);
    if (!CHECK_EQ_INT(tsf_model_train_init(&m), TSF_OK)) goto done;
    tsf_rng_seed(&r, 13);
    for (shape = 0; shape < 2; shape++) {
        int T = shape ? 3 : 2, H = shape ? 12 : 8, W = 8;
        int *labels = tt_labels(B);
        size_t nx = (size_t)B * 3 * T * H * W;
        float *x = tsft_alloc(nx);
        tt_batch(&r, x, nx, labels, B, cfg.classes);
        memset(&f, 0, sizeof f);
        f.m = &m, f.x = x, f.labels = labels, f.B = B, f.T = T, f.H = H, f.W = W;
        m.label_smoothing = shape ? 0.1f : 0.0f;
        snprintf(what, sizeof what, "%s, clip %dx%dx%d", tsf_attention_name(attention), T, H, W);
        CHECK(tt_fd_check(&f, what) > 1e-2); /* the check saw real gradients */
    }
done:
    tsf_model_free(&m);
}

static void test_train_fd_space(void) { tt_fd_variant(TSF_ATTN_SPACE); }
static void test_train_fd_joint(void) { tt_fd_variant(TSF_ATTN_JOINT); }
static void test_train_fd_divided(void) { tt_fd_variant(TSF_ATTN_DIVIDED); }

/* ---- stochastic depth ------------------------------------------------------------------------ */

/* Block l's drop-path scales of the last forward pass, and how many there are. */
static float *tt_keep(const tsf_model *m, int l, size_t *n) {
    tsf__shape s = tsf__shape_of(&m->cfg, m->B, m->T, m->H, m->W);
    *n = (size_t)((s.Rt ? (long)s.B * s.N : 0) + s.SA + s.SM);
    return tsf__layer_acts(&m->acts, &m->cfg, &s, l).keep;
}

/* Same seed, same draws: bit-identical losses and gradients; train = 0 ignores drop_path and
   leaves the generator alone; drops change the loss; with the mask held fixed the gradient
   still matches finite differences. For every variant. */
static void test_train_drop_path(void) {
    int a;
    for (a = 0; a < 3; a++) {
        tsf_config cfg = tt_cfg(a, 8, 4, 2, 12, 2, 2, 3);
        tsf_model m1, m2;
        tsf_rng r, rng_before;
        int B = 2, T = 2, H = 8, W = 8, k, differs = 0, dropped, kept;
        size_t nx = (size_t)B * 3 * T * H * W, nk, i;
        float *x = tsft_alloc(nx), *dx1 = tsft_alloc(nx), *dx2 = tsft_alloc(nx), l1, l2, l0, lt;
        float *keep;
        int *labels = tt_labels(B);
        tt_fd f;
        memset(&m1, 0, sizeof m1), memset(&m2, 0, sizeof m2);
        tsf_rng_seed(&r, 21);
        tt_batch(&r, x, nx, labels, B, cfg.classes);
        if (!CHECK_EQ_INT(tsf_model_init(&m1, &cfg, B, 5), TSF_OK) ||
            !CHECK_EQ_INT(tsf_model_init(&m2, &cfg, B, 5), TSF_OK) ||
            !CHECK_EQ_INT(tsf_model_train_init(&m1), TSF_OK) ||
            !CHECK_EQ_INT(tsf_model_train_init(&m2), TSF_OK))
            goto next;
        tt_perturb(&m1, 6, 0.1f), tt_perturb(&m2, 6, 0.1f);
        /* the reference: no drop path */
        CHECK_EQ_INT(tsf_model_loss(&m1, x, labels, B, T, H, W, 1, &l0), TSF_OK);
        /* train = 0 ignores drop_path and draws nothing */
        m1.drop_path = 0.5f;
        rng_before = m1.rng;
        CHECK_EQ_INT(tsf_model_loss(&m1, x, labels, B, T, H, W, 0, &lt), TSF_OK);
        CHECK(lt == l0);
        CHECK(memcmp(&rng_before, &m1.rng, sizeof rng_before) == 0);
        /* the same seed gives the same draws, losses and gradients, several times over */
        m2.drop_path = 0.5f;
        for (k = 0; k < 6; k++) {
            tsf_model_zero_grad(&m1), tsf_model_zero_grad(&m2);
            memset(dx1, 0, nx * sizeof *dx1), memset(dx2, 0, nx * sizeof *dx2);
            CHECK_EQ_INT(tsf_model_loss(&m1, x, labels, B, T, H, W, 1, &l1), TSF_OK);
            CHECK_EQ_INT(tsf_model_loss(&m2, x, labels, B, T, H, W, 1, &l2), TSF_OK);
            CHECK_EQ_INT(tsf_model_backward(&m1, dx1), TSF_OK);
            CHECK_EQ_INT(tsf_model_backward(&m2, dx2), TSF_OK);
            CHECK(l1 == l2);
            CHECK(same_bits(m1.grad_memory, m2.grad_memory, m1.param_floats));
            CHECK(same_bits(dx1, dx2, nx));
            differs += l1 != l0;
        }
        CHECK(differs > 0); /* some draw dropped something */
        CHECK(memcmp(&m1.rng, &m2.rng, sizeof m1.rng) == 0);

        /* a mask that drops some sequences of block 1 and keeps others, held fixed */
        f.m = &m1, f.x = x, f.labels = labels, f.B = B, f.T = T, f.H = H, f.W = W, f.train = 1;
        for (k = 0; k < 50; k++) {
            f.rng0 = m1.rng;
            CHECK_EQ_INT(tsf_model_loss(&m1, x, labels, B, T, H, W, 1, &l1), TSF_OK);
            keep = tt_keep(&m1, 1, &nk);
            for (i = 0, dropped = kept = 0; i < nk; i++) {
                dropped += keep[i] == 0.0f;
                kept += keep[i] == 2.0f; /* 1 / (1 - 0.5) */
            }
            if (dropped > 0 && kept > 0 && dropped + kept == (int)nk) break;
        }
        if (CHECK(k < 50)) {
            char what[64];
            snprintf(what, sizeof what, "%s, drop path 0.5 (mask fixed)", tsf_attention_name(a));
            CHECK(tt_fd_check(&f, what) > 1e-2);
        }
    next:
        tsf_model_free(&m1);
        tsf_model_free(&m2);
    }
}

/* The linear ramp: block l drops with rate drop_path * l / (L-1), so block 0 never drops,
   block 1 of 3 with half the rate, the last with the full rate; survivors are scaled by
   1/(1-rate); a one-block model never drops. Counted over many draws. */
static void test_train_drop_path_ramp(void) {
    int a;
    for (a = 0; a < 3; a++) {
        tsf_config cfg = tt_cfg(a, 8, 4, 2, 12, 3, 2, 3), cfg1 = cfg;
        tsf_model m, m1;
        tsf_rng r;
        int B = 4, T = 2, H = 8, W = 8, k, l;
        size_t nx = (size_t)B * 3 * T * H * W, nk, i, zeros[3] = {0, 0, 0}, total[3] = {0, 0, 0};
        float *x = tsft_alloc(nx), *keep, l0, l1, want_scale[3] = {1.0f, 1.0f / 0.75f, 2.0f};
        int *labels = tt_labels(B), bad_scale = 0;
        memset(&m, 0, sizeof m), memset(&m1, 0, sizeof m1);
        tsf_rng_seed(&r, 31);
        tt_batch(&r, x, nx, labels, B, cfg.classes);
        if (!CHECK_EQ_INT(tsf_model_init(&m, &cfg, B, 7), TSF_OK)) goto next;
        m.drop_path = 0.5f;
        for (k = 0; k < 40; k++) {
            CHECK_EQ_INT(tsf_model_loss(&m, x, labels, B, T, H, W, 1, &l0), TSF_OK);
            for (l = 0; l < 3; l++) {
                keep = tt_keep(&m, l, &nk);
                for (i = 0; i < nk; i++) {
                    zeros[l] += keep[i] == 0.0f;
                    bad_scale += keep[i] != 0.0f && keep[i] != want_scale[l];
                }
                total[l] += nk;
            }
        }
        CHECK_EQ_INT(bad_scale, 0);
        CHECK_EQ_INT(zeros[0], 0);
        CHECK_NEAR((double)zeros[1] / (double)total[1], 0.25, 0.06, 0);
        CHECK_NEAR((double)zeros[2] / (double)total[2], 0.5, 0.06, 0);

        /* one block: rate 0, even with drop_path 0.9 */
        cfg1.depth = 1;
        if (!CHECK_EQ_INT(tsf_model_init(&m1, &cfg1, B, 7), TSF_OK)) goto next;
        m1.drop_path = 0.9f;
        CHECK_EQ_INT(tsf_model_loss(&m1, x, labels, B, T, H, W, 1, &l1), TSF_OK);
        CHECK_EQ_INT(tsf_model_loss(&m1, x, labels, B, T, H, W, 0, &l0), TSF_OK);
        CHECK(l1 == l0);
    next:
        tsf_model_free(&m);
        tsf_model_free(&m1);
    }
}

/* Dropout on the MLP hidden layer: train = 0 ignores it; the same seed gives the same masks;
   about the rate's share of the hidden values is zeroed, the rest scaled by 1/(1-rate); with
   the mask held fixed (the generator reset) the gradient matches finite differences, also
   together with drop path. For every variant. */
static void test_train_dropout(void) {
    int a;
    for (a = 0; a < 3; a++) {
        tsf_config cfg = tt_cfg(a, 8, 4, 2, 12, 2, 2, 3);
        tsf_model m1, m2;
        tsf_rng r;
        int B = 2, T = 2, H = 8, W = 8, k, l, *labels = tt_labels(B);
        size_t nx = (size_t)B * 3 * T * H * W, nh, i, zeros = 0, total = 0, badscale = 0;
        float *x = tsft_alloc(nx), l0, l1, l2, lt, *gelu;
        tt_fd f;
        char what[80];
        tsf__shape s;
        memset(&m1, 0, sizeof m1), memset(&m2, 0, sizeof m2);
        tsf_rng_seed(&r, 25);
        tt_batch(&r, x, nx, labels, B, cfg.classes);
        if (!CHECK_EQ_INT(tsf_model_init(&m1, &cfg, B, 5), TSF_OK) ||
            !CHECK_EQ_INT(tsf_model_init(&m2, &cfg, B, 5), TSF_OK) ||
            !CHECK_EQ_INT(tsf_model_train_init(&m1), TSF_OK) ||
            !CHECK_EQ_INT(tsf_model_train_init(&m2), TSF_OK))
            goto next;
        tt_perturb(&m1, 6, 0.1f), tt_perturb(&m2, 6, 0.1f);
        m1.all_tokens = m2.all_tokens = 1; /* the last block's hidden layer: every token's */
        CHECK_EQ_INT(tsf_model_loss(&m1, x, labels, B, T, H, W, 0, &l0), TSF_OK);
        m1.dropout = m2.dropout = 0.3f;
        CHECK_EQ_INT(tsf_model_loss(&m1, x, labels, B, T, H, W, 0, &lt), TSF_OK);
        CHECK(lt == l0);
        s = tsf__shape_of(&m1.cfg, B, T, H, W);
        nh = (size_t)s.R * (size_t)tsf__hidden(&m1.cfg);
        gelu = tsft_alloc(nh);
        for (k = 0; k < 4; k++) {
            CHECK_EQ_INT(tsf_model_loss(&m1, x, labels, B, T, H, W, 1, &l1), TSF_OK);
            CHECK_EQ_INT(tsf_model_loss(&m2, x, labels, B, T, H, W, 1, &l2), TSF_OK);
            CHECK(l1 == l2 && l1 != l0);
            for (l = 1; l < 2; l++) { /* the last block's: fch_gelu holds one block's */
                const float *h = tsf__layer_acts(&m1.acts, &m1.cfg, &s, l).fch_gelu;
                const float *h2 = tsf__layer_acts(&m2.acts, &m2.cfg, &s, l).fch_gelu;
                CHECK(same_bits(h, h2, nh));
                tsf_gelu_forward(gelu, tsf__layer_acts(&m1.acts, &m1.cfg, &s, l).fch, nh);
                for (i = 0; i < nh; i++) {
                    zeros += h[i] == 0.0f;
                    badscale +=
                        h[i] != 0.0f && !tsft_near_ok((double)h[i], (double)gelu[i] / 0.7, 0, 1e-6);
                }
                total += nh;
            }
        }
        CHECK_NEAR((double)zeros / (double)total, 0.3, 0.03, 0);
        CHECK_EQ_INT(badscale, 0); /* survivors scaled by 1 / (1 - 0.3) */
        m1.all_tokens = 0;         /* the head's rows alone, as by default, from here on */
        /* the mask held fixed: finite differences, without and with drop path */
        memset(&f, 0, sizeof f);
        f.m = &m1, f.x = x, f.labels = labels, f.B = B, f.T = T, f.H = H, f.W = W, f.train = 1;
        f.rng0 = m1.rng;
        snprintf(what, sizeof what, "%s, dropout 0.3 (mask fixed)", tsf_attention_name(a));
        CHECK(tt_fd_check(&f, what) > 1e-2);
        m1.drop_path = 0.3f;
        f.rng0 = m1.rng;
        snprintf(what, sizeof what, "%s, dropout and drop path 0.3", tsf_attention_name(a));
        CHECK(tt_fd_check(&f, what) > 1e-2);
    next:
        tsf_model_free(&m1);
        tsf_model_free(&m2);
    }
}

/* docs/model.md section 6: with the original initialisation temporal_fc is zero, so the first
   backward gives exactly zero gradients to the temporal LayerNorm and attention, and a
   non-zero one to temporal_fc. */
static void test_train_original_init_temporal(void) {
    tsf_config cfg = tt_cfg(TSF_ATTN_DIVIDED, 8, 4, 2, 12, 2, 2, 3);
    tsf_model m;
    tsf_rng r;
    int B = 2, T = 2, H = 8, W = 8, *labels = tt_labels(B);
    size_t nx = (size_t)B * 3 * T * H * W, D = 12, L = 2, i, nz = 0, nfc = 0;
    float *x = tsft_alloc(nx), loss;
    memset(&m, 0, sizeof m);
    tsf_rng_seed(&r, 41);
    tt_batch(&r, x, nx, labels, B, cfg.classes);
    if (!CHECK_EQ_INT(tsf_model_init(&m, &cfg, B, 3), TSF_OK)) return;
    if (CHECK_EQ_INT(tsf_model_train_init(&m), TSF_OK) &&
        CHECK_EQ_INT(tsf_model_loss(&m, x, labels, B, T, H, W, 1, &loss), TSF_OK) &&
        CHECK_EQ_INT(tsf_model_backward(&m, NULL), TSF_OK)) {
        for (i = 0; i < L * D; i++)
            nz += (m.grads.t_ln_w[i] != 0.0f) + (m.grads.t_ln_b[i] != 0.0f) +
                  (m.grads.t_proj_b[i] != 0.0f);
        for (i = 0; i < L * 3 * D * D; i++) nz += m.grads.t_qkv_w[i] != 0.0f;
        for (i = 0; i < L * 3 * D; i++) nz += m.grads.t_qkv_b[i] != 0.0f;
        for (i = 0; i < L * D * D; i++) nz += m.grads.t_proj_w[i] != 0.0f;
        for (i = 0; i < L * D * D; i++) nfc += m.grads.t_fc_w[i] != 0.0f;
        CHECK_EQ_INT(nz, 0);
        CHECK(nfc > L * D * D / 2);
    }
    tsf_model_free(&m);
}

/* ---- SGD against torch.optim.SGD's formulas -------------------------------------------------- */

/* Field f of tsf_params is a weight matrix (decayed under no_decay_embeddings_norms_biases):
   patch_w and every Linear weight, including head_w. */
static int tt_is_matrix(const tsf_params *p, int f) {
    const float *v = ((float *const *)p)[f];
    return v &&
           (v == p->patch_w || v == p->t_qkv_w || v == p->t_proj_w || v == p->t_fc_w ||
            v == p->qkv_w || v == p->proj_w || v == p->fc1_w || v == p->fc2_w || v == p->head_w);
}

/* The expected weights and momentum after one step, from the state before it (torch.optim.SGD
   with dampening 0): d = g*scale + wd*w; buf = d on the first step, else momentum*buf + d;
   d = d + momentum*buf (Nesterov) or buf; w -= lr*d. In double. */
static void tt_sgd_expect(const tsf_model *m, const float *w0, const float *g0, const float *b0,
                          const tsf_sgd *o, double lr, double scale, int first, double *w,
                          double *buf) {
    double s[TSF_NUM_PARAMS];
    int f;
    size_t k;
    tsf__param_sizes(&m->cfg, s);
    for (k = 0; k < m->param_floats; k++) w[k] = (double)w0[k], buf[k] = (double)b0[k];
    for (f = 0; f < TSF_NUM_PARAMS; f++) {
        const float *v = ((float *const *)&m->params)[f];
        size_t off, n = (size_t)s[f];
        double wd = o->no_decay_embeddings_norms_biases && !tt_is_matrix(&m->params, f)
                        ? 0.0
                        : (double)o->weight_decay,
               mom = (double)o->momentum;
        if (!v) continue;
        off = (size_t)(v - m->param_memory);
        for (k = off; k < off + n; k++) {
            double d = (double)g0[k] * scale + wd * (double)w0[k];
            if (mom != 0.0) {
                buf[k] = first ? d : mom * (double)b0[k] + d;
                d = o->nesterov ? d + mom * buf[k] : buf[k];
            }
            w[k] = (double)w0[k] - lr * d;
        }
    }
}

/* Random gradients (every entry, padding included), then one step checked against the
   formulas: weights and momentum. */
static void tt_sgd_check(tsf_model *m, tsf_rng *r, const tsf_sgd *o, float lr, int accum,
                         double scale, int first, const char *what) {
    size_t n = m->param_floats, k;
    float *w0 = fcopy(m->param_memory, n), *b0 = fcopy(m->momentum_memory, n), *g0;
    double *w = tsft_allocd(n), *buf = tsft_allocd(n);
    long long steps = m->sgd_steps;
    for (k = 0; k < n; k++) m->grad_memory[k] = tsf_rng_normal(r);
    g0 = fcopy(m->grad_memory, n);
    tt_sgd_expect(m, w0, g0, b0, o, (double)lr, scale, first, w, buf);
    if (!CHECK_EQ_INT(tsf_sgd_step(m, o, lr, accum, NULL), TSF_OK)) return;
    CHECK_EQ_INT(m->sgd_steps, steps + 1);
    if (!CHECK_ARRAY_NEAR(m->param_memory, w, n, 5e-7, 1e-6)) printf("    weights: %s\n", what);
    if (!CHECK_ARRAY_NEAR(m->momentum_memory, buf, n, 2e-6, 1e-6))
        printf("    momentum: %s\n", what);
    CHECK(same_bits(m->grad_memory, g0, n)); /* the step does not touch the gradients */
}

/* A divided model (it has every kind of tensor) with every parameter non-zero. */
static int tt_sgd_model(tsf_model *m) {
    tsf_config cfg = tt_cfg(TSF_ATTN_DIVIDED, 8, 4, 2, 12, 2, 2, 3);
    memset(m, 0, sizeof *m);
    if (!CHECK_EQ_INT(tsf_model_init(m, &cfg, 1, 9), TSF_OK)) return 0;
    tt_perturb(m, 10, 0.1f);
    if (!CHECK_EQ_INT(tsf_model_train_init(m), TSF_OK)) {
        tsf_model_free(m);
        return 0;
    }
    return 1;
}

/* Momentum (first step: buf = d; later buf = m*buf + d), Nesterov or not, no momentum. */
static void test_train_sgd_momentum(void) {
    tsf_model m;
    tsf_sgd o;
    tsf_rng r;
    size_t k, nz = 0;
    if (!tt_sgd_model(&m)) return;
    tsf_rng_seed(&r, 51);
    memset(&o, 0, sizeof o);
    o.momentum = 0.9f, o.weight_decay = 0.01f, o.nesterov = 1;
    CHECK_EQ_INT(m.sgd_steps, 0);
    for (k = 0; k < m.param_floats; k++) nz += m.momentum_memory[k] != 0.0f;
    CHECK_EQ_INT(nz, 0); /* train_init zeroes the momentum */
    /* the first step sets buf = d whatever the buffer held */
    for (k = 0; k < m.param_floats; k++) m.momentum_memory[k] = tsf_rng_normal(&r);
    tt_sgd_check(&m, &r, &o, 0.1f, 1, 1.0, 1, "Nesterov, first step");
    tt_sgd_check(&m, &r, &o, 0.1f, 1, 1.0, 0, "Nesterov, second step");
    o.nesterov = 0;
    tt_sgd_check(&m, &r, &o, 0.05f, 1, 1.0, 0, "momentum without Nesterov");
    o.momentum = 0.0f;
    tt_sgd_check(&m, &r, &o, 0.05f, 1, 1.0, 0, "no momentum");
    o.momentum = 0.5f, o.weight_decay = 0.0f, o.nesterov = 1;
    tt_sgd_check(&m, &r, &o, 0.2f, 3, 1.0 / 3.0, 0, "momentum 0.5, accum 3");
    CHECK_EQ_INT(m.sgd_steps, 5);
    /* the default is the paper's optimiser */
    o = tsf_sgd_default();
    CHECK(o.momentum == 0.9f && o.weight_decay == 1e-4f && o.nesterov == 1 &&
          o.no_decay_embeddings_norms_biases == 0 && o.clip_norm == 0.0f);
    tsf_model_free(&m);
}

/* Weight decay on every parameter, or (with the exemption) only on the matrices: with zero
   gradients and no momentum, a decayed tensor shrinks by (1 - lr*wd), an exempt one stays. */
static void test_train_sgd_weight_decay(void) {
    tsf_model m;
    tsf_sgd o;
    tsf_rng r;
    int exempt, f;
    double s[TSF_NUM_PARAMS];
    if (!tt_sgd_model(&m)) return;
    tsf_rng_seed(&r, 52);
    tsf__param_sizes(&m.cfg, s);
    for (exempt = 0; exempt < 2; exempt++) {
        float *w0 = fcopy(m.param_memory, m.param_floats);
        memset(&o, 0, sizeof o);
        o.weight_decay = 0.1f, o.no_decay_embeddings_norms_biases = exempt;
        tsf_model_zero_grad(&m);
        if (!CHECK_EQ_INT(tsf_sgd_step(&m, &o, 0.5f, 1, NULL), TSF_OK)) break;
        for (f = 0; f < TSF_NUM_PARAMS; f++) {
            const float *v = ((float *const *)&m.params)[f];
            size_t off, n = (size_t)s[f], k, changed = 0, bad = 0;
            int decayed = !exempt || tt_is_matrix(&m.params, f);
            if (!v) continue;
            off = (size_t)(v - m.param_memory);
            for (k = off; k < off + n; k++) {
                double want =
                    decayed ? (double)w0[k] * (1.0 - 0.5 * (double)o.weight_decay) : (double)w0[k];
                changed += m.param_memory[k] != w0[k];
                bad += !tsft_near_ok((double)m.param_memory[k], want, 1e-8, 1e-6);
            }
            if (!CHECK_EQ_INT(bad, 0) || !CHECK(decayed ? changed == n : changed == 0))
                printf("    field %d, exemption %d\n", f, exempt);
        }
    }
    /* the exempt set: every embedding, LayerNorm and bias; the rest are the 9 matrices */
    {
        int nmat = 0;
        for (f = 0; f < TSF_NUM_PARAMS; f++) nmat += tt_is_matrix(&m.params, f);
        CHECK_EQ_INT(nmat, 9);
    }
    tsf_model_free(&m);
}

/* accum divides the gradients; clip_norm scales them by clip / (norm + 1e-6) when the norm
   (of the averaged gradients) exceeds it; grad_norm reports the norm before clipping. */
static void test_train_sgd_accum_clip(void) {
    tsf_model m;
    tsf_sgd o;
    tsf_rng r;
    size_t n, k;
    double sumsq = 0.0, norm, want_scale;
    float *w0, *w1, gn = -1.0f;
    if (!tt_sgd_model(&m)) return;
    n = m.param_floats;
    tsf_rng_seed(&r, 53);
    memset(&o, 0, sizeof o); /* plain SGD: w -= lr * g * scale */
    for (k = 0; k < n; k++) m.grad_memory[k] = tsf_rng_normal(&r);
    {
        /* the norm counts the parameters only, not the alignment padding: zero the padding */
        float *keep = fcopy(m.grad_memory, n);
        int nt = tsf_model_num_tensors(&m), i, d, ndim;
        memset(m.grad_memory, 0, n * sizeof(float));
        for (i = 0; i < nt; i++) {
            char name[96];
            long long shape[4];
            float *data;
            size_t numel = 1, off;
            tsf_model_tensor(&m, i, name, &ndim, shape, &data);
            for (d = 0; d < ndim; d++) numel *= (size_t)shape[d];
            off = (size_t)(data - m.param_memory);
            memcpy(m.grad_memory + off, keep + off, numel * sizeof(float));
        }
    }
    for (k = 0; k < n; k++) sumsq += (double)m.grad_memory[k] * (double)m.grad_memory[k];
    norm = sqrt(sumsq);
    /* accum 2: half the gradient; the reported norm is that of the mean */
    w0 = fcopy(m.param_memory, n);
    CHECK_EQ_INT(tsf_sgd_step(&m, &o, 0.1f, 2, &gn), TSF_OK);
    CHECK_NEAR(gn, norm / 2, 0, 1e-5);
    for (k = 0; k < n; k++)
        if (!CHECK_NEAR(m.param_memory[k], (double)w0[k] - 0.1 * (double)m.grad_memory[k] / 2, 1e-7,
                        1e-6))
            break;
    /* clip below the norm: scaled by clip / (norm + 1e-6) */
    w0 = fcopy(m.param_memory, n);
    o.clip_norm = (float)(norm / 4);
    want_scale = (double)o.clip_norm / (norm + 1e-6);
    CHECK_EQ_INT(tsf_sgd_step(&m, &o, 0.1f, 1, &gn), TSF_OK);
    CHECK_NEAR(gn, norm, 0, 1e-5);
    for (k = 0; k < n; k++)
        if (!CHECK_NEAR(m.param_memory[k],
                        (double)w0[k] - 0.1 * (double)m.grad_memory[k] * want_scale, 1e-7, 1e-6))
            break;
    /* clip and accum together: the norm of the mean is compared with the clip */
    w0 = fcopy(m.param_memory, n);
    o.clip_norm = (float)(norm / 8);
    want_scale = 0.5 * (double)o.clip_norm / (norm / 2 + 1e-6);
    CHECK_EQ_INT(tsf_sgd_step(&m, &o, 0.1f, 2, &gn), TSF_OK);
    CHECK_NEAR(gn, norm / 2, 0, 1e-5);
    for (k = 0; k < n; k++)
        if (!CHECK_NEAR(m.param_memory[k],
                        (double)w0[k] - 0.1 * (double)m.grad_memory[k] * want_scale, 1e-7, 1e-6))
            break;
    /* accum 2 and a clip between the mean's norm and the sum's: no clipping */
    w0 = fcopy(m.param_memory, n);
    o.clip_norm = (float)(norm * 0.75);
    CHECK_EQ_INT(tsf_sgd_step(&m, &o, 0.1f, 2, NULL), TSF_OK);
    for (k = 0; k < n; k++)
        if (!CHECK_NEAR(m.param_memory[k], (double)w0[k] - 0.1 * (double)m.grad_memory[k] / 2, 1e-7,
                        1e-6))
            break;
    /* clip above the norm: no scaling */
    w0 = fcopy(m.param_memory, n);
    o.clip_norm = (float)(norm * 2);
    CHECK_EQ_INT(tsf_sgd_step(&m, &o, 0.1f, 1, NULL), TSF_OK);
    for (k = 0; k < n; k++)
        if (!CHECK_NEAR(m.param_memory[k], (double)w0[k] - 0.1 * (double)m.grad_memory[k], 1e-7,
                        1e-6))
            break;
    /* a tiny norm shows the 1e-6 of clip_grad_norm_: scale = clip / (norm + 1e-6) */
    for (k = 0; k < n; k++) m.grad_memory[k] *= (float)(1e-5 / norm);
    w0 = fcopy(m.param_memory, n);
    o.clip_norm = 1e-6f;
    want_scale = 1e-6 / (1e-5 + 1e-6); /* 1/11, not 1/10 */
    CHECK_EQ_INT(tsf_sgd_step(&m, &o, 1e5f, 1, &gn), TSF_OK);
    CHECK_NEAR(gn, 1e-5, 0, 1e-4);
    for (k = 0; k < n; k++)
        if (!CHECK_NEAR(m.param_memory[k],
                        (double)w0[k] - 1e5 * (double)m.grad_memory[k] * want_scale, 1e-7, 1e-5))
            break;
    CHECK_EQ_INT(m.sgd_steps, 6);

    /* a NaN or Inf gradient: TSF_ERR_NONFINITE, weights, momentum and step count untouched */
    for (k = 0; k < 2; k++) {
        float *p0 = fcopy(m.param_memory, n), *b0 = fcopy(m.momentum_memory, n);
        o = tsf_sgd_default();
        tt_grad(&m, m.params.fc1_w)[3] = k ? INFINITY : NAN;
        CHECK_EQ_INT(tsf_sgd_step(&m, &o, 0.1f, 1, NULL), TSF_ERR_NONFINITE);
        CHECK(same_bits(m.param_memory, p0, n));
        CHECK(same_bits(m.momentum_memory, b0, n));
        CHECK_EQ_INT(m.sgd_steps, 6);
    }
    /* bad arguments */
    w1 = fcopy(m.param_memory, n);
    tsf_model_zero_grad(&m);
    CHECK_EQ_INT(tsf_sgd_step(&m, &o, 0.1f, 0, NULL), TSF_ERR_ARG);
    CHECK_EQ_INT(tsf_sgd_step(&m, NULL, 0.1f, 1, NULL), TSF_ERR_ARG);
    CHECK(same_bits(m.param_memory, w1, n));
    tsf_model_free(&m);
}

/* ---- gradient accumulation ------------------------------------------------------------------- */

/* Two steps of the paper's SGD on batches of 2 clips, against the same steps with each batch
   as 2 micro-batches of 1 clip and accum = 2. */
static void test_train_accum_equivalence(void) {
    int a;
    for (a = 0; a < 3; a++) {
        tsf_config cfg = tt_cfg(a, 8, 4, 2, 12, 2, 2, 3);
        tsf_model full, micro;
        tsf_sgd o = tsf_sgd_default();
        tsf_rng r;
        int B = 2, T = 2, H = 8, W = 8, *labels = tt_labels(B), step, b;
        size_t nx = (size_t)B * 3 * T * H * W, clip = nx / (size_t)B;
        float *x = tsft_alloc(nx), loss, l0, l1, gn_full = 0.0f, gn_micro = 0.0f;
        memset(&full, 0, sizeof full), memset(&micro, 0, sizeof micro);
        tsf_rng_seed(&r, 61);
        if (!CHECK_EQ_INT(tsf_model_init(&full, &cfg, B, 8), TSF_OK) ||
            !CHECK_EQ_INT(tsf_model_init(&micro, &cfg, 1, 8), TSF_OK) ||
            !CHECK_EQ_INT(tsf_model_train_init(&full), TSF_OK) ||
            !CHECK_EQ_INT(tsf_model_train_init(&micro), TSF_OK))
            goto next;
        tt_perturb(&full, 62, 0.1f), tt_perturb(&micro, 62, 0.1f);
        for (step = 0; step < 2; step++) {
            tt_batch(&r, x, nx, labels, B, cfg.classes);
            tsf_model_zero_grad(&full), tsf_model_zero_grad(&micro);
            CHECK_EQ_INT(tsf_model_loss(&full, x, labels, B, T, H, W, 1, &loss), TSF_OK);
            CHECK_EQ_INT(tsf_model_backward(&full, NULL), TSF_OK);
            CHECK_EQ_INT(tsf_sgd_step(&full, &o, 0.05f, 1, &gn_full), TSF_OK);
            for (b = 0; b < B; b++) {
                CHECK_EQ_INT(tsf_model_loss(&micro, x + (size_t)b * clip, labels + b, 1, T, H, W, 1,
                                            b ? &l1 : &l0),
                             TSF_OK);
                CHECK_EQ_INT(tsf_model_backward(&micro, NULL), TSF_OK);
            }
            CHECK_EQ_INT(tsf_sgd_step(&micro, &o, 0.05f, B, &gn_micro), TSF_OK);
            CHECK_NEAR(loss, ((double)l0 + (double)l1) / 2, 1e-6, 0);
            CHECK_NEAR(gn_micro, gn_full, 0, 1e-5);
        }
        CHECK_VEC_REL(micro.param_memory, tm_to_double(full.param_memory, full.param_floats),
                      full.param_floats, 0, 1e-6);
        CHECK_VEC_REL(micro.momentum_memory, tm_to_double(full.momentum_memory, full.param_floats),
                      full.param_floats, 0, 1e-6);
    next:
        tsf_model_free(&full);
        tsf_model_free(&micro);
    }
}

/* cfg.recompute: backward runs each block's forward again from its input, and cfg.keep_acts:
   it remakes nothing (every block's norms and GELU outputs kept); either way every gradient
   (and the input's) is the same bits as the default's, also with drop path and dropout;
   recompute's activations take less memory, keep_acts' more; changing either between the
   loss and the backward pass is refused. For all five schemes, 3 blocks. */
static void test_train_recompute(void) {
    int a, k;
    for (a = 0; a < TSF_NUM_ATTENTION; a++) {
        tsf_config cfg = tt_cfg(a, 8, 4, 2, 12, 3, 2, 3);
        tsf_model m[3]; /* the default, recompute, keep_acts */
        tsf_rng r;
        int B = 2, T = 3, H = 8, W = 12, *labels = tt_labels(B), step;
        size_t nx = (size_t)B * 3 * T * H * W;
        float *x = tsft_alloc(nx), *dx[3], l[3];
        memset(m, 0, sizeof m);
        tsf_rng_seed(&r, 63);
        for (k = 0; k < 3; k++) {
            dx[k] = tsft_alloc(nx);
            if (!CHECK_EQ_INT(tsf_model_init(&m[k], &cfg, B, 9), TSF_OK)) goto next;
        }
        m[1].cfg.recompute = 1, m[2].cfg.keep_acts = 1;
        for (k = 0; k < 3; k++) {
            if (!CHECK_EQ_INT(tsf_model_train_init(&m[k]), TSF_OK)) goto next;
            tt_perturb(&m[k], 64, 0.1f);
            m[k].drop_path = 0.3f, m[k].dropout = 0.2f;
        }
        for (step = 0; step < 2; step++) {
            tt_batch(&r, x, nx, labels, B, cfg.classes);
            for (k = 0; k < 3; k++) {
                memset(dx[k], 0, nx * sizeof(float));
                tsf_model_zero_grad(&m[k]);
                CHECK_EQ_INT(tsf_model_loss(&m[k], x, labels, B, T, H, W, 1, &l[k]), TSF_OK);
                CHECK_EQ_INT(tsf_model_backward(&m[k], dx[k]), TSF_OK);
            }
            CHECK(l[0] == l[1] && l[0] == l[2]);
            for (k = 1; k < 3; k++) {
                CHECK(same_bits(m[0].grad_memory, m[k].grad_memory, m[0].param_floats));
                CHECK(same_bits(dx[0], dx[k], nx));
            }
        }
        CHECK(m[1].act_floats < m[0].act_floats && m[2].act_floats > m[0].act_floats);
        /* the layout changed after the loss: no backward */
        for (k = 1; k < 3; k++) {
            CHECK_EQ_INT(tsf_model_loss(&m[k], x, labels, B, T, H, W, 1, &l[k]), TSF_OK);
            m[k].cfg.recompute = m[k].cfg.keep_acts = 0;
            CHECK_EQ_INT(tsf_model_backward(&m[k], NULL), TSF_ERR_ARG);
        }
    next:
        for (k = 0; k < 3; k++) tsf_model_free(&m[k]);
    }
}

/* The last block computes the head's rows alone by default (m->all_tokens 0): the cls rows
   after its attention's keys and values. Against a model that computes every token
   (all_tokens 1), for all five schemes, 2 blocks, with drop path, in training (the default
   layout, recompute and keep_acts) and inference: the logits and losses are the same bits
   (each row's sums run in the same order), and the gradients and the input's gradient agree
   to float rounding (the weight gradients' sums skip rows whose terms are exactly zero,
   which regroups them). The backward pass follows the forward pass's all_tokens. */
static void test_train_head_rows(void) {
    int a, lay;
    for (a = 0; a < TSF_NUM_ATTENTION; a++)
        for (lay = 0; lay < 3; lay++) {
            /* heads of 8 (attention's direct path) and 6 values (its tiled path) */
            tsf_config cfg = tt_cfg(a, 8, 4, 2, lay == 0 ? 16 : 12, 2, 2, 3);
            tsf_model m[2]; /* every token, the head's rows */
            tsf_rng r;
            int B = 2, T = 3, H = 8, W = 12, *labels = tt_labels(B), k, step;
            size_t nx = (size_t)B * 3 * T * H * W, i, n;
            float *x = tsft_alloc(nx), *dx[2], l[2], z[2][2 * 3];
            double gmax = 0, dmax = 0, xmax = 0, xd = 0;
            memset(m, 0, sizeof m);
            tsf_rng_seed(&r, 81 + (unsigned long long)a);
            cfg.recompute = lay == 1, cfg.keep_acts = lay == 2;
            for (k = 0; k < 2; k++) {
                dx[k] = tsft_alloc(nx);
                if (!CHECK_EQ_INT(tsf_model_init(&m[k], &cfg, B, 9), TSF_OK)) goto next;
                tt_perturb(&m[k], 64, 0.1f);
            }
            m[0].all_tokens = 1;
            tt_batch(&r, x, nx, labels, B, cfg.classes);
            for (k = 0; k < 2; k++) /* inference: one block's buffers, updated in place */
                CHECK_EQ_INT(tsf_model_forward(&m[k], x, B, T, H, W, z[k]), TSF_OK);
            CHECK(same_bits(z[0], z[1], (size_t)B * cfg.classes));
            for (k = 0; k < 2; k++) {
                if (!CHECK_EQ_INT(tsf_model_train_init(&m[k]), TSF_OK)) goto next;
                m[k].drop_path = 0.3f;
            }
            for (step = 0; step < 2; step++) {
                tt_batch(&r, x, nx, labels, B, cfg.classes);
                for (k = 0; k < 2; k++) {
                    memset(dx[k], 0, nx * sizeof(float));
                    tsf_model_zero_grad(&m[k]);
                    CHECK_EQ_INT(tsf_model_loss(&m[k], x, labels, B, T, H, W, 1, &l[k]), TSF_OK);
                }
                m[0].all_tokens = 0, m[1].all_tokens = 1; /* backward follows the forward */
                for (k = 0; k < 2; k++) CHECK_EQ_INT(tsf_model_backward(&m[k], dx[k]), TSF_OK);
                m[0].all_tokens = 1, m[1].all_tokens = 0;
                CHECK(l[0] == l[1]);
                CHECK(same_bits(m[0].acts.logits, m[1].acts.logits, (size_t)B * cfg.classes));
                n = m[0].param_floats;
                for (i = 0; i < n; i++) {
                    double g0 = (double)m[0].grad_memory[i], g1 = (double)m[1].grad_memory[i];
                    gmax = fabs(g0) > gmax ? fabs(g0) : gmax;
                    dmax = fabs(g0 - g1) > dmax ? fabs(g0 - g1) : dmax;
                }
                for (i = 0; i < nx; i++) {
                    double d0 = (double)dx[0][i], d1 = (double)dx[1][i];
                    xmax = fabs(d0) > xmax ? fabs(d0) : xmax;
                    xd = fabs(d0 - d1) > xd ? fabs(d0 - d1) : xd;
                }
            }
            CHECK(gmax > 0 && xmax > 0);
            CHECK_NEAR(dmax / gmax, 0.0, 1e-5, 0);
            CHECK_NEAR(xd / xmax, 0.0, 1e-5, 0);
        next:
            for (k = 0; k < 2; k++) tsf_model_free(&m[k]);
        }
}

/* tsf_model_backward_sgd: for every variant, with recompute or not, with cfg.fused_sgd (one
   block's gradients) and without, 3 steps give the same losses, gradient norms, weights and
   momentum, to the bit, as zero_grad + backward + tsf_sgd_step, with drop path, dropout and
   several optimiser settings. The fused layout is smaller and refuses what needs every
   gradient; a NaN gradient is refused before the first update. */
static void test_train_fused_sgd(void) {
    int a, rc;
    for (a = 0; a < 3; a++)
        for (rc = 0; rc < 2; rc++) {
            tsf_config cfg = tt_cfg(a, 8, 4, 2, 12, 3, 2, 3);
            tsf_model ref, fus, full;
            tsf_rng r;
            tsf_sgd o = tsf_sgd_default();
            int B = 2, T = 3, H = 8, W = 12, *labels = tt_labels(B), step;
            size_t nx = (size_t)B * 3 * T * H * W;
            float *x = tsft_alloc(nx), l1, l2, l3, n1, n2, n3;
            memset(&ref, 0, sizeof ref), memset(&fus, 0, sizeof fus), memset(&full, 0, sizeof full);
            tsf_rng_seed(&r, 71 + (unsigned long long)a);
            cfg.recompute = rc;
            if (a == 1) o.nesterov = 0, o.no_decay_embeddings_norms_biases = 1;
            if (a == 2 && rc) o.momentum = 0.0f;
            if (!CHECK_EQ_INT(tsf_model_init(&ref, &cfg, B, 9), TSF_OK) ||
                !CHECK_EQ_INT(tsf_model_init(&full, &cfg, B, 9), TSF_OK))
                goto next;
            cfg.fused_sgd = 1;
            if (!CHECK_EQ_INT(tsf_model_init(&fus, &cfg, B, 9), TSF_OK)) goto next;
            if (!CHECK_EQ_INT(tsf_model_train_init(&ref), TSF_OK) ||
                !CHECK_EQ_INT(tsf_model_train_init(&fus), TSF_OK) ||
                !CHECK_EQ_INT(tsf_model_train_init(&full), TSF_OK))
                goto next;
            CHECK(fus.grad_fused && !ref.grad_fused && fus.grad_floats < ref.grad_floats);
            tt_perturb(&ref, 64, 0.1f), tt_perturb(&fus, 64, 0.1f), tt_perturb(&full, 64, 0.1f);
            ref.drop_path = fus.drop_path = full.drop_path = 0.3f;
            ref.dropout = fus.dropout = full.dropout = 0.2f;
            for (step = 0; step < 3; step++) {
                tt_batch(&r, x, nx, labels, B, cfg.classes);
                tsf_model_zero_grad(&ref);
                CHECK_EQ_INT(tsf_model_loss(&ref, x, labels, B, T, H, W, 1, &l1), TSF_OK);
                CHECK_EQ_INT(tsf_model_backward(&ref, NULL), TSF_OK);
                CHECK_EQ_INT(tsf_sgd_step(&ref, &o, 0.05f, 1, &n1), TSF_OK);
                CHECK_EQ_INT(tsf_model_loss(&fus, x, labels, B, T, H, W, 1, &l2), TSF_OK);
                CHECK_EQ_INT(tsf_model_backward_sgd(&fus, &o, 0.05f, &n2), TSF_OK);
                CHECK_EQ_INT(tsf_model_loss(&full, x, labels, B, T, H, W, 1, &l3), TSF_OK);
                CHECK_EQ_INT(tsf_model_backward_sgd(&full, &o, 0.05f, &n3), TSF_OK);
                CHECK(l1 == l2 && l1 == l3 && n1 == n2 && n1 == n3 && n1 > 0.0f);
                CHECK(tt_same_state(&ref, &fus) && tt_same_state(&ref, &full));
            }
            CHECK(ref.sgd_steps == 3 && fus.sgd_steps == 3 && full.sgd_steps == 3);
            /* no loss since the last step: refused, and the gradients it found are kept */
            full.grad_memory[0] = 1.5f;
            CHECK_EQ_INT(tsf_model_backward_sgd(&full, &o, 0.05f, NULL), TSF_ERR_ARG);
            CHECK(full.grad_memory[0] == 1.5f && full.sgd_steps == 3);
            /* what needs the whole gradient is refused in the fused layout */
            CHECK_EQ_INT(tsf_model_loss(&fus, x, labels, B, T, H, W, 1, &l2), TSF_OK);
            CHECK_EQ_INT(tsf_model_backward(&fus, NULL), TSF_ERR_ARG);
            CHECK_EQ_INT(tsf_sgd_step(&fus, &o, 0.05f, 1, NULL), TSF_ERR_ARG);
            o.clip_norm = 1.0f; /* clipping needs the norm before the first update */
            CHECK_EQ_INT(tsf_model_backward_sgd(&fus, &o, 0.05f, NULL), TSF_ERR_ARG);
            o.clip_norm = 0.0f;
            CHECK_EQ_INT(tsf_model_backward_sgd(&fus, &o, 0.05f, NULL), TSF_OK);
            /* the weights moved: no second step on the same loss */
            CHECK_EQ_INT(tsf_model_backward_sgd(&fus, &o, 0.05f, NULL), TSF_ERR_ARG);
            /* a NaN gradient: refused before any update */
            CHECK_EQ_INT(tsf_model_loss(&fus, x, labels, B, T, H, W, 1, &l2), TSF_OK);
            memcpy(ref.param_memory, fus.param_memory, fus.param_floats * sizeof(float));
            memcpy(ref.momentum_memory, fus.momentum_memory, fus.param_floats * sizeof(float));
            fus.gacts.dlogits[0] = NAN;
            CHECK_EQ_INT(tsf_model_backward_sgd(&fus, &o, 0.05f, &n2), TSF_ERR_NONFINITE);
            CHECK(n2 != n2 && fus.sgd_steps == 4);
            CHECK(tt_same_state(&ref, &fus));
        next:
            tsf_model_free(&ref);
            tsf_model_free(&fus);
            tsf_model_free(&full);
        }
}

/* tsf_model_pack_weights: for every scheme, with fused SGD (and recompute) or not, a model
   with its matrices packed gives the bits of one without: logits, then 3 training steps
   (losses, gradient norms, weights, momentum; the steps make the packed copy stale and the
   next forward pass packs again), then logits after tsf_model_init_params. The packed copy
   is what the forward pass reads: a weight written by hand changes nothing until
   tsf_model_pack_weights packs again (in place). tsf_model_unpack_weights drops it. */
static void test_train_packed_weights(void) {
    int a, fused;
    for (a = 0; a < TSF_NUM_ATTENTION; a++)
        for (fused = 0; fused < 2; fused++) {
            tsf_config cfg = tt_cfg(a, 8, 4, 2, 12, 3, 2, 3);
            tsf_model ref, pk;
            tsf_rng r;
            tsf_sgd o = tsf_sgd_default();
            int B = 2, T = 3, H = 8, W = 12, *labels = tt_labels(B), step;
            size_t nx = (size_t)B * 3 * T * H * W, nl = (size_t)B * cfg.classes;
            float *x = tsft_alloc(nx), *l1 = tsft_alloc(nl), *l2 = tsft_alloc(nl), *mem;
            float loss1, loss2, n1, n2;
            memset(&ref, 0, sizeof ref), memset(&pk, 0, sizeof pk);
            tsf_rng_seed(&r, 171 + (unsigned long long)a);
            cfg.fused_sgd = cfg.recompute = fused;
            if (!CHECK_EQ_INT(tsf_model_init(&ref, &cfg, B, 9), TSF_OK) ||
                !CHECK_EQ_INT(tsf_model_init(&pk, &cfg, B, 9), TSF_OK))
                goto next;
            tt_perturb(&ref, 65, 0.1f), tt_perturb(&pk, 65, 0.1f);
            CHECK_EQ_INT(tsf_model_pack_weights(NULL), TSF_ERR_ARG);
            if (!CHECK_EQ_INT(tsf_model_pack_weights(&pk), TSF_OK)) goto next;
            CHECK(pk.packed_floats > 0 && pk.packed.qkv_w && pk.packed.fc2_w && pk.packed.head_w);
            CHECK(!pk.packed.qkv_b && !pk.packed.ln1_w && !pk.packed.patch_w);
            CHECK(!pk.packed.t_qkv_w == !ref.params.t_qkv_w);
            CHECK(!pk.packed.l_fc_w == !ref.params.l_fc_w &&
                  !pk.packed.w_fc_w == !ref.params.w_fc_w);
            tt_batch(&r, x, nx, labels, B, cfg.classes);
            CHECK_EQ_INT(tsf_model_forward(&ref, x, B, T, H, W, l1), TSF_OK);
            CHECK_EQ_INT(tsf_model_forward(&pk, x, B, T, H, W, l2), TSF_OK);
            if (!CHECK(same_bits(l1, l2, nl))) printf("    scheme %d: logits differ\n", a);
            /* training: the packed copy goes stale at each update and is packed again */
            if (!CHECK_EQ_INT(tsf_model_train_init(&ref), TSF_OK) ||
                !CHECK_EQ_INT(tsf_model_train_init(&pk), TSF_OK))
                goto next;
            ref.drop_path = pk.drop_path = 0.2f;
            for (step = 0; step < 3; step++) {
                tt_batch(&r, x, nx, labels, B, cfg.classes);
                tsf_model_zero_grad(&ref), tsf_model_zero_grad(&pk);
                CHECK_EQ_INT(tsf_model_loss(&ref, x, labels, B, T, H, W, 1, &loss1), TSF_OK);
                CHECK_EQ_INT(tsf_model_loss(&pk, x, labels, B, T, H, W, 1, &loss2), TSF_OK);
                CHECK(!pk.packed_stale);
                if (fused) {
                    CHECK_EQ_INT(tsf_model_backward_sgd(&ref, &o, 0.05f, &n1), TSF_OK);
                    CHECK_EQ_INT(tsf_model_backward_sgd(&pk, &o, 0.05f, &n2), TSF_OK);
                } else {
                    CHECK_EQ_INT(tsf_model_backward(&ref, NULL), TSF_OK);
                    CHECK_EQ_INT(tsf_model_backward(&pk, NULL), TSF_OK);
                    CHECK_EQ_INT(tsf_sgd_step(&ref, &o, 0.05f, 1, &n1), TSF_OK);
                    CHECK_EQ_INT(tsf_sgd_step(&pk, &o, 0.05f, 1, &n2), TSF_OK);
                }
                CHECK(pk.packed_stale);
                if (!CHECK(loss1 == loss2 && n1 == n2 && tt_same_state(&ref, &pk)))
                    printf("    scheme %d, fused %d, step %d: not the bits of the unpacked model\n",
                           a, fused, step);
            }
            CHECK_EQ_INT(tsf_model_forward(&ref, x, B, T, H, W, l1), TSF_OK);
            CHECK_EQ_INT(tsf_model_forward(&pk, x, B, T, H, W, l2), TSF_OK);
            CHECK(same_bits(l1, l2, nl) && !pk.packed_stale);
            /* a weight written by hand: seen once packed again, in place */
            ref.params.qkv_w[5] += 0.5f, pk.params.qkv_w[5] += 0.5f;
            CHECK_EQ_INT(tsf_model_forward(&ref, x, B, T, H, W, l1), TSF_OK);
            CHECK_EQ_INT(tsf_model_forward(&pk, x, B, T, H, W, l2), TSF_OK);
            CHECK(!same_bits(l1, l2, nl)); /* the old copy: stale, as documented */
            mem = pk.packed_memory;
            CHECK_EQ_INT(tsf_model_pack_weights(&pk), TSF_OK);
            CHECK(pk.packed_memory == mem);
            CHECK_EQ_INT(tsf_model_forward(&pk, x, B, T, H, W, l2), TSF_OK);
            CHECK(same_bits(l1, l2, nl));
            /* drawn again */
            tsf_model_init_params(&ref, 3), tsf_model_init_params(&pk, 3);
            CHECK_EQ_INT(tsf_model_forward(&ref, x, B, T, H, W, l1), TSF_OK);
            CHECK_EQ_INT(tsf_model_forward(&pk, x, B, T, H, W, l2), TSF_OK);
            CHECK(same_bits(l1, l2, nl));
            tsf_model_unpack_weights(&pk);
            CHECK(!pk.packed_memory && !pk.packed.qkv_w && pk.packed_floats == 0);
            CHECK_EQ_INT(tsf_model_forward(&pk, x, B, T, H, W, l2), TSF_OK);
            CHECK(same_bits(l1, l2, nl));
            tsf_model_unpack_weights(&pk); /* twice: nothing */
        next:
            tsf_model_free(&ref);
            tsf_model_free(&pk);
        }
}

/* ---- learning-rate schedules ----------------------------------------------------------------- */

static void test_train_lr_schedules(void) {
    static const float steps[3] = {0.0f, 11.0f, 14.0f}, factors[3] = {1.0f, 0.1f, 0.01f};
    static const float epochs[6] = {0.0f, 10.99f, 11.0f, 13.5f, 14.0f, 14.9f};
    static const double want[6] = {0.005, 0.005, 0.0005, 0.0005, 0.00005, 0.00005};
    int i;
    for (i = 0; i < 6; i++)
        if (!CHECK_NEAR(tsf_lr_steps(0.005f, epochs[i], steps, factors, 3), want[i], 0, 1e-6))
            printf("    epoch %g\n", (double)epochs[i]);
    /* cosine with linear warm-up: (step + 1) / warmup, then half a cosine to 0 at total */
    CHECK_NEAR(tsf_lr_cosine(0.1f, 0, 10, 110), 0.01, 0, 1e-6);
    CHECK_NEAR(tsf_lr_cosine(0.1f, 4, 10, 110), 0.05, 0, 1e-6);
    CHECK_NEAR(tsf_lr_cosine(0.1f, 9, 10, 110), 0.1, 0, 1e-6);
    CHECK_NEAR(tsf_lr_cosine(0.1f, 10, 10, 110), 0.1, 0, 1e-6);
    CHECK_NEAR(tsf_lr_cosine(0.1f, 35, 10, 110), 0.05 * (1 + cos(3.14159265358979 / 4)), 0, 1e-5);
    CHECK_NEAR(tsf_lr_cosine(0.1f, 60, 10, 110), 0.05, 0, 1e-5);
    CHECK_NEAR(tsf_lr_cosine(0.1f, 109, 10, 110), 0.05 * (1 + cos(3.14159265358979 * 0.99)), 1e-8,
               1e-3);
    CHECK(tsf_lr_cosine(0.1f, 110, 10, 110) == 0.0f);
    CHECK(tsf_lr_cosine(0.1f, 500, 10, 110) == 0.0f);
    /* no warm-up */
    CHECK_NEAR(tsf_lr_cosine(0.1f, 0, 0, 100), 0.1, 0, 1e-6);
    CHECK_NEAR(tsf_lr_cosine(0.1f, 50, 0, 100), 0.05, 0, 1e-5);
    /* monotone: up during the warm-up, down after */
    for (i = 1; i < 110; i++) {
        float prev = tsf_lr_cosine(0.1f, i - 1, 10, 110), cur = tsf_lr_cosine(0.1f, i, 10, 110);
        if (!CHECK(i < 10 ? cur > prev : cur <= prev)) break;
    }
}

/* ---- checkpoints ----------------------------------------------------------------------------- */

/* A small training run whose batches come from ts->data_rng, with drop path, dropout and
   label smoothing (so the model's generator and the state matter) and a cosine schedule. */
#define TT_RUN_B 2
#define TT_RUN_T 2
#define TT_RUN_HW 8

static tsf_config tt_run_cfg(void) { return tt_cfg(TSF_ATTN_DIVIDED, 8, 4, 2, 12, 3, 2, 3); }

static int tt_run(tsf_model *m, tsf_train_state *ts, int steps) {
    size_t nx = (size_t)TT_RUN_B * 3 * TT_RUN_T * TT_RUN_HW * TT_RUN_HW;
    float *x = tsft_alloc(nx), loss;
    int *labels = tt_labels(TT_RUN_B), k;
    tsf_sgd o = tsf_sgd_default();
    for (k = 0; k < steps; k++) {
        tt_batch(&ts->data_rng, x, nx, labels, TT_RUN_B, m->cfg.classes);
        if (tt_step(m, x, labels, TT_RUN_B, TT_RUN_T, TT_RUN_HW, TT_RUN_HW, &o,
                    tsf_lr_cosine(0.05f, ts->step, 2, 12), &loss))
            return 0;
        ts->step++;
        if (++ts->epoch_step == 4) ts->epoch++, ts->epoch_step = 0;
    }
    return 1;
}

/* Train 6 steps, saving a checkpoint after 3; a fresh model loaded from the checkpoint and
   trained 3 more steps ends with the same bits. The checkpoint also loads as a plain model. */
static void test_train_checkpoint_resume(void) {
    tsf_config cfg = tt_run_cfg();
    tsf_model m, r, plain;
    tsf_train_state ts, ts3, tr;
    tsf_error err;
    char path[256];
    float *w3 = NULL, *b3 = NULL;
    tsf_rng rng3;
    memset(&m, 0, sizeof m), memset(&r, 0, sizeof r), memset(&plain, 0, sizeof plain);
    memset(&ts, 0, sizeof ts), memset(&err, 0, sizeof err);
    tm_tmp(path, sizeof path, "train_ckpt.safetensors");
    tsf_rng_seed(&ts.data_rng, 71);
    if (!CHECK_EQ_INT(tsf_model_init(&m, &cfg, TT_RUN_B, 72), TSF_OK)) return;
    m.drop_path = 0.2f, m.label_smoothing = 0.1f, m.dropout = 0.1f;
    if (!CHECK_EQ_INT(tsf_model_train_init(&m), TSF_OK) || !CHECK(tt_run(&m, &ts, 3))) goto done;
    if (!CHECK_EQ_INT(tsf_checkpoint_save(&m, &ts, path, &err), TSF_OK)) {
        printf("    %s\n", err.msg);
        goto done;
    }
    w3 = fcopy(m.param_memory, m.param_floats), b3 = fcopy(m.momentum_memory, m.param_floats);
    ts3 = ts, rng3 = m.rng;
    if (!CHECK(tt_run(&m, &ts, 3))) goto done;

    /* resume */
    if (!CHECK_EQ_INT(tsf_checkpoint_load(&r, &tr, path, 1, &err), TSF_OK)) {
        printf("    %s\n", err.msg);
        goto done;
    }
    CHECK(tm_same_config(&r.cfg, &m.cfg));
    CHECK_EQ_INT(r.sgd_steps, 3);
    CHECK_EQ_INT(tr.step, ts3.step);
    CHECK_EQ_INT(tr.epoch, ts3.epoch);
    CHECK_EQ_INT(tr.epoch_step, ts3.epoch_step);
    CHECK(memcmp(&tr.data_rng, &ts3.data_rng, sizeof tr.data_rng) == 0);
    CHECK(memcmp(&r.rng, &rng3, sizeof rng3) == 0);
    CHECK(r.drop_path == 0.2f && r.label_smoothing == 0.1f && r.dropout == 0.1f);
    CHECK(r.grad_memory != NULL && r.momentum_memory != NULL);
    if (CHECK_EQ_INT(r.param_floats, m.param_floats)) {
        CHECK(tt_same_tensors(&r, r.param_memory, w3));
        CHECK(tt_same_tensors(&r, r.momentum_memory, b3));
    }
    if (CHECK(tt_run(&r, &tr, 3))) {
        CHECK(tt_same_state(&r, &m));
        CHECK_EQ_INT(r.sgd_steps, m.sgd_steps);
        CHECK(memcmp(&tr.data_rng, &ts.data_rng, sizeof tr.data_rng) == 0);
        CHECK(memcmp(&r.rng, &m.rng, sizeof r.rng) == 0);
    }

    /* a plain model load takes the weights and skips the optimizer state */
    if (CHECK_EQ_INT(tsf_model_load(&plain, path, 1, &err), TSF_OK)) {
        CHECK(plain.grad_memory == NULL && plain.momentum_memory == NULL);
        CHECK(tm_same_config(&plain.cfg, &m.cfg));
        if (CHECK_EQ_INT(plain.param_floats, m.param_floats))
            CHECK(tt_same_tensors(&plain, plain.param_memory, w3));
    } else {
        printf("    %s\n", err.msg);
    }
    /* a checkpoint needs the optimizer state: a model without training set up has none */
    if (plain.param_memory) CHECK_EQ_INT(tsf_checkpoint_save(&plain, &ts, path, &err), TSF_ERR_ARG);
done:
    unlink(path);
    tsf_model_free(&m);
    tsf_model_free(&r);
    tsf_model_free(&plain);
}

/* A model file (no train_state) is refused as a checkpoint, with a message. */
static void test_train_checkpoint_model_file(void) {
    tsf_config cfg = tt_run_cfg();
    tsf_model m, r;
    tsf_train_state ts;
    tsf_error err;
    char path[256];
    memset(&m, 0, sizeof m), memset(&r, 0, sizeof r), memset(&err, 0, sizeof err);
    tm_tmp(path, sizeof path, "train_model.safetensors");
    if (!CHECK_EQ_INT(tsf_model_init(&m, &cfg, 1, 3), TSF_OK)) return;
    if (CHECK_EQ_INT(tsf_model_save(&m, path, &err), TSF_OK)) {
        CHECK_EQ_INT(tsf_checkpoint_load(&r, &ts, path, 1, &err), TSF_ERR_FORMAT);
        CHECK(err.msg[0] != 0);
        CHECK(r.param_memory == NULL && r.grad_memory == NULL);
    }
    unlink(path);
    tsf_model_free(&m);
    tsf_model_free(&r);
}

/* Writes go to path.tmp, then a rename: a failed write leaves no file behind and the previous
   checkpoint whole and loadable. */
static void test_train_checkpoint_atomic(void) {
    tsf_config cfg = tt_run_cfg();
    tsf_model m, r;
    tsf_train_state ts, tr;
    tsf_error err;
    char dir[256], bad[300], path[256], tmp[320];
    unsigned char *before, *after;
    size_t size_before = 0, size_after = 0;
    float *w0;
    memset(&m, 0, sizeof m), memset(&r, 0, sizeof r), memset(&ts, 0, sizeof ts);
    memset(&err, 0, sizeof err);
    tm_tmp(dir, sizeof dir, "train_nodir");
    snprintf(bad, sizeof bad, "%s/ckpt.safetensors", dir);
    tm_tmp(path, sizeof path, "train_atomic.safetensors");
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (!CHECK_EQ_INT(tsf_model_init(&m, &cfg, 1, 4), TSF_OK)) return;
    if (!CHECK_EQ_INT(tsf_model_train_init(&m), TSF_OK)) goto done;
    ts.step = 17;

    /* a directory that does not exist: an error with a message, and no file */
    CHECK_EQ_INT(tsf_checkpoint_save(&m, &ts, bad, &err), TSF_ERR_IO);
    CHECK(err.msg[0] != 0);
    CHECK(!tm_exists(bad));
    snprintf(tmp, sizeof tmp, "%s.tmp", bad);
    CHECK(!tm_exists(tmp));
    snprintf(tmp, sizeof tmp, "%s.tmp", path);

    /* a good checkpoint, then a save whose temporary file cannot be created */
    if (!CHECK_EQ_INT(tsf_checkpoint_save(&m, &ts, path, &err), TSF_OK)) goto done;
    CHECK(!tm_exists(tmp)); /* renamed away */
    before = tm_read(path, &size_before);
    w0 = fcopy(m.param_memory, m.param_floats);
    if (!CHECK(before != NULL) || !CHECK(mkdir(tmp, 0700) == 0)) goto done;
    m.params.head_w[0] += 1.0f, ts.step = 18;
    memset(&err, 0, sizeof err);
    CHECK_EQ_INT(tsf_checkpoint_save(&m, &ts, path, &err), TSF_ERR_IO);
    CHECK(err.msg[0] != 0);
    CHECK_EQ_INT(tsf_model_save(&m, path, &err), TSF_ERR_IO);
    rmdir(tmp);
    after = tm_read(path, &size_after);
    CHECK(after != NULL && size_after == size_before && memcmp(before, after, size_before) == 0);
    if (CHECK_EQ_INT(tsf_checkpoint_load(&r, &tr, path, 1, &err), TSF_OK)) {
        CHECK_EQ_INT(tr.step, 17);
        CHECK(same_bits(r.params.head_w, w0 + (m.params.head_w - m.param_memory),
                        (size_t)cfg.classes * cfg.dim));
    }
    /* and once the obstacle is gone, the save goes through */
    CHECK_EQ_INT(tsf_checkpoint_save(&m, &ts, path, &err), TSF_OK);
    tsf_model_free(&r);
    if (CHECK_EQ_INT(tsf_checkpoint_load(&r, &tr, path, 1, &err), TSF_OK)) {
        CHECK_EQ_INT(tr.step, 18);
        CHECK(r.params.head_w[0] == m.params.head_w[0]);
    }
done:
    rmdir(tmp);
    unlink(path);
    tsf_model_free(&m);
    tsf_model_free(&r);
}

/* ---- NaN / Inf, and misuse ------------------------------------------------------------------- */

/* A NaN in the input or an Inf in the weights: tsf_model_loss says TSF_ERR_NONFINITE, and
   the SGD step that would follow refuses to touch the weights. */
static void test_train_nonfinite(void) {
    int a, where;
    for (a = 0; a < 3; a++)
        for (where = 0; where < 4; where++) {
            tsf_config cfg = tt_cfg(a, 8, 4, 2, 12, 2, 2, 3);
            tsf_model m;
            tsf_sgd o = tsf_sgd_default();
            tsf_rng r;
            int B = 2, T = 2, H = 8, W = 8, *labels = tt_labels(B);
            size_t nx = (size_t)B * 3 * T * H * W;
            float *x = tsft_alloc(nx), loss = 0.0f, *w0;
            memset(&m, 0, sizeof m);
            tsf_rng_seed(&r, 81);
            tt_batch(&r, x, nx, labels, B, cfg.classes);
            if (!CHECK_EQ_INT(tsf_model_init(&m, &cfg, B, 2), TSF_OK)) continue;
            if (!CHECK_EQ_INT(tsf_model_train_init(&m), TSF_OK)) goto next;
            CHECK_EQ_INT(tsf_model_loss(&m, x, labels, B, T, H, W, 1, &loss), TSF_OK);
            if (where == 0) x[nx / 2] = NAN;
            if (where == 1) x[5] = INFINITY;
            if (where == 2) m.params.patch_w[7] = INFINITY;
            if (where == 3) m.params.head_b[1] = INFINITY;
            w0 = fcopy(m.param_memory, m.param_floats);
            CHECK_EQ_INT(tsf_model_loss(&m, x, labels, B, T, H, W, 1, &loss), TSF_ERR_NONFINITE);
            CHECK_EQ_INT(tsf_model_loss(&m, x, labels, B, T, H, W, 0, &loss), TSF_ERR_NONFINITE);
            tsf_model_zero_grad(&m);
            CHECK_EQ_INT(tsf_model_loss(&m, x, labels, B, T, H, W, 1, &loss), TSF_ERR_NONFINITE);
            if (tsf_model_backward(&m, NULL) == TSF_OK)
                CHECK_EQ_INT(tsf_sgd_step(&m, &o, 0.01f, 1, NULL), TSF_ERR_NONFINITE);
            CHECK(same_bits(m.param_memory, w0, m.param_floats));
            CHECK_EQ_INT(m.sgd_steps, 0);
        next:
            tsf_model_free(&m);
        }
}

/* Calls out of order and bad arguments are refused with TSF_ERR_ARG. */
static void test_train_args(void) {
    tsf_config cfg = tt_cfg(TSF_ATTN_JOINT, 8, 4, 2, 12, 2, 2, 3);
    tsf_model m;
    tsf_sgd o = tsf_sgd_default();
    tsf_rng r;
    int B = 2, T = 2, H = 8, W = 8, *labels = tt_labels(B), bad[2];
    size_t nx = (size_t)B * 3 * T * H * W;
    float *x = tsft_alloc(nx), loss = -1.0f, l2 = -2.0f;
    memset(&m, 0, sizeof m);
    tsf_rng_seed(&r, 91);
    tt_batch(&r, x, nx, labels, B, cfg.classes);
    if (!CHECK_EQ_INT(tsf_model_init(&m, &cfg, 0, 1), TSF_OK)) return;
    /* without training set up: the loss works (inference), the rest is refused */
    CHECK_EQ_INT(tsf_model_loss(&m, x, labels, B, T, H, W, 0, &loss), TSF_OK);
    CHECK(loss > 0.0f && loss < 10.0f);
    CHECK_EQ_INT(tsf_model_backward(&m, NULL), TSF_ERR_ARG);
    CHECK_EQ_INT(tsf_sgd_step(&m, &o, 0.1f, 1, NULL), TSF_ERR_ARG);
    tsf_model_zero_grad(&m); /* harmless */
    /* training set up after the first forward pass (B = 0 at init) */
    CHECK_EQ_INT(tsf_model_train_init(&m), TSF_OK);
    CHECK_EQ_INT(tsf_model_train_init(&m), TSF_OK);          /* twice is fine */
    CHECK_EQ_INT(tsf_model_backward(&m, NULL), TSF_ERR_ARG); /* no loss since */
    CHECK_EQ_INT(tsf_model_loss(&m, x, labels, B, T, H, W, 1, &l2), TSF_OK);
    CHECK(l2 == loss);
    /* a forward pass in between drops the loss's gradient */
    CHECK_EQ_INT(tsf_model_forward(&m, x, B, T, H, W, NULL), TSF_OK);
    CHECK_EQ_INT(tsf_model_backward(&m, NULL), TSF_ERR_ARG);
    CHECK_EQ_INT(tsf_model_loss(&m, x, labels, B, T, H, W, 1, &l2), TSF_OK);
    CHECK_EQ_INT(tsf_model_backward(&m, NULL), TSF_OK);
    /* labels out of range, no labels */
    bad[0] = 0, bad[1] = cfg.classes;
    CHECK_EQ_INT(tsf_model_loss(&m, x, bad, B, T, H, W, 1, &loss), TSF_ERR_ARG);
    bad[1] = -1;
    CHECK_EQ_INT(tsf_model_loss(&m, x, bad, B, T, H, W, 1, &loss), TSF_ERR_ARG);
    CHECK_EQ_INT(tsf_model_loss(&m, x, NULL, B, T, H, W, 1, &loss), TSF_ERR_ARG);
    CHECK_EQ_INT(tsf_model_loss(&m, NULL, labels, B, T, H, W, 1, &loss), TSF_ERR_ARG);
    /* loss may be NULL */
    CHECK_EQ_INT(tsf_model_loss(&m, x, labels, B, T, H, W, 1, NULL), TSF_OK);
    tsf_model_free(&m);
}

/* ---- threads --------------------------------------------------------------------------------- */
#if defined(_OPENMP) && !defined(TSF_NO_OPENMP)
/* The same seed gives bit-identical weights after 3 SGD steps with 1, 2 and 3 threads, for
   every scheme. The model is large enough (D 96, 8 x 8 patches, 4 frames, 2 clips) that the
   steps' gathers and residuals run their sequences in parallel (more than TSF__PAR_WORK
   floats a run). */
static void test_train_threads(void) {
    static const int counts[3] = {1, 2, 3};
    int saved = omp_get_max_threads(), a, k, step, B = 2, T = 4, H = 64, W = 64;
    int *labels = tt_labels(B);
    size_t nx = (size_t)B * 3 * T * H * W;
    float *x = tsft_alloc(nx);
    for (a = 0; a < TSF_NUM_ATTENTION; a++) {
        tsf_config cfg = tt_cfg(a, 64, 8, 4, 96, 2, 3, 5);
        tsf_model m[3];
        tsf_sgd o = tsf_sgd_default();
        float loss[3] = {0, 0, 0};
        memset(m, 0, sizeof m);
        for (k = 0; k < 3; k++) {
            tsf_rng r;
            omp_set_num_threads(counts[k]);
            tsf_rng_seed(&r, 101);
            if (!CHECK_EQ_INT(tsf_model_init(&m[k], &cfg, B, 102), TSF_OK) ||
                !CHECK_EQ_INT(tsf_model_train_init(&m[k]), TSF_OK))
                break;
            tt_perturb(&m[k], 103, 0.02f); /* temporal_fc and time_embed start at zero */
            m[k].drop_path = 0.1f;
            for (step = 0; step < 3; step++) {
                tt_batch(&r, x, nx, labels, B, cfg.classes);
                if (tt_step(&m[k], x, labels, B, T, H, W, &o, 0.01f, &loss[k])) break;
            }
            if (k > 0 && !CHECK(tt_same_state(&m[k], &m[0]) && loss[k] == loss[0]))
                printf("    scheme %d: %d threads differ from 1\n", a, counts[k]);
        }
        omp_set_num_threads(saved);
        for (k = 0; k < 3; k++) tsf_model_free(&m[k]);
    }
}
#endif

/* ---- overfitting one batch ------------------------------------------------------------------- */

/* A tiny model of each variant drives the loss on 4 fixed clips below 1/20 of its start
   within a few hundred steps of SGD (momentum 0.9, Nesterov, no weight decay). */
static void tt_overfit(int attention) {
    tsf_config cfg = tt_cfg(attention, 16, 8, 4, 32, 2, 2, 4); /* 2 x 2 patches, 4 frames */
    tsf_model m;
    tsf_sgd o;
    tsf_rng r;
    int B = 4, T = 4, H = 16, W = 16, *labels = tt_labels(B), b, step;
    size_t nx = (size_t)B * 3 * T * H * W;
    float *x = tsft_alloc(nx), first = 0.0f, loss = 0.0f;
    memset(&m, 0, sizeof m);
    memset(&o, 0, sizeof o);
    o.momentum = 0.9f, o.nesterov = 1;
    tsf_rng_seed(&r, 111);
    tt_batch(&r, x, nx, labels, B, cfg.classes);
    for (b = 0; b < B; b++) labels[b] = b; /* every class once */
    if (!CHECK_EQ_INT(tsf_model_init(&m, &cfg, B, 112), TSF_OK)) return;
    if (!CHECK_EQ_INT(tsf_model_train_init(&m), TSF_OK)) goto done;
    for (step = 0; step < 300; step++) {
        if (tt_step(&m, x, labels, B, T, H, W, &o, 0.1f, &loss)) break;
        if (step == 0) first = loss;
        if (loss < first / 20) break;
    }
    if (!CHECK(first > 1.0f) || !CHECK(loss < first / 20))
        printf("    %s: loss %.4f -> %.5f in %d steps\n", tsf_attention_name(attention),
               (double)first, (double)loss, step);
done:
    tsf_model_free(&m);
}

static void test_train_overfit_space(void) { tt_overfit(TSF_ATTN_SPACE); }
static void test_train_overfit_joint(void) { tt_overfit(TSF_ATTN_JOINT); }
static void test_train_overfit_divided(void) { tt_overfit(TSF_ATTN_DIVIDED); }
