"""Where an ingest's CPU goes: JPEG 2000 decode, radiometry, mosaic, compression + writes.

Profiles ``open_cube`` + ``to_zarr`` of one tile (its own grid, bands B02 B03 B04 B08)
on dask's synchronous scheduler with :mod:`cProfile` on the process CPU clock, so the
CPU of zarr's own IO thread (compression, file writes) counts in the write bucket::

    python -m benchmarks.profile_ingest --scale 5 --dates 2

Buckets (CPU seconds and share):

- *decode*: GDAL reads of the band windows (``_read._read``), the floor every tool pays;
- *radiometry*: DN to reflectance (or harmonised DN);
- *mosaic*: the rest of the read task (masks, copies, the chunk array);
- *compress + write*: handing each block to zarr until it is stored;
- *other*: planning, the graph, the scheduler, coordinates, the ledger.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import shutil
import tempfile
import time
from pathlib import Path

import dask

import sentinel_cube as sc

from ._data import INGEST_BANDS, bench_dir, ingest_archive

BUCKETS = {
    "decode": ("_read.py", "_read"),
    "radiometry": ("_radiometry.py", None),
    "mosaic": ("_graph.py", "mosaic"),
    "compress + write": ("store.py", "_write_block"),
}


def profile(scale: int, dates: int, codec: str) -> dict[str, float]:
    archive = ingest_archive(dates=dates, scale=scale)
    paths = [str(p) for p in archive.products_of("34TCT")]
    first = sc.read_product(paths[0], require_bands=None)
    bounds = first.bands["B04"].bounds
    bench_dir().mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="profile-", dir=bench_dir()))
    profiler = cProfile.Profile(time.process_time)
    try:
        started = time.process_time()
        with dask.config.set(scheduler="sync"):
            profiler.enable()
            cube = sc.open_cube(paths, INGEST_BANDS, 10 * scale, bounds=bounds)
            sc.to_zarr(cube, folder / "cube.zarr", mode="w", codec=codec, progress=False)
            profiler.disable()
        total = time.process_time() - started
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]

    def cumulative(file: str, name: str | None) -> float:
        return sum(
            row[3]
            for (path, _, function), row in stats.items()
            if path.endswith(file) and (name is None or function == name)
        )

    decode = cumulative(*BUCKETS["decode"])
    radiometry = cumulative(*BUCKETS["radiometry"])
    mosaic = cumulative(*BUCKETS["mosaic"]) - decode - radiometry
    write = cumulative(*BUCKETS["compress + write"])
    result = {
        "decode": decode,
        "radiometry": radiometry,
        "mosaic": mosaic,
        "compress + write": write,
        "other": total - decode - radiometry - mosaic - write,
        "total": total,
        "mpix": cube.size / 1e6,
    }
    return result


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=int, default=5)
    parser.add_argument("--dates", type=int, default=2)
    parser.add_argument("--codec", default="lz4")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    result = profile(args.scale, args.dates, args.codec)
    total = result["total"]
    print(f"{result['mpix']:.0f} MPix written, {total:.2f} CPU s")
    for name in (*BUCKETS, "other"):
        print(f"{name:>18}: {result[name]:7.2f} CPU s  {100 * result[name] / total:5.1f} %")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
