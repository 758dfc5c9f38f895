/* tsf_tools.h - what the tools in this folder share: the library, stb, listing folders in
   natural order, argument parsing, messages, progress, the clock, numbers with commas, files
   read by name (regular files only) or whole and written (through NAME.part; never over
   anything but a regular file), a small JSON reader, PNGs, and frames -> clip conversion.
   (The SVG line charts are in tsf_chart.h.)
   Not part of the library; each tool includes it first, in its only translation unit.

   Tools are POSIX programs (opendir, mkdir, realpath, isatty). Images come from Debian's
   libstb-dev (/usr/include/stb, or STB_DIR), never from a copy in this repository:
       sudo apt-get install libstb-dev
   Define TT_NO_STB before including this file for a tool that needs no images. */
#ifndef TSF_TOOLS_H
#define TSF_TOOLS_H

#define _XOPEN_SOURCE 700 /* POSIX 2008 + XSI: opendir, mkdir, realpath, isatty, O_NOFOLLOW */

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TIMESFORMER_IMPLEMENTATION
#include "../timesformer.h"

#ifndef TT_NO_STB
/* stb is C89-clean but not -Wdouble-promotion / -Wmissing-prototypes clean: silence those two
   for its code only. */
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#endif
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_RESIZE_IMPLEMENTATION
#include <stb_image.h>
#include <stb_image_resize.h>
#include <stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
#endif

#if defined(__GNUC__)
#define TT_FN static __attribute__((unused)) /* not every tool uses every helper */
#define TT_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define TT_FN static
#define TT_PRINTF(a, b)
#endif

/* ---- messages ------------------------------------------------------------------------------ */
static const char *tt_prog = "tool"; /* set by main: the name in every message */
static int tt_quiet = 0;             /* 1: no progress, no summaries */

/* When set, errors and warnings go to it (kind "error" or "warning", the text without the
   "prog: kind: " prefix) instead of stderr: tsf-mpi's ranks hand them to rank 0, which prints
   them once (tools/tsf_mpi.h). */
static void (*tt_message_hook)(const char *kind, const char *text) = NULL;

/* "prog: kind: ..." on stderr. */
TT_FN void tt_vmessage(const char *kind, const char *fmt, va_list ap) {
    if (tt_message_hook) {
        char text[1024];
        vsnprintf(text, sizeof text, fmt, ap);
        tt_message_hook(kind, text);
        return;
    }
    fprintf(stderr, "%s: %s: ", tt_prog, kind);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

/* "prog: error: ..." on stderr. */
TT_FN TT_PRINTF(1, 2) void tt_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    tt_vmessage("error", fmt, ap);
    va_end(ap);
}

/* "prog: warning: ..." on stderr. */
TT_FN TT_PRINTF(1, 2) void tt_warn(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    tt_vmessage("warning", fmt, ap);
    va_end(ap);
}

/* A progress line "prog: what done/total" rewritten in place, on a terminal only. */
TT_FN void tt_progress(const char *what, long done, long total) {
    if (tt_quiet || !isatty(2)) return;
    if (total > 0)
        fprintf(stderr, "\r%s: %s %ld/%ld", tt_prog, what, done, total);
    else
        fprintf(stderr, "\r%s: %s %ld", tt_prog, what, done);
    if (total > 0 && done >= total) fputc('\n', stderr);
    fflush(stderr);
}

/* End a progress line that did not reach its total. */
TT_FN void tt_progress_end(void) {
    if (!tt_quiet && isatty(2)) fputc('\n', stderr);
}

/* A library status in words, with the error's details when there are any. */
TT_FN const char *tt_why(tsf_status st, const tsf_error *err, char *buf, size_t n) {
    if (err && err->msg[0])
        snprintf(buf, n, "%s (%s)", tsf_status_string(st), err->msg);
    else
        snprintf(buf, n, "%s", tsf_status_string(st));
    return buf;
}

TT_FN void *tt_malloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) {
        tt_error("out of memory (%zu bytes)", n);
        exit(1);
    }
    return p;
}

