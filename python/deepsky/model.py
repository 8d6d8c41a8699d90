"""deepsky.Model: a checkpoint loaded for inference through libdeepsky."""
import ctypes
import os

import numpy as np

from ._lib import MAX_DIMS, DeepskyError, error, lib


class Model:
    """A trained model (a deepsky checkpoint, .safetensors) for inference.

    predict() applies the checkpoint's normalisation, as `deepsky predict`
    does; parameters() gives the weights as NumPy arrays sharing memory with
    the loaded model.
    """

    def __init__(self, path, batch=64):
        self.path = os.fspath(path)
        self._p = lib.ds_predictor_open(self.path.encode(), int(batch))
        if not self._p:
            raise error()
        self.batch = int(batch)
        dims = (ctypes.c_int * MAX_DIMS)()
        nd = lib.ds_predictor_input_shape(self._p, dims)
        self.input_shape = tuple(dims[i] for i in range(nd))
        self.num_classes = lib.ds_predictor_classes(self._p)
        names = [lib.ds_predictor_class_name(self._p, k) for k in range(self.num_classes)]
        # numeric labels: the class index as a string, as `deepsky predict` prints it
        self.classes = [n.decode() if n is not None else str(k) for k, n in enumerate(names)]

    @classmethod
    def load(cls, path, batch=64):
        """Load a checkpoint (best.safetensors, last.safetensors) written by `deepsky train`."""
        return cls(path, batch)

    def close(self):
        """Free the model now (the arrays of parameters() become invalid)."""
        if getattr(self, "_p", None):
            lib.ds_predictor_free(self._p)
            self._p = None

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: the module's globals may be gone
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _live(self):
        if not self._p:
            raise DeepskyError("%s: the model was closed" % self.path)

    def predict(self, x):
        """Class probabilities [n, classes] (float32) of raw samples x.

        x: one sample of input_shape, or [n, *input_shape]; any real dtype
        (converted to float32). Not normalised: the checkpoint's
        normalisation is applied here, to a copy.
        """
        self._live()
        x = np.asarray(x)
        if x.shape == self.input_shape:
            x = x[None]
        if x.shape[1:] != self.input_shape:
            raise ValueError("%s: samples are %s but the model's input is %s"
                             % (self.path, x.shape[1:], self.input_shape))
        x = np.ascontiguousarray(x, dtype=np.float32)
        out = np.empty((x.shape[0], self.num_classes), np.float32)
        fp = ctypes.POINTER(ctypes.c_float)
        if lib.ds_predictor_predict(self._p, x.ctypes.data_as(fp), x.shape[0], out.ctypes.data_as(fp)) != 0:
            raise error(self.path)
        return out

    def predict_classes(self, x):
        """The likeliest class name of each sample, with its probability."""
        p = self.predict(x)
        k = p.argmax(axis=1)
        return [(self.classes[i], float(p[j, i])) for j, i in enumerate(k)]

    def parameters(self):
        """{name: ndarray}: every parameter and buffer, by the checkpoint's tensor names.

        The arrays are views of the loaded model's memory (zero-copy):
        writing them changes what predict() computes; they are valid until
        the model is closed (they keep it alive until then).
        """
        self._live()
        out = {}
        dims = (ctypes.c_int * MAX_DIMS)()
        nd = ctypes.c_int()
        data = ctypes.POINTER(ctypes.c_float)()
        for i in range(lib.ds_predictor_num_params(self._p)):
            name = lib.ds_predictor_param(self._p, i, dims, ctypes.byref(nd), ctypes.byref(data))
            if name is None:
                raise error(self.path)
            shape = tuple(dims[k] for k in range(nd.value))
            n = int(np.prod(shape)) if shape else 1
            buf = (ctypes.c_float * n).from_address(ctypes.addressof(data.contents))
            buf._owner = self  # the array holds the buffer, the buffer the model
            out[name.decode()] = np.frombuffer(buf, np.float32).reshape(shape)
        return out

    def __repr__(self):
        return "deepsky.Model(%r, input %s, classes %s)" % (self.path, self.input_shape, self.classes)
