/* cmd_simulate.c — `deepsky simulate`: labelled survey stamps (real
 * asteroids and bogus detections, src/data/sim.c) as NPY arrays, FITS
 * cubes, optionally one FITS cutout per stamp with its parameters in the
 * header, a CSV of what went into each (labels.csv) and one of the alert
 * metadata a survey pipeline would record for each (meta.csv). */
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void shard_tick(void *arg, long done, long total)
{
    (void)total;
    cli_progress_update(arg, done, NULL);
}

/* --force on a folder holding a sharded set: its index first (so a set is
 * never indexed with shards missing), then our shard files. */
static int remove_shards(const char *dir, int *removed)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/index.json", dir);
    if (unlink(p) == 0) ++*removed;
    else if (errno != ENOENT) return cli_error("%s: cannot remove: %s", p, strerror(errno));
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *e;
    int rc = 0;
    while (!rc && (e = readdir(d)))
        if (!fnmatch("shard-[0-9]*.[xy].npy", e->d_name, 0) || !fnmatch("shard-[0-9]*.[xy].npy.tmp*", e->d_name, 0) ||
            !fnmatch("index.json.tmp*", e->d_name, 0)) {
            if (cli_path(p, sizeof p, "%s/%s", dir, e->d_name)) continue;
            if (unlink(p) == 0) ++*removed;
            else rc = cli_error("%s: cannot remove: %s", p, strerror(errno));
        }
    closedir(d);
    return rc;
}

/* --shards SIZE: DIR/index.json and its shards, written shard by shard */
static int simulate_shards(const ds_sim_cfg *c, const char *out, int shard_size, int force)
{
    int removed = 0;
    if (force && remove_shards(out, &removed)) return 1;
    if (ds_sim_out_prepare(out, force, &removed) != 0) return cli_lib_error("simulate");
    if (cli_mkdirs(out) != 0) return 1;
    cli_progress p;
    cli_progress_start(&p, "simulating", c->n, 0);
    snprintf(p.unit, sizeof p.unit, "stamps");
    int rc = ds_sim_shards(c, out, shard_size, p.on ? shard_tick : NULL, &p);
    cli_progress_end(&p);
    if (rc) return cli_lib_error(NULL);
    ds_shards *s = ds_shards_open(out);
    if (!s) return cli_lib_error(NULL);
    int64_t count[2] = {0, 0};
    ds_shards_class_counts(s, count);
    double bytes = (double)c->n * c->channels * c->size * c->size * sizeof(float);
    printf("%d stamps of %dx%d (%s) in %s: %lld real, %lld bogus, in %d shards of up to %d (%.2f GB)\n", c->n,
           c->size, c->size, c->channels == 1 ? "difference" : "science, reference, difference", out,
           (long long)count[1], (long long)count[0], (c->n + shard_size - 1) / shard_size, shard_size, bytes / 1e9);
    printf("train on them (streamed shard by shard): --data %s; the index: %s/index.json (docs/data.md)\n", out, out);
    ds_shards_close(s);
    return 0;
}

