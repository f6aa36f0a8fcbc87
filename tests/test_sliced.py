"""The sliced (Ozaki) engine against the term-list engine — a different algorithm (products
gathered per element, exact integer limbs) — bit for bit, on geometries, dtypes, datasets and
exponent spreads chosen to stress its slab, pass and rounding logic; and its rounding tiers
against exact rational rounding."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from usconv_ref import correlation, sliced
from usconv_ref.dtypes import FORMATS, case_dtype, to_float64_parts
from usconv_ref.inputs import generate_tensor
from usconv_ref.numerics import round_fraction
from usconv_ref.ops import prepare
from usconv_ref.scaling import ExactScale, exact_unit_scales
from usconv_ref.spec import Conv1dSpec

GEOMETRIES = [
    dict(N=2, C_in=6, C_out=4, L=13, K=3, padding=1),
    dict(N=1, C_in=4, C_out=8, L=17, K=4, padding=3, groups=2, stride=2, padding_mode="reflect"),
    dict(N=3, C_in=5, C_out=5, L=11, K=3, padding=2, groups=5, dilation=2, padding_mode="replicate"),
    dict(N=2, C_in=3, C_out=6, L=9, K=5, padding=4, groups=3, padding_mode="circular"),
    dict(N=2, C_in=8, C_out=8, L=16, K=9, padding=4, groups=8),  # depthwise, chunked rows
    dict(N=0, C_in=2, C_out=2, L=9, K=7, padding=0, stride=3),  # empty batch
]


def _case(geo, dtype, dataset, seed, bias=True):
    cd = case_dtype(dtype)
    spec = Conv1dSpec(stride=geo.get("stride", 1), padding=geo["padding"], dilation=geo.get("dilation", 1),
                      groups=geo.get("groups", 1), padding_mode=geo.get("padding_mode", "zeros"))
    G = spec.groups
    x = generate_tensor(seed, "x", (geo["N"], geo["C_in"], geo["L"]), dataset, cd)
    w = generate_tensor(seed, "w", (geo["C_out"], geo["C_in"] // G, geo["K"]), dataset, cd)
    b = generate_tensor(seed, "b", (geo["C_out"],), dataset, cd) if bias else None
    return cd, spec, x, w, b


def _both(cd, spec, x, w, b, seed):
    """Every output through both engines, each rounded into the case dtype and float64."""
    prep, _ = prepare(x, w, b, spec)
    geo, src, mb, mode = prep.geo, prep.sources, prep.mantissa_bits, spec.padding_mode
    sc = exact_unit_scales(geo, spec)
    gy = generate_tensor(seed, "grad_y", (geo.N, geo.C_out, geo.L_out), "normal", cd)
    gyr, gyi = to_float64_parts(gy, cd)
    ops = src.operands()
    pairs = [
        (sliced.forward(geo, src.x, src.w, src.b, cd, mode), correlation.forward_terms(geo, ops, mode), sc.output),
        (sliced.grad_input(geo, gy, src.w, cd, mode), correlation.grad_input_terms(geo, gyr, gyi, ops, mode), sc.grad_input),
        (sliced.grad_weight(geo, gy, src.x, cd, mode), correlation.grad_weight_terms(geo, gyr, gyi, ops, mode), sc.grad_weight),
        (sliced.grad_bias(geo, gy, cd), correlation.grad_bias_terms(geo, gyr, gyi), sc.grad_weight),
    ]
    used = 0
    for st, terms, scale in pairs:
        if st is None or scale is None:
            continue
        used += 1
        want = terms.exact(scale, mb)
        got = correlation.ExactTensor(terms.shape, st.blocks, scale)
        for od in {cd.name, "complex128" if cd.is_complex else "float64"}:
            g, e = got.round(case_dtype(od)), want.round(case_dtype(od))
            np.testing.assert_array_equal(g, e)
            assert np.array_equal(np.signbit(np.real(g)), np.signbit(np.real(e)))
    return used


def test_open_rows_of_all_chunks_rounded_once_at_the_end(monkeypatch):
    """Rows the fast tier leaves open (bfloat16 inputs, scale 1/3: exact bfloat16 midpoints) are
    collected over the chunks and rounded exactly in one call: bit for bit the unchunked path
    (which rounds them as it meets them), with and without a sink; fails if a collected row is
    written back to the wrong position or left NaN."""
    cd, spec, x, w, b = _case(dict(N=2, C_in=8, C_out=8, L=300, K=9, padding=4, groups=8), "bfloat16", "normal", 9)
    prep, _ = prepare(x, w, b, spec)
    (_, thunk), = list(sliced.forward(prep.geo, x, w, b, cd, spec.padding_mode).blocks())
    sums, = thunk()
    scale, f = ExactScale.of(Fraction(1, 3)), FORMATS["bfloat16"]
    whole = sums.round(scale, f)  # one chunk: open rows rounded inside _round
    opened = []
    sums._round(scale, f, opened, 0)
    monkeypatch.setattr(sliced, "_CHUNK", 64)
    assert len(opened) == 1 and len({int(r) // 64 for r in opened[0]}) >= 2, "open rows in several chunks"
    np.testing.assert_array_equal(sums.round(scale, f), whole)
    got = np.full(len(sums), -1.0)

    def sink(rows, vals):
        got[rows] = vals
    sums.round(scale, f, sink)
    np.testing.assert_array_equal(got, whole)


@pytest.mark.parametrize("gi", range(len(GEOMETRIES)))
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64", "complex64", "complex128"])
def test_sliced_matches_term_lists(gi, dtype):
    for seed, dataset in enumerate(["normal", "large", "tiny", "cancel", "sparse"]):
        cd, spec, x, w, b = _case(GEOMETRIES[gi], dtype, dataset, seed, bias=seed % 2 == 0)
        _both(cd, spec, x, w, b, seed)


def test_sliced_handles_wide_spreads_and_extreme_bias():
    """Values 2**±60 apart inside a slab force many slices; a bias far above or below the
    products forces limbs beyond the diagonals."""
    rng = np.random.default_rng(7)
    geo = GEOMETRIES[0]
    cd = case_dtype("float64")
    x = rng.standard_normal((2, 6, 13)) * np.exp2(rng.integers(-60, 60, (2, 6, 13)))
    w = rng.standard_normal((4, 6, 3)) * np.exp2(rng.integers(-30, 30, (4, 6, 3)))
    for bias in (np.array([1e200, -3.0, 1e-200, 0.0]), np.array([2.0**-1070, 5.0, -2.0**900, 1.0])):
        spec = Conv1dSpec(padding=geo["padding"])
        assert _both(cd, spec, x, w, bias, 1) >= 3


def test_sliced_declines_non_finite_and_huge_spreads():
    cd, spec, x, w, b = _case(GEOMETRIES[0], "float64", "normal", 0)
    prep, _ = prepare(x, w, b, spec)
    assert sliced.forward(prep.geo, x, w, b, cd, "zeros") is not None
    x2 = x.copy()
    x2[0, 0, 0], x2[0, 0, 1] = 1e300, 1e-300  # ~2000 bits in one slab
    assert sliced.forward(prep.geo, x2, w, b, cd, "zeros") is None
    x2[0, 0, 1] = np.inf
    assert sliced.forward(prep.geo, x2, w, b, cd, "zeros") is None


@pytest.mark.parametrize("n", [1, 7, 448, 8192, 2**20])
def test_plans_keep_every_buffer_exact(n):
    for bits_a in range(1, 140, 7):
        for bits_b in range(1, 140, 11):
            p = sliced.choose_plan(bits_a, bits_b, n)
            assert p.sa * p.beta_a >= bits_a and p.sb * p.beta_b >= bits_b
            # n products of two slices (|q| <= 2**beta each), m pairs per buffer: below 2**53
            assert n * p.m * 2 ** (p.beta_a + p.beta_b) <= 2**53
            shifts = [p.shift(i, j) for i in range(p.sa) for j in range(p.sb)]
            assert sorted(set(shifts)) == p.shifts and max(shifts.count(s) for s in shifts) == p.m


def test_choose_plan_is_the_rules_first_plan():
    """``choose_plan`` (cached pair statistics, buffer counts compared only between plans of
    equal passes) against the rule written out over every candidate: the exact plans (``beta_a
    + beta_b + ceil(log2(n m)) <= 53``) ordered by passes, then buffers, then widest slices,
    the first in the search order among equals. Fails if the buffer count or the width is
    dropped from the order, or ``m`` from the exactness test."""
    import math
    for n in (1, 7, 448, 8192, 2**20 + 1):
        lg = math.ceil(math.log2(n)) if n > 1 else 0
        for bits_a in range(1, 120, 13):
            for bits_b in range(1, 120, 17):
                cands = [sliced.Plan(ba, bb, -(-bits_a // ba), -(-bits_b // bb))
                         for ba in range(8, 46) for bb in range(8, min(46, 53 - lg - ba + 1))]
                ok = [p for p in cands if p.beta_a + p.beta_b + math.ceil(math.log2(n * p.m)) <= 53]
                want = min(ok, key=lambda p: (p.passes, len(p.shifts), -(p.beta_a + p.beta_b)), default=None)
                assert sliced.choose_plan.__wrapped__(bits_a, bits_b, n) == want, (bits_a, bits_b, n)


def test_slices_reconstruct_exactly():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((4, 50)) * np.exp2(rng.integers(-20, 20, (4, 50)))
    E, bits = sliced.exponents(*sliced._stats([a], (1,)), 53)
    beta = 20
    total = [Fraction(0)] * a.size
    for i, (q,) in enumerate(sliced.slices([a], E, beta, -(-bits // beta))):
        assert np.all(q == np.rint(q)) and np.all(np.abs(q) <= 2.0**beta)
        for k, (qq, ee) in enumerate(zip(q.ravel(), np.broadcast_to(E, a.shape).ravel())):
            total[k] += Fraction(int(qq)) * Fraction(2) ** int(ee - beta * (i + 1))
    assert all(t == Fraction(float(v)) for t, v in zip(total, a.ravel()))


@pytest.mark.parametrize("fmt", ["float16", "bfloat16", "float32"])
def test_round_bits_agrees_with_exact_rounding_where_it_decides(fmt):
    """Values at, next to and between rounding boundaries; a decided result must be the exact
    rounding of every value within the stated error."""
    f = FORMATS[fmt]
    rng = np.random.default_rng(11)
    q = rng.integers(2 ** (f.precision - 1), 2**f.precision, 4000).astype(np.float64)
    half = q + 0.5
    z = np.concatenate([q, half, half * (1 + 2.0**-50), half * (1 - 2.0**-50), q + rng.random(4000)])
    z = z * np.exp2(rng.integers(-10, 10, z.size).astype(np.float64))
    off = rng.integers(f.emin - 20, f.emax - 5, z.size) - f.precision
    err = rng.choice([0.0, 1.0, 100.0], z.size)
    val, decided = sliced.round_bits(z, off.astype(np.int64), err, f)
    assert decided.mean() > 0.3
    for i in np.flatnonzero(decided)[::7]:
        exact = Fraction(float(z[i])) * Fraction(2) ** int(off[i])
        assert val[i] == round_fraction(exact, f), (z[i], off[i])
        ulp = Fraction(2) ** (int(np.frexp(z[i])[1]) - 53 + int(off[i]))
        for d in (-1, 1):  # anything within the error bound rounds alike
            assert round_fraction(exact + d * Fraction(float(err[i] + 1)) * ulp, f) == val[i]
    # exact midpoints are never decided (ties need the exact path's even rule)
    mid = slice(4000, 8000)
    assert not decided[mid][err[mid] >= 0].any()


def test_sliced_rounding_chunks_match_whole(monkeypatch):
    cd, spec, x, w, b = _case(GEOMETRIES[4], "float32", "normal", 5)
    prep, _ = prepare(x, w, b, spec)
    (_, thunk), = list(sliced.forward(prep.geo, x, w, b, cd, spec.padding_mode).blocks())
    sums, = thunk()
    scale = ExactScale.of(Fraction(1, 3))
    whole = sums.round(scale, FORMATS["float32"])
    monkeypatch.setattr(sliced, "_CHUNK", 7)
    np.testing.assert_array_equal(sums.round(scale, FORMATS["float32"]), whole)


@pytest.mark.parametrize("gi", range(len(GEOMETRIES)))
@pytest.mark.parametrize("dtype", ["float32", "complex64"])
def test_streamed_blocks_and_chunks_match_term_lists(gi, dtype, monkeypatch):
    """Tiny block and chunk sizes: several (batch, group) blocks per output, group ranges within
    a batch element, grad_w summed over many blocks, depthwise rows in many chunks."""
    from usconv_ref import fast
    monkeypatch.setattr(sliced, "_BLOCK", 5)
    monkeypatch.setattr(sliced, "_CHUNK", 3)
    monkeypatch.setattr(fast, "_CHUNK_ELEMS", 20)
    for seed, dataset in enumerate(["normal", "cancel"]):
        cd, spec, x, w, b = _case(GEOMETRIES[gi], dtype, dataset, seed + 10, bias=True)
        _both(cd, spec, x, w, b, seed)


@pytest.mark.parametrize("seed", range(3))
def test_round_dd_agrees_with_exact_rounding_where_it_decides(seed):
    """float64 targets from a signed double-double: values at, next to and between midpoints
    (also just below and above powers of two), error bounds of both kinds (relative and
    absolute, scalar and per row), scalings into and out of the normal range; decided results
    equal exact rounding (Fractions) of everything within the error, exact ties are never
    decided, and rows out of range never are. Fails if the spacing below a power of two is
    taken as the one above (``_below_field`` without its ``- 1``), or the relative error is
    dropped, or the sign is lost."""
    f = FORMATS["float64"]
    rng = np.random.default_rng(12 + seed)
    m = 6000
    zh = np.ldexp(rng.integers(2**52, 2**53, m).astype(np.float64), rng.integers(-40, 40, m))
    zh[:800] = np.exp2(rng.integers(-30, 30, 800).astype(np.float64))  # powers of two
    zh[800:850] = 0.0
    ulp = np.spacing(zh)
    frac = rng.choice([0.5, -0.5, 0.25, -0.25, 0.2499999, -0.2499999, 0.49999, -0.2, 0.0, 1e-3], m)
    zl = frac * ulp
    zl[800:850] = 0.0
    neg = rng.random(m) < 0.5
    zh, zl = np.where(neg, -zh, zh), np.where(neg, -zl, zl)
    off = rng.integers(-900, 900, m).astype(np.int64)
    off[850:900] = rng.choice([-1200, 1100, 2000, -2000, 5000], 50)  # subnormal / overflowing results
    rel = rng.choice([0.0, 2.0**-100, 2.0**-61])
    bound = rng.choice([0.0, 1e-3, 0.3], m) * ulp if seed != 1 else 2.0**-90
    val, decided = sliced.round_dd(zh, zl, off, rel, bound)
    assert decided.mean() > 0.3
    assert not decided[800:900].any()
    for i in np.flatnonzero(decided):
        exact = (Fraction(float(zh[i])) + Fraction(float(zl[i]))) * Fraction(2) ** int(off[i])
        b = bound if np.ndim(bound) == 0 else bound[i]
        e = (Fraction(rel) * abs(Fraction(float(zh[i]))) + Fraction(float(b))) * Fraction(2) ** int(off[i])
        for v in (exact - e, exact, exact + e):
            assert round_fraction(v, f) == val[i], (zh[i], zl[i], off[i], b)
    # exact ties (|zl| = half an ulp, or a quarter below a power of two) are never decided
    a = np.abs(zh)
    pow2 = a == np.exp2(np.floor(np.log2(np.where(a > 0, a, 1.0))))
    tie = (np.abs(frac) == 0.5) | (pow2 & (frac == -0.25))
    assert not decided[tie].any()


def test_round_dd_threshold_is_the_float_product_h_k():
    """follow-up 8: :func:`round_dd` forms ``h k`` (``h`` half the spacing below ``|zh|``,
    ``k = 1 - 2**-30 - 2**55 rel``) as one integer add on the encoding. Its decisions equal
    those of the float product ``fl(h * k)`` (``np.spacing`` of the float below, halved) for
    every binade in range (both ends, powers of two, ``|zl| + bound`` just below, at and
    above the threshold). Fails with the binade off by one or ``k``'s significand dropped."""
    rng = np.random.default_rng(5)
    E = np.arange(62, 2046)  # (a power of two's float below lies one binade down: 61 at E = 62)
    for rel in (0.0, 2.0**-100, 2.0**-61):
        k = 1.0 - 2.0**-30 - rel * 2.0**55
        for pow2 in (False, True):
            mant = np.ones(E.size) if pow2 else 1.0 + rng.integers(1, 2**52, E.size) * 2.0**-52
            zh = np.ldexp(mant, E - 1023) * np.where(rng.random(E.size) < 0.5, -1.0, 1.0)
            below = np.nextafter(np.abs(zh), 0.0)
            hk = np.spacing(below) / 2 * k  # exact: a power of two times k, normal here
            for f in (1.0 - 2.0**-52, 1.0, 1.0 + 2.0**-52, 0.75, 1.25):
                zl = hk * f * np.where(rng.random(E.size) < 0.5, -1.0, 1.0)
                val, decided = sliced.round_dd(zh, zl, np.zeros(E.size, np.int64), rel, 0.0)
                np.testing.assert_array_equal(decided, np.abs(zl) < hk)
                np.testing.assert_array_equal(val[decided], zh[decided])


