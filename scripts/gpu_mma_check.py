#!/usr/bin/env python
"""Checks of the tensor-core forward (conv_fwd_mma) beyond the golden catalog: random
float16/bfloat16 cases over strides, dilations, padding modes, groups and ragged tile edges,
each against torch float64 on the GPU with the declared class's per-element bound
``|y - ref| <= n*2**-23*bnd + u_out*|ref|*(1+u_out) + floor`` (bnd = the same conv on |x|, |w|),
plus an unscaled-sum overflow that must take the scalar fallback. float32, float64,
complex64 and complex128 cases (the float64 tensor cores, conv_fwd_dmma) against torch in
float64/complex128 with twice the float64 accumulation bound (both results carry
accumulation error) plus the output rounding. Prints one line per case;
exit status 1 on any failure.

    python scripts/gpu_mma_check.py
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CASES = [  # N, C_in, C_out, L, K, groups, kwargs
    (2, 64, 96, 300, 3, 1, dict(padding=1)),
    (3, 40, 130, 257, 5, 1, dict(padding=4, stride=2, dilation=3, padding_mode="reflect")),
    (2, 66, 40, 100, 7, 2, dict(padding=3, padding_mode="circular")),
    (1, 17, 200, 129, 2, 1, dict(padding=5, padding_mode="replicate", bias=True)),
    (2, 512, 512, 1000, 3, 1, dict(padding=1, bias=True)),
    (1, 96, 64, 2000, 10, 1, dict(stride=5)),
    (1, 64, 64, 700, 3, 1, dict(padding=8, dilation=8)),
    (4, 128, 256, 64, 1, 1, {}),
]


def reference_conv(kw: dict, groups: int):
    """``conv(a, c, bias)``: torch's conv1d in the inputs' dtype with the case's padding
    (mode, size), stride, dilation and groups — the independent reference of the checks."""
    import torch.nn.functional as F
    mode, p = kw.get("padding_mode", "zeros"), kw.get("padding", 0)

    def conv(a, c, bb):
        a = F.pad(a, (p, p), mode=mode) if mode != "zeros" and p else a
        return F.conv1d(a, c, bb, padding=p if mode == "zeros" else 0, stride=kw.get("stride", 1),
                        dilation=kw.get("dilation", 1), groups=groups)
    return conv


def main():
    import cupy
    import numpy as np
    import torch
    import backends
    from usconv_ref.dtypes import case_dtype
    from usconv_ref.scaling import exact_unit_scales
    from usconv_ref.spec import Conv1dSpec, resolve_geometry
    cp = backends.get("cupy")
    assert cp._tensor_cores(), "this device has no sm_80 tensor cores: the checks would exercise the SIMT kernels"
    bad = 0
    for dt in ("float16", "bfloat16"):
        tdt = getattr(torch, dt)
        cd = case_dtype(dt)
        u_out = 2.0**-11 if dt == "float16" else 2.0**-8
        for i, (N, Ci, Co, L, K, G, kw) in enumerate(CASES + [(1, 64, 8, 64, 3, 1, dict(padding=1, huge=True))]):
            kw = dict(kw)
            bias, huge = kw.pop("bias", False), kw.pop("huge", False)
            spec = Conv1dSpec(groups=G, **kw)
            g = torch.Generator(device="cuda").manual_seed(i)
            x = torch.randn((N, Ci, L), device="cuda", generator=g).to(tdt)
            w = torch.randn((Co, Ci // G, K), device="cuda", generator=g).to(tdt)
            b = torch.randn((Co,), device="cuda", generator=g).to(tdt) if bias else None
            if huge:  # products ~1e37: the unscaled sum overflows float32, the scaled one does not
                if dt == "float16":
                    continue
                x = torch.full_like(x, 3.2e18)
                w = torch.full_like(w, 3.2e18)
            geo = resolve_geometry(tuple(x.shape), tuple(w.shape), None, spec)
            assert cp._mma_plan(cd, geo) is not None, (dt, i)
            s = float(np.float32(exact_unit_scales(geo, spec).output))

            def dev(t):
                return None if t is None else (cupy.asarray(t.view(torch.int16)).view(cupy.uint16) if dt == "bfloat16"
                                               else cupy.asarray(t))
            y = cp.forward_device(cd, tuple(x.shape), tuple(w.shape), spec, dev(x), dev(w), dev(b))
            y = torch.as_tensor(y.view(cupy.int16) if dt == "bfloat16" else y, device="cuda")
            y = (y.view(torch.bfloat16) if dt == "bfloat16" else y).double()
            conv = reference_conv(kw, G)
            ref = conv(x.double(), w.double() * s, None if b is None else b.double() * s)
            bnd = conv(x.double().abs(), w.double().abs() * s, None if b is None else b.double().abs() * s)
            n = (Ci // G) * K + (1 if bias else 0)
            lim = n * 2.0**-23 * bnd + u_out * (1 + u_out) * ref.abs() + 2.0**-40
            big = ref.abs() > (65504 if dt == "float16" else 3.38e38)
            err = (y - ref).abs()
            ok = bool(((err <= lim) | (big & torch.isinf(y))).all()) and bool(torch.isfinite(y[~big]).all())
            bad += not ok
            print(f"{dt:9s} case {i} N{N} C{Ci}->{Co} L{L} K{K} g{G} {kw}{' bias' if bias else ''}"
                  f"{' huge' if huge else ''}: max err/bound {float((err / lim)[~big].max()):.3f} "
                  f"{'ok' if ok else 'FAIL'}", flush=True)
    for dt in ("float32", "float64", "complex64", "complex128"):
        bad += dmma_cases(cp, dt)
    print("mma checks:", "all passed" if not bad else f"{bad} FAILED")
    return 1 if bad else 0


def dmma_cases(cp, dt):
    import cupy
    import numpy as np
    import torch
    from usconv_ref.dtypes import case_dtype
    from usconv_ref.scaling import exact_unit_scales
    from usconv_ref.spec import Conv1dSpec, resolve_geometry
    cd = case_dtype(dt)
    wide = dt in ("float64", "complex128")
    u_out = 2.0**-53 if wide else 2.0**-24
    bad = 0
    cases = CASES[:4] + [(2, 100, 70, 333, 3, 1, dict(padding=1, bias=True))]
    if dt == "complex128":
        cases.append((1, 64, 8, 64, 3, 1, dict(padding=1, huge=True)))
    for i, (N, Ci, Co, L, K, G, kw) in enumerate(cases):
        kw = dict(kw)
        bias, huge = kw.pop("bias", False), kw.pop("huge", False)
        spec = Conv1dSpec(groups=G, **kw)
        g = torch.Generator(device="cuda").manual_seed(100 + i)

        def rnd(shape):
            r = torch.randn(shape, device="cuda", dtype=torch.float64, generator=g)
            if cd.is_complex:
                r = torch.complex(r, torch.randn(shape, device="cuda", dtype=torch.float64, generator=g))
            return r if wide else r.to(torch.complex64 if cd.is_complex else torch.float32).to(r.dtype)
        x, w = rnd((N, Ci, L)), rnd((Co, Ci // G, K))
        b = rnd((Co,)) if bias else None
        if huge:  # real products ~2e306: the unscaled sum overflows, the scaled one does not
            x = torch.full_like(x, 1.38e153)
            w = torch.full_like(w, 1.38e153)
        geo = resolve_geometry(tuple(x.shape), tuple(w.shape), None, spec)
        assert cp._dmma_plan(cd, geo) is not None, i
        s = float(exact_unit_scales(geo, spec).output)
        if not wide:
            s = float(np.float32(s))

        def dev(t):
            if t is None:
                return None
            t = t if wide else t.to(torch.complex64 if cd.is_complex else torch.float32)
            return cupy.asarray(torch.view_as_real(t).contiguous() if cd.is_complex else t)
        y = cp.forward_device(cd, tuple(x.shape), tuple(w.shape), spec, dev(x), dev(w), dev(b))
        y = torch.as_tensor(y, device="cuda").double()
        y = torch.view_as_complex(y) if cd.is_complex else y
        conv = reference_conv(kw, G)
        ref = conv(x, w * s, None if b is None else b * s)
        if cd.is_complex:
            xr, xi, wr, wi = x.real.abs(), x.imag.abs(), w.real.abs() * s, w.imag.abs() * s
            bnds = (conv(xr, wr, None if b is None else b.real.abs() * s) + conv(xi, wi, None),
                    conv(xr, wi, None if b is None else b.imag.abs() * s) + conv(xi, wr, None))
            pairs = ((y.real, ref.real), (y.imag, ref.imag))
        else:
            bnds = (conv(x.abs(), w.abs() * s, None if b is None else b.abs() * s),)
            pairs = ((y, ref),)
        n = (2 if cd.is_complex else 1) * (Ci // G) * K + 2
        ok, ratio = bool(torch.isfinite(torch.view_as_real(y) if cd.is_complex else y).all()), 0.0
        for (a, r), bnd in zip(pairs, bnds):
            lim = 2 * n * 2.0**-53 * bnd + u_out * (1 + u_out) * r.abs() + 1e-300
            err = (a - r).abs()
            ok &= bool((err <= lim).all())
            ratio = max(ratio, float((err / lim).max()))
        if huge:  # the torch reference itself overflows here: compare with the scaled sum in float64
            exact = (1.38e153 * (1.38e153 * s)) * Ci * torch.as_tensor(np.array(
                [[[min(t + 1, L - 1) - max(t - 1, 0) + 1 for t in range(L)]]]), device="cuda")
            ok = bool(torch.isfinite(y.real).all() and ((y.real - exact).abs() <= 1e-12 * exact).all())
            ratio = 0.0
        bad += not ok
        print(f"{dt:10s} case {i} N{N} C{Ci}->{Co} L{L} K{K} g{G} {kw}{' bias' if bias else ''}"
              f"{' huge' if huge else ''}: max err/bound {ratio:.3f} {'ok' if ok else 'FAIL'}", flush=True)
    return bad


if __name__ == "__main__":
    sys.exit(main())
