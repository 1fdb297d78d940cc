"""Zarr v3 cube stores: write, append, resume after interruption, open.

Layout: an xarray-compatible Zarr v3 group (the cube as one data variable with
``time``/``band``/``y``/``x`` and every metadata coordinate, the CF grid mapping in
``spatial_ref``) plus a ``_sentinel_cube`` sub-group whose attributes are the
*ledger*: the committed time steps as ``[slot, time in ns since 1970-01-01]``
pairs. Any Zarr reader opens the store; :func:`open_zarr` shows only what the
ledger lists.

What the store guarantees, and how:

- **Times are encoded explicitly**, as int64 nanoseconds since 1970-01-01 (UTC),
  fixed at creation: acquisitions at any time of day append exactly (xarray
  would otherwise pick units from the first write that later times cannot use).
- **Creation is atomic**: the empty store (metadata, coordinates, an empty
  ledger) is built in a hidden sibling folder and renamed into place, so a kill
  leaves either no store or a complete, empty one. Of two concurrent creators,
  the second to rename appends to the first's store.
- **One writer at a time**: every write holds the store's lock
  (:mod:`sentinel_cube._store_lock`), which names its holder and frees itself
  when the holder dies.
- **A step is visible only once all its chunks are written**: slot coordinates,
  then chunks, then the ledger entry. Zarr's local store writes each file
  atomically (a temporary file renamed into place, zarr >= 3.1.3), so a kill at
  any moment leaves complete files; the ledger is one file.
- **Slots derive from the ledger alone**: a slot that the ledger does not list
  is free, whatever its coordinates or chunks hold (an interrupted write's
  leftovers); a committed slot is never written again. A kill while the time
  arrays grow leaves them of unequal length; readers use the common length and
  the next writer evens them out.

Slots are filled in the order steps arrive (appending is cheap, inserting is
not); :func:`open_zarr` returns steps sorted by time.
"""

from __future__ import annotations

import os
import time as clock
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
import zarr
from rasterio.crs import CRS
from tqdm.auto import tqdm
from zarr.codecs import BloscCodec

from . import _store_layout as layout
from ._store_layout import TIME_ENCODING
from ._store_lock import StoreLock, StoreLockedError
from .exceptions import SentinelCubeError

__all__ = ["TIME_ENCODING", "StoreLockedError", "WriteReport", "open_zarr", "to_zarr"]

#: Blosc compressors offered by ``codec=``; zstd compresses best, lz4 writes ~2.5x faster.
CODECS = ("zstd", "lz4", "lz4hc", "zlib", "blosclz")


@dataclass(frozen=True)
class WriteReport:
    """What :func:`to_zarr` did.

    Attributes
    ----------
    store : str
        The store path.
    written : tuple of numpy.datetime64
        Times of the steps written by this call.
    skipped : tuple of numpy.datetime64
        Times already committed in the store (left untouched).
    bytes_written : int
        Growth of the store on disk.
    pixels : int
        Pixels (time x band x y x x) written.
    seconds : float
        Wall time of the call.
    """

    store: str
    written: tuple[np.datetime64, ...]
    skipped: tuple[np.datetime64, ...]
    bytes_written: int
    pixels: int
    seconds: float

    @property
    def mpix_per_s(self) -> float:
        """Megapixels written per second."""
        return self.pixels / 1e6 / self.seconds if self.seconds > 0 else 0.0


