"""The reference against independent implementations of the op's meaning: scipy's
correlate, PyTorch float64/complex128 autograd (scales applied by hand), the adjoint
identity, finite differences, and upstream's unit-scale property."""
from __future__ import annotations

import itertools
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest
import scipy.signal

import usconv_ref as ur

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _bound(x, w, b, kw):
    """|s_out| * (sum |x||w| + |b|) per output element, by the reference on |values|
    rounded to float64 — the scale of rounding errors of a float64 computation."""
    ab = None if b is None else np.abs(b)
    return ur.conv1d(np.abs(x), np.abs(w), ab, out_dtype=np.float64, **kw)


def torch_reference(x, w, b, gy, kw):
    """y, grad_x, grad_w, grad_b by torch autograd (float64/complex128), SPEC scales by hand."""
    stride, dilation, groups = kw.get("stride", 1), kw.get("dilation", 1), kw.get("groups", 1)
    padding, mode = kw.get("padding", 0), kw.get("padding_mode", "zeros")
    p0, p1, p2 = kw.get("scale_power", (0.5, 0.5, 0.5))
    C_out, Cg, K = w.shape
    if padding == "same":
        tot = dilation * (K - 1)
        pl, pr = tot // 2, tot - tot // 2
    elif padding == "valid":
        pl = pr = 0
    else:
        pl = pr = padding
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    bt = None if b is None else torch.tensor(b, requires_grad=True)
    xp = F.pad(xt, (pl, pr), mode="constant" if mode == "zeros" else mode)
    raw = F.conv1d(xp, wt, bt, stride=stride, dilation=dilation, groups=groups)
    L_out = raw.shape[-1]
    s_out = (Cg * K) ** -p0
    s_gx = (stride * groups / (C_out * K)) ** p1
    s_gw = (x.shape[0] * L_out) ** -p2
    c = kw.get("constraint", "to_output_scale")
    s = {None: (s_out, s_gx), "to_output_scale": (s_out, s_out), "to_grad_input_scale": (s_gx, s_gx),
         "gmean": ((s_out * s_gx) ** 0.5,) * 2, "amean": ((s_out + s_gx) / 2,) * 2,
         "hmean": (2 / (1 / s_out + 1 / s_gx),) * 2}[c]
    raw.backward(torch.tensor(gy))
    return (raw.detach().numpy() * s[0], xt.grad.numpy() * s[1], wt.grad.numpy() * s_gw,
            None if b is None else bt.grad.numpy() * s_gw)


CASES = [
    dict(padding=2),
    dict(padding=1, padding_mode="reflect", stride=2, groups=2),
    dict(padding="same", padding_mode="replicate", dilation=2, groups=4, constraint="gmean"),
    dict(padding=3, padding_mode="circular", stride=3, dilation=2, constraint=None),
    dict(padding="valid", stride=4, constraint="hmean", scale_power=(0.7, 0.2, 1.0)),
    dict(padding=4, padding_mode="reflect", dilation=3, constraint="amean"),
    dict(padding="same", padding_mode="circular", constraint="to_grad_input_scale"),
]


