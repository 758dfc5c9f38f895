/* test_scratch.c - tsf_model_init_params_scratch, the initialisation for training from
   scratch. Included by test_main.c after test_train.c (it uses tt_cfg). */

static double ts_rms(const float *x, size_t n) {
    double s = 0;
    size_t i;
    for (i = 0; i < n; i++) s += (double)x[i] * (double)x[i];
    return sqrt(s / (double)n);
}

/* The blocks' matrices at std 1/sqrt(D) (temporal_fc, local_dense, width_dense too: no
   branch starts switched off), the position rows after the cls row and the time embedding
   waves of RMS 0.5 (so position and time are visible at the first step), everything else
   as the original's initialisation; one seed gives one model. */
static void test_scratch_init(void) {
    int scheme;
    for (scheme = 0; scheme < TSF_NUM_ATTENTION; scheme++) {
        tsf_config c = tt_cfg(scheme, 32, 8, 8, 64, 2, 8, 5);
        tsf_model a, b, o;
        float **va, **vo;
        int f, bad = 0;
        double sz[TSF_NUM_PARAMS];
        if (!CHECK_EQ_INT(tsf_model_init(&a, &c, 0, 7), TSF_OK)) return;
        CHECK_EQ_INT(tsf_model_init(&b, &c, 0, 1), TSF_OK);
        CHECK_EQ_INT(tsf_model_init(&o, &c, 0, 7), TSF_OK); /* the original's, seed 7 */
        tsf_model_init_params_scratch(&a, 7);
        tsf_model_init_params_scratch(&b, 7);
        CHECK(memcmp(a.param_memory, b.param_memory, a.param_floats * sizeof(float)) == 0);
        va = (float **)&a.params, vo = (float **)&o.params;
        tsf__param_sizes(&a.cfg, sz);
        for (f = 0; f < TSF_NUM_PARAMS; f++) {
            const struct tsf__param_row *r = &tsf__param_table[f];
            size_t n = (size_t)sz[f];
            if (!va[f]) continue;
            if (r->per_block && r->kind == TSF__MATRIX) {
                double rms = ts_rms(va[f], n);
                if (fabs(rms - 0.125) > 0.01) bad++, printf("    %s: rms %g\n", r->hf, rms);
            } else if (va[f] == a.params.pos_embed) {
                double rms = ts_rms(va[f] + 64, n - 64);
                if (fabs(rms - 0.5) > 0.05 || memcmp(va[f], vo[f], 64 * sizeof(float)) != 0)
                    bad++, printf("    pos_embed: rms %g\n", rms);
            } else if (va[f] == a.params.time_embed) {
                double rms = ts_rms(va[f], n);
                if (fabs(rms - 0.5) > 0.1) bad++, printf("    time_embed: rms %g\n", rms);
            } else if (memcmp(va[f], vo[f], n * sizeof(float)) != 0) {
                bad++, printf("    %s differs from the original's\n", r->hf);
            }
        }
        CHECK_EQ_INT(bad, 0);
        tsf_model_free(&a), tsf_model_free(&b), tsf_model_free(&o);
    }
}
