"""The plain fast path: the op in float64/complex128 with BLAS. NOT exact — summation order
and rounding are BLAS's — and never the reference's default. Used for error bounds (the op
on absolute values), term counts (the op on ones) and for large problems.

Dense groups (more than one channel): per batch element one batched matrix product
(``np.matmul``) against a column matrix of the K taps (im2col, built in a per-thread scratch;
grad_x at stride 1 as the correlation of gy, zero-extended, with the reversed taps), in chunks
of positions where that matrix would be large; where the chunks would be too narrow (and for
grad_x at stride > 1 or with non-finite weights) a loop over the K taps of strided views of the
padded input, one product per tap. When a group has one input and one output channel
(depthwise): an element-wise multiply-add per tap over cache-sized chunks of rows — at stride 1 in float64,
forward and grad_x instead run band-matrix products (windows of B + span - 1 positions times a
band of the taps, BLAS: :func:`_dw_forward_band`) where the inputs are finite and B divides the
output length, else ``scipy.ndimage.correlate1d`` once per channel (a compiled loop over the taps,
which releases the GIL), and at stride 1 grad_w is two small BLAS products per row over blocks of
lags (:func:`_dw_grad_weight_blocked`; from the caller's windows of x: one product per row,
:func:`_dw_grad_weight_band`); for integer-valued operands with small enough sums all are exact
in any order, like the others, which the exact engine relies on. Chunks reuse per-thread
scratch buffers (:class:`_Scratch`).
"""
from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import lru_cache

import numpy as np

from .padding import source_index
from .scaling import exact_unit_scales
from .spec import Conv1dSpec, Geometry, resolve_geometry


# Depthwise rows are processed in chunks of about this many elements (cache-sized temporaries).
_CHUNK_ELEMS = 1 << 15
_FILTER = True  # depthwise stride-1 float64 kernels through scipy.ndimage.correlate1d
_BAND = True  # depthwise stride-1 float64 forward as band-matrix products where finite (before _FILTER)
_WORKERS = os.cpu_count() or 1  # threads of the public fast-path functions (the exact engine threads blocks itself)


class _Scratch:
    """Buffers reused across the chunks of one call on one thread. A fresh array per chunk
    costs page faults: glibc hands freed blocks of this size back to the kernel (heap trim /
    munmap), so every chunk touched new pages (on this project's VM the depthwise fast path
    spent more time there than computing)."""

    def __init__(self):
        self.bufs = {}

    def get(self, key: str, shape: tuple, dtype=np.float64) -> np.ndarray:
        """An uninitialised C-contiguous array of ``shape``, the same memory each time for ``key``."""
        size = math.prod(shape)
        buf = self.bufs.get(key)
        if buf is None or buf.size < size or buf.dtype != dtype:
            buf = self.bufs[key] = np.empty(max(size, 1), dtype)
        return buf[:size].reshape(shape)


# Each thread's scratch, kept between calls (the exact engine calls these kernels once per slice
# pair and block: a fresh scratch per call faulted its pages in every time). Bounded: per thread,
# one buffer per key at the largest size asked (a few MiB); a thread's buffers go with the thread.
_LOCAL = threading.local()


def _thread_scratch() -> _Scratch:
    """The calling thread's :class:`_Scratch` (created on first use)."""
    scratch = getattr(_LOCAL, "scratch", None)
    if scratch is None:
        scratch = _LOCAL.scratch = _Scratch()
    return scratch


def _each_chunk(body, chunks: list, workers: int) -> None:
    """``body(chunk, scratch)`` for every chunk (they write disjoint rows): in order, or on
    ``workers`` threads (NumPy releases the GIL inside its loops); ``scratch`` is the
    :class:`_Scratch` of the thread running it (bodies must not call back into this)."""
    if workers <= 1 or len(chunks) < 2:
        scratch = _thread_scratch()
        for sl in chunks:
            body(sl, scratch)
        return

    def run(sl):
        body(sl, _thread_scratch())

    with ThreadPoolExecutor(min(workers, len(chunks))) as ex:
        list(ex.map(run, chunks))


def _pad_into(dst: np.ndarray, x: np.ndarray, geo: Geometry, mode: str) -> np.ndarray:
    """``x[..., L]`` padded along the last axis to ``L_pad`` (SPEC §2), written into
    ``dst[..., :L_pad]`` (no new full-size array); returns that view."""
    xp = dst[..., :geo.L_pad]
    xp[..., geo.pl:geo.pl + geo.L] = x
    if geo.pl + geo.pr == 0:
        return xp
    if mode == "zeros":  # (no index arrays: this runs once per slice and block)
        xp[..., :geo.pl] = 0
        xp[..., geo.pl + geo.L:] = 0
    else:
        edges = _pad_edges(geo.L, geo.pl, geo.pr)
        xp[..., edges] = x[..., _pad_sources(geo.L, geo.pl, geo.pr, mode)]
    return xp


@lru_cache(maxsize=256)
def _pad_edges(L: int, pl: int, pr: int) -> np.ndarray:
    """The padded positions ``[0, pl)`` and ``[pl + L, pl + L + pr)`` (read-only)."""
    edges = np.r_[0:pl, pl + L:pl + L + pr]
    edges.flags.writeable = False
    return edges


@lru_cache(maxsize=256)
def _pad_sources(L: int, pl: int, pr: int, mode: str) -> np.ndarray:
    """``source_index`` at :func:`_pad_edges` (read-only): where each padded value comes from."""
    src = source_index(L, pl, pr, mode)[_pad_edges(L, pl, pr)]
    src.flags.writeable = False
    return src


def _unpad_adjoint(gxp: np.ndarray, geo: Geometry, mode: str, out: np.ndarray | None = None) -> np.ndarray:
    """The adjoint of padding along the last axis: the interior, plus each padded position's
    gradient added to its source (a handful of column additions; zeros drops them); into
    ``out`` if given."""
    if out is None:
        gx = gxp[..., geo.pl:geo.pl + geo.L].copy()
    else:
        gx = out
        gx[...] = gxp[..., geo.pl:geo.pl + geo.L]
    if mode != "zeros":
        src = source_index(geo.L, geo.pl, geo.pr, mode)
        for i in list(range(geo.pl)) + list(range(geo.pl + geo.L, geo.L_pad)):
            gx[..., src[i]] += gxp[..., i]
    return gx


def _tap(a: np.ndarray, geo: Geometry, k: int) -> np.ndarray:
    """The strided view of padded positions ``t*stride + k*dilation`` for t < L_out."""
    start = k * geo.dilation
    return a[..., start:start + geo.stride * (geo.L_out - 1) + 1:geo.stride]


