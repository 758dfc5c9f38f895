/* tsf_export.c - `tsf convert` and `tsf export`, included by tsf.c (after tsf_train.c, whose
   tr_create/tr_commit write files atomically).

   tsf convert IN OUT.safetensors [--config CONFIG.json]
       Any checkpoint the library reads (safetensors; torch.save files: Hugging Face's
       pytorch_model.bin, the original code's .pyth/.pth; a Hugging Face folder, sharded or
       not) to one F32 safetensors file with Hugging Face names, the config, the
       preprocessing and the class names in its metadata: a file tsf_model_load reads alone.
       A file without a config takes it from CONFIG.json, or from its tensors' shapes.
       F32 values are copied bit for bit; F16, BF16 and F64 are converted exactly (F64 rounds).

   tsf export MODEL DIR
       A Hugging Face model folder: config.json (TimesformerConfig's keys, id2label and
       label2id), model.safetensors and preprocessor_config.json (VideoMAEImageProcessor), so
       that transformers' TimesformerForVideoClassification.from_pretrained(DIR) loads the
       model with no missing or unexpected keys. A model that reads BGR is exported reading
       RGB: the patch embedding's input channels and the mean/std are reversed, which
       computes the same logits. Hugging Face computes space_only differently (it does not
       average the frames' cls tokens), so such an export gets a warning. Hugging Face has
       neither sparse_local_global nor axial, nor a pos_embed other than space_time (its
       TimesformerConfig has no such key): such a model is refused by name, nothing written. */

/* s as a JSON string literal. */
static void ex_json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

/* v with the fewest digits that read back as the same float (0.45, not 0.449999988). */
static const char *ex_float(float v, char *buf, size_t n) {
    int digits;
    for (digits = 6; digits < 9; digits++) {
        snprintf(buf, n, "%.*g", digits, (double)v);
        if ((float)strtod(buf, NULL) == v) return buf;
    }
    snprintf(buf, n, "%.9g", (double)v);
    return buf;
}

/* Load MODEL, or a weight file with a config.json given (cfg_path may be NULL). */
static int ex_load(tsf_model *m, const char *path, const char *cfg_path, const char *cmd) {
    tsf_error err;
    tsf_status st;
    char why[600];
    memset(&err, 0, sizeof err);
    if (cfg_path) {
        tsf_config cfg;
        memset(&cfg, 0, sizeof cfg);
        st = tsf_config_load(&cfg, cfg_path, &err);
        if (st == TSF_OK) st = tsf_model_load_file(m, path, &cfg, 0, &err);
    } else {
        st = tsf_model_load(m, path, 0, &err);
    }
    if (st != TSF_OK) tt_error("%s: %s", cmd, tt_why(st, &err, why, sizeof why));
    return st == TSF_OK;
}

static int cmd_convert(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *cfg = NULL;
    tsf_model m;
    tsf_error err;
    int i;
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            cfg = argv[++i];
        else if (argv[i][0] == '-' && argv[i][1])
            return tt_error("convert: unknown option %s (tsf convert IN OUT.safetensors "
                            "[--config CONFIG.json])",
                            argv[i]),
                   2;
        else if (!in)
            in = argv[i];
        else if (!out)
            out = argv[i];
        else
            return tt_error("convert: one input and one output (tsf convert IN OUT.safetensors)"),
                   2;
    }
    if (!in || !out)
        return tt_error("usage: tsf convert IN OUT.safetensors [--config CONFIG.json]"), 2;
    if (!ex_load(&m, in, cfg, "convert")) return 1;
    memset(&err, 0, sizeof err);
    if (tsf_model_save(&m, out, &err) != TSF_OK) {
        tt_error("convert: %s", err.msg[0] ? err.msg : out);
        tsf_model_free(&m);
        return 1;
    }
    if (!tt_quiet)
        printf("wrote %s: %d tensors, %lu parameters, %s, %d classes%s\n", out,
               tsf_model_num_tensors(&m), (unsigned long)m.num_params,
               tsf_attention_name(m.cfg.attention), m.cfg.classes, m.labels ? " (with names)" : "");
    tsf_model_free(&m);
    return 0;
}

