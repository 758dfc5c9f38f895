/* tsf_init.c - tsf train --init-from: weights from any weight file (safetensors or a PyTorch
   checkpoint, or a Hugging Face folder), included by tsf.c before tsf_train.c, which calls
   ini_open, ini_apply and ini_close. It uses the library's public API only: the file is read
   by tsf_weights_open / info / read / close, names are mapped by tsf_param_hf_name and
   embeddings resized by tsf_nearest_index.

   A source tensor is matched to the model's by name, after mapping timm and facebookresearch
   names (blocks.N.attn.qkv.weight, ...) and Hugging Face ViT names (vit.encoder.layer.N.
   attention.attention.query.weight, ...) to this library's Hugging Face TimeSformer names, and
   copied when its shape matches. Hugging Face ViT keeps query, key and value apart; they are
   stacked into qkv. The original's way of starting from a pretrained model (docs/model.md
   section 7, Parameters: names, shapes, counts, initialisation) is followed for the rest: a
   pos_embed of another length is resized with 1-D nearest over its flattened patch rows (row
   0, the cls row, kept); a time_embed of another length with 1-D nearest (the rule of
   docs/model.md section 9); a divided model whose source has no temporal attention gets
   copies of the spatial attention and norm1 (temporal_fc stays zero, so it starts as a
   per-frame ViT); an image model's head is dropped, a video model's head is kept when the
   class counts match. */

typedef struct ini_tensor {
    char name[256];     /* as in the file                                                */
    char hf[96];        /* the TimeSformer tensor it maps to; "" if none                 */
    int part;           /* -1: all of it; 0, 1, 2: the q, k or v rows of a qkv tensor     */
    int ndim;           /*                                                               */
    long long shape[8]; /*                                                               */
    int index;          /* its entry in the file (tsf_weights)                           */
    size_t numel;       /*                                                               */
    int used;           /* copied into the model                                         */
} ini_tensor;

typedef struct ini_source {
    char *file;       /* the weight file                                                */
    tsf_weights w;    /* its tensors, read by the library                               */
    ini_tensor *t;    /* the float tensors among them                                   */
    int n;            /*                                                                */
    tsf_config cfg;   /* what its config says or its shapes show; 0 / -1: unknown       */
    int image;        /* 1: an image model (no time embedding, no temporal attention)   */
    int heads_guess;  /* 1: cfg.heads was guessed as D/64                               */
    const char *kind; /* "a TimeSformer", "an image ViT", ...                          */
} ini_source;

static void ini_close(ini_source *s) {
    tsf_weights_close(&s->w);
    free(s->t), free(s->file);
    memset(s, 0, sizeof *s);
}

/* Map a tensor name of the file to the model's (Hugging Face TimeSformer) name. */
static int ini_map_name(const char *name, char hf[96], int *part) {
    static const char *const qkv[3] = {".attention.attention.query.", ".attention.attention.key.",
                                       ".attention.attention.value."};
    char buf[320];
    const char *s = name;
    int p;
    *part = -1;
    if (tsf_param_hf_name(name, hf)) return 1; /* TimeSformer (HF or original), timm ViT */
    for (;;) { /* wrappers: module. (DDP), model., vit. (ViTForImageClassification) */
        if (strncmp(s, "module.", 7) == 0)
            s += 7;
        else if (strncmp(s, "model.", 6) == 0)
            s += 6;
        else if (strncmp(s, "vit.", 4) == 0)
            s += 4;
        else
            break;
    }
    /* HF ViT's names are HF TimeSformer's under another prefix, but for query/key/value */
    if (strncmp(s, "embeddings.", 11) != 0 && strncmp(s, "encoder.layer.", 14) != 0 &&
        strncmp(s, "layernorm.", 10) != 0)
        return 0;
    if (strlen(s) > 255) return 0;
    snprintf(buf, sizeof buf, "timesformer.%s", s);
    for (p = 0; p < 3; p++) {
        char *at = strstr(buf, qkv[p]);
        if (at) {
            char tail[64];
            snprintf(tail, sizeof tail, "%s", at + strlen(qkv[p])); /* weight or bias */
            sprintf(at, ".attention.attention.qkv.%s", tail);
            *part = p;
            break;
        }
    }
    return tsf_param_hf_name(buf, hf);
}

