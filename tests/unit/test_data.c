/* test_data.c — data specs and loaders (NPY, CSV, image folders, FITS, IDX
 * by spec), their error messages, the finite check, the validation split and
 * normalisation. Writes its own files to a temp dir. */
#include "harness.h"
#include "bounded.h"

#include <fitsio.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include <stb_image_write.h>
#pragma GCC diagnostic pop

static const char *tmp; /* ds_test_tmpdir() */

/* tmp/name; a static ring of buffers so a few can be alive at once. */
static const char *P(const char *name)
{
    static char buf[8][512];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, sizeof buf[0], "%s/%s", tmp, name);
    return p;
}

static void write_bytes(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    fwrite(data, 1, len, f);
    fclose(f);
}

static void write_text(const char *path, const char *text) { write_bytes(path, text, strlen(text)); }

/* The last error contains a and b. */
static int err_has(const char *a, const char *b)
{
    const char *e = ds_last_error();
    int ok = strstr(e, a) && strstr(e, b);
    if (!ok) fprintf(stderr, "  error \"%s\" lacks \"%s\" or \"%s\"\n", e, a, b);
    return ok;
}

/* ds_data_load(spec) fails, leaves out zeroed, and names a and b. */
static void load_fails(const char *spec, const char *a, const char *b)
{
    ds_dataset d;
    memset(&d, 0xff, sizeof d);
    CHECK(ds_data_load(spec, &d) == -1);
    CHECK(d.n == 0 && !d.x && !d.y && !d.class_names && d.classes == 0);
    CHECK(err_has(a, b));
}

static int same_shape(ds_shape s, int ndim, int d0, int d1, int d2)
{
    int d[3] = {d0, d1, d2}, ok = s.ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = s.d[i] == d[i];
    return ok;
}

/* An NPY file by hand: version major, dtype descr, fortran_order, shape text,
 * then len data bytes. */
static void npy_by_hand(const char *path, int major, const char *descr, const char *fortran,
                        const char *shape, const void *data, size_t len)
{
    unsigned char buf[512];
    int pre = major == 1 ? 10 : 12;
    char *h = (char *)buf + pre;
    int n = sprintf(h, "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }", descr, fortran,
                    shape);
    while ((pre + n + 1) % 64) h[n++] = ' ';
    h[n++] = '\n';
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (unsigned char)major, buf[7] = 0;
    buf[8] = (unsigned char)n, buf[9] = (unsigned char)(n >> 8);
    if (major > 1) buf[10] = buf[11] = 0;
    memcpy(buf + pre + n, data, len);
    write_bytes(path, buf, (size_t)(pre + n) + len);
}

static int npy_claim_refused(const void *path)
{
    ds_dataset d;
    return ds_data_load(path, &d) == -1 && err_has("truncated: expected 8589934588 bytes", "got 4");
}

static void test_npy(void)
{
    float x[12], y[4] = {0, 2, 1, 2};
    for (int i = 0; i < 12; i++) x[i] = (float)i * 0.5f - 1;
    CHECK(ds_npy_write(P("x.npy"), ds_shape_of(2, 4, 3), x) == 0);
    CHECK(ds_npy_write(P("y.npy"), ds_shape_of(1, 4), y) == 0);
    /* the header is NumPy's: padded so the data starts on 64 bytes */
    FILE *f = fopen(P("x.npy"), "rb");
    char head[129] = {0};
    CHECK(f && fread(head, 1, 128, f) == 128);
    fclose(f);
    int hlen = (unsigned char)head[8] | (unsigned char)head[9] << 8;
    CHECK(memcmp(head, "\x93NUMPY\x01\x00", 8) == 0 && hlen == 118 && head[127] == '\n');
    CHECK(strstr(head + 10, "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 3), }"));

    char spec[600];
    ds_dataset d;
    snprintf(spec, sizeof spec, "npy:%s,%s", P("x.npy"), P("y.npy"));
    CHECK(ds_data_load(spec, &d) == 0);
    CHECK(d.n == 4 && same_shape(d.sample, 1, 3, 0, 0) && d.classes == 3 && !d.class_names);
    CHECK(memcmp(d.x, x, sizeof x) == 0 && memcmp(d.y, y, sizeof y) == 0);
    ds_dataset_free(&d);
    CHECK(ds_data_load(P("x.npy"), &d) == 0); /* a bare path: no labels */
    CHECK(d.n == 4 && d.classes == 0 && d.y[3] == 0 && d.x[11] == x[11]);
    ds_dataset_free(&d);
    CHECK(ds_npy_write(P("x3.npy"), ds_shape_of(3, 2, 3, 2), x) == 0);
    CHECK(ds_data_load(P("x3.npy"), &d) == 0 && same_shape(d.sample, 3, 1, 3, 2) && d.n == 2);
    ds_dataset_free(&d);

    /* u1 is not rescaled; f8, i8, i4 labels; a version-2 header */
    const unsigned char u1[6] = {0, 1, 128, 200, 255, 7};
    const double f8[2] = {1.5, -2.25};
    const int64_t i8[3] = {0, 1, 2};
    const int32_t i4[2] = {1, 0};
    npy_by_hand(P("u1.npy"), 1, "|u1", "False", "(3, 2)", u1, 6);
    npy_by_hand(P("i8.npy"), 1, "<i8", "False", "(3,)", i8, sizeof i8);
    snprintf(spec, sizeof spec, "npy:%s,%s", P("u1.npy"), P("i8.npy"));
    CHECK(ds_data_load(spec, &d) == 0 && d.n == 3 && d.classes == 3);
    CHECK(d.x[2] == 128 && d.x[4] == 255 && d.y[2] == 2);
    ds_dataset_free(&d);
    npy_by_hand(P("f8v2.npy"), 2, "<f8", "False", "(2, 1)", f8, sizeof f8);
    npy_by_hand(P("i4.npy"), 1, "<i4", "False", "(2,)", i4, sizeof i4);
    snprintf(spec, sizeof spec, "npy:%s,%s", P("f8v2.npy"), P("i4.npy"));
    CHECK(ds_data_load(spec, &d) == 0 && d.n == 2 && d.x[0] == 1.5f && d.x[1] == -2.25f);
    CHECK(d.y[0] == 1 && d.y[1] == 0 && d.classes == 2);
    ds_dataset_free(&d);

    /* errors */
    load_fails(P("none.npy"), P("none.npy"), "No such file");
    write_text(P("magic.npy"), "PK\x03\x04 this is a zip");
    load_fails(P("magic.npy"), P("magic.npy"), "bad magic");
    npy_by_hand(P("short.npy"), 1, "<f4", "False", "(3, 4)", x, 40);
    load_fails(P("short.npy"), P("short.npy"), "truncated: expected 48 bytes of data, got 40");
    write_bytes(P("head.npy"), "\x93NUMPY\x01\x00\x76\x00{'descr'", 17);
    load_fails(P("head.npy"), P("head.npy"), "truncated NPY header");
    npy_by_hand(P("huge.npy"), 1, "<f4", "False", "(100000, 100000)", x, 48);
    load_fails(P("huge.npy"), P("huge.npy"), "too large");
    npy_by_hand(P("fort.npy"), 1, "<f4", "True", "(3, 4)", x, 48);
    load_fails(P("fort.npy"), P("fort.npy"), "Fortran");
    npy_by_hand(P("big.npy"), 1, ">f4", "False", "(3, 4)", x, 48);
    load_fails(P("big.npy"), P("big.npy"), "big-endian");
    npy_by_hand(P("c8.npy"), 1, "<c8", "False", "(3,)", x, 24);
    load_fails(P("c8.npy"), P("c8.npy"), "unsupported NPY dtype '<c8'");
    npy_by_hand(P("dict.npy"), 1, "<f4", "False", "(3 4)", x, 48);
    load_fails(P("dict.npy"), P("dict.npy"), "bad NPY header dict");
    load_fails(P("y.npy"), P("y.npy"), "X must be [n,F]");
    snprintf(spec, sizeof spec, "npy:%s,%s", P("x.npy"), P("i8.npy"));
    load_fails(spec, "count mismatch", "has 3 labels");
    snprintf(spec, sizeof spec, "npy:%s,%s", P("u1.npy"), P("x.npy"));
    load_fails(spec, P("x.npy"), "1-D");
    snprintf(spec, sizeof spec, "npy:%s,%s", P("f8v2.npy"), P("f8v2.npy"));
    npy_by_hand(P("half.npy"), 1, "<f8", "False", "(2,)", f8, sizeof f8);
    snprintf(spec, sizeof spec, "npy:%s,%s", P("f8v2.npy"), P("half.npy"));
    load_fails(spec, P("half.npy"), "label of sample 0 is 1.5, not a class index");
    /* issue 12: text after the header dict (NumPy's literal_eval refuses it) */
    npy_by_hand(P("junk.npy"), 1, "<f4", "False", "(3, 4)} junk", x, 48);
    load_fails(P("junk.npy"), P("junk.npy"), "bytes of other text after the dict");
    /* a header claiming 2^31 - 1 floats (8 GB) over no data: refused before any allocation */
    npy_by_hand(P("claim.npy"), 1, "<f4", "False", "(2147483647,)", x, 4);
    CHECK(ds_bounded(512, npy_claim_refused, P("claim.npy")));
    CHECK(ds_npy_write(P("no_dir/x.npy"), ds_shape_of(1, 2), x) == -1);
    CHECK(err_has(P("no_dir/x.npy"), "cannot create"));
}

