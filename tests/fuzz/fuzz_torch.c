/* fuzz_torch.c - libFuzzer harness for the PyTorch checkpoint reader: torch.save zip archives
   (the central directory, ZIP64 included), the pickle machine, the state dict's tensors.

   Every input is read five ways:
     1. tsf_model_load_memory with no config: the config comes from the tensors' shapes, as
        for the original code's .pyth files; a model that loads is loaded again with that
        config given, and must hold the same parameters;
     2. tsf_model_load_memory with a config given: the last byte picks it, 1 to 3 the seed
        models of tests/fuzz/make_seeds.c (divided, joint, space_only: their one-byte archive
        comment), 0 the golden model of the committed fixtures of tests/pytorch (which end
        with a zero comment length);
     3. as 2, through a FILE (fmemopen), the reads seeking in the file instead of indexing
        memory: the same status and message, and on success bit-identical parameters;
     4. the list of tensors alone (tsf__pt_list): every tensor it keeps lies inside the file;
     5. the bytes as a bare data.pkl: the pickle machine with the reader's caps, then the state
        dict listed as the reader lists it (against an empty archive), so that a mutation of a
        pickle is not spent on the zip around it. No count may pass its cap, and every index
        of a value, item, stack slot, mark or memo entry must stay in range.
   A model that loads is run forward once when it is small. */
#include "fuzz_common.h"

/* The configs a given-config load uses (see 2. above). */
static tsf_config fuzz_torch_config(int pick) {
    tsf_config c;
    memset(&c, 0, sizeof c);
    if (pick == 0) { /* tests/golden/divided_base, which tests/pytorch/make_fixtures.py saves */
        c.image_size = 16, c.patch_size = 4, c.frames = 3, c.dim = 24, c.depth = 2, c.heads = 3;
        c.classes = 5, c.mlp_ratio = 2.0f, c.attention = TSF_ATTN_DIVIDED;
    } else { /* make_seeds.c's tiny_config */
        c.image_size = 8, c.patch_size = 4, c.frames = 2, c.dim = 8, c.depth = 1, c.heads = 2;
        c.classes = 3, c.mlp_ratio = 2.0f, c.attention = pick - 1;
    }
    return c;
}

/* What any model that loaded must satisfy; a small one runs forward. */
static void fuzz_torch_use(tsf_model *m) {
    const tsf_config *c = &m->cfg;
    if (!m->param_memory || tsf_config_num_params(c) != m->num_params)
        fuzz_fail("a loaded model is inconsistent");
    if (m->labels) fuzz_fail("class names from a torch checkpoint");
    if (tsf_config_flops(c, 0, 0, 0) < 2e5 && c->channels <= 4) {
        size_t n = (size_t)c->channels * c->frames * c->image_size * c->image_size, i;
        float *x = (float *)malloc(n * sizeof *x);
        if (!x) return;
        for (i = 0; i < n; i++) x[i] = (float)(i % 5) * 0.5f - 1.0f;
        /* NaN weights are the file's business; the pass must still be safe */
        (void)tsf_model_forward(m, x, 1, c->frames, c->image_size, c->image_size, NULL);
        free(x);
    }
}

/* Two models of one config hold the same bits. */
static int fuzz_torch_same(const tsf_model *a, const tsf_model *b) {
    return a->param_floats == b->param_floats && a->num_params == b->num_params &&
           a->cfg.dim == b->cfg.dim && a->cfg.depth == b->cfg.depth &&
           a->cfg.attention == b->cfg.attention &&
           memcmp(a->param_memory, b->param_memory, a->param_floats * sizeof(float)) == 0;
}

