/* model.c — model files (.cfg): [net], one section per layer, [train] and
 * [tree] (src/io/tree.c),
 * checked key by key into a ds_model. The graph is built in model_build.c.
 * Every error starts "FILE:LINE: " and names the section, layer and key.
 * Reference: docs/model-file.md. */
#include "model.h"

#include "ini.h"
#include "tree.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[L_COUNT] = {
    "conv", "deconv", "dense", "maxpool", "avgpool", "global_avgpool", "batchnorm",
    "dropout", "activation", "flatten", "concat", "add", "reshape", "rbm", "instancenorm", "embedding"};

const char *ds_layer_kind_name(int kind)
{
    return kind >= 0 && kind < L_COUNT ? kind_names[kind] : "?";
}

/* Section names, Darknet's and PyTorch's aliases included. */
static const struct {
    const char *name;
    int kind;
} section_kinds[] = {
    {"conv", L_CONV},          {"convolutional", L_CONV},     {"deconv", L_DECONV},
    {"conv_transpose", L_DECONV}, {"deconvolutional", L_DECONV}, {"dense", L_DENSE},
    {"connected", L_DENSE},    {"maxpool", L_MAXPOOL},        {"avgpool", L_AVGPOOL},
    {"global_avgpool", L_GAP}, {"batchnorm", L_BN},           {"dropout", L_DROPOUT},
    {"activation", L_ACT},     {"flatten", L_FLATTEN},        {"concat", L_CONCAT},
    {"add", L_ADD},            {"shortcut", L_ADD},           {"reshape", L_RESHAPE},
    {"rbm", L_RBM},            {"instancenorm", L_INSTNORM},  {"instance_norm", L_INSTNORM},
    {"embedding", L_EMBED},
};
#define N_SECTION_KINDS (int)(sizeof section_kinds / sizeof section_kinds[0])

#define ACT_CHOICES "linear|relu|leaky|leaky_relu|elu|sigmoid|tanh|softplus"
#define INIT_CHOICES "default|zeros|xavier_uniform|xavier_normal|he_uniform|he_normal|dcgan"
/* dcgan: N(0, 0.02), Radford et al. 2016's (model_build.c gives the std) */
static const ds_init_kind init_kinds[] = {DS_INIT_DEFAULT,        DS_INIT_ZEROS,
                                          DS_INIT_XAVIER_UNIFORM, DS_INIT_XAVIER_NORMAL,
                                          DS_INIT_HE_UNIFORM,     DS_INIT_HE_NORMAL,
                                          DS_INIT_NORMAL};

/* Names a layer may not take: the model's input and the trainer's nodes. */
static const char *const reserved_names[] = {"input", "x", "y", "loss"};

/* ---- key tables ---- */

typedef enum vtype {
    V_INT,     /* int in [lo, hi] */
    V_FLOAT,   /* float, finite, range per frange */
    V_BOOL,    /* 0|1|true|false → int */
    V_ENUM,    /* one of choices ("a|b|c") → int index */
    V_U64,     /* uint64_t */
    V_DIMS,    /* comma list of 1 or 3 sizes ≥ 1 → ds_shape ([net] input) */
    V_SHAPE,   /* comma list of sizes ≥ 1 or one −1 → ds_shape (reshape) */
    V_PADDING, /* same|valid|N → pad, same */
    V_SKIP     /* handled elsewhere (name, from) */
} vtype;

/* F_LR: a learning rate, bounded as the command line's --lr is */
typedef enum frange { F_FINITE, F_POS, F_NONNEG, F_UNIT_CO, F_UNIT_OO, F_UNIT_CC, F_LR } frange;

typedef struct key_def {
    const char *key;
    const char *canon;   /* the key this one is an alias of (NULL: itself) */
    vtype type;
    size_t off;          /* into ds_layer, net_raw or train_raw */
    long lo, hi;         /* V_INT: inclusive range; V_FLOAT: lo is the frange */
    const char *choices; /* V_ENUM */
    unsigned kinds;      /* layer keys: the layer kinds that take it */
} key_def;

#define KB(k) (1u << (k))
#define CONVS (KB(L_CONV) | KB(L_DECONV))
#define POOLS (KB(L_MAXPOOL) | KB(L_AVGPOOL))
#define WEIGHTED (CONVS | KB(L_DENSE))
#define ALL_KINDS ((1u << L_COUNT) - 1)
#define LO(f) offsetof(ds_layer, f)

static const key_def layer_keys[] = {
    {"name", NULL, V_SKIP, 0, 0, 0, NULL, ALL_KINDS},
    {"from", NULL, V_SKIP, 0, 0, 0, NULL, ALL_KINDS},
    {"filters", NULL, V_INT, LO(out), 1, 1 << 16, NULL, CONVS},
    {"units", NULL, V_INT, LO(out), 1, 1 << 24, NULL, KB(L_DENSE) | KB(L_RBM) | KB(L_EMBED)},
    {"categories", NULL, V_INT, LO(categories), 1, 1 << 24, NULL, KB(L_EMBED)},
    {"output", "units", V_INT, LO(out), 1, 1 << 24, NULL, KB(L_DENSE) | KB(L_RBM)},
    {"visible", NULL, V_ENUM, LO(visible), 0, 0, "bernoulli|gaussian", KB(L_RBM)},
    {"lr", NULL, V_FLOAT, LO(rbm_lr), F_LR, 0, NULL, KB(L_RBM)},
    {"learning_rate", "lr", V_FLOAT, LO(rbm_lr), F_LR, 0, NULL, KB(L_RBM)},
    {"epochs", NULL, V_INT, LO(rbm_epochs), 1, 1 << 20, NULL, KB(L_RBM)},
    {"size", NULL, V_INT, LO(size), 1, 1024, NULL, CONVS | POOLS},
    {"stride", NULL, V_INT, LO(stride), 1, 1024, NULL, CONVS | POOLS},
    {"pad", NULL, V_INT, LO(pad), 0, 1024, NULL, CONVS | POOLS},
    {"padding", "pad", V_PADDING, LO(pad), 0, 1024, NULL, KB(L_CONV)},
    {"dilation", NULL, V_INT, LO(dilation), 1, 1024, NULL, CONVS},
    {"groups", NULL, V_INT, LO(groups), 1, 1 << 16, NULL, CONVS},
    {"output_padding", NULL, V_INT, LO(out_pad), 0, 1024, NULL, KB(L_DECONV)},
    {"bias", NULL, V_BOOL, LO(bias), 0, 1, NULL, WEIGHTED},
    {"batch_normalize", NULL, V_BOOL, LO(bn), 0, 1, NULL, WEIGHTED},
    {"activation", NULL, V_ENUM, LO(act), 0, 0, ACT_CHOICES, WEIGHTED | KB(L_ACT) | KB(L_ADD)},
    {"alpha", NULL, V_FLOAT, LO(alpha), F_FINITE, 0, NULL, WEIGHTED | KB(L_ACT) | KB(L_ADD)},
    {"init", NULL, V_ENUM, LO(init), 0, 0, INIT_CHOICES, WEIGHTED},
    {"p", NULL, V_FLOAT, LO(p), F_UNIT_CO, 0, NULL, KB(L_DROPOUT)},
    {"probability", "p", V_FLOAT, LO(p), F_UNIT_CO, 0, NULL, KB(L_DROPOUT)},
    {"shape", NULL, V_SHAPE, LO(shape), 0, 0, NULL, KB(L_RESHAPE)},
};

typedef struct net_raw {
    ds_shape input;
    int classes, normalize;
} net_raw;

static const key_def net_keys[] = {
    {"input", NULL, V_DIMS, offsetof(net_raw, input), 0, 0, NULL, 0},
    {"classes", NULL, V_INT, offsetof(net_raw, classes), 1, 1 << 20, NULL, 0},
    {"normalize", NULL, V_ENUM, offsetof(net_raw, normalize), 0, 0, "none|standard", 0},
};

