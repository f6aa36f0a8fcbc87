"""Conformance checking: run backends over golden cases and judge every output tensor
with the tolerance model of :mod:`usconv_ref.compare`.

For each case: capabilities (skip with reason), the backend's outputs (or a port's result
files), dtype/shape checks, per tensor its declared precision class — ``exact``: bitwise
equal to the golden value; otherwise the per-element bound and per-case statistics — and
a determinism check (a second run bitwise equal). Statistics are also pooled per
(dtype, tensor, class) over all cases of a backend.
"""
from __future__ import annotations

import fnmatch
import math
import time
from dataclasses import dataclass, field

import numpy as np

from . import fast
from .catalog import Case
from .compare import (EXACT, ElementCheck, PrecisionClass, StatCheck, check_elements, element_bound,
                      pooled_statistics)
from .dtypes import FORMATS, case_dtype, to_float64_parts
from .golden import OUTPUTS, load_case
from .numerics import round_float64
from .scaling import exact_unit_scales
from .spec import resolve_geometry


# --- bounds: the op on absolute values, term counts: the op on ones ---------------------

def _normalized(a: np.ndarray) -> tuple[np.ndarray, int]:
    """``(a * 2**-e, e)`` with ``e`` the exponent of max|a| (so float64 sums of products
    of such arrays cannot overflow); exact."""
    m = float(np.max(a, initial=0.0))
    e = int(np.frexp(m)[1]) if m > 0 and np.isfinite(m) else 0
    return np.ldexp(a, -e), e


def _abs_conv(a: np.ndarray, b: np.ndarray, spec) -> np.ndarray:
    """The plain float64 forward of two nonnegative arrays, overflow-safe (inf only if the
    true value exceeds float64)."""
    (an, ea), (bn, eb) = _normalized(a), _normalized(b)
    with np.errstate(over="ignore"):
        return np.ldexp(fast.conv1d_float64(an, bn, None, spec, scales=(1.0,)), ea + eb)


def _abs_backward(g: np.ndarray, x: np.ndarray, w: np.ndarray, spec):
    """grad_x (from g, w) and grad_w (from g, x) of nonnegative arrays, overflow-safe."""
    (gn, eg), (xn, ex), (wn, ew) = _normalized(g), _normalized(x), _normalized(w)
    gx, gw, _ = fast.conv1d_backward_float64(gn, xn, wn, None, spec, scales=(1.0, 1.0))
    with np.errstate(over="ignore"):
        return np.ldexp(gx, eg + ew), np.ldexp(gw, eg + ex)


def _parts(a: np.ndarray) -> dict[str, np.ndarray]:
    """|re|, |im| and |re|+|im| of an array of any case dtype, as float64."""
    re, im = to_float64_parts(a, case_dtype(a.dtype))
    re = np.abs(re)
    if im is None:
        return {"r": re}
    im = np.abs(im)
    return {"r": re, "i": im, "s": re + im}


def _pairs(is_complex: bool, products: str) -> list[list[tuple[str, str]]]:
    """Per part, the (factor part, factor part) pairs whose abs-products bound it."""
    if not is_complex:
        return [[("r", "r")]]
    if products == "gauss":  # (|ar|+|ai|)(|br|+|bi|) + |ar||br| + |ai||bi| for both parts
        p = [("s", "s"), ("r", "r"), ("i", "i")]
        return [p, p]
    return [[("r", "r"), ("i", "i")], [("r", "i"), ("i", "r")]]


