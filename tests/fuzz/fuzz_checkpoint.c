/* fuzz_checkpoint.c — safetensors checkpoints: ds_checkpoint_open (header
 * length, JSON header, dtypes, shapes, data_offsets, __metadata__), the
 * metadata readers (norm, state, any key), every tensor's data, and the
 * model stored inside: parsed, built (capped, see fuzz_net.h) and restored
 * from the checkpoint, as eval and --resume do. */
#include "fuzz_net.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = fuzz_write(0, ".safetensors", data, size);
    if (!p) return 0;
    ds_checkpoint *ck = ds_checkpoint_open(p);
    if (!ck) return 0;
    ds_norm nm = {0};
    if (ds_checkpoint_norm(ck, &nm) == 0 && nm.mean) {
        fuzz_touch(nm.mean, (size_t)nm.channels);
        fuzz_touch(nm.std, (size_t)nm.channels);
    }
    ds_norm_free(&nm);
    ds_train_state st;
    fuzz_sink += (float)ds_checkpoint_state(ck, &st);
    static const char *const keys[] = {"format", "model", "norm", "state", "optim_kind", "classes", "data"};
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
        const char *v = ds_checkpoint_meta(ck, keys[k]);
        if (v) fuzz_sink += (float)strlen(v);
    }
    for (int i = 0; i < ds_checkpoint_num_tensors(ck); i++) {
        ds_shape s;
        const float *v = NULL;
        const char *name = ds_checkpoint_tensor(ck, i, &s, &v);
        if (name) fuzz_sink += (float)strlen(name);
        if (v) fuzz_touch(v, ds_shape_numel(s));
    }
    const char *text = ds_checkpoint_model_text(ck);
    ds_model *m = text ? ds_model_parse(text, p) : NULL;
    if (m) fuzz_net(m, 1, ck);
    ds_model_free(m);
    ds_checkpoint_close(ck);
    return 0;
}
