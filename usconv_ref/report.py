"""Readable conformance reports: terminal summary, JSON, Markdown and HTML (with a
histogram of err/bound per backend × dtype × tensor)."""
from __future__ import annotations

import html
import json
import math
from pathlib import Path

import numpy as np

from .harness import BackendResult, CaseResult, TensorResult

STATUSES = ("pass", "fail", "error", "known", "skip")


def reproduce_command(res: BackendResult, case_id: str) -> str:
    target = f"--results {res.spec_arg[len('results:'):]}" if res.spec_arg.startswith("results:") else f"--backend '{res.spec_arg}'"
    return f"usconv check {target} --filter '{case_id}'"


def _determinism(res: BackendResult) -> str:
    runs = [c.deterministic for c in res.cases if c.deterministic is not None]
    if not runs:
        return "n/a"
    bad = runs.count(False)
    return f"{len(runs) - bad}/{len(runs)} bitwise" + (" (NOT deterministic)" if bad else "")


def _tensor_line(t: TensorResult) -> str:
    parts = [f"{t.tensor} [{t.cls}]: {t.reason or 'failed'}"]
    if t.failures:
        parts.append(f"{t.failures}/{t.count} elements")
    if t.worst_index != ():
        parts.append(f"worst at {tuple(int(i) for i in t.worst_index)} imp={t.worst_imp!r} ref={t.worst_ref!r}"
                     + (f" err/bound={t.worst_ratio:.3g}" if t.worst_ratio else ""))
    if t.stats is not None and t.stats.failed:
        s = t.stats
        parts.append(f"stats over {s.count}: mean-square {s.mean_square:.3g} (limit {s.mean_square_limit:.3g}), "
                     f"bias {s.bias:.3g} (±{s.bias_limit:.3g}), correlation {s.correlation:.3g} (±{s.correlation_limit:.3g})")
    return "; ".join(parts)


def failure_lines(res: BackendResult, include_known: bool = True) -> list[str]:
    lines = []
    for c in res.cases:
        if c.status in ("fail", "error") or (include_known and c.status == "known"):
            tag = "KNOWN DEVIATION" if c.status == "known" else c.status.upper()
            lines.append(f"{tag} {res.name} {c.case_id} ({c.dtype}){': ' + c.reason if c.reason else ''}")
            for t in c.tensors:
                if t.status == "fail":
                    lines.append("    " + _tensor_line(t))
            lines.append("    reproduce: " + reproduce_command(res, c.case_id))
    for c in res.cases:
        if c.deterministic is False:
            lines.append(f"NOT DETERMINISTIC {res.name} {c.case_id} ({c.dtype}): a second run differs bitwise")
            lines.append("    reproduce: " + reproduce_command(res, c.case_id))
    for p in res.pooled:
        if p.stats.failed:
            s = p.stats
            lines.append(f"FAIL {res.name} pooled {p.dtype}/{p.tensor} [{p.cls}] over {s.count} elements: "
                         f"{', '.join(s.failed)} (mean-square {s.mean_square:.3g} limit {s.mean_square_limit:.3g}; "
                         f"bias {s.bias:.3g} ±{s.bias_limit:.3g}; correlation {s.correlation:.3g} ±{s.correlation_limit:.3g})")
            lines.append("    reproduce: " + reproduce_command(res, "*").replace("--filter '*'", "") .rstrip()
                         + f"  (pooled over every {p.dtype} case)")
    return lines


def summary_table(results: list[BackendResult]) -> str:
    head = ["backend", *STATUSES, "determinism", "pooled stats"]
    rows = []
    for r in results:
        if not r.available:
            rows.append([r.name, "unavailable: " + r.reason] + [""] * (len(head) - 2))
            continue
        c = r.counts()
        pooled_bad = sum(1 for p in r.pooled if p.stats.failed)
        rows.append([r.name] + [str(c.get(s, 0)) for s in STATUSES] + [_determinism(r),
                    f"{len(r.pooled) - pooled_bad}/{len(r.pooled)} ok"])
    avail = [row for row in rows if not row[1].startswith("unavailable")]
    widths = [max([len(h)] + [len(row[i]) for row in avail]) for i, h in enumerate(head)]
    widths[0] = max([widths[0]] + [len(row[0]) for row in rows])
    fmt = lambda row: "  ".join(v.ljust(widths[i]) if i < len(row) else "" for i, v in enumerate(row)).rstrip()
    out = [fmt(head), fmt(["-" * w for w in widths])]
    for row in rows:
        if row[1].startswith("unavailable"):
            out.append(f"{row[0].ljust(widths[0])}  {row[1]}")
        else:
            out.append(fmt(row))
    return "\n".join(out)


