"""Exact sums of products and correct rounding (see ../shared/NUMERICS.md).

Two steps, both order-independent by construction:

1. :func:`exact_row_sums` — for term arrays ``A, B`` of shape ``(rows, n)`` (float64
   holding values of the case dtype exactly) the exact value ``V_r = sum_j A[r,j]*B[r,j]``
   of every row, kept as an integer in base ``2**32`` limbs: each factor is split into
   an integer mantissa and an exponent (``np.frexp``), mantissa products are formed in
   int64 exactly (53-bit mantissas are split into 26/27-bit halves first), and every
   product is scattered into the limbs of its row at its binary offset with ``np.add.at``
   on int64 (integer addition: associative, so no summation order exists). Non-finite
   terms are decided first from the factors (IEEE: NaN factor, inf*0, +inf meeting -inf
   give NaN; otherwise an infinite term gives that infinity) and left out of the exact part.

2. :func:`round_scaled` — ``round_fmt(s * V_r)`` for an exact scale ``s``, rounded once
   to nearest-even into a :class:`~usconv_ref.dtypes.FloatFormat` (subnormals, overflow
   to ±inf). A double-double approximation of ``s * V`` with a proven relative error
   bound decides almost every element (Ziv's test: no rounding boundary of the target
   within the error bound); the rare rest (exact ties, near ties) is decided with exact
   rational arithmetic (rational scales) or ever more digits (irrational scales can never
   produce a tie, so this terminates).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from .dtypes import FloatFormat
from .scaling import ExactScale

LIMB = 32
_MASK_LIMB = (1 << LIMB) - 1
_HALF = 27
_MASK_HALF = (1 << _HALF) - 1
# Relative error bound of the double-double approximation of s*V (proved in round_scaled).
_DD_REL_ERR = 2.0**-96


@dataclass(frozen=True)
class RowSums:
    """Exact values of many sums: ``(-1)**neg[r] * sum_i limbs[r, i] * 2**(base[r] + width*i)``
    with ``0 <= limbs < 2**width`` (``8 <= width <= 32``); where ``nan[r]`` the value is NaN,
    where ``inf[r] != 0`` it is ``inf[r] * inf`` (the limbs of such rows are meaningless)."""

    limbs: np.ndarray
    neg: np.ndarray
    base: np.ndarray
    nan: np.ndarray
    inf: np.ndarray
    width: int = LIMB

    def __len__(self) -> int:
        return self.limbs.shape[0]

    def round(self, scale: ExactScale, fmt: FloatFormat) -> np.ndarray:
        return round_scaled(self, scale, fmt)

    def exact_int(self, r: int) -> tuple[int, int]:
        """Row ``r``'s finite magnitude as ``(N, e)``: the integer ``N >= 0`` with ``|value| = N * 2**e``."""
        v = 0
        for i in range(self.limbs.shape[1] - 1, -1, -1):
            v = (v << self.width) | int(self.limbs[r, i])
        return v, int(self.base[r])

    def exact(self, r: int) -> Fraction:
        """Row ``r``'s finite value as an exact Fraction (for the exact fallback and tests)."""
        v, e = self.exact_int(r)
        f = Fraction(v) * Fraction(2) ** e
        return -f if self.neg[r] else f


def _nonfinite_rows(a: np.ndarray, b: np.ndarray):
    """Per row: NaN if any term is NaN (a NaN factor, inf*0) or +inf terms meet -inf terms;
    else the sign of the infinite terms (0 if none). Also the finite-term mask."""
    fa, fb = np.isfinite(a), np.isfinite(b)
    finite = fa & fb
    rows = a.shape[0]
    if finite.all():
        return np.zeros(rows, bool), np.zeros(rows, np.int8), finite
    nan_t = np.isnan(a) | np.isnan(b) | (np.isinf(a) & (b == 0)) | (np.isinf(b) & (a == 0))
    inf_t = ~finite & ~nan_t
    sign = np.sign(a) * np.sign(b)
    pos = (inf_t & (sign > 0)).any(axis=1)
    neg = (inf_t & (sign < 0)).any(axis=1)
    nan = nan_t.any(axis=1) | (pos & neg)
    inf = np.where(nan, 0, pos.astype(np.int8) - neg.astype(np.int8)).astype(np.int8)
    return nan, inf, finite


