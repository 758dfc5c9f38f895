/* test_parallel.c - what a data-parallel driver needs from the library (issue 20): the
   gradient buffer, the per-range hook of tsf_model_backward_sgd, and tsf_shard. Included by
   test_main.c after test_train.c (it uses tt_cfg and tt_perturb). No transport here: two
   models in one process stand for two processes, and the hook does what a reduction would. */

/* Ranges a hook saw: where, how long, which block, in call order. */
typedef struct tp_log {
    float *base;
    size_t total;
    int n, bad;
    long long start[256], len[256];
    int block[256];
    float scale; /* multiply every range by this (1: look only) */
    int fail_at; /* return TSF_ERR_IO at this call (-1: never)  */
} tp_log;

static tsf_status tp_hook(void *ctx, float *grad, size_t n, int block) {
    tp_log *lg = (tp_log *)ctx;
    size_t i;
    if (lg->n == lg->fail_at) return TSF_ERR_IO;
    if (grad < lg->base || grad + n > lg->base + lg->total || lg->n >= 256) lg->bad++;
    if (lg->n < 256) {
        lg->start[lg->n] = grad - lg->base, lg->len[lg->n] = (long long)n;
        lg->block[lg->n] = block;
    }
    lg->n++;
    for (i = 0; i < n; i++) grad[i] *= lg->scale;
    return TSF_OK;
}

static void tp_input(float *x, size_t n, unsigned long long seed) {
    tsf_rng r;
    size_t i;
    tsf_rng_seed(&r, seed);
    for (i = 0; i < n; i++) x[i] = tsf_rng_normal(&r);
}

/* Two models of c for batch 2, a's weights perturbed (seed) and b's a copy of them, both set
   up for training. 0 when a cannot be made (a failed check). */
static int tp_twins(tsf_model *a, tsf_model *b, const tsf_config *c, unsigned long long seed) {
    if (!CHECK_EQ_INT(tsf_model_init(a, c, 2, 3), TSF_OK)) return 0;
    tt_perturb(a, seed, 0.05f);
    CHECK_EQ_INT(tsf_model_init(b, c, 2, 3), TSF_OK);
    memcpy(b->param_memory, a->param_memory, a->param_floats * sizeof(float));
    CHECK_EQ_INT(tsf_model_train_init(a), TSF_OK);
    CHECK_EQ_INT(tsf_model_train_init(b), TSF_OK);
    return 1;
}

/* The hook sees blocks last to first, then the tensors outside them (block -1); the ranges
   are disjoint and cover every gradient float of the step once; in the fused layout a block
   is one range. Doubling every range equals doubling the rate (no momentum, no decay), bit
   for bit; a failing hook stops the pass with its status. */
