"""The ``sentinel-cube`` command line."""

from __future__ import annotations

import warnings
from pathlib import Path

import click

from . import __version__
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
    default=30,
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


@main.command()
@click.option(
    "--catalog",
    "catalog",
    default="local:.",
    show_default=True,
    help="Catalogue to search: local:DIR (a folder of .SAFE/.zip products).",
)
@click.option(
    "--aoi",
    type=str,
    default=None,
    help="AOI: vector file, WKT, or 'minx,miny,maxx,maxy' in degrees.",
)
@click.option("--start", type=str, default=None, help="First day (YYYY-MM-DD).")
@click.option("--end", type=str, default=None, help="Last day, included (YYYY-MM-DD).")
@click.option("--cloud", type=(float, float), default=None, help="Cloud cover range LO HI (%).")
@click.option("--producttype", type=click.Choice(["S2MSI1C", "S2MSI2A"]), default=None)
@click.option("--tile", "tiles", multiple=True, help="MGRS tile id (repeatable).")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the products table (.geojson, .gpkg, .parquet or .csv).",
)
def search(catalog, aoi, start, end, cloud, producttype, tiles, out) -> None:
    """Search a catalogue and print the matching products."""
    from ._summary import metadata_summary, products_table, write_products
    from .catalog import LocalCatalog

    kind, _, target = catalog.partition(":")
    if kind != "local":
        raise click.BadParameter(
            f"unsupported catalogue {catalog!r}; use local:DIR", param_hint="--catalog"
        )
    if aoi and "," in aoi and not Path(aoi).exists():
        aoi = tuple(float(v) for v in aoi.split(","))
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            products = LocalCatalog(target or ".").search(
                aoi=aoi,
                date=(start, end) if (start or end) else None,
                producttype=producttype,
                cloudcoverpercentage=cloud,
                tileid=list(tiles) or None,
            )
        for warning in caught:
            click.echo(f"warning: {warning.message}", err=True)
    except (SentinelCubeError, ValueError) as error:
        raise _fail(error) from error
    click.echo(products_table(products))
    click.echo(metadata_summary(products))
    if out is not None:
        write_products(products, str(out))
        click.echo(f"wrote {out}")
