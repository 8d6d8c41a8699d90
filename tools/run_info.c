/* run_info.c — the provenance block of a report and of metrics.csv: the
 * command line (shell-quoted, so it can be pasted back), the version, the
 * UTC date, and what the caller adds (the model file's FNV-1a hash, the
 * seeds, the data with its provenance JSON). */
#include "cli.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* argv[i] as the shell reads it back: bare when every character is safe, else in '...' */
static size_t quote_arg(char *out, const char *a)
{
    size_t k = 0;
    int safe = *a != 0;
    for (const char *s = a; *s && safe; s++)
        safe = (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || strchr("_@%+=:,./-", *s);
    if (safe) {
        size_t n = strlen(a);
        if (out) memcpy(out, a, n);
        return n;
    }
    if (out) out[k] = '\'';
    k++;
    for (const char *s = a; *s; s++) {
        if (*s == '\'') { /* ' → '\'' */
            if (out) memcpy(out + k, "'\\''", 4);
            k += 4;
        } else {
            if (out) out[k] = *s;
            k++;
        }
    }
    if (out) out[k] = '\'';
    return k + 1;
}

char *cli_shell_join(int argc, char **argv)
{
    size_t n = 1;
    for (int i = 0; i < argc; i++) n += quote_arg(NULL, argv[i]) + 1;
    char *s = malloc(n);
    if (!s) return NULL;
    size_t k = 0;
    for (int i = 0; i < argc; i++) {
        if (i) s[k++] = ' ';
        k += quote_arg(s + k, argv[i]);
    }
    s[k] = 0;
    return s;
}

int cli_run_info_add(cli_run_info *r, const char *key, const char *fmt, ...)
{
    if (r->n == CLI_RUN_INFO_MAX) return cli_error("provenance: more than %d entries", CLI_RUN_INFO_MAX);
    va_list ap;
    va_start(ap, fmt);
    char *v = NULL;
    int len = vasprintf(&v, fmt, ap);
    va_end(ap);
    if (len < 0) return cli_error("out of memory");
    r->own[r->n] = v;
    r->kv[r->n++] = (ds_meta_kv){key, v};
    return 0;
}

int cli_run_info_init(cli_run_info *r, int argc, char **argv)
{
    memset(r, 0, sizeof *r);
    char *cmd = cli_shell_join(argc, argv);
    if (!cmd) return cli_error("out of memory");
    /* "deepsky train ...": argv here starts at the subcommand */
    int rc = cli_run_info_add(r, "command", "deepsky %s", cmd);
    free(cmd);
    char date[32];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (rc || cli_run_info_add(r, "version", "deepsky %s", DS_VERSION) || cli_run_info_add(r, "date", "%s", date)) {
        cli_run_info_free(r);
        return 1;
    }
    return 0;
}

int cli_run_info_add_file(cli_run_info *r, const char *key, const char *path)
{
    uint64_t h;
    if (ds_file_hash(path, &h) != 0) return cli_lib_error(NULL);
    return cli_run_info_add(r, key, "%s (fnv1a64 %016llx)", path, (unsigned long long)h);
}

char *cli_run_info_comments(const cli_run_info *r)
{
    char *s = ds_provenance_comments(r->kv, r->n);
    if (!s) cli_lib_error(NULL);
    return s;
}

void cli_run_info_free(cli_run_info *r)
{
    for (int i = 0; i < r->n; i++) free(r->own[i]);
    memset(r, 0, sizeof *r);
}
