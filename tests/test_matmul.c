/* test_matmul.c - tsf_matmul (general, batched) and its nt/nn/tn shorthands against a naive
   double reference; the SIMD micro-kernel against the portable one; and, when compiled with
   -fopenmp, bit-identical results for every thread count (matmul and every kernel).
   Included by test_main.c.

   Tolerance: a float product of K terms is compared with
       |got - want| <= MM_RTOL * (|C0| + sum_k |a_ik b_kj|) + MM_ATOL,
   which bounds rounding whatever the signs and the blocking order. Every element of C that
   the product must not write (padding columns of ldc > N, gaps between batch items) is
   checked to keep its bits. Operands are allocated to their exact extent, so a read past
   the last element shows up under AddressSanitizer. */

#define MM_RTOL 1e-5
#define MM_ATOL 1e-6

/* One stored operand: `rows` x `cols` with row stride ld, repeated for `count` x `group`
   items at s*stride + g*gstride. */
static size_t mm_extent(int rows, int cols, int ld, int count, int group, size_t stride,
                        size_t gstride) {
    if (rows == 0 || cols == 0) return 1;
    return (size_t)(count - 1) * stride + (size_t)(group - 1) * gstride + (size_t)(rows - 1) * ld +
           cols;
}

/* A problem: the descriptor (strides explicit) plus its buffers. */
typedef struct mm_case {
    tsf_matmul_desc d;
    float *A, *B, *C0; /* C0: C before the product */
    size_t na, nb, nc;
    double *want, *mag; /* expected C and the rounding scale, per element of C */
    char *written;      /* 1 where the product writes C */
} mm_case;

/* Resolved leading dimensions and counts. */
static int mm_lda(const tsf_matmul_desc *d) { return d->lda ? d->lda : d->trans_a ? d->M : d->K; }
static int mm_ldb(const tsf_matmul_desc *d) { return d->ldb ? d->ldb : d->trans_b ? d->K : d->N; }
static int mm_ldc(const tsf_matmul_desc *d) { return d->ldc ? d->ldc : d->N; }
static int mm_count(const tsf_matmul_desc *d) { return d->count > 0 ? d->count : 1; }
static int mm_group(const tsf_matmul_desc *d) { return d->group > 0 ? d->group : 1; }

/* Allocate and fill A, B and C0 for the descriptor in mc->d (A, B, C pointers are set here),
   and compute the reference. */
static void mm_setup(mm_case *mc, tsf_rng *r) {
    tsf_matmul_desc *d = &mc->d;
    int M = d->M, N = d->N, K = d->K, lda = mm_lda(d), ldb = mm_ldb(d), ldc = mm_ldc(d);
    int cnt = mm_count(d), grp = mm_group(d), s, g, i, j, k;
    size_t t;
    mc->na = mm_extent(d->trans_a ? K : M, d->trans_a ? M : K, lda, cnt, grp, d->stride_a,
                       d->group_stride_a);
    mc->nb = mm_extent(d->trans_b ? N : K, d->trans_b ? K : N, ldb, cnt, grp, d->stride_b,
                       d->group_stride_b);
    mc->nc = mm_extent(M, N, ldc, cnt, grp, d->stride_c, d->group_stride_c);
    mc->A = rnd_normal(r, mc->na, 1.0f);
    mc->B = rnd_normal(r, mc->nb, 1.0f);
    mc->C0 = rnd_normal(r, mc->nc, 1.0f);
    mc->want = tsft_allocd(mc->nc), mc->mag = tsft_allocd(mc->nc);
    mc->written = (char *)tsft_alloc_bytes(mc->nc);
    for (t = 0; t < mc->nc; t++) mc->want[t] = (double)mc->C0[t], mc->mag[t] = 0.0;
    d->A = mc->A, d->B = mc->B;
    for (s = 0; s < cnt; s++)
        for (g = 0; g < grp; g++) {
            const float *A = mc->A + (size_t)s * d->stride_a + (size_t)g * d->group_stride_a;
            const float *B = mc->B + (size_t)s * d->stride_b + (size_t)g * d->group_stride_b;
            size_t c0 = (size_t)s * d->stride_c + (size_t)g * d->group_stride_c;
            for (i = 0; i < M; i++)
                for (j = 0; j < N; j++) {
                    size_t at = c0 + (size_t)i * ldc + j;
                    double sum = 0.0, mag = 0.0;
                    for (k = 0; k < K; k++) {
                        double a =
                            (double)(d->trans_a ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k]);
                        double b =
                            (double)(d->trans_b ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j]);
                        sum += a * b, mag += fabs(a * b);
                    }
                    if (mc->written[at])
                        tsft_record(__FILE__, __LINE__, "test bug: C items overlap");
                    mc->written[at] = 1;
                    mc->want[at] = d->accumulate ? (double)mc->C0[at] + sum : sum;
                    mc->mag[at] = mag + (d->accumulate ? fabs((double)mc->C0[at]) : 0.0);
                }
        }
}

