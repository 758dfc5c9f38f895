/* tsf_classify.c - `tsf classify` and `tsf attention`, included by tsf.c after tsf_train.c.

   tsf classify MODEL INPUT     the top-5 classes of a video with their probabilities; a long
                                video gets one prediction per window and one for the whole.
   tsf attention MODEL INPUT --out attn.png
                                a PNG of the frames with the cls token's attention over them.
   (cl_usage() below is the full usage text, printed by --help.)

   INPUT is a clip file, a folder of frames (needs stb), or "-" for raw RGB24 frames on stdin
   (from ffmpeg, with --width/--height). Every input goes through the same path: the frames a
   window needs are read one at a time and made into the model's input by the loader's own
   functions (tsf_sample_frames, tsf_sample_crop, tsf_frame_transform), with the model file's
   preprocessing (mean, std, channel order) and the loader's test view with one centre crop:
   the short side resized to the model's short side (preprocessor_config.json; by default its
   image size), then the centre crop of its crop size. So a clip
   classified here gives exactly what tsf_clip_sample(view 0, test_crops 1) + the forward
   pass give. Raw frames cannot be read twice: each frame is transformed as it arrives and a
   ring of the last `window` transformed frames (3 x S x S floats each) is kept, so memory
   does not grow with the video's length (except with --segment and no --window: then the
   window is the whole stream, and every frame is kept).
   The model file records its preprocessing but not the temporal sampling it was trained
   with. tsf train keeps that in the run's args.txt (--stride, --segment, --fps), so when
   MODEL is a run's model (RUN/model.safetensors, any file beside an args.txt, or the folder
   RUN itself) and neither --frames-stride nor --segment is given, the sampling comes from
   there, as tsf eval takes it; otherwise --frames-stride (default 32, the loader's and the
   Kinetics models') or --segment must match the training run. A video shorter than the span
   gets a warning naming the stride that would cover it.

   WINDOWS. A window is `--window` frames (default T * --frames-stride, the span of one dense
   sample; with --segment, the whole video). A video of at most one window gets one
   prediction: the loader's test sampling over all of it. A longer one gets windows starting
   every `--stride` frames (default: the window length, no overlap) while they fit, plus one
   that ends at the last frame when they fall short of it, so the whole video is covered.
   Each window is sampled as if it were a clip of its own. The whole-video prediction is the
   MEAN OF THE WINDOWS' PROBABILITIES (not summed logits: a long video can hold different
   actions, and averaging distributions keeps one over-confident window from deciding alone;
   the result is itself a distribution).

   ATTENTION. With m.keep_attention set, the forward pass saves every block's attention
   probabilities (tsf_acts.att, .t_att). The PNG shows the T sampled frames as the model saw
   them (after resize and crop), each with a heatmap of the cls token's attention over its
   patches, averaged over heads and upsampled bilinearly from the patch grid:
     space_only  block B's attention of each frame's cls token over that frame's N patches.
     joint       block B's attention of the clip's cls token over all N*T patch tokens,
                 shown frame by frame; the bar under a frame is its share of the attention.
     divided     block B's SPATIAL attention: frame t's sequence (the block's cls token and
                 the N patches of frame t), the cls row over the N patches. The bar under a
                 frame and the T x T panel show the block's TEMPORAL attention: rows are query
                 frames, columns key frames, averaged over the N patch positions and the
                 heads; the bar is the attention frame t receives (the panel's column mean).
     sparse_local_global  block B's GLOBAL (main) step: each parity class's sequence (a cls
                 copy and the class's tokens of the whole clip, docs/model.md section 4), the
                 cls row over the class's tokens; each token is drawn where it lies. The bar
                 is each frame's share.
     axial       block B's HEIGHT (main) step: each sequence is one patch column of one frame
                 with a cls copy in front, the cls row over the column's patches. The bar and
                 the T x T panel show the block's TEMPORAL (time) step, as for divided.
   Without --rollout the cls rows of a main step sum to 1 each (with the cls copy's own
   weight): the maps of divided add up to T per clip, sparse_local_global's to the number of
   parity classes G, axial's to T * Wp. The token groupings come from docs/model.md section
   4 (cl_groups_make), the probabilities from the library's layout of a step's sequences.
   With --rollout (Abnar & Zuidema 2020) each attention step becomes 0.5 * A + 0.5 * I (A
   averaged over heads; the identity stands for the residual connection) and the steps are
   multiplied from block 1 to block B. Only the cls row of the product is needed, so it is
   computed as a row vector pushed back through the blocks (no N*T x N*T products):
     space_only  per frame, over its 1+N tokens (frames never mix before the final mean),
                 divided by T: the clip's cls vector is the mean of the frames' cls tokens.
     joint       over the 1+N*T tokens of the clip.
     divided     over the 1+N*T tokens, through both steps of every block, exactly as they
                 mix tokens: the temporal step mixes the T tokens of each patch position (the
                 cls token passes), the spatial step mixes each frame's cls + N patches, and
                 the cls token's new value is the mean over the frames of its T spatial rows.
                 Both steps get 0.5 * A + 0.5 * I. The maps then show how the final cls token
                 draws on every (patch, frame) input token; the bar is each frame's total.
     sparse_local_global  the same over its two steps: the global step mixes each parity
                 class with a cls copy (the cls token's new value is the mean over the G
                 classes of its cls rows), the local step the tokens of each window.
     axial       refused: the library keeps the probabilities of the time and height steps
                 (acts.t_att, acts.att) but not those of the width step.
   The rolled-out weights of the cls row sum to 1 (with the cls token's own share), which
   --json reports as "total". Heatmap colours run from the smallest to the largest value
   over the whole clip (--per-frame: over each frame).

   JSON. classify --json: {"model", "attention", "input", "frames", "width", "height", "fps",
   "sampling": {"mode", "frames", "frames_stride", "window", "stride", "size"}, "aggregate":
   "mean_prob", "windows": [{"start", "end" (frames, inclusive), "start_s", "end_s" (when the
   fps is known), "top": [{"class", "label" (null without names), "prob"}]}], "video": {"start",
   "end", "top"}} - one window when the video fits in one. attention --json: "window",
   "sampled_frames", "block", "blocks", "rollout", "grid" [Hp, Wp], "top", "maps" (T rows of
   Hp*Wp patch weights, row-major), "cls_self" (the cls token's own weight in each sequence of
   the block's main step: a frame for space_only and divided, a parity class for
   sparse_local_global in class order, a frame's patch column for axial, frame by frame; one
   value for joint and for every rollout but space_only's), "frame_weights" (null for
   space_only), "temporal" (T x T, divided and axial; else null), "total", "png", "png_size". For
   raw input "frames" counts the frames read (attention stops reading after its window).

   FILES. MODEL, a clip and the frames of a folder are read only when they are regular files
   (a FIFO would wait for a writer, a device never end): streams come on stdin (INPUT -). The
   PNG is written as PNG.part, then renamed over PNG; a name held by anything but a regular
   file (a symbolic link, a FIFO, a device) is refused. Class names and paths are UTF-8: the
   PNG's captions draw each character outside printable ASCII as '?' (cl_ascii), the JSON
   output keeps valid UTF-8 and replaces invalid bytes by U+FFFD.

   Errors say what is wrong and what to do; the exit status is 1 (2 for bad usage). A window
   whose logits are not finite (weights that overflow float) is an error, not a prediction. */

#ifndef TT_NO_STB
/* stb_easy_font (in libstb-dev too) draws the PNG's captions; without it the PNG has none. */
#if defined(__has_include)
#if __has_include(<stb_easy_font.h>)
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#pragma GCC diagnostic ignored "-Wmissing-braces"
#endif
#include <stb_easy_font.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
#define CL_HAVE_FONT 1
#endif
#endif
#endif

#define CL_STB_HINT "sudo apt-get install libstb-dev (Debian/Ubuntu), then rebuild: make build/tsf"

static void cl_usage(FILE *f) {
    fprintf(
        f, "usage: tsf classify  MODEL INPUT [--top K] [--json] [sampling options]\n"
           "       tsf attention MODEL INPUT --out ATTN.png [--rollout] [--block B] [--start F]\n"
           "                     [--per-frame] [--tile PX] [--json] [sampling options]\n"
           "\n"
           "MODEL  a .safetensors file (tsf train, tsf_model_save), a Hugging Face model folder\n"
           "       (config.json + model.safetensors) or the folder of a tsf train run (its\n"
           "       model.safetensors)\n"
           "INPUT  a clip file (video2clip, frames2clip), a folder of frames (images in natural\n"
           "       name order; needs libstb-dev), or - for raw RGB24 frames on stdin:\n"
           "         ffmpeg -v error -i video.mp4 -f rawvideo -pix_fmt rgb24 - |\n"
           "             tsf classify MODEL - --width 320 --height 240\n"
           "\n"
           "The model file's preprocessing (mean, std, channel order) and the loader's test view\n"
           "are applied: the model's T frames sampled from a window of the video, each frame's\n"
           "short side resized to the model's short side, then the centre crop (both the\n"
           "model's image size unless its preprocessor_config.json says otherwise).\n"
           "\n"
           "sampling options:\n"
           "  --frames-stride K  dense sampling, one frame every K; a window is T*K frames.\n"
           "                     Default: a tsf train run's sampling (--stride, --segment,\n"
           "                     --fps of the args.txt beside MODEL), else 32 (the loader's\n"
           "                     default and the Kinetics models'). Other models' files do\n"
           "                     not record it: give the stride the model was trained with\n"
           "  --segment          segment sampling (SSv2 models): T frames spread evenly over\n"
           "                     the window, which is then the whole video unless --window\n"
           "  --window F         frames per window (default T*K; --segment: the whole video)\n"
           "  --stride S         a new window every S frames (default: the window, no overlap)\n"
           "  -W, --width W, -H, --height H\n"
           "                     the frame size of raw input (ffmpeg's \"rgb24, WxH\")\n"
           "  --fps F            frames per second of raw or folder input, for times in seconds\n"
           "                     (a clip's own fps is used otherwise)\n"
           "A video of at most one window gets one prediction. A longer one gets a prediction\n"
           "per window (every S frames while they fit, plus one ending at the last frame) and\n"
           "one for the whole video: the mean of the windows' probabilities.\n"
           "\n"
           "classify:\n"
           "  --top K       the K most likely classes (default 5)\n"
           "  --json        machine-readable output on stdout\n"
           "attention:\n"
           "  --out PNG     the picture (needs libstb-dev): the frames, the cls token's attention\n"
           "                over each as a heatmap, per-frame weights, and for divided and axial\n"
           "                attention the temporal attention as a T x T panel (rows: query\n"
           "                frame); written as PNG.part, then renamed: a symbolic link, a\n"
           "                FIFO or a device at PNG is refused, not replaced\n"
           "  --rollout     attention rollout (Abnar & Zuidema 2020) through blocks 1 .. B\n"
           "                (every scheme but axial, whose width step's attention is not kept)\n"
           "  --block B     the block to show, 1 .. L (default L, the last)\n"
           "  --start F     the one window shown starts at frame F (default 0)\n"
           "  --per-frame   each heatmap spans its own frame's min .. max (default: the clip's)\n"
           "  --tile PX     frames drawn PX pixels wide (default: the model's size, >= 128)\n"
           "  --top K       classes printed with the prediction (default 5)\n"
           "  --json        the maps, weights and prediction as JSON on stdout\n");
}

