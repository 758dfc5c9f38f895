/* mkdataset - a dataset from a tree of videos, split by group so that no source video lands
   in two splits: train.csv and val.csv (and maybe test.csv), or test.csv and K folds for
   cross-validation; or a check of an existing dataset.

   The tree is ROOT/<class>/<entry>; classes are the sub-folders of ROOT in natural order
   (class k is the k-th; hidden names are skipped). An entry is a video:
     <video>.clip       a clip
     <video>/           a folder of clips (the windows of one video), or a folder of images,
                        converted to OUTDIR/clips/<class>/<video>.clip
   Other files are skipped with a warning.

   Groups. Clips of one group always land in the same split, whatever their classes: a group is
   a source video (or, for UCF, an actor and scene), and one source can feed several classes.
   A group is named by the video's name (a folder's name, or a clip's name without ".clip"):
     default            a folder is its own group; a loose clip's group is its name without a
                        final "_<digits>" or "_<letter><digits>" (video2clip's windows
                        vid_0000.clip, vid_0001.clip ... share the group vid; UCF101's
                        v_X_g08_c01 ... the group v_X_g08)
     --group-regex RE   the text the first parenthesised subexpression of RE (POSIX extended)
                        matches in the name; a name that RE does not match is an error
     --ucf              UCF's names v_<Class>_g<NN>_c<MM>: the group is g<NN>, shared by all
                        classes as in UCF's own splits (--group-regex '^v_.*_(g[0-9]+)_c[0-9]+')
     --no-groups        every clip is its own group
   The same name in two class folders is one group (a source video cut into clips of
   different classes), so names that repeat by chance (video1 in every class) make groups
   larger than they need be; the summary says how many groups span several classes.

   Splits. Each split has a share of the clips: with --folds K, test --test-share T and each
   fold (1 - T) / K; else train (1 - V)(1 - T), val V(1 - T) and test T (--val V). The groups
   are placed one at a time, largest first (groups of the same size in an order drawn from
   --seed), each in the split that most needs its classes: the one where adding it increases
   sum over classes of (clips - target)^2 / target the least, target = the split's share of
   the class's clips (ties: the first split). So every split gets about its share of every
   class, as far as the groups allow. The same tree and options give the same splits; the
   seed only orders groups of equal size, so when all sizes differ it changes nothing.

   Output, in OUTDIR: classes.txt (one class name a line); train.csv, val.csv (unless --val 0)
   and test.csv (with --test-share), or test.csv and fold_1.csv .. fold_K.csv (--folds K).
   The manifests hold "path,label" lines after a "path,label" header, every path relative to
   OUTDIR (the library resolves it against the manifest's folder), so a folder holding both the
   tree and OUTDIR can move. The manifests of the other layout left in OUTDIR by an earlier run
   (train.csv and val.csv, or test.csv and fold_N.csv) are removed, so that no old split
   overlaps the new one. Clips, images, manifests and class files are read only when they are
   regular files (a FIFO or a device is an error). Every file is written as NAME.part, then
   renamed; a name in OUTDIR held by anything but a regular file (a symbolic link, a FIFO, a
   device) is refused before anything is converted.

   Build (from the repository root; needs Debian's libstb-dev):
       cc -std=c99 -O2 -Wall -Wextra -Wpedantic -Wshadow -Wdouble-promotion -Wstrict-prototypes \
          -Wmissing-prototypes -I. -I/usr/include/stb tools/mkdataset.c -o build/mkdataset -lm

   Usage:
       mkdataset ROOT OUTDIR [--val F | --folds K] [--test-share F] [--seed N]
                 [--group-regex RE | --ucf | --no-groups] [-q]
                 [--size S [--crop]] [--every K] [--frames T] [--fps F]   (for image folders)
       mkdataset --check MANIFEST.csv CLASSES.txt
       --val F          the share of the clips (after the test split) for validation
                        (default 0.2; 0: no val.csv)
       --folds K        K folds for cross-validation (2 to 100) instead of train and val
       --test-share F   the share of the clips for test.csv (default 0: none; at most 0.9)
       --seed N         orders groups of equal size (default 0)
       --group-regex RE, --ucf, --no-groups   how clips are grouped (above)
       --size, --crop, --every, --frames, --fps   as frames2clip, for image folders
       --check          load both files with the library (errors name the line) and read every
                        clip's header (errors name the line and the file)

   Output, e.g.
       mkdataset: 3 classes, 41 clips in 30 groups: train 31 clips, val 10 clips
       out/classes.txt out/train.csv out/val.csv
       mkdataset: 11 classes, 1600 clips in 25 groups: test 240 clips, folds 272 272 272 272 272
       out/classes.txt out/test.csv out/fold_1.csv .. out/fold_5.csv
   and for --check
       out/train.csv: 31 clips of 3 classes, all readable
   Errors exit with status 1, e.g.
       mkdataset: error: root/cat/v1: a folder with no images and no clips
       mkdataset: error: root/cat/x.clip: the name "x" does not match --group-regex ...
       mkdataset: error: out/train.csv: malformed file (line 7: unknown label "dgo")
       mkdataset: error: out/train.csv:9: /data/a.clip: no such file */
