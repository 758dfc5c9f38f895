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
            if (!CHECK_EQ_INT(tsf_model_init(&a, &c, 2, 3), TSF_OK)) return;
            tt_perturb(&a, 11, 0.05f);
            CHECK_EQ_INT(tsf_model_init(&b, &c, 2, 3), TSF_OK);
            memcpy(b.param_memory, a.param_memory, a.param_floats * sizeof(float));
            CHECK_EQ_INT(tsf_model_train_init(&a), TSF_OK);
            CHECK_EQ_INT(tsf_model_train_init(&b), TSF_OK);
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
