/* fuzz_config.c - libFuzzer harness for the Hugging Face config.json reader.

   The input is a config.json. It goes through what tsf_model_load does with a model folder's
   config.json: tsf_config_from_json, tsf_config_resolve, then the class names (id2label,
   read by the same code that fills a loaded model's labels); and, for a config that
   resolves, the size arithmetic every later step relies on (parameters, FLOPs, bytes). */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    tsf_config cfg, c2;
    tsf_error err;
    tsf_status st;
    tsf__json j;
    char *txt = (char *)malloc(size + 1), *labels = NULL;
    if (!txt) return 0;
    memcpy(txt, data, size), txt[size] = 0; /* tsf_model_load reads the file NUL-terminated */

    memset(&cfg, 0, sizeof cfg);
    err.msg[0] = 0;
    st = tsf_config_from_json(&cfg, txt, size, &err);
    fuzz_check_msg(&err);
    if (st == TSF_OK && tsf_config_resolve(&cfg) == TSF_OK) {
        size_t pb = 0, ab = 0, tb = 0;
        double flops = tsf_config_flops(&cfg, 0, 0, 0);
        if (tsf_config_num_params(&cfg) == 0 || !(flops >= 0)) fuzz_fail("config sizes");
        if (tsf_model_bytes(&cfg, 1, 0, 0, 0, &pb, &ab) == TSF_OK && pb == 0)
            fuzz_fail("tsf_model_bytes: no parameter bytes");
        (void)tsf_model_train_bytes(&cfg, 2, 0, 0, 0, &tb);
        (void)tsf_config_flops(&cfg, cfg.frames + 1, cfg.image_size + 3, cfg.image_size);
    }

    /* the class names, as tsf_model_load takes them from a folder's config.json */
    if (tsf__json_parse(&j, txt, size, NULL) == TSF_OK && j.tok[0].type == TSF__J_OBJ) {
        memset(&c2, 0, sizeof c2);
        st = tsf__config_apply(&c2, &j, 0, NULL, &err);
        fuzz_check_msg(&err);
        if (st == TSF_OK && c2.classes > 0 && strstr(txt, "\"id2label\"")) {
            int lt = tsf__json_get(&j, 0, "id2label"), k;
            st = tsf__labels_from_json(&j, lt >= 0 ? lt : 0, c2.classes, &labels, NULL, &err);
            fuzz_check_msg(&err);
            if (st == TSF_OK) { /* K consecutive strings */
                const char *p = labels;
                for (k = 0; k < c2.classes; k++) p += strlen(p) + 1;
                free(labels);
            }
        }
    }
    if (j.tok) free(j.tok);
    free(txt);
    return 0;
}
