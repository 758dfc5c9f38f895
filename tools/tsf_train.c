/* tsf_train.c - `tsf train` and `tsf eval`, included by tsf.c after tsf_init.c (tsf train
   --init-from). It uses the library's public API only.

   tsf train MANIFESTS --out DIR   (all options: train_usage() below, or tsf train --help)
     Every epoch: the training clips in a new random order, each sampled and augmented by the
     loader (tsf_clip_sample: dense or segment frames, scale jitter, crop, flip, the model's
     mean/std); SGD steps on batches (with accumulation); validation on one fixed view per clip
     (loss, top-1, top-5); then the run is saved (below). The files of DIR:
       args.txt                the run's options, one a line; --resume reads them first
       checkpoint.safetensors  model, SGD momentum and tsf_train_state: what --resume needs
       train_state.txt         the rest of what --resume needs: the rows of log.csv at full
                               precision and the running epoch's sums (loss, correct clips,
                               clips), so that an epoch resumed halfway logs what it would have
                               logged whole; its "checkpoint" line names the checkpoint it
                               belongs to (SGD step, epoch, step in the epoch, generators)
       model.safetensors       the model with the class names (tsf eval / classify / attention)
       model_best.safetensors  with validation: the model of the best epoch so far (below)
       log.csv                 epoch,step,lr,train_loss,train_acc,val_loss,val_top1,val_top5,
                               best (accuracies in percent; lr: that of the epoch's last SGD
                               step; best: 1 on the row of model_best's epoch, 0 on the other
                               rows with validation)
       curves.svg              loss and accuracy per epoch
       lock                    while tsf train runs: its pid (below)
     No file holds a wall-clock time (the epoch lines on stdout do), so two runs with the same
     options write the same bytes, whether or not they were stopped and resumed.
     --resume takes the model and tsf_train_state from the checkpoint and the options from
     args.txt, then from its own command line (--lr, --stop-epoch, ... from there on); model
     flags that disagree with the checkpoint are an error, and so is another --epochs (the
     learning-rate schedule is laid over them: a new one would move it under the run, raising
     the rate mid-run; --init-from RUN/model.safetensors trains on in a new run). The initial
     weights (--init) and a flip turned off by the class names are kept in args.txt. A run
     stopped before its first checkpoint
     (args.txt, no checkpoint) starts again from the beginning. Ctrl-C (or --stop-after N)
     finishes the SGD step, saves a checkpoint and stops; inside validation it stops at once
     and the resumed run validates again. A NaN or infinite loss or gradient stops training
     without saving. Exit status: 0 done, 1 an error (files, data, model, NaN loss, DIR in use),
     2 bad usage, 130 Ctrl-C (SIGINT; SIGTERM gives 143) after saving a checkpoint.

   Saving. The checkpoint is the run's one commit point: every other file is made again from it
   and its state file, so a kill at any moment loses at most the work since the last save, and
   --resume then writes files byte-identical to those of a run never stopped. A save writes
   each file to NAME.tmp and renames it over NAME, in this order:
       1. train_state.next         the state file of the checkpoint about to be saved (fsync)
       2. checkpoint.safetensors   the commit (the library: temporary file, fsync, rename)
       3. train_state.next renamed to train_state.txt
       4. model.safetensors, model_best.safetensors (when the checkpoint ends the best
          epoch), log.csv, curves.svg, made from the state in memory
     A kill before 2's rename leaves the previous checkpoint and its train_state.txt (and maybe
     a train_state.next of no checkpoint, which --resume removes); a kill after it, the new
     checkpoint and its train_state.next. --resume removes stale NAME.tmp files, loads the
     checkpoint, takes whichever of the two state files names it (neither, in a run of an older
     tsf: the rows of log.csv, and a warning when an epoch was left halfway) and does 3 and 4
     again before it goes on, also when the run is complete: so it repairs a model file, log or
     curves that a kill left behind. A fresh run removes the files of an earlier one first, the
     checkpoint first of all, so that a folder never pairs one run's checkpoint with another's
     args.txt.

   The best model. The rows decide, after each epoch's validation, which epoch is best (the
   first with the highest --best-metric: top1 or top5; for loss the lowest) and how many epochs
   have passed since (--early-stop N stops the run when that reaches N). Neither is stored
   apart: both follow from the rows that train_state.txt keeps at full precision, and so are
   committed with the checkpoint like the rows. model_best.safetensors is written in step 4 of
   the save that ends the best epoch, when the model in memory is that epoch's; a kill before
   it leaves the previous best file, and --resume, which loads that very checkpoint, writes it
   again. Saves of later checkpoints leave it alone. So model_best.safetensors and the best
   column, like every other file, come out byte-identical to those of a run never stopped. A
   resumed run keeps its --best-metric (another would choose an epoch whose model is gone).

   Folds. --data DIR --fold k reads DIR/classes.txt and DIR/fold_1.csv .. DIR/fold_K.csv (K:
   the files present, numbered from 1 without a gap), as mkdataset --folds K writes them; it
   trains on the clips of the other folds, in fold order, and validates on fold k; --all-folds
   trains on all of them without validation. A clip listed in two folds, or in a fold and
   DIR/test.csv, stops it before training: that would leak. args.txt keeps --data (absolute)
   and --fold, so --resume reads the folds again (or those of a --data given then).

   One run a folder. DIR/lock holds the pid of the tsf train using DIR, under a POSIX record
   lock (fcntl F_SETLK) that the kernel releases when the process ends, however it ends. A
   second tsf train on DIR is refused with the holder's pid for as long as the holder lives;
   a lock file left by a killed one is taken over; the holder removes it at exit (also after
   Ctrl-C). The record lock, not the pid, says whether the holder lives: a pid can be reused,
   and two processes taking over one stale lock at once must not both win. On a filesystem
   without record locks the pid decides (kill(pid, 0)). tsf train replaces only regular files:
   a symbolic link, FIFO, device or folder at one of the names above (or at NAME.tmp) stops it
   with a message before any training, and before each write.

   Test hook (tests/test_faults.sh; not for other use). With TSF_TEST_KILL_AT=N in the
   environment, tsf train numbers its fault points in the order it reaches them: every step of
   writing a file (NAME.tmp created, NAME.tmp written, NAME.tmp renamed over NAME, the state
   file renamed, the files of an earlier run removed, the lock taken, the lock about to be
   removed), every SGD step and every validation batch. It reports each on stderr ("tsf: test
   point N: what") and at point N sends itself TSF_TEST_SIGNAL: KILL (the default), INT or
   TERM. The library's saves cannot be stopped halfway from here, so before them a point
   "NAME.tmp partly written" writes a few bytes to NAME.tmp ahead of a SIGKILL, as a kill
   during the library's write would leave it. N = 0 only reports the points. The count goes on
   across the runs of one process (tsf cv runs several), so N picks a point in any of them.

   Randomness. --seed draws the initial weights and the first data generator. ts.data_rng (in
   the checkpoint) is the data generator as it was at the start of epoch ts.epoch: the epoch
   shuffles the clips with it and draws a 64-bit epoch seed from it; clip i then samples its
   frames, scale, crop and flip from its own generator, tsf_sample_seed(epoch seed, epoch, i).
   Stochastic depth draws from the model's own generator (m.rng, also in the checkpoint). So
   a checkpoint taken after any SGD step holds everything needed to repeat the rest of the run
   exactly, and the order in which threads load clips never matters: --resume continues
   bit-identically.

   tsf eval MODEL MANIFEST   (eval_usage() below)
     Top-1, top-5, per-class accuracy and the confusion matrix, with the original's multi-view
     test (K temporal clips x 1 or 3 spatial crops, logits summed). Prints text; writes files
     only when given --out DIR: eval.txt (the same text), confusion.csv, confusion.svg and
     predictions.csv. The frame sampling (--stride, --segment, --fps) defaults to what
     args.txt beside MODEL says, so a run's RUN/model.safetensors is tested as it was trained.
     MODEL may be a run folder (RUN: its model.safetensors); --best takes the run's
     model_best.safetensors instead. ev_run does the work; tsf cv calls it for every fold. */
#include <fcntl.h>
#include <signal.h>

/* after tsf_tools.h (tsf.c includes it first) */
#include "tsf_chart.h" /* curves.svg */
#include "tsf_mpi.h"   /* several processes (build/tsf-mpi); one in build/tsf */
#if defined(_OPENMP) && !defined(TSF_NO_OPENMP)
#include <omp.h>
#define TR_OMP 1
#endif

/* ==============================================================================================
   Options
   ============================================================================================== */

typedef struct tr_opts {
    /* data */
    const char *data, *train, *val, *classes;
    int fold, all_folds; /* --data DIR's folds: validate on fold k, or train on all       */
    int segment, stride, no_flip, flip, inv_uniform;
    float fps;
    /* model (0 or NULL: not given) */
    const char *variant, *pos_embed;
    int frames, size, patch, dim, depth, heads, channels, bgr;
    const char *init_from, *init; /* --init: scratch or original (NULL: not given)   */
    int new_head;
    /* recipe */
    int epochs, warmup, batch, accum, no_nesterov, no_decay_emb, seed;
    const char *schedule;
    float lr, momentum, weight_decay, drop_path, dropout, label_smoothing, clip_norm;
    /* the best model and when to stop */
    const char *best_metric;
    int early_stop, stop_epoch;
    /* this invocation */
    const char *out;
    int resume, overwrite, stop_after, threads, progress, quiet, help, recompute, fused_sgd;
    /* eval (and tsf cv) */
    int temporal_views, spatial_crops, best, no_final;
} tr_opts;

/* One option: its name, kind ('i' int, 'f' float, 's' string, 'p' path, 'b' flag), field,
   range, and whether it belongs to the run (saved in args.txt for --resume). */
typedef struct tr_def {
    const char *name;
    char kind;
    size_t off;
    double lo, hi;
    int save;
} tr_def;

#define TR_OFF(f) offsetof(tr_opts, f)
#define TR_BIG 1e9

static const tr_def tr_train_defs[] = {
    {"--data", 'p', TR_OFF(data), 0, 0, 0}, /* saved as the files it names */
    {"--train", 'p', TR_OFF(train), 0, 0, 1},
    {"--val", 'p', TR_OFF(val), 0, 0, 1},
    {"--classes", 'p', TR_OFF(classes), 0, 0, 1},
    {"--fold", 'i', TR_OFF(fold), 1, 100, 1},
    {"--all-folds", 'b', TR_OFF(all_folds), 0, 0, 1},
    {"--segment", 'b', TR_OFF(segment), 0, 0, 1},
    {"--stride", 'i', TR_OFF(stride), 1, TSF_CLIP_MAX_FRAMES, 1},
    {"--fps", 'f', TR_OFF(fps), 0, (double)TSF_CLIP_MAX_FPS, 1},
    {"--no-flip", 'b', TR_OFF(no_flip), 0, 0, 1},
    {"--flip", 'b', TR_OFF(flip), 0, 0, 1},
    {"--inv-uniform", 'b', TR_OFF(inv_uniform), 0, 0, 1},
    {"--variant", 's', TR_OFF(variant), 0, 0, 1},
    {"--pos-embed", 's', TR_OFF(pos_embed), 0, 0, 1},
    {"--frames", 'i', TR_OFF(frames), 1, 4096, 1},
    {"--size", 'i', TR_OFF(size), 1, 16384, 1},
    {"--patch", 'i', TR_OFF(patch), 1, 16384, 1},
    {"--dim", 'i', TR_OFF(dim), 1, 65536, 1},
    {"--depth", 'i', TR_OFF(depth), 1, 1024, 1},
    {"--heads", 'i', TR_OFF(heads), 1, 65536, 1},
    {"--channels", 'i', TR_OFF(channels), 1, 3, 1},
    {"--bgr", 'b', TR_OFF(bgr), 0, 0, 1},
    {"--init-from", 'p', TR_OFF(init_from), 0, 0, 1},
    {"--init", 's', TR_OFF(init), 0, 0, 1},
    {"--new-head", 'b', TR_OFF(new_head), 0, 0, 1},
    {"--epochs", 'i', TR_OFF(epochs), 0, 1000000, 1},
    {"--lr", 'f', TR_OFF(lr), 0, 1e30, 1},
    {"--schedule", 's', TR_OFF(schedule), 0, 0, 1},
    {"--warmup", 'i', TR_OFF(warmup), 0, TR_BIG, 1},
    {"--batch", 'i', TR_OFF(batch), 1, 4096, 1},
    {"--accum", 'i', TR_OFF(accum), 1, 65536, 1},
    {"--momentum", 'f', TR_OFF(momentum), 0, 0.999999, 1},
    {"--no-nesterov", 'b', TR_OFF(no_nesterov), 0, 0, 1},
    {"--weight-decay", 'f', TR_OFF(weight_decay), 0, 1, 1},
    {"--no-decay-embeddings", 'b', TR_OFF(no_decay_emb), 0, 0, 1},
    {"--drop-path", 'f', TR_OFF(drop_path), 0, 0.99, 1},
    {"--dropout", 'f', TR_OFF(dropout), 0, 0.99, 1},
    {"--label-smoothing", 'f', TR_OFF(label_smoothing), 0, 0.99, 1},
    {"--clip-norm", 'f', TR_OFF(clip_norm), 0, 1e30, 1},
    {"--seed", 'i', TR_OFF(seed), 0, 2147483647, 1},
    {"--best-metric", 's', TR_OFF(best_metric), 0, 0, 1},
    {"--early-stop", 'i', TR_OFF(early_stop), 1, 1000000, 1},
    {"--stop-epoch", 'i', TR_OFF(stop_epoch), 1, 1000000, 1},
    {"--out", 'p', TR_OFF(out), 0, 0, 0},
    {"--resume", 'b', TR_OFF(resume), 0, 0, 0},
    {"--overwrite", 'b', TR_OFF(overwrite), 0, 0, 0},
    {"--stop-after", 'i', TR_OFF(stop_after), 1, TR_BIG, 0},
    {"--threads", 'i', TR_OFF(threads), 1, 4096, 0},
    {"--recompute", 'b', TR_OFF(recompute), 0, 0, 0},
    {"--fused-sgd", 'b', TR_OFF(fused_sgd), 0, 0, 0},
    {"--progress", 'b', TR_OFF(progress), 0, 0, 0},
    {"--quiet", 'b', TR_OFF(quiet), 0, 0, 0},
    {NULL, 0, 0, 0, 0, 0},
};

static const tr_def tr_eval_defs[] = {
    {"--best", 'b', TR_OFF(best), 0, 0, 0},
    {"--classes", 'p', TR_OFF(classes), 0, 0, 0},
    {"--temporal-views", 'i', TR_OFF(temporal_views), 1, 1024, 0},
    {"--spatial-crops", 'i', TR_OFF(spatial_crops), 1, 3, 0},
    {"--segment", 'b', TR_OFF(segment), 0, 0, 0},
    {"--stride", 'i', TR_OFF(stride), 1, TSF_CLIP_MAX_FRAMES, 0},
    {"--fps", 'f', TR_OFF(fps), 0, (double)TSF_CLIP_MAX_FPS, 0},
    {"--batch", 'i', TR_OFF(batch), 1, 4096, 0},
    {"--out", 'p', TR_OFF(out), 0, 0, 0},
    {"--threads", 'i', TR_OFF(threads), 1, 4096, 0},
    {"--progress", 'b', TR_OFF(progress), 0, 0, 0},
    {"--quiet", 'b', TR_OFF(quiet), 0, 0, 0},
    {NULL, 0, 0, 0, 0, 0},
};

static void train_usage(FILE *f) {
    fprintf(f,
            "usage: tsf train --data DIR --out RUN [options]\n"
            "       tsf train --data DIR --fold K --out RUN [options]   (DIR from mkdataset "
            "--folds)\n"
            "       tsf train --train TRAIN.csv [--val VAL.csv] [--classes CLASSES.txt] --out RUN "
            "[options]\n"
            "       tsf train --out RUN --resume [options to change, e.g. --stop-epoch 10]\n"
            "\n"
            "Trains a TimeSformer on clip files listed in manifests (tools/README.md: video2clip,\n"
            "frames2clip and mkdataset make them). After every epoch: validation (loss, top-1,\n"
            "top-5) and RUN/checkpoint.safetensors, RUN/model.safetensors, RUN/log.csv,\n"
            "RUN/curves.svg, and RUN/model_best.safetensors when validation improves. Ctrl-C\n"
            "saves a checkpoint and exits; --resume continues it exactly, also after a crash or\n"
            "a kill (from the last checkpoint; it writes the other files again). One tsf train a\n"
            "folder: RUN/lock holds its pid while it runs.\n"
            "\n"
            "data:\n"
            "  --data DIR             DIR/train.csv, DIR/val.csv (if present), DIR/classes.txt,\n"
            "                         as mkdataset writes them\n"
            "  --fold K               with --data DIR from mkdataset --folds: train on the other\n"
            "                         folds, validate on DIR/fold_K.csv (tsf cv runs them all)\n"
            "  --all-folds            with --data DIR: train on every fold, no validation (the\n"
            "                         final model of a cross-validation)\n"
            "  --train MANIFEST       training clips, \"path,label\" lines (label: index or name)\n"
            "  --val MANIFEST         validation clips (default: none, no validation)\n"
            "  --classes FILE         class names, one a line (default: classes.txt beside the\n"
            "                         training manifest)\n"
            "  --stride N             dense sampling: T frames N source frames apart (default 32,\n"
            "                         the paper's 8 x 32 for 30 fps Kinetics)\n"
            "  --fps F                dense sampling: N counts frames at F fps (default: the\n"
            "                         clips' own rate)\n"
            "  --segment              segment sampling instead (SSv2): one frame from each of T\n"
            "                         equal parts of the clip\n"
            "  --no-flip              no random left-right flip (SSv2, direction classes)\n"
            "  --flip                 flip even when class names name directions (below)\n"
            "  --inv-uniform          scale jitter uniform in 1/side (SSv2)\n"
            "  Training clips get the paper's augmentation: short side jittered in\n"
            "  [S*256/224, S*320/224], a random S x S crop, a random left-right flip; validation\n"
            "  one fixed view (the first window, short side S, centre crop). A flip turns a\n"
            "  clip of \"pan left\" into one of \"pan right\": when a class name holds a word\n"
            "  that a mirror reverses (left, right, leftward(s), rightward(s), clockwise,\n"
            "  counterclockwise, anticlockwise, cw, ccw), a new run turns the flip off with a\n"
            "  warning (up, down, in, out survive a left-right flip). The first lines of the\n"
            "  run say which augmentation it uses.\n"
            "\n");
    fprintf(
        f, "model (a new run; --resume keeps the checkpoint's):\n"
           "  --variant V            divided (default), joint, space, local_global or axial\n"
           "                         attention (or the full names: divided_space_time, ...)\n"
           "  --pos-embed E          space_time (default), space (no time embedding) or none\n"
           "  --frames T             frames a clip (default 8)\n"
           "  --size S               frame side in pixels (default 112)\n"
           "  --patch P              patch side (default 16)\n"
           "  --dim D                embedding width (default 192)\n"
           "  --depth L              blocks (default 4)\n"
           "  --heads H              attention heads; D must be a multiple (default 3)\n"
           "  --channels C           input channels, 1 to 3 (default 3, RGB clips)\n"
           "  --bgr                  the model sees BGR (the original SSv2 models)\n"
           "  --init-from MODEL      start from a .safetensors file or a Hugging Face folder:\n"
           "                         a TimeSformer (this library's, HF or original names) or an\n"
           "                         image ViT (timm or HF names). Tensors whose name and shape\n"
           "                         match are copied; position/time embeddings of another length\n"
           "                         are resized (1-D nearest, as the original); from an image\n"
           "                         model the temporal attention starts as a copy of the spatial\n"
           "                         one and its head is dropped. Model flags not given come from\n"
           "                         MODEL's config (or shapes).\n"
           "  --new-head             re-initialise the head even when the class counts match\n"
           "  --init scratch         the weights of a new model (default without --init-from):\n"
           "                         Linear layers N(0, 1/D), position and time embeddings\n"
           "                         smooth random waves; made for small models trained from\n"
           "                         scratch (tsf_model_init_params_scratch in timesformer.h)\n"
           "  --init original        the original code's (trunc-normal 0.02, zero time\n"
           "                         embedding and temporal fc; the default with --init-from,\n"
           "                         for the tensors it does not copy): for ViT-B-sized models\n"
           "                         that start from trained weights; a small model trained\n"
           "                         from scratch with it can stay at chance\n"
           "\n");
    fprintf(
        f,
        "recipe (defaults: the paper's, docs/model.md section 11):\n"
        "  --epochs N             epochs (default 15; 0 writes the initial model)\n"
        "  --lr X                 base learning rate (default 0.005)\n"
        "  --schedule steps       the paper's: lr / 10 at 11/15 and 14/15 of the epochs (default)\n"
        "  --schedule cosine      cosine decay to 0 over the run, after --warmup\n"
        "  --warmup N             linear warm-up over the first N SGD steps (default 0)\n"
        "  --batch B              clips a forward/backward pass (default 8)\n"
        "  --accum K              passes per SGD step: effective batch B*K (default 1)\n"
        "  --momentum M           SGD momentum (default 0.9, Nesterov)\n"
        "  --no-nesterov          plain momentum\n"
        "  --weight-decay W       on every parameter, as the original (default 1e-4)\n"
        "  --no-decay-embeddings  no weight decay on embeddings, LayerNorms and biases\n"
        "  --drop-path R          stochastic depth of the last block, linear from 0 (default 0.1)\n"
        "  --dropout R            dropout after the MLP's GELU (default 0, as the original)\n"
        "  --label-smoothing E    (default 0)\n"
        "  --clip-norm N          clip the global gradient norm to N (default 0: off)\n"
        "  --seed N               initial weights, data order, augmentation (default 0)\n"
        "\n"
        "the best model (runs with validation):\n"
        "  RUN/model_best.safetensors is the model of the epoch with the best validation score\n"
        "  so far, written whenever it improves; log.csv's column best marks that epoch, and\n"
        "  tsf eval --best and tsf cv --best use it.\n"
        "  --best-metric M        top1 (default), top5 or loss; a tie keeps the earlier epoch;\n"
        "                         a resumed run keeps its metric\n"
        "  --early-stop N         stop once N epochs in a row brought no improvement (default:\n"
        "                         never); --resume with a larger N goes on\n"
        "  --stop-epoch E         stop after epoch E, with the schedule of --epochs (tsf cv's\n"
        "                         final model trains for as long as the folds' models did)\n"
        "\n"
        "run:\n"
        "  --out RUN              the run's folder (created; required)\n"
        "  --resume               continue RUN/checkpoint.safetensors with RUN/args.txt's\n"
        "                         options, exactly as if it had never stopped; options given\n"
        "                         now override them from the resumed step on, but --epochs,\n"
        "                         over which the schedule is laid, stays (--stop-epoch stops\n"
        "                         sooner; --init-from RUN/model.safetensors trains on in a new\n"
        "                         run); a run stopped before its first checkpoint starts again\n"
        "  --overwrite            start afresh in a RUN that holds a run\n"
        "  --stop-after N         stop after N SGD steps of this process (checkpoint saved,\n"
        "                         exit 0), as if interrupted; --resume continues\n"
        "  --threads N            OpenMP threads (default: all; results do not depend on it);\n"
        "                         several processes, on one machine or many: mpirun -np N\n"
        "                         build/tsf-mpi train ... (make MPI=1), each with its share of\n"
        "                         every batch (README: Several machines)\n"
        "  --recompute            keep only each block's input and recompute the rest in the\n"
        "                         backward pass: much less memory, about a third more time,\n"
        "                         the same results\n"
        "  --fused-sgd            apply each block's SGD update as soon as its gradient is\n"
        "                         complete: no memory for the whole gradient, the same\n"
        "                         results (not with --accum > 1 or --clip-norm)\n"
        "  --progress             the live progress line even when stderr is not a terminal\n"
        "  -q, --quiet            no progress, no epoch lines\n"
        "  -h, --help             this text\n"
        "\n"
        "exit status: 0 done (or stopped by --stop-after), 1 an error (also: RUN in use by\n"
        "another tsf train), 2 bad usage, 130 after Ctrl-C (143 after SIGTERM), with the\n"
        "checkpoint saved\n");
}

