#!/usr/bin/env bash
# test_cli_classify.sh - end-to-end tests of `tsf classify` and `tsf attention`.
#
# A small C program compiled against timesformer.h writes tiny models of the five attention
# schemes (tsf_model_init + tsf_model_set_labels + tsf_model_save), clips (tsf_clip_save),
# raw RGB24 streams, PNG frames (when stb is installed) and the probabilities that the loader
# (tsf_clip_sample, test view) and the forward pass give for them. The tests check that
# classify reproduces those on a clip, on a folder of frames and on raw stdin, with sliding
# windows on a long clip; the JSON output; the attention PNG (signature and size) for every
# variant, with and without --rollout (whose weights must sum to 1); for sparse_local_global
# and axial on an odd grid, the maps against the groupings (uniform attention: known values;
# any attention: every sequence's weights sum to 1) and axial's --rollout refused by name;
# and every error path with its message. A build without stb (-DTT_NO_STB) must print how to install libstb-dev.
# Hostile input (issue 15), through a -O0 build under ASan and UBSan made here when the
# compiler can: class names and paths outside ASCII in the PNG's captions (the same PNG as
# with '?' for each character) and in the JSON (valid UTF-8); finite weights whose logits
# overflow (an error naming the model and the window, no numbers); a FIFO, /dev/null or
# /dev/zero as MODEL, INPUT or a frame (refused, under timeout so a regression fails rather
# than hangs); a symbolic link, a FIFO, /dev/null or /dev/full at --out (refused, left as
# they were); paths over 500 characters (the reason kept).
#
# Usage: bash tests/test_cli_classify.sh [TSF_BINARY]     (default build/tsf; CC honoured)
# Prints [PASS]/[FAIL]/[SKIP] lines and "N passed, N failed"; exit status 1 on any failure.
# shellcheck disable=SC2086 # options kept in variables ($S3, $RAW, ...) split on purpose
set -u
cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)
TSF=${1:-build/tsf}
case $TSF in /*) ;; *) TSF=$ROOT/$TSF ;; esac
CC=${CC:-cc}
STB_DIR=${STB_DIR:-/usr/include/stb}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} # tiny models; results do not depend on it
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
W=$TMP/w
mkdir -p "$W/frames" "$W/mixed" "$W/empty"
PASSED=0
FAILED=0
pass() { echo "[PASS] $1"; PASSED=$((PASSED + 1)); }
fail() { echo "[FAIL] $1: $2"; FAILED=$((FAILED + 1)); }
skip() { echo "[SKIP] $1: $2"; }

LOG=$TMP/log
crashed() { grep -q -E 'Sanitizer|runtime error:|Segmentation fault|core dumped|Aborted' "$LOG"; }
# ok NAME 'command': exit status 0.
ok() {
    if (cd "$W" && eval "$2") >"$LOG" 2>&1 && ! crashed; then pass "$1"; else
        fail "$1" "command failed: $2: $(head -c 600 "$LOG" | tr '\n' ' ')"
    fi
}
# out NAME 'text' 'command': exit status 0 and the text in the output.
out() {
    if (cd "$W" && eval "$3") >"$LOG" 2>&1 && ! crashed && grep -q -F -- "$2" "$LOG"; then pass "$1"
    else fail "$1" "want \"$2\" from: $3: $(head -c 600 "$LOG" | tr '\n' ' ')"; fi
}
# err NAME 'text' 'command': a non-zero exit status (not a crash) and the text in the output.
err() {
    local rc
    (cd "$W" && eval "$3") >"$LOG" 2>&1
    rc=$?
    if [ "$rc" -eq 0 ]; then fail "$1" "exit status 0, want an error: $3"
    elif [ "$rc" -ge 128 ] || crashed; then fail "$1" "crashed: $(head -c 600 "$LOG" | tr '\n' ' ')"
    elif grep -q -F -- "$2" "$LOG"; then pass "$1"
    else fail "$1" "the message lacks \"$2\": $(head -c 600 "$LOG" | tr '\n' ' ')"; fi
}
# near A B: |A - B| <= 1e-4 (SIMD paths round differently)
near() { awk -v a="$1" -v b="$2" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 1e-4) }'; }
# top1 FILE: "class prob" of the whole-video prediction in classify's JSON
top1() {
    local line
    line=$(grep '"video"' "$1") || return 1
    echo "$(echo "$line" | sed -E 's/.*"top": \[\{"class": ([0-9]+),.*/\1/') $(echo "$line" | grep -o '"prob": [0-9.]*' | head -n 1 | cut -d' ' -f2)"
}
# json NAME 'expected KIND' 'command': classify --json whose video top-1 matches gen's numbers
json() {
    local want got
    want=$(grep "^$2 " "$W/expect" | cut -d' ' -f3,4)
    if (cd "$W" && eval "$3") >"$TMP/json" 2>"$LOG" && ! crashed && got=$(top1 "$TMP/json") &&
        [ "${got%% *}" = "${want%% *}" ] && near "${got#* }" "${want#* }"; then pass "$1"
    else fail "$1" "want class/prob $want, got ${got:-nothing}: $3: $(head -c 400 "$LOG" "$TMP/json" | tr '\n' ' ')"; fi
}
# png NAME FILE: a PNG whose IHDR size is what tsf printed ("wrote FILE: W x H pixels")
png() {
    local sig size want
    sig=$(od -An -tx1 -N8 "$W/$2" 2>/dev/null | tr -d ' \n')
    size=$(od -An -tu1 -j16 -N8 "$W/$2" 2>/dev/null | awk '{ print $1*16777216 + $2*65536 + $3*256 + $4 " x " $5*16777216 + $6*65536 + $7*256 + $8 }')
    want=$(grep -o "wrote $2: [0-9]* x [0-9]*" "$LOG" | sed 's/.*: //')
    if [ "$sig" = 89504e470d0a1a0a ] && [ -n "$want" ] && [ "$size" = "$want" ]; then pass "$1 ($size)"
    else fail "$1" "signature $sig, IHDR size '$size', printed '$want'"; fi
}

HAVE_STB=0
[ -f "$STB_DIR/stb_image_write.h" ] && HAVE_STB=1

# ---- the generator ----------------------------------------------------------------------------
cat >"$TMP/gen.c" <<'EOF'
/* gen OUT: tiny TimeSformer models (the five attention schemes) and clips for
   test_cli_classify.sh, and the probabilities the loader + forward pass give for them (the
   expected output). */
#define TIMESFORMER_IMPLEMENTATION
#include "timesformer.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef HAVE_STB
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>
#endif

enum { W = 40, H = 36, NS = 12, NL = 60 };
static char path[4096];
static const char *out;