TT_FN char *tt_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    return (char *)memcpy(tt_malloc(n), s, n);
}

/* a + "/" + b, malloc'd. */
TT_FN char *tt_join(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    char *p = (char *)tt_malloc(na + nb + 2);
    memcpy(p, a, na);
    if (na && a[na - 1] != '/') p[na++] = '/';
    memcpy(p + na, b, nb + 1);
    return p;
}

/* Seconds on the monotonic clock. */
TT_FN double tt_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* 1234567 -> "1,234,567" (32 bytes of buf are enough). */
TT_FN const char *tt_commas(unsigned long long v, char *buf) {
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%llu", v), i, o = 0;
    for (i = 0; i < n; i++) {
        if (i > 0 && (n - i) % 3 == 0) buf[o++] = ',';
        buf[o++] = tmp[i];
    }
    buf[o] = 0;
    return buf;
}

/* The index of the largest of v[0..n), the first of equals. */
TT_FN int tt_argmax(const float *v, int n) {
    int k, best = 0;
    for (k = 1; k < n; k++)
        if (v[k] > v[best]) best = k;
    return best;
}

/* ---- OpenMP's waiting policy ------------------------------------------------------------- */
/* Threads of an OpenMP team that wait for the next parallel loop spin on a core before they
   sleep (libgomp: for about 300,000 turns). A training step of a small model runs hundreds of
   short loops, so while another program keeps a core busy, a spinning thread takes the time
   slice the working one needs, and a step can take many times longer (README.md has the
   numbers). OMP_WAIT_POLICY=passive makes waiting threads sleep at once. The OpenMP
   runtime reads it once, when the program is loaded, before main: so, first thing in main,
   when neither OMP_WAIT_POLICY nor GOMP_SPINCOUNT is set, this sets OMP_WAIT_POLICY=passive
   and runs the program again (execv of /proc/self/exe, else argv[0]: the same process id,
   arguments and open files, nothing read yet). Whatever the user sets is kept, so
   OMP_WAIT_POLICY=active brings the spinning back. Without OpenMP, or when the exec fails,
   it returns and the program runs as it is. */
TT_FN void tt_omp_passive(char **argv) {
#if defined(_OPENMP) && !defined(TSF_NO_OPENMP)
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT") || !argv || !argv[0]) return;
    if (setenv("OMP_WAIT_POLICY", "passive", 1) != 0) return;
    execv("/proc/self/exe", argv);
    if (strchr(argv[0], '/')) execv(argv[0], argv);
#else
    (void)argv;
#endif
}

/* ---- arguments ---------------------------------------------------------------------------- */
/* Parse an integer in [lo, hi]; prints an error naming the option when it is not one. */
TT_FN int tt_int(const char *opt, const char *s, long lo, long hi, int *out) {
    char *end;
    long v;
    errno = 0;
    v = s ? strtol(s, &end, 10) : 0;
    if (!s || !*s || *end || errno || v < lo || v > hi) {
        tt_error("%s needs an integer from %ld to %ld, got \"%s\"", opt, lo, hi, s ? s : "");
        return 0;
    }
    *out = (int)v;
    return 1;
}

/* Parse a number in [lo, hi]. */
TT_FN int tt_float(const char *opt, const char *s, double lo, double hi, float *out) {
    char *end;
    double v;
    errno = 0;
    v = s ? strtod(s, &end) : 0.0;
    if (!s || !*s || *end || errno || !(v >= lo && v <= hi)) {
        tt_error("%s needs a number from %g to %g, got \"%s\"", opt, lo, hi, s ? s : "");
        return 0;
    }
    *out = (float)v;
    return 1;
}

/* ---- lists of names, natural order, folders ------------------------------------------------ */
typedef struct tt_list {
    char **v;
    int n, cap;
} tt_list;

TT_FN void tt_push(tt_list *l, const char *s) {
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        char **v = (char **)realloc(l->v, (size_t)cap * sizeof *v);
        if (!v) {
            tt_error("out of memory");
            exit(1);
        }
        l->v = v, l->cap = cap;
    }
    l->v[l->n++] = tt_strdup(s);
}

