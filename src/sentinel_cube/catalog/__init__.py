"""Catalogues: search for Sentinel-2 products and fetch them.

Every back-end returns the same products GeoDataFrame (see :mod:`sentinel_cube.schema`).
"""

from ._local import LocalCatalog
from ._query import filter_products, parse_date_range

__all__ = ["LocalCatalog", "filter_products", "parse_date_range"]
