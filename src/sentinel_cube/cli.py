"""The ``sentinel-cube`` command line."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from . import __version__
from ._cli_catalog import _ManyValues
from .exceptions import SentinelCubeError

__all__ = ["main"]


def _fail(error: Exception) -> click.ClickException:
    return click.ClickException(str(error))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sentinel-cube")
def main() -> None:
    """Search, read and stack Sentinel-2 products into lazy cubes."""


@main.command()
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("sentinel-cube-demo"),
    show_default=True,
    help="Folder for the generated archive and the outputs.",
)
@click.option(
    "--scale",
    type=int,
    default=10,
    show_default=True,
    help="Pixel-size multiplier of the generated tiles (1 = full 10980 px tiles).",
)
def demo(out: Path, scale: int) -> None:
    """Run the pipeline offline on a generated Budapest-area archive."""
    from ._demo import run_demo

    try:
        run_demo(out, scale=scale, echo=click.echo)
    except (SentinelCubeError, ValueError) as error:
        raise _fail(error) from error


@main.command()
@click.argument("path", type=click.Path(exists=True, path_type=Path))
def info(path: Path) -> None:
    """Describe one product (.SAFE folder or .zip) or every product in a folder."""
    from ._summary import metadata_summary, products_table
    from .catalog import LocalCatalog
    from .safe import read_product

    try:
        if path.is_file() or path.suffix.upper() == ".SAFE":
            product = read_product(path, require_bands=None)
            click.echo(f"{product.product_id}")
            click.echo(f"  path         {product.path}")
            click.echo(
                f"  platform     {product.platform}  level {product.processing_level}  "
                f"baseline {product.processing_baseline}"
            )
            click.echo(
                f"  sensing      {product.sensing_start:%Y-%m-%d %H:%M:%S} UTC  "
                f"orbit R{product.relative_orbit:03d}"
            )
            click.echo(f"  tile         {product.tile_id}  EPSG:{product.epsg}")
            click.echo(
                f"  cloud        {_pct(product.cloud_cover)}  vegetation "
                f"{_pct(product.vegetation)}  water {_pct(product.water)}  "
                f"snow {_pct(product.snow_ice)}"
            )
            for band in product.bands.values():
                click.echo(
                    f"  {band.band:<4} {band.resolution:>2} m  {band.shape[1]}x{band.shape[0]} px"
                    f"  offset {band.offset:g}  quantification {band.quantification:g}"
                )
            if product.missing_bands:
                click.echo(f"  missing band files: {', '.join(product.missing_bands)}")
            return
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            products = LocalCatalog(path, require_bands=None).search()
        for warning in caught:
            click.echo(f"warning: {warning.message}", err=True)
        click.echo(products_table(products))
        click.echo(metadata_summary(products))
    except SentinelCubeError as error:
        raise _fail(error) from error


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} %"


def _split(value: str | None) -> list[str]:
    return [] if not value else [v for v in value.replace(",", " ").split() if v]


@main.command()
@click.argument("sources", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--aoi", type=str, default=None, help="AOI file, WKT or 'minx,miny,maxx,maxy'.")
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
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Zarr store to write.")
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
def build(sources, aoi, bands, resolution, start, end, cloud, crs, units, chunks, out, append,
          overwrite, lock_timeout, scheduler) -> None:  # fmt: skip
    """Build a cube from an archive folder, a products file or products, into Zarr.

    SOURCES: a folder of .SAFE/.zip products, a products table written by
    'sentinel-cube search' (.geojson, .gpkg, .parquet, .csv with a 'path'
    column), or product paths.
    """
    from .catalog import filter_products
    from .cube import open_cube
    from .store import to_zarr

    if append and overwrite:
        raise click.UsageError("--append and --overwrite exclude each other")
    if (out / "zarr.json").exists() and not (append or overwrite):
        raise click.ClickException(
            f"{out} exists: pass --append to add new time steps (or resume), or --overwrite"
        )
    if aoi and "," in aoi and not Path(aoi).exists():
        aoi = tuple(float(v) for v in aoi.split(","))
    try:
        products = _load_products(sources)
        products = filter_products(
            products, aoi=aoi, date=(start, end) if (start or end) else None,
            cloudcoverpercentage=cloud,
        )  # fmt: skip
        click.echo(f"{len(products)} products selected")
        cube = open_cube(
            products, bands=_split(bands), resolution=resolution, aoi=aoi, crs=crs,
            chunks=chunks, units=units,
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
        raise _fail(error) from error
    click.echo(
        f"wrote {len(report.written)} time steps ({len(report.skipped)} already stored) to "
        f"{out}: {report.bytes_written / 1e6:.1f} MB in {report.seconds:.1f} s, "
        f"{report.mpix_per_s:.1f} MPix/s"
    )


def _load_products(sources: tuple[Path, ...]):
    import geopandas as gpd
    import pandas as pd

    from .catalog import LocalCatalog
    from .safe import read_product
    from .schema import products_frame

    frames = []
    loose: list = []
    for source in sources:
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
    from distributed import Client, LocalCluster

    if scheduler == "local":
        with LocalCluster(processes=True, threads_per_worker=1) as cluster, Client(cluster) as c:
            yield c
    else:
        with Client(scheduler) as client:
            yield client


def _register() -> None:
    from ._cli_catalog import download as download_command
    from ._cli_catalog import search as search_command
    from ._cli_ops import aggregate_command, clip_command, stretch_command
    from ._cli_report import report_command

    main.add_command(search_command, "search")
    main.add_command(download_command, "download")
    for command in (clip_command, stretch_command, aggregate_command, report_command):
        main.add_command(command)


_register()
