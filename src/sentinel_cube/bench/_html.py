"""``bench.html``: the report as a standalone page with plots (bokeh inline, no network).

- the scaling curve: ingest MPix/s against workers, with the ideal linear speed-up from
  one worker and the decode limit of all the benchmark's workers;
- the wall time of every phase, and the peak memory of a worker in each;
- the table, the key ratio, the machine, the cluster and the options.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any

from ..plot._common import holoviews
from ..plot._save import standalone_html
from ._report import table
from ._results import BenchReport

__all__ = ["write_html"]

#: Plot width in pixels.
WIDTH = 720


def write_html(report: BenchReport, path: str | os.PathLike[str]) -> Path:
    """Write the report with its plots to ``path`` (a standalone HTML page)."""
    hv = holoviews()
    layout = hv.Layout([_scaling(report), _seconds(report), _memory(report)]).cols(1)
    page = standalone_html(layout, title="sentinel-cube bench", header=_header(report))
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(page, encoding="utf-8")
    return target


def _scaling(report: BenchReport) -> Any:
    hv = holoviews()
    rows = [r for r in report.scaling() if r["mpix_per_s"] is not None]
    points = [(r["workers"], r["mpix_per_s"]) for r in rows]
    kdims, vdims = (
        [hv.Dimension("workers", label="workers")],
        [hv.Dimension("mpix_per_s", label="MPix/s (output)")],
    )
    most = max((w for w, _ in points), default=1)
    parts = [
        hv.Curve(points, kdims, vdims, label="ingest").opts(line_width=2),
        hv.Scatter(points, kdims, vdims, label="ingest").opts(size=8, tools=["hover"]),
    ]
    one = next((v for w, v in points if w == 1), None)
    if one is not None:
        ideal = [(w, one * w) for w in range(1, most + 1)]
        parts.append(hv.Curve(ideal, kdims, vdims, label="ideal (linear from 1 worker)")
                     .opts(line_dash="dashed", color="gray"))  # fmt: skip
    decode = report.phase("decode")
    if decode is not None and decode.mpix_per_s is not None:
        limit = [(1, decode.mpix_per_s), (most, decode.mpix_per_s)]
        label = f"decode limit ({decode.workers} workers)"
        parts.append(hv.Curve(limit, kdims, vdims, label=label)
                     .opts(line_dash="dotted", color="firebrick", line_width=2))  # fmt: skip
    return hv.Overlay(parts).opts(
        title="Ingest scaling over workers", width=WIDTH, height=360, legend_position="top_left",
        show_grid=True, xticks=[w for w, _ in points] or None, ylim=(0, None),
    )  # fmt: skip


def _label(phase: Any) -> str:
    return f"{phase.name} ({phase.workers} w)" if phase.workers else phase.name


def _seconds(report: BenchReport) -> Any:
    hv = holoviews()
    bars = [(_label(p), p.median) for p in report.phases]
    return hv.Bars(bars, hv.Dimension("phase"), hv.Dimension("seconds", label="seconds")).opts(
        title="Wall time per phase (median over rounds)", width=WIDTH, height=320,
        xrotation=30, tools=["hover"], show_grid=True,
    )  # fmt: skip


def _memory(report: BenchReport) -> Any:
    hv = holoviews()
    bars = [(_label(p), p.peak_mb_max) for p in report.phases if p.peak_mb_max is not None]
    return hv.Bars(bars, hv.Dimension("phase"), hv.Dimension("peak_mb", label="MB")).opts(
        title="Peak resident memory of one worker per phase", width=WIDTH, height=320,
        xrotation=30, tools=["hover"], color="darkorange", show_grid=True,
    )  # fmt: skip


def _header(report: BenchReport) -> str:
    ratios = report.ratios()
    ratio = ratios["ingest_to_decode_limit"]
    key = (
        f"<p><b>Ingest at {ratio:.2f} of the JPEG 2000 decode limit</b> "
        f"({ratios['ingest_mpix_per_s']:.1f} vs {ratios['decode_limit_mpix_per_s']:.1f} "
        "MPix/s of output pixels).</p>"
        if ratio is not None
        else ""
    )
    details = {
        "machine": report.machine,
        "cluster": {k: v for k, v in report.cluster.items() if k != "threads"},
        "cube": report.cube,
        "options": report.options,
    }
    blocks = "".join(
        f"<h3>{html.escape(name)}</h3><pre>{html.escape(json.dumps(value, indent=1, default=str))}"
        "</pre>"
        for name, value in details.items()
    )
    return (
        "<h1>sentinel-cube bench</h1>"
        f"{key}<pre>{html.escape(table(report))}</pre>"
        f"<details><summary>machine, cluster, cube and options</summary>{blocks}</details>"
    )
