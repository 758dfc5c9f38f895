/* test_torch.c - PyTorch checkpoints (torch.save zip archives) and Hugging Face folders, read
   without Python. Included by test_main.c after test_model.c (it uses its helpers).

   The files come from tests/pytorch/make_fixtures.py (torch.save of the golden divided_base
   weights in every layout a user meets: Hugging Face's pytorch_model.bin, the original
   code's .pyth, a state dict with strided and shared storages, F16/BF16/F64, a sharded
   folder, the legacy format and two pickles that would run a command under Python). The
   tests compare what the library reads with the golden safetensors file bit for bit. */

#define TT_PT "tests/pytorch/"

/* The golden config (tests/golden/divided_base/meta.json). */
static tsf_config tt_golden_config(void) {
    tsf_config c;
    memset(&c, 0, sizeof c);
    c.image_size = 16, c.patch_size = 4, c.channels = 3, c.frames = 3, c.dim = 24, c.depth = 2;
    c.heads = 3, c.mlp_ratio = 2.0f, c.classes = 5, c.attention = TSF_ATTN_DIVIDED;
    return c;
}

/* Load a file from memory with the golden config; 1 on success (prints the error). */
static int tt_load_memory(tsf_model *m, const char *path) {
    size_t size = 0;
    unsigned char *data = tm_read(path, &size);
    tsf_config c = tt_golden_config();
    tsf_error err;
    tsf_status st;
    memset(m, 0, sizeof *m), memset(&err, 0, sizeof err);
    if (!data) return 0;
    st = tsf_model_load_memory(m, data, size, &c, 1, &err);
    if (st != TSF_OK) printf("    %s: %s (%s)\n", path, tsf_status_string(st), err.msg);
    return st == TSF_OK;
}

/* Logits of one clip of the config's shape, bit-identical for two models of one config. */
static int tt_same_logits(tsf_model *a, tsf_model *b) {
    const tsf_config *c = &a->cfg;
    size_t nx = (size_t)c->channels * c->frames * c->image_size * c->image_size;
    float *la = tsft_alloc((size_t)c->classes), *lb = tsft_alloc((size_t)c->classes), *x;
    tsf_rng r;
    tsf_rng_seed(&r, 5);
    x = rnd_normal(&r, nx, 1.0f);
    if (tsf_model_forward(a, x, 1, c->frames, c->image_size, c->image_size, la) != TSF_OK ||
        tsf_model_forward(b, x, 1, c->frames, c->image_size, c->image_size, lb) != TSF_OK)
        return 0;
    return same_bits(la, lb, (size_t)c->classes) && tm_all_finite(la, (size_t)c->classes);
}

/* Hugging Face's folder: config.json, preprocessor_config.json, pytorch_model.bin only. */
static void test_torch_hf_folder(void) {
    static const char *const labels[TM_K] = {"abseiling", "caf\xC3\xA9", "na\xC3\xAFve dancing",
                                             "surfing \xF0\x9F\x8F\x84", "tying knots"};
    tsf_model g, m;
    tsf_error err;
    int k;
    memset(&g, 0, sizeof g), memset(&m, 0, sizeof m), memset(&err, 0, sizeof err);
    REQUIRE(tm_load_golden(&g, "divided_base", 1));
    if (!CHECK_EQ_INT(tsf_model_load(&m, TT_PT "hf_bin", 1, &err), TSF_OK)) {
        printf("    %s\n", err.msg);
        goto done;
    }
    CHECK(tm_same_config(&g.cfg, &m.cfg));
    CHECK(tm_same_params(&g, &m));
    CHECK(tt_same_logits(&g, &m));
    for (k = 0; k < TM_K; k++)
        if (!CHECK(strcmp(tsf_model_label(&m, k), labels[k]) == 0))
            printf("    label %d: \"%s\"\n", k, tsf_model_label(&m, k));
    /* preprocessor_config.json: short side 16, centre crop 16, mean 0.45, std 0.225 */
    CHECK_EQ_INT(m.cfg.short_side, 16);
    CHECK_EQ_INT(m.cfg.crop_size, 16);
    CHECK(m.cfg.mean[1] == 0.45f && m.cfg.std[2] == 0.225f);
done:
    tsf_model_free(&g);
    tsf_model_free(&m);
}