def _mantissa_exponent(v: np.ndarray, bits: int):
    """``v = m * 2**e`` with int64 ``|m| < 2**bits`` (exact for values with <= bits
    significant bits; 0 gives m = 0)."""
    m, e = np.frexp(v)
    return np.ldexp(m, bits).astype(np.int64), e.astype(np.int64) - bits


def carry(limbs: np.ndarray, width: int = LIMB) -> None:
    """Normalize in place: limbs 0..n-2 into [0, 2**width) (floor division, so signed limbs
    work), the carry into the top limb."""
    for i in range(limbs.shape[1] - 1):
        c = limbs[:, i] >> width
        limbs[:, i] -= c << width
        limbs[:, i + 1] += c


def normalize_sign(limbs: np.ndarray, width: int = LIMB) -> np.ndarray:
    """Carry, then make every row nonnegative in place; returns the rows that were negative."""
    carry(limbs, width)
    neg = limbs[:, -1] < 0
    if neg.any():
        limbs[neg] = -limbs[neg]
        carry(limbs, width)
    return neg


def extract_levels(p: np.ndarray) -> np.ndarray:
    """Error-free compression of each row of finite float64 terms into a few float64
    partial sums with the same exact row sum (Rump-Ogita-Oishi extraction).

    Per level, with ``2**e > max|p|`` of the row and ``2**k >= 2n``, ``sigma = 2**(e+k)``:
    ``q = fl(sigma + p) - sigma`` and ``p - q`` are exact, every ``q`` is a multiple of
    ``ulp(sigma)/2`` and ``|sum q| <= n 2**e``, so the float64 sum of the ``q`` is exact in
    any order (fewer than 2**53 units). The remainder shrinks by ``2**(53-k)`` per level and
    becomes exactly zero once every bit is extracted (terms with at most 48 significant bits:
    products of float32/float16/bfloat16 values). Returns ``(rows, levels)``."""
    rows, n = p.shape
    if n == 0:
        return np.zeros((rows, 0))
    k = int(np.ceil(np.log2(n + 1))) + 1
    levels = []
    active = np.arange(rows)
    while active.size:
        pa = p[active]
        m = np.max(np.abs(pa), axis=1)
        keep = m > 0
        active, pa, m = active[keep], pa[keep], m[keep]
        if not active.size:
            break
        sigma = np.ldexp(1.0, np.frexp(m)[1] + k)[:, None]
        q = (sigma + pa) - sigma
        p[active] = pa - q
        level = np.zeros(rows)
        level[active] = q.sum(axis=1)
        levels.append(level)
    return np.stack(levels, axis=1) if levels else np.zeros((rows, 0))


def exact_row_sums(a: np.ndarray, b: np.ndarray, mantissa_bits: int = 53) -> RowSums:
    """Exact ``sum_j a[r, j] * b[r, j]`` for every row r of two float64 arrays of shape
    ``(rows, n)``. ``mantissa_bits`` (24 or 53) bounds the significant bits of every
    finite factor. With 24 (values from float16/bfloat16/float32) each product is exact in
    float64 and the rows are first compressed by :func:`extract_levels` (BLAS-free, about 20x
    faster); the few level sums, and every float64 case (three partial products per term),
    go through the integer limbs: int64 sums of < 2**32 pieces, exact for up to 2**30 terms."""
    a = np.ascontiguousarray(a, np.float64)
    b = np.ascontiguousarray(b, np.float64)
    rows, n = a.shape
    nan, inf, finite = _nonfinite_rows(a, b)
    if not finite.all():
        a = np.where(finite, a, 0.0)
        b = np.where(finite, b, 0.0)
    if mantissa_bits <= 26:  # products exact in float64: |p| in [2**-298, 2**256]
        a = extract_levels(a * b)
        b = np.ones_like(a)
    limbs, neg, base = _limb_sums(a, b)
    return RowSums(limbs, neg, base, nan, inf)