# --- a posteriori truncation (sliced.truncated_plan): only the significant slice pairs, a
# rigorous bound on the rest, and an exact per-row fallback where the bound leaves the rounding open.

def _count_fallbacks(monkeypatch) -> list:
    """Sizes of the row sets sent to the exact fallback of truncated plans (a spy on
    ``_Fallback.round``)."""
    counted = []
    orig = sliced._Fallback.round

    def spy(self, k, rows, scale, fmt):
        counted.append(np.asarray(rows).size)
        return orig(self, k, rows, scale, fmt)
    monkeypatch.setattr(sliced._Fallback, "round", spy)
    return counted


def _record_plans(monkeypatch):
    """Force truncation on small problems and record the (plan, complete plan) choices."""
    monkeypatch.setattr(sliced, "TRUNCATE_MIN_WORK", 0)
    seen = []
    choose = sliced._choose

    def spy(*args):
        out = choose(*args)
        seen.append(out)
        return out
    monkeypatch.setattr(sliced, "_choose", spy)
    return seen


@pytest.mark.parametrize("gi", range(len(GEOMETRIES) - 1))
@pytest.mark.parametrize("dtype", ["float64", "complex128", "float32"])
def test_truncated_plans_match_term_lists(gi, dtype, monkeypatch):
    """Truncated plans forced on small cases (every dataset; cancellation and sparse data send
    rows to the per-row fallback) against the term-list engine, bit for bit."""
    seen = _record_plans(monkeypatch)
    fallbacks = _count_fallbacks(monkeypatch)
    for seed, dataset in enumerate(["normal", "large", "tiny", "cancel", "sparse"]):
        cd, spec, x, w, b = _case(GEOMETRIES[gi], dtype, dataset, seed + 3, bias=seed % 2 == 0)
        _both(cd, spec, x, w, b, seed)
    if dtype != "float32":  # 53-bit significands: the complete plans have enough passes to cut
        assert any(p is not None and p.truncated for p, _ in seen)
    if dtype == "float64" and gi == 0:  # (not every geometry's data happen to need the fallback)
        assert sum(fallbacks) > 0


