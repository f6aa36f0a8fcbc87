"""Golden data: generation, encoding, manifest, atomic regeneration, verification.

Layout of a golden directory (golden/FORMAT.md has the full format):
``catalog.json`` (version, generator, cases), ``data/<case id>.npz`` (one per case),
``manifest.json`` (sha256 of every file, catalog and generator versions).
"""
from __future__ import annotations

import fnmatch
import hashlib
import io
import json
import os
import shutil
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import __version__
from .catalog import CATALOG_VERSION, Case, build_catalog
from .dtypes import CaseDtype, case_dtype
from .inputs import generate_tensor
from .ops import exact_backward, exact_forward
from .padding import forward_positions

GENERATOR_VERSION = f"usconv_ref {__version__}; golden generator 1"
GENERATED = ("catalog.json", "manifest.json", "data")
INPUTS = ("x", "w", "b", "grad_y")
OUTPUTS = ("y", "grad_x", "grad_w", "grad_b")


class GoldenError(Exception):
    """A golden set that fails verification (exit 1)."""


class CatalogError(Exception):
    """An unreadable catalog/manifest or an unknown version (exit 2)."""


def default_golden_dir() -> Path:
    """The repository's golden/ in a source checkout, else the installed package data."""
    here = Path(__file__).resolve().parents[1] / "golden"
    if (here / "catalog.json").exists():
        return here
    try:
        from importlib.resources import files
        return Path(str(files("usconv_golden")))
    except ModuleNotFoundError:
        return here


# --- encoding --------------------------------------------------------------------------

def encode(a: np.ndarray, cd: CaseDtype) -> np.ndarray:
    """Storage form: 16-bit formats as their uint16 bit patterns (complex32 with a trailing
    axis of 2: real, imag); others as little-endian native arrays."""
    if cd.name == "complex32":
        return np.ascontiguousarray(a).view(np.uint16).reshape(a.shape + (2,))
    if cd.part.name in ("float16", "bfloat16"):
        return np.ascontiguousarray(a).view(np.uint16)
    return np.ascontiguousarray(a, cd.numpy.newbyteorder("<"))


def decode(a: np.ndarray, cd: CaseDtype) -> np.ndarray:
    if cd.name == "complex32":
        return np.ascontiguousarray(a).view(cd.numpy).reshape(a.shape[:-1])
    if cd.part.name in ("float16", "bfloat16"):
        return np.ascontiguousarray(a).view(cd.numpy)
    return np.asarray(a, cd.numpy)


def high_dtype(cd: CaseDtype) -> CaseDtype:
    return case_dtype("complex128" if cd.is_complex else "float64")


# --- generation ------------------------------------------------------------------------

def _special_mask_grad_y(case: Case) -> np.ndarray:
    """grad_y positions whose grad_w products never meet a padded zero (SPEC §3)."""
    spec = case.spec
    K = case.weight_shape[2]
    L = case.input_shape[-1]
    pl, pr = spec.resolve_padding(K)
    L_out = (L + pl + pr - spec.dilation * (K - 1) - 1) // spec.stride + 1
    if spec.padding_mode != "zeros":
        return np.ones(L_out, bool)
    pos = forward_positions(L_out, K, spec.stride, spec.dilation)
    return ((pos >= pl) & (pos < pl + L)).all(axis=1)


def case_inputs(case: Case) -> dict[str, np.ndarray]:
    """The inputs of a case in its dtype, from the counter-based generator."""
    cd = case_dtype(case.dtype)
    x = generate_tensor(case.seed, "x", case.input_shape, case.dataset, cd, np.ones(case.input_shape, bool))
    w = generate_tensor(case.seed, "w", case.weight_shape, case.dataset, cd)
    out = {"x": x, "w": w}
    if case.bias:
        out["b"] = generate_tensor(case.seed, "b", (case.weight_shape[0],), case.dataset, cd)
    _, y = exact_forward(x, w, out.get("b"), case.spec)
    y_shape = y.shape if len(case.input_shape) == 3 else y.shape[1:]
    allowed = np.broadcast_to(_special_mask_grad_y(case), y_shape)
    out["grad_y"] = generate_tensor(case.seed, "grad_y", y_shape, case.dataset, cd, allowed)
    return out