#define PO(f) offsetof(ds_pretrain_cfg, f)
static const key_def pretrain_keys[] = {
    {"epochs", NULL, V_INT, PO(epochs), 1, 1 << 20, NULL, 0},
    {"batch", NULL, V_INT, PO(batch), 1, 1 << 20, NULL, 0},
    {"k", NULL, V_INT, PO(k), 1, 1000, NULL, 0},
    {"persistent", NULL, V_BOOL, PO(persistent), 0, 1, NULL, 0},
    {"lr", NULL, V_FLOAT, PO(lr), F_LR, 0, NULL, 0},
    {"learning_rate", "lr", V_FLOAT, PO(lr), F_LR, 0, NULL, 0},
    {"momentum", NULL, V_FLOAT, PO(momentum), F_UNIT_CO, 0, NULL, 0},
    {"weight_decay", NULL, V_FLOAT, PO(weight_decay), F_NONNEG, 0, NULL, 0},
    {"sparsity_target", NULL, V_FLOAT, PO(sparsity_target), F_UNIT_CC, 0, NULL, 0},
    {"sparsity_cost", NULL, V_FLOAT, PO(sparsity_cost), F_NONNEG, 0, NULL, 0},
    {"seed", NULL, V_U64, PO(seed), 0, 0, NULL, 0},
};

/* [train] as read; converted into ds_train_cfg after the checks. */
typedef struct train_raw {
    int optimizer, schedule, unit, nesterov, batch, epochs, step_size, t_max, warmup, augment;
    int sampler, monitor, patience;
    int sync_bn, allreduce, micro_batches;
    int adversarial, adv_steps, adv_norm, adv_random_start;
    float adv_eps, adv_step_size, adv_alpha;
    int freeze; /* [group] */
    float lr, momentum, weight_decay, beta1, beta2, eps, alpha, clip_norm, gamma, eta_min,
        warmup_start;
    uint64_t seed;
} train_raw;

/* optimizer= and schedule= store their index in the choices as the enum */
_Static_assert(DS_SGD == 0 && DS_ADAM == 1 && DS_ADAMW == 2 && DS_RMSPROP == 3, "optimizer order");
_Static_assert(DS_SCHED_CONSTANT == 0 && DS_SCHED_STEP == 1 && DS_SCHED_COSINE == 2, "schedule order");

#define TO(f) offsetof(train_raw, f)
static const key_def train_keys[] = {
    {"optimizer", NULL, V_ENUM, TO(optimizer), 0, 0, "sgd|adam|adamw|rmsprop", 0},
    {"lr", NULL, V_FLOAT, TO(lr), F_LR, 0, NULL, 0},
    {"learning_rate", "lr", V_FLOAT, TO(lr), F_LR, 0, NULL, 0},
    {"momentum", NULL, V_FLOAT, TO(momentum), F_UNIT_CO, 0, NULL, 0},
    {"nesterov", NULL, V_BOOL, TO(nesterov), 0, 1, NULL, 0},
    {"weight_decay", NULL, V_FLOAT, TO(weight_decay), F_NONNEG, 0, NULL, 0},
    {"beta1", NULL, V_FLOAT, TO(beta1), F_UNIT_OO, 0, NULL, 0},
    {"beta2", NULL, V_FLOAT, TO(beta2), F_UNIT_OO, 0, NULL, 0},
    {"eps", NULL, V_FLOAT, TO(eps), F_POS, 0, NULL, 0},
    {"alpha", NULL, V_FLOAT, TO(alpha), F_UNIT_OO, 0, NULL, 0},
    {"clip_norm", NULL, V_FLOAT, TO(clip_norm), F_NONNEG, 0, NULL, 0},
    {"batch", NULL, V_INT, TO(batch), 1, 1 << 20, NULL, 0},
    {"epochs", NULL, V_INT, TO(epochs), 1, 1 << 20, NULL, 0},
    {"seed", NULL, V_U64, TO(seed), 0, 0, NULL, 0},
    {"schedule", NULL, V_ENUM, TO(schedule), 0, 0, "constant|step|cosine", 0},
    {"step_size", NULL, V_INT, TO(step_size), 1, 1 << 30, NULL, 0},
    {"gamma", NULL, V_FLOAT, TO(gamma), F_POS, 0, NULL, 0},
    {"t_max", NULL, V_INT, TO(t_max), 1, 1 << 30, NULL, 0},
    {"eta_min", NULL, V_FLOAT, TO(eta_min), F_NONNEG, 0, NULL, 0},
    {"warmup", NULL, V_INT, TO(warmup), 0, 1 << 30, NULL, 0},
    {"warmup_start", NULL, V_FLOAT, TO(warmup_start), F_UNIT_CC, 0, NULL, 0},
    {"schedule_unit", NULL, V_ENUM, TO(unit), 0, 0, "epoch|step", 0},
    {"augment", NULL, V_ENUM, TO(augment), 0, 0, "none|flip|dihedral", 0},
    {"class_weight", NULL, V_SKIP, 0, 0, 0, NULL, 0},
    {"sampler", NULL, V_ENUM, TO(sampler), 0, 0, "shuffle|balanced", 0},
    {"sync_bn", NULL, V_BOOL, TO(sync_bn), 0, 1, NULL, 0},
    {"allreduce", NULL, V_ENUM, TO(allreduce), 0, 0, "sum|ordered", 0},
    {"micro_batches", NULL, V_INT, TO(micro_batches), 1, 1 << 16, NULL, 0},
    {"monitor", NULL, V_ENUM, TO(monitor), 0, 0, "val_acc|val_loss|val_auc|val_mdr", 0},
    {"patience", NULL, V_INT, TO(patience), 0, 1 << 20, NULL, 0},
    {"no_decay", NULL, V_SKIP, 0, 0, 0, NULL, 0}, /* parse_no_decay */
    {"adversarial", NULL, V_ENUM, TO(adversarial), 0, 0, "none|fgsm|pgd", 0},
    {"adversarial_eps", NULL, V_FLOAT, TO(adv_eps), F_NONNEG, 0, NULL, 0},
    {"adversarial_steps", NULL, V_INT, TO(adv_steps), 1, 1 << 16, NULL, 0},
    {"adversarial_step_size", NULL, V_FLOAT, TO(adv_step_size), F_NONNEG, 0, NULL, 0},
    {"adversarial_alpha", NULL, V_FLOAT, TO(adv_alpha), F_UNIT_CO, 0, NULL, 0},
    {"adversarial_norm", NULL, V_ENUM, TO(adv_norm), 0, 0, "linf|l2", 0},
    {"adversarial_random_start", NULL, V_BOOL, TO(adv_random_start), 0, 1, NULL, 0},
    {"adversarial_clip", NULL, V_SKIP, 0, 0, 0, NULL, 0}, /* auto|none|LO,HI */
};

/* [group]: the parameters it selects, and what of [train] it replaces */
static const key_def group_keys[] = {
    {"params", NULL, V_SKIP, 0, 0, 0, NULL, 0},
    {"lr", NULL, V_FLOAT, TO(lr), F_LR, 0, NULL, 0},
    {"learning_rate", "lr", V_FLOAT, TO(lr), F_LR, 0, NULL, 0},
    {"weight_decay", NULL, V_FLOAT, TO(weight_decay), F_NONNEG, 0, NULL, 0},
    {"freeze", NULL, V_BOOL, TO(freeze), 0, 1, NULL, 0},
    {"schedule", NULL, V_ENUM, TO(schedule), 0, 0, "constant|step|cosine", 0},
    {"step_size", NULL, V_INT, TO(step_size), 1, 1 << 30, NULL, 0},
    {"gamma", NULL, V_FLOAT, TO(gamma), F_POS, 0, NULL, 0},
    {"t_max", NULL, V_INT, TO(t_max), 1, 1 << 30, NULL, 0},
    {"eta_min", NULL, V_FLOAT, TO(eta_min), F_NONNEG, 0, NULL, 0},
    {"warmup", NULL, V_INT, TO(warmup), 0, 1 << 30, NULL, 0},
    {"warmup_start", NULL, V_FLOAT, TO(warmup_start), F_UNIT_CC, 0, NULL, 0},
    {"schedule_unit", NULL, V_ENUM, TO(unit), 0, 0, "epoch|step", 0},
};