TT_FN void tt_list_free(tt_list *l) {
    int i;
    for (i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    l->v = NULL, l->n = l->cap = 0;
}

/* Natural order: digit runs compare as numbers, so frame9 < frame10. Ties fall back to
   strcmp, so the order is total and repeatable. */
TT_FN int tt_natcmp(const char *a, const char *b) {
    const char *a0 = a, *b0 = b;
    while (*a && *b) {
        if (isdigit((unsigned char)*a) && isdigit((unsigned char)*b)) {
            const char *x = a, *y = b;
            size_t nx, ny;
            while (*x == '0') x++;
            while (*y == '0') y++;
            for (nx = 0; isdigit((unsigned char)x[nx]); nx++) {
            }
            for (ny = 0; isdigit((unsigned char)y[ny]); ny++) {
            }
            if (nx != ny) return nx < ny ? -1 : 1;
            if (memcmp(x, y, nx)) return memcmp(x, y, nx);
            a = x + nx, b = y + ny;
        } else {
            if (*a != *b) return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
            a++, b++;
        }
    }
    if (*a || *b) return *a ? 1 : -1;
    return strcmp(a0, b0);
}

static int tt_natcmp_q(const void *a, const void *b) {
    return tt_natcmp(*(char *const *)a, *(char *const *)b);
}

TT_FN void tt_sort(tt_list *l) {
    if (l->n > 1) qsort(l->v, (size_t)l->n, sizeof *l->v, tt_natcmp_q);
}

TT_FN int tt_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

TT_FN int tt_is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

enum { TT_FILES = 1, TT_DIRS = 2 };

/* The names (not paths) in folder dir, hidden ones skipped, in natural order. 0 on error
   (errno set). */
TT_FN int tt_read_dir(const char *dir, int what, tt_list *out) {
    DIR *d = opendir(dir);
    struct dirent *e;
    if (!d) return 0;
    while ((e = readdir(d)) != NULL) {
        char *path;
        int isdir;
        if (e->d_name[0] == '.') continue;
        path = tt_join(dir, e->d_name);
        isdir = tt_is_dir(path);
        free(path);
        if ((isdir && (what & TT_DIRS)) || (!isdir && (what & TT_FILES))) tt_push(out, e->d_name);
    }
    closedir(d);
    tt_sort(out);
    return 1;
}

/* Does name end with .ext (any case)? */
TT_FN int tt_has_ext(const char *name, const char *ext) {
    size_t n = strlen(name), m = strlen(ext), i;
    if (n < m + 1 || name[n - m - 1] != '.') return 0;
    for (i = 0; i < m; i++)
        if (tolower((unsigned char)name[n - m + i]) != ext[i]) return 0;
    return 1;
}

/* An image stb_image reads, by its name. */
TT_FN int tt_is_image(const char *name) {
    static const char *const ext[] = {"jpg", "jpeg", "png", "bmp", "ppm", "pgm",
                                      "pnm", "tga",  "gif", "psd", "pic", "hdr"};
    size_t i;
    for (i = 0; i < sizeof ext / sizeof ext[0]; i++)
        if (tt_has_ext(name, ext[i])) return 1;
    return 0;
}

/* ---- files read by name, files written -------------------------------------------------- */
/* The kind of a file that is not a regular file, for messages. */
TT_FN const char *tt_kind(mode_t mode) {
    if (S_ISDIR(mode)) return "a folder";
    if (S_ISLNK(mode)) return "a symbolic link";
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    if (S_ISSOCK(mode)) return "a socket";
    return "not a regular file";
}

enum { TT_MISSING, TT_REGULAR, TT_FOLDER, TT_SPECIAL };

/* What path names, following symbolic links: TT_MISSING (nothing readable there; errno set),
   TT_REGULAR, TT_FOLDER, or TT_SPECIAL (a FIFO, a device, a socket; *kind, when kind is not
   NULL, says which). */
TT_FN int tt_what(const char *path, const char **kind) {
    struct stat st;
    if (stat(path, &st) != 0) return TT_MISSING;
    if (kind) *kind = tt_kind(st.st_mode);
    return S_ISREG(st.st_mode) ? TT_REGULAR : S_ISDIR(st.st_mode) ? TT_FOLDER : TT_SPECIAL;
}

/* A file a tool reads by name must be a regular file (a symbolic link to one is fine): a FIFO
   without a writer would wait forever, a device such as /dev/zero never ends, and the
   library's readers seek. Streams come on stdin, where a tool takes them. Returns NULL when
   path is a regular file, else why not, for a message after "path: " ("no such file", "a
   folder, not a file", "not a regular file (a FIFO)", or the system's reason), written in buf
   when it needs to be (64 bytes are enough). */
TT_FN const char *tt_input_problem(const char *path, char *buf, size_t n) {
    const char *kind = NULL;
    switch (tt_what(path, &kind)) {
    case TT_REGULAR:
        return NULL;
    case TT_MISSING:
        return errno == ENOENT ? "no such file" : strerror(errno);
    case TT_FOLDER:
        return "a folder, not a file";
    default:
        snprintf(buf, n, "not a regular file (%s)", kind);
        return buf;
    }
}

/* tt_input_problem with the error printed ("prog: error: path: why"): 1 for a regular file. */
TT_FN int tt_check_input(const char *path) {
    char buf[64];
    const char *why = tt_input_problem(path, buf, sizeof buf);
    if (why) tt_error("%s: %s", path, why);
    return why == NULL;
}

/* May a writer replace path? Only when nothing is there or a regular file is. Writers write
   path.part and rename it over path, and a rename replaces whatever has the name: a FIFO or a
   device node would become a regular file (as root, /dev/null too), a symbolic link would be
   replaced instead of the file it points to. So anything else at path is refused, symbolic
   links included (lstat: the link itself, not its target). Prints an error naming path and
   returns 0 when refused. Call it before any work, and tt_create_part checks again. */
TT_FN int tt_check_output(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0 || S_ISREG(st.st_mode)) return 1; /* creating it reports errors */
    tt_error("%s: not a regular file (%s): refusing to replace it; remove it or choose another "
             "name",
             path, tt_kind(st.st_mode));
    return 0;
}

