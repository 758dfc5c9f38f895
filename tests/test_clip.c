/* test_clip.c - tests of the clip format, the clip reader/writer, manifests and the loader
   (tsf_clip_part.h). A runner of its own; same output as test_main: `[PASS] name (N ms)`,
   `[FAIL] name: file:line: ...`, last line `N passed, N failed`, exit status 1 on failure.

   Build and run (from the repository root):
       cc -std=c99 -Wall -Wextra -Wpedantic -Wshadow -Wdouble-promotion -Wstrict-prototypes \
          -Wmissing-prototypes -Werror -O2 -g -I. tests/test_clip.c -o build/test_clip -lm
       ./build/test_clip              all tests
       ./build/test_clip fuzz         only the tests whose name contains "fuzz"
   Under ASan and UBSan: add -O1 -fsanitize=address,undefined -fno-sanitize-recover=all
   -fno-omit-frame-pointer. Files go to a fresh folder under $TMPDIR (or /tmp), removed at
   the end.

   This file compiles the library with a counting allocator (TSF_MALLOC/TSF_FREE with a
   context), so the tests can make the n-th allocation fail and check that nothing leaks. */
#include "tsf_test.h" /* first: it asks for POSIX */

#include <stdlib.h>
#include <string.h>
#include <unistd.h> /* rmdir, unlink */

/* A context for the allocator: fail the allocation number fail_at (1-based; 0: never). */
typedef struct test_alloc {
    int calls, fail_at;
    long live; /* allocations not yet freed */
} test_alloc;

static void *test_malloc(size_t n, void *ctx) {
    test_alloc *a = (test_alloc *)ctx;
    void *p;
    if (a && ++a->calls == a->fail_at) return NULL;
    p = malloc(n ? n : 1);
    if (a && p) a->live++;
    return p;
}

static void test_free(void *p, void *ctx) {
    test_alloc *a = (test_alloc *)ctx;
    if (a && p) a->live--;
    free(p);
}

#define TSF_MALLOC(sz, ctx) test_malloc((sz), (ctx))
#define TSF_FREE(p, ctx) test_free((p), (ctx))
#define TIMESFORMER_IMPLEMENTATION
#include "../timesformer.h"

/* ---- helpers ------------------------------------------------------------------------------ */
static char g_dir[512]; /* the test's temporary folder, made by main */

/* g_dir/name in a per-test buffer. */
static const char *tmp_path(const char *name) {
    char *p = (char *)tsft_alloc_bytes(strlen(g_dir) + strlen(name) + 2);
    sprintf(p, "%s/%s", g_dir, name);
    return p;
}

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n) {
        fprintf(stderr, "test_clip: cannot write %s\n", path);
        exit(2);
    }
    fclose(f);
}

static void write_text(const char *path, const char *text) {
    write_bytes(path, text, strlen(text));
}

static tsf_clip_header make_header(int T, int H, int W, int C) {
    tsf_clip_header h;
    h.T = T, h.H = H, h.W = W, h.C = C, h.fps = 0.0f, h.label = -1;
    return h;
}

/* A whole clip file in memory: header plus pixels from a seeded generator. */
static unsigned char *make_clip_bytes(const tsf_clip_header *h, unsigned long long seed,
                                      size_t *n) {
    size_t bytes = (size_t)tsf_clip_file_bytes(h), i;
    unsigned char *p = (unsigned char *)tsft_alloc_bytes(bytes);
    tsf_rng rng;
    tsf_rng_seed(&rng, seed);
    if (tsf_clip_header_encode(p, h) != TSF_OK) return NULL;
    for (i = TSF_CLIP_HEADER_BYTES; i < bytes; i++) p[i] = (unsigned char)(tsf_rng_u32(&rng) >> 24);
    *n = bytes;
    return p;
}

static int contains(const char *s, const char *part) { return strstr(s, part) != NULL; }

/* Record a failure: message `got` lacks `want` (both cut to fit the framework's buffer). */
static void record_lacks(const char *file, int line, const char *got, const char *want) {
    char buf[TSFT_MSG_LEN];
    size_t n = 0, i;
    const char *parts[5];
    int k;
    parts[0] = "message \"", parts[1] = got, parts[2] = "\" lacks \"", parts[3] = want,
    parts[4] = "\"";
    for (k = 0; k < 5; k++)
        for (i = 0; parts[k][i] && n + 1 < sizeof buf; i++) buf[n++] = parts[k][i];
    buf[n] = 0;
    tsft_record(file, line, buf);
}

/* ---- the header --------------------------------------------------------------------------- */
static void test_header_layout(void) {
    tsf_clip_header h = make_header(3, 480, 640, 3), r;
    unsigned char b[64];
    /* clang-format off */
    static const unsigned char want[40] = {
        'T', 'S', 'F', '_', 'C', 'L', 'I', 'P', /* magic        */
        1, 0, 0, 0,                             /* version 1    */
        64, 0, 0, 0,                            /* header size  */
        3, 0, 0, 0,                             /* T 3          */
        0xE0, 1, 0, 0,                          /* H 480        */
        0x80, 2, 0, 0,                          /* W 640        */
        3, 0, 0, 0,                             /* C 3          */
        0, 0, 0xF0, 0x41,                       /* fps 30.0f    */
        7, 0, 0, 0};                            /* label 7      */
    /* clang-format on */
    int i;
    h.fps = 30.0f, h.label = 7;
    REQUIRE(tsf_clip_header_encode(b, &h) == TSF_OK);
    CHECK(memcmp(b, want, 40) == 0); /* little-endian fields at the documented offsets */
    for (i = 40; i < 64; i++) CHECK_EQ_INT(b[i], 0);
    REQUIRE(tsf_clip_header_decode(&r, b, 64, NULL) == TSF_OK);
    CHECK_EQ_INT(r.T, 3), CHECK_EQ_INT(r.H, 480), CHECK_EQ_INT(r.W, 640), CHECK_EQ_INT(r.C, 3);
    CHECK(r.fps == 30.0f);
    CHECK_EQ_INT(r.label, 7);
    h.label = -1;
    REQUIRE(tsf_clip_header_encode(b, &h) == TSF_OK);
    CHECK(b[36] == 0xFF && b[37] == 0xFF && b[38] == 0xFF && b[39] == 0xFF);
    REQUIRE(tsf_clip_header_decode(&r, b, 100, NULL) == TSF_OK); /* only 64 bytes are read */
    CHECK_EQ_INT(r.label, -1);
    CHECK_EQ_INT(tsf_clip_frame_bytes(&r), 480 * 640 * 3);
    CHECK(tsf_clip_file_bytes(&r) == 64ull + 3ull * 480 * 640 * 3);
}

static void test_header_errors(void) {
    tsf_clip_header good = make_header(2, 3, 4, 3), h;
    unsigned char b[64], c[64];
    tsf_error err;
    int i;
    REQUIRE(tsf_clip_header_encode(b, &good) == TSF_OK);
    /* every field out of range, in memory */
    for (i = 0; i < 12; i++) {
        memcpy(c, b, 64);
        switch (i) {
        case 0:
            c[0] = 'X';
            break; /* magic */
        case 1:
            c[8] = 2;
            break; /* version */
        case 2:
            c[12] = 65;
            break; /* header size */
        case 3:
            c[16] = 0;
            break; /* T = 0 */
        case 4:
            c[19] = 0x80;
            break; /* T huge */
        case 5:
            c[20] = 0;
            break; /* H = 0 */
        case 6:
            c[26] = 1;
            break; /* W = 65540 > 16384 */
        case 7:
            c[28] = 5;
            break; /* C = 5 */
        case 8:
            c[35] = 0xBF;
            break; /* fps negative */
        case 9:
            c[34] = 0x80, c[35] = 0x7F;
            break; /* fps infinite */
        case 10:
            c[36] = 0xFE, c[37] = c[38] = c[39] = 0xFF;
            break; /* label -2 */
        case 11:
            c[63] = 1;
            break; /* reserved */
        }
        CHECK_EQ_INT(tsf_clip_header_decode(&h, c, 64, &err), TSF_ERR_FORMAT);
        CHECK(err.msg[0] != 0);
        CHECK_EQ_INT(h.T, 0); /* zeroed on failure */
    }
    CHECK_EQ_INT(tsf_clip_header_decode(&h, b, 63, &err), TSF_ERR_FORMAT);
    CHECK(contains(err.msg, "shorter than the 64-byte header"));
    memcpy(c, b, 64), c[8] = 2;
    tsf_clip_header_decode(&h, c, 64, &err);
    CHECK(contains(err.msg, "version 2"));
    memcpy(c, b, 64), c[28] = 5;
    tsf_clip_header_decode(&h, c, 64, &err);
    CHECK(contains(err.msg, "C = 5 is outside 1 .. 4"));
    CHECK_EQ_INT(tsf_clip_header_decode(NULL, b, 64, NULL), TSF_ERR_ARG);
    CHECK_EQ_INT(tsf_clip_header_decode(&h, NULL, 64, NULL), TSF_ERR_ARG);
    /* the encoder refuses what the decoder would */
    h = good, h.T = 0;
    CHECK_EQ_INT(tsf_clip_header_encode(b, &h), TSF_ERR_ARG);
    h = good, h.C = 0;
    CHECK_EQ_INT(tsf_clip_header_encode(b, &h), TSF_ERR_ARG);
    h = good, h.label = -5;
    CHECK_EQ_INT(tsf_clip_header_encode(b, &h), TSF_ERR_ARG);
    h = good, h.fps = -1.0f;
    CHECK_EQ_INT(tsf_clip_header_encode(b, &h), TSF_ERR_ARG);
    h = good, h.fps = 0.0f / (h.fps - h.fps); /* NaN */
    CHECK_EQ_INT(tsf_clip_header_encode(b, &h), TSF_ERR_ARG);
    CHECK_EQ_INT(tsf_clip_header_encode(NULL, &good), TSF_ERR_ARG);
    CHECK_EQ_INT(tsf_clip_header_encode(b, NULL), TSF_ERR_ARG);
    CHECK_EQ_INT(tsf_clip_header_check(NULL), TSF_ERR_ARG);
    h = good, h.W = 0;
    CHECK_EQ_INT(tsf_clip_frame_bytes(&h), 0);
    CHECK(tsf_clip_file_bytes(&h) == 0);
}

