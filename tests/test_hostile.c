/* test_hostile.c - files and configs that lie, and where the library must say so instead of
   computing something: weights with NaN, safetensors whose tensors do not cover the data
   exactly, explicit zeros and out-of-range values in configs and checkpoints, labels that
   skip or repeat a class, FIFOs and devices where a file is expected, paths too long for an
   error message. Included by test_main.c after test_model.c (it uses its helpers). */

#include <sys/stat.h> /* mkfifo */

/* A model's file with NaN or infinity in a weight is refused, naming the tensor and index. */
static void test_hostile_nonfinite_weights(void) {
    tsf_model g, m;
    tsf_error err;
    char path[256];
    size_t size;
    unsigned char *data;
    memset(&g, 0, sizeof g), memset(&err, 0, sizeof err);
    REQUIRE(tm_load_golden(&g, "divided_base", 1));
    tm_tmp(path, sizeof path, "nan.safetensors");
    g.params.head_b[2] = NAN;
    REQUIRE(tsf_model_save(&g, path, &err) == TSF_OK);
    CHECK_EQ_INT(tsf_model_load(&m, path, 1, &err), TSF_ERR_NONFINITE);
    if (!CHECK(strstr(err.msg, path) && strstr(err.msg, "NaN in classifier.bias[2]")))
        printf("    %s\n", err.msg);
    CHECK(m.param_memory == NULL);
    g.params.head_b[2] = 0.0f, g.params.time_embed[5] = -INFINITY;
    REQUIRE(tsf_model_save(&g, path, &err) == TSF_OK);
    data = tm_read(path, &size);
    REQUIRE(data != NULL);
    CHECK(tm_expect_fail("infinity", data, size, NULL,
                         "infinity in timesformer.embeddings.time_embeddings[5]"));
    remove(path);
    tsf_model_free(&g);
}

/* Safetensors: the tensors must cover the data exactly. A header length one byte short (the
   JSON still ends in padding), data after the last tensor, a file followed by itself, a gap. */
static void test_hostile_coverage(void) {
    size_t size = 0, i;
    unsigned char *data = tm_read("tests/golden/divided_base/weights.safetensors", &size), *b;
    unsigned long long n = 0;
    REQUIRE(data != NULL && size > 16);
    for (i = 0; i < 8; i++) n |= (unsigned long long)data[i] << (8 * i);
    REQUIRE(data[8 + n - 1] == ' '); /* padded: the case the sweep found */
    b = (unsigned char *)tsft_alloc_bytes(2 * size);
    memcpy(b, data, size);
    b[0] = (unsigned char)(data[0] - 1); /* one byte short: every tensor read one byte off */
    CHECK(tm_expect_fail("header one byte short", b, size, NULL, "no tensor covers"));
    memcpy(b, data, size), memcpy(b + size, data, size); /* followed by itself */
    CHECK(tm_expect_fail("file twice", b, 2 * size, NULL, "no tensor covers at the end"));
    memcpy(b, data, size), b[size] = 0;
    CHECK(tm_expect_fail("one byte more", b, size + 1, NULL, "no tensor covers at the end"));
}

/* Config values that used to mean "the default" or were read leniently are refused. */
static void test_hostile_config_values(void) {
    static const char *const bad[][2] = {
        {"{\"num_attention_heads\": 0}", "num_attention_heads"},
        {"{\"hidden_size\": 0}", "hidden_size"},
        {"{\"image_size\": -0}", "image_size"},
        {"{\"mlp_ratio\": -0.0}", "mlp_ratio"},
        {"{\"layer_norm_eps\": 0}", "layer_norm_eps"},
        {"{\"attention_type\": \"divided_space_time\\u0000x\"}", "attention_type"},
        {"{\"channel_order\": \"bgr\"}", "channel_order"},
        {"{\"std\": [0.2, 0, 0.2]}", "std"},
        {"{\"mean\": [0.4, 0.4]}", "mean"},
        {"{\"qkv_bias\": 1}", "qkv_bias"},
    };
    tsf_config c;
    tsf_error err;
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&c, 0, sizeof c), memset(&err, 0, sizeof err);
        CHECK(tsf_config_from_json(&c, bad[i][0], strlen(bad[i][0]), &err) != TSF_OK);
        if (!CHECK(strstr(err.msg, bad[i][1]) != NULL))
            printf("    %s: \"%s\"\n", bad[i][0], err.msg);
    }
}

