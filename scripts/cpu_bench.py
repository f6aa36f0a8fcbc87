#!/usr/bin/env python
"""CPU benchmark of the reference: the exact path and the plain fast float64 path against
torch CPU float64 (2 threads) measured in the same run, forward and forward+backward, per
dtype: the median over interleaved rounds of our time / torch's best-of-3, and peak memory
(tracemalloc) relative to the bytes of the inputs and outputs of the call (forward: x, w in,
y out; backward: grad_y, x, w in, grad_x, grad_w out).

    python scripts/bench.py cpu [--quick] [--rounds 3] [--golden] [--out table.md]
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import ml_dtypes  # noqa: E402
import numpy as np  # noqa: E402

import usconv_ref as ur  # noqa: E402
from usconv_ref import fast  # noqa: E402
from usconv_ref.spec import Conv1dSpec  # noqa: E402

CONFIGS = [("dense N8 C64->64 L1024 K7 pad3", (8, 64, 1024), (64, 64, 7), dict(padding=3)),
           ("depthwise N8 C256 L2048 K9 pad4", (8, 256, 2048), (256, 1, 9), dict(padding=4, groups=256))]
DTYPES = {"float64": np.float64, "float32": np.float32, "bfloat16": ml_dtypes.bfloat16, "float16": np.float16}


def once(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def best(fn, reps):
    return min(once(fn) for _ in range(reps))


def peak(fn):
    tracemalloc.start()
    fn()
    _, p = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return p


def rounds(pairs, n, ours_reps=1):
    """Median over ``n`` interleaved rounds of ``ours / torch`` for each (ours, torch) pair of
    callables (torch: best of 3 per round, ours: best of ``ours_reps``), so that the machine's
    noise (this VM's timings vary up to 2x between runs) hits both."""
    ratios = [[] for _ in pairs]
    for ours, theirs in pairs:  # warm-up: first-touch page faults are not the engine's cost
        ours(), theirs()
    for _ in range(n):
        for k, (ours, theirs) in enumerate(pairs):
            t = best(theirs, 3)
            ratios[k].append(best(ours, ours_reps) / t)
    return [statistics.median(r) for r in ratios]


def golden_times():
    """Seconds for a full regeneration of the 100-case golden set into a scratch copy, -j 1 and -j 2."""
    out = {}
    for jobs in (1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            dst = Path(tmp) / "golden"
            shutil.copytree(ROOT / "golden", dst)
            for f in dst.glob("*.npz"):
                f.unlink()
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "usconv_ref.cli", "golden", "regen", "--golden", str(dst),
                            "-j", str(jobs)], check=True, cwd=ROOT, capture_output=True)
            out[jobs] = time.perf_counter() - t
    return out


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="float64 only, one round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--golden", action="store_true", help="also time a full golden regeneration (-j 1, -j 2)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    import torch
    torch.set_num_threads(2)
    F = torch.nn.functional
    n_rounds = 1 if args.quick else args.rounds
    rows = []
    for name, xs, ws, kw in CONFIGS:
        rng = np.random.default_rng(0)
        x64, w64 = rng.standard_normal(xs), rng.standard_normal(ws)
        spec = Conv1dSpec(**kw)
        y64 = fast.conv1d_float64(x64, w64, None, spec)
        gy64 = rng.standard_normal(y64.shape)
        xt, wt = torch.tensor(x64, requires_grad=True), torch.tensor(w64, requires_grad=True)
        pad, groups = kw["padding"], kw.get("groups", 1)
        t_fwd = lambda: F.conv1d(xt, wt, padding=pad, groups=groups)

        def t_fb():
            y = F.conv1d(xt, wt, padding=pad, groups=groups)
            torch.autograd.grad(y, (xt, wt), torch.from_numpy(gy64))

        f_fwd = lambda: fast.conv1d_float64(x64, w64, None, spec)
        f_fb = lambda: (fast.conv1d_float64(x64, w64, None, spec), fast.conv1d_backward_float64(gy64, x64, w64, None, spec))
        a, b = rounds([(f_fwd, t_fwd), (f_fb, t_fb)], n_rounds, 3)
        torch_ms = (best(t_fwd, 5) * 1e3, best(t_fb, 5) * 1e3)
        rows.append((name, "float64 fast path", a, b, None, None))
        print(f"{name:34s} torch fp64 fwd {torch_ms[0]:.1f} ms, fwd+bwd {torch_ms[1]:.1f} ms; fast path {a:.2f}x / {b:.2f}x",
              flush=True)
        for dt in (["float64"] if args.quick else DTYPES):
            t = DTYPES[dt]
            x, w, gy = x64.astype(t), w64.astype(t), gy64.astype(t)
            e_fwd = lambda: ur.conv1d(x, w, **kw)
            e_fb = lambda: (ur.conv1d(x, w, **kw), ur.conv1d_backward(gy, x, w, **kw))
            a, b = rounds([(e_fwd, t_fwd), (e_fb, t_fb)], n_rounds, 2)
            io_f = x.nbytes + w.nbytes + gy.nbytes  # x, w in; y out
            io_b = gy.nbytes + 2 * (x.nbytes + w.nbytes)  # grad_y, x, w in; grad_x, grad_w out
            m_f = peak(e_fwd) / io_f
            m_b = peak(lambda: ur.conv1d_backward(gy, x, w, **kw)) / io_b
            rows.append((name, f"{dt} exact", a, b, m_f, m_b))
            print(f"{name:34s} {dt:9s} exact fwd {a:6.1f}x torch fp64  fwd+bwd {b:6.1f}x  peak fwd {m_f:4.1f}x io, "
                  f"bwd {m_b:4.1f}x io", flush=True)
    lines = ["| config | path | fwd / torch fp64 | fwd+bwd / torch fp64 | peak memory / io, fwd | peak memory / io, bwd |",
             "|---|---|---|---|---|---|"]
    for name, path, a, b, m, mb in rows:
        mem = lambda v: "" if v is None else f"{v:.1f}×"
        lines.append(f"| {name} | {path} | {a:.1f}× | {b:.1f}× | {mem(m)} | {mem(mb)} |")
    text = "\n".join(lines)
    if args.golden:
        g = golden_times()
        text += f"\n\nGolden regeneration (100 cases): {g[1]:.1f} s with -j 1, {g[2]:.1f} s with -j 2."
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