def to_zarr(
    cube: xr.DataArray,
    store: str | os.PathLike[str],
    mode: str = "a",
    *,
    codec: str = "zstd",
    level: int = 3,
    shards: int | None = None,
    progress: bool | Callable[[int, int], None] = True,
    lock_timeout: float = 600.0,
) -> WriteReport:
    """Write a cube to a Zarr v3 store, one committed time step at a time.

    Parameters
    ----------
    cube
        A ``(time, band, y, x)`` cube from :func:`sentinel_cube.open_cube` (lazy or not).
    store
        Path of the store (a folder).
    mode
        ``"a"`` (default): create the store if missing, else add the time steps
        it does not hold yet and finish steps an interrupted write left
        uncommitted; steps already committed are skipped, so running the same
        ingest twice writes nothing the second time. ``"w"``: replace any store.
        ``"w-"``: fail if the store exists.
    codec, level
        Blosc compressor (``"zstd"``, ``"lz4"``...) and level, with byte shuffle.
    shards
        Optional shard side in pixels (a multiple of the chunk side): fewer,
        larger files for object stores. Each write task then writes one whole
        shard, so no two tasks ever share a shard file.
    progress
        Show a progress bar over time steps (or pass ``callback(done, total)``).
    lock_timeout
        Seconds to wait while another writer holds the store (``0``: fail at once).

    Returns
    -------
    WriteReport

    Raises
    ------
    SentinelCubeError
        When the store holds another kind of cube (bands, grid, CRS, units); the
        store is left untouched.
    StoreLockedError
        When another writer still holds the store after ``lock_timeout`` seconds.

    Examples
    --------
    >>> report = sc.to_zarr(cube, "budapest.zarr")          # doctest: +SKIP
    >>> sc.to_zarr(cube, "budapest.zarr").written           # doctest: +SKIP
    ()
    """
    started = clock.perf_counter()
    path = Path(store)
    _check_cube(cube)
    if codec not in CODECS:
        raise SentinelCubeError(f"codec={codec!r} is not one of {', '.join(CODECS)}")
    if mode not in ("a", "w", "w-"):
        raise SentinelCubeError(f"mode={mode!r}: use 'a' (append/resume), 'w' or 'w-'")
    name = str(cube.name or "data")
    chunk_y, chunk_x = _regular_chunks(cube)
    encoding = _encoding(cube, chunk_y, chunk_x, codec, level, shards)
    layout.clean_staging(path)
    state = layout.state(path)
    if state == "folder":
        raise SentinelCubeError(
            f"{str(path)!r} exists and is not a Zarr store: choose another path or empty it"
        )
    if mode == "w-" and state != "missing":
        raise SentinelCubeError(f"store {str(path)!r} exists; use mode='a' to append or 'w'")
    if state == "foreign" and mode == "a":
        raise SentinelCubeError(
            f"{str(path)!r} is a Zarr store but not a sentinel_cube cube store: write the cube "
            "to another path, or pass mode='w' to replace it"
        )
    try:
        if mode == "w" and state != "missing" or state == "interrupted":
            # an interrupted creation (an earlier version wrote no ledger) holds no step
            layout.replace(path, cube, name, encoding, lock_timeout)
        elif state == "missing":
            layout.create(path, cube, name, encoding)
        before = _disk_usage(path)
        pending, skipped = _write_steps(path, cube, name, lock_timeout, progress)
    except OSError as error:  # a full disk, lost permissions, a vanished mount...
        raise SentinelCubeError(
            f"writing to {str(path)!r} failed ({error}); the steps committed before are "
            "intact: fix the cause (disk space, permissions) and run the same call again "
            "to resume"
        ) from error
    values = cube.time.values
    seconds = clock.perf_counter() - started
    pixels = len(pending) * cube.sizes["band"] * cube.sizes["y"] * cube.sizes["x"]
    return WriteReport(
        str(path),
        tuple(values[t] for t in pending),
        tuple(values[t] for t in skipped),
        max(0, _disk_usage(path) - before),
        pixels,
        seconds,
    )