/* path + ".part", malloc'd: the name a file has while it is written. */
TT_FN char *tt_part_name(const char *path) {
    size_t n = strlen(path);
    char *p = (char *)tt_malloc(n + 6);
    memcpy(p, path, n);
    memcpy(p + n, ".part", 6);
    return p;
}

/* Create (or truncate) part, the temporary name of path, for writing: both path and part must
   pass tt_check_output, and part is opened without following a symbolic link and without
   waiting on a FIFO, then must be a regular file (in case one appeared after the check).
   Prints an error and returns NULL on failure. tt_commit_part or tt_drop_part ends it. */
TT_FN FILE *tt_create_part(const char *path, const char *part) {
    struct stat st;
    FILE *f;
    int fd;
    if (!tt_check_output(path) || !tt_check_output(part)) return NULL;
    fd = open(part, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_NONBLOCK, 0666);
    if (fd < 0) {
        tt_error("%s: cannot write: %s", part, strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        tt_error("%s: not a regular file: refusing to write it", part);
        close(fd);
        return NULL;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    if (!(f = fdopen(fd, "wb"))) {
        tt_error("%s: cannot write: %s", part, strerror(errno));
        close(fd);
        remove(part);
    }
    return f;
}

/* Give up a file begun by tt_create_part: close it (f may be NULL) and remove part. */
TT_FN void tt_drop_part(FILE *f, const char *part) {
    if (f) fclose(f);
    remove(part);
}

/* Finish a file begun by tt_create_part: close f, then rename part over path (checked again:
   something else may have taken the name meanwhile). On failure part is removed and an error
   printed. Returns 1 once path holds the new file. */
TT_FN int tt_commit_part(FILE *f, const char *part, const char *path) {
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        tt_error("%s: cannot write: %s", part, strerror(errno));
        remove(part);
        return 0;
    }
    if (!tt_check_output(path)) {
        remove(part);
        return 0;
    }
    if (rename(part, path) != 0) {
        tt_error("%s: cannot rename to %s: %s", part, path, strerror(errno));
        remove(part);
        return 0;
    }
    return 1;
}

/* The whole of a file, malloc'd, with a NUL after its last byte; its size in *size. NULL when
   it cannot be opened or read, holds more than max bytes, or memory runs out: the caller says
   which file. */
TT_FN char *tt_read_file(const char *path, size_t max, size_t *size) {
    FILE *f = fopen(path, "rb");
    long n;
    char *p;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || (unsigned long)n > max ||
        fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return NULL;
    }
    p = (char *)malloc((size_t)n + 1);
    if (p && fread(p, 1, (size_t)n, f) != (size_t)n) free(p), p = NULL;
    fclose(f);
    if (p) p[n] = 0, *size = (size_t)n;
    return p;
}

