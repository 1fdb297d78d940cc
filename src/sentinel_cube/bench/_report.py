"""A benchmark's report as a text table and as ``bench.json``."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ._results import BenchReport, Phase

__all__ = ["COLUMNS", "table", "write_json"]

#: The table's columns.
COLUMNS = ("phase", "workers", "seconds", "MPix/s", "x decode limit", "peak MB/worker", "tasks")


def table(report: BenchReport) -> str:
    """The measurements as a plain-text table, one row per phase, then the notes.

    ``seconds`` are medians over the rounds; ``MPix/s`` counts output pixels (the
    decode limit's decoded pixels follow in brackets); ``x decode limit`` is the
    ingest's MPix/s over the decode limit's; ``peak MB/worker`` the largest peak
    resident memory of one worker.
    """
    rows = [list(COLUMNS)] + [_row(p) for p in report.phases]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = []
    for n, row in enumerate(rows):
        cells = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in
                 enumerate(zip(row, widths, strict=True))]  # fmt: skip
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.extend(f"note: {note}" for note in report.notes)
    return "\n".join(lines)


def _row(phase: Phase) -> list[str]:
    rate = phase.mpix_per_s
    rate_text = "" if rate is None else f"{rate:.1f}"
    if phase.source_mpix_per_s is not None:
        rate_text += f" ({phase.source_mpix_per_s:.1f} decoded)"
    peak = phase.peak_mb_max
    return [
        phase.name,
        str(phase.workers) if phase.workers else "client",
        f"{phase.median:.2f}",
        rate_text,
        "" if phase.ratio is None else f"{phase.ratio:.2f}",
        "" if peak is None else f"{peak:.0f}",
        "" if phase.tasks is None else str(phase.tasks),
    ]


def write_json(report: BenchReport, path: str | os.PathLike[str]) -> Path:
    """Write ``bench.json``: machine, versions, cluster, options, every phase, the ratios."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(report.as_dict(), indent=1, default=str) + "\n", "utf-8")
    return target
