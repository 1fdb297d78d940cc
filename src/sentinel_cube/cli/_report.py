"""``sentinel-cube report``: an HTML report of a products table over an AOI."""

from __future__ import annotations

from pathlib import Path

import click

from ..exceptions import SentinelCubeError
from ._options import parse_aoi

__all__ = ["report_command"]


@click.command("report")
@click.argument("products", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--aoi", required=True, type=str, help="AOI file, WKT or 'minx,miny,maxx,maxy' in degrees."
)
@click.option(
    "--out", required=True, type=click.Path(file_okay=False, path_type=Path),
    help="Folder for index.html and the pages (created).",
)  # fmt: skip
@click.option(
    "--cube", "cube", type=click.Path(exists=True, path_type=Path), default=None,
    help="A cube store (Zarr, from 'sentinel-cube build') to add the RGB and the cube browser.",
)  # fmt: skip
@click.option(
    "--rgb", type=(str, str, str), default=("B04", "B03", "B02"), show_default=True,
    help="Red, green and blue bands of the cube.",
)  # fmt: skip
@click.option(
    "--freq", type=click.Choice(["D", "W", "MS"]), default="W", show_default=True,
    help="Period of the acquisition and land-cover series: days, weeks, months.",
)  # fmt: skip
@click.option("--title", type=str, default="Sentinel-2 products report", show_default=True)
@click.option(
    "--max-frames", type=click.IntRange(min=1), default=24, show_default=True,
    help="Time steps of the cube browser (evenly spaced when the cube has more).",
)  # fmt: skip
def report_command(products, aoi, out, cube, rgb, freq, title, max_frames) -> None:
    """Write an HTML report of a products table over an AOI: summary tables, footprints,
    acquisitions, land-cover series, correlation and, with --cube, the RGB and a cube
    browser; OUT/index.html links them. Every page opens offline.

    PRODUCTS: a products table written by 'sentinel-cube search --out' (.geojson, .gpkg,
    .parquet, .csv).
    """
    from ..catalog import read_products
    from ..report import write_report

    aoi = parse_aoi(aoi)
    try:
        table = read_products(products)
        click.echo(f"{len(table)} products read from {products}; writing the report to {out}")
        paths = write_report(
            table, aoi, out, cube=cube, rgb=rgb, freq=freq, title=title,
            max_frames=max_frames, echo=click.echo,
        )  # fmt: skip
    except (SentinelCubeError, ValueError) as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"open {paths['index']}")
