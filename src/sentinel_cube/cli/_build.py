"""``sentinel-cube build``: a cube from products, written to a Zarr store."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from ..exceptions import SentinelCubeError
from ._options import PathOrURL, _ManyValues, _split, parse_aoi

__all__ = ["build_command"]


@click.command("build")
@click.argument("sources", nargs=-1, required=True, type=PathOrURL(exists=True))
@click.option("--aoi", type=str, default=None, help="AOI file, WKT or 'minx,miny,maxx,maxy'.")
@click.option(
    "--clip", is_flag=True,
    help="With --aoi: no data outside the AOI polygon, and JPEG 2000 tiles outside it are "
    "never decoded (default: the AOI's bounding box).",
)  # fmt: skip
@click.option(
    "--bands", cls=_ManyValues, default="B02 B03 B04 B08", show_default=True,
    help="Bands, space or comma separated.",
)  # fmt: skip
@click.option("--resolution", type=float, default=10, show_default=True, help="Pixel size (m).")
@click.option("--start", type=str, default=None, help="First day (YYYY-MM-DD).")
@click.option("--end", type=str, default=None, help="Last day, included (YYYY-MM-DD).")
@click.option("--cloud", type=(float, float), default=None, help="Cloud cover range LO HI (%).")
@click.option("--crs", type=str, default=None, help="Target CRS, e.g. EPSG:32634.")
@click.option("--units", type=click.Choice(["reflectance", "dn"]), default="reflectance")
@click.option("--chunks", type=int, default=None, help="Chunk side in pixels.")
@click.option("--out", type=PathOrURL(), required=True, help="Zarr store to write (or s3:// URL).")
@click.option("--append", is_flag=True, help="Add new time steps to (or resume) an existing store.")
@click.option("--overwrite", is_flag=True, help="Replace an existing store.")
@click.option(
    "--lock-timeout", type=float, default=600.0, show_default=True,
    help="Seconds to wait while another writer holds the store (0: fail at once).",
)  # fmt: skip
@click.option(
    "--scheduler", type=str, default=None,
    help="dask.distributed scheduler address, or 'local' for a local process cluster "
    "(default: threads in this process).",
)  # fmt: skip
def build_command(sources, aoi, clip, bands, resolution, start, end, cloud, crs, units, chunks, out,
                  append, overwrite, lock_timeout, scheduler) -> None:  # fmt: skip
    """Build a cube from an archive folder, a products file or products, into Zarr.

    SOURCES: a folder of .SAFE/.zip products, a products table written by
    'sentinel-cube search' (.geojson, .gpkg, .parquet, .csv with a 'path'
    column), or product paths; folders and products may be s3:// or https://
    URLs (read in place). --out may be an s3:// URL. S3 keys and endpoints come
    from the AWS_* (or CDSE_S3_*) variables.
    """
    from .._store_location import StoreLocation
    from ..catalog import filter_products
    from ..cube import open_cube
    from ..store import to_zarr

    if append and overwrite:
        raise click.UsageError("--append and --overwrite exclude each other")
    aoi = parse_aoi(aoi)
    if clip and aoi is None:
        raise click.UsageError("--clip needs --aoi")
    try:
        if StoreLocation(out).exists("zarr.json") and not (append or overwrite):
            raise click.ClickException(
                f"{out} exists: pass --append to add new time steps (or resume), or --overwrite"
            )
        products = _load_products(sources)
        products = filter_products(
            products, aoi=aoi, date=(start, end) if (start or end) else None,
            cloudcoverpercentage=cloud,
        )  # fmt: skip
        click.echo(f"{len(products)} products selected")
        cube = open_cube(
            products, bands=_split(bands), resolution=resolution, aoi=aoi, crs=crs,
            chunks=chunks, units=units, clip=clip,
        )  # fmt: skip
        click.echo(
            f"cube: {cube.sizes['time']} time steps x {cube.sizes['band']} bands x "
            f"{cube.sizes['y']} x {cube.sizes['x']} px, {cube.rio.crs}, "
            f"{cube.data.npartitions} chunks"
        )
        with _client(scheduler) as client:
            if client is not None:
                click.echo(f"dask dashboard: {client.dashboard_link}")
            report = to_zarr(cube, out, mode="w" if overwrite else "a", lock_timeout=lock_timeout)
    except (SentinelCubeError, ValueError) as error:
        raise click.ClickException(str(error)) from error
    click.echo(
        f"wrote {len(report.written)} time steps ({len(report.skipped)} already stored) to "
        f"{out}: {report.bytes_written / 1e6:.1f} MB in {report.seconds:.1f} s, "
        f"{report.mpix_per_s:.1f} MPix/s"
    )


def _load_products(sources: tuple[Path | str, ...]):
    import geopandas as gpd
    import pandas as pd

    from ..catalog import LocalCatalog
    from ..safe import read_product
    from ..schema import products_frame

    frames = []
    loose: list = []
    for source in sources:
        if isinstance(source, str):  # a URL: a product, or a prefix holding products
            if source.rstrip("/").lower().endswith((".safe", ".zip")):
                loose.append(read_product(source, require_bands=None))
            else:
                frames.append(LocalCatalog(source, require_bands=None).search())
            continue
        suffix = source.suffix.lower()
        if source.is_dir() and suffix != ".safe" and not (source / "MTD_MSIL2A.xml").exists() \
                and not (source / "MTD_MSIL1C.xml").exists():  # fmt: skip
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                frames.append(LocalCatalog(source, require_bands=None).search())
            for warning in caught:
                click.echo(f"warning: {warning.message}", err=True)
        elif suffix in (".geojson", ".json", ".gpkg", ".parquet", ".csv"):
            if suffix == ".parquet":
                frame = gpd.read_parquet(source)
            elif suffix == ".csv":
                frame = pd.read_csv(source, index_col=0)
                frame = gpd.GeoDataFrame(
                    frame, geometry=gpd.GeoSeries.from_wkt(frame.pop("geometry")), crs=4326
                )
            else:
                frame = gpd.read_file(source)
            if "path" not in frame.columns:
                raise SentinelCubeError(f"{source}: the products table has no 'path' column")
            loose.extend(read_product(p, require_bands=None) for p in frame["path"])
        else:
            loose.append(read_product(source, require_bands=None))
    if loose:
        frames.append(products_frame(loose))
    return pd.concat(frames) if len(frames) > 1 else frames[0]


@contextlib.contextmanager
def _client(scheduler: str | None) -> Iterator[Any]:
    """A dask.distributed client for ``--scheduler``, or None for the threaded scheduler."""
    if scheduler is None:
        yield None
        return
    from distributed import Client

    from .._local_cluster import local_cluster

    if scheduler == "local":
        with local_cluster(processes=True, threads_per_worker=1) as cluster, Client(cluster) as c:
            yield c
    else:
        with Client(scheduler) as client:
            yield client