/* Compare C (after the product) with the reference; describe the problem on failure. */
static int mm_check_at(const mm_case *mc, const float *C, const char *what, const char *file,
                       int line) {
    const tsf_matmul_desc *d = &mc->d;
    size_t t, bad = 0, worst = 0;
    double worst_ratio = -1.0;
    for (t = 0; t < mc->nc; t++) {
        int ok;
        double ratio;
        if (mc->written[t]) {
            double err = fabs((double)C[t] - mc->want[t]), tol = MM_RTOL * mc->mag[t] + MM_ATOL;
            ok = err <= tol;
            ratio = err == err ? err / tol : HUGE_VAL;
        } else {
            ok = same_bits(C + t, mc->C0 + t, 1);
            ratio = HUGE_VAL;
        }
        if (!ok) {
            if (bad == 0 || ratio > worst_ratio) worst_ratio = ratio, worst = t;
            bad++;
        }
    }
    if (bad) {
        char buf[TSFT_MSG_LEN];
        snprintf(buf, sizeof buf,
                 "%s M=%d N=%d K=%d ta=%d tb=%d acc=%d lda=%d ldb=%d ldc=%d count=%d group=%d: "
                 "C[%zu]%s (got %.9g, want %.9g; %zu bad elements)",
                 what, d->M, d->N, d->K, d->trans_a, d->trans_b, d->accumulate, d->lda, d->ldb,
                 d->ldc, d->count, d->group, worst,
                 mc->written[worst] ? "" : " outside the product", (double)C[worst],
                 mc->want[worst], bad);
        tsft_record(file, line, buf);
        return 0;
    }
    return 1;
}
#define MM_CHECK(mc, C, what) mm_check_at((mc), (C), (what), __FILE__, __LINE__)

/* Run the product on a fresh copy of C0 with the given kernel (NULL: tsf_matmul). */
static float *mm_run(mm_case *mc, const tsf__ukernel *uk) {
    float *C = fcopy(mc->C0, mc->nc);
    mc->d.C = C;
    if (uk)
        tsf__matmul_with(&mc->d, uk);
    else
        tsf_matmul(&mc->d);
    return C;
}

static void mm_desc(tsf_matmul_desc *d, int M, int N, int K, int ta, int tb, int acc) {
    memset(d, 0, sizeof *d);
    d->M = M, d->N = N, d->K = K, d->trans_a = ta, d->trans_b = tb, d->accumulate = acc;
}

/* Sizes of the general test: edge tiles, K blocking (K > TSF_MM_KC = 256), several tasks
   (row groups, M > TSF_MM_MC = 1024, N > TSF_MM_NC), the in-place B path (M <= 64) and the
   few-columns dot path (N <= 16, trans_b). */
static const int mm_sizes[][3] = {{1, 1, 1},    {1, 7, 1},     {7, 33, 1},     {33, 7, 257},
                                  {5, 16, 3},   {13, 17, 64},  {64, 40, 9},    {65, 31, 5},
                                  {70, 16, 45}, {9, 20, 513},  {197, 65, 300}, {300, 300, 20},
                                  {2, 260, 7},  {1030, 33, 17}};

static void test_matmul_general(void) {
    tsf_rng r;
    int s, ta, tb, acc, pad;
    tsf_rng_seed(&r, 2001);
    for (s = 0; s < (int)(sizeof mm_sizes / sizeof mm_sizes[0]); s++) {
        int M = mm_sizes[s][0], N = mm_sizes[s][1], K = mm_sizes[s][2];
        int big = (double)M * N * K > 1e6;
        for (ta = 0; ta < 2; ta++)
            for (tb = 0; tb < 2; tb++)
                for (acc = 0; acc < 2; acc++)
                    for (pad = 0; pad < 3; pad++) {
                        mm_case mc;
                        /* pad 0: natural strides given as 0; 1: given explicitly; 2: wider */
                        if (big && pad == 1) continue;
                        mm_desc(&mc.d, M, N, K, ta, tb, acc);
                        if (pad) {
                            int extra = pad == 2 ? 3 : 0;
                            mc.d.lda = (ta ? M : K) + extra;
                            mc.d.ldb = (tb ? K : N) + extra + (pad == 2);
                            mc.d.ldc = N + 2 * extra;
                        }
                        mm_setup(&mc, &r);
                        MM_CHECK(&mc, mm_run(&mc, NULL), "tsf_matmul");
                        tsft_free_all(); /* keep the peak memory small */
                        if (tsft_st()->failed_checks > 8) return;
                    }
    }
}

/* The shorthands: nt = (0, 1), nn = (0, 0), tn = (1, 0), natural strides. */
static void test_matmul_simple(void) {
    static const int sizes[][3] = {{1, 1, 1}, {7, 33, 1}, {33, 7, 257}, {70, 3, 20}, {40, 90, 31}};
    tsf_rng r;
    int s, which, acc;
    tsf_rng_seed(&r, 2002);
    for (s = 0; s < 5; s++)
        for (which = 0; which < 3; which++)
            for (acc = 0; acc < 2; acc++) {
                int M = sizes[s][0], N = sizes[s][1], K = sizes[s][2];
                int ta = which == 2, tb = which == 0;
                mm_case mc;
                float *C;
                mm_desc(&mc.d, M, N, K, ta, tb, acc);
                mm_setup(&mc, &r);
                C = fcopy(mc.C0, mc.nc);
                mc.d.C = C;
                if (which == 0) tsf_matmul_nt(C, mc.A, mc.B, M, N, K, acc);
                if (which == 1) tsf_matmul_nn(C, mc.A, mc.B, M, N, K, acc);
                if (which == 2) tsf_matmul_tn(C, mc.A, mc.B, M, N, K, acc);
                MM_CHECK(&mc, C,
                         which == 0   ? "tsf_matmul_nt"
                         : which == 1 ? "tsf_matmul_nn"
                                      : "tsf_matmul_tn");
            }
}

