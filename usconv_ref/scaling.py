"""The unit-scaling rules of SPEC §4, computed exactly.

A unit scale is a product of rational powers such as ``(Cg*K) ** -p0`` — usually
irrational. We keep each scale as an exact expression (:class:`Monomial`, or a
:class:`Mean` of two for the ``amean``/``hmean`` constraints) that knows whether it is
rational (then it is used as an exact ``Fraction``) and otherwise evaluates to any
precision with ``decimal`` (correctly rounded ``ln``/``exp``/``sqrt``).

The constraint functions mirror upstream ``unit_scaling.constraints``: one tiny pure
function per name and :func:`apply_constraint` to look them up.
"""
from __future__ import annotations

import decimal
import math
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property

from .spec import Conv1dSpec, Geometry


def _iroot(n: int, k: int) -> int:
    """floor(n ** (1/k)) for ints n >= 0, k >= 1 (Newton's method on integers)."""
    if n < 2 or k == 1:
        return n
    x = 1 << -(-n.bit_length() // k)  # >= the root
    while True:
        y = ((k - 1) * x + n // x ** (k - 1)) // k
        if y >= x:
            return x
        x = y


def _perfect_root(n: int) -> tuple[int, int]:
    """``(r, j)`` with ``n = r**j`` and j maximal (r is not a perfect power)."""
    r, j = n, 1
    for k in range(n.bit_length(), 1, -1):
        c = _iroot(n, k)
        if c > 1 and c**k == n:
            r, j = c, k
            break
    if j > 1:
        r2, j2 = _perfect_root(r)
        return r2, j * j2
    return r, j


def _coprime_base(numbers: list[int]) -> list[int]:
    """Pairwise coprime integers > 1 such that every input is a product of their powers
    (gcd splitting; no prime factorization, so huge inputs stay fast)."""
    base = [n for n in numbers if n > 1]
    changed = True
    while changed:
        changed = False
        for i in range(len(base)):
            for j in range(i + 1, len(base)):
                g = math.gcd(base[i], base[j])
                if g > 1:
                    a, b = base[i] // g, base[j] // g
                    base = [v for k, v in enumerate(base) if k not in (i, j)] + [v for v in (a, b, g) if v > 1]
                    changed = True
                    break
            if changed:
                break
    return sorted(set(base))


def _valuation(n: int, b: int) -> int:
    v = 0
    while n % b == 0:
        n //= b
        v += 1
    return v


@dataclass(frozen=True)
class Monomial:
    """``prod r ** e`` over ``factors = ((r, e), ...)``: pairwise coprime integers r > 1
    that are not perfect powers, exact rational exponents e.

    Rational iff every exponent is an integer (for such r the valuation argument of any
    prime of r forces it). Any ``q ** power`` with q a positive rational and ``power`` a
    float (a dyadic rational) is a Monomial, and so is the product of two."""

    factors: tuple[tuple[int, Fraction], ...]

    @staticmethod
    def _build(terms: list[tuple[Fraction, Fraction]]) -> "Monomial":
        """``prod q ** e`` over rationals ``q > 0``, normalized."""
        ints = []
        for q, _ in terms:
            ints += [q.numerator, q.denominator]
        roots = {}
        for c in _coprime_base(ints):
            r, j = _perfect_root(c)
            roots[c] = (r, j)
        exps: dict[int, Fraction] = {}
        for q, e in terms:
            for n, sign in ((q.numerator, 1), (q.denominator, -1)):
                for c, (r, j) in roots.items():
                    v = _valuation(n, c)
                    if v:
                        exps[r] = exps.get(r, Fraction(0)) + sign * v * j * e
        return Monomial(tuple(sorted((r, x) for r, x in exps.items() if x != 0)))

    @staticmethod
    def power(q: Fraction, power: float) -> "Monomial":
        """``q ** power`` exactly (``power`` taken as the exact value of the float)."""
        if q <= 0:
            raise ValueError(f"base of a unit scale must be positive, got {q}")
        return Monomial._build([(Fraction(q), Fraction(power))])

    def times(self, other: "Monomial", root: int = 1) -> "Monomial":
        """``(self * other) ** (1/root)``."""
        return Monomial._build([(Fraction(r), x / root) for r, x in self.factors + other.factors])

    def log2(self) -> float:
        """log2 of the value (float; for range decisions)."""
        return sum(float(x) * math.log2(r) for r, x in self.factors)

    def rational(self) -> Fraction | None:
        if any(x.denominator != 1 for _, x in self.factors):
            return None
        out = Fraction(1)
        for p, x in self.factors:
            out *= Fraction(p) ** int(x)
        return out

    def decimal(self, prec: int) -> decimal.Decimal:
        """The value with relative error below ``10 ** -prec``."""
        log_mag = sum(abs(float(x)) * math.log(p) for p, x in self.factors)
        ctx = decimal.Context(prec=prec + 10 + len(str(int(log_mag))))
        x = decimal.Decimal(0)
        for p, e in self.factors:  # every operation in ctx: never the caller's global context
            x = ctx.add(x, ctx.multiply(_dec(e, ctx), ctx.ln(decimal.Decimal(p))))
        return ctx.exp(x)


def _dec(e: Fraction, ctx: decimal.Context) -> decimal.Decimal:
    return ctx.divide(decimal.Decimal(e.numerator), decimal.Decimal(e.denominator))


@dataclass(frozen=True)
class Mean:
    """Arithmetic (``(a+b)/2``) or harmonic (``2/(1/a+1/b)``) mean of two monomials.
    Rational iff both are (sums of positive radicals are rational only then)."""

    kind: str
    a: Monomial
    b: Monomial

    def log2(self) -> float:
        return max(self.a.log2(), self.b.log2()) if self.kind == "amean" else min(self.a.log2(), self.b.log2())

    def rational(self) -> Fraction | None:
        ra, rb = self.a.rational(), self.b.rational()
        if ra is None or rb is None:
            return None
        return (ra + rb) / 2 if self.kind == "amean" else 2 / (1 / ra + 1 / rb)

    def decimal(self, prec: int) -> decimal.Decimal:
        ctx = decimal.Context(prec=prec + 10)
        a, b = self.a.decimal(prec + 5), self.b.decimal(prec + 5)
        if self.kind == "amean":
            return ctx.divide(ctx.add(a, b), 2)
        return ctx.divide(2, ctx.add(ctx.divide(1, a), ctx.divide(1, b)))


# --- constraints (upstream unit_scaling.constraints, on exact expressions) -------------

def gmean(output_scale: Monomial, grad_input_scale: Monomial) -> Monomial:
    """``sqrt(output_scale * grad_input_scale)``"""
    return output_scale.times(grad_input_scale, root=2)


def hmean(output_scale: Monomial, grad_input_scale: Monomial) -> Mean:
    """``2 / (1/output_scale + 1/grad_input_scale)``"""
    return Mean("hmean", output_scale, grad_input_scale)


def amean(output_scale: Monomial, grad_input_scale: Monomial) -> Mean:
    """``(output_scale + grad_input_scale) / 2``"""
    return Mean("amean", output_scale, grad_input_scale)


def to_output_scale(output_scale: Monomial, grad_input_scale: Monomial) -> Monomial:
    """``output_scale``"""
    return output_scale


def to_grad_input_scale(output_scale: Monomial, grad_input_scale: Monomial) -> Monomial:
    """``grad_input_scale``"""
    return grad_input_scale


_CONSTRAINTS = {
    "gmean": gmean,
    "hmean": hmean,
    "amean": amean,
    "to_output_scale": to_output_scale,
    "to_grad_input_scale": to_grad_input_scale,
}


def apply_constraint(name: str | None, output_scale, grad_input_scale):
    """Both scales after the named constraint; ``None`` leaves them unchanged,
    otherwise both become ``constraint(output_scale, grad_input_scale)``."""
    if name is None:
        return output_scale, grad_input_scale
    if name not in _CONSTRAINTS:
        raise ValueError(f"constraint: expected one of {[None, *_CONSTRAINTS]}, got {name!r}")
    s = _CONSTRAINTS[name](output_scale, grad_input_scale)
    return s, s


# --- exact scales ----------------------------------------------------------------------

class ExactScale:
    """A positive real scale known exactly: rational (``.rational`` is a Fraction) or an
    irrational expression evaluated on demand to any precision.

    ``dd`` is ``(hi, lo, exp)`` with ``hi + lo`` in ``[1, 2)`` and
    ``|(hi + lo) * 2**exp - s| <= 2**-100 * s``; :meth:`interval` gives exact rational
    bounds as tight as asked; ``float(scale)`` is the correctly rounded float64."""

    # Beyond 2**±EXTREME_LOG2 every nonzero exact sum of products of float64 values
    # (|V| within 2**±2200 for up to 2**30 terms) times the scale over/underflows every format.
    EXTREME_LOG2 = 5000

    def __init__(self, expr):
        self.expr = expr
        self.log2 = expr.log2()
        self.extreme = 0 if abs(self.log2) <= self.EXTREME_LOG2 else (1 if self.log2 > 0 else -1)
        self.rational: Fraction | None = expr.rational() if not self.extreme else None

    @classmethod
    def of(cls, value: Fraction | int) -> "ExactScale":
        return cls(Monomial.power(Fraction(value), 1.0))

    def interval(self, digits: int) -> tuple[Fraction, Fraction]:
        """``(lo, hi)``, exact rationals with ``lo <= s <= hi`` and ``hi/lo - 1 < 10**(5-digits)``."""
        if self.rational is not None:
            return self.rational, self.rational
        d = Fraction(self.expr.decimal(digits))
        r = Fraction(1, 10 ** (digits - 4))
        return d * (1 - r), d * (1 + r)

    @cached_property
    def dd(self) -> tuple[float, float, int]:
        if self.rational is not None:
            v = self.rational
        else:
            v = Fraction(self.expr.decimal(50))
        e = v.numerator.bit_length() - v.denominator.bit_length()
        m = v / Fraction(2) ** e
        if m < 1:
            m, e = m * 2, e - 1
        elif m >= 2:
            m, e = m / 2, e + 1
        hi = float(m)
        lo = float(m - Fraction(hi))
        return hi, lo, e

    def __float__(self) -> float:
        if self.extreme:
            return math.inf if self.extreme > 0 else 0.0
        digits = 40
        while True:
            lo, hi = self.interval(digits)
            a, b = _fraction_to_float(lo), _fraction_to_float(hi)
            if a == b:
                return a
            digits *= 2

    def __repr__(self) -> str:
        return f"ExactScale({float(self)!r}{', rational' if self.rational is not None else ''})"


def _fraction_to_float(f: Fraction) -> float:
    try:
        return float(f)
    except OverflowError:
        return math.inf


# --- the unit scales of one configuration -----------------------------------------------

@dataclass(frozen=True)
class UnitScales:
    """The four unit scales after the constraint, each the correctly rounded float64."""

    output: float
    grad_input: float
    grad_weight: float
    grad_bias: float


@dataclass(frozen=True)
class ExactUnitScales:
    """The four unit scales as :class:`ExactScale` (grad_weight/grad_bias None when
    ``B*L_out == 0``: no finite scale, and the gradients are empty sums)."""

    output: ExactScale
    grad_input: ExactScale
    grad_weight: ExactScale | None

    def as_floats(self, p2: float) -> UnitScales:
        if self.grad_weight is None:
            gw = math.inf if p2 > 0 else (1.0 if p2 == 0 else 0.0)
        else:
            gw = float(self.grad_weight)
        return UnitScales(float(self.output), float(self.grad_input), gw, gw)


def exact_unit_scales(geo: Geometry, spec: Conv1dSpec) -> ExactUnitScales:
    """SPEC §4:
    ``s_out = (Cg*K)**-p0``, ``s_gx = (stride*groups/(C_out*K))**p1``,
    ``s_gw = s_gb = (B*L_out)**-p2``; then ``s_out, s_gx = constraint(s_out, s_gx)``."""
    p0, p1, p2 = spec.scale_power
    s_out = Monomial.power(Fraction(geo.Cg * geo.K), -p0)
    s_gx = Monomial.power(Fraction(spec.stride * spec.groups, geo.C_out * geo.K), p1)
    s_out, s_gx = apply_constraint(spec.constraint, s_out, s_gx)
    fan = geo.batch_size * geo.L_out
    s_gw = ExactScale(Monomial.power(Fraction(fan), -p2)) if fan > 0 else None
    return ExactUnitScales(ExactScale(s_out), ExactScale(s_gx), s_gw)
