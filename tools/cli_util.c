/* cli_util.c — what every subcommand uses: error messages (and the usage
 * error that makes the exit status 2), option parsing, output paths. */
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char last_message[1024];
static bool usage_seen; /* a usage error was reported: the exit status is 2 */

bool cli_usage_seen(void) { return usage_seen; }

static void report(const char *fmt, va_list ap)
{
    vsnprintf(last_message, sizeof last_message, fmt, ap);
    cli_progress_interrupt(); /* the message on a line of its own, not after a progress bar */
    ds_comm *w = ds_comm_world(NULL, NULL);
    if (ds_comm_size(w) > 1) /* which rank said it: one failing rank stops all (MPI_Abort) */
        fprintf(stderr, "deepsky: rank %d of %d: %s\n", ds_comm_rank(w), ds_comm_size(w), last_message);
    else
        fprintf(stderr, "deepsky: %s\n", last_message);
}

int cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report(fmt, ap);
    va_end(ap);
    return 1;
}

int cli_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report(fmt, ap);
    va_end(ap);
    usage_seen = true;
    return 2;
}

const char *cli_last_message(void) { return last_message; }

int cli_lib_error(const char *context)
{
    return context ? cli_error("%s: %s", context, ds_last_error()) : cli_error("%s", ds_last_error());
}

bool cli_opt(int argc, char **argv, int *i, const char *name, const char **value)
{
    if (strcmp(argv[*i], name)) return false;
    if (*i + 1 >= argc) {
        *value = NULL;
        return true;
    }
    *value = argv[++*i];
    return true;
}

int cli_parse_int(const char *opt, const char *s, int lo, int hi, int *out)
{
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || errno || *end || end == s || v < lo || v > hi)
        return cli_usage("%s needs an integer in %d..%d, got '%s'", opt, lo, hi, s ? s : "(nothing)");
    *out = (int)v;
    return 0;
}

int cli_parse_float(const char *opt, const char *s, double lo, double hi, float *out)
{
    char *end;
    double v = s ? strtod(s, &end) : NAN;
    if (!s || *end || end == s || !(v >= lo && v <= hi))
        return cli_usage("%s needs a number in [%g, %g], got '%s'", opt, lo, hi, s ? s : "(nothing)");
    *out = (float)v;
    return 0;
}

int cli_path(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < size) return 0;
    return cli_error("path too long (%d characters; at most %zu): %.80s...", n, size - 1, buf);
}

/* the longest name written into an output folder, with its temporary
 * suffix: "cutouts/bogus/NNNNNNNNNN.fits.tmp.XXXXXX" and the like */
#define CLI_OUT_NAME_MAX 64

int cli_check_out_dir(const char *opt, const char *dir)
{
    size_t n = strlen(dir);
    if (n + CLI_OUT_NAME_MAX < PATH_MAX) return 0;
    return cli_usage("%s: the folder name has %zu characters; at most %d fit (PATH_MAX %d less %d for the file "
                     "names in it)",
                     opt, n, PATH_MAX - 1 - CLI_OUT_NAME_MAX, PATH_MAX, CLI_OUT_NAME_MAX);
}

int cli_mkdirs(const char *path)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) return cli_error("path too long: %s", path);
    for (char *p = buf + 1;; p++) {
        char c = *p;
        if (c == '/' || c == 0) {
            *p = 0;
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return cli_error("cannot create folder %s: %s", buf, strerror(errno));
            *p = c;
        }
        if (!c) break;
    }
    return 0;
}

const char *cli_class_name(const ds_dataset *d, int k, char *buf, size_t size)
{
    if (d->class_names && k < d->classes && d->class_names[k]) return d->class_names[k];
    snprintf(buf, size, "%d", k);
    return buf;
}

void cli_print_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20) fprintf(f, "\\u%04x", *s);
        else fputc(*s, f);
    }
    fputc('"', f);
}

int cli_spec_unit_range(const char *spec)
{
    /* IDX and PNG/JPEG pixels are read as byte/255 (docs/cli.md); NPY, CSV and FITS keep their own units */
    if (!spec) return 0;
    if (!strncmp(spec, "fashion-mnist", 13) || !strncmp(spec, "idx:", 4) || !strncmp(spec, "folder:", 7)) return 1;
    struct stat sb;
    return !strchr(spec, ':') && stat(spec, &sb) == 0 && S_ISDIR(sb.st_mode); /* a bare folder of images */
}
