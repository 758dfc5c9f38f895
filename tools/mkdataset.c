/* mkdataset - a dataset (train.csv, val.csv, classes.txt) from a tree of videos, split by
   group so that no source video lands on both sides; or a check of an existing dataset.

   The tree is ROOT/<class>/<entry>; classes are the sub-folders of ROOT in natural order
   (class k is the k-th; hidden names are skipped). An entry is
     <video>.clip       a clip; its group is the name without ".clip" and without a final
                        "_<digits>" or "_<letter><digits>" (so video2clip's windows
                        vid_0000.clip, vid_0001.clip ... and UCF101's v_X_g08_c01 ... share
                        one group: vid, v_X_g08)
     <video>/           a folder of clips (one group: the folder), or a folder of images,
                        converted to OUTDIR/clips/<class>/<video>.clip (one group)
   Other files are skipped with a warning. Groups are per class. In each class, the groups
   are shuffled (from --seed) and round(val * groups) of them, at least 1 and at most all but
   1 when the class has 2 or more, go to val.csv; the rest to train.csv. The manifests hold
   "path,label" lines: converted clips by paths relative to OUTDIR, others by absolute paths.
   Clips, images, manifests and class files are read only when they are regular files (a
   FIFO or a device is an error). Every file is written as NAME.part, then renamed; a name in
   OUTDIR held by anything but a regular file (a symbolic link, a FIFO, a device) is refused
   before anything is converted.

   Build (from the repository root; needs Debian's libstb-dev):
       cc -std=c99 -O2 -Wall -Wextra -Wpedantic -Wshadow -Wdouble-promotion -Wstrict-prototypes \
          -Wmissing-prototypes -I. -I/usr/include/stb tools/mkdataset.c -o build/mkdataset -lm

   Usage:
       mkdataset ROOT OUTDIR [--val F] [--seed N] [--no-groups] [-q]
                 [--size S [--crop]] [--every K] [--frames T] [--fps F]   (for image folders)
       mkdataset --check MANIFEST.csv CLASSES.txt
       --val F       the fraction of each class's groups for validation (default 0.2; 0: none)
       --seed N      the shuffle's seed (default 0): the same tree and seed, the same split
       --no-groups   every clip is its own group
       --size, --crop, --every, --frames, --fps   as frames2clip, for image folders
       --check       load both files with the library (errors name the line) and read every
                     clip's header (errors name the line and the file)

   Output, e.g.
       mkdataset: 3 classes, 41 clips in 30 groups: train 31 clips, val 10 clips
       out/classes.txt out/train.csv out/val.csv
   and for --check
       out/train.csv: 31 clips of 3 classes, all readable
   Errors exit with status 1, e.g.
       mkdataset: error: root/cat/v1: a folder with no images and no clips
       mkdataset: error: out/train.csv: malformed file (line 7: unknown label "dgo")
       mkdataset: error: out/train.csv:9: /data/a.clip: no such file */
#include "tsf_tools.h"

typedef struct entry {
    char *path;  /* as written to the manifest */
    char *group; /* class index + "/" + group name */
    int label;
} entry;

typedef struct dataset {
    entry *v;
    int n, cap;
} dataset;

static void usage(void) {
    fprintf(stderr, "usage: mkdataset ROOT OUTDIR [--val F] [--seed N] [--no-groups] [-q]\n"
                    "                 [--size S [--crop]] [--every K] [--frames T] [--fps F]\n"
                    "       mkdataset --check MANIFEST.csv CLASSES.txt\n");
}

static void add(dataset *d, const char *path, int label, const char *group) {
    char *g;
    if (d->n == d->cap) {
        int cap = d->cap ? 2 * d->cap : 256;
        entry *v = (entry *)realloc(d->v, (size_t)cap * sizeof *v);
        if (!v) {
            tt_error("out of memory");
            exit(1);
        }
        d->v = v, d->cap = cap;
    }
    g = (char *)tt_malloc(strlen(group) + 16);
    sprintf(g, "%d/%s", label, group);
    d->v[d->n].path = tt_strdup(path), d->v[d->n].group = g, d->v[d->n].label = label;
    d->n++;
}