/* mkdir -p. 0 on error (errno set). */
TT_FN int tt_mkdirs(const char *path) {
    char *p = tt_strdup(path), *s;
    int ok = 1;
    for (s = p + 1; ok && *s; s++)
        if (*s == '/') {
            *s = 0;
            if (mkdir(p, 0777) != 0 && errno != EEXIST) ok = 0;
            *s = '/';
        }
    if (ok && mkdir(p, 0777) != 0 && errno != EEXIST) ok = 0;
    if (ok && !tt_is_dir(p)) ok = 0, errno = ENOTDIR;
    free(p);
    return ok;
}

/* ---- a small JSON reader ------------------------------------------------------------------ */
/* For the JSON a tool reads itself (tsf parity's meta.json): tt_json_check checks the whole
   text against JSON's grammar, then values are read in place. A value is a pointer to its
   first character in the NUL-terminated text; NULL stands for one that is not there. */
#define TT_JSON_MAX_DEPTH 64 /* nesting, as the library's reader allows */

TT_FN const char *tt_json_ws(const char *s) {
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') s++;
    return s;
}

/* A number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?; its end, or NULL. */
TT_FN const char *tt_json_number(const char *s) {
    const char *d;
    if (*s == '-') s++;
    if (*s == '0')
        s++;
    else if (isdigit((unsigned char)*s))
        while (isdigit((unsigned char)*s)) s++;
    else
        return NULL;
    if (*s == '.') {
        for (d = ++s; isdigit((unsigned char)*s); s++) {
        }
        if (s == d) return NULL;
    }
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-') s++;
        for (d = s; isdigit((unsigned char)*s); s++) {
        }
        if (s == d) return NULL;
    }
    return s;
}

/* The end of the value at s (after white space), or NULL where the text breaks the grammar. */
TT_FN const char *tt_json_skip(const char *s, int depth) {
    s = tt_json_ws(s);
    if (depth > TT_JSON_MAX_DEPTH) return NULL;
    if (*s == '{' || *s == '[') {
        char close = *s == '{' ? '}' : ']';
        int object = *s == '{';
        s = tt_json_ws(s + 1);
        if (*s == close) return s + 1;
        for (;;) {
            if (object) { /* a key, then ':' */
                s = tt_json_ws(s);
                if (*s != '"' || !(s = tt_json_skip(s, depth + 1))) return NULL;
                s = tt_json_ws(s);
                if (*s++ != ':') return NULL;
            }
            if (!(s = tt_json_skip(s, depth + 1))) return NULL;
            s = tt_json_ws(s);
            if (*s != ',') return *s == close ? s + 1 : NULL;
            s++;
        }
    }
    if (*s == '"') {
        for (s++; *s != '"'; s++) {
            if ((unsigned char)*s < 0x20) return NULL; /* the text's end, too */
            if (*s == '\\') {
                int k;
                if (!*++s || !strchr("\"\\/bfnrtu", *s)) return NULL;
                for (k = 1; *s == 'u' && k <= 4; k++)
                    if (!isxdigit((unsigned char)s[k])) return NULL;
                if (*s == 'u') s += 4;
            }
        }
        return s + 1;
    }
    if (strncmp(s, "true", 4) == 0 || strncmp(s, "null", 4) == 0) return s + 4;
    if (strncmp(s, "false", 5) == 0) return s + 5;
    return tt_json_number(s);
}

