/* tsf_cv.c - `tsf cv`, included by tsf.c after tsf_train.c: it runs cmd_train and ev_run.

   tsf cv --data DIR --out OUT [tsf train options] [--best] [--no-final]   (cv_usage() below)
     K-fold cross-validation on a dataset folder written by mkdataset --folds K (classes.txt,
     fold_1.csv .. fold_K.csv, maybe test.csv):
       1. for each fold k, the run OUT/fold_k: tsf train --data DIR --fold k (trains on the
          other folds, validates on fold k) with the options given; a run that is there already
          is resumed (--resume: finished runs have nothing to do), so running the same command
          again after a crash or Ctrl-C goes on where it stopped
       2. each fold's model (model.safetensors; with --best model_best.safetensors, the epoch
          best on validation) evaluated on its fold as tsf eval does (--temporal-views,
          --spatial-crops: by default the paper's 1 x 3 views)
       3. the mean and the sample standard deviation (n - 1) of top-1 and top-5 over the folds
       4. unless --no-final, the run OUT/final: tsf train --data DIR --all-folds, stopped after
          E epochs, E the rounded mean of the epochs of the models scored in 2 (so --epochs
          unless --best or --early-stop chose earlier ones; the schedule stays that of
          --epochs), then its model evaluated on DIR/test.csv when there is one
     Files: OUT/fold_1 .. OUT/fold_K and OUT/final (tsf train's run folders), OUT/cv.txt (the
     lines cv prints), OUT/cv.csv ("fold,epoch,clips,top1,top5": a row per fold, then mean,
     std and test), OUT/test/ (tsf eval --out's files for the test: eval.txt, predictions.csv,
     confusion.csv, confusion.svg). Every file is written as NAME.tmp and renamed.
     Exit status: 0 done, 1 an error (a fold's run, its data), 2 bad usage, 130 or 143 after
     Ctrl-C or SIGTERM (the running fold saved its checkpoint; the same command resumes).
     The runs are tsf train's, in this process: the lock, the kill-safe saves and the test hook
     are theirs (TSF_TEST_KILL_AT counts the points of all the runs in turn, so
     tests/test_cli_cv.sh stops a cv inside any of them and checks that the same command then
     leaves OUT byte-identical to an uninterrupted cv's). */

/* The options of tsf cv itself; every other option goes to tsf train. */
static const tr_def cv_defs[] = {
    {"--data", 'p', TR_OFF(data), 0, 0, 0},
    {"--out", 'p', TR_OFF(out), 0, 0, 0},
    {"--best", 'b', TR_OFF(best), 0, 0, 0},
    {"--temporal-views", 'i', TR_OFF(temporal_views), 1, 1024, 0},
    {"--spatial-crops", 'i', TR_OFF(spatial_crops), 1, 3, 0},
    {"--no-final", 'b', TR_OFF(no_final), 0, 0, 0},
    {NULL, 0, 0, 0, 0, 0},
};

/* tsf train options that tsf cv sets itself. */
static const char *const cv_own_train[] = {"--train",      "--val",        "--classes",
                                           "--fold",       "--all-folds",  "--resume",
                                           "--stop-after", "--stop-epoch", NULL};

