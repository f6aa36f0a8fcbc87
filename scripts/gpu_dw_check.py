#!/usr/bin/env python
"""Checks of the register-window depthwise kernels (K <= 4: dw_reg forward, dw_reg_bwd +
dw_bwd_edges backward; K <= 16: dw_long forward and grad_x; 16 < K <= 64: dw_wide forward and
grad_x; 4 < K <= 32, 0 <= pl < K: dw_wide_bwd's one-pass backward; dw_reg_gw's grad_w with depth
multipliers and stride 2 too) beyond the golden catalog, on the GPU:

- y and grad_x bitwise equal to the staged kernels they replace (dw_vec / dw_bwd_vec: the same
  sums in the same order; those pass the conformance suite), NaN and infinity included;
- grad_w (a different summation order) against torch in float64 with the float32-accumulation
  bound ``n*2**-23*bnd + u_out*|ref|*(1+u_out)`` (bnd: the same sums over |grad_y|, |x|), for the
  new and the old kernels;
over float16/bfloat16/float32, every K <= 4 with each symmetric padding 0..K, 'same' and
'valid', and dw_long's K in 5..64 (full and partial tap blocks), the four padding modes, row
lengths from one chunk to several tiles, aligned and not (L_out = 4099: rows start anywhere in
a 16-byte vector), rows shorter than a chunk with padding of at least their length (whatever
kernels the backend routes them to), with and without bias; then the time of new and old kernels on the
benchmark's configurations in the same run (K > 16 also without dw_wide).
Prints one line per case; exit status 1 on any failure.

    python scripts/gpu_dw_check.py [--no-time | --time-only | --short] [--rows "float16 K4"]
    (--rows: only those timed rows; --short: only the checks of rows shorter than a chunk, no timing)
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MODES = ("zeros", "reflect", "replicate", "circular")
LENGTHS = (8, 4099, 16, 40, 257, 264, 1032, 2056, 4096, 12)
LONG_LENGTHS = (70, 4099, 129, 1000, 2056, 4096, 300)
# (L, K, symmetric padding): rows of fewer than 8 elements (one register chunk) and padding of
# at least the row's length, for the K <= 4 kernels, dw_long and dw_wide
SHORT_ROWS = ((1, 1, 0), (1, 3, 2), (2, 4, 3), (3, 3, 1), (5, 4, 4), (7, 2, 1), (6, 3, 7), (4, 4, 6),
              (7, 4, 3), (3, 9, 8), (5, 17, 16), (2, 33, 20))
# half the smallest subnormal of the output type: the absolute error of rounding a tiny result
TINY = {"float16": 2.0**-25, "bfloat16": 2.0**-134, "float32": 2.0**-150}


def cases():
    """(dtype, N, C, L, K, padding, mode, bias, special): every K <= 4 with each symmetric
    padding 0..K, 'same' and 'valid', rotating over padding modes and row lengths (aligned and
    not: the forward takes any; the backward's register kernel needs L % 8 == 0 and pl < K)."""
    i = 0
    for dt in ("float16", "bfloat16", "float32"):
        for K in range(1, 5):
            for padding in list(range(K + 1)) + ["same", "valid"]:
                L = LENGTHS[i % len(LENGTHS)]
                yield dt, 1 + i % 3, 2 + i % 5, L, K, padding, MODES[i % 4], i % 2 == 0, i % 7 == 3
                i += 1
        for K, m, st in ((1, 2, 1), (3, 2, 1), (4, 3, 1), (4, 2, 1), (1, 1, 2), (2, 1, 2), (3, 1, 2), (4, 1, 2),
                         (4, 2, 2), (9, 2, 1), (17, 1, 2), (33, 2, 2), (64, 1, 2), (8, 3, 2)):
            # depth multipliers, stride 2 (dw_reg forward for K <= 4; dw_reg_gw's grad_w for all)
            for padding in ((K - 1, 0) if st == 2 else (K - 1,)):
                lengths = LENGTHS if K <= 4 else LONG_LENGTHS
                L = lengths[i % len(lengths)]
                yield dt, 1 + i % 3, 2 + i % 5, L, K, (padding, m, st, 1), MODES[i % 4], i % 2 == 0, i % 7 == 3
                i += 1
        for K, m, dil in ((2, 1, 2), (4, 1, 3), (9, 1, 2), (17, 1, 2), (3, 2, 2), (64, 1, 2), (5, 1, 4)):
            # dilation (dw_dil forward and grad_x, dw_reg_gw's grad_w; multipliers: forward and grad_w)
            for padding in ((K - 1) * dil // 2, (K - 1) * dil):
                L = max(LONG_LENGTHS[i % len(LONG_LENGTHS)], padding + 9)  # reflect needs pad < L
                yield dt, 1 + i % 3, 2 + i % 5, L, K, (padding, m, 1, dil), MODES[i % 4], i % 2 == 0, i % 7 == 3
                i += 1
        for K in (5, 8, 9, 16, 17, 31, 33, 41, 55, 64):  # dw_long (K <= 16), dw_wide: taps in blocks of 8, full and partial
            for padding in (0, K // 2, K - 1, "same", "valid"):
                L = LONG_LENGTHS[i % len(LONG_LENGTHS)]
                yield dt, 1 + i % 3, 2 + i % 5, L, K, padding, MODES[i % 4], i % 2 == 0, i % 7 == 3
                i += 1
        for L, K, pad in SHORT_ROWS:  # rows shorter than a chunk, padding >= L: whatever route the backend takes
            mode = MODES[i % 4]
            if (mode == "reflect" and pad >= L) or (mode == "circular" and pad > L):  # (the modes' limits, §2)
                mode = "replicate"
            yield dt, 1 + i % 3, 2 + i % 5, L, K, pad, mode, i % 2 == 0, i % 7 == 3
            i += 1


def bound_ratio(got, ref, bnd, n, dt):
    """max |got - ref| / bound over the finite reference values, bound = (n + 1) * 2**-23 * bnd
    + u_out * (1 + u_out) * |ref| + TINY (float32 sums of n scaled products, then the output
    rounding); inf where a NaN or an infinity of the reference is not matched exactly."""
    import torch
    u_out = {"float16": 2.0**-11, "bfloat16": 2.0**-8, "float32": 2.0**-24}[dt]
    lim = (n + 1) * 2.0**-23 * bnd + u_out * (1 + u_out) * ref.abs() + TINY[dt]
    fin, inf = torch.isfinite(ref), torch.isinf(ref)
    if not bool((torch.isnan(got) == torch.isnan(ref)).all()) or not bool((got[inf] == ref[inf]).all()):
        return float("inf")
    return float(((got - ref).abs()[fin] / lim[fin]).max()) if fin.any() else 0.0


def main(argv=None):
    import cupy
    import numpy as np
    import torch
    import torch.nn.functional as F
    import backends
    import backends.cupy_backend as cb
    from usconv_ref.dtypes import case_dtype
    from usconv_ref.scaling import exact_unit_scales
    from usconv_ref.spec import Conv1dSpec, resolve_geometry
    new = backends.get("cupy")
    old = backends.get("cupy")
    old._dwr_threads = lambda *a, **k: None  # this instance keeps the staged kernels
    old._dwl_threads = lambda *a, **k: None
    old._dwg_threads = lambda *a, **k: None
    old._dwx_threads = lambda *a, **k: None
    old._dwd_threads = lambda *a, **k: None
    old._grp_threads = lambda *a, **k: None
    old._dwc_threads = lambda *a, **k: None
    old._dww_kmax = lambda *a, **k: None
    old._dwwb_kmax = lambda *a, **k: None
    tdt = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}

    def as_cp(t):
        return cupy.asarray(t.view(torch.int16)).view(cupy.uint16) if t.dtype == torch.bfloat16 else cupy.asarray(t)

    def bits(a):
        return cupy.asnumpy(a).view(np.uint16 if a.dtype.itemsize == 2 else np.uint32)

    def as_t(a, dt):
        t = torch.as_tensor(a.view(cupy.int16) if dt == "bfloat16" else a, device="cuda")
        return (t.view(torch.bfloat16) if dt == "bfloat16" else t).double()

    def gx_ratio(gx, x, w, gy, spec, geo, mult, s, dt, groups=None):
        """max |grad_x - ref| / bound over the elements, ref by torch autograd in float64 through
        F.pad (the padding adjoint), bound: (n + 1) * 2**-23 * (the same with |grad_y|, |w|)
        + u_out * (1 + u_out) * |ref| (float32 sums of at most n = m*K scaled products, 3*m*K
        with the padded copies, then the output rounding). Non-finite reference values must
        match exactly."""
        m = spec.padding_mode

        def adj(xv, wv, gv):
            xd = xv.double().requires_grad_(True)
            yd = F.conv1d(F.pad(xd, (geo.pl, geo.pr), mode=m if m != "zeros" else "constant"), wv.double() * s,
                          stride=spec.stride, dilation=spec.dilation, groups=groups or x.shape[1])
            yd.backward(gv.double())
            return xd.grad
        ref = adj(x, w, gy)
        terms = mult * w.shape[2] * (1 if m == "zeros" else 3)  # with the padded copies
        return bound_ratio(as_t(gx, dt).reshape(ref.shape), ref, adj(x, w.abs(), gy.abs()), terms, dt)

    bad = 0
    args = argv or sys.argv[1:]
    checks = "--time-only" not in args
    short = "--short" in args  # only the rows shorter than a chunk (SHORT_ROWS): a quick memcheck subject
    for n_case, (dt, N, C, L, K, padding, mode, bias, special) in enumerate(cases() if checks else ()):
        if short and L >= 8:
            continue
        cd = case_dtype(dt)
        padding, mult, stride, dil = padding if isinstance(padding, tuple) else (padding, 1, 1, 1)
        spec = Conv1dSpec(groups=C, padding=padding, stride=stride, dilation=dil,
                          padding_mode=mode if padding != "valid" else "zeros")
        xs, ws = (N, C, L), (C * mult, 1, K)
        geo = resolve_geometry(xs, ws, None, spec)
        pl, pr = geo.pl, geo.pr
        g = torch.Generator(device="cuda").manual_seed(n_case)
        x = torch.randn(xs, device="cuda", generator=g).to(tdt[dt])
        w = torch.randn(ws, device="cuda", generator=g).to(tdt[dt])
        b = torch.randn((C * mult,), device="cuda", generator=g).to(tdt[dt]) if bias else None
        gy = torch.randn((N, C * mult, geo.L_out), device="cuda", generator=g).to(tdt[dt])
        if special:  # non-finite values at a row start, the middle and a row end
            x[0, 0, 0], x[0, -1, L // 2], x[-1, -1, L - 1] = float("inf"), float("nan"), -float("inf")
        dx, dw, db, dgy = as_cp(x), as_cp(w), None if b is None else as_cp(b), as_cp(gy)
        assert L < 8 or ((new._dwr_threads(cd, geo, spec, (dx,)) if K <= 4 else new._dwl_threads(cd, geo, spec, (dx,), L))
                         or new._dwg_threads(cd, geo, spec, (dx,))), (dt, K)  # (short rows: any route)
        # (the forward takes dw_long up to DWL_FWD_KMAX taps; beyond, both instances run dw_vec)
        y1 = new.forward_device(cd, xs, ws, spec, dx, dw, db)
        y0 = old.forward_device(cd, xs, ws, spec, dx, dw, db)
        ok_y = bool((bits(y1) == bits(y0)).all())
        line = f"{dt:9s} N{N} C{C}{'x' + str(mult) if mult > 1 else ''} L{L} K{K}{' s2' if stride == 2 else ''}{' d' + str(dil) if dil > 1 else ''} pad {padding!s:5s} ({pl},{pr}) {spec.padding_mode:9s}{' bias' if bias else ''}" \
               f"{' inf/nan' if special else ''}: y {'bitwise' if ok_y else 'DIFFERS'}"
        ok = ok_y
        if True:  # every case: dw_reg_bwd, or dw_reg_gw (any K here, multipliers, stride 2) with dw_long's grad_x
            gx1, gw1, _ = new.backward_device(cd, xs, ws, spec, dgy, dx, dw, False)
            gx0, gw0, _ = old.backward_device(cd, xs, ws, spec, dgy, dx, dw, False)
            sc = exact_unit_scales(geo, spec)
            if mult == 1 and stride == 1 and dil == 1:
                ok_x = bool((bits(gx1) == bits(gx0)).all())
                gx_note = "bitwise" if ok_x else "DIFFERS"
            else:  # dw_reg_gx: another sum order than the row-tiled kernel, so a bound against float64
                r_x = [gx_ratio(gx, x, w, gy, spec, geo, mult, float(np.float32(sc.grad_input)), dt) for gx in (gx1, gx0)]
                ok_x = max(r_x) <= 1
                gx_note = f"err/bound new {r_x[0]:.3g} old {r_x[1]:.3g}"

            s = float(np.float32(sc.grad_weight))
            m = spec.padding_mode
            xp = F.pad(x.double(), (pl, pr), mode=m if m != "zeros" else "constant")
            xu = xp.unfold(2, (K - 1) * dil + 1, stride)[..., ::dil].repeat_interleave(mult, dim=1)  # (N, C*mult, L_out, K)
            ref = torch.einsum("nct,nctk->ck", gy.double() * s, xu)
            bnd = torch.einsum("nct,nctk->ck", (gy.double() * s).abs(), xu.abs())
            ratios = [bound_ratio(as_t(gw, dt).reshape(C * mult, K), ref, bnd, N * geo.L_out, dt) for gw in (gw1, gw0)]
            ok &= max(ratios) <= 1
            ok &= ok_x
            if K > 8 and stride == 1 and new._dwg_threads(cd, geo, spec, (dx,)) is not None and \
                    new._dwr_threads(cd, geo, spec, (dx,), bwd=True) is None and new._dwwb_kmax(cd, geo, spec) is None:
                keep, cb.DWG_PASS_BLOCKS = cb.DWG_PASS_BLOCKS, 1  # one tap block a pass: the same sums
                try:
                    gw_1 = new.backward_device(cd, xs, ws, spec, dgy, dx, dw, False)[1]
                finally:
                    cb.DWG_PASS_BLOCKS = keep
                ok_p = bool((bits(gw_1) == bits(gw1)).all())
                ok &= ok_p
                gx_note += f", grad_w one block a pass {'bitwise' if ok_p else 'DIFFERS'}"
            line += f", grad_x {gx_note}, grad_w err/bound new {ratios[0]:.3g} old {ratios[1]:.3g}"
        bad += not ok
        print(line + (" ok" if ok else " FAIL"), flush=True)
    def gw_ratio_grouped(gws, x, gy, geo, spec, s, dt):
        """grad_w of a grouped conv (stride 1, dilation 1) against torch float64: max err/bound
        of each of gws, bound (N * L_out + 1) * 2**-23 * sum |gy * s| |xp| + the output rounding."""
        m, G = spec.padding_mode, spec.groups
        N, Og, Cg, K = x.shape[0], gy.shape[1] // G, x.shape[1] // G, geo.K
        xp = F.pad(x.double(), (geo.pl, geo.pr), mode=m if m != "zeros" else "constant")
        xu = xp.unfold(2, K, 1).reshape(N, G, Cg, geo.L_out, K)
        gs = (gy.double() * s).reshape(N, G, Og, geo.L_out)
        ref = torch.einsum("ngot,ngctk->gock", gs, xu).reshape(G * Og, Cg, K)
        bnd = torch.einsum("ngot,ngctk->gock", gs.abs(), xu.abs()).reshape(G * Og, Cg, K)
        return [bound_ratio(as_t(gw, dt).reshape(ref.shape), ref, bnd, N * geo.L_out, dt) for gw in gws]

    # grp_wide (GRW; else grp_reg): grouped forwards with at most 8 channels a group in and out (and
    # multipliers beyond dw_reg's taps), bitwise against conv_fwd_tile (the same sums in the same
    # order); their backward (grad_x with the transposed taps where L % 8 == 0; grad_w by
    # grp_wide_gw with more than one input channel a group, else dw_reg_gw) against torch float64
    # with the float32 accumulation bound, as the old row-tiled kernels
    n_grp = 0
    for dt in ("float16", "bfloat16", "float32") if checks and not short else ():
        for G, cg, og, L, K in ((4, 8, 8, 4096, 7), (3, 2, 2, 264, 3), (2, 4, 8, 2056, 16), (5, 8, 4, 1000, 9),
                                (3, 1, 3, 264, 9), (2, 8, 8, 64, 1), (2, 3, 5, 130, 13)):
            for padding, mode in ((K // 2, MODES[n_grp % 4]), ("same", "zeros"), (0, "zeros")):
                if padding == "same" and K % 2 == 0:
                    continue
                spec = Conv1dSpec(groups=G, padding=padding, padding_mode=mode)
                xs, ws = (2, G * cg, L), (G * og, cg, K)
                geo = resolve_geometry(xs, ws, None, spec)
                g = torch.Generator(device="cuda").manual_seed(1000 + n_grp)
                x = torch.randn(xs, device="cuda", generator=g).to(tdt[dt])
                w = torch.randn(ws, device="cuda", generator=g).to(tdt[dt])
                b = torch.randn((G * og,), device="cuda", generator=g).to(tdt[dt]) if n_grp % 2 else None
                if n_grp % 3 == 0:
                    x[0, 0, 0], x[-1, -1, L - 1] = float("inf"), float("nan")
                cd = case_dtype(dt)
                dx, dw_, db = as_cp(x), as_cp(w), None if b is None else as_cp(b)
                used = new._grp_threads(cd, geo, spec, (dx,)) is not None
                assert used == (geo.L_out % 8 == 0), (G, cg, og, L, K, padding)
                y1 = new.forward_device(cd, xs, ws, spec, dx, dw_, db)
                y0 = old.forward_device(cd, xs, ws, spec, dx, dw_, db)
                ok = bool((bits(y1) == bits(y0)).all())
                gy = torch.randn((2, G * og, geo.L_out), device="cuda", generator=g).to(tdt[dt])
                dgy = as_cp(gy)
                used_b = new._grp_threads(cd, geo, spec, (dgy,), bwd=True) is not None
                assert used_b == (L % 8 == 0), (G, cg, og, L, K, padding)
                gx1, gw1, _ = new.backward_device(cd, xs, ws, spec, dgy, dx, dw_, False)
                gx0, gw0, _ = old.backward_device(cd, xs, ws, spec, dgy, dx, dw_, False)
                sc = exact_unit_scales(geo, spec)
                r_x = [gx_ratio(gx, x, w, gy, spec, geo, og, float(np.float32(sc.grad_input)), dt, groups=G)
                       for gx in (gx1, gx0)]
                r_w = gw_ratio_grouped((gw1, gw0), x, gy, geo, spec, float(np.float32(sc.grad_weight)), dt)
                ok_y, ok = ok, ok and max(r_x + r_w) <= 1
                bad += not ok
                print(f"{dt:9s} grouped G{G} {cg}->{og} ch/g L{L} K{K} pad {padding!s:5s} {mode:9s}"
                      f"{' bias' if b is not None else ''}{'' if used else ' (declined: L_out % 8)'}: y "
                      f"{'bitwise' if ok_y else 'DIFFERS'}; grad_x{'' if used_b else ' (declined: L % 8)'} "
                      f"err/bound new {r_x[0]:.3g} old {r_x[1]:.3g}, grad_w new {r_w[0]:.3g} old {r_w[1]:.3g}"
                      f"{' ok' if ok else ' FAIL'}", flush=True)
                n_grp += 1
    # dwc_reg / dwc_reg_gw: complex64 depthwise; the forward bitwise against conv_fwd_tile (the
    # same mac operations in the same order), grad_x and grad_w against torch complex128 with the
    # float32 accumulation bound (2 real products a complex term; |xr wr| + |xi wi| <= |x| |w|)
    n_c = 0
    for L, K, padding, mode in ((4096, 4, 3, "zeros"), (1000, 4, "same", "reflect"), (263, 3, 1, "circular"),
                                (257, 1, 0, "replicate"), (2056, 9, 4, "reflect"), (130, 16, "same", "zeros"),
                                (4099, 31, 15, "replicate"), (64, 32, 31, "circular"), (37, 5, 7, "zeros"),
                                (12, 7, 3, "reflect"), (8, 8, "valid", "zeros"), (3000, 2, 1, "circular")) if checks and not short else ():
        spec = Conv1dSpec(groups=3, padding=padding, padding_mode=mode if padding != "valid" else "zeros")
        xs, ws = (2, 3, L), (3, 1, K)
        geo = resolve_geometry(xs, ws, None, spec)
        g = torch.Generator(device="cuda").manual_seed(2000 + n_c)

        def crand(shape):
            return torch.complex(torch.randn(shape, device="cuda", generator=g), torch.randn(shape, device="cuda", generator=g))
        x, w, gy = crand(xs), crand(ws), crand((2, 3, geo.L_out))
        b = crand((3,)) if n_c % 2 else None
        if n_c % 3 == 0:
            x[0, 0, 0], x[-1, -1, L - 1] = complex(float("inf"), 0.0), complex(0.0, float("nan"))
        cd = case_dtype("complex64")
        as_c = lambda t: cupy.asarray(torch.view_as_real(t).contiguous())  # noqa: E731
        dx, dw_, db, dgy = as_c(x), as_c(w), None if b is None else as_c(b), as_c(gy)
        used = new._dwc_threads(cd, geo, spec, (dx,), geo.L_out) is not None
        assert used, (L, K, padding)
        y1 = new.forward_device(cd, xs, ws, spec, dx, dw_, db)
        y0 = old.forward_device(cd, xs, ws, spec, dx, dw_, db)
        ok_y = bool((bits(y1) == bits(y0)).all())
        gx1, gw1, _ = new.backward_device(cd, xs, ws, spec, dgy, dx, dw_, False)
        gx0, gw0, _ = old.backward_device(cd, xs, ws, spec, dgy, dx, dw_, False)
        sc = exact_unit_scales(geo, spec)
        s_x, s_w = float(np.float32(sc.grad_input)), float(np.float32(sc.grad_weight))
        m = spec.padding_mode

        def conv(xv, wv, s_):  # float64 / complex128, the padding through F.pad
            return F.conv1d(F.pad(xv, (geo.pl, geo.pr), mode=m if m != "zeros" else "constant"), wv * s_, groups=3)
        xd = x.to(torch.complex128).requires_grad_(True)
        conv(xd, w.to(torch.complex128), s_x).backward(gy.to(torch.complex128))
        ref_x = xd.grad
        xa = x.abs().double().requires_grad_(True)
        conv(xa, w.abs().double(), s_x).backward(gy.abs().double())
        bnd_x = xa.grad
        xp = F.pad(x.to(torch.complex128), (geo.pl, geo.pr), mode=m if m != "zeros" else "constant")
        xpa = F.pad(x.abs().double(), (geo.pl, geo.pr), mode=m if m != "zeros" else "constant")
        ref_w = torch.einsum("nct,nctk->ck", gy.to(torch.complex128) * s_w, xp.unfold(2, K, 1).conj())
        bnd_w = torch.einsum("nct,nctk->ck", gy.abs().double() * s_w, xpa.unfold(2, K, 1))

        def cratio(got, ref, bnd, terms, like=None):
            """bound_ratio on the float pairs; with ``like`` (the row-tiled kernel's result: the
            same textbook product) the elements whose reference is not finite are compared with
            it instead (torch's complex product of an infinity can differ: NaN where the
            textbook formula gives an infinity), the finite ones with the bound."""
            gr = torch.as_tensor(got, device="cuda").double().reshape(*ref.shape, 2)  # float pairs
            rr = torch.view_as_real(ref)
            bb = bnd.unsqueeze(-1).expand_as(rr)
            if like is None:
                return bound_ratio(gr, rr, bb, terms, "float32")
            lk = torch.as_tensor(like, device="cuda").double().reshape(*ref.shape, 2)
            fin = torch.isfinite(rr).all(-1, keepdim=True).expand_as(rr)
            same = bool(((gr == lk) | (torch.isnan(gr) & torch.isnan(lk)))[~fin].all())
            return bound_ratio(gr[fin], rr[fin], bb[fin], terms, "float32") if same else float("inf")
        r_x = [cratio(gx, ref_x, bnd_x, 2 * K * (1 if m == "zeros" else 3)) for gx in (gx1, gx0)]
        r_w = [cratio(gw, ref_w, bnd_w, 2 * 2 * geo.L_out, like=gw0) for gw in (gw1, gw0)]
        ok = ok_y and max(r_x + r_w) <= 1
        bad += not ok
        print(f"complex64 N2 C3 L{L} K{K} pad {padding!s:5s} {spec.padding_mode:9s}{' bias' if b is not None else ''}"
              f"{' inf/nan' if n_c % 3 == 0 else ''}: y {'bitwise' if ok_y else 'DIFFERS'}; grad_x err/bound new "
              f"{r_x[0]:.3g} old {r_x[1]:.3g}, grad_w new {r_w[0]:.3g} old {r_w[1]:.3g}{' ok' if ok else ' FAIL'}", flush=True)
        n_c += 1
    print("dw_reg checks:", ("all passed" if not bad else f"{bad} FAILED") if checks else "skipped (--time-only)", flush=True)
    if "--no-time" not in args and not short:
        from gpu_bench import timeit

        def interleaved_minima(variants, times, rounds=3):
            """{name: elementwise minimum of ``times()``} over ``rounds`` rounds that run every
            variant in turn, each with its backends.cupy_backend attributes set (then restored)."""
            best = {}
            for _ in range(rounds):
                for name, attrs in variants:
                    keep = {a: getattr(cb, a) for a in attrs}
                    for a, v in attrs.items():
                        setattr(cb, a, v)
                    try:
                        t_ = times()
                    finally:
                        for a, v in keep.items():
                            setattr(cb, a, v)
                    best[name] = tuple(min(u, v) for u, v in zip(best.get(name, t_), t_))
            return best

        def fwd_bwd_times(cd, xs, ws, spec, x, w, gy):
            """{"new" | "old": (forward ms, backward ms)} of both instances on the same arrays."""
            return {name: (timeit(lambda: be.forward_device(cd, xs, ws, spec, x, w, None)),
                           timeit(lambda: be.backward_device(cd, xs, ws, spec, gy, x, w, False), reps=10))
                    for name, be in (("new", new), ("old", old))}
        def shift_variants(cd, xs, ws, spec, x, w, gy):
            """The register windows' switch over constant offsets against the runtime barrel shift
            (SHIFT_SWITCH off): fwd / bwd minima of 3 interleaved rounds, as text."""
            best = interleaved_minima((("switch", {}), ("select shifts", {"SHIFT_SWITCH": False})),
                                      lambda: (timeit(lambda: new.forward_device(cd, xs, ws, spec, x, w, None)),
                                               timeit(lambda: new.backward_device(cd, xs, ws, spec, gy, x, w, False), reps=10)))
            return " (fwd / bwd, min of 3 interleaved: " + ", ".join(f"{n} {f_:.3f} / {b_:.3f} ms" for n, (f_, b_) in best.items()) + ")"
        timed = [(dt, N, C, L, 4, 1, 1) for dt in ("float32", "float16", "bfloat16")
                 for N, C, L in ((16, 2048, 4096), (8, 4096, 2048))]
        timed += [("float32", 8, 1024, 4096, 9, 1, 1), ("float16", 8, 1024, 4096, 9, 1, 1),
                  ("float32", 8, 1024, 4096, 31, 1, 1), ("float16", 8, 1024, 4096, 31, 1, 1),
                  ("float32", 8, 1024, 4096, 17, 1, 1), ("float32", 8, 1024, 4096, 64, 1, 1),
                  ("float32", 8, 1024, 4096, 5, 1, 1), ("float16", 8, 1024, 4096, 8, 1, 1),
                  ("float32", 8, 1024, 4096, 16, 1, 1),
                  ("float16", 8, 1024, 4096, 64, 1, 1),
                  ("bfloat16", 8, 1024, 4096, 64, 1, 1), ("float32", 8, 1024, 4096, 4, 2, 1),
                  ("float32", 8, 1024, 4096, 4, 1, 2), ("float32", 8, 1024, 4096, 9, 1, 1, 2)]  # x2, stride 2, dilation 2
        rows_only = args[args.index("--rows") + 1] if "--rows" in args else None
        for dt, N, C, L, K, mult, stride, *rest in timed:
            if rows_only is not None and rows_only != f"{dt} K{K}":
                continue
            dil = rest[0] if rest else 1
            cd, xs, ws = case_dtype(dt), (N, C, L), (C * mult, 1, K)
            spec = Conv1dSpec(groups=C, padding=K - 1 if K <= 4 else K // 2 if dil == 1 else (K - 1) * dil // 2, stride=stride, dilation=dil)
            x = as_cp(torch.randn(xs, device="cuda").to(tdt[dt]))
            w = as_cp(torch.randn(ws, device="cuda").to(tdt[dt]))
            L_out = resolve_geometry(xs, ws, None, spec).L_out  # K4: L + 3
            gy = as_cp(torch.randn((N, C * mult, L_out), device="cuda").to(tdt[dt]))
            t = fwd_bwd_times(cd, xs, ws, spec, x, w, gy)
            # the switch applies to 16-bit register windows only (float32 builds the same code either way)
            extra = shift_variants(cd, xs, ws, spec, x, w, gy) if K <= cb.DWW_KMIN and dt != "float32" else ""
            if new._dwwb_kmax(cd, resolve_geometry(xs, ws, None, spec), spec) is not None:  # one pass or two kernels
                best = interleaved_minima((("dw_wide_bwd", {}), ("two kernels", {"DWWB": False})),
                                          lambda: (timeit(lambda: new.backward_device(cd, xs, ws, spec, gy, x, w, False), reps=10),))
                extra += " (bwd, min of 3 interleaved: " + ", ".join(f"{n} {t:.3f} ms" for n, (t,) in best.items()) + ")"
            if K > cb.DWW_KMIN:  # dw_wide_gw against dw_reg_gw and its chunks a thread: interleaved rounds, minima
                best = interleaved_minima((("dw_wide_gw", {"DWWB": False}), ("dw_reg_gw", {"DWWB": False, "DWWG_KMIN": 64}),
                                           ("2 chunks a thread", {"DWWB": False, "DWWG_CHUNKS": 2}),
                                           ("8 chunks a thread", {"DWWB": False, "DWWG_CHUNKS": 8})),
                                          lambda: (timeit(lambda: new.backward_device(cd, xs, ws, spec, gy, x, w, False), reps=10),))
                extra += " (bwd, min of 3 interleaved: " + ", ".join(f"{n} {t:.3f} ms" for n, (t,) in best.items()) + ")"
            elif K > 8:  # dw_reg_gw's parameters, the dispatch's evidence
                bwd = lambda: new.backward_device(cd, xs, ws, spec, gy, x, w, False)  # noqa: E731
                for name, attr, val in (("one tap block a pass", "DWG_PASS_BLOCKS", 1), ("32 positions a thread", "DWG_PER", 32),
                                        ("128 positions a thread", "DWG_PER", 128)):
                    keep, keep_b = getattr(cb, attr), cb.DWWB
                    setattr(cb, attr, val)
                    cb.DWWB = False  # the two-kernel backward's grad_w
                    try:
                        extra += f" (bwd with {name}: {timeit(bwd, reps=10):.3f} ms)"
                    finally:
                        setattr(cb, attr, keep)
                        cb.DWWB = keep_b
            if K > cb.DWW_KMIN:  # without dw_wide (the dispatch's evidence): dw_long / dw_vec forward, dw_long grad_x
                new._dww_kmax = lambda *a, **k: None
                try:
                    extra += (f" (without dw_wide: fwd {timeit(lambda: new.forward_device(cd, xs, ws, spec, x, w, None)):.3f} ms, "
                              f"bwd {timeit(lambda: new.backward_device(cd, xs, ws, spec, gy, x, w, False), reps=10):.3f} ms)")
                finally:
                    del new._dww_kmax
            print(f"time dw N{N} C{C}{'x' + str(mult) if mult > 1 else ''} L{L} K{K}{' s2' if stride == 2 else ''}{' d' + str(dil) if dil > 1 else ''} "
                  f"pad {spec.padding} {dt:9s}: fwd new {t['new'][0]:.3f} old {t['old'][0]:.3f} ms; "
                  f"bwd new {t['new'][1]:.3f} old {t['old'][1]:.3f} ms{extra}", flush=True)
            del x, w, gy
            cupy.get_default_memory_pool().free_all_blocks()
        for N, C, L in ((8, 1024, 4096), (16, 2048, 4096)) if rows_only is None else ():  # complex64 depthwise K4
            cd, xs, ws, spec = case_dtype("complex64"), (N, C, L), (C, 1, 4), Conv1dSpec(groups=C, padding=3)
            x = cupy.random.standard_normal(xs + (2,), dtype=cupy.float32)
            w = cupy.random.standard_normal(ws + (2,), dtype=cupy.float32)
            gy = cupy.random.standard_normal((N, C, L + 3, 2), dtype=cupy.float32)
            t = fwd_bwd_times(cd, xs, ws, spec, x, w, gy)
            print(f"time dw N{N} C{C} L{L} K4 pad 3 complex64: fwd new {t['new'][0]:.3f} old {t['old'][0]:.3f} ms; "
                  f"bwd new {t['new'][1]:.3f} old {t['old'][1]:.3f} ms", flush=True)
            del x, w, gy
            cupy.get_default_memory_pool().free_all_blocks()
        for dt, cg in (("float32", 8), ("float16", 8), ("float32", 4)) if rows_only is None else ():  # grp_wide vs conv_fwd_tile
            G = 1024 // cg
            cd, xs, ws, spec = case_dtype(dt), (8, 1024, 4096), (1024, cg, 7), Conv1dSpec(groups=G, padding=3)
            x = as_cp(torch.randn(xs, device="cuda").to(tdt[dt]))
            w = as_cp(torch.randn(ws, device="cuda").to(tdt[dt]))
            gy = as_cp(torch.randn(xs, device="cuda").to(tdt[dt]))  # L_out = L
            t = fwd_bwd_times(cd, xs, ws, spec, x, w, gy)
            # grp_wide / grp_wide_gw against grp_reg / dw_reg_gw (GRW off) and other tile lengths: interleaved rounds, minima
            best = interleaved_minima((("grp_wide + grp_wide_gw", {}), ("grp_reg + grp_wide_gw", {"GRW": False}),
                                       ("grp_reg + dw_reg_gw", {"GRW": False, "GRWG": False}),
                                       ("tiles 256 / 512", {"GRW_TMAX": 256, "GRWG_TMAX": 512}),
                                       ("tiles 1024 / 2048", {"GRW_TMAX": 1024, "GRWG_TMAX": 2048})),
                                      lambda: (timeit(lambda: new.forward_device(cd, xs, ws, spec, x, w, None)),
                                               timeit(lambda: new.backward_device(cd, xs, ws, spec, gy, x, w, False), reps=10)))
            extra = " (fwd / bwd, min of 3 interleaved: " + ", ".join(f"{n} {f_:.3f} / {b_:.3f} ms" for n, (f_, b_) in best.items()) + ")"
            print(f"time grouped N8 C1024 G{G} ({cg} ch/g) L4096 K7 {dt:9s}: fwd new {t['new'][0]:.3f} old {t['old'][0]:.3f} ms; "
                  f"bwd new {t['new'][1]:.3f} old {t['old'][1]:.3f} ms{extra}", flush=True)
            del x, w, gy
            cupy.get_default_memory_pool().free_all_blocks()
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
