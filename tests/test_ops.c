/* test_ops.c - every kernel's forward and backward against a naive double-precision
   reference written here, plus the basics (version, status strings, random numbers).
   Included by test_main.c.

   Backward tests start every gradient buffer at random values P, call backward twice and
   expect P + 2 * reference: that checks the gradient, that backward accumulates (+=) and
   that a second call adds the same amount again. Outputs and scratch buffers start as NaN,
   to check that they are overwritten and never read. */

/* Float results of short sums of O(1) terms against double references. */
#define OPS_ATOL 1e-5
#define OPS_RTOL 1e-4

/* ---- basics -------------------------------------------------------------------------------- */
static void test_version(void) {
    char buf[64];
    REQUIRE(tsf_version() != NULL);
    CHECK(strcmp(tsf_version(), TSF_VERSION_STRING) == 0);
    snprintf(buf, sizeof buf, "%d.%d.%d", TSF_VERSION_MAJOR, TSF_VERSION_MINOR, TSF_VERSION_PATCH);
    CHECK(strcmp(TSF_VERSION_STRING, buf) == 0);
}

static void test_status_string(void) {
    const char *s[TSF_STATUS_COUNT + 2];
    int i, j, n = TSF_STATUS_COUNT;
    CHECK_EQ_INT(TSF_OK, 0);
    CHECK(n >= 8);
    for (i = 0; i < n; i++) {
        s[i] = tsf_status_string((tsf_status)i);
        REQUIRE(s[i] != NULL);
        CHECK(s[i][0] != '\0');
    }
    /* values outside the enum: still a string, and not one of the real ones */
    s[n] = tsf_status_string(TSF_STATUS_COUNT);
    s[n + 1] = tsf_status_string((tsf_status)-1);
    REQUIRE(s[n] != NULL && s[n + 1] != NULL);
    CHECK(strcmp(s[n], s[n + 1]) == 0);
    for (i = 0; i < n + 1; i++)
        for (j = i + 1; j < n + 1; j++)
            if (!CHECK(strcmp(s[i], s[j]) != 0))
                printf("    statuses %d and %d: \"%s\"\n", i, j, s[i]);
    CHECK(strcmp(tsf_status_string(TSF_OK), "ok") == 0);
}

static void test_rng_determinism(void) {
    tsf_rng a, b, c, d;
    unsigned int first[64];
    int i, same = 0, same_cd = 0;
    tsf_rng_seed(&a, 1234);
    tsf_rng_seed(&b, 1234);
    for (i = 0; i < 1000; i++) {
        unsigned int x = tsf_rng_u32(&a), y = tsf_rng_u32(&b);
        if (i < 64) first[i] = x;
        same += x == y;
    }
    CHECK_EQ_INT(same, 1000);
    /* reseeding restarts the sequence; other generators do not interfere */
    tsf_rng_seed(&a, 1234);
    tsf_rng_seed(&c, 99);
    for (i = 0; i < 64; i++) {
        (void)tsf_rng_u32(&c);
        same_cd += tsf_rng_u32(&a) == first[i];
    }
    CHECK_EQ_INT(same_cd, 64);
    /* different seeds (including 0 and neighbours) give different sequences */
    {
        unsigned long long seeds[4] = {0, 1, 2, 1235};
        int k;
        for (k = 0; k < 4; k++) {
            int eq = 0;
            tsf_rng_seed(&c, seeds[k]);
            tsf_rng_seed(&d, 1234);
            for (i = 0; i < 1000; i++) eq += tsf_rng_u32(&c) == tsf_rng_u32(&d);
            CHECK(eq < 5);
        }
    }
    /* seed 0 must not give a stuck all-zero state */
    {
        unsigned int orv = 0;
        tsf_rng_seed(&c, 0);
        for (i = 0; i < 16; i++) orv |= tsf_rng_u32(&c);
        CHECK(orv != 0);
    }
    /* the float generators are deterministic too */
    tsf_rng_seed(&a, 7);
    tsf_rng_seed(&b, 7);
    same = 0;
    for (i = 0; i < 100; i++) same += tsf_rng_normal(&a) == tsf_rng_normal(&b);
    for (i = 0; i < 100; i++) same += tsf_rng_uniform(&a) == tsf_rng_uniform(&b);
    CHECK_EQ_INT(same, 200);
}

static void test_rng_uniform(void) {
    tsf_rng r;
    int i, n = 100000, out_of_range = 0, bins[10] = {0};
    double sum = 0.0, sum2 = 0.0, mean, var;
    tsf_rng_seed(&r, 42);
    for (i = 0; i < n; i++) {
        float u = tsf_rng_uniform(&r);
        if (!(u >= 0.0f && u < 1.0f))
            out_of_range++;
        else
            bins[(int)(u * 10.0f)]++;
        sum += (double)u, sum2 += (double)u * (double)u;
    }
    mean = sum / n, var = sum2 / n - mean * mean;
    CHECK_EQ_INT(out_of_range, 0);
    CHECK_NEAR(mean, 0.5, 0.01, 0);
    CHECK_NEAR(var, 1.0 / 12.0, 0.003, 0);
    for (i = 0; i < 10; i++) CHECK_NEAR(bins[i], n / 10, n / 100, 0);
}

static void test_rng_normal(void) {
    tsf_rng r;
    int i, n = 100000, nonfinite = 0, within1 = 0;
    double sum = 0.0, sum2 = 0.0, mean, sd;
    tsf_rng_seed(&r, 4242);
    for (i = 0; i < n; i++) {
        float z = tsf_rng_normal(&r);
        if (!isfinite(z)) nonfinite++;
        sum += (double)z, sum2 += (double)z * (double)z;
        within1 += fabsf(z) < 1.0f;
    }
    mean = sum / n, sd = sqrt(sum2 / n - mean * mean);
    CHECK_EQ_INT(nonfinite, 0);
    CHECK_NEAR(mean, 0.0, 0.02, 0);
    CHECK_NEAR(sd, 1.0, 0.02, 0);
    CHECK_NEAR((double)within1 / n, 0.6826894921, 0.01, 0); /* P(|z| < 1) */
}

/* ---- linear -------------------------------------------------------------------------------- */
static void ref_linear(double *out, const float *x, const float *w, const float *b, int M, int IN,
                       int OUT) {
    int m, o, i;
    for (m = 0; m < M; m++)
        for (o = 0; o < OUT; o++) {
            double s = b ? (double)b[o] : 0.0;
            for (i = 0; i < IN; i++) s += (double)x[m * IN + i] * (double)w[o * IN + i];
            out[m * OUT + o] = s;
        }
}

static void ref_linear_backward(double *dx, double *dw, double *db, const float *dy, const float *x,
                                const float *w, int M, int IN, int OUT) {
    int m, o, i;
    for (m = 0; m < M; m++)
        for (i = 0; i < IN; i++) {
            double s = 0.0;
            for (o = 0; o < OUT; o++) s += (double)dy[m * OUT + o] * (double)w[o * IN + i];
            dx[m * IN + i] = s;
        }
    for (o = 0; o < OUT; o++) {
        double sb = 0.0;
        for (i = 0; i < IN; i++) {
            double s = 0.0;
            for (m = 0; m < M; m++) s += (double)dy[m * OUT + o] * (double)x[m * IN + i];
            dw[o * IN + i] = s;
        }
        for (m = 0; m < M; m++) sb += (double)dy[m * OUT + o];
        db[o] = sb;
    }
}

/* OUT = 300: two column blocks of the matmul, whose bias is added per row panel after the
   product (on AVX2 too: past 256 columns its A is packed), the second from its offset. */
static const int linear_shapes[][3] = {/* M, IN, OUT */
                                       {1, 1, 1},   {5, 7, 3},    {33, 20, 17}, {70, 12, 40},
                                       {3, 300, 5}, {130, 9, 70}, {40, 24, 300}};