def _write_steps(
    path: Path,
    cube: xr.DataArray,
    name: str,
    lock_timeout: float,
    progress: bool | Callable[[int, int], None],
) -> tuple[list[int], list[int]]:
    """Under the lock: write and commit the steps the store lacks; (written, skipped)."""
    with StoreLock(path / layout.META_GROUP, lock_timeout, label=str(path)) as lock:
        ledger = layout.read_ledger(path)
        if int(ledger["version"]) < layout.FORMAT_VERSION:
            raise SentinelCubeError(
                f"{str(path)!r} was written by an earlier sentinel_cube whose time encoding "
                "cannot take acquisitions at other times of day; it opens read-only. Copy it "
                "into a new store, then append there: to_zarr(open_zarr(old), new)"
            )
        _check_compatible(path, ledger, cube, name)  # before anything is written
        layout.even_time_lengths(path)
        times = layout.nanoseconds(cube.time.values)
        committed = {t for _, t in ledger["steps"]}
        pending = [t for t in range(len(times)) if times[t] not in committed]
        skipped = [t for t in range(len(times)) if times[t] in committed]
        slots = layout.free_slots(path, ledger, len(pending))
        layout.remove_partial_files(path, name, slots)

        target = zarr.open_array(path, path=name, mode="r+")
        # one task per stored chunk (or shard), on the store's grid, not the cube's: two
        # tasks writing parts of one chunk file would each rewrite it, and one would lose
        data = _as_dask(cube).rechunk(tuple(target.shards or target.chunks))
        bar = tqdm(total=len(pending), unit="step", desc=f"writing {path.name}",
                   disable=progress is not True or not pending)  # fmt: skip
        for done, (t, slot) in enumerate(zip(pending, slots, strict=True), start=1):
            lock.check()
            layout.write_coords(path, cube, t, slot, name)
            # one compute per time step, committed when it returns
            da.store(
                data[t : t + 1],
                target,  # type: ignore[arg-type]
                regions=(slice(slot, slot + 1), slice(None), slice(None), slice(None)),
                lock=False,
            )
            lock.check()
            layout.commit(path, slot, int(times[t]))
            bar.update()
            if callable(progress):
                progress(done, len(pending))
        bar.close()
    return pending, skipped


def open_zarr(store: str | os.PathLike[str], *, chunks: Any = "auto") -> xr.DataArray:
    """Open a cube store lazily: committed time steps only, sorted by time.

    Parameters
    ----------
    store
        Path of a store written by :func:`to_zarr`.
    chunks
        Passed to :func:`xarray.open_zarr`; the default uses the stored chunks.

    Returns
    -------
    xarray.DataArray
        The same ``(time, band, y, x)`` cube that was written, with its metadata
        coordinates and CRS (``cube.rio.crs``). A store whose first write was
        interrupted before any step was committed opens with zero time steps.

    Raises
    ------
    SentinelCubeError
        When the path is not a cube store written by sentinel_cube.
    """
    path = Path(store)
    if not (path / "zarr.json").exists():
        raise SentinelCubeError(f"{str(path)!r} is not a Zarr store (no zarr.json)")
    state = layout.state(path)
    if state == "interrupted":
        raise SentinelCubeError(
            f"{str(path)!r} is a cube store whose creation by an earlier sentinel_cube version "
            "was interrupted: it holds no step; run to_zarr(cube, store) to complete it"
        )
    if state != "ours":
        raise SentinelCubeError(f"{str(path)!r} is a Zarr store but not a sentinel_cube cube store")
    ledger = layout.read_ledger(path)
    variable = ledger["variable"]
    dataset = layout.open_dataset(path, None if chunks == "auto" else chunks, variable)
    steps = sorted(ledger["steps"])
    cube = dataset[variable].isel(time=[slot for slot, _ in steps])
    if "spatial_ref" not in cube.coords and "spatial_ref" in dataset:  # a data variable there
        cube = cube.assign_coords(spatial_ref=dataset["spatial_ref"])
    stored = layout.nanoseconds(cube.time.values)
    if not np.array_equal(stored, np.array([t for _, t in steps], dtype=np.int64)):
        raise SentinelCubeError(
            f"{str(path)!r}: the time coordinate disagrees with the store's ledger of committed "
            "steps (the store was changed by another program); rewrite it with mode='w'"
        )
    if chunks == "auto":
        cube = cube.chunk(dict(zip(cube.dims, layout.stored_chunks(path, variable), strict=True)))
    # metadata coordinates are small: load them so selections by metadata stay cheap
    cube = cube.assign_coords(
        {k: v.load() for k, v in cube.coords.items() if k not in cube.dims and v.ndim > 0}
    )
    cube = cube.sortby("time")
    cube = cube.rio.write_crs(cube.spatial_ref.attrs.get("crs_wkt") or cube.rio.crs)
    return cube


def _check_cube(cube: xr.DataArray) -> None:
    if not isinstance(cube, xr.DataArray) or cube.dims != ("time", "band", "y", "x"):
        dims = getattr(cube, "dims", None)
        raise SentinelCubeError(f"to_zarr expects a (time, band, y, x) DataArray, got dims {dims}")
    if cube.rio.crs is None:
        raise SentinelCubeError("the cube has no CRS (spatial_ref): build it with open_cube")
    times = cube.time.values
    if len(np.unique(times)) != len(times):
        raise SentinelCubeError(
            "the cube has repeated times (groupby=None with products acquired together); "
            "build it with groupby='solar_day' to store it"
        )


