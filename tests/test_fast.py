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
    Lp = L + 2 * pad
    idx = np.pad(np.arange(L), pad, mode=_NP_PAD[mode]) if mode != "zeros" else None
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad)), mode=_NP_PAD[mode])
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
        gx = gxp[..., pad:pad + L]
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