#define N_KEYS(t) (int)(sizeof t / sizeof t[0])

/* ---- messages ---- */

/* Where a message points: the file and "[section]" or "[conv] 'conv2'". */
typedef struct ctx {
    const char *file;
    char where[160];
} ctx;

static int at_fail(const ctx *c, int line, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* "FILE:LINE: [section] 'layer' key: message" (key may be NULL). */
static int at_fail(const ctx *c, int line, const char *key, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ds_fail("%s:%d: %s%s%s: %s", c->file, line, c->where, key ? " " : "", key ? key : "",
                   msg);
}

/* Keys a section of this kind takes, "a, b, c" (kinds 0: every key of the table). */
static void list_keys(const key_def *t, int n, unsigned kinds, char *buf, size_t size)
{
    size_t k = 0;
    buf[0] = 0;
    for (int i = 0; i < n && k < size; i++)
        if (!kinds || (t[i].kinds & kinds))
            k += (size_t)snprintf(buf + k, size - k, "%s%s", k ? ", " : "", t[i].key);
}

static const char *canon_of(const key_def *d) { return d->canon ? d->canon : d->key; }

static const key_def *find_def(const key_def *t, int n, unsigned kinds, const char *key)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(t[i].key, key) && (!kinds || (t[i].kinds & kinds))) return &t[i];
    return NULL;
}

/* The entry for `canon` (or one of its aliases) in a section, NULL if absent. */
static const ini_kv *find_kv(const ini_sec *s, const key_def *t, int n, const char *canon)
{
    for (int i = 0; i < s->n_kv; i++) {
        const key_def *d = find_def(t, n, 0, s->kv[i].key);
        if (d && !strcmp(canon_of(d), canon)) return &s->kv[i];
    }
    return NULL;
}

/* ---- values ---- */

static int parse_long(const char *s, long *v)
{
    char *end;
    errno = 0;
    *v = strtol(s, &end, 10);
    return end != s && !*end && errno == 0 ? 0 : -1;
}


/* Comma-separated integers in −1..2²⁴ into d[0..*n), at most max of them. */
static int parse_ints(const char *s, int *d, int max, int *n)
{
    char buf[256], *p = buf, *tok;
    *n = 0;
    if (strlen(s) >= sizeof buf) return -1;
    strcpy(buf, s);
    while ((tok = ini_next_item(&p))) {
        long v;
        if (*n == max || parse_long(tok, &v) || v < -1 || v > (1 << 24)) return -1;
        d[(*n)++] = (int)v;
    }
    return 0;
}

static const char *frange_text(int r)
{
    static const char *const t[] = {"be finite", "be > 0", "be >= 0", "be in [0, 1)",
                                    "be in (0, 1)", "be in [0, 1]", "be in [1e-12, 1e6], as --lr"};
    return t[r];
}

static int in_frange(double v, int r)
{
    switch (r) {
    case F_POS: return v > 0;
    case F_NONNEG: return v >= 0;
    case F_UNIT_CO: return v >= 0 && v < 1;
    case F_UNIT_OO: return v > 0 && v < 1;
    case F_UNIT_CC: return v >= 0 && v <= 1;
    case F_LR: return v >= 1e-12 && v <= 1e6;
    default: return 1;
    }
}

/* Index of val in "a|b|c", or -1. */
static int enum_index(const char *choices, const char *val)
{
    size_t n = strlen(val);
    int i = 0;
    for (const char *p = choices; *p; i++) {
        size_t k = strcspn(p, "|");
        if (k == n && !strncmp(p, val, n)) return i;
        p += k + (p[k] == '|');
    }
    return -1;
}

/* Parse kv->val as d says into (char *)dst + d->off. */
static int set_value(const ctx *c, const key_def *d, const ini_kv *kv, void *dst)
{
    char *p = (char *)dst + d->off;
    const char *v = kv->val;
    long l;
    switch (d->type) {
    case V_INT:
        if (parse_long(v, &l)) return at_fail(c, kv->line, kv->key, "'%s' is not an integer", v);
        if (l < d->lo || l > d->hi)
            return at_fail(c, kv->line, kv->key, "%ld is out of range (%ld..%ld)", l, d->lo, d->hi);
        *(int *)p = (int)l;
        return 0;
    case V_BOOL:
        if (!strcmp(v, "1") || !strcmp(v, "true")) *(int *)p = 1;
        else if (!strcmp(v, "0") || !strcmp(v, "false")) *(int *)p = 0;
        else return at_fail(c, kv->line, kv->key, "'%s' is not 0 or 1 (or true/false)", v);
        return 0;
    case V_FLOAT: {
        char *end;
        errno = 0;
        double x = strtod(v, &end);
        if (end == v || *end || errno == ERANGE || !isfinite(x))
            return at_fail(c, kv->line, kv->key, "'%s' is not a finite number", v);
        if (!in_frange(x, (int)d->lo) || !isfinite((float)x))
            return at_fail(c, kv->line, kv->key, "%s is out of range (must %s)", v,
                           frange_text((int)d->lo));
        *(float *)p = (float)x;
        return 0;
    }
    case V_ENUM: {
        int i = enum_index(d->choices, v);
        if (i < 0) return at_fail(c, kv->line, kv->key, "unknown value '%s' (expected %s)", v, d->choices);
        *(int *)p = i;
        return 0;
    }
    case V_U64: {
        char *end;
        errno = 0;
        unsigned long long u = strtoull(v, &end, 10);
        if (!isdigit((unsigned char)v[0]) || *end || errno)
            return at_fail(c, kv->line, kv->key, "'%s' is not a non-negative integer", v);
        *(uint64_t *)p = (uint64_t)u;
        return 0;
    }
    case V_DIMS: {
        int dims[4], n;
        if (parse_ints(v, dims, 4, &n) || (n != 1 && n != 3))
            return at_fail(c, kv->line, kv->key,
                           "'%s' is not C,H,W (images) or F (tables), e.g. 1,28,28", v);
        ds_shape s = {.ndim = n};
        for (int i = 0; i < n; i++) {
            if (dims[i] < 1 || dims[i] > (1 << 16))
                return at_fail(c, kv->line, kv->key, "size %d is out of range (1..65536)", dims[i]);
            s.d[i] = dims[i];
        }
        *(ds_shape *)p = s;
        return 0;
    }
    case V_SHAPE: {
        int dims[DS_MAX_DIMS], n, infer = 0;
        if (parse_ints(v, dims, DS_MAX_DIMS - 1, &n))
            return at_fail(c, kv->line, kv->key,
                           "'%s' is not 1 to %d comma-separated sizes (without the batch)", v,
                           DS_MAX_DIMS - 1);
        ds_shape s = {.ndim = n};
        for (int i = 0; i < n; i++) {
            infer += dims[i] == -1;
            if (dims[i] == 0 || infer > 1)
                return at_fail(c, kv->line, kv->key, "sizes must be >= 1, with at most one -1 (inferred)");
            s.d[i] = dims[i];
        }
        *(ds_shape *)p = s;
        return 0;
    }
    case V_PADDING: {
        ds_layer *L = dst;
        if (!strcmp(v, "same")) L->same = 1;
        else if (!strcmp(v, "valid")) L->pad = 0;
        else if (parse_long(v, &l) || l < 0 || l > 1024)
            return at_fail(c, kv->line, kv->key, "'%s' is not same, valid or a size 0..1024", v);
        else L->pad = (int)l;
        return 0;
    }
    case V_SKIP: return 0;
    }
    return 0;
}

/* Check every key of a section against the table and store the values. */
static int set_keys(const ctx *c, const ini_sec *s, const key_def *t, int n, unsigned kinds,
                    void *dst)
{
    for (int i = 0; i < s->n_kv; i++) {
        const ini_kv *kv = &s->kv[i];
        const key_def *d = find_def(t, n, kinds, kv->key);
        if (!d) {
            char keys[640];
            list_keys(t, n, kinds, keys, sizeof keys);
            return at_fail(c, kv->line, kv->key, "unknown key (valid keys: %s)", keys);
        }
        for (int j = 0; j < i; j++) {
            const key_def *e = find_def(t, n, kinds, s->kv[j].key);
            if (!strcmp(canon_of(e), canon_of(d)))
                return at_fail(c, kv->line, kv->key, "set twice (%s= at line %d)", s->kv[j].key,
                               s->kv[j].line);
        }
        if (set_value(c, d, kv, dst)) return -1;
    }
    return 0;
}