/* The original code's checkpoint: {"epoch", "model_state" with "model." names, the SGD
   state, a YAML string, an object of an unknown class}; and a state dict under
   "state_dict" with "module." names whose tensors are strided views and share storages. */
static void test_torch_layouts(void) {
    static const char *const files[] = {TT_PT "orig.pyth", TT_PT "tricky.pth",
                                        TT_PT "hf_bin/pytorch_model.bin",
                                        TT_PT "hf_f64/pytorch_model.bin"};
    tsf_model g, m;
    size_t i;
    memset(&g, 0, sizeof g);
    REQUIRE(tm_load_golden(&g, "divided_base", 1));
    for (i = 0; i < sizeof files / sizeof files[0]; i++) {
        if (!CHECK(tt_load_memory(&m, files[i]))) continue;
        if (!CHECK(tm_same_params(&g, &m))) printf("    in %s\n", files[i]);
        tsf_model_free(&m);
    }
    tsf_model_free(&g);
}

/* F16 and BF16 storages: the values torch rounded to, widened exactly (the expect files
   hold t.half().float() and t.bfloat16().float(), written by the fixture script). */
static void test_torch_half_types(void) {
    static const char *const pairs[2][2] = {{TT_PT "hf_f16", TT_PT "expect_f16.safetensors"},
                                            {TT_PT "hf_bf16", TT_PT "expect_bf16.safetensors"}};
    tsf_model want, m;
    tsf_error err;
    int i;
    for (i = 0; i < 2; i++) {
        memset(&err, 0, sizeof err);
        if (!CHECK_EQ_INT(tsf_model_load(&want, pairs[i][1], 1, &err), TSF_OK)) {
            printf("    %s\n", err.msg);
            continue;
        }
        if (CHECK_EQ_INT(tsf_model_load(&m, pairs[i][0], 1, &err), TSF_OK)) {
            CHECK(tm_same_params(&want, &m));
            tsf_model_free(&m);
        } else {
            printf("    %s\n", err.msg);
        }
        tsf_model_free(&want);
    }
}

/* A sharded folder (pytorch_model.bin.index.json and two shards) loads whole. */
static void test_torch_sharded(void) {
    tsf_model g, m;
    tsf_error err;
    char dir[256], path[300];
    size_t size;
    unsigned char *idx;
    memset(&g, 0, sizeof g), memset(&err, 0, sizeof err);
    REQUIRE(tm_load_golden(&g, "divided_base", 1));
    if (CHECK_EQ_INT(tsf_model_load(&m, TT_PT "sharded", 1, &err), TSF_OK)) {
        CHECK(tm_same_params(&g, &m));
        tsf_model_free(&m);
    } else {
        printf("    %s\n", err.msg);
    }
    /* an index naming a file outside the folder, or a shard that is not there */
    tm_tmp(dir, sizeof dir, "sharded");
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/config.json", dir);
    idx = tm_read(TT_PT "sharded/config.json", &size);
    REQUIRE(idx && tm_write(path, idx, size));
    snprintf(path, sizeof path, "%s/pytorch_model.bin.index.json", dir);
    REQUIRE(tm_write(path, "{\"weight_map\": {\"classifier.bias\": \"../x.bin\"}}", 46));
    CHECK(tsf_model_load(&m, dir, 1, &err) == TSF_ERR_FORMAT && strstr(err.msg, "index.json"));
    REQUIRE(tm_write(path, "{\"weight_map\": {\"classifier.bias\": \"gone.bin\"}}", 47));
    CHECK(tsf_model_load(&m, dir, 1, &err) == TSF_ERR_IO && strstr(err.msg, "gone.bin"));
    CHECK(m.param_memory == NULL);
    remove(path);
    snprintf(path, sizeof path, "%s/config.json", dir);
    remove(path);
    rmdir(dir);
    tsf_model_free(&g);
}

/* No config: the original's .pyth of a model whose width is a multiple of 64 tells its
   config by its shapes (heads = D / 64); a width of 24 cannot, and says so. */