def _as_dask(cube: xr.DataArray) -> da.Array:
    data = cube.data
    return data if isinstance(data, da.Array) else da.from_array(data, chunks=(1, 1, 1024, 1024))


def _regular_chunks(cube: xr.DataArray) -> tuple[int, int]:
    if cube.chunks is None:
        return min(1024, cube.sizes["y"]), min(1024, cube.sizes["x"])
    return max(cube.chunks[2]), max(cube.chunks[3])


def _encoding(cube, chunk_y: int, chunk_x: int, codec: str, level: int, shards: int | None):
    shuffle = "bitshuffle" if cube.dtype == np.float32 else "shuffle"
    encoding: dict[str, Any] = {
        "chunks": (1, 1, chunk_y, chunk_x),
        "compressors": (BloscCodec(cname=codec, clevel=level, shuffle=shuffle),),  # type: ignore[arg-type]
    }
    if shards:
        if shards % chunk_y or shards % chunk_x:
            raise SentinelCubeError(f"shards={shards} must be a multiple of the chunks")
        encoding["shards"] = (1, 1, shards, shards)
    return encoding


def _check_compatible(path: Path, ledger: dict[str, Any], cube: xr.DataArray, name: str) -> None:
    """Refuse a cube whose units, bands, dtype or grid (CRS, transform, shape) differ."""
    if ledger["variable"] != name:
        raise SentinelCubeError(
            f"store {str(path)!r} holds {ledger['variable']!r}, the cube is {name!r} "
            "(units differ): write it to another store"
        )

    def stored(array: str) -> zarr.Array:
        return zarr.open_array(path, path=array, mode="r")

    problems = []
    bands = [str(b) for b in np.asarray(stored("band")[:])]
    if bands != [str(b) for b in cube.band.values]:
        problems.append(f"bands {bands} vs {list(cube.band.values)}")
    dtype = stored(name).dtype
    if np.dtype(str(dtype)) != cube.dtype:
        problems.append(f"dtype {dtype} vs {cube.dtype}")
    x = np.asarray(stored("x")[:])
    y = np.asarray(stored("y")[:])
    crs_wkt = stored("spatial_ref").attrs.get("crs_wkt")
    store_crs = CRS.from_wkt(crs_wkt) if crs_wkt else None
    same_grid = (
        np.array_equal(x, cube.x.values)
        and np.array_equal(y, cube.y.values)
        and (store_crs is None or store_crs == cube.rio.crs)
    )
    if not same_grid:
        problems.append(
            f"store grid {_grid_text(store_crs, x, y)}, cube grid "
            f"{_grid_text(cube.rio.crs, cube.x.values, cube.y.values)}"
        )
    if problems:
        raise SentinelCubeError(
            f"cannot append to {str(path)!r}: the store's grid or bands differ from the cube's "
            f"({'; '.join(problems)}); build the cube with the same bands, bounds, resolution "
            "and CRS (e.g. bounds=open_zarr(store).rio.bounds()), or write to a new store"
        )


def _grid_text(crs: CRS | None, x: np.ndarray, y: np.ndarray) -> str:
    """A grid as ``EPSG:n, origin (x0, y0), pixel (dx, dy), shape (rows, cols)``."""
    dx = float(x[1] - x[0]) if len(x) > 1 else float("nan")
    dy = float(y[1] - y[0]) if len(y) > 1 else float("nan")
    epsg = crs.to_epsg() if crs is not None else None
    name = f"EPSG:{epsg}" if epsg else ("no CRS" if crs is None else "custom CRS")
    x0 = float(x[0]) - dx / 2 if len(x) else float("nan")
    y0 = float(y[0]) - dy / 2 if len(y) else float("nan")
    return f"[{name}, origin ({x0!r}, {y0!r}), pixel ({dx!r}, {dy!r}), shape ({len(y)}, {len(x)})]"


def _disk_usage(path: Path) -> int:
    if not path.exists():
        return 0
    total = 0
    for folder, _, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(folder, f)) for f in files)
    return total