static void test_linear_forward(void) {
    tsf_rng r;
    int s, with_bias;
    tsf_rng_seed(&r, 101);
    for (s = 0; s < (int)(sizeof linear_shapes / sizeof linear_shapes[0]); s++)
        for (with_bias = 0; with_bias < 2; with_bias++) {
            int M = linear_shapes[s][0], IN = linear_shapes[s][1], OUT = linear_shapes[s][2];
            float *x = rnd_normal(&r, (size_t)M * IN, 1.0f),
                  *w = rnd_normal(&r, (size_t)OUT * IN, 0.5f);
            float *b = with_bias ? rnd_normal(&r, OUT, 1.0f) : NULL;
            float *y = ffill((size_t)M * OUT, NAN);
            double *want = tsft_allocd((size_t)M * OUT);
            ref_linear(want, x, w, b, M, IN, OUT);
            tsf_linear_forward(y, x, w, b, M, IN, OUT);
            /* IN = 300 sums 300 terms: widen the tolerance with sqrt(IN) */
            CHECK_ARRAY_NEAR(y, want, (size_t)M * OUT, OPS_ATOL * sqrt((double)IN), OPS_RTOL);
        }
}

static void test_linear_backward(void) {
    tsf_rng r;
    int s;
    tsf_rng_seed(&r, 102);
    for (s = 0; s < (int)(sizeof linear_shapes / sizeof linear_shapes[0]); s++) {
        int M = linear_shapes[s][0], IN = linear_shapes[s][1], OUT = linear_shapes[s][2], k;
        size_t nx = (size_t)M * IN, nw = (size_t)OUT * IN, ny = (size_t)M * OUT;
        float *x = rnd_normal(&r, nx, 1.0f), *w = rnd_normal(&r, nw, 0.5f);
        float *dy = rnd_normal(&r, ny, 1.0f);
        float *P0 = rnd_normal(&r, nx, 1.0f), *P1 = rnd_normal(&r, nw, 1.0f),
              *P2 = rnd_normal(&r, OUT, 1.0f);
        float *dx = fcopy(P0, nx), *dw = fcopy(P1, nw), *db = fcopy(P2, OUT);
        double *rdx = tsft_allocd(nx), *rdw = tsft_allocd(nw), *rdb = tsft_allocd(OUT);
        double tol = OPS_ATOL * sqrt((double)(M + IN + OUT));
        ref_linear_backward(rdx, rdw, rdb, dy, x, w, M, IN, OUT);
        for (k = 1; k <= 2; k++) {
            tsf_linear_backward(dx, dw, db, dy, x, w, M, IN, OUT);
            CHECK_ARRAY_NEAR(dx, expect_acc(P0, rdx, k, nx), nx, tol, OPS_RTOL);
            CHECK_ARRAY_NEAR(dw, expect_acc(P1, rdw, k, nw), nw, tol, OPS_RTOL);
            CHECK_ARRAY_NEAR(db, expect_acc(P2, rdb, k, OUT), OUT, tol, OPS_RTOL);
        }
    }
}

/* Each gradient may be NULL; the others must still be right. From zero: once gives the
   reference, twice gives twice the reference. */
static void test_linear_backward_null(void) {
    tsf_rng r;
    int M = 9, IN = 6, OUT = 21, mask;
    size_t nx = (size_t)M * IN, nw = (size_t)OUT * IN, ny = (size_t)M * OUT;
    float *x, *w, *dy;
    double *rdx = tsft_allocd(nx), *rdw = tsft_allocd(nw), *rdb = tsft_allocd(OUT);
    tsf_rng_seed(&r, 103);
    x = rnd_normal(&r, nx, 1.0f), w = rnd_normal(&r, nw, 1.0f), dy = rnd_normal(&r, ny, 1.0f);
    ref_linear_backward(rdx, rdw, rdb, dy, x, w, M, IN, OUT);
    for (mask = 0; mask < 8; mask++) {
        float *dx = (mask & 1) ? tsft_alloc(nx) : NULL;
        float *dw = (mask & 2) ? tsft_alloc(nw) : NULL;
        float *db = (mask & 4) ? tsft_alloc(OUT) : NULL;
        int k;
        for (k = 1; k <= 2; k++) {
            tsf_linear_backward(dx, dw, db, dy, x, w, M, IN, OUT);
            if (dx) CHECK_ARRAY_NEAR(dx, expect_acc(NULL, rdx, k, nx), nx, OPS_ATOL, OPS_RTOL);
            if (dw) CHECK_ARRAY_NEAR(dw, expect_acc(NULL, rdw, k, nw), nw, OPS_ATOL, OPS_RTOL);
            if (db) CHECK_ARRAY_NEAR(db, expect_acc(NULL, rdb, k, OUT), OUT, OPS_ATOL, OPS_RTOL);
        }
    }
}

/* ---- layernorm ----------------------------------------------------------------------------- */
static void ref_layernorm(double *out, double *mean, double *rstd, const float *x, const float *w,
                          const float *b, int M, int D, double eps) {
    int m, i;
    for (m = 0; m < M; m++) {
        const float *xr = x + (size_t)m * D;
        double mu = 0.0, var = 0.0, rs;
        for (i = 0; i < D; i++) mu += (double)xr[i];
        mu /= D;
        for (i = 0; i < D; i++) var += ((double)xr[i] - mu) * ((double)xr[i] - mu);
        var /= D; /* biased */
        rs = 1.0 / sqrt(var + eps);
        for (i = 0; i < D; i++)
            out[(size_t)m * D + i] = ((double)xr[i] - mu) * rs * (double)w[i] + (double)b[i];
        mean[m] = mu, rstd[m] = rs;
    }
}

/* Through the full Jacobian: d xhat_i / d x_j = rstd (delta_ij - 1/D - xhat_i xhat_j / D). */
static void ref_layernorm_backward(double *dx, double *dw, double *db, const float *dy,
                                   const float *x, const float *w, int M, int D, double eps) {
    double *xhat = tsft_allocd((size_t)D);
    int m, i, j;
    for (i = 0; i < D; i++) dw[i] = db[i] = 0.0;
    for (m = 0; m < M; m++) {
        const float *xr = x + (size_t)m * D, *g = dy + (size_t)m * D;
        double mu = 0.0, var = 0.0, rs;
        for (i = 0; i < D; i++) mu += (double)xr[i];
        mu /= D;
        for (i = 0; i < D; i++) var += ((double)xr[i] - mu) * ((double)xr[i] - mu);
        rs = 1.0 / sqrt(var / D + eps);
        for (i = 0; i < D; i++) xhat[i] = ((double)xr[i] - mu) * rs;
        for (j = 0; j < D; j++) {
            double s = 0.0;
            for (i = 0; i < D; i++)
                s +=
                    (double)g[i] * (double)w[i] * rs * ((i == j) - 1.0 / D - xhat[i] * xhat[j] / D);
            dx[(size_t)m * D + j] = s;
        }
        for (i = 0; i < D; i++) dw[i] += (double)g[i] * xhat[i], db[i] += (double)g[i];
    }
}

/* Hand-computed values: biased variance, eps inside the square root. */
static void test_layernorm_known_values(void) {
    const float x[8] = {1, 2, 3, 4, 3, 3, 3, 3}, w[4] = {1, 1, 1, 1}, b[4] = {0, 0, 0, 0};
    float out[8], mean[2], rstd[2];
    /* row 0: mean 2.5, biased var 1.25 (unbiased would be 5/3) */
    tsf_layernorm_forward(out, mean, rstd, x, w, b, 2, 4, 0.0f);
    CHECK_NEAR(mean[0], 2.5, 1e-6, 0);
    CHECK_NEAR(rstd[0], 1.0 / sqrt(1.25), 1e-6, 1e-6);
    CHECK_NEAR(out[0], -1.5 / sqrt(1.25), 1e-6, 1e-6);
    CHECK_NEAR(out[3], 1.5 / sqrt(1.25), 1e-6, 1e-6);
    /* eps = 0.75: var + eps = 2 */
    tsf_layernorm_forward(out, mean, rstd, x, w, b, 2, 4, 0.75f);
    CHECK_NEAR(rstd[0], 1.0 / sqrt(2.0), 1e-6, 1e-6);
    CHECK_NEAR(out[1], -0.5 / sqrt(2.0), 1e-6, 1e-6);
    /* row 1 is constant: var 0, rstd = eps^-1/2, output = bias */
    CHECK_NEAR(mean[1], 3.0, 1e-6, 0);
    CHECK_NEAR(rstd[1], 1.0 / sqrt(0.75), 1e-6, 1e-6);
    CHECK_NEAR(out[5], 0.0, 1e-6, 0);
}