static void test_parallel_grad_hook(void) {
    int scheme, fused, k;
    for (scheme = 0; scheme < TSF_NUM_ATTENTION; scheme++)
        for (fused = 0; fused < 2; fused++) {
            tsf_config c = tt_cfg(scheme, 8, 4, 2, 12, 3, 2, 3);
            tsf_model a, b;
            tp_log lg;
            tsf_sgd o = tsf_sgd_default();
            static float x[2 * 3 * 2 * 8 * 8];
            int labels[2] = {0, 2}, ok = 1;
            size_t n, i, covered = 0;
            float *buf, loss;
            c.fused_sgd = fused;
            o.momentum = 0.0f, o.weight_decay = 0.0f;
            tp_input(x, sizeof x / sizeof *x, 5);
            if (!tp_twins(&a, &b, &c, 11)) return;
            buf = tsf_model_grad_buffer(&a, &n);
            CHECK(buf == a.grad_memory && n == a.grad_floats);
            memset(&lg, 0, sizeof lg);
            lg.base = buf, lg.total = n, lg.scale = 2.0f, lg.fail_at = -1;
            a.grad_hook = tp_hook, a.grad_hook_ctx = &lg;
            CHECK_EQ_INT(tsf_model_loss(&a, x, labels, 2, 2, 8, 8, 1, &loss), TSF_OK);
            CHECK_EQ_INT(tsf_model_backward_sgd(&a, &o, 0.01f, NULL), TSF_OK);
            CHECK_EQ_INT(tsf_model_loss(&b, x, labels, 2, 2, 8, 8, 1, &loss), TSF_OK);
            CHECK_EQ_INT(tsf_model_backward_sgd(&b, &o, 0.02f, NULL), TSF_OK);
            CHECK(memcmp(a.param_memory, b.param_memory, a.param_floats * sizeof(float)) == 0);
            CHECK_EQ_INT(lg.bad, 0);
            /* order: blocks 2, 1, 0, then -1; fused: exactly one range a block */
            for (k = 0; k < lg.n && k < 256; k++) {
                int prev = k ? lg.block[k - 1] : 2;
                if (lg.block[k] > prev || (lg.block[k] != prev && k > 0 && prev == -1)) ok = 0;
                covered += (size_t)lg.len[k];
            }
            CHECK(ok && lg.block[0] == 2 && lg.block[lg.n - 1] == -1);
            if (fused) CHECK(lg.n >= 4 && lg.block[1] == 1 && lg.block[2] == 0);
            /* every gradient float once: the ranges add up to the parameters, plus the
               alignment padding inside a range */
            if (!CHECK(covered >= tsf_config_num_params(&a.cfg) &&
                       covered < tsf_config_num_params(&a.cfg) + 16 * TSF_NUM_PARAMS * 4))
                printf("    %s fused %d: %zu floats in %d ranges, %zu parameters\n",
                       tsf_attention_name(scheme), fused, covered, lg.n,
                       tsf_config_num_params(&a.cfg));
            for (k = 1; k < lg.n && k < 256; k++)
                for (i = 0; i < (size_t)k; i++)
                    if (lg.start[k] < lg.start[i] + lg.len[i] &&
                        lg.start[i] < lg.start[k] + lg.len[k] &&
                        (fused ? lg.block[k] == lg.block[i] : 1))
                        ok = 0; /* fused: blocks reuse the buffer; within a block, disjoint */
            CHECK(ok);
            /* a failing hook stops the pass with its status */
            lg.fail_at = 1, lg.n = 0;
            CHECK_EQ_INT(tsf_model_loss(&a, x, labels, 2, 2, 8, 8, 1, &loss), TSF_OK);
            CHECK_EQ_INT(tsf_model_backward_sgd(&a, &o, 0.01f, NULL), TSF_ERR_IO);
            tsf_model_free(&a), tsf_model_free(&b);
        }
}

/* Two processes with half a batch each, their gradient buffers averaged, take the step one
   process takes on the whole batch (within float rounding: the mean is taken in two halves)
   and end with bit-identical weights. */