static void test_csv(void)
{
    ds_dataset d;
    char spec[600];
    write_text(P("t.csv"), "a, b ,label\r\n1,2,cat\n\n3,\"4.5\",dog\n-5e1,6,\"cat\"\n");
    CHECK(ds_data_load(P("t.csv"), &d) == 0);
    CHECK(d.n == 3 && same_shape(d.sample, 1, 2, 0, 0) && d.classes == 2 && d.class_names);
    CHECK(d.class_names && !strcmp(d.class_names[0], "cat") && !strcmp(d.class_names[1], "dog"));
    CHECK(d.x[0] == 1 && d.x[3] == 4.5f && d.x[4] == -50 && d.x[5] == 6);
    CHECK(d.y[0] == 0 && d.y[1] == 1 && d.y[2] == 0);
    ds_dataset_free(&d);
    write_text(P("n.csv"), "y,f1,f2\n2,0.5,1\n0,7,8\n");
    snprintf(spec, sizeof spec, "csv:%s,label=y", P("n.csv"));
    CHECK(ds_data_load(spec, &d) == 0 && d.n == 2 && d.classes == 3 && !d.class_names);
    CHECK(d.y[0] == 2 && d.y[1] == 0 && d.x[0] == 0.5f && d.x[1] == 1 && d.x[2] == 7);
    ds_dataset_free(&d);

    write_text(P("cell.csv"), "a,b,label\n1,2,0\n3,x4,1\n");
    load_fails(P("cell.csv"), P("cell.csv:3:2"), "'x4' in column 'b' is not a finite number");
    write_text(P("empty_cell.csv"), "a,b,label\n1,,0\n");
    load_fails(P("empty_cell.csv"), P("empty_cell.csv:2:2"), "empty cell");
    write_text(P("ragged.csv"), "a,b,label\n1,2,0\n3,4,5,1\n");
    load_fails(P("ragged.csv"), P("ragged.csv:3"), "4 fields, expected 3");
    write_text(P("nan.csv"), "a,b,label\n1,nan,0\n");
    load_fails(P("nan.csv"), P("nan.csv:2:2"), "not a finite number");
    write_text(P("frac.csv"), "a,label\n1,0\n2,1.5\n");
    load_fails(P("frac.csv"), P("frac.csv:3:2"), "label 1.5 is not a class index");
    write_text(P("hdr.csv"), "a,b,label\n");
    load_fails(P("hdr.csv"), P("hdr.csv"), "no data rows");
    write_text(P("one.csv"), "label\n1\n");
    load_fails(P("one.csv"), P("one.csv"), "feature columns");
    snprintf(spec, sizeof spec, "csv:%s,label=z", P("n.csv"));
    load_fails(spec, P("n.csv"), "no column named 'z'");
    snprintf(spec, sizeof spec, "csv:%s,lable=y", P("n.csv"));
    load_fails(spec, "data spec", "unknown or repeated option 'lable=y'");
    write_bytes(P("bin.csv"), "a,b\n1\0002\n", 8);
    load_fails(P("bin.csv"), P("bin.csv"), "NUL byte");
}

/* Loads spec, expecting n samples of F features and `classes` classes. */
static int loads(const char *spec, int n, int F, int classes, ds_dataset *d)
{
    if (ds_data_load(spec, d) != 0) {
        fprintf(stderr, "  %s: %s\n", spec, ds_last_error());
        return 0;
    }
    int ok = d->n == n && d->sample.ndim == 1 && d->sample.d[0] == F && d->classes == classes;
    if (!ok) fprintf(stderr, "  %s: n %d F %d classes %d\n", spec, d->n, d->sample.d[0], d->classes);
    return ok;
}

/* issue 12 item 3: headerless tables keep row 1; header=, skip=, label=
 * by index or none, gzip, and scikit-learn's first line. */
