/* gan_model.c — a GAN model file: [gan] and [train], then [generator] and
 * [discriminator], each the [net] header of one network followed by its
 * [input] sections and layers. Each network is parsed by the model-file
 * parser from a copy of the text in which every other line is blanked (so
 * line numbers stay the file's) and its own header reads [net]; errors are
 * reworded back to [generator] / [discriminator]. docs/gan.md. */
#include "ini.h"
#include "model.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ds_gan_model {
    char *text, *file;
    ds_gan_cfg cfg;
    ds_model *net[2];
};

static const char *const part_names[2] = {"generator", "discriminator"};

static int part_of(const char *name)
{
    for (int k = 0; k < 2; k++)
        if (!strcmp(name, part_names[k])) return k;
    return -1;
}

int ds_model_text_is_gan(const char *text)
{
    ini p;
    if (!text || ini_parse(text, "model", &p)) return 0;
    int gan = 0;
    for (int i = 0; i < p.n_sec && !gan; i++) gan = part_of(p.sec[i].name) >= 0 || !strcmp(p.sec[i].name, "gan");
    ini_free(&p);
    return gan;
}

int ds_model_file_is_gan(const char *path)
{
    char *text = ds_model_read_text(path);
    int gan = text && ds_model_text_is_gan(text);
    free(text);
    return gan;
}

/* ---- [gan] ---- */

static int bad_key(const char *file, const ini_kv *kv, const char *what)
{
    return ds_fail("%s:%d: [gan] %s: '%s' %s", file, kv->line, kv->key, kv->val, what);
}

static int get_num(const char *file, const ini_kv *kv, double lo, double hi, int integer, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(kv->val, &end);
    if (end == kv->val || *end || errno || !isfinite(v)) return bad_key(file, kv, "is not a number");
    if (integer && v != floor(v)) return bad_key(file, kv, "is not a whole number");
    if (v < lo || v > hi) {
        char why[96];
        snprintf(why, sizeof why, "is out of range (%g to %g)", lo, hi);
        return bad_key(file, kv, why);
    }
    *out = v;
    return 0;
}

static int get_choice(const char *file, const ini_kv *kv, const char *const *names, int n, int *out)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(kv->val, names[i])) return *out = i, 0;
    char why[160];
    size_t k = (size_t)snprintf(why, sizeof why, "is not one of");
    for (int i = 0; i < n && k < sizeof why; i++) k += (size_t)snprintf(why + k, sizeof why - k, " %s", names[i]);
    return bad_key(file, kv, why);
}

static int parse_gan(const ini_sec *s, const char *file, ds_gan_cfg *c)
{
    static const char *const keys = "latent, conditional, classes, d_steps, loss, label_smoothing, "
                                    "instance_noise, g_lr, d_lr, transform, softening, clip_quantile, grid";
    static const char *const losses[] = {"nonsaturating", "minimax"};
    static const char *const transforms[] = {"linear", "asinh"};
    static const char *const bools[] = {"0", "1"};
    *c = (ds_gan_cfg){.d_steps = 1, .grid = 64};
    int seen_latent = 0, seen_classes = 0;
    for (int i = 0; i < s->n_kv; i++) {
        const ini_kv *kv = &s->kv[i];
        const char *k = kv->key;
        for (int j = 0; j < i; j++)
            if (!strcmp(s->kv[j].key, k))
                return ds_fail("%s:%d: [gan] %s: given twice (first at line %d)", file, kv->line, k, s->kv[j].line);
        double v = 0;
        int rc;
        if (!strcmp(k, "latent")) rc = get_num(file, kv, 1, 1 << 16, 1, &v), c->latent = (int)v, seen_latent = 1;
        else if (!strcmp(k, "conditional")) rc = get_choice(file, kv, bools, 2, &c->conditional);
        else if (!strcmp(k, "classes")) rc = get_num(file, kv, 2, 1 << 20, 1, &v), c->classes = (int)v, seen_classes = 1;
        else if (!strcmp(k, "d_steps")) rc = get_num(file, kv, 1, 100, 1, &v), c->d_steps = (int)v;
        else if (!strcmp(k, "loss")) rc = get_choice(file, kv, losses, 2, &c->loss);
        else if (!strcmp(k, "label_smoothing")) rc = get_num(file, kv, 0, 0.5, 0, &v), c->label_smoothing = (float)v;
        else if (!strcmp(k, "instance_noise")) rc = get_num(file, kv, 0, 10, 0, &v), c->instance_noise = (float)v;
        else if (!strcmp(k, "g_lr")) rc = get_num(file, kv, 1e-12, 1e6, 0, &v), c->g_lr = (float)v;
        else if (!strcmp(k, "d_lr")) rc = get_num(file, kv, 1e-12, 1e6, 0, &v), c->d_lr = (float)v;
        else if (!strcmp(k, "transform")) rc = get_choice(file, kv, transforms, 2, &c->transform);
        else if (!strcmp(k, "softening")) rc = get_num(file, kv, 0, 1e30, 0, &v), c->softening = (float)v;
        else if (!strcmp(k, "clip_quantile")) rc = get_num(file, kv, 0, 0.1, 0, &v), c->clip_quantile = (float)v;
        else if (!strcmp(k, "grid")) rc = get_num(file, kv, 1, 1024, 1, &v), c->grid = (int)v;
        else return ds_fail("%s:%d: [gan] %s: unknown key (valid keys: %s)", file, kv->line, k, keys);
        if (rc) return -1;
    }
    if (!seen_latent) return ds_fail("%s:%d: [gan]: missing latent= (the length of z)", file, s->line);
    if (c->conditional && !seen_classes)
        return ds_fail("%s:%d: [gan]: conditional=1 needs classes= (the data's classes)", file, s->line);
    if (!c->conditional && seen_classes) {
        for (int i = 0; i < s->n_kv; i++)
            if (!strcmp(s->kv[i].key, "classes"))
                return ds_fail("%s:%d: [gan] classes: applies to conditional=1 only", file, s->kv[i].line);
    }
    return 0;
}

