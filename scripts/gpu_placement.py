#!/usr/bin/env python
"""Does where the arrays lie in device memory change the time of a kernel? The benchmark's
depthwise rows are bimodal run to run (stride 2 fwd+bwd 0.26 or 0.40-0.42 ms, code unchanged),
each run a fresh process. Here, in one process: for several placements (a spacer of varying size
allocated first, so x, grad_y and the outputs land at other addresses), the fwd+bwd time of one
benchmark row, with the arrays' addresses modulo 2 MiB and their 1 GiB slot.

    python scripts/gpu_placement.py [s2|dil2|fp16]
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import cupy  # noqa: E402

import backends  # noqa: E402
from gpu_bench import timeit  # noqa: E402
from usconv_ref.dtypes import case_dtype  # noqa: E402
from usconv_ref.spec import Conv1dSpec  # noqa: E402

which = sys.argv[1] if len(sys.argv) > 1 else "s2"
N, C, L, K, dt, kw = {"s2": (8, 1024, 4096, 4, "float32", dict(padding=3, stride=2)),
                      "dil2": (8, 1024, 4096, 9, "float32", dict(padding=8, dilation=2)),
                      "fp16": (16, 2048, 4096, 4, "float16", dict(padding=3))}[which]
cd, spec, cp = case_dtype(dt), Conv1dSpec(groups=C, **kw), backends.get("cupy")
xs, ws = (N, C, L), (C, 1, K)
L_out = (L + 2 * kw["padding"] - kw.get("dilation", 1) * (K - 1) - 1) // kw.get("stride", 1) + 1
pool = cupy.get_default_memory_pool()
for spacer_mb in (0, 1, 3, 64, 130, 258, 513, 1031):
    spacer = cupy.empty(spacer_mb << 20, dtype=cupy.uint8) if spacer_mb else None
    x = cupy.random.standard_normal(xs, dtype=cupy.float32).astype(dt)
    w = cupy.random.standard_normal(ws, dtype=cupy.float32).astype(dt)
    gy = cupy.random.standard_normal((N, C, L_out), dtype=cupy.float32).astype(dt)
    def fb():
        cp.forward_device(cd, xs, ws, spec, x, w, None)
        cp.backward_device(cd, xs, ws, spec, gy, x, w, False)
    t = [timeit(fb, reps=10) for _ in range(3)]
    where = " ".join(f"{n} {a.data.ptr % (2 << 20) >> 10:5d} KiB/{a.data.ptr >> 30} GiB" for n, a in (("x", x), ("gy", gy)))
    print(f"{which} spacer {spacer_mb:5d} MiB: fwd+bwd {' '.join(f'{v:.3f}' for v in t)} ms  ({where})", flush=True)
    del x, w, gy, spacer
    pool.free_all_blocks()
