/* test_grad.c - every backward against central finite differences of its forward.
   Included by test_main.c.

   The loss is a random projection of the output, L = sum(out * R), so dout = R. Each input
   element is perturbed in float by +-eps, L is evaluated in double, and
       fd = (L(x + eps) - L(x - eps)) / ((x + eps) - (x - eps))
   (the actual float step). The whole gradient vector must satisfy
       max |analytic - fd| <= GRAD_RTOL * max |fd| + GRAD_ATOL.
   Shapes are tiny so the whole file runs in milliseconds. */

#define GRAD_RTOL 1e-2
#define GRAD_ATOL 1e-4

typedef double (*grad_loss_fn)(void *ctx);

/* L = sum_i out[i] * R[i], in double. */
static double grad_project(const float *out, const float *R, size_t n) {
    double s = 0.0;
    size_t i;
    for (i = 0; i < n; i++) s += (double)out[i] * (double)R[i];
    return s;
}

/* fd[i] = dL/dx[i] by central differences; x is restored afterwards. */
static double *grad_fd(float *x, size_t n, float eps, grad_loss_fn loss, void *ctx) {
    double *fd = tsft_allocd(n);
    size_t i;
    for (i = 0; i < n; i++) {
        float x0 = x[i], xp, xm;
        double lp, lm;
        x[i] = x0 + eps;
        xp = x[i];
        lp = loss(ctx);
        x[i] = x0 - eps;
        xm = x[i];
        lm = loss(ctx);
        x[i] = x0;
        fd[i] = (lp - lm) / ((double)xp - (double)xm);
    }
    return fd;
}

#define CHECK_GRAD(analytic, fd, n) CHECK_VEC_REL(analytic, fd, n, GRAD_RTOL, GRAD_ATOL)

/* ---- linear -------------------------------------------------------------------------------- */
typedef struct {
    float *x, *w, *b, *out, *R;
    int M, IN, OUT;
} grad_linear_ctx;

static double grad_linear_loss(void *p) {
    grad_linear_ctx *c = (grad_linear_ctx *)p;
    tsf_linear_forward(c->out, c->x, c->w, c->b, c->M, c->IN, c->OUT);
    return grad_project(c->out, c->R, (size_t)c->M * c->OUT);
}

static void test_grad_linear(void) {
    grad_linear_ctx c;
    tsf_rng r;
    size_t nx, nw;
    float *dx, *dw, *db;
    tsf_rng_seed(&r, 1001);
    c.M = 3, c.IN = 5, c.OUT = 4;
    nx = (size_t)c.M * c.IN, nw = (size_t)c.OUT * c.IN;
    c.x = rnd_normal(&r, nx, 1.0f), c.w = rnd_normal(&r, nw, 1.0f),
    c.b = rnd_normal(&r, c.OUT, 1.0f);
    c.out = tsft_alloc((size_t)c.M * c.OUT), c.R = rnd_normal(&r, (size_t)c.M * c.OUT, 1.0f);
    dx = tsft_alloc(nx), dw = tsft_alloc(nw), db = tsft_alloc(c.OUT);
    tsf_linear_backward(dx, dw, db, c.R, c.x, c.w, c.M, c.IN, c.OUT);
    CHECK_GRAD(dx, grad_fd(c.x, nx, 1e-2f, grad_linear_loss, &c), nx);
    CHECK_GRAD(dw, grad_fd(c.w, nw, 1e-2f, grad_linear_loss, &c), nw);
    CHECK_GRAD(db, grad_fd(c.b, c.OUT, 1e-2f, grad_linear_loss, &c), c.OUT);
}

/* ---- layernorm ----------------------------------------------------------------------------- */
typedef struct {
    float *x, *w, *b, *out, *mean, *rstd, *R, eps;
    int M, D;
} grad_ln_ctx;

static double grad_ln_loss(void *p) {
    grad_ln_ctx *c = (grad_ln_ctx *)p;
    tsf_layernorm_forward(c->out, c->mean, c->rstd, c->x, c->w, c->b, c->M, c->D, c->eps);
    return grad_project(c->out, c->R, (size_t)c->M * c->D);
}

