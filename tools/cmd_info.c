/* cmd_info.c — `deepsky info`: the layer table of a model file or checkpoint. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static void human(double v, const char *unit, char *buf, size_t size)
{
    const char *p[] = {"", "K", "M", "G", "T"};
    int i = 0;
    while (v >= 1000 && i < 4) v /= 1000, i++;
    snprintf(buf, size, i ? "%.2f %s%s" : "%.0f %s%s", v, p[i], unit);
}

/* `info CKPT --tensor NAME`: the shape, then the values (exact: %.9g). */
/* One line per parameter group: where, patterns, size, what it changes. */
static void print_groups(const ds_param_group *gr, int n, unsigned no_decay, const int *counts, const long *values)
{
    printf("\nparameter groups (the default group has [train]'s settings)%s%s\n",
           no_decay ? "; no weight decay on " : "",
           no_decay == (DS_NO_DECAY_BIAS | DS_NO_DECAY_NORM) ? "biases and norms"
           : no_decay == DS_NO_DECAY_BIAS                    ? "biases"
           : no_decay                                        ? "norms" : "");
    for (int k = 0; k <= n; k++) {
        char what[160] = "";
        size_t w = 0;
        if (k < n && gr[k].frozen) w += (size_t)snprintf(what, sizeof what, "frozen");
        if (k < n && (gr[k].set & DS_PG_LR)) w += (size_t)snprintf(what + w, sizeof what - w, "lr %g  ", (double)gr[k].lr);
        if (k < n && (gr[k].set & DS_PG_WD) && w < sizeof what)
            w += (size_t)snprintf(what + w, sizeof what - w, "weight_decay %g  ", (double)gr[k].weight_decay);
        if (k < n && (gr[k].set & DS_PG_SCHED) && w < sizeof what)
            w += (size_t)snprintf(what + w, sizeof what - w, "schedule %s",
                     (const char *[]){"constant", "step", "cosine"}[gr[k].schedule.kind % 3]);
        while (w > 0 && w < sizeof what && what[w - 1] == ' ') what[--w] = 0;
        printf("  %-24s %-22s %4d params %10ld values  %s\n", k < n ? gr[k].name : "default",
               k < n ? gr[k].params : "(the rest)", counts[k], values[k], k < n ? what : "");
    }
}

static int print_tensor(const char *path, const char *name)
{
    ds_checkpoint *ck = ds_checkpoint_open(path);
    if (!ck) return cli_lib_error(NULL);
    for (int i = 0; i < ds_checkpoint_num_tensors(ck); i++) {
        ds_shape s;
        const float *v;
        if (strcmp(ds_checkpoint_tensor(ck, i, &s, &v), name)) continue;
        char b[96];
        size_t n = ds_shape_numel(s), row = s.ndim > 1 ? n / (size_t)s.d[0] : n;
        printf("%s %s\n", name, ds_shape_str(s, b, sizeof b));
        for (size_t k = 0; k < n; k++) printf("%.9g%c", v[k], (k + 1) % row ? ' ' : '\n');
        ds_checkpoint_close(ck);
        return 0;
    }
    ds_checkpoint_close(ck);
    return cli_error("%s has no tensor '%s'", path, name);
}

/* The layer table of a model recorded into g (x its first input): one row
 * per layer, output shape, parameters, FLOPs and activation memory per
 * sample; the totals into *params, *flops, *mem. */
