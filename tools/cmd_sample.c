/* cmd_sample.c — `deepsky sample CKPT --n N [--class C] --out FILE`: samples
 * of a trained GAN's generator (eval mode: batch norm's running
 * statistics), in the training data's units (the checkpoint's scale
 * inverted), as NPY [N, C, H, W] or a FITS cube; a conditional GAN's class
 * is --class C for all, or drawn uniformly (--classes-out saves them). */
#include "cli.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

static int ends_with(const char *s, const char *t)
{
    size_t n = strlen(s), k = strlen(t);
    return n >= k && !strcmp(s + n - k, t);
}

static int run_sample(int argc, char **argv)
{
    const char *ckpt = NULL, *out = NULL, *grid = NULL, *classes_out = NULL, *zfile = NULL, *v;
    int n = 0, cls = -1, seed = 1, by_class = 0, zlatent = 0;
    for (int i = 1; i < argc; i++) {
        if (cli_opt(argc, argv, &i, "--out", &out) || cli_opt(argc, argv, &i, "--grid", &grid) ||
            cli_opt(argc, argv, &i, "--classes-out", &classes_out) || cli_opt(argc, argv, &i, "--z", &zfile))
            continue;
        if (cli_opt(argc, argv, &i, "--n", &v)) {
            if (cli_parse_int("--n", v, 1, 10000000, &n)) return 2;
        } else if (cli_opt(argc, argv, &i, "--class", &v)) {
            if (cli_parse_int("--class", v, 0, 1 << 20, &cls)) return 2;
        } else if (cli_opt(argc, argv, &i, "--seed", &v)) {
            if (cli_parse_int("--seed", v, 0, INT_MAX, &seed)) return 2;
        } else if (!strcmp(argv[i], "--by-class")) {
            by_class = 1;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return cli_usage("sample: unknown option %s (see deepsky sample --help)", argv[i]);
        } else if (!ckpt) {
            ckpt = argv[i];
        } else {
            return cli_usage("sample: one checkpoint only (got %s and %s)", ckpt, argv[i]);
        }
    }
    if (!ckpt) return cli_usage("sample: give a GAN checkpoint (deepsky gan's DIR/last.safetensors)");
    if (!n && !zfile) return cli_usage("sample: --n N (or --z Z.npy) is required");
    if (!out) return cli_usage("sample: --out FILE.npy or FILE.fits is required");
    int fits = ends_with(out, ".fits") || ends_with(out, ".fit") || ends_with(out, ".fts");
    if (!fits && !ends_with(out, ".npy")) return cli_usage("sample: --out %s: name it .npy or .fits", out);
    float *z = NULL; /* --z: the latent vectors given, --n their count */
    if (zfile) {
        int nd, dims[DS_MAX_DIMS];
        if (ds_npy_read(zfile, &z, &nd, dims)) return cli_lib_error(NULL);
        if (nd != 2 || (n && n != dims[0])) {
            free(z);
            return cli_usage("sample: --z %s: want [N, latent]%s", zfile, n && nd == 2 ? " with N = --n" : "");
        }
        n = dims[0];
        zlatent = dims[1];
    }
    ds_checkpoint *ck = ds_checkpoint_open(ckpt);
    if (!ck) {
        free(z);
        return cli_lib_error(NULL);
    }
    int rc = 1;
    ds_gan_model *m = NULL;
    ds_gan *g = NULL;
    float *x = NULL, *c = NULL;
    const char *text = ds_checkpoint_model_text(ck);
    if (!text || !ds_model_text_is_gan(text)) {
        rc = cli_error("%s: not a GAN checkpoint (deepsky gan writes those)", ckpt);
        goto done;
    }
    if (!(m = ds_gan_model_parse(text, ckpt))) goto lib_fail;
    const ds_gan_cfg *gc = ds_gan_model_cfg(m);
    if (cls >= 0 && !gc->conditional) {
        rc = cli_usage("sample: --class: %s is an unconditional GAN (it takes no class)", ckpt);
        goto done;
    }
    if (by_class && (!gc->conditional || cls >= 0)) {
        rc = cli_usage("sample: --by-class needs a conditional GAN and no --class");
        goto done;
    }
    if (cls >= gc->classes && gc->conditional) {
        rc = cli_usage("sample: --class %d: the GAN has classes 0..%d", cls, gc->classes - 1);
        goto done;
    }
    int batch = n < 256 ? n : 256;
    if (!(g = ds_gan_new(m, batch, 1)) || ds_gan_restore(g, ck, NULL)) goto lib_fail;
    ds_shape s = ds_gan_model_sample_shape(m);
    size_t per = ds_shape_numel(s);
    x = malloc((size_t)n * per * sizeof *x);
    c = malloc((size_t)n * sizeof *c);
    if (!x || !c) {
        rc = cli_error("out of memory");
        goto done;
    }
    ds_rng rng;
    ds_rng_seed(&rng, (uint64_t)seed);
    for (int i = 0; i < n; i++)
        c[i] = !gc->conditional ? 0
               : cls >= 0       ? (float)cls
               : by_class       ? (float)(i % gc->classes)
                                : (float)ds_rng_below(&rng, (uint32_t)gc->classes);
    if (z && zlatent != gc->latent) {
        rc = cli_usage("sample: --z %s: %d values per row, the generator's latent has %d", zfile, zlatent, gc->latent);
        goto done;
    }
    if (ds_gan_generate(g, n, z, gc->conditional ? c : NULL, &rng, ds_gan_get_scale(g), x)) goto lib_fail;
    int C = s.ndim == 3 ? s.d[0] : 1, H = s.ndim == 3 ? s.d[1] : 1, W = s.d[s.ndim - 1];
    if (fits) {
        int dims4[4] = {n, C, H, W}, dims3[3] = {n, H, W};
        ds_fits_key keys[2] = {{.name = "ORIGIN", .type = 's', .text = "deepsky sample"}, {.name = "GANCKPT", .type = 's', .text = ckpt}};
        if (ds_fits_write(out, C > 1 ? 4 : 3, C > 1 ? dims4 : dims3, x, keys, 2)) goto lib_fail;
    } else {
        ds_shape os = {.ndim = s.ndim + 1, .d = {n}};
        for (int k = 0; k < s.ndim; k++) os.d[k + 1] = s.d[k];
        if (ds_npy_write(out, os, x)) goto lib_fail;
    }
    if (classes_out && ds_npy_write(classes_out, ds_shape_of(1, n), c)) goto lib_fail;
    if (grid) {
        int k = n < 256 ? n : 256;
        float *p = malloc((size_t)k * H * W * sizeof *p);
        if (!p) {
            rc = cli_error("out of memory");
            goto done;
        }
        for (int i = 0; i < k; i++) memcpy(p + (size_t)i * H * W, x + (size_t)i * per, (size_t)H * W * sizeof *p);
        /* by class: one column per class; else square. Each tile over its own range */
        int bad = ds_png_grid(grid, p, k, H, W, by_class ? gc->classes : 0, 1);
        free(p);
        if (bad) goto lib_fail;
    }
    printf("wrote %d sample%s of %s to %s", n, n == 1 ? "" : "s", ckpt, out);
    if (gc->conditional) {
        if (cls >= 0) printf(" (class %d)", cls);
        else if (by_class) printf(" (sample i of class i mod %d)", gc->classes);
        else printf(" (classes drawn uniformly%s%s)", classes_out ? "; in " : "", classes_out ? classes_out : "");
    }
    printf("\n");
    rc = 0;
    goto done;
lib_fail:
    rc = cli_lib_error(NULL);
done:
    free(z);
    free(x);
    free(c);
    ds_gan_free(g);
    ds_gan_model_free(m);
    ds_checkpoint_close(ck);
    return rc;
}

const cli_command cli_cmd_sample = {
    "sample", run_sample, "draw samples from a trained GAN (NPY or FITS)",
    "usage: deepsky sample CKPT --n N --out FILE.npy|FILE.fits [options]\n"
    "  --n N            how many samples\n"
    "  --class C        a conditional GAN's class for all of them (default: drawn uniformly)\n"
    "  --by-class       a conditional GAN's classes in turn: sample i is of class i mod C (the grid\n"
    "                   has a column per class)\n"
    "  --seed S         z and the drawn classes (default 1)\n"
    "  --classes-out F  the classes of the samples as NPY [N]\n"
    "  --z Z.npy        the latent vectors [N, latent] to use (N is --n), instead of drawing them\n"
    "  --grid PNG       also a picture of the first 256 (each scaled to its own range)\n"
    "Samples are in the training data's units (the checkpoint's scale inverted), from the\n"
    "generator in eval mode. See docs/gan.md.\n",
    NULL};
