#!/usr/bin/python3
"""Seed corpora for the libFuzzer harnesses: a few tiny valid inputs per
harness in tests/fuzz/corpus/<harness>/, laid out as each harness reads its
input (a mode or count byte first where the harness says so). Deterministic:
rerunning rewrites the same bytes. Run: /usr/bin/python3 tests/fuzz/make_seeds.py"""
import gzip, io, json, os, struct, sys, zlib
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(HERE, "corpus")


def put(harness, name, data):
    d = os.path.join(OUT, harness)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- model files: tiny ones of every layer kind, and the shipped zoo ----
TINY = {
    "dense.cfg": "[net]\ninput = 4\nclasses = 2\n\n[dense]\nunits = 3\nactivation = relu\n\n[dense]\nunits = 2\n",
    "conv.cfg": "[net]\ninput = 1,8,8\nclasses = 3\n\n[convolutional]\nfilters = 2\nsize = 3\npad = 1\n"
                "batch_normalize = 1\nactivation = leaky\n\n[maxpool]\nsize = 2\n\n[dropout]\np = 0.5\n\n"
                "[dense]\nunits = 3\n\n[train]\noptimizer = sgd\nlr = 0.1\nbatch = 2\nepochs = 1\n",
    "deconv.cfg": "[net]\ninput = 2,4,4\nclasses = 2\n\n[deconvolutional]\nfilters = 2\nsize = 2\nstride = 2\n\n"
                  "[avgpool]\nsize = 2\n\n[global_avgpool]\n\n[flatten]\n\n[dense]\nunits = 2\n",
    "route.cfg": "[net]\ninput = 2,4,4\nclasses = 2\n\n[conv]\nname = a\nfilters = 2\nsize = 1\n\n"
                 "[conv]\nname = b\nfilters = 2\nsize = 1\nfrom = -2\n\n[add]\nfrom = a,b\n\n"
                 "[concat]\nfrom = a,b\n\n[instancenorm]\n\n[batchnorm]\n\n[activation]\nactivation = tanh\n\n"
                 "[reshape]\nshape = 64\n\n[dense]\nunits = 2\n",
    "rbm.cfg": "[net]\ninput = 6\nclasses = 2\nnormalize = none\n\n[rbm]\nunits = 4\nvisible = gaussian\n\n"
               "[dense]\nunits = 2\n\n[pretrain]\nepochs = 1\nlr = 0.1\n",
}


def models():
    for name, text in TINY.items():
        put("fuzz_model", name, text)
    for f in sorted(os.listdir(os.path.join(ROOT, "models"))):
        if f.endswith(".cfg"):
            with open(os.path.join(ROOT, "models", f), "rb") as src:
                put("fuzz_model", f, src.read())


# ---- INI and JSON ----
def ini_json():
    put("fuzz_ini", "sections.ini", "# c\n[net]\ninput = 1,2,3 ; comment\n\n[a]\nk=v\n  x =  y  \n")
    put("fuzz_ini", "model.ini", TINY["conv.cfg"])
    put("fuzz_json", "object.json", '{"a":[1,-2.5e3,true,false,null],"b":{"c":"d\\u00e9\\n\\ud83d\\ude00"}}')
    put("fuzz_json", "header.json", safetensors_header_text())
    put("fuzz_json", "numbers.json", "[0,18446744073709551615,-9223372036854775808,1e308,1E-5,\"\\\\\\/\"]")


# ---- safetensors checkpoints, as ds_checkpoint_save writes them ----
MODEL = TINY["dense.cfg"]


def safetensors(tensors, meta, pad=True):
    header, blobs, off = {}, [], 0
    if meta is not None:
        header["__metadata__"] = meta
    for name, arr in tensors:
        b = arr.astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    while pad and len(h) % 8:
        h += b" "
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def dense_tensors():
    r = np.random.default_rng(0)
    return [("dense1.weight", r.standard_normal((3, 4))), ("dense1.bias", np.zeros(3)),
            ("dense2.weight", r.standard_normal((2, 3))), ("dense2.bias", np.ones(2))]


def meta_full():
    norm = {"channels": 4, "mean": [0, 0.5, 1, 2], "std": [1, 2, 0.5, 1]}
    rng = [1, 2, 3, 4]
    state = {"epoch": 1, "step": 10, "batch_in_epoch": 0, "best_metric": 0.5, "loader_rng": rng,
             "graph_rng": rng, "batch": 2, "epochs": 3, "seed": 7, "lr": 0.01, "val_split": 0.1}
    return {"format": "deepsky-1", "model": MODEL, "norm": json.dumps(norm), "state": json.dumps(state),
            "classes": json.dumps(["a", "b"])}


