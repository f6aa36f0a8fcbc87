"""The upstream library itself: ``unit_scaling`` (Graphcore) 0.3.5, an optional dependency.

- ``unit_scaling`` — the functional path ``unit_scaling.functional.conv1d`` (non-zero padding
  modes and 'same' through ``F.pad`` once, then padding=0). Upstream multiplies the raw
  convolution by its scales afterwards (two roundings into the dtype, forward scale in
  float32 "opmath") and stores the backward scales as tensors of the input dtype
  (``torch.tensor(scale, dtype=X.dtype)``): declared as ``scale_dtype`` = the input's part format.
- ``unit_scaling-module`` — ``unit_scaling.Conv1d``. Int padding only and no ``scale_power``
  (capabilities: such cases are skipped). Known deviations (reported, never hidden): it pads
  twice for reflect/replicate/circular (``F.pad`` then the zero padding again), and it ignores
  its ``constraint`` argument (always ``to_output_scale``).
"""
from __future__ import annotations

from dataclasses import replace

from . import KnownDeviation
from .torch_backend import TorchBackend, _torch


def _unit_scaling():
    import unit_scaling
    return unit_scaling


class UnitScalingFunctional(TorchBackend):
    device_name = "cpu"
    label = "unit_scaling"

    def __init__(self, device: str = "cpu", **kw):
        super().__init__(device_name=device, **kw)
        self.name = self.label if device == "cpu" else f"{self.label}-{device}"

    def availability(self):
        try:
            _unit_scaling()
        except Exception as exc:  # noqa: BLE001 - ImportError or a broken install
            return False, f"unit_scaling not installed ({type(exc).__name__}: {exc})"
        return super().availability()

    def describe(self):
        import importlib.metadata as md
        return f"unit_scaling {md.version('unit-scaling')} on " + super().describe()

    def precision(self, dtype, tensor, spec):
        cls = super().precision(dtype, tensor, spec)
        if tensor != "y":  # backward scales are tensors of the input dtype
            from usconv_ref.dtypes import case_dtype
            cls = replace(cls, name=cls.name + "+scale-in-dtype", scale_dtype=case_dtype(dtype).part.name)
        return cls

    def known_deviations(self):
        # torch's: the unscaled sum overflows before the scale (unit_scaling scales afterwards too)
        return super().known_deviations() + [
            KnownDeviation("*batch-0*", "unit_scaling divides by B*L_out = 0 (ZeroDivisionError) for an empty "
                                        "batch, where the gradients are empty sums (SPEC §5)")]

    def _call(self, x, w, b, spec):
        U = _unit_scaling().functional
        F = _torch().nn.functional
        pl, pr = spec.resolve_padding(w.shape[-1])
        mode = "constant" if spec.padding_mode == "zeros" else spec.padding_mode
        xp = F.pad(x, (pl, pr), mode=mode) if (pl or pr) else x
        return U.conv1d(xp, w, b, spec.stride, 0, spec.dilation, spec.groups, constraint=spec.constraint,
                        scale_power=spec.scale_power)

    def conv1d(self, x, w, b, spec):
        from usconv_ref.dtypes import case_dtype
        torch = _torch()
        with self._flags(), torch.no_grad():
            y = self._call(self._to_torch(x), self._to_torch(w), self._to_torch(b), spec)
        return self._to_numpy(y, case_dtype(x.dtype))

    def conv1d_backward(self, gy, x, w, b, spec):
        from usconv_ref.dtypes import case_dtype
        cd = case_dtype(x.dtype)
        with self._flags():
            xt = self._to_torch(x).requires_grad_(True)
            wt = self._to_torch(w).requires_grad_(True)
            bt = None if b is None else self._to_torch(b).requires_grad_(True)
            y = self._call(xt, wt, bt, spec)
            y.backward(self._to_torch(gy))
        gb = None if bt is None else self._to_numpy(bt.grad, cd)
        return self._to_numpy(xt.grad, cd), self._to_numpy(wt.grad, cd), gb


class UnitScalingModule(UnitScalingFunctional):
    label = "unit_scaling-module"

    def capabilities(self):
        caps = super().capabilities()
        return replace(caps, same_padding=False, custom_scale_power=False)

    def known_deviations(self):
        return super().known_deviations() + [
            KnownDeviation(p, "unit_scaling.Conv1d pads twice for non-zero padding modes (F.pad, then the "
                              "zero padding of F.conv1d again)") for p in ("*reflect*", "*replicate*", "*circular*")
        ] + [KnownDeviation(p, "unit_scaling.Conv1d ignores its constraint argument (always to_output_scale)")
             for p in ("*constraint-None*", "*constraint-gmean*", "*constraint-hmean*", "*constraint-amean*",
                       "*constraint-to_grad_input_scale*")]

    def _module(self, x, w, b, spec):
        torch = _torch()
        us = _unit_scaling()
        C_out, Cg, K = w.shape
        C_in = Cg * spec.groups
        padding = 0 if spec.padding == "valid" else spec.padding
        m = us.Conv1d(C_in, C_out, K, stride=spec.stride, padding=padding, dilation=spec.dilation,
                      groups=spec.groups, bias=b is not None, padding_mode=spec.padding_mode, dtype=w.dtype,
                      device=w.device, constraint=spec.constraint)
        with torch.no_grad():
            m.weight.copy_(w)
            if b is not None:
                m.bias.copy_(b)
        return m

    def conv1d(self, x, w, b, spec):
        from usconv_ref.dtypes import case_dtype
        torch = _torch()
        with self._flags(), torch.no_grad():
            m = self._module(self._to_torch(x), self._to_torch(w), self._to_torch(b), spec)
            y = m(self._to_torch(x))
        return self._to_numpy(y, case_dtype(x.dtype))

    def conv1d_backward(self, gy, x, w, b, spec):
        from usconv_ref.dtypes import case_dtype
        cd = case_dtype(x.dtype)
        with self._flags():
            m = self._module(self._to_torch(x), self._to_torch(w), self._to_torch(b), spec)
            xt = self._to_torch(x).requires_grad_(True)
            y = m(xt)
            y.backward(self._to_torch(gy))
        gb = None if b is None else self._to_numpy(m.bias.grad, cd)
        return self._to_numpy(xt.grad, cd), self._to_numpy(m.weight.grad, cd), gb