static const int ln_shapes[][2] = {{1, 1}, {1, 4}, {4, 7}, {13, 64}, {5, 200}};

static void test_layernorm_forward(void) {
    tsf_rng r;
    int s, e;
    const float epss[2] = {1e-5f, 0.3f};
    tsf_rng_seed(&r, 201);
    for (s = 0; s < (int)(sizeof ln_shapes / sizeof ln_shapes[0]); s++)
        for (e = 0; e < 2; e++) {
            int M = ln_shapes[s][0], D = ln_shapes[s][1];
            size_t n = (size_t)M * D;
            /* an offset mean and a non-unit spread, as activations have */
            float *x = rnd_normal(&r, n, 2.0f), *w = rnd_normal(&r, D, 1.0f),
                  *b = rnd_normal(&r, D, 1.0f);
            float *out = ffill(n, NAN), *mean = ffill(M, NAN), *rstd = ffill(M, NAN);
            double *rout = tsft_allocd(n), *rmean = tsft_allocd(M), *rrstd = tsft_allocd(M);
            size_t i;
            for (i = 0; i < n; i++) x[i] += 3.0f;
            ref_layernorm(rout, rmean, rrstd, x, w, b, M, D, (double)epss[e]);
            tsf_layernorm_forward(out, mean, rstd, x, w, b, M, D, epss[e]);
            CHECK_ARRAY_NEAR(out, rout, n, OPS_ATOL, OPS_RTOL);
            CHECK_ARRAY_NEAR(mean, rmean, M, OPS_ATOL, OPS_RTOL);
            CHECK_ARRAY_NEAR(rstd, rrstd, M, OPS_ATOL, OPS_RTOL);
        }
}

static void test_layernorm_backward(void) {
    tsf_rng r;
    int s;
    tsf_rng_seed(&r, 202);
    for (s = 0; s < (int)(sizeof ln_shapes / sizeof ln_shapes[0]); s++) {
        int M = ln_shapes[s][0], D = ln_shapes[s][1], k;
        size_t n = (size_t)M * D;
        float *x = rnd_normal(&r, n, 1.5f), *w = rnd_normal(&r, D, 1.0f),
              *b = rnd_normal(&r, D, 1.0f);
        float *dy = rnd_normal(&r, n, 1.0f), *out = tsft_alloc(n), *mean = tsft_alloc(M),
              *rstd = tsft_alloc(M);
        float *P0 = rnd_normal(&r, n, 1.0f), *P1 = rnd_normal(&r, D, 1.0f),
              *P2 = rnd_normal(&r, D, 1.0f);
        float *dx = fcopy(P0, n), *dw = fcopy(P1, D), *db = fcopy(P2, D);
        double *rdx = tsft_allocd(n), *rdw = tsft_allocd(D), *rdb = tsft_allocd(D);
        double tol = OPS_ATOL * sqrt((double)(M + D));
        float eps = 1e-3f;
        tsf_layernorm_forward(out, mean, rstd, x, w, b, M, D, eps);
        ref_layernorm_backward(rdx, rdw, rdb, dy, x, w, M, D, (double)eps);
        for (k = 1; k <= 2; k++) {
            tsf_layernorm_backward(dx, dw, db, dy, x, w, mean, rstd, M, D);
            CHECK_ARRAY_NEAR(dx, expect_acc(P0, rdx, k, n), n, tol, OPS_RTOL);
            CHECK_ARRAY_NEAR(dw, expect_acc(P1, rdw, k, D), D, tol, OPS_RTOL);
            CHECK_ARRAY_NEAR(db, expect_acc(P2, rdb, k, D), D, tol, OPS_RTOL);
        }
        /* each gradient may be NULL */
        {
            float *dx2 = tsft_alloc(n), *dw2 = tsft_alloc(D), *db2 = tsft_alloc(D);
            tsf_layernorm_backward(dx2, NULL, NULL, dy, x, w, mean, rstd, M, D);
            tsf_layernorm_backward(NULL, dw2, NULL, dy, x, w, mean, rstd, M, D);
            tsf_layernorm_backward(NULL, NULL, db2, dy, x, w, mean, rstd, M, D);
            tsf_layernorm_backward(NULL, NULL, NULL, dy, x, w, mean, rstd, M, D);
            CHECK_ARRAY_NEAR(dx2, rdx, n, tol, OPS_RTOL);
            CHECK_ARRAY_NEAR(dw2, rdw, D, tol, OPS_RTOL);
            CHECK_ARRAY_NEAR(db2, rdb, D, tol, OPS_RTOL);
        }
    }
}

/* ---- gelu ---------------------------------------------------------------------------------- */
static double ref_gelu(double x) { return 0.5 * x * (1.0 + erf(x / sqrt(2.0))); }
static double ref_gelu_grad(double x) {
    return 0.5 * (1.0 + erf(x / sqrt(2.0))) +
           x * exp(-0.5 * x * x) / sqrt(2.0 * 3.14159265358979323846);
}

static void test_gelu_known_values(void) {
    const float x[5] = {0.0f, 1.0f, -1.0f, 10.0f, -10.0f};
    float y[5], dx[5] = {0, 0, 0, 0, 0};
    const float ones[5] = {1, 1, 1, 1, 1};
    tsf_gelu_forward(y, x, 5);
    CHECK_NEAR(y[0], 0.0, 1e-7, 0);
    /* exact erf form: 0.841344746; the tanh approximation gives 0.841191990 */
    CHECK_NEAR(y[1], 0.8413447460685429, 2e-7, 0);
    CHECK_NEAR(y[2], -0.15865525393145707, 2e-7, 0);
    CHECK_NEAR(y[3], 10.0, 1e-6, 0);
    CHECK_NEAR(y[4], 0.0, 1e-6, 0);
    tsf_gelu_backward(dx, ones, x, 5);
    CHECK_NEAR(dx[0], 0.5, 1e-7, 0);
    CHECK_NEAR(dx[1], 1.0833154705876864, 1e-6, 0); /* Phi(1) + phi(1) */
    CHECK_NEAR(dx[2], -0.08331547058768636, 1e-6, 0);
    CHECK_NEAR(dx[3], 1.0, 1e-6, 0);
    CHECK_NEAR(dx[4], 0.0, 1e-6, 0);
}

static void test_gelu(void) {
    tsf_rng r;
    size_t n = 1000, i;
    float *x, *y, *dy, *P, *dx;
    double *ry = tsft_allocd(n), *rdx = tsft_allocd(n);
    int k;
    tsf_rng_seed(&r, 301);
    x = rnd_normal(&r, n, 3.0f), dy = rnd_normal(&r, n, 1.0f), P = rnd_normal(&r, n, 1.0f);
    y = ffill(n, NAN), dx = fcopy(P, n);
    for (i = 0; i < n; i++)
        ry[i] = ref_gelu((double)x[i]), rdx[i] = ref_gelu_grad((double)x[i]) * (double)dy[i];
    tsf_gelu_forward(y, x, n);
    CHECK_ARRAY_NEAR(y, ry, n, OPS_ATOL, OPS_RTOL);
    for (k = 1; k <= 2; k++) {
        tsf_gelu_backward(dx, dy, x, n);
        CHECK_ARRAY_NEAR(dx, expect_acc(P, rdx, k, n), n, OPS_ATOL, OPS_RTOL);
    }
    /* in place */
    y = fcopy(x, n);
    tsf_gelu_forward(y, y, n);
    CHECK_ARRAY_NEAR(y, ry, n, OPS_ATOL, OPS_RTOL);
    /* n = 0 touches nothing */
    tsf_gelu_forward(NULL, NULL, 0);
    tsf_gelu_backward(NULL, NULL, NULL, 0);
}