/* K = 0: the empty sum. C = 0 with accumulate = 0, C untouched with accumulate = 1. */
static void test_matmul_k_zero(void) {
    static const int sizes[][2] = {{1, 1}, {5, 7}, {70, 300}};
    tsf_rng r;
    int s, acc, k, ta, tb;
    tsf_rng_seed(&r, 2003);
    for (s = 0; s < 3; s++)
        for (acc = 0; acc < 2; acc++)
            for (ta = 0; ta < 2; ta++)
                for (tb = 0; tb < 2; tb++)
                    for (k = 0; k < 2; k++) {
                        mm_case mc;
                        mm_desc(&mc.d, sizes[s][0], sizes[s][1], 0, ta, tb, acc);
                        mc.d.ldc = sizes[s][1] + 2;
                        if (k) mc.d.count = 2, mc.d.stride_c = (size_t)sizes[s][0] * mc.d.ldc + 1;
                        mm_setup(&mc, &r);
                        MM_CHECK(&mc, mm_run(&mc, NULL), "K=0 tsf_matmul");
                        MM_CHECK(&mc, mm_run(&mc, &tsf__ukernel_scalar), "K=0 portable");
                    }
    /* and through the shorthands */
    {
        float C[6] = {1, 2, 3, 4, 5, 6}, A[1] = {7}, B[1] = {8};
        int i;
        tsf_matmul_nt(C, A, B, 2, 3, 0, 1);
        for (i = 0; i < 6; i++) CHECK_EQ_INT(C[i], i + 1);
        tsf_matmul_nn(C, A, B, 2, 3, 0, 0);
        for (i = 0; i < 6; i++) CHECK_EQ_INT(C[i], 0);
    }
}

/* M = 0 or N = 0: nothing is written. */
static void test_matmul_empty(void) {
    static const int sizes[][3] = {{0, 5, 3}, {4, 0, 3}, {0, 0, 0}, {0, 300, 300}};
    tsf_rng r;
    int s, acc;
    tsf_rng_seed(&r, 2004);
    for (s = 0; s < 4; s++)
        for (acc = 0; acc < 2; acc++) {
            mm_case mc;
            float sentinel[4] = {1.5f, -2.5f, 3.5f, -4.5f};
            mm_desc(&mc.d, sizes[s][0], sizes[s][1], sizes[s][2], 0, 1, acc);
            mc.d.count = 3, mc.d.group = 2;
            mm_setup(&mc, &r); /* nothing marked as written: C0 must survive bit for bit */
            MM_CHECK(&mc, mm_run(&mc, NULL), "empty tsf_matmul");
            MM_CHECK(&mc, mm_run(&mc, &tsf__ukernel_scalar), "empty portable");
            tsf_matmul_nt(sentinel, mc.A, mc.B, sizes[s][0], sizes[s][1], sizes[s][2], acc);
            CHECK(sentinel[0] == 1.5f && sentinel[3] == -4.5f);
        }
}

/* Batched products: count x group items. Layouts:
   0 contiguous items (stride = group * item, group_stride = item)
   1 attention-like: the groups of an item are column blocks of one wide row (group_stride is
     a column offset, ld is the full width), items are stacked
   2 stride only (group = 0), 3 group only (count = 0), 4 B shared by every item (strides 0) */
static void mm_batched_case(mm_case *mc, int layout, int M, int N, int K, int ta, int tb, int acc,
                            int count, int group) {
    tsf_matmul_desc *d = &mc->d;
    int ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
    mm_desc(d, M, N, K, ta, tb, acc);
    d->count = count, d->group = group;
    if (layout == 1) {
        d->lda = group * ac + 1, d->ldb = group * bc + 2, d->ldc = group * N + 3;
        d->group_stride_a = (size_t)ac, d->group_stride_b = (size_t)bc,
        d->group_stride_c = (size_t)N;
        d->stride_a = (size_t)ar * d->lda, d->stride_b = (size_t)br * d->ldb;
        d->stride_c = (size_t)M * d->ldc;
    } else {
        size_t ia = (size_t)ar * ac + 5, ib = (size_t)br * bc + 1, ic = (size_t)M * N + 7;
        int g = group > 0 ? group : 1;
        d->group_stride_a = ia, d->group_stride_b = ib, d->group_stride_c = ic;
        d->stride_a = g * ia + 2, d->stride_b = g * ib, d->stride_c = g * ic + 1;
        if (layout == 2)
            d->group = 0, d->group_stride_a = d->group_stride_b = d->group_stride_c = 0;
        if (layout == 3) d->count = 0, d->stride_a = d->stride_b = d->stride_c = 0;
        if (layout == 4) d->stride_b = d->group_stride_b = 0;
    }
}

static void test_matmul_batched(void) {
    static const int sizes[][5] = {/* M, N, K, count, group */
                                   {7, 7, 12, 3, 2},  {1, 1, 1, 2, 3},   {5, 12, 7, 2, 3},
                                   {17, 4, 33, 3, 4}, {70, 20, 9, 2, 2}, {3, 40, 300, 2, 2}};
    tsf_rng r;
    int s, layout, ta, tb, acc;
    tsf_rng_seed(&r, 2005);
    for (s = 0; s < (int)(sizeof sizes / sizeof sizes[0]); s++)
        for (layout = 0; layout < 5; layout++)
            for (ta = 0; ta < 2; ta++)
                for (tb = 0; tb < 2; tb++)
                    for (acc = 0; acc < 2; acc++) {
                        mm_case mc;
                        mm_batched_case(&mc, layout, sizes[s][0], sizes[s][1], sizes[s][2], ta, tb,
                                        acc, sizes[s][3], sizes[s][4]);
                        mm_setup(&mc, &r);
                        if (!MM_CHECK(&mc, mm_run(&mc, NULL), "batched tsf_matmul"))
                            printf("    (batched layout %d)\n", layout);
                        tsft_free_all();
                        if (tsft_st()->failed_checks > 8) return;
                    }
}

