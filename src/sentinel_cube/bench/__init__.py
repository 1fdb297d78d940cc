"""``sentinel-cube bench``: measure ingest and analysis on your own machine or cluster.

One run measures, on the workers of a dask cluster (a ``LocalCluster`` or the scheduler
at an address):

- the *decode limit*: raw GDAL reads of exactly the JPEG 2000 windows the cube's chunks
  read (:mod:`._windows`), the ceiling of any ingest on those workers;
- the *plan*: time of :func:`~sentinel_cube.open_cube` (no pixel read) and its tasks;
- the *ingest*: :func:`~sentinel_cube.open_cube` + :func:`~sentinel_cube.to_zarr` into a
  local or ``s3://`` store, in MPix/s and as a ratio to the decode limit;
- :func:`~sentinel_cube.clip`, :func:`~sentinel_cube.stretch` and a monthly
  :func:`~sentinel_cube.aggregate` from the store;
- the ingest's *scaling* over the first 1, 2, 4... workers;
- each phase's peak memory per worker.

Examples
--------
>>> from sentinel_cube.bench import BenchOptions, run_bench, table    # doctest: +SKIP
>>> report = run_bench(BenchOptions("bench-out", scale=30, dates=2, workers=2))
... # doctest: +SKIP
>>> print(table(report))                                            # doctest: +SKIP
"""

from ._archive import archive_dates, build_once, cached_archive
from ._html import write_html
from ._options import DEFAULT_BANDS, SKIPPABLE, BenchOptions
from ._report import table, write_json
from ._results import BenchReport, Phase
from ._run import run_bench
from ._windows import BandGrid, ChunkGrid, DecodeTask, FileWindow, decode_tasks, window_of

__all__ = [
    "DEFAULT_BANDS",
    "SKIPPABLE",
    "BandGrid",
    "BenchOptions",
    "BenchReport",
    "ChunkGrid",
    "DecodeTask",
    "FileWindow",
    "Phase",
    "archive_dates",
    "build_once",
    "cached_archive",
    "decode_tasks",
    "run_bench",
    "table",
    "window_of",
    "write_html",
    "write_json",
]
