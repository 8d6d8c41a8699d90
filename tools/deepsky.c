/* deepsky.c — the command-line tool: the registry of subcommands (each
 * defined in its own tools/cmd_NAME.c), main, --help and --version. The
 * helpers they share: tools/cli_util.c and tools/cli_net.c. */
#include "cli.h"

#include <errno.h>
#include <signal.h>
#include <string.h>

/* every subcommand, in the order `deepsky --help` lists them */
static const cli_command *const commands[] = {
    &cli_cmd_demo, &cli_cmd_train, &cli_cmd_pretrain, &cli_cmd_eval, &cli_cmd_predict, &cli_cmd_simulate, &cli_cmd_info,
    &cli_cmd_explain, &cli_cmd_attack, &cli_cmd_gan, &cli_cmd_sample, &cli_cmd_fid,
    &cli_cmd_serve,
    &cli_cmd_export, &cli_cmd_import,
};
#define N_COMMANDS (int)(sizeof commands / sizeof *commands)

static void usage(FILE *f)
{
    fprintf(f, "deepsky %s — deep learning for scientific images and tables\n\n"
               "usage: deepsky COMMAND [options]   (deepsky COMMAND --help for details)\n\n",
            DS_VERSION);
    for (int i = 0; i < N_COMMANDS; i++) fprintf(f, "  %-9s %s\n", commands[i]->name, commands[i]->summary);
}

/* ---- interrupts ---- */

volatile sig_atomic_t cli_interrupted;
static volatile sig_atomic_t graceful;

/* SIGINT/SIGTERM: with cli_graceful_interrupts() on (train), the first one
 * only sets cli_interrupted, which the training loop checks between batches
 * so that no checkpoint is cut short; otherwise (or the second time) the
 * temporary files being written are unlinked and the signal kills us, so
 * the exit status is 128 + signal (130 for Ctrl-C) and no output is half
 * written. */
static void on_signal(int sig)
{
    if (graceful && !cli_interrupted) {
        cli_interrupted = sig;
        return;
    }
    ds_atomic_unlink_pending();
    signal(sig, SIG_DFL);
    raise(sig);
}

void cli_graceful_interrupts(bool on) { graceful = on; }

/* Everything printed must have reached standard output: a full disk or a
 * closed pipe is an error (status 1), not a silent loss. */
static int check_stdout(int rc)
{
    errno = 0;
    int bad = ferror(stdout) != 0, err = errno;
    if (fflush(stdout) != 0) bad = 1, err = errno;
    if (fclose(stdout) != 0 && !bad) bad = 1, err = errno;
    if (!bad) return rc;
    cli_error("cannot write the standard output: %s", err ? strerror(err) : "write error");
    return rc ? rc : 1;
}

/* whether opt may be given more than once to c (e.g. --data NAME=SPEC) */
static bool repeatable(const cli_command *c, const char *opt)
{
    for (const char *const *r = c->repeatable_options; r && *r; r++)
        if (!strcmp(*r, opt)) return true;
    return false;
}

static int run(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *name = argv[1];
    if (!strcmp(name, "--help") || !strcmp(name, "-h") || !strcmp(name, "help")) {
        if (argc > 2)
            for (int i = 0; i < N_COMMANDS; i++)
                if (!strcmp(argv[2], commands[i]->name)) {
                    fputs(commands[i]->usage, stdout);
                    return 0;
                }
        usage(stdout);
        return 0;
    }
    if (!strcmp(name, "--version")) {
        printf("deepsky %s\nMPI: %s\n", DS_VERSION, ds_comm_backend());
        return 0;
    }
    for (int i = 0; i < N_COMMANDS; i++) {
        if (strcmp(name, commands[i]->name)) continue;
        for (int a = 2; a < argc; a++) {
            if (!strcmp(argv[a], "--help") || !strcmp(argv[a], "-h")) {
                fputs(commands[i]->usage, stdout);
                return 0;
            }
            /* a repeated option is a mistake, whichever one was meant, except the command's repeatable ones */
            for (int b = 2; b < a && !repeatable(commands[i], argv[a]) && !strncmp(argv[a], "--", 2); b++)
                if (!strcmp(argv[a], argv[b])) return cli_usage("%s: %s is given twice", name, argv[a]);
        }
        int rc = commands[i]->run(argc - 1, argv + 1);
        return rc == 1 && cli_usage_seen() ? 2 : rc;
    }
    cli_error("unknown command '%s'", name);
    usage(stderr);
    return 2;
}

int main(int argc, char **argv)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    /* under mpirun: MPI starts here (src/core/dist.c); a rank that fails
     * stops every rank (MPI_Abort) after its message, so none waits forever */
    ds_comm *comm = ds_comm_world(&argc, &argv);
    if (!comm) {
        fprintf(stderr, "deepsky: %s\n", ds_last_error());
        return 1;
    }
    int rc;
    if (ds_comm_size(comm) > 1 && argc > 1 && strcmp(argv[1], "train") && strcmp(argv[1], "--help") &&
        strcmp(argv[1], "--version"))
        rc = cli_error("'%s' does not run data-parallel (only train does): run it without mpirun", argv[1]);
    else
        rc = check_stdout(run(argc, argv));
    if (ds_comm_size(comm) > 1 && rc != 0 && rc < 128) {
        fflush(stdout);
        fflush(stderr);
        ds_comm_abort(comm, rc);
    }
    ds_comm_finalize(comm);
    return rc;
}
