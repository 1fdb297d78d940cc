"""The decode limit: raw GDAL reads of a cube's JPEG 2000 windows, as dask tasks.

Each task opens the band files of one chunk (see :mod:`._windows`), reads their windows
as uint16 and drops them: no conversion, no mosaic, no write. The GDAL settings are the
cube reader's (:func:`sentinel_cube._read.capture_env`: one decoding thread per task,
a small block cache; for products on object storage the endpoint settings, and keys
from the worker's own environment), so the only difference from an ingest is the work
the ingest adds on top of decoding.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import rasterio
from rasterio.windows import Window

from .. import _cloud
from .._read import ZIP_CACHE, _Keys, capture_env, is_remote_path
from ._windows import DecodeTask, FileWindow

__all__ = ["DecodeRun", "decode_env", "decode_windows", "gdal_version", "run_decode"]


def gdal_version() -> str:
    """The version of the GDAL that rasterio carries."""
    return str(rasterio.__gdal_version__)


@dataclass(frozen=True)
class DecodeRun:
    """One measurement of the decode limit."""

    seconds: float
    tasks: int
    source_pixels: int


def decode_env(paths: Sequence[str]) -> dict[str, object]:
    """GDAL settings of the decode tasks for band files ``paths`` (as the cube reader's)."""
    remote = [p for p in paths if is_remote_path(p)]
    if not remote:
        return capture_env()
    s3 = [p for p in remote if "/vsis3/" in p]
    return capture_env(_cloud.settings(url=_cloud.object_url((s3 or remote)[0])[0]))


def decode_windows(reads: Sequence[FileWindow], env: Mapping[str, object]) -> int:
    """Read every window of ``reads`` (uint16, band 1); return the pixels decoded.

    Runs in a task: keys for remote files come from this process
    (:func:`sentinel_cube._cloud.task_credentials`), never from the graph.
    """
    settings = dict(env)
    remote = any(is_remote_path(w.path) for w in reads)
    keys = _cloud.task_credentials(settings) if remote else {}
    pixels = 0
    with rasterio.Env(session=_Keys(keys) if keys else None, **settings):
        for read in reads:
            zipped = read.path.startswith("/vsizip/") and not is_remote_path(read.path)
            with rasterio.Env(**(ZIP_CACHE if zipped else {})):
                with rasterio.open(read.path, sharing=False) as dataset:
                    window = Window(read.col_off, read.row_off, read.width, read.height)
                    pixels += dataset.read(1, window=window).size
    return pixels


def run_decode(
    client: Any,
    tasks: Sequence[DecodeTask],
    workers: Sequence[str],
    env: Mapping[str, object],
    progress: Callable[[int, int], None] | None = None,
) -> DecodeRun:
    """Decode every task's windows on ``workers`` of ``client``; the wall time it took.

    One dask task per :class:`~._windows.DecodeTask`, restricted to ``workers``.
    ``progress(done, total)`` is called as tasks finish.
    """
    from distributed import as_completed

    started = time.perf_counter()
    futures = client.map(
        decode_windows,
        [task.reads for task in tasks],
        env=dict(env),
        workers=list(workers),
        allow_other_workers=False,
        pure=False,
    )
    pixels = 0
    for done, future in enumerate(as_completed(futures), start=1):
        pixels += future.result()
        if progress is not None:
            progress(done, len(futures))
    seconds = time.perf_counter() - started
    del futures
    return DecodeRun(seconds, len(tasks), pixels)