static void test_csv_options(void)
{
    ds_dataset d;
    char spec[600];
    /* a headerless numeric table: line 1 is a row (it used to be eaten as the header) */
    write_text(P("nohdr.csv"), "1,2,0\n3,4,1\n5,6,2\n");
    CHECK(loads(P("nohdr.csv"), 3, 2, 3, &d) && d.x[0] == 1 && d.x[1] == 2 && d.y[0] == 0 && d.y[2] == 2);
    ds_dataset_free(&d);
    snprintf(spec, sizeof spec, "csv:%s,header=yes", P("nohdr.csv"));
    CHECK(loads(spec, 2, 2, 3, &d) && d.x[0] == 3);
    ds_dataset_free(&d);
    /* headerless with string labels (iris-like): still a row */
    write_text(P("iris.csv"), "5.1,3.5,setosa\n4.9,3.0,setosa\n6.3,3.3,virginica\n");
    CHECK(loads(P("iris.csv"), 3, 2, 2, &d) && d.x[0] == 5.1f && d.class_names &&
          !strcmp(d.class_names[1], "virginica"));
    ds_dataset_free(&d);
    /* a header of numbers above a word label column: a header */
    write_text(P("numhdr.csv"), "0,1,target\n7,8,1\n9,10,0\n");
    CHECK(loads(P("numhdr.csv"), 2, 2, 2, &d) && d.x[0] == 7 && !d.class_names);
    ds_dataset_free(&d);
    /* header=no: a word in line 1 is then a bad cell, named by column number */
    snprintf(spec, sizeof spec, "csv:%s,header=no", P("t.csv"));
    load_fails(spec, P("t.csv:1:1"), "'a' in column 'column 1' is not a finite number");
    /* skip=N keeps the file's line numbers in messages */
    write_text(P("skip.csv"), "# comment\nmade by hand\nf,g,label\n1,2,a\n3,x,b\n");
    snprintf(spec, sizeof spec, "csv:%s,skip=2", P("skip.csv"));
    load_fails(spec, P("skip.csv:5:2"), "'x' in column 'g'");
    write_text(P("skip2.csv"), "junk line\nf,g,label\n1,2,a\n3,4,b\n");
    snprintf(spec, sizeof spec, "csv:%s,skip=1", P("skip2.csv"));
    CHECK(loads(spec, 2, 2, 2, &d) && d.x[2] == 3);
    ds_dataset_free(&d);
    snprintf(spec, sizeof spec, "csv:%s,skip=9", P("skip2.csv"));
    load_fails(spec, P("skip2.csv"), "no rows after the 4 lines skipped");
    /* label by index (0 the first, -1 the last) or by name, or none */
    snprintf(spec, sizeof spec, "csv:%s,label=0", P("nohdr.csv"));
    CHECK(loads(spec, 3, 2, 6, &d) && d.y[1] == 3 && d.x[0] == 2 && d.x[1] == 0);
    ds_dataset_free(&d);
    snprintf(spec, sizeof spec, "csv:%s,label=-2", P("nohdr.csv"));
    CHECK(loads(spec, 3, 2, 7, &d) && d.y[2] == 6 && d.x[0] == 1 && d.x[1] == 0);
    ds_dataset_free(&d);
    snprintf(spec, sizeof spec, "csv:%s,label=3", P("nohdr.csv"));
    load_fails(spec, P("nohdr.csv"), "label=3: no such column (the file has 3");
    snprintf(spec, sizeof spec, "csv:%s,label=b", P("nohdr.csv"));
    load_fails(spec, P("nohdr.csv:1"), "no column named 'b'");
    snprintf(spec, sizeof spec, "csv:%s,label=b,header=no", P("nohdr.csv"));
    load_fails(spec, P("nohdr.csv"), "give the column's index");
    snprintf(spec, sizeof spec, "csv:%s,label=none", P("nohdr.csv"));
    CHECK(loads(spec, 3, 3, 0, &d) && d.x[2] == 0 && d.x[5] == 1 && d.y[2] == 0 && !d.class_names);
    ds_dataset_free(&d);
    snprintf(spec, sizeof spec, "csv:%s,label=none,header=yes", P("t.csv"));
    load_fails(spec, P("t.csv:2:3"), "'cat' in column 'label' is not a finite number");
    snprintf(spec, sizeof spec, "csv:%s,header=maybe", P("t.csv"));
    load_fails(spec, "data spec", "header=auto, yes or no");
    snprintf(spec, sizeof spec, "csv:%s,skip=-1", P("t.csv"));
    load_fails(spec, "data spec", "skip=-1 is not a line count");
    snprintf(spec, sizeof spec, "csv:%s,skip=1,skip=1", P("t.csv"));
    load_fails(spec, "data spec", "repeated option 'skip=1'");
    /* .csv.gz by name, and a truncated one */
    gzFile g = gzopen(P("z.csv.gz"), "wb");
    gzputs(g, "1,2,0\n3,4,1\n");
    for (int i = 0; i < 2000; i++) gzprintf(g, "%d,%d,%d\n", i, i % 7, i % 2);
    gzclose(g);
    CHECK(loads(P("z.csv.gz"), 2002, 2, 2, &d) && d.x[0] == 1 && d.x[2 * 2001] == 1999);
    ds_dataset_free(&d);
    FILE *f = fopen(P("z.csv.gz"), "rb");
    char gz[8192];
    size_t len = fread(gz, 1, sizeof gz, f);
    fclose(f);
    write_bytes(P("cut.csv.gz"), gz, len - 12);
    snprintf(spec, sizeof spec, "csv:%s", P("cut.csv.gz"));
    load_fails(spec, P("cut.csv.gz"), "truncated gzip");
    /* scikit-learn's first line names the numeric classes; its count is checked */
    write_text(P("sk.csv"), "3,2,class_0,class_1,class_2\n1,2,0\n3,4,2\n5,6,1\n");
    CHECK(loads(P("sk.csv"), 3, 2, 3, &d) && d.x[0] == 1 && d.class_names &&
          !strcmp(d.class_names[2], "class_2") && d.y[1] == 2);
    ds_dataset_free(&d);
    write_text(P("sk4.csv"), "4,2,a,b\n1,2,0\n3,4,1\n5,6,1\n");
    load_fails(P("sk4.csv"), P("sk4.csv:1"), "says 4 samples, but the file has 3 rows");
    write_text(P("sk3.csv"), "2,2,a,b\n1,2,0\n3,4,2\n");
    load_fails(P("sk3.csv"), P("sk3.csv:3:3"), "label 2, but line 1 names 2 classes");
    snprintf(spec, sizeof spec, "csv:%s,skip=1", P("sk.csv"));
    CHECK(loads(spec, 3, 2, 3, &d) && !d.class_names);
    ds_dataset_free(&d);
}

/* PNG of w×h with c channels; pixel (x,y,ch) = base + 10·y + x + 100·ch. */
static void png(const char *path, int w, int h, int c, int base)
{
    unsigned char px[4 * 8 * 8];
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int ch = 0; ch < c; ch++) px[(y * w + x) * c + ch] = (unsigned char)(base + 10 * y + x + 100 * ch);
    CHECK(stbi_write_png(path, w, h, c, px, w * c) != 0);
}

/* 8×8 RGB, every pixel (60, 110, 160): stbi_write_jpg's output at quality 90
 * (its encoder trips UBSan, so the bytes are stored rather than made here). */