/* The source tensor that maps to model tensor hf (part: as in ini_tensor), or NULL. */
static ini_tensor *ini_find(const ini_source *s, const char *hf, int part) {
    int i;
    for (i = 0; i < s->n; i++)
        if (s->t[i].part == part && strcmp(s->t[i].hf, hf) == 0) return &s->t[i];
    return NULL;
}

/* Read a tensor's values as floats into dst. */
static int ini_read(ini_source *s, const ini_tensor *t, float *dst) {
    tsf_error err;
    if (tsf_weights_read(&s->w, t->index, dst, &err) == TSF_OK) return 1;
    tt_error("--init-from %s: %s (a truncated file?)", s->file, err.msg);
    return 0;
}

/* The rows of a tensor whose last dimension is D: numel / D. */
static long long ini_rows(const ini_tensor *t) {
    long long D = t->ndim ? t->shape[t->ndim - 1] : 1;
    return D > 0 ? (long long)t->numel / D : 0;
}

/* ---- opening the source ---------------------------------------------------------------------- */

/* What the shapes of a source's tensors say about its architecture (0: nothing). */
typedef struct ini_shapes {
    long long D, C, P, Q, T0, HM, L; /* width, channels, patch, position rows, time rows,
                                        MLP width, blocks */
    int has_time, has_temporal, has_qkv_w, has_qkv_b;
} ini_shapes;

/* The weight file of MODEL: MODEL itself, or a folder's model.safetensors (else
   pytorch_model.bin), whose config.json, when there is one, goes to s->cfg. Returns 1, or 0
   after printing an error. */
static int ini_locate(ini_source *s, const char *path) {
    char *cj, *text;
    size_t n = 0;
    tsf_error err;
    int ok;
    if (!tt_is_dir(path)) {
        s->file = tt_strdup(path);
        return 1;
    }
    s->file = tt_join(path, "model.safetensors");
    if (!tt_is_file(s->file)) free(s->file), s->file = tt_join(path, "pytorch_model.bin");
    cj = tt_join(path, "config.json");
    if (!tt_is_file(cj)) {
        free(cj);
        return 1;
    }
    text = tt_read_file(cj, (size_t)10 << 20, &n); /* a config.json: 10 MB at the most */
    ok = text && tsf_config_from_json(&s->cfg, text, n, &err) == TSF_OK;
    if (!ok)
        tt_error("--init-from %s: %s is not a usable config: %s", path, cj,
                 text ? err.msg : "cannot read it");
    free(cj), free(text);
    return ok;
}

/* What one tensor's (Hugging Face) name and shape say about the architecture. */
static void ini_note_shape(ini_shapes *sh, const ini_tensor *it) {
    if (strstr(it->hf, ".temporal_")) sh->has_temporal = 1;
    if (strcmp(it->hf, "timesformer.embeddings.cls_token") == 0 && it->ndim)
        sh->D = it->shape[it->ndim - 1];
    if (strcmp(it->hf, "timesformer.embeddings.patch_embeddings.projection.weight") == 0 &&
        it->ndim == 4)
        sh->D = it->shape[0], sh->C = it->shape[1], sh->P = it->shape[2];
    if (strcmp(it->hf, "timesformer.embeddings.position_embeddings") == 0) sh->Q = ini_rows(it);
    if (strcmp(it->hf, "timesformer.embeddings.time_embeddings") == 0)
        sh->has_time = 1, sh->T0 = ini_rows(it);
    if (strstr(it->hf, ".intermediate.dense.weight") && it->ndim == 2) sh->HM = it->shape[0];
    if (strstr(it->hf, ".attention.attention.qkv.weight")) sh->has_qkv_w = 1;
    if (strstr(it->hf, ".attention.attention.qkv.bias")) sh->has_qkv_b = 1;
    if (strncmp(it->hf, "timesformer.encoder.layer.", 26) == 0) {
        long long l = strtoll(it->hf + 26, NULL, 10);
        if (l + 1 > sh->L) sh->L = l + 1;
    }
}

/* List the file's float tensors in s->t, with the names they map to, noting their shapes in
 *sh. Returns 1, or 0 after printing an error. */
