/* cli_provenance.c — what train records about its data, and the warning
 * eval and predict give when they are asked to score a checkpoint's own
 * training data (the logic is in src/data/provenance.c). */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static int model_channels(const ds_model *model)
{
    ds_shape in = ds_model_input_shape(model);
    return in.ndim == 3 ? in.d[0] : 0;
}

int cli_provenance_of(const ds_model *model, const char *spec, int n, ds_provenance *p, long **index)
{
    if (ds_provenance_of(spec, model_channels(model), n, p, index) == 0) return 0;
    fprintf(stderr, "deepsky: warning: %s: where the data came from is not known (%s)\n", spec, ds_last_error());
    return -1;
}

char *cli_data_provenance(const ds_model *model, const char *spec, int n)
{
    ds_provenance p;
    if (cli_provenance_of(model, spec, n, &p, NULL) != 0) return NULL;
    char *json = ds_provenance_json(&p);
    ds_provenance_free(&p);
    if (!json) fprintf(stderr, "deepsky: warning: %s: %s\n", spec, ds_last_error());
    return json;
}

void cli_warn_trained_on(const char *ckpt, const ds_provenance *data, const char *what, long n)
{
    ds_checkpoint *c = ds_checkpoint_open(ckpt);
    const char *json = c ? ds_checkpoint_meta(c, "data") : NULL;
    ds_provenance t;
    if (json && ds_provenance_parse(json, &t) == 0) {
        char why[512];
        long k = ds_provenance_overlap(&t, data, why, sizeof why);
        fflush(stdout); /* after what was printed so far, in a log of both */
        if (k > 0)
            fprintf(stderr,
                    "deepsky: warning: %ld of the %ld samples of %s are in %s's training data (%s): on them the "
                    "scores measure memory, not generalisation\n",
                    k, n, what, ckpt, why);
        ds_provenance_free(&t);
    }
    ds_checkpoint_close(c);
}