static void test_torch_infer_config(void) {
    tsf_model want, m;
    tsf_error err;
    memset(&err, 0, sizeof err);
    REQUIRE(tsf_model_load(&want, TT_PT "orig_d64_expect.safetensors", 1, &err) == TSF_OK);
    if (CHECK_EQ_INT(tsf_model_load(&m, TT_PT "orig_d64.pyth", 1, &err), TSF_OK)) {
        CHECK(tm_same_config(&want.cfg, &m.cfg));
        CHECK(tm_same_params(&want, &m));
        CHECK(tt_same_logits(&want, &m));
        tsf_model_free(&m);
    } else {
        printf("    %s\n", err.msg);
    }
    tsf_model_free(&want);
    CHECK_EQ_INT(tsf_model_load(&m, TT_PT "orig.pyth", 1, &err), TSF_ERR_CONFIG);
    CHECK(strstr(err.msg, "orig.pyth") && strstr(err.msg, "D / 64") &&
          strstr(err.msg, "config.json"));
}

/* What must be refused, with the file and the reason named, and nothing run: the legacy
   format, and pickles whose "tensor" is a call of os.system or eval. */
static void test_torch_refused(void) {
    static const char *const cases[][2] = {
        {TT_PT "legacy.bin", "legacy format"},
        {TT_PT "evil_system.bin", "classifier.bias: not a tensor but a value made by posix.system"},
        {TT_PT "evil_eval.bin",
         "classifier.bias: not a tensor but a value made by __builtin__.eval"},
    };
    tsf_model m;
    tsf_error err;
    tsf_config c = tt_golden_config();
    size_t i, size;
    remove("/tmp/tsf_pwned_by_pickle");
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        unsigned char *data = tm_read(cases[i][0], &size);
        memset(&err, 0, sizeof err);
        CHECK_EQ_INT(tsf_model_load(&m, cases[i][0], 1, &err), TSF_ERR_FORMAT);
        if (!CHECK(strstr(err.msg, cases[i][0]) && strstr(err.msg, cases[i][1])))
            printf("    %s\n", err.msg);
        CHECK(m.param_memory == NULL);
        if (data) CHECK(tm_expect_fail(cases[i][0], data, size, &c, cases[i][1]));
    }
    CHECK(!tm_exists("/tmp/tsf_pwned_by_pickle"));
}

/* Every truncation of an archive fails cleanly, and damaged bytes anywhere never break
   the reader (ASan and UBSan in the asan suite): a load fails with a message or succeeds. */
static void test_torch_damaged(void) {
    size_t size = 0, cut, i;
    unsigned char *data = tm_read(TT_PT "tricky.pth", &size), *copy;
    tsf_config c = tt_golden_config();
    tsf_model m;
    tsf_error err;
    int bad = 0;
    REQUIRE(data != NULL && size > 1000);
    copy = (unsigned char *)tsft_alloc_bytes(size);
    for (cut = 0; cut < size; cut += cut < 100 || cut > size - 300 ? 1 : 401)
        if (!tm_expect_fail("truncated", data, cut, &c, NULL)) bad++;
    CHECK_EQ_INT(bad, 0);
    for (i = 0; i < size; i += i < 2000 || i > size - 2000 ? 3 : 211) { /* a byte at a time */
        tsf_status st;
        memcpy(copy, data, size);
        copy[i] ^= (unsigned char)(0x5A + i);
        memset(&err, 0, sizeof err);
        st = tsf_model_load_memory(&m, copy, size, &c, 1, &err);
        if (st == TSF_OK)
            tsf_model_free(&m);
        else if (!err.msg[0] || m.param_memory)
            bad++;
    }
    CHECK_EQ_INT(bad, 0);
}

/* Config fields the library cannot compute are refused by name and value; what it can is
   honoured. */
