"""Backends under test, one thin adapter each behind one interface (SPEC §9).

``backends.get(name, **options)`` returns a ready instance, found by built-in name
(``numpy``, ``torch-cpu``, ``torch-cuda``, ``unit_scaling``, ``cupy`` ...), by entry
point in the group ``usconv.backends`` (third-party ports), or as ``"package.module:Class"``.
:func:`parse_backend_arg` reads the CLI form ``name[key=value,...]``.
"""
from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field

import numpy as np

from usconv_ref.compare import EXACT, NAMED_CLASSES, PrecisionClass  # noqa: F401  (re-exported)
from usconv_ref.spec import Conv1dSpec

TENSORS = ("y", "grad_x", "grad_w", "grad_b")
ALL_DTYPES = ("float16", "bfloat16", "float32", "float64", "complex32", "complex64", "complex128")
ALL_MODES = ("zeros", "reflect", "replicate", "circular")


@dataclass(frozen=True)
class KnownDeviation:
    """A declared deviation: ``pattern`` is a glob over case ids; reported, never hidden."""

    pattern: str
    reason: str


@dataclass(frozen=True)
class Capabilities:
    """What a backend can run; cases outside are reported as skipped with the reason."""

    dtypes: frozenset = frozenset(ALL_DTYPES)
    padding_modes: frozenset = frozenset(ALL_MODES)
    same_padding: bool = True
    backward: bool = True
    unbatched: bool = True
    empty_batch: bool = True
    custom_scale_power: bool = True  # scale_power other than (0.5, 0.5, 0.5)
    notes: dict = field(default_factory=dict, hash=False)  # dtype -> why unsupported
    unsupported_modes: dict = field(default_factory=dict, hash=False)  # dtype -> {mode: why}

    def supports(self, dtype: str, spec: Conv1dSpec, batched: bool, N: int) -> tuple[bool, str]:
        if dtype not in self.dtypes:
            return False, self.notes.get(dtype, f"dtype {dtype} not supported")
        if spec.padding_mode not in self.padding_modes:
            return False, f"padding_mode {spec.padding_mode} not supported"
        why = self.unsupported_modes.get(dtype, {}).get(spec.padding_mode)
        if why:
            return False, why
        if spec.padding == "same" and not self.same_padding:
            return False, "padding='same' not supported"
        if not batched and not self.unbatched:
            return False, "unbatched input not supported"
        if N == 0 and not self.empty_batch:
            return False, "N=0 not supported"
        if spec.scale_power != (0.5, 0.5, 0.5) and not self.custom_scale_power:
            return False, "scale_power other than (0.5, 0.5, 0.5) not supported"
        return True, ""


class Backend:
    """The interface every backend implements. Arrays cross it as NumPy arrays of the case
    dtype (SPEC §6; complex32 as ``usconv_ref.COMPLEX32``) and come back in it."""

    name: str = "abstract"

    def availability(self) -> tuple[bool, str]:
        return True, ""

    def capabilities(self) -> Capabilities:
        return Capabilities()

    def precision(self, dtype: str, tensor: str, spec: Conv1dSpec) -> PrecisionClass:
        raise NotImplementedError

    def conv1d(self, x, w, b, spec: Conv1dSpec) -> np.ndarray:
        raise NotImplementedError

    def conv1d_backward(self, gy, x, w, b, spec: Conv1dSpec):
        raise NotImplementedError

    def known_deviations(self) -> list[KnownDeviation]:
        return []

    def describe(self) -> str:
        """One line for tables: device, versions."""
        return self.name


BUILTIN = {
    "numpy": "backends.numpy_backend:NumpyBackend",
    "torch-cpu": "backends.torch_backend:TorchCPUBackend",
    "torch-cuda": "backends.torch_backend:TorchCUDABackend",
    "torch-rocm": "backends.torch_backend:TorchCUDABackend",
    "unit_scaling": "backends.unit_scaling_backend:UnitScalingFunctional",
    "unit_scaling-module": "backends.unit_scaling_backend:UnitScalingModule",
    "cupy": "backends.cupy_backend:CupyBackend",
}


class BackendError(Exception):
    """A backend that cannot be found or constructed (bad usage: exit 2)."""


def _load(target: str):
    module, _, attr = target.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise BackendError(f"cannot load backend class {target!r}: {exc}") from None


def _entry_points() -> dict:
    from importlib.metadata import entry_points
    return {ep.name: ep for ep in entry_points(group="usconv.backends")}


def known_names() -> list[str]:
    return list(BUILTIN) + sorted(set(_entry_points()) - set(BUILTIN))


def get(name: str, **options) -> Backend:
    """A backend instance by built-in name, entry point name or ``pkg.module:Class``."""
    if name in BUILTIN:
        cls = _load(BUILTIN[name])
        if name == "torch-rocm":
            options.setdefault("device_name", "rocm")
    elif ":" in name:
        cls = _load(name)
    else:
        eps = _entry_points()
        if name not in eps:
            raise BackendError(f"unknown backend {name!r}; known: {', '.join(known_names())} (or pkg.module:Class)")
        cls = eps[name].load()
    try:
        return cls(**options)
    except TypeError as exc:
        raise BackendError(f"backend {name!r}: bad options {options}: {exc}") from None


def _value(text: str):
    low = text.lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text


def parse_backend_arg(arg: str) -> tuple[str, dict]:
    """``"torch-cuda[deterministic=true,tf32=false]"`` → ``("torch-cuda", {...})``."""
    m = re.fullmatch(r"\s*([^\[\]]+?)\s*(?:\[(.*)\])?\s*", arg)
    if not m:
        raise BackendError(f"bad backend argument {arg!r}; expected NAME or NAME[key=value,...]")
    name, opts = m.group(1), {}
    if m.group(2):
        for item in m.group(2).split(","):
            if not item.strip():
                continue
            key, eq, val = item.partition("=")
            if not eq:
                raise BackendError(f"bad backend option {item!r} in {arg!r}; expected key=value")
            opts[key.strip()] = _value(val.strip())
    return name, opts
