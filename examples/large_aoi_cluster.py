"""A multi-tile, two-UTM-zone AOI processed on a ``dask.distributed`` cluster.

The AOI (about 110 x 65 km around Budapest) spans three tiles: 33TYN in UTM zone 33
and 34TCT/34TDT in zone 34. The cube is built on the zone holding most of the AOI
(34); 33TYN is reprojected on the fly, and same-day tiles are mosaicked. Every
step runs on a ``LocalCluster`` of process workers (or on the cluster at
``--scheduler``): ingest into Zarr, clip, exact percentile stretch, monthly
cloud-masked median. Open the printed dashboard address to watch the tasks.

Run::

    python examples/large_aoi_cluster.py OUT_DIR [--scale 10] [--workers 2]
    python examples/large_aoi_cluster.py OUT_DIR --scheduler tcp://10.0.0.5:8786

``--scale 1`` generates full-size 10980 x 10980 px tiles (about 15 minutes per
tile and date on 2 cores) for a real large-AOI run; ``--scale 10`` (default) takes
a minute. On a shared cluster, ``OUT_DIR`` must be visible to every worker.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from dask.distributed import Client, LocalCluster
from shapely.geometry import box

import sentinel_cube as sc
from sentinel_cube.testing import default_specs, make_archive

TILES = ("33TYN", "34TCT", "34TDT")
DATES = ("2023-06-06", "2023-06-16", "2023-07-06", "2023-07-16", "2023-08-10")
AOI = box(18.55, 47.25, 20.05, 47.85)  # lon/lat
BANDS = ["B02", "B03", "B04", "B08"]


def main(out: Path, scale: int = 10, workers: int = 2, scheduler: str | None = None) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    paths = make_archive(out / "archive", default_specs(TILES, DATES), scale=scale)
    print(f"{len(paths)} products ({len(TILES)} tiles x {len(DATES)} dates) generated in "
          f"{time.perf_counter() - started:.0f} s")  # fmt: skip

    if scheduler:
        client = Client(scheduler)
    else:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True)
        client = Client(cluster)
    with client:
        print(f"dask dashboard: {client.dashboard_link}")

        products = sc.LocalCatalog(out / "archive").search(AOI, producttype="S2MSI2A")
        step = time.perf_counter()
        cube = sc.open_cube(products, bands=BANDS + ["SCL"], resolution=10 * scale, aoi=AOI)
        planned = time.perf_counter() - step
        print(
            f"planned {dict(cube.sizes)} on {cube.rio.crs} in {planned:.2f} s: "
            f"{cube.data.npartitions} chunks, {len(cube.data.dask)} tasks, nothing read"
        )

        report = sc.to_zarr(cube, out / "large.zarr", mode="w")
        print(
            f"ingest: {report.pixels / 1e6:.0f} MPix in {report.seconds:.1f} s = "
            f"{report.mpix_per_s:.1f} MPix/s, {report.bytes_written / 1e6:.0f} MB on disk"
        )

        stored = sc.open_zarr(out / "large.zarr")
        clipped = sc.clip(stored.sel(band=BANDS), AOI)
        step = time.perf_counter()
        limits = sc.cube_percentiles(clipped, (2, 98)).compute()
        print(f"exact 2 and 98 % percentiles of {clipped.size / 1e6:.0f} MPix per band in "
              f"{time.perf_counter() - step:.1f} s:\n{limits.to_pandas().round(4)}")  # fmt: skip

        step = time.perf_counter()
        monthly = sc.aggregate(sc.mask_clouds(stored).sel(band=BANDS), freq="MS", how="median")
        sc.to_zarr(monthly, out / "monthly.zarr", mode="w", progress=False)
        print(f"monthly cloud-masked median ({monthly.sizes['time']} months) in "
              f"{time.perf_counter() - step:.1f} s -> {out / 'monthly.zarr'}")  # fmt: skip

        rgb = sc.stretch(clipped.sel(band=["B04", "B03", "B02"]).isel(time=[0]), (2, 98))
        picture = sc.to_png(rgb.isel(time=0), out / "large_rgb.png")
        print(f"true colour of {str(clipped.time.values[0])[:10]}: {picture}")
    print(f"done in {time.perf_counter() - started:.0f} s")
    return out / "large.zarr"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, default=None, help="output folder")
    parser.add_argument("--scale", type=int, default=10, help="pixel-size multiplier (1 = full)")
    parser.add_argument("--workers", type=int, default=2, help="LocalCluster process workers")
    parser.add_argument("--scheduler", default=None, help="address of an existing scheduler")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="sc-large-"))
    main(out, args.scale, args.workers, args.scheduler)