static const char *at(const char *name) {
    snprintf(path, sizeof path, "%s/%s", out, name);
    return path;
}

/* A deterministic moving pattern: a bright square moving right on a textured background. */
static void frames(unsigned char *px, int n, int C, unsigned seed) {
    int t, y, x, c;
    for (t = 0; t < n; t++)
        for (y = 0; y < H; y++)
            for (x = 0; x < W; x++)
                for (c = 0; c < C; c++) {
                    unsigned v = (unsigned)(x * 7 + y * 13 + c * 50 + t * 3) * 2654435761u ^ seed;
                    int sq = x >= (t * 2) % W && x < (t * 2) % W + 10 && y >= 10 && y < 22;
                    px[(((size_t)t * H + y) * W + x) * C + c] =
                        (unsigned char)(sq ? 230u - 40u * (unsigned)c : (v >> 24) % 120u);
                }
}

static int save_clip(const char *name, const unsigned char *px, int n, int C) {
    tsf_clip_header h;
    h.T = n, h.H = H, h.W = W, h.C = C, h.fps = 25.0f, h.label = -1;
    if (tsf_clip_save(at(name), &h, px) != TSF_OK) return fprintf(stderr, "gen: %s\n", path), 0;
    return 1;
}

/* What the loader and the forward pass make of frames start .. start+len-1: probs // (K). */
static void predict(tsf_model *m, const unsigned char *px, int start, int len, int stride,
                    double *probs) {
    tsf_clip clip;
    tsf_sample_opts o;
    int c, k, S = m->cfg.image_size, T = m->cfg.frames, K = m->cfg.classes;
    float *x = (float *)malloc(sizeof(float) * 3 * T * S * S), logits[64];
    double mx, sum = 0;
    memset(&clip, 0, sizeof clip), memset(&o, 0, sizeof o);
    clip.h.T = len, clip.h.H = H, clip.h.W = W, clip.h.C = 3, clip.h.fps = 25.0f, clip.h.label = -1;
    clip.pixels = px + (size_t)start * H * W * 3;
    o.frames = T, o.size = S, o.stride = stride, o.test_crops = 1, o.test_clips = 1;
    for (c = 0; c < 3; c++) o.mean[c] = m->cfg.mean[c], o.std[c] = m->cfg.std[c];
    o.bgr = m->cfg.bgr;
    if (tsf_clip_sample(x, &clip, &o, NULL, 0) != TSF_OK ||
        tsf_model_forward(m, x, 1, T, S, S, logits) != TSF_OK) {
        fprintf(stderr, "gen: predict failed\n");
        exit(1);
    }
    for (mx = logits[0], k = 1; k < K; k++) mx = logits[k] > mx ? logits[k] : mx;
    for (k = 0; k < K; k++) sum += probs[k] = exp(logits[k] - mx);
    for (k = 0; k < K; k++) probs[k] /= sum;
    free(x);
}

static void expect(const char *model, const char *what, const double *p, int K) {
    int k, best = 0;
    for (k = 1; k < K; k++) best = p[k] > p[best] ? k : best;
    printf("%s %s %d %.6f\n", model, what, best, p[best]);
}