/* 1 when text[0..len) is one JSON value (with white space around it). */
TT_FN int tt_json_check(const char *text, size_t len) {
    const char *end = len <= (size_t)1 << 30 ? tt_json_skip(text, 0) : NULL;
    return end && tt_json_ws(end) == text + len;
}

/* The value of key in the object at obj (the first, if the key repeats), or NULL. */
TT_FN const char *tt_json_get(const char *obj, const char *key) {
    size_t n = strlen(key);
    const char *s;
    if (!obj || *obj != '{') return NULL;
    for (s = tt_json_ws(obj + 1); *s == '"'; s = tt_json_ws(s + 1)) {
        const char *end = tt_json_skip(s, 0), *v = tt_json_ws(tt_json_ws(end) + 1); /* past ':' */
        if ((size_t)(end - s) == n + 2 && memcmp(s + 1, key, n) == 0) return v;
        s = tt_json_ws(tt_json_skip(v, 0));
        if (*s != ',') break;
    }
    return NULL;
}

/* Element k of the array at arr, or NULL. */
TT_FN const char *tt_json_at(const char *arr, int k) {
    const char *s;
    if (!arr || *arr != '[' || k < 0 || *(s = tt_json_ws(arr + 1)) == ']') return NULL;
    for (; k > 0; k--) {
        s = tt_json_ws(tt_json_skip(s, 0));
        if (*s != ',') return NULL;
        s = tt_json_ws(s + 1);
    }
    return s;
}

/* The number of elements of the array at arr; 0 when it is not an array. */
TT_FN int tt_json_count(const char *arr) {
    int n = 0;
    while (tt_json_at(arr, n)) n++;
    return n;
}

/* The number at v (finite or infinite, not NaN): 1, or 0 when v is no number. */
TT_FN int tt_json_num(const char *v, double *out) {
    char buf[64], *end;
    size_t n;
    if (!v || *v == '"' || *v == '{' || *v == '[') return 0;
    n = (size_t)(tt_json_skip(v, 0) - v);
    if (n == 0 || n >= sizeof buf) return 0;
    memcpy(buf, v, n);
    buf[n] = 0;
    *out = strtod(buf, &end);
    return *end == 0 && *out == *out;
}

/* A whole number in [lo, hi] at v: 1, or 0 when v is none. */
TT_FN int tt_json_int(const char *v, long long lo, long long hi, long long *out) {
    double d;
    if (!tt_json_num(v, &d) || d < (double)lo || d > (double)hi || d != (double)(long long)d)
        return 0;
    *out = (long long)d;
    return 1;
}

/* true or false at v: 1, or 0 when v is neither. */
TT_FN int tt_json_bool(const char *v, int *out) {
    if (v && strncmp(v, "true", 4) == 0) return *out = 1, 1;
    if (v && strncmp(v, "false", 5) == 0) return *out = 0, 1;
    return 0;
}

/* ---- frames -> clip ------------------------------------------------------------------------- */
#ifndef TT_NO_STB
typedef struct tt_png_sink {
    FILE *f;
    int bad;
} tt_png_sink;

static void tt_png_bytes(void *ctx, void *data, int size) {
    tt_png_sink *s = (tt_png_sink *)ctx;
    if (!s->bad && size > 0 && fwrite(data, 1, (size_t)size, s->f) != (size_t)size) s->bad = 1;
}

/* Write a PNG of w x h pixels of c channels (rows of w * c bytes) to path, through path.part
   (tt_create_part: a path that is not a regular file is refused, a failure leaves nothing).
   Prints an error naming the file; returns 1 once written. */
