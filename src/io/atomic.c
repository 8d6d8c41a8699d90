/* atomic.c — every output file is written through a temporary file beside
 * it (PATH.tmp.XXXXXX, created O_EXCL so it is ours), flushed, fsync'd and
 * renamed over PATH: a reader, a crash or a kill sees the old file or the
 * new one, never half of one. Only the temporary file is ever removed. */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SUFFIX ".tmp."
#define RAND_LEN 6
static const char ALNUM[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/* Temporary files being written, for ds_atomic_unlink_pending() in a signal
 * handler: a fixed table of pointers, set and cleared by their owner. */
#define PENDING 16
static char *volatile pending[PENDING];

static void pending_add(char *tmp)
{
    for (int i = 0; i < PENDING; i++)
        if (!pending[i]) {
            pending[i] = tmp;
            return;
        }
}

static void pending_del(const char *tmp)
{
    for (int i = 0; i < PENDING; i++)
        if (pending[i] == tmp) pending[i] = NULL;
}

void ds_atomic_unlink_pending(void)
{
    for (int i = 0; i < PENDING; i++) {
        char *t = pending[i];
        if (t) unlink(t); /* async-signal-safe */
    }
}

/* fsync the folder holding path so that the rename itself is durable (best
 * effort: some file systems refuse fsync on a folder). */
static void sync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    int fd = dir ? open(dir, O_RDONLY | O_DIRECTORY) : -1;
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

/* f writes through a cookie that keeps the errno of the first failed
 * write: by commit time errno is long overwritten, and a full disk must be
 * reported as "No space left on device", not as whatever errno holds then. */
struct ds_atomic_sink {
    int fd, err;
};

static ssize_t sink_write(void *c, const char *buf, size_t n)
{
    struct ds_atomic_sink *s = c;
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(s->fd, buf + done, n - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            if (!s->err) s->err = w < 0 ? errno : ENOSPC;
            return (ssize_t)done; /* short: stdio marks the stream's error */
        }
        done += (size_t)w;
    }
    return (ssize_t)n;
}

static int sink_close(void *c)
{
    struct ds_atomic_sink *s = c;
    int rc = close(s->fd);
    if (rc != 0 && !s->err) s->err = errno;
    return rc;
}

/* a->f over fd (taken over; closed on failure) */
static int sink_open(ds_atomic *a, int fd)
{
    cookie_io_functions_t io = {.write = sink_write, .close = sink_close};
    if (!(a->sink = calloc(1, sizeof *a->sink))) {
        close(fd);
        return -1;
    }
    a->sink->fd = fd;
    if (!(a->f = fopencookie(a->sink, "wb", io))) {
        close(fd);
        free(a->sink);
        a->sink = NULL;
        return -1;
    }
    return 0;
}

/* The first write error of a's stream, else errno, else EIO. */
static int sink_err(const ds_atomic *a)
{
    return a->sink && a->sink->err ? a->sink->err : errno ? errno : EIO;
}

int ds_atomic_open(ds_atomic *a, const char *path)
{
    memset(a, 0, sizeof *a);
    if (!path || !*path) return ds_fail("no output path given");
    struct stat st;
    /* a device, FIFO or socket (/dev/stdout, a pipe, /dev/full) cannot be
     * replaced by a rename: it is written in place, every write checked, and
     * never removed */
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        if (S_ISDIR(st.st_mode)) return ds_fail("%s: is a folder, not a file", path);
        errno = 0;
        int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
        if (fd < 0 || sink_open(a, fd) != 0)
            return ds_fail("%s: cannot open for writing: %s", path, strerror(errno ? errno : ENOMEM));
        if (!(a->path = strdup(path))) {
            ds_atomic_abort(a);
            return ds_fail("out of memory");
        }
        return 0;
    }
    /* a symbolic link to a file: replace the file it names, keep the link */
    char *target = lstat(path, &st) == 0 && S_ISLNK(st.st_mode) ? realpath(path, NULL) : strdup(path);
    if (!target) return ds_fail("%s: %s", path, errno ? strerror(errno) : "out of memory");
    size_t n = strlen(target);
    char *tmp = malloc(n + sizeof SUFFIX + RAND_LEN);
    if (!tmp) {
        free(target);
        return ds_fail("out of memory");
    }
    memcpy(tmp, target, n);
    memcpy(tmp + n, SUFFIX, sizeof SUFFIX - 1);
    char *r = tmp + n + sizeof SUFFIX - 1;
    r[RAND_LEN] = 0;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ULL ^ (uint64_t)getpid() << 32 ^ (uintptr_t)a;
    int fd = -1, err = 0;
    for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
        for (int k = 0; k < RAND_LEN; k++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            r[k] = ALNUM[(x >> 33) % (sizeof ALNUM - 1)];
        }
        /* 0666 less the umask, as fopen would create PATH itself */
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        err = errno;
        if (fd < 0 && err != EEXIST) break;
    }
    if (fd < 0 || sink_open(a, fd) != 0) {
        if (fd >= 0) {
            err = errno ? errno : ENOMEM;
            unlink(tmp);
        }
        ds_fail("%s: cannot create a temporary file beside it (%s): %s", path, tmp, strerror(err));
        free(tmp);
        free(target);
        return -1;
    }
    a->path = target;
    a->tmp = tmp;
    pending_add(tmp);
    return 0;
}

