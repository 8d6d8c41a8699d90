/* util.c — errors, shapes, random numbers, initialisers, the clock, argmax. */
#include "internal.h"
#include <stdlib.h>

#include <errno.h>

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* ---- errors ---- */

static _Thread_local char err_buf[1024];

const char *ds_last_error(void) { return err_buf; }

int ds_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_buf, sizeof err_buf, fmt, ap);
    va_end(ap);
    return -1;
}

int ds_fail_prefix(const char *fmt, ...)
{
    char prefix[512], old[sizeof err_buf];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err_buf, sizeof old);
    size_t k = strlen(prefix);
    if (k >= sizeof err_buf) k = sizeof err_buf - 1;
    memcpy(err_buf, prefix, k);
    size_t rest = strnlen(old, sizeof err_buf - 1 - k);
    memcpy(err_buf + k, old, rest);
    err_buf[k + rest] = 0;
    return -1;
}

/* ---- shapes ---- */

ds_shape ds_shape_of(int ndim, ...)
{
    ds_shape s = {0};
    va_list ap;
    va_start(ap, ndim);
    s.ndim = ndim < 0 ? 0 : ndim > DS_MAX_DIMS ? DS_MAX_DIMS : ndim;
    for (int i = 0; i < s.ndim; i++) s.d[i] = va_arg(ap, int);
    va_end(ap);
    return s;
}

size_t ds_shape_numel(ds_shape s)
{
    size_t n = 1;
    for (int i = 0; i < s.ndim; i++) n *= (size_t)(s.d[i] < 0 ? 0 : s.d[i]);
    return n;
}

char *ds_shape_str(ds_shape s, char *buf, size_t size)
{
    size_t k = 0;
    if (!size) return buf;
    k += (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < s.ndim && k < size; i++)
        k += (size_t)snprintf(buf + k, size - k, i ? ", %d" : "%d", s.d[i]);
    if (k < size) snprintf(buf + k, size - k, "]");
    return buf;
}

/* ---- random numbers: xoshiro256**, seeded by splitmix64 ---- */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void ds_rng_seed(ds_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t ds_rng_u64(ds_rng *r)
{
    uint64_t *s = r->s, out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

float ds_rng_uniform(ds_rng *r) { return (float)(ds_rng_u64(r) >> 40) * (1.0f / 16777216.0f); }

float ds_rng_normal(ds_rng *r)
{
    double u1 = ((ds_rng_u64(r) >> 11) + 1.0) * (1.0 / 9007199254740993.0); /* (0, 1] */
    double u2 = (ds_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
}

uint32_t ds_rng_below(ds_rng *r, uint32_t n)
{
    return n ? (uint32_t)(((ds_rng_u64(r) >> 32) * (uint64_t)n) >> 32) : 0;
}

void ds_rng_shuffle(ds_rng *r, int *idx, int n)
{
    for (int i = n - 1; i > 0; i--) {
        int j = (int)ds_rng_below(r, (uint32_t)i + 1);
        int t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}

/* ---- initialisers ---- */

void ds_init_fill(float *v, ds_shape s, ds_init init, ds_rng *r)
{
    size_t n = ds_shape_numel(s), rf = 1;
    for (int i = 2; i < s.ndim; i++) rf *= (size_t)s.d[i];
    double fan_in = (double)(s.ndim > 1 ? (size_t)s.d[1] * rf : n);
    double fan_out = (double)(s.ndim > 0 ? (size_t)s.d[0] * rf : n);
    double bound = 0, std = 0;
    switch (init.kind) {
    case DS_INIT_ZEROS: memset(v, 0, n * sizeof *v); return;
    case DS_INIT_ONES: for (size_t i = 0; i < n; i++) v[i] = 1; return;
    case DS_INIT_CONSTANT: for (size_t i = 0; i < n; i++) v[i] = init.a; return;
    case DS_INIT_UNIFORM:
        for (size_t i = 0; i < n; i++) v[i] = init.a + (init.b - init.a) * ds_rng_uniform(r);
        return;
    case DS_INIT_NORMAL:
        for (size_t i = 0; i < n; i++) v[i] = init.a + init.b * ds_rng_normal(r);
        return;
    case DS_INIT_DEFAULT: bound = 1.0 / sqrt(fan_in); break;
    case DS_INIT_XAVIER_UNIFORM: bound = sqrt(6.0 / (fan_in + fan_out)); break;
    case DS_INIT_HE_UNIFORM: bound = sqrt(6.0 / fan_in); break;
    case DS_INIT_XAVIER_NORMAL: std = sqrt(2.0 / (fan_in + fan_out)); break;
    case DS_INIT_HE_NORMAL: std = sqrt(2.0 / fan_in); break;
    }
    if (bound > 0)
        for (size_t i = 0; i < n; i++) v[i] = (float)(bound * (2.0 * ds_rng_uniform(r) - 1.0));
    else
        for (size_t i = 0; i < n; i++) v[i] = (float)(std * ds_rng_normal(r));
}

/* ---- small helpers ---- */

double ds_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int ds_argmax(const float *v, int n)
{
    if (n < 1) return -1;
    int best = 0;
    for (int k = 1; k < n; k++)
        if (v[k] > v[best]) best = k;
    return best;
}

int ds_parse_range(const char *s, float *lo, float *hi)
{
    char *end;
    errno = 0;
    double a = strtod(s, &end), b;
    if (end == s || *end != ',' || errno) return -1;
    const char *q = end + 1;
    b = strtod(q, &end);
    if (end == q || *end || errno || !isfinite(a) || !isfinite(b) || !(a < b)) return -1;
    *lo = (float)a, *hi = (float)b;
    return 0;
}
