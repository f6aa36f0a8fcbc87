"""The plain fast path: the op in float64/complex128 with BLAS (``einsum``). NOT exact —
summation order and rounding are BLAS's — and never the reference's default. Used for
error bounds (the op on absolute values), term counts (the op on ones) and as a quick
sanity check on large problems.
"""
from __future__ import annotations

import numpy as np

from .padding import forward_positions, source_index
from .scaling import exact_unit_scales
from .spec import Conv1dSpec, Geometry, resolve_geometry


def _padded(x: np.ndarray, geo: Geometry, mode: str) -> np.ndarray:
    src = source_index(geo.L, geo.pl, geo.pr, mode)
    xp = x[:, :, np.maximum(src, 0)]
    xp[:, :, src < 0] = 0
    return xp


def _windows(xp: np.ndarray, geo: Geometry) -> np.ndarray:
    """``(N, G, Cg, L_out, K)`` view-gather of the padded input."""
    pos = forward_positions(geo.L_out, geo.K, geo.stride, geo.dilation)
    return xp[:, :, pos].reshape(geo.N, geo.groups, geo.Cg, geo.L_out, geo.K)


def _geometry(x, w, b, spec):
    geo = resolve_geometry(x.shape, w.shape, None if b is None else b.shape, spec)
    xb = x if geo.batched else x[None]
    return geo, xb


def conv1d_float64(x, w, b, spec: Conv1dSpec, scales=None) -> np.ndarray:
    """Forward in float64 (complex128 for complex inputs), BLAS order. ``scales`` overrides
    ``(s_out,)`` (floats); default: the unit scales rounded to float64."""
    geo, xb = _geometry(x, w, b, spec)
    s_out = float(exact_unit_scales(geo, spec).output) if scales is None else scales[0]
    win = _windows(_padded(xb, geo, spec.padding_mode), geo)
    wg = w.reshape(geo.groups, geo.Og, geo.Cg, geo.K)
    y = np.einsum("ngclk,gock->ngol", win, wg, optimize=True).reshape(geo.N, geo.C_out, geo.L_out)
    if b is not None:
        y = y + b[None, :, None]
    y = y * s_out
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
    win = _windows(_padded(xb, geo, spec.padding_mode), geo)
    gyg = gyb.reshape(geo.N, geo.groups, geo.Og, geo.L_out)
    wg = w.reshape(geo.groups, geo.Og, geo.Cg, geo.K)
    gw = np.einsum("ngol,ngclk->gock", gyg, np.conj(win), optimize=True).reshape(w.shape) * s_gw
    gwin = np.einsum("ngol,gock->ngclk", gyg, np.conj(wg), optimize=True).reshape(geo.N, geo.C_in, geo.L_out, geo.K)
    pos = forward_positions(geo.L_out, geo.K, geo.stride, geo.dilation)
    gxp = np.zeros((geo.N, geo.C_in, geo.L_pad), gwin.dtype)
    for k in range(geo.K):  # scatter-add the taps into padded positions
        np.add.at(gxp, (slice(None), slice(None), pos[:, k]), gwin[:, :, :, k])
    src = source_index(geo.L, geo.pl, geo.pr, spec.padding_mode)
    gx = np.zeros(xb.shape, gwin.dtype)
    keep = src >= 0
    np.add.at(gx, (slice(None), slice(None), src[keep]), gxp[:, :, keep])  # padding adjoint
    gx *= s_gx
    gb = None if b is None else gyb.sum(axis=(0, 2)) * s_gw
    return (gx if geo.batched else gx[0]), gw, gb
