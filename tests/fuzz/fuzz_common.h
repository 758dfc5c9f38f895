/* fuzz_common.h - what the libFuzzer harnesses (tests/fuzz/fuzz_*.c) share.

   Each harness is one translation unit that includes this file, which compiles the library's
   implementation (so a harness may also call the tsf__ internals the file loaders use) with
   an allocator that refuses any single request above FUZZ_MAX_ALLOC bytes: a hostile file may
   ask for any amount of memory, and the harness wants the library's TSF_ERR_ALLOC path, not
   the fuzzer's out-of-memory report.

   Three ways to build a harness:
     libFuzzer   clang -fsanitize=fuzzer,address,undefined tests/fuzz/fuzz_clip.c
                 (make fuzz, tests/fuzz/run_fuzz.sh)
     replay      cc -DFUZZ_STANDALONE -fsanitize=address,undefined tests/fuzz/fuzz_clip.c
                 then ./fuzz_clip FILE_OR_DIR...: runs every file once, with any compiler and
                 no libFuzzer. It prints "[PASS] NAME: N inputs from DIR" per argument (an empty
                 folder fails) and "N passed, M failed".
     all five    tests/fuzz/replay_all.c: the five harnesses in one program (one compile of the
                 library), ./replay_all HARNESS FILE_OR_DIR...; tests/fuzz/replay.sh runs it on
                 the seeds and tests/fuzz/regress/ (the suite "fuzz-replay" of run_all.sh).
   A harness that finds a broken property calls fuzz_fail(), which aborts: libFuzzer saves the
   input as a crash, and the replay build dies without its summary line (a failed suite). */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#if !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* fmemopen, mkstemp, opendir */
#endif

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef FUZZ_MAX_ALLOC
#define FUZZ_MAX_ALLOC ((size_t)64 << 20)
#endif

static void *fuzz_malloc(size_t n) { return n > FUZZ_MAX_ALLOC ? NULL : malloc(n); }

#define TSF_MALLOC(sz, ctx) ((void)(ctx), fuzz_malloc(sz))
#define TSF_FREE(p, ctx) ((void)(ctx), free(p))
#define TIMESFORMER_IMPLEMENTATION
#include "../../timesformer.h"

#ifndef FUZZ_REPLAY_ALL /* replay_all.c renames the five entry points and declares them */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
#endif

/* A property the library promises does not hold: report it and abort. */
static void fuzz_fail(const char *what) {
    fprintf(stderr, "fuzz: property violated: %s\n", what);
    abort();
}

/* err->msg must always be a terminated string, whatever happened. */
static void fuzz_check_msg(const tsf_error *err) {
    if (!memchr(err->msg, 0, sizeof err->msg)) fuzz_fail("tsf_error.msg is not terminated");
}

#if defined(FUZZ_STANDALONE) || defined(FUZZ_REPLAY_ALL)
#include <dirent.h>
#include <sys/stat.h>

#ifdef FUZZ_REPLAY_ALL
typedef int (*fuzz_entry)(const uint8_t *data, size_t size);
static fuzz_entry fuzz_target; /* the harness being replayed (replay_all.c sets it) */
#define FUZZ_CALL(data, size) fuzz_target(data, size)
#else
#define FUZZ_CALL(data, size) LLVMFuzzerTestOneInput(data, size)
#endif

static int fuzz_run_file(const char *path) {
    FILE *f = fopen(path, "rb");
    unsigned char *buf;
    long n;
    if (!f) return fprintf(stderr, "cannot open %s\n", path), 0;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
        return fclose(f), fprintf(stderr, "cannot seek %s\n", path), 0;
    buf = (unsigned char *)malloc((size_t)n + 1); /* +1: never malloc(0) */
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n)
        return fclose(f), free(buf), fprintf(stderr, "cannot read %s\n", path), 0;
    fclose(f);
    FUZZ_CALL(buf, (size_t)n);
    free(buf);
    return 1;
}

static int fuzz_name_cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every regular file of a folder, in name order; -1 on an error. */
static int fuzz_run_dir(const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL, path[4096];
    int n = 0, cap = 0, i, ran = 0;
    if (!d) return -1;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) {
            char **p = (char **)realloc(names, (size_t)(cap = cap ? 2 * cap : 64) * sizeof *p);
            if (!p) return closedir(d), -1;
            names = p;
        }
        if (!(names[n] = (char *)malloc(strlen(e->d_name) + 1))) return closedir(d), -1;
        memcpy(names[n], e->d_name, strlen(e->d_name) + 1), n++;
    }
    closedir(d);
    if (n) qsort(names, (size_t)n, sizeof *names, fuzz_name_cmp);
    for (i = 0; i < n; i++) {
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
            if (!fuzz_run_file(path)) ran = -1;
            if (ran >= 0) ran++;
        }
        free(names[i]);
    }
    free(names);
    return ran;
}

/* Replay every file or folder of argv[first..argc) as the harness called name. */
static int fuzz_replay(const char *name, int first, int argc, char **argv) {
    int i, passed = 0, failed = 0;
    for (i = first; i < argc; i++) {
        struct stat sb;
        int n = -1;
        if (stat(argv[i], &sb) == 0)
            n = S_ISDIR(sb.st_mode) ? fuzz_run_dir(argv[i]) : fuzz_run_file(argv[i]);
        if (n <= 0) { /* an empty folder is a mistake too: nothing was tested */
            printf("[FAIL] %s: %s %s\n", name, n ? "cannot read" : "no inputs in", argv[i]);
            failed++;
        } else {
            printf("[PASS] %s: %d input%s from %s\n", name, n, n == 1 ? "" : "s", argv[i]);
            passed++;
        }
        fflush(stdout);
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
#endif

#if defined(FUZZ_STANDALONE) && !defined(FUZZ_REPLAY_ALL)
int main(int argc, char **argv) {
    const char *name = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    return fuzz_replay(name, 1, argc, argv);
}
#endif
#endif /* FUZZ_COMMON_H */