static void test_header_limits(void) {
    tsf_clip_header h = make_header(TSF_CLIP_MAX_FRAMES, TSF_CLIP_MAX_SIDE, TSF_CLIP_MAX_SIDE, 4);
    unsigned char b[64];
    tsf_error err;
    CHECK_EQ_INT(tsf_clip_header_check(&h), TSF_ERR_OVERFLOW); /* 2^50 bytes */
    CHECK_EQ_INT(tsf_clip_header_encode(b, &h), TSF_ERR_OVERFLOW);
    h = make_header(1 << 20, 1024, 1024, 1); /* exactly 2^40 bytes of pixels: over by 64 */
    CHECK_EQ_INT(tsf_clip_header_check(&h), TSF_ERR_OVERFLOW);
    h = make_header((1 << 20) - 1, 1024, 1024, 1); /* 2^40 - 2^20: fits */
    CHECK_EQ_INT(tsf_clip_header_check(&h), TSF_OK);
    REQUIRE(tsf_clip_header_encode(b, &h) == TSF_OK);
    b[16] = 0, b[17] = 0, b[18] = 0x10; /* T = 2^20 */
    CHECK_EQ_INT(tsf_clip_header_decode(&h, b, 64, &err), TSF_ERR_OVERFLOW);
    CHECK(contains(err.msg, "1 TiB"));
    h = make_header(1, TSF_CLIP_MAX_SIDE + 1, 1, 3);
    CHECK_EQ_INT(tsf_clip_header_check(&h), TSF_ERR_FORMAT);
    h = make_header(TSF_CLIP_MAX_FRAMES + 1, 1, 1, 3);
    CHECK_EQ_INT(tsf_clip_header_check(&h), TSF_ERR_FORMAT);
    h = make_header(1, 1, 1, 1);
    h.fps = TSF_CLIP_MAX_FPS;
    CHECK_EQ_INT(tsf_clip_header_check(&h), TSF_OK);
    h.fps = 2.0f * TSF_CLIP_MAX_FPS;
    CHECK_EQ_INT(tsf_clip_header_check(&h), TSF_ERR_FORMAT);
}

/* ---- clips in memory and in files --------------------------------------------------------- */
static void test_view_and_frames(void) {
    tsf_clip_header h = make_header(5, 3, 4, 3);
    size_t n, fb = 36;
    unsigned char *bytes = make_clip_bytes(&h, 1, &n),
                  *dst = (unsigned char *)tsft_alloc_bytes(5 * fb);
    tsf_clip clip;
    tsf_error err;
    REQUIRE(bytes);
    REQUIRE(tsf_clip_view(&clip, bytes, n, &err) == TSF_OK);
    CHECK(clip.pixels == bytes + 64 && clip.file == NULL && clip.owned == NULL);
    CHECK_EQ_INT(tsf_clip_read_frames(&clip, 1, 3, dst), TSF_OK);
    CHECK(memcmp(dst, bytes + 64 + fb, 3 * fb) == 0);
    CHECK_EQ_INT(tsf_clip_read_frames(&clip, 5, 0, dst), TSF_OK); /* empty range at the end */
    CHECK_EQ_INT(tsf_clip_read_frames(&clip, 0, 6, dst), TSF_ERR_ARG);
    CHECK_EQ_INT(tsf_clip_read_frames(&clip, 4, 2, dst), TSF_ERR_ARG);
    CHECK_EQ_INT(tsf_clip_read_frames(&clip, -1, 1, dst), TSF_ERR_ARG);
    CHECK_EQ_INT(tsf_clip_read_frames(&clip, 6, 0, dst), TSF_ERR_ARG);
    CHECK_EQ_INT(tsf_clip_read_frames(&clip, 0, -1, dst), TSF_ERR_ARG);
    CHECK_EQ_INT(tsf_clip_read_frames(&clip, 0, 1, NULL), TSF_ERR_ARG);
    CHECK_EQ_INT(tsf_clip_read_frames(NULL, 0, 1, dst), TSF_ERR_ARG);
    tsf_clip_close(&clip);
    tsf_clip_close(&clip); /* twice is fine */
    tsf_clip_close(NULL);
    CHECK_EQ_INT(tsf_clip_read_frames(&clip, 0, 1, dst), TSF_ERR_ARG); /* closed */
    CHECK_EQ_INT(tsf_clip_view(&clip, bytes, n - 1, &err), TSF_ERR_FORMAT);
    CHECK(contains(err.msg, "243 bytes, but the header describes 244"));
    CHECK_EQ_INT(tsf_clip_view(&clip, bytes, n + 0, NULL), TSF_OK);
    CHECK_EQ_INT(tsf_clip_view(NULL, bytes, n, NULL), TSF_ERR_ARG);
    CHECK_EQ_INT(tsf_clip_view(&clip, NULL, n, NULL), TSF_ERR_ARG);
    CHECK(clip.pixels == NULL);
}

static void test_file_roundtrip(void) {
    tsf_clip_header h = make_header(4, 5, 6, 3), r;
    size_t n, fb = 90;
    unsigned char *bytes, *dst = (unsigned char *)tsft_alloc_bytes(4 * fb), *file;
    const char *path = tmp_path("rt.clip");
    tsf_clip clip;
    tsf_error err;
    test_alloc a = {0, 0, 0};
    FILE *f;
    h.fps = 29.97f, h.label = 12;
    bytes = make_clip_bytes(&h, 2, &n);
    REQUIRE(bytes);
    REQUIRE(tsf_clip_save(path, &h, bytes + 64) == TSF_OK);
    /* the saved file is byte for byte the encoder's header plus the pixels */
    file = (unsigned char *)tsft_alloc_bytes(n + 1);
    f = fopen(path, "rb");
    REQUIRE(f);
    CHECK_EQ_INT(fread(file, 1, n + 1, f), n);
    fclose(f);
    CHECK(memcmp(file, bytes, n) == 0);
    REQUIRE(tsf_clip_read_header(&r, path, &err) == TSF_OK);
    CHECK(r.T == 4 && r.H == 5 && r.W == 6 && r.C == 3 && r.fps == 29.97f && r.label == 12);
    /* streaming: frames on demand, in any order */
    REQUIRE(tsf_clip_open(&clip, path, &a, &err) == TSF_OK);
    CHECK(clip.file != NULL && clip.pixels == NULL);
    CHECK_EQ_INT(tsf_clip_read_frames(&clip, 3, 1, dst), TSF_OK);
    CHECK(memcmp(dst, bytes + 64 + 3 * fb, fb) == 0);
    CHECK_EQ_INT(tsf_clip_read_frames(&clip, 0, 4, dst), TSF_OK);
    CHECK(memcmp(dst, bytes + 64, 4 * fb) == 0);
    CHECK_EQ_INT(a.calls, 0); /* streaming allocates nothing */
    tsf_clip_close(&clip);
    /* whole clip in memory */
    REQUIRE(tsf_clip_load(&clip, path, &a, &err) == TSF_OK);
    CHECK(clip.file == NULL && clip.pixels && clip.owned);
    CHECK(memcmp(clip.pixels, bytes + 64, 4 * fb) == 0);
    CHECK_EQ_INT(a.live, 1);
    tsf_clip_close(&clip);
    CHECK_EQ_INT(a.live, 0);
    /* allocation failure */
    a.calls = 0, a.fail_at = 1;
    CHECK_EQ_INT(tsf_clip_load(&clip, path, &a, NULL), TSF_ERR_ALLOC);
    CHECK_EQ_INT(a.live, 0);
    CHECK(clip.file == NULL && clip.owned == NULL);
    /* save errors */
    CHECK_EQ_INT(tsf_clip_save(tmp_path("no/such/dir.clip"), &h, bytes + 64), TSF_ERR_IO);
    CHECK_EQ_INT(tsf_clip_save(NULL, &h, bytes + 64), TSF_ERR_ARG);
    CHECK_EQ_INT(tsf_clip_save(path, &h, NULL), TSF_ERR_ARG);
    r = h, r.H = 0;
    CHECK_EQ_INT(tsf_clip_save(path, &r, bytes + 64), TSF_ERR_ARG);
    CHECK_EQ_INT(tsf_clip_save(path, NULL, bytes + 64), TSF_ERR_ARG);
    unlink(path);
}

