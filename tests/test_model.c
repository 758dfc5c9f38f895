/* test_model.c - the model (config, counts, sizes, initialisation, forward pass) and the
   weight files (safetensors in and out, dtypes, original names, Hugging Face folders,
   hostile input). Included by test_main.c.

   Tests run from the repository root: the golden sets are read from tests/golden/NAME/
   (written by tests/golden/make_golden.py: weights.safetensors, input.bin, logits.bin,
   meta.json). A missing golden file fails the test. Temporary files are written to /tmp
   with the process id in their names and removed again.

   Every model a test creates is freed on every path (the ASan build checks for leaks), so
   tests that can fail half-way use `goto done` rather than REQUIRE once a model exists.
   Hostile files are loaded from exact-size heap copies, so ASan sees any read past the end. */

#include <sys/stat.h> /* mkdir */
#include <unistd.h>   /* getpid, unlink, rmdir */

/* A float32 implementation meets this on the tiny golden models (docs/model.md section 9). */
#define MODEL_LOGITS_ATOL 1e-5

/* ---- small helpers ------------------------------------------------------------------------- */

/* The whole file, plus a NUL (so text files are strings); NULL if it cannot be read. */
static unsigned char *tm_read(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    unsigned char *p;
    long n;
    if (!f) {
        printf("    cannot open %s\n", path);
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        printf("    cannot seek %s\n", path);
        return NULL;
    }
    p = (unsigned char *)tsft_alloc_bytes((size_t)n + 1);
    if (fread(p, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        printf("    cannot read %s\n", path);
        return NULL;
    }
    fclose(f);
    p[n] = 0;
    if (size) *size = (size_t)n;
    return p;
}

/* n little-endian float32 values from a .bin file that must hold exactly n of them. */
static float *tm_read_floats(const char *path, size_t n) {
    size_t size = 0;
    unsigned char *p = tm_read(path, &size);
    if (!p) return NULL;
    if (size != n * sizeof(float)) {
        printf("    %s: %zu bytes, want %zu\n", path, size, n * sizeof(float));
        return NULL;
    }
    return (float *)p; /* tsft_alloc_bytes memory is suitably aligned */
}

static int tm_write(const char *path, const void *data, size_t size) {
    FILE *f = fopen(path, "wb");
    int ok;
    if (!f) return 0;
    ok = fwrite(data, 1, size, f) == size;
    return fclose(f) == 0 && ok;
}

static int tm_exists(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f) fclose(f);
    return f != NULL;
}

/* A temporary path unique to this process. */
static void tm_tmp(char *buf, size_t cap, const char *what) {
    snprintf(buf, cap, "/tmp/tsf_test_%ld_%s", (long)getpid(), what);
}

static double *tm_to_double(const float *x, size_t n) {
    double *d = tsft_allocd(n);
    size_t i;
    for (i = 0; i < n; i++) d[i] = (double)x[i];
    return d;
}

