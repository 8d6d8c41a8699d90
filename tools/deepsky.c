/* deepsky.c — the command-line tool: a dispatch table of subcommands and the
 * helpers they share. */
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
    const char *usage;
} command;

static const command commands[] = {
    {"demo", cmd_demo, "the main job: asteroid real/bogus on simulated survey stamps, trained and reported",
     "usage: deepsky demo [--out DIR] [--n N] [--epochs N] [--seed N]\n"
     "\n"
     "  --out DIR          output folder (default runs/demo)\n"
     "  --n N              training stamps (default 21753, the course's set; a tenth of them validates,\n"
     "                     the test set is N/4 more of another seed)\n"
     "  --epochs N         training epochs (default: the model file's, 20)\n"
     "  --seed N           simulation and training seed (default 1)\n"
     "\n"
     "Simulates 45x45 difference-image stamps (7.7 % real asteroids; docs/simulator.md),\n"
     "trains models/realbogus.cfg, prints test error, ROC AUC, false-positive rates at\n"
     "95 % and 99 % recall, the missed-detection rate at 1 % false positives, rejection\n"
     "per bogus kind and recall per S/N, and writes DIR/report.html.\n"},
    {"train", cmd_train, "train a model file on data, writing checkpoints and a report",
     "usage: deepsky train MODEL.cfg --data SPEC [options]\n"
     "       deepsky train --resume CKPT --data SPEC [options]\n"
     "\n"
     "  --data SPEC        training data (see docs/cli.md: fashion-mnist, idx:, npy:, csv:, folder:, fits:)\n"
     "  --val SPEC         validation data\n"
     "  --val-split F      hold out a fraction F of the training data for validation\n"
     "  --test SPEC        evaluate the best model on this data at the end\n"
     "                     (default for --data fashion-mnist: fashion-mnist:test)\n"
     "  --epochs N         total epochs (default: [train] epochs)\n"
     "  --batch N          batch size (default: [train] batch)\n"
     "  --lr X             learning rate (default: [train] lr)\n"
     "  --seed N           seed for initialisation, shuffling and dropout\n"
     "  --out DIR          output folder (default runs/<model name>)\n"
     "  --resume CKPT      continue from a checkpoint (its model and state)\n"
     "  --init CKPT        start from a checkpoint's weights (e.g. deepsky pretrain's)\n"
     "  --quiet            no progress bar\n"
     "\n"
     "Writes DIR/last.safetensors, DIR/best.safetensors, DIR/metrics.csv,\n"
     "DIR/loss.png, DIR/accuracy.png, DIR/confusion.png and DIR/report.html.\n"
     "best is the epoch of the best validation accuracy; without validation\n"
     "data, the last epoch.\n"},
    {"pretrain", cmd_pretrain, "train a model's [rbm] layers without labels, one after the other (DBN)",
     "usage: deepsky pretrain MODEL.cfg --data SPEC [--val SPEC | --val-split F] [--epochs N] [--out DIR]\n"
     "\n"
     "  --data SPEC        data (labels, if any, are not used)\n"
     "  --val SPEC         held-out data: its free energy against the training data's (the gap)\n"
     "  --val-split F      hold out a fraction F of the data for that\n"
     "  --epochs N         epochs per RBM (default: [pretrain] epochs)\n"
     "  --out DIR          output folder (default runs/<model name>)\n"
     "\n"
     "Trains each [rbm] layer as a restricted Boltzmann machine on the previous\n"
     "one's hidden probabilities ([pretrain]: CD-k or persistent CD, rate, momentum,\n"
     "weight decay, sparsity). Writes DIR/pretrained.safetensors, DIR/pretrain.csv\n"
     "and, for images, DIR/<first rbm>_weights.png and DIR/<first rbm>_samples.png.\n"
     "Then: deepsky train MODEL.cfg --init DIR/pretrained.safetensors --data SPEC\n"},
    {"eval", cmd_eval, "evaluate a checkpoint: accuracy, per-class metrics, confusion matrix",
     "usage: deepsky eval CKPT --data SPEC [--meta FILE.csv] [--report DIR] [--batch N] [--json]\n"
     "\n"
     "Prints accuracy, log-loss, per-class precision/recall/F1, the confusion\n"
     "matrix and the reliability table (expected calibration error); for two\n"
     "classes also ROC AUC, the false-positive rates at 95 % and 99 % recall and\n"
     "the missed-detection rate at 1 % FPR. --meta FILE.csv (one row per sample\n"
     "with 'kind' and/or 'snr' columns, as simulate's labels.csv) adds, at the\n"
     "1 %-FPR threshold, the share of each bogus kind rejected and of real\n"
     "sources found per S/N bin (rows matched by its 'index' column to the stamps'\n"
     "simulator indices, 'label' checked). --json prints one JSON object.\n"
     "--report DIR writes confusion, reliability, ROC (false-positive rate on a\n"
     "log axis) and recall-against-S/N plots, the worst mistakes (a labelled\n"
     "grid, listed in the same order) and DIR/report.html with the provenance\n"
     "(command, checkpoint hash, data, version, date).\n"
     "Warns when the data overlaps the checkpoint's training data.\n"},
    {"predict", cmd_predict, "class probabilities for files or a data spec",
     "usage: deepsky predict CKPT INPUT... [--top K] [--format text|json|npy] [--output FILE] [--strict]\n"
     "       deepsky predict CKPT --data SPEC [...]\n"
     "\n"
     "  INPUT              an image (PNG/JPEG), FITS, NPY or CSV file, or a folder of FITS files\n"
     "  --top K            classes to list per sample (default 1)\n"
     "  --format F         text (default), json, or npy (probabilities [n, classes]; needs --output)\n"
     "  --output FILE      write there instead of standard output (atomically)\n"
     "  --strict           stop at the first input that cannot be read (default: report it, score\n"
     "                     the others, exit 1)\n"},
    {"simulate", cmd_simulate, "simulated survey stamps: real asteroids and bogus detections",
     "usage: deepsky simulate --out DIR [--n N] [--size S] [--channels 1|3] [--real-fraction F] [--seed N]\n"
     "                        [--cutouts] [--force]\n"
     "\n"
     "  --n N              stamps (default 2000)\n"
     "  --size S           pixels per side (default 45)\n"
     "  --channels C       1: the difference image (default); 3: science, reference, difference\n"
     "  --real-fraction F  share of real asteroids (default 0.0773, the course's 1,681 of 21,753)\n"
     "  --seed N           the same seed gives the same stamps (default 4242; the demo trains on 1)\n"
     "  --cutouts          also one FITS file per stamp, DIR/cutouts/{real,bogus}/NNNNNN.fits,\n"
     "                     its class, kind, S/N, trail, FWHM and sky in the header\n"
     "  --force            DIR may hold files: remove simulate's own there first (else refused)\n"
     "\n"
     "Writes DIR/x.npy [n, C, S, S] (electrons, sky-subtracted), DIR/y.npy (1 real,\n"
     "0 bogus), DIR/y.csv (the same by name: train on npy:DIR/x.npy,DIR/y.csv and the\n"
     "model keeps the names bogus/real), DIR/labels.csv (kind, S/N, trail length and\n"
     "angle, FWHM, sky, ...), FITS cubes DIR/difference.fits (and science.fits,\n"
     "reference.fits with 3 channels), and DIR/provenance.json (seed and stamp range\n"
     "of each file, by hash).\n"     "The model and its parameter ranges: docs/simulator.md.\n"},
    {"info", cmd_info, "layer table of a model file or checkpoint",
     "usage: deepsky info MODEL.cfg|CKPT\n"
     "       deepsky info CKPT --tensor NAME\n"
     "\n"
     "Prints each layer's output shape, parameters, FLOPs per sample and\n"
     "activation memory per sample, then the totals; with --tensor, one\n"
     "checkpoint tensor's shape and values.\n"},
};
#define N_COMMANDS (int)(sizeof commands / sizeof *commands)

