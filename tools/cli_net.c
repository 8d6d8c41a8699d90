/* cli_net.c — a model built for the subcommands (training, inference or a
 * plan), from a model file or a checkpoint, and the data it is fed. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

enum { NET_TRAIN, NET_INFERENCE, NET_PLAN, NET_GRAD };

static int net_build(cli_net *net, ds_model *model, int batch, uint64_t seed, int mode, const float *cw, int flags)
{
    memset(net, 0, sizeof *net);
    net->model = model;
    net->batch = batch;
    net->g = ds_graph_new(seed);
    if (!net->g) return cli_lib_error(NULL);
    ds_program_opts po = {.class_weights = cw};
    if (ds_model_build_program(model, net->g, batch, &po, &net->prog) != 0) return cli_lib_error(NULL);
    int ch = ds_program_class_head(&net->prog);
    net->x = net->prog.feeds[0];
    net->y = net->prog.labels;
    net->logits = ch >= 0 ? net->prog.heads[ch].out : NULL;
    net->loss = net->prog.loss;
    if (!net->logits) return cli_error("%s: the model has no classifying [output] (loss=softmax or hierarchical); "
                                       "train, eval, predict, explain and attack need one", ds_model_file(model));
    if (mode == NET_INFERENCE) { /* eval/predict: no gradients, activations share memory */
        for (int h = 0; h < net->prog.n_heads; h++) ds_node_keep(net->prog.heads[h].out), ds_node_keep(net->prog.heads[h].loss);
        for (int i = 0; (flags & CLI_NET_KEEP_LAYERS) && i < ds_model_num_layers(model); i++) ds_node_keep(ds_model_layer_output(model, i));
        if (ds_graph_plan_inference(net->g) != 0) return cli_lib_error(NULL);
    }
    /* adversarial training differentiates the loss with respect to the input too */
    if (mode == NET_TRAIN && ds_model_train_cfg(model)->adversarial) ds_node_set_requires_grad(net->x, 1);
    if (mode == NET_GRAD) { /* explain/attack: the gradient of the first input, none of the weights */
        ds_node_set_requires_grad(net->x, 1);
        if ((flags & CLI_NET_NO_FUSE) && ds_graph_set_fusion(net->g, 0) != 0) return cli_lib_error(NULL);
    }
    if (mode != NET_PLAN && ds_graph_compile(net->g) != 0) return cli_lib_error(NULL);
    if (mode == NET_GRAD && ds_graph_set_param_grads(net->g, 0) != 0) return cli_lib_error(NULL);
    return 0;
}

int cli_net_build(cli_net *net, ds_model *model, int batch, uint64_t seed, const float *class_weights)
{
    return net_build(net, model, batch, seed, NET_TRAIN, class_weights, 0);
}

int cli_net_plan(cli_net *net, ds_model *model, int batch)
{
    return net_build(net, model, batch, 0, NET_PLAN, NULL, 0);
}

void cli_net_free(cli_net *net)
{
    for (int k = 0; k < DS_MAX_INPUTS; k++) ds_norm_free(&net->in_norm[k]);
    ds_class_names_free(net->class_names, net->n_class_names);
    ds_graph_free(net->g);
    ds_model_free(net->model);
    memset(net, 0, sizeof *net);
}

int cli_net_from_checkpoint(const char *path, int batch, cli_net *net, ds_norm *norm)
{
    return cli_net_from_checkpoint_ex(path, batch, net, norm, 0);
}

int cli_net_from_checkpoint_ex(const char *path, int batch, cli_net *net, ds_norm *norm, int flags)
{
    memset(net, 0, sizeof *net);
    ds_checkpoint *ck = ds_checkpoint_open(path);
    if (!ck) return cli_lib_error(NULL);
    int rc = 1;
    ds_model *m = ds_model_parse(ds_checkpoint_model_text(ck), path);
    if (!m) {
        cli_lib_error("model stored in the checkpoint");
        goto done;
    }
    /* deepsky import of a generator or of an asinh-scaled discriminator: transforms only import --run applies */
    for (int k = -1; k < ds_model_num_inputs(m); k++) {
        char key[96];
        snprintf(key, sizeof key, k < 0 ? "output_transform" : k ? "input_transform.%s" : "input_transform",
                 k > 0 ? ds_model_input_name(m, k) : "");
        if (!ds_checkpoint_meta(ck, key)) continue;
        cli_error("%s: imported with an %s (metadata \"%s\": %s) that this command does not apply; run it with "
                  "deepsky import MODEL.onnx --run X.npy --output Y.npy", path, k < 0 ? "output transform" : "input transform",
                  key, ds_checkpoint_meta(ck, key));
        ds_model_free(m);
        goto done;
    }
    if (net_build(net, m, batch, 0, (flags & CLI_NET_GRAD) ? NET_GRAD : NET_INFERENCE, NULL, flags) != 0) goto done;
    if (ds_checkpoint_restore(ck, net->g, NULL) != 0 || (norm && ds_checkpoint_norm(ck, norm) != 0) ||
        ds_checkpoint_classes(ck, &net->class_names, &net->n_class_names) != 0) {
        cli_lib_error(NULL);
        goto done;
    }
    for (int k = 0; k < ds_model_num_inputs(m); k++) { /* every input's normalisation, stored by train */
        char key[80];
        snprintf(key, sizeof key, k ? "norm.%s" : "norm", ds_model_input_name(m, k));
        if (ds_checkpoint_norm_key(ck, key, &net->in_norm[k]) == 0) continue;
        cli_lib_error(NULL);
        goto done;
    }
    ds_graph_set_training(net->g, 0);
    rc = 0;
done:
    ds_checkpoint_close(ck);
    if (rc) cli_net_free(net);
    return rc;
}