/* ---- options ------------------------------------------------------------------------------ */
typedef struct cl_opts {
    const char *model, *input;
    int width, height;   /* raw input's frame size                                 */
    float fps;           /* 0: the clip's own, or unknown                          */
    int frames_stride;   /* dense sampling stride (0 until resolved: cl_from_run)  */
    float target_fps;    /* dense: the stride counts frames at this rate (a run's --fps) */
    char *model_file;    /* malloc'd: a run folder's model file                    */
    char *sampling_from; /* malloc'd: the args.txt the sampling came from, or NULL */
    int segment;         /* 1: segment sampling                                    */
    int window;          /* frames per window; 0: default                          */
    int stride;          /* window step; 0: the window                             */
    int top;             /* classes shown                                          */
    int json;            /* JSON on stdout                                         */
    const char *out;     /* attention: the PNG                                     */
    int rollout, block, per_frame, tile;
    long start;
} cl_opts;

/* Parse the arguments after the command name. Returns 0 to go on, else the exit status (0
   after --help). */
static int cl_parse(int argc, char **argv, int attention, cl_opts *o) {
    int i, pos = 0, v;
    memset(o, 0, sizeof *o);
    o->top = 5;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            cl_usage(stdout);
            return -1;
        } else if (!strcmp(a, "-W") || !strcmp(a, "--width")) {
            if (!tt_int(a, val, 1, TSF_CLIP_MAX_SIDE, &o->width)) return 2;
            i++;
        } else if (!strcmp(a, "-H") || !strcmp(a, "--height")) {
            if (!tt_int(a, val, 1, TSF_CLIP_MAX_SIDE, &o->height)) return 2;
            i++;
        } else if (!strcmp(a, "--fps")) {
            if (!tt_float(a, val, 0.0, 1e6, &o->fps)) return 2;
            i++;
        } else if (!strcmp(a, "--frames-stride")) {
            if (!tt_int(a, val, 1, TSF_CLIP_MAX_FRAMES, &o->frames_stride)) return 2;
            i++;
        } else if (!strcmp(a, "--segment")) {
            o->segment = 1;
        } else if (!strcmp(a, "--window")) {
            if (!tt_int(a, val, 1, TSF_CLIP_MAX_FRAMES, &o->window)) return 2;
            i++;
        } else if (!strcmp(a, "--stride")) {
            if (!tt_int(a, val, 1, 1 << 30, &o->stride)) return 2;
            i++;
        } else if (!strcmp(a, "--top")) {
            if (!tt_int(a, val, 1, 1 << 20, &o->top)) return 2;
            i++;
        } else if (!strcmp(a, "--json")) {
            o->json = 1;
        } else if (attention && (!strcmp(a, "-o") || !strcmp(a, "--out"))) {
            if (!val || !*val) return tt_error("%s needs a file name, e.g. %s attn.png", a, a), 2;
            o->out = val, i++;
        } else if (attention && !strcmp(a, "--rollout")) {
            o->rollout = 1;
        } else if (attention && !strcmp(a, "--per-frame")) {
            o->per_frame = 1;
        } else if (attention && !strcmp(a, "--block")) {
            if (!tt_int(a, val, 1, 1 << 20, &o->block)) return 2;
            i++;
        } else if (attention && !strcmp(a, "--start")) {
            if (!tt_int(a, val, 0, 0x7FFFFFFF, &v)) return 2;
            o->start = v, i++;
        } else if (attention && !strcmp(a, "--tile")) {
            if (!tt_int(a, val, 16, 2048, &o->tile)) return 2;
            i++;
        } else if (a[0] == '-' && a[1]) {
            tt_error("unknown option %s (tsf %s --help lists the options)", a,
                     attention ? "attention" : "classify");
            return 2;
        } else if (pos == 0) {
            o->model = a, pos++;
        } else if (pos == 1) {
            o->input = a, pos++;
        } else {
            tt_error("one MODEL and one INPUT, but \"%s\" follows %s (options start with --)", a,
                     o->input);
            return 2;
        }
    }
    if (!o->input) {
        tt_error("%s: give MODEL and INPUT: tsf %s MODEL INPUT%s (tsf %s --help)",
                 o->model ? "no INPUT" : "no MODEL and no INPUT",
                 attention ? "attention" : "classify", attention ? " --out attn.png" : "",
                 attention ? "attention" : "classify");
        return 2;
    }
    if (strcmp(o->input, "-") != 0 && (o->width || o->height)) {
        tt_error("--width/--height describe raw frames on stdin: use INPUT - (a clip or a folder "
                 "knows its frame size), or drop them");
        return 2;
    }
    if (strcmp(o->input, "-") == 0 && (!o->width || !o->height)) {
        tt_error("raw frames on stdin (INPUT -) need their size: --width W --height H, as "
                 "ffmpeg prints it (\"Output #0 ... rgb24, WxH\")");
        return 2;
    }
    return 0;
}

/* MODEL as a tsf train run (the top comment): a run folder names its model.safetensors, and
   without --frames-stride and --segment the frame sampling comes from the run's args.txt, as
   tsf eval takes it (--stride, --segment, --fps); else the stride is 32. */
static void cl_from_run(cl_opts *o) {
    const char *slash, *pos[1];
    char *dir, *args;
    tt_list words = {NULL, 0, 0};
    tr_opts sv;
    int np = 0;
    o->model = o->model_file = ev_model_path(o->model, 0); /* cannot fail without --best */
    slash = strrchr(o->model, '/');
    if (!o->frames_stride && !o->segment && !tt_is_dir(o->model)) {
        dir = slash ? tr_fmt("%.*s", (int)(slash - o->model), o->model) : tt_strdup(".");
        args = tt_join(dir, "args.txt");
        memset(&sv, 0, sizeof sv);
        if (tt_is_file(args) && tr_read_args(args, &words) &&
            tr_parse(tr_train_defs, &sv, words.n, words.v, "train", pos, 0, &np)) {
            o->frames_stride = sv.stride, o->segment = sv.segment, o->target_fps = sv.fps;
            o->sampling_from = args, args = NULL;
        }
        tt_list_free(&words);
        free(dir), free(args);
    }
    if (!o->frames_stride) o->frames_stride = 32;
}

/* ---- the model ---------------------------------------------------------------------------- */
static int cl_load_model(tsf_model *m, const char *path) {
    tsf_error err;
    tsf_status st;
    char why[800];
    const char *kind = NULL;
    int what = tt_what(path, &kind);
    if (what == TT_MISSING) {
        tt_error("%s: no such model file or folder: give a .safetensors file (tsf train writes "
                 "one), a PyTorch checkpoint (.bin, .pth, .pyth) or a Hugging Face model folder "
                 "(config.json + model.safetensors or pytorch_model.bin)",
                 path);
        return 0;
    }
    if (what == TT_SPECIAL) { /* a FIFO would wait for a writer, a device never end */
        tt_error("%s: not a regular file (%s): MODEL is a .safetensors file or a model folder",
                 path, kind);
        return 0;
    }
    if (what == TT_FOLDER) {
        char *cfg = tt_join(path, "config.json");
        int cw = tt_what(cfg, &kind);
        if (cw == TT_SPECIAL || cw == TT_FOLDER)
            tt_error("%s: not a regular file (%s)", cfg, kind);
        else if (cw == TT_MISSING)
            tt_error("%s: a folder without config.json: a model folder holds config.json and "
                     "model.safetensors (as on the Hugging Face hub); or give the .safetensors "
                     "file itself",
                     path);
        free(cfg);
        if (cw != TT_REGULAR) return 0;
    }
    st = tsf_model_load(m, path, 1, &err);
    if (st != TSF_OK) {
        tt_error("%s: cannot load the model: %s.\nMODEL must be a TimeSformer .safetensors file "
                 "(tsf train, tsf_model_save, or a Hugging Face TimeSformer checkpoint) or a "
                 "model folder; `tsf info MODEL` shows what a file holds",
                 path, tt_why(st, &err, why, sizeof why));
        return 0;
    }
    return 1;
}

/* ---- frame sources: a clip, a folder of images, raw frames on stdin ----------------------- */
enum { CL_CLIP, CL_DIR, CL_RAW };

typedef struct cl_src {
    int kind;
    const char *name; /* for messages: the path, or "stdin"                    */
    long n;           /* frames (raw: read so far; final once eof)              */
    int H, W, C;
    float fps;
    int eof;
    tsf_clip clip;
    tt_list files;        /* folder: image paths, natural order                 */
    unsigned char *frame; /* one source frame                                   */
    float *ring;          /* raw: transformed frames, frame f at f % cap        */
    long cap;             /* ring capacity (frames), grown up to limit           */
    long limit;           /* raw: frames to keep (the window); 0: all of them    */
    /* the transform: the loader's test view */
    tsf_crop crop;
    int S;
    float mean[3], std[3];
    int bgr;
} cl_src;

static void cl_src_close(cl_src *s) {
    tsf_clip_close(&s->clip);
    tt_list_free(&s->files);
    free(s->frame), free(s->ring);
    s->frame = NULL, s->ring = NULL;
}

static const char *cl_plural(long n) { return n == 1 ? "" : "s"; }

/* A video file, by its name. */
static int cl_is_video(const char *path) {
    static const char *const video[] = {"mp4",  "mkv", "webm", "avi", "mov", "m4v", "mpg",
                                        "mpeg", "wmv", "flv",  "ogv", "3gp", "ts",  "gif"};
    size_t i;
    for (i = 0; i < sizeof video / sizeof video[0]; i++)
        if (tt_has_ext(path, video[i])) return 1;
    return 0;
}

/* A file that is not a clip: say what it probably is and what to do. */
static void cl_not_a_clip(const char *path, const char *why) {
    if (cl_is_video(path)) {
        tt_error("%s: a video file: the library decodes no video; pipe its frames through "
                 "ffmpeg:\n  ffmpeg -v error -i %s -f rawvideo -pix_fmt rgb24 - | tsf "
                 "classify MODEL - --width W --height H\n(W x H as ffmpeg prints it), or make "
                 "a clip first with video2clip",
                 path, path);
        return;
    }
    if (tt_is_image(path)) {
        tt_error("%s: a single image, not a video: put the frames in a folder and give the "
                 "folder, or make a clip with frames2clip",
                 path);
        return;
    }
    tt_error("%s: not a usable clip file: %s.\nINPUT is a clip (make one with video2clip or "
             "frames2clip), a folder of frames, or - for raw RGB24 frames on stdin",
             path, why);
}

