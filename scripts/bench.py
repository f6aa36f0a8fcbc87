#!/usr/bin/env python
"""One entry point for the benchmarks: ``bench.py cpu ...`` (the exact reference and the fast
float64 path against torch CPU float64, scripts/cpu_bench.py) and ``bench.py gpu ...`` (the CuPy
kernels against torch on the GPU, scripts/gpu_bench.py). Options follow the mode."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in ("cpu", "gpu"):
        print("usage: bench.py {cpu,gpu} [options]  (bench.py cpu --help, bench.py gpu --help)", file=sys.stderr)
        return 2
    if argv[0] == "cpu":
        import cpu_bench
        return cpu_bench.main(argv[1:])
    import gpu_bench
    return gpu_bench.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