TT_FN int tt_write_png(const char *path, int w, int h, int c, const unsigned char *px) {
    char *part = tt_part_name(path);
    tt_png_sink s;
    int ok = 0;
    s.bad = 0;
    if ((s.f = tt_create_part(path, part)) != NULL) {
        if (!stbi_write_png_to_func(tt_png_bytes, &s, w, h, c, px, w * c)) {
            tt_error("%s: cannot encode the PNG (out of memory?)", path);
            tt_drop_part(s.f, part);
        } else if (s.bad) {
            tt_error("%s: cannot write: %s", part, strerror(errno));
            tt_drop_part(s.f, part);
        } else {
            ok = tt_commit_part(s.f, part, path);
        }
    }
    free(part);
    return ok;
}

/* Read an image by name as RGB (gray and RGBA become RGB): a regular file only
   (tt_check_input). Prints an error naming the file and returns NULL on failure; free the
   pixels with stbi_image_free. */
TT_FN unsigned char *tt_load_image(const char *path, int *w, int *h) {
    int comp;
    unsigned char *img;
    if (!tt_check_input(path)) return NULL;
    if (!(img = stbi_load(path, w, h, &comp, 3)))
        tt_error("%s: cannot read the image: %s", path, stbi_failure_reason());
    return img;
}

typedef struct tt_convert {
    int size;   /* 0: keep the frames' size; else resize so the short side is size          */
    int crop;   /* 1: then centre-crop to size x size                                        */
    int every;  /* keep every k-th image (1: all)                                            */
    int frames; /* 0: every kept image; else T of them spread uniformly                      */
    float fps;  /* the images' frame rate (0: unknown); the clip records the kept rate      */
    int label;  /* the clip's label (-1: none)                                               */
} tt_convert;

/* The options of a frames -> clip conversion, shared by frames2clip and mkdataset: 1 if
   option a (with value v) was one of them (*i then moves past its value), 0 if it was not,
   -1 after an error message about its value. */
TT_FN int tt_convert_option(const char *a, const char *v, tt_convert *o, int *i) {
    int ok = 1;
    if (!strcmp(a, "--crop")) {
        o->crop = 1;
        return 1;
    }
    if (!strcmp(a, "--size"))
        ok = tt_int(a, v, 1, TSF_CLIP_MAX_SIDE, &o->size);
    else if (!strcmp(a, "--every"))
        ok = tt_int(a, v, 1, 1 << 30, &o->every);
    else if (!strcmp(a, "--frames"))
        ok = tt_int(a, v, 1, TSF_CLIP_MAX_FRAMES, &o->frames);
    else if (!strcmp(a, "--fps"))
        ok = tt_float(a, v, 0.0, 1e6, &o->fps);
    else
        return 0;
    if (!ok) return -1;
    (*i)++;
    return 1;
}

/* Which of n images a conversion keeps: their indices, in order. Returns the count, or 0
   after printing an error. */
TT_FN int tt_select(int n, const tt_convert *o, int **out) {
    int kept = (n + o->every - 1) / o->every, T = o->frames ? o->frames : kept, j;
    int *idx;
    if (o->frames > kept) {
        tt_error("--frames %d, but only %d image%s%s", o->frames, kept, kept == 1 ? "" : "s",
                 o->every > 1 ? " are left after --every" : " were found");
        return 0;
    }
    idx = (int *)tt_malloc((size_t)T * sizeof *idx);
    for (j = 0; j < T; j++) /* the middle of T equal parts of the kept images */
        idx[j] = o->every * (int)(((2LL * j + 1) * kept) / (2LL * T));
    *out = idx;
    return T;
}

/* The size frames of w x h become: short side o->size (long side rounded to nearest),
   then maybe cropped. Sets the resize target (rw, rh) and the crop's corner. */
TT_FN void tt_target(const tt_convert *o, int w, int h, int *rw, int *rh, int *cx, int *cy, int *ow,
                     int *oh) {
    *rw = w, *rh = h;
    if (o->size && w <= h)
        *rw = o->size, *rh = (int)((2LL * h * o->size + w) / (2LL * w));
    else if (o->size)
        *rh = o->size, *rw = (int)((2LL * w * o->size + h) / (2LL * h));
    *ow = *rw, *oh = *rh, *cx = *cy = 0;
    if (o->size && o->crop)
        *ow = *oh = o->size, *cx = (*rw - o->size) / 2, *cy = (*rh - o->size) / 2;
}

