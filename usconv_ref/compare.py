"""The tolerance model (SPEC §10): precision classes, the per-element bound, the
per-element check and the pooled statistics — three small functions, each stating the
inequality it enforces.

Notation, per output element (each real part of a complex element separately):
``ref`` the exact value (the golden float64), ``bnd`` the same op on absolute values
(``|s| (sum |a||b| + |c|)``; complex: per part, or the Gauss-safe bound), ``n`` the number
of real products summed into it, ``u_out`` the unit roundoff of the output format,
``floor`` half its smallest subnormal (its smallest normal if the class flushes).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .dtypes import FloatFormat

U64 = 2.0**-53


@dataclass(frozen=True)
class PrecisionClass:
    """A declared accuracy class.

    ``u_acc``: unit roundoff of the accumulator (0: exact sums); ``u_in``: relative rounding
    of inputs before the products (TF32: 2**-11); ``ftz``: subnormal results may flush to
    zero; ``scale_dtype``: None for exact scales, else the format name each unit scale is
    rounded to (the expected values then use the rounded scales); ``products``: "exact" or
    "gauss" (3-multiply complex products); ``global_bound``: transform-based algorithms
    whose error scales with the whole tensor (TOSA ``local_bound=false``);
    ``out_roundings`` (an extension of SPEC §9): how many times the result is rounded into
    the output format — 2 when the unscaled sum is rounded and then multiplied by the scale
    in that format (PyTorch-style ``conv(x, w) * s``); ``acc_rounding``: "nearest" (IEEE
    round-to-nearest accumulation, errors of either sign) or "toward-zero" (truncating
    accumulators such as the tensor cores' float32 adders: each addition may lose up to
    ``u_acc`` of its magnitude, always in the same direction, so the pooled bias and
    correlation tests allow that systematic part instead of treating it as a bug). The class
    named ``"exact"`` means correctly rounded: bitwise equal to the golden value."""

    name: str
    u_acc: float = 0.0
    u_in: float = 0.0
    ftz: bool = False
    scale_dtype: str | None = None
    products: str = "exact"
    global_bound: bool = False
    out_roundings: int = 1
    acc_rounding: str = "nearest"

    def to_json(self) -> dict:
        return {"name": self.name, "u_acc": self.u_acc, "u_in": self.u_in, "ftz": self.ftz,
                "scale_dtype": self.scale_dtype, "products": self.products, "global_bound": self.global_bound,
                "out_roundings": self.out_roundings, "acc_rounding": self.acc_rounding}

    @staticmethod
    def from_json(d: dict) -> "PrecisionClass":
        allowed = {"name", "u_acc", "u_in", "ftz", "scale_dtype", "products", "global_bound", "out_roundings",
                   "acc_rounding"}
        unknown = set(d) - allowed
        if unknown:
            raise ValueError(f"precision class: unknown keys {sorted(unknown)}")
        cls = PrecisionClass(**d)
        if cls.products not in ("exact", "gauss"):
            raise ValueError(f"precision class {cls.name}: products must be 'exact' or 'gauss', got {cls.products!r}")
        if cls.acc_rounding not in ("nearest", "toward-zero"):
            raise ValueError(f"precision class {cls.name}: acc_rounding must be 'nearest' or 'toward-zero', "
                             f"got {cls.acc_rounding!r}")
        return cls


EXACT = PrecisionClass("exact")
FP64_ACC = PrecisionClass("ieee-fp64-acc", u_acc=2.0**-53)
FP32_ACC = PrecisionClass("ieee-fp32-acc", u_acc=2.0**-24)
FP16_ACC = PrecisionClass("ieee-fp16-acc", u_acc=2.0**-11)
BF16_ACC = PrecisionClass("ieee-bf16-acc", u_acc=2.0**-8)
TF32 = PrecisionClass("tf32", u_acc=2.0**-24, u_in=2.0**-11)
TF32X3 = PrecisionClass("3xtf32", u_acc=2.0**-24, u_in=2.0**-21)
BF16X3 = PrecisionClass("bf16x3", u_acc=2.0**-24, u_in=2.0**-22)
# Tensor-core float32 accumulation of exact 16-bit products (mma.sync/wgmma f32 accumulators):
# addends aligned and truncated, results truncated: one float32 ulp (2**-23), toward zero.
TC_FP32 = PrecisionClass("tc-fp32-acc", u_acc=2.0**-23, acc_rounding="toward-zero")

NAMED_CLASSES = {c.name: c for c in (EXACT, FP64_ACC, FP32_ACC, FP16_ACC, BF16_ACC, TF32, TF32X3, BF16X3, TC_FP32)}


# --- 1. the bound ----------------------------------------------------------------------

def accumulator_floor(cls: PrecisionClass) -> float:
    """Absolute error floor of one accumulator operation: half the smallest subnormal of
    the accumulator format (its smallest normal when the class flushes subnormals). The
    format is the one whose unit roundoff is ``u_acc`` (float32's exponent range otherwise)."""
    if cls.u_acc == 0:
        return 0.0
    from .dtypes import FORMATS
    p = round(-math.log2(cls.u_acc))
    fmt = next((f for f in FORMATS.values() if f.precision == p), None)
    emin = fmt.emin if fmt is not None else -126
    return 2.0**emin if cls.ftz else _half_subnormal(emin, p)


def _half_subnormal(emin: int, precision: int) -> float:
    """Half the smallest subnormal ``2**(emin-precision)``; float64's own half (2**-1075)
    is not representable, so there its smallest subnormal is used."""
    return max(2.0 ** (emin - precision + 1) / 2, 5e-324)


def output_floor(cls: PrecisionClass, fmt: FloatFormat) -> float:
    """``floor``: half the output format's smallest subnormal (smallest normal with ftz)."""
    return fmt.smallest_normal if cls.ftz else _half_subnormal(fmt.emin, fmt.precision)

def element_bound(bnd: np.ndarray, n: np.ndarray, ref: np.ndarray, cls: PrecisionClass,
                  fmt: FloatFormat, scale: float = 1.0) -> np.ndarray:
    """``B = n*u_acc*bnd + 2*u_in*bnd + k*u_out*(1+u_out)*|ref| + 2**-53*|ref| + floor
    + 2n*acc_floor`` with ``k = out_roundings`` and ``acc_floor`` from
    :func:`accumulator_floor` (each product and each addition may lose up to that much
    when partial results are subnormal in the accumulator). With ``k = 2`` the first
    rounding (of the unscaled sum) has its own floor, scaled by ``|scale|``: the floor term
    becomes ``floor * (1 + |scale|)``.

    The ``2**-53 |ref|`` term accounts for ``ref`` itself being the float64 rounding of the
    exact value. With ``global_bound`` the tensor's largest ``bnd`` replaces every ``bnd``
    and its largest ``n`` every ``n`` (errors of transforms spread over the tensor)."""
    if cls.global_bound and bnd.size:
        bnd = np.full_like(bnd, bnd.max())
        n = np.full_like(n, n.max())
    floor = output_floor(cls, fmt) * (1 + (cls.out_roundings - 1) * abs(scale))
    a = np.abs(ref)
    a = np.where(np.isfinite(a), a, 0.0)
    k = cls.out_roundings
    return (_scaled(n * cls.u_acc, bnd) + _scaled(2 * cls.u_in, bnd)
            + (k * fmt.unit_roundoff * (1 + fmt.unit_roundoff) + U64) * a + floor + 2 * n * accumulator_floor(cls))


def _scaled(c, bnd: np.ndarray) -> np.ndarray:
    """``c * bnd`` with ``0 * inf = 0`` (an absent term stays absent where bnd overflowed)."""
    with np.errstate(invalid="ignore"):
        return np.where(np.asarray(c) == 0, 0.0, c * bnd)


# --- 2. the per-element check ------------------------------------------------------------

@dataclass
class ElementCheck:
    """Outcome of :func:`check_elements` for one tensor (flattened part-major)."""

    count: int
    failures: int
    worst: int | None = None  # flat index of the worst element (largest err/bound)
    worst_ratio: float = 0.0
    reason: str = ""
    ratios: np.ndarray = field(default_factory=lambda: np.zeros(0))  # err/bound of finite elements


def check_elements(imp: np.ndarray, ref: np.ndarray, bound: np.ndarray, n: np.ndarray,
                   fmt: FloatFormat, bnd: np.ndarray | None = None) -> ElementCheck:
    """Per element (TOSA-style):
    - ``ref`` NaN ⇒ ``imp`` NaN; ``ref`` ±inf ⇒ ``imp`` the same infinity;
    - an empty sum (``n == 0``) ⇒ ``imp == 0`` exactly;
    - finite ``ref`` ⇒ ``|imp - ref| <= B``, where ``imp`` may be ±inf only if
      ``|ref| + B`` exceeds the format's largest finite value (same sign) — or any
      non-finite value (±inf, NaN) where ``bnd`` itself exceeds it: partial sums of a
      conforming order can then overflow (and +inf meet -inf).
    Returns counts, the worst element and the err/bound ratios."""
    imp = imp.astype(np.float64).ravel()
    ref = ref.astype(np.float64).ravel()
    bound, n = bound.ravel(), n.ravel()
    over_range = np.zeros(imp.shape, bool) if bnd is None else (np.asarray(bnd, np.float64).ravel() > fmt.max_finite)
    fail = np.zeros(imp.shape, bool)
    why = np.zeros(imp.shape, np.int8)
    rnan, rinf, rfin = np.isnan(ref), np.isinf(ref), np.isfinite(ref)
    f = rnan & ~np.isnan(imp)
    fail |= f; why[f] = 1
    f = rinf & (imp != ref)
    fail |= f; why[f] = 2
    empty = rfin & (n == 0)
    f = empty & (imp != 0)
    fail |= f; why[f] = 3
    judged = rfin & ~empty
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.abs(imp - ref)
        ratio = np.where(judged & np.isfinite(imp), err / bound, 0.0)
        may_overflow = (np.abs(ref) + bound) > fmt.max_finite
        inf_ok = (np.isinf(imp) & may_overflow & (np.sign(imp) == np.sign(ref))) | (~np.isfinite(imp) & over_range)
    f = judged & np.isfinite(imp) & (ratio > 1)
    fail |= f; why[f] = 4
    f = judged & ~np.isfinite(imp) & ~inf_ok
    fail |= f; why[f] = 5
    ratio = np.where(judged & ~np.isfinite(imp) & ~inf_ok, np.inf, ratio)
    out = ElementCheck(int(imp.size), int(fail.sum()), ratios=ratio[judged & np.isfinite(imp)])
    if imp.size:
        score = np.where(fail, np.where(np.isfinite(ratio), ratio, np.inf) + 1e300 * (why != 4), ratio)
        worst = int(np.argmax(score))
        out.worst, out.worst_ratio = worst, float(ratio[worst])
        out.reason = ["", "expected NaN", "expected the same infinity", "empty sum must be exactly 0",
                      "err > bound", "non-finite result for a finite value"][why[worst]]
    return out


# --- 3. the pooled statistics -------------------------------------------------------------

ALPHA = 1e-10  # per statistic; <= 1e4 statistics per run keeps a run's false alarms below 1e-6


def bernstein_limit(variance: float, bound: float, alpha: float = ALPHA) -> float:
    """``t`` with ``P(|sum X_i| >= t) <= alpha`` for independent zero-mean ``|X_i| <= bound``
    with ``sum Var(X_i) <= variance`` (Bernstein: ``2 exp(-t²/(2(V + b t/3)))``)."""
    L = math.log(2 / alpha)
    a = bound * L / 3
    return a + math.sqrt(a * a + 2 * variance * L)


@dataclass
class StatCheck:
    """Pooled statistics of ``e = (imp - ref)/(u*bnd)`` over ``count`` elements."""

    count: int
    mean_square: float = 0.0
    mean_square_limit: float = math.inf
    bias: float = 0.0
    bias_limit: float = math.inf
    correlation: float = 0.0
    correlation_limit: float = math.inf
    failed: list[str] = field(default_factory=list)


MIN_STAT_ELEMENTS = 256


def pooled_statistics(imp: np.ndarray, ref: np.ndarray, bnd: np.ndarray, n: np.ndarray,
                      cls: PrecisionClass, fmt: FloatFormat, alpha: float = ALPHA, scale: float = 1.0) -> StatCheck:
    """Model: a conforming result's error on an element is a zero-mean sum of rounding
    errors: accumulation (random walk, variance ``n u_acc² bnd²/3``), input rounding
    (``4 u_in² bnd²/3``) and output rounding (``k u_out² ref²/3``); with ``u = max(u_acc, u_out)``
    and ``e = (imp - ref)/(u bnd)`` each ``e_i`` has variance ``v_i`` and range ``R_i``
    (the per-element bound over ``u bnd``). Three Bernstein tests at level ``alpha``:

    - mean square: ``sum (e_i² - v_i) <= t(sum R_i² v_i, max R_i²)``  (too large errors);
    - bias: ``|sum e_i| <= t(sum v_i, max R_i)``  (errors of one sign: truncation);
    - correlation with ``z_i = ref_i/bnd_i``: ``|sum e_i z_i| <= t(sum v_i z_i², max R_i)``
      (errors proportional to the value: a wrong scale).

    The bias and correlation limits also allow a systematic relative error of ``2**-52``
    (float64 scales and references are themselves rounded). For a class whose accumulator
    rounds toward zero the accumulation error is not zero-mean: its part of ``v_i`` is the
    worst case ``(n u_acc/u)²`` and the bias and correlation limits add its systematic part
    ``sum n_i u_acc/u`` (times ``|z_i|`` for the correlation) — input and output rounding,
    wrong scales beyond that, and errors larger than the per-element bound are still seen.

    Only elements with finite values, ``0 < bnd <= max_finite`` and a bound not dominated by
    the subnormal floor are pooled; fewer than 256 such elements: no statistics."""
    imp, ref, bnd, n = (a.astype(np.float64).ravel() for a in (imp, ref, bnd, n))
    u = max(cls.u_acc, fmt.unit_roundoff)
    floor = output_floor(cls, fmt) * (1 + (cls.out_roundings - 1) * abs(scale))
    k = cls.out_roundings
    rest = _scaled(n * cls.u_acc, bnd) + _scaled(2 * cls.u_in, bnd) + k * fmt.unit_roundoff * np.abs(ref)
    floor = floor + 2 * n * accumulator_floor(cls)
    ok = (np.isfinite(imp) & np.isfinite(ref) & (bnd > 0) & (floor < 0.01 * rest) & (np.abs(ref) <= fmt.max_finite)
          & (bnd <= fmt.max_finite))
    out = StatCheck(int(ok.sum()))
    if out.count < MIN_STAT_ELEMENTS:
        return out
    imp, ref, bnd, n = imp[ok], ref[ok], bnd[ok], n[ok]
    if cls.global_bound:
        bnd = np.full_like(bnd, bnd.max())
        n = np.full_like(n, n.max())
    e = (imp - ref) / (u * bnd)
    z = ref / bnd
    directed = cls.acc_rounding == "toward-zero"
    v_acc = (n * cls.u_acc / u) ** 2 if directed else n * cls.u_acc**2 / (3 * u * u)
    v = v_acc + (4 * cls.u_in**2 + k * fmt.unit_roundoff**2 * z**2) / (3 * u * u) + (U64 * z / u) ** 2
    sys_acc = n * cls.u_acc / u if directed else np.zeros_like(n)  # systematic accumulation error, units of e
    R = (n * cls.u_acc + 2 * cls.u_in + (k * fmt.unit_roundoff * (1 + fmt.unit_roundoff) + U64) * np.abs(z)) / u
    sys_rel = 2.0**-52 / u  # allowed systematic relative error, in units of e
    out.mean_square = float(np.sum(e * e - v))
    out.mean_square_limit = bernstein_limit(float(np.sum(R * R * v)), float(np.max(R * R)), alpha)
    out.bias = float(np.sum(e))
    out.bias_limit = (bernstein_limit(float(np.sum(v)), float(np.max(R)), alpha) + sys_rel * float(np.sum(np.abs(z)))
                      + float(np.sum(sys_acc)))
    out.correlation = float(np.sum(e * z))
    out.correlation_limit = (bernstein_limit(float(np.sum(v * z * z)), float(np.max(R * np.abs(z))), alpha)
                             + sys_rel * float(np.sum(z * z)) + float(np.sum(sys_acc * np.abs(z))))
    if out.mean_square > out.mean_square_limit:
        out.failed.append("mean-square")
    if abs(out.bias) > out.bias_limit:
        out.failed.append("bias")
    if abs(out.correlation) > out.correlation_limit:
        out.failed.append("correlation")
    return out
