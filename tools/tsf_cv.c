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

static int cmd_cv(int argc, char **argv) {
    tr_opts c, to, eo;
    tt_list fwd = {NULL, 0, 0}, report = {NULL, 0, 0};
    const char *pos[1];
    int i, np = 0, K, k, rc = 1, quiet, have_test = 0;
    double *top1 = NULL, *top5 = NULL, m1, s1, m5, s5, mean_epoch = 0;
    long long *epoch = NULL, E = 0;
    int *clips = NULL;
    ev_score test;
    char *test_path = NULL, *final_out = NULL, *p;
    FILE *f;
    memset(&c, 0, sizeof c), memset(&to, 0, sizeof to), memset(&test, 0, sizeof test);
    c.temporal_views = 1, c.spatial_crops = 3;
    /* cv's own options here; the others, checked by tsf train's table, go to every run */
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
            goto out;
        }
        if ((d = cv_find(cv_defs, a)) != NULL) {
            words = d->kind != 'b' && !strchr(a, '=') && i + 1 < argc ? 2 : 1;
            if (!tr_parse(cv_defs, &c, words, argv + i, "cv", pos, 0, &np)) goto usage;
            i += words - 1;
            continue;
        }
        for (k = 0; cv_own_train[k]; k++)
            if (cv_find(tr_train_defs, a) &&
                strcmp(cv_find(tr_train_defs, a)->name, cv_own_train[k]) == 0) {
                tt_error("cv: %s: tsf cv sets it for each run (tsf cv --help)", cv_own_train[k]);
                goto usage;
            }
        d = cv_find(tr_train_defs, a);
        tt_push(&fwd, a);
        if (d && d->kind != 'b' && !strchr(a, '=') && i + 1 < argc) tt_push(&fwd, argv[++i]);
    }
    if (!tr_parse(tr_train_defs, &to, fwd.n, fwd.v, "cv", pos, 0, &np)) goto usage;
    if (!c.data || !c.out) {
        tt_error("cv: give the dataset folder with --data DIR (mkdataset ROOT DIR --folds K) and "
                 "the folder of the runs with --out OUT");
        goto usage;
    }
    if (c.spatial_crops == 2) {
        tt_error("cv: --spatial-crops 2: choose 1 (centre) or 3 (start, centre, end)");
        goto usage;
    }
    quiet = to.quiet;
    tt_quiet = quiet;
    if ((K = tr_count_folds(c.data)) < 2) {
        tt_error("cv: %s: no fold_1.csv and fold_2.csv: make folds with mkdataset ROOT %s "
                 "--folds K",
                 c.data, c.data);
        goto out;
    }
    if (!tt_mkdirs(c.out)) {
        tt_error("cv: cannot create %s: %s", c.out, strerror(errno));
        goto out;
    }
    top1 = (double *)tt_malloc((size_t)K * sizeof *top1);
    top5 = (double *)tt_malloc((size_t)K * sizeof *top5);
    epoch = (long long *)tt_malloc((size_t)K * sizeof *epoch);
    clips = (int *)tt_malloc((size_t)K * sizeof *clips);
    eo = c; /* the evaluation: cv's views, the runs' batch and threads */
    eo.batch = to.batch ? to.batch : 8, eo.threads = to.threads, eo.quiet = to.quiet;
    eo.progress = to.progress, eo.out = NULL;

    /* 1, 2: the folds */
    for (k = 0; k < K; k++) {
        char num[16], name[32], *run, *manifest;
        long long last, best;
        ev_score sc;
        snprintf(num, sizeof num, "%d", k + 1);
        snprintf(name, sizeof name, "fold_%d", k + 1);
        run = tt_join(c.out, name);
        snprintf(name, sizeof name, "fold_%d.csv", k + 1);
        manifest = tt_join(c.data, name);
        rc = cv_train(&fwd, c.data, "--fold", num, 0, run, to.overwrite, quiet);
        if (rc == 0 && !cv_read_log(run, &last, &best)) {
            tt_error("cv: %s/log.csv has no epochs (--epochs 0?): nothing to score", run);
            rc = 1;
        }
        if (rc == 0 && (tr_signal || ev_run(&eo, run, manifest, 0, &sc) != 0))
            rc = tr_signal ? 128 + tr_signal : 1;
        if (rc == 0) {
            top1[k] = sc.top1, top5[k] = sc.top5, clips[k] = sc.clips;
            epoch[k] = c.best ? best : last;
            mean_epoch += (double)epoch[k] / K;
            cv_say(&report, quiet,
                   "cv: fold %d/%d: top-1 %.2f%%  top-5 %.2f%%  (%d clips of %s; "
                   "%s of epoch %lld)",
                   k + 1, K, sc.top1, sc.top5, sc.clips, manifest,
                   c.best ? "model_best.safetensors" : "model.safetensors", epoch[k]);
        }
        free(run), free(manifest);
        if (rc != 0) {
            if (rc < 128)
                tt_error("cv: fold %d stopped on the error above; fix it and run the same tsf cv "
                         "again: the finished folds are kept",
                         k + 1);
            goto out;
        }
    }
    /* 3: over the folds */
    cv_stats(top1, K, &m1, &s1), cv_stats(top5, K, &m5, &s5);
    cv_say(&report, quiet,
           "cv: %d folds: top-1 %.2f \xc2\xb1 %.2f%%  top-5 %.2f \xc2\xb1 %.2f%%  (mean \xc2\xb1 "
           "sample standard deviation over the folds)",
           K, m1, s1, m5, s5);

    /* 4: the model of all folds, and the test */
    test_path = tt_join(c.data, "test.csv");
    have_test = tt_is_file(test_path);
    if (!c.no_final) {
        E = (long long)floor(mean_epoch + 0.5);
        if (E < 1) E = 1;
        final_out = tt_join(c.out, "final");
        rc = cv_train(&fwd, c.data, "--all-folds", NULL, E, final_out, to.overwrite, quiet);
        if (rc == 0 && tr_signal) rc = 128 + tr_signal;
        if (rc != 0) {
            if (rc < 128) tt_error("cv: the final run stopped on the error above");
            goto out;
        }
        { /* a final run made by an earlier cv may have gone further (another --best) */
            long long last, best;
            if (cv_read_log(final_out, &last, &best) && last != E) {
                tt_warn("%s has trained %lld epochs, not %lld: its model is epoch %lld's (tsf cv "
                        "--overwrite trains every run again)",
                        final_out, last, E, last);
                E = last;
            }
        }
        if (have_test) {
            eo.best = 0, eo.out = p = tt_join(c.out, "test");
            rc = ev_run(&eo, final_out, test_path, 0, &test);
            free(p);
            if (rc != 0) goto out;
            cv_say(&report, quiet,
                   "cv: test: top-1 %.2f%%  top-5 %.2f%%  (%d clips of %s; %s/model.safetensors, "
                   "trained on all %d folds for %lld epoch%s)",
                   test.top1, test.top5, test.clips, test_path, final_out, K, E, E == 1 ? "" : "s");
        } else {
            cv_say(&report, quiet,
                   "cv: no %s: %s/model.safetensors (all %d folds, %lld epoch%s) is not tested",
                   test_path, final_out, K, E, E == 1 ? "" : "s");
        }
    }

    /* the files: cv.csv, cv.txt */
    rc = 1;
    p = tt_join(c.out, "cv.csv");
    if ((f = tr_create(p)) != NULL) {
        fprintf(f, "fold,epoch,clips,top1,top5\n");
        for (k = 0; k < K; k++)
            fprintf(f, "%d,%lld,%d,%.4f,%.4f\n", k + 1, epoch[k], clips[k], top1[k], top5[k]);
        fprintf(f, "mean,,,%.4f,%.4f\nstd,,,%.4f,%.4f\n", m1, m5, s1, s5);
        if (!c.no_final && have_test)
            fprintf(f, "test,%lld,%d,%.4f,%.4f\n", E, test.clips, test.top1, test.top5);
        if (tr_commit(f, p)) rc = 0;
    }
    free(p);
    p = tt_join(c.out, "cv.txt");
    if (rc == 0 && (f = tr_create(p)) != NULL) {
        for (i = 0; i < report.n; i++) fprintf(f, "%s\n", report.v[i]);
        rc = tr_commit(f, p) ? 0 : 1;
    } else {
        rc = 1;
    }
    free(p);
    if (rc == 0 && !quiet) printf("cv: wrote %s/cv.txt, %s/cv.csv\n", c.out, c.out);
    goto out;
usage:
    rc = 2;
out:
    tt_list_free(&fwd), tt_list_free(&report);
    free(top1), free(top5), free(epoch), free(clips), free(test_path), free(final_out);
    return rc;
}