/* Open INPUT and check it against the model. so: the resolved sampling options. */
static int cl_src_open(cl_src *s, const cl_opts *o, const tsf_model *m, const tsf_sample_opts *so) {
    tsf_error err;
    tsf_status st;
    char why[800];
    const char *kind = NULL;
    int c, what;
    memset(s, 0, sizeof *s);
    s->name = o->input, s->fps = o->fps;
    if (!strcmp(o->input, "-")) {
        s->kind = CL_RAW, s->name = "stdin";
        s->W = o->width, s->H = o->height, s->C = 3;
        if (isatty(0)) {
            tt_error("INPUT is - but stdin is a terminal: pipe raw RGB24 frames into it, e.g.\n"
                     "  ffmpeg -v error -i video.mp4 -f rawvideo -pix_fmt rgb24 - | tsf ... "
                     "MODEL - --width %d --height %d",
                     s->W, s->H);
            return 0;
        }
        s->frame = (unsigned char *)tt_malloc((size_t)s->W * s->H * 3);
    } else if (tt_is_dir(o->input)) {
#ifdef TT_NO_STB
        tt_error("%s: reading a folder of frames needs stb_image, and this tsf was built "
                 "without it:\n  " CL_STB_HINT "\nor make a clip elsewhere, or pipe raw frames: "
                 "ffmpeg -i video.mp4 -f rawvideo -pix_fmt rgb24 - | tsf classify MODEL - -W W "
                 "-H H",
                 o->input);
        return 0;
#else
        tt_list names = {0};
        int i, w, h, comp;
        unsigned char *img;
        if (!tt_read_dir(o->input, TT_FILES, &names)) {
            tt_error("%s: cannot read the folder: %s", o->input, strerror(errno));
            return 0;
        }
        for (i = 0; i < names.n; i++)
            if (tt_is_image(names.v[i])) {
                char *p = tt_join(o->input, names.v[i]);
                tt_push(&s->files, p);
                free(p);
            }
        tt_list_free(&names);
        for (i = 0; i < s->files.n; i++) /* every frame is read: a FIFO would block */
            if (!tt_check_input(s->files.v[i])) return 0;
        if (s->files.n == 0) {
            tt_error("%s: no images (jpg, png, bmp, ppm, tga, gif) in the folder: extract frames "
                     "with e.g. ffmpeg -i video.mp4 %s/%%06d.png",
                     o->input, o->input);
            return 0;
        }
        s->kind = CL_DIR, s->n = s->files.n, s->C = 3;
        if (!(img = stbi_load(s->files.v[0], &w, &h, &comp, 3))) {
            tt_error("%s: cannot read the image: %s (re-extract the frame, or remove it)",
                     s->files.v[0], stbi_failure_reason());
            return 0;
        }
        stbi_image_free(img);
        s->W = w, s->H = h;
#endif
    } else if ((what = tt_what(o->input, &kind)) != TT_REGULAR) {
        if (what == TT_MISSING)
            tt_error("%s: no such file or folder. INPUT is a clip file (video2clip, frames2clip), "
                     "a folder of frames, or - for raw RGB24 frames on stdin",
                     o->input);
        else /* a FIFO would wait for a writer, a device never end */
            tt_error("%s: not a regular file (%s). INPUT is a clip file, a folder of frames, or - "
                     "for raw RGB24 frames on stdin, where a pipe or a FIFO goes: %s MODEL - -W "
                     "W -H H < FIFO",
                     o->input, kind, tt_prog);
        return 0;
    } else {
        st = tsf_clip_open(&s->clip, o->input, NULL, &err);
        if (st != TSF_OK) {
            if (st == TSF_ERR_FORMAT &&
                (strstr(err.msg, "magic") || cl_is_video(o->input) || tt_is_image(o->input)))
                cl_not_a_clip(o->input, err.msg);
            else if (st == TSF_ERR_FORMAT)
                tt_error("%s: a damaged clip file: %s.\nMake it again (video2clip, frames2clip); "
                         "an interrupted copy or download is the usual cause",
                         o->input, tt_why(st, &err, why, sizeof why));
            else
                tt_error("%s: cannot read the clip: %s", o->input,
                         tt_why(st, &err, why, sizeof why));
            return 0;
        }
        s->kind = CL_CLIP, s->n = s->clip.h.T;
        s->H = s->clip.h.H, s->W = s->clip.h.W, s->C = s->clip.h.C;
        if (s->fps == 0.0f) s->fps = s->clip.h.fps;
        s->frame = (unsigned char *)tt_malloc(tsf_clip_frame_bytes(&s->clip.h));
    }
    if (s->C != m->cfg.channels) {
        tt_error("%s has %d channel%s per pixel, but the model expects %d: %s", s->name, s->C,
                 cl_plural(s->C), m->cfg.channels,
                 m->cfg.channels == 3
                     ? "give RGB frames (video2clip and frames2clip write 3 channels; with "
                       "ffmpeg use -pix_fmt rgb24)"
                     : "this tool feeds images as RGB; use a model made for RGB (3 channels)");
        return 0;
    }
    if (s->C > 3) {
        tt_error("%s has %d channels: the loader reads 1 to 3", s->name, s->C);
        return 0;
    }
    st = tsf_sample_crop(&s->crop, s->H, s->W, so, NULL, 0);
    if (st != TSF_OK) {
        tt_error("%s: frames of %d x %d cannot be cropped to %d x %d: %s", s->name, s->W, s->H,
                 so->size, so->size, tsf_status_string(st));
        return 0;
    }
    s->S = so->size, s->bgr = so->bgr;
    for (c = 0; c < 3; c++) s->mean[c] = so->mean[c], s->std[c] = so->std[c];
    return 1;
}

/* Read up to n bytes; short only at the end of the stream or on an error. */
static size_t cl_read_full(FILE *in, unsigned char *buf, size_t n) {
    size_t got = 0, r;
    while (got < n && (r = fread(buf + got, 1, n - got, in)) > 0) got += r;
    return got;
}

/* Raw input: read the next frame into the ring. 1: a frame, 0: the end, -1: an error. */
static int cl_raw_next(cl_src *s) {
    size_t fb = (size_t)s->W * s->H * 3, plane = (size_t)s->S * s->S, got;
    if (s->eof) return 0;
    got = cl_read_full(stdin, s->frame, fb);
    if (got == 0 && !ferror(stdin)) {
        s->eof = 1;
        if (s->n == 0) {
            tt_error("stdin is empty: no frames. Check the ffmpeg command: ffmpeg -v error -i "
                     "video.mp4 -f rawvideo -pix_fmt rgb24 - | tsf ...");
            return -1;
        }
        return 0;
    }
    if (got < fb) {
        if (ferror(stdin))
            tt_error("stdin: read error: %s", strerror(errno));
        else
            tt_error("stdin ended inside frame %ld: %zu of %zu bytes (%d x %d x 3). The stream "
                     "is not a whole number of frames: check --width/--height against ffmpeg's "
                     "\"Output #0 ... rgb24, WxH\" line, and -pix_fmt rgb24",
                     s->n, got, fb, s->W, s->H);
        return -1;
    }
    if (s->n == s->cap) { /* full: grow (up to the window), or wrap around once it is that */
        long cap = s->cap ? 2 * s->cap : 16;
        float *r = NULL;
        if (s->limit && cap > s->limit) cap = s->limit;
        if (cap > s->cap && (double)cap * 3 * plane * sizeof(float) < 0.5 * (double)(size_t)-1)
            r = (float *)realloc(s->ring, (size_t)cap * 3 * plane * sizeof(float));
        if (cap > s->cap && !r) {
            tt_error("out of memory keeping %ld frames of stdin (%.0f MB; the frames a window "
                     "needs are kept as 3 x %d x %d floats): give a smaller --window or "
                     "--frames-stride%s, or make a clip with video2clip first (clips are read a "
                     "frame at a time)",
                     cap, (double)cap * 3 * (double)plane * 4 / 1e6, s->S, s->S,
                     s->limit ? "" : " (--segment keeps the whole stream without --window)");
            return -1;
        }
        if (r) s->ring = r, s->cap = cap;
    }
    tsf_frame_transform(s->ring + (size_t)(s->n % s->cap) * 3 * plane, plane, s->frame, s->H, s->W,
                        3, &s->crop, s->S, s->mean, s->std, s->bgr);
    s->n++;
    if (s->n % 25 == 0) tt_progress("frame", s->n, 0);
    return 1;
}

/* Frame f as the model's input: C planes of S x S at dst + c * plane_stride. */
static int cl_get(cl_src *s, long f, float *dst, size_t plane_stride) {
    size_t plane = (size_t)s->S * s->S;
    int c;
    tsf_status st;
    if (s->kind == CL_RAW) {
        const float *src = s->ring + (size_t)(f % s->cap) * 3 * plane;
        TSF_ASSERT(f >= 0 && f < s->n && f >= s->n - s->cap);
        for (c = 0; c < s->C; c++)
            memcpy(dst + c * plane_stride, src + c * plane, plane * sizeof(float));
        return 1;
    }
    if (s->kind == CL_CLIP) {
        if ((st = tsf_clip_read_frames(&s->clip, (int)f, 1, s->frame)) != TSF_OK) {
            tt_error("%s: cannot read frame %ld: %s", s->name, f, tsf_status_string(st));
            return 0;
        }
        tsf_frame_transform(dst, plane_stride, s->frame, s->H, s->W, s->C, &s->crop, s->S, s->mean,
                            s->std, s->bgr);
        return 1;
    }
#ifndef TT_NO_STB
    {
        int w, h, comp;
        unsigned char *img = stbi_load(s->files.v[f], &w, &h, &comp, 3);
        if (!img) {
            tt_error("%s: cannot read the image: %s (re-extract the frame, or remove it)",
                     s->files.v[f], stbi_failure_reason());
            return 0;
        }
        if (w != s->W || h != s->H) {
            tt_error("%s: the image is %d x %d, but the first frame %s is %d x %d: all frames "
                     "of a video must have one size",
                     s->files.v[f], w, h, s->files.v[0], s->W, s->H);
            stbi_image_free(img);
            return 0;
        }
        tsf_frame_transform(dst, plane_stride, img, h, w, 3, &s->crop, s->S, s->mean, s->std,
                            s->bgr);
        stbi_image_free(img);
        return 1;
    }
#else
    return 0;
#endif
}

/* ---- predictions -------------------------------------------------------------------------- */
typedef struct cl_run {
    tsf_model *m;
    const char *model; /* its path, for messages */
    cl_src *src;
    tsf_sample_opts so; /* resolved; one test view: centre crop, first temporal clip */
    int T, S, C, K;
    float *x; /* (C, T, S, S) */
    int *idx; /* (T) the frames of the last window, relative to its start */
} cl_run;

static int cl_run_init(cl_run *r, tsf_model *m, const cl_opts *o) {
    tsf_status st;
    int c;
    memset(r, 0, sizeof *r);
    r->m = m, r->model = o->model;
    r->T = m->cfg.frames, r->S = m->cfg.crop_size, r->C = m->cfg.channels, r->K = m->cfg.classes;
    r->so.frames = r->T, r->so.size = r->S, r->so.short_side = m->cfg.short_side;
    r->so.sampling = o->segment ? TSF_SAMPLE_SEGMENT : TSF_SAMPLE_DENSE;
    r->so.stride = o->frames_stride, r->so.test_clips = 1, r->so.test_crops = 1;
    r->so.target_fps = o->target_fps;
    for (c = 0; c < 3; c++) r->so.mean[c] = m->cfg.mean[c], r->so.std[c] = m->cfg.std[c];
    r->so.bgr = m->cfg.bgr;
    if ((st = tsf_sample_opts_resolve(&r->so)) != TSF_OK) {
        tt_error("%s: the model's preprocessing (frames %d, size %d, mean/std, bgr %d) makes no "
                 "valid sampling: %s; check the model's config",
                 o->model, r->T, r->S, r->so.bgr, tsf_status_string(st));
        return 0;
    }
    r->x = (float *)tt_malloc((size_t)r->C * r->T * r->S * r->S * sizeof(float));
    r->idx = (int *)tt_malloc((size_t)r->T * sizeof(int));
    return 1;
}

static void cl_run_free(cl_run *r) { free(r->x), free(r->idx); }