/* Batches of small products (at most 64 rows, one block of K and of columns, op(A) and op(B)
   read in place: the temporal attention's) take a path of their own, item by item straight
   to the kernels: each item's bits must be those of the same product alone (the general
   driver), with bias and accumulate, on 1 to 3 threads, and close to the reference. */
static void test_matmul_small_batch(void) {
    static const int sizes[][5] = {/* M, N, K, count, group */
                                   {8, 64, 8, 5, 3},   {8, 8, 64, 5, 3},   {12, 64, 256, 2, 2},
                                   {1, 1, 1, 3, 2},    {5, 40, 3, 4, 1},   {11, 16, 17, 3, 3},
                                   {3, 33, 250, 7, 1}, {12, 5, 9, 2, 5},   {40, 50, 30, 3, 2},
                                   {64, 16, 70, 1, 3}, {13, 70, 20, 2, 2}, {64, 64, 64, 2, 1}};
    tsf_rng r;
    int s, layout, ta, tb, acc, bias, k, nt = 1;
#if defined(_OPENMP) && !defined(TSF_NO_OPENMP)
    int saved = omp_get_max_threads();
    nt = 3;
#endif
    tsf_rng_seed(&r, 2011);
    for (s = 0; s < (int)(sizeof sizes / sizeof sizes[0]); s++)
        for (layout = 0; layout < 5; layout += 4) /* contiguous; attention-like, B shared */
            for (ta = 0; ta < 2; ta++)
                for (tb = 0; tb < 2; tb++)
                    for (acc = 0; acc < 2; acc++)
                        for (bias = 0; bias < 2; bias++) {
                            mm_case mc;
                            tsf_matmul_desc one;
                            float *C, *alone;
                            int M = sizes[s][0], N = sizes[s][1], it, items;
                            mm_batched_case(&mc, layout ? 1 : 0, M, N, sizes[s][2], ta, tb, acc,
                                            sizes[s][3], sizes[s][4]);
                            if (layout) mc.d.stride_b = mc.d.group_stride_b = 0;
                            mm_setup(&mc, &r);
                            if (bias) mc.d.bias = rnd_normal(&r, (size_t)N, 1.0f);
                            /* every item alone, through the general driver */
                            alone = fcopy(mc.C0, mc.nc);
                            items = mm_count(&mc.d) * mm_group(&mc.d);
                            for (it = 0; it < items; it++) {
                                size_t si = (size_t)(it / mm_group(&mc.d));
                                size_t gi = (size_t)(it % mm_group(&mc.d));
                                one = mc.d;
                                one.count = one.group = 1;
                                one.A = mc.A + si * mc.d.stride_a + gi * mc.d.group_stride_a;
                                one.B = mc.B + si * mc.d.stride_b + gi * mc.d.group_stride_b;
                                one.C = alone + si * mc.d.stride_c + gi * mc.d.group_stride_c;
                                tsf_matmul(&one);
                            }
                            for (k = 0; k < nt; k++) {
#if defined(_OPENMP) && !defined(TSF_NO_OPENMP)
                                omp_set_num_threads(k + 1);
#endif
                                C = mm_run(&mc, NULL);
                                if (!CHECK(same_bits(C, alone, mc.nc)))
                                    printf("    M=%d N=%d K=%d ta=%d tb=%d acc=%d bias=%d "
                                           "layout %d, %d threads: not the bits of the items "
                                           "alone\n",
                                           M, N, sizes[s][2], ta, tb, acc, bias, layout, k + 1);
                            }
                            if (!bias) MM_CHECK(&mc, C, "small batch");
                            tsft_free_all();
                            if (tsft_st()->failed_checks > 8) goto done;
                        }
done:
#if defined(_OPENMP) && !defined(TSF_NO_OPENMP)
    omp_set_num_threads(saved);
#endif
    return;
}

/* op(B) packed ahead (tsf_matmul_pack_b, tsf_matmul_desc.packed_b): the same bits as packing
   it in the product, for both layouts of B, a padded ldb, K and N across their blocks (and not
   whole panels), few and many rows, bias, accumulate, with and without a work space, on 1-3
   threads. The packed buffer is allocated to its exact size (tsf_matmul_packed_b_floats), so
   a write or read past it shows under AddressSanitizer. That the product reads it at all: the
   panels of another B give that B's product. A batch ignores packed_b. */
