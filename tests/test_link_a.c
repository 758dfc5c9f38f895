/* test_link_a.c - the implementation half of the two-translation-unit link test.

   The header is included three times: plainly (declarations only, as another header of the
   program might), then with TIMESFORMER_IMPLEMENTATION, then again. The include guard and
   the implementation guard must make the extra includes no-ops; test_link_b.c includes the
   header without the define and holds main(). A missing or duplicated definition shows up
   as a link error. */
#include "../timesformer.h"

#define TIMESFORMER_IMPLEMENTATION
#include "../timesformer.h"
#include "../timesformer.h" /* again, after the implementation: must not redefine anything */
