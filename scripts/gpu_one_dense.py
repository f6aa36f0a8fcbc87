#!/usr/bin/env python
"""One dense forward of the CuPy backend (for ncu): N32 C512->512 L4096 K3 pad 1, in the
dtype given as the first argument (float32, float16 or bfloat16; default float32)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import cupy  # noqa: E402

import backends  # noqa: E402
from usconv_ref.dtypes import case_dtype  # noqa: E402
from usconv_ref.spec import Conv1dSpec  # noqa: E402

dt = sys.argv[1] if len(sys.argv) > 1 else "float32"
store = {"float32": cupy.float32, "float16": cupy.float16, "bfloat16": cupy.uint16}[dt]
x = cupy.random.standard_normal((32, 512, 4096), dtype=cupy.float32).astype(cupy.float16).astype(store)
w = cupy.random.standard_normal((512, 512, 3), dtype=cupy.float32).astype(cupy.float16).astype(store)
backends.get("cupy").forward_device(case_dtype(dt), x.shape, w.shape, Conv1dSpec(padding=1), x, w, None)
cupy.cuda.Device().synchronize()
