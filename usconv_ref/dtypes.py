"""Case dtypes of SPEC §6 and exact conversions between them and float64.

Every supported dtype is a real floating format or a pair of them (complex). A value of
any of them converts *exactly* to float64 (complex: a pair of float64), which is what
the exact arithmetic in :mod:`usconv_ref.numerics` works on.

``complex32`` has no NumPy dtype; it is the structured dtype ``COMPLEX32`` of two float16
fields ``(real, imag)``, laid out like ``torch.complex32``.
"""
from __future__ import annotations

from dataclasses import dataclass

import ml_dtypes
import numpy as np

COMPLEX32 = np.dtype([("real", "<f2"), ("imag", "<f2")])
BFLOAT16 = np.dtype(ml_dtypes.bfloat16)


@dataclass(frozen=True)
class FloatFormat:
    """A binary floating-point format: ``precision`` significant bits (incl. the hidden
    one), normal exponents ``emin..emax``; subnormals and IEEE infinities.

    ``max_finite = (2 - 2**(1-precision)) * 2**emax``; unit roundoff ``u = 2**-precision``.
    """

    name: str
    precision: int
    emin: int
    emax: int

    @property
    def max_finite(self) -> float:
        return float((2.0 - 2.0 ** (1 - self.precision)) * 2.0**self.emax)

    @property
    def unit_roundoff(self) -> float:
        return 2.0**-self.precision

    @property
    def smallest_subnormal(self) -> float:
        return 2.0 ** (self.emin - self.precision + 1)

    @property
    def smallest_normal(self) -> float:
        return 2.0**self.emin


FORMATS = {
    "float16": FloatFormat("float16", 11, -14, 15),
    "bfloat16": FloatFormat("bfloat16", 8, -126, 127),
    "float32": FloatFormat("float32", 24, -126, 127),
    "float64": FloatFormat("float64", 53, -1022, 1023),
}


@dataclass(frozen=True)
class CaseDtype:
    """One dtype of SPEC §6: its name, NumPy dtype, the real format of its parts, and
    whether it is complex."""

    name: str
    numpy: np.dtype
    part: FloatFormat
    is_complex: bool

    @property
    def real_numpy(self) -> np.dtype:
        """NumPy dtype of one real part."""
        return _REAL_NUMPY[self.part.name]


_REAL_NUMPY = {
    "float16": np.dtype(np.float16),
    "bfloat16": BFLOAT16,
    "float32": np.dtype(np.float32),
    "float64": np.dtype(np.float64),
}

DTYPES = {
    "float16": CaseDtype("float16", np.dtype(np.float16), FORMATS["float16"], False),
    "bfloat16": CaseDtype("bfloat16", BFLOAT16, FORMATS["bfloat16"], False),
    "float32": CaseDtype("float32", np.dtype(np.float32), FORMATS["float32"], False),
    "float64": CaseDtype("float64", np.dtype(np.float64), FORMATS["float64"], False),
    "complex32": CaseDtype("complex32", COMPLEX32, FORMATS["float16"], True),
    "complex64": CaseDtype("complex64", np.dtype(np.complex64), FORMATS["float32"], True),
    "complex128": CaseDtype("complex128", np.dtype(np.complex128), FORMATS["float64"], True),
}


def case_dtype(dtype) -> CaseDtype:
    """The :class:`CaseDtype` for a NumPy dtype, a type, or a name (``"bfloat16"``,
    ``"complex32"``, ...). Anything else (integers, bool, float128, ...) is a TypeError."""
    if isinstance(dtype, CaseDtype):
        return dtype
    if isinstance(dtype, str) and dtype in DTYPES:
        return DTYPES[dtype]
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"unsupported dtype {dtype!r}; expected one of {sorted(DTYPES)}") from None
    for cd in DTYPES.values():
        if cd.numpy == dt:
            return cd
    raise TypeError(f"unsupported dtype {dt}; expected one of {sorted(DTYPES)}")


def to_float64_parts(a: np.ndarray, cd: CaseDtype) -> tuple[np.ndarray, np.ndarray | None]:
    """Exact float64 copies of the real and imaginary parts (imag is None for real dtypes)."""
    if cd.name == "complex32":
        return a["real"].astype(np.float64), a["imag"].astype(np.float64)
    if cd.is_complex:
        return a.real.astype(np.float64), a.imag.astype(np.float64)
    return a.astype(np.float64), None


def from_float64_parts(re: np.ndarray, im: np.ndarray | None, cd: CaseDtype) -> np.ndarray:
    """Assemble an array of dtype ``cd`` from float64 parts that are already exactly
    representable in ``cd``'s part format (or ±inf/NaN), so every cast here is exact."""
    part = cd.real_numpy
    if not cd.is_complex:
        return re.astype(part)
    if cd.name == "complex32":
        out = np.empty(re.shape, COMPLEX32)
        out["real"] = re.astype(np.float16)
        out["imag"] = im.astype(np.float16)
        return out
    out = np.empty(re.shape, cd.numpy)
    out.real = re
    out.imag = im
    return out