/* ---- the two networks ---- */

/* "[net]" in the current error back to the part's own header */
static void reword(const char *part)
{
    char msg[1024], out[1100];
    snprintf(msg, sizeof msg, "%s", ds_last_error());
    char *at = strstr(msg, "[net]");
    if (!at) return;
    *at = 0;
    snprintf(out, sizeof out, "%s[%s]%s", msg, part, at + 5);
    ds_fail("%s", out);
}

/* The text of part k: its sections' lines (its header renamed [net]) and
 * [train]'s; every other line blank. */
static char *part_text(const char *text, const ini *p, int k, int train_sec)
{
    size_t n = strlen(text);
    char *t = malloc(n + 8);
    if (!t) return NULL;
    /* a line belongs to the last section header at or above it: keep 1 for
     * part k's sections, 2 for [train], 0 (blank) for the rest */
    int line = 1, sec = -1, keep = 0;
    size_t o = 0;
    for (size_t i = 0; i <= n; line++) {
        size_t e = i;
        while (e < n && text[e] != '\n') e++;
        int header = 0;
        while (sec + 1 < p->n_sec && p->sec[sec + 1].line <= line) {
            int pk = part_of(p->sec[++sec].name);
            keep = pk == k ? 1 : pk >= 0 ? 0 : sec == train_sec ? 2 : keep == 1;
            header = pk == k && p->sec[sec].line == line;
        }
        const char *open = header ? memchr(text + i, '[', e - i) : NULL;
        const char *close = open ? memchr(open, ']', (size_t)(text + e - open)) : NULL;
        if (close) { /* "[generator]  # ..." → "[net]  # ..." */
            memcpy(t + o, text + i, (size_t)(open - (text + i)));
            o += (size_t)(open - (text + i));
            memcpy(t + o, "[net]", 5);
            o += 5;
            memcpy(t + o, close + 1, (size_t)(text + e - close - 1));
            o += (size_t)(text + e - close - 1);
        } else if (keep) {
            memcpy(t + o, text + i, e - i);
            o += e - i;
        }
        if (e < n) t[o++] = '\n';
        i = e + 1;
    }
    t[o] = 0;
    return t;
}

