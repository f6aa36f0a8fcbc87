#!/usr/bin/env python
"""A/B of the CuPy backend against another version of it, in one process on one GPU: for the
benchmark's depthwise K4 rows (every padding mode), the forward and backward outputs of both
versions compared bit for bit (a kernel change meant to keep every sum's order must keep every
bit), then interleaved timing rounds (minimum and median of each version's fwd and bwd).

    python scripts/gpu_ab.py OLD_DIR [--rounds 5] [--rows fp16,reflect|all] [--variant NAME=-DX,-DY ...]

OLD_DIR holds the other version's ``backends`` package (e.g. made with
``mkdir -p ab_old && git archive HEAD backends | tar -x -C ab_old``); it is imported as the
package ``backends_old`` beside this tree's ``backends``, each with its own compiled module.
With several contenders, compile first in parallel: ``for t in new old NAME; do python
scripts/gpu_ab.py OLD_DIR --variant .. --warm $t & done; wait``. ``--variant`` adds this tree's backend compiled with extra preprocessor definitions
(``KERNEL_DEFINES``; e.g. ``scalar=-DDWR_SCALAR_ENDS``) as a third contender. Exits non-zero if
any output differs.
"""
from __future__ import annotations

import importlib.util
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

# name: N, C_in, C_out, L, K, groups, dtype, spec kwargs (gpu_bench.CONFIGS' depthwise and grouped rows)
ROWS = {
    "fp32": (16, 2048, 2048, 4096, 4, 2048, "float32", dict(padding=3)),
    "fp16": (16, 2048, 2048, 4096, 4, 2048, "float16", dict(padding=3)),
    "bf16": (16, 2048, 2048, 4096, 4, 2048, "bfloat16", dict(padding=3)),
    "reflect": (16, 2048, 2048, 4096, 4, 2048, "float16", dict(padding=3, padding_mode="reflect")),
    "circular": (16, 2048, 2048, 4096, 4, 2048, "bfloat16", dict(padding=3, padding_mode="circular")),
    "replicate": (16, 2048, 2048, 4096, 4, 2048, "float32", dict(padding=3, padding_mode="replicate")),
    "same": (16, 2048, 2048, 4096, 3, 2048, "float32", dict(padding="same")),
    "K9": (8, 1024, 1024, 4096, 9, 1024, "float32", dict(padding=4)),
    "K31": (8, 1024, 1024, 4096, 31, 1024, "float32", dict(padding=15)),
    "K64": (8, 1024, 1024, 4096, 64, 1024, "float16", dict(padding=32)),
    "dil2": (8, 1024, 1024, 4096, 9, 1024, "float32", dict(padding=8, dilation=2)),
    "dil2reflect": (8, 1024, 1024, 4096, 9, 1024, "float16", dict(padding=8, dilation=2, padding_mode="reflect")),
    "stride2": (8, 1024, 1024, 4096, 4, 1024, "float32", dict(padding=3, stride=2)),
    "x2": (8, 1024, 2048, 4096, 4, 1024, "float32", dict(padding=3)),
    "g128": (8, 1024, 1024, 4096, 7, 128, "float32", dict(padding=3)),
    "c64": (8, 1024, 1024, 4096, 4, 1024, "complex64", dict(padding=3)),
}
DEFAULT_ROWS = "fp32,fp16,bf16,reflect,circular,replicate,same"


def load_old(old_dir: Path):
    """The package ``backends`` under old_dir, imported as ``backends_old``."""
    init = old_dir / "backends" / "__init__.py"
    spec = importlib.util.spec_from_file_location("backends_old", init, submodule_search_locations=[str(init.parent)])
    mod = importlib.util.module_from_spec(spec)
    sys.modules["backends_old"] = mod
    spec.loader.exec_module(mod)
    return importlib.import_module("backends_old.cupy_backend").CupyBackend()