static void test_parallel_two_halves(void) {
    int scheme;
    for (scheme = 0; scheme < TSF_NUM_ATTENTION; scheme++) {
        tsf_config c = tt_cfg(scheme, 8, 4, 2, 12, 2, 2, 3);
        tsf_model one, r0, r1;
        tsf_sgd o = tsf_sgd_default();
        static float x[4 * 3 * 2 * 8 * 8];
        size_t clip = 3 * 2 * 8 * 8, n0, n1, i;
        int labels[4] = {0, 2, 1, 1}, step;
        float loss, *g0, *g1;
        double worst = 0;
        tp_input(x, sizeof x / sizeof *x, 9);
        if (!CHECK_EQ_INT(tsf_model_init(&one, &c, 4, 4), TSF_OK)) return;
        tt_perturb(&one, 12, 0.05f);
        CHECK_EQ_INT(tsf_model_init(&r0, &c, 2, 4), TSF_OK);
        CHECK_EQ_INT(tsf_model_init(&r1, &c, 2, 4), TSF_OK);
        memcpy(r0.param_memory, one.param_memory, one.param_floats * sizeof(float));
        memcpy(r1.param_memory, one.param_memory, one.param_floats * sizeof(float));
        CHECK_EQ_INT(tsf_model_train_init(&one), TSF_OK);
        CHECK_EQ_INT(tsf_model_train_init(&r0), TSF_OK);
        CHECK_EQ_INT(tsf_model_train_init(&r1), TSF_OK);
        for (step = 0; step < 3; step++) {
            tsf_model_zero_grad(&one), tsf_model_zero_grad(&r0), tsf_model_zero_grad(&r1);
            CHECK_EQ_INT(tsf_model_loss(&one, x, labels, 4, 2, 8, 8, 1, &loss), TSF_OK);
            CHECK_EQ_INT(tsf_model_backward(&one, NULL), TSF_OK);
            CHECK_EQ_INT(tsf_model_loss(&r0, x, labels, 2, 2, 8, 8, 1, &loss), TSF_OK);
            CHECK_EQ_INT(tsf_model_backward(&r0, NULL), TSF_OK);
            CHECK_EQ_INT(tsf_model_loss(&r1, x + 2 * clip, labels + 2, 2, 2, 8, 8, 1, &loss),
                         TSF_OK);
            CHECK_EQ_INT(tsf_model_backward(&r1, NULL), TSF_OK);
            g0 = tsf_model_grad_buffer(&r0, &n0), g1 = tsf_model_grad_buffer(&r1, &n1);
            if (!CHECK(n0 == n1)) break;
            for (i = 0; i < n0; i++) g0[i] = g1[i] = 0.5f * (g0[i] + g1[i]); /* the "all-reduce" */
            CHECK_EQ_INT(tsf_sgd_step(&one, &o, 0.05f, 1, NULL), TSF_OK);
            CHECK_EQ_INT(tsf_sgd_step(&r0, &o, 0.05f, 1, NULL), TSF_OK);
            CHECK_EQ_INT(tsf_sgd_step(&r1, &o, 0.05f, 1, NULL), TSF_OK);
        }
        CHECK(memcmp(r0.param_memory, r1.param_memory, r0.param_floats * sizeof(float)) == 0);
        for (i = 0; i < one.param_floats; i++) {
            double d = fabs((double)one.param_memory[i] - (double)r0.param_memory[i]);
            worst = d > worst ? d : worst;
        }
        if (!CHECK(worst < 1e-6)) printf("    %s: %g\n", tsf_attention_name(scheme), worst);
        tsf_model_free(&one), tsf_model_free(&r0), tsf_model_free(&r1);
    }
}

/* tsf_shard: contiguous shares in rank order, sizes within one of each other, all of n. */
static void test_parallel_shard(void) {
    long long n, begin, count, next;
    int world, rank, bad = 0;
    for (n = 0; n < 40; n++)
        for (world = 1; world <= 7; world++) {
            long long lo = n, hi = 0;
            for (rank = 0, next = 0; rank < world; rank++) {
                tsf_shard(n, rank, world, &begin, &count);
                if (begin != next || count < 0) bad++;
                next = begin + count;
                lo = count < lo ? count : lo, hi = count > hi ? count : hi;
            }
            if (next != n || hi - lo > 1) bad++;
        }
    CHECK_EQ_INT(bad, 0);
}

/* ---- overlap: m->grad_wait ----------------------------------------------------------------- */
/* A fake driver that overlaps: its hook copies a range away, scribbles NaN over it (the sum
   "under way": the library must not read it) and logs; its wait writes the range back,
   doubled (the "sum" arrives), after checking that the range still holds the NaN (nothing
   wrote it meanwhile: the next block's gradient went to the other slot), that the block's
   weights are still those before the step (its update comes after the wait) and that the
   group was begun, and the next one too (the next block's backward ran before). */