def safetensors_header_text():
    b = safetensors(dense_tensors(), meta_full())
    return b[8:8 + struct.unpack("<Q", b[:8])[0]].decode().rstrip()


def checkpoints():
    t = dense_tensors()
    put("fuzz_checkpoint", "full.safetensors", safetensors(t, meta_full()))
    put("fuzz_checkpoint", "minimal.safetensors", safetensors(t, {"format": "deepsky-1", "model": MODEL}))
    put("fuzz_checkpoint", "no_meta.safetensors", safetensors(t[:1], None))
    put("fuzz_checkpoint", "empty.safetensors", safetensors([], {}))


# ---- IDX (fuzz_idx: mode byte; odd = images + labels split at data[1..2]) ----
def idx(arr):
    a = np.asarray(arr, dtype=np.uint8)
    return bytes([0, 0, 8, a.ndim]) + b"".join(struct.pack(">I", d) for d in a.shape) + a.tobytes()


def idx_pair(images, labels):
    return bytes([1]) + struct.pack("<H", len(images)) + images + labels


def idx_seeds():
    img = idx(np.arange(2 * 3 * 3).reshape(2, 3, 3))
    lab = idx([0, 1])
    put("fuzz_idx", "read3d", b"\0" + img)
    put("fuzz_idx", "read4d", b"\0" + idx(np.arange(24).reshape(2, 3, 2, 2)))
    put("fuzz_idx", "read1d", b"\0" + lab)
    put("fuzz_idx", "read_gz", b"\0" + gzip.compress(img, mtime=0))
    put("fuzz_idx", "pair", idx_pair(img, lab))
    put("fuzz_idx", "pair_gz", idx_pair(gzip.compress(img, mtime=0), gzip.compress(lab, mtime=0)))
    # fuzz_idx_gz compresses each file itself; the last byte's bit 7 adds trailing bytes
    put("fuzz_idx_gz", "read3d", b"\0" + img + b"\0")
    put("fuzz_idx_gz", "read1d_trailing", b"\0" + lab + b"\x80")
    put("fuzz_idx_gz", "pair", idx_pair(img, lab) + b"\0")


# ---- NPY (mode byte: 0 read, 1 load X, 2 load X and Y split at data[1..2]) ----
def npy(arr, fortran=False):
    b = io.BytesIO()
    np.save(b, np.asfortranarray(arr) if fortran else arr)
    return b.getvalue()


def npy_seeds():
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    y = np.array([0, 1, 0, 1], dtype=np.float32)
    put("fuzz_npy", "f32", b"\0" + npy(x))
    put("fuzz_npy", "f64_3d", b"\0" + npy(np.linspace(0, 1, 8).reshape(2, 2, 2)))
    put("fuzz_npy", "u8_4d", b"\1" + npy(np.arange(16, dtype=np.uint8).reshape(2, 2, 2, 2)))
    put("fuzz_npy", "fortran", b"\0" + npy(x, fortran=True))
    put("fuzz_npy", "scalar", b"\0" + npy(np.float32(3)))
    xb, yb = npy(x), npy(y)
    put("fuzz_npy", "pair", b"\2" + struct.pack("<H", len(xb)) + xb + yb)
    put("fuzz_npy", "pair_i64", b"\2" + struct.pack("<H", len(xb)) + xb + npy(np.array([0, 1, 2, 1], dtype=np.int64)))


# ---- CSV (first line: the csv: options; "!" = a labels file) ----
def csv_seeds():
    put("fuzz_csv", "named", "\nf1,f2,label\n1,2,cat\n3.5,-4e2,dog\n5,6,cat\n")
    put("fuzz_csv", "label_opt", "label=y\ny,a,b\n0,1,2\n1,3,4\n")
    put("fuzz_csv", "header_no", "header=no\n1,2,0\n3,4,1\n")
    put("fuzz_csv", "skip", "skip=1,label=target\n3,2,a,b\na,b,target\n1,2,0\n3,4,1\n5,6,2\n")
    put("fuzz_csv", "label_none", "label=none\na,b\n1,2\n3,4\n")
    put("fuzz_csv", "crlf", "\r\na,b,c\r\n1,2,0\r\n3,4,1\r\n")
    put("fuzz_csv", "labels_int", "!\nlabel\n0\n1\n2\n")
    put("fuzz_csv", "labels_str", "!\nclass\nreal\nbogus\nreal\n")


# ---- FITS (first byte: channels= 0..4) ----
def card(k, v=None, comment=""):
    if v is None:
        return f"{k:<80}"[:80]
    if isinstance(v, bool):
        v = "T" if v else "F"
        s = f"{k:<8}= {v:>20}"
    elif isinstance(v, str):
        s = f"{k:<8}= '{v:<8}'"
    else:
        s = f"{k:<8}= {v!s:>20}"
    return f"{s} / {comment}"[:80].ljust(80) if comment else s.ljust(80)