static void test_file_errors(void) {
    tsf_clip_header h = make_header(2, 2, 2, 3), r;
    size_t n;
    unsigned char *bytes = make_clip_bytes(&h, 3, &n),
                  *big = (unsigned char *)tsft_alloc_bytes(n + 1);
    const char *path = tmp_path("bad.clip");
    tsf_clip clip;
    tsf_error err;
    REQUIRE(bytes);
    CHECK_EQ_INT(tsf_clip_open(&clip, tmp_path("missing.clip"), NULL, &err), TSF_ERR_IO);
    CHECK(contains(err.msg, "cannot open"));
    CHECK_EQ_INT(tsf_clip_read_header(&r, tmp_path("missing.clip"), NULL), TSF_ERR_IO);
    CHECK_EQ_INT(tsf_clip_load(&clip, tmp_path("missing.clip"), NULL, NULL), TSF_ERR_IO);
    CHECK_EQ_INT(tsf_clip_open(&clip, g_dir, NULL, &err), TSF_ERR_IO); /* a folder */
    CHECK_EQ_INT(tsf_clip_open(&clip, NULL, NULL, NULL), TSF_ERR_ARG);
    CHECK_EQ_INT(tsf_clip_open(NULL, path, NULL, NULL), TSF_ERR_ARG);
    CHECK_EQ_INT(tsf_clip_read_header(NULL, path, NULL), TSF_ERR_ARG);
    write_bytes(path, bytes, n - 1);
    CHECK_EQ_INT(tsf_clip_open(&clip, path, NULL, &err), TSF_ERR_FORMAT);
    CHECK(contains(err.msg, "truncated: the header describes 88 bytes"));
    CHECK(clip.file == NULL);
    memcpy(big, bytes, n), big[n] = 0;
    write_bytes(path, big, n + 1);
    CHECK_EQ_INT(tsf_clip_open(&clip, path, NULL, &err), TSF_ERR_FORMAT);
    CHECK(contains(err.msg, "bytes after the 88"));
    CHECK_EQ_INT(tsf_clip_load(&clip, path, NULL, NULL), TSF_ERR_FORMAT);
    write_bytes(path, bytes, 10);
    CHECK_EQ_INT(tsf_clip_read_header(&r, path, &err), TSF_ERR_FORMAT);
    CHECK(contains(err.msg, "10 bytes: shorter than the 64-byte header"));
    write_bytes(path, bytes, 0);
    CHECK_EQ_INT(tsf_clip_read_header(&r, path, &err), TSF_ERR_FORMAT);
    write_text(path, "hello, this is not a clip file but it is long enough to hold a header.");
    CHECK_EQ_INT(tsf_clip_read_header(&r, path, &err), TSF_ERR_FORMAT);
    CHECK(contains(err.msg, "not a clip file"));
    /* a hostile header announcing 16384 x 16384 frames: rejected by size, no allocation */
    {
        tsf_clip_header hh = make_header(4, 16384, 16384, 3);
        test_alloc a = {0, 0, 0};
        REQUIRE(tsf_clip_header_encode(bytes, &hh) == TSF_OK);
        write_bytes(path, bytes, n);
        CHECK_EQ_INT(tsf_clip_load(&clip, path, &a, &err), TSF_ERR_FORMAT);
        CHECK_EQ_INT(a.calls, 0);
    }
    unlink(path);
}

/* Exercise a clip that decoded fine: read every frame and take a train and a test sample. */
static void use_clip(tsf_clip *clip, tsf_rng *rng) {
    tsf_sample_opts o;
    float *x;
    unsigned char *frames;
    memset(&o, 0, sizeof o);
    o.frames = 3, o.size = 2, o.stride = 2;
    frames = (unsigned char *)malloc(tsf_clip_frame_bytes(&clip->h) * (size_t)clip->h.T);
    x = (float *)malloc(sizeof(float) * 3 * 3 * 2 * 2);
    if (frames && x) {
        CHECK_EQ_INT(tsf_clip_read_frames(clip, 0, clip->h.T, frames), TSF_OK);
        CHECK_EQ_INT(tsf_clip_sample(x, clip, &o, rng, TSF_VIEW_TRAIN), TSF_OK);
        CHECK_EQ_INT(tsf_clip_sample(x, clip, &o, NULL, 2), TSF_OK);
    }
    free(frames), free(x);
}

/* Every truncation, every header bit flipped, and random header corruption, in memory and
   as files: never a crash (run it under ASan), an error for every truncation, and a usable
   clip whenever the reader says TSF_OK. */
static void test_fuzz_corpus(void) {
    tsf_clip_header h = make_header(3, 4, 5, 3);
    size_t n, len, bit;
    unsigned char *good = make_clip_bytes(&h, 4, &n),
                  *buf = (unsigned char *)tsft_alloc_bytes(n + 8);
    const char *path = tmp_path("fuzz.clip");
    tsf_rng rng;
    tsf_clip clip;
    tsf_error err;
    int i, ok_flips = 0, cases = 0;
    REQUIRE(good);
    tsf_rng_seed(&rng, 1234);
    for (len = 0; len < n + 8; len++) { /* truncations and trailing garbage */
        memcpy(buf, good, len < n ? len : n);
        if (len > n) memset(buf + n, 0xAB, len - n);
        CHECK_EQ_INT(tsf_clip_view(&clip, buf, len, &err), len == n ? TSF_OK : TSF_ERR_FORMAT);
        if (len != n) CHECK(err.msg[0] != 0);
        tsf_clip_close(&clip);
        write_bytes(path, buf, len);
        CHECK_EQ_INT(tsf_clip_open(&clip, path, NULL, &err), len == n ? TSF_OK : TSF_ERR_FORMAT);
        if (len == n) use_clip(&clip, &rng);
        tsf_clip_close(&clip);
        cases++;
    }
    for (bit = 0; bit < 8 * n; bit++) { /* every single bit of the file */
        tsf_status sm, sf;
        memcpy(buf, good, n);
        buf[bit / 8] ^= (unsigned char)(1u << (bit % 8));
        sm = tsf_clip_view(&clip, buf, n, &err);
        if (sm == TSF_OK)
            use_clip(&clip, &rng), ok_flips++;
        else
            CHECK(sm == TSF_ERR_FORMAT || sm == TSF_ERR_OVERFLOW);
        tsf_clip_close(&clip);
        if (bit < 8 * 64 || bit % 97 == 0) { /* the header, and a sample of the pixels */
            write_bytes(path, buf, n);
            sf = tsf_clip_load(&clip, path, NULL, &err);
            CHECK_EQ_INT(sf, sm);
            if (sf == TSF_OK) use_clip(&clip, &rng);
            tsf_clip_close(&clip);
        }
        cases++;
    }
    /* the flips that still decode: pixels, fps bits that stay finite, label bits */
    CHECK(ok_flips >= 8 * (int)(n - 64));
    for (i = 0; i < 3000; i++) { /* 1 to 4 random header bytes set to random or extreme values */
        int k, m = 1 + (int)(tsf_rng_u32(&rng) % 4);
        tsf_status sm, sf;
        memcpy(buf, good, n);
        for (k = 0; k < m; k++) {
            unsigned int r = tsf_rng_u32(&rng), v = r >> 24;
            buf[(r >> 8) % 64] = (unsigned char)((r & 3) == 0 ? 0xFF : (r & 3) == 1 ? 0 : v);
        }
        sm = tsf_clip_view(&clip, buf, n, NULL);
        if (sm == TSF_OK) use_clip(&clip, &rng);
        tsf_clip_close(&clip);
        if (i % 10 == 0) {
            write_bytes(path, buf, n);
            sf = tsf_clip_open(&clip, path, NULL, NULL);
            CHECK_EQ_INT(sf, sm);
            if (sf == TSF_OK) use_clip(&clip, &rng);
            tsf_clip_close(&clip);
        }
        cases++;
    }
    CHECK(cases > 4000);
    unlink(path);
}

/* ---- sampling ----------------------------------------------------------------------------- */
static void test_opts_resolve(void) {
    tsf_sample_opts o, b;
    memset(&o, 0, sizeof o);
    REQUIRE(tsf_sample_opts_resolve(&o) == TSF_OK);
    CHECK_EQ_INT(o.frames, 8), CHECK_EQ_INT(o.size, 224), CHECK_EQ_INT(o.stride, 32);
    CHECK_EQ_INT(o.scale_min, 256), CHECK_EQ_INT(o.scale_max, 320);
    CHECK_EQ_INT(o.test_clips, 1), CHECK_EQ_INT(o.test_crops, 3);
    CHECK(o.mean[0] == 0.45f && o.mean[2] == 0.45f && o.std[1] == 0.225f);
    CHECK_EQ_INT(tsf_sample_num_views(&o), 3);
    memset(&o, 0, sizeof o);
    o.size = 112, o.test_clips = 4;
    REQUIRE(tsf_sample_opts_resolve(&o) == TSF_OK);
    CHECK_EQ_INT(o.scale_min, 128), CHECK_EQ_INT(o.scale_max, 160);
    CHECK_EQ_INT(tsf_sample_num_views(&o), 12);
    o.sampling = TSF_SAMPLE_SEGMENT;
    CHECK_EQ_INT(tsf_sample_num_views(&o), 3); /* segment: one temporal view */
    memset(&b, 0, sizeof b);
    CHECK_EQ_INT(tsf_sample_opts_resolve(NULL), TSF_ERR_ARG);
    CHECK_EQ_INT(tsf_sample_num_views(NULL), 0);
#define BAD(stmt)                                                                                  \
    do {                                                                                           \
        o = b;                                                                                     \
        stmt;                                                                                      \
        CHECK_EQ_INT(tsf_sample_opts_resolve(&o), TSF_ERR_CONFIG);                                 \
        CHECK_EQ_INT(tsf_sample_num_views(&o), 0);                                                 \
    } while (0)
    BAD(o.frames = -1);
    BAD(o.frames = TSF_CLIP_MAX_FRAMES + 1);
    BAD(o.size = -3);
    BAD(o.size = TSF_CLIP_MAX_SIDE + 1);
    BAD(o.stride = -1);
    BAD(o.sampling = 2);
    BAD(o.target_fps = -1.0f);
    BAD(o.test_clips = -1);
    BAD(o.test_clips = 5000);
    BAD(o.test_crops = 2);
    BAD(o.bgr = 2);
    BAD(o.scale_min = 200);                      /* below S */
    BAD((o.scale_min = 300, o.scale_max = 290)); /* max < min */
    BAD(o.scale_max = 100000);
    BAD(o.std[0] = -1.0f);
    BAD((o.std[1] = 1.0f, o.std[2] = 0.0f)); /* set, but one of them zero */
    BAD((o.std[0] = o.std[1] = o.std[2] = 1.0f, o.mean[1] = 1e31f));
#undef BAD
}

