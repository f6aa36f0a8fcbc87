#!/usr/bin/env python
"""Roofline plot (SVG, no plotting library) of the depthwise and grouped rows of
``scripts/gpu_bench.py``'s JSON output: arithmetic intensity (real fp32 FLOPs per byte of the
benchmark's floor: x read and y written; fwd+bwd also grad_y and x read and grad_x written) against
achieved TFLOP/s, for the CuPy kernels and torch, forward and forward+backward, under the roof
``min(copy bandwidth x intensity, 2 x FMA_PER_S)`` (the bound behind gpu_bench's "% roofline").
With several runs (``{"runs": [...]}``) each point is the median over the runs.

    python scripts/roofline_plot.py docs/gpu-bench-session11.json docs/gpu-roofline-session11.svg
"""
from __future__ import annotations

import json
import math
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gpu_bench import CONFIGS, FMA_PER_S  # noqa: E402
from gpu_bench import work as gpu_bench_work  # noqa: E402
from usconv_ref.spec import Conv1dSpec, resolve_geometry  # noqa: E402

ITEM = {"float32": 4, "float16": 2, "bfloat16": 2, "complex64": 8}
W, H, X0, Y0, PW, PH = 980, 560, 70, 30, 560, 470  # canvas; plot area origin and size
AI_RANGE, TF_RANGE = (0.1, 1000.0), (0.1, 100.0)