#define TP_RANGES 512
typedef struct tp_ovl {
    tsf_model *m;
    const float *before; /* the weights before the step */
    int n, waits, bad, order_bad, touched, early, fail_hook_at, fail_wait_block, nan_block;
    float *ptr[TP_RANGES], *copy[TP_RANGES];
    size_t len[TP_RANGES];
    int block[TP_RANGES], waited[TP_RANGES];
    char events[2 * TP_RANGES][16]; /* "H 2", "W 2": hook, wait of a block, in order */
    int nev;
} tp_ovl;

/* The block a tensor belongs to (-1: outside the blocks). */
static int tp_tensor_block(const char *name) {
    int l;
    return sscanf(name, "timesformer.encoder.layer.%d.", &l) == 1 ? l : -1;
}

/* 1 when group `block`'s weights are those of `before`. */
static int tp_weights_same(const tsf_model *m, const float *before, int block) {
    int nt = tsf_model_num_tensors(m), i, k, ndim;
    for (i = 0; i < nt; i++) {
        char name[96];
        long long shape[4];
        size_t n = 1;
        float *data;
        tsf_model_tensor(m, i, name, &ndim, shape, &data);
        if (tp_tensor_block(name) != block) continue;
        for (k = 0; k < ndim; k++) n *= (size_t)shape[k];
        if (memcmp(data, before + (data - m->param_memory), n * sizeof(float)) != 0) return 0;
    }
    return 1;
}

static void tp_event(tp_ovl *v, char kind, int block) {
    if (v->nev < 2 * TP_RANGES) snprintf(v->events[v->nev++], 16, "%c %d", kind, block);
}

static tsf_status tp_ovl_hook(void *ctx, float *grad, size_t n, int block) {
    tp_ovl *v = (tp_ovl *)ctx;
    size_t i;
    if (v->n >= TP_RANGES) return v->bad++, TSF_ERR_ARG;
    if (!tp_weights_same(v->m, v->before, block)) v->early++;
    v->ptr[v->n] = grad, v->len[v->n] = n, v->block[v->n] = block, v->waited[v->n] = 0;
    v->copy[v->n] = (float *)malloc(n * sizeof(float));
    memcpy(v->copy[v->n], grad, n * sizeof(float));
    for (i = 0; i < n; i++) grad[i] = NAN;
    if (v->n == 0 || v->block[v->n - 1] != block) tp_event(v, 'H', block); /* a new group */
    v->n++;
    return v->n - 1 == v->fail_hook_at ? TSF_ERR_IO : TSF_OK;
}

static tsf_status tp_ovl_wait(void *ctx, int block) {
    tp_ovl *v = (tp_ovl *)ctx;
    int k, found = 0;
    size_t i;
    char next[16];
    tp_event(v, 'W', block);
    /* the next group has begun: block - 1's, or for block 0 the tensors outside (-1) */
    snprintf(next, sizeof next, "H %d", block > 0 ? block - 1 : -1);
    for (k = 0; k < v->nev && block >= 0; k++) found |= strcmp(v->events[k], next) == 0;
    if (block >= 0 && !found && block != v->fail_wait_block) v->order_bad++;
    if (!tp_weights_same(v->m, v->before, block)) v->early++;
    for (k = 0, found = 0; k < v->n; k++) {
        if (v->block[k] != block || v->waited[k]) continue;
        for (i = 0; i < v->len[k]; i++)
            if (v->ptr[k][i] == v->ptr[k][i]) v->touched++; /* not NaN: written meanwhile */
        for (i = 0; i < v->len[k]; i++)
            v->ptr[k][i] = block == v->nan_block ? NAN : 2.0f * v->copy[k][i];
        free(v->copy[k]), v->copy[k] = NULL, v->waited[k] = 1, found = 1;
    }
    v->waits++;
    if (!found) v->bad++; /* a wait for a group never begun */
    return block == v->fail_wait_block ? TSF_ERR_IO : TSF_OK;
}

static void tp_ovl_reset(tp_ovl *v, tsf_model *m, const float *before) {
    int k;
    for (k = 0; k < v->n; k++) free(v->copy[k]);
    memset(v, 0, sizeof *v);
    v->m = m, v->before = before, v->fail_hook_at = -1, v->fail_wait_block = -2;
    v->nan_block = -2;
}