def case_arrays(case: Case) -> dict[str, np.ndarray]:
    """Inputs and expected outputs (case dtype, and ``<name>_f64`` high accuracy) of a case,
    all in storage encoding."""
    cd = case_dtype(case.dtype)
    hi = high_dtype(cd)
    inp = case_inputs(case)
    prep, y = exact_forward(inp["x"], inp["w"], inp.get("b"), case.spec)
    _, gx, gw, gb = exact_backward(inp["grad_y"], inp["x"], inp["w"], inp.get("b"), case.spec)
    unbatch = (lambda a: a[0]) if not prep.geo.batched else (lambda a: a)
    outs = {"y": (y.materialize(), unbatch), "grad_x": (gx.materialize(), unbatch), "grad_w": (gw.materialize(), lambda a: a)}
    if gb is not None:
        outs["grad_b"] = (gb.materialize(), lambda a: a)
    arrays = {k: encode(v, cd) for k, v in inp.items()}
    for name, (t, fix) in outs.items():
        arrays[name] = encode(fix(t.round(cd)), cd)
        arrays[name + "_f64"] = encode(fix(t.round(hi)), hi)
    return arrays


def case_bytes(case: Case) -> bytes:
    """The case's .npz file, byte-reproducible (numpy writes fixed zip timestamps)."""
    buf = io.BytesIO()
    np.savez(buf, **case_arrays(case))
    return buf.getvalue()


def load_case(golden: Path, case: Case) -> dict[str, np.ndarray]:
    """Decoded arrays of a case file: inputs and outputs in the case dtype, ``*_f64`` in
    float64/complex128."""
    cd = case_dtype(case.dtype)
    with np.load(golden / "data" / f"{case.id}.npz") as z:
        return {k: decode(z[k], high_dtype(cd) if k.endswith("_f64") else cd) for k in z.files}


# --- catalog and manifest --------------------------------------------------------------

def catalog_json(cases: list[Case]) -> bytes:
    doc = {"catalog_version": CATALOG_VERSION, "generator": GENERATOR_VERSION,
           "cases": [c.to_json() for c in cases]}
    return (json.dumps(doc, indent=1) + "\n").encode()