/* linear_gelu: the same bits as tsf_linear_forward then tsf_gelu_forward, with and without
   pre; its backward as tsf_gelu_backward then tsf_linear_backward (accumulating). */
static void test_linear_gelu(void) {
    int M = 37, IN = 19, OUT = 45, k;
    size_t ny = (size_t)M * OUT, nx = (size_t)M * IN, nw = (size_t)OUT * IN;
    tsf_rng r;
    float *x, *w, *b, *dy, *pre, *y, *y2, *pre_ref, *y_ref, *dpre, *dh;
    float *dx, *dw, *db, *dx_ref, *dw_ref, *db_ref;
    tsf_rng_seed(&r, 302);
    x = rnd_normal(&r, nx, 1.0f), w = rnd_normal(&r, nw, 0.5f), b = rnd_normal(&r, OUT, 1.0f);
    dy = rnd_normal(&r, ny, 1.0f);
    pre = ffill(ny, NAN), y = ffill(ny, NAN), y2 = ffill(ny, NAN), pre_ref = ffill(ny, NAN);
    y_ref = ffill(ny, NAN), dpre = ffill(ny, NAN), dh = tsft_alloc(ny);
    dx = rnd_normal(&r, nx, 1.0f), dw = rnd_normal(&r, nw, 1.0f), db = rnd_normal(&r, OUT, 1.0f);
    dx_ref = fcopy(dx, nx), dw_ref = fcopy(dw, nw), db_ref = fcopy(db, OUT);
    tsf_linear_forward(pre_ref, x, w, b, M, IN, OUT);
    tsf_gelu_forward(y_ref, pre_ref, ny);
    tsf_linear_gelu_forward(y, pre, x, w, b, M, IN, OUT);
    CHECK(same_bits(pre, pre_ref, ny) && same_bits(y, y_ref, ny));
    tsf_linear_gelu_forward(y2, NULL, x, w, b, M, IN, OUT); /* inference: no pre */
    CHECK(same_bits(y2, y_ref, ny));
    for (k = 0; k < 2; k++) {
        tsf_linear_gelu_backward(dx, dw, db, dpre, dy, pre, x, w, M, IN, OUT);
        memset(dh, 0, ny * sizeof(float));
        tsf_gelu_backward(dh, dy, pre_ref, ny);
        tsf_linear_backward(dx_ref, dw_ref, db_ref, dh, x, w, M, IN, OUT);
        CHECK(same_bits(dpre, dh, ny));
        CHECK(same_bits(dx, dx_ref, nx) && same_bits(dw, dw_ref, nw) && same_bits(db, db_ref, OUT));
    }
}

/* ---- softmax ------------------------------------------------------------------------------- */
static void ref_softmax(double *out, const float *x, int M, int N) {
    int m, j;
    for (m = 0; m < M; m++) {
        const float *xr = x + (size_t)m * N;
        double mx = -HUGE_VAL, s = 0.0;
        for (j = 0; j < N; j++) mx = (double)xr[j] > mx ? (double)xr[j] : mx;
        for (j = 0; j < N; j++) s += exp((double)xr[j] - mx);
        for (j = 0; j < N; j++) out[(size_t)m * N + j] = exp((double)xr[j] - mx) / s;
    }
}

/* Through the Jacobian: dx_j = sum_i dy_i p_i (delta_ij - p_j). */
static void ref_softmax_backward(double *dx, const float *dy, const double *p, int M, int N) {
    int m, i, j;
    for (m = 0; m < M; m++) {
        const float *g = dy + (size_t)m * N;
        const double *pr = p + (size_t)m * N;
        for (j = 0; j < N; j++) {
            double s = 0.0;
            for (i = 0; i < N; i++) s += (double)g[i] * pr[i] * ((i == j) - pr[j]);
            dx[(size_t)m * N + j] = s;
        }
    }
}

static void test_softmax(void) {
    static const int shapes[][2] = {{1, 1}, {3, 7}, {16, 33}, {5, 200}};
    tsf_rng r;
    int s;
    tsf_rng_seed(&r, 401);
    for (s = 0; s < 4; s++) {
        int M = shapes[s][0], N = shapes[s][1], k;
        size_t n = (size_t)M * N;
        float *x = rnd_normal(&r, n, 3.0f), *y = ffill(n, NAN), *dy = rnd_normal(&r, n, 1.0f);
        float *P = rnd_normal(&r, n, 1.0f), *dx = fcopy(P, n), *y2;
        double *ry = tsft_allocd(n), *rdx = tsft_allocd(n);
        ref_softmax(ry, x, M, N);
        ref_softmax_backward(rdx, dy, ry, M, N);
        tsf_softmax_forward(y, x, M, N);
        CHECK_ARRAY_NEAR(y, ry, n, 1e-7, OPS_RTOL);
        for (k = 1; k <= 2; k++) {
            tsf_softmax_backward(dx, dy, y, M, N);
            CHECK_ARRAY_NEAR(dx, expect_acc(P, rdx, k, n), n, OPS_ATOL, OPS_RTOL);
        }
        y2 = fcopy(x, n); /* in place */
        tsf_softmax_forward(y2, y2, M, N);
        CHECK_ARRAY_NEAR(y2, ry, n, 1e-7, OPS_RTOL);
    }
}

/* Huge inputs: max subtraction keeps everything finite. */
static void test_softmax_stable(void) {
    const float x[8] = {1000.0f, 1000.0f, 1000.0f, 1000.0f, -1000.0f, -1001.0f, 500.0f, -500.0f};
    float y[8];
    double e1 = exp(-1.0);
    tsf_softmax_forward(y, x, 4, 2);
    CHECK_NEAR(y[0], 0.5, 1e-7, 0);
    CHECK_NEAR(y[3], 0.5, 1e-7, 0);
    CHECK_NEAR(y[4], 1.0 / (1.0 + e1), 1e-6, 0);
    CHECK_NEAR(y[5], e1 / (1.0 + e1), 1e-6, 0);
    CHECK_NEAR(y[6], 1.0, 1e-7, 0);
    CHECK_NEAR(y[7], 0.0, 1e-7, 0);
}

/* ---- attention ----------------------------------------------------------------------------- */
/* qkv // (S, SL, 3D). att // (S, NH, SL, SL), out // (S, SL, D). */
static void ref_attention(double *out, double *att, const float *qkv, int S, int SL, int D,
                          int NH) {
    int HS = D / NH, s, g, i, j, d;
    double scale = 1.0 / sqrt((double)HS);
    for (s = 0; s < S; s++)
        for (g = 0; g < NH; g++)
            for (i = 0; i < SL; i++) {
                const float *q = qkv + ((size_t)s * SL + i) * 3 * D + g * HS;
                double *a = att + (((size_t)s * NH + g) * SL + i) * SL, mx = -HUGE_VAL, sum = 0.0;
                for (j = 0; j < SL; j++) {
                    const float *kk = qkv + ((size_t)s * SL + j) * 3 * D + D + g * HS;
                    double dot = 0.0;
                    for (d = 0; d < HS; d++) dot += (double)q[d] * (double)kk[d];
                    a[j] = dot * scale;
                    mx = a[j] > mx ? a[j] : mx;
                }
                for (j = 0; j < SL; j++) sum += (a[j] = exp(a[j] - mx));
                for (j = 0; j < SL; j++) a[j] /= sum;
                for (d = 0; d < HS; d++) {
                    double o = 0.0;
                    for (j = 0; j < SL; j++)
                        o += a[j] * (double)qkv[((size_t)s * SL + j) * 3 * D + 2 * D + g * HS + d];
                    out[((size_t)s * SL + i) * D + g * HS + d] = o;
                }
            }
}