def to_json(results: list[BackendResult]) -> dict:
    def stats(s):
        if s is None:
            return None
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in vars(s).items()}

    def tensor(t: TensorResult):
        d = {k: v for k, v in vars(t).items() if k not in ("ratios", "stats")}
        d["worst_index"] = [int(i) for i in t.worst_index]
        for k in ("worst_imp", "worst_ref", "worst_ratio"):
            if isinstance(d[k], float) and not math.isfinite(d[k]):
                d[k] = repr(d[k])
        d["stats"] = stats(t.stats)
        return d

    def case(c: CaseResult):
        return {"case": c.case_id, "dtype": c.dtype, "status": c.status, "reason": c.reason,
                "deterministic": c.deterministic, "seconds": round(c.seconds, 4),
                "tensors": [tensor(t) for t in c.tensors]}

    return {"backends": [{"name": r.name, "argument": r.spec_arg, "description": r.description,
                          "available": r.available, "reason": r.reason, "failed": r.failed if r.available else None,
                          "counts": r.counts(), "determinism": _determinism(r),
                          "cases": [case(c) for c in r.cases],
                          "pooled": [{"dtype": p.dtype, "tensor": p.tensor, "class": p.cls, "stats": stats(p.stats)}
                                     for p in r.pooled]} for r in results]}


def to_markdown(results: list[BackendResult]) -> str:
    lines = ["# usconv conformance report", "", "| backend | " + " | ".join(STATUSES) + " | determinism | description |",
             "|---|" + "---|" * (len(STATUSES) + 2)]
    for r in results:
        if not r.available:
            lines.append(f"| {r.name} | unavailable: {r.reason} |" + " |" * (len(STATUSES) + 1))
            continue
        c = r.counts()
        lines.append(f"| {r.name} | " + " | ".join(str(c.get(s, 0)) for s in STATUSES)
                     + f" | {_determinism(r)} | {r.description} |")
    for r in results:
        fl = failure_lines(r)
        if fl:
            lines += ["", f"## {r.name}: failures and known deviations", "", "```", *fl, "```"]
        skips = [c for c in r.cases if c.status == "skip"]
        if skips:
            lines += ["", f"## {r.name}: skipped", ""] + [f"- {c.case_id}: {c.reason}" for c in skips]
    return "\n".join(lines) + "\n"


def _histogram_svg(ratios: np.ndarray, title: str) -> str:
    """Bars of log2(err/bound) from -24 to 1 (the right end: failures)."""
    r = ratios[np.isfinite(ratios)]
    edges = np.arange(-24, 2)
    counts = np.zeros(len(edges), int)
    if r.size:
        lg = np.where(r > 0, np.log2(np.maximum(r, 1e-300)), -24)
        idx = np.clip(np.floor(lg).astype(int), -24, 1) + 24
        counts = np.bincount(idx, minlength=len(edges))[: len(edges)]
    w, h = 8, 60
    top = max(1, counts.max())
    bars = "".join(
        f'<rect x="{i * w}" y="{h - h * c / top:.1f}" width="{w - 1}" height="{h * c / top:.1f}" '
        f'fill="{"#c33" if edges[i] >= 0 else "#369"}"><title>2^{edges[i]}..2^{edges[i] + 1}: {c}</title></rect>'
        for i, c in enumerate(counts))
    return (f'<figure><svg width="{len(edges) * w}" height="{h}">{bars}</svg>'
            f"<figcaption>{html.escape(title)} — {r.size} elements, log2(err/bound) from -24 to 1</figcaption></figure>")


def to_html(results: list[BackendResult]) -> str:
    md = html.escape(summary_table(results))
    parts = ["<!doctype html><meta charset='utf-8'><title>usconv conformance report</title>",
             "<style>body{font-family:sans-serif;margin:2em} pre{background:#f6f6f6;padding:1em} "
             "figure{display:inline-block;margin:.5em 1em} figcaption{font-size:small}</style>",
             "<h1>usconv conformance report</h1>", f"<pre>{md}</pre>"]
    for r in results:
        if not r.available:
            continue
        parts.append(f"<h2>{html.escape(r.name)}</h2><p>{html.escape(r.description)}</p>")
        groups: dict[tuple, list] = {}
        for c in r.cases:
            for t in c.tensors:
                if t.ratios is not None:
                    groups.setdefault((c.dtype, t.tensor), []).append(t.ratios)
        for (dtype, tensor), rs in sorted(groups.items()):
            parts.append(_histogram_svg(np.concatenate(rs), f"{dtype} {tensor}"))
        fl = failure_lines(r)
        if fl:
            parts.append("<h3>Failures and known deviations</h3><pre>" + html.escape("\n".join(fl)) + "</pre>")
    return "\n".join(parts) + "\n"


def write_report(path: Path, results: list[BackendResult]) -> None:
    """By extension: .json, .md, .html; written to a temporary file, then renamed."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext == ".json":
        text = json.dumps(to_json(results), indent=1, default=str)
    elif ext in (".md", ".markdown"):
        text = to_markdown(results)
    elif ext in (".html", ".htm"):
        text = to_html(results)
    else:
        raise ValueError(f"--report: unknown format {path.suffix!r}; use .json, .md or .html")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