static const char jpeg8[] =
    "\xff\xd8\xff\xe0\x00\x10\x4a\x46\x49\x46\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xdb\x00\x84"
    "\x00\x03\x02\x02\x03\x02\x02\x03\x03\x03\x03\x04\x03\x03\x04\x05\x08\x05\x05\x04\x04\x05\x0a\x07"
    "\x07\x06\x08\x0c\x0a\x0c\x0c\x0b\x0a\x0b\x0b\x0d\x0e\x12\x10\x0d\x0e\x11\x0e\x0b\x0b\x10\x16\x10"
    "\x11\x13\x14\x15\x15\x15\x0c\x0f\x17\x18\x16\x14\x18\x12\x14\x15\x14\x01\x03\x04\x04\x05\x04\x05"
    "\x09\x05\x05\x09\x14\x0d\x0b\x0d\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14"
    "\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14"
    "\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\xff\xc0\x00\x11\x08\x00\x08\x00\x08\x03\x01\x22\x00\x02"
    "\x11\x01\x03\x11\x01\xff\xc4\x01\xa2\x00\x00\x01\x05\x01\x01\x01\x01\x01\x01\x00\x00\x00\x00\x00"
    "\x00\x00\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x10\x00\x02\x01\x03\x03\x02\x04\x03\x05"
    "\x05\x04\x04\x00\x00\x01\x7d\x01\x02\x03\x00\x04\x11\x05\x12\x21\x31\x41\x06\x13\x51\x61\x07\x22"
    "\x71\x14\x32\x81\x91\xa1\x08\x23\x42\xb1\xc1\x15\x52\xd1\xf0\x24\x33\x62\x72\x82\x09\x0a\x16\x17"
    "\x18\x19\x1a\x25\x26\x27\x28\x29\x2a\x34\x35\x36\x37\x38\x39\x3a\x43\x44\x45\x46\x47\x48\x49\x4a"
    "\x53\x54\x55\x56\x57\x58\x59\x5a\x63\x64\x65\x66\x67\x68\x69\x6a\x73\x74\x75\x76\x77\x78\x79\x7a"
    "\x83\x84\x85\x86\x87\x88\x89\x8a\x92\x93\x94\x95\x96\x97\x98\x99\x9a\xa2\xa3\xa4\xa5\xa6\xa7\xa8"
    "\xa9\xaa\xb2\xb3\xb4\xb5\xb6\xb7\xb8\xb9\xba\xc2\xc3\xc4\xc5\xc6\xc7\xc8\xc9\xca\xd2\xd3\xd4\xd5"
    "\xd6\xd7\xd8\xd9\xda\xe1\xe2\xe3\xe4\xe5\xe6\xe7\xe8\xe9\xea\xf1\xf2\xf3\xf4\xf5\xf6\xf7\xf8\xf9"
    "\xfa\x01\x00\x03\x01\x01\x01\x01\x01\x01\x01\x01\x01\x00\x00\x00\x00\x00\x00\x01\x02\x03\x04\x05"
    "\x06\x07\x08\x09\x0a\x0b\x11\x00\x02\x01\x02\x04\x04\x03\x04\x07\x05\x04\x04\x00\x01\x02\x77\x00"
    "\x01\x02\x03\x11\x04\x05\x21\x31\x06\x12\x41\x51\x07\x61\x71\x13\x22\x32\x81\x08\x14\x42\x91\xa1"
    "\xb1\xc1\x09\x23\x33\x52\xf0\x15\x62\x72\xd1\x0a\x16\x24\x34\xe1\x25\xf1\x17\x18\x19\x1a\x26\x27"
    "\x28\x29\x2a\x35\x36\x37\x38\x39\x3a\x43\x44\x45\x46\x47\x48\x49\x4a\x53\x54\x55\x56\x57\x58\x59"
    "\x5a\x63\x64\x65\x66\x67\x68\x69\x6a\x73\x74\x75\x76\x77\x78\x79\x7a\x82\x83\x84\x85\x86\x87\x88"
    "\x89\x8a\x92\x93\x94\x95\x96\x97\x98\x99\x9a\xa2\xa3\xa4\xa5\xa6\xa7\xa8\xa9\xaa\xb2\xb3\xb4\xb5"
    "\xb6\xb7\xb8\xb9\xba\xc2\xc3\xc4\xc5\xc6\xc7\xc8\xc9\xca\xd2\xd3\xd4\xd5\xd6\xd7\xd8\xd9\xda\xe2"
    "\xe3\xe4\xe5\xe6\xe7\xe8\xe9\xea\xf2\xf3\xf4\xf5\xf6\xf7\xf8\xf9\xfa\xff\xda\x00\x0c\x03\x01\x00"
    "\x02\x11\x03\x11\x00\x3f\x00\xf3\x6a\x28\xa2\xbf\x59\x3f\x31\x3f\xff\xd9";

/* A PNG whose IHDR says w×h 8-bit gray, with a tiny IDAT (a few rows). */
static void png_claim(const char *path, uint32_t w, uint32_t h)
{
    unsigned char f[256], raw[64] = {0}, z[128];
    uLongf zl = sizeof z;
    compress(z, &zl, raw, sizeof raw);
    size_t n = 0;
    memcpy(f, "\x89PNG\r\n\x1a\n", 8), n = 8;
    unsigned char ihdr[13] = {w >> 24, w >> 16, w >> 8, w, h >> 24, h >> 16, h >> 8, h, 8, 0, 0, 0, 0};
    const struct {
        const char *type;
        const unsigned char *d;
        size_t len;
    } ch[3] = {{"IHDR", ihdr, 13}, {"IDAT", z, zl}, {"IEND", NULL, 0}};
    for (int k = 0; k < 3; k++) {
        size_t len = ch[k].len;
        unsigned char *c = f + n;
        c[0] = (unsigned char)(len >> 24), c[1] = (unsigned char)(len >> 16), c[2] = (unsigned char)(len >> 8),
        c[3] = (unsigned char)len;
        memcpy(c + 4, ch[k].type, 4);
        if (len) memcpy(c + 8, ch[k].d, len);
        uLong crc = crc32(0, c + 4, (uInt)(4 + len));
        c[8 + len] = (unsigned char)(crc >> 24), c[9 + len] = (unsigned char)(crc >> 16),
        c[10 + len] = (unsigned char)(crc >> 8), c[11 + len] = (unsigned char)crc;
        n += 12 + len;
    }
    write_bytes(path, f, n);
}

static int png_claim_refused(const void *path)
{
    ds_dataset d;
    return ds_data_load(path, &d) == -1 && err_has("declares 20000x20000 pixels of 1 channels", "image file can hold");
}

static int png_truncated_refused(const void *path)
{
    ds_dataset d;
    return ds_data_load(path, &d) == -1 && err_has("truncated PNG: chunk 'IDAT'", "needs 2147483659 bytes");
}

/* stb grew its buffer to a chunk's claimed length before reading (a 70-byte
 * file: 2 GB) and offset a NULL buffer for an empty IDAT (fuzz_image): the
 * first is refused before stb, the second dropped, the image unchanged. */
static void test_png_chunks(void)
{
    png(P("chunks.png"), 4, 3, 1, 7);
    FILE *f = fopen(P("chunks.png"), "rb");
    static unsigned char b[4096], e[4096 + 12];
    size_t n = f ? fread(b, 1, sizeof b, f) : 0;
    if (f) fclose(f);
    CHECK(n > 33 && !memcmp(b + 12, "IHDR", 4));
    /* an empty IDAT (length 0, its CRC) after IHDR */
    memcpy(e, b, 33);
    memcpy(e + 33, "\0\0\0\0IDAT\x35\xaf\x06\x1e", 12);
    memcpy(e + 45, b + 33, n - 33);
    write_bytes(P("empty_idat.png"), e, n + 12);
    ds_dataset d;
    CHECK(ds_data_load(P("empty_idat.png"), &d) == 0 && d.n == 1 && d.x && fabsf(d.x[5] - (7 + 10 + 1) / 255.0f) < 1e-6f);
    ds_dataset_free(&d);
    /* the first IDAT claiming 2^31 - 1 bytes */
    size_t at = 33;
    while (at + 8 < n && memcmp(b + at + 4, "IDAT", 4)) at += 12 + ((size_t)b[at + 2] << 8 | b[at + 3]);
    CHECK(at + 8 < n);
    b[at] = 0x7f, b[at + 1] = b[at + 2] = b[at + 3] = 0xff;
    write_bytes(P("trunc.png"), b, n);
    CHECK(ds_bounded(256, png_truncated_refused, P("trunc.png")));
    /* an empty IDAT without its CRC at the end of the file (stb: memcpy from NULL; fuzz_image) */
    memcpy(e, b, 33);
    memcpy(e + 33, "\0\0\0\0IDATxx", 10);
    write_bytes(P("trunc2.png"), e, 43);
    load_fails(P("trunc2.png"), P("trunc2.png"), "truncated PNG: chunk 'IDAT' at byte 33 needs 12 bytes");
}