def main(argv=None):
    import argparse

    import cupy

    import backends
    from gpu_bench import copy_bandwidth, timeit, work
    from usconv_ref.dtypes import case_dtype
    from usconv_ref.spec import Conv1dSpec, resolve_geometry

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old_dir", type=Path)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--rows", default=DEFAULT_ROWS)
    ap.add_argument("--variant", action="append", default=[], help="NAME=-DX,-DY: this tree compiled with these")
    ap.add_argument("--warm", metavar="NAME", help="only compile this contender's module into CuPy's kernel cache, "
                    "then exit (run one process per contender at once: the compiles are single-threaded)")
    args = ap.parse_args(argv)
    import backends.cupy_backend as cb
    new, old = backends.get("cupy"), load_old(args.old_dir)
    contenders = [("new", new, ()), ("old", old, ())]
    for v in args.variant:
        tag, defs = v.split("=", 1)
        contenders.append((tag, new, tuple(d for d in defs.split(",") if d)))

    def run(defines, fn):
        keep = cb.KERNEL_DEFINES
        cb.KERNEL_DEFINES = defines
        try:
            return fn()
        finally:
            cb.KERNEL_DEFINES = keep
    if args.warm:
        for tag, be, defs in contenders:
            if tag == args.warm:
                run(defs, lambda: be.module().get_function(next(iter(be._names.values()))))
        return 0
    bw = copy_bandwidth()
    print(f"copy bandwidth {bw:.0f} GB/s", flush=True)
    differ = 0
    rows = list(ROWS) if args.rows == "all" else args.rows.split(",")
    for name in rows:
        N, Ci, Co, L, K, G, dt, kw = ROWS[name]
        cd, spec, xs, ws = case_dtype(dt), Conv1dSpec(groups=G, **kw), (N, Ci, L), (Co, Ci // G, K)
        L_out = resolve_geometry(xs, ws, None, spec).L_out
        rng = cupy.random.default_rng(7)
        cplx = dt == "complex64"  # stored as float32 pairs
        draw = lambda shape: (rng.standard_normal(shape + ((2,) if cplx else ()), dtype=cupy.float32)  # noqa: E731
                              .astype("float32" if cplx else dt))
        x, w, gy = draw(xs), draw(ws), draw((N, Co, L_out))
        outs = {}
        for tag, be, defs in contenders:
            def both():
                y = be.forward_device(cd, xs, ws, spec, x, w, None)
                gx, gw = be.backward_device(cd, xs, ws, spec, gy, x, w, False)[:2]
                return [cupy.asnumpy(a).view(f"u{a.dtype.itemsize}") for a in (y, gx, gw)]
            outs[tag] = run(defs, both)
        same = {tag: [bool((a == b).all()) for a, b in zip(outs[tag], outs["new"])] for tag in outs if tag != "new"}
        differ += not all(all(v) for v in same.values())
        times = {tag: ([], []) for tag, _, _ in contenders}
        for _ in range(args.rounds):
            for tag, be, defs in contenders:
                times[tag][0].append(run(defs, lambda: timeit(lambda: be.forward_device(cd, xs, ws, spec, x, w, None))))
                times[tag][1].append(run(defs, lambda: timeit(lambda: be.backward_device(cd, xs, ws, spec, gy, x, w, False), reps=10)))
        bytes_f, bytes_fb = work(N, Ci, Co, L, L_out, K, G, 8 if cplx else cupy.dtype(dt).itemsize, cplx)[:2]
        floor_f, floor_fb = bytes_f / bw / 1e6, bytes_fb / bw / 1e6  # ms: the bytes-moved floors (FMA-bound rows differ)
        line = []
        for tag, _, _ in contenders:
            f, b = times[tag]
            line.append(f"{tag} fwd {min(f):.3f} (med {statistics.median(f):.3f}) bwd {min(b):.3f} "
                        f"(med {statistics.median(b):.3f}) ms [{100 * floor_f / min(f):.1f}% / "
                        f"{100 * floor_fb / (min(f) + min(b)):.1f}%]")
        verdict = "bitwise" if all(all(v) for v in same.values()) else f"DIFFER {same}"
        print(f"{name} {dt} K{K} {kw}: y/gx/gw {verdict}\n    " + "\n    ".join(line), flush=True)
        del x, w, gy, outs
        cupy.get_default_memory_pool().free_all_blocks()
    print("all bitwise" if not differ else f"{differ} row(s) DIFFER", flush=True)
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