/* dqkv // (S, SL, 3D) = gradient of <out, dout>, from the double reference probabilities. */
static void ref_attention_backward(double *dqkv, const float *dout, const float *qkv,
                                   const double *att, int S, int SL, int D, int NH) {
    int HS = D / NH, s, g, i, j, d;
    double scale = 1.0 / sqrt((double)HS), *datt = tsft_allocd((size_t)SL);
    size_t n = (size_t)S * SL * 3 * D, t;
    for (t = 0; t < n; t++) dqkv[t] = 0.0;
#define QKV(s_, l_, part, g_, d_) (((size_t)(s_)*SL + (l_)) * 3 * D + (part)*D + (g_)*HS + (d_))
    for (s = 0; s < S; s++)
        for (g = 0; g < NH; g++)
            for (i = 0; i < SL; i++) {
                const double *a = att + (((size_t)s * NH + g) * SL + i) * SL;
                const float *dy = dout + ((size_t)s * SL + i) * D + g * HS;
                double dot = 0.0;
                for (j = 0; j < SL; j++) { /* d a_ij and d v_j */
                    double acc = 0.0;
                    for (d = 0; d < HS; d++) {
                        acc += (double)dy[d] * (double)qkv[QKV(s, j, 2, g, d)];
                        dqkv[QKV(s, j, 2, g, d)] += a[j] * (double)dy[d];
                    }
                    datt[j] = acc;
                    dot += acc * a[j];
                }
                for (j = 0; j < SL; j++) { /* d score_ij, then q_i and k_j */
                    double ds = a[j] * (datt[j] - dot) * scale;
                    for (d = 0; d < HS; d++) {
                        dqkv[QKV(s, i, 0, g, d)] += ds * (double)qkv[QKV(s, j, 1, g, d)];
                        dqkv[QKV(s, j, 1, g, d)] += ds * (double)qkv[QKV(s, i, 0, g, d)];
                    }
                }
            }
#undef QKV
}

static void test_attention(void) {
    static const int shapes[][4] = {/* S, SL, D, NH */
                                    {2, 7, 12, 3}, {3, 1, 8, 2}, {1, 5, 4, 1}, {2, 17, 32, 2},
                                    {1, 70, 8, 2}, {4, 3, 6, 6}, {1, 9, 40, 5}};
    tsf_rng r;
    int s;
    tsf_rng_seed(&r, 501);
    for (s = 0; s < (int)(sizeof shapes / sizeof shapes[0]); s++) {
        int S = shapes[s][0], SL = shapes[s][1], D = shapes[s][2], NH = shapes[s][3], k;
        int before = tsft_st()->failed_checks;
        size_t nq = (size_t)S * SL * 3 * D, na = (size_t)S * NH * SL * SL, no = (size_t)S * SL * D;
        float *qkv = rnd_normal(&r, nq, 1.0f), *dout = rnd_normal(&r, no, 1.0f);
        float *att = ffill(na, NAN), *out = ffill(no, NAN), *datt = ffill(na, NAN);
        float *P = rnd_normal(&r, nq, 1.0f), *dqkv = fcopy(P, nq);
        double *ratt = tsft_allocd(na), *rout = tsft_allocd(no), *rdqkv = tsft_allocd(nq);
        ref_attention(rout, ratt, qkv, S, SL, D, NH);
        ref_attention_backward(rdqkv, dout, qkv, ratt, S, SL, D, NH);
        tsf_attention_forward(out, att, qkv, S, SL, D, NH);
        CHECK_ARRAY_NEAR(att, ratt, na, OPS_ATOL, OPS_RTOL);
        CHECK_ARRAY_NEAR(out, rout, no, OPS_ATOL, OPS_RTOL);
        for (k = 1; k <= 2; k++) {
            tsf_attention_backward(dqkv, datt, dout, qkv, att, S, SL, D, NH);
            CHECK_ARRAY_NEAR(dqkv, expect_acc(P, rdqkv, k, nq), nq, 4 * OPS_ATOL, OPS_RTOL);
        }
        if (tsft_st()->failed_checks > before)
            printf("    attention shape S=%d SL=%d D=%d NH=%d failed\n", S, SL, D, NH);
    }
}

/* The fused kernels against the double reference and against tsf_attention_forward/backward:
   the direct path (SL <= 32 and heads of at most 128, a multiple of 4; or SL <= 256 and heads
   of at most 16 in blocks of 32 queries: SL 33, 129 and 256), the tiled path beside its edges
   (SL 33 with a head of 20, SL 257, a head of 136 and one of 6), sequences of several query and
   key tiles (SL 300 = 4 x 96 query rows, 2 x 256 keys), and large scores whose running max changes
   from one key tile to the next (the online rescaling). lse against the reference's log-sum-exp.
   The model's calls, with work space, give the same bits. */
static void test_attention_fused(void) {
    static const int shapes[][5] = {/* S, SL, D, NH, scale of q and k x 10 */
                                    {2, 7, 12, 3, 10},   {3, 1, 8, 2, 10},    {1, 5, 4, 1, 10},
                                    {2, 17, 32, 2, 10},  {1, 300, 16, 2, 10}, {2, 97, 6, 3, 10},
                                    {1, 520, 8, 1, 30},  {1, 9, 40, 5, 10},   {2, 32, 16, 2, 30},
                                    {1, 33, 16, 2, 30},  {1, 9, 272, 2, 10},  {1, 8, 256, 2, 10},
                                    {2, 9, 12, 2, 10},   {2, 129, 64, 8, 30}, {1, 256, 16, 1, 30},
                                    {1, 257, 16, 1, 30}, {1, 33, 40, 2, 30}};
    tsf_rng r;
    int s;
    tsf_rng_seed(&r, 503);
    for (s = 0; s < (int)(sizeof shapes / sizeof shapes[0]); s++) {
        int S = shapes[s][0], SL = shapes[s][1], D = shapes[s][2], NH = shapes[s][3], k, g, i, j;
        int HS = D / NH, before = tsft_st()->failed_checks;
        int direct = HS % 4 == 0 && ((SL <= 32 && HS <= 128) || (SL <= 256 && HS <= 16));
        size_t nq = (size_t)S * SL * 3 * D, na = (size_t)S * NH * SL * SL, no = (size_t)S * SL * D;
        size_t nl = (size_t)S * NH * SL, l;
        float *qkv = rnd_normal(&r, nq, 1.0f), *dout = rnd_normal(&r, no, 1.0f);
        float *out = ffill(no, NAN), *lse = ffill(nl, NAN), *out2 = ffill(no, NAN);
        float *att = ffill(na, NAN), *datt = ffill(na, NAN), *ref = ffill(no, NAN);
        float *P = rnd_normal(&r, nq, 1.0f), *dqkv = fcopy(P, nq), *dqkv2 = fcopy(P, nq);
        double *ratt = tsft_allocd(na), *rout = tsft_allocd(no), *rdqkv = tsft_allocd(nq);
        double *rlse = tsft_allocd(nl);
        for (l = 0; l < nq; l++) /* q and k larger: peaked rows, maxima that move */
            if (l % (3 * (size_t)D) < 2 * (size_t)D) qkv[l] *= (float)shapes[s][4] / 10.0f;
        ref_attention(rout, ratt, qkv, S, SL, D, NH);
        ref_attention_backward(rdqkv, dout, qkv, ratt, S, SL, D, NH);
        for (l = 0; l < nl; l++) { /* lse from the reference: log sum exp(score) */
            const float *q = qkv + (l / ((size_t)NH * SL) * SL + l % SL) * 3 * D;
            double mx = -HUGE_VAL, sum = 0.0, sc[600];
            g = (int)(l / SL % NH);
            for (j = 0; j < SL; j++) {
                const float *kk = qkv + (l / ((size_t)NH * SL) * SL + j) * 3 * D + D;
                double dot = 0.0;
                for (i = 0; i < D / NH; i++)
                    dot += (double)q[g * (D / NH) + i] * (double)kk[g * (D / NH) + i];
                sc[j] = dot / sqrt((double)(D / NH));
                mx = sc[j] > mx ? sc[j] : mx;
            }
            for (j = 0; j < SL; j++) sum += exp(sc[j] - mx);
            rlse[l] = mx + log(sum);
        }
        tsf_attention_fused_forward(out, lse, qkv, S, SL, D, NH);
        CHECK_ARRAY_NEAR(out, rout, no, OPS_ATOL, OPS_RTOL);
        CHECK_ARRAY_NEAR(lse, rlse, nl, OPS_ATOL, OPS_RTOL);
        tsf_attention_fused_forward(out2, NULL, qkv, S, SL, D, NH); /* lse is optional */
        CHECK(same_bits(out2, out, no));
        { /* with the model's work space (keys and queries packed once): the same bits, all the
             queries or the first alone (the last block's), with room for up to 3 threads */
            float *out3 = ffill(no, NAN), *lse3 = ffill(nl, NAN), *o1 = ffill(no, NAN);
            tsf__work w;
            w.n = 3 * ((size_t)SL + 64 + TSF__ATT_BQ + 32) * (size_t)HS, w.p = tsft_alloc(w.n);
            tsf__attention_fused_forward(out3, lse3, qkv, S, SL, SL, D, NH, w);
            CHECK(same_bits(out3, out, no));
            CHECK(same_bits(lse3, lse, nl));
            tsf__attention_fused_forward(o1, NULL, qkv, S, SL, 1, D, NH, w);
            tsf__attention_fused_forward(out3, NULL, qkv, S, SL, 1, D, NH, tsf__no_work);
            CHECK(same_bits(o1, out3, (size_t)S * D));
        }
        tsf_attention_forward(ref, att, qkv, S, SL, D, NH); /* the unfused kernel agrees: to 2e-6
            where both take the scores from the same matmul (the tiled path), else as closely as
            both agree with the reference (the direct path's dot products round differently,
            and large scores magnify that in the exponent) */
        CHECK_ARRAY_NEAR(out, tm_to_double(ref, no), no, direct ? OPS_ATOL : 2e-6,
                         direct ? OPS_RTOL : 2e-6);
        for (k = 1; k <= 2; k++) {
            tsf_attention_fused_backward(dqkv, dout, qkv, out, lse, S, SL, D, NH);
            CHECK_ARRAY_NEAR(dqkv, expect_acc(P, rdqkv, k, nq), nq, 4 * OPS_ATOL, OPS_RTOL);
            tsf_attention_backward(dqkv2, datt, dout, qkv, att, S, SL, D, NH);
        }
        CHECK_ARRAY_NEAR(dqkv, tm_to_double(dqkv2, nq), nq, 4 * OPS_ATOL, OPS_RTOL);
        if (tsft_st()->failed_checks > before)
            printf("    fused attention shape S=%d SL=%d D=%d NH=%d failed\n", S, SL, D, NH);
    }
}

