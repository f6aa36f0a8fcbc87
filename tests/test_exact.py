"""Every element of every output equals the correctly rounded exact value, computed by the
independent oracle in ``oracles.py`` (Fraction loops over the SPEC formulas, decimal
scales, rounding by exact distance to neighbouring representable values)."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

import oracles
import usconv_ref as ur
from usconv_ref import COMPLEX32

PART = {"float16": "float16", "bfloat16": "bfloat16", "float32": "float32", "float64": "float64",
        "complex32": "float16", "complex64": "float32", "complex128": "float64"}


def make(dtype: str, shape, rng, scale=1.0):
    """Random values of ``dtype`` (standard normal times ``scale``, rounded by numpy)."""
    part = oracles.REAL[PART[dtype]]
    re = (rng.standard_normal(shape) * scale).astype(part)
    if dtype in ("float16", "bfloat16", "float32", "float64"):
        return re
    im = (rng.standard_normal(shape) * scale).astype(part)
    if dtype == "complex32":
        out = np.empty(shape, COMPLEX32)
        out["real"], out["imag"] = re, im
        return out
    return re.astype(np.float64) + 1j * im.astype(np.float64) if dtype == "complex128" else (re + 1j * im.astype(np.float32)).astype(np.complex64)


def parts(a: np.ndarray):
    if a.dtype.names:
        return [a["real"].astype(np.float64), a["imag"].astype(np.float64)]
    if np.iscomplexobj(a):
        return [a.real.astype(np.float64), a.imag.astype(np.float64)]
    return [a.astype(np.float64)]


def assert_matches(got: np.ndarray, raw, scale, part_name: str, what: str):
    """Compare every element of ``got`` with oracle rounding of ``scale * raw``."""
    got_parts = parts(got)
    flat_raw = np.array(raw, dtype=object).reshape(-1, 2) if got.size else np.zeros((0, 2), object)
    for p, gp in enumerate(got_parts):
        gflat = gp.ravel()
        for i in range(gflat.size):
            want = oracles.round_scaled(flat_raw[i][p], scale, part_name)
            g = gflat[i]
            assert (g == want and np.signbit(g) == np.signbit(want)) or (np.isnan(g) and np.isnan(want)), (
                f"{what} part {p} element {np.unravel_index(i, gp.shape)}: got {g!r} want {want!r} "
                f"(raw {flat_raw[i][p]}, scale {scale})")


def _unwrap(v):
    return v[0] if isinstance(v, (tuple, list)) and len(v) == 1 else v


def run_and_check(x, w, b, gy, kw, dtype: str, out_dtype=None):
    y = ur.conv1d(x, w, b, out_dtype=out_dtype, **kw)
    gx, gw, gb = ur.conv1d_backward(gy, x, w, b, out_dtype=out_dtype, **kw)
    kw = {k: _unwrap(v) for k, v in kw.items()}
    unbatched = x.ndim == 2
    xs = x[None] if unbatched else x
    gys = gy[None] if unbatched else gy
    ex_x, ex_w, ex_gy = oracles.to_fractions(xs), oracles.to_fractions(w), oracles.to_fractions(gys)
    ex_b = None if b is None else oracles.to_fractions(b)
    raw_y, raw_gx, raw_gw, raw_gb = oracles.exact_conv(
        ex_x, ex_w, ex_b, ex_gy, kw.get("stride", 1), kw.get("padding", 0), kw.get("dilation", 1),
        kw.get("groups", 1), kw.get("padding_mode", "zeros"))
    C_out, Cg, K = w.shape
    L_out = y.shape[-1]
    fan = (xs.shape[0] if not unbatched else 1) * L_out
    s_out, s_gx, s_gw = oracles.oracle_scales(Cg, K, C_out, kw.get("stride", 1), kw.get("groups", 1), fan,
                                              kw.get("constraint", "to_output_scale"), kw.get("scale_power", (0.5, 0.5, 0.5)))
    name = PART[out_dtype if isinstance(out_dtype, str) else dtype] if out_dtype is None or isinstance(out_dtype, str) else (
        "float64")
    assert_matches(y if not unbatched else y[None], raw_y, s_out, name, "y")
    assert_matches(gx if not unbatched else gx[None], raw_gx, s_gx, name, "grad_x")
    if s_gw is not None:
        assert_matches(gw, raw_gw, s_gw, name, "grad_w")
        if b is not None:
            assert_matches(gb, raw_gb, s_gw, name, "grad_b")
    else:
        assert not np.any(parts(gw)[0]), "N=0: grad_w must be exactly zero"


DTYPES = ["float16", "bfloat16", "float32", "float64", "complex32", "complex64", "complex128"]

CONFIGS = [
    # (N, C_in, C_out, L, K, kw, bias, unbatched)
    (2, 2, 2, 7, 3, dict(padding=1), True, False),
    (1, 4, 4, 9, 3, dict(padding=2, padding_mode="reflect", stride=2, groups=2), True, False),
    (2, 2, 4, 6, 2, dict(padding="same", padding_mode="replicate", dilation=3, groups=2), False, False),
    (1, 3, 6, 5, 3, dict(padding=(5,), padding_mode="circular", stride=(3,), groups=3), True, True),
    (2, 2, 2, 8, 4, dict(padding="valid", dilation=2, constraint=None, scale_power=(1, 1, 1)), True, False),
    (1, 2, 2, 5, 3, dict(padding=4, padding_mode="reflect", constraint="gmean"), False, False),
    (2, 3, 3, 4, 1, dict(padding="same", constraint="hmean", scale_power=(0.3, -1.5, 2.0)), True, False),
    (1, 2, 4, 6, 3, dict(padding=1, constraint="amean", stride=4), True, False),
    (1, 2, 2, 1, 3, dict(padding=2, padding_mode="replicate", constraint="to_grad_input_scale"), True, False),
    (2, 2, 2, 5, 2, dict(padding=1, scale_power=(0, 0, 0), constraint=None), True, False),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", range(len(CONFIGS)))
def test_random_cases_match_exact_oracle(dtype, cfg):
    """Random data, every feature: all elements of y, grad_x, grad_w, grad_b equal the
    Fraction oracle's correctly rounded value (in the case dtype)."""
    N, C_in, C_out, L, K, kw, bias, unbatched = CONFIGS[cfg]
    rng = np.random.default_rng(cfg * 31 + DTYPES.index(dtype))
    groups = kw.get("groups", 1)
    x = make(dtype, (C_in, L) if unbatched else (N, C_in, L), rng)
    w = make(dtype, (C_out, C_in // groups, K), rng)
    b = make(dtype, (C_out,), rng) if bias else None
    y = ur.conv1d(x, w, b, **kw)
    gy = make(dtype, y.shape, rng)
    run_and_check(x, w, b, gy, kw, dtype)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "complex32"])
