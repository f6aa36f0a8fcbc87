#!/usr/bin/env python
"""One depthwise forward of the CuPy backend (for ncu): ``gpu_one.py K31`` (fp32, K31, pad 15,
N8 C1024 L4096) or ``gpu_one.py fp16`` (fp16, K4, pad 3, N16 C2048 L4096); ``gpu_one.py K31 bwd``
runs the backward after it."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import cupy  # noqa: E402

import backends  # noqa: E402
from usconv_ref.dtypes import case_dtype  # noqa: E402
from usconv_ref.spec import Conv1dSpec  # noqa: E402

which = sys.argv[1] if len(sys.argv) > 1 else "K31"
N, C, L, K, pad, dt = (8, 1024, 4096, 31, 15, "float32") if which == "K31" else (16, 2048, 4096, 4, 3, "float16")
cd = case_dtype(dt)
x = cupy.random.standard_normal((N, C, L), dtype=cupy.float32).astype(dt)
w = cupy.random.standard_normal((C, 1, K), dtype=cupy.float32).astype(dt)
cp = backends.get("cupy")
cp.forward_device(cd, x.shape, w.shape, Conv1dSpec(padding=pad, groups=C), x, w, None)
cupy.cuda.Device().synchronize()
if "bwd" in sys.argv[2:]:
    spec = Conv1dSpec(padding=pad, groups=C)
    gy = cupy.random.standard_normal((N, C, L + 2 * pad - K + 1), dtype=cupy.float32).astype(dt)
    cp.backward_device(cd, x.shape, w.shape, spec, gy, x, w, False)
    cupy.cuda.Device().synchronize()
