/* fuzz_safetensors.c - libFuzzer harness for the safetensors reader, header JSON included.

   Every input is read three ways:
     1. tsf_model_load_memory with no config: the config comes from __metadata__.config (the
        files tsf_model_save writes), class names from __metadata__.labels;
     2. as a checkpoint (momentum, train_state), through a FILE (fmemopen): the path of
        tsf_checkpoint_load, whose reads seek in the file instead of indexing memory;
     3. with a fixed config given, as a Hugging Face folder's config.json provides it, so that
        files without metadata reach the tensor checks (names in either layout, dtypes).
   A model that loads is run forward once when it is small, and every label is read, and its
   file must obey the format's rule that the tensors cover the data exactly: a header length
   one byte short once loaded every tensor one byte off, and nothing here said so. */
#include "fuzz_common.h"

static int fuzz_range_cmp(const void *a, const void *b) {
    const long long *x = (const long long *)a, *y = (const long long *)b;
    return x[0] < y[0] ? -1 : x[0] > y[0];
}

/* A safetensors file that loaded: its tensors' [begin, end) byte ranges, sorted, tile the
   data from 0 to its end with no gap and no overlap. Checked here with the JSON tokenizer
   alone, not with the reader's own list. */
static void fuzz_check_coverage(const uint8_t *data, size_t size) {
    tsf__source src;
    tsf__json j;
    tsf_error err;
    char *hdr = NULL;
    unsigned long long n = 0;
    long long *r, at = 0;
    int e, t, k = 0;
    if (size >= 2 && data[0] == 'P' && data[1] == 'K') return; /* a torch.save archive */
    src.mem = data, src.file = NULL, src.size = size;
    memset(&j, 0, sizeof j);
    if (tsf__st_header(&src, &hdr, &n, &j, NULL, &err) != TSF_OK)
        fuzz_fail("a file that loaded has no safetensors header");
    r = (long long *)malloc(((size_t)j.tok[0].size + 1) * 2 * sizeof *r);
    if (!r) fuzz_fail("out of memory");
    for (e = 0, t = 1; e < j.tok[0].size; e++, t = j.tok[t + 1].next) {
        int of = tsf__json_get(&j, t + 1, "data_offsets");
        if (tsf__json_eq(&j, t, "__metadata__")) continue;
        if (!tsf__json_int(&j, tsf__json_at(&j, of, 0), 0, 1LL << 62, &r[2 * k]) ||
            !tsf__json_int(&j, tsf__json_at(&j, of, 1), 0, 1LL << 62, &r[2 * k + 1]))
            fuzz_fail("a file that loaded has an entry without data_offsets");
        k++;
    }
    qsort(r, (size_t)k, 2 * sizeof *r, fuzz_range_cmp);
    for (e = 0; e < k; e++) {
        if (r[2 * e] != at) fuzz_fail("a file that loaded has a gap or an overlap in its data");
        at = r[2 * e + 1];
    }
    if ((unsigned long long)at != size - 8 - n)
        fuzz_fail("a file that loaded has bytes after its last tensor");
    free(r), free(j.tok), free(hdr);
}

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
        fuzz_check_coverage(data, size);
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
        fuzz_check_coverage(data, size);
        fuzz_use_model(&m);
        tsf_model_free(&m);
    }
    return 0;
}
