/* cmd_pretrain.c — `deepsky pretrain`: greedy layer-wise training of a
 * model's [rbm] layers without labels (a Deep Belief Network's first half).
 * Each RBM learns from the previous one's hidden probabilities; its W and
 * hidden bias become the layer's weight and bias, its visible bias the
 * layer's visible_bias buffer. Writes DIR/pretrained.safetensors (the whole
 * model, ready for `deepsky train MODEL.cfg --init ...`), DIR/pretrain.csv,
 * and for the first RBM on images DIR/<layer>_weights.png and
 * DIR/<layer>_samples.png. */
#include "cli.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *model_path, *data, *val, *out;
    float val_split;
    int epochs;
} pretrain_opts;

static int parse(int argc, char **argv, pretrain_opts *o)
{
    memset(o, 0, sizeof *o);
    for (int i = 1; i < argc; i++) {
        const char *v, *opt = argv[i];
        if (cli_opt(argc, argv, &i, "--data", &o->data) || cli_opt(argc, argv, &i, "--out", &o->out) ||
            cli_opt(argc, argv, &i, "--val", &o->val)) {
            if (argv[i] == opt || !argv[i][0]) return cli_usage("%s needs a value", opt); /* i stays on a last option */
            continue;
        }
        if (cli_opt(argc, argv, &i, "--epochs", &v)) {
            if (cli_parse_int("--epochs", v, 1, 100000, &o->epochs)) return 1;
        } else if (cli_opt(argc, argv, &i, "--val-split", &v)) {
            if (cli_parse_float("--val-split", v, 0.0, 0.9, &o->val_split)) return 1;
        } else if (argv[i][0] == '-') {
            return cli_usage("pretrain: unknown option '%s' (see deepsky pretrain --help)", argv[i]);
        } else if (!o->model_path) {
            o->model_path = argv[i];
        } else {
            return cli_usage("pretrain: unexpected argument '%s'", argv[i]);
        }
    }
    if (!o->model_path) return cli_error("pretrain: give a MODEL.cfg");
    if (!o->data) return cli_usage("pretrain: --data SPEC is required (labels are not used)");
    if (o->val && o->val_split > 0) return cli_usage("pretrain: use --val or --val-split, not both");
    return 0;
}

/* One RBM, trained on x [n × V] for cfg's epochs in shuffled batches. */
static int train_rbm(ds_rbm *r, const float *x, int n, const float *vx, int vn, const ds_pretrain_cfg *p,
                     const char *name, FILE *csv)
{
    int bs = p->batch;
    for (int e = 1; e <= p->epochs; e++) {
        double err;
        if (ds_rbm_epoch(r, x, n, &err) != 0) return cli_lib_error(name);
        /* monitors: the free energy of training rows and, with validation data, of
         * held-out rows (a widening gap is overfitting); small models: the exact
         * log-likelihood of the training rows */
        double fe = ds_rbm_free_energy(r, x, bs), fv = NAN, ll = NAN;
        if (vn) fv = ds_rbm_free_energy(r, vx, vn < bs ? vn : bs);
        const ds_rbm_cfg *k = ds_rbm_config(r);
        if ((k->hidden <= 16 || (k->visible <= 16 && k->visible_type == DS_RBM_BERNOULLI)) &&
            ds_rbm_exact_loglik(r, x, bs, &ll) != 0)
            ll = NAN;
        printf("%s epoch %d/%d  reconstruction error %.4f  free energy %.3f", name, e, p->epochs, err, fe);
        if (vn) printf("  held-out %.3f (gap %.3f)", fv, fv - fe);
        if (!isnan(ll)) printf("  exact log-likelihood %.4f", ll);
        printf("\n");
        fflush(stdout);
        if (csv) fprintf(csv, "%s,%d,%.6f,%.6f,%.6f,%.6f\n", name, e, err, fe, fv, ll);
    }
    return 0;
}