static void print_layers(const ds_model *model, ds_graph *g, ds_node *x, long *params_out, double *flops_out,
                         double *mem_out)
{
    char shp[96], a[32], b[32];
    printf("\n%-18s %-16s %-18s %12s %14s %12s\n", "layer", "type", "output", "params", "FLOPs", "memory");
    int prev = 0;
    double tot_flops = 0, tot_mem = 0;
    long tot_params = 0;
    printf("%-18s %-16s %-18s %12s %14s %12s\n", "input", "input",
           ds_shape_str(ds_model_input_shape(model), shp, sizeof shp), "0", "0", "");
    prev = 0;
    for (int i = 0; i < ds_graph_num_nodes(g); i++)
        if (ds_graph_node(g, i) == x) prev = i + 1;
    for (int l = 0; l < ds_model_num_layers(model); l++) {
        ds_node *out = ds_model_layer_output(model, l);
        int end = prev;
        for (int i = prev; i < ds_graph_num_nodes(g); i++)
            if (ds_graph_node(g, i) == out) end = i + 1;
        long params = 0;
        double flops = 0, mem = 0;
        for (int i = prev; i < end; i++) {
            ds_node *n = ds_graph_node(g, i);
            if (ds_node_is_trainable(n)) params += (long)ds_node_numel(n);
            else if (!ds_node_is_state(n) && strcmp(ds_node_op(n), "input")) {
                flops += ds_node_flops(n);
                mem += (double)ds_node_numel(n) * sizeof(float); /* batch 1 */
            }
        }
        if (end > prev) prev = end;
        ds_shape s = ds_node_shape(out);
        s.ndim--; /* drop the batch dimension */
        memmove(s.d, s.d + 1, sizeof(int) * (size_t)s.ndim);
        human(flops, "", a, sizeof a);
        human(mem, "B", b, sizeof b);
        printf("%-18.18s %-16.16s %-18s %12ld %14s %12s\n", ds_model_layer_name(model, l),
               ds_model_layer_type(model, l), ds_shape_str(s, shp, sizeof shp), params, a, b);
        tot_params += params;
        tot_flops += flops;
        tot_mem += mem;
    }
    *params_out = tot_params, *flops_out = tot_flops, *mem_out = tot_mem;
}

/* A GAN file or checkpoint: both networks' tables (batch 1, compiled: small) */
static int info_gan(const char *path, const char *text, const ds_train_state *st, int is_ckpt)
{
    ds_gan_model *m = ds_gan_model_parse(text, path);
    ds_gan *g = m ? ds_gan_new(m, 1, 1) : NULL;
    if (!g) {
        ds_gan_model_free(m);
        return cli_lib_error(NULL);
    }
    const ds_gan_cfg *c = ds_gan_model_cfg(m);
    printf("%s\nGAN: latent %d%s%s, %s loss, %d discriminator step%s per generator step\n", path, c->latent,
           c->conditional ? ", conditional on " : "", c->conditional ? "the class" : "",
           c->loss == DS_GAN_MINIMAX ? "minimax" : "non-saturating", c->d_steps, c->d_steps == 1 ? "" : "s");
    if (is_ckpt) printf("trained %d epochs\n", st->epoch);
    static const char *const part[2] = {"generator", "discriminator"};
    for (int k = 0; k < 2; k++) {
        ds_program *p = ds_gan_program(g, k);
        long params;
        double flops, mem;
        char a[32], b[32];
        printf("\n[%s]", part[k]);
        print_layers(ds_gan_model_net(m, k), p->g, p->feeds[0], &params, &flops, &mem);
        human(flops, "", a, sizeof a);
        human(mem, "B", b, sizeof b);
        printf("%s: %ld parameters (%.2f MB), %s FLOPs per sample, %s of activations per sample\n", part[k], params,
               params * 4.0 / 1e6, a, b);
    }
    ds_gan_free(g);
    ds_gan_model_free(m);
    return 0;
}