/* The group of a loose clip file: its name without .clip and a final _<digits> or
   _<letter><digits>. */
static char *group_of(const char *name, int no_groups) {
    char *g = tt_strdup(name);
    size_t n = strlen(g), e;
    if (tt_has_ext(g, "clip")) g[n -= 5] = 0;
    if (no_groups) return g;
    e = n;
    while (e > 0 && isdigit((unsigned char)g[e - 1])) e--;
    if (e == n) return g;
    if (e > 0 && isalpha((unsigned char)g[e - 1])) e--;
    if (e > 1 && g[e - 1] == '_') g[e - 1] = 0;
    return g;
}

/* A clip file for the manifest: checked, then named by its absolute path. */
static int add_clip(dataset *d, const char *path, int label, const char *group) {
    tsf_clip_header h;
    tsf_error err;
    char why[700], *abs;
    const char *problem = tt_input_problem(path, why, sizeof why);
    tsf_status st;
    if (problem) { /* a FIFO would block the library's reader */
        tt_error("%s: %s", path, problem);
        return 0;
    }
    st = tsf_clip_read_header(&h, path, &err);
    if (st != TSF_OK) {
        tt_error("%s: %s", path, tt_why(st, &err, why, sizeof why));
        return 0;
    }
    if (strchr(path, '\n')) {
        tt_error("%s: a newline in the name cannot go into a CSV file", path);
        return 0;
    }
    abs = realpath(path, NULL);
    if (!abs) {
        tt_error("%s: %s", path, strerror(errno));
        return 0;
    }
    add(d, abs, label, group);
    free(abs);
    return 1;
}

/* Write a manifest of the entries on one side of the split (as path.part, then renamed). */
static int write_manifest(const char *path, const dataset *d, const char *side, char want) {
    char *part = tt_part_name(path);
    FILE *f = tt_create_part(path, part);
    int i, ok = 0;
    if (f) {
        fprintf(f, "path,label\n");
        for (i = 0; i < d->n; i++)
            if (side[i] == want) fprintf(f, "%s,%d\n", d->v[i].path, d->v[i].label);
        ok = tt_commit_part(f, part, path); /* reports a write error */
    }
    free(part);
    return ok;
}

