/* test_link_b.c - the user half of the two-translation-unit link test: it includes the
   header plainly (no implementation) and calls the library compiled in test_link_a.c.

   Build: cc -std=c99 -I.. test_link_a.c test_link_b.c -o test_link -lm */
#include "tsf_test.h"

#include "../timesformer.h"

static void test_link(void) {
    /* y = x . W^T + b, by hand: x = [[1, 2, 3], [-1, 0, 2]], W = [[1, 0, -1], [2, 1, 0.5]] */
    const float x[6] = {1, 2, 3, -1, 0, 2}, w[6] = {1, 0, -1, 2, 1, 0.5f}, b[2] = {0.5f, -1};
    const float want[4] = {-2 + 0.5f, 5.5f - 1, -3 + 0.5f, -1 - 1};
    float y[4], dx[6] = {0}, dw[6] = {0}, db[2] = {0};
    const float dy[4] = {1, 0, 0, 1};
    tsf_rng r1, r2;
    int i;
    CHECK(strcmp(tsf_version(), TSF_VERSION_STRING) == 0);
    CHECK(tsf_status_string(TSF_ERR_ALLOC) != NULL);
    CHECK(strcmp(tsf_status_string(TSF_OK), tsf_status_string(TSF_ERR_ARG)) != 0);
    CHECK(tsf_simd_name() != NULL);
    tsf_linear_forward(y, x, w, b, 2, 3, 2);
    for (i = 0; i < 4; i++) CHECK_NEAR(y[i], want[i], 1e-6, 0);
    /* dy selects y[0][0] and y[1][1]: dx = [W[0]; W[1]], dW = [x[0]; x[1]], db = [1, 1] */
    tsf_linear_backward(dx, dw, db, dy, x, w, 2, 3, 2);
    for (i = 0; i < 6; i++) CHECK_NEAR(dx[i], w[i], 1e-6, 0);
    for (i = 0; i < 6; i++) CHECK_NEAR(dw[i], x[i], 1e-6, 0);
    CHECK_NEAR(db[0], 1.0, 0, 0);
    CHECK_NEAR(db[1], 1.0, 0, 0);
    tsf_rng_seed(&r1, 5);
    tsf_rng_seed(&r2, 5);
    for (i = 0; i < 10; i++) CHECK_EQ_INT(tsf_rng_u32(&r1), tsf_rng_u32(&r2));
}

int main(int argc, char **argv) {
    static const tsft_case tests[] = {{"link two translation units", test_link}};
    return tsft_main(tests, TSFT_COUNT(tests), argc, argv);
}