def _limb_sums(a: np.ndarray, b: np.ndarray):
    """``(limbs, neg, base)`` of the exact row sums of finite float64 factors (see
    :class:`RowSums`): 53-bit mantissas split into 26/27-bit halves, three partial products."""
    rows, n = a.shape
    ma, ea = _mantissa_exponent(a, 53)
    mb, eb = _mantissa_exponent(b, 53)
    sign = np.sign(ma) * np.sign(mb)
    ma, mb = np.abs(ma), np.abs(mb)
    exp = ea + eb
    nonzero = sign != 0
    big = np.iinfo(np.int64).max
    base = np.where(nonzero, exp, big).min(axis=1, initial=big)
    base = np.where(base == big, 0, base)
    off = np.where(nonzero, exp - base[:, None], 0)
    ah, al = ma >> _HALF, ma & _MASK_HALF
    bh, bl = mb >> _HALF, mb & _MASK_HALF
    partials = [(al * bl, off), (ah * bl + al * bh, off + _HALF), (ah * bh, off + 2 * _HALF)]
    top = max(int(q.max(initial=0)) for _, q in partials)
    nlimbs = (top + 2 * _HALF) // LIMB + 3  # value bits + carry headroom
    acc = np.zeros(rows * nlimbs, np.int64)
    row0 = (np.arange(rows, dtype=np.int64) * nlimbs)[:, None]
    for p, q in partials:  # p < 2**54, nonnegative
        for half, qq in ((p & _MASK_HALF, q), (p >> _HALF, q + _HALF)):
            v = half << (qq & (LIMB - 1))  # < 2**58
            idx = (row0 + (qq >> 5)).ravel()
            np.add.at(acc, idx, ((v & _MASK_LIMB) * sign).ravel())
            np.add.at(acc, idx + 1, ((v >> LIMB) * sign).ravel())
    limbs = acc.reshape(rows, nlimbs)
    neg = normalize_sign(limbs)
    return limbs, neg, base


# --- error-free transformations (float64, no FMA) ---------------------------------------

def _two_sum(a, b):
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _fast_two_sum(a, b):
    s = a + b
    return s, b - (s - a)


def _split(a):
    c = 134217729.0 * a  # 2**27 + 1
    hi = c - (c - a)
    return hi, a - hi