static void test_torch_config_fields(void) {
    static const char *const refused[][2] = {
        {"{\"hidden_act\": \"relu\"}", "hidden_act \"relu\""},
        {"{\"hidden_act\": \"gelu_new\"}", "hidden_act \"gelu_new\""},
        {"{\"model_type\": \"vit\"}", "model_type \"vit\""},
        {"{\"pruned_heads\": {\"0\": [1]}}", "pruned_heads"},
        {"{\"qkv_bias\": null}", "qkv_bias"},
        {"{\"pos_embed\": \"sine\"}", "unknown pos_embed"},
    };
    static const char honoured[] = "{\"hidden_act\": \"gelu\", \"qkv_bias\": false, "
                                   "\"num_channels\": 1, \"layer_norm_eps\": 1e-5, "
                                   "\"hidden_dropout_prob\": 0.1, \"drop_path_rate\": 0.2, "
                                   "\"pos_embed\": \"space\"}";
    tsf_config c;
    tsf_error err;
    size_t i;
    for (i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        memset(&c, 0, sizeof c), memset(&err, 0, sizeof err);
        CHECK(tsf_config_from_json(&c, refused[i][0], strlen(refused[i][0]), &err) != TSF_OK);
        if (!CHECK(strstr(err.msg, refused[i][1]) != NULL))
            printf("    %s: \"%s\"\n", refused[i][0], err.msg);
    }
    memset(&c, 0, sizeof c);
    CHECK_EQ_INT(tsf_config_from_json(&c, honoured, strlen(honoured), &err), TSF_OK);
    CHECK(c.no_qkv_bias == 1 && c.channels == 1 && c.ln_eps == 1e-5f &&
          c.pos_embed == TSF_POS_SPACE);
}

/* preprocessor_config.json: sizes and normalisation read, a rescale factor folded into mean
   and std, what cannot be done refused by name. */
static void test_torch_preprocessor(void) {
    static const char *const refused[][2] = {
        {"{\"do_center_crop\": false}", "do_center_crop"},
        {"{\"do_resize\": false}", "do_resize"},
        {"{\"crop_size\": {\"height\": 16, \"width\": 20}}", "crop_size"},
        {"{\"size\": {\"height\": 16, \"width\": 16}}", "size"},
        {"{\"do_rescale\": \"yes\"}", "do_rescale"},
        {"{\"image_std\": [0.2, 0, 0.2]}", "image_std"},
    };
    char dir[256], path[300];
    size_t size, i;
    unsigned char *cfg = tm_read(TT_PT "hf_bin/config.json", &size), *bin;
    size_t bsize;
    tsf_model a, b;
    tsf_error err;
    memset(&a, 0, sizeof a), memset(&b, 0, sizeof b), memset(&err, 0, sizeof err);
    bin = tm_read(TT_PT "hf_bin/pytorch_model.bin", &bsize);
    REQUIRE(cfg && bin);
    tm_tmp(dir, sizeof dir, "prep");
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/config.json", dir);
    REQUIRE(tm_write(path, cfg, size));
    snprintf(path, sizeof path, "%s/pytorch_model.bin", dir);
    REQUIRE(tm_write(path, bin, bsize));
    snprintf(path, sizeof path, "%s/preprocessor_config.json", dir);
    for (i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        REQUIRE(tm_write(path, refused[i][0], strlen(refused[i][0])));
        CHECK(tsf_model_load(&a, dir, 1, &err) != TSF_OK);
        if (!CHECK(strstr(err.msg, "preprocessor_config.json") && strstr(err.msg, refused[i][1])))
            printf("    %s: \"%s\"\n", refused[i][0], err.msg);
    }
    /* pixels 0..255 unscaled, mean and std in the same units: the same input as the default
       (p / 255 - 0.45) / 0.225, to float rounding */
    {
        static const char unscaled[] = "{\"do_rescale\": false, \"image_mean\": [114.75, 114.75, "
                                       "114.75], \"image_std\": [57.375, 57.375, 57.375], "
                                       "\"size\": {\"shortest_edge\": 20}, \"crop_size\": 16}";
        unsigned char rgb[3 * 16 * 16 * 3];
        float la[5], lb[5];
        for (i = 0; i < sizeof rgb; i++) rgb[i] = (unsigned char)(i * 37 + 11);
        REQUIRE(tm_write(path, unscaled, strlen(unscaled)));
        if (CHECK_EQ_INT(tsf_model_load(&a, dir, 1, &err), TSF_OK)) {
            CHECK(a.cfg.short_side == 20 && a.cfg.crop_size == 16);
            CHECK(fabsf(a.cfg.mean[0] - 0.45f) < 1e-6f && fabsf(a.cfg.std[0] - 0.225f) < 1e-6f);
            CHECK(tsf_model_load(&b, TT_PT "hf_bin", 1, &err) == TSF_OK);
            CHECK(tsf_model_forward_u8(&a, rgb, 1, 3, 16, 16, la) == TSF_OK);
            CHECK(tsf_model_forward_u8(&b, rgb, 1, 3, 16, 16, lb) == TSF_OK);
            for (i = 0; i < 5; i++) CHECK_NEAR(la[i], lb[i], 1e-5, 0);
        } else {
            printf("    %s\n", err.msg);
        }
    }
    /* a saved model carries its preprocessing */
    if (a.param_memory) {
        char file[300];
        tsf_model c;
        snprintf(file, sizeof file, "%s/saved.safetensors", dir);
        CHECK(tsf_model_save(&a, file, &err) == TSF_OK);
        if (CHECK(tsf_model_load(&c, file, 1, &err) == TSF_OK)) {
            CHECK(c.cfg.short_side == 20 && c.cfg.crop_size == 16);
            CHECK(c.cfg.mean[0] == a.cfg.mean[0] && c.cfg.std[2] == a.cfg.std[2]);
            tsf_model_free(&c);
        }
        remove(file);
    }
    tsf_model_free(&a);
    tsf_model_free(&b);
    remove(path);
    snprintf(path, sizeof path, "%s/config.json", dir);
    remove(path);
    snprintf(path, sizeof path, "%s/pytorch_model.bin", dir);
    remove(path);
    rmdir(dir);
}