/* 4. Every tensor the reader lists with a float dtype lies inside the file. */
static void fuzz_torch_list(const uint8_t *data, size_t size) {
    tsf__wlist l;
    tsf_error err;
    tsf_status st;
    int e, d;
    memset(&l, 0, sizeof l);
    l.files[0].mem = data, l.files[0].file = NULL, l.files[0].size = size, l.nfiles = 1;
    err.msg[0] = 0;
    st = tsf__pt_list(&l, &err);
    fuzz_check_msg(&err);
    for (e = 0; st == TSF_OK && e < l.n; e++) {
        const tsf__wtensor *w = &l.t[e];
        unsigned long long last = 0, esize = w->dtype == TSF__DT_F64   ? 8
                                             : w->dtype == TSF__DT_F32 ? 4
                                                                       : 2;
        int empty = 0;
        if (w->name >= l.len || w->why >= l.len ||
            memchr(l.text + w->name, 0, l.len - w->name) == NULL)
            fuzz_fail("a listed name outside the list's text");
        if (w->why || w->dtype == TSF__DT_NONE) continue;
        if (w->dtype < 0 || w->dtype > TSF__DT_F64 || w->ndim < 0 || w->ndim > TSF__WMAX_DIMS ||
            w->file != 0)
            fuzz_fail("a listed tensor with a bad dtype, rank or file");
        for (d = 0; d < w->ndim; d++) {
            if (w->shape[d] < 0 || w->stride[d] < 0)
                fuzz_fail("a listed tensor with a negative size");
            empty |= w->shape[d] == 0;
        }
        for (d = 0; d < w->ndim && !empty; d++) { /* an empty tensor reads nothing */
            unsigned long long n = (unsigned long long)w->shape[d],
                               s = (unsigned long long)w->stride[d];
            if (s && n - 1 > ((1ULL << 62) - last) / s)
                fuzz_fail("a listed tensor beyond 2^62 elements");
            last += (n - 1) * s;
        }
        if (!empty && (w->off > size || last + 1 > (size - w->off) / esize))
            fuzz_fail("a listed tensor reaches beyond the file");
    }
    tsf__wlist_free(&l);
}

