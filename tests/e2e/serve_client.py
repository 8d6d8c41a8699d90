"""What tests/e2e/test_serve.sh and bench/serve_load.py send to `deepsky serve`:
NPY, FITS and PNG bodies of 1x8x8 stamps, and one POST or GET over http.client."""
import http.client, io, json, struct, zlib
import numpy as np


def npy(x):
    b = io.BytesIO()
    np.save(b, np.asarray(x, np.float32))
    return b.getvalue()


def fits(img):
    """A float32 FITS image [h, w], by hand (80-character cards in 2880-byte blocks)."""
    h, w = img.shape
    cards = ["SIMPLE  =                    T", "BITPIX  =                  -32", "NAXIS   =                    2",
             f"NAXIS1  = {w:20d}", f"NAXIS2  = {h:20d}", "END"]
    head = "".join(c.ljust(80) for c in cards).encode()
    head += b" " * (-len(head) % 2880)
    data = np.asarray(img, ">f4").tobytes()
    return head + data + b"\0" * (-len(data) % 2880)


def png(img):
    """An 8-bit grey PNG of img [h, w] (0..255)."""
    raw = b"".join(b"\0" + bytes(int(v) for v in row) for row in img)
    chunk = lambda k, d: struct.pack(">I", len(d)) + k + d + struct.pack(">I", zlib.crc32(k + d))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", len(img[0]), len(img), 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def call(port, method, path, body=None, timeout=30, conn=None):
    """(status, parsed JSON or None) of one request; conn: a kept-alive connection to reuse."""
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    c.request(method, path, body=body, headers={"Content-Type": "application/octet-stream"} if body is not None else {})
    r = c.getresponse()
    data = r.read()
    if conn is None:
        c.close()
    try:
        return r.status, json.loads(data)
    except ValueError:
        return r.status, None