def test_truncated_whole_block_fallback_matches(monkeypatch):
    """Every fallback recomputes its block with the complete plan (the path for data where
    many elements are undecided, e.g. heavy cancellation), and the later blocks of that
    contraction are computed untruncated (many small blocks, chunks)."""
    seen = _record_plans(monkeypatch)
    monkeypatch.setattr(sliced, "_limit", lambda rows, passes: 0)
    monkeypatch.setattr(sliced, "_CHUNK", 5)
    monkeypatch.setattr(sliced, "_BLOCK", 7)
    for gi in (0, 1, 4):
        for seed, dataset in enumerate(["normal", "cancel"]):
            cd, spec, x, w, b = _case(GEOMETRIES[gi], "float64", dataset, seed + 20, bias=True)
            _both(cd, spec, x, w, b, seed)
    assert any(p is not None and p.truncated for p, _ in seen)


def _kept_and_exact(a, b, p):
    """Exact ``sum a*b`` and the sum of the plan's kept slice pairs, in units of 2**(Ea+Eb);
    None where ``sa``/``sb`` slices do not exhaust the operands (the plan does not apply)."""
    Ea, _ = sliced.exponents(*sliced._stats([a], (0,)), 53)
    Eb, _ = sliced.exponents(*sliced._stats([b], (0,)), 53)
    try:
        qa = [q[0] for q in sliced.slices([a], Ea, p.beta_a, p.sa)]
        qb = [q[0] for q in sliced.slices([b], Eb, p.beta_b, p.sb)]
    except AssertionError:
        return None
    exact = sum(Fraction(float(u)) * Fraction(float(v)) for u, v in zip(a, b)) / Fraction(2) ** int(Ea[0] + Eb[0])
    kept = Fraction(0)
    for i, j in p.pairs:
        if i < len(qa) and j < len(qb):
            dot = sum(int(u) * int(v) for u, v in zip(qa[i], qb[j]))
            kept += Fraction(dot) / Fraction(2) ** (p.beta_a * (i + 1) + p.beta_b * (j + 1))
    return exact, kept


