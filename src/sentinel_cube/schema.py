"""The products table: one normalized GeoDataFrame schema for every catalogue.

Column names follow sentinelsat's ``to_geodataframe`` so that users of the
classic tutorials feel at home. Times are tz-aware UTC, geometry is EPSG:4326,
the index is the product id (the product name without ``.SAFE``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from .safe import Product

__all__ = [
    "COLUMNS",
    "S3PATH",
    "STAC_ITEM",
    "empty_products",
    "normalize_products",
    "products_frame",
]

#: Core columns and their pandas dtypes, in display order.
COLUMNS: dict[str, str] = {
    "title": "string[python]",
    "beginposition": "datetime64[ns, UTC]",
    "endposition": "datetime64[ns, UTC]",
    "ingestiondate": "datetime64[ns, UTC]",
    "platformname": "string[python]",
    "platformserialidentifier": "string[python]",
    "producttype": "string[python]",
    "processinglevel": "string[python]",
    "processingbaseline": "string[python]",
    "tileid": "string[python]",
    "relativeorbitnumber": "Int64",
    "orbitdirection": "string[python]",
    "cloudcoverpercentage": "float64",
    "vegetationpercentage": "float64",
    "waterpercentage": "float64",
    "snowicepercentage": "float64",
    "notvegetatedpercentage": "float64",
    "size": "Int64",
    "online": "boolean",
    "checksum": "string[python]",
    "epsg": "Int64",
    "path": "string[python]",
}

INDEX_NAME = "product_id"

#: Optional column of back-ends whose products also sit on object storage (CDSE): the
#: product's ``s3://bucket/.../NAME.SAFE`` URL, read in place by ``open_cube`` when a
#: row has no local ``path`` and S3 credentials are configured. Never holds credentials.
S3PATH = "s3path"

#: Optional column of STAC searches: each row's item as compact JSON (its band assets,
#: properties and geometry; hrefs without any signature), from which ``open_cube`` reads
#: the row in place when it has no local ``path`` (see :func:`sentinel_cube.stac.item_record`).
STAC_ITEM = "stac_item"

_LEVEL_NAMES = {"L1C": "Level-1C", "L2A": "Level-2A"}


def empty_products() -> gpd.GeoDataFrame:
    """An empty products table with every column and the right dtypes."""
    frame = pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in COLUMNS.items()})
    frame.index = pd.Index([], dtype="string[python]", name=INDEX_NAME)
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries([], crs=4326), crs=4326)


def products_frame(products: Iterable[Product], sizes: dict[str, int] | None = None):
    """Build the products table from :class:`~sentinel_cube.safe.Product` objects.

    Extra quality percentages (``high_proba_clouds_percentage`` ...) become
    columns named as sentinelsat names them (``highprobacloudspercentage``).

    Parameters
    ----------
    products
        Products read by :func:`sentinel_cube.safe.read_product`.
    sizes
        Optional size in bytes per product id.
    """
    rows = []
    geometries = []
    for product in products:
        row = {
            "title": product.product_id,
            "beginposition": product.sensing_start,
            "endposition": product.sensing_start,
            "ingestiondate": product.generation_time,
            "platformname": "Sentinel-2",
            "platformserialidentifier": _platform_name(product.platform),
            "producttype": product.producttype,
            "processinglevel": _LEVEL_NAMES.get(product.processing_level, product.processing_level),
            "processingbaseline": product.processing_baseline,
            "tileid": product.tile_id,
            "relativeorbitnumber": product.relative_orbit,
            "orbitdirection": product.orbit_direction,
            "cloudcoverpercentage": product.cloud_cover,
            "vegetationpercentage": product.vegetation,
            "waterpercentage": product.water,
            "snowicepercentage": product.snow_ice,
            "notvegetatedpercentage": product.not_vegetated,
            "size": (sizes or {}).get(product.product_id),
            "online": True,
            "checksum": None,
            "epsg": product.epsg,
            "path": product.path,
        }
        for key, value in product.quality.items():
            row.setdefault(key.replace("_", ""), value)
        row[INDEX_NAME] = product.product_id
        rows.append(row)
        geometries.append(product.footprint)
    if not rows:
        return empty_products()
    frame = pd.DataFrame(rows).set_index(INDEX_NAME)
    return normalize_products(gpd.GeoDataFrame(frame, geometry=geometries, crs=4326))


def normalize_products(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Coerce a products table to the schema: dtypes, UTC times, column order, sort.

    Missing core columns are added as nulls; extra columns are kept after them.
    Rows are sorted by ``beginposition`` then ``tileid``.
    """
    frame = frame.copy()
    for name, dtype in COLUMNS.items():
        if name not in frame.columns:
            frame[name] = pd.Series(index=frame.index, dtype=dtype)
        elif dtype.startswith("datetime"):
            # explicit unit: pandas 3 would otherwise infer microseconds
            frame[name] = pd.to_datetime(frame[name], utc=True).astype(dtype)
        else:
            frame[name] = frame[name].astype(dtype)
    extras = [c for c in frame.columns if c not in COLUMNS and c != "geometry"]
    for name in extras:
        if frame[name].dtype != np.dtype("O") and pd.api.types.is_string_dtype(frame[name].dtype):
            # pandas 3 stores text in pyarrow arrays, which holoviews/bokeh cannot reshape
            frame[name] = frame[name].astype("string[python]")
    frame = frame[[*COLUMNS, *extras, "geometry"]]
    frame.index = frame.index.astype("string[python]")
    frame.index.name = INDEX_NAME
    frame = frame.sort_values(["beginposition", "tileid"], kind="stable")
    if frame.crs is None:
        frame = frame.set_crs(4326)
    elif frame.crs.to_epsg() != 4326:
        frame = frame.to_crs(4326)
    return frame


def _platform_name(platform: str) -> str:
    # "S2A" -> "Sentinel-2A"
    return f"Sentinel-2{platform[2:]}" if platform.startswith("S2") else platform
