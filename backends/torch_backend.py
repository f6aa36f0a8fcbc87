"""PyTorch backends (``torch-cpu``, ``torch-cuda``; ``torch-rocm`` on ROCm builds).

The op as a PyTorch user writes it: non-zero padding modes with ``F.pad`` once, then
``F.conv1d`` and autograd for the unscaled adjoints, then the unit scales of
``usconv_ref`` multiplied in (``raw * s``; no dependency on unit_scaling). So every
result is rounded twice into its dtype (the unscaled sum, then the product with the
scale, computed in PyTorch's "opmath" float32 for 16-bit and float32 tensors: the scale
is rounded to float32) — declared as ``out_roundings=2`` and ``scale_dtype="float32"``.

Options (SPEC §9 brackets): ``tf32`` (bool; default: PyTorch's own default —
cuDNN convolutions allow TF32 on CUDA), ``deterministic`` (cuDNN deterministic
algorithms), ``declare`` (a named class to declare instead for float32/complex64, e.g.
``fp32`` or ``ieee-fp32-acc``: "is this strict IEEE fp32?").
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from usconv_ref.compare import BF16_ACC, FP16_ACC, FP32_ACC, FP64_ACC, NAMED_CLASSES, TF32, PrecisionClass
from usconv_ref.dtypes import COMPLEX32, case_dtype
from usconv_ref.scaling import exact_unit_scales
from usconv_ref.spec import resolve_geometry

from . import ALL_DTYPES, Backend, Capabilities, KnownDeviation

DECLARE_ALIASES = {"fp32": "ieee-fp32-acc", "fp64": "ieee-fp64-acc", "tf32": "tf32", "fp16": "ieee-fp16-acc"}


def _torch():
    import torch
    return torch


class TorchBackend(Backend):
    device_name = "cpu"

    def __init__(self, tf32=None, deterministic=False, declare=None, device_name=None):
        if device_name is not None:
            self.device_name = device_name
        self.tf32 = tf32
        self.deterministic = bool(deterministic)
        self.declare = None
        if declare is not None:
            key = DECLARE_ALIASES.get(str(declare), str(declare))
            if key not in NAMED_CLASSES:
                raise TypeError(f"declare: unknown class {declare!r}; known: {sorted(NAMED_CLASSES)} or {sorted(DECLARE_ALIASES)}")
            self.declare = NAMED_CLASSES[key]
        self.name = "torch-" + self.device_name
        self._caps = None

    # --- environment ---
    def _device(self):
        return "cpu" if self.device_name == "cpu" else "cuda"

    def availability(self):
        try:
            torch = _torch()
        except ImportError as exc:
            return False, f"torch not installed ({exc})"
        if self.device_name == "cpu":
            return True, ""
        if not torch.cuda.is_available():
            return False, "no CUDA/ROCm device visible to torch"
        is_rocm = getattr(torch.version, "hip", None) is not None
        if is_rocm != (self.device_name == "rocm"):
            return False, f"torch is a {'ROCm' if is_rocm else 'CUDA'} build; use torch-{'rocm' if is_rocm else 'cuda'}"
        return True, ""

    def describe(self):
        torch = _torch()
        d = f"torch {torch.__version__} {self.device_name}"
        if self.device_name != "cpu":
            d += f" ({torch.cuda.get_device_name()}, cuDNN {torch.backends.cudnn.version()})"
        return d + f" tf32={self._tf32_on()} deterministic={self.deterministic}"

    def _tf32_on(self) -> bool:
        if self.device_name == "cpu":
            return False
        if self.tf32 is not None:
            return bool(self.tf32)
        return bool(_torch().backends.cudnn.allow_tf32)

    def _flags(self):
        torch = _torch()
        cudnn = torch.backends.cudnn

        class _Ctx:
            def __enter__(ctx):
                ctx.saved = (cudnn.allow_tf32, cudnn.deterministic, cudnn.benchmark)
                cudnn.allow_tf32 = self._tf32_on()
                cudnn.deterministic = self.deterministic
                if self.deterministic:
                    cudnn.benchmark = False

            def __exit__(ctx, *exc):
                cudnn.allow_tf32, cudnn.deterministic, cudnn.benchmark = ctx.saved

        return _Ctx()

    def capabilities(self):
        """Probed once: a dtype is supported when a zero-padded forward and backward run;
        each non-zero padding mode is probed per dtype (torch lacks some pads, e.g. reflect
        for complex32)."""
        if self._caps is None:
            import warnings
            supported, notes, modes = [], {}, {}
            for name in ALL_DTYPES:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    why = self._probe(name, "constant")
                    if why:
                        notes[name] = why
                        continue
                    supported.append(name)
                    for mode in ("reflect", "replicate", "circular"):
                        why = self._probe(name, mode)
                        if why:
                            modes.setdefault(name, {})[mode] = why
            self._caps = Capabilities(dtypes=frozenset(supported), notes=notes, unsupported_modes=modes)
        return self._caps

    def _probe(self, dtype: str, mode: str) -> str:
        """'' if a tiny padded conv (forward + backward) runs, else why not."""
        torch = _torch()
        F = torch.nn.functional
        try:
            x = self._to_torch(np.ones((1, 1, 3), case_dtype(dtype).numpy) if dtype != "complex32"
                               else np.zeros((1, 1, 3), COMPLEX32)).requires_grad_(True)
            w = self._to_torch(np.zeros((1, 1, 2), case_dtype(dtype).numpy)).requires_grad_(True)
            out = F.conv1d(F.pad(x, (1, 1), mode=mode), w)
            out.backward(torch.ones_like(out))
            return ""
        except Exception as exc:  # noqa: BLE001 - report what torch refuses
            return f"torch {self.device_name}: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}"

    # --- precision ---
    def precision(self, dtype, tensor, spec) -> PrecisionClass:
        part = case_dtype(dtype).part.name
        cd = case_dtype(dtype)
        gpu = self.device_name != "cpu"
        if part == "float64":
            base = FP64_ACC
        elif part == "float32":
            base = self.declare or (TF32 if self._tf32_on() else FP32_ACC)
        elif gpu or tensor in ("grad_x", "grad_w", "grad_b") or cd.name == "complex32":
            # measured: torch 2.13 CPU's 16-bit backward (grad_b too: tc.f16-reflect-s2-d2, 66-term sums
            # 4.7x beyond the float32 bound) and complex32, and cuDNN 9.19's 16-bit convolutions
            # (H100; grouped/strided and with bias), round partial results to the 16-bit dtype
            base = FP16_ACC if part == "float16" else BF16_ACC
        else:  # float16 / bfloat16 forward on CPU: float32 accumulation
            base = FP32_ACC
        # measured on the H100 (cuDNN 9.19): subnormal results of float32/16-bit kernels flush to zero
        ftz = gpu and part != "float64"
        return replace(base, name=base.name + "+2roundings" + ("+gauss" if cd.is_complex else "") + ("+ftz" if ftz else ""),
                       out_roundings=2, scale_dtype=None if part == "float64" else "float32",
                       products="gauss" if cd.is_complex else "exact", ftz=ftz)

    def known_deviations(self):
        why = ("the unscaled sum is formed in the input dtype and overflows before the unit scale brings it "
               "back into range (conv then scale, as unit_scaling does)")
        return [KnownDeviation("*-large", why), KnownDeviation("dtype.complex32-cancel", why + "; complex32 "
                                                               "sums in float16 overflow on the cancel data set")]

    # --- conversion ---
    def _to_torch(self, a):
        torch = _torch()
        if a is None:
            return None
        cd = case_dtype(a.dtype)
        dev = self._device()
        if cd.name == "complex32":
            pair = np.stack([a["real"], a["imag"]], axis=-1)
            return torch.view_as_complex(torch.from_numpy(np.ascontiguousarray(pair)).to(dev))
        if cd.name == "bfloat16":
            return torch.from_numpy(np.ascontiguousarray(a).view(np.int16)).view(torch.bfloat16).to(dev)
        return torch.from_numpy(np.ascontiguousarray(a)).to(dev)

    def _to_numpy(self, t, cd):
        torch = _torch()
        t = t.detach().cpu()
        if cd.name == "complex32":
            pair = torch.view_as_real(t).numpy()
            out = np.empty(pair.shape[:-1], COMPLEX32)
            out["real"], out["imag"] = pair[..., 0], pair[..., 1]
            return out
        if cd.name == "bfloat16":
            return t.view(torch.int16).numpy().view(cd.numpy)
        return t.numpy()

    def _forward_raw(self, x, w, b, spec):
        F = _torch().nn.functional
        pl, pr = spec.resolve_padding(w.shape[-1])
        mode = "constant" if spec.padding_mode == "zeros" else spec.padding_mode
        xp = F.pad(x, (pl, pr), mode=mode) if (pl or pr) else x
        return F.conv1d(xp, w, b, stride=spec.stride, dilation=spec.dilation, groups=spec.groups)

    def _scales(self, x, w, spec):
        geo = resolve_geometry(x.shape, w.shape, None, spec)
        sc = exact_unit_scales(geo, spec)
        return float(sc.output), float(sc.grad_input), (0.0 if sc.grad_weight is None else float(sc.grad_weight))

    def conv1d(self, x, w, b, spec):
        cd = case_dtype(x.dtype)
        s_out, _, _ = self._scales(x, w, spec)
        torch = _torch()
        with self._flags(), torch.no_grad():
            y = self._forward_raw(self._to_torch(x), self._to_torch(w), self._to_torch(b), spec) * s_out
        return self._to_numpy(y, cd)

    def conv1d_backward(self, gy, x, w, b, spec):
        torch = _torch()
        cd = case_dtype(x.dtype)
        _, s_gx, s_gw = self._scales(x, w, spec)
        with self._flags():
            xt = self._to_torch(x).requires_grad_(True)
            wt = self._to_torch(w).requires_grad_(True)
            bt = None if b is None else self._to_torch(b).requires_grad_(True)
            raw = self._forward_raw(xt, wt, bt, spec)
            inputs = (xt, wt) + ((bt,) if bt is not None else ())
            grads = torch.autograd.grad(raw, inputs, self._to_torch(gy))
            gx, gw = grads[0] * s_gx, grads[1] * s_gw
            gb = grads[2] * s_gw if bt is not None else None
        return (self._to_numpy(gx, cd), self._to_numpy(gw, cd), None if gb is None else self._to_numpy(gb, cd))


class TorchCPUBackend(TorchBackend):
    device_name = "cpu"


class TorchCUDABackend(TorchBackend):
    device_name = "cuda"
