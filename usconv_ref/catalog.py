"""The golden catalog: which cases exist, by design rather than by cross product.

Families (see golden/FORMAT.md):
- ``dtype``: the base configuration in every dtype x every data set;
- ``axis``: around the base, every value of every axis at least once (padding modes and
  their edges, padding forms, stride, dilation, groups, bias, constraints, scale powers,
  unbatched, N = 0, long accumulations);
- ``pairs``: a covering array holding every pair of padding mode x stride x dilation x groups;
- ``dw``: depthwise rows longer than a GPU tile; ``tc``: dense cases for the tensor-core paths.

Seeds are ``crc32(id)``, recorded in the catalog, so a case's inputs depend on its id only.
Every id of a case with a non-zero padding mode names the mode (so known deviations can be
declared by glob, e.g. ``*reflect*``).
"""
from __future__ import annotations

import itertools
import zlib
from dataclasses import dataclass, field

from .spec import Conv1dSpec

CATALOG_VERSION = 1

DTYPE_NAMES = ("float16", "bfloat16", "float32", "float64", "complex32", "complex64", "complex128")
DATASET_NAMES = ("normal", "large", "tiny", "cancel", "sparse", "special")


@dataclass(frozen=True)
class Case:
    """One golden case: inputs ``x`` of ``input_shape`` (rank 2 = unbatched), ``w`` of
    ``weight_shape``, bias if ``bias``; ``kwargs`` exactly as passed to the op (so the
    1-tuple and string padding forms are exercised)."""

    id: str
    family: str
    dtype: str
    dataset: str
    input_shape: tuple[int, ...]
    weight_shape: tuple[int, int, int]
    bias: bool
    kwargs: dict = field(hash=False)

    @property
    def seed(self) -> int:
        return zlib.crc32(self.id.encode())

    @property
    def spec(self) -> Conv1dSpec:
        return Conv1dSpec(**self.kwargs)

    def to_json(self) -> dict:
        return {"id": self.id, "family": self.family, "dtype": self.dtype, "dataset": self.dataset,
                "seed": self.seed, "input_shape": list(self.input_shape), "weight_shape": list(self.weight_shape),
                "bias": self.bias, "kwargs": {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.kwargs.items()}}

    @staticmethod
    def from_json(d: dict) -> "Case":
        kw = dict(d["kwargs"])
        case = Case(d["id"], d["family"], d["dtype"], d["dataset"], tuple(d["input_shape"]),
                    tuple(d["weight_shape"]), bool(d["bias"]), kw)
        if "seed" in d and d["seed"] != case.seed:
            raise ValueError(f"catalog: case {case.id!r} has seed {d['seed']}, expected crc32(id) = {case.seed}")
        return case


