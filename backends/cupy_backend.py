"""CuPy raw-kernel backend: the op hand-written in CUDA C (``cupy_kernels.cu`` beside this
file), compiled with NVRTC through ``cupy.RawModule``. CuPy only allocates, copies and
launches; no cuDNN, cuBLAS or ``cupy.convolve``.

Kernels: one thread per output element with fixed-order loops (deterministic, no atomics);
padding modes as index maps; accumulation in float32 (float16, bfloat16, float32,
complex32, complex64 — fused multiply-adds, no TF32) or float64 (float64, complex128);
complex products by the textbook formula. Dense and wide-group float16/bfloat16 forwards
(more than 16 channels per group) run on the tensor cores (``conv_fwd_mma``: mma.sync with
float32 accumulators over exact products, unscaled sums times the scale at the end); their
adders truncate, so the 16-bit dtypes declare the class ``tc-fp32-acc`` (u_acc = 2**-23,
toward zero) rather than IEEE float32 accumulation. Dense complex128 forwards run on the
float64 tensor cores (``conv_fwd_dmma``, DMMA: IEEE double operations), and so do dense
float32, float64 and complex64 ones (32-bit parts widened exactly to double as they are read:
products exact, sums in float64 — more accurate than their declared float32 class, no TF32). The unit scales (``usconv_ref``) multiply one
factor of every product (the weight in the forward and grad_x, grad_y in grad_w and grad_b;
and the bias), so sums are formed at the scale of the result and an unscaled sum cannot
overflow where the result does not; scales are float32 for the float32-accumulated dtypes
(declared ``scale_dtype="float32"``), float64 otherwise.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from usconv_ref.compare import FP32_ACC, FP64_ACC, TC_FP32
from usconv_ref.dtypes import COMPLEX32, case_dtype
from usconv_ref.scaling import exact_unit_scales
from usconv_ref.spec import resolve_geometry

from . import Backend, Capabilities

SOURCE = Path(__file__).with_name("cupy_kernels.cu")
MODES = {"zeros": 0, "reflect": 1, "replicate": 2, "circular": 3}
# case dtype -> (kernel storage type, complex?, numpy storage dtype of one part)
STORAGE = {
    "float16": ("__half", False, np.float16), "bfloat16": ("bf16_t", False, np.uint16),
    "float32": ("float", False, np.float32), "float64": ("double", False, np.float64),
    "complex32": ("__half", True, np.uint16), "complex64": ("float", True, np.float32),
    "complex128": ("double", True, np.float64),
}
KERNELS = ("conv_fwd", "conv_grad_w", "conv_grad_b", "conv_grad_x", "conv_grad_w_partial", "conv_grad_w_final",
           "conv_fwd_tile", "conv_grad_x_tile", "conv_grad_w_rows")
TILE_KERNELS = {"conv_fwd_tile", "conv_grad_x_tile"}  # templated on PER = 4 outputs per thread
SMALL_GROUP = 16   # row-tiled kernels when a group has at most this many channels
PER = 8
SMEM_LIMIT = 48 * 1024
TARGET_THREADS = 1 << 17  # grad_w: split long (n, t) reductions until about this many threads
DW_KMAX = (4, 8, 16, 32, 64)  # dw_vec instantiations (taps unrolled up to KMAX)
DW_TYPES = ("__half", "bf16_t", "float")
DW_BLOCK = 128  # dw_vec threads per block; 8 outputs each
DW_GRAD_W_PER = 32  # dw_grad_w_vec: outputs per thread (a block's K-value reduction amortized over more)
DWR_KMAX = 4  # dw_reg / dw_reg_bwd (register windows, no staging): K <= DWR_KMAX
DWR_BLOCK = 128  # their most threads per block; 16 outputs each
DWL_KMAXES = (8, 16, 32, 64)  # dw_long instantiations (taps unrolled up to KMAX)
# The forward takes dw_long up to 32 taps: beyond, the staged dw_vec is faster (H100, N8 C1024 L4096,
# runs 26-28: K31 fp32 0.168-0.172 vs 0.174-0.181 ms; K64 fp16 0.33-0.34 vs 0.27; K9 fp32 0.108 vs 0.13);
# grad_x takes it wherever the backward is not fused.
DWL_FWD_KMAX = 32
DWL_KMAX = DWL_KMAXES[-1]  # dw_long (windows slid in groups of 8, taps in blocks of 8): DWR_KMAX < K <= DWL_KMAX
# dw_reg_gw (register-window grad_w, K <= DWL_KMAX): grad_y positions a thread (H100, run 28, backward
# K9 fp32 / fp16 / K9 dilation 2: 64 -> 0.255 / 0.214 / 0.299 ms, 32 -> 0.267 / 0.232 / 0.329, 16 -> 0.282 /
# 0.247 / 0.342: the per-pass block reduction amortized over more products)
DWG_PER = 64
# dw_reg_gw at stride 1, dilation 1, K > 8: two tap blocks (16 accumulators) a pass over the chunks (run 28,
# K9 backward fp32 0.267 vs 0.276 ms with one, fp16 0.232 vs 0.235; with dilation 2 one block was faster)
DWG_PASS_BLOCKS = 2
DWC_KMAXES = (4, 8, 16, 32)  # dwc_reg (complex64 depthwise on register windows) instantiations: K <= 32
GRP_MAX = 8  # grp_reg: at most this many input and output channels a group (64 accumulators a thread)
# grp_wide (staged rows, 16 outputs a thread) for the forwards and grad_x grp_reg serves; False: grp_reg
GRW = True
# grp_wide_gw (staged x rows, grad_y read once) for their grad_w with more than one input channel a group;
# False: dw_reg_gw over (n, c, ci) rows
GRWG = True
GRW_TMAX = 512  # grp_wide: outputs a tile at most
GRWG_TMAX = 1024  # grp_wide_gw: grad_y positions a tile at most
DWL_DIL2_KMAX = 16  # dw_long<..., 2> (dilation 2) instantiations: KMAX 8 and 16; beyond, dw_dil
DWW_KMIN = 16  # dw_wide (staged, 16 outputs a thread, taps in blocks of 8): depthwise forward and grad_x, K > DWW_KMIN
DWW_PER = 16  # as in cupy_kernels.cu
# dw_wide / dw_wide_gw: preferred shared-memory carveout (percent; None: the driver's default). Their
# occupancy is bounded by shared memory (~10-19 KB a block) where the driver leaves a small carveout.
DWW_CARVEOUT = 100
# Register windows (shift_window in cupy_kernels.cu): True, a switch over the block-uniform offset with
# each case's offset a constant; False, the runtime barrel shift (compiled with -DDWR_SHIFT_SELECT;
# kept so that gpu_dw_check can time both in one run). The same values either way.
SHIFT_SWITCH = True
# Extra preprocessor definitions for the module (e.g. ("-DDWR_SCALAR_ENDS",)): kernel variants kept
# compilable so that scripts/gpu_ab.py can time them against the default in one process. Empty in use.
KERNEL_DEFINES = ()
DWWG_KMIN = 16  # dw_wide_gw for depthwise grad_w with K > DWWG_KMIN (and dw_wide's conditions); else dw_reg_gw
DWWG_TMAX = 4096  # dw_wide_gw: grad_y positions a tile at most
# dw_wide_gw: chunks of DWW_PER positions a thread, about (H100, run 6 of this session, backward minima of 3
# interleaved rounds, K64 fp16 / fp32 / K31 fp32: 8 -> 0.507 / 0.517 / 0.367 ms, 4 -> 0.604 / 0.635 / 0.366,
# 2 -> 0.662 / 0.701 / 0.368; dw_reg_gw 0.727 / 0.796 / 0.372)
DWWG_CHUNKS = 8
DWW_KMAXES = tuple(range(24, DW_KMAX[-1] + 1, 8))  # dw_wide instantiations: KMAX = 8 * ceil(K / 8)
# dw_wide_bwd (depthwise backward in one pass on staged rows: grad_x and grad_w's partials, grad_y read once)
# for DWWB_KMIN < K <= DWWB_KMAXES[-1] where its conditions hold (:meth:`CupyBackend._dwwb_kmax`);
# instantiated for these KMAX (its tap blocks are bounded at run time). H100, twelfth session, backward
# minima of 3 interleaved rounds, N8 C1024 L4096, one pass / two kernels: K5 fp32 0.320 / 0.407 ms, K8 fp16
# 0.347 / 0.349, K9 fp32 0.218 / 0.278, K9 fp16 0.195 / 0.222, K16 fp32 0.265 / 0.325, K17 fp32 0.326 /
# 0.335, K31 fp32 0.338 / 0.342, K31 fp16 0.334 / 0.345; K64 (KMAX 64: 113 registers) 0.720 / 0.393 (fp16)
# and 0.712 / 0.407 (fp32), so K > 32 keeps dw_wide + dw_wide_gw.
DWWB = True
DWWB_KMIN = DWR_KMAX
DWWB_KMAXES = (8, 16, 32)
DW_FUSED_KMAX = 16  # dw_bwd_vec (grad_x and grad_w in one pass) up to this many taps; beyond, its
# registers spill (H100: K31 fwd+bwd 0.87 -> 1.32 ms, K64 1.57 -> 6.4 ms) and two kernels are faster
GEMM_TYPES = ("__half", "bf16_t", "float", "double")  # conv_fwd_gemm: real storage types
MMA_TYPES = {"float16": "__half", "bfloat16": "bf16_t"}  # conv_fwd_mma: tensor cores
MMA_BM, MMA_BN, MMA_BK, MMA_LD = 128, 128, 32, 40  # as in cupy_kernels.cu
MMA_SMEM_MAX = 227 * 1024  # H100/A100 opt-in limit per block
Z_BM, Z_BN, Z_BK, Z_LD = 64, 64, 8, 12  # conv_fwd_dmma (the float64 tensor cores)
# case dtype -> (packed element, (storage type, complex)) of conv_fwd_dmma
DMMA = {"float32": ("float", ("float", "false")), "float64": ("double", ("double", "false")),
        "complex64": ("float2", ("float", "true")), "complex128": ("double2", ("double", "true"))}


def module_source():
    """``(code, kernel names)``: ``cupy_kernels.cu`` with its explicit instantiations, as
    compiled by :meth:`CupyBackend.module` (also by ``nvcc`` in ``scripts/nvcc_check.py``)."""
    expr = CupyBackend._expr
    names = [expr(k, t, c) for k in KERNELS for t, c, _ in sorted(set(STORAGE.values()), key=str)]
    names += [CupyBackend._dw_expr(t, km, bwd) for t in DW_TYPES for km in DW_KMAX for bwd in (False, True)]
    names += [f"dw_grad_w_vec<{t}, {km}>" for t in DW_TYPES for km in DW_KMAX]
    names += [f"dw_wide<{t}, {km}, {b}>" for t in DW_TYPES for km in DWW_KMAXES for b in ("false", "true")]
    names += [f"dw_wide_gw<{t}, {km}>" for t in DW_TYPES for km in DWW_KMAXES]
    names += [f"dw_wide_bwd<{t}, {km}>" for t in DW_TYPES for km in DWWB_KMAXES]
    names += [f"dw_bwd_vec<{t}, {km}>" for t in DW_TYPES for km in DW_KMAX if km <= DW_FUSED_KMAX]
    names += [f"{kern}<{t}, {k}>" for kern in ("dw_reg", "dw_reg_bwd") for t in DW_TYPES
              for k in range(1, DWR_KMAX + 1)] + [f"dw_bwd_edges<{t}>" for t in DW_TYPES]
    names += [f"dw_reg<{t}, {k}, 2>" for t in DW_TYPES for k in range(1, DWR_KMAX + 1)]  # stride 2
    names += [f"dw_long<{t}, {k}, {b}>" for t in DW_TYPES for k in DWL_KMAXES for b in ("false", "true")]
    names += [f"{kern}<{t}, {st}>" for kern in ("dw_reg_gw", "dw_reg_gx") for t in DW_TYPES for st in (1, 2)]
    names += [f"dw_dil<{t}, {b}>" for t in DW_TYPES for b in ("false", "true")]
    names += [f"dw_reg_gw<{t}, {st}, 2>" for t in DW_TYPES for st in (1, 2)]
    names += [f"dw_reg_gw<{t}, 1, 1, 2>" for t in DW_TYPES]  # two tap blocks a pass
    names += [f"grp_reg<{t}, {k}{b}>" for t in DW_TYPES for k in (8, 16) for b in ("", ", true")]
    names += [f"grp_wide<{t}, {k}, {b}>" for t in DW_TYPES for k in (8, 16) for b in ("false", "true")]
    names += [f"grp_wide_gw<{t}, {k}>" for t in DW_TYPES for k in (8, 16)]
    names += [f"dw_long<{t}, {k}, {b}, 2>" for t in DW_TYPES for k in DWL_KMAXES if k <= DWL_DIL2_KMAX
              for b in ("false", "true")]
    names += [f"dwc_reg<{k}, {b}>" for k in DWC_KMAXES for b in ("false", "true")] + ["dwc_reg_gw"]
    names += [f"conv_fwd_gemm<{t}>" for t in GEMM_TYPES]
    names += [f"conv_fwd_mma<{t}>" for t in MMA_TYPES.values()] + ["pack_x", "pack_w_wide<unsigned short>"]
    names += [f"{k}<{e}>" for e, _ in DMMA.values() for k in ("pack_x_wide", "pack_w_wide")]
    names += [f"conv_fwd_dmma<{s}, {c}>" for _, (s, c) in DMMA.values()]
    lines = [f"INSTANTIATE({t}, {'true' if c else 'false'}) INSTANTIATE_TILES({t}, {'true' if c else 'false'})"
             for t, c, _ in sorted(set(STORAGE.values()), key=str)]
    lines += [f"INSTANTIATE_DW({t}) INSTANTIATE_DWR({t})" for t in DW_TYPES] + ["INSTANTIATE_DWC()"]
    lines += [f"INSTANTIATE_GEMM({t})" for t in GEMM_TYPES] + [f"INSTANTIATE_MMA({t})" for t in MMA_TYPES.values()]
    return SOURCE.read_text() + "\n" + "\n".join(lines) + "\n", names


class CupyBackend(Backend):
    name = "cupy"

    def __init__(self, block: int = 256):
        self.block = int(block)
        self._modules = {}  # compile options -> RawModule
        self._tc = None  # tensor cores usable (see _tensor_cores)
        self._plans = {}  # (x_shape, w_shape, spec) -> (geometry, kernel parameters, unit scales)

    def availability(self):
        try:
            import cupy
            n = cupy.cuda.runtime.getDeviceCount()
        except Exception as exc:  # noqa: BLE001 - ImportError, no driver, no device
            return False, f"CuPy or a CUDA/ROCm device not available ({type(exc).__name__}: {str(exc)[:120]})"
        return (n > 0), ("" if n > 0 else "no GPU visible to CuPy")

    def describe(self):
        import cupy
        props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
        return f"cupy {cupy.__version__} on {props['name'].decode()} (raw kernels, fp32/fp64 accumulation, no TF32)"

    def capabilities(self):
        return Capabilities()

    def precision(self, dtype, tensor, spec):
        cd = case_dtype(dtype)
        if cd.part.name == "float64":
            return replace(FP64_ACC, name="ieee-fp64-acc+fma")
        if cd.name in MMA_TYPES:  # dense forwards run on the tensor cores (truncating float32 adders)
            return replace(TC_FP32, name="tc-fp32-acc+scale-fp32", scale_dtype="float32")
        return replace(FP32_ACC, name="ieee-fp32-acc+fma+scale-fp32", scale_dtype="float32")

    # --- compilation and launch ---
    def _tensor_cores(self) -> bool:
        """Whether the current device runs the tensor-core forwards (CUDA, compute capability 8.0
        or newer: cp.async, ldmatrix, mma.sync); elsewhere their PTX is compiled to a trap and the
        other kernels serve (cached per instance)."""
        if self._tc is None:
            import cupy
            hip = getattr(cupy.cuda.runtime, "is_hip", True)  # re-exported from cupy_backends; if absent: no tensor cores
            self._tc = not hip and int(cupy.cuda.Device().compute_capability) >= 80  # e.g. "90"
        return self._tc

    def module(self):
        opts = ("-std=c++17", "-ftz=false", "-prec-div=true", "-prec-sqrt=true") + \
            (() if SHIFT_SWITCH else ("-DDWR_SHIFT_SELECT",)) + tuple(KERNEL_DEFINES)
        if opts not in self._modules:
            import cupy
            code, names = module_source()
            # IEEE behaviour spelled out: subnormals kept, correctly rounded division/sqrt.
            self._modules[opts] = cupy.RawModule(code=code, options=opts, name_expressions=names)
            self._names = {(k, t, c): self._expr(k, t, c) for k in KERNELS for t, c, _ in STORAGE.values()}
        return self._modules[opts]

    @staticmethod
    def _expr(kernel, t, c):
        extra = f", {PER}" if kernel in TILE_KERNELS else ""
        return f"{kernel}<{t}, {'true' if c else 'false'}{extra}>"

    @staticmethod
    def _dw_expr(t, kmax, bwd):
        return f"dw_vec<{t}, {kmax}, {'true' if bwd else 'false'}>"

    @staticmethod
    def _dw_kmax(cd, geo, spec):
        """The dw_vec instantiation for this call, or None: depthwise, stride 1, dilation 1,
        real 16/32-bit storage, K <= 64."""
        if not (geo.Cg == 1 and geo.Og == 1 and spec.stride == 1 and (spec.dilation == 1 or geo.K == 1)):
            return None
        if cd.is_complex or cd.part.name == "float64" or geo.L_pad >= 2**31 or geo.N * geo.C_out == 0:
            return None
        return next((k for k in DW_KMAX if geo.K <= k), None)

    @staticmethod
    def _dww_kmax(cd, geo, spec):
        """dw_wide's instantiation for this call, KMAX = 8 * ceil(K / 8) (its tap blocks are
        unrolled unconditionally), or None: :meth:`_dw_kmax`'s conditions and K > DWW_KMIN."""
        kmax = CupyBackend._dw_kmax(cd, geo, spec)
        return 8 * -(-geo.K // 8) if kmax is not None and geo.K > DWW_KMIN else None

    @staticmethod
    def _aligned_cover(length):
        """Positions the tiles of a row cover when they start at the aligned start before the
        row (so that chunks of 8 sit at flat multiples of 8): ``length + 7``, or ``length`` where
        ``length % 8 == 0`` (every row starts aligned)."""
        return length + (7 if length % 8 else 0)

    @staticmethod
    def _staged_bytes(alloc):
        """Bytes of ``alloc`` floats in the sidx<true> layout (4 floats of padding after every 32)."""
        return (alloc + 4 * ((alloc - 1) // 32)) * 4

    @staticmethod
    def _tile(cover, tiles):
        """The balanced tile length for ``tiles`` tiles over ``cover`` positions: a multiple of
        DWW_PER."""
        return -(-(-(-cover // tiles)) // DWW_PER) * DWW_PER

    @staticmethod
    def _dww_plan(K, kmax, length):
        """``(tiles, T, threads, smem)`` of dw_wide over rows of ``length`` outputs. The tiles
        cover ``length`` (``length + 7`` where rows do not start at flat multiples of 8: they
        begin at the aligned start before the row); T, a multiple of DWW_PER, with tiles =
        ceil(cover / T) as the kernel computes it; threads = T / DWW_PER in whole warps (32 to
        256): of the tile counts that blocks of 64 .. 256 threads would need, the one with the
        fewest threads in all (idle lanes), ties to blocks nearest 128 threads. Shared memory: kmax taps,
        then the staged span of ``alloc = T + 8 * ceil(K / 8)`` elements with 4 floats of
        padding after every 32 (sidx<true>)."""
        tiles, T, nt = CupyBackend._fewest_threads(CupyBackend._aligned_cover(length), (128, 96, 160, 64, 192, 224, 256), 32)
        return tiles, T, nt, kmax * 4 + CupyBackend._staged_bytes(T + 8 * -(-K // 8))

    @staticmethod
    def _fewest_threads(cover, block_sizes, unit):
        """``(tiles, T, threads)`` of the staged kernels' one-chunk-a-thread tiling: for each of
        ``block_sizes`` (in order of preference) the tile count ceil(cover / (DWW_PER * size)),
        its balanced T (:meth:`_tile`, a multiple of DWW_PER; tiles = ceil(cover / T) as the
        kernels compute it) and threads = T / DWW_PER rounded up to a multiple of ``unit``; the
        first with the fewest threads in all (idle lanes)."""
        best = None
        for tiles in (-(-cover // (DWW_PER * nt)) for nt in block_sizes):
            T = CupyBackend._tile(cover, tiles)
            nt = -(-T // (DWW_PER * unit)) * unit
            if best is None or tiles * nt < best[0]:
                best = (tiles * nt, -(-cover // T), T, nt)
        return best[1:]

    @staticmethod
    def _dwwg_plan(K, kmax, length):
        """``(tiles, T, threads, smem)`` of dw_wide_gw over rows of ``length`` grad_y positions:
        tiles of T <= DWWG_TMAX positions (a multiple of DWW_PER) covering ``length`` (+ 7 where
        rows do not start at flat multiples of 8), tiles = ceil(cover / T) as the kernel computes
        it; threads (64 or 128: warp pairs, one warp per half of the taps) so that each takes
        about DWWG_CHUNKS chunks of DWW_PER positions (the per-block reduction amortized over more
        products); shared memory: the staged x span up to both halves' windows, T + 2 * kh with
        kh = 8 * ceil(kmax / 16) (sidx<true>), or the per-warp sums of the reduction."""
        cover = CupyBackend._aligned_cover(length)
        T = CupyBackend._tile(cover, -(-cover // DWWG_TMAX))
        nt = 2 * min(64, max(32, -(-T // (DWW_PER * DWWG_CHUNKS * 32)) * 32))  # warp pairs: the two tap halves
        kh = 8 * -(-kmax // 16)
        return -(-cover // T), T, nt, max(CupyBackend._staged_bytes(T + 2 * kh), nt // 32 * kh * 4)

    @staticmethod
    def _dwwb_kmax(cd, geo, spec):
        """dw_wide_bwd's instantiation for this backward (the least of DWWB_KMAXES >= K), or None:
        DWWB, :meth:`_dw_kmax`'s conditions (depthwise, stride 1, dilation 1, real 16/32-bit
        storage), DWWB_KMIN < K <= DWWB_KMAXES[-1] and 0 <= pl < K (the grad_y span of grad_x's
        tile then holds the tile's own grad_y positions, which grad_w takes from it)."""
        if not DWWB or CupyBackend._dw_kmax(cd, geo, spec) is None or not (DWWB_KMIN < geo.K and geo.pl < geo.K):
            return None
        return next((k for k in DWWB_KMAXES if geo.K <= k), None)

    @staticmethod
    def _dwwb_plan(K, kmax, L, Lout):
        """``(tiles, T, threads, smem)`` of dw_wide_bwd: tiles of T positions (a multiple of
        DWW_PER) from the aligned start before the x row covering ``max(L, Lout)`` (+ 7 where x
        rows do not start at flat multiples of 8), tiles = ceil(cover / T) as the kernel computes
        it; threads = T / DWW_PER rounded up to whole warp pairs (64 .. 256; grad_w's two tap
        halves), :meth:`_fewest_threads` over blocks of 128, 64, 192 or 256; shared memory: kmax taps, the staged grad_y span (T + kmax)
        and x span (T + 2 kh, kh = 8 ceil(kmax / 16)) in the sidx<true> layout, then the
        reduction's per-warp sums (threads / 32 * kh)."""
        tiles, T, nt = CupyBackend._fewest_threads(max(L, Lout) + (7 if L % 8 else 0), (128, 64, 192, 256), 64)
        kh = 8 * -(-kmax // 16)
        smem = kmax * 4 + CupyBackend._staged_bytes(T + kmax) + CupyBackend._staged_bytes(T + 2 * kh)
        return tiles, T, nt, smem + nt // 32 * kh * 4

    def _launch_dwwb(self, cd, geo, gp, kmax, dgy, dx, dw, gx, gw, s_gx, s_gw):
        """dw_wide_bwd (grad_x, and grad_w's per-(n, tile) partial sums), then their fixed-order sum."""
        import cupy
        tiles, T, nt, smem = self._dwwb_plan(geo.K, kmax, geo.L, geo.L_out)
        E = geo.C_out * geo.K
        partial = cupy.empty(geo.N * tiles * E, np.float32)
        fn = self._staged_fn(f"dw_wide_bwd<{STORAGE[cd.name][0]}, {kmax}>", smem)
        fn((geo.N * geo.C_out * tiles,), (nt,), (dgy, dw, dx, gx, partial, *gp, np.float64(s_gx), np.float64(s_gw),
                                                  np.int32(T)), shared_mem=smem)
        self._launch("conv_grad_w_final", cd.name, E, partial, gw, np.int64(E), np.int64(geo.N * tiles))

    def _launch_dwwg(self, cd, geo, gp, kmax, dgy, dx, gw, s_gw):
        """dw_wide_gw (grad_w's per-(n, tile) partial sums, long filters), then their fixed-order sum."""
        import cupy
        tiles, T, nt, smem = self._dwwg_plan(geo.K, kmax, geo.L_out)
        E = geo.C_out * geo.K
        partial = cupy.empty(geo.N * tiles * E, np.float32)
        fn = self._staged_fn(f"dw_wide_gw<{STORAGE[cd.name][0]}, {kmax}>", smem)
        fn((geo.N * geo.C_out * tiles,), (nt,), (dgy, dx, partial, *gp, np.float64(s_gw), np.int32(T)), shared_mem=smem)
        self._launch("conv_grad_w_final", cd.name, E, partial, gw, np.int64(E), np.int64(geo.N * tiles))

    @staticmethod
    def _carveout(fn, percent):
        """Sets ``fn``'s preferred shared-memory carveout (a hint to the driver) where it differs."""
        if percent is not None and getattr(fn, "preferred_shared_memory_carveout", None) != percent:
            fn.preferred_shared_memory_carveout = percent

    def _staged_fn(self, name, smem):
        """Kernel ``name`` of the staged family (dw_wide, dw_wide_gw, grp_wide, grp_wide_gw) ready
        for ``smem`` bytes of dynamic shared memory: opted in beyond the default where a tile needs
        it, the carveout hint DWW_CARVEOUT."""
        fn = self.module().get_function(name)
        if fn.max_dynamic_shared_size_bytes < smem:
            fn.max_dynamic_shared_size_bytes = smem
        self._carveout(fn, DWW_CARVEOUT)
        return fn

    def _launch_dww(self, cd, geo, kmax, bwd, length, *args):
        tiles, T, nt, smem = self._dww_plan(geo.K, kmax, length)
        fn = self._staged_fn(f"dw_wide<{STORAGE[cd.name][0]}, {kmax}, {'true' if bwd else 'false'}>", smem)
        fn((geo.N * geo.C_out * tiles,), (nt,), args + (np.int32(T),), shared_mem=smem)  # one block per tile

    @staticmethod
    def _dwr_threads(cd, geo, spec, arrays, bwd=False):
        """Threads per block of dw_reg (forward) / dw_reg_bwd (bwd), or None where they do not
        apply: :meth:`_register_window_ok`, K <= DWR_KMAX, stride 1 (the forward also 2; and a
        depth multiplier); the backward also needs one output channel per group, rows of whole
        8-element chunks (L a multiple of 8) and 0 <= pl < K. Threads: :meth:`_balanced_threads`,
        16 outputs each."""
        if (bwd and geo.Og != 1) or spec.stride not in ((1,) if bwd else (1, 2)) or geo.K > DWR_KMAX:
            return None
        if not CupyBackend._register_window_ok(cd, geo, spec, arrays):
            return None
        if bwd and (geo.L % 8 or not 0 <= geo.pl < geo.K):
            return None
        # outputs a row's tiles cover (forward: from the aligned start before the row)
        return CupyBackend._balanced_threads(geo.L if bwd else geo.L_out + 7, 16)

    @staticmethod
    def _dwl_threads(cd, geo, spec, arrays, length, kmin=DWR_KMAX):
        """Threads per block of dw_long (:meth:`_register_window_ok`, depthwise, kmin < K <=
        DWL_KMAX, stride 1, dilation 1; or dilation 2 with K <= DWL_DIL2_KMAX; 8 outputs a thread)
        over rows of ``length`` outputs, or None."""
        kmax = DWL_DIL2_KMAX if spec.dilation == 2 and geo.K > 1 else DWL_KMAX
        if geo.Og != 1 or spec.stride != 1 or not kmin < geo.K <= kmax:
            return None
        if not CupyBackend._register_window_ok(cd, geo, spec, arrays, dilated=spec.dilation == 2):
            return None
        return CupyBackend._balanced_threads(length + 7, 8)

    @staticmethod
    def _dwg_threads(cd, geo, spec, arrays):
        """Threads per block of dw_reg_gw (:meth:`_register_window_ok`, K <= DWL_KMAX, stride 1
        or 2, depth multipliers, or small groups: at most GRP_MAX channels a group in and out;
        any dilation at stride 1, dilation 2 at stride 2; DWG_PER grad_y positions a thread), or
        None."""
        if spec.stride not in (1, 2) or geo.K > DWL_KMAX:
            return None
        cg_max = GRP_MAX if geo.Og <= GRP_MAX else 1
        if not CupyBackend._register_window_ok(cd, geo, spec, arrays, dilated=spec.stride == 1 or spec.dilation == 2,
                                               cg_max=cg_max):
            return None
        return CupyBackend._balanced_threads(CupyBackend._dwg_span(geo), DWG_PER)

    @staticmethod
    def _dwg_span(geo):
        """Positions dw_reg_gw's tiles cover in a row: L_out + 7 (chunks start up to 7 before a
        row to stay aligned in the flat grad_y), or L_out where L_out % 8 == 0 (every row starts
        aligned: L_out = 4096 takes 64 threads of 64 positions, not 96 with a third idle)."""
        return CupyBackend._aligned_cover(geo.L_out)

    @staticmethod
    def _dwx_threads(cd, geo, spec, arrays):
        """Threads per block of dw_reg_gx (register-window grad_x with depth multipliers or stride
        2; :meth:`_register_window_ok`, K <= DWL_KMAX; 8 outputs a thread), or None. Stride 1
        without a multiplier is dw_long's."""
        if spec.stride not in (1, 2) or (spec.stride == 1 and geo.Og == 1) or geo.K > DWL_KMAX:
            return None
        if not CupyBackend._register_window_ok(cd, geo, spec, arrays):
            return None
        return CupyBackend._balanced_threads(geo.L + 7, 8)

    @staticmethod
    def _dwd_threads(cd, geo, spec, arrays, length, bwd):
        """Threads per block of dw_dil (dilation > 1, K > 1, stride 1, :meth:`_register_window_ok`;
        the backward with one output channel per group; 8 outputs a thread) over rows of
        ``length`` outputs, or None."""
        if spec.dilation == 1 or geo.K == 1 or spec.stride != 1 or (bwd and geo.Og != 1):
            return None
        if not CupyBackend._register_window_ok(cd, geo, spec, arrays, dilated=True):
            return None
        return CupyBackend._balanced_threads(length + 7, 8)

    @staticmethod
    def _grp_threads(cd, geo, spec, arrays, bwd=False):
        """Threads per block of grp_reg (the forward, or with ``bwd`` grad_x, with at most
        GRP_MAX channels a group, in and out; stride 1, dilation 1, K <= 16, output rows (L_out;
        grad_x: L) a multiple of 8, real 16/32-bit storage, int32 rows, 16-byte aligned arrays;
        8 positions a thread), or None. Also the condition of grp_wide and grp_wide_gw."""
        length = geo.L if bwd else geo.L_out
        if not (geo.Og <= GRP_MAX and spec.stride == 1 and geo.K <= 16 and length % 8 == 0):
            return None
        if not CupyBackend._register_window_ok(cd, geo, spec, arrays, cg_max=GRP_MAX):
            return None
        return CupyBackend._balanced_threads(length, 8)

    @staticmethod
    def _dwc_threads(cd, geo, spec, arrays, length, per=4):
        """Threads per block of dwc_reg (complex64 depthwise forward / grad_x, ``per`` = 4
        complex outputs a thread) or dwc_reg_gw (grad_w, ``per`` = DWG_PER positions a thread)
        over rows of ``length`` outputs: complex64 storage, one channel a group, stride 1,
        dilation 1 (or one tap), K <= DWC_KMAXES[-1], rows shorter than 2**30 (float indices in
        int32), a non-empty output and 16-byte aligned arrays; else None."""
        if not (geo.Og == 1 and spec.stride == 1 and geo.K <= DWC_KMAXES[-1]):
            return None
        if not CupyBackend._register_window_ok(cd, geo, spec, arrays, dtypes=("complex64",), row_max=2**30):
            return None
        return CupyBackend._balanced_threads(length + 1, per)

    @staticmethod
    def _register_window_ok(cd, geo, spec, arrays, dilated=False, cg_max=1,
                            dtypes=("float16", "bfloat16", "float32"), row_max=2**31):
        """What the register-window kernels share: at most ``cg_max`` input channels a group (one
        but for grp_reg), dilation 1 (or one tap; any with ``dilated``), storage in ``dtypes``
        (real 16/32-bit; complex64 for dwc_reg), padded rows shorter than ``row_max`` (int32
        indices), a non-empty output and 16-byte aligned arrays."""
        return (geo.Cg <= cg_max and (spec.dilation == 1 or geo.K == 1 or dilated) and cd.name in dtypes
                and geo.L_pad < row_max and geo.N * geo.C_out * geo.L_out > 0
                and not any(a.data.ptr % 16 for a in arrays))

    @staticmethod
    def _balanced_threads(span, per):
        """Threads per block (whole warps, at most DWR_BLOCK, ``per`` outputs each) of the
        fewest tiles that cover ``span`` outputs, balanced: no nearly empty last tile (L_out =
        L + 3). The kernels derive the tile count from the block size, ceil(span / (per *
        threads)): the same."""
        tiles = -(-span // (per * DWR_BLOCK))
        return -(-span // (per * 32 * tiles)) * 32

    @staticmethod
    def _row_tiles(span, per, nt):
        """Tiles of ``nt`` threads, ``per`` outputs each, over a row's ``span`` outputs: the
        register-window kernels' own count, ceil(span / (per * blockDim.x))."""
        return -(-span // (per * nt))

    def _launch_tiled(self, name, rows, span, per, nt, args):
        """Kernel ``name`` over ``rows`` rows of :meth:`_row_tiles` blocks of ``nt`` threads."""
        self.module().get_function(name)((rows * self._row_tiles(span, per, nt),), (nt,), args)

    @staticmethod
    def _grw_plan(co, ci, K, length, tmax, per_channel=True):
        """``(tiles, T, P, threads, smem)`` of grp_wide (``per_channel``: P chunk slots for each of
        the ``co`` output channels, 32 for up to 4 of them, else 16; threads = 32 * ceil(P * co /
        32)) or grp_wide_gw (one warp per input channel: P = 32, threads = 32 * ci) over rows of
        ``length`` outputs (a multiple of 8): tiles of T <= ``tmax`` (a multiple of DWW_PER),
        balanced; shared memory: grp_wide's 64 * KMAX scaled taps, then ``ci`` staged rows of
        staged_row(T + KMAX) floats (kmax = 8 * ceil(K / 8))."""
        kmax = 8 * -(-K // 8)
        P = (32 if co <= 4 else 16) if per_channel else 32
        nt = 32 * -(-(P * co) // 32) if per_channel else 32 * ci
        T = CupyBackend._tile(length, -(-length // tmax))
        taps = 64 * kmax * 4 if per_channel else 0
        return -(-length // T), T, P, nt, taps + ci * CupyBackend._staged_bytes(T + kmax)

    def _launch_grp(self, cd, geo, nt, bwd, args):
        """grp_wide (GRW; else grp_reg): the forward, or grad_x with ``bwd``, over the (n, group) rows."""
        length = geo.L if bwd else geo.L_out
        if GRW:
            co, ci = (geo.Cg, geo.Og) if bwd else (geo.Og, geo.Cg)
            tiles, T, P, nt, smem = self._grw_plan(co, ci, geo.K, length, GRW_TMAX)
            fn = self._staged_fn(f"grp_wide<{STORAGE[cd.name][0]}, {8 if geo.K <= 8 else 16}, {'true' if bwd else 'false'}>",
                                 smem)
            fn((geo.N * geo.groups * tiles,), (nt,), args + (np.int32(T), np.int32(P)), shared_mem=smem)
            return
        name = f"grp_reg<{STORAGE[cd.name][0]}, {8 if geo.K <= 8 else 16}{', true' if bwd else ''}>"
        self._launch_tiled(name, geo.N * geo.groups, length, 8, nt, args)

    def _launch_grwg(self, cd, geo, gp, dgy, dx, gw, s_gw):
        """grp_wide_gw (grouped grad_w's per-(n, tile) partial sums, grad_y read once), then their
        fixed-order sum."""
        import cupy
        tiles, T, _, nt, smem = self._grw_plan(geo.Og, geo.Cg, geo.K, geo.L_out, GRWG_TMAX, per_channel=False)
        E = geo.C_out * geo.Cg * geo.K
        partial = cupy.empty(geo.N * tiles * E, np.float32)
        fn = self._staged_fn(f"grp_wide_gw<{STORAGE[cd.name][0]}, {8 if geo.K <= 8 else 16}>", smem)
        fn((geo.N * geo.groups * tiles,), (nt,), (dgy, dx, partial, *gp, np.float64(s_gw), np.int32(T)), shared_mem=smem)
        self._launch("conv_grad_w_final", cd.name, E, partial, gw, np.int64(E), np.int64(geo.N * tiles))

    def _launch_dwc(self, geo, nt, bwd, args):
        """dwc_reg (complex64 forward, or grad_x with ``bwd``) over the (n, c) rows."""
        kmax = next(k for k in DWC_KMAXES if geo.K <= k)
        self._launch_tiled(f"dwc_reg<{kmax}, {'true' if bwd else 'false'}>", geo.N * geo.C_out,
                           (geo.L if bwd else geo.L_out) + 1, 4, nt, args)

    def _launch_dwl(self, cd, geo, nt, bwd, length, *args):
        kmax = next(k for k in DWL_KMAXES if geo.K <= k)
        dil = ", 2" if geo.dilation == 2 and geo.K > 1 else ""
        self._launch_tiled(f"dw_long<{STORAGE[cd.name][0]}, {kmax}, {'true' if bwd else 'false'}{dil}>",
                           geo.N * geo.C_out, length + 7, 8, nt, args)

    @staticmethod
    def _dwr_name(kernel, cd, geo, stride=1):
        return f"{kernel}<{STORAGE[cd.name][0]}, {geo.K}{', 2' if stride == 2 else ''}>"

    @staticmethod
    def _dw_tiles(length, per=8):
        """``(tiles, T)``: tiles per row and their balanced length (a multiple of 4, at most
        ``per`` outputs per thread), so that no tile is nearly empty."""
        tiles = -(-length // (DW_BLOCK * per))
        return tiles, -(-(-(-length // tiles)) // 4) * 4

    def _launch_dw(self, cd, geo, kmax, bwd, length, *args):
        tiles, T = self._dw_tiles(length)
        smem = (T + 2 * geo.K + 4) * 4
        fn = self.module().get_function(self._dw_expr(STORAGE[cd.name][0], kmax, bwd))
        fn((geo.N * geo.C_out * tiles,), (DW_BLOCK,), args + (np.int32(T),), shared_mem=smem)  # one block per tile

    @staticmethod
    def _packed_plan(geo, bm, bn, bk, row_bytes, min_smem=0):
        """``(P, Op, Cp, span, stages, smem)`` for a tensor-core forward over packed operands
        with ``bm`` output channels x ``bn`` positions per block and ``bk``-channel chunks, or
        None where one stage does not fit shared memory or an index would pass int32.
        ``span``: x rows one tile reads; ``P``: packed x rows (the padded length, or more so
        that the last tile stays inside); ``Op``, ``Cp``: Og and Cg rounded up to the tile; a
        stage holds the K weight tiles and the x tile in rows of ``row_bytes``; two stages
        (pipelined) where they fit; ``smem`` at least ``min_smem``."""
        tiles = -(-geo.L_out // bn)
        span = (bn - 1) * geo.stride + (geo.K - 1) * geo.dilation + 1
        P = max(geo.L_pad, (tiles - 1) * bn * geo.stride + span)
        Op, Cp = -(-geo.Og // bm) * bm, -(-geo.Cg // bk) * bk
        stage = (geo.K * bm + span) * row_bytes
        stages = 2 if 2 * stage <= MMA_SMEM_MAX else 1
        big = max(geo.N * geo.groups * P * Cp, geo.groups * geo.K * Op * Cp, geo.N * tiles)
        if stage > MMA_SMEM_MAX or big >= 2**31 or geo.L_pad >= 2**31:
            return None
        return P, Op, Cp, span, stages, max(stages * stage, min_smem)

    @classmethod
    def _mma_plan(cls, cd, geo):
        """The plan (:meth:`_packed_plan`) of the 16-bit tensor-core forward (conv_fwd_mma), or
        None: real 16-bit storage with more than SMALL_GROUP channels per group only; shared
        memory also holds the epilogue's output tile."""
        if cd.name not in MMA_TYPES or geo.Cg <= SMALL_GROUP or geo.N * geo.C_out * geo.L_out == 0:
            return None
        return cls._packed_plan(geo, MMA_BM, MMA_BN, MMA_BK, MMA_LD * 2, min_smem=MMA_BM * (MMA_BN + 8) * 2)

    @classmethod
    def _dmma_plan(cls, cd, geo):
        """As :meth:`_mma_plan`, for the 32/64-bit real and complex forwards on the float64
        tensor cores (conv_fwd_dmma: 64 x 64 output tiles, 8-channel chunks of the operands'
        own elements)."""
        if cd.name not in DMMA or geo.Cg <= SMALL_GROUP or geo.N * geo.C_out * geo.L_out == 0:
            return None
        elem = np.dtype(STORAGE[cd.name][2]).itemsize * (2 if cd.is_complex else 1)
        return cls._packed_plan(geo, Z_BM, Z_BN, Z_BK, Z_LD * elem)

    def _launch_dmma(self, cd, geo, gp, plan, dx, dw, db, y, s):
        import cupy
        P, Op, Cp, span, stages, smem = plan
        mod, (e, (st, c)) = self.module(), DMMA[cd.name]
        parts, part = (2 if cd.is_complex else 1), STORAGE[cd.name][2]  # parts per packed element
        xt = cupy.empty(geo.N * geo.groups * P * Cp * parts, part)
        wt = cupy.empty(geo.groups * geo.K * Op * Cp * parts, part)
        mod.get_function(f"pack_x_wide<{e}>")((geo.N * geo.groups, -(-P // 32), -(-Cp // 32)), (32, 8),
                                              (dx, xt, *gp, np.int32(P), np.int32(Cp)))
        mod.get_function(f"pack_w_wide<{e}>")((-(-(wt.size // parts) // 256),), (256,),
                                              (dw, wt, *gp, np.int32(Op), np.int32(Cp)))
        self._launch_packed(mod.get_function(f"conv_fwd_dmma<{st}, {c}>"), geo, gp, plan, Z_BM, Z_BN, 128,
                            xt, wt, dx, dw, db, y, s)

    def _launch_mma(self, cd, geo, gp, plan, dx, dw, db, y, s):
        import cupy
        P, Op, Cp, span, stages, smem = plan
        t, mod = MMA_TYPES[cd.name], self.module()
        xt = cupy.empty(geo.N * geo.groups * P * Cp, np.uint16)  # raw 16-bit patterns
        wt = cupy.empty(geo.groups * geo.K * Op * Cp, np.uint16)
        mod.get_function("pack_x")((geo.N * geo.groups, -(-P // 64), -(-Cp // 64)), (32, 8),
                                         (dx, xt, *gp, np.int32(P), np.int32(Cp)))
        mod.get_function("pack_w_wide<unsigned short>")((-(-wt.size // 256),), (256,),
                                                        (dw, wt, *gp, np.int32(Op), np.int32(Cp)))
        self._launch_packed(mod.get_function(f"conv_fwd_mma<{t}>"), geo, gp, plan, MMA_BM, MMA_BN, 256,
                            xt, wt, dx, dw, db, y, s)

    @staticmethod
    def _launch_packed(fn, geo, gp, plan, bm, bn, threads, xt, wt, dx, dw, db, y, s):
        """A tensor-core forward over packed operands (the kernels' PackedPipe): one block per
        (n and bn positions, bm output channels, group), the plan's shared memory opted in."""
        P, Op, Cp, span, stages, smem = plan
        if fn.max_dynamic_shared_size_bytes < smem:
            fn.max_dynamic_shared_size_bytes = smem
        fn((geo.N * -(-geo.L_out // bn), Op // bm, geo.groups), (threads,),
           (xt, wt, dx, dw, db, y, *gp, np.float64(s), np.int32(P), np.int32(Op), np.int32(Cp), np.int32(span),
            np.int32(stages)), shared_mem=smem)

    def _launch_dw_bwd(self, cd, geo, gp, kmax, dgy, dx, dw, gx, gw, s_gx, s_gw):
        """dw_bwd_vec over tiles of grad_x's rows (grad_y staged once for both gradients), then
        the fixed-order sum of grad_w's per-(n, tile) partial sums."""
        import cupy
        tiles, T = self._dw_tiles(geo.L)
        E = geo.C_out * geo.K
        partial = cupy.empty(geo.N * tiles * E, np.float32)
        alloc = (T + geo.K + 7) // 4 * 4  # floats per staged span, as in the kernel
        smem = max((2 * alloc + geo.K) * 4, (DW_BLOCK // 32) * kmax * 4)  # two spans + taps; the reduction
        fn = self.module().get_function(f"dw_bwd_vec<{STORAGE[cd.name][0]}, {kmax}>")
        fn((geo.N * geo.C_out * tiles,), (DW_BLOCK,),
           (dgy, dw, dx, gx, partial, *gp, np.float64(s_gx), np.float64(s_gw), np.int32(T)), shared_mem=smem)
        self._launch("conv_grad_w_final", cd.name, E, partial, gw, np.int64(E), np.int64(geo.N * tiles))

    def _launch_dwr_bwd(self, cd, geo, gp, nt, dgy, dx, dw, gx, gw, s_gx, s_gw):
        """dw_reg_bwd (grad_x and grad_w's per-(n, tile) partial sums in one pass), the
        fixed-order sum of the partials, and for a non-zero padding mode dw_bwd_edges (grad_x's
        extra padded copies near the row ends)."""
        import cupy
        tiles, E = self._row_tiles(geo.L, 16, nt), geo.C_out * geo.K
        partial = cupy.empty(geo.N * tiles * E, np.float32)
        self._launch_tiled(self._dwr_name("dw_reg_bwd", cd, geo), geo.N * geo.C_out, geo.L, 16, nt,
                           (dgy, dw, dx, gx, partial, *gp, np.float64(s_gx), np.float64(s_gw)))
        self._launch("conv_grad_w_final", cd.name, E, partial, gw, np.int64(E), np.int64(geo.N * tiles))
        self._launch_dw_edges(cd, geo, gp, dgy, dw, gx, s_gx)

    def _launch_dwg(self, cd, geo, gp, nt, stride, dgy, dx, gw, s_gw):
        """dw_reg_gw (grad_w's per-(n, tile) partial sums on register windows), then their
        fixed-order sum."""
        import cupy
        J = DWG_PER // 8
        tiles, E = self._row_tiles(self._dwg_span(geo), DWG_PER, nt), geo.C_out * geo.Cg * geo.K
        partial = cupy.empty(geo.N * tiles * E, np.float32)
        dil = 2 if geo.dilation == 2 and geo.K > 1 else 1  # else 1, or any at stride 1 (a group per tap)
        np_ = 2 if stride == 1 and dil == 1 and geo.K > 8 and DWG_PASS_BLOCKS == 2 else 1  # tap blocks per pass
        # the instantiations' names (module_source): <S, ST>, <S, ST, 2>, <S, 1, 1, 2>
        targs = [STORAGE[cd.name][0], str(stride)] + ([str(dil), str(np_)] if np_ == 2 else [str(dil)] if dil == 2 else [])
        self._launch_tiled(f"dw_reg_gw<{', '.join(targs)}>", geo.N * geo.C_out * geo.Cg, self._dwg_span(geo), DWG_PER, nt,
                           (dgy, dx, partial, *gp, np.float64(s_gw), np.int32(J)))
        self._launch("conv_grad_w_final", cd.name, E, partial, gw, np.int64(E), np.int64(geo.N * tiles))

    def _launch_dwcg(self, cd, geo, gp, nt, dgy, dx, gw, s_gw):
        """dwc_reg_gw (complex64 grad_w's per-(n, tile) partial pairs), then their fixed-order sum."""
        import cupy
        tiles, E = self._row_tiles(geo.L_out + 1, DWG_PER, nt), geo.C_out * geo.K
        partial = cupy.empty(geo.N * tiles * E * 2, np.float32)
        self._launch_tiled("dwc_reg_gw", geo.N * geo.C_out, geo.L_out + 1, DWG_PER, nt,
                           (dgy, dx, partial, *gp, np.float64(s_gw), np.int32(DWG_PER // 4)))
        self._launch("conv_grad_w_final", cd.name, E, partial, gw, np.int64(E), np.int64(geo.N * tiles))

    def _launch_dw_edges(self, cd, geo, gp, dgy, dw, gx, s_gx):
        """dw_bwd_edges after a register-window grad_x: the extra padded copies near the row
        ends, for a non-zero padding mode."""
        if gp[11]:  # the padding mode (GEO_ARGS order): not zeros
            n = geo.N * geo.C_out * min(2 * (max(geo.pl, geo.pr) + 1), geo.L)
            fn = self.module().get_function(f"dw_bwd_edges<{STORAGE[cd.name][0]}>")
            fn((-(-n // 256),), (256,), (dgy, dw, gx, *gp, np.float64(s_gx)))

    def _kernel(self, kernel: str, dtype: str):
        t, c, _ = STORAGE[dtype]
        return self.module().get_function(self._names[(kernel, t, c)])

    def _launch(self, kernel, dtype, n_threads, *args):
        if n_threads == 0:
            return
        grid = (n_threads + self.block - 1) // self.block
        self._kernel(kernel, dtype)((grid,), (self.block,), args)

    def _launch_blocks(self, kernel, dtype, blocks, smem, *args):
        if blocks == 0:
            return
        self._kernel(kernel, dtype)((blocks,), (self.block,), args, shared_mem=smem)

    def _pair_bytes(self, cd):
        return 16 if cd.part.name == "float64" else 8

    # --- conversion ---
    @staticmethod
    def _to_device(a, cd):
        import cupy
        if a is None:
            return None
        _, cplx, part = STORAGE[cd.name]
        host = np.ascontiguousarray(a)
        if cd.name == "complex32":
            host = host.view(np.uint16).reshape(a.shape + (2,))
        elif cd.name == "bfloat16":
            host = host.view(np.uint16)
        elif cplx:
            host = host.view(part).reshape(a.shape + (2,))
        return cupy.asarray(host)

    @staticmethod
    def _empty(shape, cd):
        import cupy
        _, cplx, part = STORAGE[cd.name]
        return cupy.empty(tuple(shape) + ((2,) if cplx else ()), part)

    @staticmethod
    def _to_host(d, cd):
        h = d.get()
        if cd.name == "complex32":
            return np.ascontiguousarray(h).view(COMPLEX32).reshape(h.shape[:-1])
        if cd.name == "bfloat16":
            return h.view(cd.numpy)
        if cd.is_complex:
            return np.ascontiguousarray(h).view(cd.numpy).reshape(h.shape[:-1])
        return h

    def _geometry(self, x_shape, w_shape, spec):
        """The resolved geometry, the 12 int64 kernel parameters of GEO_ARGS and the unit scales,
        computed once per (shapes, spec): the exact scales take ~0.1 ms of Python, which would
        otherwise sit in front of every launch."""
        key = (tuple(x_shape), tuple(w_shape), repr(spec))  # repr: specs may hold lists
        hit = self._plans.get(key)
        if hit is None:
            if len(self._plans) > 256:
                self._plans.clear()
            geo = resolve_geometry(tuple(x_shape), tuple(w_shape), None, spec)
            vals = [geo.N, geo.C_in, geo.C_out, geo.L, geo.K, geo.L_out, geo.groups, spec.stride, spec.dilation,
                    geo.pl, geo.pr, MODES[spec.padding_mode]]
            hit = self._plans[key] = (geo, tuple(np.int64(v) for v in vals), exact_unit_scales(geo, spec))
        return hit

    # --- device-side entry points (also used by the benchmark) ---
    def forward_device(self, cd, x_shape, w_shape, spec, dx, dw, db):
        geo, gp, sc = self._geometry(x_shape, w_shape, spec)
        s = float(sc.output)
        y = self._empty(geo.y_shape, cd)
        nt = self._dwr_threads(cd, geo, spec, tuple(a for a in (dx, y, db) if a is not None))
        if nt is not None:  # depthwise, few taps: register windows, 16 outputs a thread
            # tiles from the aligned start before the row: rows start at any flat alignment
            self._launch_tiled(self._dwr_name("dw_reg", cd, geo, spec.stride), geo.N * geo.C_out, geo.L_out + 7, 16,
                               nt, (dx, dw, db, y, *gp, np.float64(s)))
            return y
        kmax = self._dww_kmax(cd, geo, spec)
        if kmax is not None:  # depthwise, long filters: staged, 16 outputs a thread
            self._launch_dww(cd, geo, kmax, False, geo.L_out, dx, dw, db, y, *gp, np.float64(s))
            return y
        arrays = tuple(a for a in (dx, y, db) if a is not None)
        nt = self._dwl_threads(cd, geo, spec, arrays, geo.L_out, kmin=0 if spec.dilation == 2 else DWR_KMAX)
        if nt is not None and geo.K <= DWL_FWD_KMAX:  # depthwise, more taps (or dilation 2)
            self._launch_dwl(cd, geo, nt, False, geo.L_out, dx, dw, db, y, *gp, np.float64(s))
            return y
        nt = self._dwd_threads(cd, geo, spec, arrays, geo.L_out, False)
        if nt is not None:  # depthwise, other dilations: register windows, a group per tap
            self._launch_tiled(f"dw_dil<{STORAGE[cd.name][0]}, false>", geo.N * geo.C_out, geo.L_out + 7, 8, nt,
                               (dx, dw, db, y, *gp, np.float64(s)))
            return y
        nt = self._grp_threads(cd, geo, spec, (dx, y))
        if nt is not None:  # few channels a group (and depth multipliers beyond dw_reg's taps)
            self._launch_grp(cd, geo, nt, False, (dx, dw, db, y, *gp, np.float64(s)))
            return y
        nt = self._dwc_threads(cd, geo, spec, arrays, geo.L_out)
        if nt is not None:  # complex64 depthwise: register windows of pairs
            self._launch_dwc(geo, nt, False, (dx, dw, db, y, *gp, np.float64(s)))
            return y
        kmax = self._dw_kmax(cd, geo, spec)
        if kmax is not None:
            self._launch_dw(cd, geo, kmax, False, geo.L_out, dx, dw, db, y, *gp, np.float64(s))
            return y
        tiles = -(-geo.L_out // (self.block * PER))
        T = -(-geo.L_out // tiles)  # balanced tiles: no nearly empty last tile
        span = (T - 1) * geo.stride + (geo.K - 1) * geo.dilation + 1
        smem = span * self._pair_bytes(cd)
        tc = self._tensor_cores()
        mma = self._mma_plan(cd, geo) if tc else None
        dmma = self._dmma_plan(cd, geo) if tc else None
        if geo.Cg <= SMALL_GROUP and smem <= SMEM_LIMIT and geo.L_pad < 2**31:
            self._launch_blocks("conv_fwd_tile", cd.name, geo.N * geo.C_out * tiles, smem, dx, dw, db, y, *gp,
                                np.float64(s), np.int32(T))
        elif mma is not None:
            self._launch_mma(cd, geo, gp, mma, dx, dw, db, y, s)
        elif dmma is not None:
            self._launch_dmma(cd, geo, gp, dmma, dx, dw, db, y, s)
        elif not cd.is_complex and geo.L_pad < 2**31 and geo.Cg * geo.K < 2**31 and geo.N * geo.C_out > 0:
            fn = self.module().get_function(f"conv_fwd_gemm<{STORAGE[cd.name][0]}>")
            grid = (geo.N * -(-geo.L_out // 128), -(-geo.Og // 128), geo.groups)
            fn(grid, (256,), (dx, dw, db, y, *gp, np.float64(s)))
        else:
            self._launch("conv_fwd", cd.name, geo.N * geo.C_out * geo.L_out, dx, dw, db, y, *gp, np.float64(s))
        return y

    def backward_device(self, cd, x_shape, w_shape, spec, dgy, dx, dw, with_bias):
        geo, gp, sc = self._geometry(x_shape, w_shape, spec)
        s_gx = float(sc.grad_input)
        s_gw = 0.0 if sc.grad_weight is None else float(sc.grad_weight)
        gx, gw = self._empty(x_shape, cd), self._empty(w_shape, cd)
        T = self.block * PER
        tn = (T + (geo.K - 1) * geo.dilation) // geo.stride + 2
        smem = tn * self._pair_bytes(cd)
        kmax = self._dw_kmax(cd, geo, spec)
        nt = self._dwr_threads(cd, geo, spec, (dgy, dx, gx), bwd=True)
        kmax_b = None if nt is not None else self._dwwb_kmax(cd, geo, spec)
        nt_g = None if nt is not None or kmax_b is not None else self._dwg_threads(cd, geo, spec, (dgy, dx))
        fused = nt is not None or kmax_b is not None or (nt_g is None and kmax is not None and kmax <= DW_FUSED_KMAX)
        nt_l = None if fused else self._dwl_threads(cd, geo, spec, (dgy, gx), geo.L, kmin=0)
        nt_x = self._dwx_threads(cd, geo, spec, (dgy, gx))
        nt_d = self._dwd_threads(cd, geo, spec, (dgy, gx), geo.L, True)
        nt_r = self._grp_threads(cd, geo, spec, (dgy, gx), bwd=True)
        nt_c = self._dwc_threads(cd, geo, spec, (dgy, gx), geo.L)
        nt_cg = self._dwc_threads(cd, geo, spec, (dgy, dx), geo.L_out, DWG_PER)
        kmax_w = self._dww_kmax(cd, geo, spec)
        if nt is not None:  # depthwise, few taps: one pass, register windows
            self._launch_dwr_bwd(cd, geo, gp, nt, dgy, dx, dw, gx, gw, s_gx, s_gw)
        elif kmax_b is not None:  # depthwise, more taps: one pass on staged rows
            self._launch_dwwb(cd, geo, gp, kmax_b, dgy, dx, dw, gx, gw, s_gx, s_gw)
        elif fused:  # depthwise, few taps: grad_x and grad_w's per-tile partial sums in one pass
            self._launch_dw_bwd(cd, geo, gp, kmax, dgy, dx, dw, gx, gw, s_gx, s_gw)
        elif kmax_w is not None:  # depthwise, long filters: staged, 16 outputs a thread (padded copies inline)
            self._launch_dww(cd, geo, kmax_w, True, geo.L, dgy, dw, None, gx, *gp, np.float64(s_gx))
        elif nt_l is not None:  # depthwise, more taps: grad_x on register windows
            self._launch_dwl(cd, geo, nt_l, True, geo.L, dgy, dw, None, gx, *gp, np.float64(s_gx))
            self._launch_dw_edges(cd, geo, gp, dgy, dw, gx, s_gx)
        elif nt_d is not None:  # dilation > 1: register windows, a group per tap
            self._launch_tiled(f"dw_dil<{STORAGE[cd.name][0]}, true>", geo.N * geo.C_in, geo.L + 7, 8, nt_d,
                               (dgy, dw, None, gx, *gp, np.float64(s_gx)))
            self._launch_dw_edges(cd, geo, gp, dgy, dw, gx, s_gx)
        elif nt_x is not None:  # depth multipliers or stride 2: register windows
            self._launch_tiled(f"dw_reg_gx<{STORAGE[cd.name][0]}, {spec.stride}>", geo.N * geo.C_in, geo.L + 7, 8, nt_x,
                               (dgy, dw, gx, *gp, np.float64(s_gx)))
        elif kmax is not None:
            self._launch_dw(cd, geo, kmax, True, geo.L, dgy, dw, None, gx, *gp, np.float64(s_gx))
        elif nt_r is not None:  # few channels a group: grp_reg with the transposed taps
            self._launch_grp(cd, geo, nt_r, True, (dgy, dw, None, gx, *gp, np.float64(s_gx)))
        elif nt_c is not None:  # complex64 depthwise: register windows of pairs
            self._launch_dwc(geo, nt_c, True, (dgy, dw, None, gx, *gp, np.float64(s_gx)))
        elif geo.Og <= SMALL_GROUP and smem <= SMEM_LIMIT and geo.L_pad < 2**31:
            tiles = -(-geo.L // T)
            self._launch_blocks("conv_grad_x_tile", cd.name, geo.N * geo.C_in * tiles, smem, dgy, dw, gx, *gp,
                                np.float64(s_gx))
        else:
            self._launch("conv_grad_x", cd.name, geo.N * geo.C_in * geo.L, dgy, dw, gx, *gp, np.float64(s_gx))
        E = int(np.prod(w_shape))
        chunks = max(1, min(TARGET_THREADS // max(E, 1), (geo.N * geo.L_out) // 256))
        rows = geo.C_out * geo.Cg
        if fused:
            pass  # with grad_x above
        elif kmax_w is not None and geo.K > DWWG_KMIN and dgy.data.ptr % 16 == 0:  # long filters: staged x, sliding windows
            self._launch_dwwg(cd, geo, gp, kmax_w, dgy, dx, gw, s_gw)
        elif GRWG and geo.Cg > 1 and self._grp_threads(cd, geo, spec, (dgy, dx)) is not None:
            self._launch_grwg(cd, geo, gp, dgy, dx, gw, s_gw)  # few channels a group: staged x rows, grad_y once
        elif nt_g is not None:  # depthwise (multipliers, stride 2 too) and small groups: register windows
            self._launch_dwg(cd, geo, gp, nt_g, spec.stride, dgy, dx, gw, s_gw)
        elif kmax is not None:  # depthwise: per-tile partial sums, then the fixed-order final sum
            import cupy
            tiles, T = self._dw_tiles(geo.L_out, DW_GRAD_W_PER)
            partial = cupy.empty(geo.N * tiles * E, np.float32)
            fn = self.module().get_function(f"dw_grad_w_vec<{STORAGE[cd.name][0]}, {kmax}>")
            fn((geo.N * geo.C_out * tiles,), (DW_BLOCK,), (dgy, dx, partial, *gp, np.float64(s_gw), np.int32(T)),
               shared_mem=max((T + 2 * geo.K + 4) * 4, (DW_BLOCK // 32) * kmax * 4))  # span; the reduction
            self._launch("conv_grad_w_final", cd.name, E, partial, gw, np.int64(E), np.int64(geo.N * tiles))
        elif nt_cg is not None:  # complex64 depthwise: register windows of pairs, then the final sum
            self._launch_dwcg(cd, geo, gp, nt_cg, dgy, dx, gw, s_gw)
        elif geo.Cg <= SMALL_GROUP and geo.N > 0 and geo.L_pad < 2**31:  # per-row blocks, fixed-order tree reduction
            import cupy
            chunks = max(1, min(geo.N, -(-2048 // rows)))
            acc = np.float64 if cd.part.name == "float64" else np.float32
            partial = cupy.empty(chunks * E * (2 if cd.is_complex else 1), acc)
            self._launch_blocks("conv_grad_w_rows", cd.name, chunks * rows, self.block * self._pair_bytes(cd),
                                dgy, dx, partial, *gp, np.int64(chunks), np.float64(s_gw))
            self._launch("conv_grad_w_final", cd.name, E, partial, gw, np.int64(E), np.int64(chunks))
        elif chunks == 1:
            self._launch("conv_grad_w", cd.name, E, dgy, dx, gw, *gp, np.float64(s_gw))
        else:  # deterministic two-stage reduction (fixed chunking and order)
            import cupy
            acc = np.float64 if cd.part.name == "float64" else np.float32
            partial = cupy.empty(chunks * E * (2 if cd.is_complex else 1), acc)
            self._launch("conv_grad_w_partial", cd.name, E * chunks, dgy, dx, partial, *gp, np.int64(chunks),
                         np.float64(s_gw))
            self._launch("conv_grad_w_final", cd.name, E, partial, gw, np.int64(E), np.int64(chunks))
        gb = None
        if with_bias:
            gb = self._empty((geo.C_out,), cd)
            self._launch("conv_grad_b", cd.name, geo.C_out, dgy, gb, *gp, np.float64(s_gw))
        return gx, gw, gb

    def conv1d(self, x, w, b, spec):
        cd = case_dtype(x.dtype)
        y = self.forward_device(cd, x.shape, w.shape, spec, self._to_device(x, cd), self._to_device(w, cd),
                                self._to_device(b, cd))
        return self._to_host(y, cd)

    def conv1d_backward(self, gy, x, w, b, spec):
        cd = case_dtype(x.dtype)
        gx, gw, gb = self.backward_device(cd, x.shape, w.shape, spec, self._to_device(gy, cd), self._to_device(x, cd),
                                          self._to_device(w, cd), b is not None)
        return self._to_host(gx, cd), self._to_host(gw, cd), None if gb is None else self._to_host(gb, cd)