static void test_grad_layernorm(void) {
    grad_ln_ctx c;
    tsf_rng r;
    size_t n;
    float *dx, *dw, *db;
    tsf_rng_seed(&r, 1002);
    c.M = 3, c.D = 6, c.eps = 1e-5f;
    n = (size_t)c.M * c.D;
    c.x = rnd_normal(&r, n, 1.0f), c.w = rnd_normal(&r, c.D, 1.0f), c.b = rnd_normal(&r, c.D, 1.0f);
    c.out = tsft_alloc(n), c.mean = tsft_alloc(c.M), c.rstd = tsft_alloc(c.M);
    c.R = rnd_normal(&r, n, 1.0f);
    dx = tsft_alloc(n), dw = tsft_alloc(c.D), db = tsft_alloc(c.D);
    grad_ln_loss(&c); /* saves mean and rstd at the unperturbed point */
    tsf_layernorm_backward(dx, dw, db, c.R, c.x, c.w, c.mean, c.rstd, c.M, c.D);
    CHECK_GRAD(dx, grad_fd(c.x, n, 1e-3f, grad_ln_loss, &c), n);
    CHECK_GRAD(dw, grad_fd(c.w, c.D, 1e-2f, grad_ln_loss, &c), c.D);
    CHECK_GRAD(db, grad_fd(c.b, c.D, 1e-2f, grad_ln_loss, &c), c.D);
}

/* ---- gelu ---------------------------------------------------------------------------------- */
typedef struct {
    float *x, *out, *R;
    size_t n;
} grad_gelu_ctx;

static double grad_gelu_loss(void *p) {
    grad_gelu_ctx *c = (grad_gelu_ctx *)p;
    tsf_gelu_forward(c->out, c->x, c->n);
    return grad_project(c->out, c->R, c->n);
}

static void test_grad_gelu(void) {
    grad_gelu_ctx c;
    tsf_rng r;
    float *dx;
    tsf_rng_seed(&r, 1003);
    c.n = 24;
    c.x = rnd_uniform(&r, c.n, -4.0f, 4.0f), c.out = tsft_alloc(c.n),
    c.R = rnd_normal(&r, c.n, 1.0f);
    dx = tsft_alloc(c.n);
    tsf_gelu_backward(dx, c.R, c.x, c.n);
    CHECK_GRAD(dx, grad_fd(c.x, c.n, 1e-2f, grad_gelu_loss, &c), c.n);
}

/* ---- softmax ------------------------------------------------------------------------------- */
typedef struct {
    float *x, *out, *R;
    int M, N;
} grad_softmax_ctx;

static double grad_softmax_loss(void *p) {
    grad_softmax_ctx *c = (grad_softmax_ctx *)p;
    tsf_softmax_forward(c->out, c->x, c->M, c->N);
    return grad_project(c->out, c->R, (size_t)c->M * c->N);
}

static void test_grad_softmax(void) {
    grad_softmax_ctx c;
    tsf_rng r;
    size_t n;
    float *dx;
    tsf_rng_seed(&r, 1004);
    c.M = 3, c.N = 5, n = 15;
    c.x = rnd_normal(&r, n, 1.5f), c.out = tsft_alloc(n), c.R = rnd_normal(&r, n, 1.0f);
    dx = tsft_alloc(n);
    grad_softmax_loss(&c);
    tsf_softmax_backward(dx, c.R, c.out, c.M, c.N);
    CHECK_GRAD(dx, grad_fd(c.x, n, 1e-2f, grad_softmax_loss, &c), n);
}

/* ---- attention ----------------------------------------------------------------------------- */
typedef struct {
    float *qkv, *out, *att, *R;
    int S, SL, D, NH;
} grad_attn_ctx;

static double grad_attn_loss(void *p) {
    grad_attn_ctx *c = (grad_attn_ctx *)p;
    tsf_attention_forward(c->out, c->att, c->qkv, c->S, c->SL, c->D, c->NH);
    return grad_project(c->out, c->R, (size_t)c->S * c->SL * c->D);
}

