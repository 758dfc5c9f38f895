/* make_seeds.c - writes the seed corpora of the fuzz harnesses into OUT/<harness>/.

   Build:  cc -std=c99 -O1 -I. tests/fuzz/make_seeds.c -o build/make_seeds -lm
   Run:    build/make_seeds OUT      (tests/fuzz/run_fuzz.sh and tests/run_all.sh do)

   The seeds are the kinds of files the tests use, made small so that the fuzzer mutates
   them quickly: tiny models of the three variants written by tsf_model_save and
   tsf_checkpoint_save (config and labels in __metadata__), the same tensors without metadata
   in F32, F16, BF16 and F64 with Hugging Face and original names; config.json files in the
   Hugging Face layout and in make_golden.py's (tests/golden/<case>/meta.json "config"); clips of
   1, 3 and 4 channels; class-name files and manifests; torch.save checkpoints (zip archives
   of a protocol 2, 4 or 0 pickle and its storages) of the three variants, with ZIP64 records,
   a transposed weight, one storage shared by every tensor, F16/BF16/F64 and big-endian
   storages, Parameters, the original code's {"model_state": ...} layout and an os.system
   call in place of a tensor, each also as its bare data.pkl. The golden weights of
   tests/golden join the safetensors corpus as they are, and the committed checkpoints of
   tests/pytorch the torch corpus (run_fuzz.sh passes those folders too). */
#define _POSIX_C_SOURCE 200809L
#define TIMESFORMER_IMPLEMENTATION
#include "../../timesformer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *out_dir;
static int failures;

static void mkdirs(const char *sub) {
    char p[4096];
    snprintf(p, sizeof p, "%s", out_dir);
    if (mkdir(p, 0755) != 0 && errno != EEXIST) failures++;
    snprintf(p, sizeof p, "%s/%s", out_dir, sub);
    if (mkdir(p, 0755) != 0 && errno != EEXIST) failures++;
}

static void put_file(const char *sub, const char *name, const void *data, size_t n) {
    char p[4096];
    FILE *f;
    snprintf(p, sizeof p, "%s/%s/%s", out_dir, sub, name);
    f = fopen(p, "wb");
    if (!f || fwrite(data, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "make_seeds: cannot write %s\n", p);
        failures++;
    }
}

static void put_text(const char *sub, const char *name, const char *text) {
    put_file(sub, name, text, strlen(text));
}

/* ---- safetensors -------------------------------------------------------------------------- */
static tsf_config tiny_config(int attention) {
    tsf_config c;
    memset(&c, 0, sizeof c);
    c.image_size = 8, c.patch_size = 4, c.frames = 2, c.dim = 8, c.depth = 1, c.heads = 2;
    c.classes = 3, c.mlp_ratio = 2.0f, c.attention = attention;
    return c;
}

static unsigned short f32_to_f16(float v) { /* truncating; fine for seeds */
    unsigned int u, sign, e, m;
    int ex;
    memcpy(&u, &v, 4);
    sign = (u >> 16) & 0x8000u, e = (u >> 23) & 255u, m = u & 0x7FFFFFu;
    ex = (int)e - 127 + 15;
    if (e == 0 || ex <= 0) return (unsigned short)sign;
    if (ex >= 31) return (unsigned short)(sign | 0x7C00u);
    return (unsigned short)(sign | (unsigned)ex << 10 | m >> 13);
}

/* The original code's name of Hugging Face tensor hf. */
static void orig_name(const char *hf, char out[128]) {
    int f, l;
    for (f = 0; f < TSF_NUM_PARAMS; f++)
        for (l = 0; l < 64; l++) {
            char a[128], b[128];
            const char *p = tsf__param_table[f].hf, *q = tsf__param_table[f].orig;
            size_t n = 0, k = 0;
            for (; *p && n < 120; p++)
                if (p[0] == '%' && p[1] == 'd')
                    n += (size_t)snprintf(a + n, sizeof a - n, "%d", l), p++;
                else
                    a[n++] = *p;
            a[n] = 0;
            if (strcmp(a, hf) != 0) {
                if (!strstr(tsf__param_table[f].hf, "%d")) break;
                continue;
            }
            for (; *q && k < 120; q++)
                if (q[0] == '%' && q[1] == 'd')
                    k += (size_t)snprintf(b + k, sizeof b - k, "%d", l), q++;
                else
                    b[k++] = *q;
            b[k] = 0;
            memcpy(out, b, k + 1);
            return;
        }
    snprintf(out, 128, "%s", hf);
}

/* m's tensors as safetensors with dtype 0 F32, 1 F16, 2 BF16, 3 F64, original names when
   orig, and __metadata__ only when meta is not NULL. */
