/* test_soak.c - a long training run (reliability, issue 8).

   A tiny divided-attention model trains for --steps SGD steps (default 20000) on synthetic
   clips drawn from the run's data generator (tsf_train_state.data_rng), with stochastic depth
   and a cosine schedule, saving a checkpoint every --every steps (default 1000) and at step
   100. It checks:
     soak.train    every step succeeds and the loss falls (mean of the last 100 steps below
                   half the mean of the first 100)
     soak.memory   after step 100 (the first checkpoint written) the library's live heap
                   (blocks and bytes, counted through TSF_MALLOC/TSF_FREE) never changes, and
                   the process's resident set grows by at most 1 MiB to the end; the RSS at
                   step 100, its maximum afterwards and at the end are printed
     soak.resume   a run resumed from a checkpoint taken at a random step (drawn from --seed;
                   without it the seed is random and printed) gives the same loss at every
                   later step, bit for bit, and the same final weights and momentum
   Output: the numbers, then [PASS]/[FAIL] lines and "N passed, M failed" (tests/run_all.sh
   runs a short version, --steps 1500 --every 500 --seed 1; make soak runs the full one).

   Build:  cc -std=c99 -O2 -march=native test_soak.c -o test_soak -lm
   Run:    ./test_soak [--steps N] [--every K] [--seed S] [--dir DIR] */
#include "tsf_test.h" /* first: it asks for POSIX */

#include <stddef.h>

/* The library's live heap. Test-only state. */
static long sk_live_blocks;
static long long sk_live_bytes;

static void *sk_malloc(size_t n) {
    size_t *p = (size_t *)malloc(n + 16); /* the size in front, data 16-byte aligned */
    if (!p) return NULL;
    p[0] = n;
    sk_live_blocks++, sk_live_bytes += (long long)n;
    return (char *)p + 16;
}

static void sk_free(void *q) {
    size_t *p;
    if (!q) return;
    p = (size_t *)(void *)((char *)q - 16);
    sk_live_blocks--, sk_live_bytes -= (long long)p[0];
    free(p);
}

#define TSF_MALLOC(sz, ctx) ((void)(ctx), sk_malloc(sz))
#define TSF_FREE(p, ctx) ((void)(ctx), sk_free(p))
#define TIMESFORMER_IMPLEMENTATION
#include "../timesformer.h"

#include <unistd.h>

#define SK_B 4
#define SK_T 2
#define SK_S 8

/* The resident set size in KiB (Linux), or -1. */
static long sk_rss_kib(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = -1, size;
    if (!f) return -1;
    if (fscanf(f, "%ld %ld", &size, &pages) != 2) pages = -1;
    fclose(f);
    return pages < 0 ? -1 : pages * (sysconf(_SC_PAGESIZE) / 1024);
}

/* A batch from the run's data generator: class k is a stripe pattern of its own frequency
   drifting k+1 pixels a frame, under noise. */
static void sk_batch(tsf_rng *r, float *x, int *labels, int K) {
    int b, c, t, h, w;
    for (b = 0; b < SK_B; b++) {
        int k = (int)(tsf_rng_u32(r) % (unsigned)K);
        labels[b] = k;
        for (c = 0; c < 3; c++)
            for (t = 0; t < SK_T; t++)
                for (h = 0; h < SK_S; h++)
                    for (w = 0; w < SK_S; w++)
                        *x++ = 0.8f * sinf((0.5f + 0.6f * (float)k) * (float)(w + (k + 1) * t) +
                                           0.3f * (float)(h * c)) +
                               0.5f * tsf_rng_normal(r);
    }
}

/* One step of the run: clear, loss, backward, SGD. */
static tsf_status sk_step(tsf_model *m, tsf_train_state *ts, long long steps, float *loss) {
    static float x[SK_B * 3 * SK_T * SK_S * SK_S];
    int labels[SK_B];
    tsf_sgd o = tsf_sgd_default();
    tsf_status st;
    sk_batch(&ts->data_rng, x, labels, m->cfg.classes);
    tsf_model_zero_grad(m);
    if ((st = tsf_model_loss(m, x, labels, SK_B, SK_T, SK_S, SK_S, 1, loss)) != TSF_OK ||
        (st = tsf_model_backward(m, NULL)) != TSF_OK)
        return st;
    st = tsf_sgd_step(m, &o, tsf_lr_cosine(0.05f, ts->step, 100, steps), 1, NULL);
    if (st == TSF_OK) ts->step++;
    return st;
}