#include "tsf_tools.h"

#include <regex.h>

#define MAX_FOLDS 100
#define MAX_SPLITS (MAX_FOLDS + 1)
#define UCF_REGEX "^v_.*_(g[0-9]+)_c[0-9]+"

typedef struct entry {
    char *path;  /* as written to the manifest: relative to OUTDIR */
    char *group; /* the group's name (one namespace for all classes) */
    int label;
    int split; /* index of its split */
} entry;

typedef struct dataset {
    entry *v;
    int n, cap;
} dataset;

/* How clips are grouped (the top comment). */
enum { GROUP_NAME, GROUP_REGEX, GROUP_CLIP };
typedef struct grouping {
    int mode;
    const char *text; /* the regular expression, for messages */
    regex_t re;
} grouping;

static void usage(void) {
    fprintf(stderr,
            "usage: mkdataset ROOT OUTDIR [--val F | --folds K] [--test-share F] [--seed N]\n"
            "                 [--group-regex RE | --ucf | --no-groups] [-q]\n"
            "                 [--size S [--crop]] [--every K] [--frames T] [--fps F]\n"
            "       mkdataset --check MANIFEST.csv CLASSES.txt\n");
}

static void add(dataset *d, const char *path, int label, const char *group) {
    if (d->n == d->cap) {
        int cap = d->cap ? 2 * d->cap : 256;
        entry *v = (entry *)realloc(d->v, (size_t)cap * sizeof *v);
        if (!v) {
            tt_error("out of memory");
            exit(1);
        }
        d->v = v, d->cap = cap;
    }
    d->v[d->n].path = tt_strdup(path), d->v[d->n].group = tt_strdup(group);
    d->v[d->n].label = label, d->v[d->n].split = 0;
    d->n++;
}

/* The group of a video called name (a folder's name, or a clip's name without .clip; where
   names the video in messages): malloc'd, or NULL after an error. In GROUP_CLIP mode the
   caller replaces it by the clip's path. */
static char *group_of(const char *name, int loose_clip, const grouping *g, const char *where) {
    char *s = tt_strdup(name);
    size_t n = strlen(s), e;
    if (g->mode == GROUP_REGEX) {
        regmatch_t m[2];
        if (regexec(&g->re, s, 2, m, 0) != 0 || m[1].rm_so < 0 || m[1].rm_eo <= m[1].rm_so) {
            tt_error("%s: the name \"%s\" does not match --group-regex '%s'%s", where, s, g->text,
                     "; give a pattern whose first (...) matches every video's name");
            free(s);
            return NULL;
        }
        memmove(s, s + m[1].rm_so, (size_t)(m[1].rm_eo - m[1].rm_so));
        s[m[1].rm_eo - m[1].rm_so] = 0;
        return s;
    }
    if (g->mode == GROUP_CLIP || !loose_clip) return s;
    e = n; /* a final _<digits> or _<letter><digits> goes */
    while (e > 0 && isdigit((unsigned char)s[e - 1])) e--;
    if (e == n) return s;
    if (e > 0 && isalpha((unsigned char)s[e - 1])) e--;
    if (e > 1 && s[e - 1] == '_') s[e - 1] = 0;
    return s;
}

