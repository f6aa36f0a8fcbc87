"""The plain float64 fast path agrees with the exact reference to float64 rounding (it serves
the harness's bounds and counts), for every padding mode, stride, dilation, groups and complex."""
from __future__ import annotations

import numpy as np
import pytest

import usconv_ref as ur
from usconv_ref import fast
from usconv_ref.spec import Conv1dSpec

CASES = [dict(padding=2), dict(padding=3, padding_mode="reflect", stride=2, groups=2),
         dict(padding="same", padding_mode="replicate", dilation=3, groups=4),
         dict(padding=4, padding_mode="circular", stride=3, dilation=2, groups=8),
         dict(padding="valid", stride=5), dict(padding=1, groups=8, padding_mode="reflect")]


@pytest.mark.parametrize("threads", [False, True])
@pytest.mark.parametrize("complex_", [False, True])
@pytest.mark.parametrize("kw", CASES)
def test_fast_path_matches_reference(kw, complex_, threads, monkeypatch):
    if threads:  # tiny chunks on two threads: the depthwise loops' threaded path
        monkeypatch.setattr(fast, "_CHUNK_ELEMS", 16)
        monkeypatch.setattr(fast, "_WORKERS", 2)
    rng = np.random.default_rng(1)
    draw = (lambda s: rng.standard_normal(s) + 1j * rng.standard_normal(s)) if complex_ else rng.standard_normal
    g = kw.get("groups", 1)
    x, w, b = draw((3, 8, 17)), draw((8 if g != 8 else 16, 8 // g, 3)), None
    b = draw((w.shape[0],))
    spec = Conv1dSpec(**kw)
    y = ur.conv1d(x, w, b, out_dtype=np.complex128 if complex_ else np.float64, **kw)
    yf = fast.conv1d_float64(x, w, b, spec)
    bound = ur.conv1d(np.abs(x), np.abs(w), np.abs(b), out_dtype=np.float64, **kw)
    assert np.all(np.abs(yf - y) <= 1e-14 * bound + 1e-300)
    gy = draw(y.shape)
    ref = ur.conv1d_backward(gy, x, w, b, out_dtype=np.complex128 if complex_ else np.float64, **kw)
    got = fast.conv1d_backward_float64(gy, x, w, b, spec)
    for r, f in zip(ref, got):
        assert r.shape == f.shape
        np.testing.assert_allclose(f, r, rtol=0, atol=1e-13 * np.abs(r).max())


@pytest.mark.parametrize("threads", [False, True])
@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
def test_fast_depthwise_matches_reference(mode, threads, monkeypatch):
    """Depthwise (one input and one output channel per group): the chunked element-wise loops."""
    if threads:
        monkeypatch.setattr(fast, "_CHUNK_ELEMS", 16)
        monkeypatch.setattr(fast, "_WORKERS", 2)
    rng = np.random.default_rng(2)
    kw = dict(padding=3, groups=6, padding_mode=mode, dilation=2 if mode == "reflect" else 1)
    x, w, b = rng.standard_normal((3, 6, 19)), rng.standard_normal((6, 1, 4)), rng.standard_normal(6)
    spec = Conv1dSpec(**kw)
    y = ur.conv1d(x, w, b, out_dtype=np.float64, **kw)
    np.testing.assert_allclose(fast.conv1d_float64(x, w, b, spec), y, rtol=0, atol=1e-14 * np.abs(y).max())
    gy = rng.standard_normal(y.shape)
    for r, f in zip(ur.conv1d_backward(gy, x, w, b, out_dtype=np.float64, **kw),
                    fast.conv1d_backward_float64(gy, x, w, b, spec)):
        np.testing.assert_allclose(f, r, rtol=0, atol=1e-13 * np.abs(r).max())


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
def test_fast_depthwise_filter_paths(mode):
    """The depthwise filter kernels (scipy.ndimage.correlate1d, stride 1): 'same' lengths (the
    filter pads by itself: every left padding its origin allows, odd/even taps, dilation) and
    the padded variant; forward and grad_x against the exact reference."""
    rng = np.random.default_rng(3)
    for K, d, pad in [(9, 1, 4), (4, 1, (1, 2)), (3, 2, 2), (5, 1, (0, 4)), (2, 3, (3, 0)), (3, 1, 5),
                      (4, 1, "same"), (2, 3, "same"), (6, 2, "same")]:
        if isinstance(pad, tuple):
            if mode != "zeros":
                continue  # asymmetric padding: via an explicit zero-padded input
            x = np.pad(rng.standard_normal((2, 5, 13)), ((0, 0), (0, 0), pad))
            kw = dict(padding=0, groups=5, dilation=d)
        else:
            x = rng.standard_normal((2, 5, 13))
            kw = dict(padding=pad, groups=5, dilation=d, padding_mode=mode)
        w = rng.standard_normal((5, 1, K))
        spec = Conv1dSpec(**kw)
        y = ur.conv1d(x, w, out_dtype=np.float64, **kw)
        np.testing.assert_allclose(fast.conv1d_float64(x, w, None, spec), y, rtol=0, atol=1e-14 * np.abs(y).max())
        gy = rng.standard_normal(y.shape)
        gx = ur.conv1d_backward(gy, x, w, out_dtype=np.float64, **kw)[0]
        np.testing.assert_allclose(fast.conv1d_backward_float64(gy, x, w, None, spec)[0], gx, rtol=0,
                                   atol=1e-13 * np.abs(gx).max())


_NP_PAD = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def _direct_depthwise(x, w, gy, pad, mode, stride, dilation):
    """Depthwise forward, grad_x and grad_w (complex: against conj(w), conj(x)) by direct loops
    over the taps (np.pad for the padding, its adjoint through np.add.at on the padded index
    map): independent of fast.py."""
    N, C, L = x.shape
    K = w.shape[-1]
    pl, pr = pad if isinstance(pad, tuple) else (pad, pad)  # (left, right) or both
    Lp = L + pl + pr
    idx = np.pad(np.arange(L), (pl, pr), mode=_NP_PAD[mode]) if mode != "zeros" else None
    xp = np.pad(x, ((0, 0), (0, 0), (pl, pr)), mode=_NP_PAD[mode])
    L_out = (Lp - dilation * (K - 1) - 1) // stride + 1
    y = np.zeros((N, C, L_out), np.result_type(x, w))
    gxp = np.zeros((N, C, Lp), np.result_type(gy, w))
    gw = np.zeros((C, K), np.result_type(gy, x))
    for k in range(K):
        pos = np.arange(L_out) * stride + k * dilation
        y += w[:, 0, k][None, :, None] * xp[..., pos]
        np.add.at(gxp, (slice(None), slice(None), pos), gy * np.conj(w[:, 0, k])[None, :, None])
        gw[:, k] = np.sum(gy * np.conj(xp[..., pos]), axis=(0, 2))
    if mode == "zeros":
        gx = gxp[..., pl:pl + L]
    else:
        gx = np.zeros((N, C, L), gxp.dtype)
        for i in range(Lp):
            gx[..., idx[i]] += gxp[..., i]
    return y, gx, gw.reshape(C, 1, K)


@pytest.mark.parametrize("threads", [False, True])
@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
def test_fast_depthwise_blocked_grad_weight(mode, threads, monkeypatch):
    """The blocked depthwise grad_w (two BLAS products per row over lag blocks of width B, then
    a diagonal gather; the last partial block tap by tap) against direct loops: block widths
    8 and wider (long dilated spans), lengths below, at and between multiples of B (the
    per-tap fallback below B), stride 1 and 2, real and complex; grad_x and the forward of the
    same calls too."""
    if threads:
        monkeypatch.setattr(fast, "_CHUNK_ELEMS", 16)
        monkeypatch.setattr(fast, "_WORKERS", 2)
    rng = np.random.default_rng(4)
    for K, d, L, pad, stride, cplx in [(9, 1, 13, 4, 1, False), (3, 1, 16, 1, 1, False), (5, 3, 40, 6, 1, False),
                                       (4, 1, 5, 2, 1, False), (1, 1, 11, 0, 1, False), (9, 1, 8, 4, 1, True),
                                       (2, 5, 29, 3, 1, False), (7, 2, 33, 3, 2, False), (6, 1, 21, 2, 1, True)]:
        draw = (lambda s: rng.standard_normal(s) + 1j * rng.standard_normal(s)) if cplx else rng.standard_normal
        x, w = draw((3, 4, L)), draw((4, 1, K))
        spec = Conv1dSpec(padding=pad, groups=4, padding_mode=mode, dilation=d, stride=stride)
        y = fast.conv1d_float64(x, w, None, spec, scales=(1.0,))
        gy = draw(y.shape)
        ry, rgx, rgw = _direct_depthwise(x, w, gy, pad, mode, stride, d)
        gx, gw, _ = fast.conv1d_backward_float64(gy, x, w, None, spec, scales=(1.0, 1.0))
        for got, ref in ((y, ry), (gx, rgx), (gw, rgw)):
            assert got.shape == ref.shape
            np.testing.assert_allclose(got, ref, rtol=0, atol=1e-13 * np.abs(ref).max())


def test_fast_depthwise_integer_sums_exact():
    """What the exact engine relies on: integer-valued operands whose products sum to less
    than 2**53 give exact results in any summation order — the blocked grad_w, the filter
    forward and grad_x (incl. the padded positions' gradients) equal exact int64 sums."""
    rng = np.random.default_rng(5)
    for mode in ["zeros", "reflect", "circular"]:
        N, C, L, K, pad = 2, 3, 37, 5, 2
        x = rng.integers(-2**23, 2**23, (N, C, L))  # products < 2**46, at most 74 per output: < 2**53
        w = rng.integers(-2**23, 2**23, (C, 1, K))
        gy = rng.integers(-2**23, 2**23, (N, C, L))  # 'same' length
        spec = Conv1dSpec(padding=pad, groups=C, padding_mode=mode)
        ry, rgx, rgw = _direct_depthwise(x, w, gy, pad, mode, 1, 1)  # int64: exact
        y = fast.conv1d_float64(x.astype(float), w.astype(float), None, spec, scales=(1.0,))
        gx, gw, _ = fast.conv1d_backward_float64(gy.astype(float), x.astype(float), w.astype(float), None, spec,
                                                 scales=(1.0, 1.0))
        for got, ref in ((y, ry), (gx, rgx), (gw, rgw)):
            assert ref.dtype == np.int64 and np.abs(ref).max() > 2**46  # far beyond float64's ulp 1
            assert np.array_equal(got, ref.astype(float)) and np.array_equal(got.astype(np.int64), ref)


def test_fast_depthwise_nonfinite_reach():
    """An inf or nan in x or grad_y reaches exactly the outputs a direct loop gives it (the
    bounds of the harness rely on it): the blocked grad_w sums only each tap's products."""
    rng = np.random.default_rng(6)
    for bad, where in [(np.inf, "x"), (-np.inf, "gy"), (np.nan, "x")]:
        x, w = rng.standard_normal((2, 3, 30)), rng.standard_normal((3, 1, 5))
        gy = rng.standard_normal((2, 3, 30))
        (x if where == "x" else gy)[1, 2, 17] = bad
        spec = Conv1dSpec(padding=2, groups=3)
        ry, rgx, rgw = _direct_depthwise(x, w, gy, 2, "zeros", 1, 1)
        gx, gw, _ = fast.conv1d_backward_float64(gy, x, w, None, spec, scales=(1.0, 1.0))
        y = fast.conv1d_float64(x, w, None, spec, scales=(1.0,))
        for got, ref in ((y, ry), (gx, rgx), (gw, rgw)):
            assert np.array_equal(np.isnan(got), np.isnan(ref)) and np.array_equal(np.isinf(got), np.isinf(ref))
            fin = np.isfinite(ref)
            np.testing.assert_allclose(got[fin], ref[fin], rtol=0, atol=1e-13 * np.abs(ref[fin]).max())


DW_CASES = [dict(padding=1, groups=8, dw=True), dict(padding=2, groups=8, padding_mode="reflect", dilation=2, dw=True),
            dict(padding=1, groups=8, stride=2, padding_mode="circular", dw=True)]


@pytest.mark.parametrize("kw", CASES + DW_CASES)
def test_raw_kernels_assign_and_out(kw):
    """The exact engine's in-place forms against the returned results of the same kernels:
    ``forward_raw(out=, assign=True)`` replaces ``out`` (negated with ``negate``) whatever it
    held (NaN here), ``out=`` without ``assign`` adds/subtracts, and ``grad_input_raw(out=)``
    writes the result it would return; a non-contiguous ``out`` is refused."""
    from usconv_ref.spec import resolve_geometry
    rng = np.random.default_rng(7)
    kw = dict(kw)
    dw = kw.pop("dw", False)  # depthwise: one channel per group (the filter kernels)
    g = kw.get("groups", 1)
    x, w = rng.standard_normal((3, 8, 17)), rng.standard_normal((8 if g != 8 or dw else 16, 8 // g, 3))
    geo = resolve_geometry(x.shape, w.shape, None, Conv1dSpec(**kw))
    mode = kw.get("padding_mode", "zeros")
    y = fast.forward_raw(x, w, geo, mode)
    for negate in (False, True):
        out = np.full(y.shape, np.nan)
        fast.forward_raw(x, w, geo, mode, out=out, negate=negate, assign=True)
        np.testing.assert_array_equal(out, -y if negate else y)
        base = rng.standard_normal(y.shape)
        out = base.copy()
        fast.forward_raw(x, w, geo, mode, out=out, negate=negate)
        np.testing.assert_allclose(out, base - y if negate else base + y, rtol=1e-14, atol=1e-14)
    gy0 = rng.standard_normal((3, w.shape[0], geo.L_out))
    gx = fast.grad_input_raw(gy0, w, geo, mode)
    out = np.full(gx.shape, np.nan)
    fast.grad_input_raw(gy0, w, geo, mode, out=out)
    np.testing.assert_array_equal(out, gx)
    with pytest.raises(ValueError, match="out"):
        fast.grad_input_raw(gy0, w, geo, mode, out=np.empty(gx.shape[::-1]).T)


def test_thread_scratch_is_per_thread_and_kept():
    """One scratch per thread, the same object on every call of that thread (buffers reused
    across calls), another one on another thread."""
    import threading
    mine = fast._thread_scratch()
    assert fast._thread_scratch() is mine
    a = mine.get("t", (4, 5))
    assert mine.get("t", (2, 3)).base is a.base or np.shares_memory(mine.get("t", (2, 3)), a)
    other = []
    t = threading.Thread(target=lambda: other.append(fast._thread_scratch()))
    t.start()
    t.join()
    assert other[0] is not mine


def _direct_dense(x, w, gy, pad, mode, stride, dilation, groups):
    """Grouped forward, grad_x and grad_w (no conjugation, no scale) by direct loops over the
    taps in the inputs' dtype (np.pad for the padding, its adjoint through np.add.at on the
    padded index map): independent of fast.py."""
    N, C_in, L = x.shape
    C_out, Cg, K = w.shape
    Og = C_out // groups
    Lp = L + 2 * pad
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad)), mode=_NP_PAD[mode])
    L_out = (Lp - dilation * (K - 1) - 1) // stride + 1
    y = np.zeros((N, C_out, L_out), x.dtype)
    gxp = np.zeros((N, C_in, Lp), x.dtype)
    gw = np.zeros(w.shape, x.dtype)
    for o in range(C_out):
        g = o // Og
        for c in range(Cg):
            ci = g * Cg + c
            for k in range(K):
                pos = np.arange(L_out) * stride + k * dilation
                y[:, o] += w[o, c, k] * xp[:, ci, pos]
                np.add.at(gxp, (slice(None), ci, pos), gy[:, o] * w[o, c, k])
                gw[o, c, k] = np.sum(gy[:, o] * xp[:, ci, pos])
    if mode == "zeros":
        gx = gxp[..., pad:pad + L]
    else:
        idx = np.pad(np.arange(L), pad, mode=_NP_PAD[mode])
        gx = np.zeros((N, C_in, L), x.dtype)
        for i in range(Lp):
            gx[..., idx[i]] += gxp[..., i]
    return y, gx, gw


DENSE_INT_CASES = [(2, "zeros", 1, 1, 1), (3, "reflect", 2, 1, 2), (2, "replicate", 1, 3, 2), (4, "circular", 3, 2, 4),
                   (0, "zeros", 5, 1, 1), (1, "reflect", 1, 2, 1), (3, "zeros", 2, 2, 2)]


@pytest.mark.parametrize("layout", ["one", "chunks", "taps"])
@pytest.mark.parametrize("case", DENSE_INT_CASES)
def test_dense_kernels_exact_on_integers(case, layout, monkeypatch):
    """The dense kernels (column matrices: whole, in chunks of a few positions, or the per-tap
    loops) on integer-valued inputs, where every float64 partial sum is exact, bit for bit
    against direct integer loops: returned, written (negated), accumulated (subtracted), and
    with the column matrices of ``dense_columns`` passed in (the exact engine's form). Fails if
    a column, a chunk offset, the reversed taps of grad_x or its padding adjoint is off."""
    from usconv_ref.spec import resolve_geometry
    pad, mode, stride, dilation, groups = case
    rng = np.random.default_rng(11)
    N, C_in, C_out, L, K = 2, 4 * groups, 3 * groups, 23, 3
    x = rng.integers(-256, 257, (N, C_in, L)).astype(np.float64)
    w = rng.integers(-256, 257, (C_out, C_in // groups, K)).astype(np.float64)
    geo = resolve_geometry(x.shape, w.shape, None, Conv1dSpec(padding=pad, stride=stride, dilation=dilation,
                                                              groups=groups, padding_mode=mode))
    gy = rng.integers(-256, 257, (N, C_out, geo.L_out)).astype(np.float64)
    y0, gx0, gw0 = _direct_dense(x.astype(np.int64), w.astype(np.int64), gy.astype(np.int64), pad, mode, stride,
                                 dilation, groups)
    rows = groups * max(geo.Cg, geo.Og) * K
    if layout == "chunks":  # a few positions per column matrix
        monkeypatch.setattr(fast, "_COLS_MIN", 1)
        monkeypatch.setattr(fast, "_COLS_ELEMS", 2 * rows)
        assert len(fast._col_chunks(rows, geo.L_out)) > 1
    elif layout == "taps":
        monkeypatch.setattr(fast, "_COLS_ELEMS", 1)
        assert fast._col_chunks(rows, geo.L_out) is None
    y0, gx0, gw0 = y0.reshape(N, groups, -1, geo.L_out).astype(np.float64), gx0.astype(np.float64), gw0.astype(np.float64)
    gw0 = gw0.reshape(groups, -1, geo.Cg, K)
    base_y, base_gx, base_gw = (rng.integers(-99, 99, a.shape).astype(np.float64) for a in (y0, gx0, gw0))
    xcols = fast.dense_columns(x, geo, mode, "x", "test_x")
    gycols = fast.dense_columns(gy, geo, mode, "gy", "test_gy")
    assert (xcols is None) == (layout != "one")
    assert (gycols is None) == (layout != "one" or stride != 1)
    for kw in ({}, dict(cols=xcols)):
        np.testing.assert_array_equal(fast.forward_raw(x, w, geo, mode, **kw), y0)
        for negate in (False, True):
            out = np.full(y0.shape, np.nan)
            fast.forward_raw(x, w, geo, mode, out=out, negate=negate, assign=True, **kw)
            np.testing.assert_array_equal(out, -y0 if negate else y0)
            out = base_y.copy()
            fast.forward_raw(x, w, geo, mode, out=out, negate=negate, **kw)
            np.testing.assert_array_equal(out, base_y - y0 if negate else base_y + y0)
    for fn, args, want, base, cols in ((fast.grad_input_raw, (gy, w), gx0, base_gx, gycols),
                                       (fast.grad_weight_raw, (gy, x), gw0, base_gw, xcols)):
        for kw in ({}, dict(cols=cols)):
            np.testing.assert_array_equal(fn(*args, geo, mode, **kw).reshape(want.shape), want)
            for negate in (False, True):
                out = np.full(want.shape, np.nan)
                fn(*args, geo, mode, out=out, negate=negate, **kw)
                np.testing.assert_array_equal(out, -want if negate else want)
                out = base.copy()
                fn(*args, geo, mode, out=out, negate=negate, accumulate=True, **kw)
                np.testing.assert_array_equal(out, base - want if negate else base + want)


@pytest.mark.parametrize("mode", ["zeros", "reflect"])
def test_dense_nonfinite_reach(mode):
    """Non-finite values reach the dense kernels' outputs as in direct loops: grad_x's column
    matrix adds products of gy's zero extension, 0 * w, which are zeros only for finite w, so an
    infinite weight takes the per-tap loop (a NaN at the edges instead of an infinity would
    fail); an infinite gy or x goes through the column matrices."""
    rng = np.random.default_rng(12)
    from usconv_ref.spec import resolve_geometry
    x = rng.integers(-8, 9, (2, 4, 19)).astype(np.float64)
    w = rng.integers(-8, 9, (6, 2, 3)).astype(np.float64)
    pad = 1 if mode == "zeros" else 2  # (zeros: less than K - 1, so interior positions read the zero extension)
    geo = resolve_geometry(x.shape, w.shape, None, Conv1dSpec(padding=pad, groups=2, padding_mode=mode))
    gy = rng.integers(-8, 9, (2, 6, geo.L_out)).astype(np.float64)
    cases = []
    w_inf = w.copy()
    w_inf[1, 0, 2], w_inf[4, 1, 0] = np.inf, -np.inf
    cases.append((x, w_inf, gy))
    gy_inf = gy.copy()
    gy_inf[0, 3, 0], gy_inf[1, 0, -1] = np.inf, np.nan
    cases.append((x, w, gy_inf))
    x_inf = x.copy()
    x_inf[1, 2, 0], x_inf[0, 1, 7] = -np.inf, np.inf
    cases.append((x_inf, w, gy))
    with np.errstate(invalid="ignore"):
        for xi, wi, gi in cases:
            y0, gx0, gw0 = _direct_dense(xi, wi, gi, pad, mode, 1, 1, 2)
            got = (fast.forward_raw(xi, wi, geo, mode).reshape(y0.shape), fast.grad_input_raw(gi, wi, geo, mode),
                   fast.grad_weight_raw(gi, xi, geo, mode).reshape(gw0.shape))
            assert any(not np.isfinite(a).all() for a in (y0, gx0, gw0))
            for g, want in zip(got, (y0, gx0, gw0)):
                np.testing.assert_array_equal(g, want)  # (NaN positions equal; finite parts exact integers)


# depthwise band kernels' cases (K, dilation, L, padding): output lengths that B = 16 and only
# B = 8 divide, odd/even taps, K = 1, dilations
_BAND_CASES = [(9, 1, 32, 4), (3, 1, 24, 1), (4, 2, 40, 3), (1, 1, 16, 0), (5, 3, 40, 6), (2, 1, 23, 1)]


def _integer_depthwise(rng, N: int, C: int, L: int, K: int):
    """Integer x, w of a depthwise case, below 2**22 in magnitude: products below 2**44, every
    sum of these tests below 2**53 (so float64 sums are exact in any order)."""
    return rng.integers(-2**22, 2**22, (N, C, L)), rng.integers(-2**22, 2**22, (C, 1, K))


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
def test_depthwise_band_forward_exact_on_integers(mode, monkeypatch):
    """The depthwise band kernel (windows times band matrices of the taps, BLAS) on integer
    operands whose products sum below 2**53: bit for bit the exact int64 sums of direct loops
    (independent of fast.py), for output lengths that B = 16 and only B = 8 divide, dilations,
    odd/even taps and K = 1, with and without the caller's windows (``forward_columns``: the
    exact engine's form), written, negated and accumulated into ``out``, on one and two
    threads; asserts the band kernel ran. Fails with the band shifted by one tap or windows
    advancing by the wrong step."""
    used = []
    orig = fast._dw_forward_band
    monkeypatch.setattr(fast, "_dw_forward_band", lambda *a, **k: (used.append(1), orig(*a, **k))[1])
    rng = np.random.default_rng(11)
    for K, d, L, pad in _BAND_CASES:
        N, C = 3, 5
        x, w = _integer_depthwise(rng, N, C, L, K)
        spec = Conv1dSpec(padding=pad, groups=C, padding_mode=mode, dilation=d)
        L_out = L + 2 * pad - d * (K - 1)
        ry = _direct_depthwise(x, w, np.zeros((N, C, L_out)), pad, mode, 1, d)[0]  # int64: exact
        assert ry.dtype == np.int64 and ry.shape[-1] % 8 == 0
        geo, xb = fast._geometry(x.astype(float), w.astype(float), None, spec)
        xf, wf = xb.astype(float), w.astype(float)
        want = ry.astype(float).reshape(N, C, 1, -1)
        for workers in (1, 2):
            n0 = len(used)
            assert np.array_equal(fast.forward_raw(xf, wf, geo, mode, workers), want)
            cols = fast.forward_columns(xf, geo, mode, "test_win")
            out = np.full(want.shape, np.nan)
            fast.forward_raw(xf, wf, geo, mode, workers, out=out, assign=True, cols=cols)
            assert np.array_equal(out, want)
            fast.forward_raw(xf, wf, geo, mode, workers, out=out, negate=True, assign=True, cols=cols)
            assert np.array_equal(out, -want)
            out[...] = 7.0
            fast.forward_raw(xf, wf, geo, mode, workers, out=out, negate=True, cols=cols)
            assert np.array_equal(out, 7.0 - want)
            assert len(used) - n0 == 4


def test_depthwise_band_forward_leaves_nonfinite_inputs_to_the_filter():
    """Non-finite x or w (the band's zeros would turn an inf into NaN everywhere in its rows):
    the forward reaches exactly the outputs a direct loop gives it, at a length the band
    kernel would otherwise take."""
    rng = np.random.default_rng(12)
    for bad, where in [(np.inf, "x"), (np.nan, "x"), (-np.inf, "w")]:
        x, w = rng.standard_normal((2, 3, 32)), rng.standard_normal((3, 1, 5))
        (x if where == "x" else w)[1 if where == "x" else 2, 2 if where == "x" else 0][..., 17 if where == "x" else 3] = bad
        spec = Conv1dSpec(padding=2, groups=3)
        with np.errstate(invalid="ignore"):
            ry = _direct_depthwise(x, w, np.zeros((2, 3, 32)), 2, "zeros", 1, 1)[0]
        y = fast.conv1d_float64(x, w, None, spec, scales=(1.0,))
        assert np.array_equal(np.isnan(y), np.isnan(ry)) and np.array_equal(np.isinf(y), np.isinf(ry))
        fin = np.isfinite(ry)
        np.testing.assert_allclose(y[fin], ry[fin], rtol=0, atol=1e-13 * np.abs(ry[fin]).max())


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
def test_depthwise_band_grad_input_exact_on_integers(mode, monkeypatch):
    """Depthwise grad_x through the band kernel (gy correlated with the reversed taps; zeros
    mode: the interior directly, other modes: every padded position, then the padding
    adjoint) on integer operands: bit for bit the exact int64 sums of direct loops, with and
    without the caller's windows (``grad_input_columns``), written, negated and accumulated,
    on one and two threads; asserts the band kernel ran (and not for zeros padding wider than
    the taps' span, which it cannot express). Fails with the taps not reversed or the
    adjoint skipped."""
    used = []
    orig = fast._dw_forward_band
    monkeypatch.setattr(fast, "_dw_forward_band", lambda *a, **k: (used.append(1), orig(*a, **k))[1])
    rng = np.random.default_rng(13)
    bands = 0
    for K, d, L, pad in _BAND_CASES + [(3, 1, 22, 1), (5, 1, 30, 1), (3, 1, 24, 3), (4, 1, 24, "same"), (4, 1, 21, "same")]:
        N, C = 3, 5
        x, w = _integer_depthwise(rng, N, C, L, K)
        spec = Conv1dSpec(padding=pad, groups=C, padding_mode=mode, dilation=d)
        geo, _ = fast._geometry(x.astype(float), w.astype(float), None, spec)
        gy = rng.integers(-2**22, 2**22, (N, C, geo.L_out))
        rgx = _direct_depthwise(x, w, gy, (geo.pl, geo.pr), mode, 1, d)[1]  # int64: exact
        assert rgx.dtype == np.int64
        # the band's output: grad_x's interior (zeros; padding at most the span) or every padded position
        s = d * (K - 1)
        band = (L % 8 == 0 and max(geo.pl, geo.pr) <= s) if mode == "zeros" else geo.L_pad % 8 == 0
        bands += band
        gf, wf = gy.astype(float), w.astype(float)
        want = rgx.astype(float)
        for workers in (1, 2):
            n0 = len(used)
            assert np.array_equal(fast.grad_input_raw(gf, wf, geo, mode, workers), want)
            cols = fast.grad_input_columns(gf, geo, mode, "test_win")
            assert (cols is not None) == band
            out = np.full(want.shape, np.nan)
            fast.grad_input_raw(gf, wf, geo, mode, workers, out=out, cols=cols)
            assert np.array_equal(out, want)
            fast.grad_input_raw(gf, wf, geo, mode, workers, out=out, negate=True, cols=cols)
            assert np.array_equal(out, -want)
            out[...] = 7.0
            fast.grad_input_raw(gf, wf, geo, mode, workers, out=out, negate=True, accumulate=True, cols=cols)
            assert np.array_equal(out, 7.0 - want)
            assert len(used) - n0 == (4 if band else 0)
    assert bands >= 2


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
def test_depthwise_band_grad_weight_exact_on_integers(mode):
    """Depthwise grad_w from the caller's windows of x (the band products: one (B, L_out/B) @
    (L_out/B, B + span - 1) product per row, the diagonal of each tap summed over rows and
    batch) on integer operands: bit for bit the exact int64 sums of direct loops, for B 16
    and 8 (the forward's windows and grad_w's own, ``grad_weight_columns``: B 8), dilations,
    K 1-9, written, negated and accumulated. Fails with a tap's diagonal off by one or the
    batch sum dropped."""
    rng = np.random.default_rng(14)
    for K, d, L, pad in _BAND_CASES:
        N, C = 3, 5
        x, w = _integer_depthwise(rng, N, C, L, K)
        spec = Conv1dSpec(padding=pad, groups=C, padding_mode=mode, dilation=d)
        geo, _ = fast._geometry(x.astype(float), w.astype(float), None, spec)
        gy = rng.integers(-2**22, 2**22, (N, C, geo.L_out))
        rgw = _direct_depthwise(x, w, gy, pad, mode, 1, d)[2]  # int64: exact
        assert rgw.dtype == np.int64 and np.abs(rgw).max() > 2**44  # partial sums far beyond 2**24
        xf, gf = x.astype(float), gy.astype(float)
        for columns in (fast.forward_columns, fast.grad_weight_columns):
            cols = columns(xf, geo, mode, "test_win")
            assert cols is not None
            if columns is fast.grad_weight_columns:
                assert cols.shape[-2:] == (geo.L_out // 8, 8 + (K - 1) * d)
            want = rgw.astype(float).reshape(C, 1, 1, K)
            assert np.array_equal(fast.grad_weight_raw(gf, xf, geo, mode, cols=cols), want)
            out = np.full(want.shape, np.nan)
            fast.grad_weight_raw(gf, xf, geo, mode, out=out, negate=True, cols=cols)
            assert np.array_equal(out, -want)
            out[...] = 3.0
            fast.grad_weight_raw(gf, xf, geo, mode, out=out, accumulate=True, cols=cols)
            assert np.array_equal(out, 3.0 + want)


def test_tap_diagonals_are_the_taps_entries():
    """``_tap_diagonals`` (a strided view) against fancy indexing ``R[..., b, b + k d]``: B 16
    and 8, dilations 1-3, K 1-9, W = B + (K-1) d, leading axes; read-only. Fails with the
    diagonal's stride W instead of W + 1 or the taps' stride not scaled by the dilation."""
    rng = np.random.default_rng(21)
    for B, K, d in [(16, 9, 1), (8, 9, 1), (8, 5, 3), (16, 1, 1), (8, 4, 2)]:
        W = B + (K - 1) * d
        R = rng.standard_normal((3, 2, B, W))
        b = np.arange(B)[:, None]
        want = np.swapaxes(R[..., b, b + np.arange(K) * d], -1, -2)  # (..., K, B)
        got = fast._tap_diagonals(R, K, d)
        assert np.array_equal(got, want) and not got.flags.writeable


def test_dw_band_is_the_taps_band():
    """``_dw_band`` (taps written through :func:`fast._band_taps`'s strided view) against the
    definition ``M[g, a, b] = w[g, (a - b) / d]`` where ``a - b`` is a multiple ``k d`` of the
    dilation with ``k < K``, else 0, entry by entry: B 16 and 8, dilations 1-3, K 1-9. Fails
    with the diagonal's stride B instead of B + 1 or the taps' stride not scaled by the
    dilation."""
    from types import SimpleNamespace
    rng = np.random.default_rng(22)
    for L_out, K, d in [(2048, 9, 1), (24, 9, 1), (32, 5, 3), (16, 1, 1), (8, 4, 2), (40, 3, 2)]:
        geo = SimpleNamespace(K=K, dilation=d, stride=1, L_out=L_out)
        B = fast._band_width(geo)
        wr = rng.standard_normal((5, K))
        want = np.zeros((5, B + (K - 1) * d, B))
        for a in range(want.shape[1]):
            for b in range(B):
                j = a - b
                if 0 <= j < K * d and j % d == 0:
                    want[:, a, b] = wr[:, j // d]
        assert np.array_equal(fast._dw_band(wr, geo), want), (L_out, K, d)


def test_forward_band_is_the_kernels_band():
    """``forward_band`` gives :func:`fast._dw_band` of the weight (depthwise, band width
    dividing L_out) and None elsewhere (dense, stride 2); ``forward_raw`` with it equals
    ``forward_raw`` without it, assigning and accumulating. Fails if the band is built for the
    wrong channels, or for other geometries."""
    from usconv_ref.spec import Conv1dSpec, resolve_geometry
    rng = np.random.default_rng(23)
    x = rng.integers(-64, 64, (2, 6, 32)).astype(np.float64)
    w = rng.integers(-8, 8, (6, 1, 5)).astype(np.float64)
    geo = resolve_geometry(x.shape, w.shape, None, Conv1dSpec(padding=2, groups=6))
    M = fast.forward_band(w, geo)
    assert M is not None and np.array_equal(M, fast._dw_band(w.reshape(6, 5), geo))
    want = fast.forward_raw(x, w, geo, "zeros")
    assert np.array_equal(fast.forward_raw(x, w, geo, "zeros", bands=M), want)
    acc = np.ones_like(want)
    fast.forward_raw(x, w, geo, "zeros", out=acc, bands=M)
    assert np.array_equal(acc, want + 1)
    w2 = rng.integers(-8, 8, (4, 6, 5)).astype(np.float64)
    assert fast.forward_band(w2, resolve_geometry(x.shape, w2.shape, None, Conv1dSpec(padding=2))) is None
    assert fast.forward_band(w, resolve_geometry(x.shape, w.shape, None, Conv1dSpec(padding=2, groups=6, stride=2))) is None