static void cv_usage(FILE *f) {
    fprintf(
        f,
        "usage: tsf cv --data DIR --out OUT [tsf train options] [--best] [--no-final]\n"
        "\n"
        "K-fold cross-validation on DIR from mkdataset --folds K (classes.txt, fold_1.csv ..\n"
        "fold_K.csv, maybe test.csv). For each fold k: tsf train --data DIR --fold k --out\n"
        "OUT/fold_k (the other folds train, fold k validates) and the model's top-1 and top-5\n"
        "on fold k, as tsf eval measures them; then their mean and standard deviation over\n"
        "the folds; then a model trained on all folds (OUT/final) and its score on\n"
        "DIR/test.csv. Runs already in OUT are resumed: after a crash or Ctrl-C the same\n"
        "command goes on. Writes OUT/cv.txt (what it prints), OUT/cv.csv and OUT/test/.\n"
        "\n"
        "  --data DIR             the dataset folder (required)\n"
        "  --out OUT              the folder of the runs and results (required)\n"
        "  --best                 score each fold's model_best.safetensors (its best epoch on\n"
        "                         validation: --best-metric) instead of its last model\n"
        "  --temporal-views K     test views, as tsf eval (default 1)\n"
        "  --spatial-crops 1|3    (default 3)\n"
        "  --no-final             no model on all folds, no test score\n"
        "  --overwrite            start every run afresh instead of resuming it\n"
        "  tsf train's options    the recipe and the model (tsf train --help): --epochs,\n"
        "                         --lr, --batch, --early-stop, --best-metric, ...; not --train,\n"
        "                         --val, --classes, --fold, --all-folds, --resume,\n"
        "                         --stop-after, --stop-epoch, which tsf cv sets\n"
        "  -q, --quiet            only the errors (and no epoch lines)\n"
        "  -h, --help             this text\n"
        "\n"
        "The final model trains for E epochs, E the rounded mean of the epochs of the fold\n"
        "models that were scored: --epochs, unless --best or --early-stop chose earlier\n"
        "epochs (its learning-rate schedule stays that of --epochs).\n"
        "\n"
        "exit status: 0 done, 1 an error, 2 bad usage, 130 after Ctrl-C (143 after SIGTERM),\n"
        "with the running fold's checkpoint saved\n");
}

/* The definition of option a (its name: up to '=') in defs, or NULL. */
static const tr_def *cv_find(const tr_def *defs, const char *a) {
    size_t len = strchr(a, '=') ? (size_t)(strchr(a, '=') - a) : strlen(a);
    for (; defs->name; defs++)
        if (strlen(defs->name) == len && strncmp(defs->name, a, len) == 0) return defs;
    return NULL;
}

/* The last epoch of a run and the epoch its log.csv marks best (-1: none), from RUN/log.csv.
   Returns 0 when the log has no rows. */
static int cv_read_log(const char *run, long long *last, long long *best) {
    char *path = tt_join(run, "log.csv"), line[1024];
    FILE *f = fopen(path, "r");
    int rows = 0;
    free(path);
    *last = 0, *best = -1;
    if (!f) return 0;
    while (fgets(line, sizeof line, f)) {
        char *p = line;
        int k;
        if (!isdigit((unsigned char)line[0])) continue; /* the header */
        *last = strtoll(line, NULL, 10), rows++;
        for (k = 0; k < 8 && p; k++) /* the ninth field: best */
            if ((p = strchr(p, ',')) != NULL) p++;
        if (p && p[0] == '1') *best = *last;
    }
    fclose(f);
    return rows > 0;
}

/* tsf train with the forwarded options and these: a fresh run, or the run in `out` resumed. */
static int cv_train(const tt_list *fwd, const char *data, const char *what, const char *k,
                    long long stop_epoch, const char *out, int overwrite, int quiet) {
    tt_list w = {NULL, 0, 0};
    char *args = tt_join(out, "args.txt"), *ckpt = tt_join(out, "checkpoint.safetensors");
    char num[32];
    int i, rc, resume = !overwrite && (tt_is_file(args) || tt_is_file(ckpt));
    tt_push(&w, "train");
    for (i = 0; i < fwd->n; i++) tt_push(&w, fwd->v[i]);
    tt_push(&w, "--data"), tt_push(&w, data), tt_push(&w, what);
    if (k) tt_push(&w, k);
    if (stop_epoch > 0) {
        snprintf(num, sizeof num, "%lld", stop_epoch);
        tt_push(&w, "--stop-epoch"), tt_push(&w, num);
    }
    tt_push(&w, "--out"), tt_push(&w, out);
    if (resume) tt_push(&w, "--resume");
    if (!quiet) printf("cv: %s %s\n", resume ? "resuming" : "training", out), fflush(stdout);
    rc = cmd_train(w.n, w.v);
    tt_list_free(&w);
    free(args), free(ckpt);
    return rc;
}

