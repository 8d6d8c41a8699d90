"""FID parity: ds_feature_stats and ds_frechet_distance (ctypes) against a
NumPy reference (mean, np.cov, and tr((c1^1/2 c2 c1^1/2)^1/2) from eigh, as
Heusel et al.'s formula; no scipy) on random 64-dimensional data whose
covariances do not commute, full-rank and rank-deficient (fewer samples
than features); and ds_nearest_neighbors against brute force.
"""
import ctypes as C
import sys

import numpy as np

import ds

DP = C.POINTER(C.c_double)
FP = C.POINTER(C.c_float)
IP = C.POINTER(C.c_int)
lib = ds.lib
lib.ds_feature_stats.restype = C.c_int
lib.ds_feature_stats.argtypes = [FP, C.c_int, C.c_int, DP, DP]
lib.ds_frechet_distance.restype = C.c_int
lib.ds_frechet_distance.argtypes = [C.c_int, DP, DP, DP, DP, DP]
lib.ds_nearest_neighbors.restype = C.c_int
lib.ds_nearest_neighbors.argtypes = [FP, C.c_int, FP, C.c_int, C.c_int, FP, IP]

failures = 0


def check(cond, what):
    global failures
    print(("ok   " if cond else "FAIL ") + what)
    failures += not cond


def dp(a):
    return a.ctypes.data_as(DP)


def stats(f):
    f = np.ascontiguousarray(f, dtype=np.float32)
    n, dim = f.shape
    m = np.zeros(dim)
    c = np.zeros((dim, dim))
    assert lib.ds_feature_stats(f.ctypes.data_as(FP), n, dim, dp(m), dp(c)) == 0, ds.error()
    return m, c


def fid(m1, c1, m2, c2):
    out = C.c_double()
    m1, c1, m2, c2 = (np.ascontiguousarray(a, dtype=np.float64) for a in (m1, c1, m2, c2))
    assert lib.ds_frechet_distance(len(m1), dp(m1), dp(c1), dp(m2), dp(c2), C.byref(out)) == 0, ds.error()
    return out.value


def sqrtm_psd(c):
    w, v = np.linalg.eigh((c + c.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def fid_ref(m1, c1, m2, c2):
    s1 = sqrtm_psd(c1)
    w = np.linalg.eigvalsh(s1 @ c2 @ s1)
    return float(((m1 - m2) ** 2).sum() + np.trace(c1) + np.trace(c2) - 2 * np.sqrt(np.clip(w, 0, None)).sum())


rng = np.random.default_rng(0)
dim = 64
for n, label in ((2000, "full rank"), (40, "rank-deficient (n 40 < dim 64)")):
    a = rng.standard_normal((dim, dim)) / 4
    b = rng.standard_normal((dim, dim)) / 4
    x = (rng.standard_normal((n, dim)) @ a + 0.3).astype(np.float32)
    y = (rng.standard_normal((n, dim)) @ b + np.linspace(-1, 1, dim)).astype(np.float32)
    m1, c1 = stats(x)
    m2, c2 = stats(y)
    xd = x.astype(np.float64)
    check(np.abs(m1 - xd.mean(0)).max() < 1e-12, f"{label}: mean = numpy's")
    check(np.abs(c1 - np.cov(xd, rowvar=False)).max() < 1e-12, f"{label}: covariance = np.cov (n - 1)")
    got, ref = fid(m1, c1, m2, c2), fid_ref(m1, c1, m2, c2)
    tol = 1e-9 if n > dim else 1e-6  # sqrt of round-off in the zero eigenvalues
    check(abs(got - ref) <= tol * max(1, ref), f"{label}: FID {got:.10f} = numpy's {ref:.10f}")
    check(abs(fid(m1, c1, m1, c1)) < 1e-9, f"{label}: FID of a set with itself is 0")

# nearest neighbours
q = rng.random((700, 50), dtype=np.float32)
r = rng.random((5000, 50), dtype=np.float32)
q[3] = r[4321]
dist = np.zeros(len(q), dtype=np.float32)
idx = np.zeros(len(q), dtype=np.int32)
assert lib.ds_nearest_neighbors(q.ctypes.data_as(FP), len(q), r.ctypes.data_as(FP), len(r), 50,
                                dist.ctypes.data_as(FP), idx.ctypes.data_as(IP)) == 0, ds.error()
d2 = ((q.astype(np.float64)[:, None, :] - r.astype(np.float64)[None, :, :]) ** 2).sum(-1)
check((idx == d2.argmin(1)).all(), "nearest neighbours: the brute-force argmin")
check(np.abs(dist - np.sqrt(d2.min(1))).max() < 1e-5, "nearest neighbours: distances")
check(idx[3] == 4321 and dist[3] == 0, "nearest neighbours: an exact copy at distance 0")

sys.exit(1 if failures else 0)
