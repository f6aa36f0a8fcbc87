"""Independent oracles for the reference, written from SPEC formulas only.

Nothing here imports ``usconv_ref``'s arithmetic: exact sums are Python ``Fraction`` loops
over the formulas, padding is re-derived from SPEC §2, scales are computed with ``decimal``
or exact rationals, and correct rounding picks the nearest of the neighbouring
representable values (``np.nextafter`` in the target dtype) by exact distance.
"""
from __future__ import annotations

import decimal
import math
from fractions import Fraction

import ml_dtypes
import numpy as np

REAL = {"float16": np.float16, "bfloat16": ml_dtypes.bfloat16, "float32": np.float32, "float64": np.float64}
UINT = {"float16": np.uint16, "bfloat16": np.uint16, "float32": np.uint32, "float64": np.uint64}
MAXF = {"float16": 65504.0, "bfloat16": float(ml_dtypes.finfo(ml_dtypes.bfloat16).max),
        "float32": float(np.finfo(np.float32).max), "float64": float(np.finfo(np.float64).max)}


def pad_source(j: int, L: int, mode: str):
    """SPEC §2 m(j) for j = i - pl; None for a zero."""
    if 0 <= j < L:
        return j
    if mode == "zeros":
        return None
    if mode == "reflect":
        return -j if j < 0 else 2 * (L - 1) - j
    if mode == "replicate":
        return 0 if j < 0 else L - 1
    if mode == "circular":
        return j % L
    raise AssertionError(mode)


def pads(K, dilation, padding):
    if padding == "valid":
        return 0, 0
    if padding == "same":
        tot = dilation * (K - 1)
        return tot // 2, tot - tot // 2
    return padding, padding


def exact_conv(x, w, b, gy, stride=1, padding=0, dilation=1, groups=1, mode="zeros"):
    """Exact Fraction results ``(raw_y, raw_gx, raw_gw, raw_gb)`` of SPEC §3/§5 WITHOUT the
    scales (raw_y includes the bias). x: nested (N, C_in, L) lists of complex-or-real
    Fractions given as (re, im) pairs; likewise w, b, gy. Direct loops."""
    N, C_in, L = len(x), len(x[0]), len(x[0][0])
    C_out, Cg, K = len(w), len(w[0]), len(w[0][0])
    Og = C_out // groups
    pl, pr = pads(K, dilation, padding)
    L_out = (L + pl + pr - dilation * (K - 1) - 1) // stride + 1
    zero = (Fraction(0), Fraction(0))
    mul = lambda a, bb: (a[0] * bb[0] - a[1] * bb[1], a[0] * bb[1] + a[1] * bb[0])
    conj = lambda a: (a[0], -a[1])
    add = lambda a, bb: (a[0] + bb[0], a[1] + bb[1])

    def xp(n, c, i):
        s = pad_source(i - pl, L, mode)
        return zero if s is None else x[n][c][s]

    y = [[[b[o] if b is not None else zero for _ in range(L_out)] for o in range(C_out)] for _ in range(N)]
    gx = [[[zero] * L for _ in range(C_in)] for _ in range(N)]
    gw = [[[zero] * K for _ in range(Cg)] for _ in range(C_out)]
    gb = [zero] * C_out
    for n in range(N):
        for o in range(C_out):
            g = o // Og
            for t in range(L_out):
                for c in range(Cg):
                    for k in range(K):
                        i = t * stride + k * dilation
                        y[n][o][t] = add(y[n][o][t], mul(w[o][c][k], xp(n, g * Cg + c, i)))
                        if gy is not None:
                            gw[o][c][k] = add(gw[o][c][k], mul(gy[n][o][t], conj(xp(n, g * Cg + c, i))))
                            s = pad_source(i - pl, L, mode)
                            if s is not None:  # adjoint of padding: add into the source element
                                gx[n][g * Cg + c][s] = add(gx[n][g * Cg + c][s], mul(gy[n][o][t], conj(w[o][c][k])))
                if gy is not None:
                    gb[o] = add(gb[o], gy[n][o][t])
    return y, gx, gw, gb


def to_fractions(a: np.ndarray):
    """Nested lists of (re, im) Fraction pairs from a real or complex float array (or a
    complex32 structured array)."""
    if a.dtype.names:
        re, im = a["real"].astype(np.float64), a["imag"].astype(np.float64)
    elif np.iscomplexobj(a):
        re, im = a.real.astype(np.float64), a.imag.astype(np.float64)
    else:
        re, im = a.astype(np.float64), np.zeros(a.shape)
    def rec(r, i):
        if r.ndim == 0:
            return (Fraction(float(r)), Fraction(float(i)))
        return [rec(r[j], i[j]) for j in range(r.shape[0])]
    return rec(re, im)


def scale_value(base: Fraction, power: float, digits: int = 120):
    """``base ** power`` as an exact Fraction when rational (integer power or perfect
    square for power = ±0.5), else a Decimal with ``digits`` digits."""
    e = Fraction(power)
    if e.denominator == 1:
        return base ** int(e)
    if e.denominator == 2:
        rn, rd = math.isqrt(base.numerator), math.isqrt(base.denominator)
        if rn * rn == base.numerator and rd * rd == base.denominator:
            return Fraction(rn, rd) ** int(e * 2)
    with decimal.localcontext() as ctx:
        ctx.prec = digits
        d = (decimal.Decimal(base.numerator) / decimal.Decimal(base.denominator)).ln() * decimal.Decimal(power)
        return d.exp()