/* A checkpoint whose training state is out of range (a dropout of 2) is refused. */
static void test_hostile_checkpoint_state(void) {
    tsf_model g, m;
    tsf_train_state ts;
    tsf_error err;
    char path[256];
    memset(&g, 0, sizeof g), memset(&ts, 0, sizeof ts), memset(&err, 0, sizeof err);
    REQUIRE(tm_load_golden(&g, "divided_base", 1));
    REQUIRE(tsf_model_train_init(&g) == TSF_OK);
    tm_tmp(path, sizeof path, "state.ckpt");
    g.dropout = 2.0f;
    REQUIRE(tsf_checkpoint_save(&g, &ts, path, &err) == TSF_OK);
    CHECK_EQ_INT(tsf_checkpoint_load(&m, &ts, path, 1, &err), TSF_ERR_FORMAT);
    CHECK(strstr(err.msg, "dropout") != NULL);
    CHECK(m.param_memory == NULL);
    g.dropout = 0.1f;
    REQUIRE(tsf_checkpoint_save(&g, &ts, path, &err) == TSF_OK);
    if (CHECK_EQ_INT(tsf_checkpoint_load(&m, &ts, path, 1, &err), TSF_OK)) tsf_model_free(&m);
    remove(path);
    tsf_model_free(&g);
}

/* Class names: an id2label in any key order lands in class order, with O(1) lookups; keys
   that skip, repeat or misspell a class are refused. 100,000 classes. */
static void test_hostile_labels(void) {
    enum { K = 100000 };
    static const char *const bad[] = {
        "{\"0\": \"a\", \"0\": \"b\", \"2\": \"c\"}", "{\"0\": \"a\", \"01\": \"b\", \"2\": \"c\"}",
        "{\"0\": \"a\", \"1\": \"b\", \"3\": \"c\"}", "{\"0\": \"a\", \"1\": 7, \"2\": \"c\"}",
        "{\"0\": \"a\", \"1\": \"b\\u0000c\", \"2\": \"c\"}"};
    tsf__json j;
    tsf_error err;
    tsf_model m;
    tsf_config c;
    char *text = (char *)tsft_alloc_bytes((size_t)K * 32 + 16), *names = NULL;
    size_t n = 0, i;
    int k, ok = 1;
    memset(&err, 0, sizeof err);
    n += (size_t)sprintf(text + n, "{");
    for (k = K - 1; k >= 0; k--) /* the keys in reverse */
        n += (size_t)sprintf(text + n, "%s\"%d\": \"class %d\"", k < K - 1 ? ", " : "", k, k);
    n += (size_t)sprintf(text + n, "}");
    REQUIRE(tsf__json_parse(&j, text, n, NULL) == TSF_OK);
    if (CHECK_EQ_INT(tsf__labels_from_json(&j, 0, K, &names, NULL, &err), TSF_OK)) {
        memset(&c, 0, sizeof c);
        c.classes = K, c.dim = 8, c.heads = 2, c.depth = 1, c.image_size = 8, c.patch_size = 4;
        c.frames = 1;
        if (CHECK(tsf_model_init(&m, &c, 0, 1) == TSF_OK)) {
            CHECK(tsf__labels_own(&m, names) == TSF_OK);
            for (k = 0; k < K; k++) {
                char want[32];
                sprintf(want, "class %d", k);
                ok &= strcmp(tsf_model_label(&m, k), want) == 0;
            }
            CHECK(ok);
            tsf_model_free(&m);
        } else {
            free(names);
        }
    }
    free(j.tok);
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        REQUIRE(tsf__json_parse(&j, bad[i], strlen(bad[i]), NULL) == TSF_OK);
        names = NULL;
        CHECK_EQ_INT(tsf__labels_from_json(&j, 0, 3, &names, NULL, &err), TSF_ERR_FORMAT);
        CHECK(names == NULL && strstr(err.msg, "labels: ") != NULL);
        free(j.tok);
    }
}

/* Where a file is expected: a FIFO (which would block) and a device are refused at once; a
   path too long for the message keeps the reason. */
