/* 04_hf_classify.c - load a Hugging Face model folder (config.json + model.safetensors) with
   tsf_model_load, classify 8-bit RGB frames with tsf_model_forward_u8, print the top-5 labels
   (the folder's id2label) with their probabilities.

   Build and run (from the repository root):
       make build/04_hf_classify && ./build/04_hf_classify
       (or: cc -O2 -march=native -fopenmp -I. examples/04_hf_classify.c -o 04_hf_classify -lm)
       ./build/04_hf_classify [MODEL_DIR [CLIP]]
   With no arguments there is nothing to download: it makes tiny-timesformer/ in the current
   directory, a folder laid out like one from the hub (a config.json with Hugging Face's keys
   and an id2label of 8 Kinetics classes; a model.safetensors written by tsf_model_save from a
   model with random weights), then classifies synthetic frames with it. CLIP is a clip file
   (tools/video2clip): T frames evenly spread over it are classified as they are, so make it
   at the model's size (below).

   With the real thing, facebook/timesformer-base-finetuned-k400 (8 frames of 224 x 224, 400
   classes): tsf_model_load reads the model folder as downloaded (config.json,
   preprocessor_config.json and pytorch_model.bin; no Python needed). Older huggingface_hub
   versions spell the command huggingface-cli download:
       hf download facebook/timesformer-base-finetuned-k400 config.json \
           preprocessor_config.json pytorch_model.bin --local-dir timesformer-k400
   Then make a clip at 224 x 224 (short side to 224, centre crop) and classify it; the model
   was trained on 8 frames spread over about 8.5 s, so give it about that much video:
       ffmpeg -v error -i video.mp4 -t 8.5 -f rawvideo -pix_fmt rgb24 -vf \
           "fps=8,scale=224:224:force_original_aspect_ratio=increase,crop=224:224" - |
           build/video2clip -W 224 -H 224 --fps 8 -o video.clip
       ./build/04_hf_classify timesformer-k400 video.clip
   Its config.json has no mean/std: the defaults (0.45, 0.225) are that model's. ViT-B at
   8 x 224^2 is 196 GFLOPs a clip, 0.5 GB of weights and 0.13 GB of activations: about 1.6 s
   on 2 cores.

   Expected output (no arguments; bit-identical for any thread count, equal to rounding
   between SIMD paths; 0.01 s):
       made tiny-timesformer/ (config.json + model.safetensors, random weights)
       tiny-timesformer: divided_space_time, 4 frames of 32 x 32, 8 classes, 91064 parameters
       frames: 4 synthetic frames of 32 x 32
       top-5:
         0.167  arranging flowers
         0.145  abseiling
         0.123  applauding
         0.119  archery
         0.116  air drumming
   The weights are random, so the probabilities stay near 1/8. */
#define _POSIX_C_SOURCE 200809L /* mkdir */
#define TIMESFORMER_IMPLEMENTATION
#include "timesformer.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _WIN32
#include <direct.h>
#define mkdir(path, mode) _mkdir(path)
#else
#include <sys/stat.h>
#endif

/* A config.json as transformers writes them (the keys of the K400 model's), at toy size.
   tsf_model_load reads the shape, attention_type, layer_norm_eps, qkv_bias and id2label, and
   ignores the rest. */
static const char tiny_config[] =
    "{\n"
    "  \"architectures\": [\"TimesformerForVideoClassification\"],\n"
    "  \"attention_probs_dropout_prob\": 0.0,\n"
    "  \"attention_type\": \"divided_space_time\",\n"
    "  \"drop_path_rate\": 0,\n"
    "  \"hidden_act\": \"gelu\",\n"
    "  \"hidden_dropout_prob\": 0.0,\n"
    "  \"hidden_size\": 48,\n"
    "  \"id2label\": {\"0\": \"abseiling\", \"1\": \"air drumming\",\n"
    "               \"2\": \"answering questions\", \"3\": \"applauding\",\n"
    "               \"4\": \"applying cream\", \"5\": \"archery\",\n"
    "               \"6\": \"arm wrestling\", \"7\": \"arranging flowers\"},\n"
    "  \"image_size\": 32,\n"
    "  \"initializer_range\": 0.02,\n"
    "  \"intermediate_size\": 192,\n"
    "  \"label2id\": {\"abseiling\": 0, \"air drumming\": 1, \"answering questions\": 2,\n"
    "               \"applauding\": 3, \"applying cream\": 4, \"archery\": 5,\n"
    "               \"arm wrestling\": 6, \"arranging flowers\": 7},\n"
    "  \"layer_norm_eps\": 1e-06,\n"
    "  \"model_type\": \"timesformer\",\n"
    "  \"num_attention_heads\": 3,\n"
    "  \"num_channels\": 3,\n"
    "  \"num_frames\": 4,\n"
    "  \"num_hidden_layers\": 2,\n"
    "  \"patch_size\": 8,\n"
    "  \"problem_type\": \"single_label_classification\",\n"
    "  \"qkv_bias\": true,\n"
    "  \"torch_dtype\": \"float32\",\n"
    "  \"transformers_version\": \"4.25.0.dev0\"\n"
    "}\n";