static void test_folder(void)
{
    /* issue 12: a PNG header's size is checked against the file before stb allocates it */
    png_claim(P("claim.png"), 20000, 20000);
    CHECK(ds_bounded(256, png_claim_refused, P("claim.png")));

    ds_dataset d;
    mkdir(P("img"), 0700), mkdir(P("img/b_shirt"), 0700), mkdir(P("img/a_coat"), 0700);
    png(P("img/b_shirt/1.png"), 4, 3, 1, 5);
    png(P("img/a_coat/2.png"), 4, 3, 1, 0);
    png(P("img/a_coat/1.PNG"), 4, 3, 2, 1); /* gray + alpha: alpha dropped */
    write_text(P("img/a_coat/notes.txt"), "ignored");
    CHECK(ds_data_load(P("img"), &d) == 0);
    CHECK(d.n == 3 && same_shape(d.sample, 3, 1, 3, 4) && d.classes == 2);
    CHECK(d.class_names && !strcmp(d.class_names[0], "a_coat") && !strcmp(d.class_names[1], "b_shirt"));
    CHECK(d.y[0] == 0 && d.y[1] == 0 && d.y[2] == 1); /* 1.PNG, 2.png, then b_shirt */
    CHECK(d.x[0] == 1 / 255.0f && d.x[12 + 6] == 12 / 255.0f && d.x[24 + 11] == 28 / 255.0f);
    ds_dataset_free(&d);

    mkdir(P("rgb"), 0700), mkdir(P("rgb/x"), 0700);
    png(P("rgb/x/a.png"), 2, 2, 3, 0);
    png(P("rgb/x/b.png"), 2, 2, 4, 3);
    char spec[600];
    snprintf(spec, sizeof spec, "folder:%s", P("rgb"));
    CHECK(ds_data_load(spec, &d) == 0 && same_shape(d.sample, 3, 3, 2, 2) && d.n == 2);
    /* CHW: channel 1 of pixel (x=1, y=1) of the second image */
    CHECK(d.x[12 + 4 + 3] == (3 + 11 + 100) / 255.0f);
    ds_dataset_free(&d);
    CHECK(ds_data_load(P("rgb/x/a.png"), &d) == 0 && d.n == 1 && d.classes == 0);
    CHECK(same_shape(d.sample, 3, 3, 2, 2) && d.x[4] == 100 / 255.0f);
    ds_dataset_free(&d);

    /* JPEG is lossy: compare within a few levels */
    mkdir(P("jpg"), 0700), mkdir(P("jpg/k"), 0700);
    write_bytes(P("jpg/k/a.jpeg"), jpeg8, sizeof jpeg8 - 1);
    CHECK(ds_data_load(P("jpg"), &d) == 0 && same_shape(d.sample, 3, 3, 8, 8));
    CHECK(d.x && fabsf(d.x[0] - 60 / 255.0f) < 0.02f && fabsf(d.x[64 + 9] - 110 / 255.0f) < 0.02f);
    ds_dataset_free(&d);

    /* a DHT segment whose code counts sum past 256 overran stb's tables */
    char bad_jpeg[sizeof jpeg8];
    memcpy(bad_jpeg, jpeg8, sizeof jpeg8);
    char *dht = memmem(bad_jpeg, sizeof jpeg8 - 1, "\xff\xc4", 2);
    CHECK(dht != NULL);
    if (dht) memset(dht + 5, 0xff, 16);
    write_bytes(P("jpg/k/a.jpeg"), bad_jpeg, sizeof jpeg8 - 1);
    load_fails(P("jpg"), P("jpg/k/a.jpeg"), "corrupt JPEG (bad or missing Huffman table)");
    /* stb skips FF fill bytes before the FF D8 start marker, so the check
     * must too (found by tests/fuzz/fuzz_image: regress/fuzz_image/) */
    char fill[sizeof jpeg8 + 8];
    memset(fill, 0xff, 9);
    memcpy(fill + 9, bad_jpeg + 1, sizeof jpeg8 - 2);
    write_bytes(P("jpg/k/a.jpeg"), fill, sizeof jpeg8 + 7);
    load_fails(P("jpg"), P("jpg/k/a.jpeg"), "corrupt JPEG (bad or missing Huffman table)");

    /* a scan using a Huffman table no DHT defined: stb decoded it from
     * uninitialised memory, an index of 1.3e9 into a 257-entry table (fuzz_image) */
    memcpy(bad_jpeg, jpeg8, sizeof jpeg8);
    char *sos = memmem(bad_jpeg, sizeof jpeg8 - 1, "\xff\xda", 2);
    CHECK(sos != NULL);
    if (sos) sos[6] = 0x03; /* the first component: DC table 0, AC table 3 */
    write_bytes(P("jpg/k/a.jpeg"), bad_jpeg, sizeof jpeg8 - 1);
    load_fails(P("jpg"), P("jpg/k/a.jpeg"), "corrupt JPEG (bad or missing Huffman table)");

    png(P("img/b_shirt/2.png"), 5, 3, 1, 0);
    load_fails(P("img"), P("img/b_shirt/2.png"), "5x3 pixels with 1 channel, but");
    CHECK(err_has(P("img/a_coat/1.PNG"), "is 4x3 with 1"));
    png(P("img/b_shirt/2.png"), 4, 3, 3, 0);
    load_fails(P("img"), P("img/b_shirt/2.png"), "3 channels");
    remove(P("img/b_shirt/2.png"));
    write_text(P("img/b_shirt/3.jpg"), "not a jpeg");
    load_fails(P("img"), P("img/b_shirt/3.jpg"), "cannot decode image");
    remove(P("img/b_shirt/3.jpg"));
    mkdir(P("img/c_empty"), 0700);
    load_fails(P("img"), P("img/c_empty"), "no PNG/JPEG files");
    load_fails(P("img/c_empty"), P("img/c_empty"), "no class sub-folders");
    rmdir(P("img/c_empty"));
}

static void fits(const char *path, int bitpix, int naxis, long *naxes, const float *px)
{
    char name[600];
    fitsfile *f;
    int status = 0;
    long n = naxes[0] * naxes[1] * (naxis > 2 ? naxes[2] : 1);
    snprintf(name, sizeof name, "!%s", path);
    fits_create_file(&f, name, &status);
    fits_create_img(f, bitpix, naxis, naxes, &status);
    fits_write_img(f, TFLOAT, 1, n, (void *)px, &status);
    fits_close_file(f, &status);
    CHECK(status == 0);
}

/* Rewrites the value of the header card starting `key` (e.g. "NAXIS3  =") in place. */
static void patch_card(const char *path, const char *key, long value)
{
    char buf[8192];
    FILE *f = fopen(path, "r+b");
    size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
    for (size_t at = 0; at + 80 <= n; at += 80)
        if (!strncmp(buf + at, key, strlen(key))) {
            char card[81];
            snprintf(card, sizeof card, "%-10s%20ld", key, value);
            memset(card + strlen(card), ' ', 80 - strlen(card));
            fseek(f, (long)at, SEEK_SET);
            fwrite(card, 1, 80, f);
            break;
        }
    if (f) fclose(f);
}