/* A line of the report: on stdout (unless quiet) and kept for OUT/cv.txt. */
static TT_PRINTF(3, 4) void cv_say(tt_list *report, int quiet, const char *fmt, ...) {
    va_list ap;
    char line[1024];
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (!quiet) printf("%s\n", line), fflush(stdout);
    tt_push(report, line);
}

/* Mean and sample standard deviation (n - 1; 0 for one value). */
static void cv_stats(const double *v, int n, double *mean, double *sd) {
    double s = 0, q = 0;
    int i;
    for (i = 0; i < n; i++) s += v[i];
    *mean = s / n;
    for (i = 0; i < n; i++) q += (v[i] - *mean) * (v[i] - *mean);
    *sd = n > 1 ? sqrt(q / (n - 1)) : 0.0;
}

/* One tsf cv: its options, the folds' scores and the final model's. cmd_cv runs the phases
   below in turn; each returns TR_GO to go on, or the exit status after its message. */
typedef struct cv_run {
    tr_opts c;        /* tsf cv's own options                                         */
    tr_opts to;       /* the options forwarded to tsf train, parsed                   */
    tr_opts eo;       /* the evaluations': cv's views, the runs' batch and threads    */
    tt_list fwd;      /* the words forwarded to every tsf train                       */
    tt_list report;   /* the lines of cv.txt                                          */
    int K, quiet;     /* folds;                                                       */
    double *top1;     /* (K) each fold's scores (percent)                             */
    double *top5;     /*                                                              */
    long long *epoch; /* (K) the epoch of each fold's model scored                    */
    int *clips;       /* (K) the clips of each fold                                   */
    double m1, s1, m5, s5, mean_epoch; /* means and standard deviations over folds   */
    long long E;                 /* the epochs of the final model                                */
    char *test_path, *final_out; /* DIR/test.csv, OUT/final                          */
    int have_test;               /*                                                              */
    ev_score test;               /* the final model's score on DIR/test.csv                      */
} cv_run;

/* cv's own options to v->c; the others, checked by tsf train's table, to v->fwd for every
   run. */
static int cv_parse(cv_run *v, int argc, char **argv) {
    const char *pos[1];
    int i, k, np = 0;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        const tr_def *d;
        int words;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            cv_usage(stdout);
            return 0;
        }
        if (a[0] != '-' || a[1] == 0) {
            tt_error("cv: unexpected argument \"%s\" (options start with --; see tsf cv --help)",
                     a);
            return 1;
        }
        if ((d = cv_find(cv_defs, a)) != NULL) {
            words = d->kind != 'b' && !strchr(a, '=') && i + 1 < argc ? 2 : 1;
            if (!tr_parse(cv_defs, &v->c, words, argv + i, "cv", pos, 0, &np)) return 2;
            i += words - 1;
            continue;
        }
        for (k = 0; cv_own_train[k]; k++)
            if (cv_find(tr_train_defs, a) &&
                strcmp(cv_find(tr_train_defs, a)->name, cv_own_train[k]) == 0) {
                tt_error("cv: %s: tsf cv sets it for each run (tsf cv --help)", cv_own_train[k]);
                return 2;
            }
        d = cv_find(tr_train_defs, a);
        tt_push(&v->fwd, a);
        if (d && d->kind != 'b' && !strchr(a, '=') && i + 1 < argc) tt_push(&v->fwd, argv[++i]);
    }
    if (!tr_parse(tr_train_defs, &v->to, v->fwd.n, v->fwd.v, "cv", pos, 0, &np)) return 2;
    if (!v->c.data || !v->c.out) {
        tt_error("cv: give the dataset folder with --data DIR (mkdataset ROOT DIR --folds K) and "
                 "the folder of the runs with --out OUT");
        return 2;
    }
    if (v->c.spatial_crops == 2) {
        tt_error("cv: --spatial-crops 2: choose 1 (centre) or 3 (start, centre, end)");
        return 2;
    }
    return TR_GO;
}