static void eval_usage(FILE *f) {
    fprintf(f,
            "usage: tsf eval MODEL MANIFEST [options]\n"
            "       tsf eval RUN MANIFEST [--best] [options]\n"
            "\n"
            "Top-1, top-5, per-class accuracy and the confusion matrix of MODEL on the clips of\n"
            "MANIFEST, with the original's multi-view test: every clip is seen as K temporal\n"
            "windows x 1 or 3 spatial crops and the logits of the views are summed.\n"
            "\n"
            "  MODEL                  a .safetensors model or checkpoint (tsf train's\n"
            "                         RUN/model.safetensors) or a Hugging Face model folder\n"
            "  RUN                    the folder of a tsf train run: its model.safetensors\n"
            "  --best                 the run's model_best.safetensors instead (the epoch best\n"
            "                         on validation), beside MODEL or in RUN\n"
            "  MANIFEST               \"path,label\" lines; labels are class indices or the\n"
            "                         model's class names\n"
            "  --classes FILE         class names for the manifest's labels (default: the\n"
            "                         model's own)\n"
            "  --temporal-views K     windows spread over each clip (default 1; dense only)\n"
            "  --spatial-crops 1|3    the centre crop, or start/centre/end of the long side\n"
            "                         (default 3, the paper's 1 x 3 test)\n"
            "  --stride N, --fps F, --segment\n"
            "                         frame sampling, as the model was trained (default: from\n"
            "                         args.txt beside MODEL when tsf train wrote one, else\n"
            "                         dense, stride 32)\n"
            "  --batch B              views a forward pass (default 8)\n"
            "  --out DIR              also write DIR/eval.txt (this text), DIR/confusion.csv,\n"
            "                         DIR/confusion.svg and DIR/predictions.csv; without it\n"
            "                         nothing is written\n"
            "  --threads N            OpenMP threads\n"
            "  --progress             progress even when stderr is not a terminal\n"
            "  -q, --quiet            no progress\n"
            "  -h, --help             this text\n");
}

/* Parse args[0..n) into *o with the table defs. Other words go to pos[0..maxpos). Returns 1,
   or 0 after printing what is wrong and what to do. */
static int tr_parse(const tr_def *defs, tr_opts *o, int n, char **args, const char *cmd,
                    const char **pos, int maxpos, int *npos) {
    int i;
    for (i = 0; i < n; i++) {
        const char *a = args[i], *eq, *val;
        const tr_def *d;
        size_t len;
        char *field;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            o->help = 1;
            continue;
        }
        if (strcmp(a, "-q") == 0) a = "--quiet";
        if (a[0] != '-' || a[1] == 0) {
            if (*npos >= maxpos) {
                tt_error("%s: unexpected argument \"%s\" (options start with --; see tsf %s "
                         "--help)",
                         cmd, a, cmd);
                return 0;
            }
            pos[(*npos)++] = a;
            continue;
        }
        eq = strchr(a, '=');
        len = eq ? (size_t)(eq - a) : strlen(a);
        for (d = defs; d->name; d++)
            if (strlen(d->name) == len && strncmp(d->name, a, len) == 0) break;
        if (!d->name) {
            tt_error("%s: unknown option %.*s (tsf %s --help lists every option)", cmd, (int)len, a,
                     cmd);
            return 0;
        }
        field = (char *)o + d->off;
        if (d->kind == 'b') {
            if (eq) {
                tt_error("%s: %s takes no value", cmd, d->name);
                return 0;
            }
            *(int *)(void *)field = 1;
            continue;
        }
        val = eq ? eq + 1 : i + 1 < n ? args[++i] : NULL;
        if (!val) {
            tt_error("%s: %s needs a value (tsf %s --help)", cmd, d->name, cmd);
            return 0;
        }
        if (d->kind == 'i') {
            if (!tt_int(d->name, val, (long)d->lo, (long)d->hi, (int *)(void *)field)) return 0;
        } else if (d->kind == 'f') {
            if (!tt_float(d->name, val, d->lo, d->hi, (float *)(void *)field)) return 0;
        } else {
            if (!*val) {
                tt_error("%s: %s needs a non-empty value", cmd, d->name);
                return 0;
            }
            *(const char **)(void *)field = val;
        }
    }
    return 1;
}

/* ==============================================================================================
   Small helpers: time, files, text
   ============================================================================================== */

/* 42s, 3m12s, 2h05m */
static const char *tr_hms(double s, char *buf, size_t n) {
    long v = s > 0 && s < 1e9 ? (long)(s + 0.5) : 0;
    if (v < 60)
        snprintf(buf, n, "%lds", v);
    else if (v < 3600)
        snprintf(buf, n, "%ldm%02lds", v / 60, v % 60);
    else
        snprintf(buf, n, "%ldh%02ldm", v / 3600, (v / 60) % 60);
    return buf;
}

/* A malloc'd copy of printf's output. */
static TT_PRINTF(1, 2) char *tr_fmt(const char *fmt, ...) {
    va_list ap;
    char *p;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    p = (char *)tt_malloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

/* The test hook (the top comment): TSF_TEST_KILL_AT and TSF_TEST_SIGNAL, read by cmd_train. */
static long tr_hook_at = -1; /* the point to stop at; 0: report only; -1: off */
static long tr_hook_n = 0;   /* points reached                                   */
static int tr_hook_sig = SIGKILL;

static void tr_hook_init(void) {
    const char *at = getenv("TSF_TEST_KILL_AT"), *sig = getenv("TSF_TEST_SIGNAL");
    tr_hook_at = at && *at ? strtol(at, NULL, 10) : -1;
    tr_hook_sig = !sig || strcmp(sig, "KILL") == 0 ? SIGKILL
                  : strcmp(sig, "INT") == 0        ? SIGINT
                  : strcmp(sig, "TERM") == 0       ? SIGTERM
                                                   : SIGKILL;
}

/* Fault point `what` (about `path`, may be NULL). partial: the point before a library save of
   path, where a SIGKILL first leaves a few bytes in path.tmp. */
static void tr_point(const char *what, const char *path, int partial) {
    if (tr_hook_at < 0) return;
    tr_hook_n++;
    fprintf(stderr, "tsf: test point %ld: %s%s%s\n", tr_hook_n, path ? path : "", path ? " " : "",
            what);
    if (tr_hook_n != tr_hook_at) return;
    fflush(stdout);
    if (partial && tr_hook_sig == SIGKILL) {
        char tmp[4200];
        FILE *f;
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        if ((f = fopen(tmp, "wb")) != NULL) fputs("partly written\n", f), fclose(f);
    }
    raise(tr_hook_sig);
}

/* 1 when nothing is at path or a regular file is, else 0 after saying what is there: tsf
   train writes, renames and removes only regular files, so a symbolic link, FIFO, device or
   folder at one of its names is left alone. */
static int tr_regular_or_absent(const char *path) {
    struct stat st;
    const char *what;
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT) return 1;
        tt_error("cannot look at %s: %s", path, strerror(errno));
        return 0;
    }
    if (S_ISREG(st.st_mode)) return 1;
    what = S_ISLNK(st.st_mode)    ? "a symbolic link"
           : S_ISDIR(st.st_mode)  ? "a folder"
           : S_ISFIFO(st.st_mode) ? "a FIFO"
           : S_ISCHR(st.st_mode)  ? "a character device"
           : S_ISBLK(st.st_mode)  ? "a block device"
           : S_ISSOCK(st.st_mode) ? "a socket"
                                  : "of another kind";
    tt_error("%s: not a regular file (%s): refusing to replace it; move it away or choose "
             "another folder",
             path, what);
    return 0;
}

/* Remove a stale temporary file path (a regular file left by a killed writer). 0 after an
   error: something else is there, or it cannot be removed. */
static int tr_remove_stale(const char *path) {
    if (!tr_regular_or_absent(path)) return 0;
    if (remove(path) != 0 && errno != ENOENT) {
        tt_error("cannot remove %s: %s", path, strerror(errno));
        return 0;
    }
    return 1;
}

/* Open PATH.tmp for writing; tr_commit closes it and renames it over PATH, so readers never see
   a half-written file. PATH.tmp is made anew (O_EXCL): a stale one is removed first, and a
   symbolic link or FIFO there is refused instead of followed. */
static FILE *tr_create(const char *path) {
    char *tmp = tr_fmt("%s.tmp", path);
    FILE *f = NULL;
    int fd = -1;
    if (tr_regular_or_absent(path) && tr_remove_stale(tmp)) {
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0666);
        if (fd >= 0 && !(f = fdopen(fd, "w"))) close(fd);
        if (!f)
            tt_error("cannot write %s: %s (check that the folder is writable)", tmp,
                     strerror(errno));
    }
    if (f) tr_point("created", tmp, 0);
    free(tmp);
    return f;
}

/* Close f and rename PATH.tmp over PATH (durable: fsync the data first, for a file that must
   reach the disk before a later rename does). */
static int tr_commit_file(FILE *f, const char *path, int durable) {
    char *tmp = tr_fmt("%s.tmp", path);
    int ok = !ferror(f) && fflush(f) == 0, why = 0;
    if (ok && durable && fsync(fileno(f)) != 0) ok = 0;
    if (fclose(f) != 0) ok = 0;
    if (!ok) why = errno;
    if (ok) tr_point("written", tmp, 0);
    if (ok && !tr_regular_or_absent(path)) ok = 0, why = -1;
    if (ok && rename(tmp, path) != 0) ok = 0, why = errno;
    if (ok) tr_point("renamed", path, 0);
    if (!ok) {
        if (why >= 0) tt_error("cannot write %s: %s (disk full?)", path, strerror(why));
        remove(tmp);
    }
    free(tmp);
    return ok;
}

static int tr_commit(FILE *f, const char *path) { return tr_commit_file(f, path, 0); }