/* ---- [net] and [train] ---- */

static int parse_net(ds_model *m, const ini_sec *s, const char *file)
{
    ctx c = {file, "[net]"};
    net_raw r = {{0}, 0, 1}; /* normalize=standard unless told */
    if (set_keys(&c, s, net_keys, N_KEYS(net_keys), 0, &r)) return -1;
    if (!r.input.ndim && !m->n_inputs)
        return at_fail(&c, s->line, NULL, "missing input= (the per-sample shape: C,H,W for images, "
                                          "F for tables; e.g. input=1,28,28), or [input] sections");
    if (r.input.ndim && m->n_inputs)
        return at_fail(&c, s->line, "input", "the model has [input] sections (line %d); give the shape there",
                       m->inputs[0].line);
    if (!r.classes && !m->no_classes) return at_fail(&c, s->line, NULL, "missing classes= (the number of classes)");
    m->classes = r.classes;
    m->normalize = r.normalize;
    if (!m->n_inputs) {
        m->inputs[0] = (ds_input_def){.name = "x", .line = s->line, .shape = r.input, .normalize = r.normalize};
        m->n_inputs = 1;
    }
    for (int k = 0; k < m->n_inputs; k++)
        if (m->inputs[k].normalize < 0) m->inputs[k].normalize = r.normalize;
    m->input = m->inputs[0].shape;
    return 0;
}

/* ---- [input] and [output] ---- */

typedef struct input_raw {
    ds_shape shape;
    int normalize;
} input_raw;

static const key_def input_keys[] = {
    {"name", NULL, V_SKIP, 0, 0, 0, NULL, 0},
    {"shape", NULL, V_DIMS, offsetof(input_raw, shape), 0, 0, NULL, 0},
    {"columns", NULL, V_SKIP, 0, 0, 0, NULL, 0},
    {"normalize", NULL, V_ENUM, offsetof(input_raw, normalize), 0, 0, "none|standard", 0},
    {"categories", NULL, V_SKIP, 0, 0, 0, NULL, 0},
};

static int valid_name(const char *s);

/* a section's name= (required for [input]); NULL-safe kv lookup */
static int section_name(const ctx *c, const ini_sec *s, const key_def *t, int n, char *dst, const char *dflt)
{
    const ini_kv *kv = find_kv(s, t, n, "name");
    if (!kv) {
        if (!dflt) return at_fail(c, s->line, NULL, "missing name= (what layers' from= and the data spec call it)");
        snprintf(dst, DS_LAYER_NAME_MAX, "%s", dflt);
        return 0;
    }
    if (strlen(kv->val) >= DS_LAYER_NAME_MAX || !valid_name(kv->val))
        return at_fail(c, kv->line, "name", "'%s' is not a name (a letter or _, then letters, digits, _ or -; at "
                                            "most %d characters)", kv->val, DS_LAYER_NAME_MAX - 1);
    if (!strcmp(kv->val, "input") || !strcmp(kv->val, "y") || !strcmp(kv->val, "loss") || !strcmp(kv->val, "label"))
        return at_fail(c, kv->line, "name", "'%s' is reserved (input, y, loss and label are)", kv->val);
    strcpy(dst, kv->val);
    return 0;
}

static int parse_input(ds_model *m, const ini_sec *s, const char *file)
{
    ctx c = {file, "[input]"};
    if (m->n_inputs == DS_MAX_INPUTS) return at_fail(&c, s->line, NULL, "more than %d inputs", DS_MAX_INPUTS);
    ds_input_def *in = &m->inputs[m->n_inputs];
    input_raw r = {{0}, -1};
    *in = (ds_input_def){.line = s->line};
    if (section_name(&c, s, input_keys, N_KEYS(input_keys), in->name, NULL)) return -1;
    snprintf(c.where, sizeof c.where, "[input] '%s'", in->name);
    for (int k = 0; k < m->n_inputs; k++)
        if (!strcmp(m->inputs[k].name, in->name))
            return at_fail(&c, s->line, "name", "a second input '%s' (the first is at line %d)", in->name,
                           m->inputs[k].line);
    if (set_keys(&c, s, input_keys, N_KEYS(input_keys), 0, &r)) return -1;
    in->normalize = r.normalize < 0 ? -1 : r.normalize;
    const ini_kv *cols = find_kv(s, input_keys, N_KEYS(input_keys), "columns");
    if (cols) {
        int count = 1;
        for (const char *q = cols->val; *q; q++) count += *q == ',';
        if (!*cols->val) return at_fail(&c, cols->line, "columns", "empty list");
        if (r.shape.ndim && (r.shape.ndim != 1 || r.shape.d[0] != count))
            return at_fail(&c, cols->line, "columns", "%d columns for shape=%d%s", count, r.shape.d[0],
                           r.shape.ndim == 1 ? "" : ",...");
        if (!r.shape.ndim) r.shape = ds_shape_of(1, count);
        if (!(in->columns = strdup(cols->val))) return ds_fail("out of memory");
    }
    const ini_kv *cats = find_kv(s, input_keys, N_KEYS(input_keys), "categories");
    if (cats) { /* a categorical column: its values in index order; the input is that index, not standardised */
        if (!cols || strchr(cols->val, ','))
            return at_fail(&c, cats->line, "categories", "a categorical input reads one column: give columns=NAME");
        if (r.normalize == 1)
            return at_fail(&c, cats->line, "categories", "a categorical input is an index; normalize=standard does not apply");
        int n = 1;
        for (const char *q = cats->val; *q; q++) n += *q == ',';
        char buf[4096], *p = buf, *tok, *seen[1024];
        if (n > 1024 || strlen(cats->val) >= sizeof buf) return at_fail(&c, cats->line, "categories", "list too long");
        strcpy(buf, cats->val);
        int k = 0;
        while ((tok = ini_next_item(&p))) {
            if (!*tok || strchr(tok, '|') || strchr(tok, ':'))
                return at_fail(&c, cats->line, "categories", "'%s' is not a category (empty, or with | or :)", tok);
            for (int j = 0; j < k; j++)
                if (!strcmp(seen[j], tok)) return at_fail(&c, cats->line, "categories", "'%s' is listed twice", tok);
            seen[k++] = tok;
        }
        if (k < 2) return at_fail(&c, cats->line, "categories", "needs two or more categories");
        if (!(in->categories = strdup(cats->val))) return ds_fail("out of memory");
        in->n_categories = k;
        r.normalize = 0;
    }
    in->normalize = r.normalize < 0 ? -1 : r.normalize;
    if (!r.shape.ndim)
        return at_fail(&c, s->line, NULL, "missing shape= (C,H,W for images, F for tables) or columns=");
    in->shape = r.shape;
    m->n_inputs++;
    return 0;
}

typedef struct output_raw {
    int loss;
    float weight;
} output_raw;

_Static_assert(DS_LOSS_SOFTMAX == 0 && DS_LOSS_BCE == 1 && DS_LOSS_MSE == 2 && DS_LOSS_HIER == 3, "loss order");
static const key_def output_keys[] = {
    {"name", NULL, V_SKIP, 0, 0, 0, NULL, 0},
    {"from", NULL, V_SKIP, 0, 0, 0, NULL, 0},
    {"loss", NULL, V_ENUM, offsetof(output_raw, loss), 0, 0, "softmax|binary|mse|hierarchical", 0},
    {"weight", NULL, V_FLOAT, offsetof(output_raw, weight), F_POS, 0, NULL, 0},
    {"target", NULL, V_SKIP, 0, 0, 0, NULL, 0},
};

