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
