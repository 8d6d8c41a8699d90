/* explain.h — what `deepsky explain`'s files share (tools/cmd_explain.c:
 * options, classes, the maps; tools/explain_draw.c: colour maps, overlays,
 * the HTML page; tools/explain_filters.c: --filters). */
#ifndef DS_EXPLAIN_TOOL_H
#define DS_EXPLAIN_TOOL_H

#include "cli.h"

#include <stdint.h>

/* a checkpoint opened for attribution and the options of the run */
typedef struct xrun {
    cli_net net;
    ds_norm norm;           /* the first input's normalisation (the data stays raw) */
    int methods[DS_EXPLAIN_METHODS], n_methods;
    ds_explain_cfg cfg;     /* samples, noise, steps, seed; layer and baseline set per source */
    const char *baseline;   /* zero | mean | VALUE */
    const char *class_spec; /* pred | label | NAME | INDEX */
    const char *layer_name; /* gradcam's (NULL: the last conv layer) */
    const char *ckpt;
    cli_specs extra;        /* --data NAME=SPEC: the other inputs */
    int top, max;
    size_t sample;          /* values per sample of the first input */
    int C, H, W;            /* the first input's [C, H, W] (C = 1, H = 1 for tables) */
} xrun;

/* The names of the model's class k (the checkpoint's vocabulary, else the data's, else k). */
const char *xrun_class_name(const xrun *r, const ds_dataset *d, int k, char *buf, size_t size);
/* The layer called name (NULL: the last conv layer) whose output is [N, C, H, W], as its index;
 * an error listing the valid names otherwise. */
int xrun_layer(const xrun *r, const char *name, const char *opt);
/* Set the feeds after the first for rows rows[0..n) of d, the batch padded
 * with the last; the targets and labels to zeros. */
void xrun_fill_fields(xrun *r, const ds_dataset *d, const int *rows, int n);
/* Forward rows rows[0..n) of raw d (normalised into the first feed),
 * padded to the compiled batch. The graph's nodes then hold them. */
int xrun_forward(xrun *r, const ds_dataset *d, const int *rows, int n);

/* ---- pictures (tools/explain_draw.c) ---- */

/* The grey picture of a sample (its last channel, black to white over its range) as RGB. */
void xdraw_input(const float *x, int C, int H, int W, uint8_t *rgb);
/* A map [H, W] in colour: unsigned maps black → red → yellow → white,
 * signed ones blue → white → red, scaled by the 99.5th percentile of |v|. */
void xdraw_map(const float *map, int H, int W, int is_signed, uint8_t *rgb);
/* The input in grey under the map's heat, opaque where |map| is large. */
void xdraw_overlay(const float *x, int C, int H, int W, const float *map, int is_signed, uint8_t *rgb);
/* Whether a method's map is signed (gradxinput, integrated gradients). */
int xdraw_signed(int method);

/* The HTML page: title, a preformatted summary, the overview picture and a
 * table (rows of cells, already escaped where needed; the first row is the
 * header), links to the files written. */
typedef struct xhtml {
    const char *title, *summary, *picture;
    int rows, cols;
    char **cells; /* rows × cols, malloc'd strings */
} xhtml;
int xhtml_write(const char *path, const xhtml *h);
/* s with &, <, > and " escaped (malloc'd) */
char *xhtml_escape(const char *s);

/* ---- --filters (tools/explain_filters.c) ---- */

/* DIR/filters_LAYER.png and DIR/patches_LAYER.png for the layer called
 * name over raw data d: each filter's picture and the top input patches
 * that activate it most. */
int xrun_filters(xrun *r, const char *name, const ds_dataset *d, const char *dir);

#endif