int main(int argc, char **argv) {
    static const char *const names[] = {"divided", "joint", "space", "local_global", "axial"};
    static const int attn[] = {TSF_ATTN_DIVIDED, TSF_ATTN_JOINT, TSF_ATTN_SPACE,
                               TSF_ATTN_LOCAL_GLOBAL, TSF_ATTN_AXIAL};
    static const char *const labels[] = {"walk", "run", "jump \"high\"", "swim", "fly"};
    unsigned char *shortc = malloc((size_t)NS * H * W * 3), *longc = malloc((size_t)NL * H * W * 3);
    unsigned char *gray = malloc((size_t)NS * H * W);
    int v, i, k;
    FILE *f;
    if (argc != 2) return fprintf(stderr, "usage: gen OUT\n"), 2;
    out = argv[1];
    frames(shortc, NS, 3, 1), frames(longc, NL, 3, 2), frames(gray, NS, 1, 3);
    if (!save_clip("short.clip", shortc, NS, 3) || !save_clip("long.clip", longc, NL, 3) ||
        !save_clip("gray.clip", gray, NS, 1))
        return 1;
    /* raw RGB24 streams: whole, and one cut inside its last frame */
    f = fopen(at("short.rgb"), "wb");
    fwrite(shortc, 1, (size_t)NS * H * W * 3, f), fclose(f);
    f = fopen(at("long.rgb"), "wb");
    fwrite(longc, 1, (size_t)NL * H * W * 3, f), fclose(f);
    f = fopen(at("cut.rgb"), "wb");
    fwrite(shortc, 1, (size_t)NS * H * W * 3 - 100, f), fclose(f);
    f = fopen(at("cut.clip"), "wb"); /* a clip missing its last 100 bytes */
    {
        unsigned char hdr[TSF_CLIP_HEADER_BYTES];
        tsf_clip_header h;
        h.T = NS, h.H = H, h.W = W, h.C = 3, h.fps = 25.0f, h.label = -1;
        tsf_clip_header_encode(hdr, &h);
        fwrite(hdr, 1, sizeof hdr, f);
        fwrite(shortc, 1, (size_t)NS * H * W * 3 - 100, f), fclose(f);
    }
#ifdef HAVE_STB
    /* a folder whose second frame has another size */
    if (!stbi_write_png(at("mixed/0000.png"), W, H, 3, shortc, W * 3) ||
        !stbi_write_png(at("mixed/0001.png"), 20, 20, 3, shortc, 20 * 3))
        return fprintf(stderr, "gen: cannot write %s\n", path), 1;
    for (i = 0; i < NS; i++) { /* the short clip as lossless PNG frames */
        char name[64];
        snprintf(name, sizeof name, "frames/%04d.png", i);
        if (!stbi_write_png(at(name), W, H, 3, shortc + (size_t)i * H * W * 3, W * 3))
            return fprintf(stderr, "gen: cannot write %s\n", path), 1;
    }
#endif
    for (v = 0; v < 5; v++) {
        tsf_model m;
        tsf_config cfg;
        tsf_error err;
        double p[5], mean[5] = {0}, pw[5];
        char file[64];
        size_t j;
        int n = 0;
        memset(&cfg, 0, sizeof cfg);
        cfg.image_size = 32, cfg.patch_size = 8, cfg.frames = 4, cfg.dim = 24, cfg.depth = 2;
        cfg.heads = 2, cfg.mlp_ratio = 2.0f, cfg.classes = 5, cfg.attention = attn[v];
        if (attn[v] == TSF_ATTN_DIVIDED) { /* a model with its own preprocessing */
            cfg.mean[0] = 0.5f, cfg.mean[1] = 0.4f, cfg.mean[2] = 0.3f;
            cfg.std[0] = 0.2f, cfg.std[1] = 0.25f, cfg.std[2] = 0.3f, cfg.bgr = 1;
        }
        if (tsf_model_init(&m, &cfg, 1, 7 + v) != TSF_OK) return fprintf(stderr, "gen: init\n"), 1;
        for (j = 0; j < m.param_floats; j++) m.param_memory[j] *= 5.0f; /* peaky attention */
        if (attn[v] != TSF_ATTN_SPACE && tsf_model_set_labels(&m, labels) != TSF_OK) return 1;
        snprintf(file, sizeof file, "%s.safetensors", names[v]);
        if (tsf_model_save(&m, at(file), &err) != TSF_OK)
            return fprintf(stderr, "gen: %s\n", err.msg), 1;
        /* expected: the short clip with --frames-stride 3 (one window of 12 frames) */
        predict(&m, shortc, 0, NS, 3, p);
        expect(names[v], "short", p, 5);
        /* the long clip, --frames-stride 3 --stride 10: windows at 0 10 20 30 40 and 48 */
        for (i = 0; i + 12 <= NL; i += 10, n++) {
            predict(&m, longc, i, 12, 3, pw);
            for (k = 0; k < 5; k++) mean[k] += pw[k];
        }
        predict(&m, longc, NL - 12, 12, 3, pw), n++;
        for (k = 0; k < 5; k++) mean[k] = (mean[k] + pw[k]) / n;
        expect(names[v], "long", mean, 5);
        tsf_model_free(&m);
    }
    /* sparse_local_global and axial on an odd grid (24 x 24 with patch 8: 3 x 3 patches, 3
       frames), where windows and parity classes differ in length: with peaky weights
       (odd_*), and with every query, key and value zero (uni_*: every attention uniform, so
       each map is known from the groupings alone) */
    for (v = 0; v < 4; v++) {
        tsf_model m;
        tsf_config cfg;
        tsf_error err;
        char file[64];
        size_t j;
        int L = 2, D = 24, uni = v >= 2;
        float *qkv[8];
        memset(&cfg, 0, sizeof cfg);
        cfg.image_size = 24, cfg.patch_size = 8, cfg.frames = 3, cfg.dim = D, cfg.depth = L;
        cfg.heads = 2, cfg.mlp_ratio = 2.0f, cfg.classes = 5;
        cfg.attention = v % 2 ? TSF_ATTN_AXIAL : TSF_ATTN_LOCAL_GLOBAL;
        if (tsf_model_init(&m, &cfg, 1, 21 + v) != TSF_OK) return fprintf(stderr, "gen: init\n"), 1;
        qkv[0] = m.params.qkv_w, qkv[1] = m.params.t_qkv_w, qkv[2] = m.params.l_qkv_w;
        qkv[3] = m.params.w_qkv_w, qkv[4] = m.params.qkv_b, qkv[5] = m.params.t_qkv_b;
        qkv[6] = m.params.l_qkv_b, qkv[7] = m.params.w_qkv_b;
        if (uni) {
            for (k = 0; k < 8; k++)
                if (qkv[k]) memset(qkv[k], 0, sizeof(float) * (size_t)L * 3 * D * (k < 4 ? D : 1));
        } else {
            for (j = 0; j < m.param_floats; j++) m.param_memory[j] *= 5.0f;
        }
        snprintf(file, sizeof file, "%s_%s.safetensors", uni ? "uni" : "odd",
                 v % 2 ? "axial" : "local_global");
        if (tsf_model_save(&m, at(file), &err) != TSF_OK)
            return fprintf(stderr, "gen: %s\n", err.msg), 1;
        tsf_model_free(&m);
    }
    { /* issue 17: a divided model whose temporal attention is nearly uniform (the original
         initialisation's small weights): the picture must show its true, narrow range */
        tsf_model m;
        tsf_config cfg;
        tsf_error err;
        memset(&cfg, 0, sizeof cfg);
        cfg.image_size = 32, cfg.patch_size = 8, cfg.frames = 4, cfg.dim = 24, cfg.depth = 2;
        cfg.heads = 2, cfg.mlp_ratio = 2.0f, cfg.classes = 5, cfg.attention = TSF_ATTN_DIVIDED;
        if (tsf_model_init(&m, &cfg, 1, 13) != TSF_OK) return fprintf(stderr, "gen: init\n"), 1;
        if (tsf_model_save(&m, at("flat.safetensors"), &err) != TSF_OK)
            return fprintf(stderr, "gen: %s\n", err.msg), 1;
        tsf_model_free(&m);
    }
    { /* issue 15: class names outside ASCII, and logits that overflow from finite weights */
        static const char *const utf8[] = {"caf\xc3\xa9", "na\xc3\xafve", "\xe6\x97\xa5\xe6\x9c\xac",
                                           "tab\there", "\xc3\xbc" "ber"};
        static const char *const ascii[] = {"caf?", "na?ve", "??", "tab?here", "?ber"};
        tsf_model m;
        tsf_config cfg;
        tsf_error err;
        int j;
        memset(&cfg, 0, sizeof cfg);
        cfg.image_size = 32, cfg.patch_size = 8, cfg.frames = 4, cfg.dim = 24, cfg.depth = 2;
        cfg.heads = 2, cfg.mlp_ratio = 2.0f, cfg.classes = 5, cfg.attention = TSF_ATTN_DIVIDED;
        if (tsf_model_init(&m, &cfg, 1, 11) != TSF_OK) return fprintf(stderr, "gen: init\n"), 1;
        /* the same weights under two sets of names: UTF-8 (and a tab), and what the PNG's
           captions must draw for them (each character outside printable ASCII as '?') */
        if (tsf_model_set_labels(&m, utf8) != TSF_OK ||
            tsf_model_save(&m, at("utf8.safetensors"), &err) != TSF_OK ||
            tsf_model_set_labels(&m, ascii) != TSF_OK ||
            tsf_model_save(&m, at("ascii.safetensors"), &err) != TSF_OK)
            return fprintf(stderr, "gen: %s\n", path), 1;
        /* finite weights whose logits overflow: the final norm gives 1 for every feature, the
           classifier's weights are 1e38, so each logit is 24 x 1e38 = inf */
        for (j = 0; j < cfg.dim; j++) m.params.lnf_w[j] = 0.0f, m.params.lnf_b[j] = 1.0f;
        for (j = 0; j < cfg.dim * cfg.classes; j++) m.params.head_w[j] = 1e38f;
        for (j = 0; j < cfg.classes; j++) m.params.head_b[j] = 0.0f;
        if (tsf_model_save(&m, at("overflow.safetensors"), &err) != TSF_OK)
            return fprintf(stderr, "gen: %s\n", err.msg), 1;
        tsf_model_free(&m);
    }
    free(shortc), free(longc), free(gray);
    return 0;
}
EOF
GEN_FLAGS=""
[ "$HAVE_STB" = 1 ] && GEN_FLAGS="-DHAVE_STB -I$STB_DIR"
if $CC -std=c99 -O2 -I"$ROOT" $GEN_FLAGS "$TMP/gen.c" -o "$TMP/gen" -lm >"$LOG" 2>&1 &&
    "$TMP/gen" "$W" >"$W/expect" 2>"$LOG"; then
    pass "generator: tiny models (the five schemes; odd grids), clips, raw streams"