static void test_matmul_packed_b(void) {
    static const int sizes[][3] = {/* M, N, K */
                                   {300, 600, 300}, {1030, 520, 40}, {40, 700, 70},
                                   {13, 257, 9},    {97, 530, 513},  {5, 17, 260},
                                   {64, 16, 70},    {1, 1, 1},       {200, 33, 256}};
    tsf_rng r;
    int s, ta, tb, acc, k, work, nt = 1;
#if defined(_OPENMP) && !defined(TSF_NO_OPENMP)
    int saved = omp_get_max_threads();
    nt = 3;
#endif
    tsf_rng_seed(&r, 2027);
    for (s = 0; s < (int)(sizeof sizes / sizeof sizes[0]); s++)
        for (ta = 0; ta < 2; ta++)
            for (tb = 0; tb < 2; tb++)
                for (acc = 0; acc < 2; acc++) {
                    mm_case mc;
                    int M = sizes[s][0], N = sizes[s][1], K = sizes[s][2];
                    size_t np = tsf_matmul_packed_b_floats(N, K);
                    float *packed = tsft_alloc(np), *ref, *C, *B2;
                    mm_desc(&mc.d, M, N, K, ta, tb, acc);
                    if (s % 2) mc.d.ldb = (tb ? K : N) + 7;
                    mm_setup(&mc, &r);
                    if (!acc) mc.d.bias = rnd_normal(&r, (size_t)N, 1.0f);
                    CHECK(np >= (size_t)N * K && np < (size_t)(N + 64) * K);
                    ref = mm_run(&mc, NULL);
                    tsf_matmul_pack_b(packed, &mc.d);
                    mc.d.packed_b = packed;
                    for (work = 0; work < 2; work++)
                        for (k = 0; k < nt; k++) {
#if defined(_OPENMP) && !defined(TSF_NO_OPENMP)
                            omp_set_num_threads(k + 1);
#endif
                            mc.d.work_floats = work ? tsf_matmul_work_floats(3) : 0;
                            mc.d.work = work ? tsft_alloc(mc.d.work_floats) : NULL;
                            C = mm_run(&mc, NULL);
                            if (!CHECK(same_bits(C, ref, mc.nc)))
                                printf("    M=%d N=%d K=%d ta=%d tb=%d acc=%d work %d, %d "
                                       "threads: packed B, not the bits of the product\n",
                                       M, N, K, ta, tb, acc, work, k + 1);
                        }
                    /* the panels of another B: that B's product (except where C has at most
                       16 columns and B is transposed: the dot kernel reads B in place) */
                    if (!(tb && !ta && N <= 16)) {
                        B2 = rnd_normal(&r, mc.nb, 1.0f);
                        mc.d.B = B2, mc.d.packed_b = NULL;
                        ref = mm_run(&mc, NULL);
                        tsf_matmul_pack_b(packed, &mc.d);
                        mc.d.B = mc.B, mc.d.packed_b = packed;
                        CHECK(same_bits(mm_run(&mc, NULL), ref, mc.nc));
                    }
                    tsft_free_all();
                    if (tsft_st()->failed_checks > 8) goto done;
                }
    { /* a batch: packed_b ignored (its contents would make every item wrong) */
        mm_case mc;
        float *ref, *junk;
        mm_batched_case(&mc, 1, 40, 300, 30, 0, 1, 0, 2, 3);
        mm_setup(&mc, &r);
        ref = mm_run(&mc, NULL);
        junk = tsft_alloc(tsf_matmul_packed_b_floats(300, 30));
        mc.d.packed_b = junk;
        CHECK(same_bits(mm_run(&mc, NULL), ref, mc.nc));
        tsft_free_all();
    }
done:
#if defined(_OPENMP) && !defined(TSF_NO_OPENMP)
    omp_set_num_threads(saved);
#endif
    return;
}

/* With a work space (tsf_matmul_desc.work) the driver packs a row group's panels of op(A)
   once for all the column blocks of C: the same bits as without it, for products of several
   column blocks (N > TSF_MM_NC), with K blocking, more rows than TSF_MM_MC, few rows (B in
   place), bias, accumulate, padded strides and batches, and with a work space too small for
   every thread (those threads run without it). */
static void test_matmul_work(void) {
    static const int sizes[][5] = {/* M, N, K, count, group */
                                   {300, 600, 300, 1, 1}, {1030, 520, 40, 1, 1},
                                   {40, 700, 70, 1, 1},   {13, 257, 9, 1, 1},
                                   {97, 530, 513, 1, 1},  {50, 300, 20, 2, 3}};
    static const int threads[] = {1, 2, 3};
    tsf_rng r;
    int s, ta, tb, acc, k, nt = 1;
#if defined(_OPENMP) && !defined(TSF_NO_OPENMP)
    int saved = omp_get_max_threads();
    nt = 3;
#endif
    tsf_rng_seed(&r, 2007);
    for (s = 0; s < (int)(sizeof sizes / sizeof sizes[0]); s++)
        for (ta = 0; ta < 2; ta++)
            for (tb = 0; tb < 2; tb++)
                for (acc = 0; acc < 2; acc++) {
                    mm_case mc;
                    float *ref, *C;
                    int M = sizes[s][0], N = sizes[s][1], K = sizes[s][2];
                    if (sizes[s][3] > 1)
                        mm_batched_case(&mc, 1, M, N, K, ta, tb, acc, sizes[s][3], sizes[s][4]);
                    else
                        mm_desc(&mc.d, M, N, K, ta, tb, acc);
                    if (s % 2 && sizes[s][3] == 1) mc.d.ldc = N + 3, mc.d.lda = (ta ? M : K) + 5;
                    mm_setup(&mc, &r);
                    if (!acc) mc.d.bias = rnd_normal(&r, (size_t)N, 1.0f);
                    ref = mm_run(&mc, NULL); /* without a work space */
                    for (k = 0; k < nt; k++) {
                        size_t slots = k == 2 ? 1 : 3; /* 1: threads 2 and 3 go without */
#if defined(_OPENMP) && !defined(TSF_NO_OPENMP)
                        omp_set_num_threads(threads[k]);
#endif
                        mc.d.work_floats = tsf_matmul_work_floats((int)slots);
                        mc.d.work = tsft_alloc(mc.d.work_floats);
                        C = mm_run(&mc, NULL);
                        if (!CHECK(same_bits(C, ref, mc.nc)))
                            printf("    M=%d N=%d K=%d ta=%d tb=%d acc=%d count=%d, %d threads, "
                                   "%d slots: not the bits of the product without work space\n",
                                   M, N, K, ta, tb, acc, sizes[s][3], threads[k], (int)slots);
                        if (k == 0) {
                            C = mm_run(&mc, &tsf__ukernel_scalar); /* the portable kernel too */
                            mc.d.work = NULL;
                            CHECK(same_bits(C, mm_run(&mc, &tsf__ukernel_scalar), mc.nc));
                        }
                        mc.d.work = NULL, mc.d.work_floats = 0;
                    }
                    if (!mc.d.bias) MM_CHECK(&mc, ref, "tsf_matmul");
                    tsft_free_all();
                    if (tsft_st()->failed_checks > 8) break;
                }
#if defined(_OPENMP) && !defined(TSF_NO_OPENMP)
    omp_set_num_threads(saved);
#endif
}