/* config.json in TimesformerConfig's keys. */
static int ex_write_config(const tsf_model *m, const char *path) {
    const tsf_config *c = &m->cfg;
    FILE *f = tr_create(path);
    char num[32];
    int k, pass;
    if (!f) return 0;
    fprintf(f, "{\n  \"architectures\": [\"TimesformerForVideoClassification\"],\n");
    fprintf(f, "  \"attention_probs_dropout_prob\": 0.0,\n  \"attention_type\": \"%s\",\n",
            tsf_attention_name(c->attention));
    fprintf(f, "  \"drop_path_rate\": 0.0,\n  \"hidden_act\": \"gelu\",\n");
    fprintf(f, "  \"hidden_dropout_prob\": 0.0,\n  \"hidden_size\": %d,\n", c->dim);
    for (pass = 0; pass < 2; pass++) { /* id2label, then label2id */
        fprintf(f, "  \"%s\": {", pass ? "label2id" : "id2label");
        for (k = 0; k < c->classes; k++) {
            char name[32];
            const char *label = tsf_model_label(m, k);
            snprintf(name, sizeof name, "LABEL_%d", k); /* Hugging Face's names for none */
            if (!label[0]) label = name;
            fprintf(f, "%s\n    ", k ? "," : "");
            if (pass) {
                ex_json_str(f, label);
                fprintf(f, ": %d", k);
            } else {
                fprintf(f, "\"%d\": ", k);
                ex_json_str(f, label);
            }
        }
        fprintf(f, "\n  },\n");
    }
    fprintf(f, "  \"image_size\": %d,\n  \"initializer_range\": 0.02,\n", c->image_size);
    fprintf(f, "  \"intermediate_size\": %d,\n", (int)((float)c->dim * c->mlp_ratio));
    fprintf(f, "  \"layer_norm_eps\": %s,\n  \"model_type\": \"timesformer\",\n",
            ex_float(c->ln_eps, num, sizeof num));
    fprintf(f, "  \"num_attention_heads\": %d,\n  \"num_channels\": %d,\n", c->heads, c->channels);
    fprintf(f, "  \"num_frames\": %d,\n  \"num_hidden_layers\": %d,\n", c->frames, c->depth);
    fprintf(f, "  \"patch_size\": %d,\n  \"qkv_bias\": %s,\n", c->patch_size,
            c->no_qkv_bias ? "false" : "true");
    fprintf(f, "  \"torch_dtype\": \"float32\",\n  \"transformers_version\": \"4.26.0\"\n}\n");
    return tr_commit(f, path);
}

/* preprocessor_config.json for VideoMAEImageProcessor (TimeSformer's on the hub). */
static int ex_write_preprocessor(const tsf_config *c, const char *path) {
    FILE *f = tr_create(path);
    char num[32];
    int k, pass;
    if (!f) return 0;
    fprintf(f, "{\n  \"crop_size\": {\"height\": %d, \"width\": %d},\n", c->crop_size,
            c->crop_size);
    fprintf(f, "  \"do_center_crop\": true,\n  \"do_normalize\": true,\n");
    fprintf(f, "  \"do_rescale\": true,\n  \"do_resize\": true,\n");
    for (pass = 0; pass < 2; pass++) {
        fprintf(f, "  \"%s\": [", pass ? "image_std" : "image_mean");
        for (k = 0; k < 3; k++) /* three: the processor checks them against RGB frames */
            fprintf(f, "%s%s", k ? ", " : "",
                    ex_float(pass ? c->std[k] : c->mean[k], num, sizeof num));
        fprintf(f, "],\n");
    }
    fprintf(f, "  \"image_processor_type\": \"VideoMAEImageProcessor\",\n  \"resample\": 2,\n");
    fprintf(f, "  \"rescale_factor\": 0.00392156862745098,\n");
    fprintf(f, "  \"size\": {\"shortest_edge\": %d}\n}\n", c->short_side);
    return tr_commit(f, path);
}

