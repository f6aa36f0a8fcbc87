"""Compile the CuPy backend's kernels with nvcc (no GPU needed) and print each kernel's
registers, spills and shared memory: a syntax and resource check before a device run.

    python scripts/nvcc_check.py [--arch sm_90] [--match dw_reg]

Compiles ``backends.cupy_backend.module_source()`` (the code CuPy hands to NVRTC) to a cubin
with the backend's IEEE options; exits non-zero on a compile error or a spill in a matching
kernel.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backends.cupy_backend import SOURCE, module_source  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="sm_90")
    ap.add_argument("--match", default="", help="report only kernels whose mangled name contains this")
    ap.add_argument("--inst", default="", help="compile only these instantiation macros, e.g. "
                    "'INSTANTIATE_DWR(__half)' (faster; default: the whole module)")
    args = ap.parse_args(argv)
    code, _ = module_source()
    if args.inst:
        code = SOURCE.read_text() + "\n" + args.inst + "\n"
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "usconv_kernels.cu"
        src.write_text(code)
        cmd = ["nvcc", f"-arch={args.arch}", "-std=c++17", "-cubin", "-ftz=false", "-prec-div=true",
               "-prec-sqrt=true", "-Xptxas", "-v", "-o", str(Path(d) / "k.cubin"), str(src)]
        r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        print(r.stderr[-6000:])
        return r.returncode
    spills, name = 0, None
    for line in r.stderr.splitlines():
        m = re.search(r"Compiling entry function '(\w+)'", line)
        if m:
            name = m.group(1)
        if name and args.match in name:
            if "registers" in line or "spill" in line:
                print(name[:70], line.split(":", 1)[-1].strip())
                if re.search(r"[1-9]\d* bytes spill", line):
                    spills += 1
    print(f"{'spills in ' + str(spills) + ' kernel(s)' if spills else 'no spills'} ({args.arch})")
    return 1 if spills else 0


if __name__ == "__main__":
    sys.exit(main())