/* Write dir/config.json and dir/model.safetensors (random weights, seed 7). */
static int make_tiny_folder(const char *dir) {
    char path[1024];
    tsf_config cfg = {0};
    tsf_model m;
    tsf_error err;
    tsf_status st;
    FILE *f;
    int ok;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) return perror(dir), 1;
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (!(f = fopen(path, "w"))) return perror(path), 1;
    ok = fputs(tiny_config, f) != EOF;
    if (fclose(f) != 0 || !ok) return perror(path), 1;
    /* the same JSON gives the config of the random model whose weights we save */
    if (tsf_config_from_json(&cfg, tiny_config, strlen(tiny_config), &err) != TSF_OK)
        return fprintf(stderr, "%s\n", err.msg), 1;
    if ((st = tsf_model_init(&m, &cfg, 0, 7)) != TSF_OK)
        return fprintf(stderr, "model: %s\n", tsf_status_string(st)), 1;
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    st = tsf_model_save(&m, path, &err);
    tsf_model_free(&m);
    if (st != TSF_OK) return fprintf(stderr, "%s\n", err.msg), 1;
    printf("made %s/ (config.json + model.safetensors, random weights)\n", dir);
    return 0;
}

/* idx // (n) = the indices of the n largest of v // (K), largest first; returns min(n, K). */
static int top(int *idx, int n, const float *v, int K) {
    int i, j, k;
    for (i = 0; i < n && i < K; i++) {
        idx[i] = -1;
        for (k = 0; k < K; k++) {
            int taken = 0;
            for (j = 0; j < i; j++) taken |= idx[j] == k;
            if (!taken && (idx[i] < 0 || v[k] > v[idx[i]])) idx[i] = k;
        }
    }
    return i;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "tiny-timesformer";
    tsf_model m;
    tsf_clip clip;
    tsf_error err;
    unsigned char *rgb = NULL;
    float *logits = NULL, mx, sum = 0.0f;
    int T, H, W, K, t, i, k, y, x, n, best[5], rc = 1;

    memset(&clip, 0, sizeof clip);
    if (argc < 2 && make_tiny_folder(dir)) return 1;
    if (tsf_model_load(&m, dir, 1, &err) != TSF_OK) return fprintf(stderr, "%s\n", err.msg), 1;
    T = m.cfg.frames, H = W = m.cfg.image_size, K = m.cfg.classes;
    printf("%s: %s, %d frames of %d x %d, %d classes, %zu parameters\n", dir,
           tsf_attention_name(m.cfg.attention), T, W, H, K, m.num_params);
    if (m.cfg.channels != 3) {
        fprintf(stderr, "%s: %d channels; tsf_model_forward_u8 takes RGB\n", dir, m.cfg.channels);
        goto done;
    }

    if (argc > 2) { /* T frames spread evenly over a clip, at the clip's size */
        if (tsf_clip_open(&clip, argv[2], NULL, &err) != TSF_OK) {
            fprintf(stderr, "%s: %s\n", argv[2], err.msg);
            goto done;
        }
        if (clip.h.C != 3) {
            fprintf(stderr, "%s: %d channels, not RGB\n", argv[2], clip.h.C);
            goto done;
        }
        H = clip.h.H, W = clip.h.W;
        if (H != m.cfg.image_size || W != m.cfg.image_size)
            printf("note: frames of %d x %d, the model's are %d x %d (its position embeddings "
                   "are resized)\n",
                   W, H, m.cfg.image_size, m.cfg.image_size);
        if (!(rgb = (unsigned char *)malloc((size_t)T * H * W * 3))) goto oom;
        for (t = 0; t < T; t++) /* frame t*n/T of the n: 0, n/T, 2n/T, ... */
            if (tsf_clip_read_frames(&clip, (int)((long long)t * clip.h.T / T), 1,
                                     rgb + (size_t)t * H * W * 3) != TSF_OK) {
                fprintf(stderr, "%s: read error\n", argv[2]);
                goto done;
            }
        printf("frames: %d of the %d in %s\n", T, clip.h.T, argv[2]);
    } else { /* synthetic frames: a yellow disc moving right across a gradient */
        if (!(rgb = (unsigned char *)malloc((size_t)T * H * W * 3))) goto oom;
        for (t = 0; t < T; t++)
            for (y = 0; y < H; y++)
                for (x = 0; x < W; x++) {
                    unsigned char *px = rgb + (((size_t)t * H + y) * W + x) * 3;
                    int cx = W / 4 + t * W / (2 * T), cy = H / 2;
                    int in = (x - cx) * (x - cx) + (y - cy) * (y - cy) < H * H / 16;
                    px[0] = (unsigned char)(in ? 250 : 255 * x / W);
                    px[1] = (unsigned char)(in ? 220 : 128);
                    px[2] = (unsigned char)(in ? 40 : 255 * y / H);
                }
        printf("frames: %d synthetic frames of %d x %d\n", T, W, H);
    }
    if (!(logits = (float *)malloc((size_t)K * sizeof(float)))) goto oom;

    /* rgb // (B = 1, T, H, W, 3): normalised inside with the model's mean/std and channel order */
    if (tsf_model_forward_u8(&m, rgb, 1, T, H, W, logits) != TSF_OK) {
        fprintf(stderr, "forward failed\n");
        goto done;
    }
    for (mx = logits[0], k = 1; k < K; k++) mx = logits[k] > mx ? logits[k] : mx;
    for (k = 0; k < K; k++) sum += expf(logits[k] - mx);
    n = top(best, 5, logits, K);
    printf("top-%d:\n", n);
    for (i = 0; i < n; i++)
        printf("  %.3f  %s\n", (double)(expf(logits[best[i]] - mx) / sum),
               tsf_model_label(&m, best[i]));
    rc = 0;
    goto done;
oom:
    fprintf(stderr, "out of memory\n");
done:
    free(rgb), free(logits);
    tsf_clip_close(&clip);
    tsf_model_free(&m);
    return rc;
}
