"""Public op functions (SPEC §8): ``conv1d``, ``conv1d_backward``, ``unit_scales``.

Each validates everything first (dtypes, shapes, hyperparameters), then evaluates the
exact contractions of :mod:`usconv_ref.correlation` and rounds once into ``out_dtype``.
``exact_forward`` / ``exact_backward`` return the exact tensors unrounded, so one
evaluation can be rounded into several dtypes (golden data).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import correlation
from .correlation import ExactTensor, Operands, Sources
from .dtypes import CaseDtype, case_dtype
from .scaling import UnitScales, exact_unit_scales
from .spec import Conv1dSpec, Geometry, resolve_geometry


@dataclass(frozen=True)
class Prepared:
    """Validated inputs of one call: geometry, case dtype, the arrays (batched)."""

    geo: Geometry
    dtype: CaseDtype
    sources: Sources

    @property
    def mantissa_bits(self) -> int:
        return self.sources.mantissa_bits

    @property
    def ops(self) -> Operands:
        """float64 parts of x, w, b (converted on each access)."""
        return self.sources.operands()


def _as_array(name: str, a) -> np.ndarray:
    if isinstance(a, np.ndarray):
        return a
    try:
        return np.asarray(a)
    except Exception as exc:  # noqa: BLE001 - report what could not be converted
        raise TypeError(f"{name}: expected an array, got {type(a).__name__}: {exc}") from None


def _common_dtype(arrays: dict[str, np.ndarray]) -> CaseDtype:
    """The one case dtype shared by all arrays (SPEC §6), else TypeError naming them."""
    dts = {name: a.dtype for name, a in arrays.items()}
    cds = {}
    for name, dt in dts.items():
        try:
            cds[name] = case_dtype(dt)
        except TypeError:
            raise TypeError(
                f"{name}: unsupported dtype {dt}; expected float16, bfloat16, float32, float64, "
                f"complex32, complex64 or complex128"
            ) from None
    if len({cd.name for cd in cds.values()}) > 1:
        listing = ", ".join(f"{n}={cd.name}" for n, cd in cds.items())
        raise TypeError(f"all arrays must share one dtype, got {listing}")
    return next(iter(cds.values()))


def prepare(input, weight, bias, spec: Conv1dSpec, extra: dict | None = None) -> tuple[Prepared, dict]:
    """Validate and convert. ``extra`` holds more arrays of the case dtype (grad_output)."""
    arrays = {"input": _as_array("input", input), "weight": _as_array("weight", weight)}
    if bias is not None:
        arrays["bias"] = _as_array("bias", bias)
    for k, v in (extra or {}).items():
        arrays[k] = _as_array(k, v)
    cd = _common_dtype(arrays)
    x, w = arrays["input"], arrays["weight"]
    geo = resolve_geometry(x.shape, w.shape, None if bias is None else arrays["bias"].shape, spec)
    xb = x if geo.batched else x[None]
    gy = arrays.get("grad_output")
    if gy is not None:
        if tuple(gy.shape) != geo.y_shape:
            raise ValueError(f"grad_output: expected shape {geo.y_shape} (the output's), got {tuple(gy.shape)}")
        gy = gy if geo.batched else gy[None]
    src = Sources(cd, xb, w, arrays.get("bias"), gy)
    return Prepared(geo, cd, src), arrays


def _out_dtype(out_dtype, cd: CaseDtype) -> CaseDtype:
    if out_dtype is None:
        return cd
    od = case_dtype(out_dtype)
    if od.is_complex != cd.is_complex:
        raise TypeError(f"out_dtype: expected a {'complex' if cd.is_complex else 'real'} dtype for {cd.name} inputs, got {od.name}")
    return od


def _spec(kw) -> Conv1dSpec:
    return kw if isinstance(kw, Conv1dSpec) else Conv1dSpec(**kw)


def exact_forward(input, weight, bias, spec: Conv1dSpec) -> tuple[Prepared, ExactTensor]:
    prep, _ = prepare(input, weight, bias, spec)
    scales = exact_unit_scales(prep.geo, spec)
    return prep, correlation.forward_exact(prep.geo, prep.sources, spec.padding_mode, scales.output)


def exact_backward(grad_output, input, weight, bias, spec: Conv1dSpec):
    """``(prep, grad_x, grad_w, grad_b or None)`` as :class:`ExactTensor` s (batched shapes)."""
    prep, _ = prepare(input, weight, bias, spec, {"grad_output": grad_output})
    geo, src, mode = prep.geo, prep.sources, spec.padding_mode
    scales = exact_unit_scales(geo, spec)
    gx = correlation.grad_input_exact(geo, src, mode, scales.grad_input)
    gw = correlation.grad_weight_exact(geo, src, mode, scales.grad_weight)
    gb = correlation.grad_bias_exact(geo, src, scales.grad_weight) if bias is not None else None
    return prep, gx, gw, gb


def _unbatch(a: np.ndarray, geo: Geometry) -> np.ndarray:
    return a if geo.batched else a[0]


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
           padding_mode="zeros", constraint="to_output_scale", scale_power=(0.5, 0.5, 0.5),
           out_dtype=None) -> np.ndarray:
    """Unit-scaled conv1d forward (SPEC §3):
    ``y[n,o,t] = s_out * (sum_{c,k} w[o,c,k] * xp[n, g(o)*Cg + c, t*stride + k*dilation] + b[o])``,
    every element the exact value rounded once into ``out_dtype`` (default: input dtype)."""
    spec = Conv1dSpec(stride, padding, dilation, groups, padding_mode, constraint, scale_power)
    prep, y = exact_forward(input, weight, bias, spec)
    od = _out_dtype(out_dtype, prep.dtype)
    return _unbatch(y.round(od), prep.geo)


def conv1d_backward(grad_output, input, weight, bias=None, stride=1, padding=0, dilation=1,
                    groups=1, padding_mode="zeros", constraint="to_output_scale",
                    scale_power=(0.5, 0.5, 0.5), out_dtype=None):
    """Gradients (SPEC §5) ``(grad_input, grad_weight, grad_bias or None)``:
    ``grad_x = s_gx * padding_adjoint(transposed conv of gy with conj(w))``,
    ``grad_w[o,c,k] = s_gw * sum_{n,t} gy[n,o,t] * conj(xp[...])``,
    ``grad_b[o] = s_gw * sum_{n,t} gy[n,o,t]``; each element rounded once."""
    spec = Conv1dSpec(stride, padding, dilation, groups, padding_mode, constraint, scale_power)
    prep, gx, gw, gb = exact_backward(grad_output, input, weight, bias, spec)
    od = _out_dtype(out_dtype, prep.dtype)
    return (_unbatch(gx.round(od), prep.geo), gw.round(od), None if gb is None else gb.round(od))


def unit_scales(input_shape, weight_shape, stride=1, padding=0, dilation=1, groups=1,
                padding_mode="zeros", constraint="to_output_scale", scale_power=(0.5, 0.5, 0.5),
                out_dtype=None) -> UnitScales:
    """The four unit scales (SPEC §4) after the constraint, each correctly rounded to
    float64 from its exact value. ``out_dtype`` is accepted for keyword symmetry and ignored."""
    spec = Conv1dSpec(stride, padding, dilation, groups, padding_mode, constraint, scale_power)
    geo = resolve_geometry(input_shape, weight_shape, None, spec)
    return exact_unit_scales(geo, spec).as_floats(spec.scale_power[2])
