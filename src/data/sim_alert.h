/* sim_alert.h — what the stamp simulator (sim.c) tells the alert-metadata
 * model (sim_alert.c) about one stamp: the truth a pipeline would look up or
 * estimate, and the mask of flagged pixels. Private to src/data. */
#ifndef DS_SIM_ALERT_H
#define DS_SIM_ALERT_H

#include "internal.h"

typedef struct sim_truth {
    int kind, size;
    double cx, cy;                /* the simulated source position (pixel centres at k + 0.5) */
    double fwhm, sky, read, sig_sci, sig_diff;
    double snr, length, flux;     /* a real asteroid's injected S/N, trail length [px], total flux [e-] */
    int nstars;
    double star[2][3];            /* the static field stars: x, y, flux */
    int on_star;                  /* the artifact sits on a star (dipole, saturated, spikes) ... */
    double star_x, star_y, star_f; /* ... at this reference position, of this flux */
    const unsigned char *mask;    /* [size²]: 1 flagged in the pipeline's mask */
} sim_truth;

/* The alert metadata of one stamp: measured on its difference image diff
 * [size²], looked up from t with scatter drawn from r (the stamp's second
 * stream, docs/simulator.md). */
void ds_sim_alert_make(ds_rng *r, const sim_truth *t, const float *diff, ds_sim_alert *a);

#endif