def read_catalog(golden: Path) -> list[Case]:
    path = golden / "catalog.json"
    try:
        doc = json.loads(path.read_text())
        version = doc["catalog_version"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CatalogError(f"unreadable catalog {path}: {exc}") from None
    if version != CATALOG_VERSION:
        raise CatalogError(f"unknown catalog version {version!r} in {path} (this usconv reads version {CATALOG_VERSION})")
    try:
        return [Case.from_json(c) for c in doc["cases"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise CatalogError(f"unreadable catalog {path}: bad case entry: {exc}") from None


def read_manifest(golden: Path) -> dict:
    path = golden / "manifest.json"
    try:
        doc = json.loads(path.read_text())
        files = doc["files"]
        version = doc["catalog_version"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CatalogError(f"unreadable manifest {path}: {exc}") from None
    if version != CATALOG_VERSION:
        raise CatalogError(f"unknown catalog version {version!r} in {path}")
    return files


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def manifest_json(files: dict[str, str]) -> bytes:
    doc = {"catalog_version": CATALOG_VERSION, "generator": GENERATOR_VERSION,
           "files": dict(sorted(files.items()))}
    return (json.dumps(doc, indent=1) + "\n").encode()


# --- verification ----------------------------------------------------------------------

def verify(golden: Path, recompute: bool = False, jobs: int = 1, progress=None) -> int:
    """Check the manifest against the files (and, with ``recompute``, every case file
    against a fresh in-memory regeneration from catalog.json). Returns the number of
    cases; raises GoldenError (exit 1) or CatalogError (exit 2) with one clear line."""
    _recover_interrupted(golden)
    cases = read_catalog(golden)
    files = read_manifest(golden)
    listed = set(files)
    for rel, digest in files.items():
        path = golden / rel
        if not path.is_file():
            raise GoldenError(f"missing file {rel} (listed in manifest.json)")
        if sha256(path.read_bytes()) != digest:
            raise GoldenError(f"hash mismatch for {rel}: the file is corrupted, truncated or edited")
    present = {f"data/{p.name}" for p in (golden / "data").iterdir()} if (golden / "data").is_dir() else set()
    extra = sorted(present - listed)
    if extra:
        raise GoldenError(f"extra file {extra[0]} not in manifest.json" + (f" (+{len(extra) - 1} more)" if len(extra) > 1 else ""))
    wanted = {f"data/{c.id}.npz" for c in cases}
    missing = sorted(wanted - listed)
    if missing:
        raise GoldenError(f"case file {missing[0]} of catalog.json is not in manifest.json")
    stale = sorted(r for r in listed if r.startswith("data/") and r not in wanted)
    if stale:
        raise GoldenError(f"manifest entry {stale[0]} names no case of catalog.json")
    if "catalog.json" not in listed:
        raise GoldenError("catalog.json is not in manifest.json")
    if recompute:
        for case, data in _compute(cases, jobs, progress):
            if sha256(data) != files[f"data/{case.id}.npz"]:
                raise GoldenError(f"recomputed case {case.id} differs from data/{case.id}.npz")
    return len(cases)


# --- regeneration ----------------------------------------------------------------------

@dataclass
class RegenReport:
    added: list[str]
    changed: list[str]
    removed: list[str]
    unchanged: int
    refused: bool


def _file_hash(path: Path) -> str | None:
    return sha256(path.read_bytes()) if path.is_file() else None


# Worker processes run BLAS on one thread (the golden cases are small): on the project's
# 2-core VM two workers, each with OpenBLAS's second thread spinning after its calls, kept 4
# threads runnable on 2 cores; -j 2 took 3.7-4.1 s of user time against 2.8-3.2 s for -j 1,
# and with another process busy on one core it was no faster than -j 1. The thread count is
# read from OPENBLAS_NUM_THREADS only when BLAS loads, which a forked worker inherits loaded,
# so the worker sets it through OpenBLAS's own call where it finds one (best effort: Linux,
# OpenBLAS; elsewhere nothing changes). Exact results do not depend on BLAS's threads.
_OPENBLAS_SET_THREADS = ("scipy_openblas_set_num_threads64_", "openblas_set_num_threads64_",
                         "openblas_set_num_threads")


def _single_threaded_blas() -> None:
    """In a worker: every loaded OpenBLAS (``/proc/self/maps``) set to one thread; nothing
    where none is found or the platform has no such map."""
    import ctypes
    try:
        with open("/proc/self/maps") as f:
            libs = sorted({line.split()[-1] for line in f if "openblas" in line.lower() and "/" in line})
    except OSError:
        return
    for path in libs:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in _OPENBLAS_SET_THREADS:
            if hasattr(lib, name):
                getattr(lib, name)(1)
                break


def _compute(cases: list[Case], jobs: int, progress):
    """Yield ``(case, npz bytes)`` in catalog order, computed in ``jobs`` processes (BLAS on
    one thread each: :func:`_single_threaded_blas`)."""
    if jobs > 1 and len(cases) > 1:
        from scipy import ndimage  # noqa: F401 -- imported once here, not in every forked worker (~0.2 s each)
        with ProcessPoolExecutor(max_workers=jobs, initializer=_single_threaded_blas) as pool:
            for i, (case, data) in enumerate(zip(cases, pool.map(case_bytes, cases, chunksize=1))):
                if progress:
                    progress(i + 1, len(cases), case.id)
                yield case, data
    else:
        for i, case in enumerate(cases):
            data = case_bytes(case)
            if progress:
                progress(i + 1, len(cases), case.id)
            yield case, data


def _recover_interrupted(golden: Path) -> None:
    """Undo a swap interrupted between its two renames; drop stale temporary sets."""
    old = golden.with_name(golden.name + ".old")
    if not golden.exists() and old.exists():
        os.rename(old, golden)
    tmp = golden.with_name(golden.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    if old.exists() and golden.exists():
        shutil.rmtree(old)


def regen(golden: Path, pattern: str | None = None, accept_changes: bool = False, jobs: int = 1,
          progress=None, cases: list[Case] | None = None, _write_hook=None) -> RegenReport:
    """Regenerate the cases matching ``pattern`` (all by default) into a temporary set,
    compare with the current one, then swap it in with renames — or refuse (nothing
    written) if existing cases would change and ``accept_changes`` is False."""
    golden = Path(golden)
    _recover_interrupted(golden)
    catalog = build_catalog() if cases is None else cases
    selected = [c for c in catalog if pattern is None or fnmatch.fnmatchcase(c.id, pattern)]
    old_files: dict[str, str] = {}
    if (golden / "manifest.json").exists():
        old_files = read_manifest(golden)
    new_data = dict(_compute(selected, jobs, progress))
    catalog_ids = {c.id for c in catalog}
    old_ids = {r[len("data/"):-len(".npz")] for r in old_files if r.startswith("data/")}
    added, changed = [], []
    for case, data in new_data.items():
        rel = f"data/{case.id}.npz"
        if rel not in old_files:
            added.append(case.id)
        elif old_files[rel] != sha256(data) or _file_hash(golden / rel) != sha256(data):
            changed.append(case.id)  # differs from the manifest or from the file on disk
    removed = sorted(old_ids - catalog_ids)
    unchanged = len(new_data) - len(added) - len(changed)
    report = RegenReport(sorted(added), sorted(changed), removed, unchanged, bool(changed) and not accept_changes)
    if report.refused or not (added or changed or removed):
        return report  # refused, or nothing to write
    tmp = golden.with_name(golden.name + ".tmp")
    tmp.mkdir(parents=True)
    try:
        if golden.exists():
            for item in golden.iterdir():  # static files (FORMAT.md, __init__.py, ...)
                if item.name not in GENERATED and not item.name.startswith("."):
                    (shutil.copytree if item.is_dir() else shutil.copy2)(item, tmp / item.name)
        (tmp / "data").mkdir()
        files = {}
        for case in catalog:
            rel = f"data/{case.id}.npz"
            data = new_data.get(case)
            if data is None:  # outside --filter: kept, but only if it still matches its manifest hash
                if rel not in old_files:
                    raise GoldenError(f"case {case.id} is not in the current set; regenerate it (widen --filter)")
                data = (golden / rel).read_bytes() if (golden / rel).is_file() else b""
                if sha256(data) != old_files[rel]:
                    raise GoldenError(f"case {case.id} (outside --filter) does not match manifest.json; "
                                      "run `usconv golden verify`, then regenerate it")
            (tmp / rel).write_bytes(data)
            files[rel] = sha256(data)
            if _write_hook:
                _write_hook(rel)
        cat = catalog_json(catalog)
        (tmp / "catalog.json").write_bytes(cat)
        files["catalog.json"] = sha256(cat)
        (tmp / "manifest.json").write_bytes(manifest_json(files))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = golden.with_name(golden.name + ".old")
    if golden.exists():
        os.rename(golden, old)
    os.rename(tmp, golden)
    if old.exists():
        shutil.rmtree(old)
    return report


def progress_printer(stream=sys.stderr):
    """A one-line progress bar on a terminal; a line per 10% otherwise."""
    tty = stream.isatty()
    last = [-1]

    def show(done: int, total: int, label: str) -> None:
        if tty:
            width = 30
            fill = width * done // total
            stream.write(f"\r[{'#' * fill}{'.' * (width - fill)}] {done}/{total} {label[:40]:<40}")
            if done == total:
                stream.write("\n")
        else:
            decile = 10 * done // total
            if decile != last[0]:
                last[0] = decile
                stream.write(f"{done}/{total} cases ({label})\n")
        stream.flush()

    return show
