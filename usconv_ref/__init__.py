"""usconv_ref: the exact NumPy reference of the unit-scaled 1D convolution.

Every result element is the exact mathematical value rounded once (to nearest, ties to
even) into the output dtype, independent of summation order, BLAS, threads or CPU.
"""
from .dtypes import COMPLEX32
from .module import Conv1d, Parameter
from .ops import conv1d, conv1d_backward, unit_scales
from .scaling import UnitScales
from .spec import Conv1dSpec

__all__ = ["COMPLEX32", "Conv1d", "Conv1dSpec", "Parameter", "UnitScales", "conv1d",
           "conv1d_backward", "unit_scales"]
__version__ = "0.1.0"
