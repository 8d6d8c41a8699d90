/* cmd_serve.c — `deepsky serve CKPT --port P`: an HTTP inference server
 * (libmicrohttpd, docs/serve.md). POST /predict takes an NPY, FITS or PNG
 * body (one sample or a batch) and answers JSON scores with the class
 * names; GET /health. The connection threads only collect bodies; one
 * inference thread takes every waiting request (up to --max-batch of them)
 * off a queue, reads and normalises their samples as `predict` does and
 * scores them together, --max-batch samples per forward. */
#include "cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef DS_HAVE_MHD

static int cmd_serve(int argc, char **argv)
{
    (void)argc, (void)argv;
    return cli_error("serve: this deepsky was built without libmicrohttpd (apt-get install libmicrohttpd-dev, "
                     "then build again)");
}

#else

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

/* one POST /predict: its body, then (from the inference thread) its answer */
typedef struct job {
    char *body;
    size_t len, cap;
    int too_big;          /* more than --max-body arrived: the rest is dropped, 413 */
    int limited;          /* over --rate-limit: the body is dropped, 429 */
    int queued, done;     /* done: status and json are set */
    int status;
    char *json;           /* malloc'd response body */
    struct job *next;
} job;

typedef struct server {
    cli_net net;
    ds_norm norm;
    char tmpdir[64];
    size_t max_body;
    int max_batch;
    double rate, tokens, last_refill; /* token bucket of --rate-limit requests/s (0: none) */
    pthread_mutex_t mu;
    pthread_cond_t work, answered;
    job *head, *tail;
    int stop, in_flight;
    long requests, forwards, samples, rejected; /* for /health: samples/forwards is the mean batch */
} server;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* s quoted for JSON into f, without the temporary folder's path (a message
 * names the body, not the file it was put in) */
static void json_message(FILE *f, const server *s, const char *msg)
{
    char clean[1200];
    size_t k = 0, dl = strlen(s->tmpdir);
    for (const char *p = msg; *p && k + 1 < sizeof clean;) {
        if (dl && !strncmp(p, s->tmpdir, dl) && p[dl] == '/') {
            p += dl + 1;
            continue;
        }
        clean[k++] = *p++;
    }
    clean[k] = 0;
    cli_print_json_string(f, clean);
}

static char *error_json(const server *s, const char *msg)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f) return NULL;
    fputs("{\"error\": ", f);
    json_message(f, s, msg);
    fputs("}\n", f);
    fclose(f);
    return buf;
}

/* The body's format by its first bytes (not its Content-Type, which clients get wrong). */
static const char *body_ext(const char *b, size_t n)
{
    if (n >= 6 && !memcmp(b, "\x93NUMPY", 6)) return "npy";
    if (n >= 9 && !memcmp(b, "SIMPLE  =", 9)) return "fits";
    if (n >= 8 && !memcmp(b, "\x89PNG\r\n\x1a\n", 8)) return "png";
    return NULL;
}

static size_t numel(ds_shape s)
{
    size_t n = 1;
    for (int i = 0; i < s.ndim; i++) n *= (size_t)s.d[i];
    return n;
}

/* Read and normalise one body as predict reads a file (cli_data_load,
 * the checks of cli_net_load_data): NPY and PNG from memory; FITS written
 * into the server's private folder first (/dev/shm: memory), since the
 * FITS reader takes a path. An array of exactly the model's input shape is
 * one sample; [n, input shape] is a batch. */
static int parse_body(server *s, const job *j, ds_dataset *d)
{
    const char *ext = body_ext(j->body, j->len);
    if (!ext) return cli_error("the body is not NPY, FITS or PNG (it starts with neither \\x93NUMPY, SIMPLE  = nor \\x89PNG)");
    char path[128];
    snprintf(path, sizeof path, "body.%s", ext);
    if (!strcmp(ext, "npy") || !strcmp(ext, "png")) { /* read from memory */
        if ((!strcmp(ext, "npy") ? ds_npy_load_mem : ds_image_load_mem)(j->body, j->len, path, d) != 0 ||
            ds_dataset_check_finite(d, path) != 0)
            return cli_lib_error(NULL);
    } else { /* FITS: cfitsio and the FITS reader's checks take a path */
        snprintf(path, sizeof path, "%s/body.%s", s->tmpdir, ext);
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(j->body, 1, j->len, f) != j->len) {
            if (f) fclose(f);
            return cli_error("cannot write %s", path);
        }
        if (fclose(f) != 0) return cli_error("cannot write %s", path);
        if (cli_data_load(s->net.model, path, d) != 0) return 1;
    }
    ds_shape want = ds_model_input_shape(s->net.model);
    if (d->sample.ndim + 1 == want.ndim && (size_t)d->n * numel(d->sample) == numel(want)) {
        d->n = 1; /* the array was one sample: its first axis is the model's first, not a batch */
        d->sample = want;
    }
    if (cli_check_input(&s->net, d, path) != 0) return 1;
    if (s->norm.channels && s->norm.channels != d->sample.d[0])
        return cli_error("%s: the checkpoint's normalisation has %d channels, the body %d", path, s->norm.channels,
                         d->sample.d[0]);
    if (ds_norm_apply(&s->norm, d) != 0) return cli_lib_error(path);
    return 0;
}

