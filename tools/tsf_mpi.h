/* tsf_mpi.h - data-parallel tsf train and tsf eval over MPI, for build/tsf-mpi (make MPI=1:
   tools/tsf.c built by mpicc with -DTSF_MPI). Included by tsf_train.c. Without TSF_MPI
   (build/tsf) every function here is the one-process version, nothing here touches MPI, and
   the program is unchanged; the library (timesformer.h) never knows MPI at all.

     mpirun -np N build/tsf-mpi train ...    N processes ("ranks"), one model each

   The split. --batch is the global batch: every rank takes the same epoch order (the same
   generator) and, of each micro-batch of B clips, its share tsf_shard(B, rank, N): it loads
   only those clips (each still sampled from its own seed, so a clip looks the same whichever
   rank loads it), and its d loss / d logits is made that of the mean over all B clips, so
   that the sum of the ranks' gradients is the gradient of the whole micro-batch. Validation,
   tsf eval and the check of the clips before training split the clips the same way.

   The sum (dp_sum). Gradients are summed in an order fixed by N alone, never by timing, and
   every rank gets the same bits: the buffer goes in rounds of at most DP_ROUND floats, each
   round cut into N chunks (tsf_shard); MPI_Alltoallv gives rank k chunk k of every rank; rank
   k adds those N copies in rank order, ((g0 + g1) + g2) + ..., element by element; then
   MPI_Allgatherv copies the sums to every rank (a copy, not a computation). A rank sends and
   receives 2 (N-1)/N of the buffer, as in a ring all-reduce (bandwidth-optimal), with one
   round of scratch memory. MPI_Allreduce was not used: MPI leaves its order of additions to
   the implementation (it may change with the message size, the number of ranks, the network
   and the algorithm a library picks at run time) and does not promise every rank the same
   bits, and this program promises both: a run repeated with the same N writes the same
   bytes, and all ranks hold bit-identical weights after every step. Gathering every rank's
   whole buffer and adding them in order would promise the same but move N - 1 buffers into
   every rank.

   Overlap (dp_attach; --fused-sgd). tsf_model_backward_sgd hands each block's finished
   gradient to m->grad_hook before its update; with m->grad_wait set as well (timesformer.h)
   the hook only starts the sum and the library goes on with the next block's backward,
   calling grad_wait before the update. Here the hook queues the range for a communication
   thread, which runs dp_sum on it (the same rounds, the same order of additions, so the same
   bits) while the main thread computes; grad_wait blocks until the thread has finished that
   block. Nonblocking collectives (MPI_Ialltoallv, ...) started in the hook would not do: Open
   MPI moves their data only inside MPI calls, and none is made during a block's backward; the
   thread makes those calls. MPI runs at MPI_THREAD_SERIALIZED: while the thread works, the
   main thread makes no MPI call (every sum of a step is waited for before tsf_model_
   backward_sgd returns, before any other communication). The sum of block l then hides
   behind block l-1's backward, block 0's behind the embeddings' backward (short), and the
   rest's (embeddings, head) behind nothing. TSF_MPI_OVERLAP=0 turns it off (the hook sums at
   once, as without grad_wait; the same bytes either way); so does an MPI without
   MPI_THREAD_SERIALIZED.

   Agreement (dp_agree). Whatever can fail on one rank alone (a clip that does not load, a
   file a machine cannot see, memory, a NaN loss on its share) is followed by a small
   all-gather of every rank's outcome, so that all ranks go on or all stop together, at the
   same point. The messages of the ranks after the first are kept (tt_message_hook) and
   printed by rank 0 at that point, once, with the rank: "tsf: rank 1: error: ...". A rank
   that dies (killed, out of memory in an allocation that exits) cannot take part: mpirun
   then stops the others and says which rank died and how, and a message it kept is printed
   as it exits. The run's files are written by rank 0 alone, atomically as always, so the
   last checkpoint stays loadable whatever happens.

   Ctrl-C: mpirun sends the ranks SIGTERM, then SIGKILL after odls_base_sigkill_timeout
   seconds (1 by default), usually before a step and a save can finish (the checkpoint on
   disk stays whole). SIGUSR1 to mpirun reaches every rank and works as Ctrl-C does in tsf:
   the ranks finish the step, rank 0 saves, all stop (exit status 138).

   Test and benchmark hooks (environment): TSF_TEST_HASH=1 makes every rank print a hash of
   its weights and SGD momentum after every SGD step ("tsf: rank R: step S: weights HASH", on
   stderr); TSF_MPI_STATS=1 makes rank 0 print, at the end of tsf train, the floats summed a
   step and, as one line of JSON, the time of a step, its CPU time, the time of its sums and
   how long the training thread was blocked by them (dp_print_stats; bench/bench_mpi.sh
   reads it). */