def _largest_slices(beta: int, s: int) -> float:
    """The value whose ``s`` slices are all near their largest: ``q_0 = 2**beta - 1``, later
    ``q_i = 2**(beta-1) - 1`` (every remainder just under half a unit)."""
    v = Fraction(2**beta - 1, 2**beta)
    for i in range(1, s):
        v += Fraction(2 ** (beta - 1) - 1, 2 ** (beta * (i + 1)))
    assert float(v) == v
    return float(v)


@pytest.mark.parametrize("n", [1, 3, 16])
def test_tail_bound_is_an_upper_bound(n):
    """|exact - kept pairs| <= tail_bound for random operands of every spread the plan covers
    and for worst-case ones (every slice near its largest, all products of one sign), where
    the bound is nearly reached (so it is an upper bound, and not a loose one)."""
    rng = np.random.default_rng(n)
    for ba, bb, sa, sb, kb in [(10, 12, 4, 3, (3, 2, 1)), (8, 8, 5, 5, (4, 3, 2, 1)), (20, 9, 2, 5, (5, 1)),
                               (13, 13, 4, 4, (1,)), (11, 17, 4, 3, (3, 3, 1)), (13, 13, 4, 4, (4, 4, 4))]:
        p = sliced.Plan(ba, bb, sa, sb, kb)
        t = sliced.tail_bound(ba, bb, sa, sb, kb, n)
        wa, wb = np.full(n, _largest_slices(ba, sa)), np.full(n, _largest_slices(bb, sb))
        cases = [(wa, wb), (-wa, wb)]
        for _ in range(40):
            bits_a, bits_b = ba * sa, bb * sb
            a = rng.integers(-2**(bits_a - 1), 2**(bits_a - 1), n).astype(np.float64) * 2.0 ** -bits_a
            b = rng.integers(-2**(bits_b - 1), 2**(bits_b - 1), n).astype(np.float64) * 2.0 ** -bits_b
            a *= rng.integers(0, 2, n)  # zeros and
            cases.append((a, b * np.exp2(-rng.integers(0, 4, n))))  # smaller values
        worst = Fraction(0)
        for a, b in cases:
            r = _kept_and_exact(a, b, p)
            if r is None:
                continue
            exact, kept = r
            assert abs(exact - kept) <= t, (p, a, b)
            worst = max(worst, abs(exact - kept))
        assert worst > t / 2, (p, float(worst), float(t))


def _tie_case(out: str, delta: float, K: int = 4):
    """x, w with one output element exactly at a rounding midpoint of ``out`` (after the
    scale 1/2 = (1*K)**-1/2, K = 4) plus ``delta`` (a term 2**-300-ish far below the other
    products: it lies only in slice pairs a truncated plan leaves out)."""
    h = {"float64": 2.0**-53, "float32": 2.0**-24, "bfloat16": 2.0**-8, "float16": 2.0**-11}[out]
    # V = 2 * (1 + h) + 2 * delta: y = V / 2 = 1 + h + delta, the midpoint of 1 and 1 + 2h
    x = np.zeros((1, 1, 12))
    x[0, 0, :4] = [1.0, 2.0 * h, delta, 0.0]
    x[0, 0, 5:9] = [0.75, -2.0**-40, 3.0 * 2.0**-200, 1.0]  # more rows near nothing in particular
    w = np.array([[[2.0, 1.0, 2.0, 1.0]]])
    return x, w


def _exact_y(x, w, scale, out):
    fmt = FORMATS[out]
    L_out = x.shape[2] - w.shape[2] + 1
    res = []
    for t in range(L_out):
        v = sum(Fraction(float(w[0, 0, k])) * Fraction(float(x[0, 0, t + k])) for k in range(w.shape[2]))
        res.append(round_fraction(v * scale, fmt))
    return np.array(res)


@pytest.mark.parametrize("out", ["float64", "float32", "bfloat16", "float16"])
def test_truncation_decides_ties_through_the_fallback(out, monkeypatch):
    """Exact ties of the output format plus a part that lies only in the slice pairs a
    truncated plan omits: the result must equal exact rational rounding and the fallback
    must have decided them."""
    import usconv_ref as ur
    seen = _record_plans(monkeypatch)
    fallbacks = _count_fallbacks(monkeypatch)
    deltas = [0.0, 2.0**-300, -2.0**-300, 2.0**-120, -2.0**-120, 2.0**-600, -2.0**-600 * 3]
    for delta in deltas:
        x, w = _tie_case(out, delta)
        fallbacks.clear()
        y = ur.conv1d(x, w, out_dtype=case_dtype(out).numpy)
        want = _exact_y(x, w, Fraction(1, 2), out)
        got = np.asarray(y, np.float64)[0, 0]
        np.testing.assert_array_equal(got, want)
        assert np.array_equal(np.signbit(got), np.signbit(want))
        assert seen[-1][0].truncated and sum(fallbacks) >= 1  # the tie went to the fallback