def _neighbours(c, name):
    t = REAL[name]
    c = np.array(c, dtype=t)
    with np.errstate(over="ignore"):
        return [np.nextafter(c, t(-np.inf)), c, np.nextafter(c, t(np.inf))]


def _is_even(v, name) -> bool:
    return int(np.array(v, dtype=REAL[name]).view(UINT[name])) % 2 == 0


def round_exact(value, name: str, err: Fraction = Fraction(0)) -> float:
    """Nearest value of format ``name`` to ``value`` (a Fraction; or a Decimal known to within
    ``err`` absolute), ties to even, overflow to ±inf at ``max + ulp(max)/2``.
    Candidates: the neighbours of a first guess; chosen by exact distance. For a Decimal
    the test asserts the choice is decided by more than ``err``."""
    exact = type(value) is Fraction
    v = value if exact else Fraction(value)
    if v == 0:
        return 0.0
    mx = Fraction(MAXF[name])
    ulp_max = mx - Fraction(float(np.nextafter(np.array(MAXF[name], REAL[name]), REAL[name](0))))
    if abs(v) >= mx + ulp_max / 2:
        assert exact or abs(abs(v) - (mx + ulp_max / 2)) > err
        return math.inf if v > 0 else -math.inf  # (math.copysign would convert v: overflow past 2**1024)
    try:
        fv = float(v)
    except OverflowError:  # just below the overflow threshold of float64: beyond Python's float
        fv = math.inf if v > 0 else -math.inf
    guess = np.float64(fv) if abs(fv) <= MAXF[name] else (MAXF[name] if v > 0 else -MAXF[name])
    cands = set()
    for c in _neighbours(np.array(guess).astype(REAL[name]), name):
        for cc in _neighbours(c, name):
            if np.isfinite(float(cc)):
                cands.add(float(cc))
    dist = sorted((abs(Fraction(c) - v), c) for c in cands)
    (d0, c0), (d1, c1) = dist[0], dist[1]
    if d0 == d1:
        assert exact, "a tie can only be decided for an exact value"
        c0 = c0 if _is_even(c0, name) else c1
    else:
        assert d1 - d0 > 2 * err, "oracle could not decide the rounding: raise digits"
    if c0 == 0:
        return math.copysign(0.0, v)
    return c0


def oracle_scales(Cg, K, C_out, stride, groups, fan, constraint, power, digits=120):
    """(s_out, s_gx, s_gw) per SPEC §4: Fractions where rational, else Decimals."""
    s_out = scale_value(Fraction(Cg * K), -power[0], digits)
    s_gx = scale_value(Fraction(stride * groups, C_out * K), power[1], digits)
    s_gw = scale_value(Fraction(fan), -power[2], digits) if fan else None
    if constraint is None:
        return s_out, s_gx, s_gw
    if constraint == "to_output_scale":
        return s_out, s_out, s_gw
    if constraint == "to_grad_input_scale":
        return s_gx, s_gx, s_gw
    both_rational = isinstance(s_out, Fraction) and isinstance(s_gx, Fraction)
    if both_rational and constraint in ("amean", "hmean"):
        s = (s_out + s_gx) / 2 if constraint == "amean" else 2 / (1 / s_out + 1 / s_gx)
        return s, s, s_gw
    with decimal.localcontext() as ctx:
        ctx.prec = digits
        a = decimal.Decimal(s_out.numerator) / s_out.denominator if isinstance(s_out, Fraction) else s_out
        b = decimal.Decimal(s_gx.numerator) / s_gx.denominator if isinstance(s_gx, Fraction) else s_gx
        if constraint == "gmean":
            prod = Fraction(s_out) * Fraction(s_gx) if both_rational else None
            if prod is not None and math.isqrt(prod.numerator) ** 2 == prod.numerator and math.isqrt(prod.denominator) ** 2 == prod.denominator:
                s = Fraction(math.isqrt(prod.numerator), math.isqrt(prod.denominator))
            else:
                s = (a * b).sqrt()
        elif constraint == "amean":
            s = (a + b) / 2
        elif constraint == "hmean":
            s = 2 / (1 / a + 1 / b)
        else:
            raise AssertionError(constraint)
    return s, s, s_gw


def round_scaled(raw: Fraction, scale, name: str, digits: int = 120) -> float:
    """Correctly rounded ``scale * raw`` (scale a Fraction, or a Decimal of ``digits`` digits)."""
    if isinstance(scale, Fraction):
        return round_exact(scale * raw, name)
    err = abs(raw) * Fraction(abs(Fraction(scale))) * Fraction(1, 10 ** (digits - 5))
    return round_exact(Fraction(scale) * raw, name) if raw == 0 else _round_dec(Fraction(scale) * raw, name, err)


def _round_dec(v: Fraction, name: str, err: Fraction) -> float:
    return round_exact(_Approx(v), name, err)


class _Approx(Fraction):
    """A Fraction standing for an approximate value (so ties are not decided)."""