static int ini_list(ini_source *s, const char *path, ini_shapes *sh) {
    int e;
    s->t = (ini_tensor *)tt_malloc((size_t)s->w.count * sizeof *s->t + 1);
    for (e = 0; e < s->w.count; e++) {
        ini_tensor *it = &s->t[s->n];
        const char *name;
        int d;
        memset(it, 0, sizeof *it);
        if (tsf_weights_info(&s->w, e, &name, &it->ndim, it->shape) != TSF_OK)
            continue; /* integer buffers and the like: never copied */
        if (strlen(name) >= sizeof it->name) {
            tt_error("--init-from %s: a tensor name is too long", path);
            return 0;
        }
        snprintf(it->name, sizeof it->name, "%s", name);
        it->index = e, it->numel = 1;
        for (d = 0; d < it->ndim; d++) it->numel *= (size_t)it->shape[d];
        if (!ini_map_name(name, it->hf, &it->part)) it->hf[0] = 0;
        s->n++;
        if (it->hf[0]) ini_note_shape(sh, it);
    }
    return 1;
}

/* Fill what the source's config left open from its shapes, and say what kind of model it is. */
static void ini_complete_config(ini_source *s, const ini_shapes *sh) {
    tsf_config *c = &s->cfg;
    if (!c->dim && sh->D > 0 && sh->D <= 65536) c->dim = (int)sh->D;
    if (!c->channels && sh->C > 0 && sh->C <= 64) c->channels = (int)sh->C;
    if (!c->patch_size && sh->P > 0 && sh->P <= 16384) c->patch_size = (int)sh->P;
    if (!c->depth && sh->L > 0 && sh->L <= 1024) c->depth = (int)sh->L;
    if (!c->frames && sh->T0 > 0 && sh->T0 <= 4096) c->frames = (int)sh->T0;
    if (c->mlp_ratio == 0.0f && sh->HM > 0 && c->dim > 0)
        c->mlp_ratio = (float)sh->HM / (float)c->dim;
    if (!c->image_size && sh->Q > 1 && c->patch_size > 0) {
        long long g = (long long)(sqrt((double)(sh->Q - 1)) + 0.5);
        if (g * g == sh->Q - 1 && g * c->patch_size <= 16384)
            c->image_size = (int)g * c->patch_size;
    }
    if (c->no_qkv_bias < 0 && sh->has_qkv_w) c->no_qkv_bias = !sh->has_qkv_b;
    if (!c->heads && c->dim > 0 && c->dim % 64 == 0) c->heads = c->dim / 64, s->heads_guess = 1;
    s->image = c->attention < 0 && !sh->has_time && !sh->has_temporal;
    if (c->attention < 0 && (sh->has_time || sh->has_temporal))
        c->attention = sh->has_temporal ? TSF_ATTN_DIVIDED : TSF_ATTN_JOINT;
    s->kind = !s->image ? "a TimeSformer" : c->dim ? "an image model (ViT)" : "an unknown model";
}

/* Open MODEL (a weight file: safetensors or a torch.save checkpoint; or a folder with
   model.safetensors or pytorch_model.bin and maybe config.json), list its tensors and work
   out its config: from its own config or config.json when there is one, else from the
   shapes. Returns 1, or 0 after printing an error. */
static int ini_open(ini_source *s, const char *path) {
    tsf_error err;
    tsf_status st;
    ini_shapes sh;
    char why[600];
    memset(s, 0, sizeof *s), memset(&sh, 0, sizeof sh);
    /* the config fields this source does not determine stay 0 (attention, bias, bgr: -1) */
    s->cfg.attention = -1, s->cfg.no_qkv_bias = -1, s->cfg.bgr = -1;
    if (!ini_locate(s, path)) {
        free(s->file);
        return 0;
    }
    if ((st = tsf_weights_open(&s->w, s->file, NULL, &err)) != TSF_OK) {
        tt_error("--init-from %s: %s (give a .safetensors file, a PyTorch checkpoint or a Hugging "
                 "Face folder)",
                 path, tt_why(st, &err, why, sizeof why));
        ini_close(s);
        return 0;
    }
    /* a config in the file (files written by this library carry one) */
    if (s->w.config &&
        tsf_config_from_json(&s->cfg, s->w.config, strlen(s->w.config), &err) != TSF_OK) {
        tt_error("--init-from %s: its __metadata__.config is not a usable config", path);
        ini_close(s);
        return 0;
    }
    if (!ini_list(s, path, &sh)) {
        ini_close(s);
        return 0;
    }
    ini_complete_config(s, &sh);
    return 1;
}

/* ---- copying into the model ------------------------------------------------------------------ */

/* What ini_apply did, for its report. */
typedef struct ini_result {
    int copied, resized, from_spatial, unused;
    char notes[600];        /* the embeddings resized                        */
    char skipped[400];      /* the model's tensors whose shapes differ       */
    char unused_names[300]; /* the first of the file's tensors not used      */
} ini_result;