/* tsf_weights: a file's tensors by name, in either format, with what is not a tensor said. */
static void test_torch_weights_api(void) {
    static const char *const files[2] = {TT_PT "tricky.pth",
                                         "tests/golden/divided_base/weights.safetensors"};
    tsf_model g;
    tsf_weights w;
    tsf_error err;
    int f, i, k, ndim, found;
    memset(&g, 0, sizeof g), memset(&err, 0, sizeof err);
    REQUIRE(tm_load_golden(&g, "divided_base", 1));
    for (f = 0; f < 2; f++) {
        if (!CHECK_EQ_INT(tsf_weights_open(&w, files[f], NULL, &err), TSF_OK)) {
            printf("    %s\n", err.msg);
            continue;
        }
        CHECK_EQ_INT(w.count, tsf_model_num_tensors(&g));
        CHECK(f == 0 ? w.config == NULL : w.config != NULL && strstr(w.config, "embed_dim"));
        for (k = 0, found = 0; k < tsf_model_num_tensors(&g); k++) {
            char name[96], hf[96];
            long long shape[4], got[8];
            float *data, *buf;
            const char *wname;
            int gdim, d, same;
            size_t n = 1;
            tsf_model_tensor(&g, k, name, &gdim, shape, &data);
            for (i = 0; i < w.count; i++) {
                if (tsf_weights_info(&w, i, &wname, &ndim, got) != TSF_OK ||
                    !tsf__to_hf_name(wname, hf) || strcmp(hf, name) != 0)
                    continue;
                same = ndim == gdim;
                for (d = 0; d < gdim && same; d++) same = got[d] == shape[d], n *= (size_t)shape[d];
                buf = tsft_alloc(n);
                if (CHECK(same) && CHECK_EQ_INT(tsf_weights_read(&w, i, buf, &err), TSF_OK))
                    found += same_bits(buf, data, n);
                break;
            }
        }
        CHECK_EQ_INT(found, tsf_model_num_tensors(&g));
        tsf_weights_close(&w);
        CHECK(w.impl == NULL);
    }
    /* a "tensor" made by os.system: listed, refused by name when asked for */
    if (CHECK_EQ_INT(tsf_weights_open(&w, TT_PT "evil_system.bin", NULL, &err), TSF_OK)) {
        for (i = 0, found = 0; i < w.count; i++) {
            const char *wname;
            long long shape[8];
            float x[8];
            if (tsf_weights_info(&w, i, &wname, &ndim, shape) == TSF_OK) continue;
            found++;
            CHECK(strcmp(wname, "classifier.bias") == 0 && ndim == 0);
            CHECK_EQ_INT(tsf_weights_read(&w, i, x, &err), TSF_ERR_FORMAT);
            CHECK(strstr(err.msg, "posix.system") != NULL);
        }
        CHECK_EQ_INT(found, 1);
        tsf_weights_close(&w);
    }
    CHECK_EQ_INT(tsf_weights_open(&w, TT_PT "legacy.bin", NULL, &err), TSF_ERR_FORMAT);
    CHECK(strstr(err.msg, "legacy.bin") != NULL && w.impl == NULL);
    CHECK_EQ_INT(tsf_weights_open(&w, TT_PT "nope.bin", NULL, &err), TSF_ERR_IO);
    CHECK(strstr(err.msg, "nope.bin: cannot open: No such file") != NULL);
    tsf_model_free(&g);
}

