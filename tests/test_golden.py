"""Golden data: verification, certification against exact arithmetic written here,
corruption detection, atomic regeneration, and the documented input generator."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zlib
from fractions import Fraction
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

import oracles
from usconv_ref import golden as G
from usconv_ref.catalog import build_catalog

ROOT = Path(__file__).parents[1]
GOLDEN = ROOT / "golden"
CASES = {c.id: c for c in build_catalog()}


def cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "usconv_ref.cli", *args], capture_output=True, text=True, cwd=cwd)


def test_committed_catalog_matches_code():
    """catalog.json is what build_catalog() describes (ids, seeds, shapes, kwargs)."""
    doc = json.loads((GOLDEN / "catalog.json").read_text())
    assert [c["id"] for c in doc["cases"]] == list(CASES)
    assert doc["cases"] == [c.to_json() for c in CASES.values()]


def test_verify_recompute_exits_0():
    """The whole committed set regenerates bit for bit (in memory) on this machine."""
    r = cli("golden", "verify", "--recompute", "-j", "2")
    assert r.returncode == 0, r.stderr
    assert f"{len(CASES)} cases verified (recomputed bitwise)" in r.stdout


def test_golden_size_under_30mb():
    assert sum(p.stat().st_size for p in GOLDEN.rglob("*") if p.is_file()) < 30e6


# --- certification: sampled elements against Fractions computed here -------------------

def _fr_parts(a: np.ndarray):
    """(re, im) float64 arrays of a decoded array of any case dtype."""
    if a.dtype.names:
        return a["real"].astype(np.float64), a["imag"].astype(np.float64)
    if np.iscomplexobj(a):
        return a.real.astype(np.float64), a.imag.astype(np.float64)
    return a.astype(np.float64), np.zeros(a.shape)


def _cmul(a, b, conj_b=False):
    br, bi = b[0], (-b[1] if conj_b else b[1])
    return (a[0] * br - a[1] * bi, a[0] * bi + a[1] * br)


@pytest.mark.parametrize("case_id", [f"dtype.{d}-normal" for d in
                                     ("float16", "bfloat16", "float32", "float64", "complex32", "complex64", "complex128")]
                         + ["axis.mode-reflect", "axis.depthwise-mult3-replicate", "axis.constraint-hmean", "pairs.09-replicate-s2-d4-dw"])
def test_certify_sample_against_fractions(case_id):
    """20 sampled elements of each of y, grad_x, grad_w, grad_b — and their float64 twins —
    equal the correct rounding of the exact value computed with Fractions directly from
    the SPEC formulas and the stored inputs (not through usconv_ref)."""
    case = CASES[case_id]
    d = G.load_case(GOLDEN, case)
    kw = {"stride": 1, "padding": 0, "dilation": 1, "groups": 1, "padding_mode": "zeros",
          "constraint": "to_output_scale", "scale_power": (0.5, 0.5, 0.5)}
    kw.update({k: (v[0] if isinstance(v, list) and k != "scale_power" else v) for k, v in case.kwargs.items()})
    x, w, gy = (_fr_parts(d[k]) for k in ("x", "w", "grad_y"))
    b = _fr_parts(d["b"]) if "b" in d else None
    if x[0].ndim == 2:
        x, gy = tuple(p[None] for p in x), tuple(p[None] for p in gy)
    N, C_in, L = x[0].shape
    C_out, Cg, K = w[0].shape
    Og = C_out // kw["groups"]
    pl, pr = oracles.pads(K, kw["dilation"], kw["padding"])
    s, dil = kw["stride"], kw["dilation"]
    L_out = (L + pl + pr - dil * (K - 1) - 1) // s + 1
    el = lambda t, idx: (Fraction(float(t[0][idx])), Fraction(float(t[1][idx])))
    xp = lambda n, c, i: ((Fraction(0), Fraction(0)) if oracles.pad_source(i - pl, L, kw["padding_mode"]) is None
                          else el(x, (n, c, oracles.pad_source(i - pl, L, kw["padding_mode"]))))
    s_out, s_gx, s_gw = oracles.oracle_scales(Cg, K, C_out, s, kw["groups"], (N if case.input_shape.__len__() == 3 else 1) * L_out,
                                              kw["constraint"], kw["scale_power"])
    rng = np.random.default_rng(0)

    def raw_y(n, o, t):
        acc = el(b, (o,)) if b is not None else (Fraction(0), Fraction(0))
        for c in range(Cg):
            for k in range(K):
                p = _cmul(el(w, (o, c, k)), xp(n, (o // Og) * Cg + c, t * s + k * dil))
                acc = (acc[0] + p[0], acc[1] + p[1])
        return acc

    def raw_gx(n, ci, j):
        acc = (Fraction(0), Fraction(0))
        g, c = ci // Cg, ci % Cg
        for o in range(g * Og, (g + 1) * Og):
            for t in range(L_out):
                for k in range(K):
                    if oracles.pad_source(t * s + k * dil - pl, L, kw["padding_mode"]) == j:
                        p = _cmul(el(gy, (n, o, t)), el(w, (o, c, k)), conj_b=True)
                        acc = (acc[0] + p[0], acc[1] + p[1])
        return acc

    def raw_gw(o, c, k):
        acc = (Fraction(0), Fraction(0))
        for n in range(N):
            for t in range(L_out):
                p = _cmul(el(gy, (n, o, t)), xp(n, (o // Og) * Cg + c, t * s + k * dil), conj_b=True)
                acc = (acc[0] + p[0], acc[1] + p[1])
        return acc

    def raw_gb(o):
        return (sum((Fraction(float(gy[0][n, o, t])) for n in range(N) for t in range(L_out)), Fraction(0)),
                sum((Fraction(float(gy[1][n, o, t])) for n in range(N) for t in range(L_out)), Fraction(0)))

    part = {"complex32": "float16", "complex64": "float32", "complex128": "float64"}.get(case.dtype, case.dtype)
    tensors = [("y", raw_y, s_out, (N, C_out, L_out)), ("grad_x", raw_gx, s_gx, (N, C_in, L)),
               ("grad_w", raw_gw, s_gw, (C_out, Cg, K))]
    if b is not None:
        tensors.append(("grad_b", raw_gb, s_gw, (C_out,)))
    for name, fn, scale, shape in tensors:
        got = _fr_parts(d[name]), _fr_parts(d[name + "_f64"])
        if got[0][0].ndim < len(shape):
            got = tuple(tuple(p[None] for p in g) for g in got)
        for _ in range(20):
            idx = tuple(int(rng.integers(0, n)) for n in shape)
            raw = fn(*idx)
            for p in (0, 1):
                for (re_im, fmt) in ((got[0], part), (got[1], "float64")):
                    want = oracles.round_scaled(raw[p], scale, fmt)
                    g = re_im[p][idx]
                    assert g == want or (np.isnan(g) and np.isnan(want)), (name, idx, p, fmt, g, want)


# --- the documented generator, re-implemented here from golden/FORMAT.md ---------------

def _splitmix64(z: int) -> int:
    m = (1 << 64) - 1
    z = (z + 0x9E3779B97F4A7C15) & m
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & m
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & m
    return z ^ (z >> 31)


FMT = {"float16": (11, -14), "bfloat16": (8, -126), "float32": (24, -126), "float64": (53, -1022)}
LARGE = {"float16": 7, "bfloat16": 63, "float32": 63, "float64": 511}
TINY = {"float16": -10, "bfloat16": -65, "float32": -68, "float64": -530}


def _value(seed, stream, i, dataset, fmt):
    key = _splitmix64((seed * 256 + stream) & ((1 << 64) - 1))
    wd = [_splitmix64((key + 4 * i + j) & ((1 << 64) - 1)) for j in range(4)]
    S = sum((wd[j] >> (16 * c)) & 0xFFFF for j in range(3) for c in range(4)) - 393216
    S = S or 1
    E, extra = -16, wd[3]
    p, emin = FMT[fmt]
    if dataset == "large":
        E += LARGE[fmt]
    elif dataset == "tiny":
        E += TINY[fmt]
    elif dataset == "cancel":
        S += (1 if extra & 1 == 0 else -1) << (16 + p // 2)
    elif dataset == "sparse" and extra & 3:
        S = 0
    if S:
        e = E + abs(S).bit_length() - 1
        q = max(e, emin) - p + 1
        if q > E:
            S = (1 if S > 0 else -1) * (abs(S) >> (q - E))
            E = q
    v = Fraction(S) * Fraction(2) ** E
    if dataset == "special" and stream == 1 and (extra >> 8) % 64 == 0:
        return [float("nan"), float("inf"), float("-inf")][extra % 3]
    return v


@pytest.mark.parametrize("case_id", ["dtype.float16-large", "dtype.bfloat16-tiny", "dtype.float32-cancel",
                                     "dtype.float64-sparse", "dtype.complex64-normal", "dtype.float32-special", "dtype.complex128-special",
                                     "dtype.float64-large"])
def test_inputs_follow_documented_generator(case_id):
    """x and w of a case, recomputed from FORMAT.md's formulas with Python ints, equal the
    stored bits; the seed is crc32(id)."""
    case = CASES[case_id]
    assert case.seed == zlib.crc32(case_id.encode())
    d = G.load_case(GOLDEN, case)
    part = {"complex64": "float32", "complex128": "float64", "complex32": "float16"}.get(case.dtype, case.dtype)
    for name, stream in (("x", 1), ("w", 2)):
        re, im = _fr_parts(d[name])
        for i in range(0, re.size, max(1, re.size // 300)):
            want = _value(case.seed, stream, i, case.dataset, part)
            if isinstance(want, float) and case.dtype.startswith("complex"):
                want = float("nan")  # complex specials are NaN in both parts
            got = re.ravel()[i]
            if isinstance(want, float):
                assert (np.isnan(want) and np.isnan(got)) or want == got
            else:
                assert Fraction(float(got)) == want, (name, i)
            if case.dtype.startswith("complex"):
                if isinstance(want, float):  # a special: NaN in both parts
                    assert np.isnan(im.ravel()[i])
                else:
                    assert Fraction(float(im.ravel()[i])) == _value(case.seed, stream + 16, i, case.dataset, part)


def test_bfloat16_storage_round_trips():
    """16-bit data are stored as uint16 bit patterns and decode to the same bits."""
    d = G.load_case(GOLDEN, CASES["dtype.bfloat16-normal"])
    assert d["x"].dtype == np.dtype(ml_dtypes.bfloat16)
    with np.load(GOLDEN / "data" / "dtype.bfloat16-normal.npz") as z:
        assert z["x"].dtype == np.uint16 and np.array_equal(z["x"], d["x"].view(np.uint16))
    with np.load(GOLDEN / "data" / "dtype.complex32-normal.npz") as z:
        assert z["x"].dtype == np.uint16 and z["x"].shape[-1] == 2


# --- corruption and regeneration ------------------------------------------------------

@pytest.fixture
def small_set(tmp_path):
    """A golden set of 4 cases in a temporary directory (regenerated here)."""
    cases = [CASES[i] for i in ("axis.replicate-L1", "axis.reflect-pad-L-1", "axis.circular-pad-L", "axis.batch-0-circular")]
    d = tmp_path / "golden"
    rep = G.regen(d, cases=cases)
    assert len(rep.added) == 4 and not rep.refused
    return d, cases


def _one_line_fail(r, code, needle):
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert needle in r.stderr


def test_verify_detects_corruption(small_set):
    d, cases = small_set
    assert cli("golden", "verify", "--golden", str(d)).returncode == 0
    f = d / "data" / f"{cases[0].id}.npz"
    orig = f.read_bytes()
    f.write_bytes(orig[:100] + bytes([orig[100] ^ 1]) + orig[101:])
    _one_line_fail(cli("golden", "verify", "--golden", str(d)), 1, "hash mismatch")
    f.write_bytes(orig[: len(orig) // 2])
    _one_line_fail(cli("golden", "verify", "--golden", str(d)), 1, "hash mismatch")
    f.unlink()
    _one_line_fail(cli("golden", "verify", "--golden", str(d)), 1, "missing file")
    f.write_bytes(orig)
    (d / "data" / "stray.npz").write_bytes(b"x")
    _one_line_fail(cli("golden", "verify", "--golden", str(d)), 1, "extra file data/stray.npz")
    (d / "data" / "stray.npz").unlink()
    man = json.loads((d / "manifest.json").read_text())
    cat = json.loads((d / "catalog.json").read_text())
    cat["cases"] = cat["cases"][1:]  # the manifest now lists a case the catalog lacks
    (d / "catalog.json").write_text(json.dumps(cat))
    man["files"]["catalog.json"] = G.sha256((d / "catalog.json").read_bytes())
    (d / "manifest.json").write_text(json.dumps(man))
    _one_line_fail(cli("golden", "verify", "--golden", str(d)), 1, "names no case")
    cat["catalog_version"] = 99
    (d / "catalog.json").write_text(json.dumps(cat))
    _one_line_fail(cli("golden", "verify", "--golden", str(d)), 2, "unknown catalog version 99")
    (d / "catalog.json").write_text("{not json")
    _one_line_fail(cli("golden", "verify", "--golden", str(d)), 2, "unreadable catalog")


def _snapshot(d: Path):
    return {p.relative_to(d): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def test_interrupted_regen_leaves_previous_set_identical(small_set):
    """A crash after two files of the new set: the old set is byte-identical, and the next
    run cleans up the stale temporary set."""
    d, cases = small_set
    before = _snapshot(d)
    changed = [G.Case(c.id, c.family, c.dtype, "sparse", c.input_shape, c.weight_shape, c.bias, c.kwargs)
               if i == 0 else c for i, c in enumerate(cases)]
    count = [0]

    def crash(rel):
        count[0] += 1
        if count[0] == 2:
            raise KeyboardInterrupt("simulated crash")

    with pytest.raises(KeyboardInterrupt):
        G.regen(d, cases=changed, accept_changes=True, _write_hook=crash)
    assert _snapshot(d) == before
    (d.with_name("golden.tmp")).mkdir()  # as a hard kill would leave it
    assert G.verify(d) == 4 and not d.with_name("golden.tmp").exists()


def test_regen_refuses_changes_without_accept(small_set, tmp_path):
    d, cases = small_set
    before = _snapshot(d)
    changed = [G.Case(c.id, c.family, c.dtype, "sparse", c.input_shape, c.weight_shape, c.bias, c.kwargs)
               if i == 0 else c for i, c in enumerate(cases)]
    rep = G.regen(d, cases=changed)
    assert rep.refused and rep.changed == [cases[0].id] and _snapshot(d) == before
    rep = G.regen(d, cases=changed, accept_changes=True)
    assert not rep.refused and rep.changed == [cases[0].id]
    assert G.verify(d, recompute=False) == 4
    rep = G.regen(d, cases=changed[1:], accept_changes=True)
    assert rep.removed == [cases[0].id] and G.verify(d) == 3


def test_regen_cli_refusal_exit_1(tmp_path):
    """CLI: a regen over a set whose case differs exits 1 and lists it; the set is unchanged."""
    d = tmp_path / "g"
    shutil.copytree(GOLDEN, d)
    f = d / "data" / "axis.stride-2.npz"
    man = json.loads((d / "manifest.json").read_text())
    man["files"]["data/axis.stride-2.npz"] = "0" * 64  # pretend the stored case differs
    (d / "manifest.json").write_text(json.dumps(man))
    before = _snapshot(d)
    r = cli("golden", "regen", "--golden", str(d), "--filter", "axis.stride-2")
    assert r.returncode == 1 and "changed: axis.stride-2" in r.stdout and "--accept-changes" in r.stderr
    assert _snapshot(d) == before and f.exists()


def test_plain_install_ships_and_finds_golden_set(tmp_path):
    """A non-editable install carries the golden set as package data and finds it by
    default (run from outside the checkout)."""
    wheel_dir, target, src = tmp_path / "wheel", tmp_path / "site", tmp_path / "src"
    # build from a clean copy: an in-tree build/ directory can hold stale package data
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns("build", ".venv", "*.egg-info", ".git", "__pycache__",
                                                             ".hypothesis", ".pytest_cache"))
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                        "-w", str(wheel_dir), str(src)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    wheel = next(wheel_dir.glob("usconv-*.whl"))
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    code = ("from usconv_ref.golden import default_golden_dir, verify; d = default_golden_dir(); "
            "print(d); print(verify(d))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(tmp_path),
                       env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    where, n = r.stdout.split()
    assert where.startswith(str(target)) and int(n) == len(CASES)


def test_regen_compares_with_files_not_only_the_manifest(small_set):
    """An edited data file is 'changed' for regen (refused without --accept-changes, which
    repairs it); a filtered regen refuses to re-bless an edited case outside the filter."""
    d, cases = small_set
    f = d / "data" / f"{cases[1].id}.npz"
    good = f.read_bytes()
    f.write_bytes(good[:-10] + b"0123456789")
    rep = G.regen(d, cases=cases)
    assert rep.refused and rep.changed == [cases[1].id]
    changed0 = [G.Case(c.id, c.family, c.dtype, "sparse", c.input_shape, c.weight_shape, c.bias, c.kwargs)
                if i == 0 else c for i, c in enumerate(cases)]
    with pytest.raises(G.GoldenError, match="outside --filter"):  # would write case 0, must not re-bless 1
        G.regen(d, pattern=cases[0].id, cases=changed0, accept_changes=True)
    rep = G.regen(d, cases=cases, accept_changes=True)
    assert not rep.refused and f.read_bytes() == good and G.verify(d) == 4


def test_workers_run_blas_on_one_thread():
    """``_single_threaded_blas`` (the -j workers' initializer), in a fresh interpreter after a
    threaded BLAS call: every loaded OpenBLAS then reports one thread (its own getter);
    skipped where no OpenBLAS with that getter is loaded."""
    code = """
import ctypes, json, numpy as np
from usconv_ref import golden
np.dot(np.ones((300, 300)), np.ones((300, 300)))
libs = sorted({l.split()[-1] for l in open("/proc/self/maps") if "openblas" in l.lower() and "/" in l})
getters = [getattr(ctypes.CDLL(p), n) for p in libs for n in ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads")
           if hasattr(ctypes.CDLL(p), n)]
golden._single_threaded_blas()
print(json.dumps([g() for g in getters]))
"""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="2")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True,
                       cwd=Path(__file__).resolve().parents[1])
    counts = json.loads(r.stdout.strip().splitlines()[-1])
    if not counts:
        pytest.skip("no OpenBLAS with a thread getter loaded")
    assert counts == [1] * len(counts)