static tsf_sample_opts dense_opts(int T, int stride, int clips) {
    tsf_sample_opts o;
    memset(&o, 0, sizeof o);
    o.frames = T, o.stride = stride, o.test_clips = clips;
    return o;
}

static void check_idx(const int *got, const int *want, int T, const char *what) {
    int i;
    for (i = 0; i < T; i++)
        if (got[i] != want[i]) {
            char buf[200];
            sprintf(buf, "%s: index %d is %d, want %d", what, i, got[i], want[i]);
            tsft_record(__FILE__, __LINE__, buf);
            return;
        }
}

/* Dense sampling, worked by hand from SlowFast's get_start_end_idx + torch.linspace. */
static void test_dense_indices(void) {
    tsf_sample_opts o = dense_opts(8, 32, 1);
    int idx[8];
    /* 300 frames, 1 view: start 0, end 255, step 255/7 = 36.43 */
    static const int w1[8] = {0, 36, 72, 109, 145, 182, 218, 255};
    /* 2 clips, clip 1 (views 3..5): delta 44, start 22, end 277 */
    static const int w2[8] = {22, 58, 94, 131, 167, 204, 240, 277};
    /* 100 frames: shorter than the span; clamped to 99 */
    static const int w3[8] = {0, 36, 72, 99, 99, 99, 99, 99};
    /* fps 15 with target 30: span 32*8/30*15 = 128, end 127, step 18.14 */
    static const int w4[8] = {0, 18, 36, 54, 72, 90, 108, 127};
    REQUIRE(tsf_sample_frames(idx, 300, 0.0f, &o, NULL, 0) == TSF_OK);
    check_idx(idx, w1, 8, "300 frames, view 0");
    REQUIRE(tsf_sample_frames(idx, 300, 30.0f, &o, NULL, 2) == TSF_OK); /* the crop differs only */
    check_idx(idx, w1, 8, "300 frames, view 2");
    o = dense_opts(8, 32, 2);
    REQUIRE(tsf_sample_frames(idx, 300, 0.0f, &o, NULL, 0) == TSF_OK);
    check_idx(idx, w1, 8, "2 clips, clip 0");
    REQUIRE(tsf_sample_frames(idx, 300, 0.0f, &o, NULL, 4) == TSF_OK);
    check_idx(idx, w2, 8, "2 clips, clip 1");
    o = dense_opts(8, 32, 1);
    REQUIRE(tsf_sample_frames(idx, 100, 0.0f, &o, NULL, 1) == TSF_OK);
    check_idx(idx, w3, 8, "100 frames");
    o.target_fps = 30.0f;
    REQUIRE(tsf_sample_frames(idx, 300, 15.0f, &o, NULL, 1) == TSF_OK);
    check_idx(idx, w4, 8, "fps 15 -> 30");
    REQUIRE(tsf_sample_frames(idx, 300, 0.0f, &o, NULL, 1) == TSF_OK); /* fps unknown: no scaling */
    check_idx(idx, w1, 8, "fps unknown");
    /* one frame: linspace(start, end, 1) = start; 2 clips of 300: clip 1 starts at 268/2 */
    o = dense_opts(1, 32, 2);
    REQUIRE(tsf_sample_frames(idx, 300, 0.0f, &o, NULL, 3) == TSF_OK);
    CHECK_EQ_INT(idx[0], 134);
    /* a one-frame clip */
    o = dense_opts(4, 2, 1);
    REQUIRE(tsf_sample_frames(idx, 1, 0.0f, &o, NULL, 0) == TSF_OK);
    CHECK(idx[0] == 0 && idx[1] == 0 && idx[2] == 0 && idx[3] == 0);
    /* 4 frames with stride 2 out of 10, 3 clips: delta 2, starts 0, 2/3, 4/3; ends +7 */
    o = dense_opts(4, 2, 3);
    {
        static const int c0[4] = {0, 2, 4, 7}, c1[4] = {0, 3, 5, 7}, c2[4] = {1, 3, 6, 8};
        REQUIRE(tsf_sample_frames(idx, 10, 0.0f, &o, NULL, 0) == TSF_OK);
        check_idx(idx, c0, 4, "3 clips, clip 0");
        REQUIRE(tsf_sample_frames(idx, 10, 0.0f, &o, NULL, 3) == TSF_OK);
        check_idx(idx, c1, 4, "3 clips, clip 1");
        REQUIRE(tsf_sample_frames(idx, 10, 0.0f, &o, NULL, 8) == TSF_OK);
        check_idx(idx, c2, 4, "3 clips, clip 2");
    }
}

static void test_dense_train(void) {
    tsf_sample_opts o = dense_opts(8, 32, 1);
    tsf_rng rng, rng2;
    int idx[8], i, k, lo = 1000, hi = -1;
    tsf_rng_seed(&rng, 5);
    for (k = 0; k < 500; k++) {
        tsf_rng r0 = rng;
        float u;
        REQUIRE(tsf_sample_frames(idx, 300, 0.0f, &o, &rng, TSF_VIEW_TRAIN) == TSF_OK);
        u = tsf_rng_uniform(&r0); /* the one draw: start = 44 * u */
        CHECK_EQ_INT(idx[0], (int)(44.0 * (double)u));
        CHECK(idx[7] - idx[0] >= 254 && idx[7] - idx[0] <= 256);
        for (i = 1; i < 8; i++) CHECK(idx[i] - idx[i - 1] >= 35 && idx[i] - idx[i - 1] <= 37);
        lo = idx[0] < lo ? idx[0] : lo, hi = idx[0] > hi ? idx[0] : hi;
        CHECK(memcmp(&r0, &rng, sizeof rng) == 0); /* exactly one draw */
    }
    CHECK(lo <= 2 && hi >= 41); /* covers [0, 44) */
    /* shorter than the span: start 0, no randomness left but one draw is still made */
    tsf_rng_seed(&rng, 6), rng2 = rng;
    REQUIRE(tsf_sample_frames(idx, 50, 0.0f, &o, &rng, TSF_VIEW_TRAIN) == TSF_OK);
    CHECK(idx[0] == 0 && idx[1] == 36 && idx[2] == 49 && idx[7] == 49);
    tsf_rng_u32(&rng2);
    CHECK(memcmp(&rng, &rng2, sizeof rng) == 0);
}

/* Segment sampling, worked by hand from TimeSformer's ssv2.py (numpy's round half to even). */
static void test_segment_indices(void) {
    tsf_sample_opts o;
    int idx[8], i, k;
    /* 50 frames, T 8: seg = 49/8 = 6.125; bounds round(6.125 i) = 0 6 12 18 24 31 37 43 49
       (24.5 rounds to 24) */
    static const int lo[8] = {0, 6, 12, 18, 24, 31, 37, 43},
                     hi[8] = {6, 12, 18, 24, 31, 37, 43, 49};
    static const int mid[8] = {3, 9, 15, 21, 27, 34, 40, 46};
    tsf_rng rng;
    memset(&o, 0, sizeof o);
    o.sampling = TSF_SAMPLE_SEGMENT;
    REQUIRE(tsf_sample_frames(idx, 50, 0.0f, &o, NULL, 0) == TSF_OK);
    check_idx(idx, mid, 8, "segment middles");
    REQUIRE(tsf_sample_frames(idx, 50, 0.0f, &o, NULL, 2) == TSF_OK);
    check_idx(idx, mid, 8, "segment middles, crop 2");
    CHECK_EQ_INT(tsf_sample_frames(idx, 50, 0.0f, &o, NULL, 3), TSF_ERR_ARG); /* 3 views only */
    tsf_rng_seed(&rng, 7);
    {
        int seen_lo[8] = {0}, seen_hi[8] = {0};
        for (k = 0; k < 400; k++) {
            REQUIRE(tsf_sample_frames(idx, 50, 0.0f, &o, &rng, TSF_VIEW_TRAIN) == TSF_OK);
            for (i = 0; i < 8; i++) {
                CHECK(idx[i] >= lo[i] && idx[i] <= hi[i]);
                seen_lo[i] |= idx[i] == lo[i], seen_hi[i] |= idx[i] == hi[i];
            }
        }
        for (i = 0; i < 8; i++) CHECK(seen_lo[i] && seen_hi[i]); /* both ends are drawn */
    }
    REQUIRE(tsf_sample_frames(idx, 1, 0.0f, &o, &rng, TSF_VIEW_TRAIN) == TSF_OK);
    for (i = 0; i < 8; i++) CHECK_EQ_INT(idx[i], 0);
    /* 9 frames, T 4: seg 2, bounds 0 2 4 6 8, middles 1 3 5 7 */
    o.frames = 4;
    {
        static const int w[4] = {1, 3, 5, 7};
        REQUIRE(tsf_sample_frames(idx, 9, 0.0f, &o, NULL, 1) == TSF_OK);
        check_idx(idx, w, 4, "9 frames");
    }
}

static void test_sample_frames_errors(void) {
    tsf_sample_opts o = dense_opts(8, 32, 1);
    int idx[8];
    tsf_rng rng;
    tsf_rng_seed(&rng, 1);
    CHECK_EQ_INT(tsf_sample_frames(idx, 300, 0.0f, &o, NULL, TSF_VIEW_TRAIN), TSF_ERR_ARG);
    CHECK_EQ_INT(tsf_sample_frames(idx, 300, 0.0f, &o, &rng, 3), TSF_ERR_ARG);
    CHECK_EQ_INT(tsf_sample_frames(idx, 300, 0.0f, &o, &rng, -2), TSF_ERR_ARG);
    CHECK_EQ_INT(tsf_sample_frames(idx, 0, 0.0f, &o, &rng, 0), TSF_ERR_ARG);
    CHECK_EQ_INT(tsf_sample_frames(idx, 300, -1.0f, &o, &rng, 0), TSF_ERR_ARG);
    CHECK_EQ_INT(tsf_sample_frames(NULL, 300, 0.0f, &o, &rng, 0), TSF_ERR_ARG);
    CHECK_EQ_INT(tsf_sample_frames(idx, 300, 0.0f, NULL, &rng, 0), TSF_ERR_ARG);
    o.test_crops = 2;
    CHECK_EQ_INT(tsf_sample_frames(idx, 300, 0.0f, &o, &rng, 0), TSF_ERR_CONFIG);
}

