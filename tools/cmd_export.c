/* cmd_export.c — deepsky export: a checkpoint as another framework's model
 * file (ONNX; src/io/onnx_export.c, docs/onnx.md). */
#include "cli.h"

#include <string.h>

static int cmd_export(int argc, char **argv)
{
    const char *ckpt = NULL, *onnx = NULL, *net = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--onnx")) {
            if (i + 1 >= argc || !*argv[i + 1]) return cli_usage("export: --onnx needs a value");
            onnx = argv[++i];
        } else if (!strcmp(argv[i], "--net")) {
            if (i + 1 >= argc || !*argv[i + 1]) return cli_usage("export: --net needs generator or discriminator");
            net = argv[++i];
        } else if (argv[i][0] == '-') {
            return cli_usage("export: unknown option '%s' (see deepsky export --help)", argv[i]);
        } else if (!ckpt) {
            ckpt = argv[i];
        } else {
            return cli_usage("export: one checkpoint only, got '%s' too", argv[i]);
        }
    }
    if (!ckpt) return cli_usage("export: needs a checkpoint (deepsky export CKPT --onnx model.onnx)");
    if (!onnx) return cli_usage("export: needs --onnx FILE");
    if (ds_onnx_export_ex(ckpt, onnx, net)) return cli_lib_error("export");
    return 0;
}

const cli_command cli_cmd_export = {
    "export",
    cmd_export,
    "a checkpoint as an ONNX model",
    "usage: deepsky export CKPT --onnx model.onnx [--net generator|discriminator]\n"
    "\n"
    "Writes the checkpoint's network as ONNX (opset 13; docs/onnx.md): each\n"
    "input's normalisation as Sub/Div nodes, dropout left out, outputs\n"
    "\"logits\" and \"probabilities\" (after a softmax or [tree] head), the\n"
    "class names in the metadata entry \"classes\".\n"
    "A GAN checkpoint exports one network: --net generator (the default;\n"
    "outputs \"generated\" in [-1, 1] and \"sample\" in the data's units) or\n"
    "--net discriminator (the data scale in front; \"logit\", \"probability\").\n",
    NULL,
};
