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
interrupted generation is never reused (its leftovers are removed on the next call).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "INGEST_BANDS",
    "INGEST_DATES",
    "Archive",
    "bench_dir",
    "bench_scale",
    "beside",
    "catalog_archive",
    "get_archive",
    "ingest_archive",
    "ingest_store",
    "metadata_scale",
    "product_archive",
    "read_archive",
]

SCALE_ENV = "SENTINEL_CUBE_BENCH_SCALE"
DIR_ENV = "SENTINEL_CUBE_BENCH_DIR"
DEFAULT_SCALE = 10
#: Bump when the generator's output changes so old cached archives are not reused.
FORMAT = 1

#: Bands of the ingest benchmarks: the four 10 m bands.
INGEST_BANDS: tuple[str, ...] = ("B02", "B03", "B04", "B08")
#: Relative orbit 79 passes over Budapest, every 5 days from 2023-06-01 (S2B, then S2A).
INGEST_DATES: tuple[str, ...] = tuple(
    (dt.date(2023, 6, 1) + dt.timedelta(days=5 * i)).isoformat() for i in range(40)
)


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
    from sentinel_cube.testing import ALLOWED_SCALES, default_specs, make_archive

    if scale not in ALLOWED_SCALES:
        raise ValueError(f"{SCALE_ENV}={scale} must divide 1830 (e.g. 1, 10, 30, 61)")
    params = {
        "format": FORMAT,
        "tiles": list(tiles),
        "dates": list(dates),
        "bands": None if bands is None else list(bands),
        "scale": int(scale),
        "zipped": bool(zipped),
        "all_resolutions": bool(all_resolutions),
    }
    digest = hashlib.sha1(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]
    parent = bench_dir()
    final = parent / f"{name}-s{scale}-{digest}"
    specs = default_specs(tiles=tuple(tiles), dates=tuple(dates), partial=None)
    suffix = ".zip" if zipped else ".SAFE"
    paths = tuple(final / f"{spec.name}{suffix}" for spec in specs)
    if not (final / "archive.json").exists():
        parent.mkdir(parents=True, exist_ok=True)
        _remove_stale(parent)
        work = Path(tempfile.mkdtemp(prefix=f".{final.name}.{os.getpid()}.", dir=parent))
        try:
            make_archive(
                work, specs, scale=scale, bands=bands, zipped=zipped,
                all_resolutions=all_resolutions,
            )  # fmt: skip
            (work / "archive.json").write_text(json.dumps(params, indent=1), encoding="utf-8")
            try:
                os.replace(work, final)
            except OSError:  # another process finished the same archive first
                if not (final / "archive.json").exists():
                    raise
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return Archive(final, paths, tuple(tiles), tuple(dates), params["bands"], int(scale))


def _remove_stale(parent: Path) -> None:
    """Delete temporary folders left by generations whose process is gone."""
    for entry in parent.glob(".*.*.*"):
        try:
            pid = int(entry.name.rsplit(".", 2)[-2])
        except (ValueError, IndexError):
            continue
        if not _alive(pid):
            shutil.rmtree(entry, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
    final = archive.root.with_name(f"{archive.root.name}-{suffix}")
    if (final / "done").exists():
        return final
    _remove_stale(final.parent)
    work = Path(tempfile.mkdtemp(prefix=f".{final.name}.{os.getpid()}.", dir=final.parent))
    try:
        make(work)
        (work / "done").write_text("ok", encoding="utf-8")
        shutil.rmtree(final, ignore_errors=True)
        os.replace(work, final)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return final


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