static void check_crop(const tsf_crop *c, int h, int w, int y, int x, int flip, const char *what) {
    if (c->height != h || c->width != w || c->y != y || c->x != x || c->flip != flip) {
        char buf[300];
        sprintf(buf, "%s: crop %dx%d at (%d, %d) flip %d, want %dx%d at (%d, %d) flip %d", what,
                c->height, c->width, c->y, c->x, c->flip, h, w, y, x, flip);
        tsft_record(__FILE__, __LINE__, buf);
    }
}

/* Test crops, worked by hand from SlowFast's uniform_crop. */
static void test_test_crops(void) {
    tsf_sample_opts o;
    tsf_crop c;
    memset(&o, 0, sizeof o);
    /* landscape 240 x 320: short side 224, long floor(320/240*224) = 298; x = 0, 37, 74 */
    REQUIRE(tsf_sample_crop(&c, 240, 320, &o, NULL, 0) == TSF_OK);
    check_crop(&c, 224, 298, 0, 0, 0, "landscape left");
    REQUIRE(tsf_sample_crop(&c, 240, 320, &o, NULL, 1) == TSF_OK);
    check_crop(&c, 224, 298, 0, 37, 0, "landscape centre");
    REQUIRE(tsf_sample_crop(&c, 240, 320, &o, NULL, 2) == TSF_OK);
    check_crop(&c, 224, 298, 0, 74, 0, "landscape right");
    /* portrait: the crops move along y */
    REQUIRE(tsf_sample_crop(&c, 320, 240, &o, NULL, 0) == TSF_OK);
    check_crop(&c, 298, 224, 0, 0, 0, "portrait top");
    REQUIRE(tsf_sample_crop(&c, 320, 240, &o, NULL, 1) == TSF_OK);
    check_crop(&c, 298, 224, 37, 0, 0, "portrait centre");
    REQUIRE(tsf_sample_crop(&c, 320, 240, &o, NULL, 2) == TSF_OK);
    check_crop(&c, 298, 224, 74, 0, 0, "portrait bottom");
    /* short side already 224: no resize; centre ceil(76/2) = 38, ceil(77/2) = 39 */
    REQUIRE(tsf_sample_crop(&c, 224, 300, &o, NULL, 1) == TSF_OK);
    check_crop(&c, 224, 300, 0, 38, 0, "no resize, even");
    REQUIRE(tsf_sample_crop(&c, 224, 301, &o, NULL, 1) == TSF_OK);
    check_crop(&c, 224, 301, 0, 39, 0, "no resize, odd");
    REQUIRE(tsf_sample_crop(&c, 224, 301, &o, NULL, 2) == TSF_OK);
    check_crop(&c, 224, 301, 0, 77, 0, "no resize, right");
    /* square: every crop is the whole frame */
    REQUIRE(tsf_sample_crop(&c, 256, 256, &o, NULL, 2) == TSF_OK);
    check_crop(&c, 224, 224, 0, 0, 0, "square");
    /* 1080p to 224: long floor(1920/1080*224) = floor(398.22) = 398, centre 87 */
    REQUIRE(tsf_sample_crop(&c, 1080, 1920, &o, NULL, 1) == TSF_OK);
    check_crop(&c, 224, 398, 0, 87, 0, "1080p centre");
    /* upscaling a small frame: 100 x 150 -> 224 x 336 */
    REQUIRE(tsf_sample_crop(&c, 100, 150, &o, NULL, 2) == TSF_OK);
    check_crop(&c, 224, 336, 0, 112, 0, "upscale right");
    /* one crop: the centre, view 0 */
    o.test_crops = 1, o.test_clips = 2;
    REQUIRE(tsf_sample_crop(&c, 240, 320, &o, NULL, 0) == TSF_OK);
    check_crop(&c, 224, 298, 0, 37, 0, "single crop");
    REQUIRE(tsf_sample_crop(&c, 240, 320, &o, NULL, 1) == TSF_OK); /* clip 1: same crop */
    check_crop(&c, 224, 298, 0, 37, 0, "single crop, clip 1");
    CHECK_EQ_INT(tsf_sample_crop(&c, 240, 320, &o, NULL, 2), TSF_ERR_ARG);
    CHECK_EQ_INT(tsf_sample_crop(&c, 0, 320, &o, NULL, 0), TSF_ERR_ARG);
    CHECK_EQ_INT(tsf_sample_crop(&c, 240, TSF_CLIP_MAX_SIDE + 1, &o, NULL, 0), TSF_ERR_ARG);
    CHECK_EQ_INT(tsf_sample_crop(NULL, 240, 320, &o, NULL, 0), TSF_ERR_ARG);
}

/* Training crops: the documented draws, replayed by hand from a copy of the generator. */
static void test_train_crops(void) {
    tsf_sample_opts o;
    tsf_crop c;
    tsf_rng rng;
    int k, flips = 0, smin = 1000, smax = 0;
    memset(&o, 0, sizeof o);
    tsf_rng_seed(&rng, 11);
    for (k = 0; k < 2000; k++) {
        tsf_rng r = rng;
        int s, y, x, flip, w;
        REQUIRE(tsf_sample_crop(&c, 240, 320, &o, &rng, TSF_VIEW_TRAIN) == TSF_OK);
        s = (int)rint(256.0 + 64.0 * (double)tsf_rng_uniform(&r));
        w = (int)floor(320.0 / 240.0 * s);
        y = (int)(((unsigned long long)tsf_rng_u32(&r) * (unsigned)(s - 224 + 1)) >> 32);
        x = (int)(((unsigned long long)tsf_rng_u32(&r) * (unsigned)(w - 224 + 1)) >> 32);
        flip = tsf_rng_uniform(&r) < 0.5f;
        check_crop(&c, s, w, y, x, flip, "train crop");
        CHECK(memcmp(&r, &rng, sizeof r) == 0); /* exactly these four draws */
        CHECK(c.y + 224 <= c.height && c.x + 224 <= c.width);
        flips += c.flip;
        smin = s < smin ? s : smin, smax = s > smax ? s : smax;
    }
    CHECK(flips > 900 && flips < 1100);
    CHECK(smin == 256 && smax == 320);
    /* no flip: one draw fewer */
    o.no_flip = 1;
    for (k = 0; k < 200; k++) {
        tsf_rng r = rng;
        REQUIRE(tsf_sample_crop(&c, 240, 320, &o, &rng, TSF_VIEW_TRAIN) == TSF_OK);
        CHECK_EQ_INT(c.flip, 0);
        tsf_rng_u32(&r), tsf_rng_u32(&r), tsf_rng_u32(&r);
        CHECK(memcmp(&r, &rng, sizeof r) == 0);
    }
    /* inverse-uniform: s = round(1 / U[1/320, 1/256]); more small sides than large ones */
    o.inv_uniform = 1;
    {
        int below = 0;
        for (k = 0; k < 2000; k++) {
            tsf_rng r = rng;
            double u;
            REQUIRE(tsf_sample_crop(&c, 300, 300, &o, &rng, TSF_VIEW_TRAIN) == TSF_OK);
            u = (double)tsf_rng_uniform(&r);
            CHECK_EQ_INT(c.height, (int)rint(1.0 / (1.0 / 320 + (1.0 / 256 - 1.0 / 320) * u)));
            CHECK(c.height == c.width && c.height >= 256 && c.height <= 320);
            below += c.height < 288;
        }
        CHECK(below > 1100); /* uniform would give about 1000 */
    }
    /* a frame already at the drawn size is left alone: 256 x 400 with scale fixed at 256 */
    memset(&o, 0, sizeof o);
    o.scale_min = o.scale_max = 256;
    REQUIRE(tsf_sample_crop(&c, 256, 400, &o, &rng, TSF_VIEW_TRAIN) == TSF_OK);
    CHECK(c.height == 256 && c.width == 400);
    CHECK_EQ_INT(tsf_sample_crop(&c, 256, 400, &o, NULL, TSF_VIEW_TRAIN), TSF_ERR_ARG);
}

/* ---- the frame transform ------------------------------------------------------------------ */
static void test_transform_identity(void) {
    unsigned char frame[6 * 6 * 3];
    float out[3 * 36], mean[3] = {0.1f, 0.2f, 0.3f}, sd[3] = {0.5f, 0.25f, 0.125f};
    tsf_crop c = {6, 6, 0, 0, 0};
    int i, j, ch, exact = 1;
    for (i = 0; i < 6 * 6 * 3; i++) frame[i] = (unsigned char)(i * 37 + 11);
    tsf_frame_transform(out, 36, frame, 6, 6, 3, &c, 6, mean, sd, 0);
    for (ch = 0; ch < 3; ch++)
        for (i = 0; i < 36; i++) {
            float scale = 1.0f / (255.0f * sd[ch]), shift = mean[ch] / sd[ch];
            exact &= out[ch * 36 + i] == (float)frame[i * 3 + ch] * scale - shift;
        }
    CHECK(exact); /* bit for bit the normalisation of tsf_model_forward_u8 */
    c.flip = 1;   /* mirrored */
    tsf_frame_transform(out, 36, frame, 6, 6, 3, &c, 6, mean, sd, 1); /* and BGR */
    exact = 1;
    for (ch = 0; ch < 3; ch++)
        for (i = 0; i < 6; i++)
            for (j = 0; j < 6; j++) {
                float scale = 1.0f / (255.0f * sd[ch]), shift = mean[ch] / sd[ch];
                float want = (float)frame[(i * 6 + 5 - j) * 3 + 2 - ch] * scale - shift;
                exact &= out[ch * 36 + i * 6 + j] == want;
            }
    CHECK(exact);
    /* a crop without resizing: a window of the frame */
    {
        tsf_crop w = {6, 6, 2, 1, 0};
        float o2[3 * 9];
        tsf_frame_transform(o2, 9, frame, 6, 6, 3, &w, 3, mean, sd, 0);
        exact = 1;
        for (i = 0; i < 3; i++)
            for (j = 0; j < 3; j++) {
                float scale = 1.0f / (255.0f * sd[1]), shift = mean[1] / sd[1];
                exact &= o2[9 + i * 3 + j] ==
                         (float)frame[((2 + i) * 6 + 1 + j) * 3 + 1] * scale - shift;
            }
        CHECK(exact);
    }
}