/* q = 0: every score is 0, attention is uniform and each output row is the mean of v. */
static void test_attention_uniform(void) {
    int S = 2, SL = 5, D = 6, NH = 2, s, l, c, j;
    size_t nq = (size_t)S * SL * 3 * D;
    tsf_rng r;
    float *qkv, *out = tsft_alloc((size_t)S * SL * D), *att = tsft_alloc((size_t)S * NH * SL * SL);
    tsf_rng_seed(&r, 502);
    qkv = rnd_normal(&r, nq, 1.0f);
    for (s = 0; s < S; s++)
        for (l = 0; l < SL; l++)
            for (c = 0; c < D; c++) qkv[((size_t)s * SL + l) * 3 * D + c] = 0.0f;
    tsf_attention_forward(out, att, qkv, S, SL, D, NH);
    for (j = 0; j < S * NH * SL * SL; j++) CHECK_NEAR(att[j], 1.0 / SL, 1e-7, 0);
    for (s = 0; s < S; s++)
        for (c = 0; c < D; c++) {
            double m = 0.0;
            for (l = 0; l < SL; l++) m += (double)qkv[((size_t)s * SL + l) * 3 * D + 2 * D + c];
            m /= SL;
            for (l = 0; l < SL; l++) CHECK_NEAR(out[((size_t)s * SL + l) * D + c], m, 1e-6, 1e-5);
        }
}

/* ---- residual ------------------------------------------------------------------------------ */
static void test_residual(void) {
    tsf_rng r;
    size_t n = 517, i;
    float *a, *b, *dy, *y, *Pa, *Pb, *da, *db, *x;
    double *ry = tsft_allocd(n), *rdy = tsft_allocd(n);
    int k;
    tsf_rng_seed(&r, 601);
    a = rnd_normal(&r, n, 1.0f), b = rnd_normal(&r, n, 1.0f), dy = rnd_normal(&r, n, 1.0f);
    Pa = rnd_normal(&r, n, 1.0f), Pb = rnd_normal(&r, n, 1.0f);
    for (i = 0; i < n; i++) ry[i] = (double)a[i] + (double)b[i], rdy[i] = (double)dy[i];
    y = ffill(n, NAN);
    tsf_residual_forward(y, a, b, n);
    CHECK_ARRAY_NEAR(y, ry, n, 0, 1e-7);
    x = fcopy(a, n); /* out aliases a */
    tsf_residual_forward(x, x, b, n);
    CHECK_ARRAY_NEAR(x, ry, n, 0, 1e-7);
    x = fcopy(b, n); /* out aliases b */
    tsf_residual_forward(x, a, x, n);
    CHECK_ARRAY_NEAR(x, ry, n, 0, 1e-7);
    da = fcopy(Pa, n), db = fcopy(Pb, n);
    for (k = 1; k <= 2; k++) {
        tsf_residual_backward(da, db, dy, n);
        CHECK_ARRAY_NEAR(da, expect_acc(Pa, rdy, k, n), n, 1e-6, 1e-6);
        CHECK_ARRAY_NEAR(db, expect_acc(Pb, rdy, k, n), n, 1e-6, 1e-6);
    }
    /* da == db: both contributions land in the same buffer */
    da = fcopy(Pa, n);
    tsf_residual_backward(da, da, dy, n);
    CHECK_ARRAY_NEAR(da, expect_acc(Pa, rdy, 2, n), n, 1e-6, 1e-6);
    /* NULL skips that gradient */
    da = fcopy(Pa, n), db = fcopy(Pb, n);
    tsf_residual_backward(NULL, db, dy, n);
    tsf_residual_backward(da, NULL, dy, n);
    CHECK_ARRAY_NEAR(da, expect_acc(Pa, rdy, 1, n), n, 1e-6, 1e-6);
    CHECK_ARRAY_NEAR(db, expect_acc(Pb, rdy, 1, n), n, 1e-6, 1e-6);
}

/* ---- mean ---------------------------------------------------------------------------------- */
static void test_mean(void) {
    static const int cfg[][4] = {
        /* G, R, D, stride */ {2, 3, 5, 8}, {3, 2, 4, 4}, {1, 1, 6, 6}, {4, 8, 16, 17 * 16}};
    tsf_rng r;
    int c;
    tsf_rng_seed(&r, 701);
    for (c = 0; c < 4; c++) {
        int G = cfg[c][0], R = cfg[c][1], D = cfg[c][2], k, g, rr, i;
        size_t stride = (size_t)cfg[c][3], nin = (size_t)(G * R - 1) * stride + D, t;
        float *x = rnd_normal(&r, nin, 1.0f), *y = ffill((size_t)G * D, NAN);
        float *dy = rnd_normal(&r, (size_t)G * D, 1.0f), *P = rnd_normal(&r, nin, 1.0f), *dx;
        double *ry = tsft_allocd((size_t)G * D), *rdx = tsft_allocd(nin);
        char *used = (char *)tsft_alloc_bytes(nin);
        for (g = 0; g < G; g++)
            for (rr = 0; rr < R; rr++)
                for (i = 0; i < D; i++) used[((size_t)g * R + rr) * stride + i] = 1;
        for (t = 0; t < nin; t++)
            if (!used[t]) x[t] = NAN; /* the gaps between rows must not be read */
        for (g = 0; g < G; g++)
            for (i = 0; i < D; i++) {
                double s = 0.0;
                for (rr = 0; rr < R; rr++) {
                    size_t at = ((size_t)g * R + rr) * stride + i;
                    s += (double)x[at];
                    rdx[at] = (double)dy[g * D + i] / R;
                }
                ry[g * D + i] = s / R;
            }
        tsf_mean_forward(y, x, G, R, D, stride);
        CHECK_ARRAY_NEAR(y, ry, (size_t)G * D, OPS_ATOL, OPS_RTOL);
        dx = fcopy(P, nin);
        for (k = 1; k <= 2; k++) {
            tsf_mean_backward(dx, dy, G, R, D, stride);
            /* rdx is 0 in the gaps: they keep their starting values */
            CHECK_ARRAY_NEAR(dx, expect_acc(P, rdx, k, nin), nin, 1e-6, 1e-6);
        }
        for (t = 0; t < nin; t++)
            if (!used[t] && !CHECK(same_bits(dx + t, P + t, 1))) break;
    }
}