def fits(arr, bitpix=-32, extra=()):
    a = np.asarray(arr)
    cards = [card("SIMPLE", True), card("BITPIX", bitpix), card("NAXIS", a.ndim)]
    cards += [card(f"NAXIS{i + 1}", d) for i, d in enumerate(reversed(a.shape))]
    cards += [card(k, v) for k, v in extra] + [card("END")]
    h = "".join(cards).encode()
    h += b" " * (-len(h) % 2880)
    dt = {-32: ">f4", -64: ">f8", 8: "u1", 16: ">i2", 32: ">i4"}[bitpix]
    d = a.astype(dt).tobytes()
    return h + d + b"\0" * (-len(d) % 2880)


def fits_seeds():
    img = np.arange(16, dtype=np.float32).reshape(4, 4)
    put("fuzz_fits", "image2d", b"\0" + fits(img))
    cube = np.arange(3 * 4 * 4, dtype=np.float32).reshape(3, 4, 4)
    cube[0, 0, 0] = np.nan
    put("fuzz_fits", "cube3", b"\3" + fits(cube))
    put("fuzz_fits", "array4d", b"\0" + fits(np.zeros((2, 3, 2, 2)), -64))
    put("fuzz_fits", "int16_scaled", b"\1" + fits(np.arange(16).reshape(4, 4), 16,
                                                  [("BSCALE", 0.5), ("BZERO", 10.0), ("BLANK", 3)]))
    put("fuzz_fits", "image2d_gz", b"\0" + gzip.compress(fits(img), mtime=0))
    put("fuzz_fits", "uint8_keys", b"\0" + fits(np.arange(16).reshape(4, 4), 8,
                                                [("OBJECT", "stamp"), ("PLANE1", "science")]))


# ---- PNG / JPEG ----
def png(w, h, ctype, depth, rows):
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    raw = b"".join(b"\0" + r for r in rows)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def image_seeds():
    put("fuzz_image", "grey.png", png(4, 3, 0, 8, [bytes(range(i, i + 4)) for i in range(3)]))
    put("fuzz_image", "rgb.png", png(2, 2, 2, 8, [bytes(range(6)), bytes(range(6, 12))]))
    put("fuzz_image", "rgba16.png", png(1, 2, 6, 16, [bytes(8), bytes(range(8))]))
    put("fuzz_image", "grey_alpha.png", png(2, 1, 4, 8, [bytes([1, 2, 3, 4])]))
    put("fuzz_image", "bits1.png", png(8, 1, 0, 1, [b"\xa5"]))
    # JPEG: tests/fuzz/seeds/python.jpg, a 16x16 baseline JPEG from CPython's
    # test data (Lib/test/imghdrdata, PSF licence), copied as is
    with open(os.path.join(HERE, "seeds", "python.jpg"), "rb") as f:
        put("fuzz_image", "python.jpg", f.read())


# ---- eval --meta CSV (first byte: the sample count; second: how rows find samples) ----
def meta_seeds():
    rows = ["index,label,kind,snr,length,angle,fwhm,sky,read_noise,flux",
            "0,1,real,12.5,3,0.5,2,100,5,1000", "1,0,cosmic_ray,0,0,0,2,100,5,10",
            "2,0,hot_pixel,0,0,0,2,100,5,10"]
    put("fuzz_meta", "labels", b"\3\0" + ("\n".join(rows) + "\n").encode())
    put("fuzz_meta", "labels_by_index", b"\3\7" + ("\n".join(rows) + "\n").encode())
    put("fuzz_meta", "kind_only", b"\2\0" + b"kind\nreal\nghost\n")
    put("fuzz_meta", "snr_only", b"\2\0" + b"snr\r\n7.5\r\n1e1\r\n")


# ---- data specs (against fuzz_spec.c's sandbox) ----
def spec_seeds():
    specs = ["npy:x.npy,y.npy", "x.npy", "csv:t.csv,label=label", "t.csv", "fits:c.fits,labels=y.npy,channels=1",
             "fits:c.fits,channels=2", "c.fits", "fits:fd", "fd", "img", "folder:img", "p.png", "idx:i3,i1",
             "fits:c.fits,labels=l.csv", "d", "npy:x.npy,l.csv"]
    for i, s in enumerate(specs):
        put("fuzz_spec", f"spec{i:02d}", s)


if __name__ == "__main__":
    models(); ini_json(); checkpoints(); idx_seeds(); npy_seeds(); csv_seeds()
    fits_seeds(); image_seeds(); meta_seeds(); spec_seeds()
    print("seeds written to", OUT)