int cli_same_classes(const ds_checkpoint *c, const ds_dataset *d, const char *what)
{
    char **names;
    int n;
    if (ds_checkpoint_classes(c, &names, &n) != 0) return cli_lib_error(NULL);
    int same = !names || !d->class_names || n == d->classes;
    for (int k = 0; same && names && d->class_names && k < n; k++) same = !strcmp(names[k], d->class_names[k]);
    ds_class_names_free(names, n);
    return same ? 0 : cli_error("%s: its class names are not the checkpoint's, in its order; a streamed set cannot "
                                "be relabelled (write it with the checkpoint's classes)", what);
}

int cli_map_classes(const ds_checkpoint *c, ds_dataset *d, const char *what)
{
    char **names;
    int n;
    if (ds_checkpoint_classes(c, &names, &n) != 0) return cli_lib_error(NULL);
    int rc = ds_dataset_map_classes(d, (const char *const *)names, n, what) != 0 ? cli_lib_error(NULL) : 0;
    ds_class_names_free(names, n);
    return rc;
}

int cli_net_rebatch(cli_net *net, int batch)
{
    if (batch == net->batch) return 0;
    ds_model *m = ds_model_parse(ds_model_text(net->model), "the checkpoint's model");
    if (!m) return cli_lib_error(NULL);
    cli_net nn;
    if (net_build(&nn, m, batch, 0, NET_INFERENCE, NULL, 0) != 0) {
        if (nn.g) cli_net_free(&nn);
        else ds_model_free(m);
        return 1;
    }
    /* the same model text builds the same parameters in the same order */
    if (ds_graph_num_params(nn.g) != ds_graph_num_params(net->g)) {
        cli_net_free(&nn);
        return cli_error("rebuilding the model for batch %d gave other parameters", batch);
    }
    for (int i = 0; i < ds_graph_num_params(net->g); i++) {
        ds_node *a = ds_graph_param(net->g, i), *b = ds_graph_param(nn.g, i);
        memcpy(ds_node_value(b), ds_node_value(a), ds_node_numel(a) * sizeof(float));
    }
    ds_graph_set_training(nn.g, 0);
    nn.class_names = net->class_names, nn.n_class_names = net->n_class_names; /* moved, not copied */
    net->class_names = NULL, net->n_class_names = 0;
    memcpy(nn.in_norm, net->in_norm, sizeof nn.in_norm);
    memset(net->in_norm, 0, sizeof net->in_norm);
    cli_net_free(net);
    *net = nn;
    return 0;
}

int cli_cap_batch(int batch, int n, const char *what)
{
    if (n < 1 || batch <= n) return batch;
    if (what) fprintf(stderr, "note: batch %d is more than the %d samples of %s; using %d\n", batch, n, what, n);
    return n;
}

static bool same_shape(ds_shape a, ds_shape b)
{
    if (a.ndim != b.ndim) return false;
    for (int i = 0; i < a.ndim; i++)
        if (a.d[i] != b.d[i]) return false;
    return true;
}

