/* clip2png - look at a clip: a contact-sheet PNG of its frames, one PNG per frame, or its
   header.

   The sheet lays the chosen frames out left to right, top to bottom, on a dark grey
   background, each optionally scaled so its longer side is --thumb pixels: shrunk with
   stb_image_resize, or enlarged with each pixel drawn as a block (nearest neighbour), so a
   small clip, as a model sees it, shows its pixels sharp. --split writes every frame as its own PNG
   with its pixels unchanged, so frames2clip on those PNGs gives back the same clip, byte for byte.
   Frames are read one at a time (tsf_clip_open), so a long clip needs memory for the sheet only.

   Build (from the repository root; needs Debian's libstb-dev):
       cc -std=c99 -O2 -Wall -Wextra -Wpedantic -Wshadow -Wdouble-promotion -Wstrict-prototypes \
          -Wmissing-prototypes -I. -I/usr/include/stb tools/clip2png.c -o build/clip2png -lm

   Usage:
       clip2png IN.clip -o SHEET.png [--every K] [--max N] [--cols C] [--thumb S] [--gap G]
       clip2png IN.clip --split PREFIX      PREFIX0000.png, PREFIX0001.png, ... (all frames)
       clip2png IN.clip --info              the header, on stdout
       --every K   frames 0, K, 2K, ... (default 1)
       --max N     at most N frames, spread uniformly over those (default 64; 0: no limit)
       --cols C    frames per row (default: about square)
       --thumb S   scale each frame so its longer side is S pixels: smaller (resampled) or
                   larger (each pixel a block) (default: full size)
       --gap G     pixels between frames (default 2)
       -q          no progress and no summary

   IN.clip must be a regular file. Each PNG is written as NAME.part, then renamed; a name
   held by anything but a regular file (a symbolic link, a FIFO, a device) is refused.

   Output, e.g.
       sheet.png: 16 of 300 frames in a 4 x 4 grid, 1286 x 966 pixels
       video.clip: 300 frames of 320 x 240, 3 channels, 30 fps, label 5, 69120064 bytes
   Errors name the file: "clip2png: error: bad.clip: malformed file (truncated: the header
   describes 69120064 bytes)". */
#include "tsf_tools.h"

static void usage(void) {
    fprintf(stderr, "usage: clip2png IN.clip -o SHEET.png [--every K] [--max N] [--cols C] "
                    "[--thumb S] [--gap G] [-q]\n"
                    "       clip2png IN.clip --split PREFIX\n"
                    "       clip2png IN.clip --info\n");
}

