/* replay_all.c - the five fuzz harnesses in one program, to replay inputs without libFuzzer
   (tests/fuzz/replay.sh, the suite fuzz-replay of tests/run_all.sh): the library is compiled
   once instead of five times.

   Build:  cc -std=c99 -O1 -g -fsanitize=address,undefined tests/fuzz/replay_all.c -o replay_all -lm
   Run:    ./replay_all safetensors|config|clip|manifest|torch FILE_OR_DIR...
   Prints "[PASS] fuzz_NAME: N inputs from DIR" per argument and "N passed, M failed"; a
   sanitizer report or a broken property aborts. */
#define FUZZ_REPLAY_ALL
#include "fuzz_common.h"

int fuzz_safetensors_one(const uint8_t *data, size_t size);
int fuzz_config_one(const uint8_t *data, size_t size);
int fuzz_clip_one(const uint8_t *data, size_t size);
int fuzz_manifest_one(const uint8_t *data, size_t size);
int fuzz_torch_one(const uint8_t *data, size_t size);

#define LLVMFuzzerTestOneInput fuzz_safetensors_one
#include "fuzz_safetensors.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_config_one
#include "fuzz_config.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_clip_one
#include "fuzz_clip.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_manifest_one
#include "fuzz_manifest.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_torch_one
#include "fuzz_torch.c"
#undef LLVMFuzzerTestOneInput

int main(int argc, char **argv) {
    static const struct {
        const char *name, *label;
        fuzz_entry fn;
    } harnesses[5] = {{"safetensors", "fuzz_safetensors", fuzz_safetensors_one},
                      {"config", "fuzz_config", fuzz_config_one},
                      {"clip", "fuzz_clip", fuzz_clip_one},
                      {"manifest", "fuzz_manifest", fuzz_manifest_one},
                      {"torch", "fuzz_torch", fuzz_torch_one}};
    int k;
    for (k = 0; argc > 1 && k < 5; k++)
        if (strcmp(argv[1], harnesses[k].name) == 0) {
            fuzz_target = harnesses[k].fn;
            return fuzz_replay(harnesses[k].label, 2, argc, argv);
        }
    fprintf(stderr, "usage: replay_all safetensors|config|clip|manifest|torch FILE_OR_DIR...\n");
    return 2;
}