/* The window of len frames from start through the model: probs // (K). */
static int cl_predict(cl_run *r, long start, long len, double *probs) {
    size_t plane = (size_t)r->S * r->S, tp = (size_t)r->T * plane;
    const float *logits;
    double mx, sum;
    size_t bad = 0;
    int t, c, k;
    tsf_status st = tsf_sample_frames(r->idx, (int)len, r->src->fps, &r->so, NULL, 0);
    if (st != TSF_OK) {
        tt_error("%s: cannot sample frames %ld-%ld: %s", r->src->name, start, start + len - 1,
                 tsf_status_string(st));
        return 0;
    }
    for (t = 0; t < r->T; t++) {
        if (t > 0 && r->idx[t] == r->idx[t - 1]) { /* a repeated frame (short video) */
            for (c = 0; c < r->C; c++)
                memcpy(r->x + c * tp + t * plane, r->x + c * tp + (t - 1) * plane,
                       plane * sizeof(float));
        } else if (!cl_get(r->src, start + r->idx[t], r->x + t * plane, tp)) {
            return 0;
        }
    }
    st = tsf_model_forward(r->m, r->x, 1, r->T, r->S, r->S, NULL);
    if (st != TSF_OK) {
        tt_error("%s: the forward pass on frames %ld-%ld of %s failed: %s%s", r->model, start,
                 start + len - 1, r->src->name, tsf_status_string(st),
                 st == TSF_ERR_ALLOC ? " (the model needs more memory than is free)" : "");
        return 0;
    }
    logits = r->m->acts.logits;
    /* finite weights can still overflow float on some input: say so rather than print NaN */
    if (tsf_check_finite(logits, (size_t)r->K, &bad) != TSF_OK) {
        tt_error("%s: the model's output for frames %ld-%ld of %s is not finite (class %d's "
                 "logit is %g): its weights overflow float on this input, or are damaged; no "
                 "prediction",
                 r->model, start, start + len - 1, r->src->name, (int)bad, (double)logits[bad]);
        return 0;
    }
    for (mx = (double)logits[0], k = 1; k < r->K; k++)
        if ((double)logits[k] > mx) mx = (double)logits[k];
    for (sum = 0, k = 0; k < r->K; k++) sum += probs[k] = exp((double)logits[k] - mx);
    for (k = 0; k < r->K; k++) probs[k] /= sum;
    return 1;
}

/* After the one window of a video shorter than the dense span: say that frames repeat, and
   which --frames-stride would spread the T frames over the video instead. */
static void cl_warn_repeats(const cl_run *r, long len) {
    char list[256];
    int t, rep = 0, used = 0;
    if (r->so.sampling != TSF_SAMPLE_DENSE) return;
    for (t = 1; t < r->T; t++) rep |= r->idx[t] == r->idx[t - 1];
    if (!rep) return;
    for (t = 0; t < r->T && used < (int)sizeof list - 16; t++)
        used += snprintf(list + used, sizeof list - (size_t)used, "%s%d", t ? " " : "", r->idx[t]);
    if (t < r->T) snprintf(list + used, sizeof list - (size_t)used, " ...");
    tt_warn("the input has %ld frame%s, fewer than the %ld that %d frames at --frames-stride %d "
            "span, so sampled frames repeat (%s), as the loader does for short clips. If the "
            "model was trained with a smaller stride, give it (--frames-stride %ld spreads %d "
            "frames over %ld), or --segment",
            len, cl_plural(len), (long)r->T * r->so.stride, r->T, r->so.stride, list,
            len / r->T > 0 ? len / r->T : 1, r->T, len);
}

/* The first k of the classes in order of probability (ties: lower index first). */
static void cl_topk(const double *p, int K, int k, int *out) {
    char *used = (char *)tt_malloc((size_t)K);
    int i, j;
    memset(used, 0, (size_t)K);
    for (i = 0; i < k; i++) {
        int best = -1;
        for (j = 0; j < K; j++)
            if (!used[j] && (best < 0 || p[j] > p[best])) best = j;
        out[i] = best, used[best] = 1;
    }
    free(used);
}

/* A class's name, or "class k" when the model has none. */
static const char *cl_label(const tsf_model *m, int k, char *buf, size_t n) {
    const char *s = tsf_model_label(m, k);
    if (s && *s) return s;
    snprintf(buf, n, "class %d", k);
    return buf;
}

/* The length of the valid UTF-8 sequence at p (1 .. 4 bytes; no overlong forms, no
   surrogates, nothing past U+10FFFF), or 0 when p starts none. */
static int cl_utf8_len(const unsigned char *p) {
    unsigned char lo = 0x80, hi = 0xBF;
    int n, i;
    if (p[0] < 0x80) return 1;
    if (p[0] >= 0xC2 && p[0] <= 0xDF)
        n = 2;
    else if (p[0] >= 0xE0 && p[0] <= 0xEF)
        n = 3, lo = p[0] == 0xE0 ? 0xA0 : 0x80, hi = p[0] == 0xED ? 0x9F : 0xBF;
    else if (p[0] >= 0xF0 && p[0] <= 0xF4)
        n = 4, lo = p[0] == 0xF0 ? 0x90 : 0x80, hi = p[0] == 0xF4 ? 0x8F : 0xBF;
    else
        return 0;
    if (p[1] < lo || p[1] > hi) return 0; /* stops at the terminating NUL too */
    for (i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xBF) return 0;
    return n;
}

/* s as a JSON string. Valid UTF-8 is copied; a byte that starts no valid sequence (a file
   name in Latin-1, say) becomes U+FFFD, so the output stays valid JSON. */
static void cl_json_str(const char *s) {
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        int n = c >= 0x80 ? cl_utf8_len((const unsigned char *)s) : 1;
        if (n == 0)
            printf("\\ufffd");
        else if (n > 1)
            fwrite(s, 1, (size_t)n, stdout), s += n - 1;
        else if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c == '\n')
            printf("\\n");
        else if (c == '\t')
            printf("\\t");
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

/* [{"class": k, "label": "...", "prob": p}, ...] */
static void cl_json_top(const tsf_model *m, const double *p, int K, int top) {
    int *idx = (int *)tt_malloc((size_t)top * sizeof(int)), i;
    cl_topk(p, K, top, idx);
    putchar('[');
    for (i = 0; i < top; i++) {
        const char *s = tsf_model_label(m, idx[i]);
        printf("%s{\"class\": %d, \"label\": ", i ? ", " : "", idx[i]);
        if (s && *s)
            cl_json_str(s);
        else
            printf("null");
        printf(", \"prob\": %.6f}", p[idx[i]]);
    }
    putchar(']');
    free(idx);
}

/* The top classes as a table. */
static void cl_print_top(const tsf_model *m, const double *p, int K, int top) {
    int *idx = (int *)tt_malloc((size_t)top * sizeof(int)), i;
    char buf[32];
    cl_topk(p, K, top, idx);
    for (i = 0; i < top; i++)
        printf("  %2d  %.4f  %s\n", i + 1, p[idx[i]], cl_label(m, idx[i], buf, sizeof buf));
    free(idx);
}

typedef struct cl_window {
    long start, len;
    double *probs;
} cl_window;

typedef struct cl_windows {
    cl_window *v;
    int n, cap;
} cl_windows;

static int cl_add_window(cl_run *r, cl_windows *w, long start, long len) {
    cl_window *win;
    if (w->n == w->cap) {
        int cap = w->cap ? 2 * w->cap : 16;
        cl_window *v = (cl_window *)realloc(w->v, (size_t)cap * sizeof *v);
        if (!v) return tt_error("out of memory"), 0;
        w->v = v, w->cap = cap;
    }
    win = &w->v[w->n];
    win->start = start, win->len = len;
    win->probs = (double *)tt_malloc((size_t)r->K * sizeof(double));
    if (!cl_predict(r, start, len, win->probs)) {
        free(win->probs);
        return 0;
    }
    w->n++;
    return 1;
}

/* Time in seconds of frame f, or -1 when the rate is unknown. */
static double cl_sec(const cl_src *s, long f) {
    return s->fps > 0.0f ? (double)f / (double)s->fps : -1.0;
}

/* The window length: --window, or T * frames-stride (counted at the run's --fps when the
   input's rate is known: the loader's span), or (segment) 0 = the whole video. */
static long cl_window_len(const cl_opts *o, const cl_run *r) {
    if (o->window) return o->window;
    if (o->segment) return 0;
    if (o->target_fps > 0.0f && r->src->fps > 0.0f)
        return (long)ceil((double)r->T * o->frames_stride / (double)o->target_fps *
                          (double)r->src->fps);
    return (long)r->T * o->frames_stride;
}

static void cl_describe(const cl_opts *o, const tsf_model *m, const cl_src *s, long win) {
    printf("model     %s (%s, %d frames of %d x %d, %d classes)\n", o->model,
           tsf_attention_name(m->cfg.attention), m->cfg.frames, m->cfg.crop_size, m->cfg.crop_size,
           m->cfg.classes);
    printf("input     %s: %ld frame%s of %d x %d", s->name, s->n, cl_plural(s->n), s->W, s->H);
    if (s->fps > 0.0f) printf(", %g fps", (double)s->fps);
    printf("\n");
    if (o->segment)
        printf("sampling  %d frames, one from each of %d segments of %s; short side %d, centre "
               "crop %d\n",
               m->cfg.frames, m->cfg.frames, win ? "the window" : "the video", m->cfg.short_side,
               m->cfg.crop_size);
    else
        printf("sampling  %d frames, one every %d%s (a window of %ld frames); short side %d, "
               "centre crop %d\n",
               m->cfg.frames, o->frames_stride, o->target_fps > 0.0f ? " at the run's --fps" : "",
               win, m->cfg.short_side, m->cfg.crop_size);
    if (o->sampling_from) printf("          (the frame sampling of %s)\n", o->sampling_from);
}