def test_truncation_bound_decides_near_ties(monkeypatch):
    """Near-ties of float64 where the kept pairs say "above the midpoint" (a product
    2**-45 * w3 far below the rest, inside a kept pair) and the omitted pairs hold a larger
    negative part (x2 = delta, in a slice no kept pair reaches): only the tail bound stops the
    truncated sum from rounding up. With the true bound every case goes to the fallback and
    matches exact rounding; with the bound taken as 0 (a wrong bound) every case rounds wrongly
    — so this test fails if the bound is too small."""
    import usconv_ref as ur
    _record_plans(monkeypatch)

    def case(delta, w3):
        x = np.zeros((1, 1, 12))
        x[0, 0, :4] = [1.0, 2.0**-52, delta, 2.0**-45]  # V = 2 + 2**-52 (the tie, times 2) + delta + 2**-45 w3
        x[0, 0, 5:9] = [0.75, -2.0**-40, 3.0 * 2.0**-200, 1.0]
        return x, np.array([[[2.0, 1.0, 1.0, w3]]])

    cases = [(-(2.0**-d), 2.0**-e) for d in (75, 80, 85, 90) for e in (40, 45, 50, 55)]
    try:
        wrong = _near_ties(ur, case, cases, monkeypatch)
    finally:
        sliced.truncated_plan.cache_clear()  # no plans with the wrong bound left behind
    assert wrong == len(cases)


def _near_ties(ur, case, cases, monkeypatch):
    fallbacks = _count_fallbacks(monkeypatch)
    for bound_ok in (True, False):
        if not bound_ok:
            sliced.truncated_plan.cache_clear()
            monkeypatch.setattr(sliced, "tail_bound", lambda *a: Fraction(0))
        wrong = 0
        for delta, w3 in cases:
            x, w = case(delta, w3)
            fallbacks.clear()
            got = ur.conv1d(x, w, out_dtype=np.float64)[0, 0]
            want = _exact_y(x, w, Fraction(1, 2), "float64")
            if bound_ok:
                np.testing.assert_array_equal(got, want)
                assert sum(fallbacks) >= 1
            else:
                wrong += not np.array_equal(got, want)
    return wrong


def test_truncation_never_overflows_a_finite_result(monkeypatch):
    """Found by an adversarial review: the kept pairs' sum times the scale lies above the
    float64 overflow threshold while the exact result (the omitted pairs hold six large
    negative products) is finite, 0.97 * 2**1024. The "far above the overflow threshold"
    shortcut of the rounding test must hold for every value within the tail bound, not only for
    the kept sum: the row goes to the exact fallback and rounds to the finite value."""
    import usconv_ref as ur
    seen = _record_plans(monkeypatch)
    fallbacks = _count_fallbacks(monkeypatch)
    Ea, Eb = 1000, 116
    big, s = (1 - 2.0**-53) * 2.0**Ea, (0.5 - 2.0**-54) * 2.0**(Eb - 92)
    x = np.array([[[0.0, 491 / 512 * 2.0**Ea] + [big] * 6]])
    w = np.array([0.75 * 2.0**Eb, 1.5 * 2.0**(Eb - 90)] + [-s] * 6)
    w = np.stack([w, w]).reshape(2, 1, 8)
    y = ur.conv1d(x, w, out_dtype=np.float64)
    exact = sum(Fraction(float(a)) * Fraction(float(b)) for a, b in zip(x[0, 0], w[0, 0]))
    # y = exact / sqrt(8), correctly rounded: check against the exact square, y**2 * 8 ~ exact**2
    assert seen[-1][0] is not None and seen[-1][0].truncated and sum(fallbacks) >= 1
    assert np.isfinite(y).all() and y[0, 0, 0] == y[0, 1, 0]
    got = Fraction(float(y[0, 0, 0]))
    ulp = Fraction(2) ** (int(np.frexp(y[0, 0, 0])[1]) - 53)
    assert (got - ulp / 2) ** 2 * 8 <= exact**2 <= (got + ulp / 2) ** 2 * 8


@pytest.mark.parametrize("workers", [1, 3])
def test_depthwise_grad_weight_blocks_on_threads(workers, monkeypatch):
    """Depthwise grad_w and grad_b sum their (batch, group) blocks on ``fast._WORKERS`` threads
    (``sliced.ENGINE_THREADS`` raised to allow them),
    each into its own buffers (added at the end): bit for bit the term-list engine's results,
    complete and truncated plans (incl. the whole-block recomputation), many small blocks."""
    from usconv_ref import fast
    monkeypatch.setattr(fast, "_WORKERS", workers)
    monkeypatch.setattr(sliced, "ENGINE_THREADS", workers)
    monkeypatch.setattr(sliced, "_BLOCK", 5)
    for trunc in (False, True):
        if trunc:
            seen = _record_plans(monkeypatch)
        for gi in (2, 4):
            for seed, (dtype, dataset) in enumerate([("float64", "normal"), ("float64", "cancel"),
                                                     ("complex128", "sparse"), ("float32", "large")]):
                cd, spec, x, w, b = _case(GEOMETRIES[gi], dtype, dataset, seed + 30, bias=True)
                assert _both(cd, spec, x, w, b, seed) == 4
        if trunc:
            assert any(p is not None and p.truncated for p, _ in seen)
    monkeypatch.setattr(sliced, "_limit", lambda rows, passes: 0)
    cd, spec, x, w, b = _case(GEOMETRIES[4], "float64", "cancel", 40, bias=True)
    _both(cd, spec, x, w, b, 0)


# --- the float64 rounding tier's pieces (follow-up 3): Fast2Sum cascade, a priori magnitude
# bound, multiplies for power-of-two scalings, zero-filled unwritten buffers, integer fallback rows.

def _exact_value(sums, r, low=0):
    v = sum(Fraction(int(t[r])) * Fraction(2) ** (sh - low) for t, sh in zip(sums.terms, sums.shifts))
    if sums.bias is not None:
        v += Fraction(float(sums.bias[r])) / Fraction(2) ** (int(sums.base[r]) + low)
    return v


