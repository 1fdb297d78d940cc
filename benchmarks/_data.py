"""Synthetic archives shared by the benchmarks, generated once and cached on disk.

Environment variables
---------------------
``SENTINEL_CUBE_BENCH_SCALE``
    Pixel size multiplier of :func:`sentinel_cube.testing.make_archive` (default 10:
    1098 x 1098 px 10 m bands; 1 is full size, 61 is tiny). Must divide 1830.
``SENTINEL_CUBE_BENCH_DIR``
    Cache folder (default ``$XDG_CACHE_HOME/sentinel_cube/bench`` or
    ``~/.cache/sentinel_cube/bench``).

Every archive lives in its own folder named after a hash of its parameters. It is
generated in a hidden temporary folder and renamed into place when complete, so an
interrupted generation is never reused (its leftovers are removed on the next call):
see :func:`sentinel_cube.bench.cached_archive`, which ``sentinel-cube bench`` uses too.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sentinel_cube.bench import archive_dates

__all__ = [
    "INGEST_BANDS",
    "INGEST_DATES",
    "LARGE_TILES",
    "Archive",
    "bench_dir",
    "bench_scale",
    "beside",
    "catalog_archive",
    "get_archive",
    "ingest_archive",
    "ingest_store",
    "large_archive",
    "metadata_scale",
    "product_archive",
    "read_archive",
]

SCALE_ENV = "SENTINEL_CUBE_BENCH_SCALE"
DIR_ENV = "SENTINEL_CUBE_BENCH_DIR"
DEFAULT_SCALE = 10
#: Bands of the ingest benchmarks: the four 10 m bands.
INGEST_BANDS: tuple[str, ...] = ("B02", "B03", "B04", "B08")
#: Relative orbit 79 passes over Budapest, every 5 days from 2023-06-01 (S2B, then S2A).
INGEST_DATES: tuple[str, ...] = archive_dates(40)

#: Four tiles across the UTM zone 33/34 boundary (18 deg E) at Budapest's latitude, west
#: to east: 33TXN and 33TYN in zone 33, the two Budapest tiles in zone 34.
LARGE_TILES: tuple[str, ...] = ("33TXN", "33TYN", "34TCT", "34TDT")


def bench_scale() -> int:
    """The archive scale from ``SENTINEL_CUBE_BENCH_SCALE`` (default 10)."""
    return int(os.environ.get(SCALE_ENV, DEFAULT_SCALE))


def metadata_scale() -> int:
    """Scale of archives whose pixels are never read: the bench scale, but at most 10 m x 10.

    Metadata benchmarks do not depend on the pixel count, so a full-size run
    (scale 1) does not spend minutes generating pixels nobody reads.
    """
    return max(bench_scale(), DEFAULT_SCALE)


def bench_dir() -> Path:
    """The cache folder of generated archives."""
    explicit = os.environ.get(DIR_ENV)
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "sentinel_cube" / "bench"


@dataclass(frozen=True)
class Archive:
    """A generated archive: its folder and its product paths in spec order."""

    root: Path
    paths: tuple[Path, ...]
    tiles: tuple[str, ...]
    dates: tuple[str, ...]
    bands: tuple[str, ...] | None
    scale: int

    def products_of(self, tile: str | None = None, dates: int | None = None) -> list[Path]:
        """Paths of one tile (or all) for the first ``dates`` dates (or all)."""
        keep_dates = set(self.dates[:dates] if dates else self.dates)
        chosen = []
        for path in self.paths:
            name = path.name  # S2B_MSIL2A_20230601T094549_N0509_R079_T34TCT_...
            day = dt.datetime.strptime(name.split("_")[2][:8], "%Y%m%d").date().isoformat()
            if day in keep_dates and (tile is None or f"_T{tile}_" in name):
                chosen.append(path)
        return chosen


def get_archive(
    name: str,
    *,
    tiles: Sequence[str],
    dates: Sequence[str],
    bands: Sequence[str] | None,
    scale: int,
    zipped: bool = False,
    all_resolutions: bool = False,
) -> Archive:
    """Return the cached archive of these parameters, generating it first if needed."""
    from sentinel_cube.bench import cached_archive

    try:
        root, paths = cached_archive(
            bench_dir(), name, tiles=tiles, dates=dates, bands=bands, scale=scale,
            zipped=zipped, all_resolutions=all_resolutions,
        )  # fmt: skip
    except ValueError as error:
        raise ValueError(f"{SCALE_ENV}={scale}: {error}") from None
    return Archive(
        root, paths, tuple(tiles), tuple(dates), None if bands is None else list(bands),
        int(scale),
    )  # fmt: skip


def ingest_archive(dates: int = 3, scale: int | None = None) -> Archive:
    """Both Budapest tiles x ``dates`` dates x the four 10 m bands (the ingest benchmarks)."""
    from sentinel_cube.testing import BUDAPEST_TILES

    return get_archive(
        "ingest",
        tiles=BUDAPEST_TILES,
        dates=INGEST_DATES[:dates],
        bands=INGEST_BANDS,
        scale=bench_scale() if scale is None else scale,
    )


def large_archive(
    tiles: Sequence[str] = LARGE_TILES, dates: int = 10, scale: int | None = None
) -> Archive:
    """``tiles`` (default :data:`LARGE_TILES`) x ``dates`` dates x the four 10 m bands."""
    return get_archive(
        "large",
        tiles=tuple(tiles),
        dates=INGEST_DATES[:dates],
        bands=INGEST_BANDS,
        scale=bench_scale() if scale is None else scale,
    )


def ingest_store(dates: int = 3, units: str = "reflectance", scale: int | None = None) -> Path:
    """The cube of :func:`ingest_archive` (both tiles, four bands) in a Zarr store.

    Written once by :func:`sentinel_cube.to_zarr` (its default codec and the cube's
    default chunks) beside the archive, for the benchmarks that read a cube back.
    """
    archive = ingest_archive(dates=dates, scale=scale)

    def write(folder: Path) -> None:
        import dask

        import sentinel_cube as sc

        cube = sc.open_cube(archive.products_of(dates=dates), bands=list(INGEST_BANDS),
                            resolution=10 * archive.scale, units=units)  # fmt: skip
        with dask.config.set(scheduler="threads"):
            sc.to_zarr(cube, folder / "cube.zarr", mode="w", progress=False)

    return beside(archive, f"zarr-{units}-d{dates}", write) / "cube.zarr"


def beside(archive: Archive, suffix: str, make: Callable[[Path], None]) -> Path:
    """Folder ``<archive>-<suffix>``, filled once by ``make(folder)`` and then reused.

    ``make`` fills a hidden folder that is renamed into place when it returns, so an
    interrupted run is redone (its leftovers are removed like an archive's).
    """
    from sentinel_cube.bench import build_once

    return build_once(archive.root.with_name(f"{archive.root.name}-{suffix}"), make)


def read_archive(scale: int | None = None) -> Archive:
    """One product of tile 34TCT with band B04 (10 m): the down-sampling read benchmarks."""
    return get_archive(
        "read",
        tiles=("34TCT",),
        dates=INGEST_DATES[:1],
        bands=("B04",),
        scale=bench_scale() if scale is None else scale,
    )


def catalog_archive(n_dates: int = 20) -> Archive:
    """Both Budapest tiles x ``n_dates`` dates (40 products by default), band B04 only."""
    from sentinel_cube.testing import BUDAPEST_TILES

    return get_archive(
        "catalog",
        tiles=BUDAPEST_TILES,
        dates=INGEST_DATES[:n_dates],
        bands=("B04",),
        scale=metadata_scale(),
    )


def product_archive(zipped: bool) -> Archive:
    """One complete L2A product (every band at 10, 20 and 60 m, as ESA ships), folder or zip."""
    return get_archive(
        "product-zip" if zipped else "product",
        tiles=("34TCT",),
        dates=INGEST_DATES[:1],
        bands=None,
        scale=metadata_scale(),
        zipped=zipped,
        all_resolutions=True,
    )
