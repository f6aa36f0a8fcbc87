"""Judge a port written in any language from its result files (SPEC §9, ``--results DIR``).

Layout of DIR::

    precision.json    {"name": "my-port",
                       "classes": [{"dtype": "float32", "tensor": "*", "class": "ieee-fp32-acc"},
                                   {"dtype": "*", "tensor": "*", "class": {"name": ..., "u_acc": ...}}],
                       "known_deviations": [{"pattern": "dtype.*-large", "reason": "..."}]}
    data/<case id>.npz  the port's outputs y, grad_x, grad_w, grad_b for that case, encoded
                        like the golden files (16-bit types as uint16 bit patterns, complex32
                        with a trailing axis of 2).

Classes: the first rule whose ``dtype`` and ``tensor`` globs match wins; a class is a name
from ``usconv_ref.compare.NAMED_CLASSES`` or a full object. Cases without a result file are
reported as skipped; a result file may leave out tensors the port does not compute.
"""
from __future__ import annotations

import fnmatch
import json
from pathlib import Path

import numpy as np

from usconv_ref.compare import NAMED_CLASSES, PrecisionClass
from usconv_ref.dtypes import case_dtype
from usconv_ref.golden import OUTPUTS, decode

from . import Backend, BackendError, Capabilities, KnownDeviation


class NotProvided(Exception):
    """The port wrote no result for this case."""


class ResultsBackend(Backend):
    def __init__(self, directory):
        self.dir = Path(directory)
        path = self.dir / "precision.json"
        try:
            doc = json.loads(path.read_text())
            self.name = str(doc.get("name", self.dir.name))
            self.rules = []
            for rule in doc["classes"]:
                c = rule["class"]
                cls = NAMED_CLASSES[c] if isinstance(c, str) else PrecisionClass.from_json(c)
                self.rules.append((rule.get("dtype", "*"), rule.get("tensor", "*"), cls))
            self.deviations = [KnownDeviation(d["pattern"], d["reason"]) for d in doc.get("known_deviations", [])]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise BackendError(f"results {self.dir}: unreadable precision.json: {type(exc).__name__}: {exc}") from None

    def describe(self):
        return f"results from {self.dir}"

    def capabilities(self):
        return Capabilities()

    def precision(self, dtype, tensor, spec) -> PrecisionClass:
        for d, t, cls in self.rules:
            if fnmatch.fnmatchcase(dtype, d) and fnmatch.fnmatchcase(tensor, t):
                return cls
        raise BackendError(f"results {self.dir}: precision.json declares no class for dtype {dtype}, tensor {tensor}")

    def known_deviations(self):
        return self.deviations

    def results_for(self, case) -> dict:
        path = self.dir / "data" / f"{case.id}.npz"
        if not path.exists():
            raise NotProvided(f"no result file data/{case.id}.npz")
        cd = case_dtype(case.dtype)
        with np.load(path) as z:
            return {k: decode(z[k], cd) for k in OUTPUTS if k in z.files}