static int cmd_export(int argc, char **argv) {
    tsf_model m;
    tsf_error err;
    char *path;
    int ok = 1;
    if (argc != 3 || argv[1][0] == '-' || argv[2][0] == '-')
        return tt_error("usage: tsf export MODEL DIR   (a Hugging Face model folder)"), 2;
    if (!ex_load(&m, argv[1], NULL, "export")) return 1;
    if (m.cfg.channels > 3) {
        tt_error("export: a model of %d channels: Hugging Face's image processor has 3",
                 m.cfg.channels);
        tsf_model_free(&m);
        return 1;
    }
    if (m.cfg.attention != TSF_ATTN_DIVIDED && m.cfg.attention != TSF_ATTN_JOINT &&
        m.cfg.attention != TSF_ATTN_SPACE) {
        tt_error("export: %s has attention_type %s, and Hugging Face's TimeSformer has only the "
                 "released schemes (divided_space_time, joint_space_time and space_only): "
                 "nothing there could run it. It runs in this library only (tsf convert writes "
                 "one .safetensors file of it)",
                 argv[1], tsf_attention_name(m.cfg.attention));
        tsf_model_free(&m);
        return 1;
    }
    if (m.cfg.pos_embed != TSF_POS_SPACE_TIME) {
        tt_error("export: %s has pos_embed %s, and Hugging Face's TimeSformer always adds "
                 "position and time embeddings (TimesformerConfig has no pos_embed): it would "
                 "compute something else. It runs in this library only (tsf convert writes one "
                 ".safetensors file of it)",
                 argv[1], tsf_pos_embed_name(m.cfg.pos_embed));
        tsf_model_free(&m);
        return 1;
    }
    if (m.cfg.bgr) { /* read RGB instead: reverse the patch embedding's input channels */
        const tsf_config *c = &m.cfg;
        size_t pp = (size_t)c->patch_size * c->patch_size, o, i;
        float t;
        for (o = 0; o < (size_t)c->dim; o++) /* patch_w // (D, 3, P, P) */
            for (i = 0; i < pp; i++) {
                float *w = m.params.patch_w + o * 3 * pp + i;
                t = w[0], w[0] = w[2 * pp], w[2 * pp] = t;
            }
        t = m.cfg.mean[0], m.cfg.mean[0] = m.cfg.mean[2], m.cfg.mean[2] = t;
        t = m.cfg.std[0], m.cfg.std[0] = m.cfg.std[2], m.cfg.std[2] = t;
        m.cfg.bgr = 0;
        if (!tt_quiet) printf("the model reads BGR: exported reading RGB (the same logits)\n");
    }
    if (m.cfg.attention == TSF_ATTN_SPACE)
        tt_warn("export: Hugging Face's space_only differs from the original's (it returns one "
                "row a frame instead of averaging the frames' cls tokens): its logits will not "
                "match this library's");
    if (!tt_mkdirs(argv[2])) {
        tt_error("export: cannot make the folder %s: %s", argv[2], strerror(errno));
        tsf_model_free(&m);
        return 1;
    }
    path = tt_join(argv[2], "model.safetensors");
    memset(&err, 0, sizeof err);
    if (tsf_model_save(&m, path, &err) != TSF_OK) {
        tt_error("export: %s", err.msg[0] ? err.msg : path);
        ok = 0;
    }
    free(path);
    path = tt_join(argv[2], "config.json");
    ok = ok && ex_write_config(&m, path);
    free(path);
    path = tt_join(argv[2], "preprocessor_config.json");
    ok = ok && ex_write_preprocessor(&m.cfg, path);
    free(path);
    if (ok && !tt_quiet)
        printf("wrote %s/{config.json, model.safetensors, preprocessor_config.json}: %s, %d "
               "classes\n",
               argv[2], tsf_attention_name(m.cfg.attention), m.cfg.classes);
    tsf_model_free(&m);
    return ok ? 0 : 1;
}