static void test_grad_attention(void) {
    static const int shapes[][4] = {{2, 3, 4, 2}, {1, 4, 6, 3}, {2, 1, 4, 1}};
    tsf_rng r;
    int s;
    tsf_rng_seed(&r, 1005);
    for (s = 0; s < 3; s++) {
        grad_attn_ctx c;
        size_t nq, na, no;
        float *dqkv, *datt;
        c.S = shapes[s][0], c.SL = shapes[s][1], c.D = shapes[s][2], c.NH = shapes[s][3];
        nq = (size_t)c.S * c.SL * 3 * c.D, na = (size_t)c.S * c.NH * c.SL * c.SL;
        no = (size_t)c.S * c.SL * c.D;
        c.qkv = rnd_normal(&r, nq, 1.0f), c.out = tsft_alloc(no), c.att = tsft_alloc(na);
        c.R = rnd_normal(&r, no, 1.0f);
        dqkv = tsft_alloc(nq), datt = tsft_alloc(na);
        grad_attn_loss(&c);
        tsf_attention_backward(dqkv, datt, c.R, c.qkv, c.att, c.S, c.SL, c.D, c.NH);
        CHECK_GRAD(dqkv, grad_fd(c.qkv, nq, 1e-2f, grad_attn_loss, &c), nq);
    }
}

/* ---- residual ------------------------------------------------------------------------------ */
typedef struct {
    float *a, *b, *out, *R;
    size_t n;
} grad_res_ctx;

static double grad_res_loss(void *p) {
    grad_res_ctx *c = (grad_res_ctx *)p;
    tsf_residual_forward(c->out, c->a, c->b, c->n);
    return grad_project(c->out, c->R, c->n);
}

static void test_grad_residual(void) {
    grad_res_ctx c;
    tsf_rng r;
    float *da, *db;
    tsf_rng_seed(&r, 1006);
    c.n = 10;
    c.a = rnd_normal(&r, c.n, 1.0f), c.b = rnd_normal(&r, c.n, 1.0f);
    c.out = tsft_alloc(c.n), c.R = rnd_normal(&r, c.n, 1.0f);
    da = tsft_alloc(c.n), db = tsft_alloc(c.n);
    tsf_residual_backward(da, db, c.R, c.n);
    CHECK_GRAD(da, grad_fd(c.a, c.n, 1e-2f, grad_res_loss, &c), c.n);
    CHECK_GRAD(db, grad_fd(c.b, c.n, 1e-2f, grad_res_loss, &c), c.n);
}

/* ---- mean ---------------------------------------------------------------------------------- */
typedef struct {
    float *x, *out, *R;
    int G, R_, D;
    size_t stride;
} grad_mean_ctx;

static double grad_mean_loss(void *p) {
    grad_mean_ctx *c = (grad_mean_ctx *)p;
    tsf_mean_forward(c->out, c->x, c->G, c->R_, c->D, c->stride);
    return grad_project(c->out, c->R, (size_t)c->G * c->D);
}

static void test_grad_mean(void) {
    grad_mean_ctx c;
    tsf_rng r;
    size_t nx;
    float *dx;
    tsf_rng_seed(&r, 1007);
    c.G = 2, c.R_ = 3, c.D = 4, c.stride = 6; /* gaps of 2 between rows: zero gradient */
    nx = (size_t)(c.G * c.R_ - 1) * c.stride + c.D;
    c.x = rnd_normal(&r, nx, 1.0f), c.out = tsft_alloc((size_t)c.G * c.D);
    c.R = rnd_normal(&r, (size_t)c.G * c.D, 1.0f);
    dx = tsft_alloc(nx);
    tsf_mean_backward(dx, c.R, c.G, c.R_, c.D, c.stride);
    CHECK_GRAD(dx, grad_fd(c.x, nx, 1e-2f, grad_mean_loss, &c), nx);
}

/* ---- cross-entropy ------------------------------------------------------------------------- */
typedef struct {
    float *z, *losses, *probs, smoothing, dloss;
    int *labels, B, K;
} grad_ce_ctx;

