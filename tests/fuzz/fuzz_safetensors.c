/* fuzz_safetensors.c - libFuzzer harness for the safetensors reader, header JSON included.

   Every input is read three ways:
     1. tsf_model_load_memory with no config: the config comes from __metadata__.config (the
        files tsf_model_save writes), class names from __metadata__.labels;
     2. as a checkpoint (momentum, train_state), through a FILE (fmemopen): the path of
        tsf_checkpoint_load, whose reads seek in the file instead of indexing memory;
     3. with a fixed config given, as a Hugging Face folder's config.json provides it, so that
        files without metadata reach the tensor checks (names in either layout, dtypes).
   A model that loads is run forward once when it is small, and every label is read. */
#include "fuzz_common.h"

/* What any model that loaded must satisfy. */
static void fuzz_use_model(tsf_model *m) {
    int k, K = m->cfg.classes < 64 ? m->cfg.classes : 64;
    if (!m->param_memory || tsf_config_num_params(&m->cfg) != m->num_params)
        fuzz_fail("a loaded model is inconsistent");
    for (k = 0; k < K; k++)
        if (!tsf_model_label(m, k)) fuzz_fail("tsf_model_label returned NULL");
    if (tsf_config_flops(&m->cfg, 0, 0, 0) < 2e5 && m->cfg.channels <= 4) {
        const tsf_config *c = &m->cfg;
        size_t n = (size_t)c->channels * c->frames * c->image_size * c->image_size, i;
        float *x = (float *)malloc(n * sizeof *x);
        if (!x) return;
        for (i = 0; i < n; i++) x[i] = (float)(i % 7) * 0.25f - 0.75f;
        /* the weights may hold NaN (the file's business); the pass must still be safe */
        (void)tsf_model_forward(m, x, 1, c->frames, c->image_size, c->image_size, NULL);
        free(x);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    tsf_model m;
    tsf_train_state ts;
    tsf_error err;
    tsf_config cfg;
    tsf__source src;
    tsf_status st;
    FILE *f;

    /* 1. a model file from memory */
    st = tsf_model_load_memory(&m, data, size, NULL, 1, &err);
    fuzz_check_msg(&err);
    if (st == TSF_OK) {
        fuzz_use_model(&m);
        tsf_model_free(&m);
    } else if (m.param_memory || m.labels) {
        fuzz_fail("a failed load left memory in the model");
    }

    /* 2. a checkpoint, read through a FILE */
    f = size ? fmemopen((void *)(uintptr_t)data, size, "rb") : NULL;
    if (f) {
        memset(&m, 0, sizeof m), memset(&ts, 0, sizeof ts);
        src.mem = NULL, src.file = f, src.size = size;
        err.msg[0] = 0;
        st = tsf__st_load(&m, &src, NULL, NULL, 0, 0, &ts, &err);
        fuzz_check_msg(&err);
        if (st == TSF_OK) {
            if (!m.momentum_memory || !m.grad_memory) fuzz_fail("a checkpoint without momentum");
            fuzz_use_model(&m);
            tsf_model_free(&m);
        } else if (m.param_memory) {
            fuzz_fail("a failed checkpoint load left memory in the model");
        }
        fclose(f);
    }

    /* 3. with the config of the seed models (tests/fuzz/make_seeds.c) given */
    memset(&cfg, 0, sizeof cfg);
    cfg.image_size = 8, cfg.patch_size = 4, cfg.frames = 2, cfg.dim = 8, cfg.depth = 1;
    cfg.heads = 2, cfg.classes = 3, cfg.mlp_ratio = 2.0f;
    cfg.attention = size ? data[size - 1] % 3 : 0;
    st = tsf_model_load_memory(&m, data, size, &cfg, 0, &err);
    fuzz_check_msg(&err);
    if (st == TSF_OK) {
        fuzz_use_model(&m);
        tsf_model_free(&m);
    }
    return 0;
}
