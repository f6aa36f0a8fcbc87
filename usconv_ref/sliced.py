"""Exact contractions at BLAS speed: error-free slicing of the operands (the Ozaki scheme).

Every output of the op is a bilinear contraction ``F(a, b)`` (forward: ``F(x, w)``; grad_x:
``F(gy, conj w)``; grad_w: ``F(gy, conj x)``; grad_b: ``F(gy, 1)``), and the plain float64
kernels of :mod:`usconv_ref.fast` evaluate ``F`` with BLAS. Those are exact whenever the
operands are integers whose products sum, per output element and in absolute value, to at most
``2**53``: every partial sum is then an integer of at most 53 bits, so no order, blocking or FMA
can round. This module cuts the operands into such integers.

Slabs. The elements of ``a`` that meet in one output element share an exponent ``E`` with
``|a| < 2**E`` on their *slab* (forward: all of ``x[n, group]``; the weights of one output
channel; see the ``_*_slabs`` functions). Slicing with ``beta`` bits per slice::

    r_0 = a * 2**(beta - E),   q_i = rint(r_i),   r_{i+1} = (r_i - q_i) * 2**beta

so ``a = sum_{i<s} q_i * 2**(E - beta*(i+1))`` exactly once ``s*beta`` covers the slab's bits
(``E`` down to its lowest set bit; we use ``E - (min exponent - precision)``, an upper bound),
every step is exact (power-of-two scalings of values far from under/overflow, and ``r - rint(r)``
is the fraction of ``r``), and ``|q_i| <= 2**beta``. We check that the last remainder is zero.

Passes. With ``s_a``, ``s_b`` slices, ``sum_{i,j} F(q_a,i, q_b,j) 2**(E_a + E_b - beta(i+j+2))``
is the exact value. Pairs with equal ``d = i + j`` share a weight and are added into one
float64 buffer per ``d``; with ``n`` products per element, ``T`` real terms per product (2 for
complex parts) and at most ``m = min(s_a, s_b)`` pairs per ``d``, choosing
``2*beta + log2(n*T*m) <= 53`` keeps every buffer exact. ``beta`` is chosen to minimize the
number of passes ``s_a * s_b``.

Combination. Buffer ``d`` is an integer of at most 53 bits at weight
``2**(base + beta*(s_a + s_b - 2 - d))`` with ``base = E_a + E_b - beta*(s_a + s_b)``, so the
buffers are int64 limbs of width ``beta`` (:class:`~usconv_ref.numerics.RowSums` with
``width=beta``) after carrying; the bias is placed at its own offset. Rounding is then the same
as for the term-list engine of :mod:`usconv_ref.correlation`.

Returns None (the caller uses the term-list engine) for non-finite inputs, empty tensors, and
exponent spreads that need more than ``MAX_PASSES`` passes or ``MAX_LIMBS`` limbs.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Callable

import numpy as np

from . import fast
from .numerics import RowSums, _fast_two_sum, _two_prod, _two_sum, decide, normalize_sign, round_exact
from .padding import forward_positions, source_index
from .spec import Geometry

MAX_PASSES = 64
MAX_LIMBS = 64
_CHUNK = 1 << 15  # rows rounded at a time (temporaries stay in cache)
_MANT = 53


@dataclass(frozen=True)
class Operand:
    """One operand of a contraction: its real parts (``[re]`` or ``[re, im]``, float64, in the
    layout the slab axes refer to), its format precision and slab axes."""

    parts: list
    precision: int
    axes: tuple

    def slab(self):
        """``(E, bits)``: per slab (keepdims) the exponent with ``|a| < 2**E`` (0 for an
        all-zero slab) and the largest ``E - (lowest exponent - precision)`` over the slabs,
        an upper bound on the bits any slab needs."""
        amax = None
        amin = None
        for p in self.parts:
            ab = np.abs(p)
            mx = np.max(ab, axis=self.axes, keepdims=True, initial=0.0)
            mn = np.min(np.where(ab > 0, ab, np.inf), axis=self.axes, keepdims=True, initial=np.inf)
            amax = mx if amax is None else np.maximum(amax, mx)
            amin = mn if amin is None else np.minimum(amin, mn)
        E = np.frexp(amax)[1].astype(np.int64)
        nz = amax > 0
        if not nz.any():
            return E, 0
        low = np.frexp(np.where(nz, amin, 1.0))[1].astype(np.int64) - self.precision
        return E, int(np.max(np.where(nz, E - low, 0)))


def slices(parts: list, E: np.ndarray, beta: int, count: int):
    """Yield ``count`` slices (each a list over parts of integer-valued float64 arrays with
    ``|q| <= 2**beta``) with ``a = sum_i q_i * 2**(E - beta*(i+1))``; asserts that nothing
    is left over."""
    shift = (beta - E).astype(np.int32)
    rs = [np.ldexp(p, shift) for p in parts]
    for i in range(count):
        if i:
            rs = [np.ldexp(r, beta) for r in rs]
        qs = [np.rint(r) for r in rs]
        rs = [r - q for r, q in zip(rs, qs)]
        yield qs
    if any(r.any() for r in rs):  # pragma: no cover - excluded by the bits bound
        raise AssertionError("sliced: operand not exhausted by its slices")


def choose_beta(bits_a: int, bits_b: int, n_products: int):
    """``(beta, s_a, s_b)`` minimizing the passes ``s_a * s_b`` (``s = ceil(bits / beta)``)
    subject to ``2*beta + ceil(log2(n_products * min(s_a, s_b))) <= 53``."""
    best = None
    for beta in range(26, 7, -1):
        sa, sb = -(-bits_a // beta), -(-bits_b // beta)
        count = max(1, n_products * max(1, min(sa, sb)))
        if 2 * beta + int(np.ceil(np.log2(count))) > _MANT:
            continue
        if best is None or sa * sb < best[1] * best[2]:
            best = (beta, sa, sb)
    return best


def _place(limbs: np.ndarray, base: np.ndarray, values: np.ndarray, width: int):
    """Add finite float64 ``values`` (one per row) exactly into ``limbs`` (width ``width``,
    weights ``2**(base + width*i)``), growing the limb array at either end as needed.
    Returns ``(limbs, base)``."""
    m, e = np.frexp(values)
    M = np.ldexp(m, _MANT).astype(np.int64)
    off = e.astype(np.int64) - _MANT - base
    nz = M != 0
    if not nz.any():
        return limbs, base
    low = int(np.min(np.where(nz, off, 0)))
    if low < 0:  # grow downwards by whole limbs
        grow = -(low // width)
        limbs = np.concatenate([np.zeros((limbs.shape[0], grow), np.int64), limbs], axis=1)
        base = base - grow * width
        off = off + grow * width
    off = np.where(nz, off, 0)
    q, r = off // width, off % width
    need = int(q.max()) + 2 + -(-_MANT // width)
    if need > limbs.shape[1]:
        limbs = np.concatenate([limbs, np.zeros((limbs.shape[0], need - limbs.shape[1]), np.int64)], axis=1)
    rows = np.arange(limbs.shape[0])
    lo = (M & ((np.int64(1) << (width - r)) - 1)) << r  # < 2**width
    hi = M >> (width - r)  # floor: M = hi * 2**(width-r) + (lo >> r)
    limbs[rows, q] += lo
    limbs[rows, q + 1] += hi
    return limbs, base


Combo = list  # per output part: [(sign, index into a.parts, index into b.parts)]


def contract(a: Operand, b: Operand, F: Callable, combos: Combo, n_products: int,
             a_to_out: Callable, b_to_out: Callable, out_shape: tuple, bias=None):
    """Exact ``part_p = sum_(sign, ia, ib) sign * F(a.parts[ia], b.parts[ib]) (+ bias_p)`` for
    every output part, as one :class:`RowSums` per part (rows in C order of ``out_shape``),
    or None when the spread of exponents is beyond the caps. ``a_to_out``/``b_to_out`` map a
    slab exponent array onto ``out_shape`` (broadcasting); ``bias`` is None or one float64
    array per part broadcastable to ``out_shape``."""
    Ea, bits_a = a.slab()
    Eb, bits_b = b.slab()
    terms = max(len(c) for c in combos)
    rows = int(np.prod(out_shape))
    if bits_a == 0 or bits_b == 0:  # an all-zero operand: the sum is the bias alone
        beta, sa, sb = 26, 0, 0
    else:
        choice = choose_beta(bits_a, bits_b, n_products * terms)
        if choice is None:
            return None
        beta, sa, sb = choice
        if sa * sb > MAX_PASSES or (max(sa, sb) - 1) * beta > 900:  # keep slicing clear of underflow
            return None
    n_diag = max(sa + sb - 1, 0)
    bufs = [[np.zeros(out_shape) for _ in range(n_diag)] for _ in combos]
    b_slices = list(slices(b.parts, Eb, beta, sb)) if sb else []
    for i, qa in enumerate(slices(a.parts, Ea, beta, sa) if sa else ()):
        for j, qb in enumerate(b_slices):
            for p, combo in enumerate(combos):
                for sign, ia, ib in combo:
                    t = F(qa[ia], qb[ib])
                    if sign > 0:
                        bufs[p][i + j] += t
                    else:
                        bufs[p][i + j] -= t
    base = np.broadcast_to(a_to_out(Ea) + b_to_out(Eb) - beta * (sa + sb), out_shape).reshape(-1).copy()
    out = []
    for p in range(len(combos)):
        pb = None if bias is None else np.broadcast_to(bias[p], out_shape).reshape(-1)
        out.append(SlicedSums([d.reshape(-1) for d in bufs[p][::-1]], base, beta, pb))
    return out


@dataclass
class SlicedSums:
    """Exact values ``V_r = sum_i diag[i][r] * 2**(base[r] + width*i) + bias[r]``: integer-valued
    float64 ``|diag| <= 2**53`` (least significant first), finite float64 bias or None."""

    diag: list
    base: np.ndarray
    width: int
    bias: np.ndarray | None

    def __len__(self) -> int:
        return self.base.shape[0]

    def row_sums(self, rows: np.ndarray) -> RowSums | None:
        """The rows' exact values as integer limbs of width ``width`` (None beyond MAX_LIMBS)."""
        width, n = self.width, len(self.diag)
        limbs = np.zeros((rows.size, n + 1 + -(-_MANT // width)), np.int64)
        for i, d in enumerate(self.diag):
            limbs[:, i] = d[rows].astype(np.int64)
        base = self.base[rows]
        if self.bias is not None:
            limbs, base = _place(limbs, base, self.bias[rows], width)
        if limbs.shape[1] > MAX_LIMBS:
            return None
        neg = normalize_sign(limbs, width)
        zeros = np.zeros(rows.size, bool)
        return RowSums(limbs, neg, base, zeros, zeros.astype(np.int8), width)

    def approx(self, double: bool):
        """``(S, Sl, A)`` with ``V = (S + Sl + e) * 2**base``, ``|e| <= err_factor * A`` (see
        :meth:`round`), ``A >= sum of the magnitudes`` in those units; rows whose bias does not
        scale exactly get ``A = inf``. ``double``: ``S + Sl`` a cascaded (Sum2) double-double
        sum, else ``Sl = 0``."""
        terms = [ldexp_safe(d, self.width * i) for i, d in enumerate(self.diag)]
        bad = None
        if self.bias is not None:
            with np.errstate(over="ignore", under="ignore"):
                bb = np.ldexp(self.bias, -self.base)
            bad = ~np.isfinite(bb) | (np.ldexp(bb, self.base) != self.bias)
            terms.append(np.where(bad, 0.0, bb))
        S = np.zeros(len(self))
        Sl = np.zeros(len(self))
        A = np.zeros(len(self))
        for t in terms:
            if double:
                S, e = _two_sum(S, t)
                Sl += e
            else:
                S += t
            A += np.abs(t)
        if bad is not None:
            A = np.where(bad, np.inf, A)
        return S, Sl, A

    def round(self, scale, fmt) -> np.ndarray:
        """``round_fmt(scale * V)`` per row, in chunks of rows that stay in cache."""
        rows = len(self)
        if rows <= _CHUNK:
            return self._round(scale, fmt)
        out = np.empty(rows)
        for r0 in range(0, rows, _CHUNK):
            sl = slice(r0, min(rows, r0 + _CHUNK))
            part = SlicedSums([d[sl] for d in self.diag], self.base[sl], self.width,
                              None if self.bias is None else self.bias[sl])
            out[sl] = part._round(scale, fmt)
        return out

    def _round(self, scale, fmt) -> np.ndarray:
        """``round_fmt(scale * V)`` per row. Fast tier: ``S`` (float64 sum, formats of at most
        24 bits) or the double-double ``S + Sl`` (wider formats) times the scale's leading
        part(s); with ``n`` summed terms and ``u = 2**-53``, ``|S - V| <= 1.01 n u A`` and
        ``|S + Sl - V| <= (n u)**2 A`` (Ogita-Rump-Oishi), so ``z`` is within ``|sh| A (n+6) u``
        resp. ``|sh| A (n+2)**2 u**2 + 2**-98 |z|`` of ``scale * V``. :func:`decide` rounds what
        that bound allows (and where the sign is certain); the rest goes through the limbs."""
        rows = len(self)
        n = len(self.diag) + (self.bias is not None)
        if scale.extreme or n == 0 or self.width * n + _MANT > 1000:
            rs = self.row_sums(np.arange(rows))
            return _rounded_rows(rs, self, np.arange(rows), scale, fmt)
        double = fmt.precision > 24
        S, Sl, A = self.approx(double)
        sh, sl, es = scale.dd
        sh = np.float64(sh)
        if double:
            zh, zl = _two_prod(S, sh)
            zh, zl = _fast_two_sum(zh, zl + (S * sl + Sl * sh))
            err = abs(sh) * A * ((n + 2) ** 2 * 2.0**-106) + np.abs(zh) * 2.0**-98
            neg = zh < 0
            zh, zl = np.abs(zh), np.where(neg, -zl, zl)
            with np.errstate(invalid="ignore", over="ignore"):
                val, decided = decide(zh, zl, self.base + es, err, fmt)
            decided &= err < zh
        else:
            with np.errstate(invalid="ignore", over="ignore"):
                zh = S * sh
                val, decided = round_bits(zh, self.base + es, np.abs(sh) * A / np.abs(zh) * (n + 6), fmt)
            neg = zh < 0
        exact_zero = A == 0
        decided |= exact_zero
        out = np.where(exact_zero, 0.0, np.where(neg, -val, val))
        rest = np.flatnonzero(~decided)
        if rest.size:
            out[rest] = _rounded_rows(self.row_sums(rest), self, rest, scale, fmt)
        return out


_EXP_MASK = np.int64(0x7FF)
_ABS_MASK = np.int64(0x7FFFFFFFFFFFFFFF)


def round_bits(z: np.ndarray, off: np.ndarray, err_ulps: np.ndarray, fmt):
    """Round ``|z| * 2**off`` (float64 ``z``; formats of at most 26 bits) by integer operations
    on the float64 encoding: adding ``off`` to the exponent field is an exact scaling, and
    rounding the significand to ``p`` bits ties-to-even is an add and a mask (a carry moves
    into the exponent, as it should). ``err_ulps`` bounds the error of ``z`` in units in the
    last place of ``z``. Decided where the result is a normal number of ``fmt`` (or overflows)
    and the discarded bits are more than ``err_ulps + 1`` units away from the half-way point,
    with that error below a sixteenth of the quantum (so a value near a power of two that
    belongs to the binade below rounds alike). Returns ``(magnitudes, decided)``."""
    shift = _MANT - fmt.precision
    half = np.int64(1) << (shift - 1)
    mask = (np.int64(1) << shift) - 1
    mag = z.view(np.int64) & _ABS_MASK
    e = (mag >> 52) + off  # biased exponent of the scaled value
    ok = ((mag >> 52) > 0) & ((mag >> 52) < 2047) & (e - 1023 >= fmt.emin) & (e - 1023 <= fmt.emax)
    bits = mag + (np.where(ok, off, 0) << 52)
    d = bits & mask
    rounded = (bits + (half - 1) + ((bits >> shift) & 1)) & ~mask
    val = rounded.view(np.float64)
    val = np.where(val > fmt.max_finite, np.inf, val)
    k = err_ulps + 1.0
    decided = ok & (np.abs(d - half).astype(np.float64) > k) & (k < half / 8)
    return val, decided


def ldexp_safe(d: np.ndarray, e: int) -> np.ndarray:
    """``d * 2**e`` for the diagonal weights (exact: ``e <= 1000 - 53`` by the caller's check)."""
    return d if e == 0 else d * 2.0**e


def _rounded_rows(rs: RowSums | None, sums: SlicedSums, rows: np.ndarray, scale, fmt) -> np.ndarray:
    if rs is not None:
        return rs.round(scale, fmt)
    # Beyond the limb cap (bias and products apart by more than ~1500 bits): exact rationals.
    out = np.empty(rows.size)
    for k, r in enumerate(rows):
        v = Fraction(0)
        for i, d in enumerate(sums.diag):
            v += Fraction(int(d[r])) * Fraction(2) ** (int(sums.base[r]) + sums.width * i)
        if sums.bias is not None:
            v += Fraction(float(sums.bias[r]))
        out[k] = round_exact(v, scale, fmt) if v >= 0 else -round_exact(-v, scale, fmt)
    return out


def _finite(*arrays) -> bool:
    return all(a is None or np.isfinite(a).all() for a in arrays)


def _parts(re, im):
    return [re] if im is None else [re, im]


# Complex conventions (``s`` marks the conjugated factor): forward ``x*w``:
# re = xr wr - xi wi, im = xr wi + xi wr; backward ``gy*conj(s)``: re = gr sr + gi si,
# im = gi sr - gr si.
_PLAIN = [[(1, 0, 0), (-1, 1, 1)], [(1, 0, 1), (1, 1, 0)]]
_CONJ = [[(1, 0, 0), (1, 1, 1)], [(1, 1, 0), (-1, 0, 1)]]


def _combos(complex_: bool, conj: bool) -> Combo:
    if not complex_:
        return [[(1, 0, 0)]]
    return _CONJ if conj else _PLAIN


def forward(geo: Geometry, ops, padding_mode: str, precision: int):
    """Exact forward sums (before the scale) as one RowSums per part, or None."""
    if geo.N * geo.C_out * geo.L_out == 0 or not _finite(ops.xr, ops.xi, ops.wr, ops.wi, ops.br, ops.bi):
        return None
    G, Og, Cg = geo.groups, geo.Og, geo.Cg
    view = lambda v: v.reshape(geo.N, G, Cg, geo.L)
    wview = lambda v: v.reshape(G, Og, Cg, geo.K)
    a = Operand([view(p) for p in _parts(ops.xr, ops.xi)], precision, (2, 3))  # slab: x[n, group]
    b = Operand([wview(p) for p in _parts(ops.wr, ops.wi)], precision, (2, 3))  # slab: w[o]
    F = lambda x, w: fast.forward_raw(x.reshape(geo.N, geo.C_in, geo.L), w, geo, padding_mode)
    bias = None
    if ops.br is not None:
        bias = [bb.reshape(1, G, Og, 1) for bb in _parts(ops.br, ops.bi)]
        if ops.xi is not None and ops.bi is None:
            bias.append(np.zeros((1, G, Og, 1)))
    return contract(a, b, F, _combos(ops.xi is not None, False), Cg * geo.K,
                    lambda E: E, lambda E: E.reshape(1, G, Og, 1), (geo.N, G, Og, geo.L_out), bias)


def _input_fanin(geo: Geometry, padding_mode: str) -> int:
    """The most ``(k, t)`` pairs reading one input position (padding copies included)."""
    src = source_index(geo.L, geo.pl, geo.pr, padding_mode)
    j = src[forward_positions(geo.L_out, geo.K, geo.stride, geo.dilation)].ravel()
    return int(np.bincount(j[j >= 0], minlength=1).max(initial=0))


def grad_input(geo: Geometry, gyr, gyi, ops, padding_mode: str, precision: int):
    """Exact grad_x sums ``sum gy * conj(w)`` (before the scale), one RowSums per part, or None."""
    if geo.N * geo.C_in * geo.L == 0 or not _finite(gyr, gyi, ops.wr, ops.wi):
        return None
    G, Og, Cg = geo.groups, geo.Og, geo.Cg
    a = Operand([p.reshape(geo.N, G, Og, geo.L_out) for p in _parts(gyr, gyi)], precision, (2, 3))
    b = Operand([p.reshape(G, Og, Cg, geo.K) for p in _parts(ops.wr, ops.wi)], precision, (1, 3))
    F = lambda g, w: fast.grad_input_raw(g.reshape(geo.N, geo.C_out, geo.L_out), w.reshape(geo.C_out, Cg, geo.K),
                                         geo, padding_mode).reshape(geo.N, G, Cg, geo.L)
    n = Og * max(_input_fanin(geo, padding_mode), 1)
    return contract(a, b, F, _combos(gyi is not None, True), n,
                    lambda E: E, lambda E: E.reshape(1, G, Cg, 1), (geo.N, G, Cg, geo.L))


def grad_weight(geo: Geometry, gyr, gyi, ops, padding_mode: str, precision: int):
    """Exact grad_w sums ``sum_{n,t} gy * conj(xp)`` (before the scale), or None."""
    if geo.C_out * geo.Cg * geo.K == 0 or geo.N * geo.L_out == 0 or not _finite(gyr, gyi, ops.xr, ops.xi):
        return None
    G, Og, Cg = geo.groups, geo.Og, geo.Cg
    a = Operand([p.reshape(geo.N, G, Og, geo.L_out) for p in _parts(gyr, gyi)], precision, (0, 3))
    b = Operand([p.reshape(geo.N, G, Cg, geo.L) for p in _parts(ops.xr, ops.xi)], precision, (0, 3))
    F = lambda g, x: fast.grad_weight_raw(g.reshape(geo.N, geo.C_out, geo.L_out), x.reshape(geo.N, geo.C_in, geo.L),
                                          geo, padding_mode)
    return contract(a, b, F, _combos(gyi is not None, True), geo.N * geo.L_out,
                    lambda E: E.reshape(G, Og, 1, 1), lambda E: E.reshape(G, 1, Cg, 1), (G, Og, Cg, geo.K))


def grad_bias(geo: Geometry, gyr, gyi, precision: int):
    """Exact grad_b sums ``sum_{n,t} gy`` (before the scale), or None."""
    if geo.C_out == 0 or geo.N * geo.L_out == 0 or not _finite(gyr, gyi):
        return None
    a = Operand([p.reshape(geo.N, geo.C_out, geo.L_out) for p in _parts(gyr, gyi)], precision, (0, 2))
    b = Operand([np.ones(1)], 1, (0,))
    combos = [[(1, 0, 0)]] if gyi is None else [[(1, 0, 0)], [(1, 1, 0)]]
    F = lambda g, one: g.sum(axis=(0, 2)) * one[0]
    return contract(a, b, F, combos, geo.N * geo.L_out,
                    lambda E: E.reshape(geo.C_out), lambda E: E.reshape(()), (geo.C_out,))