static int cmd_classify(int argc, char **argv) {
    cl_opts o;
    tsf_model m;
    cl_src src;
    cl_run run;
    cl_windows wins = {0};
    long win, step, next = 0, n;
    int rc, i, k, top, ok = 0;
    double *video = NULL;
    tt_prog = "tsf classify";
    if ((rc = cl_parse(argc, argv, 0, &o)) != 0) return rc < 0 ? 0 : rc;
    cl_from_run(&o);
    memset(&m, 0, sizeof m);
    memset(&src, 0, sizeof src);
    memset(&run, 0, sizeof run);
    if (!cl_load_model(&m, o.model)) goto done;
    if (!cl_run_init(&run, &m, &o)) goto done;
    if (!cl_src_open(&src, &o, &m, &run.so)) goto done;
    run.src = &src;
    win = cl_window_len(&o, &run);
    step = o.stride ? o.stride : win;
    top = o.top < run.K ? o.top : run.K;
    if (src.kind == CL_RAW) { /* one pass over the stream, windows as they complete */
        src.limit = win;
        while ((rc = cl_raw_next(&src)) == 1)
            if (win && src.n == next + win) {
                if (!cl_add_window(&run, &wins, next, win)) goto done;
                next += step;
            }
        if (src.n >= 25) tt_progress_end();
        if (rc < 0) goto done;
        n = src.n, rc = 1;
        if (win == 0 || n < win)
            rc = cl_add_window(&run, &wins, 0, n);
        else if (wins.v[wins.n - 1].start + win < n)
            rc = cl_add_window(&run, &wins, n - win, win);
        if (!rc) goto done;
    } else { /* the frames are at hand: plan the windows */
        n = src.n;
        if (win == 0 || n <= win) {
            if (!cl_add_window(&run, &wins, 0, n)) goto done;
        } else {
            long s, count = 0, total = (n - win) / step + 1;
            total += (total - 1) * step + win < n;
            for (s = 0; s + win <= n; s += step) {
                if (!cl_add_window(&run, &wins, s, win)) goto done;
                tt_progress("window", ++count, total);
            }
            if (wins.v[wins.n - 1].start + win < n) {
                if (!cl_add_window(&run, &wins, n - win, win)) goto done;
                tt_progress("window", ++count, total);
            }
        }
    }
    if (wins.n == 1) cl_warn_repeats(&run, wins.v[0].len);
    video = (double *)tt_malloc((size_t)run.K * sizeof(double));
    for (k = 0; k < run.K; k++) {
        double sum = 0;
        for (i = 0; i < wins.n; i++) sum += wins.v[i].probs[k];
        video[k] = sum / wins.n;
    }
    if (o.json) {
        printf("{\n  \"model\": ");
        cl_json_str(o.model);
        printf(",\n  \"attention\": \"%s\",\n  \"input\": ", tsf_attention_name(m.cfg.attention));
        cl_json_str(src.name);
        printf(",\n  \"frames\": %ld,\n  \"width\": %d,\n  \"height\": %d,\n  \"fps\": %g,\n", n,
               src.W, src.H, (double)src.fps);
        printf("  \"sampling\": {\"mode\": \"%s\", \"frames\": %d, \"frames_stride\": %d, "
               "\"window\": %ld, \"stride\": %ld, \"size\": %d},\n",
               o.segment ? "segment" : "dense", run.T, o.frames_stride, win ? win : n,
               step ? step : n, run.S);
        printf("  \"aggregate\": \"mean_prob\",\n  \"windows\": [\n");
        for (i = 0; i < wins.n; i++) {
            cl_window *w = &wins.v[i];
            printf("    {\"start\": %ld, \"end\": %ld", w->start, w->start + w->len - 1);
            if (src.fps > 0.0f)
                printf(", \"start_s\": %.3f, \"end_s\": %.3f", cl_sec(&src, w->start),
                       cl_sec(&src, w->start + w->len));
            printf(", \"top\": ");
            cl_json_top(&m, w->probs, run.K, top);
            printf("}%s\n", i + 1 < wins.n ? "," : "");
        }
        printf("  ],\n  \"video\": {\"start\": 0, \"end\": %ld, \"top\": ", n - 1);
        cl_json_top(&m, video, run.K, top);
        printf("}\n}\n");
    } else {
        cl_describe(&o, &m, &src, win ? win : n);
        if (wins.n == 1) {
            printf("top %d of %d classes:\n", top, run.K);
            cl_print_top(&m, video, run.K, top);
        } else {
            int *idx = (int *)tt_malloc((size_t)top * sizeof(int));
            char buf[32], range[64];
            printf("windows   %d of %ld frames, one every %ld frames%s:\n", wins.n, win, step,
                   wins.v[wins.n - 1].start % step ? " (the last ends at the last frame)" : "");
            for (i = 0; i < wins.n; i++) {
                cl_window *w = &wins.v[i];
                int len = snprintf(range, sizeof range, "frames %ld-%ld", w->start,
                                   w->start + w->len - 1);
                if (src.fps > 0.0f)
                    snprintf(range + len, sizeof range - (size_t)len, " (%.2f-%.2f s)",
                             cl_sec(&src, w->start), cl_sec(&src, w->start + w->len));
                printf("  %-30s", range);
                cl_topk(w->probs, run.K, top, idx);
                for (k = 0; k < top; k++)
                    printf("  %s %.3f", cl_label(&m, idx[k], buf, sizeof buf), w->probs[idx[k]]);
                printf("\n");
            }
            free(idx);
            printf("whole video (mean of the %d windows' probabilities), top %d of %d classes:\n",
                   wins.n, top, run.K);
            cl_print_top(&m, video, run.K, top);
        }
    }
    ok = 1;
done:
    for (i = 0; i < wins.n; i++) free(wins.v[i].probs);
    free(wins.v), free(video);
    cl_src_close(&src);
    cl_run_free(&run);
    tsf_model_free(&m);
    free(o.model_file), free(o.sampling_from);
    return ok ? 0 : 1;
}

/* ---- attention maps ----------------------------------------------------------------------- */
typedef struct cl_maps {
    int T, N, Hp, Wp, block; /* block: 0-based                                         */
    float *maps;             /* (T, N) the cls token's weights on the patches of frame t  */
    float *self;             /* (nself) the cls token's weight on itself in each sequence  */
    int nself;               /*   of the block's main step, or one value (rollouts, joint) */
    float *fw;               /* (T) per-frame weights, or NULL (space_only)               */
    float *tmat;             /* (T, T) divided, axial: temporal attention, else NULL      */
    double total;            /* sum of maps and self (1 for rollouts)                     */
} cl_maps;

/* Head-averaged row vector times attention: out[j] = 0.5 v[j] + 0.5 sum_i v[i] mean_h A_h[i][j]
   over one sequence of SL tokens, A // (NH, SL, SL). */
static void cl_roll_step(double *out, const double *v, const float *A, int NH, int SL) {
    int h, i, j;
    for (j = 0; j < SL; j++) out[j] = 0.5 * v[j];
    for (h = 0; h < NH; h++)
        for (i = 0; i < SL; i++) {
            const float *row = A + ((size_t)h * SL + i) * SL;
            double w = 0.5 * v[i] / NH;
            if (w != 0.0)
                for (j = 0; j < SL; j++) out[j] += w * (double)row[j];
        }
}

static void cl_maps_free(cl_maps *a) { free(a->maps), free(a->self), free(a->fw), free(a->tmat); }

/* ---- sparse_local_global and axial: the steps' token groupings ----------------------------
   The groupings of docs/model.md section 4 that these two schemes' steps use, as far as the
   pictures need them: the sequence of a step that patch token (t, i, j) belongs to, and
   where each sequence's probabilities lie. A sequence's members are in increasing token
   order q = n*T + t (n = i*Wp + j), so a token's place in its sequence follows from the
   grouping alone. The forward pass keeps (m->keep_attention), block after block, the main
   step's probabilities in acts.att and the first side step's in acts.t_att: sequence after
   sequence, NH (len, len) blocks, a main step's sequences with the cls copy in front. */
enum { CL_G_TIME, CL_G_WINDOW, CL_G_STRIDE, CL_G_HEIGHT };

typedef struct cl_groups {
    int G;       /* sequences a clip                                                  */
    int *start;  /* (G + 1) sequence g's members are tok[start[g] .. start[g + 1])     */
    int *tok;    /* (N*T) token indices q = n*T + t, sequence after sequence            */
    size_t *off; /* (G + 1) sequence g's probabilities: off[g] floats into its block's  */
} cl_groups;

/* The sequence of grouping k that token (t, i, j) is in: TIME its patch; WINDOW its quarter
   of the grid (top rows up to ceil(Hp/2), left columns up to ceil(Wp/2): top-left,
   top-right, bottom-left, bottom-right); STRIDE its parity class (t, i, j mod 2, in
   lexicographic order); HEIGHT its frame's patch column. A grid or clip of size 1 along an
   axis has no second half or second parity there. */
static int cl_group_of(int k, int t, int i, int j, int Hp, int Wp) {
    int nb = Hp < 2 ? Hp : 2, nc = Wp < 2 ? Wp : 2;
    return k == CL_G_TIME     ? i * Wp + j
           : k == CL_G_WINDOW ? (i >= (Hp + 1) / 2) * nc + (j >= (Wp + 1) / 2)
           : k == CL_G_STRIDE ? ((t % 2) * nb + i % 2) * nc + j % 2
                              : t * Wp + j; /* HEIGHT */
}

static int cl_group_count(int k, int T, int Hp, int Wp) {
    int nt = T < 2 ? T : 2, nb = Hp < 2 ? Hp : 2, nc = Wp < 2 ? Wp : 2;
    return k == CL_G_TIME     ? Hp * Wp
           : k == CL_G_WINDOW ? nb * nc
           : k == CL_G_STRIDE ? nt * nb * nc
                              : T * Wp; /* HEIGHT */
}

/* Grouping k of a clip; cls 1 for a main step (a cls copy in front of every sequence). */
static void cl_groups_make(cl_groups *g, int k, int cls, int T, int Hp, int Wp, int NH) {
    int N = Hp * Wp, q, s, *seq = (int *)tt_malloc((size_t)N * T * sizeof(int)), *fill;
    g->G = cl_group_count(k, T, Hp, Wp);
    g->start = (int *)tt_malloc((size_t)(g->G + 1) * sizeof(int));
    fill = (int *)tt_malloc((size_t)(g->G + 1) * sizeof(int));
    g->tok = (int *)tt_malloc((size_t)N * T * sizeof(int));
    g->off = (size_t *)tt_malloc((size_t)(g->G + 1) * sizeof(size_t));
    memset(g->start, 0, (size_t)(g->G + 1) * sizeof(int));
    for (q = 0; q < N * T; q++) {
        int n = q / T, t = q % T;
        seq[q] = cl_group_of(k, t, n / Wp, n % Wp, Hp, Wp);
        g->start[seq[q] + 1]++;
    }
    for (s = 0; s < g->G; s++) g->start[s + 1] += g->start[s];
    memcpy(fill, g->start, (size_t)(g->G + 1) * sizeof(int));
    for (q = 0; q < N * T; q++) g->tok[fill[seq[q]]++] = q; /* increasing q in each */
    g->off[0] = 0;
    for (s = 0; s < g->G; s++) {
        size_t len = (size_t)(g->start[s + 1] - g->start[s] + cls);
        g->off[s + 1] = g->off[s] + (size_t)NH * len * len;
    }
    free(seq), free(fill);
}

static void cl_groups_free(cl_groups *g) { free(g->start), free(g->tok), free(g->off); }

/* The maps of sparse_local_global and axial (cl_attention_maps). Without rollout, the cls
   row of each sequence of block's main step over that sequence's patches (a parity class of
   the clip; a patch column of a frame). The rollout pushes the cls row vector back through
   the main step (as divided's spatial step: the cls token's new value is the mean over the
   G sequences of its G cls rows) and the local step (the tokens of each window mix; the cls
   token passes) of every block; it needs every step's probabilities, which the library keeps
   for sparse_local_global's two steps but not for axial's width step (cmd_attention refuses
   that rollout). */
