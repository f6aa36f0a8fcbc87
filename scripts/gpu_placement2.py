#!/usr/bin/env python
"""Is the benchmark's per-process bimodality (stride 2 fwd+bwd 0.27 / 0.39 ms, K31 forward
0.14 / 0.21 ms) a matter of where the tensors land? In one process, trials that allocate a
spacer of a different size first (so x, w, grad_y and the backend's own buffers land at other
addresses), then time the forward and the backward (median of 10 samples of 5 calls between CUDA
events, as gpu_bench.py). Prints per trial the spacer, the addresses mod 2 MiB and the times.

    python scripts/gpu_placement2.py [s2 K31 dil2 ...]
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import cupy  # noqa: E402
from gpu_bench import timeit  # noqa: E402

import backends  # noqa: E402
from usconv_ref.dtypes import case_dtype  # noqa: E402
from usconv_ref.spec import Conv1dSpec  # noqa: E402

CFG = {"s2": (8, 1024, 4096, 4, 3, "float32", dict(stride=2)),
       "K31": (8, 1024, 4096, 31, 15, "float32", {}),
       "dil2": (8, 1024, 4096, 9, 8, "float32", dict(dilation=2)),
       "K9": (8, 1024, 4096, 9, 4, "float32", {})}


def main():
    names = sys.argv[1:] or ["s2", "K31"]
    cp = backends.get("cupy")
    spacers_mb = [0, 1, 3, 7, 2, 5, 0.5, 11, 0.25, 13]
    for name in names:
        N, C, L, K, pad, dt, opts = CFG[name]
        cd = case_dtype(dt)
        spec = Conv1dSpec(padding=pad, groups=C, **opts)
        xs, ws = (N, C, L), (C, 1, K)
        Lo = (L + 2 * pad - spec.dilation * (K - 1) - 1) // spec.stride + 1
        for trial, mb in enumerate(spacers_mb):
            cupy.get_default_memory_pool().free_all_blocks()
            spacer = cupy.empty(int(mb * (1 << 20)) + 256, cupy.uint8)
            x = cupy.random.standard_normal(xs, dtype=cupy.float32)
            w = cupy.random.standard_normal(ws, dtype=cupy.float32)
            gy = cupy.random.standard_normal((N, C, Lo), dtype=cupy.float32)
            tf = timeit(lambda: cp.forward_device(cd, xs, ws, spec, x, w, None), reps=10)
            tb = timeit(lambda: cp.backward_device(cd, xs, ws, spec, gy, x, w, False), reps=10)
            mod = lambda a: (a.data.ptr % (1 << 21)) >> 10
            print(f"{name:5s} trial {trial:2d} spacer {mb:5.2f} MiB  x@{mod(x)} KiB gy@{mod(gy)} KiB  "
                  f"fwd {tf:.3f} ms  bwd {tb:.3f} ms", flush=True)
            del spacer, x, w, gy


if __name__ == "__main__":
    main()
