/* predictor.c — a checkpoint loaded for inference in one call, for callers
 * outside the CLI (the Python package, python/deepsky, calls it through
 * ctypes): raw arrays in, the checkpoint's normalisation applied, class
 * probabilities out, and the parameters as plain float arrays. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

struct ds_predictor {
    ds_model *model;
    ds_graph *g;
    ds_program prog;
    int batch, head, classes;
    ds_norm norm;
    char **class_names; /* NULL: the checkpoint has none (numeric labels) */
    int n_class_names;
    ds_shape in;
};

void ds_predictor_free(ds_predictor *p)
{
    if (!p) return;
    ds_norm_free(&p->norm);
    ds_class_names_free(p->class_names, p->n_class_names);
    ds_graph_free(p->g);
    ds_model_free(p->model);
    free(p);
}

/* What tools/cli_net.c does for eval/predict (an inference plan, eval mode),
 * for one-input models: the several-input ones need their other arrays
 * bound by name, which this entry point does not take. */
ds_predictor *ds_predictor_open(const char *path, int batch)
{
    if (batch < 1) {
        ds_fail("%s: batch must be at least 1, got %d", path, batch);
        return NULL;
    }
    ds_checkpoint *ck = ds_checkpoint_open(path);
    if (!ck) return NULL;
    ds_predictor *p = calloc(1, sizeof *p);
    if (!p) {
        ds_fail("out of memory");
        goto fail;
    }
    p->batch = batch;
    if (!(p->model = ds_model_parse(ds_checkpoint_model_text(ck), path))) goto fail;
    if (ds_checkpoint_meta(ck, "output_transform") || ds_checkpoint_meta(ck, "input_transform")) {
        ds_fail("%s: imported with an %s transform that the predictor does not apply (deepsky import --run does)", path,
                ds_checkpoint_meta(ck, "output_transform") ? "output" : "input");
        goto fail;
    }
    if (ds_model_num_inputs(p->model) != 1) {
        ds_fail("%s: the model has %d inputs; the predictor takes models of one input (use deepsky predict "
                "--data NAME=SPEC for the others)", path, ds_model_num_inputs(p->model));
        goto fail;
    }
    if (!(p->g = ds_graph_new(0))) goto fail;
    if (ds_model_build_program(p->model, p->g, batch, NULL, &p->prog) != 0) goto fail;
    p->head = ds_program_class_head(&p->prog);
    if (p->head < 0) {
        ds_fail("%s: the model has no classifying [output] (loss=softmax or hierarchical)", path);
        goto fail;
    }
    for (int h = 0; h < p->prog.n_heads; h++) ds_node_keep(p->prog.heads[h].out), ds_node_keep(p->prog.heads[h].loss);
    if (ds_graph_plan_inference(p->g) != 0 || ds_graph_compile(p->g) != 0) goto fail;
    if (ds_checkpoint_restore(ck, p->g, NULL) != 0 || ds_checkpoint_norm(ck, &p->norm) != 0 ||
        ds_checkpoint_classes(ck, &p->class_names, &p->n_class_names) != 0)
        goto fail;
    ds_graph_set_training(p->g, 0);
    p->classes = ds_model_classes(p->model);
    p->in = ds_model_input_shape(p->model);
    ds_checkpoint_close(ck);
    return p;
fail:
    ds_checkpoint_close(ck);
    ds_predictor_free(p);
    return NULL;
}

int ds_predictor_classes(const ds_predictor *p) { return p->classes; }

const char *ds_predictor_class_name(const ds_predictor *p, int k)
{
    return p->class_names && k >= 0 && k < p->n_class_names ? p->class_names[k] : NULL;
}

int ds_predictor_input_shape(const ds_predictor *p, int *dims)
{
    for (int i = 0; i < p->in.ndim; i++) dims[i] = p->in.d[i];
    return p->in.ndim;
}

int ds_predictor_predict(ds_predictor *p, const float *x, int n, float *probs)
{
    if (n < 0) return ds_fail("predict: n must be at least 0, got %d", n);
    if (n == 0) return 0;
    size_t per = 1;
    for (int i = 0; i < p->in.ndim; i++) per *= (size_t)p->in.d[i];
    /* a copy: the caller's array is not normalised in place */
    ds_dataset d = {.n = n, .sample = p->in, .classes = p->classes};
    if (!(d.x = malloc((size_t)n * per * sizeof(float)))) return ds_fail("predict: out of memory for %d samples", n);
    memcpy(d.x, x, (size_t)n * per * sizeof(float));
    int rc = 0;
    if (ds_dataset_check_finite(&d, "predict input") != 0 || ds_norm_apply(&p->norm, &d) != 0) rc = -1;
    /* targets other than the labels (regression heads) are not predicted: zeros keep their losses numbers */
    for (int k = 1; !rc && k < p->prog.n_feeds; k++)
        memset(ds_node_value(p->prog.feeds[k]), 0, ds_node_numel(p->prog.feeds[k]) * sizeof(float));
    float *y = p->prog.labels ? ds_node_value(p->prog.labels) : NULL;
    for (int done = 0; !rc && done < n;) {
        int b = n - done < p->batch ? n - done : p->batch;
        memcpy(ds_node_value(p->prog.feeds[0]), d.x + (size_t)done * per, (size_t)b * per * sizeof(float));
        if (y) memset(y, 0, ds_node_numel(p->prog.labels) * sizeof(float));
        if (ds_graph_set_batch(p->g, b) != 0 || ds_graph_forward(p->g) != 0 ||
            ds_program_probs(&p->prog, p->head, b, done, probs + (size_t)done * p->classes) != 0)
            rc = -1;
        done += b;
    }
    ds_graph_set_batch(p->g, p->batch);
    free(d.x);
    return rc;
}

int ds_predictor_num_params(const ds_predictor *p) { return ds_graph_num_params(p->g); }

const char *ds_predictor_param(ds_predictor *p, int i, int *dims, int *ndim, float **data)
{
    if (i < 0 || i >= ds_graph_num_params(p->g)) {
        ds_fail("parameter %d: the model has %d", i, ds_graph_num_params(p->g));
        return NULL;
    }
    ds_node *n = ds_graph_param(p->g, i);
    ds_shape s = ds_node_shape(n);
    for (int k = 0; k < s.ndim; k++) dims[k] = s.d[k];
    *ndim = s.ndim;
    *data = ds_node_value(n);
    return ds_node_name(n);
}
