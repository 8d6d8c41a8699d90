/* cmd_import.c — deepsky import: an ONNX model as a deepsky model file and
 * checkpoint (src/io/onnx_import.c, docs/onnx.md). */
#include "cli.h"

#include <string.h>

static int cmd_import(int argc, char **argv)
{
    const char *onnx = NULL, *out = NULL, *run = NULL, *output = NULL;
    for (int i = 1; i < argc; i++) {
        const char **dst = !strcmp(argv[i], "--out") ? &out : !strcmp(argv[i], "--run") ? &run
                           : !strcmp(argv[i], "--output") ? &output : NULL;
        if (dst) {
            if (i + 1 >= argc || !*argv[i + 1]) return cli_usage("import: %s needs a value", argv[i]);
            *dst = argv[++i];
        } else if (argv[i][0] == '-') {
            return cli_usage("import: unknown option '%s' (see deepsky import --help)", argv[i]);
        } else if (!onnx) {
            onnx = argv[i];
        } else {
            return cli_usage("import: one ONNX file only, got '%s' too", argv[i]);
        }
    }
    if (!onnx) return cli_usage("import: needs an ONNX file (deepsky import model.onnx --out DIR)");
    if (!out && !run) return cli_usage("import: needs --out DIR (or --run X.npy --output Y.npy)");
    if (!!run != !!output) return cli_usage("import: --run and --output go together");
    if (out && cli_check_out_dir("--out", out)) return 2;
    if (ds_onnx_import(onnx, out, run, output)) return cli_lib_error("import");
    if (out) printf("wrote %s/model.cfg and %s/model.safetensors\n", out, out);
    return 0;
}

const cli_command cli_cmd_import = {
    "import",
    cmd_import,
    "an ONNX model as a model file and checkpoint",
    "usage: deepsky import model.onnx --out DIR [--run X.npy|NAME=X.npy,... --output Y.npy]\n"
    "\n"
    "Writes DIR/model.cfg and DIR/model.safetensors (a checkpoint that\n"
    "predict, eval and export read) from an ONNX model built from the\n"
    "operators docs/onnx.md lists; Sub/Div of constants on an input become\n"
    "its normalisation, a last Softmax the softmax head, deepsky export's\n"
    "[tree] tail the [tree], a trailing chain of scalar Mul/Add/Sub/Div/Sinh\n"
    "the output transform. With --run, also runs the imported network on\n"
    "X.npy (the ONNX input's shape; NAME=X.npy,NAME2=Y.npy for several\n"
    "inputs) and writes its output to Y.npy. An unsupported node is an error\n"
    "naming the node and its operator.\n",
    NULL,
};