def reference_bounds(inputs: dict, spec, products: str, scales: dict) -> dict:
    """``{tensor: (bnd, n)}``, each with a leading part axis: ``bnd = |s| (sum |a||b| + |c|)``
    by the plain float64 path on absolute values, ``n`` the number of real products (the
    op on ones, so padded zeros do not count; a complex product counts 2)."""
    x, w, b, gy = inputs["x"], inputs["w"], inputs.get("b"), inputs["grad_y"]
    cd = case_dtype(x.dtype)
    xa, wa, gya = _parts(x), _parts(w), _parts(gy)
    ba = _parts(b) if b is not None else None
    pairs = _pairs(cd.is_complex, products)
    per = 2 if cd.is_complex else 1
    ones = lambda a: np.ones(a["r"].shape)
    out = {}
    y_b, gx_b, gw_b = [], [], []
    for p, plist in enumerate(pairs):
        yb = sum(_abs_conv(xa[i], wa[j], spec) for i, j in plist)
        if ba is not None:
            yb = yb + (ba["r"] if p == 0 else ba["i"])[:, None]
        with np.errstate(over="ignore"):
            y_b.append(yb * abs(scales["y"]))
        gx = gw = 0
        for i, j in plist:
            a, c = _abs_backward(gya[i], xa[j], wa[j], spec)
            gx, gw = gx + a, gw + c
        with np.errstate(over="ignore"):
            gx_b.append(gx * abs(scales["grad_x"]))
            gw_b.append(gw * abs(scales["grad_w"]))
    n_y = fast.conv1d_float64(ones(xa), ones(wa), None, spec, scales=(1.0,)) * per + (b is not None)
    n_gx, n_gw, _ = fast.conv1d_backward_float64(ones(gya), ones(xa), ones(wa), None, spec, scales=(1.0, 1.0))
    P = len(pairs)
    stack = lambda a: np.stack([a] * P)
    out["y"] = (np.stack(y_b), stack(n_y))
    out["grad_x"] = (np.stack(gx_b), stack(n_gx * per))
    out["grad_w"] = (np.stack(gw_b), stack(n_gw * per))
    if b is not None:
        gsum = [gya["r"].sum(axis=(0, -1) if gy.ndim == 3 else -1)]
        if cd.is_complex:
            gsum.append(gya["i"].sum(axis=(0, -1) if gy.ndim == 3 else -1))
        count = np.full(w.shape[0], gy.size // max(w.shape[0], 1), np.float64)
        out["grad_b"] = (np.stack(gsum) * abs(scales["grad_b"]), stack(count))
    return out


def _float_parts(a: np.ndarray) -> np.ndarray:
    """``(P, ...)`` float64 parts of an array of any case dtype."""
    return np.stack([p for p in to_float64_parts(a, case_dtype(a.dtype)) if p is not None])


def _scales_for(case: Case, cls_by_tensor: dict[str, PrecisionClass], x_shape, w_shape) -> tuple[dict, dict]:
    """Expected scales per tensor: exact float64 unless the class rounds them; also the
    factor ``rounded/exact`` applied to the golden float64 reference."""
    spec = case.spec
    geo = resolve_geometry(x_shape, w_shape, None, spec)
    sc = exact_unit_scales(geo, spec)
    exact = {"y": float(sc.output), "grad_x": float(sc.grad_input),
             "grad_w": 0.0 if sc.grad_weight is None else float(sc.grad_weight)}
    exact["grad_b"] = exact["grad_w"]
    used, factor = {}, {}
    for t, s in exact.items():
        cls = cls_by_tensor.get(t)
        if cls is not None and cls.scale_dtype is not None and s != 0:
            r = float(round_float64(np.array([s]), FORMATS[cls.scale_dtype])[0])
            used[t], factor[t] = r, r / s
        else:
            used[t], factor[t] = s, 1.0
    return used, factor


# --- results --------------------------------------------------------------------------

@dataclass
class TensorResult:
    tensor: str
    cls: str
    status: str  # pass, fail
    failures: int = 0
    count: int = 0
    worst_index: tuple = ()
    worst_imp: float = math.nan
    worst_ref: float = math.nan
    worst_ratio: float = 0.0
    reason: str = ""
    stats: StatCheck | None = None
    ratios: np.ndarray | None = None


@dataclass
class CaseResult:
    case_id: str
    dtype: str
    status: str  # pass, fail, error, skip, known
    reason: str = ""
    tensors: list[TensorResult] = field(default_factory=list)
    deterministic: bool | None = None
    seconds: float = 0.0


@dataclass
class PooledResult:
    dtype: str
    tensor: str
    cls: str
    stats: StatCheck


@dataclass
class BackendResult:
    name: str
    spec_arg: str
    description: str
    available: bool
    reason: str = ""
    cases: list[CaseResult] = field(default_factory=list)
    pooled: list[PooledResult] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(c.status in ("fail", "error") for c in self.cases) or any(p.stats.failed for p in self.pooled)

    def counts(self) -> dict:
        out = {}
        for c in self.cases:
            out[c.status] = out.get(c.status, 0) + 1
        return out


def _same_bits(pa: np.ndarray, pb: np.ndarray) -> np.ndarray:
    """Elementwise: equal values with equal signs of zero, or both NaN (any payload)."""
    return ((pa == pb) & (np.signbit(pa) == np.signbit(pb))) | (np.isnan(pa) & np.isnan(pb))


def _bitwise_equal(a: np.ndarray, b: np.ndarray) -> bool:
    """Same dtype, shape and bits (every NaN equal to every NaN)."""
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    return bool(np.all(_same_bits(_float_parts(a), _float_parts(b))))


def judge_tensor(tensor: str, imp: np.ndarray, golden: dict, bnd, n, cls: PrecisionClass, factor: float,
                 keep_ratios: bool, scale: float = 1.0) -> TensorResult:
    """One output tensor against the golden expectation under ``cls``."""
    cd = case_dtype(golden[tensor].dtype)
    want = golden[tensor]
    res = TensorResult(tensor, cls.name, "pass", count=int(want.size))
    if imp is None:
        res.status, res.reason = "fail", "no result returned"
        return res
    if imp.dtype != want.dtype:
        res.status, res.reason = "fail", f"returned dtype {imp.dtype}, expected {want.dtype}"
        return res
    if imp.shape != want.shape:
        res.status, res.reason = "fail", f"returned shape {imp.shape}, expected {want.shape}"
        return res
    ref = _float_parts(golden[tensor + "_f64"]) * factor
    got = _float_parts(imp)
    if cls.name == EXACT.name:
        if not _bitwise_equal(imp, want):
            wp = _float_parts(want)
            diff = ~_same_bits(got, wp)
            res.status, res.failures = "fail", int(diff.sum())
            i = int(np.argmax(diff.ravel()))
            res.worst_index = np.unravel_index(i, got.shape)
            res.worst_imp, res.worst_ref = float(got.ravel()[i]), float(wp.ravel()[i])
            res.reason = "not bitwise equal to the correctly rounded value (class exact)"
        return res
    fmt = cd.part
    bound = element_bound(bnd, n, ref, cls, fmt, scale)
    ec: ElementCheck = check_elements(got, ref, bound, n, fmt, bnd)
    res.failures = ec.failures
    res.worst_ratio = ec.worst_ratio
    if keep_ratios:
        res.ratios = ec.ratios
    if ec.worst is not None:
        res.worst_index = tuple(int(v) for v in np.unravel_index(ec.worst, got.shape))
        res.worst_imp, res.worst_ref = float(got.ravel()[ec.worst]), float(ref.ravel()[ec.worst])
    if ec.failures:
        res.status, res.reason = "fail", ec.reason
    st = pooled_statistics(got, ref, bnd, n, cls, fmt, scale=scale)
    res.stats = st
    if st.failed:
        res.status = "fail"
        res.reason = (res.reason + "; " if res.reason else "") + "statistics: " + ", ".join(st.failed)
    return res


def run_backend_case(backend, case: Case, golden: dict):
    """The backend's outputs for a case: ``{tensor: array}`` (unbatched kept unbatched)."""
    if hasattr(backend, "results_for"):
        return backend.results_for(case)
    spec = case.spec
    x, w, b, gy = golden["x"], golden["w"], golden.get("b"), golden["grad_y"]
    out = {"y": backend.conv1d(x, w, b, spec)}
    if backend.capabilities().backward:
        gx, gw, gb = backend.conv1d_backward(gy, x, w, b, spec)
        out.update(grad_x=gx, grad_w=gw)
        if b is not None:
            out["grad_b"] = gb
    return out


def check_backend(backend, spec_arg: str, cases: list[Case], golden_dir, determinism: bool = True,
                  progress=None, keep_ratios: bool = False) -> BackendResult:
    ok, why = backend.availability()
    res = BackendResult(backend.name, spec_arg, backend.describe() if ok else "", ok, why)
    if not ok:
        return res
    caps = backend.capabilities()
    deviations = backend.known_deviations()
    pools: dict[tuple, list] = {}
    for i, case in enumerate(cases):
        t0 = time.perf_counter()
        golden = load_case(golden_dir, case)
        batched = len(case.input_shape) == 3
        N = case.input_shape[0] if batched else 1
        supported, reason = caps.supports(case.dtype, case.spec, batched, N)
        if progress:
            progress(i + 1, len(cases), f"{backend.name} {case.id}")
        if not supported:
            res.cases.append(CaseResult(case.id, case.dtype, "skip", reason))
            continue
        known = [d for d in deviations if fnmatch.fnmatchcase(case.id, d.pattern)]
        cr = CaseResult(case.id, case.dtype, "pass")
        try:
            outs = run_backend_case(backend, case, golden)
            if determinism and not hasattr(backend, "results_for"):
                again = run_backend_case(backend, case, golden)
                cr.deterministic = all(_bitwise_equal(np.asarray(outs[k]), np.asarray(again[k])) for k in outs)
        except Exception as exc:  # a backend crash is a conformance failure, reported
            if type(exc).__name__ == "NotProvided":
                res.cases.append(CaseResult(case.id, case.dtype, "skip", str(exc)))
                continue
            cr.status = "known" if known else "error"
            cr.reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
            cr.seconds = time.perf_counter() - t0
            res.cases.append(cr)
            continue
        classes = {t: backend.precision(case.dtype, t, case.spec) for t in OUTPUTS if t in golden}
        used, factor = _scales_for(case, classes, golden["x"].shape, golden["w"].shape)
        bounds_cache = {}
        missing = [t for t in OUTPUTS if t in golden and t not in outs]
        if missing:
            cr.reason = "not provided: " + ", ".join(missing)
        for t in OUTPUTS:
            if t not in golden or t not in outs:
                continue
            cls = classes[t]
            if cls.name != EXACT.name:
                key = (cls.products, tuple(sorted(used.items())))
                if key not in bounds_cache:
                    bounds_cache[key] = reference_bounds(golden, case.spec, cls.products, used)
                bnd, n = bounds_cache[key][t]
            else:
                bnd = n = None
            imp = outs[t]
            imp = None if imp is None else np.asarray(imp)
            tr = judge_tensor(t, imp, golden, bnd, n, cls, factor[t], keep_ratios, used[t])
            cr.tensors.append(tr)
            if cls.name != EXACT.name and not known and imp is not None and imp.shape == golden[t].shape \
                    and imp.dtype == golden[t].dtype:
                pools.setdefault((case.dtype, t, cls), []).append(
                    (_float_parts(imp), _float_parts(golden[t + "_f64"]) * factor[t], bnd, n, used[t]))
        if any(t.status == "fail" for t in cr.tensors):
            cr.status = "known" if known else "fail"
            if known:
                cr.reason = "; ".join(d.reason for d in known)
        elif known:
            cr.reason = "known deviation declared, but the case passes: " + "; ".join(d.reason for d in known)
        if not cr.tensors and cr.status == "pass":
            cr.status = "skip"
        cr.seconds = time.perf_counter() - t0
        res.cases.append(cr)
    for (dtype, t, cls), items in sorted(pools.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2].name)):
        cat = lambda j: np.concatenate([it[j].ravel() for it in items])
        st = pooled_statistics(cat(0), cat(1), cat(2), cat(3), cls, case_dtype(dtype).part,
                               scale=max(it[4] for it in items))
        res.pooled.append(PooledResult(dtype, t, cls.name, st))
    return res