static int cmd_info(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[2], "--tensor")) return print_tensor(argv[1], argv[3]);
    if (argc != 2 || argv[1][0] == '-') return cli_usage("info: usage: deepsky info MODEL.cfg|CKPT [--tensor NAME]");
    const char *path = argv[1];
    size_t len = strlen(path);
    bool is_ckpt = len > 12 && !strcmp(path + len - 12, ".safetensors");
    ds_model *m = NULL;
    ds_checkpoint *ck = NULL;
    ds_train_state st = {0};
    char best[192] = "";
    if (is_ckpt) {
        if (!(ck = ds_checkpoint_open(path)) || ds_checkpoint_state(ck, &st) != 0) {
            ds_checkpoint_close(ck);
            return cli_lib_error(NULL);
        }
        ds_best b;
        if (ds_checkpoint_meta(ck, "best") && ds_best_parse(ds_checkpoint_meta(ck, "best"), &b) == 0)
            ds_best_describe(&b, best, sizeof best);
        else /* written before the split was recorded */
            snprintf(best, sizeof best, "best accuracy %.4f (on validation data if the run had any, else on "
                     "the training data: not recorded)", st.best_metric);
        const char *text = ds_checkpoint_model_text(ck);
        if (text && ds_model_text_is_gan(text)) {
            int rc = info_gan(path, text, &st, 1);
            ds_checkpoint_close(ck);
            return rc;
        }
        m = ds_model_parse(text, path);
        ds_checkpoint_close(ck);
    } else if (ds_model_file_is_gan(path)) {
        ds_gan_model *gm = ds_gan_model_load(path);
        int rc = gm ? info_gan(path, ds_gan_model_text(gm), &st, 0) : cli_lib_error(NULL);
        ds_gan_model_free(gm);
        return rc;
    } else {
        m = ds_model_load(path);
    }
    if (!m) return cli_lib_error(NULL);
    /* planned, never allocated: a model too big to train still gets its table (issue 12) */
    cli_net net;
    size_t train_bytes = 0;
    int train_batch = ds_model_train_cfg(m)->batch;
    if (cli_net_plan(&net, m, train_batch) != 0 || ds_graph_plan_bytes(net.g, &train_bytes) != 0) {
        if (net.g) ds_graph_free(net.g);
        ds_model_free(m);
        return net.g ? cli_lib_error(NULL) : 1;
    }
    ds_graph_free(net.g);
    if (cli_net_plan(&net, m, 1) != 0) {
        if (net.g) cli_net_free(&net);
        else ds_model_free(m);
        return 1;
    }
    /* [group] patterns are checked against the graph here, as training would */
    const ds_param_group *groups;
    int n_groups = ds_model_param_groups(net.model, &groups), counts[65];
    long values[65];
    if (n_groups > 64 || ds_param_groups_count(net.g, groups, n_groups, ds_model_no_decay(net.model),
                                               counts, values) != 0) {
        if (n_groups > 64) fprintf(stderr, "deepsky: %s: more than 64 [group] sections\n", path);
        else cli_lib_error(NULL);
        cli_net_free(&net);
        return 1;
    }

    char a[32], b[32];
    printf("%s\n", path);
    if (is_ckpt) printf("trained %d epochs, %ld steps; best: %s\n", st.epoch, st.step, best);
    long tot_params;
    double tot_flops, tot_mem;
    print_layers(net.model, net.g, net.x, &tot_params, &tot_flops, &tot_mem);
    human(tot_flops, "", a, sizeof a);
    human(tot_mem, "B", b, sizeof b);
    printf("\ntotal: %ld parameters (%.2f MB), %s FLOPs per sample, %s of activations per sample\n", tot_params,
           tot_params * 4.0 / 1e6, a, b);
    human((double)train_bytes, "B", a, sizeof a);
    human((double)ds_memory_limit(), "B", b, sizeof b);
    printf("training memory at batch %d ([train] batch): %s (parameters, activations, gradients, workspace; "
           "%s available)%s\n", train_batch, a, b, train_bytes > ds_memory_limit() ? ": too much to train" : "");
    if (n_groups) print_groups(groups, n_groups, ds_model_no_decay(net.model), counts, values);
    cli_net_free(&net);
    return 0;
}

/* `deepsky info`: its help (deepsky info --help) and its registration in deepsky.c */
const cli_command cli_cmd_info = {
    "info",
    cmd_info,
    "layer table of a model file or checkpoint",
    "usage: deepsky info MODEL.cfg|CKPT\n"
    "       deepsky info CKPT --tensor NAME\n"
    "\n"
    "Prints each layer's output shape, parameters, FLOPs per sample and\n"
    "activation memory per sample, then the totals; with --tensor, one\n"
    "checkpoint tensor's shape and values.\n",
    NULL,
};
