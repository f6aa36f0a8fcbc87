"""Exact contractions at BLAS speed: error-free slicing of the operands (the Ozaki scheme).

Every output of the op is a bilinear contraction ``F(a, b)`` (forward: ``F(x, w)``; grad_x:
``F(gy, conj w)``; grad_w: ``F(gy, conj x)``; grad_b: ``F(gy, 1)``), and the plain float64
kernels of :mod:`usconv_ref.fast` evaluate ``F`` with BLAS. Those are exact whenever the
operands are integers whose products sum, per output element and in absolute value, to at most
``2**53``: every partial sum is then an integer of at most 53 bits, so no order, blocking or FMA
can round. This module cuts the operands into such integers.

Slabs. The elements of ``a`` that meet in one output element share an exponent ``E`` with
``|a| < 2**E`` on their *slab* (forward: all of ``x[n, group]`` and the weights of one output
channel; grad_x: ``gy[n, group]`` and ``w[group, :, c]``; grad_w: ``gy[:, o]`` and ``x[:, c]``).
Slicing with ``beta`` bits per slice (:func:`slices`)::

    r_0 = a * 2**(beta - E),   q_i = rint(r_i),   r_{i+1} = (r_i - q_i) * 2**beta

so ``a = sum_{i<s} q_i * 2**(E - beta*(i+1))`` exactly once ``s*beta`` covers the slab's bits
(``E`` down to its lowest set bit; we use ``E - (min exponent - precision)``, an upper bound),
every step is exact (power-of-two scalings of values far from under/overflow, and ``r - rint(r)``
is the fraction of ``r``), and ``|q_i| <= 2**beta``. We check that the last remainder is zero.

Passes (:class:`Plan`). With ``s_a`` slices of ``beta_a`` bits and ``s_b`` of ``beta_b``,
``sum_{i,j} F(q_a,i, q_b,j) 2**(base + shift(i, j))``, ``shift = beta_a(s_a-1-i) + beta_b(s_b-1-j)``,
``base = E_a + E_b - beta_a s_a - beta_b s_b``, is the exact value. Pairs with equal shifts add
into one float64 buffer; with ``n`` products per element, ``T`` real terms per product (2 for
complex parts) and at most ``m`` pairs per buffer, ``beta_a + beta_b + log2(n*T*m) <= 53``
keeps every buffer exact; :func:`choose_plan` takes the widths with the fewest passes.

Rounding (:class:`SlicedSums`). The buffers are summed in float64 (double-double for float64
results) with a proven error bound, and the rounding is decided by integer operations on the
float64 encoding (:func:`round_bits`, :func:`round_dd`); elements too close to a rounding
boundary go through exact integer limbs (:class:`~usconv_ref.numerics.RowSums`, width 24, the
bias placed at its own offset) and, at near-ties, rational arithmetic — the same as for the
term-list engine of :mod:`usconv_ref.correlation`.

Truncation (:func:`truncated_plan`, large contractions only: ``TRUNCATE_MIN_WORK``). Most slice
pairs of float64 operands only decide bits far below an output's last place. A truncated plan
computes the significant pairs only (a staircase: a slice ``i`` meets ``kb[i]`` b slices) and
carries a rigorous bound on everything omitted (:func:`tail_bound`: from the slicing itself,
``|later slices| <= 2**(beta-1)`` units and the remainders, times ``n_products``), added to
the rounding error (inflated by ``1 + 2**-40`` for the bound's own float operations); rows
that bound leaves undecided — including every row whose kept sum is zero — are rounded
exactly by a per-row fallback (the term lists of :mod:`usconv_ref.correlation` for the
block's rows), or, once a block has many of them, by recomputing the block with the complete
plan (and the later blocks of that contraction untruncated). Results are bit for bit those of
the complete plan.

Streaming. Inputs are converted, sliced, multiplied and rounded one (batch, group) block at a
time (:class:`Streamed`); contractions summed over the batch (grad_w, grad_b) gather their slab
exponents in a first pass and accumulate blocks into the small output's buffers.

Returns None (the caller uses the term-list engine) for non-finite inputs, empty tensors, and
exponent spreads that need more than ``MAX_PASSES`` passes or ``MAX_LIMBS`` limbs.
"""
from __future__ import annotations

import math
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import lru_cache, partial
from itertools import islice
from fractions import Fraction
from typing import Callable

import numpy as np

from . import fast
from .dtypes import to_float64_parts
from .numerics import (RowSums, _fast_two_sum, _two_prod, _two_sum, decide, decide_scaled, normalize_sign,
                       round_exact, round_scaled_int)
from .padding import forward_positions, source_index
from .spec import Geometry

MAX_PASSES = 64
MAX_LIMBS = 64
# Rows rounded at a time: temporaries stay in cache (128 KiB each; L2 is 1 MiB a core on the
# project's VM). An earlier measurement found 2**14 rows slower than 2**13: every temporary a
# fresh mapping above glibc's 128 KiB mmap threshold (~10**5 page faults a depthwise float64
# forward). Now the block's buffers (512 KiB, freed after each block) raise glibc's dynamic
# threshold after the first block, and 2**14 rows measured ~1,000 minor faults a forward as
# 2**13 did, and 5-15% less time (follow-up 8: ~55 NumPy calls a chunk, half the calls).
_CHUNK = 1 << 14
_BLOCK = 1 << 16  # output elements per streamed block (fewer blocks: fewer fallback term-list set-ups)
# Depthwise grad_w / grad_b blocks (of their inputs, the output being small) are this many
# times larger: each block costs a few dozen kernel calls per slice pair, each with a fixed
# set-up, on (N=1, 16 channel) blocks of the benchmark's depthwise backward; 4x: 64 channels.
_OVER_N_DW_BLOCKS = 4
_MANT = 53
_WIDTH = 24  # limb width of the exact fallback


def _stats(parts: list, axes: tuple):
    """Per slab (keepdims over ``axes``): the largest magnitude (NaN or inf where the slab has
    a non-finite value: the maximum propagates NaN) and the smallest nonzero one (inf for an
    all-zero slab). The latter from the encodings: for magnitudes the unsigned bit patterns
    order like the values, and ``bits - 1`` wraps zero to the largest pattern, so one
    subtraction and a minimum replace a mask and a masked assignment (slow)."""
    amax = amin = None
    one = np.uint64(1)
    for p in parts:
        ab = np.abs(p)
        mx = np.max(ab, axis=axes, keepdims=True, initial=0.0)
        low = np.subtract(ab.view(np.uint64), one, out=ab.view(np.uint64))  # in place: ab is ours
        mn = (np.min(low, axis=axes, keepdims=True, initial=np.iinfo(np.uint64).max) + one).view(np.float64)
        mn[mn == 0] = np.inf  # all zero (the wrapped pattern + 1 is 0)
        amax = mx if amax is None else np.maximum(amax, mx)
        amin = mn if amin is None else np.minimum(amin, mn)
    return amax, amin


def exponents(amax: np.ndarray, amin: np.ndarray, precision: int):
    """``(E, bits)``: per slab the exponent with ``|a| < 2**E`` (0 for an all-zero slab), and
    the largest ``E - (exponent of the smallest nonzero value - precision)`` over the slabs:
    an upper bound on the bits a slab needs (every value is a multiple of
    ``2**(its exponent - precision)``)."""
    E = np.frexp(amax)[1].astype(np.int64)
    nz = amax > 0
    if not nz.any():
        return E, 0
    low = np.frexp(np.where(nz, amin, 1.0))[1].astype(np.int64) - precision
    return E, int(np.max(np.where(nz, E - low, 0)))


def slices(parts: list, E: np.ndarray, beta: int, count: int, consume: bool = False, scratch=None):
    """Yield up to ``count`` slices (each a list over parts of integer-valued float64 arrays
    with ``|q| <= 2**beta``) with ``a = sum_i q_i * 2**(E - beta*(i+1))``, stopping early once
    the remainder is zero (later slices would be zero: their passes are skipped); asserts that
    nothing is left over. ``consume``: the parts may be overwritten (saves two copies).
    ``scratch`` (a :class:`~usconv_ref.fast._Scratch`): every slice is written into the same
    buffers (no fresh pages per slice), so a slice is valid only until the next is drawn."""
    if count == 0:  # the other operand is all zero: nothing to compute
        return
    rs = [_scale2(p, beta - E, p if consume else None) for p in parts]
    step = 2.0**beta
    for i in range(count):
        if i:
            for r in rs:
                np.multiply(r, step, out=r)  # exact: |r| <= 1/2 before
        qs = [np.rint(r, out=None if scratch is None else scratch.get(f"slice{k}", r.shape)) for k, r in enumerate(rs)]
        for r, q in zip(rs, qs):
            r -= q  # exact: the fraction of r
        yield qs
        if not any(_any_nonzero(r) for r in rs):
            return
    raise AssertionError("sliced: operand not exhausted by its slices")  # pragma: no cover - excluded by the bits bound


def _any_nonzero(r: np.ndarray) -> bool:
    """``r.any()``, answered by the first element where that is nonzero (a remainder of float64
    data before its last slice nearly always is: no pass over the block)."""
    return r.size > 0 and (bool(r.flat[0]) or bool(r.any()))