/* A position (is_pos) or time embedding of rows x D values resized into the model's want x D at
   data: 1-D nearest over the rows (position: over the patch rows; the cls row stays row 0).
   Returns 1, or 0 after a read error. */
static int ini_resize_rows(ini_source *s, ini_tensor *t, float *data, int D, long long want,
                           int is_pos, ini_result *res) {
    long long rows = ini_rows(t), r, off = is_pos;
    float *tmp = (float *)tt_malloc(t->numel * sizeof(float));
    char note[160];
    if (!ini_read(s, t, tmp)) {
        free(tmp);
        return 0;
    }
    if (is_pos) memcpy(data, tmp, (size_t)D * sizeof(float));
    for (r = 0; r < want - off; r++) {
        int src = tsf_nearest_index((int)r, (int)(want - off), (int)(rows - off));
        memcpy(data + (size_t)(r + off) * D, tmp + (size_t)(off + src) * D,
               (size_t)D * sizeof(float));
    }
    free(tmp);
    snprintf(note, sizeof note, "%s%s resized from %lld to %lld rows", res->notes[0] ? "; " : "",
             is_pos ? "position embedding" : "time embedding", rows, want);
    if (strlen(res->notes) + strlen(note) < sizeof res->notes) strcat(res->notes, note);
    res->resized++;
    return 1;
}

/* Model tensor k (name, numel floats at data, last dimension last) from the source tensor t of
   the same name: copied when the sizes match, resized when it is an embedding of another
   length, else left at its initial value (a head for another class count, or noted as
   skipped). Sets *loaded. Returns 1, or 0 after a read error. */
static int ini_copy_named(ini_source *s, ini_tensor *t, const char *name, float *data, size_t numel,
                          long long last, int D, int *loaded, ini_result *res) {
    long long rows = ini_rows(t), want = (long long)(numel / (size_t)D);
    int is_pos = strcmp(name, "timesformer.embeddings.position_embeddings") == 0;
    int is_time = strcmp(name, "timesformer.embeddings.time_embeddings") == 0;
    if (t->numel == numel && t->shape[t->ndim - 1] == last) {
        if (!ini_read(s, t, data)) return 0;
        t->used = *loaded = 1, res->copied++;
    } else if ((is_pos || is_time) && t->shape[t->ndim - 1] == D && rows >= 1 + is_pos) {
        if (!ini_resize_rows(s, t, data, D, want, is_pos, res)) return 0;
        t->used = *loaded = 1, res->copied++;
    } else if (strncmp(name, "classifier.", 11) == 0) {
        t->used = 1; /* a head for another class count: the model keeps its new one */
    } else if (strlen(res->skipped) + strlen(name) + 4 < sizeof res->skipped) {
        strcat(res->skipped, res->skipped[0] ? ", " : ""), strcat(res->skipped, name);
    }
    return 1;
}

/* Model tensor k from the source, by name (Hugging Face ViT: q, k and v are three tensors).
   Sets loaded[k]. Returns 1, or 0 after a read error. */
static int ini_copy_tensor(tsf_model *m, ini_source *s, int k, int new_head, unsigned char *loaded,
                           ini_result *res) {
    char name[96];
    int ndim, d, p, done = 0;
    long long shape[4];
    float *data;
    size_t numel = 1;
    ini_tensor *t;
    tsf_model_tensor(m, k, name, &ndim, shape, &data);
    for (d = 0; d < ndim; d++) numel *= (size_t)shape[d];
    if (strncmp(name, "classifier.", 11) == 0 && (s->image || new_head)) {
        if ((t = ini_find(s, name, -1)) != NULL) t->used = 1; /* dropped on purpose */
        return 1;
    }
    if ((t = ini_find(s, name, -1)) != NULL) {
        if (!ini_copy_named(s, t, name, data, numel, shape[ndim - 1], m->cfg.dim, &done, res))
            return 0;
        loaded[k] = (unsigned char)done;
        return 1;
    }
    for (p = 0; p < 3; p++) {
        t = ini_find(s, name, p);
        if (!t || t->numel * 3 != numel) break;
        if (!ini_read(s, t, data + (size_t)p * (numel / 3))) return 0;
        t->used = 1;
    }
    if (p == 3) loaded[k] = 1, res->copied++;
    return 1;
}