def test_high_accuracy_out_dtype(dtype):
    """out_dtype=float64/complex128 gives the exact value correctly rounded to float64."""
    rng = np.random.default_rng(7)
    x, w, b = make(dtype, (2, 2, 6), rng), make(dtype, (2, 2, 3), rng), make(dtype, (2,), rng)
    gy = make(dtype, (2, 2, 6), rng)
    od = np.complex128 if dtype == "complex32" else np.float64
    y = ur.conv1d(x, w, b, padding=1, out_dtype=od)
    assert y.dtype == np.dtype(od)
    gx, gw, gb = ur.conv1d_backward(gy, x, w, b, padding=1, out_dtype=od)
    xs = oracles.to_fractions(x)
    raw_y, raw_gx, raw_gw, raw_gb = oracles.exact_conv(xs, oracles.to_fractions(w), oracles.to_fractions(b),
                                                       oracles.to_fractions(gy), padding=1)
    s_out, s_gx, s_gw = oracles.oracle_scales(2, 3, 2, 1, 1, 12, "to_output_scale", (0.5, 0.5, 0.5))
    assert_matches(y, raw_y, s_out, "float64", "y")
    assert_matches(gx, raw_gx, s_gx, "float64", "grad_x")
    assert_matches(gw, raw_gw, s_gw, "float64", "grad_w")
    assert_matches(gb, raw_gb, s_gw, "float64", "grad_b")


