"""Portable golden inputs: an integer-only, counter-based generator (golden/FORMAT.md).

No NumPy RNG streams and no libm: every value is a function of ``(seed, stream, index)``
through SplitMix64 and integer arithmetic, so a C/Rust port reproduces every bit:

- ``splitmix64(z)``: ``z += 0x9E3779B97F4A7C15``; ``z = (z ^ z>>30) * 0xBF58476D1CE4E5B9``;
  ``z = (z ^ z>>27) * 0x94D049BB133111EB``; ``return z ^ z>>31`` (all mod 2**64).
- ``key = splitmix64(seed * 256 + stream)``; ``word(i) = splitmix64(key + i)`` (mod 2**64).
- element i of a tensor (C order) uses words ``4i .. 4i+3``. The 12 16-bit chunks of words
  ``4i..4i+2`` (low chunk first) give the Irwin-Hall integer ``S = sum(chunks) - 6*65536``
  (``S = 1`` if it is 0), an approximately unit-normal value ``S * 2**-16``; word ``4i+3``
  (``extra``) drives the data set's choices.
- data sets transform ``(S, E = -16)`` exactly (below), then the value is truncated toward
  zero onto the dtype's grid (precision p, smallest normal exponent emin): with
  ``e = E + bitlen(|S|) - 1`` and ``q = max(e, emin) - p + 1``, if ``q > E`` then
  ``S = sign(S) * (|S| >> (q - E))``, ``E = q``. The value is ``S * 2**E``.
"""
from __future__ import annotations

import numpy as np

from .dtypes import CaseDtype

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)

STREAMS = {"x": 1, "w": 2, "b": 3, "grad_y": 4}
IMAG_STREAM_OFFSET = 16
DATASETS = ("normal", "large", "tiny", "cancel", "sparse", "special")

# Power-of-two exponents per part format (data sets "large" and "tiny"): products of two
# inputs then sit near the format's overflow / in its subnormal range.
LARGE_EXP = {"float16": 7, "bfloat16": 63, "float32": 63, "float64": 511}
TINY_EXP = {"float16": -10, "bfloat16": -65, "float32": -68, "float64": -530}


def splitmix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64 finalizer of ``z + gamma`` on uint64 arrays (wrapping arithmetic)."""
    z = np.asarray(z, np.uint64) + _GAMMA
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def words(seed: int, stream: int, count: int) -> np.ndarray:
    """``word(i)`` for ``i < count``."""
    key = splitmix64(np.array([(seed * 256 + stream) % 2**64], np.uint64))[0]
    with np.errstate(over="ignore"):
        return splitmix64(key + np.arange(count, dtype=np.uint64))


def irwin_hall(w4: np.ndarray) -> np.ndarray:
    """``S`` from words ``4i..4i+2`` (array of shape (n, 4)); int64."""
    chunks = [(w4[:, j] >> np.uint64(16 * c)) & np.uint64(0xFFFF) for j in range(3) for c in range(4)]
    s = np.sum(np.stack(chunks).astype(np.int64), axis=0) - 6 * 65536
    return np.where(s == 0, 1, s)


def truncate_to_grid(S: np.ndarray, E: np.ndarray, precision: int, emin: int):
    """Truncate ``S * 2**E`` toward zero onto the grid of a format (see module doc)."""
    mag = np.abs(S)
    bits = np.frexp(mag.astype(np.float64))[1].astype(np.int64)  # bit length; exact below 2**53
    e = E + bits - 1
    q = np.maximum(e, emin) - precision + 1
    sh = np.maximum(q - E, 0)
    S = np.sign(S) * (mag >> np.minimum(sh, 63))
    return S, E + sh


def generate(seed: int, stream: int, shape, dataset: str, part: str, allowed_special=None):
    """Exact float64 values of one real tensor (one part of a complex one)."""
    from .dtypes import FORMATS
    n = int(np.prod(shape))
    w = words(seed, stream, 4 * n).reshape(n, 4)
    S = irwin_hall(w)
    extra = w[:, 3]
    E = np.full(n, -16, np.int64)
    fmt = FORMATS[part]
    if dataset == "large":
        E += LARGE_EXP[part]
    elif dataset == "tiny":
        E += TINY_EXP[part]
    elif dataset == "cancel":
        # +-2**(p//2) (sign from extra bit 0) plus the normal value: large terms cancel
        big = np.int64(1) << np.int64(16 + fmt.precision // 2)
        S = np.where((extra & np.uint64(1)) == 0, big, -big) + S
    elif dataset == "sparse":
        S = np.where((extra & np.uint64(3)) == 0, S, 0)
    elif dataset not in ("normal", "special"):
        raise ValueError(f"dataset: unknown {dataset!r}; expected one of {DATASETS}")
    S, E = truncate_to_grid(S, E, fmt.precision, fmt.emin)
    v = np.ldexp(S.astype(np.float64), E)
    if dataset == "special" and allowed_special is not None:
        pick = ((extra >> np.uint64(8)) % np.uint64(64)) == 0
        pick &= allowed_special.reshape(-1)
        kind = (extra % np.uint64(3)).astype(np.int64)
        v = np.where(pick & (kind == 0), np.nan, np.where(pick & (kind == 1), np.inf,
                                                         np.where(pick & (kind == 2), -np.inf, v)))
    return v.reshape(shape)


def generate_tensor(seed: int, name: str, shape, dataset: str, cd: CaseDtype, allowed_special=None):
    """A tensor of case dtype ``cd`` (real, or complex from two streams); specials only
    where ``allowed_special`` is True. Complex specials are NaN in both parts (inf in
    complex products, and NaN spilling between parts, depend on the multiplication
    algorithm, so golden data avoid them)."""
    from .dtypes import from_float64_parts
    stream = STREAMS[name]
    re = generate(seed, stream, shape, dataset, cd.part.name, allowed_special)
    im = None
    if cd.is_complex:
        im = generate(seed, stream + IMAG_STREAM_OFFSET, shape, dataset, cd.part.name, None)
        special = ~np.isfinite(re)
        re = np.where(special, np.nan, re)
        im = np.where(special, np.nan, im)
    return from_float64_parts(re, im, cd)