@pytest.mark.parametrize("seed", range(4))
def test_cascade_error_within_its_bound(seed):
    """``S + Sl`` of :meth:`SlicedSums.cascade` against the exact sum of integer buffers
    (Fractions): within ``(n+2)**2 2**-106 (2|S| + B) + extra`` (the low terms summed in plain
    float64 within the slack given, ``extra`` their a priori error), on buffers at their extremes
    (``±2**53``, ``±(2**53 - 1)``), random ones, heavy cancellation (the running sum smaller
    than the next term: the case outside Dekker's ``|a| >= |b|``), and a bias. Fails if a term
    is dropped or the order of the cascade is reversed (Fast2Sum then loses bits)."""
    rng = np.random.default_rng(seed)
    rows = 400
    shifts = sorted(rng.choice(np.arange(0, 120), size=rng.integers(2, 7), replace=False).tolist())
    pick = lambda: rng.choice([2.0**53, -(2.0**53), 2.0**53 - 1, 1.0, -1.0, 0.0, 3.0], rows)
    terms = [np.where(rng.random(rows) < 0.5, pick(), np.rint(rng.uniform(-2.0**53, 2.0**53, rows))) for _ in shifts]
    terms[-1][:100] = 2.0**53 - 1  # the largest shift small, lower ones at their largest: |S| < |p|
    for t in terms[:-1]:
        t[:100] = -(2.0**53)
    base = rng.integers(-60, 60, rows).astype(np.int32)
    for bias in (None, rng.standard_normal(rows) * 2.0 ** rng.integers(0, 200, rows)):
        sums = sliced.SlicedSums(terms, shifts, base, bias)
        for slack in (0.0, 2.0 ** (max(shifts) - min(shifts)), np.inf):  # none, some, all but the top plain
            S, Sl, B, low, extra = sums.cascade(slack)
            assert (extra > 0) == (slack > 0) and extra <= slack
            n = len(terms) + (bias is not None)
            for r in range(rows):
                exact = _exact_value(sums, r, low)
                err = abs(Fraction(float(S[r])) + Fraction(float(Sl[r])) - exact)
                Br = Fraction(float(np.broadcast_to(B, (rows,))[r]))
                assert err <= Fraction((n + 2) ** 2, 2**106) * (2 * abs(Fraction(float(S[r]))) + Br) + Fraction(extra), r


def test_dd_tier_zero_and_cancelling_rows():
    """Complete plans: rows whose terms are all zero, and rows whose terms cancel exactly
    (nonzero buffers, ``V = 0``), round to +0; rows of tiny value next to huge buffers are
    rounded exactly (the a priori bound leaves them to the limbs)."""
    from usconv_ref.numerics import round_fraction
    f = FORMATS["float64"]
    scale = ExactScale.of(Fraction(1, 3))
    t0 = np.array([0.0, 2.0**40, 3.0, 2.0**52, -5.0])
    t1 = np.array([0.0, -(2.0**30), 0.0, -(2.0**42) + 1, 7.0])  # row 1: 2**40 - 2**30 * 2**10 = 0
    sums = sliced.SlicedSums([t1, t0], [0, 10], np.zeros(5, np.int32), None)
    got = sums._round(scale, f)
    for r in range(5):
        want = round_fraction(_exact_value(sums, r) * Fraction(1, 3), f)
        assert got[r] == want and np.signbit(got[r]) == np.signbit(want), r
    assert not np.signbit(got[:2]).any()


def test_scale2_matches_ldexp():
    """``_scale2`` (a multiply by 2**k where that power is normal) equals ``np.ldexp`` for
    exponents inside and outside the normal range (subnormal and huge operands included)."""
    a = np.array([[1.5, -3.0, 5e-324, 2.0**-1070], [1e300, -1e-300, 0.0, 7.0]])
    for k in ([[3], [-5]], [[1023], [-1022]], [[1100], [-1100]], [[0], [60]]):
        k = np.array(k)
        with np.errstate(over="ignore"):
            np.testing.assert_array_equal(sliced._scale2(a, k), np.ldexp(a, k))


def test_accumulate_zero_fills_buffers_no_pair_reaches():
    """Buffers start uninitialised (NaN here); an a operand exhausted after one slice leaves
    the later slices' buffers unwritten, and those must read zero (not garbage)."""
    p = sliced.Plan(10, 10, 3, 2)
    bufs = sliced.new_buffers(p, [[(1, 0, 0)]], (4,), empty=True)
    for b in bufs[0]:
        b[...] = np.nan
    qa = [[np.arange(4.0)]]  # one a slice only (the generator stops early)
    qb = [[np.ones(4)], [np.full(4, 2.0)]]
    F = sliced.adding(lambda a, b: a * b)
    sliced.accumulate(bufs, p, iter(qa), qb, F, [[(1, 0, 0)]])
    slot = {s: k for k, s in enumerate(p.shifts)}
    np.testing.assert_array_equal(bufs[0][slot[p.shift(0, 0)]], np.arange(4.0))
    np.testing.assert_array_equal(bufs[0][slot[p.shift(0, 1)]], 2 * np.arange(4.0))
    for s, k in slot.items():
        if s not in (p.shift(0, 0), p.shift(0, 1)):
            np.testing.assert_array_equal(bufs[0][k], 0.0)


@pytest.mark.parametrize("int_rows", [0, 64])
@pytest.mark.parametrize("scale", [Fraction(1, 3), Fraction(1, 1), "irrational"])
def test_fallback_rows_round_exactly(scale, int_rows, monkeypatch):
    """``_round_rows_int`` (the truncated plans' per-row fallback: integer sums, a double-double
    decision, exact rationals for the rest) against exact rational rounding, on rows of random
    factors, exact ties, near-ties, zeros, values that cancel, huge exponent spreads (beyond the
    double-double's 2**1000 units) and results in the subnormal range; rational scales both
    through the double-double tier (``_INT_ROWS`` 0) and in integers alone."""
    from usconv_ref.numerics import round_exact
    monkeypatch.setattr(sliced, "_INT_ROWS", int_rows)
    f = FORMATS["float64"]
    sc = ExactScale.of(scale) if scale != "irrational" else exact_unit_scales(
        prepare(np.zeros((1, 448, 4)), np.zeros((1, 448, 1)), None, Conv1dSpec())[0].geo, Conv1dSpec()).output
    rng = np.random.default_rng(5)
    a = rng.standard_normal((40, 6))
    b = rng.standard_normal((40, 6))
    a[0], b[0] = [1.0, 2.0**-53, 0, 0, 0, 0], [3.0, 3.0, 0, 0, 0, 0]  # 3 (1 + 2**-53): a tie times 1/3
    a[1], b[1] = [1.0, 2.0**-60, 0, 0, 0, 0], [1.0, 1.0, 0, 0, 0, 0]
    a[2], b[2] = 0.0, 0.0
    a[3], b[3] = [1.0, -1.0, 2.0, -2.0, 0, 0], [5.0, 5.0, 7.0, 7.0, 0, 0]
    a[4], b[4] = [2.0**600, 2.0**-600, 0, 0, 0, 0], [2.0**400, 2.0**-400, 0, 0, 0, 0]  # > 2**1000 units
    a[5], b[5] = [2.0**-540, 0, 0, 0, 0, 0], [2.0**-540, 0, 0, 0, 0, 0]  # subnormal range
    got = sliced._round_rows_int(a, b, sc, f)
    for r in range(a.shape[0]):
        v = sum(Fraction(float(x)) * Fraction(float(y)) for x, y in zip(a[r], b[r]))
        want = round_exact(v, sc, f) if v >= 0 else -round_exact(-v, sc, f)
        assert got[r] == want and np.signbit(got[r]) == np.signbit(want), r