def work(name: str, dtype: str):
    """``(bytes_fwd, bytes_fb, fmas)`` of a benchmark row (gpu_bench.work; None for the dense
    rows and unknown configs)."""
    for cname, N, Ci, Co, L, K, G, dt, kw, bwd in CONFIGS:
        if cname == name and dt == dtype and bwd:
            kw = {k: v for k, v in kw.items() if k != "tf32"}
            geo = resolve_geometry((N, Ci, L), (Co, Ci // G, K), None, Conv1dSpec(groups=G, **kw))
            return gpu_bench_work(N, Ci, Co, L, geo.L_out, K, G, ITEM[dt], dt == "complex64")
    return None


def points(data: dict):
    """Per depthwise / grouped row: label, intensity fwd / fb, TFLOP/s of cupy and torch, fwd / fb
    (medians over the runs), and the median copy bandwidth (GB/s)."""
    runs = data["runs"] if "runs" in data else [data]
    bw = statistics.median(r["copy_GBs"] for r in runs)
    out = []
    for row in runs[0]["rows"]:
        w = work(row["config"], row["dtype"])
        if w is None:
            continue
        b_fwd, b_fb, fmas = w
        same = [next(x for x in r["rows"] if (x["config"], x["dtype"]) == (row["config"], row["dtype"])) for r in runs]
        med = lambda key: statistics.median(x[key] for x in same)  # noqa: E731
        flop_fwd, flop_fb = 2 * fmas, 6 * fmas  # the backward: grad_x and grad_w, each as many FMAs
        out.append(dict(label=f"{row['config']} {row['dtype']}",
                        ai_fwd=flop_fwd / b_fwd, ai_fb=flop_fb / b_fb,
                        cupy_fwd=flop_fwd / med("cupy_fwd_ms") / 1e9, torch_fwd=flop_fwd / med("torch_fwd_ms") / 1e9,
                        cupy_fb=flop_fb / med("cupy_fb_ms") / 1e9, torch_fb=flop_fb / med("torch_fb_ms") / 1e9))
    return out, bw


def _x(ai: float) -> float:
    lo, hi = (math.log10(v) for v in AI_RANGE)
    return X0 + PW * (math.log10(ai) - lo) / (hi - lo)


def _y(tf: float) -> float:
    lo, hi = (math.log10(v) for v in TF_RANGE)
    return Y0 + PH - PH * (math.log10(min(max(tf, TF_RANGE[0]), TF_RANGE[1])) - lo) / (hi - lo)


def svg(pts: list, bw_GBs: float, title: str) -> str:
    peak = 2 * FMA_PER_S / 1e12  # TFLOP/s
    e = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="11">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<text x="{X0}" y="18" font-size="13">{title}</text>']
    for d in range(-1, 4):  # grid and tick labels
        x = _x(10.0**d)
        e.append(f'<line x1="{x:.1f}" y1="{Y0}" x2="{x:.1f}" y2="{Y0 + PH}" stroke="#ddd"/>')
        e.append(f'<text x="{x:.1f}" y="{Y0 + PH + 15}" text-anchor="middle">{10.0**d:g}</text>')
    for d in range(-1, 3):
        y = _y(10.0**d)
        e.append(f'<line x1="{X0}" y1="{y:.1f}" x2="{X0 + PW}" y2="{y:.1f}" stroke="#ddd"/>')
        e.append(f'<text x="{X0 - 6}" y="{y + 4:.1f}" text-anchor="end">{10.0**d:g}</text>')
    e.append(f'<rect x="{X0}" y="{Y0}" width="{PW}" height="{PH}" fill="none" stroke="black"/>')
    e.append(f'<text x="{X0 + PW / 2}" y="{Y0 + PH + 32}" text-anchor="middle">arithmetic intensity (FLOP per byte of the floor)</text>')
    e.append(f'<text transform="translate(18,{Y0 + PH / 2}) rotate(-90)" text-anchor="middle">TFLOP/s (real fp32)</text>')
    knee = peak / (bw_GBs / 1e3)  # FLOP/B where the roofs meet
    roof = [(AI_RANGE[0], AI_RANGE[0] * bw_GBs / 1e3), (knee, peak), (AI_RANGE[1], peak)]
    e.append('<polyline fill="none" stroke="black" stroke-width="2" points="'
             + " ".join(f"{_x(a):.1f},{_y(t):.1f}" for a, t in roof) + '"/>')
    slope = math.degrees(math.atan((PH / math.log10(TF_RANGE[1] / TF_RANGE[0]))
                                   / (PW / math.log10(AI_RANGE[1] / AI_RANGE[0]))))  # the bandwidth roof's angle on screen
    lx0, ly0 = _x(0.3), _y(0.3 * bw_GBs / 1e3) - 8
    e.append(f'<text x="{lx0:.1f}" y="{ly0:.1f}" transform="rotate({-slope:.1f} {lx0:.1f} {ly0:.1f})">'
             f'copy bandwidth {bw_GBs / 1e3:.2f} TB/s</text>')
    e.append(f'<text x="{_x(knee) + 6:.1f}" y="{_y(peak) - 6:.1f}">fp32 FMA peak {peak:.0f} TFLOP/s</text>')
    for i, p in enumerate(pts, 1):
        for kind, ai, dy in (("fwd", p["ai_fwd"], 0), ("fb", p["ai_fb"], 0)):
            x = _x(ai)
            yc, yt = _y(p[f"cupy_{kind}"]), _y(p[f"torch_{kind}"])
            e.append(f'<line x1="{x:.1f}" y1="{yt:.1f}" x2="{x:.1f}" y2="{yc:.1f}" stroke="#bbb"/>')
            if kind == "fwd":
                e.append(f'<circle cx="{x:.1f}" cy="{yc:.1f}" r="4" fill="#1f5fbf"/>')
                e.append(f'<circle cx="{x:.1f}" cy="{yt:.1f}" r="4" fill="none" stroke="#1f5fbf"/>')
            else:
                tri = lambda y: f"{x:.1f},{y - 5:.1f} {x - 4.5:.1f},{y + 3.5:.1f} {x + 4.5:.1f},{y + 3.5:.1f}"  # noqa: E731
                e.append(f'<polygon points="{tri(yc)}" fill="#c0392b"/>')
                e.append(f'<polygon points="{tri(yt)}" fill="none" stroke="#c0392b"/>')
            e.append(f'<text x="{x + 6:.1f}" y="{yc + 4:.1f}" font-size="9">{i}</text>')
    lx, ly = X0 + PW + 20, Y0 + 10
    legend = [("circle", "#1f5fbf", True, "CuPy forward"), ("circle", "#1f5fbf", False, "torch forward"),
              ("tri", "#c0392b", True, "CuPy forward+backward"), ("tri", "#c0392b", False, "torch forward+backward")]
    for k, (shape, col, fill, text) in enumerate(legend):
        y = ly + 16 * k
        f = col if fill else "none"
        if shape == "circle":
            e.append(f'<circle cx="{lx + 5}" cy="{y}" r="4" fill="{f}" stroke="{col}"/>')
        else:
            e.append(f'<polygon points="{lx + 5},{y - 5} {lx + 0.5},{y + 3.5} {lx + 9.5},{y + 3.5}" fill="{f}" stroke="{col}"/>')
        e.append(f'<text x="{lx + 16}" y="{y + 4}">{text}</text>')
    for i, p in enumerate(pts, 1):
        e.append(f'<text x="{lx}" y="{ly + 16 * len(legend) + 8 + 15 * i}">{i}: {p["label"]}</text>')
    e.append("</svg>")
    return "\n".join(e) + "\n"


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    data = json.loads(Path(argv[0]).read_text())
    pts, bw = points(data)
    n = len(data["runs"]) if "runs" in data else 1
    Path(argv[1]).write_text(svg(pts, bw, f"Depthwise and grouped conv1d on the H100: roofline ({Path(argv[0]).name}, median of {n} run(s))"))
    for i, p in enumerate(pts, 1):
        print(f"{i:2d} {p['label']:44s} AI fwd {p['ai_fwd']:6.2f} fb {p['ai_fb']:6.2f} FLOP/B; TFLOP/s cupy "
              f"{p['cupy_fwd']:6.2f} / {p['cupy_fb']:6.2f}, torch {p['torch_fwd']:6.2f} / {p['torch_fb']:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