/* The parameter table: row f describes tsf_params field f, both names agree on being per
   block, names are unique, and each naming scheme maps back through tsf_param_hf_name. */
static void test_torch_param_table(void) {
    int f, g, bad = 0;
    char hf[96], orig[96], back[96];
    for (f = 0; f < TSF_NUM_PARAMS; f++) {
        const struct tsf__param_row *r = &tsf__param_table[f];
        int pb_hf = strstr(r->hf, "%d") != NULL, pb_orig = strstr(r->orig, "%d") != NULL;
        if (r->field != f || pb_hf != r->per_block || pb_orig != r->per_block) bad++;
        if ((r->kind == TSF__MATRIX) != (strlen(r->shape) >= 2 && strstr(r->hf, ".weight") != NULL))
            bad++;
        for (g = 0; g < f; g++)
            if (strcmp(r->hf, tsf__param_table[g].hf) == 0 ||
                strcmp(r->orig, tsf__param_table[g].orig) == 0)
                bad++;
        tsf__layer_name(hf, r->hf, 3), tsf__layer_name(orig, r->orig, 3);
        if (!tsf_param_hf_name(orig, back) || strcmp(back, hf) != 0) bad++;
        if (!tsf_param_hf_name(hf, back) || strcmp(back, hf) != 0) bad++;
    }
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(TSF_NUM_PARAMS, (int)(sizeof(tsf_params) / sizeof(float *)));
}

/* Parameter counts and FLOPs of every scheme and position embedding at ViT-B/16, 8 x 224^2,
   as the independent reference counts them (its `count`; K 174 for the counts, 400 for the
   FLOPs). */
static void test_torch_scheme_counts(void) {
    static const struct {
        int attention, pos_embed;
        size_t params;
        double gflops;
    } want[] = {
        {TSF_ATTN_DIVIDED, TSF_POS_SPACE_TIME, 121392558, 195.830},
        {TSF_ATTN_DIVIDED, TSF_POS_SPACE, 121386414, 195.830},
        {TSF_ATTN_DIVIDED, TSF_POS_NONE, 121235118, 195.830},
        {TSF_ATTN_SPACE, TSF_POS_SPACE, 85932462, 140.505},
        {TSF_ATTN_JOINT, TSF_POS_NONE, 85781166, 179.563},
        {TSF_ATTN_LOCAL_GLOBAL, TSF_POS_SPACE_TIME, 121392558, 206.928},
        {TSF_ATTN_LOCAL_GLOBAL, TSF_POS_NONE, 121235118, 206.928},
        {TSF_ATTN_AXIAL, TSF_POS_SPACE_TIME, 156846510, 249.412},
    };
    size_t i;
    for (i = 0; i < sizeof want / sizeof want[0]; i++) {
        tsf_config c;
        memset(&c, 0, sizeof c);
        c.image_size = 224, c.patch_size = 16, c.frames = 8, c.dim = 768, c.depth = 12;
        c.heads = 12, c.classes = 174, c.attention = want[i].attention;
        c.pos_embed = want[i].pos_embed;
        if (!CHECK_EQ_INT(tsf_config_resolve(&c), TSF_OK)) continue;
        if (!CHECK(tsf_config_num_params(&c) == want[i].params))
            printf("    %s %s: %zu\n", tsf_attention_name(c.attention),
                   tsf_pos_embed_name(c.pos_embed), tsf_config_num_params(&c));
        c.classes = 400;
        CHECK(fabs(tsf_config_flops(&c, 0, 0, 0) / 1e9 - want[i].gflops) < 0.0005);
    }
}