/* Bilinear values worked by hand (PyTorch's align_corners=False rule). */
static void test_transform_bilinear(void) {
    /* 2 x 2 gray to 4 x 4: coordinates 0, 0.25, 0.75, 1 (clamped at both ends) */
    unsigned char f2[4] = {0, 100, 200, 40};
    float out[16], mean = 0.0f, sd = 1.0f / 255.0f; /* v = pixel */
    double w[4][2] = {{1, 0}, {0.75, 0.25}, {0.25, 0.75}, {0, 1}}, want[16];
    tsf_crop c = {4, 4, 0, 0, 0};
    int i, j;
    for (i = 0; i < 4; i++)
        for (j = 0; j < 4; j++)
            want[i * 4 + j] =
                w[i][0] * (w[j][0] * 0 + w[j][1] * 100) + w[i][1] * (w[j][0] * 200 + w[j][1] * 40);
    tsf_frame_transform(out, 16, f2, 2, 2, 1, &c, 4, &mean, &sd, 0);
    CHECK_ARRAY_NEAR(out, want, 16, 1e-4, 1e-6);
    /* 4 wide to 2 wide (no antialiasing): coordinates 0.5 and 2.5, the mean of pixel pairs */
    {
        unsigned char f4[4] = {10, 30, 50, 90};
        tsf_crop d = {1, 2, 0, 0, 0};
        double want2[2] = {20, 70};
        tsf_frame_transform(out, 2, f4, 1, 4, 1, &d, 1, &mean, &sd, 0);
        CHECK_NEAR(out[0], want2[0], 1e-4, 1e-6);
        d.x = 1;
        tsf_frame_transform(out, 2, f4, 1, 4, 1, &d, 1, &mean, &sd, 0);
        CHECK_NEAR(out[0], want2[1], 1e-4, 1e-6);
    }
    /* 3 to 5: scale 0.6, coordinates 0 (clamped), 0.4, 1, 1.6, 2.2 -> 2 (last pixel) */
    {
        unsigned char f3[3] = {0, 50, 250};
        tsf_crop d = {1, 5, 0, 0, 0};
        double want3[5] = {0, 20, 50, 170, 250};
        for (j = 0; j < 5; j++) {
            d.x = j;
            tsf_frame_transform(out, 1, f3, 1, 3, 1, &d, 1, &mean, &sd, 0);
            CHECK_NEAR(out[0], want3[j], 1e-3, 1e-6);
        }
    }
}

/* ---- whole samples ------------------------------------------------------------------------ */
static tsf_sample_opts small_opts(void) {
    tsf_sample_opts o;
    memset(&o, 0, sizeof o);
    o.frames = 4, o.size = 16, o.stride = 3, o.scale_min = 18, o.scale_max = 24, o.test_clips = 2;
    o.mean[0] = 0.4f, o.mean[1] = 0.5f, o.mean[2] = 0.6f;
    o.std[0] = 0.2f, o.std[1] = 0.25f, o.std[2] = 0.3f;
    return o;
}

/* A sample is the documented composition of tsf_sample_frames, _crop and tsf_frame_transform;
   memory and streamed clips give the same bits. */
static void test_clip_sample(void) {
    tsf_clip_header h = make_header(20, 30, 40, 3);
    tsf_sample_opts o = small_opts();
    size_t n, per = (size_t)3 * 4 * 16 * 16;
    unsigned char *bytes = make_clip_bytes(&h, 8, &n);
    float *x = tsft_alloc(per), *y = tsft_alloc(per), *want = tsft_alloc(per);
    const char *path = tmp_path("sample.clip");
    tsf_clip mem, file;
    tsf_crop crop;
    tsf_rng r1, r2;
    test_alloc a = {0, 0, 0};
    int idx[4], view, t, trial;
    REQUIRE(bytes);
    REQUIRE(tsf_clip_view(&mem, bytes, n, NULL) == TSF_OK);
    REQUIRE(tsf_clip_save(path, &h, bytes + 64) == TSF_OK);
    REQUIRE(tsf_clip_open(&file, path, &a, NULL) == TSF_OK);
    CHECK_EQ_INT(tsf_sample_num_views(&o), 6);
    for (view = -1; view < 6; view++)
        for (trial = 0; trial < (view < 0 ? 5 : 1); trial++) {
            tsf_rng_seed(&r1, 100 + (unsigned)trial), r2 = r1;
            REQUIRE(tsf_clip_sample(x, &mem, &o, &r1, view) == TSF_OK);
            REQUIRE(tsf_clip_sample(y, &file, &o, &r2, view) == TSF_OK);
            CHECK(memcmp(x, y, per * sizeof(float)) == 0);
            CHECK(memcmp(&r1, &r2, sizeof r1) == 0);
            tsf_rng_seed(&r1, 100 + (unsigned)trial);
            REQUIRE(tsf_sample_frames(idx, 20, 0.0f, &o, &r1, view) == TSF_OK);
            REQUIRE(tsf_sample_crop(&crop, 30, 40, &o, &r1, view) == TSF_OK);
            for (t = 0; t < 4; t++)
                tsf_frame_transform(want + t * 256, 4 * 256, bytes + 64 + (size_t)idx[t] * 3600, 30,
                                    40, 3, &crop, 16, o.mean, o.std, 0);
            CHECK(memcmp(x, want, per * sizeof(float)) == 0);
        }
    CHECK_EQ_INT(a.live, 0);
    /* a different seed gives a different training sample; the same seed the same */
    tsf_rng_seed(&r1, 1), tsf_rng_seed(&r2, 2);
    REQUIRE(tsf_clip_sample(x, &mem, &o, &r1, TSF_VIEW_TRAIN) == TSF_OK);
    REQUIRE(tsf_clip_sample(y, &mem, &o, &r2, TSF_VIEW_TRAIN) == TSF_OK);
    CHECK(memcmp(x, y, per * sizeof(float)) != 0);
    /* allocation failure: the streamed clip needs one buffer */
    a.calls = 0, a.fail_at = 1;
    CHECK_EQ_INT(tsf_clip_sample(x, &file, &o, NULL, 0), TSF_ERR_ALLOC);
    CHECK_EQ_INT(a.live, 0);
    /* errors */
    CHECK_EQ_INT(tsf_clip_sample(NULL, &mem, &o, NULL, 0), TSF_ERR_ARG);
    CHECK_EQ_INT(tsf_clip_sample(x, NULL, &o, NULL, 0), TSF_ERR_ARG);
    CHECK_EQ_INT(tsf_clip_sample(x, &mem, NULL, NULL, 0), TSF_ERR_ARG);
    CHECK_EQ_INT(tsf_clip_sample(x, &mem, &o, NULL, TSF_VIEW_TRAIN), TSF_ERR_ARG);
    CHECK_EQ_INT(tsf_clip_sample(x, &mem, &o, NULL, 6), TSF_ERR_ARG);
    o.test_crops = 2;
    CHECK_EQ_INT(tsf_clip_sample(x, &mem, &o, NULL, 0), TSF_ERR_CONFIG);
    o.test_crops = 3;
    tsf_clip_close(&file);
    CHECK_EQ_INT(tsf_clip_sample(x, &file, &o, NULL, 0), TSF_ERR_ARG); /* closed */
    tsf_clip_close(&mem);
    unlink(path);
}

static void test_clip_sample_channels(void) {
    tsf_clip_header h = make_header(3, 8, 8, 1);
    tsf_sample_opts o;
    size_t n;
    unsigned char *bytes = make_clip_bytes(&h, 9, &n);
    float *x = tsft_alloc(3 * 3 * 8 * 8);
    tsf_clip clip;
    int i, exact = 1;
    REQUIRE(bytes);
    memset(&o, 0, sizeof o);
    o.frames = 3, o.size = 8, o.stride = 1, o.test_crops = 1;
    REQUIRE(tsf_clip_view(&clip, bytes, n, NULL) == TSF_OK);
    REQUIRE(tsf_clip_sample(x, &clip, &o, NULL, 0) == TSF_OK); /* gray: one channel */
    for (i = 0; i < 3 * 64; i++) /* frames 0, 1, 2 exactly; 8 x 8 needs no resize */
        exact &= x[i] == (float)bytes[64 + i] * (1.0f / (255.0f * 0.225f)) - 0.45f / 0.225f;
    CHECK(exact);
    o.channels = 3; /* a 3-channel model must not get a gray clip in a third of its input */
    CHECK_EQ_INT(tsf_clip_sample(x, &clip, &o, NULL, 0), TSF_ERR_FORMAT);
    o.channels = 1;
    CHECK_EQ_INT(tsf_clip_sample(x, &clip, &o, NULL, 0), TSF_OK);
    o.channels = 0;
    o.bgr = 1;
    CHECK_EQ_INT(tsf_clip_sample(x, &clip, &o, NULL, 0), TSF_ERR_ARG); /* BGR needs 3 channels */
    h = make_header(2, 4, 4, 4);
    bytes = make_clip_bytes(&h, 10, &n);
    REQUIRE(bytes && tsf_clip_view(&clip, bytes, n, NULL) == TSF_OK);
    o.bgr = 0, o.size = 4;
    CHECK_EQ_INT(tsf_clip_sample(x, &clip, &o, NULL, 0), TSF_ERR_FORMAT); /* RGBA */
    /* BGR on an RGB clip swaps the planes */
    h = make_header(1, 4, 4, 3);
    bytes = make_clip_bytes(&h, 11, &n);
    REQUIRE(bytes && tsf_clip_view(&clip, bytes, n, NULL) == TSF_OK);
    {
        float *rgb = tsft_alloc(48), *bgr = tsft_alloc(48);
        o.frames = 1, o.std[0] = o.std[1] = o.std[2] = 1.0f; /* mean 0 */
        REQUIRE(tsf_clip_sample(rgb, &clip, &o, NULL, 0) == TSF_OK);
        o.bgr = 1;
        REQUIRE(tsf_clip_sample(bgr, &clip, &o, NULL, 0) == TSF_OK);
        CHECK(memcmp(rgb, bgr + 32, 16 * sizeof(float)) == 0);
        CHECK(memcmp(rgb + 16, bgr + 16, 16 * sizeof(float)) == 0);
        CHECK(memcmp(rgb + 32, bgr, 16 * sizeof(float)) == 0);
    }
}

