/* make_seeds.c - writes the seed corpora of the fuzz harnesses into OUT/<harness>/.

   Build:  cc -std=c99 -O1 -I. tests/fuzz/make_seeds.c -o build/make_seeds -lm
   Run:    build/make_seeds OUT      (tests/fuzz/run_fuzz.sh and tests/run_all.sh do)

   The seeds are the kinds of files the tests use, made small so that the fuzzer mutates
   them quickly: tiny models of the three variants written by tsf_model_save and
   tsf_checkpoint_save (config and labels in __metadata__), the same tensors without metadata
   in F32, F16, BF16 and F64 with Hugging Face and original names; config.json files in the
   Hugging Face layout and in tsf_ref.py's (tests/golden/<case>/meta.json "config"); clips of
   1, 3 and 4 channels; class-name files and manifests. The golden weights of tests/golden
   join the safetensors corpus as they are (run_fuzz.sh passes that folder too). */
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
            const char *p = tsf__names[f].hf, *q = tsf__names[f].orig;
            size_t n = 0, k = 0;
            for (; *p && n < 120; p++)
                if (p[0] == '%' && p[1] == 'd')
                    n += (size_t)snprintf(a + n, sizeof a - n, "%d", l), p++;
                else
                    a[n++] = *p;
            a[n] = 0;
            if (strcmp(a, hf) != 0) {
                if (!strstr(tsf__names[f].hf, "%d")) break;
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
    if (failures) fprintf(stderr, "make_seeds: %d failures\n", failures);
    return failures != 0;
}