static void cl_attention_maps_grouped(cl_maps *a, const tsf_model *m, int block, int rollout) {
    const tsf_config *c = &m->cfg;
    int T = a->T, N = a->N, Hp = a->Hp, Wp = a->Wp, NH = c->heads, s, k, h, l, q;
    int axial = c->attention == TSF_ATTN_AXIAL;
    cl_groups mg, sg;
    cl_groups_make(&mg, axial ? CL_G_HEIGHT : CL_G_STRIDE, 1, T, Hp, Wp, NH);
    cl_groups_make(&sg, axial ? CL_G_TIME : CL_G_WINDOW, 0, T, Hp, Wp, NH);
    a->self = (float *)tt_malloc((size_t)(mg.G > T ? mg.G : T) * sizeof(float));
    if (!rollout) {
        const float *A = m->acts.att + (size_t)block * mg.off[mg.G];
        a->nself = mg.G;
        for (s = 0; s < mg.G; s++) {
            const float *seq = A + mg.off[s];
            size_t L1 = (size_t)(mg.start[s + 1] - mg.start[s] + 1);
            double self = 0;
            for (h = 0; h < NH; h++) self += (double)seq[(size_t)h * L1 * L1];
            a->self[s] = (float)(self / NH);
            for (k = mg.start[s]; k < mg.start[s + 1]; k++) {
                size_t col = (size_t)(1 + k - mg.start[s]);
                double w = 0;
                q = mg.tok[k];
                for (h = 0; h < NH; h++) w += (double)seq[(size_t)h * L1 * L1 + col];
                a->maps[(size_t)(q % T) * N + q / T] = (float)(w / NH);
            }
        }
    } else { /* sparse_local_global: v over cls + the N*T tokens (index 1 + q) */
        size_t R = 1 + (size_t)N * T;
        double *v = (double *)tt_malloc(R * sizeof(double));
        double *u = (double *)tt_malloc(R * sizeof(double));
        double *sv = (double *)tt_malloc(R * sizeof(double));
        double *su = (double *)tt_malloc(R * sizeof(double));
        memset(v, 0, R * sizeof(double));
        v[0] = 1.0;
        a->nself = 1;
        for (l = block; l >= 0; l--) {
            const float *A = m->acts.att + (size_t)l * mg.off[mg.G];
            const float *LA = m->acts.t_att + (size_t)l * sg.off[sg.G];
            /* the main step (last in the block): sequence s is a cls copy and its members */
            u[0] = 0.5 * v[0];
            for (q = 1; q < (int)R; q++) u[q] = 0.0;
            for (s = 0; s < mg.G; s++) {
                int len = mg.start[s + 1] - mg.start[s];
                sv[0] = v[0] / mg.G; /* the cls row's weight in sequence s */
                for (k = 0; k < len; k++) sv[1 + k] = v[1 + mg.tok[mg.start[s] + k]];
                cl_roll_step(su, sv, A + mg.off[s], NH, 1 + len);
                u[0] += su[0] - 0.5 * sv[0]; /* the identity's share is 0.5 * v[0] above */
                for (k = 0; k < len; k++) u[1 + mg.tok[mg.start[s] + k]] += su[1 + k];
            }
            /* the local step (first in the block): each window's tokens; the cls passes */
            v[0] = u[0];
            for (s = 0; s < sg.G; s++) {
                int len = sg.start[s + 1] - sg.start[s];
                for (k = 0; k < len; k++) sv[k] = u[1 + sg.tok[sg.start[s] + k]];
                cl_roll_step(su, sv, LA + sg.off[s], NH, len);
                for (k = 0; k < len; k++) v[1 + sg.tok[sg.start[s] + k]] = su[k];
            }
        }
        a->self[0] = (float)v[0];
        for (q = 0; q < N * T; q++) a->maps[(size_t)(q % T) * N + q / T] = (float)v[1 + q];
        free(v), free(u), free(sv), free(su);
    }
    cl_groups_free(&mg), cl_groups_free(&sg);
}

/* The maps of block `block` (rollout: blocks 0 .. block) after a forward pass of one clip. */
static void cl_attention_maps(cl_maps *a, const tsf_model *m, int block, int rollout) {
    const tsf_config *c = &m->cfg;
    int T = m->T, P = c->patch_size, Hp = m->H / P, Wp = m->W / P, N = Hp * Wp, NH = c->heads;
    int divided = c->attention == TSF_ATTN_DIVIDED, joint = c->attention == TSF_ATTN_JOINT;
    int grouped = c->attention == TSF_ATTN_LOCAL_GLOBAL || c->attention == TSF_ATTN_AXIAL;
    int temporal = divided || c->attention == TSF_ATTN_AXIAL; /* a time step first */
    int t, n, h, l, i;
    /* the main attention: SA sequences of SL tokens; divided/space: frame t is sequence t */
    long SA = joint ? 1 : T, SL = joint ? 1 + (long)N * T : 1 + N;
    size_t att_layer = (size_t)SA * NH * SL * SL, tatt_layer = (size_t)N * NH * T * T;
    memset(a, 0, sizeof *a);
    a->T = T, a->N = N, a->Hp = Hp, a->Wp = Wp, a->block = block;
    a->maps = (float *)tt_malloc((size_t)T * N * sizeof(float));
    if (!grouped) a->self = (float *)tt_malloc((size_t)T * sizeof(float));
    if (c->attention != TSF_ATTN_SPACE) a->fw = (float *)tt_malloc((size_t)T * sizeof(float));
    if (temporal) { /* block's temporal attention, averaged over patch positions and heads */
        const float *ta = m->acts.t_att + (size_t)block * tatt_layer;
        a->tmat = (float *)tt_malloc((size_t)T * T * sizeof(float));
        for (i = 0; i < T * T; i++) {
            double s = 0;
            for (n = 0; n < N * NH; n++) s += (double)ta[(size_t)n * T * T + i];
            a->tmat[i] = (float)(s / ((double)N * NH));
        }
    }
    if (grouped) {
        cl_attention_maps_grouped(a, m, block, rollout);
    } else if (!rollout) {
        const float *A = m->acts.att + (size_t)block * att_layer;
        a->nself = joint ? 1 : T;
        for (t = 0; t < T; t++) {
            const float *seq = A + (joint ? 0 : (size_t)t * NH * SL * SL);
            double self = 0;
            for (n = 0; n < N; n++) {
                double s = 0;
                for (h = 0; h < NH; h++)
                    s += (double)
                        seq[(size_t)h * SL * SL + (joint ? 1 + (size_t)n * T + t : 1 + (size_t)n)];
                a->maps[(size_t)t * N + n] = (float)(s / NH);
            }
            for (h = 0; h < NH; h++) self += (double)seq[(size_t)h * SL * SL];
            if (!joint || t == 0) a->self[joint ? 0 : t] = (float)(self / NH);
        }
    } else if (!divided) { /* space_only per frame, joint over the clip: v = e0 . prod A~ */
        double *v = (double *)tt_malloc((size_t)SL * sizeof(double));
        double *u = (double *)tt_malloc((size_t)SL * sizeof(double));
        int s;
        a->nself = joint ? 1 : T;
        for (s = 0; s < SA; s++) {
            memset(v, 0, (size_t)SL * sizeof(double));
            v[0] = 1.0;
            for (l = block; l >= 0; l--) {
                cl_roll_step(u, v, m->acts.att + (size_t)l * att_layer + (size_t)s * NH * SL * SL,
                             NH, (int)SL);
                memcpy(v, u, (size_t)SL * sizeof(double));
            }
            /* space_only: the clip's cls vector is the mean of the T frames' cls tokens */
            for (i = 0; i < SL && !joint; i++) v[i] /= T;
            a->self[s] = (float)v[0];
            for (t = 0; t < T; t++)
                for (n = 0; n < N; n++)
                    if (joint)
                        a->maps[(size_t)t * N + n] = (float)v[1 + (size_t)n * T + t];
                    else if (t == s)
                        a->maps[(size_t)t * N + n] = (float)v[1 + n];
        }
        free(v), free(u);
    } else { /* divided: the row vector over cls + (n, t) tokens, back through both steps */
        size_t R = 1 + (size_t)N * T, s2 = (size_t)(1 + N) * (1 + N);
        double *v = (double *)tt_malloc(R * sizeof(double));
        double *u = (double *)tt_malloc(R * sizeof(double));
        double *sv = (double *)tt_malloc((size_t)(1 + N) * sizeof(double));
        double *su = (double *)tt_malloc((size_t)(1 + N) * sizeof(double));
        memset(v, 0, R * sizeof(double));
        v[0] = 1.0;
        a->nself = 1;
        for (l = block; l >= 0; l--) {
            const float *A = m->acts.att + (size_t)l * att_layer;
            const float *TA = m->acts.t_att + (size_t)l * tatt_layer;
            /* spatial step (last in the block): the cls output is the mean over frames of its
               T spatial rows; patch (n, t) is row 1+n of frame t's sequence */
            u[0] = 0.5 * v[0];
            for (i = 1; i < (int)R; i++) u[i] = 0.0;
            for (t = 0; t < T; t++) {
                sv[0] = v[0] / T; /* the cls row's weight in frame t's sequence */
                for (n = 0; n < N; n++) sv[1 + n] = v[1 + (size_t)n * T + t];
                cl_roll_step(su, sv, A + (size_t)t * NH * s2, NH, 1 + N);
                /* cl_roll_step's 0.5 * identity for the cls is the 0.5 * v[0] above, not
                   0.5 * v[0] / T per frame: take it out and add the attention part */
                u[0] += su[0] - 0.5 * sv[0];
                for (n = 0; n < N; n++) u[1 + (size_t)n * T + t] += su[1 + n];
            }
            /* temporal step (first in the block): patch position n's T tokens; cls passes */
            v[0] = u[0];
            for (n = 0; n < N; n++) {
                const double *un = u + 1 + (size_t)n * T;
                double *vn = v + 1 + (size_t)n * T;
                cl_roll_step(vn, un, TA + (size_t)n * NH * T * T, NH, T);
            }
        }
        a->self[0] = (float)v[0];
        for (t = 0; t < T; t++)
            for (n = 0; n < N; n++) a->maps[(size_t)t * N + n] = (float)v[1 + (size_t)n * T + t];
        free(v), free(u), free(sv), free(su);
    }
    /* per-frame weights */
    if (a->fw) {
        for (t = 0; t < T; t++) {
            double s = 0;
            if (a->tmat && !rollout)
                for (i = 0; i < T; i++) s += (double)a->tmat[(size_t)i * T + t] / T;
            else
                for (n = 0; n < N; n++) s += (double)a->maps[(size_t)t * N + n];
            a->fw[t] = (float)s;
        }
    }
    a->total = 0;
    for (i = 0; i < T * N; i++) a->total += (double)a->maps[i];
    for (i = 0; i < a->nself; i++) a->total += (double)a->self[i];
}

static void cl_json_floats(const float *v, int n) {
    int i;
    putchar('[');
    for (i = 0; i < n; i++) printf("%s%.6g", i ? ", " : "", (double)v[i]);
    putchar(']');
}

/* What the maps of a non-rollout picture show, by scheme. */
static const char *cl_maps_what(int attention) {
    switch (attention) {
    case TSF_ATTN_DIVIDED:
        return "the cls token's spatial attention in each frame (heads averaged)";
    case TSF_ATTN_JOINT:
        return "the cls token's attention over all frames' patches (heads averaged)";
    case TSF_ATTN_LOCAL_GLOBAL:
        return "the cls token's global attention in each parity class (heads averaged)";
    case TSF_ATTN_AXIAL:
        return "the cls token's attention along each frame's patch columns (heads averaged)";
    default:
        return "each frame's cls token over its patches (heads averaged)";
    }
}

/* ---- the picture -------------------------------------------------------------------------- */
#ifndef TT_NO_STB
typedef struct cl_img {
    int w, h;
    unsigned char *p; /* RGB */
} cl_img;

static void cl_fill(cl_img *im, int x, int y, int w, int h, const unsigned char rgb[3]) {
    int i, j;
    for (i = y < 0 ? 0 : y; i < y + h && i < im->h; i++)
        for (j = x < 0 ? 0 : x; j < x + w && j < im->w; j++)
            memcpy(im->p + ((size_t)i * im->w + j) * 3, rgb, 3);
}

/* A "turbo"-like colour scale: dark blue, blue, cyan, green, yellow, orange, dark red. */
static void cl_colour(float v, unsigned char rgb[3]) {
    static const float stop[7][3] = {{48, 18, 59},    {65, 105, 225}, {30, 205, 200},
                                     {100, 250, 100}, {215, 230, 50}, {250, 130, 35},
                                     {122, 4, 3}};
    float x = (v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v) * 6.0f, f;
    int i = (int)x, c;
    if (i > 5) i = 5;
    f = x - (float)i;
    for (c = 0; c < 3; c++)
        rgb[c] = (unsigned char)(stop[i][c] + (stop[i + 1][c] - stop[i][c]) * f + 0.5f);
}