# --- adversarial data: ties, cancellation, tiny terms, subnormals, overflow -------------

def _single(dtype, values_x, values_w, power=(0, 0, 0), constraint=None, bias=None):
    """y of a conv with Cg=1, K=len(values): y = s * sum x[k] w[k] (+ b)."""
    t = oracles.REAL[dtype]
    x = np.array([[values_x]], dtype=t)
    w = np.array([[values_w]], dtype=t)
    b = None if bias is None else np.array([bias], dtype=t)
    return ur.conv1d(x, w, b, constraint=constraint, scale_power=power)[0, 0, 0]


def _ulp_one(dtype):
    return {"float16": 2.0**-10, "bfloat16": 2.0**-7, "float32": 2.0**-23, "float64": 2.0**-52}[dtype]


TINY = {"float16": 2.0**-24, "bfloat16": 2.0**-133, "float32": 2.0**-149, "float64": 2.0**-1074}


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_exact_ties_and_tie_plus_tiny(dtype):
    """1 + ulp/2 is a tie (to even: 1); a product far below the tie's ulp breaks it either
    way; 1 + 3ulp/2 ties up to the even neighbour 1 + 2ulp."""
    u = _ulp_one(dtype)
    tiny = TINY[dtype]
    assert float(_single(dtype, [1, u / 2, 0], [1, 1, 1])) == 1.0
    assert float(_single(dtype, [1, u / 2, tiny], [1, 1, tiny])) == 1.0 + u  # tiny*tiny far below
    assert float(_single(dtype, [1, u / 2, -tiny], [1, 1, tiny])) == 1.0
    assert float(_single(dtype, [1, 1.5 * u, 0], [1, 1, 1])) == 1.0 + 2 * u


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_non_dyadic_rational_scale_ties(dtype):
    """scale 1/3 (Cg*K = 3, p0 = 1): 3*(1 + ulp/2) / 3 is exactly a tie -> 1 (even); an extra
    tiny term decides it. A double-double approximation alone can never settle these."""
    u = _ulp_one(dtype)
    tiny = TINY[dtype]
    three = [3, 3 * u / 2, 0]
    assert float(_single(dtype, three, [1, 1, 1], power=(1, 1, 1))) == 1.0
    assert float(_single(dtype, [3, 3 * u / 2, tiny], [1, 1, tiny], power=(1, 1, 1))) == 1.0 + u
    assert float(_single(dtype, [3, 3 * u / 2, -tiny], [1, 1, tiny], power=(1, 1, 1))) == 1.0


def test_float64_huge_cancellation_and_far_terms():
    """2^100 + 1 - 2^100 = 1 exactly; terms 2^-1000 below the leading one still decide a tie;
    products that overflow float64 but cancel exactly are finite."""
    assert _single("float64", [2.0**100, 1, -(2.0**100)], [1, 1, 1]) == 1.0
    assert _single("float64", [1, 2.0**-53, 2.0**-500], [1, 1, 2.0**-500]) == 1 + 2.0**-52
    assert _single("float64", [1e200, 1, -1e200], [1e200, 1, 1e200]) == 1.0
    assert _single("float64", [1e300, 2.0**-1074], [1e300, 1]) == np.inf
    assert _single("float64", [2.0**-600, 0], [2.0**-600, 0]) == 0.0  # underflows to +0
    assert np.signbit(_single("float64", [-(2.0**-600)], [2.0**-600]))  # -> -0.0