else
    fail "generator" "$(head -c 1000 "$LOG")"
    echo "$PASSED passed, $FAILED failed"
    exit 1
fi
if [ ! -x "$TSF" ]; then
    fail "tsf binary" "$TSF does not exist: make build/tsf"
    echo "$PASSED passed, $FAILED failed"
    exit 1
fi
# does this tsf read and write images? (built with stb, the Makefile's default when installed)
TSF_STB=1
if (cd "$W" && "$TSF" attention divided.safetensors short.clip --out probe.png) 2>&1 | grep -q "libstb-dev"; then
    TSF_STB=0
fi
S3="--frames-stride 3"     # 4 frames x 3 = one window of 12 frames: short.clip exactly
LONG="$S3 --stride 10"    # long.clip (60 frames): windows at 0 10 20 30 40, and 48-59
RAW="- --width 40 --height 36"

# ---- classify: the loader's numbers from every kind of input ------------------------------------
for v in divided joint space local_global axial; do
    json "classify $v: clip = loader + forward" "$v short" "\$TSF classify $v.safetensors short.clip $S3 --json"
    json "classify $v: raw stdin = clip" "$v short" "\$TSF classify $v.safetensors $RAW $S3 --json <short.rgb"
    json "classify $v: long clip, mean of 6 windows" "$v long" "\$TSF classify $v.safetensors long.clip $LONG --json"
    json "classify $v: long raw stream (ring of frames) = clip" "$v long" "\$TSF classify $v.safetensors $RAW $LONG --json <long.rgb"
done
if [ "$HAVE_STB" = 1 ] && [ "$TSF_STB" = 1 ]; then
    json "classify divided: folder of PNG frames = clip" "divided short" "\$TSF classify divided.safetensors frames $S3 --json"
    json "classify joint: folder of PNG frames = clip" "joint short" "\$TSF classify joint.safetensors frames/ $S3 --json"
else
    skip "classify: folder of frames" "needs libstb-dev in this tsf and for the test's PNGs"
fi
out "classify: text output, top 5 with labels" "   1  0.6912  run" "\$TSF classify divided.safetensors short.clip $S3"
out "classify: a model without class names prints indices" "class 0" "\$TSF classify space.safetensors short.clip $S3"
ok "classify: --top 2 prints two classes" "\$TSF classify joint.safetensors short.clip $S3 --top 2 | grep -c '^  *[0-9]  0\\.' | grep -qx 2"
out "classify: --top beyond the classes shows all" "top 5 of 5 classes" "\$TSF classify joint.safetensors short.clip $S3 --top 50"
out "classify: windows listed with their time ranges" "frames 48-59 (1.92-2.40 s)" "\$TSF classify divided.safetensors long.clip $LONG"
out "classify: sliding windows explained" "windows   6 of 12 frames, one every 10 frames (the last ends at the last frame)" "\$TSF classify divided.safetensors long.clip $LONG"
out "classify: whole-video prediction" "whole video (mean of the 6 windows' probabilities)" "\$TSF classify divided.safetensors long.clip $LONG"
ok "classify --json: 6 windows" "\$TSF classify joint.safetensors long.clip $LONG --json | grep -c '\"start\": [0-9]*, \"end\"' | grep -qx 7"
out "classify --json: labels escaped" '"label": "jump \"high\""' "\$TSF classify joint.safetensors short.clip $S3 --json"
out "classify --json: no names give null labels" '"label": null' "\$TSF classify space.safetensors short.clip $S3 --json"
out "classify: raw --fps gives seconds" "frames 10-21 (0.40-0.88 s)" "\$TSF classify joint.safetensors $RAW $LONG --fps 25 <long.rgb"
ok "classify --segment: raw stdin = clip" "[ \"\$(\$TSF classify joint.safetensors long.clip --segment)\" = \"\$(\$TSF classify joint.safetensors $RAW --segment --fps 25 <long.rgb | sed 's/^input     stdin/input     long.clip/')\" ]"
out "classify: a short video's repeated frames are explained" "--frames-stride 3 spreads 4 frames over 12" "\$TSF classify joint.safetensors short.clip"
if command -v jq >/dev/null 2>&1; then
    ok "classify --json is valid JSON" "\$TSF classify joint.safetensors long.clip $LONG --json | jq -e '.windows | length == 6' >/dev/null"
else
    skip "classify --json is valid JSON" "jq is not installed"
fi
if command -v ffmpeg >/dev/null 2>&1; then
    out "classify: ffmpeg's raw frames on stdin" "top 5 of 5 classes" "ffmpeg -v error -f lavfi -i testsrc=size=64x48:rate=25 -frames:v 30 -f rawvideo -pix_fmt rgb24 - | \$TSF classify joint.safetensors - -W 64 -H 48 --segment"
else
    skip "classify: ffmpeg's raw frames on stdin" "ffmpeg is not installed"
fi
out "classify --help" "--frames-stride K" "\$TSF classify --help"

# ---- attention ----------------------------------------------------------------------------------
# rollout: the cls row of a product of row-stochastic matrices sums to 1 (space_only: the
# mean over the frames' cls tokens)
for v in divided joint space local_global odd_local_global; do
    if (cd "$W" && "$TSF" attention $v.safetensors short.clip $S3 --rollout --json) >"$LOG" 2>&1 &&
        ! crashed && grep -q -E '"total": (1\.000000|0\.999999)' "$LOG"; then
        pass "attention $v --rollout --json: weights sum to 1"
    else fail "attention $v --rollout --json" "$(head -c 600 "$LOG" | tr '\n' ' ')"; fi