/* layer names are resolved once all layers are known (resolve_output) */
static int parse_output(ds_model *m, const ini_sec *s, const char *file)
{
    ctx c = {file, "[output]"};
    if (m->n_outputs == DS_MAX_HEADS) return at_fail(&c, s->line, NULL, "more than %d outputs", DS_MAX_HEADS);
    ds_output_def *o = &m->outputs[m->n_outputs];
    output_raw r = {DS_LOSS_SOFTMAX, 1.0f};
    *o = (ds_output_def){.line = s->line, .from = -1};
    char dflt[DS_LAYER_NAME_MAX];
    snprintf(dflt, sizeof dflt, "output%d", m->n_outputs + 1);
    if (section_name(&c, s, output_keys, N_KEYS(output_keys), o->name, dflt)) return -1;
    snprintf(c.where, sizeof c.where, "[output] '%s'", o->name);
    for (int k = 0; k < m->n_outputs; k++)
        if (!strcmp(m->outputs[k].name, o->name))
            return at_fail(&c, s->line, "name", "a second output '%s' (the first is at line %d)", o->name,
                           m->outputs[k].line);
    if (set_keys(&c, s, output_keys, N_KEYS(output_keys), 0, &r)) return -1;
    o->loss = r.loss;
    o->weight = r.weight;
    const ini_kv *t = find_kv(s, output_keys, N_KEYS(output_keys), "target");
    snprintf(o->target, sizeof o->target, "%s", t ? t->val : "label");
    if (t && strcmp(t->val, "label") && (strlen(t->val) >= DS_LAYER_NAME_MAX || !valid_name(t->val)))
        return at_fail(&c, t->line, "target", "'%s' is not 'label' or a data field's name", t->val);
    if (!strcmp(o->target, "label") ? o->loss == DS_LOSS_BCE || o->loss == DS_LOSS_MSE
                                    : o->loss == DS_LOSS_SOFTMAX || o->loss == DS_LOSS_HIER)
        return at_fail(&c, t ? t->line : s->line, "target", "loss=%s compares with %s; target=%s",
                       o->loss == DS_LOSS_BCE ? "binary" : o->loss == DS_LOSS_MSE ? "mse"
                       : o->loss == DS_LOSS_SOFTMAX ? "softmax" : "hierarchical",
                       o->loss <= DS_LOSS_SOFTMAX || o->loss == DS_LOSS_HIER ? "the class labels (target=label)"
                                                                             : "a field of numbers (target=NAME)",
                       o->target);
    m->n_outputs++;
    return 0;
}

static int resolve_output(ds_model *m, int k, const ini_sec *s, const char *file)
{
    ds_output_def *o = &m->outputs[k];
    ctx c = {file, ""};
    snprintf(c.where, sizeof c.where, "[output] '%s'", o->name);
    const ini_kv *kv = find_kv(s, output_keys, N_KEYS(output_keys), "from");
    o->from = m->n_layers - 1;
    if (!kv) return 0;
    for (int j = 0; j < m->n_layers; j++)
        if (!strcmp(m->layers[j].name, kv->val)) return o->from = j, 0;
    return at_fail(&c, kv->line, "from", "unknown layer '%s'", kv->val);
}

/* Hinton's practical defaults: CD-1, rate 0.05, momentum 0.5, weight decay 2e-4, batch 100 */
static int parse_pretrain(ds_model *m, const ini_sec *s, const char *file)
{
    ctx c = {file, "[pretrain]"};
    m->pretrain = (ds_pretrain_cfg){.epochs = 10, .batch = 100, .k = 1, .lr = 0.05f, .momentum = 0.5f,
                                    .weight_decay = 2e-4f, .sparsity_target = 0.05f, .seed = 1};
    return s ? set_keys(&c, s, pretrain_keys, N_KEYS(pretrain_keys), 0, &m->pretrain) : 0;
}

/* Fail if `key` is set while `ok` is false. */
static int needs(const ctx *c, const ini_sec *s, const char *key, int ok, const char *why)
{
    const ini_kv *kv = find_kv(s, train_keys, N_KEYS(train_keys), key);
    return kv && !ok ? at_fail(c, kv->line, kv->key, "%s", why) : 0;
}

/* ---- parameter groups: [train] no_decay and [group] ---- */

/* no_decay = bias, norm (either, both, or none) */
static int parse_no_decay(ds_model *m, const ctx *c, const ini_sec *s)
{
    const ini_kv *kv = find_kv(s, train_keys, N_KEYS(train_keys), "no_decay");
    if (!kv) return 0;
    char buf[256], *p = buf, *tok;
    if (strlen(kv->val) >= sizeof buf) return at_fail(c, kv->line, kv->key, "list too long");
    strcpy(buf, kv->val);
    unsigned f = 0;
    while ((tok = ini_next_item(&p))) {
        if (!strcmp(tok, "bias")) f |= DS_NO_DECAY_BIAS;
        else if (!strcmp(tok, "norm")) f |= DS_NO_DECAY_NORM;
        else if (strcmp(tok, "none") || strcmp(kv->val, "none"))
            return at_fail(c, kv->line, kv->key, "unknown item '%s' (expected bias, norm, both as "
                           "\"bias, norm\", or none)", tok);
    }
    m->no_decay = f;
    return 0;
}

static int check_patterns(const ctx *c, const ini_kv *kv)
{
    char buf[1024], *p = buf, *tok;
    if (strlen(kv->val) >= sizeof buf) return at_fail(c, kv->line, kv->key, "list too long");
    strcpy(buf, kv->val);
    while ((tok = ini_next_item(&p)))
        if (!*tok)
            return at_fail(c, kv->line, kv->key, "'%s' has an empty item (expected layer names or "
                           "patterns, e.g. conv1, conv2 or *.bias)", kv->val);
    return 0;
}

/* [group]: params= and what it replaces of [train]. Its schedule= replaces
 * [train]'s schedule whole; schedule_unit defaults to [train]'s (settled in
 * ds_model_parse, as [train] may come later). Patterns are matched when the
 * optimizer is made, against the graph; messages then name this line. */
static int parse_group(ds_model *m, const ini_sec *s, const char *file)
{
    ctx c = {file, "[group]"};
    train_raw r = {.gamma = 0.1f, .unit = -1};
    if (set_keys(&c, s, group_keys, N_KEYS(group_keys), 0, &r)) return -1;
    const int nk = N_KEYS(group_keys);
    const ini_kv *params = find_kv(s, group_keys, nk, "params");
    if (!params)
        return at_fail(&c, s->line, NULL, "missing params= (the layers or parameters of the group, e.g. "
                                          "params=conv1, conv2 or params=*.bias)");
    if (check_patterns(&c, params)) return -1;
    const ini_kv *lr = find_kv(s, group_keys, nk, "lr"), *wd = find_kv(s, group_keys, nk, "weight_decay");
    const ini_kv *sched = find_kv(s, group_keys, nk, "schedule");
    static const char *const sched_keys[] = {"step_size", "gamma", "t_max", "eta_min", "warmup",
                                             "warmup_start", "schedule_unit"};
    for (size_t i = 0; i < sizeof sched_keys / sizeof *sched_keys; i++) {
        const ini_kv *kv = find_kv(s, group_keys, nk, sched_keys[i]);
        if (kv && !sched)
            return at_fail(&c, kv->line, kv->key, "needs schedule= in this [group] (a group's schedule "
                                                  "replaces [train]'s whole)");
    }
    const ini_kv *first = lr ? lr : wd ? wd : sched;
    if (r.freeze && first)
        return at_fail(&c, first->line, first->key, "does not apply to a frozen group (freeze=1: never updated)");
    int step = r.schedule == DS_SCHED_STEP, cos = r.schedule == DS_SCHED_COSINE;
    if (needs(&c, s, "step_size", step, "applies to schedule=step") ||
        needs(&c, s, "gamma", step, "applies to schedule=step") ||
        needs(&c, s, "t_max", cos, "applies to schedule=cosine") ||
        needs(&c, s, "eta_min", cos, "applies to schedule=cosine") ||
        needs(&c, s, "schedule_unit", step || cos, "applies to schedule=step or cosine") ||
        needs(&c, s, "warmup_start", r.warmup > 0, "needs warmup > 0 (steps)"))
        return -1;
    if (step && !r.step_size)
        return at_fail(&c, s->line, NULL, "schedule=step needs step_size= (in schedule_unit)");

    if (m->n_groups % 8 == 0) {
        ds_param_group *g = realloc(m->groups, (size_t)(m->n_groups + 8) * sizeof *g);
        char **t = g ? realloc(m->group_strs, (size_t)(m->n_groups + 8) * 2 * sizeof *t) : NULL;
        if (g) m->groups = g;
        if (t) m->group_strs = t;
        if (!g || !t) return ds_fail("out of memory");
    }
    char **str = &m->group_strs[2 * m->n_groups];
    size_t size = strlen(file) + 32;
    str[0] = strdup(params->val);
    if ((str[1] = malloc(size))) snprintf(str[1], size, "%s:%d: [group]", file, s->line);
    m->n_groups++; /* from here on ds_model_free owns the strings */
    if (!str[0] || !str[1]) return ds_fail("out of memory");
    m->groups[m->n_groups - 1] = (ds_param_group){
        .params = str[0],
        .set = (lr ? DS_PG_LR : 0) | (wd ? DS_PG_WD : 0) | (sched ? DS_PG_SCHED : 0),
        .lr = r.lr,
        .weight_decay = r.weight_decay,
        .schedule = {.kind = (ds_sched_kind)r.schedule, .step_size = r.step_size, .gamma = r.gamma,
                     .t_max = r.t_max, .eta_min = r.eta_min, .warmup_steps = r.warmup,
                     .warmup_start = r.warmup_start},
        .schedule_in_epochs = r.unit, /* −1: [train]'s, settled later */
        .frozen = r.freeze,
        .name = str[1],
    };
    return 0;
}

