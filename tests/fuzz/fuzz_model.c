/* fuzz_model.c — model files (.cfg): ds_model_load (the INI reader, every
 * section's keys and ranges), then the graph build and shape inference at
 * batch 2, a capped compile and a forward and backward pass. An odd-sized
 * input is planned for inference (eval, predict), an even one for training. */
#include "fuzz_net.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = fuzz_write(0, ".cfg", data, size);
    if (!p) return 0;
    ds_model *m = ds_model_load(p);
    if (!m) return 0;
    ds_shape in = ds_model_input_shape(m);
    fuzz_sink += (float)ds_shape_numel(in) + (float)ds_model_classes(m) + (float)ds_model_normalize(m) +
                 (float)strlen(ds_model_text(m)) + (float)ds_model_train_cfg(m)->batch +
                 (float)ds_model_pretrain_cfg(m)->epochs;
    fuzz_net(m, (int)(size & 1), NULL);
    ds_model_free(m);
    return 0;
}
