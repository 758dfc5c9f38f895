/* fuzz_manifest.c - libFuzzer harness for the manifest reader (and the class-names file).

   Input: a class-names file, a NUL byte, then a manifest; with no NUL byte the whole input is
   a manifest read without class names (labels must then be indices). The manifest is parsed
   with a relative base folder, an absolute one and none. Properties: every class name is
   found again by tsf_classes_find; every clip of a parsed manifest has a non-empty path
   (joined to the base folder unless absolute) and a label in range. */
#include "fuzz_common.h"

static void fuzz_check_manifest(const tsf_manifest *m, const tsf_classes *c, const char *base) {
    int i;
    size_t blen = base ? strlen(base) : 0;
    if (m->count < 1) fuzz_fail("an empty manifest parsed");
    for (i = 0; i < m->count; i++) {
        if (!m->paths[i] || !m->paths[i][0]) fuzz_fail("an empty path");
        if (m->labels[i] < 0 || (c && m->labels[i] >= c->count)) fuzz_fail("label out of range");
        if (m->lines[i] < 1) fuzz_fail("line number");
        if (blen && m->paths[i][0] != '/' && strncmp(m->paths[i], base, blen) != 0)
            fuzz_fail("a relative path not joined to the base folder");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *const bases[3] = {"data/set", "/abs/root/", NULL};
    const char *text = (const char *)data, *mtext = text;
    const unsigned char *z = (const unsigned char *)memchr(data, 0, size);
    size_t mn = size;
    tsf_classes classes;
    tsf_manifest m;
    tsf_error err;
    int have = 0, k, b;

    err.msg[0] = 0;
    if (z) {
        size_t cn = (size_t)(z - data);
        mtext = text + cn + 1, mn = size - cn - 1;
        if (tsf_classes_parse(&classes, text, cn, NULL, &err) == TSF_OK) {
            have = 1;
            if (classes.count < 1) fuzz_fail("no classes parsed");
            for (k = 0; k < classes.count; k++)
                if (tsf_classes_find(&classes, classes.names[k]) != k)
                    fuzz_fail("a class name is not found again");
        }
        fuzz_check_msg(&err);
    } else if (tsf_classes_parse(&classes, text, size, NULL, &err) == TSF_OK) {
        tsf_classes_free(&classes); /* the whole input as a class list too */
    }
    for (b = 0; b < 3; b++) {
        if (tsf_manifest_parse(&m, mtext, mn, bases[b], have ? &classes : NULL, NULL, &err) ==
            TSF_OK) {
            fuzz_check_manifest(&m, have ? &classes : NULL, bases[b]);
            tsf_manifest_free(&m);
        } else if (m.memory) {
            fuzz_fail("a failed parse left memory");
        }
        fuzz_check_msg(&err);
    }
    if (have) tsf_classes_free(&classes);
    return 0;
}