/* The compiled-in SIMD kernel against the portable one, on the same problems: both against
   the reference, and against each other (FMA rounds differently: close, not equal). */
static void test_matmul_simd_vs_portable(void) {
    static const int sizes[][3] = {{1, 1, 1},    {7, 33, 1},    {33, 7, 257}, {6, 16, 8},
                                   {12, 32, 5},  {13, 33, 100}, {64, 5, 64},  {65, 17, 3},
                                   {100, 8, 40}, {197, 65, 300}};
    tsf_rng r;
    int s, ta, tb, acc;
    printf("note: SIMD path = %s (TSF_SIMD_NAME \"%s\")\n", tsf_simd_name(), TSF_SIMD_NAME);
    CHECK(strcmp(tsf_simd_name(), TSF_SIMD_NAME) == 0);
    tsf_rng_seed(&r, 2006);
    for (s = 0; s < (int)(sizeof sizes / sizeof sizes[0]); s++)
        for (ta = 0; ta < 2; ta++)
            for (tb = 0; tb < 2; tb++)
                for (acc = 0; acc < 2; acc++) {
                    mm_case mc;
                    float *Cs, *Cp;
                    size_t t, bad = 0, worst = 0;
                    double worst_err = 0.0;
                    mm_desc(&mc.d, sizes[s][0], sizes[s][1], sizes[s][2], ta, tb, acc);
                    if (s % 2)
                        mc.d.ldc = sizes[s][1] + 5, mc.d.lda = (ta ? sizes[s][0] : sizes[s][2]) + 1;
                    mm_setup(&mc, &r);
                    Cs = mm_run(&mc, &tsf__ukernel_default);
                    Cp = mm_run(&mc, &tsf__ukernel_scalar);
                    MM_CHECK(&mc, Cs, "simd kernel");
                    MM_CHECK(&mc, Cp, "portable kernel");
                    for (t = 0; t < mc.nc; t++) {
                        double err = fabs((double)Cs[t] - (double)Cp[t]);
                        if (!(err <= MM_RTOL * mc.mag[t] + MM_ATOL)) {
                            if (!bad || err > worst_err) worst = t, worst_err = err;
                            bad++;
                        }
                    }
                    if (!CHECK_EQ_INT(bad, 0))
                        printf("    M=%d N=%d K=%d ta=%d tb=%d acc=%d: simd C[%zu] = %.9g, "
                               "portable %.9g\n",
                               mc.d.M, mc.d.N, mc.d.K, ta, tb, acc, worst, (double)Cs[worst],
                               (double)Cp[worst]);
                    tsft_free_all();
                }
}

#if defined(_OPENMP) && !defined(TSF_NO_OPENMP)
/* ---- thread-count independence ------------------------------------------------------------- */
static const int thr_counts[3] = {1, 2, 3};

/* Run the product with 1, 2 and 3 threads and require identical bits. */
static void thr_matmul_case(mm_case *mc, const tsf__ukernel *uk, const char *what) {
    float *ref = NULL;
    int k;
    for (k = 0; k < 3; k++) {
        float *C;
        omp_set_num_threads(thr_counts[k]);
        C = mm_run(mc, uk);
        if (k == 0) {
            ref = C;
            MM_CHECK(mc, C, what);
        } else if (!CHECK(same_bits(C, ref, mc->nc))) {
            printf("    %s M=%d N=%d K=%d: %d threads differ from 1\n", what, mc->d.M, mc->d.N,
                   mc->d.K, thr_counts[k]);
        }
    }
}

static void test_threads_matmul(void) {
    int saved = omp_get_max_threads();
    tsf_rng r;
    mm_case mc;
    tsf_rng_seed(&r, 3001);
    printf("note: OpenMP, up to %d threads, %d processors\n", saved, omp_get_num_procs());
    /* many tasks, K blocking */
    mm_desc(&mc.d, 700, 600, 300, 0, 1, 0);
    mm_setup(&mc, &r);
    thr_matmul_case(&mc, NULL, "700x600x300 nt");
    thr_matmul_case(&mc, &tsf__ukernel_scalar, "700x600x300 nt portable");
    tsft_free_all();
    mm_desc(&mc.d, 400, 530, 270, 1, 0, 1);
    mm_setup(&mc, &r);
    thr_matmul_case(&mc, NULL, "400x530x270 tn accumulate");
    tsft_free_all();
    /* attention-like batch: scores q.k^T and the values product */
    mm_batched_case(&mc, 1, 40, 40, 16, 0, 1, 0, 16, 4);
    mm_setup(&mc, &r);
    thr_matmul_case(&mc, NULL, "batched q.k^T");
    tsft_free_all();
    mm_batched_case(&mc, 1, 40, 16, 40, 0, 0, 1, 16, 4);
    mm_setup(&mc, &r);
    thr_matmul_case(&mc, NULL, "batched att.v");
    tsft_free_all();
    /* few columns (dot path on AVX-512) with many row tasks */
    mm_desc(&mc.d, 1000, 8, 64, 0, 1, 0);
    mm_setup(&mc, &r);
    thr_matmul_case(&mc, NULL, "1000x8x64 nt");
    omp_set_num_threads(saved);
}

/* Products run inside the caller's own parallel region, two threads with their own C (and
   work space) each, as tools/demo.c runs its shards. Nesting off (OpenMP's default): each
   product runs on its calling thread without opening a region (a loop shared out with `omp
   for` there would bind to the caller's region and hang). Nesting on: each opens a region of
   two threads under the caller's. Either way, the bits of the same products run alone: one with
   a work space (units of row groups), one without (chunks of tasks), two batches of small
   products (a share a thread). */
