"""CPU model of the index arithmetic of the register-window depthwise kernels (no GPU needed).

``dw_reg<S, K>`` (forward, K <= 4), ``dw_reg_bwd<S, K>`` (grad_x and grad_w's partial sums),
``dw_long<S, KMAX, BWD>`` (forward / grad_x, more taps), ``dw_bwd_edges<S>``, ``dw_reg_gw<S, ST>``
(grad_w's partial sums, depth multipliers, stride 2 and dilation too), ``dw_reg_gx<S, ST>`` (grad_x
with depth multipliers or stride 2: the phases of the transpose), ``dw_dil<S, BWD>`` (dilated
filters), ``grp_reg<S, KMAX>`` (forwards with up to 8 channels a group) and ``dw_wide<S, KMAX,
BWD>`` (forward / grad_x for K > 16: a staged span in a padded shared layout) have no bounds
checks: a wrong tile count, chunk offset or fast-path condition reads or writes past an array,
misses an output or computes it from the wrong window. This file models, from the code in
``backends/cupy_kernels.cu`` (not from its comments), which elements every thread of every
block reads and writes, and checks over thousands of random geometries that

1. every output element (y, grad_x) is written exactly once and nothing outside the output is
   written; 16-byte vector stores are 16-byte aligned;
2. every 16-byte vector load lies inside its array and is aligned; the fast path is taken
   only where every element the outputs need lies inside the current row, and the element the
   fast path uses for output r and tap k is input position o - lead + k of the same row
   (lead = pl forward, K - 1 - pl for grad_x); every read through the padding map (the
   scalar paths, dw_reg's row-end windows fetched by the warp, dw_reg_bwd's branch-free
   ``mapped_elem_nb``) stays inside the row and follows SPEC §2, and dw_bwd_edges' lean
   ``extra_copies`` lists exactly SPEC §2's padded copies;
3. dw_reg_bwd's grad_w share covers every grad_y position t in [0, L_out) of each row exactly
   once and its partial buffer (n * tiles + tile) * C + c is in range, every slot written once
   and every slot conv_grad_w_final reads; dw_bwd_edges rewrites exactly the positions within
   E = max(pl, pr) + 1 of a row end, each once, and they include every position that has
   extra padded copies;
4. the host (``CupyBackend.forward_device`` / ``backward_device``, run as written against a
   stand-in ``cupy`` module that only allocates and records launches) launches these kernels
   exactly when ``_dwr_threads`` / ``_dwl_threads`` say so, with the grid the kernels assume
   (rows * tiles, tiles recomputed from blockDim), and dw_bwd_edges after every register-window
   grad_x with a non-zero padding mode.

The register-level data movement (load_vectors, the barrel shift ``shift_window``,
``group_from`` and dw_long's tap-block loop) is modelled symbolically on element labels for
every offset e0 < VE, once per (S, K); the per-thread checks, vectorised with NumPy, combine
those tables with each thread's addresses.
"""
from __future__ import annotations

import re
import sys
import types
from contextlib import contextmanager
from functools import lru_cache
from types import SimpleNamespace

import numpy as np
import pytest

from backends import cupy_backend as cb
from backends.cupy_backend import CupyBackend
from usconv_ref.dtypes import case_dtype
from usconv_ref.spec import Conv1dSpec, resolve_geometry

ITEM = {"__half": 2, "bf16_t": 2, "float": 4}
STORAGE_OF = {"float16": "__half", "bfloat16": "bf16_t", "float32": "float"}
NP_PART = {"__half": np.float16, "bf16_t": np.uint16, "float": np.float32}
DWR_CHUNKS = 2  # as #define DWR_CHUNKS in cupy_kernels.cu
OOB = -(10**9)  # label: a word read past the thread's register array
ZERO = -(10**6)  # label: a vector load_vectors replaced by zeros

# Deliberate model mutations (tests/self-check only): a name here changes one line of the
# model so that test_model_detects_mutations can show the checks fail.
MUTATION: set = set()


# --------------------------------------------------------------------------------------
# Stand-ins for CuPy: allocation (addresses only) and launches (recorded, not run).
class FakeArray:
    def __init__(self, shape, dtype, ptr):
        self.shape = tuple(int(s) for s in (shape if isinstance(shape, (tuple, list)) else (shape,)))
        self.dtype = np.dtype(dtype)
        self.size = int(np.prod(self.shape, dtype=np.int64))
        self.itemsize = self.dtype.itemsize
        self.data = types.SimpleNamespace(ptr=int(ptr))