int ds_atomic_commit(ds_atomic *a)
{
    if (!a->path) return ds_fail("ds_atomic_commit: nothing open");
    int err = 0;
    if (a->f) {
        if (ferror(a->f)) err = sink_err(a);
        if (!err && fflush(a->f) != 0) err = sink_err(a);
        if (!err && a->tmp && fsync(a->sink->fd) != 0) err = errno ? errno : EIO;
        if (fclose(a->f) != 0 && !err) err = sink_err(a);
        a->f = NULL;
    } else if (a->tmp) { /* written by name (CFITSIO): make it durable before it replaces path */
        int fd = open(a->tmp, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fsync(fd) != 0) err = errno ? errno : EIO;
        if (fd >= 0) close(fd);
    }
    if (!err && a->tmp && rename(a->tmp, a->path) != 0) err = errno;
    if (err) {
        ds_fail("cannot write %s: %s", a->path, strerror(err));
        ds_atomic_abort(a);
        return -1;
    }
    if (a->tmp) {
        pending_del(a->tmp);
        sync_dir(a->path);
    }
    free(a->tmp);
    free(a->path);
    free(a->sink);
    memset(a, 0, sizeof *a);
    return 0;
}

void ds_atomic_abort(ds_atomic *a)
{
    if (a->f) fclose(a->f);
    if (a->tmp) {
        unlink(a->tmp); /* ours: created O_EXCL by ds_atomic_open */
        pending_del(a->tmp);
    }
    free(a->tmp);
    free(a->path);
    free(a->sink);
    memset(a, 0, sizeof *a);
}

int ds_atomic_write(const char *path, const void *data, size_t n)
{
    ds_atomic a;
    if (ds_atomic_open(&a, path) != 0) return -1;
    if (n && fwrite(data, 1, n, a.f) != n) {
        int err = sink_err(&a);
        ds_fail("cannot write %s: %s", path, strerror(err));
        ds_atomic_abort(&a);
        return -1;
    }
    return ds_atomic_commit(&a);
}

/* Whether name is BASE.tmp.XXXXXX (XXXXXX: ds_atomic_open's letters) or the
 * older fixed BASE.tmp; its BASE length in *base. */
static int temp_name(const char *name, size_t *base)
{
    size_t n = strlen(name), s = sizeof SUFFIX - 1;
    if (n > s + RAND_LEN && !memcmp(name + n - RAND_LEN - s, SUFFIX, s) &&
        strspn(name + n - RAND_LEN, ALNUM) == RAND_LEN) {
        *base = n - RAND_LEN - s;
        return 1;
    }
    if (n > 4 && !strcmp(name + n - 4, ".tmp")) {
        *base = n - 4;
        return 1;
    }
    return 0;
}

int ds_atomic_clean(const char *dir, const char *const *patterns, int n_patterns)
{
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT ? 0 : ds_fail("%s: cannot read the folder: %s", dir, strerror(errno));
    int removed = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t base;
        if (!temp_name(e->d_name, &base) || base >= NAME_MAX) continue;
        char stem[NAME_MAX + 1], p[PATH_MAX];
        memcpy(stem, e->d_name, base);
        stem[base] = 0;
        int mine = 0;
        for (int k = 0; k < n_patterns && !mine; k++) mine = fnmatch(patterns[k], stem, FNM_PERIOD) == 0;
        struct stat st;
        if (!mine || snprintf(p, sizeof p, "%s/%s", dir, e->d_name) >= (int)sizeof p) continue;
        if (lstat(p, &st) == 0 && S_ISREG(st.st_mode) && unlink(p) == 0) removed++;
    }
    closedir(d);
    return removed;
}