static int cmd_pretrain(int argc, char **argv)
{
    pretrain_opts o;
    if (parse(argc, argv, &o) != 0) return 1;
    int rc = 1;
    cli_net net = {0};
    ds_dataset d = {0}, val = {0};
    ds_norm norm = {0};
    ds_rbm *r = NULL;
    float *x = NULL, *h = NULL, *vx = NULL, *vh = NULL;
    FILE *csv = NULL;
    ds_atomic csv_file = {0};
    char out[PATH_MAX - 64], path[PATH_MAX];
    if (o.out && cli_check_out_dir("--out", o.out) != 0) return 2;
    ds_model *model = ds_model_load(o.model_path);
    if (!model) return cli_lib_error(NULL);
    ds_pretrain_cfg p = *ds_model_pretrain_cfg(model);
    if (o.out) snprintf(out, sizeof out, "%s", o.out);
    else {
        const char *base = strrchr(o.model_path, '/');
        snprintf(out, sizeof out, "runs/%s", base ? base + 1 : o.model_path);
        char *dot = strrchr(out, '.');
        if (dot && !strcmp(dot, ".cfg")) *dot = 0;
    }
    if (cli_data_load(model, o.data, &d) != 0) goto done;
    if (o.val_split > 0) {
        ds_dataset all = d;
        memset(&d, 0, sizeof d);
        int src = ds_dataset_split(&all, o.val_split, p.seed, &d, &val);
        ds_dataset_free(&all);
        if (src != 0) {
            cli_lib_error(NULL);
            goto done;
        }
    } else if (o.val && cli_data_load(model, o.val, &val) != 0) {
        goto done;
    }
    if (d.n < p.batch) {
        cli_error("%s: %d samples, fewer than one batch of %d ([pretrain] batch)", o.data, d.n, p.batch);
        goto done;
    }
    if (ds_norm_compute(&d, &norm) != 0) {
        cli_lib_error(NULL);
        goto done;
    }
    if (!ds_model_normalize(model))
        for (int c = 0; c < norm.channels; c++) norm.mean[c] = 0, norm.std[c] = 1;
    if (ds_norm_apply(&norm, &d) != 0 ? cli_lib_error(o.data)
        : val.n && ds_norm_apply(&norm, &val) != 0 ? cli_lib_error("validation data") : 0)
        goto done;
    if (val.n && ds_shape_numel(val.sample) != ds_shape_numel(d.sample)) {
        cli_error("validation data has samples of %zu values; the training data's have %zu", ds_shape_numel(val.sample),
                  ds_shape_numel(d.sample));
        goto done;
    }
    int nl = ds_model_num_layers(model);
    if (cli_net_build(&net, model, p.batch, p.seed, NULL) != 0) goto done;
    model = NULL; /* net owns it */
    if (cli_check_input(&net, &d, o.data) != 0) goto done;
    if (cli_mkdirs(out) != 0) goto done;
    {
        /* temporary files of a killed run (ours only: these names with ds_atomic_open's suffix) */
        const char *ours[] = {"pretrain.csv", "pretrained.safetensors", "*_weights.png", "*_samples.png"};
        ds_atomic_clean(out, ours, 4);
    }
    snprintf(path, sizeof path, "%s/pretrain.csv", out);
    if (ds_atomic_open(&csv_file, path) != 0) { /* committed at the end: complete, or the old one stays */
        cli_lib_error(NULL);
        goto done;
    }
    csv = csv_file.f;
    fprintf(csv, "layer,epoch,reconstruction_error,free_energy,free_energy_heldout,exact_loglik\n");
    /* the [rbm] layers in order, each fed by the input or the previous one */
    size_t V = ds_shape_numel(d.sample);
    x = d.x;
    vx = val.x;
    /* layers before the first [rbm] (e.g. [instancenorm]): the RBM learns
     * from their output, computed once by the network itself */
    int first = 0;
    while (first < nl && ds_model_layer_rbm_visible(net.model, first) < 0) first++;
    if (first > 0 && first < nl) {
        ds_node *pre = ds_model_layer_output(net.model, first - 1);
        size_t in = ds_shape_numel(ds_node_shape(pre)) / (size_t)ds_node_shape(pre).d[0];
        if (!(h = malloc(sizeof(float) * (size_t)d.n * in)) || (val.n && !(vh = malloc(sizeof(float) * (size_t)val.n * in)))) {
            cli_error("out of memory");
            goto done;
        }
        ds_graph_set_training(net.g, 0);
        for (int set = 0; set < 2; set++) {
            const ds_dataset *src = set ? &val : &d;
            float *dst = set ? vh : h;
            for (int s0 = 0; s0 < src->n; s0 += p.batch) {
                int b = src->n - s0 < p.batch ? src->n - s0 : p.batch;
                ds_graph_set_batch(net.g, b);
                memcpy(ds_node_value(net.x), src->x + (size_t)s0 * V, sizeof(float) * (size_t)b * V);
                if (ds_graph_forward(net.g) != 0) {
                    cli_lib_error(NULL);
                    goto done;
                }
                memcpy(dst + (size_t)s0 * in, ds_node_value(pre), sizeof(float) * (size_t)b * in);
            }
        }
        ds_graph_set_batch(net.g, p.batch);
        x = h, vx = vh, V = in;
        printf("the first [rbm] learns from '%s' (%zu values a sample)\n", ds_model_layer_name(net.model, first - 1), in);
    }
    int done_rbms = 0;
    for (int i = 0; i < nl; i++) {
        int vis = ds_model_layer_rbm_visible(net.model, i);
        if (vis < 0) continue;
        const char *name = ds_model_layer_name(net.model, i);
        char key[256];
        snprintf(key, sizeof key, "%s.weight", name);
        ds_node *w = ds_graph_find(net.g, key);
        snprintf(key, sizeof key, "%s.bias", name);
        ds_node *c = ds_graph_find(net.g, key);
        snprintf(key, sizeof key, "%s.visible_bias", name);
        ds_node *b = ds_graph_find(net.g, key);
        if (!w || !c || !b) {
            cli_error("%s: layer '%s': its parameters are missing", o.model_path, name);
            goto done;
        }
        int H = ds_node_shape(w).d[0], in = ds_node_shape(w).d[1];
        if ((size_t)in != V) {
            cli_error("%s: [rbm] '%s' takes %d values but the %s before it gives %zu; [rbm] layers must follow "
                      "the input (or parameter-free layers after it) or another [rbm] directly",
                      o.model_path, name, in, done_rbms ? "[rbm]" : "input", V);
            goto done;
        }
        ds_pretrain_cfg lp; /* [pretrain], with this layer's own lr= and epochs= */
        ds_model_layer_pretrain_cfg(net.model, i, &lp);
        if (o.epochs) lp.epochs = o.epochs;
        ds_rbm_cfg k = {.visible = in, .hidden = H, .visible_type = (ds_rbm_visible)vis, .k = lp.k,
                        .persistent = lp.persistent, .lr = lp.lr, .momentum = lp.momentum,
                        .weight_decay = lp.weight_decay, .sparsity_target = lp.sparsity_target,
                        .sparsity_cost = lp.sparsity_cost, .seed = lp.seed + (uint64_t)done_rbms};
        if (vis == DS_RBM_BERNOULLI)
            for (size_t t = 0; t < (size_t)d.n * V; t++)
                if (x[t] < 0 || x[t] > 1) {
                    cli_error("%s: [rbm] '%s' has Bernoulli visible units, but value %zu of its input is %g (not in "
                              "[0, 1]); give [net] normalize=none for images in [0, 1], or visible=gaussian",
                              o.model_path, name, t, x[t]);
                    goto done;
                }
        if (!(r = ds_rbm_new(&k, p.batch))) {
            cli_lib_error(name);
            goto done;
        }
        printf("pretraining [rbm] '%s': %d -> %d units, %s visible, CD-%d%s, %d epochs at rate %g\n", name, in, H,
               vis ? "gaussian" : "bernoulli", lp.k, lp.persistent ? " (persistent)" : "", lp.epochs, lp.lr);
        if (train_rbm(r, x, d.n, vx, val.n, &lp, name, csv) != 0) goto done;
        memcpy(ds_node_value(w), ds_rbm_weights(r), sizeof(float) * (size_t)H * in);
        memcpy(ds_node_value(c), ds_rbm_hidden_bias(r), sizeof(float) * (size_t)H);
        memcpy(ds_node_value(b), ds_rbm_visible_bias(r), sizeof(float) * (size_t)in);
        /* pictures of the first RBM when its input is an image */
        ds_shape s = d.sample;
        if (!done_rbms && s.ndim == 3 && s.d[0] == 1) {
            int show = H < 100 ? H : 100, hh = s.d[1], ww = s.d[2];
            snprintf(path, sizeof path, "%s/%s_weights.png", out, name);
            if (ds_png_grid(path, ds_rbm_weights(r), show, hh, ww, 0, 1) != 0) {
                cli_lib_error(NULL);
                goto done;
            }
            int ns = p.batch < 100 ? p.batch : 100;
            float *smp = malloc(sizeof(float) * (size_t)p.batch * in);
            if (!smp) {
                cli_error("out of memory");
                goto done;
            }
            memcpy(smp, x, sizeof(float) * (size_t)p.batch * in); /* chains start at data */
            int src = ds_rbm_gibbs(r, smp, p.batch, 1000);
            snprintf(path, sizeof path, "%s/%s_samples.png", out, name);
            if (src == 0) src = ds_png_grid(path, smp, ns, hh, ww, 0, 0);
            free(smp);
            if (src != 0) {
                cli_lib_error(NULL);
                goto done;
            }
            printf("wrote %s/%s_weights.png and %s/%s_samples.png\n", out, name, out, name);
        }
        /* the next RBM learns from this one's hidden probabilities */
        float *nh = malloc(sizeof(float) * (size_t)d.n * H);
        if (!nh) {
            cli_error("out of memory");
            goto done;
        }
        ds_rbm_hidden_probs(r, x, d.n, nh);
        if (val.n) { /* the held-out rows go up the stack too */
            float *nv = malloc(sizeof(float) * (size_t)val.n * H);
            if (!nv) {
                free(nh);
                cli_error("out of memory");
                goto done;
            }
            ds_rbm_hidden_probs(r, vx, val.n, nv);
            free(vh);
            vh = nv;
            vx = vh;
        }
        free(h);
        h = nh;
        x = h;
        V = (size_t)H;
        ds_rbm_free(r);
        r = NULL;
        done_rbms++;
    }
    if (!done_rbms) {
        cli_error("%s: no [rbm] layers to pretrain", o.model_path);
        goto done;
    }
    csv = NULL;
    if (ds_atomic_commit(&csv_file) != 0) {
        cli_lib_error(NULL);
        goto done;
    }
    ds_train_state st = {.seed = p.seed, .batch = p.batch};
    snprintf(path, sizeof path, "%s/pretrained.safetensors", out);
    /* the data's class names, if it has them, as train keeps them */
    char *classes = d.class_names ? ds_class_names_json((const char *const *)d.class_names, d.classes) : NULL;
    ds_meta_kv extra[] = {{"classes", classes}};
    int bad = (d.class_names && !classes) ||
              ds_checkpoint_save_ex(path, net.g, NULL, ds_model_text(net.model), &norm, &st, extra, classes != NULL);
    free(classes);
    if (bad) {
        cli_lib_error(NULL);
        goto done;
    }
    printf("pretrained %d [rbm] layer%s: %s (fine-tune with deepsky train %s --init %s --data ...)\n", done_rbms,
           done_rbms > 1 ? "s" : "", path, o.model_path, path);
    rc = 0;
done:
    if (csv_file.path) ds_atomic_abort(&csv_file);
    ds_rbm_free(r);
    free(h);
    if (net.g) cli_net_free(&net);
    ds_model_free(model);
    ds_norm_free(&norm);
    ds_dataset_free(&d);
    ds_dataset_free(&val);
    free(vh);
    return rc;
}

