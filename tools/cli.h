/* cli.h — what the deepsky subcommands share (tools/cli_util.c: messages,
 * options, paths; tools/cli_net.c: models and their data). */
#ifndef DS_CLI_H
#define DS_CLI_H

#include "deepsky.h"

#include <stdbool.h>
#include <stdio.h>

/* Print "deepsky: <message>" to stderr; returns 1 (the exit status). */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* cli_error for a usage error (unknown option, missing or bad value):
 * returns 2, and a command that then returns 1 exits with 2 as well. */
int cli_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The last message cli_error or cli_usage printed (without "deepsky: "). */
const char *cli_last_message(void);
/* Whether cli_usage reported an error (main then exits with 2, not 1). */
bool cli_usage_seen(void);
/* Set by SIGINT/SIGTERM (the signal number) while cli_graceful_interrupts
 * is on; otherwise those signals end the program at once (after removing
 * the temporary files being written). */
#include <signal.h>
extern volatile sig_atomic_t cli_interrupted;
void cli_graceful_interrupts(bool on);
/* snprintf into buf, an error naming the path when it does not fit. */
int cli_path(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* An output folder given by the user: refused (usage error) when so long
 * that the file names written into it would not fit in PATH_MAX. */
int cli_check_out_dir(const char *opt, const char *dir);
/* cli_error with ds_last_error() appended after "context: ". */
int cli_lib_error(const char *context);

/* A model built for training or inference: its program (inputs → heads →
 * loss); x is the first input, logits the first classifying head's output
 * and y its labels. */
typedef struct cli_net {
    ds_model *model;
    ds_graph *g;
    ds_program prog;
    ds_node *x, *y, *logits, *loss;
    int batch;
    char **class_names; /* the checkpoint's class vocabulary (NULL: none), n_class_names of them */
    int n_class_names;
    ds_norm in_norm[DS_MAX_INPUTS]; /* from a checkpoint: each input's normalisation ([0] also the one returned) */
} cli_net;

/* Parse nothing: build `model` (taken over) for `batch` and compile;
 * class_weights NULL or the first classifying head's [classes] weights. */
int cli_net_build(cli_net *net, ds_model *model, int batch, uint64_t seed, const float *class_weights);
/* The same nodes, shapes and loss for training, not compiled: nothing the
 * size of a tensor is allocated (info; ds_graph_plan_bytes for the arena). */
int cli_net_plan(cli_net *net, ds_model *model, int batch);
void cli_net_free(cli_net *net);

/* Open a checkpoint and build its model with its weights (eval mode) and
 * its class vocabulary. */
int cli_net_from_checkpoint(const char *path, int batch, cli_net *net, ds_norm *norm);
/* The same with flags: CLI_NET_GRAD builds it for input gradients (the
 * first input requires one, parameter gradients off, no inference plan:
 * explain, attack); CLI_NET_NO_FUSE (with GRAD) compiles without relu
 * fusion, so every layer's output has its own gradient (Grad-CAM, deconvnet). */
enum { CLI_NET_GRAD = 1, CLI_NET_NO_FUSE = 2 };
int cli_net_from_checkpoint_ex(const char *path, int batch, cli_net *net, ds_norm *norm, int flags);
/* CLI_NET_KEEP_LAYERS (inference): every layer's output keeps its value after a forward (fid's features). */
enum { CLI_NET_KEEP_LAYERS = 4 };
/* Rebuild an eval-mode net for another batch, keeping its weights and buffers. */
int cli_net_rebatch(cli_net *net, int batch);
/* min(batch, n), with a note on stderr when the batch was larger than the
 * n samples of `what` (memory is planned for the batch: --batch 1000000 on
 * 40 samples once allocated gigabytes); what NULL: no note. */
int cli_cap_batch(int batch, int n, const char *what);

/* The data's sample shape must be the model's input shape (and each
 * field's that of the feed it fills). */
int cli_check_input(const cli_net *net, const ds_dataset *d, const char *what);

/* Data sources of a command: --data SPEC, and --data NAME=SPEC for a
 * several-input model's other inputs and targets (tools/cli_bind.c). */
#define CLI_MAX_SPECS DS_MAX_FEEDS
typedef struct cli_specs {
    const char *spec[CLI_MAX_SPECS];
    int n;
} cli_specs;
/* Whether a --data value is NAME=SPEC (another input's source) rather than
 * the first input's spec: NAME is an identifier ([A-Za-z_][A-Za-z0-9_-]*). */
int cli_is_binding(const char *v);
/* Add one --data value (usage error when a source is given twice). */
int cli_specs_add(cli_specs *s, const char *opt, const char *v);
/* Load the model's data: the first input's source gives x and the labels;
 * the others become d's fields in feed order (targets too when targets=1;
 * 2: those given, in feed order),
 * rows paired in order or by id=COLUMN; errors name the file and input. */
int cli_data_bind(const ds_model *m, const cli_specs *s, int targets, ds_dataset *d);
/* The spec of the model's first input. */
const char *cli_specs_first(const ds_model *m, const cli_specs *s);
/* Per-input normalisation: norm[k] for input k (k ≥ 1 are d's fields k−1). */
int cli_norms_apply(const ds_norm *norm, int n, ds_dataset *d, const char *what);

/* `deepsky train` as a call: flags → run → print (demo calls it too). */
typedef struct cli_train_opts {
    const char *model_path, *resume, *init, *out;
    cli_specs data, val, test;
    float val_split, lr;
    int epochs, batch, quiet, micro_batches;
    int shuffle_window, prefetch, loader_threads; /* streamed (sharded) data: ds_stream_cfg */
    long seed; /* -1: the model file's */
    int argc;  /* the command line, for the provenance block (argv NULL: none) */
    char **argv;
} cli_train_opts;
int cli_train_run(const cli_train_opts *o);
/* Load a data spec for `model` (FITS planes grouped into its input channels). */
int cli_data_load(const ds_model *model, const char *spec, ds_dataset *d);

/* Number d's labels by the class names kept in checkpoint c (if any). */
/* A streamed set's class names must be the checkpoint's, in its order (no
 * relabelling of rows on disk). */
int cli_same_classes(const ds_checkpoint *c, const ds_dataset *d, const char *what);
int cli_map_classes(const ds_checkpoint *c, ds_dataset *d, const char *what);

/* Data for a checkpoint's net (eval, predict): spec for the first input,
 * extra (NULL: none) the NAME=SPEC sources of the others; loaded, checked
 * finite and against the model's inputs, labels numbered by the
 * checkpoint's class names, normalised as in training (norm, and
 * net->in_norm for the other inputs). */
int cli_net_load_data(cli_net *net, const ds_norm *norm, const char *spec, const cli_specs *extra, ds_dataset *d);
/* The same without the first input's normalisation: x stays in the data's
 * own units (explain, attack apply norm themselves); the other inputs are
 * normalised (tools/cli_inputs.c). */
int cli_net_load_raw(cli_net *net, const ds_norm *norm, const char *spec, const cli_specs *extra, ds_dataset *d);
/* INPUT... arguments: each file as it is, a folder holding FITS files (in
 * it or two levels of sub-folders) as those files sorted by name; spec (the
 * --data value among inputs, or NULL) is never expanded. */
typedef struct cli_path_list {
    char **path;
    int n, cap;
} cli_path_list;
int cli_inputs_expand(const char *const *inputs, int n, const char *spec, cli_path_list *l);
int cli_path_list_add(cli_path_list *l, const char *p);
void cli_path_list_free(cli_path_list *l);
/* d's name of class k, else k as a number written into buf. */
const char *cli_class_name(const ds_dataset *d, int k, char *buf, size_t size);
/* s as a JSON string, quoted and escaped. */
void cli_print_json_string(FILE *f, const char *s);

/* Class probabilities [d->n, classes] for a whole dataset (eval mode). */
int cli_predict(cli_net *net, const ds_dataset *d, float *probs);
/* DIR/reliability.png: the reliability diagram of m (observed against mean score per bin). */
int cli_plot_reliability(const char *dir, const ds_metrics *m);

/* The survey's breakdown of a two-class (1 real, 0 bogus) classifier at
 * the threshold that lets 1 % of the bogus through (tools/survey.c). */
#define CLI_MAX_KINDS 64
#define CLI_SNR_BINS 5
extern const double cli_snr_edges[CLI_SNR_BINS + 1]; /* 5, 7, 10, 20, 50, 100 */
typedef struct cli_breakdown {
    float threshold;
    int n_kinds, total[CLI_MAX_KINDS], positives[CLI_MAX_KINDS], hit[CLI_MAX_KINDS]; /* hit: rejected / found */
    int snr_total[CLI_SNR_BINS], snr_hit[CLI_SNR_BINS];
    float recall[CLI_SNR_BINS]; /* NaN in an empty bin */
} cli_breakdown;
/* Whether kind t is mostly real (its share is "found") or bogus ("rejected"). */
static inline int cli_breakdown_real(const cli_breakdown *b, int t) { return 2 * b->positives[t] > b->total[t]; }
/* kind[i] in 0..n_kinds-1 (NULL: no kinds); snr NULL: no S/N bins. */
int cli_breakdown_compute(const float *probs, const float *y, int n, const int *kind, int n_kinds,
                          const float *snr, cli_breakdown *b);
/* Bogus kinds rejected, real kinds found, recall per S/N, as text into buf. */
int cli_breakdown_text(const cli_breakdown *b, const char *const *names, char *buf, size_t size);
/* A per-sample CSV with a header naming 'kind' and/or 'snr' columns
 * (simulate's labels.csv). Its rows are matched to the n samples by its
 * 'index' column where index[i] (the simulator index of sample i, from
 * ds_provenance_of; NULL: unknown) is known for every sample, else in order
 * (then there must be n rows); a 'label' column must agree with y. Every
 * value is checked whole ("2s.07" is an error naming file:line). */
typedef struct cli_meta {
    int *kind, n_kinds;
    char *names[CLI_MAX_KINDS];
    float *snr;
} cli_meta;
int cli_meta_read(const char *path, int n, const long *index, const float *y, cli_meta *m);
void cli_meta_free(cli_meta *m);

/* The survey's pictures (tools/survey_report.c). The Wilson score interval
 * of k successes in n (z 1.96: 95 %); NaN when n is 0. */
void cli_wilson(int k, int n, double z, double *lo, double *hi);
/* DIR/roc.png: recall and the missed-detection rate against the
 * false-positive rate on a log axis (two classes: probs [n, 2], y 0/1). */
int cli_plot_roc(const char *dir, const float *probs, const float *y, int n);
/* DIR/recall_snr.png: recall per S/N bin of b, 95 % Wilson error bars and
 * found/total on each point (nothing when no bin has a sample). */
int cli_plot_recall_snr(const char *dir, const cli_breakdown *b);
/* The max worst mistakes of d (misclassified, by 1 − p(true class), the
 * most confident first): DIR/mistakes.png, a grid of their last channel,
 * each labelled "rank: #sample / true CLASS / kind (meta; else: as
 * PREDICTED) / score", and (out not NULL) the same list in the same order
 * printed as a table. score: p(class 1) with two classes, else
 * p(true class). */
int cli_worst_mistakes(const char *dir, const ds_dataset *d, const float *probs, int classes, const cli_meta *meta,
                       int max, FILE *out);

/* eval --report DIR: confusion.png, reliability.png, roc.png (two
 * classes), recall_snr.png (bd with S/N), mistakes.png (and the list into
 * `list`, NULL: none) and report.html with the provenance block (the
 * command line, the checkpoint's hash, the data and its provenance, the
 * seed the checkpoint was trained with). bd, meta, prov may be NULL. */
int cli_eval_report(const char *dir, int argc, char **argv, const char *ckpt, const char *spec, const ds_dataset *d,
                    const float *probs, const ds_metrics *m, const cli_breakdown *bd, const cli_meta *meta,
                    const ds_provenance *prov, FILE *list);

/* Data provenance (tools/cli_provenance.c): ds_provenance_of for a model's
 * input channels, a warning (not an error) if it cannot be found; the JSON
 * train stores as checkpoint metadata "data" (NULL after a warning); and a
 * warning on stderr when data (n samples, named `what`) overlaps the data
 * ckpt was trained on. */
int cli_provenance_of(const ds_model *model, const char *spec, int n, ds_provenance *p, long **index);
char *cli_data_provenance(const ds_model *model, const char *spec, int n);
void cli_warn_trained_on(const char *ckpt, const ds_provenance *data, const char *what, long n);

/* A progress line on stderr (tools/progress.c): a bar that fits the
 * terminal (never wraps), the share done, units/s and the ETA of the whole
 * run (units are the caller's: e.g. batches over all epochs, with per_unit
 * the batch size and unit "img" to show images/s), and caller-formatted
 * fields ("loss 0.3100 acc 0.9000"). Redrawn at most 10 times a second;
 * nothing at all when stderr is not a terminal (DS_PROGRESS_FORCE=1 draws
 * anyway, for tests). done_units at start: units a resumed run had done
 * before (left out of the rate). */
typedef struct cli_progress {
    char label[64], fields[256], unit[16]; /* unit: "it" when empty */
    long total, done, start_done;
    double per_unit; /* items per unit for the rate (1) */
    double t0, last_draw;
    int on, drawn;
} cli_progress;
void cli_progress_start(cli_progress *p, const char *label, long total_units, long done_units);
/* done_units so far (of all the run); fields NULL: none. */
void cli_progress_update(cli_progress *p, long done_units, const char *fields);
/* Erase the line (before printing a log line to stdout/stderr); the next
 * update draws it again. */
void cli_progress_clear(cli_progress *p);
/* Draw the final state and end the line with a newline (if it was drawn). */
void cli_progress_end(cli_progress *p);
/* Erase the progress line on screen, if any (cli_error calls it first). */
void cli_progress_interrupt(void);
/* The line cli_progress draws at time `now` (mono clock) for a terminal
 * `width` columns wide: at most width − 1 characters; returns its length. */
int cli_progress_format(const cli_progress *p, int width, double now, char *buf, size_t size);
/* Columns of the terminal on stderr; else $COLUMNS; else 80. */
int cli_terminal_width(void);
/* ds_sim_dataset with a progress line "simulating [###...] ... stamps/s". */
int cli_sim_dataset_progress(const ds_sim_cfg *cfg, ds_dataset *out, ds_sim_meta **meta);

/* The provenance block (tools/run_info.c): entries "command" (argv from
 * the subcommand on, shell-quoted: pasted back, it runs again), "version",
 * "date" (UTC, ISO 8601), then the caller's: e.g. "model" with its FNV-1a
 * hash (cli_run_info_add_file), "seed", "data" (the spec) and
 * "data_provenance" (cli_data_provenance's JSON). kv goes to
 * ds_report_html_ex; cli_run_info_comments gives the "# key: value" lines
 * that head metrics.csv (malloc'd). */
#define CLI_RUN_INFO_MAX 16
typedef struct cli_run_info {
    int n;
    ds_meta_kv kv[CLI_RUN_INFO_MAX];
    char *own[CLI_RUN_INFO_MAX];
} cli_run_info;
int cli_run_info_init(cli_run_info *r, int argc, char **argv);
int cli_run_info_add(cli_run_info *r, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int cli_run_info_add_file(cli_run_info *r, const char *key, const char *path);
char *cli_run_info_comments(const cli_run_info *r);
void cli_run_info_free(cli_run_info *r);
/* argv joined with spaces, each quoted for a POSIX shell where needed (malloc'd). */
char *cli_shell_join(int argc, char **argv);

/* Whether a data spec's images are read as [0, 1] (fashion-mnist, idx:,
 * folder: and bare folders of PNG/JPEG): the valid range an attack's
 * inputs are clipped to by default; NPY, CSV and FITS keep their units. */
int cli_spec_unit_range(const char *spec);

/* mkdir -p */
int cli_mkdirs(const char *path);

/* Option parsing: argv[i] is "--name" → value argv[i+1]. */
bool cli_opt(int argc, char **argv, int *i, const char *name, const char **value);
int cli_parse_int(const char *opt, const char *s, int lo, int hi, int *out);
int cli_parse_float(const char *opt, const char *s, double lo, double hi, float *out);

/* A subcommand, defined in its own file next to its run function
 * (tools/cmd_NAME.c) and listed in tools/deepsky.c's registry. run gets
 * argv from the subcommand's name on; usage is what `deepsky NAME --help`
 * prints; repeatable_options (NULL-terminated; NULL: none) are the options
 * that may be given more than once (sources, each NAME=SPEC): any other
 * repeated option is a usage error before run is called. */
typedef struct cli_command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
    const char *usage;
    const char *const *repeatable_options;
} cli_command;
extern const cli_command cli_cmd_demo, cli_cmd_train, cli_cmd_pretrain, cli_cmd_eval, cli_cmd_predict,
    cli_cmd_simulate, cli_cmd_info;
extern const cli_command cli_cmd_explain, cli_cmd_attack;
extern const cli_command cli_cmd_gan, cli_cmd_sample, cli_cmd_fid;
extern const cli_command cli_cmd_serve;
extern const cli_command cli_cmd_export, cli_cmd_import;

/* `deepsky explain CKPT --data SPEC --sanity | --footprint FILE`: the checks
 * of the maps (tools/cmd_explain_checks.c); cmd_explain hands argv over
 * when either option is given. */
int cli_explain_checks(int argc, char **argv);

#endif