static int sk_passed, sk_failed;
static void sk_report(int ok, const char *name, const char *why) {
    if (ok)
        printf("[PASS] %s\n", name), sk_passed++;
    else
        printf("[FAIL] %s: %s\n", name, why), sk_failed++;
    fflush(stdout);
}

int main(int argc, char **argv) {
    long long steps = 20000, every = 1000, seed = -1, resume_at, i;
    const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    char ckpt[512], rckpt[512], why[1024];
    tsf_config cfg;
    tsf_model m, r;
    tsf_train_state ts, rts;
    tsf_error err;
    tsf_rng pick;
    float *losses, loss = 0.0f;
    double t0 = tsft_now_ms(), first = 0, last = 0;
    long rss100 = -1, rss_max = -1, rss_end, blocks100 = 0, changed_at = -1;
    long long bytes100 = 0;
    int train_ok = 1, resume_ok = 1, mismatch = -1;
    tsf_status st = TSF_OK;
    for (i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--steps") == 0)
            steps = atoll(argv[i + 1]);
        else if (strcmp(argv[i], "--every") == 0)
            every = atoll(argv[i + 1]);
        else if (strcmp(argv[i], "--seed") == 0)
            seed = atoll(argv[i + 1]);
        else if (strcmp(argv[i], "--dir") == 0)
            dir = argv[i + 1];
        else
            break;
    }
    if (i < argc || steps < 300 || every < 1) {
        fprintf(stderr, "usage: test_soak [--steps N >= 300] [--every K] [--seed S] [--dir DIR]\n");
        return 2;
    }
    if (seed < 0)
        seed =
            (long long)(((unsigned long long)time(NULL) ^ (unsigned long long)getpid()) % 1000000);
    printf("soak: seed %lld (again: --seed %lld), %lld steps, a checkpoint every %lld\n", seed,
           seed, steps, every);
    snprintf(ckpt, sizeof ckpt, "%s/tsf_soak_%ld.safetensors", dir, (long)getpid());
    snprintf(rckpt, sizeof rckpt, "%s/tsf_soak_%ld_resume.safetensors", dir, (long)getpid());
    tsf_rng_seed(&pick, (unsigned long long)seed);
    resume_at = 101 + (long long)(tsf_rng_u32(&pick) % (unsigned)(steps - 102)); /* 101..N-2 */
    losses = (float *)calloc((size_t)steps, sizeof *losses);
    if (!losses) return 2;

    memset(&cfg, 0, sizeof cfg);
    cfg.image_size = SK_S, cfg.patch_size = 4, cfg.frames = SK_T, cfg.dim = 16, cfg.depth = 2;
    cfg.heads = 2, cfg.classes = 3, cfg.mlp_ratio = 2.0f, cfg.attention = TSF_ATTN_DIVIDED;
    memset(&m, 0, sizeof m), memset(&r, 0, sizeof r), memset(&ts, 0, sizeof ts);
    tsf_rng_seed(&ts.data_rng, (unsigned long long)seed + 1);
    if (tsf_model_init(&m, &cfg, SK_B, (unsigned long long)seed) != TSF_OK ||
        tsf_model_train_init(&m) != TSF_OK)
        return 2;
    m.drop_path = 0.1f;

    /* ---- the run ---- */
    for (i = 0; i < steps; i++) {
        if ((st = sk_step(&m, &ts, steps, &loss)) != TSF_OK) {
            snprintf(why, sizeof why, "step %lld: %s", i + 1, tsf_status_string(st));
            train_ok = 0;
            break;
        }
        losses[i] = loss;
        if (ts.step == 100 || ts.step % every == 0 || ts.step == resume_at) {
            if ((st = tsf_checkpoint_save(&m, &ts, ts.step == resume_at ? rckpt : ckpt, &err))) {
                snprintf(why, sizeof why, "checkpoint at step %lld: %s", ts.step, err.msg);
                train_ok = 0;
                break;
            }
        }
        if (ts.step == 100) {
            rss100 = rss_max = sk_rss_kib();
            blocks100 = sk_live_blocks, bytes100 = sk_live_bytes;
        } else if (ts.step > 100) {
            long rss = sk_rss_kib();
            if (rss > rss_max) rss_max = rss;
            if (changed_at < 0 && (sk_live_blocks != blocks100 || sk_live_bytes != bytes100))
                changed_at = (long)ts.step;
        }
        if (ts.step % (steps / 10) == 0)
            printf("step %6lld  loss %.4f  rss %ld KiB  library heap %ld blocks %lld bytes\n",
                   ts.step, (double)loss, sk_rss_kib(), sk_live_blocks, sk_live_bytes);
    }
    rss_end = sk_rss_kib();
    for (i = 0; i < 100 && train_ok; i++)
        first += (double)losses[i] / 100.0, last += (double)losses[steps - 1 - i] / 100.0;
    printf("soak: %lld steps in %.1f s; mean loss of the first 100 steps %.4f, of the last 100 "
           "%.4f\n",
           ts.step, (tsft_now_ms() - t0) / 1000.0, first, last);
    printf("soak: RSS at step 100 %ld KiB, largest after it %ld KiB (%+ld KiB), at the end %ld "
           "KiB; library heap %ld blocks, %lld bytes from step 100 to the end%s\n",
           rss100, rss_max, rss_max - rss100, rss_end, blocks100, bytes100,
           changed_at < 0 ? " (unchanged)" : " (CHANGED)");
    if (train_ok && !(last < first / 2)) {
        snprintf(why, sizeof why, "the loss did not fall: %.4f -> %.4f", first, last);
        train_ok = 0;
    }
    sk_report(train_ok, "soak.train", why);
    snprintf(why, sizeof why, "library heap changed at step %ld; RSS %ld -> %ld KiB", changed_at,
             rss100, rss_max);
    sk_report(train_ok && changed_at < 0 && rss100 > 0 && rss_max - rss100 <= 1024, "soak.memory",
              why);

    /* ---- resumed at a random step ---- */
    t0 = tsft_now_ms();
    why[0] = 0;
    if (!train_ok || (st = tsf_checkpoint_load(&r, &rts, rckpt, SK_B, &err)) != TSF_OK) {
        snprintf(why, sizeof why, "cannot load the checkpoint of step %lld: %s", resume_at,
                 train_ok ? err.msg : "the run failed");
        resume_ok = 0;
    } else if (rts.step != resume_at) {
        snprintf(why, sizeof why, "the checkpoint is of step %lld, not %lld", rts.step, resume_at);
        resume_ok = 0;
    }
    for (i = resume_at; resume_ok && i < steps; i++) {
        if ((st = sk_step(&r, &rts, steps, &loss)) != TSF_OK) {
            snprintf(why, sizeof why, "resumed step %lld: %s", i + 1, tsf_status_string(st));
            resume_ok = 0;
        } else if (mismatch < 0 && memcmp(&loss, &losses[i], sizeof loss) != 0) {
            mismatch = (int)i;
            snprintf(why, sizeof why, "step %lld: loss %.9g resumed, %.9g in the run", i + 1,
                     (double)loss, (double)losses[i]);
            resume_ok = 0;
        }
    }
    if (resume_ok &&
        (memcmp(r.param_memory, m.param_memory, m.param_floats * sizeof(float)) ||
         memcmp(r.momentum_memory, m.momentum_memory, m.param_floats * sizeof(float)) ||
         r.sgd_steps != m.sgd_steps)) {
        snprintf(why, sizeof why, "the final weights or momentum differ");
        resume_ok = 0;
    }
    if (resume_ok)
        printf("soak: resumed at step %lld: the losses of steps %lld..%lld and the final weights "
               "and momentum are bit-identical (%.1f s)\n",
               resume_at + 1, resume_at + 1, steps, (tsft_now_ms() - t0) / 1000.0);
    sk_report(resume_ok, "soak.resume", why);

    tsf_model_free(&m), tsf_model_free(&r);
    unlink(ckpt), unlink(rckpt);
    free(losses);
    if (sk_live_blocks != 0) printf("note: %ld library blocks still live\n", sk_live_blocks);
    printf("%d passed, %d failed\n", sk_passed, sk_failed);
    return sk_failed != 0;
}
