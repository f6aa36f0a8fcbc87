"""Simulated implementations for the harness's self-test: legitimate variants (other
summation orders, fp32 accumulation of 16-bit data, Gauss complex products, declared scale
rounding, TF32 declared as TF32, an FFT forward under ``global_bound``) and seeded bugs.

``SimBackend`` gathers the op's terms with the reference's own term builders (exact
float64 factors), then does what a real kernel does: rounds inputs (TF32), forms products
and sums in an accumulator format in some order, multiplies by the scale and rounds once
into the output dtype. Each bug changes exactly one thing.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from backends import Backend, Capabilities, KnownDeviation
from usconv_ref import correlation
from usconv_ref.compare import FP32_ACC, FP64_ACC, TF32, PrecisionClass
from usconv_ref.dtypes import FORMATS, FloatFormat, case_dtype, from_float64_parts, to_float64_parts
from usconv_ref.numerics import round_float64
from usconv_ref.ops import prepare
from usconv_ref.padding import source_index
from usconv_ref.scaling import exact_unit_scales

TF32_FMT = FloatFormat("tf32", 11, -126, 127)


_NATIVE = {"float16": np.float16, "float32": np.float32, "float64": np.float64}


def _round(v: np.ndarray, fmt: FloatFormat, rz: bool = False) -> np.ndarray:
    """Round float64 values into ``fmt``: to nearest even, or toward zero (``rz``).
    NumPy's float64 -> float16/float32 casts round correctly; other formats use the
    reference's rounding."""
    t = _NATIVE.get(fmt.name)
    with np.errstate(over="ignore", invalid="ignore"):
        if t is None:
            r = round_float64(v, fmt)
            if rz:  # one step toward zero where rounding went away from zero
                m, e = np.frexp(np.abs(r))
                step = np.maximum(np.ldexp(1.0, e - fmt.precision - (m == 0.5)), fmt.smallest_subnormal)
                r = np.where(np.abs(r) > np.abs(v), r - np.sign(r) * step, r)
            return r
        r = np.asarray(v).astype(t)
        if rz:
            over = np.abs(r.astype(np.float64)) > np.abs(v)
            r = np.where(over, np.nextafter(r, t(0)), r)
        return r.astype(np.float64)


def _tf32(v: np.ndarray) -> np.ndarray:
    """float32 values rounded to TF32 (10 explicit significand bits), nearest even, by bits."""
    bits = np.asarray(v, np.float32).view(np.uint32)
    finite = np.isfinite(np.asarray(v, np.float32))
    r = (bits + np.uint32(0xFFF) + ((bits >> np.uint32(13)) & np.uint32(1))) & np.uint32(0xFFFFE000)
    return np.where(finite, r.view(np.float32), v).astype(np.float64)