/* The path of the file `to` (absolute, symbolic links resolved) relative to the folder
   `from` (likewise): "../" for each folder of `from` below their common part, then the rest
   of `to`. */
static char *relative_to(const char *from, const char *to) {
    size_t nf = strlen(from), i, common = 0, ups = 0, o = 0;
    char *f = (char *)tt_malloc(nf + 2), *out;
    memcpy(f, from, nf + 1);
    if (nf == 0 || f[nf - 1] != '/') f[nf++] = '/', f[nf] = 0;
    for (i = 0; f[i] && f[i] == to[i]; i++)
        if (f[i] == '/') common = i + 1; /* the common part ends at a '/' */
    for (i = common; i < nf; i++) ups += f[i] == '/';
    out = (char *)tt_malloc(3 * ups + strlen(to + common) + 1);
    for (i = 0; i < ups; i++) memcpy(out + o, "../", 3), o += 3;
    strcpy(out + o, to + common);
    free(f);
    return out;
}

/* A clip file dir/name for the manifest: checked, then named relative to OUTDIR (outabs, its
   absolute path). The clip's folder is resolved (realpath), the clip's own name kept. */
static int add_clip(dataset *d, const char *dir, const char *name, int label, const char *group,
                    const char *outabs) {
    tsf_clip_header h;
    tsf_error err;
    char why[700], *path = tt_join(dir, name), *dabs = NULL, *abs, *rel;
    const char *problem = tt_input_problem(path, why, sizeof why);
    tsf_status st;
    int ok = 0;
    if (problem) { /* a FIFO would block the library's reader */
        tt_error("%s: %s", path, problem);
    } else if ((st = tsf_clip_read_header(&h, path, &err)) != TSF_OK) {
        tt_error("%s: %s", path, tt_why(st, &err, why, sizeof why));
    } else if (strchr(path, '\n')) {
        tt_error("%s: a newline in the name cannot go into a CSV file", path);
    } else if (!(dabs = realpath(dir, NULL))) {
        tt_error("%s: %s", dir, strerror(errno));
    } else {
        abs = tt_join(dabs, name);
        rel = relative_to(outabs, abs);
        add(d, rel, label, group);
        free(abs), free(rel);
        ok = 1;
    }
    free(path), free(dabs);
    return ok;
}

