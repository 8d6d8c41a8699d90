/* cli_inputs.c — the INPUT... arguments of predict and explain (files, and
 * folders of FITS cutouts expanded into their files), and a checkpoint's
 * data loaded raw: attribution and attacks take the data in its own units
 * and apply the checkpoint's normalisation themselves. */
#include "cli.h"

#include <dirent.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void cli_path_list_free(cli_path_list *l)
{
    for (int i = 0; i < l->n; i++) free(l->path[i]);
    free(l->path);
    memset(l, 0, sizeof *l);
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int cli_path_list_add(cli_path_list *l, const char *p)
{
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        char **np = realloc(l->path, sizeof *np * (size_t)cap);
        if (!np) return cli_error("out of memory");
        l->path = np, l->cap = cap;
    }
    if (!(l->path[l->n] = strdup(p))) return cli_error("out of memory");
    l->n++;
    return 0;
}

/* Adds the FITS files in dir and its sub-folders (depth levels), unsorted. */
static int fits_files(const char *dir, int depth, cli_path_list *l)
{
    DIR *dp = opendir(dir);
    if (!dp) return cli_error("%s: cannot read the folder", dir);
    struct dirent *e;
    int rc = 0;
    while (!rc && (e = readdir(dp))) {
        if (e->d_name[0] == '.') continue;
        char p[PATH_MAX];
        struct stat st;
        if (snprintf(p, sizeof p, "%s/%s", dir, e->d_name) >= (int)sizeof p)
            rc = cli_error("%s/%s: path too long", dir, e->d_name);
        else if (stat(p, &st) == 0 && S_ISDIR(st.st_mode))
            rc = depth > 0 ? fits_files(p, depth - 1, l) : 0;
        else if (ds_is_fits_name(e->d_name))
            rc = cli_path_list_add(l, p);
    }
    closedir(dp);
    return rc;
}

int cli_inputs_expand(const char *const *inputs, int n, const char *spec, cli_path_list *l)
{
    for (int f = 0; f < n; f++) {
        struct stat st;
        int before = l->n;
        if (inputs[f] != spec && stat(inputs[f], &st) == 0 && S_ISDIR(st.st_mode)) {
            if (fits_files(inputs[f], 2, l) != 0) return 1;
            if (l->n > before) qsort(l->path + before, (size_t)(l->n - before), sizeof *l->path, by_name);
        }
        if (l->n == before && cli_path_list_add(l, inputs[f]) != 0) return 1; /* a file, or PNG class folders */
    }
    return 0;
}

int cli_net_load_raw(cli_net *net, const ds_norm *norm, const char *spec, const cli_specs *extra, ds_dataset *d)
{
    cli_specs all = {{spec}, 1};
    for (int k = 0; extra && k < extra->n && all.n < CLI_MAX_SPECS; k++) all.spec[all.n++] = extra->spec[k];
    if (cli_data_bind(net->model, &all, 2, d) != 0) return 1;
    if (ds_dataset_map_classes(d, (const char *const *)net->class_names, net->n_class_names, spec) != 0)
        return cli_lib_error(NULL);
    if (cli_check_input(net, d, spec) != 0) return 1;
    if (norm && norm->channels && norm->channels != d->sample.d[0])
        return cli_error("%s: the checkpoint's normalisation has %d channels, the data %d", spec, norm->channels,
                         d->sample.d[0]);
    if (d->n_fields) { /* the other inputs' normalisations; the first input's stays for the caller */
        ds_norm rest[DS_MAX_INPUTS] = {{0}};
        for (int k = 1; k < ds_model_num_inputs(net->model); k++) rest[k] = net->in_norm[k];
        if (cli_norms_apply(rest, ds_model_num_inputs(net->model), d, spec) != 0) return 1;
    }
    return 0;
}