static void test_threads_matmul_nested(void) {
    int saved = omp_get_max_threads(), levels = omp_get_max_active_levels(), c, t, nest;
    tsf_rng r;
    mm_case mc[4];
    float *ref[4], *out[2][4], *work[2];
    size_t wf = tsf_matmul_work_floats(2);
    tsf_rng_seed(&r, 3002);
    mm_desc(&mc[0].d, 300, 600, 300, 0, 1, 0);
    mm_desc(&mc[1].d, 200, 300, 100, 1, 0, 1);
    mm_batched_case(&mc[2], 1, 8, 8, 64, 0, 1, 0, 24, 3);
    mm_batched_case(&mc[3], 1, 8, 64, 8, 0, 0, 1, 24, 3);
    for (c = 0; c < 4; c++) mm_setup(&mc[c], &r);
    mc[0].d.work_floats = wf, mc[0].d.work = tsft_alloc(wf);
    omp_set_num_threads(2);
    for (c = 0; c < 4; c++) ref[c] = mm_run(&mc[c], NULL), MM_CHECK(&mc[c], ref[c], "alone");
    for (nest = 0; nest < 2; nest++) {
        omp_set_max_active_levels(nest ? 2 : 1);
        for (t = 0; t < 2; t++) {
            work[t] = tsft_alloc(wf);
            for (c = 0; c < 4; c++) out[t][c] = fcopy(mc[c].C0, mc[c].nc);
        }
#pragma omp parallel num_threads(2)
        {
            int th = omp_get_thread_num(), k;
            for (k = 0; k < 4; k++) {
                tsf_matmul_desc d = mc[k].d;
                d.C = out[th][k];
                if (d.work) d.work = work[th];
                tsf_matmul(&d);
            }
        }
        for (t = 0; t < 2; t++)
            for (c = 0; c < 4; c++)
                if (!CHECK(same_bits(out[t][c], ref[c], mc[c].nc)))
                    printf("    product %d (M=%d N=%d K=%d count=%d), caller's thread %d, nesting "
                           "%s: not the bits of the product alone\n",
                           c, mc[c].d.M, mc[c].d.N, mc[c].d.K, mm_count(&mc[c].d), t,
                           nest ? "on" : "off");
    }
    omp_set_max_active_levels(levels);
    omp_set_num_threads(saved);
    tsft_free_all();
}

/* Every kernel, forward and backward, at sizes above the kernels' parallel thresholds. */
#define THR_NOUT 23
static const char *const thr_names[THR_NOUT] = {"linear out",
                                                "linear dinp",
                                                "linear dweight",
                                                "linear dbias",
                                                "layernorm out",
                                                "layernorm dinp",
                                                "layernorm dweight",
                                                "layernorm dbias",
                                                "gelu out",
                                                "gelu dinp",
                                                "softmax out",
                                                "softmax dinp",
                                                "attention out",
                                                "attention dqkv",
                                                "patch_embed out",
                                                "patch_embed dinp",
                                                "patch_embed dweight",
                                                "patch_embed dbias",
                                                "residual out",
                                                "residual dinp",
                                                "attention_fused out",
                                                "attention_fused dqkv",
                                                "linear_gelu out"};

typedef struct thr_inputs {
    float *x, *w, *b, *dy;     /* linear: M x IN, OUT x IN, OUT, M x OUT */
    float *lx, *lw, *lb, *ldy; /* layernorm */
    float *gx, *gdy;           /* gelu, residual */
    float *sx, *sdy;           /* softmax */
    float *qkv, *adout;        /* attention */
    float *px, *pw, *pb, *pdy; /* patch_embed */
    float *fqkv, *fdout;       /* fused attention, longer sequences */
} thr_inputs;

enum {
    T_M = 300,
    T_IN = 100,
    T_OUT = 200,
    T_LM = 300,
    T_LD = 192,
    T_GN = 50000,
    T_SM = 200,
    T_SN = 100,
    T_S = 8,
    T_SL = 20,
    T_D = 64,
    T_NH = 4,
    T_B = 2,
    T_C = 3,
    T_T = 4,
    T_H = 42,
    T_W = 40,
    T_P = 8,
    T_PD = 32,
    T_FS = 3,
    T_FSL = 200
};
#define T_PM (T_B * T_T * (T_H / T_P) * (T_W / T_P))