static int tm_all_finite(const float *x, size_t n) {
    size_t i;
    for (i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

/* Integers following key in a JSON text (e.g. "input_shape": [2, 3, ...]); 0 if absent. */
static int tm_json_ints(const char *txt, const char *key, long long *out, int n) {
    const char *p = strstr(txt, key);
    int i;
    if (!p) return 0;
    p += strlen(key);
    for (i = 0; i < n; i++) {
        char *end;
        while (*p && !(*p >= '0' && *p <= '9') && *p != '-') p++;
        if (!*p) return 0;
        out[i] = strtoll(p, &end, 10);
        p = end;
    }
    return 1;
}

/* 1 when every tensor of a and b has the same name, shape and bits. */
static int tm_same_params(const tsf_model *a, const tsf_model *b) {
    int nt = tsf_model_num_tensors(a), i, k, ndim_a, ndim_b;
    if (nt != tsf_model_num_tensors(b)) {
        printf("    tensor counts differ: %d, %d\n", nt, tsf_model_num_tensors(b));
        return 0;
    }
    for (i = 0; i < nt; i++) {
        char na[96], nb[96];
        long long sa[4], sb[4];
        float *da, *db;
        size_t numel = 1;
        tsf_model_tensor(a, i, na, &ndim_a, sa, &da);
        tsf_model_tensor(b, i, nb, &ndim_b, sb, &db);
        if (strcmp(na, nb) != 0 || ndim_a != ndim_b) {
            printf("    tensor %d: %s / %s\n", i, na, nb);
            return 0;
        }
        for (k = 0; k < ndim_a; k++) {
            if (sa[k] != sb[k]) {
                printf("    tensor %s: shapes differ\n", na);
                return 0;
            }
            numel *= (size_t)sa[k];
        }
        if (!same_bits(da, db, numel)) {
            printf("    tensor %s: values differ\n", na);
            return 0;
        }
    }
    return 1;
}

/* 1 when two resolved configs agree on every field that describes the model. */
static int tm_same_config(const tsf_config *a, const tsf_config *b) {
    int i, ok = a->image_size == b->image_size && a->patch_size == b->patch_size &&
                a->channels == b->channels && a->frames == b->frames && a->dim == b->dim &&
                a->depth == b->depth && a->heads == b->heads && a->mlp_ratio == b->mlp_ratio &&
                a->classes == b->classes && a->attention == b->attention &&
                a->ln_eps == b->ln_eps && a->no_qkv_bias == b->no_qkv_bias && a->bgr == b->bgr;
    for (i = 0; i < 3; i++) ok = ok && a->mean[i] == b->mean[i] && a->std[i] == b->std[i];
    return ok;
}

/* ---- golden sets --------------------------------------------------------------------------- */

typedef struct tm_golden {
    const char *name;
    int B, T, H, W; /* input_shape [B, 3, T, H, W] of the set's meta.json (checked against it) */
} tm_golden;

/* All sets share one tiny config: img 16, patch 4, 3 channels, 3 frames, dim 24, depth 2,
   3 heads, mlp_ratio 2, 5 classes, with each set's attention scheme and pos_embed. The
   _resized clips have another frame count and non-square frames (position and time tables
   resized); _samecount has the config's patch count in another shape (the position table is
   used as is); _odd a 5 x 3 grid (windows and parity classes of different sizes); _pos_space
   and _pos_none the position-embedding ablation (no time table; no tables at all). */
static const tm_golden tm_sets[] = {
    {"space_base", 2, 3, 16, 16},
    {"joint_base", 2, 3, 16, 16},
    {"divided_base", 2, 3, 16, 16},
    {"space_resized", 2, 5, 12, 20},
    {"joint_resized", 2, 5, 12, 20},
    {"divided_resized", 2, 5, 12, 20},
    {"divided_samecount", 2, 3, 8, 32},
    {"local_global_base", 2, 3, 16, 16},
    {"local_global_resized", 2, 5, 12, 20},
    {"local_global_odd", 2, 3, 20, 12},
    {"axial_base", 2, 3, 16, 16},
    {"axial_resized", 2, 5, 12, 20},
    {"axial_odd", 2, 3, 20, 12},
    {"space_pos_space", 2, 3, 12, 20},
    {"space_pos_none", 2, 3, 12, 20},
    {"joint_pos_space", 2, 3, 12, 20},
    {"joint_pos_none", 2, 3, 12, 20},
    {"divided_pos_space", 2, 3, 12, 20},
    {"divided_pos_none", 2, 3, 12, 20},
    {"local_global_pos_space", 2, 3, 12, 20},
    {"local_global_pos_none", 2, 3, 12, 20},
    {"axial_pos_space", 2, 3, 12, 20},
    {"axial_pos_none", 2, 3, 12, 20},
};
#define TM_K 5 /* classes of the golden config */

static void tm_golden_path(char *buf, size_t cap, const char *set, const char *file) {
    snprintf(buf, cap, "tests/golden/%s/%s", set, file);
}

/* Load a golden set's weights; 1 on success (prints the error otherwise). */
static int tm_load_golden(tsf_model *m, const char *set, int B) {
    char path[256];
    tsf_error err;
    tsf_status st;
    memset(&err, 0, sizeof err);
    tm_golden_path(path, sizeof path, set, "weights.safetensors");
    st = tsf_model_load(m, path, B, &err);
    if (st != TSF_OK) printf("    %s: %s (%s)\n", path, tsf_status_string(st), err.msg);
    return st == TSF_OK;
}

/* Golden logits, then the ways state could leak from one forward pass into the next: the
   same call twice, another input and shape in between, a larger reservation, a model
   reserved for a larger batch, and one clip of the batch on its own. */
static void tm_golden_check(int which) {
    const tm_golden *g = &tm_sets[which];
    char path[256];
    tsf_model m, m2;
    size_t nx = (size_t)g->B * 3 * g->T * g->H * g->W, nl = (size_t)g->B * TM_K, clip = nx / g->B;
    float *x, *want, *got = tsft_alloc(nl), *other, *one = tsft_alloc(TM_K);
    double *wantd;
    char *meta, field[64];
    long long shape[5], num_params = 0;
    tsf_rng r;
    memset(&m, 0, sizeof m), memset(&m2, 0, sizeof m2);
    tm_golden_path(path, sizeof path, g->name, "input.bin");
    x = tm_read_floats(path, nx);
    tm_golden_path(path, sizeof path, g->name, "logits.bin");
    want = tm_read_floats(path, nl);
    tm_golden_path(path, sizeof path, g->name, "meta.json");
    meta = (char *)tm_read(path, NULL);
    REQUIRE(x != NULL && want != NULL && meta != NULL);
    /* the hardcoded shape is the one the set was made with */
    REQUIRE(tm_json_ints(meta, "\"input_shape\"", shape, 5));
    CHECK(shape[0] == g->B && shape[1] == 3 && shape[2] == g->T && shape[3] == g->H &&
          shape[4] == g->W);
    CHECK(tm_json_ints(meta, "\"num_params\"", &num_params, 1));
    wantd = tm_to_double(want, nl);

    if (!CHECK(tm_load_golden(&m, g->name, 1))) goto done; /* B = 1: forward must grow it */
    CHECK_EQ_INT(m.cfg.classes, TM_K);
    /* the scheme and position embeddings of meta.json's config (pos_embed: absent when
       space_time), read from the weights' metadata */
    snprintf(field, sizeof field, "\"attention_type\": \"%s\"",
             tsf_attention_name(m.cfg.attention));
    if (!CHECK(strstr(meta, field) != NULL)) printf("    %s: not %s\n", g->name, field);
    snprintf(field, sizeof field, "\"pos_embed\": \"%s\"", tsf_pos_embed_name(m.cfg.pos_embed));
    CHECK(m.cfg.pos_embed == TSF_POS_SPACE_TIME ? strstr(meta, "\"pos_embed\"") == NULL
                                                : strstr(meta, field) != NULL);
    CHECK_EQ_INT(tsf_config_num_params(&m.cfg), num_params);
    CHECK_EQ_INT(m.num_params, num_params);
    if (!CHECK_EQ_INT(tsf_model_forward(&m, x, g->B, g->T, g->H, g->W, got), TSF_OK)) goto done;
    CHECK_ARRAY_NEAR(got, wantd, nl, MODEL_LOGITS_ATOL, 0);
    CHECK(same_bits(m.acts.logits, got, nl)); /* also left in acts.logits */

    /* the same call again, with logits = NULL */
    memset(m.acts.logits, 0, nl * sizeof(float));
    CHECK_EQ_INT(tsf_model_forward(&m, x, g->B, g->T, g->H, g->W, NULL), TSF_OK);
    CHECK(same_bits(m.acts.logits, got, nl));

    /* another input of the config's own shape in between, then the clip again */
    tsf_rng_seed(&r, 31);
    other = rnd_normal(&r, (size_t)3 * m.cfg.frames * 16 * 16, 1.0f);
    CHECK_EQ_INT(tsf_model_forward(&m, other, 1, m.cfg.frames, 16, 16, NULL), TSF_OK);
    CHECK(tm_all_finite(m.acts.logits, TM_K));
    CHECK_EQ_INT(tsf_model_forward(&m, x, g->B, g->T, g->H, g->W, got), TSF_OK);
    CHECK_ARRAY_NEAR(got, wantd, nl, MODEL_LOGITS_ATOL, 0);
    CHECK(same_bits(m.acts.logits, got, nl));

    /* a larger reservation (new buffer, other layout): same bits */
    CHECK_EQ_INT(tsf_model_reserve(&m, 4, g->T + 2, g->H + 8, g->W + 8), TSF_OK);
    CHECK_EQ_INT(tsf_model_forward(&m, x, g->B, g->T, g->H, g->W, NULL), TSF_OK);
    CHECK(same_bits(m.acts.logits, got, nl));

    /* a model reserved for 6 clips from the start: same bits */
    if (CHECK(tm_load_golden(&m2, g->name, 6))) {
        tsf__shape s = tsf__shape_of(&m2.cfg, g->B, g->T, g->H, g->W);
        int D = m2.cfg.dim, NH = m2.cfg.heads;
        size_t na = (size_t)NH * (size_t)tsf__seq_sq(&s, s.main, 1);
        float *att = tsft_alloc(na), *out = tsft_alloc((size_t)s.RA * D);
        CHECK_EQ_INT(tsf_model_forward(&m2, x, g->B, g->T, g->H, g->W, NULL), TSF_OK);
        CHECK(same_bits(m2.acts.logits, got, nl));
        CHECK(m2.acts.att == NULL && m2.acts.lse == NULL && m2.acts.fch == NULL);
        /* keep_attention: every block's probabilities, the same logits; the last block's
           are those of its qkv (inference keeps one block's, the last one's), sequence
           after sequence of the main step (of different lengths in sparse_local_global) */
        m2.keep_attention = 1;
        CHECK_EQ_INT(tsf_model_forward(&m2, x, g->B, g->T, g->H, g->W, NULL), TSF_OK);
        CHECK(same_bits(m2.acts.logits, got, nl));
        if (CHECK(m2.acts.att != NULL)) {
            long q, nq = tsf__seqs(&s, s.main), len;
            size_t row = 0, at = 0;
            for (q = 0; q < nq; q++, row += (size_t)len, at += (size_t)NH * len * len) {
                len = tsf__seq_rows(&s, s.main, (int)(q % (nq / g->B)), 1);
                tsf_attention_forward(out, att + at, m2.acts.qkv + row * 3 * D, 1, (int)len, D, NH);
            }
            CHECK_EQ_INT(row, s.RA);
            CHECK_EQ_INT(at, na);
            CHECK(same_bits(m2.acts.att + (size_t)(m2.cfg.depth - 1) * na, att, na));
        }
        CHECK((m2.acts.t_att != NULL) == (s.nside > 0)); /* the first side step's */
        /* set up for training: every block's activations kept, the same logits */
        m2.keep_attention = 0;
        CHECK_EQ_INT(tsf_model_train_init(&m2), TSF_OK);
        CHECK_EQ_INT(tsf_model_forward(&m2, x, g->B, g->T, g->H, g->W, NULL), TSF_OK);
        CHECK(same_bits(m2.acts.logits, got, nl));
        CHECK(m2.acts.att == NULL && m2.acts.lse != NULL && m2.acts.fch != NULL);
    }

    /* the last clip alone: the golden row (batch items never mix) */
    CHECK_EQ_INT(tsf_model_forward(&m, x + (g->B - 1) * clip, 1, g->T, g->H, g->W, one), TSF_OK);
    CHECK_ARRAY_NEAR(one, wantd + (g->B - 1) * TM_K, TM_K, MODEL_LOGITS_ATOL, 0);
done:
    tsf_model_free(&m);
    tsf_model_free(&m2);
}

static void test_model_golden_space_base(void) { tm_golden_check(0); }
static void test_model_golden_joint_base(void) { tm_golden_check(1); }
static void test_model_golden_divided_base(void) { tm_golden_check(2); }
static void test_model_golden_space_resized(void) { tm_golden_check(3); }
static void test_model_golden_joint_resized(void) { tm_golden_check(4); }
static void test_model_golden_divided_resized(void) { tm_golden_check(5); }
static void test_model_golden_divided_samecount(void) { tm_golden_check(6); }
static void test_model_golden_local_global_base(void) { tm_golden_check(7); }
static void test_model_golden_local_global_resized(void) { tm_golden_check(8); }
static void test_model_golden_local_global_odd(void) { tm_golden_check(9); }
static void test_model_golden_axial_base(void) { tm_golden_check(10); }
static void test_model_golden_axial_resized(void) { tm_golden_check(11); }
static void test_model_golden_axial_odd(void) { tm_golden_check(12); }
static void test_model_golden_space_pos_space(void) { tm_golden_check(13); }
static void test_model_golden_space_pos_none(void) { tm_golden_check(14); }
static void test_model_golden_joint_pos_space(void) { tm_golden_check(15); }
static void test_model_golden_joint_pos_none(void) { tm_golden_check(16); }
static void test_model_golden_divided_pos_space(void) { tm_golden_check(17); }
static void test_model_golden_divided_pos_none(void) { tm_golden_check(18); }
static void test_model_golden_local_global_pos_space(void) { tm_golden_check(19); }
static void test_model_golden_local_global_pos_none(void) { tm_golden_check(20); }
static void test_model_golden_axial_pos_space(void) { tm_golden_check(21); }
static void test_model_golden_axial_pos_none(void) { tm_golden_check(22); }

/* ---- 8-bit input ----------------------------------------------------------------------------- */

/* forward_u8 against the float input computed here: x = (p/255 - mean[c]) / std[c], model
   channel c reading RGB channel c (or 2 - c with bgr). Per-channel mean/std differ so that a
   channel mix-up shows; the frames are non-square. */
static void test_model_forward_u8(void) {
    const int B = 2, T = 3, H = 12, W = 20;
    const size_t plane = (size_t)H * W, n = (size_t)B * 3 * T * plane;
    const float mean[3] = {0.485f, 0.456f, 0.406f}, stdv[3] = {0.229f, 0.224f, 0.225f};
    unsigned char *rgb = (unsigned char *)tsft_alloc_bytes(n);
    float *x = tsft_alloc(n), *l_u8 = tsft_alloc((size_t)B * TM_K);
    float *l_f = tsft_alloc((size_t)B * TM_K), *l_rgb = tsft_alloc((size_t)B * TM_K);
    double *xd = tsft_allocd(n), *ld;
    tsf_model m;
    tsf_rng r;
    size_t i;
    int pass, b, t, c, y, xx;
    memset(&m, 0, sizeof m);
    tsf_rng_seed(&r, 808);
    for (i = 0; i < n; i++) rgb[i] = (unsigned char)(tsf_rng_u32(&r) & 255);
    rgb[0] = 0, rgb[1] = 255; /* both ends of the range */
    if (!CHECK(tm_load_golden(&m, "divided_base", B))) goto done;
    for (pass = 0; pass < 3; pass++) { /* default mean/std; custom RGB; custom BGR */
        if (pass > 0)
            for (c = 0; c < 3; c++) m.cfg.mean[c] = mean[c], m.cfg.std[c] = stdv[c];
        m.cfg.bgr = pass == 2;
        for (b = 0; b < B; b++)
            for (c = 0; c < 3; c++)
                for (t = 0; t < T; t++)
                    for (y = 0; y < H; y++)
                        for (xx = 0; xx < W; xx++) {
                            int src = m.cfg.bgr ? 2 - c : c;
                            double p =
                                rgb[(((size_t)b * T + t) * plane + (size_t)y * W + xx) * 3 + src];
                            size_t k = (((size_t)b * 3 + c) * T + t) * plane + (size_t)y * W + xx;
                            xd[k] = (p / 255.0 - (double)m.cfg.mean[c]) / (double)m.cfg.std[c];
                            x[k] = (float)xd[k];
                        }
        if (!CHECK_EQ_INT(tsf_model_forward_u8(&m, rgb, B, T, H, W, l_u8), TSF_OK)) goto done;
        CHECK_ARRAY_NEAR(m.acts.input, xd, n, 1e-6, 0); /* the normalised clip it used */
        CHECK_EQ_INT(tsf_model_forward(&m, x, B, T, H, W, l_f), TSF_OK);
        ld = tm_to_double(l_f, (size_t)B * TM_K);
        CHECK_ARRAY_NEAR(l_u8, ld, (size_t)B * TM_K, 1e-6, 0);
        if (pass == 1) memcpy(l_rgb, l_u8, (size_t)B * TM_K * sizeof(float));
        if (pass == 2) CHECK(!same_bits(l_rgb, l_u8, (size_t)B * TM_K)); /* order matters */
    }
    /* arguments */
    CHECK_EQ_INT(tsf_model_forward_u8(&m, NULL, B, T, H, W, NULL), TSF_ERR_ARG);
    CHECK_EQ_INT(tsf_model_forward_u8(&m, rgb, 0, T, H, W, NULL), TSF_ERR_ARG);
    CHECK_EQ_INT(tsf_model_forward_u8(&m, rgb, B, T, 3, W, NULL), TSF_ERR_ARG); /* H < patch */
    tsf_model_free(&m);
    { /* a model without 3 channels has no RGB entry point */
        tsf_config cfg;
        memset(&cfg, 0, sizeof cfg);
        cfg.image_size = 16, cfg.patch_size = 4, cfg.channels = 2, cfg.frames = 2, cfg.dim = 12,
        cfg.depth = 1, cfg.heads = 2;
        if (CHECK_EQ_INT(tsf_model_init(&m, &cfg, 1, 1), TSF_OK))
            CHECK_EQ_INT(tsf_model_forward_u8(&m, rgb, 1, 2, 16, 16, NULL), TSF_ERR_ARG);
    }
done:
    tsf_model_free(&m);
}

/* Bad forward arguments fail cleanly and leave the model usable. */
static void test_model_forward_args(void) {
    tsf_config cfg;
    tsf_model m;
    float *x = ffill((size_t)2 * 3 * 4 * 16 * 16, 0.5f), *l1 = tsft_alloc(20), *l2 = tsft_alloc(20);
    memset(&cfg, 0, sizeof cfg);
    cfg.image_size = 16, cfg.patch_size = 4, cfg.frames = 4, cfg.dim = 12, cfg.depth = 1,
    cfg.heads = 2;
    REQUIRE(tsf_model_init(&m, &cfg, 2, 5) == TSF_OK);
    CHECK_EQ_INT(tsf_model_forward(&m, x, 2, 4, 16, 16, l1), TSF_OK);
    CHECK_EQ_INT(tsf_model_forward(&m, NULL, 2, 4, 16, 16, NULL), TSF_ERR_ARG);
    CHECK_EQ_INT(tsf_model_forward(&m, x, 0, 4, 16, 16, NULL), TSF_ERR_ARG);
    CHECK_EQ_INT(tsf_model_forward(&m, x, 2, 0, 16, 16, NULL), TSF_ERR_ARG);
    CHECK_EQ_INT(tsf_model_forward(&m, x, 2, 4, 2, 16, NULL), TSF_ERR_ARG);
    CHECK_EQ_INT(tsf_model_forward(&m, x, 2, 4, 16, 3, NULL), TSF_ERR_ARG);
    CHECK_EQ_INT(tsf_model_forward(&m, x, -1, 4, 16, 16, NULL), TSF_ERR_ARG);
    CHECK_EQ_INT(tsf_model_forward(&m, x, 2, 4, 16, 16, l2), TSF_OK);
    CHECK(same_bits(l1, l2, 20));
    tsf_model_free(&m);
    tsf_model_free(&m); /* freeing twice is harmless (the struct is zeroed) */
}

/* ---- counts ------------------------------------------------------------------------------- */

/* ViT-B/16: 224, 8 frames, D 768, 12 layers, 12 heads, MLP 4x. */
static tsf_config tm_vitb(int attention, int classes) {
    tsf_config c;
    memset(&c, 0, sizeof c);
    c.image_size = 224, c.patch_size = 16, c.channels = 3, c.frames = 8, c.dim = 768;
    c.depth = 12, c.heads = 12, c.mlp_ratio = 4.0f, c.classes = classes, c.attention = attention;
    return c;
}

/* docs/model.md section 7 (parameter counts; paper Table 1 with the 174-class head). */
static void test_model_num_params(void) {
    static const struct {
        int attention;
        long long k174, k400, nohead;
    } rows[3] = {{TSF_ATTN_SPACE, 85932462, 86106256, 85798656},
                 {TSF_ATTN_JOINT, 85938606, 86112400, 85804800},
                 {TSF_ATTN_DIVIDED, 121392558, 121566352, 121258752}};
    int i;
    for (i = 0; i < 3; i++) {
        tsf_config c174 = tm_vitb(rows[i].attention, 174), c400 = tm_vitb(rows[i].attention, 400),
                   nb;
        CHECK_EQ_INT(tsf_config_resolve(&c174), TSF_OK);
        CHECK_EQ_INT(tsf_config_num_params(&c174), rows[i].k174);
        CHECK_EQ_INT(tsf_config_num_params(&c400), rows[i].k400);
        CHECK_EQ_INT(tsf_config_num_params(&c400) - (768 * 400 + 400), rows[i].nohead);
        /* without qkv biases: 3D fewer per attention (two per divided block) */
        nb = c400, nb.no_qkv_bias = 1;
        CHECK_EQ_INT(tsf_config_num_params(&c400) - tsf_config_num_params(&nb),
                     12 * 3 * 768 * (rows[i].attention == TSF_ATTN_DIVIDED ? 2 : 1));
    }
    { /* TimeSformer-HR: 448, 16 frames, pos table 1 + 28^2 rows */
        tsf_config hr = tm_vitb(TSF_ATTN_DIVIDED, 400);
        hr.image_size = 448, hr.frames = 16;
        CHECK_EQ_INT(tsf_config_num_params(&hr), 122024080);
    }
    { /* TimeSformer-L: 96 frames; only the time table grows (88 more rows than 8 frames) */
        tsf_config l = tm_vitb(TSF_ATTN_DIVIDED, 400);
        l.frames = 96;
        CHECK_EQ_INT(tsf_config_num_params(&l), 121566352 + 88 * 768);
    }
}

/* docs/model.md section 8: one view, multiply-adds of every matrix product. */
static void test_model_flops(void) {
    static const struct {
        int attention;
        double gflops;
    } rows[3] = {{TSF_ATTN_SPACE, 140.505}, {TSF_ATTN_JOINT, 179.563}, {TSF_ATTN_DIVIDED, 195.830}};
    int i;
    for (i = 0; i < 3; i++) {
        tsf_config c = tm_vitb(rows[i].attention, 400);
        CHECK_NEAR(tsf_config_flops(&c, 0, 0, 0) / 1e9, rows[i].gflops, 0.0005, 0);
        /* explicit sizes equal to the config's: the same count */
        CHECK(tsf_config_flops(&c, 8, 224, 224) == tsf_config_flops(&c, 0, 0, 0));
    }
    { /* HR and L: the paper's 5.11 and 7.14 TFLOPs for 3 views */
        tsf_config hr = tm_vitb(TSF_ATTN_DIVIDED, 400), l = tm_vitb(TSF_ATTN_DIVIDED, 400);
        hr.image_size = 448, hr.frames = 16;
        l.frames = 96;
        CHECK_NEAR(tsf_config_flops(&hr, 0, 0, 0) / 1e9, 1702.7, 0.05, 0);
        CHECK_NEAR(tsf_config_flops(&l, 0, 0, 0) / 1e9, 2379.9, 0.05, 0);
        /* the base model run on HR-sized clips counts like the HR model (no table rows in FLOPs) */
        hr = tm_vitb(TSF_ATTN_DIVIDED, 400);
        CHECK_NEAR(tsf_config_flops(&hr, 16, 448, 448) / 1e9, 1702.7, 0.05, 0);
    }
}

/* ---- sizes -------------------------------------------------------------------------------- */

static tsf_config tm_tiny(int attention) {
    tsf_config c;
    memset(&c, 0, sizeof c);
    c.image_size = 16, c.patch_size = 4, c.channels = 3, c.frames = 3, c.dim = 24, c.depth = 2;
    c.heads = 3, c.mlp_ratio = 2.0f, c.classes = 5, c.attention = attention;
    return c;
}

static void test_model_bytes(void) {
    int a;
    for (a = 0; a < 3; a++) {
        tsf_config c = tm_tiny(a);
        tsf_model m;
        size_t pb = 0, ab = 0, ab2 = 0, tb = 0, tb2 = 0, tb3 = 0, before;
        CHECK_EQ_INT(tsf_model_bytes(&c, 2, 0, 0, 0, &pb, &ab), TSF_OK);
        if (!CHECK_EQ_INT(tsf_model_init(&m, &c, 2, 1), TSF_OK)) continue;
        CHECK_EQ_INT(pb, m.param_floats * sizeof(float));
        CHECK_EQ_INT(ab, m.act_floats * sizeof(float));
        CHECK(m.param_floats >= m.num_params &&
              m.param_floats < m.num_params + 16 * TSF_NUM_PARAMS);
        CHECK_EQ_INT(m.num_params, tsf_config_num_params(&m.cfg));
        /* zeros mean the config's own clip */
        CHECK_EQ_INT(tsf_model_bytes(&c, 2, 3, 16, 16, NULL, &ab2), TSF_OK);
        CHECK_EQ_INT(ab2, ab);
        /* growing: exactly what tsf_model_bytes says for the new shape */
        CHECK_EQ_INT(tsf_model_bytes(&c, 3, 5, 12, 20, NULL, &ab2), TSF_OK);
        CHECK(ab2 > ab);
        CHECK_EQ_INT(tsf_model_reserve(&m, 3, 5, 12, 20), TSF_OK);
        CHECK_EQ_INT(m.act_floats * sizeof(float), ab2);
        /* shrinking keeps the buffer */
        before = m.act_floats;
        CHECK_EQ_INT(tsf_model_reserve(&m, 1, 3, 16, 16), TSF_OK);
        CHECK_EQ_INT(m.act_floats, before);
        /* a bigger batch needs more, a bigger batch of the same clips scales the activations */
        CHECK_EQ_INT(tsf_model_bytes(&c, 4, 0, 0, 0, NULL, &ab2), TSF_OK);
        CHECK(ab2 > ab);
        tsf_model_free(&m);
        /* training: exactly what tsf_model_train_bytes adds */
        if (!CHECK_EQ_INT(tsf_model_init(&m, &c, 2, 1), TSF_OK)) continue;
        CHECK_EQ_INT(tsf_model_train_bytes(&c, 2, 0, 0, 0, &tb), TSF_OK);
        CHECK_EQ_INT(tsf_model_train_init(&m), TSF_OK);
        CHECK_EQ_INT((m.act_floats + m.gact_floats + 3 * m.param_floats) * sizeof(float),
                     pb + ab + tb);
        tsf_model_free(&m);
        /* recompute: less, and again exact */
        c.recompute = 1;
        CHECK_EQ_INT(tsf_model_train_bytes(&c, 2, 0, 0, 0, &tb2), TSF_OK);
        CHECK(tb2 < tb);
        if (!CHECK_EQ_INT(tsf_model_init(&m, &c, 2, 1), TSF_OK)) continue;
        CHECK_EQ_INT(tsf_model_train_init(&m), TSF_OK);
        CHECK_EQ_INT((m.act_floats + m.gact_floats + 3 * m.param_floats) * sizeof(float),
                     pb + ab + tb2);
        tsf_model_free(&m);
        /* fused_sgd: one block's gradients, less again, and exact */
        c.fused_sgd = 1;
        CHECK_EQ_INT(tsf_model_train_bytes(&c, 2, 0, 0, 0, &tb3), TSF_OK);
        CHECK(tb3 < tb2);
        if (!CHECK_EQ_INT(tsf_model_init(&m, &c, 2, 1), TSF_OK)) continue;
        CHECK_EQ_INT(tsf_model_train_init(&m), TSF_OK);
        CHECK(m.grad_floats < m.param_floats);
        CHECK_EQ_INT((m.act_floats + m.gact_floats + 2 * m.param_floats + m.grad_floats) *
                         sizeof(float),
                     pb + ab + tb3);
        tsf_model_free(&m);
        c.recompute = 0, c.fused_sgd = 0;
    }
}

static void test_model_bytes_bad(void) {
    tsf_config c;
    tsf_model m;
    size_t pb, ab;
    c = tm_tiny(0), c.dim = 25; /* not a multiple of 3 heads */
    CHECK_EQ_INT(tsf_model_bytes(&c, 1, 0, 0, 0, &pb, &ab), TSF_ERR_CONFIG);
    CHECK_EQ_INT(tsf_model_init(&m, &c, 1, 0), TSF_ERR_CONFIG);
    CHECK(m.param_memory == NULL && m.act_memory == NULL);
    c = tm_tiny(0), c.patch_size = 32; /* patch larger than the image */
    CHECK_EQ_INT(tsf_model_bytes(&c, 1, 0, 0, 0, &pb, &ab), TSF_ERR_CONFIG);
    CHECK_EQ_INT(tsf_model_init(&m, &c, 1, 0), TSF_ERR_CONFIG);
    c = tm_tiny(7); /* no such attention */
    CHECK_EQ_INT(tsf_model_bytes(&c, 1, 0, 0, 0, &pb, &ab), TSF_ERR_CONFIG);
    CHECK_EQ_INT(tsf_model_init(&m, &c, 1, 0), TSF_ERR_CONFIG);
    c = tm_tiny(0), c.attention = -1;
    CHECK_EQ_INT(tsf_model_bytes(&c, 1, 0, 0, 0, &pb, &ab), TSF_ERR_CONFIG);
    c = tm_tiny(0), c.heads = -3;
    CHECK_EQ_INT(tsf_model_bytes(&c, 1, 0, 0, 0, &pb, &ab), TSF_ERR_CONFIG);
    c = tm_tiny(0), c.ln_eps = -1.0f;
    CHECK_EQ_INT(tsf_model_bytes(&c, 1, 0, 0, 0, &pb, &ab), TSF_ERR_CONFIG);
    c = tm_tiny(0), c.std[0] = 0.2f, c.std[1] = -0.2f, c.std[2] = 0.2f;
    CHECK_EQ_INT(tsf_model_bytes(&c, 1, 0, 0, 0, &pb, &ab), TSF_ERR_CONFIG);
    c = tm_tiny(0), c.mlp_ratio = NAN;
    CHECK_EQ_INT(tsf_model_bytes(&c, 1, 0, 0, 0, &pb, &ab), TSF_ERR_CONFIG);
    /* bad shapes of the pass */
    c = tm_tiny(0);
    CHECK_EQ_INT(tsf_model_bytes(&c, 0, 0, 0, 0, &pb, &ab), TSF_ERR_ARG);
    CHECK_EQ_INT(tsf_model_bytes(&c, -2, 0, 0, 0, &pb, &ab), TSF_ERR_ARG);
    CHECK_EQ_INT(tsf_model_bytes(&c, 1, 0, 3, 0, &pb, &ab), TSF_ERR_ARG); /* H < patch */
    memset(&m, 0xA5, sizeof m); /* a model never made: B < 0 leaves it releasable too */
    CHECK_EQ_INT(tsf_model_init(&m, &c, -1, 0), TSF_ERR_ARG);
    if (CHECK(m.param_memory == NULL && m.act_memory == NULL && !m.owns_memory)) tsf_model_free(&m);
    memset(&m, 0xA5, sizeof m); /* so do the loaders, given nothing to load */
    CHECK_EQ_INT(tsf_model_load(&m, NULL, 1, NULL), TSF_ERR_ARG);
    if (CHECK(m.param_memory == NULL && !m.owns_memory)) tsf_model_free(&m);
    memset(&m, 0xA5, sizeof m);
    CHECK_EQ_INT(tsf_model_load_file(&m, NULL, NULL, 1, NULL), TSF_ERR_ARG);
    if (CHECK(m.param_memory == NULL && !m.owns_memory)) tsf_model_free(&m);
    memset(&m, 0xA5, sizeof m);
    CHECK_EQ_INT(tsf_model_load_memory(&m, NULL, 0, NULL, 1, NULL), TSF_ERR_ARG);
    if (CHECK(m.param_memory == NULL && !m.owns_memory)) tsf_model_free(&m);
    /* B = 0: parameters only; the first forward pass makes room for activations */
    if (CHECK_EQ_INT(tsf_model_init(&m, &c, 0, 0), TSF_OK)) CHECK(m.act_memory == NULL);
    tsf_model_free(&m);
    /* sizes far beyond memory are refused before any allocation */
    c = tm_vitb(TSF_ATTN_JOINT, 400);
    CHECK_EQ_INT(tsf_model_bytes(&c, 60000, 60000, 0, 0, &pb, &ab), TSF_ERR_OVERFLOW);
    c.depth = 1000, c.dim = 60000, c.heads = 1;
    CHECK_EQ_INT(tsf_model_bytes(&c, 1, 0, 0, 0, &pb, &ab), TSF_ERR_OVERFLOW);
}

/* ---- initialisation (docs/model.md section 7) ---------------------------------------------- */

static size_t tm_count_ne(const float *x, size_t n, float v) {
    size_t i, bad = 0;
    for (i = 0; i < n; i++) bad += x[i] != v;
    return bad;
}

/* Sample mean and standard deviation. */
static double tm_stats(const float *x, size_t n, double *mean) {
    double s = 0, s2 = 0;
    size_t i;
    for (i = 0; i < n; i++) s += (double)x[i];
    *mean = s / (double)n;
    for (i = 0; i < n; i++) s2 += ((double)x[i] - *mean) * ((double)x[i] - *mean);
    return sqrt(s2 / (double)n);
}

/* Normal(0, 0.02) draws: std within rtol of 0.02, mean within 4 standard errors of 0. */
static int tm_check_normal(const char *what, const float *x, size_t n, double rtol) {
    double mean, sd = tm_stats(x, n, &mean);
    int ok = fabs(sd - 0.02) <= rtol * 0.02 && fabs(mean) <= 4.0 * 0.02 / sqrt((double)n);
    if (!ok) printf("    %s: mean %.3g std %.4g over %zu values\n", what, mean, sd, n);
    return ok;
}

static void test_model_init_values(void) {
    tsf_config cfg;
    tsf_model m;
    tsf_params *p;
    size_t D, L, HM, K, T0, Q, CPP, i;
    double bound, mean, sd;
    float lo = 1, hi = -1;
    memset(&cfg, 0, sizeof cfg); /* the defaults: 112, 16, 3, 8, 192, 4, 3, 4.0, 10, divided */
    REQUIRE(tsf_model_init(&m, &cfg, 1, 123) == TSF_OK);
    p = &m.params;
    D = 192, L = 4, HM = 768, K = 10, T0 = 8, Q = 1 + 7 * 7, CPP = 3 * 16 * 16;
    CHECK(tm_all_finite(m.param_memory, m.num_params));
    /* LayerNorms: weight 1, bias 0 */
    CHECK_EQ_INT(tm_count_ne(p->t_ln_w, L * D, 1.0f), 0);
    CHECK_EQ_INT(tm_count_ne(p->ln1_w, L * D, 1.0f), 0);
    CHECK_EQ_INT(tm_count_ne(p->ln2_w, L * D, 1.0f), 0);
    CHECK_EQ_INT(tm_count_ne(p->lnf_w, D, 1.0f), 0);
    CHECK_EQ_INT(tm_count_ne(p->t_ln_b, L * D, 0.0f), 0);
    CHECK_EQ_INT(tm_count_ne(p->ln1_b, L * D, 0.0f), 0);
    CHECK_EQ_INT(tm_count_ne(p->ln2_b, L * D, 0.0f), 0);
    CHECK_EQ_INT(tm_count_ne(p->lnf_b, D, 0.0f), 0);
    /* Linear biases 0 */
    CHECK_EQ_INT(tm_count_ne(p->t_qkv_b, L * 3 * D, 0.0f), 0);
    CHECK_EQ_INT(tm_count_ne(p->t_proj_b, L * D, 0.0f), 0);
    CHECK_EQ_INT(tm_count_ne(p->qkv_b, L * 3 * D, 0.0f), 0);
    CHECK_EQ_INT(tm_count_ne(p->proj_b, L * D, 0.0f), 0);
    CHECK_EQ_INT(tm_count_ne(p->fc1_b, L * HM, 0.0f), 0);
    CHECK_EQ_INT(tm_count_ne(p->fc2_b, L * D, 0.0f), 0);
    CHECK_EQ_INT(tm_count_ne(p->head_b, K, 0.0f), 0);
    /* time embedding 0; temporal_fc weight and bias 0 in every block */
    CHECK_EQ_INT(tm_count_ne(p->time_embed, T0 * D, 0.0f), 0);
    CHECK_EQ_INT(tm_count_ne(p->t_fc_w, L * D * D, 0.0f), 0);
    CHECK_EQ_INT(tm_count_ne(p->t_fc_b, L * D, 0.0f), 0);
    /* trunc-normal(0.02): cls (only 192 draws: 25%), pos and every other Linear weight */
    CHECK(tm_check_normal("cls_token", p->cls_token, D, 0.25));
    CHECK(tm_check_normal("pos_embed", p->pos_embed, Q * D, 0.1));
    CHECK(tm_check_normal("head", p->head_w, K * D, 0.1));
    for (i = 0; i < L; i++) {
        CHECK(tm_check_normal("t_qkv", p->t_qkv_w + i * 3 * D * D, 3 * D * D, 0.1));
        CHECK(tm_check_normal("t_proj", p->t_proj_w + i * D * D, D * D, 0.1));
        CHECK(tm_check_normal("qkv", p->qkv_w + i * 3 * D * D, 3 * D * D, 0.1));
        CHECK(tm_check_normal("proj", p->proj_w + i * D * D, D * D, 0.1));
        CHECK(tm_check_normal("fc1", p->fc1_w + i * HM * D, HM * D, 0.1));
        CHECK(tm_check_normal("fc2", p->fc2_w + i * D * HM, D * HM, 0.1));
    }
    /* blocks are drawn independently */
    CHECK(!same_bits(p->qkv_w, p->qkv_w + 3 * D * D, 3 * D * D));
    CHECK(!same_bits(p->qkv_w, p->t_qkv_w, 3 * D * D));
    /* patch embedding: U(-b, b), b = 1/sqrt(C*P*P); std b/sqrt(3) */
    bound = 1.0 / sqrt((double)CPP);
    for (i = 0; i < D * CPP; i++) {
        lo = p->patch_w[i] < lo ? p->patch_w[i] : lo;
        hi = p->patch_w[i] > hi ? p->patch_w[i] : hi;
    }
    CHECK((double)lo >= -bound && (double)hi <= bound);
    CHECK((double)lo < -0.99 * bound && (double)hi > 0.99 * bound); /* the whole range */
    sd = tm_stats(p->patch_w, D * CPP, &mean);
    CHECK_NEAR(sd, bound / sqrt(3.0), 0, 0.03);
    CHECK_NEAR(mean, 0, 4 * bound / sqrt(3.0 * (double)(D * CPP)), 0);
    lo = 1, hi = -1;
    for (i = 0; i < D; i++) {
        lo = p->patch_b[i] < lo ? p->patch_b[i] : lo;
        hi = p->patch_b[i] > hi ? p->patch_b[i] : hi;
    }
    CHECK((double)lo >= -bound && (double)hi <= bound && lo < hi);
    CHECK_NEAR(tm_stats(p->patch_b, D, &mean), bound / sqrt(3.0), 0, 0.25);
    /* a fresh model has no class names */
    CHECK(strcmp(tsf_model_label(&m, 0), "") == 0);
    tsf_model_free(&m);
}

static void test_model_init_seed(void) {
    tsf_config cfg = tm_tiny(TSF_ATTN_DIVIDED);
    tsf_model a, b, c;
    memset(&a, 0, sizeof a), memset(&b, 0, sizeof b), memset(&c, 0, sizeof c);
    if (!CHECK_EQ_INT(tsf_model_init(&a, &cfg, 1, 42), TSF_OK) ||
        !CHECK_EQ_INT(tsf_model_init(&b, &cfg, 3, 42), TSF_OK) ||
        !CHECK_EQ_INT(tsf_model_init(&c, &cfg, 1, 43), TSF_OK))
        goto done;
    CHECK_EQ_INT(a.param_floats, b.param_floats);
    CHECK(
        same_bits(a.param_memory, b.param_memory, a.param_floats)); /* the batch does not matter */
    CHECK(!same_bits(a.params.cls_token, c.params.cls_token, 24));
    CHECK(!same_bits(a.params.pos_embed, c.params.pos_embed, 17 * 24));
    CHECK(!same_bits(a.params.patch_w, c.params.patch_w, 24 * 48));
    CHECK(!same_bits(a.params.qkv_w, c.params.qkv_w, 72 * 24));
    CHECK(!same_bits(a.params.head_w, c.params.head_w, 5 * 24));
    /* drawing again from the first seed gives the first model */
    tsf_model_init_params(&c, 42);
    CHECK(same_bits(a.param_memory, c.param_memory, a.param_floats));
    /* a fresh divided model is a per-frame ViT: it runs and gives finite logits */
    {
        tsf_rng r;
        float *x;
        tsf_rng_seed(&r, 5);
        x = rnd_normal(&r, (size_t)3 * 3 * 16 * 16, 1.0f);
        CHECK_EQ_INT(tsf_model_forward(&a, x, 1, 3, 16, 16, NULL), TSF_OK);
        CHECK(tm_all_finite(a.acts.logits, 5));
    }
done:
    tsf_model_free(&a);
    tsf_model_free(&b);
    tsf_model_free(&c);
}

/* The tensors of each variant: which exist, their names, shapes and data. */
static void test_model_tensors(void) {
    int a, bias;
    for (a = 0; a < 3; a++)
        for (bias = 0; bias < 2; bias++) {
            tsf_config cfg = tm_tiny(a);
            tsf_model m;
            int nt, i, k, ndim, want_nt, L = 2;
            size_t total = 0;
            float *prev_end = NULL;
            cfg.no_qkv_bias = !bias;
            if (!CHECK_EQ_INT(tsf_model_init(&m, &cfg, 1, 0), TSF_OK)) continue;
            nt = tsf_model_num_tensors(&m);
            want_nt = a == TSF_ATTN_SPACE   ? 8 + 12 * L
                      : a == TSF_ATTN_JOINT ? 9 + 12 * L
                                            : 9 + 20 * L;
            if (!bias) want_nt -= a == TSF_ATTN_DIVIDED ? 2 * L : L;
            CHECK_EQ_INT(nt, want_nt);
            CHECK((m.params.time_embed != NULL) == (a != TSF_ATTN_SPACE));
            CHECK((m.params.t_qkv_w != NULL) == (a == TSF_ATTN_DIVIDED));
            CHECK((m.params.t_fc_b != NULL) == (a == TSF_ATTN_DIVIDED));
            CHECK((m.params.qkv_b != NULL) == bias);
            for (i = 0; i < nt; i++) {
                char name[96], other[96];
                long long shape[4], numel = 1;
                float *data, *d2;
                int nd2;
                tsf_model_tensor(&m, i, name, &ndim, shape, &data);
                CHECK(ndim >= 1 && ndim <= 4);
                for (k = 0; k < ndim; k++) numel *= shape[k];
                total += (size_t)numel;
                /* inside the parameter buffer, in order, never overlapping */
                CHECK(data >= m.param_memory && data + numel <= m.param_memory + m.param_floats);
                CHECK(prev_end == NULL || data >= prev_end);
                prev_end = data + numel;
                for (k = 0; k < i; k++) { /* unique names */
                    long long s2[4];
                    tsf_model_tensor(&m, k, other, &nd2, s2, &d2);
                    if (!CHECK(strcmp(name, other) != 0)) printf("    duplicate name %s\n", name);
                }
                if (strcmp(name, "timesformer.embeddings.cls_token") == 0)
                    CHECK(ndim == 3 && shape[0] == 1 && shape[1] == 1 && shape[2] == 24 &&
                          data == m.params.cls_token);
                if (strcmp(name, "timesformer.embeddings.position_embeddings") == 0)
                    CHECK(ndim == 3 && shape[0] == 1 && shape[1] == 17 && shape[2] == 24);
                if (strcmp(name, "timesformer.embeddings.time_embeddings") == 0)
                    CHECK(ndim == 3 && shape[0] == 1 && shape[1] == 3 && shape[2] == 24);
                if (strcmp(name, "timesformer.embeddings.patch_embeddings.projection.weight") == 0)
                    CHECK(ndim == 4 && shape[0] == 24 && shape[1] == 3 && shape[2] == 4 &&
                          shape[3] == 4);
                if (strcmp(name, "timesformer.encoder.layer.1.attention.attention.qkv.weight") == 0)
                    CHECK(ndim == 2 && shape[0] == 72 && shape[1] == 24 &&
                          data == m.params.qkv_w + 72 * 24);
                if (strcmp(name, "timesformer.encoder.layer.1.temporal_dense.bias") == 0)
                    CHECK(ndim == 1 && shape[0] == 24 && data == m.params.t_fc_b + 24);
                if (strcmp(name, "timesformer.encoder.layer.0.intermediate.dense.weight") == 0)
                    CHECK(ndim == 2 && shape[0] == 48 && shape[1] == 24 && data == m.params.fc1_w);
                if (strcmp(name, "timesformer.encoder.layer.0.output.dense.weight") == 0)
                    CHECK(ndim == 2 && shape[0] == 24 && shape[1] == 48 && data == m.params.fc2_w);
                if (strcmp(name, "classifier.weight") == 0)
                    CHECK(ndim == 2 && shape[0] == 5 && shape[1] == 24 && data == m.params.head_w);
            }
            CHECK_EQ_INT(total, m.num_params);
            tsf_model_free(&m);
        }
}

/* ---- names and defaults ------------------------------------------------------------------- */

static void test_model_attention_names(void) {
    int a;
    for (a = 0; a < 3; a++) CHECK_EQ_INT(tsf_attention_parse(tsf_attention_name(a)), a);
    CHECK(strcmp(tsf_attention_name(TSF_ATTN_DIVIDED), "divided_space_time") == 0);
    CHECK(strcmp(tsf_attention_name(TSF_ATTN_JOINT), "joint_space_time") == 0);
    CHECK(strcmp(tsf_attention_name(TSF_ATTN_SPACE), "space_only") == 0);
    CHECK(tsf_attention_name(7) != NULL && tsf_attention_name(-1) != NULL);
    CHECK_EQ_INT(tsf_attention_parse(tsf_attention_name(7)), -1);
    CHECK_EQ_INT(tsf_attention_parse("bogus"), -1);
    CHECK_EQ_INT(tsf_attention_parse(""), -1);
    CHECK_EQ_INT(tsf_attention_parse("divided_space_time "), -1);
    CHECK_EQ_INT(tsf_attention_parse("Divided_Space_Time"), -1);
    CHECK_EQ_INT(tsf_attention_parse(NULL), -1);
}

static void test_model_config_resolve(void) {
    tsf_config c;
    int i;
    memset(&c, 0, sizeof c);
    CHECK_EQ_INT(tsf_config_resolve(&c), TSF_OK);
    CHECK_EQ_INT(c.image_size, 112);
    CHECK_EQ_INT(c.patch_size, 16);
    CHECK_EQ_INT(c.channels, 3);
    CHECK_EQ_INT(c.frames, 8);
    CHECK_EQ_INT(c.dim, 192);
    CHECK_EQ_INT(c.depth, 4);
    CHECK_EQ_INT(c.heads, 3);
    CHECK(c.mlp_ratio == 4.0f);
    CHECK_EQ_INT(c.classes, 10);
    CHECK_EQ_INT(c.attention, TSF_ATTN_DIVIDED);
    CHECK(c.ln_eps == 1e-6f);
    CHECK_EQ_INT(c.no_qkv_bias, 0);
    CHECK_EQ_INT(c.bgr, 0);
    for (i = 0; i < 3; i++) CHECK(c.mean[i] == 0.45f && c.std[i] == 0.225f);
    /* resolving twice changes nothing */
    {
        tsf_config d = c;
        CHECK_EQ_INT(tsf_config_resolve(&d), TSF_OK);
        CHECK(tm_same_config(&c, &d));
    }
    /* set fields are kept; a given std keeps the given mean (even 0) */
    memset(&c, 0, sizeof c);
    c.image_size = 224, c.dim = 768, c.heads = 12, c.std[0] = 0.5f, c.std[1] = 0.5f,
    c.std[2] = 0.5f;
    c.attention = TSF_ATTN_SPACE, c.mlp_ratio = 2.5f, c.ln_eps = 1e-5f;
    CHECK_EQ_INT(tsf_config_resolve(&c), TSF_OK);
    CHECK(c.image_size == 224 && c.dim == 768 && c.heads == 12 && c.patch_size == 16);
    CHECK(c.attention == TSF_ATTN_SPACE && c.mlp_ratio == 2.5f && c.ln_eps == 1e-5f);
    for (i = 0; i < 3; i++) CHECK(c.mean[i] == 0.0f && c.std[i] == 0.5f);
    CHECK_EQ_INT(tsf_config_resolve(NULL), TSF_ERR_ARG);
    /* invalid */
    memset(&c, 0, sizeof c), c.heads = 5; /* 192 % 5 */
    CHECK_EQ_INT(tsf_config_resolve(&c), TSF_ERR_CONFIG);
    memset(&c, 0, sizeof c), c.image_size = -1;
    CHECK_EQ_INT(tsf_config_resolve(&c), TSF_ERR_CONFIG);
    memset(&c, 0, sizeof c), c.mlp_ratio = -4.0f;
    CHECK_EQ_INT(tsf_config_resolve(&c), TSF_ERR_CONFIG);
    memset(&c, 0, sizeof c), c.mean[1] = NAN, c.std[0] = c.std[1] = c.std[2] = 1.0f;
    CHECK_EQ_INT(tsf_config_resolve(&c), TSF_ERR_CONFIG);
}

/* ---- building safetensors files ------------------------------------------------------------ */

/* One entry of a hand-built safetensors header. */
typedef struct tm_ent {
    char *name; /* written verbatim between quotes (already JSON-escaped) */
    const char *dtype;
    int ndim;
    long long shape[4];
    unsigned char *data; /* appended to the data section in entry order */
    size_t nbytes;
    int explicit_off; /* 1: write b0, b1 instead of the entry's real place */
    long long b0, b1;
    const char *raw; /* non-NULL: the entry's whole JSON value, verbatim */
} tm_ent;

/* A file from an 8-byte length, header bytes and data bytes (header not padded). */
static unsigned char *tm_raw(const char *hdr, size_t hlen, const void *data, size_t dlen,
                             size_t *size) {
    unsigned char *f = (unsigned char *)tsft_alloc_bytes(8 + hlen + dlen);
    int k;
    for (k = 0; k < 8; k++) f[k] = (unsigned char)((unsigned long long)hlen >> (8 * k));
    memcpy(f + 8, hdr, hlen);
    if (dlen) memcpy(f + 8 + hlen, data, dlen);
    *size = 8 + hlen + dlen;
    return f;
}

/* A safetensors file from entries and an optional __metadata__ value (JSON text). */
static unsigned char *tm_build(const tm_ent *e, int n, const char *meta, size_t *size) {
    size_t cap = 64 + (meta ? strlen(meta) : 0), hl = 0, total = 0, off = 0;
    char *h;
    unsigned char *data, *f;
    int i, k;
    for (i = 0; i < n; i++)
        cap += strlen(e[i].name) + (e[i].raw ? strlen(e[i].raw) : 0) + 256, total += e[i].nbytes;
    h = (char *)tsft_alloc_bytes(cap);
    data = (unsigned char *)tsft_alloc_bytes(total);
    h[hl++] = '{';
    for (i = 0; i < n; i++) {
        hl += (size_t)snprintf(h + hl, cap - hl, "%s\"%s\":", i ? "," : "", e[i].name);
        if (e[i].raw) {
            hl += (size_t)snprintf(h + hl, cap - hl, "%s", e[i].raw);
        } else {
            hl += (size_t)snprintf(h + hl, cap - hl, "{\"dtype\":\"%s\",\"shape\":[", e[i].dtype);
            for (k = 0; k < e[i].ndim; k++)
                hl += (size_t)snprintf(h + hl, cap - hl, "%s%lld", k ? "," : "", e[i].shape[k]);
            hl += (size_t)snprintf(h + hl, cap - hl, "],\"data_offsets\":[%lld,%lld]}",
                                   e[i].explicit_off ? e[i].b0 : (long long)off,
                                   e[i].explicit_off ? e[i].b1 : (long long)(off + e[i].nbytes));
        }
        if (e[i].nbytes) memcpy(data + off, e[i].data, e[i].nbytes);
        off += e[i].nbytes;
    }
    if (meta) hl += (size_t)snprintf(h + hl, cap - hl, "%s\"__metadata__\":%s", n ? "," : "", meta);
    h[hl++] = '}';
    while (hl % 8) h[hl++] = ' ';
    f = tm_raw(h, hl, data, total, size);
    return f;
}

/* The __metadata__ value {"format": "pt", "config": "<config_json, escaped>"}. */
static char *tm_meta_from(const char *config_json) {
    size_t n = strlen(config_json), k = 0, i;
    char *s = (char *)tsft_alloc_bytes(2 * n + 64);
    k += (size_t)sprintf(s, "{\"format\":\"pt\",\"config\":\"");
    for (i = 0; i < n; i++) {
        if (config_json[i] == '"' || config_json[i] == '\\') s[k++] = '\\';
        s[k++] = config_json[i];
    }
    strcpy(s + k, "\"}");
    return s;
}

/* A config as tests/golden/make_golden.py writes it (its keys), as JSON text. */
static char *tm_ref_config_json(const tsf_config *c) {
    char *s = (char *)tsft_alloc_bytes(1024);
    snprintf(s, 1024,
             "{\"img_size\": %d, \"patch_size\": %d, \"in_chans\": %d, \"num_frames\": %d, "
             "\"embed_dim\": %d, \"depth\": %d, \"num_heads\": %d, \"mlp_ratio\": %.9g, "
             "\"num_classes\": %d, \"attention_type\": \"%s\", \"ln_eps\": %.9g, \"qkv_bias\": %s}",
             c->image_size, c->patch_size, c->channels, c->frames, c->dim, c->depth, c->heads,
             (double)c->mlp_ratio, c->classes, tsf_attention_name(c->attention), (double)c->ln_eps,
             c->no_qkv_bias ? "false" : "true");
    return s;
}

/* float -> IEEE half, round to nearest even (subnormals and overflow included). */
static unsigned int tm_f32_to_f16(float f) {
    double a = fabs((double)f), q;
    unsigned int sign = signbit(f) ? 0x8000u : 0;
    int e;
    if (f != f) return 0x7e00u;
    if (a >= 65520.0) return sign | 0x7c00u;
    if (a < ldexp(1.0, -14))
        return sign | (unsigned int)rint(a * ldexp(1.0, 24)); /* may round up to 0x400 */
    q = frexp(a, &e);                                         /* a = q * 2^e, q in [0.5, 1) */
    q = rint((q * 2.0 - 1.0) * 1024.0), e -= 1;               /* a = (1 + q/1024) * 2^e */
    if (q == 1024.0) q = 0, e += 1;
    if (e > 15) return sign | 0x7c00u;
    return sign | (unsigned int)(e + 15) << 10 | (unsigned int)q;
}

static float tm_f16_to_f32(unsigned int h) {
    int e = (int)((h >> 10) & 31);
    unsigned int f = h & 1023;
    double v = e == 0    ? ldexp((double)f, -24)
               : e == 31 ? (f ? (double)NAN : (double)INFINITY)
                         : ldexp((double)(f | 1024), e - 25);
    return (float)((h & 0x8000u) ? -v : v);
}

static unsigned int tm_f32_bits(float f) {
    unsigned int u;
    memcpy(&u, &f, 4);
    return u;
}

/* float -> bfloat16, round to nearest even (finite values). */
static unsigned int tm_f32_to_bf16(float f) {
    unsigned int u = tm_f32_bits(f);
    return (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
}

static float tm_bf16_to_f32(unsigned int h) {
    unsigned int u = h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* What a value stored as dtype reads back as. */
static float tm_through(float v, const char *dtype) {
    if (strcmp(dtype, "F16") == 0) return tm_f16_to_f32(tm_f32_to_f16(v));
    if (strcmp(dtype, "BF16") == 0) return tm_bf16_to_f32(tm_f32_to_bf16(v));
    return v; /* F32, F64: exact */
}

/* n floats as little-endian dtype bytes. */
static unsigned char *tm_encode(const float *x, size_t n, const char *dtype, size_t *nbytes) {
    int esize = strcmp(dtype, "F64") == 0 ? 8 : strcmp(dtype, "F32") == 0 ? 4 : 2, k;
    unsigned char *b = (unsigned char *)tsft_alloc_bytes(n * (size_t)esize);
    size_t i;
    for (i = 0; i < n; i++) {
        unsigned long long u;
        if (esize == 8) {
            double d = (double)x[i];
            memcpy(&u, &d, 8);
        } else if (esize == 4) {
            u = tm_f32_bits(x[i]);
        } else {
            u = strcmp(dtype, "F16") == 0 ? tm_f32_to_f16(x[i]) : tm_f32_to_bf16(x[i]);
        }
        for (k = 0; k < esize; k++)
            b[i * (size_t)esize + (size_t)k] = (unsigned char)(u >> (8 * k));
    }
    *nbytes = n * (size_t)esize;
    return b;
}

/* The original facebookresearch name of a Hugging Face name (docs/model.md section 7). */
static void tm_orig_name(const char *hf, char *out, size_t cap) {
    static const char *const map[][2] = {
        {"timesformer.embeddings.cls_token", "cls_token"},
        {"timesformer.embeddings.position_embeddings", "pos_embed"},
        {"timesformer.embeddings.time_embeddings", "time_embed"},
        {"timesformer.embeddings.patch_embeddings.projection.", "patch_embed.proj."},
        {"timesformer.layernorm.", "norm."},
        {"classifier.", "head."},
    };
    static const char *const block[][2] = {
        {"temporal_layernorm.", "temporal_norm1."},
        {"temporal_attention.attention.qkv.", "temporal_attn.qkv."},
        {"temporal_attention.output.dense.", "temporal_attn.proj."},
        {"temporal_dense.", "temporal_fc."},
        {"layernorm_before.", "norm1."},
        {"attention.attention.qkv.", "attn.qkv."},
        {"attention.output.dense.", "attn.proj."},
        {"layernorm_after.", "norm2."},
        {"intermediate.dense.", "mlp.fc1."},
        {"output.dense.", "mlp.fc2."},
    };
    const char *pre = "timesformer.encoder.layer.";
    size_t i;
    for (i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strncmp(hf, map[i][0], strlen(map[i][0])) == 0) {
            snprintf(out, cap, "%s%s", map[i][1], hf + strlen(map[i][0]));
            return;
        }
    if (strncmp(hf, pre, strlen(pre)) == 0) {
        char *rest;
        long layer = strtol(hf + strlen(pre), &rest, 10);
        rest++; /* the '.' after the block number */
        for (i = 0; i < sizeof block / sizeof block[0]; i++)
            if (strncmp(rest, block[i][0], strlen(block[i][0])) == 0) {
                snprintf(out, cap, "blocks.%ld.%s%s", layer, block[i][1],
                         rest + strlen(block[i][0]));
                return;
            }
    }
    snprintf(out, cap, "UNMAPPED.%s", hf);
}

/* Name styles for tm_entries. */
enum { TM_HF, TM_ORIG, TM_ORIG_MODEL, TM_ORIG_MODULE, TM_ORIG_MODULE_MODEL, TM_MIXED };

/* The model's tensors as entries: dtype (NULL: F32, F16, BF16, F64 in turn) and name style. */
static tm_ent *tm_entries(const tsf_model *m, const char *dtype, int style, int *n) {
    static const char *const cycle[4] = {"F32", "F16", "BF16", "F64"};
    int nt = tsf_model_num_tensors(m), i, k;
    tm_ent *e = (tm_ent *)tsft_alloc_bytes((size_t)(nt + 4) * sizeof *e);
    for (i = 0; i < nt; i++) {
        char hf[96], orig[128];
        float *data;
        size_t numel = 1;
        int st = style == TM_MIXED ? (i % 2 ? TM_ORIG_MODEL : TM_HF) : style;
        tsf_model_tensor(m, i, hf, &e[i].ndim, e[i].shape, &data);
        for (k = 0; k < e[i].ndim; k++) numel *= (size_t)e[i].shape[k];
        tm_orig_name(hf, orig, sizeof orig);
        e[i].name = (char *)tsft_alloc_bytes(160);
        snprintf(e[i].name, 160, "%s%s",
                 st == TM_ORIG_MODEL          ? "model."
                 : st == TM_ORIG_MODULE       ? "module."
                 : st == TM_ORIG_MODULE_MODEL ? "module.model."
                                              : "",
                 st == TM_HF ? hf : orig);
        e[i].dtype = dtype ? dtype : cycle[i % 4];
        e[i].data = tm_encode(data, numel, e[i].dtype, &e[i].nbytes);
    }
    *n = nt;
    return e;
}

/* Index of the entry named name, or -1. */
static int tm_find(const tm_ent *e, int n, const char *name) {
    int i;
    for (i = 0; i < n; i++)
        if (strcmp(e[i].name, name) == 0) return i;
    return -1;
}

/* The byte offset entry i gets in tm_build's data section. */
static long long tm_auto_off(const tm_ent *e, int i) {
    long long off = 0;
    int k;
    for (k = 0; k < i; k++) off += (long long)e[k].nbytes;
    return off;
}

/* Write DIR/config.json (text) and DIR/model.safetensors (g's tensors, HF names, no
   metadata). Paths of the two files go to cfgp and modp. */
static int tm_write_hf_folder(const char *dir, const char *config, const tsf_model *g, char *cfgp,
                              char *modp, size_t cap) {
    size_t size;
    int n;
    tm_ent *e = tm_entries(g, "F32", TM_HF, &n);
    unsigned char *f = tm_build(e, n, NULL, &size);
    snprintf(cfgp, cap, "%s/config.json", dir);
    snprintf(modp, cap, "%s/model.safetensors", dir);
    mkdir(dir, 0700);
    return tm_write(cfgp, config, strlen(config)) && tm_write(modp, f, size);
}

/* ---- save and load ------------------------------------------------------------------------ */

/* Byte offset of the data section of a safetensors file. */
static size_t tm_data0(const unsigned char *f) {
    unsigned long long n = 0;
    int k;
    for (k = 7; k >= 0; k--) n = (n << 8) | f[k];
    return 8 + (size_t)n;
}

static void test_weights_save_load(void) {
    static const char *const sets[3] = {"space_base", "joint_base", "divided_base"};
    char path[256], path2[256], tmpname[300];
    int s;
    tm_tmp(path, sizeof path, "save.safetensors");
    tm_tmp(path2, sizeof path2, "save2.safetensors");
    snprintf(tmpname, sizeof tmpname, "%s.tmp", path);
    for (s = 0; s < 3; s++) {
        tsf_model a, b;
        tsf_error err;
        size_t n1 = 0, n2 = 0, ng = 0;
        unsigned char *f1, *f2, *fg;
        char gpath[256];
        memset(&a, 0, sizeof a), memset(&b, 0, sizeof b), memset(&err, 0, sizeof err);
        if (!CHECK(tm_load_golden(&a, sets[s], 1))) continue;
        if (!CHECK_EQ_INT(tsf_model_save(&a, path, &err), TSF_OK)) {
            printf("    save %s: %s\n", path, err.msg);
            tsf_model_free(&a);
            continue;
        }
        CHECK(!tm_exists(tmpname)); /* the temporary file was renamed */
        if (CHECK_EQ_INT(tsf_model_load(&b, path, 2, &err), TSF_OK)) {
            CHECK(tm_same_config(&a.cfg, &b.cfg));
            CHECK(tm_same_params(&a, &b));
            CHECK_EQ_INT(b.num_params, a.num_params);
        } else {
            printf("    load %s: %s\n", path, err.msg);
        }
        /* saving again gives the same bytes, and so does saving the reloaded model */
        CHECK_EQ_INT(tsf_model_save(&a, path2, &err), TSF_OK);
        f1 = tm_read(path, &n1);
        f2 = tm_read(path2, &n2);
        CHECK(f1 && f2 && n1 == n2 && memcmp(f1, f2, n1) == 0);
        if (b.param_memory) {
            CHECK_EQ_INT(tsf_model_save(&b, path2, &err), TSF_OK); /* over an existing file */
            f2 = tm_read(path2, &n2);
            CHECK(f1 && f2 && n1 == n2 && memcmp(f1, f2, n1) == 0);
        }
        /* the data section is make_golden.py's: F32 tensors in name order, back to back */
        tm_golden_path(gpath, sizeof gpath, sets[s], "weights.safetensors");
        fg = tm_read(gpath, &ng);
        if (CHECK(f1 && fg)) {
            size_t d1 = tm_data0(f1), dg = tm_data0(fg);
            CHECK_EQ_INT(d1 % 8, 0); /* data 8-byte aligned */
            CHECK(n1 - d1 == ng - dg && memcmp(f1 + d1, fg + dg, n1 - d1) == 0);
        }
        remove(path);
        remove(path2);
        tsf_model_free(&a);
        tsf_model_free(&b);
    }
}

/* Every config field the metadata carries survives a save and a load. */
static void test_weights_save_config(void) {
    tsf_config cfg;
    tsf_model a, b;
    tsf_error err;
    char path[256];
    memset(&a, 0, sizeof a), memset(&b, 0, sizeof b), memset(&err, 0, sizeof err);
    memset(&cfg, 0, sizeof cfg);
    cfg.image_size = 20, cfg.patch_size = 5, cfg.channels = 2, cfg.frames = 3, cfg.dim = 16;
    cfg.depth = 1, cfg.heads = 4, cfg.mlp_ratio = 3.5f, cfg.classes = 4;
    cfg.attention = TSF_ATTN_DIVIDED, cfg.ln_eps = 1e-5f, cfg.no_qkv_bias = 1, cfg.bgr = 1;
    cfg.mean[0] = 0.485f, cfg.mean[1] = 0.456f, cfg.mean[2] = 0.406f;
    cfg.std[0] = 0.229f, cfg.std[1] = 0.224f, cfg.std[2] = 0.225f;
    tm_tmp(path, sizeof path, "cfg.safetensors");
    REQUIRE(tsf_model_init(&a, &cfg, 1, 77) == TSF_OK);
    if (!CHECK_EQ_INT(tsf_model_save(&a, path, &err), TSF_OK)) goto done;
    if (!CHECK_EQ_INT(tsf_model_load(&b, path, 1, &err), TSF_OK)) {
        printf("    %s\n", err.msg);
        goto done;
    }
    CHECK(tm_same_config(&a.cfg, &b.cfg));
    CHECK(b.params.qkv_b == NULL && b.params.t_qkv_b == NULL);
    CHECK(tm_same_params(&a, &b));
done:
    remove(path);
    tsf_model_free(&a);
    tsf_model_free(&b);
}

/* Class names survive save and load; escapes included. */
static void tm_labels_roundtrip(const char *const *names, const char *file) {
    tsf_model a, b;
    tsf_error err;
    char path[256], buf[TM_K][64];
    const char *copy[TM_K];
    int k;
    memset(&a, 0, sizeof a), memset(&b, 0, sizeof b), memset(&err, 0, sizeof err);
    tm_tmp(path, sizeof path, file);
    if (!CHECK(tm_load_golden(&a, "divided_base", 1))) goto done;
    CHECK(strcmp(tsf_model_label(&a, 0), "") == 0); /* the golden file has none */
    for (k = 0; k < TM_K; k++) snprintf(buf[k], sizeof buf[k], "%s", names[k]), copy[k] = buf[k];
    CHECK_EQ_INT(tsf_model_set_labels(&a, copy), TSF_OK);
    memset(buf, 'x', sizeof buf); /* the model keeps its own copy */
    for (k = 0; k < TM_K; k++) CHECK(strcmp(tsf_model_label(&a, k), names[k]) == 0);
    CHECK(strcmp(tsf_model_label(&a, -1), "") == 0 && strcmp(tsf_model_label(&a, TM_K), "") == 0);
    if (!CHECK_EQ_INT(tsf_model_save(&a, path, &err), TSF_OK)) goto done;
    if (!CHECK_EQ_INT(tsf_model_load(&b, path, 1, &err), TSF_OK)) {
        printf("    %s\n", err.msg);
        goto done;
    }
    for (k = 0; k < TM_K; k++)
        if (!CHECK(strcmp(tsf_model_label(&b, k), names[k]) == 0))
            printf("    label %d: got \"%s\", want \"%s\"\n", k, tsf_model_label(&b, k), names[k]);
    CHECK(tm_same_params(&a, &b));
    /* NULL clears them; a model saved without names loads without names */
    CHECK_EQ_INT(tsf_model_set_labels(&b, NULL), TSF_OK);
    CHECK(strcmp(tsf_model_label(&b, 1), "") == 0);
    tsf_model_free(&a);
    if (CHECK_EQ_INT(tsf_model_save(&b, path, &err), TSF_OK) &&
        CHECK_EQ_INT(tsf_model_load(&a, path, 1, &err), TSF_OK))
        CHECK(strcmp(tsf_model_label(&a, 1), "") == 0);
done:
    remove(path);
    tsf_model_free(&a);
    tsf_model_free(&b);
}

static void test_weights_labels_ascii(void) {
    static const char *const names[TM_K] = {"abseiling", "say \"hi\"", "back\\slash",
                                            "tab\tnew\nline", "{\"json\": [1, 2]}"};
    tm_labels_roundtrip(names, "labels_ascii.safetensors");
}

static void test_weights_labels_utf8(void) {
    static const char *const names[TM_K] = {"caf\xc3\xa9 \"x\"", "\xe6\x97\xa5\xe6\x9c\xac",
                                            "\xf0\x9f\x8e\xac clapper", "na\xc3\xafve\\", "plain"};
    /* raw UTF-8 (not \u escapes) in a config.json's id2label, as json.dumps(ensure_ascii=False)
       writes it, is kept byte for byte */
    static const char config[] =
        "{\"image_size\": 16, \"patch_size\": 4, \"num_channels\": 3, \"num_frames\": 3,"
        " \"hidden_size\": 24, \"num_hidden_layers\": 2, \"num_attention_heads\": 3,"
        " \"intermediate_size\": 48, \"attention_type\": \"divided_space_time\","
        " \"id2label\": {\"0\": \"caf\xc3\xa9 \\\"x\\\"\", \"1\": \"\xe6\x97\xa5\xe6\x9c\xac\","
        " \"2\": \"\xf0\x9f\x8e\xac clapper\", \"3\": \"na\xc3\xafve\\\\\", \"4\": \"plain\"}}";
    tsf_model g, m;
    tsf_error err;
    char dir[256], cfgp[300], modp[300];
    int k;
    memset(&g, 0, sizeof g), memset(&m, 0, sizeof m), memset(&err, 0, sizeof err);
    tm_tmp(dir, sizeof dir, "hf_utf8");
    snprintf(cfgp, sizeof cfgp, "%s/config.json", dir);
    snprintf(modp, sizeof modp, "%s/model.safetensors", dir);
    if (CHECK(tm_load_golden(&g, "divided_base", 1)) &&
        CHECK(tm_write_hf_folder(dir, config, &g, cfgp, modp, sizeof cfgp))) {
        if (CHECK_EQ_INT(tsf_model_load(&m, dir, 1, &err), TSF_OK)) {
            for (k = 0; k < TM_K; k++)
                if (!CHECK(strcmp(tsf_model_label(&m, k), names[k]) == 0))
                    printf("    config.json label %d: got \"%s\", want \"%s\"\n", k,
                           tsf_model_label(&m, k), names[k]);
        } else {
            printf("    %s\n", err.msg);
        }
    }
    remove(cfgp);
    remove(modp);
    rmdir(dir);
    tsf_model_free(&g);
    tsf_model_free(&m);
    /* through tsf_model_save's metadata */
    tm_labels_roundtrip(names, "labels_utf8.safetensors");
}

static void test_weights_load_memory(void) {
    tsf_model a, b, c;
    tsf_error err;
    size_t size = 0, nx = (size_t)2 * 3 * 3 * 16 * 16;
    unsigned char *file = tm_read("tests/golden/divided_base/weights.safetensors", &size), *copy;
    float *x = tm_read_floats("tests/golden/divided_base/input.bin", nx), *l1 = tsft_alloc(10);
    tsf_config cfg;
    memset(&a, 0, sizeof a), memset(&b, 0, sizeof b), memset(&c, 0, sizeof c);
    memset(&err, 0, sizeof err);
    REQUIRE(file != NULL && x != NULL);
    if (!CHECK(tm_load_golden(&a, "divided_base", 2))) goto done;
    CHECK_EQ_INT(tsf_model_forward(&a, x, 2, 3, 16, 16, l1), TSF_OK);
    /* from memory, config from the metadata; the buffer may go away after the load */
    copy = (unsigned char *)malloc(size);
    REQUIRE(copy != NULL);
    memcpy(copy, file, size);
    if (!CHECK_EQ_INT(tsf_model_load_memory(&b, copy, size, NULL, 2, &err), TSF_OK)) {
        printf("    %s\n", err.msg);
        free(copy);
        goto done;
    }
    memset(copy, 0xff, size);
    free(copy);
    CHECK(tm_same_config(&a.cfg, &b.cfg));
    CHECK(tm_same_params(&a, &b));
    CHECK_EQ_INT(tsf_model_forward(&b, x, 2, 3, 16, 16, NULL), TSF_OK);
    CHECK(same_bits(b.acts.logits, l1, 10));
    /* with the config given (the metadata is then not needed) */
    cfg = a.cfg;
    if (CHECK_EQ_INT(tsf_model_load_memory(&c, file, size, &cfg, 1, &err), TSF_OK))
        CHECK(tm_same_params(&a, &c));
    tsf_model_free(&c);
    /* a given config that does not match the file */
    cfg.dim = 48, cfg.heads = 4;
    memset(&err, 0, sizeof err);
    CHECK(tsf_model_load_memory(&c, file, size, &cfg, 1, &err) != TSF_OK);
    CHECK(strstr(err.msg, "shape") != NULL);
    CHECK(c.param_memory == NULL);
    cfg = a.cfg, cfg.attention = TSF_ATTN_JOINT; /* a divided file read as joint */
    memset(&err, 0, sizeof err);
    CHECK(tsf_model_load_memory(&c, file, size, &cfg, 1, &err) != TSF_OK);
    CHECK(strstr(err.msg, "temporal") != NULL);
    /* arguments */
    CHECK_EQ_INT(tsf_model_load_memory(&c, NULL, size, NULL, 1, &err), TSF_ERR_ARG);
    CHECK_EQ_INT(tsf_model_load_memory(NULL, file, size, NULL, 1, &err), TSF_ERR_ARG);
    CHECK(tsf_model_load_memory(&c, file, size, NULL, -1, NULL) != TSF_OK); /* B < 0; err NULL */
    CHECK(c.param_memory == NULL);
    /* B = 0 loads the parameters only; a forward pass then makes room itself */
    if (CHECK_EQ_INT(tsf_model_load_memory(&c, file, size, NULL, 0, NULL), TSF_OK)) {
        CHECK(c.act_memory == NULL && tm_same_params(&a, &c));
        CHECK_EQ_INT(tsf_model_forward(&c, x, 2, 3, 16, 16, NULL), TSF_OK);
        CHECK(same_bits(c.acts.logits, l1, 10));
    }
done:
    tsf_model_free(&a);
    tsf_model_free(&b);
    tsf_model_free(&c);
}

/* ---- formats and names -------------------------------------------------------------------- */

/* F16, BF16, F64 and a mix load as the format's rounding of the F32 values. */
static void test_weights_dtypes(void) {
    static const char *const dtypes[5] = {"F32", "F16", "BF16", "F64", NULL}; /* NULL: mixed */
    /* values that exercise the half decoder: subnormals, signed zero, the largest half */
    static const float special[6] = {1e-6f,          -0.0f, 65504.0f, 6.103515625e-05f,
                                     5.9604645e-08f, -2.5f};
    tsf_model g, m;
    tsf_error err;
    size_t nx = (size_t)2 * 3 * 3 * 16 * 16;
    float *x = tm_read_floats("tests/golden/divided_base/input.bin", nx), *lg = tsft_alloc(10);
    float orig_cls[6];
    double *lgd;
    char *meta;
    int d, i, j, k, n;
    memset(&g, 0, sizeof g), memset(&m, 0, sizeof m);
    REQUIRE(x != NULL);
    if (!CHECK(tm_load_golden(&g, "divided_base", 2))) goto done;
    CHECK_EQ_INT(tsf_model_forward(&g, x, 2, 3, 16, 16, lg), TSF_OK);
    lgd = tm_to_double(lg, 10);
    memcpy(orig_cls, g.params.cls_token, sizeof orig_cls);
    memcpy(g.params.cls_token, special, sizeof special); /* stored in the files only */
    meta = tm_meta_from(tm_ref_config_json(&g.cfg));
    for (d = 0; d < 5; d++) {
        const char *dname = dtypes[d] ? dtypes[d] : "mixed";
        tm_ent *e = tm_entries(&g, dtypes[d], TM_HF, &n);
        size_t size;
        unsigned char *f = tm_build(e, n, meta, &size);
        int bad = 0, icls = tm_find(e, n, "timesformer.embeddings.cls_token");
        memset(&err, 0, sizeof err);
        if (!CHECK_EQ_INT(tsf_model_load_memory(&m, f, size, NULL, 2, &err), TSF_OK)) {
            printf("    %s: %s\n", dname, err.msg);
            continue;
        }
        for (i = 0; i < n; i++) { /* every value is the format's rounding of the original */
            char nm[96];
            long long shape[4];
            float *want, *got;
            size_t numel = 1, q;
            int nd;
            tsf_model_tensor(&g, i, nm, &nd, shape, &want);
            tsf_model_tensor(&m, i, nm, &nd, shape, &got);
            for (k = 0; k < nd; k++) numel *= (size_t)shape[k];
            for (q = 0; q < numel; q++) {
                float w = tm_through(want[q], e[i].dtype);
                if (tm_f32_bits(w) != tm_f32_bits(got[q]) && bad++ < 3)
                    printf("    %s %s[%zu]: got %.9g want %.9g\n", e[i].dtype, nm, q,
                           (double)got[q], (double)w);
            }
        }
        if (!CHECK_EQ_INT(bad, 0)) printf("    %s\n", dname);
        /* logits with the golden cls values (rounded the same way): F32 and F64 exact */
        for (j = 0; j < 6; j++) m.params.cls_token[j] = tm_through(orig_cls[j], e[icls].dtype);
        CHECK_EQ_INT(tsf_model_forward(&m, x, 2, 3, 16, 16, NULL), TSF_OK);
        if (dtypes[d] && (strcmp(dtypes[d], "F32") == 0 || strcmp(dtypes[d], "F64") == 0))
            CHECK(same_bits(m.acts.logits, lg, 10));
        else if (!CHECK_ARRAY_NEAR(m.acts.logits, lgd, 10, 0.05, 0))
            printf("    %s\n", dname);
        tsf_model_free(&m);
    }
    /* the converters of this test agree with known encodings */
    CHECK_EQ_INT(tm_f32_to_f16(1.0f), 0x3c00);
    CHECK_EQ_INT(tm_f32_to_f16(-2.0f), 0xc000);
    CHECK_EQ_INT(tm_f32_to_f16(65504.0f), 0x7bff);
    CHECK_EQ_INT(tm_f32_to_f16(5.9604645e-08f), 0x0001);
    CHECK_EQ_INT(tm_f32_to_f16(6.103515625e-05f), 0x0400);
    CHECK_EQ_INT(tm_f32_to_f16(1.0f + 1.0f / 2048), 0x3c00); /* a tie: to even */
    CHECK_EQ_INT(tm_f32_to_f16(1.0f + 3.0f / 2048), 0x3c02);
    CHECK_EQ_INT(tm_f32_to_bf16(1.0f), 0x3f80);
    CHECK_EQ_INT(tm_f32_to_bf16(1.00390625f), 0x3f80); /* 1 + 2^-8: a tie, to even */
    CHECK(tm_f16_to_f32(0x8000) == 0.0f && signbit(tm_f16_to_f32(0x8000)));
done:
    tsf_model_free(&g);
    tsf_model_free(&m);
}

/* The facebookresearch names, with and without "model."/"module." prefixes, and mixed. */
static void test_weights_original_names(void) {
    static const int styles[5] = {TM_ORIG, TM_ORIG_MODEL, TM_ORIG_MODULE, TM_ORIG_MODULE_MODEL,
                                  TM_MIXED};
    static const char *const sets[3] = {"divided_base", "joint_base", "space_base"};
    int s, i, n;
    for (s = 0; s < 3; s++) {
        tsf_model g, m;
        tsf_error err;
        char *meta;
        memset(&g, 0, sizeof g), memset(&m, 0, sizeof m);
        if (!CHECK(tm_load_golden(&g, sets[s], 1))) continue;
        meta = tm_meta_from(tm_ref_config_json(&g.cfg));
        for (i = 0; i < 5; i++) {
            tm_ent *e = tm_entries(&g, "F32", styles[i], &n);
            size_t size;
            unsigned char *f = tm_build(e, n, meta, &size);
            if (s == 0 && i == 1) { /* the names the brief of the format promises */
                CHECK(tm_find(e, n, "model.blocks.0.attn.qkv.weight") >= 0);
                CHECK(tm_find(e, n, "model.blocks.1.temporal_fc.bias") >= 0);
                CHECK(tm_find(e, n, "model.cls_token") >= 0 &&
                      tm_find(e, n, "model.pos_embed") >= 0);
                CHECK(tm_find(e, n, "model.head.weight") >= 0 &&
                      tm_find(e, n, "model.norm.weight") >= 0);
            }
            memset(&err, 0, sizeof err);
            if (CHECK_EQ_INT(tsf_model_load_memory(&m, f, size, NULL, 1, &err), TSF_OK))
                CHECK(tm_same_params(&g, &m));
            else
                printf("    %s style %d: %s\n", sets[s], i, err.msg);
            tsf_model_free(&m);
            if (i == 0) { /* a converted .pyth: no metadata, the config given */
                f = tm_build(e, n, NULL, &size);
                if (CHECK_EQ_INT(tsf_model_load_memory(&m, f, size, &g.cfg, 1, &err), TSF_OK))
                    CHECK(tm_same_params(&g, &m));
                tsf_model_free(&m);
            }
        }
        tsf_model_free(&g);
    }
}

/* A Hugging Face model folder: config.json (HF keys, id2label) + model.safetensors. */
static const char tm_hf_config[] = "{\n"
                                   "  \"_name_or_path\": \"tiny\",\n"
                                   "  \"architectures\": [\"TimesformerForVideoClassification\"],\n"
                                   "  \"attention_type\": \"divided_space_time\",\n"
                                   "  \"drop_path_rate\": 0.0,\n"
                                   "  \"hidden_act\": \"gelu\",\n"
                                   "  \"hidden_dropout_prob\": 0.0,\n"
                                   "  \"hidden_size\": 24,\n"
                                   "  \"id2label\": {\n"
                                   "    \"1\": \"caf\\u00e9\",\n"
                                   "    \"0\": \"abseiling\",\n"
                                   "    \"2\": \"say \\\"hi\\\"\",\n"
                                   "    \"4\": \"zumba\",\n"
                                   "    \"3\": \"back\\\\slash\"\n"
                                   "  },\n"
                                   "  \"image_size\": 16,\n"
                                   "  \"initializer_range\": 0.02,\n"
                                   "  \"intermediate_size\": 48,\n"
                                   "  \"label2id\": {\"abseiling\": 0, \"caf\\u00e9\": 1, \"say "
                                   "\\\"hi\\\"\": 2, \"back\\\\slash\": 3, \"zumba\": 4},\n"
                                   "  \"layer_norm_eps\": 1e-06,\n"
                                   "  \"model_type\": \"timesformer\",\n"
                                   "  \"num_attention_heads\": 3,\n"
                                   "  \"num_channels\": 3,\n"
                                   "  \"num_frames\": 3,\n"
                                   "  \"num_hidden_layers\": 2,\n"
                                   "  \"patch_size\": 4,\n"
                                   "  \"qkv_bias\": true,\n"
                                   "  \"torch_dtype\": \"float32\",\n"
                                   "  \"transformers_version\": \"4.26.0.dev0\"\n"
                                   "}\n";
static const char *const tm_hf_labels[TM_K] = {"abseiling", "caf\xc3\xa9", "say \"hi\"",
                                               "back\\slash", "zumba"};

static void test_weights_hf_folder(void) {
    tsf_model g, m;
    tsf_error err;
    char dir[256], cfgp[300], modp[300];
    size_t nx = (size_t)2 * 3 * 3 * 16 * 16;
    float *x = tm_read_floats("tests/golden/divided_base/input.bin", nx);
    float *want = tm_read_floats("tests/golden/divided_base/logits.bin", 10);
    int k;
    memset(&g, 0, sizeof g), memset(&m, 0, sizeof m), memset(&err, 0, sizeof err);
    REQUIRE(x != NULL && want != NULL);
    tm_tmp(dir, sizeof dir, "hf");
    snprintf(cfgp, sizeof cfgp, "%s/config.json", dir);
    snprintf(modp, sizeof modp, "%s/model.safetensors", dir);
    if (!CHECK(tm_load_golden(&g, "divided_base", 1))) goto done;
    if (!CHECK(tm_write_hf_folder(dir, tm_hf_config, &g, cfgp, modp, sizeof cfgp))) goto done;
    if (!CHECK_EQ_INT(tsf_model_load(&m, dir, 2, &err), TSF_OK)) {
        printf("    %s\n", err.msg);
        goto done;
    }
    CHECK(tm_same_config(&g.cfg, &m.cfg));
    CHECK(tm_same_params(&g, &m));
    for (k = 0; k < TM_K; k++)
        if (!CHECK(strcmp(tsf_model_label(&m, k), tm_hf_labels[k]) == 0))
            printf("    label %d: \"%s\"\n", k, tsf_model_label(&m, k));
    CHECK_EQ_INT(tsf_model_forward(&m, x, 2, 3, 16, 16, NULL), TSF_OK);
    CHECK_ARRAY_NEAR(m.acts.logits, tm_to_double(want, 10), 10, MODEL_LOGITS_ATOL, 0);
    tsf_model_free(&m);
    /* the folder's config wins over no config; a file alone cannot be loaded */
    memset(&err, 0, sizeof err);
    CHECK_EQ_INT(tsf_model_load(&m, modp, 1, &err), TSF_ERR_CONFIG);
    CHECK(strstr(err.msg, "config") != NULL);
    /* a folder whose config.json does not match its weights */
    {
        static const char bad[] =
            "{\"hidden_size\": 24, \"num_hidden_layers\": 3, \"num_attention_heads\": 3,"
            " \"image_size\": 16, \"patch_size\": 4, \"num_frames\": 3,"
            " \"intermediate_size\": 48, \"num_labels\": 5}";
        CHECK(tm_write(cfgp, bad, strlen(bad)));
        memset(&err, 0, sizeof err);
        CHECK(tsf_model_load(&m, dir, 1, &err) != TSF_OK);
        CHECK(strstr(err.msg, "missing tensor timesformer.encoder.layer.2.") != NULL);
        CHECK(m.param_memory == NULL);
    }
    /* a folder without model.safetensors */
    remove(modp);
    memset(&err, 0, sizeof err);
    CHECK_EQ_INT(tsf_model_load(&m, dir, 1, &err), TSF_ERR_IO);
    CHECK(strstr(err.msg, "model.safetensors") != NULL);
    /* a config.json that is not JSON */
    CHECK(tm_write(cfgp, "{\"hidden_size\": ", 16));
    memset(&err, 0, sizeof err);
    CHECK(tsf_model_load(&m, dir, 1, &err) != TSF_OK);
    CHECK(err.msg[0] != 0);
done:
    remove(cfgp);
    remove(modp);
    rmdir(dir);
    tsf_model_free(&g);
    tsf_model_free(&m);
}

static void test_weights_config_load(void) {
    tsf_config c;
    tsf_error err;
    char path[256];
    int i;
    tm_tmp(path, sizeof path, "config.json");
    memset(&err, 0, sizeof err);
    REQUIRE(tm_write(path, tm_hf_config, strlen(tm_hf_config)));
    memset(&c, 0, sizeof c);
    CHECK_EQ_INT(tsf_config_load(&c, path, &err), TSF_OK);
    CHECK(c.image_size == 16 && c.patch_size == 4 && c.channels == 3 && c.frames == 3);
    CHECK(c.dim == 24 && c.depth == 2 && c.heads == 3 && c.mlp_ratio == 2.0f);
    CHECK_EQ_INT(c.classes, 5); /* from id2label */
    CHECK(c.attention == TSF_ATTN_DIVIDED && c.ln_eps == 1e-6f && c.no_qkv_bias == 0 && c.bgr == 0);
    for (i = 0; i < 3; i++) CHECK(c.mean[i] == 0.45f && c.std[i] == 0.225f);
    /* the released ViT-B sizes, qkv_bias false, num_labels */
    {
        static const char vitb[] =
            "{\"image_size\": 224, \"patch_size\": 16, \"num_channels\": 3,"
            " \"num_frames\": 8, \"hidden_size\": 768, \"num_hidden_layers\": 12,"
            " \"num_attention_heads\": 12, \"intermediate_size\": 3072,"
            " \"attention_type\": \"joint_space_time\", \"layer_norm_eps\": 1e-05,"
            " \"qkv_bias\": false, \"num_labels\": 174}";
        CHECK(tm_write(path, vitb, strlen(vitb)));
        memset(&c, 0, sizeof c);
        CHECK_EQ_INT(tsf_config_load(&c, path, &err), TSF_OK);
        CHECK(c.image_size == 224 && c.dim == 768 && c.depth == 12 && c.heads == 12);
        CHECK(c.mlp_ratio == 4.0f && c.classes == 174 && c.attention == TSF_ATTN_JOINT);
        CHECK(c.ln_eps == 1e-5f && c.no_qkv_bias == 1);
    }
    /* an invalid config resolves to an error */
    {
        static const char bad[] = "{\"hidden_size\": 25, \"num_attention_heads\": 3}";
        CHECK(tm_write(path, bad, strlen(bad)));
        memset(&c, 0, sizeof c), memset(&err, 0, sizeof err);
        CHECK_EQ_INT(tsf_config_load(&c, path, &err), TSF_ERR_CONFIG);
        CHECK(err.msg[0] != 0);
    }
    remove(path);
    memset(&c, 0, sizeof c), memset(&err, 0, sizeof err);
    CHECK_EQ_INT(tsf_config_load(&c, path, &err), TSF_ERR_IO);
    CHECK(strstr(err.msg, path) != NULL);
}

static void test_weights_config_from_json(void) {
    static const char ref[] =
        "{\"img_size\": 32, \"patch_size\": 8, \"in_chans\": 2, \"num_frames\": 4, \"embed_dim\": "
        "48, "
        "\"depth\": 3, \"num_heads\": 4, \"mlp_ratio\": 3.5, \"num_classes\": 7, "
        "\"attention_type\": \"space_only\", \"ln_eps\": 1e-05, \"qkv_bias\": false, "
        "\"mean\": [0.485, 0.456, 0.406], \"std\": [0.229, 0.224, 0.225], \"channel_order\": "
        "\"BGR\"}";
    static const char *const bad[] = {
        "{",                               /* not JSON */
        "[1, 2]",                          /* not an object */
        "{\"embed_dim\": 48} x",           /* trailing garbage */
        "{\"attention_type\": \"bogus\"}", /* unknown attention */
        "{\"attention_type\": 2}",         /* attention not a string */
        "{\"embed_dim\": -1}",             /* negative */
        "{\"embed_dim\": 1.5}",            /* not an integer */
        "{\"embed_dim\": \"48\"}",         /* a string */
        "{\"embed_dim\": 1e30}",           /* too large */
        "{\"mean\": [0.5]}",               /* too short */
        "{\"std\": 3}",                    /* not an array */
        "{\"mlp_ratio\": \"4\"}",          /* a string */
        "{\"qkv_bias\": 1}",               /* not a boolean */
        "{\"layer_norm_eps\": null}",      /* not a number */
        "{\"intermediate_size\": 48}",     /* without hidden_size */
    };
    tsf_config c;
    tsf_error err;
    size_t i;
    memset(&c, 0, sizeof c), memset(&err, 0, sizeof err);
    CHECK_EQ_INT(tsf_config_from_json(&c, ref, strlen(ref), &err), TSF_OK);
    CHECK(c.image_size == 32 && c.patch_size == 8 && c.channels == 2 && c.frames == 4);
    CHECK(c.dim == 48 && c.depth == 3 && c.heads == 4 && c.mlp_ratio == 3.5f && c.classes == 7);
    CHECK(c.attention == TSF_ATTN_SPACE && c.ln_eps == 1e-5f && c.no_qkv_bias == 1 && c.bgr == 1);
    CHECK(c.mean[0] == 0.485f && c.mean[1] == 0.456f && c.mean[2] == 0.406f);
    CHECK(c.std[0] == 0.229f && c.std[1] == 0.224f && c.std[2] == 0.225f);
    CHECK_EQ_INT(tsf_config_resolve(&c), TSF_OK);
    /* missing keys keep the values already there; only len bytes are read */
    memset(&c, 0, sizeof c);
    c.dim = 99, c.depth = 5;
    CHECK_EQ_INT(tsf_config_from_json(&c, "{\"depth\": 7}xxxx", 12, &err), TSF_OK);
    CHECK(c.dim == 99 && c.depth == 7);
    CHECK_EQ_INT(tsf_config_from_json(&c, "{}", 2, &err), TSF_OK);
    CHECK(c.dim == 99 && c.depth == 7);
    /* the golden metadata config string */
    memset(&c, 0, sizeof c);
    {
        tsf_config want = tm_tiny(TSF_ATTN_DIVIDED);
        char *js;
        CHECK_EQ_INT(tsf_config_resolve(&want), TSF_OK); /* a file holds a full config */
        js = tm_ref_config_json(&want);
        CHECK_EQ_INT(tsf_config_from_json(&c, js, strlen(js), &err), TSF_OK);
        CHECK_EQ_INT(tsf_config_resolve(&c), TSF_OK);
        CHECK_EQ_INT(tsf_config_resolve(&want), TSF_OK);
        CHECK(tm_same_config(&c, &want));
    }
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&c, 0, sizeof c), memset(&err, 0, sizeof err);
        if (!CHECK(tsf_config_from_json(&c, bad[i], strlen(bad[i]), &err) != TSF_OK) ||
            !CHECK(err.msg[0] != 0))
            printf("    accepted or silent: %s\n", bad[i]);
    }
    CHECK(tsf_config_from_json(&c, "{", 1, NULL) != TSF_OK); /* err may be NULL */
}

/* ---- hostile files ------------------------------------------------------------------------ */

/* Load data[0..size) from an exact-size heap copy (so ASan sees any read past the end) and
   expect an error with a message (containing want, unless NULL) and nothing left allocated. */
static int tm_expect_fail(const char *what, const void *data, size_t size, const tsf_config *cfg,
                          const char *want) {
    unsigned char *copy = (unsigned char *)malloc(size ? size : 1);
    tsf_model m;
    tsf_error err;
    tsf_status st;
    int ok;
    if (!copy) return 0;
    if (size) memcpy(copy, data, size);
    memset(&err, 0, sizeof err);
    st = tsf_model_load_memory(&m, copy, size, cfg, 1, &err);
    ok = st != TSF_OK && (int)st < TSF_STATUS_COUNT && err.msg[0] != 0 &&
         (!want || strstr(err.msg, want) != NULL) && m.param_memory == NULL &&
         m.act_memory == NULL && m.labels == NULL;
    if (!ok || getenv("TSF_TEST_VERBOSE")) /* TSF_TEST_VERBOSE=1 shows every message */
        printf("    %s: status \"%s\", message \"%s\"%s%s\n", what, tsf_status_string(st), err.msg,
               want ? ", want it to name " : "", want ? want : "");
    tsf_model_free(&m);
    free(copy);
    return ok;
}

/* The golden divided_base model and its entries, for building bad files. */
typedef struct tm_src {
    tsf_model g;
    tm_ent *e;
    int n;
    char *meta;
} tm_src;

static int tm_src_init(tm_src *s) {
    tm_ent first;
    int ib;
    memset(s, 0, sizeof *s);
    if (!tm_load_golden(&s->g, "divided_base", 1)) return 0;
    s->e = tm_entries(&s->g, "F32", TM_HF, &s->n);
    s->meta = tm_meta_from(tm_ref_config_json(&s->g.cfg));
    /* classifier.bias (5 floats) first, so hand-written entries for it hold [0, 20] */
    ib = tm_find(s->e, s->n, "classifier.bias");
    if (ib < 0) return 0;
    first = s->e[ib];
    memmove(s->e + 1, s->e, (size_t)ib * sizeof *s->e);
    s->e[0] = first;
    return 1;
}

/* A copy of the entries to modify. */
static tm_ent *tm_src_copy(const tm_src *s) {
    tm_ent *e = (tm_ent *)tsft_alloc_bytes((size_t)(s->n + 4) * sizeof *e);
    memcpy(e, s->e, (size_t)s->n * sizeof *e);
    return e;
}

/* The file's raw bytes: the 8-byte length field and the header. */
static void test_weights_hostile_framing(void) {
    size_t size, vsize, hl;
    unsigned char *v = tm_read("tests/golden/divided_base/weights.safetensors", &vsize), *f;
    char *h;
    int k;
    REQUIRE(v != NULL);
    hl = tm_data0(v) - 8;
    CHECK(tm_expect_fail("empty", v, 0, NULL, NULL));
    CHECK(tm_expect_fail("5 bytes", v, 5, NULL, NULL));
    CHECK(tm_expect_fail("8 bytes", v, 8, NULL, NULL));
    CHECK(tm_expect_fail("header only", v, 8 + hl, NULL, NULL));
    /* header length: larger than the file, 0, 1, 2^63, 2^64 - 1 */
    {
        unsigned long long lens[5] = {0, 0, 1, 1ULL << 63, ~0ULL};
        lens[0] = vsize; /* 8 more than there is */
        for (k = 0; k < 5; k++) {
            int q;
            f = (unsigned char *)tsft_alloc_bytes(vsize);
            memcpy(f, v, vsize);
            for (q = 0; q < 8; q++) f[q] = (unsigned char)(lens[k] >> (8 * q));
            if (!CHECK(tm_expect_fail("header length", f, vsize, NULL, NULL)))
                printf("    length %llu\n", lens[k]);
        }
    }
    /* headers that are not a JSON object */
    {
        static const char *const hdrs[] = {
            "hello world     ", "[1, 2, 3]       ",  "\"a string\"      ", "42              ",
            "{\"a\": 1",        "{\"a\" 1}        ", "{,}             ",   "{\"a\": 1,}      ",
            "{'a': 1}        ", "{\"a\": [1 2]}   ", "                ",   "{}}             ",
        };
        for (k = 0; k < (int)(sizeof hdrs / sizeof hdrs[0]); k++) {
            f = tm_raw(hdrs[k], strlen(hdrs[k]), v + tm_data0(v), vsize - tm_data0(v), &size);
            if (!CHECK(tm_expect_fail("header", f, size, NULL, NULL)))
                printf("    header %s\n", hdrs[k]);
        }
    }
    /* deeply nested arrays, balanced and not */
    {
        size_t depth = 10000, i;
        h = (char *)tsft_alloc_bytes(2 * depth + 16);
        hl = 0;
        hl += (size_t)sprintf(h, "{\"a\":");
        for (i = 0; i < depth; i++) h[hl++] = '[';
        f = tm_raw(h, hl, NULL, 0, &size);
        CHECK(tm_expect_fail("10000 [", f, size, NULL, NULL));
        for (i = 0; i < depth; i++) h[hl++] = ']';
        h[hl++] = '}';
        f = tm_raw(h, hl, NULL, 0, &size);
        CHECK(tm_expect_fail("10000 [ ]", f, size, NULL, NULL));
        hl = 0;
        for (i = 0; i < depth; i++) hl += (size_t)sprintf(h + hl, "{\"");
        f = tm_raw(h, hl, NULL, 0, &size);
        CHECK(tm_expect_fail("10000 {\"", f, size, NULL, NULL));
    }
}

/* Entries that lie about their data, dtype, shape or name. */
static void test_weights_hostile_entries(void) {
    tm_src s;
    tm_ent *e;
    size_t size;
    unsigned char *f;
    int i, ib, iw, icls, n;
    if (!CHECK(tm_src_init(&s))) goto done;
    n = s.n;
    ib = tm_find(s.e, n, "classifier.bias");
    iw = tm_find(s.e, n, "timesformer.layernorm.weight");
    icls = tm_find(s.e, n, "timesformer.embeddings.cls_token");
    if (!CHECK(ib >= 0 && iw >= 0 && icls >= 0)) goto done;
    /* the unmodified entries load (the builder itself is right) */
    f = tm_build(s.e, n, s.meta, &size);
    {
        tsf_model m;
        tsf_error err;
        if (CHECK_EQ_INT(tsf_model_load_memory(&m, f, size, NULL, 1, &err), TSF_OK))
            CHECK(tm_same_params(&s.g, &m));
        tsf_model_free(&m);
    }
    /* truncated data section */
    CHECK(tm_expect_fail("truncated data", f, size - 4, NULL, NULL));
    CHECK(tm_expect_fail("truncated data", f, size - 1, NULL, NULL));
    /* offsets: past the end, end < begin, huge, overlapping another tensor */
    {
        long long total = tm_auto_off(s.e, n), nb = (long long)s.e[iw].nbytes;
        long long cases[5][2] = {{0, 0}, {0, 0}, {0, 0}, {0, 0}, {0, 0}};
        cases[0][0] = total, cases[0][1] = total + nb;           /* just outside */
        cases[1][0] = nb, cases[1][1] = 0;                       /* end < begin */
        cases[2][0] = (1LL << 62) - nb, cases[2][1] = 1LL << 62; /* far outside */
        cases[3][0] = tm_auto_off(s.e, iw) + 4,
        cases[3][1] = cases[3][0] + nb;        /* wrong place: overlaps the next */
        cases[4][0] = 0, cases[4][1] = nb + 4; /* wrong size */
        for (i = 0; i < 5; i++) {
            e = tm_src_copy(&s);
            e[iw].explicit_off = 1, e[iw].b0 = cases[i][0], e[iw].b1 = cases[i][1];
            f = tm_build(e, n, s.meta, &size);
            if (!CHECK(tm_expect_fail("offsets", f, size, NULL, NULL)))
                printf("    offsets [%lld, %lld]\n", cases[i][0], cases[i][1]);
        }
        /* two tensors of the same size sharing bytes */
        e = tm_src_copy(&s);
        i = tm_find(e, n, "timesformer.layernorm.bias");
        e[i].explicit_off = 1, e[i].b0 = tm_auto_off(e, iw), e[i].b1 = e[i].b0 + nb;
        f = tm_build(e, n, s.meta, &size);
        CHECK(tm_expect_fail("overlapping", f, size, NULL, "overlapping"));
        /* offsets that are not two non-negative integers */
        {
            static const char *const raws[] = {
                "{\"dtype\":\"F32\",\"shape\":[5],\"data_offsets\":[0]}",
                "{\"dtype\":\"F32\",\"shape\":[5],\"data_offsets\":[0,20,40]}",
                "{\"dtype\":\"F32\",\"shape\":[5],\"data_offsets\":[-20,0]}",
                "{\"dtype\":\"F32\",\"shape\":[5],\"data_offsets\":[\"0\",\"20\"]}",
                "{\"dtype\":\"F32\",\"shape\":[5],\"data_offsets\":[0.5,20.5]}",
                ("{\"dtype\":\"F32\",\"shape\":[5],\"data_offsets\":[18446744073709551596,"
                 "18446744073709551616]}"),
                "{\"dtype\":\"F32\",\"shape\":[5],\"data_offsets\":{\"0\":0,\"1\":20}}",
                "{\"dtype\":\"F32\",\"shape\":[5]}",
                "{\"dtype\":\"F32\",\"data_offsets\":[0,20]}",
                "{\"shape\":[5],\"data_offsets\":[0,20]}",
                "{\"dtype\":\"F32\",\"shape\":5,\"data_offsets\":[0,20]}",
                "{\"dtype\":\"F32\",\"shape\":[-5],\"data_offsets\":[0,20]}",
                "{\"dtype\":\"F32\",\"shape\":[5.5],\"data_offsets\":[0,20]}",
                "{\"dtype\":\"F32\",\"shape\":[\"5\"],\"data_offsets\":[0,20]}",
                "{\"dtype\":32,\"shape\":[5],\"data_offsets\":[0,20]}",
                "[\"F32\",[5],[0,20]]",
                "5",
                "null",
            };
            for (i = 0; i < (int)(sizeof raws / sizeof raws[0]); i++) {
                e = tm_src_copy(&s);
                e[ib].raw = raws[i]; /* classifier.bias sits first in the data: its 20 bytes stay */
                f = tm_build(e, n, s.meta, &size);
                if (!CHECK(tm_expect_fail("entry", f, size, NULL, NULL)))
                    printf("    entry %s\n", raws[i]);
            }
        }
    }
    /* wrong shape (one dim off), wrong rank (same count) */
    e = tm_src_copy(&s);
    i = tm_find(e, n, "classifier.weight");
    e[i].shape[1] += 1;
    f = tm_build(e, n, s.meta, &size);
    CHECK(tm_expect_fail("shape", f, size, NULL, "classifier.weight"));
    e = tm_src_copy(&s);
    e[icls].ndim = 1, e[icls].shape[0] = 24;
    f = tm_build(e, n, s.meta, &size);
    CHECK(tm_expect_fail("rank 1", f, size, NULL, "cls_token"));
    e = tm_src_copy(&s);
    e[icls].ndim = 4, e[icls].shape[0] = e[icls].shape[1] = e[icls].shape[2] = 1,
    e[icls].shape[3] = 24;
    f = tm_build(e, n, s.meta, &size);
    CHECK(tm_expect_fail("rank 4", f, size, NULL, "cls_token"));
    e = tm_src_copy(&s);
    e[ib].shape[0] = 0, e[ib].nbytes = 0; /* an empty tensor */
    f = tm_build(e, n, s.meta, &size);
    CHECK(tm_expect_fail("empty tensor", f, size, NULL, "classifier.bias"));
    /* unsupported dtypes (sizes consistent with the dtype) */
    {
        static const char *const dts[] = {"I32", "F8", "F8_E4M3", "U8", "I64", "f32", "BOOL", ""};
        static const size_t esz[] = {4, 1, 1, 1, 8, 4, 1, 4};
        for (i = 0; i < (int)(sizeof dts / sizeof dts[0]); i++) {
            e = tm_src_copy(&s);
            e[ib].dtype = dts[i];
            e[ib].nbytes = 5 * esz[i];
            e[ib].data = (unsigned char *)tsft_alloc_bytes(5 * 8);
            f = tm_build(e, n, s.meta, &size);
            if (!CHECK(tm_expect_fail("dtype", f, size, NULL, "classifier.bias")))
                printf("    dtype %s\n", dts[i]);
        }
    }
done:
    tsf_model_free(&s.g);
}

/* Missing, extra, duplicate and badly written names. */
static void test_weights_hostile_names(void) {
    static const char *const drop[] = {"timesformer.encoder.layer.1.temporal_dense.bias",
                                       "classifier.bias", "timesformer.embeddings.time_embeddings",
                                       "timesformer.encoder.layer.0.attention.attention.qkv.bias"};
    static const char *const extra[] = {"foo.bar",
                                        "timesformer.encoder.layer.2.layernorm_before.weight",
                                        "blocks.7.norm1.weight",
                                        "timesformer.encoder.layer.-1.layernorm_before.weight",
                                        "model.",
                                        "",
                                        "head.weight.x",
                                        "timesformer.encoder.layer.1x.layernorm_before.weight"};
    tm_src s;
    tm_ent *e;
    size_t size;
    unsigned char *f;
    int i, k, n;
    if (!CHECK(tm_src_init(&s))) goto done;
    n = s.n;
    /* a missing tensor is named */
    for (k = 0; k < (int)(sizeof drop / sizeof drop[0]); k++) {
        int d;
        e = tm_src_copy(&s);
        d = tm_find(e, n, drop[k]);
        if (!CHECK(d >= 0)) continue;
        memmove(e + d, e + d + 1, (size_t)(n - d - 1) * sizeof *e);
        f = tm_build(e, n - 1, s.meta, &size);
        CHECK(tm_expect_fail("missing", f, size, NULL, drop[k]));
    }
    /* an extra tensor is named */
    for (k = 0; k < (int)(sizeof extra / sizeof extra[0]); k++) {
        e = tm_src_copy(&s);
        e[n] = e[tm_find(e, n, "timesformer.layernorm.weight")];
        e[n].name = (char *)extra[k];
        f = tm_build(e, n + 1, s.meta, &size);
        if (!CHECK(tm_expect_fail("extra", f, size, NULL, extra[k][0] ? extra[k] : NULL)))
            printf("    extra \"%s\"\n", extra[k]);
    }
    /* a tensor of another variant: temporal weights in a joint model */
    {
        tsf_model j;
        if (CHECK(tm_load_golden(&j, "joint_base", 1))) {
            int nj;
            tm_ent *ej = tm_entries(&j, "F32", TM_HF, &nj);
            char *mj = tm_meta_from(tm_ref_config_json(&j.cfg));
            ej[nj] = s.e[tm_find(s.e, n, "timesformer.encoder.layer.0.temporal_dense.weight")];
            f = tm_build(ej, nj + 1, mj, &size);
            CHECK(tm_expect_fail("temporal in joint", f, size, NULL, "temporal_dense"));
        }
        tsf_model_free(&j);
    }
    /* duplicates: the same name twice, and one tensor under both of its names */
    e = tm_src_copy(&s);
    e[n] = e[tm_find(e, n, "classifier.bias")];
    f = tm_build(e, n + 1, s.meta, &size);
    CHECK(tm_expect_fail("duplicate", f, size, NULL, "classifier.bias"));
    e = tm_src_copy(&s);
    e[n] = e[tm_find(e, n, "classifier.bias")];
    e[n].name = (char *)"head.bias";
    f = tm_build(e, n + 1, s.meta, &size);
    CHECK(tm_expect_fail("duplicate alias", f, size, NULL, "bias"));
    /* names that are not valid JSON strings, or too long */
    {
        static const char *const names[] = {"classifier.bi\\qas", "classifier.bias\\",
                                            "classifier.bias\\u12G4", "classifier.\001bias",
                                            "classifier.bias\\ud800"};
        char *longname = (char *)tsft_alloc_bytes(2000);
        memset(longname, 'a', 1999);
        for (i = 0; i < (int)(sizeof names / sizeof names[0]) + 1; i++) {
            e = tm_src_copy(&s);
            e[tm_find(e, n, "classifier.bias")].name =
                i < (int)(sizeof names / sizeof names[0]) ? (char *)names[i] : longname;
            f = tm_build(e, n, s.meta, &size);
            if (!CHECK(tm_expect_fail("name", f, size, NULL, NULL))) printf("    name %d\n", i);
        }
    }
done:
    tsf_model_free(&s.g);
}

/* __metadata__: the config and the class names. */
static void test_weights_hostile_metadata(void) {
    tm_src s;
    size_t size;
    unsigned char *f;
    int i;
    if (!CHECK(tm_src_init(&s))) goto done;
    {
        static const struct {
            const char *meta, *want;
        } cases[] = {
            {"{\"format\":\"pt\"}", "config"}, /* no config */
            {"{}", "config"},
            {"5", "config"}, /* not an object */
            {"{\"config\":\"{not json\"}", "config"},
            {"{\"config\":\"[1, 2, 3]\"}", "config"},
            {"{\"config\":\"{\\\"embed_dim\\\": 24, \\\"num_heads\\\": 5, \\\"img_size\\\": 16, "
             "\\\"patch_size\\\": 4}\"}",
             "config"}, /* 24 % 5 */
            {"{\"config\":\"{\\\"embed_dim\\\": \\\"24\\\"}\"}", "config"},
            {"{\"config\":\"{\\\"attention_type\\\": \\\"bogus\\\"}\"}", "attention"},
            {"{\"config\":\"{\\\"embed_dim\\\": 48, \\\"num_heads\\\": 3, \\\"img_size\\\": 16, "
             "\\\"patch_size\\\": 4, \\\"num_frames\\\": 3, \\\"depth\\\": 2, \\\"num_classes\\\": "
             "5, "
             "\\\"mlp_ratio\\\": 2.0}\"}",
             "shape"}, /* valid, but not this file */
        };
        for (i = 0; i < (int)(sizeof cases / sizeof cases[0]); i++) {
            f = tm_build(s.e, s.n, cases[i].meta, &size);
            if (!CHECK(tm_expect_fail("metadata", f, size, NULL, cases[i].want)))
                printf("    metadata %s\n", cases[i].meta);
        }
        f = tm_build(s.e, s.n, NULL, &size);
        CHECK(tm_expect_fail("no metadata", f, size, NULL, "config"));
    }
    /* class names that are not K strings */
    {
        static const char *const labels[] = {
            "\"[\\\"a\\\", \\\"b\\\", \\\"c\\\"]\"",                                  /* 3 of 5 */
            "\"[\\\"a\\\", \\\"b\\\", \\\"c\\\", \\\"d\\\", 5]\"",                    /* a number */
            "\"[\\\"a\\\", \\\"b\\\", \\\"c\\\", \\\"d\\\", \\\"e\\\", \\\"f\\\"]\"", /* 6 of 5 */
            "\"[\\\"a\\\", \\\"b\\\", \\\"c\\\", \\\"d\\\", \\\"e\\\"\"",             /* not JSON */
        };
        for (i = 0; i < (int)(sizeof labels / sizeof labels[0]); i++) {
            char *meta = (char *)tsft_alloc_bytes(strlen(s.meta) + strlen(labels[i]) + 32);
            sprintf(meta, "%.*s,\"labels\":%s}", (int)strlen(s.meta) - 1, s.meta, labels[i]);
            f = tm_build(s.e, s.n, meta, &size);
            if (!CHECK(tm_expect_fail("labels", f, size, NULL, NULL)))
                printf("    labels %s\n", labels[i]);
        }
    }
done:
    tsf_model_free(&s.g);
}

/* Metadata strings that are short or not strings: the loader must not read past them. */
static void test_weights_hostile_metadata_short(void) {
    static const char *const metas[] = {
        "{\"config\":\"{}\"}",
        "{\"config\":\"\"}",
        "{\"config\":\"null\"}",
        "{\"config\":5}",
        "{\"config\":{\"embed_dim\":24}}",
    };
    tm_src s;
    size_t size;
    unsigned char *f;
    int i;
    if (!CHECK(tm_src_init(&s))) goto done;
    for (i = 0; i < (int)(sizeof metas / sizeof metas[0]); i++) {
        f = tm_build(s.e, s.n, metas[i], &size);
        if (!CHECK(tm_expect_fail("metadata", f, size, NULL, NULL)))
            printf("    metadata %s\n", metas[i]);
    }
    { /* short or non-string labels */
        static const char *const labels[] = {"\"x\"", "\"[]\"", "5",
                                             "[\"a\",\"b\",\"c\",\"d\",\"e\"]"};
        for (i = 0; i < (int)(sizeof labels / sizeof labels[0]); i++) {
            char *meta = (char *)tsft_alloc_bytes(strlen(s.meta) + strlen(labels[i]) + 32);
            sprintf(meta, "%.*s,\"labels\":%s}", (int)strlen(s.meta) - 1, s.meta, labels[i]);
            f = tm_build(s.e, s.n, meta, &size);
            if (!CHECK(tm_expect_fail("labels", f, size, NULL, NULL)))
                printf("    labels %s\n", labels[i]);
        }
    }
done:
    tsf_model_free(&s.g);
}

/* Replace the first occurrence of the byte string pat in f[0..size) by rep (same length). */
static int tm_patch(unsigned char *f, size_t size, const char *pat, const char *rep, size_t len) {
    size_t i;
    for (i = 0; i + len <= size; i++)
        if (memcmp(f + i, pat, len) == 0) {
            memcpy(f + i, rep, len);
            return 1;
        }
    return 0;
}

/* Bytes a strict JSON parser rejects: NUL inside a number or after a backslash, invalid
   literals and numbers. */
static void test_weights_hostile_json_strict(void) {
    static const struct {
        const char *raw, *pat, *rep; /* the entry of classifier.bias; then patch pat to rep */
        size_t len;
    } cases[] = {
        {"{\"dtype\":\"F32\",\"shape\":[5],\"data_offsets\":[0,20@]}", "20@]", "20\0]", 4},
        {"{\"dtype\":\"F32\",\"shape\":[5],\"data_offsets\":[0,20],\"x\":\"a\\@\"}", "\\@", "\\\0",
         2},
        {"{\"dtype\":\"F32\",\"shape\":[5],\"data_offsets\":[0,20],\"x\":tru}", NULL, NULL, 0},
        {"{\"dtype\":\"F32\",\"shape\":[5],\"data_offsets\":[0,20],\"x\":--1}", NULL, NULL, 0},
        {"{\"dtype\":\"F32\",\"shape\":[5],\"data_offsets\":[0,20],\"x\":nan}", NULL, NULL, 0},
    };
    tm_src s;
    tm_ent *e;
    size_t size;
    unsigned char *f;
    int i;
    if (!CHECK(tm_src_init(&s))) goto done;
    for (i = 0; i < (int)(sizeof cases / sizeof cases[0]); i++) {
        e = tm_src_copy(&s);
        e[tm_find(e, s.n, "classifier.bias")].raw = cases[i].raw;
        f = tm_build(e, s.n, s.meta, &size);
        if (cases[i].pat) CHECK(tm_patch(f, size, cases[i].pat, cases[i].rep, cases[i].len));
        if (!CHECK(tm_expect_fail("strict JSON", f, size, NULL, NULL)))
            printf("    case %d: %s\n", i, cases[i].raw);
    }
done:
    tsf_model_free(&s.g);
}

/* Files on disk: missing, empty, a directory, an unwritable save. */
static void test_weights_hostile_files(void) {
    tsf_model m;
    tsf_error err;
    char path[256];
    memset(&err, 0, sizeof err);
    CHECK_EQ_INT(tsf_model_load(&m, "tests/golden/no_such_set/weights.safetensors", 1, &err),
                 TSF_ERR_IO);
    CHECK(strstr(err.msg, "no_such_set") != NULL);
    CHECK(m.param_memory == NULL);
    tm_tmp(path, sizeof path, "empty.safetensors");
    CHECK(tm_write(path, "", 0));
    memset(&err, 0, sizeof err);
    CHECK(tsf_model_load(&m, path, 1, &err) != TSF_OK);
    CHECK(strstr(err.msg, path) != NULL);
    remove(path);
    memset(&err, 0, sizeof err);
    CHECK(tsf_model_load(&m, "tests/golden", 1, &err) != TSF_OK); /* a directory, no config.json */
    CHECK(err.msg[0] != 0);
    CHECK_EQ_INT(tsf_model_load(&m, NULL, 1, &err), TSF_ERR_ARG);
    CHECK(tsf_model_load(&m, "tests/golden/divided_base/weights.safetensors", -1, &err) != TSF_OK);
    CHECK(m.param_memory == NULL);
    if (CHECK(tm_load_golden(&m, "divided_base", 1))) {
        memset(&err, 0, sizeof err);
        CHECK_EQ_INT(tsf_model_save(&m, "/nonexistent_dir_tsf/x.safetensors", &err), TSF_ERR_IO);
        CHECK(strstr(err.msg, "nonexistent_dir_tsf") != NULL);
    }
    tsf_model_free(&m);
}

/* The valid file truncated at 200 lengths, and with one bit flipped at 300 places of the
   header: never a crash or a leak; truncations always fail; flips give OK or an error with
   a message, and a model that loads still runs. */
static void test_weights_fuzz(void) {
    size_t vsize, i, hl;
    unsigned char *v = tm_read("tests/golden/divided_base/weights.safetensors", &vsize);
    tsf_rng r;
    int ok_count = 0, bad_truncations = 0, silent = 0;
    REQUIRE(v != NULL);
    hl = tm_data0(v);
    for (i = 0; i < 200; i++) {
        size_t len = i * vsize / 200;
        unsigned char *copy = (unsigned char *)malloc(len ? len : 1);
        tsf_model m;
        tsf_error err;
        tsf_status st;
        if (!copy) break;
        memcpy(copy, v, len);
        memset(&err, 0, sizeof err);
        st = tsf_model_load_memory(&m, copy, len, NULL, 1, &err);
        if (st == TSF_OK || err.msg[0] == 0) bad_truncations++;
        tsf_model_free(&m);
        free(copy);
    }
    CHECK_EQ_INT(bad_truncations, 0);
    tsf_rng_seed(&r, 2024);
    for (i = 0; i < 300; i++) {
        size_t pos = tsf_rng_u32(&r) % (hl < 2000 ? hl : 2000);
        unsigned char *copy = (unsigned char *)malloc(vsize);
        tsf_model m;
        tsf_error err;
        tsf_status st;
        if (!copy) break;
        memcpy(copy, v, vsize);
        copy[pos] ^= (unsigned char)(1u << (tsf_rng_u32(&r) % 8));
        memset(&err, 0, sizeof err);
        st = tsf_model_load_memory(&m, copy, vsize, NULL, 1, &err);
        CHECK((int)st >= 0 && (int)st < TSF_STATUS_COUNT);
        if (st == TSF_OK) { /* the flip kept the shapes: the model must run */
            float *x = ffill(
                (size_t)m.cfg.channels * m.cfg.frames * m.cfg.image_size * m.cfg.image_size, 0.25f);
            ok_count++;
            CHECK_EQ_INT(
                tsf_model_forward(&m, x, 1, m.cfg.frames, m.cfg.image_size, m.cfg.image_size, NULL),
                TSF_OK);
        } else if (err.msg[0] == 0) {
            if (silent++ < 3)
                printf("    flip at byte %zu: %s without a message\n", pos, tsf_status_string(st));
        }
        tsf_model_free(&m);
        free(copy);
    }
    CHECK_EQ_INT(silent, 0);
    CHECK(ok_count < 300); /* most flips break the header */
}