done
out "attention --json: divided has a T x T temporal matrix" '"temporal": [' "\$TSF attention divided.safetensors short.clip $S3 --json"
out "attention --json: joint has per-frame shares" '"frame_weights": [' "\$TSF attention joint.safetensors short.clip $S3 --json"
out "attention --json: space_only has no temporal matrix" '"temporal": null' "\$TSF attention space.safetensors short.clip $S3 --json"
out "attention --json: a 4 x 4 patch grid" '"grid": [4, 4]' "\$TSF attention joint.safetensors short.clip $S3 --json"
ok "attention: raw stdin with --start = the clip's window" "[ \"\$(\$TSF attention joint.safetensors $RAW $S3 --start 20 --json <long.rgb | grep -v -E '\"(input|frames)\"')\" = \"\$(\$TSF attention joint.safetensors long.clip $S3 --start 20 --json | grep -v -E '\"(input|frames)\"')\" ]"
out "attention: --start picks the window" '"sampled_frames": [20, 23, 27, 31]' "\$TSF attention joint.safetensors long.clip $S3 --start 20 --json"
if [ "$TSF_STB" = 1 ]; then
    for v in divided joint space local_global axial odd_local_global odd_axial; do
        for r in "" "--rollout"; do
            case $v$r in *axial--rollout) continue ;; esac # refused, below
            name="attention $v ${r:+$r }PNG"
            if (cd "$W" && "$TSF" attention $v.safetensors short.clip $S3 $r --out att_$v$r.png) >"$LOG" 2>&1 && ! crashed; then
                png "$name" "att_$v$r.png"
            else fail "$name" "$(head -c 600 "$LOG" | tr '\n' ' ')"; fi
        done
    done
    if (cd "$W" && "$TSF" attention divided.safetensors long.clip $S3 --block 1 --per-frame --tile 64 --start 30 --out opts.png) >"$LOG" 2>&1 && ! crashed; then
        png "attention: --block --per-frame --tile --start" opts.png
    else fail "attention: --block --per-frame --tile --start" "$(head -c 600 "$LOG" | tr '\n' ' ')"; fi
    if (cd "$W" && "$TSF" attention joint.safetensors $RAW $S3 --out raw.png <long.rgb) >"$LOG" 2>&1 && ! crashed; then
        png "attention: raw stdin" raw.png
    else fail "attention: raw stdin" "$(head -c 600 "$LOG" | tr '\n' ' ')"; fi
    out "attention: the picture's size in --json" '"png_size": [' "\$TSF attention space.safetensors short.clip $S3 --out j.png --json"
    # issue 17: the picture shows the true range. A nearly uniform model: the legends give the
    # smallest and largest weights of the maps and of the temporal panel (colour on a fixed
    # 0 .. 1 scale) to the digits that tell them apart, within a tenth of their difference of
    # the --json numbers (not "min 0.250, max 0.250")
    if (cd "$W" && "$TSF" attention flat.safetensors short.clip $S3 --out flat.png >flat.txt &&
        "$TSF" attention flat.safetensors short.clip $S3 --json >flat.json) >"$LOG" 2>&1 && ! crashed; then
        for part in maps temporal; do
            want=$(awk -v k="\"$part\": \\[$" '$0 ~ k { on = 1; next } on && /^  \]/ { on = 0 }
                on { gsub(/[][,]/, " "); for (i = 1; i <= NF; i++) { v = $i + 0; if (!n || v < lo) lo = v; if (!n || v > hi) hi = v; n++ } }
                END { print lo, hi }' "$W/flat.json")
            label=$([ $part = maps ] && echo "maps: colour 0 .. [0-9.]*, weights" || echo "temporal panel: colour 0 .. 1 (a fixed scale), values")
            got=$(sed -n "s/^  $label \([0-9.]*\) \.\. \([0-9.]*\)$/\1 \2/p" "$W/flat.txt")
            if [ -n "$got" ] && awk -v w="$want" -v g="$got" 'BEGIN { split(w, a, " "); split(g, b, " "); d = (a[2] - a[1]) / 10
                exit !(a[1] < a[2] && b[1] < b[2] && b[1] - a[1] <= d && a[1] - b[1] <= d && b[2] - a[2] <= d && a[2] - b[2] <= d) }'; then
                pass "attention: a nearly uniform $part: the legend says $got (the weights: $want)"
            else fail "attention: the legend of a nearly uniform $part" "want about $want, got '$got': $(cat "$W/flat.txt")"; fi
        done
    else fail "attention: a nearly uniform model" "$(head -c 600 "$LOG" | tr '\n' ' ')"; fi
    err "attention: an unwritable PNG" "a.png.part: cannot write" "\$TSF attention joint.safetensors short.clip $S3 --out $TMP/no/such/dir/a.png"
else
    skip "attention PNGs" "this tsf was built without stb"
fi
out "attention --help" "--rollout" "\$TSF attention --help"

