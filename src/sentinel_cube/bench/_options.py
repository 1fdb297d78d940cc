"""What a benchmark runs on and how: :class:`BenchOptions`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import _cloud
from ..exceptions import SentinelCubeError
from ..testing import ALLOWED_SCALES, BUDAPEST_TILES

__all__ = ["DEFAULT_BANDS", "SKIPPABLE", "BenchOptions"]

#: Bands of the benchmark cube by default: the four 10 m bands.
DEFAULT_BANDS: tuple[str, ...] = ("B02", "B03", "B04", "B08")

#: Phases that may be left out (the plan and the ingest always run).
SKIPPABLE: tuple[str, ...] = ("decode", "clip", "stretch", "aggregate", "scaling")


@dataclass(frozen=True)
class BenchOptions:
    """Options of :func:`~sentinel_cube.bench.run_bench` (the ``sentinel-cube bench`` options).

    Attributes
    ----------
    out : Path
        Folder of the reports (``bench.json``, ``bench.html``), of the default store and
        of the generated archive.
    products
        The products to ingest: anything :func:`~sentinel_cube.open_cube` takes that
        names ``.SAFE`` folders or ``.zip`` products (a products table with a ``path``
        column, paths or URLs). None: a generated archive of ``tiles`` x ``dates`` at
        ``scale`` (:func:`sentinel_cube.testing.make_archive`), made once in
        ``archive_dir`` and reused.
    tiles, dates, scale, archive_dir
        The generated archive: MGRS tiles, number of dates (every 5 days from
        2023-06-01), pixel-size multiplier (1: full 10980 px tiles; a divisor of 1830),
        its folder (default ``out/archive``).
    aoi
        Anything :func:`~sentinel_cube.read_aoi` takes, or None (the products' extent).
    bands, resolution, chunks
        Of :func:`~sentinel_cube.open_cube`; ``resolution`` None: 10 m, or the native
        10 m bands' pixel size of the generated archive (``10 * scale``).
    store : str or Path or None
        Where the cube is written: a folder or an ``s3://`` URL (keys from the
        environment, here and on the workers). None: ``out/bench.zarr``. It is replaced
        at each ingest.
    overwrite : bool
        Allow replacing an existing ``store`` given explicitly.
    scheduler : str or None
        Address of a running dask scheduler; None: a ``LocalCluster`` of ``workers``
        process workers with ``threads_per_worker`` threads each.
    workers : int or None
        Workers to use (the first ones of the cluster); scaling goes 1, 2, 4... up to it.
        None: all workers of the scheduler, or the CPU count for a local cluster.
    connect_timeout : float
        Seconds to wait for the scheduler and its first worker.
    rounds : int
        Rounds of the decode limit and the ingest (medians are reported).
    skip : frozenset of str
        Phases left out, among :data:`SKIPPABLE`.
    """

    out: Path
    products: Any = None
    tiles: tuple[str, ...] = BUDAPEST_TILES
    dates: int = 3
    scale: int = 10
    archive_dir: Path | None = None
    aoi: Any = None
    bands: tuple[str, ...] = DEFAULT_BANDS
    resolution: float | None = None
    chunks: int | None = None
    store: str | Path | None = None
    overwrite: bool = False
    scheduler: str | None = None
    workers: int | None = None
    threads_per_worker: int = 1
    connect_timeout: float = 30.0
    rounds: int = 1
    skip: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        object.__setattr__(self, "out", Path(self.out))
        if self.scale not in ALLOWED_SCALES:
            raise SentinelCubeError(
                f"scale={self.scale} must divide 1830 (e.g. 1 full size, 10, 30, 61 tiny)"
            )
        for name in ("dates", "rounds", "threads_per_worker"):
            if getattr(self, name) < 1:
                raise SentinelCubeError(f"{name}={getattr(self, name)} must be at least 1")
        if self.workers is not None and self.workers < 1:
            raise SentinelCubeError(f"workers={self.workers} must be at least 1")
        unknown = set(self.skip) - set(SKIPPABLE)
        if unknown:
            raise SentinelCubeError(
                f"cannot skip {', '.join(sorted(unknown))}: phases to skip are "
                f"{', '.join(SKIPPABLE)}"
            )
        if not self.bands:
            raise SentinelCubeError("no band given: name at least one (e.g. B04)")

    @property
    def generated(self) -> bool:
        """Whether the products are a generated archive."""
        return self.products is None

    @property
    def store_path(self) -> str | Path:
        """The store to write (``out/bench.zarr`` by default)."""
        return self.out / "bench.zarr" if self.store is None else self.store

    @property
    def cube_resolution(self) -> float:
        """The cube's pixel size in metres."""
        if self.resolution is not None:
            return float(self.resolution)
        return float(10 * self.scale) if self.generated else 10.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready options (URLs without secrets; products as a count)."""
        store = self.store_path
        return {
            "products": "generated" if self.generated else _describe(self.products),
            "tiles": list(self.tiles) if self.generated else None,
            "dates": self.dates if self.generated else None,
            "scale": self.scale if self.generated else None,
            "aoi": _aoi_text(self.aoi),
            "bands": list(self.bands),
            "resolution": self.cube_resolution,
            "chunks": self.chunks,
            "store": _cloud.redact(store) if isinstance(store, str) else str(store),
            "scheduler": self.scheduler or "LocalCluster",
            "workers": self.workers,
            "threads_per_worker": self.threads_per_worker if self.scheduler is None else None,
            "rounds": self.rounds,
            "skip": sorted(self.skip),
        }


def _describe(products: Any) -> str:
    try:
        return f"{len(products)} products"
    except TypeError:
        return type(products).__name__


def _aoi_text(aoi: Any) -> Any:
    if aoi is None or isinstance(aoi, str | Path):
        return None if aoi is None else str(aoi)
    if isinstance(aoi, tuple | list):
        return [float(v) for v in aoi]
    return getattr(aoi, "wkt", type(aoi).__name__)