static void gzip_copy(const char *from, const char *to)
{
    char buf[65536];
    FILE *f = fopen(from, "rb");
    gzFile g = gzopen(to, "wb");
    size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
    CHECK(g && gzwrite(g, buf, (unsigned)n) == (int)n);
    if (g) gzclose(g);
    if (f) fclose(f);
}

static int fits_claim_refused(const void *path)
{
    ds_dataset d;
    return ds_data_load(path, &d) == -1 && err_has("declares 4×3×100000000×1 pixels", "bytes after its header");
}

/* A gzip FITS whose trailer claims 4 GB made CFITSIO allocate 4 GB before
 * reading a byte (found by tests/fuzz/fuzz_fits: regress/fuzz_fits/); the
 * same file with its true trailer loads. */
static void test_fits_gzip_claim(void)
{
    int dims[2] = {4, 4};
    float px[16] = {1, 2, 3};
    CHECK(ds_fits_write(P("g.fits"), 2, dims, px, NULL, 0) == 0);
    FILE *f = fopen(P("g.fits"), "rb");
    static unsigned char raw[8 * 2880];
    size_t n = f ? fread(raw, 1, sizeof raw, f) : 0;
    if (f) fclose(f);
    gzFile z = gzopen(P("g.fits.gz"), "wb");
    CHECK(z && gzwrite(z, raw, (unsigned)n) == (int)n && gzclose(z) == Z_OK);
    ds_dataset d;
    char spec[600];
    snprintf(spec, sizeof spec, "fits:%s", P("g.fits.gz"));
    CHECK(ds_data_load(spec, &d) == 0 && d.n == 1 && d.x && d.x[2] == 3);
    ds_dataset_free(&d);
    f = fopen(P("g.fits.gz"), "r+b");
    CHECK(f && fseek(f, -4, SEEK_END) == 0 && fwrite("\0\0\0\xf0", 1, 4, f) == 4);
    if (f) fclose(f);
    load_fails(spec, P("g.fits.gz"), "claims 4026531840 bytes uncompressed");
    /* an ISIZE below the compressed size: CFITSIO adds 4 GB to it */
    f = fopen(P("g.fits.gz"), "r+b");
    CHECK(f && fseek(f, -4, SEEK_END) == 0 && fwrite("\0\0\0\0", 1, 4, f) == 4);
    if (f) fclose(f);
    load_fails(spec, P("g.fits.gz"), "claims 4294967296 bytes uncompressed");
    /* CFITSIO reads any file starting "PK" as a zip, its size from byte 22 */
    write_bytes(P("z.fits"), "PK\x07\x04..................\xbf\xbf\xbf\xbf)", 27);
    snprintf(spec, sizeof spec, "fits:%s", P("z.fits"));
    load_fails(spec, P("z.fits"), "claims 3217014719 bytes uncompressed");
}

static void test_fits(void)
{
    ds_dataset d;
    float px[24];
    long ax[3] = {4, 3, 2}; /* W, H, N */
    char spec[600];
    for (int i = 0; i < 24; i++) px[i] = (float)i - 3;
    px[13] = NAN;
    fits(P("cube.fits"), FLOAT_IMG, 3, ax, px);
    CHECK(ds_data_load(P("cube.fits"), &d) == 0);
    CHECK(d.n == 2 && same_shape(d.sample, 3, 1, 3, 4) && d.classes == 0);
    CHECK(d.x[0] == -3 && d.x[12] == 9 && d.x[13] == 0 && d.x[23] == 20); /* NaN → 0 */
    ds_dataset_free(&d);
    float lab[2] = {1, 0};
    ds_npy_write(P("cube_y.npy"), ds_shape_of(1, 2), lab);
    snprintf(spec, sizeof spec, "fits:%s,labels=%s", P("cube.fits"), P("cube_y.npy"));
    CHECK(ds_data_load(spec, &d) == 0 && d.classes == 2 && d.y[0] == 1 && d.y[1] == 0);
    ds_dataset_free(&d);
    write_text(P("cube_y.csv"), "kind\nstar\ngalaxy\n");
    snprintf(spec, sizeof spec, "fits:%s,labels=%s", P("cube.fits"), P("cube_y.csv"));
    CHECK(ds_data_load(spec, &d) == 0 && d.classes == 2 && d.y[0] == 1 && d.y[1] == 0);
    CHECK(d.class_names && !strcmp(d.class_names[0], "galaxy"));
    ds_dataset_free(&d);
    ds_npy_write(P("three_y.npy"), ds_shape_of(1, 3), px + 3);
    snprintf(spec, sizeof spec, "fits:%s,labels=%s", P("cube.fits"), P("three_y.npy"));
    load_fails(spec, "count mismatch", "has 2 images but");

    /* 16-bit integers, a tile-compressed .fz, and class folders */
    mkdir(P("sky"), 0700), mkdir(P("sky/real"), 0700), mkdir(P("sky/bogus"), 0700);
    float ints[12];
    for (int i = 0; i < 12; i++) ints[i] = (float)i;
    fits(P("sky/real/a.fits"), SHORT_IMG, 2, ax, ints);
    char fz[600];
    snprintf(fz, sizeof fz, "%s[compress]", P("sky/bogus/b.fz"));
    fits(fz, FLOAT_IMG, 3, ax, px);
    snprintf(spec, sizeof spec, "fits:%s", P("sky"));
    CHECK(ds_data_load(spec, &d) == 0 && d.n == 3 && d.classes == 2);
    CHECK(d.class_names && !strcmp(d.class_names[1], "real") && d.y[1] == 0 && d.y[2] == 1);
    CHECK(d.x[24] == 0 && d.x[24 + 11] == 11 && d.x[13] == 0);
    ds_dataset_free(&d);
    snprintf(spec, sizeof spec, "fits:%s,labels=%s", P("sky"), P("cube_y.npy"));
    load_fails(spec, P("sky"), "class sub-folders");

    px[17] = -INFINITY;
    fits(P("inf.fits"), FLOAT_IMG, 3, ax, px);
    load_fails(P("inf.fits"), P("inf.fits"), "sample 1, pixel x=1 y=1 (from 0) is -Inf");
    long ax5[2] = {5, 3};
    fits(P("sky/real/c.fits"), FLOAT_IMG, 2, ax5, px);
    snprintf(spec, sizeof spec, "fits:%s", P("sky"));
    load_fails(spec, P("sky/real/c.fits"), "5x3 pixels, but");
    /* issue 12: a header declaring far more pixels than the file holds is refused before allocating */
    fits(P("claim.fits"), FLOAT_IMG, 3, ax, px);
    patch_card(P("claim.fits"), "NAXIS3  =", 100000000);
    CHECK(ds_bounded(512, fits_claim_refused, P("claim.fits")));
    gzip_copy(P("claim.fits"), P("claim.fits.gz"));
    CHECK(ds_bounded(512, fits_claim_refused, P("claim.fits.gz")));
    /* issue 12: .fits.gz is FITS (CFITSIO reads it), as a bare path and in class folders */
    px[17] = 5;
    fits(P("cube.fits"), FLOAT_IMG, 3, ax, px);
    gzip_copy(P("cube.fits"), P("cube.fits.gz"));
    CHECK(ds_data_load(P("cube.fits.gz"), &d) == 0 && d.n == 2 && d.x[23] == 20);
    ds_dataset_free(&d);
    mkdir(P("gzsky"), 0700), mkdir(P("gzsky/real"), 0700), mkdir(P("gzsky/bogus"), 0700);
    gzip_copy(P("cube.fits"), P("gzsky/real/a.fits.gz"));
    gzip_copy(P("cube.fits"), P("gzsky/bogus/b.fts.gz"));
    CHECK(ds_data_load(P("gzsky"), &d) == 0 && d.n == 4 && d.classes == 2 && d.y[0] == 0 && d.y[3] == 1);
    ds_dataset_free(&d);
    write_text(P("fake.fits"), "SIMPLE? no.");
    load_fails(P("fake.fits"), P("fake.fits"), "not a FITS file");
    /* CFITSIO guesses bzip2 from "BZ" and read 2,880 bytes from a 36-byte buffer (fuzz_fits) */
    write_text(P("bz.fits"), "BZERO   = P'");
    load_fails(P("bz.fits"), P("bz.fits"), "not a FITS file");
    /* a FITS header card that is not a whole FITS block is still refused by CFITSIO */
    write_text(P("short.fits"), "SIMPLE  =                    T");
    load_fails(P("short.fits"), P("short.fits"), "cannot open as FITS");
    /* a gzip claiming less than one FITS block made CFITSIO read past its buffer */
    gzFile z = gzopen(P("tiny.fits.gz"), "wb");
    CHECK(z && gzwrite(z, "SIMPLE  =", 9) == 9 && gzclose(z) == Z_OK);
    load_fails(P("tiny.fits.gz"), P("tiny.fits.gz"), "at least 2880");
    load_fails("fits:/no/such.fits", "/no/such.fits", "No such file");
}