static void usage(FILE *f)
{
    fprintf(f, "deepsky %s — deep learning for scientific images and tables\n\n"
               "usage: deepsky COMMAND [options]   (deepsky COMMAND --help for details)\n\n",
            DS_VERSION);
    for (int i = 0; i < N_COMMANDS; i++) fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
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
                if (!strcmp(argv[2], commands[i].name)) {
                    fputs(commands[i].usage, stdout);
                    return 0;
                }
        usage(stdout);
        return 0;
    }
    if (!strcmp(name, "--version")) {
        printf("deepsky %s\n", DS_VERSION);
        return 0;
    }
    for (int i = 0; i < N_COMMANDS; i++) {
        if (strcmp(name, commands[i].name)) continue;
        for (int a = 2; a < argc; a++) {
            if (!strcmp(argv[a], "--help") || !strcmp(argv[a], "-h")) {
                fputs(commands[i].usage, stdout);
                return 0;
            }
            /* a repeated option is a mistake, whichever one was meant */
            bool sources = !strcmp(argv[a], "--data") || !strcmp(argv[a], "--val") || !strcmp(argv[a], "--test");
            for (int b = 2; b < a && !sources && !strncmp(argv[a], "--", 2); b++) /* sources: NAME=SPEC each */
                if (!strcmp(argv[a], argv[b])) return cli_usage("%s: %s is given twice", name, argv[a]);
        }
        int rc = commands[i].run(argc - 1, argv + 1);
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
    return check_stdout(run(argc, argv));
}
