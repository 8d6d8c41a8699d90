/* best.c — the "best" checkpoint metadata: which epoch best.safetensors
 * holds and which split chose it, so that nothing calls a training-set
 * number a validation one (docs/design.md, "Which checkpoint is best"). */
#include "internal.h"
#include "json.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

int ds_best_json(const ds_best *b, char *buf, size_t size)
{
    if (strcmp(b->split, "validation") && strcmp(b->split, "none"))
        return ds_fail("best: split must be \"validation\" or \"none\", got \"%s\"", b->split);
    int k = snprintf(buf, size, "{\"split\": \"%s\", \"epoch\": %d, \"metric\": \"%s\", \"value\": %.9g}",
                     b->split, b->epoch, b->metric[0] ? b->metric : "accuracy", isfinite(b->value) ? b->value : 0.0);
    return k > 0 && (size_t)k < size ? 0 : ds_fail("best: buffer too small");
}

int ds_best_parse(const char *json, ds_best *out)
{
    memset(out, 0, sizeof *out);
    char err[128];
    ds_json *j = json ? ds_json_parse(json, strlen(json), err, sizeof err) : NULL;
    if (!j) return ds_fail("checkpoint metadata 'best': bad JSON (%s)", json ? err : "absent");
    const ds_json *split = ds_json_get(j, "split");
    int64_t epoch;
    int rc = 0;
    if (!split || split->type != DS_JSON_STR || split->len >= sizeof out->split ||
        (strcmp(split->str, "validation") && strcmp(split->str, "none")) ||
        ds_json_i64(ds_json_get(j, "epoch"), &epoch) || epoch < 0 || epoch > 1 << 30 ||
        ds_json_double(ds_json_get(j, "value"), &out->value))
        rc = ds_fail("checkpoint metadata 'best': expected {\"split\": \"validation\"|\"none\", \"epoch\": E, "
                     "\"value\": V}");
    else
        memcpy(out->split, split->str, split->len + 1), out->epoch = (int)epoch;
    const ds_json *metric = ds_json_get(j, "metric");
    if (!rc && metric && metric->type == DS_JSON_STR && metric->len < sizeof out->metric &&
        (!strcmp(metric->str, "accuracy") || !strcmp(metric->str, "log_loss") || !strcmp(metric->str, "auc") ||
         !strcmp(metric->str, "mdr_at_fpr1")))
        memcpy(out->metric, metric->str, metric->len + 1);
    ds_json_free(j);
    return rc;
}

void ds_best_describe(const ds_best *b, char *buf, size_t size)
{
    if (!strcmp(b->split, "validation"))
        snprintf(buf, size, "epoch %d, validation %s %.4f", b->epoch, b->metric[0] ? b->metric : "accuracy", b->value);
    else
        snprintf(buf, size, "the last epoch (%d; no validation data to choose on, training accuracy %.4f)", b->epoch,
                 b->value);
}