static void test_spec(void)
{
    char spec[600];
    load_fails("foo:bar", "unknown scheme 'foo'", "npy:X[,Y]");
    load_fails("", "empty data spec", "fashion-mnist");
    load_fails(P("nothing_here"), P("nothing_here"), "No such file");
    load_fails("idx:only_one", "idx:only_one", "expected idx:IMAGES,LABELS");
    load_fails("fashion-mnist:val", "fashion-mnist:val", "fashion-mnist:test");
    load_fails("npy:", "npy:", "empty argument");
    write_text(P("train-images-idx3-ubyte.gz"), "x");
    load_fails(P("train-images-idx3-ubyte.gz"), P("train"), "idx:IMAGES,LABELS");
    write_text(P("data.bin"), "x");
    load_fails(P("data.bin"), P("data.bin"), "cannot tell the data format");
    /* idx: by spec */
    const unsigned char im[4 + 12 + 8] = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2, 0, 255, 0, 0, 1, 2, 3, 4};
    const unsigned char lb[4 + 4 + 2] = {0, 0, 8, 1, 0, 0, 0, 2, 1, 0};
    write_bytes(P("im.idx"), im, sizeof im), write_bytes(P("lb.idx"), lb, sizeof lb);
    snprintf(spec, sizeof spec, "idx:%s,%s", P("im.idx"), P("lb.idx"));
    ds_dataset d;
    CHECK(ds_data_load(spec, &d) == 0 && d.n == 2 && d.classes == 2 && d.x[1] == 1.0f);
    ds_dataset_free(&d);
    struct stat st;
    if (stat("/usr/share/datasets/fashion-mnist", &st) == 0) {
        unsetenv("DS_FASHION_MNIST");
        CHECK(ds_data_load("fashion-mnist:test", &d) == 0 && d.n == 10000 && d.classes == 10);
        ds_dataset_free(&d);
    }
}

static void test_finite_and_split(void)
{
    enum { n = 20, F = 4 };
    float x[n * F], y[n];
    char *names[3] = {"a", "b", "c"};
    for (int i = 0; i < n * F; i++) x[i] = (float)i;
    for (int i = 0; i < n; i++) y[i] = (float)(i % 3);
    ds_dataset d = {.n = n, .sample = ds_shape_of(1, F), .classes = 3, .x = x, .y = y,
                    .class_names = names};
    CHECK(ds_dataset_check_finite(&d, "train.npy") == 0);
    x[12 * F + 3] = NAN;
    CHECK(ds_dataset_check_finite(&d, "train.npy") == -1);
    CHECK(!strcmp(ds_last_error(), "train.npy: sample 12, element 3 is NaN"));
    x[12 * F + 3] = 0, x[5 * F] = INFINITY;
    CHECK(ds_dataset_check_finite(&d, "val") == -1 && err_has("val: sample 5, element 0", "+Inf"));
    x[5 * F] = 5 * F;

    ds_dataset t, v, t2, v2, t3, v3;
    CHECK(ds_dataset_split(&d, 0.25f, 7, &t, &v) == 0 && t.n == 15 && v.n == 5);
    CHECK(same_shape(t.sample, 1, F, 0, 0) && v.classes == 3 && v.class_names != names);
    CHECK(v.class_names && !strcmp(v.class_names[2], "c"));
    int seen[n] = {0}, rows_ok = 1;
    for (int i = 0; i < t.n + v.n; i++) {
        const ds_dataset *s = i < t.n ? &t : &v;
        int k = i < t.n ? i : i - t.n, id = (int)s->x[k * F] / F;
        seen[id]++;
        rows_ok &= s->x[k * F + 3] == x[id * F + 3] && s->y[k] == y[id];
    }
    for (int i = 0; i < n; i++) CHECK(seen[i] == 1); /* disjoint, and together all */
    CHECK(rows_ok);
    CHECK(ds_dataset_split(&d, 0.25f, 7, &t2, &v2) == 0);
    CHECK(memcmp(t.x, t2.x, sizeof(float) * 15 * F) == 0 && memcmp(v.y, v2.y, 5 * sizeof(float)) == 0);
    CHECK(ds_dataset_split(&d, 0.25f, 8, &t3, &v3) == 0 && memcmp(t.x, t3.x, sizeof(float) * 15 * F) != 0);
    ds_dataset_free(&t), ds_dataset_free(&v), ds_dataset_free(&t2), ds_dataset_free(&v2);
    ds_dataset_free(&t3), ds_dataset_free(&v3);
    CHECK(ds_dataset_split(&d, 0, 1, &t, &v) == -1 && err_has("split 0", "between 0 and 1"));
    CHECK(ds_dataset_split(&d, 1.0f, 1, &t, &v) == -1 && t.x == NULL && v.x == NULL);
    CHECK(ds_dataset_split(&d, 0.01f, 1, &t, &v) == -1 && err_has("leaves 20", "0 for validation"));
}

/* issue 12: one finite 3e38 pixel over a std below 1 once became +Inf (then
 * NaN outputs and a hang in the metrics); now an error naming the value.
 * A mismatched norm is an error, not a silent no-op. */