/* Write classes.txt: one class name a line (as path.part, then renamed). */
static int write_classes(const char *path, const tt_list *classes) {
    char *part = tt_part_name(path);
    FILE *f = tt_create_part(path, part);
    int c, ok = 0;
    if (f) {
        for (c = 0; c < classes->n; c++) fprintf(f, "%s\n", classes->v[c]);
        ok = tt_commit_part(f, part, path);
    }
    free(part);
    return ok;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Decide the side ('t' or 'v') of every entry: per class, shuffle its groups, put
   round(val * groups) (at least 1, at most groups - 1, when there are 2 or more) in val. */
static void split(const dataset *d, int nclasses, float val, unsigned long long seed, char *side,
                  const tt_list *classes) {
    tsf_rng rng;
    int c, i, j;
    tsf_rng_seed(&rng, seed);
    for (c = 0; c < nclasses; c++) {
        char **groups = (char **)tt_malloc((size_t)d->n * sizeof *groups), **valg;
        int ng = 0, nval, *perm;
        for (i = 0; i < d->n; i++)
            if (d->v[i].label == c) groups[ng++] = d->v[i].group;
        qsort(groups, (size_t)ng, sizeof *groups, cmp_str);
        for (i = j = 0; i < ng; i++) /* unique, in sorted order */
            if (j == 0 || strcmp(groups[i], groups[j - 1])) groups[j++] = groups[i];
        ng = j;
        nval = (int)((double)val * ng + 0.5);
        if (val > 0.0f && ng >= 2 && nval < 1) nval = 1;
        if (val < 1.0f && ng >= 2 && nval > ng - 1) nval = ng - 1;
        if (val > 0.0f && ng == 1)
            tt_warn("class %s has one group only: all of it goes to train", classes->v[c]);
        perm = (int *)tt_malloc((size_t)(ng ? ng : 1) * sizeof *perm);
        tsf_shuffle(perm, ng, &rng);
        valg = (char **)tt_malloc((size_t)(nval ? nval : 1) * sizeof *valg);
        for (i = 0; i < nval; i++) valg[i] = groups[perm[i]];
        qsort(valg, (size_t)nval, sizeof *valg, cmp_str);
        for (i = 0; i < d->n; i++)
            if (d->v[i].label == c)
                side[i] = nval && bsearch(&d->v[i].group, valg, (size_t)nval, sizeof *valg, cmp_str)
                              ? 'v'
                              : 't';
        free(groups), free(perm), free(valg);
    }
}

/* --check: the library reads both files and every clip's header. */
static int check(const char *mpath, const char *cpath) {
    tsf_classes classes;
    tsf_manifest m;
    tsf_error err;
    char why[700];
    const char *problem;
    int i, bad = 0;
    tsf_status st;
    if (!tt_check_input(mpath) || !tt_check_input(cpath)) return 1; /* a FIFO would block */
    st = tsf_classes_load(&classes, cpath, NULL, &err);
    if (st != TSF_OK) {
        tt_error("%s: %s", cpath, tt_why(st, &err, why, sizeof why));
        return 1;
    }
    st = tsf_manifest_load(&m, mpath, &classes, NULL, &err);
    if (st != TSF_OK) {
        /* the library's "label 7 is not a class index (...)": which file sets the classes */
        if (strstr(err.msg, "is not a class index (the "))
            tt_error("%s: %s (the classes of %s)", mpath, tt_why(st, &err, why, sizeof why), cpath);
        else
            tt_error("%s: %s", mpath, tt_why(st, &err, why, sizeof why));
        tsf_classes_free(&classes);
        return 1;
    }
    for (i = 0; i < m.count; i++) {
        tsf_clip_header h;
        if ((problem = tt_input_problem(m.paths[i], why, sizeof why)) != NULL) {
            tt_error("%s:%d: %s: %s", mpath, m.lines[i], m.paths[i], problem);
            bad++;
            continue;
        }
        st = tsf_clip_read_header(&h, m.paths[i], &err);
        if (st != TSF_OK) {
            tt_error("%s:%d: %s: %s", mpath, m.lines[i], m.paths[i],
                     tt_why(st, &err, why, sizeof why));
            bad++;
        } else if (h.C > 3) {
            tt_error("%s:%d: %s: %d channels (the loader reads 1 to 3)", mpath, m.lines[i],
                     m.paths[i], h.C);
            bad++;
        } else if (h.label >= 0 && h.label != m.labels[i]) {
            tt_warn("%s:%d: %s: the clip says label %d, the manifest %d (the manifest wins)", mpath,
                    m.lines[i], m.paths[i], h.label, m.labels[i]);
        }
        tt_progress("clip", i + 1, m.count);
    }
    if (bad)
        tt_error("%s: %d of %d clips have problems", mpath, bad, m.count);
    else if (!tt_quiet)
        printf("%s: %d clips of %d classes, all readable\n", mpath, m.count, classes.count);
    tsf_manifest_free(&m);
    tsf_classes_free(&classes);
    return bad ? 1 : 0;
}

int main(int argc, char **argv) {
    const char *root = NULL, *outdir = NULL, *pos[3];
    tt_convert o;
    int handled;
    tt_list classes = {NULL, 0, 0};
    dataset d = {NULL, 0, 0};
    float val = 0.2f;
    int seed = 0, no_groups = 0, do_check = 0, npos = 0, i, c, ok = 1, ntrain = 0, nval = 0;
    int ngroups = 0, nconv = 0, quiet;
    char *side = NULL;
    tt_prog = "mkdataset";
    memset(&o, 0, sizeof o);
    o.every = 1;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage();
            return 0;
        } else if (!strcmp(a, "--check")) {
            do_check = 1;
        } else if (!strcmp(a, "--val")) {
            if (!tt_float(a, v, 0.0, 1.0, &val)) return 1;
            i++;
        } else if (!strcmp(a, "--seed")) {
            if (!tt_int(a, v, 0, 0x7FFFFFFF, &seed)) return 1;
            i++;
        } else if (!strcmp(a, "--no-groups")) {
            no_groups = 1;
        } else if ((handled = tt_convert_option(a, v, &o, &i)) != 0) {
            if (handled < 0) return 1;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            tt_quiet = 1;
        } else if (a[0] == '-' && a[1]) {
            tt_error("unknown option %s", a);
            usage();
            return 1;
        } else if (npos < 3) {
            pos[npos++] = a;
        } else {
            tt_error("too many arguments: %s", a);
            return 1;
        }
    }
    if (npos != 2) {
        tt_error(do_check ? "--check needs MANIFEST.csv and CLASSES.txt" : "give ROOT and OUTDIR");
        usage();
        return 1;
    }
    if (do_check) return check(pos[0], pos[1]);
    if (o.crop && !o.size) return tt_error("--crop needs --size"), 1;
    root = pos[0], outdir = pos[1];
    if (!tt_read_dir(root, TT_DIRS, &classes)) {
        tt_error("%s: cannot read the folder: %s", root, strerror(errno));
        return 1;
    }
    if (classes.n == 0) {
        tt_error("%s: no class folders (expected ROOT/<class>/<video>)", root);
        return 1;
    }
    if (!tt_mkdirs(outdir)) {
        tt_error("%s: cannot make the folder: %s", outdir, strerror(errno));
        tt_list_free(&classes);
        return 1;
    }
    { /* refuse to replace what is not a regular file before converting anything */
        static const char *const outs[] = {"classes.txt", "train.csv", "val.csv"};
        for (i = 0; ok && i < 3; i++) {
            char *p = tt_join(outdir, outs[i]);
            ok = tt_check_output(p);
            free(p);
        }
    }
    quiet = tt_quiet;
    for (c = 0; ok && c < classes.n; c++) {
        char *cdir = tt_join(root, classes.v[c]);
        tt_list items = {NULL, 0, 0};
        int before = d.n, k;
        if (strchr(classes.v[c], '\n')) {
            tt_error("%s: a newline in a class name", cdir);
            ok = 0;
        } else if (!tt_read_dir(cdir, TT_FILES | TT_DIRS, &items)) {
            tt_error("%s: cannot read the folder: %s", cdir, strerror(errno));
            ok = 0;
        }
        for (k = 0; ok && k < items.n; k++) {
            char *path = tt_join(cdir, items.v[k]);
            if (tt_is_dir(path)) {
                tt_list files = {NULL, 0, 0}, images = {NULL, 0, 0};
                int nclips = 0, j;
                if (!tt_read_dir(path, TT_FILES, &files)) {
                    tt_error("%s: cannot read the folder: %s", path, strerror(errno));
                    ok = 0;
                }
                for (j = 0; ok && j < files.n; j++) {
                    char *f = tt_join(path, files.v[j]);
                    if (tt_has_ext(files.v[j], "clip"))
                        ok = add_clip(&d, f, c, items.v[k]), nclips++;
                    else if (tt_is_image(files.v[j]))
                        tt_push(&images, f);
                    free(f);
                }
                if (ok && nclips && images.n) {
                    tt_error("%s: a folder with both clips and images", path);
                    ok = 0;
                } else if (ok && !nclips && !images.n) {
                    tt_error("%s: a folder with no images and no clips", path);
                    ok = 0;
                } else if (ok && images.n) { /* convert the frames */
                    char *dir = tt_join(outdir, "clips"), *cls = tt_join(dir, classes.v[c]);
                    char *name = (char *)tt_malloc(strlen(items.v[k]) + 6), *out, *rel;
                    sprintf(name, "%s.clip", items.v[k]);
                    out = tt_join(cls, name);
                    rel = (char *)tt_malloc(strlen(classes.v[c]) + strlen(name) + 8);
                    sprintf(rel, "clips/%s/%s", classes.v[c], name);
                    o.label = c;
                    if (!tt_mkdirs(cls)) {
                        tt_error("%s: cannot make the folder: %s", cls, strerror(errno));
                        ok = 0;
                    } else {
                        tt_quiet = 1;
                        ok = tt_convert_frames(images.v, images.n, &o, out);
                        tt_quiet = quiet;
                        if (!ok)
                            tt_error("%s: the conversion failed", path);
                        else
                            add(&d, rel, c, items.v[k]), nconv++;
                    }
                    free(dir), free(cls), free(name), free(out), free(rel);
                }
                tt_list_free(&files), tt_list_free(&images);
            } else if (tt_has_ext(items.v[k], "clip")) {
                char *g = group_of(items.v[k], no_groups);
                ok = add_clip(&d, path, c, g);
                free(g);
            } else {
                tt_warn("%s: skipped: not a .clip file or a folder (convert videos first: "
                        "ffmpeg ... | video2clip)",
                        path);
            }
            free(path);
            tt_progress("videos of class", c + 1, classes.n);
        }
        if (ok && d.n == before) {
            tt_error("%s: no videos in the class folder", cdir);
            ok = 0;
        }
        if (no_groups) /* every clip its own group */
            for (k = before; k < d.n; k++) {
                free(d.v[k].group);
                d.v[k].group = (char *)tt_malloc(strlen(d.v[k].path) + 16);
                sprintf(d.v[k].group, "%d/%s", c, d.v[k].path);
            }
        tt_list_free(&items);
        free(cdir);
    }
    if (ok) {
        char *cpath = tt_join(outdir, "classes.txt"), *tpath = tt_join(outdir, "train.csv");
        char *vpath = tt_join(outdir, "val.csv");
        side = (char *)tt_malloc((size_t)d.n);
        split(&d, classes.n, val, (unsigned long long)seed, side, &classes);
        for (i = 0; i < d.n; i++) ntrain += side[i] == 't', nval += side[i] == 'v';
        {
            char **g = (char **)tt_malloc((size_t)d.n * sizeof *g);
            for (i = 0; i < d.n; i++) g[i] = d.v[i].group;
            qsort(g, (size_t)d.n, sizeof *g, cmp_str);
            for (i = 0; i < d.n; i++) ngroups += i == 0 || strcmp(g[i], g[i - 1]) != 0;
            free(g);
        }
        ok = write_classes(cpath, &classes);
        if (ok) ok = write_manifest(tpath, &d, side, 't');
        if (ok && nval) ok = write_manifest(vpath, &d, side, 'v');
        if (ok && !nval) { /* an old one would mislead; only a regular file is removed */
            if (tt_check_output(vpath))
                remove(vpath);
            else
                ok = 0;
        }
        if (ok && !tt_quiet) {
            printf("mkdataset: %d classes, %d clips in %d groups (%d converted from images): "
                   "train %d clips, val %d clips\n",
                   classes.n, d.n, ngroups, nconv, ntrain, nval);
            printf("%s %s%s%s\n", cpath, tpath, nval ? " " : "", nval ? vpath : "");
        }
        free(cpath), free(tpath), free(vpath);
    }
    for (i = 0; i < d.n; i++) free(d.v[i].path), free(d.v[i].group);
    free(d.v), free(side);
    tt_list_free(&classes);
    return ok ? 0 : 1;
}
