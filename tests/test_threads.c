/* test_threads.c - the library on several threads at once (reliability, issue 8).

   The library has no global mutable state, so separate models on separate threads must give
   the results they give one after the other, bit for bit. Each job creates its model, trains
   it (stochastic depth and dropout on, so its own generator is used), saves a checkpoint,
   loads it back and trains on, samples a clip file that every job reads, and runs the 8-bit
   forward pass; its result is the hash of every loss, logit and weight.
     threads.two_models   two different models trained at once on two threads, three times,
                          against the same two run one after the other
     threads.four_jobs    four jobs at once (two of them the same job): all four as alone
   Built by tests/run_all.sh plain, with OpenMP (each thread then runs parallel regions of
   its own) and under ThreadSanitizer (clang -fsanitize=thread, no OpenMP).

   Build:  cc -std=c99 -O2 -pthread test_threads.c -o test_threads -lm */
#include "tsf_test.h" /* first: it asks for POSIX */

#define TIMESFORMER_IMPLEMENTATION
#include "../timesformer.h"

#include <pthread.h>
#include <unistd.h>

typedef struct th_job {
    int id;   /* which recipe                                          */
    int slot; /* file names: a job running twice at once needs two     */
    const char *clip_path;
    unsigned long long hash; /* out: everything the job computed        */
    char why[1024];          /* out: the first failure, "" if none       */
} th_job;

static void th_hash(unsigned long long *h, const void *data, size_t n) {
    const unsigned char *p = (const unsigned char *)data;
    size_t i;
    for (i = 0; i < n; i++) *h = (*h ^ p[i]) * 1099511628211ull;
}

#define TH_TRY(call)                                                                               \
    do {                                                                                           \
        tsf_status st_ = (call);                                                                   \
        if (st_ != TSF_OK) {                                                                       \
            snprintf(j->why, sizeof j->why, "%s: %s (%s)", #call, tsf_status_string(st_),          \
                     err.msg);                                                                     \
            goto done;                                                                             \
        }                                                                                          \
    } while (0)

static void *th_run(void *arg) {
    th_job *j = (th_job *)arg;
    tsf_config c;
    tsf_model m, r;
    tsf_train_state ts;
    tsf_sgd o = tsf_sgd_default();
    tsf_error err;
    tsf_rng rng;
    tsf_clip clip;
    tsf_sample_opts so;
    char path[256];
    int step, b, B = 2, T, S, labels[2];
    float *x = NULL, loss;
    unsigned char *rgb = NULL;
    size_t nx, i;
    unsigned long long h = 14695981039346656037ull;
    memset(&c, 0, sizeof c), memset(&m, 0, sizeof m), memset(&r, 0, sizeof r);
    memset(&ts, 0, sizeof ts), memset(&clip, 0, sizeof clip), memset(&err, 0, sizeof err);
    j->why[0] = 0;
    /* job 0: divided 16x16, 4 frames; job 1: joint 12x12, 3 frames, no qkv bias */
    c.image_size = j->id ? 12 : 16, c.patch_size = 4, c.frames = j->id ? 3 : 4;
    c.dim = j->id ? 12 : 16, c.depth = 2, c.heads = 2, c.classes = j->id ? 3 : 5;
    c.mlp_ratio = 2.0f, c.attention = j->id ? TSF_ATTN_JOINT : TSF_ATTN_DIVIDED;
    c.no_qkv_bias = j->id;
    T = c.frames, S = c.image_size;
    nx = (size_t)B * 3 * T * S * S;
    x = (float *)malloc(nx * sizeof *x);
    rgb = (unsigned char *)malloc(nx);
    if (!x || !rgb) {
        snprintf(j->why, sizeof j->why, "out of memory");
        goto done;
    }
    snprintf(path, sizeof path, "/tmp/tsf_threads_%ld_%d_%d.safetensors", (long)getpid(), j->id,
             j->slot);
    tsf_rng_seed(&rng, 100u + (unsigned)j->id);
    TH_TRY(tsf_model_init(&m, &c, B, 200u + (unsigned)j->id));
    TH_TRY(tsf_model_train_init(&m));
    m.drop_path = 0.2f, m.dropout = 0.1f, m.label_smoothing = 0.1f;
    for (step = 0; step < 8; step++) {
        if (step == 4) { /* a checkpoint, trained on from the copy that was loaded back */
            TH_TRY(tsf_checkpoint_save(&m, &ts, path, &err));
            TH_TRY(tsf_checkpoint_load(&r, &ts, path, B, &err));
            tsf_model_free(&m);
            m = r;
            memset(&r, 0, sizeof r);
        }
        for (i = 0; i < nx; i++) x[i] = tsf_rng_normal(&rng);
        for (b = 0; b < B; b++) labels[b] = (int)(tsf_rng_u32(&rng) % (unsigned)c.classes);
        tsf_model_zero_grad(&m);
        TH_TRY(tsf_model_loss(&m, x, labels, B, T, S, S, 1, &loss));
        TH_TRY(tsf_model_backward(&m, NULL));
        TH_TRY(tsf_sgd_step(&m, &o, tsf_lr_cosine(0.05f, step, 2, 8), 1, NULL));
        ts.step++;
        th_hash(&h, &loss, sizeof loss);
    }
    /* a clip file every job reads, sampled into the input of the 8-bit forward pass */
    memset(&so, 0, sizeof so);
    so.frames = T, so.size = S, so.stride = 1, so.test_crops = 1;
    TH_TRY(tsf_clip_open(&clip, j->clip_path, NULL, &err));
    TH_TRY(tsf_clip_sample(x, &clip, &so, &rng, TSF_VIEW_TRAIN));
    th_hash(&h, x, (size_t)3 * T * S * S * sizeof(float));
    for (i = 0; i < nx; i++) rgb[i] = (unsigned char)((i * 31 + (size_t)j->id) & 255);
    TH_TRY(tsf_model_forward_u8(&m, rgb, B, T, S, S, NULL));
    th_hash(&h, m.acts.logits, (size_t)B * c.classes * sizeof(float));
    th_hash(&h, m.param_memory, m.param_floats * sizeof(float));
    th_hash(&h, m.momentum_memory, m.param_floats * sizeof(float));
done:
    j->hash = h;
    tsf_clip_close(&clip);
    tsf_model_free(&m), tsf_model_free(&r);
    unlink(path);
    free(x), free(rgb);
    return NULL;
}

