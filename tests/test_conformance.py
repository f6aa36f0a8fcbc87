"""pytest integration: every available backend × every golden case, judged by the harness.
``pytest tests/test_conformance.py --backend 'torch-cuda[tf32=false]'`` narrows the backends;
a failure message is the harness's report for that case (with its reproduce command)."""
from __future__ import annotations

import warnings

import pytest

import backends
from usconv_ref.golden import default_golden_dir, read_catalog
from usconv_ref.harness import check_backend
from usconv_ref.report import failure_lines

GOLDEN = default_golden_dir()
CASES = read_catalog(GOLDEN)
DEFAULT = ["numpy", "torch-cpu", "unit_scaling", "unit_scaling-module", "torch-cuda", "cupy"]
_instances: dict[str, object] = {}


def _backend(arg: str):
    if arg not in _instances:
        name, opts = backends.parse_backend_arg(arg)
        _instances[arg] = backends.get(name, **opts)
    return _instances[arg]


def pytest_generate_tests(metafunc):
    if "backend_arg" in metafunc.fixturenames:
        chosen = metafunc.config.getoption("--backend") or DEFAULT
        metafunc.parametrize("backend_arg", chosen)
        metafunc.parametrize("case", CASES, ids=[c.id for c in CASES])


def test_conformance(backend_arg, case):
    try:
        b = _backend(backend_arg)
    except backends.BackendError as exc:
        pytest.skip(str(exc))
    ok, why = b.availability()
    if not ok:
        pytest.skip(f"{backend_arg}: {why}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = check_backend(b, backend_arg, [case], GOLDEN, determinism=False)
    c = res.cases[0]
    if c.status == "skip":
        pytest.skip(c.reason)
    assert not res.failed, "\n".join(failure_lines(res))
