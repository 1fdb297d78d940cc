"""``sentinel-cube search`` and ``sentinel-cube download``: catalogues on the command line.

Registered by :mod:`sentinel_cube.cli`. Credentials never appear on the command
line: they come from ``CDSE_USERNAME``/``CDSE_PASSWORD``,
``DHUS_USERNAME``/``DHUS_PASSWORD`` or ``~/.netrc``.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import click

from ..exceptions import SentinelCubeError
from ._options import _ManyValues, _split, parse_aoi

__all__ = ["download", "search"]


def _echo_warnings(caught: list[warnings.WarningMessage]) -> None:
    for warning in caught:
        click.echo(f"warning: {warning.message}", err=True)


def _aoi(aoi: str | None, place: str | None) -> Any:
    if aoi and place:
        raise click.UsageError("--aoi and --place exclude each other")
    if place:
        from ..aoi import geocode

        return geocode(place)
    return parse_aoi(aoi)


@click.command()
@click.option(
    "--catalog", "catalog", default="local:.", show_default=True,
    help="cdse | dhus:URL | stac:URL | local:DIR (credentials from CDSE_USERNAME/"
    "CDSE_PASSWORD, DHUS_USERNAME/DHUS_PASSWORD or ~/.netrc).",
)  # fmt: skip
@click.option("--aoi", type=str, default=None, help="AOI file, WKT or 'minx,miny,maxx,maxy'.")
@click.option("--place", type=str, default=None, help="Geocode a place name as the AOI.")
@click.option("--start", type=str, default=None, help="First day (YYYY-MM-DD).")
@click.option("--end", type=str, default=None, help="Last day, included (YYYY-MM-DD).")
@click.option("--cloud", type=(float, float), default=None, help="Cloud cover range LO HI (%).")
@click.option("--producttype", type=click.Choice(["S2MSI1C", "S2MSI2A"]), default=None)
@click.option("--platform", type=str, default=None, help="Sentinel-2A, S2B... (default: all).")
@click.option("--tile", "tiles", multiple=True, help="MGRS tile id (repeatable).")
@click.option("--orbit", "orbits", type=int, multiple=True, help="Relative orbit (repeatable).")
@click.option("--limit", type=int, default=None, help="At most this many products.")
@click.option("--collection", type=str, default=None, help="STAC collection (sentinel-2-l2a).")
@click.option("--enrich", is_flag=True, help="CDSE: read vegetation/water/snow % from MTD XML.")
@click.option(
    "--min-coverage", type=click.FloatRange(0, 1), default=None,
    help="Keep products covering at least this fraction of the AOI (adds aoi_fraction).",
)  # fmt: skip
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="Write the products table (.geojson, .gpkg, .parquet or .csv).",
)  # fmt: skip
def search(catalog, aoi, place, start, end, cloud, producttype, platform, tiles, orbits, limit,
           collection, enrich, min_coverage, out) -> None:  # fmt: skip
    """Search a catalogue and print the matching products."""
    from ..catalog import coverage
    from ..catalog._spec import open_catalog
    from ..report import metadata_summary, products_table, write_products

    kind = catalog.partition(":")[0].lower()
    try:
        area = _aoi(aoi, place)
        options = {"collection": collection} if collection and kind == "stac" else {}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            cat = open_catalog(catalog, **options)
            arguments: dict[str, Any] = {
                "aoi": area, "date": (start, end) if (start or end) else None,
                "platformname": platform, "producttype": producttype,
                "cloudcoverpercentage": cloud, "tileid": list(tiles) or None,
                "relativeorbitnumber": list(orbits) or None, "limit": limit,
            }  # fmt: skip
            if enrich:
                if kind != "cdse":
                    raise click.UsageError("--enrich applies to --catalog cdse only")
                arguments["enrich"] = True
            products = cat.search(**arguments)
        _echo_warnings(caught)
        if area is not None:
            products = coverage(products, area)
            if min_coverage is not None:
                products = products[products["aoi_fraction"] >= min_coverage]
    except (SentinelCubeError, ValueError) as error:
        raise click.ClickException(str(error)) from None
    click.echo(products_table(products))
    click.echo(metadata_summary(products))
    if area is not None and len(products):
        full = int((products["aoi_fraction"] >= 0.999).sum())
        click.echo(f"{full} of {len(products)} products cover the whole AOI")
    if out is not None:
        write_products(products, str(out))
        click.echo(f"wrote {out}")


@click.command()
@click.argument("products_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--bands", cls=_ManyValues, default=None,
    help="Only these bands (plus metadata), space or comma separated; default: whole products.",
)  # fmt: skip
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              default=Path("."), show_default=True, help="Download folder.")  # fmt: skip
@click.option(
    "--catalog",
    default=None,
    help="Catalogue to download from (default: the table's 'catalog' column).",
)
@click.option("--collection", type=str, default=None, help="STAC collection.")
@click.option("--workers", type=int, default=None, help="Products downloaded at once.")
@click.option("--no-checksum", is_flag=True, help="Skip checksum verification (not advised).")
@click.option("--wait", is_flag=True, help="Wait for offline products to come online.")
@click.option("--timeout", type=float, default=3600.0, show_default=True,
              help="Seconds to wait for offline products with --wait.")  # fmt: skip
@click.option("--poll-interval", type=float, default=60.0, show_default=True,
              help="Seconds between status polls of offline products.")  # fmt: skip
@click.option("--no-progress", is_flag=True, help="Hide the progress bars.")
def download(products_file, bands, directory, catalog, collection, workers, no_checksum, wait,
             timeout, poll_interval, no_progress) -> None:  # fmt: skip
    """Download the products of a table written by 'sentinel-cube search --out'.

    Completed products are skipped, interrupted ones resume, every file is
    verified. Ends with a report; exits with status 1 when a product failed.
    """
    from ..catalog._result import DownloadResult
    from ..catalog._spec import open_catalog, read_products

    try:
        products = read_products(products_file)
        if catalog is not None:
            groups = {catalog: products}
        elif "catalog" in products.columns and products["catalog"].notna().all():
            groups = {str(k): g for k, g in products.groupby("catalog", sort=False)}
        else:
            raise click.UsageError(
                f"{products_file} has no 'catalog' column (or empty values): pass --catalog"
            )
        total = DownloadResult()
        for spec, group in groups.items():
            if spec.partition(":")[0].lower() == "local":
                for pid, path in group["path"].items():
                    total.skipped[str(pid)] = Path(path)
                continue
            options = {"collection": collection} if collection and spec.startswith("stac") else {}
            cat = open_catalog(spec, **options)
            click.echo(f"downloading {len(group)} product(s) from {spec} to {directory}")
            result = cat.download(
                group, directory, bands=_split(bands) or None, checksum=not no_checksum,
                max_workers=workers, wait=wait, timeout=timeout, poll_interval=poll_interval,
                progress=not no_progress,
            )  # fmt: skip
            for name in ("downloaded", "skipped", "pending", "failed"):
                getattr(total, name).update(getattr(result, name))
    except (SentinelCubeError, ValueError) as error:
        raise click.ClickException(str(error)) from None
    click.echo(total.report())
    if total.failed:
        raise SystemExit(1)