ds_gan_model *ds_gan_model_parse(const char *text, const char *name)
{
    const char *file = name ? name : "model";
    ini p;
    if (!text) {
        ds_fail("%s: no model text", file);
        return NULL;
    }
    if (ini_parse(text, file, &p)) return NULL;
    ds_gan_model *m = calloc(1, sizeof *m);
    if (!m || !(m->text = strdup(text)) || !(m->file = strdup(file))) {
        ds_fail("out of memory");
        goto fail;
    }
    int gan = -1, train = -1, first_part = -1, seen[2] = {-1, -1};
    for (int i = 0; i < p.n_sec; i++) {
        const ini_sec *s = &p.sec[i];
        int k = part_of(s->name);
        if (k >= 0) {
            if (seen[k] >= 0) {
                ds_fail("%s:%d: [%s]: a second one (the first is at line %d)", file, s->line, s->name, p.sec[seen[k]].line);
                goto fail;
            }
            seen[k] = i;
            if (first_part < 0) first_part = i;
        } else if (!strcmp(s->name, "gan") || !strcmp(s->name, "train")) {
            int *slot = s->name[0] == 'g' ? &gan : &train;
            if (*slot >= 0) {
                ds_fail("%s:%d: [%s]: a second one (the first is at line %d)", file, s->line, s->name, p.sec[*slot].line);
                goto fail;
            }
            if (first_part >= 0) {
                ds_fail("%s:%d: [%s] belongs before [%s] (line %d): it is the whole GAN's, not one network's", file,
                        s->line, s->name, p.sec[first_part].name, p.sec[first_part].line);
                goto fail;
            }
            *slot = i;
        } else if (!strcmp(s->name, "net")) {
            ds_fail("%s:%d: [net]: a GAN file has [generator] and [discriminator] instead", file, s->line);
            goto fail;
        } else if (first_part < 0) {
            ds_fail("%s:%d: [%s]: only [gan] and [train] come before [generator]", file, s->line, s->name);
            goto fail;
        }
    }
    if (gan < 0) {
        ds_fail("%s:1: no [gan] section (it gives latent=, the length of z)", file);
        goto fail;
    }
    if (parse_gan(&p.sec[gan], file, &m->cfg)) goto fail;
    for (int k = 0; k < 2; k++)
        if (seen[k] < 0) {
            ds_fail("%s:1: no [%s] section", file, part_names[k]);
            goto fail;
        }
    if (seen[0] > seen[1]) {
        ds_fail("%s:%d: [generator] comes before [discriminator] (line %d)", file, p.sec[seen[0]].line,
                p.sec[seen[1]].line);
        goto fail;
    }
    for (int k = 0; k < 2; k++) {
        char *t = part_text(text, &p, k, train);
        if (!t) {
            ds_fail("out of memory");
            goto fail;
        }
        m->net[k] = ds_model_parse_part(t, file, 1);
        free(t);
        if (!m->net[k]) {
            reword(part_names[k]);
            goto fail;
        }
    }
    /* what the networks' inputs must be */
    const ds_gan_cfg *c = &m->cfg;
    int want = c->conditional ? 2 : 1;
    for (int k = 0; k < 2; k++) {
        ds_model *n = m->net[k];
        int line = p.sec[seen[k]].line;
        if (n->n_inputs != want) {
            ds_fail("%s:%d: [%s]: it has %d input%s; a%s GAN's %s takes %s", file, line, part_names[k], n->n_inputs,
                    n->n_inputs == 1 ? "" : "s", c->conditional ? " conditional" : "n unconditional", part_names[k],
                    c->conditional ? (k ? "the sample and the class ([input] x, then [input] c)"
                                        : "z and the class ([input] z, then [input] c)")
                                   : (k ? "the sample alone" : "z alone"));
            goto fail;
        }
        if (c->conditional && !(n->inputs[1].shape.ndim == 1 && n->inputs[1].shape.d[0] == 1)) {
            ds_fail("%s:%d: [input] '%s': the class input has shape 1 (one index per sample)", file, n->inputs[1].line,
                    n->inputs[1].name);
            goto fail;
        }
    }
    ds_shape z = m->net[0]->inputs[0].shape;
    if (!(z.ndim == 1 && z.d[0] == c->latent)) {
        char b[64];
        ds_fail("%s:%d: [generator]: its first input is %s but [gan] latent=%d", file, m->net[0]->inputs[0].line,
                ds_shape_str(z, b, sizeof b), c->latent);
        goto fail;
    }
    ini_free(&p);
    return m;
fail:
    ini_free(&p);
    ds_gan_model_free(m);
    return NULL;
}

ds_gan_model *ds_gan_model_load(const char *path)
{
    char *text = ds_model_read_text(path);
    ds_gan_model *m = text ? ds_gan_model_parse(text, path) : NULL;
    free(text);
    return m;
}

void ds_gan_model_free(ds_gan_model *m)
{
    if (!m) return;
    ds_model_free(m->net[0]);
    ds_model_free(m->net[1]);
    free(m->text);
    free(m->file);
    free(m);
}

const ds_gan_cfg *ds_gan_model_cfg(const ds_gan_model *m) { return &m->cfg; }
const ds_train_cfg *ds_gan_model_train_cfg(const ds_gan_model *m) { return &m->net[0]->train; }
const char *ds_gan_model_text(const ds_gan_model *m) { return m->text; }
ds_model *ds_gan_model_net(ds_gan_model *m, int which) { return which == 0 || which == 1 ? m->net[which] : NULL; }
ds_shape ds_gan_model_sample_shape(const ds_gan_model *m) { return m->net[1]->inputs[0].shape; }
