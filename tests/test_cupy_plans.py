"""Host-side plans of the CuPy tensor-core forwards (no GPU needed): which calls take them,
and that the packed operands cover every read the kernels make (the kernels have no bounds
checks: a packed copy too short would read past it)."""
from __future__ import annotations

import pytest

from backends.cupy_backend import MMA_BM, MMA_BN, MMA_SMEM_MAX, Z_BN, CupyBackend
from usconv_ref.dtypes import case_dtype
from usconv_ref.spec import Conv1dSpec, resolve_geometry

GEOMETRIES = [
    ((2, 64, 300), (96, 64, 3), dict(padding=1)),
    ((3, 40, 257), (130, 40, 5), dict(padding=4, stride=2, dilation=3, padding_mode="reflect")),
    ((2, 66, 100), (40, 33, 7), dict(padding=3, padding_mode="circular", groups=2)),
    ((1, 96, 2000), (64, 96, 10), dict(stride=5)),
    ((1, 17, 129), (200, 17, 2), dict(padding=5, padding_mode="replicate")),
    ((32, 512, 4096), (512, 512, 3), dict(padding=1)),
]


def _reads_covered(geo, P, Op, Cp, bm, bn):
    """Largest packed row, channel and output-channel index any block reads, inside the copy."""
    tiles = -(-geo.L_out // bn)
    last_row = (tiles - 1) * bn * geo.stride + (bn - 1) * geo.stride + (geo.K - 1) * geo.dilation
    return last_row < P and P >= geo.L_pad and Cp >= geo.Cg and Op >= geo.Og and Op % bm == 0


@pytest.mark.parametrize("xs,ws,kw", GEOMETRIES)
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_tensor_core_plan_covers_reads(xs, ws, kw, dtype):
    geo = resolve_geometry(xs, ws, None, Conv1dSpec(**kw))
    P, Op, Cp, span, stages, smem = CupyBackend._mma_plan(case_dtype(dtype), geo)
    assert _reads_covered(geo, P, Op, Cp, MMA_BM, MMA_BN) and Cp % 32 == 0
    assert span == (MMA_BN - 1) * geo.stride + (geo.K - 1) * geo.dilation + 1
    assert stages in (1, 2) and smem <= MMA_SMEM_MAX and smem >= MMA_BM * (MMA_BN + 8) * 2


@pytest.mark.parametrize("xs,ws,kw", GEOMETRIES)
@pytest.mark.parametrize("dtype", ["float32", "float64", "complex64", "complex128"])
def test_float64_tensor_core_plan_covers_reads(xs, ws, kw, dtype):
    geo = resolve_geometry(xs, ws, None, Conv1dSpec(**kw))
    P, Op, Cp, span, stages, smem = CupyBackend._dmma_plan(case_dtype(dtype), geo)
    assert _reads_covered(geo, P, Op, Cp, 64, Z_BN) and Cp % 8 == 0
    assert stages in (1, 2) and smem <= MMA_SMEM_MAX


def test_plans_decline_what_the_kernels_do_not_handle():
    cd16, cd32 = case_dtype("float16"), case_dtype("float32")
    small = resolve_geometry((2, 16, 64), (16, 16, 3), None, Conv1dSpec(padding=1))  # 16 channels per group
    assert CupyBackend._mma_plan(cd16, small) is None and CupyBackend._dmma_plan(cd32, small) is None
    empty = resolve_geometry((0, 64, 64), (64, 64, 3), None, Conv1dSpec(padding=1))
    assert CupyBackend._mma_plan(cd16, empty) is None
    huge_span = resolve_geometry((1, 64, 100000), (64, 64, 50), None, Conv1dSpec(stride=40))  # x tile > shared memory
    assert CupyBackend._mma_plan(cd16, huge_span) is None
    assert CupyBackend._mma_plan(cd32, small) is None and CupyBackend._dmma_plan(case_dtype("complex32"), small) is None


class _Dev:
    """Stand-in for a device array: only its address matters to the plan."""
    def __init__(self, ptr):
        self.data = type("P", (), {"ptr": ptr})()


def _dwr(xs, ws, kw, dtype="float16", bwd=False, ptr=256):
    geo = resolve_geometry(xs, ws, None, Conv1dSpec(**kw))
    return geo, CupyBackend._dwr_threads(case_dtype(dtype), geo, Conv1dSpec(**kw), (_Dev(ptr),), bwd=bwd)


@pytest.mark.parametrize("L", [1, 7, 8, 100, 1000, 2041, 2048, 4096, 4099, 9000, 10000, 2**20 + 3])
@pytest.mark.parametrize("bwd", [False, True])
def test_register_window_tiles_cover_rows(L, bwd):
    """dw_reg / dw_reg_bwd: blocks of whole warps (at most 128 threads, 16 outputs each); the
    kernels' tile count ceil(span / (16 * threads)) covers the row (forward: from its aligned
    start, span = L_out + 7), is the fewest possible with 128-thread blocks, and wastes less
    than one warp's outputs per tile (L_out = 4099: 3 tiles of 96 threads, not 3 of 128)."""
    K = 4
    geo, nt = _dwr((2, 3, L), (3, 1, K), dict(padding="same" if bwd else 3, groups=3), bwd=bwd)
    if bwd and L % 8:
        assert nt is None
        return
    span = geo.L if bwd else geo.L_out + 7
    tiles = -(-span // (16 * nt))
    assert nt % 32 == 0 and 32 <= nt <= 128
    assert tiles * 16 * nt >= span and tiles == -(-span // (16 * 128))
    assert tiles * 16 * nt - span < tiles * 16 * 32


@pytest.mark.parametrize("xs,ws,kw,dtype,bwd,ptr", [
    ((2, 4, 64), (4, 1, 5), dict(padding=2, groups=4), "float16", False, 256),    # K > 4
    ((2, 4, 64), (4, 1, 3), dict(padding=1, groups=4, stride=2), "float32", True, 256),  # stride 2 (backward)
    ((2, 4, 64), (4, 1, 3), dict(padding=1, groups=4, stride=3), "float32", False, 256),
    ((2, 4, 64), (4, 1, 3), dict(padding=2, groups=4, dilation=2), "float32", False, 256),
    ((2, 4, 64), (8, 1, 3), dict(padding=1, groups=4), "float32", True, 256),    # multiplier (backward)
    ((2, 4, 64), (4, 2, 3), dict(padding=1, groups=2), "float32", False, 256),   # 2 channels a group
    ((2, 4, 64), (4, 1, 3), dict(padding=1, groups=4), "complex64", False, 256),
    ((2, 4, 64), (4, 1, 3), dict(padding=1, groups=4), "float64", False, 256),
    ((2, 4, 64), (4, 1, 3), dict(padding=1, groups=4), "float16", False, 258),  # misaligned array
    ((2, 4, 60), (4, 1, 3), dict(padding=1, groups=4), "float16", True, 256),   # L % 8 (backward)
    ((2, 4, 64), (4, 1, 3), dict(padding=3, groups=4), "float16", True, 256),   # pl >= K (backward)
])
def test_register_window_domain(xs, ws, kw, dtype, bwd, ptr):
    assert _dwr(xs, ws, kw, dtype, bwd, ptr)[1] is None


def test_register_window_taken():
    assert _dwr((2, 4, 61), (8, 1, 4), dict(groups=4, padding=3), "float16")[1] is not None  # multiplier 2
    assert _dwr((2, 4, 61), (4, 1, 4), dict(groups=4, padding=3, stride=2), "bfloat16")[1] is not None
    for kw in (dict(padding=3), dict(padding="same"), dict(padding="valid"), dict(padding=1, padding_mode="reflect")):
        for dtype in ("float16", "bfloat16", "float32"):
            assert _dwr((2, 4, 61), (4, 1, 4), dict(groups=4, **kw), dtype)[1] is not None
            assert _dwr((2, 4, 64), (4, 1, 4), dict(groups=4, **kw), dtype, bwd=True)[1] is not None
