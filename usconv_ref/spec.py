"""The op's hyperparameters (:class:`Conv1dSpec`) and the shape rules of SPEC §1/§7.

Validation happens here, where inputs enter, before anything is computed: hyperparameters
in ``Conv1dSpec.__post_init__``, shapes in :func:`resolve_geometry`.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
CONSTRAINTS = (None, "gmean", "hmean", "amean", "to_output_scale", "to_grad_input_scale")


def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _as_int(name: str, value, allow_tuple: bool) -> int:
    """A Python/NumPy int, or (if ``allow_tuple``) a 1-tuple/1-list holding one."""
    v = value
    if allow_tuple and isinstance(v, (tuple, list)):
        if len(v) != 1:
            raise ValueError(f"{name}: expected an int or a 1-tuple, got a sequence of length {len(v)}: {value!r}")
        v = v[0]
    if isinstance(v, bool) or not _is_int(v):
        raise TypeError(f"{name}: expected an int{' or a 1-tuple of int' if allow_tuple else ''}, got {value!r}")
    return int(v)


def _normalize_padding(padding):
    """``int`` → that int; 1-tuple/1-list → its int; ``'valid'``/``'same'`` kept as strings."""
    if isinstance(padding, str):
        if padding not in ("valid", "same"):
            raise ValueError(f"padding: expected an int, a 1-tuple, 'valid' or 'same', got {padding!r}")
        return padding
    if isinstance(padding, (tuple, list)) and len(padding) != 1:
        raise ValueError(
            f"padding: expected an int, a 1-tuple, 'valid' or 'same', got a sequence of length {len(padding)}: {padding!r}"
        )
    p = _as_int("padding", padding, allow_tuple=True)
    if p < 0:
        raise ValueError(f"padding: expected >= 0, got {p}")
    return p


def _normalize_scale_power(scale_power) -> tuple[float, float, float]:
    try:
        items = tuple(scale_power)
    except TypeError:
        raise ValueError(f"scale_power: expected 3 finite reals, got {scale_power!r}") from None
    if len(items) != 3:
        raise ValueError(f"scale_power: expected 3 finite reals, got {len(items)} values: {scale_power!r}")
    out = []
    for v in items:
        try:
            ok = not isinstance(v, bool) and isinstance(v, numbers.Real) and math.isfinite(float(v))
        except OverflowError:
            ok = False
        if not ok:
            raise ValueError(f"scale_power: expected 3 finite reals (each representable as a float64), got {scale_power!r}")
        out.append(float(v))
    return tuple(out)


@dataclass(frozen=True)
class Conv1dSpec:
    """Hyperparameters of one unit-scaled conv1d, normalized and validated on creation.

    Fields are named as the keywords of :func:`usconv_ref.conv1d`. After normalization
    ``stride``, ``dilation`` and ``groups`` are ints >= 1, ``padding`` is an int >= 0 or
    ``'valid'``/``'same'``, ``constraint`` is None or one of :data:`CONSTRAINTS` (``""``
    means None), ``scale_power`` a tuple of 3 floats (the exponent used is the exact value
    of each float). ``'same'`` with stride > 1 is rejected here.
    """

    stride: int = 1
    padding: int | str = 0
    dilation: int = 1
    groups: int = 1
    padding_mode: str = "zeros"
    constraint: str | None = "to_output_scale"
    scale_power: tuple[float, float, float] = (0.5, 0.5, 0.5)

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, "stride", _as_int("stride", self.stride, allow_tuple=True))
        set_(self, "dilation", _as_int("dilation", self.dilation, allow_tuple=True))
        set_(self, "groups", _as_int("groups", self.groups, allow_tuple=False))
        for name in ("stride", "dilation", "groups"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected >= 1, got {getattr(self, name)}")
        set_(self, "padding", _normalize_padding(self.padding))
        if self.padding == "same" and self.stride != 1:
            raise ValueError(f"padding: 'same' requires stride == 1, got stride={self.stride}")
        if not isinstance(self.padding_mode, str) or self.padding_mode not in PADDING_MODES:
            raise ValueError(f"padding_mode: expected one of {PADDING_MODES}, got {self.padding_mode!r}")
        constraint = self.constraint
        if constraint is not None and not isinstance(constraint, str):
            raise ValueError(f"constraint: expected one of {list(CONSTRAINTS)}, got {constraint!r}")
        constraint = None if constraint == "" else constraint
        if constraint not in CONSTRAINTS:
            raise ValueError(f"constraint: expected one of {list(CONSTRAINTS)}, got {self.constraint!r}")
        set_(self, "constraint", constraint)
        set_(self, "scale_power", _normalize_scale_power(self.scale_power))

    def resolve_padding(self, kernel_size: int) -> tuple[int, int]:
        """``(pl, pr)``: int p → (p, p); 'valid' → (0, 0);
        'same' → total = dilation*(K-1), pl = total // 2, pr = total - pl (extra on the right)."""
        if self.padding == "valid":
            return 0, 0
        if self.padding == "same":
            total = self.dilation * (kernel_size - 1)
            return total // 2, total - total // 2
        return self.padding, self.padding