static int cmd_simulate(int argc, char **argv)
{
    ds_sim_cfg c = {.n = 2000, .size = 45, .channels = 1, .real_fraction = 0.0773f, .seed = DS_SIM_DEFAULT_SEED};
    const char *out = NULL;
    int cutouts = 0, force = 0, removed = 0, footprint = 0, shards = 0;
    for (int i = 1; i < argc; i++) {
        const char *v;
        int iv;
        if (cli_opt(argc, argv, &i, "--out", &out)) {
            if (!out || !*out) return cli_usage("--out needs a value");
        } else if (cli_opt(argc, argv, &i, "--n", &v)) {
            if (cli_parse_int("--n", v, 1, 10000000, &c.n)) return 1;
        } else if (cli_opt(argc, argv, &i, "--size", &v)) {
            if (cli_parse_int("--size", v, 8, 512, &c.size)) return 1;
        } else if (cli_opt(argc, argv, &i, "--channels", &v)) {
            if (cli_parse_int("--channels", v, 1, 3, &c.channels)) return 1;
            if (c.channels == 2) return cli_usage("--channels: 1 (difference) or 3 (science, reference, difference)");
        } else if (cli_opt(argc, argv, &i, "--real-fraction", &v)) {
            if (cli_parse_float("--real-fraction", v, 0.0, 1.0, &c.real_fraction)) return 1;
        } else if (cli_opt(argc, argv, &i, "--shards", &v)) {
            if (cli_parse_int("--shards", v, 1, 10000000, &shards)) return 1;
        } else if (!strcmp(argv[i], "--cutouts")) {
            cutouts = 1;
        } else if (!strcmp(argv[i], "--footprint")) {
            footprint = 1;
        } else if (!strcmp(argv[i], "--force")) {
            force = 1;
        } else if (cli_opt(argc, argv, &i, "--seed", &v)) {
            if (cli_parse_int("--seed", v, 0, INT_MAX, &iv)) return 1;
            c.seed = (uint64_t)iv;
        } else {
            return cli_usage("simulate: unknown option '%s' (see deepsky simulate --help)", argv[i]);
        }
    }
    if (!out) return cli_usage("simulate: --out DIR is required");
    if (cli_check_out_dir("--out", out) != 0) return 2;
    if (shards && (cutouts || footprint))
        return cli_usage("simulate: --shards writes only the sharded set; --%s needs the whole set in memory",
                         cutouts ? "cutouts" : "footprint");
    if (shards) return simulate_shards(&c, out, shards, force);
    size_t bytes = (size_t)c.n * c.channels * c.size * c.size * sizeof(float);
    if (bytes > ((size_t)8 << 30))
        return cli_error("simulate: %d stamps of %dx%dx%d are %.1f GB; make fewer", c.n, c.channels, c.size, c.size,
                         bytes / 1e9);
    if (ds_sim_out_prepare(out, force, &removed) != 0) return cli_lib_error("simulate");
    ds_dataset d;
    ds_sim_meta *m = NULL;
    if (cli_sim_dataset_progress(&c, &d, &m) != 0) return cli_lib_error(NULL); /* a progress line on a terminal */
    int rc = 1;
    char path[PATH_MAX];
    ds_atomic f = {0};
    cli_progress cp = {0}; /* writing the cutouts */
    if (cli_mkdirs(out) != 0) goto done;
    {
        /* temporary files of a killed run (ours only: these names with ds_atomic_open's suffix) */
        const char *ours[] = {"x.npy", "y.npy", "y.csv", "*.fits", "labels.csv", "meta.csv", "footprint.npy"},
                   *cut[] = {"*.fits"};
        ds_atomic_clean(out, ours, 7);
        for (int k = 0; k < 2; k++)
            if (!cli_path(path, sizeof path, "%s/cutouts/%s", out, k ? "real" : "bogus")) ds_atomic_clean(path, cut, 1);
    }
    snprintf(path, sizeof path, "%s/x.npy", out);
    if (ds_npy_write(path, ds_shape_of(4, c.n, c.channels, c.size, c.size), d.x) != 0) {
        cli_lib_error(NULL);
        goto done;
    }
    /* provenance.json: which stamps x.npy holds (the FITS files carry it in their headers) */
    if (ds_provenance_sidecar_add(out, "x.npy", c.seed, c.size, c.channels, 0, c.n) != 0) {
        cli_lib_error(NULL);
        goto done;
    }
    /* where each stamp's source is (the pointing game of deepsky explain --footprint) */
    if (footprint) {
        float *fp = malloc(sizeof(float) * (size_t)c.n * c.size * c.size);
        if (!fp) {
            cli_error("out of memory for %d footprints", c.n);
            goto done;
        }
        snprintf(path, sizeof path, "%s/footprint.npy", out);
        int bad = ds_sim_footprints(&c, fp) != 0 || ds_npy_write(path, ds_shape_of(3, c.n, c.size, c.size), fp) != 0 ||
                  ds_provenance_sidecar_add(out, "footprint.npy", c.seed, c.size, 1, 0, c.n) != 0;
        free(fp);
        if (bad) {
            cli_lib_error(NULL);
            goto done;
        }
    }
    snprintf(path, sizeof path, "%s/y.npy", out);
    if (ds_npy_write(path, ds_shape_of(1, c.n), d.y) != 0) {
        cli_lib_error(NULL);
        goto done;
    }
    /* the labels by name as well (a labels file: header, one column), so that a model trained on
     * npy:x.npy,y.csv keeps the class names; sorted, bogus is class 0 and real class 1 as in y.npy */
    snprintf(path, sizeof path, "%s/y.csv", out);
    if (ds_labels_write_csv(path, &d) != 0) {
        cli_lib_error(NULL);
        goto done;
    }
    /* FITS cubes as well: the difference images, and science and reference with three channels */
    {
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
            ds_fits_key keys[] = {
                {"NSTAMPS", 'i', c.n, NULL, "stamps in this cube"},
                {"NREAL", 'i', (double)real, NULL, "of them real asteroids (labels.csv, y.npy)"},
                {"STAMPSZ", 'i', c.size, NULL, "pixels per side"},
                {"SIMSEED", 'i', (double)c.seed, NULL, "deepsky simulate --seed"},
                {"CHANNEL", 'i', ch, NULL, "0 science, 1 reference, 2 difference"},
                {"PLANE", 's', 0, planes[ch], NULL},
                {"BUNIT", 's', 0, "electron", "sky-subtracted"},
            };
            snprintf(path, sizeof path, "%s/%s.fits", out, planes[ch]);
            if (ds_fits_write(path, 3, (int[]){c.n, c.size, c.size}, cube, keys, 7) != 0) {
                free(cube);
                cli_lib_error(NULL);
                goto done;
            }
            snprintf(path, sizeof path, "%s.fits", planes[ch]);
            if (ds_provenance_sidecar_add(out, path, c.seed, c.size, 1, 0, c.n) != 0) {
                free(cube);
                cli_lib_error(NULL);
                goto done;
            }
        }
        free(cube);
    }
    /* one FITS file per stamp, in class folders (fits:DIR/cutouts reads them back) */
    if (cutouts) {
        char dir[PATH_MAX];
        for (int k = 0; k < 2; k++) {
            snprintf(dir, sizeof dir, "%s/cutouts/%s", out, k ? "real" : "bogus");
            if (cli_mkdirs(dir) != 0) goto done;
        }
        int digits = 6;
        for (long t = 1000000; t < c.n; t *= 10) digits++;
        size_t per = (size_t)c.channels * c.size * c.size;
        int na = ds_sim_alert_columns();
        cli_progress_start(&cp, "cutouts", c.n, 0);
        for (int i = 0; i < c.n; i++) {
            cli_progress_update(&cp, i + 1, NULL);
            const ds_sim_meta *s = &m[i];
            ds_fits_key keys[16 + 64] = {
                {"CLASS", 's', 0, s->label ? "real" : "bogus", "real asteroid or bogus detection"},
                {"LABEL", 'i', s->label, NULL, "1 real, 0 bogus"},
                {"KIND", 's', 0, ds_sim_kind_name(s->kind), "what was simulated (docs/simulator.md)"},
                {"SNR", 'f', s->snr, NULL, "matched-filter S/N (real)"},
                {"TRAILLEN", 'f', s->length, NULL, "[pix] trail length"},
                {"TRAILANG", 'f', s->angle, NULL, "[deg] trail angle"},
                {"FWHM", 'f', s->fwhm, NULL, "[pix] PSF FWHM"},
                {"SKY", 'f', s->sky, NULL, "[e-/pix] sky level"},
                {"RDNOISE", 'f', s->read_noise, NULL, "[e-] read noise"},
                {"FLUX", 'f', s->flux, NULL, "[e-] source flux"},
                {"SIMSEED", 'i', (double)c.seed, NULL, "deepsky simulate --seed"},
                {"SIMINDEX", 'i', i, NULL, "row in labels.csv and x.npy"},
                {"BUNIT", 's', 0, "electron", "sky-subtracted"},
                {"PLANE1", 's', 0, c.channels == 1 ? "difference" : "science", NULL},
                {"PLANE2", 's', 0, "reference", NULL},
                {"PLANE3", 's', 0, "difference", NULL},
            };
            if (snprintf(path, sizeof path, "%s/cutouts/%s/%0*d.fits", out, s->label ? "real" : "bogus",
                         digits & 15, i) >= (int)sizeof path) {
                cli_error("%s: path too long", out);
                goto done;
            }
            /* the alert metadata after the simulator's own keys (meta.csv's columns; docs/cli.md lists the keywords) */
            int nk = c.channels == 1 ? 14 : 16;
            static const char *const bands[3] = {"g", "r", "i"};
            for (int k = 0; k < na && k < 64; k++) {
                char type;
                const char *key, *name = ds_sim_alert_column(k, &key, &type);
                double v = ds_sim_alert_value(&s->alert, k);
                keys[nk++] = (ds_fits_key){key, type, v, type == 's' ? bands[(int)v] : NULL, name};
            }
            int rc = c.channels == 1
                         ? ds_fits_write(path, 2, (int[]){c.size, c.size}, d.x + per * i, keys, nk)
                         : ds_fits_write(path, 3, (int[]){c.channels, c.size, c.size}, d.x + per * i, keys, nk);
            if (rc != 0) {
                cli_lib_error(NULL);
                goto done;
            }
        }
        cli_progress_end(&cp);
    }
    snprintf(path, sizeof path, "%s/labels.csv", out);
    if (ds_atomic_open(&f, path) != 0) {
        cli_lib_error(NULL);
        goto done;
    }
    fprintf(f.f, "index,label,kind,snr,length,angle,fwhm,sky,read_noise,flux\n");
    int real = 0, count[DS_SIM_KINDS] = {0};
    for (int i = 0; i < c.n; i++) {
        fprintf(f.f, "%d,%d,%s,%.4g,%.4g,%.4g,%.4g,%.4g,%.4g,%.6g\n", i, m[i].label, ds_sim_kind_name(m[i].kind),
                m[i].snr, m[i].length, m[i].angle, m[i].fwhm, m[i].sky, m[i].read_noise, m[i].flux);
        real += m[i].label;
        count[m[i].kind]++;
    }
    if (ds_atomic_commit(&f) != 0) { /* checks every write */
        cli_lib_error(NULL);
        goto done;
    }
    /* the alert metadata, one row per stamp in the same order (docs/simulator.md) */
    snprintf(path, sizeof path, "%s/meta.csv", out);
    if (ds_sim_alert_write_csv(path, m, c.n, 0) != 0 ||
        ds_provenance_sidecar_add(out, "meta.csv", c.seed, c.size, c.channels, 0, c.n) != 0) {
        cli_lib_error(NULL);
        goto done;
    }
    printf("%d stamps of %dx%d (%s) in %s: %d real, %d bogus (", c.n, c.size, c.size,
           c.channels == 1 ? "difference" : "science, reference, difference", out, real, c.n - real);
    for (int k = 1, first = 1; k < DS_SIM_KINDS; k++)
        if (count[k]) printf("%s%d %s", first ? "" : ", ", count[k], ds_sim_kind_name(k)), first = 0;
    printf(")\ntrain on them: --data npy:%s/x.npy,%s/y.csv (or fits:%s/difference.fits,labels=%s/y.csv)\n", out,
           out, out, out);
    printf("alert metadata, one row per stamp: %s/meta.csv (columns: docs/simulator.md)\n", out);
    if (footprint) printf("each stamp's source pixels (1) and the rest (0): %s/footprint.npy\n", out);
    if (cutouts)
        printf("one FITS cutout per stamp: %s/cutouts/{real,bogus}/ (--data fits:%s/cutouts%s)\n", out, out,
               c.channels == 1 ? "" : ",channels=3");
    rc = 0;