class FakeCupy(types.ModuleType):
    def __init__(self):
        super().__init__("cupy")
        self._next = 1 << 20

    def empty(self, shape, dtype):
        a = FakeArray(shape, dtype, self._next)
        self._next += -(-max(a.size * a.itemsize, 1) // 256) * 256 + 256  # cupy: 256-byte aligned
        return a


@contextmanager
def _as_cupy(fake):
    """``fake`` as the ``cupy`` module for the block (the host imports cupy inside its methods)."""
    old = sys.modules.get("cupy")
    sys.modules["cupy"] = fake
    try:
        yield fake
    finally:
        if old is None:
            sys.modules.pop("cupy", None)
        else:
            sys.modules["cupy"] = old


class Launch:
    def __init__(self, name, grid, block, args, smem):
        self.name, self.grid, self.block, self.args, self.smem = name, tuple(grid), tuple(block), tuple(args), smem


class FakeModule:
    def __init__(self):
        self.log = []

    def get_function(self, name):
        log = self.log

        class Fn:
            max_dynamic_shared_size_bytes = 0

            def __call__(self, grid, block, args, shared_mem=0):
                log.append(Launch(name, grid, block, args, shared_mem))

        return Fn()


def _backend(mod):
    be = CupyBackend()
    be.module = lambda: mod  # the instance attribute shadows the compiling method
    be._tc = True  # an sm_80+ CUDA device (the stand-in cupy has no device to ask)
    be._names = {(k, t, c): CupyBackend._expr(k, t, c) for k in cb.KERNELS for t, c, _ in cb.STORAGE.values()}
    return be


# --------------------------------------------------------------------------------------
# Geometry as the kernels see it (GEO_ARGS: 12 int64 in this order).
class G:
    def __init__(self, gp):
        (self.N, self.Cin, self.Cout, self.L, self.K, self.Lout, self.G, self.stride, self.dil, self.pl, self.pr,
         self.mode) = (int(v) for v in gp)


def _check_depthwise(g, K_template=None, kmax=None, multiplier=False, strides=(1,), dilated=False):
    if multiplier:  # one input channel per group, C_out / C_in output channels each
        assert g.Cin == g.G and g.Cout % g.Cin == 0, "kernel assumes one input channel per group"
    else:
        assert g.Cin == g.Cout == g.G, "kernel assumes depthwise (one channel per group)"
    assert g.stride in strides and (g.dil == 1 or g.K == 1 or dilated), f"kernel assumes stride in {strides}, dilation 1"
    assert g.Lout == (g.L + g.pl + g.pr - (g.K - 1) * g.dil - 1) // g.stride + 1
    if K_template is not None:
        assert g.K == K_template
    if kmax is not None:
        assert g.K <= kmax


def _pad_source(i, L, mode):
    """The kernels' index of padded position i outside the row for a non-zero mode, as written
    in padded_elem and mapped_elem_nb (one wrap for circular: pads are <= L)."""
    if mode == 1:
        return np.where(i < 0, -i, 2 * (L - 1) - i)
    if mode == 2:
        return np.where(i < 0, 0, L - 1)
    return np.where(i < 0, i + L, i - L)


def _padded_elem_idx(i, n, MAP, g):
    """Row index padded_elem<S, MAP>(row, i, n, g) reads (-1: returns a zero without reading)."""
    i = np.asarray(i, np.int64)
    inside = (i >= 0) & (i < n)
    if not MAP or g.mode == 0:
        return np.where(inside, i, -1)
    zero = (i + g.pl < 0) | (i + g.pl >= g.L + g.pl + g.pr)
    return np.where(inside, i, np.where(zero, -1, _pad_source(i, g.L, g.mode)))


def _spec_src(j, L, mode):
    """SPEC §2: the source of x position j (padded position j + pl); -1: a zero."""
    j = np.asarray(j, np.int64)
    inside = (j >= 0) & (j < L)
    if mode == 0:
        m = np.full_like(j, -1)
    elif mode == 1:
        m = np.where(j < 0, -j, 2 * (L - 1) - j)
    elif mode == 2:
        m = np.clip(j, 0, L - 1)
    else:
        m = np.mod(j, L)
    return np.where(inside, j, m)


def _check_padded_reads(i, n, MAP, g, what):
    """Reads through the padding map stay in the row and follow SPEC §2 (forward: x; grad_x:
    grad_y, zero outside its row)."""
    src = _padded_elem_idx(i, n, MAP, g)
    assert ((src >= -1) & (src < n)).all(), f"{what}: padding-map read outside the row"
    if MAP:
        real = (i >= -g.pl) & (i < g.L + g.pr)  # positions of the padded signal
        assert (src[real] == _spec_src(i[real], g.L, g.mode)).all(), f"{what}: padding map differs from SPEC"
    else:
        assert (src == np.where((i >= 0) & (i < n), i, -1)).all()


def _mapped_elem_nb_idx(i, g):
    """(row index mapped_elem_nb<S>(row, i, g) loads, whether it keeps the value): one load at the
    index clamped into [0, L), kept where i is inside the row or mapped, as written."""
    i = np.asarray(i, np.int64)
    L = g.L
    inside = (i >= 0) & (i < L)
    mapped = (g.mode != 0) & (i + g.pl >= 0) & (i + g.pl < g.L + g.pl + g.pr)
    m = _pad_source(i, L, g.mode)
    keep = inside if "nb_mapped" in MUTATION else inside | mapped
    return np.clip(np.where(inside, i, m), 0, L - 1), keep


def _check_mapped_elem_nb(i, g, what):
    """mapped_elem_nb loads inside the row, and the values it keeps are padded_elem<S, true>'s."""
    idx, keep = _mapped_elem_nb_idx(i, g)
    assert ((idx >= 0) & (idx < g.L)).all(), f"{what}: branch-free load outside the row"
    src = _padded_elem_idx(i, g.L, True, g)
    assert (np.where(keep, idx, -1) == src).all(), f"{what}: differs from padded_elem"


def _check_vec_loads(arr, addrs, isz, what):
    """16-byte loads at element offsets addrs: inside arr, 16-byte aligned."""
    ve = 16 // isz
    assert arr.itemsize == isz, f"{what}: storage type differs from the array"
    assert (addrs >= 0).all() and (addrs + ve <= arr.size).all(), f"{what}: vector load outside the array"
    assert ((arr.data.ptr + addrs * isz) % 16 == 0).all(), f"{what}: misaligned vector load"


def _check_vec_stores(arr, starts, isz, what):
    """store8 at element offsets starts: 16 bytes (16-bit) or two 16-byte stores (float32)."""
    assert arr.itemsize == isz
    for h in range(0, 8, 16 // isz):
        assert ((arr.data.ptr + (starts + h) * isz) % 16 == 0).all(), f"{what}: misaligned vector store"


def _check_written_once(arr, idx, what):
    idx = np.asarray(idx, np.int64)
    assert ((idx >= 0) & (idx < arr.size)).all(), f"{what}: write outside the output array"
    counts = np.bincount(idx, minlength=arr.size)
    assert counts.min() == 1 and counts.max() == 1, (
        f"{what}: {(counts == 0).sum()} elements never written, {(counts > 1).sum()} written more than once "
        f"(first missing {np.flatnonzero(counts == 0)[:5]}, first repeated {np.flatnonzero(counts > 1)[:5]})")


def _threads(grid, block, tiles, rows_expected):
    (nb,) = grid[:1]
    assert tuple(grid[1:]) in ((), (1,), (1, 1)) and tuple(block[1:]) in ((), (1,), (1, 1))
    nt = block[0]
    assert nt % 32 == 0 and 32 <= nt <= 128, "__launch_bounds__(128), whole warps"
    assert nb == rows_expected * tiles, "grid is not rows * the kernel's tiles"
    blk = np.arange(nb, dtype=np.int64)
    row = blk // tiles
    return nt, blk, row, blk - row * tiles


# --------------------------------------------------------------------------------------
# Register-level data movement, symbolically: element labels relative to the aligned base A.
def _words_of_vectors(S, nvec, loaded):
    """Words of nvec 16-byte vectors as tuples of element labels (ZERO where not loaded)."""
    epw = 4 // ITEM[S]
    ve = 16 // ITEM[S]
    words = []
    for v in range(nvec):
        for q in range(4):
            words.append(tuple((v * ve + q * epw + h) if loaded[v] else ZERO for h in range(epw)))
    return words


def _shift_window(S, NW, wd, e0):
    """shift_window<S, K> with D::NW = NW on words wd (as written: the word selects by 2 and by
    1, then for 16-bit storage the funnel shift). Returns (win, out-of-range word reads)."""
    epw = 4 // ITEM[S]
    nww = (NW + epw - 1) // epw + epw - 1
    wsel = e0 // epw
    oob = []

    def word(i):
        if i >= len(wd) or i < 0:
            oob.append(i)
            return (OOB,) * epw
        return wd[i]

    zero = ("zero",) * epw  # as written since the fix: reads past WORDS give 0 (never a used element)
    b = [(word(q + 2) if q + 2 < len(wd) else zero) if (wsel & 2) else (word(q) if q < len(wd) else zero)
         for q in range(nww + 1)]  # the ?: evaluates one side
    c = [b[q + 1] if (wsel & 1) else b[q] for q in range(nww)]
    win = [None] * NW
    if epw == 1:
        for m in range(NW):
            win[m] = c[m][0]
    else:
        sh = e0 & 1
        for q in range(nww - 1):
            d = (c[q][0], c[q][1]) if sh == 0 else (c[q][1], c[q + 1][0])  # __funnelshift_r(c[q], c[q+1], 16*sh)
            if 2 * q < NW:
                win[2 * q] = d[0]
            if 2 * q + 1 < NW:
                win[2 * q + 1] = d[1]
    return win, oob


def _window_at(S, NW, wd, e0):
    """shift_window's default path: the switch case window_at<S, NW, e0> (element e0 + m read from
    word (e0 + m) / EPW, its half (e0 + m) % EPW). Returns (win, out-of-range word reads)."""
    epw = 4 // ITEM[S]
    win, oob = [None] * NW, []
    for m in range(NW):
        q = (e0 + m) // epw
        if q >= len(wd):
            oob.append(q)
            win[m] = OOB
        else:
            win[m] = wd[q][(e0 + m) % epw]
    return win, oob


def _window(S, NW, wd, e0, select):
    """The window shift_window forms: the barrel shift (float32, or DWR_SHIFT_SELECT) or the
    switch (16-bit storage)."""
    return (_shift_window if select or ITEM[S] == 4 else _window_at)(S, NW, wd, e0)


@lru_cache(maxsize=None)
def _reg_table(S, K, ST=1, select=False):
    """dw_reg / dw_reg_bwd: for each e0 < VE, the element labels of win[0..NW) after
    load_vectors + shift_window, the vectors loaded, and shift_window's out-of-range word reads
    (Dwr<S, K, ST>: NW = 8 * ST + K - 1)."""
    isz = ITEM[S]
    VE, NW = 16 // isz, 8 * ST + K - 1
    NV = (VE - 1 + NW + VE - 1) // VE
    tab, loads, oob = [], [], []
    for e0 in range(VE):
        loaded = [v < NV - 1 or e0 + NW > (NV - 1) * VE for v in range(NV)]
        win, o = _window(S, NW, _words_of_vectors(S, NV, loaded), e0, select)
        tab.append(win)
        loads.append(loaded)
        oob.append(o)
    return np.array(tab, np.int64), np.array(loads, bool), oob, VE, NW, NV


@lru_cache(maxsize=None)
def _group_table(S, select=False):
    """group_from(seg a, seg b, e0): the 8 window elements as labels relative to a's start
    (segments of 8 elements, SW words each), and shift_window<S, 1>'s out-of-range reads (the
    switch, or with ``select`` the barrel shift)."""
    isz = ITEM[S]
    VE, SW, epw = 16 // isz, 8 * isz // 4, 4 // isz
    wd = [tuple(q * epw + h for h in range(epw)) for q in range(2 * SW)]  # a then b: elements 0..15
    tab, oob = [], []
    for e0 in range(VE):
        win, o = _window(S, 8, wd, e0, select)  # Dwr<S, 1>::NW = 8
        tab.append(win)
        oob.append(o)
    return np.array(tab, np.int64), oob


@lru_cache(maxsize=None)
def _long_taps(K, KMAX, DIL=1):
    """dw_long's tap-block loop, as written: slots win[8q .. 8q+7] (q <= DIL) hold window groups;
    slot 0 starts as group 0, block bk fills slots 1..DIL with groups bk*DIL + q, output r and tap
    k read win[r + k*DIL], then slot 0 takes slot DIL. Returns, per (r, k), the (group, element)."""
    NB, nb = KMAX // 8, (K + 7) // 8
    grp = np.full((8, K), -1, np.int64)
    elt = np.full((8, K), -1, np.int64)
    used = np.zeros((8, K), np.int64)
    slots = [0] + [None] * DIL
    for bk in range(NB):
        if bk < nb:
            for q in range(1, DIL + 1):
                slots[q] = bk * DIL + q
            kn = K - 8 * bk
            for k in range(8):
                if k < kn:
                    for r in range(8):
                        e = r + k * DIL
                        grp[r, 8 * bk + k], elt[r, 8 * bk + k] = slots[e // 8], e % 8
                        used[r, 8 * bk + k] += 1
            slots[0] = slots[DIL]
    assert (used == 1).all(), "a (output, tap) product missing or repeated in the tap loop"
    return grp, elt, nb


def _check_reg_table(S, K, ST=1):
    tab, loads, _, VE, NW, NV = _reg_table(S, K, ST)
    for e0 in range(VE):
        assert list(tab[e0]) == [e0 + m for m in range(NW)], f"{S} K={K} e0={e0}: window {list(tab[e0])}"
    return tab, loads


def _check_long_tables(S, K, KMAX, DIL=1):
    gtab, _ = _group_table(S)
    VE = 16 // ITEM[S]
    for e0 in range(VE):
        assert list(gtab[e0]) == [e0 + m for m in range(8)], f"group_from {S} e0={e0}: {list(gtab[e0])}"
    grp, elt, nb = _long_taps(K, KMAX, DIL)
    r, k = np.arange(8)[:, None], np.arange(K)[None, :]
    assert (8 * grp + elt == r + k * DIL).all(), "dw_long's tap loop pairs output r and tap k with another element"
    assert grp.max() <= nb * DIL, "a group past the segments loaded (q < nb * DIL + 2)"
    return gtab, grp, elt, nb


# --------------------------------------------------------------------------------------
# The kernels, thread by thread (vectorised over all threads of the grid).
def _chunks(blk_row, blk_tile, nt, T, delta_fn, per_thread_chunks):
    """o0 of every chunk, and its row: (blocks, chunks, threads) flattened."""
    tid = np.arange(nt, dtype=np.int64)
    if per_thread_chunks > 1:  # dwr_offset(j) = 8 * ((j * warps + warp) * 32 + lane)
        off = np.stack([8 * ((j * (nt >> 5) + (tid >> 5)) * 32 + (tid & 31)) for j in range(per_thread_chunks)])
    else:  # dw_long: 8 * threadIdx.x
        off = (8 * tid)[None, :]
    t0 = blk_tile * T - delta_fn(blk_row)
    o0 = (t0[:, None, None] + off[None]).ravel()
    row = np.repeat(blk_row, off.size)
    return o0, row


def model_dw_reg(S, K, arrs, g, grid, block):
    x, w, b, y = arrs
    _check_depthwise(g, K_template=K, multiplier=True, strides=(1, 2))
    ST = g.stride
    isz = ITEM[S]
    tab, loads = _check_reg_table(S, K, ST)
    _, _, _, VE, NW, NV = _reg_table(S, K, ST)
    T = 8 * DWR_CHUNKS * block[0]
    tiles = (g.Lout + 7 + T - 1) // T
    nt, blk, brow, btile = _threads(grid, block, tiles, g.N * g.Cout)
    o0, row = _chunks(brow, btile, nt, T, lambda r: (r * g.Lout) & 7, DWR_CHUNKS)
    xrow = (row // g.Cout) * g.Cin + (row % g.Cout) // (g.Cout // g.Cin)  # the input row of output row (n, c)
    i0 = o0 * ST - g.pl
    F = xrow * g.L + i0
    A = F & ~np.int64(VE - 1)
    e0 = F - A
    xend = g.N * g.Cin * g.L
    assert x.size == xend and y.size == g.N * g.Cout * g.Lout and w.size == g.Cout * K
    if b is not None:
        assert b.size == g.Cout
    fast = (o0 >= 0) & (o0 + 8 <= g.Lout) & (i0 >= 0) & (i0 + NW <= g.L) & (A + NV * VE <= xend)
    if "reg_fast_no_end_check" in MUTATION:
        fast = (o0 >= 0) & (o0 + 8 <= g.Lout) & (i0 >= 0) & (A + NV * VE <= xend)
    # loads of the fast chunks
    f = np.flatnonzero(fast)
    Af, ef = A[f], e0[f]
    for v in range(NV):
        sel = loads[ef, v]
        _check_vec_loads(x, Af[sel] + v * VE, isz, "dw_reg x")
    # window element used for output r, tap k: win[r + k] = element A + tab[e0][r + k] (= F + r + k
    # by the table check) must be x position o - pl + k of the same row, inside the row
    assert ((ef >= 0) & (ef < VE)).all()
    lo_pos, hi_pos = i0[f], i0[f] + (8 - 1) * ST + (K - 1)  # window positions the outputs use
    assert (lo_pos >= 0).all() and (hi_pos < g.L).all(), "dw_reg fast path needs elements outside the row"
    assert (Af + tab[ef, 0] == xrow[f] * g.L + o0[f] * ST - g.pl).all()
    _check_vec_stores(y, row[f] * g.Lout + o0[f], isz, "dw_reg y")
    writes = [(row[f] * g.Lout + o0[f])[:, None] + np.arange(8)]
    # row-end chunks (warp_window): lane m of the warp reads window element i0 + m (m < NW) through
    # padded_elem for the owner; output r, tap k takes win[r * ST + k] = x position o * ST - pl + k
    s = np.flatnonzero(~fast & (o0 + 8 > 0) & (o0 < g.Lout))
    _check_padded_reads(i0[s][:, None] + np.arange(NW), g.L, True, g, "dw_reg row-end window")
    assert (np.arange(8)[:, None] * ST + np.arange(K) < NW).all(), "dw_reg row-end window too short"
    o = o0[s][:, None] + np.arange(8)
    valid = (o >= 0) & (o < g.Lout)
    ro = np.broadcast_to(row[s][:, None], o.shape)[valid]
    ov = o[valid]
    writes.append(ro * g.Lout + ov)
    _check_written_once(y, np.concatenate([a.ravel() for a in writes]), "dw_reg y")
    return {"fast": int(fast.sum()), "chunks": int(fast.size)}


def model_dw_reg_bwd(S, K, arrs, g, grid, block, final=None):
    gy, w, x, gx, partial = arrs
    _check_depthwise(g, K_template=K)
    isz = ITEM[S]
    tab, loads = _check_reg_table(S, K)
    _, _, _, VE, NW, NV = _reg_table(S, K)
    L, Lout, pl = g.L, g.Lout, g.pl
    PG = K - 1 - pl
    assert 0 <= PG, "window index PG + r of grad_y would be negative (needs pl < K)"
    T = 8 * DWR_CHUNKS * block[0]
    tiles = (L + T - 1) // T
    nt, blk, brow, btile = _threads(grid, block, tiles, g.N * g.Cout)
    assert nt // 32 <= 4, "shared red[4 * K]: at most 4 warps"
    o0, row = _chunks(brow, btile, nt, T, lambda r: 0 * r, DWR_CHUNKS)
    g0, i0 = o0 - PG, o0 - pl
    Fg, Fx = row * Lout + g0, row * L + i0
    Ag, Ax = Fg & ~np.int64(VE - 1), Fx & ~np.int64(VE - 1)
    eg, ex = Fg - Ag, Fx - Ax
    xend, gend = g.N * g.Cout * L, g.N * g.Cout * Lout
    assert x.size == gx.size == xend and gy.size == gend and w.size == g.Cout * K
    fast = ((o0 < L) & (g0 >= 0) & (g0 + NW <= Lout) & (i0 >= 0) & (i0 + NW <= L) &
            (Ag + NV * VE <= gend) & (Ax + NV * VE <= xend))
    act = o0 < L
    f = np.flatnonzero(fast)
    for v in range(NV):
        _check_vec_loads(gy, Ag[f][loads[eg[f], v]] + v * VE, isz, "dw_reg_bwd grad_y")
        _check_vec_loads(x, Ax[f][loads[ex[f], v]] + v * VE, isz, "dw_reg_bwd x")
    # fast windows: gwin[m] = grad_y position g0 + m, xwin[m] = x position i0 + m, all m < NW used
    assert (Ag[f] + tab[eg[f], 0] == row[f] * Lout + o0[f] - PG).all()
    assert (Ax[f] + tab[ex[f], 0] == row[f] * L + o0[f] - pl).all()
    assert (g0[f] >= 0).all() and (g0[f] + NW <= Lout).all() and (i0[f] >= 0).all() and (i0[f] + NW <= L).all()
    # slow windows: every m < NW through padded_elem
    s = np.flatnonzero(act & ~fast)
    m = np.arange(NW)
    _check_padded_reads(g0[s][:, None] + m, Lout, False, g, "dw_reg_bwd grad_y window")
    _check_padded_reads(i0[s][:, None] + m, L, True, g, "dw_reg_bwd x window")
    # grad_x: out[r] = sum_k gwin[r + k] * w[K-1-k]: grad_y position o0 - PG + r + k with tap K-1-k
    # must be t = p + pl - tap (the padded position p + pl = t + tap), p = o0 + r
    r, k = np.arange(8)[:, None], np.arange(K)[None, :]
    assert ((-PG + r + k) == (r + pl - (K - 1 - k))).all()
    a = np.flatnonzero(act)
    assert (o0[a] + 8 <= L).all() and (o0[a] >= 0).all()
    starts = row[a] * L + o0[a]
    _check_vec_stores(gx, starts, isz, "dw_reg_bwd grad_x")
    _check_written_once(gx, (starts[:, None] + np.arange(8)).ravel(), "dw_reg_bwd grad_x")
    # grad_w: t = o0 + r (gwin[PG + r]) for o0 + r < Lout, x position t - pl + k (xwin[r + k]);
    # the chunk with o0 + 8 == L also takes t in [L, Lout)
    t = o0[a][:, None] + np.arange(8)
    tw = t[t < Lout]
    rw = np.broadcast_to(row[a][:, None], t.shape)[t < Lout]
    assert (PG + np.arange(8) < NW).all() and (np.arange(8)[:, None] + np.arange(K) < NW).all()
    last = a[o0[a] + 8 == L]
    if "bwd_no_tail" in MUTATION:
        last = last[:0]
    ext_t = np.arange(L, max(L, Lout), dtype=np.int64)
    tw = np.concatenate([tw, (np.zeros_like(last)[:, None] + ext_t).ravel()])
    rw = np.concatenate([rw, np.repeat(row[last], ext_t.size)])
    if last.size and ext_t.size:  # through mapped_elem_nb (branch-free)
        _check_mapped_elem_nb((ext_t - pl)[:, None] + np.arange(K), g, "dw_reg_bwd grad_w tail")
    _check_written_once(gy, rw * Lout + tw, "dw_reg_bwd grad_w share (grad_y positions)")
    # partial sums: block (row, tile) writes partial[((n * tiles + tile) * C + c) * K + k], k < K
    n, c = brow // g.Cout, brow % g.Cout
    slots = (((n * tiles + btile) * g.Cout + c) * K)[:, None] + np.arange(K)
    assert K <= nt
    _check_written_once(partial, slots.ravel(), "dw_reg_bwd partial")
    if final is not None:  # conv_grad_w_final reads partial[p * E + e], p < chunks, e < E
        E, chunks = int(final.args[2]), int(final.args[3])
        assert final.args[0] is partial and E == g.Cout * K and chunks * E == partial.size
    return {"fast": int(fast.sum()), "chunks": int(act.sum())}


def model_dw_long(S, KMAX, BWD, arrs, g, grid, block, DIL=1):
    inp, w, b, out = arrs
    _check_depthwise(g, kmax=KMAX, dilated=DIL > 1)
    assert g.dil == DIL or g.K == 1, "dw_long<..., DIL> launched for another dilation"
    isz = ITEM[S]
    K = g.K
    assert K > 0
    gtab, grp, elt, nb = _check_long_tables(S, K, KMAX, DIL)
    VE = 16 // isz
    Lin, Lo = (g.Lout, g.L) if BWD else (g.L, g.Lout)
    lead = (K - 1) * DIL - g.pl if BWD else g.pl
    if "long_dil" in MUTATION and BWD:
        lead = K - 1 - g.pl
    if "long_lead" in MUTATION:
        lead = g.pl
    T = 8 * block[0]
    tiles = (Lo + 7 + T - 1) // T
    nt, blk, brow, btile = _threads(grid, block, tiles, g.N * g.Cout)
    o0, row = _chunks(brow, btile, nt, T, lambda r: (r * Lo) & 7, 1)
    i0 = o0 - lead
    F = row * Lin + i0
    A = F & ~np.int64(VE - 1)
    e0 = F - A
    iend = g.N * g.Cout * Lin
    assert inp.size == iend and out.size == g.N * g.Cout * Lo and w.size == g.Cout * K
    if BWD:
        assert b is None
    elif b is not None:
        assert b.size == g.Cout
    whole = (o0 >= 0) & (o0 + 8 <= Lo)
    fast = whole & (i0 >= 0) & (i0 + (K - 1) * DIL + 8 <= Lin) & (A + 8 * (nb * DIL + 2) <= iend)
    act = ~((o0 + 8 <= 0) | (o0 >= Lo))
    f = np.flatnonzero(fast)
    for q in range(nb * DIL + 2):  # load_segment: one 16-byte vector (16-bit), two (float32)
        for v in range(isz // 2):
            _check_vec_loads(inp, A[f] + 8 * q + 4 * v, isz, "dw_long segment")
    # fast: output r, tap k multiplies element A + 8 * grp + gtab[e0][elt] = F + r + k (tables):
    # must be input position o0 + r - lead + k of the same row
    assert ((e0[f] >= 0) & (e0[f] < VE)).all()
    assert (A[f] + gtab[e0[f], 0] == row[f] * Lin + o0[f] - lead).all()
    assert (i0[f] >= 0).all() and (i0[f] + 7 + (K - 1) * DIL < Lin).all(), "dw_long fast path needs elements outside the row"
    # whole but not fast: groups 0..nb*DIL element by element through padded_elem: input i0 + 8g + m
    s = np.flatnonzero(whole & ~fast)
    _check_padded_reads(i0[s][:, None] + np.arange(8 * nb * DIL + 8), Lin, not BWD, g, "dw_long window")
    # semantics of (r, k) -> input position, both paths: r - lead + k*d = forward o - pl + k*d, or for
    # grad_x (tap k is weight K-1-k) p + pl - (K-1-k)*d: the grad_y position t with t + tap*d = p + pl
    r, k = np.arange(8)[:, None], np.arange(K)[None, :]
    want = (r + g.pl - (K - 1 - k) * DIL) if BWD else (r - g.pl + k * DIL)
    assert (8 * grp + elt - lead == want).all()
    wh = np.flatnonzero(whole)
    starts = row[wh] * Lo + o0[wh]
    _check_vec_stores(out, starts, isz, "dw_long out")
    writes = [(starts[:, None] + np.arange(8)).ravel()]
    sc = np.flatnonzero(act & ~whole)
    o = o0[sc][:, None] + np.arange(8)
    valid = (o >= 0) & (o < Lo)
    ro = np.broadcast_to(row[sc][:, None], o.shape)[valid]
    ov = o[valid]
    writes.append(ro * Lo + ov)
    _check_padded_reads((ov - lead)[:, None] + np.arange(K) * DIL, Lin, not BWD, g, "dw_long scalar")
    _check_written_once(out, np.concatenate(writes), f"dw_long {'grad_x' if BWD else 'y'}")
    return {"fast": int(fast.sum()), "chunks": int(act.sum())}


def _check_stage_span(inp, isz, brow, i0, span, Lin):
    """stage_span: the row's elements [a, e) of each block's span in whole 16-byte vectors from
    the first aligned one (pa), inside the row and aligned; each staged element once, by a vector
    or element by element."""
    VE = 16 // isz
    a, e = np.maximum(i0, 0), np.minimum(i0 + span, Lin)
    mis = ((inp.data.ptr + (brow * Lin + a) * isz) % 16) // isz
    pa = a + np.where(mis > 0, VE - mis, 0)
    nv = np.where(e > pa, (e - pa) // VE, 0)
    pe = pa + nv * VE
    for blk_ in range(len(i0)):
        v = np.arange(nv[blk_])
        _check_vec_loads(inp, brow[blk_] * Lin + pa[blk_] + VE * v, isz, "stage_span vector")
        assert (pa[blk_] + VE * v >= a[blk_]).all() and (pa[blk_] + VE * (v + 1) <= e[blk_]).all()
        p_ = i0[blk_] + np.arange(span)
        by_vec = (p_ >= pa[blk_]) & (p_ < pe[blk_])
        cover_v = np.bincount((pa[blk_] + VE * v[:, None] + np.arange(VE) - i0[blk_]).ravel(), minlength=span)[:span]
        assert (cover_v == by_vec).all(), "stage_span: an element staged twice or by no vector"


def model_dw_wide_gw(S, KMAX, arrs, g, grid, block, T, smem, final):
    """dw_wide_gw: one block per tile of T grad_y positions of a row (from the aligned start
    before the row), the x span staged as dw_wide's forward; thread tid takes chunks of 16
    positions 16 (tid + j nt); every position of every row in exactly one chunk, as a valid
    (unmasked) product; whole chunks by aligned vector loads; one partial slot per (n, tile, c),
    all of them summed by conv_grad_w_final."""
    gy, x, part = arrs
    _check_depthwise(g, kmax=KMAX)
    K, isz, PER = g.K, ITEM[S], cb.DWW_PER
    assert cb.DWW_KMIN < K <= KMAX and KMAX == 8 * -(-K // 8)
    assert gy.size == g.N * g.Cout * g.Lout and x.size == g.N * g.Cin * g.L
    nt = block[0]
    assert nt % 64 == 0 and 64 <= nt <= 128 and T % PER == 0 and T > 0, "warp pairs (the two tap halves), at most 128"
    cover = g.Lout + 7 if g.Lout % 8 else g.Lout
    tiles = (cover + T - 1) // T
    rows = g.N * g.Cout
    assert tuple(grid[1:]) in ((), (1,), (1, 1)) and grid[0] == rows * tiles
    blk = np.arange(grid[0], dtype=np.int64)
    brow, btile = blk // tiles, blk % tiles
    delta = 0 * brow if "wgw_delta" in MUTATION else (brow * g.Lout) & 7
    t0 = btile * T - delta
    KH = 8 * ((KMAX // 8 + 1) // 2)  # taps of a half
    alloc, span = T + 2 * KH, T + K - 1
    assert max(alloc + 4 * ((alloc - 1) // 32), nt // 32 * KH) * 4 <= smem, "dw_wide_gw: shared memory too small"
    i0 = t0 - g.pl
    _check_padded_reads(i0[:, None] + np.arange(span), g.L, True, g, "dw_wide_gw staging")
    _check_stage_span(x, isz, brow, i0, span, g.L)
    # chunks: thread tid, j = 0.. : qb = 16 (tid + j nt) < T; positions tb + r valid where 0 <= tb + r < Lout
    qb = np.arange(0, T, PER, dtype=np.int64)  # every chunk of the tile is some thread's
    tb = t0[:, None] + qb[None, :]
    run = (tb < g.Lout) & (tb + PER > 0)
    _check_pair_chunks(T, nt, "dw_wide_gw")
    # half h's window: staged qb + h KH + 8 bk + (up to 23), bk < KH / 8
    assert (qb[None, :] + KH + 8 * (KH // 8 - 1) + 23 < alloc).all(), "dw_wide_gw: window past the staged elements"
    assert 2 * KH >= K, "the halves miss taps"
    pos = tb[:, :, None] + np.arange(PER)
    valid = run[:, :, None] & (pos >= 0) & (pos < g.Lout)
    whole = run & (tb >= 0) & (tb + PER <= g.Lout)
    rr = np.broadcast_to(brow[:, None], tb.shape)
    for m in range(PER // 4):  # load4: 8 bytes (16-bit) or 16 (float32) at flat row * Lout + tb + 4m
        f = (rr * g.Lout + tb + 4 * m)[whole]
        assert ((gy.data.ptr + f * isz) % (4 * isz) == 0).all(), "dw_wide_gw: misaligned grad_y load"
    flat = (np.broadcast_to(brow[:, None, None], pos.shape) * g.Lout + pos)[valid]
    _check_written_once(gy, flat, "dw_wide_gw grad_y positions (each read once)")
    # product (t, k) uses staged qb + r + k = x position t - pl + k (t = tb + r)
    r, k = np.arange(PER)[:, None], np.arange(K)[None, :]
    assert ((r + k) + (-g.pl) == (r - g.pl + k)).all()
    # partials
    n, c = brow // g.Cout, brow % g.Cout
    slot = (n * tiles + btile) * g.Cout + c
    assert part.size == g.N * tiles * g.Cout * K
    _check_written_once(np.empty(g.N * tiles * g.Cout), slot, "dw_wide_gw partial rows")
    assert final is not None and int(final.args[2]) == g.Cout * K and int(final.args[3]) == g.N * tiles
    return {"chunks": int(run.sum())}


def _check_pair_chunks(T, nt, what):
    """Chunk index p * 32 + lane + j * 32 * pairs (p < pairs = nt / 64, j = 0, 1, ..) of the warp
    pairs: every chunk of 16 positions of a tile of T once for each half of the taps."""
    pairs, PER = nt // 64, cb.DWW_PER
    idx = (np.arange(pairs)[:, None, None] * 32 + np.arange(32)[None, :, None]
           + np.arange(0, T // PER + 32 * pairs, 32 * pairs)[None, None, :]).ravel()
    idx = idx[idx < T // PER]
    assert np.array_equal(np.sort(idx), np.arange(T // PER)), f"{what}: a chunk missed or taken twice by a half"


def model_dw_wide_bwd(S, KMAX, arrs, g, grid, block, T, smem, final):
    """dw_wide_bwd: one block per tile of T positions of a row (tiles from the aligned start
    before the x row, covering max(L, L_out)); the grad_y span (t0 - PG, zeros outside the row)
    and the x span (t0 - pl, the padding map) staged after KMAX taps; grad_x as dw_wide<BWD>'s
    threads; grad_w: every grad_y position of every row in exactly one chunk for each half of
    the taps, its value the staged grad_y element qb + r + PG (inside the span), its products
    with staged x inside the x span; one partial slot per (n, tile, c), summed by
    conv_grad_w_final."""
    gy, w, x, gx, part = arrs
    _check_depthwise(g, kmax=KMAX)
    K, isz, PER = g.K, ITEM[S], cb.DWW_PER
    assert cb.DWWB_KMIN < K <= KMAX and KMAX == next(k for k in cb.DWWB_KMAXES if K <= k), "dw_wide_bwd's KMAX"
    assert 0 <= g.pl < K, "grad_w's positions outside grad_x's grad_y span"
    assert gy.size == g.N * g.Cout * g.Lout and x.size == gx.size == g.N * g.Cin * g.L and w.size == g.Cout * K
    nt = block[0]
    assert nt % 64 == 0 and 64 <= nt <= 256, "__launch_bounds__(256), warp pairs"
    assert T % PER == 0 and 0 < T <= PER * nt, "a tile has more outputs than its threads cover"
    cover = max(g.L, g.Lout) + (7 if g.L % 8 else 0)
    tiles = (cover + T - 1) // T
    rows = g.N * g.Cout
    assert tuple(grid[1:]) in ((), (1,), (1, 1)) and grid[0] == rows * tiles, "grid is not rows * the kernel's tiles"
    blk = np.arange(grid[0], dtype=np.int64)
    brow, btile = blk // tiles, blk % tiles
    delta = 0 * brow if "wb_delta" in MUTATION else (brow * g.L) & 7
    t0 = btile * T - delta
    NB, KH = KMAX // 8, 8 * ((KMAX // 8 + 1) // 2)
    allocg, allocx, span = T + 8 * NB, T + 2 * KH, T + K - 1
    staged = lambda a: a + 4 * ((a - 1) // 32)  # noqa: E731  (sidx<true> floats)
    assert (KMAX + staged(allocg)) % 4 == 0, "x span not 16-byte aligned"
    assert (KMAX + staged(allocg) + staged(allocx) + nt // 32 * KH) * 4 <= smem, "dw_wide_bwd: shared memory too small"
    PG = K - 1 - g.pl
    lead = g.pl if "wb_lead" in MUTATION else PG
    _check_padded_reads((t0 - lead)[:, None] + np.arange(span), g.Lout, False, g, "dw_wide_bwd grad_y staging")
    _check_stage_span(gy, isz, brow, t0 - lead, span, g.Lout)
    _check_padded_reads((t0 - g.pl)[:, None] + np.arange(span), g.L, True, g, "dw_wide_bwd x staging")
    _check_stage_span(x, isz, brow, t0 - g.pl, span, g.L)
    act, edge = _check_wide_outputs(gx, True, g, t0, brow, T, nt, g.L, isz, allocg, lead, "dw_wide_bwd")
    # grad_w: chunk qb of each half, positions t = t0 + qb + r inside [0, L_out)
    _check_pair_chunks(T, nt, "dw_wide_bwd")
    qb = np.arange(0, T, PER, dtype=np.int64)
    pos = t0[:, None, None] + qb[None, :, None] + np.arange(PER)
    valid = (pos >= 0) & (pos < g.Lout)
    q = np.broadcast_to(qb[None, :, None] + np.arange(PER) + PG, pos.shape)[valid]  # staged grad_y element
    assert ((q >= 0) & (q < span)).all(), "dw_wide_bwd: grad_w's grad_y outside the staged span"
    assert (np.broadcast_to(t0[:, None, None], pos.shape)[valid] - lead + q == pos[valid]).all(), \
        "dw_wide_bwd: grad_w's grad_y element is not its position"
    assert (qb + KH + 8 * (KH // 8 - 1) + 23 < allocx).all() and 2 * KH >= K, "dw_wide_bwd: x window past the span"
    flat = (np.broadcast_to(brow[:, None, None], pos.shape) * g.Lout + pos)[valid]
    _check_written_once(gy, flat, "dw_wide_bwd grad_y positions (each taken once)")
    n, c = brow // g.Cout, brow % g.Cout
    assert part.size == g.N * tiles * g.Cout * K
    _check_written_once(np.empty(g.N * tiles * g.Cout), (n * tiles + btile) * g.Cout + c, "dw_wide_bwd partial rows")
    assert final is not None and final.args[0] is part
    assert int(final.args[2]) == g.Cout * K and int(final.args[3]) == g.N * tiles
    return {"threads": act, "edge": edge}


def _grw_geometry(g, KMAX, Lo, T, grid):
    """What grp_wide and grp_wide_gw share: at most 8 channels a group in and out, stride 1,
    dilation 1 (or one tap), KMAX = 8 ceil(K / 8) in (8, 16), rows of whole 8-element chunks, tiles
    of T (a multiple of 16) from each row's start; returns (n, grp, t0, tiles, alloc, row stride)
    of every block."""
    K, PER = g.K, cb.DWW_PER
    assert g.Cin // g.G <= 8 and g.Cout // g.G <= 8 and g.stride == 1 and (g.dil == 1 or K == 1)
    assert KMAX in (8, 16) and KMAX == 8 * -(-K // 8) and Lo % 8 == 0
    assert T % PER == 0 and T > 0
    tiles = (Lo + T - 1) // T
    assert tuple(grid[1:]) in ((), (1,), (1, 1)) and grid[0] == g.N * g.G * tiles, "grid is not (n, group) rows * tiles"
    blk = np.arange(grid[0], dtype=np.int64)
    rg = blk // tiles
    alloc = T + KMAX
    return rg // g.G, rg % g.G, (blk % tiles) * T, tiles, alloc, alloc + 4 * ((alloc - 1) // 32)


def _check_grw_staging(inp, isz, rows_of, i0, span, Lin, MAP, g, n_rows, alloc, what):
    """The group's n_rows staged rows (stage_span of row rows_of(ci) at i0, span positions)."""
    assert span <= alloc
    _check_padded_reads(i0[:, None] + np.arange(span), Lin, MAP, g, f"{what} staging")
    for ci in range(n_rows):
        _check_stage_span(inp, isz, rows_of(ci), i0, span, Lin)


def _check_grw_chunks(T, P, lanes_of, what):
    """Chunk qb = 16 (slot + j P) of a tile: every chunk of T // 16 once over the slots."""
    PER = cb.DWW_PER
    step = P - 1 if "grw_slot" in MUTATION else P
    idx = (np.arange(lanes_of)[:, None] + step * np.arange(T // PER + 1)[None, :]).ravel()
    idx = idx[idx < T // PER]
    assert np.array_equal(np.sort(idx), np.arange(T // PER)), f"{what}: a chunk missed or taken twice"


def model_grp_wide(S, KMAX, BWD, arrs, g, grid, block, T, P, smem):
    """grp_wide<S, KMAX, BWD>: block = (n, group, tile of T outputs); the group's Ci input rows
    (x through the padding map; BWD: grad_y, zeros outside) staged staged_row(T + KMAX) floats
    apart after 64 KMAX taps; thread (co = tid // P, slot = tid % P) owns chunks of 16 outputs
    16 (slot + j P); tap slot (co * 8 + ci) * KMAX + k holds w[g Og + co, ci, k] (BWD: w[g Og +
    ci, co, K - 1 - k]) and output r of a chunk reads staged qb + r + k = input o - lead + k
    (lead = pl; BWD: K - 1 - pl, SPEC section 5's transpose); every output once, by aligned
    store8s or (BWD, non-zero mode, chunks within E of a row end) grad_x_sum's loop."""
    inp, w, b, out = arrs
    isz, PER, K, pl = ITEM[S], cb.DWW_PER, g.K, g.pl
    Cg, Og = g.Cin // g.G, g.Cout // g.G
    Ci, Co = (Og, Cg) if BWD else (Cg, Og)
    Lin, Lo = (g.Lout, g.L) if BWD else (g.L, g.Lout)
    Cin_a, Cout_a = (g.Cout, g.Cin) if BWD else (g.Cin, g.Cout)
    n, grp, t0, tiles, alloc, RS = _grw_geometry(g, KMAX, Lo, T, grid)
    assert inp.size == g.N * Cin_a * Lin and out.size == g.N * Cout_a * Lo and w.size == g.Cout * Cg * K
    assert (b is None) if BWD else (b is None or b.size == g.Cout)
    nt = block[0]
    assert nt % 32 == 0 and nt <= 128 and P * Co <= nt, "__launch_bounds__(128): P threads for every output channel"
    assert (64 * KMAX + Ci * RS) * 4 <= smem, "grp_wide: shared memory smaller than taps + staged rows"
    assert RS % 4 == 0, "staged rows not 16-byte aligned"
    lead = K - 1 - pl if BWD and "grw_lead" not in MUTATION else pl
    i0 = t0 - lead
    _check_grw_staging(inp, isz, lambda ci: n * Cin_a + grp * Ci + ci, i0, T + K - 1, Lin, not BWD, g, Ci, alloc,
                       "grp_wide")
    # the taps: slot (co * 8 + ci) * KMAX + k, and the x / grad_y position output o, slot k reads
    co_, ci_, k_ = np.meshgrid(np.arange(Co), np.arange(Ci), np.arange(K), indexing="ij")
    assert ((co_ * 8 + ci_) * KMAX + k_ < 64 * KMAX).all()
    if BWD:
        o_w, c_w, k_w = ci_, co_, K - 1 - k_  # w[g Og + ci, co, K - 1 - k]
        pos_rel = pl - k_w  # grad_y position o + pl - kw (SPEC section 5: o = t + kw - pl)
    else:
        o_w, c_w, k_w = co_, ci_, k_
        pos_rel = k_w - pl
    assert ((o_w < Og) & (c_w < Cg) & (k_w >= 0) & (k_w < K)).all()
    assert (k_ - lead == pos_rel).all(), "grp_wide: a tap reads the wrong input position"
    _check_grw_chunks(T, P, P, "grp_wide")
    assert (T - PER) + 8 * (KMAX // 8 - 1) + 23 < alloc, "grp_wide: window past the staged elements"
    qb = np.arange(0, T, PER, dtype=np.int64)
    o0 = t0[:, None] + qb[None, :]
    run = o0 < Lo
    E = max(g.pl, g.pr) + 1
    edge = run & ((o0 < E) | (o0 + PER > Lo - E)) if (BWD and g.mode != 0) else np.zeros(run.shape, bool)
    vec = run & ~edge
    written = []
    for co in range(Co):
        rowb = ((n * Cout_a + grp * Co + co) * Lo)[:, None] + 0 * o0
        first, second = (rowb + o0)[vec], (rowb + o0 + 8)[vec & (o0 + 8 < Lo)]
        _check_vec_stores(out, np.concatenate([first, second]), isz, "grp_wide out")
        written += [first[:, None] + np.arange(8), second[:, None] + np.arange(8)]
        e_o0, e_row = o0[edge], rowb[edge]
        m = np.minimum(PER, Lo - e_o0)
        written += [np.concatenate([e_row[i] + e_o0[i] + np.arange(m[i]) for i in range(len(m))] or [np.zeros(0, np.int64)])]
    if BWD and g.mode != 0:
        cp = _copy_positions(g)
        pos = (o0[vec][:, None] + np.arange(PER)).ravel()
        assert not np.isin(pos[pos < Lo], cp).any(), "grp_wide: a padded copy on the window path"
    _check_written_once(out, np.concatenate([np.ravel(a) for a in written]), f"grp_wide {'grad_x' if BWD else 'y'}")
    return {"chunks": int(run.sum())}


def model_grp_wide_gw(S, KMAX, arrs, g, grid, block, T, smem, final):
    """grp_wide_gw<S, KMAX>: block = (n, group, tile of T grad_y positions); the group's Cg x rows
    staged as grp_wide's forward; warp ci, lanes chunks 16 (lane + 32 j): every grad_y position of
    every output channel of the group read once per input channel (whole chunks by aligned loads,
    the row's last 8 positions one at a time), product (t, k) = x position t - pl + k; partial
    slots (n * tiles + tile) * E + ((g Og + o) * Cg + ci) * K + k each written once, all summed by
    conv_grad_w_final."""
    gy, x, part = arrs
    isz, PER, K, pl = ITEM[S], cb.DWW_PER, g.K, g.pl
    Cg, Og = g.Cin // g.G, g.Cout // g.G
    n, grp, t0, tiles, alloc, RS = _grw_geometry(g, KMAX, g.Lout, T, grid)
    assert Cg > 1 and gy.size == g.N * g.Cout * g.Lout and x.size == g.N * g.Cin * g.L
    assert block[0] == 32 * Cg, "one warp per input channel of the group"
    assert Cg * RS * 4 <= smem, "grp_wide_gw: shared memory smaller than the staged rows"
    _check_grw_staging(x, isz, lambda c: n * g.Cin + grp * Cg + c, t0 - pl, T + K - 1, g.L, True, g, Cg, alloc,
                       "grp_wide_gw")
    _check_grw_chunks(T, 32, 32, "grp_wide_gw")
    assert (T - PER) + 8 * (KMAX // 8 - 1) + 23 < alloc, "grp_wide_gw: window past the staged elements"
    qb = np.arange(0, T, PER, dtype=np.int64)
    tb = t0[:, None] + qb[None, :]
    run = tb < g.Lout
    whole = run & (tb + PER <= g.Lout)
    reads = []
    for o in range(Og):
        rowb = ((n * g.Cout + grp * Og + o) * g.Lout)[:, None] + 0 * tb
        for m in range(PER // 4):  # load4: 8 bytes (16-bit) or 16 (float32)
            f = (rowb + tb + 4 * m)[whole]
            assert ((gy.data.ptr + f * isz) % (4 * isz) == 0).all(), "grp_wide_gw: misaligned grad_y load"
        reads.append(((rowb + tb)[whole][:, None] + np.arange(PER)).ravel())
        tail_t, tail_r = tb[run & ~whole], rowb[run & ~whole]
        reads += [tail_r[i] + tail_t[i] + np.arange(g.Lout - tail_t[i]) for i in range(len(tail_t))]
    _check_written_once(gy, np.concatenate(reads), "grp_wide_gw grad_y positions (each read once a warp)")
    E = g.Cout * Cg * K
    assert part.size == g.N * tiles * E
    o_, ci_, k_ = np.meshgrid(np.arange(Og), np.arange(Cg), np.arange(K), indexing="ij")
    ci_slot = 0 * ci_ if "grwg_part" in MUTATION else ci_
    slot = ((n * tiles + t0 // T)[:, None] * E + (((grp[:, None] * Og + o_.ravel()[None]) * Cg
                                                   + ci_slot.ravel()[None]) * K + k_.ravel()[None]))
    _check_written_once(part, slot.ravel(), "grp_wide_gw partial slots")
    assert final is not None and int(final.args[2]) == E and int(final.args[3]) == g.N * tiles
    return {"chunks": int(run.sum())}


def model_dw_wide(S, KMAX, BWD, arrs, g, grid, block, T, smem):
    """dw_wide: one block per tile of T outputs of a row (tiles from the aligned start before the
    row, delta = flat row start mod 8), its span staged in shared memory through sidx<true> after
    KMAX taps; thread tid owns outputs o0 = t0 + 16 tid .. o0 + 15, reading staged elements
    16 tid .. 16 tid + 8 nb + 15, and stores whole chunks of 8 as one store8 (flat multiple of 8);
    threads within E of a row end with a non-zero padding mode write their outputs through
    dw_gx_points (global memory, the padded copies)."""
    inp, w, b, out = arrs
    _check_depthwise(g, kmax=KMAX)
    K, isz, PER = g.K, ITEM[S], cb.DWW_PER
    assert cb.DWW_KMIN < K <= KMAX and KMAX == 8 * -(-K // 8) and KMAX in cb.DWW_KMAXES, "dw_wide<KMAX> unrolls ceil(K / 8) tap blocks"
    Lin, Lo = (g.Lout, g.L) if BWD else (g.L, g.Lout)
    assert inp.size == g.N * g.Cout * Lin and out.size == g.N * g.Cout * Lo and w.size == g.Cout * K
    if BWD:
        assert b is None
    elif b is not None:
        assert b.size == g.Cout
    nt = block[0]
    assert nt % 32 == 0 and 32 <= nt <= 256, "__launch_bounds__(256), whole warps"
    assert T % PER == 0 and 0 < T <= PER * nt, "a tile has more outputs than its threads cover"
    cover = Lo + 7 if Lo % 8 else Lo
    tiles = (cover + T - 1) // T
    nblk = grid[0]
    assert tuple(grid[1:]) in ((), (1,), (1, 1)) and nblk == g.N * g.Cout * tiles, "grid is not rows * the kernel's tiles"
    blk = np.arange(nblk, dtype=np.int64)
    brow = blk // tiles
    delta = (brow * Lo) & 7
    if "wide_delta" in MUTATION:
        delta = 0 * delta
    t0 = (blk - brow * tiles) * T - delta
    nb = (K + 7) // 8
    alloc = T + 8 * nb
    pad = 8 if "wide_pad" in MUTATION else 4  # floats of padding after every 32 staged ones
    sidx = lambda q: q + pad * (q // 32)  # noqa: E731
    assert (KMAX + sidx(alloc - 1) + 1) * 4 <= smem, "dw_wide: shared memory smaller than taps + staged span"
    span = T + K - 1
    assert span <= alloc
    # staged element q of a block = (padded) input i0 + q of its row
    lead = (K - 1 - g.pl) if BWD else g.pl
    if "wide_lead" in MUTATION and BWD:
        lead = g.pl
    i0 = t0 - lead
    _check_padded_reads(i0[:, None] + np.arange(span), Lin, not BWD, g, "dw_wide staging")
    _check_stage_span(inp, isz, brow, i0, span, Lin)
    act, edge = _check_wide_outputs(out, BWD, g, t0, brow, T, nt, Lo, isz, alloc, lead, "dw_wide")
    return {"threads": act, "edge": edge}


def _check_wide_outputs(out, BWD, g, t0, brow, T, nt, Lo, isz, alloc, lead, what):
    """dw_wide's (and dw_wide_bwd's grad_x) threads: thread tid owns outputs o0 = t0 + 16 tid ..
    o0 + 15, reading staged elements 16 tid .. 16 tid + 8 nb + 15 (< alloc; staged element q is
    input t0 - lead + q); whole chunks of 8
    stored by store8 (aligned); with a non-zero padding mode (grad_x) the threads within E of a
    row end through dw_gx_points; every output written once. Returns (active threads, edge
    threads)."""
    K, PER = g.K, cb.DWW_PER
    nb = (K + 7) // 8
    qb = PER * np.arange(nt, dtype=np.int64)[None, :] + 0 * t0[:, None]
    o0all = t0[:, None] + qb
    act = (qb < T) & (o0all < Lo) & (o0all + PER > 0)
    assert (qb[act] + 8 * nb + 15 < alloc).all(), f"{what}: window past the staged elements"
    # output o = t0 + qb + r, tap k reads staged qb + r + k = input o - lead + k: the forward's o - pl + k,
    # grad_x's grad_y position t with t + (K - 1 - k) = o + pl (tap k is w[K - 1 - k])
    r, k = np.arange(PER)[:, None], np.arange(K)[None, :]
    want = (r + g.pl - (K - 1 - k)) if BWD else (r - g.pl + k)
    assert ((r + k) - lead == want).all(), f"{what}: window of the wrong lead"
    o0 = o0all[act]
    row = np.broadcast_to(brow[:, None], qb.shape)[act]
    writes = []
    edge = np.zeros(o0.shape, bool)
    if BWD and g.mode != 0:
        E = max(g.pl, g.pr) + 1
        edge = (o0 < E) | (o0 + PER > Lo - E)
        o = o0[edge][:, None] + np.arange(PER)
        valid = (o >= 0) & (o < Lo)
        writes.append((row[edge][:, None] * Lo + o)[valid])
        assert set(_copy_positions(g).tolist()) <= set(o[valid].tolist()), \
            f"a position with padded copies outside {what}'s edge threads"
    m = ~edge
    for h in range(PER // 8):
        oh = o0[m] + 8 * h
        whole = (oh >= 0) & (oh + 8 <= Lo)
        f = row[m] * Lo + oh
        _check_vec_stores(out, f[whole], isz, f"{what} store8")
        writes.append(f[whole][:, None] + np.arange(8))
        o = oh[~whole][:, None] + np.arange(8)
        valid = (o >= 0) & (o < Lo)
        writes.append((row[m][~whole][:, None] * Lo + o)[valid])
    _check_written_once(out, np.concatenate([x.ravel() for x in writes]), f"{what} {'grad_x' if BWD else 'y'}")
    return int(act.sum()), int(edge.sum())


def _copy_positions(g):
    """x positions that have extra padded copies (SPEC §2 applied to every padded position)."""
    i = np.arange(g.L + g.pl + g.pr, dtype=np.int64)
    j = i - g.pl
    outside = (j < 0) | (j >= g.L)
    return np.unique(_spec_src(j[outside], g.L, g.mode))


def model_dw_bwd_edges(S, arrs, g, grid, block):
    gy, w, gx = arrs
    _check_depthwise(g, dilated=True)
    assert g.mode != 0
    K, L, Lout, d = g.K, g.L, g.Lout, g.dil
    PG = (K - 1) * d - g.pl
    E = max(g.pl, g.pr) + 1  # as the kernel computes them
    nE = 2 * E if 2 * E < L else L
    if "edges_E" in MUTATION:
        E = max(g.pl, g.pr)
    E_spec = max(g.pl, g.pr) + 1
    assert gx.size == g.N * g.Cout * L and gy.size == g.N * g.Cout * Lout
    idx = np.arange(grid[0] * block[0], dtype=np.int64)
    assert g.N * g.Cout * nE <= idx.size, "fewer threads than edge positions"
    idx = idx[idx < g.N * g.Cout * nE]
    row = idx // nE
    q = idx - row * nE
    j = np.where((q < E) | (nE == L), q, L - nE + q)
    assert ((j >= 0) & (j < L)).all()
    counts = np.bincount(row * L + j, minlength=gx.size)
    want = np.zeros(L, np.int64)
    pos = np.arange(L)
    want[(pos < E_spec) | (pos >= L - E_spec)] = 1
    assert (counts.reshape(-1, L) == want).all(), "dw_bwd_edges: edge positions not each once"
    assert want[_copy_positions(g)].all(), "a position with padded copies outside dw_bwd_edges' range"
    # main sum: grad_y position j - PG + k (zero outside the row) times tap K-1-k: the t with
    # t + tap = j + pl (padded position of x[j])
    k = np.arange(K)
    assert ((-PG + k * d) == (g.pl - (K - 1 - k) * d)).all(), "dw_bwd_edges: grad_y window of the wrong lead"
    _check_padded_reads((j - PG)[:, None] + k * d, Lout, False, g, "dw_bwd_edges")
    assert (w.size == g.Cout * K) and (row < g.N * g.Cout).all()
    return {"edges": int(idx.size)}


def _check_small_loads(arr, addrs, isz, nbytes, what):
    """load4 at element offsets addrs: inside arr, aligned to its width (8 bytes 16-bit, 16 float32)."""
    assert arr.itemsize == isz
    assert (addrs >= 0).all() and (addrs + nbytes // isz <= arr.size).all(), f"{what}: load outside the array"
    assert ((arr.data.ptr + addrs * isz) % nbytes == 0).all(), f"{what}: misaligned load"


def _check_groups(S, A, F, q_count, what):
    """group_from(seg[q], seg[q + 1], F - A) = elements F + 8 q + m (m < 8), from segments at A + 8 q."""
    gtab, _ = _group_table(S)
    e0 = F - A
    VE = 16 // ITEM[S]
    assert ((e0 >= 0) & (e0 < VE)).all(), f"{what}: shift offset outside a vector"
    for q in range(q_count):
        assert ((A + 8 * q)[:, None] + gtab[e0] == (F + 8 * q)[:, None] + np.arange(8)).all(), f"{what}: group {q}"


def _check_dil_group(S, arr, e, rows, n, MAP, g, what):
    """dil_group<S, MAP>: elements e .. e + 7 of each row: two 16-byte segments where they lie in
    the row and the array (group tables), else padded_elem reads."""
    isz, VE = ITEM[S], 16 // ITEM[S]
    F = rows * n + e
    A = F & ~np.int64(VE - 1)
    fast = (e >= 0) & (e + 8 <= n) & (A + 16 <= arr.size)
    f = np.flatnonzero(fast)
    for q in range(2):
        for v in range(isz // 2):
            _check_vec_loads(arr, A[f] + 8 * q + 4 * v, isz, what + " segment")
    _check_groups(S, A[f], F[f], 1, what)
    assert ((e[f] >= 0) & (e[f] + 8 <= n)).all()
    nf = np.flatnonzero(~fast)
    _check_padded_reads(e[nf][:, None] + np.arange(8), n, MAP, g, what + " padded")


def model_dw_dil(S, BWD, arrs, g, grid, block):
    """dw_dil<S, BWD>: every output once; output r and tap k (loop order; weight K-1-k for grad_x)
    read input o0 + r - lead + k * d, which must be the forward's o - pl + k * d, or for grad_x the
    grad_y position t with t + (K-1-k) * d = i + pl."""
    inp, w, b, out = arrs
    _check_depthwise(g, multiplier=not BWD, dilated=True)
    isz, K, d = ITEM[S], g.K, g.dil
    Lin, Lo = (g.Lout, g.L) if BWD else (g.L, g.Lout)
    lead = (K - 1) * d - g.pl if BWD else g.pl
    if "dil_lead" in MUTATION:
        lead = (K - 1) - g.pl if BWD else g.pl
    T = 8 * block[0]
    tiles = (Lo + 7 + T - 1) // T
    nt, blk, brow, btile = _threads(grid, block, tiles, g.N * g.Cout)
    o0, row = _chunks(brow, btile, nt, T, lambda r: (r * Lo) & 7, 1)
    m = g.Cout // g.Cin
    inrow = row if BWD else (row // g.Cout) * g.Cin + (row % g.Cout) // m
    assert inp.size == g.N * (g.Cout if BWD else g.Cin) * Lin and out.size == g.N * g.Cout * Lo and w.size == g.Cout * K
    act = ~((o0 + 8 <= 0) | (o0 >= Lo))
    whole = act & (o0 >= 0) & (o0 + 8 <= Lo)
    wh = np.flatnonzero(whole)
    r = np.arange(8)[:, None]
    for k in range(K):
        _check_dil_group(S, inp, o0[wh] - lead + k * d, inrow[wh], Lin, not BWD, g, "dw_dil")
        want = (r + g.pl - (K - 1 - k) * d) if BWD else (r - g.pl + k * d)
        assert ((r - lead + k * d) == want).all(), "dw_dil: a tap multiplies the wrong input"
    starts = row[wh] * Lo + o0[wh]
    _check_vec_stores(out, starts, isz, "dw_dil out")
    sc = np.flatnonzero(act & ~whole)
    o = o0[sc][:, None] + np.arange(8)
    valid = (o >= 0) & (o < Lo)
    ov = o[valid]
    ro = np.broadcast_to(row[sc][:, None], o.shape)[valid]
    _check_padded_reads((ov - lead)[:, None] + np.arange(K) * d, Lin, not BWD, g, "dw_dil scalar")
    _check_written_once(out, np.concatenate([(starts[:, None] + np.arange(8)).ravel(), ro * Lo + ov]),
                        f"dw_dil {'grad_x' if BWD else 'y'}")
    return {"chunks": int(act.sum())}


def model_grp_reg(S, KMAX, arrs, g, grid, block, BWD=False):
    """grp_reg<S, KMAX, BWD>: every output element (y; grad_x with BWD) once, by an aligned vector
    store or (BWD, non-zero mode) the scalar loop of the chunks within E of a row end; per "input"
    channel ci of the group (x's; BWD: grad_y's, the group's output channels) the window
    in[n, grp*Ci + ci, o - lead + k] (dw_long's tables; lead = pl, BWD K - 1 - pl), segments in
    bounds, taps from ws[(ci*KMAX + k)*8 + co]: w[grp*Og + co, ci, k] (BWD: w[grp*Og + ci, co,
    K-1-k]), so that output o, tap k reads x position o - pl + k (BWD: grad_y position o + pl -
    (K-1-k), SPEC §5's transpose)."""
    inp, w, b, out = arrs
    isz, VE, K, L, Lout, pl = ITEM[S], 16 // ITEM[S], g.K, g.L, g.Lout, g.pl
    Cg, Og = g.Cin // g.G, g.Cout // g.G
    Ci, Co = (Og, Cg) if BWD else (Cg, Og)
    Lin, Lo = (Lout, L) if BWD else (L, Lout)
    Cin_a, Cout_a = (g.Cout, g.Cin) if BWD else (g.Cin, g.Cout)
    lead = K - 1 - pl if BWD else pl
    if "grp_bwd_lead" in MUTATION and BWD:
        lead = pl
    assert Cg <= 8 and Og <= 8 and g.stride == 1 and (g.dil == 1 or K == 1) and K <= KMAX and Lo % 8 == 0
    assert BWD or b is None or b.size == g.Cout
    assert not BWD or b is None, "grad_x has no bias"
    gtab, grp_t, elt, nb = _check_long_tables(S, K, KMAX)
    T = 8 * block[0]
    tiles = (Lo + T - 1) // T
    nt, blk, brow, btile = _threads(grid, block, tiles, g.N * g.G)
    o0, rg = _chunks(brow, btile, nt, T, lambda r: 0 * r, 1)
    act = o0 < Lo
    o0, rg = o0[act], rg[act]
    n, grp = rg // g.G, rg % g.G
    iend = g.N * Cin_a * Lin
    assert inp.size == iend and out.size == g.N * Cout_a * Lo and w.size == g.Cout * Cg * K
    # the shared taps: index (ci * KMAX + k) * 8 + co < 8 * KMAX * 8
    ci_, k_, co_ = np.meshgrid(np.arange(Ci), np.arange(K), np.arange(Co), indexing="ij")
    assert ((ci_ * KMAX + k_) * 8 + co_ < 8 * KMAX * 8).all()
    if BWD:
        wtap = ((grp[:, None] * Og + ci_.ravel()[None]) * Cg + co_.ravel()[None]) * K + (K - 1 - k_.ravel()[None])
    else:
        wtap = ((grp[:, None] * Og + co_.ravel()[None]) * Cg + ci_.ravel()[None]) * K + k_.ravel()[None]
    assert ((wtap >= 0) & (wtap < w.size)).all()
    # the weight a (ci, k) slot holds is w[o, c, kw] with kw = the tap of SPEC's sum for this pair
    o_w, c_w, k_w = wtap // (Cg * K) % g.Cout, wtap // K % Cg, wtap % K
    assert (o_w // Og == grp[:, None]).all()
    r, k = np.arange(8)[:, None], np.arange(K)[None, :]
    assert (8 * grp_t + elt == r + k).all()  # output r, slot k: window element r + k
    E = max(g.pl, g.pr) + 1
    edge = (g.mode != 0) & ((o0 < E) | (o0 + 8 > Lo - E)) if BWD else np.zeros(o0.shape, bool)
    vec = ~edge
    for ci in range(Ci):
        irow = n * Cin_a + grp * Ci + ci
        i0 = o0 - lead if "grp_lead" not in MUTATION else o0
        pos = i0[:, None, None] + r[None] + k[None]  # the input position output o0 + r, slot k reads
        if BWD:  # grad_y position o + pl - kw with kw = K - 1 - k (SPEC §5: o = t + kw - pl)
            kw3 = k_w[:, ci * K * Co:(ci + 1) * K * Co].reshape(-1, K, Co)
            assert (kw3 == kw3[:, :, :1]).all() and (o_w[:, ci * K * Co:(ci + 1) * K * Co] % Og == ci).all()
            kw = kw3[:, :, 0]
            assert (pos == o0[:, None, None] + r[None] + pl - kw[:, None, :]).all(), "grp_reg: a tap reads the wrong grad_y"
        else:
            assert (pos == o0[:, None, None] + r[None] - pl + k[None]).all(), "grp_reg: a tap reads the wrong x"
        F = irow * Lin + i0
        A = F & ~np.int64(VE - 1)
        fast = vec & (i0 >= 0) & (i0 + K + 7 <= Lin) & (A + 8 * (nb + 2) <= iend)
        f = np.flatnonzero(fast)
        for q in range(nb + 2):
            for v in range(isz // 2):
                _check_vec_loads(inp, A[f] + 8 * q + 4 * v, isz, "grp_reg segment")
        _check_groups(S, A[f], F[f], nb + 1, "grp_reg")
        assert (i0[f] >= 0).all() and (i0[f] + K + 6 < Lin).all(), "grp_reg fast path outside the row"
        s_ = np.flatnonzero(vec & ~fast)
        _check_padded_reads(i0[s_][:, None] + np.arange(8 * nb + 8), Lin, not BWD, g, "grp_reg window")
    starts = ((n[:, None] * Cout_a + grp[:, None] * Co + np.arange(Co)[None]) * Lo + o0[:, None])
    _check_vec_stores(out, starts[vec].ravel(), isz, "grp_reg out")
    written = [(starts[vec].ravel()[:, None] + np.arange(8)).ravel(), (starts[edge].ravel()[:, None] + np.arange(8)).ravel()]
    if BWD and g.mode != 0:  # no position with extra padded copies on the window path
        cp = _copy_positions(g)
        assert not np.isin((o0[vec][:, None] + np.arange(8)).ravel(), cp).any(), "grp_reg: a padded copy on the window path"
    _check_written_once(out, np.concatenate(written), f"grp_reg {'grad_x' if BWD else 'y'}")
    return {"chunks": int(act.sum())}


def model_dw_reg_gw(S, ST, arrs, g, grid, block, J, final=None, DIL=1, NP=1):
    """dw_reg_gw<S, ST, DIL>: per tap block bk and input channel ci of the group, every grad_y
    position of every row once, the product of position o and tap k with x position o * ST - pl
    + k * d of row (n, (c / Og) * Cg + ci); the partial slots."""
    gy, x, partial = arrs
    Cg, Og = g.Cin // g.G, g.Cout // g.G
    if Cg > 1:  # small groups: at most 8 channels in and out
        assert Cg <= 8 and Og <= 8 and g.Cin % g.G == 0 and g.Cout % g.G == 0
        _check_depthwise(G([g.N, g.G, g.Cout, g.L, g.K, g.Lout, g.G, g.stride, g.dil, g.pl, g.pr, g.mode]),
                         multiplier=True, strides=(1, 2), dilated=True)
    else:
        _check_depthwise(g, multiplier=True, strides=(1, 2), dilated=True)
    assert g.dil == DIL or g.K == 1 or (ST == 1 and DIL == 1), "dilation without its template"
    assert g.stride == ST
    isz, VE, K, L, Lout, pl, d = ITEM[S], 16 // ITEM[S], g.K, g.L, g.Lout, g.pl, g.dil
    TB = 8 * NP  # taps a pass
    nb = (K + TB - 1) // TB
    T = 8 * J * block[0]
    span = Lout + (7 if Lout % 8 else 0)  # as the kernel: rows start aligned where L_out % 8 == 0
    if "gw_span" in MUTATION:  # the kernel's former count: always + 7
        span = Lout + 7
    tiles = (span + T - 1) // T
    nt, blk, brc, btile = _threads(grid, block, tiles, g.N * g.Cout * Cg)  # blocks: ((n, c), ci) rows
    assert nt // 32 <= 4, "shared red[4 * TB]: at most 4 warps"
    brow, bci = brc // Cg, brc % Cg  # the grad_y row n * C_out + c, the input channel of the group
    o0, row = _chunks(brow, btile, nt, T, lambda r: (r * Lout) & 7, J)
    if "gw_delta" in MUTATION:
        o0, row = _chunks(brow, btile, nt, T, lambda r: 0 * r, J)
    ci = np.repeat(bci, o0.size // max(len(bci), 1))
    if "gw_group" in MUTATION:
        ci = 0 * ci
    xrow = (row // g.Cout) * g.Cin + ((row % g.Cout) // Og) * Cg + ci
    xend, gend = g.N * g.Cin * L, g.N * g.Cout * Lout
    assert x.size == xend and gy.size == gend
    act = ~((o0 + 8 <= 0) | (o0 >= Lout))
    whole = act & (o0 >= 0) & (o0 + 8 <= Lout)
    strad = act & ~whole
    wh = np.flatnonzero(whole)
    for h in range(0, 8, 4):  # load4 of grad_y: 8-byte (16-bit) or 16-byte (float32) loads
        _check_small_loads(gy, row[wh] * Lout + o0[wh] + h, isz, 4 * isz, "dw_reg_gw grad_y")
    sd = np.flatnonzero(strad)
    o = o0[sd][:, None] + np.arange(8)
    valid = (o >= 0) & (o < Lout)
    for bk in range(nb):
        kn = min(TB, K - TB * bk)
        i0 = o0 * ST - pl + TB * bk * d
        ov = o[valid]
        _check_padded_reads((ov * ST - pl)[:, None] + (TB * bk + np.arange(kn)) * d, L, True, g, "dw_reg_gw scalar")
        for c_ in range(Cg):  # per input channel of the group, every grad_y position once
            sel_w, sel_s = ci[wh] == c_, ci[sd] == c_
            pos = [(row[wh][sel_w] * Lout + o0[wh][sel_w])[:, None] + np.arange(8),
                   np.broadcast_to(row[sd][sel_s][:, None], o[sel_s].shape)[valid[sel_s]] * Lout + o[sel_s][valid[sel_s]]]
            _check_written_once(gy, np.concatenate([p.ravel() for p in pos]), f"dw_reg_gw grad_y share (block {bk}, ci {c_})")
        if ST == 1 and DIL == 1 and d != 1:  # one group per tap: x[o0 - pl + k * d + r] (dil_group)
            for kk in range(kn):
                e = i0[wh] + kk * (d if "gw_dil" not in MUTATION else 1)
                _check_dil_group(S, x, e, xrow[wh], L, True, g, "dw_reg_gw dilated")
                assert (e == o0[wh] * ST - pl + (TB * bk + kk) * d).all(), "dw_reg_gw: a tap reads the wrong x"
            continue
        F = xrow * L + i0
        A = F & ~np.int64(VE - 1)
        NG = ST + NP * DIL  # window groups of a pass
        fast = whole & (i0 >= 0) & (i0 + 7 * ST + (kn - 1) * DIL < L) & (A + 8 * (NG + 1) <= xend)
        f = np.flatnonzero(fast)
        for q in range(NG + 1):
            for v in range(isz // 2):
                _check_vec_loads(x, A[f] + 8 * q + 4 * v, isz, "dw_reg_gw segment")
        _check_groups(S, A[f], F[f], NG, "dw_reg_gw")
        # the product (r, kk) reads win[r * ST + kk * DIL] = x position i0 + r * ST + kk * DIL
        r, kk = np.arange(8)[:, None], np.arange(kn)[None, :]
        idx = r * ST + kk * (DIL if "gw_dil" not in MUTATION else 1)
        assert (idx < 8 * NG).all()
        pos_x = i0[f][:, None, None] + idx[None]
        assert ((pos_x >= 0) & (pos_x < L)).all(), "dw_reg_gw fast path outside the row"
        # = o * ST - pl + k * d for o = o0 + r, k = 8 bk + kk (SPEC §5)
        assert (pos_x == (o0[f][:, None, None] + r[None]) * ST - pl + (TB * bk + kk[None]) * d).all(), \
            "dw_reg_gw: a tap reads the wrong x"
        s = np.flatnonzero(whole & ~fast)
        _check_padded_reads(i0[s][:, None] + np.arange(8 * NG), L, True, g, "dw_reg_gw window")
    n, c = brow // g.Cout, brow % g.Cout
    base = ((n * tiles + btile) * g.Cout * Cg + c * Cg + bci) * K  # dst; pass bk writes dst[TB * bk + kk], kk < kn
    slots = np.concatenate([(base[:, None] + TB * bk + np.arange(min(TB, K - TB * bk))).ravel() for bk in range(nb)])
    _check_written_once(partial, slots, "dw_reg_gw partial")
    if final is not None:
        E, chunks = int(final.args[2]), int(final.args[3])
        assert final.args[0] is partial and E == g.Cout * Cg * K and chunks * E == partial.size
    return {"chunks": int(act.sum())}


def model_dw_reg_gx(S, ST, arrs, g, grid, block):
    """dw_reg_gx<S, ST>: every grad_x element once; a window chunk's output r takes, for each of
    the m output channels, exactly the taps k with (o0 + r + pl - k) = t * ST, t the grad_y
    position it reads; the chunks with padded copies (non-zero modes) take the scalar loop."""
    gy, w, gx = arrs
    _check_depthwise(g, multiplier=True, strides=(1, 2))
    assert g.stride == ST
    isz, VE, K, L, Lout, pl = ITEM[S], 16 // ITEM[S], g.K, g.L, g.Lout, g.pl
    nb, m = (K + 7) // 8, g.Cout // g.Cin
    NWIN = 16 if ST == 1 else 8
    NSEG = NWIN // 8 + 1
    T = 8 * block[0]
    tiles = (L + 7 + T - 1) // T
    nt, blk, brow, btile = _threads(grid, block, tiles, g.N * g.Cin)
    o0, row = _chunks(brow, btile, nt, T, lambda r: (r * L) & 7, 1)
    assert gx.size == g.N * g.Cin * L and gy.size == g.N * g.Cout * Lout and w.size == g.Cout * K
    act = ~((o0 + 8 <= 0) | (o0 >= L))
    E = max(g.pl, g.pr) + 1
    if "gx_E" in MUTATION:
        E -= 1
    scal = act & ((o0 < 0) | (o0 + 8 > L) | ((g.mode != 0) & ((o0 < E) | (o0 + 8 > L - E))))
    win = np.flatnonzero(act & ~scal)
    so = o0[np.flatnonzero(scal)][:, None] + np.arange(8)
    sv = (so >= 0) & (so < L)
    srow = np.broadcast_to(row[np.flatnonzero(scal)][:, None], so.shape)[sv]
    starts = row[win] * L + o0[win]
    _check_vec_stores(gx, starts, isz, "dw_reg_gx grad_x")
    _check_written_once(gx, np.concatenate([(starts[:, None] + np.arange(8)).ravel(), srow * L + so[sv]]), "dw_reg_gx grad_x")
    if g.mode != 0:  # every position with padded copies is a scalar one
        cp = _copy_positions(g)
        in_scal = np.zeros(gx.size, bool)
        in_scal[srow * L + so[sv]] = True
        assert in_scal.reshape(-1, L)[:, cp].all(), "dw_reg_gx: a position with padded copies on the window path"
    U = o0[win] + pl
    p, h = U & 1, U >> 1
    r, kk = np.arange(8)[:, None], np.arange(8)[None, :]
    for par in ((0, 1) if ST == 2 else (0,)):
        # the kernel's (r, kk) -> window index, -1 where it multiplies nothing
        if ST == 1:
            idx = r - kk + 7
        elif par == 0:
            idx = np.where((r - kk) % 2 == 0, (r - kk + 6) // 2, -1)
        else:
            idx = np.where((r - kk) % 2 != 0, (r - kk + 7) // 2, -1)
        assert (idx < NWIN).all() and ((idx >= 0) | (idx == -1)).all()
        sel = np.flatnonzero(p == par) if ST == 2 else np.arange(win.size)
        for bk in range(nb):
            kn = min(8, K - 8 * bk)
            W0 = (U[sel] - 8 * bk - 7) if ST == 1 else (h[sel] - 4 * bk - 3)
            if "gx_phase" in MUTATION and ST == 2:
                W0 = h[sel] - 4 * bk - 2
            # output r, tap k = 8 bk + kk: grad_y position t = W0 + idx must satisfy o + pl - k = t * ST,
            # and every tap with o + pl - k = 0 mod ST takes part
            o = o0[win][sel][:, None, None] + r[None]
            t = W0[:, None, None] + idx[None]
            k = 8 * bk + kk[None]
            used = np.broadcast_to((idx >= 0)[None], t.shape) & np.broadcast_to(kk[None] < kn, t.shape)
            assert (((o + pl - k) == t * ST) | ~used).all(), "dw_reg_gx: a tap multiplies the wrong grad_y"
            need = ((o + pl - k) % ST == 0) & np.broadcast_to(kk[None] < kn, t.shape)
            assert (need == used).all(), "dw_reg_gx: a tap of the phase missing or one of another phase used"
            for jm in range(m):
                grow = ((row[win][sel] // g.Cin) * g.Cout + (row[win][sel] % g.Cin) * m + jm) * Lout
                F = grow + W0
                A = F & ~np.int64(VE - 1)
                fast = (W0 >= 0) & (W0 + NWIN <= Lout) & (A + 8 * NSEG <= gy.size)
                f = np.flatnonzero(fast)
                for q in range(NSEG):
                    for v in range(isz // 2):
                        _check_vec_loads(gy, A[f] + 8 * q + 4 * v, isz, "dw_reg_gx segment")
                _check_groups(S, A[f], F[f], NWIN // 8, "dw_reg_gx")
                nf = np.flatnonzero(~fast)
                _check_padded_reads(W0[nf][:, None] + np.arange(NWIN), Lout, False, g, "dw_reg_gx window")
    return {"chunks": int(act.sum())}


def _dwc_rows(brow, btile, T, Lo, offsets):
    """o0 of every chunk of dwc_reg / dwc_reg_gw (complex units, chunks aligned to even flat
    indices: delta = (row * Lo) mod 2), and its row."""
    o0 = ((btile * T - ((brow * Lo) & 1))[:, None, None] + offsets[None]).ravel()
    return o0, np.repeat(brow, offsets.size)


def model_dwc_reg(KMAX, BWD, arrs, g, grid, block):
    """dwc_reg<KMAX, BWD> (complex64, arrays of float pairs): every output pair once (two aligned
    16-byte stores a whole chunk, or the scalar / padded-copy loop), segment loads inside the
    input array and aligned, the fast path only where the window lies in the row, output o, tap
    slot k reads input position o - lead + k whose weight is w[c, kw] with the SPEC's pairing
    (forward: x at o - pl + kw; grad_x: grad_y at o + pl - kw), padded reads per SPEC §2."""
    inp, w, b, out = arrs
    _check_depthwise(g, kmax=KMAX)
    K, L, Lout, pl = g.K, g.L, g.Lout, g.pl
    Lin, Lo = (Lout, L) if BWD else (L, Lout)
    lead = K - 1 - pl if BWD else pl
    if "dwc_lead" in MUTATION and BWD:
        lead = pl
    nb = (K + 3) // 4
    T = 4 * block[0]
    tiles = (Lo + 1 + T - 1) // T
    nt, blk, brow, btile = _threads(grid, block, tiles, g.N * g.Cout)
    o0, row = _dwc_rows(brow, btile, T, Lo, (4 * np.arange(nt, dtype=np.int64))[None])
    act = ~((o0 + 4 <= 0) | (o0 >= Lo))
    o0, row = o0[act], row[act]
    iend = 2 * g.N * g.Cout * Lin
    assert inp.size == iend and out.size == 2 * g.N * g.Cout * Lo and w.size == 2 * g.Cout * K
    whole = (o0 >= 0) & (o0 + 4 <= Lo)
    E = max(g.pl, g.pr) + 1
    edge = ((o0 < E) | (o0 + 4 > Lo - E)) if (BWD and g.mode != 0) else np.zeros(o0.shape, bool)
    i0 = o0 - lead
    F = 2 * (row * Lin + i0)
    A = F & ~np.int64(3)
    loads = whole & (i0 >= 0) & (i0 + K + 3 <= Lin) & (A + 8 * (nb + 2) <= iend)  # issued before the edge test
    f = np.flatnonzero(loads)
    for q in range(nb + 2):
        for v in range(2):
            _check_vec_loads(inp, A[f] + 8 * q + 4 * v, 4, "dwc_reg segment")
    vec = whole & ~edge
    fast = np.flatnonzero(loads & vec)
    _check_groups("float", A[fast], F[fast], nb + 1, "dwc_reg")  # group q: pairs i0 + 4q .. i0 + 4q + 3
    assert (i0[fast] >= 0).all() and (i0[fast] + K + 2 < Lin).all(), "dwc_reg fast path outside the row"
    r, k = np.arange(4)[:, None], np.arange(K)[None, :]
    kw = K - 1 - k if BWD else k  # the weight tap of slot k (ws[k])
    pos = i0[:, None, None] + r[None] + k[None]  # output o0 + r, slot k: window element r + k
    o = o0[:, None, None] + r[None]
    want = o + pl - kw[None] if BWD else o - pl + kw[None]
    assert (pos[vec] == want[vec]).all(), f"dwc_reg: a tap reads the wrong {'grad_y' if BWD else 'x'}"
    s_ = np.flatnonzero(vec & ~loads)
    _check_padded_reads(i0[s_][:, None] + np.arange(4 * nb + 4), Lin, not BWD, g, "dwc_reg window")
    sc = np.flatnonzero(~whole & ~edge)
    os_ = o0[sc][:, None] + np.arange(4)
    valid = (os_ >= 0) & (os_ < Lo)
    _check_padded_reads((os_[valid] - lead)[:, None] + np.arange(K), Lin, not BWD, g, "dwc_reg scalar")
    if BWD and g.mode != 0:  # no position with extra padded copies on the window or scalar path
        on = (o0[~edge][:, None] + np.arange(4)).ravel()
        assert not np.isin(on, _copy_positions(g)).any(), "dwc_reg: a padded copy outside the copies loop"
    starts = 2 * (row * Lo + o0)
    _check_vec_stores(out, starts[vec], 4, "dwc_reg out")
    oth = np.flatnonzero(~vec)
    oo = o0[oth][:, None] + np.arange(4)
    ok = (oo >= 0) & (oo < Lo)
    pairs = 2 * (np.broadcast_to(row[oth][:, None], oo.shape)[ok] * Lo + oo[ok])
    _check_written_once(out, np.concatenate([(starts[vec][:, None] + np.arange(8)).ravel(), pairs, pairs + 1]),
                        f"dwc_reg {'grad_x' if BWD else 'y'}")
    return {"chunks": int(act.sum())}


def model_dwc_reg_gw(arrs, g, grid, block, J, final=None):
    """dwc_reg_gw (complex64 grad_w partial sums): per pass of 4 taps every grad_y position of
    every row once, the product of position o and tap k with x position o - pl + k of the same
    row, vector loads inside the arrays and aligned; the partial pairs."""
    gy, x, partial = arrs
    _check_depthwise(g)
    K, L, Lout, pl = g.K, g.L, g.Lout, g.pl
    nb = (K + 3) // 4
    T = 4 * J * block[0]
    tiles = (Lout + 1 + T - 1) // T
    nt, blk, brow, btile = _threads(grid, block, tiles, g.N * g.Cout)
    assert nt // 32 <= 4, "shared red[4 * 8]: at most 4 warps"
    tid = np.arange(nt, dtype=np.int64)
    off = np.stack([4 * ((j * (nt >> 5) + (tid >> 5)) * 32 + (tid & 31)) for j in range(J)])
    o0, row = _dwc_rows(brow, btile, T, Lout, off)
    if "dwc_gw_delta" in MUTATION:
        o0, row = _dwc_rows(brow, btile, T, 0 * Lout, off)
    xend = 2 * g.N * g.Cin * L
    assert x.size == xend and gy.size == 2 * g.N * g.Cout * Lout
    act = ~((o0 + 4 <= 0) | (o0 >= Lout))
    whole = act & (o0 >= 0) & (o0 + 4 <= Lout)
    strad = act & ~whole
    wh, sd = np.flatnonzero(whole), np.flatnonzero(strad)
    for h in (0, 4):  # load4<float> of grad_y pairs: 16-byte loads
        _check_small_loads(gy, 2 * (row[wh] * Lout + o0[wh]) + h, 4, 16, "dwc_reg_gw grad_y")
    os_ = o0[sd][:, None] + np.arange(4)
    valid = (os_ >= 0) & (os_ < Lout)
    gy_pairs = types.SimpleNamespace(size=gy.size // 2)
    for bk in range(nb):
        kn = min(4, K - 4 * bk)
        _check_padded_reads((os_[valid] - pl)[:, None] + 4 * bk + np.arange(kn), L, True, g, "dwc_reg_gw scalar")
        pos = [(row[wh] * Lout + o0[wh])[:, None] + np.arange(4), np.broadcast_to(row[sd][:, None], os_.shape)[valid] * Lout + os_[valid]]
        _check_written_once(gy_pairs, np.concatenate([p_.ravel() for p_ in pos]), f"dwc_reg_gw grad_y share (pass {bk})")
        i0 = o0 - pl + 4 * bk
        F = 2 * (row * L + i0)
        A = F & ~np.int64(3)
        fast = whole & (i0 >= 0) & (i0 + 3 + kn <= L) & (A + 24 <= xend)
        f = np.flatnonzero(fast)
        for q in range(3):
            for v in range(2):
                _check_vec_loads(x, A[f] + 8 * q + 4 * v, 4, "dwc_reg_gw segment")
        _check_groups("float", A[f], F[f], 2, "dwc_reg_gw")
        r, kk = np.arange(4)[:, None], np.arange(kn)[None, :]
        px = i0[f][:, None, None] + r[None] + kk[None]  # product (r, kk): window pair r + kk
        assert ((px >= 0) & (px < L)).all(), "dwc_reg_gw fast path outside the row"
        assert (px == (o0[f][:, None, None] + r[None]) - pl + 4 * bk + kk[None]).all(), "dwc_reg_gw: a tap reads the wrong x"
        s2 = np.flatnonzero(whole & ~fast)
        _check_padded_reads(i0[s2][:, None] + np.arange(8), L, True, g, "dwc_reg_gw window")
    n, c = brow // g.Cout, brow % g.Cout
    base = 2 * ((n * tiles + btile) * g.Cout + c) * K  # pass bk writes dst[8 bk + q], q < 2 kn
    slots = np.concatenate([(base[:, None] + 8 * bk + np.arange(2 * min(4, K - 4 * bk))).ravel() for bk in range(nb)])
    _check_written_once(partial, slots, "dwc_reg_gw partial")
    if final is not None:
        E, chunks = int(final.args[2]), int(final.args[3])
        assert final.args[0] is partial and E == g.Cout * K and 2 * chunks * E == partial.size
    return {"chunks": int(act.sum())}


def _parse(name):
    m = re.fullmatch(r"(\w+)<(.*)>", name)
    if not m:
        return name, ()
    return m.group(1), tuple(a.strip() for a in m.group(2).split(","))


DW_KERNELS = ("dw_reg", "dw_reg_bwd", "dw_long", "dw_bwd_edges", "dw_reg_gw", "dw_reg_gx", "dw_dil", "grp_reg", "dw_wide",
              "dw_wide_gw", "dw_wide_bwd", "grp_wide", "grp_wide_gw")
DWC_KERNELS = ("dwc_reg", "dwc_reg_gw")  # complex64


def simulate(log):
    """Runs the model of every register-window launch in log; returns their names in order."""
    seen = []
    for n, L_ in enumerate(log):
        kern, targs = _parse(L_.name)
        if kern not in DW_KERNELS + DWC_KERNELS:
            continue
        seen.append(kern)
        S = targs[0] if targs else None
        if kern == "dwc_reg":
            model_dwc_reg(int(targs[0]), targs[1] == "true", L_.args[:4], G(L_.args[4:16]), L_.grid, L_.block)
        elif kern == "dwc_reg_gw":
            final = log[n + 1] if n + 1 < len(log) and _parse(log[n + 1].name)[0] == "conv_grad_w_final" else None
            assert final is not None, "dwc_reg_gw's partials not summed"
            model_dwc_reg_gw(L_.args[:3], G(L_.args[3:15]), L_.grid, L_.block, int(L_.args[16]), final)
        elif kern == "dw_wide_gw":
            final = log[n + 1] if n + 1 < len(log) and _parse(log[n + 1].name)[0] == "conv_grad_w_final" else None
            model_dw_wide_gw(S, int(targs[1]), L_.args[:3], G(L_.args[3:15]), L_.grid, L_.block, int(L_.args[16]),
                             L_.smem, final)
        elif kern == "dw_wide_bwd":
            final = log[n + 1] if n + 1 < len(log) and _parse(log[n + 1].name)[0] == "conv_grad_w_final" else None
            model_dw_wide_bwd(S, int(targs[1]), L_.args[:5], G(L_.args[5:17]), L_.grid, L_.block, int(L_.args[19]),
                              L_.smem, final)
        elif kern == "dw_wide":
            model_dw_wide(S, int(targs[1]), targs[2] == "true", L_.args[:4], G(L_.args[4:16]), L_.grid, L_.block,
                          int(L_.args[17]), L_.smem)
        elif kern == "dw_reg":
            model_dw_reg(S, int(targs[1]), L_.args[:4], G(L_.args[4:16]), L_.grid, L_.block)
        elif kern == "dw_reg_bwd":
            final = log[n + 1] if n + 1 < len(log) and _parse(log[n + 1].name)[0] == "conv_grad_w_final" else None
            assert final is not None, "dw_reg_bwd's partials not summed"
            model_dw_reg_bwd(S, int(targs[1]), L_.args[:5], G(L_.args[5:17]), L_.grid, L_.block, final)
        elif kern == "dw_reg_gw":
            final = log[n + 1] if n + 1 < len(log) and _parse(log[n + 1].name)[0] == "conv_grad_w_final" else None
            assert final is not None, "dw_reg_gw's partials not summed"
            model_dw_reg_gw(S, int(targs[1]), L_.args[:3], G(L_.args[3:15]), L_.grid, L_.block, int(L_.args[16]), final,
                            int(targs[2]) if len(targs) > 2 else 1, int(targs[3]) if len(targs) > 3 else 1)
        elif kern == "grp_wide":
            model_grp_wide(S, int(targs[1]), targs[2] == "true", L_.args[:4], G(L_.args[4:16]), L_.grid, L_.block,
                           int(L_.args[17]), int(L_.args[18]), L_.smem)
        elif kern == "grp_wide_gw":
            final = log[n + 1] if n + 1 < len(log) and _parse(log[n + 1].name)[0] == "conv_grad_w_final" else None
            model_grp_wide_gw(S, int(targs[1]), L_.args[:3], G(L_.args[3:15]), L_.grid, L_.block, int(L_.args[16]),
                              L_.smem, final)
        elif kern == "grp_reg":
            model_grp_reg(S, int(targs[1]), L_.args[:4], G(L_.args[4:16]), L_.grid, L_.block, targs[2:] == ("true",))
        elif kern == "dw_dil":
            model_dw_dil(S, targs[1] == "true", L_.args[:4], G(L_.args[4:16]), L_.grid, L_.block)
        elif kern == "dw_reg_gx":
            model_dw_reg_gx(S, int(targs[1]), L_.args[:3], G(L_.args[3:15]), L_.grid, L_.block)
        elif kern == "dw_long":
            model_dw_long(S, int(targs[1]), targs[2] == "true", L_.args[:4], G(L_.args[4:16]), L_.grid, L_.block,
                          int(targs[3]) if len(targs) > 3 else 1)
        else:
            model_dw_bwd_edges(S, L_.args[:3], G(L_.args[3:15]), L_.grid, L_.block)
    return seen


# --------------------------------------------------------------------------------------
# The host, run as written against the stand-ins.
def run_host(dtype, x_shape, w_shape, spec, with_bias, ptr_off=0):
    """forward_device and backward_device with stand-in arrays (dx, dgy and db at 256-byte
    aligned addresses plus ptr_off bytes); returns (forward log, backward log, geometry)."""
    cd = case_dtype(dtype)
    t, cplx, part = cb.STORAGE[dtype]
    with _as_cupy(FakeCupy()) as fake:
        def arr(shape):
            a = fake.empty(tuple(shape) + ((2,) if cplx else ()), part)
            a.data.ptr += ptr_off
            return a

        geo = resolve_geometry(tuple(x_shape), tuple(w_shape), None, spec)
        dx, dw = arr(x_shape), fake.empty(tuple(w_shape) + ((2,) if cplx else ()), part)
        db = arr((w_shape[0],)) if with_bias else None
        dgy = arr(geo.y_shape)
        mf, mb = FakeModule(), FakeModule()
        _backend(mf).forward_device(cd, x_shape, w_shape, spec, dx, dw, db)
        _backend(mb).backward_device(cd, x_shape, w_shape, spec, dgy, dx, dw, with_bias)
    return mf.log, mb.log, geo, (dx, dw, db, dgy)


def check_dispatch(dtype, x_shape, w_shape, spec, with_bias, ptr_off=0):
    """Requirement 4, then the models of every register-window launch."""
    flog, blog, geo, (dx, dw, db, dgy) = run_host(dtype, x_shape, w_shape, spec, with_bias, ptr_off)
    cd = case_dtype(dtype)
    fk = [_parse(L_.name)[0] for L_ in flog]
    bk = [_parse(L_.name)[0] for L_ in blog]
    # the host's own decisions, recomputed with stand-ins at the same addresses
    y_like = FakeArray(geo.y_shape, np.uint8, 1 << 12)  # y comes from cupy.empty: aligned
    fwd_arrays = tuple(a for a in (dx, y_like, db) if a is not None)
    nt_f = CupyBackend._dwr_threads(cd, geo, spec, fwd_arrays)
    nt_l = CupyBackend._dwl_threads(cd, geo, spec, fwd_arrays, geo.L_out, kmin=0 if spec.dilation == 2 else cb.DWR_KMAX)
    nt_b = CupyBackend._dwr_threads(cd, geo, spec, (dgy, dx, y_like), bwd=True)
    kmax = CupyBackend._dw_kmax(cd, geo, spec)
    wb = None if nt_b is not None else CupyBackend._dwwb_kmax(cd, geo, spec)
    nt_g = None if nt_b is not None or wb is not None else CupyBackend._dwg_threads(cd, geo, spec, (dgy, dx))
    fused = nt_b is not None or wb is not None or (nt_g is None and kmax is not None and kmax <= cb.DW_FUSED_KMAX)
    nt_lb = None if fused else CupyBackend._dwl_threads(cd, geo, spec, (dgy, y_like), geo.L, kmin=0)
    nt_x = CupyBackend._dwx_threads(cd, geo, spec, (dgy, y_like))
    depthwise = geo.Cg == 1 and geo.Og == 1 and spec.stride == 1
    small = dtype in STORAGE_OF
    if nt_f is not None:
        assert fk == ["dw_reg"] and flog[0].block[0] == nt_f
        assert geo.Cg == 1 and spec.stride in (1, 2) and small and geo.K <= cb.DWR_KMAX  # multipliers, stride 2
        assert (spec.dilation == 1 or geo.K == 1)
        assert ptr_off % 16 == 0 and _parse(flog[0].name)[1] == (STORAGE_OF[dtype], str(geo.K)) + (
            ("2",) if spec.stride == 2 else ())
    else:
        assert "dw_reg" not in fk
    wide = CupyBackend._dww_kmax(cd, geo, spec)
    if wide is not None:  # depthwise, K > DWW_KMIN: dw_wide forward and grad_x, the launch's tiles and shared memory
        assert kmax is not None and geo.K > cb.DWW_KMIN and depthwise and small and spec.dilation == 1
        assert fk == ["dw_wide"] and _parse(flog[0].name)[1] == (STORAGE_OF[dtype], str(wide), "false")
        if wb is None:
            assert bk[0] == "dw_wide" and _parse(blog[0].name)[1] == (STORAGE_OF[dtype], str(wide), "true")
        for L_, n in ((flog[0], geo.L_out),) + (((blog[0], geo.L),) if wb is None else ()):
            _, T_, nt_, smem_ = CupyBackend._dww_plan(geo.K, wide, n)
            assert (int(L_.args[17]), L_.block[0], L_.smem) == (T_, nt_, smem_)
    else:
        assert "dw_wide" not in fk
    if wb is not None:  # depthwise, K > DWWB_KMIN, 0 <= pl < K: the backward in one pass on staged rows
        assert depthwise and small and spec.dilation == 1 and cb.DWWB_KMIN < geo.K <= wb and 0 <= geo.pl < geo.K
        assert bk[:2] == ["dw_wide_bwd", "conv_grad_w_final"] and len(bk) == 2 + with_bias
        assert _parse(blog[0].name)[1] == (STORAGE_OF[dtype], str(wb))
        _, T_, nt_, smem_ = CupyBackend._dwwb_plan(geo.K, wb, geo.L, geo.L_out)
        assert (int(blog[0].args[19]), blog[0].block[0], blog[0].smem) == (T_, nt_, smem_)
    if wide is None or wb is not None:
        assert "dw_wide" not in bk
    fwd_long = nt_f is None and wide is None and nt_l is not None and geo.K <= cb.DWL_FWD_KMAX
    if fwd_long:
        assert fk == ["dw_long"] and flog[0].block[0] == nt_l
        assert depthwise and small and ptr_off % 16 == 0 and geo.K <= cb.DWL_FWD_KMAX
        assert (spec.dilation == 1 and cb.DWR_KMAX < geo.K) or (spec.dilation == 2 and geo.K <= cb.DWL_DIL2_KMAX)
        kmax_l = int(_parse(flog[0].name)[1][1])
        assert geo.K <= kmax_l and _parse(flog[0].name)[1][2] == "false"
        assert _parse(flog[0].name)[1][3:] == (("2",) if spec.dilation == 2 and geo.K > 1 else ())
    else:
        assert "dw_long" not in fk
    nt_df = CupyBackend._dwd_threads(cd, geo, spec, fwd_arrays, geo.L_out, False)
    nt_db = CupyBackend._dwd_threads(cd, geo, spec, (dgy, y_like), geo.L, True)
    nt_gr = CupyBackend._grp_threads(cd, geo, spec, (dx, y_like))
    if nt_f is None and wide is None and not fwd_long and nt_df is None and nt_gr is not None:
        if cb.GRW:  # staged rows: the plan's tiles, threads and shared memory
            assert fk == ["grp_wide"] and _parse(flog[0].name)[1] == (STORAGE_OF[dtype], str(8 * -(-geo.K // 8)), "false")
            _, T_, P_, nt_, smem_ = CupyBackend._grw_plan(geo.Og, geo.Cg, geo.K, geo.L_out, cb.GRW_TMAX)
            assert (int(flog[0].args[17]), int(flog[0].args[18]), flog[0].block[0], flog[0].smem) == (T_, P_, nt_, smem_)
        else:
            assert fk == ["grp_reg"] and flog[0].block[0] == nt_gr
        assert geo.Cg <= 8 and geo.Og <= 8 and spec.stride == 1 and geo.L_out % 8 == 0 and small and ptr_off % 16 == 0
    else:
        assert "grp_reg" not in fk and "grp_wide" not in fk
    if nt_f is None and not fwd_long and nt_df is not None:
        assert fk == ["dw_dil"] and flog[0].block[0] == nt_df and _parse(flog[0].name)[1][1] == "false"
        assert geo.Cg == 1 and spec.stride == 1 and spec.dilation > 1 and geo.K > 1 and small and ptr_off % 16 == 0
    else:
        assert "dw_dil" not in fk
    if nt_b is not None:
        assert bk[0] == "dw_reg_bwd" and blog[0].block[0] == nt_b and "dw_long" not in bk
        assert depthwise and small and geo.K <= cb.DWR_KMAX and geo.L % 8 == 0 and 0 <= geo.pl < geo.K
        assert ptr_off % 16 == 0
    else:
        assert "dw_reg_bwd" not in bk
    long_bwd = nt_lb is not None and wide is None
    if long_bwd:
        assert bk[0] == "dw_long" and blog[0].block[0] == nt_lb and _parse(blog[0].name)[1][2] == "true"
        assert depthwise and small and geo.K <= 64 and ptr_off % 16 == 0
        assert spec.dilation == 1 or geo.K == 1 or (spec.dilation == 2 and geo.K <= 16)
        assert _parse(blog[0].name)[1][3:] == (("2",) if spec.dilation == 2 and geo.K > 1 else ())
    else:
        assert bk.count("dw_long") == 0
    wide_gw = wide is not None and wb is None and geo.K > cb.DWWG_KMIN and dgy.data.ptr % 16 == 0
    if wide_gw:  # long depthwise filters: dw_wide_gw, then the final sum
        i = bk.index("dw_wide_gw")
        assert bk[i + 1] == "conv_grad_w_final" and "dw_reg_gw" not in bk and ptr_off % 16 == 0
        assert _parse(blog[i].name)[1] == (STORAGE_OF[dtype], str(wide))
        _, T_, nt_, smem_ = CupyBackend._dwwg_plan(geo.K, wide, geo.L_out)
        assert (int(blog[i].args[16]), blog[i].block[0], blog[i].smem) == (T_, nt_, smem_)
    else:
        assert "dw_wide_gw" not in bk
    grwg = cb.GRWG and geo.Cg > 1 and nt_gr is not None and not wide_gw  # groups: staged x rows, grad_y once
    if grwg:
        i = bk.index("grp_wide_gw")
        assert bk[i + 1] == "conv_grad_w_final" and "dw_reg_gw" not in bk
        _, T_, _, nt_, smem_ = CupyBackend._grw_plan(geo.Og, geo.Cg, geo.K, geo.L_out, cb.GRWG_TMAX, per_channel=False)
        assert (int(blog[i].args[16]), blog[i].block[0], blog[i].smem) == (T_, nt_, smem_)
    else:
        assert "grp_wide_gw" not in bk
    if nt_g is not None and not wide_gw and not grwg:  # grad_w on register windows (multipliers, stride 2 too), then the final sum
        i = bk.index("dw_reg_gw")
        assert blog[i].block[0] == nt_g and bk[i + 1] == "conv_grad_w_final"
        assert (geo.Cg == 1 or geo.Og <= 8 >= geo.Cg) and spec.stride in (1, 2) and small and geo.K <= 64
        assert ptr_off % 16 == 0
        assert "dw_bwd_vec" not in " ".join(L_.name for L_ in blog) and "dw_grad_w_vec" not in " ".join(L_.name for L_ in blog)
    else:
        assert "dw_reg_gw" not in bk
    dil_bwd = nt_b is None and not fused and not long_bwd and nt_db is not None
    if dil_bwd:
        assert bk[0] == "dw_dil" and blog[0].block[0] == nt_db and _parse(blog[0].name)[1][1] == "true"
        assert depthwise and spec.dilation > 1 and small and ptr_off % 16 == 0
    else:
        assert "dw_dil" not in bk
    if nt_b is None and not fused and not long_bwd and not dil_bwd and nt_x is not None:
        assert bk[0] == "dw_reg_gx" and blog[0].block[0] == nt_x
        assert geo.Cg == 1 and (spec.stride == 2 or geo.Og > 1) and small and ptr_off % 16 == 0
    else:
        assert "dw_reg_gx" not in bk
    nt_rb = CupyBackend._grp_threads(cd, geo, spec, (dgy, y_like), bwd=True)
    if nt_b is None and not fused and not long_bwd and not dil_bwd and nt_x is None and kmax is None and nt_rb is not None:
        if cb.GRW:
            assert bk[0] == "grp_wide" and _parse(blog[0].name)[1][2:] == ("true",)
            _, T_, P_, nt_, smem_ = CupyBackend._grw_plan(geo.Cg, geo.Og, geo.K, geo.L, cb.GRW_TMAX)
            assert (int(blog[0].args[17]), int(blog[0].args[18]), blog[0].block[0], blog[0].smem) == (T_, P_, nt_, smem_)
        else:
            assert bk[0] == "grp_reg" and blog[0].block[0] == nt_rb and _parse(blog[0].name)[1][2:] == ("true",)
        assert geo.Cg <= 8 and geo.Og <= 8 and spec.stride == 1 and geo.L % 8 == 0 and small and ptr_off % 16 == 0
        assert "conv_grad_x_tile" not in " ".join(L_.name for L_ in blog)
    else:
        assert "grp_reg" not in bk and "grp_wide" not in bk
    if nt_b is not None or long_bwd or dil_bwd:  # register-window grad_x: the padded copies from dw_bwd_edges
        assert bk.count("dw_bwd_edges") == (1 if spec.padding_mode != "zeros" else 0)
        if spec.padding_mode != "zeros":
            assert bk.index("dw_bwd_edges") > bk.index(bk[0])
    else:
        assert "dw_bwd_edges" not in bk
    nt_cf = CupyBackend._dwc_threads(cd, geo, spec, fwd_arrays, geo.L_out)
    if nt_cf is not None:  # complex64 depthwise: dwc_reg forward and grad_x, dwc_reg_gw + the final sum
        assert dtype == "complex64" and geo.Cg == 1 and geo.Og == 1 and spec.stride == 1 and ptr_off % 16 == 0
        kmax_c = str(next(k for k in cb.DWC_KMAXES if geo.K <= k))
        assert fk == ["dwc_reg"] and flog[0].block[0] == nt_cf and _parse(flog[0].name)[1] == (kmax_c, "false")
        assert bk[0] == "dwc_reg" and _parse(blog[0].name)[1] == (kmax_c, "true")
        assert bk[bk.index("dwc_reg_gw") + 1] == "conv_grad_w_final"
    else:
        assert not set(fk + bk) & set(DWC_KERNELS)
    simulate(flog)
    simulate(blog)
    return fk, bk, geo


# --------------------------------------------------------------------------------------
# Geometry generators.
MODES = ("zeros", "reflect", "replicate", "circular")


def _random_L(rng):
    u = rng.random()
    if u < 0.15:
        return int(rng.integers(1, 40))
    if u < 0.35:  # whole 8-element chunks: the register-window backward's domain
        return 8 * int(rng.integers(1, 626))
    if u < 0.7:
        base = int(rng.choice([8, 16, 64, 512, 1024, 2048, 4096])) * int(rng.integers(1, 5))
        L = base + int(rng.integers(-9, 10))
        return int(min(max(L, 1), 5000))
    return int(rng.integers(1, 5001))


def _random_case(rng, dtype):
    """(x_shape, w_shape, spec, with_bias, ptr_off), or None where resolve_geometry rejects it."""
    L = _random_L(rng)
    u = rng.random()
    K = int(rng.integers(1, 5)) if u < 0.45 else int(rng.integers(5, 17)) if u < 0.7 else int(rng.integers(1, 65))
    N, C = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    r = rng.random()
    if r < 0.2:
        padding = "same"
    elif r < 0.3:
        padding = "valid"
    elif r < 0.8:
        padding = int(rng.integers(0, K + 1))
    elif r < 0.9:
        padding = (int(rng.integers(0, 2 * K + 3)),)
    else:
        padding = int(rng.integers(0, 80))
    mode = MODES[int(rng.integers(0, 4))]
    stride = 1 if rng.random() < 0.93 else 2
    dilation = 1 if rng.random() < 0.93 else int(rng.integers(2, 4))
    if padding == "same" and stride != 1:
        stride = 1
    d = rng.random()
    if d < 0.76:
        groups, Cout, Cg = C, C, 1  # depthwise
    elif d < 0.81:
        groups, Cout, Cg = C, 2 * C, 1  # channel multiplier
    elif d < 0.95:  # up to 8 channels a group in and out (grp_wide, grp_reg), rows of whole 8-element chunks mostly
        groups, Cg, Og = int(rng.integers(1, 4)), int(rng.integers(1, 9)), int(rng.integers(1, 9))
        C, Cout = groups * Cg, groups * Og
        K = min(K, 16)
        if rng.random() < 0.7 and stride == 1 and dilation == 1 and padding != "valid":
            try:
                Lo = resolve_geometry((1, C, L), (Cout, Cg, K), None, Conv1dSpec(padding=padding, groups=groups)).L_out
                L += (-Lo) % 8  # L_out grows with L one for one at stride 1
            except ValueError:
                pass
    else:
        groups, Cout, Cg = 1, C, C  # dense
    x_shape = (N, C, L) if rng.random() < 0.9 else (C, L)
    w_shape = (Cout, Cg, K)
    isz = np.dtype(cb.STORAGE[dtype][2]).itemsize if dtype in cb.STORAGE else 4
    ptr_off = 0 if rng.random() < 0.95 else isz * int(rng.integers(1, max(2, 16 // isz)))  # misaligned arrays
    try:
        spec = Conv1dSpec(stride=stride, padding=padding, dilation=dilation, groups=groups, padding_mode=mode)
        resolve_geometry(x_shape, w_shape, None, spec)
    except ValueError:
        return None
    return x_shape, w_shape, spec, rng.random() < 0.5, ptr_off


# Boundary geometries: (x_shape, w_shape, padding, mode)
EDGE_CASES = [
    ((2, 3, 4099), 4, 3, "zeros"),        # L_out = 4102... rows start anywhere in a vector
    ((1, 2, 4096), 4, "same", "reflect"),
    ((3, 2, 8), 2, 1, "circular"),
    ((1, 1, 1), 1, 0, "zeros"),
    ((1, 1, 1), 4, 3, "replicate"),
    ((2, 2, 2047), 3, 1, "replicate"),
    ((2, 2, 2048), 3, "valid", "zeros"),
    ((1, 3, 2049), 2, 0, "circular"),
    ((2, 2, 8), 64, 40, "replicate"),     # dw_long grad_x with pl >= K... and L_out > L
    ((2, 2, 70), 64, 63, "reflect"),
    ((2, 2, 64), 64, 64, "circular"),     # circular pad == L: every position has copies
    ((1, 2, 1000), 17, 80, "zeros"),      # lead < 0
    ((2, 2, 4096), 31, "same", "reflect"),
    ((2, 2, 1031), 16, "same", "circular"),
    ((1, 1, 9), 9, 4, "replicate"),
    ((2, 2, 1024), 4, 0, "replicate"),    # backward: pl = 0
    ((2, 2, 1024), 4, 4, "zeros"),        # backward declines: pl >= K
    ((1, 4, 5000), 33, 1, "circular"),
    ((2, 3, 511), 8, 7, "reflect"),
    ((2, 3, 513), 5, 2, "zeros"),
    # rows shorter than a register chunk, padding of at least their length (gpu_dw_check's
    # SHORT_ROWS, run on the H100 in the eleventh session)
    ((2, 3, 2), 4, 3, "replicate"),
    ((1, 2, 5), 4, 4, "reflect"),
    ((1, 2, 6), 3, 7, "replicate"),
    ((2, 2, 4), 4, 6, "zeros"),
    ((1, 2, 7), 4, 3, "reflect"),
    ((1, 2, 7), 2, 7, "circular"),
    ((1, 3, 3), 9, 8, "replicate"),
    ((1, 2, 5), 17, 16, "replicate"),
    ((2, 2, 2), 33, 20, "zeros"),
]


# --------------------------------------------------------------------------------------
# Tests.
@pytest.mark.parametrize("S", ["__half", "bf16_t", "float"])
def test_register_tables(S):
    """load_vectors + shift_window deliver window element e0 + m for every offset e0 < VE and
    every K <= 4, from vectors actually loaded; group_from and dw_long's tap loop pair output r
    and tap k with window element r + k for every K <= 64 and its KMAX."""
    for K in range(1, cb.DWR_KMAX + 1):
        tab, loads = _check_reg_table(S, K)
        assert (tab >= 0).all()  # no zeroed vector, no read past the word array among the used words
    for K in range(cb.DWR_KMAX + 1, cb.DWL_KMAX + 1):
        for kmax in cb.DWL_KMAXES:
            if K <= kmax:
                _check_long_tables(S, K, kmax)
    for e0, oob in enumerate(_group_table(S)[1]):
        assert not oob, f"group_from: shift_window reads word {oob} of 2 * SW"


# (shift_window<16-bit, K=2> read wd[8] of an 8-word array for offsets e0 >= 4 until its selects
# were bounded by WORDS; found by this model.)
SHIFT_CASES = [(S, K) for S in ("__half", "bf16_t", "float") for K in range(1, cb.DWR_KMAX + 1)]


@pytest.mark.parametrize("S,K", SHIFT_CASES)
@pytest.mark.parametrize("ST", [1, 2])
@pytest.mark.parametrize("select", [False, True], ids=["switch", "select"])
def test_shift_window_stays_in_word_array(S, K, ST, select):
    """shift_window reads inside wd[0 .. WORDS): the switch's constant word indices, and the
    barrel shift's selects (the ?: evaluates only the chosen word)."""
    _, _, oob, VE, _, NV = _reg_table(S, K, ST, select)
    bad = {e0: o for e0, o in enumerate(oob) if o}
    assert not bad, f"{S} K={K} ST={ST}: word indices read past WORDS = {4 * NV} (by e0): {bad}"


@pytest.mark.parametrize("S", ["__half", "bf16_t", "float"])
def test_shift_window_paths_agree(S):
    """The switch over constant offsets (window_at) and the barrel shift deliver the same window
    element e0 + m for every offset e0 < VE: dw_reg's and dw_reg_bwd's windows (K <= 4, stride 1
    and 2) and group_from's; the labels are the elements' own indices, so an element taken from
    the wrong word or half fails."""
    for K in range(1, cb.DWR_KMAX + 1):
        for ST in (1, 2):
            sw, sel = _reg_table(S, K, ST, False), _reg_table(S, K, ST, True)
            VE, NW = sw[3], sw[4]
            want = np.arange(VE)[:, None] + np.arange(NW)[None, :]
            assert (sw[0] == want).all() and (sel[0] == want).all(), f"{S} K={K} ST={ST}"
    want = np.arange(16 // ITEM[S])[:, None] + np.arange(8)[None, :]
    assert (_group_table(S, False)[0] == want).all() and (_group_table(S, True)[0] == want).all()


def test_window_at_model_detects_a_wrong_half(monkeypatch):
    """The agreement test can fail: window_at with the 16-bit halves swapped is caught."""
    def swapped(S, NW, wd, e0):
        epw = 4 // ITEM[S]
        return [wd[(e0 + m) // epw][(e0 + m + 1) % epw] for m in range(NW)], []
    monkeypatch.setitem(globals(), "_window_at", swapped)
    _reg_table.cache_clear()
    _group_table.cache_clear()
    try:
        with pytest.raises(AssertionError):
            test_shift_window_paths_agree("__half")
    finally:
        _reg_table.cache_clear()
        _group_table.cache_clear()


@pytest.mark.parametrize("case", EDGE_CASES, ids=lambda c: f"{c[0]}-K{c[1]}-{c[2]}-{c[3]}")
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_edge_geometries(case, dtype):
    x_shape, K, padding, mode = case
    C = x_shape[-2]
    spec = Conv1dSpec(padding=padding, groups=C, padding_mode=mode)
    for bias in (False, True):
        check_dispatch(dtype, x_shape, (C, 1, K), spec, bias)


N_FUZZ = 1200  # geometries per dtype (each: the forward and the backward dispatch, every launch modelled)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_fuzz_register_window_kernels(dtype, monkeypatch):
    """Thousands of random geometries per dtype (seeded): dispatch and every launch's model (the
    grouped geometries cycle through GRW and GRWG on and off: grp_wide or grp_reg, grp_wide_gw or
    dw_reg_gw; every other geometry has DWWB off: dw_wide_bwd or the two-kernel backwards)."""
    rng = np.random.default_rng({"float16": 1, "bfloat16": 2, "float32": 3}[dtype])
    n_geo, n_grouped, seen = 0, 0, {}
    while n_geo < N_FUZZ:
        case = _random_case(rng, dtype)
        if case is None:
            continue
        x_shape, w_shape, spec, bias, off = case
        grouped = w_shape[1] > 1 or w_shape[0] != x_shape[1]
        n_grouped += grouped
        monkeypatch.setattr(cb, "GRW", n_grouped % 2 == 0)  # the groups' kernel families alternately
        monkeypatch.setattr(cb, "GRWG", n_grouped % 4 < 2)
        monkeypatch.setattr(cb, "DWWB", n_geo % 2 == 0)  # long depthwise backwards: one pass, or two kernels
        fk, bk, _ = check_dispatch(dtype, x_shape, w_shape, spec, bias, off)
        for k in fk + bk:
            seen[k] = seen.get(k, 0) + 1
        n_geo += 1
    # the fuzz reaches every kernel, many times
    for k in DW_KERNELS:
        assert seen.get(k, 0) >= 30, (k, seen)


N_FUZZ_COMPLEX = 400


def test_fuzz_complex_kernels():
    """complex64 (seeded random geometries): dispatch and the models of dwc_reg / dwc_reg_gw."""
    rng = np.random.default_rng(11)
    n_geo, seen = 0, {}
    while n_geo < N_FUZZ_COMPLEX:
        case = _random_case(rng, "complex64")
        if case is None:
            continue
        x_shape, w_shape, spec, bias, off = case
        fk, bk, _ = check_dispatch("complex64", x_shape, w_shape, spec, bias, off)
        for k in fk + bk:
            seen[k] = seen.get(k, 0) + 1
        n_geo += 1
    for k in DWC_KERNELS:
        assert seen.get(k, 0) >= 30, (k, seen)


@pytest.mark.parametrize("mutant,case", [("dwc_lead", ((2, 3, 301), 4, 1, "reflect")),
                                         ("dwc_gw_delta", ((2, 3, 1001), 9, 4, "zeros"))])
def test_complex_model_detects_mutations(mutant, case):
    """The complex models fail on grad_x's window from the forward's lead and on grad_w chunks not
    aligned in the flat grad_y."""
    x_shape, K, padding, mode = case
    C = x_shape[-2]
    spec = Conv1dSpec(padding=padding, groups=C, padding_mode=mode)
    fk, bk, _ = check_dispatch("complex64", x_shape, (C, 1, K), spec, True)
    assert fk == ["dwc_reg"] and "dwc_reg_gw" in bk
    MUTATION.add(mutant)
    try:
        with pytest.raises(AssertionError):
            check_dispatch("complex64", x_shape, (C, 1, K), spec, True)
    finally:
        MUTATION.discard(mutant)


def test_dispatch_declines_other_dtypes():
    """float64 and complex storage never reach the register-window kernels."""
    rng = np.random.default_rng(7)
    n = 0
    while n < 60:
        dtype = ("float64", "complex64", "complex32")[n % 3]
        case = _random_case(rng, "float32")
        if case is None:
            continue
        x_shape, w_shape, spec, bias, _ = case
        fk, bk, _ = check_dispatch(dtype, x_shape, w_shape, spec, bias)
        assert not set(fk + bk) & set(DW_KERNELS)
        n += 1


def _extra_copies(j, g):
    """extra_copies(j, g, lo, hi) as written: two half-open ranges of padded positions."""
    L, pl, pr, jr = g.L, g.pl, g.pr, 2 * (g.L - 1) - j
    if "copies_jr" in MUTATION:
        jr = 2 * g.L - j
    r = [(0, 0), (0, 0)]
    if g.mode == 1:
        if 1 <= j <= pl:
            r[0] = (pl - j, pl - j + 1)
        if L <= jr < L + pr:
            r[1] = (pl + jr, pl + jr + 1)
    elif g.mode == 2:
        if j == 0 and pl > 0:
            r[0] = (0, pl)
        if j == L - 1 and pr > 0:
            r[1] = (pl + L, pl + L + pr)
    elif g.mode == 3:
        if j - L >= -pl:
            r[0] = (pl + j - L, pl + j - L + 1)
        if j + L < L + pr:
            r[1] = (pl + j + L, pl + j + L + 1)
    return [p for lo, hi in r for p in range(lo, hi)]


def _check_extra_copies(g):
    """extra_copies lists, in ascending order (copies()' order), exactly the padded positions
    outside the row whose SPEC §2 source is x[j], for every j of the row."""
    p = np.arange(g.L + g.pl + g.pr)
    outside = (p < g.pl) | (p >= g.pl + g.L)
    src = _spec_src(p - g.pl, g.L, g.mode)
    for j in range(g.L):
        want = p[outside & (src == j)].tolist()
        assert _extra_copies(j, g) == want, f"extra_copies({j}) for {g}"


@pytest.mark.parametrize("mode", [1, 2, 3])
def test_extra_copies_are_the_spec_copies(mode):
    """dw_bwd_edges' lean copies (32-bit, fixed slots) against SPEC §2 over small rows and every
    padding (circular pads at most L); a wrong reflect source (2L - j) is caught."""
    for L in range(1, 9):
        for pl in range(0, L + 1 if mode == 3 else L):
            for pr in range(0, L + 1 if mode == 3 else L):
                _check_extra_copies(SimpleNamespace(L=L, pl=pl, pr=pr, mode=mode))
    MUTATION.add("copies_jr")
    try:
        with pytest.raises(AssertionError):
            _check_extra_copies(SimpleNamespace(L=6, pl=2, pr=2, mode=1))
    finally:
        MUTATION.discard("copies_jr")


MUTANTS = [
    ("reg_fast_no_end_check", ((1, 2, 64), 3, 1, "zeros")),   # fast path past the row end
    ("bwd_no_tail", ((1, 2, 64), 4, (2,), "zeros")),         # grad_w misses t in [L, L_out)
    ("nb_mapped", ((1, 2, 64), 4, 3, "reflect")),              # the tail's branch-free load drops the padding map
    ("long_lead", ((1, 2, 300), 12, 13, "replicate")),        # grad_x window from the forward's lead (pl >= K: not dw_wide_bwd)
    ("wide_lead", ((1, 2, 300), 20, 21, "replicate")),        # the same in dw_wide
    ("wb_lead", ((1, 2, 300), 20, 3, "replicate")),           # the same in dw_wide_bwd
    ("wb_delta", ((2, 3, 4097), 31, 15, "zeros")),            # dw_wide_bwd tiles from the row start: misaligned store8
    ("wide_pad", ((2, 2, 4096), 31, 15, "zeros")),            # staged layout wider than the host's shared memory
    ("wide_delta", ((2, 3, 4097), 33, 16, "zeros")),          # tiles from the row start: misaligned store8
    ("wgw_delta", ((2, 3, 4097), 33, 16, "zeros")),           # the same in dw_wide_gw: misaligned grad_y loads
    ("edges_E", ((1, 2, 96), 3, 2, "reflect")),               # edge range one short
    ("gw_delta", ((2, 3, 1003), 9, 9, "zeros")),              # grad_w chunks not aligned in the flat grad_y
    ("gw_span", ((2, 3, 4086), 9, 9, "zeros")),               # tiles over L_out + 7 where the host counts L_out (4096)
    ("gx_E", ((1, 2, 94), 3, 2, "reflect", 2, 1)),            # a padded copy on dw_reg_gx's window path (row 1: chunk at 2)
    ("gx_phase", ((2, 2, 301), 7, 3, "zeros", 1, 2)),         # stride-2 grad_x window one element off
    ("dil_lead", ((2, 2, 300), 9, 12, "reflect", 1, 1, 3)),    # dilated grad_x window from d = 1's lead
    ("long_dil", ((2, 2, 300), 9, 8, "zeros", 1, 1, 2)),       # the same in dw_long<..., 2>
    ("gw_dil", ((2, 2, 300), 9, 8, "zeros", 1, 1, 2)),         # dilated grad_w taps 1 apart (window)
    ("gw_dil", ((2, 2, 300), 9, 12, "zeros", 1, 1, 3)),        # the same, one group per tap
]


@pytest.mark.parametrize("mutant,case", MUTANTS, ids=[m for m, _ in MUTANTS])
def test_model_detects_mutations(mutant, case):
    """The checks can fail: one deliberately wrong line in the model is caught."""
    x_shape, K, padding, mode, mult, stride, dil = (case + (1, 1, 1))[:7]
    C = x_shape[-2]
    spec = Conv1dSpec(padding=padding, groups=C, padding_mode=mode, stride=stride, dilation=dil)
    fk, bk, _ = check_dispatch("float16", x_shape, (C * mult, 1, K), spec, False)  # passes unmutated
    kernel = {"reg_fast_no_end_check": "dw_reg", "bwd_no_tail": "dw_reg_bwd", "nb_mapped": "dw_reg_bwd", "long_lead": "dw_long", "wide_lead": "dw_wide", "wide_pad": "dw_wide", "wide_delta": "dw_wide", "wgw_delta": "dw_wide_gw",
              "wb_lead": "dw_wide_bwd", "wb_delta": "dw_wide_bwd",
              "edges_E": "dw_bwd_edges", "gw_delta": "dw_reg_gw", "gw_span": "dw_reg_gw", "gx_E": "dw_reg_gx", "gx_phase": "dw_reg_gx",
              "dil_lead": "dw_dil", "long_dil": "dw_long", "gw_dil": "dw_reg_gw"}[mutant]
    assert kernel in fk + bk  # the mutated model runs
    MUTATION.add(mutant)
    try:
        with pytest.raises(AssertionError):
            check_dispatch("float16", x_shape, (C * mult, 1, K), spec, False)
    finally:
        MUTATION.discard(mutant)


@pytest.mark.parametrize("grw,mutant", [(False, "grp_lead"), (False, "grp_bwd_lead"), (False, "gw_group"),
                                        (True, "grw_lead"), (True, "grw_slot"), (True, "grwg_part")])
def test_grouped_model_detects_mutation(grw, mutant, monkeypatch):
    """grp_reg's model (GRW off) fails when the window ignores the left padding (forward), when
    grad_x's window takes the forward's lead, and dw_reg_gw's when every block of a group reads the
    first input channel; grp_wide's when grad_x's staging takes the forward's lead or the chunk
    slots step by P - 1, grp_wide_gw's when the partial slots ignore the input channel."""
    monkeypatch.setattr(cb, "GRW", grw)
    monkeypatch.setattr(cb, "GRWG", grw)
    spec = Conv1dSpec(padding=7, groups=4, padding_mode="reflect")  # grad_x lead K - 1 - pl = -1
    fk, bk, _ = check_dispatch("float32", (2, 32, 1024), (24, 8, 7), spec, True)  # 8 -> 6 channels a group
    want = (["grp_wide"], ["grp_wide", "grp_wide_gw", "conv_grad_w_final"]) if grw else (
        ["grp_reg"], ["grp_reg", "dw_reg_gw", "conv_grad_w_final"])
    assert fk == want[0] and bk[:3] == want[1]
    MUTATION.add(mutant)
    try:
        with pytest.raises(AssertionError):
            check_dispatch("float32", (2, 32, 1024), (24, 8, 7), spec, True)
    finally:
        MUTATION.discard(mutant)


def test_no_tensor_core_kernels_without_tensor_cores():
    """On a device without sm_80 tensor cores (CupyBackend._tensor_cores False) the dense
    forwards take the SIMT kernels: no launch of the tensor-core kernels, whose PTX is compiled
    to a trap there; with them, the same calls do launch them."""
    with _as_cupy(FakeCupy()) as fake:
        for tc, want in ((True, True), (False, False)):
            for dtype in ("float16", "float32"):
                cd = case_dtype(dtype)
                part = cb.STORAGE[dtype][2]
                xs, ws = (2, 64, 256), (64, 64, 3)
                mod = FakeModule()
                be = _backend(mod)
                be._tc = tc
                be.forward_device(cd, xs, ws, Conv1dSpec(padding=1), fake.empty(xs, part), fake.empty(ws, part), None)
                names = [_parse(L_.name)[0] for L_ in mod.log]
                assert any(n in ("conv_fwd_mma", "conv_fwd_dmma") for n in names) == want, (tc, dtype, names)


@pytest.mark.parametrize("hip,cc,want", [(False, "75", False), (False, "80", True), (False, "90", True),
                                         (False, "100", True), (True, "90", False), (None, "90", False)])
def test_tensor_core_detection(hip, cc, want):
    """CupyBackend._tensor_cores from a stand-in cupy: CUDA with compute capability >= 8.0 only
    (the string form, 10.x included); HIP never; a runtime without ``is_hip`` counts as no."""
    fake = types.ModuleType("cupy")
    runtime = types.SimpleNamespace() if hip is None else types.SimpleNamespace(is_hip=hip)
    fake.cuda = types.SimpleNamespace(runtime=runtime, Device=lambda: types.SimpleNamespace(compute_capability=cc))
    with _as_cupy(fake):
        assert CupyBackend()._tensor_cores() is want