/* Write a manifest of the entries of split s (as path.part, then renamed). */
static int write_manifest(const char *path, const dataset *d, int s) {
    char *part = tt_part_name(path);
    FILE *f = tt_create_part(path, part);
    int i, ok = 0;
    if (f) {
        fprintf(f, "path,label\n");
        for (i = 0; i < d->n; i++)
            if (d->v[i].split == s) fprintf(f, "%s,%d\n", d->v[i].path, d->v[i].label);
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

/* The splits: names, shares of the clips, and what they got. */
typedef struct splits {
    int n;                         /* splits                                       */
    char name[MAX_SPLITS][24];     /* file names: train.csv, fold_3.csv, ...       */
    double share[MAX_SPLITS];      /* share of every class's clips                 */
    int clips[MAX_SPLITS];         /* clips placed                                 */
    int groups, spanning, missing; /* groups; those of 2+ classes; absent classes */
} splits;

/* Entries sorted by group name, then class. */
static const dataset *sort_data;
static int cmp_group(const void *a, const void *b) {
    const entry *x = &sort_data->v[*(const int *)a], *y = &sort_data->v[*(const int *)b];
    int c = strcmp(x->group, y->group);
    return c ? c : x->label - y->label;
}

/* Groups by size, largest first; equal sizes in the seed's order. */
static const int *sort_size, *sort_rank;
static int cmp_size(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    if (sort_size[x] != sort_size[y]) return sort_size[y] - sort_size[x];
    return sort_rank[x] - sort_rank[y];
}

/* Place every group in a split (the top comment) and set each entry's split. Returns 1, or 0
   after an error (too few groups, or a split left empty). */
static int split(dataset *d, const tt_list *classes, splits *sp, unsigned long long seed) {
    int n = d->n, C = classes->n, S = sp->n, i, j, g, G = 0, s, c, ok = 1, nonempty = 0;
    int *idx = (int *)tt_malloc((size_t)n * sizeof *idx);
    int *gid = (int *)tt_malloc((size_t)n * sizeof *gid); /* entry (sorted) -> group   */
    int *gfirst = (int *)tt_malloc((size_t)(n + 1) * sizeof *gfirst); /* group -> pairs */
    int *pc = (int *)tt_malloc((size_t)n * sizeof *pc),
        *pn = (int *)tt_malloc((size_t)n * sizeof *pn);
    int *size, *rank, *order, *gsplit, np = 0;
    double *x = (double *)calloc((size_t)S * C, sizeof *x), *target, *total;
    tsf_rng rng;
    target = (double *)tt_malloc((size_t)S * C * sizeof *target);
    total = (double *)calloc((size_t)C, sizeof *total);
    if (!x || !total) {
        tt_error("out of memory");
        exit(1);
    }
    for (i = 0; i < n; i++) idx[i] = i, total[d->v[i].label] += 1.0;
    sort_data = d;
    qsort(idx, (size_t)n, sizeof *idx, cmp_group);
    /* the groups, each a run of (class, count) pairs */
    for (i = 0; i < n; i++) {
        const entry *e = &d->v[idx[i]];
        if (i == 0 || strcmp(e->group, d->v[idx[i - 1]].group) != 0) gfirst[G++] = np;
        if (i == 0 || gfirst[G - 1] == np || pc[np - 1] != e->label)
            pc[np] = e->label, pn[np++] = 0;
        pn[np - 1]++;
        gid[i] = G - 1;
    }
    gfirst[G] = np;
    sp->groups = G;
    size = (int *)tt_malloc((size_t)G * sizeof *size);
    rank = (int *)tt_malloc((size_t)G * sizeof *rank);
    order = (int *)tt_malloc((size_t)G * sizeof *order);
    gsplit = (int *)tt_malloc((size_t)G * sizeof *gsplit);
    sp->spanning = 0;
    for (g = 0; g < G; g++) {
        size[g] = 0;
        for (j = gfirst[g]; j < gfirst[g + 1]; j++) size[g] += pn[j];
        sp->spanning += gfirst[g + 1] - gfirst[g] > 1;
    }
    for (s = 0; s < S; s++) nonempty += sp->share[s] > 0.0;
    if (G < nonempty) {
        tt_error("%d group%s for %d splits: every split needs one at least (fewer --folds, "
                 "or --no-groups if the clips are independent)",
                 G, G == 1 ? "" : "s", nonempty);
        ok = 0;
        goto done;
    }
    tsf_rng_seed(&rng, seed);
    tsf_shuffle(order, G, &rng);
    for (g = 0; g < G; g++) rank[order[g]] = g;
    sort_size = size, sort_rank = rank;
    qsort(order, (size_t)G, sizeof *order, cmp_size);
    for (s = 0; s < S; s++)
        for (c = 0; c < C; c++) target[s * C + c] = sp->share[s] * total[c];
    for (i = 0; i < G; i++) { /* each group where it adds the least squared excess */
        double best = 0.0;
        int at = -1;
        g = order[i];
        for (s = 0; s < S; s++) {
            double cost = 0.0;
            if (!(sp->share[s] > 0.0)) continue;
            for (j = gfirst[g]; j < gfirst[g + 1]; j++) {
                double h = pn[j], t = target[s * C + pc[j]];
                cost += h * (2.0 * (x[s * C + pc[j]] - t) + h) / t;
            }
            if (at < 0 || cost < best) best = cost, at = s;
        }
        gsplit[g] = at;
        for (j = gfirst[g]; j < gfirst[g + 1]; j++) x[at * C + pc[j]] += pn[j];
    }
    for (s = 0; s < S; s++) sp->clips[s] = 0;
    for (i = 0; i < n; i++) d->v[idx[i]].split = gsplit[gid[i]], sp->clips[gsplit[gid[i]]]++;
    for (s = 0; ok && s < S; s++)
        if (sp->share[s] > 0.0 && sp->clips[s] == 0) {
            tt_error("%s would hold no clips: its share %.3g is too small for the groups (the "
                     "smallest holds %d clips of %d); give it a larger share, or use fewer "
                     "--folds",
                     sp->name[s], sp->share[s], size[order[G - 1]], n);
            ok = 0;
        }
    /* classes absent from a split that should have some: a warning naming a few */
    sp->missing = 0;
    if (ok) {
        char list[400] = "";
        for (c = 0; c < C; c++)
            for (s = 0; s < S; s++)
                if (sp->share[s] > 0.0 && x[s * C + c] == 0.0) {
                    char one[160];
                    if (sp->missing++ < 4) {
                        snprintf(one, sizeof one, "%s%s (%s)", list[0] ? ", " : "", classes->v[c],
                                 sp->name[s]);
                        if (strlen(list) + strlen(one) < sizeof list) strcat(list, one);
                    }
                    break;
                }
        if (sp->missing)
            tt_warn("%d class%s no clips in some split (too few groups): %s%s", sp->missing,
                    sp->missing == 1 ? " has" : "es have", list, sp->missing > 4 ? ", ..." : "");
    }
done:
    free(idx), free(gid), free(gfirst), free(pc), free(pn), free(x), free(target), free(total);
    free(size), free(rank), free(order), free(gsplit);
    return ok;
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

/* fold_<N>.csv: N, else 0. */
static int fold_number(const char *name) {
    int k = 0;
    if (strncmp(name, "fold_", 5) != 0 || !isdigit((unsigned char)name[5])) return 0;
    for (name += 5; isdigit((unsigned char)*name) && k < 100000; name++) k = 10 * k + (*name - '0');
    return strcmp(name, ".csv") == 0 ? k : 0;
}

/* The manifests in OUTDIR that this run does not write: an earlier run's other layout
   (train.csv and val.csv, or test.csv and fold_N.csv, and val.csv or test.csv when this run
   has none). With remove 0 each must be a regular file (else an error, 0); with remove 1
   they are removed. */
static int stale(const char *outdir, const splits *sp, int remove_them) {
    tt_list names = {NULL, 0, 0};
    int i, s, ok = 1;
    if (!tt_read_dir(outdir, TT_FILES | TT_DIRS, &names)) return 1; /* made just now */
    for (i = 0; ok && i < names.n; i++) {
        const char *nm = names.v[i];
        char *p;
        if (!fold_number(nm) && strcmp(nm, "train.csv") && strcmp(nm, "val.csv") &&
            strcmp(nm, "test.csv"))
            continue;
        for (s = 0; s < sp->n; s++)
            if (sp->share[s] > 0.0 && strcmp(nm, sp->name[s]) == 0) break;
        if (s < sp->n) continue; /* written by this run */
        p = tt_join(outdir, nm);
        if (!tt_check_output(p)) /* refuses what is not a regular file */
            ok = 0;
        else if (remove_them && remove(p) != 0 && errno != ENOENT) {
            tt_error("%s: cannot remove it: %s", p, strerror(errno));
            ok = 0;
        }
        free(p);
    }
    tt_list_free(&names);
    return ok;
}

int main(int argc, char **argv) {
    const char *root = NULL, *outdir = NULL, *pos[3];
    tt_convert o;
    grouping gr;
    splits sp;
    int handled;
    tt_list classes = {NULL, 0, 0};
    dataset d = {NULL, 0, 0};
    float val = 0.2f, test = 0.0f;
    int seed = 0, do_check = 0, npos = 0, i, c, s, ok = 1, nconv = 0, quiet, folds = 0;
    int val_given = 0, have_re = 0;
    char *outabs = NULL;
    tt_prog = "mkdataset";
    memset(&o, 0, sizeof o);
    memset(&gr, 0, sizeof gr);
    memset(&sp, 0, sizeof sp);
    o.every = 1;
    gr.mode = GROUP_NAME;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage();
            return 0;
        } else if (!strcmp(a, "--check")) {
            do_check = 1;
        } else if (!strcmp(a, "--val")) {
            if (!tt_float(a, v, 0.0, 1.0, &val)) return 1;
            val_given = 1, i++;
        } else if (!strcmp(a, "--test-share")) {
            if (!tt_float(a, v, 0.0, 0.9, &test)) return 1;
            i++;
        } else if (!strcmp(a, "--folds")) {
            if (!tt_int(a, v, 2, MAX_FOLDS, &folds)) return 1;
            i++;
        } else if (!strcmp(a, "--seed")) {
            if (!tt_int(a, v, 0, 0x7FFFFFFF, &seed)) return 1;
            i++;
        } else if (!strcmp(a, "--no-groups") || !strcmp(a, "--ucf") ||
                   !strcmp(a, "--group-regex")) {
            int mode = !strcmp(a, "--no-groups") ? GROUP_CLIP : GROUP_REGEX;
            const char *re = !strcmp(a, "--ucf") ? UCF_REGEX : v;
            if (gr.mode != GROUP_NAME) {
                tt_error("%s: give one of --group-regex, --ucf and --no-groups", a);
                return 1;
            }
            gr.mode = mode;
            if (!strcmp(a, "--group-regex")) {
                if (!v) return tt_error("--group-regex needs a pattern"), 1;
                i++;
            }
            if (mode == GROUP_REGEX) {
                int rc = regcomp(&gr.re, re, REG_EXTENDED);
                char why[200];
                if (rc != 0) {
                    regerror(rc, &gr.re, why, sizeof why);
                    tt_error("--group-regex '%s': %s", re, why);
                    return 1;
                }
                have_re = 1, gr.text = re;
                if (gr.re.re_nsub < 1) {
                    tt_error("--group-regex '%s': no (...) to name the group: put parentheses "
                             "around the part of the name that is the group",
                             re);
                    regfree(&gr.re);
                    return 1;
                }
            }
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
        ok = 0;
    } else if (do_check) {
        if (have_re) regfree(&gr.re);
        return check(pos[0], pos[1]);
    } else if (o.crop && !o.size) {
        tt_error("--crop needs --size");
        ok = 0;
    } else if (folds && val_given) {
        tt_error("--val and --folds: choose one (with --folds each fold validates the others)");
        ok = 0;
    }
    if (!ok) {
        if (have_re) regfree(&gr.re);
        return 1;
    }
    /* the splits and their shares */
    if (folds) {
        sp.n = folds + 1;
        snprintf(sp.name[0], sizeof sp.name[0], "test.csv");
        sp.share[0] = (double)test;
        for (s = 1; s <= folds; s++) {
            snprintf(sp.name[s], sizeof sp.name[s], "fold_%d.csv", s);
            sp.share[s] = (1.0 - (double)test) / folds;
        }
    } else {
        sp.n = 3;
        snprintf(sp.name[0], sizeof sp.name[0], "train.csv");
        snprintf(sp.name[1], sizeof sp.name[1], "val.csv");
        snprintf(sp.name[2], sizeof sp.name[2], "test.csv");
        sp.share[0] = (1.0 - (double)val) * (1.0 - (double)test);
        sp.share[1] = (double)val * (1.0 - (double)test), sp.share[2] = (double)test;
    }
    root = pos[0], outdir = pos[1];
    if (!tt_read_dir(root, TT_DIRS, &classes)) {
        tt_error("%s: cannot read the folder: %s", root, strerror(errno));
        ok = 0;
    } else if (classes.n == 0) {
        tt_error("%s: no class folders (expected ROOT/<class>/<video>)", root);
        ok = 0;
    } else if (!tt_mkdirs(outdir) || !(outabs = realpath(outdir, NULL))) {
        tt_error("%s: cannot make the folder: %s", outdir, strerror(errno));
        ok = 0;
    }
    /* refuse to replace what is not a regular file before converting anything */
    for (s = -1; ok && s < sp.n; s++) {
        char *p;
        if (s >= 0 && !(sp.share[s] > 0.0)) continue;
        p = tt_join(outdir, s < 0 ? "classes.txt" : sp.name[s]);
        ok = tt_check_output(p);
        free(p);
    }
    if (ok) ok = stale(outdir, &sp, 0);
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
            char *path = tt_join(cdir, items.v[k]), *g = NULL;
            if (tt_is_dir(path)) {
                tt_list files = {NULL, 0, 0}, images = {NULL, 0, 0};
                int nclips = 0, j;
                if (!(g = group_of(items.v[k], 0, &gr, path))) ok = 0;
                if (ok && !tt_read_dir(path, TT_FILES, &files)) {
                    tt_error("%s: cannot read the folder: %s", path, strerror(errno));
                    ok = 0;
                }
                for (j = 0; ok && j < files.n; j++) {
                    char *f = tt_join(path, files.v[j]);
                    if (tt_has_ext(files.v[j], "clip"))
                        ok = add_clip(&d, path, files.v[j], c, g, outabs), nclips++;
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
                            add(&d, rel, c, g), nconv++;
                    }
                    free(dir), free(cls), free(name), free(out), free(rel);
                }
                tt_list_free(&files), tt_list_free(&images);
            } else if (tt_has_ext(items.v[k], "clip")) {
                char *stem = tt_strdup(items.v[k]);
                stem[strlen(stem) - 5] = 0; /* without .clip */
                if (!(g = group_of(stem, 1, &gr, path)))
                    ok = 0;
                else
                    ok = add_clip(&d, cdir, items.v[k], c, g, outabs);
                free(stem);
            } else {
                tt_warn("%s: skipped: not a .clip file or a folder (convert videos first: "
                        "ffmpeg ... | video2clip)",
                        path);
            }
            free(path), free(g);
            tt_progress("videos of class", c + 1, classes.n);
        }
        if (ok && d.n == before) {
            tt_error("%s: no videos in the class folder", cdir);
            ok = 0;
        }
        tt_list_free(&items);
        free(cdir);
    }
    if (ok && gr.mode == GROUP_CLIP) /* every clip its own group: its path names it */
        for (i = 0; i < d.n; i++) free(d.v[i].group), d.v[i].group = tt_strdup(d.v[i].path);
    if (ok) ok = split(&d, &classes, &sp, (unsigned long long)seed);
    if (ok) {
        char *cpath = tt_join(outdir, "classes.txt");
        ok = write_classes(cpath, &classes);
        free(cpath);
    }
    for (s = 0; ok && s < sp.n; s++)
        if (sp.share[s] > 0.0) {
            char *p = tt_join(outdir, sp.name[s]);
            ok = write_manifest(p, &d, s);
            free(p);
        }
    if (ok) ok = stale(outdir, &sp, 1); /* an old split would overlap this one */
    if (ok && !tt_quiet) {
        printf("mkdataset: %d classes, %d clips in %d groups (%d converted from images): ",
               classes.n, d.n, sp.groups, nconv);
        if (folds) {
            if (test > 0.0f) printf("test %d clips, ", sp.clips[0]);
            printf("folds");
            for (s = 1; s <= folds; s++) printf(" %d", sp.clips[s]);
            printf(" clips\n");
        } else {
            printf("train %d clips", sp.clips[0]);
            if (val > 0.0f) printf(", val %d clips", sp.clips[1]);
            if (test > 0.0f) printf(", test %d clips", sp.clips[2]);
            printf("\n");
        }
        if (sp.spanning)
            printf("mkdataset: %d of the %d groups hold clips of several classes; each stays in "
                   "one split\n",
                   sp.spanning, sp.groups);
        printf("%s/classes.txt", outdir);
        for (s = 0; s < (folds ? 1 : 3); s++)
            if (sp.share[s] > 0.0) printf(" %s/%s", outdir, sp.name[s]);
        if (folds) printf(" %s/fold_1.csv .. %s/fold_%d.csv", outdir, outdir, folds);
        printf("\n");
    }
    for (i = 0; i < d.n; i++) free(d.v[i].path), free(d.v[i].group);
    free(d.v), free(outabs);
    if (have_re) regfree(&gr.re);
    tt_list_free(&classes);
    return ok ? 0 : 1;
}