static void test_seed_and_shuffle(void) {
    int perm[100], seen[100], i, k, same = 1;
    tsf_rng a, b;
    unsigned long long s = tsf_sample_seed(42, 0, 0);
    CHECK(s == tsf_sample_seed(42, 0, 0));
    CHECK(s != tsf_sample_seed(42, 0, 1));
    CHECK(s != tsf_sample_seed(42, 1, 0));
    CHECK(s != tsf_sample_seed(43, 0, 0));
    CHECK(tsf_sample_seed(42, 1, 0) != tsf_sample_seed(42, 0, 1));
    tsf_rng_seed(&a, 3), b = a;
    tsf_shuffle(perm, 100, &a);
    memset(seen, 0, sizeof seen);
    for (i = 0; i < 100; i++) {
        REQUIRE(perm[i] >= 0 && perm[i] < 100);
        seen[perm[i]]++;
        same &= perm[i] == i;
    }
    for (i = 0; i < 100; i++) CHECK_EQ_INT(seen[i], 1);
    CHECK(!same);
    {
        int p2[100];
        tsf_shuffle(p2, 100, &b);
        CHECK(memcmp(perm, p2, sizeof perm) == 0);
    }
    tsf_shuffle(perm, 0, NULL);
    tsf_shuffle(perm, 1, &a);
    CHECK_EQ_INT(perm[0], 0);
    for (k = 0; k < 3; k++) (void)k;
}

/* ---- class names and manifests ------------------------------------------------------------ */
static void test_classes(void) {
    const char *text = "\xEF\xBB\xBF"
                       "zebra\r\n  apple pie \n\n\tmango\ncar";
    tsf_classes c;
    tsf_error err;
    test_alloc a = {0, 0, 0};
    int k;
    REQUIRE(tsf_classes_parse(&c, text, strlen(text), &a, &err) == TSF_OK);
    CHECK_EQ_INT(c.count, 4);
    CHECK(strcmp(c.names[0], "zebra") == 0 && strcmp(c.names[1], "apple pie") == 0);
    CHECK(strcmp(c.names[2], "mango") == 0 && strcmp(c.names[3], "car") == 0);
    CHECK_EQ_INT(tsf_classes_find(&c, "zebra"), 0);
    CHECK_EQ_INT(tsf_classes_find(&c, "apple pie"), 1);
    CHECK_EQ_INT(tsf_classes_find(&c, "car"), 3);
    CHECK_EQ_INT(tsf_classes_find(&c, "ca"), -1);
    CHECK_EQ_INT(tsf_classes_find(&c, "cars"), -1);
    CHECK_EQ_INT(tsf_classes_find(&c, "apple"), -1);
    CHECK_EQ_INT(tsf_classes_find(&c, ""), -1);
    CHECK_EQ_INT(tsf_classes_find(NULL, "car"), -1);
    CHECK_EQ_INT(tsf_classes_find(&c, NULL), -1);
    CHECK_EQ_INT(a.live, 1);
    tsf_classes_free(&c);
    CHECK_EQ_INT(a.live, 0);
    tsf_classes_free(&c);
    tsf_classes_free(NULL);
    CHECK_EQ_INT(tsf_classes_parse(&c, "a\nb\nc\nb\n", 8, NULL, &err), TSF_ERR_FORMAT);
    CHECK(contains(err.msg, "line 4: duplicate class name \"b\" (first on line 2)"));
    CHECK(c.names == NULL && c.count == 0);
    CHECK_EQ_INT(tsf_classes_parse(&c, "\n \n", 3, NULL, &err), TSF_ERR_FORMAT);
    CHECK(contains(err.msg, "no class names"));
    CHECK_EQ_INT(tsf_classes_parse(&c, NULL, 0, NULL, &err), TSF_ERR_FORMAT);
    CHECK_EQ_INT(tsf_classes_parse(&c, "a\0b", 3, NULL, &err), TSF_ERR_FORMAT);
    CHECK(contains(err.msg, "NUL"));
    CHECK_EQ_INT(tsf_classes_parse(NULL, "a", 1, NULL, NULL), TSF_ERR_ARG);
    CHECK_EQ_INT(tsf_classes_parse(&c, NULL, 5, NULL, NULL), TSF_ERR_ARG);
    for (k = 1; k <= 2; k++) { /* each allocation failing */
        a.calls = 0, a.fail_at = k;
        CHECK_EQ_INT(tsf_classes_parse(&c, text, strlen(text), &a, NULL), TSF_ERR_ALLOC);
        CHECK_EQ_INT(a.live, 0);
    }
}

static void test_manifest_parse(void) {
    const char *ctext = "walk\nrun\njump\n";
    const char *text = "path , label\r\n"
                       "a/x.clip,0\n"
                       "\n"
                       "/abs/y.clip, run \n"
                       "with,comma.clip,jump\n"
                       "  b.clip  ,\t2\n";
    tsf_classes c;
    tsf_manifest m;
    tsf_error err;
    test_alloc a = {0, 0, 0};
    int k;
    REQUIRE(tsf_classes_parse(&c, ctext, strlen(ctext), NULL, NULL) == TSF_OK);
    REQUIRE(tsf_manifest_parse(&m, text, strlen(text), "data/k400", &c, &a, &err) == TSF_OK);
    REQUIRE(m.count == 4);
    CHECK(strcmp(m.paths[0], "data/k400/a/x.clip") == 0);
    CHECK(strcmp(m.paths[1], "/abs/y.clip") == 0);
    CHECK(strcmp(m.paths[2], "data/k400/with,comma.clip") == 0);
    CHECK(strcmp(m.paths[3], "data/k400/b.clip") == 0);
    CHECK(m.labels[0] == 0 && m.labels[1] == 1 && m.labels[2] == 2 && m.labels[3] == 2);
    CHECK(m.lines[0] == 2 && m.lines[1] == 4 && m.lines[2] == 5 && m.lines[3] == 6);
    tsf_manifest_free(&m);
    CHECK_EQ_INT(a.live, 0);
    tsf_manifest_free(&m);
    tsf_manifest_free(NULL);
    /* base dir with a final slash, or none */
    REQUIRE(tsf_manifest_parse(&m, "q.clip,1", 8, "dir/", NULL, NULL, NULL) == TSF_OK);
    CHECK(strcmp(m.paths[0], "dir/q.clip") == 0 && m.labels[0] == 1);
    tsf_manifest_free(&m);
    REQUIRE(tsf_manifest_parse(&m, "q.clip,1", 8, "", NULL, NULL, NULL) == TSF_OK);
    CHECK(strcmp(m.paths[0], "q.clip") == 0);
    tsf_manifest_free(&m);
    REQUIRE(tsf_manifest_parse(&m, "q.clip,7", 8, NULL, NULL, NULL, NULL) == TSF_OK);
    CHECK(strcmp(m.paths[0], "q.clip") == 0 && m.labels[0] == 7); /* no classes: any index */
    tsf_manifest_free(&m);
    /* errors, each naming its line */
#define BADM(txt, cls, want)                                                                       \
    do {                                                                                           \
        CHECK_EQ_INT(tsf_manifest_parse(&m, txt, strlen(txt), NULL, cls, &a, &err),                \
                     TSF_ERR_FORMAT);                                                              \
        if (!contains(err.msg, want)) record_lacks(__FILE__, __LINE__, err.msg, want);             \
        CHECK(m.count == 0 && m.paths == NULL);                                                    \
        CHECK_EQ_INT(a.live, 0);                                                                   \
    } while (0)
    BADM("a.clip,0\nb.clip 1\n", &c, "line 2: expected path,label");
    BADM("a.clip,0\n,1\n", &c, "line 2: empty path field");
    BADM("a.clip,0\n\nb.clip,\n", &c, "line 3: empty label field");
    BADM("a.clip,swim\n", &c, "line 1: unknown label \"swim\"");
    BADM("a.clip,3\n", &c, "line 1: label 3 is not a class index (the 3 classes are 0 .. 2)");
    BADM("a.clip,-1\n", &c, "line 1: unknown label \"-1\"");
    BADM("a.clip,walk\n", NULL,
         "line 1: label \"walk\" is not a class index (no class names given)");
    BADM("a.clip,99999999999\n", NULL, "line 1: label \"99999999999\"");
    BADM("a.clip,0\nb.clip,1\n\na.clip,2\n", &c,
         "line 4: duplicate path \"a.clip\" (first on line 1)");
    BADM("path,label\n\n", &c, "no clips");
    BADM("", &c, "no clips");
    CHECK_EQ_INT(tsf_manifest_parse(&m, "a.clip,0\nb\0.clip,1\n", 19, NULL, &c, &a, &err),
                 TSF_ERR_FORMAT);
    CHECK(contains(err.msg, "NUL"));
#undef BADM
    /* the same text twice with different folders are different paths: no duplicate */
    REQUIRE(tsf_manifest_parse(&m, "x/a.clip,0\na.clip,0\n", 20, "x", NULL, NULL, NULL) == TSF_OK);
    tsf_manifest_free(&m);
    REQUIRE(tsf_manifest_parse(&m, "x/a.clip,0\na.clip,0\n", 20, NULL, NULL, NULL, NULL) == TSF_OK);
    tsf_manifest_free(&m);
    CHECK_EQ_INT(tsf_manifest_parse(NULL, "a,1", 3, NULL, NULL, NULL, NULL), TSF_ERR_ARG);
    CHECK_EQ_INT(tsf_manifest_parse(&m, NULL, 3, NULL, NULL, NULL, NULL), TSF_ERR_ARG);
    for (k = 1; k <= 2; k++) {
        a.calls = 0, a.fail_at = k;
        CHECK_EQ_INT(tsf_manifest_parse(&m, text, strlen(text), "d", &c, &a, NULL), TSF_ERR_ALLOC);
        CHECK_EQ_INT(a.live, 0);
    }
    tsf_classes_free(&c);
}