def test_many_same_sign_large_terms_carry_across_limbs():
    """4096 terms of the largest float32 product land far beyond one limb; exact sum."""
    n = 4096
    x = np.full((1, n, 1), np.float32(3.4e38))
    w = np.full((1, n, 1), np.float32(3.4e38))
    y = ur.conv1d(x, w, constraint=None, scale_power=(0, 0, 0), out_dtype=np.float64)
    want = oracles.round_exact(Fraction(float(np.float32(3.4e38))) ** 2 * n, "float64")
    assert y[0, 0, 0] == want


def test_fp16_subnormal_results_and_overflow():
    """fp16: results in the subnormal range round on the subnormal grid; 65504 + 16 (max +
    half ulp) ties to inf; 65504 + 15.5 stays finite."""
    s = _single("float16", [2.0**-12, 2.0**-13], [2.0**-12, 2.0**-13])  # 2^-24 + 2^-26
    assert float(s) == 2.0**-24
    assert float(_single("float16", [2.0**-12, 2.0**-12], [2.0**-13, 2.0**-13])) == 2.0**-24  # 2*2^-25
    assert float(_single("float16", [2.0**-13], [2.0**-12])) == 0.0  # 2^-25: tie to even zero
    assert float(_single("float16", [65504.0, 4.0], [1.0, 4.0])) == np.inf
    assert float(_single("float16", [65504.0, 4.0, 0.5], [1.0, 3.75, -1.0])) == 65504.0
    assert float(_single("bfloat16", [float(oracles.MAXF["bfloat16"]), 1.0], [1.0, 2.0**119])) == np.inf


def test_irrational_scales_against_decimal_oracle():
    """(Cg*K)**-0.5 with Cg*K = 3, 5, 7 and gmean/hmean combinations: exact scales to 120
    digits in the oracle, every element checked (float32 and bfloat16 outputs)."""
    rng = np.random.default_rng(3)
    for dtype in ("float32", "bfloat16"):
        for constraint in ("to_output_scale", "gmean", "hmean", "amean", None):
            x = make(dtype, (1, 1, 8), rng)
            w = make(dtype, (2, 1, 5), rng)
            gy = make(dtype, (1, 2, 4), rng)
            run_and_check(x, w, None, gy, dict(constraint=constraint, scale_power=(0.5, 0.25, 0.75)), dtype)


def test_bfloat16_rounding_is_not_double_rounding():
    """NUMERICS.md: 1 + 2^-8 + 2^-30 must round to 1 + 2^-7 in bfloat16 (ml_dtypes' cast
    from float64 gives 1.0)."""
    assert float(_single("bfloat16", [1.0, 2.0**-8, 2.0**-15], [1.0, 1.0, 2.0**-15])) == 1.0 + 2.0**-7
    from usconv_ref.dtypes import FORMATS
    from usconv_ref.numerics import round_float64
    assert round_float64(np.array([1 + 2.0**-8 + 2.0**-30]), FORMATS["bfloat16"])[0] == 1 + 2.0**-7