/* Groups begun and never waited for, after a pass. */
static int tp_ovl_unwaited(const tp_ovl *v) {
    int k, n = 0;
    for (k = 0; k < v->n; k++) n += !v->waited[k];
    return n;
}

/* With grad_wait, in every layout (ordinary, fused, fused + recompute): hooks and waits come
   in the overlapped order (block l's wait after block l-1's hook, block 0's after block
   -1's), the library leaves a range alone between its hook and its wait, and updates a group
   only after its wait; two steps (momentum, weight decay, Nesterov) end with the weights,
   momentum and norm of the same driver without overlap, bit for bit. Then: a failing hook, a
   failing wait and a NaN sum stop the pass with every begun group waited for. */
static void test_parallel_overlap(void) {
    int scheme, layout, step, k, l;
    for (scheme = 0; scheme < TSF_NUM_ATTENTION; scheme++)
        for (layout = 0; layout < 3; layout++) {
            tsf_config c = tt_cfg(scheme, 8, 4, 2, 12, 3, 2, 3);
            tsf_model a, b;
            tp_log lg;
            tp_ovl v;
            tsf_sgd o = tsf_sgd_default();
            static float x[2 * 3 * 2 * 8 * 8];
            int labels[2] = {0, 2}, L = 3;
            char expect[2 * TP_RANGES][16];
            int nexp = 0, ok;
            float loss, na, nb, *before;
            c.fused_sgd = layout > 0, c.recompute = layout == 2;
            tp_input(x, sizeof x / sizeof *x, 6);
            if (!tp_twins(&a, &b, &c, 13)) return;
            before = (float *)malloc(a.param_floats * sizeof(float));
            memset(&lg, 0, sizeof lg);
            memset(&v, 0, sizeof v);
            lg.base = b.grad_memory, lg.total = b.grad_floats, lg.scale = 2.0f, lg.fail_at = -1;
            b.grad_hook = tp_hook, b.grad_hook_ctx = &lg;
            a.grad_hook = tp_ovl_hook, a.grad_wait = tp_ovl_wait, a.grad_hook_ctx = &v;
            /* the order: H 2, H 1, W 2, H 0, W 1, H -1, W 0, W -1 */
            snprintf(expect[nexp++], 16, "H %d", L - 1);
            for (l = L - 2; l >= -1; l--) {
                snprintf(expect[nexp++], 16, "H %d", l);
                snprintf(expect[nexp++], 16, "W %d", l + 1);
            }
            snprintf(expect[nexp++], 16, "W -1");
            for (step = 0; step < 2; step++) {
                tp_ovl_reset(&v, &a, before);
                lg.n = 0;
                CHECK_EQ_INT(tsf_model_loss(&a, x, labels, 2, 2, 8, 8, 1, &loss), TSF_OK);
                CHECK_EQ_INT(tsf_model_loss(&b, x, labels, 2, 2, 8, 8, 1, &loss), TSF_OK);
                memcpy(before, a.param_memory, a.param_floats * sizeof(float));
                CHECK_EQ_INT(tsf_model_backward_sgd(&a, &o, 0.05f, &na), TSF_OK);
                CHECK_EQ_INT(tsf_model_backward_sgd(&b, &o, 0.05f, &nb), TSF_OK);
                ok = v.nev == nexp;
                for (k = 0; ok && k < nexp; k++) ok = strcmp(v.events[k], expect[k]) == 0;
                if (!CHECK(ok)) {
                    printf("    %s layout %d:", tsf_attention_name(scheme), layout);
                    for (k = 0; k < v.nev; k++) printf(" [%s]", v.events[k]);
                    printf("\n");
                }
                CHECK_EQ_INT(v.bad, 0);
                CHECK_EQ_INT(v.order_bad, 0);
                CHECK_EQ_INT(v.touched, 0); /* no range written between its hook and wait */
                CHECK_EQ_INT(v.early, 0);   /* no group updated before its wait */
                CHECK_EQ_INT(tp_ovl_unwaited(&v), 0);
                CHECK_EQ_INT(v.waits, L + 1);
                CHECK(memcmp(&na, &nb, sizeof na) == 0);
                CHECK(memcmp(a.param_memory, b.param_memory, a.param_floats * sizeof(float)) == 0);
                CHECK(memcmp(a.momentum_memory, b.momentum_memory,
                             a.param_floats * sizeof(float)) == 0);
                for (l = -1, ok = 1; l < L; l++) ok &= !tp_weights_same(&a, before, l);
                CHECK(ok); /* every group was updated */
            }
            /* fused: the blocks alternate between the two slots; the driver without
               grad_wait never gets the second */
            if (layout > 0) {
                int first = 0;
                while (first < v.n && v.block[first] != L - 1) first++;
                CHECK(a.grad_spare != NULL && b.grad_spare == NULL);
                for (k = 0, ok = 1; k < v.n; k++)
                    if (v.block[k] >= 0)
                        ok &=
                            (v.ptr[k] >= a.grad_spare && v.ptr[k] < a.grad_spare + a.grad_floats) ==
                            ((L - 1 - v.block[k]) % 2);
                CHECK(ok);
            }
            /* a failing hook (its second range: block 2's in the ordinary layout, block 1's
               in the fused one) stops the pass before any update; every begun group is
               waited for */
            tp_ovl_reset(&v, &a, before);
            v.fail_hook_at = 1;
            CHECK_EQ_INT(tsf_model_loss(&a, x, labels, 2, 2, 8, 8, 1, &loss), TSF_OK);
            memcpy(before, a.param_memory, a.param_floats * sizeof(float));
            CHECK_EQ_INT(tsf_model_backward_sgd(&a, &o, 0.05f, NULL), TSF_ERR_IO);
            CHECK_EQ_INT(tp_ovl_unwaited(&v), 0);
            CHECK(memcmp(before, a.param_memory, a.param_floats * sizeof(float)) == 0);
            /* a failing wait (block 2's): nothing updated, block 1 (begun) waited for */
            tp_ovl_reset(&v, &a, before);
            v.fail_wait_block = L - 1;
            CHECK_EQ_INT(tsf_model_loss(&a, x, labels, 2, 2, 8, 8, 1, &loss), TSF_OK);
            memcpy(before, a.param_memory, a.param_floats * sizeof(float));
            CHECK_EQ_INT(tsf_model_backward_sgd(&a, &o, 0.05f, NULL), TSF_ERR_IO);
            CHECK_EQ_INT(tp_ovl_unwaited(&v), 0);
            CHECK_EQ_INT(v.waits, 2);
            CHECK(memcmp(before, a.param_memory, a.param_floats * sizeof(float)) == 0);
            /* a NaN sum for block 1: block 2 updated, blocks 1 and 0 and the rest not, block
               0 (begun) waited for */
            tp_ovl_reset(&v, &a, before);
            v.nan_block = 1;
            CHECK_EQ_INT(tsf_model_loss(&a, x, labels, 2, 2, 8, 8, 1, &loss), TSF_OK);
            memcpy(before, a.param_memory, a.param_floats * sizeof(float));
            CHECK_EQ_INT(tsf_model_backward_sgd(&a, &o, 0.05f, NULL), TSF_ERR_NONFINITE);
            CHECK_EQ_INT(tp_ovl_unwaited(&v), 0);
            CHECK_EQ_INT(v.waits, 3);
            CHECK(!tp_weights_same(&a, before, 2) && tp_weights_same(&a, before, 1) &&
                  tp_weights_same(&a, before, 0) && tp_weights_same(&a, before, -1));
            tp_ovl_reset(&v, &a, before);
            free(before);
            tsf_model_free(&a), tsf_model_free(&b);
        }
}