@pytest.mark.parametrize("complex_", [False, True])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_against_torch_float64_autograd(case, complex_):
    """Forward and all three gradients agree with torch (float64/complex128) to within
    a few float64 rounding errors of the absolute-value bound — incl. the conj convention."""
    kw = CASES[case]
    rng = np.random.default_rng(case)
    groups = kw.get("groups", 1)
    N, C_in, C_out, L, K = 3, 4, 8, 13, 3

    def draw(shape):
        a = rng.standard_normal(shape)
        return a + 1j * rng.standard_normal(shape) if complex_ else a

    x, w, b = draw((N, C_in, L)), draw((C_out, C_in // groups, K)), draw((C_out,))
    y = ur.conv1d(x, w, b, **kw)
    gy = draw(y.shape)
    gx, gw, gb = ur.conv1d_backward(gy, x, w, b, **kw)
    ty, tgx, tgw, tgb = torch_reference(x, w, b, gy, kw)
    bound_y = _bound(x, w, b, kw)
    assert np.all(np.abs(y - ty) <= 1e-13 * (bound_y + 1e-300)), "forward"
    for got, want in ((gx, tgx), (gw, tgw), (gb, tgb)):
        assert got.shape == want.shape
        scale = np.abs(want).max() + 1e-300
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-13 * scale * N * L)


def test_against_scipy_correlate():
    """Plain forward (groups=1, zeros padding): y[n,o] = s * sum_c correlate(xp[n,c], w[o,c], 'valid')."""
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((2, 3, 20)), rng.standard_normal((4, 3, 5))
    y = ur.conv1d(x, w, padding=2)
    xp = np.pad(x, ((0, 0), (0, 0), (2, 2)))
    want = np.zeros_like(y)
    for n, o in itertools.product(range(2), range(4)):
        want[n, o] = sum(scipy.signal.correlate(xp[n, c], w[o, c], mode="valid") for c in range(3))
    want *= 15**-0.5
    np.testing.assert_allclose(y, want, rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("complex_", [False, True])
def test_adjoint_identity_exact(mode, complex_):
    """With scale 1 and small integers every result is exact, so
    <conv(x), g> == <x, grad_x(g)> and <conv_w(w), g> == <w, grad_w(g)> hold EXACTLY
    (Fractions), for every padding mode's adjoint, stride, dilation and groups."""
    rng = np.random.default_rng(11)
    kw = dict(padding=2, padding_mode=mode, stride=2, dilation=2, groups=2, constraint=None, scale_power=(0, 0, 0))

    def draw(shape):
        a = rng.integers(-8, 9, shape).astype(np.float64)
        return a + 1j * rng.integers(-8, 9, shape) if complex_ else a

    x, w = draw((2, 4, 9)), draw((6, 2, 3))
    y = ur.conv1d(x, w, **kw)
    g = draw(y.shape)
    gx, gw, _ = ur.conv1d_backward(g, x, w, **kw)
    fr = lambda a: [(Fraction(float(v.real)), Fraction(float(v.imag))) for v in np.asarray(a, np.complex128).ravel()]
    def inner(a, b):  # sum conj(b) * a, exactly
        pairs = list(zip(fr(a), fr(b)))
        return (sum(ar * br + ai * bi for (ar, ai), (br, bi) in pairs),
                sum(ai * br - ar * bi for (ar, ai), (br, bi) in pairs))
    assert inner(y, g) == inner(x, gx)
    assert inner(y, g) == inner(w, gw)


def test_complex_gradients_by_finite_differences():
    """PyTorch's convention: for L = Re(sum conj(g) * y), x.grad = dL/dRe(x) + i dL/dIm(x).
    L is linear, so central differences are exact up to float64 rounding."""
    rng = np.random.default_rng(2)
    c = lambda s: rng.standard_normal(s) + 1j * rng.standard_normal(s)
    kw = dict(padding=1, padding_mode="reflect", stride=2, constraint=None)
    x, w, b = c((1, 2, 7)), c((2, 2, 3)), c((2,))
    y = ur.conv1d(x, w, b, **kw)
    g = c(y.shape)
    gx, gw, gb = ur.conv1d_backward(g, x, w, b, **kw)
    s_out, s_gx, s_gw = (2 * 3) ** -0.5, (2 / (2 * 3)) ** 0.5, (1 * y.shape[-1]) ** -0.5
    loss = lambda xx, ww, bb: np.real(np.sum(np.conj(g) * ur.conv1d(xx, ww, bb, out_dtype=np.complex128, **kw)))
    h = 1e-3
    for arr, grad, scale, name in ((x, gx, s_gx, "x"), (w, gw, s_gw, "w"), (b, gb, s_gw, "b")):
        for idx in list(np.ndindex(arr.shape))[:6]:
            num = 0j
            for part in (1, 1j):
                d = np.zeros_like(arr)
                d[idx] = h * part
                args = {"x": (x, w, b), "w": (x, w, b), "b": (x, w, b)}[name]
                plus = [a + d if a is arr else a for a in args]
                minus = [a - d if a is arr else a for a in args]
                num += part * (loss(*plus) - loss(*minus)) / (2 * h)
            # grads carry their own scale instead of s_out
            assert abs(num / s_out * scale - grad[idx]) < 1e-9, (name, idx)


def test_unit_scale_property():
    """As upstream tests it: unit-normal inputs, constraint=None -> std of y, grad_x,
    grad_w and grad_b close to 1."""
    rng = np.random.default_rng(0)
    N, C, L, K = 16, 32, 64, 5
    x = rng.standard_normal((N, C, L)).astype(np.float32)
    w = rng.standard_normal((C, C, K)).astype(np.float32)
    b = rng.standard_normal(C).astype(np.float32)
    y = ur.conv1d(x, w, None, padding=2, constraint=None)
    gy = rng.standard_normal(y.shape).astype(np.float32)
    gx, gw, gb = ur.conv1d_backward(gy, x, w, b, padding=2, constraint=None)
    for name, a in (("y", y), ("grad_x", gx), ("grad_w", gw), ("grad_b", gb)):
        assert abs(np.std(a.astype(np.float64)) - 1) < 0.2, name


def test_layout_and_threads_bitwise_identical(tmp_path):
    """C-ordered, Fortran-ordered and non-contiguous inputs give identical bits; so do runs
    with 1 and 2 threads (separate processes)."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 4, 33)).astype(np.float32)
    w = rng.standard_normal((4, 2, 5)).astype(np.float32)
    gy = rng.standard_normal((2, 4, 33)).astype(np.float32)
    kw = dict(padding=2, groups=2, padding_mode="reflect")
    ref = ur.conv1d(x, w, **kw), *ur.conv1d_backward(gy, x, w, **kw)[:2]
    big = np.zeros((2, 4, 66), np.float32)
    big[:, :, ::2] = x
    for xv, wv, gv in ((np.asfortranarray(x), np.asfortranarray(w), np.asfortranarray(gy)),
                       (big[:, :, ::2], w[:, :, ::-1][:, :, ::-1], gy[::-1][::-1])):
        got = ur.conv1d(xv, wv, **kw), *ur.conv1d_backward(gv, xv, wv, **kw)[:2]
        for a, b in zip(ref, got):
            assert a.tobytes() == b.tobytes()
    np.savez(tmp_path / "in.npz", x=x, w=w, gy=gy)
    code = (
        "import numpy as np, usconv_ref as ur, sys\n"
        f"d = np.load({str(tmp_path / 'in.npz')!r})\n"
        "kw = dict(padding=2, groups=2, padding_mode='reflect')\n"
        "r = [ur.conv1d(d['x'], d['w'], **kw), *ur.conv1d_backward(d['gy'], d['x'], d['w'], **kw)[:2]]\n"
        "sys.stdout.write(''.join(a.tobytes().hex() for a in r))\n")
    outs = set()
    for threads in ("1", "2"):
        env = {"OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads, "MKL_NUM_THREADS": threads,
               "PATH": "/usr/bin:/bin"}
        outs.add(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
                                cwd=str(__import__("pathlib").Path(__file__).parents[1])).stdout)
    assert len(outs) == 1 and outs.pop() == "".join(a.tobytes().hex() for a in ref)
