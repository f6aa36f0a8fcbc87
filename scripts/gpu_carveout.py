#!/usr/bin/env python
"""dw_wide's forward and dw_wide_gw's backward against the shared-memory carveout hint (the
evidence for cupy_backend.DWW_CARVEOUT): depthwise N8 C1024 L4096, K31 fp32 and K64 fp16, each
carveout (driver default -1, max L1 0, 50, max shared 100) in 3 interleaved rounds, minima and
maxima in ms.

    python scripts/gpu_carveout.py
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import cupy  # noqa: E402

import backends  # noqa: E402
import backends.cupy_backend as cb  # noqa: E402
from gpu_bench import timeit  # noqa: E402
from usconv_ref.dtypes import case_dtype  # noqa: E402
from usconv_ref.spec import Conv1dSpec  # noqa: E402

be = backends.get("cupy")
for dt, K in (("float32", 31), ("float16", 64)):
    cd, xs, ws, spec = case_dtype(dt), (8, 1024, 4096), (1024, 1, K), Conv1dSpec(groups=1024, padding=K // 2)
    x = cupy.random.standard_normal(xs, dtype=cupy.float32).astype(dt)
    w = cupy.random.standard_normal(ws, dtype=cupy.float32).astype(dt)
    gy = cupy.random.standard_normal((8, 1024, 4096 + 2 * (K // 2) - K + 1), dtype=cupy.float32).astype(dt)
    res = {}
    for _ in range(3):
        for c in (-1, 0, 50, 100):
            cb.DWW_CARVEOUT = c
            f = timeit(lambda: be.forward_device(cd, xs, ws, spec, x, w, None))
            b = timeit(lambda: be.backward_device(cd, xs, ws, spec, gy, x, w, False), reps=10)
            lo, hi = res.get(c, ((9e9, 9e9), (0, 0)))
            res[c] = ((min(lo[0], f), min(lo[1], b)), (max(hi[0], f), max(hi[1], b)))
    for c, ((f0, b0), (f1, b1)) in res.items():
        print(f"K{K} {dt}: carveout {c:4d}: fwd {f0:.3f}-{f1:.3f} ms, bwd {b0:.3f}-{b1:.3f} ms", flush=True)
