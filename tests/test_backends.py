"""Backend adapters: torch capabilities and classes; unit_scaling's declared deviations are
real (each reproduced against the reference); GPU backends skip cleanly without a GPU."""
from __future__ import annotations

import numpy as np
import pytest

import backends
import usconv_ref as ur
from usconv_ref.spec import Conv1dSpec

torch = pytest.importorskip("torch")


def test_torch_cpu_reports_what_it_cannot_do():
    b = backends.get("torch-cpu")
    caps = b.capabilities()
    assert {"float32", "float64", "bfloat16", "complex64"} <= caps.dtypes
    for d in set(backends.ALL_DTYPES) - caps.dtypes:
        assert caps.notes[d].startswith("torch cpu")  # a reason, not silence
    assert b.precision("complex64", "y", Conv1dSpec()).products == "gauss"
    assert b.precision("float32", "y", Conv1dSpec()).out_roundings == 2


def test_gpu_backends_unavailable_without_gpu():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    ok, why = backends.get("torch-cuda").availability()
    assert not ok and "CUDA" in why


def _module_outputs(x, w, b, **kw):
    us = pytest.importorskip("unit_scaling")
    m = backends.get("unit_scaling-module")
    return m, us


def test_unit_scaling_module_pads_twice():
    """For reflect padding p, unit_scaling.Conv1d computes conv(zero_pad_p(reflect_pad_p(x))):
    equal to the reference on the reflect-padded input with zero padding p."""
    pytest.importorskip("unit_scaling")
    m = backends.get("unit_scaling-module")
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 4, 12)), rng.standard_normal((4, 4, 3))
    y = m.conv1d(x, w, None, Conv1dSpec(padding=2, padding_mode="reflect"))
    twice = ur.conv1d(np.pad(x, ((0, 0), (0, 0), (2, 2)), mode="reflect"), w, padding=2)
    assert y.shape == twice.shape != ur.conv1d(x, w, padding=2, padding_mode="reflect").shape
    np.testing.assert_allclose(y, twice, rtol=1e-12, atol=1e-12)


def test_unit_scaling_module_ignores_constraint():
    """With constraint='gmean' (stride 2, so s_out != s_gx) the module's grad_input equals the
    reference's with 'to_output_scale', not with 'gmean'."""
    pytest.importorskip("unit_scaling")
    m = backends.get("unit_scaling-module")
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((2, 4, 12)), rng.standard_normal((6, 4, 3))
    spec = Conv1dSpec(padding=1, stride=2, constraint="gmean")
    gy = rng.standard_normal((2, 6, 6))
    gx, _, _ = m.conv1d_backward(gy, x, w, None, spec)
    want, _, _ = ur.conv1d_backward(gy, x, w, padding=1, stride=2, constraint="to_output_scale")
    meant, _, _ = ur.conv1d_backward(gy, x, w, padding=1, stride=2, constraint="gmean")
    np.testing.assert_allclose(gx, want, rtol=1e-12)
    assert np.max(np.abs(gx - meant)) > 1e-3


def test_unit_scaling_module_int_padding_only():
    us = pytest.importorskip("unit_scaling")
    with pytest.raises(AssertionError, match="int"):
        us.Conv1d(4, 4, 3, padding="same")
    caps = backends.get("unit_scaling-module").capabilities()
    assert not caps.same_padding and not caps.custom_scale_power


def test_unit_scaling_rounds_backward_scales_to_dtype():
    """The functional path's backward scales are tensors of the input dtype: its bf16
    grad_w equals the reference's computed with the bf16-rounded scale (and the class says so)."""
    pytest.importorskip("unit_scaling")
    b = backends.get("unit_scaling")
    assert b.precision("bfloat16", "grad_w", Conv1dSpec()).scale_dtype == "bfloat16"
    assert b.precision("bfloat16", "y", Conv1dSpec()).scale_dtype == "float32"
