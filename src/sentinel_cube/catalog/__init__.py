"""Catalogues: search for Sentinel-2 products and fetch them.

Every back-end returns the same products GeoDataFrame (see :mod:`sentinel_cube.schema`)
and downloads into a folder that :class:`LocalCatalog` and :func:`sentinel_cube.open_cube`
read.
"""

from ..analysis._coverage import coverage
from ._base import Catalog
from ._cdse import CDSECatalog
from ._dhus import DHuSCatalog
from ._errors import (
    AuthenticationError,
    ChecksumMismatchError,
    DownloadError,
    ProductOfflineError,
    UnsafeNameError,
)
from ._http import RetryPolicy
from ._local import LocalCatalog
from ._query import filter_products, parse_date_range
from ._result import DownloadResult
from ._spec import open_catalog, read_products
from ._stac import STACCatalog

#: The folder (or ``s3://`` prefix) catalogue under a name that says what it reads: an
#: archive of products wherever it lies. The same class as :class:`LocalCatalog`.
ArchiveCatalog = LocalCatalog

__all__ = [
    "AuthenticationError",
    "CDSECatalog",
    "Catalog",
    "ChecksumMismatchError",
    "DHuSCatalog",
    "DownloadError",
    "DownloadResult",
    "ArchiveCatalog",
    "LocalCatalog",
    "ProductOfflineError",
    "RetryPolicy",
    "STACCatalog",
    "UnsafeNameError",
    "coverage",
    "filter_products",
    "open_catalog",
    "parse_date_range",
    "read_products",
]