static void test_manifest_files(void) {
    tsf_clip_header h = make_header(6, 10, 12, 3);
    tsf_sample_opts o;
    size_t n;
    unsigned char *b0 = make_clip_bytes(&h, 20, &n), *b1 = make_clip_bytes(&h, 21, &n);
    const char *cpath = tmp_path("classes.txt"), *mpath = tmp_path("train.csv");
    tsf_classes c;
    tsf_manifest m;
    tsf_error err;
    tsf_clip clip;
    test_alloc a = {0, 0, 0};
    float *x = tsft_alloc(3 * 2 * 8 * 8), *y = tsft_alloc(3 * 2 * 8 * 8);
    int label = -1, k;
    tsf_rng rng;
    REQUIRE(b0 && b1);
    REQUIRE(tsf_clip_save(tmp_path("c0.clip"), &h, b0 + 64) == TSF_OK);
    REQUIRE(tsf_clip_save(tmp_path("c1.clip"), &h, b1 + 64) == TSF_OK);
    write_text(cpath, "cats\ndogs\n");
    write_text(mpath, "path,label\nc0.clip,dogs\nc1.clip,0\nmissing.clip,1\n");
    REQUIRE(tsf_classes_load(&c, cpath, &a, &err) == TSF_OK);
    REQUIRE(tsf_manifest_load(&m, mpath, &c, &a, &err) == TSF_OK);
    REQUIRE(m.count == 3);
    CHECK(strcmp(m.paths[0], tmp_path("c0.clip")) == 0); /* relative to the manifest's folder */
    CHECK(m.labels[0] == 1 && m.labels[1] == 0);
    memset(&o, 0, sizeof o);
    o.frames = 2, o.size = 8, o.stride = 2, o.test_crops = 1;
    REQUIRE(tsf_manifest_sample(x, &label, &m, 0, &o, NULL, 0, &err) == TSF_OK);
    CHECK_EQ_INT(label, 1);
    REQUIRE(tsf_clip_view(&clip, b0, n, NULL) == TSF_OK);
    REQUIRE(tsf_clip_sample(y, &clip, &o, NULL, 0) == TSF_OK);
    CHECK(memcmp(x, y, 3 * 2 * 64 * sizeof(float)) == 0);
    /* per-item seeds: the same (seed, epoch, item) gives the same training sample */
    tsf_rng_seed(&rng, tsf_sample_seed(5, 2, 1));
    REQUIRE(tsf_manifest_sample(x, NULL, &m, 1, &o, &rng, TSF_VIEW_TRAIN, NULL) == TSF_OK);
    tsf_rng_seed(&rng, tsf_sample_seed(5, 2, 1));
    REQUIRE(tsf_manifest_sample(y, NULL, &m, 1, &o, &rng, TSF_VIEW_TRAIN, NULL) == TSF_OK);
    CHECK(memcmp(x, y, 3 * 2 * 64 * sizeof(float)) == 0);
    label = -7;
    CHECK_EQ_INT(tsf_manifest_sample(x, &label, &m, 2, &o, NULL, 0, &err), TSF_ERR_IO);
    CHECK(contains(err.msg, "cannot open"));
    CHECK_EQ_INT(label, -7);
    CHECK_EQ_INT(tsf_manifest_sample(x, &label, &m, 3, &o, NULL, 0, NULL), TSF_ERR_ARG);
    CHECK_EQ_INT(tsf_manifest_sample(x, &label, &m, -1, &o, NULL, 0, NULL), TSF_ERR_ARG);
    CHECK_EQ_INT(tsf_manifest_sample(x, &label, NULL, 0, &o, NULL, 0, NULL), TSF_ERR_ARG);
    tsf_manifest_free(&m);
    tsf_classes_free(&c);
    CHECK_EQ_INT(a.live, 0);
    /* file errors */
    CHECK_EQ_INT(tsf_classes_load(&c, tmp_path("nope.txt"), NULL, &err), TSF_ERR_IO);
    CHECK(contains(err.msg, "cannot open"));
    CHECK_EQ_INT(tsf_manifest_load(&m, tmp_path("nope.csv"), NULL, NULL, &err), TSF_ERR_IO);
    CHECK_EQ_INT(tsf_manifest_load(&m, g_dir, NULL, NULL, &err), TSF_ERR_IO); /* a folder */
    CHECK_EQ_INT(tsf_classes_load(NULL, cpath, NULL, NULL), TSF_ERR_ARG);
    CHECK_EQ_INT(tsf_manifest_load(NULL, mpath, NULL, NULL, NULL), TSF_ERR_ARG);
    write_text(mpath, "c0.clip,0\nc0.clip,1\n");
    CHECK_EQ_INT(tsf_manifest_load(&m, mpath, NULL, NULL, &err), TSF_ERR_FORMAT);
    CHECK(contains(err.msg, "line 2: duplicate path"));
    /* a manifest larger than the first read buffer */
    {
        size_t cap = 200000, len = 0;
        char *big = (char *)tsft_alloc_bytes(cap);
        for (k = 0; len + 40 < cap; k++)
            len += (size_t)sprintf(big + len, "clip_%06d.clip,%d\n", k, k % 3);
        write_text(mpath, big);
        REQUIRE(tsf_manifest_load(&m, mpath, NULL, &a, &err) == TSF_OK);
        CHECK_EQ_INT(m.count, k);
        CHECK(contains(m.paths[k - 1], "clip_"));
        tsf_manifest_free(&m);
        for (k = 1; k <= 8; k++) { /* allocation failures while reading and parsing */
            a.calls = 0, a.fail_at = k;
            CHECK(tsf_manifest_load(&m, mpath, NULL, &a, NULL) == TSF_ERR_ALLOC || a.calls < k);
            CHECK_EQ_INT(a.live, 0);
        }
    }
    unlink(tmp_path("c0.clip")), unlink(tmp_path("c1.clip")), unlink(cpath), unlink(mpath);
}

/* The decoder's messages read well; the message buffer never overflows. */
static void test_messages(void) {
    tsf_manifest m;
    tsf_error err;
    size_t k;
    char *longlabel = (char *)tsft_alloc_bytes(2000);
    memcpy(longlabel, "a.clip,", 7);
    for (k = 7; k < 1990; k++) longlabel[k] = 'x';
    longlabel[1990] = 0;
    CHECK_EQ_INT(tsf_manifest_parse(&m, longlabel, strlen(longlabel), NULL, NULL, NULL, &err),
                 TSF_ERR_FORMAT);
    CHECK(strlen(err.msg) == sizeof err.msg - 1);
    CHECK(contains(err.msg, "line 1: label \"xxxx"));
}

int main(int argc, char **argv) {
    static const tsft_case tests[] = {
        {"clip_header_layout", test_header_layout},
        {"clip_header_errors", test_header_errors},
        {"clip_header_limits", test_header_limits},
        {"clip_view_and_frames", test_view_and_frames},
        {"clip_file_roundtrip", test_file_roundtrip},
        {"clip_file_errors", test_file_errors},
        {"clip_fuzz_corpus", test_fuzz_corpus},
        {"sample_opts_resolve", test_opts_resolve},
        {"sample_dense_indices", test_dense_indices},
        {"sample_dense_train", test_dense_train},
        {"sample_segment_indices", test_segment_indices},
        {"sample_frames_errors", test_sample_frames_errors},
        {"sample_test_crops", test_test_crops},
        {"sample_train_crops", test_train_crops},
        {"transform_identity", test_transform_identity},
        {"transform_bilinear", test_transform_bilinear},
        {"clip_sample", test_clip_sample},
        {"clip_sample_channels", test_clip_sample_channels},
        {"sample_seed_and_shuffle", test_seed_and_shuffle},
        {"classes", test_classes},
        {"manifest_parse", test_manifest_parse},
        {"manifest_files", test_manifest_files},
        {"messages", test_messages},
    };
    const char *tmp = getenv("TMPDIR");
    int failed;
    snprintf(g_dir, sizeof g_dir, "%s/tsf_test_clip_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g_dir)) {
        fprintf(stderr, "test_clip: cannot make a temporary folder %s\n", g_dir);
        return 2;
    }
    failed = tsft_main(tests, TSFT_COUNT(tests), argc, argv);
    rmdir(g_dir); /* every test removes its files */
    return failed;
}