/* {"classes": [...], "scores": [[...], ...], "predicted": [...]} */
static char *scores_json(const server *s, const float *p, int n, int classes)
{
    char *buf = NULL, b[32];
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    ds_dataset names = {.classes = s->net.n_class_names, .class_names = s->net.class_names};
    fputs("{\"classes\": [", f);
    for (int c = 0; c < classes; c++) {
        if (c) fputs(", ", f);
        cli_print_json_string(f, cli_class_name(&names, c, b, sizeof b));
    }
    fputs("], \"scores\": [", f);
    for (int i = 0; i < n; i++) {
        fputs(i ? ", [" : "[", f);
        for (int c = 0; c < classes; c++) fprintf(f, "%s%.6g", c ? ", " : "", p[(size_t)i * classes + c]);
        fputc(']', f);
    }
    fputs("], \"predicted\": [", f);
    for (int i = 0; i < n; i++) {
        int best = 0;
        for (int c = 1; c < classes; c++)
            if (p[(size_t)i * classes + c] > p[(size_t)i * classes + best]) best = c;
        if (i) fputs(", ", f);
        cli_print_json_string(f, cli_class_name(&names, best, b, sizeof b));
    }
    fputs("]}\n", f);
    fclose(f);
    return buf;
}

/* Score the jobs taken off the queue together: each body is read (a bad
 * one is answered 400 at once), the good ones' samples are joined and go
 * through cli_predict, which runs forwards of up to net.batch samples. */
static void run_jobs(server *s, job **jobs, int n)
{
    ds_dataset d[n];
    int count = 0, classes = ds_model_classes(s->net.model);
    memset(d, 0, sizeof d);
    for (int i = 0; i < n; i++) {
        if (parse_body(s, jobs[i], &d[i]) != 0) {
            jobs[i]->status = 400;
            jobs[i]->json = error_json(s, cli_last_message());
            ds_dataset_free(&d[i]);
            d[i].n = 0;
            continue;
        }
        count += d[i].n;
    }
    if (count > 0) {
        ds_dataset all = {.n = count, .sample = ds_model_input_shape(s->net.model)};
        size_t per = numel(all.sample);
        all.x = malloc((size_t)count * per * sizeof(float));
        all.y = calloc((size_t)count, sizeof(float)); /* the loader wants labels; predict reads none */
        float *probs = malloc((size_t)count * classes * sizeof(float));
        int rc = all.x && all.y && probs ? 0 : cli_error("out of memory scoring %d samples", count);
        for (int i = 0, at = 0; !rc && i < n; i++)
            if (d[i].n) memcpy(all.x + (size_t)at * per, d[i].x, (size_t)d[i].n * per * sizeof(float)), at += d[i].n;
        if (!rc) rc = cli_predict(&s->net, &all, probs);
        for (int i = 0, at = 0; i < n; i++) {
            if (!d[i].n) continue;
            if (rc) {
                jobs[i]->status = 500;
                jobs[i]->json = error_json(s, cli_last_message());
            } else {
                jobs[i]->status = 200;
                jobs[i]->json = scores_json(s, probs + (size_t)at * classes, d[i].n, classes);
            }
            at += d[i].n;
        }
        free(all.x);
        free(all.y);
        free(probs);
        pthread_mutex_lock(&s->mu);
        s->forwards += (count + s->net.batch - 1) / s->net.batch;
        s->samples += count;
        pthread_mutex_unlock(&s->mu);
    }
    for (int i = 0; i < n; i++) ds_dataset_free(&d[i]);
}