/* Text for CSV: quoted when it holds a comma, a quote or a newline. */
static void tr_csv(FILE *f, const char *s) {
    if (!strpbrk(s, ",\"\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

/* OpenMP threads, if built with OpenMP. */
static void tr_threads(int n) {
    if (n <= 0) return;
#ifdef TR_OMP
    omp_set_num_threads(n);
#else
    if (n > 1)
        tt_warn("--threads %d: this tsf was built without OpenMP (make OMP=1); using one thread",
                n);
#endif
}

/* ==============================================================================================
   Data: class names, manifests, clip checks and batches
   ============================================================================================== */

/* Load a class-names file; prints what is wrong and what to do. */
static int tr_load_classes(tsf_classes *c, const char *path) {
    tsf_error err;
    tsf_status st = tsf_classes_load(c, path, NULL, &err);
    char why[700];
    if (st == TSF_OK) return 1;
    if (st == TSF_ERR_IO)
        tt_error("%s: %s: give the class-names file with --classes FILE (one name a line; "
                 "mkdataset writes OUTDIR/classes.txt)",
                 path, tt_why(st, &err, why, sizeof why));
    else
        tt_error("%s: %s: fix the file (one class name a line, no duplicates)", path,
                 tt_why(st, &err, why, sizeof why));
    return 0;
}

/* Load a manifest; prints what is wrong and what to do. */
static int tr_load_manifest(tsf_manifest *m, const char *path, const tsf_classes *classes,
                            const char *what) {
    tsf_error err;
    tsf_status st = tsf_manifest_load(m, path, classes, NULL, &err);
    char why[700];
    if (st == TSF_OK) return 1;
    if (st == TSF_ERR_IO)
        tt_error("%s manifest %s: %s: check the path (mkdataset ROOT OUTDIR writes "
                 "OUTDIR/train.csv and OUTDIR/val.csv)",
                 what, path, tt_why(st, &err, why, sizeof why));
    else
        tt_error("%s manifest %s: %s: each line is \"path,label\" with a class index or a name "
                 "from the class list%s; fix that line",
                 what, path, tt_why(st, &err, why, sizeof why),
                 classes ? "" : " (no class names given: indices only)");
    return 0;
}

/* Check every clip of a manifest before the long work starts: it exists, its header is valid,
   and the model can read it. Warns about clips shorter than the dense sampling's span.
   new_model: a channel mismatch can be fixed with --channels. Returns 1, or 0 after printing an
   error. */
static int tr_check_clips(const char *what, const char *mpath, const tsf_manifest *mf,
                          const tsf_config *cfg, const tsf_sample_opts *so, int new_model) {
    int i, short_clips = 0, shortest = 0, ok = 1;
    double span = (double)so->stride * so->frames, n_short;
    long long lo, cnt; /* this rank's clips (tsf-mpi; all of them in one process) */
    tsf_clip_header h;
    tsf_error err;
    char why[700];
    dp_shard(mf->count, &lo, &cnt);
    for (i = (int)lo; i < lo + cnt; i++) {
        tsf_status st = tsf_clip_read_header(&h, mf->paths[i], &err);
        if (st != TSF_OK) {
            tt_progress_end();
            tt_error("%s (line %d of %s): %s: %s", mf->paths[i], mf->lines[i], mpath,
                     tt_why(st, &err, why, sizeof why),
                     st == TSF_ERR_IO ? "fix the path in the manifest or restore the file"
                                      : "remake the clip (video2clip, frames2clip)");
            ok = 0;
            break;
        }
        if (h.C != cfg->channels || h.C > 3) {
            char hint[160];
            if (h.C > 3)
                snprintf(hint, sizeof hint,
                         "the loader reads clips of 1 to 3 channels; remake "
                         "the clip");
            else if (new_model)
                snprintf(hint, sizeof hint,
                         "train a model for them with --channels %d, or "
                         "remake the clips with %d channels",
                         h.C, cfg->channels);
            else
                snprintf(hint, sizeof hint,
                         "this model cannot read them; remake the clips with "
                         "%d channels (video2clip and frames2clip write RGB)",
                         cfg->channels);
            tt_progress_end();
            tt_error("%s (line %d of %s): the clip has %d channel%s, the model takes %d: %s",
                     mf->paths[i], mf->lines[i], mpath, h.C, h.C == 1 ? "" : "s", cfg->channels,
                     hint);
            ok = 0;
            break;
        }
        if (so->sampling == TSF_SAMPLE_DENSE) {
            double need = so->target_fps > 0.0f && h.fps > 0.0f
                              ? span / (double)so->target_fps * (double)h.fps
                              : span;
            if ((double)h.T < need) {
                if (short_clips == 0 || h.T < shortest) shortest = h.T;
                short_clips++;
            }
        }
        if ((i & 255) == 255) tt_progress(what, i + 1, mf->count);
    }
    n_short = short_clips; /* the ranks' counts summed, their shortest clip */
    shortest = -dp_max_int(short_clips > 0 ? -shortest : -TSF_CLIP_MAX_FRAMES - 1);
    if (!dp_agree(ok, &n_short, 1)) return 0;
    short_clips = (int)n_short;
    if (mf->count > 255) tt_progress(what, mf->count, mf->count);
    if (short_clips > 0) {
        int k = shortest / so->frames;
        tt_warn("%s: %d of %d clips have fewer frames than %d frames x stride %d%s: their last "
                "frames repeat; --stride %d fits the shortest (%d frames), or use --segment",
                mpath, short_clips, mf->count, so->frames, so->stride,
                so->target_fps > 0.0f ? " (at --fps)" : "", k < 1 ? 1 : k, shortest);
    }
    return 1;
}

/* The loader's options for a model: its frames, size, mean/std and channel order, plus the
   sampling flags. */
static void tr_sample_opts(tsf_sample_opts *so, const tsf_config *cfg, const tr_opts *o) {
    memset(so, 0, sizeof *so);
    so->frames = cfg->frames, so->size = cfg->image_size;
    so->sampling = o->segment ? TSF_SAMPLE_SEGMENT : TSF_SAMPLE_DENSE;
    so->stride = o->stride, so->target_fps = o->fps;
    so->inv_uniform = o->inv_uniform, so->no_flip = o->no_flip;
    memcpy(so->mean, cfg->mean, sizeof so->mean);
    memcpy(so->std, cfg->std, sizeof so->std);
    so->bgr = cfg->bgr;
    /* test views: the short side of the model's preprocessing (preprocessor_config.json) when
       its crop is the model's image size, as in every released model */
    if (cfg->crop_size == cfg->image_size) so->short_side = cfg->short_side;
    so->test_clips = o->temporal_views > 0 ? o->temporal_views : 1;
    so->test_crops = o->spatial_crops > 0 ? o->spatial_crops : 1;
    tsf_sample_opts_resolve(so); /* cannot fail: every field comes from checked values */
}

/* ---- flipping and class names that name a direction ------------------------------------ */

/* The pairs of words that a left-right flip turns into each other. */
static const char *const tr_mirror_pairs[][2] = {
    {"left", "right"},
    {"leftward", "rightward"},
    {"leftwards", "rightwards"},
    {"clockwise", "counterclockwise"},
    {"cw", "ccw"},
};

/* The mirror image of word w, or NULL when a flip leaves it alone. */
static const char *tr_mirror_word(const char *w) {
    size_t i;
    for (i = 0; i < sizeof tr_mirror_pairs / sizeof tr_mirror_pairs[0]; i++) {
        if (strcmp(w, tr_mirror_pairs[i][0]) == 0) return tr_mirror_pairs[i][1];
        if (strcmp(w, tr_mirror_pairs[i][1]) == 0) return tr_mirror_pairs[i][0];
    }
    return NULL;
}

/* The words of a class name into out, lower case, one space apart: split at anything but a
   letter or digit and where a lower-case letter meets an upper-case one (PanLeft: pan left);
   "anticlockwise", "counter clockwise" and "anti-clockwise" become "counterclockwise". With
   mirror, each word that a flip reverses becomes its mirror image. Returns how many words a
   flip reverses. */
static int tr_words(const char *name, char *out, size_t n, int mirror) {
    const unsigned char *p = (const unsigned char *)name;
    size_t len = 0, prev = 0; /* prev: where the last word starts in out */
    int found = 0;
    out[0] = 0;
    while (*p) {
        char w[64];
        const char *m;
        size_t k = 0;
        while (*p && !isalnum(*p)) p++;
        if (!*p) break;
        do {
            if (k + 1 < sizeof w) w[k++] = (char)tolower(*p);
            p++;
        } while (*p && isalnum(*p) && !(islower(p[-1]) && isupper(*p)));
        w[k] = 0;
        if (strcmp(w, "anticlockwise") == 0) strcpy(w, "counterclockwise");
        if (strcmp(w, "clockwise") == 0 && len > 0 &&
            (strcmp(out + prev, "counter") == 0 || strcmp(out + prev, "anti") == 0)) {
            strcpy(w, "counterclockwise"); /* replaces the word before it */
            len = prev > 0 ? prev - 1 : 0, out[len] = 0;
        }
        m = tr_mirror_word(w);
        found += m != NULL;
        prev = len + (len > 0);
        len += (size_t)snprintf(out + len, len < n ? n - len : 0, "%s%s", len > 0 ? " " : "",
                                mirror && m ? m : w);
        if (len >= n) break; /* a name too long to compare whole: its start */
    }
    return found;
}

/* A new run's flip, unless --flip or --no-flip decides: off, with a warning, when a class name
   holds a word that a left-right flip reverses (a flipped clip of "pan left" pans right, and
   would train the model to call it "pan left"). The warning names a pair of classes when the
   mirror image of one name is another. Returns 1 when it turned the flip off. */
static int tr_choose_flip(tsf_classes *c, int *no_flip, int flip) {
    char a[512], b[512];
    int i, j, first = -1;
    if (flip || *no_flip) return 0;
    for (i = 0; i < c->count; i++) {
        if (!tr_words(c->names[i], a, sizeof a, 1)) continue;
        if (first < 0) first = i;
        for (j = 0; j < c->count; j++) {
            if (j == i) continue;
            tr_words(c->names[j], b, sizeof b, 0);
            if (strcmp(a, b) != 0) continue;
            tt_warn("classes \"%s\" and \"%s\" are mirror images: a left-right flip turns a "
                    "clip of one into one of the other, so this run does not flip its training "
                    "clips (--flip flips anyway; --no-flip says so and silences this)",
                    c->names[i], c->names[j]);
            return *no_flip = 1;
        }
    }
    if (first < 0) return 0;
    tt_warn("class \"%s\" names a direction that a left-right flip reverses, so this run does "
            "not flip its training clips (--flip flips anyway; --no-flip says so and silences "
            "this)",
            c->names[first]);
    return *no_flip = 1;
}

/* One item of a batch: clip `clip` of the manifest, as view `view` (TSF_VIEW_TRAIN: a random
   sample from its own generator seeded with `seed`). */
typedef struct tr_item {
    int clip, view;
    unsigned long long seed;
} tr_item;

/* Load B items into x // (B, C, T, S, S) and their labels, in parallel (every item has its own
   generator, so the result does not depend on the threads). Returns 1, or 0 after printing
   the first failure. */
static int tr_load_batch(float *x, int *labels, const tsf_manifest *mf, const char *mpath,
                         const tr_item *items, int B, const tsf_sample_opts *so, int channels) {
    size_t per = (size_t)channels * so->frames * so->size * so->size;
    tsf_status *st = (tsf_status *)tt_malloc((size_t)B * sizeof *st);
    tsf_error *errs = (tsf_error *)tt_malloc((size_t)B * sizeof *errs);
    int b, ok = 1;
#ifdef TR_OMP
#pragma omp parallel for schedule(dynamic, 1)
#endif
    for (b = 0; b < B; b++) {
        tsf_clip clip;
        tsf_rng rng;
        const tr_item *it = &items[b];
        errs[b].msg[0] = 0;
        st[b] = tsf_clip_open(&clip, mf->paths[it->clip], NULL, &errs[b]);
        if (st[b] != TSF_OK) continue;
        if (clip.h.C != channels) { /* the file changed since the check */
            snprintf(errs[b].msg, sizeof errs[b].msg, "the clip has %d channels, the model %d",
                     clip.h.C, channels);
            st[b] = TSF_ERR_FORMAT;
        } else {
            tsf_rng_seed(&rng, it->seed);
            st[b] = tsf_clip_sample(x + (size_t)b * per, &clip, so, &rng, it->view);
            if (st[b] == TSF_ERR_IO) snprintf(errs[b].msg, sizeof errs[b].msg, "read error");
        }
        tsf_clip_close(&clip);
        labels[b] = mf->labels[it->clip];
    }
    for (b = 0; b < B && ok; b++)
        if (st[b] != TSF_OK) {
            char why[700];
            tt_progress_end();
            tt_error("%s (line %d of %s): cannot load the clip: %s: check or remake the file",
                     mf->paths[items[b].clip], mf->lines[items[b].clip], mpath,
                     tt_why(st[b], &errs[b], why, sizeof why));
            ok = 0;
        }
    free(st), free(errs);
    return ok;
}

/* Rank of the true class among the logits: 0 = top-1 (ties go to the lower index). A NaN
   anywhere ranks last (K): comparisons with NaN are false, which would rank it first. */
static int tr_rank(const float *logits, int K, int label) {
    int k, r = 0;
    if (tsf_check_finite(logits, (size_t)K, NULL) != TSF_OK) return K;
    for (k = 0; k < K; k++)
        if (logits[k] > logits[label] || (logits[k] == logits[label] && k < label)) r++;
    return r;
}

/* ==============================================================================================
   tsf train
   ============================================================================================== */

/* One row of log.csv; NAN for a missing value (no validation). */
typedef struct tr_row {
    long long epoch, step;
    double lr, train_loss, train_acc, val_loss, val_top1, val_top5;
} tr_row;

typedef struct tr_run {
    tr_opts o;
    tsf_model m;
    tsf_train_state ts;
    tsf_classes classes;
    tsf_manifest train, val;
    const char *train_path, *val_path, *classes_path; /* the files in use                    */
    int have_val;
    tsf_sample_opts so; /* training samples                                                  */
    tsf_sample_opts vo; /* validation: one fixed view                                        */
    tsf_sgd sgd;        /*                                                                   */
    int lb;             /* clips a pass on this rank: --batch, or tsf-mpi's share of it      */
    int micro;          /* micro-batches an epoch: ceil(clips / batch)                       */
    int spe;            /* SGD steps an epoch: ceil(micro / accum)                           */
    size_t per;         /* floats of one sample, C*T*S*S                                     */
    float *x;           /* (batch, C, T, S, S)                                               */
    int *labels;        /* (batch)                                                           */
    tr_item *items;     /* (batch)                                                           */
    int *perm;          /* (clips) this epoch's order                                        */
    char *ckpt, *model_path, *best_path, *log_path, *svg_path, *args_path;
    char *state_path, *next_path, *lock_path; /* train_state.txt, train_state.next, lock     */
    int lock_fd;                              /* the lock file, held open; -1: not held      */
    tr_row *rows;                             /* log.csv                                     */
    int nrows;
    double loss_sum;    /* the running epoch so far: summed loss of its clips,                */
    long correct, seen; /* clips classified right and clips seen (train_state.txt keeps them) */
    int live;           /* show the live progress line                                       */
    long long saved_epoch, saved_step; /* ts.epoch and ts.step of the last checkpoint (-1: none) */
    char *owned[8]; /* paths made here (from --data, the guessed classes.txt)            */
    int nowned;
    /* this process's part of the run (cmd_train's phases) */
    tr_opts cur;          /* this command line's options alone                            */
    tt_list saved;        /* the words of args.txt (--resume): o's strings point into them */
    const char *pos[1];   /* a word that is no option: the training manifest             */
    int npos;             /*                                                              */
    int resumed, restart; /* a checkpoint resumed; a run stopped before its first one     */
    int auto_no_flip;     /* the class names turned the flip off (tr_choose_flip)         */
    int batch0, accum0;   /* a resumed run's --batch and --accum before this command     */
    long long end;        /* the last epoch this process trains (--stop-epoch)            */
    long long steps_done; /* SGD steps of this process (--stop-after)                     */
    long long since;      /* epochs since the best one, when last asked (--early-stop)    */
    double t_run;         /* when training started                                        */
} tr_run;

/* Keep a malloc'd string until tr_free. */
static char *tr_keep(tr_run *r, char *p) {
    if (r->nowned < (int)(sizeof r->owned / sizeof r->owned[0])) r->owned[r->nowned++] = p;
    return p;
}

static volatile sig_atomic_t tr_signal = 0; /* the signal that asked us to stop, or 0 */

static void tr_on_signal(int sig) { tr_signal = sig; }

/* Ctrl-C (and SIGTERM) set tr_signal; the loop finishes its step, saves and exits. A second
   Ctrl-C kills the process at once (SA_RESETHAND); the checkpoint on disk stays whole. */
static void tr_catch_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = tr_on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
#ifdef TSF_MPI
    sigaction(SIGUSR1, &sa, NULL); /* mpirun passes it to every rank (tools/tsf_mpi.h) */
#endif
}

/* The signal that asks the run to stop after this SGD step, or 0: with several ranks, that of
   any rank, the same on all (so that all stop at the same step). */
static int tr_stop_signal(void) {
    int sig = dp_max_int(tr_signal);
    if (sig) tr_signal = sig;
    return sig;
}

/* args.txt: one option a line, "--name value" or "--flag". Paths are made absolute so a
   resumed run finds its files from any directory. */
static int tr_save_args(const tr_run *r) {
    const tr_def *d;
    FILE *f = tr_create(r->args_path);
    if (!f) return 0;
    fprintf(f, "# the options of this run (tsf train --resume reads them; later options win)\n");
    if (r->o.fold || r->o.all_folds) { /* the folds are read again from the folder */
        char *abs = realpath(r->o.data, NULL);
        fprintf(f, "--data %s\n", abs ? abs : r->o.data);
        free(abs);
    }
    for (d = tr_train_defs; d->name; d++) {
        const char *field = (const char *)&r->o + d->off;
        if (!d->save) continue;
        if ((r->o.fold || r->o.all_folds) &&
            (d->off == TR_OFF(train) || d->off == TR_OFF(val) || d->off == TR_OFF(classes)))
            continue; /* made from --data */
        if (d->kind == 'b' && *(const int *)(const void *)field) fprintf(f, "%s\n", d->name);
        if (d->kind == 'i' && *(const int *)(const void *)field)
            fprintf(f, "%s %d\n", d->name, *(const int *)(const void *)field);
        if (d->kind == 'f') { /* the shortest text that reads back as the same float */
            float v = *(const float *)(const void *)field;
            char num[32];
            int prec;
            for (prec = 6; prec < 9; prec++) {
                snprintf(num, sizeof num, "%.*g", prec, (double)v);
                if ((float)strtod(num, NULL) == v) break;
            }
            snprintf(num, sizeof num, "%.*g", prec, (double)v);
            fprintf(f, "%s %s\n", d->name, num);
        }
        if ((d->kind == 's' || d->kind == 'p') && *(const char *const *)(const void *)field) {
            const char *v = *(const char *const *)(const void *)field;
            char *abs = d->kind == 'p' ? realpath(v, NULL) : NULL;
            fprintf(f, "%s %s\n", d->name, abs ? abs : v);
            free(abs);
        }
    }
    return tr_commit(f, r->args_path);
}

/* Read args.txt into words (argv style) in *words. */
static int tr_read_args(const char *path, tt_list *words) {
    FILE *f = fopen(path, "r");
    char line[8192];
    if (!f) {
        tt_error("train: cannot read %s: %s (--resume needs the folder of a run started by tsf "
                 "train)",
                 path, strerror(errno));
        return 0;
    }
    while (fgets(line, sizeof line, f)) {
        size_t n = strlen(line);
        char *sp;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
        if (n == 0 || line[0] == '#') continue;
        sp = strchr(line, ' ');
        if (sp) *sp = 0;
        tt_push(words, line);
        if (sp) tt_push(words, sp + 1);
    }
    fclose(f);
    return 1;
}

/* log.csv and curves.svg */
static void tr_num(FILE *f, const char *fmt, double v) {
    fputc(',', f);
    if (v == v) fprintf(f, fmt, v); /* NaN: an empty field */
}

/* The --best-metric of a row, signed so that higher is better; NaN without validation. */
static double tr_score(const tr_run *r, const tr_row *w) {
    const char *m = r->o.best_metric ? r->o.best_metric : "top1";
    if (strcmp(m, "loss") == 0) return -w->val_loss;
    return strcmp(m, "top5") == 0 ? w->val_top5 : w->val_top1;
}

/* The row of the best epoch: the first with the highest score (-1: no row has validation).
   The epochs after it go to *since (may be NULL). This is the best-model state of the top
   comment: it follows from the rows. */
static int tr_best(const tr_run *r, long long *since) {
    int i, best = -1;
    for (i = 0; i < r->nrows; i++) {
        double v = tr_score(r, &r->rows[i]);
        if (v == v && (best < 0 || v > tr_score(r, &r->rows[best]))) best = i;
    }
    if (since) *since = best < 0 ? 0 : r->rows[r->nrows - 1].epoch - r->rows[best].epoch;
    return best;
}

/* The metric's name and a value of it, for messages: "val top-1 75.0%", "val loss 0.6931". */
static const char *tr_metric_text(const tr_run *r, const tr_row *w, char *buf, size_t n) {
    const char *m = r->o.best_metric ? r->o.best_metric : "top1";
    if (strcmp(m, "loss") == 0)
        snprintf(buf, n, "val loss %.4f", w->val_loss);
    else
        snprintf(buf, n, "val top-%c %.1f%%", m[3], strcmp(m, "top5") ? w->val_top1 : w->val_top5);
    return buf;
}

static int tr_write_log(const tr_run *r) {
    FILE *f = tr_create(r->log_path);
    int i, best = tr_best(r, NULL);
    if (!f) return 0;
    fprintf(f, "epoch,step,lr,train_loss,train_acc,val_loss,val_top1,val_top5,best\n");
    for (i = 0; i < r->nrows; i++) {
        const tr_row *w = &r->rows[i];
        fprintf(f, "%lld,%lld", w->epoch, w->step);
        tr_num(f, "%.6g", w->lr);
        tr_num(f, "%.6f", w->train_loss);
        tr_num(f, "%.3f", w->train_acc);
        tr_num(f, "%.6f", w->val_loss);
        tr_num(f, "%.3f", w->val_top1);
        tr_num(f, "%.3f", w->val_top5);
        fputc(',', f);
        if (tr_score(r, w) == tr_score(r, w)) fputc(i == best ? '1' : '0', f);
        fputc('\n', f);
    }
    return tr_commit(f, r->log_path);
}

/* Rows of an earlier log.csv up to epoch `upto`: a run of an older tsf, which wrote no
   train_state.txt, continues its log (a ninth column, best or seconds, is dropped: the best
   epoch follows from the rows). */
static void tr_read_log(tr_run *r, long long upto) {
    FILE *f = fopen(r->log_path, "r");
    char line[1024];
    if (!f) return;
    while (fgets(line, sizeof line, f)) {
        double v[8];
        char *p = line, *end;
        int k;
        tr_row *w;
        if (!isdigit((unsigned char)line[0])) continue; /* the header */
        for (k = 0; k < 8; k++) {
            v[k] = strtod(p, &end);
            if (end == p) v[k] = (double)NAN;
            p = strchr(end, ',');
            if (!p) break;
            p++;
        }
        if (k < 7 || v[0] > (double)upto) continue;
        r->rows = (tr_row *)realloc(r->rows, (size_t)(r->nrows + 1) * sizeof *r->rows);
        if (!r->rows) exit(1);
        w = &r->rows[r->nrows++];
        w->epoch = (long long)v[0], w->step = (long long)v[1], w->lr = v[2];
        w->train_loss = v[3], w->train_acc = v[4];
        w->val_loss = v[5], w->val_top1 = v[6], w->val_top5 = v[7];
    }
    fclose(f);
}

/* One curve of curves.svg: a column of log.csv. */
typedef struct tr_series {
    const char *name, *color;
    size_t off;       /* offsetof(tr_row, the value) */
    const char *dash; /* NULL: a solid line */
} tr_series;

/* One panel of curves.svg, at (left, top), w x h: the series s[0..ns) against the epoch, y
   from 0 to about ymax, a legend in a row under the epoch axis (inside the panel it would
   hide the curves that run along its top, as top-5 does), and a mark at the row `best` (-1:
   none). */
static void tr_chart(FILE *f, const tr_run *r, double left, double top, double w, double h,
                     const char *title, double ymax, const tr_series *s, int ns, int best) {
    double *x = (double *)tt_malloc(((size_t)r->nrows + 1) * sizeof *x), step, v;
    double *y = (double *)tt_malloc(((size_t)r->nrows + 1) * sizeof *y);
    char num[32], attrs[96];
    double lx = left; /* where the next legend entry goes */
    int i, k;
    tc_panel p;
    p.left = left, p.top = top, p.width = w, p.height = h, p.logy = 0;
    p.x0 = 0, p.x1 = (double)(r->o.epochs > 0 ? r->o.epochs : 1);
    if (r->nrows > 0 && (double)r->rows[r->nrows - 1].epoch > p.x1)
        p.x1 = (double)r->rows[r->nrows - 1].epoch;
    if (!(ymax > 0)) ymax = 1;
    step = tc_tick_step(ymax);
    p.y0 = 0, p.y1 = ceil(ymax / step - 1e-9) * step;
    tc_text(f, left, top - 12, "font-size=\"14\" font-weight=\"bold\"", title);
    tc_frame(f, &p, "#888");
    for (v = 0; v <= p.y1 + 1e-9; v += step) {
        snprintf(num, sizeof num, "%g", v);
        tc_line(f, left, tc_y(&p, v), left + w, tc_y(&p, v), "stroke=\"#ddd\"");
        tc_text(f, left - 5, tc_y(&p, v) + 4, "font-size=\"11\" text-anchor=\"end\"", num);
    }
    step = tc_tick_step(p.x1);
    if (step < 1) step = 1;
    for (v = 0; v <= p.x1 + 1e-9; v += step) {
        snprintf(num, sizeof num, "%g", v);
        tc_text(f, tc_x(&p, v), top + h + 15, "font-size=\"11\" text-anchor=\"middle\"", num);
    }
    tc_text(f, left + w / 2, top + h + 30, "font-size=\"11\" text-anchor=\"middle\"", "epoch");
    if (best >= 0) { /* the epoch of model_best.safetensors */
        double bx = tc_x(&p, (double)r->rows[best].epoch);
        tc_labelled_line(f, bx, top, bx, top + h, "stroke=\"#2ca02c\" stroke-dasharray=\"2,3\"",
                         bx + 3, top + h - 4, "font-size=\"10\" fill=\"#2ca02c\"", "best");
    }
    for (i = 0; i < r->nrows; i++) x[i] = (double)r->rows[i].epoch;
    for (k = 0; k < ns; k++) {
        for (i = 0; i < r->nrows; i++)
            y[i] = *(const double *)(const void *)((const char *)&r->rows[i] + s[k].off);
        if (!tc_series(f, &p, x, y, r->nrows, s[k].color, s[k].dash, 2.5)) continue;
        snprintf(attrs, sizeof attrs, "stroke=\"%s\" stroke-width=\"2\"%s%s%s", s[k].color,
                 s[k].dash ? " stroke-dasharray=\"" : "", s[k].dash ? s[k].dash : "",
                 s[k].dash ? "\"" : "");
        tc_labelled_line(f, lx, top + h + 48, lx + 20, top + h + 48, attrs, lx + 25, top + h + 52,
                         "font-size=\"11\"", s[k].name);
        lx += 25 + 6.5 * (double)strlen(s[k].name) + 15; /* about 6.5 pixels a character */
    }
    free(x), free(y);
}

static int tr_write_curves(const tr_run *r) {
    static const tr_series loss[] = {
        {"train loss", "#1f77b4", offsetof(tr_row, train_loss), NULL},
        {"validation loss", "#d62728", offsetof(tr_row, val_loss), NULL},
    };
    static const tr_series acc[] = {
        {"train accuracy", "#1f77b4", offsetof(tr_row, train_acc), NULL},
        {"validation top-1", "#d62728", offsetof(tr_row, val_top1), NULL},
        {"validation top-5", "#d62728", offsetof(tr_row, val_top5), "6,3"},
    };
    FILE *f = tr_create(r->svg_path);
    double ymax = 0;
    int i, best = tr_best(r, NULL);
    if (!f) return 0;
    for (i = 0; i < r->nrows; i++) {
        if (r->rows[i].train_loss > ymax) ymax = r->rows[i].train_loss;
        if (r->rows[i].val_loss > ymax) ymax = r->rows[i].val_loss;
    }
    fprintf(f,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"900\" height=\"360\" "
            "font-family=\"sans-serif\">\n<rect width=\"900\" height=\"360\" fill=\"white\"/>\n");
    fprintf(f, "<text x=\"450\" y=\"20\" font-size=\"13\" text-anchor=\"middle\">");
    tc_xml(f, r->o.out);
    fprintf(f, ": %s, %d classes, %d training clips</text>\n",
            tsf_attention_name(r->m.cfg.attention), r->m.cfg.classes, r->train.count);
    tr_chart(f, r, 60, 60, 360, 230, "loss", ymax * 1.05, loss, 2, best);
    tr_chart(f, r, 510, 60, 360, 230, "accuracy (%)", 100, acc, 3, best);
    fprintf(f, "</svg>\n");
    return tr_commit(f, r->svg_path);
}

/* The learning rate of SGD step `step` (global), in epoch `epoch` at step s of it. */
static float tr_lr(const tr_run *r, long long step, long long epoch, int s) {
    const tr_opts *o = &r->o;
    long long total = (long long)o->epochs * r->spe;
    float lr;
    if (strcmp(o->schedule, "cosine") == 0) return tsf_lr_cosine(o->lr, step, o->warmup, total);
    { /* the paper's steps [0, 11, 14] of 15 epochs, scaled to --epochs, from the fractional
         epoch as the original sets it every iteration */
        float steps[3], factors[3] = {1.0f, 0.1f, 0.01f};
        steps[0] = 0.0f;
        steps[1] = (float)(11.0 * o->epochs / 15.0);
        steps[2] = (float)(14.0 * o->epochs / 15.0);
        lr = tsf_lr_steps(o->lr, (float)((double)epoch + (double)s / r->spe), steps, factors, 3);
    }
    if (step < o->warmup) lr *= (float)(step + 1) / (float)o->warmup;
    return lr;
}

/* ---- train_state.txt ------------------------------------------------------------------- */

/* The line of a state file that names the checkpoint of the state in memory. */
static void tr_state_key(const tr_run *r, char *buf, size_t n) {
    const tsf_train_state *t = &r->ts;
    snprintf(buf, n, "checkpoint %lld %lld %lld %u %u %u %u %u %u %u %u %lld", t->step, t->epoch,
             t->epoch_step, t->data_rng.s[0], t->data_rng.s[1], t->data_rng.s[2], t->data_rng.s[3],
             r->m.rng.s[0], r->m.rng.s[1], r->m.rng.s[2], r->m.rng.s[3], r->m.sgd_steps);
}

/* A number at full precision (%.17g reads back as the same double); "-" for NaN. */
static void tr_put_num(FILE *f, double v) {
    if (v == v)
        fprintf(f, " %.17g", v);
    else
        fputs(" -", f);
}

/* Write the state in memory to path: the checkpoint line, the running epoch's sums, the rows of
   log.csv, "end". */
static int tr_write_state(const tr_run *r, const char *path) {
    char key[256];
    FILE *f = tr_create(path);
    int i;
    if (!f) return 0;
    tr_state_key(r, key, sizeof key);
    fprintf(f,
            "# tsf train --resume: the rows of log.csv and the running epoch's sums (loss, "
            "correct, clips) of the checkpoint named on the next line\n%s\nsums",
            key);
    tr_put_num(f, r->loss_sum);
    fprintf(f, " %ld %ld\n", r->correct, r->seen);
    for (i = 0; i < r->nrows; i++) {
        const tr_row *w = &r->rows[i];
        fprintf(f, "row %lld %lld", w->epoch, w->step);
        tr_put_num(f, w->lr), tr_put_num(f, w->train_loss), tr_put_num(f, w->train_acc);
        tr_put_num(f, w->val_loss), tr_put_num(f, w->val_top1), tr_put_num(f, w->val_top5);
        fputc('\n', f);
    }
    fputs("end\n", f);
    return tr_commit_file(f, path, 1);
}

/* Fields of a state file line at *p: a number ("-": NaN), a count (0 or more). 0 if none. */
static int tr_get_num(char **p, double *v) {
    char *end;
    while (**p == ' ') (*p)++;
    if (**p == '-' && ((*p)[1] == ' ' || (*p)[1] == 0)) {
        *v = (double)NAN, (*p)++;
        return 1;
    }
    *v = strtod(*p, &end);
    if (end == *p) return 0;
    *p = end;
    return 1;
}

static int tr_get_count(char **p, long long *v) {
    char *end;
    while (**p == ' ') (*p)++;
    if (!isdigit((unsigned char)**p)) return 0;
    errno = 0;
    *v = strtoll(*p, &end, 10);
    if (errno == ERANGE) return 0;
    *p = end;
    return 1;
}

/* Read the state file at path into r (rows, sums) when its checkpoint line names the
   checkpoint just loaded. 1: read; 0: no file, another checkpoint's (a save that a kill cut
   short), or damaged (then *damaged = 1). */
static int tr_read_state(tr_run *r, const char *path, int *damaged) {
    FILE *f = fopen(path, "r");
    char line[1024], key[256];
    tr_row *rows = NULL;
    int n = 0, part = 0, ok = 0, bad = 0; /* part: 0 key, 1 sums, 2 rows */
    double loss = 0;
    long long correct = 0, seen = 0;
    if (!f) return 0;
    tr_state_key(r, key, sizeof key);
    while (!ok && !bad && fgets(line, sizeof line, f)) {
        size_t len = strlen(line);
        char *p = line;
        if (len == 0 || line[len - 1] != '\n') {
            bad = 1; /* cut short, or a line too long */
            break;
        }
        line[len - 1] = 0;
        if (line[0] == '#') continue;
        if (part == 0) {
            if (strncmp(line, "checkpoint ", 11) != 0) bad = 1;
            if (strcmp(line, key) != 0) break; /* another checkpoint's */
            part = 1;
        } else if (part == 1) {
            p += 4;
            bad = strncmp(line, "sums", 4) != 0 || !tr_get_num(&p, &loss) ||
                  !tr_get_count(&p, &correct) || !tr_get_count(&p, &seen) || *p;
            part = 2;
        } else if (strcmp(line, "end") == 0) {
            ok = 1;
        } else {
            long long e, st;
            double v[6];
            int k;
            p += 3;
            bad = strncmp(line, "row", 3) != 0 || !tr_get_count(&p, &e) || !tr_get_count(&p, &st);
            for (k = 0; k < 6 && !bad; k++) bad = !tr_get_num(&p, &v[k]);
            if (bad || *p) {
                bad = 1;
                break;
            }
            rows = (tr_row *)realloc(rows, (size_t)(n + 1) * sizeof *rows);
            if (!rows) exit(1);
            rows[n].epoch = e, rows[n].step = st, rows[n].lr = v[0];
            rows[n].train_loss = v[1], rows[n].train_acc = v[2];
            rows[n].val_loss = v[3], rows[n].val_top1 = v[4], rows[n].val_top5 = v[5];
            n++;
        }
    }
    fclose(f);
    if (!ok) {
        if (bad || part > 0) *damaged = 1; /* a file that ends early counts as damaged too */
        free(rows);
        return 0;
    }
    free(r->rows);
    r->rows = rows, r->nrows = n;
    r->loss_sum = loss, r->correct = (long)correct, r->seen = (long)seen;
    return 1;
}

/* train_state.next, whose checkpoint is now the one on disk, becomes train_state.txt. */
static int tr_rename_state(const tr_run *r) {
    if (!tr_regular_or_absent(r->state_path)) return 0;
    if (rename(r->next_path, r->state_path) != 0) {
        tt_error("cannot rename %s to %s: %s", r->next_path, r->state_path, strerror(errno));
        return 0;
    }
    tr_point("renamed to train_state.txt", r->next_path, 0);
    return 1;
}

/* ---- the lock ---------------------------------------------------------------------------- */

static void tr_unlock(tr_run *r);

/* Take DIR/lock (the top comment: one run a folder). Returns 1, or 0 after saying who holds the
   folder or what is wrong. */
static int tr_lock(tr_run *r) {
    int attempt;
    for (attempt = 0; attempt < 20; attempt++) {
        struct stat a, b;
        struct flock fl;
        char txt[32];
        long holder;
        ssize_t got;
        int fd, created, locks = 1, in_use = 0;
        if (!tr_regular_or_absent(r->lock_path)) return 0;
        fd = open(r->lock_path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, 0666);
        created = fd >= 0;
        if (fd < 0 && errno == EEXIST) fd = open(r->lock_path, O_RDWR | O_NOFOLLOW | O_NONBLOCK);
        if (fd < 0 && errno == ENOENT) continue; /* its holder removed it in between */
        if (fd < 0 || fstat(fd, &a) != 0 || !S_ISREG(a.st_mode)) {
            if (fd >= 0) close(fd);
            if (tr_regular_or_absent(r->lock_path))
                tt_error("cannot create %s: %s (check that the folder is writable)", r->lock_path,
                         strerror(errno));
            return 0;
        }
        got = pread(fd, txt, sizeof txt - 1, 0);
        txt[got > 0 ? got : 0] = 0;
        holder = strtol(txt, NULL, 10);
        memset(&fl, 0, sizeof fl);
        fl.l_type = F_WRLCK, fl.l_whence = SEEK_SET; /* the whole file */
        if (fcntl(fd, F_SETLK, &fl) != 0) {
            if (errno == EACCES || errno == EAGAIN) { /* a live process holds it */
                if (fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK) holder = (long)fl.l_pid;
                in_use = 1;
            } else { /* no record locks on this filesystem: the pid decides */
                locks = 0;
                in_use = !created && holder > 0 && holder != (long)getpid() &&
                         (kill((pid_t)holder, 0) == 0 || errno == EPERM);
            }
        }
        if (in_use) {
            close(fd);
            tt_error("train: %s is in use by another tsf train (pid %ld, %s): wait for it to end "
                     "or stop it (Ctrl-C saves its checkpoint), or choose another --out",
                     r->o.out, holder, r->lock_path);
            return 0;
        }
        if (locks &&
            (stat(r->lock_path, &b) != 0 || b.st_dev != a.st_dev || b.st_ino != a.st_ino)) {
            close(fd); /* its holder removed it as we locked it: lock the new one */
            continue;
        }
        if (!created && !r->o.quiet)
            printf("train: %s was left by pid %ld, which no longer holds it: taking it over\n",
                   r->lock_path, holder);
        snprintf(txt, sizeof txt, "%ld\n", (long)getpid());
        r->lock_fd = fd;
        if (ftruncate(fd, 0) != 0 || pwrite(fd, txt, strlen(txt), 0) != (ssize_t)strlen(txt)) {
            tt_error("cannot write %s: %s (disk full?)", r->lock_path, strerror(errno));
            tr_unlock(r); /* ours now: removed, not left behind without a pid */
            return 0;
        }
        tr_point("taken", r->lock_path, 0);
        return 1;
    }
    tt_error("train: cannot take %s: other processes keep taking and removing it", r->lock_path);
    return 0;
}

/* Remove DIR/lock, if it is still ours, and let it go. */
static void tr_unlock(tr_run *r) {
    struct stat a, b;
    if (r->lock_fd < 0) return;
    tr_point("about to be removed", r->lock_path, 0);
    if (fstat(r->lock_fd, &a) == 0 && lstat(r->lock_path, &b) == 0 && a.st_dev == b.st_dev &&
        a.st_ino == b.st_ino)
        unlink(r->lock_path);
    close(r->lock_fd); /* after the unlink: a process waiting on it finds it gone and retries */
    r->lock_fd = -1;
}

/* ---- saving ------------------------------------------------------------------------------- */

/* The library's save of the checkpoint (ckpt 1) or of the model file, with the checks the
   library does not make: path and path.tmp are regular or absent, a stale path.tmp is removed
   first, so that the library neither writes through a link or FIFO at path.tmp nor renames
   over a link at path. Returns 1, or 0 after an error message. */
static int tr_lib_save(tr_run *r, const char *path, int ckpt) {
    char *tmp = tr_fmt("%s.tmp", path), why[700];
    int ok = tr_regular_or_absent(path) && tr_remove_stale(tmp);
    tsf_error err;
    tsf_status st;
    free(tmp);
    if (!ok) return 0;
    tr_point("partly written (.tmp)", path, 1);
    st = ckpt ? tsf_checkpoint_save(&r->m, &r->ts, path, &err) : tsf_model_save(&r->m, path, &err);
    if (st != TSF_OK) {
        tt_progress_end();
        if (ckpt)
            tt_error("cannot save the run: %s (disk full? the previous files are untouched)",
                     tt_why(st, &err, why, sizeof why));
        else
            tt_error("cannot write %s: %s (disk full? the checkpoint is saved: tsf train --out %s "
                     "--resume writes it again)",
                     path, tt_why(st, &err, why, sizeof why), r->o.out);
        return 0;
    }
    tr_point("saved", path, 0);
    return 1;
}

/* Does the checkpoint in memory end the best epoch? Then the model is model_best's. */
static int tr_at_best(const tr_run *r) {
    int best = tr_best(r, NULL);
    return best >= 0 && best == r->nrows - 1 && r->rows[best].epoch == r->ts.epoch &&
           r->ts.epoch_step == 0;
}

/* The files made from the checkpoint and its state: model.safetensors, model_best.safetensors
   (at the end of the best epoch: the top comment), log.csv, curves.svg. */
static int tr_write_outputs(tr_run *r) {
    return tr_lib_save(r, r->model_path, 0) &&
           (!tr_at_best(r) || tr_lib_save(r, r->best_path, 0)) && tr_write_log(r) &&
           tr_write_curves(r);
}

/* Save the run, in the order of the top comment: train_state.next, the checkpoint (the
   commit), train_state.next renamed to train_state.txt, then the files made from them. */
static int tr_save_files(tr_run *r) {
    if (!tr_write_state(r, r->next_path)) return 0;
    if (!tr_lib_save(r, r->ckpt, 1)) {
        remove(r->next_path); /* the previous checkpoint and train_state.txt stay */
        return 0;
    }
    r->saved_epoch = r->ts.epoch, r->saved_step = r->ts.step;
    return tr_rename_state(r) && tr_write_outputs(r);
}

/* Save the run: rank 0 writes (tsf-mpi), and every rank learns whether it could. */
static int tr_save(tr_run *r) {
    int ok = dp_agree(dp_rank == 0 ? tr_save_files(r) : 1, NULL, 0);
    if (ok) r->saved_epoch = r->ts.epoch, r->saved_step = r->ts.step;
    return ok;
}

/* --resume, with the checkpoint loaded: its state file (train_state.txt, or train_state.next
   when a kill came between the checkpoint's rename and the state file's), then the files made
   from them written again. A run of an older tsf has no state file: the rows come from
   log.csv. Returns 1, or 0 after an error message. */
static int tr_restore(tr_run *r) {
    int damaged = 0;
    if (tr_read_state(r, r->state_path, &damaged)) {
        if (!tr_remove_stale(r->next_path)) return 0; /* a save cut short before its commit */
    } else if (tr_read_state(r, r->next_path, &damaged)) {
        if (!tr_rename_state(r)) return 0;
    } else {
        tr_read_log(r, r->ts.epoch);
        r->loss_sum = 0, r->correct = r->seen = 0;
        if (damaged || r->ts.epoch_step > 0)
            tt_warn("%s %s: the log's rows come from %s%s", r->state_path,
                    damaged ? "is damaged" : "is missing (a run of an older tsf?)", r->log_path,
                    r->ts.epoch_step > 0 ? ", and the train loss and accuracy of the resumed "
                                           "epoch cover only its steps from here on"
                                         : "");
        if (!tr_write_state(r, r->next_path) || !tr_rename_state(r)) return 0;
    }
    if (tr_best(r, NULL) >= 0 && !tr_at_best(r) && !tt_is_file(r->best_path))
        tt_warn("%s is missing and cannot be made again (its epoch's model is gone): the next "
                "improvement on validation writes it",
                r->best_path);
    return tr_write_outputs(r);
}

/* ---- the training settings --------------------------------------------------------------- */

/* The training settings live in the options, r->o (the recipe's defaults, args.txt on
   --resume, the command line; checked once). The library takes the regularisation as fields
   of the model (which its checkpoint saves) and SGD's as a tsf_sgd: tr_apply_settings gives
   them both, and tr_loss runs every pass, lifting the label smoothing for validation's. */
static void tr_apply_settings(tr_run *r) {
    const tr_opts *o = &r->o;
    r->m.drop_path = o->drop_path, r->m.dropout = o->dropout;
    r->m.label_smoothing = o->label_smoothing;
    r->sgd = tsf_sgd_default();
    r->sgd.momentum = o->momentum, r->sgd.nesterov = !o->no_nesterov;
    r->sgd.weight_decay = o->weight_decay;
    r->sgd.no_decay_embeddings_norms_biases = o->no_decay_emb;
    r->sgd.clip_norm = o->clip_norm;
}

/* The forward pass and mean loss of the first B clips of r->x: a training pass (stochastic
   depth, dropout and label smoothing as the run sets them), or (training 0) a validation
   pass, whose loss is the plain cross-entropy. Outside a validation pass the model holds the
   run's label smoothing. */
static tsf_status tr_loss(tr_run *r, int B, int training, float *loss) {
    const tsf_config *c = &r->m.cfg;
    tsf_rng shared = r->m.rng;
    tsf_status st;
    if (training && dp_world > 1) { /* tsf-mpi: each rank its own stream for this pass,
                                       made from the shared generator, which moves on the
                                       same on every rank (and is what checkpoints keep) */
        unsigned long long k = (unsigned long long)tsf_rng_u32(&shared) << 32;
        k |= tsf_rng_u32(&shared);
        tsf_rng_seed(&r->m.rng, tsf_sample_seed(k, -2, dp_rank));
    }
    r->m.label_smoothing = training ? r->o.label_smoothing : 0.0f;
    st = tsf_model_loss(&r->m, r->x, r->labels, B, c->frames, c->image_size, c->image_size,
                        training, loss);
    r->m.label_smoothing = r->o.label_smoothing;
    if (training && dp_world > 1) r->m.rng = shared;
    return st;
}

/* tsf-mpi: this rank holds n of the B clips of a micro-batch (n = 0: one stand-in clip that
   adds nothing). d loss / d logits becomes that of the mean over all B, the sum of its n
   losses / B, so that the ranks' gradients add up to the micro-batch's. */
static void tr_share_of_mean(tr_run *r, int n, int B) {
    int K = r->m.cfg.classes;
    memset(r->m.gacts.dlogits, 0, (size_t)(n > 0 ? n : 1) * K * sizeof(float));
    if (n > 0)
        tsf_crossentropy_backward(r->m.gacts.dlogits, r->m.acts.probs, r->labels, n, K,
                                  r->o.label_smoothing, 1.0f / (float)B);
}

/* Validation on the fixed view: mean cross-entropy (no smoothing), top-1, top-5 (percent).
   Returns 1, 0 after an error, -1 when a signal interrupted it. */
static int tr_validate(tr_run *r, double *loss, double *top1, double *top5) {
    int n = r->val.count, B = r->lb, i, b, K = r->m.cfg.classes, ok = 1, stopped = 0;
    double sum = 0, all[4];
    long c1 = 0, c5 = 0;
    long long lo, cnt; /* this rank's clips (tsf-mpi; all of them in one process) */
    float l;
    dp_shard(n, &lo, &cnt);
    for (i = (int)lo; i < lo + cnt; i += B) {
        int nb = lo + cnt - i < B ? (int)(lo + cnt - i) : B;
        tsf_status st;
        if (tr_signal) {
            stopped = 1;
            break;
        }
        for (b = 0; b < nb; b++)
            r->items[b].clip = i + b, r->items[b].view = 0, r->items[b].seed = 0;
        if (!tr_load_batch(r->x, r->labels, &r->val, r->val_path, r->items, nb, &r->vo,
                           r->m.cfg.channels)) {
            ok = 0;
            break;
        }
        st = tr_loss(r, nb, 0, &l);
        if (st == TSF_ERR_NONFINITE) { /* no score is computed from NaN: the run stops */
            tt_error("validation: NaN or infinite loss on clips %d .. %d of %s: the model has "
                     "diverged (lower --lr, or --clip-norm); the last checkpoint is kept",
                     i + 1, i + nb, r->val_path);
            ok = 0;
            break;
        }
        if (st != TSF_OK) {
            tt_error("validation failed: %s", tsf_status_string(st));
            ok = 0;
            break;
        }
        for (b = 0; b < nb; b++) {
            int rank = tr_rank(r->m.acts.logits + (size_t)b * K, K, r->labels[b]);
            sum += (double)r->m.acts.losses[b];
            c1 += rank == 0, c5 += rank < 5;
        }
        if (r->live)
            fprintf(stderr, "\r\033[Kepoch %lld: validating %lld/%lld", r->ts.epoch + 1,
                    i - lo + nb, cnt);
        tr_point("validation batch", NULL, 0);
    }
    all[0] = sum, all[1] = (double)c1, all[2] = (double)c5, all[3] = stopped;
    if (!dp_agree(ok, all, 4)) return 0; /* the ranks' sums, in rank order */
    if (all[3] > 0) { /* a signal stopped a rank: every rank takes it (tr_print_stopped) */
        tr_stop_signal();
        return -1;
    }
    if (r->live) fputs("\r\033[K", stderr);
    *loss = all[0] / n, *top1 = 100.0 * all[1] / n, *top5 = 100.0 * all[2] / n;
    return 1;
}

/* --variant: the short names or the full ones (config.json's). -1 if unknown. */
static int tr_variant(const char *v) {
    return strcmp(v, "divided") == 0        ? TSF_ATTN_DIVIDED
           : strcmp(v, "joint") == 0        ? TSF_ATTN_JOINT
           : strcmp(v, "space") == 0        ? TSF_ATTN_SPACE
           : strcmp(v, "local_global") == 0 ? TSF_ATTN_LOCAL_GLOBAL
                                            : tsf_attention_parse(v);
}
#define TR_VARIANTS "divided, joint, space, local_global or axial"

/* The model flags given for a resumed run must agree with the checkpoint. */
static int tr_check_resumed_model(const tr_run *r) {
    const tr_opts *o = &r->o;
    const tsf_config *c = &r->m.cfg;
    struct {
        const char *flag;
        int given, has;
    } f[8];
    int i, n = 0;
#define TR_SAME(name, g, h) f[n].flag = name, f[n].given = g, f[n].has = h, n++;
    TR_SAME("--frames", o->frames, c->frames)
    TR_SAME("--size", o->size, c->image_size)
    TR_SAME("--patch", o->patch, c->patch_size)
    TR_SAME("--dim", o->dim, c->dim)
    TR_SAME("--depth", o->depth, c->depth)
    TR_SAME("--heads", o->heads, c->heads)
    TR_SAME("--channels", o->channels, c->channels)
#undef TR_SAME
    for (i = 0; i < n; i++)
        if (f[i].given && f[i].given != f[i].has) {
            tt_error("train --resume: %s %d, but the checkpoint's model has %d: a resumed run "
                     "keeps its model; drop %s, or start a new run with another --out",
                     f[i].flag, f[i].given, f[i].has, f[i].flag);
            return 0;
        }
    if (o->variant && tr_variant(o->variant) != c->attention) {
        tt_error("train --resume: --variant %s, but the checkpoint's model is %s: drop --variant, "
                 "or start a new run with another --out",
                 o->variant, tsf_attention_name(c->attention));
        return 0;
    }
    if (o->pos_embed && tsf_pos_embed_parse(o->pos_embed) != c->pos_embed) {
        tt_error("train --resume: --pos-embed %s, but the checkpoint's model has %s: drop "
                 "--pos-embed, or start a new run with another --out",
                 o->pos_embed, tsf_pos_embed_name(c->pos_embed));
        return 0;
    }
    return 1;
}

/* What --init-from's source says of the model's config (heads: --heads when it does not).
   Returns 1, or 0 after printing what is wrong. */
static int tr_config_from_source(tsf_config *cfg, const tr_opts *o, const ini_source *src) {
    const tsf_config *s = &src->cfg;
    cfg->image_size = s->image_size, cfg->patch_size = s->patch_size;
    cfg->channels = s->channels, cfg->frames = s->frames, cfg->dim = s->dim;
    cfg->depth = s->depth, cfg->heads = s->heads, cfg->mlp_ratio = s->mlp_ratio;
    cfg->ln_eps = s->ln_eps, cfg->no_qkv_bias = s->no_qkv_bias > 0;
    cfg->attention = s->attention >= 0 ? s->attention : TSF_ATTN_DIVIDED;
    cfg->pos_embed = s->pos_embed;
    cfg->bgr = s->bgr > 0;
    memcpy(cfg->mean, s->mean, sizeof cfg->mean), memcpy(cfg->std, s->std, sizeof cfg->std);
    if (!cfg->heads && !o->heads) {
        tt_error("train: --init-from %s does not say how many attention heads it has: give "
                 "--heads N",
                 src->file);
        return 0;
    }
    if (src->heads_guess && !o->heads && !o->quiet)
        printf("init-from: no config in the file; assuming %d heads of 64 (give --heads if "
               "not)\n",
               cfg->heads);
    return 1;
}

/* The config made whole by the library's defaults, if the flags make a valid model. Returns 1,
   or 0 after printing what is wrong. */
static int tr_config_check(tsf_config *cfg) {
    tsf_config c = *cfg;
    tsf_config_resolve(&c); /* the defaults, to check the combination */
    if (c.dim % c.heads != 0) {
        tt_error("train: --dim %d is not a multiple of --heads %d: choose a width that the "
                 "heads divide",
                 c.dim, c.heads);
        return 0;
    }
    if (c.image_size < c.patch_size) {
        tt_error("train: --size %d is smaller than --patch %d: the frame must hold a patch",
                 c.image_size, c.patch_size);
        return 0;
    }
    if (c.bgr && c.channels != 3) {
        tt_error("train: --bgr needs 3 channels");
        return 0;
    }
    if (tsf_config_resolve(cfg) != TSF_OK) {
        tt_error("train: the model flags make no valid model (see tsf train --help)");
        return 0;
    }
    if (cfg->image_size % cfg->patch_size != 0)
        tt_warn("--size %d is not a multiple of --patch %d: the last %d pixel rows and columns "
                "are ignored",
                cfg->image_size, cfg->patch_size, cfg->image_size % cfg->patch_size);
    return 1;
}

/* The model's config for a new run: the library's defaults, then what --init-from's source
   says, then the flags. Returns 1, or 0 after printing what is wrong. */
static int tr_config(tsf_config *cfg, const tr_opts *o, int classes, const ini_source *src) {
    int v = -1;
    memset(cfg, 0, sizeof *cfg);
    if (src && !tr_config_from_source(cfg, o, src)) return 0;
    if (o->variant) {
        if ((v = tr_variant(o->variant)) < 0) {
            tt_error("train: --variant %s: choose " TR_VARIANTS, o->variant);
            return 0;
        }
        cfg->attention = v;
    }
    if (o->pos_embed) cfg->pos_embed = tsf_pos_embed_parse(o->pos_embed);
    if (o->frames) cfg->frames = o->frames;
    if (o->size) cfg->image_size = o->size;
    if (o->patch) cfg->patch_size = o->patch;
    if (o->dim) cfg->dim = o->dim;
    if (o->depth) cfg->depth = o->depth;
    if (o->heads) cfg->heads = o->heads;
    if (o->channels) cfg->channels = o->channels;
    if (o->bgr) cfg->bgr = 1;
    cfg->classes = classes;
    return tr_config_check(cfg);
}

static void tr_free(tr_run *r) {
    tsf_model_free(&r->m);
    tsf_manifest_free(&r->train);
    tsf_manifest_free(&r->val);
    tsf_classes_free(&r->classes);
    free(r->x), free(r->labels), free(r->items), free(r->perm), free(r->rows);
    free(r->ckpt), free(r->model_path), free(r->best_path), free(r->log_path), free(r->svg_path);
    free(r->args_path);
    free(r->state_path), free(r->next_path), free(r->lock_path);
    while (r->nowned > 0) free(r->owned[--r->nowned]);
    tt_list_free(&r->saved);
}

/* The live progress line, at most 5 times a second (always with force): epoch, step, running
   loss and accuracy of the epoch, clips a second and the time left (from this process's pace;
   validation not counted). */
static void tr_show(const tr_run *r, int force, int s, double loss, double acc, long clips,
                    double t0, int steps_done, long long steps_left) {
    static double last = 0;
    double now = tt_now(), dt = now - t0;
    char eta[32];
    if (!r->live || (!force && now - last < 0.2)) return;
    last = now;
    fprintf(stderr,
            "\r\033[Kepoch %lld/%d  step %d/%d  loss %.4f  acc %.1f%%  %.1f clips/s  ETA %s",
            r->ts.epoch + 1, r->o.epochs, s, r->spe, loss, acc, (double)clips / (dt + 1e-9),
            steps_done > 0 ? tr_hms(dt / steps_done * (double)steps_left, eta, sizeof eta) : "?");
    fflush(stderr);
}

/* The run's file names: each regular or absent (the top comment), stale NAME.tmp files removed.
   With the lock held, so no other tsf train is writing them. */
static int tr_check_files(const tr_run *r) {
    const char *names[8];
    int i;
    names[0] = r->ckpt, names[1] = r->state_path, names[2] = r->next_path;
    names[3] = r->model_path, names[4] = r->log_path, names[5] = r->svg_path;
    names[6] = r->args_path, names[7] = r->best_path;
    for (i = 0; i < 8; i++) {
        char *tmp = tr_fmt("%s.tmp", names[i]);
        int ok = tr_regular_or_absent(names[i]) && tr_remove_stale(tmp);
        free(tmp);
        if (!ok) return 0;
    }
    return 1;
}

/* A fresh run (also --overwrite, or a run started again): the files of an earlier run go, the
   checkpoint first, so that a kill in between never leaves it with another run's files. */
static int tr_remove_old(const tr_run *r) {
    const char *names[7];
    int i;
    names[0] = r->state_path, names[1] = r->next_path, names[2] = r->model_path;
    names[3] = r->log_path, names[4] = r->svg_path, names[5] = r->args_path;
    names[6] = r->best_path;
    if (!tr_remove_stale(r->ckpt)) return 0;
    tr_point("removed (a fresh run)", r->ckpt, 0);
    for (i = 0; i < 7; i++)
        if (!tr_remove_stale(names[i])) return 0;
    tr_point("removed: the other files of an earlier run", NULL, 0);
    return 1;
}

/* The folds of a dataset folder: fold_1.csv .. fold_K.csv, numbered from 1 without a gap.
   Returns K (0: no fold_1.csv). */
static int tr_count_folds(const char *dir) {
    int k;
    for (k = 0; k < 100; k++) {
        char name[32], *p;
        int there;
        snprintf(name, sizeof name, "fold_%d.csv", k + 1);
        p = tt_join(dir, name);
        there = tt_is_file(p);
        free(p);
        if (!there) break;
    }
    return k;
}

/* A clip of a fold, for the check that no clip is in two splits. */
typedef struct tr_fold_clip {
    const char *path;
    int file, line;
} tr_fold_clip;

static int tr_cmp_fold_clip(const void *a, const void *b) {
    const tr_fold_clip *x = (const tr_fold_clip *)a, *y = (const tr_fold_clip *)b;
    int c = strcmp(x->path, y->path);
    return c ? c : x->file != y->file ? x->file - y->file : x->line - y->line;
}

/* No clip in two of the F splits m[0..F) (files names[]): 1, or 0 after naming one. */
static int tr_no_clip_twice(const tsf_manifest *m, char *const *names, int F, const char *dir) {
    tr_fold_clip *all;
    int i, j, n = 0, ok = 1;
    for (j = 0; j < F; j++) n += m[j].count;
    all = (tr_fold_clip *)tt_malloc((size_t)n * sizeof *all);
    for (j = 0, n = 0; j < F; j++)
        for (i = 0; i < m[j].count; i++)
            all[n].path = m[j].paths[i], all[n].file = j, all[n++].line = m[j].lines[i];
    qsort(all, (size_t)n, sizeof *all, tr_cmp_fold_clip);
    for (i = 1; i < n && ok; i++)
        if (strcmp(all[i].path, all[i - 1].path) == 0) {
            tt_error("%s is in %s (line %d) and in %s (line %d): a clip must be in one split "
                     "only, or it is validated or tested on what trained the model; remake the "
                     "splits with mkdataset ROOT %s --folds K",
                     all[i].path, names[all[i - 1].file], all[i - 1].line, names[all[i].file],
                     all[i].line, dir);
            ok = 0;
        }
    free(all);
    return ok;
}

/* The clips of folds m[0..K) but fold k (-1: none) as r->train, whose lines are those of the
   fold files. Returns 1, or 0 after an error. */
static int tr_join_folds(tr_run *r, const tsf_manifest *m, int K, int k) {
    size_t len = 0, cap = 1;
    char *text;
    tsf_error err;
    int i, j, n, ok;
    for (j = 0; j < K; j++)
        for (i = 0; j != k && i < m[j].count; i++) cap += strlen(m[j].paths[i]) + 16;
    text = (char *)tt_malloc(cap);
    for (j = 0; j < K; j++)
        for (i = 0; j != k && i < m[j].count; i++)
            len += (size_t)sprintf(text + len, "%s,%d\n", m[j].paths[i], m[j].labels[i]);
    ok = tsf_manifest_parse(&r->train, text, len, NULL, &r->classes, NULL, &err) == TSF_OK;
    free(text);
    if (!ok) {
        tt_error("train: the training folds: %s", err.msg); /* out of memory, in practice */
        return 0;
    }
    for (j = 0, n = 0; j < K; j++)
        for (i = 0; j != k && i < m[j].count; i++) r->train.lines[n++] = m[j].lines[i];
    return 1;
}

/* The name of the training folds for messages, from fold 1's path: DIR/fold_{1,3,4}.csv
   (all of K but fold k; -1: none). Malloc'd. */
static char *tr_folds_name(const char *first, int K, int k) {
    char *desc = (char *)tt_malloc(strlen(first) + 8 * (size_t)K);
    size_t len = (size_t)sprintf(desc, "%.*s", (int)(strlen(first) - 5), first); /* DIR/fold_ */
    int i, j;
    if (K - (k >= 0) > 1) desc[len++] = '{';
    for (j = 0, i = 0; j < K; j++)
        if (j != k) len += (size_t)sprintf(desc + len, "%s%d", i++ ? "," : "", j + 1);
    sprintf(desc + len, "%s.csv", K - (k >= 0) > 1 ? "}" : "");
    return desc;
}

/* --data DIR --fold k or --all-folds (the top comment): the class names; the training clips,
   those of every fold but k in fold order, as one manifest whose lines are those of the fold
   files; fold k for validation. Returns 1, or 0 after an error message. */
static int tr_load_folds(tr_run *r) {
    tr_opts *o = &r->o;
    int K = tr_count_folds(o->data), F, j, ok = 0, k = o->fold - 1, have_test;
    tsf_manifest *m;
    char **names, *test;
    if (K < 2 || o->fold > K) {
        if (K < 2)
            tt_error("train: %s: no fold_1.csv and fold_2.csv: make folds with mkdataset ROOT "
                     "%s --folds K",
                     o->data, o->data);
        else
            tt_error("train: --fold %d, but %s holds %d folds (fold_1.csv .. fold_%d.csv)", o->fold,
                     o->data, K, K);
        return 0;
    }
    test = tt_join(o->data, "test.csv");
    have_test = tt_is_file(test);
    F = K + have_test; /* the test split takes part in the check */
    m = (tsf_manifest *)calloc((size_t)F, sizeof *m);
    names = (char **)calloc((size_t)F, sizeof *names);
    if (!m || !names) {
        tt_error("out of memory");
        exit(1);
    }
    for (j = 0; j < K; j++) {
        char name[32];
        snprintf(name, sizeof name, "fold_%d.csv", j + 1);
        names[j] = tt_join(o->data, name);
    }
    if (have_test) names[K] = test, test = NULL;
    o->classes = tr_keep(r, tt_join(o->data, "classes.txt"));
    r->classes_path = o->classes;
    if (!tr_load_classes(&r->classes, o->classes)) goto done;
    for (j = 0; j < F; j++)
        if (!tr_load_manifest(&m[j], names[j], &r->classes, j < K ? "fold" : "test")) goto done;
    if (!tr_no_clip_twice(m, names, F, o->data) || !tr_join_folds(r, m, K, k)) goto done;
    o->train = r->train_path = tr_keep(r, tr_folds_name(names[0], K, k));
    if (k >= 0) { /* validation: fold k */
        r->val = m[k];
        memset(&m[k], 0, sizeof m[k]);
        o->val = r->val_path = tr_keep(r, names[k]);
        names[k] = NULL;
    }
    ok = 1;
done:
    for (j = 0; j < F; j++) tsf_manifest_free(&m[j]), free(names[j]);
    free(m), free(names), free(test);
    return ok;
}

/* ---- tsf train, phase by phase ---------------------------------------------------------------
   cmd_train runs the phases below in turn. Each returns TR_GO to go on, or the exit status
   (after its message); cmd_train then lets the folder go and frees the run, once. */
#define TR_GO -1

/* The paper's recipe (docs/model.md section 11) and the other defaults of tsf train. */
static void tr_default_opts(tr_opts *o) {
    o->epochs = 15, o->lr = 0.005f, o->schedule = "steps", o->batch = 8, o->accum = 1;
    o->momentum = 0.9f, o->weight_decay = 1e-4f, o->drop_path = 0.1f, o->best_metric = "top1";
}

/* The run's file names in folder out. */
static void tr_paths(tr_run *r, const char *out) {
    r->ckpt = tt_join(out, "checkpoint.safetensors");
    r->model_path = tt_join(out, "model.safetensors");
    r->best_path = tt_join(out, "model_best.safetensors");
    r->log_path = tt_join(out, "log.csv");
    r->svg_path = tt_join(out, "curves.svg");
    r->args_path = tt_join(out, "args.txt");
    r->state_path = tt_join(out, "train_state.txt");
    r->next_path = tt_join(out, "train_state.next");
    r->lock_path = tt_join(out, "lock");
}

/* Phase 1: this command line alone (--help, --out, --resume and what it gives); the run's
   file names. */
static int tr_start(tr_run *r, int argc, char **argv) {
    tr_hook_init();
    if (!tr_parse(tr_train_defs, &r->cur, argc - 1, argv + 1, "train", r->pos, 1, &r->npos))
        return 2;
    if (r->cur.help) {
        train_usage(stdout);
        return 0;
    }
    if (argc == 1) {
        train_usage(stderr);
        return 2;
    }
    if (!r->cur.out) {
        tt_error("train: give the run's folder with --out DIR (it receives the checkpoint, the "
                 "model, log.csv and curves.svg)");
        return 2;
    }
    tr_default_opts(&r->o);
    r->o.out = r->cur.out, r->o.quiet = r->cur.quiet; /* for tr_lock's messages */
    tr_paths(r, r->cur.out);
    return TR_GO;
}

/* --resume: the options of args.txt, under those of phase 1's recipe. What decides which
   epoch is best, and on which clips, stays (the top comment). */
static int tr_read_resumed(tr_run *r) {
    tr_opts *o = &r->o;
    const tr_opts *cur = &r->cur;
    if (!tt_is_file(r->ckpt) && !tt_is_file(r->args_path)) {
        tt_error("train --resume: no %s to resume (start the run without --resume)", r->ckpt);
        return 1;
    }
    if (!tr_read_args(r->args_path, &r->saved)) return 1;
    if (!tr_parse(tr_train_defs, o, r->saved.n, r->saved.v, "train", r->pos, 0, &r->npos)) {
        tt_error("train --resume: %s is damaged: fix or delete the line", r->args_path);
        return 1;
    }
    r->batch0 = o->batch, r->accum0 = o->accum;
    r->restart = !tt_is_file(r->ckpt); /* stopped before its first checkpoint */
    if (!r->restart && cur->best_metric && strcmp(cur->best_metric, o->best_metric) != 0) {
        tt_error("train --resume: --best-metric %s, but the run chooses its best model by "
                 "%s: drop --best-metric, or start a new run with another --out",
                 cur->best_metric, o->best_metric);
        return 2;
    }
    if (!r->restart && cur->epochs && cur->epochs != o->epochs) {
        tt_error("train --resume: --epochs %d, but the run is laid out over %d epochs: its "
                 "learning-rate schedule (%s) spans them, and a resumed run keeps it, so that it "
                 "goes on as if it had never stopped (another --epochs would move the curve "
                 "under it). Drop --epochs; to stop sooner, give --stop-epoch E; to train "
                 "longer, start a new run from this one's model: tsf train --init-from %s "
                 "--epochs N --out NEW ...",
                 cur->epochs, o->epochs, o->schedule, r->model_path);
        return 2;
    }
    if (!r->restart && ((cur->fold && cur->fold != o->fold) || (cur->all_folds && !o->all_folds))) {
        tt_error("train --resume: the run %s: drop --fold and --all-folds, or start a new "
                 "run with another --out",
                 o->all_folds ? "trains on all folds"
                 : o->fold    ? "validates on another fold"
                              : "does not train on folds");
        return 2;
    }
    return TR_GO;
}

/* The options as a whole: those that exclude each other, the names of choices. */
static int tr_check_options(tr_run *r) {
    const tr_opts *o = &r->o;
    if (!o->resume && tt_is_file(r->ckpt) && !o->overwrite) {
        tt_error("train: %s already holds a run (%s): continue it with --resume, start afresh "
                 "with --overwrite, or choose another --out",
                 o->out, r->ckpt);
        return 2;
    }
    if (o->variant && tr_variant(o->variant) < 0) {
        tt_error("train: --variant %s: choose " TR_VARIANTS, o->variant);
        return 2;
    }
    if (o->pos_embed && tsf_pos_embed_parse(o->pos_embed) < 0) {
        tt_error("train: --pos-embed %s: choose space_time, space or none", o->pos_embed);
        return 2;
    }
    if (strcmp(o->best_metric, "top1") != 0 && strcmp(o->best_metric, "top5") != 0 &&
        strcmp(o->best_metric, "loss") != 0) {
        tt_error("train: --best-metric %s: choose top1, top5 or loss", o->best_metric);
        return 2;
    }
    if ((o->fold || o->all_folds) &&
        ((o->fold && o->all_folds) || !o->data || o->train || o->val || o->classes || r->npos)) {
        tt_error("train: %s takes the class names and the clips from --data DIR (DIR/classes.txt, "
                 "DIR/fold_*.csv, as mkdataset --folds writes them): give --data DIR, without "
                 "--train, --val, --classes%s",
                 o->fold ? "--fold" : "--all-folds", o->fold ? " or --all-folds" : "");
        return 2;
    }
    if (o->flip && o->no_flip) {
        tt_error("train: --flip and --no-flip: choose one%s",
                 r->cur.flip != r->cur.no_flip ? " (the other comes from the run's args.txt)" : "");
        return 2;
    }
    if (o->fused_sgd && (o->accum > 1 || o->clip_norm > 0.0f)) {
        tt_error("train: --fused-sgd applies each block's update before the whole gradient "
                 "exists, so it cannot accumulate (--accum %d) or clip (--clip-norm %g): drop "
                 "one or the other",
                 o->accum, (double)o->clip_norm);
        return 2;
    }
    tt_quiet = o->quiet || dp_rank > 0;
    r->live = !o->quiet && (o->progress || isatty(2)) && dp_rank == 0;
    r->lb = (o->batch + dp_world - 1) / dp_world; /* the largest share of a batch */
    tr_threads(o->threads);
    if (strcmp(o->schedule, "steps") != 0 && strcmp(o->schedule, "cosine") != 0) {
        tt_error("train: --schedule %s: choose steps or cosine", o->schedule);
        return 2;
    }
    if (!r->o.init) r->o.init = o->init_from ? "original" : "scratch"; /* kept in args.txt */
    if (strcmp(o->init, "scratch") != 0 && strcmp(o->init, "original") != 0) {
        tt_error("train: --init %s: choose scratch (small models from scratch) or original (the "
                 "original code's, for fine-tuning)",
                 o->init);
        return 2;
    }
    r->end = o->stop_epoch && o->stop_epoch < o->epochs ? o->stop_epoch : o->epochs;
    return TR_GO;
}

/* Phase 2: the options: the recipe, then (--resume) the run's saved ones, then this command
   line's; checked. A folder that is there already is ours (its lock) before anything in it is
   read; a new one is taken once made (phase 6). */
static int tr_options(tr_run *r, int argc, char **argv) {
    tr_opts *o = &r->o;
    int rc;
    if (dp_rank == 0 && tt_is_dir(r->cur.out) && (!tr_lock(r) || !tr_check_files(r))) return 1;
    if (r->cur.resume && (rc = tr_read_resumed(r)) != TR_GO) return rc;
    r->npos = 0;
    tr_parse(tr_train_defs, o, argc - 1, argv + 1, "train", r->pos, 1, &r->npos); /* phase 1 */
    if (r->cur.data) { /* a --data given now replaces the saved files it names */
        if (!r->cur.train) o->train = NULL;
        if (!r->cur.val) o->val = NULL;
        if (!r->cur.classes) o->classes = NULL;
    }
    return tr_check_options(r);
}

/* The files --data DIR names (train.csv, val.csv when there, classes.txt) where no --train,
   --val or --classes names others; a folder of folds without train.csv is a usage error. */
static int tr_data_files(tr_run *r) {
    tr_opts *o = &r->o;
    char *p;
    if (!o->train && tr_count_folds(o->data) > 0) {
        int folds;
        p = tt_join(o->data, "train.csv");
        folds = tt_is_file(p) ? 0 : tr_count_folds(o->data);
        free(p);
        if (folds) {
            tt_error("train: %s holds %d folds (fold_1.csv .. fold_%d.csv) and no train.csv: give "
                     "--fold K (train on the other folds, validate on fold K) or --all-folds, or "
                     "run them all with tsf cv",
                     o->data, folds, folds);
            return 2;
        }
    }
    p = tt_join(o->data, "val.csv");
    if (!o->train) o->train = tr_keep(r, tt_join(o->data, "train.csv"));
    if (!o->val && tt_is_file(p))
        o->val = tr_keep(r, p);
    else
        free(p);
    if (!o->classes) o->classes = tr_keep(r, tt_join(o->data, "classes.txt"));
    return TR_GO;
}

/* Without --classes: classes.txt beside the training manifest. Returns 1, or 0 after an
   error. */
static int tr_classes_beside(tr_run *r) {
    tr_opts *o = &r->o;
    const char *slash = strrchr(o->train, '/');
    char *dir = slash ? tr_fmt("%.*s", (int)(slash - o->train), o->train) : tt_strdup(".");
    char *guess = tt_join(dir, "classes.txt");
    free(dir);
    if (!tt_is_file(guess)) {
        tt_error("train: no class names: give --classes FILE (one name a line; mkdataset "
                 "writes classes.txt beside train.csv); looked for %s",
                 guess);
        free(guess);
        return 0;
    }
    o->classes = tr_keep(r, guess);
    return 1;
}

/* The class names and the manifests: --data DIR, --train / --val / --classes, or a manifest
   given as a word. */
static int tr_load_manifests(tr_run *r) {
    tr_opts *o = &r->o;
    int rc;
    if (r->npos == 1 && !o->train) o->train = r->pos[0];
    if (o->data && (rc = tr_data_files(r)) != TR_GO) return rc;
    if (!o->train) {
        tt_error("train: no training data: give --data DIR (from mkdataset) or --train "
                 "MANIFEST");
        return 2;
    }
    r->train_path = o->train, r->val_path = o->val;
    if (!o->classes && !tr_classes_beside(r)) return 1;
    r->classes_path = o->classes;
    if (!tr_load_classes(&r->classes, o->classes) ||
        !tr_load_manifest(&r->train, o->train, &r->classes, "training") ||
        (o->val && !tr_load_manifest(&r->val, o->val, &r->classes, "validation")))
        return 1;
    return TR_GO;
}

/* Phase 3: the data: the folds of --data DIR (--fold, --all-folds), or manifests. */
static int tr_open_data(tr_run *r) {
    const tr_opts *o = &r->o;
    int rc;
    if (o->fold || o->all_folds) {
        if (!tr_load_folds(r)) return 1;
    } else if ((rc = tr_load_manifests(r)) != TR_GO) {
        return rc;
    }
    r->have_val = o->val != NULL;
    if (o->early_stop && !r->have_val && !o->all_folds)
        tt_warn("--early-stop %d: no validation (--val, or --fold), so nothing to stop on",
                o->early_stop);
    return TR_GO;
}

/* The model and tsf_train_state of the checkpoint (--resume), checked against the options and
   the class names. Returns 1, or 0 after an error. */
static int tr_resume_model(tr_run *r) {
    const tr_opts *o = &r->o;
    tsf_error err;
    char why[700];
    int i;
    tsf_status st = tsf_checkpoint_load(&r->m, &r->ts, r->ckpt, r->lb, &err);
    if (st != TSF_OK) {
        tt_error("train --resume: %s: the checkpoint is damaged; start again with "
                 "--overwrite",
                 tt_why(st, &err, why, sizeof why));
        return 0;
    }
    if (!tr_check_resumed_model(r)) return 0;
    r->saved_epoch = r->ts.epoch, r->saved_step = r->ts.step;
    if (r->ts.epoch_step > 0 && (o->batch != r->batch0 || o->accum != r->accum0))
        tt_warn("the run stopped inside epoch %lld after %lld steps of --batch %d x --accum "
                "%d; the epoch goes on after as many steps of %d x %d, so it skips or "
                "repeats some clips",
                r->ts.epoch + 1, r->ts.epoch_step, r->batch0, r->accum0, o->batch, o->accum);
    if (r->m.cfg.classes != r->classes.count) {
        tt_error("train --resume: the checkpoint's model has %d classes, %s has %d: resume "
                 "with the class list it was trained on, or start a new run",
                 r->m.cfg.classes, o->classes, r->classes.count);
        return 0;
    }
    for (i = 0; i < r->classes.count; i++)
        if (strcmp(tsf_model_label(&r->m, i), r->classes.names[i]) != 0) {
            tt_warn("class %d is \"%s\" in the checkpoint but \"%s\" in %s", i,
                    tsf_model_label(&r->m, i), r->classes.names[i], o->classes);
            break;
        }
    return 1;
}

/* A new model: its config from the flags (and --init-from's source), initialised from --seed,
   then the source's weights; the class names; a fresh tsf_train_state. Returns 1, or 0 after
   an error. */
static int tr_new_model(tr_run *r) {
    const tr_opts *o = &r->o;
    tsf_config cfg;
    ini_source src;
    tsf_status st;
    int have_src = 0;
    memset(&src, 0, sizeof src);
    if (o->init_from) {
        if (!ini_open(&src, o->init_from)) return 0;
        have_src = 1;
    }
    if (!tr_config(&cfg, o, r->classes.count, have_src ? &src : NULL)) {
        if (have_src) ini_close(&src);
        return 0;
    }
    st = tsf_model_init(&r->m, &cfg, r->lb, (unsigned long long)o->seed);
    if (st == TSF_OK && strcmp(o->init, "scratch") == 0)
        tsf_model_init_params_scratch(&r->m, (unsigned long long)o->seed);
    if (st == TSF_OK && have_src && !ini_apply(&r->m, &src, o->new_head, o->quiet))
        st = TSF_ERR_FORMAT; /* ini_apply printed why */
    else if (st != TSF_OK)
        tt_error("train: cannot create the model: %s (a smaller --batch, --size or --dim "
                 "needs less memory)",
                 tsf_status_string(st));
    if (have_src) ini_close(&src);
    if (st != TSF_OK) return 0;
    if (tsf_model_set_labels(&r->m, (const char *const *)r->classes.names) != TSF_OK) {
        tt_error("out of memory");
        return 0;
    }
    memset(&r->ts, 0, sizeof r->ts);
    tsf_rng_seed(&r->ts.data_rng, tsf_sample_seed((unsigned long long)o->seed, -1, -1));
    return 1;
}

/* Phase 4: the model, resumed or new, set up for training with the run's settings. */
static int tr_setup_model(tr_run *r) {
    const tr_opts *o = &r->o;
    tsf_status st;
    r->resumed = o->resume && !r->restart;
    if (r->resumed ? !tr_resume_model(r) : !tr_new_model(r)) return 1;
    r->m.cfg.recompute = o->recompute; /* the layout only: the same results */
    r->m.cfg.fused_sgd = o->fused_sgd;
    st = tsf_model_train_init(&r->m);
    if (st == TSF_OK)
        st = tsf_model_reserve(&r->m, r->lb, r->m.cfg.frames, r->m.cfg.image_size,
                               r->m.cfg.image_size);
    if (st != TSF_OK) {
        tt_error("train: cannot set up training: %s (a smaller --batch needs less memory)",
                 tsf_status_string(st));
        return 1;
    }
    tr_apply_settings(r);
    dp_attach(&r->m); /* tsf-mpi, --fused-sgd: sums block by block, overlapping the backward */
    return TR_GO;
}

/* Phase 5: the clips checked before the long work; the batch buffers; the steps an epoch. */
static int tr_setup_batches(tr_run *r) {
    const tr_opts *o = &r->o;
    const tsf_config *c = &r->m.cfg;
    int new_model = !r->resumed && !o->init_from; /* --channels can still fix a mismatch */
    if (!r->resumed) /* a resumed run keeps its own: args.txt says --no-flip when this did */
        r->auto_no_flip = tr_choose_flip(&r->classes, &r->o.no_flip, o->flip);
    tr_sample_opts(&r->so, c, o);
    r->vo = r->so, r->vo.test_clips = 1, r->vo.test_crops = 1;
    if (!tr_check_clips("checking training clips", o->train, &r->train, c, &r->so, new_model))
        return 1;
    if (r->have_val &&
        !tr_check_clips("checking validation clips", o->val, &r->val, c, &r->so, new_model))
        return 1;
    r->per = (size_t)c->channels * c->frames * c->image_size * c->image_size;
    r->x = (float *)tt_malloc((size_t)r->lb * r->per * sizeof(float));
    r->labels = (int *)tt_malloc((size_t)r->lb * sizeof(int));
    r->items = (tr_item *)tt_malloc((size_t)r->lb * sizeof(tr_item));
    r->perm = (int *)tt_malloc((size_t)r->train.count * sizeof(int));
    r->micro = (r->train.count + o->batch - 1) / o->batch;
    r->spe = (r->micro + o->accum - 1) / o->accum;
    if (r->resumed && r->ts.epoch_step > r->spe) { /* a damaged state, other data, other batch */
        if (o->batch == r->batch0 && o->accum == r->accum0) {
            tt_error("train --resume: the checkpoint stopped after step %lld of epoch %lld, but "
                     "an epoch of %s has %d steps of --batch %d x --accum %d: resume with the "
                     "data it was trained on",
                     r->ts.epoch_step, r->ts.epoch + 1,
                     r->train_path ? r->train_path : "the training data", r->spe, o->batch,
                     o->accum);
            return 1;
        }
        r->ts.epoch_step = r->spe; /* a larger batch: the epoch is over (warned above) */
    }
    return TR_GO;
}

/* Phase 6: the run's folder: made and locked, an earlier run's files removed (a fresh run),
   args.txt written, and (--resume) the files made from the checkpoint written again. */
static int tr_prepare_folder(tr_run *r) {
    const tr_opts *o = &r->o;
    if (dp_rank > 0) return TR_GO; /* tsf-mpi: rank 0 writes the run's files */
    if (!tt_mkdirs(o->out)) {
        tt_error("train: cannot create %s: %s", o->out, strerror(errno));
        return 1;
    }
    if (r->lock_fd < 0) { /* made just now, or by a run that has started since */
        if (!tr_lock(r) || !tr_check_files(r)) return 1;
        if (!o->resume && tt_is_file(r->ckpt) && !o->overwrite) {
            tt_error("train: %s already holds a run (%s): continue it with --resume, start "
                     "afresh with --overwrite, or choose another --out",
                     o->out, r->ckpt);
            return 2;
        }
    }
    if (!r->resumed && !tr_remove_old(r)) return 1;
    if (!tr_save_args(r)) return 1;
    if (r->resumed && !tr_restore(r)) return 1;
    return TR_GO;
}

/* The lines that say what this process will do. */
static void tr_print_plan(const tr_run *r) {
    const tr_opts *o = &r->o;
    const tsf_config *c = &r->m.cfg;
    char vn[64] = "", num[32];
    printf("train: %s, %d frames of %d x %d, patch %d, D %d, %d blocks, %d heads: %s "
           "parameters\n",
           tsf_attention_name(c->attention), c->frames, c->image_size, c->image_size, c->patch_size,
           c->dim, c->depth, c->heads, tt_commas(r->m.num_params, num));
    if (r->so.sampling == TSF_SAMPLE_SEGMENT)
        printf("train: frames: one from each of %d segments of a clip\n", r->so.frames);
    else
        printf("train: frames: %d, %d apart%s\n", r->so.frames, r->so.stride,
               r->so.target_fps > 0.0f ? " (at --fps)" : "");
    printf("train: augmentation: short side %d to %d%s, a random %d x %d crop, %s\n",
           r->so.scale_min, r->so.scale_max, r->so.inv_uniform ? " (uniform in 1/side)" : "",
           r->so.size, r->so.size,
           !r->so.no_flip    ? "a random left-right flip"
           : r->auto_no_flip ? "no flip (class names name directions; --flip flips)"
                             : "no flip (--no-flip)");
    if (r->have_val) snprintf(vn, sizeof vn, ", validation %d clips", r->val.count);
    printf("train: %d clips of %d classes%s; %d epoch%s of %d SGD step%s (batch %d x %d), "
           "%s lr %g\n",
           r->train.count, r->classes.count, vn, o->epochs, o->epochs == 1 ? "" : "s", r->spe,
           r->spe == 1 ? "" : "s", o->batch, o->accum, o->schedule, (double)o->lr);
    if (dp_world > 1)
        printf("train: %d ranks (MPI): each loads and passes %d or %d clips of every batch of "
               "%d; rank 0 writes the files\n",
               dp_world, o->batch / dp_world, r->lb, o->batch);
    if (o->stop_epoch && o->stop_epoch < o->epochs)
        printf("train: stopping after epoch %d (--stop-epoch), with the schedule of %d\n",
               o->stop_epoch, o->epochs);
    if (!r->resumed)
        printf("train: initial weights: %s\n",
               o->init_from && strcmp(o->init, "original") == 0
                   ? "--init-from's, the rest as the original code draws them (--init original)"
               : o->init_from ? "--init-from's, the rest --init scratch"
               : strcmp(o->init, "scratch") == 0
                   ? "--init scratch (for small models from scratch; --init original: the "
                     "original code's)"
                   : "--init original (the original code's, for fine-tuning)");
    if (r->resumed)
        printf("train: resuming %s at epoch %lld, step %lld\n", r->ckpt, r->ts.epoch + 1,
               r->ts.epoch_step);
    if (r->restart)
        printf("train: %s has no checkpoint yet (stopped before its first save): starting "
               "the run again with the options of %s\n",
               o->out, r->args_path);
}

/* Phase 7: the plan printed; a resumed run that has nothing left to do says so (exit 0). */
static int tr_announce(tr_run *r) {
    const tr_opts *o = &r->o;
    if (!o->quiet) tr_print_plan(r);
    if (r->resumed && r->ts.epoch_step == 0 && o->early_stop && r->have_val &&
        tr_best(r, &r->since) >= 0 && r->since >= o->early_stop) {
        char m[64];
        const tr_row *bw = &r->rows[tr_best(r, NULL)];
        printf("train: nothing to do: the run stopped early after epoch %lld (%s at epoch %lld, "
               "no better in the %lld epoch%s since; a larger --early-stop goes on)\n",
               r->ts.epoch, tr_metric_text(r, bw, m, sizeof m), bw->epoch, r->since,
               r->since == 1 ? "" : "s");
        return 0;
    }
    if (r->resumed && r->ts.epoch >= r->end) {
        if (r->end < o->epochs)
            printf("train: nothing to do: the run has finished epoch %lld of %d (--stop-epoch %d; "
                   "a larger one goes on)\n",
                   r->ts.epoch, o->epochs, o->stop_epoch);
        else
            printf("train: nothing to do: the run has finished %lld epochs (to train longer, start "
                   "a new run from its model: tsf train --init-from %s --out NEW ...)\n",
                   r->ts.epoch, r->model_path);
        return 0;
    }
    return TR_GO;
}

/* The NaN or infinite loss or gradient of step s of epoch e: the message. */
static void tr_diverged(const tr_run *r, long long e, int s, float lr) {
    char last[600];
    if (r->saved_epoch >= 0)
        snprintf(last, sizeof last,
                 "%s keeps the last good state (epoch %lld, SGD step %lld): resume "
                 "it with --resume and new options",
                 r->ckpt, r->saved_epoch, r->saved_step);
    else
        snprintf(last, sizeof last, "No checkpoint was written yet: start again");
    tt_progress_end();
    tt_error("the loss or the gradients became NaN or infinite at epoch %lld, step %d "
             "(lr %g): training stopped without saving. %s; lower --lr, add --warmup "
             "N or --clip-norm 1",
             e + 1, s + 1, (double)lr, last);
}

/* SGD step s of epoch e (clip order r->perm, epoch seed eseed) at learning rate lr: the
   forward and backward passes of its micro-batches, each clip sampled from its own seed, the
   running sums, and the update. Returns 1, or 0 after an error message. */
static int tr_sgd_step(tr_run *r, long long e, int s, unsigned long long eseed, float lr) {
    const tr_opts *o = &r->o;
    int mb, b, nmb = 0, K = r->m.cfg.classes;
    float gnorm, loss = 0.0f;
    tsf_status st = TSF_OK;
    tsf_model_zero_grad(&r->m);
    for (mb = s * o->accum; mb < (s + 1) * o->accum && mb < r->micro; mb++) {
        int first = mb * o->batch, B = r->train.count - first, n, ok, hits = 0;
        long long lo, cnt;
        double sums[3]; /* the micro-batch's summed loss, clips right, clips */
        if (B > o->batch) B = o->batch;
        dp_shard(B, &lo, &cnt); /* this rank's clips of it (tsf-mpi; all in one process) */
        first += (int)lo, n = (int)cnt;
        for (b = 0; b < n; b++) {
            r->items[b].clip = r->perm[first + b];
            r->items[b].view = TSF_VIEW_TRAIN;
            r->items[b].seed = tsf_sample_seed(eseed, e, r->perm[first + b]);
        }
        if (n == 0) /* more ranks than clips: a stand-in clip (tr_share_of_mean) */
            memset(r->x, 0, r->per * sizeof(float)), r->labels[0] = 0;
        ok = n == 0 || tr_load_batch(r->x, r->labels, &r->train, o->train, r->items, n, &r->so,
                                     r->m.cfg.channels);
        if (ok) st = tr_loss(r, n > 0 ? n : 1, 1, &loss);
        if (ok && st == TSF_ERR_NONFINITE) tr_diverged(r, e, s, lr);
        if (ok && st != TSF_OK && st != TSF_ERR_NONFINITE) {
            tt_progress_end();
            tt_error("training step failed: %s", tsf_status_string(st));
        }
        for (b = 0; ok && st == TSF_OK && b < n; b++)
            hits += tt_argmax(r->m.acts.logits + (size_t)b * K, K) == r->labels[b];
        sums[0] = (double)loss * n, sums[1] = hits, sums[2] = n;
        if (!dp_agree(ok && st == TSF_OK, sums, 3)) return 0; /* every rank goes on, or none */
        if (dp_world > 1) tr_share_of_mean(r, n, B);
        if (o->fused_sgd) /* backward and the SGD step in one (tsf-mpi: dp_grad_hook sums) */
            st = tsf_model_backward_sgd(&r->m, &r->sgd, lr, &gnorm);
        else
            st = tsf_model_backward(&r->m, NULL);
        if (st != TSF_OK) break;
        r->correct += (long)sums[1];
        r->loss_sum += sums[0], r->seen += (long)sums[2], nmb++;
    }
    if (st == TSF_OK && !o->fused_sgd) {
        size_t n;
        float *g = tsf_model_grad_buffer(&r->m, &n);
        dp_sum(g, n); /* tsf-mpi: the ranks' gradients summed, the same bits on every rank */
        st = tsf_sgd_step(&r->m, &r->sgd, lr, nmb, &gnorm);
    }
    if (st == TSF_ERR_NONFINITE) tr_diverged(r, e, s, lr);
    if (st != TSF_OK && st != TSF_ERR_NONFINITE) {
        tt_progress_end();
        tt_error("training step failed: %s", tsf_status_string(st));
    }
    return dp_agree(st == TSF_OK, NULL, 0); /* the same outcome on every rank */
}

/* How an epoch ended (tr_epoch), or the SGD steps of one (tr_epoch_steps). */
enum {
    TR_NEXT,        /* go on with the next epoch                                        */
    TR_LAST,        /* the steps: stop once this epoch is saved (Ctrl-C, --stop-after)  */
    TR_STOP_INSIDE, /* stop inside the epoch: save a checkpoint of it, then stop        */
    TR_STOPPED,     /* stopped after the epoch's save                                   */
    TR_EARLY,       /* --early-stop                                                     */
    TR_FAILED       /* an error, reported                                               */
};

/* The SGD steps of epoch e left in it; *lr becomes the learning rate of its last (when none is
   left, stopped in validation: of the step before the stop). Returns TR_NEXT, TR_LAST,
   TR_STOP_INSIDE or TR_FAILED. */
static int tr_epoch_steps(tr_run *r, long long e, unsigned long long eseed, double t_epoch,
                          float *lr) {
    const tr_opts *o = &r->o;
    int s, s0 = (int)r->ts.epoch_step;
    *lr = s0 > 0 ? tr_lr(r, r->ts.step - 1, e, s0 - 1) : tr_lr(r, r->ts.step, e, 0);
    for (s = s0; s < r->spe; s++) {
        double t_step = tt_now();
        *lr = tr_lr(r, r->ts.step, e, s);
        if (!tr_sgd_step(r, e, s, eseed, *lr)) return TR_FAILED;
        dp_step_done(tt_now() - t_step); /* TSF_MPI_STATS */
        r->ts.step++, r->ts.epoch_step = s + 1, r->steps_done++;
        tr_point("SGD step", NULL, 0);
        dp_test_hash(&r->m, r->ts.step);
        tr_show(r, s + 1 == r->spe, s + 1, r->loss_sum / (double)r->seen,
                100.0 * (double)r->correct / (double)r->seen, r->seen, t_epoch, s + 1 - s0,
                (long long)(r->spe - s - 1) + (r->end - e - 1) * r->spe);
        if (tr_stop_signal() || (o->stop_after && r->steps_done >= o->stop_after))
            return s + 1 < r->spe ? TR_STOP_INSIDE : TR_LAST; /* mid-epoch: save here */
    }
    return TR_NEXT;
}

/* The row of log.csv of the epoch just ended (val: loss, top-1, top-5, NaN without
   validation); the running sums start again. */
static void tr_add_row(tr_run *r, float lr, const double val[3]) {
    tr_row *w;
    r->rows = (tr_row *)realloc(r->rows, (size_t)(r->nrows + 1) * sizeof *r->rows);
    if (!r->rows) exit(1);
    w = &r->rows[r->nrows++];
    w->epoch = r->ts.epoch, w->step = r->ts.step, w->lr = (double)lr;
    w->train_loss = r->seen ? r->loss_sum / (double)r->seen : (double)NAN;
    w->train_acc = r->seen ? 100.0 * (double)r->correct / (double)r->seen : (double)NAN;
    w->val_loss = val[0], w->val_top1 = val[1], w->val_top5 = val[2];
    r->loss_sum = 0, r->correct = r->seen = 0; /* the next epoch's */
}

/* The epoch line of the last row. */
static void tr_print_epoch(const tr_run *r, double t_epoch) {
    const tr_row *w = &r->rows[r->nrows - 1];
    printf("epoch %lld/%d  lr %.3g  train loss %.4f acc %.1f%%", r->ts.epoch, r->o.epochs, w->lr,
           w->train_loss, w->train_acc);
    if (r->have_val)
        printf("  |  val loss %.4f top-1 %.1f%% top-5 %.1f%%%s", w->val_loss, w->val_top1,
               w->val_top5, tr_at_best(r) ? " (best)" : "");
    printf("  |  %.1f s\n", tt_now() - t_epoch);
    fflush(stdout);
}

/* One epoch, or what is left of it: a new order of the clips from the epoch's generator, the
   SGD steps, validation, the row of log.csv, the save. Returns how it ended. */
static int tr_epoch(tr_run *r) {
    tsf_rng rng = r->ts.data_rng; /* the epoch's generator: order, then the epoch seed */
    unsigned long long eseed;
    double t_epoch = tt_now(), val[3] = {(double)NAN, (double)NAN, (double)NAN};
    float lr = 0.0f;
    int steps_left = r->ts.epoch_step < r->spe, how, vr;
    tsf_shuffle(r->perm, r->train.count, &rng);
    eseed = (unsigned long long)tsf_rng_u32(&rng) << 32 | tsf_rng_u32(&rng);
    how = tr_epoch_steps(r, r->ts.epoch, eseed, t_epoch, &lr);
    if (how == TR_FAILED || how == TR_STOP_INSIDE) return how;
    if (r->live && steps_left) fputs("\r\033[K", stderr); /* the epoch line replaces it */
    if (r->have_val) {
        vr = tr_validate(r, &val[0], &val[1], &val[2]);
        if (vr == 0) return TR_FAILED;
        if (vr < 0) return TR_STOP_INSIDE; /* epoch_step = spe: validation next time */
    }
    r->ts.epoch++, r->ts.epoch_step = 0, r->ts.data_rng = rng;
    tr_add_row(r, lr, val);
    if (!tr_save(r)) return TR_FAILED;
    if (!r->o.quiet) tr_print_epoch(r, t_epoch);
    if (how == TR_LAST) return TR_STOPPED;
    if (r->o.early_stop && r->have_val && r->ts.epoch < r->end && tr_best(r, &r->since) >= 0 &&
        r->since >= r->o.early_stop)
        return TR_EARLY;
    return TR_NEXT;
}

/* The last lines of a run that trained to its end (or stopped early). */
static void tr_print_done(const tr_run *r, int early) {
    const tr_opts *o = &r->o;
    char t[32], m[64];
    int bi = tr_best(r, NULL);
    if (early)
        printf("train: early stop after epoch %lld: no better %s in %lld epoch%s\n", r->ts.epoch,
               strcmp(o->best_metric, "loss") == 0   ? "val loss"
               : strcmp(o->best_metric, "top5") == 0 ? "val top-5"
                                                     : "val top-1",
               r->since, r->since == 1 ? "" : "s");
    printf("train: done, %lld epoch%s (%s in this process): %s (the model), %s, %s\n", r->ts.epoch,
           r->ts.epoch == 1 ? "" : "s", tr_hms(tt_now() - r->t_run, t, sizeof t), r->model_path,
           r->log_path, r->svg_path);
    if (bi >= 0)
        printf("train: the best epoch: %lld (%s): %s\n", r->rows[bi].epoch,
               tr_metric_text(r, &r->rows[bi], m, sizeof m), r->best_path);
    if (r->have_val) printf("train: evaluate with: tsf eval %s %s\n", r->model_path, o->val);
}

/* The line of a run stopped by Ctrl-C or --stop-after, its checkpoint saved; the exit status. */
static int tr_print_stopped(const tr_run *r) {
    if (!r->o.quiet || tr_signal) {
        char where[96];
        if (r->ts.epoch_step > 0)
            snprintf(where, sizeof where, "in epoch %lld after step %lld of %d", r->ts.epoch + 1,
                     r->ts.epoch_step, r->spe);
        else
            snprintf(where, sizeof where, "after epoch %lld", r->ts.epoch);
        printf("train: %s: saved %s %s (SGD step %lld); continue with: tsf train --out %s "
               "--resume\n",
               tr_signal ? "interrupted" : "stopped (--stop-after)", r->ckpt, where, r->ts.step,
               r->o.out);
    }
    return tr_signal ? 128 + tr_signal : 0;
}

/* Phase 8: the epochs, to the end (r->end), an early stop, Ctrl-C or --stop-after; the exit
   status. */
static int tr_train(tr_run *r) {
    int how = TR_NEXT;
    tr_catch_signals();
    r->t_run = tt_now();
    if (r->o.epochs == 0 && !tr_save(r)) return 1;
    while (how == TR_NEXT && r->ts.epoch < r->end) how = tr_epoch(r);
    dp_print_stats(r->steps_done);
    if (how == TR_FAILED) return 1;
    if (how == TR_STOP_INSIDE) { /* a checkpoint inside an epoch */
        tt_progress_end();
        if (!tr_save(r)) return 1;
    }
    if (how == TR_STOP_INSIDE || how == TR_STOPPED) return tr_print_stopped(r);
    if (!r->o.quiet) tr_print_done(r, how == TR_EARLY);
    return 0;
}

/* tsf-mpi: rank 0's state, after phase 6, on every rank: the model, SGD momentum and step,
   the generators, and the rows of log.csv and the running sums that rank 0 alone read back
   from the run's folder; so every rank starts bit-identical and decides as rank 0 does. */
static void tr_share(tr_run *r) {
    size_t bytes = r->m.param_floats * sizeof(float);
    if (dp_world == 1) return;
    dp_bcast(r->m.param_memory, bytes);
    dp_bcast(r->m.momentum_memory, bytes);
    dp_bcast(&r->m.sgd_steps, sizeof r->m.sgd_steps);
    dp_bcast(&r->m.rng, sizeof r->m.rng);
    dp_bcast(&r->ts, sizeof r->ts);
    dp_bcast(&r->nrows, sizeof r->nrows);
    if (dp_rank > 0) {
        free(r->rows);
        r->rows = (tr_row *)tt_malloc((size_t)r->nrows * sizeof *r->rows);
    }
    dp_bcast(r->rows, (size_t)r->nrows * sizeof *r->rows);
    dp_bcast(&r->loss_sum, sizeof r->loss_sum);
    dp_bcast(&r->correct, sizeof r->correct);
    dp_bcast(&r->seen, sizeof r->seen);
}

/* A phase's outcome on every rank (tsf-mpi): go on when all go on, else the first failing
   rank's, after rank 0 printed the others' errors. */
static int tr_all(int rc) { return dp_agree_rc(rc, TR_GO); }

static int cmd_train(int argc, char **argv) {
    tr_run run, *r = &run;
    int rc;
    memset(r, 0, sizeof *r);
    r->saved_epoch = r->saved_step = -1, r->lock_fd = -1;
    rc = tr_all(tr_start(r, argc, argv));
    if (rc == TR_GO) rc = tr_all(tr_options(r, argc, argv));
    if (rc == TR_GO) rc = tr_all(tr_open_data(r));
    if (rc == TR_GO) rc = tr_all(tr_setup_model(r));
    if (rc == TR_GO) rc = tr_all(tr_setup_batches(r));
    if (rc == TR_GO) rc = tr_all(tr_prepare_folder(r));
    if (rc == TR_GO) tr_share(r);
    if (rc == TR_GO) rc = tr_all(tr_announce(r));
    if (rc == TR_GO) rc = tr_train(r);
    fflush(stdout);
    tr_unlock(r);
    tr_free(r);
    return rc;
}

/* ==============================================================================================
   tsf eval
   ============================================================================================== */

/* printf to stdout (unless ev_print is 0) and, when there is one, to the eval.txt file. */
static FILE *ev_file = NULL;
static int ev_print = 1; /* 0: the eval.txt file only */
static TT_PRINTF(1, 2) void ev_printf(const char *fmt, ...) {
    va_list ap;
    if (ev_print) {
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
    }
    if (ev_file) {
        va_start(ap, fmt);
        vfprintf(ev_file, fmt, ap);
        va_end(ap);
    }
}

/* The confusion matrix as an SVG heat map: rows true classes, columns predictions, colour =
   share of the row. The title, in two lines, sets the least width (at about 0.6 font sizes a
   character), so a matrix of few classes does not clip it. */
static int ev_write_svg(const char *path, const tsf_model *m, const long *conf, const long *count,
                        int K) {
    FILE *f = tr_create(path);
    double cell = K <= 10 ? 40 : K <= 50 ? 600.0 / K : 4, lab = K <= 50 ? 140 : 20;
    double side = cell * K, width = lab + side + 20;
    int i, j;
    if (!f) return 0;
    if (width < 440) width = 440; /* the second line: 63 characters of 11 pixels */
    fprintf(
        f,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
        "font-family=\"sans-serif\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
        width, lab + side + 50);
    fprintf(f,
            "<text x=\"%.1f\" y=\"16\" font-size=\"13\" font-weight=\"bold\" "
            "text-anchor=\"middle\">confusion matrix</text>\n"
            "<text x=\"%.1f\" y=\"31\" font-size=\"11\" text-anchor=\"middle\">rows: true "
            "class, columns: prediction; colour: share of the row</text>\n",
            width / 2, width / 2);
    for (i = 0; i < K; i++)
        for (j = 0; j < K; j++) {
            long v = conf[(size_t)i * K + j];
            double share = count[i] ? (double)v / (double)count[i] : 0;
            int c = (int)(255 - 200 * share);
            fprintf(f,
                    "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.2f\" height=\"%.2f\" "
                    "fill=\"rgb(%d,%d,255)\" stroke=\"#eee\" stroke-width=\"0.5\"/>\n",
                    lab + j * cell, lab + 30 + i * cell, cell, cell, c, c);
            if (K <= 20 && v)
                fprintf(f,
                        "<text x=\"%.1f\" y=\"%.1f\" font-size=\"%.0f\" text-anchor=\"middle\" "
                        "fill=\"%s\">%ld</text>\n",
                        lab + (j + 0.5) * cell, lab + 30 + (i + 0.5) * cell + cell / 6,
                        cell / 2.5 < 12 ? cell / 2.5 : 12, share > 0.6 ? "white" : "black", v);
        }
    if (K <= 50)
        for (i = 0; i < K; i++) {
            const char *name = tsf_model_label(m, i);
            char idx[16];
            snprintf(idx, sizeof idx, "%d", i);
            fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"%.0f\" text-anchor=\"end\">",
                    lab - 4, lab + 30 + (i + 0.5) * cell + 4, cell < 30 ? cell * 0.6 : 12);
            tc_xml(f, name[0] ? name : idx);
            fprintf(f, "</text>\n");
            fprintf(f,
                    "<text x=\"%.1f\" y=\"%.1f\" font-size=\"%.0f\" "
                    "transform=\"rotate(-60 %.1f %.1f)\">",
                    lab + (i + 0.5) * cell, lab + 26, cell < 30 ? cell * 0.6 : 12,
                    lab + (i + 0.5) * cell, lab + 26);
            tc_xml(f, name[0] ? name : idx);
            fprintf(f, "</text>\n");
        }
    fprintf(f, "</svg>\n");
    return tr_commit(f, path);
}

/* The model a MODEL argument names: a run folder's model.safetensors (a folder of tsf train:
   args.txt, no config.json), or with best its model_best.safetensors (in the run folder, or
   beside a model file); else MODEL itself. Malloc'd, or NULL after an error message. */
static char *ev_model_path(const char *arg, int best) {
    char *args = tt_join(arg, "args.txt"), *cfg = tt_join(arg, "config.json"), *p = NULL;
    int run = tt_is_dir(arg) && tt_is_file(args) && !tt_is_file(cfg);
    free(args), free(cfg);
    if (run) {
        p = tt_join(arg, best ? "model_best.safetensors" : "model.safetensors");
    } else if (best && tt_is_dir(arg)) {
        tt_error("eval --best: %s is a model folder, not the folder of a tsf train run (with "
                 "args.txt and model_best.safetensors)",
                 arg);
        return NULL;
    } else if (best) {
        const char *slash = strrchr(arg, '/');
        char *dir = slash ? tr_fmt("%.*s", (int)(slash - arg), arg) : tt_strdup(".");
        p = tt_join(dir, "model_best.safetensors");
        free(dir);
    } else {
        return tt_strdup(arg);
    }
    if (best && !tt_is_file(p)) {
        tt_error("eval --best: no %s: the run had no validation (tsf train --val, or --fold), "
                 "or no epoch has finished yet",
                 p);
        free(p);
        return NULL;
    }
    return p;
}

/* What ev_run measured. */
typedef struct ev_score {
    double top1, top5; /* percent */
    int clips;
} ev_score;

/* One evaluation (ev_run): the model, the clips, their views' summed logits and the scores. */
typedef struct ev_state {
    tr_opts o;            /* the options; the frame sampling filled in from args.txt   */
    const char *manifest; /*                                                            */
    char *model;          /* the model file                                             */
    char *sampling_from;  /* the args.txt the frame sampling comes from, or NULL        */
    tsf_model m;          /*                                                            */
    tsf_classes classes;  /* the names of the manifest's labels                         */
    int have_classes;     /*                                                            */
    tsf_manifest mf;      /*                                                            */
    tsf_sample_opts so;   /* the views                                                  */
    int K, V, n;          /* classes, views a clip, clips                               */
    float *scores;        /* (n, K) the logits of a clip's views, summed                */
    int *pred, *rank;     /* (n) the predicted class; the true one's rank (0: top-1)    */
    long *count, *hit;    /* (K) clips of each class, and those right                   */
    long *conf;           /* (K, K) true x predicted counts; NULL for more than 4096    */
    long c1, c5;          /* clips right in the top 1, in the top 5                     */
} ev_state;

/* The frame sampling, unless given now: what tsf train used (args.txt beside the model). */
static void ev_sampling(ev_state *e) {
    const char *slash = strrchr(e->model, '/'), *pos[1];
    char *dir, *args;
    tt_list words = {NULL, 0, 0};
    tr_opts sv;
    int np = 0;
    if (e->o.stride || e->o.segment || tt_is_dir(e->model)) return;
    dir = slash ? tr_fmt("%.*s", (int)(slash - e->model), e->model) : tt_strdup(".");
    args = tt_join(dir, "args.txt");
    memset(&sv, 0, sizeof sv);
    if (tt_is_file(args) && tr_read_args(args, &words) &&
        tr_parse(tr_train_defs, &sv, words.n, words.v, "train", pos, 0, &np)) {
        e->o.stride = sv.stride, e->o.segment = sv.segment;
        if (e->o.fps == 0.0f) e->o.fps = sv.fps;
        e->sampling_from = args, args = NULL;
    }
    tt_list_free(&words);
    free(dir), free(args);
}

/* The model. Returns 1, or 0 after an error. */
static int ev_load_model(ev_state *e) {
    tsf_error err;
    char why[700];
    tsf_status st = tsf_model_load(&e->m, e->model, e->o.batch, &err);
    if (st != TSF_OK) {
        tt_error("eval: %s: %s", e->model, tt_why(st, &err, why, sizeof why));
        fprintf(stderr, "  (MODEL is a .safetensors file written by tsf train or tsf convert, "
                        "or a Hugging Face folder with config.json and model.safetensors)\n");
        return 0;
    }
    e->K = e->m.cfg.classes;
    if (e->m.cfg.channels > 3) {
        tt_error("eval: %s takes %d channels; the loader makes clips of 1 to 3", e->model,
                 e->m.cfg.channels);
        return 0;
    }
    return 1;
}

/* The names of the manifest's labels: --classes (checked against the model's), else the
   model's own. Returns 1, or 0 after an error. */
static int ev_class_names(ev_state *e) {
    const tsf_model *m = &e->m;
    tsf_error err;
    int i, K = e->K;
    if (e->o.classes) {
        if (!tr_load_classes(&e->classes, e->o.classes)) return 0;
        e->have_classes = 1;
        if (e->classes.count != K) {
            tt_error("eval: %s names %d classes, the model has %d: give the class list the model "
                     "was trained with",
                     e->o.classes, e->classes.count, K);
            return 0;
        }
        for (i = 0; i < K && m->labels; i++)
            if (strcmp(e->classes.names[i], tsf_model_label(m, i)) != 0) {
                tt_warn("class %d is \"%s\" in %s but \"%s\" in the model", i, e->classes.names[i],
                        e->o.classes, tsf_model_label(m, i));
                break;
            }
    } else if (m->labels) {
        size_t len = 0, off = 0;
        char *text;
        for (i = 0; i < K; i++) len += strlen(tsf_model_label(m, i)) + 1;
        text = (char *)tt_malloc(len + 1);
        for (i = 0; i < K; i++) off += (size_t)sprintf(text + off, "%s\n", tsf_model_label(m, i));
        e->have_classes = tsf_classes_parse(&e->classes, text, off, NULL, &err) == TSF_OK;
        free(text);
    }
    return 1;
}

/* The manifest, its labels within the model's classes. Returns 1, or 0 after an error. */
static int ev_load_clips(ev_state *e) {
    int i;
    if (!ev_class_names(e) ||
        !tr_load_manifest(&e->mf, e->manifest, e->have_classes ? &e->classes : NULL, "the"))
        return 0;
    for (i = 0; i < e->mf.count; i++)
        if (e->mf.labels[i] >= e->K) {
            tt_error("eval: %s line %d: label %d, but the model has %d classes (0 .. %d): is "
                     "this the model's dataset?",
                     e->manifest, e->mf.lines[i], e->mf.labels[i], e->K, e->K - 1);
            return 0;
        }
    return 1;
}

/* The scores' room: per clip and per class. Returns 1, or 0 after an error. */
static int ev_alloc(ev_state *e) {
    size_t n = (size_t)e->mf.count, K = (size_t)e->K;
    e->scores = (float *)calloc(n * K, sizeof(float));
    e->pred = (int *)tt_malloc(n * sizeof(int));
    e->rank = (int *)tt_malloc(n * sizeof(int));
    e->count = (long *)calloc(K, sizeof(long));
    e->hit = (long *)calloc(K, sizeof(long));
    if (K <= 4096) e->conf = (long *)calloc(K * K, sizeof(long));
    if (!e->scores || !e->count || !e->hit || (K <= 4096 && !e->conf)) {
        tt_error("eval: out of memory");
        return 0;
    }
    return 1;
}

/* The clips' views (checked first), B a forward pass, each view's logits added to its clip's
   scores. Returns 1, or 0 after an error. */
static int ev_forward(ev_state *e) {
    const tsf_sample_opts *so = &e->so;
    int K = e->K, V, B = e->o.batch, nitems, i, b, ok = 0, i0;
    int show = !e->o.quiet && (e->o.progress || isatty(2)) && dp_rank == 0;
    long long lo, cnt; /* this rank's clips (tsf-mpi; all of them in one process) */
    float *x;
    int *labels;
    tr_item *items;
    double t0;
    tr_sample_opts(&e->so, &e->m.cfg, &e->o);
    V = e->V = tsf_sample_num_views(so);
    if (!tr_check_clips("checking clips", e->manifest, &e->mf, &e->m.cfg, so, 0) ||
        !dp_agree(ev_alloc(e), NULL, 0))
        return 0;
    e->n = e->mf.count;
    dp_shard(e->n, &lo, &cnt);
    i0 = (int)lo * V, nitems = (int)(lo + cnt) * V;
    x = (float *)tt_malloc((size_t)B * e->m.cfg.channels * so->frames * so->size * so->size *
                           sizeof(float));
    labels = (int *)tt_malloc((size_t)B * sizeof(int));
    items = (tr_item *)tt_malloc((size_t)B * sizeof(tr_item));
    t0 = tt_now();
    for (i = i0; i < nitems; i += B) { /* (clip, view) items in order, B a pass */
        int nb = nitems - i < B ? nitems - i : B;
        tsf_status st;
        for (b = 0; b < nb; b++)
            items[b].clip = (i + b) / V, items[b].view = (i + b) % V, items[b].seed = 0;
        if (!tr_load_batch(x, labels, &e->mf, e->manifest, items, nb, so, e->m.cfg.channels))
            goto done;
        st = tsf_model_forward(&e->m, x, nb, so->frames, so->size, so->size, NULL);
        if (st == TSF_OK &&
            tsf_check_finite(e->m.acts.logits, (size_t)nb * K, NULL) != TSF_OK) { /* no score */
            tt_progress_end();
            tt_error("eval: NaN or infinite logits for %s (clip %d of %s): no score is reported",
                     e->mf.paths[items[0].clip], items[0].clip + 1, e->manifest);
            goto done;
        }
        if (st != TSF_OK) {
            tt_progress_end();
            tt_error("eval: forward pass failed: %s", tsf_status_string(st));
            goto done;
        }
        for (b = 0; b < nb; b++) { /* the original sums the views' raw logits */
            float *sc = e->scores + (size_t)items[b].clip * K;
            const float *lg = e->m.acts.logits + (size_t)b * K;
            int k;
            for (k = 0; k < K; k++) sc[k] += lg[k];
        }
        if (show) {
            char eta[32];
            double dt = tt_now() - t0;
            fprintf(stderr, "\r\033[Keval: %d/%d views  %.1f views/s  ETA %s", i - i0 + nb,
                    nitems - i0, (i - i0 + nb) / dt,
                    tr_hms(dt / (i - i0 + nb) * (nitems - i - nb), eta, sizeof eta));
            fflush(stderr);
        }
    }
    if (show) fputc('\n', stderr);
    ok = 1;
done:
    free(x), free(labels), free(items);
    if (!dp_agree(ok, NULL, 0)) return 0;
    dp_gather_rows(e->scores, e->n, (size_t)K); /* tsf-mpi: every clip's scores on rank 0 */
    return 1;
}

/* Each clip's prediction and rank; the counts. */
static void ev_tally(ev_state *e) {
    int i, K = e->K;
    for (i = 0; i < e->n; i++) {
        const float *sc = e->scores + (size_t)i * K;
        int y = e->mf.labels[i];
        e->pred[i] = tt_argmax(sc, K);
        e->rank[i] = tr_rank(sc, K, y);
        e->count[y]++, e->hit[y] += e->rank[i] == 0;
        e->c1 += e->rank[i] == 0, e->c5 += e->rank[i] < 5;
        if (e->conf) e->conf[(size_t)y * K + e->pred[i]]++;
    }
}

/* The report's head: model, data, sampling, top-1, top-5. */
static void ev_report_totals(const ev_state *e) {
    const tsf_config *c = &e->m.cfg;
    const tsf_sample_opts *so = &e->so;
    const char *from = e->sampling_from;
    ev_printf("model    %s: %s, %d classes, %d frames of %d x %d\n", e->model,
              tsf_attention_name(c->attention), e->K, c->frames, c->image_size, c->image_size);
    ev_printf("data     %s: %d clips; %d view%s a clip (%d temporal x %d spatial), logits "
              "summed\n",
              e->manifest, e->n, e->V, e->V == 1 ? "" : "s",
              so->sampling == TSF_SAMPLE_SEGMENT ? 1 : so->test_clips, so->test_crops);
    if (so->sampling == TSF_SAMPLE_SEGMENT)
        ev_printf("sampling segment%s%s\n", from ? ", from " : "", from ? from : "");
    else
        ev_printf("sampling dense, %d frames %d apart%s%s%s\n", so->frames, so->stride,
                  so->target_fps > 0.0f ? " at --fps" : "", from ? ", from " : "",
                  from ? from : "");
    ev_printf("top-1    %.2f%%  (%ld of %d)\n", 100.0 * (double)e->c1 / e->n, e->c1, e->n);
    ev_printf("top-5    %.2f%%  (%ld of %d)\n", 100.0 * (double)e->c5 / e->n, e->c5, e->n);
}

/* The report's table of the classes: clips and top-1 of each. */
static void ev_report_classes(const ev_state *e) {
    const tsf_model *m = &e->m;
    double mean = 0;
    int i, present = 0, width = 5;
    for (i = 0; i < e->K; i++)
        if (e->count[i]) mean += (double)e->hit[i] / (double)e->count[i], present++;
    ev_printf("mean class accuracy %.2f%% (over the %d classes present)\n\n",
              present ? 100.0 * mean / present : 0.0, present);
    for (i = 0; i < e->K; i++) {
        int w = (int)strlen(tsf_model_label(m, i));
        if (w > width) width = w;
    }
    if (width > 40) width = 40;
    ev_printf("per class:\n%6s  %-*s %7s  %7s\n", "k", width, "class", "clips", "top-1");
    for (i = 0; i < e->K; i++)
        if (e->count[i])
            ev_printf("%6d  %-*.*s %7ld  %6.1f%%\n", i, width, width, tsf_model_label(m, i),
                      e->count[i], 100.0 * (double)e->hit[i] / (double)e->count[i]);
        else
            ev_printf("%6d  %-*.*s %7d  %7s\n", i, width, width, tsf_model_label(m, i), 0, "-");
}

/* The report's confusion matrix: whole up to 20 classes, else its most frequent confusions. */
static void ev_report_confusion(ev_state *e) {
    long *conf = e->conf;
    int i, j, K = e->K;
    if (conf && K <= 20) {
        ev_printf("\nconfusion matrix (rows: true class, columns: predicted class):\n      ");
        for (j = 0; j < K; j++) ev_printf(" %5d", j);
        ev_printf("\n");
        for (i = 0; i < K; i++) {
            ev_printf("%6d", i);
            for (j = 0; j < K; j++) ev_printf(" %5ld", conf[(size_t)i * K + j]);
            ev_printf("  %s\n", tsf_model_label(&e->m, i));
        }
    } else if (conf) { /* too wide for text: the most frequent confusions */
        int shown = 0;
        ev_printf("\nconfusion matrix: %d x %d (confusion.csv with --out); the most frequent "
                  "confusions:\n",
                  K, K);
        while (shown < 20) {
            size_t best = 0, q;
            for (q = 0; q < (size_t)K * K; q++)
                if (q / K != q % K && conf[q] > conf[best]) best = q;
            if (best / K == best % K || conf[best] == 0) break;
            ev_printf("  %6ld  %s -> %s\n", conf[best], tsf_model_label(&e->m, (int)(best / K)),
                      tsf_model_label(&e->m, (int)(best % K)));
            conf[best] = -conf[best]; /* shown; undone below */
            shown++;
        }
        for (i = 0; i < K * K; i++)
            if (conf[i] < 0) conf[i] = -conf[i];
    }
}

/* OUT/predictions.csv: a clip a row, with class names (indices for a model without names). */
static int ev_write_predictions(const ev_state *e, const char *path) {
    FILE *f = tr_create(path);
    int i;
    if (!f) return 0;
    fprintf(f, "path,label,predicted,correct,label_rank\n");
    for (i = 0; i < e->n; i++) {
        const char *label = tsf_model_label(&e->m, e->mf.labels[i]);
        const char *pred = tsf_model_label(&e->m, e->pred[i]);
        char a[16], c[16];
        snprintf(a, sizeof a, "%d", e->mf.labels[i]), snprintf(c, sizeof c, "%d", e->pred[i]);
        tr_csv(f, e->mf.paths[i]);
        fputc(',', f);
        tr_csv(f, label[0] ? label : a);
        fputc(',', f);
        tr_csv(f, pred[0] ? pred : c);
        fprintf(f, ",%d,%d\n", e->rank[i] == 0, e->rank[i] + 1);
    }
    return tr_commit(f, path);
}

/* OUT/confusion.csv: the matrix with the class names. */
static int ev_write_confusion(const ev_state *e, const char *path) {
    FILE *f = tr_create(path);
    int i, j, K = e->K;
    if (!f) return 0;
    fprintf(f, "true\\predicted");
    for (j = 0; j < K; j++) fputc(',', f), tr_csv(f, tsf_model_label(&e->m, j));
    fputc('\n', f);
    for (i = 0; i < K; i++) {
        tr_csv(f, tsf_model_label(&e->m, i));
        for (j = 0; j < K; j++) fprintf(f, ",%ld", e->conf[(size_t)i * K + j]);
        fputc('\n', f);
    }
    return tr_commit(f, path);
}

/* With --out DIR: the folder, and DIR/eval.txt begun (ev_printf writes it too). Returns 1, or
   0 after an error. */
static int ev_open_text(const ev_state *e) {
    char *p;
    if (!e->o.out) return 1;
    if (!tt_mkdirs(e->o.out)) {
        tt_error("eval: cannot create %s: %s", e->o.out, strerror(errno));
        return 0;
    }
    p = tt_join(e->o.out, "eval.txt");
    ev_file = tr_create(p);
    free(p);
    return ev_file != NULL;
}

/* With --out DIR: eval.txt finished, predictions.csv, confusion.csv and confusion.svg.
   Returns 1, or 0 after an error. */
static int ev_write_files(const ev_state *e, int print) {
    char *txt, *pred, *ccsv, *csvg;
    int ok;
    if (!e->o.out) return 1;
    txt = tt_join(e->o.out, "eval.txt"), pred = tt_join(e->o.out, "predictions.csv");
    ccsv = tt_join(e->o.out, "confusion.csv"), csvg = tt_join(e->o.out, "confusion.svg");
    ok = tr_commit(ev_file, txt);
    ev_file = NULL;
    ok = ok && ev_write_predictions(e, pred);
    if (e->conf)
        ok =
            ok && ev_write_confusion(e, ccsv) && ev_write_svg(csvg, &e->m, e->conf, e->count, e->K);
    if (ok && print)
        printf("wrote %s/eval.txt, predictions.csv%s\n", e->o.out,
               e->conf ? ", confusion.csv, confusion.svg" : "");
    free(txt), free(pred), free(ccsv), free(csvg);
    return ok;
}

static void ev_free(ev_state *e) {
    if (ev_file) fclose(ev_file), ev_file = NULL;
    free(e->scores), free(e->pred), free(e->rank);
    free(e->conf), free(e->count), free(e->hit), free(e->sampling_from), free(e->model);
    tsf_manifest_free(&e->mf);
    tsf_classes_free(&e->classes);
    tsf_model_free(&e->m);
}

/* Evaluate MODEL (ev_model_path) on the clips of MANIFEST with the views and sampling of o
   (the sampling, unless given, from the args.txt beside the model): the report on stdout when
   print, and in o->out's files when o->out is set; the top-1 and top-5 in *score (may be
   NULL). Returns 0, or 1 after an error message. */
static int ev_run(const tr_opts *opts, const char *model_arg, const char *manifest, int print,
                  ev_score *score) {
    ev_state e;
    int ok;
    memset(&e, 0, sizeof e);
    e.o = *opts, e.manifest = manifest;
    if (!(e.model = ev_model_path(model_arg, e.o.best))) return 1;
    ev_print = print;
    ev_sampling(&e);
    ok = dp_agree(ev_load_model(&e) && ev_load_clips(&e), NULL, 0) && ev_forward(&e);
    if (ok && dp_rank == 0) ev_tally(&e); /* tsf-mpi: rank 0 reports */
    ok = ok && (dp_rank > 0 || ev_open_text(&e));
    if (ok && dp_rank == 0) {
        ev_report_totals(&e);
        ev_report_classes(&e);
        ev_report_confusion(&e);
        ok = ev_write_files(&e, print);
    }
    if (ok && score)
        score->top1 = 100.0 * (double)e.c1 / e.n, score->top5 = 100.0 * (double)e.c5 / e.n;
    if (ok && score) score->clips = e.n;
    ev_free(&e);
    ev_print = 1;
    return ok ? 0 : 1;
}

static int cmd_eval(int argc, char **argv) {
    tr_opts o;
    const char *pos[2];
    int npos = 0;
    memset(&o, 0, sizeof o);
    o.batch = 8, o.temporal_views = 1, o.spatial_crops = 3;
    if (!tr_parse(tr_eval_defs, &o, argc - 1, argv + 1, "eval", pos, 2, &npos)) return 2;
    if (o.help) {
        eval_usage(stdout);
        return 0;
    }
    if (npos != 2) {
        eval_usage(stderr);
        tt_error("eval: give a MODEL and a MANIFEST (e.g. tsf eval runs/a/model.safetensors "
                 "data/val.csv)");
        return 2;
    }
    if (o.spatial_crops == 2) {
        tt_error("eval: --spatial-crops 2: choose 1 (centre) or 3 (start, centre, end)");
        return 2;
    }
    tt_quiet = o.quiet;
    tr_threads(o.threads);
    return ev_run(&o, pos[0], pos[1], 1, NULL);
}