# sparse_local_global and axial. amap MODE FILE: checks attention --json's numbers with awk,
# from the groupings of docs/model.md section 4 (3 x 3 patches, 3 frames; T, Hp, Wp below):
#   uni_lg     every attention uniform: patch (t, i, j) gets 1 / (1 + the size of its parity
#              class (t, i, j mod 2)), and so does that class's cls copy (cls_self, in class
#              order (a, b, c) lexicographic)
#   uni_lg_r1  the same model's rollout through block 1: the global step gives the cls
#              1/2 + sum over classes of 1 / (2 G (1 + size)), each token 1 / (2 G (1 + its
#              class's size)); the local step then gives a token half its own and half its
#              window's mean (windows: rows below ceil(Hp/2), columns below ceil(Wp/2))
#   uni_axial  every map 1 / (1 + Hp), each of the T * Wp cls copies the same, the T x T
#              temporal panel and the frame weights 1 / T
#   sum_lg     any weights: in each parity class the cls row's weights on its tokens and on
#              its cls copy sum to 1
#   sum_axial  any weights: the same in each frame's patch column
amap() {
    awk -v mode="$1" -v T=3 -v Hp=3 -v Wp=3 '
    function cnt(X, p) { return int((X - p + 1) / 2) }
    function near(a, b) { d = a - b; return d < 1e-5 && d > -1e-5 }
    function bad(what) { if (!err) err = what }
    function nums(line, arr,    n) { sub(/^[^[]*/, "", line); gsub(/[][,]/, " ", line); return split(line, arr, " ") }
    BEGIN { nt = np = 0 }
    /"maps": \[/ { inm = 1; next }
    /"temporal": \[/ { intp = 1; next }
    (inm || intp) && /^  \]/ { inm = intp = 0; next }
    inm { n = nums($0, f); for (k = 1; k <= n; k++) M[nt, k - 1] = f[k]; nt++; next }
    intp { n = nums($0, f); for (k = 1; k <= n; k++) P[np, k - 1] = f[k]; np++; next }
    /"cls_self":/ { ns = nums($0, S) }
    /"frame_weights":/ { nf = nums($0, F) }
    END {
        N = Hp * Wp; nb = Hp < 2 ? Hp : 2; nc = Wp < 2 ? Wp : 2; nt2 = T < 2 ? T : 2; G = nt2 * nb * nc
        if (nt != T) bad("maps has " nt " rows")
        for (a = 0; a < nt2; a++) for (b = 0; b < nb; b++) for (c = 0; c < nc; c++)
            L[(a * nb + b) * nc + c] = cnt(T, a) * cnt(Hp, b) * cnt(Wp, c)
        for (t = 0; t < T; t++) for (i = 0; i < Hp; i++) for (j = 0; j < Wp; j++) {
            g = ((t % 2) * nb + i % 2) * nc + j % 2
            w = (i >= int((Hp + 1) / 2)) * nc + (j >= int((Wp + 1) / 2))
            cls[t, i, j] = g; win[t, i, j] = w; wsize[w]++; sum[g] += M[t, i * Wp + j]
            col[t * Wp + j] += M[t, i * Wp + j]
        }
        if (mode == "uni_lg" || mode == "sum_lg") {
            if (ns != G) bad("cls_self has " ns " values, want " G)
            for (g = 0; g < G; g++) {
                if (mode == "uni_lg" && !near(S[g + 1], 1 / (1 + L[g]))) bad("cls_self[" g "] = " S[g + 1])
                if (mode == "sum_lg" && !near(sum[g] + S[g + 1], 1)) bad("class " g " sums to " sum[g] + S[g + 1])
            }
            if (mode == "uni_lg")
                for (t = 0; t < T; t++) for (i = 0; i < Hp; i++) for (j = 0; j < Wp; j++)
                    if (!near(M[t, i * Wp + j], 1 / (1 + L[cls[t, i, j]]))) bad("map t" t " (" i "," j ") = " M[t, i * Wp + j])
        } else if (mode == "uni_lg_r1") {
            u0 = 0.5
            for (g = 0; g < G; g++) u0 += 0.5 / (G * (1 + L[g]))
            if (ns != 1 || !near(S[1], u0)) bad("cls_self " S[1] ", want " u0)
            for (t = 0; t < T; t++) for (i = 0; i < Hp; i++) for (j = 0; j < Wp; j++) {
                u[t, i, j] = 0.5 / (G * (1 + L[cls[t, i, j]])); wsum[win[t, i, j]] += u[t, i, j]
            }
            for (t = 0; t < T; t++) for (i = 0; i < Hp; i++) for (j = 0; j < Wp; j++) {
                want = 0.5 * u[t, i, j] + 0.5 * wsum[win[t, i, j]] / wsize[win[t, i, j]]
                if (!near(M[t, i * Wp + j], want)) bad("map t" t " (" i "," j ") = " M[t, i * Wp + j] ", want " want)
            }
        } else if (mode == "uni_axial" || mode == "sum_axial") {
            if (ns != T * Wp) bad("cls_self has " ns " values, want " T * Wp)
            for (s = 0; s < T * Wp; s++) {
                if (mode == "uni_axial" && !near(S[s + 1], 1 / (1 + Hp))) bad("cls_self[" s "] = " S[s + 1])
                if (mode == "sum_axial" && !near(col[s] + S[s + 1], 1)) bad("column " s " sums to " col[s] + S[s + 1])
            }
            if (np != T) bad("temporal has " np " rows")
            for (t = 0; t < T; t++) {
                if (mode == "uni_axial" && !near(F[t + 1], 1 / T)) bad("frame weight " t " = " F[t + 1])
                for (k = 0; k < T; k++) if (mode == "uni_axial" && !near(P[t, k], 1 / T)) bad("temporal " t "," k " = " P[t, k])
                for (k = 0; k < N && mode == "uni_axial"; k++) if (!near(M[t, k], 1 / (1 + Hp))) bad("map t" t " patch " k " = " M[t, k])
            }
        } else bad("unknown mode " mode)
        if (err) { print err; exit 1 }
    }' "$2"
}
# acheck NAME MODE 'command': attention --json, then amap MODE on its output
acheck() {
    local why
    if (cd "$W" && eval "$3") >"$TMP/attn.json" 2>"$LOG" && ! crashed && why=$(amap "$2" "$TMP/attn.json"); then pass "$1"
    else fail "$1" "${why:-command failed: $3: $(head -c 400 "$LOG")}"; fi
}
acheck "attention sparse_local_global, uniform attention: each patch 1 / (1 + its parity class's size)" uni_lg \
    "\$TSF attention uni_local_global.safetensors short.clip $S3 --json"
acheck "attention sparse_local_global --rollout through block 1, uniform attention: the global, then the local step" uni_lg_r1 \
    "\$TSF attention uni_local_global.safetensors short.clip $S3 --json --rollout --block 1"
acheck "attention axial, uniform attention: 1 / (1 + Hp) on each column's patches, 1 / T between frames" uni_axial \
    "\$TSF attention uni_axial.safetensors short.clip $S3 --json"
for b in 1 2; do
    acheck "attention sparse_local_global, block $b: each parity class's weights sum to 1 (unequal classes)" sum_lg \
        "\$TSF attention odd_local_global.safetensors short.clip $S3 --json --block $b"
    acheck "attention axial, block $b: each patch column's weights sum to 1" sum_axial \
        "\$TSF attention odd_axial.safetensors short.clip $S3 --json --block $b"
done
if [ "$TSF_STB" = 1 ]; then
    out "attention: axial shows the temporal panel" "temporal attention, block 2 (rows: query frame" "\$TSF attention axial.safetensors short.clip $S3 --out axt.png"
    out "attention: sparse_local_global says what it shows" "the cls token's global attention in each parity class" "\$TSF attention local_global.safetensors short.clip $S3 --out lgt.png"
else
    skip "attention: the text beside a PNG" "this tsf was built without stb"
fi
err "attention axial --rollout is refused by name" "is an axial model, and a rollout needs the attention of each of a block's three steps" \
    "\$TSF attention axial.safetensors short.clip $S3 --rollout --json"
ok "attention axial --rollout: no PNG written" "! \$TSF attention axial.safetensors short.clip $S3 --rollout --out axr.png 2>/dev/null && test ! -e axr.png"

# ---- errors: each says what is wrong and what to do ---------------------------------------------
printf 'not a video' >"$W/movie.mp4"
cp "$W/short.clip" "$W/trailing.clip" && printf 'x' >>"$W/trailing.clip"
err "error: a missing model" "no such model file or folder: give a .safetensors file" "\$TSF classify nope.safetensors short.clip"
err "error: a folder that is not a model" "a folder without config.json" "\$TSF classify empty short.clip"
err "error: a file that is not a model" "cannot load the model" "\$TSF classify short.clip short.clip"
err "error: a missing input" "no such file or folder. INPUT is a clip file" "\$TSF classify joint.safetensors nope.clip"
err "error: model/clip channel mismatch" "has 1 channel per pixel, but the model expects 3: give RGB frames" "\$TSF classify joint.safetensors gray.clip"
err "error: a truncated clip" "a damaged clip file: malformed file (truncated" "\$TSF classify joint.safetensors cut.clip"
err "error: trailing bytes after a clip" "Make it again (video2clip, frames2clip)" "\$TSF classify joint.safetensors trailing.clip"
err "error: a video file" "the library decodes no video; pipe its frames through ffmpeg" "\$TSF classify joint.safetensors movie.mp4"
err "error: raw input with a truncated last frame" "stdin ended inside frame 11: 4220 of 4320 bytes (40 x 36 x 3)" "\$TSF classify joint.safetensors $RAW <cut.rgb"
err "error: raw input of the wrong size" "check --width/--height against ffmpeg" "\$TSF classify joint.safetensors - --width 41 --height 36 <short.rgb"
err "error: empty stdin" "stdin is empty: no frames. Check the ffmpeg command" "\$TSF classify joint.safetensors $RAW </dev/null"
err "error: raw input without its size" "need their size: --width W --height H" "\$TSF classify joint.safetensors - <short.rgb"
err "error: --width with a clip" "--width/--height describe raw frames on stdin" "\$TSF classify joint.safetensors short.clip --width 40"
err "error: no INPUT" "give MODEL and INPUT" "\$TSF classify joint.safetensors"
err "error: an unknown option" "unknown option --bogus (tsf classify --help" "\$TSF classify joint.safetensors short.clip --bogus"
err "error: a bad number" "--top needs an integer from 1" "\$TSF classify joint.safetensors short.clip --top x"
err "error: two inputs" "one MODEL and one INPUT" "\$TSF classify joint.safetensors short.clip long.clip"
err "error: attention with nothing to write" "nothing to write: give --out attn.png" "\$TSF attention joint.safetensors short.clip"
err "error: attention --block beyond the model" "--block 3, but the model has 2 blocks: give 1 .. 2" "\$TSF attention joint.safetensors short.clip --block 3 --json"
err "error: attention --start past the end" "--start 12, but short.clip has 12 frames: give --start 0 .. 11" "\$TSF attention joint.safetensors short.clip --start 12 --json"
if [ "$HAVE_STB" = 1 ] && [ "$TSF_STB" = 1 ]; then
    err "error: a single image" "a single image, not a video: put the frames in a folder" "\$TSF classify joint.safetensors frames/0000.png"
    err "error: frames of different sizes" "all frames of a video must have one size" "\$TSF classify joint.safetensors mixed --window 2"
    err "error: a folder without images" "no images (jpg, png" "\$TSF classify joint.safetensors empty"
fi

# ---- issue 15: hostile names, numbers and files -------------------------------------------------
# Under ASan and UBSan (a -O0 build, quick to compile) when the compiler has them: class names
# and paths outside ASCII used to read outside stb_easy_font's glyph table.
ASAN=$TMP/tsf-asan
if $CC -std=c99 -O0 -g -fsanitize=address,undefined -fno-sanitize-recover=all -I"$ROOT" -I"$STB_DIR" \
    tools/tsf.c -o "$ASAN" -lm >"$LOG" 2>&1; then
    pass "build: tsf under ASan and UBSan (-O0)"
else
    skip "build: tsf under ASan and UBSan" "$CC cannot build it: $(head -c 200 "$LOG" | tr '\n' ' ')"
    ASAN=$TSF
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
U8="vid$(printf '\303\251')o.clip" # UTF-8 "vidéo.clip"
L1="vid$(printf '\351')o.clip"      # Latin-1 "vidéo.clip": not UTF-8
cp "$W/short.clip" "$W/$U8" && cp "$W/short.clip" "$W/$L1"
cp "$W/short.clip" "$W/vid?o.clip" # what the captions must show for both
if [ "$TSF_STB" = 1 ]; then
    for b in ASAN TSF; do
        ok "attention ($b): UTF-8 class names and path, the PNG written" \
            "\$$b attention utf8.safetensors '$U8' $S3 --out u8_$b.png && test -s u8_$b.png"
        ok "attention ($b): the same PNG as with the names drawn as '?'" \
            "\$$b attention ascii.safetensors 'vid?o.clip' $S3 --out q_$b.png && cmp u8_$b.png q_$b.png"
        ok "attention ($b): a Latin-1 path, the same PNG" \
            "\$$b attention utf8.safetensors '$L1' $S3 --out l1_$b.png && cmp l1_$b.png q_$b.png"
    done
    for v in joint space; do # the other variants' captions
        ok "attention $v --rollout (ASAN): a UTF-8 path" "\$ASAN attention $v.safetensors '$U8' $S3 --rollout --out u8_$v.png"
    done
fi
out "classify --json (ASAN): a UTF-8 path as it is" "\"input\": \"$U8\"" "\$ASAN classify utf8.safetensors '$U8' $S3 --json"
out "classify (ASAN): UTF-8 class names printed as they are" "caf$(printf '\303\251')" "\$ASAN classify utf8.safetensors short.clip $S3"
if command -v python3 >/dev/null 2>&1; then
    cat >"$TMP/json_check.py" <<'PY'
import json, sys
d = json.loads(sys.stdin.buffer.read())  # bytes: invalid UTF-8 fails here
names = {"caf\u00e9", "na\u00efve", "\u65e5\u672c", "tab\there", "\u00fcber"}
sys.exit(not (d["input"] == "vid\ufffdo.clip" and {t["label"] for t in d["video"]["top"]} == names))
PY
    ok "classify --json: a Latin-1 path gives valid UTF-8 JSON (U+FFFD), UTF-8 names kept" \
        "\$ASAN classify utf8.safetensors '$L1' $S3 --json | python3 $TMP/json_check.py"
else
    skip "classify --json: a Latin-1 path gives valid JSON" "python3 is not installed"
fi
# logits that overflow from finite weights: an error naming the model and the window, no numbers
err "classify: logits that overflow are an error" "overflow.safetensors: the model's output for frames 0-11 of short.clip is not finite" \
    "\$ASAN classify overflow.safetensors short.clip $S3"
ok "classify --json: no output at all when the logits overflow" \
    "! \$ASAN classify overflow.safetensors short.clip $S3 --json >ov.json 2>/dev/null && test ! -s ov.json"
err "classify: overflow in a long clip names the window" "the model's output for frames 0-11 of long.clip is not finite" \
    "\$ASAN classify overflow.safetensors long.clip $LONG"
err "classify: overflow on raw stdin names the window" "the model's output for frames 0-11 of stdin is not finite" \
    "\$ASAN classify overflow.safetensors $RAW $LONG <long.rgb"
err "attention: logits that overflow are an error" "overflow.safetensors: the model's output for frames 0-11 of short.clip is not finite" \
    "\$ASAN attention overflow.safetensors short.clip $S3 --json"
ok "attention: no PNG when the logits overflow" "! \$ASAN attention overflow.safetensors short.clip $S3 --out ov.png 2>/dev/null && test ! -e ov.png"
# inputs that are not regular files: refused by name, never waited on (timeout: a regression
# fails instead of hanging)
TO="timeout 20"
mkfifo "$W/fifo.clip" "$W/fifo.safetensors"
mkdir -p "$W/fifomodel" "$W/fifoframes"
mkfifo "$W/fifomodel/config.json"
cp "$W/frames/0000.png" "$W/fifoframes/0000.png" 2>/dev/null || cp "$W/short.clip" "$W/fifoframes/0000.png"
mkfifo "$W/fifoframes/0001.png"
for input in fifo.clip /dev/null /dev/zero; do
    kind="a character device"
    [ "$input" = fifo.clip ] && kind="a FIFO"
    err "classify: INPUT $input is refused" "$input: not a regular file ($kind)" "$TO \$ASAN classify joint.safetensors $input"
done
err "classify: a FIFO MODEL is refused" "fifo.safetensors: not a regular file (a FIFO)" "$TO \$ASAN classify fifo.safetensors short.clip"
err "classify: MODEL /dev/zero is refused" "/dev/zero: not a regular file (a character device)" "$TO \$ASAN classify /dev/zero short.clip"
err "classify: a model folder whose config.json is a FIFO" "fifomodel/config.json: not a regular file (a FIFO)" "$TO \$ASAN classify fifomodel short.clip"
err "attention: INPUT /dev/zero is refused" "/dev/zero: not a regular file (a character device)" "$TO \$ASAN attention joint.safetensors /dev/zero --json"
if [ "$HAVE_STB" = 1 ] && [ "$TSF_STB" = 1 ]; then
    err "classify: a FIFO among a folder's frames is refused" "fifoframes/0001.png: not a regular file (a FIFO)" "$TO \$ASAN classify joint.safetensors fifoframes"
fi
ok "classify: a FIFO on stdin still works" "(cat short.rgb > fifo.clip &) && $TO \$ASAN classify joint.safetensors $RAW $S3 <fifo.clip | grep -q 'top 5 of 5'"
# --out: a symbolic link, a FIFO or a device is refused, not replaced
if [ "$TSF_STB" = 1 ]; then
    echo "the target" >"$W/target.txt"
    ln -s target.txt "$W/link.png"
    mkfifo "$W/ofifo.png"
    err "attention --out: a symbolic link is refused" "link.png: not a regular file (a symbolic link): refusing to replace it" \
        "$TO \$ASAN attention joint.safetensors short.clip $S3 --out link.png"
    err "attention --out: a FIFO is refused" "ofifo.png: not a regular file (a FIFO)" "$TO \$ASAN attention joint.safetensors short.clip $S3 --out ofifo.png"
    for dev in /dev/null /dev/full; do
        err "attention --out $dev is refused" "$dev: not a regular file (a character device)" "$TO \$ASAN attention joint.safetensors short.clip $S3 --out $dev"
    done
    ok "attention --out: the link, its target, the FIFO and the devices untouched" \
        'test -L link.png && [ "$(cat target.txt)" = "the target" ] && test -p ofifo.png && test -c /dev/null && test -c /dev/full'
    ok "attention --out: a regular file is replaced, no .part left" \
        "\$TSF attention joint.safetensors short.clip $S3 --out again.png && \$TSF attention joint.safetensors short.clip $S3 --out again.png && test ! -e again.png.part"
fi
# a path over 500 characters keeps the reason
LONGD=$(printf 'd%.0s' $(seq 200))
LONGD="long/$LONGD/$LONGD/$LONGD"
mkdir -p "$W/$LONGD"
cp "$W/cut.clip" "$W/$LONGD/cut.clip"
head -c 100 "$W/joint.safetensors" >"$W/$LONGD/cut.safetensors"
err "classify: a 600-character clip path keeps the reason" "cut.clip: a damaged clip file: malformed file (truncated" "\$TSF classify joint.safetensors $LONGD/cut.clip"
err "classify: a 600-character model path keeps the reason" "cut.safetensors: cannot load the model: malformed file (" "\$TSF classify $LONGD/cut.safetensors short.clip"
# /dev/null and /dev/full must still be device nodes; as root, put them back if a regression
# replaced them, so the machine stays usable
for dev in "/dev/null 3" "/dev/full 7"; do
    set -- $dev
    if test -c "$1"; then pass "$1 is still a character device"; else
        fail "$1 is no longer a character device" "tsf attention replaced it"
        if [ "$(id -u)" = 0 ]; then rm -f "$1" && mknod -m 666 "$1" c 1 "$2"; fi
    fi
done

# ---- without stb: images need libstb-dev, everything else works ---------------------------------
NOSTB=$TMP/tsf-nostb
if $CC -std=c99 -O0 -DTT_NO_STB -I"$ROOT" tools/tsf.c -o "$NOSTB" -lm >"$LOG" 2>&1; then
    pass "build: tsf without stb (-DTT_NO_STB)"
    err "no stb: a folder of frames says how to install libstb-dev" "sudo apt-get install libstb-dev" "\$NOSTB classify joint.safetensors frames"
    err "no stb: attention --out says how to install libstb-dev" "sudo apt-get install libstb-dev" "\$NOSTB attention joint.safetensors short.clip --out a.png"
    json "no stb: classify on a clip" "joint short" "\$NOSTB classify joint.safetensors short.clip $S3 --json"
    json "no stb: classify on raw stdin" "joint long" "\$NOSTB classify joint.safetensors $RAW $LONG --json <long.rgb"
    out "no stb: attention --json" '"total"' "\$NOSTB attention divided.safetensors short.clip --rollout --json"
else
    fail "build: tsf without stb (-DTT_NO_STB)" "$(head -c 1000 "$LOG")"
fi

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