done:
    cli_progress_end(&cp);
    if (f.path) ds_atomic_abort(&f);
    free(m);
    ds_dataset_free(&d);
    return rc;
}

/* `deepsky simulate`: its help (deepsky simulate --help) and its registration in deepsky.c */
const cli_command cli_cmd_simulate = {
    "simulate",
    cmd_simulate,
    "simulated survey stamps: real asteroids and bogus detections",
    "usage: deepsky simulate --out DIR [--n N] [--size S] [--channels 1|3] [--real-fraction F] [--seed N]\n"
    "                        [--cutouts] [--footprint] [--shards SIZE] [--force]\n"
    "\n"
    "  --n N              stamps (default 2000)\n"
    "  --size S           pixels per side (default 45)\n"
    "  --channels C       1: the difference image (default); 3: science, reference, difference\n"
    "  --real-fraction F  share of real asteroids (default 0.0773, the course's 1,681 of 21,753)\n"
    "  --seed N           the same seed gives the same stamps (default 4242; the demo trains on 1)\n"
    "  --cutouts          also one FITS file per stamp, DIR/cutouts/{real,bogus}/NNNNNN.fits,\n"
    "                     its class, kind, S/N, trail, FWHM and sky in the header\n"
    "  --footprint        also DIR/footprint.npy [n, S, S] float32: 1 on the pixels of each stamp's\n"
    "                     source (the trail; a bogus stamp's artefact), 0 elsewhere (docs/simulator.md)\n"
    "  --shards SIZE      write a sharded data set instead, of any size: DIR/index.json and\n"
    "                     DIR/shard-NNNNNN.{x,y}.npy of SIZE stamps each, simulated and written\n"
    "                     shard by shard (memory: one shard); the same stamps as without it\n"
    "                     (docs/data.md); training streams it: --data DIR\n"
    "  --force            DIR may hold files: remove simulate's own there first (else refused)\n"
    "\n"
    "Writes DIR/x.npy [n, C, S, S] (electrons, sky-subtracted), DIR/y.npy (1 real,\n"
    "0 bogus), DIR/y.csv (the same by name: train on npy:DIR/x.npy,DIR/y.csv and the\n"
    "model keeps the names bogus/real), DIR/labels.csv (kind, S/N, trail length and\n"
    "angle, FWHM, sky, ...), FITS cubes DIR/difference.fits (and science.fits,\n"
    "reference.fits with 3 channels), and DIR/provenance.json (seed and stamp range\n"
    "of each file, by hash).\n"
    "The model and its parameter ranges: docs/simulator.md.\n",
    NULL,
};
