/* frames2clip - images (JPEG, PNG, BMP, PPM/PGM, TGA, GIF, ...) become one clip file.

   Reads the images with stb_image (gray and RGBA become RGB), optionally keeps every k-th or
   T frames spread uniformly, resizes the short side to S with stb_image_resize (Mitchell
   filter down, Catmull-Rom up) and centre-crops to S x S, and writes the clip format of
   timesformer.h. Memory: one image at a time.

   Build (from the repository root; needs Debian's libstb-dev):
       cc -std=c99 -O2 -Wall -Wextra -Wpedantic -Wshadow -Wdouble-promotion -Wstrict-prototypes \
          -Wmissing-prototypes -I. -I/usr/include/stb tools/frames2clip.c -o build/frames2clip -lm

   Usage:
       frames2clip [options] -o OUT.clip INPUT...
   INPUT is a folder (its images, in natural name order: frame9 before frame10), an image
   file, or @LIST (a text file naming one image a line). Inputs are taken in the order given.
   Images and lists must be regular files (not FIFOs or devices).
       -o, --output FILE   the clip to write (required), as FILE.part, then renamed; a name
                           held by anything but a regular file (a symbolic link, a FIFO, a
                           device) is refused, not replaced
       --size S            resize so the shorter side is S pixels (long side rounded)
       --crop              then centre-crop to S x S (needs --size)
       --every K           keep the 1st, (K+1)th, ... image
       --frames T          keep T images spread uniformly (after --every)
       --fps F             the images' frame rate; the clip records the rate it keeps
       --label L           class index stored in the clip (default -1: none)
       -q, --quiet         no progress and no summary

   Example:
       ffmpeg -i video.mp4 -vf fps=30 frames/%06d.jpg
       frames2clip --size 256 --fps 30 -o video.clip frames/
   prints
       video.clip: 300 frames of 455 x 256 (from 300 images, resized)
   Errors name the file and exit with status 1, e.g.
       frames2clip: error: frames/000042.jpg: cannot read the image: bad huffman code
       frames2clip: error: b.png: the image is 64 x 48, but the first frame a.png is 32 x 24 ...
       frames2clip: error: empty/: no images in the folder */
#include "tsf_tools.h"

static void usage(void) {
    fprintf(stderr, "usage: frames2clip [--size S [--crop]] [--every K] [--frames T] [--fps F]\n"
                    "                   [--label L] [-q] -o OUT.clip INPUT...\n"
                    "INPUT: a folder of images, an image file, or @LIST (one image path a line)\n");
}

/* Add the images of one INPUT to files. 0 after an error. */
static int add_input(const char *in, tt_list *files) {
    if (in[0] == '@') { /* a list file */
        FILE *f;
        char line[4096], buf[64];
        const char *why;
        int n = 0, lineno = 0;
        if (!tt_check_input(in + 1)) return 0; /* a FIFO would block, /dev/zero never end */
        if (!(f = fopen(in + 1, "r"))) {
            tt_error("%s: cannot open the list: %s", in + 1, strerror(errno));
            return 0;
        }
        while (fgets(line, sizeof line, f)) {
            size_t len = strlen(line);
            lineno++;
            if (len == sizeof line - 1 && line[len - 1] != '\n') {
                tt_error("%s:%d: a line longer than %d characters (one image path a line)", in + 1,
                         lineno, (int)sizeof line - 2);
                fclose(f);
                return 0;
            }
            while (len && (line[len - 1] == '\n' || line[len - 1] == '\r' || line[len - 1] == ' '))
                line[--len] = 0;
            if (!len) continue;
            if ((why = tt_input_problem(line, buf, sizeof buf)) != NULL) {
                tt_error("%s:%d: %s: %s", in + 1, lineno, line, why);
                fclose(f);
                return 0;
            }
            tt_push(files, line), n++;
        }
        fclose(f);
        if (n == 0) {
            tt_error("%s: the list names no images", in + 1);
            return 0;
        }
        return 1;
    }
    if (tt_is_dir(in)) {
        tt_list names = {NULL, 0, 0};
        int i, n = 0, skipped = 0;
        if (!tt_read_dir(in, TT_FILES, &names)) {
            tt_error("%s: cannot read the folder: %s", in, strerror(errno));
            return 0;
        }
        for (i = 0; i < names.n; i++) {
            if (tt_is_image(names.v[i])) {
                char *p = tt_join(in, names.v[i]);
                tt_push(files, p), n++;
                free(p);
            } else {
                skipped++;
            }
        }
        tt_list_free(&names);
        if (n == 0) {
            tt_error("%s: no images in the folder%s", in,
                     skipped ? " (only files of other types)" : "");
            return 0;
        }
        return 1;
    }
    if (tt_what(in, NULL) == TT_MISSING) {
        tt_error("%s: no such file or folder", in);
        return 0;
    }
    if (!tt_check_input(in)) return 0; /* a FIFO, a device */
    tt_push(files, in);
    return 1;
}

int main(int argc, char **argv) {
    tt_convert o;
    int handled;
    tt_list files = {NULL, 0, 0};
    const char *out = NULL;
    int i, ninputs = 0, ok = 0;
    tt_prog = "frames2clip";
    memset(&o, 0, sizeof o);
    o.every = 1, o.label = -1;
    for (i = 1; i < argc; i++) { /* options may follow inputs: files is freed at done */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage();
            ok = 1;
            goto done;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (!v) {
                tt_error("%s needs a file name", a);
                goto done;
            }
            out = v, i++;
        } else if ((handled = tt_convert_option(a, v, &o, &i)) != 0) {
            if (handled < 0) goto done;
        } else if (!strcmp(a, "--label")) {
            if (!tt_int(a, v, -1, 0x7FFFFFFF, &o.label)) goto done;
            i++;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            tt_quiet = 1;
        } else if (a[0] == '-' && a[1]) {
            tt_error("unknown option %s", a);
            usage();
            goto done;
        } else {
            ninputs++;
            if (!add_input(a, &files)) goto done;
        }
    }
    if (!out || ninputs == 0) {
        tt_error(!out ? "no output file (-o OUT.clip)" : "no input images");
        usage();
        goto done;
    }
    if (o.crop && !o.size) {
        tt_error("--crop needs --size");
        goto done;
    }
    if (files.n > TSF_CLIP_MAX_FRAMES * (long)o.every && !o.frames) {
        tt_error("%d images: more than the %d frames a clip holds (use --every or --frames)",
                 files.n, TSF_CLIP_MAX_FRAMES);
        goto done;
    }
    ok = tt_convert_frames(files.v, files.n, &o, out);
done:
    tt_list_free(&files);
    return ok ? 0 : 1;
}