def test_nonfinite_propagation():
    """NaN anywhere in the receptive field -> NaN; inf -> inf of the product's sign; +inf
    meeting -inf -> NaN; inf * padded zero -> NaN (SPEC §3); outside the field: finite."""
    x = np.array([[[1.0, np.inf, 2.0, 3.0, 4.0, 5.0]]])
    w = np.array([[[1.0, -1.0]]])
    y = ur.conv1d(x, w, constraint=None, scale_power=(0, 0, 0))[0, 0]
    assert y[0] == -np.inf and y[1] == np.inf and y[2:].tolist() == [-1.0, -1.0, -1.0]
    x2 = np.array([[[np.inf, -np.inf, 1.0]]])
    y2 = ur.conv1d(x2, np.array([[[1.0, 1.0]]]), constraint=None, scale_power=(0, 0, 0))[0, 0]
    assert np.isnan(y2[0]) and y2[1] == -np.inf
    y3 = ur.conv1d(np.array([[[1.0, 2.0]]]), np.array([[[np.inf, 1.0]]]), padding=1, scale_power=(0, 0, 0))[0, 0]
    assert np.isnan(y3[0]) and y3[1] == np.inf and y3[2] == np.inf
    x4 = np.array([[[np.nan, 1.0, 1.0, 1.0]]])
    y4 = ur.conv1d(x4, np.array([[[1.0, 1.0]]]), scale_power=(0, 0, 0))[0, 0]
    assert np.isnan(y4[0]) and y4[1:].tolist() == [2.0, 2.0]
    # grad_w: an inf in grad_y meets a padded zero -> NaN (SPEC §3)
    gx, gw, _ = ur.conv1d_backward(np.array([[[np.inf, 1.0, 1.0]]]), np.array([[[1.0, 2.0]]]),
                                   np.array([[[1.0, 1.0]]]), padding=1, scale_power=(0, 0, 0))
    assert np.isnan(gw[0, 0, 0]) and gw[0, 0, 1] == np.inf


def test_irrational_scale_near_ties_found_by_review():
    """Near-ties within 1e-50 of a midpoint with the irrational scale 3**-0.5 / 6**-0.5
    (an independent review found these rounded wrongly when the scale was computed in
    decimal's 28-digit global context). Exact values (400-bit mpmath): 1 + 1.5 ulp + 4.6e-41 ulp
    and 1 + 3.5 ulp + 6.7e-40 ulp, so both round up."""
    x = np.array([[[1.7320508075688779, 1.1105833358044281e-17, -4.280326419710176e-34]]])
    assert ur.conv1d(x, np.ones((1, 1, 3)))[0, 0, 0] == 1.0000000000000004
    x32 = np.array([[[2.449490785598755, -2.080881422727998e-08, -5.60455284358128e-16, 2.609215661953302e-23,
                      -6.029075730734728e-31, -2.2390522796650765e-38]]], np.float32)
    assert ur.conv1d(x32, np.ones((1, 1, 6), np.float32))[0, 0, 0].view(np.uint32) == 0x3F800004  # 1 + 3.5ulp + 7e-40


def test_results_independent_of_global_decimal_context():
    """The caller's decimal context (precision 6 here) changes nothing."""
    import decimal
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal((2, 3, 20)).astype(np.float32), rng.standard_normal((4, 3, 2)).astype(np.float32)
    ref = ur.conv1d(x, w, constraint="hmean", stride=2), ur.unit_scales(x.shape, w.shape, constraint="hmean", stride=2)
    with decimal.localcontext() as ctx:
        ctx.prec = 6
        got = ur.conv1d(x, w, constraint="hmean", stride=2), ur.unit_scales(x.shape, w.shape, constraint="hmean", stride=2)
    assert got[0].tobytes() == ref[0].tobytes() and got[1] == ref[1]


def test_scale_interval_is_tight_and_correct():
    """interval(100) of 3**-0.5 brackets it (checked exactly through squares) within 1e-95."""
    from usconv_ref.scaling import ExactScale, Monomial
    lo, hi = ExactScale(Monomial.power(Fraction(3), -0.5)).interval(100)
    assert lo * lo * 3 <= 1 <= hi * hi * 3 and (hi - lo) / lo < Fraction(1, 10**95)


from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402


