/* test_classes.c — the class vocabulary (issue 12 item 1): names kept in a
 * checkpoint and read back, and labels renumbered by name through them. */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

static int err_has(const char *a, const char *b)
{
    const char *e = ds_last_error();
    int ok = strstr(e, a) && (!b || strstr(e, b));
    if (!ok) fprintf(stderr, "  error \"%s\" lacks \"%s\" or \"%s\"\n", e, a, b ? b : "");
    return ok;
}

/* A dataset of n samples (1 feature) with labels y and, if names, class names. */
static ds_dataset make(int n, const float *y, int classes, const char *const *names)
{
    ds_dataset d = {.n = n, .sample = ds_shape_of(1, 1), .classes = classes};
    d.x = calloc((size_t)n, sizeof *d.x);
    d.y = malloc((size_t)n * sizeof *d.y);
    memcpy(d.y, y, (size_t)n * sizeof *d.y);
    if (names) {
        d.class_names = calloc((size_t)classes, sizeof *d.class_names);
        for (int c = 0; c < classes; c++) d.class_names[c] = strdup(names[c]);
    }
    return d;
}

static void test_map(void)
{
    const char *const vocab[3] = {"class_0", "class_1", "class_2"};
    /* a file without class_0 numbers its own classes 0 and 1; through the vocabulary they are 1 and 2 */
    const char *const own[2] = {"class_1", "class_2"};
    float y[4] = {0, 1, 1, 0};
    ds_dataset d = make(4, y, 2, own);
    CHECK(ds_dataset_map_classes(&d, vocab, 3, "test.csv") == 0);
    CHECK(d.y[0] == 1 && d.y[1] == 2 && d.y[2] == 2 && d.y[3] == 1);
    CHECK(d.classes == 3 && d.class_names && !strcmp(d.class_names[0], "class_0") &&
          !strcmp(d.class_names[2], "class_2"));
    ds_dataset_free(&d);
    /* an unknown name is an error naming the file, the sample and the classes; the data is unchanged */
    const char *const odd[2] = {"class_1", "class_9"};
    float y2[3] = {0, 0, 1};
    d = make(3, y2, 2, odd);
    CHECK(ds_dataset_map_classes(&d, vocab, 3, "odd.csv") == -1 &&
          err_has("odd.csv: sample 2 (from 0) has label 'class_9'", "class_0, class_1, class_2"));
    CHECK(d.y[2] == 1 && d.classes == 2 && !strcmp(d.class_names[1], "class_9"));
    ds_dataset_free(&d);
    /* numeric labels are indices into the vocabulary; they get its names */
    float y3[2] = {0, 2};
    d = make(2, y3, 3, NULL);
    CHECK(ds_dataset_map_classes(&d, vocab, 3, "n.npy") == 0 && d.y[1] == 2 && d.classes == 3 && d.class_names &&
          !strcmp(d.class_names[1], "class_1"));
    ds_dataset_free(&d);
    float y4[2] = {0, 3};
    d = make(2, y4, 4, NULL);
    CHECK(ds_dataset_map_classes(&d, vocab, 3, "n.npy") == -1 &&
          err_has("n.npy: sample 1 (from 0) has label 3", "classes are 0 to 2"));
    ds_dataset_free(&d);
    /* no vocabulary (numeric training labels, an old checkpoint), or no labels: nothing changes */
    d = make(4, y, 2, own);
    CHECK(ds_dataset_map_classes(&d, NULL, 0, "x") == 0 && d.y[1] == 1 && !strcmp(d.class_names[0], "class_1"));
    ds_dataset_free(&d);
    float z[2] = {0, 0};
    d = make(2, z, 0, NULL);
    CHECK(ds_dataset_map_classes(&d, vocab, 3, "x") == 0 && d.classes == 0 && !d.class_names);
    ds_dataset_free(&d);
}

static void test_checkpoint(void)
{
    ds_graph *g = ds_graph_new(1);
    ds_param(g, "w", ds_shape_of(1, 2), (ds_init){DS_INIT_ONES, 0, 0});
    CHECK(ds_graph_compile(g) == 0);
    const char *p = ds_test_path("c.safetensors");
    /* names with a quote, a backslash and UTF-8 go through JSON and back */
    const char *const names[3] = {"bogus", "re\"al\\", "\xc3\xa9toile"};
    char *json = ds_class_names_json(names, 3);
    CHECK(json && !strcmp(json, "[\"bogus\", \"re\\\"al\\\\\", \"\xc3\xa9toile\"]"));
    ds_meta_kv kv[1] = {{"classes", json}};
    CHECK(ds_checkpoint_save_ex(p, g, NULL, NULL, NULL, NULL, kv, 1) == 0);
    free(json);
    ds_checkpoint *c = ds_checkpoint_open(p);
    char **got;
    int n;
    CHECK(c && ds_checkpoint_classes(c, &got, &n) == 0 && n == 3);
    for (int i = 0; i < n && got; i++) CHECK(!strcmp(got[i], names[i]));
    ds_class_names_free(got, n);
    ds_checkpoint_close(c);
    /* without the key (old checkpoints): no names, no error */
    CHECK(ds_checkpoint_save(p, g, NULL, NULL, NULL, NULL) == 0);
    c = ds_checkpoint_open(p);
    CHECK(c && ds_checkpoint_classes(c, &got, &n) == 0 && !got && n == 0);
    ds_checkpoint_close(c);
    /* malformed values are errors */
    const char *bad[] = {"{}", "[]", "[\"a\", 1]", "[\"a\", \"a\"]", "[\"\"]", "[\"a\""};
    const char *why[] = {"not a JSON array", "not a JSON array", "entry 1", "twice", "entry 0", "not a JSON array"};
    for (int i = 0; i < 6; i++) {
        ds_meta_kv b[1] = {{"classes", bad[i]}};
        CHECK(ds_checkpoint_save_ex(p, g, NULL, NULL, NULL, NULL, b, 1) == 0);
        c = ds_checkpoint_open(p);
        got = (char **)1;
        CHECK(c && ds_checkpoint_classes(c, &got, &n) == -1 && !got && n == 0 && err_has("'classes'", why[i]));
        ds_checkpoint_close(c);
    }
    ds_graph_free(g);
}

int main(void)
{
    test_map();
    test_checkpoint();
    return ds_test_summary("classes");
}