#ifndef TSF_MPI_H
#define TSF_MPI_H

#ifdef TSF_MPI
/* mpi.h after the system headers (tsf_tools.h) */
#include <mpi.h>
#include <pthread.h>
#endif

static int dp_rank = 0, dp_world = 1; /* this process's rank, the number of ranks */

/* Time spent in dp_sum, and floats summed; the time the training thread was blocked by sums
   (all of dp_sum when it runs there; with overlap, its time in dp_grad_wait); each SGD step's
   time and those parts of it (TSF_MPI_STATS). */
static double dp_sum_seconds = 0.0, dp_sum_floats = 0.0, dp_wait_seconds = 0.0;
static double dp_blocked_seconds = 0.0;
static long long dp_sum_calls = 0;
#define DP_STEPS 4096
static double dp_step_ms[DP_STEPS], dp_step_sum_ms[DP_STEPS], dp_step_wait_ms[DP_STEPS];
static double dp_step_blocked_ms[DP_STEPS], dp_blocked_mark = 0.0;
static double dp_step_cpu_ms[DP_STEPS], dp_sum_mark = 0.0, dp_wait_mark = 0.0, dp_cpu_mark = 0.0;
static int dp_steps = 0, dp_stats = -1; /* TSF_MPI_STATS set (-1: not looked at yet) */
static int dp_overlapped = 0;           /* 1: the sums of --fused-sgd ran in a thread (dp_attach) */

TT_FN int dp_stats_on(void) {
    if (dp_stats < 0) dp_stats = getenv("TSF_MPI_STATS") && *getenv("TSF_MPI_STATS");
    return dp_stats;
}

/* A rank's share [*lo, *lo + *count) of n items. */
TT_FN void dp_shard(long long n, long long *lo, long long *count) {
    tsf_shard(n, dp_rank, dp_world, lo, count);
}

