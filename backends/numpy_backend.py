"""The reference itself as a backend: correctly rounded, so its class is ``exact``."""
from __future__ import annotations

from usconv_ref import conv1d, conv1d_backward
from usconv_ref.compare import EXACT

from . import Backend, Capabilities


def spec_kwargs(spec) -> dict:
    return dict(stride=spec.stride, padding=spec.padding, dilation=spec.dilation, groups=spec.groups,
                padding_mode=spec.padding_mode, constraint=spec.constraint, scale_power=spec.scale_power)


class NumpyBackend(Backend):
    name = "numpy"

    def capabilities(self) -> Capabilities:
        return Capabilities()

    def precision(self, dtype, tensor, spec):
        return EXACT

    def conv1d(self, x, w, b, spec):
        return conv1d(x, w, b, **spec_kwargs(spec))

    def conv1d_backward(self, gy, x, w, b, spec):
        return conv1d_backward(gy, x, w, b, **spec_kwargs(spec))

    def describe(self) -> str:
        import numpy
        return f"numpy {numpy.__version__} (usconv_ref exact reference)"