@dataclass(frozen=True)
class Geometry:
    """Resolved shapes of one call. ``batched`` False means x was ``(C_in, L)`` (N = 1).

    ``L_pad = L + pl + pr``; ``L_out = (L_pad - dilation*(K-1) - 1) // stride + 1``;
    ``Cg = C_in / groups``, ``Og = C_out / groups``.
    """

    N: int
    batched: bool
    C_in: int
    C_out: int
    L: int
    K: int
    groups: int
    pl: int
    pr: int
    stride: int
    dilation: int

    @property
    def Cg(self) -> int:
        return self.C_in // self.groups

    @property
    def Og(self) -> int:
        return self.C_out // self.groups

    @property
    def L_pad(self) -> int:
        return self.L + self.pl + self.pr

    @property
    def L_out(self) -> int:
        return output_length(self.L_pad, self.K, self.stride, self.dilation)

    @property
    def y_shape(self) -> tuple[int, ...]:
        core = (self.C_out, self.L_out)
        return (self.N,) + core if self.batched else core

    @property
    def batch_size(self) -> int:
        """``B`` of the unit-scaling rules: N when batched, 1 when not."""
        return self.N if self.batched else 1


def output_length(L_pad: int, K: int, stride: int, dilation: int) -> int:
    """``floor((L_pad - dilation*(K-1) - 1) / stride) + 1`` (may be < 1: caller rejects)."""
    return (L_pad - dilation * (K - 1) - 1) // stride + 1


def _shape_of(name: str, shape) -> tuple[int, ...]:
    """A shape: a sequence of non-negative ints (not bools)."""
    try:
        items = tuple(shape)
    except TypeError:
        raise TypeError(f"{name}: expected a shape (tuple of ints), got {shape!r}") from None
    for s in items:
        if not _is_int(s):
            raise TypeError(f"{name}: expected a shape of ints, got {shape!r}")
        if s < 0:
            raise ValueError(f"{name}: expected non-negative dimensions, got shape {shape!r}")
    return tuple(int(s) for s in items)


def resolve_geometry(x_shape, w_shape, b_shape, spec: Conv1dSpec) -> Geometry:
    """Check the shapes of x, weight and bias (None: no bias) against ``spec`` (SPEC §7)
    and resolve every derived size. Raises ValueError naming the parameter."""
    xs, ws = _shape_of("input", x_shape), _shape_of("weight", w_shape)
    if len(xs) not in (2, 3):
        raise ValueError(f"input: expected rank 2 (C_in, L) or 3 (N, C_in, L), got shape {xs}")
    if len(ws) != 3:
        raise ValueError(f"weight: expected rank 3 (C_out, C_in/groups, K), got shape {ws}")
    batched = len(xs) == 3
    N, C_in, L = xs if batched else (1,) + xs
    C_out, Cg, K = ws
    g = spec.groups
    if C_in == 0:
        raise ValueError(f"input: expected C_in >= 1, got shape {xs}")
    if C_out == 0:
        raise ValueError(f"weight: expected C_out >= 1, got shape {ws}")
    if K < 1:
        raise ValueError(f"weight: expected kernel size K >= 1, got shape {ws}")
    if L == 0:
        raise ValueError(f"input: expected length L >= 1, got shape {xs}")
    if C_in != Cg * g:
        raise ValueError(
            f"weight: expected weight.shape[1] * groups == C_in ({Cg} * {g} != {C_in}); shapes input {xs}, weight {ws}"
        )
    if C_out % g:
        raise ValueError(f"groups: expected C_out ({C_out}) divisible by groups ({g})")
    if b_shape is not None:
        bs = _shape_of("bias", b_shape)
        if bs != (C_out,):
            raise ValueError(f"bias: expected shape ({C_out},), got {bs}")
    pl, pr = spec.resolve_padding(K)
    mode = spec.padding_mode
    if mode == "reflect" and (pl >= L or pr >= L):
        raise ValueError(f"padding: reflect padding needs pad < L, got pad ({pl}, {pr}) with L={L}")
    if mode == "circular" and (pl > L or pr > L):
        raise ValueError(f"padding: circular padding needs pad <= L, got pad ({pl}, {pr}) with L={L}")
    geo = Geometry(N, batched, C_in, C_out, L, K, g, pl, pr, spec.stride, spec.dilation)
    if geo.L_out < 1:
        raise ValueError(
            f"input: output length L_out = {geo.L_out} < 1 (L={L}, padding=({pl}, {pr}), K={K}, "
            f"dilation={spec.dilation}, stride={spec.stride})"
        )
    return geo
