/* test_fail.c - the library under failure (reliability, issue 8):
     fail.alloc_*      TSF_MALLOC fails at the k-th call, for every k, through model creation,
                       loading (a model file, a checkpoint, a Hugging Face folder, memory, a
                       config, class names, a manifest, clips), training steps (two batch
                       shapes) and saves. The failing call must return TSF_ERR_ALLOC (never
                       TSF_OK, never another status), leave what it was given releasable, and
                       succeed when called again; the whole scenario then ends with the very
                       results of a run without failures, and nothing leaks (a live-block
                       count here; LeakSanitizer in the ASan build).
     fail.io_*         checkpoint and model writes that fail part-way (RLIMIT_FSIZE at many
                       byte offsets, a device as the target): TSF_ERR_IO with a message, the
   previous file byte-identical and loadable, no temporary file left behind; reads that come up
   short (every fread of a Hugging Face folder's load in turn, a config): an error with a
   message, nothing freed twice, nothing leaked. fail.nonfinite_*
   tsf_check_finite and tsf_model_check_finite; a training run whose input or learning rate turns
   the loss NaN stops, and its last checkpoint loads with the state it had.

   Build:  cc -std=c99 -O1 -g -fsanitize=address,undefined test_fail.c -o test_fail -lm
   Run:    ./test_fail [SUBSTR]      (tests/run_all.sh: suites fail and fail-asan) */
#include "tsf_test.h" /* first: it asks for POSIX */

#include <stddef.h>

/* ---- an allocator that fails on request ---------------------------------------------------- */
/* Test-only state: the library itself has none. */
static struct {
    long calls;   /* TSF_MALLOC calls so far                                */
    long fail_at; /* the call that returns NULL (1-based); <= 0: none       */
    long live;    /* blocks handed out and not yet freed                    */
    int failed;   /* the failure was injected                               */
} fa;

static void *fa_malloc(size_t n) {
    void *p;
    if (++fa.calls == fa.fail_at) {
        fa.failed = 1;
        return NULL;
    }
    p = malloc(n ? n : 1);
    if (p) fa.live++;
    return p;
}

static void fa_free(void *p) {
    if (!p) return;
    fa.live--;
    free(p);
}

/* ---- reads that come up short on request ----------------------------------------------------- */
/* The k-th fread call reads one element less than asked, as when a file shrank after its size
   was taken, or a read failed (test-only state, as fa's). */
static struct {
    long calls;    /* fread calls so far                                       */
    long short_at; /* the call that comes up short (1-based); <= 0: none       */
    int cut;       /* the cut was made                                          */
} sr;

static size_t sr_fread(void *p, size_t size, size_t n, FILE *f) {
    if (++sr.calls == sr.short_at && n > 0) {
        sr.cut = 1;
        return fread(p, size, n - 1, f);
    }
    return fread(p, size, n, f);
}
#define fread(p, size, n, f) sr_fread(p, size, n, f)

#define TSF_MALLOC(sz, ctx) ((void)(ctx), fa_malloc(sz))
#define TSF_FREE(p, ctx) ((void)(ctx), fa_free(p))
#define TIMESFORMER_IMPLEMENTATION
#include "../timesformer.h"

#include <errno.h>
#include <float.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- small helpers -----------------------------------------------------------------------------
 */
/* Files go to /dev/shm when there is one: the library syncs every save to the disk, and the
   allocation tests save a few hundred times. */
static void tf_path(char *buf, size_t cap, const char *what) {
    const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(buf, cap, "%s/tsf_fail_%ld_%s", dir, (long)getpid(), what);
}

static int tf_exists(const char *path) {
    struct stat sb;
    return lstat(path, &sb) == 0;
}

/* A whole file (malloc'd, freed by the caller), or NULL. */
static unsigned char *tf_read(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    long len;
    *n = 0;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = (unsigned char *)malloc((size_t)len + 1)) != NULL &&
        fread(buf, 1, (size_t)len, f) == (size_t)len)
        *n = (size_t)len;
    else
        free(buf), buf = NULL;
    fclose(f);
    return buf;
}

static int tf_write(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(data, 1, n, f) == n;
    if (f && fclose(f) != 0) ok = 0;
    return ok;
}

/* 64-bit FNV-1a, to compare the results of two runs. */
static void tf_hash(unsigned long long *h, const void *data, size_t n) {
    const unsigned char *p = (const unsigned char *)data;
    size_t i;
    for (i = 0; i < n; i++) *h = (*h ^ p[i]) * 1099511628211ull;
}

/* Every tensor of a model (not the padding between them), its labels and its config. */
static void tf_hash_model(unsigned long long *h, const tsf_model *m) {
    int nt = tsf_model_num_tensors(m), i, d, ndim, k;
    for (i = 0; i < nt; i++) {
        char name[96];
        long long shape[4];
        float *data;
        size_t n = 1;
        tsf_model_tensor(m, i, name, &ndim, shape, &data);
        for (d = 0; d < ndim; d++) n *= (size_t)shape[d];
        tf_hash(h, name, strlen(name));
        tf_hash(h, data, n * sizeof(float));
    }
    for (k = 0; k < m->cfg.classes; k++)
        tf_hash(h, tsf_model_label(m, k), strlen(tsf_model_label(m, k)) + 1);
    tf_hash(h, &m->cfg.dim, sizeof m->cfg.dim);
    tf_hash(h, &m->cfg.attention, sizeof m->cfg.attention);
}

