#!/usr/bin/env python
"""CPU benchmark of the reference: the exact path and the plain fast float64 path against
torch CPU float64 measured in the same run (forward and forward+backward), per dtype, with
peak memory (tracemalloc) relative to the inputs and outputs.

    python scripts/cpu_bench.py [--quick] [--out docs/cpu-bench.md]
"""
from __future__ import annotations

import argparse
import sys
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


def best(fn, reps):
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def peak(fn):
    tracemalloc.start()
    fn()
    _, p = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return p


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="float64 only, one repetition")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    import torch
    torch.set_num_threads(2)
    F = torch.nn.functional
    rows = []
    for name, xs, ws, kw in CONFIGS:
        rng = np.random.default_rng(0)
        x64, w64 = rng.standard_normal(xs), rng.standard_normal(ws)
        spec = Conv1dSpec(**kw)
        y64 = fast.conv1d_float64(x64, w64, None, spec)
        gy64 = rng.standard_normal(y64.shape)
        xt, wt = torch.tensor(x64, requires_grad=True), torch.tensor(w64, requires_grad=True)
        pad, groups = kw["padding"], kw.get("groups", 1)
        t_f = best(lambda: F.conv1d(xt, wt, padding=pad, groups=groups), 5)

        def torch_fb():
            y = F.conv1d(xt, wt, padding=pad, groups=groups)
            torch.autograd.grad(y, (xt, wt), torch.from_numpy(gy64))

        t_fb = best(torch_fb, 5)
        f_f = best(lambda: fast.conv1d_float64(x64, w64, None, spec), 3)
        f_fb = best(lambda: (fast.conv1d_float64(x64, w64, None, spec),
                             fast.conv1d_backward_float64(gy64, x64, w64, None, spec)), 3)
        rows.append((name, "float64 fast path", f_f / t_f, f_fb / t_fb, None))
        for dt in (["float64"] if args.quick else DTYPES):
            t = DTYPES[dt]
            x, w, gy = x64.astype(t), w64.astype(t), gy64.astype(t)
            reps = 2
            e_f = best(lambda: ur.conv1d(x, w, **kw), reps)
            e_b = best(lambda: ur.conv1d_backward(gy, x, w, **kw), reps)
            mem = peak(lambda: ur.conv1d(x, w, **kw)) / (x.nbytes + w.nbytes + y64.nbytes * x.itemsize // 8)
            rows.append((name, f"{dt} exact", e_f / t_f, (e_f + e_b) / t_fb, mem))
            print(f"{name:34s} {dt:9s} exact fwd {e_f:7.2f} s ({e_f / t_f:6.1f}x torch fp64)  fwd+bwd "
                  f"{e_f + e_b:7.2f} s ({(e_f + e_b) / t_fb:6.1f}x)  peak {mem:5.1f}x io", flush=True)
        print(f"{name:34s} torch fp64 fwd {t_f * 1e3:.1f} ms, fwd+bwd {t_fb * 1e3:.1f} ms; fast path "
              f"{f_f / t_f:.2f}x / {f_fb / t_fb:.2f}x", flush=True)
    lines = ["| config | path | fwd / torch fp64 | fwd+bwd / torch fp64 | peak memory / inputs+outputs (fwd) |",
             "|---|---|---|---|---|"]
    for name, path, a, b, m in rows:
        lines.append(f"| {name} | {path} | {a:.1f}× | {b:.1f}× | {'' if m is None else f'{m:.1f}×'} |")
    print("\n".join(lines))
    if args.out:
        args.out.write_text("# CPU benchmark of the reference\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
