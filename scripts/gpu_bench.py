#!/usr/bin/env python
"""GPU benchmark: the CuPy raw-kernel backend against torch (cuDNN / torch's own kernels)
in the same run. Median of CUDA-event timings (batches of back-to-back calls) after warm-up;
tensors far larger than L2. Also % of the roofline bound (bytes at the measured copy
bandwidth vs real fp32 FMAs at peak, whichever is larger; for the tensor-core rows, 16-bit
dense, read the TF/s column instead: 2 flops per real multiply-add, torch vs ours).
Prints, per configuration: time, ratio torch/cupy, achieved GB/s (bytes moved floor) and
% of the copy bandwidth measured in the same run.

    python scripts/gpu_bench.py [--quick] [--out results.json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def timeit(fn, reps=20, warmup=3, inner=5):
    """Median over ``reps`` samples of the time per call of ``inner`` back-to-back calls between
    two CUDA events (so host-side preparation overlaps the previous call's GPU work, as in a
    model; the same for torch and CuPy)."""
    import cupy
    for _ in range(warmup):
        fn()
    cupy.cuda.Device().synchronize()
    times = []
    for _ in range(reps):
        a, b = cupy.cuda.Event(), cupy.cuda.Event()
        a.record()
        for _ in range(inner):
            fn()
        b.record()
        b.synchronize()
        times.append(cupy.cuda.get_elapsed_time(a, b) / inner)
    return statistics.median(times)


def copy_bandwidth():
    import cupy
    a = cupy.ones(1 << 28, cupy.float32)  # 1 GiB
    b = cupy.empty_like(a)
    ms = timeit(lambda: cupy.copyto(b, a), inner=1)
    return 2 * a.nbytes / ms / 1e6  # GB/s, read + write


CONFIGS = [
    # name, N, C_in, C_out, L, K, groups, dtype, kwargs, backward?
    ("dw N16 C2048 L4096 K4", 16, 2048, 2048, 4096, 4, 2048, "float32", dict(padding=3), True),
    ("dw N16 C2048 L4096 K4", 16, 2048, 2048, 4096, 4, 2048, "float16", dict(padding=3), True),
    ("dw N16 C2048 L4096 K4", 16, 2048, 2048, 4096, 4, 2048, "bfloat16", dict(padding=3), True),
    ("dw N8 C4096 L2048 K4", 8, 4096, 4096, 2048, 4, 4096, "float32", dict(padding=3), True),
    ("dw N16 C2048 L4096 K4 reflect", 16, 2048, 2048, 4096, 4, 2048, "float16", dict(padding=3, padding_mode="reflect"), True),
    ("dw N16 C2048 L4096 K4 circular", 16, 2048, 2048, 4096, 4, 2048, "bfloat16", dict(padding=3, padding_mode="circular"), True),
    ("dw N16 C2048 L4096 K3 same", 16, 2048, 2048, 4096, 3, 2048, "float32", dict(padding="same"), True),
    ("dw N8 C1024 L4096 K9", 8, 1024, 1024, 4096, 9, 1024, "float32", dict(padding=4), True),
    ("dw N8 C1024 L4096 K31", 8, 1024, 1024, 4096, 31, 1024, "float32", dict(padding=15), True),
    ("dw N8 C1024 L4096 K64", 8, 1024, 1024, 4096, 64, 1024, "float16", dict(padding=32), True),
    ("dw N8 C1024 L4096 K9 dil2", 8, 1024, 1024, 4096, 9, 1024, "float32", dict(padding=8, dilation=2), True),
    ("dw N8 C1024 L4096 K4 stride2", 8, 1024, 1024, 4096, 4, 1024, "float32", dict(padding=3, stride=2), True),
    ("dw x2 N8 C1024->2048 L4096 K4", 8, 1024, 2048, 4096, 4, 1024, "float32", dict(padding=3), True),
    ("g128 (8 ch/g) N8 C1024 L4096 K7", 8, 1024, 1024, 4096, 7, 128, "float32", dict(padding=3), True),
    ("dw N8 C1024 L4096 K4 c64", 8, 1024, 1024, 4096, 4, 1024, "complex64", dict(padding=3), True),
    ("dense N32 C512 L4096 K3", 32, 512, 512, 4096, 3, 1, "float16", dict(padding=1), False),
    ("dense N32 C512 L4096 K3", 32, 512, 512, 4096, 3, 1, "bfloat16", dict(padding=1), False),
    ("dense N32 C512 L4096 K7", 32, 512, 512, 4096, 7, 1, "float16", dict(padding=3), False),
    ("dense N32 C512 L4096 K10 stride5", 32, 512, 512, 4096, 10, 1, "float16", dict(padding=0, stride=5), False),
    ("dense N32 C512 L4096 K3 dil8", 32, 512, 512, 4096, 3, 1, "float16", dict(padding=8, dilation=8), False),
    ("dense N32 C512 L4096 K3", 32, 512, 512, 4096, 3, 1, "float32", dict(padding=1), False),
    ("dense N32 C512 L4096 K3 vs TF32", 32, 512, 512, 4096, 3, 1, "float32", dict(padding=1, tf32=True), False),
    ("dense N32 C512 L4096 K3", 32, 512, 512, 4096, 3, 1, "complex64", dict(padding=1, tf32=True), False),
    ("dense N8 C256 L2048 K3", 8, 256, 256, 2048, 3, 1, "complex128", dict(padding=1), False),
]
FMA_PER_S = 33.5e12  # H100 SXM fp32 FMA/s (132 SMs x 128 lanes x 1.98 GHz)


def work(N, Ci, Co, L, L_out, K, G, isz, cplx):
    """``(bytes_fwd, bytes_fb, fmas)`` of a row: the forward's floor (x read, y written), the
    fwd+bwd floor (also grad_y and x read, grad_x written) in bytes of ``isz``-byte elements, and
    the forward's real multiply-adds (4 per complex one; the backward does twice as many)."""
    bytes_fwd = (N * Ci * L + N * Co * L_out) * isz
    bytes_fb = bytes_fwd + (N * Co * L_out + 2 * N * Ci * L) * isz
    return bytes_fwd, bytes_fb, N * Co * L_out * (Ci // G) * K * (4 if cplx else 1)


def roofline_ms(bytes_moved, fmas, bw_GBs):
    """The lower bound of METHOD.md: the larger of moving the bytes at the copy bandwidth measured
    in this run and issuing the real fp32 FMAs at peak."""
    return max(bytes_moved / bw_GBs / 1e6, fmas / FMA_PER_S * 1e3)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", help="run only configs whose name contains this text")
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    import cupy
    import torch
    import backends
    from usconv_ref.dtypes import case_dtype
    from usconv_ref.spec import Conv1dSpec
    cp = backends.get("cupy")
    bw = copy_bandwidth()
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}, "
          f"cupy {cupy.__version__}; copy bandwidth {bw:.0f} GB/s (read+write)")
    rows = []
    tdt = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16, "complex64": torch.complex64,
           "complex128": torch.complex128}
    configs = CONFIGS[:3] if args.quick else CONFIGS
    if args.only:
        configs = [c for c in configs if args.only in c[0]]
    for name, N, Ci, Co, L, K, G, dt, kw, bwd in configs:
        kw = dict(kw)
        tf32 = kw.pop("tf32", False)  # torch's default for float32 convs (cuDNN TF32); ours stays IEEE
        cd = case_dtype(dt)
        spec = Conv1dSpec(groups=G, **kw)
        xs, ws = (N, Ci, L), (Co, Ci // G, K)
        g = torch.Generator(device="cuda").manual_seed(0)
        xt = torch.randn(xs, device="cuda", dtype=torch.float32, generator=g).to(tdt[dt])
        wt = torch.randn(ws, device="cuda", dtype=torch.float32, generator=g).to(tdt[dt])
        def as_cp(t):  # the same bits as a CuPy array in the backend's storage layout
            if t.is_complex():
                t = torch.view_as_real(t)
            if t.dtype == torch.bfloat16:
                return cupy.asarray(t.view(torch.int16)).view(cupy.uint16)
            return cupy.asarray(t)

        dx, dw = as_cp(xt), as_cp(wt)
        F = torch.nn.functional
        pad, mode = kw["padding"], kw.get("padding_mode", "zeros")
        torch.backends.cudnn.allow_tf32 = tf32
        sd = dict(stride=kw.get("stride", 1), dilation=kw.get("dilation", 1))

        def tconv(a, c):  # torch's way, as nn.Conv1d does it: F.pad for a non-zero padding mode
            if mode != "zeros":
                return F.conv1d(F.pad(a, (pad, pad), mode=mode), c, None, groups=G, **sd)
            return F.conv1d(a, c, None, padding=pad, groups=G, **sd)
        t_fwd = timeit(lambda: tconv(xt, wt))
        fwd = lambda: cp.forward_device(cd, xs, ws, spec, dx, dw, None)  # noqa: E731
        slow = timeit(fwd, reps=1, warmup=1, inner=1) > 20  # ms: few samples of slow kernels
        c_fwd = timeit(fwd, reps=3 if slow else 20, inner=1 if slow else 5)
        y = cp.forward_device(cd, xs, ws, spec, dx, dw, None)
        L_out = y.shape[2]
        bytes_fwd, bytes_fb, fmas = work(N, Ci, Co, L, L_out, K, G, xt.element_size(), cd.is_complex)
        row = dict(config=name, dtype=dt, torch_fwd_ms=t_fwd, cupy_fwd_ms=c_fwd, speedup_fwd=t_fwd / c_fwd,
                   cupy_fwd_GBs=bytes_fwd / c_fwd / 1e6, cupy_fwd_pct_copy=100 * bytes_fwd / c_fwd / 1e6 / bw,
                   cupy_fwd_pct_roofline=100 * roofline_ms(bytes_fwd, fmas, bw) / c_fwd,
                   torch_fwd_TFs=2 * fmas / t_fwd / 1e9, cupy_fwd_TFs=2 * fmas / c_fwd / 1e9)
        if bwd:
            xg = xt.clone().requires_grad_(True)
            wg = wt.clone().requires_grad_(True)
            gy = torch.randn((N, Co, L_out), device="cuda", dtype=torch.float32, generator=g).to(tdt[dt])

            def torch_fb():
                out = tconv(xg, wg)
                torch.autograd.grad(out, (xg, wg), gy)

            dgy = as_cp(gy)

            def cupy_fb():
                cp.forward_device(cd, xs, ws, spec, dx, dw, None)
                cp.backward_device(cd, xs, ws, spec, dgy, dx, dw, False)

            t_fb, c_fb = timeit(torch_fb, reps=10), timeit(cupy_fb, reps=10)
            row.update(torch_fb_ms=t_fb, cupy_fb_ms=c_fb, speedup_fb=t_fb / c_fb,
                       cupy_fb_pct_floor=100 * bytes_fb / c_fb / 1e6 / bw,
                       cupy_fb_pct_roofline=100 * roofline_ms(bytes_fb, 3 * fmas, bw) / c_fb)
        rows.append(row)
        print(f"{name:34s} {dt:10s} fwd torch {t_fwd:8.3f} ms cupy {c_fwd:8.3f} ms ({t_fwd / c_fwd:5.2f}x, "
              f"{row['cupy_fwd_pct_copy']:5.1f}% copy bw, {row['cupy_fwd_pct_roofline']:5.1f}% roofline" +
              (f", {row['torch_fwd_TFs']:.0f} vs {row['cupy_fwd_TFs']:.0f} TF/s)" if G == 1 else ")") +
              (f" | fwd+bwd torch {row['torch_fb_ms']:8.3f} cupy {row['cupy_fb_ms']:8.3f} ({row['speedup_fb']:5.2f}x, "
               f"{row['cupy_fb_pct_floor']:5.1f}% floor, {row['cupy_fb_pct_roofline']:5.1f}% roofline)" if bwd else ""),
              flush=True)
        del xt, wt, dx, dw, y
        torch.cuda.empty_cache()
        cupy.get_default_memory_pool().free_all_blocks()
    if args.out:
        Path(args.out).write_text(json.dumps({"copy_GBs": bw, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
