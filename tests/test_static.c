/* test_static.c - TIMESFORMER_STATIC: the implementation compiled into this translation unit
   with every function static, built with -Wall -Wextra -Werror.

   A program that uses only a few of the library's functions is the normal case, so this
   file deliberately calls only some of them: the build fails if the functions it does not
   call produce "defined but not used" warnings.

   Build: cc -std=c99 -Wall -Wextra -Wpedantic -Werror -I.. test_static.c -o test_static -lm */
#include "tsf_test.h"

#define TIMESFORMER_STATIC
#define TIMESFORMER_IMPLEMENTATION
#include "../timesformer.h"

static void test_static_version(void) { CHECK(strcmp(tsf_version(), TSF_VERSION_STRING) == 0); }

/* y = x . W^T + b against hand-computed values. */
static void test_static_linear(void) {
    const float x[6] = {1, 2, 3, -1, 0, 2}, w[6] = {1, 0, -1, 2, 1, 0.5f}, b[2] = {0.5f, -1};
    float y[4];
    tsf_linear_forward(y, x, w, b, 2, 3, 2);
    CHECK_NEAR(y[0], -1.5, 1e-6, 0);
    CHECK_NEAR(y[1], 4.5, 1e-6, 0);
    CHECK_NEAR(y[2], -2.5, 1e-6, 0);
    CHECK_NEAR(y[3], -2.0, 1e-6, 0);
}

/* GELU(1) = Phi(1) = 0.841344746 (exact erf form). */
static void test_static_gelu(void) {
    const float x[2] = {1.0f, 0.0f};
    float y[2];
    tsf_gelu_forward(y, x, 2);
    CHECK_NEAR(y[0], 0.8413447460685429, 2e-7, 0);
    CHECK_NEAR(y[1], 0.0, 0, 0);
}

int main(int argc, char **argv) {
    static const tsft_case tests[] = {
        {"static.version", test_static_version},
        {"static.linear", test_static_linear},
        {"static.gelu", test_static_gelu},
    };
    return tsft_main(tests, TSFT_COUNT(tests), argc, argv);
}