static void put_raw(const char *name, const tsf_model *m, int dtype, int orig, const char *meta) {
    static const char *const dt[4] = {"F32", "F16", "BF16", "F64"};
    static const int es[4] = {4, 2, 2, 8};
    char hdr[65536], tname[96], nm[128];
    unsigned char *buf, *data;
    size_t hl = 0, off = 0, total = 0, pad;
    int nt = tsf_model_num_tensors(m), i, d, ndim;
    long long shape[4];
    float *p;
    for (i = 0; i < nt; i++) {
        size_t numel = 1;
        tsf_model_tensor(m, i, tname, &ndim, shape, &p);
        for (d = 0; d < ndim; d++) numel *= (size_t)shape[d];
        total += numel * (size_t)es[dtype];
    }
    data = (unsigned char *)malloc(total + 1);
    if (!data) {
        failures++;
        return;
    }
    hl += (size_t)snprintf(hdr + hl, sizeof hdr - hl, "{");
    for (i = 0; i < nt; i++) {
        size_t numel = 1, k;
        tsf_model_tensor(m, i, tname, &ndim, shape, &p);
        if (orig)
            orig_name(tname, nm);
        else
            snprintf(nm, sizeof nm, "%s", tname);
        hl += (size_t)snprintf(hdr + hl, sizeof hdr - hl, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[",
                               i ? "," : "", nm, dt[dtype]);
        for (d = 0; d < ndim; d++) {
            hl += (size_t)snprintf(hdr + hl, sizeof hdr - hl, "%s%lld", d ? "," : "", shape[d]);
            numel *= (size_t)shape[d];
        }
        hl += (size_t)snprintf(hdr + hl, sizeof hdr - hl, "],\"data_offsets\":[%zu,%zu]}", off,
                               off + numel * (size_t)es[dtype]);
        for (k = 0; k < numel; k++) {
            unsigned char *o = data + off + k * (size_t)es[dtype];
            unsigned int u;
            if (dtype == 0) {
                memcpy(&u, &p[k], 4);
                o[0] = (unsigned char)u, o[1] = (unsigned char)(u >> 8);
                o[2] = (unsigned char)(u >> 16), o[3] = (unsigned char)(u >> 24);
            } else if (dtype == 1) {
                u = f32_to_f16(p[k]);
                o[0] = (unsigned char)u, o[1] = (unsigned char)(u >> 8);
            } else if (dtype == 2) {
                memcpy(&u, &p[k], 4);
                o[0] = (unsigned char)(u >> 16), o[1] = (unsigned char)(u >> 24);
            } else {
                double v = (double)p[k];
                unsigned long long w;
                int b;
                memcpy(&w, &v, 8);
                for (b = 0; b < 8; b++) o[b] = (unsigned char)(w >> (8 * b));
            }
        }
        off += numel * (size_t)es[dtype];
    }
    if (meta) hl += (size_t)snprintf(hdr + hl, sizeof hdr - hl, ",\"__metadata__\":%s", meta);
    hl += (size_t)snprintf(hdr + hl, sizeof hdr - hl, "}");
    for (pad = hl; pad % 8; pad++) hdr[pad] = ' ';
    buf = (unsigned char *)malloc(8 + pad + total);
    if (!buf || hl >= sizeof hdr - 8) {
        free(data), free(buf), failures++;
        return;
    }
    for (i = 0; i < 8; i++) buf[i] = (unsigned char)((unsigned long long)pad >> (8 * i));
    memcpy(buf + 8, hdr, pad);
    memcpy(buf + 8 + pad, data, total);
    put_file("safetensors", name, buf, 8 + pad + total);
    { /* a seed the reader refuses would only teach the fuzzer the first error */
        tsf_model m2;
        tsf_error err;
        const tsf_config *given = meta && strstr(meta, "config") ? NULL : &m->cfg;
        if (tsf_model_load_memory(&m2, buf, 8 + pad + total, given, 0, &err) != TSF_OK) {
            fprintf(stderr, "make_seeds: %s does not load: %s\n", name, err.msg);
            failures++;
        }
        tsf_model_free(&m2);
    }
    free(buf), free(data);
}

static void seeds_safetensors(void) {
    static const char *const labels[3] = {"left", "right \"quoted\"", "\xc3\xa9t\xc3\xa9"};
    char path[4096], name[64];
    int v;
    mkdirs("safetensors");
    for (v = 0; v < 3; v++) {
        tsf_model m;
        tsf_train_state ts;
        tsf_config c = tiny_config(v);
        tsf_error err;
        if (tsf_model_init(&m, &c, 0, 1u + (unsigned)v) != TSF_OK) {
            failures++;
            continue;
        }
        if (v == 0) tsf_model_set_labels(&m, labels);
        snprintf(path, sizeof path, "%s/safetensors/model_%s.safetensors", out_dir,
                 tsf_attention_name(v));
        if (tsf_model_save(&m, path, &err) != TSF_OK) failures++;
        memset(&ts, 0, sizeof ts);
        ts.step = 5, ts.epoch = 1, ts.epoch_step = 2;
        tsf_rng_seed(&ts.data_rng, 9);
        snprintf(path, sizeof path, "%s/safetensors/checkpoint_%s.safetensors", out_dir,
                 tsf_attention_name(v));
        if (tsf_model_train_init(&m) != TSF_OK || tsf_checkpoint_save(&m, &ts, path, &err))
            failures++;
        { /* both files load */
            tsf_model m2;
            tsf_train_state ts2;
            if (tsf_checkpoint_load(&m2, &ts2, path, 0, &err) != TSF_OK) failures++;
            tsf_model_free(&m2);
            snprintf(path, sizeof path, "%s/safetensors/model_%s.safetensors", out_dir,
                     tsf_attention_name(v));
            if (tsf_model_load(&m2, path, 0, &err) != TSF_OK) failures++;
            tsf_model_free(&m2);
        }
        snprintf(name, sizeof name, "raw_f32_hf_%d.safetensors", v);
        put_raw(name, &m, 0, 0, NULL);
        snprintf(name, sizeof name, "raw_f16_orig_%d.safetensors", v);
        put_raw(name, &m, 1, 1, NULL);
        if (v == 0) {
            put_raw("raw_bf16_hf.safetensors", &m, 2, 0, "{\"format\":\"pt\"}");
            put_raw("raw_f64_orig.safetensors", &m, 3, 1, NULL);
            /* __metadata__ in Hugging Face keys, with escapes in the class names */
            put_raw("meta_hf_keys.safetensors", &m, 0, 0,
                    "{\"format\":\"pt\",\"config\":\"{\\\"image_size\\\": 8, "
                    "\\\"patch_size\\\": 4, \\\"num_frames\\\": 2, \\\"hidden_size\\\": 8, "
                    "\\\"num_hidden_layers\\\": 1, \\\"num_attention_heads\\\": 2, "
                    "\\\"intermediate_size\\\": 16, \\\"num_labels\\\": 3, "
                    "\\\"attention_type\\\": \\\"divided_space_time\\\", "
                    "\\\"layer_norm_eps\\\": 1e-06, \\\"qkv_bias\\\": true, \\\"mean\\\": "
                    "[0.5, 0.5, 0.5], \\\"std\\\": [0.5, 0.5, 0.5], \\\"channel_order\\\": "
                    "\\\"BGR\\\"}\",\"labels\":\"{\\\"id2label\\\": {\\\"0\\\": "
                    "\\\"\\\\u00e9t\\\\u00e9\\\", \\\"1\\\": \\\"b\\\\\\\"q\\\", "
                    "\\\"2\\\": \\\"\\\\ud83d\\\\ude00\\\"}}\"}");
        }
        tsf_model_free(&m);
    }
}

/* ---- config.json ------------------------------------------------------------------------- */
static void seeds_config(void) {
    mkdirs("config");
    put_text("config", "hf_k400.json",
             "{\n  \"architectures\": [\"TimesformerForVideoClassification\"],\n"
             "  \"attention_type\": \"divided_space_time\",\n  \"hidden_act\": \"gelu\",\n"
             "  \"hidden_dropout_prob\": 0.0,\n  \"hidden_size\": 768,\n"
             "  \"id2label\": {\"0\": \"abseiling\", \"1\": \"air drumming\", \"2\": \"answering "
             "questions\"},\n  \"image_size\": 224,\n  \"initializer_range\": 0.02,\n"
             "  \"intermediate_size\": 3072,\n  \"label2id\": {\"abseiling\": 0},\n"
             "  \"layer_norm_eps\": 1e-06,\n  \"model_type\": \"timesformer\",\n"
             "  \"num_attention_heads\": 12,\n  \"num_channels\": 3,\n  \"num_frames\": 8,\n"
             "  \"num_hidden_layers\": 12,\n  \"patch_size\": 16,\n  \"qkv_bias\": true,\n"
             "  \"torch_dtype\": \"float32\",\n  \"transformers_version\": \"4.30.0\"\n}\n");
    put_text("config", "golden_meta_config.json",
             "{\"img_size\": 16, \"patch_size\": 4, \"in_chans\": 3, \"num_frames\": 3, "
             "\"embed_dim\": 24, \"depth\": 2, \"num_heads\": 3, \"mlp_ratio\": 2.0, "
             "\"num_classes\": 5, \"attention_type\": \"divided_space_time\", \"ln_eps\": 1e-06, "
             "\"qkv_bias\": true}");
    put_text("config", "saved_metadata.json",
             "{\"img_size\": 8, \"patch_size\": 4, \"in_chans\": 3, \"num_frames\": 2, "
             "\"embed_dim\": 8, \"depth\": 1, \"num_heads\": 2, \"mlp_ratio\": 2, "
             "\"num_classes\": 3, \"attention_type\": \"joint_space_time\", \"ln_eps\": 1e-06, "
             "\"qkv_bias\": false, \"mean\": [0.485, 0.456, 0.406], \"std\": [0.229, 0.224, "
             "0.225], \"channel_order\": \"BGR\"}");
    put_text("config", "labels_array.json",
             "{\"hidden_size\": 64, \"num_attention_heads\": 4, \"num_hidden_layers\": 2, "
             "\"num_labels\": 2, \"id2label\": [\"a\\u00e9\\ud83d\\ude00\", \"b\\n\\t\\\\\"], "
             "\"attention_type\": \"space_only\"}");
    put_text("config", "minimal.json", "{\"num_labels\": 4}");
}

/* ---- clips -------------------------------------------------------------------------------- */
static void put_clip(const char *name, int T, int H, int W, int C, float fps, int label,
                     long trim) {
    tsf_clip_header h;
    size_t n = (size_t)T * H * W * C, i;
    unsigned char *buf = (unsigned char *)malloc(TSF_CLIP_HEADER_BYTES + n);
    h.T = T, h.H = H, h.W = W, h.C = C, h.fps = fps, h.label = label;
    if (!buf || tsf_clip_header_encode(buf, &h) != TSF_OK) {
        free(buf), failures++;
        return;
    }
    for (i = 0; i < n; i++) buf[TSF_CLIP_HEADER_BYTES + i] = (unsigned char)(i * 37 + i / 7);
    put_file("clip", name, buf, TSF_CLIP_HEADER_BYTES + n - (size_t)trim);
    free(buf);
}

static void seeds_clip(void) {
    mkdirs("clip");
    put_clip("rgb_3x4x5.clip", 3, 4, 5, 3, 30.0f, 2, 0);
    put_clip("gray_1x1x1.clip", 1, 1, 1, 1, 0.0f, -1, 0);
    put_clip("rgba_8x6x10.clip", 8, 6, 10, 4, 0.0f, -1, 0);
    put_clip("rgb_20x3x3_fps.clip", 20, 3, 3, 3, 7.5f, 0, 0);
    put_clip("rgb_2x12x16.clip", 2, 12, 16, 3, 15.0f, 1, 0);
    put_clip("truncated.clip", 3, 4, 5, 3, 30.0f, 2, 7);
}

/* ---- class names and manifests ---------------------------------------------------------- */
static void put_pair(const char *name, const char *classes, const char *manifest) {
    size_t a = strlen(classes), b = strlen(manifest);
    char *buf = (char *)malloc(a + b + 1);
    if (!buf) {
        failures++;
        return;
    }
    memcpy(buf, classes, a), buf[a] = 0, memcpy(buf + a + 1, manifest, b);
    put_file("manifest", name, buf, a + 1 + b);
    free(buf);
}

static void seeds_manifest(void) {
    mkdirs("manifest");
    put_pair("names.txt", "left\nright\nup\n",
             "path,label\nleft/v1/v1.clip,left\nright/v2/v2.clip,right\n/abs/v3.clip,2\n");
    put_pair("bom_crlf.txt", "\xEF\xBB\xBF  alpha \r\n\r\nbeta\r\n",
             "\xEF\xBB\xBFPATH , LABEL\r\n a,b/c.clip , beta\r\n\r\nd.clip,0\r\n");
    put_text("manifest", "indices.txt", "x/1.clip,0\nx/2.clip,1\ny/3.clip,10\n");
    put_text("manifest", "dup.txt", "a.clip,0\na.clip,1\n");
    put_pair("unknown.txt", "a\nb\n", "p.clip,c\n");
}

/* ---- PyTorch checkpoints (torch.save zip archives) ---------------------------------------- */
typedef struct bytes { /* a growing byte string */
    unsigned char *p;
    size_t n, cap;
} bytes;

static void add(bytes *b, const void *s, size_t n) {
    if (b->n + n > b->cap) {
        size_t cap = 2 * (b->n + n) + 256;
        unsigned char *q = (unsigned char *)realloc(b->p, cap);
        if (!q) {
            failures++;
            return;
        }
        b->p = q, b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
}

static void add_le(bytes *b, unsigned long long v, int n) { /* little-endian, n bytes */
    unsigned char c[8];
    int i;
    for (i = 0; i < n; i++) c[i] = (unsigned char)(v >> (8 * i));
    add(b, c, (size_t)n);
}

static void add_s(bytes *b, const char *s) { add(b, s, strlen(s)); }

/* One value of dtype 0 F32, 1 F16, 2 BF16, 3 F64, little-endian or big-endian. */
static void add_value(bytes *b, float v, int dtype, int big) {
    static const int es[4] = {4, 2, 2, 8};
    unsigned long long u;
    unsigned int w;
    unsigned char c[8];
    int i, n = es[dtype];
    if (dtype == 3) {
        double d = (double)v;
        memcpy(&u, &d, 8);
    } else {
        memcpy(&w, &v, 4);
        u = dtype == 0 ? w : dtype == 1 ? f32_to_f16(v) : w >> 16;
    }
    for (i = 0; i < n; i++) c[big ? n - 1 - i : i] = (unsigned char)(u >> (8 * i));
    add(b, c, (size_t)n);
}

/* A pickle writer in three dialects: protocol 2 as torch.save writes it (BINUNICODE, GLOBAL,
   BINPUT/BINGET, TUPLE1-3), protocol 4 (FRAME, SHORT_BINUNICODE, STACK_GLOBAL, MEMOIZE) and
   the text opcodes of protocol 0 (UNICODE, INT, PUT/GET, TUPLE from a MARK). Strings and
   globals are remembered in the memo and fetched again, as Python's pickler does. */
typedef struct pickler {
    bytes b;
    int proto, memo;
    int od, rebuild, param, storage, cpu, type; /* memo ids of repeated values, or -1 */
} pickler;

static void pk_op(pickler *k, int op) {
    unsigned char c = (unsigned char)op;
    add(&k->b, &c, 1);
}

static int pk_put(pickler *k) { /* memoize the top of the stack; its memo id */
    char t[32];
    if (k->proto == 0)
        snprintf(t, sizeof t, "p%d\n", k->memo), add_s(&k->b, t);
    else if (k->proto == 4)
        pk_op(k, 0x94);
    else if (k->memo < 256)
        pk_op(k, 'q'), add_le(&k->b, (unsigned)k->memo, 1);
    else
        pk_op(k, 'r'), add_le(&k->b, (unsigned)k->memo, 4);
    return k->memo++;
}

static void pk_get(pickler *k, int id) {
    char t[32];
    if (k->proto == 0)
        snprintf(t, sizeof t, "g%d\n", id), add_s(&k->b, t);
    else if (id < 256)
        pk_op(k, 'h'), add_le(&k->b, (unsigned)id, 1);
    else
        pk_op(k, 'j'), add_le(&k->b, (unsigned)id, 4);
}

static int pk_str(pickler *k, const char *s) {
    size_t n = strlen(s);
    if (k->proto == 0)
        pk_op(k, 'V'), add(&k->b, s, n), pk_op(k, '\n');
    else if (k->proto == 4 && n < 256)
        pk_op(k, 0x8c), add_le(&k->b, n, 1), add(&k->b, s, n);
    else
        pk_op(k, 'X'), add_le(&k->b, n, 4), add(&k->b, s, n);
    return pk_put(k);
}

static void pk_int(pickler *k, long long v) {
    char t[40];
    if (k->proto == 0) {
        snprintf(t, sizeof t, v > 2147483647 ? "L%lldL\n" : "I%lld\n", v);
        add_s(&k->b, t);
    } else if (v >= 0 && v < 256) {
        pk_op(k, 'K'), add_le(&k->b, (unsigned long long)v, 1);
    } else if (v >= 0 && v < 65536) {
        pk_op(k, 'M'), add_le(&k->b, (unsigned long long)v, 2);
    } else if (v >= -2147483647 - 1 && v <= 2147483647) {
        pk_op(k, 'J'), add_le(&k->b, (unsigned long long)v, 4);
    } else {
        pk_op(k, 0x8a), add_le(&k->b, 8, 1), add_le(&k->b, (unsigned long long)v, 8);
    }
}

static void pk_bool(pickler *k, int v) {
    if (k->proto == 0)
        add_s(&k->b, v ? "I01\n" : "I00\n");
    else
        pk_op(k, v ? 0x88 : 0x89);
}

/* A global, written once and fetched from the memo after that (*id: its memo id or -1). */
static void pk_global(pickler *k, int *id, const char *module, const char *name) {
    if (*id >= 0) {
        pk_get(k, *id);
        return;
    }
    if (k->proto == 4) {
        pk_str(k, module), pk_str(k, name), pk_op(k, 0x93);
    } else {
        pk_op(k, 'c'), add_s(&k->b, module), pk_op(k, '\n'), add_s(&k->b, name), pk_op(k, '\n');
    }
    *id = pk_put(k);
}

static void pk_string_once(pickler *k, int *id, const char *s) {
    if (*id >= 0)
        pk_get(k, *id);
    else
        *id = pk_str(k, s);
}

/* A tuple of n values: pk_tuple_begin before them (1: it wrote a MARK), pk_tuple_end after. */
static int pk_tuple_begin(pickler *k, int n) {
    if (k->proto != 0 && n <= 3) return 0;
    pk_op(k, '(');
    return 1;
}

static void pk_tuple_end(pickler *k, int n, int marked) {
    pk_op(k, marked ? 't' : n == 0 ? ')' : 0x84 + n);
    pk_put(k);
}

static void pk_ordered_dict(pickler *k) { /* collections.OrderedDict() */
    pk_global(k, &k->od, "collections", "OrderedDict");
    pk_tuple_end(k, 0, pk_tuple_begin(k, 0));
    pk_op(k, 'R'), pk_put(k);
}

/* One tensor, as torch.save pickles it: _rebuild_tensor_v2(storage, offset, sizes, strides,
   False, OrderedDict()), the storage a persistent id ('storage', torch.<type>, key, 'cpu',
   elements); inside _rebuild_parameter(tensor, True, OrderedDict()) when param. */
static void pk_tensor(pickler *k, const char *type, const char *key, long long elements,
                      long long offset, int ndim, const long long *shape, const long long *stride,
                      int param) {
    int d, m;
    if (param) pk_global(k, &k->param, "torch._utils", "_rebuild_parameter"), pk_op(k, '(');
    pk_global(k, &k->rebuild, "torch._utils", "_rebuild_tensor_v2");
    pk_op(k, '(');
    pk_op(k, '(');
    pk_string_once(k, &k->storage, "storage");
    pk_global(k, &k->type, "torch", type);
    pk_str(k, key);
    pk_string_once(k, &k->cpu, "cpu");
    pk_int(k, elements);
    pk_tuple_end(k, 5, 1);
    pk_op(k, 'Q');
    pk_int(k, offset);
    m = pk_tuple_begin(k, ndim);
    for (d = 0; d < ndim; d++) pk_int(k, shape[d]);
    pk_tuple_end(k, ndim, m);
    m = pk_tuple_begin(k, ndim);
    for (d = 0; d < ndim; d++) pk_int(k, stride[d]);
    pk_tuple_end(k, ndim, m);
    pk_bool(k, 0);
    pk_ordered_dict(k);
    pk_tuple_end(k, 6, 1);
    pk_op(k, 'R'), pk_put(k);
    if (param) {
        pk_bool(k, 1);
        pk_ordered_dict(k);
        pk_tuple_end(k, 3, 1);
        pk_op(k, 'R'), pk_put(k);
    }
}

/* A zip archive as torch.save (PyTorch 1.13) writes one: stored entries under one folder,
   each local header padded ("FB" extra field) so that its data starts at a multiple of 64,
   a data descriptor after each; then the central directory and the end record. zip64 adds
   the ZIP64 end record and locator, with the classic end record's fields at their maximum
   and every central entry's sizes and offset in a ZIP64 extra field; comment >= 0 appends a
   one-byte archive comment. */
typedef struct zfile {
    char name[160];
    bytes data;
} zfile;

static unsigned int crc32_of(const unsigned char *p, size_t n) {
    unsigned int c = 0xFFFFFFFFu;
    size_t i;
    int b;
    for (i = 0; i < n; i++) {
        c ^= p[i];
        for (b = 0; b < 8; b++) c = c & 1 ? (c >> 1) ^ 0xEDB88320u : c >> 1;
    }
    return ~c;
}

static void zip_build(bytes *z, const zfile *f, int nf, int zip64, int comment) {
    bytes cd = {NULL, 0, 0};
    unsigned long long *head = (unsigned long long *)malloc((size_t)nf * sizeof *head + 1);
    unsigned long long cdoff, eocd64;
    int i;
    if (!head) {
        failures++;
        return;
    }
    for (i = 0; i < nf; i++) {
        size_t nl = strlen(f[i].name), pad = (64 - (z->n + 30 + nl + 4) % 64) % 64;
        head[i] = z->n;
        add_s(z, "PK\3\4"), add_le(z, 0, 2), add_le(z, 0x0808, 2), add_le(z, 0, 2); /* method */
        add_le(z, 0, 4), add_le(z, 0, 4), add_le(z, 0, 4), add_le(z, 0, 4); /* time, crc, sizes */
        add_le(z, nl, 2), add_le(z, 4 + pad, 2), add(z, f[i].name, nl);
        add_s(z, "FB"), add_le(z, pad, 2);
        while (pad--) add_s(z, "Z");
        add(z, f[i].data.p, f[i].data.n);
        add_s(z, "PK\7\10"), add_le(z, crc32_of(f[i].data.p, f[i].data.n), 4);
        add_le(z, f[i].data.n, 4), add_le(z, f[i].data.n, 4);
    }
    cdoff = z->n;
    for (i = 0; i < nf; i++) {
        size_t nl = strlen(f[i].name);
        unsigned long long big = zip64 ? 0xFFFFFFFFu : 0;
        add_s(&cd, "PK\1\2"), add_le(&cd, zip64 ? 45 : 0, 2), add_le(&cd, zip64 ? 45 : 0, 2);
        add_le(&cd, 0x0808, 2), add_le(&cd, 0, 2), add_le(&cd, 0, 4);
        add_le(&cd, crc32_of(f[i].data.p, f[i].data.n), 4);
        add_le(&cd, zip64 ? big : f[i].data.n, 4), add_le(&cd, zip64 ? big : f[i].data.n, 4);
        add_le(&cd, nl, 2), add_le(&cd, zip64 ? 28 : 0, 2), add_le(&cd, 0, 2); /* comment */
        add_le(&cd, 0, 2), add_le(&cd, 0, 2), add_le(&cd, 0, 4); /* disk, attributes */
        add_le(&cd, zip64 ? big : head[i], 4), add(&cd, f[i].name, nl);
        if (zip64) { /* uncompressed size, compressed size, local header offset */
            add_le(&cd, 1, 2), add_le(&cd, 24, 2);
            add_le(&cd, f[i].data.n, 8), add_le(&cd, f[i].data.n, 8), add_le(&cd, head[i], 8);
        }
    }
    add(z, cd.p, cd.n);
    eocd64 = z->n;
    if (zip64) {
        add_s(z, "PK\6\6"), add_le(z, 44, 8), add_le(z, 45, 2), add_le(z, 45, 2);
        add_le(z, 0, 4), add_le(z, 0, 4), add_le(z, (unsigned)nf, 8), add_le(z, (unsigned)nf, 8);
        add_le(z, cd.n, 8), add_le(z, cdoff, 8);
        add_s(z, "PK\6\7"), add_le(z, 0, 4), add_le(z, eocd64, 8), add_le(z, 1, 4);
    }
    add_s(z, "PK\5\6"), add_le(z, 0, 2), add_le(z, 0, 2);
    add_le(z, zip64 ? 0xFFFF : (unsigned)nf, 2), add_le(z, zip64 ? 0xFFFF : (unsigned)nf, 2);
    add_le(z, zip64 ? 0xFFFFFFFFu : cd.n, 4), add_le(z, zip64 ? 0xFFFFFFFFu : cdoff, 4);
    add_le(z, comment >= 0, 2);
    if (comment >= 0) add_le(z, (unsigned)comment, 1);
    free(cd.p), free(head);
}

/* How a seed checkpoint differs from a plain torch.save(model.state_dict()). */
typedef struct pt_seed {
    int proto, dtype; /* pickle dialect 0, 2, 4; storages 0 F32, 1 F16, 2 BF16, 3 F64 */
    int orig;         /* the original code's names, "model." + ..., under "model_state" */
    int shared;       /* every tensor a view of one storage */
    int strided;      /* the MLP's first weight saved transposed (strides (1, rows)) */
    int big;          /* byteorder "big" */
    int param;        /* Parameters (_rebuild_parameter) rather than tensors */
    int metadata;     /* the state dict's _metadata (a BUILD after the items) */
    int evil;         /* classifier.bias made by os.system(...) */
    int dup;          /* the last tensor's name twice (a dict's items may repeat a key) */
    int zip64, comment;
} pt_seed;

/* The data.pkl of m's tensors as o asks, and the storages; returns the number of storages. */
static int pt_pickle(pickler *k, zfile *st, const tsf_model *m, const pt_seed *o) {
    static const char *const types[4] = {"FloatStorage", "HalfStorage", "BFloat16Storage",
                                         "DoubleStorage"};
    int nt = tsf_model_num_tensors(m), i, d, ndim, ns = 0, sd, outer;
    long long shape[4], stride[4], at = 0, total = 0;
    char tname[96], name[160], key[16];
    float *p;
    memset(k, 0, sizeof *k);
    k->proto = o->proto;
    k->od = k->rebuild = k->param = k->storage = k->cpu = k->type = -1;
    pk_op(k, 0x80), add_le(&k->b, (unsigned)(o->proto ? o->proto : 2), 1);
    if (o->proto == 4) pk_op(k, 0x95), add_le(&k->b, 0, 8); /* FRAME: a length hint only */
    if (o->orig) { /* {"epoch": 3, "model_state": ..., "optimizer_state": ..., "cfg": ...} */
        pk_op(k, '}'), pk_put(k), pk_op(k, '(');
        pk_str(k, "epoch"), pk_int(k, 3), pk_str(k, "model_state");
    }
    for (i = 0; i < nt; i++) {
        long long n = 1;
        tsf_model_tensor(m, i, tname, &ndim, shape, &p);
        for (d = 0; d < ndim; d++) n *= shape[d];
        total += n;
    }
    pk_ordered_dict(k);
    sd = k->proto != 0;
    if (sd) pk_op(k, '(');
    for (i = 0; i < nt; i++) {
        long long n = 1, e;
        tsf_model_tensor(m, i, tname, &ndim, shape, &p);
        for (d = ndim - 1; d >= 0; d--) stride[d] = n, n *= shape[d];
        if (o->orig)
            orig_name(tname, name + 6), memcpy(name, "model.", 6);
        else
            snprintf(name, sizeof name, "%s", tname);
        pk_str(k, name);
        if (o->evil && strcmp(tname, "classifier.bias") == 0) { /* os.system("...") */
            outer = -1;
            pk_global(k, &outer, "os", "system");
            outer = pk_tuple_begin(k, 1);
            pk_str(k, "touch /tmp/tsf_fuzz_seed_was_run");
            pk_tuple_end(k, 1, outer);
            pk_op(k, 'R'), pk_put(k);
        } else {
            int transposed = o->strided && ndim == 2 && strstr(tname, "intermediate.dense.weight");
            zfile *s;
            if (!o->shared || ns == 0) {
                s = &st[ns];
                memset(s, 0, sizeof *s);
                snprintf(key, sizeof key, "%d", ns++);
            }
            s = &st[ns - 1];
            if (transposed) stride[0] = 1, stride[1] = shape[0];
            pk_tensor(k, types[o->dtype], key, o->shared ? total : n, o->shared ? at : 0, ndim,
                      shape, stride, o->param);
            if (o->dup && i == nt - 1) { /* again, a view of the same storage */
                if (!sd) pk_op(k, 's');
                pk_str(k, name);
                pk_tensor(k, types[o->dtype], key, o->shared ? total : n, o->shared ? at : 0, ndim,
                          shape, stride, o->param);
            }
            /* storage element e is (e % rows, e / rows) of a transposed weight */
            for (e = 0; e < n; e++)
                add_value(&s->data, transposed ? p[(e % shape[0]) * shape[1] + e / shape[0]] : p[e],
                          o->dtype, o->big);
            at += n;
        }
        if (!sd) pk_op(k, 's'); /* protocol 0: SETITEM after each */
    }
    if (sd) pk_op(k, 'u');
    if (o->metadata) { /* {"_metadata": OrderedDict({"": {"version": 1}})}, then BUILD */
        pk_op(k, '}'), pk_put(k), pk_str(k, "_metadata"), pk_ordered_dict(k);
        pk_op(k, '('), pk_str(k, ""), pk_op(k, '}'), pk_put(k), pk_str(k, "version"), pk_int(k, 1);
        pk_op(k, 's'), pk_op(k, 'u'), pk_op(k, 's'), pk_op(k, 'b');
    }
    if (o->orig) { /* the rest of the original code's checkpoint */
        pk_str(k, "optimizer_state"), pk_op(k, '}'), pk_put(k), pk_op(k, '(');
        pk_str(k, "state"), pk_op(k, '}'), pk_put(k), pk_str(k, "param_groups");
        pk_op(k, ']'), pk_put(k), pk_op(k, '}'), pk_put(k), pk_op(k, '(');
        pk_str(k, "lr"), pk_op(k, 'G'), add_s(&k->b, "\77\224\172\341\107\256\24\173");
        pk_str(k, "nesterov"), pk_bool(k, 1), pk_str(k, "params"), pk_op(k, ']'), pk_put(k);
        pk_op(k, '('), pk_int(k, 0), pk_int(k, 1), pk_int(k, 4000000000LL), pk_op(k, 'e');
        pk_op(k, 'u'), pk_op(k, 'a'), pk_op(k, 'u');
        pk_str(k, "cfg"), pk_str(k, "TRAIN:\n  ENABLE: True\nMODEL:\n  NUM_CLASSES: 2\n");
        pk_op(k, 'u');
    }
    pk_op(k, '.');
    return ns;
}

/* Write seed `name`, a checkpoint of m, and check that the reader takes it (given: the config
   the harness gives, NULL to infer it) or, for the hostile ones, refuses it. */
static void put_torch(const char *name, const tsf_model *m, const pt_seed *o,
                      const tsf_config *given) {
    zfile f[64];
    pickler k;
    bytes z = {NULL, 0, 0};
    char folder[64];
    const char *refused = o->evil ? "os.system" : o->dup ? "duplicate tensor" : NULL;
    int ns, nf = 0, i;
    tsf_model m2;
    tsf_error err;
    tsf_status st;
    snprintf(folder, sizeof folder, "%.*s", (int)(strcspn(name, ".")), name);
    ns = pt_pickle(&k, f + 2, m, o);
    memset(&f[0], 0, sizeof f[0]), memset(&f[1], 0, sizeof f[1]);
    snprintf(f[0].name, sizeof f[0].name, "%s/data.pkl", folder), f[0].data = k.b;
    snprintf(f[1].name, sizeof f[1].name, "%s/byteorder", folder);
    add_s(&f[1].data, o->big ? "big" : "little");
    for (i = 0; i < ns; i++) snprintf(f[2 + i].name, sizeof f[2 + i].name, "%s/data/%d", folder, i);
    nf = 2 + ns;
    memset(&f[nf], 0, sizeof f[nf]);
    snprintf(f[nf].name, sizeof f[nf].name, "%s/version", folder), add_s(&f[nf].data, "3\n");
    nf++;
    zip_build(&z, f, nf, o->zip64, o->comment);
    put_file("torch", name, z.p, z.n);
    { /* the bare pickle too, for the harness's run of the pickle machine alone */
        char pkl[96];
        snprintf(pkl, sizeof pkl, "%s.pkl", folder);
        put_file("torch", pkl, k.b.p, k.b.n);
    }
    st = tsf_model_load_memory(&m2, z.p, z.n, given, 1, &err);
    if (refused ? st == TSF_OK || !strstr(err.msg, refused) : st != TSF_OK) {
        fprintf(stderr, "make_seeds: %s: %s (%s)\n", name, tsf_status_string(st), err.msg);
        failures++;
    } else if (st == TSF_OK && (o->dtype == 0 || o->dtype == 3) &&
               (m2.param_floats != m->param_floats ||
                memcmp(m2.param_memory, m->param_memory, m->param_floats * sizeof(float)) != 0)) {
        fprintf(stderr, "make_seeds: %s reads other values than were written\n", name);
        failures++;
    }
    tsf_model_free(&m2);
    for (i = 0; i < nf; i++) free(f[i].data.p);
    free(z.p);
}

static void seeds_torch(void) {
    static const pt_seed plain = {2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -1};
    tsf_model m;
    tsf_config c;
    pt_seed o;
    char name[64];
    int v;
    mkdirs("torch");
    for (v = 0; v < 3; v++) { /* the archive comment's byte picks the harness's config */
        c = tiny_config(v);
        if (tsf_model_init(&m, &c, 0, 11u + (unsigned)v) != TSF_OK) {
            failures++;
            continue;
        }
        o = plain, o.comment = 1 + v, o.metadata = v == 0;
        snprintf(name, sizeof name, "state_%s.pt", tsf_attention_name(v));
        put_torch(name, &m, &o, &c);
        if (v == 0) {
            o = plain, o.comment = 1, o.zip64 = 1;
            put_torch("zip64.pt", &m, &o, &c);
            o = plain, o.comment = 1, o.strided = 1;
            put_torch("strided.pt", &m, &o, &c);
            o = plain, o.comment = 1, o.shared = 1;
            put_torch("shared.pt", &m, &o, &c);
            o = plain, o.comment = 1, o.dtype = 1;
            put_torch("half.pt", &m, &o, &c);
            o = plain, o.comment = 1, o.dtype = 3, o.big = 1;
            put_torch("double_big.pt", &m, &o, &c);
            o = plain, o.comment = 1, o.evil = 1;
            put_torch("os_system.pt", &m, &o, &c);
            o = plain, o.comment = 1, o.dup = 1;
            put_torch("duplicate.pt", &m, &o, &c);
        } else if (v == 1) {
            o = plain, o.comment = 2, o.dtype = 2, o.proto = 4, o.param = 1;
            put_torch("bf16_proto4.pt", &m, &o, &c);
        } else {
            o = plain, o.comment = 3, o.proto = 0, o.shared = 1, o.strided = 1;
            put_torch("proto0.pt", &m, &o, &c);
        }
        tsf_model_free(&m);
    }
    /* the original code's checkpoint, width 64: its config comes from the shapes */
    memset(&c, 0, sizeof c);
    c.image_size = 4, c.patch_size = 2, c.frames = 8, c.dim = 64, c.depth = 1, c.heads = 1;
    c.classes = 2, c.mlp_ratio = 0.25f, c.attention = TSF_ATTN_SPACE;
    if (tsf_model_init(&m, &c, 0, 17u) != TSF_OK) {
        failures++;
        return;
    }
    o = plain, o.orig = 1;
    put_torch("model_state.pyth", &m, &o, NULL);
    tsf_model_free(&m);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: make_seeds OUT_DIR\n");
        return 2;
    }
    out_dir = argv[1];
    seeds_safetensors();
    seeds_config();
    seeds_clip();
    seeds_manifest();
    seeds_torch();
    if (failures) fprintf(stderr, "make_seeds: %d failures\n", failures);
    return failures != 0;
}