int main(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *split = NULL;
    int every = 1, maxn = 64, cols = 0, thumb = 0, gap = 2, info = 0, i, ok = 1;
    int n, rows, tw, th, sw, sh, C, k;
    unsigned char *frame = NULL, *small = NULL, *sheet = NULL;
    char why[700];
    tsf_clip clip;
    tsf_error err;
    tsf_status st;
    tt_prog = "clip2png";
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage();
            return 0;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (!v) return tt_error("%s needs a file name", a), 1;
            out = v, i++;
        } else if (!strcmp(a, "--split")) {
            if (!v) return tt_error("%s needs a prefix", a), 1;
            split = v, i++;
        } else if (!strcmp(a, "--info")) {
            info = 1;
        } else if (!strcmp(a, "--every")) {
            if (!tt_int(a, v, 1, 1 << 30, &every)) return 1;
            i++;
        } else if (!strcmp(a, "--max")) {
            if (!tt_int(a, v, 0, 1 << 20, &maxn)) return 1;
            i++;
        } else if (!strcmp(a, "--cols")) {
            if (!tt_int(a, v, 1, 1 << 16, &cols)) return 1;
            i++;
        } else if (!strcmp(a, "--thumb")) {
            if (!tt_int(a, v, 1, TSF_CLIP_MAX_SIDE, &thumb)) return 1;
            i++;
        } else if (!strcmp(a, "--gap")) {
            if (!tt_int(a, v, 0, 1024, &gap)) return 1;
            i++;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            tt_quiet = 1;
        } else if (a[0] == '-' && a[1]) {
            tt_error("unknown option %s", a);
            usage();
            return 1;
        } else if (!in) {
            in = a;
        } else {
            tt_error("one clip at a time (got %s and %s)", in, a);
            return 1;
        }
    }
    if (!in || (!out && !split && !info)) {
        tt_error("%s",
                 !in ? "no clip given" : "nothing to do: give -o SHEET.png, --split or --info");
        usage();
        return 1;
    }
    if (!tt_check_input(in)) return 1; /* a FIFO would block, a device never end */
    if (out && !tt_check_output(out)) return 1;
    st = tsf_clip_open(&clip, in, NULL, &err);
    if (st != TSF_OK) {
        tt_error("%s: %s", in, tt_why(st, &err, why, sizeof why));
        return 1;
    }
    C = clip.h.C;
    if (info)
        printf("%s: %d frames of %d x %d, %d channel%s, %g fps, label %d, %llu bytes\n", in,
               clip.h.T, clip.h.W, clip.h.H, C, C == 1 ? "" : "s", (double)clip.h.fps, clip.h.label,
               tsf_clip_file_bytes(&clip.h));
    frame = (unsigned char *)tt_malloc(tsf_clip_frame_bytes(&clip.h));
    if (split) { /* every frame, unchanged */
        char *path = (char *)tt_malloc(strlen(split) + 32);
        for (k = 0; ok && k < clip.h.T; k++) {
            sprintf(path, clip.h.T > 10000 ? "%s%06d.png" : "%s%04d.png", split, k);
            if ((st = tsf_clip_read_frames(&clip, k, 1, frame)) != TSF_OK) {
                tt_error("%s: frame %d: %s", in, k, tsf_status_string(st));
                ok = 0;
            } else {
                ok = tt_write_png(path, clip.h.W, clip.h.H, C, frame);
            }
            tt_progress("frame", k + 1, clip.h.T);
        }
        if (ok && !tt_quiet)
            printf("%s: %d PNG files %s%s .. %s\n", in, clip.h.T, split,
                   clip.h.T > 10000 ? "000000.png" : "0000.png", path);
        free(path);
    }
    if (ok && out) { /* the contact sheet */
        int avail = (clip.h.T + every - 1) / every, r, x, y, c;
        n = maxn && avail > maxn ? maxn : avail;
        if (!cols)
            for (cols = 1; cols * cols < n; cols++) {
            }
        if (cols > n) cols = n;
        rows = (n + cols - 1) / cols;
        tw = clip.h.W, th = clip.h.H;
        if (thumb && (tw > th ? tw : th) != thumb) { /* the longer side becomes thumb */
            if (tw >= th)
                th = (int)(((long long)th * thumb + tw / 2) / tw), tw = thumb;
            else
                tw = (int)(((long long)tw * thumb + th / 2) / th), th = thumb;
            if (th < 1) th = 1;
            if (tw < 1) tw = 1;
        }
        sw = cols * tw + (cols + 1) * gap, sh = rows * th + (rows + 1) * gap;
        if ((double)sw * sh * C > 1e9) {
            tt_error("%s: the sheet would be %d x %d pixels: use --max, --every or --thumb", out,
                     sw, sh);
            ok = 0;
        } else {
            sheet = (unsigned char *)tt_malloc((size_t)sw * sh * C);
            small = (unsigned char *)tt_malloc((size_t)tw * th * C);
            for (k = 0; k < sw * sh; k++) /* dark grey; opaque where there is alpha */
                for (c = 0; c < C; c++)
                    sheet[(size_t)k * C + c] =
                        (unsigned char)((C == 2 || C == 4) && c == C - 1 ? 255 : 40);
        }
        for (k = 0; ok && k < n; k++) {
            int t = every * (n == avail ? k : (int)(((2LL * k + 1) * avail) / (2LL * n)));
            const unsigned char *src = frame;
            if ((st = tsf_clip_read_frames(&clip, t, 1, frame)) != TSF_OK) {
                tt_error("%s: frame %d: %s", in, t, tsf_status_string(st));
                ok = 0;
                break;
            }
            if (tw > clip.h.W || th > clip.h.H) { /* enlarged: each pixel a block */
                int sy, sx;
                for (i = 0; i < th; i++)
                    for (sy = (int)((long long)i * clip.h.H / th), sx = 0; sx < tw; sx++)
                        memcpy(small + ((size_t)i * tw + sx) * C,
                               frame + ((size_t)sy * clip.h.W + (long long)sx * clip.h.W / tw) * C,
                               (size_t)C);
                src = small;
            } else if (tw != clip.h.W || th != clip.h.H) {
                stbir_resize_uint8(frame, clip.h.W, clip.h.H, 0, small, tw, th, 0, C);
                src = small;
            }
            r = k / cols, x = gap + (k % cols) * (tw + gap), y = gap + r * (th + gap);
            for (i = 0; i < th; i++)
                memcpy(sheet + ((size_t)(y + i) * sw + x) * C, src + (size_t)i * tw * C,
                       (size_t)tw * C);
            tt_progress("frame", k + 1, n);
        }
        if (ok) ok = tt_write_png(out, sw, sh, C, sheet);
        if (ok && !tt_quiet)
            printf("%s: %d of %d frames in a %d x %d grid, %d x %d pixels\n", out, n, clip.h.T,
                   cols, rows, sw, sh);
    }
    tsf_clip_close(&clip);
    free(frame), free(small), free(sheet);
    return ok ? 0 : 1;
}