static tsf_config tf_cfg(int attention) {
    tsf_config c;
    memset(&c, 0, sizeof c);
    c.image_size = 8, c.patch_size = 4, c.frames = 2, c.dim = 8, c.depth = 2, c.heads = 2;
    c.classes = 3, c.mlp_ratio = 2.0f, c.attention = attention;
    return c;
}

/* A batch of B clips (B, 3, T, H, W) and labels from a generator. */
static void tf_batch(tsf_rng *r, float *x, int *labels, int B, int T, int H, int W, int K) {
    size_t i, n = (size_t)B * 3 * T * H * W;
    int b;
    for (i = 0; i < n; i++) x[i] = tsf_rng_normal(r);
    for (b = 0; b < B; b++) labels[b] = (int)(tsf_rng_u32(r) % (unsigned)K);
}

/* ---- allocation failure --------------------------------------------------------------------- */
/* The files the scenario reads, written once with injection off: DIR/hf/config.json +
   DIR/hf/model.safetensors (a Hugging Face folder with id2label), two clips, class names and
   a manifest naming the clips by class name. */
static int fa_setup(const char *dir) {
    static const char *const names[3] = {"left", "right", "still"};
    char p[512], txt[1024];
    tsf_config c = tf_cfg(TSF_ATTN_JOINT);
    tsf_clip_header h;
    unsigned char px[3 * 10 * 12 * 3];
    tsf_model m;
    tsf_error err;
    size_t i;
    int ok = 1;
    snprintf(p, sizeof p, "%s", dir);
    mkdir(p, 0700);
    snprintf(p, sizeof p, "%s/hf", dir);
    mkdir(p, 0700);
    if (tsf_model_init(&m, &c, 0, 3) != TSF_OK) return 0;
    tsf_model_set_labels(&m, names);
    snprintf(p, sizeof p, "%s/hf/model.safetensors", dir);
    ok = tsf_model_save(&m, p, &err) == TSF_OK;
    tsf_model_free(&m);
    snprintf(txt, sizeof txt,
             "{\"model_type\": \"timesformer\", \"image_size\": 8, \"patch_size\": 4, "
             "\"num_frames\": 2, \"hidden_size\": 8, \"num_hidden_layers\": 2, "
             "\"num_attention_heads\": 2, \"intermediate_size\": 16, \"attention_type\": "
             "\"joint_space_time\", \"id2label\": {\"0\": \"left\", \"1\": \"right\", \"2\": "
             "\"st\\u00efll\"}}");
    snprintf(p, sizeof p, "%s/hf/config.json", dir);
    ok = ok && tf_write(p, txt, strlen(txt));
    h.T = 3, h.H = 10, h.W = 12, h.C = 3, h.fps = 30.0f, h.label = 1;
    for (i = 0; i < sizeof px; i++) px[i] = (unsigned char)(i * 7 + 3);
    snprintf(p, sizeof p, "%s/a.clip", dir);
    ok = ok && tsf_clip_save(p, &h, px) == TSF_OK;
    h.T = 2;
    snprintf(p, sizeof p, "%s/b.clip", dir);
    ok = ok && tsf_clip_save(p, &h, px) == TSF_OK;
    snprintf(p, sizeof p, "%s/classes.txt", dir);
    ok = ok && tf_write(p, "left\nright\nstill\n", 17);
    snprintf(p, sizeof p, "%s/train.csv", dir);
    ok = ok && tf_write(p, "path,label\na.clip,right\nb.clip,still\n", 37);
    return ok;
}

static void fa_teardown(const char *dir) {
    static const char *const files[] = {
        "hf/model.safetensors", "hf/config.json", "a.clip",           "b.clip",
        "classes.txt",          "train.csv",      "ckpt.safetensors", "model.safetensors"};
    char p[512];
    size_t i;
    for (i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        unlink(p);
    }
    snprintf(p, sizeof p, "%s/hf", dir);
    rmdir(p);
    rmdir(dir);
}

/* What one scenario run reports. */
typedef struct fa_result {
    unsigned long long hash; /* of everything the scenario computed and loaded */
    int ok;                  /* every step behaved                             */
    char step[64];           /* the step that failed (the injected failure)    */
    char why[256];           /* what went wrong, when !ok                      */
} fa_result;

/* Run CALL. A failure must be the injected one, as TSF_ERR_ALLOC, and the first: then CLEANUP
   releases what CALL was given, injection stops and CALL must succeed. A success after the
   injected failure went unreported means the library swallowed it. */