/* Convert images files[0..n) to the clip file out (written as out.part, then renamed, so a
   failure leaves no clip behind). Prints errors naming the file. Returns 1 on success. */
TT_FN int tt_convert_frames(char **files, int n, const tt_convert *o, const char *out) {
    int *idx = NULL, T, j, w0 = 0, h0 = 0, rw = 0, rh = 0, cx = 0, cy = 0, ow = 0, oh = 0, ok = 0;
    unsigned char *resized = NULL, *frame = NULL, hdr[TSF_CLIP_HEADER_BYTES];
    char *part = NULL;
    FILE *f = NULL;
    tsf_clip_header h;
    tsf_status st;
    if (n == 0) {
        tt_error("no images to convert");
        return 0;
    }
    if (!tt_check_output(out)) return 0; /* before reading any image */
    if ((T = tt_select(n, o, &idx)) == 0) return 0;
    part = tt_part_name(out);
    for (j = 0; j < T; j++) {
        const char *file = files[idx[j]];
        int w, hh, y;
        unsigned char *img = tt_load_image(file, &w, &hh); /* gray, RGBA -> RGB */
        if (!img) goto done;
        if (j == 0) {
            w0 = w, h0 = hh;
            tt_target(o, w, hh, &rw, &rh, &cx, &cy, &ow, &oh);
            h.T = T, h.H = oh, h.W = ow, h.C = 3, h.label = o->label;
            h.fps = o->fps > 0.0f ? (float)((double)o->fps * T / n) : 0.0f;
            if ((st = tsf_clip_header_encode(hdr, &h)) != TSF_OK) {
                tt_error("%s: %d frames of %d x %d make no valid clip: %s", out, T, ow, oh,
                         tsf_status_string(st));
                stbi_image_free(img);
                goto done;
            }
            resized = (unsigned char *)tt_malloc((size_t)rw * rh * 3);
            frame = (unsigned char *)tt_malloc((size_t)ow * oh * 3);
            if (!(f = tt_create_part(out, part))) {
                stbi_image_free(img);
                goto done;
            }
            if (fwrite(hdr, 1, sizeof hdr, f) != sizeof hdr) {
                tt_error("%s: cannot write: %s", part, strerror(errno));
                stbi_image_free(img);
                goto done;
            }
        } else if (w != w0 || hh != h0) {
            tt_error("%s: the image is %d x %d, but the first frame %s is %d x %d (all frames "
                     "must have one size)",
                     file, w, hh, files[idx[0]], w0, h0);
            stbi_image_free(img);
            goto done;
        }
        if (rw == w && rh == hh)
            memcpy(resized, img, (size_t)w * hh * 3);
        else if (!stbir_resize_uint8(img, w, hh, 0, resized, rw, rh, 0, 3)) {
            tt_error("%s: resizing failed", file);
            stbi_image_free(img);
            goto done;
        }
        stbi_image_free(img);
        for (y = 0; y < oh; y++)
            memcpy(frame + (size_t)y * ow * 3, resized + ((size_t)(y + cy) * rw + cx) * 3,
                   (size_t)ow * 3);
        if (fwrite(frame, 1, (size_t)ow * oh * 3, f) != (size_t)ow * oh * 3) {
            tt_error("%s: cannot write: %s", part, strerror(errno));
            goto done;
        }
        tt_progress("frame", j + 1, T);
    }
    ok = tt_commit_part(f, part, out); /* removes part on failure */
    f = NULL;
done:
    if (!ok && f) tt_drop_part(f, part);
    if (!ok && j > 0 && j < T) tt_progress_end();
    if (ok && !tt_quiet)
        printf("%s: %d frames of %d x %d (from %d images%s)\n", out, T, ow, oh, n,
               rw != w0 || rh != h0 ? ", resized" : "");
    free(idx), free(part), free(resized), free(frame);
    return ok;
}
#endif /* TT_NO_STB */

#endif /* TSF_TOOLS_H */