static void *inference_thread(void *arg)
{
    server *s = arg;
    job **jobs = malloc((size_t)s->max_batch * sizeof *jobs);
    if (!jobs) return NULL;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        while (!s->head && !s->stop) pthread_cond_wait(&s->work, &s->mu);
        if (!s->head) { /* stop, and nothing left */
            pthread_mutex_unlock(&s->mu);
            break;
        }
        int n = 0; /* every waiting request, up to max_batch of them: one batch */
        while (s->head && n < s->max_batch) {
            jobs[n++] = s->head;
            s->head = s->head->next;
        }
        if (!s->head) s->tail = NULL;
        pthread_mutex_unlock(&s->mu);
        run_jobs(s, jobs, n);
        pthread_mutex_lock(&s->mu);
        for (int i = 0; i < n; i++) jobs[i]->done = 1;
        pthread_cond_broadcast(&s->answered);
        pthread_mutex_unlock(&s->mu);
    }
    free(jobs);
    return NULL;
}

/* allow: the Allow header of a 405, or "close" to end the connection after this answer */
static enum MHD_Result respond(struct MHD_Connection *c, unsigned status, char *json, const char *allow)
{
    if (!json) json = strdup("{\"error\": \"out of memory\"}\n");
    struct MHD_Response *r = MHD_create_response_from_buffer(json ? strlen(json) : 0, json, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(json);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "application/json");
    if (allow && !strcmp(allow, "close")) MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    else if (allow) MHD_add_response_header(r, "Allow", allow);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static char *strjson(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *strjson(const char *fmt, ...)
{
    char *buf = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&buf, fmt, ap) < 0) buf = NULL;
    va_end(ap);
    return buf;
}

/* a client's text (a path, a method) fit to put in a JSON string as it is */
static const char *plain(char *buf, size_t size, const char *text)
{
    snprintf(buf, size, "%s", text);
    for (char *p = buf; *p; p++)
        if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e) *p = '?';
    return buf;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    server *s = cls;
    (void)version;
    job *j = *con_cls;
    char m[32];
    if (!j) { /* the headers: route, then limits before any of the body is read */
        if (!strcmp(url, "/health")) {
            if (strcmp(method, "GET") && strcmp(method, "HEAD"))
                return respond(c, 405, strjson("{\"error\": \"%s /health: only GET\"}\n", plain(m, sizeof m, method)), "GET, HEAD");
            pthread_mutex_lock(&s->mu);
            char *h = strjson("{\"status\": \"ok\", \"requests\": %ld, \"rejected\": %ld, \"forwards\": %ld, "
                              "\"samples\": %ld, \"max_batch\": %d}\n",
                              s->requests, s->rejected, s->forwards, s->samples, s->max_batch);
            pthread_mutex_unlock(&s->mu);
            return respond(c, 200, h, NULL);
        }
        if (strcmp(url, "/predict")) {
            char path[200];
            return respond(c, 404,
                           strjson("{\"error\": \"no such endpoint: %s (POST /predict, GET /health)\"}\n",
                                   plain(path, sizeof path, url)),
                           NULL);
        }
        if (strcmp(method, "POST"))
            return respond(c, 405, strjson("{\"error\": \"%s /predict: only POST, with an NPY, FITS or PNG body\"}\n",
                                           plain(m, sizeof m, method)), "POST");
        pthread_mutex_lock(&s->mu);
        int limited = 0;
        if (s->rate > 0) { /* a token bucket: --rate-limit a second, bursts of as many */
            double t = now_s();
            s->tokens += (t - s->last_refill) * s->rate;
            if (s->tokens > s->rate) s->tokens = s->rate;
            s->last_refill = t;
            if (s->tokens >= 1) s->tokens -= 1;
            else limited = 1;
        }
        if (limited) s->rejected++;
        pthread_mutex_unlock(&s->mu);
        /* a body over the limit is read and dropped, then answered 413: a
         * client still sending gets its answer instead of a broken pipe;
         * one declared over 64 times the limit is answered at once (the
         * connection closes under it) rather than read */
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        unsigned long long declared = cl ? strtoull(cl, NULL, 10) : 0;
        if (declared / 64 > s->max_body)
            return respond(c, 413, strjson("{\"error\": \"the body of %s bytes is over the limit of %zu (--max-body)\"}\n",
                                           cl, s->max_body), NULL);
        j = calloc(1, sizeof *j);
        if (!j) return MHD_NO;
        j->too_big = declared > s->max_body;
        j->limited = limited; /* answered 429 once its body is read and dropped, as for 413 */
        pthread_mutex_lock(&s->mu);
        s->in_flight++; /* from its headers on: a shutdown waits for a body still arriving too */
        pthread_mutex_unlock(&s->mu);
        *con_cls = j;
        return MHD_YES;
    }
    if (*upload_size) { /* more of the body */
        if (!j->too_big && j->len + *upload_size > s->max_body) j->too_big = 1;
        if (!j->too_big && !j->limited) {
            if (j->len + *upload_size > j->cap) {
                size_t cap = j->cap ? j->cap : 65536;
                while (cap < j->len + *upload_size) cap *= 2;
                char *b = realloc(j->body, cap);
                if (!b) return MHD_NO;
                j->body = b, j->cap = cap;
            }
            memcpy(j->body + j->len, upload, *upload_size);
            j->len += *upload_size;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (j->limited)
        return respond(c, 429, strjson("{\"error\": \"over the rate limit of %g requests/s\"}\n", s->rate), NULL);
    if (j->too_big)
        return respond(c, 413, strjson("{\"error\": \"the body is over the limit of %zu bytes (--max-body)\"}\n",
                                       s->max_body), "close");
    if (!j->len) return respond(c, 400, strjson("{\"error\": \"empty body: POST an NPY, FITS or PNG file\"}\n"), NULL);
    /* the whole body: into the queue, and wait for the inference thread's answer */
    pthread_mutex_lock(&s->mu);
    j->queued = 1;
    s->requests++;
    if (s->tail) s->tail->next = j;
    else s->head = j;
    s->tail = j;
    pthread_cond_signal(&s->work);
    while (!j->done) pthread_cond_wait(&s->answered, &s->mu);
    pthread_mutex_unlock(&s->mu);
    char *json = j->json;
    j->json = NULL;
    return respond(c, (unsigned)j->status, json, NULL);
}

/* the request's end (answered, or the client went away): its job is freed, and shutdown may go on */
static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    server *s = cls;
    job *j = *con_cls;
    (void)c, (void)toe;
    if (!j) return;
    pthread_mutex_lock(&s->mu);
    s->in_flight--;
    pthread_mutex_unlock(&s->mu);
    free(j->body);
    free(j->json);
    free(j);
    *con_cls = NULL;
}

