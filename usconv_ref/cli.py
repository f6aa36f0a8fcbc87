"""The ``usconv`` command line (SPEC §12).

Exit status: 0 success; 1 a conformance failure / verification mismatch / refused regen;
2 bad usage or bad input (one line on stderr, no traceback).
"""
from __future__ import annotations

import argparse
import json
import sys

from pathlib import Path

from .golden import CatalogError, GoldenError
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
    try:
        rep = regen(golden, args.filter, args.accept_changes, args.jobs, progress_printer())
    except GoldenError as exc:
        print(f"golden regen refused: {exc}", file=sys.stderr)
        return 1
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


def _cases(golden: Path, pattern: str | None):
    from .golden import read_catalog
    import fnmatch
    cases = read_catalog(golden)
    if pattern:
        cases = [c for c in cases if fnmatch.fnmatchcase(c.id, pattern)]
        if not cases:
            raise UsageError(f"--filter {pattern!r} matches no case of {golden / 'catalog.json'}")
    return cases


def cmd_check(args) -> int:
    import backends
    from .golden import progress_printer
    from .harness import check_backend
    from .report import failure_lines, summary_table, write_report
    golden = _golden_dir(args)
    if args.report:
        ext = Path(args.report).suffix.lower()
        if ext not in (".json", ".md", ".markdown", ".html", ".htm"):
            raise UsageError(f"--report: unknown format {ext!r}; use .json, .md or .html")
    cases = _cases(golden, args.filter)
    targets = []  # (argument, backend or None, reason)
    try:
        for arg in args.backend or []:
            name, opts = backends.parse_backend_arg(arg)
            b = backends.get(name, **opts)
            ok, why = b.availability()
            if not ok:
                raise UsageError(f"backend {arg!r} is unavailable: {why}")
            targets.append((arg, b))
        from backends.results import ResultsBackend
        for d in args.results or []:
            targets.append((f"results:{d}", ResultsBackend(d)))
    except backends.BackendError as exc:
        raise UsageError(str(exc)) from None
    unavailable = []
    if not targets:
        for name in backends.known_names():
            try:
                b = backends.get(name)
            except backends.BackendError as exc:
                unavailable.append((name, str(exc)))
                continue
            ok, why = b.availability()
            if ok:
                targets.append((name, b))
            else:
                unavailable.append((name, why))
    results = []
    prog = progress_printer() if not args.quiet else None
    for arg, b in targets:
        try:
            results.append(check_backend(b, arg, cases, golden, determinism=not args.no_determinism, progress=prog,
                                         keep_ratios=bool(args.report)))
        except backends.BackendError as exc:  # e.g. a precision.json without a class for a dtype
            raise UsageError(str(exc)) from None
    for name, why in unavailable:
        from .harness import BackendResult
        results.append(BackendResult(name, name, "", False, why))
    print(f"golden set {golden}: {len(cases)} cases")
    print(summary_table(results))
    lines = [l for r in results if r.available for l in failure_lines(r)]
    if lines:
        print()
        print("\n".join(lines))
    if args.report:
        write_report(Path(args.report), results)
        print(f"report written to {args.report}")
    idle = [r.name for r in results if r.available and not any(c.status in ("pass", "fail", "error", "known")
                                                                  for c in r.cases)]
    for name in idle:
        print(f"{name}: no case was judged (all skipped) — that is not a conformance result", file=sys.stderr)
    return 1 if any(r.available and r.failed for r in results) or idle else 0


def cmd_backends(args) -> int:
    import backends
    from .spec import Conv1dSpec
    rows = []
    for name in backends.known_names():
        try:
            b = backends.get(name)
            ok, why = b.availability()
        except backends.BackendError as exc:
            ok, why, b = False, str(exc), None
        if not ok:
            rows.append((name, "unavailable", why, ""))
            continue
        caps = b.capabilities()
        spec = Conv1dSpec()
        classes = sorted({b.precision(d, t, spec).name for d in sorted(caps.dtypes) for t in ("y", "grad_x", "grad_w", "grad_b")})
        rows.append((name, "available", ", ".join(sorted(caps.dtypes)), "; ".join(classes)))
    w0 = max(len(r[0]) for r in rows)
    for name, state, what, classes in rows:
        print(f"{name.ljust(w0)}  {state:<11}  {what}" + (f"\n{' ' * (w0 + 15)}classes: {classes}" if classes else ""))
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

    c = sub.add_parser("check", help="judge backends (or a port's result files) against the golden set")
    c.add_argument("--backend", action="append", help="NAME, NAME[key=value,...], entry point or pkg.module:Class; repeatable")
    c.add_argument("--results", action="append", help="a port's result directory (see README); repeatable")
    c.add_argument("--golden", help="golden directory (default: the installed/checked-out set)")
    c.add_argument("--filter", help="only cases whose id matches this glob")
    c.add_argument("--report", help="write a report: .json, .md or .html")
    c.add_argument("--no-determinism", action="store_true", help="skip the second run of each case")
    c.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    c.set_defaults(func=cmd_check)

    bk = sub.add_parser("backends", help="every known backend: available or why not, dtypes, precision classes")
    bk.set_defaults(func=cmd_backends)
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