/* 5. The pickle machine alone, on the whole input. */
static void fuzz_torch_pickle(const uint8_t *data, size_t size) {
    tsf__pickle P;
    tsf__zip z;
    tsf__wlist l;
    int ok, i, sd;
    if (size > ((size_t)1 << 20)) return; /* the caps' arrays grow with the input */
    memset(&P, 0, sizeof P), memset(&z, 0, sizeof z), memset(&l, 0, sizeof l);
    P.s = data, P.len = size, P.cap = (int)size + 16; /* as tsf__pt_list sets them */
    P.v = (tsf__pv *)malloc((size_t)P.cap * sizeof *P.v);
    P.it = (tsf__pitem *)malloc((size_t)P.cap * sizeof *P.it);
    P.stack = (int *)malloc((size_t)P.cap * sizeof(int));
    P.marks = (int *)malloc((size_t)P.cap * sizeof(int));
    if (!P.v || !P.it || !P.stack || !P.marks) goto done;
    ok = tsf__pickle_run(&P);
    if (!ok && !P.error) fuzz_fail("a pickle refused without a reason");
    if (P.nv > P.cap || P.nit > P.cap || P.sp > P.cap || P.nm > P.cap || P.nv < 0 || P.nit < 0 ||
        P.sp < 0 || P.nm < 0)
        fuzz_fail("the pickle machine passed a cap");
    if (P.memo_cap > 2 * (int)size + 2 || (P.memo_cap && !P.memo))
        fuzz_fail("the memo grew past twice the pickle");
    for (i = 0; i < P.sp; i++)
        if (P.stack[i] < 0 || P.stack[i] >= P.nv) fuzz_fail("a stack slot out of range");
    for (i = 0; i < P.nm; i++)
        if (P.marks[i] < 0 || P.marks[i] > (i + 1 < P.nm ? P.marks[i + 1] : P.sp))
            fuzz_fail("a mark above the stack or the next mark");
    for (i = 0; i < P.memo_cap; i++)
        if (P.memo[i] < -1 || P.memo[i] >= P.nv) fuzz_fail("a memo entry out of range");
    for (i = 0; i < P.nit; i++)
        if (P.it[i].val < 0 || P.it[i].val >= P.nv || P.it[i].key < -1 || P.it[i].key >= P.nv ||
            (P.it[i].next != -1 && (P.it[i].next <= i || P.it[i].next >= P.nit)))
            fuzz_fail("an item out of range");
    for (i = 0; i < P.nv; i++) { /* each kind's fields, as tsf__pv documents them */
        const tsf__pv *v = &P.v[i];
        switch (v->kind) {
        case TSF__PV_STR:
        case TSF__PV_BYTES:
            if (v->a < 0 || v->b < 0 || (size_t)v->a + (size_t)v->b > size)
                fuzz_fail("a string outside the pickle");
            break;
        case TSF__PV_TUPLE:
        case TSF__PV_LIST:
        case TSF__PV_DICT:
            if (v->a < -1 || v->a >= P.nit || v->b < -1 || v->b >= P.nit ||
                (v->a < 0) != (v->b < 0))
                fuzz_fail("a container's items out of range");
            break;
        case TSF__PV_GLOBAL:
            if (v->a < 0 || v->a >= P.nv || v->b < 0 || v->b >= P.nv ||
                P.v[v->a].kind != TSF__PV_STR || P.v[v->b].kind != TSF__PV_STR)
                fuzz_fail("a global whose module or name is no string");
            break;
        case TSF__PV_STORAGE:
            if (v->a < 0 || v->a >= P.nv || P.v[v->a].kind != TSF__PV_STR || v->b < TSF__DT_NONE ||
                v->b > TSF__DT_F64 || v->i < 0)
                fuzz_fail("a storage without a key, type or size");
            break;
        case TSF__PV_TENSOR:
            if (v->a < -1 || v->a >= P.nv || v->b < -1 || v->b >= P.nv || v->c < -1 || v->c >= P.nv)
                fuzz_fail("a tensor's storage, sizes or strides out of range");
            break;
        case TSF__PV_OBJECT:
            if (v->a != -1 && (v->a < 0 || v->a >= P.nv || P.v[v->a].kind != TSF__PV_GLOBAL))
                fuzz_fail("an object whose maker is no global");
            break;
        default:
            if (v->kind < TSF__PV_NONE || v->kind > TSF__PV_OBJECT) fuzz_fail("a value of no kind");
        }
    }
    if (!ok) goto done;
    if (P.sp < 1) fuzz_fail("a pickle returned nothing");
    /* the state dict, listed as tsf__pt_list lists it, against an archive with no entries */
    sd = tsf__pt_state_dict(&P, P.stack[P.sp - 1], 0);
    if (sd < -1 || sd >= P.nv || (sd >= 0 && P.v[sd].kind != TSF__PV_DICT))
        fuzz_fail("a state dict that is no dict");
    l.files[0].mem = data, l.files[0].size = size, l.nfiles = 1;
    z.cd = size;
    for (i = sd >= 0 ? P.v[sd].a : -1; i >= 0; i = P.it[i].next) {
        const tsf__pv *k = &P.v[P.it[i].key];
        if (k->kind == TSF__PV_STR && k->b < 500 && !memchr(P.s + k->a, 0, (size_t)k->b) &&
            tsf__pt_entry(&l, &P, &z, "archive/", P.it[i].key, P.it[i].val, 0) != TSF_OK)
            break;
    }
    for (i = 0; i < l.n; i++)
        if (!l.t[i].why && l.t[i].dtype != TSF__DT_NONE) fuzz_fail("a tensor of an empty archive");
done:
    tsf__wlist_free(&l);
    free(P.v), free(P.it), free(P.stack), free(P.marks), free(P.memo);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    tsf_model m, again;
    tsf_error err, ferr;
    tsf_config cfg;
    tsf__source src;
    tsf_status st, fst;
    FILE *f;

    /* 1. from memory, the config inferred from the shapes */
    st = tsf_model_load_memory(&m, data, size, NULL, 1, &err);
    fuzz_check_msg(&err);
    if (st == TSF_OK) {
        fuzz_torch_use(&m);
        cfg = m.cfg;
        if (tsf_model_load_memory(&again, data, size, &cfg, 1, &err) != TSF_OK ||
            !fuzz_torch_same(&m, &again))
            fuzz_fail("the inferred config, given, loads other parameters");
        tsf_model_free(&again);
        tsf_model_free(&m);
    } else if (m.param_memory || m.labels) {
        fuzz_fail("a failed load left memory in the model");
    }

    /* 2. from memory, with a config given */
    cfg = fuzz_torch_config(size ? data[size - 1] % 4 : 0);
    st = tsf_model_load_memory(&m, data, size, &cfg, 1, &err);
    fuzz_check_msg(&err);
    if (st == TSF_OK)
        fuzz_torch_use(&m);
    else if (m.param_memory || m.labels)
        fuzz_fail("a failed load left memory in the model");

    /* 3. the same through a FILE */
    f = size ? fmemopen((void *)(uintptr_t)data, size, "rb") : NULL;
    if (f) {
        memset(&again, 0, sizeof again);
        src.mem = NULL, src.file = f, src.size = size;
        ferr.msg[0] = 0;
        fst = tsf__load_source(&again, &src, &cfg, NULL, 0, 1, NULL, &ferr);
        fuzz_check_msg(&ferr);
        if (fst != st || strcmp(ferr.msg, err.msg) != 0)
            fuzz_fail("memory and FILE loads disagree on the status or message");
        if (fst == TSF_OK && !fuzz_torch_same(&m, &again))
            fuzz_fail("memory and FILE loads read other parameters");
        if (fst != TSF_OK && (again.param_memory || again.labels))
            fuzz_fail("a failed FILE load left memory in the model");
        tsf_model_free(&again);
        fclose(f);
    }
    if (st == TSF_OK) tsf_model_free(&m);

    /* 4. and 5. */
    fuzz_torch_list(data, size);
    fuzz_torch_pickle(data, size);
    return 0;
}