@st.composite
def _valid_config(draw):
    groups = draw(st.sampled_from([1, 2]))
    Cg, Og = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    K, L = draw(st.integers(1, 3)), draw(st.integers(1, 6))
    mode = draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
    stride, dil = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    limit = {"reflect": L - 1, "circular": L}.get(mode, 3)
    padding = draw(st.integers(0, max(0, min(3, limit))))
    if (L + 2 * padding - dil * (K - 1) - 1) < 0:
        padding = min(limit, dil * (K - 1)) if mode != "zeros" else dil * (K - 1)
    if (L + 2 * padding - dil * (K - 1) - 1) < 0:
        K = 1
    N = draw(st.integers(1, 2))
    return dict(N=N, C_in=Cg * groups, C_out=Og * groups, Cg=Cg, L=L, K=K,
                kw=dict(stride=stride, dilation=dil, groups=groups, padding=padding, padding_mode=mode),
                seed=draw(st.integers(0, 2**31)))


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(_valid_config())
def test_hypothesis_valid_configs_match_direct_loop(cfg):
    """Random valid configurations (every mode, stride, dilation, groups) with small-integer
    data and scale 1: forward and all gradients equal the direct Fraction loop exactly."""
    rng = np.random.default_rng(cfg["seed"])
    x = rng.integers(-4, 5, (cfg["N"], cfg["C_in"], cfg["L"])).astype(np.float64)
    w = rng.integers(-4, 5, (cfg["C_out"], cfg["Cg"], cfg["K"])).astype(np.float64)
    b = rng.integers(-4, 5, cfg["C_out"]).astype(np.float64)
    kw = dict(cfg["kw"], constraint=None, scale_power=(0, 0, 0))
    y = ur.conv1d(x, w, b, **kw)
    gy = rng.integers(-4, 5, y.shape).astype(np.float64)
    run_and_check(x, w, b, gy, kw, "float64")


def test_cached_tap_tables_match_their_definition():
    """The per-geometry caches of correlation.py (the fallback's term lists use them per
    block) equal the uncached tables for every padding mode, stride and dilation — so a key
    that missed a parameter (e.g. the mode) would hand one geometry another's table — and are
    read-only (a caller cannot corrupt them)."""
    from usconv_ref import correlation as co
    from usconv_ref.padding import forward_positions, grad_input_taps, source_index
    for L, pl, pr, L_out, K, s, d in [(9, 2, 2, 9, 5, 1, 1), (9, 2, 2, 5, 3, 2, 1), (11, 3, 1, 5, 3, 2, 2)]:
        for mode in ("zeros", "reflect", "replicate", "circular"):
            src = source_index(L, pl, pr, mode)
            pos = co._cached_positions(L, pl, pr, mode, L_out, K, s, d)
            want = np.where(src < 0, L, src)[forward_positions(L_out, K, s, d)]
            np.testing.assert_array_equal(pos, want)
            kk, tt = co._input_taps(L, pl, pr, mode, L_out, K, s, d)
            wk, wt = grad_input_taps(src, L, L_out, K, s, d)
            np.testing.assert_array_equal(kk, wk)
            np.testing.assert_array_equal(tt, wt)
            for a in (pos, kk, tt):
                with pytest.raises(ValueError):
                    a[0, 0] = 0


def test_take_or_zero_is_the_appended_zero_gather():
    """``_take_or_zero`` (the term lists' gather without a padded copy) equals indexing the
    array with a zero appended, and never lets a non-finite value at the clipped position
    into a padded zero."""
    from usconv_ref import correlation as co
    rng = np.random.default_rng(3)
    a = rng.standard_normal((2, 3, 5))
    a[:, :, -1] = np.inf
    idx = rng.integers(0, 6, (4, 1, 7))
    n, c = rng.integers(0, 2, (4, 1, 1)), rng.integers(0, 3, (4, 1, 1))
    np.testing.assert_array_equal(co._take_or_zero(a, (n, c), idx, 5), co._append_zero(a, 2)[n, c, idx])
    assert np.isfinite(co._take_or_zero(a[..., :4], (n, c), np.minimum(idx, 4), 4)).all()


