"""The op's four contractions as explicit term lists, evaluated exactly.

Each output tensor is a set of rows (its elements in C order); each row is a sum of
products ``a * b``. A *builder* gathers, for a block of rows, the factors of every term
into two arrays ``A, B`` of shape ``(rows, terms)`` (zeros where a padded zero is read;
both zero for unused slots, so those never make NaN). SPEC formulas, with
``xp`` the padded input and ``g(o) = o // Og``:

- forward   ``y[n,o,t]     = s_out * (sum_{c,k} x p[n, g(o)Cg+c, t*stride+k*dil] * w[o,c,k] + b[o])``
- grad_x    ``gx[n,ci,j]   = s_gx * sum_{o in group, (k,t) reading j} gy[n,o,t] * conj(w[o,ci%Cg,k])``
- grad_w    ``gw[o,c,k]    = s_gw * sum_{n,t} gy[n,o,t] * conj(xp[n, g(o)Cg+c, t*stride+k*dil])``
- grad_b    ``gb[o]        = s_gw * sum_{n,t} gy[n,o,t]``

Complex terms are split into real products (``re = ar*br - ai*bi``,
``im = ar*bi + ai*br``, with ``bi -> -bi`` under conj) so each part is one exact real sum.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Iterable

import numpy as np

from .dtypes import CaseDtype, from_float64_parts, to_float64_parts
from . import sliced
from .numerics import exact_row_sums
from .padding import forward_positions, grad_input_taps, source_index
from .scaling import ExactScale
from .spec import Geometry

# Rows per block are chosen so that rows * terms stays near this many terms.
_BLOCK_TERMS = 1 << 19

Parts = list  # [(A_re, B_re)] or [(A_re, B_re), (A_im, B_im)]


@dataclass
class ExactTensor:
    """One output tensor known exactly, block by block: ``blocks()`` yields ``(index, thunk)``
    with ``index`` a flat slice or a tuple of slices into the output and ``thunk()`` giving one
    exact-sum object per part (real[, imag]; :class:`~usconv_ref.numerics.RowSums` or
    :class:`~usconv_ref.sliced.SlicedSums`, rows in C order). ``scale`` None means an empty sum
    (exactly zero). Blocks may be computed on demand (then each :meth:`round` recomputes
    them; :meth:`materialize` keeps them)."""

    shape: tuple[int, ...]
    blocks: Callable[[], Iterable]
    scale: ExactScale | None
    threads: int | None = None  # most threads worth using for the blocks (None: one per CPU)

    def round(self, cd: CaseDtype, workers: int | None = None) -> np.ndarray:
        """Every element correctly rounded once into ``cd`` (real or complex as the op),
        block by block straight into the result; blocks are computed and rounded on
        ``workers`` threads (default: the CPU count; NumPy and BLAS release the GIL)."""
        out = np.zeros(self.shape, cd.numpy)
        if self.scale is None:
            return out
        flat = out.reshape(-1)

        def work(item):
            index, thunk = item
            target = flat if isinstance(index, slice) else out
            sums = thunk()
            sink = None
            if not cd.is_complex and hasattr(sums[0], "take"):
                # real: converted chunk by chunk (values exactly representable in cd, so the
                # assignment's cast is from_float64_parts's, without a copy)
                sink = flat[index].__setitem__ if isinstance(index, slice) else _rows_sink(out[index])
            if sink is not None:
                sums[0].round(self.scale, cd.part, sink=sink)
                return
            shape = target[index].shape
            values = [s.round(self.scale, cd.part).reshape(shape) for s in sums]
            re = values[0]
            im = values[1] if len(values) > 1 else (np.zeros_like(re) if cd.is_complex else None)
            target[index] = from_float64_parts(re, im, cd)

        items = list(self.blocks())
        workers = min(workers or os.cpu_count() or 1, self.threads or len(items), len(items))
        if workers <= 1:
            for item in items:
                work(item)
        else:
            with ThreadPoolExecutor(workers) as ex:
                list(ex.map(work, items))  # disjoint blocks of the output; re-raises errors
        return out

    def materialize(self) -> "ExactTensor":
        """The same tensor with its blocks computed once and kept (for several roundings)."""
        kept = [(index, _const(thunk())) for index, thunk in self.blocks()] if self.scale is not None else []
        return ExactTensor(self.shape, lambda: kept, self.scale, self.threads)


def _rows_sink(region: np.ndarray):
    """``sink(rows, values)`` writing the flat C-order ``rows`` (a slice or an index array) of
    ``region``, a view of ``n`` contiguous runs of ``per`` elements (``region[i]`` contiguous):
    flat row ``f`` is ``region[f // per]``'s element ``f % per``. None where ``region[i]`` is not
    contiguous (the caller then rounds into a new array)."""
    runs = region.view()
    try:
        runs.shape = (region.shape[0], -1)  # raises where that would need a copy
    except AttributeError:
        return None
    per = runs.shape[1]

    def sink(rows, values):
        if isinstance(rows, slice):
            f, i = rows.start, 0
            while f < rows.stop:
                n, c = divmod(f, per)
                m = min(rows.stop - f, per - c)
                runs[n, c:c + m] = values[i:i + m]
                f, i = f + m, i + m
        else:
            n, c = np.divmod(np.asarray(rows, np.int64), per)
            runs[n, c] = values
    return sink


def _const(value):
    return lambda: value


def _products(ar, ai, br, bi, conj: bool) -> Parts:
    """Real term pairs whose sums are the real (and imaginary) part of ``sum a * b``
    (``b`` conjugated if ``conj``)."""
    if ai is None:
        return [(ar, br)]
    bi = -bi if conj else bi
    a = np.concatenate([ar, ai], axis=1)
    return [(a, np.concatenate([br, -bi], axis=1)), (a, np.concatenate([bi, br], axis=1))]


def _with_column(parts: Parts, cols) -> Parts:
    """Append one term ``col * 1`` per row to each part (the bias)."""
    out = []
    for (a, b), c in zip(parts, cols):
        out.append((np.concatenate([a, c[:, None]], axis=1), np.concatenate([b, np.ones_like(c)[:, None]], axis=1)))
    return out


def evaluate(shape, n_terms: int, builder: Callable[[np.ndarray], Parts], n_parts: int,
             scale: ExactScale | None, mantissa_bits: int) -> ExactTensor:
    """Run ``builder`` over blocks of rows (flat C-order indices) and sum each exactly."""
    rows = int(np.prod(shape))
    if scale is None:
        return ExactTensor(tuple(shape), lambda: [], None)
    per_block = max(1, _BLOCK_TERMS // max(n_terms, 1))
    blocks = []
    for r0 in range(0, rows, per_block):
        r = np.arange(r0, min(rows, r0 + per_block), dtype=np.int64)
        blocks.append((slice(r0, r0 + r.size), _const([exact_row_sums(a, b, mantissa_bits) for a, b in builder(r)])))
    return ExactTensor(tuple(shape), lambda: blocks, scale)


def _take_or_zero(a: np.ndarray | None, lead: tuple, idx: np.ndarray, size: int):
    """``a[lead + (idx,)]`` along the last axis (of length ``size``), reading 0 where ``idx ==
    size`` (the sentinel of a padded zero or an unused slot): ``_append_zero(a, -1)[lead +
    (idx,)]`` without copying ``a`` (non-finite values at the clipped position never leak)."""
    if a is None:
        return None
    if size == 0:
        return _append_zero(a, a.ndim - 1)[lead + (idx,)]
    return np.where(idx < size, a[lead + (np.minimum(idx, size - 1),)], 0.0)


def _append_zero(a: np.ndarray | None, axis: int):
    """``a`` with one zero appended along ``axis`` (the target of sentinel indices)."""
    if a is None:
        return None
    pad = [(0, 0)] * a.ndim
    pad[axis] = (0, 1)
    return np.pad(a, pad)


@dataclass(frozen=True)
class Operands:
    """float64 real/imag parts of x ``(N, C_in, L)``, w, b (imag None when real)."""

    xr: np.ndarray
    xi: np.ndarray | None
    wr: np.ndarray
    wi: np.ndarray | None
    br: np.ndarray | None
    bi: np.ndarray | None


@dataclass(frozen=True)
class Terms:
    """One output tensor as term lists: ``builder(rows)`` gives the real (and imaginary)
    parts' factor arrays for those flat rows."""

    shape: tuple
    n_terms: int
    builder: Callable[[np.ndarray], Parts]
    n_parts: int

    def exact(self, scale: ExactScale | None, mantissa_bits: int) -> ExactTensor:
        return evaluate(self.shape, self.n_terms, self.builder, self.n_parts, scale, mantissa_bits)


def _sliced_or_terms(streamed, shape, terms: Callable[[], Terms], scale, mantissa_bits) -> ExactTensor:
    """The sliced engine's blocks where it applied (``streamed`` not None), else the term lists'."""
    if scale is not None and streamed is not None:
        return ExactTensor(tuple(shape), streamed.blocks, scale, streamed.threads)
    return terms().exact(scale, mantissa_bits)


def forward_exact(geo: Geometry, src: Sources, padding_mode: str, scale: ExactScale) -> ExactTensor:
    """Exact forward: the sliced BLAS engine (:mod:`usconv_ref.sliced`) where it applies,
    else the term lists (non-finite values, extreme exponent spreads, empty tensors)."""
    st = None if scale is None else sliced.forward(geo, src.x, src.w, src.b, src.cd, padding_mode)
    return _sliced_or_terms(st, (geo.N, geo.C_out, geo.L_out), lambda: forward_terms(geo, src.operands(), padding_mode),
                            scale, src.mantissa_bits)


def grad_input_exact(geo: Geometry, src: Sources, padding_mode: str, scale) -> ExactTensor:
    st = None if scale is None else sliced.grad_input(geo, src.gy, src.w, src.cd, padding_mode)
    return _sliced_or_terms(st, (geo.N, geo.C_in, geo.L),
                            lambda: grad_input_terms(geo, *src.gy_parts(), src.operands(), padding_mode),
                            scale, src.mantissa_bits)


def grad_weight_exact(geo: Geometry, src: Sources, padding_mode: str, scale) -> ExactTensor:
    st = None if scale is None else sliced.grad_weight(geo, src.gy, src.x, src.cd, padding_mode)
    return _sliced_or_terms(st, (geo.C_out, geo.Cg, geo.K),
                            lambda: grad_weight_terms(geo, *src.gy_parts(), src.operands(), padding_mode),
                            scale, src.mantissa_bits)


def grad_bias_exact(geo: Geometry, src: Sources, scale) -> ExactTensor:
    st = None if scale is None else sliced.grad_bias(geo, src.gy, src.cd)
    return _sliced_or_terms(st, (geo.C_out,), lambda: grad_bias_terms(geo, *src.gy_parts()), scale, src.mantissa_bits)


@dataclass(frozen=True)
class Sources:
    """The validated inputs in their case dtype (batched); float64 parts on demand."""

    cd: CaseDtype
    x: np.ndarray
    w: np.ndarray
    b: np.ndarray | None
    gy: np.ndarray | None = None

    @property
    def mantissa_bits(self) -> int:
        return 53 if self.cd.part.precision > 24 else 24

    def operands(self) -> "Operands":
        xr, xi = to_float64_parts(self.x, self.cd)
        wr, wi = to_float64_parts(self.w, self.cd)
        br = bi = None
        if self.b is not None:
            br, bi = to_float64_parts(self.b, self.cd)
        return Operands(xr, xi, wr, wi, br, bi)

    def gy_parts(self):
        return to_float64_parts(self.gy, self.cd)


def _positions(src: np.ndarray, L: int, L_out: int, K: int, stride: int, dilation: int) -> np.ndarray:
    """``(L_out, K)``: the x position read by output t through tap k, ``L`` (the appended
    zero) where the padded value is a zero: ``src[t*stride + k*dilation]``, -1 -> L."""
    src = np.where(src < 0, L, src)
    return src[forward_positions(L_out, K, stride, dilation)]


# Tap tables per geometry (the exact fallback of truncated sliced plans builds term lists per
# block; rebuilding these each time cost more than the rows' exact sums). Bounded: 64 entries
# each, read-only int64 arrays of (L_out, K) resp. 2 x (L, a few) elements.
@lru_cache(maxsize=64)
def _cached_positions(L: int, pl: int, pr: int, mode: str, L_out: int, K: int, stride: int, dilation: int):
    """:func:`_positions` of the padding's own index map (read-only)."""
    pos = _positions(source_index(L, pl, pr, mode), L, L_out, K, stride, dilation)
    pos.flags.writeable = False
    return pos


def _read_positions(geo: Geometry, padding_mode: str) -> np.ndarray:
    return _cached_positions(geo.L, geo.pl, geo.pr, padding_mode, geo.L_out, geo.K, geo.stride, geo.dilation)


@lru_cache(maxsize=64)
def _input_taps(L: int, pl: int, pr: int, mode: str, L_out: int, K: int, stride: int, dilation: int):
    """:func:`~usconv_ref.padding.grad_input_taps` of the padding's own index map, cached per
    geometry (read-only arrays)."""
    kk, tt = grad_input_taps(source_index(L, pl, pr, mode), L, L_out, K, stride, dilation)
    kk.flags.writeable = False
    tt.flags.writeable = False
    return kk, tt


def forward_terms(geo: Geometry, ops: Operands, padding_mode: str, src: np.ndarray | None = None) -> Terms:
    """``src`` overrides the padding's source index map (for simulated implementations)."""
    pos = (_read_positions(geo, padding_mode) if src is None  # (L_out, K)
           else _positions(src, geo.L, geo.L_out, geo.K, geo.stride, geo.dilation))
    xr, xi = ops.xr, ops.xi
    Cg, Og, L_out = geo.Cg, geo.Og, geo.L_out
    c = np.arange(Cg)[None, :, None]

    def builder(r):
        n, o, t = np.unravel_index(r, (geo.N, geo.C_out, L_out))
        ch = (o // Og)[:, None, None] * Cg + c
        p = pos[t][:, None, :]
        take = lambda x: None if x is None else _take_or_zero(x, (n[:, None, None], ch), p, geo.L).reshape(len(r), -1)
        wt = lambda w: None if w is None else w[o].reshape(len(r), -1)
        parts = _products(take(xr), take(xi), wt(ops.wr), wt(ops.wi), conj=False)
        if ops.br is not None:
            cols = [ops.br[o]] if ops.bi is None else [ops.br[o], ops.bi[o]]
            parts = _with_column(parts, cols)
        return parts

    n_terms = (2 if xi is not None else 1) * Cg * geo.K + (ops.br is not None)
    return Terms((geo.N, geo.C_out, L_out), n_terms, builder, 1 if xi is None else 2)


def grad_input_terms(geo: Geometry, gyr, gyi, ops: Operands, padding_mode: str, src=None, conj: bool = True) -> Terms:
    if src is None:
        kk, tt = _input_taps(geo.L, geo.pl, geo.pr, padding_mode, geo.L_out, geo.K, geo.stride, geo.dilation)
    else:
        kk, tt = grad_input_taps(src, geo.L, geo.L_out, geo.K, geo.stride, geo.dilation)  # (L, M)
    wr, wi = ops.wr, ops.wi
    Cg, Og = geo.Cg, geo.Og
    og = np.arange(Og)[None, :, None]

    def builder(r):
        n, ci, j = np.unravel_index(r, (geo.N, geo.C_in, geo.L))
        o = (ci // Cg)[:, None, None] * Og + og  # (R, Og, 1)
        k, t = kk[j][:, None, :], tt[j][:, None, :]  # (R, 1, M)
        gy = lambda g: None if g is None else _take_or_zero(g, (n[:, None, None], o), t, geo.L_out).reshape(len(r), -1)
        ww = lambda w: None if w is None else _take_or_zero(w, (o, (ci % Cg)[:, None, None]), k, geo.K).reshape(len(r), -1)
        return _products(gy(gyr), gy(gyi), ww(wr), ww(wi), conj=conj)

    n_terms = (2 if gyi is not None else 1) * Og * kk.shape[1]
    return Terms((geo.N, geo.C_in, geo.L), n_terms, builder, 1 if gyi is None else 2)


def grad_weight_terms(geo: Geometry, gyr, gyi, ops: Operands, padding_mode: str, src=None, conj: bool = True) -> Terms:
    pos = (_read_positions(geo, padding_mode) if src is None  # (L_out, K)
           else _positions(src, geo.L, geo.L_out, geo.K, geo.stride, geo.dilation))
    xr, xi = ops.xr, ops.xi
    Cg, Og = geo.Cg, geo.Og
    nn = np.arange(geo.N)[:, None]

    def builder(r):
        o, c, k = np.unravel_index(r, (geo.C_out, Cg, geo.K))
        ch = (o // Og) * Cg + c
        gy = lambda g: None if g is None else g[:, o, :].transpose(1, 0, 2).reshape(len(r), -1)
        xx = lambda x: None if x is None else _take_or_zero(x, (nn[None], ch[:, None, None]), pos[:, k].T[:, None, :],
                                                            geo.L).reshape(len(r), -1)
        return _products(gy(gyr), gy(gyi), xx(xr), xx(xi), conj=conj)

    n_terms = (2 if gyi is not None else 1) * geo.N * geo.L_out
    return Terms((geo.C_out, Cg, geo.K), n_terms, builder, 1 if gyi is None else 2)


def grad_bias_terms(geo: Geometry, gyr, gyi) -> Terms:
    def builder(r):
        parts = []
        for g in (gyr, gyi):
            if g is not None:
                a = g[:, r, :].transpose(1, 0, 2).reshape(len(r), -1)
                parts.append((a, np.ones_like(a)))
        return parts

    return Terms((geo.C_out,), geo.N * geo.L_out, builder, 1 if gyi is None else 2)