/* The folds counted, OUT made, room for the scores, the evaluations' options. */
static int cv_setup(cv_run *v) {
    const tr_opts *c = &v->c;
    int K;
    v->quiet = v->to.quiet;
    tt_quiet = v->quiet;
    if ((K = v->K = tr_count_folds(c->data)) < 2) {
        tt_error("cv: %s: no fold_1.csv and fold_2.csv: make folds with mkdataset ROOT %s "
                 "--folds K",
                 c->data, c->data);
        return 1;
    }
    if (!tt_mkdirs(c->out)) {
        tt_error("cv: cannot create %s: %s", c->out, strerror(errno));
        return 1;
    }
    v->top1 = (double *)tt_malloc((size_t)K * sizeof *v->top1);
    v->top5 = (double *)tt_malloc((size_t)K * sizeof *v->top5);
    v->epoch = (long long *)tt_malloc((size_t)K * sizeof *v->epoch);
    v->clips = (int *)tt_malloc((size_t)K * sizeof *v->clips);
    v->eo = *c;
    v->eo.batch = v->to.batch ? v->to.batch : 8, v->eo.threads = v->to.threads;
    v->eo.quiet = v->to.quiet, v->eo.progress = v->to.progress, v->eo.out = NULL;
    return TR_GO;
}

/* Steps 1 and 2 for fold k: its run (OUT/fold_k) trained or resumed, its model scored on it. */
static int cv_fold(cv_run *v, int k) {
    const tr_opts *c = &v->c;
    char num[16], name[32], *run, *manifest;
    long long last, best;
    ev_score sc;
    int rc;
    snprintf(num, sizeof num, "%d", k + 1);
    snprintf(name, sizeof name, "fold_%d", k + 1);
    run = tt_join(c->out, name);
    snprintf(name, sizeof name, "fold_%d.csv", k + 1);
    manifest = tt_join(c->data, name);
    rc = cv_train(&v->fwd, c->data, "--fold", num, 0, run, v->to.overwrite, v->quiet);
    if (rc == 0 && !cv_read_log(run, &last, &best)) {
        tt_error("cv: %s/log.csv has no epochs (--epochs 0?): nothing to score", run);
        rc = 1;
    }
    if (rc == 0 && (tr_signal || ev_run(&v->eo, run, manifest, 0, &sc) != 0))
        rc = tr_signal ? 128 + tr_signal : 1;
    if (rc == 0) {
        v->top1[k] = sc.top1, v->top5[k] = sc.top5, v->clips[k] = sc.clips;
        v->epoch[k] = c->best ? best : last;
        v->mean_epoch += (double)v->epoch[k] / v->K;
        cv_say(&v->report, v->quiet,
               "cv: fold %d/%d: top-1 %.2f%%  top-5 %.2f%%  (%d clips of %s; "
               "%s of epoch %lld)",
               k + 1, v->K, sc.top1, sc.top5, sc.clips, manifest,
               c->best ? "model_best.safetensors" : "model.safetensors", v->epoch[k]);
    }
    free(run), free(manifest);
    if (rc != 0 && rc < 128)
        tt_error("cv: fold %d stopped on the error above; fix it and run the same tsf cv "
                 "again: the finished folds are kept",
                 k + 1);
    return rc == 0 ? TR_GO : rc;
}

/* Steps 1 to 3: every fold, then the mean and standard deviation over them. */
static int cv_folds(cv_run *v) {
    int k, rc;
    for (k = 0; k < v->K; k++)
        if ((rc = cv_fold(v, k)) != TR_GO) return rc;
    cv_stats(v->top1, v->K, &v->m1, &v->s1), cv_stats(v->top5, v->K, &v->m5, &v->s5);
    cv_say(&v->report, v->quiet,
           "cv: %d folds: top-1 %.2f \xc2\xb1 %.2f%%  top-5 %.2f \xc2\xb1 %.2f%%  (mean \xc2\xb1 "
           "sample standard deviation over the folds)",
           v->K, v->m1, v->s1, v->m5, v->s5);
    return TR_GO;
}

/* Step 4: the model of all folds (OUT/final), trained for the mean epoch of the folds'
   models, and its score on DIR/test.csv when there is one. */
