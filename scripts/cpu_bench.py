#!/usr/bin/env python
"""CPU benchmark of the reference: the exact path and the plain fast float64 path against
torch CPU float64 (2 threads) measured in the same run, forward and forward+backward, per
dtype: our best of 3 (each path in a fresh child process) over torch's best of 10, and peak memory
(tracemalloc) relative to the bytes of the inputs and outputs of the call (forward: x, w in,
y out; backward: grad_y, x, w in, grad_x, grad_w out).

    python scripts/bench.py cpu [--quick] [--golden] [--out table.md]
"""
from __future__ import annotations

import argparse
import json
import shutil
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
from usconv_ref.catalog import build_catalog  # noqa: E402
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


def inputs(ci: int, dtype: str):
    """The config's float64 inputs (seeded) and the case-dtype copies."""
    name, xs, ws, kw = CONFIGS[ci]
    rng = np.random.default_rng(0)
    x64, w64 = rng.standard_normal(xs), rng.standard_normal(ws)
    spec = Conv1dSpec(**kw)
    gy64 = rng.standard_normal(fast.conv1d_float64(x64, w64, None, spec).shape)
    t = DTYPES[dtype]
    return kw, spec, x64, w64, gy64, x64.astype(t), w64.astype(t), gy64.astype(t)


def child(ci: int, dtype: str, path: str, reps: int) -> dict:
    """Our timings in this (fresh) process: best of ``reps`` after a warm-up, forward and
    forward+backward, and peak memory (exact path)."""
    kw, spec, x64, w64, gy64, x, w, gy = inputs(ci, dtype)
    if path == "fast":
        fwd = lambda: fast.conv1d_float64(x64, w64, None, spec)
        bwd = lambda: fast.conv1d_backward_float64(gy64, x64, w64, None, spec)
    else:
        fwd = lambda: ur.conv1d(x, w, **kw)
        bwd = lambda: ur.conv1d_backward(gy, x, w, **kw)
    fwd(), bwd()  # warm-up: first-touch page faults are not the engine's cost
    out = dict(fwd=best(fwd, reps), fb=best(lambda: (fwd(), bwd()), reps))
    if path == "exact":
        out["mem_fwd"] = peak(fwd) / (x.nbytes + w.nbytes + gy.nbytes)  # x, w in; y out
        out["mem_bwd"] = peak(bwd) / (gy.nbytes + 2 * (x.nbytes + w.nbytes))  # grad_y, x, w in; grad_x, grad_w out
    return out


def ours(ci: int, dtype: str, path: str, reps: int) -> dict:
    """:func:`child` in a fresh interpreter: no torch OpenMP or OpenBLAS workers left spinning
    from the competitor's runs, no allocator state from other configs (on this VM either
    changed our timings by up to 3x)."""
    r = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", str(ci), dtype, path, str(reps)],
                       check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(r.stdout.strip().splitlines()[-1])


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
    ap.add_argument("--quick", action="store_true", help="float64 only, one repetition")
    ap.add_argument("--golden", action="store_true", help="also time a full golden regeneration (-j 1, -j 2)")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        ci, dtype, path, reps = args.child
        print(json.dumps(child(int(ci), dtype, path, int(reps))))
        return
    import torch
    torch.set_num_threads(2)
    F = torch.nn.functional
    reps = 1 if args.quick else 3
    rows = []
    for ci, (name, xs, ws, kw) in enumerate(CONFIGS):
        _, spec, x64, w64, gy64, *_ = inputs(ci, "float64")
        xt, wt = torch.tensor(x64, requires_grad=True), torch.tensor(w64, requires_grad=True)
        pad, groups = kw["padding"], kw.get("groups", 1)
        t_fwd = lambda: F.conv1d(xt, wt, padding=pad, groups=groups)

        def t_fb():
            y = F.conv1d(xt, wt, padding=pad, groups=groups)
            torch.autograd.grad(y, (xt, wt), torch.from_numpy(gy64))

        t_fwd(), t_fb()
        tf, tb = best(t_fwd, 10), best(t_fb, 10)
        f = ours(ci, "float64", "fast", reps)
        rows.append((name, "float64 fast path", f["fwd"] / tf, f["fb"] / tb, None, None))
        print(f"{name:34s} torch fp64 fwd {tf * 1e3:.1f} ms, fwd+bwd {tb * 1e3:.1f} ms; fast path "
              f"{f['fwd'] / tf:.2f}x / {f['fb'] / tb:.2f}x", flush=True)
        for dt in (["float64"] if args.quick else DTYPES):
            e = ours(ci, dt, "exact", reps)
            rows.append((name, f"{dt} exact", e["fwd"] / tf, e["fb"] / tb, e["mem_fwd"], e["mem_bwd"]))
            print(f"{name:34s} {dt:9s} exact fwd {e['fwd'] * 1e3:7.1f} ms ({e['fwd'] / tf:5.1f}x)  fwd+bwd "
                  f"{e['fb'] * 1e3:7.1f} ms ({e['fb'] / tb:5.1f}x)  peak fwd {e['mem_fwd']:4.1f}x io, "
                  f"bwd {e['mem_bwd']:4.1f}x io", flush=True)
    lines = ["| config | path | fwd / torch fp64 | fwd+bwd / torch fp64 | peak memory / io, fwd | peak memory / io, bwd |",
             "|---|---|---|---|---|---|"]
    for name, path, a, b, m, mb in rows:
        mem = lambda v: "" if v is None else f"{v:.1f}×"
        lines.append(f"| {name} | {path} | {a:.1f}× | {b:.1f}× | {mem(m)} | {mem(mb)} |")
    text = "\n".join(lines)
    if args.golden:
        g = golden_times()
        text += f"\n\nGolden regeneration ({len(build_catalog())} cases): {g[1]:.1f} s with -j 1, {g[2]:.1f} s with -j 2."
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