/* `deepsky pretrain`: its help (deepsky pretrain --help) and its registration in deepsky.c */
const cli_command cli_cmd_pretrain = {
    "pretrain",
    cmd_pretrain,
    "train a model's [rbm] layers without labels, one after the other (DBN)",
    "usage: deepsky pretrain MODEL.cfg --data SPEC [--val SPEC | --val-split F] [--epochs N] [--out DIR]\n"
    "\n"
    "  --data SPEC        data (labels, if any, are not used)\n"
    "  --val SPEC         held-out data: its free energy against the training data's (the gap)\n"
    "  --val-split F      hold out a fraction F of the data for that\n"
    "  --epochs N         epochs per RBM (default: [pretrain] epochs)\n"
    "  --out DIR          output folder (default runs/<model name>)\n"
    "\n"
    "Trains each [rbm] layer as a restricted Boltzmann machine on the previous\n"
    "one's hidden probabilities ([pretrain]: CD-k or persistent CD, rate, momentum,\n"
    "weight decay, sparsity). Writes DIR/pretrained.safetensors, DIR/pretrain.csv\n"
    "and, for images, DIR/<first rbm>_weights.png and DIR/<first rbm>_samples.png.\n"
    "Then: deepsky train MODEL.cfg --init DIR/pretrained.safetensors --data SPEC\n",
    NULL,
};