def test_exact_tensor_honours_its_thread_limit():
    """``ExactTensor.threads`` caps the threads its blocks are computed on (the sliced engine
    sets ``ENGINE_THREADS`` = 1): with 1 every block runs on the calling thread; the limit
    survives ``materialize``; and outputs of the sliced engine carry it."""
    import threading
    from usconv_ref import correlation as co, sliced
    from usconv_ref.numerics import exact_row_sums
    from usconv_ref.scaling import ExactScale
    seen = []

    def thunk(r):
        def f():
            seen.append(threading.get_ident())
            return [exact_row_sums(np.full((1, 1), float(r)), np.ones((1, 1)))]
        return f
    blocks = lambda: [(slice(r, r + 1), thunk(r)) for r in range(6)]
    for t in (co.ExactTensor((6,), blocks, ExactScale.of(1), 1),
              co.ExactTensor((6,), blocks, ExactScale.of(1), 1).materialize()):
        seen.clear()
        np.testing.assert_array_equal(t.round(ur.dtypes.case_dtype("float64"), workers=4), np.arange(6.0))
        assert set(seen) <= {threading.get_ident()}
    from usconv_ref.spec import Conv1dSpec, resolve_geometry
    x, w = np.ones((1, 4, 8)), np.ones((4, 1, 3))
    geo = resolve_geometry(x.shape, w.shape, None, Conv1dSpec(padding=1, groups=4))
    st = sliced.forward(geo, x, w, None, ur.dtypes.case_dtype("float64"), "zeros")
    assert st.threads == sliced.ENGINE_THREADS


@pytest.mark.parametrize("name", ["float16", "bfloat16", "float32", "float64"])
def test_round_ratio_matches_the_fraction_oracle(name):
    """numerics.round_ratio (integer arithmetic, used for the exact rows of rational scales)
    equals the independent Fraction oracle on random ratios across the format's range, exact
    rounding midpoints in every binade (ties to even, both ways), subnormals, zero results and
    the overflow threshold."""
    from usconv_ref.dtypes import FORMATS
    from usconv_ref.numerics import round_ratio
    f = FORMATS[name]
    rng = np.random.default_rng(11)
    cases = []
    for _ in range(300):  # random ratios with up to ~100-bit numerators
        num = int(rng.integers(1, 2**62)) * int(rng.integers(1, 2**40)) + int(rng.integers(0, 2))
        den = int(rng.integers(1, 2**50))
        e2 = int(rng.integers(f.emin - f.precision - 120, f.emax + 10))
        cases.append((num, den, e2))
    t = oracles.REAL[name]
    for _ in range(200):  # midpoints of neighbours (normal and subnormal), as p*mid / p
        e = int(rng.integers(f.emin - f.precision + 1, f.emax + 1))
        c = t(float(rng.uniform(1, 2)) * 2.0**e)
        if not np.isfinite(float(c)):
            continue
        c2 = np.nextafter(c, t(np.inf))
        if not np.isfinite(float(c2)):
            continue
        mid = (Fraction(float(c)) + Fraction(float(c2))) / 2
        q = int(rng.integers(1, 1000)) * 2 + 1  # an odd common factor: the value stays the tie
        cases.append((mid.numerator * q, mid.denominator * q, 0))
        cases.append((mid.numerator * q + 1, mid.denominator * q, 0))  # just above the tie
        cases.append((mid.numerator * q - 1, mid.denominator * q, 0))  # just below
    mx = Fraction(oracles.MAXF[name])
    ulp = mx - Fraction(float(np.nextafter(t(oracles.MAXF[name]), t(0))))
    for v in (mx, mx + ulp / 2, mx + ulp / 2 - Fraction(1, 2**2000), Fraction(1, 3) * Fraction(2) ** (f.emin - f.precision)):
        cases.append((v.numerator, v.denominator, 0))
    cases.append((0, 7, 5))
    for num, den, e2 in cases:
        want = oracles.round_exact(Fraction(num, den) * Fraction(2) ** e2, name) if num else 0.0
        got = round_ratio(num, den, e2, f)
        assert got == want, (name, num, den, e2, got, want)