static int cmd_serve(int argc, char **argv)
{
    const char *ckpt = NULL, *v, *host = "127.0.0.1";
    int port = 8080, max_batch = 32, threads = 64;
    float max_mb = 16, rate = 1000;
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i];
        if (cli_opt(argc, argv, &i, "--port", &v)) {
            if (argv[i] == opt || cli_parse_int("--port", v, 0, 65535, &port)) return cli_usage("serve: --port needs 0..65535");
        } else if (cli_opt(argc, argv, &i, "--host", &v)) {
            if (argv[i] == opt) return cli_usage("serve: --host needs an IPv4 address");
            host = v;
        } else if (cli_opt(argc, argv, &i, "--max-batch", &v)) {
            if (argv[i] == opt || cli_parse_int("--max-batch", v, 1, 4096, &max_batch)) return 2;
        } else if (cli_opt(argc, argv, &i, "--max-connections", &v)) {
            if (argv[i] == opt || cli_parse_int("--max-connections", v, 1, 4096, &threads)) return 2;
        } else if (cli_opt(argc, argv, &i, "--max-body", &v)) {
            if (argv[i] == opt || cli_parse_float("--max-body", v, 1e-6, 4096, &max_mb)) return 2;
        } else if (cli_opt(argc, argv, &i, "--rate-limit", &v)) {
            if (argv[i] == opt || cli_parse_float("--rate-limit", v, 0, 1e9, &rate)) return 2;
        } else if (opt[0] == '-') {
            return cli_usage("serve: unknown option '%s' (see deepsky serve --help)", opt);
        } else if (!ckpt) {
            ckpt = opt;
        } else {
            return cli_usage("serve: one checkpoint only, got '%s' too", opt);
        }
    }
    if (!ckpt) return cli_usage("serve: usage: deepsky serve CKPT [--port P]");
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) return cli_usage("serve: --host '%s' is not an IPv4 address", host);
    static server s; /* the signal handler's flag is global anyway; one server a process */
    memset(&s, 0, sizeof s);
    if (cli_net_from_checkpoint(ckpt, max_batch, &s.net, &s.norm) != 0) return 1;
    int rc = 1;
    pthread_t worker;
    int worker_on = 0;
    struct MHD_Daemon *d = NULL;
    if (ds_model_num_inputs(s.net.model) > 1) {
        cli_error("serve: %s has %d inputs; serve scores one-input models only", ckpt, ds_model_num_inputs(s.net.model));
        goto done;
    }
    /* the bodies' folder: in memory (/dev/shm, a tmpfs) where there is one */
    snprintf(s.tmpdir, sizeof s.tmpdir, "/dev/shm/deepsky-serve.XXXXXX");
    if (!mkdtemp(s.tmpdir)) {
        snprintf(s.tmpdir, sizeof s.tmpdir, "/tmp/deepsky-serve.XXXXXX");
        if (!mkdtemp(s.tmpdir)) {
            s.tmpdir[0] = 0;
            cli_error("serve: cannot make a temporary folder in /dev/shm or /tmp");
            goto done;
        }
    }
    s.max_body = (size_t)((double)max_mb * 1024 * 1024);
    s.max_batch = max_batch;
    s.rate = rate, s.tokens = rate, s.last_refill = now_s();
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.work, NULL);
    pthread_cond_init(&s.answered, NULL);
    if (pthread_create(&worker, NULL, inference_thread, &s) != 0) {
        cli_error("serve: cannot start the inference thread");
        goto done;
    }
    worker_on = 1;
    cli_graceful_interrupts(true); /* SIGTERM/SIGINT set cli_interrupted: we drain, then exit 0 */
    d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC |
                             MHD_USE_ERROR_LOG,
                         (uint16_t)port, NULL, NULL, on_request, &s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                         MHD_OPTION_CONNECTION_LIMIT, (unsigned)threads, MHD_OPTION_CONNECTION_TIMEOUT, 30u,
                         MHD_OPTION_NOTIFY_COMPLETED, on_completed, &s, MHD_OPTION_END);
    if (!d) {
        cli_error("serve: cannot listen on %s:%d (in use?)", host, port);
        goto done;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("serving %s on http://%s:%u (POST /predict, GET /health; max batch %d, body %.6g MiB, %g requests/s)\n",
           ckpt, host, info ? info->port : (unsigned)port, max_batch, (double)max_mb, (double)rate);
    fflush(stdout);
    while (!cli_interrupted) usleep(50 * 1000);
    /* graceful: no new connections; the requests already in finish (30 s at most) */
    MHD_socket ls = MHD_quiesce_daemon(d);
    if (ls != MHD_INVALID_SOCKET) close(ls);
    for (int t = 0; t < 600; t++) {
        pthread_mutex_lock(&s.mu);
        int busy = s.in_flight;
        pthread_mutex_unlock(&s.mu);
        if (!busy) break;
        usleep(50 * 1000);
    }
    printf("serve: stopped by signal %d after %ld requests (%ld samples in %ld forwards)\n", (int)cli_interrupted,
           s.requests, s.samples, s.forwards);
    rc = 0;
done:
    if (d) MHD_stop_daemon(d);
    if (worker_on) {
        pthread_mutex_lock(&s.mu);
        s.stop = 1;
        pthread_cond_broadcast(&s.work);
        pthread_mutex_unlock(&s.mu);
        pthread_join(worker, NULL);
    }
    if (s.tmpdir[0]) {
        char p[128];
        const char *ext[] = {"npy", "fits", "png"};
        for (int k = 0; k < 3; k++) snprintf(p, sizeof p, "%s/body.%s", s.tmpdir, ext[k]), unlink(p);
        rmdir(s.tmpdir);
    }
    ds_norm_free(&s.norm);
    cli_net_free(&s.net);
    return rc;
}