/* "lo .. hi" with the significant digits (3 to 7) that show their difference to two digits:
   0.12493 .. 0.12507, not 0.125 .. 0.125. */
static void cl_range(char *buf, size_t n, double lo, double hi) {
    double big = fabs(lo) > fabs(hi) ? fabs(lo) : fabs(hi);
    int d = 3;
    if (hi > lo && big > 0.0) d = (int)floor(log10(big)) - (int)floor(log10((hi - lo) / 10.0)) + 1;
    d = d < 3 ? 3 : d > 7 ? 7 : d;
    snprintf(buf, n, "%#.*g .. %#.*g", d, lo, d, hi);
}

/* The end of that range, as cl_range prints it. */
static const char *cl_range_hi(const char *range) {
    const char *p = strstr(range, " .. ");
    return p ? p + 4 : range;
}

#define CL_LINE 12 /* text line height (stb_easy_font) */

#ifdef CL_HAVE_FONT
/* s as text stb_easy_font can draw, in text[0 .. n): its glyph table covers the bytes 32 ..
   127 only, and it indexes the table with the (signed) char minus 32, so a control byte or any
   byte from 0x80 up reads outside it; class names and paths are UTF-8. Each UTF-8 sequence (a
   lead byte and the continuation bytes that follow it) becomes one '?', and so does every
   other byte outside the printable 32 .. 126: a control character (tab, newline), DEL, a
   stray continuation byte, a Latin-1 byte. Returns the length. */
static size_t cl_ascii(char *text, size_t n, const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    size_t len = 0;
    while (*p && len + 1 < n) {
        unsigned char c = *p++;
        if (c >= 0xC0) /* a lead byte: skip its continuation bytes */
            while (*p >= 0x80 && *p < 0xC0) p++;
        text[len++] = c >= 32 && c < 127 ? (char)c : '?';
    }
    text[len] = 0;
    return len;
}
#endif

/* Text at (x, y), clipped to max_w pixels; returns its width. Without the font: nothing. */
static int cl_text(cl_img *im, int x, int y, int max_w, const char *s, const unsigned char rgb[3]) {
#ifdef CL_HAVE_FONT
    static char vbuf[64 * 2000]; /* 2000 quads of 4 vertices of 16 bytes */
    char text[256];
    unsigned char col[4] = {255, 255, 255, 255};
    int q, nq, width = 0;
    size_t len = cl_ascii(text, sizeof text, s);
    while (len > 0 && stb_easy_font_width(text) > max_w) text[--len] = 0;
    if (!len) return 0;
    width = stb_easy_font_width(text);
    nq = stb_easy_font_print(0.0f, 0.0f, text, col, vbuf, (int)sizeof vbuf);
    for (q = 0; q < nq; q++) { /* axis-aligned quads: corner 0 and the opposite corner 2 */
        const float *v0 = (const float *)(const void *)(vbuf + (size_t)q * 64);
        const float *v2 = (const float *)(const void *)(vbuf + (size_t)q * 64 + 32);
        cl_fill(im, x + (int)v0[0], y + (int)v0[1], (int)(v2[0] - v0[0]), (int)(v2[1] - v0[1]),
                rgb);
    }
    return width;
#else
    (void)im, (void)x, (void)y, (void)max_w, (void)s, (void)rgb;
    return 0;
#endif
}
#endif

#ifndef TT_NO_STB
/* The PNG: a title, then rows of frames (the frame as the model saw it, the heatmap over it,
   the frame's weight as a bar), the temporal panel for divided attention, a colour legend.
   Colours show the true size of the weights: a heatmap runs from weight 0 to the largest
   weight of the clip (--per-frame: of its frame), so a uniform map is one colour and a map
   half as strong is half as far up the scale; the temporal panel, a probability in every
   cell, runs on a fixed scale from 0 to 1 and prints each cell's percentage when the cells
   are large enough. The legends give the scale and the real smallest and largest values.
   *pw, *ph get its size; legend[0] and legend[1] what the legends of the maps and of the
   temporal panel say ("" without one). Returns 1 once written. */
static int cl_render(const char *path, const cl_opts *o, const tsf_model *m, const cl_run *r,
                     const cl_maps *a, long start, const double *probs, int *pw, int *ph,
                     char legend[2][256]) {
    static const unsigned char bg[3] = {28, 28, 30}, fg[3] = {235, 235, 235},
                               dim[3] = {150, 150, 155}, track[3] = {70, 70, 74};
    int T = a->T, S = r->S, C = r->C, LH = 0, gap = 6, tile, cols, rows, bar_h, cell_h, grid_w;
    int title_h, cs = 0, side = 0, panel_h = 0, panel_w = 0, leg_w, leg_h, W, H, t, i, j, k, ok;
    int divided = m->cfg.attention == TSF_ATTN_DIVIDED, best = 0;
    size_t plane = (size_t)S * S;
    float lo = 0, hi = 0, fwmax = 0;
    char buf[256], lab[32], range[80];
    cl_img im;
#ifdef CL_HAVE_FONT
    LH = CL_LINE;
#endif
    tile = o->tile ? o->tile : S >= 128 ? S : S * ((128 + S - 1) / S);
    cols = T <= 8 ? T : 8, rows = (T + cols - 1) / cols;
    bar_h = a->fw ? 6 : 0;
    cell_h = LH + tile + 2 + tile + (bar_h ? 3 + bar_h : 0);
    grid_w = cols * tile + (cols - 1) * gap;
    title_h = LH ? 2 * LH + 4 : 0;
    legend[0][0] = legend[1][0] = 0;
    if (a->tmat) {
        cs = 2 * tile / T;
        cs = cs < 6 ? 6 : cs > 32 ? 32 : cs;
        side = cs * T, panel_h = LH + (side > 9 * LH ? side : 9 * LH) + gap;
        panel_w = side + (LH ? 8 + 300 : 0);
    }
    leg_w = grid_w < 256 ? grid_w : 256, leg_h = 10 + LH + 2;
    W = 2 * gap + (grid_w > panel_w ? grid_w : panel_w);
    if (LH && W < 2 * gap + 360) W = 2 * gap + 360; /* room for the title */
    H = gap + title_h + rows * (cell_h + gap) + panel_h + leg_h + gap;
    im.w = W, im.h = H, im.p = (unsigned char *)tt_malloc((size_t)W * H * 3);
    cl_fill(&im, 0, 0, W, H, bg);
    for (k = 1; k < r->K; k++)
        if (probs[k] > probs[best]) best = k;
    /* title */
    snprintf(buf, sizeof buf, "%s, block %d of %d: %s", tsf_attention_name(m->cfg.attention),
             a->block + 1, m->cfg.depth,
             o->rollout ? "attention rollout of the cls token (heads averaged)"
             : divided  ? "cls token's spatial attention per frame (heads averaged)"
             : m->cfg.attention == TSF_ATTN_LOCAL_GLOBAL
                 ? "cls token's global attention per parity class (heads averaged)"
             : m->cfg.attention == TSF_ATTN_AXIAL
                 ? "cls token's attention along patch columns (heads averaged)"
                 : "cls token's attention (heads averaged)");
    cl_text(&im, gap, gap, W - 2 * gap, buf, fg);
    snprintf(buf, sizeof buf, "prediction: %s %.3f    frames %ld-%ld of %s",
             cl_label(m, best, lab, sizeof lab), probs[best], start + r->idx[0],
             start + r->idx[T - 1], r->src->name);
    cl_text(&im, gap, gap + LH + 2, W - 2 * gap, buf, dim);
    /* the weights' range: the clip's (or each frame's) min .. max; colour from 0 to the max */
    for (i = 0; i < T * a->N; i++) {
        if (i == 0 || a->maps[i] < lo) lo = a->maps[i];
        if (i == 0 || a->maps[i] > hi) hi = a->maps[i];
    }
    for (t = 0; a->fw && t < T; t++)
        if (a->fw[t] > fwmax) fwmax = a->fw[t];
    for (t = 0; t < T; t++) {
        int x0 = gap + (t % cols) * (tile + gap), y0 = gap + title_h + (t / cols) * (cell_h + gap);
        const float *map = a->maps + (size_t)t * a->N;
        float fhi = hi;
        if (o->per_frame)
            for (fhi = map[0], i = 1; i < a->N; i++)
                if (map[i] > fhi) fhi = map[i];
        snprintf(buf, sizeof buf, tile >= 110 ? "t%d  frame %ld" : "t%d #%ld", t,
                 start + r->idx[t]);
        cl_text(&im, x0, y0 + 1, tile, buf, dim);
        for (i = 0; i < tile; i++)
            for (j = 0; j < tile; j++) {
                int si = (int)((long long)i * S / tile), sj = (int)((long long)j * S / tile), c;
                unsigned char px[3], heat[3];
                float gy, gx, fy, fx, v;
                int y0g, x0g, y1g, x1g;
                for (c = 0; c < 3; c++) { /* the model's input, back to pixels, as RGB */
                    int mc = C == 1 ? 0 : C == 3 && r->so.bgr ? 2 - c : c < C ? c : 0;
                    float val =
                        r->x[(size_t)mc * T * plane + (size_t)t * plane + (size_t)si * S + sj];
                    float p = (val * r->so.std[mc] + r->so.mean[mc]) * 255.0f;
                    px[c] = (unsigned char)(p < 0.0f ? 0 : p > 255.0f ? 255 : p + 0.5f);
                }
                /* the patch map, bilinear between patch centres */
                gy = ((float)i + 0.5f) * (float)S / (float)tile / (float)m->cfg.patch_size - 0.5f;
                gx = ((float)j + 0.5f) * (float)S / (float)tile / (float)m->cfg.patch_size - 0.5f;
                gy = gy < 0 ? 0 : gy > (float)(a->Hp - 1) ? (float)(a->Hp - 1) : gy;
                gx = gx < 0 ? 0 : gx > (float)(a->Wp - 1) ? (float)(a->Wp - 1) : gx;
                y0g = (int)gy, x0g = (int)gx, fy = gy - (float)y0g, fx = gx - (float)x0g;
                y1g = y0g + 1 < a->Hp ? y0g + 1 : y0g, x1g = x0g + 1 < a->Wp ? x0g + 1 : x0g;
                v = (1 - fy) * ((1 - fx) * map[y0g * a->Wp + x0g] + fx * map[y0g * a->Wp + x1g]) +
                    fy * ((1 - fx) * map[y1g * a->Wp + x0g] + fx * map[y1g * a->Wp + x1g]);
                cl_colour(fhi > 0.0f ? v / fhi : 0.0f, heat);
                memcpy(im.p + ((size_t)(y0 + LH + i) * W + x0 + j) * 3, px, 3);
                for (c = 0; c < 3; c++)
                    px[c] = (unsigned char)(0.45f * (float)px[c] + 0.55f * (float)heat[c] + 0.5f);
                memcpy(im.p + ((size_t)(y0 + LH + tile + 2 + i) * W + x0 + j) * 3, px, 3);
            }
        if (bar_h) {
            int yb = y0 + LH + 2 * tile + 2 + 3;
            cl_fill(&im, x0, yb, tile, bar_h, track);
            cl_fill(&im, x0, yb, fwmax > 0 ? (int)((float)tile * a->fw[t] / fwmax + 0.5f) : 0,
                    bar_h, fg);
        }
    }
    if (a->tmat) { /* the T x T temporal panel, rows = query frames */
        int yp = gap + title_h + rows * (cell_h + gap), xp = gap;
        float tlo = a->tmat[0], thi = a->tmat[0];
        for (i = 1; i < T * T; i++) {
            if (a->tmat[i] < tlo) tlo = a->tmat[i];
            if (a->tmat[i] > thi) thi = a->tmat[i];
        }
        snprintf(buf, sizeof buf, "temporal attention, block %d (mean over patches and heads)",
                 a->block + 1);
        cl_text(&im, xp, yp, W - 2 * gap, buf, fg);
        for (i = 0; i < T; i++)
            for (j = 0; j < T; j++) { /* a fixed scale: every row is a distribution */
                static const unsigned char black[3] = {0, 0, 0}, white[3] = {255, 255, 255};
                unsigned char heat[3];
                float v = a->tmat[i * T + j];
                int x = xp + j * cs, y = yp + LH + i * cs, bright;
                cl_colour(v, heat);
                cl_fill(&im, x, y, cs - (cs > 8), cs - (cs > 8), heat);
                bright = 299 * heat[0] + 587 * heat[1] + 114 * heat[2] > 128000;
                snprintf(lab, sizeof lab, "%.0f", 100.0 * (double)v);
                if (LH && cs >= 22)
                    cl_text(&im, x + 3, y + (cs - LH) / 2 + 2, cs - 4, lab, bright ? black : white);
            }
        cl_range(range, sizeof range, (double)tlo, (double)thi);
        snprintf(legend[1], 256, "colour 0 .. 1 (a fixed scale), values %s", range);
        cl_text(&im, xp + side + 8, yp + LH, 300, "row t: query frame t", dim);
        cl_text(&im, xp + side + 8, yp + 2 * LH, 300, "column t': key frame t'", dim);
        cl_text(&im, xp + side + 8, yp + 3 * LH, 300, "colour 0 .. 1 (fixed)", dim);
        snprintf(buf, sizeof buf, "values %s", range);
        cl_text(&im, xp + side + 8, yp + 4 * LH, 300, buf, dim);
        if (cs >= 22) cl_text(&im, xp + side + 8, yp + 5 * LH, 300, "numbers: percent", dim);
        cl_text(&im, xp + side + 8, yp + 6 * LH, 300,
                o->rollout ? "bars: rollout weight of each frame"
                           : "bars: attention each frame receives",
                dim);
        if (LH) { /* the panel's own colour bar, 0 .. 1 */
            unsigned char heat[3];
            for (j = 0; j < 120; j++) {
                cl_colour((float)j / 119.0f, heat);
                cl_fill(&im, xp + side + 8 + 12 + j, yp + 7 * LH + 3, 1, 8, heat);
            }
            cl_text(&im, xp + side + 8, yp + 7 * LH + 1, 10, "0", dim);
            cl_text(&im, xp + side + 8 + 136, yp + 7 * LH + 1, 10, "1", dim);
        }
    }
    { /* the colour legend */
        int yl = H - gap - leg_h;
        unsigned char heat[3];
        for (j = 0; j < leg_w; j++) {
            cl_colour((float)j / (float)(leg_w > 1 ? leg_w - 1 : 1), heat);
            cl_fill(&im, gap + j, yl, 1, 10, heat);
        }
        cl_range(range, sizeof range, (double)lo, (double)hi);
        if (o->per_frame)
            snprintf(legend[0], 256, "colour 0 .. each frame's largest weight, weights %s", range);
        else
            snprintf(legend[0], 256, "colour 0 .. %s, weights %s", cl_range_hi(range), range);
        snprintf(buf, sizeof buf, "maps: %.240s", legend[0]);
        cl_text(&im, gap, yl + 12, W - 2 * gap, buf, dim);
    }
    ok = tt_write_png(path, W, H, 3, im.p); /* through path.part; prints its errors */
    free(im.p);
    *pw = W, *ph = H;
    return ok;
}
#endif

