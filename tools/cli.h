/* cli.h — what the deepsky subcommands share. */
#ifndef DS_CLI_H
#define DS_CLI_H

#include "deepsky.h"

#include <stdbool.h>
#include <stdio.h>

/* Print "deepsky: <message>" to stderr; returns 1 (the exit status). */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* cli_error with ds_last_error() appended after "context: ". */
int cli_lib_error(const char *context);

/* A model built for training or inference: x → logits, y → loss. */
typedef struct cli_net {
    ds_model *model;
    ds_graph *g;
    ds_node *x, *y, *logits, *loss;
    int batch;
} cli_net;

/* Parse nothing: build `model` (taken over) for `batch` and compile. */
int cli_net_build(cli_net *net, ds_model *model, int batch, uint64_t seed);
void cli_net_free(cli_net *net);

/* Open a checkpoint and build its model with its weights (eval mode). */
int cli_net_from_checkpoint(const char *path, int batch, cli_net *net, ds_norm *norm);

/* The data's sample shape must be the model's input shape. */
int cli_check_input(const cli_net *net, const ds_dataset *d, const char *what);
/* Load a data spec for `model` (FITS planes grouped into its input channels). */
int cli_data_load(const ds_model *model, const char *spec, ds_dataset *d);

/* Class probabilities [d->n, classes] for a whole dataset (eval mode). */
int cli_predict(cli_net *net, const ds_dataset *d, float *probs);
/* DIR/reliability.png: the reliability diagram of m (observed against mean score per bin). */
int cli_plot_reliability(const char *dir, const ds_metrics *m);

/* mkdir -p */
int cli_mkdirs(const char *path);

/* Option parsing: argv[i] is "--name" → value argv[i+1]. */
bool cli_opt(int argc, char **argv, int *i, const char *name, const char **value);
int cli_parse_int(const char *opt, const char *s, int lo, int hi, int *out);
int cli_parse_float(const char *opt, const char *s, double lo, double hi, float *out);

int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_pretrain(int argc, char **argv);
int cmd_simulate(int argc, char **argv);
int cmd_demo(int argc, char **argv);

#endif