#endif

const cli_command cli_cmd_serve = {
    "serve",
    cmd_serve,
    "an HTTP inference server: POST /predict (NPY, FITS or PNG), GET /health",
    "usage: deepsky serve CKPT [--port P] [--host ADDR] [--max-batch B] [--max-body MIB]\n"
    "                          [--rate-limit R] [--max-connections N]\n"
    "\n"
    "  --port P             TCP port (default 8080; 0: any free one, printed)\n"
    "  --host ADDR          IPv4 address to listen on (default 127.0.0.1: this machine only)\n"
    "  --max-batch B        samples per forward; concurrent requests are scored together (default 32)\n"
    "  --max-body MIB       largest body accepted, else 413 (default 16)\n"
    "  --rate-limit R       requests/s to /predict, bursts of R, else 429 (default 1000; 0: none)\n"
    "  --max-connections N  connections at once (default 64)\n"
    "\n"
    "POST /predict with an NPY ([n, input shape] or one sample of the input shape),\n"
    "FITS or PNG body: {\"classes\": [...], \"scores\": [[...], ...], \"predicted\": [...]},\n"
    "normalised as in training. Bad bodies get 400 {\"error\": \"...\"}. SIGTERM: the\n"
    "requests in progress are answered, then exit 0. See docs/serve.md.\n",
    NULL,
};
