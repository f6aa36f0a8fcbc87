"""The plain fast path: the op in float64/complex128 with BLAS. NOT exact — summation order
and rounding are BLAS's — and never the reference's default. Used for error bounds (the op
on absolute values), term counts (the op on ones) and for large problems.

Each direction is a loop over the K taps of strided views of the padded input (no im2col
copy): per tap one batched matrix product over the group's channels (``np.matmul``), or an
element-wise multiply-add when a group has one input and one output channel (depthwise).
"""
from __future__ import annotations

import numpy as np

from .padding import source_index
from .scaling import exact_unit_scales
from .spec import Conv1dSpec, Geometry, resolve_geometry


def _padded(x: np.ndarray, geo: Geometry, mode: str) -> np.ndarray:
    """``xp``: (N, C, L_pad), padding applied once (SPEC §2)."""
    if mode == "zeros":
        xp = np.zeros(x.shape[:2] + (geo.L_pad,), x.dtype)
        xp[:, :, geo.pl:geo.pl + geo.L] = x
        return xp
    return x[:, :, source_index(geo.L, geo.pl, geo.pr, mode)]


def _tap(a: np.ndarray, geo: Geometry, k: int) -> np.ndarray:
    """The strided view of padded positions ``t*stride + k*dilation`` for t < L_out."""
    start = k * geo.dilation
    return a[..., start:start + geo.stride * (geo.L_out - 1) + 1:geo.stride]


def _geometry(x, w, b, spec):
    geo = resolve_geometry(x.shape, w.shape, None if b is None else b.shape, spec)
    xb = x if geo.batched else x[None]
    return geo, xb


def conv1d_float64(x, w, b, spec: Conv1dSpec, scales=None) -> np.ndarray:
    """Forward in float64 (complex128 for complex inputs), BLAS order. ``scales`` overrides
    ``(s_out,)`` (floats); default: the unit scale rounded to float64."""
    geo, xb = _geometry(x, w, b, spec)
    s_out = float(exact_unit_scales(geo, spec).output) if scales is None else scales[0]
    xp = _padded(xb, geo, spec.padding_mode).reshape(geo.N, geo.groups, geo.Cg, geo.L_pad)
    wg = w.reshape(geo.groups, geo.Og, geo.Cg, geo.K)
    dtype = np.result_type(xb, w, np.float64)
    y = np.zeros((geo.N, geo.groups, geo.Og, geo.L_out), dtype)
    depthwise = geo.Cg == 1 and geo.Og == 1
    for k in range(geo.K):
        xs = _tap(xp, geo, k)  # (N, G, Cg, L_out)
        if depthwise:
            y += wg[None, :, :, 0, k, None] * xs
        else:
            y += np.matmul(wg[:, :, :, k], xs)  # (G, Og, Cg) @ (N, G, Cg, L_out)
    y = y.reshape(geo.N, geo.C_out, geo.L_out)
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
    dtype = np.result_type(xb, w, gyb, np.float64)
    xp = _padded(xb, geo, spec.padding_mode).reshape(geo.N, geo.groups, geo.Cg, geo.L_pad)
    gyg = gyb.reshape(geo.N, geo.groups, geo.Og, geo.L_out)
    wg = np.conj(w.reshape(geo.groups, geo.Og, geo.Cg, geo.K))
    gw = np.zeros((geo.groups, geo.Og, geo.Cg, geo.K), dtype)
    gxp = np.zeros((geo.N, geo.groups, geo.Cg, geo.L_pad), dtype)
    depthwise = geo.Cg == 1 and geo.Og == 1
    for k in range(geo.K):
        xs = np.conj(_tap(xp, geo, k))  # (N, G, Cg, L_out)
        gxs = _tap(gxp, geo, k)  # a view: adding into it scatters into the padded positions
        if depthwise:
            gw[:, 0, 0, k] = np.einsum("ngt,ngt->g", gyg[:, :, 0], xs[:, :, 0])
            gxs += gyg * wg[None, :, :, :, k]
        else:
            gw[:, :, :, k] = np.einsum("ngot,ngct->goc", gyg, xs, optimize=True)
            gxs += np.matmul(np.swapaxes(wg[:, :, :, k], -1, -2), gyg)  # (G, Cg, Og) @ (N, G, Og, L_out)
    gw = gw.reshape(w.shape) * s_gw
    gxp = gxp.reshape(geo.N, geo.C_in, geo.L_pad)
    if spec.padding_mode == "zeros":
        gx = gxp[:, :, geo.pl:geo.pl + geo.L].copy()
    else:  # padding adjoint: every copy sends its gradient back to its source
        gx = np.zeros(xb.shape, dtype)
        np.add.at(gx, (slice(None), slice(None), source_index(geo.L, geo.pl, geo.pr, spec.padding_mode)), gxp)
    gx *= s_gx
    gb = None if b is None else gyb.sum(axis=(0, 2)) * s_gw
    return (gx if geo.batched else gx[0]), gw, gb
