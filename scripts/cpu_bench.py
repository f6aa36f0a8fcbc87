#!/usr/bin/env python
"""CPU benchmark of the reference: the exact path and the plain fast float64 path against
torch CPU float64 (2 threads), forward and forward+backward, per dtype, and peak memory
(tracemalloc) relative to the bytes of the inputs and outputs of the call (forward: x, w in,
y out; backward: grad_y, x, w in, grad_x, grad_w out).

Paired rounds: this VM's speed drifts by up to 2.5x over minutes (torch's depthwise forward
measured 18-74 ms over one day), so a ratio is only meaningful between timings taken side by
side. Each round times torch and each of our paths back to back, every one in a fresh child
process (best of 10 for torch, of 3 for ours, after a warm-up), the order reversed every other
round; a round's ratio is ours over torch of that round. The table gives the median ratio
over the rounds and its range.

    python scripts/bench.py cpu [--rounds 5] [--quick] [--golden] [--out table.md]
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
    if path == "torch":
        return torch_child(kw, x64, w64, gy64, reps)
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


def torch_child(kw: dict, x64, w64, gy64, reps: int) -> dict:
    """torch CPU float64 on 2 threads: best of ``reps`` after a warm-up, forward and
    forward+backward (grads of x and w)."""
    import torch
    torch.set_num_threads(2)
    F = torch.nn.functional
    xt, wt = torch.tensor(x64, requires_grad=True), torch.tensor(w64, requires_grad=True)
    gyt = torch.from_numpy(gy64)
    pad, groups = kw["padding"], kw.get("groups", 1)
    fwd = lambda: F.conv1d(xt, wt, padding=pad, groups=groups)
    fb = lambda: torch.autograd.grad(fwd(), (xt, wt), gyt)
    fwd(), fb()
    return dict(fwd=best(fwd, reps), fb=best(fb, reps))


def in_child(ci: int, dtype: str, path: str, reps: int) -> dict:
    """:func:`child` (ours or torch's) in a fresh interpreter: no torch OpenMP or OpenBLAS workers left spinning
    from another path's runs, no allocator state from other configs (on this VM either
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


def _stat(values: list) -> str:
    """``median [min-max]`` of per-round ratios (just the value for one round)."""
    v = sorted(values)
    med = float(np.median(v))
    return f"{med:.1f}×" if len(v) == 1 else f"{med:.1f}× [{v[0]:.1f}-{v[-1]:.1f}]"


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5, help="paired rounds (default 5)")
    ap.add_argument("--quick", action="store_true", help="float64 only, one round, one repetition")
    ap.add_argument("--golden", action="store_true", help="also time a full golden regeneration (-j 1, -j 2)")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        ci, dtype, path, reps = args.child
        print(json.dumps(child(int(ci), dtype, path, int(reps))))
        return
    reps, rounds = (1, 1) if args.quick else (3, args.rounds)
    paths = [("float64", "fast")] + [(dt, "exact") for dt in (["float64"] if args.quick else DTYPES)]
    ratios = {}  # (config, dtype, path) -> {"fwd": [...], "fb": [...], "mem_fwd": m, "mem_bwd": m}
    torch_ms = {ci: [] for ci in range(len(CONFIGS))}
    for r in range(rounds):
        for ci, (name, *_) in enumerate(CONFIGS):
            order = [("float64", "torch")] + paths
            if r % 2:
                order = order[::-1]
            got = {key: in_child(ci, key[0], key[1], 10 if key[1] == "torch" else reps) for key in order}
            t = got[("float64", "torch")]
            torch_ms[ci].append((t["fwd"] * 1e3, t["fb"] * 1e3))
            line = [f"round {r + 1}/{rounds} {name}: torch fp64 {t['fwd'] * 1e3:.1f} / {t['fb'] * 1e3:.1f} ms"]
            for dt, path in paths:
                e = got[(dt, path)]
                d = ratios.setdefault((ci, dt, path), {"fwd": [], "fb": []})
                d["fwd"].append(e["fwd"] / t["fwd"])
                d["fb"].append(e["fb"] / t["fb"])
                for m in ("mem_fwd", "mem_bwd"):
                    if m in e:
                        d[m] = max(d.get(m, 0.0), e[m])
                line.append(f"{dt} {path} {e['fwd'] * 1e3:.1f} / {e['fb'] * 1e3:.1f} ms "
                            f"({e['fwd'] / t['fwd']:.1f}x / {e['fb'] / t['fb']:.1f}x)")
            print("; ".join(line), flush=True)
    lines = [f"Median over {rounds} paired round(s) [range] of our time / torch fp64's in the same round.", "",
             "| config | path | fwd / torch fp64 | fwd+bwd / torch fp64 | peak memory / io, fwd | peak memory / io, bwd |",
             "|---|---|---|---|---|---|"]
    for ci, (name, *_) in enumerate(CONFIGS):
        for dt, path in paths:
            d = ratios[(ci, dt, path)]
            mem = lambda k: f"{d[k]:.1f}×" if k in d else ""
            label = "float64 fast path" if path == "fast" else f"{dt} exact"
            lines.append(f"| {name} | {label} | {_stat(d['fwd'])} | {_stat(d['fb'])} | {mem('mem_fwd')} | {mem('mem_bwd')} |")
    lines.append("")
    for ci, (name, *_) in enumerate(CONFIGS):
        f = [a for a, _ in torch_ms[ci]]
        b = [b for _, b in torch_ms[ci]]
        span = lambda v: f"{v[0]:.1f}" if len(v) == 1 else f"{min(v):.1f}-{max(v):.1f}"
        lines.append(f"torch fp64 {name}: fwd {span(f)} ms, fwd+bwd {span(b)} ms over the rounds.")
    text = "\n".join(lines)
    if args.golden:
        g = golden_times()
        text += f"\n\nGolden regeneration ({len(build_catalog())} cases): {g[1]:.1f} s with -j 1, {g[2]:.1f} s with -j 2."
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
