"""``Conv1d`` module (SPEC §8): parameters with ``.mup_type`` and ``.grad``, PyTorch-style
gradient accumulation. Forward/backward are :func:`usconv_ref.conv1d` /
:func:`usconv_ref.conv1d_backward` on the stored input.
"""
from __future__ import annotations

import numpy as np

from .dtypes import case_dtype, from_float64_parts, to_float64_parts
from .numerics import round_float64
from .ops import conv1d, conv1d_backward
from .spec import Conv1dSpec


class Parameter:
    """An array with its u-μP type (``"weight"``, ``"bias"``, ``"norm"``, ``"output"``)
    and an accumulated gradient (None until the first backward)."""

    def __init__(self, data: np.ndarray, mup_type: str):
        self.data = data
        self.mup_type = mup_type
        self.grad: np.ndarray | None = None

    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    def __array__(self, dtype=None, copy=None):
        return self.data if dtype is None else self.data.astype(dtype)

    def __repr__(self) -> str:
        return f"Parameter(mup_type={self.mup_type!r}, shape={self.shape}, dtype={self.dtype})"


def _round_into(re: np.ndarray, im: np.ndarray | None, cd) -> np.ndarray:
    """float64 parts rounded once into case dtype ``cd``."""
    r = round_float64(re, cd.part)
    i = None if im is None else round_float64(im, cd.part)
    return from_float64_parts(r, i, cd)


def _accumulate(old: np.ndarray | None, new: np.ndarray, cd) -> np.ndarray:
    """``old + new`` rounded once into the dtype (IEEE addition, as ``.grad +=``)."""
    if old is None:
        return new
    (ore, oim), (nre, nim) = to_float64_parts(old, cd), to_float64_parts(new, cd)
    if cd.part.precision == 53:  # float64 addition is already correctly rounded
        return from_float64_parts(ore + nre, None if oim is None else oim + nim, cd)
    return _round_into(ore + nre, None if oim is None else oim + nim, cd)  # exact in float64


class Conv1d:
    """Unit-scaled conv1d layer. Weight ``(out_channels, in_channels/groups, kernel_size)``
    drawn from N(0, 1) with ``np.random.default_rng(seed)`` (complex: real and imaginary
    parts N(0, 1/2), so E|w|^2 = 1), rounded once into ``dtype``; bias zeros."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride=1, padding=0,
                 dilation=1, groups=1, bias: bool = False, padding_mode="zeros", dtype=np.float32,
                 constraint="to_output_scale", weight_mup_type="weight", seed=None):
        self.spec = Conv1dSpec(stride, padding, dilation, groups, padding_mode, constraint)
        for name, v in (("in_channels", in_channels), ("out_channels", out_channels), ("kernel_size", kernel_size)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise TypeError(f"{name}: expected an int >= 1, got {v!r}")
            if v < 1:
                raise ValueError(f"{name}: expected an int >= 1, got {v!r}")
        if in_channels % self.spec.groups or out_channels % self.spec.groups:
            raise ValueError(f"groups: expected in_channels ({in_channels}) and out_channels ({out_channels}) divisible by groups ({self.spec.groups})")
        if weight_mup_type not in ("weight", "bias", "norm", "output"):
            raise ValueError(f"weight_mup_type: expected 'weight', 'bias', 'norm' or 'output', got {weight_mup_type!r}")
        self.dtype = case_dtype(dtype)
        shape = (out_channels, in_channels // self.spec.groups, kernel_size)
        rng = np.random.default_rng(seed)
        if self.dtype.is_complex:
            parts = rng.standard_normal((2,) + shape) * np.sqrt(0.5)
            w = _round_into(parts[0], parts[1], self.dtype)
        else:
            w = _round_into(rng.standard_normal(shape), None, self.dtype)
        self.weight = Parameter(w, weight_mup_type)
        self.bias = None
        if bias:
            zeros = np.zeros(out_channels)
            self.bias = Parameter(from_float64_parts(zeros, zeros if self.dtype.is_complex else None, self.dtype), "bias")
        self._input = None

    def parameters(self) -> list[Parameter]:
        return [self.weight] + ([self.bias] if self.bias is not None else [])

    def _kw(self) -> dict:
        s = self.spec
        return dict(stride=s.stride, padding=s.padding, dilation=s.dilation, groups=s.groups,
                    padding_mode=s.padding_mode, constraint=s.constraint, scale_power=s.scale_power)

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._input = x
        return conv1d(x, self.weight.data, None if self.bias is None else self.bias.data, **self._kw())

    __call__ = forward

    def backward(self, grad_y: np.ndarray) -> np.ndarray:
        """Gradient w.r.t. the last forward's input; adds the parameter gradients into
        ``.grad`` (PyTorch semantics)."""
        if self._input is None:
            raise RuntimeError("backward called before forward")
        b = None if self.bias is None else self.bias.data
        gx, gw, gb = conv1d_backward(grad_y, self._input, self.weight.data, b, **self._kw())
        self.weight.grad = _accumulate(self.weight.grad, gw, self.dtype)
        if self.bias is not None:
            self.bias.grad = _accumulate(self.bias.grad, gb, self.dtype)
        return gx

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None
