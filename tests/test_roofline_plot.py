"""scripts/roofline_plot.py against the benchmark it plots: for every depthwise / grouped row
of the committed benchmark runs, the plot's intensity and achieved FLOP/s, put under its roof,
give back the "% roofline" that scripts/gpu_bench.py recorded for that run (so the plot and the
benchmark use one bound and one byte / FMA count); the SVG lists every row."""
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

roofline_plot = pytest.importorskip("roofline_plot")

RUNS = ROOT / "docs" / "gpu-bench-session11.json"
SESSIONS = ("gpu-bench-session11.json", "gpu-bench-session12.json")


def _roof_tflops(ai, bw_GBs):
    return min(ai * bw_GBs / 1e3, 2 * roofline_plot.FMA_PER_S / 1e12)


@pytest.mark.parametrize("session", SESSIONS)
@pytest.mark.parametrize("run", range(3))
def test_plot_points_reproduce_the_recorded_roofline_share(session, run):
    data = json.loads((ROOT / "docs" / session).read_text())
    one = data["runs"][run]
    pts, bw = roofline_plot.points(one)
    assert bw == one["copy_GBs"]
    by_label = {p["label"]: p for p in pts}
    checked = 0
    for row in one["rows"]:
        p = by_label.get(f"{row['config']} {row['dtype']}")
        if p is None:
            assert row["config"].startswith("dense"), row["config"]  # only the dense rows are left out
            continue
        for kind, key in (("fwd", "cupy_fwd_pct_roofline"), ("fb", "cupy_fb_pct_roofline")):
            share = 100 * p[f"cupy_{kind}"] / _roof_tflops(p[f"ai_{kind}"], bw)
            assert share == pytest.approx(row[key], rel=1e-9), (row["config"], kind)
        checked += 1
    assert checked == 15


def test_svg_lists_every_row(tmp_path):
    out = tmp_path / "roof.svg"
    assert roofline_plot.main([str(RUNS), str(out)]) == 0
    text = out.read_text()
    assert text.startswith("<svg") and text.rstrip().endswith("</svg>")
    pts, _ = roofline_plot.points(json.loads(RUNS.read_text()))
    for i, p in enumerate(pts, 1):
        assert f"{i}: {p['label']}" in text
