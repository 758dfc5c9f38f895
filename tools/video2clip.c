/* video2clip - raw RGB24 frames on stdin (from ffmpeg) become a clip, or a series of clips.

   The library decodes no video: ffmpeg does, and pipes raw frames here. The frame size is
   not in the stream, so give it with --width and --height (what ffmpeg prints as
   "Output #0 ... rgb24, WxH"). Memory: one frame, however long the video.
   With --window T [--stride K], a long video becomes clips of T frames starting every K
   frames (K defaults to T: no overlap), named OUT_0000.clip, OUT_0001.clip, ...; every frame
   goes straight to each clip that contains it. An incomplete last window is dropped.

   Build (from the repository root; needs no stb):
       cc -std=c99 -O2 -Wall -Wextra -Wpedantic -Wshadow -Wdouble-promotion -Wstrict-prototypes \
          -Wmissing-prototypes -I. tools/video2clip.c -o build/video2clip -lm

   Usage:
       ffmpeg -i IN.mp4 -f rawvideo -pix_fmt rgb24 - | video2clip -W 320 -H 240 -o OUT.clip
       video2clip --width W --height H -o OUT [--window T [--stride K]] [--fps F] [--label L]
                  [--input FILE] [-q]
       -W, --width W, -H, --height H  the frame size in the stream (required)
       -o, --output OUT    the clip; with --window the prefix OUT of the series (a
                           trailing ".clip" is dropped): OUT_0000.clip, ... Each clip is
                           written as CLIP.part, then renamed; a name held by anything but a
                           regular file (a symbolic link, a FIFO, a device such as /dev/null)
                           is refused, not replaced
       --window T          clips of T frames ...
       --stride K          ... one starting every K frames (default T)
       --fps F             the stream's frame rate, stored in the clips (0: unknown)
       --label L           class index stored in the clips (default -1: none)
       --input FILE        read FILE instead of stdin (a regular file; a pipe or a FIFO
                           goes on stdin: video2clip ... < FIFO)
       -q, --quiet         no progress and no summary
   See tools/README.md for ffmpeg command lines (scale, fps, short side).

   Output, e.g.
       video.clip: 300 frames of 320 x 240
       clip_0000.clip .. clip_0008.clip: 9 clips of 64 frames (stride 32) from 300 frames
   Errors exit with status 1 and leave no partial clip behind, e.g.
       video2clip: error: stdin ended inside frame 42: 1000 of 230400 bytes (320 x 240 x 3).
       The stream is not a whole number of frames: check --width/--height against ffmpeg's
       "Output #0 ... rgb24, WxH" line. */
#define TT_NO_STB
#include "tsf_tools.h"

/* A clip being written: frames first..first+T-1 of the stream. */
typedef struct window {
    FILE *f;
    char *path, *part; /* final name, and name while being written */
    long first;
    int have; /* frames written so far */
} window;

static void usage(void) {
    fprintf(stderr, "usage: ffmpeg -i IN -f rawvideo -pix_fmt rgb24 - | video2clip --width W "
                    "--height H -o OUT.clip\n"
                    "       [--window T [--stride K]] [--fps F] [--label L] [--input FILE] [-q]\n");
}

/* Read up to n bytes; returns how many (short only at the end of the stream or an error). */
static size_t read_full(FILE *in, unsigned char *buf, size_t n) {
    size_t got = 0, r;
    while (got < n && (r = fread(buf + got, 1, n - got, in)) > 0) got += r;
    return got;
}

/* Open a window: the file OUT.part with its header (tt_create_part: OUT and OUT.part must be
   regular files or not exist). On failure nothing is left open or allocated. */