class SimBackend(Backend):
    def __init__(self, name: str, acc: str = "float32", order: str = "forward", tf32: bool = False,
                 gauss: bool = False, rz: bool = False, scale_round: bool = False, fft: bool = False,
                 bug: str | None = None, declare: PrecisionClass | None = None,
                 declare_scale_rounding: bool = False, declare_tf32: bool = False):
        self.name, self.acc, self.order, self.tf32, self.gauss = name, acc, order, tf32, gauss
        self.rz, self.scale_round, self.fft, self.bug = rz, scale_round, fft, bug
        self.declare = declare
        self.declare_scale_rounding, self.declare_tf32 = declare_scale_rounding, declare_tf32

    def capabilities(self):
        return Capabilities(dtypes=frozenset({"float16", "bfloat16", "float32", "complex64"}))

    def known_deviations(self):
        if self.fft:
            return [KnownDeviation("*special*", "an FFT spreads NaN/inf over the whole signal, not just "
                                                "the receptive field")]
        return []

    def precision(self, dtype, tensor, spec):
        cd = case_dtype(dtype)
        base = self.declare or (TF32 if self.declare_tf32 else (FP64_ACC if self.acc == "float64" else FP32_ACC))
        cls = replace(base, products="gauss" if self.gauss and cd.is_complex else "exact")
        if self.declare_scale_rounding:
            cls = replace(cls, scale_dtype=cd.part.name)
        if self.fft and tensor == "y":
            cls = replace(cls, global_bound=True, name=cls.name + "+global")
        return cls

    # --- the simulated arithmetic ---
    def _acc_fmt(self) -> FloatFormat:
        return FORMATS[self.acc]

    def _sum(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Round inputs (TF32), products and running sums in the accumulator format."""
        fmt = self._acc_fmt()
        if self.bug == "nan_dropped":
            a, b = np.nan_to_num(a, nan=0.0), np.nan_to_num(b, nan=0.0)
        if self.tf32:
            a, b = _tf32(a), _tf32(b)
        with np.errstate(invalid="ignore", over="ignore"):
            p = _round(a * b, fmt, self.rz)
            cols = list(range(p.shape[1]))
            if self.order == "reverse":
                cols.reverse()
            if self.order == "pairwise":
                terms = [p[:, j] for j in cols]
                while len(terms) > 1:
                    terms = [_round(terms[i] + terms[i + 1], fmt, self.rz) if i + 1 < len(terms) else terms[i]
                             for i in range(0, len(terms), 2)]
                return terms[0] if terms else np.zeros(p.shape[0])
            acc = np.zeros(p.shape[0])
            for j in cols:
                acc = _round(acc + p[:, j], fmt, self.rz)
        return acc

    def _gauss_parts(self, parts):
        """Complex sums with 3 real multiplications per product (and a bias column)."""
        (a0, b0), (_, b1) = parts
        fmt = self._acc_fmt()
        bias = a0.shape[1] % 2 == 1
        m = (a0.shape[1] - bias) // 2
        ar, ai, br, nbi = a0[:, :m], a0[:, m:2 * m], b0[:, :m], b0[:, m:2 * m]
        bi = -nbi
        r = lambda v: _round(v, fmt, self.rz)
        t1 = r(br * r(ar + ai))
        t2 = r(ar * r(bi - br))
        t3 = r(ai * r(br + bi))
        re_terms, im_terms = r(t1 - t3), r(t1 + t2)
        if bias:
            re_terms = np.concatenate([re_terms, a0[:, -1:]], axis=1)
            im_terms = np.concatenate([im_terms, parts[1][0][:, -1:]], axis=1)
        one = np.ones_like(re_terms)
        return [self._sum(re_terms, one), self._sum(im_terms, one)]

    def _evaluate(self, terms: correlation.Terms, scale: float, cd, bias_unscaled=None) -> np.ndarray:
        rows = np.arange(int(np.prod(terms.shape)), dtype=np.int64)
        parts = terms.builder(rows) if rows.size else [(np.zeros((0, 1)), np.zeros((0, 1)))] * terms.n_parts
        complex_products = len(parts) == 2 and parts[0][0].shape[1] >= 2 and np.array_equal(
            parts[0][0][:, : parts[0][0].shape[1] // 2 * 2], parts[1][0][:, : parts[0][0].shape[1] // 2 * 2])
        if self.gauss and complex_products and rows.size:
            sums = self._gauss_parts(parts)
        else:
            sums = [self._sum(a, b) for a, b in parts]
        out = []
        for i, sm in enumerate(sums):
            with np.errstate(over="ignore", invalid="ignore"):
                v = sm * scale
                if bias_unscaled is not None:
                    v = v + bias_unscaled[i]
            out.append(_round(v, cd.part, self.rz).reshape(terms.shape))
        if cd.is_complex and len(out) == 1:
            out.append(np.zeros_like(out[0]))
        return from_float64_parts(out[0], out[1] if cd.is_complex else None, cd)

    def _scales(self, geo, spec, cd):
        sc = exact_unit_scales(geo, spec)
        s = {"y": float(sc.output), "grad_x": float(sc.grad_input),
             "grad_w": 0.0 if sc.grad_weight is None else float(sc.grad_weight)}
        p0, p1, p2 = spec.scale_power
        if self.bug == "fanin_ignores_groups":
            s["y"] = float((geo.C_in * geo.K) ** -p0) if spec.constraint in ("to_output_scale", None) else s["y"]
        if self.bug == "gx_scale_no_stride":
            base = (spec.groups / (geo.C_out * geo.K)) ** p1
            s["grad_x"] = base if spec.constraint in (None, "to_grad_input_scale") else s["grad_x"]
            if spec.constraint == "to_output_scale":
                s["grad_x"] = base
        if self.bug == "gw_scale_no_Lout":
            s["grad_w"] = float(geo.batch_size ** -p2) if geo.batch_size else 0.0
        if self.scale_round:
            s = {k: float(round_float64(np.array([v]), cd.part)[0]) for k, v in s.items()}
        return s

    def _src(self, geo, spec):
        pl, pr = geo.pl, geo.pr
        if self.bug == "pad_off_by_one":
            pl, pr = pl + 1, max(pr - 1, 0) if pr else pr
            src = source_index(geo.L, pl, pr, spec.padding_mode)
            return np.concatenate([src, np.full(geo.L_pad - src.size, -1)])[: geo.L_pad]
        if self.bug == "same_extra_left" and spec.padding == "same":
            return source_index(geo.L, geo.pr, geo.pl, spec.padding_mode)
        j = np.arange(-geo.pl, geo.L + geo.pr)
        if self.bug == "reflect_symmetric" and spec.padding_mode == "reflect":
            return np.where(j < 0, -j - 1, np.where(j >= geo.L, 2 * geo.L - 1 - j, j))
        if self.bug == "circular_wrong_way" and spec.padding_mode == "circular":
            return np.where(j < 0, (-j - 1) % geo.L, np.where(j >= geo.L, geo.L - 1 - (j - geo.L) % geo.L, j))
        return None

    def conv1d(self, x, w, b, spec):
        prep, _ = prepare(x, w, b, spec)
        geo, ops, cd = prep.geo, prep.ops, prep.dtype
        s = self._scales(geo, spec, cd)["y"]
        if self.bug == "groups_permuted" and geo.groups > 1:
            G, Og = geo.groups, geo.Og
            pi = np.array([(o % G) * Og + o // G for o in range(geo.C_out)])
            inv = np.empty_like(pi)
            inv[pi] = np.arange(geo.C_out)
            perm = lambda a: None if a is None else a[inv]
            ops = correlation.Operands(ops.xr, ops.xi, perm(ops.wr), perm(ops.wi), perm(ops.br), perm(ops.bi))
            y = self._forward(geo, ops, spec, s, cd)
            y = y[:, pi] if y.ndim == 3 else y[pi]
            return y
        return self._forward(geo, ops, spec, s, cd)

    def _forward(self, geo, ops, spec, s, cd):
        bias_unscaled = None
        if self.bug == "bias_unscaled" and ops.br is not None:
            b_parts = [ops.br] + ([ops.bi] if ops.bi is not None else [])
            bias_unscaled = [np.broadcast_to(bp[None, :, None], (geo.N, geo.C_out, geo.L_out)).ravel() for bp in b_parts]
            ops = correlation.Operands(ops.xr, ops.xi, ops.wr, ops.wi, None, None)
        if self.fft and geo.stride == 1 and geo.dilation == 1 and geo.groups == 1 and not cd.is_complex:
            y = self._fft_forward(geo, ops, spec, s, cd)
        else:
            terms = correlation.forward_terms(geo, ops, spec.padding_mode, src=self._src(geo, spec))
            y = self._evaluate(terms, s, cd, bias_unscaled)
        return y if geo.batched else y[0]

    def _fft_forward(self, geo, ops, spec, s, cd):
        src = source_index(geo.L, geo.pl, geo.pr, spec.padding_mode)
        xp = np.where(src >= 0, ops.xr[:, :, np.maximum(src, 0)], 0.0).astype(np.float32)
        n = geo.L_pad + geo.K
        X = np.fft.rfft(xp, n=n)  # (N, C, F) complex64
        W = np.fft.rfft(ops.wr[:, :, ::-1].astype(np.float32), n=n)  # correlation = conv with reversed w
        Y = np.einsum("ncf,ocf->nof", X, W)
        full = np.fft.irfft(Y, n=n).astype(np.float32)
        raw = full[:, :, geo.K - 1: geo.K - 1 + geo.L_out].astype(np.float64)
        if ops.br is not None:
            raw = raw + ops.br[None, :, None]
        return from_float64_parts(_round(raw * s, cd.part), None, cd)

    def conv1d_backward(self, gy, x, w, b, spec):
        prep, arrays = prepare(x, w, b, spec, {"grad_output": gy})
        geo, ops, cd = prep.geo, prep.ops, prep.dtype
        gyr, gyi = to_float64_parts(gy if geo.batched else gy[None], cd)
        s = self._scales(geo, spec, cd)
        src = self._src(geo, spec)
        if self.bug == "adjoint_dropped":
            full = source_index(geo.L, geo.pl, geo.pr, spec.padding_mode)
            j = np.arange(-geo.pl, geo.L + geo.pr)
            src = np.where((j >= 0) & (j < geo.L), full, -1)
        gx_t = correlation.grad_input_terms(geo, gyr, gyi, ops, spec.padding_mode, src=src,
                                            conj=self.bug != "no_conj_gx")
        gw_t = correlation.grad_weight_terms(geo, gyr, gyi, ops, spec.padding_mode, src=src,
                                             conj=self.bug != "no_conj_gw")
        gx = self._evaluate(gx_t, s["grad_x"], cd)
        gw = self._evaluate(gw_t, s["grad_w"], cd)
        gb = self._evaluate(correlation.grad_bias_terms(geo, gyr, gyi), s["grad_w"], cd) if b is not None else None
        return (gx if geo.batched else gx[0]), gw, gb


LEGIT = {
    "fp32-forward-order": dict(),
    "fp32-reverse-order": dict(order="reverse"),
    "fp32-pairwise-order": dict(order="pairwise"),
    "gauss-complex": dict(gauss=True),
    "declared-scale-rounding": dict(scale_round=True, declare_scale_rounding=True),
    "tf32-declared-tf32": dict(tf32=True, declare_tf32=True),
    "fft-forward-global-bound": dict(fft=True),
}

BUGS = {
    "pad_off_by_one": dict(bug="pad_off_by_one"),
    "same_extra_left": dict(bug="same_extra_left"),
    "reflect_symmetric": dict(bug="reflect_symmetric"),
    "circular_wrong_way": dict(bug="circular_wrong_way"),
    "adjoint_dropped": dict(bug="adjoint_dropped"),
    "fanin_ignores_groups": dict(bug="fanin_ignores_groups"),
    "gx_scale_no_stride": dict(bug="gx_scale_no_stride"),
    "gw_scale_no_Lout": dict(bug="gw_scale_no_Lout"),
    "bias_unscaled": dict(bug="bias_unscaled"),
    "no_conj_gx": dict(bug="no_conj_gx"),
    "no_conj_gw": dict(bug="no_conj_gw"),
    "groups_permuted": dict(bug="groups_permuted"),
    "fp16_acc_declared_fp32": dict(acc="float16"),
    "tf32_declared_fp32": dict(tf32=True),
    "truncation": dict(rz=True),
    "undeclared_scale_rounding": dict(scale_round=True),
    "nan_dropped": dict(bug="nan_dropped"),
}


def make(name: str) -> SimBackend:
    kw = LEGIT.get(name, BUGS.get(name))
    return SimBackend(name, **kw)


def suite_cases(seed: int):
    """The self-test's cases for one seed (fresh data per seed: ids carry the seed)."""
    from usconv_ref.catalog import Case
    def c(name, dtype, dataset, shape, wshape, bias, **kw):
        return Case(f"mut{seed}.{name}", "mutant", dtype, dataset, shape, wshape, bias, kw)
    return [
        c("f32-reflect-g2-s2", "float32", "normal", (2, 8, 40), (8, 4, 3), True, padding=2, padding_mode="reflect",
          groups=2, stride=2),
        c("f32-circular-d2", "float32", "normal", (2, 4, 24), (4, 4, 3), True, padding=3, padding_mode="circular",
          dilation=2),
        c("f32-same-odd", "float32", "normal", (2, 8, 32), (8, 8, 4), False, padding="same"),
        c("c64-g2", "complex64", "normal", (2, 4, 24), (8, 2, 3), True, padding=1, groups=2),
        c("f16-k5", "float16", "normal", (2, 16, 48), (16, 16, 5), True, padding=2),
        c("f32-special", "float32", "special", (2, 8, 160), (8, 8, 3), True, padding=1),  # ~40 specials in x
        c("bf16-replicate", "bfloat16", "normal", (2, 8, 32), (8, 8, 3), True, padding=1, padding_mode="replicate"),
        c("f32-dw-mult", "float32", "normal", (2, 8, 32), (16, 1, 5), True, padding=2, groups=8,
          padding_mode="replicate"),
        c("f32-long", "float32", "normal", (1, 64, 32), (8, 64, 6), False, padding=2, stride=3, constraint=None),
    ]