def _case(family, name, dtype="float32", dataset="normal", N=2, C_in=16, C_out=16, L=64, K=4, bias=True, **kw):
    kw.setdefault("padding", 2)
    input_shape = (C_in, L) if N is None else (N, C_in, L)
    groups = kw.get("groups", 1)
    return Case(f"{family}.{name}", family, dtype, dataset, input_shape, (C_out, C_in // groups, K), bias, kw)


def _pairs_cases() -> list[Case]:
    """Greedy covering array: every pair of values of (mode, stride, dilation, groups)."""
    axes = [("zeros", "reflect", "replicate", "circular"), (1, 2, 3, 4), (1, 2, 3, 4), ("g1", "g2", "dw", "dwx2")]
    uncovered = {(i, a, j, b) for i, j in itertools.combinations(range(4), 2) for a in axes[i] for b in axes[j]}
    chosen = []
    for _ in range(64):
        if not uncovered:
            break
        best = max(itertools.product(*axes), key=lambda r: sum(
            (i, r[i], j, r[j]) in uncovered for i, j in itertools.combinations(range(4), 2)))
        chosen.append(best)
        uncovered -= {(i, best[i], j, best[j]) for i, j in itertools.combinations(range(4), 2)}
    cases = []
    for idx, (mode, s, d, g) in enumerate(chosen):
        groups = {"g1": 1, "g2": 2, "dw": 8, "dwx2": 8}[g]
        C_out = 16 if g == "dwx2" else 8
        cases.append(_case("pairs", f"{idx:02d}-{mode}-s{s}-d{d}-{g}", N=2, C_in=8, C_out=C_out, L=16, K=3,
                           padding=3, padding_mode=mode, stride=s, dilation=d, groups=groups))
    return cases


def build_catalog() -> list[Case]:
    cases = []
    for dt, ds in itertools.product(DTYPE_NAMES, DATASET_NAMES):
        cases.append(_case("dtype", f"{dt}-{ds}", dtype=dt, dataset=ds))
    A = "axis"
    for mode in ("zeros", "reflect", "replicate", "circular"):
        cases.append(_case(A, f"mode-{mode}", padding_mode=mode, padding=3))
    cases += [
        _case(A, "reflect-pad-L-1", N=2, C_in=4, C_out=4, L=8, K=3, padding=7, padding_mode="reflect"),
        _case(A, "circular-pad-L", N=2, C_in=4, C_out=4, L=8, K=3, padding=8, padding_mode="circular"),
        _case(A, "replicate-L1", N=3, C_in=4, C_out=4, L=1, K=3, padding=3, padding_mode="replicate"),
        _case(A, "padding-valid", padding="valid"),
        _case(A, "padding-same-odd-total", K=4, padding="same"),
        _case(A, "padding-same-even-total-reflect", K=3, padding="same", padding_mode="reflect"),
        _case(A, "padding-same-dilated-circular", K=4, dilation=3, padding="same", padding_mode="circular"),
        _case(A, "padding-1tuple", padding=[3], stride=[2], dilation=[2]),
        _case(A, "stride-beyond-field", K=2, padding=1, stride=5),
        _case(A, "bias-off", bias=False, dtype="bfloat16"),
        _case(A, "groups-2", groups=2, dtype="float16"),
        _case(A, "depthwise", groups=16, dtype="complex64"),
        _case(A, "depthwise-mult3-replicate", groups=16, C_out=48, padding_mode="replicate"),
        _case(A, "unbatched-reflect", N=None, dtype="complex128", padding_mode="reflect"),
        _case(A, "unbatched-f16", N=None, dtype="float16", stride=2),
        _case(A, "batch-0-circular", N=0, padding_mode="circular"),
        _case(A, "long-accum-f32", N=1, C_in=1024, C_out=4, L=32, K=4, padding=1),
        _case(A, "long-accum-bf16", N=1, C_in=1024, C_out=4, L=32, K=4, padding=1, dtype="bfloat16"),
        _case(A, "long-accum-f16", N=1, C_in=512, C_out=4, L=32, K=9, padding=4, dtype="float16"),
        # dense and wide enough for GPU libraries to pick tensor-core (TF32) algorithms
        _case(A, "dense-c128-f32", N=2, C_in=128, C_out=128, L=256, K=3, padding=1),
        _case(A, "dense-c64-c64", N=2, C_in=64, C_out=64, L=128, K=3, padding=1, dtype="complex64"),
    ]
    for s in (2, 3, 4):
        cases.append(_case(A, f"stride-{s}", stride=s))
    for d in (2, 3, 4):
        cases.append(_case(A, f"dilation-{d}", dilation=d, padding=3))
    for c in (None, "gmean", "hmean", "amean", "to_output_scale", "to_grad_input_scale"):
        cases.append(_case(A, f"constraint-{c}", constraint=c, stride=2))
    for i, p in enumerate(((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), (0.25, 0.75, 1.5), (-0.5, 0.5, 0.5), (2.0, -1.0, 0.5))):
        cases.append(_case(A, f"scale-power-{i}", scale_power=list(p), constraint=None, stride=2,
                           dtype=("float32", "float64", "bfloat16", "float16", "complex64")[i]))
    cases += _pairs_cases()
    # depthwise, stride 1, dilation 1 over rows longer than a GPU tile (1024 outputs): the
    # specialised depthwise kernels' interior tiles, row ends, padding modes and tap counts
    D = "dw"
    cases += [
        _case(D, "f32-zeros-K4-causal", N=2, C_in=3, C_out=3, L=2500, K=4, padding=3, groups=3),
        _case(D, "f16-reflect-K9", N=2, C_in=3, C_out=3, L=2051, K=9, padding=4, groups=3, padding_mode="reflect",
              dtype="float16"),
        _case(D, "bf16-replicate-K31", N=1, C_in=4, C_out=4, L=1100, K=31, padding=15, groups=4,
              padding_mode="replicate", dtype="bfloat16"),
        _case(D, "f32-circular-K64-same", N=1, C_in=2, C_out=2, L=2048, K=64, padding="same", groups=2,
              padding_mode="circular"),
        _case(D, "f32-K1-nobias", N=2, C_in=3, C_out=3, L=1030, K=1, padding=0, groups=3, bias=False),
        _case(D, "f16-tiny-K4", N=1, C_in=2, C_out=2, L=1100, K=4, padding=3, groups=2, dtype="float16",
              dataset="tiny"),
        _case(D, "f16-sparse-K7", N=1, C_in=2, C_out=2, L=1500, K=7, padding=3, groups=2, dtype="float16",
              dataset="sparse"),
    ]
    # dense / wide groups (more than 16 channels per group): the GPU tensor-core paths, with
    # ragged tile edges, strides, dilations and padding modes, and data sets whose unscaled sums
    # overflow (large) or hold inf/NaN (special), which those kernels hand to a scalar fallback
    T = "tc"
    cases += [
        _case(T, "f16-reflect-s2-d2", N=2, C_in=48, C_out=40, L=70, K=5, stride=2, dilation=2, padding=4,
              padding_mode="reflect", dtype="float16"),
        _case(T, "f16-special", N=1, C_in=40, C_out=20, L=30, K=3, padding=1, dtype="float16", dataset="special"),
        _case(T, "bf16-large", N=1, C_in=64, C_out=8, L=40, K=3, padding=1, dtype="bfloat16", dataset="large"),
        _case(T, "f32-cancel", N=2, C_in=32, C_out=20, L=40, K=3, padding=1, dataset="cancel"),
        _case(T, "f64-circular", N=2, C_in=40, C_out=24, L=50, K=3, padding=1, padding_mode="circular",
              dtype="float64"),
        _case(T, "c128-replicate", N=1, C_in=20, C_out=18, L=33, K=2, padding=1, padding_mode="replicate",
              dtype="complex128"),
        _case(T, "c128-large", N=1, C_in=24, C_out=8, L=20, K=3, padding=1, dtype="complex128", dataset="large"),
    ]
    ids = [c.id for c in cases]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    return cases
