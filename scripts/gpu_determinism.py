#!/usr/bin/env python
"""10 runs of the CuPy backend (and torch-cuda with/without cuDNN deterministic algorithms)
on a few large cases: are all outputs bitwise identical run to run?"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

import backends  # noqa: E402
from usconv_ref.spec import Conv1dSpec  # noqa: E402

CASES = [
    ("dw N8 C512 L2048 K4 f32", (8, 512, 2048), (512, 1, 4), dict(padding=3, groups=512), np.float32),
    ("dense N4 C128 L1024 K3 f32", (4, 128, 1024), (128, 128, 3), dict(padding=1), np.float32),
    ("g8 N4 C128 L1024 K5 f16 reflect", (4, 128, 1024), (128, 16, 5), dict(padding=2, groups=8, padding_mode="reflect"), np.float16),
]


def main():
    rng = np.random.default_rng(0)
    for bname in ("cupy", "torch-cuda[tf32=false]", "torch-cuda[tf32=false,deterministic=true]"):
        name, opts = backends.parse_backend_arg(bname)
        b = backends.get(name, **opts)
        for label, xs, ws, kw, dt in CASES:
            spec = Conv1dSpec(**kw)
            x, w = rng.standard_normal(xs).astype(dt), rng.standard_normal(ws).astype(dt)
            y0 = b.conv1d(x, w, None, spec)
            gy = rng.standard_normal(y0.shape).astype(dt)
            first = [y0, *b.conv1d_backward(gy, x, w, None, spec)[:2]]
            same = [True, True, True]
            for _ in range(9):
                again = [b.conv1d(x, w, None, spec), *b.conv1d_backward(gy, x, w, None, spec)[:2]]
                same = [s and a.tobytes() == f.tobytes() for s, a, f in zip(same, again, first)]
            print(f"{bname:42s} {label:34s} 10 runs bitwise equal: y={same[0]} grad_x={same[1]} grad_w={same[2]}",
                  flush=True)


if __name__ == "__main__":
    main()