static void test_norm_overflow(void)
{
    float x[2 * 4] = {0, 1, 2, 3, 4, 3e38f, 6, 7}, y[2] = {0}, mean = 1, sd = 0.5f;
    ds_dataset d = {.n = 2, .sample = ds_shape_of(3, 1, 2, 2), .x = x, .y = y};
    ds_norm nm = {1, &mean, &sd};
    CHECK(ds_norm_apply(&nm, &d) == -1 && err_has("sample 1, element 1", "beyond float range"));
    CHECK(x[0] == 0 && x[4] == 4); /* unchanged */
    float mean2[2] = {0, 0}, sd2[2] = {1, 1};
    ds_norm two = {2, mean2, sd2};
    x[5] = 5;
    CHECK(ds_norm_apply(&two, &d) == -1 && err_has("2 channels", "samples 1"));
    ds_norm none = {0};
    CHECK(ds_norm_apply(&none, &d) == 0 && x[5] == 5);
    CHECK(ds_norm_apply(&nm, &d) == 0 && x[0] == -2 && x[5] == 8);
}

static void test_norm(void)
{
    enum { n = 50, C = 2, HW = 9 };
    float x[n * C * HW], y[n] = {0};
    ds_rng r;
    ds_rng_seed(&r, 3);
    for (int i = 0; i < n; i++)
        for (int c = 0; c < C; c++)
            for (int j = 0; j < HW; j++) x[(i * C + c) * HW + j] = c ? 100 + 5 * ds_rng_normal(&r) : ds_rng_uniform(&r);
    ds_dataset img = {.n = n, .sample = ds_shape_of(3, C, 3, 3), .x = x, .y = y};
    ds_norm nm;
    CHECK(ds_norm_compute(&img, &nm) == 0 && nm.channels == C);
    CHECK_NEAR(nm.mean[0], 0.5, 0.1);
    CHECK_NEAR(nm.mean[1], 100, 1.5);
    CHECK_NEAR(nm.std[1], 5, 1);
    ds_norm_apply(&nm, &img);
    ds_norm_free(&nm);
    CHECK(ds_norm_compute(&img, &nm) == 0);
    for (int c = 0; c < C; c++) {
        CHECK_NEAR(nm.mean[c], 0, 1e-5);
        CHECK_NEAR(nm.std[c], 1, 1e-5);
    }
    ds_norm_free(&nm);

    /* tables: per feature; a constant feature gets scale 1 (scikit-learn's rule), not a tiny floor */
    float t[6 * 3];
    for (int i = 0; i < 6; i++) t[3 * i] = (float)i, t[3 * i + 1] = 7, t[3 * i + 2] = (float)(i * i);
    ds_dataset tab = {.n = 6, .sample = ds_shape_of(1, 3), .x = t, .y = y};
    CHECK(ds_norm_compute(&tab, &nm) == 0 && nm.channels == 3);
    CHECK_NEAR(nm.mean[0], 2.5, 1e-6);
    CHECK_NEAR(nm.std[0], sqrt(17.5 / 6), 1e-6);
    CHECK(nm.mean[1] == 7 && nm.std[1] == 1);
    ds_norm_apply(&nm, &tab);
    CHECK(t[1] == 0 && t[16] == 0 && isfinite(t[2]));
    ds_norm_free(&nm);
    CHECK(ds_norm_compute(&tab, &nm) == 0);
    CHECK_NEAR(nm.mean[2], 0, 1e-6);
    CHECK_NEAR(nm.std[2], 1, 1e-5);
    ds_norm_free(&nm);
    /* issue 12 item 2: a pixel always 0 in training and 1 at test time stays 1
     * (a 1e-6 floor made it 10^6 and swamped every other input) */
    float pix[4 * 2] = {0, 1, 0, 2, 0, 3, 0, 4}, test[2] = {1, 2.5f};
    ds_dataset tr = {.n = 4, .sample = ds_shape_of(1, 2), .x = pix, .y = y};
    ds_dataset te = {.n = 1, .sample = ds_shape_of(1, 2), .x = test, .y = y};
    CHECK(ds_norm_compute(&tr, &nm) == 0 && nm.std[0] == 1 && nm.mean[0] == 0);
    ds_norm_apply(&nm, &te);
    CHECK(test[0] == 1 && test[1] == 0);
    ds_norm_free(&nm);
    /* round-off-level spread of a constant column counts as constant too */
    float c3[3] = {0.1f, 0.1f, 0.1f};
    ds_dataset cc = {.n = 3, .sample = ds_shape_of(1, 1), .x = c3, .y = y};
    CHECK(ds_norm_compute(&cc, &nm) == 0 && nm.std[0] == 1);
    ds_norm_free(&nm);
    tab.n = 0;
    CHECK(ds_norm_compute(&tab, &nm) == -1 && err_has("normalisation", "empty"));
}

int main(void)
{
    if (!(tmp = ds_test_tmpdir())) return 1;
    test_npy();
    test_csv();
    test_csv_options();
    test_folder();
    test_fits();
    test_norm_overflow();
    test_fits_gzip_claim();
    test_png_chunks();
    test_spec();
    test_finite_and_split();
    test_norm();
    /* augmentation: every served sample is one of the 8 symmetries of a
     * training image, all 8 turn up, and the same seed serves the same */
    {
        float px[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, lab = 0, got[9], ly;
        ds_dataset d1 = {.n = 1, .sample = ds_shape_of(3, 1, 3, 3), .classes = 1, .x = px, .y = &lab};
        ds_loader *a = ds_loader_new(&d1, 1, 1, 5), *b = ds_loader_new(&d1, 1, 1, 5);
        CHECK(ds_loader_set_augment(a, DS_AUG_FLIP | DS_AUG_ROT90) == 0);
        CHECK(ds_loader_set_augment(b, DS_AUG_FLIP | DS_AUG_ROT90) == 0);
        int seen[8] = {0}, same = 1;
        for (int e = 0; e < 64; e++) {
            float g2[9];
            ds_loader_reset(a), ds_loader_reset(b);
            CHECK(ds_loader_next(a, got, &ly) == 1 && ds_loader_next(b, g2, &ly) == 1);
            same &= memcmp(got, g2, sizeof got) == 0;
            /* which symmetry: the corners say it */
            int code = -1;
            for (int c = 0; c < 8; c++) {
                float t[9];
                for (int y = 0; y < 3; y++)
                    for (int x = 0; x < 3; x++) {
                        int sx = c & 1 ? 2 - x : x, sy = c & 2 ? 2 - y : y;
                        t[y * 3 + x] = c & 4 ? px[sx * 3 + sy] : px[sy * 3 + sx];
                    }
                if (!memcmp(t, got, sizeof t)) code = c;
            }
            CHECK(code >= 0);
            if (code >= 0) seen[code]++;
        }
        CHECK(same);
        int all = 1;
        for (int c = 0; c < 8; c++) all &= seen[c] > 0;
        CHECK(all);
        float rect[6] = {0};
        ds_dataset d2 = {.n = 1, .sample = ds_shape_of(3, 1, 2, 3), .classes = 1, .x = rect, .y = &lab};
        ds_loader *c2 = ds_loader_new(&d2, 1, 1, 1);
        CHECK(ds_loader_set_augment(c2, DS_AUG_ROT90) != 0 && strstr(ds_last_error(), "square"));
        CHECK(ds_loader_set_augment(c2, DS_AUG_FLIP) == 0);
        ds_loader_free(a), ds_loader_free(b), ds_loader_free(c2);
    }
    return ds_test_summary("data");
}
