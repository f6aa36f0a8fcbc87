"""The conformance harness: the three tolerance functions on hand-made values, the mutant
self-test (seeded bugs detected, legitimate variants accepted), ports judged from result
files written by a separate process, the CLI, and backend lookup."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from usconv_ref.catalog import build_catalog

import backends
import mutants
from usconv_ref import golden as G
from usconv_ref.compare import (EXACT, FP32_ACC, TC_FP32, TF32, PrecisionClass, check_elements, element_bound,
                                pooled_statistics)
from usconv_ref.dtypes import FORMATS
from usconv_ref.harness import check_backend

ROOT = Path(__file__).parents[1]
F32, F16 = FORMATS["float32"], FORMATS["float16"]


# --- the three functions ------------------------------------------------------------------

def test_element_bound_formula():
    """B = n u_acc bnd + 2 u_in bnd + u_out (1+u_out) |ref| + 2^-53 |ref| + floor + 2 n acc_floor."""
    bnd, n, ref = np.array([8.0]), np.array([4.0]), np.array([-2.0])
    b = element_bound(bnd, n, ref, TF32, F32)[0]
    want = 4 * 2.0**-24 * 8 + 2 * 2.0**-11 * 8 + 2.0**-24 * (1 + 2.0**-24) * 2 + 2.0**-53 * 2 + 2.0**-150 + 8 * 2.0**-150
    assert b == pytest.approx(want, rel=1e-15)
    assert element_bound(np.array([np.inf]), np.array([3.0]), np.array([1.0]), EXACT, F32)[0] < 1  # 0*inf stays 0


def test_check_elements_rules():
    ref = np.array([1.0, np.nan, np.inf, 0.0, 65000.0, 2.0])
    n = np.array([3.0, 3, 3, 0, 3, 3])
    bound = np.array([0.1, 0.1, 0.1, 0.1, 600.0, 0.1])
    ok = np.array([1.05, np.nan, np.inf, 0.0, np.inf, 2.0])  # inf allowed: 65000 + 600 > max fp16
    assert check_elements(ok, ref, bound, n, F16).failures == 0
    for i, bad in ((0, 1.2), (1, 0.0), (2, -np.inf), (3, 1e-30), (5, np.nan)):
        imp = ok.copy()
        imp[i] = bad
        r = check_elements(imp, ref, bound, n, F16)
        assert r.failures == 1 and r.worst == i, (i, r)
    imp = ok.copy()
    imp[4] = -np.inf
    assert check_elements(imp, ref, bound, n, F16).failures == 1
    # where even the sum of absolute values exceeds the format, any non-finite result is legal
    bnd = np.array([1.0, 1, 1, 0, 70000.0, 1])
    imp[4] = np.nan
    assert check_elements(imp, ref, bound, n, F16, bnd).failures == 0
    assert check_elements(imp, ref, bound, n, F16, bnd * 0.5).failures == 1


def _synthetic(rng, m=4000, n=16):
    """ref, bnd for sums of n unit-normal products; an honest fp32 result is ref rounded."""
    terms = rng.standard_normal((m, n)) * rng.standard_normal((m, n))
    ref = terms.sum(1)
    return ref, np.abs(terms).sum(1), np.full(m, float(n))


def test_statistics_accept_honest_and_catch_biased_errors():
    """Honest rounding errors pass all three statistics; a truncation (bias toward zero)
    and a relative scale error of 0.5 ulp (correlation) fail, although each stays within
    the per-element bound."""
    rng = np.random.default_rng(0)
    ref, bnd, n = _synthetic(rng)
    honest = ref.astype(np.float32).astype(np.float64)
    assert not pooled_statistics(honest, ref, bnd, n, FP32_ACC, F32).failed
    trunc = np.trunc(ref * 2.0**20) / 2.0**20  # toward zero, far below the bound's n*u*bnd
    lim = element_bound(bnd, n, ref, FP32_ACC, F32)
    assert np.all(np.abs(trunc - ref) <= lim * 60)
    scaled = (ref * (1 + 2.0**-22)).astype(np.float32).astype(np.float64)  # a scale 2^-22 too large
    assert np.all(np.abs(scaled - ref) <= lim * 3)
    assert "correlation" in pooled_statistics(scaled, ref, bnd, n, FP32_ACC, F32).failed
    biased = honest + np.sign(ref) * 2.0**-24 * bnd * 0.5  # within the bound, one-signed
    assert np.all(np.abs(biased - ref) <= lim)
    st = pooled_statistics(biased, ref, bnd, n, FP32_ACC, F32)
    assert {"bias", "correlation"} & set(st.failed) or "mean-square" in st.failed


def _truncating_sum(terms, group):
    """float32 accumulation rounding toward zero after every ``group`` exact products (the
    tensor cores' adders: group 16 for mma m16n8k16; group 1 is the worst case)."""
    def rz32(v):
        f = v.astype(np.float32).astype(np.float64)
        over = np.abs(f) > np.abs(v)
        f[over] = np.nextafter(f[over].astype(np.float32), np.float32(0)).astype(np.float64)
        return f
    acc = np.zeros(terms.shape[0])
    for j in range(0, terms.shape[1], group):
        acc = rz32(acc + terms[:, j:j + group].sum(1))
    return acc


@pytest.mark.parametrize("positive", [False, True])
def test_truncating_accumulation_needs_its_class(positive):
    """Truncating float32 accumulators (tensor cores) pass the declared "tc-fp32-acc" class —
    also on all-positive data, where every truncation has the same sign — while per-product
    truncation fails the round-to-nearest class's pooled statistics; a dropped product fails
    the per-element bound of the truncating class."""
    rng = np.random.default_rng(1)
    m, n = 4000, 256
    a, b = (rng.standard_normal((m, n)).astype(np.float16).astype(np.float64) for _ in range(2))
    if positive:
        a, b = np.abs(a), np.abs(b)
    terms = a * b
    ref, bnd, nn = terms.sum(1), np.abs(terms).sum(1), np.full(m, float(n))
    for group in (16, 1):
        imp = _truncating_sum(terms, group)
        lim = element_bound(bnd, nn, ref, TC_FP32, F32)
        assert check_elements(imp, ref, lim, nn, F32, bnd).failures == 0
        assert not pooled_statistics(imp, ref, bnd, nn, TC_FP32, F32).failed
    if not positive:
        assert pooled_statistics(_truncating_sum(terms, 1), ref, bnd, nn, FP32_ACC, F32).failed
    dropped = _truncating_sum(terms[:, 1:], 16)
    assert check_elements(dropped, ref, element_bound(bnd, nn, ref, TC_FP32, F32), nn, F32, bnd).failures > m // 2
    with pytest.raises(ValueError, match="acc_rounding"):
        PrecisionClass.from_json({**TC_FP32.to_json(), "acc_rounding": "up"})


# --- the mutant self-test ----------------------------------------------------------------

@pytest.fixture(scope="module")
def seed_sets(tmp_path_factory):
    """Golden sets of the mutant suite for seeds 0..9 (fresh data each)."""
    out = []
    for seed in range(10):
        d = tmp_path_factory.mktemp(f"mut{seed}") / "golden"
        cases = mutants.suite_cases(seed)
        G.regen(d, cases=cases)
        out.append((d, cases))
    return out


@pytest.mark.parametrize("name", sorted(mutants.BUGS))
def test_every_seeded_bug_is_detected(name, seed_sets):
    """Each bug class is failed by the harness in every one of 10 seeds."""
    missed = [i for i, (d, cases) in enumerate(seed_sets)
              if not check_backend(mutants.make(name), name, cases, d, determinism=False).failed]
    assert not missed, f"{name} not detected in seeds {missed}"


@pytest.mark.parametrize("name", sorted(mutants.LEGIT))
def test_legitimate_variants_are_accepted(name, seed_sets):
    """Other summation orders, Gauss products, declared scale rounding, TF32 declared as
    TF32 and an FFT forward under global_bound pass in every one of 10 seeds."""
    for i, (d, cases) in enumerate(seed_sets):
        r = check_backend(mutants.make(name), name, cases, d, determinism=False)
        bad = [(c.case_id, c.reason, [(t.tensor, t.reason) for t in c.tensors if t.status == "fail"])
               for c in r.cases if c.status in ("fail", "error")]
        assert not r.failed, (i, bad, [(p.dtype, p.tensor, p.stats.failed) for p in r.pooled if p.stats.failed])


def test_declared_class_is_enforced(seed_sets):
    """The same TF32 results pass when declared TF32 and fail when declared fp32."""
    d, cases = seed_sets[0]
    assert not check_backend(mutants.make("tf32-declared-tf32"), "t", cases, d, determinism=False).failed
    assert check_backend(mutants.make("tf32_declared_fp32"), "t", cases, d, determinism=False).failed


# --- ports judged from files ---------------------------------------------------------------

PORT = textwrap.dedent('''
    # A stand-in for a non-Python port: reads golden inputs, computes the op with plain
    # float64 loops (no usconv code), writes results and a precision declaration.
    import json, sys, zlib, numpy as np
    golden, out, bug = sys.argv[1], sys.argv[2], sys.argv[3] == "bug"
    cat = json.load(open(golden + "/catalog.json"))
    import os; os.makedirs(out + "/data", exist_ok=True)
    for c in cat["cases"]:
        kw = c["kwargs"]
        if c["dtype"] != "float64" or kw.get("padding_mode", "zeros") != "zeros" or len(c["input_shape"]) != 3:
            continue
        z = np.load(golden + "/data/" + c["id"] + ".npz")
        x, w, gy = z["x"], z["w"], z["grad_y"]
        b = z["b"] if c["bias"] else None
        s, d, g = kw.get("stride", 1), kw.get("dilation", 1), kw.get("groups", 1)
        pad = kw.get("padding", 0); pad = pad[0] if isinstance(pad, list) else pad
        K = w.shape[2]
        if pad == "same": pl = d * (K - 1) // 2; pr = d * (K - 1) - pl
        elif pad == "valid": pl = pr = 0
        else: pl = pr = pad
        if kw.get("constraint", "to_output_scale") != "to_output_scale" or "scale_power" in kw:
            continue
        N, C, L = x.shape; O, Cg, _ = w.shape; Og = O // g
        xp = np.pad(x, ((0, 0), (0, 0), (pl, pr)))
        Lo = (L + pl + pr - d * (K - 1) - 1) // s + 1
        so = (Cg * K) ** -0.5; sgw = (N * Lo) ** -0.5
        y = np.zeros((N, O, Lo)); gw = np.zeros_like(w); gxp = np.zeros_like(xp)
        for o in range(O):
            for c2 in range(Cg):
                ci = (o // Og) * Cg + c2
                for k in range(K):
                    win = xp[:, ci, k * d: k * d + s * (Lo - 1) + 1: s]
                    y[:, o] += w[o, c2, k] * win
                    gw[o, c2, k] = np.sum(gy[:, o] * win)
                    gxp[:, ci, k * d: k * d + s * (Lo - 1) + 1: s] += gy[:, o] * w[o, c2, k]
        if b is not None: y += b[None, :, None]
        res = {"y": y * so, "grad_x": gxp[:, :, pl: pl + L] * so, "grad_w": gw * (sgw if not bug else 1.0)}
        if b is not None: res["grad_b"] = gy.sum(axis=(0, 2)) * sgw
        np.savez(out + "/data/" + c["id"] + ".npz", **res)
    json.dump({"name": "loop-port", "classes": [{"dtype": "*", "tensor": "*", "class": "ieee-fp64-acc"}],
               "known_deviations": [{"pattern": "*-large", "reason": "unscaled sums overflow float64"}]},
              open(out + "/precision.json", "w"))
''')


@pytest.mark.parametrize("bug", [False, True])
def test_results_dir_from_separate_process(tmp_path, bug):
    """A port (separate process, no usconv code) writes results; ``usconv check --results``
    passes the honest port (exit 0) and fails one that forgets the grad_w scale (exit 1)."""
    script = tmp_path / "port.py"
    script.write_text(PORT)
    out = tmp_path / "results"
    subprocess.run([sys.executable, str(script), str(ROOT / "golden"), str(out), "bug" if bug else "ok"],
                   check=True, cwd=tmp_path)
    assert len(list((out / "data").glob("*.npz"))) >= 5
    r = subprocess.run([sys.executable, "-m", "usconv_ref.cli", "check", "--results", str(out), "-q",
                        "--report", str(tmp_path / "r.json")], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == (1 if bug else 0), r.stdout + r.stderr
    rep = json.loads((tmp_path / "r.json").read_text())["backends"][0]
    assert rep["name"] == "loop-port" and rep["counts"]["pass" if not bug else "fail"] >= 5
    if bug:
        assert "grad_w" in r.stdout and "reproduce: usconv check --results" in r.stdout


# --- CLI and lookup ------------------------------------------------------------------------

def test_check_cli_default_backends_pass_and_reports(tmp_path):
    """``usconv check`` with no --backend runs every available backend (numpy, torch-cpu,
    unit_scaling if installed) over the whole golden set and exits 0; reports are written."""
    r = subprocess.run([sys.executable, "-m", "usconv_ref.cli", "check", "-q", "--report", str(tmp_path / "r.html")],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    n_cases = len(build_catalog())
    assert "numpy" in r.stdout and "torch-cpu" in r.stdout and f"{n_cases} cases" in r.stdout
    html = (tmp_path / "r.html").read_text()
    assert "<svg" in html and "torch-cpu" in html
    r = subprocess.run([sys.executable, "-m", "usconv_ref.cli", "check", "--backend", "numpy", "--filter",
                        "axis.stride-2", "-q", "--report", str(tmp_path / "r.md")], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0 and "| numpy | 1 |" in (tmp_path / "r.md").read_text()


@pytest.mark.parametrize("args,needle", [
    (["--backend", "no-such-backend"], "unknown backend"),
    (["--backend", "torch-cuda"], "unavailable"),
    (["--backend", "numpy", "--filter", "nothing*"], "matches no case"),
    (["--backend", "numpy[bogus=1]"], "bad options"),
    (["--report", "x.txt"], "unknown format"),
])
def test_check_cli_bad_usage_exit_2(args, needle):
    r = subprocess.run([sys.executable, "-m", "usconv_ref.cli", "check", *args], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2 and needle in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_backend_lookup_forms():
    """Built-in names, ``pkg.module:Class`` and bracketed options (bool/int/float/str)."""
    assert backends.parse_backend_arg("torch-cuda[deterministic=true,tf32=false,n=3,x=0.5,s=abc]") == (
        "torch-cuda", {"deterministic": True, "tf32": False, "n": 3, "x": 0.5, "s": "abc"})
    assert backends.get("numpy").name == "numpy"
    assert backends.get("backends.numpy_backend:NumpyBackend").name == "numpy"
    b = backends.get("torch-cpu", declare="fp32")
    assert b.precision("float32", "y", G.Case("a", "f", "float32", "normal", (1, 1, 3), (1, 1, 1), False, {}).spec
                       ).u_in == 0
    with pytest.raises(backends.BackendError):
        backends.get("nope")


def test_backends_cli_lists_everything():
    r = subprocess.run([sys.executable, "-m", "usconv_ref.cli", "backends"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0
    for name in ("numpy", "torch-cpu", "torch-cuda", "unit_scaling", "cupy"):
        assert name in r.stdout
    assert "classes: exact" in r.stdout


def test_results_dir_declaration_gaps_and_empty_results(tmp_path):
    """A precision.json with no class for a dtype is bad input (exit 2, one line); a results
    directory that judges nothing is not a pass (exit 1)."""
    out = tmp_path / "r"
    (out / "data").mkdir(parents=True)
    (out / "precision.json").write_text(json.dumps({"name": "p", "classes": [
        {"dtype": "float64", "tensor": "*", "class": "ieee-fp64-acc"}]}))
    r = subprocess.run([sys.executable, "-m", "usconv_ref.cli", "check", "--results", str(out), "-q"],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 1 and "no case was judged" in r.stderr
    golden = G.load_case(ROOT / "golden", G.Case.from_json(json.loads((ROOT / "golden/catalog.json").read_text())["cases"][0]))
    np.savez(out / "data" / "dtype.float16-normal.npz", y=G.encode(golden["y"], G.case_dtype("float16")))
    r = subprocess.run([sys.executable, "-m", "usconv_ref.cli", "check", "--results", str(out), "-q",
                        "--filter", "dtype.float16-normal"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2 and "no class" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_entry_point_backends_are_found(tmp_path):
    """A third-party port registered under the entry-point group ``usconv.backends`` is
    found by name and listed (a minimal installed distribution on PYTHONPATH)."""
    dist = tmp_path / "myport-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: myport\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[usconv.backends]\nmyport = backends.numpy_backend:NumpyBackend\n")
    code = "import backends; print(backends.get('myport').name, 'myport' in backends.known_names())"
    env = {"PYTHONPATH": f"{tmp_path}:{ROOT}", "PATH": "/usr/bin:/bin"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=str(tmp_path))
    assert r.returncode == 0 and r.stdout.split() == ["numpy", "True"], r.stderr


def test_non_deterministic_cases_are_named():
    """A backend whose second run differs is reported case by case (not only as a count)."""
    from backends.numpy_backend import NumpyBackend
    from usconv_ref.report import failure_lines

    class Flaky(NumpyBackend):
        calls = 0

        def conv1d(self, x, w, b, spec):
            Flaky.calls += 1
            y = super().conv1d(x, w, b, spec)
            if Flaky.calls % 2 == 0 and y.size and y.dtype == np.float32:
                y = y.copy()
                y.flat[0] = np.nextafter(y.flat[0], np.float32(np.inf))
            return y

    cases = [c for c in build_catalog() if c.id == "axis.mode-zeros"]
    res = check_backend(Flaky(), "flaky", cases, G.default_golden_dir(), determinism=True)
    lines = failure_lines(res)
    assert any(line.startswith("NOT DETERMINISTIC") and "axis.mode-zeros" in line for line in lines), lines