static int open_window(window *w, const char *path, long first, const tsf_clip_header *h) {
    unsigned char hdr[TSF_CLIP_HEADER_BYTES];
    w->path = tt_strdup(path);
    w->part = tt_part_name(path);
    w->first = first, w->have = 0;
    tsf_clip_header_encode(hdr, h); /* checked by the caller */
    w->f = tt_create_part(w->path, w->part);
    if (w->f && fwrite(hdr, 1, sizeof hdr, w->f) != sizeof hdr) {
        tt_error("%s: cannot write: %s", w->part, strerror(errno));
        tt_drop_part(w->f, w->part);
        w->f = NULL;
    }
    if (!w->f) {
        free(w->path), free(w->part);
        memset(w, 0, sizeof *w);
        return 0;
    }
    return 1;
}

/* Close a window; keep it (rename to its final name, tt_commit_part) or drop it. 0 on a write
   error. */
static int close_window(window *w, int keep) {
    int ok = 1;
    if (keep)
        ok = tt_commit_part(w->f, w->part, w->path);
    else
        tt_drop_part(w->f, w->part);
    w->f = NULL;
    free(w->path), free(w->part);
    w->path = w->part = NULL;
    return ok;
}

int main(int argc, char **argv) {
    int W = 0, H = 0, T = 0, stride = 0, label = -1, i, ok = 1, nopen = 0, maxopen, written = 0;
    float fps = 0.0f;
    const char *out = NULL, *input = NULL;
    char *prefix = NULL, *name = NULL;
    unsigned char *frame;
    size_t fb, got;
    long t = 0;
    window *wins;
    tsf_clip_header h;
    FILE *in = stdin;
    tt_prog = "video2clip";
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage();
            return 0;
        } else if (!strcmp(a, "-W") || !strcmp(a, "--width")) {
            if (!tt_int(a, v, 1, TSF_CLIP_MAX_SIDE, &W)) return 1;
            i++;
        } else if (!strcmp(a, "-H") || !strcmp(a, "--height")) {
            if (!tt_int(a, v, 1, TSF_CLIP_MAX_SIDE, &H)) return 1;
            i++;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (!v) return tt_error("%s needs a file name", a), 1;
            out = v, i++;
        } else if (!strcmp(a, "--window")) {
            if (!tt_int(a, v, 1, TSF_CLIP_MAX_FRAMES, &T)) return 1;
            i++;
        } else if (!strcmp(a, "--stride")) {
            if (!tt_int(a, v, 1, 1 << 30, &stride)) return 1;
            i++;
        } else if (!strcmp(a, "--fps")) {
            if (!tt_float(a, v, 0.0, 1e6, &fps)) return 1;
            i++;
        } else if (!strcmp(a, "--label")) {
            if (!tt_int(a, v, -1, 0x7FFFFFFF, &label)) return 1;
            i++;
        } else if (!strcmp(a, "--input")) {
            if (!v) return tt_error("%s needs a file name", a), 1;
            input = v, i++;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            tt_quiet = 1;
        } else {
            tt_error("unknown argument %s", a);
            usage();
            return 1;
        }
    }
    if (!W || !H || !out) {
        tt_error("%s",
                 !out ? "no output (-o OUT.clip)" : "give the frame size: --width W --height H");
        usage();
        return 1;
    }
    if (stride && !T) {
        tt_error("--stride needs --window");
        return 1;
    }
    h.T = T ? T : 1, h.H = H, h.W = W, h.C = 3, h.fps = fps, h.label = label;
    if (tsf_clip_header_check(&h) != TSF_OK) {
        tt_error("clips of %d frames of %d x %d are larger than the format's limit", h.T, W, H);
        return 1;
    }
    if (input && !tt_check_input(input)) return 1; /* a FIFO or a device: use stdin */
    if (input && !(in = fopen(input, "rb"))) {
        tt_error("%s: cannot open: %s", input, strerror(errno));
        return 1;
    }
    if (!stride) stride = T;
    fb = (size_t)W * H * 3;
    frame = (unsigned char *)tt_malloc(fb);
    if (T) { /* the series' prefix: OUT without a final .clip */
        size_t n = strlen(out);
        prefix = tt_strdup(out);
        if (tt_has_ext(prefix, "clip")) prefix[n - 5] = 0;
        name = (char *)tt_malloc(strlen(prefix) + 32);
    }
    maxopen = T ? (T + stride - 1) / stride : 1;
    wins = (window *)tt_malloc((size_t)maxopen * sizeof *wins);
    memset(wins, 0, (size_t)maxopen * sizeof *wins);
    if (!T) ok = open_window(&wins[0], out, 0, &h), nopen = ok;
    for (; ok; t++) {
        got = read_full(in, frame, fb);
        if (got == 0 && !ferror(in)) break;
        if (got < fb) {
            if (t >= 25) tt_progress_end(); /* end the progress line first */
            if (ferror(in))
                tt_error("%s: read error: %s", input ? input : "stdin", strerror(errno));
            else
                tt_error(
                    "%s ended inside frame %ld: %zu of %zu bytes (%d x %d x 3).\nThe stream is "
                    "not a whole number of frames: check --width/--height against ffmpeg's "
                    "\"Output #0 ... rgb24, WxH\" line.",
                    input ? input : "stdin", t, got, fb, W, H);
            ok = 0;
            break;
        }
        if (T && t % stride == 0) { /* a new window starts here */
            if (written + nopen >= 10000000) {
                tt_error("%s: more than 10 million clips", input ? input : "stdin");
                ok = 0;
                break;
            }
            sprintf(name, "%s_%04d.clip", prefix, written + nopen);
            ok = open_window(&wins[nopen], name, t, &h);
            if (!ok) break;
            nopen++;
        }
        for (i = 0; ok && i < nopen; i++)
            if (fwrite(frame, 1, fb, wins[i].f) != fb) {
                tt_error("%s: cannot write: %s", wins[i].part, strerror(errno));
                ok = 0;
            } else {
                wins[i].have++;
            }
        if (!T && t + 1 >= TSF_CLIP_MAX_FRAMES) {
            tt_error("%s: more than %d frames: use --window", input ? input : "stdin",
                     TSF_CLIP_MAX_FRAMES);
            ok = 0;
        }
        while (ok && T && nopen > 0 && wins[0].have == T) { /* the oldest window is complete */
            ok = close_window(&wins[0], 1);
            memmove(wins, wins + 1, (size_t)(nopen - 1) * sizeof *wins);
            nopen--, written++;
        }
        if ((t + 1) % 25 == 0) tt_progress("frame", t + 1, 0);
    }
    if (ok && t >= 25) tt_progress_end();
    if (ok && !T) { /* one clip: now the frame count is known */
        unsigned char hdr[TSF_CLIP_HEADER_BYTES];
        h.T = (int)t;
        if (t == 0) {
            tt_error("%s is empty: no frames", input ? input : "stdin");
            ok = 0;
        } else if (tsf_clip_header_encode(hdr, &h) != TSF_OK ||
                   fseek(wins[0].f, 0, SEEK_SET) != 0 ||
                   fwrite(hdr, 1, sizeof hdr, wins[0].f) != sizeof hdr) {
            tt_error("%s: cannot write the header: %s", wins[0].part, strerror(errno));
            ok = 0;
        }
        ok = close_window(&wins[0], ok) && ok;
        nopen = 0;
        if (ok && !tt_quiet) printf("%s: %ld frames of %d x %d\n", out, t, W, H);
    }
    for (i = 0; i < nopen; i++) close_window(&wins[i], 0); /* incomplete windows */
    if (T && ok) {
        if (written == 0) {
            tt_error("%s: the video has %ld frames, fewer than --window %d: no clip written",
                     input ? input : "stdin", t, T);
            ok = 0;
        } else if (!tt_quiet) {
            printf("%s_0000.clip .. %s_%04d.clip: %d clip%s of %d frames (stride %d) from %ld "
                   "frames%s\n",
                   prefix, prefix, written - 1, written, written == 1 ? "" : "s", T, stride, t,
                   nopen ? "; the incomplete last window was dropped" : "");
        }
    }
    if (in != stdin) fclose(in);
    free(frame), free(wins), free(prefix), free(name);
    return ok ? 0 : 1;
}