int ds_model_param_groups(const ds_model *m, const ds_param_group **groups)
{
    if (groups) *groups = m ? m->groups : NULL;
    return m ? m->n_groups : 0;
}

unsigned ds_model_no_decay(const ds_model *m) { return m ? m->no_decay : 0; }

static int parse_train(ds_model *m, const ini_sec *s, const char *file)
{
    ctx c = {file, "[train]"};
    train_raw r = {.optimizer = DS_ADAM, .lr = 1e-3f, .batch = 64, .epochs = 5, .seed = 1,
                   .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .alpha = 0.99f, .gamma = 0.1f,
                   .adv_steps = 10, .adv_random_start = 1, .adv_alpha = -1};
    if (s && set_keys(&c, s, train_keys, N_KEYS(train_keys), 0, &r)) return -1;
    if (s) {
        int sgd = r.optimizer == DS_SGD, adam = r.optimizer == DS_ADAM || r.optimizer == DS_ADAMW;
        int rms = r.optimizer == DS_RMSPROP, step = r.schedule == DS_SCHED_STEP;
        int cos = r.schedule == DS_SCHED_COSINE;
        if (needs(&c, s, "momentum", sgd || rms, "applies to optimizer=sgd or rmsprop") ||
            needs(&c, s, "nesterov", !r.nesterov || (sgd && r.momentum > 0),
                  "nesterov=1 needs optimizer=sgd and momentum > 0") ||
            needs(&c, s, "beta1", adam, "applies to optimizer=adam or adamw") ||
            needs(&c, s, "beta2", adam, "applies to optimizer=adam or adamw") ||
            needs(&c, s, "alpha", rms, "applies to optimizer=rmsprop") ||
            needs(&c, s, "step_size", step, "applies to schedule=step") ||
            needs(&c, s, "gamma", step, "applies to schedule=step") ||
            needs(&c, s, "t_max", cos, "applies to schedule=cosine") ||
            needs(&c, s, "eta_min", cos, "applies to schedule=cosine") ||
            needs(&c, s, "schedule_unit", step || cos, "applies to schedule=step or cosine") ||
            needs(&c, s, "warmup_start", r.warmup > 0, "needs warmup > 0 (steps)") ||
            needs(&c, s, "adversarial_eps", r.adversarial, "applies to adversarial=fgsm or pgd") ||
            needs(&c, s, "adversarial_alpha", r.adversarial, "applies to adversarial=fgsm or pgd") ||
            needs(&c, s, "adversarial_norm", r.adversarial, "applies to adversarial=fgsm or pgd") ||
            needs(&c, s, "adversarial_clip", r.adversarial, "applies to adversarial=fgsm or pgd") ||
            needs(&c, s, "adversarial_steps", r.adversarial == 2, "applies to adversarial=pgd") ||
            needs(&c, s, "adversarial_step_size", r.adversarial == 2, "applies to adversarial=pgd") ||
            needs(&c, s, "adversarial_random_start", r.adversarial == 2, "applies to adversarial=pgd"))
            return -1;
        if (r.adversarial && !find_kv(s, train_keys, N_KEYS(train_keys), "adversarial_eps"))
            return at_fail(&c, s->line, NULL, "adversarial=%s needs adversarial_eps= (in the data's own units)",
                           r.adversarial == 1 ? "fgsm" : "pgd");
        if (step && !r.step_size)
            return at_fail(&c, s->line, NULL, "schedule=step needs step_size= (in schedule_unit)");
    }
    ds_train_cfg *t = &m->train;
    t->optim = (ds_optim_cfg){.kind = (ds_optim_kind)r.optimizer, .lr = r.lr,
                              .momentum = r.momentum, .weight_decay = r.weight_decay,
                              .nesterov = r.nesterov, .beta1 = r.beta1, .beta2 = r.beta2,
                              .eps = r.eps, .alpha = r.alpha, .clip_norm = r.clip_norm};
    t->optim.schedule = (ds_schedule){.kind = (ds_sched_kind)r.schedule, .step_size = r.step_size,
                                      .gamma = r.gamma, .t_max = r.t_max, .eta_min = r.eta_min,
                                      .warmup_steps = r.warmup, .warmup_start = r.warmup_start};
    t->batch = r.batch;
    t->epochs = r.epochs;
    t->seed = r.seed;
    t->schedule_in_epochs = r.unit == 0;
    t->augment = r.augment == 0 ? DS_AUG_NONE : r.augment == 1 ? DS_AUG_FLIP : DS_AUG_FLIP | DS_AUG_ROT90;
    t->balanced = r.sampler == 1;
    t->sync_bn = r.sync_bn;
    t->ordered_allreduce = r.allreduce == 1;
    t->micro_batches = r.micro_batches > 1 ? r.micro_batches : 1;
    t->monitor = r.monitor;
    t->patience = r.patience;
    t->adversarial = r.adversarial;
    if (r.adversarial) {
        /* Goodfellow et al. mix clean and FGSM losses half and half; Madry
         * et al. train on PGD examples alone */
        t->adv_alpha = r.adv_alpha >= 0 ? r.adv_alpha : r.adversarial == 1 ? 0.5f : 0.0f;
        t->adv = (ds_attack_cfg){.method = r.adversarial == 1 ? DS_ATTACK_FGSM : DS_ATTACK_PGD, .l2 = r.adv_norm == 1,
                                 .eps = r.adv_eps, .steps = r.adv_steps, .step_size = r.adv_step_size,
                                 .random_start = r.adv_random_start, .restarts = 1};
        const ini_kv *ck = find_kv(s, train_keys, N_KEYS(train_keys), "adversarial_clip");
        t->adv_clip_auto = !ck || !strcmp(ck->val, "auto");
        if (ck && strcmp(ck->val, "auto") && strcmp(ck->val, "none")) {
            if (ds_parse_range(ck->val, &t->adv.lo, &t->adv.hi) != 0)
                return at_fail(&c, ck->line, "adversarial_clip", "'%s' is not auto, none or LO,HI with LO < HI", ck->val);
            t->adv.clip = 1;
        }
    }
    const ini_kv *cw = s ? find_kv(s, train_keys, N_KEYS(train_keys), "class_weight") : NULL;
    if (cw && !strcmp(cw->val, "auto")) {
        t->class_weight_auto = 1;
    } else if (cw) { /* w0,w1,...: one weight per class, > 0 */
        int n = 1;
        for (const char *q = cw->val; *q; q++) n += *q == ',';
        if (!(m->class_weight = malloc((size_t)n * sizeof *m->class_weight))) return ds_fail("out of memory");
        char buf[4096], *p = buf, *tok;
        if (strlen(cw->val) >= sizeof buf) return at_fail(&c, cw->line, "class_weight", "list too long");
        strcpy(buf, cw->val);
        int k = 0;
        while ((tok = ini_next_item(&p))) {
            char *end;
            errno = 0;
            float v = strtof(tok, &end);
            if (end == tok || *end || errno || !(v > 0) || !isfinite(v))
                return at_fail(&c, cw->line, "class_weight", "'%s' is not a weight > 0 (give auto or w0,w1,...)", tok);
            m->class_weight[k++] = v;
        }
        t->class_weight = m->class_weight;
        t->n_class_weight = k;
    }
    return s ? parse_no_decay(m, &c, s) : 0;
}

