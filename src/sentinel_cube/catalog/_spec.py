"""Catalogues named by a short text (``cdse``, ``dhus:URL``, ``stac:URL``, ``local:DIR``).

The command line takes ``--catalog`` in this form, and every products table of a
remote catalogue carries it in its ``catalog`` column, so ``sentinel-cube
download products.geojson`` knows where the products come from. The text never
holds credentials: they come from the environment or ``~/.netrc``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from ..exceptions import CatalogError
from ..schema import INDEX_NAME, normalize_products

__all__ = ["KINDS", "open_catalog", "read_products"]

#: Accepted catalogue kinds and what follows the colon.
KINDS: dict[str, str] = {
    "cdse": "nothing (Copernicus Data Space Ecosystem)",
    "dhus": "the hub URL, e.g. dhus:https://colhub.met.no/",
    "stac": "the STAC API URL, e.g. stac:https://earth-search.aws.element84.com/v1",
    "local": "a folder of .SAFE/.zip products, e.g. local:archive/",
}


def open_catalog(spec: str, **options: Any) -> Any:
    """The catalogue named by ``spec``; ``options`` go to its constructor.

    Examples
    --------
    >>> open_catalog("stac:https://earth-search.aws.element84.com/v1")
    STACCatalog('https://earth-search.aws.element84.com/v1', collection='sentinel-2-l2a')
    >>> open_catalog("ftp:x")
    Traceback (most recent call last):
    ...
    sentinel_cube.exceptions.CatalogError: unsupported catalogue 'ftp:x'; use ...
    """
    kind, _, target = str(spec).partition(":")
    kind = kind.strip().lower()
    if kind == "cdse":
        from ._cdse import CDSECatalog

        return CDSECatalog(**options)
    if kind == "dhus" and target:
        from ._dhus import DHuSCatalog

        return DHuSCatalog(target, **options)
    if kind == "stac" and target:
        from ._stac import STACCatalog

        return STACCatalog(target, **options)
    if kind == "local":
        from ._local import LocalCatalog

        return LocalCatalog(target or ".", **options)
    choices = "; ".join(f"{k}:{v}" if k != "cdse" else "cdse" for k, v in KINDS.items())
    raise CatalogError(f"unsupported catalogue {spec!r}; use one of: {choices}")


def read_products(path: str | os.PathLike[str]) -> gpd.GeoDataFrame:
    """Read a products table written by ``sentinel-cube search --out`` (or ``to_file``).

    GeoJSON/GeoPackage, GeoParquet and CSV (WKT ``geometry``) are read; the
    index is restored from ``product_id`` and the schema's dtypes are applied.

    Raises
    ------
    CatalogError
        The file does not exist or is not a products table.
    """
    source = Path(path)
    if not source.is_file():
        raise CatalogError(f"{source} does not exist; write one with 'sentinel-cube search --out'")
    suffix = source.suffix.lower()
    try:
        if suffix == ".parquet":
            frame = gpd.read_parquet(source)
        elif suffix == ".csv":
            table = pd.read_csv(source)
            geometry = gpd.GeoSeries.from_wkt(table.pop("geometry").fillna(""), crs=4326)
            frame = gpd.GeoDataFrame(table, geometry=geometry, crs=4326)
        else:
            frame = gpd.read_file(source)
    except Exception as error:  # noqa: BLE001 - pyogrio, pyarrow and pandas raise many types
        raise CatalogError(f"{source} cannot be read as a products table ({error})") from None
    if INDEX_NAME in frame.columns:
        frame = frame.set_index(INDEX_NAME)
    elif "title" in frame.columns:
        frame = frame.set_index(frame["title"].astype(str).rename(INDEX_NAME))
    else:
        raise CatalogError(f"{source} is not a products table: it has no product_id or title")
    return normalize_products(frame)