@pytest.mark.parametrize("layout", ["chunks", "taps", "b_budget"])
@pytest.mark.parametrize("gi", range(4))  # the dense geometries
@pytest.mark.parametrize("dtype", ["float64", "complex128"])
def test_dense_kernel_layouts_match_term_lists(gi, dtype, layout, monkeypatch):
    """The engine with the dense kernels' column matrices built per call in chunks of a few
    positions (no ``dense_columns`` for a slice: the pairs build their own), with the per-tap
    loops, or with grad_w's budget for prepared x slices spent after the first (the later ones
    per pair), bit for bit the term-list engine (the default layout, one column matrix per
    slice prepared once for all its pairs, is what the other tests run)."""
    from usconv_ref import fast
    if layout == "b_budget":
        monkeypatch.setattr(sliced, "_PREP_B_ELEMS", 1 + 2 * 8 * 17 * 4)  # about one x slice's columns or less
    else:
        monkeypatch.setattr(fast, "_COLS_MIN", 1)
        monkeypatch.setattr(fast, "_COLS_ELEMS", 60 if layout == "chunks" else 1)
    for seed, dataset in enumerate(["normal", "cancel"]):
        cd, spec, x, w, b = _case(GEOMETRIES[gi], dtype, dataset, seed + 20, bias=True)
        _both(cd, spec, x, w, b, seed)


def test_dense_columns_prepared_once_per_slice(monkeypatch):
    """The default layout: every x / gy slice of the dense contractions gets its column matrix
    once (``accumulate``'s prep hooks), not once per pair — and the engine still matches the
    term lists (the other tests)."""
    from usconv_ref import fast
    made = []
    real = fast.dense_columns

    def spy(a, geo, mode, kind, key):
        out = real(a, geo, mode, kind, key)
        made.append((kind, out is not None))
        return out
    monkeypatch.setattr(fast, "dense_columns", spy)
    cd, spec, x, w, b = _case(GEOMETRIES[0], "float64", "normal", 5, bias=True)
    _both(cd, spec, x, w, b, 5)
    assert {k for k, ok in made if ok} == {"x", "gy"}


def test_accumulate_prep_hooks():
    """``F.prep_a`` runs once per a slice and part, ``F.prep_b`` once per b slice and part (not
    once per pair); ``F`` receives what they return; truncated plans prepare only the b slices
    they pair."""
    calls = {"a": 0, "b": 0}

    def prep(side):
        def fn(q, key):
            calls[side] += 1
            assert key.startswith("prep_" + side)
            return (side, q)
        return fn

    def F(a, b, buf, negate, assign=False):
        assert a[0] == "a" and b[0] == "b"
        t = a[1] * b[1]
        if assign:
            buf[...] = -t if negate else t
        else:
            buf += -t if negate else t
    F.prep_a, F.prep_b = prep("a"), prep("b")
    plain = sliced.adding(lambda a, b: a * b)
    for p in (sliced.Plan(10, 10, 3, 2), sliced.Plan(10, 10, 3, 3, kb=(2, 1))):
        qa = [[np.arange(4.0) + i] for i in range(p.sa)]
        qb = [[np.full(4, 2.0 + j)] for j in range(p.sb)]
        calls.update(a=0, b=0)
        got = sliced.new_buffers(p, [[(1, 0, 0)]], (4,), empty=True)
        sliced.accumulate(got, p, iter(qa), qb, F, [[(1, 0, 0)]])
        want = sliced.new_buffers(p, [[(1, 0, 0)]], (4,))
        sliced.accumulate(want, p, iter(qa), qb, plain, [[(1, 0, 0)]])
        for g, e in zip(got[0], want[0]):
            np.testing.assert_array_equal(g, e)
        assert calls == ({"a": 3, "b": 2} if p.kb is None else {"a": 2, "b": 2})


@pytest.mark.parametrize("gi, block", [(2, 40), (4, 32), (4, 64)])
@pytest.mark.parametrize("dtype", ["float64", "complex128", "float32"])
def test_depthwise_blocks_across_the_batch_match_term_lists(gi, block, dtype, monkeypatch):
    """Depthwise blocks of a few groups of every batch element (a batch element larger than a
    block, a group of all of them not): each block's rows written through a (batch, channels)
    index, in chunks that straddle its batch rows; complete and truncated plans (the fallback's
    rows of such blocks) against the term-list engine, bit for bit."""
    seen = []
    real = sliced._blocks

    def spy(N, G, per_n, per_g, across=False, **kw):
        out = real(N, G, per_n, per_g, across, **kw)
        seen.extend((ns.stop - ns.start, gs.stop - gs.start, G) for ns, gs in out)
        return out
    monkeypatch.setattr(sliced, "_blocks", spy)
    monkeypatch.setattr(sliced, "_BLOCK", block)
    monkeypatch.setattr(sliced, "_CHUNK", 5)
    for truncate in (False, True):
        if truncate:
            monkeypatch.setattr(sliced, "TRUNCATE_MIN_WORK", 0)
        for seed, dataset in enumerate(["normal", "cancel"]):
            cd, spec, x, w, b = _case(GEOMETRIES[gi], dtype, dataset, seed + 30, bias=seed == 0)
            _both(cd, spec, x, w, b, seed)
    N = GEOMETRIES[gi]["N"]
    assert any(nb == N > 1 and gb < G for nb, gb, G in seen)  # the across-the-batch blocks were used


def test_rows_sink_writes_flat_rows_of_a_strided_region():
    """``_rows_sink`` against flat assignment into a copy: slices straddling the region's runs,
    index arrays; None where a run is not contiguous."""
    out = np.zeros((3, 7, 5))
    region = out[:, 2:5]  # 3 runs of 15 contiguous elements
    want = np.zeros(region.size)
    sink = correlation._rows_sink(region)
    rng = np.random.default_rng(0)
    for sl in (slice(0, 4), slice(4, 31), slice(31, 45)):
        vals = rng.standard_normal(sl.stop - sl.start)
        sink(sl, vals)
        want[sl] = vals
    idx = np.array([3, 15, 16, 44])
    sink(idx, np.arange(4.0))
    want[idx] = np.arange(4.0)
    np.testing.assert_array_equal(region.reshape(-1), want)
    assert out[:, :2].sum() == 0 and out[:, 5:].sum() == 0
    assert correlation._rows_sink(out[:, :, 1:3]) is None