/* ---- cross-entropy ------------------------------------------------------------------------- */
static void ref_crossentropy(double *loss, double *probs, const float *z, const int *labels, int B,
                             int K, double eps) {
    int b, k;
    for (b = 0; b < B; b++) {
        const float *zr = z + (size_t)b * K;
        double mx = -HUGE_VAL, s = 0.0, lse, l;
        for (k = 0; k < K; k++) mx = (double)zr[k] > mx ? (double)zr[k] : mx;
        for (k = 0; k < K; k++) s += exp((double)zr[k] - mx);
        lse = mx + log(s);
        l = lse;
        for (k = 0; k < K; k++) {
            double target = eps / K + (k == labels[b] ? 1.0 - eps : 0.0);
            l -= target * (double)zr[k];
            probs[(size_t)b * K + k] = exp((double)zr[k] - lse);
        }
        loss[b] = l;
    }
}

static void test_crossentropy(void) {
    static const int shapes[][2] = {{1, 1}, {4, 10}, {7, 3}, {2, 400}};
    const float smooth[3] = {0.0f, 0.1f, 0.5f};
    tsf_rng r;
    int s, e;
    tsf_rng_seed(&r, 801);
    for (s = 0; s < 4; s++)
        for (e = 0; e < 3; e++) {
            int B = shapes[s][0], K = shapes[s][1], b, k, j;
            size_t n = (size_t)B * K;
            float *z = rnd_normal(&r, n, 3.0f), *loss = ffill(B, NAN), *probs = ffill(n, NAN);
            float *P = rnd_normal(&r, n, 1.0f), *dz = fcopy(P, n), dloss = 0.37f;
            double *rloss = tsft_allocd(B), *rprobs = tsft_allocd(n), *rdz = tsft_allocd(n);
            int *labels = (int *)tsft_alloc_bytes((size_t)B * sizeof(int));
            for (b = 0; b < B; b++) labels[b] = (int)(tsf_rng_u32(&r) % (unsigned)K);
            ref_crossentropy(rloss, rprobs, z, labels, B, K, (double)smooth[e]);
            for (b = 0; b < B; b++)
                for (k = 0; k < K; k++) {
                    double target =
                        (double)smooth[e] / K + (k == labels[b] ? 1.0 - (double)smooth[e] : 0.0);
                    rdz[(size_t)b * K + k] = (double)dloss * (rprobs[(size_t)b * K + k] - target);
                }
            tsf_crossentropy_forward(loss, probs, z, labels, B, K, smooth[e]);
            CHECK_ARRAY_NEAR(loss, rloss, B, OPS_ATOL, OPS_RTOL);
            CHECK_ARRAY_NEAR(probs, rprobs, n, 1e-7, OPS_RTOL);
            for (j = 1; j <= 2; j++) {
                tsf_crossentropy_backward(dz, probs, labels, B, K, smooth[e], dloss);
                CHECK_ARRAY_NEAR(dz, expect_acc(P, rdz, j, n), n, 1e-6, OPS_RTOL);
            }
        }
}

/* Huge logits: a naive exp overflows (or underflows to log 0); logsumexp stays finite. */
static void test_crossentropy_stable(void) {
    /* B = 4 rows of K = 3 */
    const float z[12] = {1000.0f,  1000.0f,  0.0f,     /* label 0 */
                         1000.0f,  0.0f,     -5.0f,    /* label 1 */
                         -1000.0f, -1001.0f, -1002.0f, /* label 2 */
                         88.0f,    89.0f,    90.0f};   /* label 2: exp(90) overflows float */
    const int labels[4] = {0, 1, 2, 2};
    float loss[4], probs[12], dz[12];
    double rloss[4], rprobs[12], e1 = exp(-1.0), e2 = exp(-2.0);
    int i;
    tsf_crossentropy_forward(loss, probs, z, labels, 4, 3, 0.0f);
    for (i = 0; i < 4; i++) CHECK(isfinite(loss[i]));
    for (i = 0; i < 12; i++) CHECK(isfinite(probs[i]));
    CHECK_NEAR(loss[0], log(2.0), 1.5e-4, 0); /* 1000 + log 2 in float: ulp 6e-5 */
    CHECK_NEAR(loss[1], 1000.0, 1e-3, 0);
    CHECK_NEAR(loss[2], 2.0 + log(1.0 + e1 + e2), 1e-4, 0);
    CHECK_NEAR(loss[3], log(1.0 + e1 + e2), 1e-5, 0);
    CHECK_NEAR(probs[0], 0.5, 1e-7, 0);
    CHECK_NEAR(probs[2], 0.0, 1e-30, 0);
    CHECK_NEAR(probs[6], 1.0 / (1.0 + e1 + e2), 1e-6, 0);
    ref_crossentropy(rloss, rprobs, z, labels, 4, 3, 0.0);
    CHECK_ARRAY_NEAR(loss, rloss, 4, 1e-4, 1e-6);
    CHECK_ARRAY_NEAR(probs, rprobs, 12, 1e-7, 1e-5);
    /* with smoothing, the loss grows by eps * (lse - mean of logits) minus the label term */
    tsf_crossentropy_forward(loss, probs, z, labels, 4, 3, 0.3f);
    ref_crossentropy(rloss, rprobs, z, labels, 4, 3, (double)0.3f);
    for (i = 0; i < 4; i++) CHECK(isfinite(loss[i]));
    CHECK_ARRAY_NEAR(loss, rloss, 4, 1e-3, 1e-5);
    /* row 0: targets 0.8, 0.1, 0.1 -> (1000 + log 2) - (800 + 100 + 0) = 100 + log 2 */
    CHECK_NEAR(loss[0], 100.0 + log(2.0), 2e-3, 0);
    memset(dz, 0, sizeof dz);
    tsf_crossentropy_backward(dz, probs, labels, 4, 3, 0.3f, 1.0f);
    for (i = 0; i < 12; i++) CHECK(isfinite(dz[i]));
    CHECK_NEAR(dz[0], 0.5 - 0.8, 1e-6, 0);
    CHECK_NEAR(dz[2], 0.0 - 0.1, 1e-6, 0);
}

/* ---- patch embedding ----------------------------------------------------------------------- */
/* The convolution written directly, pixel by pixel. x // (B, C, T, H, W), w // (D, C, P, P). */
#define PX(b_, c_, t_, y_, x_) ((((size_t)(b_)*C + (c_)) * T + (t_)) * H + (y_)) * W + (x_)
static void ref_patch_embed(double *out, const float *x, const float *w, const float *bias, int B,
                            int C, int T, int H, int W, int P, int D) {
    int Hp = H / P, Wp = W / P, b, t, i, j, d, c, ky, kx;
    for (b = 0; b < B; b++)
        for (t = 0; t < T; t++)
            for (i = 0; i < Hp; i++)
                for (j = 0; j < Wp; j++)
                    for (d = 0; d < D; d++) {
                        double s = bias ? (double)bias[d] : 0.0;
                        for (c = 0; c < C; c++)
                            for (ky = 0; ky < P; ky++)
                                for (kx = 0; kx < P; kx++)
                                    s += (double)w[((d * C + c) * P + ky) * P + kx] *
                                         (double)x[PX(b, c, t, i * P + ky, j * P + kx)];
                        out[((((size_t)b * T + t) * Hp + i) * Wp + j) * D + d] = s;
                    }
}

