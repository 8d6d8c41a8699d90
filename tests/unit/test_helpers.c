/* test_helpers.c — the one clock (ds_now) and the one argmax (ds_argmax)
 * that the library, the tools, the examples and the benchmark share. */
#include "harness.h"

#include <math.h>
#include <time.h>

int main(void)
{
    /* argmax: the first maximum; NaN never wins; -1 for nothing */
    float a[] = {0.1f, 0.7f, 0.2f, 0.7f};
    CHECK(ds_argmax(a, 4) == 1);
    CHECK(ds_argmax(a, 1) == 0);
    CHECK(ds_argmax(a, 0) == -1);
    CHECK(ds_argmax(a, -3) == -1);
    float b[] = {-INFINITY, -5.0f, NAN, -4.0f};
    CHECK(ds_argmax(b, 4) == 3);
    float c[] = {NAN, 1.0f, 2.0f};
    CHECK(ds_argmax(c, 3) == 0); /* as the loops it replaced: nothing is > NaN */
    float d[] = {INFINITY, INFINITY};
    CHECK(ds_argmax(d, 2) == 0);

    /* the clock is monotonic and counts seconds */
    double t0 = ds_now(), t1 = ds_now();
    CHECK(t1 >= t0);
    struct timespec ms20 = {0, 20 * 1000 * 1000};
    nanosleep(&ms20, NULL);
    double dt = ds_now() - t0;
    CHECK(dt >= 0.019 && dt < 5.0);
    return ds_test_summary("helpers");
}
