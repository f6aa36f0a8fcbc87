"""The ``usconv`` command line (SPEC §12).

Exit status: 0 success; 1 a conformance failure / verification mismatch / refused regen;
2 bad usage or bad input (one line on stderr, no traceback).
"""
from __future__ import annotations

import argparse
import json
import sys

from pathlib import Path

from .golden import CatalogError
from .ops import unit_scales
from .spec import Conv1dSpec, resolve_geometry


class UsageError(Exception):
    """Bad usage or bad input: exit 2 with one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse prints usage + message otherwise)
        raise UsageError(f"{self.prog}: {message}")


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.replace("x", ",").split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated ints, got {text!r}") from None


def _padding(text: str):
    return text if text in ("valid", "same") else _int_arg(text)


def _int_arg(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an int, got {text!r}") from None


def _powers(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 3 comma-separated reals, got {text!r}") from None


def _constraint(text: str):
    return None if text.lower() in ("none", "") else text


def _add_spec_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--stride", type=_int_arg, default=1)
    p.add_argument("--padding", type=_padding, default=0, help="int, 'valid' or 'same'")
    p.add_argument("--dilation", type=_int_arg, default=1)
    p.add_argument("--groups", type=_int_arg, default=1)
    p.add_argument("--padding-mode", default="zeros", help="zeros, reflect, replicate, circular")
    p.add_argument("--constraint", type=_constraint, default="to_output_scale",
                   help="none, gmean, hmean, amean, to_output_scale (default), to_grad_input_scale")
    p.add_argument("--scale-power", type=_powers, default=(0.5, 0.5, 0.5), help="p0,p1,p2 (default 0.5,0.5,0.5)")


def _spec_from(args) -> Conv1dSpec:
    return Conv1dSpec(args.stride, args.padding, args.dilation, args.groups, args.padding_mode,
                      args.constraint, args.scale_power)


def cmd_scales(args) -> int:
    spec = _spec_from(args)
    geo = resolve_geometry(args.input, args.weight, None, spec)
    s = unit_scales(args.input, args.weight, stride=spec.stride, padding=spec.padding,
                    dilation=spec.dilation, groups=spec.groups, padding_mode=spec.padding_mode,
                    constraint=spec.constraint, scale_power=spec.scale_power)
    rows = {"output": s.output, "grad_input": s.grad_input, "grad_weight": s.grad_weight, "grad_bias": s.grad_bias}
    if args.json:
        print(json.dumps({"constraint": spec.constraint, "scale_power": list(spec.scale_power),
                          "L_out": geo.L_out, **rows}))
        return 0
    print(f"configuration: input {tuple(args.input)} weight {tuple(args.weight)} -> output {geo.y_shape}")
    print(f"constraint: {spec.constraint}   scale_power: {spec.scale_power}")
    for name, v in rows.items():
        print(f"  {name:<12} {v!r:<24} ({v.hex()})")
    return 0


def _golden_dir(args) -> Path:
    from .golden import default_golden_dir
    return Path(args.golden) if args.golden else default_golden_dir()


def cmd_golden_regen(args) -> int:
    from .golden import progress_printer, regen
    golden = _golden_dir(args)
    rep = regen(golden, args.filter, args.accept_changes, args.jobs, progress_printer())
    print(f"golden set {golden}: {len(rep.added)} added, {len(rep.changed)} changed, "
          f"{len(rep.removed)} removed, {rep.unchanged} unchanged")
    for label, ids in (("added", rep.added), ("changed", rep.changed), ("removed", rep.removed)):
        for i in ids[:20]:
            print(f"  {label}: {i}")
        if len(ids) > 20:
            print(f"  ... and {len(ids) - 20} more {label}")
    if rep.refused:
        print(f"refused: {len(rep.changed)} existing case(s) would change; rerun with --accept-changes "
              "to overwrite them", file=sys.stderr)
        return 1
    return 0


def cmd_golden_verify(args) -> int:
    from .golden import GoldenError, progress_printer, verify
    golden = _golden_dir(args)
    try:
        n = verify(golden, args.recompute, args.jobs, progress_printer() if args.recompute else None)
    except GoldenError as exc:
        print(f"golden verify failed: {exc}", file=sys.stderr)
        return 1
    print(f"golden set {golden}: {n} cases verified" + (" (recomputed bitwise)" if args.recompute else ""))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="usconv", description="Conformance kit for the unit-scaled conv1d.")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    p = sub.add_parser("scales", help="the four unit scales of a configuration")
    p.add_argument("--input", type=_ints, required=True, help="input shape, e.g. 8,64,1024 or 64,1024")
    p.add_argument("--weight", type=_ints, required=True, help="weight shape, e.g. 64,64,7")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    _add_spec_args(p)
    p.set_defaults(func=cmd_scales)

    g = sub.add_parser("golden", help="regenerate or verify the golden data")
    gsub = g.add_subparsers(dest="golden_command", parser_class=_Parser, required=True)
    r = gsub.add_parser("regen", help="regenerate the golden set (atomically)")
    r.add_argument("--golden", help="golden directory (default: the installed/checked-out set)")
    r.add_argument("--filter", help="only cases whose id matches this glob")
    r.add_argument("--accept-changes", action="store_true", help="overwrite cases whose content changes")
    r.add_argument("-j", "--jobs", type=_int_arg, default=1, help="parallel processes")
    r.set_defaults(func=cmd_golden_regen)
    v = gsub.add_parser("verify", help="check the golden set against its manifest")
    v.add_argument("--golden", help="golden directory (default: the installed/checked-out set)")
    v.add_argument("--recompute", action="store_true", help="also regenerate every case in memory and compare bitwise")
    v.add_argument("-j", "--jobs", type=_int_arg, default=1, help="parallel processes (with --recompute)")
    v.set_defaults(func=cmd_golden_verify)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            raise UsageError("usconv: missing command (try: usconv --help)")
        return args.func(args)
    except (UsageError, ValueError, TypeError, CatalogError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