/* FNV-1a over bytes, continued from h. */
TT_FN unsigned long long dp_fnv(unsigned long long h, const void *p, size_t n) {
    const unsigned char *b = (const unsigned char *)p;
    size_t i;
    for (i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ULL;
    return h;
}

/* TSF_TEST_HASH: this rank's weights and momentum hashed after SGD step `step`. */
TT_FN void dp_test_hash(const tsf_model *m, long long step) {
    static int on = -1;
    unsigned long long h = 14695981039346656037ULL;
    if (on < 0) on = getenv("TSF_TEST_HASH") && *getenv("TSF_TEST_HASH");
    if (!on) return;
    h = dp_fnv(h, m->param_memory, m->param_floats * sizeof(float));
    if (m->momentum_memory) h = dp_fnv(h, m->momentum_memory, m->param_floats * sizeof(float));
    fprintf(stderr, "tsf: rank %d: step %lld: weights %016llx\n", dp_rank, step, h);
}

/* This process's CPU time (all its threads), in seconds. */
TT_FN double dp_cpu_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* An SGD step took `seconds` (the sums since the last call were part of it; the CPU time is
   counted from the last call, so at an epoch's end it includes validation and saves). */
TT_FN void dp_step_done(double seconds) {
    double cpu = dp_cpu_seconds();
    if (dp_steps < DP_STEPS) {
        dp_step_cpu_ms[dp_steps] = 1e3 * (cpu - dp_cpu_mark);
        dp_step_ms[dp_steps] = 1e3 * seconds;
        dp_step_wait_ms[dp_steps] = 1e3 * (dp_wait_seconds - dp_wait_mark);
        dp_step_blocked_ms[dp_steps] = 1e3 * (dp_blocked_seconds - dp_blocked_mark);
        dp_step_sum_ms[dp_steps++] = 1e3 * (dp_sum_seconds - dp_sum_mark);
    }
    dp_sum_mark = dp_sum_seconds, dp_wait_mark = dp_wait_seconds, dp_cpu_mark = cpu;
    dp_blocked_mark = dp_blocked_seconds;
}

static int dp_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The median of v[0..n), sorted in place (0 when n is 0). */
TT_FN double dp_median(double *v, int n) {
    if (n <= 0) return 0.0;
    qsort(v, (size_t)n, sizeof *v, dp_cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* TSF_MPI_STATS: what the steps and the sums cost (rank 0, at the end of tsf train): one line
   of JSON; medians over the steps after the first (which also touches fresh memory), and the
   fastest step; "cpu_ms" is this process's CPU time a step (all its threads; rank 0's), which
   other work on a shared machine changes less than the wall-clock time. With TSF_MPI_STATS every
   sum begins with a barrier, timed apart ("wait_ms": ranks waiting for each other, as one was
   slower or descheduled), so that "sum_ms" is the sums' own time (moving and adding the floats).
   "blocked_ms": the time the training thread could not compute because of the sums (both
   parts; with overlap only its waits in dp_grad_wait: the rest was hidden); "overlap": 1 when
   the sums ran in the thread. */
TT_FN void dp_print_stats(long long steps) {
    int k = dp_steps > 1 ? 1 : 0;
    double fastest = 0.0;
    if (!dp_stats_on() || dp_rank != 0 || steps <= 0) return;
    for (fastest = dp_step_ms[k]; k < dp_steps; k++)
        fastest = dp_step_ms[k] < fastest ? dp_step_ms[k] : fastest;
    k = dp_steps > 1 ? 1 : 0;
    fprintf(stderr,
            "tsf: sums: %d ranks, %lld SGD steps, %.0f floats (%.1f MB) summed a step in %.1f "
            "calls, %.2f ms a step\n",
            dp_world, steps, dp_sum_floats / (double)steps, 4e-6 * dp_sum_floats / (double)steps,
            (double)dp_sum_calls / (double)steps, 1e3 * dp_sum_seconds / (double)steps);
    fprintf(stderr,
            "tsf: stats {\"ranks\": %d, \"steps\": %lld, \"step_ms\": %.2f, \"step_ms_min\": %.2f, "
            "\"cpu_ms\": %.2f, \"sum_ms\": %.2f, \"wait_ms\": %.2f, \"blocked_ms\": %.2f, "
            "\"overlap\": %d, \"first_step_ms\": %.2f, \"floats_summed\": %.0f, "
            "\"sum_calls\": %.1f}\n",
            dp_world, steps, dp_median(dp_step_ms + k, dp_steps - k), fastest,
            dp_median(dp_step_cpu_ms + k, dp_steps - k),
            dp_median(dp_step_sum_ms + k, dp_steps - k),
            dp_median(dp_step_wait_ms + k, dp_steps - k),
            dp_median(dp_step_blocked_ms + k, dp_steps - k), dp_overlapped,
            dp_steps ? dp_step_ms[0] : 0.0, dp_sum_floats / (double)steps,
            (double)dp_sum_calls / (double)steps);
}

#ifdef TSF_MPI

#ifndef DP_ROUND
#define DP_ROUND (1 << 22) /* floats summed a round: 16 MB of scratch */
#endif
#define DP_MSG 2048 /* bytes of a rank's kept messages */
#define DP_VALS 4   /* values summed by dp_agree */

static char dp_msg[DP_MSG]; /* errors since the last agreement ("text\n" each) */
static int dp_overlap = 0;  /* 1: the sums of --fused-sgd may run in a thread (dp_attach) */
static size_t dp_msg_len = 0;
static float *dp_scratch = NULL;

/* tt_message_hook with several ranks: rank 0 prints as always and keeps its errors (to tell
   which of the others' are the same); the other ranks keep their errors for rank 0 and drop
   their warnings (every warning comes from what all ranks share, or from sums that rank 0
   prints itself). */
static void dp_on_message(const char *kind, const char *text) {
    size_t n = strlen(text);
    if (dp_rank == 0) fprintf(stderr, "%s: %s: %s\n", tt_prog, kind, text);
    if (strcmp(kind, "error") != 0 || dp_msg_len + n + 2 > DP_MSG) return;
    memcpy(dp_msg + dp_msg_len, text, n);
    dp_msg_len += n;
    dp_msg[dp_msg_len++] = '\n';
    dp_msg[dp_msg_len] = 0;
}

/* At exit: errors no agreement delivered (a rank that exits on its own) go to stderr. */
static void dp_at_exit(void) {
    const char *p = dp_msg;
    if (dp_rank == 0 || !dp_msg_len) return;
    while (*p) {
        const char *nl = strchr(p, '\n');
        fprintf(stderr, "%s: rank %d: error: %.*s\n", tt_prog, dp_rank, (int)(nl - p), p);
        p = nl + 1;
    }
    dp_msg_len = 0, dp_msg[0] = 0;
}

/* Rank 0 prints the kept errors of the ranks that failed (code != 0), each text once: a text
   that rank 0 printed itself, or that a lower rank had, is not printed again. */
static void dp_deliver(const double *rec, int width) {
    char *all = NULL;
    int r, k;
    if (dp_rank == 0) all = (char *)tt_malloc((size_t)dp_world * DP_MSG);
    MPI_Gather(dp_msg, DP_MSG, MPI_CHAR, all, DP_MSG, MPI_CHAR, 0, MPI_COMM_WORLD);
    if (dp_rank == 0) { /* all[0]: rank 0's own, printed already */
        for (r = 1; r < dp_world; r++) {
            const char *t = all + (size_t)r * DP_MSG, *p;
            int same = 0;
            if (rec[(size_t)r * width] == 0.0 || !t[0]) continue;
            for (k = 0; k < r && !same; k++) same = strcmp(t, all + (size_t)k * DP_MSG) == 0;
            if (same) continue;
            for (k = r + 1; k < dp_world; k++) same += strcmp(t, all + (size_t)k * DP_MSG) == 0;
            for (p = t; *p;) {
                const char *nl = strchr(p, '\n');
                if (same)
                    fprintf(stderr, "%s: rank %d (and %d other rank%s): error: %.*s\n", tt_prog, r,
                            same, same == 1 ? "" : "s", (int)(nl - p), p);
                else
                    fprintf(stderr, "%s: rank %d: error: %.*s\n", tt_prog, r, (int)(nl - p), p);
                p = nl + 1;
            }
        }
        fflush(stderr);
    }
    free(all);
}

/* Every rank's code (0: fine) and values vals[0..n): vals becomes their sums in rank order.
   Returns the code of the first rank whose code is not 0 (0: none), after rank 0 printed the
   errors of the ranks that failed. */
static double dp_exchange(double code, double *vals, int n) {
    const int width = 1 + DP_VALS;
    double mine[1 + DP_VALS], *rec, first = 0.0;
    int r, k, bad = 0;
    memset(mine, 0, sizeof mine);
    mine[0] = code;
    for (k = 0; k < n && k < DP_VALS; k++) mine[1 + k] = vals[k];
    rec = (double *)tt_malloc((size_t)dp_world * width * sizeof *rec);
    MPI_Allgather(mine, width, MPI_DOUBLE, rec, width, MPI_DOUBLE, MPI_COMM_WORLD);
    for (k = 0; k < n && k < DP_VALS; k++) {
        vals[k] = rec[1 + k];
        for (r = 1; r < dp_world; r++) vals[k] += rec[(size_t)r * width + 1 + k];
    }
    for (r = 0; r < dp_world; r++)
        if (rec[(size_t)r * width] != 0.0) {
            if (!bad) first = rec[(size_t)r * width];
            bad++;
        }
    if (bad) dp_deliver(rec, width);
    dp_msg_len = 0, dp_msg[0] = 0; /* delivered, or nothing went wrong */
    free(rec);
    return first;
}

/* MPI, once, before anything else; the ranks after 0 print nothing on stdout. Returns 1. */
TT_FN int dp_init(int *argc, char ***argv) {
    int provided;
    const char *ov = getenv("TSF_MPI_OVERLAP");
    /* MPI from one thread at a time: the main one, or the sums' (dp_attach) */
    MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &dp_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &dp_world);
    dp_overlap = provided >= MPI_THREAD_SERIALIZED && !(ov && strcmp(ov, "0") == 0);
    if (dp_world > 1) {
        tt_message_hook = dp_on_message;
        atexit(dp_at_exit);
        if (dp_rank > 0 && !freopen("/dev/null", "w", stdout)) fclose(stdout);
    }
    return 1;
}

static void dp_thread_stop(void);

TT_FN void dp_finish(void) {
    fflush(stdout);
    dp_thread_stop();
    free(dp_scratch), dp_scratch = NULL;
    MPI_Finalize();
}

/* Several ranks run tsf train and tsf eval only (the others would write the same files N
   times). Returns 1 when argv's command may run, else 0 after saying so. */
TT_FN int dp_command_ok(int argc, char **argv) {
    if (dp_world == 1 || argc < 2 || strcmp(argv[1], "train") == 0 || strcmp(argv[1], "eval") == 0)
        return 1;
    if (dp_rank == 0)
        fprintf(stderr,
                "%s: error: tsf-mpi runs train and eval on several ranks; %s runs in one process: "
                "use build/tsf, or mpirun -np 1\n",
                tt_prog, argv[1]);
    return 0;
}

/* 1 when every rank's ok is 1, else 0 on every rank (rank 0 has printed the others' errors).
   vals[0..n) (may be NULL, n <= DP_VALS) become their sums over the ranks, in rank order. */
TT_FN int dp_agree(int ok, double *vals, int n) {
    if (dp_world == 1) return ok;
    return dp_exchange(ok ? 0.0 : 1.0, vals, n) == 0.0;
}

/* A phase's outcome: go on every rank when every rank says go, else the outcome of the first
   rank that does not. */
TT_FN int dp_agree_rc(int rc, int go) {
    double first;
    if (dp_world == 1) return rc;
    first = dp_exchange(rc != go ? (double)rc - (double)go : 0.0, NULL, 0);
    return first == 0.0 ? go : (int)first + go;
}

/* The largest v over the ranks. */
TT_FN int dp_max_int(int v) {
    int m = v;
    if (dp_world > 1) MPI_Allreduce(&v, &m, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return m;
}

/* Rank 0's bytes p[0..n) to every rank. */
TT_FN void dp_bcast(void *p, size_t n) {
    char *b = (char *)p;
    while (dp_world > 1 && n > 0) {
        int k = n > (1u << 30) ? (1 << 30) : (int)n;
        MPI_Bcast(b, k, MPI_BYTE, 0, MPI_COMM_WORLD);
        b += k, n -= (size_t)k;
    }
}

/* The sum of buf // (n) over the ranks, in place, in the fixed order of the top comment.
   thread: called by the sums' thread: the additions without OpenMP (the same bits), and the
   ranks meet first at a barrier polled every 50 us, asleep in between (Open MPI's blocking
   calls spin: waiting for a rank still in its backward pass would take a core from the
   training threads; once all have come, the blocking calls move the data at full speed). */
static void dp_sum_run(float *buf, size_t n, int thread) {
    int *cnt, *dsp, *rcnt, *rdsp, k;
    size_t off;
    double t0;
    if (dp_world == 1 || n == 0) return;
    if (thread) { /* the waiting apart, always */
        MPI_Request req;
        int done = 0;
        struct timespec nap = {0, 50000};
        t0 = MPI_Wtime();
        MPI_Ibarrier(MPI_COMM_WORLD, &req);
        for (MPI_Test(&req, &done, MPI_STATUS_IGNORE); !done;
             MPI_Test(&req, &done, MPI_STATUS_IGNORE))
            nanosleep(&nap, NULL);
        dp_wait_seconds += MPI_Wtime() - t0;
    } else if (dp_stats_on()) { /* TSF_MPI_STATS: the waiting apart (dp_print_stats) */
        t0 = MPI_Wtime();
        MPI_Barrier(MPI_COMM_WORLD);
        dp_wait_seconds += MPI_Wtime() - t0;
    }
    t0 = MPI_Wtime();
    if (!dp_scratch) dp_scratch = (float *)tt_malloc((size_t)DP_ROUND * sizeof(float));
    cnt = (int *)tt_malloc(4 * (size_t)dp_world * sizeof(int));
    dsp = cnt + dp_world, rcnt = dsp + dp_world, rdsp = rcnt + dp_world;
    for (off = 0; off < n; off += DP_ROUND) {
        long long s = (long long)(n - off < DP_ROUND ? n - off : DP_ROUND), lo, c, mlo, mc, i;
        float *seg = buf + off;
        tsf_shard(s, dp_rank, dp_world, &mlo, &mc);
        for (k = 0; k < dp_world; k++) {
            tsf_shard(s, k, dp_world, &lo, &c);
            cnt[k] = (int)c, dsp[k] = (int)lo;        /* chunk k of this round, to rank k      */
            rcnt[k] = (int)mc, rdsp[k] = k * (int)mc; /* this rank's chunk, from rank k     */
        }
        MPI_Alltoallv(seg, cnt, dsp, MPI_FLOAT, dp_scratch, rcnt, rdsp, MPI_FLOAT, MPI_COMM_WORLD);
#if defined(_OPENMP) && !defined(TSF_NO_OPENMP)
#pragma omp parallel for if (!thread && mc > 65536)
#endif
        for (i = 0; i < mc; i++) { /* rank order, each element on its own */
            float acc = dp_scratch[i];
            int j;
            for (j = 1; j < dp_world; j++) acc += dp_scratch[(size_t)j * mc + i];
            seg[mlo + i] = acc;
        }
        MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, seg, cnt, dsp, MPI_FLOAT,
                       MPI_COMM_WORLD);
    }
    free(cnt);
    dp_sum_seconds += MPI_Wtime() - t0, dp_sum_floats += (double)n, dp_sum_calls++;
}

/* The sum over the ranks, from the training thread (it waits for it). */
TT_FN void dp_sum(float *buf, size_t n) {
    double t0 = tt_now();
    dp_sum_run(buf, n, 0);
    if (dp_world > 1 && n > 0) dp_blocked_seconds += tt_now() - t0;
}

/* m->grad_hook of tsf_model_backward_sgd: each finished range of gradient summed over the
   ranks before the library applies its update. */
TT_FN tsf_status dp_grad_hook(void *ctx, float *grad, size_t n, int block) {
    (void)ctx, (void)block;
    dp_sum(grad, n);
    return TSF_OK;
}

/* ---- overlap: the sums' thread ---- */
#define DP_JOBS 256  /* ranges queued at most (a fused step has 2 or 3 under way) */
#define DP_GROUPS 16 /* groups (blocks) begun and not yet waited for, at most */
static struct {
    pthread_t thread;
    int running, stop;
    float *buf[DP_JOBS];
    size_t n[DP_JOBS];
    long long queued, summed;       /* ranges queued, summed (in queue order) */
    int gblock[DP_GROUPS], ngroups; /* groups begun, oldest first: their blocks, */
    long long gend[DP_GROUPS];      /* and how many ranges are queued up to their last */
} dp_q;                             /* (zero: nothing queued, no thread) */
static pthread_mutex_t dp_q_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t dp_q_work = PTHREAD_COND_INITIALIZER; /* a range queued */
static pthread_cond_t dp_q_done = PTHREAD_COND_INITIALIZER; /* a range summed */

/* The sums' thread: the queued ranges, in order, each as dp_sum would (no OpenMP: it must not
   take the training thread's cores). */
static void *dp_thread_main(void *arg) {
    (void)arg;
    pthread_mutex_lock(&dp_q_lock);
    for (;;) {
        float *buf;
        size_t n;
        while (!dp_q.stop && dp_q.summed == dp_q.queued) pthread_cond_wait(&dp_q_work, &dp_q_lock);
        if (dp_q.summed == dp_q.queued) break; /* stopping, nothing left */
        buf = dp_q.buf[dp_q.summed % DP_JOBS], n = dp_q.n[dp_q.summed % DP_JOBS];
        pthread_mutex_unlock(&dp_q_lock);
        dp_sum_run(buf, n, 1);
        pthread_mutex_lock(&dp_q_lock);
        dp_q.summed++;
        pthread_cond_broadcast(&dp_q_done);
    }
    pthread_mutex_unlock(&dp_q_lock);
    return NULL;
}

static void dp_thread_stop(void) {
    if (!dp_q.running) return;
    pthread_mutex_lock(&dp_q_lock);
    dp_q.stop = 1;
    pthread_cond_signal(&dp_q_work);
    pthread_mutex_unlock(&dp_q_lock);
    pthread_join(dp_q.thread, NULL);
    dp_q.running = 0, dp_q.stop = 0;
}

/* m->grad_hook with overlap: the range queued for the sums' thread (started when first
   needed); a range of a block other than the last one begun starts a new group. */
TT_FN tsf_status dp_grad_start(void *ctx, float *grad, size_t n, int block) {
    (void)ctx;
    if (!dp_q.running) {
        if (pthread_create(&dp_q.thread, NULL, dp_thread_main, NULL) != 0) {
            tt_error("cannot start the thread of the sums: %s", strerror(errno));
            return TSF_ERR_ALLOC;
        }
        dp_q.running = 1, dp_overlapped = 1;
    }
    pthread_mutex_lock(&dp_q_lock);
    while (dp_q.queued - dp_q.summed >= DP_JOBS) pthread_cond_wait(&dp_q_done, &dp_q_lock);
    if (!dp_q.ngroups || dp_q.gblock[dp_q.ngroups - 1] != block) {
        if (dp_q.ngroups == DP_GROUPS) { /* (cannot happen: the library waits as it goes) */
            pthread_mutex_unlock(&dp_q_lock);
            return TSF_ERR_ARG;
        }
        dp_q.gblock[dp_q.ngroups++] = block;
    }
    dp_q.buf[dp_q.queued % DP_JOBS] = grad, dp_q.n[dp_q.queued % DP_JOBS] = n;
    dp_q.gend[dp_q.ngroups - 1] = ++dp_q.queued;
    pthread_cond_signal(&dp_q_work);
    pthread_mutex_unlock(&dp_q_lock);
    return TSF_OK;
}

/* m->grad_wait: back once the sums' thread has summed every range of the oldest group (the
   library waits for groups in the order it began them: block). */
TT_FN tsf_status dp_grad_wait(void *ctx, int block) {
    double t0 = tt_now();
    long long end;
    int k;
    (void)ctx;
    pthread_mutex_lock(&dp_q_lock);
    for (k = 0; k < dp_q.ngroups && dp_q.gblock[k] != block; k++) {
    }
    end = k < dp_q.ngroups ? dp_q.gend[k] : dp_q.queued; /* (not found: everything) */
    while (dp_q.summed < end) pthread_cond_wait(&dp_q_done, &dp_q_lock);
    if (k < dp_q.ngroups) {
        memmove(dp_q.gblock + k, dp_q.gblock + k + 1, (size_t)(dp_q.ngroups - k - 1) * sizeof(int));
        memmove(dp_q.gend + k, dp_q.gend + k + 1,
                (size_t)(dp_q.ngroups - k - 1) * sizeof(long long));
        dp_q.ngroups--;
    }
    pthread_mutex_unlock(&dp_q_lock);
    dp_blocked_seconds += tt_now() - t0;
    return TSF_OK;
}

/* The model's hooks for tsf_model_backward_sgd on several ranks: with overlap the sums run in
   their thread (dp_grad_start, dp_grad_wait), else each range is summed at once. */
TT_FN void dp_attach(tsf_model *m) {
    if (dp_world == 1) return;
    m->grad_hook = dp_overlap ? dp_grad_start : dp_grad_hook;
    m->grad_wait = dp_overlap ? dp_grad_wait : NULL;
}

/* Rows [lo, lo + count) of rows // (n, width) are this rank's (dp_shard(n)): rank 0 gets them
   all. */
TT_FN void dp_gather_rows(float *rows, long long n, size_t width) {
    MPI_Datatype row;
    int *cnt, *dsp, k;
    if (dp_world == 1) return;
    cnt = (int *)tt_malloc(2 * (size_t)dp_world * sizeof(int)), dsp = cnt + dp_world;
    for (k = 0; k < dp_world; k++) {
        long long lo, c;
        tsf_shard(n, k, dp_world, &lo, &c);
        cnt[k] = (int)c, dsp[k] = (int)lo;
    }
    MPI_Type_contiguous((int)width, MPI_FLOAT, &row);
    MPI_Type_commit(&row);
    if (dp_rank == 0)
        MPI_Gatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, rows, cnt, dsp, row, 0, MPI_COMM_WORLD);
    else
        MPI_Gatherv(rows + (size_t)dsp[dp_rank] * width, cnt[dp_rank], row, NULL, NULL, NULL, row,
                    0, MPI_COMM_WORLD);
    MPI_Type_free(&row);
    free(cnt);
}

#else /* one process: build/tsf */

TT_FN int dp_init(int *argc, char ***argv) {
    (void)argc, (void)argv;
    return 1;
}
TT_FN void dp_finish(void) {}
TT_FN int dp_command_ok(int argc, char **argv) {
    (void)argc, (void)argv;
    return 1;
}
TT_FN int dp_agree(int ok, double *vals, int n) {
    (void)vals, (void)n;
    return ok;
}
TT_FN int dp_agree_rc(int rc, int go) {
    (void)go;
    return rc;
}
TT_FN int dp_max_int(int v) { return v; }
TT_FN void dp_bcast(void *p, size_t n) { (void)p, (void)n; }
TT_FN void dp_sum(float *buf, size_t n) { (void)buf, (void)n; }
TT_FN tsf_status dp_grad_hook(void *ctx, float *grad, size_t n, int block) {
    (void)ctx, (void)grad, (void)n, (void)block;
    return TSF_OK;
}
TT_FN void dp_attach(tsf_model *m) { (void)m; }
TT_FN void dp_gather_rows(float *rows, long long n, size_t width) {
    (void)rows, (void)n, (void)width;
}

#endif /* TSF_MPI */
#endif /* TSF_MPI_H */