static int cmd_attention(int argc, char **argv) {
    cl_opts o;
    tsf_model m;
    cl_src src;
    cl_run run;
    cl_maps a;
    long win, len, n;
    int rc, ok = 0, block, t, i, top, pw = 0, ph = 0, divided;
    double *probs = NULL;
    char legend[2][256] = {"", ""};
    tt_prog = "tsf attention";
    memset(&a, 0, sizeof a);
    if ((rc = cl_parse(argc, argv, 1, &o)) != 0) return rc < 0 ? 0 : rc;
    if (!o.out && !o.json) {
        tt_error("nothing to write: give --out attn.png (the picture) or --json (the numbers on "
                 "stdout)");
        return 2;
    }
#ifdef TT_NO_STB
    if (o.out) {
        tt_error("--out %s: writing a PNG needs stb_image_write, and this tsf was built without "
                 "it:\n  " CL_STB_HINT "\n(--json prints the attention maps without it)",
                 o.out);
        return 1;
    }
#endif
    /* a symbolic link, a FIFO or a device at --out is refused before any work */
    if (o.out && !tt_check_output(o.out)) return 1;
    cl_from_run(&o);
    memset(&m, 0, sizeof m);
    memset(&src, 0, sizeof src);
    memset(&run, 0, sizeof run);
    if (!cl_load_model(&m, o.model)) goto done;
    if (o.block > m.cfg.depth) {
        tt_error("--block %d, but the model has %d block%s: give 1 .. %d (the default is the "
                 "last)",
                 o.block, m.cfg.depth, cl_plural(m.cfg.depth), m.cfg.depth);
        goto done;
    }
    if (o.rollout && m.cfg.attention == TSF_ATTN_AXIAL) {
        tt_error("--rollout: %s is an axial model, and a rollout needs the attention of each of "
                 "a block's three steps (time, width, height), but the library keeps those of "
                 "the time and height steps only: draw one block without --rollout",
                 o.model);
        goto done;
    }
    block = o.block ? o.block - 1 : m.cfg.depth - 1;
    divided = m.cfg.attention == TSF_ATTN_DIVIDED;
    m.keep_attention = 1; /* the forward pass keeps every block's probabilities */
    if (!cl_run_init(&run, &m, &o)) goto done;
    if (!cl_src_open(&src, &o, &m, &run.so)) goto done;
    run.src = &src;
    win = cl_window_len(&o, &run);
    top = o.top < run.K ? o.top : run.K;
    if (src.kind == CL_RAW) { /* read up to the end of the window */
        src.limit = win;
        while (!(win && src.n >= o.start + win) && (rc = cl_raw_next(&src)) == 1) {
        }
        if (src.n >= 25) tt_progress_end();
        if (rc < 0) goto done;
    }
    n = src.n;
    if (o.start >= n) {
        tt_error("--start %ld, but %s has %ld frame%s: give --start 0 .. %ld", o.start, src.name, n,
                 cl_plural(n), n - 1);
        goto done;
    }
    len = win && win < n - o.start ? win : n - o.start;
    probs = (double *)tt_malloc((size_t)run.K * sizeof(double));
    if (!cl_predict(&run, o.start, len, probs)) goto done;
    cl_warn_repeats(&run, len);
    cl_attention_maps(&a, &m, block, o.rollout);
#ifndef TT_NO_STB
    if (o.out && !cl_render(o.out, &o, &m, &run, &a, o.start, probs, &pw, &ph, legend)) goto done;
#endif
    if (o.json) {
        printf("{\n  \"model\": ");
        cl_json_str(o.model);
        printf(",\n  \"attention\": \"%s\",\n  \"input\": ", tsf_attention_name(m.cfg.attention));
        cl_json_str(src.name);
        printf(",\n  \"frames\": %ld,\n  \"window\": {\"start\": %ld, \"end\": %ld},\n", n, o.start,
               o.start + len - 1);
        printf("  \"sampled_frames\": [");
        for (t = 0; t < run.T; t++) printf("%s%ld", t ? ", " : "", o.start + run.idx[t]);
        printf("],\n  \"block\": %d,\n  \"blocks\": %d,\n  \"rollout\": %s,\n", block + 1,
               m.cfg.depth, o.rollout ? "true" : "false");
        printf("  \"grid\": [%d, %d],\n  \"top\": ", a.Hp, a.Wp);
        cl_json_top(&m, probs, run.K, top);
        printf(",\n  \"maps\": [\n");
        for (t = 0; t < a.T; t++) {
            printf("    ");
            cl_json_floats(a.maps + (size_t)t * a.N, a.N);
            printf("%s\n", t + 1 < a.T ? "," : "");
        }
        printf("  ],\n  \"cls_self\": ");
        cl_json_floats(a.self, a.nself);
        printf(",\n  \"frame_weights\": ");
        if (a.fw)
            cl_json_floats(a.fw, a.T);
        else
            printf("null");
        printf(",\n  \"temporal\": ");
        if (a.tmat) {
            printf("[\n");
            for (t = 0; t < a.T; t++) {
                printf("    ");
                cl_json_floats(a.tmat + (size_t)t * a.T, a.T);
                printf("%s\n", t + 1 < a.T ? "," : "");
            }
            printf("  ]");
        } else {
            printf("null");
        }
        printf(",\n  \"total\": %.6f,\n  \"png\": ", a.total);
        if (o.out) {
            cl_json_str(o.out);
            printf(",\n  \"png_size\": [%d, %d]", pw, ph);
        } else {
            printf("null");
        }
        printf("\n}\n");
    } else {
        cl_describe(&o, &m, &src, win ? win : n);
        printf("window    frames %ld-%ld; sampled:", o.start, o.start + len - 1);
        for (t = 0; t < run.T; t++) printf(" %ld", o.start + run.idx[t]);
        printf("\ntop %d of %d classes:\n", top, run.K);
        cl_print_top(&m, probs, run.K, top);
        printf("attention block %d of %d, %s\n", block + 1, m.cfg.depth,
               o.rollout ? (divided ? "rollout through the temporal and spatial steps of blocks "
                                      "1 .. B"
                            : m.cfg.attention == TSF_ATTN_LOCAL_GLOBAL
                                ? "rollout through the local and global steps of blocks 1 .. B"
                                : "rollout through blocks 1 .. B")
                         : cl_maps_what(m.cfg.attention));
        if (a.fw) {
            printf("frame weights ");
            for (t = 0; t < a.T; t++) printf(" %.3f", (double)a.fw[t]);
            printf("  (%s)\n", a.tmat && !o.rollout ? "temporal attention each frame receives"
                                                    : "each frame's share");
        }
        if (a.tmat) {
            printf("temporal attention, block %d (rows: query frame, columns: key frame; mean over "
                   "patches and heads):\n",
                   block + 1);
            for (t = 0; t < a.T; t++) {
                printf("  ");
                for (i = 0; i < a.T; i++) printf(" %.3f", (double)a.tmat[(size_t)t * a.T + i]);
                printf("\n");
            }
        }
        if (o.out)
            printf("wrote %s: %d x %d pixels, %d frame%s of %d x %d patches\n", o.out, pw, ph, a.T,
                   cl_plural(a.T), a.Hp, a.Wp);
        if (legend[0][0]) printf("  maps: %s\n", legend[0]);
        if (legend[1][0]) printf("  temporal panel: %s\n", legend[1]);
    }
    ok = 1;
done:
    free(probs);
    cl_maps_free(&a);
    cl_src_close(&src);
    cl_run_free(&run);
    tsf_model_free(&m);
    free(o.model_file), free(o.sampling_from);
    return ok ? 0 : 1;
}