/* ---- layers ---- */

static int kind_of(const char *section)
{
    for (int i = 0; i < N_SECTION_KINDS; i++)
        if (!strcmp(section_kinds[i].name, section)) return section_kinds[i].kind;
    return -1;
}

static int valid_name(const char *s)
{
    if (!isalpha((unsigned char)s[0]) && s[0] != '_') return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-') return 0;
    return 1;
}

/* Name (explicit or "<type><k>", k counting layers of that type from 1). */
static int layer_name(ds_model *m, ds_layer *L, const ini_sec *s, const char *file)
{
    ctx c = {file, ""};
    snprintf(c.where, sizeof c.where, "[%s]", s->name);
    const ini_kv *kv = find_kv(s, layer_keys, N_KEYS(layer_keys), "name");
    if (!kv) {
        int k = 1;
        for (int i = 0; i < m->n_layers; i++) k += m->layers[i].kind == L->kind;
        snprintf(L->name, sizeof L->name, "%s%d", ds_layer_kind_name(L->kind), k);
        return 0;
    }
    if (strlen(kv->val) >= sizeof L->name || !valid_name(kv->val))
        return at_fail(&c, kv->line, "name", "'%s' is not a layer name (a letter or _, then letters, "
                                             "digits, _ or -; at most %d characters)",
                       kv->val, DS_LAYER_NAME_MAX - 1);
    for (size_t i = 0; i < sizeof reserved_names / sizeof *reserved_names; i++)
        if (!strcmp(kv->val, reserved_names[i]))
            return at_fail(&c, kv->line, "name", "'%s' is reserved (input, x, y and loss are)", kv->val);
    strcpy(L->name, kv->val);
    return 0;
}

/* Defaults that depend on other keys, and checks across keys. */
static int layer_finish(const ctx *c, ds_layer *L, const ini_sec *s)
{
    const int nk = N_KEYS(layer_keys);
    static const char *const required[L_COUNT][2] = {
        [L_CONV] = {"filters", "the number of output channels"},
        [L_DECONV] = {"filters", "the number of output channels"},
        [L_DENSE] = {"units", "the number of outputs"},
        [L_ACT] = {"activation", ACT_CHOICES},
        [L_RESHAPE] = {"shape", "the per-sample shape, e.g. 16,7,7"},
        [L_RBM] = {"units", "the number of hidden units"},
        [L_EMBED] = {"units", "the length of each category's vector"}};
    if (required[L->kind][0] && !find_kv(s, layer_keys, nk, required[L->kind][0]))
        return at_fail(c, s->line, NULL, "missing %s= (%s)", required[L->kind][0], required[L->kind][1]);
    if ((L->kind == L_CONV || L->kind == L_DECONV) && !find_kv(s, layer_keys, nk, "size"))
        return at_fail(c, s->line, NULL, "missing size= (the kernel size)");
    if (L->stride < 0) L->stride = L->kind == L_MAXPOOL || L->kind == L_AVGPOOL ? L->size : 1;
    if (L->bias < 0) L->bias = !L->bn;
    L->init = (int)init_kinds[L->init];
    if (L->same && L->size % 2 == 0) {
        const ini_kv *kv = find_kv(s, layer_keys, nk, "pad");
        return at_fail(c, kv->line, kv->key, "padding=same needs an odd size (size=%d)", L->size);
    }
    if (L->same) L->pad = L->dilation * (L->size - 1) / 2;
    if (L->out % L->groups) {
        const ini_kv *g = find_kv(s, layer_keys, nk, "groups");
        return at_fail(c, g->line, g->key, "%d must divide filters=%d", L->groups, L->out);
    }
    const ini_kv *kv = find_kv(s, layer_keys, nk, "alpha");
    if (kv && L->act != A_LEAKY && L->act != A_LEAKY_RELU && L->act != A_ELU)
        return at_fail(c, kv->line, kv->key, "applies to activation=leaky, leaky_relu or elu");
    if (!kv) L->alpha = L->act == A_LEAKY ? 0.1f : L->act == A_LEAKY_RELU ? 0.01f : 1.0f;
    return 0;
}

/* from=: "input", an [input]'s name (stored as −1 − k), a name of an earlier layer, or −k (k layers back). */
#define NOT_FOUND (-1 - DS_MAX_INPUTS)
static int resolve_from(ds_model *m, int i, const ini_sec *s, const char *file)
{
    ds_layer *L = &m->layers[i];
    ctx c = {file, ""};
    snprintf(c.where, sizeof c.where, "[%s] '%s'", s->name, L->name);
    const ini_kv *kv = find_kv(s, layer_keys, N_KEYS(layer_keys), "from");
    int cap = 2 + (kv ? (int)strlen(kv->val) : 0);
    if (!(L->from = malloc((size_t)cap * sizeof *L->from))) return ds_fail("out of memory");
    if (!kv && L->kind == L_ADD)
        return at_fail(&c, s->line, NULL, "missing from= (the layers to add, e.g. from=a,b; "
                                          "from=a alone adds the previous layer and a)");
    if (!kv) {
        L->from[L->n_from++] = i - 1;
    } else {
        if (L->kind == L_ADD) L->from[L->n_from++] = i - 1; /* dropped below if 2+ are listed */
        char buf[1024], *p = buf, *tok;
        if (strlen(kv->val) >= sizeof buf) return at_fail(&c, kv->line, "from", "list too long");
        strcpy(buf, kv->val);
        while ((tok = ini_next_item(&p))) {
            long rel;
            int idx = NOT_FOUND;
            if (!strcmp(tok, "input")) idx = -1;
            for (int k = 0; k < m->n_inputs && idx == NOT_FOUND; k++)
                if (!strcmp(tok, m->inputs[k].name)) idx = -1 - k;
            if (idx != NOT_FOUND) {
            } else if (!parse_long(tok, &rel)) {
                if (rel >= 0 || i + rel < -1 || (i + rel == -1 && m->n_inputs > 1))
                    return at_fail(&c, kv->line, "from", "%s: numbers count back from this layer "
                                   "(-1 is the previous one, -%d reaches the input)", tok, i + 1);
                idx = i + (int)rel;
            } else {
                for (int j = 0; j < m->n_layers; j++)
                    if (!strcmp(m->layers[j].name, tok)) idx = j;
                if (idx == i)
                    return at_fail(&c, kv->line, "from", "'%s' is this layer; from= names earlier layers", tok);
                if (idx > i)
                    return at_fail(&c, kv->line, "from", "layer '%s' comes later (line %d); from= "
                                   "names earlier layers", tok, m->layers[idx].line);
                if (idx == NOT_FOUND)
                    return at_fail(&c, kv->line, "from", "unknown layer '%s' (not 'input', an [input]'s name "
                                   "or the name of an earlier layer)", tok);
            }
            L->from[L->n_from++] = idx;
        }
        if (L->kind == L_ADD && L->n_from > 2) memmove(L->from, L->from + 1, (size_t)--L->n_from * sizeof *L->from);
    }
    if (L->kind == L_CONCAT && L->n_from < 2)
        return at_fail(&c, kv ? kv->line : s->line, "from", "concat needs two or more layers, e.g. from=a,b");
    if (L->kind != L_CONCAT && L->kind != L_ADD && L->n_from != 1)
        return at_fail(&c, kv->line, "from", "[%s] takes one input; %d are listed", s->name, L->n_from);
    if (L->n_from > m->max_from) m->max_from = L->n_from;
    return 0;
}