/* A clip file for the jobs to share. */
static int th_clip(char *path, size_t cap) {
    tsf_clip_header h;
    unsigned char px[6 * 20 * 24 * 3];
    size_t i;
    snprintf(path, cap, "/tmp/tsf_threads_%ld.clip", (long)getpid());
    h.T = 6, h.H = 20, h.W = 24, h.C = 3, h.fps = 25.0f, h.label = 0;
    for (i = 0; i < sizeof px; i++) px[i] = (unsigned char)(i * 13 + i / 97);
    return tsf_clip_save(path, &h, px) == TSF_OK;
}

/* n jobs at once; 0 if a thread could not start. */
static int th_together(th_job *jobs, int n) {
    pthread_t t[8];
    int i, started = 0, ok = 1;
    for (i = 0; i < n; i++) {
        if (pthread_create(&t[i], NULL, th_run, &jobs[i]) != 0) {
            ok = 0;
            break;
        }
        started++;
    }
    for (i = 0; i < started; i++) pthread_join(t[i], NULL);
    return ok;
}

static void test_threads_two_models(void) {
    char clip[256];
    th_job alone[2], both[2];
    int k, round;
    REQUIRE(th_clip(clip, sizeof clip));
    for (k = 0; k < 2; k++) { /* one after the other */
        memset(&alone[k], 0, sizeof alone[k]);
        alone[k].id = k, alone[k].clip_path = clip;
        th_run(&alone[k]);
        if (!CHECK(alone[k].why[0] == 0)) printf("    job %d: %s\n", k, alone[k].why);
    }
    CHECK(alone[0].hash != alone[1].hash);
    for (round = 0; round < 3; round++) { /* at once, a few times (other interleavings) */
        for (k = 0; k < 2; k++) {
            memset(&both[k], 0, sizeof both[k]);
            both[k].id = k, both[k].clip_path = clip;
        }
        if (!CHECK(th_together(both, 2))) break;
        for (k = 0; k < 2; k++) {
            if (!CHECK(both[k].why[0] == 0)) printf("    job %d: %s\n", k, both[k].why);
            if (!CHECK(both[k].hash == alone[k].hash))
                printf("    round %d: model %d trained beside the other differs from alone\n",
                       round, k);
        }
    }
    unlink(clip);
}

static void test_threads_four_jobs(void) {
    char clip[256];
    th_job alone[2], jobs[4];
    int k;
    REQUIRE(th_clip(clip, sizeof clip));
    for (k = 0; k < 2; k++) {
        memset(&alone[k], 0, sizeof alone[k]);
        alone[k].id = k, alone[k].clip_path = clip;
        th_run(&alone[k]);
        CHECK(alone[k].why[0] == 0);
    }
    for (k = 0; k < 4; k++) {
        memset(&jobs[k], 0, sizeof jobs[k]);
        jobs[k].id = k % 2, jobs[k].slot = k / 2, jobs[k].clip_path = clip;
    }
    if (CHECK(th_together(jobs, 4)))
        for (k = 0; k < 4; k++) {
            if (!CHECK(jobs[k].why[0] == 0)) printf("    job %d: %s\n", k, jobs[k].why);
            CHECK(jobs[k].hash == alone[k % 2].hash);
        }
    unlink(clip);
}

static const tsft_case tests[] = {
    {"threads.two_models", test_threads_two_models},
    {"threads.four_jobs", test_threads_four_jobs},
};

int main(int argc, char **argv) { return tsft_main(tests, TSFT_COUNT(tests), argc, argv); }
