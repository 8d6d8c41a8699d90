/* progress.c — one progress line on a terminal: a bar, the share done,
 * units/s and the whole run's ETA (all epochs, not just the one running),
 * and a few fields the caller formats (loss, accuracy). The line is cut to
 * the terminal's width minus one column, so it never wraps (a wrapped line
 * cannot be redrawn in place with "\r"). Nothing is printed when stderr is
 * not a terminal, so logs and pipes stay clean. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define REDRAW_S 0.1 /* at most ten redraws a second */

static cli_progress *active; /* the line on screen, erased before an error message */

void cli_progress_interrupt(void)
{
    if (active) cli_progress_clear(active);
}

static double mono_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int cli_terminal_width(void)
{
    struct winsize ws;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
    const char *c = getenv("COLUMNS");
    char *end;
    long v = c ? strtol(c, &end, 10) : 0;
    if (c && *c && !*end && v >= 10 && v <= 1000) return (int)v;
    return 80;
}

void cli_progress_start(cli_progress *p, const char *label, long total_units, long done_units)
{
    memset(p, 0, sizeof *p);
    const char *force = getenv("DS_PROGRESS_FORCE"); /* tests: draw into a pipe as if it were a terminal */
    p->on = isatty(STDERR_FILENO) || (force && !strcmp(force, "1"));
    snprintf(p->label, sizeof p->label, "%s", label ? label : "");
    p->total = total_units > 0 ? total_units : 0;
    p->start_done = p->done = done_units > 0 ? done_units : 0;
    p->per_unit = 1;
    p->t0 = mono_now();
    p->last_draw = -1;
    if (p->on) active = p;
}

/* "1:02:03" or "2:03" */
static void hms(char *buf, size_t size, double s)
{
    if (!(s >= 0) || s > 359999) {
        snprintf(buf, size, "--:--");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, size, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, size, "%ld:%02ld", t / 60, t % 60);
}

/* 950, 9.5k, 12k, 1.2M */
static void short_num(char *buf, size_t size, double v)
{
    if (v < 1e3) snprintf(buf, size, "%.0f", v);
    else if (v < 1e4) snprintf(buf, size, "%.1fk", v / 1e3);
    else if (v < 1e6) snprintf(buf, size, "%.0fk", v / 1e3);
    else snprintf(buf, size, "%.1fM", v / 1e6);
}

int cli_progress_format(const cli_progress *p, int width, double now, char *buf, size_t size)
{
    if (size == 0) return 0;
    buf[0] = 0;
    int max = width - 1; /* the last column would make some terminals wrap */
    if (max < 1) return 0;
    if ((size_t)max >= size) max = (int)size - 1;
    double dt = now - p->t0, rate = dt > 0 ? (double)(p->done - p->start_done) / dt : 0;
    char eta[24], r[24], tail[512];
    int finished = p->total && p->done >= p->total;
    hms(eta, sizeof eta, finished ? dt : rate > 0 ? (double)(p->total - p->done) / rate : -1);
    short_num(r, sizeof r, rate * p->per_unit);
    int pct = p->total ? (int)(100.0 * p->done / p->total) : 0;
    /* what is always shown, what goes first when the line is short: fields, then rate, then the bar */
    char core[96];
    snprintf(core, sizeof core, " %3d%% %s %s", pct, finished ? "in" : "ETA", eta); /* finished: the time taken */
    char rate_s[48];
    snprintf(rate_s, sizeof rate_s, " %s %s/s", r, p->unit[0] ? p->unit : "it");
    char fields[sizeof p->fields];
    snprintf(fields, sizeof fields, "%s", p->fields);
    int lw = (int)strlen(p->label), cw = (int)strlen(core), rw = (int)strlen(rate_s), fw = fields[0] ? 1 + (int)strlen(fields) : 0;
    int bar = max - lw - cw - rw - fw - 3; /* " [" + "]" */
    while (bar < 10 && fw) { /* drop the last "name value" pair */
        char *sp = strrchr(fields, ' ');
        if (sp) *sp = 0;
        if (!sp || !(sp = strrchr(fields, ' '))) fields[0] = 0;
        else *sp = 0;
        fw = fields[0] ? 1 + (int)strlen(fields) : 0;
        bar = max - lw - cw - rw - fw - 3;
    }
    if (bar < 10 && rw) rw = 0, bar = max - lw - cw - 3;
    if (bar > 40) bar = 40;
    if (bar < 4) bar = 0;
    int k = 0;
    k += snprintf(buf + k, size - (size_t)k, "%s", p->label);
    if (bar) {
        int fill = p->total ? (int)((double)bar * p->done / p->total) : 0;
        if (fill > bar) fill = bar;
        if (k < (int)size - 1) k += snprintf(buf + k, size - (size_t)k, " [");
        for (int i = 0; i < bar && k < (int)size - 1; i++) buf[k++] = i < fill ? '#' : '.';
        buf[k] = 0;
        if (k < (int)size - 1) k += snprintf(buf + k, size - (size_t)k, "]");
    }
    snprintf(tail, sizeof tail, "%s%s%s%s", core, rw ? rate_s : "", fw ? " " : "", fw ? fields : "");
    if (k < (int)size - 1) snprintf(buf + k, size - (size_t)k, "%s", tail);
    /* whatever is left too long is cut: never wider than max */
    if ((int)strlen(buf) > max) buf[max] = 0;
    return (int)strlen(buf);
}

static void draw(cli_progress *p, double now)
{
    char line[1024];
    cli_progress_format(p, cli_terminal_width(), now, line, sizeof line);
    fprintf(stderr, "\r%s\033[K", line);
    fflush(stderr);
    p->last_draw = now;
    p->drawn = 1;
}

void cli_progress_update(cli_progress *p, long done_units, const char *fields)
{
    if (!p->on) return;
    p->done = done_units < p->total || !p->total ? done_units : p->total;
    snprintf(p->fields, sizeof p->fields, "%s", fields ? fields : "");
    for (char *s = p->fields; *s; s++)
        if ((unsigned char)*s < 0x20) *s = ' '; /* one line: no newline or escape from a caller's text */
    double now = mono_now();
    if (p->last_draw < 0 || now - p->last_draw >= REDRAW_S || p->done == p->total) draw(p, now);
}

void cli_progress_clear(cli_progress *p)
{
    if (!p->on || !p->drawn) return;
    fprintf(stderr, "\r\033[K");
    fflush(stderr);
    p->drawn = 0;
    p->last_draw = -1; /* the next update redraws at once */
}

void cli_progress_end(cli_progress *p)
{
    if (!p->on) return;
    if (p->drawn || p->done > p->start_done) {
        draw(p, mono_now());
        fputc('\n', stderr);
        fflush(stderr);
    }
    p->on = 0;
    p->drawn = 0;
    if (active == p) active = NULL;
}

/* ---- simulate ---- */

static void sim_tick(void *arg, long done, long total)
{
    (void)total;
    cli_progress_update(arg, done, NULL);
}

int cli_sim_dataset_progress(const ds_sim_cfg *cfg, ds_dataset *out, ds_sim_meta **meta)
{
    cli_progress p;
    cli_progress_start(&p, "simulating", cfg->n, 0);
    snprintf(p.unit, sizeof p.unit, "stamps");
    int rc = ds_sim_dataset_progress(cfg, out, meta, p.on ? sim_tick : NULL, &p);
    cli_progress_end(&p);
    return rc;
}