/* A divided model from a source without temporal attention, the original's start: each
   temporal LayerNorm and attention tensor not loaded becomes a copy of its spatial twin
   (layernorm_before, attention) when that one was loaded. */
static void ini_temporal_from_spatial(tsf_model *m, const unsigned char *loaded, ini_result *res) {
    int nt = tsf_model_num_tensors(m), k, k2, d, ndim, ndim2;
    for (k = 0; k < nt; k++) {
        char name[96], spatial[128], sname[96];
        const char *at;
        long long shape[4], shape2[4];
        float *data, *data2;
        size_t numel = 1;
        tsf_model_tensor(m, k, name, &ndim, shape, &data);
        if (loaded[k]) continue;
        if ((at = strstr(name, ".temporal_layernorm.")) != NULL)
            snprintf(spatial, sizeof spatial, "%.*s.layernorm_before.%s", (int)(at - name), name,
                     at + 20);
        else if ((at = strstr(name, ".temporal_attention.")) != NULL)
            snprintf(spatial, sizeof spatial, "%.*s.attention.%s", (int)(at - name), name, at + 20);
        else
            continue;
        for (k2 = 0; k2 < nt; k2++) {
            tsf_model_tensor(m, k2, sname, &ndim2, shape2, &data2);
            if (strcmp(sname, spatial) == 0) break;
        }
        if (k2 == nt || !loaded[k2]) continue;
        for (d = 0; d < ndim; d++) numel *= (size_t)shape[d];
        memcpy(data, data2, numel * sizeof(float));
        res->from_spatial++;
    }
}

/* The file's tensors that went unused (optimizer state aside): their count and the first
   names. */
static void ini_note_unused(const ini_source *s, ini_result *res) {
    int k;
    for (k = 0; k < s->n; k++)
        if (!s->t[k].used && strncmp(s->t[k].name, "optimizer.", 10) != 0) {
            if (res->unused++ < 4 &&
                strlen(res->unused_names) + strlen(s->t[k].name) + 4 < sizeof res->unused_names)
                strcat(res->unused_names, res->unused > 1 ? ", " : ""),
                    strcat(res->unused_names, s->t[k].name);
        }
}

/* What ini_apply did, on stdout. */
static void ini_report(const ini_source *s, const ini_result *res, int nt, int head_loaded,
                       int new_head) {
    printf("init-from %s (%s): copied %d of %d tensors", s->file, s->kind, res->copied, nt);
    if (res->notes[0]) printf("; %s", res->notes);
    if (res->from_spatial)
        printf("; %d temporal attention tensors start as copies of the spatial ones",
               res->from_spatial);
    printf("\n");
    if (ini_find(s, "classifier.weight", -1) || s->image || new_head)
        printf("init-from: %s\n",
               head_loaded ? "head copied (same class count)" : "new head, initialised afresh");
    if (res->skipped[0])
        printf("init-from: kept at their initial values (shapes differ): %s\n", res->skipped);
    if (res->unused)
        printf("init-from: %d tensors of the file not used: %s%s\n", res->unused, res->unused_names,
               res->unused > 4 ? ", ..." : "");
}

/* Copy the source's tensors into the freshly initialised model m; prints what was done.
   Returns 1, or 0 after printing an error (nothing matched, a read failed). */
static int ini_apply(tsf_model *m, ini_source *s, int new_head, int quiet) {
    int nt = tsf_model_num_tensors(m), k, ok = 0;
    unsigned char *loaded = (unsigned char *)tt_malloc((size_t)nt);
    ini_result res;
    memset(loaded, 0, (size_t)nt), memset(&res, 0, sizeof res);
    for (k = 0; k < nt; k++)
        if (!ini_copy_tensor(m, s, k, new_head, loaded, &res)) goto done;
    if (m->cfg.attention == TSF_ATTN_DIVIDED) ini_temporal_from_spatial(m, loaded, &res);
    ini_note_unused(s, &res);
    if (res.copied == 0) {
        tt_error("--init-from %s: no tensor of it fits this model (names or shapes differ; "
                 "D %d here). Leave out the model flags (--dim, --depth, --patch, ...) so that "
                 "they come from it, or give a TimeSformer or ViT checkpoint",
                 s->file, m->cfg.dim);
        goto done;
    }
    if (!quiet) ini_report(s, &res, nt, loaded[nt - 1], new_head);
    ok = 1;
done:
    free(loaded);
    return ok;
}
