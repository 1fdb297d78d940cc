"""``sentinel-cube info``: describe one product or every product in a folder."""

from __future__ import annotations

import warnings
from pathlib import Path

import click

from ..exceptions import SentinelCubeError

__all__ = ["info_command"]


@click.command("info")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
def info_command(path: Path) -> None:
    """Describe one product (.SAFE folder or .zip) or every product in a folder."""
    from ..catalog import LocalCatalog
    from ..report import metadata_summary, products_table
    from ..safe import read_product

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
        raise click.ClickException(str(error)) from error


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} %"