static int cv_final(cv_run *v) {
    const tr_opts *c = &v->c;
    long long last, best;
    int rc;
    v->test_path = tt_join(c->data, "test.csv");
    v->have_test = tt_is_file(v->test_path);
    if (c->no_final) return TR_GO;
    v->E = (long long)floor(v->mean_epoch + 0.5);
    if (v->E < 1) v->E = 1;
    v->final_out = tt_join(c->out, "final");
    rc = cv_train(&v->fwd, c->data, "--all-folds", NULL, v->E, v->final_out, v->to.overwrite,
                  v->quiet);
    if (rc == 0 && tr_signal) rc = 128 + tr_signal;
    if (rc != 0) {
        if (rc < 128) tt_error("cv: the final run stopped on the error above");
        return rc;
    }
    /* a final run made by an earlier cv may have gone further (another --best) */
    if (cv_read_log(v->final_out, &last, &best) && last != v->E) {
        tt_warn("%s has trained %lld epochs, not %lld: its model is epoch %lld's (tsf cv "
                "--overwrite trains every run again)",
                v->final_out, last, v->E, last);
        v->E = last;
    }
    if (!v->have_test) {
        cv_say(&v->report, v->quiet,
               "cv: no %s: %s/model.safetensors (all %d folds, %lld epoch%s) is not tested",
               v->test_path, v->final_out, v->K, v->E, v->E == 1 ? "" : "s");
        return TR_GO;
    }
    v->eo.best = 0, v->eo.out = tt_join(c->out, "test");
    rc = ev_run(&v->eo, v->final_out, v->test_path, 0, &v->test);
    free((char *)v->eo.out);
    if (rc != 0) return rc;
    cv_say(&v->report, v->quiet,
           "cv: test: top-1 %.2f%%  top-5 %.2f%%  (%d clips of %s; %s/model.safetensors, "
           "trained on all %d folds for %lld epoch%s)",
           v->test.top1, v->test.top5, v->test.clips, v->test_path, v->final_out, v->K, v->E,
           v->E == 1 ? "" : "s");
    return TR_GO;
}

/* The files: OUT/cv.csv, then OUT/cv.txt. Returns the exit status. */
static int cv_write(const cv_run *v) {
    const char *out = v->c.out;
    char *p = tt_join(out, "cv.csv");
    FILE *f;
    int k, rc = 1;
    if ((f = tr_create(p)) != NULL) {
        fprintf(f, "fold,epoch,clips,top1,top5\n");
        for (k = 0; k < v->K; k++)
            fprintf(f, "%d,%lld,%d,%.4f,%.4f\n", k + 1, v->epoch[k], v->clips[k], v->top1[k],
                    v->top5[k]);
        fprintf(f, "mean,,,%.4f,%.4f\nstd,,,%.4f,%.4f\n", v->m1, v->m5, v->s1, v->s5);
        if (!v->c.no_final && v->have_test)
            fprintf(f, "test,%lld,%d,%.4f,%.4f\n", v->E, v->test.clips, v->test.top1, v->test.top5);
        if (tr_commit(f, p)) rc = 0;
    }
    free(p);
    p = tt_join(out, "cv.txt");
    if (rc == 0 && (f = tr_create(p)) != NULL) {
        for (k = 0; k < v->report.n; k++) fprintf(f, "%s\n", v->report.v[k]);
        rc = tr_commit(f, p) ? 0 : 1;
    } else {
        rc = 1;
    }
    free(p);
    if (rc == 0 && !v->quiet) printf("cv: wrote %s/cv.txt, %s/cv.csv\n", out, out);
    return rc;
}

static int cmd_cv(int argc, char **argv) {
    cv_run v;
    int rc;
    memset(&v, 0, sizeof v);
    v.c.temporal_views = 1, v.c.spatial_crops = 3;
    rc = cv_parse(&v, argc, argv);
    if (rc == TR_GO) rc = cv_setup(&v);
    if (rc == TR_GO) rc = cv_folds(&v);
    if (rc == TR_GO) rc = cv_final(&v);
    if (rc == TR_GO) rc = cv_write(&v);
    tt_list_free(&v.fwd), tt_list_free(&v.report);
    free(v.top1), free(v.top5), free(v.epoch), free(v.clips), free(v.test_path);
    free(v.final_out);
    return rc;
}
