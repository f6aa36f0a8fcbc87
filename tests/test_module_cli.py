"""The Conv1d module (SPEC §8) and the ``usconv scales`` command (SPEC §12)."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import usconv_ref as ur
from usconv_ref.cli import main

ROOT = Path(__file__).parents[1]


def test_module_init_and_mup_types():
    """Weight N(0,1) from default_rng(seed) rounded into the dtype; bias zeros; mup types."""
    m = ur.Conv1d(4, 6, 3, groups=2, bias=True, dtype=np.float32, seed=5, weight_mup_type="output")
    want = np.random.default_rng(5).standard_normal((6, 2, 3)).astype(np.float32)
    assert m.weight.data.dtype == np.float32 and np.array_equal(m.weight.data, want)
    assert m.weight.mup_type == "output" and m.bias.mup_type == "bias"
    assert np.array_equal(m.bias.data, np.zeros(6, np.float32))
    mc = ur.Conv1d(2, 2, 3, dtype=np.complex64, seed=1)
    parts = np.random.default_rng(1).standard_normal((2, 2, 2, 3)) * np.sqrt(0.5)
    assert np.array_equal(mc.weight.data, (parts[0] + 1j * parts[1]).astype(np.complex64))


def test_module_forward_backward_accumulates():
    """forward/backward equal the functional op; .grad accumulates (PyTorch) and
    zero_grad clears it."""
    m = ur.Conv1d(2, 4, 3, padding=1, bias=True, dtype=np.float64, seed=0, constraint="gmean")
    x = np.random.default_rng(1).standard_normal((3, 2, 8))
    y = m(x)
    assert np.array_equal(y, ur.conv1d(x, m.weight.data, m.bias.data, padding=1, constraint="gmean"))
    gy = np.ones_like(y)
    gx = m.backward(gy)
    gx2, gw, gb = ur.conv1d_backward(gy, x, m.weight.data, m.bias.data, padding=1, constraint="gmean")
    assert np.array_equal(gx, gx2) and np.array_equal(m.weight.grad, gw) and np.array_equal(m.bias.grad, gb)
    m.backward(gy)
    assert np.array_equal(m.weight.grad, gw + gw) and np.array_equal(m.bias.grad, gb + gb)
    m.zero_grad()
    assert m.weight.grad is None and m.bias.grad is None


def test_module_bfloat16_accumulation_rounds_once():
    """bf16 .grad += is the exact sum rounded once (not ml_dtypes' double rounding)."""
    import ml_dtypes
    m = ur.Conv1d(1, 1, 1, dtype=ml_dtypes.bfloat16, seed=0)
    m.weight.data[...] = 1
    x = np.array([[[1.0]]], dtype=ml_dtypes.bfloat16)
    m(x)
    m.backward(np.array([[[1.0]]], dtype=ml_dtypes.bfloat16))
    assert float(m.weight.grad[0, 0, 0]) == 1.0
    m.backward(np.array([[[2.0**-8]]], dtype=ml_dtypes.bfloat16))  # 1 + 2^-8: tie -> 1
    assert float(m.weight.grad[0, 0, 0]) == 1.0


def test_module_rejects_bad_arguments():
    with pytest.raises(ValueError, match="in_channels"):
        ur.Conv1d(0, 2, 3)
    with pytest.raises(ValueError, match="groups"):
        ur.Conv1d(3, 2, 3, groups=2)
    with pytest.raises(ValueError, match="weight_mup_type"):
        ur.Conv1d(2, 2, 3, weight_mup_type="bogus")


def _is_rounded_inv_sqrt(s: float, n: int) -> bool:
    """s is the correctly rounded float64 of n**-0.5: the midpoints to its neighbours
    bracket n**-0.5 (compared exactly through squares)."""
    from fractions import Fraction
    lo, hi = np.nextafter(s, 0), np.nextafter(s, np.inf)
    mid_lo, mid_hi = (Fraction(lo) + Fraction(s)) / 2, (Fraction(s) + Fraction(hi)) / 2
    return mid_lo**2 * n < 1 < mid_hi**2 * n


def test_scales_cli_prints_correctly_rounded_scales(capsys):
    """Scales equal independently checked values (exact comparisons through squares)."""
    assert main(["scales", "--input", "8,64,1024", "--weight", "64,64,7", "--padding", "3", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert _is_rounded_inv_sqrt(d["output"], 448) and d["output"] != 1 / math.sqrt(448)  # upstream's is an ulp off
    assert d["output"] == d["grad_input"] and d["constraint"] == "to_output_scale"
    assert _is_rounded_inv_sqrt(d["grad_weight"], 8192) and d["L_out"] == 1024
    assert main(["scales", "--input", "2,4,10", "--weight", "4,4,3", "--constraint", "none",
                 "--scale-power", "1,1,1", "--stride", "2", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert (d["output"], d["grad_input"], d["grad_weight"]) == (1 / 12, 2 / 12, 1 / 8)


def test_unit_scales_correctly_rounded_where_upstream_is_not():
    """SPEC §4: 1/n**0.5 differs by an ulp from the correctly rounded n**-0.5 for some n;
    we return the correctly rounded one (checked with integer square roots)."""
    off_by_ulp = 0
    for n in range(1, 400):
        s = ur.unit_scales((1, n, 4), (1, n, 1), constraint=None).output
        assert _is_rounded_inv_sqrt(s, n), n
        off_by_ulp += s != 1 / n**0.5
    assert off_by_ulp > 0  # the upstream formula really is off for some n


@pytest.mark.parametrize("args", [
    ["scales", "--input", "8,64", "--weight", "4,3,3"],
    ["scales", "--input", "8,64,10", "--weight", "4,64,3", "--constraint", "bogus"],
    ["scales", "--input", "8,64,10"],
    ["scales", "--input", "a,b", "--weight", "1,1,1"],
    ["bogus"],
])
def test_scales_cli_bad_input_exit_2_one_line(args):
    r = subprocess.run([sys.executable, "-m", "usconv_ref.cli", *args], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