int cli_check_input(const cli_net *net, const ds_dataset *d, const char *what)
{
    ds_shape want = ds_model_input_shape(net->model);
    char a[96], b[96];
    if (!same_shape(want, d->sample))
        return cli_error("%s: samples are %s but the model's %s%s is %s", what, ds_shape_str(d->sample, a, sizeof a),
                         ds_model_num_inputs(net->model) > 1 ? "input " : "[net] input",
                         ds_model_num_inputs(net->model) > 1 ? ds_model_input_name(net->model, 0) : "",
                         ds_shape_str(want, b, sizeof b));
    for (int k = 0; k < d->n_fields && k + 1 < net->prog.n_feeds; k++) {
        ds_shape f = ds_node_shape(net->prog.feeds[k + 1]), per = {.ndim = f.ndim - 1};
        for (int j = 1; j < f.ndim; j++) per.d[j - 1] = f.d[j];
        if (!same_shape(per, d->fields[k].sample))
            return cli_error("%s: '%s' is %s per sample but the model's %s '%s' is %s", what, d->fields[k].name,
                             ds_shape_str(d->fields[k].sample, a, sizeof a), k + 1 < net->prog.n_inputs ? "input" : "target",
                             net->prog.feed_names[k + 1], ds_shape_str(per, b, sizeof b));
    }
    return 0;
}

int cli_norms_apply(const ds_norm *norm, int n, ds_dataset *d, const char *what)
{
    if (ds_norm_apply(&norm[0], d) != 0) return cli_lib_error(what);
    for (int k = 1; k < n && k - 1 < d->n_fields; k++) {
        ds_field *f = &d->fields[k - 1];
        ds_dataset view = {.n = d->n, .sample = f->sample, .x = f->x};
        if (ds_norm_apply(&norm[k], &view) != 0) {
            char ctx[256];
            snprintf(ctx, sizeof ctx, "%s, input '%s'", what, f->name);
            return cli_lib_error(ctx);
        }
    }
    return 0;
}

int cli_data_load(const ds_model *model, const char *spec, ds_dataset *d)
{
    ds_shape in = ds_model_input_shape(model);
    if (ds_data_load_channels(spec, in.ndim == 3 ? in.d[0] : 0, d) != 0 || ds_dataset_check_finite(d, spec) != 0)
        return cli_lib_error(NULL);
    return 0;
}

int cli_predict(cli_net *net, const ds_dataset *d, float *probs)
{
    ds_loader *l = ds_loader_new(d, net->batch, 0, 0);
    if (!l) return cli_lib_error(NULL);
    ds_graph_set_training(net->g, 0);
    int b, done = 0, classes = ds_model_classes(net->model), rc = 0;
    float *y = ds_node_value(net->y), *dst[DS_MAX_FEEDS];
    for (int k = 0; k < net->prog.n_feeds; k++) dst[k] = ds_node_value(net->prog.feeds[k]);
    /* targets the data lack (predict has none) are zeros: the loss then reads numbers */
    for (int k = 1 + d->n_fields; k < net->prog.n_feeds; k++)
        memset(dst[k], 0, ds_node_numel(net->prog.feeds[k]) * sizeof(float));
    while ((b = ds_loader_next_fields(l, dst, y)) > 0) {
        /* labels are not needed to predict: keep them valid for the loss */
        for (int i = 0; i < b; i++) y[i] = 0;
        if (ds_graph_set_batch(net->g, b) != 0 || ds_graph_forward(net->g) != 0) {
            rc = cli_lib_error(NULL);
            break;
        }
        if (ds_program_probs(&net->prog, ds_program_class_head(&net->prog), b, done, probs + (size_t)done * classes) != 0) {
            rc = cli_lib_error(NULL);
            break;
        }
        done += b;
    }
    ds_graph_set_batch(net->g, net->batch);
    ds_loader_free(l);
    return rc;
}

int cli_net_load_data(cli_net *net, const ds_norm *norm, const char *spec, const cli_specs *extra, ds_dataset *d)
{
    cli_specs all = {{spec}, 1}; /* the first input's source, then NAME=SPEC for the others */
    for (int k = 0; extra && k < extra->n && all.n < CLI_MAX_SPECS; k++) all.spec[all.n++] = extra->spec[k];
    if (cli_data_bind(net->model, &all, 2, d) != 0) return 1;
    if (ds_dataset_map_classes(d, (const char *const *)net->class_names, net->n_class_names, spec) != 0)
        return cli_lib_error(NULL);
    if (cli_check_input(net, d, spec) != 0) return 1;
    if (norm->channels && norm->channels != d->sample.d[0])
        return cli_error("%s: the checkpoint's normalisation has %d channels, the data %d", spec,
                         norm->channels, d->sample.d[0]);
    if (ds_norm_apply(norm, d) != 0) return cli_lib_error(spec);
    if (d->n_fields) { /* the other inputs' normalisations (x's is applied above: once) */
        ds_norm rest[DS_MAX_INPUTS] = {{0}};
        for (int k = 1; k < ds_model_num_inputs(net->model); k++) rest[k] = net->in_norm[k];
        if (cli_norms_apply(rest, ds_model_num_inputs(net->model), d, spec) != 0) return 1;
    }
    return 0;
}