static void ref_patch_embed_backward(double *dx, double *dw, double *dbias, const float *dout,
                                     const float *x, const float *w, int B, int C, int T, int H,
                                     int W, int P, int D) {
    int Hp = H / P, Wp = W / P, b, t, i, j, d, c, ky, kx;
    size_t n;
    for (n = 0; n < (size_t)B * C * T * H * W; n++) dx[n] = 0.0;
    for (n = 0; n < (size_t)D * C * P * P; n++) dw[n] = 0.0;
    for (d = 0; d < D; d++) dbias[d] = 0.0;
    for (b = 0; b < B; b++)
        for (t = 0; t < T; t++)
            for (i = 0; i < Hp; i++)
                for (j = 0; j < Wp; j++)
                    for (d = 0; d < D; d++) {
                        double g = (double)dout[((((size_t)b * T + t) * Hp + i) * Wp + j) * D + d];
                        dbias[d] += g;
                        for (c = 0; c < C; c++)
                            for (ky = 0; ky < P; ky++)
                                for (kx = 0; kx < P; kx++) {
                                    size_t px = PX(b, c, t, i * P + ky, j * P + kx);
                                    size_t wi = (((size_t)d * C + c) * P + ky) * P + kx;
                                    dx[px] += g * (double)w[wi];
                                    dw[wi] += g * (double)x[px];
                                }
                    }
}

static const int pe_cfg[][7] = {/* B, C, T, H, W, P, D */
                                {1, 1, 1, 4, 4, 2, 3},
                                {2, 2, 3, 7, 8, 3, 5},
                                {1, 3, 2, 8, 8, 4, 16},
                                {2, 1, 2, 3, 2, 1, 4},
                                {1, 2, 1, 9, 5, 4, 7}};

static void test_patch_embed(void) {
    tsf_rng r;
    int s;
    tsf_rng_seed(&r, 901);
    for (s = 0; s < (int)(sizeof pe_cfg / sizeof pe_cfg[0]); s++) {
        int B = pe_cfg[s][0], C = pe_cfg[s][1], T = pe_cfg[s][2], H = pe_cfg[s][3];
        int W = pe_cfg[s][4], P = pe_cfg[s][5], D = pe_cfg[s][6], Hp = H / P, Wp = W / P;
        int M = B * T * Hp * Wp, CPP = C * P * P, b, t, i, j, c, ky, kx, k;
        int before = tsft_st()->failed_checks;
        size_t nx = (size_t)B * C * T * H * W, nw = (size_t)D * CPP, no = (size_t)M * D, px;
        float *x = rnd_normal(&r, nx, 1.0f), *w = rnd_normal(&r, nw, 0.5f),
              *bias = rnd_normal(&r, D, 1.0f);
        float *out = ffill(no, NAN), *cols = ffill((size_t)M * CPP, NAN),
              *dout = rnd_normal(&r, no, 1.0f);
        float *P0 = rnd_normal(&r, nx, 1.0f), *P1 = rnd_normal(&r, nw, 1.0f),
              *P2 = rnd_normal(&r, D, 1.0f);
        float *dx = fcopy(P0, nx), *dw = fcopy(P1, nw), *db = fcopy(P2, D);
        float *dcols = ffill((size_t)M * CPP, NAN);
        double *rout = tsft_allocd(no), *rdx = tsft_allocd(nx), *rdw = tsft_allocd(nw),
               *rdb = tsft_allocd(D);
        double *rcols = tsft_allocd((size_t)M * CPP);
        /* the documented layout of cols: row ((b*T + t)*Hp + i)*Wp + j, column c*P*P + ky*P + kx */
        for (b = 0; b < B; b++)
            for (t = 0; t < T; t++)
                for (i = 0; i < Hp; i++)
                    for (j = 0; j < Wp; j++)
                        for (c = 0; c < C; c++)
                            for (ky = 0; ky < P; ky++)
                                for (kx = 0; kx < P; kx++)
                                    rcols[((((size_t)b * T + t) * Hp + i) * Wp + j) * CPP +
                                          (c * P + ky) * P + kx] =
                                        (double)x[PX(b, c, t, i * P + ky, j * P + kx)];
        ref_patch_embed(rout, x, w, bias, B, C, T, H, W, P, D);
        ref_patch_embed_backward(rdx, rdw, rdb, dout, x, w, B, C, T, H, W, P, D);
        tsf_patch_embed_forward(out, cols, x, w, bias, B, C, T, H, W, P, D);
        CHECK_ARRAY_NEAR(cols, rcols, (size_t)M * CPP, 0, 0);
        CHECK_ARRAY_NEAR(out, rout, no, OPS_ATOL, OPS_RTOL);
        for (k = 1; k <= 2; k++) {
            tsf_patch_embed_backward(dx, dcols, dw, db, dout, cols, w, B, C, T, H, W, P, D);
            CHECK_ARRAY_NEAR(dx, expect_acc(P0, rdx, k, nx), nx, OPS_ATOL, OPS_RTOL);
            CHECK_ARRAY_NEAR(dw, expect_acc(P1, rdw, k, nw), nw, OPS_ATOL, OPS_RTOL);
            CHECK_ARRAY_NEAR(db, expect_acc(P2, rdb, k, D), D, OPS_ATOL, OPS_RTOL);
        }
        /* leftover pixels (rows >= Hp*P or columns >= Wp*P) get exactly zero gradient */
        for (b = 0; b < B; b++)
            for (c = 0; c < C; c++)
                for (t = 0; t < T; t++)
                    for (i = 0; i < H; i++)
                        for (j = 0; j < W; j++)
                            if (i >= Hp * P || j >= Wp * P) {
                                px = PX(b, c, t, i, j);
                                if (!CHECK(same_bits(dx + px, P0 + px, 1))) goto next;
                            }
        /* bias may be NULL in the forward */
        tsf_patch_embed_forward(out, cols, x, w, NULL, B, C, T, H, W, P, D);
        ref_patch_embed(rout, x, w, NULL, B, C, T, H, W, P, D);
        CHECK_ARRAY_NEAR(out, rout, no, OPS_ATOL, OPS_RTOL);
    next:
        if (tsft_st()->failed_checks > before)
            printf("    patch_embed config %d (B=%d C=%d T=%d H=%d W=%d P=%d D=%d) failed\n", s, B,
                   C, T, H, W, P, D);
    }
}

/* dinp == NULL: dcols may be NULL too, and the weight gradients are still right. */
static void test_patch_embed_no_dinp(void) {
    int B = 2, C = 2, T = 2, H = 6, W = 5, P = 2, D = 3, Hp = H / P, Wp = W / P;
    int M = B * T * Hp * Wp, CPP = C * P * P;
    size_t nx = (size_t)B * C * T * H * W, nw = (size_t)D * CPP, no = (size_t)M * D;
    tsf_rng r;
    float *x, *w, *bias, *out, *cols, *dout, *dw, *db;
    double *rdx = tsft_allocd(nx), *rdw = tsft_allocd(nw), *rdb = tsft_allocd(D);
    tsf_rng_seed(&r, 902);
    x = rnd_normal(&r, nx, 1.0f), w = rnd_normal(&r, nw, 1.0f), bias = rnd_normal(&r, D, 1.0f);
    out = tsft_alloc(no), cols = tsft_alloc((size_t)M * CPP), dout = rnd_normal(&r, no, 1.0f);
    dw = tsft_alloc(nw), db = tsft_alloc(D);
    tsf_patch_embed_forward(out, cols, x, w, bias, B, C, T, H, W, P, D);
    tsf_patch_embed_backward(NULL, NULL, dw, db, dout, cols, w, B, C, T, H, W, P, D);
    ref_patch_embed_backward(rdx, rdw, rdb, dout, x, w, B, C, T, H, W, P, D);
    CHECK_ARRAY_NEAR(dw, rdw, nw, OPS_ATOL, OPS_RTOL);
    CHECK_ARRAY_NEAR(db, rdb, D, OPS_ATOL, OPS_RTOL);
}
#undef PX