/* L = dloss * sum_b losses[b], so dlogits = dloss * (probs - target). */
static double grad_ce_loss(void *p) {
    grad_ce_ctx *c = (grad_ce_ctx *)p;
    double s = 0.0;
    int b;
    tsf_crossentropy_forward(c->losses, c->probs, c->z, c->labels, c->B, c->K, c->smoothing);
    for (b = 0; b < c->B; b++) s += (double)c->losses[b];
    return (double)c->dloss * s;
}

static void test_grad_crossentropy(void) {
    const float smooth[3] = {0.0f, 0.1f, 0.4f};
    tsf_rng r;
    int e;
    tsf_rng_seed(&r, 1008);
    for (e = 0; e < 3; e++) {
        grad_ce_ctx c;
        int labels[3] = {0, 4, 2};
        size_t n;
        float *dz;
        c.B = 3, c.K = 5, c.smoothing = smooth[e], c.dloss = 1.0f / 3.0f, c.labels = labels;
        n = (size_t)c.B * c.K;
        c.z = rnd_normal(&r, n, 2.0f), c.losses = tsft_alloc(c.B), c.probs = tsft_alloc(n);
        dz = tsft_alloc(n);
        grad_ce_loss(&c);
        tsf_crossentropy_backward(dz, c.probs, c.labels, c.B, c.K, c.smoothing, c.dloss);
        CHECK_GRAD(dz, grad_fd(c.z, n, 1e-2f, grad_ce_loss, &c), n);
    }
}

/* ---- patch embedding ----------------------------------------------------------------------- */
typedef struct {
    float *x, *w, *b, *out, *cols, *R;
    int B, C, T, H, W, P, D;
} grad_pe_ctx;

static double grad_pe_loss(void *p) {
    grad_pe_ctx *c = (grad_pe_ctx *)p;
    int M = c->B * c->T * (c->H / c->P) * (c->W / c->P);
    tsf_patch_embed_forward(c->out, c->cols, c->x, c->w, c->b, c->B, c->C, c->T, c->H, c->W, c->P,
                            c->D);
    return grad_project(c->out, c->R, (size_t)M * c->D);
}

static void test_grad_patch_embed(void) {
    grad_pe_ctx c;
    tsf_rng r;
    int M, CPP;
    size_t nx, nw;
    float *dx, *dcols, *dw, *db;
    tsf_rng_seed(&r, 1009);
    /* H = 5 with P = 2: the last pixel row is left over and must get a zero gradient */
    c.B = 2, c.C = 2, c.T = 2, c.H = 5, c.W = 4, c.P = 2, c.D = 3;
    M = c.B * c.T * (c.H / c.P) * (c.W / c.P), CPP = c.C * c.P * c.P;
    nx = (size_t)c.B * c.C * c.T * c.H * c.W, nw = (size_t)c.D * CPP;
    c.x = rnd_normal(&r, nx, 1.0f), c.w = rnd_normal(&r, nw, 1.0f), c.b = rnd_normal(&r, c.D, 1.0f);
    c.out = tsft_alloc((size_t)M * c.D), c.cols = tsft_alloc((size_t)M * CPP);
    c.R = rnd_normal(&r, (size_t)M * c.D, 1.0f);
    dx = tsft_alloc(nx), dcols = tsft_alloc((size_t)M * CPP), dw = tsft_alloc(nw),
    db = tsft_alloc(c.D);
    grad_pe_loss(&c);
    tsf_patch_embed_backward(dx, dcols, dw, db, c.R, c.cols, c.w, c.B, c.C, c.T, c.H, c.W, c.P,
                             c.D);
    CHECK_GRAD(dx, grad_fd(c.x, nx, 1e-2f, grad_pe_loss, &c), nx);
    CHECK_GRAD(dw, grad_fd(c.w, nw, 1e-2f, grad_pe_loss, &c), nw);
    CHECK_GRAD(db, grad_fd(c.b, c.D, 1e-2f, grad_pe_loss, &c), c.D);
}