def _geometry(x, w, b, spec):
    geo = resolve_geometry(x.shape, w.shape, None if b is None else b.shape, spec)
    xb = x if geo.batched else x[None]
    return geo, xb


def _depthwise(geo: Geometry) -> bool:
    return geo.Cg == 1 and geo.Og == 1


def _row_taps(wr: np.ndarray, sl: slice) -> np.ndarray:
    """The (G, K) depthwise taps of rows ``sl`` of an (N*G)-row layout (row r is group r % G)."""
    return wr[np.arange(sl.start, sl.stop) % wr.shape[0]]


def _row_chunks(rows: int, length: int, factor: int = 1):
    """Slices of about ``factor * _CHUNK_ELEMS / length`` rows (or channels of ``length``
    elements each) covering ``range(rows)``."""
    step = max(1, factor * _CHUNK_ELEMS // max(length, 1))
    return [slice(r0, min(rows, r0 + step)) for r0 in range(0, rows, step)]


def _dilated(wk: np.ndarray, dilation: int) -> np.ndarray:
    """Taps ``wk`` with ``dilation - 1`` zeros between them (a filter spanning (K-1)*d+1)."""
    if dilation == 1:
        return wk
    wd = np.zeros((wk.size - 1) * dilation + 1)
    wd[::dilation] = wk
    return wd


# Dense kernels (more than one channel per group) as one matrix product per batch element over
# a column matrix of the K taps (im2col, in a per-thread scratch) instead of one per tap: an
# inner dimension of Cg*K (forward, grad_w) or Og*K (grad_x) instead of Cg or Og, and no
# per-tap additions of full-size results. Column matrices of more than this many elements
# are built a chunk of positions at a time; chunks narrower than _COLS_MIN positions fall back
# to the loop over taps.
_COLS_ELEMS = 1 << 20
_COLS_MIN = 64


def _col_chunks(rows: int, length: int):
    """``[(t0, t1)]`` covering ``range(length)`` with ``rows * (t1 - t0) <= _COLS_ELEMS``, or
    None where a chunk would be narrower than ``min(_COLS_MIN, length)`` positions."""
    step = _COLS_ELEMS // max(rows, 1)
    if step < min(_COLS_MIN, length):
        return None
    return [(t0, min(length, t0 + step)) for t0 in range(0, length, step)]


def _windows(a: np.ndarray, K: int, step_k: int, t0: int, t1: int, step_t: int) -> np.ndarray:
    """The read-only view ``v[..., k, t - t0] = a[..., t*step_t + k*step_k]`` for ``k < K``,
    ``t0 <= t < t1`` (every index inside ``a``'s last axis: the caller's bounds)."""
    base = a[..., t0 * step_t:]
    st = base.strides
    # a step along an axis of length 1 is never taken (and may exceed a C long: huge strides)
    sk, skt = (step_k * st[-1] if K > 1 else 0), (step_t * st[-1] if t1 - t0 > 1 else 0)
    return np.lib.stride_tricks.as_strided(base, base.shape[:-1] + (K, t1 - t0), st[:-1] + (sk, skt), writeable=False)


def _x_columns(xn: np.ndarray, geo: Geometry, mode: str, t0: int, t1: int, scratch: "_Scratch",
               dst: np.ndarray | None = None) -> np.ndarray:
    """The column matrix ``cols[g, c*K + k, t - t0] = xp[g*Cg + c, t*stride + k*dilation]`` of one
    batch element's input ``xn`` (C_in, L), positions ``t0 <= t < t1``, written into ``dst``
    (that many elements, C-contiguous) or ``scratch["dense_cols"]``."""
    G, Cg, K = geo.groups, geo.Cg, geo.K
    xp = _pad_into(scratch.get("dense_xp", (geo.C_in, geo.L_pad), xn.dtype), xn, geo, mode).reshape(G, Cg, geo.L_pad)
    shape = (G, Cg, K, t1 - t0)
    cols = scratch.get("dense_cols", shape, xn.dtype) if dst is None else dst.reshape(shape)
    np.copyto(cols, _windows(xp, K, geo.dilation, t0, t1, geo.stride))
    return cols.reshape(G, Cg * K, t1 - t0)


def _gy_columns(gn: np.ndarray, geo: Geometry, p0: int, p1: int, scratch: "_Scratch",
                dst: np.ndarray | None = None) -> np.ndarray:
    """grad_x's column matrix (stride 1) of one batch element's ``gn`` (C_out, L_out):
    ``cols[g, o*K + k, p - p0] = gye[g*Og + o, p + k*dilation]`` for ``p0 <= p < p1`` (padded
    positions), ``gye`` gy zero-extended by ``span = (K-1)*dilation`` on both sides; written
    into ``dst`` or ``scratch["dense_cols"]`` as :func:`_x_columns`."""
    G, Og, K = geo.groups, geo.Og, geo.K
    span = (K - 1) * geo.dilation
    gye = scratch.get("dense_gye", (G, Og, geo.L_out + 2 * span), gn.dtype)
    gye[..., :span] = 0
    gye[..., span + geo.L_out:] = 0
    gye[..., span:span + geo.L_out] = gn.reshape(G, Og, geo.L_out)
    shape = (G, Og, K, p1 - p0)
    cols = scratch.get("dense_cols", shape, gn.dtype) if dst is None else dst.reshape(shape)
    np.copyto(cols, _windows(gye, K, geo.dilation, p0, p1, 1))
    return cols.reshape(G, Og * K, p1 - p0)


def _gy_range(geo: Geometry, mode: str) -> tuple:
    """The padded positions ``[lo, hi)`` whose grad_x sums are needed: all of them, or only the
    interior with zero padding (the padded ones would be dropped by the adjoint)."""
    return (geo.pl, geo.pl + geo.L) if mode == "zeros" else (0, geo.L_pad)


def dense_columns(a: np.ndarray, geo: Geometry, mode: str, kind: str, key: str) -> np.ndarray | None:
    """The column matrices (N, G, rows, length) of a whole operand, for kernels called several
    times with it (the exact engine's slice pairs): ``kind`` "x" (the input of forward_raw and
    grad_weight_raw: :func:`_x_columns`) or "gy" (grad_input_raw's: :func:`_gy_columns`), in
    the calling thread's ``scratch[key]`` (valid until that key is used again). None where the
    kernels would not use one matrix for it (depthwise, grad_x at stride > 1, more than
    ``_COLS_ELEMS`` elements in all)."""
    if _depthwise(geo) or (kind == "gy" and geo.stride != 1):
        return None
    lo, hi = (0, geo.L_out) if kind == "x" else _gy_range(geo, mode)
    rows, length = (geo.Cg if kind == "x" else geo.Og) * geo.K, hi - lo
    if geo.N * geo.groups * rows * length > _COLS_ELEMS:
        return None
    scratch = _thread_scratch()
    out = scratch.get(key, (geo.N, geo.groups, rows, length), a.dtype)
    for n in range(geo.N):
        if kind == "x":
            _x_columns(a[n], geo, mode, lo, hi, scratch, out[n])
        else:
            _gy_columns(a[n], geo, lo, hi, scratch, out[n])
    return out


def forward_columns(xb: np.ndarray, geo: Geometry, mode: str, key: str) -> np.ndarray | None:
    """What :func:`forward_raw` takes as ``cols`` for an input it is called with several times
    (the exact engine's slice pairs), in the calling thread's ``scratch[key]``: the column
    matrices of :func:`dense_columns`, or for depthwise convolutions that the band kernel
    computes the window matrix of :func:`dw_windows` (the engine's slices are finite). None
    where forward_raw would not use one."""
    if not _depthwise(geo):
        return dense_columns(xb, geo, mode, "x", key)
    if not (_BAND and _band_width(geo) and xb.dtype == np.float64):
        return None
    return dw_windows(xb.reshape(geo.N * geo.groups, geo.L), geo, mode, _thread_scratch(), key)


def forward_band(wb: np.ndarray, geo: Geometry) -> np.ndarray | None:
    """What :func:`forward_raw` takes as ``bands`` for a (finite) weight it is called with several
    times (the exact engine's slice pairs): the depthwise band kernel's matrices
    :func:`_dw_band` of ``wb`` (C_out, 1, K). None where forward_raw would not use them."""
    if not (_depthwise(geo) and _BAND and _band_width(geo) and wb.dtype == np.float64):
        return None
    return _dw_band(wb.reshape(geo.groups, geo.K), geo)


def grad_weight_columns(xb: np.ndarray, geo: Geometry, mode: str, key: str) -> np.ndarray | None:
    """What :func:`grad_weight_raw` takes as ``cols`` for an x it is called with several times
    (the exact engine's slice pairs): :func:`dense_columns`, or for depthwise convolutions x's
    window matrix (:func:`dw_windows`) of band width ``_GW_BAND_WIDTHS`` (finite: the engine's
    slices). None where grad_weight_raw would not use one."""
    if not _depthwise(geo):
        return dense_columns(xb, geo, mode, "x", key)
    B = _band_width(geo, _GW_BAND_WIDTHS)
    if not (_BAND and B and xb.dtype == np.float64):
        return None
    return dw_windows(xb.reshape(geo.N * geo.groups, geo.L), geo, mode, _thread_scratch(), key, B)


def _grad_input_band_geometry(geo: Geometry, mode: str) -> Geometry | None:
    """Depthwise grad_x at stride 1 as the band kernel's forward over gy with the reversed
    taps: ``gxp[p] = sum_k w[k] gy[p - k*d]`` is gy, zero-extended by ``s = (K-1)*d``,
    correlated with the reversed (dilated) taps. The geometry of that forward (zeros padding):
    zeros mode ``s - pl`` / ``s - pr`` (output: grad_x's interior, length L), other modes ``s``
    on both sides (output: every padded position, length L_pad, then the padding adjoint).
    None where the band kernel does not apply (stride > 1, zeros padding wider than ``s``, no
    band width dividing the output length)."""
    s = (geo.K - 1) * geo.dilation
    if geo.stride != 1 or not _BAND:
        return None
    if mode == "zeros":
        if geo.pl > s or geo.pr > s:
            return None
        band = replace(geo, L=geo.L_out, pl=s - geo.pl, pr=s - geo.pr)
    else:
        band = replace(geo, L=geo.L_out, pl=s, pr=s)
    return band if _band_width(band) else None


def grad_input_columns(gyb: np.ndarray, geo: Geometry, mode: str, key: str) -> np.ndarray | None:
    """What :func:`grad_input_raw` takes as ``cols`` for a gy it is called with several times:
    :func:`dense_columns` (kind "gy"), or for depthwise convolutions that the band kernel
    computes the window matrix of gy under :func:`_grad_input_band_geometry` (the engine's
    slices are finite). None where grad_input_raw would not use one."""
    if not _depthwise(geo):
        return dense_columns(gyb, geo, mode, "gy", key)
    band = _grad_input_band_geometry(geo, mode)
    if band is None or gyb.dtype != np.float64:
        return None
    return dw_windows(gyb.reshape(geo.N * geo.groups, geo.L_out), band, "zeros", _thread_scratch(), key)


def _dw_forward_filter(xr, wr, y, geo: Geometry, mode: str, acc: bool, add, workers: int) -> None:
    """Depthwise forward at stride 1 with ``scipy.ndimage.correlate1d`` (one compiled pass
    per channel over its batch rows instead of a multiply and an add per tap): ``y[r, t] =
    sum_k w[g, k] xp[r, t + k*dilation]`` is the filter's output at ``t + span // 2`` (the
    filter's centre), every read inside the padded row. Float64 sums in some order: exact for
    integer-valued operands whose products sum to at most 2**53, as the other kernels."""
    from scipy import ndimage  # here: importing it costs ~0.3 s, and most calls never need it
    G, N = wr.shape[0], xr.shape[0] // wr.shape[0]
    x3, y3 = xr.reshape(N, G, geo.L), y.reshape(N, G, geo.L_out)
    span = (geo.K - 1) * geo.dilation + 1
    c = span // 2
    origin = geo.pl - c
    # 'same' lengths: the filter pads by itself (its modes are the padding modes), no copies
    direct = geo.L_out == geo.L and max(geo.pl, geo.pr) < geo.L and -c <= origin <= (span - 1) // 2

    def body(gs, scratch):
        gb = gs.stop - gs.start
        if direct:
            tmp = scratch.get("tmp", (N, gb, geo.L)) if acc else None
            for i, g in enumerate(range(gs.start, gs.stop)):
                ndimage.correlate1d(x3[:, g], _dilated(wr[g], geo.dilation), axis=-1,
                                    output=tmp[:, i] if acc else y3[:, g], mode=_FILTER_MODE[mode], origin=origin)
            if acc:
                add(y3[:, gs], tmp, out=y3[:, gs])
            return
        xp = _pad_into(scratch.get("xp", (N, gb, geo.L_pad)), x3[:, gs], geo, mode)
        tmp = scratch.get("tmp", xp.shape)
        for i, g in enumerate(range(gs.start, gs.stop)):
            ndimage.correlate1d(xp[:, i], _dilated(wr[g], geo.dilation), axis=-1, output=tmp[:, i], mode="constant")
        res = tmp[..., c:c + geo.L_out]
        if acc:
            add(y3[:, gs], res, out=y3[:, gs])
        else:
            y3[:, gs] = res

    _each_chunk(body, _row_chunks(G, N * geo.L_pad), workers)  # chunks of channels


# Depthwise stride-1 float64 forward as band-matrix products (BLAS) instead of correlate1d's
# scalar loop: with windows of B + span - 1 padded positions a row (span = (K-1)*dilation + 1),
# ``y[r, i*B + b] = sum_a win[r, i, a] M[g, a, b]`` where ``M[g, a, b]`` is the tap at offset
# ``a - b`` (zero outside ``[0, span)``). B + span - 1 multiply-adds an output instead of K, but
# at BLAS speed and written straight into the result (micro-benchmark, 8 rows x 4 channels x
# 2048 positions, K 9, B 16: ~120 us against correlate1d's ~270 us; the windows, built once per
# input and reused by the exact engine's slice pairs: ~90 us).
_BAND_WIDTHS = (16, 8)  # output positions per window row, the first that divides L_out
# grad_w's windows (:func:`grad_weight_columns`): a product per row computes B (B + span - 1)
# lags of which it keeps B K, so B 8 costs L_out (8 + span - 1) multiply-adds a row against
# L_out (16 + span - 1) for B 16 (K 9: 16 against 24; micro-benchmark, (8, 256) @ (256, 16)
# per row 2.7 us against (16, 128) @ (128, 24) 3.3-3.5 us), and its diagonals gather half as
# many entries. (The forward keeps B 16: its band matrices are (B + span - 1, B), B 8 its
# less efficient shape.)
_GW_BAND_WIDTHS = (8,)


def _band_width(geo: Geometry, widths: tuple = _BAND_WIDTHS) -> int:
    """B of :func:`_dw_forward_band` (0: not applicable): stride 1 and ``L_out % B == 0``, the
    first of ``widths`` that divides."""
    if geo.stride != 1:
        return 0
    return next((B for B in widths if geo.L_out % B == 0), 0)


def dw_windows(xr: np.ndarray, geo: Geometry, mode: str, scratch: "_Scratch", key: str, B: int = 0) -> np.ndarray:
    """The window matrix ``win[..., i, a] = xp[..., i*B + a]`` (``i < L_out // B``, ``a < B + span
    - 1``) of depthwise rows ``xr[..., L]`` padded (SPEC §2), in ``scratch[key]``; ``B``: the
    band width (0: :func:`_band_width`'s; given, it must divide ``L_out``)."""
    B = B or _band_width(geo)
    span = (geo.K - 1) * geo.dilation + 1
    nb, width = geo.L_out // B, B + span - 1
    xp = _pad_into(scratch.get("band_xp", xr.shape[:-1] + (geo.L_pad,), xr.dtype), xr, geo, mode)
    win = scratch.get(key, xr.shape[:-1] + (nb, width), xr.dtype)
    np.copyto(win, np.swapaxes(_windows(xp, width, 1, 0, nb, B), -1, -2))
    return win


def _dw_band(wr: np.ndarray, geo: Geometry) -> np.ndarray:
    """(G, B + span - 1, B) band matrices of the (dilated) taps ``wd``: ``M[g, a, b] = wd[g, a -
    b]`` where ``0 <= a - b < span``, else 0. Tap k fills the diagonal ``a = b + k*dilation``,
    whose entry ``(b + k d, b)`` lies ``k d B + b (B + 1)`` elements from a matrix's start: the
    taps are written through one strided view (:func:`_band_taps`), no mask or index arrays."""
    B = _band_width(geo)
    M = np.zeros((wr.shape[0], B + (geo.K - 1) * geo.dilation, B), wr.dtype)
    _band_taps(M, geo.K, geo.dilation)[...] = wr[:, :, None]
    return M


def _band_taps(M: np.ndarray, K: int, dilation: int) -> np.ndarray:
    """The writeable view ``T[g, k, b] = M[g, b + k*dilation, b]`` (``k < K``) of a C-contiguous
    ``M[G, W, B]`` (needs ``(K-1) d + B <= W``): strides ``(M's, d B, B + 1)`` elements."""
    G, W, B = M.shape
    assert M.flags.c_contiguous and (K - 1) * dilation + B <= W
    s0, s1, s2 = M.strides
    return np.lib.stride_tricks.as_strided(M, (G, K, B), (s0, dilation * s1, s1 + s2))


def _dw_forward_band(xr, wr, y, geo: Geometry, mode: str, acc: bool, add, workers: int, win=None, M=None) -> None:
    """Depthwise forward at stride 1 as band-matrix products (see ``_BAND_WIDTHS``): per chunk
    of channels one batched ``np.matmul`` of the windows (:func:`dw_windows`; ``win``, if the
    caller has them for all rows) with the channels' band matrices (:func:`_dw_band`; ``M``, if
    the caller has them), into ``y`` (or added with
    ``add`` where ``acc``). Needs finite inputs (the band's zeros multiply every window
    position: 0 * inf would be NaN). Each output sums its K products and zeros in BLAS's order:
    exact for integer-valued operands whose products sum to at most 2**53 (every partial sum
    is then an exact integer), as the other kernels."""
    G, N = wr.shape[0], xr.shape[0] // wr.shape[0]
    B = _band_width(geo)
    nb = geo.L_out // B
    x3, y3 = xr.reshape(N, G, geo.L), y.reshape(N, G, geo.L_out)
    M = _dw_band(wr, geo) if M is None else M
    w4 = None if win is None else win.reshape(N, G, nb, -1)

    def body(gs, scratch):
        gb = gs.stop - gs.start
        wins = w4[:, gs] if w4 is not None else dw_windows(x3[:, gs], geo, mode, scratch, "band_win")
        dst = y3[:, gs].reshape(N, gb, nb, B)
        if acc:
            tmp = scratch.get("band_tmp", dst.shape, y.dtype)
            np.matmul(wins, M[gs], out=tmp)
            add(dst, tmp, out=dst)
        else:
            np.matmul(wins, M[gs], out=dst)

    chunks = [slice(0, G)] if w4 is not None else _row_chunks(G, N * geo.L_pad, 4)
    _each_chunk(body, chunks, workers)


_FILTER_MODE = {"zeros": "constant", "reflect": "mirror", "replicate": "nearest", "circular": "wrap"}


def _dw_grad_input_filter(gr, wr, gx, geo: Geometry, mode: str, workers: int) -> None:
    """Depthwise grad_x at stride 1: ``gxp[p] = sum_k w[k] gy[p - k*dilation]`` (a full
    convolution) is the correlation of gy, zero-extended by ``span - 1`` on both sides, with the
    reversed (dilated) taps, read at the filter's centre; then the padding adjoint. 'Same'
    lengths: the filter reads gy zero-extended by itself and writes grad_x's interior in place
    (no copies); the few padded positions' gradients are then added to their sources."""
    from scipy import ndimage
    G, N = wr.shape[0], gr.shape[0] // wr.shape[0]
    g3, x3 = gr.reshape(N, G, geo.L_out), gx.reshape(N, G, geo.L)
    span = (geo.K - 1) * geo.dilation + 1
    c = span // 2
    origin = span - 1 - geo.pl - c  # output i reads gy[i + pl - (span - 1) + m] with reversed tap m
    direct = geo.L_out == geo.L and -c <= origin <= (span - 1) // 2
    edges = np.r_[0:geo.pl, geo.pl + geo.L:geo.L_pad] if mode != "zeros" else np.zeros(0, np.int64)
    src = source_index(geo.L, geo.pl, geo.pr, mode)[edges]
    lag = edges[:, None] - np.arange(geo.K) * geo.dilation  # (edges, K): gy position of tap k
    valid = (lag >= 0) & (lag < geo.L_out)

    def body(gs, scratch):
        if direct:
            for g in range(gs.start, gs.stop):
                ndimage.correlate1d(g3[:, g], _dilated(wr[g], geo.dilation)[::-1], axis=-1, output=x3[:, g],
                                    mode="constant", origin=origin)
            if edges.size:  # the padding adjoint: each padded position's gradient into its source
                gsel = g3[:, gs]
                pad_grad = np.zeros((N, gs.stop - gs.start, edges.size))
                for k in range(geo.K):
                    m = valid[:, k]
                    pad_grad[..., m] += gsel[..., lag[m, k]] * wr[gs, k][None, :, None]
                for e in range(edges.size):
                    x3[:, gs, src[e]] += pad_grad[..., e]
            return
        ext = scratch.get("ext", (N, gs.stop - gs.start, geo.L_pad + span - 1))
        ext[..., :span - 1] = 0
        ext[..., span - 1 + geo.L_out:] = 0
        ext[..., span - 1:span - 1 + geo.L_out] = g3[:, gs]
        tmp = scratch.get("tmp", ext.shape)
        for i, g in enumerate(range(gs.start, gs.stop)):
            ndimage.correlate1d(ext[:, i], _dilated(wr[g], geo.dilation)[::-1], axis=-1, output=tmp[:, i], mode="constant")
        _unpad_adjoint(tmp[..., c:c + geo.L_pad], geo, mode, out=x3[:, gs])

    _each_chunk(body, _row_chunks(G, N * (geo.L_pad + span)), workers)  # chunks of channels


_LAG_BLOCK_MAX = 128  # widest lag block of the blocked depthwise grad_w (wider spans: per-tap einsum)


def _lag_block(geo: Geometry) -> int:
    """The block width ``B`` of :func:`_dw_grad_weight_blocked` (0: not applicable): stride 1,
    ``B >= (K-1)*dilation`` (every tap's lag reaches at most one block ahead), at least 8."""
    B = max(8, (geo.K - 1) * geo.dilation)
    return B if geo.stride == 1 and B <= _LAG_BLOCK_MAX and geo.L_out >= B else 0


def _dw_grad_weight_blocked(gr, xr, acc, geo: Geometry, mode: str, B: int, workers: int) -> None:
    """Depthwise grad_w per row at stride 1 as matrix products (BLAS) instead of a pass per
    tap: with ``t = B*i + j`` (``i < nb = L_out // B``), ``Q[j, m] = sum_i gy[B*i + j] *
    xp[B*i + m]`` for ``m < 2B`` is two (B, nb) @ (nb, B) products per row (the padded row
    cut into blocks of B, and the same shifted by one block), and ``acc[r, k] = sum_j Q[j, j +
    k*dilation]`` (+ the last ``L_out - nb*B`` positions tap by tap). Each used ``Q[j, m]``
    sums exactly the products of lag ``m - j`` (no other product enters it, so non-finite
    values reach the same taps as a direct loop); float64 sums in some order, exact for
    integer-valued operands whose products sum to at most 2**53, as the other kernels."""
    K, d, L_out = geo.K, geo.dilation, geo.L_out
    nb = L_out // B
    width = max(geo.L_pad, (nb + 1) * B)
    j = np.arange(B)[:, None]
    lag = j + np.arange(K) * d  # (B, K): the column of Q holding tap k's products of row j
    dtype = acc.dtype

    def body(sl, scratch):
        n = sl.stop - sl.start
        xp = scratch.get("xp", (n, width), dtype)
        _pad_into(xp, xr[sl], geo, mode)
        xp[:, geo.L_pad:] = 0  # read only by entries of Q that are not used (hygiene)
        gyt = np.swapaxes(gr[sl, :nb * B].reshape(n, nb, B), 1, 2)  # (n, B, nb)
        q = scratch.get("q", (n, B, 2 * B), dtype)
        np.matmul(gyt, xp[:, :nb * B].reshape(n, nb, B), out=q[:, :, :B])
        np.matmul(gyt, xp[:, B:(nb + 1) * B].reshape(n, nb, B), out=q[:, :, B:])
        acc[sl] = q[:, j, lag].sum(axis=1)
        for t in range(nb * B, L_out):  # the last partial block
            acc[sl] += gr[sl, t:t + 1] * xp[:, t:t + (K - 1) * d + 1:d]

    _each_chunk(body, _row_chunks(gr.shape[0], width, 4), workers)  # larger chunks: fewer, larger products


def _dw_grad_weight_band(g3: np.ndarray, win: np.ndarray, geo: Geometry) -> np.ndarray:
    """Depthwise grad_w at stride 1 from x's windows (:func:`dw_windows` of any band width B
    dividing L_out, read off their shape; finite: the exact engine's slices): with ``t = i*B +
    b``, ``R[n, g, b, a] = sum_i gy[n, g, i*B + b] win[n, g, i, a]`` is one (B, L_out/B) @
    (L_out/B, B + span - 1) product per row, and ``gw[g, k] = sum_{n, b} R[n, g, b, b +
    k*dilation]`` (:func:`_tap_diagonals`): each used entry sums exactly the products of tap k
    (the others are dropped), in BLAS's order; exact for integer-valued operands whose products
    sum to at most 2**53, as the other kernels. Returns (G, K)."""
    N, G, L_out = g3.shape
    nb = win.shape[-2]
    B = L_out // nb
    gyt = np.swapaxes(g3.reshape(N, G, nb, B), -1, -2)  # (N, G, B, nb): BLAS's transpose, no copy
    R = np.matmul(gyt, win.reshape(N, G, nb, -1))  # (N, G, B, B + span - 1)
    return _tap_diagonals(R, geo.K, geo.dilation).sum(axis=(0, 3))


def _tap_diagonals(R: np.ndarray, K: int, dilation: int) -> np.ndarray:
    """The read-only view ``D[..., k, b] = R[..., b, b + k*dilation]`` (``k < K``) of a
    C-contiguous ``R[..., B, W]``: entry ``(b, b + k d)`` lies at ``b (W + 1) + k d`` elements
    from a matrix's start, so one strided view (no gathered copy; needs ``(K-1) d + B <= W``)."""
    *lead, B, W = R.shape
    e = R.itemsize
    assert R.flags.c_contiguous and (K - 1) * dilation + B <= W
    return np.lib.stride_tricks.as_strided(R, (*lead, K, B), R.strides[:-2] + (dilation * e, (W + 1) * e),
                                           writeable=False)


def _put(dst: np.ndarray, res: np.ndarray, negate: bool, accumulate: bool) -> None:
    """``dst`` = ``res``, ``-res`` (``negate``), ``dst + res`` (``accumulate``) or ``dst - res``
    (both), in place: the exact engine's ways of combining a kernel's result with its buffer."""
    if accumulate:
        (np.subtract if negate else np.add)(dst, res, out=dst)
    elif negate:
        np.negative(res, out=dst)
    else:
        np.copyto(dst, res)


def forward_raw(xb: np.ndarray, w: np.ndarray, geo: Geometry, mode: str, workers: int = 1,
                out: np.ndarray | None = None, negate: bool = False, assign: bool = False,
                cols: np.ndarray | None = None, bands: np.ndarray | None = None) -> np.ndarray:
    """``sum_{c,k} w[o,c,k] * xp[n, g(o)Cg + c, t*stride + k*dilation]`` as (N, G, Og, L_out),
    no scale, no bias. For integer-valued inputs whose products sum (in absolute value) to at
    most 2**53 per element every partial sum is an exact integer, so the result is exact in
    any summation order (the sliced exact engine relies on this).

    Depthwise: per chunk of (n, channel) rows, a multiply-add per tap in cache (chunks on
    ``workers`` threads). Otherwise per batch element one matrix product per tap over the
    group's channels (BLAS threads). ``out`` (float64, that shape): the result is added to it
    (subtracted with ``negate``) in place, no full-size temporary; with ``assign`` it replaces
    ``out``'s contents (negated with ``negate``) instead. ``cols``: ``dense_columns(xb, geo,
    mode, "x", ...)`` or, depthwise, :func:`forward_columns`, if the caller has it (finite
    inputs, for the depthwise band kernel). ``bands``: :func:`forward_band` of ``w``, if the caller
    has it (one per weight slice instead of one per call)."""
    dtype = np.result_type(xb, w, np.float64)
    G, Og, Cg, K = geo.groups, geo.Og, geo.Cg, geo.K
    if _depthwise(geo):
        rows = geo.N * G
        xr = xb.reshape(rows, geo.L)
        wr = w.reshape(G, K)
        acc = out is not None and not assign
        y = out.reshape(rows, geo.L_out) if out is not None else np.empty((rows, geo.L_out), dtype)
        add = np.subtract if negate and acc else np.add
        def body(sl, scratch):
            xp = _pad_into(scratch.get("xp", (sl.stop - sl.start, geo.L_pad), dtype), xr[sl], geo, mode)
            wc = _row_taps(wr, sl)
            yc = y[sl]
            tmp = scratch.get("tmp", yc.shape, dtype)
            for k in range(K):
                if k == 0 and not acc:
                    np.multiply(_tap(xp, geo, 0), wc[:, 0:1], out=yc)
                    continue
                np.multiply(_tap(xp, geo, k), wc[:, k:k + 1], out=tmp)
                add(yc, tmp, out=yc)

        band = (_BAND and dtype == np.float64 and _band_width(geo)
                and (cols is not None or (np.isfinite(wr).all() and np.isfinite(xr).all())))
        if band:  # (cols: the exact engine's windows of its finite slices)
            _dw_forward_band(xr, wr, y, geo, mode, acc, add, workers, cols, bands)
        elif _FILTER and geo.stride == 1 and dtype == np.float64:
            _dw_forward_filter(xr, wr, y, geo, mode, acc, add, workers)
        else:
            _each_chunk(body, _row_chunks(rows, geo.L_pad), workers)
        if negate and not acc:  # written, not accumulated: the sign once at the end
            np.negative(y, out=y)
        return y.reshape(geo.N, G, 1, geo.L_out)
    wg = w.reshape(G, Og, Cg, K)
    scratch = _thread_scratch()  # per-call arrays of this size cost page faults (see _Scratch)
    chunks = _col_chunks(G * Cg * K, geo.L_out)
    if chunks is not None:  # one product per batch element (and chunk) over the column matrix
        direct = out is None or assign  # written by the product itself (negated: through the weights)
        y = np.empty((geo.N, G, Og, geo.L_out), dtype) if out is None else out
        w2 = w.reshape(G, Og, Cg * K)
        if direct and negate:
            w2 = -w2  # exact, and RN is symmetric: the product of -w is the negated product
        add = np.subtract if negate else np.add
        tmp = None if direct else scratch.get("dense_tmp", (G, Og, chunks[0][1]), dtype)
        assert cols is None or len(chunks) == 1, "cols: one column matrix per batch element"
        for n in range(geo.N):
            for t0, t1 in chunks:
                c = cols[n] if cols is not None else _x_columns(xb[n], geo, mode, t0, t1, scratch)
                dst = y[n, :, :, t0:t1]
                if direct:
                    np.matmul(w2, c, out=dst)  # (G, Og, Cg*K) @ (G, Cg*K, t1-t0)
                else:
                    part = tmp[..., :t1 - t0]
                    np.matmul(w2, c, out=part)
                    add(dst, part, out=dst)
        return y
    y = out if out is not None else np.zeros((geo.N, G, Og, geo.L_out), dtype)
    if assign:
        y[...] = 0
    add = np.subtract if negate else np.add
    tmp = scratch.get("dense_tmp", (G, Og, geo.L_out), dtype)
    for n in range(geo.N):
        xp = _pad_into(scratch.get("dense_xp", (geo.C_in, geo.L_pad), xb.dtype), xb[n], geo, mode).reshape(G, Cg, geo.L_pad)
        for k in range(K):
            np.matmul(wg[:, :, :, k], _tap(xp, geo, k), out=tmp)  # (G, Og, Cg) @ (G, Cg, L_out)
            add(y[n], tmp, out=y[n])
    return y


def grad_input_raw(gyb: np.ndarray, w: np.ndarray, geo: Geometry, mode: str, workers: int = 1,
                   out: np.ndarray | None = None, negate: bool = False, accumulate: bool = False,
                   cols: np.ndarray | None = None) -> np.ndarray:
    """``padding_adjoint(sum_{o,k} gy[n,o,t] * w[o,c,k] at t*stride + k*dilation)`` as
    (N, C_in, L): no conjugation, no scale (exact for integer-valued inputs as
    :func:`forward_raw`); written into ``out`` (that many elements, C-contiguous, of the
    result's dtype) if given, negated with ``negate``; with ``accumulate`` added to ``out``
    (subtracted with ``negate``) instead (the exact engine's buffers: no full-size temporary).
    ``cols``: ``dense_columns(gyb, geo, mode, "gy", ...)``, if the caller has it."""
    dtype = np.result_type(gyb, w, np.float64)
    if out is not None and (out.dtype != dtype or not out.flags.c_contiguous or out.size != geo.N * geo.C_in * geo.L):
        raise ValueError("out: must be a C-contiguous array of the result's dtype and size")
    if accumulate and out is None:
        raise ValueError("out: required with accumulate")
    G, Og, Cg, K = geo.groups, geo.Og, geo.Cg, geo.K
    if _depthwise(geo) and (negate or accumulate):  # the kernels below write: result into scratch, then combine
        res = _thread_scratch().get("gi_result", (geo.N, geo.C_in, geo.L), dtype)
        grad_input_raw(gyb, w, geo, mode, workers, out=res, cols=cols)
        gx = out.reshape(res.shape)
        _put(gx, res, negate, accumulate)
        return gx
    if _depthwise(geo):
        rows = geo.N * G
        gr = gyb.reshape(rows, geo.L_out)
        wr = w.reshape(G, K)
        gx = np.empty((rows, geo.L), dtype) if out is None else out.reshape(rows, geo.L)
        band = _grad_input_band_geometry(geo, mode) if dtype == np.float64 else None
        if band is not None and (cols is not None or (np.isfinite(wr).all() and np.isfinite(gr).all())):
            wrev = wr[:, ::-1]  # (cols: the exact engine's windows of its finite slices)
            if mode == "zeros":
                _dw_forward_band(gr, wrev, gx, band, "zeros", False, None, workers, cols)
            else:
                gxp = _thread_scratch().get("gi_band", (rows, geo.L_pad), dtype)
                _dw_forward_band(gr, wrev, gxp, band, "zeros", False, None, workers, cols)
                _unpad_adjoint(gxp, geo, mode, out=gx)
            return gx.reshape(geo.N, geo.C_in, geo.L)
        if _FILTER and geo.stride == 1 and dtype == np.float64:
            _dw_grad_input_filter(gr, wr, gx, geo, mode, workers)
            return gx.reshape(geo.N, geo.C_in, geo.L)

        def body(sl, scratch):
            gc = gr[sl]
            wc = _row_taps(wr, sl)
            gxp = scratch.get("gxp", (gc.shape[0], geo.L_pad), dtype)
            gxp[...] = 0
            tmp = scratch.get("tmp", gc.shape, dtype)
            for k in range(K):
                np.multiply(gc, wc[:, k:k + 1], out=tmp)
                _tap(gxp, geo, k)[...] += tmp  # the view scatters into the padded positions
            _unpad_adjoint(gxp, geo, mode, out=gx[sl])

        _each_chunk(body, _row_chunks(rows, geo.L_pad), workers)
        return gx.reshape(geo.N, geo.C_in, geo.L)
    wt = np.swapaxes(w.reshape(G, Og, Cg, K), 1, 2)  # (G, Cg, Og, K)
    gyg = gyb.reshape(geo.N, G, Og, geo.L_out)
    gx = np.empty((geo.N, geo.C_in, geo.L), dtype) if out is None else out.reshape(geo.N, geo.C_in, geo.L)
    scratch = _thread_scratch()  # per-call arrays of this size cost page faults (see _Scratch)
    gxp = scratch.get("dense_gxp", (G, Cg, geo.L_pad), dtype)
    edges = list(range(geo.pl)) + list(range(geo.pl + geo.L, geo.L_pad)) if mode != "zeros" else []
    src = source_index(geo.L, geo.pl, geo.pr, mode)
    span = (K - 1) * geo.dilation
    # stride 1 and finite weights: gxp[c, p] = sum_{o,k'} w[o, c, K-1-k'] gye[o, p + k'd], a
    # correlation of gy zero-extended by span on both sides (gye) with the reversed taps, as one
    # product over a column matrix; the extra products are 0 * (finite w) = 0 and change no sum
    # (zeros padding: only the interior positions, written straight into grad_x: no adjoint)
    lo, hi = _gy_range(geo, mode)
    chunks = _col_chunks(G * Og * K, hi - lo) if geo.stride == 1 and np.isfinite(w).all() else None
    direct = chunks is not None and mode == "zeros"
    if chunks is not None:
        wr = np.ascontiguousarray(np.swapaxes(w.reshape(G, Og, Cg, K)[..., ::-1], 1, 2)).reshape(G, Cg, Og * K)
        if direct and negate and not accumulate:
            wr = -wr  # exact, and RN is symmetric: the negated product
        assert cols is None or len(chunks) == 1, "cols: one column matrix per batch element"
    else:
        tmp = scratch.get("dense_tmp", (G, Cg, geo.L_out), dtype)
    for n in range(geo.N):
        if chunks is not None:
            for t0, t1 in chunks:
                c = cols[n] if cols is not None else _gy_columns(gyb[n], geo, lo + t0, lo + t1, scratch)
                if not direct:
                    np.matmul(wr, c, out=gxp[..., lo + t0:lo + t1])  # (G, Cg, Og*K) @ (G, Og*K, t1-t0)
                    continue
                dst = gx[n].reshape(G, Cg, geo.L)[..., t0:t1]
                if accumulate:
                    part = scratch.get("dense_tmp", (G, Cg, t1 - t0), dtype)
                    np.matmul(wr, c, out=part)
                    (np.subtract if negate else np.add)(dst, part, out=dst)
                else:
                    np.matmul(wr, c, out=dst)
            if direct:
                continue
        else:
            gxp[...] = 0
            for k in range(K):
                np.matmul(wt[:, :, :, k], gyg[n], out=tmp)  # (G, Cg, Og) @ (G, Og, L_out)
                view = _tap(gxp, geo, k)  # the strided positions of tap k
                np.add(view, tmp, out=view)
        flat = gxp.reshape(geo.C_in, geo.L_pad)
        inner = flat[:, geo.pl:geo.pl + geo.L]
        for i in edges:  # the padding adjoint (as _unpad_adjoint: each padded position into its source)
            inner[:, src[i]] += flat[:, i]
        _put(gx[n], inner, negate, accumulate)
    return gx


def grad_weight_raw(gyb: np.ndarray, xb: np.ndarray, geo: Geometry, mode: str, workers: int = 1,
                    out: np.ndarray | None = None, negate: bool = False, accumulate: bool = False,
                    cols: np.ndarray | None = None) -> np.ndarray:
    """``sum_{n,t} gy[n,o,t] * xp[n, g(o)Cg + c, t*stride + k*dilation]`` as (G, Og, Cg, K):
    no conjugation, no scale (exact for integer-valued inputs as :func:`forward_raw`). ``out``
    (float64 of that shape, C-contiguous): written there (negated with ``negate``), or with
    ``accumulate`` added to it (subtracted with ``negate``). ``cols``: ``dense_columns(xb, geo,
    mode, "x", ...)`` or, depthwise, x's windows (:func:`grad_weight_columns` or
    :func:`forward_columns`; finite inputs: the band products), if the caller has it."""
    dtype = np.result_type(gyb, xb, np.float64)
    G, Og, Cg, K = geo.groups, geo.Og, geo.Cg, geo.K
    if out is not None and (out.dtype != dtype or not out.flags.c_contiguous or out.size != G * Og * Cg * K):
        raise ValueError("out: must be a C-contiguous array of the result's dtype and size")
    if accumulate and out is None:
        raise ValueError("out: required with accumulate")
    if out is not None and _depthwise(geo):  # (small) result, then combined
        res = grad_weight_raw(gyb, xb, geo, mode, workers, cols=cols)
        gw = out.reshape(res.shape)
        _put(gw, res, negate, accumulate)
        return gw
    if _depthwise(geo):
        rows = geo.N * G
        gr = gyb.reshape(rows, geo.L_out)
        xr = xb.reshape(rows, geo.L)
        if cols is not None:  # the caller's windows of x (finite): the band products
            return _dw_grad_weight_band(gyb.reshape(geo.N, G, geo.L_out), cols, geo).reshape(G, 1, 1, K)
        acc = np.empty((rows, K), dtype)
        B = _lag_block(geo)
        if B:
            _dw_grad_weight_blocked(gr, xr, acc, geo, mode, B, workers)
            return acc.reshape(geo.N, G, K).sum(axis=0).reshape(G, 1, 1, K)

        def body(sl, scratch):
            xp = _pad_into(scratch.get("xp", (sl.stop - sl.start, geo.L_pad), dtype), xr[sl], geo, mode)
            for k in range(K):
                acc[sl, k] = np.einsum("rt,rt->r", gr[sl], _tap(xp, geo, k))

        _each_chunk(body, _row_chunks(rows, geo.L_pad), workers)
        return acc.reshape(geo.N, G, K).sum(axis=0).reshape(G, 1, 1, K)
    gyg = gyb.reshape(geo.N, G, Og, geo.L_out)
    if out is None:
        gw = np.zeros((G, Og, Cg, K), dtype)
    else:
        gw = out.reshape(G, Og, Cg, K)
        if not accumulate:
            gw[...] = 0
    add = np.subtract if negate else np.add  # RN is symmetric: 0 - a - b = -(0 + a + b)
    scratch = _thread_scratch()  # per-call arrays of this size cost page faults (see _Scratch)
    chunks = _col_chunks(G * Cg * K, geo.L_out)
    if chunks is not None:  # per batch element (and chunk) one product against the column matrix
        gw2 = gw.reshape(G, Og, Cg * K)
        tmp = scratch.get("dense_gw", (G, Og, Cg * K), dtype)
        assert cols is None or len(chunks) == 1, "cols: one column matrix per batch element"
        for n in range(geo.N):
            for t0, t1 in chunks:
                c = cols[n] if cols is not None else _x_columns(xb[n], geo, mode, t0, t1, scratch)
                # (G, Og, T) @ (G, T, Cg*K): the column matrix transposed (a view, BLAS's trans)
                np.matmul(gyg[n][..., t0:t1], np.swapaxes(c, 1, 2), out=tmp)
                add(gw2, tmp, out=gw2)
        return gw
    tmp = scratch.get("dense_gw", (G, Og, Cg), dtype)
    for n in range(geo.N):
        xp = _pad_into(scratch.get("dense_xp", (geo.C_in, geo.L_pad), xb.dtype), xb[n], geo, mode).reshape(G, Cg, geo.L_pad)
        for k in range(K):
            np.matmul(gyg[n], np.swapaxes(_tap(xp, geo, k), 1, 2), out=tmp)  # (G,Og,T) @ (G,T,Cg)
            add(gw[:, :, :, k], tmp, out=gw[:, :, :, k])
    return gw


def conv1d_float64(x, w, b, spec: Conv1dSpec, scales=None) -> np.ndarray:
    """Forward in float64 (complex128 for complex inputs), BLAS order. ``scales`` overrides
    ``(s_out,)`` (floats); default: the unit scale rounded to float64."""
    geo, xb = _geometry(x, w, b, spec)
    s_out = float(exact_unit_scales(geo, spec).output) if scales is None else scales[0]
    y = forward_raw(xb, w, geo, spec.padding_mode, _WORKERS).reshape(geo.N, geo.C_out, geo.L_out)
    if b is not None:
        y += b[None, :, None]
    y *= s_out
    return y if geo.batched else y[0]


def conv1d_backward_float64(gy, x, w, b, spec: Conv1dSpec, scales=None):
    """``(grad_x, grad_w, grad_b or None)`` in float64/complex128, BLAS order; ``scales``
    overrides ``(s_gx, s_gw)``."""
    geo, xb = _geometry(x, w, b, spec)
    gyb = gy if geo.batched else gy[None]
    if scales is None:
        sc = exact_unit_scales(geo, spec)
        s_gx = float(sc.grad_input)
        s_gw = 0.0 if sc.grad_weight is None else float(sc.grad_weight)
    else:
        s_gx, s_gw = scales
    conj = (lambda a: np.conj(a)) if np.iscomplexobj(w) else (lambda a: a)  # no copies for real inputs
    gx = grad_input_raw(gyb, conj(w), geo, spec.padding_mode, _WORKERS)
    gx *= s_gx
    gw = grad_weight_raw(gyb, conj(xb), geo, spec.padding_mode, _WORKERS).reshape(w.shape)
    gw *= s_gw
    gb = None if b is None else gyb.sum(axis=(0, 2)) * s_gw
    return (gx if geo.batched else gx[0]), gw, gb