static int parse_layer(ds_model *m, const ini_sec *s, int kind, const char *file)
{
    if (m->n_layers % 16 == 0) {
        ds_layer *p = realloc(m->layers, (size_t)(m->n_layers + 16) * sizeof *p);
        if (!p) return ds_fail("out of memory");
        m->layers = p;
    }
    ds_layer *L = &m->layers[m->n_layers];
    *L = (ds_layer){.kind = kind, .line = s->line, .size = 2, .stride = -1, .dilation = 1,
                    .groups = 1, .bias = -1, .init = 0, .p = 0.5f};
    if (layer_name(m, L, s, file)) return -1;
    m->n_layers++; /* from here on ds_model_free owns it */
    ctx c = {file, ""};
    snprintf(c.where, sizeof c.where, "[%s] '%s'", s->name, L->name);
    if (set_keys(&c, s, layer_keys, N_KEYS(layer_keys), KB(kind), L) || layer_finish(&c, L, s))
        return -1;
    for (int j = 0; j < m->n_layers - 1; j++)
        if (!strcmp(m->layers[j].name, L->name))
            return at_fail(&c, s->line, NULL, "duplicate layer name (the %s at line %d has it%s)",
                           ds_layer_kind_name(m->layers[j].kind), m->layers[j].line,
                           find_kv(s, layer_keys, N_KEYS(layer_keys), "name")
                               ? "" : "; this is the default name, so give one with name=");
    return 0;
}

/* ---- the model ---- */

ds_model *ds_model_parse(const char *text, const char *name) { return ds_model_parse_part(text, name, 0); }

ds_model *ds_model_parse_part(const char *text, const char *name, int no_classes)
{
    const char *file = name ? name : "model";
    ini p;
    if (!text) {
        ds_fail("%s: no model text", file);
        return NULL;
    }
    if (ini_parse(text, file, &p)) return NULL;
    ds_model *m = calloc(1, sizeof *m);
    if (!m || !(m->text = strdup(text)) || !(m->file = strdup(file))) {
        ds_fail("out of memory");
        goto fail;
    }
    m->no_classes = no_classes;
    const ini_sec *net = NULL, *train = NULL, *pre = NULL, *tree = NULL;
    for (int i = 0; i < p.n_sec; i++) {
        const ini_sec *s = &p.sec[i];
        ctx c = {file, ""};
        snprintf(c.where, sizeof c.where, "[%s]", s->name);
        int kind = kind_of(s->name);
        if (!strcmp(s->name, "net") || !strcmp(s->name, "train") || !strcmp(s->name, "pretrain")) {
            const ini_sec **slot = s->name[0] == 'n' ? &net : s->name[0] == 't' ? &train : &pre;
            if (*slot) {
                at_fail(&c, s->line, NULL, "second [%s] section (the first is at line %d)", s->name,
                        (*slot)->line);
                goto fail;
            }
            *slot = s;
            /* [net] last: it needs to know whether there are [input] sections */
            if (s != net && (s == train ? parse_train(m, s, file) : parse_pretrain(m, s, file))) goto fail;
        } else if (!strcmp(s->name, "input")) {
            if (parse_input(m, s, file)) goto fail;
        } else if (!strcmp(s->name, "output")) {
            if (parse_output(m, s, file)) goto fail;
        } else if (!strcmp(s->name, "tree")) { /* read once [net] has given classes= */
            if (tree) {
                at_fail(&c, s->line, NULL, "second [tree] section (the first is at line %d)", tree->line);
                goto fail;
            }
            tree = s;
        } else if (!strcmp(s->name, "group")) {
            if (parse_group(m, s, file)) goto fail;
        } else if (!strcmp(s->name, "softmax")) {
            at_fail(&c, s->line, NULL, "not a layer: the loss applies softmax to the last layer's "
                                       "outputs (the logits); remove this section");
            goto fail;
        } else if (kind < 0 && (!strcmp(s->name, "gan") || !strcmp(s->name, "generator") ||
                                !strcmp(s->name, "discriminator"))) {
            at_fail(&c, s->line, NULL, "this is a GAN model file: train it with `deepsky gan` (docs/gan.md)");
            goto fail;
        } else if (kind < 0) {
            char names[512];
            size_t k = snprintf(names, sizeof names, "net, input, output, tree, train, pretrain, group");
            for (int j = 0; j < N_SECTION_KINDS && k < sizeof names; j++)
                k += (size_t)snprintf(names + k, sizeof names - k, ", %s", section_kinds[j].name);
            at_fail(&c, s->line, NULL, "unknown section (valid sections: %s)", names);
            goto fail;
        } else if (parse_layer(m, s, kind, file)) {
            goto fail;
        }
    }
    if (!net) {
        ds_fail("%s:1: no [net] section (it gives input= and classes=)", file);
        goto fail;
    }
    if (parse_net(m, net, file)) goto fail;
    if (!train && parse_train(m, NULL, file)) goto fail;
    if (!pre) parse_pretrain(m, NULL, file);
    if (tree && ds_tree_from_ini(tree, m->classes, file, &m->tree)) goto fail;
    for (int i = 0; i < m->n_groups; i++) /* schedule_unit epoch is 0 */
        m->groups[i].schedule_in_epochs = m->groups[i].schedule_in_epochs < 0 ? m->train.schedule_in_epochs
                                                                              : m->groups[i].schedule_in_epochs == 0;
    if (!m->n_layers) {
        ds_fail("%s:%d: [net]: the model has no layer sections", file, net->line);
        goto fail;
    }
    for (int i = 0, k = 0; i < p.n_sec; i++)
        if (kind_of(p.sec[i].name) >= 0 && resolve_from(m, k++, &p.sec[i], file)) goto fail;
    for (int i = 0, k = 0; i < p.n_sec; i++)
        if (!strcmp(p.sec[i].name, "output") && resolve_output(m, k++, &p.sec[i], file)) goto fail;
    for (int i = 0; i < m->n_layers; i++) /* an input's name is not also a layer's */
        for (int k = 0; k < m->n_inputs; k++)
            if (!strcmp(m->layers[i].name, m->inputs[k].name)) {
                ds_fail("%s:%d: layer '%s' has the name of the [input] at line %d", file, m->layers[i].line,
                        m->layers[i].name, m->inputs[k].line);
                goto fail;
            }
    ini_free(&p);
    return m;
fail:
    ini_free(&p);
    ds_model_free(m);
    return NULL;
}

char *ds_model_read_text(const char *path)
{
    if (!path) {
        ds_fail("ds_model_load: path is NULL");
        return NULL;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        ds_fail("%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    enum { LIMIT = 16 << 20 };
    size_t n = 0, cap = 4096;
    char *buf = malloc(cap + 1);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap || cap >= LIMIT) break;
        char *p = realloc(buf, 2 * cap + 1);
        if (!p) free(buf);
        buf = p, cap *= 2;
    }
    int err = ferror(f);
    fclose(f);
    const char *bad = !buf ? "out of memory" : err ? "read error" : n >= LIMIT ? "larger than 16 MiB; not a model file"
                      : memchr(buf, 0, n) ? "contains a NUL byte; not a model file" : NULL;
    if (bad) {
        free(buf);
        ds_fail("%s: %s", path, bad);
        return NULL;
    }
    buf[n] = 0;
    return buf;
}

ds_model *ds_model_load(const char *path)
{
    char *text = ds_model_read_text(path);
    ds_model *m = text ? ds_model_parse(text, path) : NULL;
    free(text);
    return m;
}

void ds_model_free(ds_model *m)
{
    if (!m) return;
    for (int i = 0; i < m->n_layers; i++) free(m->layers[i].from);
    for (int k = 0; k < m->n_inputs; k++) free(m->inputs[k].columns), free(m->inputs[k].categories);
    free(m->class_weight);
    for (int i = 0; i < 2 * m->n_groups; i++) free(m->group_strs[i]);
    free(m->groups);
    free(m->group_strs);
    free(m->layers);
    ds_class_tree_free(m->tree);
    free(m->text);
    free(m->file);
    free(m);
}
