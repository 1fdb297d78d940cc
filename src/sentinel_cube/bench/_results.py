"""What a benchmark measured: one :class:`Phase` per measured step, and the whole run."""

from __future__ import annotations

import os
import platform
import statistics
import sys
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

__all__ = ["BenchReport", "Phase", "machine_info", "versions"]


@dataclass
class Phase:
    """One measured step, over one or more rounds.

    Attributes
    ----------
    name : str
        Its label in the table (``"decode limit"``, ``"ingest"``, ``"ingest, 1 worker"``...).
    kind : str
        ``"decode"``, ``"plan"``, ``"ingest"``, ``"scaling"``, ``"clip"``, ``"stretch"``
        or ``"aggregate"``.
    workers : int
        Workers it ran on (0 for the client-side planning).
    seconds : list of float
        Wall time of each round.
    pixels : int or None
        Output pixels (time x band x y x x) it produced, or read for the operations.
    source_pixels : int or None
        JPEG 2000 pixels decoded (the decode limit only).
    tasks : int or None
        Dask tasks (the graph's size for the plan, tasks run otherwise).
    peak_mb : dict
        Peak resident memory of each worker over the rounds, in MB, by worker address.
    tasks_per_worker : dict
        Tasks each worker ran (last round), by worker address.
    ratio : float or None
        MPix/s over the decode limit's MPix/s (same output pixels): the share of the
        decode limit an ingest reaches.
    """

    name: str
    kind: str
    workers: int
    seconds: list[float] = field(default_factory=list)
    pixels: int | None = None
    source_pixels: int | None = None
    tasks: int | None = None
    peak_mb: dict[str, float] = field(default_factory=dict)
    tasks_per_worker: dict[str, int] = field(default_factory=dict)
    ratio: float | None = None

    @property
    def median(self) -> float:
        """Median wall time over the rounds."""
        return statistics.median(self.seconds)

    @property
    def mpix_per_s(self) -> float | None:
        """Output megapixels per second (median time)."""
        if self.pixels is None or not self.median > 0:
            return None
        return self.pixels / 1e6 / self.median

    @property
    def source_mpix_per_s(self) -> float | None:
        """Decoded megapixels per second (median time)."""
        if self.source_pixels is None or not self.median > 0:
            return None
        return self.source_pixels / 1e6 / self.median

    @property
    def peak_mb_max(self) -> float | None:
        """The largest peak over the workers."""
        return max(self.peak_mb.values()) if self.peak_mb else None

    def record(self, seconds: float, uses: dict[str, Any] | None = None) -> None:
        """Add a round: its wall time and, per worker, its peak memory and tasks run."""
        self.seconds.append(seconds)
        for address, use in (uses or {}).items():
            self.peak_mb[address] = max(self.peak_mb.get(address, 0.0), use.peak_mb)
            self.tasks_per_worker[address] = use.tasks

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        return {
            "name": self.name,
            "kind": self.kind,
            "workers": self.workers,
            "seconds": self.median,
            "seconds_rounds": list(self.seconds),
            "mpix": None if self.pixels is None else self.pixels / 1e6,
            "mpix_per_s": self.mpix_per_s,
            "source_mpix": None if self.source_pixels is None else self.source_pixels / 1e6,
            "source_mpix_per_s": self.source_mpix_per_s,
            "ratio_to_decode_limit": self.ratio,
            "tasks": self.tasks,
            "tasks_per_worker": dict(self.tasks_per_worker),
            "peak_mb_per_worker": {a: round(v, 1) for a, v in self.peak_mb.items()},
            "peak_mb": self.peak_mb_max,
        }


@dataclass
class BenchReport:
    """A whole benchmark run: where, what, and every measurement."""

    options: dict[str, Any]
    cube: dict[str, Any] = field(default_factory=dict)
    cluster: dict[str, Any] = field(default_factory=dict)
    phases: list[Phase] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def phase(self, kind: str) -> Phase | None:
        """The first phase of ``kind``, or None."""
        return next((p for p in self.phases if p.kind == kind), None)

    def scaling(self) -> list[dict[str, Any]]:
        """The ingest at each worker count: MPix/s, speed-up and efficiency over 1 worker."""
        runs = sorted(
            (p for p in self.phases if p.kind in ("ingest", "scaling")), key=lambda p: p.workers
        )
        one = next((p.mpix_per_s for p in runs if p.workers == 1), None)
        rows = []
        for p in runs:
            speedup = p.mpix_per_s / one if one and p.mpix_per_s else None
            rows.append({
                "workers": p.workers,
                "seconds": p.median,
                "mpix_per_s": p.mpix_per_s,
                "speedup": speedup,
                "efficiency": speedup / p.workers if speedup else None,
            })  # fmt: skip
        return rows

    def ratios(self) -> dict[str, float | None]:
        """The key figures: the ingest's share of the decode limit, and the decode speed."""
        decode, ingest = self.phase("decode"), self.phase("ingest")
        return {
            "ingest_to_decode_limit": ingest.ratio if ingest else None,
            "decode_limit_mpix_per_s": decode.mpix_per_s if decode else None,
            "decode_limit_source_mpix_per_s": decode.source_mpix_per_s if decode else None,
            "ingest_mpix_per_s": ingest.mpix_per_s if ingest else None,
        }

    def as_dict(self) -> dict[str, Any]:
        """The JSON document of ``bench.json``."""
        return {
            "format": 1,
            "machine": self.machine,
            "versions": versions(),
            "cluster": self.cluster,
            "options": self.options,
            "cube": self.cube,
            "ratios": self.ratios(),
            "phases": [p.as_dict() for p in self.phases],
            "scaling": self.scaling(),
            "notes": list(self.notes),
        }


def machine_info() -> dict[str, Any]:
    """This machine (the client's): OS, CPU, memory and the current load."""
    import psutil

    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "host": platform.node(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "memory_mb": round(psutil.virtual_memory().total / 1e6),
        "python": sys.version.split()[0],
        "load_average": None if load is None else [round(v, 2) for v in load],
    }


#: Libraries whose versions a report gives.
LIBRARIES = ("dask", "distributed", "numpy", "xarray", "zarr", "rasterio", "s3fs")


def versions() -> dict[str, str | None]:
    """Versions of sentinel_cube, GDAL and the libraries that do the work (this process)."""
    from .. import __version__
    from ._decode import gdal_version

    found: dict[str, str | None] = {"sentinel_cube": __version__, "gdal": gdal_version()}
    for name in LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found