def _two_prod(a, b):
    p = a * b
    ah, al = _split(a)
    bh, bl = _split(b)
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def _leading_dd(limbs: np.ndarray, width: int):
    """Per row with a nonzero value: index t of the top nonzero limb and a double-double
    ``(h, l)`` of ``sum_i limbs[t-i] * 2**(-width i)`` (``1 + ceil(128/width)`` limbs; ``h`` in
    ``[1, 2**width)``, so the limbs left out weigh below ``2**-128 h``) with relative error below
    2**-100 (each of at most 16 double-double steps adds below 2**-105)."""
    nl = limbs.shape[1]
    t = nl - 1 - np.argmax(limbs[:, ::-1] != 0, axis=1)
    r = np.arange(limbs.shape[0])
    h = limbs[r, t].astype(np.float64)
    l = np.zeros_like(h)
    for i in range(1, 1 + -(-128 // width)):
        ti = t - i
        v = np.where(ti >= 0, limbs[r, np.maximum(ti, 0)], 0).astype(np.float64) * 2.0 ** (-width * i)
        s, e = _two_sum(h, v)
        h, l = _fast_two_sum(s, e + l)
    return t, h, l


def decide(zh: np.ndarray, zl: np.ndarray, off: np.ndarray, err: np.ndarray, fmt: FloatFormat):
    """Round ``z = (zh + zl) * 2**off`` (``zh >= 0``, ``|zl| <= ulp(zh)``) into ``fmt`` when
    that is certain for every value within ``err * 2**off`` of ``z``: returns ``(value,
    decided)``, the rounded magnitudes as float64 (valid where decided).

    The rounding quantum ``2**qe`` comes from the binade of z; ``N = z / 2**qe`` has its
    fraction compared with 1/2. Decided where the fraction is farther from 1/2 than the error
    (``margin``, in quanta), the margin is below 1/8 (a value near a power of two may lie in
    the binade below, whose finer grid rounds everything within a quarter quantum to that
    power too), or z and every value within err of it is far below the smallest subnormal /
    above the overflow threshold."""
    m, ex = np.frexp(zh)
    # binade of z: zh = fl(z) is a power of two with z possibly just below it when zl <= 0;
    # then take the binade below (see above: both round such values alike).
    e0 = ex.astype(np.int64) - 1 - ((m == 0.5) & (zl <= 0))
    ez = e0 + off
    p_ = fmt.precision
    qe = np.maximum(ez, fmt.emin) - (p_ - 1)  # exponent of the rounding quantum
    shift = np.clip(off - qe, -1000, 1000)
    nh, nl = np.ldexp(zh, shift), np.ldexp(zl, shift)  # N = z / 2**qe, N < 2**(p+2)
    fh = np.floor(nh)
    on_int = fh == nh
    fl = np.where(on_int, np.floor(nl), 0.0)
    fs, fe = _two_sum(np.where(on_int, 0.0, nh - fh), nl - fl)  # frac(N) = fs + fe exactly
    dev = (fs - 0.5) + fe
    margin = np.ldexp(err, shift) * (1.0 + 2.0**-20) + 2.0**-1000
    up = dev > margin
    decided = (up | (dev < -margin)) & (margin < 0.125)
    k = fh.astype(np.int64) + fl.astype(np.int64) + up
    with np.errstate(over="ignore", under="ignore"):
        val = np.ldexp(k.astype(np.float64), qe)
    # far out of range for every value within err of z: z < 2**(emin-p-1) and err < z put all
    # of them below half the smallest subnormal; z >= 2**(emax+2) and err < z/2 keep all above
    # the overflow threshold (err is not always small: truncated sums carry a tail bound)
    tiny = (ez + 2 <= fmt.emin - p_) & (err < zh)
    huge = (ez > fmt.emax + 1) & (2 * err < zh)
    val = np.where(tiny, 0.0, np.where(huge | (val > fmt.max_finite), np.inf, val))
    return val, decided | tiny | huge


def round_scaled(sums: RowSums, scale: ExactScale, fmt: FloatFormat) -> np.ndarray:
    """``round_fmt(scale * V_r)`` for every row, as float64 (each value exactly
    representable in ``fmt``, or ±inf/NaN): round to nearest, ties to even, once.

    Proof sketch of the fast path: ``V = T * 2**eV`` with ``T = (h + l)(1 + d1)``,
    ``|d1| < 2**-100`` (see :func:`_leading_dd`); ``s = (sh + sl) 2**es (1 + d2)``, ``|d2| <= 2**-100``;
    the double-double product adds < 2**-102. So ``z = (zh + zl) 2**(eV + es)`` is within
    ``2**-98 |z|`` of ``s * V``, and :func:`decide` is given the looser ``2**-96``."""
    rows = len(sums)
    out = np.zeros(rows, np.float64)
    nonzero = sums.limbs.any(axis=1)
    idx = np.flatnonzero(nonzero)
    undecided = np.zeros(0, np.int64)
    if scale.extreme:  # every nonzero value over/underflows (see ExactScale.EXTREME_LOG2)
        out[idx] = np.inf if scale.extreme > 0 else 0.0
        idx = idx[:0]
    if idx.size:
        t, h, l = _leading_dd(sums.limbs[idx], sums.width)
        val, decided = decide_scaled(h, l, sums.base[idx] + sums.width * t, scale, fmt)
        out[idx] = val
        undecided = idx[~decided]
    for r in undecided:
        out[r] = round_scaled_int(*sums.exact_int(r), scale, fmt)
    out = np.where(sums.neg, -out, out)
    out = np.where(sums.inf > 0, np.inf, np.where(sums.inf < 0, -np.inf, out))
    out = np.where(sums.nan, np.nan, out)
    return out


def decide_scaled(h: np.ndarray, l: np.ndarray, ev: np.ndarray, scale: ExactScale, fmt: FloatFormat):
    """:func:`decide` for ``scale * (h + l) * 2**ev`` (``h >= 0``, ``h + l`` within ``2**-100`` of
    the exact magnitude): the double-double product with the scale's ``(sh + sl) 2**es`` is within
    ``2**-98`` of the exact value, and :func:`decide` is given the looser ``2**-96``. Returns
    ``(magnitude, decided)``."""
    sh, sl, es = scale.dd
    p, pe = _two_prod(h, np.float64(sh))
    zh, zl = _fast_two_sum(p, pe + (h * sl + l * sh))
    return decide(zh, zl, ev + es, _DD_REL_ERR * zh, fmt)


def round_scaled_int(v: int, e: int, scale: ExactScale, fmt: FloatFormat) -> float:
    """``round_fmt(scale * v * 2**e)`` for an integer ``v >= 0``, exactly: in integers for a
    rational scale (:func:`round_ratio`, no Fraction normalisations), else :func:`round_exact`."""
    q = scale.rational
    if q is not None:
        return round_ratio(v * q.numerator, q.denominator, e, fmt)
    return round_exact(Fraction(v) * Fraction(2) ** e, scale, fmt)


def round_fraction(x: Fraction, fmt: FloatFormat) -> float:
    """Round an exact rational once to nearest-even into ``fmt`` (returned as float64)."""
    if x == 0:
        return 0.0
    sign = -1.0 if x < 0 else 1.0
    return sign * round_ratio(abs(x.numerator), x.denominator, 0, fmt)


def round_ratio(num: int, den: int, e2: int, fmt: FloatFormat) -> float:
    """Round ``x = num / den * 2**e2`` (integers, ``num >= 0``, ``den > 0``) once to nearest-even
    into ``fmt``, in integer arithmetic (returned as float64; ``inf`` beyond the largest finite
    value). With ``2**e <= x < 2**(e+1)`` and the quantum ``2**qe``, ``qe = max(e, emin) -
    (precision - 1)``: ``x / 2**qe = A / B`` with ``A = num * 2**max(e2 - qe, 0)``, ``B = den *
    2**max(qe - e2, 0)``; ``k, rem = divmod(A, B)``, up by one where ``2 rem > B`` or ``2 rem = B``
    and ``k`` is odd; the result ``k * 2**qe`` (exact in float64: ``k <= 2**precision``)."""
    assert num >= 0 and den > 0, "round_ratio: num >= 0, den > 0"
    if num == 0:
        return 0.0
    e = num.bit_length() - den.bit_length()  # 2**(e-1) < num/den < 2**(e+1)
    if (num << max(-e, 0)) < (den << max(e, 0)):
        e -= 1  # now 2**e <= num/den < 2**(e+1)
    qe = max(e + e2, fmt.emin) - (fmt.precision - 1)
    sh = e2 - qe
    a, b = (num << sh, den) if sh >= 0 else (num, den << -sh)
    k, rem = divmod(a, b)
    twice = 2 * rem
    if twice > b or (twice == b and k & 1):
        k += 1
    try:
        val = math.ldexp(float(k), qe)
    except OverflowError:
        return np.inf
    return np.inf if val > fmt.max_finite else val


def round_exact(v: Fraction, scale: ExactScale, fmt: FloatFormat) -> float:
    """``round_fmt(scale * v)`` decided exactly: with the rational scale, or with interval
    bounds on an irrational scale tightened until both ends round alike (an irrational
    multiple of a nonzero dyadic rational is never a tie, so this ends)."""
    if scale.rational is not None:
        return round_fraction(scale.rational * v, fmt)
    digits = 60
    while True:
        lo, hi = scale.interval(digits)
        a, b = round_fraction(lo * v, fmt), round_fraction(hi * v, fmt)
        if a == b:
            return a
        digits *= 2


def round_float64(v: np.ndarray, fmt: FloatFormat) -> np.ndarray:
    """Correctly round float64 values once into ``fmt`` (returned as float64). Unlike
    ``ml_dtypes``/torch float64 -> bfloat16 casts this never double-rounds."""
    v = np.asarray(v, np.float64)
    flat = v.reshape(-1, 1)
    sums = exact_row_sums(flat, np.ones_like(flat), 53)
    return round_scaled(sums, ExactScale.of(1), fmt).reshape(v.shape)
