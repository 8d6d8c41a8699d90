/* cmd_simulate.c — `deepsky simulate`: labelled survey stamps (real
 * asteroids and bogus detections, src/data/sim.c) as NPY arrays and a CSV
 * of what went into each. */
#include "cli.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

int cmd_simulate(int argc, char **argv)
{
    ds_sim_cfg c = {.n = 2000, .size = 45, .channels = 1, .real_fraction = 0.0773f, .seed = 1};
    const char *out = NULL;
    for (int i = 1; i < argc; i++) {
        const char *v;
        int iv;
        if (cli_opt(argc, argv, &i, "--out", &out)) {
            if (!out || !*out) return cli_error("--out needs a value");
        } else if (cli_opt(argc, argv, &i, "--n", &v)) {
            if (cli_parse_int("--n", v, 1, 10000000, &c.n)) return 1;
        } else if (cli_opt(argc, argv, &i, "--size", &v)) {
            if (cli_parse_int("--size", v, 8, 512, &c.size)) return 1;
        } else if (cli_opt(argc, argv, &i, "--channels", &v)) {
            if (cli_parse_int("--channels", v, 1, 3, &c.channels)) return 1;
            if (c.channels == 2) return cli_error("--channels: 1 (difference) or 3 (science, reference, difference)");
        } else if (cli_opt(argc, argv, &i, "--real-fraction", &v)) {
            if (cli_parse_float("--real-fraction", v, 0.0, 1.0, &c.real_fraction)) return 1;
        } else if (cli_opt(argc, argv, &i, "--seed", &v)) {
            if (cli_parse_int("--seed", v, 0, INT_MAX, &iv)) return 1;
            c.seed = (uint64_t)iv;
        } else {
            return cli_error("simulate: unknown option '%s' (see deepsky simulate --help)", argv[i]);
        }
    }
    if (!out) return cli_error("simulate: --out DIR is required");
    size_t bytes = (size_t)c.n * c.channels * c.size * c.size * sizeof(float);
    if (bytes > ((size_t)8 << 30))
        return cli_error("simulate: %d stamps of %dx%dx%d are %.1f GB; make fewer", c.n, c.channels, c.size, c.size,
                         bytes / 1e9);
    ds_dataset d;
    ds_sim_meta *m = NULL;
    if (ds_sim_dataset(&c, &d, &m) != 0) return cli_lib_error(NULL);
    int rc = 1;
    char path[PATH_MAX];
    FILE *f = NULL;
    if (cli_mkdirs(out) != 0) goto done;
    snprintf(path, sizeof path, "%s/x.npy", out);
    if (ds_npy_write(path, ds_shape_of(4, c.n, c.channels, c.size, c.size), d.x) != 0) {
        cli_lib_error(NULL);
        goto done;
    }
    snprintf(path, sizeof path, "%s/y.npy", out);
    if (ds_npy_write(path, ds_shape_of(1, c.n), d.y) != 0) {
        cli_lib_error(NULL);
        goto done;
    }
    /* FITS cubes as well: the difference images, and science and reference with three channels */
    {
        const char *const keys[] = {"NSTAMPS", "NREAL", "STAMPSZ", "SIMSEED", "CHANNEL"};
        const char *const planes[] = {"science", "reference", "difference"};
        long real = 0;
        for (int i = 0; i < c.n; i++) real += m[i].label;
        size_t per = (size_t)c.size * c.size;
        float *cube = malloc(sizeof(float) * per * (size_t)c.n);
        if (!cube) {
            cli_error("out of memory");
            goto done;
        }
        for (int ch = 3 - c.channels; ch < 3; ch++) {
            int src = c.channels == 1 ? 0 : ch;
            for (int i = 0; i < c.n; i++)
                memcpy(cube + per * (size_t)i, d.x + per * ((size_t)i * c.channels + src), sizeof(float) * per);
            long vals[] = {c.n, real, c.size, (long)c.seed, ch};
            snprintf(path, sizeof path, "%s/%s.fits", out, planes[ch]);
            if (ds_fits_write_cube(path, c.n, c.size, c.size, cube, keys, vals, 5) != 0) {
                free(cube);
                cli_lib_error(NULL);
                goto done;
            }
        }
        free(cube);
    }
    snprintf(path, sizeof path, "%s/labels.csv", out);
    if (!(f = fopen(path, "w"))) {
        cli_error("%s: cannot write", path);
        goto done;
    }
    fprintf(f, "index,label,kind,snr,length,angle,fwhm,sky,read_noise,flux\n");
    int real = 0, count[DS_SIM_KINDS] = {0};
    for (int i = 0; i < c.n; i++) {
        fprintf(f, "%d,%d,%s,%.4g,%.4g,%.4g,%.4g,%.4g,%.4g,%.6g\n", i, m[i].label, ds_sim_kind_name(m[i].kind),
                m[i].snr, m[i].length, m[i].angle, m[i].fwhm, m[i].sky, m[i].read_noise, m[i].flux);
        real += m[i].label;
        count[m[i].kind]++;
    }
    if (fclose(f) != 0) {
        f = NULL;
        cli_error("%s: write failed", path);
        goto done;
    }
    f = NULL;
    printf("%d stamps of %dx%d (%s) in %s: %d real, %d bogus (", c.n, c.size, c.size,
           c.channels == 1 ? "difference" : "science, reference, difference", out, real, c.n - real);
    for (int k = 1, first = 1; k < DS_SIM_KINDS; k++)
        if (count[k]) printf("%s%d %s", first ? "" : ", ", count[k], ds_sim_kind_name(k)), first = 0;
    printf(")\ntrain on them: --data npy:%s/x.npy,%s/y.npy (or fits:%s/difference.fits,labels=%s/y.npy)\n", out,
           out, out, out);
    rc = 0;
done:
    if (f) fclose(f);
    free(m);
    ds_dataset_free(&d);
    return rc;
}