def test_repeated_base_matches_its_expansion():
    """``_Repeated`` (a block's exponents expanded per chunk) equals ``np.repeat`` for slices at
    every offset, across run boundaries, and for index arrays; a SlicedSums on it rounds like
    one on the expanded vector, chunk by chunk (fails with a run boundary off by one)."""
    rng = np.random.default_rng(5)
    vals = rng.integers(-50, 50, 7).astype(np.int64)
    rep = sliced._Repeated(vals, 5)
    full = np.repeat(vals, 5)
    assert rep.shape == full.shape
    for a in range(36):
        for b in range(a, 36):
            np.testing.assert_array_equal(rep[a:b], full[a:b])
    idx = rng.integers(0, 35, 50)
    np.testing.assert_array_equal(rep[idx], full[idx])
    np.testing.assert_array_equal(rep.astype(np.int64), full)
    terms = [np.rint(rng.uniform(-2.0**52, 2.0**52, 35)) for _ in range(3)]
    scale = ExactScale.of(Fraction(1, 3))
    f = FORMATS["float64"]
    want = sliced.SlicedSums(terms, [0, 20, 45], full, None).round(scale, f)
    got = sliced.SlicedSums(terms, [0, 20, 45], rep, None)
    np.testing.assert_array_equal(got.round(scale, f), want)


def test_sums_expands_a_positions_constant_base_lazily(monkeypatch):
    """``_sums`` keeps a base that is constant along positions (a broadcast) as ``_Repeated``,
    and rounds the same values as with the base expanded."""
    monkeypatch.setattr(sliced, "_CHUNK", 4)
    rng = np.random.default_rng(6)
    p = sliced.Plan(20, 20, 2, 1)
    bufs = [[np.rint(rng.uniform(-2.0**50, 2.0**50, (2, 3, 1, 6))) for _ in p.shifts]]
    base = np.broadcast_to(rng.integers(-30, 30, (2, 3, 1, 1)), (2, 3, 1, 6))
    (lazy,) = sliced._sums(bufs, p, base, None)
    assert isinstance(lazy.base, sliced._Repeated)
    expanded = sliced.SlicedSums(lazy.terms, lazy.shifts, np.ascontiguousarray(base, np.int64).reshape(-1), None)
    scale = ExactScale.of(Fraction(1, 3))
    f = FORMATS["float64"]
    np.testing.assert_array_equal(lazy.round(scale, f), expanded.round(scale, f))


@pytest.mark.parametrize("geo", [dict(N=3, C_in=6, C_out=6, L=32, K=9, padding=4, groups=6),
                                 dict(N=2, C_in=4, C_out=4, L=24, K=9, padding=4, groups=4, padding_mode="reflect"),
                                 dict(N=2, C_in=5, C_out=5, L=16, K=5, padding=4, groups=5, dilation=2,
                                      padding_mode="circular"),
                                 dict(N=2, C_in=4, C_out=4, L=24, K=4, padding=3, groups=4, dilation=2,
                                      padding_mode="replicate")])
@pytest.mark.parametrize("dtype", ["float64", "complex128", "bfloat16"])
def test_depthwise_band_kernel_in_the_engine_matches_term_lists(geo, dtype, monkeypatch):
    """The exact engine's depthwise forward, grad_x and grad_w through the band kernels (output
    lengths of 32, 24 and 16: B = 16 and 8; grad_x: the interior, or every padded position and
    the adjoint; the last geometry: forward and grad_w only) with the windows built once per
    slice: complete and truncated plans, normal and cancelling data, bit for bit the term-list
    engine; asserts the band kernels ran, the forward's always with the engine's windows."""
    from usconv_ref import fast
    used, gw_used = [], []
    orig = fast._dw_forward_band
    monkeypatch.setattr(fast, "_dw_forward_band", lambda *a, **k: (used.append(a[-1] is not None), orig(*a, **k))[1])
    orig_gw = fast._dw_grad_weight_band
    monkeypatch.setattr(fast, "_dw_grad_weight_band", lambda *a: (gw_used.append(1), orig_gw(*a))[1])
    for truncate in (False, True):
        if truncate:
            monkeypatch.setattr(sliced, "TRUNCATE_MIN_WORK", 0)
        for seed, dataset in enumerate(["normal", "cancel"]):
            cd, spec, x, w, b = _case(geo, dtype, dataset, seed + 50, bias=seed == 0)
            _both(cd, spec, x, w, b, seed)
    assert used and all(used) and gw_used


def test_stats_largest_and_smallest_nonzero_magnitudes():
    """``_stats`` (the smallest nonzero magnitude from the encodings) against a masked
    reduction: slabs with zeros, negative zeros, subnormals, huge values, an all-zero slab
    (inf), several parts (complex), and a non-finite value (the maximum is not finite).
    Fails if zeros are not excluded or an all-zero slab is not mapped to inf."""
    rng = np.random.default_rng(7)
    a = rng.standard_normal((3, 4, 2, 9)) * 2.0 ** rng.integers(-1070, 1000, (3, 4, 2, 9))
    a[rng.random(a.shape) < 0.3] = 0.0
    a[0, 1, 0, 3] = -0.0
    a[1, 2, 0, 4] = 5e-324
    a[2, 3] = 0.0  # all-zero slab for axes (2, 3)
    b = rng.standard_normal(a.shape)
    for parts in ([a], [a, b]):
        for axes in ((2, 3), (0, 3)):
            mx, mn = sliced._stats([p.copy() for p in parts], axes)
            ab = np.maximum.reduce([np.abs(p) for p in parts])
            want_mx = np.max(ab, axis=axes, keepdims=True)
            nz = [np.where(p != 0, np.abs(p), np.inf) for p in parts]
            want_mn = np.minimum.reduce([np.min(z, axis=axes, keepdims=True) for z in nz])
            np.testing.assert_array_equal(mx, want_mx)
            np.testing.assert_array_equal(mn, want_mn)
    assert np.isinf(sliced._stats([a], (2, 3))[1][2, 3]).all()
    c = a.copy()
    c[1, 1, 1, 1] = np.nan
    assert not np.isfinite(sliced._stats([c], (2, 3))[0]).all()
    c[1, 1, 1, 1] = -np.inf
    assert not np.isfinite(sliced._stats([c], (0, 3))[0]).all()


def test_any_nonzero_is_any():
    """``_any_nonzero`` (the slicer's early-stop test, short-cut by the first element) equals
    ``ndarray.any``: empty, all zero, negative zero first, nonzero only first / only last /
    in the middle, NaN, 2-D. Fails if the short cut answers False for a zero first element."""
    cases = [np.zeros(0), np.zeros(7), np.array([-0.0, 0.0]), np.array([1.0, 0.0, 0.0]),
             np.array([0.0, 0.0, 2.0**-1074]), np.array([0.0, -0.5, 0.0]), np.array([np.nan, 0.0]),
             np.array([[0.0, 0.0], [0.0, 3.0]]), np.array([-0.0, 0.0, 0.0, -1.0])]
    for a in cases:
        assert sliced._any_nonzero(a) == bool(a.any()), a