def _scale2(a: np.ndarray, k: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``a * 2**k`` (``k`` integers broadcasting against ``a``), exact where the result is
    finite and normal or zero: a product with the float64 powers ``2**k`` where those are
    normal numbers (``np.ldexp`` costs ~20 times a multiply), else ``np.ldexp``."""
    k = np.asarray(k)
    if k.size and -1022 <= int(k.min()) and int(k.max()) <= 1023:
        return np.multiply(a, np.ldexp(1.0, k.astype(np.int32)), out=out)
    return np.ldexp(a, k.astype(np.int32), out=out)


@dataclass(frozen=True)
class Plan:
    """How a contraction is sliced: ``s_a`` slices of ``beta_a`` bits times ``s_b`` of
    ``beta_b``. Pair ``(i, j)`` lands ``shift(i, j) = beta_a(s_a-1-i) + beta_b(s_b-1-j)`` bits
    above ``base = E_a + E_b - beta_a s_a - beta_b s_b``; pairs with equal shifts share a
    float64 buffer (``shifts`` lists the distinct ones, ``m`` the most pairs sharing one).

    Truncated plans (:func:`truncated_plan`): ``kb[i]`` is the number of b slices paired with
    a slice ``i`` (non-increasing; a slices beyond ``len(kb)`` are not computed at all), and
    ``tail`` a rigorous bound, in units of ``2**base``, on the magnitude of everything left
    out (per output element, for any inputs); 0 for a complete plan."""

    beta_a: int
    beta_b: int
    sa: int
    sb: int
    kb: tuple | None = None
    tail: float = 0.0

    def shift(self, i: int, j: int) -> int:
        return self.beta_a * (self.sa - 1 - i) + self.beta_b * (self.sb - 1 - j)

    @property
    def pairs(self) -> list:
        if self.kb is None:
            return [(i, j) for i in range(self.sa) for j in range(self.sb)]
        return [(i, j) for i, k in enumerate(self.kb) for j in range(k)]

    @property
    def shifts(self) -> list:
        return sorted({self.shift(i, j) for i, j in self.pairs})

    @property
    def m(self) -> int:
        return max(Counter(self.shift(i, j) for i, j in self.pairs).values(), default=1)

    @property
    def drop(self) -> int:
        return self.beta_a * self.sa + self.beta_b * self.sb

    @property
    def passes(self) -> int:
        return self.sa * self.sb if self.kb is None else sum(self.kb)

    @property
    def truncated(self) -> bool:
        return self.kb is not None


EMPTY_PLAN = Plan(26, 26, 0, 0)


@lru_cache(maxsize=4096)
def choose_plan(bits_a: int, bits_b: int, n_products: int) -> Plan | None:
    """The plan with the fewest passes (then fewest buffers, then the widest slices) such that
    every buffer stays exact: ``beta_a + beta_b + ceil(log2(n_products * m)) <= 53`` (each slice
    ``|q| <= 2**beta``). Each candidate's ``m`` and buffer count come from :func:`_pair_stats`
    (cached, shared by all calls) rather than from a fresh :class:`Plan`."""
    best = best_key = None
    most = math.inf  # the best plan's passes
    room = _MANT - _ceil_log2(max(1, n_products))
    for ba in range(8, 46):
        sa = -(-bits_a // ba)
        for bb in range(8, min(46, room - ba + 1)):
            sb = -(-bits_b // bb)
            passes = sa * sb
            if passes > most:
                continue
            m, n_shifts = _pair_stats(ba, bb, sa, sb)
            if ba + bb + _ceil_log2(max(1, n_products * m)) > _MANT:
                continue
            key = (passes, n_shifts, -(ba + bb))
            if best is None or key < best_key:
                best, best_key, most = Plan(ba, bb, sa, sb), key, passes
    return best


@lru_cache(maxsize=None)
def _pair_stats(ba: int, bb: int, sa: int, sb: int) -> tuple:
    """``(m, len(shifts))`` of the complete ``Plan(ba, bb, sa, sb)``: the most slice pairs
    sharing a shift ``ba (sa-1-i) + bb (sb-1-j)``, and the number of distinct shifts."""
    p = Plan(ba, bb, sa, sb)
    return p.m, len(p.shifts)


@lru_cache(maxsize=None)
def _ceil_log2(n: int) -> int:
    """``ceil(log2(n))`` as the planner has always computed it (float64 ``np.log2``; kept so
    that plans, and so the engine's buffers, stay as they were)."""
    return int(np.ceil(np.log2(n)))


def tail_bound(ba: int, bb: int, sa: int, sb: int, kb: tuple, n_products: int) -> Fraction:
    """Exact bound, in units of ``2**(E_a + E_b)``, on ``|sum of the pairs left out by kb|``
    per output element of ``n_products`` real products. With ``a_i = q_i 2**(E_a - beta_a(i+1))``
    the slices, ``|a_0| <= 2**E_a`` and ``|a_i| <= 2**(E_a - beta_a i - 1)`` for ``i >= 1``
    (each remainder ``r - rint(r)`` is at most 1/2, so later slices are at most ``2**(beta-1)``),
    and the remainder after ``k >= 1`` slices ``|R(k)| <= 2**(E - beta k - 1)``; ``R(0) = a``,
    ``|a| < 2**E``. The exact value is ``sum_{i < ka} [sum_{j < kb_i} F(a_i, b_j) + F(a_i,
    R_b(kb_i))] + F(R_a(ka), b)``, and ``|F(u, v)| <= n_products max|u| max|v|`` (every product
    of an output element takes one factor from each slab; complex parts count their real
    products). ``R(s) = 0`` once all ``s`` slices are taken (the slicing is exhaustive)."""
    return _tail(ba, bb, sa, sb, kb, n_products, Fraction(1))


def _tail(ba: int, bb: int, sa: int, sb: int, kb: tuple, n_products: int, one):
    """:func:`tail_bound`'s sum in the type of ``one``: exact with a Fraction, an estimate
    with a float (the planner's search)."""
    t = one * 0
    half = one / 2
    for i, k in enumerate(kb):
        if k < sb:
            ai = one if i == 0 else half
            rb = one if k == 0 else half / 2 ** (bb * k)
            t += ai / 2 ** (ba * i) * rb
    ka = len(kb)
    if ka < sa:
        t += half / 2 ** (ba * ka)
    return t * n_products


# A fallback row costs about this many passes over that row (exact term lists vs one BLAS
# product / one element-wise multiply-add per product): BLAS contractions, element-wise ones.
FALLBACK_COST = {"blas": 4000.0, "elementwise": 300.0}


@lru_cache(maxsize=4096)
def truncated_plan(bits_a: int, bits_b: int, n_products: int, cost: float) -> Plan | None:
    """A posteriori truncation: the plan that computes only the significant slice pairs
    (a staircase ``kb``), with :func:`tail_bound` on the rest, minimizing ``passes + cost * f``
    where ``f ~ min(1, 2**62 tail)`` is the expected share of elements whose rounding the bound
    leaves open (calibrated on normal data, where |V| ~ 2**(E_a + E_b)) and ``cost`` the price
    of one such element's exact fallback, in passes. None where it would not save a pass over
    :func:`choose_plan`. Every kept buffer stays exact as in :func:`choose_plan`."""
    full = choose_plan(bits_a, bits_b, n_products)
    if full is None or full.passes <= 2:
        return None
    lg = int(np.ceil(np.log2(max(1, n_products))))
    best, best_cost = None, float(full.passes)
    for ba in range(8, 46):
        sa = -(-bits_a // ba)
        if (sa - 1) * ba > 900:
            continue
        for bb in range(8, _MANT - lg - ba + 1):
            sb = -(-bits_b // bb)
            if (sb - 1) * bb > 900:
                continue
            levels = sorted({ba * i + bb * j for i in range(sa) for j in range(sb)})
            for cut in levels[:-1]:  # keep the pairs at levels <= cut (the last level: complete)
                kb = tuple(k for k in (min(sb, max(0, (cut - ba * i) // bb + 1)) for i in range(sa)) if k)
                passes = sum(kb)
                if passes >= best_cost:
                    break
                # approximate tail (float) for the choice; the exact one for the plan chosen
                t = _tail(ba, bb, sa, sb, kb, n_products, 1.0)
                c = passes + cost * min(1.0, t * 2.0**62)
                if c >= best_cost:
                    continue
                p = Plan(ba, bb, sa, sb, kb)
                if ba + bb + int(np.ceil(np.log2(max(1, n_products * p.m)))) > _MANT:
                    continue
                best, best_cost = p, c
    if best is None:
        return None
    units = tail_bound(best.beta_a, best.beta_b, best.sa, best.sb, best.kb, n_products) * Fraction(2) ** best.drop
    tail = float(units)
    if Fraction(tail) < units:  # round the bound up
        tail = float(np.nextafter(tail, np.inf))
    return replace(best, tail=tail) if np.isfinite(tail) else None


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


Combo = list  # per output part: [(sign, index into a's parts, index into b's parts)]


def plan(bits_a: int, bits_b: int, n_products: int, combos: Combo) -> Plan | None:
    """The contraction's :class:`Plan` (:data:`EMPTY_PLAN` when an operand is all zero), None
    beyond the caps (too many passes, or slices that would reach the underflow range)."""
    if bits_a == 0 or bits_b == 0:
        return EMPTY_PLAN
    p = choose_plan(bits_a, bits_b, n_products * max(len(c) for c in combos))
    if p is None or p.passes > MAX_PASSES or (p.sa - 1) * p.beta_a > 900 or (p.sb - 1) * p.beta_b > 900:
        return None
    return p


def new_buffers(p: Plan, combos: Combo, shape: tuple, empty: bool = False) -> list:
    """One float64 buffer of ``shape`` per part and shift: zeros, or uninitialised with
    ``empty`` (for :func:`accumulate`, which writes every one)."""
    make = np.empty if empty else np.zeros
    return [[make(shape) for _ in p.shifts] for _ in combos]


def accumulate(bufs: list, p: Plan, a_slices, b_slices: list, F: Callable, combos: Combo) -> None:
    """``bufs[part][slot(i, j)] = sum sign * F(a_i, b_j)`` over every slice pair of the plan and
    term; ``F(a, b, buf, negate, assign)`` adds (subtracts) its result into ``buf`` itself, or
    with ``assign`` writes it there (the buffer's first pair: no zeroing pass, no addition).
    Buffers no pair reaches (operands exhausted early) are set to zero, so ``bufs`` may start
    uninitialised. A truncated plan stops drawing a slices after ``len(kb)`` and pairs slice
    ``i`` with ``kb[i]`` b slices.

    ``F.prep_a(q, key)`` / ``F.prep_b(q, key)``, where ``F`` has them: what ``F`` receives
    instead of each array of an a slice (once per slice, not once per pair) / of a b slice (once
    per call); ``key`` names the thread-scratch buffer it may use (an a slice's is reused by the
    next a slice)."""
    slot = {s: k for k, s in enumerate(p.shifts)}
    written = set()
    prep_a, prep_b = getattr(F, "prep_a", None), getattr(F, "prep_b", None)
    if prep_b is not None:
        count = len(b_slices) if p.kb is None else min(len(b_slices), p.kb[0] if p.kb else 0)
        b_slices = [[prep_b(q, f"prep_b{j}.{k}") for k, q in enumerate(qb)] for j, qb in enumerate(b_slices[:count])]
    for i, qa in enumerate(a_slices):
        if p.kb is not None and i >= len(p.kb):
            break
        if prep_a is not None:
            qa = [prep_a(q, f"prep_a{k}") for k, q in enumerate(qa)]
        bs = b_slices if p.kb is None else b_slices[:p.kb[i]]
        for j, qb in enumerate(bs):
            k = slot[p.shift(i, j)]
            for part, combo in enumerate(combos):
                for sign, ia, ib in combo:
                    F(qa[ia], qb[ib], bufs[part][k], sign < 0, (part, k) not in written)
                    written.add((part, k))
    for part in range(len(bufs)):
        for k in range(len(bufs[part])):
            if (part, k) not in written:
                bufs[part][k][...] = 0


def adding(raw: Callable, into: Callable | None = None) -> Callable:
    """``F(a, b, buf, negate, assign)`` (see :func:`accumulate`) from a function returning its
    result: ``buf += raw(a, b)`` (``-=`` with ``negate``, ``=`` with ``assign``);
    ``into(a, b, buf)``, if given, writes ``raw(a, b)`` into ``buf`` without a temporary."""
    def F(a, b, buf, negate, assign=False):
        if assign and into is not None:
            into(a, b, buf)
            if negate:
                np.negative(buf, out=buf)
            return
        t = raw(a, b)
        if assign:
            np.negative(t, out=buf) if negate else np.copyto(buf, t)
        elif negate:
            buf -= t
        else:
            buf += t
    return F


def _sums(bufs: list, p: Plan, base: np.ndarray, bias, fallbacks=None) -> list:
    """One :class:`SlicedSums` per part from the buffers (truncated plans: with the plan's
    tail bound and the part's exact fallback from ``fallbacks``)."""
    if base.ndim and base.strides[-1] == 0 and base.size > _CHUNK:  # constant along positions: expanded per chunk
        base = _Repeated(np.ascontiguousarray(base[..., 0], np.int64).reshape(-1), base.shape[-1])
    else:
        base = np.ascontiguousarray(base, np.int64).reshape(-1)  # exponents
    out = []
    for part, terms in enumerate(bufs):
        pb = None if bias is None else np.ascontiguousarray(bias[part]).reshape(-1)
        fb = None if fallbacks is None else fallbacks[part]
        out.append(SlicedSums([t.reshape(-1) for t in terms], p.shifts, base, pb, p.tail, fb))
    return out


class _Repeated:
    """The read-only int64 vector of ``values[i]`` repeated ``k`` times (a block's exponents,
    constant along the positions of each row), expanded only for the rows asked: a block's
    full-size copy was a fresh 512 KiB array per block whose page faults cost as much as
    rounding a tenth of its rows. Indexed by a slice (step 1) or an index array."""

    def __init__(self, values: np.ndarray, k: int):
        self.values, self.k = values, k
        self.shape = (values.size * k,)

    def __getitem__(self, sl) -> np.ndarray:
        if isinstance(sl, slice):
            start, stop, step = sl.indices(self.shape[0])
            assert step == 1, "_Repeated: slices of step 1 only"
            i0 = start // self.k
            return np.repeat(self.values[i0:-(-stop // self.k)], self.k)[start - i0 * self.k:stop - i0 * self.k]
        return self.values[np.asarray(sl, np.int64) // self.k]

    def astype(self, dtype, copy: bool = True) -> np.ndarray:
        return np.repeat(self.values, self.k).astype(dtype, copy=False)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return self.astype(dtype or np.int64)


@dataclass
class SlicedSums:
    """Exact values ``V_r = sum_i terms[i][r] * 2**(base[r] + shifts[i]) + bias[r]``:
    integer-valued float64 ``|terms| <= 2**53``, ``shifts >= 0``, finite float64 bias or None.

    Truncated (``fallback`` given): the exact value is that sum plus an unknown ``tau_r`` with
    ``|tau_r| <= tail * 2**base[r]``; rows the bound leaves undecided are rounded by
    ``fallback(rows, scale, fmt)`` (row indices of this object; exact)."""

    terms: list
    shifts: list
    base: np.ndarray
    bias: np.ndarray | None
    tail: float = 0.0
    fallback: Callable | None = None

    def __len__(self) -> int:
        return self.base.shape[0]

    def take(self, sl) -> "SlicedSums":
        fb = self.fallback
        if fb is not None:
            if isinstance(sl, slice) and sl.step in (None, 1):  # rows start + sub (no index array)
                fb = partial(_shifted_fallback, self.fallback, range(len(self))[sl].start)
            else:
                fb = partial(_offset_fallback, self.fallback, np.arange(len(self))[sl])
        return SlicedSums([t[sl] for t in self.terms], self.shifts, self.base[sl],
                          None if self.bias is None else self.bias[sl], self.tail, fb)

    def row_sums(self, rows: np.ndarray) -> RowSums | None:
        """The rows' exact values as integer limbs of width 24 (None beyond MAX_LIMBS)."""
        assert self.fallback is None, "a truncated sum is not exact"
        width = _WIDTH
        top = max(self.shifts, default=0)
        limbs = np.zeros((rows.size, top // width + 2 + -(-_MANT // width)), np.int64)
        for t, sh in zip(self.terms, self.shifts):
            M = t[rows].astype(np.int64)
            q, r = divmod(sh, width)
            limbs[:, q] += (M & ((1 << (width - r)) - 1)) << r  # < 2**width
            limbs[:, q + 1] += M >> (width - r)  # floor: M = hi * 2**(width-r) + low bits
        base = self.base[rows].astype(np.int64)
        if self.bias is not None:
            limbs, base = _place(limbs, base, self.bias[rows], width)
        if limbs.shape[1] > MAX_LIMBS:
            return None
        neg = normalize_sign(limbs, width)
        zeros = np.zeros(rows.size, bool)
        return RowSums(limbs, neg, base, zeros, zeros.astype(np.int8), width)

    def approx(self):
        """``(S, A)`` with ``V = (S + e) * 2**base``, ``|e| <= 1.01 n u A`` (``S`` the float64
        sum, formats of at most 24 bits; the float64 tier uses :meth:`cascade`), ``A >= sum of
        the magnitudes`` in those units; rows whose bias does not scale exactly get ``A = inf``."""
        terms = [t * 2.0**sh if sh else t for t, sh in zip(self.terms, self.shifts)]
        bad = None
        if self.bias is not None:
            base = np.asarray(self.base, np.int64)
            with np.errstate(over="ignore", under="ignore"):
                bb = np.ldexp(self.bias, -base)
            bad = ~np.isfinite(bb) | (np.ldexp(bb, base) != self.bias)
            terms.append(np.where(bad, 0.0, bb))
        if not terms:
            return np.zeros(len(self)), np.zeros(len(self))
        S = terms[0] + 0.0
        A = np.abs(terms[0])
        for t in terms[1:]:
            S += t
            A += np.abs(t)
        if bad is not None:
            A = np.where(bad, np.inf, A)
        return S, A

    def cascade(self, slack: float = 0.0):
        """``(S, Sl, B, low, extra)``: ``V = (S + Sl + e) * 2**(base + low)`` with ``low`` the
        least shift and ``|e| <= (n+2)**2 2**-106 (2 |S| + B) + extra``, where ``B`` bounds, *a priori*, the
        magnitudes of every term but the largest-shift one: ``B = sum_{i >= 2} 2**(53 + shift_i
        - low)`` (every buffer is an integer of at most 2**53: the plan's exactness condition)
        plus ``|bias|`` in those units (``inf`` where the bias does not scale exactly). No pass
        over the terms for magnitudes.

        The terms ``p_i = terms[i] 2**(shift_i - low)`` are added in decreasing shift order
        with Fast2Sum, ``S' = fl(S + p)``, ``e = p - (S' - S)`` (3 operations instead of
        TwoSum's 6), exact here: in units of ``2**s`` (``s`` the shift of ``p``) ``p`` is an
        integer with ``|p| <= 2**53`` and the running sum ``S`` an even integer (a float sum of
        multiples of ``2**(s+1)`` rounds to one). Where ``|S| >= |p|`` this is Dekker's theorem;
        else ``|S + p| < 2**54``: below ``2**53`` the sum is exact (``e = 0``), above it ``S'`` is
        even, so ``S' - S`` is even with ``|S' - S| <= |p| + 1``, hence at most ``2**53``
        (representable), and ``e = S + p - S'`` has ``|e| <= 1``. No value leaves the normal
        range (``shift + 53 <= 1000``). The bias (any exponent) joins last with TwoSum.

        ``slack`` (an absolute error allowed, in units of ``2**low``; truncated sums carry a tail
        bound far above the double-double's error): the lowest-shift terms ``L`` whose a priori
        ``extra = (m + n + 1) u B_L`` (``m = |L|``, ``B_L = sum_L 2**(53 + shift - low)``) stays
        within ``slack`` are summed in plain float64 (error ``<= gamma_{m-1} B_L``) and that sum
        joins ``Sl`` as one more term (error ``<= gamma_n (T + |sum L|)``): 2 operations per such
        term instead of 5; ``extra = 0`` when none qualifies.

        Error: with ``pi_k`` the running sums, ``sum_{j<=k} p_j = pi_k + sum_{j<=k} e_j`` and
        ``|e_k| <= u |pi_k|`` (``u = 2**-53``), so with ``T = sum |e_k|``: ``|pi_k| <= |V| +
        sum_{j>k} |p_j| + T <= |V| + B + T``, ``T <= u (n-1) (|V| + B + T)`` and ``|V| <= |S| +
        T``, whence ``T <= (gamma_{n-1} |S| + u (n-1) B) / (1 - 2 gamma_{n-1})``. ``Sl``, the
        float sum of the ``e``, is within ``gamma_{n-2} T`` of their exact sum (Ogita, Rump,
        Oishi 2005), and ``gamma_{n-2} T <= (n+2)**2 u**2 (2 |S| + B)`` for ``n < 2**40``."""
        low = min(self.shifts, default=0)
        order = sorted(range(len(self.terms)), key=lambda i: -self.shifts[i])
        n = len(self.terms) + (self.bias is not None)
        plain, B_L, extra = [], 0.0, 0.0
        for i in reversed(order[1:]):  # lowest shifts first; never the top term
            b_l = B_L + 2.0 ** (_MANT + self.shifts[i] - low)
            e_l = (len(plain) + 1 + n + 1) * 2.0**-53 * b_l * (1.0 + 2.0**-40)
            if e_l > slack:
                break
            plain.append(i)
            B_L, extra = b_l, e_l
        low_sum = None  # Horner from the highest plain shift down: (t_k 2**d_k + t_{k-1}) 2**d_{k-1} + ...
        for k in range(len(plain) - 1, -1, -1):  # (one multiply a term but the lowest, and no copy)
            t = self.terms[plain[k]]
            if low_sum is not None:
                low_sum += t
            d = self.shifts[plain[k]] - (self.shifts[plain[k - 1]] if k else low)
            if d:
                low_sum = t * 2.0**d if low_sum is None else np.multiply(low_sum, 2.0**d, out=low_sum)
            elif low_sum is None:
                low_sum = t.copy()
        order = order[:len(order) - len(plain)]
        S = Sl = None
        for i in order:
            rel = self.shifts[i] - low
            t = self.terms[i] * 2.0**rel if rel else self.terms[i]
            if S is None:
                S = t if rel else t.copy()
                continue
            s = S + t
            np.subtract(s, S, out=S)  # S' - S (exact), into the old S's memory
            np.subtract(t, S, out=S)  # e
            if Sl is None:
                Sl = S
            else:
                Sl += S
            S = s
        B = float(sum(2.0 ** (_MANT + self.shifts[i] - low) for i in order[1:])) + B_L
        if S is None:
            S = np.zeros(len(self))
        if Sl is None:
            Sl = np.zeros(len(self)) if low_sum is None else low_sum
        elif low_sum is not None:
            Sl += low_sum
        if self.bias is not None:
            base = self.base.astype(np.int64) + low
            with np.errstate(over="ignore", under="ignore"):
                bb = np.ldexp(self.bias, -base)
            bad = ~np.isfinite(bb) | (np.ldexp(bb, base) != self.bias)
            bb = np.where(bad, 0.0, bb)
            S, e = _two_sum(S, bb)
            Sl += e
            B = np.where(bad, np.inf, B + np.abs(bb))
        return S, Sl, B, low, extra

    def _settle(self, rest, zh, zl, off, rel, bound, fmt, out, decided, truncated: bool) -> None:
        """The float64 tier's rows ``rest`` that :func:`round_dd` left open (or all rows, for
        formats it does not round): :func:`decide` on those outside its range (zero, subnormal
        or overflowing results: in its range it leaves open only rows too close to a rounding
        boundary for the error bound, which ``decide`` would not settle either), exact zeros
        (complete plans: every term zero, +0). Writes ``out`` and ``decided`` in place."""
        if fmt.precision == _MANT:  # (zeros are out of its range)
            rest = rest[~_dd_in_range(zh[rest], off[rest])]
            if rest.size == 0:
                return
        zr = zh[rest]
        sign = np.copysign(1.0, zr)
        zr = np.abs(zr)
        err = zr * rel + (bound if np.ndim(bound) == 0 else bound[rest])
        vo, do = decide(zr, zl[rest] * sign, off[rest], err, fmt)
        out[rest] = vo * sign
        decided[rest] = do & (err < zr)
        if not truncated:  # (a zero kept sum of a truncated plan says nothing: undecided)
            cand = rest[zr == 0]
            if cand.size:
                zero = cand[self._all_zero(cand)]
                out[zero] = 0.0
                decided[zero] = True

    def _all_zero(self, rows: np.ndarray) -> np.ndarray:
        """Per row of ``rows``: every term (and the bias) is zero, i.e. ``V = 0`` exactly."""
        z = np.ones(rows.size, bool)
        for t in self.terms:
            z &= t[rows] == 0
        if self.bias is not None:
            z &= self.bias[rows] == 0
        return z

    def round(self, scale, fmt, sink=None) -> np.ndarray | None:
        """``round_fmt(scale * V)`` per row, in chunks of rows that stay in cache: returned as
        float64, or handed chunk by chunk to ``sink(rows_slice, values)`` (no full-size array).
        The rows the fast tier leaves open are collected over all chunks and rounded exactly in
        one call at the end (the fallback of truncated sums, else the exact limbs; handed to
        ``sink`` as an index array)."""
        rows = len(self)
        if sink is None and rows <= _CHUNK and self.fallback is None:
            return self._round(scale, fmt)
        out = None if sink is not None else np.empty(rows)
        pending = []  # rows left open: the fallback (truncated) or the exact limbs, once for all chunks
        for r0 in range(0, rows, _CHUNK):
            sl = slice(r0, min(rows, r0 + _CHUNK))
            vals = self.take(sl)._round(scale, fmt, pending, r0)
            if sink is None:
                out[sl] = vals
            else:
                sink(sl, vals)
        if pending:
            idx = np.concatenate(pending)
            if self.fallback is not None:
                vals = self.fallback(idx, scale, fmt)
            else:  # one exact pass for the chunks' few open rows (per-chunk calls cost more than their rows)
                vals = _rounded_rows(self.row_sums(idx), self, idx, scale, fmt)
            if sink is None:
                out[idx] = vals
            else:
                sink(idx, vals)
        return out

    def _round(self, scale, fmt, pending: list | None = None, offset: int = 0) -> np.ndarray:
        """``round_fmt(scale * V)`` per row. Fast tier: ``S`` (float64 sum, formats of at most
        24 bits) or the double-double ``S + Sl`` of :meth:`cascade` (wider formats) times the
        scale's leading part(s); with ``n`` summed terms and ``u = 2**-53``, ``|S - V| <= 1.01 n
        u A`` (``A`` the rows' sums of magnitudes, :meth:`approx`) and ``|S + Sl - V| <= (n+2)**2
        u**2 (2|S| + B)`` (:meth:`cascade`: ``B`` a priori), so ``z`` is within ``|sh| A (n+6) u``
        resp. ``|sh| (n+2)**2 u**2 (2|S| + B) + 2**-98 |z|`` of ``scale * V``.
        :func:`round_dd` / :func:`round_bits` / :func:`decide` round what that bound allows
        (and where the sign is certain); the rest goes through the limbs (rows of zero terms:
        exactly zero, +0). No masked NumPy operations on the rows (``np.where`` with a random
        mask and ``where=`` cost several times a plain operation).
        Truncated: the tail bound joins the error, the rest goes to the fallback. With
        ``pending`` the rows left open (truncated or not) are appended to it (offset by
        ``offset``) and left for the caller (NaN)."""
        rows = len(self)
        n = len(self.terms) + (self.bias is not None)
        truncated = self.fallback is not None
        if scale.extreme or n == 0 or max(self.shifts, default=0) + _MANT > 1000:
            if truncated and pending is not None:
                pending.append(np.arange(rows) + offset)
                return np.full(rows, np.nan)
            if truncated:
                return self.fallback(np.arange(rows), scale, fmt)
            rs = self.row_sums(np.arange(rows))
            return _rounded_rows(rs, self, np.arange(rows), scale, fmt)
        double = fmt.precision > 24
        low_shift = min(self.shifts, default=0)
        sh, sl, es = scale.dd
        sh = np.float64(sh)
        if double:
            slack = self.tail * 2.0**-low_shift * 2.0**-12 if truncated else 0.0  # a 2**-12 share of the tail
            S, Sl, B, low, extra = self.cascade(slack)
            zh, zl = _two_prod(S, sh)
            zh, zl = _fast_two_sum(zh, zl + (S * sl + Sl * sh))
            # |zh + zl - scale V| <= rel |zh| + bound, in units of 2**(base + low + es):
            # |sh| (n+2)**2 2**-106 (2 |S| + B) + 2**-98 |z| (+ the tail), with |sh S| <= 2 |zh|;
            # the factor 1 + 2**-39 covers the roundings of this bound (its constants and the
            # two operations per row) and the 2**-40 slack of |sh S| <= 2 |zh|
            c = (n + 2) ** 2 * 2.0**-106
            bound = abs(sh) * (c * B + extra)
            if truncated:  # |scale| <= |sh| (1 + 2**-53)
                bound = bound + abs(sh) * (self.tail * 2.0**-low)
            rel = (4 * c + 2.0**-98) * (1.0 + 2.0**-39)
            bound = bound * (1.0 + 2.0**-39)
            off = self.base.astype(np.int64, copy=False) + (es + low)
            with np.errstate(invalid="ignore", over="ignore"):
                if fmt.precision == _MANT:
                    out, decided = round_dd(zh, zl, off, rel, bound)  # signed values
                else:
                    out, decided = np.zeros(rows), np.zeros(rows, bool)
                rest = np.flatnonzero(~decided)
                if rest.size:  # zeros, subnormal or overflowing results, near-boundaries, other formats
                    self._settle(rest, zh, zl, off, rel, bound, fmt, out, decided, truncated)
                    rest = rest[~decided[rest]]
        else:
            S, A = self.approx()
            with np.errstate(invalid="ignore", over="ignore", divide="ignore"):  # zh = 0: undecided
                zh = S * sh
                err_ulps = np.abs(sh) * A / np.abs(zh) * (n + 6)
                if truncated:  # the tail in ulps of z (> |z| 2**-53), rounded up by the margin
                    err_ulps = (err_ulps + np.abs(sh) * self.tail * 2.0**53 / np.abs(zh)) * (1.0 + 2.0**-40)
                val, decided = round_bits(zh, self.base.astype(np.int64) + es, err_ulps, fmt)
                del err_ulps
            sign = np.copysign(1.0, zh)
            exact_zero = A == 0
            out = val * sign
            if not truncated:  # (a zero kept sum of a truncated plan says nothing: undecided)
                decided |= exact_zero
                out[exact_zero] = 0.0
            rest = np.flatnonzero(~decided)
        if rest.size:
            if pending is not None:  # left for the caller (round), rows offset by ``offset``
                pending.append(rest + offset)
                out[rest] = np.nan
            elif truncated:
                out[rest] = self.fallback(rest, scale, fmt)
            else:
                out[rest] = _rounded_rows(self.row_sums(rest), self, rest, scale, fmt)
        return out


def _offset_fallback(fallback: Callable, rows: np.ndarray, sub: np.ndarray, scale, fmt):
    return fallback(rows[sub], scale, fmt)


def _shifted_fallback(fallback: Callable, start: int, sub: np.ndarray, scale, fmt):
    return fallback(np.asarray(sub, np.int64) + start, scale, fmt)


_ABS_MASK = np.int64(0x7FFFFFFFFFFFFFFF)
_EXP_FIELD = np.int64(0x7FF << 52)


def _below_field(zh: np.ndarray) -> np.ndarray:
    """The exponent field (in place, ``E << 52``) of the float64 just below ``|zh|``: ``|zh|``'s own,
    or, at a power of two, the binade below's (zeros give 2047: out of every range)."""
    ex = zh.view(np.int64) & _ABS_MASK
    ex -= 1
    ex &= _EXP_FIELD
    return ex


def _dd_in_range(zh: np.ndarray, off: np.ndarray, ex: np.ndarray | None = None) -> np.ndarray:
    """Where :func:`round_dd` can decide at all: with ``E`` the field of :func:`_below_field`
    (``ex``, if the caller has it), ``61 <= E <= 2045`` (no zero, no infinity, a normal half
    spacing) and a normal result, ``1 <= E + off <= 2045``; as unsigned ranges (no masked
    operations: slow). A power of two's own field is ``E + 1``, still inside ``[1, 2046]``."""
    E = (_below_field(zh) if ex is None else ex) >> 52
    return ((E - 61).view(np.uint64) < 1985) & ((E + (off - 1)).view(np.uint64) < 2045)


def round_dd(zh: np.ndarray, zl: np.ndarray, off: np.ndarray, rel: float, bound):
    """Round ``(zh + zl) * 2**off`` into float64 (``zh = RN(zh + zl)``, a normalized
    double-double of either sign), with ``zh + zl`` within ``err = rel |zh| + bound`` (same
    units; ``rel <= 2**-60``, ``bound >= 0`` a scalar or per row) of the exact value. The result
    is ``zh`` scaled by ``2**off`` (an add to its exponent field), decided where every value
    within ``err`` of ``zh + zl`` has ``zh`` as its nearest float64 and the scaled result is
    normal (:func:`_dd_in_range`): ``|zl| + err`` below half the spacing ``h`` of the floats next
    to ``zh`` (at a power of two the spacing below, half the one above: the smaller on both
    sides). Since ``|zh| <= 2**54 h``, the test is ``fl(|zl| + bound) < h k`` with ``k = 1 -
    2**-30 - 2**55 rel`` (``h k`` exact; ``k`` covers ``rel |zh|`` and the rounding of the
    addition). No masked operations and no sign handling (both slow): about 12 operations a row.
    Returns ``(values, decided)``, values valid where decided."""
    assert rel <= 2.0**-60
    if zh.size == 0:
        return np.zeros(0), np.zeros(0, bool)
    val = (zh.view(np.int64) + (off << 52)).view(np.float64)  # valid where decided (|off| < 2**11 there)
    ex = _below_field(zh)
    e_lo, e_hi = int(ex.min()) >> 52, int(ex.max()) >> 52
    whole = (61 <= e_lo and e_hi <= 2045 and 1 <= e_lo + int(off.min())
             and e_hi + int(off.max()) <= 2045)  # every row in range: no per-row test
    ok = None if whole else _dd_in_range(zh, off, ex)
    # h k as one integer add on the encoding: h = 2**(E - 1023 - 53) (half the spacing below)
    # times k in [1/2, 1) is h's field one binade down with k's significand, exact and normal
    # for E >= 55 (rows below are out of range)
    k = np.float64(1.0 - 2.0**-30 - rel * 2.0**55)
    ex += (k.view(np.int64) - (np.int64(1023) << 52)) - (np.int64(53) << 52)
    h = ex.view(np.float64)
    a = np.abs(zl)
    a += bound
    decided = a < h
    if ok is not None:
        decided &= ok
    return val, decided


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
    bits = mag + (off << 52)  # valid where ok (elsewhere undecided; no masked operations: slow)
    d = bits & mask
    rounded = (bits + (half - 1) + ((bits >> shift) & 1)) & ~mask
    val = rounded.view(np.float64)
    val[np.flatnonzero(val > fmt.max_finite)] = np.inf
    k = err_ulps + 1.0
    decided = ok & (np.abs(d - half).astype(np.float64) > k) & (k < half / 8)
    return val, decided


def _rounded_rows(rs: RowSums | None, sums: SlicedSums, rows: np.ndarray, scale, fmt) -> np.ndarray:
    if rs is not None:
        return rs.round(scale, fmt)
    # Beyond the limb cap (bias and products apart by more than ~1500 bits): exact rationals.
    out = np.empty(rows.size)
    for k, r in enumerate(rows):
        v = Fraction(0)
        for t, sh in zip(sums.terms, sums.shifts):
            v += Fraction(int(t[r])) * Fraction(2) ** (int(sums.base[r]) + sh)
        if sums.bias is not None:
            v += Fraction(float(sums.bias[r]))
        out[k] = round_exact(v, scale, fmt) if v >= 0 else -round_exact(-v, scale, fmt)
    return out


class Source:
    """A tensor of the case dtype whose real parts are converted to float64 a block at a time."""

    def __init__(self, array: np.ndarray, cd, shape: tuple):
        self.array, self.cd, self.shape = array, cd, shape

    def parts(self, index=()) -> list:
        re, im = to_float64_parts(self.array.reshape(self.shape)[index], self.cd)
        return [re] if im is None else [re, im]

    def view(self, index=()) -> list:
        """:meth:`parts` for reading only: float64 arrays are not copied."""
        if self.cd.name == "float64":
            return [np.asarray(self.array, np.float64).reshape(self.shape)[index]]
        return self.parts(index)

    def finite(self) -> bool:
        return _finite(self.parts())


def _finite(parts: list) -> bool:
    return all(np.isfinite(p).all() for p in parts)


# Complex conventions (``s`` marks the conjugated factor): forward ``x*w``:
# re = xr wr - xi wi, im = xr wi + xi wr; backward ``gy*conj(s)``: re = gr sr + gi si,
# im = gi sr - gr si.
_PLAIN = [[(1, 0, 0), (-1, 1, 1)], [(1, 0, 1), (1, 1, 0)]]
_CONJ = [[(1, 0, 0), (1, 1, 1)], [(1, 1, 0), (-1, 0, 1)]]


def _combos(complex_: bool, conj: bool) -> Combo:
    if not complex_:
        return [[(1, 0, 0)]]
    return _CONJ if conj else _PLAIN


def _blocks(N: int, G: int, per_n: int, per_g: int, across: bool = False, size: int = 0) -> list:
    """(n-slice, g-slice) blocks of about ``size`` (0: ``_BLOCK``) output elements (``per_n``
    per batch element, ``per_g`` per group of one batch element). ``across``: where a batch
    element exceeds a block, groups of every batch element (``N * per_g`` elements a group)
    rather than groups of one batch element, while a group of all of them fits in a block (the
    depthwise filter kernels then run once per channel over N rows instead of once per row)."""
    size = size or _BLOCK
    if per_n <= size:
        nb = max(1, size // max(per_n, 1))
        return [(slice(n, min(N, n + nb)), slice(0, G)) for n in range(0, N, nb)]
    if across and N * per_g <= size:
        gb = size // (N * per_g)
        return [(slice(0, N), slice(g, min(G, g + gb))) for g in range(0, G, gb)]
    gb = max(1, size // max(per_g, 1))
    return [(slice(n, n + 1), slice(g, min(G, g + gb))) for n in range(N) for g in range(0, G, gb)]


def _sub(geo: Geometry, ns: slice, gs: slice) -> Geometry:
    """The geometry of batch elements ``ns`` and groups ``gs`` (a smaller grouped conv)."""
    gb = gs.stop - gs.start
    return replace(geo, N=ns.stop - ns.start, batched=True, C_in=gb * geo.Cg, C_out=gb * geo.Og, groups=gb)


class Streamed:
    """An exact output computed block by block: ``blocks()`` yields ``(index, thunk)`` with
    ``index`` slices into the output and ``thunk()`` the block's sums per part (rows in C
    order); thunks are independent, so blocks may be computed in any order or concurrently
    (on at most ``threads`` threads, None: no limit)."""

    def __init__(self, blocks: Callable, threads: int | None = None):
        self.blocks = blocks
        self.threads = threads


# Threads the engine computes and rounds blocks on. Its work between long calls is NumPy
# operations on rows of 2**13 elements (a few microseconds each, the GIL held between them); on
# the project's 2-core VM two such threads ran slower than one, each GIL handoff costing more
# than an operation (depthwise float64 forward 0.72-0.80 s against 0.43-0.46 s, backward
# 1.1-1.6 s against 0.78-0.82 s). BLAS contractions keep both cores through BLAS's own threads
# (dense forward 124-200 ms on one engine thread against 135-206 ms on two, and no two engine
# threads times two BLAS threads oversubscription, which stalled calls for seconds under load).
ENGINE_THREADS = 1


# Truncation applies to contractions with at least this many products in all (below it a pass
# is cheap and the exact fallback's share of the time would dominate).
TRUNCATE_MIN_WORK = 1 << 22


def _choose(bits_a: int, bits_b: int, n_products: int, combos: Combo, work: int, elementwise: bool):
    """``(plan, full)``: the plan to compute with and the complete plan (the same object when
    no truncation applies); ``(None, None)`` beyond the caps."""
    full = plan(bits_a, bits_b, n_products, combos)
    if full is None or full is EMPTY_PLAN or work < TRUNCATE_MIN_WORK:
        return full, full
    n_eff = n_products * max(len(c) for c in combos)
    tp = truncated_plan(bits_a, bits_b, n_eff, FALLBACK_COST["elementwise" if elementwise else "blas"])
    return (tp, full) if tp is not None and tp.passes < full.passes else (full, full)


class _Fallback:
    """Exact rounding of the rows a truncated block leaves undecided: per row from the term
    lists of :mod:`usconv_ref.correlation` (``terms(rows)`` gives each part's factor arrays for
    rows of the block), or, once more than ``limit`` rows of the block asked, by recomputing
    the whole block with the complete plan (``full()``, kept; ``on_full()`` is then called).
    One instance per block; its parts are rounded by one thread."""

    def __init__(self, terms: Callable, full: Callable, limit: int, mantissa_bits: int,
                 on_full: Callable | None = None):
        self.terms, self.full, self.limit, self.mb = terms, full, limit, mantissa_bits
        self.on_full = on_full
        self.asked = 0
        self.sums = None

    def part(self, k: int) -> Callable:
        return partial(self.round, k)

    def round(self, k: int, rows: np.ndarray, scale, fmt) -> np.ndarray:
        from .numerics import exact_row_sums
        rows = np.asarray(rows, np.int64)
        if rows.size == 0:
            return np.zeros(0)
        self.asked += rows.size
        if self.sums is None and self.asked > self.limit:
            self.sums = self.full()
            if self.on_full is not None:
                self.on_full()
        if self.sums is not None:
            return self.sums[k].take(rows)._round(scale, fmt)
        a, b = self.terms(rows)[k]
        if a.size <= 4096 and not scale.extreme:
            return _round_rows_int(a, b, scale, fmt)
        return exact_row_sums(a, b, self.mb).round(scale, fmt)


def _round_rows_int(a: np.ndarray, b: np.ndarray, scale, fmt) -> np.ndarray:
    """``round_fmt(scale * sum_j a[r, j] b[r, j])`` per row of finite float64 factors, with
    Python integers (a few rows: no vectorized set-up): ``v = m 2**e`` with 53-bit integer
    ``m``, products summed exactly on the row's lowest exponent, ``v = num 2**low``. Rounded
    as :func:`~usconv_ref.numerics.round_scaled` does: ``|num| = (h + l)(1 + d)`` with ``h =
    fl(|num|)``, ``l = fl(|num| - h)``, ``|d| < 2**-105``, times the scale's double-double is
    within ``2**-98`` of ``|scale v|``, and :func:`decide_scaled` rounds what that allows; the
    rest (near-ties, values beyond 2**1000 units) by :func:`round_scaled_int`. A rational
    scale and at most ``_INT_ROWS`` rows: every row by :func:`round_scaled_int` (integer
    division, a few microseconds a row: less than the vectorized tier's set-up). A nonzero
    value that rounds to zero keeps its sign, an exact zero is +0."""
    ma, ea = np.frexp(a)
    mb, eb = np.frexp(b)
    Ma = np.ldexp(ma, _MANT).astype(np.int64).tolist()
    Mb = np.ldexp(mb, _MANT).astype(np.int64).tolist()
    E = (ea.astype(np.int64) + eb.astype(np.int64) - 2 * _MANT).tolist()
    rows = a.shape[0]
    exact = []
    for xa, xb, ee in zip(Ma, Mb, E):
        low = min(ee)
        exact.append((sum((p * q) << (e - low) for p, q, e in zip(xa, xb, ee)), low))
    out = np.empty(rows)
    todo = range(rows)
    if scale.rational is None or rows > _INT_ROWS:
        H, Lo, low_e = np.zeros(rows), np.zeros(rows), np.zeros(rows, np.int64)
        neg, ok = np.zeros(rows, bool), np.zeros(rows, bool)
        for r, (num, low) in enumerate(exact):
            m = abs(num)
            if m and m.bit_length() <= 1000:
                h = float(m)
                H[r], Lo[r], low_e[r], neg[r], ok[r] = h, float(m - int(h)), low, num < 0, True
        with np.errstate(invalid="ignore", over="ignore"):
            val, decided = decide_scaled(H, Lo, low_e, scale, fmt)
        out[...] = np.where(neg, -val, val)
        todo = np.flatnonzero(~(decided & ok))
    for r in todo:
        num, low = exact[r]
        v = round_scaled_int(abs(num), low, scale, fmt)
        out[r] = -v if num < 0 else v
    return out


_INT_ROWS = 64  # rows of a rational scale's fallback rounded in integers alone (_round_rows_int)


def _limit(rows: int, passes: int) -> int:
    """Fallback rows per block above which recomputing the block completely is cheaper."""
    return 16 + rows * passes // 2000


def _per_ng(geo: Geometry, a: Source, b_parts: list, b_axes: tuple, F_block: Callable,
            combos: Combo, n_products: int, out_block, b_to_out: Callable, bias=None, terms=None):
    """Outputs whose ``a`` slabs are (batch element, group) — forward and grad_x. ``a``
    is laid out (N, G, ., .); ``b`` is small and sliced once per plan. ``F_block(sub)`` gives
    the accumulating ``F`` of :func:`accumulate` for a block's geometry ``sub``. ``terms``
    enables truncated plans with their exact fallback: ``terms(ns, gs, sub)`` gives the
    block's :class:`~usconv_ref.correlation.Terms` (rows of the block, from the block's
    inputs only: no full-size copies)."""
    G = geo.groups
    Eb, bits_b = exponents(*_stats(b_parts, b_axes), a.cd.part.precision)
    per_g = int(np.prod(out_block(1, 1)))
    ch_g = out_block(1, 1)[2]  # output channels per group
    blocks = _blocks(geo.N, G, per_g * G, per_g, across=fast._depthwise(geo))
    Ea = np.zeros((geo.N, G, 1, 1), np.int64)
    bits_a = 0
    for ns, gs in blocks:  # pass 1: slab exponents, finiteness
        amax, amin = _stats(a.view((ns, gs)), (2, 3))
        if not np.isfinite(amax).all():  # (a NaN or inf in the block)
            return None
        E, bits = exponents(amax, amin, a.cd.part.precision)
        Ea[ns, gs], bits_a = E, max(bits_a, bits)
    work = geo.N * G * per_g * n_products if terms is not None else 0
    p, p_full = _choose(bits_a, bits_b, n_products, combos, work, fast._depthwise(geo))
    if p is None:
        return None
    b_cache = {}
    if p is p_full:  # sliced in place, once, now (no reference to the parts is kept)
        b_cache[p] = list(slices(b_parts, Eb, p.beta_b, p.sb, consume=True))
        b_keep = None
    else:  # truncated: each plan slices its own copy, on demand (threads may both do it)
        b_keep = b_parts

    def b_slices(pl: Plan) -> list:
        if pl not in b_cache:
            count = pl.sb if pl.kb is None else pl.kb[0]
            b_cache[pl] = list(islice(slices([q.copy() for q in b_keep], Eb, pl.beta_b, pl.sb, consume=True), count))
        return b_cache[pl]

    state = {"full": False}  # set once a block needed its complete recomputation: later blocks skip truncation

    def give_up():
        state["full"] = True

    def block(ns: slice, gs: slice, pl: Plan, start: int):
        if state["full"]:
            pl = p_full
        nb, gb = ns.stop - ns.start, gs.stop - gs.start
        shape = out_block(nb, gb)
        sub = _sub(geo, ns, gs)
        parts = a.parts((ns, gs))
        bufs = new_buffers(pl, combos, shape, empty=True)
        accumulate(bufs, pl, slices(parts, Ea[ns, gs], pl.beta_a, pl.sa, consume=True, scratch=fast._thread_scratch()),
                   [[q[gs] for q in qs] for qs in b_slices(pl)], F_block(sub), combos)
        base = np.broadcast_to(Ea[ns, gs] + b_to_out(Eb[gs]) - pl.drop, shape)
        bb = None if bias is None else [np.broadcast_to(q[gs].reshape(1, gb, -1, 1), shape) for q in bias]
        fbs = None
        if pl.truncated:
            rows = math.prod(shape)
            fb = _Fallback(_terms_once(partial(terms, ns, gs, sub)), partial(block, ns, gs, p_full, start),
                           _limit(rows, p_full.passes), 53 if a.cd.part.precision > 24 else 24, give_up)
            fbs = [fb.part(k) for k in range(len(combos))]
        return _sums(bufs, pl, base, bb, fbs)

    def gen():
        # a block is whole batch elements or groups of one batch element (contiguous rows: a
        # flat slice), or groups of every batch element (a (batch, channels) index)
        for ns, gs in blocks:
            start = (ns.start * G + gs.start) * per_g
            if ns.stop - ns.start > 1 and gs.stop - gs.start < G:
                index = (ns, slice(gs.start * ch_g, gs.stop * ch_g))
            else:
                index = slice(start, start + (ns.stop - ns.start) * (gs.stop - gs.start) * per_g)
            yield index, partial(block, ns, gs, p, start)

    return Streamed(gen, ENGINE_THREADS)


def _f64(arr, cd):
    """float64 parts of a case-dtype array (no copy for float64)."""
    if arr is None:
        return None, None
    if cd.name == "float64":
        return np.asarray(arr, np.float64), None
    return to_float64_parts(arr, cd)


def _terms_once(make: Callable) -> Callable:
    """``builder(rows)`` of a lazily built (once) :class:`~usconv_ref.correlation.Terms`."""
    box = []

    def builder(rows):
        if not box:
            box.append(make().builder)
        return box[0](rows)
    return builder


def forward(geo: Geometry, x: np.ndarray, w: np.ndarray, b, cd, padding_mode: str):
    """Exact forward sums (before the scale) of the batched case-dtype ``x``: a
    :class:`Streamed`, or None where the engine does not apply."""
    if geo.N * geo.C_out * geo.L_out == 0:
        return None
    G, Og, Cg, K = geo.groups, geo.Og, geo.Cg, geo.K
    wsrc = Source(w, cd, (G, Og, Cg, K))
    if not wsrc.finite() or (b is not None and not Source(b, cd, (G, Og)).finite()):
        return None
    a = Source(x, cd, (geo.N, G, Cg, geo.L))
    def F(sub):
        def f(xq, wq, buf, neg, assign=False):
            xq, cols = xq if isinstance(xq, tuple) else (xq, None)
            wq, band = wq if isinstance(wq, tuple) else (wq, None)
            fast.forward_raw(xq.reshape(sub.N, sub.C_in, sub.L), wq.reshape(sub.C_out, Cg, K), sub, padding_mode,
                             out=buf, negate=neg, assign=assign, cols=cols, bands=band)
        # an x slice's column (depthwise: window) matrix once for all its pairs, and a w
        # slice's band matrices (depthwise) once for all its pairs
        f.prep_a = lambda q, key: (q, fast.forward_columns(q.reshape(sub.N, sub.C_in, sub.L), sub, padding_mode, key))
        f.prep_b = lambda q, key: (q, fast.forward_band(q.reshape(sub.C_out, Cg, K), sub))
        return f
    bias = None
    if b is not None:
        bias = Source(b, cd, (G, Og)).parts()

    def terms(ns, gs, sub):  # the block's term lists (the exact fallback of truncated plans)
        from . import correlation as co
        nb, gb = ns.stop - ns.start, gs.stop - gs.start
        xs = [q.reshape(nb, gb * Cg, geo.L) for q in a.view((ns, gs))]
        ws = [q[gs].reshape(gb * Og, Cg, K) for q in wsrc.view()]
        bs = [None, None] if bias is None else [q[gs].reshape(-1) for q in bias] + [None]
        return co.forward_terms(sub, co.Operands(xs[0], xs[1] if len(xs) > 1 else None, ws[0],
                                                 ws[1] if len(ws) > 1 else None, bs[0], bs[1]), padding_mode)

    return _per_ng(geo, a, wsrc.parts(), (2, 3), F, _combos(cd.is_complex, False), Cg * K,
                   lambda nb, gb: (nb, gb, Og, geo.L_out), lambda E: E.reshape(1, -1, Og, 1), bias, terms)


def _input_fanin(geo: Geometry, padding_mode: str) -> int:
    """The most ``(k, t)`` pairs reading one input position (padding copies included)."""
    src = source_index(geo.L, geo.pl, geo.pr, padding_mode)
    j = src[forward_positions(geo.L_out, geo.K, geo.stride, geo.dilation)].ravel()
    return int(np.bincount(j[j >= 0], minlength=1).max(initial=0))


def grad_input(geo: Geometry, gy: np.ndarray, w: np.ndarray, cd, padding_mode: str):
    """Exact grad_x sums ``sum gy * conj(w)`` (before the scale): a :class:`Streamed` or None."""
    if geo.N * geo.C_in * geo.L == 0:
        return None
    G, Og, Cg, K = geo.groups, geo.Og, geo.Cg, geo.K
    wsrc = Source(w, cd, (G, Og, Cg, K))
    if not wsrc.finite():
        return None
    a = Source(gy, cd, (geo.N, G, Og, geo.L_out))
    def F(sub):
        def f(gq, wq, buf, neg, assign=False):
            gq, cols = gq if isinstance(gq, tuple) else (gq, None)
            fast.grad_input_raw(gq.reshape(sub.N, sub.C_out, sub.L_out), wq.reshape(sub.C_out, Cg, K), sub,
                                padding_mode, out=buf, negate=neg, accumulate=not assign, cols=cols)
        # a gy slice's column (depthwise: window) matrix once for all its pairs
        f.prep_a = lambda q, key: (q, fast.grad_input_columns(q.reshape(sub.N, sub.C_out, sub.L_out), sub, padding_mode,
                                                              key))
        return f
    n = Og * max(_input_fanin(geo, padding_mode), 1)

    def terms(ns, gs, sub):  # the block's term lists (the exact fallback of truncated plans)
        from . import correlation as co
        nb, gb = ns.stop - ns.start, gs.stop - gs.start
        gs_ = [q.reshape(nb, gb * Og, geo.L_out) for q in a.view((ns, gs))]
        ws = [q[gs].reshape(gb * Og, Cg, K) for q in wsrc.view()]
        ops = co.Operands(None, None, ws[0], ws[1] if len(ws) > 1 else None, None, None)
        return co.grad_input_terms(sub, gs_[0], gs_[1] if len(gs_) > 1 else None, ops, padding_mode)

    return _per_ng(geo, a, wsrc.parts(), (1, 3), F, _combos(cd.is_complex, True), n,
                   lambda nb, gb: (nb, gb, Cg, geo.L), lambda E: E.reshape(1, -1, Cg, 1), None, terms)


def _over_n(geo: Geometry, a: Source, b: Source | None, F_block: Callable, combos: Combo, n_products: int,
            out_shape: tuple, a_to_out: Callable, b_to_out: Callable, terms=None):
    """Outputs summed over the batch — grad_w (``b`` = x) and grad_b (``b`` None: ones). Slabs
    span all batch elements: pass 1 gathers their exponents block by block, pass 2 slices each
    block on those global grids and adds its products into buffers of the (small) output.
    ``F_block`` and ``terms`` as in :func:`_per_ng`."""
    G = geo.groups
    per_g = a.shape[2] * a.shape[3] + (0 if b is None else b.shape[2] * b.shape[3])
    blocks = _blocks(geo.N, G, per_g * G, per_g, size=_BLOCK * (_OVER_N_DW_BLOCKS if fast._depthwise(geo) else 1))
    prec = a.cd.part.precision
    stats = {}
    for name, src in (("a", a), ("b", b)):
        if src is None:
            continue
        amax = np.zeros((1, G, src.shape[2], 1))
        amin = np.full((1, G, src.shape[2], 1), np.inf)
        for ns, gs in blocks:
            mx, mn = _stats(src.view((ns, gs)), (0, 3))
            if not np.isfinite(mx).all():  # (a NaN or inf in the block)
                return None
            amax[:, gs], amin[:, gs] = np.maximum(amax[:, gs], mx), np.minimum(amin[:, gs], mn)
        stats[name] = exponents(amax, amin, prec)
    Ea, bits_a = stats["a"]
    Eb, bits_b = stats["b"] if b is not None else (np.ones((1, G, 1, 1), np.int64), 1)
    work = int(np.prod(out_shape)) * n_products if terms is not None else 0
    p, p_full = _choose(bits_a, bits_b, n_products, combos, work, fast._depthwise(geo))
    if p is None:
        return None

    def run(pl: Plan, some: list) -> list:
        bufs = new_buffers(pl, combos, out_shape)
        for ns, gs in some:
            sub = _sub(geo, ns, gs)
            if b is None:
                b_sl = [[np.full((1, gs.stop - gs.start, 1, 1), 2.0 ** (pl.beta_b - 1))]] if pl.sb else []
            else:
                count = pl.sb if pl.kb is None else pl.kb[0]
                b_sl = list(islice(slices(b.parts((ns, gs)), Eb[:, gs], pl.beta_b, pl.sb, consume=True), count))
            blk = new_buffers(pl, combos, (gs.stop - gs.start,) + tuple(out_shape[1:]), empty=True)
            accumulate(blk, pl, slices(a.parts((ns, gs)), Ea[:, gs], pl.beta_a, pl.sa, consume=True,
                                       scratch=fast._thread_scratch()), b_sl, F_block(sub), combos)
            for part in range(len(bufs)):
                for k in range(len(bufs[part])):
                    bufs[part][k][gs] += blk[part][k]
        return bufs

    # Depthwise blocks are element-wise work (no BLAS threads): split over ENGINE_THREADS
    # threads (if raised), each worker summing into its own buffers; adding those is exact
    # (integer partial sums of the same products, bounded like the whole sum by the plan).
    workers = min(ENGINE_THREADS, fast._WORKERS, len(blocks)) if fast._depthwise(geo) else 1

    def whole(pl: Plan):
        if workers <= 1:
            bufs = run(pl, blocks)
        else:
            with ThreadPoolExecutor(workers) as ex:
                bufs, *others = ex.map(partial(run, pl), [blocks[i::workers] for i in range(workers)])
            for other in others:
                for part in range(len(bufs)):
                    for k in range(len(bufs[part])):
                        bufs[part][k] += other[part][k]
        base = np.broadcast_to(a_to_out(Ea) + b_to_out(Eb) - pl.drop, out_shape)
        fbs = None
        if pl.truncated:
            rows = int(np.prod(out_shape))
            fb = _Fallback(terms, partial(whole, p_full), _limit(rows, p_full.passes),
                           53 if a.cd.part.precision > 24 else 24)
            fbs = [fb.part(k) for k in range(len(combos))]
        return _sums(bufs, pl, base, None, fbs)

    def gen():
        yield slice(None), partial(whole, p)  # the whole output, flat

    return Streamed(gen)


_PREP_B_ELEMS = 1 << 22  # most elements of grad_w's x-slice column matrices kept at once (32 MiB)


def grad_weight(geo: Geometry, gy: np.ndarray, x: np.ndarray, cd, padding_mode: str):
    """Exact grad_w sums ``sum_{n,t} gy * conj(xp)`` (before the scale), as (G, Og, Cg, K)."""
    if geo.C_out * geo.Cg * geo.K == 0 or geo.N * geo.L_out == 0:
        return None
    G, Og, Cg, K = geo.groups, geo.Og, geo.Cg, geo.K
    a = Source(gy, cd, (geo.N, G, Og, geo.L_out))
    b = Source(x, cd, (geo.N, G, Cg, geo.L))
    def F(sub):
        def f(gq, xq, buf, neg, assign=False):
            xq, cols = xq if isinstance(xq, tuple) else (xq, None)
            fast.grad_weight_raw(gq.reshape(sub.N, sub.C_out, sub.L_out), xq.reshape(sub.N, sub.C_in, sub.L), sub,
                                 padding_mode, out=buf, negate=neg, accumulate=not assign, cols=cols)
        # each x slice's column matrix once for all its pairs, while they total about
        # _PREP_B_ELEMS elements (they stay in the thread's scratch); later slices: per pair
        budget = [_PREP_B_ELEMS]

        def prep_b(q, key):
            cols = None
            if q.size * K <= budget[0]:
                cols = fast.grad_weight_columns(q.reshape(sub.N, sub.C_in, sub.L), sub, padding_mode, key)
                budget[0] -= 0 if cols is None else cols.size
            return q, cols
        f.prep_b = prep_b
        return f

    def terms():  # the term lists (the exact fallback of truncated plans); float64: no conversion copies
        from . import correlation as co
        xr, xi = _f64(x, cd)
        return co.grad_weight_terms(geo, *_f64(gy, cd), co.Operands(xr, xi, None, None, None, None), padding_mode)

    return _over_n(geo, a, b, F, _combos(cd.is_complex, True), geo.N * geo.L_out, (G, Og, Cg, K),
                   lambda E: E.reshape(G, Og, 1, 1), lambda E: E.reshape(G, 1, Cg, 1),
                   _terms_once(terms))


def grad_bias(geo: Geometry, gy: np.ndarray, cd):
    """Exact grad_b sums ``sum_{n,t} gy`` (before the scale), as (G, Og)."""
    if geo.C_out == 0 or geo.N * geo.L_out == 0:
        return None
    G, Og = geo.groups, geo.Og
    a = Source(gy, cd, (geo.N, G, Og, geo.L_out))
    combos = [[(1, 0, 0)]] if not cd.is_complex else [[(1, 0, 0)], [(1, 1, 0)]]
    F = lambda sub: adding(lambda gq, one: gq.sum(axis=(0, 3)) * one[0, :, 0, :])
    return _over_n(geo, a, None, F, combos, geo.N * geo.L_out, (G, Og),
                   lambda E: E.reshape(G, Og), lambda E: E.reshape(G, 1))