#define FA_STEP(name, call, cleanup)                                                               \
    do {                                                                                           \
        tsf_status st_ = (call);                                                                   \
        if (st_ != TSF_OK) {                                                                       \
            if (!fa.failed || st_ != TSF_ERR_ALLOC || r->step[0]) {                                \
                snprintf(r->why, sizeof r->why, "%s returned \"%s\" (%s)", name,                   \
                         tsf_status_string(st_),                                                   \
                         fa.failed ? "after the injected failure" : "no failure injected");        \
                goto fail;                                                                         \
            }                                                                                      \
            snprintf(r->step, sizeof r->step, "%s", name);                                         \
            cleanup;                                                                               \
            fa.fail_at = 0;                                                                        \
            if ((st_ = (call)) != TSF_OK) {                                                        \
                snprintf(r->why, sizeof r->why, "%s failed again when retried: %s", name,          \
                         tsf_status_string(st_));                                                  \
                goto fail;                                                                         \
            }                                                                                      \
        } else if (fa.failed && !r->step[0]) {                                                     \
            snprintf(r->why, sizeof r->why, "%s returned TSF_OK after an allocation failed",       \
                     name);                                                                        \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)

/* Everything the library allocates for, from creation to the last load. */
static fa_result fa_scenario(const char *dir, int attention) {
    static const char *const names[3] = {"a", "b \"quoted\"", "c"};
    fa_result res, *r = &res;
    tsf_config cfg = tf_cfg(attention), cfg2;
    tsf_model m, m2, m3, m4, m5;
    tsf_train_state ts, ts3;
    tsf_sgd o = tsf_sgd_default();
    tsf_error err;
    tsf_classes classes;
    tsf_manifest man;
    tsf_clip clip, fclip;
    tsf_sample_opts so;
    tsf_rng rng;
    char ckpt[512], model[512], hf[512], p[512];
    float x[2 * 3 * 3 * 8 * 8], dx[2 * 3 * 3 * 8 * 8], loss, sample[3 * 2 * 6 * 6], logits[3];
    int labels[2], step, label = -1;
    unsigned char *bytes = NULL;
    size_t nbytes = 0;
    unsigned long long h = 14695981039346656037ull;

    memset(r, 0, sizeof *r);
    memset(&m, 0, sizeof m), memset(&m2, 0, sizeof m2), memset(&m3, 0, sizeof m3);
    memset(&m4, 0, sizeof m4), memset(&m5, 0, sizeof m5), memset(&ts, 0, sizeof ts);
    memset(&classes, 0, sizeof classes), memset(&man, 0, sizeof man);
    memset(&clip, 0, sizeof clip), memset(&fclip, 0, sizeof fclip);
    memset(dx, 0, sizeof dx);
    snprintf(ckpt, sizeof ckpt, "%s/ckpt.safetensors", dir);
    snprintf(model, sizeof model, "%s/model.safetensors", dir);
    snprintf(hf, sizeof hf, "%s/hf", dir);
    tsf_rng_seed(&rng, 11);
    tsf_rng_seed(&ts.data_rng, 12);

    /* creation and training, in two batch shapes */
    FA_STEP("tsf_model_init", tsf_model_init(&m, &cfg, 2, 7), tsf_model_free(&m));
    m.drop_path = 0.2f, m.dropout = 0.1f;
    FA_STEP("tsf_model_set_labels", tsf_model_set_labels(&m, names), (void)0);
    FA_STEP("tsf_model_train_init", tsf_model_train_init(&m), (void)0);
    for (step = 0; step < 3; step++) {
        int B = step < 2 ? 2 : 1, T = step < 2 ? 2 : 3; /* the third step grows the buffers */
        tf_batch(&rng, x, labels, B, T, 8, 8, cfg.classes);
        tsf_model_zero_grad(&m);
        FA_STEP("tsf_model_loss", tsf_model_loss(&m, x, labels, B, T, 8, 8, 1, &loss), (void)0);
        tf_hash(&h, &loss, sizeof loss);
        FA_STEP("tsf_model_backward", tsf_model_backward(&m, step == 2 ? dx : NULL), (void)0);
        FA_STEP("tsf_sgd_step", tsf_sgd_step(&m, &o, 0.05f, 1, NULL), (void)0);
        ts.step++;
    }
    tf_hash(&h, dx, sizeof dx);
    tf_hash_model(&h, &m);

    /* saves: a failed save leaves no file behind */
    FA_STEP("tsf_checkpoint_save", tsf_checkpoint_save(&m, &ts, ckpt, &err), (void)0);
    FA_STEP("tsf_model_save", tsf_model_save(&m, model, &err), (void)0);

    /* loads */
    FA_STEP("tsf_model_load (file)", tsf_model_load(&m2, model, 1, &err), tsf_model_free(&m2));
    FA_STEP("tsf_model_forward (loaded)", tsf_model_forward(&m2, x, 1, 2, 8, 8, logits), (void)0);
    tf_hash(&h, logits, sizeof logits);
    tf_hash_model(&h, &m2);
    tsf_model_free(&m2);
    FA_STEP("tsf_checkpoint_load", tsf_checkpoint_load(&m3, &ts3, ckpt, 2, &err),
            tsf_model_free(&m3));
    if (ts3.step != ts.step) {
        snprintf(r->why, sizeof r->why, "checkpoint step %lld, want %lld", ts3.step, ts.step);
        goto fail;
    }
    tf_batch(&rng, x, labels, 2, 2, 8, 8, cfg.classes);
    tsf_model_zero_grad(&m3);
    FA_STEP("tsf_model_loss (resumed)", tsf_model_loss(&m3, x, labels, 2, 2, 8, 8, 1, &loss),
            (void)0);
    FA_STEP("tsf_model_backward (resumed)", tsf_model_backward(&m3, NULL), (void)0);
    FA_STEP("tsf_sgd_step (resumed)", tsf_sgd_step(&m3, &o, 0.05f, 1, NULL), (void)0);
    tf_hash(&h, &loss, sizeof loss);
    tf_hash_model(&h, &m3);
    FA_STEP("tsf_model_check_finite", tsf_model_check_finite(&m3, &err), (void)0);
    tsf_model_free(&m3);
    FA_STEP("tsf_model_load (folder)", tsf_model_load(&m4, hf, 1, &err), tsf_model_free(&m4));
    tf_hash_model(&h, &m4);
    tsf_model_free(&m4);
    bytes = tf_read(model, &nbytes);
    if (!bytes) {
        snprintf(r->why, sizeof r->why, "cannot read the saved model back");
        goto fail;
    }
    FA_STEP("tsf_model_load_memory", tsf_model_load_memory(&m5, bytes, nbytes, NULL, 0, &err),
            tsf_model_free(&m5));
    tf_hash_model(&h, &m5);
    tsf_model_free(&m5);
    memset(&cfg2, 0, sizeof cfg2);
    snprintf(p, sizeof p, "%.400s/hf/config.json", dir);
    FA_STEP("tsf_config_load", tsf_config_load(&cfg2, p, &err), memset(&cfg2, 0, sizeof cfg2));
    tf_hash(&h, &cfg2, sizeof cfg2);

    /* data */
    snprintf(p, sizeof p, "%s/classes.txt", dir);
    FA_STEP("tsf_classes_load", tsf_classes_load(&classes, p, NULL, &err),
            tsf_classes_free(&classes));
    snprintf(p, sizeof p, "%s/train.csv", dir);
    FA_STEP("tsf_manifest_load", tsf_manifest_load(&man, p, &classes, NULL, &err),
            tsf_manifest_free(&man));
    memset(&so, 0, sizeof so);
    so.frames = 2, so.size = 6, so.stride = 1, so.test_crops = 1;
    FA_STEP("tsf_manifest_sample", tsf_manifest_sample(sample, &label, &man, 1, &so, NULL, 0, &err),
            (void)0);
    tf_hash(&h, sample, sizeof sample);
    tf_hash(&h, &label, sizeof label);
    FA_STEP("tsf_clip_load", tsf_clip_load(&clip, man.paths[0], NULL, &err), tsf_clip_close(&clip));
    FA_STEP("tsf_clip_sample (memory)", tsf_clip_sample(sample, &clip, &so, NULL, 0), (void)0);
    tf_hash(&h, sample, sizeof sample);
    FA_STEP("tsf_clip_open", tsf_clip_open(&fclip, man.paths[0], NULL, &err),
            tsf_clip_close(&fclip));
    FA_STEP("tsf_clip_sample (file)", tsf_clip_sample(sample, &fclip, &so, NULL, 0), (void)0);
    tf_hash(&h, sample, sizeof sample);
    r->ok = 1;
fail:
    r->hash = h;
    free(bytes);
    tsf_clip_close(&clip), tsf_clip_close(&fclip);
    tsf_manifest_free(&man), tsf_classes_free(&classes);
    tsf_model_free(&m), tsf_model_free(&m2), tsf_model_free(&m3), tsf_model_free(&m4);
    tsf_model_free(&m5);
    unlink(ckpt), unlink(model);
    return res;
}

/* For every k from 1 to the number of allocations of a run without failures: a run whose
   k-th allocation fails. */
static void fa_every_call(int attention) {
    char dir[256];
    fa_result ref, got;
    long n, k, bad = 0;
    tf_path(dir, sizeof dir, tsf_attention_name(attention));
    memset(&fa, 0, sizeof fa);
    if (!CHECK(fa_setup(dir))) {
        fa_teardown(dir);
        return;
    }
    fa.calls = 0, fa.fail_at = 0, fa.failed = 0, fa.live = 0;
    ref = fa_scenario(dir, attention);
    n = fa.calls;
    if (!CHECK(ref.ok) || !CHECK_EQ_INT(fa.live, 0)) {
        printf("    run without failures: %s\n", ref.why);
        fa_teardown(dir);
        return;
    }
    CHECK(n > 40); /* the scenario reaches every allocating call */
    for (k = 1; k <= n; k++) {
        fa.calls = 0, fa.fail_at = k, fa.failed = 0, fa.live = 0;
        got = fa_scenario(dir, attention);
        if (!got.ok || !fa.failed || got.hash != ref.hash || fa.live != 0) {
            if (bad++ < 6)
                printf("    allocation %ld of %ld (in %s): %s%s%s\n", k, n,
                       got.step[0] ? got.step : "?", got.ok ? "" : got.why,
                       got.ok && got.hash != ref.hash ? "results differ from the run without "
                                                        "failures"
                                                      : "",
                       fa.live ? " (and memory leaked)" : "");
        }
    }
    CHECK_EQ_INT(bad, 0);
    printf("    %s: allocation failure injected at each of calls 1..%ld\n",
           tsf_attention_name(attention), n);
    fa.fail_at = 0;
    fa_teardown(dir);
}

/* A loss whose buffers cannot grow for a new batch shape fails; the backward pass that
   would follow is refused (the gradient of the loss before it no longer matches the
   buffers), and the model still runs the old shape as before. */
static void test_fail_alloc_backward_after_failed_loss(void) {
    int a;
    for (a = 0; a < 3; a++) {
        tsf_config cfg = tf_cfg(a);
        tsf_model m;
        tsf_rng rng;
        float x[2 * 3 * 4 * 8 * 8], loss, before[2 * 3], after[2 * 3];
        int labels[2];
        long k, n;
        memset(&fa, 0, sizeof fa);
        memset(&m, 0, sizeof m);
        tsf_rng_seed(&rng, 31);
        tf_batch(&rng, x, labels, 2, 4, 8, 8, cfg.classes);
        if (!CHECK_EQ_INT(tsf_model_init(&m, &cfg, 1, 1), TSF_OK)) continue;
        if (!CHECK_EQ_INT(tsf_model_train_init(&m), TSF_OK) ||
            !CHECK_EQ_INT(tsf_model_loss(&m, x, labels, 1, 2, 8, 8, 0, &loss), TSF_OK) ||
            !CHECK_EQ_INT(tsf_model_backward(&m, NULL), TSF_OK))
            goto next;
        memcpy(before, m.acts.logits, 3 * sizeof(float));
        fa.calls = 0;
        if (!CHECK_EQ_INT(tsf_model_forward(&m, x, 2, 4, 8, 8, NULL), TSF_OK)) goto next;
        n = fa.calls; /* the allocations of growing to B = 2, T = 4 */
        tsf_model_free(&m);
        for (k = 1; k <= n; k++) {
            if (!CHECK_EQ_INT(tsf_model_init(&m, &cfg, 1, 1), TSF_OK)) break;
            CHECK_EQ_INT(tsf_model_train_init(&m), TSF_OK);
            CHECK_EQ_INT(tsf_model_loss(&m, x, labels, 1, 2, 8, 8, 0, &loss), TSF_OK);
            fa.calls = 0, fa.fail_at = k;
            CHECK_EQ_INT(tsf_model_loss(&m, x, labels, 2, 4, 8, 8, 0, &loss), TSF_ERR_ALLOC);
            fa.fail_at = 0;
            CHECK_EQ_INT(tsf_model_backward(&m, NULL), TSF_ERR_ARG);
            CHECK_EQ_INT(tsf_model_forward(&m, x, 1, 2, 8, 8, after), TSF_OK);
            CHECK(memcmp(before, after, 3 * sizeof(float)) == 0);
            tsf_model_free(&m);
        }
        CHECK(n >= 1);
    next:
        tsf_model_free(&m);
        CHECK_EQ_INT(fa.live, 0);
    }
}

static void test_fail_alloc_divided(void) { fa_every_call(TSF_ATTN_DIVIDED); }
static void test_fail_alloc_joint(void) { fa_every_call(TSF_ATTN_JOINT); }
static void test_fail_alloc_space(void) { fa_every_call(TSF_ATTN_SPACE); }

/* ---- write failure ----------------------------------------------------------------------------
 */
/* One training step, so that each save writes other bytes than the last. */
static int tf_train_step(tsf_model *m, tsf_rng *r, tsf_train_state *ts) {
    float x[2 * 3 * 2 * 8 * 8], loss;
    int labels[2];
    tsf_sgd o = tsf_sgd_default();
    tf_batch(r, x, labels, 2, 2, 8, 8, m->cfg.classes);
    tsf_model_zero_grad(m);
    if (tsf_model_loss(m, x, labels, 2, 2, 8, 8, 1, &loss) != TSF_OK ||
        tsf_model_backward(m, NULL) != TSF_OK || tsf_sgd_step(m, &o, 0.05f, 1, NULL) != TSF_OK)
        return 0;
    ts->step++;
    return 1;
}

/* Save with the process's file size limit at limit bytes (SIGXFSZ ignored: the write fails
   with EFBIG instead of killing the process). Nothing may be printed meanwhile. */
static tsf_status tf_save_limited(const tsf_model *m, const tsf_train_state *ts, const char *path,
                                  rlim_t limit, tsf_error *err) {
    struct rlimit old, lim;
    tsf_status st;
    if (getrlimit(RLIMIT_FSIZE, &old) != 0) return TSF_ERR_ARG;
    lim = old;
    lim.rlim_cur = limit;
    fflush(stdout), fflush(stderr);
    if (setrlimit(RLIMIT_FSIZE, &lim) != 0) return TSF_ERR_ARG;
    st = ts ? tsf_checkpoint_save(m, ts, path, err) : tsf_model_save(m, path, err);
    setrlimit(RLIMIT_FSIZE, &old);
    return st;
}

/* A checkpoint save cut short at byte offsets all through the file fails cleanly; the
   checkpoint before it stays byte-identical and loads with its state. */
static void test_fail_io_short_writes(void) {
    tsf_config cfg = tf_cfg(TSF_ATTN_DIVIDED);
    tsf_model m, r;
    tsf_train_state ts, tr;
    tsf_error err;
    tsf_rng rng;
    char path[256], tmp[300];
    unsigned char *good = NULL, *now;
    size_t ngood = 0, nnow, limit;
    int tries = 0, bad = 0, k;
    void (*old_handler)(int);
    memset(&m, 0, sizeof m), memset(&r, 0, sizeof r), memset(&ts, 0, sizeof ts);
    tf_path(path, sizeof path, "short.safetensors");
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    tsf_rng_seed(&rng, 5);
    old_handler = signal(SIGXFSZ, SIG_IGN);
    if (!CHECK_EQ_INT(tsf_model_init(&m, &cfg, 2, 3), TSF_OK)) goto done;
    if (!CHECK_EQ_INT(tsf_model_train_init(&m), TSF_OK) || !CHECK(tf_train_step(&m, &rng, &ts)))
        goto done;
    if (!CHECK_EQ_INT(tsf_checkpoint_save(&m, &ts, path, &err), TSF_OK)) goto done;
    good = tf_read(path, &ngood);
    if (!CHECK(good != NULL && ngood > 4096) || !CHECK(tf_train_step(&m, &rng, &ts))) goto done;
    /* every 61 bytes from 0 to the end (stdio writes in blocks: this hits each block at many
       offsets), then the edges */
    for (limit = 0; limit < ngood + 8; limit += limit < 16 ? 1 : 61) {
        tsf_status st;
        size_t lim = limit < ngood ? limit : ngood - 1 - (limit - ngood); /* ngood-1 .. -8 */
        memset(&err, 0, sizeof err);
        st = tf_save_limited(&m, &ts, path, (rlim_t)lim, &err);
        tries++;
        now = tf_read(path, &nnow);
        if (st != TSF_ERR_IO || !err.msg[0] || !now || nnow != ngood ||
            memcmp(now, good, ngood) != 0 || tf_exists(tmp)) {
            if (bad++ < 4)
                printf("    limit %zu bytes: %s, \"%s\"; previous file %s; %s\n", lim,
                       tsf_status_string(st), err.msg,
                       now && nnow == ngood && !memcmp(now, good, ngood) ? "intact" : "CHANGED",
                       tf_exists(tmp) ? "temporary file left" : "no temporary file");
        }
        free(now);
    }
    /* a model file cut short: the same */
    for (k = 0; k < 3; k++) {
        size_t lim = k == 0 ? 0 : k == 1 ? 100 : ngood / 3;
        tries++;
        if (tf_save_limited(&m, NULL, path, (rlim_t)lim, &err) != TSF_ERR_IO) bad++;
        now = tf_read(path, &nnow);
        if (!now || nnow != ngood || memcmp(now, good, ngood) != 0 || tf_exists(tmp)) bad++;
        free(now);
    }
    CHECK_EQ_INT(bad, 0);
    printf("    %d saves cut short at 0 .. %zu bytes of a %zu-byte checkpoint\n", tries, ngood - 1,
           ngood);
    /* the survivor loads, with the state of its own step */
    if (CHECK_EQ_INT(tsf_checkpoint_load(&r, &tr, path, 2, &err), TSF_OK)) {
        CHECK_EQ_INT(tr.step, 1);
        CHECK_EQ_INT(r.sgd_steps, 1);
        CHECK_EQ_INT(tsf_model_check_finite(&r, &err), TSF_OK);
    }
    /* and with room again, the new state is written */
    CHECK_EQ_INT(tf_save_limited(&m, &ts, path, (rlim_t)ngood, &err), TSF_OK);
    tsf_model_free(&r);
    if (CHECK_EQ_INT(tsf_checkpoint_load(&r, &tr, path, 2, &err), TSF_OK)) CHECK_EQ_INT(tr.step, 2);
done:
    signal(SIGXFSZ, old_handler);
    free(good);
    unlink(path), unlink(tmp);
    tsf_model_free(&m), tsf_model_free(&r);
}

/* A device instead of a file: a save aimed at /dev/full, or through a link to it planted at
   the temporary file's name, never writes the device. The save to /dev/full is refused
   (TSF_ERR_IO, the checkpoint untouched); the planted link is removed, not followed, and
   the save goes to a new regular file. (ENOSPC itself, a full disk, is the write failure of
   test_fail_io_file_size's cut-short writes: the same code path.) */
static void test_fail_io_full_device(void) {
    tsf_config cfg = tf_cfg(TSF_ATTN_SPACE);
    tsf_model m, r;
    tsf_train_state ts, tr;
    tsf_error err;
    tsf_rng rng;
    struct stat sb;
    char path[256], tmp[300];
    unsigned char *good = NULL, *now = NULL;
    size_t ngood = 0, nnow = 0;
    memset(&m, 0, sizeof m), memset(&r, 0, sizeof r), memset(&ts, 0, sizeof ts);
    tf_path(path, sizeof path, "full.safetensors");
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    tsf_rng_seed(&rng, 6);
    REQUIRE(tf_exists("/dev/full"));
    if (!CHECK_EQ_INT(tsf_model_init(&m, &cfg, 2, 3), TSF_OK)) return;
    if (!CHECK_EQ_INT(tsf_model_train_init(&m), TSF_OK) ||
        !CHECK_EQ_INT(tsf_checkpoint_save(&m, &ts, path, &err), TSF_OK) ||
        !CHECK((good = tf_read(path, &ngood)) != NULL) || !CHECK(tf_train_step(&m, &rng, &ts)))
        goto done;
    memset(&err, 0, sizeof err);
    CHECK_EQ_INT(tsf_checkpoint_save(&m, &ts, "/dev/full", &err), TSF_ERR_IO);
    CHECK(strstr(err.msg, "not a regular file") != NULL);
    CHECK(stat("/dev/full", &sb) == 0 && S_ISCHR(sb.st_mode));
    now = tf_read(path, &nnow);
    CHECK(now && nnow == ngood && memcmp(now, good, ngood) == 0);
    if (!CHECK(symlink("/dev/full", tmp) == 0)) goto done;
    CHECK_EQ_INT(tsf_checkpoint_save(&m, &ts, path, &err), TSF_OK);
    CHECK(!tf_exists(tmp)); /* the link is gone, the save made a new file */
    CHECK(stat("/dev/full", &sb) == 0 && S_ISCHR(sb.st_mode));
    if (CHECK_EQ_INT(tsf_checkpoint_load(&r, &tr, path, 2, &err), TSF_OK)) CHECK_EQ_INT(tr.step, 1);
done:
    free(good), free(now);
    unlink(path), unlink(tmp);
    tsf_model_free(&m), tsf_model_free(&r);
}

/* Reads cut short: a Hugging Face folder (config.json, preprocessor_config.json, the weights)
   loaded with the k-th fread short, for every k, fails with a message, or loads the very model
   of a whole read (a probe of the format's first bytes may come up short); either way it frees
   what it took, each block once, and leaves the model releasable. A config.json read short by
   tsf_config_load too. (A sysfs file is one in the wild: its size says 4096, its read less.) */
static void test_fail_io_short_reads(void) {
    static const char pre[] = "{\"size\": {\"shortest_edge\": 10}, \"crop_size\": 8}";
    char dir[256], p[512];
    tsf_model m;
    tsf_config cfg;
    tsf_error err;
    tsf_status st;
    unsigned long long want = 14695981039346656037ull, got;
    long k, live;
    int bad = 0;
    tf_path(dir, sizeof dir, "short_reads");
    memset(&m, 0, sizeof m);
    fa.fail_at = 0, sr.short_at = 0;
    if (!CHECK(fa_setup(dir))) goto done;
    snprintf(p, sizeof p, "%s/hf/preprocessor_config.json", dir);
    if (!CHECK(tf_write(p, pre, strlen(pre)))) goto done;
    snprintf(p, sizeof p, "%s/hf", dir);
    live = fa.live;
    if (!CHECK_EQ_INT(tsf_model_load(&m, p, 1, &err), TSF_OK)) goto done;
    CHECK(m.cfg.short_side == 10 && m.cfg.crop_size == 8);
    tf_hash_model(&want, &m);
    tsf_model_free(&m);
    for (k = 1; k < 1000; k++) {
        sr.calls = 0, sr.short_at = k, sr.cut = 0;
        memset(&err, 0, sizeof err);
        st = tsf_model_load(&m, p, 1, &err);
        sr.short_at = 0;
        if (!sr.cut) break; /* k is past the last read */
        got = 14695981039346656037ull;
        if (st == TSF_OK) tf_hash_model(&got, &m);
        if (st == TSF_OK ? got != want : !err.msg[0]) {
            if (bad++ < 4)
                printf("    read %ld cut short: %s, \"%s\"%s\n", k, tsf_status_string(st), err.msg,
                       st == TSF_OK ? " (another model)" : "");
        }
        tsf_model_free(&m);
        if (fa.live != live && bad++ < 4) printf("    read %ld cut short: memory leaked\n", k);
    }
    tsf_model_free(&m);
    CHECK_EQ_INT(bad, 0);
    CHECK(k > 3); /* config.json, preprocessor_config.json, the weights */
    CHECK_EQ_INT(fa.live, live);
    printf("    %ld loads, each with one read cut short\n", k - 1);
    /* tsf_config_load */
    snprintf(p, sizeof p, "%s/hf/config.json", dir);
    sr.calls = 0, sr.short_at = 1, sr.cut = 0;
    memset(&cfg, 0, sizeof cfg), memset(&err, 0, sizeof err);
    CHECK_EQ_INT(tsf_config_load(&cfg, p, &err), TSF_ERR_IO);
    sr.short_at = 0;
    CHECK(sr.cut);
    CHECK(strstr(err.msg, "config.json: cannot read") != NULL);
    CHECK_EQ_INT(fa.live, live);
done:
    sr.short_at = 0;
    snprintf(p, sizeof p, "%s/hf/preprocessor_config.json", dir);
    unlink(p);
    fa_teardown(dir);
}

/* ---- NaN and infinity ---------------------------------------------------------------------------
 */
static void test_fail_nonfinite_check(void) {
    float x[64];
    size_t i, where = 12345;
    volatile float zero = 0.0f;
    for (i = 0; i < 64; i++) x[i] = (float)i - 31.5f;
    x[0] = FLT_MAX, x[1] = -FLT_MAX, x[2] = FLT_MIN / 8.0f, x[3] = -0.0f; /* all finite */
    CHECK_EQ_INT(tsf_check_finite(x, 64, &where), TSF_OK);
    CHECK_EQ_INT(where, 12345);
    CHECK_EQ_INT(tsf_check_finite(x, 0, NULL), TSF_OK);
    CHECK_EQ_INT(tsf_check_finite(NULL, 0, NULL), TSF_OK);
    CHECK_EQ_INT(tsf_check_finite(NULL, 3, NULL), TSF_ERR_ARG);
    x[40] = zero / zero; /* NaN */
    x[50] = 1.0f / zero; /* +Inf */
    CHECK_EQ_INT(tsf_check_finite(x, 64, &where), TSF_ERR_NONFINITE);
    CHECK_EQ_INT(where, 40);
    CHECK_EQ_INT(tsf_check_finite(x, 40, &where), TSF_OK);
    CHECK_EQ_INT(tsf_check_finite(x + 41, 23, &where), TSF_ERR_NONFINITE);
    CHECK_EQ_INT(where, 9);
    x[50] = -1.0f / zero;
    CHECK_EQ_INT(tsf_check_finite(x + 41, 23, NULL), TSF_ERR_NONFINITE);
}

static void test_fail_nonfinite_model(void) {
    tsf_config cfg = tf_cfg(TSF_ATTN_DIVIDED);
    tsf_model m;
    tsf_error err;
    size_t last;
    float keep;
    memset(&m, 0, sizeof m);
    CHECK_EQ_INT(tsf_model_check_finite(&m, &err), TSF_ERR_ARG); /* no model */
    if (!CHECK_EQ_INT(tsf_model_init(&m, &cfg, 1, 1), TSF_OK)) return;
    memset(&err, 0, sizeof err);
    CHECK_EQ_INT(tsf_model_check_finite(&m, &err), TSF_OK);
    CHECK_EQ_INT(err.msg[0], 0);
    CHECK_EQ_INT(tsf_model_check_finite(&m, NULL), TSF_OK);
    /* a NaN in the last element of block 1's qkv weight is named with its index */
    last = (size_t)2 * 3 * 8 * 8 - 1;
    keep = m.params.qkv_w[last];
    m.params.qkv_w[last] = NAN;
    CHECK_EQ_INT(tsf_model_check_finite(&m, &err), TSF_ERR_NONFINITE);
    CHECK(strcmp(err.msg,
                 "NaN in timesformer.encoder.layer.1.attention.attention.qkv.weight[191]") == 0);
    CHECK_EQ_INT(tsf_model_check_finite(&m, NULL), TSF_ERR_NONFINITE);
    m.params.qkv_w[last] = keep;
    /* an infinity in the SGD momentum, once training is set up */
    if (CHECK_EQ_INT(tsf_model_train_init(&m), TSF_OK)) {
        CHECK_EQ_INT(tsf_model_check_finite(&m, &err), TSF_OK);
        m.momentum_memory[m.params.head_b + 2 - m.param_memory] = -INFINITY;
        CHECK_EQ_INT(tsf_model_check_finite(&m, &err), TSF_ERR_NONFINITE);
        CHECK(strcmp(err.msg, "infinity in optimizer.momentum.classifier.bias[2]") == 0);
        m.momentum_memory[m.params.head_b + 2 - m.param_memory] = 0.0f;
        m.params.time_embed[3] = INFINITY;
        CHECK_EQ_INT(tsf_model_check_finite(&m, &err), TSF_ERR_NONFINITE);
        CHECK(strcmp(err.msg, "infinity in timesformer.embeddings.time_embeddings[3]") == 0);
    }
    tsf_model_free(&m);
}

/* A training run as tsf train runs one: a checkpoint after every step; the run stops at the
   first non-finite loss or gradient. Cause 0: a NaN in an input clip (which tsf_check_finite
   also sees); cause 1: a learning rate that blows the weights up. The last checkpoint holds
   the last good state: it loads, its weights are finite and equal the run's before the bad
   step, and the weights in memory were not touched by it. */
static void tf_nan_run(int cause) {
    tsf_config cfg = tf_cfg(cause ? TSF_ATTN_JOINT : TSF_ATTN_SPACE);
    tsf_model m, r;
    tsf_train_state ts, tr;
    tsf_sgd o = tsf_sgd_default();
    tsf_error err;
    tsf_rng rng;
    char path[256];
    float x[2 * 3 * 2 * 8 * 8], loss = 0.0f, *before = NULL;
    int labels[2], step, stopped = -1;
    tsf_status st = TSF_OK;
    size_t where = 0;
    memset(&m, 0, sizeof m), memset(&r, 0, sizeof r), memset(&ts, 0, sizeof ts);
    tf_path(path, sizeof path, cause ? "nan_lr.safetensors" : "nan_input.safetensors");
    tsf_rng_seed(&rng, 21);
    if (!CHECK_EQ_INT(tsf_model_init(&m, &cfg, 2, 9), TSF_OK)) return;
    if (!CHECK_EQ_INT(tsf_model_train_init(&m), TSF_OK)) goto done;
    before = tsft_alloc(m.param_floats);
    for (step = 0; step < 60 && stopped < 0; step++) {
        float lr = cause && step >= 3 ? 1e30f : 0.05f;
        tf_batch(&rng, x, labels, 2, 2, 8, 8, cfg.classes);
        if (!cause && step == 4) {
            x[77] = NAN;
            CHECK_EQ_INT(tsf_check_finite(x, sizeof x / sizeof x[0], &where), TSF_ERR_NONFINITE);
            CHECK_EQ_INT(where, 77);
        }
        memcpy(before, m.param_memory, m.param_floats * sizeof(float));
        tsf_model_zero_grad(&m);
        st = tsf_model_loss(&m, x, labels, 2, 2, 8, 8, 1, &loss);
        if (st == TSF_OK) st = tsf_model_backward(&m, NULL);
        if (st == TSF_OK) st = tsf_sgd_step(&m, &o, lr, 1, NULL);
        if (st != TSF_OK) {
            stopped = step;
            break;
        }
        ts.step++;
        if (!CHECK_EQ_INT(tsf_checkpoint_save(&m, &ts, path, &err), TSF_OK)) goto done;
    }
    CHECK_EQ_INT(st, TSF_ERR_NONFINITE);
    if (!cause) CHECK_EQ_INT(stopped, 4);
    if (!CHECK(stopped > 0)) goto done;
    CHECK(memcmp(before, m.param_memory, m.param_floats * sizeof(float)) == 0);
    if (CHECK_EQ_INT(tsf_checkpoint_load(&r, &tr, path, 2, &err), TSF_OK)) {
        CHECK_EQ_INT(tr.step, stopped);
        CHECK_EQ_INT(tsf_model_check_finite(&r, &err), TSF_OK);
        CHECK(memcmp(r.param_memory, before, m.param_floats * sizeof(float)) == 0);
    }
    if (cause) printf("    lr 1e30 from step 4: stopped at step %d\n", stopped + 1);
done:
    unlink(path);
    tsf_model_free(&m), tsf_model_free(&r);
}

static void test_fail_nonfinite_run_input(void) { tf_nan_run(0); }
static void test_fail_nonfinite_run_lr(void) { tf_nan_run(1); }

static const tsft_case tests[] = {
    {"fail.alloc_backward_after_failed_loss", test_fail_alloc_backward_after_failed_loss},
    {"fail.alloc_divided", test_fail_alloc_divided},
    {"fail.alloc_joint", test_fail_alloc_joint},
    {"fail.alloc_space", test_fail_alloc_space},
    {"fail.io_short_writes", test_fail_io_short_writes},
    {"fail.io_full_device", test_fail_io_full_device},
    {"fail.io_short_reads", test_fail_io_short_reads},
    {"fail.nonfinite_check", test_fail_nonfinite_check},
    {"fail.nonfinite_model", test_fail_nonfinite_model},
    {"fail.nonfinite_run_input", test_fail_nonfinite_run_input},
    {"fail.nonfinite_run_lr", test_fail_nonfinite_run_lr},
};

int main(int argc, char **argv) { return tsft_main(tests, TSFT_COUNT(tests), argc, argv); }