static void thr_run_kernels(const thr_inputs *in, float **out, size_t *n) {
    size_t nq = (size_t)T_S * T_SL * 3 * T_D, na = (size_t)T_S * T_NH * T_SL * T_SL;
    size_t no = (size_t)T_S * T_SL * T_D, CPP = (size_t)T_C * T_P * T_P;
    size_t nx = (size_t)T_B * T_C * T_T * T_H * T_W;
    float *mean = tsft_alloc(T_LM), *rstd = tsft_alloc(T_LM), *att = tsft_alloc(na);
    float *datt = tsft_alloc(na), *cols = tsft_alloc((size_t)T_PM * CPP);
    float *dcols = tsft_alloc((size_t)T_PM * CPP), *lse = tsft_alloc((size_t)T_FS * T_NH * T_FSL);
    int i;
    n[0] = (size_t)T_M * T_OUT, n[1] = (size_t)T_M * T_IN, n[2] = (size_t)T_OUT * T_IN,
    n[3] = T_OUT;
    n[4] = n[5] = (size_t)T_LM * T_LD, n[6] = n[7] = T_LD;
    n[8] = n[9] = T_GN, n[10] = n[11] = (size_t)T_SM * T_SN;
    n[12] = no, n[13] = nq, n[14] = (size_t)T_PM * T_PD, n[15] = nx, n[16] = (size_t)T_PD * CPP;
    n[17] = T_PD, n[18] = n[19] = T_GN;
    n[20] = (size_t)T_FS * T_FSL * T_D, n[21] = (size_t)T_FS * T_FSL * 3 * T_D;
    n[22] = (size_t)T_M * T_OUT;
    for (i = 0; i < THR_NOUT; i++) out[i] = tsft_alloc(n[i]);
    tsf_linear_forward(out[0], in->x, in->w, in->b, T_M, T_IN, T_OUT);
    tsf_linear_backward(out[1], out[2], out[3], in->dy, in->x, in->w, T_M, T_IN, T_OUT);
    tsf_layernorm_forward(out[4], mean, rstd, in->lx, in->lw, in->lb, T_LM, T_LD, 1e-5f);
    tsf_layernorm_backward(out[5], out[6], out[7], in->ldy, in->lx, in->lw, mean, rstd, T_LM, T_LD);
    tsf_gelu_forward(out[8], in->gx, T_GN);
    tsf_gelu_backward(out[9], in->gdy, in->gx, T_GN);
    tsf_softmax_forward(out[10], in->sx, T_SM, T_SN);
    tsf_softmax_backward(out[11], in->sdy, out[10], T_SM, T_SN);
    tsf_attention_forward(out[12], att, in->qkv, T_S, T_SL, T_D, T_NH);
    tsf_attention_backward(out[13], datt, in->adout, in->qkv, att, T_S, T_SL, T_D, T_NH);
    tsf_patch_embed_forward(out[14], cols, in->px, in->pw, in->pb, T_B, T_C, T_T, T_H, T_W, T_P,
                            T_PD);
    tsf_patch_embed_backward(out[15], dcols, out[16], out[17], in->pdy, cols, in->pw, T_B, T_C, T_T,
                             T_H, T_W, T_P, T_PD);
    tsf_residual_forward(out[18], in->gx, in->gdy, T_GN);
    tsf_residual_backward(out[19], out[19], in->gdy, T_GN);
    tsf_attention_fused_forward(out[20], lse, in->fqkv, T_FS, T_FSL, T_D, T_NH);
    tsf_attention_fused_backward(out[21], in->fdout, in->fqkv, out[20], lse, T_FS, T_FSL, T_D,
                                 T_NH);
    tsf_linear_gelu_forward(out[22], NULL, in->x, in->w, in->b, T_M, T_IN, T_OUT);
}

static void test_threads_kernels(void) {
    int saved = omp_get_max_threads(), k, i;
    tsf_rng r;
    thr_inputs in;
    float *out[3][THR_NOUT];
    size_t n[THR_NOUT];
    tsf_rng_seed(&r, 3002);
    in.x = rnd_normal(&r, (size_t)T_M * T_IN, 1.0f),
    in.w = rnd_normal(&r, (size_t)T_OUT * T_IN, 1.0f);
    in.b = rnd_normal(&r, T_OUT, 1.0f), in.dy = rnd_normal(&r, (size_t)T_M * T_OUT, 1.0f);
    in.lx = rnd_normal(&r, (size_t)T_LM * T_LD, 2.0f), in.lw = rnd_normal(&r, T_LD, 1.0f);
    in.lb = rnd_normal(&r, T_LD, 1.0f), in.ldy = rnd_normal(&r, (size_t)T_LM * T_LD, 1.0f);
    in.gx = rnd_normal(&r, T_GN, 2.0f), in.gdy = rnd_normal(&r, T_GN, 1.0f);
    in.sx = rnd_normal(&r, (size_t)T_SM * T_SN, 2.0f),
    in.sdy = rnd_normal(&r, (size_t)T_SM * T_SN, 1.0f);
    in.qkv = rnd_normal(&r, (size_t)T_S * T_SL * 3 * T_D, 1.0f);
    in.adout = rnd_normal(&r, (size_t)T_S * T_SL * T_D, 1.0f);
    in.px = rnd_normal(&r, (size_t)T_B * T_C * T_T * T_H * T_W, 1.0f);
    in.pw = rnd_normal(&r, (size_t)T_PD * T_C * T_P * T_P, 0.2f),
    in.pb = rnd_normal(&r, T_PD, 1.0f);
    in.pdy = rnd_normal(&r, (size_t)T_PM * T_PD, 1.0f);
    in.fqkv = rnd_normal(&r, (size_t)T_FS * T_FSL * 3 * T_D, 1.0f);
    in.fdout = rnd_normal(&r, (size_t)T_FS * T_FSL * T_D, 1.0f);
    for (k = 0; k < 3; k++) {
        omp_set_num_threads(thr_counts[k]);
        thr_run_kernels(&in, out[k], n);
    }
    omp_set_num_threads(saved);
    for (k = 1; k < 3; k++)
        for (i = 0; i < THR_NOUT; i++)
            if (!CHECK(same_bits(out[k][i], out[0][i], n[i])))
                printf("    %s: %d threads differ from 1\n", thr_names[i], thr_counts[k]);
    /* a sanity check that the outputs are not all zero (the runs did something) */
    for (i = 0; i < THR_NOUT; i++) {
        size_t t, nz = 0;
        for (t = 0; t < n[i]; t++) nz += out[0][i][t] != 0.0f;
        if (!CHECK(nz > n[i] / 2)) printf("    %s: mostly zero\n", thr_names[i]);
    }
}
#endif /* _OPENMP && !TSF_NO_OPENMP */