static void test_hostile_not_files(void) {
    char dir[256], fifo[300], longp[1200];
    tsf_model m;
    tsf_error err;
    tsf_weights w;
    size_t i;
    memset(&err, 0, sizeof err);
    tm_tmp(dir, sizeof dir, "fifo");
    mkdir(dir, 0700);
    snprintf(fifo, sizeof fifo, "%s/model.safetensors", dir);
    remove(fifo);
    REQUIRE(mkfifo(fifo, 0600) == 0);
    CHECK_EQ_INT(tsf_model_load(&m, fifo, 1, &err), TSF_ERR_IO);
    CHECK(strstr(err.msg, "not a regular file") != NULL);
    CHECK_EQ_INT(tsf_weights_open(&w, fifo, NULL, &err), TSF_ERR_IO);
    CHECK_EQ_INT(tsf_model_load(&m, "/dev/zero", 1, &err), TSF_ERR_IO);
    CHECK(strstr(err.msg, "/dev/zero: not a regular file") != NULL);
    remove(fifo);
    rmdir(dir);
    for (i = 0; i < 1100; i++) longp[i] = i % 50 ? 'a' + (char)(i % 26) : '/';
    longp[1100] = 0;
    CHECK_EQ_INT(tsf_model_load(&m, longp, 1, &err), TSF_ERR_IO);
    CHECK(strstr(err.msg, "No such file or directory") != NULL && strstr(err.msg, "...") != NULL);
}

/* A save never replaces what is not a regular file: a FIFO or a folder at the path stays. */
static void test_hostile_save_target(void) {
    char dir[256], fifo[300];
    tsf_model g;
    tsf_error err;
    struct stat sb;
    memset(&g, 0, sizeof g), memset(&err, 0, sizeof err);
    REQUIRE(tm_load_golden(&g, "divided_base", 1));
    tm_tmp(dir, sizeof dir, "savefifo");
    mkdir(dir, 0700);
    snprintf(fifo, sizeof fifo, "%s/model.safetensors", dir);
    remove(fifo);
    REQUIRE(mkfifo(fifo, 0600) == 0);
    CHECK_EQ_INT(tsf_model_save(&g, fifo, &err), TSF_ERR_IO);
    CHECK(strstr(err.msg, "not a regular file") != NULL);
    CHECK(stat(fifo, &sb) == 0 && S_ISFIFO(sb.st_mode));
    CHECK_EQ_INT(tsf_model_save(&g, dir, &err), TSF_ERR_IO); /* a folder */
    CHECK(stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode));
    remove(fifo);
    rmdir(dir);
    tsf_model_free(&g);
}

/* The clip and dataset readers refuse a FIFO at once, and a clip is never written into one. */
static void test_hostile_clip_fifo(void) {
    char dir[256], fifo[300];
    tsf_clip clip;
    tsf_classes c;
    tsf_manifest man;
    tsf_clip_header h;
    tsf_error err;
    unsigned char px[2 * 2 * 3];
    memset(&err, 0, sizeof err), memset(&h, 0, sizeof h), memset(px, 7, sizeof px);
    tm_tmp(dir, sizeof dir, "clipfifo");
    mkdir(dir, 0700);
    snprintf(fifo, sizeof fifo, "%s/x.clip", dir);
    remove(fifo);
    REQUIRE(mkfifo(fifo, 0600) == 0);
    CHECK_EQ_INT(tsf_clip_open(&clip, fifo, NULL, &err), TSF_ERR_IO);
    CHECK(strstr(err.msg, "not a regular file") != NULL);
    CHECK_EQ_INT(tsf_clip_load(&clip, fifo, NULL, &err), TSF_ERR_IO);
    CHECK_EQ_INT(tsf_classes_load(&c, fifo, NULL, &err), TSF_ERR_IO);
    CHECK(strstr(err.msg, "not a regular file") != NULL);
    CHECK_EQ_INT(tsf_manifest_load(&man, fifo, NULL, NULL, &err), TSF_ERR_IO);
    h.T = 1, h.H = 2, h.W = 2, h.C = 3, h.label = -1;
    CHECK_EQ_INT(tsf_clip_save(fifo, &h, px), TSF_ERR_IO);
    remove(fifo);
    rmdir(dir);
}

/* The MLP width is exact from a ratio for every width and hidden size, also those where
   HM / D rounded to float falls an ulp short (D 448, HM 31): configs and checkpoints whose
   shapes say HM load. */
static void test_hostile_mlp_ratio(void) {
    int D, HM, bad = 0;
    for (D = 1; D <= 2048; D++)
        for (HM = 1; HM <= 4 * D && HM <= 8192; HM += 1 + HM / 97) {
            tsf_config c;
            memset(&c, 0, sizeof c);
            c.dim = D, c.mlp_ratio = tsf__mlp_ratio(D, HM);
            bad += tsf__hidden(&c) != HM;
        }
    CHECK_EQ_INT(bad, 0);
}
