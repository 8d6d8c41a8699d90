/* kill_shim.c — an LD_PRELOAD library for the fault tests
 * (tests/e2e/test_writers.sh): raises a signal right after the Nth rename()
 * (DS_SHIM_AFTER_RENAME=N[:SIG]) or right before the Nth fsync()
 * (DS_SHIM_BEFORE_FSYNC=N[:SIG]: a temporary file is complete but not yet
 * renamed); SIG defaults to 9 (SIGKILL). DS_SHIM_LOG=FILE appends each
 * rename's target. Built by the test with cc -shared. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

static int hit(const char *var, int *count)
{
    const char *v = getenv(var);
    int n, sig = SIGKILL;
    if (!v || sscanf(v, "%d:%d", &n, &sig) < 1) return 0;
    return ++*count == n ? sig : 0;
}

int rename(const char *from, const char *to)
{
    static int (*real)(const char *, const char *);
    static int count;
    if (!real) real = (int (*)(const char *, const char *))dlsym(RTLD_NEXT, "rename");
    int rc = real(from, to);
    const char *log = getenv("DS_SHIM_LOG");
    FILE *f = log ? fopen(log, "a") : NULL;
    if (f) fprintf(f, "%s\n", to), fclose(f);
    int sig = hit("DS_SHIM_AFTER_RENAME", &count);
    if (sig) raise(sig);
    return rc;
}

int fsync(int fd)
{
    static int (*real)(int);
    static int count;
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    int sig = hit("DS_SHIM_BEFORE_FSYNC", &count);
    if (sig) raise(sig);
    return real(fd);
}
