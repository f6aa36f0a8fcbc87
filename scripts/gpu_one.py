#!/usr/bin/env python
"""One forward of the CuPy backend (for ncu): ``gpu_one.py K31`` (depthwise fp32, K31, pad 15,
N8 C1024 L4096), ``gpu_one.py fp16`` (depthwise fp16, K4, pad 3, N16 C2048 L4096), ``gpu_one.py
g128`` (fp32, 8 channels a group, K7, pad 3, N8 C1024 L4096) or ``gpu_one.py c64`` (complex64
depthwise K4, pad 3, N8 C1024 L4096) or ``gpu_one.py K64`` (depthwise fp16, K64, pad 32, N8
C1024 L4096), ``s2`` (depthwise fp32 K4 pad 3 stride 2), ``dil2`` (depthwise fp32 K9 pad 8
dilation 2), ``K9`` / ``K9h`` (depthwise fp32 / fp16 K9 pad 4) or ``x2`` (fp32 K4 pad 3, C1024 -> 2048), all N8 C1024
L4096, or ``fp16r`` (``fp16`` with reflect padding), ``bf16`` / ``bf16c`` (bfloat16, zeros / circular padding); a further argument ``bwd`` runs the backward
after it, ``select`` compiles the register windows' runtime barrel shift (SHIFT_SWITCH off)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import cupy  # noqa: E402

import backends  # noqa: E402
from usconv_ref.dtypes import case_dtype  # noqa: E402
from usconv_ref.spec import Conv1dSpec  # noqa: E402

which = sys.argv[1] if len(sys.argv) > 1 else "K31"
N, C, L, K, pad, dt, G, *extra = {"K31": (8, 1024, 4096, 31, 15, "float32", 1024), "fp16": (16, 2048, 4096, 4, 3, "float16", 2048),
                          "g128": (8, 1024, 4096, 7, 3, "float32", 128), "c64": (8, 1024, 4096, 4, 3, "complex64", 1024),
                          "K64": (8, 1024, 4096, 64, 32, "float16", 1024),
                          "s2": (8, 1024, 4096, 4, 3, "float32", 1024, dict(stride=2)),
                          "dil2": (8, 1024, 4096, 9, 8, "float32", 1024, dict(dilation=2)),
                          "K9": (8, 1024, 4096, 9, 4, "float32", 1024),
                          "K9h": (8, 1024, 4096, 9, 4, "float16", 1024),
                          "x2": (8, 1024, 4096, 4, 3, "float32", 1024, dict(multiplier=2)),
                          "fp16r": (16, 2048, 4096, 4, 3, "float16", 2048, dict(padding_mode="reflect")),
                          "bf16": (16, 2048, 4096, 4, 3, "bfloat16", 2048),
                          "bf16c": (16, 2048, 4096, 4, 3, "bfloat16", 2048, dict(padding_mode="circular"))}[which]
opts = dict(extra[0]) if extra else {}
M = opts.pop("multiplier", 1)  # depth multiplier: C_out = M * C_in
cd = case_dtype(dt)
pair = (2,) if dt == "complex64" else ()
part = "float32" if dt == "complex64" else dt


def rand(shape):
    return cupy.random.standard_normal(shape + pair, dtype=cupy.float32).astype(part)


spec = Conv1dSpec(padding=pad, groups=G, **opts)
Co = M * C
wshape = (Co, C // G, K)
x, w = rand((N, C, L)), rand(wshape)
cp = backends.get("cupy")
if "select" in sys.argv[2:]:
    import backends.cupy_backend as cb
    cb.SHIFT_SWITCH = False
cp.forward_device(cd, (N, C, L), wshape, spec, x, w, None)
cupy.cuda.Device().synchronize()
if "bwd" in sys.argv[2:]:
    d, s = spec.dilation, spec.stride
    gy = rand((N, Co, (L + 2 * pad - d * (K - 1) - 1) // s + 1))
    cp.backward_device(cd, (N, C, L), wshape, spec, gy, x, w, False)
    cupy.cuda.Device().synchronize()
