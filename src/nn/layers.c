/* layers.c — layer builders: parameters named "<layer>.<role>" plus the op. */
#include "internal.h"

#include <limits.h>

#include <math.h>
#include <stdio.h>

static ds_node *named_param(ds_graph *g, const char *layer, const char *role, ds_shape s,
                            ds_init init, int buffer)
{
    char name[256];
    snprintf(name, sizeof name, "%s.%s", layer, role);
    return buffer ? ds_buffer(g, name, s, init) : ds_param(g, name, s, init);
}

static ds_node *fail_layer(const char *layer)
{
    ds_fail_prefix("layer '%s': ", layer);
    return NULL;
}

ds_node *ds_nn_dense(ds_graph *g, const char *name, ds_node *x, int out, ds_init winit, int bias)
{
    if (!x) return NULL;
    size_t per = ds_numel(x) / (size_t)x->shape.d[0];
    if (per > INT_MAX) { /* the weight's shape is ints: (int) would wrap, e.g. 65536² to 0 */
        ds_fail("%zu input features per sample, more than %d", per, INT_MAX);
        return fail_layer(name);
    }
    int k = (int)per;
    ds_node *w = named_param(g, name, "weight", ds_shape_of(2, out, k), winit, 0);
    /* PyTorch draws the bias from U(±1/√fan_in) too */
    ds_node *b = bias ? named_param(g, name, "bias", ds_shape_of(1, out),
                                    (ds_init){DS_INIT_UNIFORM, -1.0f / sqrtf((float)k), 1.0f / sqrtf((float)k)}, 0)
                      : NULL;
    if (!w || (bias && !b)) return fail_layer(name);
    ds_node *y = ds_linear(g, x, w, b);
    return y ? y : fail_layer(name);
}

ds_node *ds_nn_embedding(ds_graph *g, const char *name, ds_node *idx, int categories, int dim)
{
    if (!idx) return NULL;
    /* PyTorch's nn.Embedding draws the table from N(0, 1) */
    ds_node *w = named_param(g, name, "weight", ds_shape_of(2, categories, dim), (ds_init){DS_INIT_NORMAL, 0, 1}, 0);
    ds_node *y = w ? ds_embedding(g, idx, w) : NULL;
    return y ? y : fail_layer(name);
}

static ds_node *conv_layer(ds_graph *g, const char *name, ds_node *x, int out, int k, ds_conv_opt opt,
                           ds_init winit, int bias, int transposed)
{
    if (!x) return NULL;
    if (x->shape.ndim != 4) {
        char b[96];
        ds_fail("layer '%s': input '%s' is %s; expected [N, C, H, W]", name, x->name,
                ds_shape_str(x->shape, b, sizeof b));
        return NULL;
    }
    int c = x->shape.d[1], groups = opt.groups > 0 ? opt.groups : 1;
    ds_shape ws = transposed ? ds_shape_of(4, c, out / groups, k, k) : ds_shape_of(4, out, c / groups, k, k);
    ds_node *w = named_param(g, name, "weight", ws, winit, 0);
    /* PyTorch's default bias: U(±1/√fan_in), fan_in = d[1]·k·k of the weight */
    float bound = 1.0f / sqrtf((float)ws.d[1] * k * k);
    ds_node *b = bias ? named_param(g, name, "bias", ds_shape_of(1, out),
                                    (ds_init){DS_INIT_UNIFORM, -bound, bound}, 0)
                      : NULL;
    if (!w || (bias && !b)) return fail_layer(name);
    ds_node *y = transposed ? ds_conv_transpose2d(g, x, w, b, opt) : ds_conv2d(g, x, w, b, opt);
    return y ? y : fail_layer(name);
}

ds_node *ds_nn_conv2d(ds_graph *g, const char *name, ds_node *x, int out, int k, ds_conv_opt opt,
                      ds_init winit, int bias)
{
    return conv_layer(g, name, x, out, k, opt, winit, bias, 0);
}

ds_node *ds_nn_conv_transpose2d(ds_graph *g, const char *name, ds_node *x, int out, int k,
                                ds_conv_opt opt, ds_init winit, int bias)
{
    return conv_layer(g, name, x, out, k, opt, winit, bias, 1);
}

ds_node *ds_nn_batchnorm(ds_graph *g, const char *name, ds_node *x)
{
    if (!x) return NULL;
    if (x->shape.ndim < 2) {
        ds_fail("layer '%s': batch norm needs [N, C, ...]", name);
        return NULL;
    }
    ds_shape s = ds_shape_of(1, x->shape.d[1]);
    ds_node *gamma = named_param(g, name, "weight", s, (ds_init){DS_INIT_ONES, 0, 0}, 0);
    ds_node *beta = named_param(g, name, "bias", s, (ds_init){DS_INIT_ZEROS, 0, 0}, 0);
    ds_node *rm = named_param(g, name, "running_mean", s, (ds_init){DS_INIT_ZEROS, 0, 0}, 1);
    ds_node *rv = named_param(g, name, "running_var", s, (ds_init){DS_INIT_ONES, 0, 0}, 1);
    if (!gamma || !beta || !rm || !rv) return fail_layer(name);
    ds_node *y = ds_batchnorm(g, x, gamma, beta, rm, rv, 0.1f, 1e-5f);
    return y ? y : fail_layer(name);
}
